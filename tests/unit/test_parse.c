/* Unit tests of the command-line token parsers (src/parse.c) and of the tube
 * name rule (tube_name_valid in src/tube.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"
#include "tube.h"

/* ---- parse_u64 ---- */

static void
test_u64_plain(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_int_equal(parse_u64("0", &v, NULL), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_u64("42", &v, NULL), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_u64("007", &v, NULL), 0);
    assert_int_equal(v, 7);
    assert_int_equal(parse_u64("1234567890123", &v, NULL), 0);
    assert_int_equal(v, 1234567890123ULL);
}

static void
test_u64_leading_spaces(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(parse_u64(" 5", &v, NULL), 0);
    assert_int_equal(v, 5);
    assert_int_equal(parse_u64("     123", &v, NULL), 0);
    assert_int_equal(v, 123);
    /* Only spaces are skipped: no tabs, no sign. */
    v = 77;
    assert_int_equal(parse_u64("\t5", &v, NULL), -1);
    assert_int_equal(parse_u64("+5", &v, NULL), -1);
    assert_int_equal(parse_u64("-5", &v, NULL), -1);
    assert_int_equal(v, 77);        /* untouched on failure */
}

static void
test_u64_no_digits(void **state)
{
    (void)state;
    uint64_t v = 77;
    const char *e = NULL;
    assert_int_equal(parse_u64("", &v, NULL), -1);
    assert_int_equal(parse_u64("   ", &v, NULL), -1);
    assert_int_equal(parse_u64("x1", &v, NULL), -1);
    assert_int_equal(parse_u64("", &v, &e), -1);
    assert_int_equal(parse_u64("  abc", &v, &e), -1);
    assert_null(e);
    assert_int_equal(v, 77);
}

static void
test_u64_overflow(void **state)
{
    (void)state;
    uint64_t v = 0;
    const char *e;
    assert_int_equal(parse_u64("18446744073709551615", &v, NULL), 0);
    assert_true(v == UINT64_MAX);
    v = 3;
    assert_int_equal(parse_u64("18446744073709551616", &v, NULL), -1);
    assert_int_equal(parse_u64("18446744073709551620", &v, NULL), -1);
    assert_int_equal(parse_u64("99999999999999999999", &v, NULL), -1);
    assert_int_equal(parse_u64("184467440737095516150", &v, NULL), -1);
    assert_int_equal(parse_u64("18446744073709551616 1", &v, &e), -1);
    assert_int_equal(v, 3);
    /* Leading zeros do not count towards overflow. */
    assert_int_equal(parse_u64("00000000000000000000018446744073709551615", &v, NULL), 0);
    assert_true(v == UINT64_MAX);
}

static void
test_u64_trailing(void **state)
{
    (void)state;
    uint64_t v = 0;
    const char *e = NULL;
    const char *s = "12 34";
    /* Without end: the number must end the string. */
    assert_int_equal(parse_u64("12 ", &v, NULL), -1);
    assert_int_equal(parse_u64("12x", &v, NULL), -1);
    assert_int_equal(parse_u64(s, &v, NULL), -1);
    /* With end: *end is the first byte after the digits. */
    assert_int_equal(parse_u64(s, &v, &e), 0);
    assert_int_equal(v, 12);
    assert_ptr_equal(e, s + 2);
    assert_int_equal(parse_u64(e, &v, &e), 0);
    assert_int_equal(v, 34);
    assert_ptr_equal(e, s + 5);
    assert_int_equal(*e, '\0');
    const char *t = "  9x";
    assert_int_equal(parse_u64(t, &v, &e), 0);
    assert_int_equal(v, 9);
    assert_ptr_equal(e, t + 3);
}

/* ---- parse_u32 ---- */

static void
test_u32(void **state)
{
    (void)state;
    uint32_t v = 0;
    const char *e = NULL;
    assert_int_equal(parse_u32("0", &v, NULL), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_u32("  65535", &v, NULL), 0);
    assert_int_equal(v, 65535);
    assert_int_equal(parse_u32("4294967295", &v, NULL), 0);
    assert_true(v == UINT32_MAX);
    v = 5;
    assert_int_equal(parse_u32("4294967296", &v, NULL), -1);
    assert_int_equal(parse_u32("4294967296", &v, &e), -1);
    assert_int_equal(parse_u32("18446744073709551615", &v, NULL), -1);
    assert_int_equal(parse_u32("18446744073709551616", &v, NULL), -1);
    assert_int_equal(parse_u32("", &v, NULL), -1);
    assert_int_equal(parse_u32("  ", &v, NULL), -1);
    assert_int_equal(parse_u32("a", &v, NULL), -1);
    assert_int_equal(parse_u32("-1", &v, NULL), -1);
    assert_int_equal(parse_u32("1 ", &v, NULL), -1);
    assert_int_equal(parse_u32("1\r", &v, NULL), -1);
    assert_int_equal(v, 5);
    assert_null(e);

    const char *s = " 10 20 4294967295";
    assert_int_equal(parse_u32(s, &v, &e), 0);
    assert_int_equal(v, 10);
    assert_ptr_equal(e, s + 3);
    assert_int_equal(parse_u32(e, &v, &e), 0);
    assert_int_equal(v, 20);
    assert_int_equal(parse_u32(e, &v, &e), 0);
    assert_true(v == UINT32_MAX);
    assert_int_equal(*e, '\0');
    assert_int_equal(parse_u32("7abc", &v, &e), 0);
    assert_int_equal(v, 7);
    assert_string_equal(e, "abc");
}

