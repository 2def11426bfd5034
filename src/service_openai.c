/*
 * service_openai.c - the /v1 Conversations API over sessions and
 * messages (the mapping is in the header).
 *
 * Everything a request brings is checked before anything is written, with
 * errors naming the item and member ("items[3].role"), so the checks
 * service_message_append() repeats never fail on an item: what is left
 * for it to refuse is the session (404, 409) and the quotas.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rng.h"
#include "role.h"
#include "service_openai.h"
#include "service_session.h"
#include "utf8.h"
#include "validate.h"
#include "banned.h"

static const char *const kind_prefix[] = {
    [OPENAI_MESSAGE] = "msg_",
    [OPENAI_FUNCTION_CALL] = "fc_",
    [OPENAI_FUNCTION_CALL_OUTPUT] = "fco_",
    [OPENAI_OTHER] = "item_",
};

static enum openai_kind
kind_of(const char *type)
{
    if (strcmp(type, "message") == 0)
        return OPENAI_MESSAGE;
    if (strcmp(type, "function_call") == 0)
        return OPENAI_FUNCTION_CALL;
    if (strcmp(type, "function_call_output") == 0)
        return OPENAI_FUNCTION_CALL_OUTPUT;
    return OPENAI_OTHER;
}

enum openai_kind
service_openai_kind(const struct message *m)
{
    if (m->item != NULL && m->item->type == JSON_OBJECT) {
        const struct json_value *t = json_get(m->item, "type");

        /* A message may leave its type out (it has a role instead). */
        return t != NULL && t->type == JSON_STRING ? kind_of(t->u.s.ptr)
                                                   : OPENAI_MESSAGE;
    }
    if (m->role == ROLE_ASSISTANT && m->tool_call_id != NULL)
        return OPENAI_FUNCTION_CALL;
    if (m->role == ROLE_TOOL)
        return OPENAI_FUNCTION_CALL_OUTPUT;
    return OPENAI_MESSAGE;
}

const char *
service_openai_item_id(const struct message *m,
                       char buf[OPENAI_ITEM_ID_MAX + 1])
{
    static const char hex[] = "0123456789abcdef";
    const char *prefix = kind_prefix[service_openai_kind(m)];
    size_t n = strlen(prefix);

    if (m->item_id != NULL)
        return m->item_id;
    memcpy(buf, prefix, n);
    for (size_t i = 0; i < sizeof(m->id.b); i++) {
        buf[n++] = hex[m->id.b[i] >> 4];
        buf[n++] = hex[m->id.b[i] & 15];
    }
    buf[n] = '\0';
    return buf;
}

/* The UUID a derived id (a prefix and 32 lowercase hex characters)
 * stands for. */
static bool
derived_uuid(const char *id, struct uuid *out)
{
    for (size_t k = 0; k < sizeof(kind_prefix) / sizeof(kind_prefix[0]); k++) {
        size_t n = strlen(kind_prefix[k]);
        const char *h = id + n;

        if (strncmp(id, kind_prefix[k], n) != 0 || strlen(h) != 32)
            continue;
        for (size_t i = 0; i < 16; i++) {
            int hi = h[2 * i], lo = h[2 * i + 1];

            hi = hi >= '0' && hi <= '9'   ? hi - '0'
                 : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10
                                          : -1;
            lo = lo >= '0' && lo <= '9'   ? lo - '0'
                 : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10
                                          : -1;
            if (hi < 0 || lo < 0)
                return false;
            out->b[i] = (uint8_t)(hi << 4 | lo);
        }
        return true;
    }
    return false;
}

/* --- a message's parts ------------------------------------------------ */

/* m's extra_data.tool_calls[] when m is shown with its calls: an
 * assistant message without an item; NULL otherwise. */
static const struct json_value *
calls_of(const struct message *m)
{
    const struct json_value *list;

    if ((m->item != NULL && m->item->type == JSON_OBJECT) ||
        m->role != ROLE_ASSISTANT || m->extra_data == NULL ||
        m->extra_data->type != JSON_OBJECT)
        return NULL;
    list = json_get(m->extra_data, "tool_calls");
    return list != NULL && list->type == JSON_ARRAY ? list : NULL;
}

