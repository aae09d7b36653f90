/*
 * run.h - run one report template: resolve the period and parameters, run
 * every section's query once inside one read-only REPEATABLE READ
 * transaction (one snapshot for the whole report), and feed each result to
 * every requested format at the same time, so PDF, CSV and XLSX show the
 * same figures.
 *
 * Files: <out>/<template>-<from>-<to>.pdf and .xlsx (the whole report), and
 * one CSV per section: <template>-<from>-<to>.csv when the template has one
 * section, else <template>-<from>-<to>-<section id>.csv.  Each is written to
 * a hidden temporary file in <out> first; all are renamed into place only
 * when every one of them is complete.
 */
#ifndef CDRFLOW_REPORT_RUN_H
#define CDRFLOW_REPORT_RUN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "pdf_out.h"
#include "rdb.h"
#include "tpl.h"

/* One written file. */
struct report_output {
	const char *path;    /* final path, as printed on stdout */
	unsigned format;     /* one TPL_FMT_* */
	const char *section; /* CSV: the section id; NULL otherwise */
};

/* One KPI tile as the PDF shows it. */
struct report_kpi {
	char *section; /* the KPI section's title */
	char *label;
	char *value;   /* RFMT_DISPLAY text ("" for NULL) */
};

struct run_opts {
	const char *out_dir;
	unsigned formats;          /* TPL_FMT_*; 0 = the template's */
	enum pdf_paper paper;
	const char *font_dir;      /* NULL or "" = the default */
	const char *tz;
	const char *from, *to;     /* NULL = the template's period, else yesterday */
	char **param_names, **param_values; /* from --param k=v */
	size_t nparams;
};

struct run_result {
	struct report_output *files; /* the written files (paths owned) */
	size_t nfiles;
	struct period period;
	unsigned long long rows;     /* table rows streamed, all sections */
	struct report_kpi *kpis;     /* every KPI tile as shown in the PDF (owned) */
	size_t nkpis;
};

/* EXIT_OK, or an exit code with a one-line message in err; on failure no
 * output file is left behind. */
int report_run(PGconn *c, const struct tpl *t, const struct run_opts *o, struct run_result *res, char *err,
	       size_t errlen);
void run_result_release(struct run_result *res);

/* --each tenant: the tenants of o's period, sorted: every tenant with a
 * profile (tenant_profile, migration 0019) and every tenant with a leg in
 * the period, as the connected role sees them (a tenant reader: its own).
 * *out is a NULL-terminated array (free with report_each_free).  EXIT_OK,
 * or an exit code with err. */
int report_each_tenants(PGconn *c, const struct tpl *t, const struct run_opts *o, char ***out, size_t *n, char *err,
			size_t errlen);
void report_each_free(char **v, size_t n);

#endif
