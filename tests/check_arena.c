/*
 * check_arena.c - the per-request bump allocator.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "suites.h"

static bool
aligned(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

START_TEST(test_init_defaults)
{
    struct arena a;

    arena_init(&a, 0);
    ck_assert_uint_eq(a.chunk_size, 16384);
    ck_assert_ptr_null(a.head);
    ck_assert_uint_eq(a.total, 0);
    arena_init(&a, 100);
    ck_assert_uint_eq(a.chunk_size, 100);
    arena_release(&a);
}
END_TEST

START_TEST(test_alignment_and_total)
{
    struct arena a;
    size_t want = 0;

    arena_init(&a, 256);
    for (size_t n = 0; n <= 300; n++) {
        unsigned char *p = arena_alloc(&a, n);

        ck_assert_ptr_nonnull(p);
        ck_assert_msg(aligned(p), "size %zu at %p", n, (void *)p);
        memset(p, 0xab, n);
        want += (n + 15) / 16 * 16;
        ck_assert_uint_eq(a.total, want);
    }
    arena_release(&a);
    ck_assert_ptr_null(a.head);
    ck_assert_uint_eq(a.total, 0);
}
END_TEST

START_TEST(test_no_overlap)
{
    struct arena a;
    unsigned char *p[200];

    arena_init(&a, 128);
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(i % 37) + 1;

        p[i] = arena_alloc(&a, n);
        memset(p[i], i, n);
    }
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(i % 37) + 1;

        for (size_t j = 0; j < n; j++)
            ck_assert_int_eq(p[i][j], (unsigned char)i);
    }
    arena_release(&a);
}
END_TEST

START_TEST(test_calloc_zeroes)
{
    struct arena a;
    unsigned char *p;

    arena_init(&a, 64);
    /* Dirty the chunk, reset, and take the same memory again. */
    memset(arena_alloc(&a, 48), 0xff, 48);
    arena_reset(&a);
    p = arena_calloc(&a, 48);
    for (int i = 0; i < 48; i++)
        ck_assert_int_eq(p[i], 0);
    p = arena_calloc(&a, 1000);
    ck_assert(aligned(p));
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(p[i], 0);
    arena_release(&a);
}
END_TEST

START_TEST(test_big_blocks)
{
    struct arena a;
    char *small1, *big, *small2, *first;

    arena_init(&a, 256);
    /* A first allocation bigger than a chunk. */
    first = arena_alloc(&a, 10000);
    ck_assert(aligned(first));
    memset(first, 1, 10000);

    small1 = arena_alloc(&a, 16);
    big = arena_alloc(&a, 100000);
    small2 = arena_alloc(&a, 16);
    ck_assert(aligned(big));
    memset(big, 2, 100000);
    memset(small1, 3, 16);
    memset(small2, 4, 16);
    /* The big block took a chunk of its own and left the current one
     * in use: the next small allocation follows the previous one. */
    ck_assert_ptr_eq(small2, small1 + 16);
    ck_assert_int_eq(first[9999], 1);
    ck_assert_int_eq(big[0], 2);
    ck_assert_int_eq(big[99999], 2);
    ck_assert_int_eq(small1[15], 3);
    ck_assert_uint_eq(a.total, 10000 + 16 + 100000 + 16);
    arena_release(&a);
}
END_TEST

START_TEST(test_reset_keeps_working)
{
    struct arena a;

    arena_init(&a, 256);
    for (int round = 0; round < 50; round++) {
        char *s;

        for (int i = 0; i < 40; i++)
            memset(arena_alloc(&a, 100), round, 100);
        if (round % 3 == 0)
            memset(arena_alloc(&a, 5000), round, 5000);
        s = arena_printf(&a, "round %d", round);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(a.total, 0);
        arena_reset(&a);
        ck_assert_uint_eq(a.total, 0);
        ck_assert_ptr_nonnull(a.head); /* one chunk is kept */
    }
    ck_assert_str_eq(arena_strdup(&a, "after"), "after");
    arena_release(&a);
    /* Reset of an empty arena, and use after release. */
    arena_reset(&a);
    ck_assert_str_eq(arena_strdup(&a, "again"), "again");
    arena_release(&a);
}
END_TEST

START_TEST(test_strings)
{
    struct arena a;
    char *s;
    char big[5000];

    arena_init(&a, 64);
    s = arena_strndup(&a, "hello world", 5);
    ck_assert_str_eq(s, "hello");
    s = arena_strndup(&a, "abc", 0);
    ck_assert_str_eq(s, "");
    /* Exactly n bytes, embedded NULs included. */
    s = arena_strndup(&a, "a\0b", 3);
    ck_assert_int_eq(s[0], 'a');
    ck_assert_int_eq(s[1], '\0');
    ck_assert_int_eq(s[2], 'b');
    ck_assert_int_eq(s[3], '\0');
    ck_assert_str_eq(arena_strdup(&a, ""), "");
    ck_assert_str_eq(arena_strdup(&a, "caf\xc3\xa9"), "caf\xc3\xa9");

    ck_assert_str_eq(arena_printf(&a, "%s-%d-%05.1f", "ab", 42, 3.14159),
                     "ab-42-003.1");
    ck_assert_str_eq(arena_printf(&a, "%s", ""), "");
    /* Longer than a chunk. */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s = arena_printf(&a, "<%s>", big);
    ck_assert_uint_eq(strlen(s), sizeof(big) + 1);
    ck_assert_int_eq(s[0], '<');
    ck_assert_int_eq(s[sizeof(big)], '>');
    s = arena_strdup(&a, big);
    ck_assert_str_eq(s, big);
    arena_release(&a);
}
END_TEST

Suite *
arena_suite(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("arena");

    tcase_add_test(tc, test_init_defaults);
    tcase_add_test(tc, test_alignment_and_total);
    tcase_add_test(tc, test_no_overlap);
    tcase_add_test(tc, test_calloc_zeroes);
    tcase_add_test(tc, test_big_blocks);
    tcase_add_test(tc, test_reset_keeps_working);
    tcase_add_test(tc, test_strings);
    suite_add_tcase(s, tc);
    return s;
}
