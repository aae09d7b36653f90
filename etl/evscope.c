/*
 * evscope.c - the tenants an event row is written with (evscope.h).
 *
 * The rule, as cdrflow_event_scope() states it (sql/0038): the legs of a
 * conversation that have a tenant decide.  One tenant: every event of the
 * conversation is that tenant's.  Several (a shared call): an event is seen
 * by the tenants whose legs own its uniqueid or channel name, and by the
 * tenant of a leg whose dstchannel is its channel unless that channel is
 * another tenant's leg; no one else.
 */
#include "evscope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copyfmt.h"
#include "xalloc.h"

#define NOVAL ((struct evscope_val){ 0, SIZE_MAX })

void evscope_init(struct evscope *s, const struct evscope_columns cols[EVSCOPE_STREAMS])
{
	memset(s, 0, sizeof *s);
	memcpy(s->cols, cols, sizeof s->cols);
	buf_init(&s->strs, 0);
	buf_init(&s->sets, 0);
}

void evscope_release(struct evscope *s)
{
	buf_release(&s->strs);
	buf_release(&s->sets);
	for (int i = 0; i < EVSCOPE_STREAMS; i++)
		free(s->ev[i]);
	free(s->legs);
	free(s->set_off);
	memset(s, 0, sizeof *s);
}

void evscope_reset(struct evscope *s)
{
	buf_reset(&s->strs);
	buf_reset(&s->sets);
	memset(s->nev, 0, sizeof s->nev);
	s->nlegs = s->nsets = 0;
}

/* s as its COPY text (the form the event rows hold) into strs. */
static struct evscope_val put_text(struct evscope *s, const char *v)
{
	if (!v)
		return NOVAL;
	size_t off = s->strs.len;
	copy_text(&s->strs, v, strlen(v), '\t');
	return (struct evscope_val){ off, s->strs.len - off - 1 };
}

void evscope_leg(struct evscope *s, const char *linkedid, const char *uniqueid, const char *channel,
		 const char *dstchannel, const char *tenant)
{
	if (!linkedid || !tenant)
		return;
	if (s->nlegs == s->legcap) {
		s->legcap = s->legcap ? 2 * s->legcap : 256;
		s->legs = xrealloc(s->legs, s->legcap * sizeof *s->legs);
	}
	struct evscope_leg *l = &s->legs[s->nlegs++];
	l->lid = put_text(s, linkedid);
	l->uid = put_text(s, uniqueid);
	l->chan = put_text(s, channel);
	l->dst = put_text(s, dstchannel);
	l->tenant = s->strs.len;
	buf_append(&s->strs, tenant, strlen(tenant) + 1);
	l->next = 0;
}

void evscope_event(struct evscope *s, uint32_t stream, uint64_t start, uint64_t seq)
{
	if (stream >= EVSCOPE_STREAMS)
		return;
	if (s->nev[stream] == s->evcap[stream]) {
		s->evcap[stream] = s->evcap[stream] ? 2 * s->evcap[stream] : 1024;
		s->ev[stream] = xrealloc(s->ev[stream], s->evcap[stream] * sizeof *s->ev[stream]);
	}
	s->ev[stream][s->nev[stream]++] = (struct evscope_ev){ start, seq };
}

/* A row read back: its linkedid, uniqueid, channel, and where its tenants
 * column ("\N") is. */
struct row_view {
	struct evscope_val lid, uid, chan;
	size_t at;
};

static struct evscope_val field_val(size_t off, size_t end, const char *d)
{
	if (end - off == 2 && d[off] == '\\' && d[off + 1] == 'N')
		return (struct evscope_val){ 0, SIZE_MAX };
	return (struct evscope_val){ off, end - off };
}

