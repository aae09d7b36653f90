#include "tpl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "cfg.h"
#include "strparse.h"
#include "xalloc.h"

/* The template being loaded: its document and what the SQL rewriting needs. */
struct parser {
	struct cfg_doc *d;
	struct tpl *t;
};

static const char *scalar_of(const yaml_node_t *n)
{
	return cfg_scalar(n);
}

static void free_strlist(char **l, size_t n)
{
	if (!l)
		return;
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static int valid_name(const char *s)
{
	if (!s || !(islower((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

/* ------------------------------------------------------------- SQL rewriting */

static int ident_start(int c)
{
	return isalpha(c) || c == '_';
}

static int ident_char(int c)
{
	return isalnum(c) || c == '_';
}

int tpl_rewrite_sql(const char *sql, int (*is_known)(const char *name, void *arg), void *arg, struct tpl_sql *out,
		    size_t *bad_off, char *err, size_t errlen)
{
	struct buf b;
	buf_init(&b, 0);
	memset(out, 0, sizeof *out);
	*bad_off = 0;
	size_t n = strlen(sql), i = 0;
	size_t body = 0, semi = (size_t)-1; /* end of the last token; a final ';' */
	while (i < n) {
		unsigned char c = (unsigned char)sql[i];
		size_t start = i;
		int token = 1; /* neither a comment nor blank */
		if (c == '-' && sql[i + 1] == '-') {
			token = 0;
			while (i < n && sql[i] != '\n')
				i++;
		} else if (c == '/' && sql[i + 1] == '*') {
			token = 0;
			int depth = 0;
			do {
				if (sql[i] == '/' && sql[i + 1] == '*') {
					depth++;
					i += 2;
				} else if (sql[i] == '*' && sql[i + 1] == '/') {
					depth--;
					i += 2;
				} else
					i++;
			} while (i < n && depth > 0);
		} else if (c == '\'') {
			int esc = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && (i < 2 || !ident_char((unsigned char)sql[i - 2]));
			i++;
			while (i < n) {
				if (esc && sql[i] == '\\' && i + 1 < n) {
					i += 2;
					continue;
				}
				if (sql[i] == '\'') {
					if (sql[i + 1] == '\'') {
						i += 2;
						continue;
					}
					i++;
					break;
				}
				i++;
			}
		} else if (c == '"') {
			i++;
			while (i < n) {
				if (sql[i] == '"') {
					if (sql[i + 1] == '"') {
						i += 2;
						continue;
					}
					i++;
					break;
				}
				i++;
			}
		} else if (c == '$' && (i == 0 || !ident_char((unsigned char)sql[i - 1]))) {
			if (isdigit((unsigned char)sql[i + 1])) {
				*bad_off = i;
				snprintf(err, errlen, "positional parameter \"$%c...\": use :name placeholders", sql[i + 1]);
				goto fail;
			}
			size_t j = i + 1;
			while (j < n && ident_char((unsigned char)sql[j]) && !(j == i + 1 && isdigit((unsigned char)sql[j])))
				j++;
			if (j < n && sql[j] == '$') { /* a dollar quote $tag$ ... $tag$ */
				size_t tl = j - i + 1;
				size_t k = j + 1;
				while (k < n && strncmp(sql + k, sql + i, tl) != 0)
					k++;
				i = k < n ? k + tl : n;
			} else
				i++;
		} else if (c == ':' && sql[i + 1] == ':') {
			i += 2;
		} else if (c == ':' && ident_start((unsigned char)sql[i + 1]) && (i == 0 || sql[i - 1] != ':')) {
			size_t j = i + 1;
			while (j < n && ident_char((unsigned char)sql[j]))
				j++;
			char *name = xstrndup(sql + i + 1, j - i - 1);
			if (!is_known(name, arg)) {
				*bad_off = i;
				snprintf(err, errlen, "unknown parameter \":%s\"", name);
				free(name);
				goto fail;
			}
			size_t k;
			for (k = 0; k < out->nparams; k++)
				if (!strcmp(out->params[k], name))
					break;
			if (k == out->nparams) {
				out->params = xrealloc(out->params, (out->nparams + 1) * sizeof *out->params);
				out->params[out->nparams++] = name;
			} else
				free(name);
			out->ph = xrealloc(out->ph, (out->nph + 1) * sizeof *out->ph);
			out->ph[out->nph].off = b.len;
			out->ph[out->nph++].param = k;
			buf_printf(&b, "$%zu", k + 1);
			body = b.len;
			semi = (size_t)-1;
			i = j;
			continue;
		} else {
			token = !isspace(c);
			i++;
		}
		if (token)
			semi = c == ';' && i == start + 1 ? b.len : (size_t)-1;
		buf_append(&b, sql + start, i - start);
		if (token)
			body = b.len;
	}
	out->body_len = semi != (size_t)-1 ? semi : body;
	out->text = buf_detach(&b, NULL);
	return 0;
fail:
	buf_release(&b);
	tpl_sql_release(out);
	return -1;
}

void tpl_sql_release(struct tpl_sql *s)
{
	free(s->text);
	free_strlist(s->params, s->nparams);
	free(s->ph);
	free(s->where);
	memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------- values */

static const char *const ptype_names[] = { "text", "int", "bool", "date", "interval", "timestamptz", NULL };

const char *tpl_ptype_name(enum tpl_ptype t)
{
	return ptype_names[t];
}

static const char *const ctype_names[] = { "text", "int", "money", "decimal", "timestamp", "duration", "percent", NULL };
static const enum rcol_type ctype_values[] = { RCOL_TEXT,      RCOL_INT,      RCOL_MONEY,  RCOL_DECIMAL,
						 RCOL_TIMESTAMP, RCOL_DURATION, RCOL_PERCENT };
static const char *const kind_names[] = { "bar", "line", "stacked", "donut", NULL };
static const char *const stype_names[] = { "kpis", "chart", "table", NULL };

int tpl_parse_formats(const char *s, unsigned *out, char *err, size_t errlen)
{
	*out = 0;
	const char *q = s;
	while (*q) {
		while (*q == ',' || *q == ' ')
			q++;
		const char *e = q;
		while (*e && *e != ',' && *e != ' ')
			e++;
		size_t len = (size_t)(e - q);
		if (len == 3 && !strncmp(q, "pdf", 3))
			*out |= TPL_FMT_PDF;
		else if (len == 3 && !strncmp(q, "csv", 3))
			*out |= TPL_FMT_CSV;
		else if (len == 4 && !strncmp(q, "xlsx", 4))
			*out |= TPL_FMT_XLSX;
		else if (len == 4 && !strncmp(q, "html", 4))
			*out |= TPL_FMT_HTML;
		else if (len) {
			snprintf(err, errlen, "unknown format \"%.*s\" (pdf, csv, xlsx, html)", (int)len, q);
			return -1;
		}
		q = e;
	}
	if (!*out) {
		snprintf(err, errlen, "no format given (pdf, csv, xlsx, html)");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- the template */

struct known_arg {
	const struct tpl *t;
};

static int known_param(const char *name, void *arg)
{
	const struct tpl *t = ((struct known_arg *)arg)->t;
	if (!strcmp(name, TPL_BUILTIN_FROM) || !strcmp(name, TPL_BUILTIN_TO) || !strcmp(name, TPL_BUILTIN_TZ))
		return 1;
	return tpl_find_param(t, name) != NULL;
}

const struct tpl_param *tpl_find_param(const struct tpl *t, const char *name)
{
	for (size_t i = 0; i < t->nparams; i++)
		if (!strcmp(t->params[i].name, name))
			return &t->params[i];
	return NULL;
}

/* Rewrite the SQL scalar node v into out; errors point into the SQL. */
static int load_sql(struct parser *p, yaml_node_t *v, const char *text, struct tpl_sql *out)
{
	struct known_arg ka = { p->t };
	size_t bad;
	char why[256];
	if (tpl_rewrite_sql(text, known_param, &ka, out, &bad, why, sizeof why) < 0) {
		size_t line = v->start_mark.line + 1, col = v->start_mark.column + 1;
		int block = v->data.scalar.style == YAML_LITERAL_SCALAR_STYLE || v->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
		if (block) { /* the text starts on the next line; column approximate */
			line++;
			col = 1;
		}
		for (size_t i = 0; i < bad; i++) {
			if (text[i] == '\n') {
				line++;
				col = 1;
			} else
				col++;
		}
		return cfg_fail_at(p->d, line, col, "%s", why);
	}
	out->where = xasprintf("%s:%zu", cfg_doc_name(p->d), cfg_line(v));
	return 0;
}

/* sql: or query: of map (exactly one) into src. */
static int load_source_sql(struct parser *p, yaml_node_t *map, const char *what, struct tpl_source *src)
{
	yaml_node_t *s = cfg_get(p->d, map, "sql"), *q = cfg_get(p->d, map, "query");
	if (s && q)
		return cfg_fail(p->d, q, "%s: give either sql or query, not both", what);
	if (!s && !q)
		return cfg_fail(p->d, map, "%s: sql (or query, the name of one of queries) is required", what);
	if (s) {
		if (!scalar_of(s) || cfg_is_null(s))
			return cfg_fail(p->d, s, "%s.sql must be SQL text", what);
		return load_sql(p, s, scalar_of(s), &src->sql);
	}
	if (!scalar_of(q))
		return cfg_fail(p->d, q, "%s.query must be a query name", what);
	yaml_node_t *qv = cfg_get(p->d, cfg_get(p->d, cfg_doc_root(p->d), "queries"), scalar_of(q));
	if (!qv)
		return cfg_fail(p->d, q, "%s: no query named \"%s\" under queries", what, scalar_of(q));
	return load_sql(p, qv, scalar_of(qv), &src->sql);
}

static void slug(const char *title, char *out, size_t n)
{
	size_t o = 0;
	int dash = 0;
	for (const char *c = title; *c && o + 1 < n; c++) {
		if (isalnum((unsigned char)*c)) {
			if (dash && o)
				out[o++] = '-';
			if (o + 1 < n)
				out[o++] = (char)tolower((unsigned char)*c);
			dash = 0;
		} else
			dash = 1;
	}
	out[o] = '\0';
	if (!o)
		snprintf(out, n, "section");
}

/* ------------------------------------------------------------- key tables */

#define END { NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 }

/* sections[].columns[]: name and label bind into struct tpl_column, type
 * and scale into struct col_shape (the type is optional, the scale -1 when
 * not given). */
struct col_shape {
	int type; /* index into ctype_names, -1 = typed from the result */
	int64_t scale;
};
#define C(f) offsetof(struct tpl_column, f)
static const struct cfg_key column_keys[] = {
	{ "name", CFG_STRING, C(name), NULL, 0, 0, NULL, "the SQL column name", CFG_REQUIRED, NULL, 0, 0 },
	{ "label", CFG_STRING, C(label), NULL, 0, 0, NULL, "header text", 0, NULL, 0, 0 },
	END,
};
#undef C
#define C(f) offsetof(struct col_shape, f)
static const struct cfg_key column_shape_keys[] = {
	{ "type", CFG_ENUM, C(type), NULL, 0, 0, ctype_names, "the column's type", 0, NULL, 0, 0 },
	{ "scale", CFG_INT, C(scale), NULL, 0, RCOL_MAX_SCALE, NULL, "decimals", 0, NULL, 0, 0 },
	END,
};
#undef C

static int columns_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *seq, const char *where)
{
	(void)k;
	struct tpl_section *s = obj;
	static const struct cfg_key *const tables[] = { column_keys, column_shape_keys, NULL };
	if (!seq)
		return 0;
	if (!cfg_is_seq(seq))
		return cfg_fail(d, seq, "%s must be a list of {name, label, type, scale}", where);
	size_t cnt = cfg_seq_len(seq);
	s->columns = xcalloc(cnt ? cnt : 1, sizeof *s->columns);
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *m = cfg_seq_item(d, seq, i);
		char w[128];
		snprintf(w, sizeof w, "%s[%zu]", where, i);
		struct tpl_column *c = &s->columns[i];
		struct col_shape sh = { -1, -1 };
		s->ncolumns = i + 1;
		if (cfg_check_keys(d, m, w, tables) < 0 || cfg_bind_values(d, column_keys, c, m, w) < 0 ||
		    cfg_bind_values(d, column_shape_keys, &sh, m, w) < 0)
			return -1;
		if (cfg_is_null(cfg_get(d, m, "scale"))) /* a number or nothing: no explicit null */
			return cfg_fail(d, cfg_get(d, m, "scale"), "%s.scale must be 0..%d", w, RCOL_MAX_SCALE);
		if (sh.type >= 0) {
			c->has_type = 1;
			c->type = ctype_values[sh.type];
		}
		c->scale = (int)sh.scale;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->columns[j].name, c->name))
				return cfg_fail(d, m, "%s: column \"%s\" listed twice", w, c->name);
	}
	return 0;
}

static int pdf_max_rows_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *where)
{
	(void)k;
	struct tpl_section *s = obj;
	int64_t n;
	char why[128];
	if (!v)
		return 0;
	if (s->type != TPL_S_TABLE) /* where is "sections[i].pdf_max_rows" */
		return cfg_fail(d, v, "%.*s: pdf_max_rows is for tables only", (int)(strlen(where) - strlen(".pdf_max_rows")),
				where);
	if (!scalar_of(v) || parse_int_range(scalar_of(v), 1, 10000000, &n, why, sizeof why) < 0)
		return cfg_fail(d, v, "%s must be 1..10000000", where);
	s->pdf_max_rows = (size_t)n;
	return 0;
}

static const struct cfg_hook columns_hook = { columns_bind, NULL, NULL, NULL };
static const struct cfg_hook pdf_max_rows_hook = { pdf_max_rows_bind, NULL, NULL, NULL };
static const char *const missing_names[] = { "fail", "note", NULL };

/* kind binds the index of kind_names: the same as enum rchart_kind */
_Static_assert(RCHART_BAR == 0 && RCHART_LINE == 1 && RCHART_STACKED == 2 && RCHART_DONUT == 3,
	       "kind_names follows enum rchart_kind");

/* sections[]: sql, query, requires and prefer make the section's sources
 * (load_sources(): they depend on each other and on queries:). */
#define S(f) offsetof(struct tpl_section, f)
static const struct cfg_key section_keys[] = {
	{ "type", CFG_ENUM, S(type), NULL, 0, 0, stype_names, "kpis, chart or table", 0, NULL, 0, 0 },
	{ "id", CFG_STRING, S(id), NULL, 0, 0, NULL, "file-name part of its CSV", 0, NULL, 0, 0 },
	{ "title", CFG_STRING, S(title), NULL, 0, 0, NULL, "the section's title", 0, NULL, 0, 0 },
	{ "sql", CFG_IGNORE, 0, NULL, 0, 0, NULL, "the rows' SQL", 0, NULL, 0, 0 },
	{ "query", CFG_IGNORE, 0, NULL, 0, 0, NULL, "the name of one of queries", 0, NULL, 0, 0 },
	{ "requires", CFG_IGNORE, 0, NULL, 0, 0, NULL, "relations the SQL needs", 0, NULL, 0, 0 },
	{ "when_missing", CFG_ENUM, S(when_missing), NULL, 0, 0, missing_names, "fail or note", 0, NULL, 0, 0 },
	{ "prefer", CFG_IGNORE, 0, NULL, 0, 0, NULL, "sources tried first", 0, NULL, 0, 0 },
	{ "columns", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "column settings", CFG_ALWAYS, &columns_hook, 0, 0 },
	{ "kind", CFG_ENUM, S(kind), NULL, 0, 0, kind_names, "chart kind", 0, NULL, 0, 0 },
	{ "category", CFG_STRING, S(category), NULL, 0, 0, NULL, "the category column", 0, NULL, 0, 0 },
	{ "series", CFG_STRLIST, S(series), NULL, 0, 0, NULL, "the series columns", CFG_ONE_OR_LIST, NULL, 0, S(nseries) },
	{ "y_title", CFG_STRING, S(y_title), NULL, 0, 0, NULL, "the value axis' title", 0, NULL, 0, 0 },
	{ "pdf_max_rows", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "rows in the PDF", CFG_ALWAYS, &pdf_max_rows_hook, 0, 0 },
	END,
};
#undef S

#define R(f) offsetof(struct tpl_source, f)
static const struct cfg_key source_keys[] = {
	{ "requires", CFG_STRLIST, R(requires), NULL, 0, 0, NULL, "relations this query needs", CFG_ONE_OR_LIST, NULL, 0, R(nrequires) },
	{ "sql", CFG_IGNORE, 0, NULL, 0, 0, NULL, "the rows' SQL", 0, NULL, 0, 0 },
	{ "query", CFG_IGNORE, 0, NULL, 0, 0, NULL, "the name of one of queries", 0, NULL, 0, 0 },
	END,
};
#undef R

static const char *const param_type_names[] = { "text", "int", "bool", "date", "interval", NULL };
#define P(f) offsetof(struct tpl_param, f)
static const struct cfg_key param_keys[] = {
	{ "name", CFG_STRING, P(name), NULL, 0, 0, NULL, "the :name in the SQL", CFG_REQUIRED, NULL, 0, 0 },
	{ "type", CFG_ENUM, P(type), NULL, 0, 0, param_type_names, "the value's type", 0, NULL, 0, 0 },
	{ "default", CFG_STRING, P(def), NULL, 0, 0, NULL, "default value", 0, NULL, 0, 0 },
	{ "required", CFG_BOOL, P(required), NULL, 0, 0, NULL, "must be given", 0, NULL, 0, 0 },
	{ "help", CFG_STRING, P(help), NULL, 0, 0, NULL, "one line for --help", 0, NULL, 0, 0 },
	{ "choices", CFG_STRLIST, P(choices), NULL, 0, 0, NULL, "the allowed values", CFG_ONE_OR_LIST, NULL, 0, CFG_NO_COUNT },
	END,
};
#undef P

#define D(f) offsetof(struct tpl_delivery, f)
static const struct cfg_key delivery_keys[] = {
	{ "recipients", CFG_STRLIST, D(recipients), NULL, 0, 0, NULL, "e-mail addresses", CFG_ONE_OR_LIST, NULL, 0, D(nrecipients) },
	{ "mail", CFG_BOOL, D(mail), NULL, 0, 0, NULL, "send mail", 0, NULL, 0, 0 },
	{ "webhook", CFG_BOOL, D(webhook), NULL, 0, 0, NULL, "post a report-ready event", 0, NULL, 0, 0 },
	{ "subject", CFG_STRING, D(subject), NULL, 0, 0, NULL, "the mail's subject", 0, NULL, 0, 0 },
	{ "formats", CFG_STRLIST, D(formats), NULL, 0, 0, NULL, "the files delivered", CFG_ONE_OR_LIST, NULL, 0, D(nformats) },
	END,
};
#undef D

/* ------------------------------------------------------------- sections */

static int load_section(struct parser *p, yaml_node_t *m, size_t idx, struct tpl_section *s)
{
	static const struct cfg_key *const tables[] = { section_keys, NULL };
	struct cfg_doc *d = p->d;
	char what[64];
	snprintf(what, sizeof what, "sections[%zu]", idx);
	if (cfg_check_keys(d, m, what, tables) < 0)
		return -1;
	s->where = xasprintf("%s:%zu", cfg_doc_name(d), cfg_line(m));
	yaml_node_t *ty = cfg_get(d, m, "type");
	if (!ty || cfg_is_null(ty))
		return cfg_fail(d, m, "%s: type (kpis, chart or table) is required", what);
	if (cfg_bind_values(d, section_keys, s, m, what) < 0)
		return -1;
	if (s->type != TPL_S_KPIS && !s->title)
		return cfg_fail(d, m, "%s: \"title\" is required", what);
	if (!s->title)
		s->title = xstrdup("");
	if (s->nseries > TPL_CHART_MAX_SERIES)
		return cfg_fail(d, cfg_get(d, m, "series"), "%s.series: at most %d series", what, TPL_CHART_MAX_SERIES);
	if (s->id) {
		if (!valid_name(s->id) && !strchr(s->id, '-'))
			return cfg_fail(d, m, "%s.id \"%s\" must be lower-case letters, digits, - and _", what, s->id);
		for (const char *c = s->id; *c; c++)
			if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-'))
				return cfg_fail(d, m, "%s.id \"%s\" must be lower-case letters, digits, - and _", what, s->id);
	} else {
		char sl[64];
		slug(*s->title ? s->title : stype_names[s->type], sl, sizeof sl);
		s->id = xstrdup(sl);
	}
	if (s->type != TPL_S_CHART) {
		const char *chart_only[] = { "kind", "category", "series", "y_title" };
		for (size_t i = 0; i < 4; i++)
			if (cfg_get(d, m, chart_only[i]))
				return cfg_fail(d, cfg_get(d, m, chart_only[i]), "%s: %s is for charts only", what, chart_only[i]);
	}

	/* sources: prefer[] first, then the section's own sql/query */
	yaml_node_t *pref = cfg_get(d, m, "prefer");
	size_t np = 0;
	if (pref) {
		if (!cfg_is_seq(pref))
			return cfg_fail(d, pref, "%s.prefer must be a list of {requires, sql|query}", what);
		np = cfg_seq_len(pref);
	}
	s->sources = xcalloc(np + 1, sizeof *s->sources);
	for (size_t i = 0; i < np; i++) {
		static const struct cfg_key *const ptables[] = { source_keys, NULL };
		yaml_node_t *pm = cfg_seq_item(d, pref, i);
		char w[96];
		snprintf(w, sizeof w, "%s.prefer[%zu]", what, i);
		struct tpl_source *src = &s->sources[i];
		s->nsources = i + 1;
		if (cfg_check_keys(d, pm, w, ptables) < 0 || cfg_bind_values(d, source_keys, src, pm, w) < 0)
			return -1;
		if (!src->nrequires)
			return cfg_fail(d, pm, "%s: requires is required (the relations this query needs)", w);
		if (load_source_sql(p, pm, w, src) < 0)
			return -1;
	}
	struct tpl_source *main_src = &s->sources[np];
	s->nsources = np + 1;
	if (cfg_bind_values(d, source_keys, main_src, m, what) < 0)
		return -1;
	return load_source_sql(p, m, what, main_src);
}

static int sections_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *where)
{
	(void)k;
	(void)where;
	struct parser p = { d, obj };
	struct tpl *t = obj;
	yaml_node_t *root = cfg_doc_root(d), *secs = v;
	if (!cfg_is_seq(secs) || !cfg_seq_len(secs))
		return cfg_fail(d, secs ? secs : root, "sections must be a non-empty list");
	size_t cnt = cfg_seq_len(secs);
	t->sections = xcalloc(cnt, sizeof *t->sections);
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *m = cfg_seq_item(d, secs, i);
		t->nsections = i + 1;
		if (load_section(&p, m, i, &t->sections[i]) < 0)
			return -1;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(t->sections[j].id, t->sections[i].id))
				continue;
			if (cfg_get(d, m, "id"))
				return cfg_fail(d, m, "sections[%zu]: id \"%s\" is used twice", i, t->sections[i].id);
			char *nid = xasprintf("%s-%zu", t->sections[i].id, i + 1);
			free(t->sections[i].id);
			t->sections[i].id = nid;
		}
	}
	return 0;
}

