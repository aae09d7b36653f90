/*
 * cdrengine.c - Asterisk 20's CDR state machine (main/cdr.c), re-run.
 *
 * Structure and names follow cdr.c so the two can be read side by side:
 * a chain of CDR objects per channel (the first is the "root"), each in one
 * of six states; handlers per message kind that walk the chain and ask each
 * object's state to deal with it; Party A selection between two channels;
 * pairings made when a channel joins a bridge.  Where cdr.c has quirks that
 * show in its output (the finalize of the chain root on a failed bridge
 * match, a stale "last" pointer when appending from the middle of a chain,
 * party B updates that do not move lastevent) they are reproduced on
 * purpose: the oracle is what Asterisk writes, not what it meant to write.
 *
 * Times: every handler stamps the CDRs it touches with the message time
 * (cdr.c's "lastevent"); start, answer and end are copies of it.
 */
#include "cdrengine.h"
#include "ascii8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

enum cstate { ST_SINGLE, ST_DIAL, ST_DIALED_PENDING, ST_BRIDGED, ST_PARKED, ST_FINALIZED };

/* cdr_object flags: Asterisk's AST_CDR_FLAG_* / AST_CDR_LOCK_APP values */
enum { CF_LOCK_APP = 1u << 7 };

enum bridge_enter_result { BE_ONLY_PARTY, BE_OBTAINED_PARTY_B, BE_NO_PARTY_B, BE_NEED_CDR };

struct chan;

struct party {
	struct cdr_snapshot snap;
	bool set;
	unsigned flags; /* CDR_PROP_PARTY_A (CDR_PROP(party_a)) for pick_party_a */
	char userfield[CDR_USERFIELD];
};

struct cdr {
	struct party a, b;
	enum cstate st;
	int disposition;
	uint64_t start, answer, end, lastevent, sequence;
	unsigned flags;
	char linkedid[CDR_ID], appl[CDR_STR], data[CDR_STR], context[CDR_STR], exten[CDR_STR], bridge[CDR_ID];
	struct cdr *next, *last;
	bool is_root;
	struct chan *owner;
	/* index of CDRs by Party B channel name (cdr.c's active_cdrs_all) */
	struct bkey *bkey;
	struct cdr *bprev, *bnext;
};

/* One Party B name and the CDRs that have it. */
struct bkey {
	struct bkey *hnext;
	char name[CDR_STR];
	struct cdr *head;
};

struct chan {
	struct chan *hnext;          /* uniqueid hash chain */
	struct chan *prev, *next;    /* all live channels */
	struct cdr_snapshot snap;    /* the latest snapshot */
	struct cdr *cdr;             /* chain root; NULL for internal channels */
	uint64_t first_stamp, last_t;
	bool incomplete;
	bool bridged;                /* in a bridge other than a parking or holding one */
};

struct bridge {
	struct bridge *hnext;
	char id[CDR_ID];
	char **members; /* uniqueids, strdup'd */
	size_t nmem, cap;
};

#define HASH_BITS 12
#define HASH_SIZE (1u << HASH_BITS)

struct cdr_engine {
	struct cdr_options opt;
	cdr_emit_fn emit;
	void *emit_arg;
	uint64_t stamp, stamp_k;
	struct chan *chans[HASH_SIZE];
	struct bkey *bkeys[HASH_SIZE];
	struct bridge *bridges[HASH_SIZE];
	struct chan live;            /* list head */
	size_t nlive;
	struct cdr *free_cdrs;
	struct chan *free_chans;
	bool incomplete_dispatch;    /* rows emitted now are flagged incomplete */
	cdr_gone_fn gone;
	void *gone_arg;
	cdr_seen_fn seen;
	void *seen_arg;
};

/* ------------------------------------------------------------ small helpers */

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}
#define SET(dst, src) copy_str((dst), sizeof(dst), (src))

/* A bucket for a key, equal for keys equal ignoring ASCII case; 8 bytes a
 * step (nothing depends on the bucket order but lookups). */
static uint32_t hash_nocase(const char *s)
{
	size_t n = strlen(s), i = 0;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ ascii8_fold(w)) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (i < n) { /* the last 8 bytes (overlapping), or the short key byte by byte */
		uint64_t w = 0;
		if (n >= 8)
			memcpy(&w, s + n - 8, 8);
		else
			for (unsigned k = 0; i < n; i++, k += 8)
				w |= (uint64_t)(unsigned char)s[i] << k;
		h = (h ^ ascii8_fold(w)) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return (uint32_t)(h ^ h >> 29) & (HASH_SIZE - 1);
}

int cdr_amaflags_number(const char *v, size_t n)
{
	static const char *const names[] = { "OMIT", "BILLING", "DOCUMENTATION" };
	for (int i = 0; i < 3; i++)
		if (n == strlen(names[i]) && !strncasecmp(v, names[i], n))
			return i + 1;
	return 0;
}

const char *cdr_disposition_name(int d)
{
	switch (d) {
	case CDR_NULL:
	case CDR_NOANSWER:
		return "NO ANSWER";
	case CDR_FAILED:
		return "FAILED";
	case CDR_BUSY:
		return "BUSY";
	case CDR_ANSWERED:
		return "ANSWERED";
	case CDR_CONGESTION:
		return "CONGESTION";
	case CDR_CANCEL:
		return "CANCEL";
	}
	return "UNKNOWN";
}

/* ------------------------------------------------------------ indexes */

static struct chan *chan_find(const struct cdr_engine *e, const char *uniqueid)
{
	for (struct chan *c = e->chans[hash_nocase(uniqueid)]; c; c = c->hnext)
		if (!strcmp(c->snap.uniqueid, uniqueid))
			return c;
	return NULL;
}

/* Replace a channel's cached snapshot, telling the observer about a new linkedid. */
static void chan_set_snap(struct cdr_engine *e, struct chan *c, const struct cdr_snapshot *s)
{
	bool moved = strcmp(c->snap.linkedid, s->linkedid) != 0;
	c->snap = *s;
	if (moved && e->seen)
		e->seen(e->seen_arg, s->uniqueid, s->linkedid, c->incomplete);
}

static struct bkey *bkey_find(struct cdr_engine *e, const char *name, bool create)
{
	uint32_t h = hash_nocase(name);
	for (struct bkey *k = e->bkeys[h]; k; k = k->hnext)
		if (!strcasecmp(k->name, name))
			return k;
	if (!create)
		return NULL;
	struct bkey *k = xcalloc(1, sizeof *k);
	SET(k->name, name);
	k->hnext = e->bkeys[h];
	e->bkeys[h] = k;
	return k;
}

