#include "tpl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "strparse.h"
#include "xalloc.h"

struct parser {
	yaml_document_t *doc;
	const char *file;
	char *err;
	size_t errlen;
	struct tpl *t;
};

static int fail_at(struct parser *p, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(struct parser *p, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n)
		snprintf(p->err, p->errlen, "%s:%zu:%zu: %s", p->file, n->start_mark.line + 1, n->start_mark.column + 1,
			 msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->file, msg);
	return -1;
}

static yaml_node_t *node_at(struct parser *p, int idx)
{
	return yaml_document_get_node(p->doc, idx);
}

static const char *scalar_of(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int is_null_scalar(const yaml_node_t *n)
{
	const char *v = scalar_of(n);
	return v && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (!*v || !strcmp(v, "~") || !strcmp(v, "null"));
}

/* Check that map is a mapping whose keys are all in allowed, none twice. */
static int check_keys(struct parser *p, yaml_node_t *map, const char *const *allowed, const char *what)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return fail_at(p, map, "%s must be a mapping", what);
	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top; a++) {
		yaml_node_t *k = node_at(p, a->key);
		const char *name = scalar_of(k);
		if (!name)
			return fail_at(p, k, "%s: keys must be plain names", what);
		int ok = 0;
		for (size_t i = 0; allowed[i]; i++)
			if (!strcmp(allowed[i], name))
				ok = 1;
		if (!ok) {
			char list[256];
			size_t n = 0;
			list[0] = '\0';
			for (size_t i = 0; allowed[i] && n < sizeof list; i++)
				n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", allowed[i]);
			return fail_at(p, k, "unknown key \"%s\" in %s (known: %s)", name, what, list);
		}
		for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++)
			if (scalar_of(node_at(p, b->key)) && !strcmp(scalar_of(node_at(p, b->key)), name))
				return fail_at(p, k, "duplicate key \"%s\" in %s", name, what);
	}
	return 0;
}

static yaml_node_t *get(struct parser *p, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top; a++) {
		/* a complex key ("? - x") is no scalar: not the key looked for
		 * (check_keys() refuses it; fuzz_tpl reached get() first) */
		const char *k = scalar_of(node_at(p, a->key));
		if (k && !strcmp(k, key))
			return node_at(p, a->value);
	}
	return NULL;
}

/* A scalar value (NULL when absent or a YAML null). */
static int get_str(struct parser *p, yaml_node_t *map, const char *key, const char *what, int required, char **out)
{
	yaml_node_t *v = get(p, map, key);
	*out = NULL;
	if (!v || is_null_scalar(v)) {
		if (required)
			return fail_at(p, map, "%s: \"%s\" is required", what, key);
		return 0;
	}
	if (v->type != YAML_SCALAR_NODE)
		return fail_at(p, v, "%s.%s must be a single value", what, key);
	*out = xstrdup(scalar_of(v));
	return 0;
}

static int get_bool(struct parser *p, yaml_node_t *map, const char *key, const char *what, int *out)
{
	yaml_node_t *v = get(p, map, key);
	if (!v || is_null_scalar(v))
		return 0;
	char why[128];
	if (v->type != YAML_SCALAR_NODE || parse_bool(scalar_of(v), out, why, sizeof why) < 0)
		return fail_at(p, v, "%s.%s must be yes or no", what, key);
	return 0;
}

