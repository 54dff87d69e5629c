#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers up to this size are kept when they empty: most replies are short,
 * and reusing the memory avoids a malloc per reply. Larger ones are freed so
 * an idle connection holds no more than this. */
#define KEEP_CAP 1024

#define LINEAR_FROM ((size_t)128 << 10)
#define LINEAR_STEP ((size_t)64 << 10)

int
buf_reserve(buf *b, size_t more)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= more)
        return 0;
    if (b->off) {                   /* slide the unsent tail to the front */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= more)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more && cap < LINEAR_FROM)
        cap *= 2;
    /* Past LINEAR_FROM grow by what is needed, in whole steps: a client
     * over the output mark holds the mark plus one reply, not twice that
     * (large blocks are mmap'd, so realloc moves pages, not bytes). */
    if (cap - b->len < more)
        cap = (b->len + more + LINEAR_STEP - 1) / LINEAR_STEP * LINEAR_STEP;
    char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int
buf_append(buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int
buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void
buf_consume(buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) {
        b->off = b->len = 0;
        if (b->cap > KEEP_CAP)
            buf_free(b);
    }
}

void
buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->off = b->cap = 0;
}
