/* Upgrades of a store from one schema version to the next. Part of the
 * store layer: it may use LMDB directly. */
#ifndef BS_MIGRATE_H
#define BS_MIGRATE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* Run every step from version `from` up to BS_SCHEMA_VERSION inside txn
 * (the caller commits, so a crash midway leaves the old version intact).
 * Returns 0, or -1 with a message in err. */
int migrate_run(MDB_txn *txn, uint32_t from, char *err, size_t errlen);

#endif
