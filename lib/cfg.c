#include "cfg.h"
#include "strparse.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct cfg_doc {
	yaml_parser_t parser;
	yaml_document_t doc;
	FILE *file;
	char *name;
	enum cfg_msg_style style;
	char *err;
	size_t errlen;
};

int cfg_fail(struct cfg_doc *d, const yaml_node_t *node, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (node)
		snprintf(d->err, d->errlen, "%s:%zu:%zu: %s", d->name, node->start_mark.line + 1,
			 node->start_mark.column + 1, msg);
	else
		snprintf(d->err, d->errlen, "%s: %s", d->name, msg);
	return -1;
}

int cfg_fail_at(struct cfg_doc *d, size_t line, size_t col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(d->err, d->errlen, "%s:%zu:%zu: %s", d->name, line, col, msg);
	return -1;
}

/* ------------------------------------------------------------ documents */

struct cfg_doc *cfg_doc_load(const char *path, const char *yaml, size_t len, const char *name,
			     enum cfg_msg_style style, int *missing, char *err, size_t errlen)
{
	if (missing)
		*missing = 0;
	struct cfg_doc *d = xcalloc(1, sizeof *d);
	d->name = xstrdup(name);
	d->style = style;
	d->err = err;
	d->errlen = errlen;
	if (path) {
		d->file = fopen(path, "rb");
		if (!d->file) {
			if (missing)
				*missing = errno == ENOENT;
			snprintf(err, errlen, "cannot open %s \"%s\": %s", style == CFG_MSG_IN ? "template" : "config file",
				 path, strerror(errno));
			free(d->name);
			free(d);
			return NULL;
		}
	}
	if (!yaml_parser_initialize(&d->parser)) {
		snprintf(err, errlen, "%s: cannot initialise YAML parser", name);
		if (d->file)
			fclose(d->file);
		free(d->name);
		free(d);
		return NULL;
	}
	if (d->file)
		yaml_parser_set_input_file(&d->parser, d->file);
	else
		yaml_parser_set_input_string(&d->parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&d->parser, &d->doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", name, d->parser.problem_mark.line + 1,
			 d->parser.problem_mark.column + 1, d->parser.problem ? d->parser.problem : "YAML syntax error");
		yaml_parser_delete(&d->parser);
		if (d->file)
			fclose(d->file);
		free(d->name);
		free(d);
		return NULL;
	}
	return d;
}

int cfg_doc_end(struct cfg_doc *d)
{
	yaml_document_t extra;
	int rc = 0;
	if (yaml_parser_load(&d->parser, &extra)) {
		yaml_node_t *r2 = yaml_document_get_root_node(&extra);
		/* a trailing "---" gives an empty document: harmless (templates
		 * also take an explicit null) */
		int empty = r2 && r2->type == YAML_SCALAR_NODE &&
			    (d->style == CFG_MSG_IN ? cfg_is_null(r2) : !*(const char *)r2->data.scalar.value);
		if (r2 && !empty)
			rc = cfg_fail(d, NULL, "more than one YAML document");
		yaml_document_delete(&extra);
	}
	return rc;
}

void cfg_doc_free(struct cfg_doc *d)
{
	if (!d)
		return;
	yaml_document_delete(&d->doc);
	yaml_parser_delete(&d->parser);
	if (d->file)
		fclose(d->file);
	free(d->name);
	free(d);
}

yaml_node_t *cfg_doc_root(struct cfg_doc *d)
{
	return yaml_document_get_root_node(&d->doc);
}

const char *cfg_doc_name(const struct cfg_doc *d)
{
	return d->name;
}

const char *cfg_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int cfg_is_null(const yaml_node_t *n)
{
	const char *v = cfg_scalar(n);
	return v && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (!*v || !strcmp(v, "~") || !strcmp(v, "null"));
}

int cfg_is_map(const yaml_node_t *n)
{
	return n && n->type == YAML_MAPPING_NODE;
}

int cfg_is_seq(const yaml_node_t *n)
{
	return n && n->type == YAML_SEQUENCE_NODE;
}

