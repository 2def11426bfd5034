#include <string.h>

#include "utf8.h"
#include "validate.h"
#include "banned.h"

static bool
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
           c == '-';
}

bool
validate_name(const char *field, const char *s, size_t max_chars,
              struct error *err)
{
    size_t n = strlen(s);

    if (n == 0 || n > max_chars)
        return error_set(err, ERR_VALIDATION, field,
                         "%s must be 1 to %zu characters", field, max_chars);
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return error_set(err, ERR_VALIDATION, field,
                             "%s may hold only A-Z a-z 0-9 . _ : -", field);
    return true;
}

bool
validate_session_id(const char *s, struct error *err)
{
    static const char *const reserved[] = {"stats", "import", "conversation"};

    if (!validate_name("session_id", s, 255, err))
        return false;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(s, reserved[i]) == 0)
            return error_set(err, ERR_VALIDATION, "session_id",
                             "session_id \"%s\" is reserved", s);
    return true;
}

bool
validate_text(const char *field, const struct json_value *v, size_t max_chars,
              size_t max_bytes, struct error *err)
{
    if (v->type != JSON_STRING)
        return error_set(err, ERR_VALIDATION, field, "%s must be a string",
                         field);
    if (max_bytes != 0 && v->u.s.len > max_bytes)
        return error_set(err, ERR_VALIDATION, field,
                         "%s must be at most %zu bytes", field, max_bytes);
    if (max_chars != 0 && v->u.s.len > max_chars &&
        utf8_count(v->u.s.ptr, v->u.s.len) > max_chars)
        return error_set(err, ERR_VALIDATION, field,
                         "%s must be at most %zu characters", field, max_chars);
    return true;
}

/* Walks the tree with an explicit stack; the decoder already bounded the
 * depth, but this check must not depend on who built the tree. */
static bool
keys_safe(const char *field, const struct json_value *root, int max_depth,
          struct error *err)
{
    struct frame {
        const struct json_value *v;
        size_t next;
    } stack[66];
    int top = 0;

    if (max_depth > 64)
        max_depth = 64;
    stack[0].v = root;
    stack[0].next = 0;
    while (top >= 0) {
        struct frame *f = &stack[top];
        const struct json_value *child = NULL;

        if (f->v->type == JSON_OBJECT && f->next < f->v->u.o.len) {
            const struct json_member *m = &f->v->u.o.members[f->next++];

            if (m->key_len == 0 || m->key[0] == '$' ||
                memchr(m->key, '.', m->key_len) != NULL)
                return error_set(err, ERR_VALIDATION, field,
                                 "%s keys must not be empty, start with '$' "
                                 "or contain '.'",
                                 field);
            child = m->value;
        } else if (f->v->type == JSON_ARRAY && f->next < f->v->u.a.len) {
            child = f->v->u.a.items[f->next++];
        } else {
            top--;
            continue;
        }
        if (child->type == JSON_OBJECT || child->type == JSON_ARRAY) {
            if (top + 1 >= max_depth)
                return error_set(err, ERR_VALIDATION, field,
                                 "%s nested deeper than %d", field, max_depth);
            top++;
            stack[top].v = child;
            stack[top].next = 0;
        }
    }
    return true;
}

bool
validate_document(const char *field, const struct json_value *v,
                  size_t max_bytes, int max_depth, bool require_object,
                  struct error *err)
{
    if (require_object && v->type != JSON_OBJECT)
        return error_set(err, ERR_VALIDATION, field, "%s must be an object",
                         field);
    if (!keys_safe(field, v, max_depth, err))
        return false;
    if (json_encoded_size(v) > max_bytes)
        return error_set(err, ERR_VALIDATION, field,
                         "%s must be at most %zu bytes encoded", field,
                         max_bytes);
    return true;
}
