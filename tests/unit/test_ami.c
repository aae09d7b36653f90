/*
 * test_ami.c - the AMI parser, fed real captures in every chunking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ami.h"
#include "crc32c.h"
#include "testutil.h"
#include "xalloc.h"

/* What a parse produced: counts and a running hash of every message. */
struct tally {
	uint64_t events, responses, other, garbage, oversized, banners;
	uint32_t hash;        /* CRC over kind + raw bytes of every message, in order */
	uint32_t header_hash; /* CRC over every indexed key/value */
	char first_event[64];
	char banner[64];
};

static int tally_msg(void *ctx, const struct ami_msg *m)
{
	struct tally *t = ctx;
	unsigned char kind = (unsigned char)m->kind;
	t->hash = crc32c(t->hash, &kind, 1);
	t->hash = crc32c(t->hash, m->raw, m->raw_len);
	for (size_t i = 0; i < m->nhdr; i++) {
		t->header_hash = crc32c(t->header_hash, m->raw + m->hdr[i].key_off, m->hdr[i].key_len);
		t->header_hash = crc32c(t->header_hash, "=", 1);
		t->header_hash = crc32c(t->header_hash, m->raw + m->hdr[i].val_off, m->hdr[i].val_len);
	}
	switch (m->kind) {
	case AMI_EVENT:
		if (!t->events++) {
			size_t len;
			const char *v = ami_get(m, "Event", &len);
			snprintf(t->first_event, sizeof t->first_event, "%.*s", (int)len, v);
		}
		break;
	case AMI_RESPONSE: t->responses++; break;
	case AMI_OTHER: t->other++; break;
	case AMI_ERR_GARBAGE: t->garbage++; break;
	case AMI_ERR_OVERSIZED: t->oversized++; break;
	case AMI_BANNER:
		t->banners++;
		snprintf(t->banner, sizeof t->banner, "%.*s", (int)m->raw_len, m->raw);
		break;
	}
	return 0;
}

static int fast_mode; /* ami_parser.headers_only_first_event for the next parses */

static struct tally parse_chunked(const char *data, size_t len, size_t chunk, size_t max_msg)
{
	struct tally t;
	memset(&t, 0, sizeof t);
	struct ami_parser p;
	ami_parser_init(&p, max_msg);
	p.headers_only_first_event = fast_mode;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		assert_int_equal(ami_parser_feed(&p, data + off, n, tally_msg, &t), 0);
	}
	ami_parser_release(&p);
	return t;
}

/* Independent of the parser: lines that start with "Event: ". */
static uint64_t count_event_lines(const char *data, size_t len)
{
	uint64_t n = 0;
	for (size_t i = 0; i + 7 <= len; i++)
		if ((i == 0 || data[i - 1] == '\n') && !memcmp(data + i, "Event: ", 7))
			n++;
	return n;
}

static void check_capture(const char *name, int thorough)
{
	char *path = xasprintf("%s/captures/%s/ami.raw", shared_dir(), name);
	size_t len;
	char *data = slurp(path, &len);
	if (!data) {
		free(path);
		path = xasprintf("%s/captures/%s/ami.raw.xz", shared_dir(), name);
		data = slurp(path, &len);
	}
	if (!data)
		fail_msg("capture %s not found (set CDRFLOW_SHARED)", path);
	struct tally whole = parse_chunked(data, len, len, 1u << 20);
	assert_int_equal(whole.events, count_event_lines(data, len));
	assert_int_equal(whole.banners, 1);
	assert_string_equal(whole.banner, "Asterisk Call Manager/9.0.0");
	assert_int_equal(whole.garbage, 0);
	assert_int_equal(whole.oversized, 0);
	assert_string_equal(whole.first_event, "FullyBooted");
	assert_true(whole.responses >= 2);

	/* every chunk size from 1 up to 64, then growing sizes up to the file */
	size_t sizes[256], n = 0;
	if (getenv("CDRFLOW_QUICK")) /* sanitizer builds: fewer passes */
		thorough = 0;
	if (thorough) {
		for (size_t s = 1; s <= 64; s++)
			sizes[n++] = s;
		for (double s = 67; s < (double)len && n < 250; s *= 1.37)
			sizes[n++] = (size_t)s;
	} else {
		sizes[n++] = len > (8u << 20) ? 61 : 1;
		sizes[n++] = 4093;
		sizes[n++] = 65537;
	}
	/* the collector's fast path: same messages, same bytes, events carry
	 * only their Event header */
	fast_mode = 1;
	struct tally fast = parse_chunked(data, len, 4093, 1u << 20);
	fast_mode = 0;
	assert_int_equal(fast.hash, whole.hash);
	assert_int_equal(fast.events, whole.events);
	assert_string_equal(fast.first_event, whole.first_event);
	for (size_t i = 0; i < n; i++) {
		struct tally t = parse_chunked(data, len, sizes[i], 1u << 20);
		if (t.hash != whole.hash || t.header_hash != whole.header_hash || t.events != whole.events)
			fail_msg("%s: chunk size %zu gives %llu events (want %llu) or different bytes", name, sizes[i],
				 (unsigned long long)t.events, (unsigned long long)whole.events);
	}
	free(data);
	free(path);
}