/* A list of scalars; a single scalar is a list of one. */
static int get_strlist(struct parser *p, yaml_node_t *map, const char *key, const char *what, char ***out,
		       size_t *n)
{
	yaml_node_t *v = get(p, map, key);
	*out = NULL;
	*n = 0;
	if (!v || is_null_scalar(v))
		return 0;
	if (v->type == YAML_SCALAR_NODE) {
		*out = xcalloc(2, sizeof **out);
		(*out)[0] = xstrdup(scalar_of(v));
		*n = 1;
		return 0;
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return fail_at(p, v, "%s.%s must be a list", what, key);
	size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	*out = xcalloc(cnt + 1, sizeof **out);
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *it = node_at(p, v->data.sequence.items.start[i]);
		if (!scalar_of(it)) {
			/* free what was built: a caller with a local list would
			 * leak it (fuzz_tpl finding) */
			for (size_t j = 0; j < i; j++)
				free((*out)[j]);
			free(*out);
			*out = NULL;
			*n = 0;
			return fail_at(p, it, "%s.%s[%zu] must be a single value", what, key, i);
		}
		(*out)[i] = xstrdup(scalar_of(it));
		*n = i + 1;
	}
	return 0;
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
	while (i < n) {
		unsigned char c = (unsigned char)sql[i];
		size_t start = i;
		if (c == '-' && sql[i + 1] == '-') {
			while (i < n && sql[i] != '\n')
				i++;
		} else if (c == '/' && sql[i + 1] == '*') {
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
			buf_printf(&b, "$%zu", k + 1);
			i = j;
			continue;
		} else {
			i++;
		}
		buf_append(&b, sql + start, i - start);
	}
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
static const enum rchart_kind kind_values[] = { RCHART_BAR, RCHART_LINE, RCHART_STACKED, RCHART_DONUT };
static const char *const stype_names[] = { "kpis", "chart", "table", NULL };

static int choose(struct parser *p, yaml_node_t *map, const char *key, const char *what, const char *const *names,
		  int *out)
{
	yaml_node_t *v = get(p, map, key);
	if (!v || is_null_scalar(v))
		return 0;
	const char *s = scalar_of(v);
	for (int i = 0; s && names[i]; i++)
		if (!strcmp(names[i], s)) {
			*out = i;
			return 0;
		}
	char list[160];
	size_t n = 0;
	list[0] = '\0';
	for (size_t i = 0; names[i] && n < sizeof list; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", names[i]);
	return fail_at(p, v, "%s.%s must be one of %s", what, key, list);
}

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
		snprintf(p->err, p->errlen, "%s:%zu:%zu: %s", p->file, line, col, why);
		return -1;
	}
	out->where = xasprintf("%s:%zu", p->file, v->start_mark.line + 1);
	return 0;
}

/* sql: or query: of map (exactly one) into src. */
static int load_source_sql(struct parser *p, yaml_node_t *map, yaml_node_t *queries, const char *what,
			   struct tpl_source *src)
{
	yaml_node_t *s = get(p, map, "sql"), *q = get(p, map, "query");
	if (s && q)
		return fail_at(p, q, "%s: give either sql or query, not both", what);
	if (!s && !q)
		return fail_at(p, map, "%s: sql (or query, the name of one of queries) is required", what);
	if (s) {
		if (!scalar_of(s) || is_null_scalar(s))
			return fail_at(p, s, "%s.sql must be SQL text", what);
		return load_sql(p, s, scalar_of(s), &src->sql);
	}
	if (!scalar_of(q))
		return fail_at(p, q, "%s.query must be a query name", what);
	yaml_node_t *qv = queries ? get(p, queries, scalar_of(q)) : NULL;
	if (!qv)
		return fail_at(p, q, "%s: no query named \"%s\" under queries", what, scalar_of(q));
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

static int load_columns(struct parser *p, yaml_node_t *seq, const char *what, struct tpl_section *s)
{
	static const char *const keys[] = { "name", "label", "type", "scale", NULL };
	if (seq->type != YAML_SEQUENCE_NODE)
		return fail_at(p, seq, "%s.columns must be a list of {name, label, type, scale}", what);
	size_t cnt = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	s->columns = xcalloc(cnt ? cnt : 1, sizeof *s->columns);
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *m = node_at(p, seq->data.sequence.items.start[i]);
		char w[128];
		snprintf(w, sizeof w, "%s.columns[%zu]", what, i);
		struct tpl_column *c = &s->columns[i];
		c->scale = -1;
		s->ncolumns = i + 1;
		if (check_keys(p, m, keys, w) < 0 || get_str(p, m, "name", w, 1, &c->name) < 0 ||
		    get_str(p, m, "label", w, 0, &c->label) < 0)
			return -1;
		int ty = -1;
		if (choose(p, m, "type", w, ctype_names, &ty) < 0)
			return -1;
		if (ty >= 0) {
			c->has_type = 1;
			c->type = ctype_values[ty];
		}
		yaml_node_t *sc = get(p, m, "scale");
		if (sc) {
			int64_t v;
			char why[128];
			if (!scalar_of(sc) || parse_int_range(scalar_of(sc), 0, RCOL_MAX_SCALE, &v, why, sizeof why) < 0)
				return fail_at(p, sc, "%s.scale must be 0..%d", w, RCOL_MAX_SCALE);
			c->scale = (int)v;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->columns[j].name, c->name))
				return fail_at(p, m, "%s: column \"%s\" listed twice", w, c->name);
	}
	return 0;
}