/* Read a row of rows from start; -1 if it is not as the writers make it. */
static int row_read(const struct buf *rows, const struct evscope_columns *c, size_t start, struct row_view *v)
{
	const char *d = rows->data;
	size_t end = rows->len, off = start;
	v->lid = v->uid = v->chan = (struct evscope_val){ 0, SIZE_MAX };
	unsigned last = c->lid > c->uid ? c->lid : c->uid;
	if (c->chan > last)
		last = c->chan;
	for (unsigned col = 0; col <= last; col++) {
		const char *tab = memchr(d + off, '\t', end - off);
		if (!tab)
			return -1;
		size_t fe = (size_t)(tab - d);
		struct evscope_val val = field_val(off, fe, d);
		if (col == c->lid)
			v->lid = val;
		if (col == c->uid)
			v->uid = val;
		if (col == c->chan)
			v->chan = val;
		off = fe + 1;
	}
	const char *nl = memchr(d + off, '\n', end - off);
	if (!nl || (size_t)(nl - d) < off + 2 || nl[-2] != '\\' || nl[-1] != 'N')
		return -1;
	v->at = (size_t)(nl - d) - 2;
	return 0;
}

static int val_eq(const char *a, struct evscope_val va, const char *b, struct evscope_val vb)
{
	return va.len != SIZE_MAX && vb.len != SIZE_MAX && va.len == vb.len && !memcmp(a + va.off, b + vb.off, va.len);
}

static uint32_t hash_val(const char *base, struct evscope_val v)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < v.len; i++)
		h = (h ^ (unsigned char)base[v.off + i]) * 16777619u;
	return h;
}

/* ------------------------------------------------------------ the window */

/* Conversations kept (32 MB at most); beyond, none is known whole and the
 * analytics step decides them all until the bound passes what was lost. */
#define WINDOW_MAX (1u << 20)

static uint64_t hash64(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h ? h : 1;
}

void evscope_window_init(struct evscope_window *w)
{
	memset(w, 0, sizeof *w);
	buf_init(&w->scratch, 0);
}

void evscope_window_release(struct evscope_window *w)
{
	free(w->slot);
	buf_release(&w->scratch);
	memset(w, 0, sizeof *w);
}

static struct evscope_slot *window_find(const struct evscope_window *w, uint64_t h)
{
	if (!w->cap)
		return NULL;
	for (size_t i = h & (w->cap - 1);; i = (i + 1) & (w->cap - 1))
		if (w->slot[i].hash == h || !w->slot[i].hash)
			return &w->slot[i];
}

/* Rebuild with room for need entries, keeping those from seq on. */
static void window_rebuild(struct evscope_window *w, size_t need, uint64_t from)
{
	size_t cap = 64;
	while (cap < 2 * need)
		cap *= 2;
	struct evscope_slot *old = w->slot;
	size_t oldcap = w->cap;
	w->slot = xcalloc(cap, sizeof *w->slot);
	w->cap = cap;
	w->n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].hash && old[i].seq >= from) {
			*window_find(w, old[i].hash) = old[i];
			w->n++;
		}
	free(old);
}

static void window_put(struct evscope_window *w, uint64_t h, uint64_t seq)
{
	if (2 * (w->n + 1) > w->cap) {
		if (w->n >= WINDOW_MAX) {
			if (seq > w->lost_seq)
				w->lost_seq = seq;
			return;
		}
		window_rebuild(w, w->n + 1, 0);
	}
	struct evscope_slot *e = window_find(w, h);
	if (!e->hash) {
		e->hash = h;
		w->n++;
	}
	if (seq > e->seq)
		e->seq = seq;
}

void evscope_window_note(struct evscope_window *w, const char *linkedid, size_t len, uint64_t seq)
{
	buf_reset(&w->scratch);
	copy_text(&w->scratch, linkedid, len, '\t'); /* hashed as the rows hold it */
	window_put(w, hash64(w->scratch.data, w->scratch.len - 1), seq);
}

void evscope_window_trim(struct evscope_window *w, uint64_t seq)
{
	if (w->lost_seq && w->lost_seq < seq)
		w->lost_seq = 0;
	size_t live = 0;
	for (size_t i = 0; i < w->cap; i++)
		live += w->slot[i].hash && w->slot[i].seq >= seq;
	if (live < w->n)
		window_rebuild(w, live, seq);
}

