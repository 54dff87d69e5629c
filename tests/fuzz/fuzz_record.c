/* libFuzzer harness: the store's record decoders, bs_job_decode()
 * (schema/schema.h) and journal_decode() / journal_replay() (src/journal.c).
 *
 * Input: one flags byte, then the bytes to decode.
 *   flags & 1    before decoding the bytes as journal records, walk them
 *                record by record and write the correct CRC-32C into each
 *                one whose length fits, so the fuzzer gets past the checksum
 *                to the fields behind it
 *   flags >> 1   the sequence number the replay starts after (0..127)
 *
 * The bytes are decoded three ways:
 *   1. as one job record value (the jobs database): a record that decodes
 *      must encode back to the same bytes, and its tube must lie inside it;
 *   2. as a journal file, record after record with journal_decode(): every
 *      record must lie inside the input, and journal_add() must write it
 *      back byte for byte; a jobs-database value in it goes through 1.;
 *   3. through journal_replay() on a real file holding the bytes (created
 *      once per process): what it applies, whether it reports stopping and
 *      the sequence number it ends with must agree with the contract in
 *      journal.h, computed from the records of 2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "journal.h"
#include "schema.h"

/* Database indexes, as src/store_env.h numbers them: meta, jobs, bodies,
 * tubes. */
#define JOBS_DB 1

/* The journal record layout (journal.c): u32 length of what follows, u32
 * CRC-32C of what follows it, u64 sequence, u8 op, u16 key length. */
#define J_HEAD 8
#define J_FIXED (J_HEAD + 8 + 1 + 2)

static _Noreturn void
die(const char *what)
{
    fprintf(stderr, "fuzz_record: %s\n", what);
    abort();
}

static void
check_job_record(const unsigned char *val, size_t len)
{
    bs_job_record r;
    memset(&r, 0xa5, sizeof r);
    if (bs_job_decode(val, len, &r) < 0)
        return;
    if (r.tube_len == 0 || r.tube_len > BS_TUBE_NAME_MAX)
        die("decoded tube length out of range");
    if (r.tube != (const char *)val + BS_JOB_FIXED ||
        (size_t)BS_JOB_FIXED + r.tube_len != len)
        die("decoded tube outside the record");
    if (r.state != BS_STORED_READY && r.state != BS_STORED_BURIED &&
        r.state != BS_STORED_DELAYED)
        die("decoded an unknown state");
    unsigned char out[BS_JOB_RECORD_MAX];
    size_t n = bs_job_encode(&r, out);
    if (n != len || memcmp(out, val, len) != 0)
        die("job record does not encode back to the same bytes");
}

/* Write the right CRC into every record of d[0..n) whose length fits. */
static void
fix_crcs(unsigned char *d, size_t n)
{
    size_t off = 0;
    while (n - off >= J_FIXED) {
        size_t total = (size_t)bs_get_u32(d + off) + 4;
        if (total < J_FIXED || total > n - off)
            return;
        bs_put_u32(d + off + 4, crc32c(0, d + off + J_HEAD, total - J_HEAD));
        off += total;
    }
}

typedef struct expect {
    uint64_t after, next, highest;
    size_t applied, calls;
    int gap;
} expect;

static int
apply(void *ctx, int db, int del, const void *key, size_t klen,
      const void *val, size_t vlen)
{
    expect *e = ctx;
    e->calls++;
    if (db < 0 || db > 0x7f || (del != 0 && del != 1))
        die("replay passed an impossible op");
    if (klen > 0xffff)
        die("replay passed an impossible key length");
    /* Touch every byte, so ASan sees a bad pointer or length. */
    unsigned sum = 0;
    for (size_t i = 0; i < klen; i++)
        sum += ((const unsigned char *)key)[i];
    for (size_t i = 0; i < vlen; i++)
        sum += ((const unsigned char *)val)[i];
    (void)sum;
    if (db == JOBS_DB && !del)
        check_job_record(val, vlen);
    return 0;
}

static journal jr;
static int jr_ready;

static void
setup_journal(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/fuzz_record.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        die("cannot create a temporary file");
    close(fd);
    if (journal_open(&jr, path) < 0)
        die("journal_open failed");
    unlink(path);           /* the descriptor is all the harness needs */
    jr_ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (!jr_ready)
        setup_journal();
    unsigned flags = data[0];
    size_t n = size - 1;
    /* An exact-size copy, so ASan catches a read past the end. */
    unsigned char *d = malloc(n ? n : 1);
    if (!d)
        die("out of memory in the harness");
    memcpy(d, data + 1, n);

    /* 1. One job record. */
    check_job_record(d, n);

    /* 2. A journal, record by record. */
    if (flags & 1)
        fix_crcs(d, n);
    expect e = {.after = flags >> 1};
    e.next = e.after + 1;
    e.highest = e.after;
    size_t off = 0;
    journal w = {.fd = -1};
    while (off < n) {
        uint64_t seq;
        int db, del;
        const unsigned char *key, *val;
        size_t klen, vlen;
        size_t len = journal_decode(d + off, n - off, &seq, &db, &del, &key,
                                    &klen, &val, &vlen);
        if (len == 0)
            break;
        if (len < J_FIXED || len > n - off)
            die("journal_decode returned a size outside the input");
        if (key != d + off + J_FIXED || key + klen != val ||
            val + vlen != d + off + len)
            die("decoded key and value do not tile the record");
        if (db < 0 || db > 0x7f || (del != 0 && del != 1))
            die("decoded an impossible op");
        /* journal_add numbers records itself: ++seq. */
        w.seq = seq - 1;
        if (journal_add(&w, db, del, key, klen, val, vlen) < 0)
            die("journal_add failed");
        if (buf_pending(&w.pending) != len ||
            memcmp(w.pending.data + w.pending.off, d + off, len) != 0)
            die("journal record does not encode back to the same bytes");
        buf_consume(&w.pending, len);
        if (db == JOBS_DB && !del)
            check_job_record(val, vlen);

        /* What journal_replay must do with it (journal.h). */
        if (seq > e.highest)
            e.highest = seq;
        if (seq > e.after && !e.gap) {
            if (seq == e.next) {
                e.applied++;
                e.next++;
            } else {
                e.gap = 1;
            }
        }
        off += len;
    }
    journal_close(&w);
    int want_stopped = e.gap || off < n;

    /* 3. The same bytes as a journal file. */
    if (journal_reset(&jr) < 0)
        die("journal_reset failed");
    if (n && pwrite(jr.fd, d, n, 0) != (ssize_t)n)
        die("cannot write the journal file");
    size_t applied = 0;
    int stopped = 0;
    if (journal_replay(&jr, e.after, apply, &e, &applied, &stopped) < 0)
        die("journal_replay failed");
    if (applied != e.applied || e.calls != e.applied)
        die("journal_replay applied a different number of records");
    if (stopped != want_stopped)
        die("journal_replay's stopped flag disagrees with the records");
    if (jr.seq != e.highest)
        die("journal_replay left a sequence number other than the highest");

    free(d);
    return 0;
}
