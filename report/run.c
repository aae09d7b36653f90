#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caveatdb.h"
#include "csv_out.h"
#include "dio.h"
#include "exitcode.h"
#include "fsx.h"
#include "html_out.h"
#include "log.h"
#include "xalloc.h"
#include "xlsx_out.h"

/* An output file in the making: written to tmp, renamed to final at the end. */
struct outfile {
	char *tmp, *final;
	unsigned format;
	const char *section;
};

struct run {
	PGconn *c;
	const struct tpl *t;
	const struct run_opts *o;
	unsigned formats;
	/* parameter values by name: from, to, tz, then the template's */
	const char **names, **values;
	enum tpl_ptype *types;
	size_t nvalues;
	struct period period;
	char base[256]; /* <template>-<from>-<to> */
	struct outfile *files;
	size_t nfiles;
	struct rsink sinks[3]; /* PDF, XLSX, HTML: the whole report */
	size_t nsinks;
	unsigned long long rows;
	struct report_kpi *kpis; /* every KPI tile, as shown (for delivery) */
	size_t nkpis;
	/* cdrflow_report_context() (migration 0019): the header's tenant and
	 * currency, the money decimals; unknown on an older warehouse */
	const char *tenant;       /* the tenant parameter's value, or NULL */
	char *tenant_name, *currency;
	int money_scale;          /* -1: the writers' default */
	char subtitle[400];
};

/* The run's value of parameter name (NULL: none or SQL NULL). */
static const char *param_value(const struct run *r, const char *name)
{
	for (size_t k = 0; k < r->nvalues; k++)
		if (!strcmp(r->names[k], name))
			return r->values[k];
	return NULL;
}

/* Columns as the writers get them: money at the run's decimals unless the
 * template fixes a scale.  out holds n columns. */
static void money_cols(const struct run *r, const struct tpl_section *s, const struct rcol *cols, size_t n,
		       struct rcol *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = cols[i];
		if (cols[i].type != RCOL_MONEY || r->money_scale < 0)
			continue;
		int fixed = 0;
		for (size_t d = 0; d < s->ncolumns; d++)
			if ((!strcmp(s->columns[d].name, cols[i].name) ||
			     (s->columns[d].label && !strcmp(s->columns[d].label, cols[i].name))) &&
			    s->columns[d].scale >= 0)
				fixed = 1;
		if (!fixed)
			out[i].scale = r->money_scale;
	}
}

/* Keep a KPI tile's label and shown value for the delivery summary. */
static void keep_kpi(struct run *r, const struct tpl_section *s, const struct rkpi *k)
{
	char v[RMEM_TEXT_MAX + RVAL_NUMTEXT_MAX];
	rval_format(&k->col, &k->value, RFMT_DISPLAY, v, sizeof v);
	r->kpis = xrealloc(r->kpis, (r->nkpis + 1) * sizeof *r->kpis);
	struct report_kpi *o = &r->kpis[r->nkpis++];
	o->section = xstrdup(s->title);
	o->label = xstrdup(rcol_label(&k->col));
	o->value = xstrdup(v);
}

static void free_kpis(struct report_kpi *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(k[i].section);
		free(k[i].label);
		free(k[i].value);
	}
	free(k);
}

static struct outfile *add_file(struct run *r, unsigned format, const char *section, const char *ext)
{
	r->files = xrealloc(r->files, (r->nfiles + 1) * sizeof *r->files);
	struct outfile *f = &r->files[r->nfiles++];
	f->format = format;
	f->section = section;
	if (section)
		f->final = xasprintf("%s/%s-%s.%s", r->o->out_dir, r->base, section, ext);
	else
		f->final = xasprintf("%s/%s.%s", r->o->out_dir, r->base, ext);
	const char *slash = strrchr(f->final, '/');
	f->tmp = xasprintf("%.*s/.%s.%ld.part", (int)(slash - f->final), f->final, slash + 1, (long)getpid());
	return f;
}

/* The values of sql's parameters, in $ order. */
static void bind(struct run *r, const struct tpl_sql *sql, const char **vals, enum tpl_ptype *types)
{
	for (size_t i = 0; i < sql->nparams; i++) {
		vals[i] = NULL;
		types[i] = TPL_P_TEXT;
		for (size_t k = 0; k < r->nvalues; k++)
			if (!strcmp(r->names[k], sql->params[i])) {
				vals[i] = r->values[k];
				types[i] = r->types[k];
			}
	}
}

/* ------------------------------------------------------------- collecting */

struct collect {
	struct rmem m;
	int inited, full;
	size_t max;
	const struct run *r;
	const struct tpl_section *s;
};

