/*
 * test_report.c - the report writers: value formatting, CSV byte for byte
 * (quoting, formula-injection guard, NULL vs empty, UTF-8 repair), bounded
 * memory while streaming, XLSX parts, PDF page count and text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "chart.h"
#include "copytext.h"
#include "csv_out.h"
#include "dio.h"
#include <time.h>

#include "pdf_out.h"
#include "table.h"
#include "testutil.h"
#include "tpl.h"
#include "xalloc.h"
#include "xlsx_out.h"

static const char *fmt(enum rcol_type t, int scale, struct rval v, enum rfmt f)
{
	static char out[RVAL_NUMTEXT_MAX];
	struct rcol c = { "x", t, scale, NULL };
	rval_format(&c, &v, f, out, sizeof out);
	return out;
}

static void test_format(void **state)
{
	(void)state;
	assert_string_equal(fmt(RCOL_INT, 0, rval_int(-42), RFMT_PLAIN), "-42");
	assert_string_equal(fmt(RCOL_INT, 0, rval_null(), RFMT_PLAIN), "");
	/* money: micro-units rounded half away from zero */
	assert_string_equal(fmt(RCOL_MONEY, 2, rval_int(1234565), RFMT_PLAIN), "1.23");
	assert_string_equal(fmt(RCOL_MONEY, 2, rval_int(1235000), RFMT_PLAIN), "1.24");
	assert_string_equal(fmt(RCOL_MONEY, 2, rval_int(-1235000), RFMT_PLAIN), "-1.24");
	/* a non-zero amount is never shown as zero: all six decimals (issue 11) */
	assert_string_equal(fmt(RCOL_MONEY, 2, rval_int(-4000), RFMT_PLAIN), "-0.004000");
	assert_string_equal(fmt(RCOL_MONEY, 4, rval_int(-2500), RFMT_PLAIN), "-0.0025");
	assert_string_equal(fmt(RCOL_MONEY, 2, rval_int(0), RFMT_PLAIN), "0.00");
	assert_string_equal(fmt(RCOL_MONEY, 6, rval_int(-1), RFMT_PLAIN), "-0.000001");
	assert_string_equal(fmt(RCOL_MONEY, 0, rval_int(2500000), RFMT_PLAIN), "3");
	assert_string_equal(fmt(RCOL_MONEY, 2, rval_int(INT64_MIN), RFMT_PLAIN), "-9223372036854.78");
	assert_string_equal(fmt(RCOL_DECIMAL, 2, rval_dbl(-0.001), RFMT_PLAIN), "0.00");
	assert_string_equal(fmt(RCOL_DECIMAL, 3, rval_dbl(2.5), RFMT_PLAIN), "2.500");
	assert_string_equal(fmt(RCOL_PERCENT, 1, rval_dbl(0.255), RFMT_PLAIN), "25.5");
	assert_string_equal(fmt(RCOL_PERCENT, 1, rval_dbl(0.255), RFMT_DISPLAY), "25.5%");
	assert_string_equal(fmt(RCOL_TIMESTAMP, 0, rval_int(1714521600999999), RFMT_PLAIN), "2024-05-01 00:00:00");
	assert_string_equal(fmt(RCOL_TIMESTAMP, 0, rval_int(-1), RFMT_PLAIN), "1969-12-31 23:59:59");
	assert_string_equal(fmt(RCOL_INT, 0, rval_int(INT64_MIN), RFMT_PLAIN), "-9223372036854775808");
	assert_string_equal(fmt(RCOL_INT, 0, rval_int(0), RFMT_PLAIN), "0");
	assert_string_equal(fmt(RCOL_MONEY, 6, rval_int(1000001), RFMT_PLAIN), "1.000001");
	/* timestamps are formatted by hand: the same text as gmtime + strftime
	 * over four centuries, leap days, and before 1970 */
	for (int64_t sec = -12219292800; sec < 253402300800; sec += 86399 * 37 + 7) {
		time_t t = (time_t)sec;
		struct tm tm;
		char want[32];
		assert_non_null(gmtime_r(&t, &tm));
		strftime(want, sizeof want, "%Y-%m-%d %H:%M:%S", &tm);
		assert_string_equal(fmt(RCOL_TIMESTAMP, 0, rval_int(sec * 1000000 + 123), RFMT_PLAIN), want);
	}
	assert_string_equal(fmt(RCOL_TIMESTAMP, 0, rval_int(951782400000000), RFMT_PLAIN), "2000-02-29 00:00:00");
	assert_string_equal(fmt(RCOL_DURATION, 0, rval_int(3725), RFMT_PLAIN), "3725");
	assert_string_equal(fmt(RCOL_DURATION, 0, rval_int(3725), RFMT_DISPLAY), "1:02:05");
	assert_string_equal(fmt(RCOL_DURATION, 0, rval_int(-65), RFMT_DISPLAY), "-0:01:05");
	/* the XLSX number is the CSV figure */
	struct rcol money = { "m", RCOL_MONEY, 2, NULL }, pct = { "p", RCOL_PERCENT, 1, NULL }, dur = { "d", RCOL_DURATION, 0, NULL };
	struct rval v = rval_int(1234565);
	assert_true(rval_number(&money, &v) == 1.23);
	v = rval_dbl(0.25549);
	assert_true(rval_number(&pct, &v) == 25.5 / 100.0);
	v = rval_int(43200);
	assert_true(rval_number(&dur, &v) == 0.5);
}

