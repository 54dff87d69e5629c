/* Legacy beanstalkd binlog codec: read a -b directory the way stock
 * beanstalkd 1.12 replays it at start-up, and write a directory that stock
 * 1.12 loads.  No dependency on the server; used by bsimport, bsdump and
 * binlogcat.  The format and the replay rules are described in
 * legacy-binlog-format.md (shared with the project).
 *
 * Reading
 *   binlog_open() scans DIR, takes a shared lock on DIR/lock (so a live
 *   server cannot be writing it), and replays every binlog.N file in stock
 *   order.  The replay keeps one small record per job in memory, never the
 *   bodies: binlog_next() hands out the surviving jobs in id order and reads
 *   each body from its file only then, so an import holds one body at a time.
 *
 *   Record-level damage (torn tail, bad namelen, bad state, a body too big for
 *   the size limit...) is handled exactly as stock handles it and reported as
 *   a warning.  Hard errors come back as a negative BINLOG_E* code with a
 *   message in binlog_error: DIR missing or not a directory, no binlog.N file
 *   in it, a binlog file that cannot be opened or read, a header that is
 *   neither 5 nor 7 (stock warns and skips such a file and later DELETES it;
 *   pass BINLOG_SKIP_BAD_VERSION to get stock's behaviour), a locked
 *   directory, or no memory.
 *
 * Writing
 *   binlog_writer_open() / _add() / _finish() write jobs as version 7 files
 *   (the only version 1.12 writes) into an empty directory.  Jobs are
 *   streamed: one body at a time is needed.
 *
 * Counters and states in struct binlog_job are "as stock reports them after a
 * load" in both directions: a buried job's `buries` includes the +1 that
 * stock adds on replay, and the writer stores buries - 1 so that stock
 * reports the same number again.  So decode(write(jobs)) == jobs.
 *
 * All times are wall-clock nanoseconds since the Unix epoch (version 5 files
 * hold microseconds; they are converted as stock converts them).
 */
#ifndef BINLOG_H
#define BINLOG_H

#include <stddef.h>
#include <stdint.h>

/* Return codes: 0 is success, errors are negative. */
enum {
    BINLOG_OK = 0,
    BINLOG_ENOTDIR = -1,    /* DIR missing, not a directory, unreadable */
    BINLOG_ENOFILES = -2,   /* no binlog.N file in DIR: not a binlog directory */
    BINLOG_EIO = -3,        /* a file could not be opened, read or written */
    BINLOG_EVERSION = -4,   /* a binlog file with a header other than 5 or 7 */
    BINLOG_ELOCKED = -5,    /* DIR/lock is held by another process */
    BINLOG_ENOMEM = -6,
    BINLOG_EINVAL = -7,     /* bad argument or job (writer) */
    BINLOG_ETOOBIG = -8,    /* writer: body + 2 exceeds the target's -z */
    BINLOG_EEXIST = -9,     /* writer: DIR already holds binlog files */
    BINLOG_ECHANGED = -10,  /* a binlog file changed between replay and read */
};

/* State byte of a record (the values stock writes). */
enum binlog_state {
    BINLOG_INVALID = 0,     /* deleted */
    BINLOG_READY = 1,
    BINLOG_RESERVED = 2,    /* written only by compaction; replays as ready */
    BINLOG_BURIED = 3,
    BINLOG_DELAYED = 4,
};

/* Defaults of stock beanstalkd 1.12. */
#define BINLOG_STOCK_SIZE_LIMIT 65535           /* -z default */
#define BINLOG_STOCK_SIZE_LIMIT_MAX 1073741824  /* largest -z stock takes */
#define BINLOG_STOCK_FILE_SIZE 10485760         /* -s default */
#define BINLOG_MAX_TUBE_NAME 200

typedef struct binlog_error {
    int code;               /* a BINLOG_E* value, or 0 */
    char msg[512];          /* one line, no trailing newline */
} binlog_error;

