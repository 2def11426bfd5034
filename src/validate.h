/*
 * validate.h - the contract's rules for values a client sends.
 *
 * Each check returns false with ERR_VALIDATION and param = the field name
 * given by the caller (a literal), and a message fit for the client.
 */
#ifndef PARLEY_VALIDATE_H
#define PARLEY_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "json.h"

/* A client name: 1-255 chars of [A-Za-z0-9._:-]; used for session_id and
 * (with max 128) memory keys. */
bool validate_name(const char *field, const char *s, size_t max_chars,
                   struct error *err);
/* session_id: validate_name with 255, and not a reserved route word
 * ("stats", "import", "conversation"). */
bool validate_session_id(const char *s, struct error *err);
/* Free text: at most max_chars Unicode chars (0 = no char limit) and at
 * most max_bytes UTF-8 bytes (0 = no byte limit).  Strings from the JSON
 * decoder are already valid UTF-8 without NUL. */
bool validate_text(const char *field, const struct json_value *v,
                   size_t max_chars, size_t max_bytes, struct error *err);
/* A JSON value stored as a document or inside one (metadata, extra_data,
 * memory values): encoded size <= max_bytes, depth <= max_depth, and no
 * object key, at any depth, that is empty, starts with '$' or contains
 * '.', so nothing can ever be read by MongoDB as an operator or a path.
 * require_object: the value must be an object. */
bool validate_document(const char *field, const struct json_value *v,
                       size_t max_bytes, int max_depth, bool require_object,
                       struct error *err);

#endif
