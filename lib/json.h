/*
 * json.h - the one JSON string writer of cdrflow (query output, webhook
 * payloads, the fraud rules the ETL stores).
 *
 * Escaped: '"' and '\\', \n \r \t in their short form, every other control
 * character and DEL as \u00XX.  Other bytes are copied: the caller passes
 * valid UTF-8 (report/ cleans its text first).
 */
#ifndef CDRFLOW_JSON_H
#define CDRFLOW_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"

/* Append s (n bytes) as a JSON string, quotes included.  0, or -1 when b
 * cannot grow. */
int json_string(struct buf *b, const char *s, size_t n);
/* Write the NUL-terminated s as a JSON string to out.  0, or -1 on a write
 * error. */
int json_fput_string(FILE *out, const char *s);

#endif
