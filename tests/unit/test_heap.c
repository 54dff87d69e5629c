/* Unit tests of the binary heap (src/heap.c): order, positions recorded
 * through setpos, removal from the middle, heap_fix, growth and the shrink
 * when a large heap empties. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "heap.h"

typedef struct item {
    int key;
    int id;             /* tie-break, so the order is total */
    size_t pos;
    int setpos_calls;
} item;

static int
item_less(const void *a, const void *b)
{
    const item *x = a, *y = b;
    return x->key != y->key ? x->key < y->key : x->id < y->id;
}

static void
item_setpos(void *x, size_t pos)
{
    item *it = x;
    it->pos = pos;
    it->setpos_calls++;
}

/* Every element sits where its pos says, and no child is less than its
 * parent. */
static void
check_heap(const heap *h)
{
    assert_true(h->len <= h->cap);
    for (size_t i = 0; i < h->len; i++) {
        const item *it = h->data[i];
        assert_int_equal(it->pos, i);
        if (i > 0)
            assert_false(item_less(h->data[i], h->data[(i - 1) / 2]));
    }
}

static void
init(heap *h)
{
    heap_init(h, item_less, item_setpos);
}

static void
test_empty(void **state)
{
    (void)state;
    heap h;
    init(&h);
    assert_int_equal(h.len, 0);
    assert_int_equal(h.cap, 0);
    assert_null(h.data);
    assert_null(heap_top(&h));
    heap_free(&h);
    assert_null(h.data);
}

static void
test_insert_remove_order(void **state)
{
    (void)state;
    static const int keys[] = {50, 3, 99, 17, 3, 42, 0, 77, 8, 61, 25, 13, 99, 1, 5};
    enum { N = sizeof keys / sizeof keys[0] };
    item items[N];
    heap h;
    init(&h);
    for (int i = 0; i < N; i++) {
        items[i] = (item){.key = keys[i], .id = i};
        assert_int_equal(heap_insert(&h, &items[i]), 0);
        assert_int_equal(h.len, (size_t)i + 1);
        check_heap(&h);
    }
    /* The top is always the least remaining element. */
    const item *prev = NULL;
    for (int i = 0; i < N; i++) {
        item *top = heap_top(&h);
        assert_non_null(top);
        item *got = heap_remove(&h, 0);
        assert_ptr_equal(got, top);
        if (prev)
            assert_true(item_less(prev, got));
        prev = got;
        check_heap(&h);
    }
    assert_int_equal(h.len, 0);
    assert_null(heap_top(&h));
    heap_free(&h);
}

static void
test_equal_keys_tiebreak(void **state)
{
    (void)state;
    item items[10];
    heap h;
    init(&h);
    for (int i = 9; i >= 0; i--) {
        items[i] = (item){.key = 7, .id = i};
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    }
    for (int i = 0; i < 10; i++) {
        item *got = heap_remove(&h, 0);
        assert_int_equal(got->id, i);
        check_heap(&h);
    }
    heap_free(&h);
}

static void
test_remove_middle(void **state)
{
    (void)state;
    enum { N = 31 };
    item items[N];
    heap h;
    init(&h);
    for (int i = 0; i < N; i++) {
        items[i] = (item){.key = (i * 17) % N, .id = i};
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    }
    check_heap(&h);

    /* Remove elements by the position setpos recorded for them: an inner
     * node, a leaf, the last slot, and the root. */
    int removed[N] = {0};
    item *victims[] = {&items[5], &items[20]};
    for (int k = 0; k < 2; k++) {
        item *v = victims[k];
        size_t pos = v->pos;
        assert_ptr_equal(h.data[pos], v);
        size_t len = h.len;
        assert_ptr_equal(heap_remove(&h, pos), v);
        assert_int_equal(h.len, len - 1);
        removed[v->id] = 1;
        check_heap(&h);
    }
    item *last = h.data[h.len - 1];
    assert_ptr_equal(heap_remove(&h, h.len - 1), last);
    removed[last->id] = 1;
    check_heap(&h);
    item *root = heap_top(&h);
    assert_ptr_equal(heap_remove(&h, 0), root);
    removed[root->id] = 1;
    check_heap(&h);

    for (size_t i = 0; i < h.len; i++) {
        item *it = h.data[i];
        assert_false(removed[it->id]);
    }

    /* The rest drain in order and exactly the non-removed remain. */
    int count = 0;
    item *prev = NULL;
    while (h.len) {
        item *got = heap_remove(&h, 0);
        assert_false(removed[got->id]);
        if (prev)
            assert_true(item_less(prev, got));
        prev = got;
        count++;
        check_heap(&h);
    }
    assert_int_equal(count, N - 4);
    heap_free(&h);
}

