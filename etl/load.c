#include "load.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ami.h"
#include "amidoctor.h"
#include "analyst.h"
#include "cdrfeed.h"
#include "epstate.h"
#include "evscope.h"
#include "clock.h"
#include "copyfmt.h"
#include "exitcode.h"
#include "legclass.h"
#include "legwait.h"
#include "log.h"
#include "pgconn.h"
#include "segment.h"
#include "strparse.h"
#include "xalloc.h"
#include "yeastar.h"

volatile sig_atomic_t load_stop_requested;

/* The COPY streams: the table each feeds, the table COPY writes into (the
 * batch tables for legs and calls) and its column list, the one layout the
 * row writers below (on_cel, on_ami, on_leg, on_call) follow field by field.
 * tests/t/t2110-copy-layout.sh checks it against the DDL. */
enum { OUT_CEL, OUT_AMI, OUT_CDR, OUT_CALL, N_OUT };
static const char *const copy_names[N_OUT] = { "cel", "ami_event", "cdr", "call" };
static const char *const copy_targets[N_OUT] = { "cel", "ami_event", "cdr_batch", "call_batch" };
static const char *const copy_columns[N_OUT] = {
	("eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, context, "
	"channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer, extra, "
	"node, seq, segno, seg_offset, tenants"),
	("event, eventtime, node, uniqueid, linkedid, channel, fields, seq, segno, seg_offset, tenants"),
	("calldate, answer, \"end\", clid, src, dst, dcontext, channel, dstchannel, lastapp, lastdata, duration, "
	"billsec, disposition, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, sequence, node, "
	"incomplete, clock_fault, tenant, direction, src_e164, dst_e164, carrier, rate_status, buy_cost, sell_cost, "
	"margin, buy_prefix, sell_prefix, trunk, dst_country, src_intl, dst_intl, call_id"),
	("call_id, node, start, \"end\", first_answer, src, dst, legs, total_billsec, duration, outcome, transfers, "
	"linkedids, incomplete, clock_fault, tenant, direction, buy_cost, sell_cost, trunk, dst_country"),
};

/* A record's position (pos_tag) and sequence: the seq of the oldest event
 * of the calls still open is looked up by position (cdr_feed_oldest_pos). */
struct pos_seq {
	uint64_t tag, seq;
};

/* Rows of one batch, in COPY text format, plus what the checkpoint needs. */
struct batch {
	struct buf cel, ami, cdr, call;
	struct buf state; /* endpoint-state changes, for endpoint_event_batch (epstate.h) */
	struct epstate ep;
	struct buf json; /* scratch for one ami_event's fields */
	struct name_memo {     /* on_event's decision per event name */
		char name[40];
		uint8_t len, known, stored, wants, state;
	} memo[256];
	uint64_t events, cel_rows, ami_rows, last_seq, legs, calls;
	int64_t legs_until_us;     /* the latest end (start + duration) of its legs; 0: no leg */
	struct seg_pos next;
	struct seg_pos start;      /* the load position this batch follows (checked at commit) */
	struct seg_pos load_to, cdr_to; /* the checkpoint it commits */
	uint64_t cdr_seq;          /* no event of a call open at cdr_to has a smaller seq */
	uint64_t first_seq;        /* the sequence of the first record it loads (0: none) */
	struct pos_seq *seqs;      /* (position, seq) of every record read, in order */
	size_t nseqs, seqs_cap;
	uint64_t done_to, loaded, bytes;
	int more;                  /* records may follow */
	uint64_t skips;            /* recorded skips passed in this batch */
	struct seg_pos load_from;  /* records before this are in cel/ami_event already */
	uint64_t written_upto;     /* legs and calls finished up to this stamp are stored */
	struct cdr_feed *feed;
	const struct legclass *lc;
	struct buf legrow;         /* the row of the leg being finished */
	struct legwait wait;       /* leg rows waiting for their call to close (legwait.h) */
	struct evscope scope;      /* the tenants the batch's event rows are written with */
	struct evscope_window *win; /* the node's (NULL: no database to tell) */
	struct buf convs;          /* the batch's conversations, for event_scope_batch (evscope.h) */
	struct leg_extra extra;    /* the facts of the leg being finished (on_classify) */
	const struct cdr_row *extra_for;
	int replaying;             /* the current record is before load_from */
	struct amidoctor *doc;     /* the input doctor fed the loaded records (NULL: none) */
	struct amidoctor *doc_at;  /* what it knew after this batch's last record */
	int json_recs;             /* JSON records (a Yeastar node) were read */
	int months[LOAD_MONTHS]; /* distinct YYYYMM seen, to create partitions first */
	size_t nmonths;
	const struct etl_config *cfg;
	const char *node;
	struct seg_record rec;
};

void load_note_month(int months[LOAD_MONTHS], size_t *n, uint64_t us)
{
	static _Thread_local uint64_t last_day = UINT64_MAX; /* rows come by day: one gmtime_r a day */
	static _Thread_local int last_ym;
	uint64_t day = us / 86400000000u;
	if (day != last_day) {
		time_t sec = (time_t)(us / 1000000u);
		struct tm tm;
		if (!gmtime_r(&sec, &tm))
			memset(&tm, 0, sizeof tm);
		last_ym = (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
		last_day = day;
	}
	int ym = last_ym;
	for (size_t i = 0; i < *n; i++)
		if (months[i] == ym)
			return;
	if (*n < LOAD_MONTHS)
		months[(*n)++] = ym;
}

static void note_month(struct batch *b, uint64_t us)
{
	load_note_month(b->months, &b->nmonths, us);
}

/* The event's time: its Timestamp header, else when the collector got it;
 * *ts tells which (and whether a header was there but not a time). */
static uint64_t event_time_us(const struct ami_msg *m, uint64_t recv_us, enum cdr_feed_ts *ts)
{
	size_t len;
	const char *v = ami_get(m, "Timestamp", &len);
	uint64_t us = v ? parse_unix_us(v, len) : 0;
	*ts = !v ? CDR_TS_NONE : us ? CDR_TS_OK : CDR_TS_BAD;
	return us ? us : recv_us;
}

/* An event row's last columns: its position, then tenants, NULL until
 * evscope_apply() fills it. */
static void add_position(struct buf *row, const struct batch *b)
{
	copy_int(row, (int64_t)b->rec.seq, '\t');
	copy_int(row, (int64_t)b->rec.pos.segno, '\t');
	copy_int(row, (int64_t)b->rec.pos.offset, '\t');
	copy_null(row, '\n');
}

/* Where evscope reads an event row's conversation and channel back
 * (copy_columns[OUT_CEL], [OUT_AMI]: linkedid, uniqueid, channame/channel). */
static const struct evscope_columns scope_columns[EVSCOPE_STREAMS] = { { 17, 16, 10 }, { 4, 3, 5 } };

/* A record's position as one increasing number (segment files stay far
 * below 2^40 bytes) and back. */
static uint64_t pos_tag(struct seg_pos p)
{
	return p.segno << 40 | p.offset;
}

static struct seg_pos tag_pos(uint64_t t)
{
	return (struct seg_pos){ t >> 40, t & ((UINT64_C(1) << 40) - 1) };
}

static void str_col(struct buf *r, const char *s)
{
	copy_text(r, s, strlen(s), '\t');
}

static void opt_col(struct buf *r, const char *s)
{
	if (s)
		copy_text(r, s, strlen(s), '\t');
	else
		copy_null(r, '\t');
}

static void money_col(struct buf *r, bool has, int64_t v)
{
	if (has)
		copy_int(r, v, '\t');
	else
		copy_null(r, '\t');
}

static void time_col(struct buf *r, uint64_t us)
{
	if (us)
		copy_time_us(r, us, '\t');
	else
		copy_null(r, '\t');
}

/* A finished leg's facts (etl/legclass.c), for its row and for its call:
 * every leg, replayed ones too, so the call sums up all of them.  The
 * feed's sink argument is where the batch being built is. */
static void on_classify(void *arg, const struct cdr_row *x, struct leg_facts *out)
{
	struct batch *b = *(struct batch **)arg;
	legclass_apply(b->lc, x, &b->extra);
	b->extra_for = x;
	load_leg_facts(&b->extra, out);
}

void load_leg_facts(const struct leg_extra *e, struct leg_facts *out)
{
	*out = (struct leg_facts){
		.tenant = e->tenant,
		.direction = e->direction,
		.trunk = e->trunk,
		.country = e->country,
		.has_buy = e->has_buy,
		.has_sell = e->has_sell,
		.buy = e->buy,
		.sell = e->sell,
	};
}

/* One leg as a COPY row of the cdr stream (copy_columns[OUT_CDR]) with its
 * facts e (legclass_apply), every column but the last, call_id, which
 * load_leg_row_end() writes. */
void load_leg_row(struct buf *r, const struct leg_extra *e, const struct cdr_row *x, const char *node)
{
	copy_time_us(r, x->start_us, '\t');
	time_col(r, x->answer_us);
	copy_time_us(r, x->end_us, '\t');
	str_col(r, x->clid);
	str_col(r, x->src);
	str_col(r, x->dst);
	str_col(r, x->dcontext);
	str_col(r, x->channel);
	str_col(r, x->dstchannel);
	str_col(r, x->lastapp);
	str_col(r, x->lastdata);
	copy_int(r, x->duration, '\t');
	copy_int(r, x->billsec, '\t');
	str_col(r, cdr_disposition_name(x->disposition));
	copy_int(r, x->amaflags, '\t');
	str_col(r, x->accountcode);
	str_col(r, x->peeraccount);
	str_col(r, x->uniqueid);
	str_col(r, x->linkedid);
	str_col(r, x->userfield);
	copy_int(r, (int64_t)x->sequence, '\t');
	str_col(r, node);
	copy_text(r, x->incomplete ? "t" : "f", 1, '\t');
	copy_text(r, x->clock_fault ? "t" : "f", 1, '\t');
	opt_col(r, e->tenant);
	str_col(r, e->direction);
	opt_col(r, e->src_e164[0] ? e->src_e164 : NULL);
	opt_col(r, e->dst_e164[0] ? e->dst_e164 : NULL);
	opt_col(r, e->carrier);
	opt_col(r, e->rate_status);
	money_col(r, e->has_buy, e->buy);
	money_col(r, e->has_sell, e->sell);
	money_col(r, e->has_margin, e->margin);
	opt_col(r, e->buy_prefix[0] ? e->buy_prefix : NULL);
	opt_col(r, e->sell_prefix[0] ? e->sell_prefix : NULL);
	str_col(r, e->trunk);
	opt_col(r, e->country);
	copy_text(r, e->src_intl ? "t" : "f", 1, '\t');
	copy_text(r, e->dst_intl ? "t" : "f", 1, '\t');
}

void load_leg_row_end(struct buf *r, const char *call_id)
{
	if (call_id)
		copy_text(r, call_id, strlen(call_id), '\n');
	else
		copy_null(r, '\n');
}

/* A finished leg: a cdr row, unless an earlier run stored it already.  Its
 * facts are b->extra when b->extra_for is x (on_classify, or a Yeastar
 * CDR's own), else classified here; its row waits for its call_id
 * (legwait.h). */
static void add_leg(struct batch *b, const struct cdr_row *x, uint64_t stamp)
{
	if (stamp <= b->written_upto)
		return;
	note_month(b, x->start_us);
	if (b->extra_for != x)
		legclass_apply(b->lc, x, &b->extra);
	b->extra_for = NULL;
	buf_reset(&b->legrow);
	load_leg_row(&b->legrow, &b->extra, x, b->node);
	legwait_hold(&b->wait, x->linkedid, b->legrow.data, b->legrow.len);
	int64_t end_us = (int64_t)x->start_us + (int64_t)x->duration * 1000000;
	if (end_us > b->legs_until_us)
		b->legs_until_us = end_us;
	evscope_leg(&b->scope, x->linkedid, x->uniqueid, x->channel, x->dstchannel, b->extra.tenant);
	b->legs++;
}

static void on_leg(void *arg, const struct cdr_row *x, uint64_t stamp)
{
	add_leg(*(struct batch **)arg, x, stamp);
}

/* A warning about the node's clock, said once: not again by a run that
 * re-reads events an earlier run already ran. */
static void on_clock(void *arg, const char *msg, uint64_t stamp)
{
	struct batch *b = *(struct batch **)arg;
	if (stamp > b->written_upto)
		log_warn("node %s: %s", b->node, msg);
}

/* One call as a COPY row of the call stream (copy_columns[OUT_CALL]). */
void load_call_row(struct buf *r, const struct call_row *x, const char *node)
{
	str_col(r, x->call_id);
	str_col(r, node);
	copy_time_us(r, x->start_us, '\t');
	time_col(r, x->end_us);
	time_col(r, x->first_answer_us);
	str_col(r, x->src);
	str_col(r, x->dst);
	copy_int(r, x->legs, '\t');
	copy_int(r, x->total_billsec, '\t');
	copy_int(r, x->duration, '\t');
	str_col(r, x->outcome);
	copy_int(r, x->transfers, '\t');
	str_col(r, x->linkedids);
	copy_text(r, x->incomplete ? "t" : "f", 1, '\t');
	copy_text(r, x->clock_fault ? "t" : "f", 1, '\t');
	const struct call_facts *f = &x->facts;
	opt_col(r, f->has_tenant ? f->tenant : NULL);
	str_col(r, f->direction ? f->direction : "unknown");
	money_col(r, f->has_buy, f->buy);
	money_col(r, f->has_sell, f->sell);
	str_col(r, f->trunk);
	if (f->country[0])
		copy_text(r, f->country, strlen(f->country), '\n');
	else
		copy_null(r, '\n');
}

/* A closed call: a call row, unless an earlier run stored it already; the
 * rows of its legs that wait (legwait.h) are written with its call_id. */
static void add_call(struct batch *b, const struct call_row *x, uint64_t stamp)
{
	if (stamp <= b->written_upto)
		return;
	note_month(b, x->start_us);
	load_call_row(&b->call, x, b->node);
	b->calls++;
	/* the legs of this call finished in this batch are written now, once */
	legwait_call(&b->wait, x->linkedids, x->call_id, &b->cdr);
}

static void on_call(void *arg, const struct call_row *x, uint64_t stamp)
{
	add_call(*(struct batch **)arg, x, stamp);
}

/* The cel columns filled from CEL headers, in COPY order after eventtime. */
static const char *const cel_keys[] = {
	"UserDefType", "CallerIDname", "CallerIDnum", "CallerIDani", "CallerIDrdnis", "CallerIDdnid", "Exten",
	"Context", "Channel", "Application", "AppData", "AMAFlags", "AccountCode", "PeerAccount", "UniqueID",
	"LinkedID", "Userfield", "Peer", "Extra",
};
#define N_CEL_KEYS (sizeof cel_keys / sizeof cel_keys[0])
#define CEL_AMAFLAGS 11

/* The cel keys of each length (-1 after the last), built once. */
static signed char cel_by_len[16][8];

static void cel_by_len_init(void)
{
	memset(cel_by_len, -1, sizeof cel_by_len);
	for (size_t k = 0; k < N_CEL_KEYS; k++) {
		size_t l = strlen(cel_keys[k]), c = 0;
		while (cel_by_len[l][c] >= 0)
			c++;
		cel_by_len[l][c] = (signed char)k;
	}
}

/* Map each header to its column once (first match wins, as ami_get); a
 * header is compared only with the keys of its length. */
static void cel_columns(const struct ami_msg *m, const struct ami_header *col[N_CEL_KEYS], const struct ami_header **name)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	(void)pthread_once(&once, cel_by_len_init);
	memset(col, 0, N_CEL_KEYS * sizeof col[0]);
	*name = NULL;
	for (size_t i = 0; i < m->nhdr; i++) {
		const struct ami_header *h = &m->hdr[i];
		const char *key = m->raw + h->key_off;
		size_t kl = h->key_len;
		if (!*name && ami_key_eq(key, kl, "EventName", 9)) {
			*name = h;
			continue;
		}
		if (kl >= sizeof cel_by_len / sizeof cel_by_len[0])
			continue;
		for (size_t c = 0; c < 8 && cel_by_len[kl][c] >= 0; c++) {
			size_t k = (size_t)cel_by_len[kl][c];
			if (!col[k] && ami_key_eq(key, kl, cel_keys[k], kl)) {
				col[k] = h;
				break;
			}
		}
	}
}

