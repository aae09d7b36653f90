/*
 * test_cdr.c - the CDR engine (cdrengine.c) and its AMI feed (cdrfeed.c)
 * on small, hand-made call flows whose rows follow from cdr.c's rules
 * (each expectation is traced in a comment).  The real captures are the
 * truth test (t2300); these pin the rules one by one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ami.h"
#include "cdrengine.h"
#include "cdrfeed.h"

#define MAXROWS 128
#define S(x) ((uint64_t)(x) * 1000000u)
#define T0 S(1800000000)

struct row {
	char channel[CDR_STR], dstchannel[CDR_STR], lastapp[CDR_STR], lastdata[CDR_STR], dst[CDR_STR];
	char userfield[CDR_USERFIELD], clid[CDR_STR];
	long duration, billsec;
	int disposition, amaflags;
	uint64_t start, answer, end;
	bool incomplete, clock_fault;
};

struct rows {
	struct row r[MAXROWS];
	int n;
	int calls;
	char call_outcome[32];
	long call_legs;
};

static void keep(void *arg, const struct cdr_row *x)
{
	struct rows *rs = arg;
	assert_true(rs->n < MAXROWS);
	struct row *r = &rs->r[rs->n++];
	snprintf(r->channel, sizeof r->channel, "%s", x->channel);
	snprintf(r->dstchannel, sizeof r->dstchannel, "%s", x->dstchannel);
	snprintf(r->lastapp, sizeof r->lastapp, "%s", x->lastapp);
	snprintf(r->lastdata, sizeof r->lastdata, "%s", x->lastdata);
	snprintf(r->dst, sizeof r->dst, "%s", x->dst);
	snprintf(r->userfield, sizeof r->userfield, "%s", x->userfield);
	snprintf(r->clid, sizeof r->clid, "%s", x->clid);
	r->duration = x->duration;
	r->billsec = x->billsec;
	r->disposition = x->disposition;
	r->amaflags = x->amaflags;
	r->start = x->start_us;
	r->answer = x->answer_us;
	r->end = x->end_us;
	r->incomplete = x->incomplete;
	r->clock_fault = x->clock_fault;
}

static struct cdr_snapshot snap(const char *name, const char *uid, const char *linkedid, int state, uint64_t created)
{
	struct cdr_snapshot s;
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "%s", name);
	snprintf(s.uniqueid, sizeof s.uniqueid, "%s", uid);
	snprintf(s.linkedid, sizeof s.linkedid, "%s", linkedid);
	snprintf(s.cid_num, sizeof s.cid_num, "100");
	snprintf(s.cid_name, sizeof s.cid_name, "Alice");
	snprintf(s.context, sizeof s.context, "from-phones");
	snprintf(s.exten, sizeof s.exten, "200");
	s.priority = 1;
	s.state = state;
	s.amaflags = 3;
	s.created_us = created;
	return s;
}

static void update(struct cdr_engine *e, struct cdr_snapshot *s, uint64_t t)
{
	cdr_engine_channel_update(e, s, t);
}

/* A dials B, B answers, they talk, B hangs up: one row, Party A = A. */
struct flow {
	struct cdr_snapshot a, b;
};

static void answered_flow(struct cdr_engine *e, struct flow *f, const char *dialstatus, int bcause)
{
	f->a = snap("SIP/a-00000001", "pbx-1.1", "pbx-1.1", 4, T0);
	update(e, &f->a, T0);
	f->a.priority = 2;
	snprintf(f->a.appl, sizeof f->a.appl, "Dial");
	snprintf(f->a.data, sizeof f->a.data, "SIP/b,30");
	update(e, &f->a, T0 + S(1) / 10);
	f->b = snap("SIP/b-00000002", "pbx-1.2", "pbx-1.1", 0, T0 + S(2) / 10);
	f->b.flags = SNAP_OUTGOING;
	update(e, &f->b, T0 + S(2) / 10);
	cdr_engine_dial(e, &f->a, &f->b, "", T0 + S(2) / 10);
	if (strcmp(dialstatus, "ANSWER")) {
		cdr_engine_dial(e, &f->a, &f->b, dialstatus, T0 + S(3));
		f->b.flags |= SNAP_DEAD;
		f->b.cause = bcause;
		update(e, &f->b, T0 + S(3));
		return;
	}
	f->b.state = 6;
	update(e, &f->b, T0 + S(3));
	cdr_engine_dial(e, &f->a, &f->b, "ANSWER", T0 + S(3));
	f->a.state = 6;
	update(e, &f->a, T0 + S(31) / 10);
	struct cdr_bridge_info br = { "br-1", "basic", "simple_bridge", 1 };
	cdr_engine_bridge_enter(e, &f->b, &br, T0 + S(32) / 10);
	br.nchannels = 2;
	cdr_engine_bridge_enter(e, &f->a, &br, T0 + S(32) / 10 + 10);
	br.nchannels = 1;
	cdr_engine_bridge_leave(e, &f->b, &br, T0 + S(105) / 10);
	f->b.flags |= SNAP_DEAD;
	f->b.cause = bcause;
	update(e, &f->b, T0 + S(105) / 10 + 10);
	br.nchannels = 0;
	cdr_engine_bridge_leave(e, &f->a, &br, T0 + S(106) / 10);
}

static void hangup(struct cdr_engine *e, struct cdr_snapshot *s, int cause, uint64_t t)
{
	s->flags |= SNAP_DEAD;
	s->cause = cause;
	update(e, s, t);
}