yaml_node_t *cfg_get(struct cfg_doc *d, yaml_node_t *map, const char *key)
{
	if (!cfg_is_map(map))
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		/* a complex key ("? - x") is no scalar: never the key looked for */
		const char *k = cfg_scalar(yaml_document_get_node(&d->doc, p->key));
		if (k && !strcmp(k, key))
			return yaml_document_get_node(&d->doc, p->value);
	}
	return NULL;
}

size_t cfg_seq_len(const yaml_node_t *n)
{
	return cfg_is_seq(n) ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

size_t cfg_map_len(const yaml_node_t *n)
{
	return cfg_is_map(n) ? (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) : 0;
}

yaml_node_t *cfg_map_key(struct cfg_doc *d, yaml_node_t *map, size_t i)
{
	return i < cfg_map_len(map) ? yaml_document_get_node(&d->doc, map->data.mapping.pairs.start[i].key) : NULL;
}

yaml_node_t *cfg_map_value(struct cfg_doc *d, yaml_node_t *map, size_t i)
{
	return i < cfg_map_len(map) ? yaml_document_get_node(&d->doc, map->data.mapping.pairs.start[i].value) : NULL;
}

yaml_node_t *cfg_seq_item(struct cfg_doc *d, yaml_node_t *seq, size_t i)
{
	return i < cfg_seq_len(seq) ? yaml_document_get_node(&d->doc, seq->data.sequence.items.start[i]) : NULL;
}

size_t cfg_line(const yaml_node_t *n)
{
	return n ? n->start_mark.line + 1 : 0;
}

/* ------------------------------------------------------------ values */

static const struct cfg_key *items_of(const struct cfg_key *k)
{
	return k->more;
}

static const struct cfg_hook *hook_of(const struct cfg_key *k)
{
	return k->more;
}

static void *field(void *obj, const struct cfg_key *k)
{
	return (char *)obj + k->offset;
}

static size_t *count_field(void *obj, const struct cfg_key *k)
{
	return k->count_offset == CFG_NO_COUNT ? NULL : (size_t *)((char *)obj + k->count_offset);
}

static void choice_list(const char *const *choices, char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = '\0';
	for (int j = 0; choices[j] && n < outlen; j++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", j ? ", " : "", choices[j]);
}

/* Parse one scalar for key k and store it.  why gets the reason on failure.
 * A default (is_default) may be a sentinel outside the key's range. */
static int set_value(const struct cfg_key *k, void *obj, const char *s, int is_default, char *why, size_t whylen)
{
	void *f = field(obj, k);
	uint64_t u;
	int64_t i;
	int b;
	switch (k->type) {
	case CFG_STRING:
		free(*(char **)f);
		*(char **)f = xstrdup(s);
		return 0;
	case CFG_BOOL:
		if (parse_bool(s, &b, why, whylen) < 0)
			return -1;
		*(int *)f = b;
		return 0;
	case CFG_INT:
		if (parse_int_range(s, is_default ? INT64_MIN : k->min, is_default ? INT64_MAX : k->max, &i, why,
				    whylen) < 0)
			return -1;
		*(int64_t *)f = i;
		return 0;
	case CFG_SIZE:
		if (parse_size(s, (uint64_t)k->min, (uint64_t)k->max, &u, why, whylen) < 0)
			return -1;
		*(uint64_t *)f = u;
		return 0;
	case CFG_DURATION:
		if (parse_duration_ms(s, (uint64_t)k->min, (uint64_t)k->max, &u, why, whylen) < 0)
			return -1;
		*(uint64_t *)f = u;
		return 0;
	case CFG_ENUM:
		for (int j = 0; k->choices[j]; j++) {
			if (!strcmp(s, k->choices[j])) {
				*(int *)f = j;
				return 0;
			}
		}
		{
			char list[256];
			choice_list(k->choices, list, sizeof list);
			snprintf(why, whylen, "must be one of %s", list);
		}
		return -1;
	case CFG_NUMBER: {
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		if (errno || end == s || *end || !isfinite(v) || (!is_default && v <= 0)) {
			snprintf(why, whylen, "must be a number above 0");
			return -1;
		}
		*(double *)f = v;
		return 0;
	}
	case CFG_LIST:
	case CFG_IGNORE:
	case CFG_STRLIST:
	case CFG_CUSTOM:
		break;
	}
	snprintf(why, whylen, "is not a scalar setting");
	return -1;
}

static int is_scalar_type(enum cfg_type t)
{
	return t != CFG_LIST && t != CFG_IGNORE && t != CFG_STRLIST && t != CFG_CUSTOM;
}

int cfg_defaults(const struct cfg_key *keys, void *obj, char *err, size_t errlen)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (k->type == CFG_CUSTOM && hook_of(k)->init)
			hook_of(k)->init(k, obj);
		if (!is_scalar_type(k->type))
			continue;
		char why[256];
		const char *def = k->def ? k->def : (k->type == CFG_STRING ? "" : NULL);
		if (!def)
			continue;
		if (set_value(k, obj, def, 1, why, sizeof why) < 0) {
			snprintf(err, errlen, "internal error: default of %s %s", k->path, why);
			return -1;
		}
	}
	return 0;
}