static int collect_begin(void *arg, const struct rcol *cols, size_t ncols, char *err, size_t errlen)
{
	struct collect *k = arg;
	if (ncols == 0 || ncols > RMEM_MAX_COLS) {
		snprintf(err, errlen, "the query returns %zu columns (1..%d allowed here)", ncols, RMEM_MAX_COLS);
		k->full = 1;
		return -1;
	}
	struct rcol mc[RMEM_MAX_COLS];
	money_cols(k->r, k->s, cols, ncols, mc);
	if (rmem_init(&k->m, mc, ncols, k->max) < 0) {
		snprintf(err, errlen, "cannot hold the result");
		return -1;
	}
	k->inited = 1;
	return 0;
}

static int collect_row(void *arg, const struct rval *vals, char *err, size_t errlen)
{
	struct collect *k = arg;
	if (rmem_push(&k->m, vals) < 0) {
		snprintf(err, errlen, "the query returns more than %zu rows (add a LIMIT)", k->max);
		k->full = 1;
		return -1;
	}
	return 0;
}

/* CSV of a small in-memory table (a KPI row or a chart's data). */
static int csv_of_rmem(struct run *r, const struct tpl_section *s, const struct rmem *m, char *err, size_t errlen)
{
	struct outfile *f = add_file(r, TPL_FMT_CSV, r->t->nsections == 1 ? NULL : s->id, "csv");
	FILE *fp = fopen(f->tmp, "wb");
	if (!fp) {
		snprintf(err, errlen, "cannot create \"%s\": %s", f->tmp, strerror(errno));
		return EXIT_CANTCREAT;
	}
	struct csv_out *w = csv_out_new(fp, NULL);
	int rc = csv_out_table_begin(w, s->title, m->cols, m->ncols);
	for (size_t i = 0; i < m->nrows && rc == 0; i++)
		rc = csv_out_table_row(w, rmem_row(m, i));
	if (rc == 0)
		rc = csv_out_table_end(w);
	char e[256];
	if (csv_out_close(w, e, sizeof e) < 0 && rc == 0)
		rc = -1;
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", f->tmp, e);
	if (fclose(fp) != 0 && rc == 0) {
		snprintf(err, errlen, "%s: %s", f->tmp, strerror(errno));
		rc = -1;
	}
	return rc < 0 ? EXIT_IOERR : EXIT_OK;
}

static int sinks_fail(struct run *r, const char *what, char *err, size_t errlen)
{
	for (size_t i = 0; i < r->nsinks; i++) {
		const char *e = rsink_error(&r->sinks[i]);
		if (e && *e) {
			snprintf(err, errlen, "%s: %s: %s", what, r->sinks[i].ops->name, e);
			return EXIT_IOERR;
		}
	}
	snprintf(err, errlen, "%s: a writer failed", what);
	return EXIT_IOERR;
}

/* Column index of a template column name (SQL name or label) in m. */
static int find_col(const struct tpl_section *s, const struct rmem *m, const char *name)
{
	const char *label = name;
	for (size_t d = 0; d < s->ncolumns; d++)
		if (!strcmp(s->columns[d].name, name) && s->columns[d].label)
			label = s->columns[d].label;
	for (size_t i = 0; i < m->ncols; i++)
		if (!strcmp(m->cols[i].name, label) || !strcmp(m->cols[i].name, name))
			return (int)i;
	return -1;
}

/* A series without a non-zero value has nothing to draw: it leaves the
 * chart (and its legend) in every format, unless every series is empty. */
static void drop_empty_series(struct rchart *ch, const struct rmem *m)
{
	size_t keep[RCHART_MAX_SERIES], n = 0;
	for (size_t s = 0; s < ch->nseries; s++) {
		size_t k = ch->series_cols[s];
		int any = 0;
		for (size_t i = 0; i < m->nrows && !any; i++) {
			const struct rval *v = &rmem_row(m, i)[k];
			any = !v->null && rval_chart_number(&m->cols[k], v) != 0.0;
		}
		if (any)
			keep[n++] = k;
	}
	if (n == 0 || n == ch->nseries)
		return;
	for (size_t s = 0; s < n; s++)
		ch->series_cols[s] = keep[s];
	ch->nseries = n;
}

