#include "parse.h"

#include <string.h>

int
parse_u64(const char *s, uint64_t *out, const char **end)
{
    while (*s == ' ')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (!end && *s != '\0')
        return -1;
    if (end)
        *end = s;
    *out = v;
    return 0;
}

int
parse_u32(const char *s, uint32_t *out, const char **end)
{
    uint64_t v;
    const char *e;
    if (parse_u64(s, &v, &e) < 0 || v > UINT32_MAX)
        return -1;
    if (!end && *e != '\0')
        return -1;
    if (end)
        *end = e;
    *out = (uint32_t)v;
    return 0;
}

int
parse_tube_name(const char *s, const char **name, size_t *len, const char **end)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789-+/;.$_()";
    while (*s == ' ')
        s++;
    size_t n = strspn(s, chars);
    if (n == 0)
        return -1;
    *name = s;
    *len = n;
    *end = s + n;
    return 0;
}