static void add_cel(struct batch *b, const struct ami_msg *m, uint64_t t)
{
	struct buf *r = &b->cel;
	size_t start = r->len;
	const struct ami_header *col[N_CEL_KEYS], *name;
	cel_columns(m, col, &name);
	if (name)
		copy_text(r, m->raw + name->val_off, name->val_len, '\t');
	else
		copy_null(r, '\t');
	copy_time_us(r, t, '\t');
	for (size_t k = 0; k < N_CEL_KEYS; k++) {
		const struct ami_header *h = col[k];
		if (!h)
			copy_null(r, '\t');
		else if (k == CEL_AMAFLAGS)
			copy_int(r, cdr_amaflags_number(m->raw + h->val_off, h->val_len), '\t');
		else
			copy_text(r, m->raw + h->val_off, h->val_len, '\t');
	}
	copy_text(r, b->node, strlen(b->node), '\t');
	add_position(r, b);
	evscope_event(&b->scope, 0, start, b->rec.seq);
	b->cel_rows++;
}

static void add_ami_event(struct batch *b, const struct ami_msg *m, const char *name, size_t name_len, uint64_t t)
{
	struct buf *r = &b->ami;
	size_t start = r->len;
	copy_text(r, name, name_len, '\t');
	copy_time_us(r, t, '\t');
	copy_text(r, b->node, strlen(b->node), '\t');
	/* uniqueid, linkedid, channel: the first of each (as ami_get), one pass */
	const struct ami_header *id[3] = { NULL, NULL, NULL };
	for (size_t i = 0; i < m->nhdr; i++) {
		const struct ami_header *h = &m->hdr[i];
		const char *k = m->raw + h->key_off;
		if (h->key_len == 8 && !id[0] && ami_key_eq(k, 8, "Uniqueid", 8))
			id[0] = h;
		else if (h->key_len == 8 && !id[1] && ami_key_eq(k, 8, "Linkedid", 8))
			id[1] = h;
		else if (h->key_len == 7 && !id[2] && ami_key_eq(k, 7, "Channel", 7))
			id[2] = h;
	}
	for (int i = 0; i < 3; i++) {
		if (id[i])
			copy_text(r, m->raw + id[i]->val_off, id[i]->val_len, '\t');
		else
			copy_null(r, '\t');
	}
	/* every header as JSON (a repeated key becomes an array), COPY-escaped */
	copy_ami_fields(r, m, &b->json, '\t');
	add_position(r, b);
	evscope_event(&b->scope, 1, start, b->rec.seq);
	b->ami_rows++;
}

static int is_cel(const char *name, size_t len)
{
	return len == 3 && !memcmp(name, "CEL", 3);
}

/* An event on_event() decided to look at.
 * stored: a cel or ami_event row (unless replaying); wants: the CDR engine's;
 * state: an endpoint_event_batch row (unless replaying). */
static void on_full_event(struct batch *b, const struct ami_msg *m, const char *name, size_t len, int stored,
			  int wants, int state)
{
	enum cdr_feed_ts ts;
	uint64_t t = event_time_us(m, b->rec.recv_us, &ts);
	if (b->feed && wants)
		cdr_feed_event_ts(b->feed, m, name, len, t, ts, b->rec.seq, pos_tag(b->rec.pos));
	if (b->replaying)
		return; /* stored and analysed by an earlier run (on_event told the window) */
	if (state)
		epstate_event(&b->ep, &b->state, m, name, len, b->rec.seq, t);
	if (!stored)
		return;
	note_month(b, t);
	if (is_cel(name, len))
		add_cel(b, m, t);
	else
		add_ami_event(b, m, name, len, t);
}

/* What is done with an event of this name (the names repeat: decided once
 * per name, remembered in a small direct-mapped table). */
static void name_decision(struct batch *b, const char *name, size_t len, int *stored, int *wants, int *state)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	struct name_memo *e = &b->memo[h % (sizeof b->memo / sizeof b->memo[0])];
	if (e->known && e->len == len && !memcmp(e->name, name, len)) {
		*stored = e->stored;
		*wants = e->wants;
		*state = e->state;
		return;
	}
	*stored = is_cel(name, len) || etl_keep_event(b->cfg, name, len);
	*wants = cdr_feed_wants(name, len);
	*state = epstate_is_event(name, len);
	if (len <= sizeof e->name) {
		memcpy(e->name, name, len);
		e->len = (uint8_t)len;
		e->stored = (uint8_t)*stored;
		e->wants = (uint8_t)*wants;
		e->state = (uint8_t)*state;
		e->known = 1;
	}
}

/* Every record, parsed once: the framing parser indexes every header (nearly
 * every event is stored or run by the CDR engine, so an Event-only first
 * pass and a second full parse cost more than one full pass). */
static int on_event(void *ctx, const struct ami_msg *m)
{
	struct batch *b = ctx;
	if (m->kind != AMI_EVENT)
		return 0;
	size_t len;
	const char *name = ami_get(m, "Event", &len);
	if (!name)
		return 0;
	if (b->doc && !b->replaying)
		adoc_event_named(b->doc, m, name, len, b->rec.recv_us); /* the doctor reads this parse: no second read */
	int stored, wants, state;
	name_decision(b, name, len, &stored, &wants, &state);
	if (b->replaying && b->win) {
		/* an earlier run may have stored it (under this configuration or
		 * another): its conversation has rows before this batch, so it is
		 * not whole (evscope.h).  CEL's LinkedID too: keys are caseless. */
		size_t n;
		const char *lid = ami_get(m, "Linkedid", &n);
		if (lid)
			evscope_window_note(b->win, lid, n, b->rec.seq);
	}
	if (!stored && !state && !(b->feed && wants))
		return 0; /* stays in the segments only */
	on_full_event(b, m, name, len, stored, wants, state);
	return 0;
}

