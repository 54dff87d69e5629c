/* Listening sockets: TCP on IPv4/IPv6, UNIX paths, and sockets handed over
 * by systemd (LISTEN_PID/LISTEN_FDS). */
#ifndef BS_NET_H
#define BS_NET_H

/* addr is a host name, an IPv4 or IPv6 address, or "unix:PATH". Returns a
 * listening non-blocking fd, or -1 with a message logged. */
int net_listen(const char *addr, const char *port);

/* Fills fds with the sockets systemd passed us; returns their count
 * (0 when none were passed to this process; -1, with a message logged,
 * when one of them is not a listening socket). */
int net_inherited(int *fds, int max);
/* The TCP port a listening socket is bound to (-p 0 picks one). */
unsigned net_port(int fd);

#endif
