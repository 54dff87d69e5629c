#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"
#include "stats.h"
#include "util.h"

#define LIT(s) s, sizeof(s) - 1

/* ---- replies ---- */

/* A reply that cannot be buffered (no memory) ends the session: a client
 * missing one reply would pair every later reply with the wrong command. */
static void
reply(session *s, const char *msg, size_t len)
{
    if (buf_append(&s->out, msg, len) < 0)
        s->state = SS_CLOSE;
}

static void
reply_fmt(session *s, const char *fmt, unsigned long long v)
{
    if (buf_printf(&s->out, fmt, v) < 0)
        s->state = SS_CLOSE;
}

static void
reply_job(proto *p, session *s, const char *word, const job *j)
{
    const char *body = queue_body(p->q, j);
    if (!body) {
        reply(s, LIT("INTERNAL_ERROR\r\n"));
        return;
    }
    if (buf_reserve(&s->out, 64 + (size_t)j->body_size + 2) < 0) {
        s->state = SS_CLOSE;
        return;
    }
    buf_printf(&s->out, "%s %llu %u\r\n", word, (unsigned long long)j->id, j->body_size);
    buf_append(&s->out, body, (size_t)j->body_size + 2);
}

/* "OK <bytes>\r\n" and a YAML document built in yaml (which ends in CRLF). */
static void
reply_yaml(session *s, buf *yaml)
{
    if (!yaml->data) {
        reply(s, LIT("OUT_OF_MEMORY\r\n"));
        return;
    }
    reply_fmt(s, "OK %llu\r\n", (unsigned long long)(buf_pending(yaml) - 2));
    reply(s, yaml->data + yaml->off, buf_pending(yaml));
    buf_free(yaml);
}

/* ---- sessions ---- */

int
proto_init(proto *p, queue *q)
{
    memset(p, 0, sizeof *p);
    p->q = q;
    p->max_job_size = 65535;
    p->started_at = now_ns();
    unsigned char rnd[8] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    for (int i = 0; i < 8; i++)
        snprintf(p->instance_id + 2 * i, 3, "%02x", rnd[i]);
    return 0;
}

int
session_open(proto *p, session *s, void *owner)
{
    memset(s, 0, sizeof *s);
    if (client_init(p->q, &s->cl, owner) < 0)
        return -1;
    s->state = SS_LINE;
    p->cur_conns++;
    p->total_conns++;
    return 0;
}

void
session_close(proto *p, session *s, int64_t now)
{
    client_release(p->q, &s->cl, now);
    free(s->body);
    s->body = NULL;
    buf_free(&s->out);
    p->cur_conns--;
}

/* ---- commands ----
 * Each handler gets the arguments: the rest of the line after the command's
 * prefix, NUL-terminated. Counters go up only once the arguments parsed, as
 * in beanstalkd. */

typedef void cmd_fn(proto *p, session *s, const char *args, int64_t now);

static void
bad_format(session *s)
{
    reply(s, LIT("BAD_FORMAT\r\n"));
}

static int64_t
secs(uint32_t n)
{
    return (int64_t)n * NS_PER_SEC;
}

static void
discard_body(session *s, uint64_t n, const char *msg)
{
    s->state = SS_DISCARD_BODY;
    s->discard_left = n;
    s->discard_reply = msg;
}

static void
cmd_put(proto *p, session *s, const char *args, int64_t now)
{
    uint32_t pri, delay, ttr, size;
    const char *e;
    UNUSED(now);
    if (parse_u32(args, &pri, &e) < 0 || parse_u32(e, &delay, &e) < 0 ||
        parse_u32(e, &ttr, &e) < 0 || parse_u32(e, &size, &e) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_PUT]++;
    /* beanstalkd checks the size before trailing garbage: a too-big body is
     * skipped even on a malformed line, while a malformed line with a valid
     * size leaves the body to be read as commands. */
    if (size > p->max_job_size) {
        discard_body(s, (uint64_t)size + 2, "JOB_TOO_BIG\r\n");
        return;
    }
    if (*e != '\0') {
        bad_format(s);
        return;
    }
    client_mark_producer(p->q, &s->cl);
    s->put_pri = pri;
    s->put_delay = secs(delay);
    s->put_ttr = secs(ttr);
    s->put_size = size;
    s->have = 0;
    s->state = SS_BODY;
}