/* Removing from the middle can require the moved-in last element to sift up
 * (it can be less than the removed element's parent when it comes from a
 * different subtree). */
static void
test_remove_middle_sift_up(void **state)
{
    (void)state;
    /* Layout by hand, a valid heap:
     *            0
     *        10      1
     *      11  12   2  3
     * Removing key 11 (pos 3) moves key 3 (last) into pos 3, under 10: it
     * must rise above 10. */
    static const int layout[] = {0, 10, 1, 11, 12, 2, 3};
    enum { N = 7 };
    item items[N];
    heap h;
    init(&h);
    for (int i = 0; i < N; i++) {
        items[i] = (item){.key = layout[i], .id = i};
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    }
    /* Insertion in heap order keeps the layout. */
    for (int i = 0; i < N; i++)
        assert_ptr_equal(h.data[i], &items[i]);
    check_heap(&h);
    assert_ptr_equal(heap_remove(&h, 3), &items[3]);
    check_heap(&h);
    assert_ptr_equal(h.data[1], &items[6]);     /* key 3 rose to pos 1 */
    assert_int_equal(items[6].pos, 1);
    assert_ptr_equal(h.data[3], &items[1]);     /* key 10 went down */
    assert_int_equal(items[1].pos, 3);
    heap_free(&h);
}

static void
test_fix_after_key_change(void **state)
{
    (void)state;
    enum { N = 40 };
    item items[N];
    heap h;
    init(&h);
    for (int i = 0; i < N; i++) {
        items[i] = (item){.key = 100 + i, .id = i};
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    }
    /* Decrease a deep element's key: it must become the top. */
    item *deep = h.data[h.len - 1];
    deep->key = -5;
    heap_fix(&h, deep->pos);
    check_heap(&h);
    assert_ptr_equal(heap_top(&h), deep);
    assert_int_equal(deep->pos, 0);

    /* Increase the top's key past everything: it must sink to a leaf. */
    deep->key = 1000;
    heap_fix(&h, 0);
    check_heap(&h);
    assert_ptr_not_equal(heap_top(&h), deep);
    assert_true(2 * deep->pos + 1 >= h.len);    /* a leaf */
    assert_int_equal(((item *)heap_top(&h))->key, 100);

    /* Change a middle element both ways. */
    item *mid = h.data[5];
    mid->key = 99;
    heap_fix(&h, mid->pos);
    check_heap(&h);
    assert_ptr_equal(heap_top(&h), mid);
    mid->key = 120;
    heap_fix(&h, mid->pos);
    check_heap(&h);

    /* A fix with an unchanged key changes nothing. */
    item *top = heap_top(&h);
    heap_fix(&h, 0);
    check_heap(&h);
    assert_ptr_equal(heap_top(&h), top);

    /* Drain: sorted by the current keys. */
    item *prev = NULL;
    while (h.len) {
        item *got = heap_remove(&h, 0);
        if (prev)
            assert_true(item_less(prev, got));
        prev = got;
    }
    assert_ptr_equal(prev, deep);
    heap_free(&h);
}

/* A simple deterministic generator, so failures reproduce. */
static uint32_t rng_state = 12345;
static uint32_t
rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int
ref_min(item **live, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (item_less(live[i], live[best]))
            best = i;
    return (int)best;
}

static int
cmp_items(const void *a, const void *b)
{
    const item *x = *(item *const *)a, *y = *(item *const *)b;
    return item_less(x, y) ? -1 : item_less(y, x) ? 1 : 0;
}

