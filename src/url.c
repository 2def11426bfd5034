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

int
url_hex_byte(const char *p)
{
    int hi = hexval(p[0]);
    int lo = hi < 0 ? -1 : hexval(p[1]);

    return lo < 0 ? -1 : hi << 4 | lo;
}

const char *
url_decode(struct arena *a, const char *raw, size_t len, bool plus_is_space)
{
    char *out = arena_alloc(a, len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (raw[i] == '%') {
            int byte = len - i < 3 ? -1 : url_hex_byte(raw + i + 1);

            if (byte < 0)
                return NULL;
            out[o++] = (char)byte;
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
