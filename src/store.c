#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "journal.h"
#include "schema.h"
#include "store_batch.h"
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

    /* Zero-loss mode: a committer thread applies and commits one batch
     * while the event loop records the next turns' changes in the other,
     * so the loop's work overlaps the device flushes. Generations number
     * the batches: a reply waits for the generation holding its turn. */
    int threaded;
    batch batches[2];
    batch *open, *inflight;
    uint64_t open_gen, inflight_gen, durable_gen, turn_gen;
    int busy;                   /* inflight is the committer's, not yet collected */
    size_t used_cache;          /* bytes used, read at the last hand-off */
    int efd;                    /* eventfd the committer signals */
    pthread_t thread;
    pthread_mutex_t mu;         /* guards what follows */
    pthread_cond_t cv;          /* work or quit for the committer, news for us */
    int work, done, quit, syncing;
    int sync_req;               /* the loop has no batch: sync the last meta */
    int c_failed;
    uint64_t c_last_gen;        /* the last commit that wrote anything */
    int c_unsynced;             /* ... and its meta page is not yet synced */
    uint64_t c_durable;         /* every generation up to this is durable */
    uint64_t c_syncs;
    store_lat c_lat;
    size_t work_used;
    char work_error[256];

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

static int start_committer(store *s, char *err, size_t errlen);
static void stop_committer(store *s);

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

uint64_t
store_turn_gen(const store *s)
{
    return s->turn_gen;
}

uint64_t
store_durable_gen(const store *s)
{
    return s->durable_gen;
}