/* A record of a Yeastar node (SEG_FLAG_JSON): a CDR becomes a leg and a
 * one-leg call (lib/yeastar.c maps it; tenants, E.164, rating are the
 * AMI path's own code), every other event an ami_event row (fields = its
 * msg), which the 0018 step turns into endpoint history and live calls. */
static void on_json_record(struct batch *b)
{
	struct ys_event ev;
	char err[256] = "";
	if (ys_event_parse(b->rec.data, b->rec.data_len, &ev, err, sizeof err) < 0) {
		log_warn("node %s: record %" PRIu64 " at segment %" PRIu64 " offset %" PRIu64 " is not a Yeastar event: %s",
			 b->node, b->rec.seq, b->rec.pos.segno, b->rec.pos.offset, err);
		return;
	}
	if (b->replaying) { /* an ami_event row an earlier run stored: see on_full_event */
		char name[48];
		ys_event_name(&ev, name, sizeof name);
		const char *id = ys_event_call_id(&ev);
		if (!ys_event_is_cdr(&ev) && id && b->win && etl_keep_event(b->cfg, name, strlen(name)))
			evscope_window_note(b->win, id, strlen(id), b->rec.seq);
		ys_event_release(&ev);
		return;
	}
	if (ys_event_is_cdr(&ev)) {
		const struct source_config *src = etl_source(b->cfg, b->node);
		int64_t off = src && src->type == SOURCE_YEASTAR ? src->yeastar.utc_offset_s : 0;
		struct ys_leg *leg = xmalloc(sizeof *leg);
		if (ys_leg_from_event(&ev, off, b->rec.recv_us, b->rec.seq, leg, err, sizeof err) < 0) {
			log_warn("node %s: record %" PRIu64 " at segment %" PRIu64 " offset %" PRIu64 ": no leg: %s", b->node,
				 b->rec.seq, b->rec.pos.segno, b->rec.pos.offset, err);
		} else {
			if (*err)
				log_warn("node %s: record %" PRIu64 ": %s", b->node, b->rec.seq, err);
			/* the leg's facts: the AMI path's code, with the CDR's own direction and trunk */
			struct leg_extra *e = &b->extra;
			legclass_apply_source(b->lc, &leg->row, leg->direction, leg->direction ? leg->trunk : NULL, e);
			struct leg_facts lf;
			load_leg_facts(e, &lf);
			call_facts_of_leg(&leg->call.facts, &lf);
			b->extra_for = &leg->row;
			add_leg(b, &leg->row, b->rec.seq);
			add_call(b, &leg->call, b->rec.seq); /* writes the held leg with its call_id */
		}
		free(leg);
	} else {
		char name[48];
		ys_event_name(&ev, name, sizeof name);
		if (etl_keep_event(b->cfg, name, strlen(name))) {
			char *fields = ys_event_fields_json(&ev);
			const char *id = ys_event_call_id(&ev);
			struct buf *r = &b->ami;
			uint64_t t = b->rec.recv_us;
			note_month(b, t);
			size_t start = r->len;
			copy_text(r, name, strlen(name), '\t');
			copy_time_us(r, t, '\t');
			copy_text(r, b->node, strlen(b->node), '\t');
			opt_col(r, id);
			opt_col(r, id);
			copy_null(r, '\t');
			copy_text(r, fields ? fields : "{}", fields ? strlen(fields) : 2, '\t');
			free(fields);
			add_position(r, b);
			evscope_event(&b->scope, 1, start, b->rec.seq);
			b->ami_rows++;
		}
	}
	ys_event_release(&ev);
}

static int copy_rows(PGconn *c, const char *target, const char *columns, const struct buf *rows, char *err,
		     size_t errlen)
{
	if (!rows->len)
		return 0;
	char sql[1024];
	snprintf(sql, sizeof sql, "COPY %s (%s) FROM STDIN", target, columns);
	PGresult *r = PQexec(c, sql);
	if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(err, errlen, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	size_t off = 0;
	while (off < rows->len) {
		size_t n = rows->len - off > (1u << 20) ? (1u << 20) : rows->len - off;
		if (PQputCopyData(c, rows->data + off, (int)n) != 1) {
			snprintf(err, errlen, "COPY failed: %s", PQerrorMessage(c));
			return -1;
		}
		off += n;
	}
	if (PQputCopyEnd(c, NULL) != 1) {
		snprintf(err, errlen, "COPY failed: %s", PQerrorMessage(c));
		return -1;
	}
	int rc = 0;
	while ((r = PQgetResult(c))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			snprintf(err, errlen, "%s%s%s", state ? state : "", state ? ": " : "", PQresultErrorMessage(r));
			rc = -1;
		}
		PQclear(r);
	}
	return rc;
}

static int copy_in(PGconn *c, int stream, const struct buf *rows, char *err, size_t errlen)
{
	return copy_rows(c, copy_targets[stream], copy_columns[stream], rows, err, errlen);
}

/* The framing parser: it indexes every header (the one parse of an event). */
static void framing_init(struct ami_parser *p)
{
	ami_parser_init(p, SEG_DATA_MAX);
}

static void batch_init(struct batch *b, const struct etl_config *cfg, const char *node)
{
	memset(b, 0, sizeof *b);
	buf_init(&b->cel, 0);
	buf_init(&b->ami, 0);
	buf_init(&b->cdr, 0);
	buf_init(&b->call, 0);
	buf_init(&b->state, 0);
	epstate_init(&b->ep);
	buf_init(&b->json, 0);
	buf_init(&b->legrow, 0);
	legwait_init(&b->wait);
	evscope_init(&b->scope, scope_columns);
	buf_init(&b->convs, 0);
	b->cfg = cfg;
	b->node = node;
}

static void batch_release(struct batch *b)
{
	free(b->seqs);
	adoc_free(b->doc_at);
	buf_release(&b->cel);
	buf_release(&b->ami);
	buf_release(&b->cdr);
	buf_release(&b->call);
	buf_release(&b->state);
	epstate_release(&b->ep);
	buf_release(&b->json);
	buf_release(&b->legrow);
	legwait_release(&b->wait);
	evscope_release(&b->scope);
	buf_release(&b->convs);
}

/* The CDR engine of a node outlives a load_once() call (--follow keeps it
 * warm); it is dropped whenever a transaction fails, and rebuilt from the
 * checkpoint's cdr position by the next call. */
struct node_engine {
	char *node;
	struct cdr_feed *feed;
	uint64_t cdr_seq;    /* the last batch's: a lower bound of its open calls' seqs */
	uint64_t caveats_told[CAVEAT_N]; /* caveat counts already warned and stored */
	struct seg_pos next; /* where its input continues */
	struct batch *cur;   /* the batch its legs and calls go to */
	struct evscope_window win; /* conversations with rows from cdr_seq on */
};
static struct node_engine **engines;
static size_t nengines;

static struct node_engine *node_engine(const char *node)
{
	for (size_t i = 0; i < nengines; i++)
		if (!strcmp(engines[i]->node, node))
			return engines[i];
	engines = xrealloc(engines, (nengines + 1) * sizeof *engines);
	struct node_engine *ne = xcalloc(1, sizeof *ne); /* stable address: the feed points at ne->cur */
	ne->node = xstrdup(node);
	evscope_window_init(&ne->win);
	engines[nengines++] = ne;
	return ne;
}

static void node_engine_drop(struct node_engine *ne)
{
	cdr_feed_free(ne->feed);
	ne->feed = NULL;
	evscope_window_release(&ne->win); /* rebuilt by the next engine's replay */
	evscope_window_init(&ne->win);
}

static void stuck_free(void);

/* The analytics of the batches, one behind the load (analyst.h), when
 * etl.analytics_overlap is on: started by the first batch that has
 * analytics, kept between passes, dropped after a failure (the next pass
 * connects again). */
static struct analyst *analyst;
static int analyst_on;
/* No second connection (connection limits, pg_hba): said once, tried again
 * after analyst_retry_at (clock_mono_s), on a doubling backoff. */
static double analyst_retry_at, analyst_backoff;
/* The node's analytics failed (a step's error): it stops there like a node
 * at corrupt data, and the other nodes load. */
static int analytics_failed;

void load_release(void)
{
	analyst_free(analyst);
	analyst = NULL;
	stuck_free();
	for (size_t i = 0; i < nengines; i++) {
		node_engine_drop(engines[i]);
		evscope_window_release(&engines[i]->win);
		free(engines[i]->node);
		free(engines[i]);
	}
	free(engines);
	engines = NULL;
	nengines = 0;
}

/* On a terminal: one line rewritten after every batch. */
static int show_progress;

static void progress_line(const char *node, const struct load_stats *st, double t0)
{
	double dt = clock_mono_s() - t0;
	fprintf(stderr, "\r%s: %" PRIu64 " events, %" PRIu64 " legs, %" PRIu64 " calls, %.0f events/s   ", node,
		st->events, st->legs, st->calls, dt > 0 ? (double)st->events / dt : 0.0);
	fflush(stderr);
}