static int load_section(struct parser *p, yaml_node_t *m, yaml_node_t *queries, size_t idx, struct tpl_section *s)
{
	static const char *const keys[] = { "type",	    "id",     "title",	  "sql",      "query",	  "requires",
					     "when_missing", "prefer", "columns", "kind",     "category", "series",
					     "y_title",	    "pdf_max_rows", NULL };
	char what[64];
	snprintf(what, sizeof what, "sections[%zu]", idx);
	if (check_keys(p, m, keys, what) < 0)
		return -1;
	s->where = xasprintf("%s:%zu", p->file, m->start_mark.line + 1);
	int ty = -1;
	if (choose(p, m, "type", what, stype_names, &ty) < 0)
		return -1;
	if (ty < 0)
		return fail_at(p, m, "%s: type (kpis, chart or table) is required", what);
	s->type = (enum tpl_stype)ty;
	if (get_str(p, m, "title", what, s->type != TPL_S_KPIS, &s->title) < 0 || get_str(p, m, "id", what, 0, &s->id) < 0 ||
	    get_str(p, m, "y_title", what, 0, &s->y_title) < 0 || get_str(p, m, "category", what, 0, &s->category) < 0 ||
	    get_strlist(p, m, "series", what, &s->series, &s->nseries) < 0)
		return -1;
	if (!s->title)
		s->title = xstrdup("");
	if (s->nseries > TPL_CHART_MAX_SERIES)
		return fail_at(p, get(p, m, "series"), "%s.series: at most %d series", what, TPL_CHART_MAX_SERIES);
	if (s->id) {
		if (!valid_name(s->id) && !strchr(s->id, '-'))
			return fail_at(p, m, "%s.id \"%s\" must be lower-case letters, digits, - and _", what, s->id);
		for (const char *c = s->id; *c; c++)
			if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-'))
				return fail_at(p, m, "%s.id \"%s\" must be lower-case letters, digits, - and _", what, s->id);
	} else {
		char sl[64];
		slug(*s->title ? s->title : stype_names[s->type], sl, sizeof sl);
		s->id = xstrdup(sl);
	}
	int wm = 0;
	if (choose(p, m, "when_missing", what, (const char *const[]){ "fail", "note", NULL }, &wm) < 0)
		return -1;
	s->when_missing = (enum tpl_missing)wm;
	int kind = 0;
	if (choose(p, m, "kind", what, kind_names, &kind) < 0)
		return -1;
	s->kind = kind_values[kind];
	if (s->type != TPL_S_CHART) {
		const char *chart_only[] = { "kind", "category", "series", "y_title" };
		for (size_t i = 0; i < 4; i++)
			if (get(p, m, chart_only[i]))
				return fail_at(p, get(p, m, chart_only[i]), "%s: %s is for charts only", what, chart_only[i]);
	}
	yaml_node_t *mr = get(p, m, "pdf_max_rows");
	if (mr) {
		int64_t v;
		char why[128];
		if (s->type != TPL_S_TABLE)
			return fail_at(p, mr, "%s: pdf_max_rows is for tables only", what);
		if (!scalar_of(mr) || parse_int_range(scalar_of(mr), 1, 10000000, &v, why, sizeof why) < 0)
			return fail_at(p, mr, "%s.pdf_max_rows must be 1..10000000", what);
		s->pdf_max_rows = (size_t)v;
	}
	yaml_node_t *cols = get(p, m, "columns");
	if (cols && load_columns(p, cols, what, s) < 0)
		return -1;

	/* sources: prefer[] first, then the section's own sql/query */
	yaml_node_t *pref = get(p, m, "prefer");
	size_t np = 0;
	if (pref) {
		if (pref->type != YAML_SEQUENCE_NODE)
			return fail_at(p, pref, "%s.prefer must be a list of {requires, sql|query}", what);
		np = (size_t)(pref->data.sequence.items.top - pref->data.sequence.items.start);
	}
	s->sources = xcalloc(np + 1, sizeof *s->sources);
	for (size_t i = 0; i < np; i++) {
		static const char *const pkeys[] = { "requires", "sql", "query", NULL };
		yaml_node_t *pm = node_at(p, pref->data.sequence.items.start[i]);
		char w[96];
		snprintf(w, sizeof w, "%s.prefer[%zu]", what, i);
		struct tpl_source *src = &s->sources[i];
		s->nsources = i + 1;
		if (check_keys(p, pm, pkeys, w) < 0 || get_strlist(p, pm, "requires", w, &src->requires, &src->nrequires) < 0)
			return -1;
		if (!src->nrequires)
			return fail_at(p, pm, "%s: requires is required (the relations this query needs)", w);
		if (load_source_sql(p, pm, queries, w, src) < 0)
			return -1;
	}
	struct tpl_source *main_src = &s->sources[np];
	s->nsources = np + 1;
	if (get_strlist(p, m, "requires", what, &main_src->requires, &main_src->nrequires) < 0)
		return -1;
	return load_source_sql(p, m, queries, what, main_src);
}

