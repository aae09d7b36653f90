/*
 * test_etl.c - COPY text encoding, JSON strings, UTF-8 repair, event filters,
 * the trunk and destination country of a leg (legclass), the tenants an
 * event row is written with (evscope), the doctor reading a loaded range
 * of the spool again (doctor_rescan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "copyfmt.h"
#include "doctor.h"
#include "exitcode.h"
#include "evscope.h"
#include "kamrow.h"
#include "legclass.h"
#include "epstate.h"
#include "legwait.h"
#include "strparse.h"
#include "testutil.h"
#include "xalloc.h"

static void test_copy_escaping(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	copy_text(&b, "a\tb\\c\nd\re", 9, '\t');
	copy_null(&b, '\t');
	copy_int(&b, -42, '\n');
	assert_string_equal(b.data, "a\\tb\\\\c\\nd\\re\t\\N\t-42\n");
	buf_release(&b);
}

static void test_utf8_repair(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	/* valid multi-byte text passes unchanged */
	utf8_sanitize(&b, "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x93\x9e", 16);
	assert_string_equal(b.data, "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x93\x9e");
	buf_reset(&b);
	/* a stray byte, an overlong form, a surrogate, a NUL and a cut sequence */
	utf8_sanitize(&b, "a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\0e\xe2\x82", 14);
	assert_string_equal(b.data, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
				    "d\xef\xbf\xbd" "e\xef\xbf\xbd\xef\xbf\xbd");
	buf_release(&b);
}

static void test_json_strings(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	json_string_body(&b, "say \"hi\"\\\x01\xff", 11);
	assert_string_equal(b.data, "say \\\"hi\\\"\\\\\\u0001\xef\xbf\xbd");
	buf_release(&b);
}

static void test_times(void **state)
{
	(void)state;
	assert_int_equal(parse_unix_us("1795288510.020841", 17), 1795288510020841ull);
	assert_int_equal(parse_unix_us("1795288510.02", 13), 1795288510020000ull);
	assert_int_equal(parse_unix_us("1795288510", 10), 1795288510000000ull);
	assert_int_equal(parse_unix_us("x", 1), 0);
	/* the 17-byte fast path falls back to the loops on anything else */
	assert_int_equal(parse_unix_us("0000000000.000000", 17), 0);
	assert_int_equal(parse_unix_us("9999999999.999999", 17), 9999999999999999ull);
	assert_int_equal(parse_unix_us("17952885x0.020841", 17), 17952885000000ull);
	assert_int_equal(parse_unix_us("1795288510.02x841", 17), 1795288510020000ull);
	assert_int_equal(parse_unix_us("179528851:.020841", 17), 179528851000000ull);
	struct buf b;
	buf_init(&b, 0);
	copy_time_us(&b, 1795288510020841ull, '\n');
	assert_string_equal(b.data, "2026-11-21 19:15:10.020841+00\n");
	buf_release(&b);
}

static void test_event_filter(void **state)
{
	(void)state;
	struct etl_config cfg;
	char err[256];
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(cfg_load_string(etl_keys, &cfg, "t", "", 0, err, sizeof err), 0);
	assert_false(etl_keep_event(&cfg, "VarSet", 6));
	assert_false(etl_keep_event(&cfg, "CEL", 3));
	assert_true(etl_keep_event(&cfg, "Hangup", 6));
	assert_true(etl_keep_event(&cfg, "RTCPSent", 8));
	/* by default the channel events stay in the segments (analytics) */
	assert_false(etl_keep_event(&cfg, "Newchannel", 10));
	assert_true(etl_keep_event(&cfg, "YeastarExtensionCallStatus", 26));
	etl_config_free(&cfg);
	memset(&cfg, 0, sizeof cfg);
	const char *all = "etl:\n  ami_event_store: all\n";
	assert_int_equal(cfg_load_string(etl_keys, &cfg, "t", all, strlen(all), err, sizeof err), 0);
	assert_true(etl_keep_event(&cfg, "Newchannel", 10));
	assert_false(etl_keep_event(&cfg, "VarSet", 6));
	etl_config_free(&cfg);
	const char *yaml = "etl:\n  ami_event_include: Hangup, QueueCallerJoin\n";
	assert_int_equal(cfg_load_string(etl_keys, &cfg, "t", yaml, strlen(yaml), err, sizeof err), 0);
	assert_true(etl_keep_event(&cfg, "hangup", 6));
	assert_true(etl_keep_event(&cfg, "QueueCallerJoin", 15));
	assert_false(etl_keep_event(&cfg, "RTCPSent", 8));
	etl_config_free(&cfg);
	/* the cdr section alone is a valid file; defaults are Asterisk's */
	yaml = "cdr:\n  unanswered: yes\n  congestion: yes\n  endbeforehexten: no\n  initiatedseconds: no\n";
	assert_int_equal(cfg_load_string(etl_keys, &cfg, "t", yaml, strlen(yaml), err, sizeof err), 0);
	assert_true(cfg.cdr_unanswered);
	assert_false(cfg.cdr_endbeforehexten);
	etl_config_free(&cfg);
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(cfg_load_string(etl_keys, &cfg, "t", "", 0, err, sizeof err), 0);
	assert_false(cfg.cdr_unanswered);
	assert_true(cfg.cdr_endbeforehexten);
	etl_config_free(&cfg);
}

/* evscope: an ami_event-like row (event, node, uniqueid, linkedid, channel,
 * payload, seq, tenants \N) into b, noted in s */
