#include "metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

struct metrics {
    struct evhttp *http;
    server *srv;
};

int
metrics_parse_spec(const char *spec, char *host, size_t hostlen, unsigned *port)
{
    const char *p = spec, *colon;
    size_t n;
    if (*spec == '[') {                 /* [V6ADDR]:PORT */
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':')
            return -1;
        n = (size_t)(end - spec - 1);
        if (n == 0 || n >= hostlen)
            return -1;
        memcpy(host, spec + 1, n);
        host[n] = 0;
        p = end + 2;
    } else if ((colon = strrchr(spec, ':'))) {
        n = (size_t)(colon - spec);
        if (n == 0 || n >= hostlen || memchr(spec, ':', n))
            return -1;
        memcpy(host, spec, n);
        host[n] = 0;
        p = colon + 1;
    } else {
        if (hostlen < sizeof "127.0.0.1")
            return -1;
        strcpy(host, "127.0.0.1");      /* loopback unless told otherwise */
    }
    if (*p < '0' || *p > '9')
        return -1;
    char *end;
    unsigned long v = strtoul(p, &end, 10);
    if (*end || v == 0 || v > 65535)
        return -1;
    *port = (unsigned)v;
    return 0;
}

/* ---- the text format ---- */

static void
family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
one(struct evbuffer *b, const char *name, const char *type, const char *help, uint64_t v)
{
    family(b, name, type, help);
    evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, v);
}

static const struct {
    int op;
    const char *name;
} commands[] = {
    {OP_PUT, "put"}, {OP_PEEK, "peek"}, {OP_PEEK_READY, "peek-ready"},
    {OP_PEEK_DELAYED, "peek-delayed"}, {OP_PEEK_BURIED, "peek-buried"},
    {OP_RESERVE, "reserve"}, {OP_RESERVE_TIMEOUT, "reserve-with-timeout"},
    {OP_RESERVE_JOB, "reserve-job"}, {OP_DELETE, "delete"}, {OP_RELEASE, "release"},
    {OP_USE, "use"}, {OP_WATCH, "watch"}, {OP_IGNORE, "ignore"}, {OP_BURY, "bury"},
    {OP_KICK, "kick"}, {OP_KICK_JOB, "kick-job"}, {OP_TOUCH, "touch"},
    {OP_STATS, "stats"}, {OP_STATS_JOB, "stats-job"}, {OP_STATS_TUBE, "stats-tube"},
    {OP_LIST_TUBES, "list-tubes"}, {OP_LIST_TUBE_USED, "list-tube-used"},
    {OP_LIST_TUBES_WATCHED, "list-tubes-watched"}, {OP_PAUSE_TUBE, "pause-tube"},
    {OP_QUIT, "quit"},
};

/* Tube names are letters, digits and -+/;.$_(): nothing a label value
 * needs to escape. */