static int load_param(struct parser *p, yaml_node_t *m, size_t idx, struct tpl_param *pa)
{
	static const char *const keys[] = { "name", "type", "default", "required", "help", "choices", NULL };
	char what[64];
	snprintf(what, sizeof what, "parameters[%zu]", idx);
	if (check_keys(p, m, keys, what) < 0 || get_str(p, m, "name", what, 1, &pa->name) < 0 ||
	    get_str(p, m, "default", what, 0, &pa->def) < 0 || get_str(p, m, "help", what, 0, &pa->help) < 0 ||
	    get_bool(p, m, "required", what, &pa->required) < 0)
		return -1;
	if (!valid_name(pa->name))
		return fail_at(p, m, "%s.name \"%s\" must be lower-case letters, digits and _", what, pa->name);
	if (!strcmp(pa->name, TPL_BUILTIN_FROM) || !strcmp(pa->name, TPL_BUILTIN_TO) || !strcmp(pa->name, TPL_BUILTIN_TZ))
		return fail_at(p, m, "%s.name \"%s\" is built in (--from, --to, --tz)", what, pa->name);
	int ty = 0;
	if (choose(p, m, "type", what, (const char *const[]){ "text", "int", "bool", "date", "interval", NULL }, &ty) < 0)
		return -1;
	pa->type = (enum tpl_ptype)ty;
	size_t nc;
	if (get_strlist(p, m, "choices", what, &pa->choices, &nc) < 0)
		return -1;
	if (pa->required && pa->def)
		return fail_at(p, m, "%s: a required parameter has no default", what);
	if (!pa->help)
		pa->help = xstrdup("");
	return 0;
}