static void ev_row(struct evscope *s, struct buf *b, const char *uid, const char *lid, const char *chan,
		   uint64_t seq)
{
	size_t start = b->len;
	copy_text(b, "E", 1, '\t');
	copy_text(b, "n", 1, '\t');
	if (uid)
		copy_text(b, uid, strlen(uid), '\t');
	else
		copy_null(b, '\t');
	if (lid)
		copy_text(b, lid, strlen(lid), '\t');
	else
		copy_null(b, '\t');
	if (chan)
		copy_text(b, chan, strlen(chan), '\t');
	else
		copy_null(b, '\t');
	const char *payload = "{\"x\": \"a\\tb\"}"; /* a backslash, escaped by COPY */
	copy_text(b, payload, strlen(payload), '\t');
	copy_int(b, (int64_t)seq, '\t');
	copy_null(b, '\n');
	evscope_event(s, 1, start, seq);
}

/* the tenants column (last) of row i of b */
static const char *tenants_of(const struct buf *b, int i, char *out, size_t n)
{
	const char *p = b->data;
	while (i-- > 0)
		p = strchr(p, '\n') + 1;
	const char *e = strchr(p, '\n');
	const char *t = e;
	while (t > p && t[-1] != '\t')
		t--;
	snprintf(out, n, "%.*s", (int)(e - t), t);
	return out;
}