static void test_answered_call(void **state)
{
	(void)state;
	struct rows rs = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = false, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
	struct flow f;
	answered_flow(e, &f, "ANSWER", 16);
	assert_int_equal(rs.n, 0); /* rows go out when Party A hangs up */
	hangup(e, &f.a, 16, T0 + S(107) / 10);
	/* B's own CDR is dialed with no Party B: discarded.  A's: answered when A
	 * went Up (3.1 s), ended when its Party B left the bridge (10.5 s). */
	assert_int_equal(rs.n, 1);
	struct row *r = &rs.r[0];
	assert_string_equal(r->channel, "SIP/a-00000001");
	assert_string_equal(r->dstchannel, "SIP/b-00000002");
	assert_string_equal(r->lastapp, "Dial");
	assert_string_equal(r->lastdata, "SIP/b,30");
	assert_string_equal(r->dst, "200");
	assert_string_equal(r->clid, "\"Alice\" <100>");
	assert_int_equal(r->disposition, CDR_ANSWERED);
	assert_int_equal(r->start, T0);
	assert_int_equal(r->answer, T0 + S(31) / 10);
	assert_int_equal(r->end, T0 + S(105) / 10);
	assert_int_equal(r->duration, 10); /* floor(10.5) */
	assert_int_equal(r->billsec, 7);   /* floor(7.4) */
	assert_int_equal(cdr_engine_live(e, NULL), 0);
	cdr_engine_free(e);
}

static void test_initiatedseconds(void **state)
{
	(void)state;
	/* billsec 7.4 s: rounded up only from .5, so it stays 7; make it 7.6 */
	struct rows rs = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = false, .endbeforehexten = false, .initiatedseconds = true };
	struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
	struct flow f;
	answered_flow(e, &f, "ANSWER", 16);
	hangup(e, &f.a, 16, T0 + S(107) / 10);
	assert_int_equal(rs.r[0].billsec, 7);
	cdr_engine_free(e);

	memset(&rs, 0, sizeof rs);
	e = cdr_engine_new(&o, keep, &rs);
	f.a = snap("SIP/a-1", "u.1", "u.1", 6, T0);
	update(e, &f.a, T0); /* Up from the start: answered at creation */
	hangup(e, &f.a, 16, T0 + S(76) / 10);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].billsec, 8); /* 7.6 s with initiatedseconds */
	assert_int_equal(rs.r[0].duration, 7);
	cdr_engine_free(e);
}

static void test_busy_and_unanswered(void **state)
{
	(void)state;
	for (int unanswered = 0; unanswered <= 1; unanswered++) {
		struct rows rs = { 0 };
		struct cdr_options o = { .unanswered = unanswered != 0, .congestion = false, .endbeforehexten = false, .initiatedseconds = false };
		struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
		struct flow f;
		answered_flow(e, &f, "BUSY", 17);
		/* the dialplan goes on to Busy(): a CEP change after a finalized
		 * Dial CDR makes a new one */
		f.a.priority = 3;
		snprintf(f.a.appl, sizeof f.a.appl, "Busy");
		snprintf(f.a.data, sizeof f.a.data, "2");
		update(e, &f.a, T0 + S(4));
		hangup(e, &f.a, 17, T0 + S(6));
		/* row 1: A -> B BUSY (a B party: always logged); row 2: A alone,
		 * lastapp Busy, cause 17 -> BUSY, dropped when unanswered=no */
		assert_int_equal(rs.n, unanswered ? 2 : 1);
		assert_string_equal(rs.r[0].dstchannel, "SIP/b-00000002");
		assert_int_equal(rs.r[0].disposition, CDR_BUSY);
		assert_string_equal(rs.r[0].lastapp, "Dial");
		if (unanswered) {
			assert_string_equal(rs.r[1].dstchannel, "");
			assert_string_equal(rs.r[1].lastapp, "Busy");
			assert_int_equal(rs.r[1].disposition, CDR_BUSY);
			assert_int_equal(rs.r[1].start, T0 + S(4));
			assert_int_equal(rs.r[1].duration, 2);
		}
		cdr_engine_free(e);
	}
}

/* canceldispositionenabled: a Dial the caller cancelled is CANCEL, not NO ANSWER. */
static void test_cancel_disposition(void **state)
{
	(void)state;
	for (int cancel = 0; cancel <= 1; cancel++) {
		struct rows rs = { 0 };
		struct cdr_options o = { .unanswered = true, .canceldisposition = cancel != 0 };
		struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
		struct flow f;
		answered_flow(e, &f, "CANCEL", 16);
		hangup(e, &f.a, 16, T0 + S(4));
		assert_true(rs.n >= 1);
		assert_string_equal(rs.r[0].dstchannel, "SIP/b-00000002");
		assert_int_equal(rs.r[0].disposition, cancel ? CDR_CANCEL : CDR_NOANSWER);
		assert_string_equal(cdr_disposition_name(rs.r[0].disposition), cancel ? "CANCEL" : "NO ANSWER");
		cdr_engine_free(e);
	}
}

static void test_congestion_option(void **state)
{
	(void)state;
	for (int congestion = 0; congestion <= 1; congestion++) {
		struct rows rs = { 0 };
		struct cdr_options o = { .unanswered = true, .congestion = congestion != 0, .endbeforehexten = false, .initiatedseconds = false };
		struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
		struct flow f;
		answered_flow(e, &f, "CONGESTION", 34);
		hangup(e, &f.a, 34, T0 + S(5));
		assert_true(rs.n >= 1);
		assert_int_equal(rs.r[0].disposition, congestion ? CDR_CONGESTION : CDR_FAILED);
		cdr_engine_free(e);
	}
	assert_string_equal(cdr_disposition_name(CDR_NULL), "NO ANSWER");
	assert_string_equal(cdr_disposition_name(CDR_CONGESTION), "CONGESTION");
}

