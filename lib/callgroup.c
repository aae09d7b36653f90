/*
 * callgroup.c - legs into conversations (see callgroup.h).
 *
 * Groups are small: a list of member channels and linkedids, merged by
 * moving the smaller group into the larger.  Lookups go through two hash
 * tables (uniqueid -> group, linkedid -> group).
 */
#include "callgroup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

#define NB 4096u

struct group;

struct entry { /* one uniqueid or linkedid */
	struct entry *hnext;
	struct group *g;
	bool live;
	char id[CDR_ID];
};

struct group {
	struct group *prev, *next;
	struct entry **chans, **links;
	size_t nchans, nlinks, capc, capl;
	size_t live;
	uint64_t oldest_pos;
	/* accumulators */
	uint64_t start, end, first_answer, first_seq;
	long legs, billsec, transfers;
	int best;
	bool incomplete, have_first;
	char src[CDR_STR], dst[CDR_STR];
	/* facts: which leg (sequence) gave tenant, trunk and country */
	struct call_facts facts;
	uint64_t tenant_seq, trunk_seq, country_seq;
	unsigned dirs; /* DIR_* bits */
};

enum { DIR_INBOUND = 1, DIR_OUTBOUND = 2, DIR_INTERNAL = 4 };

struct callgroups {
	struct entry *byuid[NB], *bylink[NB];
	struct group open; /* list head */
	size_t nopen;
	call_emit_fn emit;
	void *arg;
};

static uint32_t h(const char *s)
{
	uint32_t v = 2166136261u;
	for (; *s; s++)
		v = (v ^ (unsigned char)*s) * 16777619u;
	return v & (NB - 1);
}

static struct entry *find(struct entry **tab, const char *id)
{
	for (struct entry *e = tab[h(id)]; e; e = e->hnext)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

static struct entry *add(struct entry **tab, const char *id, struct group *g)
{
	struct entry *e = xcalloc(1, sizeof *e);
	snprintf(e->id, sizeof e->id, "%s", id);
	e->g = g;
	uint32_t k = h(id);
	e->hnext = tab[k];
	tab[k] = e;
	return e;
}

static void del(struct entry **tab, struct entry *e)
{
	struct entry **pp = &tab[h(e->id)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	free(e);
}

static void push(struct entry ***arr, size_t *n, size_t *cap, struct entry *e)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 4;
		*arr = xrealloc(*arr, *cap * sizeof **arr);
	}
	(*arr)[(*n)++] = e;
}

/* "[system-]epoch.seq": compare (epoch, seq) as numbers, then as text. */
int asterisk_id_cmp(const char *a, const char *b)
{
	const char *da = strrchr(a, '-'), *db = strrchr(b, '-');
	da = da ? da + 1 : a;
	db = db ? db + 1 : b;
	unsigned long long ea = 0, sa = 0, eb = 0, sb = 0;
	if (sscanf(da, "%llu.%llu", &ea, &sa) == 2 && sscanf(db, "%llu.%llu", &eb, &sb) == 2) {
		if (ea != eb)
			return ea < eb ? -1 : 1;
		if (sa != sb)
			return sa < sb ? -1 : 1;
	}
	return strcmp(a, b);
}

struct callgroups *callgroups_new(call_emit_fn emit, void *arg)
{
	struct callgroups *g = xcalloc(1, sizeof *g);
	g->open.next = g->open.prev = &g->open;
	g->emit = emit;
	g->arg = arg;
	return g;
}

static void group_free(struct callgroups *cg, struct group *g)
{
	for (size_t i = 0; i < g->nchans; i++)
		del(cg->byuid, g->chans[i]);
	for (size_t i = 0; i < g->nlinks; i++)
		del(cg->bylink, g->links[i]);
	free(g->chans);
	free(g->links);
	g->prev->next = g->next;
	g->next->prev = g->prev;
	cg->nopen--;
	free(g);
}

void callgroups_free(struct callgroups *cg)
{
	if (!cg)
		return;
	while (cg->open.next != &cg->open)
		group_free(cg, cg->open.next);
	free(cg);
}

static struct group *group_new(struct callgroups *cg)
{
	struct group *g = xcalloc(1, sizeof *g);
	g->oldest_pos = UINT64_MAX;
	g->tenant_seq = g->trunk_seq = g->country_seq = UINT64_MAX;
	g->best = -1;
	g->next = cg->open.next;
	g->prev = &cg->open;
	cg->open.next->prev = g;
	cg->open.next = g;
	cg->nopen++;
	return g;
}

/* Move b into a. */
/* A fact of the leg with sequence seq replaces the kept one when the leg
 * comes earlier (or none is kept: *at is UINT64_MAX). */