static int lines_of(const struct buf *b)
{
	int n = 0;
	for (size_t i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

static void test_evscope(void **state)
{
	(void)state;
	static const struct evscope_columns cols[EVSCOPE_STREAMS] = { { 17, 16, 10 }, { 3, 2, 4 } };
	struct evscope s;
	struct evscope_window w;
	struct buf cel, ami, whole;
	struct buf *rows[EVSCOPE_STREAMS] = { &cel, &ami };
	char t[128];
	evscope_init(&s, cols);
	evscope_window_init(&w);
	buf_init(&cel, 0);
	buf_init(&ami, 0);
	buf_init(&whole, 0);
	/* batch 1: call L1 of tenant "a b" whole; call L2 shared by x and y;
	 * call L3 with events only (its legs come later) */
	ev_row(&s, &ami, "u1", "L1", "SIP/1-1", 1);
	ev_row(&s, &ami, "u2", "L2", "SIP/x-1", 2);
	ev_row(&s, &ami, "u3", "L2", "SIP/y-1", 3);
	ev_row(&s, &ami, "u9", "L2", "SIP/z-1", 4);  /* nobody's channel */
	ev_row(&s, &ami, "u4", "L3", "SIP/3-1", 5);
	ev_row(&s, &ami, NULL, NULL, NULL, 6);       /* no conversation */
	ev_row(&s, &ami, "u5", "L2", "Local/q-1", 7); /* y's dstchannel */
	evscope_leg(&s, "L1", "u1", "SIP/1-1", "", "a b");
	evscope_leg(&s, "L1", "u1b", "SIP/1-2", "", "a b");
	evscope_leg(&s, "L2", "u2", "SIP/x-1", "SIP/y-1", "x");
	evscope_leg(&s, "L2", "u3", "SIP/y-1", "Local/q-1", "y");
	assert_int_equal(evscope_apply(&s, rows, &w, &whole), 4);
	assert_string_equal(tenants_of(&ami, 0, t, sizeof t), "{\"a b\"}");
	assert_string_equal(tenants_of(&ami, 1, t, sizeof t), "{\"x\"}");
	/* x's dstchannel is y's own leg: y's only */
	assert_string_equal(tenants_of(&ami, 2, t, sizeof t), "{\"y\"}");
	assert_string_equal(tenants_of(&ami, 3, t, sizeof t), "\\N");
	assert_string_equal(tenants_of(&ami, 4, t, sizeof t), "\\N");
	assert_string_equal(tenants_of(&ami, 5, t, sizeof t), "\\N");
	assert_string_equal(tenants_of(&ami, 6, t, sizeof t), "{\"y\"}");
	/* the payload after the moved columns is intact */
	assert_non_null(strstr(ami.data, "{\"x\": \"a\\\\tb\"}\t7\t{\"y\"}\n"));
	/* no conversation had earlier rows: every one whole, told once, with
	 * the tenant legs its rows were written with */
	assert_non_null(strstr(whole.data, "L1\tt\t2\n"));
	assert_non_null(strstr(whole.data, "L2\tt\t2\n"));
	assert_non_null(strstr(whole.data, "L3\tt\t0\n"));
	assert_int_equal(lines_of(&whole), 3);
	/* batch 2: L3's legs arrive; its earlier rows are in the window, so it is
	 * not whole (the analytics step decides it) */
	buf_reset(&ami);
	buf_reset(&whole);
	ev_row(&s, &ami, "u4", "L3", "SIP/3-1", 8);
	evscope_leg(&s, "L3", "u4", "SIP/3-1", "", "c");
	assert_int_equal(evscope_apply(&s, rows, &w, &whole), 1);
	assert_string_equal(tenants_of(&ami, 0, t, sizeof t), "{\"c\"}");
	assert_string_equal(whole.data, "L3\tf\t1\n");
	/* once the bound passes L3's rows, a new conversation L3 would be whole */
	evscope_window_trim(&w, 9);
	buf_reset(&ami);
	buf_reset(&whole);
	ev_row(&s, &ami, "u7", "L3", "SIP/3-2", 10);
	evscope_leg(&s, "L3", "u7", "SIP/3-2", "", "c");
	assert_int_equal(evscope_apply(&s, rows, &w, &whole), 1);
	assert_string_equal(whole.data, "L3\tt\t1\n");
	/* a row an earlier run stored (replay) makes its conversation not whole */
	buf_reset(&ami);
	buf_reset(&whole);
	evscope_window_note(&w, "L4", 2, 11);
	ev_row(&s, &ami, "u8", "L4", "SIP/4-1", 12);
	evscope_leg(&s, "L4", "u8", "SIP/4-1", "", "d");
	assert_int_equal(evscope_apply(&s, rows, &w, &whole), 1);
	assert_string_equal(whole.data, "L4\tf\t1\n");
	/* a conversation of events only, one with rows before, a leg of a
	 * conversation without rows, both streams: each told once */
	buf_reset(&ami);
	buf_reset(&whole);
	ev_row(&s, &ami, "u10", "L5", "SIP/5-1", 13);
	ev_row(&s, &ami, "u11", "L5", "SIP/5-2", 14);
	ev_row(&s, &ami, "u12", "L4", "SIP/4-2", 15);
	evscope_leg(&s, "L6", "u13", "SIP/6-1", "", "e");
	assert_int_equal(evscope_apply(&s, rows, &w, &whole), 0);
	assert_int_equal(lines_of(&whole), 3);
	assert_non_null(strstr(whole.data, "L5\tt\t0\n"));
	assert_non_null(strstr(whole.data, "L4\tf\t0\n"));
	assert_non_null(strstr(whole.data, "L6\tt\t1\n"));
	/* without a window nothing is whole */
	buf_reset(&ami);
	buf_reset(&whole);
	ev_row(&s, &ami, "u14", "L7", "SIP/7-1", 16);
	assert_int_equal(evscope_apply(&s, rows, NULL, &whole), 0);
	assert_string_equal(whole.data, "L7\tf\t0\n");
	buf_release(&cel);
	buf_release(&ami);
	buf_release(&whole);
	evscope_window_release(&w);
	evscope_release(&s);
}

/* fraud: and alerts: are read in the configuration's one pass */
static void test_config_fraud_one_pass(void **state)
{
	(void)state;
	struct etl_config cfg;
	char err[512];
	const char *yaml = "cdr:\n  unanswered: yes\nfraud:\n  snooze: 10m\n  rules:\n    - name: hot\n      kind: hotlist\n"
			   "      prefixes: [+882]\nalerts:\n  tenants:\n    - tenant: t1\n      max_cps: 3\n";
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(cfg_load_string(etl_keys, &cfg, "t", yaml, strlen(yaml), err, sizeof err), 0);
	assert_true(cfg.cdr_unanswered);
	/* the rule, then the five alert rows; the fraud snooze is the rule's default */
	assert_int_equal(cfg.fraud.nrules, 6);
	assert_string_equal(cfg.fraud.rules[0].name, "hot");
	assert_int_equal(cfg.fraud.rules[0].snooze_ms, 600000);
	assert_string_equal(cfg.fraud.rules[0].params_json, "{\"prefixes\": [\"882\"]}");
	assert_string_equal(cfg.fraud.rules[5].name, "endpoint_recovered");
	assert_int_equal(cfg.fraud.nlimits, 1);
	assert_int_equal(cfg.fraud.limits[0].max_cps, 3);
	assert_int_equal(cfg.fraud.limits[0].max_concurrent, -1);
	etl_config_free(&cfg);
	assert_int_equal(cfg.fraud.nrules, 0);
	/* no file: no rules, the defaults */
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(cfg_load(etl_keys, &cfg, NULL, NULL, err, sizeof err), 0);
	assert_int_equal(cfg.fraud.nrules, 0);
	assert_int_equal(cfg.fraud.max_call_ms, 4 * 3600000);
	etl_config_free(&cfg);
	/* a fraud error is the configuration's error, with file:line:col */
	yaml = "spool: /x\nfraud:\n  rules:\n    - name: a\n      kind: hotlist\n      prefixes: [882]\n      colour: red\n";
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(cfg_load_string(etl_keys, &cfg, "t", yaml, strlen(yaml), err, sizeof err), -1);
	assert_string_equal(err, "t:7:7: unknown key \"fraud.rules[0].colour\"");
	etl_config_free(&cfg);
}

/* the rule of docs/metrics.md "trunk" (as 0011's SQL cdrflow_trunk) */
static void test_leg_trunk(void **state)
{
	(void)state;
	static const struct {
		const char *ch, *dst, *dir, *want;
	} cases[] = {
		{ "SIP/phone-0000000f", "SIP/loop-0000001a", "outbound", "SIP/loop" },
		{ "SIP/loop-0000001a", "SIP/phone-0000000f", "inbound", "SIP/loop" },
		{ "SIP/loop-0000001a", "SIP/phone-0000000f", "internal", "SIP/phone" },
		{ "Local/100@internal-00000049;1", "PJSIP/carrier-00000a1b", "unknown", "PJSIP/carrier" },
		{ "Local/100@internal-00000049;1", "Local/200@x-0000004a;2", "outbound", "" },
		{ "", "", "unknown", "" },
		{ "SIP/loop-0000001a<ZOMBIE>", "", "outbound", "SIP/loop" },
		{ "SIP/a-b-0000001a", "", "outbound", "SIP/a-b" },
		{ "SIP/foo;2", "", "outbound", "SIP/foo;2" },
		{ "IAX2/peer-1234;3", "", "outbound", "IAX2/peer" },
		{ "DAHDI/1-1", "", "outbound", "DAHDI/1" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[64];
		legclass_trunk(cases[i].ch, cases[i].dst, cases[i].dir, out);
		assert_string_equal(out, cases[i].want);
	}
}

static void test_leg_country(void **state)
{
	(void)state;
	struct legclass lc;
	char err[128];
	memset(&lc, 0, sizeof lc);
	assert_null(legclass_country(&lc, "+442079460101"));
	assert_int_equal(legclass_set_countries(&lc, "1 US\n1684 AS\n44 GB\n882 XN\n88239 XS\n7 RU\n", err, sizeof err), 0);
	assert_string_equal(legclass_country(&lc, "+442079460101"), "GB");
	assert_string_equal(legclass_country(&lc, "+16845551234"), "AS");
	assert_string_equal(legclass_country(&lc, "+12125551234"), "US");
	assert_string_equal(legclass_country(&lc, "+882391234567"), "XS");
	assert_string_equal(legclass_country(&lc, "+88212345678"), "XN");
	assert_null(legclass_country(&lc, "+9991234567"));
	assert_null(legclass_country(&lc, "442079460101"));
	assert_null(legclass_country(&lc, NULL));
	assert_int_equal(legclass_set_countries(&lc, "44 GB\nbad\n", err, sizeof err), -1);
	assert_non_null(strstr(err, "line 2"));
	assert_string_equal(legclass_country(&lc, "+442079460101"), "GB"); /* the old table stays */
	free(lc.countries);
}

/* International: outside the home country of the tenant's plan; every
 * E.164 number without a plan (only + and 00 numbers are E.164 then). */
static void test_leg_international(void **state)
{
	(void)state;
	char err[128], e[24];
	struct etl_config cfg;
	memset(&cfg, 0, sizeof cfg);
	struct legclass lc;
	assert_int_equal(legclass_init(&lc, &cfg, err, sizeof err), 0);
	assert_int_equal(legclass_set_countries(&lc, "1 US\n1204 CA\n1416 CA\n1876 JM\n44 GB\n49 DE\n", err, sizeof err), 0);
	/* no plan: + and 00 (then not 0) are international, the rest national */
	legclass_e164(&cfg, NULL, "004930123456", e);
	assert_string_equal(e, "+4930123456");
	legclass_e164(&cfg, NULL, "+44 20 7946 0101", e);
	assert_string_equal(e, "+442079460101");
	legclass_e164(&cfg, NULL, "02079460101", e);
	assert_string_equal(e, "");
	legclass_e164(&cfg, NULL, "0004930123456", e);
	assert_string_equal(e, "");
	assert_true(legclass_international(&lc, NULL, "+442079460101"));
	assert_false(legclass_international(&lc, NULL, ""));
	assert_false(legclass_international(&lc, NULL, NULL));
	/* a UK plan for everyone, a NANP one for "us", a Canadian one for "ca" */
	struct number_plan plans[3] = {
		{ .tenant = "", .country_code = "44", .national_prefix = "0", .international_prefix = "00", .min_length = 7 },
		{ .tenant = "us", .country_code = "1", .national_prefix = "1", .international_prefix = "011", .min_length = 7 },
		{ .tenant = "ca", .country_code = "1", .country = "CA", .national_prefix = "1",
		  .international_prefix = "011", .min_length = 7 },
	};
	cfg.plans = plans;
	cfg.n_plans = 3;
	legclass_e164(&cfg, NULL, "02079460101", e);
	assert_string_equal(e, "+442079460101");
	assert_false(legclass_international(&lc, NULL, e));
	assert_true(legclass_international(&lc, NULL, "+4930123456"));
	assert_true(legclass_international(&lc, NULL, "+9991234567")); /* a code the table lacks */
	assert_false(legclass_international(&lc, "us", "+12025550143"));
	assert_true(legclass_international(&lc, "us", "+18765551234")); /* Jamaica shares +1 */
	assert_true(legclass_international(&lc, "us", "+4930123456"));
	assert_false(legclass_international(&lc, "ca", "+14165550143"));
	assert_true(legclass_international(&lc, "ca", "+12025550143"));
	legclass_release(&lc);
}

/* Direction without trunk globs: by the fraud: context lists. */
static void test_leg_direction_by_context(void **state)
{
	(void)state;
	char err[128];
	struct etl_config cfg;
	memset(&cfg, 0, sizeof cfg);
	struct legclass lc;
	assert_int_equal(legclass_init(&lc, &cfg, err, sizeof err), 0);
	struct cdr_row r = { .accountcode = "", .src = "1001", .dst = "004930123456", .dcontext = "internal",
			     .clid = "", .channel = "PJSIP/1001-00000001", .dstchannel = "PJSIP/carrier-00000002",
			     .lastapp = "Dial", .lastdata = "", .uniqueid = "1.1", .linkedid = "1.1", .userfield = "",
			     .peeraccount = "" };
	struct leg_extra x;
	legclass_apply(&lc, &r, &x);
	assert_string_equal(x.direction, "unknown");
	assert_true(x.dst_intl);
	char *in[] = { "did" }, *out[] = { "internal" };
	cfg.fraud.inbound_contexts = in;
	cfg.fraud.n_inbound = 1;
	legclass_apply(&lc, &r, &x);
	assert_string_equal(x.direction, "outbound"); /* only inbound listed: the rest is outbound */
	cfg.fraud.outbound_contexts = out;
	cfg.fraud.n_outbound = 1;
	r.dcontext = "queues";
	legclass_apply(&lc, &r, &x);
	assert_string_equal(x.direction, "internal");
	r.dcontext = "did";
	legclass_apply(&lc, &r, &x);
	assert_string_equal(x.direction, "inbound");
	assert_string_equal(x.trunk, "PJSIP/1001");
	legclass_release(&lc);
}

/* Leg rows wait for their call: written once, with its call_id; the
 * rest with NULL when the batch is written. */
static void test_legwait(void **state)
{
	(void)state;
	struct legwait w;
	struct buf out;
	legwait_init(&w);
	buf_init(&out, 0);
	legwait_hold(&w, "1700000000.1", "leg1\t", 5);
	legwait_hold(&w, "1700000000.2", "leg2\t", 5);
	legwait_hold(&w, "odd\"id", "leg3\t", 5);
	legwait_hold(&w, "1700000000.9", "leg4\t", 5);
	legwait_hold(&w, "1700000000.1", "leg5\t", 5);
	/* a call of two linkedids releases its three legs, in hold order */
	assert_int_equal(legwait_call(&w, "{\"1700000000.1\",\"1700000000.2\"}", "1700000000.1", &out), 3);
	buf_append(&out, "", 1);
	assert_string_equal(out.data, "leg1\t1700000000.1\nleg5\t1700000000.1\nleg2\t1700000000.1\n");
	buf_reset(&out);
	/* escaped element; a second close of the same call writes nothing */
	assert_int_equal(legwait_call(&w, "{\"odd\\\"id\"}", "c2", &out), 1);
	assert_int_equal(legwait_call(&w, "{\"1700000000.1\"}", "1700000000.1", &out), 0);
	buf_append(&out, "", 1);
	assert_string_equal(out.data, "leg3\tc2\n");
	buf_reset(&out);
	/* still up: NULL call_id */
	assert_int_equal(legwait_flush(&w, &out), 1);
	buf_append(&out, "", 1);
	assert_string_equal(out.data, "leg4\t\\N\n");
	legwait_reset(&w);
	buf_reset(&out);
	assert_int_equal(legwait_flush(&w, &out), 0);
	assert_int_equal(legwait_call(&w, "{\"1700000000.9\"}", "x", &out), 0);
	legwait_release(&w);
	buf_release(&out);
}

/* Kamailio: the SIP code -> disposition table of docs/sources.md */
/* epstate: one row per change of an endpoint's state within the batch */
struct ep_feed {
	struct epstate *s;
	struct buf *rows;
	uint64_t seq;
	int changed;
};

static int ep_on_msg(void *ctx, const struct ami_msg *m)
{
	struct ep_feed *f = ctx;
	size_t n;
	const char *name = ami_get(m, "Event", &n);
	f->changed = name && epstate_is_event(name, n) ? epstate_event(f->s, f->rows, m, name, n, f->seq, 1700000000000000u + f->seq) : -1;
	return 0;
}

static int ep_feed(struct ep_feed *f, struct ami_parser *p, const char *msg)
{
	f->seq++;
	f->changed = -2;
	assert_int_equal(ami_parser_feed_record(p, msg, strlen(msg), ep_on_msg, f), 0);
	return f->changed;
}

static void test_epstate(void **state)
{
	(void)state;
	struct epstate s;
	struct buf rows;
	struct ami_parser p;
	epstate_init(&s);
	buf_init(&rows, 0);
	ami_parser_init(&p, 65536);
	struct ep_feed f = { &s, &rows, 0, 0 };
	assert_true(epstate_is_event("DeviceStateChange", 17));
	assert_false(epstate_is_event("Newstate", 8));
	assert_int_equal(ep_feed(&f, &p, "Event: Newstate\r\nChannel: SIP/a-1\r\n\r\n"), -1);
	/* a device: a repeat of the previous state of the same device is no change */
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/100\r\nState: INUSE\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/200\r\nState: INUSE\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/100\r\nState: INUSE\r\n\r\n"), 0);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/100\r\nState: NOT_INUSE\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/100\r\nState: INUSE\r\n\r\n"), 1);
	/* no endpoint or no state: skipped, and no effect on the next one */
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nState: INUSE\r\n\r\n"), 0);
	assert_int_equal(ep_feed(&f, &p, "Event: PeerStatus\r\nPeer: SIP/trunk1\r\n\r\n"), 0);
	/* the naming of each kind; the first header of a name, as ami_get */
	assert_int_equal(ep_feed(&f, &p, "Event: PeerStatus\r\nPeer: SIP/trunk1\r\nPeer: SIP/x\r\nPeerStatus: Reachable\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: ContactStatus\r\nAOR: 100\r\nEndpointName: 100\r\nURI: sip:100@10.0.0.1:5060\r\nContactStatus: Created\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: ContactStatus\r\nAOR: 300\r\nContactStatus: Removed\r\n\r\n"), 1);
	/* the same endpoint, another contact URI: another key */
	assert_int_equal(ep_feed(&f, &p, "Event: ContactStatus\r\nEndpointName: 100\r\nURI: sip:100@10.0.0.2:5060\r\nContactStatus: Created\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: Registry\r\nChannelType: SIP\r\nUsername: acme\r\nDomain: sip.example.com\r\nStatus: Registered\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: Registry\r\nDomain: d\r\nStatus: Rejected\r\n\r\n"), 1);
	/* a value that COPY escapes, and one with invalid UTF-8: the key is what PostgreSQL stores */
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: Custom:a\\b\tc\r\nState: INUSE\r\n\r\n"), 1);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: Custom:a\\b\tc\r\nState: INUSE\r\n\r\n"), 0);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: Custom:\xff\r\nState: RINGING\r\n\r\n"), 1);
	const char *want =
		"2\t2023-11-14 22:13:20.000002+00\tdevice\tSIP/100\t\tINUSE\t{\"Event\":\"DeviceStateChange\",\"Device\":\"SIP/100\",\"State\":\"INUSE\"}\n"
		"3\t2023-11-14 22:13:20.000003+00\tdevice\tSIP/200\t\tINUSE\t";
	assert_true(rows.len > strlen(want));
	assert_memory_equal(rows.data, want, strlen(want));
	/* every row: seq, time, kind, endpoint, detail, state, fields */
	const char *keys[] = { "device\tSIP/100\t\tINUSE\t", "device\tSIP/200\t\tINUSE\t", "device\tSIP/100\t\tNOT_INUSE\t",
			       "device\tSIP/100\t\tINUSE\t", "peer\tSIP/trunk1\t\tReachable\t",
			       "contact\tPJSIP/100\tsip:100@10.0.0.1:5060\tCreated\t", "contact\t300\t\tRemoved\t",
			       "contact\tPJSIP/100\tsip:100@10.0.0.2:5060\tCreated\t",
			       "registry\tSIP/acme@sip.example.com\t\tRegistered\t", "registry\t/d\t\tRejected\t",
			       "device\tCustom:a\\\\b\\tc\t\tINUSE\t", "device\tCustom:\xef\xbf\xbd\t\tRINGING\t" };
	const char *line = rows.data;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *nl = memchr(line, '\n', rows.len - (size_t)(line - rows.data));
		assert_non_null(nl);
		const char *k = strchr(strchr(line, '\t') + 1, '\t') + 1;
		assert_memory_equal(k, keys[i], strlen(keys[i]));
		line = nl + 1;
	}
	assert_int_equal((size_t)(line - rows.data), rows.len);
	/* a new batch knows no endpoint */
	epstate_reset(&s);
	buf_reset(&rows);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/100\r\nState: INUSE\r\n\r\n"), 1);
	for (int i = 0; i < 2000; i++) { /* the table grows */
		char msg[128];
		snprintf(msg, sizeof msg, "Event: DeviceStateChange\r\nDevice: SIP/%d\r\nState: INUSE\r\n\r\n", i);
		assert_int_equal(ep_feed(&f, &p, msg), i == 100 ? 0 : 1);
	}
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/1999\r\nState: INUSE\r\n\r\n"), 0);
	assert_int_equal(ep_feed(&f, &p, "Event: DeviceStateChange\r\nDevice: SIP/1999\r\nState: RINGINUSE\r\n\r\n"), 1);
	ami_parser_release(&p);
	buf_release(&rows);
	epstate_release(&s);
}

