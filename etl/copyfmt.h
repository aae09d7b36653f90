/*
 * copyfmt.h - building PostgreSQL COPY text-format rows in a buffer.
 *
 * Every text value is made valid UTF-8 on the way (invalid bytes and NUL
 * become U+FFFD) so that odd bytes from a PBX are stored, never dropped
 * and never able to fail a COPY.
 */
#ifndef CDRFLOW_COPYFMT_H
#define CDRFLOW_COPYFMT_H

#include <stddef.h>
#include <stdint.h>

#include "ami.h"
#include "buf.h"

/* Append a text field (escaped) followed by the separator sep ('\t' or '\n'). */
void copy_text(struct buf *b, const char *s, size_t n, char sep);
/* Append \N (SQL NULL) followed by sep. */
void copy_null(struct buf *b, char sep);
void copy_int(struct buf *b, int64_t v, char sep);
/* A timestamptz from unix microseconds: "2026-11-21 19:15:10.020841+00". */
void copy_time_us(struct buf *b, uint64_t us, char sep);
/* Append s as the body of a JSON string (no quotes), valid UTF-8. */
void json_string_body(struct buf *b, const char *s, size_t n);
/* Append every header of m as one JSON object (a repeated key becomes an
 * array of its values, in order), in COPY text form, then sep: the bytes
 * copy_text() would write for that JSON text, built in one pass.  scratch:
 * reused for values that need UTF-8 repair. */
void copy_ami_fields(struct buf *row, const struct ami_msg *m, struct buf *scratch, char sep);
/* Append one valid-UTF-8 copy of s, with invalid sequences replaced. */
void utf8_sanitize(struct buf *b, const char *s, size_t n);

#endif