/* The whole body (size + 2 bytes) is at body. */
static void
finish_put(proto *p, session *s, const char *body, int64_t now)
{
    s->state = SS_LINE;
    if (body[s->put_size] != '\r' || body[s->put_size + 1] != '\n') {
        queue_skip_id(p->q);
        reply(s, LIT("EXPECTED_CRLF\r\n"));
        return;
    }
    if (p->draining) {
        queue_skip_id(p->q);
        reply(s, LIT("DRAINING\r\n"));
        return;
    }
    uint64_t id = 0;
    switch (queue_put(p->q, &s->cl, s->put_pri, s->put_delay, s->put_ttr, body,
                      s->put_size, now, &id)) {
    case Q_OK:
        reply_fmt(s, "INSERTED %llu\r\n", (unsigned long long)id);
        return;
    case Q_BURIED:
        reply_fmt(s, "BURIED %llu\r\n", (unsigned long long)id);
        return;
    default:
        reply(s, LIT("OUT_OF_MEMORY\r\n"));
    }
}

static void
peek_reply(proto *p, session *s, const job *j)
{
    if (j)
        reply_job(p, s, "FOUND", j);
    else
        reply(s, LIT("NOT_FOUND\r\n"));
}

static void
cmd_peek(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    UNUSED(now);
    if (parse_u64(args, &id, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_PEEK]++;
    peek_reply(p, s, queue_find(p->q, id));
}

static void
cmd_peek_ready(proto *p, session *s, const char *args, int64_t now)
{
    UNUSED(args);
    UNUSED(now);
    p->op_ct[OP_PEEK_READY]++;
    peek_reply(p, s, heap_top(&s->cl.use->ready));
}

static void
cmd_peek_delayed(proto *p, session *s, const char *args, int64_t now)
{
    UNUSED(args);
    UNUSED(now);
    p->op_ct[OP_PEEK_DELAYED]++;
    peek_reply(p, s, heap_top(&s->cl.use->delay));
}

static void
cmd_peek_buried(proto *p, session *s, const char *args, int64_t now)
{
    UNUSED(args);
    UNUSED(now);
    p->op_ct[OP_PEEK_BURIED]++;
    peek_reply(p, s, s->cl.use->buried_head);
}

static void
reserve(proto *p, session *s, int64_t timeout, int64_t now)
{
    job *j = NULL;
    switch (queue_reserve(p->q, &s->cl, timeout, now, &j)) {
    case Q_OK:
        reply_job(p, s, "RESERVED", j);
        return;
    case Q_DEADLINE_SOON:
        reply(s, LIT("DEADLINE_SOON\r\n"));
        return;
    case Q_TIMED_OUT:
        reply(s, LIT("TIMED_OUT\r\n"));
        return;
    case Q_WAITING:
        s->state = SS_WAIT;
        return;
    default:
        reply(s, LIT("OUT_OF_MEMORY\r\n"));
    }
}

static void
cmd_reserve(proto *p, session *s, const char *args, int64_t now)
{
    UNUSED(args);
    p->op_ct[OP_RESERVE]++;
    reserve(p, s, -1, now);
}

static void
cmd_reserve_timeout(proto *p, session *s, const char *args, int64_t now)
{
    uint32_t t;
    const char *e;
    /* Like beanstalkd 1.13: bytes after the number are ignored. */
    if (parse_u32(args, &t, &e) < 0 || t > INT_MAX) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_RESERVE_TIMEOUT]++;
    reserve(p, s, secs(t), now);
}

