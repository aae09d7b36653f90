/*
 * test_rating.c - rate decks (CSV import and field parsers), the digit
 * trie, the cost formula, leg rating and LCR what-if.
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

#include "ratedeck.h"
#include "rating.h"
#include "ratetrie.h"
#include "testutil.h"
#include "xalloc.h"

#define T2024 INT64_C(1704067200) /* 2024-01-01T00:00:00Z */
#define T0701 INT64_C(1719792000) /* 2024-07-01T00:00:00Z */
#define T2025 INT64_C(1735689600) /* 2025-01-01T00:00:00Z */

#define HDR "prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to\n"

/* Parse csv into a fresh deck; asserts success. */
static void deck_from(struct rate_deck *d, const char *name, const char *csv)
{
	char err[256] = "";
	rate_deck_init(d, name);
	if (rate_deck_parse(d, "t.csv", csv, strlen(csv), err, sizeof err) != 0)
		fail_msg("unexpected deck error: %s", err);
}

static void trie_from(struct rate_trie *t, const struct rate_deck *d)
{
	char err[256] = "";
	if (rate_trie_build(t, d, err, sizeof err) != 0)
		fail_msg("unexpected trie error: %s", err);
}

/* Prefix the lookup of number at time `at` matched ("" = none). */
static const char *match(const struct rate_trie *t, const char *number, int64_t at)
{
	const struct rate_entry *e = rate_trie_lookup(t, number, strlen(number), at);
	return e ? e->prefix : "";
}

/* ------------------------------------------------------------ field parsers */