static void test_originated_and_dialed(void **state)
{
	(void)state;
	/* a dialed channel that never gets a Party B leaves no row; an originated
	 * one (OUTGOING + ORIGINATED) does */
	struct rows rs = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = false, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
	struct cdr_snapshot d = snap("Local/1@x-1;1", "d.1", "d.1", 0, T0);
	d.flags = SNAP_OUTGOING;
	update(e, &d, T0);
	hangup(e, &d, 16, T0 + S(1));
	assert_int_equal(rs.n, 0);
	struct cdr_snapshot g = snap("Local/2@x-2;1", "g.1", "g.1", 0, T0);
	update(e, &g, T0);
	g.flags = SNAP_OUTGOING | SNAP_ORIGINATED;
	cdr_engine_dial(e, NULL, &g, "", T0 + 10);
	hangup(e, &g, 16, T0 + S(1));
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].channel, "Local/2@x-2;1");
	cdr_engine_free(e);
}

static void test_three_party_bridge(void **state)
{
	(void)state;
	/* three undialed channels in one bridge: every pair gets a row, Party A
	 * the older channel (cdr.c: 3-way -> 3 rows) */
	struct rows rs = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = false, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
	struct cdr_snapshot c[3];
	const char *names[3] = { "SIP/x-1", "SIP/y-2", "SIP/z-3" };
	const char *uids[3] = { "c.1", "c.2", "c.3" };
	struct cdr_bridge_info br = { "conf", "confbridge", "softmix", 0 };
	for (int i = 0; i < 3; i++) {
		c[i] = snap(names[i], uids[i], uids[i], 6, T0 + S(i));
		update(e, &c[i], T0 + S(i));
	}
	for (int i = 0; i < 3; i++) {
		br.nchannels = i + 1;
		cdr_engine_bridge_enter(e, &c[i], &br, T0 + S(10 + i));
	}
	for (int i = 0; i < 3; i++) {
		br.nchannels = 2 - i;
		cdr_engine_bridge_leave(e, &c[i], &br, T0 + S(30 + i));
		hangup(e, &c[i], 16, T0 + S(30 + i) + 5);
	}
	int pairs = 0;
	for (int i = 0; i < rs.n; i++)
		if (rs.r[i].dstchannel[0])
			pairs++;
	assert_int_equal(pairs, 3);
	for (int i = 0; i < rs.n; i++)
		if (!strcmp(rs.r[i].channel, "SIP/z-3"))
			assert_string_equal(rs.r[i].dstchannel, ""); /* the youngest is never Party A of a pair */
	cdr_engine_free(e);
}

static void test_userfield_and_expire(void **state)
{
	(void)state;
	struct rows rs = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = false, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
	struct cdr_snapshot a = snap("SIP/lost-1", "l.1", "l.1", 6, T0);
	update(e, &a, T0);
	cdr_engine_userfield(e, "SIP/lost-1", "tag-42");
	assert_int_equal(cdr_engine_expire(e, T0), 0); /* heard of at T0: not idle before T0 */
	assert_int_equal(cdr_engine_expire(e, T0 + 1), 1);
	assert_int_equal(rs.n, 1);
	assert_true(rs.r[0].incomplete);
	assert_string_equal(rs.r[0].userfield, "tag-42");
	assert_int_equal(rs.r[0].end, T0);
	assert_int_equal(cdr_engine_live(e, NULL), 0);
	cdr_engine_free(e);
}

static void test_parked(void **state)
{
	(void)state;
	struct rows rs = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = false, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_engine *e = cdr_engine_new(&o, keep, &rs);
	struct cdr_snapshot p = snap("SIP/p-1", "p.1", "p.1", 6, T0);
	update(e, &p, T0);
	struct cdr_bridge_info br = { "park-lot", "parking", "holding_bridge", 1 };
	cdr_engine_bridge_enter(e, &p, &br, T0 + S(1));
	cdr_engine_parked(e, &p, "default", 701, T0 + S(1) + 5);
	cdr_engine_bridge_leave(e, &p, &br, T0 + S(20));
	hangup(e, &p, 16, T0 + S(21));
	int parked = 0;
	for (int i = 0; i < rs.n; i++)
		if (!strcmp(rs.r[i].lastapp, "Park")) {
			parked++;
			assert_string_equal(rs.r[i].lastdata, "default:701");
		}
	assert_int_equal(parked, 1);
	cdr_engine_free(e);
}

/* ------------------------------------------------------------ the feed, from AMI text */

struct feedrun {
	struct cdr_feed *f;
	uint64_t stamp;
	uint64_t recv;  /* receive time for events without a (valid) Timestamp; 0: skip them */
	struct rows rows;
	int warnings;
	char warning[512];
};

static void feed_leg(void *arg, const struct cdr_row *r, uint64_t stamp)
{
	(void)stamp;
	keep(&((struct feedrun *)arg)->rows, r);
}

static void feed_call(void *arg, const struct call_row *c, uint64_t stamp)
{
	(void)stamp;
	struct feedrun *fr = arg;
	fr->rows.calls++;
	snprintf(fr->rows.call_outcome, sizeof fr->rows.call_outcome, "%s", c->outcome);
	fr->rows.call_legs = c->legs;
}

