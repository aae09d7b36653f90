/*
 * report-render-demo - render a fixed synthetic call dataset to PDF, CSV and
 * XLSX through the report writers, all fed from the same generated rows
 * (tests/t/t5000-report-render.sh checks that the three agree).
 *
 *   report-render-demo [--rows N] [--paper a4|letter] [--formats csv,xlsx,pdf]
 *                      [--constant-memory] [--chart-text TEXT] OUTDIR
 *
 * --chart-text: TEXT (C escapes \n \t \xHH decoded) becomes every chart's
 * title, value-axis title and the name of its first series column, with
 * "[1]".."[4]" appended (tests/t/t0131-xlsx-chart-text.sh).
 *
 * Writes OUTDIR/report.{pdf,csv,xlsx} and prints "key=value" lines: rows,
 * total_calls, answered, billsec, cost, answer_rate (all as the CSV shows
 * them) and pages.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv_out.h"
#include "exitcode.h"
#include "pdf_out.h"
#include "strparse.h"
#include "table.h"
#include "xlsx_out.h"

#define BASE_US INT64_C(1714521600000000) /* 2024-05-01 00:00:00 UTC */
#define NHOURS 12                          /* 08:00 .. 19:00 */

static const char *const dispositions[] = { "ANSWERED", "NO ANSWER", "BUSY", "FAILED" };

/* Tricky text on purpose: formula injection, quoting, newlines, UTF-8. */
static const char *dst_of(uint64_t i, char *buf, size_t n)
{
	switch (i % 50) {
	case 3: return "=HYPERLINK(\"http://evil.invalid\",\"x\")";
	case 5: return "+49 30 1234567";
	case 7: return "-minus-start";
	case 11: return "@SUM(A1:A9)";
	case 13: return "comma, \"quoted\"\nsecond line";
	case 17: return "Zürich ☎ Straße";
	case 19: return "\ttab-start";
	case 23: return "+447700900123";        /* E.164: a number, never guarded */
	case 29: return "Bob_x0041_ caller";     /* a literal ECMA-376 escape */
	case 31: return "-42";                   /* a signed number */
	default: snprintf(buf, n, "%" PRIu64, 4930000000u + (i * 7919) % 1000000); return buf;
	}
}

struct totals {
	int64_t calls, answered, billsec, cost_micro;
	int64_t per_hour[NHOURS][2]; /* answered, not answered */
	int64_t cost_hour[NHOURS];
	int64_t per_disp[4];
};

static const struct rcol cols[] = {
	{ "start", RCOL_TIMESTAMP, 0, NULL }, { "src", RCOL_TEXT, 0, NULL },     { "dst", RCOL_TEXT, 0, NULL },
	{ "disposition", RCOL_TEXT, 0, NULL }, { "duration", RCOL_DURATION, 0, NULL }, { "billsec", RCOL_INT, 0, NULL },
	{ "cost", RCOL_MONEY, 2, NULL },      { "mos", RCOL_DECIMAL, 2, NULL },
};
#define NCOLS (sizeof cols / sizeof cols[0])

/* Row i of the dataset; text points into bufs. */
static void gen_row(uint64_t i, struct rval *v, char bufs[2][64], struct totals *t)
{
	uint64_t hour = (i * 5) % NHOURS;
	int64_t start = BASE_US + (int64_t)((i / 40) * 86400 + (8 + hour) * 3600 + (i * 97) % 3600) * 1000000 +
			(int64_t)(i % 1000) * 1000;
	size_t d = (i % 7 == 0) ? 1 : (i % 13 == 0) ? 2 : (i % 29 == 0) ? 3 : 0;
	int64_t duration = 5 + (int64_t)((i * 37) % 600);
	int64_t billsec = d == 0 ? duration - 3 : 0;
	int64_t cost = billsec * 1234; /* 0.001234 per second, in micro-units */
	snprintf(bufs[0], 64, "ext-%" PRIu64, 100 + i % 37);
	v[0] = rval_int(start);
	v[1] = rval_text(bufs[0]);
	v[2] = rval_text(dst_of(i, bufs[1], 64));
	v[3] = rval_text(dispositions[d]);
	v[4] = rval_int(duration);
	v[5] = rval_int(billsec);
	v[6] = rval_int(cost);
	v[7] = (i % 10 == 9) ? rval_null() : rval_dbl(3.0 + (double)(i % 150) / 100.0);
	if (t) {
		t->calls++;
		t->answered += d == 0;
		t->billsec += billsec;
		t->cost_micro += cost;
		t->per_hour[hour][d == 0 ? 0 : 1]++;
		t->cost_hour[hour] += cost;
		t->per_disp[d]++;
	}
}

