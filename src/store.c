#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "journal.h"
#include "schema.h"
#include "store_env.h"
#include "util.h"


/* Puts are refused (OUT_OF_MEMORY) while the disk has less than this free,
 * so deletes, which need a few pages too, keep working on a full disk. */
#define DISK_HEADROOM ((uint64_t)32 << 20)

struct store {
    store_env e;
    MDB_txn *txn;               /* the write transaction, when one is open */
    MDB_txn *rtxn;              /* for reading bodies when no write is open */
    int rtxn_live;
    enum store_mode mode;
    int64_t interval_ns;
    int64_t dirty_since;        /* interval mode: first uncommitted change */
    int64_t last_commit_ns;     /* how long the last commit took */
    int lockfd;
    int datafd;                 /* data.mdb, for zero-filling ahead */
    size_t zeroed;              /* data.mdb is written (zeros or data) up to here */
    journal jr;
    int have_journal;
    queue *q;
    uint64_t next_id_stored;
    size_t mapsize, used_at_begin, txn_bytes;
    uint64_t disk_free;
    int64_t disk_checked;
    uint64_t commits, syncs, changes, writes;
    store_lat lat;              /* commit durations */
    int failed;
    char error[256];
    char dir[];
};

const double store_lat_bounds[STORE_LAT_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1,
};

static void
lat_add(store_lat *l, int64_t ns)
{
    double sec = (double)ns / 1e9;
    size_t i = 0;
    while (i < STORE_LAT_BUCKETS - 1 && sec > store_lat_bounds[i])
        i++;
    l->bucket[i]++;
    l->count++;
    l->sum += sec;
}

static int
fail(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    s->failed = 1;
    return -1;
}

const char *
store_error(const store *s)
{
    return s->error;
}

/* ---- opening ---- */

/* Journal replay writes straight into the open write transaction. */
static int
apply_record(void *ctx, int db, int del, const void *key, size_t klen, const void *val, size_t vlen)
{
    store *s = ctx;
    if (db < 0 || db >= DB_COUNT)
        return -1;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int r = del ? mdb_del(s->txn, s->e.dbi[db], &k, NULL) : mdb_put(s->txn, s->e.dbi[db], &k, &v, 0);
    return r == 0 || (del && r == MDB_NOTFOUND) ? 0 : -1;
}

/* Apply what the journal holds beyond the last synced commit, in one
 * synced transaction, then empty it. In interval mode the journal stays
 * open for the turns to come. */