static int on_msg(void *ctx, const struct ami_msg *m)
{
	struct feedrun *fr = ctx;
	size_t len, tl;
	const char *name = ami_get(m, "Event", &len);
	const char *ts = ami_get(m, "Timestamp", &tl);
	if (!name || (!ts && !fr->recv))
		return 0;
	char tbuf[32];
	snprintf(tbuf, sizeof tbuf, "%.*s", ts ? (int)tl : 0, ts ? ts : "");
	double d = strtod(tbuf, NULL);
	uint64_t t = d > 0 ? (uint64_t)(d * 1e6 + 0.5) : fr->recv; /* as the ETL: else the receive time */
	fr->stamp++;
	cdr_feed_event(fr->f, m, name, len, t, fr->stamp, fr->stamp);
	return 0;
}

static void feed_text(struct feedrun *fr, const char *text)
{
	struct ami_parser p;
	ami_parser_init(&p, 1 << 20);
	/* one message per feed call, as the ETL does with segment records */
	const char *s = text;
	while (*s) {
		const char *e = strstr(s, "\r\n\r\n");
		assert_non_null(e);
		e += 4;
		ami_parser_reset(&p);
		assert_int_equal(ami_parser_feed(&p, s, (size_t)(e - s), on_msg, fr), 0);
		s = e;
	}
	ami_parser_release(&p);
}

#define CHAN(name, uid, state, ctx, exten, prio) \
	"Channel: " name "\r\nChannelState: " state "\r\nCallerIDNum: 100\r\nCallerIDName: Alice\r\n" \
	"AccountCode: acct\r\nContext: " ctx "\r\nExten: " exten "\r\nPriority: " prio "\r\n" \
	"Uniqueid: " uid "\r\nLinkedid: " uid "\r\n"

static void test_feed_execif_twins_amaflags(void **state)
{
	(void)state;
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_feed_sink sink = { feed_leg, feed_call, &fr, NULL, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	/* the CEL twin of Newchannel is written 2 ms earlier: the start is its time;
	 * ExecIf runs Busy with no Newexten; amaflags only come with CEL */
	feed_text(&fr,
		  "Event: CEL\r\nTimestamp: 1800000000.098000\r\nEventName: CHAN_START\r\nUniqueID: x.1\r\n"
		  "AMAFlags: BILLING\r\n\r\n"
		  "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/x-1", "x.1", "4", "in", "5", "1") "\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.200000\r\n" CHAN("SIP/x-1", "x.1", "4", "in", "5", "2")
		  "Application: Set\r\nAppData: CDR(userfield)=u-7\r\n\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.300000\r\n" CHAN("SIP/x-1", "x.1", "4", "in", "5", "3")
		  "Application: ExecIf\r\nAppData: 1?Busy(2):Congestion(3)\r\n\r\n"
		  "Event: Hangup\r\nTimestamp: 1800000002.400000\r\n" CHAN("SIP/x-1", "x.1", "4", "in", "5", "3")
		  "Cause: 17\r\nCause-txt: User busy\r\n\r\n");
	assert_int_equal(fr.rows.n, 0); /* still in the reorder window */
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.rows.n, 1);
	struct row *r = &fr.rows.r[0];
	assert_string_equal(r->lastapp, "Busy");
	assert_string_equal(r->lastdata, "2");
	assert_string_equal(r->userfield, "u-7");
	assert_int_equal(r->amaflags, 2);
	assert_int_equal(r->start, S(1800000000) + 98000);
	assert_int_equal(r->disposition, CDR_BUSY);
	assert_int_equal(r->duration, 2); /* 2.398 s */
	assert_int_equal(fr.rows.calls, 1);
	assert_string_equal(fr.rows.call_outcome, "busy");
	assert_int_equal(fr.rows.call_legs, 1);
	assert_int_equal(cdr_feed_oldest_pos(fr.f), UINT64_MAX);
	cdr_feed_free(fr.f);
}

static void feed_warn(void *arg, const char *msg, uint64_t stamp)
{
	(void)stamp;
	struct feedrun *fr = arg;
	fr->warnings++;
	snprintf(fr->warning, sizeof fr->warning, "%s", msg);
}

/* One call, Timestamps 1800000000 + n/10 s, with an odd one in the middle:
 * the call is written, exact, its later legs flagged, one warning. */