static int run_collect(struct run *r, const struct tpl_section *s, const struct tpl_sql *sql, char *err, size_t errlen)
{
	struct collect k;
	memset(&k, 0, sizeof k);
	k.max = s->type == TPL_S_KPIS ? 1 : RCHART_MAX_CATS;
	k.r = r;
	k.s = s;
	const char *vals[64];
	enum tpl_ptype types[64];
	if (sql->nparams > 64) {
		snprintf(err, errlen, "%s: too many parameters", sql->where);
		return EXIT_DATAERR;
	}
	bind(r, sql, vals, types);
	struct rdb_cb cb = { collect_begin, collect_row, &k };
	char e[512];
	int rc = rdb_stream(r->c, sql, vals, types, s->columns, s->ncolumns, &cb, NULL, e, sizeof e);
	if (rc != EXIT_OK) {
		if (k.full)
			rc = EXIT_DATAERR;
		snprintf(err, errlen, "%s (%s): %s", s->id, sql->where, e);
		if (k.inited)
			rmem_release(&k.m);
		return rc;
	}
	if (s->type == TPL_S_KPIS) {
		struct rkpi kp[RMEM_MAX_COLS];
		for (size_t i = 0; i < k.m.ncols; i++) {
			kp[i].col = k.m.cols[i];
			kp[i].value = k.m.nrows ? rmem_row(&k.m, 0)[i] : rval_null();
			keep_kpi(r, s, &kp[i]);
		}
		if (k.m.nrows == 0) { /* no row: one row of NULLs in the CSV too */
			struct rval nulls[RMEM_MAX_COLS];
			for (size_t i = 0; i < k.m.ncols; i++)
				nulls[i] = rval_null();
			rmem_push(&k.m, nulls);
		}
		for (size_t i = 0; i < r->nsinks && rc == EXIT_OK; i++)
			if (rsink_kpis(&r->sinks[i], kp, k.m.ncols) < 0)
				rc = sinks_fail(r, s->id, err, errlen);
	} else {
		struct rchart ch;
		memset(&ch, 0, sizeof ch);
		ch.kind = s->kind;
		ch.title = s->title;
		ch.y_title = s->y_title;
		int cat = s->category ? find_col(s, &k.m, s->category) : 0;
		if (cat < 0) {
			snprintf(err, errlen, "%s (%s): category \"%s\" is not a column of the query", s->id, s->where,
				 s->category);
			rmem_release(&k.m);
			return EXIT_DATAERR;
		}
		ch.cat_col = (size_t)cat;
		if (k.m.nrows == 0) { /* nothing to draw: say so where the chart would be */
			log_info("%s: section %s: no data, no chart", r->t->name, s->id);
			static const struct rcol note = { "note", RCOL_TEXT, 0, NULL };
			char msg[300];
			snprintf(msg, sizeof msg, "No data in this period.");
			struct rval v = rval_text(msg);
			for (size_t i = 0; i < r->nsinks && rc == EXIT_OK; i++)
				if (rsink_table_begin(&r->sinks[i], s->title, &note, 1, 0) < 0 ||
				    rsink_table_row(&r->sinks[i], &v) < 0 || rsink_table_end(&r->sinks[i]) < 0)
					rc = sinks_fail(r, s->id, err, errlen);
			if (rc == EXIT_OK && (r->formats & TPL_FMT_CSV))
				rc = csv_of_rmem(r, s, &k.m, err, errlen);
			rmem_release(&k.m);
			return rc;
		}
		if (s->nseries) {
			for (size_t i = 0; i < s->nseries && i < TPL_CHART_MAX_SERIES; i++) {
				int c = find_col(s, &k.m, s->series[i]);
				if (c < 0) {
					snprintf(err, errlen, "%s (%s): series \"%s\" is not a column of the query", s->id,
						 s->where, s->series[i]);
					rmem_release(&k.m);
					return EXIT_DATAERR;
				}
				ch.series_cols[ch.nseries++] = (size_t)c;
			}
		} else {
			for (size_t i = 0; i < k.m.ncols && ch.nseries < TPL_CHART_MAX_SERIES; i++)
				if (i != ch.cat_col && rcol_is_numeric(k.m.cols[i].type))
					ch.series_cols[ch.nseries++] = i;
		}
		drop_empty_series(&ch, &k.m);
		char why[256];
		if (rchart_check(&ch, &k.m, why, sizeof why) < 0) {
			snprintf(err, errlen, "%s (%s): %s", s->id, s->where, why);
			rmem_release(&k.m);
			return EXIT_DATAERR;
		}
		for (size_t i = 0; i < r->nsinks && rc == EXIT_OK; i++)
			if (rsink_chart(&r->sinks[i], &ch, &k.m) < 0)
				rc = sinks_fail(r, s->id, err, errlen);
	}
	if (rc == EXIT_OK && (r->formats & TPL_FMT_CSV))
		rc = csv_of_rmem(r, s, &k.m, err, errlen);
	rmem_release(&k.m);
	return rc;
}

/* ------------------------------------------------------------- streaming tables */