static void test_capture_s01(void **state) { (void)state; check_capture("s01_answered", 1); }
static void test_capture_s02(void **state) { (void)state; check_capture("s02_unanswered", 1); }
static void test_capture_s03(void **state) { (void)state; check_capture("s03_sip_rtp", 1); }
static void test_capture_s03b(void **state) { (void)state; check_capture("s03b_sip_rtp_impaired", 1); }
static void test_capture_s04(void **state) { (void)state; check_capture("s04_queue", 1); }
static void test_capture_s05(void **state) { (void)state; check_capture("s05_transfer", 1); }
static void test_capture_s06(void **state) { (void)state; check_capture("s06_fork", 1); }
static void test_capture_s07(void **state) { (void)state; check_capture("s07_trunk_tenant", 1); }
static void test_capture_s08(void **state) { (void)state; check_capture("s08_burst", 0); }

/* Run a literal through every chunk size; all must agree. */
static struct tally parse_all_chunkings(const char *text, size_t max_msg)
{
	size_t len = strlen(text);
	struct tally whole = parse_chunked(text, len, len ? len : 1, max_msg);
	for (size_t c = 1; c < len; c++) {
		struct tally t = parse_chunked(text, len, c, max_msg);
		assert_int_equal(t.hash, whole.hash);
		assert_int_equal(t.header_hash, whole.header_hash);
	}
	return whole;
}

static int check_headers(void *ctx, const struct ami_msg *m)
{
	int *seen = ctx;
	if (m->kind != AMI_EVENT)
		return 0;
	size_t len;
	const char *v = ami_get(m, "event", &len); /* keys are case-insensitive */
	assert_non_null(v);
	assert_int_equal(len, 3);
	assert_memory_equal(v, "Foo", 3);
	v = ami_get(m, "Empty", &len);
	assert_non_null(v);
	assert_int_equal(len, 0);
	v = ami_get(m, "ChanVariable", &len); /* first of a repeated key */
	assert_non_null(v);
	assert_memory_equal(v, "A=1", 3);
	assert_null(ami_get(m, "Missing", &len));
	assert_true(ami_value_is(m, "Event", "foo"));
	(*seen)++;
	return 0;
}

static void test_bare_lf_and_headers(void **state)
{
	(void)state;
	const char *text = "Asterisk Call Manager/2.10.6\n"
			   "Event: Foo\nEmpty: \nChanVariable: A=1\nChanVariable: B=2\n\n"
			   "Event: Foo\r\nEmpty:\r\nChanVariable: A=1\r\n\r\n";
	struct tally t = parse_all_chunkings(text, 4096);
	assert_int_equal(t.events, 2);
	int seen = 0;
	struct ami_parser p;
	ami_parser_init(&p, 4096);
	assert_int_equal(ami_parser_feed(&p, text, strlen(text), check_headers, &seen), 0);
	assert_int_equal(seen, 2);
	assert_int_equal(p.version[0], 2);
	assert_int_equal(p.version[1], 10);
	assert_int_equal(p.version[2], 6);
	ami_parser_release(&p);
}

static void test_no_banner_and_stray_blank_lines(void **state)
{
	(void)state;
	struct tally t = parse_all_chunkings("\r\n\r\nEvent: A\r\nX: 1\r\n\r\n\r\n\r\nEvent: B\r\n\r\n", 4096);
	assert_int_equal(t.events, 2);
	assert_int_equal(t.banners, 0);
	assert_int_equal(t.garbage, 0);
}