/* ------------------------------------------------------------- the rest of the root */

static int load_param(struct cfg_doc *d, yaml_node_t *m, size_t idx, struct tpl_param *pa)
{
	static const struct cfg_key *const tables[] = { param_keys, NULL };
	char what[64];
	snprintf(what, sizeof what, "parameters[%zu]", idx);
	if (cfg_check_keys(d, m, what, tables) < 0 || cfg_bind_values(d, param_keys, pa, m, what) < 0)
		return -1;
	if (!valid_name(pa->name))
		return cfg_fail(d, m, "%s.name \"%s\" must be lower-case letters, digits and _", what, pa->name);
	if (!strcmp(pa->name, TPL_BUILTIN_FROM) || !strcmp(pa->name, TPL_BUILTIN_TO) || !strcmp(pa->name, TPL_BUILTIN_TZ))
		return cfg_fail(d, m, "%s.name \"%s\" is built in (--from, --to, --tz)", what, pa->name);
	if (pa->required && pa->def)
		return cfg_fail(d, m, "%s: a required parameter has no default", what);
	if (!pa->help)
		pa->help = xstrdup("");
	return 0;
}

static int params_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *params, const char *where)
{
	(void)k;
	(void)where;
	struct tpl *t = obj;
	if (!cfg_is_seq(params))
		return cfg_fail(d, params, "parameters must be a list of {name, type, default, required, help}");
	size_t cnt = cfg_seq_len(params);
	t->params = xcalloc(cnt ? cnt : 1, sizeof *t->params);
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *m = cfg_seq_item(d, params, i);
		t->nparams = i + 1;
		if (load_param(d, m, i, &t->params[i]) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(t->params[j].name, t->params[i].name))
				return cfg_fail(d, m, "parameter \"%s\" defined twice", t->params[i].name);
	}
	return 0;
}