static void test_utf8_clean(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rtext_clean(&b, "a\xC3\xA9\xFF" "b\xC0\xAF\xED\xA0\x80z", 0, 0), 10);
	assert_string_equal(b.data, "a\xC3\xA9\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
	buf_reset(&b);
	/* a truncated sequence at the end, controls as spaces */
	rtext_clean(&b, "x\ty\x01\xE2\x82", 0, RTEXT_NO_CTRL);
	assert_string_equal(b.data, "x y \xEF\xBF\xBD\xEF\xBF\xBD");
	buf_reset(&b);
	/* the byte limit never cuts a character */
	rtext_clean(&b, "\xC3\xA9\xC3\xA9\xC3\xA9", 5, 0);
	assert_string_equal(b.data, "\xC3\xA9\xC3\xA9");
	buf_release(&b);
	assert_int_equal(utf8_chars("Z\xC3\xBCrich \xE2\x98\x8E"), 8);
}

static char *csv_of(const struct csv_out_opts *o, const struct rcol *cols, size_t ncols, const struct rval *rows,
		    size_t nrows)
{
	char *data = NULL, err[256];
	size_t len = 0;
	FILE *fp = open_memstream(&data, &len);
	assert_non_null(fp);
	struct csv_out *w = csv_out_new(fp, o);
	assert_int_equal(csv_out_table_begin(w, "t", cols, ncols), 0);
	for (size_t r = 0; r < nrows; r++)
		assert_int_equal(csv_out_table_row(w, rows + r * ncols), 0);
	assert_int_equal(csv_out_table_end(w), 0);
	assert_int_equal(csv_out_close(w, err, sizeof err), 0);
	assert_int_equal(fclose(fp), 0);
	return data;
}