const struct json_value *
service_openai_call(const struct message *m, int k)
{
    const struct json_value *list = calls_of(m), *c, *id;

    if (list == NULL || k < 0 || (size_t)k >= list->u.a.len)
        return NULL;
    c = list->u.a.items[k];
    if (c->type != JSON_OBJECT)
        return NULL;
    id = json_get(c, "id");
    return id != NULL && id->type == JSON_STRING && id->u.s.len > 0 ? c : NULL;
}

/* The number of entries of m's tool_calls[] (0: not shown with calls). */
static int
ncalls(const struct message *m)
{
    const struct json_value *list = calls_of(m);
    int n = 0;

    if (list == NULL)
        return 0;
    for (size_t k = 0; k < list->u.a.len && k < INT32_MAX; k++)
        if (service_openai_call(m, (int)k) != NULL)
            n = (int)k + 1;
    return n;
}

/* Whether m is shown with its own item: always, but for a message shown
 * with its calls and no text. */
static bool
has_whole(const struct message *m)
{
    return m->content[0] != '\0' || ncalls(m) == 0;
}

int
service_openai_next_part(const struct message *m, int part)
{
    int n = ncalls(m);

    if (part == OPENAI_PART_NONE) {
        if (has_whole(m))
            return OPENAI_PART_WHOLE;
        part = OPENAI_PART_WHOLE;
    }
    for (int k = part + 1; k < n; k++)
        if (service_openai_call(m, k) != NULL)
            return k;
    return OPENAI_PART_NONE;
}

int
service_openai_prev_part(const struct message *m, int part)
{
    if (part == OPENAI_PART_WHOLE)
        return OPENAI_PART_NONE;
    for (int k = part == OPENAI_PART_NONE ? ncalls(m) - 1 : part - 1; k >= 0;
         k--)
        if (service_openai_call(m, k) != NULL)
            return k;
    return has_whole(m) ? OPENAI_PART_WHOLE : OPENAI_PART_NONE;
}

const char *
service_openai_part_id(const struct message *m, int part,
                       char buf[OPENAI_PART_ID_MAX + 1])
{
    char base[OPENAI_ITEM_ID_MAX + 1];
    const char *id;

    if (part < 0)
        return service_openai_item_id(m, buf);
    id = service_openai_item_id(m, base);
    snprintf(buf, OPENAI_PART_ID_MAX + 1, "%s.%d", id, part);
    return buf;
}

bool
service_openai_split_part_id(struct arena *a, const char *id, const char **base,
                             int *k)
{
    const char *dot = strrchr(id, '.');
    long v = 0;

    if (dot == NULL || dot == id || dot[1] == '\0' || strlen(dot + 1) > 9 ||
        (dot[1] == '0' && dot[2] != '\0'))
        return false;
    for (const char *c = dot + 1; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (*c - '0');
    }
    *base = arena_strndup(a, id, (size_t)(dot - id));
    *k = (int)v;
    return true;
}

/* --- checking what a client sends ----------------------------------- */

/* "items[i]" or "items[i].member", for errors. */
static const char *
pname(struct arena *a, size_t i, const char *member)
{
    return member != NULL ? arena_printf(a, "items[%zu].%s", i, member)
                          : arena_printf(a, "items[%zu]", i);
}

/* A string member: required or not, at most max_chars characters. */
static bool
item_text(struct arena *a, size_t i, const struct json_value *item,
          const char *member, bool required, size_t max_chars, const char **out,
          struct error *err)
{
    const struct json_value *v = json_get(item, member);

    *out = NULL;
    if (v == NULL || (v->type == JSON_NULL && !required)) {
        if (required)
            return error_set(err, ERR_VALIDATION, pname(a, i, member),
                             "%s is required", member);
        return true;
    }
    if (!validate_text(pname(a, i, member), v, max_chars, 0, err))
        return false;
    *out = v->u.s.ptr;
    return true;
}

/* The text of a string, or of an array of content parts (each an object
 * with a string "type"): the parts' "text" (or a refusal's "refusal")
 * joined by "\n".  Arena memory. */
