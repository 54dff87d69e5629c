/* A binary min-heap of pointers. Each element records its own index through
 * the setpos callback, so any element can be removed in O(log n) without a
 * search: the queue removes jobs from the middle of heaps all the time
 * (delete, kick-job, touch). */
#ifndef BS_HEAP_H
#define BS_HEAP_H

#include <stddef.h>

typedef int (*heap_less_fn)(const void *a, const void *b);
typedef void (*heap_setpos_fn)(void *x, size_t pos);

typedef struct heap {
    void **data;
    size_t len, cap;
    heap_less_fn less;
    heap_setpos_fn setpos;
} heap;

void heap_init(heap *h, heap_less_fn less, heap_setpos_fn setpos);
void heap_free(heap *h);
/* Returns 0, or -1 when memory runs out (the heap is unchanged). */
int heap_insert(heap *h, void *x);
/* Removes and returns the element at pos (pos < len). */
void *heap_remove(heap *h, size_t pos);
/* Restores order after the key of the element at pos changed. */
void heap_fix(heap *h, size_t pos);

static inline void *
heap_top(const heap *h)
{
    return h->len ? h->data[0] : NULL;
}

#endif
