#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *progname = "beanstalkd";
int verbosity = 0;

static int64_t
clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t wall_ns(void) { return clock_ns(CLOCK_REALTIME); }

static void
vlog(const char *fmt, va_list ap, int err)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (err)
        fprintf(stderr, "%s: %s: %s\n", progname, msg, strerror(err));
    else
        fprintf(stderr, "%s: %s\n", progname, msg);
}

void
log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, 0);
    va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, 0);
    va_end(ap);
}

void
log_errno(const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, err);
    va_end(ap);
}