static bool
item_content(struct arena *a, size_t i, const struct json_value *v,
             const char *member, const char **text, struct error *err)
{
    size_t len = 0, at = 0;
    char *out = NULL;

    if (v == NULL || v->type == JSON_NULL)
        return error_set(err, ERR_VALIDATION, pname(a, i, member),
                         "%s is required", member);
    if (v->type == JSON_STRING) {
        *text = v->u.s.ptr;
        return true;
    }
    if (v->type != JSON_ARRAY)
        return error_set(err, ERR_VALIDATION, pname(a, i, member),
                         "%s must be a string or an array of content parts",
                         member);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < v->u.a.len; k++) {
            const struct json_value *part = v->u.a.items[k];
            const struct json_value *type = json_get(part, "type");
            const struct json_value *t = json_get(part, "text");

            if (type == NULL || type->type != JSON_STRING)
                return error_set(
                    err, ERR_VALIDATION,
                    arena_printf(a, "items[%zu].%s[%zu]", i, member, k),
                    "each content part must be an object with "
                    "a type");
            if (t == NULL || t->type != JSON_STRING)
                t = json_get(part, "refusal");
            if (t == NULL || t->type != JSON_STRING)
                continue;
            if (pass == 0) {
                len += t->u.s.len + (len > 0 ? 1 : 0);
                continue;
            }
            if (at > 0)
                out[at++] = '\n';
            memcpy(out + at, t->u.s.ptr, t->u.s.len);
            at += t->u.s.len;
        }
        if (pass == 0)
            out = arena_alloc(a, len + 1);
    }
    out[at] = '\0';
    *text = out;
    return true;
}

static bool
item_status(struct arena *a, size_t i, const struct json_value *item,
            struct error *err)
{
    const struct json_value *v = json_get(item, "status");

    if (v == NULL || v->type == JSON_NULL ||
        (v->type == JSON_STRING && (strcmp(v->u.s.ptr, "completed") == 0 ||
                                    strcmp(v->u.s.ptr, "in_progress") == 0 ||
                                    strcmp(v->u.s.ptr, "incomplete") == 0)))
        return true;
    return error_set(err, ERR_VALIDATION, pname(a, i, "status"),
                     "status must be completed, in_progress or incomplete");
}

/* The item less its id: what the message keeps. */
static struct json_value *
item_kept(struct arena *a, const struct json_value *item)
{
    struct json_value *kept = json_new_object(a, item->u.o.len);

    for (size_t k = 0; k < item->u.o.len; k++) {
        const struct json_member *m = &item->u.o.members[k];

        if (strcmp(m->key, "id") != 0)
            json_object_put(a, kept, m->key, m->key_len, m->value);
    }
    return kept;
}

/* The message fields of an item of each kind: role, text (and the
 * member it came from), call id and name. */
struct item_fields {
    const char *role;
    const char *text;
    const char *text_member;
    const char *call_id;
    const char *name;
};

static bool
item_fields(const struct config *cfg, struct arena *a, size_t i,
            const struct json_value *item, enum openai_kind kind,
            struct item_fields *f, struct error *err)
{
    size_t names = (size_t)cfg->max_name_chars;
    const struct json_value *role;

    f->role = "assistant";
    f->text = "";
    f->text_member = "content";
    f->call_id = f->name = NULL;
    switch (kind) {
    case OPENAI_MESSAGE:
        role = json_get(item, "role");
        if (role == NULL || role->type != JSON_STRING ||
            (strcmp(role->u.s.ptr, "user") != 0 &&
             strcmp(role->u.s.ptr, "assistant") != 0 &&
             strcmp(role->u.s.ptr, "system") != 0 &&
             strcmp(role->u.s.ptr, "developer") != 0))
            return error_set(err, ERR_VALIDATION, pname(a, i, "role"),
                             "role must be user, assistant, system or "
                             "developer");
        f->role = role->u.s.ptr;
        return item_content(a, i, json_get(item, "content"), "content",
                            &f->text, err);
    case OPENAI_FUNCTION_CALL:
        f->text_member = "arguments";
        return item_text(a, i, item, "call_id", true, names, &f->call_id,
                         err) &&
               item_text(a, i, item, "name", true, names, &f->name, err) &&
               item_text(a, i, item, "arguments", true, 0, &f->text, err);
    case OPENAI_FUNCTION_CALL_OUTPUT:
        f->role = "tool";
        f->text_member = "output";
        return item_text(a, i, item, "call_id", false, names, &f->call_id,
                         err) &&
               item_text(a, i, item, "name", false, names, &f->name, err) &&
               item_content(a, i, json_get(item, "output"), "output", &f->text,
                            err);
    case OPENAI_OTHER:
        break;
    }
    return true;
}