static void keep_earliest(char *dst, size_t size, uint64_t *at, const char *v, uint64_t seq)
{
	if (!v || !*v || seq >= *at)
		return;
	snprintf(dst, size, "%s", v);
	*at = seq;
}

static void facts_leg(struct group *g, const struct leg_facts *f, uint64_t seq)
{
	struct call_facts *c = &g->facts;
	keep_earliest(c->tenant, sizeof c->tenant, &g->tenant_seq, f->tenant, seq);
	c->has_tenant = g->tenant_seq != UINT64_MAX;
	keep_earliest(c->trunk, sizeof c->trunk, &g->trunk_seq, f->trunk, seq);
	keep_earliest(c->country, sizeof c->country, &g->country_seq, f->country, seq);
	if (f->direction)
		g->dirs |= !strcmp(f->direction, "inbound")	 ? DIR_INBOUND
			   : !strcmp(f->direction, "outbound") ? DIR_OUTBOUND
			   : !strcmp(f->direction, "internal") ? DIR_INTERNAL
							       : 0;
	if (f->has_buy) {
		c->buy += f->buy;
		c->has_buy = true;
	}
	if (f->has_sell) {
		c->sell += f->sell;
		c->has_sell = true;
	}
}

static void facts_merge(struct group *a, const struct group *b)
{
	struct call_facts *c = &a->facts;
	const struct call_facts *o = &b->facts;
	keep_earliest(c->tenant, sizeof c->tenant, &a->tenant_seq, o->tenant, b->tenant_seq);
	c->has_tenant = a->tenant_seq != UINT64_MAX;
	keep_earliest(c->trunk, sizeof c->trunk, &a->trunk_seq, o->trunk, b->trunk_seq);
	keep_earliest(c->country, sizeof c->country, &a->country_seq, o->country, b->country_seq);
	a->dirs |= b->dirs;
	c->buy += o->buy;
	c->has_buy |= o->has_buy;
	c->sell += o->sell;
	c->has_sell |= o->has_sell;
}

static const char *direction_of(unsigned dirs)
{
	return dirs & DIR_INBOUND ? "inbound" : dirs & DIR_OUTBOUND ? "outbound" : dirs & DIR_INTERNAL ? "internal" : "unknown";
}

void call_facts_of_leg(struct call_facts *out, const struct leg_facts *f)
{
	struct group g;
	memset(&g, 0, sizeof g);
	g.tenant_seq = g.trunk_seq = g.country_seq = UINT64_MAX;
	facts_leg(&g, f, 0);
	*out = g.facts;
	out->direction = direction_of(g.dirs);
}

static struct group *merge(struct callgroups *cg, struct group *a, struct group *b)
{
	if (a == b)
		return a;
	if (a->nchans + a->nlinks < b->nchans + b->nlinks) {
		struct group *t = a;
		a = b;
		b = t;
	}
	for (size_t i = 0; i < b->nchans; i++) {
		b->chans[i]->g = a;
		push(&a->chans, &a->nchans, &a->capc, b->chans[i]);
	}
	for (size_t i = 0; i < b->nlinks; i++) {
		b->links[i]->g = a;
		push(&a->links, &a->nlinks, &a->capl, b->links[i]);
	}
	b->nchans = b->nlinks = 0;
	a->live += b->live;
	if (b->oldest_pos < a->oldest_pos)
		a->oldest_pos = b->oldest_pos;
	if (b->legs) {
		if (!a->legs || b->start < a->start)
			a->start = b->start;
		if (b->end > a->end)
			a->end = b->end;
		if (b->first_answer && (!a->first_answer || b->first_answer < a->first_answer))
			a->first_answer = b->first_answer;
		if (b->have_first && (!a->have_first || b->first_seq < a->first_seq)) {
			a->first_seq = b->first_seq;
			a->have_first = true;
			memcpy(a->src, b->src, sizeof a->src);
			memcpy(a->dst, b->dst, sizeof a->dst);
		}
		a->legs += b->legs;
		a->billsec += b->billsec;
	}
	facts_merge(a, b);
	a->transfers += b->transfers;
	if (b->best > a->best)
		a->best = b->best;
	a->incomplete |= b->incomplete;
	group_free(cg, b);
	return a;
}

void callgroups_channel(struct callgroups *cg, const char *uniqueid, const char *linkedid, uint64_t pos,
			bool incomplete)
{
	struct entry *u = find(cg->byuid, uniqueid);
	struct entry *l = linkedid[0] ? find(cg->bylink, linkedid) : NULL;
	struct group *g;
	if (u && l)
		g = merge(cg, u->g, l->g);
	else if (u)
		g = u->g;
	else if (l)
		g = l->g;
	else
		g = group_new(cg);
	if (!u) {
		u = add(cg->byuid, uniqueid, g);
		u->live = true;
		g->live++;
		push(&g->chans, &g->nchans, &g->capc, u);
	}
	if (!l && linkedid[0]) {
		l = add(cg->bylink, linkedid, g);
		push(&g->links, &g->nlinks, &g->capl, l);
	}
	if (pos < g->oldest_pos)
		g->oldest_pos = pos;
	g->incomplete |= incomplete;
}