static void bkey_drop_if_empty(struct cdr_engine *e, struct bkey *k)
{
	if (k->head)
		return;
	struct bkey **pp = &e->bkeys[hash_nocase(k->name)];
	while (*pp != k)
		pp = &(*pp)->hnext;
	*pp = k->hnext;
	free(k);
}

static void bindex_unlink(struct cdr_engine *e, struct cdr *cdr)
{
	struct bkey *k = cdr->bkey;
	if (!k)
		return;
	if (cdr->bprev)
		cdr->bprev->bnext = cdr->bnext;
	else
		k->head = cdr->bnext;
	if (cdr->bnext)
		cdr->bnext->bprev = cdr->bprev;
	cdr->bkey = NULL;
	cdr->bprev = cdr->bnext = NULL;
	bkey_drop_if_empty(e, k);
}

/* cdr_all_relink: index the CDR under its Party B's current name. */
static void cdr_all_relink(struct cdr_engine *e, struct cdr *cdr)
{
	if (cdr->b.set && cdr->bkey && !strcasecmp(cdr->bkey->name, cdr->b.snap.name))
		return;
	bindex_unlink(e, cdr);
	if (!cdr->b.set)
		return;
	struct bkey *k = bkey_find(e, cdr->b.snap.name, true);
	cdr->bkey = k;
	cdr->bnext = k->head;
	if (k->head)
		k->head->bprev = cdr;
	k->head = cdr;
}

static struct bridge *bridge_find(struct cdr_engine *e, const char *id, bool create)
{
	uint32_t h = hash_nocase(id);
	for (struct bridge *b = e->bridges[h]; b; b = b->hnext)
		if (!strcmp(b->id, id))
			return b;
	if (!create)
		return NULL;
	struct bridge *b = xcalloc(1, sizeof *b);
	SET(b->id, id);
	b->hnext = e->bridges[h];
	e->bridges[h] = b;
	return b;
}

static void bridge_free(struct cdr_engine *e, struct bridge *b)
{
	struct bridge **pp = &e->bridges[hash_nocase(b->id)];
	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
	for (size_t i = 0; i < b->nmem; i++)
		free(b->members[i]);
	free(b->members);
	free(b);
}

static void bridge_add(struct bridge *b, const char *uniqueid)
{
	for (size_t i = 0; i < b->nmem; i++)
		if (!strcmp(b->members[i], uniqueid))
			return;
	if (b->nmem == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 4;
		b->members = xrealloc(b->members, b->cap * sizeof *b->members);
	}
	b->members[b->nmem++] = xstrdup(uniqueid);
}

static void bridge_remove(struct bridge *b, const char *uniqueid)
{
	for (size_t i = 0; i < b->nmem; i++)
		if (!strcmp(b->members[i], uniqueid)) {
			free(b->members[i]);
			b->members[i] = b->members[--b->nmem];
			return;
		}
}

/* Asterisk iterates a bridge snapshot's channels in the order of its
 * ast_str_container: 13 hash buckets (ast_str_hash), sorted within one. */
static int ast_str_bucket(const char *s)
{
	uint32_t h = 5381;
	for (; *s; s++)
		h = (h * 33u) ^ (unsigned char)*s;
	int32_t v = (int32_t)h;
	if (v < 0 && v != INT32_MIN)
		v = -v;
	return (int)(v % 13);
}

static int member_cmp(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	int ba = ast_str_bucket(a), bb = ast_str_bucket(b);
	if (ba != bb)
		return ba < bb ? -1 : 1;
	return strcmp(a, b);
}

static void bridge_order(struct bridge *b)
{
	if (b->nmem > 1)
		qsort(b->members, b->nmem, sizeof *b->members, member_cmp);
}

/* ------------------------------------------------------------ objects */

static bool snapshot_is_dialed(const struct cdr_snapshot *s)
{
	return (s->flags & SNAP_OUTGOING) && !(s->flags & SNAP_ORIGINATED);
}

static void transition(struct cdr_engine *e, struct cdr *cdr, enum cstate st, bool init);

static struct cdr *cdr_alloc(struct cdr_engine *e, struct chan *owner, const struct cdr_snapshot *snap, uint64_t t)
{
	struct cdr *cdr = e->free_cdrs;
	if (cdr)
		e->free_cdrs = cdr->next;
	else
		cdr = xmalloc(sizeof *cdr);
	memset(cdr, 0, sizeof *cdr);
	cdr->last = cdr;
	cdr->owner = owner;
	SET(cdr->linkedid, snap->linkedid);
	cdr->disposition = CDR_NULL;
	cdr->sequence = e->stamp * 64 + (e->stamp_k < 63 ? e->stamp_k++ : 63);
	cdr->lastevent = t;
	cdr->a.snap = *snap;
	cdr->a.set = true;
	transition(e, cdr, ST_SINGLE, true);
	return cdr;
}

static void cdr_release(struct cdr_engine *e, struct cdr *cdr)
{
	bindex_unlink(e, cdr);
	cdr->next = e->free_cdrs;
	e->free_cdrs = cdr;
}

static void party_copy(struct party *dst, const struct party *src)
{
	dst->snap = src->snap;
	dst->set = src->set;
	memcpy(dst->userfield, src->userfield, sizeof dst->userfield);
	dst->flags = src->flags;
}

/* cdr_object_create_and_append: note that "last" is only kept up to date
 * from the object appended through onwards, as in cdr.c. */
static struct cdr *create_and_append(struct cdr_engine *e, struct cdr *cdr, uint64_t t)
{
	struct cdr *last = cdr->last;
	struct cdr *n = cdr_alloc(e, cdr->owner, &last->a.snap, t);
	n->disposition = CDR_NULL;
	SET(n->linkedid, last->linkedid);
	SET(n->appl, last->appl);
	SET(n->data, last->data);
	SET(n->context, last->context);
	SET(n->exten, last->exten);
	/* a CDR that disables all future ones keeps the chain disabled */
	if (last->flags & CDR_PROP_DISABLE_ALL)
		n->flags |= CDR_PROP_DISABLE_ALL;
	party_copy(&n->a, &last->a);
	struct cdr *it = cdr;
	for (; it->next; it = it->next)
		it->last = n;
	it->last = n;
	it->next = n;
	return n;
}

