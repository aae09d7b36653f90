#include "fraudcfg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "json.h"
#include "strparse.h"
#include "xalloc.h"

/* ------------------------------------------------------------ parameter specs */

enum ptype {
	P_INT,      /* integer in min..max */
	P_NUMBER,   /* decimal number > 0 */
	P_DURATION, /* "5s", "10m": stored as <key>_ms */
	P_BOOL,
	P_ENUM,     /* one of choices */
	P_STRING,   /* non-empty text */
	P_HOURS,    /* "08:00-18:00": stored as start and end */
	P_DAYS,     /* list of mon..sun or 1..7: stored as ISO day numbers */
	P_PREFIXES, /* list of E.164 prefixes (+882, 00882, 882): stored as digits */
	P_STRLIST,  /* list of non-empty strings */
	P_DATES,    /* list of YYYY-MM-DD */
	P_LEVELS,   /* list of percentages 1..1000 */
};

struct pspec {
	const char *key;
	enum ptype type;
	const char *jdef; /* the JSON written when the key is absent; NULL = nothing */
	int64_t min, max;
	const char *const *choices;
	int required;
};

static const char *const per_choices[] = { "extension", "trunk", "tenant", NULL };
static const char *const dir_choices[] = { "outbound", "inbound", "any", NULL };
static const char *const severities[] = { "info", "warning", "minor", "major", "critical", NULL };
static const char *const sources[] = { "peer", "contact", "registry", "device", NULL };

#define MS_DAY ((int64_t)86400000)
#define END { NULL, 0, NULL, 0, 0, NULL, 0 }

