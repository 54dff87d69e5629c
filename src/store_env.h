/* Opening a store's LMDB environment: shared by the daemon's store and the
 * offline tools' access (store_offline.c), so both check the same things
 * the same way. Internal to the store layer: it exposes LMDB types. */
#ifndef BS_STORE_ENV_H
#define BS_STORE_ENV_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* Database indexes; also the database numbers of journal records. */
enum { DB_META, DB_JOBS, DB_BODIES, DB_TUBES, DB_COUNT };

#define STORE_MAP_MIN ((size_t)256 << 20)

typedef struct store_env {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    size_t mapsize;
    uint32_t version;           /* schema version found (before any upgrade) */
} store_env;

enum {
    SENV_READONLY = 1,          /* never write; refuse what needs writing */
    SENV_NOSYNC = 2,            /* MDB_NOSYNC (-F) */
};

/* Take DIR/lock (the lock stock beanstalkd takes too); -1 if held. */
int senv_lock(const char *dir, int *fd, char *err, size_t errlen);
/* -1 with a message naming bsimport when dir holds binlog.N files. */
int senv_refuse_binlog(const char *dir, char *err, size_t errlen);
/* Open the environment of dir: check it is ours and of a version we read;
 * unless read-only, create an empty store or upgrade an older one. */
int senv_open(store_env *e, const char *dir, int flags, char *err, size_t errlen);
void senv_close(store_env *e);
/* Bytes of data.mdb in use. */
size_t senv_used(store_env *e);

int senv_get_meta(MDB_txn *txn, const store_env *e, const char *name, MDB_val *v);
int senv_put_meta(MDB_txn *txn, const store_env *e, const char *name, const void *val, size_t len);

#endif
