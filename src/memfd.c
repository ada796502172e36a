/* The memfds other processes read (the waiter registry, the contention
 * profile's table): made the same way, and recognised again after the
 * application may have reused their descriptor numbers. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int fmx_memfd_create(const char *name, struct fmx_memfd_id *id)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    /* Never descriptor 0, 1 or 2: a program started with one of them
     * closed would otherwise write its own output into the region. */
    if (fd >= 0 && fd <= STDERR_FILENO) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        close(fd);
        fd = high;
    }
    /* Mode 0600: only its user may open it through /proc (memfd_create
     * makes it 0777). */
    struct stat st;
    if (fd >= 0 && (fchmod(fd, S_IRUSR | S_IWUSR) != 0 || fstat(fd, &st) != 0)) {
        close(fd);
        return -1;
    }
    if (fd >= 0)
        *id = (struct fmx_memfd_id){.dev = st.st_dev, .ino = st.st_ino};
    return fd;
}

bool fmx_memfd_is(int fd, const struct fmx_memfd_id *id)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino;
}

void *fmx_memfd_map(const char *name, size_t size, struct fmx_memfd_id *id, int *fd_out)
{
    void *mem = MAP_FAILED;
    int fd = fmx_memfd_create(name, id);
    if (fd >= 0 && ftruncate(fd, (off_t)size) == 0)
        mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
        if (fd >= 0)
            close(fd);
        fd = -1;
        mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            abort(); /* out of address space: nothing sensible is left to do */
    }
    *fd_out = fd;
    return mem;
}
