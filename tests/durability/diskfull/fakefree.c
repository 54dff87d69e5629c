/* LD_PRELOAD for test_diskfull.py: statvfs() reports the free space written
 * in the file named by $FAKEFREE_FILE (bytes, decimal) instead of the real
 * figure, so a test can bring a disk "near full" and back without filling
 * one. Everything else about the file system is real. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>

static int (*real_statvfs)(const char *, struct statvfs *);

int
statvfs(const char *path, struct statvfs *buf)
{
    if (!real_statvfs)
        real_statvfs = (int (*)(const char *, struct statvfs *))dlsym(RTLD_NEXT, "statvfs");
    int r = real_statvfs(path, buf);
    const char *f = getenv("FAKEFREE_FILE");
    FILE *fp = f ? fopen(f, "r") : NULL;
    unsigned long long bytes;
    if (r == 0 && fp && fscanf(fp, "%llu", &bytes) == 1 && buf->f_frsize)
        buf->f_bavail = buf->f_bfree = bytes / buf->f_frsize;
    if (fp)
        fclose(fp);
    return r;
}
