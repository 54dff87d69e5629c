/* Small helpers every layer uses: clocks, logging, allocation checks. */
#ifndef BS_UTIL_H
#define BS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define NS_PER_SEC ((int64_t)1000000000)
#define NS_PER_MS ((int64_t)1000000)

/* Monotonic nanoseconds: all queue deadlines are measured on this clock so a
 * wall-clock step never fires or stalls a timer. */
int64_t now_ns(void);
/* Wall-clock nanoseconds since the epoch: for what must survive a restart. */
int64_t wall_ns(void);

extern const char *progname;
extern int verbosity;

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like log_warn, with ": strerror(errno)" appended. */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define UNUSED(x) ((void)(x))

#endif