static void free_strlist(const struct cfg_key *k, void *obj)
{
	char **l = *(char ***)field(obj, k);
	size_t *count = count_field(obj, k);
	for (size_t i = 0; l && (count ? i < *count : l[i] != NULL); i++)
		free(l[i]);
	free(l);
	*(char ***)field(obj, k) = NULL;
	if (count)
		*count = 0;
}

static void disp_join(char *out, size_t outlen, const char *where, const char *name)
{
	snprintf(out, outlen, "%.255s%s%s", where, *where ? "." : "", name);
}

/* the value of a scalar key could not be used: the message in the style */
static int bad_value(struct cfg_doc *d, const struct cfg_key *k, yaml_node_t *v, const char *disp, const char *why)
{
	if (d->style == CFG_MSG_IN) {
		char list[256];
		switch (k->type) {
		case CFG_BOOL:
			return cfg_fail(d, v, "%s must be yes or no", disp);
		case CFG_ENUM:
			choice_list(k->choices, list, sizeof list);
			return cfg_fail(d, v, "%s must be one of %s", disp, list);
		case CFG_INT:
			return cfg_fail(d, v, "%s must be %" PRId64 "..%" PRId64, disp, k->min, k->max);
		default:
			break;
		}
	}
	if (!cfg_scalar(v))
		return cfg_fail(d, v, "%s must be a single value", disp);
	if (k->flags & CFG_SECRET)
		return cfg_fail(d, v, "%s has an invalid value", disp);
	return cfg_fail(d, v, "%s: \"%s\" %s", disp, cfg_scalar(v), why);
}

static int bind_level(struct cfg_doc *d, const struct cfg_key *keys, void *obj, yaml_node_t *map, const char *prefix,
		      const char *where);

static int bind_list(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *seq, const char *path)
{
	if (!cfg_is_seq(seq))
		return cfg_fail(d, seq, "%s must be a list", path);
	size_t n = cfg_seq_len(seq);
	void **slot = field(obj, k);
	size_t *count = count_field(obj, k);
	for (size_t i = 0; *slot && i < *count; i++)
		cfg_free(items_of(k), (char *)*slot + i * k->item_size);
	free(*slot);
	char *items = xcalloc(n ? n : 1, k->item_size);
	*slot = items;
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = cfg_seq_item(d, seq, i);
		void *it = items + i * k->item_size;
		if (cfg_defaults(items_of(k), it, d->err, d->errlen) < 0)
			return -1;
		*count = i + 1;
		char disp[320];
		snprintf(disp, sizeof disp, "%.255s[%zu]", path, i);
		if (!cfg_is_map(item))
			return cfg_fail(d, item, "%s must be a mapping", disp);
		if (cfg_bind(d, items_of(k), it, item, disp) < 0)
			return -1;
	}
	return 0;
}