static void odd_timestamp(const char *odd, bool drop_header)
{
	struct feedrun fr = { 0 };
	fr.recv = S(1900000000); /* a replay: receive times far from the PBX's clock */
	struct cdr_options o = { .unanswered = true, .congestion = true, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_feed_sink sink = { feed_leg, feed_call, &fr, feed_warn, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	char text[8192], ts[64];
	snprintf(ts, sizeof ts, "%s%s%s", drop_header ? "" : "Timestamp: ", odd, drop_header ? "" : "\r\n");
	snprintf(text, sizeof text,
		 "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/o-1", "o.1", "4", "in", "5", "1") "\r\n"
		 "Event: Newexten\r\nTimestamp: 1800000000.200000\r\n" CHAN("SIP/o-1", "o.1", "4", "in", "5", "1")
		 "Application: Answer\r\nAppData: \r\n\r\n"
		 "Event: Newstate\r\n%s" CHAN("SIP/o-1", "o.1", "6", "in", "5", "1") "\r\n"
		 "Event: Newexten\r\nTimestamp: 1800000000.400000\r\n" CHAN("SIP/o-1", "o.1", "6", "in", "5", "2")
		 "Application: Wait\r\nAppData: 3\r\n\r\n"
		 "Event: VarSet\r\nTimestamp: 1800000001.000000\r\n" CHAN("SIP/o-1", "o.1", "6", "in", "5", "2")
		 "Variable: A\r\nValue: 1\r\n\r\n"
		 "Event: VarSet\r\nTimestamp: 1800000002.000000\r\n" CHAN("SIP/o-1", "o.1", "6", "in", "5", "2")
		 "Variable: A\r\nValue: 2\r\n\r\n"
		 "Event: VarSet\r\nTimestamp: 1800000003.000000\r\n" CHAN("SIP/o-1", "o.1", "6", "in", "5", "2")
		 "Variable: A\r\nValue: 3\r\n\r\n"
		 "Event: Hangup\r\nTimestamp: 1800000003.450000\r\n" CHAN("SIP/o-1", "o.1", "6", "in", "5", "2")
		 "Cause: 16\r\n\r\n"
		 /* another call after it, untouched */
		 "Event: Newchannel\r\nTimestamp: 1800000004.000000\r\n" CHAN("SIP/p-1", "p.1", "4", "in", "5", "1") "\r\n"
		 "Event: Newexten\r\nTimestamp: 1800000004.100000\r\n" CHAN("SIP/p-1", "p.1", "4", "in", "5", "1")
		 "Application: Busy\r\nAppData: \r\n\r\n"
		 "Event: Hangup\r\nTimestamp: 1800000006.200000\r\n" CHAN("SIP/p-1", "p.1", "4", "in", "5", "1")
		 "Cause: 17\r\n\r\n",
		 ts);
	feed_text(&fr, text);
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.rows.n, 2);
	assert_int_equal(fr.rows.calls, 2);
	struct row *r = &fr.rows.r[0];
	assert_false(r->incomplete);
	assert_true(r->clock_fault);
	/* answered at the time of the event after it (the Newexten), ended in time */
	assert_int_equal(r->answer, S(1800000000) + 400000);
	assert_int_equal(r->end, S(1800000003) + 450000);
	assert_int_equal(r->billsec, 3);
	assert_false(fr.rows.r[1].clock_fault);
	assert_int_equal(fr.rows.r[1].duration, 2);
	assert_int_equal(fr.warnings, 1);
	assert_non_null(strstr(fr.warning, "event Newstate (record 3) of channel SIP/o-1 (uniqueid o.1"));
	cdr_feed_free(fr.f);
}

static void test_feed_clock_future(void **state)
{
	(void)state;
	odd_timestamp("1831536000.300000", false); /* a year ahead */
}

static void test_feed_clock_backwards(void **state)
{
	(void)state;
	odd_timestamp("1799996400.300000", false); /* an hour back */
}

static void test_feed_clock_garbage(void **state)
{
	(void)state;
	odd_timestamp("-12.5", false);
	odd_timestamp("soon", false);
	odd_timestamp("", true); /* missing */
}

/* Without Timestamps the records of one read() share a receive time: they
 * are spread back over the gap since the previous read (FEED_RUN_PACE_US at
 * most each), never before the second their channels' Uniqueids name. */
static void test_feed_clock_receive_runs(void **state)
{
	(void)state;
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_feed_sink sink = { feed_leg, feed_call, &fr, feed_warn, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	fr.recv = S(1800000000) + 900000; /* an earlier read */
	feed_text(&fr, "Event: Newchannel\r\n" CHAN("SIP/q-0", "1800000000.1", "4", "in", "5", "1") "\r\n");
	/* one read of four events, 300 ms later, just past a second boundary */
	fr.recv = S(1800000001) + 200000;
	feed_text(&fr, "Event: Newchannel\r\n" CHAN("SIP/r-1", "1800000001.2", "4", "in", "5", "1") "\r\n"
		       "Event: Newexten\r\n" CHAN("SIP/r-1", "1800000001.2", "4", "in", "5", "1")
		       "Application: Wait\r\nAppData: 5\r\n\r\n"
		       "Event: Newchannel\r\n" CHAN("SIP/s-1", "1800000001.3", "4", "in", "5", "1") "\r\n"
		       "Event: Hangup\r\n" CHAN("SIP/q-0", "1800000000.1", "4", "in", "5", "1") "Cause: 16\r\n\r\n");
	fr.recv = S(1800000006) + 100000;
	feed_text(&fr, "Event: Hangup\r\n" CHAN("SIP/r-1", "1800000001.2", "4", "in", "5", "1") "Cause: 16\r\n\r\n"
		       "Event: Hangup\r\n" CHAN("SIP/s-1", "1800000001.3", "4", "in", "5", "1") "Cause: 16\r\n\r\n");
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.warnings, 0);
	assert_int_equal(fr.rows.n, 3);
	/* the run: 4 events over 4 * FEED_RUN_PACE_US before the read, in order,
	 * none before 1800000001 (their Uniqueids) */
	const struct row *q = NULL, *r = NULL, *s = NULL;
	for (int i = 0; i < fr.rows.n; i++) {
		if (!strcmp(fr.rows.r[i].channel, "SIP/q-0"))
			q = &fr.rows.r[i];
		if (!strcmp(fr.rows.r[i].channel, "SIP/r-1"))
			r = &fr.rows.r[i];
		if (!strcmp(fr.rows.r[i].channel, "SIP/s-1"))
			s = &fr.rows.r[i];
	}
	assert_non_null(q);
	assert_non_null(r);
	assert_non_null(s);
	uint64_t lo = S(1800000001) + 200000 - 4 * FEED_RUN_PACE_US;
	assert_int_equal(r->start, lo + 1 * FEED_RUN_PACE_US);
	assert_int_equal(s->start, lo + 3 * FEED_RUN_PACE_US);
	assert_int_equal(q->end, S(1800000001) + 200000);
	/* the second read's first event is spread back over the pace, not the 5 s gap */
	assert_int_equal(r->end, S(1800000006) + 100000 - FEED_RUN_PACE_US);
	assert_int_equal(s->end, S(1800000006) + 100000);

	/* a read whose spread would reach before its channel's second: floored */
	struct feedrun f2 = { 0 };
	struct cdr_feed_sink sink2 = { feed_leg, NULL, &f2, NULL, NULL };
	f2.f = cdr_feed_new(&o, &sink2);
	f2.recv = S(1800000000);
	feed_text(&f2, "Event: Newexten\r\n" CHAN("SIP/t-0", "1799999999.9", "4", "in", "5", "1")
		       "Application: Wait\r\nAppData: 5\r\n\r\n");
	f2.recv = S(1800000000) + 1000;
	feed_text(&f2, "Event: VarSet\r\n" CHAN("SIP/t-0", "1799999999.9", "4", "in", "5", "1") "Variable: x\r\n\r\n"
		       "Event: VarSet\r\n" CHAN("SIP/t-0", "1799999999.9", "4", "in", "5", "1") "Variable: y\r\n\r\n"
		       "Event: Newchannel\r\n" CHAN("SIP/u-1", "1800000000.10", "4", "in", "5", "1") "\r\n");
	f2.recv = S(1800000003);
	feed_text(&f2, "Event: Hangup\r\n" CHAN("SIP/u-1", "1800000000.10", "4", "in", "5", "1") "Cause: 16\r\n\r\n");
	cdr_feed_flush(f2.f, UINT64_MAX);
	assert_int_equal(f2.rows.n, 1);
	assert_int_equal(f2.rows.r[0].start, S(1800000000) + 1000);
	cdr_feed_free(f2.f);
	cdr_feed_free(fr.f);
}