static void
cmd_reserve_job(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    job *j = NULL;
    if (parse_u64(args, &id, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_RESERVE_JOB]++;
    switch (queue_reserve_job(p->q, &s->cl, id, now, &j)) {
    case Q_OK:
        reply_job(p, s, "RESERVED", j);
        return;
    case Q_NOT_FOUND:
        reply(s, LIT("NOT_FOUND\r\n"));
        return;
    default:
        reply(s, LIT("OUT_OF_MEMORY\r\n"));
    }
}

static void
simple_result(session *s, int r, const char *ok, size_t oklen)
{
    switch (r) {
    case Q_OK:
        reply(s, ok, oklen);
        return;
    case Q_NOT_FOUND:
        reply(s, LIT("NOT_FOUND\r\n"));
        return;
    case Q_BURIED:
        reply(s, LIT("BURIED\r\n"));
        return;
    case Q_NO_MEMORY:
        reply(s, LIT("OUT_OF_MEMORY\r\n"));
        return;
    default:
        reply(s, LIT("INTERNAL_ERROR\r\n"));
    }
}

static void
cmd_delete(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    UNUSED(now);
    if (parse_u64(args, &id, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_DELETE]++;
    simple_result(s, queue_delete(p->q, &s->cl, id), LIT("DELETED\r\n"));
}

static void
cmd_release(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    uint32_t pri, delay;
    const char *e;
    if (parse_u64(args, &id, &e) < 0 || parse_u32(e, &pri, &e) < 0 ||
        parse_u32(e, &delay, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_RELEASE]++;
    simple_result(s, queue_release(p->q, &s->cl, id, pri, secs(delay), now),
                  LIT("RELEASED\r\n"));
}

static void
cmd_bury(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    uint32_t pri;
    const char *e;
    UNUSED(now);
    if (parse_u64(args, &id, &e) < 0 || parse_u32(e, &pri, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_BURY]++;
    simple_result(s, queue_bury(p->q, &s->cl, id, pri), LIT("BURIED\r\n"));
}

static void
cmd_kick(proto *p, session *s, const char *args, int64_t now)
{
    char *e;
    /* beanstalkd reads the count with strtoul and keeps 32 bits of it: signs,
     * other leading white space and trailing bytes all pass. */
    errno = 0;
    unsigned long n = strtoul(args, &e, 10);
    if (e == args || errno) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_KICK]++;
    reply_fmt(s, "KICKED %llu\r\n",
              (unsigned long long)queue_kick(p->q, s->cl.use, (unsigned)n, now));
}

static void
cmd_kick_job(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    if (parse_u64(args, &id, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_KICK_JOB]++;
    simple_result(s, queue_kick_job(p->q, id, now), LIT("KICKED\r\n"));
}

static void
cmd_touch(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    if (parse_u64(args, &id, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_TOUCH]++;
    simple_result(s, queue_touch(p->q, &s->cl, id, now), LIT("TOUCHED\r\n"));
}

static void
cmd_stats(proto *p, session *s, const char *args, int64_t now)
{
    buf yaml = {0};
    UNUSED(args);
    p->op_ct[OP_STATS]++;
    stats_server(p, &yaml, now);
    reply_yaml(s, &yaml);
}

static void
cmd_stats_job(proto *p, session *s, const char *args, int64_t now)
{
    uint64_t id;
    buf yaml = {0};
    if (parse_u64(args, &id, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_STATS_JOB]++;
    job *j = queue_find(p->q, id);
    if (!j) {
        reply(s, LIT("NOT_FOUND\r\n"));
        return;
    }
    stats_job(j, &yaml, now);
    reply_yaml(s, &yaml);
}

/* The whole argument must be a valid tube name. */
static int
tube_arg(session *s, const char *args, size_t *len)
{
    *len = strlen(args);
    if (!tube_name_valid(args, *len)) {
        bad_format(s);
        return -1;
    }
    return 0;
}

static void
cmd_stats_tube(proto *p, session *s, const char *args, int64_t now)
{
    size_t len;
    buf yaml = {0};
    if (tube_arg(s, args, &len) < 0)
        return;
    p->op_ct[OP_STATS_TUBE]++;
    tube *t = tube_find(&p->q->tubes, args, len);
    if (!t) {
        reply(s, LIT("NOT_FOUND\r\n"));
        return;
    }
    stats_tube(t, &yaml, now);
    reply_yaml(s, &yaml);
}

static void
cmd_list_tubes(proto *p, session *s, const char *args, int64_t now)
{
    buf yaml = {0};
    UNUSED(args);
    UNUSED(now);
    p->op_ct[OP_LIST_TUBES]++;
    stats_list_tubes(p->q->tubes.list, p->q->tubes.len, &yaml);
    reply_yaml(s, &yaml);
}

static void
cmd_list_tubes_watched(proto *p, session *s, const char *args, int64_t now)
{
    buf yaml = {0};
    UNUSED(args);
    UNUSED(now);
    p->op_ct[OP_LIST_TUBES_WATCHED]++;
    stats_list_watched(&s->cl, &yaml);
    reply_yaml(s, &yaml);
}

static void
reply_using(session *s)
{
    const tube *t = s->cl.use;
    if (buf_printf(&s->out, "USING %.*s\r\n", (int)t->name_len, t->name) < 0)
        s->state = SS_CLOSE;
}

static void
cmd_list_tube_used(proto *p, session *s, const char *args, int64_t now)
{
    UNUSED(args);
    UNUSED(now);
    p->op_ct[OP_LIST_TUBE_USED]++;
    reply_using(s);
}

static void
cmd_use(proto *p, session *s, const char *args, int64_t now)
{
    size_t len;
    UNUSED(now);
    if (tube_arg(s, args, &len) < 0)
        return;
    p->op_ct[OP_USE]++;
    if (queue_use(p->q, &s->cl, args, len) != Q_OK) {
        reply(s, LIT("OUT_OF_MEMORY\r\n"));
        return;
    }
    reply_using(s);
}

static void
cmd_watch(proto *p, session *s, const char *args, int64_t now)
{
    size_t len, n = 0;
    UNUSED(now);
    if (tube_arg(s, args, &len) < 0)
        return;
    p->op_ct[OP_WATCH]++;
    if (queue_watch(p->q, &s->cl, args, len, &n) != Q_OK) {
        reply(s, LIT("OUT_OF_MEMORY\r\n"));
        return;
    }
    reply_fmt(s, "WATCHING %llu\r\n", (unsigned long long)n);
}

static void
cmd_ignore(proto *p, session *s, const char *args, int64_t now)
{
    size_t len, n = 0;
    UNUSED(now);
    if (tube_arg(s, args, &len) < 0)
        return;
    p->op_ct[OP_IGNORE]++;
    if (queue_ignore(p->q, &s->cl, args, len, &n) == Q_NOT_IGNORED) {
        reply(s, LIT("NOT_IGNORED\r\n"));
        return;
    }
    reply_fmt(s, "WATCHING %llu\r\n", (unsigned long long)n);
}

static void
cmd_quit(proto *p, session *s, const char *args, int64_t now)
{
    UNUSED(args);
    UNUSED(now);
    p->op_ct[OP_QUIT]++;
    s->state = SS_CLOSE;
}

static void
cmd_pause_tube(proto *p, session *s, const char *args, int64_t now)
{
    const char *name, *e;
    size_t len;
    uint32_t delay;
    /* The name is the run of name characters after the command word, which
     * needs no space of its own: "pause-tubefoo 10" pauses foo, as in
     * beanstalkd. */
    if (parse_tube_name(args, &name, &len, &e) < 0 || parse_u32(e, &delay, NULL) < 0) {
        bad_format(s);
        return;
    }
    p->op_ct[OP_PAUSE_TUBE]++;
    if (!tube_name_valid(name, len)) {
        bad_format(s);
        return;
    }
    simple_result(s, queue_pause(p->q, name, len, secs(delay), now), LIT("PAUSED\r\n"));
}

/* The command table. beanstalkd picks a command by the first of these
 * prefixes the line starts with, in this order; the order and the trailing
 * spaces are part of its behaviour (a bare "delete" is UNKNOWN_COMMAND,
 * "reserve-foo" is a malformed reserve, "quitting" quits), so we keep both.
 * exact: the line must be the command word alone, else BAD_FORMAT. */
static const struct command {
    const char *prefix;
    size_t len;
    int exact;
    cmd_fn *run;
} commands[] = {
#define CMD(prefix, exact, fn) { prefix, sizeof(prefix) - 1, exact, fn }
    CMD("put ", 0, cmd_put),
    CMD("peek ", 0, cmd_peek),
    CMD("peek-ready", 1, cmd_peek_ready),
    CMD("peek-delayed", 1, cmd_peek_delayed),
    CMD("peek-buried", 1, cmd_peek_buried),
    CMD("reserve-with-timeout ", 0, cmd_reserve_timeout),
    CMD("reserve-job ", 0, cmd_reserve_job),
    CMD("reserve", 1, cmd_reserve),
    CMD("delete ", 0, cmd_delete),
    CMD("release ", 0, cmd_release),
    CMD("bury ", 0, cmd_bury),
    CMD("kick ", 0, cmd_kick),
    CMD("kick-job ", 0, cmd_kick_job),
    CMD("touch ", 0, cmd_touch),
    CMD("stats-job ", 0, cmd_stats_job),
    CMD("stats-tube ", 0, cmd_stats_tube),
    CMD("stats", 1, cmd_stats),
    CMD("use ", 0, cmd_use),
    CMD("watch ", 0, cmd_watch),
    CMD("ignore ", 0, cmd_ignore),
    CMD("list-tubes-watched", 1, cmd_list_tubes_watched),
    CMD("list-tube-used", 1, cmd_list_tube_used),
    CMD("list-tubes", 1, cmd_list_tubes),
    CMD("quit", 0, cmd_quit),
    CMD("pause-tube", 0, cmd_pause_tube),
#undef CMD
};

static void
dispatch(proto *p, session *s, const char *line, size_t len, int64_t now)
{
    if (strlen(line) != len) {          /* a NUL inside the line */
        bad_format(s);
        return;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *c = &commands[i];
        if (line[0] != c->prefix[0] || strncmp(line, c->prefix, c->len) != 0)
            continue;
        if (c->exact && len != c->len) {
            bad_format(s);
            return;
        }
        c->run(p, s, line + c->len, now);
        return;
    }
    reply(s, LIT("UNKNOWN_COMMAND\r\n"));
}

/* ---- input ---- */

/* Offset of the first CRLF in d[0..n), or -1. */
static ptrdiff_t
find_crlf(const char *d, size_t n)
{
    const char *p = d, *end = d + n;
    while (p + 1 < end && (p = memchr(p, '\r', (size_t)(end - p - 1)))) {
        if (p[1] == '\n')
            return p - d;
        p++;
    }
    return -1;
}

size_t
proto_feed(proto *p, session *s, const char *data, size_t len, int64_t now)
{
    size_t pos = 0;
    while (pos < len && !session_blocked(s)) {
        const char *d = data + pos;
        size_t n = len - pos;
        switch (s->state) {
        case SS_LINE: {
            size_t lim = n < LINE_MAX_BYTES ? n : LINE_MAX_BYTES;
            ptrdiff_t eol = find_crlf(d, lim);
            if (eol < 0) {
                if (n < LINE_MAX_BYTES)
                    return pos;                 /* wait for the rest */
                s->state = SS_DISCARD_LINE;     /* no CRLF within the limit */
                s->prev_cr = d[LINE_MAX_BYTES - 1] == '\r';
                pos += LINE_MAX_BYTES;
                break;
            }
            char line[LINE_MAX_BYTES];
            memcpy(line, d, (size_t)eol);
            line[eol] = '\0';
            pos += (size_t)eol + 2;
            dispatch(p, s, line, (size_t)eol, now);
            break;
        }
        case SS_DISCARD_LINE: {
            size_t used;
            if (s->prev_cr && d[0] == '\n') {
                used = 1;                       /* CRLF split across reads */
            } else {
                ptrdiff_t eol = find_crlf(d, n);
                if (eol < 0) {
                    s->prev_cr = d[n - 1] == '\r';
                    pos = len;
                    break;
                }
                used = (size_t)eol + 2;
            }
            pos += used;
            s->state = SS_LINE;
            bad_format(s);
            break;
        }
        case SS_BODY: {
            size_t need = (size_t)s->put_size + 2 - s->have;
            size_t take = n < need ? n : need;
            if (!s->body && take == need) {     /* whole body in this read */
                pos += need;
                finish_put(p, s, d, now);
                break;
            }
            if (!s->body && !(s->body = malloc((size_t)s->put_size + 2))) {
                discard_body(s, need, "OUT_OF_MEMORY\r\n");
                break;
            }
            memcpy(s->body + s->have, d, take);
            pos += take;
            proto_body_read(p, s, take, now);
            break;
        }
        case SS_DISCARD_BODY: {
            size_t take = n < s->discard_left ? n : (size_t)s->discard_left;
            pos += take;
            s->discard_left -= take;
            if (s->discard_left == 0) {
                s->state = SS_LINE;
                reply(s, s->discard_reply, strlen(s->discard_reply));
            }
            break;
        }
        case SS_WAIT:
        case SS_CLOSE:
            return pos;
        }
    }
    return pos;
}

void
proto_body_read(proto *p, session *s, size_t n, int64_t now)
{
    s->have += n;
    if (s->have < (size_t)s->put_size + 2)
        return;
    finish_put(p, s, s->body, now);
    free(s->body);
    s->body = NULL;
    s->have = 0;
}

void
proto_wake(proto *p, session *s, job *j, enum wake_reason why)
{
    s->state = SS_LINE;
    switch (why) {
    case WAKE_RESERVED:
        reply_job(p, s, "RESERVED", j);
        return;
    case WAKE_DEADLINE_SOON:
        reply(s, LIT("DEADLINE_SOON\r\n"));
        return;
    case WAKE_TIMED_OUT:
        reply(s, LIT("TIMED_OUT\r\n"));
        return;
    }
}