static int
replay_journal(store *s, char *err, size_t errlen)
{
    char path[4096];
    int r;
    snprintf(path, sizeof path, "%s/journal", s->dir);
    if (s->mode != STORE_SYNC_INTERVAL && access(path, F_OK) != 0)
        return 0;
    if (journal_open(&s->jr, path) < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if ((r = mdb_txn_begin(s->e.env, NULL, 0, &s->txn))) {
        snprintf(err, errlen, "cannot begin a transaction: %s", mdb_strerror(r));
        return -1;
    }
    MDB_val v;
    uint64_t after = 0;
    if (senv_get_meta(s->txn, &s->e, BS_META_JOURNAL, &v) == 0 && v.mv_size == 8)
        after = bs_get_u64(v.mv_data);
    size_t applied = 0;
    int stopped = 0;
    if (journal_replay(&s->jr, after, apply_record, s, &applied, &stopped) < 0) {
        snprintf(err, errlen, "cannot replay %s", path);
        return -1;
    }
    if (applied)
        log_info("store %s: applied %zu journal records written since the last sync", s->dir, applied);
    if (stopped)
        log_info("store %s: the journal ends in a torn or unsynced record; it was never "
                 "synced, and what follows it is dropped", s->dir);
    unsigned char seq[8];
    bs_put_u64(seq, s->jr.seq);
    if ((r = senv_put_meta(s->txn, &s->e, BS_META_JOURNAL, seq, 8)) ||
        (r = mdb_txn_commit(s->txn))) {
        s->txn = NULL;
        snprintf(err, errlen, "cannot commit the journal replay: %s", mdb_strerror(r));
        return -1;
    }
    s->txn = NULL;
    if (journal_reset_synced(&s->jr) < 0) {
        snprintf(err, errlen, "cannot empty %s: %s", path, strerror(errno));
        return -1;
    }
    if (s->mode == STORE_SYNC_INTERVAL) {
        s->have_journal = 1;
    } else {
        journal_close(&s->jr);
        unlink(path);
    }
    return 0;
}

static size_t
used_bytes(store *s)
{
    return senv_used(&s->e);
}

store *
store_open(const char *dir, enum store_mode mode, int64_t interval_ms, char *err, size_t errlen)
{
    store *s = calloc(1, sizeof *s + strlen(dir) + 1);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    strcpy(s->dir, dir);
    s->mode = mode;
    s->interval_ns = interval_ms * NS_PER_MS;
    s->lockfd = -1;
    s->datafd = -1;
    s->jr.fd = -1;
    s->dirty_since = INT64_MAX;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (senv_refuse_binlog(dir, err, errlen) < 0 || senv_lock(dir, &s->lockfd, err, errlen) < 0)
        goto fail;

    if (senv_open(&s->e, dir, mode == STORE_SYNC_NEVER ? SENV_NOSYNC : 0, err, errlen) < 0)
        goto fail;
    s->mapsize = s->e.mapsize;
    int r;
    if (replay_journal(s, err, errlen) < 0)
        goto fail;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    s->datafd = open(path, O_WRONLY | O_CLOEXEC);
    if ((r = mdb_txn_begin(s->e.env, NULL, MDB_RDONLY, &s->rtxn))) {
        snprintf(err, errlen, "cannot begin a read transaction: %s", mdb_strerror(r));
        goto fail;
    }
    mdb_txn_reset(s->rtxn);
    return s;

fail:
    store_close(s);
    return NULL;
}

/* ---- loading ---- */

struct buried_job {
    job *j;
    int64_t buried_at;
    const char *tube;           /* in the read transaction's map */
    size_t tube_len;
};

static int
buried_order(const void *a, const void *b)
{
    const struct buried_job *x = a, *y = b;
    if (x->buried_at != y->buried_at)
        return x->buried_at < y->buried_at ? -1 : 1;
    return x->j->id < y->j->id ? -1 : x->j->id > y->j->id;
}

int
store_load(store *s, queue *q, char *err, size_t errlen)
{
    struct buried_job *buried = NULL;
    size_t nburied = 0, capburied = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int r;
    int64_t mono = now_ns(), wall = wall_ns();

    s->q = q;
    if ((r = mdb_txn_begin(s->e.env, NULL, MDB_RDONLY, &txn))) {
        snprintf(err, errlen, "cannot read the store: %s", mdb_strerror(r));
        return -1;
    }
    uint64_t next = 1;
    if (senv_get_meta(txn, &s->e, BS_META_NEXT_ID, &v) == 0 && v.mv_size == 8)
        next = bs_get_u64(v.mv_data);

    mdb_cursor_open(txn, s->e.dbi[DB_JOBS], &cur);
    int ok = 0;
    for (r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        bs_job_record rec;
        if (k.mv_size != 8 || bs_job_decode(v.mv_data, v.mv_size, &rec) < 0 ||
            !tube_name_valid(rec.tube, rec.tube_len)) {
            snprintf(err, errlen, "%s: corrupt job record (key of %zu bytes); refusing to start "
                     "rather than lose it", s->dir, k.mv_size);
            goto out;
        }
        job *j = calloc(1, sizeof *j);
        if (!j) {
            snprintf(err, errlen, "out of memory loading the store");
            goto out;
        }
        j->id = bs_get_u64(k.mv_data);
        j->pri = rec.pri;
        j->delay_s = (uint32_t)(rec.delay / NS_PER_SEC);
        j->ttr_s = rec.ttr < NS_PER_SEC ? 1 : (uint32_t)(rec.ttr / NS_PER_SEC);
        j->body_size = rec.body_size;
        j->reserves = rec.reserves;
        j->timeouts = rec.timeouts;
        j->releases = rec.releases;
        j->buries = rec.buries;
        j->kicks = rec.kicks;
        /* Wall-clock times become monotonic ones: age and delays go on
         * counting across the restart. */
        j->created_at = mono - bs_span(wall, rec.created_at);
        j->state = rec.state == BS_STORED_BURIED ? JOB_BURIED
                 : rec.state == BS_STORED_DELAYED ? JOB_DELAYED : JOB_READY;
        if (j->state == JOB_DELAYED)
            j->deadline = mono + bs_span(rec.deadline, wall);
        if (j->id >= next)
            next = j->id + 1;
        if (j->state == JOB_BURIED) {
            /* Buried jobs go back in the order they were buried, below. */
            if (nburied == capburied) {
                capburied = capburied ? capburied * 2 : 64;
                struct buried_job *b = realloc(buried, capburied * sizeof *b);
                if (!b) {
                    free(j);
                    snprintf(err, errlen, "out of memory loading the store");
                    goto out;
                }
                buried = b;
            }
            buried[nburied++] = (struct buried_job){j, rec.deadline, rec.tube, rec.tube_len};
            continue;
        }
        if (queue_restore(q, j, rec.tube, rec.tube_len, mono) < 0) {
            free(j);
            snprintf(err, errlen, "out of memory loading the store");
            goto out;
        }
    }
    if (nburied)
        qsort(buried, nburied, sizeof *buried, buried_order);
    for (size_t i = 0; i < nburied; i++) {
        if (queue_restore(q, buried[i].j, buried[i].tube, buried[i].tube_len, mono) < 0) {
            for (size_t k = i; k < nburied; k++)
                free(buried[k].j);
            nburied = 0;
            snprintf(err, errlen, "out of memory loading the store");
            goto out;
        }
    }
    nburied = 0;
    mdb_cursor_close(cur);

    /* Pauses still running come back; expired ones are ignored. */
    mdb_cursor_open(txn, s->e.dbi[DB_TUBES], &cur);
    for (r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != BS_TUBE_RECORD)
            continue;
        int64_t pause = (int64_t)bs_get_u64(v.mv_data);
        int64_t until = (int64_t)bs_get_u64((unsigned char *)v.mv_data + 8);
        if (until > wall && pause > 0 && tube_find(&q->tubes, k.mv_data, k.mv_size))
            queue_restore_pause(q, k.mv_data, k.mv_size, pause, mono + bs_span(until, wall));
    }
    ok = 1;
out:
    for (size_t i = 0; i < nburied; i++)
        free(buried[i].j);
    free(buried);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (ok) {
        q->next_id = next;
        s->next_id_stored = next;
    }
    return ok ? 0 : -1;
}

