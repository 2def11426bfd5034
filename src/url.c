#include "url.h"
#include "utf8.h"
#include "banned.h"

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const char *
url_decode(struct arena *a, const char *raw, size_t len, bool plus_is_space)
{
    char *out = arena_alloc(a, len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (raw[i] == '%') {
            int hi, lo;

            if (len - i < 3)
                return NULL;
            hi = hexval(raw[i + 1]);
            lo = hexval(raw[i + 2]);
            if (hi < 0 || lo < 0)
                return NULL;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = plus_is_space && raw[i] == '+' ? ' ' : raw[i];
        }
    }
    out[o] = '\0';
    if (!utf8_valid(out, o)) /* also refuses a NUL */
        return NULL;
    return out;
}