/* Timestamps switched off mid-stream (timestampevents = no after a reload):
 * after FEED_NO_TS_STREAK events without one, receive times are the clock,
 * said once; the calls after it are not flagged. */
static void test_feed_clock_switched_off(void **state)
{
	(void)state;
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_feed_sink sink = { feed_leg, feed_call, &fr, feed_warn, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	char text[1 << 16];
	size_t n = 0;
	for (unsigned i = 0; i < 5; i++) /* a clock first */
		n += (size_t)snprintf(text + n, sizeof text - n,
				      "Event: Newchannel\r\nTimestamp: 1800000000.%06u\r\nChannel: SIP/a-%u\r\n"
				      "ChannelState: 4\r\nUniqueid: a.%u\r\nLinkedid: a.%u\r\n\r\n"
				      "Event: Hangup\r\nTimestamp: 1800000001.%06u\r\nChannel: SIP/a-%u\r\n"
				      "ChannelState: 4\r\nUniqueid: a.%u\r\nLinkedid: a.%u\r\nCause: 16\r\n\r\n",
				      i, i, i, i, i, i, i, i);
	feed_text(&fr, text);
	n = 0;
	for (unsigned i = 0; i < FEED_NO_TS_STREAK + 40; i++) {
		char uid[32], chan[32];
		snprintf(uid, sizeof uid, "b.%u", i);
		snprintf(chan, sizeof chan, "SIP/b-%u", i);
		n += (size_t)snprintf(text + n, sizeof text - n,
				      "Event: Newchannel\r\nChannel: %s\r\nChannelState: 4\r\nUniqueid: %s\r\n"
				      "Linkedid: %s\r\nContext: in\r\nExten: 5\r\nPriority: 1\r\n\r\n",
				      chan, uid, uid);
		assert_true(n < sizeof text);
	}
	fr.recv = S(1800000002);
	feed_text(&fr, text);
	cdr_feed_flush(fr.f, UINT64_MAX);
	cdr_feed_expire(fr.f, 0);
	/* 63 flagged, the switch said, the rest plain receive times */
	assert_int_equal(fr.rows.n, 5 + FEED_NO_TS_STREAK + 40);
	int flagged = 0;
	for (int i = 0; i < fr.rows.n; i++)
		flagged += fr.rows.r[i].clock_fault;
	assert_int_equal(flagged, FEED_NO_TS_STREAK - 1);
	assert_non_null(strstr(fr.warning, "stopped carrying a Timestamp header") ? fr.warning : NULL);
	cdr_feed_free(fr.f);
}

/* A CEL twin that came before its channel event is where a resumed run must
 * start reading, so that it takes the same (earlier) time. */
static void test_feed_twin_resume_pos(void **state)
{
	(void)state;
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_feed_sink sink = { feed_leg, feed_call, &fr, NULL, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	feed_text(&fr, "Event: CEL\r\nTimestamp: 1800000000.098000\r\nEventName: CHAN_START\r\nUniqueID: w.1\r\n"
		       "AMAFlags: DOCUMENTATION\r\n\r\n");
	cdr_feed_flush(fr.f, S(1800000100));
	assert_int_equal(cdr_feed_oldest_pos(fr.f), 1); /* the CEL's */
	feed_text(&fr, "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/w-1", "w.1", "4", "in", "5", "1")
		       "\r\n");
	cdr_feed_flush(fr.f, S(1800000100));
	assert_int_equal(cdr_feed_oldest_pos(fr.f), 1); /* the open call starts at its twin */
	cdr_feed_free(fr.f);
}

static void test_feed_execif_false_branch(void **state)
{
	(void)state;
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true, .endbeforehexten = false, .initiatedseconds = false };
	struct cdr_feed_sink sink = { feed_leg, NULL, &fr, NULL, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	feed_text(&fr,
		  "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/y-1", "y.1", "4", "in", "5", "1") "\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.300000\r\n" CHAN("SIP/y-1", "y.1", "4", "in", "5", "2")
		  "Application: ExecIf\r\nAppData: 0?Busy(2):Congestion(3)\r\n\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.400000\r\n" CHAN("SIP/z-1", "z.1", "4", "in", "5", "2")
		  "Application: ExecIf\r\nAppData: 0?Busy(2)\r\n\r\n"
		  "Event: Hangup\r\nTimestamp: 1800000001.000000\r\n" CHAN("SIP/y-1", "y.1", "4", "in", "5", "2")
		  "Cause: 34\r\n\r\n"
		  "Event: Hangup\r\nTimestamp: 1800000001.000000\r\n" CHAN("SIP/z-1", "z.1", "4", "in", "5", "2")
		  "Cause: 16\r\n\r\n");
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.rows.n, 2);
	assert_string_equal(fr.rows.r[0].lastapp, "Congestion"); /* the false branch ran */
	assert_string_equal(fr.rows.r[0].lastdata, "3");
	assert_int_equal(fr.rows.r[0].disposition, CDR_CONGESTION);
	assert_string_equal(fr.rows.r[1].lastapp, "ExecIf"); /* nothing ran */
	cdr_feed_free(fr.f);
}