/* Is a corrupt position one that 'cdrflow-etl skip' recorded? */
int load_recorded_skips(PGconn *c, const char *node, struct seg_pos **out, size_t *n, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	const char *v[1] = { node };
	PGresult *r = PQexecParams(c, "SELECT segno, seg_offset FROM etl_skip WHERE node = $1", 1, NULL, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		snprintf(err, errlen, "%s: etl_skip: %s", state ? state : "08000", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	int rows = PQntuples(r);
	if (rows) {
		*out = xcalloc((size_t)rows, sizeof **out);
		for (int i = 0; i < rows; i++) {
			(*out)[i].segno = strtoull(PQgetvalue(r, i, 0), NULL, 10);
			(*out)[i].offset = strtoull(PQgetvalue(r, i, 1), NULL, 10);
		}
	}
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

int load_after_byte_skip(PGconn *c, const char *node, struct seg_pos pos)
{
	char a[24], b[24];
	snprintf(a, sizeof a, "%" PRIu64, pos.segno);
	snprintf(b, sizeof b, "%" PRIu64, pos.offset);
	const char *v[3] = { node, a, b };
	PGresult *r = PQexecParams(c, "SELECT 1 FROM etl_skip WHERE node = $1 AND resume_segno = $2 AND resume_offset = $3 "
				      "AND records_lost IS NULL", 3, NULL, v, NULL, NULL, 0);
	int yes = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
	PQclear(r);
	return yes;
}

/*
 * The pipeline: a producer thread reads records and builds batch N+1 (COPY
 * rows, the CDR engine's legs and calls, the checkpoint it will commit)
 * while this thread sends batch N to PostgreSQL.  Two batch slots; the
 * producer owns the feed and the reader, the consumer only the connection.
 * Exactly-once is unchanged: a batch's rows and its checkpoint still commit
 * in one transaction, in order; if one fails, everything built after it is
 * thrown away with the engine, and the next run starts from the checkpoint.
 */
struct pipeline {
	const struct etl_config *cfg;
	const char *node, *dir;
	struct node_engine *ne;
	uint64_t written_upto;
	struct seg_pos load_pos; /* the load position after the last batch built */
	uint64_t last_seq;
	uint64_t stored_to; /* the largest seq of an event row of the node at the start */
	struct seg_reader r;
	struct seg_pos *skips;     /* positions passed by 'cdrflow-etl skip' (etl_skip) */
	size_t nskips;
	struct ami_parser p;
	struct batch slot[2];
	int ready[2];
	int prod_i, cons_i;
	int finished, stop;
	int rc;
	char err[1024];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct analyst_job job; /* a committed batch's hand-off, on its way to the analyst */
};

/* A lower bound of the seq of every event of the calls still open, whose
 * oldest event is at position tag `oldest` (UINT64_MAX: none open): the seq
 * of the last record read at or before it in this batch, else the bound of
 * the batch before (prev), which read it.  Seqs grow with positions. */
static uint64_t oldest_seq(const struct batch *b, uint64_t oldest, uint64_t prev)
{
	if (oldest == UINT64_MAX)
		return b->last_seq > prev ? b->last_seq : prev;
	size_t lo = 0, hi = b->nseqs; /* the first record after oldest */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->seqs[mid].tag <= oldest)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint64_t seq = lo ? b->seqs[lo - 1].seq : prev;
	return seq > prev ? seq : prev;
}

/* The tenants of the batch's event rows whose conversation has tenant legs
 * in the batch (evscope.h; the analytics step corrects the others). */
static void scope_rows(struct batch *b)
{
	struct buf *rows[EVSCOPE_STREAMS] = { &b->cel, &b->ami };
	evscope_apply(&b->scope, rows, b->win, &b->convs);
}

/* Build one batch into b; returns 0, or -1 when there was nothing to build. */
static int build_batch(struct pipeline *pl, struct batch *b)
{
	const struct etl_config *cfg = pl->cfg;
	struct node_engine *ne = pl->ne;
	buf_reset(&b->cel);
	buf_reset(&b->ami);
	buf_reset(&b->cdr);
	buf_reset(&b->call);
	buf_reset(&b->state);
	epstate_reset(&b->ep);
	evscope_reset(&b->scope);
	buf_reset(&b->convs);
	b->win = &ne->win;
	b->events = b->cel_rows = b->ami_rows = b->legs = b->calls = b->loaded = b->bytes = b->skips = 0;
	b->legs_until_us = 0;
	b->first_seq = 0;
	b->nmonths = 0;
	b->json_recs = 0;
	b->nseqs = 0;
	b->start = pl->load_pos;
	b->next = pl->r.pos;
	b->last_seq = pl->last_seq;
	b->written_upto = pl->written_upto;
	b->feed = ne->feed;
	ne->cur = b;
	enum seg_status s = SEG_OK;
	while (b->events < (uint64_t)cfg->batch_events) {
		s = seg_reader_next(&pl->r, &b->rec);
		if (s == SEG_CORRUPT && seg_pos_listed(pl->skips, pl->nskips, pl->r.pos)) {
			struct seg_pos at = pl->r.pos;
			uint64_t n = seg_reader_resync(&pl->r);
			log_warn("node %s: passing segment %" PRIu64 " offset %" PRIu64 " (%" PRIu64 " bytes) as "
				 "recorded by 'cdrflow-etl skip': %s", pl->node, at.segno, at.offset, n, pl->r.err);
			b->skips++;
			b->next = pl->r.pos;
			continue;
		}
		if (s != SEG_OK)
			break;
		b->replaying = seg_pos_before(b->rec.pos, b->load_from);
		if (b->rec.flags & SEG_FLAG_JSON) {
			on_json_record(b);
			b->json_recs = 1;
		} else if (ami_parser_feed_record(&pl->p, b->rec.data, b->rec.data_len, on_event, b) != 0 ||
		    ami_parser_pending(&pl->p)) {
			/* a stored record that is not one whole AMI message: keep going, say so */
			log_warn("node %s: record %" PRIu64 " at segment %" PRIu64 " offset %" PRIu64
				 " is not a complete AMI message", pl->node, b->rec.seq, b->rec.pos.segno,
				 b->rec.pos.offset);
		}
		b->events++;
		if (b->nseqs == b->seqs_cap) {
			b->seqs_cap = b->seqs_cap ? 2 * b->seqs_cap : 1024;
			b->seqs = xrealloc(b->seqs, b->seqs_cap * sizeof *b->seqs);
		}
		b->seqs[b->nseqs++] = (struct pos_seq){ pos_tag(b->rec.pos), b->rec.seq };
		if (!b->replaying) {
			if (!b->loaded)
				b->first_seq = b->rec.seq;
			b->loaded++;
			b->bytes += b->rec.data_len;
			b->last_seq = b->rec.seq;
		}
		b->next = b->rec.next;
	}
	if (s == SEG_CORRUPT || s == SEG_IOERR) {
		snprintf(pl->err, sizeof pl->err, "%s", pl->r.err);
		pl->rc = s == SEG_CORRUPT ? EXIT_DATAERR : EXIT_IOERR;
	}
	b->more = s == SEG_OK;
	if (!b->more) {
		/* caught up: run what waited for late twins, close lost calls */
		cdr_feed_flush(ne->feed, clock_real_us());
		uint64_t now = cdr_feed_stream_time(ne->feed);
		if (cfg->grace_ms && now > cfg->grace_ms * 1000u)
			cdr_feed_expire(ne->feed, now - cfg->grace_ms * 1000u);
	}
	/* legs whose call is still up: written now, their call_id set when it closes */
	legwait_flush(&b->wait, &b->cdr);
	legwait_reset(&b->wait);
	scope_rows(b);
	if (b->events == 0 && !b->legs && !b->calls && !b->skips)
		return -1;
	b->load_to = seg_pos_before(b->next, pl->load_pos) ? pl->load_pos : b->next;
	uint64_t oldest = cdr_feed_oldest_pos(ne->feed);
	b->cdr_to = oldest == UINT64_MAX ? b->next : tag_pos(oldest);
	b->cdr_seq = oldest_seq(b, oldest, ne->cdr_seq);
	ne->cdr_seq = b->cdr_seq;
	evscope_window_trim(&ne->win, b->cdr_seq);
	b->done_to = cdr_feed_done_stamp(ne->feed);
	if (b->json_recs && b->last_seq > b->done_to)
		b->done_to = b->last_seq; /* JSON records are whole legs: done as read */
	if (b->done_to < pl->written_upto)
		b->done_to = pl->written_upto;
	pl->load_pos = b->load_to;
	pl->last_seq = b->last_seq;
	if (b->doc)
		adoc_copy(b->doc_at, b->doc); /* told when the batch commits */
	return 0;
}

static void *producer(void *arg)
{
	struct pipeline *pl = arg;
	for (;;) {
		pthread_mutex_lock(&pl->mu);
		while (pl->ready[pl->prod_i] && !pl->stop)
			pthread_cond_wait(&pl->cv, &pl->mu);
		int stop = pl->stop;
		pthread_mutex_unlock(&pl->mu);
		if (stop)
			break;
		struct batch *b = &pl->slot[pl->prod_i];
		int built = build_batch(pl, b) == 0;
		pthread_mutex_lock(&pl->mu);
		if (built) {
			pl->ready[pl->prod_i] = 1;
			pl->prod_i ^= 1;
		}
		int done = !built || !b->more || pl->rc != EXIT_OK;
		if (done)
			pl->finished = 1;
		pthread_cond_broadcast(&pl->cv);
		pthread_mutex_unlock(&pl->mu);
		if (done)
			break;
	}
	pl->ne->cur = NULL;
	return NULL;
}

/* Months whose partitions this process created or found, so that a batch
 * asks PostgreSQL only about new ones.  A partition dropped behind our back
 * (retention) is not a problem: rows then go to the default partition. */
static int known_months[64];
static size_t nknown_months;

static int month_known(int ym)
{
	for (size_t i = 0; i < nknown_months; i++)
		if (known_months[i] == ym)
			return 1;
	return 0;
}

static void month_remember(int ym)
{
	if (month_known(ym))
		return;
	if (nknown_months == sizeof known_months / sizeof known_months[0])
		nknown_months = 0; /* forget; asking again is only slower */
	known_months[nknown_months++] = ym;
}

int load_register_sources(PGconn *c, const struct etl_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nsources; i++) {
		const char *v[2] = { cfg->sources[i].name, source_type_name(cfg->sources[i].type) };
		PGresult *r;
		if (pgc_exec_params(c, "INSERT INTO source_node (node, type) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE "
				       "SET type = excluded.type WHERE source_node.type IS DISTINCT FROM excluded.type",
				    2, v, &r, err, errlen) < 0)
			return -1;
		PQclear(r);
	}
	return 0;
}

/* BEGIN, with the session's batch tables (load.h). */
int load_begin(PGconn *c, char *err, size_t errlen)
{
	return pgc_exec(c, "BEGIN", err, errlen) < 0 ||
			       pgc_exec(c, "CREATE TEMP TABLE IF NOT EXISTS call_batch (LIKE call INCLUDING DEFAULTS) ON COMMIT "
					  "DELETE ROWS", err, errlen) < 0 ||
			       pgc_exec(c, "CREATE TEMP TABLE IF NOT EXISTS cdr_batch (LIKE cdr INCLUDING DEFAULTS) ON COMMIT "
					  "DELETE ROWS", err, errlen) < 0 ||
			       /* the batch's conversations, as evscope saw them (evscope.h, sql/0048) */
			       pgc_exec(c, "CREATE TEMP TABLE IF NOT EXISTS event_scope_batch (linkedid text, whole boolean, "
					  "legs integer) ON COMMIT DELETE ROWS", err, errlen) < 0 ||
			       /* the batch's endpoint-state changes (epstate.h, sql/0062) */
			       pgc_exec(c, "CREATE TEMP TABLE IF NOT EXISTS endpoint_event_batch (seq bigint, eventtime "
					  "timestamptz, kind text, endpoint text, detail text, state text, fields jsonb) ON "
					  "COMMIT DELETE ROWS", err, errlen) < 0
		       ? -1
		       : 0;
}

void load_months_committed(const int *pending, size_t n)
{
	for (size_t i = 0; i < n; i++)
		month_remember(pending[i]);
}

/* Rows of the batch tables stored by an earlier run are dropped from the
 * batch, with a warning, rather than failing every run from here on.  sql
 * deletes them and returns "count first". */
static int drop_stored(PGconn *c, const char *node, const char *what, const char *sql, int *dropped, char *err,
		       size_t errlen)
{
	char *dup = NULL;
	if (pgc_value(c, sql, &dup, err, errlen) < 0)
		return -1;
	if (dup && strncmp(dup, "0 ", 2)) {
		log_warn("node %s: %s %s were stored already; not written twice", node, dup, what);
		if (dropped)
			*dropped = 1;
	}
	free(dup);
	return 0;
}

/* The rows of a batch into the warehouse, inside its transaction (load.h). */
int load_store_rows(PGconn *c, const char *node, const struct buf *cel, const struct buf *ami, const struct buf *cdr,
		    const struct buf *call, uint64_t legs, uint64_t calls, const int *months, size_t nmonths, int *pending,
		    size_t *npending, int *dropped, char *err, size_t errlen)
{
	char sql[256];
	*npending = 0;
	if (dropped)
		*dropped = 0;
	for (size_t i = 0; i < nmonths; i++) {
		if (month_known(months[i]))
			continue;
		snprintf(sql, sizeof sql, "SELECT cdrflow_ensure_month('%04d-%02d-01 00:00:00+00')", months[i] / 100,
			 months[i] % 100);
		if (pgc_exec(c, sql, err, errlen) < 0)
			return -1;
		pending[(*npending)++] = months[i];
	}
	if ((cel && copy_in(c, OUT_CEL, cel, err, errlen) < 0) || (ami && copy_in(c, OUT_AMI, ami, err, errlen) < 0) ||
	    copy_in(c, OUT_CDR, cdr, err, errlen) < 0 || copy_in(c, OUT_CALL, call, err, errlen) < 0)
		return -1;
	/* legs and calls go through the batch tables the analytics steps read
	 * (what is stored already is found by key, each batch row a probe:
	 * sql/0054) */
	if (legs &&
	    /* a leg stored already (cdr_leg_once, 0014) is never written twice */
	    (drop_stored(c, node, "legs (count, first sequence)", "SELECT cdrflow_drop_stored_legs()", dropped, err,
			 errlen) < 0 ||
	     pgc_exec(c, "INSERT INTO cdr SELECT * FROM cdr_batch", err, errlen) < 0))
		return -1;
	/* on a distributed cdr (Citus, docs/scale-out.md) the trigger that
	 * registers every leg is gone: the loader registers its legs */
	if (legs) {
		char *trig = NULL;
		if (pgc_value(c, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'cdr'::regclass AND "
				 "tgname = 'cdr_leg_once')", &trig, err, errlen) < 0)
			return -1;
		int have_trigger = trig && !strcmp(trig, "t");
		free(trig);
		if (!have_trigger && pgc_exec(c, "INSERT INTO cdr_leg_once (node, sequence) SELECT node, sequence FROM "
						  "cdr_batch WHERE NOT imported AND sequence IS NOT NULL", err, errlen) < 0)
			return -1;
	}
	if (calls &&
	    /* nor a call (same node, call_id and start) */
	    (drop_stored(c, node, "calls (count, first call_id)", "SELECT cdrflow_drop_stored_calls()", dropped,
			 err, errlen) < 0 ||
	     pgc_exec(c, "INSERT INTO call SELECT * FROM call_batch", err, errlen) < 0))
		return -1;
	return 0;
}

int load_link_legs(PGconn *c, char *err, size_t errlen)
{
	return pgc_exec(c, "UPDATE cdr SET call_id = k.call_id FROM (SELECT call_id, node, unnest(linkedids) AS linkedid "
			   "FROM call_batch) k WHERE cdr.linkedid = k.linkedid AND cdr.node = k.node AND cdr.call_id IS NULL",
			err, errlen);
}

/* Send one built batch and its checkpoint in one transaction. */
void load_refresh_statistics(PGconn *c)
{
	char *v = NULL, err[512];
	if (pgc_value(c, "SELECT array_to_string(cdrflow_analyze_grown(), ', ')", &v, err, sizeof err) < 0)
		log_warn("cannot refresh the planner's statistics (the load goes on): %s", err);
	else if (v && *v)
		log_debug("analysed %s", v);
	free(v);
}

/* Hand a step the batch's rows of table, with the setting that says they
 * are the batch's (node seq_lo seq_hi). */
static int tell(PGconn *c, const char *table, const char *columns, const char *setting, const struct buf *rows,
		const char *node_lit, uint64_t seq_lo, uint64_t seq_hi, char *err, size_t errlen)
{
	char sql[512];
	if (copy_rows(c, table, columns, rows, err, errlen) < 0)
		return -1;
	snprintf(sql, sizeof sql, "SELECT set_config('%s', %s || ' %" PRIu64 " %" PRIu64 "', true)", setting, node_lit,
		 seq_lo, seq_hi);
	return pgc_exec(c, sql, err, errlen) < 0 ? -1 : 0;
}

/* The batch's conversations to the event scope step (sql/0048, 0079) and
 * its endpoint-state changes to fraud_state_step (sql/0062), each unless
 * NULL. */
static int tell_steps(PGconn *c, const char *node_lit, uint64_t seq_lo, uint64_t seq_hi, const struct buf *convs,
		      const struct buf *state, char *err, size_t errlen)
{
	if (convs && tell(c, "event_scope_batch", "linkedid, whole, legs", "cdrflow.event_scope_batch", convs, node_lit,
			  seq_lo, seq_hi, err, errlen) < 0)
		return -1;
	if (state && tell(c, "endpoint_event_batch", EPSTATE_COLUMNS, "cdrflow.endpoint_event_batch", state, node_lit,
			  seq_lo, seq_hi, err, errlen) < 0)
		return -1;
	return 0;
}

int load_handoff(PGconn *c, const char *node_lit, uint64_t seq_lo, uint64_t seq_hi, const struct buf *legs,
		 const struct buf *calls, const struct buf *convs, const struct buf *state, char *err, size_t errlen)
{
	if (copy_in(c, OUT_CDR, legs, err, errlen) < 0 || copy_in(c, OUT_CALL, calls, err, errlen) < 0)
		return -1;
	return tell_steps(c, node_lit, seq_lo, seq_hi, convs, state, err, errlen);
}

/* Which analytics steps are registered, and which of the batch hand-offs
 * they read: the event scope step's conversations (event_scope_batch) and
 * fraud_after_batch's endpoint-state changes (endpoint_event_batch).  Read
 * in the batch's transaction; a warehouse without them (analytics off) is
 * not sent their rows. */
static int handoffs_wanted(PGconn *c, bool *any, bool *scope, bool *state, char *err, size_t errlen)
{
	char *v = NULL;
	if (pgc_value(c,
		      "SELECT (count(*) > 0)::int || ' ' || coalesce(bool_or(fn = 'cdrflow_event_scope_step'), false)::int "
		      "|| ' ' || coalesce(bool_or(fn = 'fraud_after_batch'), false)::int FROM analytics_step",
		      &v, err, errlen) < 0)
		return -1;
	int an = 1, sc = 1, st = 1;
	if (!v || sscanf(v, "%d %d %d", &an, &sc, &st) != 3)
		an = sc = st = 1; /* cannot tell: hand everything over, as before */
	free(v);
	*any = an != 0;
	*scope = sc != 0;
	*state = st != 0;
	return 0;
}

static int analyst_ready(PGconn *c, char *err, size_t errlen)
{
	if (!analyst && !(analyst = analyst_new(c, err, errlen)))
		return -1;
	return 0;
}

/* Wait for the analytics of the batch before; a failure drops the analyst
 * and fails the caller (its transaction rolls back: nothing is lost, the
 * batch left pending is analysed first by the next pass). */
static int analyst_caught_up(char *err, size_t errlen)
{
	double t0 = clock_mono_s();
	int r = analyst ? analyst_wait(analyst, err, errlen) : 0;
	if (r == 0) {
		if (analyst)
			log_debug("waited %.3f s for the analytics of the batch before", clock_mono_s() - t0);
		return 0;
	}
	if (r == ANALYST_FAILED)
		analytics_failed = 1;
	analyst_free(analyst);
	analyst = NULL;
	return -1;
}

/* The pipeline's job only ever points at buffers a batch or the analyst
 * owns: forget them. */
static void job_unlend(struct analyst_job *j)
{
	buf_init(&j->legs, 0);
	buf_init(&j->calls, 0);
	buf_init(&j->convs, 0);
	buf_init(&j->state, 0);
}

/* Send one built batch and its checkpoint in one transaction; its
 * analytics in it too, or (etl.analytics_overlap) handed to the analyst
 * once it commits. */
static int commit_batch(PGconn *c, struct pipeline *pl, struct batch *b, char *err, size_t errlen)
{
	char sql[2048];
	char *v = NULL;
	int pending_months[LOAD_MONTHS];
	size_t npending = 0;
	if (load_begin(c, err, errlen) < 0)
		return -1;
	char *esc = PQescapeLiteral(c, pl->node, strlen(pl->node));
	if (!esc) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		return -1;
	}
	/* the checkpoint is where this batch starts: nobody else moved it */
	snprintf(sql, sizeof sql,
		 "SELECT segno || ' ' || seg_offset || ' ' || last_seq || ' ' || cdr_seq FROM etl_checkpoint WHERE "
		 "node = %s FOR UPDATE",
		 esc);
	if (pgc_value(c, sql, &v, err, errlen) < 0)
		goto fail;
	struct seg_pos at = { 0, 0 };
	uint64_t seq_lo = 0, scope_from = 0;
	if (v && sscanf(v, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &at.segno, &at.offset, &seq_lo,
			&scope_from) != 4)
		at.segno = UINT64_MAX;
	free(v);
	if (at.segno != b->start.segno || at.offset != b->start.offset) {
		snprintf(err, errlen, "XX000: node %s: the checkpoint moved under this run (another loader?)", pl->node);
		goto fail;
	}
	/* a new month's partitions are DDL on the tables the analytics read:
	 * never while they run (they would wait for this transaction, and it
	 * for them) */
	for (size_t i = 0; i < b->nmonths; i++)
		if (!month_known(b->months[i]) && analyst_caught_up(err, errlen) < 0)
			goto fail;
	bool want_any, want_scope, want_state;
	int dropped = 0;
	if (load_store_rows(c, pl->node, &b->cel, &b->ami, &b->cdr, &b->call, b->legs, b->calls, b->months, b->nmonths,
			    pending_months, &npending, &dropped, err, errlen) < 0 ||
	    handoffs_wanted(c, &want_any, &want_scope, &want_state, err, errlen) < 0)
		goto fail;
	/* legs written before their call closed (legwait.h) learn it now: an
	 * UPDATE of rows committed before, which an analytics step of the
	 * batch before may write too (it would wait for this transaction, and
	 * this transaction for it): after those analytics */
	if (b->calls && (analyst_caught_up(err, errlen) < 0 || load_link_legs(c, err, errlen) < 0))
		goto fail;
	/* the event scope step is told nothing while rows an earlier run
	 * stored lie beyond the checkpoint: it reads them */
	bool told_scope = want_scope && seq_lo >= pl->stored_to;
	/* the hand-off is the batch's bytes unless rows stored already were
	 * dropped from the batch tables: then this transaction analyses */
	bool overlap = analyst_on && want_any && !dropped;
	if (overlap && analyst_ready(c, err, errlen) < 0) {
		/* no second connection (connection limits, pg_hba): as before,
		 * and tried again later (said once) */
		if (!analyst_backoff)
			log_warn("cannot open the analytics connection, so each batch is analysed in its own "
				 "transaction until it opens: %s", err);
		analyst_backoff = analyst_backoff ? (analyst_backoff < 1800 ? analyst_backoff * 2 : 3600) : 60;
		analyst_retry_at = clock_mono_s() + analyst_backoff;
		analyst_on = 0;
		overlap = false;
	} else if (overlap && analyst_backoff) {
		log_info("the analytics connection opened: batches are analysed beside the load again");
		analyst_backoff = 0;
	}
	if (overlap) {
		struct analyst_job *j = &pl->job;
		snprintf(j->node, sizeof j->node, "%s", pl->node);
		j->seq_lo = seq_lo;
		j->seq_hi = b->last_seq;
		j->scope_from = scope_from;
		j->told_scope = told_scope;
		j->told_state = want_state;
		/* the batch's buffers, lent (analyst_submit swaps them out) */
		j->legs = b->cdr;
		j->calls = b->call;
		j->convs = b->convs;
		j->state = b->state;
		if (analyst_store(c, j, err, errlen) < 0)
			goto fail;
	} else {
		/* in order: the analytics of the batch before first */
		if (analyst_caught_up(err, errlen) < 0 ||
		    tell_steps(c, esc, seq_lo, b->last_seq, told_scope ? &b->convs : NULL, want_state ? &b->state : NULL,
			       err, errlen) < 0)
			goto fail;
		snprintf(sql, sizeof sql, "SELECT cdrflow_after_batch(%s, %" PRIu64 ", %" PRIu64 ")", esc, seq_lo,
			 b->last_seq);
		if (pgc_exec(c, sql, err, errlen) < 0) {
			if (PQstatus(c) == CONNECTION_OK) {
				analyst_failure_message(err, errlen, pl->node, seq_lo, b->last_seq, 0);
				analytics_failed = 1;
			}
			goto fail;
		}
	}
	/* a new node's stored input caveats end where its load begins (0066):
	 * before the record of sequence caveat_seq + 1 */
	/* and the end of its latest leg (0081: what cdrflow_loaded_until reads) */
	char until[96] = "NULL";
	if (b->legs_until_us)
		snprintf(until, sizeof until, "timestamptz 'epoch' + %" PRId64 " * interval '1 microsecond'",
			 b->legs_until_us);
	snprintf(sql, sizeof sql,
		 "INSERT INTO etl_checkpoint (node, segno, seg_offset, last_seq, events, cdr_segno, cdr_offset, "
		 "cdr_done_seq, cdr_seq, caveat_segno, caveat_offset, caveat_seq, legs_until) VALUES (%s, %" PRIu64
		 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
		 ", %" PRIu64 ", %" PRIu64 ", %s) ON CONFLICT (node) DO UPDATE SET segno = excluded.segno, "
		 "seg_offset = excluded.seg_offset, last_seq = excluded.last_seq, events = etl_checkpoint.events + "
		 "excluded.events, cdr_segno = excluded.cdr_segno, cdr_offset = excluded.cdr_offset, cdr_done_seq = "
		 "excluded.cdr_done_seq, cdr_seq = excluded.cdr_seq, updated_at = excluded.updated_at, legs_until = "
		 "greatest(etl_checkpoint.legs_until, excluded.legs_until)",
		 esc, b->load_to.segno, b->load_to.offset, b->last_seq, b->loaded, b->cdr_to.segno, b->cdr_to.offset,
		 b->done_to, b->cdr_seq, b->start.segno, b->start.offset, b->first_seq ? b->first_seq - 1 : b->last_seq,
		 until);
	/* the batch before has its analytics committed before this one commits */
	if (pgc_exec(c, sql, err, errlen) < 0 || analyst_caught_up(err, errlen) < 0 ||
	    pgc_exec(c, "COMMIT", err, errlen) < 0)
		goto fail;
	/* the partitions exist now (committed): no need to ask again */
	for (size_t i = 0; i < npending; i++)
		month_remember(pending_months[i]);
	PQfreemem(esc);
	load_refresh_statistics(c);
	if (overlap) {
		struct analyst_job *j = &pl->job;
		analyst_submit(analyst, j);
		/* the batch gets the buffers the analyst gave back */
		b->cdr = j->legs;
		b->call = j->calls;
		b->convs = j->convs;
		b->state = j->state;
		job_unlend(j);
	}
	return 0;
fail:
	PQfreemem(esc);
	job_unlend(&pl->job);
	{
		char ignored[256];
		pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
	}
	return -1;
}