static int load_delivery(struct parser *p, yaml_node_t *m, struct tpl_delivery *d)
{
	static const char *const keys[] = { "recipients", "mail", "webhook", "subject", "formats", NULL };
	if (m->type != YAML_MAPPING_NODE)
		return fail_at(p, m, "delivery must be a mapping (recipients, mail, webhook, subject, formats)");
	d->mail = -1;
	yaml_node_t *wh = get(p, m, "webhook");
	if (wh && wh->type == YAML_SCALAR_NODE && (!strncmp(scalar_of(wh), "https://", 8) || !strncmp(scalar_of(wh), "http://", 7)))
		return fail_at(p, wh,
			       "delivery.webhook is yes or no: the URL is report.delivery.webhook.url in the configuration "
			       "(a queued event is retried there)");
	if (check_keys(p, m, keys, "delivery") < 0 ||
	    get_strlist(p, m, "recipients", "delivery", &d->recipients, &d->nrecipients) < 0 ||
	    get_bool(p, m, "mail", "delivery", &d->mail) < 0 || get_bool(p, m, "webhook", "delivery", &d->webhook) < 0 ||
	    get_str(p, m, "subject", "delivery", 0, &d->subject) < 0 ||
	    get_strlist(p, m, "formats", "delivery", &d->formats, &d->nformats) < 0)
		return -1;
	for (size_t i = 0; i < d->nrecipients; i++)
		if (!strchr(d->recipients[i], '@') || strpbrk(d->recipients[i], "\r\n,"))
			return fail_at(p, get(p, m, "recipients"),
				       "delivery.recipients: \"%s\" is not one e-mail address", d->recipients[i]);
	if (d->subject && strpbrk(d->subject, "\r\n"))
		return fail_at(p, get(p, m, "subject"), "delivery.subject must be one line");
	if (d->mail < 0)
		d->mail = d->nrecipients > 0;
	for (size_t i = 0; i < d->nformats; i++) {
		unsigned f;
		char why[128];
		if (tpl_parse_formats(d->formats[i], &f, why, sizeof why) < 0)
			return fail_at(p, get(p, m, "formats"), "delivery.formats: %s", why);
	}
	if (!d->mail && !d->webhook)
		return fail_at(p, m, "delivery: neither mail (recipients, mail: yes) nor webhook: yes");
	return 0;
}

