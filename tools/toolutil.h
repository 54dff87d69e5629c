/* Small pieces both offline tools (bsdump, bsimport) use. */
#ifndef BS_TOOLUTIL_H
#define BS_TOOLUTIL_H

#include <stddef.h>
#include <stdint.h>

/* "TOOL: " and fmt (with arg) on stderr, then a pointer to --help; returns
 * 2, the tools' exit status for bad usage. progname names the tool. */
int tool_bad_usage(const char *fmt, const char *arg);
/* Wall-clock ns since the epoch. */
int64_t tool_wall_now(void);
/* "123 B", "4.5 MiB"...: written into buf, which is returned. */
const char *tool_fmt_size(char *buf, size_t len, uint64_t n);
/* Name of a stored job state (BS_STORED_*). */
const char *tool_state_name(int st);

/* Per-tube job counts, indexed by stored state: an open-addressing table
 * whose slots with a NULL name are empty. */
typedef struct tally_entry {
    char *name;
    size_t len;
    uint64_t n[5];
} tally_entry;

/* The entry for name, created (with a copy of the name) when new; NULL when
 * memory runs out. *slots, *count and *cap start as NULL, 0, 0. */
tally_entry *tally_get(tally_entry **slots, size_t *count, size_t *cap,
                       const char *name, size_t len);

#endif
