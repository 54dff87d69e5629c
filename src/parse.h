/* Tokens of a command line, parsed the way beanstalkd parses them, since
 * clients were written against its behaviour. */
#ifndef BS_PARSE_H
#define BS_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Longest command line, CRLF included. */
#define LINE_MAX_BYTES 224

/* An unsigned decimal after optional spaces. With end NULL the number must
 * end the string; otherwise *end gets the first byte after it. Returns 0 on
 * success, -1 for no digit, overflow, or (end NULL) trailing bytes. */
int parse_u64(const char *s, uint64_t *out, const char **end);
int parse_u32(const char *s, uint32_t *out, const char **end);

/* A tube name after optional spaces: *name and *len span the run of name
 * characters (which may still be invalid, e.g. too long). -1 if empty. */
int parse_tube_name(const char *s, const char **name, size_t *len, const char **end);

#endif