/* queries: names to SQL (checked here, rewritten where a section uses one);
 * an explicit null is no mapping either */
static int queries_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *where)
{
	(void)k;
	(void)obj;
	(void)where;
	yaml_node_t *queries = v;
	if (!queries)
		return 0;
	if (!cfg_is_map(queries))
		return cfg_fail(d, queries, "queries must map names to SQL");
	for (size_t i = 0; i < cfg_map_len(queries); i++) {
		yaml_node_t *kn = cfg_map_key(d, queries, i), *vn = cfg_map_value(d, queries, i);
		if (!valid_name(scalar_of(kn)))
			return cfg_fail(d, kn, "queries: \"%s\" is not a valid query name", scalar_of(kn) ? scalar_of(kn) : "");
		if (!scalar_of(vn))
			return cfg_fail(d, vn, "queries.%s must be SQL text", scalar_of(kn));
	}
	return 0;
}

/* formats: pdf, csv, xlsx (a list, or "pdf,csv"); absent: all three; an
 * explicit null: none, an error */
struct strlist {
	char **l;
	size_t n;
};
static const struct cfg_key formats_key = {
	"formats", CFG_STRLIST, offsetof(struct strlist, l), NULL, 0, 0, NULL, "", CFG_ONE_OR_LIST, NULL, 0,
	offsetof(struct strlist, n)
};

