#include "heap.h"

#include <stdlib.h>

void
heap_init(heap *h, heap_less_fn less, heap_setpos_fn setpos)
{
    h->data = NULL;
    h->len = h->cap = 0;
    h->less = less;
    h->setpos = setpos;
}

void
heap_free(heap *h)
{
    free(h->data);
    h->data = NULL;
    h->len = h->cap = 0;
}

static void
put(heap *h, size_t i, void *x)
{
    h->data[i] = x;
    h->setpos(x, i);
}

static void
sift_up(heap *h, size_t i)
{
    void *x = h->data[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h->less(x, h->data[p]))
            break;
        put(h, i, h->data[p]);
        i = p;
    }
    put(h, i, x);
}

static void
sift_down(heap *h, size_t i)
{
    void *x = h->data[i];
    for (;;) {
        size_t l = 2 * i + 1, best = l;
        if (l >= h->len)
            break;
        if (l + 1 < h->len && h->less(h->data[l + 1], h->data[l]))
            best = l + 1;
        if (!h->less(h->data[best], x))
            break;
        put(h, i, h->data[best]);
        i = best;
    }
    put(h, i, x);
}

int
heap_insert(heap *h, void *x)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        void **d = realloc(h->data, cap * sizeof *d);
        if (!d)
            return -1;
        h->data = d;
        h->cap = cap;
    }
    h->data[h->len++] = x;
    sift_up(h, h->len - 1);
    return 0;
}

void
heap_fix(heap *h, size_t pos)
{
    if (pos > 0 && h->less(h->data[pos], h->data[(pos - 1) / 2]))
        sift_up(h, pos);
    else
        sift_down(h, pos);
}

void *
heap_remove(heap *h, size_t pos)
{
    void *x = h->data[pos];
    h->len--;
    if (pos < h->len) {
        put(h, pos, h->data[h->len]);
        heap_fix(h, pos);
    }
    /* Shrink a heap that emptied after a burst so idle tubes hold no memory. */
    if (h->len == 0 && h->cap > 64) {
        free(h->data);
        h->data = NULL;
        h->cap = 0;
    }
    return x;
}
