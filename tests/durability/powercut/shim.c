/* Power-cut recorder: an LD_PRELOAD library that logs, for every file inside
 * one directory, each write (file, offset, bytes), each truncate, each sync
 * and the outcome of each call, so that a later program can build the file
 * images a power cut at the moment of a SIGKILL could have left.
 *
 *   PC_DIR=/abs/store/dir PC_LOG=/abs/log LD_PRELOAD=./shim.so beanstalkd ...
 *
 * The record of a call is appended to the log with write(2) *before* the
 * call is made, and its outcome (and, for a sync, the fact that it returned)
 * after it returns. The log lives in the page cache, which a SIGKILL does not
 * touch, so whatever instant the process dies at, the log holds every change
 * the kernel had been asked to make to those files, and every sync that had
 * completed. A record cut short by the kill is the last one in the log, and
 * its call was never made.
 *
 * Log format (native byte order, x86-64 little-endian): a sequence of
 * records, each a 32-byte header followed by an optional payload:
 *
 *   u32 type   (low 8 bits; PC_F_DSYNC set on writes through an O_DSYNC fd)
 *   i32 file   (index given by a NAME record; -1 for "every file")
 *   u64 a, u64 b (meaning depends on the type, below)
 *   u64 t_ns   CLOCK_MONOTONIC when the record was written
 *
 *   NAME    a=0, b=name length; payload: the name relative to PC_DIR
 *   OPEN    a=open flags, b=fd
 *   WRITE   a=file offset, b=length; payload: the bytes
 *   WRITEZ  a=file offset, b=length; no payload: the bytes were all zero
 *   RESULT  a=index of the WRITE/TRUNC record, b=return value (as i64)
 *   TRUNC   a=new length
 *   SYNC    a=number of records logged when the sync began (every record
 *           with a smaller index, for that file, is durable), b=kind
 *   SYNCERR a, b as SYNC; the call failed (informational)
 *   SFR     sync_file_range: a=offset, b=length (informational: it makes
 *           nothing durable)
 *   CLOSE   b=fd
 *
 * Record indexes count records from 0 in log order. Calls on tracked
 * descriptors are serialised by a mutex held across the real call, so the
 * log order is the order the kernel saw them in.
 *
 * Not followed: writes through mmap (LMDB's lock.mdb only; LMDB's data file
 * is written with write calls unless MDB_WRITEMAP, which the server does not
 * use), descriptors duplicated with fcntl(F_DUPFD), and paths that reach the
 * directory through symbolic links or "..". Opening a file is taken to make
 * its name durable (directory entries are not modelled).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum {
    PC_NAME = 1, PC_OPEN, PC_WRITE, PC_WRITEZ, PC_RESULT, PC_TRUNC,
    PC_SYNC, PC_SYNCERR, PC_SFR, PC_CLOSE,
};
#define PC_F_DSYNC 0x100u

enum { SYNC_FSYNC = 1, SYNC_FDATASYNC = 2, SYNC_ALL = 3 };

struct pc_rec {
    uint32_t type;
    int32_t file;
    uint64_t a, b;
    uint64_t t_ns;
};

#define MAX_FDS 65536
#define MAX_FILES 256
#define MAX_IOV 1024

static struct {
    int16_t file1;          /* file index + 1; 0 = not tracked */
    uint8_t dsync, append;
} fds[MAX_FDS];

static char *names[MAX_FILES];
static int nnames;
static char dir[4096];
static size_t dirlen;
static int logfd = -1;
static uint64_t nrec;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* The real functions. */
static int (*r_openat)(int, const char *, int, ...);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_sync_file_range)(int, off_t, off_t, unsigned int);
static int (*r_ftruncate)(int, off_t);
static int (*r_close)(int);
static int (*r_dup)(int);
static int (*r_dup2)(int, int);
static int (*r_dup3)(int, int, int);
static void (*r_sync)(void);
static int (*r_syncfs)(int);

