#include "store_env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "schema.h"
#include "util.h"

int
senv_lock(const char *dir, int *fd, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* A POSIX lock, as stock beanstalkd takes on the same file, so neither
     * server can share a directory with the other. */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(*fd, F_SETLK, &fl) < 0) {
        snprintf(err, errlen, "%s is in use by another server (lock %s is held); "
                 "only one server may use a store at a time", dir, path);
        close(*fd);
        *fd = -1;
        return -1;
    }
    return 0;
}

int
senv_refuse_binlog(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, "binlog.", 7) == 0 && n[7] && strspn(n + 7, "0123456789") == strlen(n + 7))
            found = 1;
    }
    closedir(d);
    if (found)
        snprintf(err, errlen, "%s holds legacy beanstalkd binlog files (binlog.N); "
                 "import them into a new store with `bsimport %s NEWDIR` and start "
                 "with -b NEWDIR", dir, dir);
    return found ? -1 : 0;
}

int
senv_get_meta(MDB_txn *txn, const store_env *e, const char *name, MDB_val *v)
{
    MDB_val k = {strlen(name), (void *)name};
    return mdb_get(txn, e->dbi[DB_META], &k, v);
}

int
senv_put_meta(MDB_txn *txn, const store_env *e, const char *name, const void *val, size_t len)
{
    MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)val};
    return mdb_put(txn, e->dbi[DB_META], &k, &v, 0);
}

size_t
senv_used(store_env *e)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(e->env, &info);
    mdb_env_stat(e->env, &st);
    return (info.me_last_pgno + 1) * (size_t)st.ms_psize;
}

/* A new, empty environment becomes a store of the current version. */
static int
create_meta(MDB_txn *txn, store_env *e)
{
    unsigned char ver[4], next[8];
    bs_put_u32(ver, BS_SCHEMA_VERSION);
    bs_put_u64(next, 1);
    e->version = BS_SCHEMA_VERSION;
    return senv_put_meta(txn, e, BS_META_MAGIC, BS_MAGIC, strlen(BS_MAGIC)) ||
           senv_put_meta(txn, e, BS_META_VERSION, ver, 4) ||
           senv_put_meta(txn, e, BS_META_NEXT_ID, next, 8);
}

/* An existing store: ours, and of a version we can read or upgrade. */
static int
check_meta(MDB_txn *txn, store_env *e, const char *dir, int readonly, char *err, size_t errlen)
{
    MDB_val v;
    if (senv_get_meta(txn, e, BS_META_MAGIC, &v) != 0 || v.mv_size != strlen(BS_MAGIC) ||
        memcmp(v.mv_data, BS_MAGIC, v.mv_size) != 0) {
        snprintf(err, errlen, "%s/data.mdb is an LMDB environment but not a beanstalkd store; "
                 "refusing to touch it", dir);
        return -1;
    }
    if (senv_get_meta(txn, e, BS_META_VERSION, &v) != 0 || v.mv_size != 4) {
        snprintf(err, errlen, "%s: store has no valid schema version record", dir);
        return -1;
    }
    e->version = bs_get_u32(v.mv_data);
    if (e->version > BS_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: store schema version %u is newer than this build's (%u); "
                 "use a newer beanstalkd with it", dir, e->version, BS_SCHEMA_VERSION);
        return -1;
    }
    if (e->version == BS_SCHEMA_VERSION)
        return 0;
    if (readonly) {
        snprintf(err, errlen, "%s: store schema version %u is older than this build's (%u); "
                 "start the server on it once to upgrade it", dir, e->version, BS_SCHEMA_VERSION);
        return -1;
    }
    if (migrate_run(txn, e->version, err, errlen) < 0)
        return -1;
    unsigned char ver[4];
    bs_put_u32(ver, BS_SCHEMA_VERSION);
    if (senv_put_meta(txn, e, BS_META_VERSION, ver, 4)) {
        snprintf(err, errlen, "%s: cannot record the upgraded version", dir);
        return -1;
    }
    log_info("store %s upgraded from schema version %u to %u", dir, e->version, BS_SCHEMA_VERSION);
    return 0;
}