static void test_csv_bytes(void **state)
{
	(void)state;
	const struct rcol cols[] = { { "name", RCOL_TEXT, 0, NULL }, { "n", RCOL_INT, 0, NULL }, { "cost", RCOL_MONEY, 2, NULL } };
	const struct rval rows[] = {
		rval_text("plain"), rval_int(1), rval_int(1500000),
		rval_text("a,b \"q\"\r\nline"), rval_int(-5), rval_int(-1005000),
		rval_text("=1+2"), rval_null(), rval_null(),
		rval_text("+1"), rval_int(0), rval_int(0),
		rval_text("-x"), rval_int(0), rval_int(0),
		rval_text("@cmd"), rval_int(0), rval_int(0),
		rval_text("\tt"), rval_int(0), rval_int(0),
		rval_text("\rr"), rval_int(0), rval_int(0),
		rval_text(""), rval_int(0), rval_int(0),
		rval_null(), rval_int(0), rval_int(0),
		rval_text(" =not first"), rval_int(0), rval_int(0),
		rval_text("bad\xFF"), rval_int(0), rval_int(0),
	};
	char *got = csv_of(NULL, cols, 3, rows, sizeof rows / sizeof rows[0] / 3);
	const char *want = "\"name\",\"n\",\"cost\"\r\n"
			   "\"plain\",1,1.50\r\n"
			   "\"a,b \"\"q\"\"\r\nline\",-5,-1.01\r\n"
			   "\"'=1+2\",,\r\n"
			   "\"+1\",0,0.00\r\n"
			   "\"'-x\",0,0.00\r\n"
			   "\"'@cmd\",0,0.00\r\n"
			   "\"'\tt\",0,0.00\r\n"
			   "\"'\rr\",0,0.00\r\n"
			   "\"\",0,0.00\r\n"
			   ",0,0.00\r\n"
			   "\" =not first\",0,0.00\r\n"
			   "\"bad\xEF\xBF\xBD\",0,0.00\r\n";
	assert_string_equal(got, want);
	free(got);

	/* raw_text: no guard; BOM first; headers are guarded too by default */
	const struct rcol c2[] = { { "=h", RCOL_TEXT, 0, NULL } };
	const struct rval r2[] = { rval_text("=1") };
	struct csv_out_opts o = { 1, 1 };
	got = csv_of(&o, c2, 1, r2, 1);
	assert_string_equal(got, "\xEF\xBB\xBF\"=h\"\r\n\"=1\"\r\n");
	free(got);
	got = csv_of(NULL, c2, 1, r2, 1);
	assert_string_equal(got, "\"'=h\"\r\n\"'=1\"\r\n");
	free(got);
}

/* The guard runs only where a spreadsheet would run a formula; the XLSX
 * escape keeps a literal _xHHHH_ through an ECMA-376 reader. */
static void test_guard_and_xlsx_escape(void **state)
{
	(void)state;
	assert_false(rtext_needs_guard("+447700900123"));
	assert_false(rtext_needs_guard("-5"));
	assert_false(rtext_needs_guard("-12.50"));
	assert_true(rtext_needs_guard("+"));
	assert_true(rtext_needs_guard("+1+1"));
	assert_true(rtext_needs_guard("+49 30 1234567"));
	assert_true(rtext_needs_guard("-1."));
	assert_true(rtext_needs_guard("=1"));
	assert_true(rtext_needs_guard("@x"));
	assert_false(rtext_needs_guard("1+1"));
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rtext_xlsx_escape(&b, "Bob_x0041_ _x12_ _xABCD_x0041_"), 0);
	/* the "_" that closes _xABCD_ may open _x0041_: escaped too */
	assert_string_equal(b.data, "Bob_x005F_x0041_ _x12_ _x005F_xABCD_x005F_x0041_");
	buf_release(&b);
}

static void test_csv_misuse(void **state)
{
	(void)state;
	char err[256];
	FILE *fp = fopen("/dev/null", "w");
	assert_non_null(fp);
	struct csv_out *w = csv_out_new(fp, NULL);
	struct rval v = rval_int(1);
	assert_int_equal(csv_out_table_row(w, &v), -1);
	assert_string_equal(csv_out_error(w), "row outside a table");
	assert_int_equal(csv_out_close(w, err, sizeof err), -1);
	assert_string_equal(err, "row outside a table");
	w = csv_out_new(fp, NULL);
	const struct rcol c = { "a", RCOL_INT, 0, NULL };
	assert_int_equal(csv_out_table_begin(w, "t", &c, 1), 0);
	assert_int_equal(csv_out_table_end(w), 0);
	assert_int_equal(csv_out_table_begin(w, "t", &c, 1), -1);
	assert_int_equal(csv_out_close(w, err, sizeof err), -1);
	assert_string_equal(err, "a CSV file holds one table");
	fclose(fp);
	/* a full disk is reported at close at the latest */
	fp = fopen("/dev/full", "w");
	if (fp) {
		w = csv_out_new(fp, NULL);
		assert_int_equal(csv_out_table_begin(w, "t", &c, 1), 0);
		assert_int_equal(csv_out_close(w, err, sizeof err), -1);
		assert_non_null(strstr(err, "cannot write CSV"));
		fclose(fp);
	}
}