struct tablectx {
	struct run *r;
	const struct tpl_section *s;
	struct rsink sinks[4];
	size_t nsinks;
	FILE *csvfp;
	struct dio *csvd; /* csvfp's writer, freed by its fclose */
	struct outfile *csvf;
	int csv_begun;
};

static int table_begin(void *arg, const struct rcol *cols, size_t ncols, char *err, size_t errlen)
{
	struct tablectx *x = arg;
	if (ncols == 0) {
		snprintf(err, errlen, "the query returns no columns");
		return -1;
	}
	struct rcol *mc = xcalloc(ncols, sizeof *mc);
	money_cols(x->r, x->s, cols, ncols, mc);
	int rc = 0;
	for (size_t i = 0; i < x->nsinks && rc == 0; i++)
		if (rsink_table_begin(&x->sinks[i], x->s->title, mc, ncols, x->s->pdf_max_rows) < 0) {
			snprintf(err, errlen, "%s: %s", x->sinks[i].ops->name, rsink_error(&x->sinks[i]));
			rc = -1;
		}
	free(mc);
	return rc;
}

static int table_row(void *arg, const struct rval *vals, char *err, size_t errlen)
{
	struct tablectx *x = arg;
	for (size_t i = 0; i < x->nsinks; i++)
		if (rsink_table_row(&x->sinks[i], vals) < 0) {
			snprintf(err, errlen, "%s: %s", x->sinks[i].ops->name, rsink_error(&x->sinks[i]));
			return -1;
		}
	return 0;
}

/* Open this section's CSV (if CSV is wanted) and add it to x->sinks. */
static int table_open_csv(struct tablectx *x, char *err, size_t errlen)
{
	struct run *r = x->r;
	for (size_t i = 0; i < r->nsinks; i++)
		x->sinks[x->nsinks++] = r->sinks[i];
	if (!(r->formats & TPL_FMT_CSV))
		return EXIT_OK;
	x->csvf = add_file(r, TPL_FMT_CSV, r->t->nsections == 1 ? NULL : x->s->id, "csv");
	/* written with O_DIRECT: a month's export is gigabytes, and copying
	 * them into the page cache cost more CPU than formatting them */
	x->csvfp = dio_fopen(x->csvf->tmp, &x->csvd);
	if (!x->csvfp) {
		snprintf(err, errlen, "cannot create \"%s\": %s", x->csvf->tmp, strerror(errno));
		return EXIT_CANTCREAT;
	}
	x->sinks[x->nsinks++] = csv_out_sink(csv_out_new(x->csvfp, NULL));
	x->csv_begun = 1;
	return EXIT_OK;
}

/* End the table on every sink and close the CSV; rc is the result so far. */
static int table_finish(struct tablectx *x, int rc, char *err, size_t errlen)
{
	for (size_t i = 0; i < x->nsinks; i++) {
		int is_csv = x->csv_begun && i == x->nsinks - 1;
		if (rc == EXIT_OK && rsink_table_end(&x->sinks[i]) < 0) {
			snprintf(err, errlen, "%s: %s: %s", x->s->id, x->sinks[i].ops->name, rsink_error(&x->sinks[i]));
			rc = EXIT_IOERR;
		}
		if (is_csv) {
			char e[256];
			if (rsink_close(&x->sinks[i], e, sizeof e) < 0 && rc == EXIT_OK) {
				snprintf(err, errlen, "%s: %s", x->csvf->tmp, e);
				rc = EXIT_IOERR;
			}
		}
	}
	if (x->csvfp) {
		if (rc == EXIT_OK && dio_sync(x->csvd) != 0) {
			snprintf(err, errlen, "%s: %s", x->csvf->tmp, strerror(errno));
			rc = EXIT_IOERR;
		}
		if (fclose(x->csvfp) != 0 && rc == EXIT_OK) {
			snprintf(err, errlen, "%s: %s", x->csvf->tmp, strerror(errno));
			rc = EXIT_IOERR;
		}
		x->csvfp = NULL;
		x->csvd = NULL;
	}
	return rc;
}

static int run_table(struct run *r, const struct tpl_section *s, const struct tpl_sql *sql, char *err, size_t errlen)
{
	struct tablectx x;
	memset(&x, 0, sizeof x);
	x.r = r;
	x.s = s;
	const char *vals[64];
	enum tpl_ptype types[64];
	if (sql->nparams > 64) {
		snprintf(err, errlen, "%s: too many parameters", sql->where);
		return EXIT_DATAERR;
	}
	bind(r, sql, vals, types);
	int rc = table_open_csv(&x, err, errlen);
	if (rc == EXIT_OK) {
		struct rdb_cb cb = { table_begin, table_row, &x };
		unsigned long long n = 0;
		char e[512];
		rc = rdb_stream(r->c, sql, vals, types, s->columns, s->ncolumns, &cb, &n, e, sizeof e);
		if (rc != EXIT_OK)
			snprintf(err, errlen, "%s: %s", s->id, e);
		r->rows += n;
		log_info("%s: section %s: %llu rows", r->t->name, s->id, n);
	}
	return table_finish(&x, rc, err, errlen);
}