/* ---- parse_tube_name ---- */

static void
test_parse_tube_name(void **state)
{
    (void)state;
    const char *name = NULL, *end = NULL;
    size_t len = 0;
    const char *s = "foo 10";
    assert_int_equal(parse_tube_name(s, &name, &len, &end), 0);
    assert_ptr_equal(name, s);
    assert_int_equal(len, 3);
    assert_ptr_equal(end, s + 3);

    s = "   a-b+c/d;e.f$g_h(i)0 rest";
    assert_int_equal(parse_tube_name(s, &name, &len, &end), 0);
    assert_ptr_equal(name, s + 3);
    assert_int_equal(len, strlen("a-b+c/d;e.f$g_h(i)0"));
    assert_ptr_equal(end, s + 3 + len);
    assert_string_equal(end, " rest");

    /* The run stops at the first non-name byte; it may still be an invalid
     * name (leading hyphen), which is for tube_name_valid to judge. */
    s = "-x!y";
    assert_int_equal(parse_tube_name(s, &name, &len, &end), 0);
    assert_ptr_equal(name, s);
    assert_int_equal(len, 2);
    assert_int_equal(*end, '!');

    char longname[300];
    memset(longname, 'a', 250);
    longname[250] = '\0';
    assert_int_equal(parse_tube_name(longname, &name, &len, &end), 0);
    assert_int_equal(len, 250);
    assert_ptr_equal(end, longname + 250);

    name = NULL;
    len = 99;
    assert_int_equal(parse_tube_name("", &name, &len, &end), -1);
    assert_int_equal(parse_tube_name("    ", &name, &len, &end), -1);
    assert_int_equal(parse_tube_name("  !foo", &name, &len, &end), -1);
    assert_int_equal(parse_tube_name("*", &name, &len, &end), -1);
    assert_null(name);
    assert_int_equal(len, 99);
}

/* ---- tube_name_valid ---- */

static void
test_name_length(void **state)
{
    (void)state;
    char n[TUBE_NAME_MAX + 2];
    memset(n, 'x', sizeof n);
    assert_int_equal(TUBE_NAME_MAX, 200);
    assert_int_equal(tube_name_valid(n, 1), 1);
    assert_int_equal(tube_name_valid(n, 199), 1);
    assert_int_equal(tube_name_valid(n, 200), 1);
    assert_int_equal(tube_name_valid(n, 201), 0);
    assert_int_equal(tube_name_valid(n, 0), 0);
    assert_int_equal(tube_name_valid("", 0), 0);
}

static void
test_name_chars(void **state)
{
    (void)state;
    /* Every allowed punctuation character, alone and inside a name. */
    static const char punct[] = "+/;.$_()";
    for (const char *c = punct; *c; c++) {
        char one[2] = {*c, 0};
        char mid[4] = {'a', *c, 'b', 0};
        assert_int_equal(tube_name_valid(one, 1), 1);
        assert_int_equal(tube_name_valid(mid, 3), 1);
    }
    assert_int_equal(tube_name_valid("a-b", 3), 1);
    assert_int_equal(tube_name_valid("a-", 2), 1);
    assert_int_equal(tube_name_valid("default", 7), 1);
    assert_int_equal(tube_name_valid("ABCXYZabcxyz0189", 16), 1);
    assert_int_equal(tube_name_valid("-+/;.$_()", 9), 0);     /* leading hyphen */
    assert_int_equal(tube_name_valid("+/;.$_()-", 9), 1);
    assert_int_equal(tube_name_valid("-", 1), 0);
    assert_int_equal(tube_name_valid("-foo", 4), 0);

    /* Every byte outside the allowed set is refused, anywhere. */
    for (int b = 0; b < 256; b++) {
        int ok = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                 (b >= '0' && b <= '9') || (b && strchr("-+/;.$_()", b));
        char mid[3] = {'a', (char)b, 'b'};
        char first[2] = {(char)b, 'a'};
        assert_int_equal(tube_name_valid(mid, 3), ok);
        assert_int_equal(tube_name_valid(first, 2), b == '-' ? 0 : ok);
    }
    assert_int_equal(tube_name_valid("a b", 3), 0);
    assert_int_equal(tube_name_valid("a\0b", 3), 0);
    assert_int_equal(tube_name_valid("tube*", 5), 0);
    assert_int_equal(tube_name_valid("tube\r\n", 6), 0);
    /* The length given counts, not a NUL. */
    assert_int_equal(tube_name_valid("ab cd", 2), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64_plain),
        cmocka_unit_test(test_u64_leading_spaces),
        cmocka_unit_test(test_u64_no_digits),
        cmocka_unit_test(test_u64_overflow),
        cmocka_unit_test(test_u64_trailing),
        cmocka_unit_test(test_u32),
        cmocka_unit_test(test_parse_tube_name),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_name_chars),
    };
    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
