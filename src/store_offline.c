#include "store_offline.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_env.h"

struct store_view {
    store_env e;
    int lockfd;
    MDB_txn *txn;               /* import in progress */
    char dir[];
};

store_view *
sv_open(const char *dir, int mode, char *err, size_t errlen)
{
    store_view *v = calloc(1, sizeof *v + strlen(dir) + 1);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    strcpy(v->dir, dir);
    v->lockfd = -1;
    if (mode == SV_WRITE) {
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            goto fail;
        }
        if (senv_refuse_binlog(dir, err, errlen) < 0 || senv_lock(dir, &v->lockfd, err, errlen) < 0)
            goto fail;
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (access(path, F_OK) != 0) {
            snprintf(err, errlen, "%s holds no store (no data.mdb)", dir);
            goto fail;
        }
    }
    if (senv_open(&v->e, dir, mode == SV_WRITE ? 0 : SENV_READONLY, err, errlen) < 0)
        goto fail;
    return v;
fail:
    sv_close(v);
    return NULL;
}

void
sv_close(store_view *v)
{
    if (!v)
        return;
    if (v->txn)
        mdb_txn_abort(v->txn);
    senv_close(&v->e);
    if (v->lockfd >= 0)
        close(v->lockfd);
    free(v);
}

/* A read transaction; if the server grew the map since we opened, adopt
 * the new size and try again. */
static int
begin_read(store_view *v, MDB_txn **txn)
{
    int r = mdb_txn_begin(v->e.env, NULL, MDB_RDONLY, txn);
    if (r == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(v->e.env, 0);
        r = mdb_txn_begin(v->e.env, NULL, MDB_RDONLY, txn);
    }
    return r;
}

int
sv_info(store_view *v, store_info *info)
{
    MDB_txn *txn;
    MDB_val val;
    MDB_stat st;
    struct stat fst;
    char path[4096];
    memset(info, 0, sizeof *info);
    if (begin_read(v, &txn))
        return -1;
    info->version = v->e.version;
    int r = senv_get_meta(txn, &v->e, BS_META_NEXT_ID, &val);
    if (r == 0 && val.mv_size == 8)
        info->next_id = bs_get_u64(val.mv_data);
    if (r == 0)
        r = mdb_stat(txn, v->e.dbi[DB_JOBS], &st);
    if (r == 0)
        info->jobs = st.ms_entries;
    mdb_txn_abort(txn);
    if (r)
        return -1;
    info->used_bytes = senv_used(&v->e);
    snprintf(path, sizeof path, "%s/data.mdb", v->dir);
    if (stat(path, &fst) == 0)
        info->file_bytes = (size_t)fst.st_size;
    return 0;
}

