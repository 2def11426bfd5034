/*
 * json.c - the decoder (yajl's event parser building an arena tree) and
 * the writer.
 *
 * Decoding.  yajl calls us back token by token; we keep the open
 * containers on an explicit frame stack and the children of every open
 * container on one shared item stack, and only when a container closes do
 * we copy its children into an exact-size arena array.  So there is no
 * recursion, no per-node malloc, and an array of n items costs O(n) however
 * it grows.  The depth limit is checked in the start_map/start_array
 * callbacks, which stops yajl before it pushes the level: a body nested
 * 100 000 deep costs max_depth callbacks and no memory.
 *
 * yajl 2.1 is lax in a few places the contract is not, so the callbacks
 * add what it lacks:
 *   - its UTF-8 check accepts overlongs, encoded surrogates and code
 *     points past U+10FFFF: every decoded string goes through utf8_valid();
 *   - it turns a lone high surrogate escape into '?' (eating the next
 *     character) and pairs a high surrogate with any following \u escape:
 *     when a string had escapes we re-read its raw text and require proper
 *     pairs;
 *   - it takes \v and \f as white space: we check the bytes between
 *     tokens ourselves.
 * To find a token's raw text we remember where the previous token ended
 * (yajl_get_bytes_consumed() inside a callback is the offset just past the
 * current token, since we hand yajl the whole body in one chunk).  Between
 * two tokens there can only be white space, ',' and ':' (comments are off),
 * so the first other byte is where the current token starts.  The one token
 * yajl delivers late is a number that ends the input: it needs to see the
 * byte after it, so it arrives from yajl_complete_parse() and ends at len.
 *
 * Error positions are byte offsets from 0 into the body: the first byte
 * of a token we refuse, or the last byte yajl read before it gave up.
 *
 * Encoding.  The writer never fails; a double that is not finite (callers
 * never pass one) is written as null so the output stays JSON.  A finite
 * double is written with the fewest of 15, 16 or 17 significant digits
 * that read back as the same value, and keeps a ".0" when it would
 * otherwise look like an integer ("1.0", "-0.0"), so a JSON_DOUBLE read
 * back is a JSON_DOUBLE again.  Writing recurses once per nesting level;
 * trees come from json_parse() (depth-limited) or from our own code.
 *
 * Number parsing and printing use the C locale's '.' (parley never calls
 * setlocale()).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "json.h"
#include "utf8.h"
#include "banned.h"

/* Keys quoted in error messages are cut to this many bytes. */
#define JSON_KEY_QUOTE_MAX 60
/* Objects up to this size are checked for duplicates pair by pair; larger
 * ones are sorted. */
#define JSON_DUP_LINEAR_MAX 16
/* Enough for "-1.2345678901234567e-308" plus ".0" and the NUL. */
#define JSON_DOUBLE_BUF 40

struct parse_frame {
    struct json_value *v; /* the open array or object */
    size_t first;         /* its first child's index in the item stack */
};

struct parse_ctx {
    struct arena *a;
    const char *text;
    size_t len;
    int max_depth;
    struct error *err;
    yajl_handle h;
    bool failed;     /* a callback set err */
    bool finishing;  /* inside yajl_complete_parse() */
    bool complete;   /* the top-level value has been read */
    size_t last_end; /* offset just past the previous token */

    struct json_value *root;
    struct parse_frame *frames; /* malloc; frames[depth - 1] is innermost */
    size_t frames_cap;
    int depth;
    struct json_member *items; /* malloc; children of the open containers */
    size_t items_len, items_cap;
    const char *key; /* the object key waiting for its value (arena) */
    size_t key_len;
    const struct json_member **scratch; /* malloc; duplicate-key sorting */
    size_t scratch_cap;
};