static void
tubes(struct evbuffer *b, const queue *q, int64_t now)
{
    tube *const *list = q->tubes.list;
    size_t n = q->tubes.len;
    family(b, "beanstalkd_tube_jobs", "gauge", "Jobs in a tube, by state.");
    for (size_t i = 0; i < n; i++) {
        const tube *t = list[i];
        int l = (int)t->name_len;
        evbuffer_add_printf(b,
            "beanstalkd_tube_jobs{tube=\"%.*s\",state=\"ready\"} %zu\n"
            "beanstalkd_tube_jobs{tube=\"%.*s\",state=\"reserved\"} %" PRIu64 "\n"
            "beanstalkd_tube_jobs{tube=\"%.*s\",state=\"delayed\"} %zu\n"
            "beanstalkd_tube_jobs{tube=\"%.*s\",state=\"buried\"} %zu\n",
            l, t->name, t->ready.len, l, t->name, t->reserved_ct,
            l, t->name, t->delay.len, l, t->name, t->buried_ct);
    }
    family(b, "beanstalkd_tube_jobs_urgent", "gauge",
           "Ready jobs with a priority below 1024 in a tube.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b, "beanstalkd_tube_jobs_urgent{tube=\"%.*s\"} %" PRIu64 "\n",
                            (int)list[i]->name_len, list[i]->name, list[i]->urgent_ct);
    family(b, "beanstalkd_tube_jobs_total", "counter", "Jobs ever put into a tube.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b, "beanstalkd_tube_jobs_total{tube=\"%.*s\"} %" PRIu64 "\n",
                            (int)list[i]->name_len, list[i]->name, list[i]->total_jobs);
    family(b, "beanstalkd_tube_deletes_total", "counter", "Delete commands on a tube's jobs.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b, "beanstalkd_tube_deletes_total{tube=\"%.*s\"} %" PRIu64 "\n",
                            (int)list[i]->name_len, list[i]->name, list[i]->deletes);
    family(b, "beanstalkd_tube_clients", "gauge",
           "Connections using, watching and waiting on a tube.");
    for (size_t i = 0; i < n; i++) {
        const tube *t = list[i];
        int l = (int)t->name_len;
        evbuffer_add_printf(b,
            "beanstalkd_tube_clients{tube=\"%.*s\",role=\"using\"} %" PRIu32 "\n"
            "beanstalkd_tube_clients{tube=\"%.*s\",role=\"watching\"} %" PRIu32 "\n"
            "beanstalkd_tube_clients{tube=\"%.*s\",role=\"waiting\"} %zu\n",
            l, t->name, t->using_ct, l, t->name, t->watching_ct, l, t->name, t->waiting_ct);
    }
    family(b, "beanstalkd_tube_paused_seconds", "gauge",
           "Seconds a paused tube stays paused (0 when running).");
    for (size_t i = 0; i < n; i++) {
        const tube *t = list[i];
        int64_t left = t->pause && t->unpause_at > now ? (t->unpause_at - now) / NS_PER_SEC : 0;
        evbuffer_add_printf(b, "beanstalkd_tube_paused_seconds{tube=\"%.*s\"} %" PRId64 "\n",
                            (int)t->name_len, t->name, left);
    }
}

static void
store_part(struct evbuffer *b, store *st)
{
    store_metrics m;
    store_get_metrics(st, &m);
    family(b, "beanstalkd_store_info", "gauge", "The store's sync mode (-f/-F).");
    evbuffer_add_printf(b, "beanstalkd_store_info{sync_mode=\"%s\"} 1\n", m.mode);
    one(b, "beanstalkd_store_size_bytes", "gauge", "Bytes of the store's data file in use.",
        m.size);
    one(b, "beanstalkd_store_map_size_bytes", "gauge", "Size of the store's memory map.",
        m.map_size);
    one(b, "beanstalkd_store_commits_total", "counter", "Store transactions committed.",
        m.commits);
    one(b, "beanstalkd_store_syncs_total", "counter", "Store commits made durable by a sync.",
        m.syncs);
    one(b, "beanstalkd_store_changes_total", "counter", "Job and tube changes written.",
        m.changes);
    family(b, "beanstalkd_store_commit_seconds", "histogram",
           "Time to commit one store transaction (its writes and syncs).");
    uint64_t cum = 0;
    for (int i = 0; i < STORE_LAT_BUCKETS - 1; i++) {
        cum += m.commit.bucket[i];
        evbuffer_add_printf(b, "beanstalkd_store_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                            store_lat_bounds[i], cum);
    }
    evbuffer_add_printf(b,
        "beanstalkd_store_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
        "beanstalkd_store_commit_seconds_sum %.9f\n"
        "beanstalkd_store_commit_seconds_count %" PRIu64 "\n",
        m.commit.count, m.commit.sum, m.commit.count);
}

static void
render(struct evbuffer *b, server *srv)
{
    const proto *p = &srv->p;
    const queue_stats *st = &srv->q.st;
    int64_t now = now_ns();

    family(b, "beanstalkd_jobs", "gauge", "Jobs by state (current-jobs-* in stats).");
    evbuffer_add_printf(b,
        "beanstalkd_jobs{state=\"ready\"} %" PRIu64 "\n"
        "beanstalkd_jobs{state=\"reserved\"} %" PRIu64 "\n"
        "beanstalkd_jobs{state=\"delayed\"} %" PRIu64 "\n"
        "beanstalkd_jobs{state=\"buried\"} %" PRIu64 "\n",
        st->ready, st->reserved, st->delayed, st->buried);
    one(b, "beanstalkd_jobs_urgent", "gauge", "Ready jobs with a priority below 1024.",
        st->urgent);
    one(b, "beanstalkd_jobs_total", "counter", "Jobs ever put.", st->total_jobs);
    one(b, "beanstalkd_job_timeouts_total", "counter", "Reservations whose TTR ran out.",
        st->timeouts);
    family(b, "beanstalkd_commands_total", "counter", "Commands received, by command.");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        evbuffer_add_printf(b, "beanstalkd_commands_total{command=\"%s\"} %" PRIu64 "\n",
                            commands[i].name, p->op_ct[commands[i].op]);
    one(b, "beanstalkd_connections", "gauge", "Open client connections.", p->cur_conns);
    one(b, "beanstalkd_connections_total", "counter", "Client connections ever accepted.",
        p->total_conns);
    family(b, "beanstalkd_clients", "gauge",
           "Connections that have put (producers), reserved (workers) or are waiting.");
    evbuffer_add_printf(b,
        "beanstalkd_clients{role=\"producer\"} %" PRIu64 "\n"
        "beanstalkd_clients{role=\"worker\"} %" PRIu64 "\n"
        "beanstalkd_clients{role=\"waiting\"} %" PRIu64 "\n",
        st->producers, st->workers, st->waiting);
    one(b, "beanstalkd_tubes", "gauge", "Tubes that exist.", srv->q.tubes.len);
    one(b, "beanstalkd_draining", "gauge", "1 while in drain mode (SIGUSR1).",
        p->draining ? 1 : 0);
    one(b, "beanstalkd_uptime_seconds", "gauge", "Seconds since start.",
        (uint64_t)((now - p->started_at) / NS_PER_SEC));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    family(b, "process_cpu_seconds_total", "counter", "User and system CPU time.");
    evbuffer_add_printf(b, "process_cpu_seconds_total %.6f\n",
                        (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    long size = 0, pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &pages) != 2)
            pages = 0;
        fclose(f);
    }
    one(b, "process_resident_memory_bytes", "gauge", "Resident memory.",
        (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE));
    tubes(b, &srv->q, now);
    if (srv->store) {
        store_part(b, srv->store);
        one(b, "beanstalkd_store_gather_waits_total", "counter",
            "Waits before a commit for clients the last commit answered (see docs/durability.md).",
            srv->gather.waits);
        one(b, "beanstalkd_store_gathered_total", "counter",
            "Clients heard from during those waits, whose changes joined the commit.",
            srv->gather.gathered);
    }
}

/* ---- requests ---- */

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *type,
      struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

/* Serving: healthy. Draining still serves everything but puts. */
static void
health(struct evbuffer *b, server *srv)
{
    evbuffer_add_printf(b, "%s\n", srv->p.draining ? "ok draining" : "ok");
}

/* Answer req with what fill writes, as text of the given type. */
static void
serve(struct evhttp_request *req, metrics *m, const char *type,
      void (*fill)(struct evbuffer *, server *))
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, HTTP_SERVUNAVAIL, "out of memory");
        return;
    }
    fill(b, m->srv);
    reply(req, HTTP_OK, "OK", type, b);
    evbuffer_free(b);
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
    serve(req, arg, "text/plain; version=0.0.4; charset=utf-8", render);
}