static int formats_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *where)
{
	(void)k;
	struct tpl *t = obj;
	yaml_node_t *fm = v;
	t->formats = TPL_FMT_PDF | TPL_FMT_CSV | TPL_FMT_XLSX;
	if (!fm)
		return 0;
	struct strlist sl = { NULL, 0 };
	int rc = cfg_is_null(fm) ? 0 : cfg_bind_value(d, &formats_key, &sl, fm, where);
	t->formats = 0;
	for (size_t i = 0; rc == 0 && i < sl.n; i++) {
		unsigned f;
		char why[128];
		if (tpl_parse_formats(sl.l[i], &f, why, sizeof why) < 0)
			rc = cfg_fail(d, fm, "formats: %s", why);
		t->formats |= f;
	}
	cfg_free((const struct cfg_key[]){ formats_key, END }, &sl);
	if (rc == 0 && !t->formats)
		rc = cfg_fail(d, fm, "formats: at least one of pdf, csv, xlsx");
	return rc;
}

static int delivery_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *m, const char *where)
{
	(void)k;
	(void)where;
	static const struct cfg_key *const tables[] = { delivery_keys, NULL };
	struct tpl *t = obj;
	struct tpl_delivery *dl = &t->delivery;
	t->has_delivery = 1;
	if (!cfg_is_map(m))
		return cfg_fail(d, m, "delivery must be a mapping (recipients, mail, webhook, subject, formats)");
	dl->mail = -1;
	yaml_node_t *wh = cfg_get(d, m, "webhook");
	if (scalar_of(wh) && (!strncmp(scalar_of(wh), "https://", 8) || !strncmp(scalar_of(wh), "http://", 7)))
		return cfg_fail(d, wh,
				"delivery.webhook is yes or no: the URL is report.delivery.webhook.url in the configuration "
				"(a queued event is retried there)");
	if (cfg_check_keys(d, m, "delivery", tables) < 0 || cfg_bind_values(d, delivery_keys, dl, m, "delivery") < 0)
		return -1;
	for (size_t i = 0; i < dl->nrecipients; i++)
		if (!strchr(dl->recipients[i], '@') || strpbrk(dl->recipients[i], "\r\n,"))
			return cfg_fail(d, cfg_get(d, m, "recipients"),
					"delivery.recipients: \"%s\" is not one e-mail address", dl->recipients[i]);
	if (dl->subject && strpbrk(dl->subject, "\r\n"))
		return cfg_fail(d, cfg_get(d, m, "subject"), "delivery.subject must be one line");
	if (dl->mail < 0)
		dl->mail = dl->nrecipients > 0;
	for (size_t i = 0; i < dl->nformats; i++) {
		unsigned f;
		char why[128];
		if (tpl_parse_formats(dl->formats[i], &f, why, sizeof why) < 0)
			return cfg_fail(d, cfg_get(d, m, "formats"), "delivery.formats: %s", why);
	}
	if (!dl->mail && !dl->webhook)
		return cfg_fail(d, m, "delivery: neither mail (recipients, mail: yes) nor webhook: yes");
	return 0;
}

