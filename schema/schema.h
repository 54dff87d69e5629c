/* The on-disk layout of the store, version BS_SCHEMA_VERSION. Shared by the
 * daemon (src/), the offline tools (tools/) and the upgrade steps
 * (migrate/). SCHEMA.md beside this file describes the same layout in words;
 * change both together, and bump the version with a migrate/ step. */
#ifndef BS_SCHEMA_H
#define BS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BS_SCHEMA_VERSION 1

/* Named databases of the LMDB environment. */
#define BS_DB_META   "meta"     /* key: ASCII name; value: see BS_META_* */
#define BS_DB_JOBS   "jobs"     /* key: job id, u64 BE; value: job record */
#define BS_DB_BODIES "bodies"   /* key: job id, u64 BE; value: body + CRLF */
#define BS_DB_TUBES  "tubes"    /* key: tube name; value: tube record */

/* Keys of the meta database. */
#define BS_META_MAGIC   "magic"         /* BS_MAGIC, ASCII, no NUL */
#define BS_META_VERSION "version"       /* u32 BE schema version */
#define BS_META_NEXT_ID "next-id"       /* u64 BE: ids below it are used */
#define BS_META_JOURNAL "journal-seq"   /* u64 BE: last journal record applied */
#define BS_MAGIC "beanstalkd-lmdb"

/* Job states as stored. A reserved job is stored as ready: a reservation
 * does not outlive the connection that holds it. */
enum { BS_STORED_READY = 1, BS_STORED_BURIED = 3, BS_STORED_DELAYED = 4 };

/* Job record, big-endian, fixed offsets, then the tube name:
 *   0  u8   state            1  u8  zero       2  u16 tube name length
 *   4  u32  priority
 *   8  i64  created at, wall-clock ns since the epoch
 *  16  i64  delay, ns (as last given by put or release)
 *  24  i64  ttr, ns
 *  32  i64  delayed jobs: when the delay ends; buried jobs: when buried
 *           (restart keeps kick order); else 0. Wall-clock ns
 *  40  u32  body size, bytes without the CRLF
 *  44  u32  reserves   48 u32 timeouts   52 u32 releases
 *  56  u32  buries     60 u32 kicks
 *  64  tube name (1..200 bytes, no NUL) */
#define BS_JOB_FIXED 64
#define BS_TUBE_NAME_MAX 200
#define BS_JOB_RECORD_MAX (BS_JOB_FIXED + BS_TUBE_NAME_MAX)

typedef struct bs_job_record {
    uint8_t state;
    uint32_t pri;
    int64_t created_at, delay, ttr, deadline;
    uint32_t body_size;
    uint32_t reserves, timeouts, releases, buries, kicks;
    uint16_t tube_len;
    const char *tube;           /* points into the encoded value when decoded */
} bs_job_record;

/* Tube record: only paused tubes have one.
 *   0  i64  pause length, ns     8  i64  pause ends, wall-clock ns */
#define BS_TUBE_RECORD 16

/* a - b for two times in ns (wall clock), saturated to +-BS_SPAN_MAX (146
 * years, beyond any delay or TTR): a damaged or hand-edited record may hold
 * any value, and no arithmetic on it may overflow. */
#define BS_SPAN_MAX ((int64_t)1 << 62)

static inline int64_t
bs_span(int64_t a, int64_t b)
{
    int64_t d;
    if (__builtin_sub_overflow(a, b, &d))
        return a > b ? BS_SPAN_MAX : -BS_SPAN_MAX;
    return d > BS_SPAN_MAX ? BS_SPAN_MAX : d < -BS_SPAN_MAX ? -BS_SPAN_MAX : d;
}

static inline void
bs_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void
bs_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static inline void
bs_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static inline uint16_t
bs_get_u16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
bs_get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t
bs_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Encodes r into out (BS_JOB_RECORD_MAX bytes); returns the length. */
static inline size_t
bs_job_encode(const bs_job_record *r, unsigned char *out)
{
    out[0] = r->state;
    out[1] = 0;
    bs_put_u16(out + 2, r->tube_len);
    bs_put_u32(out + 4, r->pri);
    bs_put_u64(out + 8, (uint64_t)r->created_at);
    bs_put_u64(out + 16, (uint64_t)r->delay);
    bs_put_u64(out + 24, (uint64_t)r->ttr);
    bs_put_u64(out + 32, (uint64_t)r->deadline);
    bs_put_u32(out + 40, r->body_size);
    bs_put_u32(out + 44, r->reserves);
    bs_put_u32(out + 48, r->timeouts);
    bs_put_u32(out + 52, r->releases);
    bs_put_u32(out + 56, r->buries);
    bs_put_u32(out + 60, r->kicks);
    memcpy(out + BS_JOB_FIXED, r->tube, r->tube_len);
    return BS_JOB_FIXED + r->tube_len;
}

/* Decodes and checks a stored value; 0, or -1 when it is not a valid
 * record (wrong length, unknown state, bad tube name length). */
static inline int
bs_job_decode(const void *val, size_t len, bs_job_record *r)
{
    const unsigned char *p = val;
    if (len < BS_JOB_FIXED + 1 || len > BS_JOB_RECORD_MAX)
        return -1;
    r->state = p[0];
    r->tube_len = bs_get_u16(p + 2);
    if (p[1] != 0 || (size_t)BS_JOB_FIXED + r->tube_len != len || r->tube_len == 0)
        return -1;
    if (r->state != BS_STORED_READY && r->state != BS_STORED_BURIED &&
        r->state != BS_STORED_DELAYED)
        return -1;
    r->pri = bs_get_u32(p + 4);
    r->created_at = (int64_t)bs_get_u64(p + 8);
    r->delay = (int64_t)bs_get_u64(p + 16);
    r->ttr = (int64_t)bs_get_u64(p + 24);
    r->deadline = (int64_t)bs_get_u64(p + 32);
    r->body_size = bs_get_u32(p + 40);
    r->reserves = bs_get_u32(p + 44);
    r->timeouts = bs_get_u32(p + 48);
    r->releases = bs_get_u32(p + 52);
    r->buries = bs_get_u32(p + 56);
    r->kicks = bs_get_u32(p + 60);
    r->tube = (const char *)p + BS_JOB_FIXED;
    return 0;
}

#endif