static bool parse_fail(struct parse_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool
parse_fail(struct parse_ctx *c, const char *fmt, ...)
{
    char msg[sizeof(((struct error *)NULL)->message)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->failed = true;
    return error_set(c->err, ERR_INVALID_JSON, NULL, "%s", msg);
}

/* Grows a malloc'd stack geometrically; out of memory aborts, as the arena
 * does. */
static void *
parse_grow(void *p, size_t *cap, size_t elem, size_t initial)
{
    size_t n = *cap ? *cap * 2 : initial;

    if (n < *cap || n > SIZE_MAX / elem)
        abort();
    p = realloc(p, n * elem);
    if (p == NULL)
        abort();
    *cap = n;
    return p;
}

static bool
parse_is_gap(char ch)
{
    return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t' || ch == ',' ||
           ch == ':';
}

/* Called first by every callback: finds where the current token starts,
 * refuses the white space yajl allows and RFC 8259 does not, and moves
 * last_end past the token. */
static bool
parse_token(struct parse_ctx *c, size_t *start, size_t *end)
{
    size_t p = c->last_end;

    while (p < c->len && parse_is_gap(c->text[p]))
        p++;
    if (p >= c->len || c->text[p] == '\v' || c->text[p] == '\f')
        return parse_fail(c, "invalid JSON at byte %zu", p);
    *start = p;
    *end = c->finishing ? c->len : yajl_get_bytes_consumed(c->h);
    if (*end <= p || *end > c->len)
        return parse_fail(c, "invalid JSON at byte %zu", p);
    c->last_end = *end;
    return true;
}

static unsigned
parse_hex4(const char *s)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char ch = (unsigned char)s[i];

        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v |= ch - 'a' + 10;
        else
            v |= ch - 'A' + 10; /* yajl's lexer let only hex digits in */
    }
    return v;
}

/* Re-reads the \u escapes of a raw string (between its quotes): yajl has
 * checked the escape syntax but not that surrogates come in pairs. */
static bool
parse_check_escapes(struct parse_ctx *c, const char *raw, size_t n, size_t at,
                    const char *what)
{
    for (size_t i = 0; i < n; i++) {
        unsigned cp;

        if (raw[i] != '\\')
            continue;
        if (++i >= n || raw[i] != 'u')
            continue;
        if (n - i < 5)
            return parse_fail(c, "invalid JSON at byte %zu", at);
        cp = parse_hex4(raw + i + 1);
        i += 4; /* on the last hex digit */
        if (cp == 0)
            return parse_fail(c, "%s contains \\u0000", what);
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return parse_fail(c, "unpaired surrogate in %s at byte %zu", what,
                              at);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo;

            if (n - i < 7 || raw[i + 1] != '\\' || raw[i + 2] != 'u')
                return parse_fail(c, "unpaired surrogate in %s at byte %zu",
                                  what, at);
            lo = parse_hex4(raw + i + 3);
            if (lo < 0xdc00 || lo > 0xdfff)
                return parse_fail(c, "unpaired surrogate in %s at byte %zu",
                                  what, at);
            i += 6;
        }
    }
    return true;
}

/* Everything a decoded string or key must satisfy beyond yajl's checks. */
static bool
parse_check_string(struct parse_ctx *c, const char *s, size_t n,
                   const char *what)
{
    size_t start, end;

    if (!parse_token(c, &start, &end))
        return false;
    if (c->text[start] != '"' || end - start < 2)
        return parse_fail(c, "invalid JSON at byte %zu", start);
    /* Every escape is longer than what it decodes to, so a string whose
     * decoded length equals its raw length had none. */
    if (end - start - 2 != n &&
        !parse_check_escapes(c, c->text + start + 1, end - start - 2, start,
                             what))
        return false;
    if (!utf8_valid(s, n)) {
        if (memchr(s, '\0', n) != NULL)
            return parse_fail(c, "%s contains \\u0000", what);
        return parse_fail(c, "invalid UTF-8 in %s at byte %zu", what, start);
    }
    return true;
}

static struct json_value *
parse_node(struct parse_ctx *c, enum json_type type)
{
    struct json_value *v = arena_alloc(c->a, sizeof(*v));

    memset(v, 0, sizeof(*v));
    v->type = type;
    return v;
}

