/* beanstalkd: start-up (options, sockets, privileges) and shutdown. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "net.h"
#include "options.h"
#include "server.h"
#include "metrics.h"
#include "stats.h"
#include "store.h"
#include "util.h"

/* Thousands of idle connections need as many descriptors: take the hard
 * limit when we may, and say what we got. */
static rlim_t
raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 10000)
        log_warn("open-file limit is %llu and cannot be raised further here: "
                 "at most about that many clients can connect at once "
                 "(raise the hard limit, e.g. LimitNOFILE= or ulimit -Hn)",
                 (unsigned long long)rl.rlim_cur);
    return rl.rlim_cur;
}

static void
drop_privileges(const char *user)
{
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        if (errno)
            log_errno("getpwnam(\"%s\")", user);
        else
            log_warn("getpwnam(\"%s\"): no such user", user);
        exit(errno ? 32 : 33);
    }
    if (setgroups(0, NULL) < 0 && errno != EPERM) {
        log_errno("setgroups");
        exit(34);
    }
    if (setgid(pw->pw_gid) < 0) {
        log_errno("setgid(%d \"%s\")", (int)pw->pw_gid, user);
        exit(34);
    }
    if (setuid(pw->pw_uid) < 0) {
        log_errno("setuid(%d \"%s\")", (int)pw->pw_uid, user);
        exit(34);
    }
}

/* Open and load the store; describe its durability for the start-up line. */
static int
open_store(server *srv, const options *o, char *desc, size_t desclen)
{
    char err[1024];
    enum store_mode mode = o->fsync_ms < 0 ? STORE_SYNC_NEVER
                         : o->fsync_ms == 0 ? STORE_SYNC_ALWAYS : STORE_SYNC_INTERVAL;
    store *st = store_open(o->dir, mode, o->fsync_ms, err, sizeof err);
    if (!st) {
        log_warn("%s", err);
        return -1;
    }
    int64_t t0 = now_ns();
    if (store_load(st, &srv->q, err, sizeof err) < 0) {
        log_warn("%s", err);
        store_close(st);
        return -1;
    }
    server_attach_store(srv, st);
    const queue_stats *q = &srv->q.st;
    const char *how = mode == STORE_SYNC_ALWAYS
        ? "every acknowledgement waits for a sync (nothing acknowledged is lost)"
        : mode == STORE_SYNC_NEVER ? "never synced (-F)" : NULL;
    char interval[128];
    if (!how) {
        snprintf(interval, sizeof interval, "synced every %lld ms (a power cut may lose "
                 "the last %lld ms)", (long long)o->fsync_ms, (long long)o->fsync_ms);
        how = interval;
    }
    snprintf(desc, desclen, "store %s: %s; loaded %llu ready, %llu delayed, %llu buried "
             "jobs in %lld ms", o->dir, how, (unsigned long long)q->ready,
             (unsigned long long)q->delayed, (unsigned long long)q->buried,
             (long long)((now_ns() - t0) / NS_PER_MS));
    return 0;
}

int
main(int argc, char **argv)
{
    options o = {0};
    static server srv;
    UNUSED(argc);

    setvbuf(stderr, NULL, _IOLBF, 0);
    options_parse(&o, argv + 1);
    verbosity = o.verbosity;

    rlim_t fds = raise_fd_limit();
    if (server_init(&srv) < 0) {
        log_warn("cannot initialise the server (out of memory?)");
        return 1;
    }
    srv.p.max_job_size = (uint32_t)o.max_job_size;
    srv.p.binlog.max_size = o.binlog_size;

    int inherited[MAX_LISTENERS];
    int n = net_inherited(inherited, MAX_LISTENERS);
    if (n < 0)
        return 111;
    for (int i = 0; i < n; i++)
        if (server_add_listener(&srv, inherited[i]) < 0)
            return 111;
    if (n == 0) {
        int fd = net_listen(o.addr, o.port);
        if (fd < 0 || server_add_listener(&srv, fd) < 0)
            return 111;
    }
    /* The metrics listener binds before privileges go, like the main one. */
    metrics *mx = NULL;
    char mxdesc[300] = "";
    if (o.metrics) {
        char err[512];
        if (!(mx = metrics_start(&srv, o.metrics_host, o.metrics_port, err, sizeof err))) {
            log_warn("%s", err);
            return 111;
        }
        int v6 = strchr(o.metrics_host, ':') != NULL;
        snprintf(mxdesc, sizeof mxdesc, "; metrics on http://%s%s%s:%u/metrics",
                 v6 ? "[" : "", o.metrics_host, v6 ? "]" : "", o.metrics_port);
    }
    /* As beanstalkd does: drop privileges before the store is opened, so
     * its files belong to the user the server runs as. */
    if (o.user)
        drop_privileges(o.user);

    char durability[512];
    if (o.dir && open_store(&srv, &o, durability, sizeof durability) < 0)
        return 1;
    if (!o.dir)
        snprintf(durability, sizeof durability, "jobs in memory only (no -b)");

    char where[256];
    if (n)
        snprintf(where, sizeof where, "%d socket(s) passed by the service manager", n);
    else if (!strncmp(o.addr, "unix:", 5))
        snprintf(where, sizeof where, "%s", o.addr);
    else
        snprintf(where, sizeof where, "%s port %u", o.addr, net_port(srv.ls[0].fd));
    log_info("version %s, pid %d: listening on %s; %s; max job size %zu bytes; fd limit %llu%s",
             BS_VERSION, (int)getpid(), where, durability, o.max_job_size,
             (unsigned long long)fds, mxdesc);
    if (o.dir && o.fsync_ms < 0)
        log_warn("WARNING: -F: the store is never synced; a power cut may lose recent "
                 "jobs and may leave the store damaged beyond opening");

    int status = server_run(&srv);
    metrics_stop(mx);
    server_free(&srv);
    return status;
}