int
store_event_fd(const store *s)
{
    return s->threaded ? s->efd : -1;
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
    /* The journal goes next: its records must be durable in the store. */
    if ((r = mdb_env_sync(s->e.env, 1))) {
        snprintf(err, errlen, "cannot sync the journal replay: %s", mdb_strerror(r));
        return -1;
    }
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

    /* Zero-loss mode leaves the meta page's sync to the committer, which
     * gets it from the next commit's data sync or a sync of its own. */
    int flags = mode == STORE_SYNC_NEVER ? SENV_NOSYNC
              : mode == STORE_SYNC_ALWAYS ? SENV_NOMETASYNC : 0;
    if (senv_open(&s->e, dir, flags, err, errlen) < 0)
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
    if (mode == STORE_SYNC_ALWAYS && start_committer(s, err, errlen) < 0)
        goto fail;
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
    lat_add(&s->lat, now_ns() - t0);
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

/* ---- the committer thread (zero-loss mode) ----
 *
 * The environment runs with MDB_NOMETASYNC: a commit writes its pages,
 * syncs them, then writes the meta page that points to them without a
 * sync. The meta page becomes durable with the next commit's data sync,
 * or with a sync of its own when nothing else is waiting. So each commit
 * costs one device flush under load instead of two, a meta page never
 * reaches the disk before the pages it points to, and a generation counts
 * as durable only once its meta page has been synced. The loop decides
 * when a sync of its own is due: when a commit ends and it has no batch to
 * follow it (see store_end_turn). */

/* One batch in one transaction. 1 if it wrote anything, 0 if it changed
 * nothing (LMDB then neither writes nor syncs), -1 on failure. Runs on the
 * committer thread, which alone writes to LMDB and data.mdb meanwhile. */
static int
commit_batch(store *s, const batch *b, char *err, size_t errlen)
{
    zero_ahead(s, s->work_used);
    MDB_txn *txn;
    int r = mdb_txn_begin(s->e.env, NULL, 0, &txn);
    if (r) {
        snprintf(err, errlen, "cannot begin a store transaction: %s", mdb_strerror(r));
        return -1;
    }
    size_t id = mdb_txn_id(txn);
    batch_op op;
    for (size_t pos = 0; pos < b->len;) {
        pos = batch_next(b, pos, &op);
        MDB_val k = {op.klen, (void *)op.key}, v = {op.vlen, (void *)op.val};
        if (op.del) {
            r = mdb_del(txn, s->e.dbi[op.db], &k, NULL);
            if (r == MDB_NOTFOUND)
                r = 0;
        } else {
            r = mdb_put(txn, s->e.dbi[op.db], &k, &v, op.append ? MDB_APPEND : 0);
        }
        if (r) {
            mdb_txn_abort(txn);
            snprintf(err, errlen, "store %s failed: %s", op.del ? "delete" : "write",
                     mdb_strerror(r));
            return -1;
        }
    }
    if ((r = mdb_txn_commit(txn))) {
        snprintf(err, errlen, "store commit failed: %s", mdb_strerror(r));
        return -1;
    }
    MDB_envinfo info;
    mdb_env_info(s->e.env, &info);
    return info.me_last_txnid == id;
}

static void
notify(store *s)
{
    uint64_t one = 1;
    pthread_cond_broadcast(&s->cv);
    if (write(s->efd, &one, sizeof one) < 0) {
        /* Only a full counter fails, and then the loop is awake anyway. */
    }
}

static void *
committer(void *arg)
{
    store *s = arg;
    char err[sizeof s->work_error];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (!s->work && s->sync_req && s->c_unsynced && !s->c_failed) {
            /* Nothing more to commit: sync the last meta page by itself. */
            uint64_t gen = s->c_last_gen;
            s->syncing = 1;
            pthread_mutex_unlock(&s->mu);
            int r = mdb_env_sync(s->e.env, 1);
            if (r)
                snprintf(err, sizeof err, "store commit failed: %s (syncing the last commit)",
                         mdb_strerror(r));
            pthread_mutex_lock(&s->mu);
            s->syncing = 0;
            s->sync_req = 0;
            if (r) {
                s->c_failed = 1;
                memcpy(s->work_error, err, sizeof err);
            } else {
                s->c_durable = gen;
                s->c_unsynced = 0;
                s->c_syncs++;
            }
            notify(s);
            continue;
        }
        if (!s->work && s->sync_req && !s->c_unsynced)
            s->sync_req = 0;            /* a commit since made it durable */
        while (!s->work && !s->quit && !(s->sync_req && s->c_unsynced && !s->c_failed))
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->work) {
            if (s->quit && !(s->sync_req && s->c_unsynced && !s->c_failed))
                break;
            continue;
        }
        uint64_t gen = s->inflight_gen;
        int failed = s->c_failed;
        pthread_mutex_unlock(&s->mu);
        err[0] = 0;
        int64_t t0 = now_ns();
        int r = failed ? -1 : commit_batch(s, s->inflight, err, sizeof err);
        int64_t took = now_ns() - t0;
        pthread_mutex_lock(&s->mu);
        if (r >= 0)
            lat_add(&s->c_lat, took);
        s->work = 0;
        s->done = 1;
        if (r < 0) {
            if (!s->c_failed)
                memcpy(s->work_error, err, sizeof err);
            s->c_failed = 1;
        } else if (r == 1) {
            /* This commit's data sync made the previous meta page durable. */
            if (s->c_unsynced)
                s->c_durable = s->c_last_gen;
            s->c_last_gen = gen;
            s->c_unsynced = 1;
            s->c_syncs++;
        } else if (s->c_unsynced) {
            s->c_last_gen = gen;        /* as durable as the commit before it */
        } else {
            s->c_durable = gen;         /* changed nothing: durable already */
        }
        notify(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int
start_committer(store *s, char *err, size_t errlen)
{
    s->open = &s->batches[0];
    s->inflight = &s->batches[1];
    s->open_gen = 1;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* Signals are the event loop's business: the committer blocks them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&s->thread, NULL, committer, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        close(s->efd);
        snprintf(err, errlen, "cannot start the committer thread: %s", strerror(r));
        return -1;
    }
    s->threaded = 1;
    return 0;
}

/* Give the open batch to the committer, which is done with the last one.
 * A growing map is resized here, and only while the committer is not
 * syncing either: LMDB wants no transaction in the process then. */
static int
hand_off(store *s)
{
    if (s->rtxn_live) {
        mdb_txn_reset(s->rtxn);
        s->rtxn_live = 0;
    }
    size_t used = used_bytes(s);
    size_t need = s->open->len * 2 + ((size_t)64 << 10);
    pthread_mutex_lock(&s->mu);
    if (used + need > s->mapsize - s->mapsize / 4) {
        while (s->syncing)
            pthread_cond_wait(&s->cv, &s->mu);
        size_t size = s->mapsize;
        while (used + need > size - size / 4)
            size *= 2;
        int r = mdb_env_set_mapsize(s->e.env, size);
        if (r) {
            pthread_mutex_unlock(&s->mu);
            return fail(s, "cannot grow the store map to %zu bytes: %s", size, mdb_strerror(r));
        }
        s->mapsize = size;
    }
    s->used_cache = used;
    batch *b = s->inflight;
    s->inflight = s->open;
    s->open = b;
    s->inflight_gen = s->open_gen++;
    s->busy = 1;
    s->work_used = used;
    s->work = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Take the committer's news: a finished batch (waiting for it if asked)
 * and how far commits are durable; or its failure. */
static int
collect(store *s, int wait)
{
    uint64_t n;
    if (read(s->efd, &n, sizeof n) < 0) {
        /* EAGAIN: nothing new signalled; the state below says the same. */
    }
    pthread_mutex_lock(&s->mu);
    while (wait && s->busy && !s->done)
        pthread_cond_wait(&s->cv, &s->mu);
    int done = s->done, failed = s->c_failed;
    s->done = 0;
    s->durable_gen = s->c_durable;
    s->syncs = s->c_syncs;
    s->lat = s->c_lat;
    pthread_mutex_unlock(&s->mu);
    if (failed)
        return fail(s, "%s", s->work_error);
    if (done && s->busy) {
        s->busy = 0;
        s->commits++;
        batch_clear(s->inflight);
        /* Bodies now come from the map: look again with a fresh snapshot. */
        if (s->rtxn_live) {
            mdb_txn_reset(s->rtxn);
            s->rtxn_live = 0;
        }
    }
    return 0;
}

/* With no batch to follow the last commit, ask for its meta page's sync. */
static void
request_sync(store *s)
{
    if (s->busy || s->durable_gen >= s->inflight_gen)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->sync_req) {
        s->sync_req = 1;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Commit everything recorded so far and wait until it is durable (clean
 * shutdown). */
static int
drain_committer(store *s)
{
    if (collect(s, 1) < 0)
        return -1;
    if (s->open->nops && (hand_off(s) < 0 || collect(s, 1) < 0))
        return -1;
    request_sync(s);
    pthread_mutex_lock(&s->mu);
    while (s->c_durable < s->inflight_gen && !s->c_failed)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return collect(s, 0);
}

static void
stop_committer(store *s)
{
    if (!s->threaded)
        return;
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    batch_free(&s->batches[0]);
    batch_free(&s->batches[1]);
    close(s->efd);
    s->threaded = 0;
}

static int
write_rec(store *s, int db, const void *key, size_t klen, const void *val, size_t vlen, unsigned flags)
{
    if (s->failed)
        return -1;
    if (s->threaded) {
        if (batch_put(s->open, db, key, klen, val, vlen, (flags & MDB_APPEND) != 0) < 0)
            return fail(s, "out of memory for the store's batch");
        s->writes++;
        return 0;
    }
    if (begin(s, klen + vlen) < 0)
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
    if (s->failed)
        return -1;
    if (s->threaded) {
        if (batch_del(s->open, db, key, klen) < 0)
            return fail(s, "out of memory for the store's batch");
        s->writes++;
        return 0;
    }
    if (begin(s, klen + 64) < 0)
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
    /* Until its batch is committed, the body is read from the batch. */
    if (s->threaded && batch_index_body(s->open, j->id) < 0)
        return fail(s, "out of memory for the store's batch");
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
    if (s->threaded) {
        size_t len = 0;
        const char *p = batch_body(s->open, j->id, &len);
        if (!p && s->busy)
            p = batch_body(s->inflight, j->id, &len);
        if (p)
            return len == (size_t)j->body_size + 2 ? p : NULL;
    }
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
    if (s->threaded) {
        /* Take a finished commit first, so the next starts at once. */
        if (collect(s, 0) < 0)
            return -1;
        /* Replies wait for the batch holding the turn's changes; with none,
         * for the last batch, as they may show its changes. */
        s->turn_gen = s->open->nops ? s->open_gen : s->inflight_gen;
        if (!s->busy && s->open->nops && hand_off(s) < 0)
            return -1;
        /* A batch to follow makes the last commit durable with its own data
         * sync; without one, the last commit needs a sync of its own now. */
        request_sync(s);
        return 0;
    }
    s->turn_gen = 0;
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
    store *s = ctx;
    buf_printf(out,
        "store-size: %zu\n"
        "store-map-size: %zu\n"
        "store-commits: %llu\n"
        "store-syncs: %llu\n"
        "store-changes-per-commit: %.2f\n"
        "store-sync-mode: \"%s\"\n",
        s->busy ? s->used_cache : used_bytes(s), s->mapsize, (unsigned long long)s->commits,
        (unsigned long long)s->syncs,
        s->commits ? (double)s->changes / (double)s->commits : 0.0,
        s->mode == STORE_SYNC_ALWAYS ? "always" : s->mode == STORE_SYNC_NEVER ? "never" : "interval");
}

void
store_get_metrics(store *s, store_metrics *m)
{
    m->size = s->busy ? s->used_cache : used_bytes(s);
    m->map_size = s->mapsize;
    m->commits = s->commits;
    m->syncs = s->syncs;
    m->changes = s->changes;
    m->writes = s->writes;
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
    if (s->threaded)
        return drain_committer(s);
    if (s->have_journal && journal_flush(&s->jr) < 0)
        return fail(s, "journal write failed: %s", strerror(errno));
    return commit(s);
}

void
store_close(store *s)
{
    if (!s)
        return;
    stop_committer(s);
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