static int bind_strlist(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *disp)
{
	size_t n = cfg_is_seq(v) ? cfg_seq_len(v) : 1;
	if (!cfg_is_seq(v) && !(cfg_scalar(v) && (k->flags & CFG_ONE_OR_LIST)))
		return cfg_fail(d, v, "%s must be a list", disp);
	free_strlist(k, obj);
	char **l = xcalloc(n + 1, sizeof *l);
	size_t *count = count_field(obj, k);
	*(char ***)field(obj, k) = l;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = cfg_is_seq(v) ? cfg_seq_item(d, v, i) : v;
		const char *x = cfg_scalar(it);
		if (!x || (!*x && (k->flags & CFG_NONEMPTY))) {
			if (d->style == CFG_MSG_IN)
				return cfg_fail(d, it, "%s[%zu] must be a single value", disp, i);
			return cfg_fail(d, it, "%s: every item must be a non-empty single value", disp);
		}
		l[i] = xstrdup(x);
		if (count)
			*count = i + 1;
	}
	return 0;
}

int cfg_bind_value(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *disp)
{
	switch (k->type) {
	case CFG_IGNORE:
		return 0;
	case CFG_LIST:
		return bind_list(d, k, obj, v, disp);
	case CFG_STRLIST:
		return bind_strlist(d, k, obj, v, disp);
	case CFG_CUSTOM:
		return hook_of(k)->bind(d, k, obj, v, disp);
	default:
		break;
	}
	char why[256];
	if (!cfg_scalar(v) || set_value(k, obj, cfg_scalar(v), 0, why, sizeof why) < 0)
		return bad_value(d, k, v, disp, cfg_scalar(v) ? why : "");
	return 0;
}

/* Is name (at prefix) a key of the table, or a section above keys? */
static int known_at(const struct cfg_key *keys, const char *prefix, const char *name)
{
	size_t pl = strlen(prefix), nl = strlen(name);
	for (const struct cfg_key *k = keys; k->path; k++) {
		const char *p = k->path;
		if (pl) {
			if (strncmp(p, prefix, pl) || p[pl] != '.')
				continue;
			p += pl + 1;
		}
		if (!strncmp(p, name, nl) && (p[nl] == '\0' || p[nl] == '.'))
			return 1;
	}
	return 0;
}

static int check_level(struct cfg_doc *d, yaml_node_t *map, const char *prefix, const char *where,
		       const struct cfg_key *const *tables)
{
	if (!cfg_is_map(map))
		return cfg_fail(d, map, "%s must be a mapping", *where ? where : "the document");
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(&d->doc, p->key);
		const char *name = cfg_scalar(kn);
		if (!name)
			return *where ? cfg_fail(d, kn, "%s: keys must be plain names", where)
				      : cfg_fail(d, kn, "keys must be plain names");
		int dup = 0, known = 0;
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && !dup; q++) {
			const char *qn = cfg_scalar(yaml_document_get_node(&d->doc, q->key));
			dup = qn && !strcmp(qn, name);
		}
		for (size_t t = 0; tables[t] && !known; t++)
			known = known_at(tables[t], prefix, name);
		if (d->style == CFG_MSG_IN) {
			if (!known) {
				char list[512];
				size_t n = 0;
				list[0] = '\0';
				for (size_t t = 0; tables[t]; t++)
					for (const struct cfg_key *k = tables[t]; k->path && n < sizeof list; k++)
						n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", k->path);
				return cfg_fail(d, kn, "unknown key \"%s\" in %s (known: %s)", name, where, list);
			}
			if (dup)
				return cfg_fail(d, kn, "duplicate key \"%s\" in %s", name, where);
			continue;
		}
		char disp[320];
		disp_join(disp, sizeof disp, where, name);
		if (dup)
			return cfg_fail(d, kn, "duplicate key \"%s\"", disp);
		if (!known)
			return cfg_fail(d, kn, "unknown key \"%s\"", disp);
	}
	return 0;
}

int cfg_check_keys(struct cfg_doc *d, yaml_node_t *map, const char *where, const struct cfg_key *const *tables)
{
	return check_level(d, map, "", where, tables);
}