/* A section whose relations are missing, with when_missing: note. */
static int run_note(struct run *r, const struct tpl_section *s, const char *missing, char *err, size_t errlen)
{
	struct tablectx x;
	memset(&x, 0, sizeof x);
	x.r = r;
	x.s = s;
	char msg[512];
	snprintf(msg, sizeof msg, "Not available: this database has no \"%s\" (a newer cdrflow schema is needed).",
		 missing);
	static const struct rcol col = { "note", RCOL_TEXT, 0, NULL };
	struct rval v = rval_text(msg);
	int rc = table_open_csv(&x, err, errlen);
	if (rc == EXIT_OK && (table_begin(&x, &col, 1, err, errlen) < 0 || table_row(&x, &v, err, errlen) < 0))
		rc = EXIT_IOERR;
	return table_finish(&x, rc, err, errlen);
}

/* ------------------------------------------------------------- the run */

static int check_params(struct run *r, char *err, size_t errlen)
{
	const struct tpl *t = r->t;
	const struct run_opts *o = r->o;
	size_t n = 3 + t->nparams;
	r->names = xcalloc(n, sizeof *r->names);
	r->values = xcalloc(n, sizeof *r->values);
	r->types = xcalloc(n, sizeof *r->types);
	r->names[0] = TPL_BUILTIN_FROM;
	r->values[0] = r->period.from;
	r->types[0] = TPL_P_TIMESTAMPTZ;
	r->names[1] = TPL_BUILTIN_TO;
	r->values[1] = r->period.to;
	r->types[1] = TPL_P_TIMESTAMPTZ;
	r->names[2] = TPL_BUILTIN_TZ;
	r->values[2] = o->tz;
	r->types[2] = TPL_P_TEXT;
	r->nvalues = 3;
	for (size_t i = 0; i < o->nparams; i++) {
		if (!tpl_find_param(t, o->param_names[i])) {
			size_t m = (size_t)snprintf(err, errlen, "--param %s: template %s has no such parameter (it has:",
						    o->param_names[i], t->name);
			for (size_t k = 0; k < t->nparams && m < errlen; k++)
				m += (size_t)snprintf(err + m, errlen - m, " %s", t->params[k].name);
			if (m < errlen)
				snprintf(err + m, errlen - m, "%s)", t->nparams ? "" : " none");
			return EXIT_USAGE;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(o->param_names[k], o->param_names[i])) {
				snprintf(err, errlen, "--param %s given twice", o->param_names[i]);
				return EXIT_USAGE;
			}
	}
	for (size_t i = 0; i < t->nparams; i++) {
		const struct tpl_param *p = &t->params[i];
		const char *v = p->def;
		for (size_t k = 0; k < o->nparams; k++)
			if (!strcmp(o->param_names[k], p->name))
				v = o->param_values[k];
		if (!v && p->required) {
			snprintf(err, errlen, "template %s needs --param %s=%s (%s)", t->name, p->name,
				 tpl_ptype_name(p->type), p->help);
			return EXIT_USAGE;
		}
		if (v && p->choices) {
			int ok = 0;
			for (size_t k = 0; p->choices[k]; k++)
				ok |= !strcmp(p->choices[k], v);
			if (!ok) {
				snprintf(err, errlen, "--param %s: \"%s\" is not one of the template's choices", p->name, v);
				return EXIT_USAGE;
			}
		}
		if (v && p->type != TPL_P_TEXT) {
			char e[256];
			int rc = rdb_check_value(r->c, p->type, v, e, sizeof e);
			if (rc != EXIT_OK) {
				snprintf(err, errlen, "--param %s: %s", p->name, e);
				return rc;
			}
		}
		r->names[r->nvalues] = p->name;
		r->values[r->nvalues] = v;
		r->types[r->nvalues] = p->type;
		r->nvalues++;
	}
	return EXIT_OK;
}

/* Pick each section's source: the first whose relations all exist.
 * chosen[i] = source index, or -1 (note) with missing[i] the relation. */