/* AddressSanitizer keeps freed blocks in quarantine, so RSS measures it,
 * not us: the bound is only checked in normal builds (the CSV writer does
 * not allocate per row at all, so it holds under ASan too). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_csv_stream_1m_rows(void **state)
{
	(void)state;
	const struct rcol cols[] = { { "ts", RCOL_TIMESTAMP, 0, NULL }, { "who", RCOL_TEXT, 0, NULL }, { "n", RCOL_INT, 0, NULL },
				     { "cost", RCOL_MONEY, 2, NULL }, { "rate", RCOL_PERCENT, 1, NULL } };
	char err[256], txt[64];
	FILE *fp = fopen("/dev/null", "w");
	assert_non_null(fp);
	struct csv_out *w = csv_out_new(fp, NULL);
	assert_int_equal(csv_out_table_begin(w, "big", cols, 5), 0);
	long before = maxrss_kib();
	for (int64_t i = 0; i < 1000000; i++) {
		snprintf(txt, sizeof txt, "%s%" PRId64 " \"x\"", i % 3 ? "" : "=", i);
		struct rval v[5] = { rval_int(i * 1000000), rval_text(txt), rval_int(i), rval_int(i * 37), rval_dbl(0.5) };
		assert_int_equal(csv_out_table_row(w, v), 0);
	}
	assert_int_equal(csv_out_table_end(w), 0);
	assert_int_equal(csv_out_close(w, err, sizeof err), 0);
	fclose(fp);
	long grown = maxrss_kib() - before;
	/* constant memory: no per-row growth at all; 4 MiB is noise allowance */
	assert_true(grown < 4096);
}