static void
test_random_against_reference(void **state)
{
    (void)state;
    enum { POOL = 600, OPS = 20000 };
    item *pool = calloc(POOL, sizeof *pool);
    item **live = calloc(POOL, sizeof *live);    /* the reference: unordered */
    item **free_items = calloc(POOL, sizeof *free_items);
    assert_non_null(pool);
    assert_non_null(live);
    assert_non_null(free_items);
    size_t nlive = 0, nfree = POOL;
    for (int i = 0; i < POOL; i++) {
        pool[i].id = i;
        free_items[i] = &pool[POOL - 1 - i];
    }
    heap h;
    init(&h);
    rng_state = 12345;
    int inserts = 0, pops = 0, middles = 0, fixes = 0;
    for (int op = 0; op < OPS; op++) {
        uint32_t r = rnd() % 10;
        if ((r < 4 || nlive == 0) && nfree > 0) {
            item *it = free_items[--nfree];
            it->key = (int)(rnd() % 200);       /* many duplicates */
            assert_int_equal(heap_insert(&h, it), 0);
            live[nlive++] = it;
            inserts++;
        } else if (r < 6 && nlive) {
            int m = ref_min(live, nlive);
            item *want = live[m];
            assert_ptr_equal(heap_top(&h), want);
            assert_ptr_equal(heap_remove(&h, 0), want);
            live[m] = live[--nlive];
            free_items[nfree++] = want;
            pops++;
        } else if (r < 8 && nlive) {
            size_t k = rnd() % nlive;
            item *v = live[k];
            assert_ptr_equal(h.data[v->pos], v);
            assert_ptr_equal(heap_remove(&h, v->pos), v);
            live[k] = live[--nlive];
            free_items[nfree++] = v;
            middles++;
        } else if (nlive) {
            item *v = live[rnd() % nlive];
            v->key = (int)(rnd() % 200);
            heap_fix(&h, v->pos);
            fixes++;
        }
        assert_int_equal(h.len, nlive);
        if (nlive)
            assert_ptr_equal(heap_top(&h), live[ref_min(live, nlive)]);
        else
            assert_null(heap_top(&h));
        if (op % 97 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    assert_true(inserts > 1000 && pops > 500 && middles > 500 && fixes > 500);

    /* Drain against the sorted reference. */
    qsort(live, nlive, sizeof *live, cmp_items);
    for (size_t i = 0; i < nlive; i++)
        assert_ptr_equal(heap_remove(&h, 0), live[i]);
    assert_int_equal(h.len, 0);
    heap_free(&h);
    free(pool);
    free(live);
    free(free_items);
}

static void
test_growth_and_shrink(void **state)
{
    (void)state;
    enum { N = 200 };
    item items[N];
    heap h;
    init(&h);

    /* Capacity starts at 8 and doubles. */
    for (int i = 0; i < N; i++) {
        items[i] = (item){.key = N - i, .id = i};
        assert_int_equal(heap_insert(&h, &items[i]), 0);
        size_t want = 8;
        while (want < (size_t)i + 1)
            want *= 2;
        assert_int_equal(h.cap, want);
    }
    check_heap(&h);
    assert_int_equal(h.cap, 256);

    /* Emptying a heap of more than 64 slots frees its memory... */
    for (int i = 0; i < N - 1; i++) {
        heap_remove(&h, 0);
        assert_int_equal(h.cap, 256);       /* not before it is empty */
        assert_non_null(h.data);
    }
    heap_remove(&h, 0);
    assert_int_equal(h.len, 0);
    assert_int_equal(h.cap, 0);
    assert_null(h.data);
    assert_null(heap_top(&h));

    /* ...and the heap works again afterwards. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    assert_int_equal(h.cap, 16);
    check_heap(&h);
    assert_ptr_equal(heap_top(&h), &items[9]);

    /* A small heap (64 slots or fewer) keeps its memory when it empties. */
    while (h.len)
        heap_remove(&h, h.len - 1);
    assert_int_equal(h.cap, 16);
    assert_non_null(h.data);

    /* Exactly 64 slots is still kept. */
    for (int i = 0; i < 64; i++)
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    assert_int_equal(h.cap, 64);
    while (h.len)
        heap_remove(&h, 0);
    assert_int_equal(h.cap, 64);
    assert_non_null(h.data);

    /* 65 elements make 128 slots: more than 64, so freed when empty. */
    for (int i = 0; i < 65; i++)
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    assert_int_equal(h.cap, 128);
    while (h.len > 1)
        heap_remove(&h, h.len - 1);
    assert_int_equal(h.cap, 128);
    heap_remove(&h, 0);
    assert_int_equal(h.cap, 0);
    assert_null(h.data);

    heap_free(&h);
    assert_null(h.data);
    assert_int_equal(h.len, 0);
    assert_int_equal(h.cap, 0);
}

/* Removing the last slot must not disturb the others' positions. */
static void
test_remove_last_slot(void **state)
{
    (void)state;
    item items[5];
    heap h;
    init(&h);
    for (int i = 0; i < 5; i++) {
        items[i] = (item){.key = i, .id = i};
        assert_int_equal(heap_insert(&h, &items[i]), 0);
    }
    int calls[5];
    for (int i = 0; i < 5; i++)
        calls[i] = items[i].setpos_calls;
    assert_ptr_equal(heap_remove(&h, 4), &items[4]);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(items[i].pos, (size_t)i);
        assert_int_equal(items[i].setpos_calls, calls[i]);
    }
    check_heap(&h);
    heap_free(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_insert_remove_order),
        cmocka_unit_test(test_equal_keys_tiebreak),
        cmocka_unit_test(test_remove_middle),
        cmocka_unit_test(test_remove_middle_sift_up),
        cmocka_unit_test(test_fix_after_key_change),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_growth_and_shrink),
        cmocka_unit_test(test_remove_last_slot),
    };
    return cmocka_run_group_tests_name("heap", tests, NULL, NULL);
}