/* ---- writing ---- */

static int
commit(store *s)
{
    int r;
    if (!s->txn)
        return 0;
    if (s->have_journal) {
        unsigned char seq[8];
        bs_put_u64(seq, s->jr.seq);
        if ((r = senv_put_meta(s->txn, &s->e, BS_META_JOURNAL, seq, 8)))
            return fail(s, "store write failed: %s", mdb_strerror(r));
    }
    int64_t t0 = now_ns();
    r = mdb_txn_commit(s->txn);
    s->last_commit_ns = now_ns() - t0;
    lat_add(&s->lat, s->last_commit_ns);
    s->txn = NULL;
    s->txn_bytes = 0;
    if (r)
        return fail(s, "store commit failed: %s", mdb_strerror(r));
    s->commits++;
    if (s->mode != STORE_SYNC_NEVER)
        s->syncs++;
    s->dirty_since = INT64_MAX;
    /* The journal's records are in a synced commit now. */
    if (s->have_journal && journal_reset(&s->jr) < 0)
        return fail(s, "cannot empty the journal: %s", strerror(errno));
    return 0;
}

/* Keep data.mdb written out (with zeros) ahead of what LMDB uses. A sync
 * after writes that extend a file must also commit the file's new size and
 * extents to the filesystem journal, which on ext4 made every commit about
 * three times slower; overwriting blocks that already exist needs only the
 * data itself. Failure here (a full disk) is not an error: LMDB simply
 * extends the file itself then. */