/* One node: batches until the segments have nothing more. */
static int load_node(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, const struct load_doctor *dr,
		     const char *node, struct load_stats *st, char *err, size_t errlen)
{
	double t0 = clock_mono_s();
	struct node_engine *ne = node_engine(node);
	/* where to start: the checkpoint (we hold the load lock: it stays put) */
	char sql[512], *v = NULL;
	char *esc = PQescapeLiteral(c, node, strlen(node));
	if (!esc) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		return pgc_error_exit(c, err);
	}
	snprintf(sql, sizeof sql,
		 "SELECT segno || ' ' || seg_offset || ' ' || last_seq || ' ' || cdr_segno || ' ' || cdr_offset "
		 "|| ' ' || cdr_done_seq || ' ' || cdr_seq FROM etl_checkpoint WHERE node = %s", esc);
	if (pgc_value(c, sql, &v, err, errlen) < 0) {
		PQfreemem(esc);
		return pgc_error_exit(c, err);
	}
	/* event rows beyond the checkpoint (stored by an earlier run): none,
	 * unless it was moved back; until the batches pass them the event scope
	 * step reads the batch's linkedids itself (scope_tell) */
	char *stored = NULL;
	snprintf(sql, sizeof sql,
		 "SELECT greatest((SELECT max(seq) FROM cel WHERE node = %s), (SELECT max(seq) FROM ami_event "
		 "WHERE node = %s))", esc, esc);
	PQfreemem(esc);
	if (pgc_value(c, sql, &stored, err, errlen) < 0) {
		free(v);
		return pgc_error_exit(c, err);
	}
	uint64_t stored_to = stored ? strtoull(stored, NULL, 10) : 0;
	free(stored);
	struct seg_pos pos = { 0, 0 }, cdr_pos = { 0, 0 };
	uint64_t last_seq = 0, done_seq = 0, cdr_seq = 0;
	if (v && sscanf(v, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
			&pos.segno, &pos.offset, &last_seq, &cdr_pos.segno, &cdr_pos.offset, &done_seq, &cdr_seq) != 7) {
		snprintf(err, errlen, "bad etl_checkpoint row for node %s: \"%s\"", node, v);
		free(v);
		return EXIT_DATAERR;
	}
	free(v);

	struct pipeline *pl = xcalloc(1, sizeof *pl);
	pl->cfg = cfg;
	pl->node = node;
	char *dir = xasprintf("%s/%s", cfg->spool, node);
	pl->dir = dir;
	pl->ne = ne;
	pl->written_upto = done_seq;
	pl->load_pos = pos;
	pl->last_seq = last_seq;
	pl->stored_to = stored_to;
	pl->rc = EXIT_OK;
	if (load_recorded_skips(c, node, &pl->skips, &pl->nskips, err, errlen) < 0) {
		int e = pgc_error_exit(c, err);
		free(pl);
		free(dir);
		return e;
	}
	/* a fresh engine re-reads the open calls' events first (rows they
	 * finished before done_seq are not written twice) */
	struct seg_pos from;
	if (!ne->feed) {
		struct cdr_options o = etl_cdr_options(cfg);
		struct cdr_feed_sink sink = { on_leg, on_call, &ne->cur, on_clock, on_classify };
		ne->feed = cdr_feed_new(&o, &sink);
		ne->cdr_seq = cdr_seq;
		from = seg_pos_before(cdr_pos, pos) ? cdr_pos : pos;
	} else {
		from = ne->next;
	}
	seg_reader_open(&pl->r, dir, from);
	/* sequences are contiguous: the first new record follows last_seq (a
	 * re-read from further back learns it from the first record it reads) */
	if (seg_pos_equal(from, pos) && last_seq &&
	    !load_after_byte_skip(c, node, pos))
		pl->r.expect_seq = last_seq + 1;
	framing_init(&pl->p);
	/* the doctor continues from what is committed: a copy, fed by the producer */
	struct amidoctor *committed = dr ? dr->node(dr->arg, node) : NULL;
	struct amidoctor *doc = committed ? adoc_dup(committed) : NULL;
	for (int i = 0; i < 2; i++) {
		batch_init(&pl->slot[i], cfg, node);
		pl->slot[i].lc = lc;
		pl->slot[i].load_from = pos;
		pl->slot[i].doc = doc;
		pl->slot[i].doc_at = doc ? adoc_new() : NULL;
	}
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->cv, NULL);
	pthread_t th;
	int rc = EXIT_OK;
	if (pthread_create(&th, NULL, producer, pl) != 0) {
		snprintf(err, errlen, "cannot start the producer thread");
		rc = EXIT_SOFTWARE;
		goto out;
	}
	for (;;) {
		pthread_mutex_lock(&pl->mu);
		while (!pl->ready[pl->cons_i] && !pl->finished)
			pthread_cond_wait(&pl->cv, &pl->mu);
		int have = pl->ready[pl->cons_i];
		pthread_mutex_unlock(&pl->mu);
		if (!have || load_stop_requested)
			break;
		struct batch *b = &pl->slot[pl->cons_i];
		if (commit_batch(c, pl, b, err, errlen) < 0) {
			rc = pgc_error_exit(c, err);
			break;
		}
		ne->next = b->next;
		if (doc)
			dr->committed(dr->arg, node, b->doc_at, b->loaded, b->load_to);
		st->events += b->loaded;
		st->bytes += b->bytes;
		st->cel_rows += b->cel_rows;
		st->ami_rows += b->ami_rows;
		st->legs += b->legs;
		st->calls += b->calls;
		st->batches++;
		if (show_progress)
			progress_line(node, st, t0);
		log_debug("node %s: committed %" PRIu64 " events up to segment %" PRIu64 " offset %" PRIu64
			  ", %" PRIu64 " legs, %" PRIu64 " calls", node, b->loaded, b->load_to.segno, b->load_to.offset,
			  b->legs, b->calls);
		pthread_mutex_lock(&pl->mu);
		pl->ready[pl->cons_i] = 0;
		pl->cons_i ^= 1;
		pthread_cond_broadcast(&pl->cv);
		pthread_mutex_unlock(&pl->mu);
	}
	/* the node's last batch has its analytics committed when its load ends */
	{
		char aerr[1024];
		if (analyst_caught_up(aerr, sizeof aerr) < 0 && rc == EXIT_OK) {
			snprintf(err, errlen, "%s", aerr);
			rc = pgc_error_exit(c, err);
		}
	}
	pthread_mutex_lock(&pl->mu);
	int built_unsent = pl->ready[0] || pl->ready[1];
	pl->stop = 1;
	pthread_cond_broadcast(&pl->cv);
	pthread_mutex_unlock(&pl->mu);
	pthread_join(th, NULL);
	if (rc == EXIT_OK && pl->rc != EXIT_OK) {
		rc = pl->rc;
		snprintf(err, errlen, "%s", pl->err);
	}
	/* an engine that ran ahead of what is committed cannot be kept */
	if (rc != EXIT_OK || built_unsent || pl->ready[0] || pl->ready[1] || !pl->finished)
		node_engine_drop(ne);