static struct json_value *
jstring(struct arena *a, const char *s)
{
    return s != NULL ? json_new_string(a, s, strlen(s)) : NULL;
}

bool
service_openai_decode_item(const struct config *cfg, struct arena *a, size_t i,
                           const struct json_value *item,
                           struct message_input *out, struct error *err)
{
    const struct json_value *id, *type;
    struct json_value *kept;
    enum openai_kind kind = OPENAI_MESSAGE;
    struct item_fields f;

    memset(out, 0, sizeof(*out));
    if (item->type != JSON_OBJECT)
        return error_set(err, ERR_VALIDATION, pname(a, i, NULL),
                         "each item must be an object");
    id = json_get(item, "id");
    if (id != NULL && id->type != JSON_NULL) {
        if (id->type != JSON_STRING)
            return error_set(err, ERR_VALIDATION, pname(a, i, "id"),
                             "id must be a string");
        if (!validate_name(pname(a, i, "id"), id->u.s.ptr, OPENAI_ITEM_ID_MAX,
                           err))
            return false;
        out->item_id = id->u.s.ptr;
    }
    /* An item without a type is a message (it has a role instead). */
    type = json_get(item, "type");
    if (type == NULL && json_get(item, "role") == NULL)
        return error_set(err, ERR_VALIDATION, pname(a, i, "type"),
                         "type is required (or a role, for a message)");
    if (type != NULL) {
        if (type->type != JSON_STRING ||
            !validate_name("type", type->u.s.ptr, 64, NULL))
            return error_set(err, ERR_VALIDATION, pname(a, i, "type"),
                             "type must be an item type such as \"message\"");
        kind = kind_of(type->u.s.ptr);
    }
    if ((kind != OPENAI_OTHER && !item_status(a, i, item, err)) ||
        !item_fields(cfg, a, i, item, kind, &f, err))
        return false;
    if (strlen(f.text) > (size_t)cfg->max_content_bytes)
        return error_set(err, ERR_VALIDATION, pname(a, i, f.text_member),
                         "the text of %s must be at most %d bytes",
                         f.text_member, cfg->max_content_bytes);
    kept = item_kept(a, item);
    if (!validate_document(pname(a, i, NULL), kept,
                           (size_t)cfg->max_content_bytes +
                               (size_t)cfg->max_metadata_bytes,
                           cfg->max_metadata_depth, true, err))
        return false;
    out->role = jstring(a, f.role);
    out->content = jstring(a, f.text);
    out->tool_call_id = jstring(a, f.call_id);
    out->tool_name = jstring(a, f.name);
    out->item = kept;
    return true;
}

/* items: an array of min to max_batch_messages items (min 0: also absent
 * or null), each checked, their ids distinct. */
static bool
decode_items(struct service *svc, struct arena *a,
             const struct json_value *items, size_t min,
             struct message_input **out, size_t *n, struct error *err)
{
    size_t max = (size_t)svc->cfg->max_batch_messages;
    struct message_input *in;

    *out = NULL;
    *n = 0;
    if (min == 0 && (items == NULL || items->type == JSON_NULL))
        return true;
    if (items == NULL || items->type != JSON_ARRAY)
        return error_set(err, ERR_VALIDATION, "items",
                         "items must be an array of items");
    if (items->u.a.len < min || items->u.a.len > max)
        return error_set(err, ERR_VALIDATION, "items",
                         "items must hold %zu to %zu items", min, max);
    in = arena_calloc(a, (items->u.a.len + 1) * sizeof(*in));
    for (size_t i = 0; i < items->u.a.len; i++) {
        if (!service_openai_decode_item(svc->cfg, a, i, items->u.a.items[i],
                                        &in[i], err))
            return false;
        for (size_t k = 0; k < i && in[i].item_id != NULL; k++)
            if (in[k].item_id != NULL &&
                strcmp(in[k].item_id, in[i].item_id) == 0)
                return error_set(err, ERR_VALIDATION, pname(a, i, "id"),
                                 "id repeats within the request");
    }
    *out = in;
    *n = items->u.a.len;
    return true;
}

