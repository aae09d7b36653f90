/*
 * tpl.h - report templates: YAML files describing a report (docs/report.md).
 *
 * A template names its parameters, its sections (KPI tiles, charts, tables),
 * the SQL of each section, its default formats and its delivery.  Parsing is
 * strict: an unknown key, a wrong type or a ":name" placeholder that is not
 * a parameter is an error with "file:line:col".  Placeholders in the SQL are
 * rewritten to $1..$n when the template is loaded; the values are always
 * sent as bind parameters, never pasted into the SQL text.
 *
 * Ownership: tpl_load() returns a template that owns every string in it;
 * tpl_free() releases it.
 */
#ifndef CDRFLOW_REPORT_TPL_H
#define CDRFLOW_REPORT_TPL_H

#include <stddef.h>

#include "table.h"

/* Built-in parameters every SQL may use besides the template's own. */
#define TPL_BUILTIN_FROM "from" /* timestamptz, start of the period (inclusive) */
#define TPL_BUILTIN_TO "to"     /* timestamptz, end of the period (exclusive) */
#define TPL_BUILTIN_TZ "tz"     /* text, the report's time zone */

enum tpl_ptype { TPL_P_TEXT, TPL_P_INT, TPL_P_BOOL, TPL_P_DATE, TPL_P_INTERVAL, TPL_P_TIMESTAMPTZ };

struct tpl_param {
	char *name;
	enum tpl_ptype type;
	char *def;     /* default value; NULL = SQL NULL unless required */
	int required;
	char *help;
	char **choices; /* NULL-terminated or NULL */
};

/* Explicit column settings (anything not listed is typed from the result). */
struct tpl_column {
	char *name;  /* the SQL column name */
	char *label; /* header text (NULL = name) */
	int has_type;
	enum rcol_type type;
	int scale;   /* -1 = the type's default */
};

/* Where text holds a placeholder: "$k" at off, k = param + 1. */
struct tpl_ph {
	size_t off;
	size_t param;
};

/* A SQL text after placeholder rewriting: $k is params[k-1]. */
struct tpl_sql {
	char *text;
	char **params; /* parameter names, in $ order */
	size_t nparams;
	struct tpl_ph *ph; /* every placeholder of text, in order */
	size_t nph;
	size_t body_len; /* text without a final ';' and what follows it, for nesting */
	char *where;   /* "file:line" of the SQL, for messages */
};

/* One way to get a section's rows: used when all of requires exist. */
struct tpl_source {
	char **requires; /* relation names (tables or views) */
	size_t nrequires;
	struct tpl_sql sql;
};

/* Series per chart: what every writer can draw (the XLSX data block is
 * narrower than RCHART_MAX_SERIES). */
#define TPL_CHART_MAX_SERIES 4

enum tpl_stype { TPL_S_KPIS, TPL_S_CHART, TPL_S_TABLE };
enum tpl_missing { TPL_MISSING_FAIL, TPL_MISSING_NOTE };

struct tpl_section {
	enum tpl_stype type;
	char *id;    /* file-name part of its CSV */
	char *title;
	/* sources in order of preference; the last one is the "sql"/"query" one */
	struct tpl_source *sources;
	size_t nsources;
	enum tpl_missing when_missing;
	struct tpl_column *columns;
	size_t ncolumns;
	/* chart */
	enum rchart_kind kind;
	char *category;  /* NULL = the first column */
	char **series;   /* NULL = every numeric column but the category */
	size_t nseries;
	char *y_title;
	/* table */
	size_t pdf_max_rows; /* 0 = the writer's default */
	char *where;         /* "file:line" */
};

/* The template's delivery: section (docs/report.md, DELIVERY).  Where and
 * how (server, URL, secrets, spool) is the configuration's
 * report.delivery.*; the template only says what goes to whom. */
struct tpl_delivery {
	char **recipients; /* e-mail addresses ("a@x" or "Name <a@x>"); none: report.delivery.mail.to */
	size_t nrecipients;
	int mail;          /* send mail (`mail:`; default: yes when recipients are listed) */
	int webhook;       /* post a "report ready" event to report.delivery.webhook.url */
	char *subject;     /* NULL = "<title> <period>" */
	char **formats;    /* which files to deliver (NULL = every one written) */
	size_t nformats;
};

#define TPL_FMT_PDF 1u
#define TPL_FMT_CSV 2u
#define TPL_FMT_XLSX 4u
#define TPL_FMT_HTML 8u
#define TPL_FMT_ALL (TPL_FMT_PDF | TPL_FMT_CSV | TPL_FMT_XLSX | TPL_FMT_HTML)

struct tpl {
	char *name;  /* file name without .yaml */
	char *path;
	char *title;
	char *description;
	char *period; /* default period (NULL = yesterday) */
	struct tpl_param *params;
	size_t nparams;
	unsigned formats; /* TPL_FMT_* */
	int xlsx_constant_memory;
	struct tpl_section *sections;
	size_t nsections;
	int has_delivery;
	struct tpl_delivery delivery;
};

/* Load and check a template file.  name is what the file is called in
 * messages and output names.  Returns NULL with "file:line:col: reason" in
 * err. */
struct tpl *tpl_load(const char *path, const char *name, char *err, size_t errlen);
void tpl_free(struct tpl *t);

/* Parse "pdf,csv" into TPL_FMT_* bits; -1 with err on an unknown format. */
int tpl_parse_formats(const char *s, unsigned *out, char *err, size_t errlen);

const char *tpl_ptype_name(enum tpl_ptype t);
const struct tpl_param *tpl_find_param(const struct tpl *t, const char *name);

/* Rewrite ":name" placeholders of sql into $n (exposed for tests).
 * Quoted strings, quoted identifiers, dollar quotes, comments and "::" casts
 * are left alone.  is_known(name) decides which names are parameters; an
 * unknown one fails with its offset in *bad_off.  0 or -1. */
int tpl_rewrite_sql(const char *sql, int (*is_known)(const char *name, void *arg), void *arg, struct tpl_sql *out,
		    size_t *bad_off, char *err, size_t errlen);
void tpl_sql_release(struct tpl_sql *s);

#endif