#define ZERO_AHEAD_MIN ((size_t)8 << 20)

static void
zero_ahead(store *s, size_t used)
{
    size_t ahead = used / 8 > ZERO_AHEAD_MIN ? used / 8 : ZERO_AHEAD_MIN;
    if (s->datafd < 0 || s->zeroed >= used + ahead / 2)
        return;
    struct stat st;
    if (fstat(s->datafd, &st) < 0)
        return;
    size_t from = (size_t)st.st_size > s->zeroed ? (size_t)st.st_size : s->zeroed;
    size_t to = used + ahead;
    static const char zeros[1 << 16];
    for (size_t off = from; off < to; off += sizeof zeros) {
        if (pwrite(s->datafd, zeros, sizeof zeros, (off_t)off) != (ssize_t)sizeof zeros)
            return;             /* no room: leave the growing to LMDB */
    }
    if (fdatasync(s->datafd) == 0)
        s->zeroed = to;
}

/* Open the write transaction, first growing the map if this write could
 * overflow it: a full map would poison the transaction, so it must never
 * happen. The map is address space, not disk; the disk check is separate. */
static int
begin(store *s, size_t bytes)
{
    /* Copy-on-write touches a few pages per change; count generously. */
    size_t need = (s->txn_bytes + bytes) * 2 + ((size_t)64 << 10);
    if (s->txn && s->used_at_begin + need <= s->mapsize)
        return 0;
    if (s->txn && commit(s) < 0)
        return -1;
    if (s->rtxn_live) {
        mdb_txn_reset(s->rtxn);
        s->rtxn_live = 0;
    }
    size_t used = used_bytes(s);
    need = bytes * 2 + ((size_t)64 << 10);
    if (used + need > s->mapsize - s->mapsize / 4) {
        size_t size = s->mapsize;
        while (used + need > size - size / 4)
            size *= 2;
        int r = mdb_env_set_mapsize(s->e.env, size);
        if (r)
            return fail(s, "cannot grow the store map to %zu bytes: %s", size, mdb_strerror(r));
        s->mapsize = size;
    }
    zero_ahead(s, used);
    int r = mdb_txn_begin(s->e.env, NULL, 0, &s->txn);
    if (r)
        return fail(s, "cannot begin a store transaction: %s", mdb_strerror(r));
    s->used_at_begin = used;
    s->txn_bytes = 0;
    return 0;
}

static int
write_rec(store *s, int db, const void *key, size_t klen, const void *val, size_t vlen, unsigned flags)
{
    if (s->failed || begin(s, klen + vlen) < 0)
        return -1;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int r = mdb_put(s->txn, s->e.dbi[db], &k, &v, flags);
    if (r)
        return fail(s, "store write failed: %s", mdb_strerror(r));
    s->txn_bytes += klen + vlen;
    s->writes++;
    if (s->have_journal && journal_add(&s->jr, db, 0, key, klen, val, vlen) < 0)
        return fail(s, "out of memory for the journal");
    return 0;
}

static int
delete_rec(store *s, int db, const void *key, size_t klen)
{
    if (s->failed || begin(s, klen + 64) < 0)
        return -1;
    MDB_val k = {klen, (void *)key};
    int r = mdb_del(s->txn, s->e.dbi[db], &k, NULL);
    if (r && r != MDB_NOTFOUND)
        return fail(s, "store delete failed: %s", mdb_strerror(r));
    s->txn_bytes += klen + 64;
    s->writes++;
    if (s->have_journal && journal_add(&s->jr, db, 1, key, klen, NULL, 0) < 0)
        return fail(s, "out of memory for the journal");
    return 0;
}

