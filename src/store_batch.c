#include "store_batch.h"

#include <stdlib.h>
#include <string.h>

/* Op header: db, del, append (a byte each), key length (2), value length
 * (4), then the key and the value. Keys are job ids, meta names and tube
 * names, all far below 64 KiB; values are at most a job body. */
#define HDR 9

/* Memory kept across batches; a burst's larger buffers are given back. */
#define KEEP_BYTES ((size_t)1 << 20)
#define KEEP_SLOTS ((size_t)1 << 12)

static int
reserve(batch *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    unsigned char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

static int
add(batch *b, int db, int del, int append, const void *key, size_t klen, const void *val,
    size_t vlen)
{
    if (klen > 0xffff || vlen > 0xffffffffu || reserve(b, HDR + klen + vlen) < 0)
        return -1;
    unsigned char *p = b->data + b->len;
    uint16_t k16 = (uint16_t)klen;
    uint32_t v32 = (uint32_t)vlen;
    b->last = b->len;
    p[0] = (unsigned char)db;
    p[1] = (unsigned char)del;
    p[2] = (unsigned char)append;
    memcpy(p + 3, &k16, 2);
    memcpy(p + 5, &v32, 4);
    memcpy(p + HDR, key, klen);
    if (vlen)
        memcpy(p + HDR + klen, val, vlen);
    b->len += HDR + klen + vlen;
    b->nops++;
    return 0;
}

int
batch_put(batch *b, int db, const void *key, size_t klen, const void *val, size_t vlen, int append)
{
    return add(b, db, 0, append, key, klen, val, vlen);
}

int
batch_del(batch *b, int db, const void *key, size_t klen)
{
    return add(b, db, 1, 0, key, klen, NULL, 0);
}

size_t
batch_next(const batch *b, size_t pos, batch_op *op)
{
    if (pos >= b->len)
        return 0;
    const unsigned char *p = b->data + pos;
    uint16_t k16;
    uint32_t v32;
    memcpy(&k16, p + 3, 2);
    memcpy(&v32, p + 5, 4);
    op->db = p[0];
    op->del = p[1];
    op->append = p[2];
    op->key = p + HDR;
    op->klen = k16;
    op->val = p + HDR + k16;
    op->vlen = v32;
    return pos + HDR + k16 + v32;
}

static size_t
slot_of(uint64_t id, size_t nslots)
{
    /* Fibonacci hashing: consecutive ids spread over the table. */
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (nslots - 1);
}

static void
insert(body_slot *slots, size_t nslots, uint64_t id, size_t off)
{
    size_t i = slot_of(id, nslots);
    while (slots[i].id && slots[i].id != id)
        i = (i + 1) & (nslots - 1);
    slots[i].id = id;
    slots[i].off = off;
}

int
batch_index_body(batch *b, uint64_t id)
{
    if (!b->nops || !id)
        return -1;
    if ((b->nbodies + 1) * 2 > b->nslots) {
        size_t n = b->nslots ? b->nslots * 2 : 256;
        body_slot *s = calloc(n, sizeof *s);
        if (!s)
            return -1;
        for (size_t i = 0; i < b->nslots; i++)
            if (b->slots[i].id)
                insert(s, n, b->slots[i].id, b->slots[i].off);
        free(b->slots);
        b->slots = s;
        b->nslots = n;
    }
    insert(b->slots, b->nslots, id, b->last);
    b->nbodies++;
    return 0;
}

const char *
batch_body(const batch *b, uint64_t id, size_t *len)
{
    if (!b->nbodies)
        return NULL;
    for (size_t i = slot_of(id, b->nslots); b->slots[i].id; i = (i + 1) & (b->nslots - 1)) {
        if (b->slots[i].id == id) {
            batch_op op;
            batch_next(b, b->slots[i].off, &op);
            *len = op.vlen;
            return op.val;
        }
    }
    return NULL;
}

void
batch_clear(batch *b)
{
    if (b->cap > KEEP_BYTES) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    if (b->nslots > KEEP_SLOTS) {
        free(b->slots);
        b->slots = NULL;
        b->nslots = 0;
    } else if (b->nbodies) {
        memset(b->slots, 0, b->nslots * sizeof *b->slots);
    }
    b->len = b->last = b->nops = b->nbodies = 0;
}

void
batch_free(batch *b)
{
    free(b->data);
    free(b->slots);
    memset(b, 0, sizeof *b);
}
