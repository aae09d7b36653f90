/*
 * buf.h - a growable byte buffer with a hard size cap.
 *
 * Invariants (as git's strbuf): after buf_init(), b->data is never NULL and
 * b->data[b->len] == '\0'.  b->max caps b->len: appends that would exceed it
 * fail with -1 and leave the buffer unchanged, so a hostile peer cannot grow
 * memory without bound.  max == 0 means "no cap".
 *
 * Ownership: the buffer owns data.  buf_release() frees it; buf_detach()
 * hands it to the caller (free() it) and re-initialises the buffer.
 */
#ifndef CDRFLOW_BUF_H
#define CDRFLOW_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
	char *data;
	size_t len;
	size_t cap; /* allocated bytes, excluding the NUL slot */
	size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
char *buf_detach(struct buf *b, size_t *len);
/* Make room for n more bytes; -1 if that would pass max. */
int buf_grow(struct buf *b, size_t n);
int buf_append_slow(struct buf *b, const void *p, size_t n);
/* Append n bytes; -1 (buffer unchanged) if that would pass max.  Inline:
 * the row writers append a few bytes at a time, and room is there. */
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
	if (n < b->cap - b->len) { /* room for n bytes and the NUL slot stays */
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	return buf_append_slow(b, p, n);
}
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes, moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Mark n bytes written directly into data + len (after buf_grow). */
void buf_setlen(struct buf *b, size_t len);

#endif