static void test_kam_disposition(void **state)
{
	(void)state;
	assert_int_equal(kam_disposition("200", 0), CDR_ANSWERED);
	assert_int_equal(kam_disposition("202", 0), CDR_ANSWERED);
	assert_int_equal(kam_disposition("486", 0), CDR_BUSY);
	assert_int_equal(kam_disposition("600", 0), CDR_BUSY);
	assert_int_equal(kam_disposition("603", 0), CDR_BUSY);
	assert_int_equal(kam_disposition("408", 0), CDR_NOANSWER);
	assert_int_equal(kam_disposition("480", 0), CDR_NOANSWER);
	assert_int_equal(kam_disposition("487", 0), CDR_NOANSWER);
	assert_int_equal(kam_disposition("503", 0), CDR_FAILED);
	assert_int_equal(kam_disposition("500", 0), CDR_FAILED);
	assert_int_equal(kam_disposition("404", 0), CDR_FAILED);
	assert_int_equal(kam_disposition("302", 0), CDR_FAILED);
	assert_int_equal(kam_disposition("", 0), CDR_FAILED);
	assert_int_equal(kam_disposition(NULL, 0), CDR_FAILED);
	assert_int_equal(kam_disposition("48", 0), CDR_FAILED);
	assert_int_equal(kam_disposition("487", 1), CDR_ANSWERED);
}

