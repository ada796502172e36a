/* The memfds other processes read (the waiter registry, the contention
 * profile's table): made the same way, and recognised again after the
 * application may have reused their descriptor numbers. */
#include <fcntl.h>
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
