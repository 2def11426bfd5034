/*
 * check_utf8.c - utf8_valid() against the edges of RFC 3629's syntax
 * (section 4) and Markus Kuhn's decoder stress cases; utf8_count() on
 * well-formed text.  Inputs are copied into buffers of exactly n bytes so
 * ASan sees any read past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "utf8.h"

static bool
valid_n(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    bool ok;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, n);
    ok = utf8_valid(copy, n);
    free(copy);
    return ok;
}

static bool
valid(const char *s)
{
    return valid_n(s, strlen(s));
}

START_TEST(test_ascii)
{
    ck_assert(valid(""));
    ck_assert(valid("a"));
    ck_assert(valid("hello, world"));
    ck_assert(valid("\x01\x1f\x7f"));
    ck_assert(utf8_valid(NULL, 0));
    /* NUL is refused anywhere (the header promises no NUL). */
    ck_assert(!valid_n("\0", 1));
    ck_assert(!valid_n("a\0b", 3));
    ck_assert(!valid_n("ab\0", 3));
}
END_TEST

START_TEST(test_two_byte)
{
    ck_assert(valid("\xc2\x80"));  /* U+0080, first */
    ck_assert(valid("\xdf\xbf"));  /* U+07FF, last */
    ck_assert(valid("\xc3\xa9"));  /* é */
    ck_assert(!valid("\xc0\x80")); /* overlong NUL */
    ck_assert(!valid("\xc0\xaf")); /* overlong '/' */
    ck_assert(!valid("\xc1\xbf")); /* overlong U+007F */
    ck_assert(!valid("\xc2"));     /* truncated */
    ck_assert(!valid("\xc2"
                     "a")); /* bad continuation */
    ck_assert(!valid("\xc2\xc0"));
    ck_assert(!valid_n("\xc2\x00", 2));
}
END_TEST

