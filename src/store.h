/* The durable store: an LMDB environment in the -b directory. This layer
 * (with journal.c and migrate/) is the only code that includes lmdb.h.
 *
 * Modes (see docs/durability.md):
 *   STORE_SYNC_ALWAYS  (-b alone, -f 0): every loop turn's changes are one
 *                      transaction, committed with a sync before any reply
 *                      that acknowledges them leaves.
 *   STORE_SYNC_INTERVAL (-f MS): one transaction stays open and is committed
 *                      with a sync every MS ms; meanwhile each turn's changes
 *                      are appended, unsynced, to a checksummed journal.
 *   STORE_SYNC_NEVER   (-F): each turn is committed without a sync. */
#ifndef BS_STORE_H
#define BS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "queue.h"

enum store_mode { STORE_SYNC_ALWAYS, STORE_SYNC_INTERVAL, STORE_SYNC_NEVER };

typedef struct store store;

extern const store_ops store_hooks;

/* Opens (creating if needed) the store in dir, refusing a directory that is
 * locked by another server, holds legacy binlog files, or holds a foreign,
 * corrupt or newer store. On failure returns NULL with a message in err. */
store *store_open(const char *dir, enum store_mode mode, int64_t interval_ms,
                  char *err, size_t errlen);
/* Rebuilds the queue from the store in one pass; -1 with a message. */
int store_load(store *s, queue *q, char *err, size_t errlen);
/* End of a loop turn: make this turn's changes as durable as the mode
 * promises. -1 means an I/O error: nothing of the turn may be acknowledged
 * and the server must stop. */
int store_end_turn(store *s);
/* Whether this turn has changes that store_end_turn will commit and sync
 * (zero-loss mode only), and how long the last such commit took. */
int store_turn_pending(const store *s);
int64_t store_last_commit_ns(const store *s);
/* Interval mode: commit and sync when the interval has passed. */
int store_tick(store *s, int64_t now);
/* Monotonic ns when store_tick has work, or INT64_MAX. */
int64_t store_next_tick(const store *s);
/* Whether a put of size bytes may go ahead (disk headroom). */
int store_has_room(store *s, uint64_t size);
/* The failure that made the store stop, for the log. */
const char *store_error(const store *s);
/* Commit durations, for the metrics endpoint: counts per bucket (the last
 * is everything slower than the last bound), their number and their sum. */
#define STORE_LAT_BUCKETS 12
extern const double store_lat_bounds[STORE_LAT_BUCKETS - 1];   /* seconds */

typedef struct store_lat {
    uint64_t count;
    double sum;
    uint64_t bucket[STORE_LAT_BUCKETS];
} store_lat;

typedef struct store_metrics {
    uint64_t size, map_size, commits, syncs, changes;
    const char *mode;           /* "always", "interval" or "never" */
    store_lat commit;
} store_metrics;

void store_get_metrics(store *s, store_metrics *m);
/* Extra stats keys, after beanstalkd's. */
void store_stats(void *ctx, buf *out);
/* Records written, reported as binlog-records-written. */
uint64_t store_writes(void *ctx);
/* Commit whatever is pending (clean shutdown). */
int store_flush(store *s);
void store_close(store *s);

#endif
