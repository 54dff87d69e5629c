/* libFuzzer harness: what the daemon does at start-up with job records that
 * bs_job_decode() accepts. Records are written into a fresh LMDB store with
 * the offline import API (src/store_offline.c), then store_open() and
 * store_load() (src/store.c) rebuild a queue from them, as `beanstalkd -b`
 * does after a restart.
 *
 * Input: records, one after another:
 *   u64 BE job id, u8 L, L bytes of job record value, u8 B, B body bytes.
 * A value that bs_job_decode() refuses is skipped (the daemon refuses to
 * start on one, with a message; that path is not what this harness is for);
 * so is an id already imported. The body stored is the B bytes given, which
 * need not match the record's body size.
 *
 * Checks, beyond the sanitizers: the load either fails with a message or
 * gives a queue whose counters add up to the number of jobs imported. The
 * store's directory is made once per process and emptied for each input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"
#include "schema.h"
#include "store.h"
#include "store_offline.h"
#include "scratch.h"

static char dir[4096];

static _Noreturn void
die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_store: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
    abort();
}

static void
empty_dir(void)
{
    if (scratch_empty(dir, NULL) < 0)
        die("cannot open the scratch directory", NULL);
}

static void
remove_scratch(void)
{
    empty_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fuzz_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
            die("cannot create a scratch directory", NULL);
        atexit(remove_scratch);
    }
    empty_dir();

    store_view *v = sv_open(dir, SV_WRITE, err, sizeof err);
    if (!v)
        die("sv_open", err);
    if (sv_import_begin(v, 1 << 20, err, sizeof err) < 0)
        die("sv_import_begin", err);
    size_t off = 0;
    uint64_t imported = 0, max_id = 0;
    while (size - off >= 9) {
        uint64_t id = bs_get_u64(data + off);
        size_t vlen = data[off + 8];
        off += 9;
        if (size - off < vlen)
            break;
        const uint8_t *val = data + off;
        off += vlen;
        size_t blen = off < size ? data[off] : 0;
        off += off < size;
        if (size - off < blen)
            blen = size - off;
        const uint8_t *body = data + off;
        off += blen;
        bs_job_record rec;
        if (id == 0 || bs_job_decode(val, vlen, &rec) < 0)
            continue;
        if (sv_import_job(v, id, &rec, body, blen, err, sizeof err) < 0)
            continue;           /* a duplicate id */
        imported++;
        if (id > max_id)
            max_id = id;
    }
    if (sv_import_commit(v, max_id + 1 > max_id ? max_id + 1 : max_id, err, sizeof err) < 0)
        die("sv_import_commit", err);
    sv_close(v);

    queue q;
    if (queue_init(&q) < 0)
        die("queue_init", NULL);
    store *s = store_open(dir, STORE_SYNC_NEVER, 0, err, sizeof err);
    if (!s)
        die("store_open", err);
    err[0] = '\0';
    if (store_load(s, &q, err, sizeof err) == 0) {
        const queue_stats *st = &q.st;
        if (q.jobs.count != imported)
            die("store_load restored a different number of jobs", NULL);
        if (st->ready + st->reserved + st->delayed + st->buried != q.jobs.count)
            die("job state counters do not add up after a load", NULL);
    } else if (!err[0]) {
        die("store_load failed without a message", NULL);
    }
    queue_free(&q);
    store_close(s);
    return 0;
}
