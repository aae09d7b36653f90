/*
 * test_amidoctor.c - the doctor tells "missing" (proved by the activity that
 * produces the input) from "not seen" (no such activity).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ami.h"
#include "amidoctor.h"

struct feed {
	struct amidoctor *d;
};

static int on_msg(void *ctx, const struct ami_msg *m)
{
	adoc_event(((struct feed *)ctx)->d, m, 1796535900000000u);
	return 0;
}

/* Feed AMI text ("\n" line ends, messages separated by blank lines). */
static void feed(struct amidoctor *d, const char *text)
{
	struct ami_parser p;
	struct feed f = { d };
	ami_parser_init(&p, 1 << 20);
	assert_int_equal(ami_parser_feed(&p, text, strlen(text), on_msg, &f), 0);
	ami_parser_release(&p);
}

static enum adoc_state state_of(const struct amidoctor *d, enum adoc_input i, struct adoc_verdict *v)
{
	adoc_verdict(d, i, v);
	return v->state;
}

/* Two seconds later: the stream went on long enough to prove an absence. */
#define LATER "Event: DeviceStateChange\nPrivilege: call,all\nTimestamp: 1796535903.000001\nDevice: SIP/a\n\n"

#define CHAN(ev, prio, extra) \
	"Event: " ev "\nPrivilege: call,all\nTimestamp: 1796535900.000001\nChannel: SIP/a-1\nUniqueid: u1\n" \
	"Linkedid: u1\nContext: in\nExten: s\nPriority: " prio "\n" extra "\n"

static void test_nothing(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	for (int i = 0; i < AI_N; i++)
		assert_int_equal(state_of(d, (enum adoc_input)i, &v), ADOC_NOT_SEEN);
	assert_int_equal(adoc_missing_all(d), 0);
	adoc_free(d);
}

static void test_newexten_needs_proof(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	feed(d, CHAN("Newchannel", "1", "ChanVariable: TENANT=\n") CHAN("Hangup", "1", "ChanVariable: TENANT=\n"));
	assert_int_equal(state_of(d, AI_NEWEXTEN, &v), ADOC_NOT_SEEN);
	assert_int_equal(state_of(d, AI_VARSET, &v), ADOC_NOT_SEEN);
	assert_int_equal(state_of(d, AI_TIMESTAMP, &v), ADOC_PRESENT);
	assert_int_equal(state_of(d, AI_CHANVARIABLE, &v), ADOC_PRESENT);
	/* the channel moved on in the dialplan: Newexten should have come... */
	feed(d, CHAN("Newstate", "2", "ChannelState: 6\n"));
	assert_int_equal(state_of(d, AI_NEWEXTEN, &v), ADOC_NOT_SEEN); /* ...unless the stream stops right here */
	feed(d, LATER);
	assert_int_equal(state_of(d, AI_NEWEXTEN, &v), ADOC_MISSING);
	assert_true(v.rows);
	assert_non_null(strstr(v.evidence, "priority >= 2"));
	assert_true(adoc_missing_rows(d) & (1u << AI_NEWEXTEN));
	feed(d, CHAN("Newexten", "3", "Application: Wait\nAppData: 1\n"));
	assert_int_equal(state_of(d, AI_NEWEXTEN, &v), ADOC_PRESENT);
	adoc_free(d);
}

static void test_varset_dial_proves(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	feed(d, "Event: DialEnd\nPrivilege: call,all\nTimestamp: 1796535900.1\nChannel: SIP/a-1\nUniqueid: u1\n"
		"DestChannel: SIP/b-2\nDialStatus: BUSY\n\n");
	assert_int_equal(state_of(d, AI_VARSET, &v), ADOC_NOT_SEEN); /* its VarSet may be the next event */
	feed(d, LATER);
	assert_int_equal(state_of(d, AI_VARSET, &v), ADOC_MISSING);
	assert_non_null(strstr(v.evidence, "DIALSTATUS"));
	feed(d, CHAN("VarSet", "2", "Variable: DIALSTATUS\nValue: BUSY\n"));
	assert_int_equal(state_of(d, AI_VARSET, &v), ADOC_PRESENT);
	adoc_free(d);
}