/* Hands a new value to its parent, or makes it the root. */
static int
parse_add(struct parse_ctx *c, struct json_value *v, bool container)
{
    if (c->depth == 0) {
        if (c->max_depth < 1) {
            parse_fail(c, "JSON nested deeper than %d", c->max_depth);
            return 0;
        }
        c->root = v;
        if (!container)
            c->complete = true;
        return 1;
    }
    if (c->items_len == c->items_cap)
        c->items = parse_grow(c->items, &c->items_cap, sizeof(*c->items), 64);
    c->items[c->items_len].key = c->key;
    c->items[c->items_len].key_len = c->key_len;
    c->items[c->items_len].value = v;
    c->items_len++;
    c->key = NULL;
    c->key_len = 0;
    return 1;
}

static int
parse_on_null(void *ctx)
{
    struct parse_ctx *c = ctx;
    size_t start, end;

    if (!parse_token(c, &start, &end))
        return 0;
    return parse_add(c, parse_node(c, JSON_NULL), false);
}

static int
parse_on_bool(void *ctx, int b)
{
    struct parse_ctx *c = ctx;
    struct json_value *v;
    size_t start, end;

    if (!parse_token(c, &start, &end))
        return 0;
    v = parse_node(c, JSON_BOOL);
    v->u.b = b != 0;
    return parse_add(c, v, false);
}

/* yajl has checked the JSON number syntax: -?(0|[1-9][0-9]*)(.[0-9]+)?
 * ([eE][+-]?[0-9]+)?  Integers are read by hand, so that anything past
 * int64 is refused instead of clamped; others go through strtod. */
static int
parse_on_number(void *ctx, const char *s, size_t n)
{
    struct parse_ctx *c = ctx;
    struct json_value *v;
    size_t start, end;

    if (!parse_token(c, &start, &end))
        return 0;
    if (memchr(s, '.', n) == NULL && memchr(s, 'e', n) == NULL &&
        memchr(s, 'E', n) == NULL) {
        bool neg = n > 0 && s[0] == '-';
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        uint64_t u = 0;

        for (size_t i = neg ? 1 : 0; i < n; i++) {
            unsigned d = (unsigned)(s[i] - '0');

            if (u > (limit - d) / 10) {
                parse_fail(c, "number out of range");
                return 0;
            }
            u = u * 10 + d;
        }
        v = parse_node(c, JSON_INT);
        if (neg)
            v->u.i = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
        else
            v->u.i = (int64_t)u;
    } else {
        char small[64];
        char *z = n < sizeof(small) ? small : arena_alloc(c->a, n + 1);
        double d;

        /* The token is not NUL-terminated (it points into the body). */
        memcpy(z, s, n);
        z[n] = '\0';
        d = strtod(z, NULL);
        if (!isfinite(d)) {
            parse_fail(c, "number out of range");
            return 0;
        }
        v = parse_node(c, JSON_DOUBLE);
        v->u.d = d;
    }
    return parse_add(c, v, false);
}

static int
parse_on_string(void *ctx, const unsigned char *us, size_t n)
{
    struct parse_ctx *c = ctx;
    const char *s = (const char *)us;
    struct json_value *v;

    if (!parse_check_string(c, s, n, "string"))
        return 0;
    v = parse_node(c, JSON_STRING);
    v->u.s.ptr = arena_strndup(c->a, s, n);
    v->u.s.len = n;
    return parse_add(c, v, false);
}

static int
parse_on_key(void *ctx, const unsigned char *us, size_t n)
{
    struct parse_ctx *c = ctx;
    const char *s = (const char *)us;

    if (!parse_check_string(c, s, n, "key"))
        return 0;
    /* yajl may hand us its reusable decode buffer: copy now. */
    c->key = arena_strndup(c->a, s, n);
    c->key_len = n;
    return 1;
}

static int
parse_open(struct parse_ctx *c, enum json_type type)
{
    struct json_value *v;
    size_t start, end;

    if (!parse_token(c, &start, &end))
        return 0;
    if (c->depth >= c->max_depth) {
        parse_fail(c, "JSON nested deeper than %d", c->max_depth);
        return 0;
    }
    v = parse_node(c, type);
    if (!parse_add(c, v, true))
        return 0;
    if ((size_t)c->depth == c->frames_cap)
        c->frames =
            parse_grow(c->frames, &c->frames_cap, sizeof(*c->frames), 16);
    c->frames[c->depth].v = v;
    c->frames[c->depth].first = c->items_len;
    c->depth++;
    return 1;
}