static const struct pspec hotlist_p[] = {
	{ "prefixes", P_PREFIXES, NULL, 0, 0, NULL, 1 },
	END,
};
static const struct pspec new_country_p[] = {
	{ "exclude", P_STRLIST, "[]", 0, 0, NULL, 0 },
	END,
};
static const struct pspec out_of_hours_p[] = {
	{ "timezone", P_STRING, "\"UTC\"", 0, 0, NULL, 0 },
	{ "hours", P_HOURS, "\"start\": \"08:00\", \"end\": \"18:00\"", 0, 0, NULL, 0 },
	{ "days", P_DAYS, "[1, 2, 3, 4, 5]", 0, 0, NULL, 0 },
	{ "holidays", P_DATES, "[]", 0, 0, NULL, 0 },
	{ "per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0 },
	END,
};
static const struct pspec concurrent_intl_p[] = {
	{ "per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0 },
	{ "max", P_INT, NULL, 0, 1000000, NULL, 1 },
	END,
};
static const struct pspec cps_p[] = {
	{ "per", P_ENUM, "\"trunk\"", 0, 0, per_choices, 0 },
	{ "max", P_INT, NULL, 0, 1000000, NULL, 1 },
	{ "window", P_DURATION, "1000", 1, 3600000, NULL, 0 },
	{ "direction", P_ENUM, "\"outbound\"", 0, 0, dir_choices, 0 },
	END,
};
static const struct pspec short_calls_p[] = {
	{ "per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0 },
	{ "max_billsec", P_INT, "6", 1, 86400, NULL, 0 },
	{ "count", P_INT, "10", 2, 1000000, NULL, 0 },
	{ "window", P_DURATION, "300000", 1000, MS_DAY, NULL, 0 },
	{ "answered_only", P_BOOL, "true", 0, 0, NULL, 0 },
	END,
};
static const struct pspec sequential_p[] = {
	{ "per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0 },
	{ "count", P_INT, "5", 2, 100000, NULL, 0 },
	{ "window", P_DURATION, "600000", 1000, MS_DAY, NULL, 0 },
	{ "step", P_INT, "1", 1, 1000000, NULL, 0 },
	END,
};
static const struct pspec cost_velocity_p[] = {
	{ "per", P_ENUM, "\"tenant\"", 0, 0, per_choices, 0 },
	{ "max", P_NUMBER, NULL, 0, 0, NULL, 1 },
	{ "window", P_DURATION, "3600000", 1000, MS_DAY, NULL, 0 },
	END,
};
static const struct pspec wangiri_p[] = {
	{ "count", P_INT, "5", 2, 100000, NULL, 0 },
	{ "window", P_DURATION, "600000", 1000, MS_DAY, NULL, 0 },
	{ "max_ring", P_INT, "5", 0, 600, NULL, 0 },
	{ "prefix_digits", P_INT, "0", 0, 15, NULL, 0 },
	END,
};

struct kind {
	const char *name;
	const char *severity; /* default */
	const struct pspec *params;
};

static const struct kind kinds[] = {
	{ "hotlist", "critical", hotlist_p },
	{ "new_country", "warning", new_country_p },
	{ "out_of_hours", "major", out_of_hours_p },
	{ "concurrent_intl", "major", concurrent_intl_p },
	{ "cps", "major", cps_p },
	{ "short_calls", "major", short_calls_p },
	{ "sequential", "major", sequential_p },
	{ "cost_velocity", "critical", cost_velocity_p },
	{ "wangiri", "major", wangiri_p },
	{ NULL, NULL, NULL },
};

/* alerts: sub-sections, each one rule row */
static const struct pspec allowance_p[] = {
	{ "levels", P_LEVELS, "[80, 100]", 0, 0, NULL, 0 },
	{ "timezone", P_STRING, "\"UTC\"", 0, 0, NULL, 0 },
	END,
};
static const struct pspec tenant_cps_p[] = {
	{ "window", P_DURATION, "1000", 1, 3600000, NULL, 0 },
	END,
};
static const struct pspec no_p[] = { END };
static const struct pspec unreachable_p[] = {
	{ "sources", P_STRLIST, "[\"peer\", \"contact\", \"registry\", \"device\"]", 0, 0, sources, 0 },
	END,
};

/* ------------------------------------------------------------ loader state */

struct loader {
	yaml_document_t *doc;
	const char *name;
	char *err;
	size_t errlen;
	uint64_t fraud_snooze_ms;
	uint64_t alerts_snooze_ms;
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

static yaml_node_t *node_at(struct loader *l, int id)
{
	return yaml_document_get_node(l->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);
	return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (!*s || !strcmp(s, "~") || !strcmp(s, "null"));
}

static void json_str(struct buf *b, const char *s)
{
	json_string(b, s, strlen(s));
}

/* Check the keys of a mapping against allowed (a NULL-terminated list) and
 * against duplicates. */
static int check_keys(struct loader *l, yaml_node_t *map, const char *where, const char *const *allowed,
		      const struct pspec *params)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return fail_at(l, map, "%s must be a mapping", where);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = node_at(l, p->key);
		const char *k = scalar(kn);
		if (!k)
			return fail_at(l, kn, "%s: keys must be plain names", where);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
			if (!strcmp(scalar(node_at(l, q->key)) ? scalar(node_at(l, q->key)) : "", k))
				return fail_at(l, kn, "duplicate key \"%s.%s\"", where, k);
		int ok = 0;
		for (size_t i = 0; allowed && allowed[i] && !ok; i++)
			ok = !strcmp(allowed[i], k);
		for (const struct pspec *s = params; s && s->key && !ok; s++)
			ok = !strcmp(s->key, k);
		if (!ok)
			return fail_at(l, kn, "unknown key \"%s.%s\"", where, k);
	}
	return 0;
}

static yaml_node_t *lookup(struct loader *l, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = scalar(node_at(l, p->key));
		if (k && !strcmp(k, key)) {
			yaml_node_t *v = node_at(l, p->value);
			return is_null(v) ? NULL : v;
		}
	}
	return NULL;
}

static int want_scalar(struct loader *l, yaml_node_t *v, const char *where)
{
	if (!scalar(v))
		return fail_at(l, v, "%s must be a single value", where);
	return 0;
}

static int want_seq(struct loader *l, yaml_node_t *v, const char *where)
{
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return fail_at(l, v, "%s must be a list", where);
	return 0;
}

#define SEQ_FOR(l, v, it)                                                                                  \
	for (yaml_node_item_t *it##_p = (v)->data.sequence.items.start; it##_p < (v)->data.sequence.items.top; \
	     it##_p++)                                                                                         \
		for (yaml_node_t *it = node_at((l), *it##_p), *it##_once = it; it##_once; it##_once = NULL)

static int get_duration(struct loader *l, yaml_node_t *v, const char *where, uint64_t min, uint64_t max,
			uint64_t *out)
{
	char why[256];
	if (want_scalar(l, v, where) < 0)
		return -1;
	if (parse_duration_ms(scalar(v), min, max, out, why, sizeof why) < 0)
		return fail_at(l, v, "%s: \"%s\" %s", where, scalar(v), why);
	return 0;
}

static int get_bool(struct loader *l, yaml_node_t *v, const char *where, int *out)
{
	char why[256];
	if (want_scalar(l, v, where) < 0)
		return -1;
	if (parse_bool(scalar(v), out, why, sizeof why) < 0)
		return fail_at(l, v, "%s: \"%s\" %s", where, scalar(v), why);
	return 0;
}

static int get_enum(struct loader *l, yaml_node_t *v, const char *where, const char *const *choices,
		    const char **out)
{
	if (want_scalar(l, v, where) < 0)
		return -1;
	for (size_t i = 0; choices[i]; i++) {
		if (!strcmp(choices[i], scalar(v))) {
			*out = choices[i];
			return 0;
		}
	}
	char list[256];
	size_t n = 0;
	list[0] = '\0';
	for (size_t i = 0; choices[i] && n < sizeof list; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", choices[i]);
	return fail_at(l, v, "%s: \"%s\" must be one of %s", where, scalar(v), list);
}

static int parse_number(const char *s, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

static int parse_hhmm(const char *s, int *minutes)
{
	int h, m;
	char tail;
	if (strlen(s) != 5 || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 24 || m < 0 || m > 59 ||
	    (h == 24 && m))
		return -1;
	*minutes = h * 60 + m;
	return 0;
}

static int day_number(const char *s)
{
	static const char *const names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
	for (int i = 0; i < 7; i++)
		if (!strcmp(s, names[i]))
			return i + 1;
	if (s[0] >= '1' && s[0] <= '7' && !s[1])
		return s[0] - '0';
	return 0;
}

/* One parameter value as JSON ("key": value) into b. */
static int param_json(struct loader *l, const struct pspec *s, yaml_node_t *v, const char *where, struct buf *b)
{
	char why[256];
	int64_t i;
	switch (s->type) {
	case P_INT:
		if (want_scalar(l, v, where) < 0)
			return -1;
		if (parse_int_range(scalar(v), s->min, s->max, &i, why, sizeof why) < 0)
			return fail_at(l, v, "%s: \"%s\" %s", where, scalar(v), why);
		buf_printf(b, "\"%s\": %lld", s->key, (long long)i);
		return 0;
	case P_NUMBER: {
		double d;
		if (want_scalar(l, v, where) < 0)
			return -1;
		if (parse_number(scalar(v), &d) < 0 || d <= 0)
			return fail_at(l, v, "%s: \"%s\" must be a number above 0", where, scalar(v));
		buf_printf(b, "\"%s\": %.6f", s->key, d);
		return 0;
	}
	case P_DURATION: {
		uint64_t ms;
		if (get_duration(l, v, where, (uint64_t)s->min, (uint64_t)s->max, &ms) < 0)
			return -1;
		buf_printf(b, "\"%s_ms\": %llu", s->key, (unsigned long long)ms);
		return 0;
	}
	case P_BOOL: {
		int x;
		if (get_bool(l, v, where, &x) < 0)
			return -1;
		buf_printf(b, "\"%s\": %s", s->key, x ? "true" : "false");
		return 0;
	}
	case P_ENUM: {
		const char *c;
		if (get_enum(l, v, where, s->choices, &c) < 0)
			return -1;
		buf_printf(b, "\"%s\": \"%s\"", s->key, c);
		return 0;
	}
	case P_STRING:
		if (want_scalar(l, v, where) < 0)
			return -1;
		if (!*scalar(v))
			return fail_at(l, v, "%s must not be empty", where);
		buf_printf(b, "\"%s\": ", s->key);
		json_str(b, scalar(v));
		return 0;
	case P_HOURS: {
		int a, z;
		char from[8], to[8];
		if (want_scalar(l, v, where) < 0)
			return -1;
		const char *t = scalar(v);
		if (strlen(t) != 11 || t[5] != '-')
			return fail_at(l, v, "%s: \"%s\" must be HH:MM-HH:MM", where, t);
		memcpy(from, t, 5);
		from[5] = '\0';
		memcpy(to, t + 6, 5);
		to[5] = '\0';
		if (parse_hhmm(from, &a) < 0 || parse_hhmm(to, &z) < 0 || a == z)
			return fail_at(l, v, "%s: \"%s\" must be HH:MM-HH:MM with two different times", where, t);
		buf_printf(b, "\"start\": \"%s\", \"end\": \"%s\"", from, to);
		return 0;
	}
	case P_DAYS:
	case P_PREFIXES:
	case P_STRLIST:
	case P_DATES:
	case P_LEVELS:
		break;
	}
	if (want_seq(l, v, where) < 0)
		return -1;
	if (s->type != P_STRLIST && s->type != P_DATES && v->data.sequence.items.top == v->data.sequence.items.start)
		return fail_at(l, v, "%s must not be empty", where);
	buf_printf(b, "\"%s\": [", s->key);
	int first = 1;
	SEQ_FOR(l, v, it)
	{
		const char *x = scalar(it);
		if (!x || !*x)
			return fail_at(l, it, "%s: every item must be a non-empty single value", where);
		if (!first)
			buf_puts(b, ", ");
		first = 0;
		switch (s->type) {
		case P_DAYS: {
			int d = day_number(x);
			if (!d)
				return fail_at(l, it, "%s: \"%s\" must be mon..sun or 1..7", where, x);
			buf_printf(b, "%d", d);
			break;
		}
		case P_PREFIXES: {
			const char *d = x[0] == '+' ? x + 1 : !strncmp(x, "00", 2) ? x + 2 : x;
			size_t n = strlen(d);
			if (n < 1 || n > 15 || strspn(d, "0123456789") != n || d[0] == '0')
				return fail_at(l, it, "%s: \"%s\" must be an international prefix (+882, 00882 or 882)",
					       where, x);
			json_str(b, d);
			break;
		}
		case P_DATES: {
			int y, m, dd;
			char tail;
			if (strlen(x) != 10 || sscanf(x, "%4d-%2d-%2d%c", &y, &m, &dd, &tail) != 3 || m < 1 || m > 12 ||
			    dd < 1 || dd > 31)
				return fail_at(l, it, "%s: \"%s\" must be a date YYYY-MM-DD", where, x);
			json_str(b, x);
			break;
		}
		case P_LEVELS: {
			if (parse_int_range(x, 1, 1000, &i, why, sizeof why) < 0)
				return fail_at(l, it, "%s: \"%s\" %s", where, x, why);
			buf_printf(b, "%lld", (long long)i);
			break;
		}
		default:
			if (s->choices) {
				const char *c;
				if (get_enum(l, it, where, s->choices, &c) < 0)
					return -1;
			}
			json_str(b, x);
			break;
		}
	}
	buf_puts(b, "]");
	return 0;
}

/* The params object of one rule mapping: every spec key, given or default. */
static int params_json(struct loader *l, yaml_node_t *map, const struct pspec *specs, const char *where,
		       char **out)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{");
	int first = 1;
	for (const struct pspec *s = specs; s->key; s++) {
		yaml_node_t *v = lookup(l, map, s->key);
		char w[320];
		snprintf(w, sizeof w, "%.255s.%s", where, s->key);
		if (!v && s->required) {
			buf_release(&b);
			return fail_at(l, map, "%s is required", w);
		}
		if (!v && !s->jdef)
			continue;
		if (!first)
			buf_puts(&b, ", ");
		first = 0;
		if (!v) {
			if (s->type == P_HOURS)
				buf_puts(&b, s->jdef);
			else
				buf_printf(&b, "\"%s%s\": %s", s->key, s->type == P_DURATION ? "_ms" : "", s->jdef);
			continue;
		}
		if (param_json(l, s, v, w, &b) < 0) {
			buf_release(&b);
			return -1;
		}
	}
	buf_puts(&b, "}");
	*out = buf_detach(&b, NULL);
	return 0;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static struct fraud_rule_cfg *add_rule(struct fraud_config *fc)
{
	fc->rules = xrealloc(fc->rules, (fc->nrules + 1) * sizeof *fc->rules);
	struct fraud_rule_cfg *r = &fc->rules[fc->nrules++];
	memset(r, 0, sizeof *r);
	return r;
}

static int name_taken(const struct fraud_config *fc, const char *name)
{
	for (size_t i = 0; i < fc->nrules; i++)
		if (fc->rules[i].name && !strcmp(fc->rules[i].name, name))
			return 1;
	return 0;
}

/* enabled, severity, snooze of a rule mapping (defaults given). */
static int rule_common(struct loader *l, yaml_node_t *map, const char *where, const char *sev_key,
		       const char *def_sev, uint64_t def_snooze, struct fraud_rule_cfg *r)
{
	char w[320];
	yaml_node_t *v;
	r->enabled = 1;
	if ((v = lookup(l, map, "enabled"))) {
		snprintf(w, sizeof w, "%.255s.enabled", where);
		if (get_bool(l, v, w, &r->enabled) < 0)
			return -1;
	}
	const char *sev = def_sev;
	if ((v = lookup(l, map, sev_key))) {
		snprintf(w, sizeof w, "%.255s.%s", where, sev_key);
		if (get_enum(l, v, w, severities, &sev) < 0)
			return -1;
	}
	r->severity = xstrdup(sev);
	r->snooze_ms = def_snooze;
	if ((v = lookup(l, map, "snooze"))) {
		snprintf(w, sizeof w, "%.255s.snooze", where);
		if (get_duration(l, v, w, 0, 30 * (uint64_t)MS_DAY, &r->snooze_ms) < 0)
			return -1;
	}
	return 0;
}

static int strlist(struct loader *l, yaml_node_t *v, const char *where, char ***out, size_t *n)
{
	if (want_seq(l, v, where) < 0)
		return -1;
	SEQ_FOR(l, v, it)
	{
		const char *x = scalar(it);
		if (!x || !*x)
			return fail_at(l, it, "%s: every item must be a non-empty single value", where);
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		(*out)[(*n)++] = xstrdup(x);
	}
	return 0;
}

static int load_fraud(struct loader *l, yaml_node_t *f, struct fraud_config *fc)
{
	static const char *const keys[] = { "outbound_contexts", "inbound_contexts", "max_call_duration", "snooze",
					     "rules", NULL };
	if (check_keys(l, f, "fraud", keys, NULL) < 0)
		return -1;
	yaml_node_t *v;
	if ((v = lookup(l, f, "outbound_contexts")) &&
	    strlist(l, v, "fraud.outbound_contexts", &fc->outbound_contexts, &fc->n_outbound) < 0)
		return -1;
	if ((v = lookup(l, f, "inbound_contexts")) &&
	    strlist(l, v, "fraud.inbound_contexts", &fc->inbound_contexts, &fc->n_inbound) < 0)
		return -1;
	for (size_t i = 0; i < fc->n_inbound; i++)
		for (size_t j = 0; j < fc->n_outbound; j++)
			if (!strcmp(fc->inbound_contexts[i], fc->outbound_contexts[j]))
				return fail_at(l, lookup(l, f, "inbound_contexts"),
					       "fraud: context \"%s\" is both inbound and outbound", fc->inbound_contexts[i]);
	if ((v = lookup(l, f, "max_call_duration")) &&
	    get_duration(l, v, "fraud.max_call_duration", 60000, 2 * (uint64_t)MS_DAY, &fc->max_call_ms) < 0)
		return -1;
	if ((v = lookup(l, f, "snooze")) &&
	    get_duration(l, v, "fraud.snooze", 0, 30 * (uint64_t)MS_DAY, &l->fraud_snooze_ms) < 0)
		return -1;
	yaml_node_t *rules = lookup(l, f, "rules");
	if (!rules)
		return 0;
	if (want_seq(l, rules, "fraud.rules") < 0)
		return -1;
	size_t idx = 0;
	SEQ_FOR(l, rules, rn)
	{
		char where[64];
		snprintf(where, sizeof where, "fraud.rules[%zu]", idx++);
		if (!rn || rn->type != YAML_MAPPING_NODE)
			return fail_at(l, rn, "%s must be a mapping", where);
		yaml_node_t *kn = lookup(l, rn, "kind"), *nn = lookup(l, rn, "name");
		if (!nn)
			return fail_at(l, rn, "%s.name is required", where);
		if (want_scalar(l, nn, "name") < 0)
			return -1;
		if (!valid_name(scalar(nn)))
			return fail_at(l, nn, "%s.name: \"%s\" must be 1-63 of a-z 0-9 _ -", where, scalar(nn));
		if (name_taken(fc, scalar(nn)))
			return fail_at(l, nn, "%s.name: duplicate rule name \"%s\"", where, scalar(nn));
		if (!kn)
			return fail_at(l, rn, "%s.kind is required", where);
		if (want_scalar(l, kn, "kind") < 0)
			return -1;
		const struct kind *k = kinds;
		while (k->name && strcmp(k->name, scalar(kn)))
			k++;
		if (!k->name) {
			char list[256];
			size_t n = 0;
			for (const struct kind *x = kinds; x->name && n < sizeof list; x++)
				n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", x == kinds ? "" : ", ", x->name);
			return fail_at(l, kn, "%s.kind: \"%s\" must be one of %s", where, scalar(kn), list);
		}
		static const char *const common[] = { "name", "kind", "enabled", "severity", "snooze", NULL };
		if (check_keys(l, rn, where, common, k->params) < 0)
			return -1;
		struct fraud_rule_cfg *r = add_rule(fc);
		r->name = xstrdup(scalar(nn));
		r->kind = xstrdup(k->name);
		if (rule_common(l, rn, where, "severity", k->severity, l->fraud_snooze_ms, r) < 0 ||
		    params_json(l, rn, k->params, where, &r->params_json) < 0)
			return -1;
	}
	return 0;
}

/* One alerts: sub-section as a rule row (the section may be absent: defaults). */
static int load_alert_rule(struct loader *l, yaml_node_t *a, struct fraud_config *fc, const char *key,
			   const char *name, const char *kind, const char *sev_key, const char *def_sev,
			   const struct pspec *params, const char *const *extra)
{
	char where[64];
	snprintf(where, sizeof where, "alerts.%s", key);
	yaml_node_t *m = lookup(l, a, key);
	const char *allowed[8] = { "enabled", "severity", "snooze", NULL };
	size_t n = 3;
	for (size_t i = 0; extra && extra[i] && n < 7; i++)
		allowed[n++] = extra[i];
	allowed[n] = NULL;
	if (m && check_keys(l, m, where, allowed, params) < 0)
		return -1;
	if (name_taken(fc, name))
		return fail_at(l, m ? m : a, "%s: a fraud rule is already named \"%s\"", where, name);
	struct fraud_rule_cfg *r = add_rule(fc);
	r->name = xstrdup(name);
	r->kind = xstrdup(kind);
	if (rule_common(l, m, where, sev_key, def_sev, l->alerts_snooze_ms, r) < 0 ||
	    params_json(l, m, params, where, &r->params_json) < 0)
		return -1;
	return 0;
}

static int load_tenants(struct loader *l, yaml_node_t *t, struct fraud_config *fc)
{
	static const char *const keys[] = { "tenant", "allowance_minutes", "max_concurrent", "max_cps", NULL };
	if (want_seq(l, t, "alerts.tenants") < 0)
		return -1;
	size_t idx = 0;
	SEQ_FOR(l, t, tn)
	{
		char where[64], w[96];
		snprintf(where, sizeof where, "alerts.tenants[%zu]", idx++);
		if (check_keys(l, tn, where, keys, NULL) < 0)
			return -1;
		yaml_node_t *v = lookup(l, tn, "tenant");
		snprintf(w, sizeof w, "%s.tenant", where);
		if (!v)
			return fail_at(l, tn, "%s is required", w);
		if (want_scalar(l, v, w) < 0)
			return -1;
		for (size_t i = 0; i < fc->nlimits; i++)
			if (!strcmp(fc->limits[i].tenant, scalar(v)))
				return fail_at(l, v, "%s: tenant \"%s\" is listed twice", w, scalar(v));
		fc->limits = xrealloc(fc->limits, (fc->nlimits + 1) * sizeof *fc->limits);
		struct fraud_tenant_limit_cfg *lim = &fc->limits[fc->nlimits++];
		lim->tenant = xstrdup(scalar(v));
		lim->allowance_minutes = -1;
		lim->max_concurrent = lim->max_cps = -1;
		char why[256];
		if ((v = lookup(l, tn, "allowance_minutes"))) {
			snprintf(w, sizeof w, "%s.allowance_minutes", where);
			if (want_scalar(l, v, w) < 0)
				return -1;
			if (parse_number(scalar(v), &lim->allowance_minutes) < 0 || lim->allowance_minutes <= 0)
				return fail_at(l, v, "%s: \"%s\" must be a number above 0", w, scalar(v));
		}
		if ((v = lookup(l, tn, "max_concurrent"))) {
			snprintf(w, sizeof w, "%s.max_concurrent", where);
			if (want_scalar(l, v, w) < 0)
				return -1;
			if (parse_int_range(scalar(v), 0, 1000000, &lim->max_concurrent, why, sizeof why) < 0)
				return fail_at(l, v, "%s: \"%s\" %s", w, scalar(v), why);
		}
		if ((v = lookup(l, tn, "max_cps"))) {
			snprintf(w, sizeof w, "%s.max_cps", where);
			if (want_scalar(l, v, w) < 0)
				return -1;
			if (parse_int_range(scalar(v), 0, 1000000, &lim->max_cps, why, sizeof why) < 0)
				return fail_at(l, v, "%s: \"%s\" %s", w, scalar(v), why);
		}
	}
	return 0;
}

static int load_alerts(struct loader *l, yaml_node_t *a, struct fraud_config *fc)
{
	static const char *const keys[] = { "snooze", "allowance", "concurrent", "cps", "unreachable", "tenants", NULL };
	static const char *const recovered[] = { "recovered_severity", NULL };
	if (check_keys(l, a, "alerts", keys, NULL) < 0)
		return -1;
	yaml_node_t *v;
	if ((v = lookup(l, a, "snooze")) &&
	    get_duration(l, v, "alerts.snooze", 0, 30 * (uint64_t)MS_DAY, &l->alerts_snooze_ms) < 0)
		return -1;
	if (load_alert_rule(l, a, fc, "allowance", "allowance", "allowance", "severity", "warning", allowance_p, NULL) < 0 ||
	    load_alert_rule(l, a, fc, "concurrent", "tenant_concurrent", "tenant_concurrent", "severity", "major", no_p,
			    NULL) < 0 ||
	    load_alert_rule(l, a, fc, "cps", "tenant_cps", "tenant_cps", "severity", "major", tenant_cps_p, NULL) < 0 ||
	    load_alert_rule(l, a, fc, "unreachable", "endpoint_unreachable", "endpoint_unreachable", "severity", "major",
			    unreachable_p, recovered) < 0)
		return -1;
	/* the recovery of the same endpoints: its own row, the same switch */
	if (load_alert_rule(l, a, fc, "unreachable", "endpoint_recovered", "endpoint_recovered", "recovered_severity",
			    "info", unreachable_p, recovered) < 0)
		return -1;
	if ((v = lookup(l, a, "tenants")) && load_tenants(l, v, fc) < 0)
		return -1;
	return 0;
}

static int load_doc(yaml_parser_t *parser, const char *name, struct fraud_config *fc, char *err, size_t errlen)
{
	yaml_document_t doc;
	struct loader l = { &doc, name, err, errlen, 3600000, 3600000 };
	if (!yaml_parser_load(parser, &doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", name, parser->problem_mark.line + 1, parser->problem_mark.column + 1,
			 parser->problem ? parser->problem : "YAML syntax error");
		return -1;
	}
	int rc = 0;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root && root->type == YAML_MAPPING_NODE) {
		yaml_node_t *f = NULL, *a = NULL;
		for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
			const char *k = scalar(node_at(&l, p->key));
			yaml_node_t *v = node_at(&l, p->value);
			if (k && !strcmp(k, "fraud") && !is_null(v))
				f = v;
			else if (k && !strcmp(k, "alerts") && !is_null(v))
				a = v;
		}
		/* fraud.snooze is the default of the fraud rules: read it before them */
		if (f)
			rc = load_fraud(&l, f, fc);
		if (rc == 0 && a)
			rc = load_alerts(&l, a, fc);
	} else if (root && !(root->type == YAML_SCALAR_NODE && !*(const char *)root->data.scalar.value)) {
		rc = fail_at(&l, root, "the document must be a mapping");
	}
	yaml_document_delete(&doc);
	return rc;
}

int fraud_config_load_string(const char *name, const char *yaml, size_t len, struct fraud_config *out, char *err,
			     size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->max_call_ms = 4 * 3600000;
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: cannot initialise YAML parser", name);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	int rc = load_doc(&parser, name, out, err, errlen);
	yaml_parser_delete(&parser);
	return rc;
}

int fraud_config_load(const char *path, struct fraud_config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->max_call_ms = 4 * 3600000;
	FILE *f = fopen(path, "rb");
	if (!f) {
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
	int rc = load_doc(&parser, path, out, err, errlen);
	yaml_parser_delete(&parser);
	if (fclose(f) != 0 && rc == 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

static void json_list(struct buf *b, char *const *v, size_t n)
{
	buf_puts(b, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_puts(b, ", ");
		json_str(b, v[i]);
	}
	buf_puts(b, "]");
}

char *fraud_config_json(const struct fraud_config *fc)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"settings\": {\"outbound_contexts\": ");
	json_list(&b, fc->outbound_contexts, fc->n_outbound);
	buf_puts(&b, ", \"inbound_contexts\": ");
	json_list(&b, fc->inbound_contexts, fc->n_inbound);
	buf_printf(&b, ", \"max_call_duration_ms\": %llu}, \"rules\": [", (unsigned long long)fc->max_call_ms);
	for (size_t i = 0; i < fc->nrules; i++) {
		const struct fraud_rule_cfg *r = &fc->rules[i];
		buf_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
		json_str(&b, r->name);
		buf_puts(&b, ", \"kind\": ");
		json_str(&b, r->kind);
		buf_printf(&b, ", \"enabled\": %s, \"severity\": ", r->enabled ? "true" : "false");
		json_str(&b, r->severity);
		buf_printf(&b, ", \"snooze_ms\": %llu, \"params\": %s}", (unsigned long long)r->snooze_ms,
			   r->params_json ? r->params_json : "{}");
	}
	buf_puts(&b, "], \"tenant_limits\": [");
	for (size_t i = 0; i < fc->nlimits; i++) {
		const struct fraud_tenant_limit_cfg *t = &fc->limits[i];
		buf_puts(&b, i ? ", {\"tenant\": " : "{\"tenant\": ");
		json_str(&b, t->tenant);
		if (t->allowance_minutes > 0)
			buf_printf(&b, ", \"allowance_minutes\": %.6f", t->allowance_minutes);
		if (t->max_concurrent >= 0)
			buf_printf(&b, ", \"max_concurrent\": %lld", (long long)t->max_concurrent);
		if (t->max_cps >= 0)
			buf_printf(&b, ", \"max_cps\": %lld", (long long)t->max_cps);
		buf_puts(&b, "}");
	}
	buf_puts(&b, "]}");
	return buf_detach(&b, NULL);
}

int fraud_config_sync(PGconn *c, const struct fraud_config *fc, char *err, size_t errlen)
{
	char *json = fraud_config_json(fc);
	const char *params[1] = { json };
	PGresult *res = PQexecParams(c, "SELECT fraud_config_apply($1::jsonb)", 1, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		snprintf(err, errlen, "%s: %s", state ? state : "08000",
			 msg ? msg : PQerrorMessage(c));
		rc = -1;
	}
	PQclear(res);
	free(json);
	return rc;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void fraud_config_free(struct fraud_config *fc)
{
	if (!fc)
		return;
	free_list(fc->outbound_contexts, fc->n_outbound);
	free_list(fc->inbound_contexts, fc->n_inbound);
	for (size_t i = 0; i < fc->nrules; i++) {
		free(fc->rules[i].name);
		free(fc->rules[i].kind);
		free(fc->rules[i].severity);
		free(fc->rules[i].params_json);
	}
	free(fc->rules);
	for (size_t i = 0; i < fc->nlimits; i++)
		free(fc->limits[i].tenant);
	free(fc->limits);
	memset(fc, 0, sizeof *fc);
}
