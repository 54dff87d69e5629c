#include "migrate.h"

#include <stdio.h>

#include "schema.h"

/* steps[n] upgrades version n+1 to n+2. Version 1 is the first layout, so
 * there is nothing to run yet; a new version adds its step here, keeps a
 * frozen store of the old version under tests/fixtures/, and a test that
 * the fixture opens and upgrades. */
typedef int (*migrate_step)(MDB_txn *txn, char *err, size_t errlen);

static const migrate_step steps[] = {
    NULL,   /* placeholder: no step from version 1 yet */
};

int
migrate_run(MDB_txn *txn, uint32_t from, char *err, size_t errlen)
{
    if (from < 1 || from > BS_SCHEMA_VERSION) {
        snprintf(err, errlen, "no upgrade path from schema version %u", from);
        return -1;
    }
    for (uint32_t v = from; v < BS_SCHEMA_VERSION; v++) {
        migrate_step step = steps[v - 1];
        if (!step || step(txn, err, errlen) < 0)
            return -1;
    }
    return 0;
}