static void set_disposition_from_cause(struct cdr_engine *e, struct cdr *cdr, int cause)
{
	switch (cause) {
	case 17: /* AST_CAUSE_BUSY */
		cdr->disposition = CDR_BUSY;
		break;
	case 34: /* AST_CAUSE_CONGESTION */
		cdr->disposition = e->opt.congestion ? CDR_CONGESTION : CDR_FAILED;
		break;
	case 3:  /* AST_CAUSE_NO_ROUTE_DESTINATION */
	case 20: /* AST_CAUSE_UNREGISTERED */
		cdr->disposition = CDR_FAILED;
		break;
	case 16: /* AST_CAUSE_NORMAL_CLEARING */
	case 19: /* AST_CAUSE_NO_ANSWER */
		cdr->disposition = CDR_NOANSWER;
		break;
	default:
		break;
	}
}

static void finalize(struct cdr_engine *e, struct cdr *cdr)
{
	if (cdr->end)
		return;
	cdr->end = cdr->lastevent;
	if (cdr->disposition == CDR_NULL) {
		if (cdr->answer)
			cdr->disposition = CDR_ANSWERED;
		else if (cdr->a.snap.cause)
			set_disposition_from_cause(e, cdr, cdr->a.snap.cause);
		else if (cdr->b.set && cdr->b.snap.cause)
			set_disposition_from_cause(e, cdr, cdr->b.snap.cause);
		else
			cdr->disposition = CDR_FAILED;
	}
}

static void check_party_a_answer(struct cdr *cdr)
{
	if (cdr->a.snap.state == 6 && !cdr->answer)
		cdr->answer = cdr->lastevent;
}

static void check_party_a_hangup(struct cdr_engine *e, struct cdr *cdr)
{
	if ((cdr->a.snap.flags & SNAP_HANGUP_EXEC) && e->opt.endbeforehexten)
		finalize(e, cdr);
	if ((cdr->a.snap.flags & SNAP_DEAD) && cdr->st != ST_FINALIZED)
		transition(e, cdr, ST_FINALIZED, true);
}

static void transition(struct cdr_engine *e, struct cdr *cdr, enum cstate st, bool init)
{
	cdr->st = st;
	if (!init)
		return;
	if (st == ST_SINGLE) {
		cdr->start = cdr->lastevent;
		check_party_a_answer(cdr);
	} else if (st == ST_FINALIZED) {
		finalize(e, cdr);
	}
}

/* A channel's place in the dialplan changed (with endbeforehexten). */
static bool snapshot_cep_changed(struct cdr_engine *e, const struct cdr_snapshot *o, const struct cdr_snapshot *n)
{
	if ((n->flags & SNAP_HANGUP_EXEC) && e->opt.endbeforehexten)
		return false;
	return strcmp(n->appl, o->appl) && strncasecmp(n->appl, "appdial", 7) &&
	       (strcmp(n->context, o->context) || strcmp(n->exten, o->exten) || n->priority != o->priority);
}

/* cdr_object_pick_party_a: true if left wins. */
static bool pick_left(const struct party *l, const struct party *r)
{
	bool ld = snapshot_is_dialed(&l->snap), rd = snapshot_is_dialed(&r->snap);
	if (!ld && rd)
		return true;
	if (ld && !rd)
		return false;
	if ((l->flags & CDR_PROP_PARTY_A) && !(r->flags & CDR_PROP_PARTY_A))
		return true;
	if (!(l->flags & CDR_PROP_PARTY_A) && (r->flags & CDR_PROP_PARTY_A))
		return false;
	if (l->snap.created_us / 1000000 != r->snap.created_us / 1000000)
		return l->snap.created_us / 1000000 < r->snap.created_us / 1000000;
	return !(l->snap.created_us % 1000000 > r->snap.created_us % 1000000);
}

/* ------------------------------------------------------------ state methods */

static int base_process_party_a(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *s)
{
	if ((s->flags & SNAP_HANGUP_EXEC) && e->opt.endbeforehexten) {
		finalize(e, cdr);
		return 0;
	}
	/* context/exten only outside subroutines, or in hang-up logic */
	if (!(s->flags & SNAP_SUBROUTINE) || (s->flags & SNAP_HANGUP_EXEC)) {
		SET(cdr->context, s->context);
		SET(cdr->exten, s->exten);
	}
	cdr->a.snap = *s;
	if (!(cdr->flags & CF_LOCK_APP) && s->appl[0] && (strncasecmp(s->appl, "appdial", 7) || !cdr->appl[0])) {
		SET(cdr->appl, s->appl);
		SET(cdr->data, s->data);
		if (!strcmp(s->appl, "Dial"))
			cdr->flags |= CF_LOCK_APP;
	}
	SET(cdr->linkedid, s->linkedid);
	check_party_a_answer(cdr);
	check_party_a_hangup(e, cdr);
	return 0;
}

static int process_party_a(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *s);

static int dialed_pending_process_party_a(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *s)
{
	if (snapshot_cep_changed(e, &cdr->a.snap, s)) {
		if (cdr->b.set) {
			transition(e, cdr, ST_FINALIZED, true);
			process_party_a(e, cdr, s);
			return 1;
		}
		/* no re-init: keep the start time (cdr.c's transition_state_init(..., 0)) */
		transition(e, cdr, ST_SINGLE, false);
		process_party_a(e, cdr, s);
		return 0;
	}
	base_process_party_a(e, cdr, s);
	return 0;
}

static int process_party_a(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *s)
{
	switch (cdr->st) {
	case ST_DIALED_PENDING:
		return dialed_pending_process_party_a(e, cdr, s);
	case ST_FINALIZED:
		if ((s->flags & SNAP_HANGUP_EXEC) && e->opt.endbeforehexten)
			return 0;
		return 1;
	default:
		return base_process_party_a(e, cdr, s);
	}
}

static bool has_process_party_b(const struct cdr *cdr)
{
	return cdr->st == ST_SINGLE || cdr->st == ST_DIAL || cdr->st == ST_BRIDGED;
}

static void process_party_b(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *s)
{
	if (cdr->st == ST_SINGLE)
		return; /* cannot happen in cdr.c (it asserts) */
	if (!cdr->b.set || strcasecmp(cdr->b.snap.name, s->name))
		return;
	cdr->b.snap = *s;
	if (s->flags & SNAP_DEAD)
		transition(e, cdr, ST_FINALIZED, true);
}

static bool has_dial_begin(const struct cdr *cdr)
{
	return cdr->st == ST_SINGLE || cdr->st == ST_DIAL || cdr->st == ST_DIALED_PENDING;
}