static void test_timestamp_channelvars_cel(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	feed(d, "Event: FullyBooted\nPrivilege: system,all\nStatus: Fully Booted\n\n"
		"Event: Newchannel\nPrivilege: call,all\nChannel: SIP/a-1\nUniqueid: u1\nPriority: 1\n\n"
		"Event: Hangup\nPrivilege: call,all\nChannel: SIP/a-1\nUniqueid: u1\nPriority: 1\n\n");
	assert_int_equal(state_of(d, AI_CEL, &v), ADOC_NOT_SEEN); /* CEL may follow */
	for (int i = 0; i < 200; i++)
		feed(d, "Event: DeviceStateChange\nPrivilege: call,all\nDevice: SIP/a\n\n");
	assert_int_equal(state_of(d, AI_TIMESTAMP, &v), ADOC_MISSING);
	assert_true(v.rows);
	assert_int_equal(state_of(d, AI_CHANVARIABLE, &v), ADOC_MISSING);
	assert_int_equal(state_of(d, AI_CEL, &v), ADOC_MISSING);
	assert_int_equal(state_of(d, AI_CEL_TYPES, &v), ADOC_NOT_SEEN);
	struct adoc_summary s;
	adoc_summary(d, &s);
	assert_int_equal(s.events, 202); /* FullyBooted never counts */
	assert_true(s.clock_is_receive);
	assert_string_equal(s.classes, "system,call");
	adoc_free(d);
}

static void test_timestamp_on_part_only(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	for (int i = 0; i < 99; i++)
		feed(d, LATER);
	feed(d, "Event: DeviceStateChange\nPrivilege: call,all\nDevice: SIP/a\n\n");
	assert_int_equal(state_of(d, AI_TIMESTAMP, &v), ADOC_PRESENT); /* 1 of 100: tolerated */
	feed(d, "Event: DeviceStateChange\nPrivilege: call,all\nDevice: SIP/a\n\n");
	assert_int_equal(state_of(d, AI_TIMESTAMP, &v), ADOC_MISSING);
	assert_non_null(strstr(v.evidence, "only 99 of 101"));
	adoc_free(d);
}

static void test_rtcp(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	feed(d, CHAN("Newstate", "1", "ChannelState: 6\n")
		"Event: Hangup\nPrivilege: call,all\nTimestamp: 1796535905.000001\nChannel: SIP/a-1\nUniqueid: u1\n\n" LATER);
	assert_int_equal(state_of(d, AI_RTCP, &v), ADOC_NOT_SEEN); /* up 5 s: maybe no report was due */
	feed(d, "Event: Newstate\nPrivilege: call,all\nTimestamp: 1796535906.0\nChannel: PJSIP/b-2\nUniqueid: u2\n"
		"ChannelState: 6\n\n"
		"Event: Hangup\nPrivilege: call,all\nTimestamp: 1796535926.0\nChannel: PJSIP/b-2\nUniqueid: u2\n\n"
		"Event: DeviceStateChange\nPrivilege: call,all\nTimestamp: 1796535929.0\nDevice: SIP/a\n\n");
	assert_int_equal(state_of(d, AI_RTCP, &v), ADOC_MISSING);
	assert_false(v.rows);
	feed(d, "Event: RTCPSent\nPrivilege: reporting,all\nTimestamp: 1796535930.0\nChannel: PJSIP/b-2\nUniqueid: u2\n\n");
	assert_int_equal(state_of(d, AI_RTCP, &v), ADOC_PRESENT);
	adoc_free(d);
}

static void test_cel_types(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	feed(d, CHAN("Newchannel", "1", "") CHAN("Hangup", "1", "")
		"Event: CEL\nPrivilege: call,all\nTimestamp: 1796535900.2\nEventName: CHAN_START\nChannel: SIP/a-1\n"
		"UniqueID: u1\n\n" LATER);
	assert_int_equal(state_of(d, AI_CEL, &v), ADOC_PRESENT);
	assert_int_equal(state_of(d, AI_CEL_TYPES, &v), ADOC_MISSING);
	assert_true(v.rows);
	assert_non_null(strstr(v.evidence, "HANGUP"));
	assert_null(strstr(v.evidence, "CHAN_START"));
	assert_null(strstr(v.evidence, "BRIDGE_ENTER")); /* no bridge happened */
	adoc_free(d);
}

static void test_queue_is_analytics_only(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	feed(d, CHAN("Newexten", "2", "Application: Queue\nAppData: support\n") LATER);
	assert_int_equal(state_of(d, AI_QUEUE, &v), ADOC_MISSING);
	assert_false(v.rows);
	assert_false(adoc_missing_rows(d) & (1u << AI_QUEUE));
	assert_true(adoc_missing_all(d) & (1u << AI_QUEUE));
	/* Queue ran, so the Dial events of its members should be there too */
	assert_int_equal(state_of(d, AI_DIAL, &v), ADOC_MISSING);
	adoc_free(d);
}