static const struct cfg_hook params_hook = { params_bind, NULL, NULL, NULL };
static const struct cfg_hook queries_hook = { queries_bind, NULL, NULL, NULL };
static const struct cfg_hook formats_hook = { formats_bind, NULL, NULL, NULL };
static const struct cfg_hook delivery_hook = { delivery_bind, NULL, NULL, NULL };
static const struct cfg_hook sections_hook = { sections_bind, NULL, NULL, NULL };

/* The template's top level (docs/report.md).  Bound in this order:
 * parameters before the sections whose SQL names them. */
#define T(f) offsetof(struct tpl, f)
static const struct cfg_key template_keys[] = {
	{ "title", CFG_STRING, T(title), NULL, 0, 0, NULL, "the report's title", CFG_REQUIRED, NULL, 0, 0 },
	{ "description", CFG_STRING, T(description), NULL, 0, 0, NULL, "one paragraph", 0, NULL, 0, 0 },
	{ "period", CFG_STRING, T(period), NULL, 0, 0, NULL, "default period (yesterday)", 0, NULL, 0, 0 },
	{ "parameters", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "the template's own parameters", 0, &params_hook, 0, 0 },
	{ "queries", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "named SQL the sections share", CFG_ALWAYS, &queries_hook, 0, 0 },
	{ "formats", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "default formats", CFG_ALWAYS, &formats_hook, 0, 0 },
	{ "xlsx_constant_memory", CFG_BOOL, T(xlsx_constant_memory), NULL, 0, 0, NULL, "stream the XLSX rows", 0, NULL, 0, 0 },
	{ "delivery", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "who gets it", 0, &delivery_hook, 0, 0 },
	{ "sections", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "KPI tiles, charts and tables", CFG_ALWAYS, &sections_hook, 0, 0 },
	END,
};
#undef T