static int process_dial_begin(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *caller,
			      const struct cdr_snapshot *peer)
{
	switch (cdr->st) {
	case ST_SINGLE:
		if (caller && !strcasecmp(cdr->a.snap.name, caller->name)) {
			base_process_party_a(e, cdr, caller);
			cdr->b.snap = *peer;
			cdr->b.set = true;
			cdr_all_relink(e, cdr);
			cdr->flags |= CF_LOCK_APP;
		} else if (!strcasecmp(cdr->a.snap.name, peer->name)) {
			base_process_party_a(e, cdr, peer);
		}
		transition(e, cdr, ST_DIAL, true);
		return 0;
	case ST_DIALED_PENDING:
		transition(e, cdr, ST_FINALIZED, true);
		return 1;
	default:
		return 1;
	}
}

static int dial_status_to_disposition(struct cdr_engine *e, const char *st)
{
	if (!strcmp(st, "ANSWER"))
		return CDR_ANSWERED;
	if (!strcmp(st, "BUSY"))
		return CDR_BUSY;
	if (!strcmp(st, "CANCEL"))
		return e->opt.canceldisposition ? CDR_CANCEL : CDR_NOANSWER;
	if (!strcmp(st, "NOANSWER"))
		return CDR_NOANSWER;
	if (!strcmp(st, "CONGESTION"))
		return e->opt.congestion ? CDR_CONGESTION : CDR_FAILED;
	return CDR_FAILED;
}

static bool has_dial_end(const struct cdr *cdr)
{
	return cdr->st == ST_SINGLE || cdr->st == ST_DIAL;
}

static void process_dial_end(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *caller,
			     const struct cdr_snapshot *peer, const char *status)
{
	if (cdr->st != ST_DIAL)
		return; /* Single: base_process_dial_end does nothing */
	cdr->a.snap = caller ? *caller : *peer;
	if (cdr->b.set) {
		if (strcasecmp(cdr->b.snap.name, peer->name))
			return;
		cdr->b.snap = *peer;
	}
	cdr->disposition = dial_status_to_disposition(e, status);
	if (cdr->disposition == CDR_ANSWERED)
		transition(e, cdr, ST_DIALED_PENDING, true);
	else
		transition(e, cdr, ST_FINALIZED, true);
}

/* ------------------------------------------------------------ bridges */

struct bridge_ctx {
	struct bridge *br;
	const struct cdr_bridge_info *info;
};

static int single_bridge_enter_comparison(struct cdr_engine *e, struct cdr *cdr, struct cdr *cand)
{
	if (!strcasecmp(cdr->a.snap.name, cand->a.snap.name))
		return 1;
	if (pick_left(&cdr->a, &cand->a)) {
		party_copy(&cdr->b, &cand->a);
		cdr_all_relink(e, cdr);
		if (!cand->b.set)
			finalize(e, cand);
		return 0;
	}
	if (!cand->b.set || !strcasecmp(cdr->a.snap.name, cand->b.snap.name))
		return 1;
	if (pick_left(&cdr->a, &cand->b)) {
		party_copy(&cdr->b, &cand->b);
		cdr_all_relink(e, cdr);
		return 0;
	}
	return 1;
}

static enum bridge_enter_result single_process_bridge_enter(struct cdr_engine *e, struct cdr *cdr,
							    const struct bridge_ctx *bc)
{
	SET(cdr->bridge, bc->info->id);
	if (bc->info->nchannels == 1) {
		transition(e, cdr, ST_BRIDGED, true);
		return BE_ONLY_PARTY;
	}
	bool success = false;
	for (size_t i = 0; !success && i < bc->br->nmem; i++) {
		struct chan *c = chan_find(e, bc->br->members[i]);
		if (!c || !c->cdr)
			continue;
		for (struct cdr *cand = c->cdr; cand; cand = cand->next) {
			if (cand->st != ST_BRIDGED || strcmp(cdr->bridge, cand->bridge))
				continue;
			if (single_bridge_enter_comparison(e, cdr, cand))
				continue;
			success = true;
			break;
		}
	}
	transition(e, cdr, ST_BRIDGED, true);
	return success ? BE_OBTAINED_PARTY_B : BE_NO_PARTY_B;
}

static enum bridge_enter_result dial_process_bridge_enter(struct cdr_engine *e, struct cdr *cdr,
							  const struct bridge_ctx *bc)
{
	SET(cdr->bridge, bc->info->id);
	if (bc->info->nchannels == 1) {
		transition(e, cdr, ST_BRIDGED, true);
		return BE_ONLY_PARTY;
	}
	bool success = false;
	if (cdr->b.set) {
		for (size_t i = 0; !success && i < bc->br->nmem; i++) {
			struct chan *c = chan_find(e, bc->br->members[i]);
			if (!c || !c->cdr)
				continue;
			for (struct cdr *cand = c->cdr; cand; cand = cand->next) {
				if (cand->st != ST_BRIDGED || strcmp(cdr->bridge, cand->bridge))
					continue;
				if (strcasecmp(cdr->b.snap.name, cand->a.snap.name))
					continue;
				party_copy(&cdr->b, &cand->a);
				cdr_all_relink(e, cdr);
				if (!cand->b.set)
					finalize(e, cand);
				success = true;
				break;
			}
		}
	}
	transition(e, cdr, ST_BRIDGED, true);
	return success ? BE_OBTAINED_PARTY_B : BE_NO_PARTY_B;
}

static bool has_bridge_enter(const struct cdr *cdr)
{
	return cdr->st == ST_SINGLE || cdr->st == ST_DIAL || cdr->st == ST_DIALED_PENDING || cdr->st == ST_FINALIZED;
}

static enum bridge_enter_result process_bridge_enter(struct cdr_engine *e, struct cdr *cdr,
						     const struct bridge_ctx *bc)
{
	switch (cdr->st) {
	case ST_SINGLE:
		return single_process_bridge_enter(e, cdr, bc);
	case ST_DIALED_PENDING:
		transition(e, cdr, ST_DIAL, true);
		return dial_process_bridge_enter(e, cdr, bc);
	case ST_DIAL:
		return dial_process_bridge_enter(e, cdr, bc);
	default:
		return BE_NEED_CDR;
	}
}

static void bridge_candidate_add_to_cdr(struct cdr_engine *e, struct cdr *cdr, const struct party *party_b)
{
	struct cdr *n = create_and_append(e, cdr, cdr->lastevent);
	party_copy(&n->b, party_b);
	cdr_all_relink(e, n);
	check_party_a_answer(n);
	SET(n->bridge, cdr->bridge);
	transition(e, n, ST_BRIDGED, true);
}