/* Keys are caseless and the first of a repeated key counts (as ami_get()
 * finds them); ChanVariable is a prefix (ChanVariable(TENANT) too). */
static void test_header_lookup(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new();
	struct adoc_verdict v;
	feed(d, "Event: Newchannel\nprivilege: dialplan,all\nTIMESTAMP: 1796535900.000001\nchannel: SIP/a-1\n"
		"UNIQUEID: u1\npriority: 1\nPriority: 3\nChanVariable(TENANT): x\n\n"
		"Event: DialEnd\nPrivilege: call,all\nTimestamp: 1796535900.000002\nChannel: SIP/a-1\nUniqueid: u1\n"
		"DialStatus: BUSY\nDialStatus: ANSWER\n\n" LATER);
	struct adoc_summary s;
	adoc_summary(d, &s);
	assert_string_equal(s.classes, "call,dialplan");
	assert_int_equal(s.with_timestamp, 3);
	assert_int_equal(s.channel_events, 2);
	assert_int_equal(state_of(d, AI_CHANVARIABLE, &v), ADOC_PRESENT);
	assert_string_equal(v.evidence, "on 1 of 2 channel events");
	assert_int_equal(state_of(d, AI_NEWEXTEN, &v), ADOC_NOT_SEEN); /* priority 1 (the first) */
	assert_int_equal(state_of(d, AI_NEWSTATE, &v), ADOC_NOT_SEEN); /* DialStatus BUSY (the first) */
	assert_int_equal(state_of(d, AI_VARSET, &v), ADOC_MISSING);    /* a DialEnd from a caller */
	adoc_free(d);
}

/* A copy knows what the original knew and goes on alone; the span is the
 * part fed since adoc_span_start(). */
static void test_copy_and_span(void **state)
{
	(void)state;
	struct amidoctor *d = adoc_new(), *c;
	struct adoc_verdict v;
	uint64_t first, last;
	feed(d, CHAN("Newstate", "1", "ChannelState: 6\nChanVariable: TENANT=\n"));
	adoc_span(d, &first, &last);
	assert_int_equal(first, 1796535900000001u);
	adoc_span_start(d);
	adoc_span(d, &first, &last);
	assert_int_equal(first, 0);
	assert_int_equal(last, 0);
	c = adoc_dup(d);
	feed(c, LATER);
	adoc_span(c, &first, &last);
	assert_int_equal(first, 1796535903000001u);
	assert_int_equal(last, 1796535903000001u);
	struct adoc_summary sd, sc;
	adoc_summary(d, &sd);
	adoc_summary(c, &sc);
	assert_int_equal(sd.events, 1);
	assert_int_equal(sc.events, 2);
	assert_int_equal(sc.first_us, 1796535900000001u);
	/* the copy has its own table of answered SIP channels: a hang-up 20 s later proves RTCP missing in it only */
	feed(c, "Event: Hangup\nPrivilege: call,all\nTimestamp: 1796535920.000001\nChannel: SIP/a-1\nUniqueid: u1\n"
		"Linkedid: u1\nChanVariable: TENANT=\n\n" LATER LATER);
	assert_int_equal(state_of(c, AI_RTCP, &v), ADOC_NOT_SEEN); /* not yet: 200 events or 2 s after */
	adoc_copy(d, c);
	adoc_summary(d, &sd);
	adoc_summary(c, &sc);
	assert_int_equal(sd.events, 5);
	assert_int_equal(sc.events, 5);
	feed(d, "Event: DeviceStateChange\nPrivilege: call,all\nTimestamp: 1796535925.000001\nDevice: SIP/a\n\n");
	assert_int_equal(state_of(d, AI_RTCP, &v), ADOC_MISSING);
	assert_int_equal(state_of(c, AI_RTCP, &v), ADOC_NOT_SEEN);
	adoc_free(c);
	adoc_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing),
		cmocka_unit_test(test_newexten_needs_proof),
		cmocka_unit_test(test_varset_dial_proves),
		cmocka_unit_test(test_timestamp_channelvars_cel),
		cmocka_unit_test(test_timestamp_on_part_only),
		cmocka_unit_test(test_rtcp),
		cmocka_unit_test(test_cel_types),
		cmocka_unit_test(test_queue_is_analytics_only),
		cmocka_unit_test(test_header_lookup),
		cmocka_unit_test(test_copy_and_span),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
