/*
 * test_yeastar.c - Yeastar messages (lib/yeastar.c) on the examples of
 * Yeastar's developer guide, and the sources: key table (lib/sources.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "sources.h"
#include "yeastar.h"

/* the guide's 30012 example (extension 2005 calls 2002), msg as a string */
static const char P_CDR[] =
	"{\n\"type\":30012,\n\"sn\":\"3631A2124XXX\",\n\"msg\":\"{\\\"call_id\\\":\\\"1651057476.362\\\","
	"\\\"time_start\\\":\\\"2022/04/27 19:04:36\\\",\\\"call_from\\\":\\\"2005\\\",\\\"call_to\\\":\\\"2002\\\","
	"\\\"call_duration\\\":7,\\\"talk_duration\\\":3,\\\"src_trunk_name\\\":\\\"\\\",\\\"dst_trunk_name\\\":\\\"\\\","
	"\\\"pin_code\\\":\\\"\\\",\\\"status\\\":\\\"ANSWERD\\\",\\\"type\\\":\\\"Internal\\\","
	"\\\"recording\\\":\\\"20220427190436-2005-2002.wav\\\",\\\"did_number\\\":\\\"\\\",\\\"agent_ring_time\\\":0}\"\n}";

/* the S-Series NewCdr push, misspelled fields, numbers as strings */
static const char S_CDR[] =
	"{\"event\":\"NewCdr\",\"callid\":\"1571897931.6\",\"timestart\":\"2019-10-23 22:20:01\",\"callfrom\":\"1023\","
	"\"callto\":\"0049301234999\",\"callduraction\":\"30\",\"talkduraction\":\"21\",\"srctrunkname\":\"\","
	"\"dsttrcunkname\":\"S-Carrier\",\"pincode\":\"7788\",\"status\":\"ANSWERED\",\"type\":\"Outbound\","
	"\"recording\":\"\",\"didnumber\":\"\",\"agentringtime\":\"0\",\"sn\":\"369451090405\"}";

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(ys_classify(P_CDR, strlen(P_CDR)), YS_EVENT);
	assert_int_equal(ys_classify(S_CDR, strlen(S_CDR)), YS_EVENT);
	const char *reply = "{\"errcode\":0,\"errmsg\":\"SUCCESS\"}";
	assert_int_equal(ys_classify(reply, strlen(reply)), YS_REPLY);
	assert_int_equal(ys_classify("heartbeat response", 18), YS_REPLY);
	assert_int_equal(ys_classify("{\"type\":30012,", 14), YS_GARBAGE);
	assert_int_equal(ys_classify("[1]", 3), YS_GARBAGE);
	assert_int_equal(ys_classify("", 0), YS_GARBAGE);
	/* a broken msg is still an event as received: stored, the ETL says why it makes no leg */
	const char *bad = "{\"type\":30012,\"sn\":\"x\",\"msg\":\"{broken\"}";
	assert_int_equal(ys_classify(bad, strlen(bad)), YS_EVENT);
	struct ys_event ev;
	char err[256];
	assert_int_equal(ys_event_parse(bad, strlen(bad), &ev, err, sizeof err), -1);
	assert_non_null(strstr(err, "msg is not a JSON object"));
}

static void test_p_series_cdr(void **state)
{
	(void)state;
	struct ys_event ev;
	char err[256] = "";
	assert_int_equal(ys_event_parse(P_CDR, strlen(P_CDR), &ev, err, sizeof err), 0);
	assert_int_equal(ev.type, 30012);
	assert_string_equal(ev.sn, "3631A2124XXX");
	assert_true(ys_event_is_cdr(&ev));
	struct ys_leg leg;
	/* the PBX at UTC+8: 19:04:36 local is 11:04:36Z */
	assert_int_equal(ys_leg_from_event(&ev, 8 * 3600, 0, 42, &leg, err, sizeof err), 0);
	assert_string_equal(err, "");
	assert_int_equal(leg.row.start_us, UINT64_C(1651057476) * 1000000u);
	assert_int_equal(leg.row.duration, 7);
	assert_int_equal(leg.row.billsec, 3);
	assert_int_equal(leg.row.end_us - leg.row.answer_us, 3000000u);
	assert_int_equal(leg.row.disposition, CDR_ANSWERED);
	assert_string_equal(leg.row.uniqueid, "1651057476.362");
	assert_string_equal(leg.row.src, "2005");
	assert_string_equal(leg.row.dst, "2002");
	assert_string_equal(leg.row.channel, "Yeastar/ext/2005");
	assert_string_equal(leg.row.dstchannel, "Yeastar/ext/2002");
	assert_string_equal(leg.direction, "internal");
	assert_string_equal(leg.trunk, "");
	assert_string_equal(leg.row.userfield, "20220427190436-2005-2002.wav");
	assert_int_equal(leg.row.sequence, 42);
	assert_string_equal(leg.call.outcome, "answered");
	assert_string_equal(leg.call.linkedids, "{\"1651057476.362\"}");
	ys_event_release(&ev);
}