/* OpenAI's metadata: an object of at most 16 string values of at most
 * 512 characters, keys of at most 64 characters. */
static bool
check_metadata(const struct json_value *v, struct error *err)
{
    if (v->type != JSON_OBJECT)
        return error_set(err, ERR_VALIDATION, "metadata",
                         "metadata must be an object of strings, or null");
    if (v->u.o.len > OPENAI_METADATA_KEYS)
        return error_set(err, ERR_VALIDATION, "metadata",
                         "metadata holds at most %d keys",
                         OPENAI_METADATA_KEYS);
    for (size_t k = 0; k < v->u.o.len; k++) {
        const struct json_member *m = &v->u.o.members[k];

        if (utf8_count(m->key, m->key_len) > OPENAI_METADATA_KEY_CHARS)
            return error_set(err, ERR_VALIDATION, "metadata",
                             "metadata keys are at most %d characters",
                             OPENAI_METADATA_KEY_CHARS);
        if (m->value->type != JSON_STRING)
            return error_set(err, ERR_VALIDATION, "metadata",
                             "metadata values must be strings");
        if (utf8_count(m->value->u.s.ptr, m->value->u.s.len) >
            OPENAI_METADATA_VAL_CHARS)
            return error_set(err, ERR_VALIDATION, "metadata",
                             "metadata values are at most %d characters",
                             OPENAI_METADATA_VAL_CHARS);
    }
    return true;
}

/* --- conversations ----------------------------------------------------- */

/* OpenAI's words for a conversation that is not there. */
static bool
conv_not_found(const char *conv_id, struct error *err)
{
    if (err->code == ERR_NOT_FOUND)
        error_set(err, ERR_NOT_FOUND, NULL,
                  "conversation with id '%.64s' not found", conv_id);
    return false;
}

bool
service_openai_get(struct service *svc, struct store_ctx *ctx, const char *user,
                   const char *conv_id, struct session *out, struct error *err)
{
    return service_session_get(svc, ctx, user, conv_id, out, err) ||
           conv_not_found(conv_id, err);
}

bool
service_openai_create(struct service *svc, struct store_ctx *ctx,
                      const char *user, const struct json_value *items,
                      const struct json_value *metadata, struct session *out,
                      struct error *err)
{
    static const char hex[] = "0123456789abcdef";
    char id[5 + 32 + 1] = "conv_";
    unsigned char raw[16];
    struct session_create create;
    struct message_input *in;
    struct message *stored;
    size_t n;
    bool created;

    memset(&create, 0, sizeof(create));
    if (!decode_items(svc, ctx->arena, items, 0, &in, &n, err))
        return false;
    if (metadata != NULL && metadata->type != JSON_NULL) {
        if (!check_metadata(metadata, err))
            return false;
        create.f.metadata = metadata;
    }
    rng_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++) {
        id[5 + 2 * i] = hex[raw[i] >> 4];
        id[5 + 2 * i + 1] = hex[raw[i] & 15];
    }
    id[sizeof(id) - 1] = '\0';
    create.session_id = jstring(ctx->arena, id);
    if (!service_session_create(svc, ctx, user, &create, out, &created, err))
        return false;
    if (n == 0 || service_message_append(svc, ctx, user, out->session_id, in, n,
                                         true, NULL, &stored, &created, err))
        return true;
    /* All or none: the items could not be stored, so the conversation
     * goes too (best effort; the sweeper ages out what a failure here
     * leaves, and the client never learnt its id). */
    if (store_try_fits(svc->store, ctx)) {
        struct error e = ERROR_INIT;

        if (!service_session_delete(svc, ctx, user, out->session_id,
                                    IF_MATCH_ANY, &e))
            log_warn("a conversation whose items failed stays: %s", e.message);
    }
    return false;
}