static int
parse_on_start_map(void *ctx)
{
    return parse_open(ctx, JSON_OBJECT);
}

static int
parse_on_start_array(void *ctx)
{
    return parse_open(ctx, JSON_ARRAY);
}

static int
parse_key_cmp(const void *pa, const void *pb)
{
    const struct json_member *a = *(const struct json_member *const *)pa;
    const struct json_member *b = *(const struct json_member *const *)pb;

    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    return memcmp(a->key, b->key, a->key_len);
}

/* Quotes at most JSON_KEY_QUOTE_MAX bytes of a key, cut on a character
 * boundary so the message stays valid UTF-8. */
static bool
parse_fail_duplicate(struct parse_ctx *c, const struct json_member *m)
{
    size_t n = m->key_len;

    if (n > JSON_KEY_QUOTE_MAX) {
        n = JSON_KEY_QUOTE_MAX;
        while (n > 0 && ((unsigned char)m->key[n] & 0xc0) == 0x80)
            n--;
    }
    return parse_fail(c, "duplicate key \"%.*s%s\"", (int)n, m->key,
                      n < m->key_len ? "..." : "");
}

/* Small objects are checked pair by pair; bigger ones are sorted by (length,
 * bytes) so duplicates end up next to each other: O(n log n). */
static bool
parse_check_duplicates(struct parse_ctx *c, const struct json_member *m,
                       size_t n)
{
    if (n <= JSON_DUP_LINEAR_MAX) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (m[i].key_len == m[j].key_len &&
                    memcmp(m[i].key, m[j].key, m[i].key_len) == 0)
                    return parse_fail_duplicate(c, &m[i]);
        return true;
    }
    while (c->scratch_cap < n)
        c->scratch =
            parse_grow(c->scratch, &c->scratch_cap, sizeof(*c->scratch), 64);
    for (size_t i = 0; i < n; i++)
        c->scratch[i] = &m[i];
    qsort(c->scratch, n, sizeof(*c->scratch), parse_key_cmp);
    for (size_t i = 1; i < n; i++)
        if (parse_key_cmp(&c->scratch[i - 1], &c->scratch[i]) == 0)
            return parse_fail_duplicate(c, c->scratch[i]);
    return true;
}

/* Moves the children of the innermost container from the item stack into
 * an exact-size arena array. */
static int
parse_close(void *ctx)
{
    struct parse_ctx *c = ctx;
    struct parse_frame *f;
    struct json_member *kids;
    size_t n, start, end;

    if (!parse_token(c, &start, &end))
        return 0;
    if (c->depth == 0) {
        parse_fail(c, "invalid JSON at byte %zu", start);
        return 0;
    }
    f = &c->frames[c->depth - 1];
    n = c->items_len - f->first;
    kids = n > 0 ? c->items + f->first : NULL; /* items may still be NULL */
    if (f->v->type == JSON_ARRAY) {
        struct json_value **items = NULL;

        if (n > 0) {
            items = arena_alloc(c->a, n * sizeof(*items));
            for (size_t i = 0; i < n; i++)
                items[i] = kids[i].value;
        }
        f->v->u.a.items = items;
        f->v->u.a.len = n;
        f->v->u.a.cap = n;
    } else {
        struct json_member *members = NULL;

        if (n > 0) {
            members = arena_alloc(c->a, n * sizeof(*members));
            memcpy(members, kids, n * sizeof(*members));
        }
        f->v->u.o.members = members;
        f->v->u.o.len = n;
        f->v->u.o.cap = n;
        if (!parse_check_duplicates(c, members, n))
            return 0;
    }
    c->items_len = f->first;
    c->depth--;
    if (c->depth == 0)
        c->complete = true;
    return 1;
}