static void test_kam_times(void **state)
{
	(void)state;
	uint64_t us;
	assert_int_equal(kam_parse_time("2026-12-06 10:57:16", 0, &us), 0);
	assert_true(us == UINT64_C(1796554636000000));
	assert_int_equal(kam_parse_time("2026-12-06 10:57:16.25", 0, &us), 0);
	assert_true(us == UINT64_C(1796554636250000));
	assert_int_equal(kam_parse_time("2026-12-06T11:57:16+01:00", 1, &us), 0);
	assert_true(us == UINT64_C(1796554636000000));
	assert_int_equal(kam_parse_time("2026-12-06 10:57:16Z", 1, &us), 0);
	assert_true(us == UINT64_C(1796554636000000));
	assert_int_equal(kam_parse_time("1796554637.414165", 1, &us), 0);
	assert_true(us == UINT64_C(1796554637414165));
	assert_int_equal(kam_parse_time("1796554637", 1, &us), 0);
	assert_true(us == UINT64_C(1796554637000000));
	assert_int_equal(kam_parse_time("", 0, &us), -1);
	assert_int_equal(kam_parse_time("0", 0, &us), -1);
	assert_int_equal(kam_parse_time("2026-13-06 10:57:16", 0, &us), -1);
	assert_int_equal(kam_parse_time("2026-12-06 10:57", 0, &us), -1);
	assert_int_equal(kam_parse_time("2026-12-06 10:57:16 junk", 0, &us), -1);
	assert_int_equal(kam_parse_time(NULL, 0, &us), -1);
}