bool
service_openai_update(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *conv_id,
                      const struct json_value *metadata, struct session *out,
                      struct error *err)
{
    if (metadata == NULL)
        return error_set(err, ERR_VALIDATION, "metadata",
                         "metadata is required (null clears it)");
    if (metadata->type == JSON_NULL)
        metadata = json_new_object(ctx->arena, 0);
    if (!check_metadata(metadata, err))
        return false;
    return service_session_set_metadata(svc, ctx, user, conv_id, metadata, out,
                                        err) ||
           conv_not_found(conv_id, err);
}

bool
service_openai_delete(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *conv_id, struct error *err)
{
    return service_session_delete(svc, ctx, user, conv_id, IF_MATCH_ANY, err) ||
           conv_not_found(conv_id, err);
}

/* --- items ------------------------------------------------------------- */

/* The message whose own id (service_openai_item_id) is id in session s:
 * by a derived id's UUID, or by the id a client gave it.  ERR_NOT_FOUND
 * (no message set) for none. */
static bool
find_message(struct service *svc, struct store_ctx *ctx, const char *user,
             const struct session *s, const char *id, struct message *out,
             struct error *err)
{
    char buf[OPENAI_ITEM_ID_MAX + 1];
    struct uuid u;

    if (derived_uuid(id, &u)) {
        if (store_message_get(svc->store, ctx, user, &s->id, &u, out, err)) {
            if (strcmp(service_openai_item_id(out, buf), id) == 0)
                return true;
        } else if (err->code != ERR_NOT_FOUND) {
            return false;
        }
    }
    /* A name that cannot be a client's id is not one. */
    if (validate_name("id", id, OPENAI_ITEM_ID_MAX, NULL)) {
        if (store_message_get_item(svc->store, ctx, user, &s->id, id, out, err))
            return true;
        if (err->code != ERR_NOT_FOUND)
            return false;
    }
    return error_set(err, ERR_NOT_FOUND, NULL, "not found");
}

/* The item shown with id in session s: a message's own item, or a call
 * of a message shown with its calls ("<its id>.<k>"). */
static bool
find_item(struct service *svc, struct store_ctx *ctx, const char *user,
          const struct session *s, const char *id, struct message *out,
          int *part, struct error *err)
{
    const char *base;
    int k;

    if (find_message(svc, ctx, user, s, id, out, err) && has_whole(out)) {
        *part = OPENAI_PART_WHOLE;
        return true;
    }
    if (err->code != ERR_NOT_FOUND && err->code != ERR_NONE)
        return false;
    error_clear(err);
    if (service_openai_split_part_id(ctx->arena, id, &base, &k)) {
        if (find_message(svc, ctx, user, s, base, out, err) &&
            service_openai_call(out, k) != NULL) {
            *part = k;
            return true;
        }
        if (err->code != ERR_NOT_FOUND && err->code != ERR_NONE)
            return false;
        error_clear(err);
    }
    return error_set(err, ERR_NOT_FOUND, NULL, "item with id '%.64s' not found",
                     id);
}

/* After an append refused as a duplicate: the item whose id the
 * conversation has already, named in a 400. */
static bool
name_duplicate(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *conv_id, const struct message_input *in, size_t n,
               struct error *err)
{
    struct message m;
    struct session s;

    if (!service_openai_get(svc, ctx, user, conv_id, &s, err))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (in[i].item_id == NULL)
            continue;
        if (store_message_get_item(svc->store, ctx, user, &s.id, in[i].item_id,
                                   &m, err))
            return error_set(err, ERR_VALIDATION, pname(ctx->arena, i, "id"),
                             "an item with id '%.64s' is already in this "
                             "conversation",
                             in[i].item_id);
        if (err->code != ERR_NOT_FOUND)
            return false;
    }
    return error_set(err, ERR_CONFLICT, "items",
                     "an item of this request collided with another; try "
                     "again");
}

/* A given id of the derived form ("msg_" + 32 hex: an item read back and
 * sent again), or of a call's ("<id>.<k>"), that an item of the
 * conversation is shown with already would name two items; the unique
 * index cannot see that one. */