static void test_s_series_cdr(void **state)
{
	(void)state;
	struct ys_event ev;
	char err[256] = "";
	assert_int_equal(ys_event_parse(S_CDR, strlen(S_CDR), &ev, err, sizeof err), 0);
	assert_int_equal(ev.type, 0);
	assert_string_equal(ev.name, "NewCdr");
	assert_true(ys_event_is_cdr(&ev));
	struct ys_leg leg;
	assert_int_equal(ys_leg_from_event(&ev, 0, 0, 1, &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.duration, 30);
	assert_int_equal(leg.row.billsec, 21);
	assert_string_equal(leg.direction, "outbound");
	assert_string_equal(leg.trunk, "S-Carrier");
	assert_string_equal(leg.row.dstchannel, "Yeastar/trunk/S-Carrier");
	assert_string_equal(leg.row.accountcode, "7788");
	ys_event_release(&ev);
}

static void test_dispositions(void **state)
{
	(void)state;
	bool known;
	assert_int_equal(ys_disposition("ANSWERD", &known), CDR_ANSWERED);
	assert_true(known);
	assert_int_equal(ys_disposition("VOICEMAIL", &known), CDR_ANSWERED);
	assert_int_equal(ys_disposition("NO ANSWER", &known), CDR_NOANSWER);
	assert_int_equal(ys_disposition("no answered", &known), CDR_NOANSWER);
	assert_int_equal(ys_disposition("BUSY", &known), CDR_BUSY);
	assert_int_equal(ys_disposition("FAILED", &known), CDR_FAILED);
	assert_true(known);
	assert_int_equal(ys_disposition("SOMETHING", &known), CDR_FAILED);
	assert_false(known);
	/* an unanswered call has no billsec whatever talk_duration says */
	const char *m = "{\"type\":30012,\"msg\":{\"call_id\":\"1\",\"call_duration\":9,\"talk_duration\":4,\"status\":\"BUSY\","
			"\"type\":\"Inbound\",\"did_number\":\"442071234567\",\"call_to\":\"2001\",\"src_trunk_name\":\"In\"}}";
	struct ys_event ev;
	char err[128] = "";
	struct ys_leg leg;
	assert_int_equal(ys_event_parse(m, strlen(m), &ev, err, sizeof err), 0);
	assert_int_equal(ys_leg_from_event(&ev, 0, UINT64_C(1700000000000000), 1, &leg, err, sizeof err), 0);
	assert_int_equal(leg.row.billsec, 0);
	assert_int_equal(leg.row.answer_us, 0);
	assert_string_equal(leg.row.dst, "442071234567"); /* inbound: the DID */
	assert_string_equal(leg.trunk, "In");
	assert_int_equal(leg.row.start_us, UINT64_C(1700000000000000) - 9000000u); /* no time_start */
	ys_event_release(&ev);
}

static void test_times(void **state)
{
	(void)state;
	assert_int_equal(ys_parse_time("2019-10-23 22:18:50", 0), UINT64_C(1571869130) * 1000000u);
	assert_int_equal(ys_parse_time("2019/10/23 22:18:50", -3600), UINT64_C(1571872730) * 1000000u);
	assert_int_equal(ys_parse_time("2019/10-23 22:18:50", 0), 0);
	assert_int_equal(ys_parse_time("2019-13-23 22:18:50", 0), 0);
	assert_int_equal(ys_parse_time("2019-10-23 22:18:50x", 0), 0);
	assert_int_equal(ys_parse_time("", 0), 0);
	int64_t off = 1;
	assert_int_equal(source_parse_utc_offset("+05:30", &off), 0);
	assert_int_equal(off, 19800);
	assert_int_equal(source_parse_utc_offset("-0800", &off), 0);
	assert_int_equal(off, -28800);
	assert_int_equal(source_parse_utc_offset("Z", &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(source_parse_utc_offset("5:30", &off), -1);
	assert_int_equal(source_parse_utc_offset("+25:00", &off), -1);
}

struct top {
	struct source_config *s;
	size_t n;
};
static const struct cfg_key top_keys[] = {
	{ "sources", CFG_LIST, offsetof(struct top, s), NULL, 0, 0, NULL, "", 0, source_item_keys,
	  sizeof(struct source_config), offsetof(struct top, n) },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};

static int load(const char *yaml, char *err, size_t errlen, struct top *t)
{
	memset(t, 0, sizeof *t);
	if (cfg_load_string(top_keys, t, "t", yaml, strlen(yaml), err, errlen) < 0)
		return -1;
	return sources_check(t->s, t->n, NULL, 0, "t", err, errlen);
}

static void test_sources_keys(void **state)
{
	(void)state;
	struct top t;
	char err[512];
	assert_int_equal(load("sources:\n  - name: ys\n    type: yeastar\n    yeastar:\n      api_url: https://pbx:8088/openapi/v1.0\n"
			      "      client_id: abc\n      utc_offset: \"+02:00\"\n", err, sizeof err, &t), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.s[0].type, SOURCE_YEASTAR);
	assert_int_equal(t.s[0].yeastar.transport, YEASTAR_WEBSOCKET);
	assert_int_equal(t.s[0].yeastar.utc_offset_s, 7200);
	assert_string_equal(t.s[0].yeastar.secret_env, "CDRFLOW_YEASTAR_SECRET");
	assert_int_equal(t.s[0].yeastar.heartbeat_ms, 20000);
	cfg_free(top_keys, &t);
	/* websocket without api_url */
	assert_int_equal(load("sources:\n  - name: ys\n    type: yeastar\n", err, sizeof err, &t), -1);
	assert_non_null(strstr(err, "sources[0].yeastar.api_url"));
	cfg_free(top_keys, &t);
	/* a name used twice, an unknown type, an unknown key */
	assert_int_equal(load("sources:\n  - name: a\n    type: yeastar\n    yeastar:\n      transport: webhook\n"
			      "  - name: a\n    type: yeastar\n    yeastar:\n      transport: webhook\n", err, sizeof err, &t), -1);
	assert_non_null(strstr(err, "used twice"));
	cfg_free(top_keys, &t);
	assert_int_equal(load("sources:\n  - name: a\n    type: asterisk\n", err, sizeof err, &t), -1);
	cfg_free(top_keys, &t);
	assert_int_equal(load("sources:\n  - name: a\n    type: yeastar\n    yeastar:\n      secret: x\n", err, sizeof err, &t), -1);
	cfg_free(top_keys, &t);
	assert_int_equal(load("sources:\n  - name: a\n    type: yeastar\n    yeastar:\n      transport: webhook\n      listen: nowhere\n",
			      err, sizeof err, &t), -1);
	assert_non_null(strstr(err, "yeastar.listen"));
	cfg_free(top_keys, &t);
	/* the S-Series login: webhook only, with the API credentials */
	assert_int_equal(load("sources:\n  - name: a\n    type: yeastar\n    yeastar:\n      s_series_login: true\n"
			      "      api_url: http://pbx/api/v2.0.0\n      client_id: api\n", err, sizeof err, &t), -1);
	assert_non_null(strstr(err, "needs transport webhook"));
	cfg_free(top_keys, &t);
	assert_int_equal(load("sources:\n  - name: a\n    type: yeastar\n    yeastar:\n      transport: webhook\n"
			      "      s_series_login: true\n", err, sizeof err, &t), -1);
	assert_non_null(strstr(err, "sources[0].yeastar.api_url"));
	cfg_free(top_keys, &t);
	assert_int_equal(load("sources:\n  - name: a\n    type: yeastar\n    yeastar:\n      transport: webhook\n"
			      "      s_series_login: true\n      api_url: http://pbx/api/v2.0.0\n      client_id: api\n",
			      err, sizeof err, &t), 0);
	cfg_free(top_keys, &t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_p_series_cdr),
		cmocka_unit_test(test_s_series_cdr),
		cmocka_unit_test(test_dispositions),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_sources_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