static const yajl_callbacks parse_callbacks = {
    .yajl_null = parse_on_null,
    .yajl_boolean = parse_on_bool,
    .yajl_number = parse_on_number,
    .yajl_string = parse_on_string,
    .yajl_start_map = parse_on_start_map,
    .yajl_map_key = parse_on_key,
    .yajl_end_map = parse_close,
    .yajl_start_array = parse_on_start_array,
    .yajl_end_array = parse_close,
};

static size_t
parse_skip_ws(const struct parse_ctx *c, size_t p)
{
    while (p < c->len && (c->text[p] == ' ' || c->text[p] == '\n' ||
                          c->text[p] == '\r' || c->text[p] == '\t'))
        p++;
    return p;
}

/* yajl refused the text: say where, in terms a client can act on. */
static void
parse_syntax_error(struct parse_ctx *c)
{
    size_t pos;

    if (c->complete) {
        pos = parse_skip_ws(c, c->last_end);
        parse_fail(c,
                   "invalid JSON: unexpected data after the value "
                   "at byte %zu",
                   pos);
    } else if (c->root == NULL && parse_skip_ws(c, 0) == c->len) {
        parse_fail(c, "invalid JSON: no value");
    } else if (c->finishing) {
        parse_fail(c, "invalid JSON: unexpected end at byte %zu", c->len);
    } else {
        /* yajl stops just past the byte it choked on (or on it, when it
         * backs up): report the last byte it read. */
        pos = yajl_get_bytes_consumed(c->h);
        pos = pos > c->len ? c->len : pos;
        parse_fail(c, "invalid JSON at byte %zu", pos > 0 ? pos - 1 : 0);
    }
}

struct json_value *
json_parse(struct arena *a, const char *text, size_t len, int max_depth,
           struct error *err)
{
    struct parse_ctx c = {
        .a = a,
        .text = text,
        .len = len,
        .max_depth = max_depth,
        .err = err,
    };
    struct json_value *result = NULL;
    yajl_status st;
    size_t tail;

    /* Default options: strings are UTF-8 checked, no comments, one value,
     * nothing after it. */
    c.h = yajl_alloc(&parse_callbacks, NULL, &c);
    if (c.h == NULL)
        abort();
    st = yajl_parse(c.h, (const unsigned char *)(len ? text : ""), len);
    if (st == yajl_status_ok) {
        c.finishing = true;
        st = yajl_complete_parse(c.h);
    }
    if (c.failed)
        goto done;
    if (st != yajl_status_ok || !c.complete) {
        parse_syntax_error(&c);
        goto done;
    }
    tail = parse_skip_ws(&c, c.last_end);
    if (tail != len) {
        parse_fail(&c, "invalid JSON at byte %zu", tail);
        goto done;
    }
    result = c.root;
done:
    yajl_free(c.h);
    free(c.frames);
    free(c.items);
    free(c.scratch);
    return result;
}

const struct json_value *
json_get(const struct json_value *v, const char *key)
{
    size_t n;

    if (v == NULL || v->type != JSON_OBJECT)
        return NULL;
    n = strlen(key);
    for (size_t i = 0; i < v->u.o.len; i++) {
        const struct json_member *m = &v->u.o.members[i];

        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m->value;
    }
    return NULL;
}

int
json_depth(const struct json_value *v)
{
    int deepest = 0;

    if (v->type == JSON_ARRAY) {
        for (size_t i = 0; i < v->u.a.len; i++) {
            const struct json_value *k = v->u.a.items[i];

            if (k->type == JSON_ARRAY || k->type == JSON_OBJECT) {
                int d = json_depth(k);

                if (d > deepest)
                    deepest = d;
            }
        }
    } else if (v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->u.o.len; i++) {
            const struct json_value *k = v->u.o.members[i].value;

            if (k->type == JSON_ARRAY || k->type == JSON_OBJECT) {
                int d = json_depth(k);

                if (d > deepest)
                    deepest = d;
            }
        }
    }
    return deepest + 1;
}

/* --- constructors ------------------------------------------------------ */

