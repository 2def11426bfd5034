#include <string.h>

#include "rng.h"
#include "url.h"
#include "uuid.h"
#include "banned.h"

void
uuid_generate(struct uuid *u)
{
    rng_bytes(u->b, sizeof(u->b));
    u->b[6] = (uint8_t)((u->b[6] & 0x0f) | 0x40); /* version 4 */
    u->b[8] = (uint8_t)((u->b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void
uuid_format(const struct uuid *u, char out[UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u->b[i] >> 4];
        out[o++] = hex[u->b[i] & 0x0f];
    }
    out[o] = '\0';
}

bool
uuid_parse(const char *s, struct uuid *u)
{
    size_t i = 0, o = 0;

    if (strlen(s) != UUID_STR_LEN)
        return false;
    while (o < 16) {
        int byte;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
        }
        /* Lowercase only: an id has one spelling, so it is matched (and
         * cached, logged, compared) in one form. */
        if ((s[i] >= 'A' && s[i] <= 'F') ||
            (s[i + 1] >= 'A' && s[i + 1] <= 'F'))
            return false;
        byte = url_hex_byte(s + i);
        if (byte < 0)
            return false;
        u->b[o++] = (uint8_t)byte;
        i += 2;
    }
    return true;
}

bool
uuid_equal(const struct uuid *a, const struct uuid *b)
{
    return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}