out:
	seg_reader_close(&pl->r);
	ami_parser_release(&pl->p);
	for (int i = 0; i < 2; i++)
		batch_release(&pl->slot[i]);
	pthread_mutex_destroy(&pl->mu);
	pthread_cond_destroy(&pl->cv);
	free(pl->skips);
	free(pl);
	free(dir);
	adoc_free(doc);
	return rc;
}

static int flush_copy(struct batch *b, FILE *const out[N_OUT], char *err, size_t errlen)
{
	scope_rows(b);
	struct buf *bufs[N_OUT] = { &b->cel, &b->ami, &b->cdr, &b->call };
	for (int i = 0; i < N_OUT; i++) {
		if (out[i] && fwrite(bufs[i]->data, 1, bufs[i]->len, out[i]) != bufs[i]->len) {
			snprintf(err, errlen, "cannot write COPY output: %s", strerror(errno));
			return EXIT_IOERR;
		}
		buf_reset(bufs[i]);
	}
	return EXIT_OK;
}

/* The transform alone, for measuring: every record of a node into COPY rows,
 * no database.  Rows go to the out files when given, else are dropped. */
static int transform_node(const struct etl_config *cfg, const struct legclass *lc, const char *node,
			  FILE *const out[N_OUT], struct load_stats *st, char *err, size_t errlen)
{
	char *dir = xasprintf("%s/%s", cfg->spool, node);
	struct ami_parser p;
	struct batch b;
	framing_init(&p);
	batch_init(&b, cfg, node);
	/* the CDR engine too, so the measure is the whole transform */
	struct cdr_options o = etl_cdr_options(cfg);
	struct batch *cur = &b;
	struct cdr_feed_sink sink = { on_leg, on_call, &cur, on_clock, on_classify };
	b.feed = cdr_feed_new(&o, &sink);
	b.lc = lc;
	struct seg_reader r;
	seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
	enum seg_status s;
	int rc = EXIT_OK;
	while ((s = seg_reader_next(&r, &b.rec)) == SEG_OK) {
		if (b.rec.flags & SEG_FLAG_JSON) {
			on_json_record(&b);
		} else {
			(void)ami_parser_feed_record(&p, b.rec.data, b.rec.data_len, on_event, &b);
		}
		st->events++;
		st->bytes += b.rec.data_len;
		if (b.cel.len + b.ami.len + b.cdr.len + b.call.len >= (4u << 20) &&
		    (rc = flush_copy(&b, out, err, errlen)) != EXIT_OK)
			break;
	}
	cdr_feed_flush(b.feed, UINT64_MAX);
	legwait_flush(&b.wait, &b.cdr);
	if (rc == EXIT_OK && (s == SEG_CORRUPT || s == SEG_IOERR)) {
		snprintf(err, errlen, "%s", r.err);
		rc = s == SEG_CORRUPT ? EXIT_DATAERR : EXIT_IOERR;
	}
	if (rc == EXIT_OK)
		rc = flush_copy(&b, out, err, errlen);
	st->cel_rows += b.cel_rows;
	st->ami_rows += b.ami_rows;
	st->legs += b.legs;
	st->calls += b.calls;
	seg_reader_close(&r);
	cdr_feed_free(b.feed);
	batch_release(&b);
	ami_parser_release(&p);
	free(dir);
	return rc;
}