int
sv_foreach(store_view *v, uint64_t from, uint64_t to, int with_body,
           int (*fn)(void *ctx, const store_job *j), void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, val;
    unsigned char key[8];
    int r, ret = 0;
    if (begin_read(v, &txn))
        return -1;
    if (mdb_cursor_open(txn, v->e.dbi[DB_JOBS], &cur)) {
        mdb_txn_abort(txn);
        return -1;
    }
    bs_put_u64(key, from);
    k.mv_size = 8;
    k.mv_data = key;
    for (r = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); r == 0;
         r = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        store_job j = {0};
        if (k.mv_size != 8)
            continue;
        j.id = bs_get_u64(k.mv_data);
        if (j.id > to)
            break;
        if (bs_job_decode(val.mv_data, val.mv_size, &j.rec) < 0) {
            ret = -2;                   /* a corrupt record */
            break;
        }
        if (with_body) {
            MDB_val bk = {8, k.mv_data}, bv;
            if (mdb_get(txn, v->e.dbi[DB_BODIES], &bk, &bv) == 0 && bv.mv_size >= 2) {
                j.body = bv.mv_data;
                j.body_len = bv.mv_size - 2;
            }
        }
        if ((ret = fn(ctx, &j)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return ret;
}

int
sv_foreach_pause(store_view *v,
                 int (*fn)(void *ctx, const char *name, size_t len, int64_t pause, int64_t until),
                 void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, val;
    int r, ret = 0;
    if (begin_read(v, &txn))
        return -1;
    if (mdb_cursor_open(txn, v->e.dbi[DB_TUBES], &cur)) {
        mdb_txn_abort(txn);
        return -1;
    }
    for (r = mdb_cursor_get(cur, &k, &val, MDB_FIRST); r == 0 && ret == 0;
         r = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        if (val.mv_size != BS_TUBE_RECORD)
            continue;
        ret = fn(ctx, k.mv_data, k.mv_size, (int64_t)bs_get_u64(val.mv_data),
                 (int64_t)bs_get_u64((unsigned char *)val.mv_data + 8));
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return ret;
}

int
sv_import_begin(store_view *v, size_t size_hint, char *err, size_t errlen)
{
    /* One transaction holds the whole import, so the map must be big
     * enough from the start: a full map would abort it. */
    size_t want = senv_used(&v->e) + size_hint * 3 + STORE_MAP_MIN;
    if (want > v->e.mapsize) {
        int r = mdb_env_set_mapsize(v->e.env, want);
        if (r) {
            snprintf(err, errlen, "cannot size the store map: %s", mdb_strerror(r));
            return -1;
        }
        v->e.mapsize = want;
    }
    int r = mdb_txn_begin(v->e.env, NULL, 0, &v->txn);
    if (r) {
        snprintf(err, errlen, "cannot begin the import transaction: %s", mdb_strerror(r));
        return -1;
    }
    return 0;
}

int
sv_import_job(store_view *v, uint64_t id, const bs_job_record *rec,
              const void *body, size_t body_len, char *err, size_t errlen)
{
    unsigned char key[8], val[BS_JOB_RECORD_MAX];
    bs_put_u64(key, id);
    MDB_val k = {8, key}, rv = {bs_job_encode(rec, val), val};
    MDB_val bv = {body_len + 2, NULL};
    int r = mdb_put(v->txn, v->e.dbi[DB_JOBS], &k, &rv, MDB_NOOVERWRITE);
    if (r == MDB_KEYEXIST) {
        snprintf(err, errlen, "job %llu is already in the store", (unsigned long long)id);
        return -1;
    }
    if (!r)
        r = mdb_put(v->txn, v->e.dbi[DB_BODIES], &k, &bv, MDB_RESERVE);
    if (r) {
        snprintf(err, errlen, "store write failed for job %llu: %s", (unsigned long long)id,
                 mdb_strerror(r));
        return -1;
    }
    memcpy(bv.mv_data, body, body_len);
    memcpy((char *)bv.mv_data + body_len, "\r\n", 2);
    return 0;
}

int
sv_import_commit(store_view *v, uint64_t next_id, char *err, size_t errlen)
{
    MDB_val val;
    uint64_t cur = 1;
    if (senv_get_meta(v->txn, &v->e, BS_META_NEXT_ID, &val) == 0 && val.mv_size == 8)
        cur = bs_get_u64(val.mv_data);
    unsigned char next[8];
    bs_put_u64(next, next_id > cur ? next_id : cur);
    int r = senv_put_meta(v->txn, &v->e, BS_META_NEXT_ID, next, 8);
    if (!r)
        r = mdb_txn_commit(v->txn);
    else
        mdb_txn_abort(v->txn);
    v->txn = NULL;
    if (r) {
        snprintf(err, errlen, "the import could not be committed (nothing was imported): %s",
                 mdb_strerror(r));
        return -1;
    }
    return 0;
}

void
sv_import_abort(store_view *v)
{
    if (v->txn)
        mdb_txn_abort(v->txn);
    v->txn = NULL;
}

int
sv_backup(store_view *v, const char *dest, char *err, size_t errlen)
{
    if (mkdir(dest, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dest, strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dest);
    if (access(path, F_OK) == 0) {
        snprintf(err, errlen, "%s already holds a store; back up into an empty directory", dest);
        return -1;
    }
    int r = mdb_env_copy2(v->e.env, dest, MDB_CP_COMPACT);
    if (r) {
        snprintf(err, errlen, "backup to %s failed: %s", dest, mdb_strerror(r));
        return -1;
    }
    return 0;
}
