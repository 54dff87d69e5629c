#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"
#include "util.h"

static void __attribute__((noreturn))
usage(int status)
{
    fprintf(status ? stderr : stdout,
        "Use: %s [OPTIONS]\n"
        "\n"
        "Options:\n"
        " -b DIR   keep jobs in a durable LMDB store in DIR; by default every\n"
        "          acknowledgement waits for a sync (nothing acknowledged is lost)\n"
        " -f MS    sync the store every MS milliseconds instead (-f0: every time);\n"
        "          a power cut may then lose the last MS ms of acknowledged changes\n"
        " -F       never sync (a power cut may lose recent jobs and damage the store)\n"
        " -l ADDR  listen on address (default is 0.0.0.0); unix:PATH for a UNIX socket\n"
        " -p PORT  listen on port (default is 11300)\n"
        " -u USER  become user and group\n"
        " -z BYTES set the maximum job size in bytes (default is %d);\n"
        "          max allowed is %d bytes\n"
        " -s BYTES accepted for compatibility (the store has no log files to size)\n"
        " -c, -n   accepted for compatibility (the store needs no compaction)\n"
        " -v       show version information\n"
        " -V       increase verbosity\n"
        " -h       show this help\n"
        " --metrics [HOST:]PORT\n"
        "          serve Prometheus metrics on http://HOST:PORT/metrics and a probe\n"
        "          on /healthz (HOST defaults to 127.0.0.1; [V6ADDR]:PORT for IPv6)\n",
        progname, JOB_SIZE_DEFAULT, JOB_SIZE_MAX);
    exit(status);
}

/* Flags that take a value. */
static int
takes_value(char flag)
{
    return flag == 'p' || flag == 'l' || flag == 'u' || flag == 'b' ||
           flag == 'z' || flag == 's' || flag == 'f';
}

static void __attribute__((noreturn))
bad(const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s%s\n", progname, what, arg ? arg : "");
    usage(5);
}

/* Same rule as beanstalkd: a whole decimal number, nothing after it. */
static size_t
parse_size(const char *s)
{
    size_t v;
    char extra;
    if (sscanf(s, "%zu%c", &v, &extra) != 1)
        bad("invalid size: ", s);
    return v;
}

void
options_parse(options *o, char **argv)
{
    o->addr = "0.0.0.0";
    o->port = "11300";
    o->max_job_size = JOB_SIZE_DEFAULT;
    o->binlog_size = BINLOG_SIZE_DEFAULT;
    o->fsync_ms = 0;            /* zero loss unless -f or -F says otherwise */

    char *arg;
    /* Flags may be grouped (-VV) and take their value joined (-p11300) or
     * as the next word (-p 11300). */
    while ((arg = *argv) && arg[0] == '-' && arg[1]) {
        argv++;
        /* Our one long option; beanstalkd has none, so nothing clashes. */
        if (arg[1] == '-') {
            size_t n = strlen("--metrics");
            if (strncmp(arg, "--metrics", n) || (arg[n] && arg[n] != '='))
                bad("unknown option: ", arg);
            const char *val = arg[n] == '=' ? arg + n + 1 : *argv++;
            if (!val)
                bad("option requires an argument: --metrics", NULL);
            if (metrics_parse_spec(val, o->metrics_host, sizeof o->metrics_host,
                                   &o->metrics_port) < 0)
                bad("invalid --metrics address (want PORT, HOST:PORT or [V6ADDR]:PORT): ", val);
            o->metrics = val;
            continue;
        }
        for (char *f = arg + 1; *f; f++) {
            char flag = *f;
            const char *val = NULL;
            if (takes_value(flag)) {
                if (f[1])
                    val = f + 1;
                else if (*argv)
                    val = *argv++;
                else {
                    char msg[] = "flag requires an argument: -?";
                    msg[sizeof msg - 2] = flag;
                    bad(msg, NULL);
                }
            }
            switch (flag) {
            case 'p': o->port = val; break;
            case 'l': o->addr = val; break;
            case 'u': o->user = val; break;
            case 'b': o->dir = val; break;
            case 'z':
                o->max_job_size = parse_size(val);
                if (o->max_job_size > JOB_SIZE_MAX) {
                    fprintf(stderr, "%s: maximum job size was set to %d\n", progname, JOB_SIZE_MAX);
                    o->max_job_size = JOB_SIZE_MAX;
                }
                break;
            case 's': o->binlog_size = parse_size(val); break;
            case 'f': o->fsync_ms = (int64_t)parse_size(val); break;
            case 'F': o->fsync_ms = -1; break;
            case 'c':
            case 'n':
                break;
            case 'V': o->verbosity++; break;
            case 'v':
                printf("beanstalkd %s\n", BS_VERSION);
                exit(0);
            case 'h':
                usage(0);
            default: {
                char msg[] = "unknown flag: -?";
                msg[sizeof msg - 2] = flag;
                bad(msg, NULL);
            }
            }
            if (val)
                break;          /* the value used the rest of this word */
        }
    }
    if (arg)
        bad("unknown argument: ", arg);
}