static void usage(FILE *fp)
{
	fprintf(fp, "usage: report-render-demo [--rows N] [--paper a4|letter] [--formats csv,xlsx,pdf] "
		    "[--constant-memory] [--chart-text TEXT] OUTDIR\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "rows", required_argument, NULL, 'r' },      { "paper", required_argument, NULL, 'p' },
		{ "formats", required_argument, NULL, 'f' },   { "constant-memory", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },            { "chart-text", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t rows = 500;
	enum pdf_paper paper = PDF_A4;
	const char *formats = "csv,xlsx,pdf";
	int cmem = 0, o;
	char err[256];
	char ctext[4][512];
	const char *chart_text = NULL;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'r':
			if (parse_int_range(optarg, 0, INT64_C(100000000), &rows, err, sizeof err) < 0) {
				fprintf(stderr, "report-render-demo: --rows: %s\n", err);
				return EXIT_USAGE;
			}
			break;
		case 'p':
			if (strcmp(optarg, "a4") == 0)
				paper = PDF_A4;
			else if (strcmp(optarg, "letter") == 0)
				paper = PDF_LETTER;
			else {
				fprintf(stderr, "report-render-demo: --paper must be a4 or letter\n");
				return EXIT_USAGE;
			}
			break;
		case 'f': formats = optarg; break;
		case 'c': cmem = 1; break;
		case 't': chart_text = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *dir = argv[optind];

	/* the "aggregate query": one pass over the same rows */
	struct totals t;
	memset(&t, 0, sizeof t);
	struct rval v[NCOLS];
	char bufs[2][64];
	for (int64_t i = 0; i < rows; i++)
		gen_row((uint64_t)i, v, bufs, &t);

	struct rmeta meta = { .title = "Call statistics: synthetic test data",
			      .period = "2024-05-01 .. 2024-05-31 (UTC)",
			      .generated = "generated 2024-06-01 02:00 UTC by report-render-demo" };
	struct rsink sinks[3];
	size_t ns = 0;
	char path[4096];
	FILE *csvfp = NULL;
	if (strstr(formats, "csv")) {
		snprintf(path, sizeof path, "%s/report.csv", dir);
		csvfp = fopen(path, "wb");
		if (!csvfp) {
			perror(path);
			return EXIT_CANTCREAT;
		}
		setvbuf(csvfp, NULL, _IOFBF, 1 << 16);
		sinks[ns++] = csv_out_sink(csv_out_new(csvfp, NULL));
	}
	if (strstr(formats, "xlsx")) {
		struct xlsx_out_opts xo = { cmem, 0, NULL, 1717207200 };
		snprintf(path, sizeof path, "%s/report.xlsx", dir);
		struct xlsx_out *x = xlsx_out_new(path, &meta, &xo, err, sizeof err);
		if (!x) {
			fprintf(stderr, "report-render-demo: %s\n", err);
			return EXIT_CANTCREAT;
		}
		sinks[ns++] = xlsx_out_sink(x);
	}
	if (strstr(formats, "pdf")) {
		struct pdf_out_opts po = { paper, NULL, 0, NULL };
		snprintf(path, sizeof path, "%s/report.pdf", dir);
		struct pdf_out *p = pdf_out_new(path, &meta, &po, err, sizeof err);
		if (!p) {
			fprintf(stderr, "report-render-demo: %s\n", err);
			return EXIT_CANTCREAT;
		}
		sinks[ns++] = pdf_out_sink(p);
	}

	struct rkpi kpis[] = {
		{ { "Calls", RCOL_INT, 0, NULL }, rval_int(t.calls) },
		{ { "Answered", RCOL_INT, 0, NULL }, rval_int(t.answered) },
		{ { "Billed time", RCOL_DURATION, 0, NULL }, rval_int(t.billsec) },
		{ { "Cost", RCOL_MONEY, 2, NULL }, rval_int(t.cost_micro) },
		{ { "Answer rate", RCOL_PERCENT, 1, NULL }, rval_dbl(t.calls ? (double)t.answered / (double)t.calls : 0.0) },
	};
	size_t nk = sizeof kpis / sizeof kpis[0];

	struct rcol hcols[] = { { "hour", RCOL_TEXT, 0, NULL }, { "answered", RCOL_INT, 0, NULL },
				{ "not answered", RCOL_INT, 0, NULL }, { "cost", RCOL_MONEY, 2, NULL } };
	if (chart_text) { /* decode \n \t \\ \xHH; then "TEXT[k]" per chart */
		char dec[400];
		size_t n = 0;
		for (const char *c = chart_text; *c && n + 1 < sizeof dec; c++) {
			unsigned x;
			if (*c == '\\' && c[1] == 'x' && sscanf(c + 2, "%2x", &x) == 1) {
				dec[n++] = (char)x;
				c += 3;
			} else if (*c == '\\' && c[1]) {
				c++;
				dec[n++] = *c == 'n' ? '\n' : *c == 't' ? '\t' : *c == 'r' ? '\r' : *c;
			} else
				dec[n++] = *c;
		}
		dec[n] = '\0';
		for (int k = 0; k < 4; k++)
			snprintf(ctext[k], sizeof ctext[k], "%s[%d]", dec, k + 1);
		hcols[1].name = ctext[0];
	}
	struct rmem hours, disp;
	rmem_init(&hours, hcols, 4, NHOURS);
	for (int h = 0; h < NHOURS; h++) {
		char lbl[16];
		snprintf(lbl, sizeof lbl, "%02d:00", 8 + h);
		struct rval hv[4] = { rval_text(lbl), rval_int(t.per_hour[h][0]), rval_int(t.per_hour[h][1]),
				      rval_int(t.cost_hour[h]) };
		rmem_push(&hours, hv);
	}
	struct rcol dcols[] = { { "disposition", RCOL_TEXT, 0, NULL }, { "calls", RCOL_INT, 0, NULL } };
	if (chart_text)
		dcols[1].name = ctext[3];
	rmem_init(&disp, dcols, 2, 4);
	for (int d = 0; d < 4; d++) {
		struct rval dv[2] = { rval_text(dispositions[d]), rval_int(t.per_disp[d]) };
		rmem_push(&disp, dv);
	}
	struct rchart charts[] = {
		{ RCHART_BAR, "Calls per hour", "calls", 0, { 1, 2 }, 2 },
		{ RCHART_STACKED, "Calls per hour (stacked)", "calls", 0, { 1, 2 }, 2 },
		{ RCHART_LINE, "Cost per hour", "cost", 0, { 3 }, 1 },
		{ RCHART_DONUT, "Calls by disposition", NULL, 0, { 1 }, 1 },
	};
	for (int k = 0; chart_text && k < 4; k++) {
		charts[k].title = ctext[k];
		if (charts[k].y_title)
			charts[k].y_title = ctext[k];
	}

	int rc = 0;
	for (size_t s = 0; s < ns && rc == 0; s++) {
		if (rsink_kpis(&sinks[s], kpis, nk) < 0 || rsink_chart(&sinks[s], &charts[0], &hours) < 0 ||
		    rsink_chart(&sinks[s], &charts[1], &hours) < 0 || rsink_chart(&sinks[s], &charts[2], &hours) < 0 ||
		    rsink_chart(&sinks[s], &charts[3], &disp) < 0 ||
		    rsink_table_begin(&sinks[s], "Calls", cols, NCOLS, 0) < 0)
			rc = -1;
	}
	/* the "detail query": every row goes to every sink as it comes */
	for (int64_t i = 0; i < rows && rc == 0; i++) {
		gen_row((uint64_t)i, v, bufs, NULL);
		for (size_t s = 0; s < ns && rc == 0; s++)
			rc = rsink_table_row(&sinks[s], v);
	}
	struct rval tot[NCOLS] = { rval_null(),          rval_text("TOTAL"),     rval_null(),
				   rval_null(),          rval_null(),            rval_int(t.billsec),
				   rval_int(t.cost_micro), rval_null() };
	for (size_t s = 0; s < ns && rc == 0; s++)
		if (rsink_table_row(&sinks[s], tot) < 0 || rsink_table_end(&sinks[s]) < 0)
			rc = -1;
	for (size_t s = 0; s < ns; s++) {
		if (rc < 0 && *rsink_error(&sinks[s]))
			fprintf(stderr, "report-render-demo: %s: %s\n", sinks[s].ops->name, rsink_error(&sinks[s]));
		if (rsink_close(&sinks[s], err, sizeof err) < 0) {
			if (rc == 0)
				fprintf(stderr, "report-render-demo: %s: %s\n", sinks[s].ops->name, err);
			rc = -1;
		}
	}
	if (csvfp && fclose(csvfp) != 0)
		rc = -1;
	rmem_release(&hours);
	rmem_release(&disp);
	if (rc < 0)
		return EXIT_IOERR;

	char txt[RVAL_NUMTEXT_MAX];
	printf("rows=%" PRId64 "\n", rows);
	for (size_t k = 0; k < nk; k++) {
		rval_format(&kpis[k].col, &kpis[k].value, RFMT_PLAIN, txt, sizeof txt);
		printf("kpi.%s=%s\n", kpis[k].col.name, txt);
		rval_format(&kpis[k].col, &kpis[k].value, RFMT_DISPLAY, txt, sizeof txt);
		printf("display.%s=%s\n", kpis[k].col.name, txt);
	}
	if (fflush(stdout) == EOF || ferror(stdout))
		return EXIT_IOERR;
	return EXIT_OK;
}
