/* Offline access to a store, for the tools (bsdump, bsimport): read-only
 * views that never block or slow a running server, an import that lands in
 * one transaction (all of it or none), and a compacting copy of a live
 * store. Part of the store layer: the tools reach LMDB only through this. */
#ifndef BS_STORE_OFFLINE_H
#define BS_STORE_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "schema.h"

typedef struct store_view store_view;

typedef struct store_info {
    uint32_t version;
    uint64_t next_id;
    uint64_t jobs;
    size_t used_bytes;          /* pages in use */
    size_t file_bytes;          /* size of data.mdb */
} store_info;

typedef struct store_job {
    uint64_t id;
    bs_job_record rec;          /* rec.tube points into the store's map */
    const unsigned char *body;  /* body without CRLF; NULL unless asked */
    size_t body_len;
} store_job;

enum { SV_READ = 0, SV_WRITE = 1 };

/* SV_READ: a read-only view, no lock taken, safe beside a running server.
 * SV_WRITE: takes the directory's lock (refused while a server runs) and
 * creates the store if the directory is empty. NULL with a message. */
store_view *sv_open(const char *dir, int mode, char *err, size_t errlen);
void sv_close(store_view *v);

int sv_info(store_view *v, store_info *info);
/* Calls fn for each job with from <= id <= to, in id order, inside one read
 * transaction; stops at fn's first non-zero return and returns it. */
int sv_foreach(store_view *v, uint64_t from, uint64_t to, int with_body,
               int (*fn)(void *ctx, const store_job *j), void *ctx);
/* Paused tubes: name, pause length (ns) and end (wall-clock ns). */
int sv_foreach_pause(store_view *v,
                     int (*fn)(void *ctx, const char *name, size_t len, int64_t pause, int64_t until),
                     void *ctx);

/* Import: begin (size_hint: bytes the import may need, to size the map
 * once), add jobs, then commit with a sync, or abort. Nothing is visible
 * until the commit. */
int sv_import_begin(store_view *v, size_t size_hint, char *err, size_t errlen);
int sv_import_job(store_view *v, uint64_t id, const bs_job_record *rec,
                  const void *body, size_t body_len, char *err, size_t errlen);
/* next_id: the id the next put must get at least. */
int sv_import_commit(store_view *v, uint64_t next_id, char *err, size_t errlen);
void sv_import_abort(store_view *v);

/* A consistent, compacted copy of the store into the empty directory dest,
 * taken in one read transaction while the server goes on. */
int sv_backup(store_view *v, const char *dest, char *err, size_t errlen);

#endif