struct json_value *
json_new_null(struct arena *a)
{
    struct json_value *v = arena_calloc(a, sizeof(*v));

    v->type = JSON_NULL;
    return v;
}

struct json_value *
json_new_bool(struct arena *a, bool b)
{
    struct json_value *v = arena_calloc(a, sizeof(*v));

    v->type = JSON_BOOL;
    v->u.b = b;
    return v;
}

struct json_value *
json_new_int(struct arena *a, int64_t i)
{
    struct json_value *v = arena_calloc(a, sizeof(*v));

    v->type = JSON_INT;
    v->u.i = i;
    return v;
}

struct json_value *
json_new_double(struct arena *a, double d)
{
    struct json_value *v = arena_calloc(a, sizeof(*v));

    v->type = JSON_DOUBLE;
    v->u.d = d;
    return v;
}

struct json_value *
json_new_string(struct arena *a, const char *s, size_t len)
{
    struct json_value *v = arena_calloc(a, sizeof(*v));

    v->type = JSON_STRING;
    v->u.s.ptr = arena_strndup(a, len ? s : "", len);
    v->u.s.len = len;
    return v;
}

struct json_value *
json_new_array(struct arena *a, size_t cap)
{
    struct json_value *v = arena_calloc(a, sizeof(*v));

    v->type = JSON_ARRAY;
    if (cap > SIZE_MAX / sizeof(*v->u.a.items))
        abort();
    v->u.a.items = cap ? arena_alloc(a, cap * sizeof(*v->u.a.items)) : NULL;
    v->u.a.cap = cap;
    return v;
}

struct json_value *
json_new_object(struct arena *a, size_t cap)
{
    struct json_value *v = arena_calloc(a, sizeof(*v));

    v->type = JSON_OBJECT;
    if (cap > SIZE_MAX / sizeof(*v->u.o.members))
        abort();
    v->u.o.members = cap ? arena_alloc(a, cap * sizeof(*v->u.o.members)) : NULL;
    v->u.o.cap = cap;
    return v;
}

void
json_array_push(struct arena *a, struct json_value *arr,
                struct json_value *item)
{
    if (arr->type != JSON_ARRAY)
        abort(); /* a bug in the caller; writing on would corrupt the tree */
    if (arr->u.a.len >= arr->u.a.cap)
        arr->u.a.items = arena_grow(a, arr->u.a.items, arr->u.a.len,
                                    &arr->u.a.cap, sizeof(*arr->u.a.items), 4);
    arr->u.a.items[arr->u.a.len++] = item;
}

void
json_object_put(struct arena *a, struct json_value *obj, const char *key,
                size_t key_len, struct json_value *value)
{
    struct json_member *m;

    if (obj->type != JSON_OBJECT)
        abort();
    if (obj->u.o.len >= obj->u.o.cap)
        obj->u.o.members =
            arena_grow(a, obj->u.o.members, obj->u.o.len, &obj->u.o.cap,
                       sizeof(*obj->u.o.members), 4);
    m = &obj->u.o.members[obj->u.o.len++];
    m->key = arena_strndup(a, key_len ? key : "", key_len);
    m->key_len = key_len;
    m->value = value;
}

/* --- writer ------------------------------------------------------------ */

/* The two-character escape for c, or NULL if c needs \u00XX or none. */
static const char *
json_short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        return NULL;
    }
}

static bool
json_needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

static size_t
json_string_size(const char *s, size_t len)
{
    size_t n = len + 2;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (json_needs_escape(c))
            n += json_short_escape(c) != NULL ? 1 : 5;
    }
    return n;
}

void
json_write_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the bytes not yet copied */

    buf_grow(b, len + 2);
    buf_addch(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc;

        if (!json_needs_escape(c))
            continue;
        if (i > run)
            buf_add(b, s + run, i - run);
        esc = json_short_escape(c);
        if (esc != NULL) {
            buf_add(b, esc, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};

            buf_add(b, u, sizeof(u));
        }
        run = i + 1;
    }
    if (len > run)
        buf_add(b, s + run, len - run);
    buf_addch(b, '"');
}