static void bridge_candidate_process(struct cdr_engine *e, struct cdr *cdr, struct cdr *base)
{
	for (struct cdr *cand = base; cand; cand = cand->next) {
		if (strcmp(cand->bridge, cdr->bridge))
			continue;
		if (!strcasecmp(cdr->a.snap.name, cand->a.snap.name) ||
		    (cdr->b.set && !strcasecmp(cdr->b.snap.name, cand->a.snap.name)))
			break;
		if (pick_left(&cdr->a, &cand->a)) {
			bridge_candidate_add_to_cdr(e, cdr, &cand->a);
			break;
		}
		if (cand->b.set && strcasecmp(cand->b.snap.name, cdr->a.snap.name)) {
			bridge_candidate_add_to_cdr(e, cand, &cdr->a);
		} else {
			party_copy(&cand->b, &cdr->a);
			cdr_all_relink(e, cand);
			cand->end = 0;
		}
		break;
	}
}

static void handle_bridge_pairings(struct cdr_engine *e, struct cdr *cdr, const struct bridge_ctx *bc)
{
	for (size_t i = 0; i < bc->br->nmem; i++) {
		struct chan *c = chan_find(e, bc->br->members[i]);
		if (c && c->cdr)
			bridge_candidate_process(e, cdr, c->cdr);
	}
}

static void handle_standard_bridge_enter(struct cdr_engine *e, struct chan *c, const struct cdr_snapshot *s,
					 const struct bridge_ctx *bc, uint64_t t)
{
	struct cdr *root = c->cdr;
	struct cdr *handled = NULL;
	for (;;) {
		for (struct cdr *it = root; it; it = it->next) {
			it->lastevent = t;
			process_party_a(e, it, s);
			if (!has_bridge_enter(it))
				continue;
			switch (process_bridge_enter(e, it, bc)) {
			case BE_ONLY_PARTY:
			case BE_OBTAINED_PARTY_B:
				if (!handled)
					handled = it;
				break;
			case BE_NEED_CDR:
				break;
			case BE_NO_PARTY_B:
				if (!handled)
					handled = it;
				finalize(e, root); /* sic: cdr.c finalizes the chain's root here */
				break;
			}
		}
		if (handled)
			break;
		create_and_append(e, root, t);
	}
	handle_bridge_pairings(e, handled, bc);
}

static void handle_parking_bridge_enter(struct cdr_engine *e, struct chan *c, const struct cdr_snapshot *s,
					uint64_t t)
{
	int res = 1;
	for (struct cdr *it = c->cdr; it; it = it->next) {
		it->lastevent = t;
		if (it->st == ST_SINGLE) {
			transition(e, it, ST_PARKED, true);
			res &= 0;
		} else if (it->st == ST_DIALED_PENDING) {
			if (it->b.set) {
				res &= 1;
			} else {
				transition(e, it, ST_PARKED, true);
				res &= 0;
			}
		}
		process_party_a(e, it, s);
	}
	if (res) {
		struct cdr *n = create_and_append(e, c->cdr, t);
		transition(e, n, ST_SINGLE, true);
		transition(e, n, ST_PARKED, true);
	}
}

/* ------------------------------------------------------------ dispatch */

/* ast_callerid_merge() on a snapshot: both strings always exist there, so
 * it is always "name" <num>, the name escaped as ast_escape_quoted() does. */
static void callerid_merge(char *buf, size_t size, const char *name, const char *num)
{
	char esc[128];
	size_t o = 0;
	for (; *name && o + 2 < sizeof esc; name++) {
		if (*name == '"' || *name == '\\')
			esc[o++] = '\\';
		esc[o++] = *name;
	}
	esc[o] = '\0';
	snprintf(buf, size, "\"%s\" <%s>", esc, num);
}

/* ast_tvdiff_ms for microsecond times, then seconds as cdr.c truncates them */
static int64_t tvdiff_ms(uint64_t end, uint64_t start)
{
	int64_t sec = ((int64_t)(end / 1000000) - (int64_t)(start / 1000000)) * 1000;
	int64_t usec = (1000000 + (int64_t)(end % 1000000) - (int64_t)(start % 1000000)) / 1000 - 1000;
	return sec + usec;
}

static void dispatch(struct cdr_engine *e, struct cdr *root)
{
	for (struct cdr *it = root; it; it = it->next) {
		if (snapshot_is_dialed(&it->a.snap) && !it->b.set)
			continue;
		struct cdr_row r;
		char clid[CDR_STR], userfield[CDR_USERFIELD];
		memset(&r, 0, sizeof r);
		r.accountcode = it->a.snap.accountcode;
		r.amaflags = it->a.snap.amaflags;
		r.channel = it->a.snap.name;
		callerid_merge(clid, sizeof clid, it->a.snap.cid_name, it->a.snap.cid_num);
		r.clid = clid;
		r.src = it->a.snap.cid_num;
		r.uniqueid = it->a.snap.uniqueid;
		r.lastapp = it->appl;
		r.lastdata = it->data;
		r.dst = it->exten;
		r.dcontext = it->context;
		r.dstchannel = it->b.set ? it->b.snap.name : "";
		r.peeraccount = it->b.set ? it->b.snap.accountcode : "";
		userfield[0] = '\0';
		if (it->b.set && it->b.userfield[0])
			snprintf(userfield, sizeof userfield, "%s;%s", it->a.userfield, it->b.userfield);
		if (!userfield[0] && it->a.userfield[0])
			copy_str(userfield, sizeof userfield, it->a.userfield);
		r.userfield = userfield;
		r.start_us = it->start;
		r.answer_us = it->answer;
		r.end_us = it->end;
		r.duration = (long)(tvdiff_ms(it->end, it->start) / 1000);
		if (!it->answer) {
			r.billsec = 0;
		} else {
			int64_t ms = tvdiff_ms(it->end, it->answer);
			r.billsec = (long)(ms % 1000 >= 500 && e->opt.initiatedseconds ? ms / 1000 + 1 : ms / 1000);
		}
		r.linkedid = it->linkedid;
		r.disposition = it->disposition;
		r.sequence = it->sequence;
		r.incomplete = e->incomplete_dispatch || (it->owner && it->owner->incomplete);
		/* post_cdr: unanswered=no drops unanswered rows lacking either channel */
		if (!e->opt.unanswered && r.disposition < CDR_ANSWERED && (!r.channel[0] || !r.dstchannel[0]))
			continue;
		/* post_cdr: CDR_PROP(disable), NoCDR() */
		if (it->flags & CDR_PROP_DISABLE)
			continue;
		e->emit(e->emit_arg, &r);
	}
}