/* ------------------------------------------------------------ tenant sets */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A set of tenants (n >= 1, sorted here, repeats dropped) as a new set:
 * the COPY text of a text[] literal with every element quoted. */
static uint32_t add_set(struct evscope *s, const char **t, size_t n, struct buf *lit)
{
	qsort(t, n, sizeof *t, cmp_str);
	buf_reset(lit);
	buf_append(lit, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(t[i], t[i - 1]))
			continue;
		if (lit->len > 1)
			buf_append(lit, ",", 1);
		buf_append(lit, "\"", 1);
		for (const char *p = t[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_append(lit, "\\", 1);
			buf_append(lit, p, 1);
		}
		buf_append(lit, "\"", 1);
	}
	buf_append(lit, "}", 1);
	if (s->nsets + 1 >= s->setcap) {
		s->setcap = s->setcap ? 2 * s->setcap : 64;
		s->set_off = xrealloc(s->set_off, s->setcap * sizeof *s->set_off);
	}
	if (!s->nsets)
		s->set_off[0] = 0;
	copy_text(&s->sets, lit->data, lit->len, '\t');
	buf_setlen(&s->sets, s->sets.len - 1); /* no separator */
	s->set_off[++s->nsets] = s->sets.len;
	return (uint32_t)s->nsets;
}

/* The conversations of the batch's legs, by linkedid (open addressing,
 * 1-based first leg; legs of one linkedid chained by next). */
struct groups {
	uint32_t *slot, mask;
	uint32_t *set; /* per first leg: 0 not decided, UINT32_MAX shared, else the set */
};

static void groups_build(struct groups *g, struct evscope *s)
{
	uint32_t size = 16;
	while (size < 2 * s->nlegs)
		size *= 2;
	g->mask = size - 1;
	g->slot = xcalloc(size, sizeof *g->slot);
	g->set = xcalloc(s->nlegs + 1, sizeof *g->set);
	const char *base = s->strs.data;
	for (size_t i = 0; i < s->nlegs; i++) {
		struct evscope_leg *l = &s->legs[i];
		uint32_t h = hash_val(base, l->lid) & g->mask;
		for (;; h = (h + 1) & g->mask) {
			uint32_t f = g->slot[h];
			if (!f) {
				g->slot[h] = (uint32_t)i + 1;
				break;
			}
			if (val_eq(base, s->legs[f - 1].lid, base, l->lid)) {
				l->next = s->legs[f - 1].next; /* second and later legs after the first */
				s->legs[f - 1].next = (uint32_t)i + 1;
				break;
			}
		}
	}
}

static uint32_t groups_find(const struct groups *g, const struct evscope *s, const char *rows, struct evscope_val lid)
{
	const char *base = s->strs.data;
	for (uint32_t h = hash_val(rows, lid) & g->mask;; h = (h + 1) & g->mask) {
		uint32_t f = g->slot[h];
		if (!f || val_eq(base, s->legs[f - 1].lid, rows, lid))
			return f;
	}
}

/* The set of the conversation whose first leg is f when it has one tenant,
 * UINT32_MAX when it is shared. */
static uint32_t group_set(struct groups *g, struct evscope *s, uint32_t f, const char ***tv, size_t *tcap,
			  struct buf *lit)
{
	if (g->set[f])
		return g->set[f];
	const char *base = s->strs.data;
	size_t n = 0;
	for (uint32_t i = f; i; i = s->legs[i - 1].next) {
		if (n == *tcap) {
			*tcap = *tcap ? 2 * *tcap : 16;
			*tv = xrealloc(*tv, *tcap * sizeof **tv);
		}
		(*tv)[n++] = base + s->legs[i - 1].tenant;
	}
	int one = 1;
	for (size_t i = 1; i < n && one; i++)
		one = !strcmp((*tv)[i], (*tv)[0]);
	g->set[f] = one ? add_set(s, *tv, 1, lit) : UINT32_MAX;
	return g->set[f];
}