static int choose_sources(struct run *r, int *chosen, const char **missing, char *err, size_t errlen)
{
	for (size_t i = 0; i < r->t->nsections; i++) {
		const struct tpl_section *s = &r->t->sections[i];
		chosen[i] = -1;
		missing[i] = NULL;
		for (size_t j = 0; j < s->nsources && chosen[i] < 0; j++) {
			const struct tpl_source *src = &s->sources[j];
			const char *lacks = NULL;
			for (size_t k = 0; k < src->nrequires && !lacks; k++) {
				int ex;
				int rc = rdb_relation_exists(r->c, src->requires[k], &ex, err, errlen);
				if (rc != EXIT_OK)
					return rc;
				if (!ex)
					lacks = src->requires[k];
			}
			if (!lacks) {
				chosen[i] = (int)j;
				if (s->nsources > 1)
					log_info("%s: section %s: source %zu of %zu (%s%s)", r->t->name, s->id, j + 1,
						 s->nsources, src->nrequires ? "needs " : "base tables",
						 src->nrequires ? src->requires[0] : "");
			} else if (j == s->nsources - 1)
				missing[i] = lacks;
		}
		if (chosen[i] < 0 && s->when_missing == TPL_MISSING_FAIL) {
			snprintf(err, errlen,
				 "template %s, section %s (%s): needs relation \"%s\", which this database lacks "
				 "(a newer cdrflow schema: run cdrflow-etl migrate)",
				 r->t->name, s->id, s->where, missing[i]);
			return EXIT_CONFIG;
		}
		if (chosen[i] < 0)
			log_warn("%s: section %s: \"%s\" does not exist, the report says so", r->t->name, s->id, missing[i]);
	}
	return EXIT_OK;
}

static int open_sinks(struct run *r, char *err, size_t errlen)
{
	char gen[96] = "";
	PGresult *q = PQexec(r->c, "SELECT to_char(now(), 'YYYY-MM-DD HH24:MI')");
	if (q && PQresultStatus(q) == PGRES_TUPLES_OK && PQntuples(q) == 1)
		snprintf(gen, sizeof gen, "generated %s %s by cdrflow-report", PQgetvalue(q, 0, 0), r->o->tz);
	PQclear(q);
	if (r->tenant_name)
		snprintf(r->subtitle, sizeof r->subtitle, !strcmp(r->tenant_name, r->tenant) ? "Tenant: %s" : "Tenant: %s (%s)",
			 r->tenant_name, r->tenant);
	struct rmeta meta = { .title = r->t->title,
			      .period = r->period.display,
			      .generated = gen,
			      .subtitle = *r->subtitle ? r->subtitle : NULL,
			      .currency = r->currency };
	if (r->formats & TPL_FMT_PDF) {
		/* each table's pdf_max_rows is given with the table */
		struct pdf_out_opts po = { r->o->paper, r->o->font_dir && *r->o->font_dir ? r->o->font_dir : NULL, 0, NULL };
		struct outfile *f = add_file(r, TPL_FMT_PDF, NULL, "pdf");
		struct pdf_out *p = pdf_out_new(f->tmp, &meta, &po, err, errlen);
		if (!p)
			return strstr(err, "font") ? EXIT_CONFIG : EXIT_CANTCREAT;
		r->sinks[r->nsinks++] = pdf_out_sink(p);
	}
	if (r->formats & TPL_FMT_XLSX) {
		struct xlsx_out_opts xo = { r->t->xlsx_constant_memory, 0, NULL, 0 };
		struct outfile *f = add_file(r, TPL_FMT_XLSX, NULL, "xlsx");
		struct xlsx_out *x = xlsx_out_new(f->tmp, &meta, &xo, err, errlen);
		if (!x)
			return EXIT_CANTCREAT;
		r->sinks[r->nsinks++] = xlsx_out_sink(x);
	}
	if (r->formats & TPL_FMT_HTML) {
		struct html_out_opts ho = { 0, r->o->font_dir && *r->o->font_dir ? r->o->font_dir : NULL };
		struct outfile *f = add_file(r, TPL_FMT_HTML, NULL, "html");
		struct html_out *h = html_out_new(f->tmp, &meta, &ho, err, errlen);
		if (!h)
			return strstr(err, "font") ? EXIT_CONFIG : EXIT_CANTCREAT;
		r->sinks[r->nsinks++] = html_out_sink(h);
	}
	return EXIT_OK;
}

/* <template>-<from>-<to>, or <template>-<tenant>-<from>-<to> for one
 * tenant's report (so that two tenants' files never share a name); the
 * tenant as letters, digits, '.', '_' and '-' ('_' for anything else). */