static int required_missing(const struct cfg_key *k, void *obj)
{
	if (k->type == CFG_STRING)
		return !**(char **)field(obj, k);
	if (k->type == CFG_LIST)
		return *count_field(obj, k) == 0;
	if (k->type == CFG_STRLIST)
		return !*(char ***)field(obj, k) || !**(char ***)field(obj, k);
	return 0;
}

/* The value pass of one level: keys at prefix, in table order. */
static int values_level(struct cfg_doc *d, const struct cfg_key *keys, void *obj, yaml_node_t *map,
			const char *prefix, const char *where)
{
	size_t pl = strlen(prefix);
	for (const struct cfg_key *k = keys; k->path; k++) {
		const char *rest = k->path;
		if (pl) {
			if (strncmp(rest, prefix, pl) || rest[pl] != '.')
				continue;
			rest += pl + 1;
		}
		const char *dot = strchr(rest, '.');
		if (dot) {
			/* a section: bind it once, at its first key */
			size_t sl = (size_t)(dot - rest);
			int seen = 0;
			for (const struct cfg_key *e = keys; e < k && !seen; e++)
				seen = !strncmp(e->path, k->path, pl + (pl ? 1 : 0) + sl + 1);
			if (seen)
				continue;
			char sec[256], sub[256], disp[320];
			snprintf(sec, sizeof sec, "%.*s", (int)sl, rest);
			snprintf(sub, sizeof sub, "%.*s", (int)(rest - k->path) + (int)sl, k->path);
			disp_join(disp, sizeof disp, where, sec);
			yaml_node_t *v = cfg_get(d, map, sec);
			if (v && bind_level(d, keys, obj, v, sub, disp) < 0)
				return -1;
			continue;
		}
		char disp[320];
		disp_join(disp, sizeof disp, where, rest);
		yaml_node_t *v = cfg_get(d, map, rest);
		if (k->type == CFG_CUSTOM && (k->flags & CFG_ALWAYS)) {
			if (hook_of(k)->bind(d, k, obj, v, disp) < 0)
				return -1;
			continue;
		}
		/* a YAML null (~ or empty) means "use the default"; a list of
		 * mappings must be a list */
		if (v && cfg_is_null(v) && k->type != CFG_LIST)
			v = NULL;
		if (v) {
			if (cfg_bind_value(d, k, obj, v, disp) < 0)
				return -1;
		} else if ((k->flags & CFG_REQUIRED) && d->style == CFG_MSG_IN) {
			return cfg_fail(d, map, "%s: \"%s\" is required", where, rest);
		}
	}
	/* list items and other inner mappings: a required value must be there
	 * (a configuration's root leaves it to cfg_load, after the environment) */
	if (d->style == CFG_MSG_PATH && *where && !pl) {
		for (const struct cfg_key *k = keys; k->path; k++) {
			if ((k->flags & CFG_REQUIRED) && required_missing(k, obj))
				return cfg_fail(d, map, "%s.%s is required", where, k->path);
		}
	}
	return 0;
}

static int bind_level(struct cfg_doc *d, const struct cfg_key *keys, void *obj, yaml_node_t *map, const char *prefix,
		      const char *where)
{
	const struct cfg_key *tables[2] = { keys, NULL };
	if (check_level(d, map, prefix, where, tables) < 0)
		return -1;
	return values_level(d, keys, obj, map, prefix, where);
}

int cfg_bind_values(struct cfg_doc *d, const struct cfg_key *keys, void *obj, yaml_node_t *map, const char *where)
{
	return values_level(d, keys, obj, map, "", where);
}

int cfg_bind(struct cfg_doc *d, const struct cfg_key *keys, void *obj, yaml_node_t *map, const char *where)
{
	return bind_level(d, keys, obj, map, "", where);
}

/* ------------------------------------------------------------ configuration files */

static int apply_env(const struct cfg_key *keys, void *obj, char *err, size_t errlen)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (!is_scalar_type(k->type))
			continue;
		char env[256] = "CDRFLOW_";
		size_t n = strlen(env);
		for (const char *c = k->path; *c && n < sizeof env - 1; c++)
			env[n++] = *c == '.' ? '_' : (char)toupper((unsigned char)*c);
		env[n] = '\0';
		const char *v = getenv(env);
		if (!v)
			continue;
		char why[256];
		if (set_value(k, obj, v, 0, why, sizeof why) < 0) {
			if (k->flags & CFG_SECRET)
				snprintf(err, errlen, "environment %s has an invalid value", env);
			else
				snprintf(err, errlen, "environment %s: \"%s\" %s", env, v, why);
			return -1;
		}
	}
	return 0;
}