static void test_rmem_bounds(void **state)
{
	(void)state;
	const struct rcol cols[] = { { "k", RCOL_TEXT, 0, NULL }, { "v", RCOL_INT, 0, NULL } };
	struct rmem m;
	char big[1000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(rmem_init(&m, cols, 2, 2), 0);
	struct rval r[2] = { rval_text(big), rval_int(1) };
	assert_int_equal(rmem_push(&m, r), 0);
	assert_int_equal(rmem_push(&m, r), 0);
	assert_int_equal(rmem_push(&m, r), -1);
	assert_int_equal(strlen(rmem_row(&m, 0)[0].s), RMEM_TEXT_MAX);
	rmem_release(&m);
	assert_int_equal(rmem_init(&m, cols, 0, 2), -1);

	/* charts check their data */
	char err[200];
	assert_int_equal(rmem_init(&m, cols, 2, 4), 0);
	struct rchart c = { RCHART_BAR, "t", NULL, 0, { 1 }, 1 };
	assert_int_equal(rchart_check(&c, &m, err, sizeof err), -1); /* no rows */
	rmem_push(&m, r);
	assert_int_equal(rchart_check(&c, &m, err, sizeof err), 0);
	c.series_cols[0] = 0;
	assert_int_equal(rchart_check(&c, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a numeric column"));
	rmem_release(&m);

	double lo, hi, step;
	chart_ticks(0, 43, 5, &lo, &hi, &step);
	assert_true(lo == 0 && hi == 50 && step == 10);
	chart_ticks(-3, 0.7, 5, &lo, &hi, &step);
	assert_true(lo == -3 && hi == 1 && step == 1);
}

static int have(const char *tool)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Output of a shell command (owned by the caller). */
static char *run(const char *fmtstr, ...) __attribute__((format(printf, 1, 2)));
static char *run(const char *fmtstr, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmtstr);
	vsnprintf(cmd, sizeof cmd, fmtstr, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	struct buf b;
	buf_init(&b, 0);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		buf_append(&b, chunk, n);
	pclose(p);
	return buf_detach(&b, NULL);
}

static void test_xlsx_parts(void **state)
{
	(void)state;
	if (!have("unzip"))
		skip();
	char *dir = make_tmpdir(), err[256];
	char *path = xasprintf("%s/t.xlsx", dir);
	struct rmeta meta = { .title = "T", .period = "P" };
	struct xlsx_out_opts o = { 1, 0, NULL, 0 };
	struct xlsx_out *w = xlsx_out_new(path, &meta, &o, err, sizeof err);
	assert_non_null(w);
	const struct rcol cols[] = { { "who", RCOL_TEXT, 0, NULL }, { "n", RCOL_INT, 0, NULL }, { "at", RCOL_TIMESTAMP, 0, NULL } };
	assert_int_equal(xlsx_out_table_begin(w, "Calls: a/b", cols, 3), 0);
	struct rval r1[] = { rval_text("=SUM(A1)"), rval_int(-7), rval_int(86400000000) };
	struct rval r2[] = { rval_text("a<b&c"), rval_null(), rval_int(0) };
	assert_int_equal(xlsx_out_table_row(w, r1), 0);
	assert_int_equal(xlsx_out_table_row(w, r2), 0);
	assert_int_equal(xlsx_out_table_end(w), 0);
	assert_int_equal(xlsx_out_close(w, err, sizeof err), 0);

	char *wb = run("unzip -p '%s' xl/workbook.xml", path);
	assert_non_null(strstr(wb, "name=\"Summary\""));
	assert_non_null(strstr(wb, "name=\"Calls_ a_b\""));
	char *sh = run("unzip -p '%s' xl/worksheets/sheet2.xml", path);
	assert_non_null(strstr(sh, "state=\"frozen\""));
	assert_non_null(strstr(sh, "<autoFilter ref=\"A1:C3\"/>"));
	assert_non_null(strstr(sh, "<v>-7</v>"));    /* a number, not text */
	assert_non_null(strstr(sh, "<v>25570</v>")); /* 1970-01-02 as an Excel date */
	/* constant_memory writes strings inline; never as a formula, and
	 * kept intact: no guard quote in XLSX */
	assert_non_null(strstr(sh, "<t>=SUM(A1)</t>"));
	assert_non_null(strstr(sh, "<t>a&lt;b&amp;c</t>"));
	assert_null(strstr(sh, "<f>"));
	free(wb);
	free(sh);
	free(path);
	rm_rf(dir);
	free(dir);
}

static void test_xlsx_constant_memory_rss(void **state)
{
	(void)state;
	char *dir = make_tmpdir(), err[256], txt[64];
	char *path = xasprintf("%s/big.xlsx", dir);
	struct xlsx_out_opts o = { 1, 0, dir, 0 };
	struct xlsx_out *w = xlsx_out_new(path, NULL, &o, err, sizeof err);
	assert_non_null(w);
	const struct rcol cols[] = { { "who", RCOL_TEXT, 0, NULL }, { "n", RCOL_INT, 0, NULL }, { "cost", RCOL_MONEY, 2, NULL } };
	assert_int_equal(xlsx_out_table_begin(w, "big", cols, 3), 0);
	long before = maxrss_kib();
	for (int64_t i = 0; i < 200000; i++) {
		snprintf(txt, sizeof txt, "caller %" PRId64, i);
		struct rval v[3] = { rval_text(txt), rval_int(i), rval_int(i * 1000) };
		assert_int_equal(xlsx_out_table_row(w, v), 0);
	}
	long grown = maxrss_kib() - before;
	assert_int_equal(xlsx_out_table_end(w), 0);
	assert_int_equal(xlsx_out_close(w, err, sizeof err), 0);
	free(path);
	rm_rf(dir);
	free(dir);
	/* libxlsxwriter allocates per cell: the bound holds only without ASan */
	if (!UNDER_ASAN)
		assert_true(grown < 8192);
}

static int pdf_table(const char *path, enum pdf_paper paper, int rows, const char *font_dir, char *err,
		     size_t errlen)
{
	struct rmeta meta = { .title = "Unit test report", .period = "2024-05" };
	struct pdf_out_opts o = { paper, font_dir, 0, NULL };
	struct pdf_out *w = pdf_out_new(path, &meta, &o, err, errlen);
	if (!w)
		return -1;
	const struct rcol cols[] = { { "row", RCOL_INT, 0, NULL }, { "name", RCOL_TEXT, 0, NULL }, { "cost", RCOL_MONEY, 2, NULL } };
	char txt[64];
	assert_int_equal(pdf_out_table_begin(w, "Rows", cols, 3, 0), 0);
	for (int i = 0; i < rows; i++) {
		snprintf(txt, sizeof txt, "name %d \xE2\x98\x8E\x01", i);
		struct rval v[3] = { rval_int(i), rval_text(txt), rval_int((int64_t)i * 10000) };
		assert_int_equal(pdf_out_table_row(w, v), 0);
	}
	assert_int_equal(pdf_out_table_end(w), 0);
	int pages = 0;
	if (pdf_out_close(w, &pages, err, errlen) < 0)
		return -1;
	return pages;
}

/* Charts of counts tick at whole numbers; a stack without data has no
 * total label; wide text wraps, never cut with an ellipsis (issue 11). */
/* dio: the file holds every byte written, in order, whatever the sizes
 * around its 2 MiB buffers and 4 KiB blocks; writes after a sync go on */
static void test_dio_stream(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, (2u << 20) - 1, 2u << 20, (2u << 20) + 1, (5u << 20) + 123 };
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/d.csv", dir);
	for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
		size_t n = sizes[t], half = n / 3;
		char *want = xmalloc(n + 1);
		for (size_t i = 0; i < n; i++)
			want[i] = (char)('a' + (i * 7 + i / 4099) % 26);
		struct dio *d;
		FILE *fp = dio_fopen(path, &d);
		assert_non_null(fp);
		for (size_t at = 0, k = 1; at < n; at += k, k = k * 3 % 9001 + 1) {
			if (k > n - at)
				k = n - at;
			if (at < half && at + k > half)
				k = half - at; /* a sync at a third */
			assert_int_equal(fwrite(want + at, 1, k, fp), k);
			if (at + k == half)
				assert_int_equal(dio_sync(d), 0);
		}
		assert_int_equal(dio_sync(d), 0);
		assert_int_equal(fclose(fp), 0);
		FILE *in = fopen(path, "rb");
		assert_non_null(in);
		char *got = xmalloc(n + 2);
		assert_int_equal(fread(got, 1, n + 1, in), n);
		assert_int_equal(fclose(in), 0);
		if (n)
			assert_memory_equal(got, want, n);
		free(got);
		free(want);
	}
	free(path);
	rm_rf(dir);
	free(dir);
}

static void test_pdf_chart_and_wrap(void **state)
{
	(void)state;
	assert_true(have("pdftotext")); /* poppler-utils: scripts/install-deps.sh */
	char *dir = make_tmpdir(), err[256];
	char *path = xasprintf("%s/c.pdf", dir);
	struct rmeta meta = { .title = "Ticks", .period = "P", .currency = "EUR" };
	struct pdf_out *w = pdf_out_new(path, &meta, NULL, err, sizeof err);
	assert_non_null(w);
	const struct rcol cc[] = { { "hour", RCOL_TEXT, 0, NULL }, { "calls", RCOL_INT, 0, "Calls" } };
	struct rmem m;
	assert_int_equal(rmem_init(&m, cc, 2, 8), 0);
	const char *cats[] = { "08:00", "09:00", "10:00" };
	const int64_t n[] = { 1, 0, 3 };
	for (int i = 0; i < 3; i++) {
		struct rval r[2] = { rval_text(cats[i]), rval_int(n[i]) };
		assert_int_equal(rmem_push(&m, r), 0);
	}
	struct rchart ch = { .kind = RCHART_STACKED, .title = "Calls per hour", .cat_col = 0, .series_cols = { 1 },
			     .nseries = 1 };
	assert_int_equal(pdf_out_chart(w, &ch, &m), 0);
	const struct rcol tc[] = { { "name", RCOL_TEXT, 0, "Caller name" }, { "cost", RCOL_MONEY, 4, "Cost" } };
	assert_int_equal(pdf_out_table_begin(w, "Long", tc, 2, 0), 0);
	char longtext[600] = "";
	for (int i = 0; i < 40; i++)
		strcat(longtext, "wordy ");
	strcat(longtext, "END-OF-CELL");
	struct rval row[2] = { rval_text(longtext), rval_int(-2500) };
	assert_int_equal(pdf_out_table_row(w, row), 0);
	assert_int_equal(pdf_out_table_end(w), 0);
	int pages = 0;
	assert_int_equal(pdf_out_close(w, &pages, err, sizeof err), 0);
	char *txt = run("pdftotext -raw '%s' -", path);
	assert_null(strstr(txt, "0.5"));             /* no half-call tick */
	assert_null(strstr(txt, "1.5"));
	assert_non_null(strstr(txt, "END-OF-CELL")); /* wrapped, not cut */
	assert_null(strstr(txt, "\xE2\x80\xA6"));      /* no ellipsis anywhere */
	assert_non_null(strstr(txt, "-0.0025"));     /* a loss is not 0.00 */
	assert_non_null(strstr(txt, "Cost (EUR)"));
	assert_non_null(strstr(txt, "Caller name")); /* the label, not the name */
	free(txt);
	rmem_release(&m);
	free(path);
	rm_rf(dir);
	free(dir);
}

static void test_pdf_pages(void **state)
{
	(void)state;
	char *dir = make_tmpdir(), err[256];
	char *path = xasprintf("%s/t.pdf", dir);
	/* A4: 52 rows a page (the header repeats) -> 500 rows on 10 pages;
	 * Letter is shorter: 49 rows a page -> 11 */
	assert_int_equal(pdf_table(path, PDF_A4, 500, NULL, err, sizeof err), 10);
	if (have("pdfinfo") && have("pdftotext")) {
		char *info = run("pdfinfo '%s'", path);
		assert_non_null(strstr(info, "Pages:           10\n"));
		assert_non_null(strstr(info, "(A4)"));
		char *txt = run("pdftotext -layout '%s' -", path);
		assert_non_null(strstr(txt, "page 1 / 10"));
		assert_non_null(strstr(txt, "page 10 / 10"));
		assert_non_null(strstr(txt, "Rows (continued)"));
		assert_non_null(strstr(txt, "4.99"));   /* row 499's cost */
		assert_non_null(strstr(txt, "name 499"));
		free(info);
		free(txt);
	}
	assert_int_equal(pdf_table(path, PDF_LETTER, 500, NULL, err, sizeof err), 11);
	assert_int_equal(pdf_table(path, PDF_A4, 0, NULL, err, sizeof err), 1);
	/* a missing font is an error, not a silent substitute */
	assert_int_equal(pdf_table(path, PDF_A4, 1, "/nonexistent", err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot load font"));
	free(path);
	rm_rf(dir);
	free(dir);
}

/* A COPY TO text row split in place: escapes, NULL against "\N" text,
 * empty fields, the trailing newline, too many fields. */
static void test_copytext_split(void **state)
{
	(void)state;
	char *f[8];
	char row[] = "plain\ttab\\there\t\\N\t\\\\N\t\t\\b\\f\\n\\r\\v\\\\\t\\101\\x41\\x4\\xg\\q\\\n";
	assert_int_equal(copytext_split(row, strlen(row), f, 8), 7);
	assert_string_equal(f[0], "plain");
	assert_string_equal(f[1], "tab\there");
	assert_null(f[2]);
	assert_string_equal(f[3], "\\N"); /* text "\N", not NULL */
	assert_string_equal(f[4], "");
	assert_string_equal(f[5], "\b\f\n\r\v\\");
	/* octal, hex of two and of one digit, \x without one, \c, a lone \ */
	assert_string_equal(f[6], "AA\x04xgq\\");
	char two[] = "\\N\t\\N";
	assert_int_equal(copytext_split(two, strlen(two), f, 8), 2);
	assert_null(f[0]);
	assert_null(f[1]);
	char empty[] = "\n";
	assert_int_equal(copytext_split(empty, 1, f, 8), 1);
	assert_string_equal(f[0], "");
	char trail[] = "a\t\n";
	assert_int_equal(copytext_split(trail, 3, f, 8), 2);
	assert_string_equal(f[0], "a");
	assert_string_equal(f[1], "");
	char many[] = "1\t2\t3\n";
	assert_int_equal(copytext_split(many, strlen(many), f, 2), -1);
}

static int known(const char *name, void *arg)
{
	(void)arg;
	return !strcmp(name, "from") || !strcmp(name, "tenant");
}

/* Placeholders are listed where they are (a quoted ":from" or "$1" is not
 * one), and the body for nesting leaves out a final ';' and what follows. */
static void test_tpl_copy_body(void **state)
{
	(void)state;
	struct tpl_sql q;
	size_t bad;
	char err[256];
	assert_int_equal(tpl_rewrite_sql("SELECT ':from', $q$:tenant$q$, :from, x::text FROM t WHERE a = :tenant OR b = :from;"
					 " -- done\n",
					 known, NULL, &q, &bad, err, sizeof err),
			 0);
	assert_string_equal(q.text, "SELECT ':from', $q$:tenant$q$, $1, x::text FROM t WHERE a = $2 OR b = $1; -- done\n");
	assert_int_equal(q.nph, 3);
	assert_int_equal(q.ph[0].param, 0);
	assert_int_equal(q.ph[1].param, 1);
	assert_int_equal(q.ph[2].param, 0);
	assert_memory_equal(q.text + q.ph[0].off, "$1", 2);
	assert_memory_equal(q.text + q.ph[1].off, "$2", 2);
	assert_memory_equal(q.text + q.ph[2].off, "$1", 2);
	assert_int_equal(q.body_len, strlen("SELECT ':from', $q$:tenant$q$, $1, x::text FROM t WHERE a = $2 OR b = $1"));
	tpl_sql_release(&q);
	/* no ';': the body is the text up to its last token, comments kept out */
	assert_int_equal(tpl_rewrite_sql("SELECT 1 /* c; */ -- ;\n  ", known, NULL, &q, &bad, err, sizeof err), 0);
	assert_int_equal(q.body_len, strlen("SELECT 1"));
	assert_int_equal(q.nph, 0);
	tpl_sql_release(&q);
	/* a ';' inside a string is not the end */
	assert_int_equal(tpl_rewrite_sql("SELECT ';'", known, NULL, &q, &bad, err, sizeof err), 0);
	assert_int_equal(q.body_len, strlen("SELECT ';'"));
	tpl_sql_release(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_utf8_clean),
		cmocka_unit_test(test_csv_bytes),
		cmocka_unit_test(test_csv_misuse),
		cmocka_unit_test(test_guard_and_xlsx_escape),
		cmocka_unit_test(test_csv_stream_1m_rows),
		cmocka_unit_test(test_rmem_bounds),
		cmocka_unit_test(test_xlsx_parts),
		cmocka_unit_test(test_xlsx_constant_memory_rss),
		cmocka_unit_test(test_pdf_pages),
		cmocka_unit_test(test_pdf_chart_and_wrap),
		cmocka_unit_test(test_copytext_split),
		cmocka_unit_test(test_dio_stream),
		cmocka_unit_test(test_tpl_copy_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