/* A Gosub in the dialplan: cdr.c keeps context/exten out of subroutines
 * (AST_FLAG_SUBROUTINE_EXEC, set after the ARGn/ARGC variables); with
 * channelvars those VarSets are snapshot updates made before the flag is
 * set, so Asterisk records the subroutine's location then. */
static void gosub_run(bool channelvars, const char *want_dst)
{
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true };
	struct cdr_feed_sink sink = { feed_leg, NULL, &fr, NULL, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	const char *cv = channelvars ? "ChanVariable: TAG=x\r\n" : "";
	char text[4096];
	snprintf(text, sizeof text,
		 "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/g-1", "g.1", "6", "in", "5", "1") "%s\r\n"
		 "Event: Newexten\r\nTimestamp: 1800000000.200000\r\n" CHAN("SIP/g-1", "g.1", "6", "in", "5", "2")
		 "%sApplication: Gosub\r\nAppData: sub,s,1(a)\r\n\r\n"
		 "Event: VarSet\r\nTimestamp: 1800000000.200100\r\n" CHAN("SIP/g-1", "g.1", "6", "sub", "s", "1")
		 "%sVariable: ARG1\r\nValue: a\r\n\r\n"
		 "Event: VarSet\r\nTimestamp: 1800000000.200200\r\n" CHAN("SIP/g-1", "g.1", "6", "sub", "s", "1")
		 "%sVariable: ARGC\r\nValue: 1\r\n\r\n"
		 "Event: Newexten\r\nTimestamp: 1800000000.300000\r\n" CHAN("SIP/g-1", "g.1", "6", "sub", "s", "1")
		 "%sApplication: Playback\r\nAppData: beep\r\n\r\n"
		 "Event: Hangup\r\nTimestamp: 1800000001.000000\r\n" CHAN("SIP/g-1", "g.1", "6", "sub", "s", "1")
		 "%sCause: 16\r\n\r\n",
		 cv, cv, cv, cv, cv, cv);
	feed_text(&fr, text);
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.rows.n, 1);
	assert_string_equal(fr.rows.r[0].dst, want_dst); /* hung up inside the subroutine */
	assert_string_equal(fr.rows.r[0].lastapp, "Playback");
	cdr_feed_free(fr.f);
}

/* Return restores the flag: the location is recorded again. */
static void test_feed_gosub(void **state)
{
	(void)state;
	gosub_run(false, "5");
	gosub_run(true, "s");
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true };
	struct cdr_feed_sink sink = { feed_leg, NULL, &fr, NULL, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	feed_text(&fr,
		  "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/r-1", "r.1", "6", "in", "5", "1") "\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.200000\r\n" CHAN("SIP/r-1", "r.1", "6", "in", "5", "2")
		  "Application: Gosub\r\nAppData: sub,s,1\r\n\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.300000\r\n" CHAN("SIP/r-1", "r.1", "6", "sub", "s", "1")
		  "Application: Return\r\nAppData: \r\n\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.400000\r\n" CHAN("SIP/r-1", "r.1", "6", "in", "7", "1")
		  "Application: Hangup\r\nAppData: \r\n\r\n"
		  "Event: Hangup\r\nTimestamp: 1800000001.000000\r\n" CHAN("SIP/r-1", "r.1", "6", "in", "7", "1")
		  "Cause: 16\r\n\r\n");
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.rows.n, 1);
	assert_string_equal(fr.rows.r[0].dst, "7"); /* VarSet ARGC missing: the frame is pushed at the next Newexten */
	cdr_feed_free(fr.f);
}

/* NoCDR() drops the channel's rows; ForkCDR(e) ends the current row and
 * starts a copy with the same start whose app may change again. */