static void *
real(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* Cannot go on without it; say so on stderr without stdio. */
        static const char msg[] = "powercut shim: dlsym failed for a libc function\n";
        ssize_t (*w)(int, const void *, size_t) = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
        if (w)
            (void)!w(2, msg, sizeof msg - 1);
        abort();
    }
    return p;
}

static void
resolve(void)
{
    if (r_write)
        return;
    *(void **)&r_openat = real("openat");
    *(void **)&r_writev = real("writev");
    *(void **)&r_pwrite = real("pwrite");
    *(void **)&r_pwritev = real("pwritev");
    *(void **)&r_pwritev2 = real("pwritev2");
    *(void **)&r_fsync = real("fsync");
    *(void **)&r_fdatasync = real("fdatasync");
    *(void **)&r_sync_file_range = real("sync_file_range");
    *(void **)&r_ftruncate = real("ftruncate");
    *(void **)&r_close = real("close");
    *(void **)&r_dup = real("dup");
    *(void **)&r_dup2 = real("dup2");
    *(void **)&r_dup3 = real("dup3");
    *(void **)&r_sync = real("sync");
    *(void **)&r_syncfs = real("syncfs");
    *(void **)&r_write = real("write");     /* last: it marks "resolved" */
}

static void
die(const char *what)
{
    char msg[512];
    int e = errno;
    int n = snprintf(msg, sizeof msg, "powercut shim: %s: %s\n", what, strerror(e));
    if (n > 0 && r_write)
        (void)!r_write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    abort();
}

__attribute__((constructor)) static void
init(void)
{
    resolve();
    const char *d = getenv("PC_DIR"), *l = getenv("PC_LOG");
    if (!d || !*d || !l || !*l)
        return;                 /* not asked to record: pass everything through */
    if (strlen(d) >= sizeof dir - 2 || d[0] != '/') {
        errno = EINVAL;
        die("PC_DIR must be an absolute path");
    }
    strcpy(dir, d);
    dirlen = strlen(dir);
    while (dirlen > 1 && dir[dirlen - 1] == '/')
        dir[--dirlen] = 0;
    int fd = r_openat(AT_FDCWD, l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        die("cannot open PC_LOG");
    /* Out of the way of the low numbers the program will get. */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    if (high >= 0) {
        r_close(fd);
        fd = high;
    }
    logfd = fd;
}

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Append one record (header + payload pieces) to the log; returns its index.
 * Called with mu held. The log is written with plain write calls: it has to
 * outlive the process, not a power cut. */
static uint64_t
emit(uint32_t type, int file, uint64_t a, uint64_t b, const struct iovec *pay, int npay)
{
    struct iovec iov[MAX_IOV + 1];
    struct pc_rec h = {type, file, a, b, mono_ns()};
    size_t total = sizeof h;
    iov[0].iov_base = &h;
    iov[0].iov_len = sizeof h;
    int n = 1;
    for (int i = 0; i < npay; i++) {
        if (!pay[i].iov_len)
            continue;
        if (n == MAX_IOV + 1) {
            errno = E2BIG;
            die("too many pieces in one write");
        }
        iov[n++] = pay[i];
        total += pay[i].iov_len;
    }
    /* Write it all, resuming after a short write. */
    int first = 0;
    size_t done = 0;
    while (done < total) {
        ssize_t w = r_writev(logfd, iov + first, n - first);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("cannot write the log");
        }
        done += (size_t)w;
        while (first < n && (size_t)w >= iov[first].iov_len) {
            w -= (ssize_t)iov[first].iov_len;
            first++;
        }
        if (first < n) {
            iov[first].iov_base = (char *)iov[first].iov_base + w;
            iov[first].iov_len -= (size_t)w;
        }
    }
    return nrec++;
}