/* ------------------------------------------------------------ channels */

static struct chan *chan_new(struct cdr_engine *e, const struct cdr_snapshot *s)
{
	struct chan *c = e->free_chans;
	if (c)
		e->free_chans = c->hnext;
	else
		c = xmalloc(sizeof *c);
	memset(c, 0, sizeof *c);
	c->snap = *s;
	c->first_stamp = e->stamp;
	uint32_t h = hash_nocase(s->uniqueid);
	c->hnext = e->chans[h];
	e->chans[h] = c;
	c->next = e->live.next;
	c->prev = &e->live;
	e->live.next->prev = c;
	e->live.next = c;
	e->nlive++;
	return c;
}

static void chan_born(struct cdr_engine *e, struct chan *c)
{
	if (e->seen)
		e->seen(e->seen_arg, c->snap.uniqueid, c->snap.linkedid, c->incomplete);
}

static void chan_free(struct cdr_engine *e, struct chan *c)
{
	if (e->gone)
		e->gone(e->gone_arg, c->snap.uniqueid);
	struct chan **pp = &e->chans[hash_nocase(c->snap.uniqueid)];
	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	e->nlive--;
	for (struct cdr *it = c->cdr, *next; it; it = next) {
		next = it->next;
		cdr_release(e, it);
	}
	c->hnext = e->free_chans;
	e->free_chans = c;
}

/* Look a channel up; one we never saw created gets a record now, flagged. */
static struct chan *chan_get(struct cdr_engine *e, const struct cdr_snapshot *s, uint64_t t)
{
	struct chan *c = chan_find(e, s->uniqueid);
	if (c || (s->flags & SNAP_DEAD))
		return c;
	c = chan_new(e, s);
	c->incomplete = true;
	chan_born(e, c);
	if (!(s->flags & SNAP_INTERNAL)) {
		c->cdr = cdr_alloc(e, c, s, t);
		c->cdr->is_root = true;
		if (e->opt.nochanneldefault)
			c->cdr->flags |= CDR_PROP_DISABLE_ALL;
	}
	return c;
}

struct cdr_engine *cdr_engine_new(const struct cdr_options *opt, cdr_emit_fn emit, void *arg)
{
	struct cdr_engine *e = xcalloc(1, sizeof *e);
	e->opt = *opt;
	e->emit = emit;
	e->emit_arg = arg;
	e->live.next = e->live.prev = &e->live;
	return e;
}

