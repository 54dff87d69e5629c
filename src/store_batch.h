/* A batch of store writes waiting for their commit: a compact log of puts
 * and deletes, and an index of the job bodies it holds. With the committer
 * thread (store.c, zero-loss mode) the event loop records each turn's
 * changes here while the previous batch is being committed, and a reserve
 * or peek of a job whose put is not yet committed finds its body here.
 * Plain memory: it knows nothing of LMDB or threads. */
#ifndef BS_STORE_BATCH_H
#define BS_STORE_BATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct batch_op {
    int db;
    int del;
    int append;                 /* the key sorts after every key in db */
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
} batch_op;

typedef struct body_slot {
    uint64_t id;                /* 0: empty (job ids start at 1) */
    size_t off;                 /* of the body in data */
} body_slot;

typedef struct batch {
    unsigned char *data;        /* ops, one after the other */
    size_t len, cap;
    size_t last;                /* offset of the last op recorded */
    size_t nops;
    body_slot *slots;           /* open addressing, a power of two long */
    size_t nslots, nbodies;
} batch;

/* Each returns 0, or -1 when memory runs out (the batch is unchanged). */
int batch_put(batch *b, int db, const void *key, size_t klen, const void *val, size_t vlen,
              int append);
int batch_del(batch *b, int db, const void *key, size_t klen);
/* The value of the last op recorded is the body of job id. */
int batch_index_body(batch *b, uint64_t id);
/* The body (with its CRLF) recorded for job id, or NULL. */
const char *batch_body(const batch *b, uint64_t id, size_t *len);
/* Walk the ops: start with pos 0; returns the next pos, or 0 at the end. */
size_t batch_next(const batch *b, size_t pos, batch_op *op);
/* Forget every op, keeping a modest amount of memory for the next batch. */
void batch_clear(batch *b);
void batch_free(batch *b);

#endif