static int load_root(struct parser *p, yaml_node_t *root)
{
	static const char *const keys[] = { "title",	  "description", "period",   "parameters", "queries",
					    "formats", "xlsx_constant_memory", "delivery", "sections", NULL };
	struct tpl *t = p->t;
	if (check_keys(p, root, keys, "the template") < 0 || get_str(p, root, "title", "the template", 1, &t->title) < 0 ||
	    get_str(p, root, "description", "the template", 0, &t->description) < 0 ||
	    get_str(p, root, "period", "the template", 0, &t->period) < 0 ||
	    get_bool(p, root, "xlsx_constant_memory", "the template", &t->xlsx_constant_memory) < 0)
		return -1;
	if (!t->description)
		t->description = xstrdup("");

	yaml_node_t *params = get(p, root, "parameters");
	if (params && !is_null_scalar(params)) {
		if (params->type != YAML_SEQUENCE_NODE)
			return fail_at(p, params, "parameters must be a list of {name, type, default, required, help}");
		size_t cnt = (size_t)(params->data.sequence.items.top - params->data.sequence.items.start);
		t->params = xcalloc(cnt ? cnt : 1, sizeof *t->params);
		for (size_t i = 0; i < cnt; i++) {
			yaml_node_t *m = node_at(p, params->data.sequence.items.start[i]);
			t->nparams = i + 1;
			if (load_param(p, m, i, &t->params[i]) < 0)
				return -1;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(t->params[j].name, t->params[i].name))
					return fail_at(p, m, "parameter \"%s\" defined twice", t->params[i].name);
		}
	}

	yaml_node_t *queries = get(p, root, "queries");
	if (queries) {
		if (queries->type != YAML_MAPPING_NODE)
			return fail_at(p, queries, "queries must map names to SQL");
		for (yaml_node_pair_t *a = queries->data.mapping.pairs.start; a < queries->data.mapping.pairs.top; a++) {
			yaml_node_t *k = node_at(p, a->key), *v = node_at(p, a->value);
			if (!valid_name(scalar_of(k)))
				return fail_at(p, k, "queries: \"%s\" is not a valid query name", scalar_of(k) ? scalar_of(k) : "");
			if (!scalar_of(v))
				return fail_at(p, v, "queries.%s must be SQL text", scalar_of(k));
		}
	}

	t->formats = TPL_FMT_PDF | TPL_FMT_CSV | TPL_FMT_XLSX;
	yaml_node_t *fm = get(p, root, "formats");
	if (fm) {
		char **l;
		size_t n;
		if (get_strlist(p, root, "formats", "the template", &l, &n) < 0)
			return -1;
		t->formats = 0;
		for (size_t i = 0; i < n; i++) {
			unsigned f;
			char why[128];
			if (tpl_parse_formats(l[i], &f, why, sizeof why) < 0) {
				free_strlist(l, n);
				return fail_at(p, fm, "formats: %s", why);
			}
			t->formats |= f;
		}
		free_strlist(l, n);
		if (!t->formats)
			return fail_at(p, fm, "formats: at least one of pdf, csv, xlsx");
	}

	yaml_node_t *dl = get(p, root, "delivery");
	if (dl && !is_null_scalar(dl)) {
		t->has_delivery = 1;
		if (load_delivery(p, dl, &t->delivery) < 0)
			return -1;
	}

	yaml_node_t *secs = get(p, root, "sections");
	if (!secs || secs->type != YAML_SEQUENCE_NODE || secs->data.sequence.items.top == secs->data.sequence.items.start)
		return fail_at(p, secs ? secs : root, "sections must be a non-empty list");
	size_t cnt = (size_t)(secs->data.sequence.items.top - secs->data.sequence.items.start);
	t->sections = xcalloc(cnt, sizeof *t->sections);
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *m = node_at(p, secs->data.sequence.items.start[i]);
		t->nsections = i + 1;
		if (load_section(p, m, queries, i, &t->sections[i]) < 0)
			return -1;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(t->sections[j].id, t->sections[i].id))
				continue;
			if (get(p, m, "id"))
				return fail_at(p, m, "sections[%zu]: id \"%s\" is used twice", i, t->sections[i].id);
			char *nid = xasprintf("%s-%zu", t->sections[i].id, i + 1);
			free(t->sections[i].id);
			t->sections[i].id = nid;
		}
	}
	return 0;
}

struct tpl *tpl_load(const char *path, const char *name, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open template \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	yaml_parser_t yp;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&yp)) {
		fclose(f);
		snprintf(err, errlen, "%s: cannot initialise the YAML parser", path);
		return NULL;
	}
	yaml_parser_set_input_file(&yp, f);
	if (!yaml_parser_load(&yp, &doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", path, yp.problem_mark.line + 1, yp.problem_mark.column + 1,
			 yp.problem ? yp.problem : "YAML syntax error");
		yaml_parser_delete(&yp);
		fclose(f);
		return NULL;
	}
	struct tpl *t = xcalloc(1, sizeof *t);
	t->name = xstrdup(name);
	t->path = xstrdup(path);
	struct parser p = { &doc, path, err, errlen, t };
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	int rc = root ? load_root(&p, root) : fail_at(&p, NULL, "empty template");
	yaml_document_delete(&doc);
	if (rc == 0) {
		yaml_document_t extra;
		if (yaml_parser_load(&yp, &extra)) {
			yaml_node_t *r2 = yaml_document_get_root_node(&extra);
			if (r2 && !is_null_scalar(r2))
				rc = fail_at(&p, NULL, "more than one YAML document");
			yaml_document_delete(&extra);
		}
	}
	yaml_parser_delete(&yp);
	fclose(f);
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
