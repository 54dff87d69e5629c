#include "stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "util.h"

/* Ends the document; on any earlier failure, empties it. */
static void
finish(buf *out, int failed)
{
    if (failed || buf_append(out, "\r\n", 2) < 0)
        buf_free(out);
}

void
stats_server(const proto *p, buf *out, int64_t now)
{
    const queue_stats *st = &p->q->st;
    const uint64_t *op = p->op_ct;
    struct rusage ru = {0};
    struct utsname un = {0};
    getrusage(RUSAGE_SELF, &ru);
    uname(&un);
    int f = buf_printf(out,
        "---\n"
        "current-jobs-urgent: %" PRIu64 "\n"
        "current-jobs-ready: %" PRIu64 "\n"
        "current-jobs-reserved: %" PRIu64 "\n"
        "current-jobs-delayed: %" PRIu64 "\n"
        "current-jobs-buried: %" PRIu64 "\n",
        st->urgent, st->ready, st->reserved, st->delayed, st->buried);
    f |= buf_printf(out,
        "cmd-put: %" PRIu64 "\n"
        "cmd-peek: %" PRIu64 "\n"
        "cmd-peek-ready: %" PRIu64 "\n"
        "cmd-peek-delayed: %" PRIu64 "\n"
        "cmd-peek-buried: %" PRIu64 "\n"
        "cmd-reserve: %" PRIu64 "\n"
        "cmd-reserve-with-timeout: %" PRIu64 "\n"
        "cmd-delete: %" PRIu64 "\n"
        "cmd-release: %" PRIu64 "\n"
        "cmd-use: %" PRIu64 "\n"
        "cmd-watch: %" PRIu64 "\n"
        "cmd-ignore: %" PRIu64 "\n"
        "cmd-bury: %" PRIu64 "\n"
        "cmd-kick: %" PRIu64 "\n"
        "cmd-touch: %" PRIu64 "\n",
        op[OP_PUT], op[OP_PEEK], op[OP_PEEK_READY], op[OP_PEEK_DELAYED],
        op[OP_PEEK_BURIED], op[OP_RESERVE], op[OP_RESERVE_TIMEOUT],
        op[OP_DELETE], op[OP_RELEASE], op[OP_USE], op[OP_WATCH], op[OP_IGNORE],
        op[OP_BURY], op[OP_KICK], op[OP_TOUCH]);
    f |= buf_printf(out,
        "cmd-stats: %" PRIu64 "\n"
        "cmd-stats-job: %" PRIu64 "\n"
        "cmd-stats-tube: %" PRIu64 "\n"
        "cmd-list-tubes: %" PRIu64 "\n"
        "cmd-list-tube-used: %" PRIu64 "\n"
        "cmd-list-tubes-watched: %" PRIu64 "\n"
        "cmd-pause-tube: %" PRIu64 "\n"
        "job-timeouts: %" PRIu64 "\n"
        "total-jobs: %" PRIu64 "\n"
        "max-job-size: %" PRIu32 "\n"
        "current-tubes: %zu\n"
        "current-connections: %" PRIu64 "\n"
        "current-producers: %" PRIu64 "\n"
        "current-workers: %" PRIu64 "\n"
        "current-waiting: %" PRIu64 "\n"
        "total-connections: %" PRIu64 "\n",
        op[OP_STATS], op[OP_STATS_JOB], op[OP_STATS_TUBE], op[OP_LIST_TUBES],
        op[OP_LIST_TUBE_USED], op[OP_LIST_TUBES_WATCHED], op[OP_PAUSE_TUBE],
        st->timeouts, st->total_jobs, p->max_job_size, p->q->tubes.len,
        p->cur_conns, st->producers, st->workers, st->waiting, p->total_conns);
    f |= buf_printf(out,
        "pid: %ld\n"
        "version: \"%s\"\n"
        "rusage-utime: %ld.%06ld\n"
        "rusage-stime: %ld.%06ld\n"
        "uptime: %" PRId64 "\n",
        (long)getpid(), BS_VERSION,
        (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
        (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
        (now - p->started_at) / NS_PER_SEC);
    f |= buf_printf(out,
        "binlog-oldest-index: %" PRIu64 "\n"
        "binlog-current-index: %" PRIu64 "\n"
        "binlog-records-migrated: %" PRIu64 "\n"
        "binlog-records-written: %" PRIu64 "\n"
        "binlog-max-size: %" PRIu64 "\n",
        p->binlog.oldest_index, p->binlog.current_index,
        p->binlog.records_migrated, p->store_writes ? p->store_writes(p->store_ctx) : 0,
        p->binlog.max_size);
    f |= buf_printf(out,
        "draining: %s\n"
        "id: %s\n"
        "hostname: \"%s\"\n"
        "os: \"%s\"\n"
        "platform: \"%s\"\n",
        p->draining ? "true" : "false", p->instance_id,
        un.nodename, un.version, un.machine);
    if (p->store_stats)
        p->store_stats(p->store_ctx, out);
    finish(out, f);
}

void
stats_job(const job *j, buf *out, int64_t now)
{
    int64_t left = 0;
    if (j->state == JOB_RESERVED || j->state == JOB_DELAYED)
        left = (j->deadline - now) / NS_PER_SEC;
    int f = buf_printf(out,
        "---\n"
        "id: %" PRIu64 "\n"
        "tube: \"%.*s\"\n"
        "state: %s\n"
        "pri: %" PRIu32 "\n"
        "age: %" PRId64 "\n"
        "delay: %" PRId64 "\n"
        "ttr: %" PRId64 "\n"
        "time-left: %" PRId64 "\n"
        "file: 0\n"
        "reserves: %" PRIu32 "\n"
        "timeouts: %" PRIu32 "\n"
        "releases: %" PRIu32 "\n"
        "buries: %" PRIu32 "\n"
        "kicks: %" PRIu32 "\n",
        j->id, (int)j->tube->name_len, j->tube->name, job_state_name(j), j->pri,
        (now - j->created_at) / NS_PER_SEC, (int64_t)j->delay_s,
        (int64_t)j->ttr_s, left, j->reserves, j->timeouts, j->releases,
        j->buries, j->kicks);
    finish(out, f);
}

void
stats_tube(const tube *t, buf *out, int64_t now)
{
    int64_t left = 0;
    if (t->pause && t->unpause_at > now)
        left = (t->unpause_at - now) / NS_PER_SEC;
    int f = buf_printf(out,
        "---\n"
        "name: \"%.*s\"\n"
        "current-jobs-urgent: %" PRIu64 "\n"
        "current-jobs-ready: %zu\n"
        "current-jobs-reserved: %" PRIu64 "\n"
        "current-jobs-delayed: %zu\n"
        "current-jobs-buried: %zu\n"
        "total-jobs: %" PRIu64 "\n"
        "current-using: %" PRIu32 "\n"
        "current-watching: %" PRIu32 "\n"
        "current-waiting: %zu\n"
        "cmd-delete: %" PRIu64 "\n"
        "cmd-pause-tube: %" PRIu64 "\n"
        "pause: %" PRId64 "\n"
        "pause-time-left: %" PRId64 "\n",
        (int)t->name_len, t->name, t->urgent_ct, t->ready.len, t->reserved_ct,
        t->delay.len, t->buried_ct, t->total_jobs, t->using_ct, t->watching_ct,
        t->waiting_ct, t->deletes, t->pause_ct, t->pause / NS_PER_SEC, left);
    finish(out, f);
}

static int
list_item(buf *out, const tube *t)
{
    return buf_printf(out, "- %.*s\n", (int)t->name_len, t->name);
}

void
stats_list_tubes(tube *const *list, size_t n, buf *out)
{
    int f = buf_append(out, "---\n", 4);
    for (size_t i = 0; i < n; i++)
        f |= list_item(out, list[i]);
    finish(out, f);
}

void
stats_list_watched(const client *c, buf *out)
{
    int f = buf_append(out, "---\n", 4);
    for (size_t i = 0; i < c->nwatch; i++)
        f |= list_item(out, c->watches[i]->tube);
    finish(out, f);
}
