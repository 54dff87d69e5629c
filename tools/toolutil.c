#include "toolutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema.h"
#include "util.h"

int
tool_bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", progname);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry `%s --help`.\n", progname);
    return 2;
}

int64_t
tool_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *
tool_fmt_size(char *buf, size_t len, uint64_t n)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

const char *
tool_state_name(int st)
{
    switch (st) {
    case BS_STORED_READY: return "ready";
    case BS_STORED_BURIED: return "buried";
    case BS_STORED_DELAYED: return "delayed";
    }
    return "?";
}

static uint64_t
hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;      /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

tally_entry *
tally_get(tally_entry **slots, size_t *count, size_t *cap, const char *name, size_t len)
{
    if ((*count + 1) * 2 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        tally_entry *nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return NULL;
        for (size_t i = 0; i < *cap; i++) {
            if (!(*slots)[i].name)
                continue;
            size_t k = hash_name((*slots)[i].name, (*slots)[i].len) & (ncap - 1);
            while (nt[k].name)
                k = (k + 1) & (ncap - 1);
            nt[k] = (*slots)[i];
        }
        free(*slots);
        *slots = nt;
        *cap = ncap;
    }
    size_t k = hash_name(name, len) & (*cap - 1);
    while ((*slots)[k].name) {
        if ((*slots)[k].len == len && memcmp((*slots)[k].name, name, len) == 0)
            return &(*slots)[k];
        k = (k + 1) & (*cap - 1);
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, name, len);
    copy[len] = '\0';
    (*slots)[k].name = copy;
    (*slots)[k].len = len;
    (*count)++;
    return &(*slots)[k];
}
