/*
 * check_validate.c - the value rules of the API contract.
 */
#include <string.h>

#include "arena.h"
#include "json.h"
#include "uuid.h"
#include "validate.h"
#include "suites.h"

static struct arena arena;

static void
setup(void)
{
    arena_init(&arena, 0);
}

static void
teardown(void)
{
    arena_release(&arena);
}

static const struct json_value *
J(const char *text)
{
    struct error err = ERROR_INIT;
    const struct json_value *v =
        json_parse(&arena, text, strlen(text), 64, &err);

    ck_assert_msg(v != NULL, "%s", err.message);
    return v;
}

START_TEST(names)
{
    struct error err = ERROR_INIT;
    char long_name[300];

    ck_assert(validate_session_id("a-Z_0.9:x", &err));
    ck_assert(!validate_session_id("", &err));
    ck_assert_str_eq(err.param, "session_id");
    ck_assert(!validate_session_id("a/b", &err));
    ck_assert(!validate_session_id("caf\xc3\xa9", &err));
    ck_assert(!validate_session_id("stats", &err));
    ck_assert(!validate_session_id("import", &err));
    ck_assert(!validate_session_id("conversation", &err));
    ck_assert(validate_session_id("Stats", &err)); /* only exact words */
    memset(long_name, 'a', 255);
    long_name[255] = '\0';
    ck_assert(validate_session_id(long_name, &err));
    long_name[255] = 'a';
    long_name[256] = '\0';
    ck_assert(!validate_session_id(long_name, &err));
    ck_assert(validate_name("key", "k", 128, &err));
    ck_assert(!validate_name("key", "k k", 128, &err));
    ck_assert_str_eq(err.param, "key");
}
END_TEST

START_TEST(text_chars_and_bytes)
{
    struct error err = ERROR_INIT;

    ck_assert(
        validate_text("f", J("\"\xe2\x82\xac\xe2\x82\xac\""), 2, 0, &err));
    ck_assert(!validate_text("f", J("\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\""),
                             2, 0, &err));
    ck_assert(validate_text("f", J("\"abcd\""), 0, 4, &err));
    ck_assert(
        !validate_text("f", J("\"\xe2\x82\xac\xe2\x82\xac\""), 0, 4, &err));
    ck_assert(!validate_text("f", J("5"), 10, 10, &err));
    ck_assert_str_eq(err.param, "f");
}
END_TEST

START_TEST(documents)
{
    struct error err = ERROR_INIT;

    ck_assert(validate_document("m", J("{\"a\":{\"b\":[1,{\"c\":null}]}}"), 100,
                                16, true, &err));
    ck_assert(!validate_document("m", J("[1]"), 100, 16, true, &err));
    ck_assert(validate_document("m", J("[1]"), 100, 16, false, &err));
    ck_assert(validate_document("m", J("\"$x\""), 100, 16, false, &err));
    ck_assert(!validate_document("m", J("{\"$x\":1}"), 100, 16, true, &err));
    ck_assert(!validate_document("m", J("{\"a\":[{\"x.y\":1}]}"), 100, 16, true,
                                 &err));
    ck_assert(!validate_document("m", J("{\"\":1}"), 100, 16, true, &err));
    ck_assert(validate_document("m", J("{\"a$\":1}"), 100, 16, true, &err));
    /* depth: {"a":{"a":1}} is 2 */
    ck_assert(
        validate_document("m", J("{\"a\":{\"a\":1}}"), 100, 2, true, &err));
    ck_assert(
        !validate_document("m", J("{\"a\":{\"a\":{}}}"), 100, 2, true, &err));
    ck_assert(!validate_document("m", J("[[[]]]"), 100, 2, false, &err));
    /* size is the encoded size */
    ck_assert(validate_document("m", J("{\"a\" : 1}"), 7, 16, true, &err));
    ck_assert(!validate_document("m", J("{\"a\":12}"), 7, 16, true, &err));
    ck_assert_str_eq(err.param, "m");
}
END_TEST

/* Ids are matched in their one canonical form: lowercase, 8-4-4-4-12. */
START_TEST(uuid_canonical_only)
{
    struct uuid u, v;
    char text[UUID_STR_LEN + 1];

    ck_assert(uuid_parse("0f0e0d0c-0b0a-4908-8706-0504030201ab", &u));
    uuid_format(&u, text);
    ck_assert_str_eq(text, "0f0e0d0c-0b0a-4908-8706-0504030201ab");
    ck_assert(!uuid_parse("0F0E0D0C-0B0A-4908-8706-0504030201AB", &v));
    ck_assert(!uuid_parse("0f0e0d0c-0b0a-4908-8706-0504030201aB", &v));
    ck_assert(!uuid_parse("Af0e0d0c-0b0a-4908-8706-0504030201ab", &v));
    ck_assert(!uuid_parse("0f0e0d0c0b0a490887060504030201ab", &v));
    ck_assert(!uuid_parse("{0f0e0d0c-0b0a-4908-8706-0504030201ab}", &v));
    ck_assert(!uuid_parse("0f0e0d0c-0b0a-4908-8706-0504030201ag", &v));
    ck_assert(!uuid_parse("0f0e0d0c-0b0a-4908-8706_0504030201ab", &v));
    ck_assert(!uuid_parse("", &v));
}
END_TEST

Suite *
validate_suite(void)
{
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("rules");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, names);
    tcase_add_test(tc, text_chars_and_bytes);
    tcase_add_test(tc, documents);
    tcase_add_test(tc, uuid_canonical_only);
    suite_add_tcase(s, tc);
    return s;
}