struct tpl *tpl_load(const char *path, const char *name, char *err, size_t errlen)
{
	struct cfg_doc *d = cfg_doc_load(path, NULL, 0, path, CFG_MSG_IN, NULL, err, errlen);
	if (!d)
		return NULL;
	struct tpl *t = xcalloc(1, sizeof *t);
	t->name = xstrdup(name);
	t->path = xstrdup(path);
	yaml_node_t *root = cfg_doc_root(d);
	int rc = root ? cfg_bind(d, template_keys, t, root, "the template") : cfg_fail(d, NULL, "empty template");
	if (rc == 0 && !t->description)
		t->description = xstrdup("");
	if (rc == 0)
		rc = cfg_doc_end(d);
	cfg_doc_free(d);
	if (rc < 0) {
		tpl_free(t);
		return NULL;
	}
	return t;
}

void tpl_free(struct tpl *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->path);
	free(t->title);
	free(t->description);
	free(t->period);
	for (size_t i = 0; i < t->nparams; i++) {
		struct tpl_param *pa = &t->params[i];
		free(pa->name);
		free(pa->def);
		free(pa->help);
		if (pa->choices) {
			for (size_t j = 0; pa->choices[j]; j++)
				free(pa->choices[j]);
			free(pa->choices);
		}
	}
	free(t->params);
	for (size_t i = 0; i < t->nsections; i++) {
		struct tpl_section *s = &t->sections[i];
		free(s->id);
		free(s->title);
		for (size_t j = 0; j < s->nsources; j++) {
			free_strlist(s->sources[j].requires, s->sources[j].nrequires);
			tpl_sql_release(&s->sources[j].sql);
		}
		free(s->sources);
		for (size_t j = 0; j < s->ncolumns; j++) {
			free(s->columns[j].name);
			free(s->columns[j].label);
		}
		free(s->columns);
		free(s->category);
		free_strlist(s->series, s->nseries);
		free(s->y_title);
		free(s->where);
	}
	free(t->sections);
	free_strlist(t->delivery.recipients, t->delivery.nrecipients);
	free(t->delivery.subject);
	free_strlist(t->delivery.formats, t->delivery.nformats);
	free(t);
}
