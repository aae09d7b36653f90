/*
 * legwait.c - leg rows waiting for their call (legwait.h).
 */
#include "legwait.h"

#include <stdlib.h>
#include <string.h>

#include "copyfmt.h"
#include "xalloc.h"

static uint32_t hash_id(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

void legwait_init(struct legwait *w)
{
	memset(w, 0, sizeof *w);
	buf_init(&w->rows, 0);
}

void legwait_reset(struct legwait *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].linkedid);
	w->n = 0;
	buf_reset(&w->rows);
	memset(w->head, 0, sizeof w->head);
	memset(w->tail, 0, sizeof w->tail);
}

void legwait_release(struct legwait *w)
{
	legwait_reset(w);
	free(w->v);
	buf_release(&w->rows);
	memset(w, 0, sizeof *w);
}

void legwait_hold(struct legwait *w, const char *linkedid, const char *row, size_t len)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->v = xrealloc(w->v, w->cap * sizeof *w->v);
	}
	struct legwait_row *r = &w->v[w->n];
	r->off = w->rows.len;
	r->len = len;
	buf_append(&w->rows, row, len);
	r->hash = hash_id(linkedid, strlen(linkedid));
	r->done = 0;
	r->linkedid = xstrdup(linkedid);
	uint32_t b = r->hash % LEGWAIT_BUCKETS;
	r->next = 0;
	uint32_t idx = (uint32_t)++w->n;
	if (w->tail[b])
		w->v[w->tail[b] - 1].next = idx;
	else
		w->head[b] = idx;
	w->tail[b] = idx;
}

static void emit(struct legwait *w, struct legwait_row *r, const char *call_id, struct buf *out)
{
	buf_append(out, w->rows.data + r->off, r->len);
	if (call_id)
		copy_text(out, call_id, strlen(call_id), '\n');
	else
		copy_null(out, '\n');
	r->done = 1;
}

/* The rows held for one linkedid (unescaped, n bytes) get call_id. */
static size_t release_linkedid(struct legwait *w, const char *id, size_t n, const char *call_id, struct buf *out)
{
	uint32_t h = hash_id(id, n);
	size_t emitted = 0;
	for (uint32_t i = w->head[h % LEGWAIT_BUCKETS]; i; i = w->v[i - 1].next) {
		struct legwait_row *r = &w->v[i - 1];
		if (!r->done && r->hash == h && strlen(r->linkedid) == n && !memcmp(r->linkedid, id, n)) {
			emit(w, r, call_id, out);
			emitted++;
		}
	}
	return emitted;
}

size_t legwait_call(struct legwait *w, const char *linkedids, const char *call_id, struct buf *out)
{
	if (!w->n)
		return 0;
	/* {"a","b"}: quoted elements, \ escapes (callgroup.c writes them so) */
	size_t emitted = 0;
	char id[512];
	for (const char *p = linkedids; *p; p++) {
		if (*p != '"')
			continue;
		size_t n = 0;
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n < sizeof id)
				id[n++] = *p;
		}
		if (n < sizeof id)
			emitted += release_linkedid(w, id, n, call_id, out);
		if (!*p)
			break;
	}
	return emitted;
}

size_t legwait_flush(struct legwait *w, struct buf *out)
{
	size_t emitted = 0;
	for (size_t i = 0; i < w->n; i++)
		if (!w->v[i].done) {
			emit(w, &w->v[i], NULL, out);
			emitted++;
		}
	return emitted;
}