static size_t
encode_job(const job *j, unsigned char *out)
{
    int64_t mono = now_ns(), wall = wall_ns();
    bs_job_record r = {
        .state = j->state == JOB_BURIED ? BS_STORED_BURIED
               : j->state == JOB_DELAYED ? BS_STORED_DELAYED : BS_STORED_READY,
        .pri = j->pri,
        .created_at = wall - (mono - j->created_at),
        .delay = (int64_t)j->delay_s * NS_PER_SEC,
        .ttr = (int64_t)j->ttr_s * NS_PER_SEC,
        /* Delayed: when the delay ends. Buried: when it was buried (now),
         * so a restart keeps the order kick takes buried jobs in. */
        .deadline = j->state == JOB_DELAYED ? wall + (j->deadline - mono)
                  : j->state == JOB_BURIED ? wall : 0,
        .body_size = j->body_size,
        .reserves = j->reserves, .timeouts = j->timeouts, .releases = j->releases,
        .buries = j->buries, .kicks = j->kicks,
        .tube_len = (uint16_t)j->tube->name_len,
        .tube = j->tube->name,
    };
    return bs_job_encode(&r, out);
}

static int
hook_update(void *ctx, const job *j)
{
    store *s = ctx;
    unsigned char key[8], rec[BS_JOB_RECORD_MAX];
    bs_put_u64(key, j->id);
    s->changes++;
    return write_rec(s, DB_JOBS, key, 8, rec, encode_job(j, rec), 0);
}

static int
hook_put(void *ctx, const job *j, const char *body)
{
    store *s = ctx;
    unsigned char key[8];
    bs_put_u64(key, j->id);
    /* Ids only grow, so both records go at the end of their trees. */
    if (write_rec(s, DB_BODIES, key, 8, body, (size_t)j->body_size + 2, MDB_APPEND) < 0)
        return -1;
    return hook_update(ctx, j);
}

static int
hook_remove(void *ctx, const job *j)
{
    store *s = ctx;
    unsigned char key[8];
    bs_put_u64(key, j->id);
    s->changes++;
    if (delete_rec(s, DB_JOBS, key, 8) < 0)
        return -1;
    return delete_rec(s, DB_BODIES, key, 8);
}

static int
hook_pause(void *ctx, const tube *t)
{
    store *s = ctx;
    unsigned char rec[BS_TUBE_RECORD];
    bs_put_u64(rec, (uint64_t)t->pause);
    bs_put_u64(rec + 8, (uint64_t)(wall_ns() + (t->unpause_at - now_ns())));
    s->changes++;
    return write_rec(s, DB_TUBES, t->name, t->name_len, rec, sizeof rec, 0);
}

static const char *
hook_body(void *ctx, const job *j)
{
    store *s = ctx;
    unsigned char key[8];
    bs_put_u64(key, j->id);
    MDB_txn *txn = s->txn;
    if (!txn) {
        if (!s->rtxn_live) {
            if (mdb_txn_renew(s->rtxn))
                return NULL;
            s->rtxn_live = 1;
        }
        txn = s->rtxn;
    }
    MDB_val k = {8, key}, v;
    if (mdb_get(txn, s->e.dbi[DB_BODIES], &k, &v) || v.mv_size != (size_t)j->body_size + 2)
        return NULL;
    return v.mv_data;
}

static int
hook_room(void *ctx, uint64_t size)
{
    return store_has_room(ctx, size);
}

const store_ops store_hooks = {
    .put = hook_put,
    .update = hook_update,
    .remove = hook_remove,
    .pause = hook_pause,
    .body = hook_body,
    .room = hook_room,
};

/* Ids are never reused: the high-water mark is written (and journaled)
 * with the turn that used it, even when that job is already deleted. */
static int
save_next_id(store *s)
{
    if (!s->q || s->q->next_id == s->next_id_stored)
        return 0;
    unsigned char next[8];
    bs_put_u64(next, s->q->next_id);
    if (write_rec(s, DB_META, BS_META_NEXT_ID, strlen(BS_META_NEXT_ID), next, 8, 0) < 0)
        return -1;
    s->next_id_stored = s->q->next_id;
    return 0;
}

