#include "cfg.h"
#include "strparse.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct loader {
	yaml_document_t *doc;
	const char *name;
	char *err;
	size_t errlen;
};

static int fail_at(struct loader *l, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail_at(struct loader *l, const yaml_node_t *node, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (node)
		snprintf(l->err, l->errlen, "%s:%zu:%zu: %s", l->name, node->start_mark.line + 1,
			 node->start_mark.column + 1, msg);
	else
		snprintf(l->err, l->errlen, "%s: %s", l->name, msg);
	return -1;
}

static void *field(void *obj, const struct cfg_key *k)
{
	return (char *)obj + k->offset;
}

/* Parse one scalar for key k and store it.  why gets the reason on failure. */
static int set_value(const struct cfg_key *k, void *obj, const char *s, char *why, size_t whylen)
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
		if (parse_int_range(s, k->min, k->max, &i, why, whylen) < 0)
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
			size_t n = (size_t)snprintf(why, whylen, "must be one of");
			for (int j = 0; k->choices[j] && n < whylen; j++)
				n += (size_t)snprintf(why + n, whylen - n, "%s %s", j ? "," : "", k->choices[j]);
		}
		return -1;
	case CFG_LIST:
	case CFG_IGNORE:
		break;
	}
	snprintf(why, whylen, "is not a scalar setting");
	return -1;
}

int cfg_defaults(const struct cfg_key *keys, void *obj, char *err, size_t errlen)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (k->type == CFG_LIST || k->type == CFG_IGNORE)
			continue;
		char why[256];
		const char *def = k->def ? k->def : (k->type == CFG_STRING ? "" : NULL);
		if (!def)
			continue;
		if (set_value(k, obj, def, why, sizeof why) < 0) {
			snprintf(err, errlen, "internal error: default of %s %s", k->path, why);
			return -1;
		}
	}
	return 0;
}

static const struct cfg_key *find_key(const struct cfg_key *keys, const char *path)
{
	for (const struct cfg_key *k = keys; k->path; k++)
		if (!strcmp(k->path, path))
			return k;
	return NULL;
}

static int is_prefix_of_key(const struct cfg_key *keys, const char *path)
{
	size_t n = strlen(path);
	for (const struct cfg_key *k = keys; k->path; k++)
		if (!strncmp(k->path, path, n) && k->path[n] == '.')
			return 1;
	return 0;
}

static int load_mapping(struct loader *l, const struct cfg_key *keys, void *obj, yaml_node_t *map,
			const char *prefix, const char *display_prefix);

static int load_list(struct loader *l, const struct cfg_key *k, void *obj, yaml_node_t *seq,
		     const char *path)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return fail_at(l, seq, "%s must be a list", path);
	size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	void **slot = field(obj, k);
	size_t *count = (size_t *)((char *)obj + k->count_offset);
	for (size_t i = 0; *slot && i < *count; i++)
		cfg_free(k->item_keys, (char *)*slot + i * k->item_size);
	free(*slot);
	char *items = xcalloc(n ? n : 1, k->item_size);
	*slot = items;
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(l->doc, seq->data.sequence.items.start[i]);
		void *it = items + i * k->item_size;
		if (cfg_defaults(k->item_keys, it, l->err, l->errlen) < 0)
			return -1;
		*count = i + 1;
		char disp[320];
		snprintf(disp, sizeof disp, "%.255s[%zu]", path, i);
		if (!item || item->type != YAML_MAPPING_NODE)
			return fail_at(l, item, "%s must be a mapping", disp);
		if (load_mapping(l, k->item_keys, it, item, "", disp) < 0)
			return -1;
		for (const struct cfg_key *ik = k->item_keys; ik->path; ik++) {
			if (!(ik->flags & CFG_REQUIRED) || ik->type != CFG_STRING)
				continue;
			if (!**(char **)field(it, ik))
				return fail_at(l, item, "%s.%s is required", disp, ik->path);
		}
	}
	return 0;
}

static int load_mapping(struct loader *l, const struct cfg_key *keys, void *obj, yaml_node_t *map,
			const char *prefix, const char *display_prefix)
{
	if (map->type != YAML_MAPPING_NODE)
		return fail_at(l, map, "%s must be a mapping", *display_prefix ? display_prefix : "the document");
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(l->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(l->doc, p->value);
		if (!kn || kn->type != YAML_SCALAR_NODE)
			return fail_at(l, kn, "keys must be plain names");
		const char *name = (const char *)kn->data.scalar.value;
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(l->doc, q->key);
			if (qk && qk->type == YAML_SCALAR_NODE && !strcmp((const char *)qk->data.scalar.value, name))
				return fail_at(l, kn, "duplicate key \"%s%s%s\"", display_prefix, *display_prefix ? "." : "", name);
		}
		char path[256], disp[256];
		snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
		snprintf(disp, sizeof disp, "%s%s%s", display_prefix, *display_prefix ? "." : "", name);
		const struct cfg_key *k = find_key(keys, path);
		if (k && k->type == CFG_IGNORE)
			continue;
		if (k && k->type == CFG_LIST) {
			if (load_list(l, k, obj, vn, disp) < 0)
				return -1;
			continue;
		}
		if (k) {
			if (!vn || vn->type != YAML_SCALAR_NODE)
				return fail_at(l, vn, "%s must be a single value", disp);
			char why[256];
			const char *v = (const char *)vn->data.scalar.value;
			/* a YAML null (~ or empty) means "use the default" */
			if (vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (!*v || !strcmp(v, "~") || !strcmp(v, "null")))
				continue;
			if (set_value(k, obj, v, why, sizeof why) < 0) {
				if (k->flags & CFG_SECRET)
					return fail_at(l, vn, "%s has an invalid value", disp);
				return fail_at(l, vn, "%s: \"%s\" %s", disp, v, why);
			}
			continue;
		}
		if (is_prefix_of_key(keys, path)) {
			if (!vn || vn->type != YAML_MAPPING_NODE)
				return fail_at(l, vn, "%s must be a mapping", disp);
			if (load_mapping(l, keys, obj, vn, path, disp) < 0)
				return -1;
			continue;
		}
		return fail_at(l, kn, "unknown key \"%s\"", disp);
	}
	return 0;
}