/* A shared conversation: the tenants whose legs own the event. */
static uint32_t shared_set(struct evscope *s, uint32_t f, const char *rows, const struct row_view *e,
			   const char ***tv, size_t *tcap, struct buf *lit)
{
	const char *base = s->strs.data;
	size_t n = 0;
	for (uint32_t i = f; i; i = s->legs[i - 1].next) {
		const struct evscope_leg *l = &s->legs[i - 1];
		const char *t = base + l->tenant;
		int owns = val_eq(base, l->uid, rows, e->uid) || val_eq(base, l->chan, rows, e->chan);
		if (!owns && l->dst.len && l->dst.len != SIZE_MAX && val_eq(base, l->dst, rows, e->chan)) {
			/* its dstchannel, unless that channel is another tenant's leg */
			owns = 1;
			for (uint32_t j = f; j && owns; j = s->legs[j - 1].next) {
				const struct evscope_leg *o = &s->legs[j - 1];
				if (val_eq(base, o->chan, base, l->dst) && strcmp(base + o->tenant, t))
					owns = 0;
			}
		}
		if (!owns)
			continue;
		if (n == *tcap) {
			*tcap = *tcap ? 2 * *tcap : 16;
			*tv = xrealloc(*tv, *tcap * sizeof **tv);
		}
		(*tv)[n++] = t;
	}
	return n ? add_set(s, *tv, n, lit) : 0;
}

/* A row that gets a set: where its "\N" is. */
struct fill {
	size_t at;
	uint32_t set;
};

/* Replace the "\N" of each row with its set (fills in buffer order),
 * moving the bytes after it once. */
static int expand(const struct evscope *s, struct buf *rows, const struct fill *fills, size_t n)
{
	size_t extra = 0;
	for (size_t i = 0; i < n; i++)
		extra += s->set_off[fills[i].set] - s->set_off[fills[i].set - 1] - 2;
	if (!n)
		return 0;
	if (buf_grow(rows, extra) < 0)
		return -1;
	size_t src_end = rows->len, dst_end = rows->len + extra;
	for (size_t i = n; i-- > 0;) {
		const struct fill *e = &fills[i];
		size_t tail = src_end - (e->at + 2);
		memmove(rows->data + dst_end - tail, rows->data + e->at + 2, tail);
		dst_end -= tail;
		size_t so = s->set_off[e->set - 1], sl = s->set_off[e->set] - so;
		memcpy(rows->data + dst_end - sl, s->sets.data + so, sl);
		dst_end -= sl;
		src_end = e->at;
	}
	buf_setlen(rows, rows->len + extra);
	return 0;
}

/* The batch's conversations, each linkedid once (open addressing on its
 * hash64): what the analytics step is told (evscope.h).  Keys point into
 * strs or the rows, which stay put until the rows are expanded. */
struct convs {
	struct conv {
		const char *p;
		size_t len;
		uint64_t h;
		uint32_t legs; /* tenant legs noted in the batch */
		int whole;     /* no row of it in the window before this batch */
	} *c;
	size_t mask, n;
};

static void convs_init(struct convs *t, size_t need)
{
	size_t size = 16;
	while (size < 2 * need)
		size *= 2;
	t->c = xcalloc(size, sizeof *t->c);
	t->mask = size - 1;
	t->n = 0;
}

/* The entry of p (len bytes, hash h), added when new: whole as the window
 * (before this batch's rows join it) tells. */
static struct conv *convs_add(struct convs *t, const char *p, size_t len, uint64_t h, const struct evscope_window *w)
{
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct conv *c = &t->c[i];
		if (!c->p) {
			const struct evscope_slot *e = w && !w->lost_seq ? window_find(w, h) : NULL;
			*c = (struct conv){ p, len, h, 0, w && !w->lost_seq && !(e && e->hash) };
			t->n++;
			return c;
		}
		if (c->h == h && c->len == len && !memcmp(c->p, p, len))
			return c;
	}
}