static int
file_index(const char *rel)
{
    for (int i = 0; i < nnames; i++)
        if (strcmp(names[i], rel) == 0)
            return i;
    if (nnames == MAX_FILES) {
        errno = ENFILE;
        die("too many files in the directory");
    }
    names[nnames] = strdup(rel);
    if (!names[nnames])
        die("out of memory");
    struct iovec p = {names[nnames], strlen(rel)};
    emit(PC_NAME, nnames, 0, p.iov_len, &p, 1);
    return nnames++;
}

/* The name of path (relative to dirfd) inside PC_DIR, or NULL when it is
 * outside. Lexical only: "a//b" and "a/./b" are folded, symlinks are not. */
static const char *
inside(int dirfd, const char *path, char *abs, size_t abslen)
{
    char tmp[8192];
    if (!path)
        return NULL;
    if (path[0] == '/') {
        snprintf(tmp, sizeof tmp, "%s", path);
    } else {
        char base[4096];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base))
                return NULL;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            if (n < 0)
                return NULL;
            base[n] = 0;
        }
        snprintf(tmp, sizeof tmp, "%s/%s", base, path);
    }
    /* Fold "//" and "/./". */
    size_t o = 0;
    for (size_t i = 0; tmp[i] && o < abslen - 1; i++) {
        if (tmp[i] == '/' && o && abs[o - 1] == '/')
            continue;
        if (tmp[i] == '.' && o && abs[o - 1] == '/' && (tmp[i + 1] == '/' || !tmp[i + 1]))
            continue;
        abs[o++] = tmp[i];
    }
    abs[o] = 0;
    if (o > dirlen + 1 && strncmp(abs, dir, dirlen) == 0 && abs[dirlen] == '/')
        return abs + dirlen + 1;
    return NULL;
}

static int
tracked(int fd)
{
    if (logfd < 0 || fd < 0 || fd >= MAX_FDS)
        return -1;
    return fds[fd].file1 - 1;
}

static void
untrack(int fd)
{
    if (fd >= 0 && fd < MAX_FDS)
        fds[fd].file1 = 0;
}

/* ---- open ---- */

static int
do_open(int dirfd, const char *path, int flags, mode_t mode)
{
    resolve();
    char abs[8192];
    const char *rel = logfd >= 0 ? inside(dirfd, path, abs, sizeof abs) : NULL;
    if (!rel)
        return r_openat(dirfd, path, flags, mode);
    pthread_mutex_lock(&mu);
    int file = file_index(rel);
    uint64_t ti = 0;
    int trunc = (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY;
    if (trunc)
        ti = emit(PC_TRUNC, file, 0, 0, NULL, 0);
    int fd = r_openat(dirfd, path, flags, mode);
    int e = errno;
    if (trunc)
        emit(PC_RESULT, file, ti, (uint64_t)(int64_t)(fd < 0 ? -1 : 0), NULL, 0);
    if (fd >= 0) {
        emit(PC_OPEN, file, (uint64_t)flags, (uint64_t)fd, NULL, 0);
        if (fd < MAX_FDS) {
            fds[fd].file1 = (int16_t)(file + 1);
            fds[fd].dsync = (flags & O_DSYNC) != 0;     /* O_SYNC includes O_DSYNC */
            fds[fd].append = (flags & O_APPEND) != 0;
        }
    }
    pthread_mutex_unlock(&mu);
    errno = e;
    return fd;
}

static mode_t
mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_open(AT_FDCWD, path, flags, m);
}

int
open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_open(AT_FDCWD, path, flags, m);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_open(dirfd, path, flags, m);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_open(dirfd, path, flags, m);
}

/* _FORTIFY_SOURCE entry points (no mode argument). */
int
__open_2(const char *path, int flags)
{
    return do_open(AT_FDCWD, path, flags, 0);
}

int
__open64_2(const char *path, int flags)
{
    return do_open(AT_FDCWD, path, flags, 0);
}