int
senv_open(store_env *e, const char *dir, int flags, char *err, size_t errlen)
{
    static const char *names[DB_COUNT] = {BS_DB_META, BS_DB_JOBS, BS_DB_BODIES, BS_DB_TUBES};
    int readonly = flags & SENV_READONLY;
    MDB_txn *txn = NULL;
    int r;

    memset(e, 0, sizeof *e);
    if ((r = mdb_env_create(&e->env)) || (r = mdb_env_set_maxdbs(e->env, DB_COUNT)) ||
        (r = mdb_env_set_mapsize(e->env, STORE_MAP_MIN))) {
        snprintf(err, errlen, "cannot create an LMDB environment: %s", mdb_strerror(r));
        goto fail;
    }
    unsigned envflags = (readonly ? MDB_RDONLY : 0) | (flags & SENV_NOSYNC ? MDB_NOSYNC : 0);
    if ((r = mdb_env_open(e->env, dir, envflags, 0600))) {
        if (r == MDB_INVALID || r == MDB_VERSION_MISMATCH)
            snprintf(err, errlen, "%s/data.mdb is not a valid LMDB file (corrupt or foreign: %s); "
                     "nothing was changed", dir, mdb_strerror(r));
        else
            snprintf(err, errlen, "cannot open the store in %s: %s", dir, mdb_strerror(r));
        goto fail;
    }
    /* Room to grow: twice what is used, and at least STORE_MAP_MIN. */
    e->mapsize = senv_used(e) * 2;
    if (e->mapsize < STORE_MAP_MIN)
        e->mapsize = STORE_MAP_MIN;
    if ((r = mdb_env_set_mapsize(e->env, e->mapsize))) {
        snprintf(err, errlen, "cannot size the store map: %s", mdb_strerror(r));
        goto fail;
    }
    if ((r = mdb_txn_begin(e->env, NULL, readonly ? MDB_RDONLY : 0, &txn))) {
        snprintf(err, errlen, "cannot begin a transaction on %s: %s", dir, mdb_strerror(r));
        goto fail;
    }
    /* Anything already in the environment must be ours: look for our meta
     * database before creating any database in it. */
    MDB_dbi main_db;
    MDB_stat main_st;
    if ((r = mdb_dbi_open(txn, NULL, 0, &main_db)) || (r = mdb_stat(txn, main_db, &main_st))) {
        snprintf(err, errlen, "%s: cannot read the store: %s", dir, mdb_strerror(r));
        goto fail;
    }
    int fresh = main_st.ms_entries == 0;
    if (fresh && readonly) {
        snprintf(err, errlen, "%s holds no store", dir);
        goto fail;
    }
    if (!fresh && mdb_dbi_open(txn, BS_DB_META, 0, &e->dbi[DB_META])) {
        snprintf(err, errlen, "%s/data.mdb is an LMDB environment but not a beanstalkd store; "
                 "refusing to touch it", dir);
        goto fail;
    }
    for (int i = 0; i < DB_COUNT; i++) {
        if ((r = mdb_dbi_open(txn, names[i], readonly ? 0 : MDB_CREATE, &e->dbi[i]))) {
            snprintf(err, errlen, "%s: cannot open database %s: %s", dir, names[i], mdb_strerror(r));
            goto fail;
        }
    }
    if (fresh ? create_meta(txn, e) != 0 : check_meta(txn, e, dir, readonly, err, errlen) < 0) {
        if (fresh)
            snprintf(err, errlen, "%s: cannot initialise the store", dir);
        goto fail;
    }
    /* Commit even a read-only transaction: aborting it would close the
     * database handles opened in it. */
    r = mdb_txn_commit(txn);
    txn = NULL;
    if (r) {
        snprintf(err, errlen, "%s: cannot commit the opening transaction: %s", dir, mdb_strerror(r));
        goto fail;
    }
    return 0;

fail:
    if (txn)
        mdb_txn_abort(txn);
    senv_close(e);
    return -1;
}

void
senv_close(store_env *e)
{
    if (e->env)
        mdb_env_close(e->env);
    e->env = NULL;
}