static int apply_env(const struct cfg_key *keys, void *obj, char *err, size_t errlen)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (k->type == CFG_LIST || k->type == CFG_IGNORE)
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
		if (set_value(k, obj, v, why, sizeof why) < 0) {
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
		if (!(k->flags & CFG_REQUIRED))
			continue;
		int missing = 0;
		if (k->type == CFG_STRING)
			missing = !**(char **)field(obj, k);
		else if (k->type == CFG_LIST)
			missing = *(size_t *)((char *)obj + k->count_offset) == 0;
		if (missing) {
			snprintf(err, errlen, "%s: missing required setting %s", name, k->path);
			return -1;
		}
	}
	return 0;
}

static int load_parser(const struct cfg_key *keys, void *obj, const char *name, yaml_parser_t *parser,
		       char *err, size_t errlen)
{
	yaml_document_t doc;
	struct loader l = { &doc, name, err, errlen };
	if (!yaml_parser_load(parser, &doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", name, parser->problem_mark.line + 1,
			 parser->problem_mark.column + 1, parser->problem ? parser->problem : "YAML syntax error");
		return -1;
	}
	int rc = 0;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root && !(root->type == YAML_SCALAR_NODE && !*(const char *)root->data.scalar.value))
		rc = load_mapping(&l, keys, obj, root, "", "");
	yaml_document_delete(&doc);
	if (rc == 0) {
		/* a second document in one file is almost always a mistake */
		yaml_document_t extra;
		if (yaml_parser_load(parser, &extra)) {
			yaml_node_t *r2 = yaml_document_get_root_node(&extra);
			/* a trailing "---" gives an empty document: harmless */
			if (r2 && !(r2->type == YAML_SCALAR_NODE && !*(const char *)r2->data.scalar.value)) {
				snprintf(err, errlen, "%s: more than one YAML document", name);
				rc = -1;
			}
			yaml_document_delete(&extra);
		}
	}
	return rc;
}

int cfg_load_string(const struct cfg_key *keys, void *obj, const char *name, const char *yaml, size_t len,
		    char *err, size_t errlen)
{
	yaml_parser_t parser;
	if (cfg_defaults(keys, obj, err, errlen) < 0)
		return -1;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: cannot initialise YAML parser", name);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	int rc = load_parser(keys, obj, name, &parser, err, errlen);
	yaml_parser_delete(&parser);
	if (rc == 0)
		rc = check_required(keys, obj, name, err, errlen);
	return rc;
}

int cfg_load(const struct cfg_key *keys, void *obj, const char *path, int *missing, char *err, size_t errlen)
{
	if (missing)
		*missing = 0;
	if (cfg_defaults(keys, obj, err, errlen) < 0)
		return -1;
	if (path) {
		FILE *f = fopen(path, "rb");
		if (!f) {
			if (missing)
				*missing = errno == ENOENT;
			snprintf(err, errlen, "cannot open config file \"%s\": %s", path, strerror(errno));
			return -1;
		}
		yaml_parser_t parser;
		if (!yaml_parser_initialize(&parser)) {
			fclose(f);
			snprintf(err, errlen, "%s: cannot initialise YAML parser", path);
			return -1;
		}
		yaml_parser_set_input_file(&parser, f);
		int rc = load_parser(keys, obj, path, &parser, err, errlen);
		yaml_parser_delete(&parser);
		fclose(f);
		if (rc < 0)
			return -1;
	}
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
		} else if (k->type == CFG_LIST) {
			char *items = *(void **)f;
			size_t *count = (size_t *)((char *)obj + k->count_offset);
			for (size_t i = 0; i < *count; i++)
				cfg_free(k->item_keys, items + i * k->item_size);
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
	case CFG_LIST:
	case CFG_IGNORE: break;
	}
}

/* Print keys under prefix at the given indent, as nested YAML. */
static void dump_level(const struct cfg_key *keys, const void *obj, const char *prefix, int indent, FILE *out)
{
	size_t plen = strlen(prefix);
	const char *done[64];
	size_t ndone = 0;
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (k->type == CFG_IGNORE || strncmp(k->path, prefix, plen))
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
					for (const struct cfg_key *ik = k->item_keys; ik->path; ik++) {
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
	static const char *const names[] = { "string", "bool", "integer", "size", "duration", "enum", "list", "section" };
	return names[t];
}

static void describe(const struct cfg_key *keys, const char *prefix, FILE *out)
{
	for (const struct cfg_key *k = keys; k->path; k++) {
		if (k->type == CFG_IGNORE)
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
			describe(k->item_keys, sub, out);
		}
	}
}

void cfg_describe(const struct cfg_key *keys, FILE *out)
{
	describe(keys, "", out);
}