static void test_feed_nocdr_forkcdr(void **state)
{
	(void)state;
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true };
	struct cdr_feed_sink sink = { feed_leg, NULL, &fr, NULL, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	feed_text(&fr,
		  "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/n-1", "n.1", "6", "in", "5", "1") "\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000000.200000\r\n" CHAN("SIP/n-1", "n.1", "6", "in", "5", "2")
		  "Application: NoCDR\r\nAppData: \r\n\r\n"
		  "Event: Hangup\r\nTimestamp: 1800000001.000000\r\n" CHAN("SIP/n-1", "n.1", "6", "in", "5", "2")
		  "Cause: 16\r\n\r\n"
		  "Event: Newchannel\r\nTimestamp: 1800000010.100000\r\n" CHAN("SIP/f-1", "f.1", "6", "in", "5", "1") "\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000010.200000\r\n" CHAN("SIP/f-1", "f.1", "6", "in", "5", "2")
		  "Application: Playback\r\nAppData: hello\r\n\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000013.300000\r\n" CHAN("SIP/f-1", "f.1", "6", "in", "5", "3")
		  "Application: ForkCDR\r\nAppData: e\r\n\r\n"
		  "Event: Newexten\r\nTimestamp: 1800000013.400000\r\n" CHAN("SIP/f-1", "f.1", "6", "in", "5", "4")
		  "Application: Hangup\r\nAppData: \r\n\r\n"
		  "Event: Hangup\r\nTimestamp: 1800000017.500000\r\n" CHAN("SIP/f-1", "f.1", "6", "in", "5", "4")
		  "Cause: 16\r\n\r\n");
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.rows.n, 2); /* none of SIP/n-1 */
	assert_string_equal(fr.rows.r[0].channel, "SIP/f-1");
	assert_string_equal(fr.rows.r[0].lastapp, "ForkCDR");
	assert_string_equal(fr.rows.r[0].lastdata, "e");
	assert_int_equal(fr.rows.r[0].duration, 3);
	assert_string_equal(fr.rows.r[1].lastapp, "Hangup");
	assert_int_equal(fr.rows.r[1].start, S(1800000010) + 100000);
	assert_int_equal(fr.rows.r[1].duration, 7);
	cdr_feed_free(fr.f);
}

/* An AMI Originate straight to an application: pbx_exec() shows it in no
 * Newexten; OriginateResponse names it.  Without one it is a caveat. */
static void originate_run(bool response)
{
	struct feedrun fr = { 0 };
	struct cdr_options o = { .unanswered = true, .congestion = true };
	struct cdr_feed_sink sink = { feed_leg, NULL, &fr, NULL, NULL };
	fr.f = cdr_feed_new(&o, &sink);
	char text[4096];
	snprintf(text, sizeof text,
		 "Event: Newchannel\r\nTimestamp: 1800000000.100000\r\n" CHAN("SIP/o-1", "o.1", "0", "in", "5", "1") "\r\n"
		 "Event: Newexten\r\nTimestamp: 1800000000.100100\r\n" CHAN("SIP/o-1", "o.1", "0", "in", "5", "1")
		 "Application: AppDial2\r\nAppData: (Outgoing Line)\r\n\r\n"
		 "Event: DialBegin\r\nTimestamp: 1800000000.100200\r\nDestChannel: SIP/o-1\r\nDestChannelState: 0\r\n"
		 "DestUniqueid: o.1\r\nDestLinkedid: o.1\r\nDialString: o\r\n\r\n"
		 "Event: Newstate\r\nTimestamp: 1800000002.000000\r\n" CHAN("SIP/o-1", "o.1", "6", "in", "5", "1") "\r\n"
		 "Event: DialEnd\r\nTimestamp: 1800000002.000100\r\nDestChannel: SIP/o-1\r\nDestChannelState: 6\r\n"
		 "DestUniqueid: o.1\r\nDestLinkedid: o.1\r\nDialStatus: ANSWER\r\n\r\n"
		 "%s"
		 "Event: Hangup\r\nTimestamp: 1800000005.000000\r\n" CHAN("SIP/o-1", "o.1", "6", "in", "5", "1")
		 "Cause: 16\r\n\r\n",
		 response ? "Event: OriginateResponse\r\nTimestamp: 1800000002.000300\r\nResponse: Success\r\n"
			    "Channel: SIP/o\r\nApplication: Playback\r\nData: tt-monkeys\r\nReason: 4\r\nUniqueid: o.1\r\n\r\n"
			  : "");
	feed_text(&fr, text);
	cdr_feed_flush(fr.f, UINT64_MAX);
	assert_int_equal(fr.rows.n, 1);
	assert_string_equal(fr.rows.r[0].lastapp, response ? "Playback" : "AppDial2");
	assert_int_equal(cdr_feed_caveat(fr.f, CAVEAT_ORIGINATE_APP)->count, response ? 0 : 1);
	if (response)
		assert_string_equal(fr.rows.r[0].lastdata, "tt-monkeys");
	else
		assert_string_equal(cdr_feed_caveat(fr.f, CAVEAT_ORIGINATE_APP)->example, "SIP/o-1");
	cdr_feed_free(fr.f);
}

static void test_feed_originate_app(void **state)
{
	(void)state;
	originate_run(true);
	originate_run(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answered_call),
		cmocka_unit_test(test_initiatedseconds),
		cmocka_unit_test(test_busy_and_unanswered),
		cmocka_unit_test(test_congestion_option),
		cmocka_unit_test(test_cancel_disposition),
		cmocka_unit_test(test_originated_and_dialed),
		cmocka_unit_test(test_three_party_bridge),
		cmocka_unit_test(test_userfield_and_expire),
		cmocka_unit_test(test_parked),
		cmocka_unit_test(test_feed_execif_twins_amaflags),
		cmocka_unit_test(test_feed_execif_false_branch),
		cmocka_unit_test(test_feed_gosub),
		cmocka_unit_test(test_feed_nocdr_forkcdr),
		cmocka_unit_test(test_feed_originate_app),
		cmocka_unit_test(test_feed_clock_future),
		cmocka_unit_test(test_feed_clock_backwards),
		cmocka_unit_test(test_feed_clock_garbage),
		cmocka_unit_test(test_feed_clock_receive_runs),
		cmocka_unit_test(test_feed_twin_resume_pos),
		cmocka_unit_test(test_feed_clock_switched_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