void
json_write_cstr(struct buf *b, const char *s)
{
    if (s == NULL)
        json_write_null(b);
    else
        json_write_string(b, s, strlen(s));
}

void
json_write_key(struct buf *b, const char *key)
{
    json_write_string(b, key, strlen(key));
    buf_addch(b, ':');
}

/* Digits by hand: snprintf() costs some 600 instructions a number, and a
 * session has a dozen. */
static size_t
json_format_int(int64_t i, char *out, size_t size)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
    size_t n;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (i < 0)
        *--p = '-';
    n = (size_t)(tmp + sizeof(tmp) - p);
    if (n >= size)
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

void
json_write_int(struct buf *b, int64_t i)
{
    char tmp[24];

    buf_add(b, tmp, json_format_int(i, tmp, sizeof(tmp)));
}

/* See the top of the file for the choices made here. */
static size_t
json_format_double(double d, char *out, size_t size)
{
    int n = 0;

    if (!isfinite(d)) {
        n = snprintf(out, size, "null");
        return (size_t)n;
    }
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, size, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d)
            break;
    }
    if (strspn(out, "-0123456789") == (size_t)n) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

void
json_write_double(struct buf *b, double d)
{
    char tmp[JSON_DOUBLE_BUF];

    buf_add(b, tmp, json_format_double(d, tmp, sizeof(tmp)));
}

void
json_write_bool(struct buf *b, bool v)
{
    if (v)
        buf_add(b, "true", 4);
    else
        buf_add(b, "false", 5);
}

void
json_write_null(struct buf *b)
{
    buf_add(b, "null", 4);
}

void
json_write_value(struct buf *b, const struct json_value *v)
{
    switch (v->type) {
    case JSON_NULL:
        json_write_null(b);
        break;
    case JSON_BOOL:
        json_write_bool(b, v->u.b);
        break;
    case JSON_INT:
        json_write_int(b, v->u.i);
        break;
    case JSON_DOUBLE:
        json_write_double(b, v->u.d);
        break;
    case JSON_STRING:
        json_write_string(b, v->u.s.ptr, v->u.s.len);
        break;
    case JSON_ARRAY:
        buf_addch(b, '[');
        for (size_t i = 0; i < v->u.a.len; i++) {
            if (i > 0)
                buf_addch(b, ',');
            json_write_value(b, v->u.a.items[i]);
        }
        buf_addch(b, ']');
        break;
    case JSON_OBJECT:
        buf_addch(b, '{');
        for (size_t i = 0; i < v->u.o.len; i++) {
            const struct json_member *m = &v->u.o.members[i];

            if (i > 0)
                buf_addch(b, ',');
            json_write_string(b, m->key, m->key_len);
            buf_addch(b, ':');
            json_write_value(b, m->value);
        }
        buf_addch(b, '}');
        break;
    }
}

size_t
json_encoded_size(const struct json_value *v)
{
    char tmp[JSON_DOUBLE_BUF];
    size_t n = 0;

    switch (v->type) {
    case JSON_NULL:
        return 4;
    case JSON_BOOL:
        return v->u.b ? 4 : 5;
    case JSON_INT:
        return json_format_int(v->u.i, tmp, sizeof(tmp));
    case JSON_DOUBLE:
        return json_format_double(v->u.d, tmp, sizeof(tmp));
    case JSON_STRING:
        return json_string_size(v->u.s.ptr, v->u.s.len);
    case JSON_ARRAY:
        n = 2 + (v->u.a.len ? v->u.a.len - 1 : 0); /* brackets, commas */
        for (size_t i = 0; i < v->u.a.len; i++)
            n += json_encoded_size(v->u.a.items[i]);
        return n;
    case JSON_OBJECT:
        n = 2 + (v->u.o.len ? v->u.o.len - 1 : 0); /* braces, commas */
        for (size_t i = 0; i < v->u.o.len; i++) {
            const struct json_member *m = &v->u.o.members[i];

            n += json_string_size(m->key, m->key_len) + 1; /* ':' */
            n += json_encoded_size(m->value);
        }
        return n;
    }
    return 0;
}