/* Outcome rank: the best leg decides. */
static int rank(int disposition)
{
	switch (disposition) {
	case CDR_ANSWERED: return 4;
	case CDR_BUSY: return 3;
	case CDR_CONGESTION: return 2;
	case CDR_FAILED: return 1;
	default: return 0; /* NO ANSWER */
	}
}

static const char *outcome_name(int r)
{
	static const char *const n[] = { "no_answer", "failed", "congestion", "busy", "answered" };
	r %= 10;
	return r >= 0 && r <= 4 ? n[r] : "no_answer";
}

static void close_group(struct callgroups *cg, struct group *g)
{
	if (g->legs) {
		/* the oldest linkedid names the call (a stream without linkedids: a channel) */
		const char *id = g->nlinks ? g->links[0]->id : g->nchans ? g->chans[0]->id : "";
		for (size_t i = 1; i < g->nlinks; i++)
			if (asterisk_id_cmp(g->links[i]->id, id) < 0)
				id = g->links[i]->id;
		struct buf arr;
		buf_init(&arr, 0);
		buf_puts(&arr, "{");
		for (size_t i = 0; i < g->nlinks; i++) {
			if (i)
				buf_puts(&arr, ",");
			buf_puts(&arr, "\"");
			for (const char *p = g->links[i]->id; *p; p++) {
				if (*p == '"' || *p == '\\')
					buf_append(&arr, "\\", 1);
				buf_append(&arr, p, 1);
			}
			buf_puts(&arr, "\"");
		}
		buf_puts(&arr, "}");
		struct call_row r = {
			.call_id = id,
			.linkedids = arr.data,
			.src = g->src,
			.dst = g->dst,
			.start_us = g->start,
			.end_us = g->end,
			.first_answer_us = g->first_answer,
			.legs = g->legs,
			.total_billsec = g->billsec,
			.duration = g->end > g->start ? (long)((g->end - g->start) / 1000000u) : 0,
			.transfers = g->transfers,
			.outcome = outcome_name(g->best),
			.incomplete = g->incomplete,
			.facts = g->facts,
		};
		r.facts.direction = direction_of(g->dirs);
		cg->emit(cg->arg, &r);
		buf_release(&arr);
	}
	group_free(cg, g);
}

void callgroups_channel_gone(struct callgroups *cg, const char *uniqueid)
{
	struct entry *u = find(cg->byuid, uniqueid);
	if (!u || !u->live)
		return;
	u->live = false;
	struct group *g = u->g;
	if (--g->live == 0)
		close_group(cg, g);
}

void callgroups_leg(struct callgroups *cg, const struct cdr_row *r, const struct leg_facts *f)
{
	struct entry *u = find(cg->byuid, r->uniqueid);
	struct entry *l = find(cg->bylink, r->linkedid);
	struct group *g = u ? u->g : l ? l->g : NULL;
	if (!g)
		return;
	if (u && l)
		g = merge(cg, u->g, l->g);
	if (!g->legs || r->start_us < g->start)
		g->start = r->start_us;
	if (r->end_us > g->end)
		g->end = r->end_us;
	if (r->answer_us && (!g->first_answer || r->answer_us < g->first_answer))
		g->first_answer = r->answer_us;
	if (!g->have_first || r->sequence < g->first_seq) {
		g->have_first = true;
		g->first_seq = r->sequence;
		snprintf(g->src, sizeof g->src, "%s", r->src);
		snprintf(g->dst, sizeof g->dst, "%s", r->dst);
	}
	g->legs++;
	if (r->dstchannel[0])
		g->billsec += r->billsec;
	/* a leg to a party B decides the outcome; lone legs only if there is none */
	int rk = rank(r->disposition) + (r->dstchannel[0] ? 10 : 0);
	if (rk > g->best)
		g->best = rk;
	g->incomplete |= r->incomplete;
	if (f)
		facts_leg(g, f, r->sequence);
}

void callgroups_transfer(struct callgroups *cg, const char *uniqueid)
{
	struct entry *u = find(cg->byuid, uniqueid);
	if (u)
		u->g->transfers++;
}

uint64_t callgroups_oldest_pos(const struct callgroups *cg)
{
	uint64_t o = UINT64_MAX;
	for (const struct group *g = cg->open.next; g != &cg->open; g = g->next)
		if (g->oldest_pos < o)
			o = g->oldest_pos;
	return o;
}

size_t callgroups_open(const struct callgroups *cg)
{
	return cg->nopen;
}
