/* The YAML documents of stats, stats-job, stats-tube and the tube lists, in
 * beanstalkd 1.13's key order and form. Each fills an empty buf with the
 * document and its final CRLF; on no memory the buf is left empty. */
#ifndef BS_STATS_H
#define BS_STATS_H

#include "buf.h"
#include "proto.h"

#define BS_VERSION "1.13-lmdb"

void stats_server(const proto *p, buf *out, int64_t now);
void stats_job(const job *j, buf *out, int64_t now);
void stats_tube(const tube *t, buf *out, int64_t now);
void stats_list_tubes(tube *const *list, size_t n, buf *out);
void stats_list_watched(const client *c, buf *out);

#endif