int transform_only(const struct etl_config *cfg, const struct legclass *lc, const char *copy_dir, struct load_stats *st,
		   char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	char **nodes;
	size_t n;
	if (seg_list_nodes(cfg->spool, &nodes, &n, err, errlen) < 0)
		return EXIT_NOINPUT;
	FILE *out[N_OUT] = { NULL };
	int rc = EXIT_OK;
	for (int i = 0; copy_dir && i < N_OUT && rc == EXIT_OK; i++) {
		char *path = xasprintf("%s/%s.copy", copy_dir, copy_names[i]);
		char *cols = xasprintf("%s/%s.columns", copy_dir, copy_names[i]);
		FILE *f = fopen(cols, "w");
		int ok = f && fprintf(f, "%s\n", copy_columns[i]) >= 0;
		if (f && fclose(f) != 0)
			ok = 0;
		if (!ok)
			snprintf(err, errlen, "cannot write \"%s\": %s", cols, strerror(errno));
		else if (!(out[i] = fopen(path, "wb")))
			snprintf(err, errlen, "cannot create \"%s\": %s", path, strerror(errno));
		if (!ok || !out[i])
			rc = EXIT_CANTCREAT;
		free(cols);
		free(path);
	}
	for (size_t i = 0; i < n; i++) {
		if (rc == EXIT_OK)
			rc = transform_node(cfg, lc, nodes[i], out, st, err, errlen);
		free(nodes[i]);
	}
	free(nodes);
	for (int i = 0; i < N_OUT; i++)
		if (out[i] && fclose(out[i]) != 0 && rc == EXIT_OK)
			rc = EXIT_IOERR;
	return rc;
}

/* What the node's engine had to write without knowing (cdr_feed_caveat):
 * a warning the first time in this process, and a row in input_caveat for
 * the period of the legs concerned, next to the doctor's (0015). */
static void feed_caveats_report(PGconn *c, const char *node)
{
	struct node_engine *ne = NULL;
	for (size_t i = 0; i < nengines; i++)
		if (!strcmp(engines[i]->node, node))
			ne = engines[i];
	if (!ne || !ne->feed)
		return;
	for (int k = 0; k < CAVEAT_N; k++) {
		const struct cdr_feed_caveat *cv = cdr_feed_caveat(ne->feed, (enum cdr_caveat)k);
		if (cv->count <= ne->caveats_told[k])
			continue;
		const char *text = cdr_feed_caveat_text((enum cdr_caveat)k);
		if (!ne->caveats_told[k]) {
			char line[512];
			cdr_feed_caveat_line(ne->feed, (enum cdr_caveat)k, node, line, sizeof line);
			log_warn("%s", line);
		}
		char first[40], last[40], n[24], *ex = NULL;
		snprintf(first, sizeof first, "%" PRIu64, cv->first_us);
		snprintf(last, sizeof last, "%" PRIu64, cv->last_us);
		snprintf(n, sizeof n, "%" PRIu64, cv->count);
		ex = xasprintf("%s leg(s) so far, e.g. %s", n, cv->example);
		const char *params[7] = { node, cdr_feed_caveat_key((enum cdr_caveat)k),
					  cdr_feed_caveat_ami_name((enum cdr_caveat)k), first, last, text, ex };
		PGresult *r = PQexecParams(c,
					   "INSERT INTO input_caveat (node, input, ami_name, affects_rows, period_start, "
					   "period_end, caveat, evidence, restore) VALUES ($1, $2, $3, true, "
					   "to_timestamp($4::bigint / 1e6), to_timestamp($5::bigint / 1e6), $6, $7, "
					   "'Originate with Async: true')",
					   7, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			log_warn("node %s: cannot store the caveat: %s", node, PQresultErrorMessage(r));
		PQclear(r);
		free(ex);
		ne->caveats_told[k] = cv->count;
	}
}

/* Nodes stopped at corrupt data or at failing analytics, and the message
 * last logged for each: logged once per change, so a --follow pass does
 * not repeat it. */
static struct stuck {
	char *node, *err;
} *stuck_nodes;
static size_t nstuck;

static void stuck_note(const char *node, const char *err)
{
	for (size_t i = 0; i < nstuck; i++) {
		if (strcmp(stuck_nodes[i].node, node))
			continue;
		if (err && !strcmp(stuck_nodes[i].err, err))
			return; /* said already */
		free(stuck_nodes[i].err);
		if (!err) {
			log_info("node %s: loading again", node);
			free(stuck_nodes[i].node);
			stuck_nodes[i] = stuck_nodes[--nstuck];
			return;
		}
		stuck_nodes[i].err = xstrdup(err);
		log_error("node %s: stopped: %s", node, err);
		return;
	}
	if (!err)
		return;
	stuck_nodes = xrealloc(stuck_nodes, (nstuck + 1) * sizeof *stuck_nodes);
	stuck_nodes[nstuck].node = xstrdup(node);
	stuck_nodes[nstuck].err = xstrdup(err);
	nstuck++;
	log_error("node %s: stopped: %s", node, err);
}

static void stuck_free(void)
{
	for (size_t i = 0; i < nstuck; i++) {
		free(stuck_nodes[i].node);
		free(stuck_nodes[i].err);
	}
	free(stuck_nodes);
	stuck_nodes = NULL;
	nstuck = 0;
}

/* node's batches of etl_analytics_pending, analysed on the analyst's
 * connection (whatever etl.analytics_overlap says now).  0, or -1 with err
 * (analytics_failed set when a step failed). */
static int analyse_pending(PGconn *c, const char *node, char *err, size_t errlen)
{
	size_t n = 0;
	if (analyst_ready(c, err, errlen) < 0) {
		/* what the exit codes read: retry later */
		char why[768];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "08006: node %s: a batch's analytics are pending, and the analytics connection "
			 "does not open: %s", node, why);
		return -1;
	}
	int r = analyst_recover(analyst, node, &n, err, errlen);
	if (r < 0) {
		if (r == ANALYST_FAILED)
			analytics_failed = 1;
		analyst_free(analyst);
		analyst = NULL;
		return -1;
	}
	log_info("node %s: analysed %zu batch(es) an earlier run had loaded", node, n);
	return 0;
}

/* The nodes with batches in etl_analytics_pending, one per line in *out
 * (NULL when none). */