/* Asterisk <= 13: Command output as Response: Follows ... --END COMMAND-- */
static void test_follows_command_output(void **state)
{
	(void)state;
	const char *text = "Asterisk Call Manager/1.3\r\n"
			   "Response: Follows\r\nPrivilege: Command\r\nActionID: x1\r\n"
			   "Name: looks like a header\n\nEvent: not an event\n"
			   "--END COMMAND--\r\n\r\n"
			   "Event: Real\r\nTimestamp: 1.5\r\n\r\n";
	struct tally t = parse_all_chunkings(text, 4096);
	assert_int_equal(t.responses, 1);
	assert_int_equal(t.events, 1);
	assert_string_equal(t.first_event, "Real");
	/* AMI >= 14: one Output: header per line */
	t = parse_all_chunkings("Response: Success\r\nMessage: Command output follows\r\nOutput: a\r\nOutput: \r\n\r\n", 4096);
	assert_int_equal(t.responses, 1);
	assert_int_equal(t.events, 0);
}

static void test_garbage_lines(void **state)
{
	(void)state;
	struct tally t = parse_all_chunkings("Asterisk Call Manager/9.0.0\r\nthis is not a header\r\n"
					     "Event: A\r\nnot a header either\r\nK: v\r\n\r\n"
					     "junk\r\nEvent: B\r\n\r\n", 4096);
	assert_int_equal(t.garbage, 2);
	assert_int_equal(t.events, 2);
	assert_string_equal(t.first_event, "A");
}

static void test_oversized_is_skipped(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "Asterisk Call Manager/9.0.0\r\nEvent: Before\r\n\r\nEvent: Huge\r\nJunk: ");
	for (int i = 0; i < 3000; i++)
		buf_puts(&b, "x");
	buf_puts(&b, "\r\nMore: y\r\n\r\nEvent: After\r\nK: v\r\n\r\n");
	/* also a huge message whose single line never ends until the blank line */
	buf_puts(&b, "Event: Huge2\r\nJunk: ");
	for (int i = 0; i < 5000; i++)
		buf_puts(&b, "\r");
	buf_puts(&b, "\r\n\r\nEvent: Last\r\n\r\n");
	for (size_t c = 1; c < b.len; c += (c < 40 ? 1 : 97)) {
		struct tally t = parse_chunked(b.data, b.len, c, 1024);
		assert_int_equal(t.oversized, 2);
		assert_int_equal(t.events, 3);
		assert_string_equal(t.first_event, "Before");
	}
	/* memory stays bounded: the parser never holds more than max + a chunk */
	struct ami_parser p;
	ami_parser_init(&p, 1024);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ami_parser_feed(&p, "Event: X\r\nJunk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 46, NULL, NULL), 0);
	assert_true(p.in.cap < 8192);
	ami_parser_release(&p);
	buf_release(&b);
}

static int stop_after_first(void *ctx, const struct ami_msg *m)
{
	(void)m;
	(*(int *)ctx)++;
	return 7;
}

static void test_callback_stops_parse(void **state)
{
	(void)state;
	int n = 0;
	struct ami_parser p;
	ami_parser_init(&p, 4096);
	const char *text = "Event: A\r\n\r\nEvent: B\r\n\r\n";
	assert_int_equal(ami_parser_feed(&p, text, strlen(text), stop_after_first, &n), 7);
	assert_int_equal(n, 1);
	ami_parser_reset(&p);
	assert_int_equal(ami_parser_pending(&p), 0);
	ami_parser_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bare_lf_and_headers),
		cmocka_unit_test(test_no_banner_and_stray_blank_lines),
		cmocka_unit_test(test_follows_command_output),
		cmocka_unit_test(test_garbage_lines),
		cmocka_unit_test(test_oversized_is_skipped),
		cmocka_unit_test(test_callback_stops_parse),
		cmocka_unit_test(test_capture_s01),
		cmocka_unit_test(test_capture_s02),
		cmocka_unit_test(test_capture_s03),
		cmocka_unit_test(test_capture_s03b),
		cmocka_unit_test(test_capture_s04),
		cmocka_unit_test(test_capture_s05),
		cmocka_unit_test(test_capture_s06),
		cmocka_unit_test(test_capture_s07),
		cmocka_unit_test(test_capture_s08),
	};
	return cmocka_run_group_tests_name("ami", tests, NULL, NULL);
}