int
store_end_turn(store *s)
{
    if (s->rtxn_live) {
        mdb_txn_reset(s->rtxn);
        s->rtxn_live = 0;
    }
    if (s->failed || save_next_id(s) < 0)
        return -1;
    if (s->mode != STORE_SYNC_INTERVAL)
        return commit(s);
    /* Interval mode: the turn's records reach the journal (the page cache)
     * before its replies leave; the synced commit comes with the timer. */
    if (buf_pending(&s->jr.pending)) {
        if (journal_flush(&s->jr) < 0)
            return fail(s, "journal write failed: %s", strerror(errno));
        if (s->dirty_since == INT64_MAX)
            s->dirty_since = now_ns();
    }
    return 0;
}

int
store_turn_pending(const store *s)
{
    return s->mode == STORE_SYNC_ALWAYS && s->txn != NULL;
}

int64_t
store_last_commit_ns(const store *s)
{
    return s->last_commit_ns;
}

int
store_tick(store *s, int64_t now)
{
    if (s->failed)
        return -1;
    if (s->mode != STORE_SYNC_INTERVAL || !s->txn || s->dirty_since == INT64_MAX ||
        now - s->dirty_since < s->interval_ns)
        return 0;
    return commit(s);
}

int64_t
store_next_tick(const store *s)
{
    if (s->mode != STORE_SYNC_INTERVAL || s->dirty_since == INT64_MAX)
        return INT64_MAX;
    return s->dirty_since + s->interval_ns;
}

int
store_has_room(store *s, uint64_t size)
{
    int64_t now = now_ns();
    /* statvfs once per 100 ms at most: this is asked for every put. */
    if (now - s->disk_checked > 100 * NS_PER_MS || s->disk_free < size * 2 + DISK_HEADROOM) {
        struct statvfs vfs;
        if (statvfs(s->dir, &vfs) == 0)
            s->disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        s->disk_checked = now;
    }
    return s->disk_free >= size * 2 + DISK_HEADROOM;
}

void
store_stats(void *ctx, buf *out)
{
    store_metrics m;
    store_get_metrics(ctx, &m);
    buf_printf(out,
        "store-size: %llu\n"
        "store-map-size: %llu\n"
        "store-commits: %llu\n"
        "store-syncs: %llu\n"
        "store-changes-per-commit: %.2f\n"
        "store-sync-mode: \"%s\"\n",
        (unsigned long long)m.size, (unsigned long long)m.map_size,
        (unsigned long long)m.commits, (unsigned long long)m.syncs,
        m.commits ? (double)m.changes / (double)m.commits : 0.0, m.mode);
}

void
store_get_metrics(store *s, store_metrics *m)
{
    m->size = used_bytes(s);
    m->map_size = s->mapsize;
    m->commits = s->commits;
    m->syncs = s->syncs;
    m->changes = s->changes;
    m->mode = s->mode == STORE_SYNC_ALWAYS ? "always"
            : s->mode == STORE_SYNC_NEVER ? "never" : "interval";
    m->commit = s->lat;
}

uint64_t
store_writes(void *ctx)
{
    return ((store *)ctx)->writes;
}

int
store_flush(store *s)
{
    if (s->failed || save_next_id(s) < 0)
        return -1;
    if (s->have_journal && journal_flush(&s->jr) < 0)
        return fail(s, "journal write failed: %s", strerror(errno));
    return commit(s);
}

void
store_close(store *s)
{
    if (!s)
        return;
    if (s->txn)
        mdb_txn_abort(s->txn);
    if (s->rtxn)
        mdb_txn_abort(s->rtxn);
    senv_close(&s->e);
    if (s->have_journal || s->jr.fd >= 0)
        journal_close(&s->jr);
    if (s->lockfd >= 0)
        close(s->lockfd);
    if (s->datafd >= 0)
        close(s->datafd);
    free(s);
}
