/* Unit tests of the store's write batch (src/store_batch.c): ops come back
 * in order with their bytes intact, bodies are found by job id (also after
 * the index grows), clearing forgets everything, and large batches give
 * their memory back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store_batch.h"

static void
test_ops_in_order(void **state)
{
    (void)state;
    batch b = {0};
    assert_int_equal(batch_put(&b, 2, "k1", 2, "value\r\n", 7, 1), 0);
    assert_int_equal(batch_del(&b, 1, "key-two", 7), 0);
    assert_int_equal(batch_put(&b, 3, "", 0, "", 0, 0), 0);
    assert_int_equal(b.nops, 3);

    batch_op op;
    size_t pos = batch_next(&b, 0, &op);
    assert_true(pos > 0);
    assert_int_equal(op.db, 2);
    assert_int_equal(op.del, 0);
    assert_int_equal(op.append, 1);
    assert_int_equal(op.klen, 2);
    assert_memory_equal(op.key, "k1", 2);
    assert_int_equal(op.vlen, 7);
    assert_memory_equal(op.val, "value\r\n", 7);

    pos = batch_next(&b, pos, &op);
    assert_int_equal(op.db, 1);
    assert_int_equal(op.del, 1);
    assert_int_equal(op.append, 0);
    assert_int_equal(op.klen, 7);
    assert_memory_equal(op.key, "key-two", 7);
    assert_int_equal(op.vlen, 0);

    pos = batch_next(&b, pos, &op);
    assert_int_equal(op.db, 3);
    assert_int_equal(op.klen, 0);
    assert_int_equal(op.vlen, 0);
    assert_int_equal(pos, b.len);
    assert_int_equal(batch_next(&b, pos, &op), 0);
    batch_free(&b);
}

static void
test_oversized_key_refused(void **state)
{
    (void)state;
    batch b = {0};
    static char key[70000];
    assert_int_equal(batch_put(&b, 0, key, sizeof key, "v", 1, 0), -1);
    assert_int_equal(b.nops, 0);
    assert_int_equal(b.len, 0);
    batch_free(&b);
}

/* Bodies of many jobs, with other ops between them: each is found by its
 * id, the index grows past its first size, and unknown ids are not found. */
static void
test_bodies_by_id(void **state)
{
    (void)state;
    batch b = {0};
    enum { N = 5000 };
    char body[64];
    for (uint64_t id = 1; id <= N; id++) {
        int n = snprintf(body, sizeof body, "body of %llu\r\n", (unsigned long long)id);
        assert_int_equal(batch_put(&b, 2, &id, sizeof id, body, (size_t)n, 1), 0);
        assert_int_equal(batch_index_body(&b, id), 0);
        assert_int_equal(batch_put(&b, 1, &id, sizeof id, "record", 6, 0), 0);
        if (id % 7 == 0)
            assert_int_equal(batch_del(&b, 1, &id, sizeof id), 0);
    }
    assert_true(b.nslots >= 2 * N);
    for (uint64_t id = 1; id <= N; id++) {
        size_t len = 0;
        const char *p = batch_body(&b, id, &len);
        int n = snprintf(body, sizeof body, "body of %llu\r\n", (unsigned long long)id);
        assert_non_null(p);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(p, body, len);
    }
    size_t len = 0;
    assert_null(batch_body(&b, N + 1, &len));
    assert_null(batch_body(&b, (uint64_t)1 << 40, &len));
    batch_free(&b);
}

static void
test_index_needs_an_op_and_an_id(void **state)
{
    (void)state;
    batch b = {0};
    assert_int_equal(batch_index_body(&b, 1), -1);
    assert_int_equal(batch_put(&b, 2, "k", 1, "v\r\n", 3, 0), 0);
    assert_int_equal(batch_index_body(&b, 0), -1);
    size_t len;
    assert_null(batch_body(&b, 1, &len));
    batch_free(&b);
}

static void
test_clear_forgets_and_shrinks(void **state)
{
    (void)state;
    batch b = {0};
    static char big[1 << 16];
    for (uint64_t id = 1; id <= 64; id++) {
        assert_int_equal(batch_put(&b, 2, &id, sizeof id, big, sizeof big, 1), 0);
        assert_int_equal(batch_index_body(&b, id), 0);
    }
    assert_true(b.cap > (1u << 22));
    batch_clear(&b);
    assert_int_equal(b.nops, 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);             /* a burst's buffer is given back */
    size_t len;
    assert_null(batch_body(&b, 1, &len));

    /* A small batch keeps its memory for the next one. */
    assert_int_equal(batch_put(&b, 2, "k", 1, "v\r\n", 3, 0), 0);
    assert_int_equal(batch_index_body(&b, 9), 0);
    size_t cap = b.cap;
    batch_clear(&b);
    assert_int_equal(b.cap, cap);
    assert_null(batch_body(&b, 9, &len));
    assert_int_equal(batch_put(&b, 2, "k", 1, "w\r\n", 3, 0), 0);
    assert_int_equal(batch_index_body(&b, 10), 0);
    const char *p = batch_body(&b, 10, &len);
    assert_non_null(p);
    assert_memory_equal(p, "w\r\n", 3);
    batch_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_in_order),
        cmocka_unit_test(test_oversized_key_refused),
        cmocka_unit_test(test_bodies_by_id),
        cmocka_unit_test(test_index_needs_an_op_and_an_id),
        cmocka_unit_test(test_clear_forgets_and_shrinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