int
creat(const char *path, mode_t mode)
{
    return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int
creat64(const char *path, mode_t mode)
{
    return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* ---- writes ---- */

static int
all_zero(const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++) {
        const unsigned char *p = iov[i].iov_base;
        for (size_t k = 0; k < iov[i].iov_len; k++)
            if (p[k])
                return 0;
    }
    return 1;
}

enum wkind { W_WRITE, W_WRITEV, W_PWRITE, W_PWRITEV, W_PWRITEV2 };

/* Log a write to a tracked file, make it, log its outcome. off < 0: at the
 * descriptor's position (or the end, for O_APPEND). */
static ssize_t
logged_write(enum wkind k, int fd, int file, const struct iovec *iov, int iovcnt, off_t off, int flags2)
{
    pthread_mutex_lock(&mu);
    uint64_t at;
    if (off >= 0) {
        at = (uint64_t)off;
    } else if (fds[fd].append) {
        struct stat st;
        at = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    } else {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        at = pos < 0 ? 0 : (uint64_t)pos;
    }
    size_t len = 0;
    int cnt = iovcnt < 0 ? 0 : iovcnt;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    uint32_t dsync = fds[fd].dsync ? PC_F_DSYNC : 0;
    uint64_t wi = all_zero(iov, cnt)
        ? emit(PC_WRITEZ | dsync, file, at, len, NULL, 0)
        : emit(PC_WRITE | dsync, file, at, len, iov, cnt);
    ssize_t r;
    switch (k) {
    case W_WRITE: r = r_write(fd, iov[0].iov_base, iov[0].iov_len); break;
    case W_WRITEV: r = r_writev(fd, iov, iovcnt); break;
    case W_PWRITE: r = r_pwrite(fd, iov[0].iov_base, iov[0].iov_len, off); break;
    case W_PWRITEV: r = r_pwritev(fd, iov, iovcnt, off); break;
    default: r = r_pwritev2(fd, iov, iovcnt, off, flags2); break;
    }
    int e = errno;
    emit(PC_RESULT, file, wi, (uint64_t)(int64_t)r, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

ssize_t
write(int fd, const void *buf, size_t n)
{
    resolve();
    int f = tracked(fd);
    if (f < 0)
        return r_write(fd, buf, n);
    struct iovec v = {(void *)buf, n};
    return logged_write(W_WRITE, fd, f, &v, 1, -1, 0);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
    resolve();
    int f = tracked(fd);
    if (f < 0 || iovcnt > MAX_IOV)
        return r_writev(fd, iov, iovcnt);
    return logged_write(W_WRITEV, fd, f, iov, iovcnt, -1, 0);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
    resolve();
    int f = tracked(fd);
    if (f < 0 || off < 0)
        return r_pwrite(fd, buf, n, off);
    struct iovec v = {(void *)buf, n};
    return logged_write(W_PWRITE, fd, f, &v, 1, off, 0);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    resolve();
    int f = tracked(fd);
    if (f < 0 || off < 0 || iovcnt > MAX_IOV)
        return r_pwritev(fd, iov, iovcnt, off);
    return logged_write(W_PWRITEV, fd, f, iov, iovcnt, off, 0);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    return pwritev(fd, iov, iovcnt, off);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
    resolve();
    int f = tracked(fd);
    if (f < 0 || iovcnt > MAX_IOV)
        return r_pwritev2(fd, iov, iovcnt, off, flags);
    /* off == -1 means "at the current position", like writev. RWF_DSYNC
     * and RWF_SYNC make this one write durable, like an O_DSYNC fd. */
    uint8_t saved = fds[fd].dsync;
    if (flags & (RWF_DSYNC | RWF_SYNC))
        fds[fd].dsync = 1;
    ssize_t r = logged_write(W_PWRITEV2, fd, f, iov, iovcnt, off < 0 ? -1 : off, flags);
    fds[fd].dsync = saved;
    return r;
}

ssize_t
pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
    return pwritev2(fd, iov, iovcnt, off, flags);
}

/* ---- truncate ---- */

int
ftruncate(int fd, off_t len)
{
    resolve();
    int f = tracked(fd);
    if (f < 0 || len < 0)
        return r_ftruncate(fd, len);
    pthread_mutex_lock(&mu);
    uint64_t ti = emit(PC_TRUNC, f, (uint64_t)len, 0, NULL, 0);
    int r = r_ftruncate(fd, len);
    int e = errno;
    emit(PC_RESULT, f, ti, (uint64_t)(int64_t)r, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

int
ftruncate64(int fd, off_t len)
{
    return ftruncate(fd, len);
}

/* ---- syncs ---- */

static int
logged_sync(int fd, int file, int kind)
{
    pthread_mutex_lock(&mu);
    uint64_t before = nrec;
    int r = kind == SYNC_FSYNC ? r_fsync(fd) : r_fdatasync(fd);
    int e = errno;
    emit(r == 0 ? PC_SYNC : PC_SYNCERR, file, before, (uint64_t)kind, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

int
fsync(int fd)
{
    resolve();
    int f = tracked(fd);
    return f < 0 ? r_fsync(fd) : logged_sync(fd, f, SYNC_FSYNC);
}

int
fdatasync(int fd)
{
    resolve();
    int f = tracked(fd);
    return f < 0 ? r_fdatasync(fd) : logged_sync(fd, f, SYNC_FDATASYNC);
}

int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    resolve();
    int f = tracked(fd);
    if (f < 0)
        return r_sync_file_range(fd, off, n, flags);
    pthread_mutex_lock(&mu);
    int r = r_sync_file_range(fd, off, n, flags);
    int e = errno;
    emit(PC_SFR, f, (uint64_t)off, (uint64_t)n, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

void
sync(void)
{
    resolve();
    if (logfd < 0) {
        r_sync();
        return;
    }
    pthread_mutex_lock(&mu);
    uint64_t before = nrec;
    r_sync();
    emit(PC_SYNC, -1, before, SYNC_ALL, NULL, 0);
    pthread_mutex_unlock(&mu);
}

int
syncfs(int fd)
{
    resolve();
    if (logfd < 0)
        return r_syncfs(fd);
    pthread_mutex_lock(&mu);
    uint64_t before = nrec;
    int r = r_syncfs(fd);
    int e = errno;
    emit(r == 0 ? PC_SYNC : PC_SYNCERR, -1, before, SYNC_ALL, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

/* ---- descriptors ---- */

int
close(int fd)
{
    resolve();
    int f = tracked(fd);
    if (f < 0)
        return r_close(fd);
    pthread_mutex_lock(&mu);
    untrack(fd);
    emit(PC_CLOSE, f, 0, (uint64_t)fd, NULL, 0);
    int r = r_close(fd);
    int e = errno;
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

static int
copy_track(int from, int to)
{
    if (to >= 0 && to < MAX_FDS) {
        int f = tracked(from);
        if (f >= 0) {
            fds[to] = fds[from];
            emit(PC_OPEN, f, 0, (uint64_t)to, NULL, 0);
        } else {
            untrack(to);
        }
    }
    return to;
}

int
dup(int fd)
{
    resolve();
    pthread_mutex_lock(&mu);
    int r = r_dup(fd);
    int e = errno;
    if (r >= 0 && logfd >= 0)
        copy_track(fd, r);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

int
dup2(int fd, int to)
{
    resolve();
    pthread_mutex_lock(&mu);
    int r = r_dup2(fd, to);
    int e = errno;
    if (r >= 0 && logfd >= 0 && fd != to)
        copy_track(fd, r);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}

int
dup3(int fd, int to, int flags)
{
    resolve();
    pthread_mutex_lock(&mu);
    int r = r_dup3(fd, to, flags);
    int e = errno;
    if (r >= 0 && logfd >= 0)
        copy_track(fd, r);
    pthread_mutex_unlock(&mu);
    errno = e;
    return r;
}