static bool
check_derived_ids(struct service *svc, struct store_ctx *ctx, const char *user,
                  const char *conv_id, const struct message_input *in, size_t n,
                  struct error *err)
{
    struct session s;
    bool read = false;

    for (size_t i = 0; i < n; i++) {
        struct message m;
        struct uuid u;

        const char *base;
        int part;

        if (in[i].item_id == NULL ||
            (!derived_uuid(in[i].item_id, &u) &&
             !service_openai_split_part_id(ctx->arena, in[i].item_id, &base,
                                           &part)))
            continue;
        if (!read && !service_openai_get(svc, ctx, user, conv_id, &s, err))
            return false;
        read = true;
        if (find_item(svc, ctx, user, &s, in[i].item_id, &m, &part, err))
            return error_set(err, ERR_VALIDATION, pname(ctx->arena, i, "id"),
                             "an item with id '%.64s' is already in this "
                             "conversation",
                             in[i].item_id);
        if (err->code != ERR_NOT_FOUND)
            return false;
        error_clear(err);
    }
    return true;
}

bool
service_openai_items_add(struct service *svc, struct store_ctx *ctx,
                         const char *user, const char *conv_id,
                         const struct json_value *items, struct message **out,
                         size_t *n, struct error *err)
{
    struct message_input *in;
    bool created;

    if (!decode_items(svc, ctx->arena, items, 1, &in, n, err) ||
        !check_derived_ids(svc, ctx, user, conv_id, in, *n, err))
        return false;
    if (service_message_append(svc, ctx, user, conv_id, in, *n, true, NULL, out,
                               &created, err))
        return true;
    if (err->code == ERR_DUPLICATE)
        return name_duplicate(svc, ctx, user, conv_id, in, *n, err);
    return conv_not_found(conv_id, err);
}

/* Appends m's parts from `part` on (exclusive; OPENAI_PART_NONE: all) in
 * the page's order to out, while it holds fewer than max. */
static void
add_parts(struct openai_page *out, size_t max, const struct message *m,
          int part, bool descending)
{
    for (;;) {
        part = descending ? service_openai_prev_part(m, part)
                          : service_openai_next_part(m, part);
        if (part == OPENAI_PART_NONE || out->len >= max)
            return;
        out->items[out->len].m = m;
        out->items[out->len].part = part;
        out->len++;
    }
}

bool
service_openai_items_list(struct service *svc, struct store_ctx *ctx,
                          const char *user, const char *conv_id,
                          const char *after, int64_t limit, bool descending,
                          struct openai_page *out, bool *has_more,
                          struct error *err)
{
    struct message_filter f;
    struct message_page page = {NULL, 0, -1, false};
    struct session s;
    size_t max = (size_t)limit + 1;

    *has_more = false;
    out->len = 0;
    out->items = arena_calloc(ctx->arena, max * sizeof(*out->items));
    service_message_filter_all(&f);
    f.descending = descending;
    f.no_total = true;
    if (!service_openai_get(svc, ctx, user, conv_id, &s, err))
        return false;
    if (after != NULL) {
        struct message *m = arena_calloc(ctx->arena, sizeof(*m));
        int part;

        if (!find_item(svc, ctx, user, &s, after, m, &part, err)) {
            if (err->code == ERR_NOT_FOUND)
                error_set(err, ERR_VALIDATION, "after",
                          "after names no item of this conversation");
            return false;
        }
        /* The rest of its message first, then the messages past it. */
        add_parts(out, max, m, part, descending);
        if (descending)
            f.before_seq = m->seq;
        else
            f.after_seq = m->seq;
    }
    /* Each message is at least one item: one more message than the
     * page has room for tells whether more follow. */
    if (out->len < max &&
        !store_message_list(svc->store, ctx, user, &s.id, &f,
                            (int64_t)(max - out->len), 0, &page, err))
        return false;
    for (size_t i = 0; out->len < max && i < page.len; i++)
        add_parts(out, max, &page.items[i], OPENAI_PART_NONE, descending);
    if (out->len > (size_t)limit) {
        out->len = (size_t)limit;
        *has_more = true;
    }
    return true;
}

