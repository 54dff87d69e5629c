/* beanstalkd's command line, same letters, same meanings. */
#ifndef BS_OPTIONS_H
#define BS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#define JOB_SIZE_DEFAULT 65535
#define JOB_SIZE_MAX 1073741824
#define BINLOG_SIZE_DEFAULT 10485760

typedef struct options {
    const char *addr;           /* -l */
    const char *port;           /* -p */
    const char *user;           /* -u */
    const char *dir;            /* -b */
    size_t max_job_size;        /* -z */
    size_t binlog_size;         /* -s: accepted; the LMDB store has no files to size */
    int64_t fsync_ms;           /* -f; 0 = sync every turn (default); -1 with -F */
    int verbosity;              /* -V */
    const char *metrics;        /* --metrics [HOST:]PORT as given; NULL: off */
    char metrics_host[256];     /* ... and parsed */
    unsigned metrics_port;
} options;

/* Parses argv (after the program name). Exits as beanstalkd does for -h,
 * -v and bad input: usage on stderr and status 5. */
void options_parse(options *o, char **argv);

#endif