START_TEST(test_three_byte)
{
    ck_assert(valid("\xe0\xa0\x80"));  /* U+0800, first */
    ck_assert(valid("\xe2\x82\xac"));  /* € */
    ck_assert(valid("\xed\x9f\xbf"));  /* U+D7FF, below the surrogates */
    ck_assert(valid("\xee\x80\x80"));  /* U+E000, above them */
    ck_assert(valid("\xef\xbf\xbd"));  /* U+FFFD */
    ck_assert(valid("\xef\xbf\xbf"));  /* U+FFFF, a noncharacter but valid */
    ck_assert(valid("\xe2\x80\xa8"));  /* U+2028 */
    ck_assert(!valid("\xe0\x80\x80")); /* overlong NUL */
    ck_assert(!valid("\xe0\x9f\xbf")); /* overlong U+07FF */
    ck_assert(!valid("\xed\xa0\x80")); /* U+D800 */
    ck_assert(!valid("\xed\xad\xbf")); /* U+DB7F */
    ck_assert(!valid("\xed\xb0\x80")); /* U+DC00 */
    ck_assert(!valid("\xed\xbf\xbf")); /* U+DFFF */
    ck_assert(!valid("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 U+1F600 */
    ck_assert(!valid("\xe2\x82"));                 /* truncated */
    ck_assert(!valid("\xe2"));
    ck_assert(!valid("\xe2\x82"
                     "a"));
    ck_assert(!valid("\xe2"
                     "a\xac"));
    ck_assert(!valid("\xef\xbf\xc0"));
}
END_TEST

START_TEST(test_four_byte)
{
    ck_assert(valid("\xf0\x90\x80\x80"));  /* U+10000, first */
    ck_assert(valid("\xf0\x9f\x98\x80"));  /* U+1F600 */
    ck_assert(valid("\xf3\xbf\xbf\xbf"));  /* U+FFFFF */
    ck_assert(valid("\xf4\x8f\xbf\xbf"));  /* U+10FFFF, last */
    ck_assert(!valid("\xf0\x80\x80\x80")); /* overlong NUL */
    ck_assert(!valid("\xf0\x8f\xbf\xbf")); /* overlong U+FFFF */
    ck_assert(!valid("\xf4\x90\x80\x80")); /* U+110000 */
    ck_assert(!valid("\xf4\xbf\xbf\xbf"));
    ck_assert(!valid("\xf5\x80\x80\x80")); /* lead bytes past F4 */
    ck_assert(!valid("\xf7\xbf\xbf\xbf"));
    ck_assert(!valid("\xf0\x9f\x98")); /* truncated */
    ck_assert(!valid("\xf0\x9f"));
    ck_assert(!valid("\xf0"));
    ck_assert(!valid("\xf0\x9f\x98"
                     "a"));
}
END_TEST

START_TEST(test_never_valid_bytes)
{
    char one[2] = {0, 0};

    /* Lone continuation bytes and the bytes UTF-8 never uses. */
    for (int c = 0x80; c <= 0xbf; c++) {
        one[0] = (char)c;
        ck_assert_msg(!valid(one), "byte %#x accepted", c);
    }
    for (int c = 0xf5; c <= 0xff; c++) {
        one[0] = (char)c;
        ck_assert_msg(!valid(one), "byte %#x accepted", c);
    }
    ck_assert(!valid("\xf8\x88\x80\x80\x80"));     /* old 5-byte form */
    ck_assert(!valid("\xfc\x84\x80\x80\x80\x80")); /* old 6-byte form */
    ck_assert(!valid("\xfe\xff"));
    ck_assert(!valid("\xef\xbb\xbf\x80")); /* BOM then a stray byte */
    ck_assert(valid("\xef\xbb\xbf"));      /* a BOM is a valid U+FEFF */
    ck_assert(!valid("a\x80"
                     "b"));
}
END_TEST

START_TEST(test_length_bound)
{
    /* n cuts a sequence short: invalid, and nothing past n is read. */
    ck_assert(!valid_n("\xc3\xa9", 1));
    ck_assert(!valid_n("\xe2\x82\xac", 2));
    ck_assert(!valid_n("\xf0\x9f\x98\x80", 3));
    ck_assert(valid_n("a\xc3\xa9", 3));
    ck_assert(valid_n("a\xc3\xa9", 1));
    ck_assert(valid_n("\xf0\x9f\x98\x80"
                      "x",
                      4));
}
END_TEST

START_TEST(test_all_two_byte_code_points)
{
    /* Every lead byte/continuation pair: valid exactly when the lead is
     * C2..DF and the second byte is 80..BF. */
    for (int a = 0x80; a <= 0xff; a++)
        for (int b = 0; b <= 0xff; b++) {
            char s[2] = {(char)a, (char)b};
            bool want = a >= 0xc2 && a <= 0xdf && b >= 0x80 && b <= 0xbf;

            ck_assert_msg(valid_n(s, 2) == want, "%#x %#x", a, b);
        }
}
END_TEST

/* Encodes cp the obvious way (surrogates too); returns the length. */
static size_t
encode(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

START_TEST(test_every_code_point)
{
    char s[4];

    for (unsigned cp = 1; cp <= 0x10ffff; cp++) {
        size_t n = encode(cp, s);
        bool surrogate = cp >= 0xd800 && cp <= 0xdfff;

        if (utf8_valid(s, n) == surrogate)
            ck_abort_msg("U+%04X misjudged", cp);
        if (!surrogate && utf8_count(s, n) != 1)
            ck_abort_msg("U+%04X miscounted", cp);
    }
}
END_TEST

START_TEST(test_count)
{
    ck_assert_uint_eq(utf8_count("", 0), 0);
    ck_assert_uint_eq(utf8_count("abc", 3), 3);
    ck_assert_uint_eq(utf8_count("h\xc3\xa9llo", 6), 5);
    ck_assert_uint_eq(utf8_count("\xf0\x9f\x98\x80", 4), 1);
    ck_assert_uint_eq(utf8_count("a\xf0\x9f\x98\x80"
                                 "b\xe2\x82\xac",
                                 9),
                      4);
    ck_assert_uint_eq(utf8_count("\xdf\xbf\xe0\xa0\x80\xf4\x8f\xbf\xbf", 9), 3);
    /* Counts only the first n bytes. */
    ck_assert_uint_eq(utf8_count("abc", 2), 2);
    ck_assert_uint_eq(utf8_count("\xc3\xa9\xc3\xa9", 2), 1);
}
END_TEST

Suite *
utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_ascii);
    tcase_add_test(tc, test_two_byte);
    tcase_add_test(tc, test_three_byte);
    tcase_add_test(tc, test_four_byte);
    tcase_add_test(tc, test_never_valid_bytes);
    tcase_add_test(tc, test_length_bound);
    tcase_add_test(tc, test_all_two_byte_code_points);
    tcase_add_test(tc, test_every_code_point);
    tcase_add_test(tc, test_count);
    suite_add_tcase(s, tc);
    return s;
}
