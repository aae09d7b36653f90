/*
 * test_etl.c - COPY text encoding, JSON strings, UTF-8 repair, event filters,
 * the trunk and destination country of a leg (legclass).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "copyfmt.h"
#include "legclass.h"
#include "legwait.h"
#include "strparse.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_escaping),
		cmocka_unit_test(test_legwait),
		cmocka_unit_test(test_utf8_repair),
		cmocka_unit_test(test_json_strings),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_event_filter),
		cmocka_unit_test(test_leg_trunk),
		cmocka_unit_test(test_leg_country),
	};
	return cmocka_run_group_tests_name("etl", tests, NULL, NULL);
}