static void test_kam_leg(void **state)
{
	(void)state;
	struct kam_source k;
	memset(&k, 0, sizeof k);
	k.time_mode = 4;
	k.context = "kamailio";
	const char *v[KF_N] = { NULL };
	v[KF_ID] = "17";
	v[KF_START] = "2026-12-06 10:57:16";
	v[KF_END] = "2026-12-06 10:57:20";
	v[KF_DURATION] = "4.011";
	v[KF_SETUP] = "1796554636.407";
	v[KF_ANSWER] = "1796554637.414165";
	v[KF_CALLID] = "abc\"d@host";
	v[KF_CODE] = "200";
	v[KF_REASON] = "OK";
	v[KF_SRC_USER] = "2001";
	v[KF_SRC_IP] = "10.1.2.3";
	v[KF_DST_USER] = "02071234567";
	v[KF_CARRIER] = "sip:gw1.example.com:5060;transport=udp";
	struct kam_leg leg;
	char err[256];
	assert_int_equal(kam_leg_build(&k, KAM_CDRS, v, "kam1", &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.disposition, CDR_ANSWERED);
	assert_true(leg.row.start_us == UINT64_C(1796554636407000));
	assert_true(leg.row.answer_us == UINT64_C(1796554637414165));
	assert_true(leg.row.end_us == UINT64_C(1796554640418000));
	assert_int_equal(leg.row.duration, 4);
	assert_int_equal(leg.row.billsec, 3);
	assert_string_equal(leg.row.channel, "SIP/10.1.2.3-00000011");
	assert_string_equal(leg.row.dstchannel, "SIP/gw1.example.com:5060-00000011");
	assert_string_equal(leg.row.lastdata, "200 OK");
	assert_string_equal(leg.row.uniqueid, "abc\"d@host");
	assert_string_equal(leg.linkedids, "{\"abc\\\"d@host\"}");
	assert_true(leg.row.sequence == 17 * KAM_KINDS + KAM_CDRS);
	assert_string_equal(leg.call.outcome, "answered");
	/* a failed dialog: Kamailio's end is its start; the failure time is the ring time */
	v[KF_END] = "2026-12-06 10:57:16";
	v[KF_DURATION] = "0";
	v[KF_ANSWER] = "";
	v[KF_CODE] = "487";
	v[KF_FAILURE] = "1796554638.5";
	assert_int_equal(kam_leg_build(&k, KAM_CDRS, v, "kam1", &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.disposition, CDR_NOANSWER);
	assert_true(leg.row.answer_us == 0);
	assert_int_equal(leg.row.duration, 2);
	assert_int_equal(leg.row.billsec, 0);
	assert_string_equal(leg.call.outcome, "no_answer");
	/* no answer time, no code: start_on_confirmed makes the start the answer */
	k.start_on_confirmed = 1;
	v[KF_SETUP] = v[KF_FAILURE] = v[KF_CODE] = NULL;
	v[KF_DURATION] = "61.5";
	assert_int_equal(kam_leg_build(&k, KAM_CDRS, v, "kam1", &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.disposition, CDR_ANSWERED);
	assert_int_equal(leg.row.billsec, 61);
	assert_int_equal(leg.row.duration, 61);
	/* ... and an INVITE time before it gives the ring time */
	v[KF_SETUP] = "1796554630.5";
	assert_int_equal(kam_leg_build(&k, KAM_CDRS, v, "kam1", &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.billsec, 61);
	assert_int_equal(leg.row.duration, 67);
	assert_true(leg.row.start_us == UINT64_C(1796554630500000));
	assert_true(leg.row.answer_us == UINT64_C(1796554636000000));
	v[KF_SETUP] = NULL;
	/* a bad key or start is refused with a reason */
	v[KF_ID] = "x1";
	assert_int_equal(kam_leg_build(&k, KAM_CDRS, v, "kam1", &leg, err, sizeof err), -1);
	v[KF_ID] = "18";
	v[KF_START] = "yesterday";
	assert_int_equal(kam_leg_build(&k, KAM_CDRS, v, "kam1", &leg, err, sizeof err), -1);
	assert_non_null(strstr(err, "start time"));
	/* missed_calls: never answered, no duration */
	v[KF_TIME] = "2026-12-06 10:57:30";
	v[KF_CODE] = "200";
	assert_int_equal(kam_leg_build(&k, KAM_MISSED, v, "kam1", &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.disposition, CDR_FAILED);
	assert_int_equal(leg.row.duration, 0);
	/* acc: an INVITE's 200 and its BYE */
	v[KF_END] = "2026-12-06 10:58:00";
	assert_int_equal(kam_leg_build(&k, KAM_ACC, v, "kam1", &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.disposition, CDR_ANSWERED);
	assert_int_equal(leg.row.billsec, 30);
	assert_true(leg.row.sequence == 18 * KAM_KINDS + KAM_ACC);
}

/* ---- doctor_rescan: a loaded range read again, skips passed, losses told ---- */

#define RESCAN_N 60

/* RESCAN_N channel events into spool/n, small segments; pos[i]: where the
 * record of sequence i + 1 starts, pos[RESCAN_N]: the end. */
static void rescan_spool(const char *spool, struct seg_pos pos[RESCAN_N + 1])
{
	struct seg_writer w;
	struct seg_recovery rec;
	struct seg_writer_opts o = { 2048, 0 };
	char err[256], data[256];
	assert_int_equal(seg_writer_open(&w, spool, "n", &o, &rec, err, sizeof err), 0);
	for (int i = 0; i < RESCAN_N; i++) {
		int len = snprintf(data, sizeof data, "Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: "
				   "1796535900.%06d\r\nChannel: SIP/a-%d\r\nUniqueid: u%d\r\n\r\n", i, i, i);
		size_t rs = seg_record_size(1, (size_t)len);
		char *r = xmalloc(rs);
		seg_record_encode(r, (uint64_t)i + 1, 1796535900000000u + (uint64_t)i, 0, "n", 1, data, (size_t)len);
		size_t written;
		assert_int_equal(seg_writer_append(&w, r, rs, &written, err, sizeof err), 0);
		free(r);
	}
	assert_int_equal(seg_writer_close(&w), 0);
	char *dir = xasprintf("%s/n", spool);
	struct seg_reader rd;
	struct seg_record rec2;
	seg_reader_open(&rd, dir, (struct seg_pos){ 0, 0 });
	for (int i = 0; i < RESCAN_N; i++) {
		assert_int_equal(seg_reader_next(&rd, &rec2), SEG_OK);
		assert_int_equal(rec2.seq, (uint64_t)i + 1);
		pos[i] = rec2.pos;
		pos[i + 1] = rec2.next;
	}
	seg_reader_close(&rd);
	free(dir);
}

/* Read [from, to) of spool/n again into a fresh doctor: the records read,
 * and the events the doctor got in *events. */
static uint64_t rescan(const char *spool, struct seg_pos from, uint64_t expect, struct seg_pos to,
		       const struct seg_pos *skips, size_t nskips, struct doctor_gap *gap, uint64_t *events)
{
	char *dir = xasprintf("%s/n", spool), err[600];
	struct amidoctor *ad = adoc_new();
	uint64_t records;
	assert_int_equal(doctor_rescan(dir, from, expect, to, skips, nskips, ad, &records, gap, err, sizeof err), EXIT_OK);
	struct adoc_summary sm;
	adoc_summary(ad, &sm);
	*events = sm.events;
	adoc_free(ad);
	free(dir);
	return records;
}

static void test_doctor_rescan(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_pos pos[RESCAN_N + 1];
	rescan_spool(tmp, pos);
	assert_true(pos[RESCAN_N].segno >= 4); /* several segments */
	struct doctor_gap gap;
	uint64_t ev;

	/* the whole range, and a range from the middle: exactly its records */
	assert_int_equal(rescan(tmp, (struct seg_pos){ 0, 0 }, 0, pos[40], NULL, 0, &gap, &ev), 40);
	assert_int_equal(ev, 40);
	assert_int_equal(gap.count, 0);
	assert_false(gap.short_read);
	assert_int_equal(rescan(tmp, pos[10], 11, pos[RESCAN_N], NULL, 0, &gap, &ev), RESCAN_N - 10);
	assert_int_equal(gap.count, 0);
	assert_false(gap.short_read);

	/* a damaged record: passed when recorded, else told (once, where) */
	char *seg = xasprintf("%s/n/%016llu.seg", tmp, (unsigned long long)pos[20].segno);
	FILE *f = fopen(seg, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)pos[20].offset + 40, SEEK_SET), 0);
	assert_int_equal(fputc('#', f), '#');
	assert_int_equal(fclose(f), 0);
	free(seg);
	assert_int_equal(rescan(tmp, pos[10], 11, pos[30], &pos[20], 1, &gap, &ev), 19);
	assert_int_equal(gap.count, 0);
	assert_int_equal(rescan(tmp, pos[10], 11, pos[30], NULL, 0, &gap, &ev), 19);
	assert_int_equal(gap.count, 1);
	assert_int_equal(gap.at.segno, pos[20].segno);
	assert_int_equal(gap.at.offset, pos[20].offset);
	assert_non_null(strstr(gap.what, "CRC"));
	/* damage at or past the end of the range is not the range's */
	assert_int_equal(rescan(tmp, pos[10], 11, pos[20], NULL, 0, &gap, &ev), 10);
	assert_int_equal(gap.count, 0);

	/* the first segment removed: told from its own position, and from
	 * the start by the sequence the range begins with */
	seg = xasprintf("%s/n/%016llu.seg", tmp, (unsigned long long)pos[0].segno);
	assert_int_equal(unlink(seg), 0);
	free(seg);
	assert_true(pos[2].segno == pos[0].segno);
	uint64_t n = rescan(tmp, pos[2], 3, pos[20], NULL, 0, &gap, &ev);
	assert_true(n > 0 && n < 18);
	assert_int_equal(gap.count, 1);
	assert_non_null(strstr(gap.what, "segment is missing"));
	rescan(tmp, (struct seg_pos){ 0, 0 }, 1, pos[20], NULL, 0, &gap, &ev);
	assert_int_equal(gap.count, 1);
	assert_non_null(strstr(gap.what, "sequence gap"));

	/* a range the spool does not reach: its records end before it */
	assert_int_equal(rescan(tmp, pos[40], 41, (struct seg_pos){ pos[RESCAN_N].segno + 3, 200 }, NULL, 0, &gap, &ev),
			 RESCAN_N - 40);
	assert_int_equal(gap.count, 0);
	assert_true(gap.short_read);
	assert_int_equal(gap.end.segno, pos[RESCAN_N].segno);
	assert_int_equal(gap.end.offset, pos[RESCAN_N].offset);
	rm_rf(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_escaping),
		cmocka_unit_test(test_legwait),
		cmocka_unit_test(test_epstate),
		cmocka_unit_test(test_utf8_repair),
		cmocka_unit_test(test_json_strings),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_event_filter),
		cmocka_unit_test(test_evscope),
		cmocka_unit_test(test_config_fraud_one_pass),
		cmocka_unit_test(test_leg_trunk),
		cmocka_unit_test(test_leg_country),
		cmocka_unit_test(test_leg_international),
		cmocka_unit_test(test_leg_direction_by_context),
		cmocka_unit_test(test_kam_disposition),
		cmocka_unit_test(test_kam_times),
		cmocka_unit_test(test_kam_leg),
		cmocka_unit_test(test_doctor_rescan),
	};
	return cmocka_run_group_tests_name("etl", tests, NULL, NULL);
}
