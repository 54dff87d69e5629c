#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define BACKLOG 1024
#define SD_LISTEN_FDS_START 3

static int
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int
listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    if (strlen(path) >= sizeof sa.sun_path) {
        log_warn("unix socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    /* A stale socket from an earlier run is replaced; any other file is not. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_warn("%s exists and is not a socket", path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_errno("socket");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, BACKLOG) < 0) {
        log_errno("cannot listen on unix:%s", path);
        close(fd);
        return -1;
    }
    return fd;
}

int
net_listen(const char *addr, const char *port)
{
    if (addr && strncmp(addr, "unix:", 5) == 0)
        return listen_unix(addr + 5);

    struct addrinfo hints = {0}, *res, *ai;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int r = getaddrinfo(addr, port, &hints, &res);
    if (r != 0) {
        log_warn("cannot resolve %s port %s: %s", addr ? addr : "*", port, gai_strerror(r));
        return -1;
    }
    int fd = -1, err = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, BACKLOG) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        log_errno("cannot listen on %s port %s", addr ? addr : "*", port);
    }
    return fd;
}

int
net_inherited(int *fds, int max)
{
    const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
    if (!pid || !n || strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    long count = strtol(n, NULL, 10);
    if (count <= 0)
        return 0;
    if (count > max)
        count = max;
    for (long i = 0; i < count; i++) {
        int fd = SD_LISTEN_FDS_START + (int)i;
        int listening = 0;
        socklen_t len = sizeof listening;
        errno = 0;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
            log_warn("LISTEN_FDS: descriptor %d is not a listening socket (%s); "
                     "check the service manager's socket unit",
                     fd, errno ? strerror(errno) : "not listening");
            return -1;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        set_nonblock(fd);
        fds[i] = fd;
    }
    /* Children must not think the sockets are theirs. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return (int)count;
}

unsigned
net_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}