/* One job, as stock would hold it right after loading the directory. */
typedef struct binlog_job {
    uint64_t id;
    const char *tube;       /* NUL-terminated (stock cuts a name at a NUL) */
    size_t tube_len;
    int state;              /* BINLOG_READY, BINLOG_DELAYED or BINLOG_BURIED
                             * (reader); the writer also takes RESERVED and
                             * writes it as READY */
    uint32_t pri;
    int64_t delay_ns;       /* delay argument of the last put/release; not
                             * the time left (stats-job "delay") */
    int64_t ttr_ns;
    int64_t created_ns;     /* wall clock at put; age = now - created */
    int64_t deadline_ns;    /* wall clock: when a delayed job becomes ready.
                             * Stale for other states; kept as stored */
    uint32_t reserves, timeouts, releases, buries, kicks;
    const unsigned char *body;  /* client body, without the stored CRLF */
    size_t body_len;

    /* Reader only (the writer ignores them). */
    int stored_state;       /* state byte of the job's newest record */
    int body_crlf;          /* 1 if the stored body ended in CRLF.  If not,
                             * body is still the first stored_size - 2 bytes,
                             * what stock sends to a client */
    int format;             /* 5 or 7: version of the file of the full record */
    int file;               /* N of the binlog.N holding the newest full
                             * record (stats-job "file") */
    uint64_t order;         /* position in stock's replay list.  Stock fills
                             * each tube's buried list in this order, so
                             * "kick" after a restart follows it */
} binlog_job;

/* ---- reading ---- */

/* Flags for binlog_read_opts.flags. */
#define BINLOG_SKIP_BAD_VERSION 0x1 /* a header other than 5/7 is a warning and
                                     * the file is skipped, as stock does */
#define BINLOG_NO_LOCK 0x2          /* do not lock DIR/lock */

typedef struct binlog_read_opts {
    /* Stock's -z: the largest stored body (client body + 2) a new job may
     * have; a bigger one ends that file's replay ("job N is too big").
     * 0 means BINLOG_STOCK_SIZE_LIMIT_MAX, so an import keeps every job
     * some stock configuration could load.  Pass 65535 to see what a stock
     * server with default options loads. */
    size_t size_limit;
    /* Wall clock (ns) at which the load happens: a delayed job whose
     * deadline is not after it loads as ready.  0 = the current time. */
    int64_t now_ns;
    unsigned flags;
} binlog_read_opts;

/* A problem stock replay survives.  `stock` is 1 when stock 1.12 prints the
 * same message on stderr: then `msg` is stock's text with the full path,
 * "DIR/binlog.N:OFFSET: ..." (for "open DIR/binlog.N: ..." stock adds its
 * program name and source position in front).  0 marks the codec's own
 * notes.  If stock_errors() is set, stock also prints "Errors reading one or
 * more WAL files." and "Continuing. You may be missing data." */
typedef struct binlog_warning {
    int stock;
    int lost;               /* 1 if data is lost or ignored because of it */
    int file;               /* binlog number, or -1 */
    int64_t offset;         /* byte offset in that file, or -1 */
    const char *msg;
} binlog_warning;

typedef struct binlog_file_info {
    int n;                  /* binlog.N */
    int version;            /* header as int32 LE; -1 if shorter than 4 bytes */
    int64_t size;
    int read;               /* 1 if replayed, 0 if skipped */
} binlog_file_info;

typedef struct binlog_reader binlog_reader;

/* Scan and replay DIR.  On success *out is a reader positioned before the
 * first job (id order).  opts may be NULL for the defaults.  On failure
 * returns a BINLOG_E* code, fills err (if not NULL) and sets *out to NULL.
 *
 * Unless BINLOG_NO_LOCK, a read lock (fcntl F_RDLCK) is held on DIR/lock
 * until binlog_close(); if DIR/lock does not exist, no lock is taken.  POSIX
 * locks belong to the process: closing any other descriptor of DIR/lock in
 * the same process drops it. */
int binlog_open(binlog_reader **out, const char *dir,
                const binlog_read_opts *opts, binlog_error *err);

