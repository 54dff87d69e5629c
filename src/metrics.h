/* The optional metrics endpoint (--metrics [HOST:]PORT): an HTTP listener on
 * the server's event loop serving /metrics in Prometheus' text format and
 * /healthz for probes. It reads the same counters as the stats command; the
 * protocol path does no extra work for it. */
#ifndef BS_METRICS_H
#define BS_METRICS_H

#include <stddef.h>

struct server;
typedef struct metrics metrics;

/* Listen on host and port (as metrics_parse_spec gives them). NULL with a
 * message in err when the address cannot be taken. */
metrics *metrics_start(struct server *srv, const char *host, unsigned port, char *err,
                       size_t errlen);
void metrics_stop(metrics *m);

/* Split spec: "PORT" (host 127.0.0.1), "HOST:PORT" or "[V6ADDR]:PORT"; -1 if
 * malformed. host gets at most hostlen bytes, port is 1..65535. */
int metrics_parse_spec(const char *spec, char *host, size_t hostlen, unsigned *port);

#endif