static int check_required(const struct cfg_key *keys, void *obj, const char *name, char *err, size_t errlen)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		if ((k->flags & CFG_REQUIRED) && required_missing(k, obj)) {
			snprintf(err, errlen, "%s: missing required setting %s", name, k->path);
			return -1;
		}
	}
	return 0;
}

/* Parse and bind one configuration (path, or the string yaml). */
static int load_doc(const struct cfg_key *keys, void *obj, const char *path, const char *name, const char *yaml,
		    size_t len, int *missing, char *err, size_t errlen)
{
	struct cfg_doc *d = cfg_doc_load(path, yaml, len, name, CFG_MSG_PATH, missing, err, errlen);
	if (!d)
		return -1;
	int rc = 0;
	yaml_node_t *root = cfg_doc_root(d);
	if (root && !(root->type == YAML_SCALAR_NODE && !*(const char *)root->data.scalar.value))
		rc = cfg_bind(d, keys, obj, root, "");
	if (rc == 0)
		rc = cfg_doc_end(d); /* a second document in one file is almost always a mistake */
	cfg_doc_free(d);
	return rc;
}

int cfg_load_string(const struct cfg_key *keys, void *obj, const char *name, const char *yaml, size_t len,
		    char *err, size_t errlen)
{
	if (cfg_defaults(keys, obj, err, errlen) < 0)
		return -1;
	if (load_doc(keys, obj, NULL, name, yaml, len, NULL, err, errlen) < 0)
		return -1;
	return check_required(keys, obj, name, err, errlen);
}

int cfg_load(const struct cfg_key *keys, void *obj, const char *path, int *missing, char *err, size_t errlen)
{
	if (missing)
		*missing = 0;
	if (cfg_defaults(keys, obj, err, errlen) < 0)
		return -1;
	if (path && load_doc(keys, obj, path, path, NULL, 0, missing, err, errlen) < 0)
		return -1;
	if (apply_env(keys, obj, err, errlen) < 0)
		return -1;
	return check_required(keys, obj, path ? path : "configuration", err, errlen);
}

void cfg_free(const struct cfg_key *keys, void *obj)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		void *f = field(obj, k);
		if (k->type == CFG_STRING) {
			free(*(char **)f);
			*(char **)f = NULL;
		} else if (k->type == CFG_STRLIST) {
			free_strlist(k, obj);
		} else if (k->type == CFG_CUSTOM) {
			if (hook_of(k)->release)
				hook_of(k)->release(k, obj);
		} else if (k->type == CFG_LIST) {
			char *items = *(void **)f;
			size_t *count = (size_t *)((char *)obj + k->count_offset);
			for (size_t i = 0; i < *count; i++)
				cfg_free(items_of(k), items + i * k->item_size);
			free(items);
			*(void **)f = NULL;
			*count = 0;
		}
	}
}

