#include "service.h"
#include "validate.h"
#include "banned.h"

bool
service_text(const char *field, const struct json_value *v, size_t max_chars,
             size_t max_bytes, const char **out, struct error *err)
{
    *out = NULL;
    if (v == NULL || v->type == JSON_NULL)
        return true;
    if (!validate_text(field, v, max_chars, max_bytes, err))
        return false;
    *out = v->u.s.ptr;
    return true;
}