bool
service_openai_item_get(struct service *svc, struct store_ctx *ctx,
                        const char *user, const char *conv_id,
                        const char *item_id, struct message *out, int *part,
                        struct error *err)
{
    struct session s;
    int p;

    return service_openai_get(svc, ctx, user, conv_id, &s, err) &&
           find_item(svc, ctx, user, &s, item_id, out, part != NULL ? part : &p,
                     err);
}

bool
service_openai_item_delete(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *conv_id,
                           const char *item_id, struct session *conv,
                           struct error *err)
{
    char uuid[UUID_STR_LEN + 1];
    struct message m;
    int part;

    if (!service_openai_get(svc, ctx, user, conv_id, conv, err) ||
        !find_item(svc, ctx, user, conv, item_id, &m, &part, err))
        return false;
    uuid_format(&m.id, uuid);
    if (!service_message_delete(svc, ctx, user, conv_id, uuid, err)) {
        if (err->code == ERR_NOT_FOUND) /* deleted meanwhile */
            error_set(err, ERR_NOT_FOUND, NULL,
                      "item with id '%.64s' not found", item_id);
        return false;
    }
    return true;
}

/* --- import -------------------------------------------------------------- */

/* An error of service_openai_decode_item() ("items[i]...") renamed for
 * an import's message i ("messages[i].item..."). */
static bool
import_param(struct arena *a, size_t i, struct error *err)
{
    const char *rest = err->param != NULL ? strchr(err->param, ']') : NULL;

    if (rest != NULL && strncmp(err->param, "items[", 6) == 0)
        err->param = arena_printf(a, "messages[%zu].item%s", i, rest + 1);
    return false;
}

/* A message field the item also says: taken from the item when absent,
 * else it must say the same. */
static bool
import_agrees(struct arena *a, size_t i, const char *member,
              const struct json_value **given, const struct json_value *derived,
              struct error *err)
{
    const struct json_value *g = *given;
    bool same;

    if (g == NULL) {
        *given = derived != NULL ? derived : json_new_null(a);
        return true;
    }
    if (derived == NULL)
        same = g->type == JSON_NULL;
    else
        same = g->type == JSON_STRING && g->u.s.len == derived->u.s.len &&
               memcmp(g->u.s.ptr, derived->u.s.ptr, g->u.s.len) == 0;
    if (same)
        return true;
    return error_set(err, ERR_VALIDATION,
                     arena_printf(a, "messages[%zu].%s", i, member),
                     "%s must be what the message's item says", member);
}

bool
service_openai_import_item(const struct config *cfg, struct arena *a, size_t i,
                           const struct json_value *item,
                           const struct json_value *item_id,
                           struct message_input *in, struct error *err)
{
    const char *id_param = arena_printf(a, "messages[%zu].item_id", i);
    struct message_input d;

    if (item_id != NULL && item_id->type != JSON_NULL) {
        if (item_id->type != JSON_STRING)
            return error_set(err, ERR_VALIDATION, id_param,
                             "item_id must be a string");
        if (!validate_name(id_param, item_id->u.s.ptr, OPENAI_ITEM_ID_MAX, err))
            return false;
        in->item_id = item_id->u.s.ptr;
    }
    if (item == NULL || item->type == JSON_NULL)
        return true;
    if (item->type != JSON_OBJECT)
        return error_set(err, ERR_VALIDATION,
                         arena_printf(a, "messages[%zu].item", i),
                         "item must be an object");
    if (json_get(item, "id") != NULL)
        return error_set(err, ERR_VALIDATION,
                         arena_printf(a, "messages[%zu].item.id", i),
                         "an exported item has no id (item_id is its id)");
    /* Checked as /v1 checks an item (its id is item_id, checked above). */
    if (!service_openai_decode_item(cfg, a, i, item, &d, err))
        return import_param(a, i, err);
    if (!import_agrees(a, i, "role", &in->role, d.role, err) ||
        !import_agrees(a, i, "content", &in->content, d.content, err) ||
        !import_agrees(a, i, "tool_call_id", &in->tool_call_id, d.tool_call_id,
                       err) ||
        !import_agrees(a, i, "tool_name", &in->tool_name, d.tool_name, err))
        return false;
    in->item = d.item;
    return true;
}
