/* A growable byte buffer with a read offset: connection output. */
#ifndef BS_BUF_H
#define BS_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;     /* bytes written */
    size_t off;     /* bytes already consumed from the front */
    size_t cap;
} buf;

/* Each returns 0, or -1 when memory runs out (the buffer is unchanged). */
int buf_reserve(buf *b, size_t more);
int buf_append(buf *b, const void *p, size_t n);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop n bytes from the front; frees the memory once empty and large. */
void buf_consume(buf *b, size_t n);
void buf_free(buf *b);

static inline size_t
buf_pending(const buf *b)
{
    return b->len - b->off;
}

#endif
