#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "schema.h"

/* Record: u32 length of what follows, u32 CRC-32C of what follows the CRC,
 * u64 sequence, u8 op (database index, 0x80 set for a deletion), u16 key
 * length, key, value. */
#define HEAD 8
#define FIXED (HEAD + 8 + 1 + 2)
#define RECORD_MAX ((size_t)2 << 30)

int
journal_open(journal *j, const char *path)
{
    memset(j, 0, sizeof *j);
    j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    return j->fd < 0 ? -1 : 0;
}

int
journal_add(journal *j, int db, int del, const void *key, size_t klen,
            const void *val, size_t vlen)
{
    size_t total = FIXED + klen + vlen;
    if (buf_reserve(&j->pending, total) < 0)
        return -1;
    unsigned char *p = (unsigned char *)j->pending.data + j->pending.len;
    bs_put_u32(p, (uint32_t)(total - 4));
    bs_put_u64(p + HEAD, ++j->seq);
    p[HEAD + 8] = (unsigned char)(db | (del ? 0x80 : 0));
    bs_put_u16(p + HEAD + 9, (uint16_t)klen);
    memcpy(p + FIXED, key, klen);
    if (vlen)
        memcpy(p + FIXED + klen, val, vlen);
    bs_put_u32(p + 4, crc32c(0, p + HEAD, total - HEAD));
    j->pending.len += total;
    return 0;
}

int
journal_flush(journal *j)
{
    while (buf_pending(&j->pending)) {
        ssize_t n = write(j->fd, j->pending.data + j->pending.off, buf_pending(&j->pending));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        buf_consume(&j->pending, (size_t)n);
    }
    return 0;
}

int
journal_reset(journal *j)
{
    return ftruncate(j->fd, 0);
}

int
journal_reset_synced(journal *j)
{
    return ftruncate(j->fd, 0) < 0 ? -1 : fsync(j->fd);
}

size_t
journal_decode(const unsigned char *p, size_t n, uint64_t *seq, int *db, int *del,
               const unsigned char **key, size_t *klen,
               const unsigned char **val, size_t *vlen)
{
    if (n < FIXED)
        return 0;
    size_t total = (size_t)bs_get_u32(p) + 4;
    if (total < FIXED || total > n || total > RECORD_MAX)
        return 0;
    if (crc32c(0, p + HEAD, total - HEAD) != bs_get_u32(p + 4))
        return 0;
    *seq = bs_get_u64(p + HEAD);
    *db = p[HEAD + 8] & 0x7f;
    *del = (p[HEAD + 8] & 0x80) != 0;
    *klen = bs_get_u16(p + HEAD + 9);
    if (FIXED + *klen > total)
        return 0;
    *key = p + FIXED;
    *val = p + FIXED + *klen;
    *vlen = total - FIXED - *klen;
    return total;
}

int
journal_replay(journal *j, uint64_t after_seq, journal_apply_fn fn, void *ctx,
               size_t *applied, int *stopped)
{
    struct stat st;
    *applied = 0;
    *stopped = 0;
    j->seq = after_seq;
    if (fstat(j->fd, &st) < 0)
        return -1;
    size_t size = (size_t)st.st_size;
    if (size == 0)
        return 0;
    unsigned char *data = malloc(size);
    if (!data)
        return -1;
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(j->fd, data + got, size - got, (off_t)got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            free(data);
            return -1;
        }
        got += (size_t)n;
    }
    size_t off = 0;
    int r = 0, gap = 0;
    uint64_t highest = after_seq;
    while (off < size) {
        uint64_t seq;
        int db, del;
        const unsigned char *key, *val;
        size_t klen, vlen;
        size_t len = journal_decode(data + off, size - off, &seq, &db, &del, &key, &klen, &val, &vlen);
        if (len == 0)
            break;
        off += len;
        if (seq > highest)
            highest = seq;
        if (seq <= after_seq || gap)
            continue;                   /* already in the store, or past a gap */
        if (seq != j->seq + 1) {
            gap = 1;                    /* what follows is not ours to apply */
            continue;
        }
        if ((r = fn(ctx, db, del, key, klen, val, vlen)) < 0)
            break;
        j->seq = seq;
        (*applied)++;
    }
    *stopped = gap || off < size;
    /* New records are numbered above every record still in the file, so a
     * stale one can never pass for the continuation of a new turn, whatever
     * a power cut leaves of later truncates and writes. */
    j->seq = highest;
    free(data);
    return r;
}

void
journal_close(journal *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    buf_free(&j->pending);
}
