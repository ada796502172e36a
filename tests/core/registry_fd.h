/* The calling process's registry memfd among its descriptors, for the
 * tests that look at the registry as fmx does (they need src/registry.h
 * on the include path). */
#ifndef FASTMUTEX_TESTS_REGISTRY_FD_H
#define FASTMUTEX_TESTS_REGISTRY_FD_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

#define REGISTRY_LINK "/memfd:" FMX_REGISTRY_NAME " (deleted)"

/* This process's registry memfd, -1 when there is none. */
static inline int find_registry_fd(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    int found = -1;
    for (struct dirent *entry; found < 0 && (entry = readdir(dir)) != NULL;) {
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, REGISTRY_LINK) == 0)
            found = atoi(entry->d_name);
    }
    closedir(dir);
    return found;
}

#endif /* FASTMUTEX_TESTS_REGISTRY_FD_H */
