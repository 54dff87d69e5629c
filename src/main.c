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
#include "stats.h"
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

int
main(int argc, char **argv)
{
    options o = {0};
    static server srv;
    UNUSED(argc);

    setvbuf(stderr, NULL, _IOLBF, 0);
    options_parse(&o, argv + 1);
    verbosity = o.verbosity;

    if (o.dir) {
        log_warn("-b %s: the durable store is not available in this build yet; "
                 "refusing to run without the durability you asked for", o.dir);
        return 1;
    }

    rlim_t fds = raise_fd_limit();
    if (server_init(&srv) < 0) {
        log_warn("cannot initialise the server (out of memory?)");
        return 1;
    }
    srv.p.max_job_size = (uint32_t)o.max_job_size;
    srv.p.binlog.max_size = o.binlog_size;

    int inherited[MAX_LISTENERS];
    int n = net_inherited(inherited, MAX_LISTENERS);
    for (int i = 0; i < n; i++)
        if (server_add_listener(&srv, inherited[i]) < 0)
            return 111;
    if (n == 0) {
        int fd = net_listen(o.addr, o.port);
        if (fd < 0 || server_add_listener(&srv, fd) < 0)
            return 111;
    }
    if (o.user)
        drop_privileges(o.user);

    if (n)
        log_info("version %s, pid %d: serving %d socket(s) passed by the service manager; "
                 "jobs in memory only (no -b); max job size %zu bytes; fd limit %llu",
                 BS_VERSION, (int)getpid(), n, o.max_job_size, (unsigned long long)fds);
    else
        log_info("version %s, pid %d: listening on %s%s%s; jobs in memory only (no -b); "
                 "max job size %zu bytes; fd limit %llu",
                 BS_VERSION, (int)getpid(), o.addr,
                 strncmp(o.addr, "unix:", 5) ? " port " : "",
                 strncmp(o.addr, "unix:", 5) ? o.port : "",
                 o.max_job_size, (unsigned long long)fds);

    int status = server_run(&srv);
    server_free(&srv);
    return status;
}