static void test_parse_money(void **state)
{
	(void)state;
	char err[128];
	int64_t v;
	static const struct {
		const char *in;
		int64_t out;
	} ok[] = {
		{"0.0123", 12300}, {"1", 1000000}, {"0", 0}, {"0.000001", 1}, {"12.5", 12500000},
		{".5", 500000}, {"5.", 5000000}, {"0.1234560000", 123456}, {"100000", RATE_MONEY_MAX},
		{"100000.000000", RATE_MONEY_MAX}, {"007.10", 7100000},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(rate_parse_money(ok[i].in, RATE_MONEY_MAX, &v, err, sizeof err), 0);
		assert_int_equal(v, ok[i].out);
	}
	static const struct {
		const char *in, *err;
	} bad[] = {
		{"0.1234567", "has more than 6 decimals"},
		{"-0.01", "is negative"},
		{"", "is not a decimal number"},
		{".", "is not a decimal number"},
		{"1e-3", "is not a decimal number"},
		{"0,5", "is not a decimal number"},
		{"+1", "is not a decimal number"},
		{" 1", "is not a decimal number"},
		{"100000.000001", "must be at most 100000.000000"},
		{"99999999999999999999999", "must be at most 100000.000000"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(rate_parse_money(bad[i].in, RATE_MONEY_MAX, &v, err, sizeof err), -1);
		assert_string_equal(err, bad[i].err);
	}
}

static void test_parse_time(void **state)
{
	(void)state;
	char err[128];
	int64_t t;
	static const struct {
		const char *in;
		int64_t out;
	} ok[] = {
		{"1970-01-01", 0},
		{"2024-01-01", T2024},
		{"2024-07-01T00:00:00Z", T0701},
		{"2024-07-01 00:00", T0701},
		{"2024-07-01T02:00:00+02:00", T0701},
		{"2024-06-30T22:30-01:30", T0701},
		{"2024-02-29T12:34:56Z", INT64_C(1709210096)},
		{"2000-03-01", INT64_C(951868800)},
		{"2100-03-01", INT64_C(4107542400)},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(rate_parse_time(ok[i].in, &t, err, sizeof err), 0);
		assert_int_equal(t, ok[i].out);
	}
	static const char *const bad[] = {
		"2023-02-29", "2100-02-29", "2024-13-01", "2024-04-31", "2024-00-10", "1969-12-31",
		"2024-1-01", "24-01-01", "2024-01-01T24:00", "2024-01-01T10", "2024-01-01T10:00:60",
		"2024-01-01x", "2024-01-01T10:00+0200", "2024-01-01T10:00:00.5Z", "", "tomorrow",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(rate_parse_time(bad[i], &t, err, sizeof err), -1);
	rate_parse_time("2024-02-30", &t, err, sizeof err);
	assert_string_equal(err, "is not a valid date");
}

static void test_parse_increment_prefix(void **state)
{
	(void)state;
	char err[160], p[RATE_PREFIX_MAX + 1];
	uint32_t a, b;
	assert_int_equal(rate_parse_increment("60/60", &a, &b, err, sizeof err), 0);
	assert_true(a == 60 && b == 60);
	assert_int_equal(rate_parse_increment("30/6", &a, &b, err, sizeof err), 0);
	assert_true(a == 30 && b == 6);
	assert_int_equal(rate_parse_increment("1", &a, &b, err, sizeof err), 0);
	assert_true(a == 1 && b == 1);
	assert_int_equal(rate_parse_increment("6/30", &a, &b, err, sizeof err), -1);
	assert_string_equal(err, "has the later step b larger than the first block a (write a/b, e.g. 30/6)");
	assert_int_equal(rate_parse_increment("0/0", &a, &b, err, sizeof err), -1);
	assert_string_equal(err, "must not be 0 seconds");
	assert_int_equal(rate_parse_increment("60/", &a, &b, err, sizeof err), -1);
	assert_int_equal(rate_parse_increment("3601/1", &a, &b, err, sizeof err), -1);
	assert_int_equal(rate_parse_increment("60/60/60", &a, &b, err, sizeof err), -1);
	assert_int_equal(rate_parse_increment("", &a, &b, err, sizeof err), -1);

	assert_int_equal(rate_parse_prefix("+44 20", p, err, sizeof err), 4);
	assert_string_equal(p, "4420");
	assert_int_equal(rate_parse_prefix(" + 1 212 ", p, err, sizeof err), 4);
	assert_string_equal(p, "1212");
	assert_int_equal(rate_parse_prefix("44a", p, err, sizeof err), -1);
	assert_string_equal(err, "is not a digit string");
	assert_int_equal(rate_parse_prefix("4+4", p, err, sizeof err), -1);
	assert_int_equal(rate_parse_prefix("++44", p, err, sizeof err), -1);
	assert_int_equal(rate_parse_prefix("+", p, err, sizeof err), -1);
	assert_string_equal(err, "has no digits");
	assert_int_equal(rate_parse_prefix("12345678901234567890", p, err, sizeof err), 20);
	assert_int_equal(rate_parse_prefix("123456789012345678901", p, err, sizeof err), -1);
	assert_string_equal(err, "is longer than 20 digits");
}

/* ------------------------------------------------------------ cost */

static struct rate_entry entry(int64_t rate, int64_t fee, uint32_t a, uint32_t b, uint32_t grace)
{
	struct rate_entry e;
	memset(&e, 0, sizeof e);
	e.rate_per_min = rate;
	e.connect_fee = fee;
	e.first_incr = a;
	e.incr = b;
	e.grace = grace;
	e.eff_to = RATE_TIME_OPEN;
	memcpy(e.prefix, "1", 2);
	e.prefix_len = 1;
	return e;
}

static void test_cost_increments(void **state)
{
	(void)state;
	static const uint32_t secs[] = {0, 1, 29, 30, 31, 59, 60, 61, 3600};
	/* 0.60/min = 600000 micro/min = 10000 micro/s */
	struct rate_entry m = entry(600000, 0, 60, 60, 0), s = entry(600000, 0, 1, 1, 0),
			  h = entry(600000, 0, 30, 6, 0);
	static const uint64_t billed_m[] = {0, 60, 60, 60, 60, 60, 60, 120, 3600};
	static const uint64_t billed_s[] = {0, 1, 29, 30, 31, 59, 60, 61, 3600};
	static const uint64_t billed_h[] = {0, 30, 30, 30, 36, 60, 60, 66, 3600};
	for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
		assert_int_equal(rate_billed_seconds(&m, secs[i]), billed_m[i]);
		assert_int_equal(rate_billed_seconds(&s, secs[i]), billed_s[i]);
		assert_int_equal(rate_billed_seconds(&h, secs[i]), billed_h[i]);
		assert_int_equal(rate_cost(&m, secs[i]), (int64_t)billed_m[i] * 10000);
		assert_int_equal(rate_cost(&s, secs[i]), (int64_t)billed_s[i] * 10000);
		assert_int_equal(rate_cost(&h, secs[i]), (int64_t)billed_h[i] * 10000);
	}
	/* 60/1: a whole first minute, then per second */
	struct rate_entry m1 = entry(600000, 0, 60, 1, 0);
	assert_int_equal(rate_cost(&m1, 1), 600000);
	assert_int_equal(rate_cost(&m1, 61), 610000);
}

static void test_cost_rounding(void **state)
{
	(void)state;
	/* 0.01/min per second: 1 s is 166.67 micro -> 167 (rounded up) */
	struct rate_entry e = entry(10000, 0, 1, 1, 0);
	assert_int_equal(rate_cost(&e, 1), 167);
	assert_int_equal(rate_cost(&e, 6), 1000); /* exact: no rounding */
	assert_int_equal(rate_cost(&e, 7), 1167);
	assert_int_equal(rate_cost(&e, 60), 10000);
	assert_int_equal(rate_cost(&e, 61), 10167);
	/* 0.000001/min: any billed second costs at least 1 micro-unit */
	struct rate_entry tiny = entry(1, 0, 1, 1, 0);
	assert_int_equal(rate_cost(&tiny, 1), 1);
	assert_int_equal(rate_cost(&tiny, 60), 1);
	assert_int_equal(rate_cost(&tiny, 61), 2);
	/* free destination */
	struct rate_entry zero = entry(0, 0, 60, 60, 0);
	assert_int_equal(rate_cost(&zero, 100), 0);
	/* the extremes cannot overflow: max rate, max billsec, max fee */
	struct rate_entry big = entry(RATE_MONEY_MAX, RATE_MONEY_MAX, 1, 1, 0);
	__int128 want = ((__int128)RATE_MONEY_MAX * UINT32_MAX + 59) / 60 + RATE_MONEY_MAX;
	assert_true((__int128)rate_cost(&big, UINT32_MAX) == want);
	struct rate_entry big2 = entry(RATE_MONEY_MAX, RATE_MONEY_MAX, 3600, 3600, 0);
	want = (__int128)RATE_MONEY_MAX * ((UINT32_MAX / 3600 + 1) * (__int128)3600) / 60 + RATE_MONEY_MAX;
	assert_true((__int128)rate_cost(&big2, UINT32_MAX) == want);
	assert_true(rate_cost(&big2, UINT32_MAX) > 0);
}

static void test_cost_grace_connect_fee(void **state)
{
	(void)state;
	/* 0.60/min 1/1, connect fee 0.05, 5 s grace */
	struct rate_entry e = entry(600000, 50000, 1, 1, 5);
	assert_int_equal(rate_cost(&e, 0), 0);
	assert_int_equal(rate_cost(&e, 1), 0);
	assert_int_equal(rate_cost(&e, 5), 0);   /* within grace: no connect fee either */
	assert_int_equal(rate_cost(&e, 6), 50000 + 60000); /* past grace: billed from 0 s */
	assert_int_equal(rate_billed_seconds(&e, 6), 6);
	/* connect fee alone, no grace */
	struct rate_entry f = entry(0, 50000, 60, 60, 0);
	assert_int_equal(rate_cost(&f, 0), 0); /* 0 billsec: no charge at all */
	assert_int_equal(rate_cost(&f, 1), 50000);
	/* grace longer than the first block */
	struct rate_entry g = entry(600000, 0, 30, 6, 40);
	assert_int_equal(rate_cost(&g, 40), 0);
	assert_int_equal(rate_cost(&g, 41), 420000); /* 30 + 2*6 = 42 s */
}

/* ------------------------------------------------------------ matching */

static void test_longest_prefix(void **state)
{
	(void)state;
	struct rate_deck d;
	struct rate_trie t;
	deck_from(&d, "carrier",
		  HDR "4,Europe,1.00,,60/60,,2024-01-01,\n"
		      "44,UK,0.10,,60/60,,2024-01-01,\n"
		      "447,UK mobile,0.20,,60/60,,2024-01-01,\n"
		      "4479,UK mobile X,0.30,,60/60,,2024-01-01,\n"
		      "1,NANP,0.01,,6/6,,2024-01-01,\n");
	trie_from(&t, &d);
	int64_t at = T2024 + 1000;
	assert_string_equal(match(&t, "447912345678", at), "4479");
	assert_string_equal(match(&t, "447812345678", at), "447");
	assert_string_equal(match(&t, "441234", at), "44");
	assert_string_equal(match(&t, "4912345", at), "4");
	assert_string_equal(match(&t, "4", at), "4");
	assert_string_equal(match(&t, "4479", at), "4479");
	assert_string_equal(match(&t, "447", at), "447");
	assert_string_equal(match(&t, "12125551234", at), "1");
	assert_string_equal(match(&t, "33123", at), "");
	assert_string_equal(match(&t, "", at), "");
	assert_string_equal(match(&t, "44x79", at), "44"); /* stops at a non-digit */
	assert_string_equal(match(&t, "4479123", T2024 - 1), ""); /* nothing effective yet */
	const struct rate_entry *e = rate_trie_lookup(&t, "4479", 3, at); /* length is honoured */
	assert_non_null(e);
	assert_string_equal(e->prefix, "447");
	assert_string_equal(rate_entry_description(&d, e), "UK mobile");
	assert_int_equal(e->rate_per_min, 200000);
	rate_trie_release(&t);
	rate_deck_release(&d);
}

static void test_effective_switchover(void **state)
{
	(void)state;
	struct rate_deck d;
	struct rate_trie t;
	deck_from(&d, "carrier",
		  HDR "44,new,0.08,,60/60,,2024-07-01T00:00:00Z,\n"
		      "44,old,0.10,,60/60,,2024-01-01,2024-07-01\n");
	trie_from(&t, &d);
	const struct rate_entry *e = rate_trie_lookup(&t, "4420", 4, T0701 - 1);
	assert_non_null(e);
	assert_int_equal(e->rate_per_min, 100000);
	e = rate_trie_lookup(&t, "4420", 4, T0701); /* effective_to is exclusive, from inclusive */
	assert_non_null(e);
	assert_int_equal(e->rate_per_min, 80000);
	assert_null(rate_trie_lookup(&t, "4420", 4, T2024 - 1));
	assert_non_null(rate_trie_lookup(&t, "4420", 4, T2024));
	assert_non_null(rate_trie_lookup(&t, "4420", 4, INT64_MAX - 1));
	rate_trie_release(&t);
	rate_deck_release(&d);
}

static void test_fallback_shorter_prefix(void **state)
{
	(void)state;
	struct rate_deck d;
	struct rate_trie t;
	deck_from(&d, "carrier",
		  HDR "44,UK,0.10,,60/60,,2024-01-01,\n"
		      "447,UK mobile (from 2025),0.20,,60/60,,2025-01-01,\n"
		      "4478,UK mobile 8 (ended),0.30,,60/60,,2024-01-01,2024-07-01\n");
	trie_from(&t, &d);
	/* 447 is not priced before 2025: the call falls back to 44 */
	assert_string_equal(match(&t, "447123", T0701), "44");
	assert_string_equal(match(&t, "447123", T2025), "447");
	/* 4478 ended on 2024-07-01: fall back past it */
	assert_string_equal(match(&t, "447812", T2024), "4478");
	assert_string_equal(match(&t, "447812", T0701), "44");
	assert_string_equal(match(&t, "447812", T2025), "447");
	rate_trie_release(&t);
	rate_deck_release(&d);
}

/* ------------------------------------------------------------ CSV */

static void test_csv_formats(void **state)
{
	(void)state;
	struct rate_deck d;
	/* BOM, CRLF, quoted fields (a comma, a doubled quote, a newline),
	 * columns in another order and case, blank lines, "+" and spaces */
	static const char csv[] =
		"\xEF\xBB\xBF"
		"Effective_From,PREFIX,Rate_Per_Min,Increment,Description\r\n"
		"\r\n"
		"2024-01-01,\"+44 20\",\"0.0123\",30/6,\"London, \"\"inner\"\"\"\r\n"
		"2024-01-01, 33 ,0.05,60,\"France\r\nmulti-line\"\r\n"
		"\r\n"
		"2024-01-01,1,0.007000,1/1,NANP"; /* no final newline */
	deck_from(&d, "c", csv);
	assert_int_equal(d.n, 3);
	/* sorted by prefix */
	assert_string_equal(d.entries[0].prefix, "1");
	assert_int_equal(d.entries[0].line, 7);
	assert_int_equal(d.entries[0].rate_per_min, 7000);
	assert_string_equal(d.entries[1].prefix, "33");
	assert_int_equal(d.entries[1].line, 4);
	assert_int_equal(d.entries[1].first_incr, 60);
	assert_int_equal(d.entries[1].incr, 60);
	assert_string_equal(rate_entry_description(&d, &d.entries[1]), "France\r\nmulti-line");
	assert_string_equal(d.entries[2].prefix, "4420");
	assert_int_equal(d.entries[2].line, 3);
	assert_int_equal(d.entries[2].rate_per_min, 12300);
	assert_int_equal(d.entries[2].first_incr, 30);
	assert_int_equal(d.entries[2].incr, 6);
	assert_int_equal(d.entries[2].connect_fee, 0);
	assert_int_equal(d.entries[2].grace, 0);
	assert_int_equal(d.entries[2].eff_from, T2024);
	assert_int_equal(d.entries[2].eff_to, RATE_TIME_OPEN);
	assert_string_equal(rate_entry_description(&d, &d.entries[2]), "London, \"inner\"");
	rate_deck_release(&d);

	/* min_increment + a bare increment; grace and connect fee */
	deck_from(&d, "c",
		  "prefix,rate_per_min,min_increment,increment,grace,connect_fee,effective_from,effective_to\n"
		  "49,0.02,60,6,3,0.015,2024-01-01,2025-01-01\n"
		  "48,0.02,,6,,,2024-01-01,\n");
	assert_int_equal(d.n, 2);
	assert_int_equal(d.entries[1].first_incr, 60);
	assert_int_equal(d.entries[1].incr, 6);
	assert_int_equal(d.entries[1].grace, 3);
	assert_int_equal(d.entries[1].connect_fee, 15000);
	assert_int_equal(d.entries[1].eff_to, T2025);
	assert_int_equal(d.entries[0].first_incr, 6);
	rate_deck_release(&d);

	/* a header alone is an empty, valid deck */
	deck_from(&d, "c", HDR);
	assert_int_equal(d.n, 0);
	rate_deck_release(&d);
}

static void test_csv_errors(void **state)
{
	(void)state;
	static const struct {
		const char *csv, *err;
	} cases[] = {
		{"", "t.csv:1: no header row (an empty deck)"},
		{"\n\n", "t.csv:1: no header row (an empty deck)"},
		{"prefix,rate_per_min,increment\n", "t.csv:1: header: missing column \"effective_from\""},
		{"prefix,rate,increment,effective_from\n", "t.csv:1: header: unknown column \"rate\""},
		{"prefix,rate_per_min,increment,effective_from,Prefix\n",
		 "t.csv:1: header: duplicate column \"Prefix\""},
		{"prefix,rate_per_min,,increment,effective_from\n", "t.csv:1: header: column 3 has no name"},
		{HDR "44,UK,0.1,,60/60,,2024-01-01,\n4a4,bad,0.1,,60/60,,2024-01-01,\n",
		 "t.csv:3: prefix \"4a4\": is not a digit string"},
		{HDR ",UK,0.1,,60/60,,2024-01-01,\n", "t.csv:2: prefix is empty"},
		{HDR "44,UK,-0.01,,60/60,,2024-01-01,\n", "t.csv:2: rate_per_min \"-0.01\": is negative"},
		{HDR "44,UK,,,60/60,,2024-01-01,\n", "t.csv:2: rate_per_min is empty"},
		{HDR "44,UK,0.1234567,,60/60,,2024-01-01,\n",
		 "t.csv:2: rate_per_min \"0.1234567\": has more than 6 decimals"},
		{HDR "44,UK,0.1,-1,60/60,,2024-01-01,\n", "t.csv:2: connect_fee \"-1\": is negative"},
		{HDR "44,UK,0.1,,6/30,,2024-01-01,\n",
		 "t.csv:2: increment \"6/30\": has the later step b larger than the first block a (write a/b, e.g. 30/6)"},
		{HDR "44,UK,0.1,,60/x,,2024-01-01,\n",
		 "t.csv:2: increment \"60/x\": is not an increment a/b in seconds (e.g. 60/60, 30/6; each at most 3600)"},
		{HDR "44,UK,0.1,,60/60,abc,2024-01-01,\n", "t.csv:2: grace \"abc\": is not an integer"},
		{HDR "44,UK,0.1,,60/60,3601,2024-01-01,\n", "t.csv:2: grace \"3601\": must be between 0 and 3600"},
		{HDR "44,UK,0.1,,60/60,,2024-02-30,\n", "t.csv:2: effective_from \"2024-02-30\": is not a valid date"},
		{HDR "44,UK,0.1,,60/60,,,\n", "t.csv:2: effective_from is empty"},
		{HDR "44,UK,0.1,,60/60,,2024-07-01,2024-07-01\n",
		 "t.csv:2: effective_to \"2024-07-01\": is not after effective_from \"2024-07-01\""},
		{HDR "44,UK,0.1,,60/60,,2024-01-01,01/07/2024\n",
		 "t.csv:2: effective_to \"01/07/2024\": is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"},
		{HDR "44,UK,0.1,,60/60,,2024-01-01\n", "t.csv:2: row has 7 fields, the header has 8"},
		{HDR "44,UK,0.1,,60/60,,2024-01-01,,x\n", "t.csv:2: row has 9 fields, the header has 8"},
		/* overlaps: same prefix, the later line is reported */
		{HDR "44,UK,0.1,,60/60,,2024-01-01,\n33,FR,0.1,,60/60,,2024-01-01,\n+44,UK2,0.2,,60/60,,2024-06-01,\n",
		 "t.csv:4: prefix \"44\": effective range overlaps the entry on line 2"},
		{HDR "44,UK,0.1,,60/60,,2024-03-01,2025-01-01\n44,UK2,0.2,,60/60,,2024-01-01,2024-03-02\n",
		 "t.csv:3: prefix \"44\": effective range overlaps the entry on line 2"},
		/* a multi-line quoted field: line numbers stay physical */
		{HDR "44,\"two\nlines\",0.1,,60/60,,2024-01-01,\n33,FR,x,,60/60,,2024-01-01,\n",
		 "t.csv:4: rate_per_min \"x\": is not a decimal number"},
		{HDR "44,\"two\nlines\",0.1x,,60/60,,2024-01-01,\n",
		 "t.csv:2: rate_per_min \"0.1x\": is not a decimal number"},
		{HDR "44,\"unterminated,0.1,,60/60,,2024-01-01,\n\n33,FR,0.1,,60/60,,2024-01-01,\n",
		 "t.csv:2: malformed CSV: a quoted field is still open at the end of the file"},
		{HDR "\r\n44,FR,0.1,,60/60,,2024-01-01,\r\n\r\n33,\"FR\r\n,0.1,,60/60,,2024-01-01,\r\n",
		 "t.csv:5: malformed CSV: a quoted field is still open at the end of the file"},
		{HDR "44,a\"b\",0.1,,60/60,,2024-01-01,\n", "t.csv:2: malformed CSV: error parsing data while strict checking enabled"},
		{"prefix,increment,rate_per_min,min_increment,effective_from\n44,30/6,0.1,60,2024-01-01\n",
		 "t.csv:2: increment \"30/6\": is a/b while min_increment is also given"},
		{"prefix,increment,rate_per_min,min_increment,effective_from\n44,30,0.1,6,2024-01-01\n",
		 "t.csv:2: increment \"30\": is larger than min_increment 6"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rate_deck d;
		char err[256] = "";
		rate_deck_init(&d, "c");
		int rc = rate_deck_parse(&d, "t.csv", cases[i].csv, strlen(cases[i].csv), err, sizeof err);
		if (rc != -1 || strcmp(err, cases[i].err) != 0)
			fail_msg("case %zu: rc %d, got \"%s\", want \"%s\"", i, rc, err, cases[i].err);
		rate_deck_release(&d);
	}
}

static void test_load_file(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/deck.csv", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(HDR "44,UK,0.10,0.01,60/60,0,2024-01-01,\n44x,bad,0.10,,60/60,,2024-01-01,\n", f);
	assert_int_equal(fclose(f), 0);
	struct rate_deck d;
	char err[512], want[512];
	rate_deck_init(&d, "c");
	assert_int_equal(rate_deck_load(&d, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:3: prefix \"44x\": is not a digit string", path);
	assert_string_equal(err, want);
	rate_deck_release(&d);

	char *missing = xasprintf("%s/nope.csv", dir);
	rate_deck_init(&d, "c");
	assert_int_equal(rate_deck_load(&d, missing, err, sizeof err), -1);
	snprintf(want, sizeof want, "cannot open \"%s\": No such file or directory", missing);
	assert_string_equal(err, want);
	rate_deck_release(&d);
	rate_deck_init(&d, "c");
	assert_int_equal(rate_deck_load(&d, dir, err, sizeof err), -1); /* a directory */
	rate_deck_release(&d);
	free(missing);
	free(path);
	rm_rf(dir);
	free(dir);
}

static void test_deck_add(void **state)
{
	(void)state;
	struct rate_deck d;
	struct rate_trie t;
	char err[256];
	struct rate_entry e = entry(100000, 0, 60, 60, 0);
	rate_deck_init(&d, "code");
	memcpy(e.prefix, "44", 3);
	e.prefix_len = 2;
	assert_int_equal(rate_deck_add(&d, &e, "UK", err, sizeof err), 0);
	assert_int_equal(rate_trie_build(&t, &d, err, sizeof err), -1); /* not finished */
	assert_string_equal(err, "deck \"code\" is not finished (call rate_deck_finish)");
	assert_int_equal(rate_deck_finish(&d, NULL, err, sizeof err), 0);
	trie_from(&t, &d);
	assert_string_equal(match(&t, "4420", 0), "44");
	rate_trie_release(&t);
	struct rate_entry bad = e;
	bad.incr = 61;
	assert_int_equal(rate_deck_add(&d, &bad, NULL, err, sizeof err), -1);
	assert_string_equal(err, "prefix \"44\": increment must satisfy 1 <= b <= a <= 3600");
	bad = e;
	bad.prefix[1] = 'x';
	assert_int_equal(rate_deck_add(&d, &bad, NULL, err, sizeof err), -1);
	bad = e;
	bad.rate_per_min = -1;
	assert_int_equal(rate_deck_add(&d, &bad, NULL, err, sizeof err), -1);
	/* a 20-digit prefix matches the first 20 digits of a longer number */
	struct rate_entry l = e;
	memcpy(l.prefix, "12345678901234567890", 21);
	l.prefix_len = 20;
	assert_int_equal(rate_deck_add(&d, &l, NULL, err, sizeof err), 0);
	assert_int_equal(rate_deck_finish(&d, NULL, err, sizeof err), 0);
	trie_from(&t, &d);
	assert_string_equal(match(&t, "1234567890123456789012345", 0), "12345678901234567890");
	assert_string_equal(match(&t, "1234567890123456789", 0), "");
	rate_trie_release(&t);
	/* an empty deck matches nothing */
	struct rate_deck empty;
	rate_deck_init(&empty, "empty");
	trie_from(&t, &empty);
	assert_string_equal(match(&t, "4420", 0), "");
	rate_trie_release(&t);
	rate_deck_release(&empty);
	/* a duplicate open-ended entry overlaps */
	assert_int_equal(rate_deck_add(&d, &e, NULL, err, sizeof err), 0);
	assert_int_equal(rate_deck_finish(&d, NULL, err, sizeof err), -1);
	assert_string_equal(err, "code:0: prefix \"44\": effective range overlaps the entry on line 0");
	rate_deck_release(&d);
}

/* ------------------------------------------------------------ leg rating */

static void test_rate_leg(void **state)
{
	(void)state;
	struct rating_book book;
	struct rate_deck buy, sell;
	char err[256];
	rating_book_init(&book);
	deck_from(&buy, "carrierA",
		  HDR "44,UK,0.010,,60/60,,2024-01-01,\n"
		      "447,UK mobile,0.050,,30/6,,2024-01-01,\n");
	deck_from(&sell, "tenant1",
		  HDR "44,UK,0.020,0.01,60/1,,2024-01-01,\n"
		      "33,FR,0.020,,1/1,,2024-01-01,\n");
	assert_int_equal(rating_book_add_buy(&book, &buy, err, sizeof err), 0);
	assert_null(buy.entries); /* consumed */
	assert_int_equal(rating_book_add_sell(&book, &sell, err, sizeof err), 0);
	struct rate_deck dup;
	deck_from(&dup, "carrierA", HDR);
	assert_int_equal(rating_book_add_buy(&book, &dup, err, sizeof err), -1);
	assert_string_equal(err, "carrier \"carrierA\" already has a deck");
	rate_deck_release(&dup); /* not consumed on failure */

	const struct rate_trie *b = rating_book_buy(&book, "carrierA");
	const struct rate_trie *s = rating_book_sell(&book, "tenant1");
	assert_non_null(b);
	assert_non_null(s);
	assert_null(rating_book_buy(&book, "carrierB"));
	assert_null(rating_book_sell(&book, "carrierA"));

	struct rating_result r;
	struct rating_leg leg = {"442071234567", 12, T0701, 61};
	assert_int_equal(rating_rate_leg(b, s, &leg, &r), RATING_RATED);
	assert_int_equal(r.buy, 20000);          /* 120 s at 0.01/min */
	assert_int_equal(r.sell, 10000 + 20334); /* fee + ceil(61 * 20000 / 60) */
	assert_int_equal(r.margin, 10334);
	assert_string_equal(r.buy_entry->prefix, "44");

	leg = (struct rating_leg){"447700900123", 12, T0701, 31};
	assert_int_equal(rating_rate_leg(b, s, &leg, &r), RATING_RATED);
	assert_int_equal(r.buy, 30000); /* 36 s at 0.05/min */
	assert_int_equal(r.sell, 10000 + 20000);
	assert_int_equal(r.margin, 0);

	leg = (struct rating_leg){"33612345678", 11, T0701, 10};
	assert_int_equal(rating_rate_leg(b, s, &leg, &r), RATING_NO_BUY_RATE);
	assert_null(r.buy_entry);
	assert_non_null(r.sell_entry);
	assert_int_equal(r.sell, 3334);
	assert_int_equal(r.margin, 0);
	assert_string_equal(rating_status_name(r.status), "no_buy_rate");

	struct rate_deck sell2;
	deck_from(&sell2, "tenant2", HDR "33,FR,0.020,,1/1,,2024-01-01,\n");
	assert_int_equal(rating_book_add_sell(&book, &sell2, err, sizeof err), 0);
	leg = (struct rating_leg){"442071234567", 12, T0701, 10};
	assert_int_equal(rating_rate_leg(b, rating_book_sell(&book, "tenant2"), &leg, &r), RATING_NO_SELL_RATE);
	assert_non_null(r.buy_entry);
	assert_int_equal(r.buy, 10000);
	assert_null(r.sell_entry);
	assert_string_equal(rating_status_name(r.status), "no_sell_rate");

	leg = (struct rating_leg){"442071234567", 12, T0701, 0};
	assert_int_equal(rating_rate_leg(b, s, &leg, &r), RATING_NOT_BILLABLE);
	assert_int_equal(r.buy, 0);
	assert_int_equal(r.sell, 0);
	assert_null(r.buy_entry);
	assert_string_equal(rating_status_name(r.status), "not_billable");

	/* no decks at all, and a call before the decks take effect */
	leg = (struct rating_leg){"442071234567", 12, T0701, 10};
	assert_int_equal(rating_rate_leg(NULL, NULL, &leg, &r), RATING_NO_BUY_RATE);
	leg.start = T2024 - 1;
	assert_int_equal(rating_rate_leg(b, s, &leg, &r), RATING_NO_BUY_RATE);
	assert_string_equal(rating_status_name(RATING_RATED), "rated");
	rating_book_release(&book);
}

static void test_lcr_whatif(void **state)
{
	(void)state;
	struct rate_deck da, db, dc;
	struct rate_trie ta, tb, tc;
	char err[256];
	deck_from(&da, "A", HDR "44,UK,0.010,,60/60,,2024-01-01,\n33,FR,0.030,,60/60,,2024-01-01,\n");
	deck_from(&db, "B", HDR "44,UK,0.010,,1/1,,2024-01-01,2024-07-01\n44,UK,0.100,,1/1,,2024-07-01,\n");
	deck_from(&dc, "C", HDR "33,FR,0.012,,1/1,,2024-01-01,\n");
	trie_from(&ta, &da);
	trie_from(&tb, &db);
	trie_from(&tc, &dc);
	const struct rate_trie *decks[] = {&ta, &tb, &tc};
	const struct rating_leg legs[] = {
		{"4420", 4, T2024, 30},  /* A 10000, B 5000 -> B */
		{"4420", 4, T2024, 60},  /* A 10000, B 10000 -> tie: A */
		{"3312", 4, T2024, 90},  /* A 60000, C 18000 -> C */
		{"4420", 4, T2024, 0},   /* not billable */
		{"1212", 4, T2024, 60},  /* nobody */
		{"4420", 4, T0701, 30},  /* A 10000, B 50000 (new price) -> A */
	};
	struct lcr_result r;
	assert_int_equal(lcr_whatif(decks, 3, legs, 6, LCR_AT_CALL_START, &r, err, sizeof err), 0);
	assert_int_equal(r.not_billable, 1);
	assert_int_equal(r.deck[0].cost, 10000 + 10000 + 60000 + 10000);
	assert_int_equal(r.deck[0].rated, 4);
	assert_int_equal(r.deck[0].unrated, 1);
	assert_int_equal(r.deck[0].cheapest, 2);
	assert_int_equal(r.deck[1].cost, 5000 + 10000 + 50000);
	assert_int_equal(r.deck[1].rated, 3);
	assert_int_equal(r.deck[1].unrated, 2);
	assert_int_equal(r.deck[1].cheapest, 1);
	assert_int_equal(r.deck[2].cost, 18000);
	assert_int_equal(r.deck[2].cheapest, 1);
	static const int32_t want[] = {1, 0, 2, -1, -1, 0};
	static const int64_t want_cost[] = {5000, 10000, 18000, 0, 0, 10000};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(r.cheapest[i], want[i]);
		assert_int_equal(r.cheapest_cost[i], want_cost[i]);
	}
	lcr_result_release(&r);
	/* everything at today's prices: B's new rate applies to every UK leg */
	assert_int_equal(lcr_whatif(decks, 3, legs, 6, T2025, &r, err, sizeof err), 0);
	assert_int_equal(r.deck[1].cost, 50000 + 100000 + 50000);
	assert_int_equal(r.cheapest[0], 0);
	lcr_result_release(&r);
	assert_int_equal(lcr_whatif(decks, 3, legs, 0, LCR_AT_CALL_START, &r, err, sizeof err), 0);
	assert_int_equal(r.deck[0].cost, 0);
	lcr_result_release(&r);
	rate_trie_release(&ta);
	rate_trie_release(&tb);
	rate_trie_release(&tc);
	rate_deck_release(&da);
	rate_deck_release(&db);
	rate_deck_release(&dc);
}

/* The example deck and worked examples of docs/rating.md, verbatim. */
static void test_docs_example(void **state)
{
	(void)state;
	static const char csv[] =
		"prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to\n"
		"44,United Kingdom,0.0123,,60/60,,2024-01-01,\n"
		"447,UK mobile,0.045,0.01,30/6,3,2024-01-01,2024-07-01\n"
		"447,UK mobile,0.040,0.01,30/6,3,2024-07-01,\n"
		"+33 6,\"France, mobile\",0.05,,1/1,,2024-01-01T00:00:00Z,\n";
	struct rate_deck d;
	struct rate_trie t;
	deck_from(&d, "carrierA", csv);
	trie_from(&t, &d);
	static const struct {
		const char *num;
		int64_t at;
		uint32_t billsec;
		const char *prefix;
		int64_t cost;
	} ex[] = {
		{"442071234567", T0701, 61, "44", 24600},
		{"442071234567", T0701, 0, "44", 0},
		{"447700900123", INT64_C(1709251200), 31, "447", 37000}, /* 2024-03-01 */
		{"447700900123", INT64_C(1709251200), 3, "447", 0},
		{"447700900123", INT64_C(1709251200), 4, "447", 32500},
		{"447700900123", T0701, 31, "447", 34000},
		{"447700900123", T0701 - 1, 31, "447", 37000},
		{"33612345678", T0701, 7, "336", 5834},
		{"447700900123", T2024 - 1, 31, "", 0},
	};
	for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
		const struct rate_entry *e = rate_trie_lookup(&t, ex[i].num, strlen(ex[i].num), ex[i].at);
		assert_string_equal(e ? e->prefix : "", ex[i].prefix);
		if (e)
			assert_int_equal(rate_cost(e, ex[i].billsec), ex[i].cost);
	}
	rate_trie_release(&t);
	rate_deck_release(&d);
}

/* ------------------------------------------------------------ cross-check */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void)
{
	/* splitmix64: deterministic, so a failure is reproducible */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

/* The definition, by brute force: among entries effective at `at` whose
 * prefix starts the number, the longest. */
static const struct rate_entry *naive_lookup(const struct rate_deck *d, const char *num, size_t len, int64_t at)
{
	const struct rate_entry *best = NULL;
	for (size_t i = 0; i < d->n; i++) {
		const struct rate_entry *e = &d->entries[i];
		if (e->prefix_len <= len && memcmp(e->prefix, num, e->prefix_len) == 0 && e->eff_from <= at &&
		    at < e->eff_to && (!best || e->prefix_len > best->prefix_len))
			best = e;
	}
	return best;
}

static void test_trie_vs_naive(void **state)
{
	(void)state;
	struct rate_deck d;
	struct rate_trie t;
	char err[256];
	static unsigned char seen[4 * 4 * 4 * 4 * 4 * 4 * 4 * 2]; /* by length and base-4 value */
	memset(seen, 0, sizeof seen);
	rate_deck_init(&d, "random");
	/* 3000 distinct prefixes of 1..7 digits over a 4-digit alphabet, so
	 * they nest a lot; each has 1..3 periods, adjacent or with gaps, the
	 * last one sometimes open-ended */
	for (int i = 0; i < 3000;) {
		struct rate_entry e = entry((int64_t)(rnd() % 2000000), 0, 60, 60, 0);
		unsigned len = 1 + (unsigned)(rnd() % 7), key = 1;
		for (unsigned k = 0; k < len; k++) {
			unsigned dig = (unsigned)(rnd() % 4);
			e.prefix[k] = (char)('2' + dig);
			key = key * 4 + dig; /* the leading 1 keeps lengths apart */
		}
		if (seen[key])
			continue;
		seen[key] = 1;
		i++;
		e.prefix[len] = '\0';
		e.prefix_len = (uint8_t)len;
		e.line = (uint32_t)i;
		int periods = 1 + (int)(rnd() % 3);
		int64_t from = T2024 + (int64_t)(rnd() % 100);
		for (int p = 0; p < periods; p++) {
			e.eff_from = from;
			e.eff_to = from + 50 + (int64_t)(rnd() % 100);
			if (p == periods - 1 && rnd() % 2)
				e.eff_to = RATE_TIME_OPEN;
			assert_int_equal(rate_deck_add(&d, &e, NULL, err, sizeof err), 0);
			if (e.eff_to == RATE_TIME_OPEN)
				break;
			from = e.eff_to + (int64_t)(rnd() % 3) * 20;
		}
	}
	if (rate_deck_finish(&d, NULL, err, sizeof err))
		fail_msg("%s", err);
	trie_from(&t, &d);
	size_t hits = 0, fallbacks = 0;
	for (int i = 0; i < 200000; i++) {
		char num[16];
		size_t len = (size_t)(rnd() % 12);
		for (size_t k = 0; k < len; k++)
			num[k] = (char)('1' + rnd() % 6); /* '1' and '6'/'7' never match */
		int64_t at = T2024 - 10 + (int64_t)(rnd() % 500);
		const struct rate_entry *want = naive_lookup(&d, num, len, at);
		const struct rate_entry *got = rate_trie_lookup(&t, num, len, at);
		if (got != want)
			fail_msg("number %.*s at %lld: trie %s, naive %s", (int)len, num, (long long)at,
				 got ? got->prefix : "-", want ? want->prefix : "-");
		hits += got != NULL;
		if (got && naive_lookup(&d, num, len, INT64_MAX - 1) != got && got->prefix_len < len)
			fallbacks++;
	}
	/* the random data really exercises both outcomes */
	assert_true(hits > 20000 && hits < 180000);
	assert_true(fallbacks > 100);
	rate_trie_release(&t);
	rate_deck_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_money),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_parse_increment_prefix),
		cmocka_unit_test(test_cost_increments),
		cmocka_unit_test(test_cost_rounding),
		cmocka_unit_test(test_cost_grace_connect_fee),
		cmocka_unit_test(test_longest_prefix),
		cmocka_unit_test(test_effective_switchover),
		cmocka_unit_test(test_fallback_shorter_prefix),
		cmocka_unit_test(test_csv_formats),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_deck_add),
		cmocka_unit_test(test_rate_leg),
		cmocka_unit_test(test_lcr_whatif),
		cmocka_unit_test(test_docs_example),
		cmocka_unit_test(test_trie_vs_naive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