static void dump_value(const struct cfg_key *k, const void *obj, FILE *out)
{
	const void *f = (const char *)obj + k->offset;
	if (k->flags & CFG_SECRET) {
		fputs(k->type == CFG_STRING && !**(char *const *)f ? "\"\"" : "\"********\"", out);
		return;
	}
	switch (k->type) {
	case CFG_STRING: {
		fputc('"', out);
		for (const char *c = *(char *const *)f; *c; c++) {
			if (*c == '"' || *c == '\\')
				fputc('\\', out);
			fputc(*c, out);
		}
		fputc('"', out);
		break;
	}
	case CFG_BOOL: fputs(*(const int *)f ? "true" : "false", out); break;
	case CFG_INT: fprintf(out, "%" PRId64, *(const int64_t *)f); break;
	case CFG_SIZE: fprintf(out, "%" PRIu64, *(const uint64_t *)f); break;
	case CFG_DURATION: fprintf(out, "%" PRIu64 "ms", *(const uint64_t *)f); break;
	case CFG_ENUM: fputs(k->choices[*(const int *)f], out); break;
	case CFG_NUMBER: fprintf(out, "%g", *(const double *)f); break;
	case CFG_STRLIST: {
		char *const *l = *(char **const *)f;
		fputc('[', out);
		for (size_t i = 0; l && l[i]; i++) {
			fputs(i ? ", \"" : "\"", out);
			for (const char *c = l[i]; *c; c++) {
				if (*c == '"' || *c == '\\')
					fputc('\\', out);
				fputc(*c, out);
			}
			fputc('"', out);
		}
		fputc(']', out);
		break;
	}
	case CFG_LIST:
	case CFG_IGNORE:
	case CFG_CUSTOM: break;
	}
}

/* Print keys under prefix at the given indent, as nested YAML. */
static void dump_level(const struct cfg_key *keys, const void *obj, const char *prefix, int indent, FILE *out)
{
	size_t plen = strlen(prefix);
	const char *done[64];
	size_t ndone = 0;
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (k->type == CFG_IGNORE || k->type == CFG_CUSTOM || strncmp(k->path, prefix, plen))
			continue;
		const char *rest = k->path + plen;
		const char *dot = strchr(rest, '.');
		if (!dot) {
			if (k->type == CFG_LIST) {
				const char *items = *(void *const *)((const char *)obj + k->offset);
				size_t count = *(const size_t *)((const char *)obj + k->count_offset);
				fprintf(out, "%*s%s:%s\n", indent, "", rest, count ? "" : " []");
				for (size_t i = 0; i < count; i++) {
					const void *it = items + i * k->item_size;
					int first = 1;
					for (const struct cfg_key *ik = items_of(k); ik->path; ik++) {
						fprintf(out, "%*s%s%s: ", indent + 2, "", first ? "- " : "  ", ik->path);
						dump_value(ik, it, out);
						fputc('\n', out);
						first = 0;
					}
				}
			} else {
				fprintf(out, "%*s%s: ", indent, "", rest);
				dump_value(k, obj, out);
				fputc('\n', out);
			}
			continue;
		}
		size_t seclen = (size_t)(dot - rest);
		int seen = 0;
		for (size_t i = 0; i < ndone; i++)
			if (!strncmp(done[i], rest, seclen) && done[i][seclen] == '.')
				seen = 1;
		if (seen || ndone == 64)
			continue;
		done[ndone++] = rest;
		char sub[256];
		snprintf(sub, sizeof sub, "%.*s", (int)(plen + seclen + 1), k->path);
		fprintf(out, "%*s%.*s:\n", indent, "", (int)seclen, rest);
		dump_level(keys, obj, sub, indent + 2, out);
	}
}

void cfg_dump(const struct cfg_key *keys, const void *obj, FILE *out)
{
	dump_level(keys, obj, "", 0, out);
}

static const char *type_name(enum cfg_type t)
{
	static const char *const names[] = { "string", "bool",	  "integer",	  "size",   "duration",
					     "enum",   "list",	  "section",	  "string list", "number", "custom" };
	return names[t];
}

static void describe(const struct cfg_key *keys, const char *prefix, FILE *out)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (k->type == CFG_IGNORE || k->type == CFG_CUSTOM)
			continue;
		fprintf(out, "  %s%s%s (%s", prefix, *prefix ? "." : "", k->path, type_name(k->type));
		if (k->def && *k->def)
			fprintf(out, ", default %s", k->def);
		if (k->flags & CFG_REQUIRED)
			fputs(", required", out);
		fprintf(out, ")\n      %s\n", k->help);
		if (k->type == CFG_LIST) {
			char sub[256];
			snprintf(sub, sizeof sub, "%s%s%s[]", prefix, *prefix ? "." : "", k->path);
			describe(items_of(k), sub, out);
		}
	}
}

void cfg_describe(const struct cfg_key *keys, FILE *out)
{
	describe(keys, "", out);
}