static void run_base(struct run *r)
{
	const char *tn = param_value(r, "tenant");
	char safe[96] = "";
	size_t j = 0;
	for (const char *q = tn ? tn : ""; *q && j < sizeof safe - 1; q++) {
		int ok = (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '-' ||
			 *q == '_' || (*q == '.' && j > 0);
		safe[j++] = ok ? *q : '_';
	}
	safe[j] = '\0';
	if (j)
		snprintf(r->base, sizeof r->base, "%s-%s-%s-%s", r->t->name, safe, r->period.from_lbl, r->period.to_lbl);
	else
		snprintf(r->base, sizeof r->base, "%s-%s-%s", r->t->name, r->period.from_lbl, r->period.to_lbl);
}

/* The header's tenant name and currency and the money decimals, from
 * cdrflow_report_context() when the warehouse has it (migration 0019). */
static int read_context(struct run *r, char *err, size_t errlen)
{
	int ex = 0;
	int rc = rdb_relation_exists(r->c, "tenant_profile", &ex, err, errlen);
	if (rc != EXIT_OK || !ex)
		return rc;
	const char *v[1] = { r->tenant };
	PGresult *q = PQexecParams(r->c, "SELECT tenant_name, currency, money_scale FROM cdrflow_report_context($1)", 1,
				   NULL, v, NULL, NULL, 0);
	if (!q || PQresultStatus(q) != PGRES_TUPLES_OK || PQntuples(q) != 1) {
		snprintf(err, errlen, "report context: %s", PQerrorMessage(r->c));
		PQclear(q);
		return EXIT_SOFTWARE;
	}
	if (!PQgetisnull(q, 0, 0))
		r->tenant_name = xstrdup(PQgetvalue(q, 0, 0));
	if (!PQgetisnull(q, 0, 1))
		r->currency = xstrdup(PQgetvalue(q, 0, 1));
	if (!PQgetisnull(q, 0, 2))
		r->money_scale = atoi(PQgetvalue(q, 0, 2));
	PQclear(q);
	return EXIT_OK;
}

static void cleanup_files(struct run *r)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		unlink(r->files[i].tmp);
		char *pt = xasprintf("%s.tmp", r->files[i].tmp);
		unlink(pt);
		free(pt);
	}
}

static int check_out_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (mkdir_p(dir, 0777) < 0 || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
		snprintf(err, errlen, "cannot create output in \"%s\": %s", dir, strerror(errno ? errno : ENOTDIR));
		return EXIT_CANTCREAT;
	}
	return EXIT_OK;
}