static int pending_nodes(PGconn *c, char **out, char *err, size_t errlen)
{
	return pgc_value(c, "SELECT string_agg(DISTINCT node, E'\\n') FROM etl_analytics_pending", out, err, errlen);
}

/* The line at *p (of lines joined by '\n'), its length in *len, and *p
 * moved past it; NULL after the last. */
static const char *next_line(const char **p, size_t *len)
{
	const char *s = *p;
	if (!s || !*s)
		return NULL;
	const char *e = strchr(s, '\n');
	*len = e ? (size_t)(e - s) : strlen(s);
	*p = e ? e + 1 : s + *len;
	return s;
}

static int listed(const char *lines, const char *node)
{
	size_t n = strlen(node), len;
	for (const char *p = lines, *s; (s = next_line(&p, &len));)
		if (len == n && !memcmp(s, node, n))
			return 1;
	return 0;
}

/* One node's pass: the analytics an earlier run left pending, then the
 * load.  EXIT_DATAERR when it stopped at corrupt data or failing analytics
 * (*analytics says which). */
static int node_pass(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, const struct load_doctor *doc,
		     const char *node, int in_spool, const char *pending, struct load_stats *st, int *analytics,
		     char *err, size_t errlen)
{
	analytics_failed = 0;
	int r = EXIT_OK;
	if (listed(pending, node) && analyse_pending(c, node, err, errlen) < 0)
		r = pgc_error_exit(c, err);
	else if (in_spool)
		r = load_node(c, cfg, lc, doc, node, st, err, errlen);
	*analytics = analytics_failed && r == EXIT_DATAERR;
	return r;
}

int load_once(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, const struct load_doctor *doc,
	      int progress, struct load_stats *st, char *err, size_t errlen)
{
	show_progress = progress;
	memset(st, 0, sizeof *st);
	analyst_on = cfg->analytics_overlap && clock_mono_s() >= analyst_retry_at;
	/* batches whose analytics an earlier run did not commit come first,
	 * each before its node loads on */
	char *pending = NULL;
	if (pending_nodes(c, &pending, err, errlen) < 0)
		return pgc_error_exit(c, err);
	char **nodes = NULL;
	size_t n = 0;
	if (seg_list_nodes(cfg->spool, &nodes, &n, err, errlen) < 0) {
		if (!pending)
			return EXIT_NOINPUT;
		n = 0;
	}
	/* and the nodes whose spool is gone, with a batch still pending */
	size_t in_spool = n, len;
	for (const char *p = pending, *s; (s = next_line(&p, &len));) {
		char *name = xstrndup(s, len);
		int known = 0;
		for (size_t i = 0; i < in_spool && !known; i++)
			known = !strcmp(nodes[i], name);
		if (known) {
			free(name);
		} else {
			nodes = xrealloc(nodes, (n + 1) * sizeof *nodes);
			nodes[n++] = name;
		}
	}
	int rc = EXIT_OK;
	size_t stuck = 0, stuck_analytics = 0;
	char first[256] = "";
	for (size_t i = 0; i < n; i++) {
		if (rc == EXIT_OK || rc == EXIT_DATAERR) {
			/* corrupt data or failing analytics stop their own node
			 * only: the others load */
			int analytics = 0;
			int r = node_pass(c, cfg, lc, doc, nodes[i], i < in_spool, pending, st, &analytics, err, errlen);
			feed_caveats_report(c, nodes[i]);
			if (r == EXIT_DATAERR) {
				if (!stuck++)
					snprintf(first, sizeof first, "%s", nodes[i]);
				stuck_analytics += analytics;
				stuck_note(nodes[i], err);
				rc = EXIT_DATAERR;
			} else {
				if (r == EXIT_OK)
					stuck_note(nodes[i], NULL);
				if (r != EXIT_OK)
					rc = r;
			}
		}
		free(nodes[i]);
	}
	free(nodes);
	free(pending);
	if (show_progress && st->batches)
		fputc('\n', stderr);
	if (rc == EXIT_DATAERR && !stuck_analytics)
		snprintf(err, errlen, "%zu node(s) stopped at corrupt data (first: %s), logged above; the other nodes "
			 "loaded. See 'cdrflow-etl skip' in etl.md", stuck, first);
	else if (rc == EXIT_DATAERR && stuck_analytics == stuck)
		snprintf(err, errlen, "%zu node(s) stopped at failing analytics (first: %s), logged above; the other "
			 "nodes loaded. Their batches are not lost: mend the failing step and run again", stuck, first);
	else if (rc == EXIT_DATAERR)
		snprintf(err, errlen, "%zu node(s) stopped (first: %s), logged above: %zu at corrupt data (see "
			 "'cdrflow-etl skip' in etl.md), %zu at failing analytics (mend the step and run again); the other "
			 "nodes loaded", stuck, first, stuck - stuck_analytics, stuck_analytics);
	return rc;
}

int load_skip(PGconn *c, const struct etl_config *cfg, const char *node, struct seg_pos at, FILE *out, char *err,
	      size_t errlen)
{
	char sql[512], *v = NULL;
	char *esc = PQescapeLiteral(c, node, strlen(node));
	if (!esc) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		return pgc_error_exit(c, err);
	}
	snprintf(sql, sizeof sql, "SELECT segno || ' ' || seg_offset || ' ' || last_seq FROM etl_checkpoint WHERE node = %s",
		 esc);
	PQfreemem(esc);
	if (pgc_value(c, sql, &v, err, errlen) < 0)
		return pgc_error_exit(c, err);
	struct seg_pos pos = { 0, 0 };
	uint64_t last_seq = 0;
	if (v && sscanf(v, "%" SCNu64 " %" SCNu64 " %" SCNu64, &pos.segno, &pos.offset, &last_seq) != 3) {
		snprintf(err, errlen, "bad etl_checkpoint row for node %s: \"%s\"", node, v);
		free(v);
		return EXIT_DATAERR;
	}
	free(v);
	struct seg_pos *skips;
	size_t nskips;
	if (load_recorded_skips(c, node, &skips, &nskips, err, errlen) < 0)
		return pgc_error_exit(c, err);
	if (seg_pos_listed(skips, nskips, at)) {
		fprintf(out, "skip: node %s segment %" PRIu64 " offset %" PRIu64 " is recorded already\n", node, at.segno,
			at.offset);
		free(skips);
		return EXIT_OK;
	}
	if (seg_pos_before(at, pos)) {
		snprintf(err, errlen, "node %s: segment %" PRIu64 " offset %" PRIu64 " is before the checkpoint (segment %"
			 PRIu64 " offset %" PRIu64 "): it was loaded already", node, at.segno, at.offset, pos.segno,
			 pos.offset);
		free(skips);
		return EXIT_USAGE;
	}
	/* read from the checkpoint as the loader does: the first corrupt
	 * position not skipped yet must be the one given */
	char *dir = xasprintf("%s/%s", cfg->spool, node);
	struct seg_reader r;
	struct seg_record rec;
	seg_reader_open(&r, dir, pos);
	if (last_seq && !load_after_byte_skip(c, node, pos))
		r.expect_seq = last_seq + 1;
	int rc = EXIT_OK;
	enum seg_status s;
	for (;;) {
		s = seg_reader_next(&r, &rec);
		if (s == SEG_OK) {
			if (seg_pos_before(at, rec.next)) {
				snprintf(err, errlen, "node %s: segment %" PRIu64 " offset %" PRIu64 " is not where the reader "
					 "stops: the record at segment %" PRIu64 " offset %" PRIu64 " is valid", node, at.segno,
					 at.offset, rec.pos.segno, rec.pos.offset);
				rc = EXIT_USAGE;
				break;
			}
			continue;
		}
		if (s == SEG_CORRUPT && seg_pos_equal(r.pos, at))
			break;
		if (s == SEG_CORRUPT && seg_pos_listed(skips, nskips, r.pos)) {
			seg_reader_resync(&r);
			continue;
		}
		if (s == SEG_CORRUPT) {
			snprintf(err, errlen, "node %s: the first corrupt position after the checkpoint is segment %" PRIu64
				 " offset %" PRIu64 " (%s), not segment %" PRIu64 " offset %" PRIu64, node, r.pos.segno,
				 r.pos.offset, r.err, at.segno, at.offset);
			rc = EXIT_USAGE;
		} else if (s == SEG_IOERR) {
			snprintf(err, errlen, "%s", r.err);
			rc = EXIT_IOERR;
		} else {
			snprintf(err, errlen, "node %s: the reader reaches the end of the spool without corrupt data at "
				 "segment %" PRIu64 " offset %" PRIu64, node, at.segno, at.offset);
			rc = EXIT_USAGE;
		}
		break;
	}
	free(skips);
	if (rc != EXIT_OK) {
		seg_reader_close(&r);
		free(dir);
		return rc;
	}
	char reason[sizeof r.err];
	snprintf(reason, sizeof reason, "%s", r.err);
	int gap = r.gap_pending;
	uint64_t bytes = seg_reader_resync(&r);
	uint64_t lost = r.lost_records;
	struct seg_pos resume = r.pos;
	seg_reader_close(&r);
	free(dir);
	char a[24], b[24], d[24], e[24], f[24], g[24];
	snprintf(a, sizeof a, "%" PRIu64, at.segno);
	snprintf(b, sizeof b, "%" PRIu64, at.offset);
	snprintf(d, sizeof d, "%" PRIu64, bytes);
	snprintf(e, sizeof e, "%" PRIu64, lost);
	snprintf(f, sizeof f, "%" PRIu64, resume.segno);
	snprintf(g, sizeof g, "%" PRIu64, resume.offset);
	const char *vals[8] = { node, a, b, d, gap ? e : NULL, f, g, reason };
	PGresult *res = PQexecParams(c, "INSERT INTO etl_skip (node, segno, seg_offset, bytes_lost, records_lost, "
				      "resume_segno, resume_offset, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
				     8, NULL, vals, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		snprintf(err, errlen, "%s: etl_skip: %s", state ? state : "08000", PQerrorMessage(c));
		PQclear(res);
		return pgc_error_exit(c, err);
	}
	PQclear(res);
	log_warn("node %s: skip recorded by %s at segment %" PRIu64 " offset %" PRIu64 ": %" PRIu64 " bytes%s%s%s lost "
		 "(%s); loading resumes at segment %" PRIu64 " offset %" PRIu64, node, PQuser(c), at.segno, at.offset,
		 bytes, gap ? ", " : "", gap ? e : "", gap ? " records" : "", reason, resume.segno, resume.offset);
	fprintf(out, "skip: node %s segment %" PRIu64 " offset %" PRIu64 " bytes_lost=%" PRIu64 " records_lost=%s "
		"resume=%" PRIu64 ":%" PRIu64 "\n", node, at.segno, at.offset, bytes, gap ? e : "unknown", resume.segno,
		resume.offset);
	return EXIT_OK;
}