void cdr_engine_free(struct cdr_engine *e)
{
	if (!e)
		return;
	while (e->live.next != &e->live)
		chan_free(e, e->live.next);
	for (size_t i = 0; i < HASH_SIZE; i++) {
		while (e->bridges[i])
			bridge_free(e, e->bridges[i]);
		for (struct bkey *k = e->bkeys[i], *n; k; k = n) {
			n = k->hnext;
			free(k);
		}
	}
	for (struct cdr *c = e->free_cdrs, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	for (struct chan *c = e->free_chans, *n; c; c = n) {
		n = c->hnext;
		free(c);
	}
	free(e);
}

void cdr_engine_on_gone(struct cdr_engine *e, cdr_gone_fn fn, void *arg)
{
	e->gone = fn;
	e->gone_arg = arg;
}

void cdr_engine_on_seen(struct cdr_engine *e, cdr_seen_fn fn, void *arg)
{
	e->seen = fn;
	e->seen_arg = arg;
}

void cdr_engine_set_stamp(struct cdr_engine *e, uint64_t stamp)
{
	if (stamp != e->stamp) {
		e->stamp = stamp;
		e->stamp_k = 0;
	}
}

bool cdr_engine_bridged(const struct cdr_engine *e, const char *uniqueid)
{
	const struct chan *c = chan_find(e, uniqueid);
	return c && c->bridged;
}

bool cdr_engine_snapshot(const struct cdr_engine *e, const char *uniqueid, struct cdr_snapshot *out)
{
	const struct chan *c = chan_find(e, uniqueid);
	if (!c)
		return false;
	*out = c->snap;
	return true;
}

void cdr_engine_amaflags(struct cdr_engine *e, const char *uniqueid, int amaflags)
{
	struct chan *c = chan_find(e, uniqueid);
	if (c)
		c->snap.amaflags = amaflags;
}

void cdr_engine_amend(struct cdr_engine *e, const struct cdr_snapshot *s)
{
	struct chan *c = chan_find(e, s->uniqueid);
	if (!c)
		return;
	c->snap.flags = s->flags;
	c->snap.gosub_depth = s->gosub_depth;
	c->snap.gosub_saved = s->gosub_saved;
	c->snap.amaflags = s->amaflags;
}

void cdr_engine_channel_flags(struct cdr_engine *e, const char *uniqueid, unsigned set, unsigned clear)
{
	struct chan *c = chan_find(e, uniqueid);
	if (c)
		c->snap.flags = (c->snap.flags | set) & ~clear;
}

/* The CDRs holding channel `name` as Party B, visited safely against
 * relinking (fn may move a CDR to another key). */
static void for_party_b(struct cdr_engine *e, const char *name, void (*fn)(struct cdr_engine *, struct cdr *, void *),
			void *arg)
{
	struct bkey *k = bkey_find(e, name, false);
	if (!k)
		return;
	size_t n = 0;
	for (struct cdr *c = k->head; c; c = c->bnext)
		n++;
	struct cdr *small[32], **list = n <= 32 ? small : xmalloc(n * sizeof *list);
	n = 0;
	for (struct cdr *c = k->head; c; c = c->bnext)
		list[n++] = c;
	for (size_t i = 0; i < n; i++)
		fn(e, list[i], arg);
	if (list != small)
		free(list);
}

static void update_party_b_cb(struct cdr_engine *e, struct cdr *cdr, void *arg)
{
	const struct cdr_snapshot *s = arg;
	if (has_process_party_b(cdr) && cdr->b.set && !strcasecmp(cdr->b.snap.name, s->name))
		process_party_b(e, cdr, s);
}

static void finalize_party_b_cb(struct cdr_engine *e, struct cdr *cdr, void *arg)
{
	(void)arg;
	finalize(e, cdr);
}

static bool check_new_cdr_needed(struct cdr_engine *e, const struct cdr_snapshot *o, const struct cdr_snapshot *n)
{
	if ((n->flags & SNAP_HANGUP_EXEC) && e->opt.endbeforehexten)
		return false;
	if (!n->appl[0])
		return false;
	if (o && !snapshot_cep_changed(e, o, n))
		return false;
	return true;
}

static void channel_dead(struct cdr_engine *e, struct chan *c, uint64_t t)
{
	if (!c->cdr)
		return;
	for (struct cdr *it = c->cdr; it; it = it->next) {
		it->lastevent = t;
		finalize(e, it);
	}
	dispatch(e, c->cdr);
}

/* A snapshot seen in a dial, bridge or parking message is the channel's
 * cached snapshot at that moment: keep ours in step. */
static struct chan *chan_touch(struct cdr_engine *e, const struct cdr_snapshot *s, uint64_t t)
{
	struct chan *c = chan_get(e, s, t);
	if (c) {
		chan_set_snap(e, c, s);
		c->last_t = t;
	}
	return c;
}

void cdr_engine_channel_update(struct cdr_engine *e, const struct cdr_snapshot *s, uint64_t t)
{
	struct chan *c = chan_find(e, s->uniqueid);
	struct cdr_snapshot old;
	bool had_old = c != NULL;
	if (!c) {
		c = chan_new(e, s);
		chan_born(e, c);
		if (!(s->flags & SNAP_INTERNAL)) {
			c->cdr = cdr_alloc(e, c, s, t);
			c->cdr->is_root = true;
			if (e->opt.nochanneldefault)
				c->cdr->flags |= CDR_PROP_DISABLE_ALL;
		}
	}
	old = c->snap;
	chan_set_snap(e, c, s);
	c->last_t = t;
	if (!(s->flags & SNAP_INTERNAL)) {
		/* Party A */
		int all_reject = 1;
		for (struct cdr *it = c->cdr; it; it = it->next) {
			it->lastevent = t;
			all_reject &= process_party_a(e, it, s);
		}
		if (all_reject && check_new_cdr_needed(e, had_old ? &old : NULL, s)) {
			struct cdr *n = create_and_append(e, c->cdr, t);
			process_party_a(e, n, s);
		}
		if (s->flags & SNAP_DEAD)
			channel_dead(e, c, t);
		/* Party B */
		for_party_b(e, s->name, update_party_b_cb, (void *)s);
		if (s->flags & SNAP_DEAD)
			for_party_b(e, s->name, finalize_party_b_cb, NULL);
	}
	if (s->flags & SNAP_DEAD)
		chan_free(e, c);
}

void cdr_engine_dial(struct cdr_engine *e, const struct cdr_snapshot *caller, const struct cdr_snapshot *peer,
		     const char *dialstatus, uint64_t t)
{
	if (!peer && !caller)
		return;
	if ((peer && (peer->flags & SNAP_INTERNAL)) || (caller && (caller->flags & SNAP_INTERNAL)))
		return;
	if (!peer)
		return; /* cdr.c would dereference it; AMI always has one */
	if (caller)
		chan_touch(e, peer, t);
	struct chan *c = chan_touch(e, caller ? caller : peer, t);
	if (!c || !c->cdr)
		return;
	bool begin = !dialstatus || !dialstatus[0];
	bool end = !begin && strcmp(dialstatus, "RINGING") && strcmp(dialstatus, "PROCEEDING") &&
		   strcmp(dialstatus, "PROGRESS");
	int res = 1;
	for (struct cdr *it = c->cdr; it; it = it->next) {
		it->lastevent = t;
		if (begin) {
			if (has_dial_begin(it) && !e->opt.ignoredialchanges)
				res &= process_dial_begin(e, it, caller, peer);
		} else if (end) {
			if (!has_dial_end(it))
				continue;
			if (e->opt.ignoredialchanges)
				it->disposition = dial_status_to_disposition(e, dialstatus);
			else
				process_dial_end(e, it, caller, peer, dialstatus);
		}
	}
	/* with ignoredialchanges a channel keeps one CDR */
	if (res && begin && !e->opt.ignoredialchanges) {
		struct cdr *n = create_and_append(e, c->cdr, t);
		process_dial_begin(e, n, caller, peer);
	}
}

static bool bridge_filtered(const struct cdr_bridge_info *b)
{
	return !strcmp(b->tech, "holding_bridge") && strcmp(b->subclass, "parking");
}

void cdr_engine_bridge_enter(struct cdr_engine *e, const struct cdr_snapshot *s, const struct cdr_bridge_info *b,
			     uint64_t t)
{
	if (e->opt.ignorestatechanges)
		return; /* cdr.c does not subscribe to bridge messages */
	struct bridge *br = bridge_find(e, b->id, true);
	bridge_add(br, s->uniqueid);
	bridge_order(br);
	if (bridge_filtered(b) || (s->flags & SNAP_INTERNAL))
		return;
	struct chan *c = chan_touch(e, s, t);
	if (!c || !c->cdr)
		return;
	c->bridged = strcmp(b->subclass, "parking") != 0;
	struct bridge_ctx bc = { br, b };
	if (!strcmp(b->subclass, "parking"))
		handle_parking_bridge_enter(e, c, s, t);
	else
		handle_standard_bridge_enter(e, c, s, &bc, t);
}

struct leave_ctx {
	const char *bridge_id;
	uint64_t t;
};

static void party_b_left_bridge_cb(struct cdr_engine *e, struct cdr *cdr, void *arg)
{
	const struct leave_ctx *lc = arg;
	if (cdr->st == ST_BRIDGED && !strcmp(cdr->bridge, lc->bridge_id)) {
		cdr->lastevent = lc->t;
		finalize(e, cdr);
	}
}

void cdr_engine_bridge_leave(struct cdr_engine *e, const struct cdr_snapshot *s, const struct cdr_bridge_info *b,
			     uint64_t t)
{
	if (e->opt.ignorestatechanges)
		return;
	struct bridge *br = bridge_find(e, b->id, false);
	if (br) {
		bridge_remove(br, s->uniqueid);
		if (!br->nmem)
			bridge_free(e, br);
	}
	if (bridge_filtered(b) || (s->flags & SNAP_INTERNAL))
		return;
	struct chan *c = chan_find(e, s->uniqueid);
	if (!c || !c->cdr)
		return;
	chan_set_snap(e, c, s);
	c->last_t = t;
	c->bridged = false;
	bool left = false;
	for (struct cdr *it = c->cdr; it; it = it->next) {
		it->lastevent = t;
		int r = 1;
		switch (it->st) {
		case ST_SINGLE:
		case ST_DIAL:
		case ST_DIALED_PENDING:
			r = 0; /* base_process_bridge_leave */
			break;
		case ST_BRIDGED:
			if (strcmp(it->bridge, b->id))
				break;
			if (strcasecmp(it->a.snap.name, s->name) && it->b.set && strcasecmp(it->b.snap.name, s->name))
				break;
			transition(e, it, ST_FINALIZED, true);
			r = 0;
			break;
		case ST_PARKED:
			if (strcasecmp(it->a.snap.name, s->name))
				break;
			transition(e, it, ST_FINALIZED, true);
			r = 0;
			break;
		case ST_FINALIZED:
			continue;
		}
		if (!r) {
			it->bridge[0] = '\0';
			left = true;
		}
	}
	if (left && strcmp(b->subclass, "parking")) {
		struct leave_ctx lc = { b->id, t };
		for_party_b(e, s->name, party_b_left_bridge_cb, &lc);
	}
}

static void base_process_parked_channel(struct cdr_engine *e, struct cdr *cdr, const struct cdr_snapshot *parkee,
					const char *lot, unsigned space)
{
	process_party_a(e, cdr, parkee);
	SET(cdr->appl, "Park");
	snprintf(cdr->data, sizeof cdr->data, "%s:%u", lot, space);
	cdr->flags |= CF_LOCK_APP;
}

void cdr_engine_parked(struct cdr_engine *e, const struct cdr_snapshot *parkee, const char *lot, unsigned space,
		       uint64_t t)
{
	if ((parkee->flags & SNAP_INTERNAL) || e->opt.ignorestatechanges)
		return;
	struct chan *c = chan_touch(e, parkee, t);
	if (!c || !c->cdr)
		return;
	int unhandled = 1;
	for (struct cdr *it = c->cdr; it; it = it->next) {
		it->lastevent = t;
		if (it->st == ST_DIAL || it->st == ST_FINALIZED)
			continue;
		base_process_parked_channel(e, it, parkee, lot, space);
		unhandled &= 0;
	}
	if (unhandled) {
		struct cdr *n = create_and_append(e, c->cdr, t);
		base_process_parked_channel(e, n, parkee, lot, space);
	}
}

static void userfield_party_b_cb(struct cdr_engine *e, struct cdr *cdr, void *arg)
{
	(void)e;
	if (cdr->st != ST_FINALIZED || !cdr->next)
		SET(cdr->b.userfield, (const char *)arg);
}

/* cdr_object_get_by_name: the chain whose Party A has this channel name. */
static struct cdr *cdr_by_name(struct cdr_engine *e, const char *channel_name)
{
	for (struct chan *c = e->live.next; c != &e->live; c = c->next)
		if (c->cdr && !strcasecmp(c->cdr->a.snap.name, channel_name))
			return c->cdr;
	return NULL;
}

void cdr_engine_userfield(struct cdr_engine *e, const char *channel_name, const char *value)
{
	struct cdr *root = cdr_by_name(e, channel_name);
	for (struct cdr *it = root; it; it = it->next) {
		if (it->st == ST_FINALIZED && it->next)
			continue;
		SET(it->a.userfield, value);
	}
	for_party_b(e, channel_name, userfield_party_b_cb, (void *)value);
}

void cdr_engine_set_property(struct cdr_engine *e, const char *channel_name, unsigned prop)
{
	for (struct cdr *it = cdr_by_name(e, channel_name); it; it = it->next) {
		if (it->st == ST_FINALIZED)
			continue;
		it->flags |= prop;
		it->a.flags |= prop;
	}
}

void cdr_engine_clear_property(struct cdr_engine *e, const char *channel_name, unsigned prop)
{
	/* sic: only the CDR's flags, Party A keeps a party_a mark (cdr.c) */
	for (struct cdr *it = cdr_by_name(e, channel_name); it; it = it->next)
		if (it->st != ST_FINALIZED)
			it->flags &= ~prop;
}

void cdr_engine_reset(struct cdr_engine *e, const char *channel_name, uint64_t t)
{
	/* every CDR of the chain, finalized ones too: they end again at hang-up */
	for (struct cdr *it = cdr_by_name(e, channel_name); it; it = it->next) {
		it->start = t;
		it->end = 0;
		it->answer = 0;
		it->lastevent = t;
		check_party_a_answer(it);
	}
}

void cdr_engine_fork(struct cdr_engine *e, const char *channel_name, unsigned options, uint64_t t)
{
	struct cdr *root = cdr_by_name(e, channel_name);
	if (!root)
		return;
	struct cdr *last = root->last;
	if (last->st == ST_FINALIZED)
		return; /* things are already dying */
	struct cdr *n = create_and_append(e, root, t);
	n->st = last->st; /* the state is copied, not entered */
	SET(n->bridge, root->bridge);
	SET(n->appl, root->appl);
	SET(n->data, root->data);
	SET(n->context, root->context);
	SET(n->exten, root->exten);
	n->flags = root->flags & ~CF_LOCK_APP;
	if (last->b.set) {
		party_copy(&n->b, &last->b);
		cdr_all_relink(e, n);
	}
	n->start = last->start;
	n->answer = last->answer;
	n->lastevent = t;
	if ((options & CDR_FORK_SET_ANSWER) && n->a.snap.state == 6)
		n->answer = t;
	if (options & CDR_FORK_RESET) {
		n->answer = t;
		n->start = t;
	}
	if (options & CDR_FORK_FINALIZE)
		for (struct cdr *it = root; it != n; it = it->next)
			if (it->st != ST_FINALIZED) {
				finalize(e, it);
				transition(e, it, ST_FINALIZED, true);
			}
}

size_t cdr_engine_expire(struct cdr_engine *e, uint64_t idle_before_us)
{
	size_t n = 0;
	struct chan *c = e->live.next;
	while (c != &e->live) {
		if (idle_before_us && c->last_t >= idle_before_us) {
			c = c->next;
			continue;
		}
		/* closed as if it hung up when last heard of; its rows are flagged */
		struct cdr_snapshot s = c->snap;
		s.flags |= SNAP_DEAD;
		e->incomplete_dispatch = true;
		cdr_engine_channel_update(e, &s, c->last_t);
		e->incomplete_dispatch = false;
		n++;
		c = e->live.next; /* the update freed c */
	}
	return n;
}

size_t cdr_engine_live(const struct cdr_engine *e, uint64_t *oldest_stamp)
{
	uint64_t oldest = UINT64_MAX;
	for (const struct chan *c = e->live.next; c != &e->live; c = c->next)
		if (c->first_stamp < oldest)
			oldest = c->first_stamp;
	if (oldest_stamp)
		*oldest_stamp = oldest;
	return e->nlive;
}