static void
on_healthz(struct evhttp_request *req, void *arg)
{
    serve(req, arg, "text/plain; charset=utf-8", health);
}

static void
on_other(struct evhttp_request *req, void *arg)
{
    UNUSED(arg);
    evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics or /healthz");
}

metrics *
metrics_start(server *srv, const char *host, unsigned port, char *err, size_t errlen)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->http = evhttp_new(srv->base))) {
        free(m);
        snprintf(err, errlen, "out of memory starting the metrics listener");
        return NULL;
    }
    m->srv = srv;
    /* Scrapers and probes send small GETs; anything else is refused early. */
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(m->http, 16384);
    evhttp_set_max_body_size(m->http, 0);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_cb(m->http, "/metrics", on_metrics, m);
    evhttp_set_cb(m->http, "/healthz", on_healthz, m);
    evhttp_set_gencb(m->http, on_other, m);
    if (!evhttp_bind_socket_with_handle(m->http, host, (uint16_t)port)) {
        snprintf(err, errlen, "cannot listen for metrics on %s port %u (in use, or not a local "
                 "address?)", host, port);
        metrics_stop(m);
        return NULL;
    }
    return m;
}

void
metrics_stop(metrics *m)
{
    if (!m)
        return;
    if (m->http)
        evhttp_free(m->http);
    free(m);
}