int report_run(PGconn *c, const struct tpl *t, const struct run_opts *o, struct run_result *res, char *err,
	       size_t errlen)
{
	struct run r;
	memset(&r, 0, sizeof r);
	memset(res, 0, sizeof *res);
	r.c = c;
	r.t = t;
	r.o = o;
	r.formats = o->formats ? o->formats : t->formats;
	const char *from = o->from ? o->from : t->period ? t->period : "yesterday";
	int rc = rdb_period(c, from, o->from ? o->to : NULL, o->tz, &r.period, err, errlen);
	if (rc == EXIT_OK)
		rc = check_params(&r, err, errlen);
	if (rc == EXIT_OK)
		rc = check_out_dir(o->out_dir, err, errlen);
	run_base(&r);
	if (rc == EXIT_OK) { /* inputs the PBX did not send in this period: say so with the data */
		size_t ncav;
		char e[512];
		if (caveats_print(c, r.period.from, r.period.to, stderr, "cdrflow-report: warning: caveat: ", &ncav, e,
				  sizeof e) < 0)
			log_warn("cannot read the input caveats of the period: %s", e);
	}
	if (rc == EXIT_OK)
		rc = rdb_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", err, errlen);
	int *chosen = xcalloc(t->nsections, sizeof *chosen);
	const char **missing = xcalloc(t->nsections, sizeof *missing);
	if (rc == EXIT_OK)
		rc = choose_sources(&r, chosen, missing, err, errlen);
	r.money_scale = -1;
	r.tenant = param_value(&r, "tenant");
	if (rc == EXIT_OK)
		rc = read_context(&r, err, errlen);
	if (rc == EXIT_OK)
		rc = open_sinks(&r, err, errlen);
	for (size_t i = 0; i < t->nsections && rc == EXIT_OK; i++) {
		const struct tpl_section *s = &t->sections[i];
		if (chosen[i] < 0)
			rc = run_note(&r, s, missing[i], err, errlen);
		else if (s->type == TPL_S_TABLE)
			rc = run_table(&r, s, &s->sources[chosen[i]].sql, err, errlen);
		else
			rc = run_collect(&r, s, &s->sources[chosen[i]].sql, err, errlen);
	}
	for (size_t i = 0; i < r.nsinks; i++) {
		char e[256];
		if (rsink_close(&r.sinks[i], e, sizeof e) < 0 && rc == EXIT_OK) {
			snprintf(err, errlen, "%s: %s", r.sinks[i].ops->name, e);
			rc = EXIT_IOERR;
		}
	}
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		char e[256];
		int rc2 = rdb_exec(c, rc == EXIT_OK ? "COMMIT" : "ROLLBACK", e, sizeof e);
		if (rc == EXIT_OK && rc2 != EXIT_OK) {
			snprintf(err, errlen, "%s", e);
			rc = rc2;
		}
	}
	/* all complete: rename every file into place */
	size_t renamed = 0;
	for (size_t i = 0; i < r.nfiles && rc == EXIT_OK; i++) {
		int fd = open(r.files[i].tmp, O_RDONLY);
		if (fd >= 0) {
			(void)fsync(fd); /* the PDF and XLSX writers do not fsync */
			close(fd);
		}
		if (rename(r.files[i].tmp, r.files[i].final) != 0) {
			snprintf(err, errlen, "cannot rename \"%s\" to \"%s\": %s", r.files[i].tmp, r.files[i].final,
				 strerror(errno));
			rc = EXIT_CANTCREAT;
		} else
			renamed++;
	}
	if (rc == EXIT_OK && r.nfiles && fsync_dir(o->out_dir) < 0)
		log_warn("cannot fsync \"%s\": %s", o->out_dir, strerror(errno));
	if (rc != EXIT_OK) {
		cleanup_files(&r);
		for (size_t i = 0; i < renamed; i++) /* all or nothing */
			unlink(r.files[i].final);
	}
	res->period = r.period;
	res->rows = r.rows;
	if (rc == EXIT_OK) {
		res->files = xcalloc(r.nfiles ? r.nfiles : 1, sizeof *res->files);
		for (size_t i = 0; i < r.nfiles; i++) {
			res->files[i].path = r.files[i].final;
			res->files[i].format = r.files[i].format;
			res->files[i].section = r.files[i].section;
			r.files[i].final = NULL;
		}
		res->nfiles = r.nfiles;
		res->kpis = r.kpis;
		res->nkpis = r.nkpis;
		r.kpis = NULL;
		r.nkpis = 0;
	}
	free_kpis(r.kpis, r.nkpis);
	for (size_t i = 0; i < r.nfiles; i++) {
		free(r.files[i].tmp);
		free(r.files[i].final);
	}
	free(r.files);
	free(chosen);
	free(missing);
	free(r.names);
	free(r.values);
	free(r.types);
	free(r.tenant_name);
	free(r.currency);
	return rc;
}

void run_result_release(struct run_result *res)
{
	for (size_t i = 0; i < res->nfiles; i++)
		free((char *)res->files[i].path);
	free(res->files);
	free_kpis(res->kpis, res->nkpis);
	memset(res, 0, sizeof *res);
}

int report_each_tenants(PGconn *c, const struct tpl *t, const struct run_opts *o, char ***out, size_t *n, char *err,
			size_t errlen)
{
	*out = NULL;
	*n = 0;
	struct period per;
	const char *from = o->from ? o->from : t->period ? t->period : "yesterday";
	int rc = rdb_period(c, from, o->from ? o->to : NULL, o->tz, &per, err, errlen);
	if (rc != EXIT_OK)
		return rc;
	int prof = 0;
	rc = rdb_relation_exists(c, "tenant_profile", &prof, err, errlen);
	if (rc != EXIT_OK)
		return rc;
	const char *v[2] = { per.from, per.to };
	PGresult *q = PQexecParams(c,
				   prof ? "SELECT tenant FROM tenant_profile UNION "
					  "SELECT DISTINCT tenant FROM cdr WHERE calldate >= $1 AND calldate < $2 "
					  "AND tenant IS NOT NULL AND tenant <> '' ORDER BY 1"
					: "SELECT DISTINCT tenant FROM cdr WHERE calldate >= $1 AND calldate < $2 "
					  "AND tenant IS NOT NULL AND tenant <> '' ORDER BY 1",
				   2, NULL, v, NULL, NULL, 0);
	if (!q || PQresultStatus(q) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "--each tenant: %s", PQerrorMessage(c));
		PQclear(q);
		return EXIT_SOFTWARE;
	}
	size_t k = (size_t)PQntuples(q);
	char **r = xcalloc(k + 1, sizeof *r);
	for (size_t i = 0; i < k; i++)
		r[i] = xstrdup(PQgetvalue(q, (int)i, 0));
	PQclear(q);
	*out = r;
	*n = k;
	return EXIT_OK;
}

void report_each_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
