/*
 * fuzz_json.c - the JSON decoder and the document validator.
 *
 * The input is a request body.  Properties:
 *   - json_parse() either fails with ERR_INVALID_JSON and a message, or
 *     gives a tree that keeps json.h's promises: nesting within the
 *     limit, strings and keys valid UTF-8 without NUL, no duplicate key;
 *   - a tree that fits a smaller limit parses the same under it, and one
 *     that does not is refused under it;
 *   - json_write_value() writes exactly json_encoded_size() bytes, which
 *     parse back to the same tree and encode to the same bytes again;
 *   - validate_document() answers true, or false with ERR_VALIDATION and
 *     the field it was given, whatever the tree (as metadata, extra_data
 *     and memory values are checked).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "error.h"
#include "fuzz_util.h"
#include "json.h"
#include "utf8.h"
#include "validate.h"
#include "banned.h"

/* The body limit of the API (max_json_depth) and of stored documents
 * (max_metadata_depth). */
#define BODY_DEPTH 32
#define DOC_DEPTH  16

/* Every string and key is what the decoder promised; no object repeats a
 * key. */
static void
check_tree(const struct json_value *v)
{
    switch (v->type) {
    case JSON_STRING:
        FUZZ_CHECK(v->u.s.ptr[v->u.s.len] == '\0', "string not terminated");
        FUZZ_CHECK(utf8_valid(v->u.s.ptr, v->u.s.len),
                   "string is not valid UTF-8 without NUL");
        break;
    case JSON_DOUBLE:
        FUZZ_CHECK(isfinite(v->u.d), "double is not finite");
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < v->u.a.len; i++)
            check_tree(v->u.a.items[i]);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < v->u.o.len; i++) {
            const struct json_member *m = &v->u.o.members[i];

            FUZZ_CHECK(m->key[m->key_len] == '\0', "key not terminated");
            FUZZ_CHECK(utf8_valid(m->key, m->key_len),
                       "key is not valid UTF-8 without NUL");
            /* Quadratic, but bodies here are small (-max_len). */
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(
                    m->key_len != v->u.o.members[j].key_len ||
                        memcmp(m->key, v->u.o.members[j].key, m->key_len) != 0,
                    "duplicate key survived");
            check_tree(m->value);
        }
        break;
    default:
        break;
    }
}

static void
check_validate(const struct json_value *v)
{
    for (int require = 0; require < 2; require++) {
        struct error err = ERROR_INIT;

        if (validate_document("metadata", v, 16384, DOC_DEPTH, require != 0,
                              &err)) {
            FUZZ_CHECK(err.code == ERR_NONE, "true with an error set");
            FUZZ_CHECK(!require || v->type == JSON_OBJECT,
                       "a non-object passed as an object");
            FUZZ_CHECK(json_encoded_size(v) <= 16384, "too big passed");
            FUZZ_CHECK(json_depth(v) <= DOC_DEPTH, "too deep passed");
        } else {
            FUZZ_CHECK(err.code == ERR_VALIDATION, "code %d", err.code);
            FUZZ_CHECK(err.param != NULL && strcmp(err.param, "metadata") == 0,
                       "param %s", err.param ? err.param : "(null)");
            FUZZ_CHECK(err.message[0] != '\0', "no message");
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a;
    struct error err = ERROR_INIT, err2 = ERROR_INIT;
    struct json_value *v, *again, *shallow;
    struct buf out, out2;

    arena_init(&a, 16 * 1024);
    buf_init(&out);
    buf_init(&out2);

    v = json_parse(&a, (const char *)data, size, BODY_DEPTH, &err);
    if (v == NULL) {
        FUZZ_CHECK(err.code == ERR_INVALID_JSON, "failed with code %d",
                   err.code);
        FUZZ_CHECK(err.message[0] != '\0', "failed without a message");
        FUZZ_CHECK(err.param == NULL, "invalid JSON names a param");
        goto done;
    }
    FUZZ_CHECK(err.code == ERR_NONE, "parsed with an error set");
    check_tree(v);
    FUZZ_CHECK(json_depth(v) <= BODY_DEPTH, "depth %d past the limit",
               json_depth(v));

    /* The same text under the stored documents' limit. */
    shallow = json_parse(&a, (const char *)data, size, DOC_DEPTH, &err2);
    if (json_depth(v) <= DOC_DEPTH)
        FUZZ_CHECK(shallow != NULL && fuzz_json_same(v, shallow),
                   "depth %d refused under limit %d: %s", json_depth(v),
                   DOC_DEPTH, err2.message);
    else
        FUZZ_CHECK(shallow == NULL && err2.code == ERR_INVALID_JSON,
                   "depth %d accepted under limit %d", json_depth(v),
                   DOC_DEPTH);

    /* Encode, and read back. */
    json_write_value(&out, v);
    FUZZ_CHECK(out.len == json_encoded_size(v),
               "wrote %zu bytes, json_encoded_size says %zu", out.len,
               json_encoded_size(v));
    FUZZ_CHECK(utf8_valid(out.data, out.len), "output is not UTF-8");
    again = json_parse(&a, out.data, out.len, BODY_DEPTH, &err2);
    FUZZ_CHECK(again != NULL, "own output refused: %s: %.200s", err2.message,
               out.data);
    FUZZ_CHECK(fuzz_json_same(v, again), "round trip changed the tree: %.200s",
               out.data);
    json_write_value(&out2, again);
    FUZZ_CHECK(out2.len == out.len && memcmp(out.data, out2.data, out.len) == 0,
               "encoding is not stable: %.200s / %.200s", out.data, out2.data);

    check_validate(v);
done:
    buf_release(&out2);
    buf_release(&out);
    arena_release(&a);
    return 0;
}
