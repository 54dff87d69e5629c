/* The -f MS journal: between two synced commits of the store, each loop
 * turn's writes are appended here without a sync, so a killed process loses
 * nothing. Each record carries a sequence number and a CRC-32C, so after a
 * power cut replay stops at the first torn, missing or foreign record.
 * It knows nothing of LMDB: a record is (database index, key, value or
 * deletion). */
#ifndef BS_JOURNAL_H
#define BS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct journal {
    int fd;
    buf pending;                /* this turn's records, not yet written */
    uint64_t seq;               /* last sequence number given out */
} journal;

typedef int (*journal_apply_fn)(void *ctx, int db, int del, const void *key, size_t klen,
                                const void *val, size_t vlen);

int journal_open(journal *j, const char *path);
/* Queue a record; -1 when memory runs out. */
int journal_add(journal *j, int db, int del, const void *key, size_t klen,
                const void *val, size_t vlen);
/* Write the queued records; -1 (errno set) on an I/O error. */
int journal_flush(journal *j);
/* Empty the file once its records are in a synced commit. */
int journal_reset(journal *j);
/* The same, synced: at start-up, after a replay. */
int journal_reset_synced(journal *j);
/* Apply, in order, the records numbered after_seq + 1, + 2, ... up to the
 * first gap, bad checksum or torn tail. *applied counts them; *stopped is 1
 * when records were left unapplied. Afterwards j->seq is the highest
 * sequence number found in the file (at least after_seq), so new records
 * are numbered above all of them. */
int journal_replay(journal *j, uint64_t after_seq, journal_apply_fn fn, void *ctx,
                   size_t *applied, int *stopped);
void journal_close(journal *j);

/* Parse one record at p (n bytes available). Returns its total size, 0 if
 * it is incomplete or invalid. Exposed for the fuzzer and tests. */
size_t journal_decode(const unsigned char *p, size_t n, uint64_t *seq, int *db, int *del,
                      const unsigned char **key, size_t *klen,
                      const unsigned char **val, size_t *vlen);

#endif