/* One COPY line per conversation: linkedid, whole, tenant legs. */
static void convs_write(const struct convs *t, struct buf *out)
{
	char num[32];
	for (size_t i = 0; i <= t->mask; i++) {
		const struct conv *c = &t->c[i];
		if (!c->p)
			continue;
		buf_append(out, c->p, c->len);
		int n = snprintf(num, sizeof num, "\t%c\t%u\n", c->whole ? 't' : 'f', (unsigned)c->legs);
		buf_append(out, num, (size_t)n);
	}
}

size_t evscope_apply(struct evscope *s, struct buf *rows[EVSCOPE_STREAMS], struct evscope_window *w,
		     struct buf *convs_out)
{
	size_t done = 0, nev = 0;
	struct groups g = { 0 };
	struct convs t = { 0 };
	for (uint32_t st = 0; st < EVSCOPE_STREAMS; st++)
		nev += s->nev[st];
	if (convs_out)
		convs_init(&t, s->nlegs + nev);
	const char *base = s->strs.data;
	if (s->nlegs) {
		groups_build(&g, s);
		/* against the rows of earlier batches only: before this one's join the window */
		for (size_t i = 0; convs_out && i <= g.mask; i++) {
			uint32_t f = g.slot[i];
			if (!f)
				continue;
			struct evscope_val lid = s->legs[f - 1].lid;
			struct conv *c = convs_add(&t, base + lid.off, lid.len, hash64(base + lid.off, lid.len), w);
			for (uint32_t j = f; j; j = s->legs[j - 1].next)
				c->legs++;
		}
	}
	/* every row read back once: its conversation noted, then the window told */
	struct row_view *views[EVSCOPE_STREAMS];
	for (uint32_t st = 0; st < EVSCOPE_STREAMS; st++) {
		views[st] = xmalloc((s->nev[st] + 1) * sizeof *views[st]);
		const char *data = rows[st]->data;
		for (size_t i = 0; i < s->nev[st]; i++) {
			struct row_view *v = &views[st][i];
			if (row_read(rows[st], &s->cols[st], s->ev[st][i].start, v) < 0) {
				v->lid.len = SIZE_MAX;
				continue;
			}
			if (v->lid.len == SIZE_MAX)
				continue; /* no conversation: nobody's */
			uint64_t h = hash64(data + v->lid.off, v->lid.len);
			if (convs_out)
				convs_add(&t, data + v->lid.off, v->lid.len, h, w);
			if (w)
				window_put(w, h, s->ev[st][i].seq);
		}
	}
	if (convs_out)
		convs_write(&t, convs_out);
	free(t.c);
	const char **tv = NULL;
	size_t tcap = 0;
	struct buf lit;
	buf_init(&lit, 0);
	for (uint32_t st = 0; st < EVSCOPE_STREAMS; st++) {
		size_t n = 0;
		struct fill *fills = s->nlegs ? xmalloc((s->nev[st] + 1) * sizeof *fills) : NULL;
		const char *data = rows[st]->data;
		for (size_t i = 0; i < s->nev[st] && s->nlegs; i++) {
			const struct row_view *v = &views[st][i];
			if (v->lid.len == SIZE_MAX)
				continue;
			uint32_t f = groups_find(&g, s, data, v->lid);
			if (!f)
				continue;
			uint32_t set = group_set(&g, s, f, &tv, &tcap, &lit);
			if (set == UINT32_MAX)
				set = shared_set(s, f, data, v, &tv, &tcap, &lit);
			if (set)
				fills[n++] = (struct fill){ v->at, set };
		}
		if (n && expand(s, rows[st], fills, n) == 0)
			done += n;
		free(fills);
		free(views[st]);
	}
	free(tv);
	buf_release(&lit);
	free(g.slot);
	free(g.set);
	evscope_reset(s);
	return done;
}