/* The next surviving job in increasing id order: returns 1 and fills *job,
 * 0 at the end, or a BINLOG_E* code (a body could not be read).  Pointers in
 * *job stay valid until the next call or binlog_close(). */
int binlog_next(binlog_reader *r, binlog_job *job, binlog_error *err);

/* Start binlog_next() over from the lowest id. */
void binlog_rewind(binlog_reader *r);

/* Call fn for every job in id order; stops at the first non-zero return of
 * fn and returns it.  Otherwise 0, or a BINLOG_E* code. */
int binlog_foreach(binlog_reader *r,
                   int (*fn)(const binlog_job *job, void *ctx), void *ctx,
                   binlog_error *err);

size_t binlog_job_count(const binlog_reader *r);

/* The id stock gives the next put after this load: 1 + the largest id for
 * which replay created a job (a full record, even if deleted or torn
 * later).  Ids seen only in delete records do not count, so stock can
 * reuse ids. */
uint64_t binlog_stock_next_id(const binlog_reader *r);

/* The safer choice for an importer: at least stock's value and above every
 * id seen in any record that replay accepted. */
uint64_t binlog_safe_next_id(const binlog_reader *r);

/* 1 if stock would print "Errors reading one or more WAL files." */
int binlog_stock_errors(const binlog_reader *r);

size_t binlog_warning_count(const binlog_reader *r);
const binlog_warning *binlog_get_warning(const binlog_reader *r, size_t i);

size_t binlog_file_count(const binlog_reader *r);
const binlog_file_info *binlog_get_file(const binlog_reader *r, size_t i);

/* Releases the lock and all memory.  NULL is fine. */
void binlog_close(binlog_reader *r);

/* ---- writing ---- */

typedef struct binlog_write_opts {
    /* The target server's -z: a job whose body + 2 exceeds it is refused
     * with BINLOG_ETOOBIG (stock would drop it and the rest of its file).
     * 0 = BINLOG_STOCK_SIZE_LIMIT (65535). */
    size_t size_limit;
    /* Start a new binlog.N before a record would take a file past this
     * many bytes (a record never spans files).  0 = 10 MiB, stock's -s. */
    int64_t file_size;
} binlog_write_opts;

typedef struct binlog_writer binlog_writer;

/* DIR is created if missing; it must not hold any binlog.N file, nor be
 * locked by a server.  Files are written under temporary names and renamed
 * only by binlog_writer_finish(). */
int binlog_writer_open(binlog_writer **out, const char *dir,
                       const binlog_write_opts *opts, binlog_error *err);

/* Append one job, in any id order (stock builds each tube's buried list in
 * file order, so write buried jobs in the kick order you want kept).  Ids
 * must be unique and >= 1; tube names 1..200 protocol-valid characters;
 * state READY, RESERVED (written as ready), BURIED or DELAYED.  A delayed
 * job's deadline_ns is the wall-clock due time; if it has passed when
 * stock loads the directory the job is ready. */
int binlog_writer_add(binlog_writer *w, const binlog_job *job,
                      binlog_error *err);

/* Make stock continue at next_id after loading (0 = max id + 1): if
 * next_id > max id + 1, a placeholder job next_id - 1 is written and deleted
 * at once, as the format doc recommends.  next_id <= max id is EINVAL.  Then
 * fsync, rename into place, fsync DIR.  Frees w in every case; on failure
 * the temporary files are removed. */
int binlog_writer_finish(binlog_writer *w, uint64_t next_id,
                         binlog_error *err);

/* Give up: remove temporary files, free w.  NULL is fine. */
void binlog_writer_abort(binlog_writer *w);

/* ---- helpers ---- */

const char *binlog_strerror(int code);

/* 1 if name (len bytes) is a tube name the protocol accepts: 1..200 of
 * A-Z a-z 0-9 - + / ; . $ _ ( ), not starting with '-'. */
int binlog_tube_name_valid(const char *name, size_t len);

#endif
