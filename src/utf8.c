#include <stdint.h>

#include "utf8.h"
#include "banned.h"

/* Table-free validation following RFC 3629's syntax (section 4). */
bool
utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            if (i + 1 >= n || (s[i + 1] & 0xc0) != 0x80)
                return false;
            i += 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            unsigned char lo = 0x80, hi = 0xbf;

            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
            if (i + 2 >= n || s[i + 1] < lo || s[i + 1] > hi ||
                (s[i + 2] & 0xc0) != 0x80)
                return false;
            i += 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            unsigned char lo = 0x80, hi = 0xbf;

            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* past U+10FFFF */
            if (i + 3 >= n || s[i + 1] < lo || s[i + 1] > hi ||
                (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
                return false;
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

size_t
utf8_count(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            count++;
    return count;
}
