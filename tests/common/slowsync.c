/* Slow storage for tests: preloaded into a daemon a test starts
 * (LD_PRELOAD), it makes every fsync and fdatasync take SLOWSYNC_MS
 * milliseconds, as on a loaded disk or a network volume, without touching
 * the machine's disks. Only the process it is preloaded into is affected. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void slow(void) {
    const char *v = getenv("SLOWSYNC_MS");
    long ms = v ? atol(v) : 0;
    if (ms > 0) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow();
    return real(fd);
}
