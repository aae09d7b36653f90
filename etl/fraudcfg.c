#include "fraudcfg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "cfg.h"
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

struct pctx; /* a rule's params object being built (below) */
static int param_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *where);

static const enum ptype ptypes[] = { P_INT, P_NUMBER, P_DURATION, P_BOOL, P_ENUM, P_STRING,
				     P_HOURS, P_DAYS, P_PREFIXES, P_STRLIST, P_DATES, P_LEVELS };
#define PH(t) { param_bind, NULL, NULL, &ptypes[t] }
static const struct cfg_hook param_hooks[] = {
	PH(P_INT), PH(P_NUMBER), PH(P_DURATION), PH(P_BOOL), PH(P_ENUM), PH(P_STRING),
	PH(P_HOURS), PH(P_DAYS), PH(P_PREFIXES), PH(P_STRLIST), PH(P_DATES), PH(P_LEVELS),
};
#undef PH

/* One parameter of a rule kind: a key whose hook writes its JSON (def: the
 * JSON written when the key is absent; NULL = nothing). */
#define PARAM(key, t, jdef, min, max, choices, req) \
	{ key, CFG_CUSTOM, 0, jdef, min, max, choices, "", CFG_ALWAYS | ((req) ? CFG_REQUIRED : 0), &param_hooks[t], 0, 0 }
#define END { NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 }

static const char *const per_choices[] = { "extension", "trunk", "tenant", NULL };
static const char *const dir_choices[] = { "outbound", "inbound", "any", NULL };
static const char *const severities[] = { "info", "warning", "minor", "major", "critical", NULL };
static const char *const sources[] = { "peer", "contact", "registry", "device", NULL };

#define MS_DAY ((int64_t)86400000)

static const struct cfg_key hotlist_p[] = {
	PARAM("prefixes", P_PREFIXES, NULL, 0, 0, NULL, 1),
	END,
};
static const struct cfg_key new_country_p[] = {
	PARAM("exclude", P_STRLIST, "[]", 0, 0, NULL, 0),
	END,
};
static const struct cfg_key out_of_hours_p[] = {
	PARAM("timezone", P_STRING, "\"UTC\"", 0, 0, NULL, 0),
	PARAM("hours", P_HOURS, "\"start\": \"08:00\", \"end\": \"18:00\"", 0, 0, NULL, 0),
	PARAM("days", P_DAYS, "[1, 2, 3, 4, 5]", 0, 0, NULL, 0),
	PARAM("holidays", P_DATES, "[]", 0, 0, NULL, 0),
	PARAM("per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0),
	END,
};
static const struct cfg_key concurrent_intl_p[] = {
	PARAM("per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0),
	PARAM("max", P_INT, NULL, 0, 1000000, NULL, 1),
	END,
};
static const struct cfg_key cps_p[] = {
	PARAM("per", P_ENUM, "\"trunk\"", 0, 0, per_choices, 0),
	PARAM("max", P_INT, NULL, 0, 1000000, NULL, 1),
	PARAM("window", P_DURATION, "1000", 1, 3600000, NULL, 0),
	PARAM("direction", P_ENUM, "\"outbound\"", 0, 0, dir_choices, 0),
	END,
};
static const struct cfg_key short_calls_p[] = {
	PARAM("per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0),
	PARAM("max_billsec", P_INT, "6", 1, 86400, NULL, 0),
	PARAM("count", P_INT, "10", 2, 1000000, NULL, 0),
	PARAM("window", P_DURATION, "300000", 1000, MS_DAY, NULL, 0),
	PARAM("answered_only", P_BOOL, "true", 0, 0, NULL, 0),
	END,
};
static const struct cfg_key sequential_p[] = {
	PARAM("per", P_ENUM, "\"extension\"", 0, 0, per_choices, 0),
	PARAM("count", P_INT, "5", 2, 100000, NULL, 0),
	PARAM("window", P_DURATION, "600000", 1000, MS_DAY, NULL, 0),
	PARAM("step", P_INT, "1", 1, 1000000, NULL, 0),
	END,
};
static const struct cfg_key cost_velocity_p[] = {
	PARAM("per", P_ENUM, "\"tenant\"", 0, 0, per_choices, 0),
	PARAM("max", P_NUMBER, NULL, 0, 0, NULL, 1),
	PARAM("window", P_DURATION, "3600000", 1000, MS_DAY, NULL, 0),
	END,
};
static const struct cfg_key wangiri_p[] = {
	PARAM("count", P_INT, "5", 2, 100000, NULL, 0),
	PARAM("window", P_DURATION, "600000", 1000, MS_DAY, NULL, 0),
	PARAM("max_ring", P_INT, "5", 0, 600, NULL, 0),
	PARAM("prefix_digits", P_INT, "0", 0, 15, NULL, 0),
	END,
};

struct kind {
	const char *name;
	const char *severity; /* default */
	const struct cfg_key *params;
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
static const struct cfg_key allowance_p[] = {
	PARAM("levels", P_LEVELS, "[80, 100]", 0, 0, NULL, 0),
	PARAM("timezone", P_STRING, "\"UTC\"", 0, 0, NULL, 0),
	END,
};
static const struct cfg_key tenant_cps_p[] = {
	PARAM("window", P_DURATION, "1000", 1, 3600000, NULL, 0),
	END,
};
static const struct cfg_key no_p[] = { END };
static const struct cfg_key unreachable_p[] = {
	PARAM("sources", P_STRLIST, "[\"peer\", \"contact\", \"registry\", \"device\"]", 0, 0, sources, 0),
	END,
};

/* ------------------------------------------------------------ values */

static const char *scalar(const yaml_node_t *n)
{
	return cfg_scalar(n);
}

static void json_str(struct buf *b, const char *s)
{
	json_string(b, s, strlen(s));
}

static int want_scalar(struct cfg_doc *d, yaml_node_t *v, const char *where)
{
	if (!scalar(v))
		return cfg_fail(d, v, "%s must be a single value", where);
	return 0;
}

static int want_seq(struct cfg_doc *d, yaml_node_t *v, const char *where)
{
	if (!cfg_is_seq(v))
		return cfg_fail(d, v, "%s must be a list", where);
	return 0;
}

static int get_duration(struct cfg_doc *d, yaml_node_t *v, const char *where, uint64_t min, uint64_t max,
			uint64_t *out)
{
	char why[256];
	if (want_scalar(d, v, where) < 0)
		return -1;
	if (parse_duration_ms(scalar(v), min, max, out, why, sizeof why) < 0)
		return cfg_fail(d, v, "%s: \"%s\" %s", where, scalar(v), why);
	return 0;
}

static int get_enum(struct cfg_doc *d, yaml_node_t *v, const char *where, const char *const *choices,
		    const char **out)
{
	if (want_scalar(d, v, where) < 0)
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
	return cfg_fail(d, v, "%s: \"%s\" must be one of %s", where, scalar(v), list);
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

/* One list parameter's items as JSON into b. */
static int param_list_json(struct cfg_doc *d, const struct cfg_key *s, enum ptype type, yaml_node_t *v,
			   const char *where, struct buf *b)
{
	char why[256];
	int64_t i;
	if (want_seq(d, v, where) < 0)
		return -1;
	if (type != P_STRLIST && type != P_DATES && !cfg_seq_len(v))
		return cfg_fail(d, v, "%s must not be empty", where);
	buf_printf(b, "\"%s\": [", s->path);
	for (size_t n = 0; n < cfg_seq_len(v); n++) {
		yaml_node_t *it = cfg_seq_item(d, v, n);
		const char *x = scalar(it);
		if (!x || !*x)
			return cfg_fail(d, it, "%s: every item must be a non-empty single value", where);
		if (n)
			buf_puts(b, ", ");
		switch (type) {
		case P_DAYS: {
			int dn = day_number(x);
			if (!dn)
				return cfg_fail(d, it, "%s: \"%s\" must be mon..sun or 1..7", where, x);
			buf_printf(b, "%d", dn);
			break;
		}
		case P_PREFIXES: {
			const char *dg = x[0] == '+' ? x + 1 : !strncmp(x, "00", 2) ? x + 2 : x;
			size_t len = strlen(dg);
			if (len < 1 || len > 15 || strspn(dg, "0123456789") != len || dg[0] == '0')
				return cfg_fail(d, it, "%s: \"%s\" must be an international prefix (+882, 00882 or 882)",
						where, x);
			json_str(b, dg);
			break;
		}
		case P_DATES: {
			int y, m, dd;
			char tail;
			if (strlen(x) != 10 || sscanf(x, "%4d-%2d-%2d%c", &y, &m, &dd, &tail) != 3 || m < 1 || m > 12 ||
			    dd < 1 || dd > 31)
				return cfg_fail(d, it, "%s: \"%s\" must be a date YYYY-MM-DD", where, x);
			json_str(b, x);
			break;
		}
		case P_LEVELS:
			if (parse_int_range(x, 1, 1000, &i, why, sizeof why) < 0)
				return cfg_fail(d, it, "%s: \"%s\" %s", where, x, why);
			buf_printf(b, "%lld", (long long)i);
			break;
		default:
			if (s->choices) {
				const char *c;
				if (get_enum(d, it, where, s->choices, &c) < 0)
					return -1;
			}
			json_str(b, x);
			break;
		}
	}
	buf_puts(b, "]");
	return 0;
}

/* One parameter value as JSON ("key": value) into b. */
static int param_json(struct cfg_doc *d, const struct cfg_key *s, enum ptype type, yaml_node_t *v,
		      const char *where, struct buf *b)
{
	char why[256];
	int64_t i;
	switch (type) {
	case P_INT:
		if (want_scalar(d, v, where) < 0)
			return -1;
		if (parse_int_range(scalar(v), s->min, s->max, &i, why, sizeof why) < 0)
			return cfg_fail(d, v, "%s: \"%s\" %s", where, scalar(v), why);
		buf_printf(b, "\"%s\": %lld", s->path, (long long)i);
		return 0;
	case P_NUMBER: {
		double x;
		if (want_scalar(d, v, where) < 0)
			return -1;
		if (parse_number(scalar(v), &x) < 0 || x <= 0)
			return cfg_fail(d, v, "%s: \"%s\" must be a number above 0", where, scalar(v));
		buf_printf(b, "\"%s\": %.6f", s->path, x);
		return 0;
	}
	case P_DURATION: {
		uint64_t ms;
		if (get_duration(d, v, where, (uint64_t)s->min, (uint64_t)s->max, &ms) < 0)
			return -1;
		buf_printf(b, "\"%s_ms\": %llu", s->path, (unsigned long long)ms);
		return 0;
	}
	case P_BOOL: {
		int x;
		if (want_scalar(d, v, where) < 0)
			return -1;
		if (parse_bool(scalar(v), &x, why, sizeof why) < 0)
			return cfg_fail(d, v, "%s: \"%s\" %s", where, scalar(v), why);
		buf_printf(b, "\"%s\": %s", s->path, x ? "true" : "false");
		return 0;
	}
	case P_ENUM: {
		const char *c;
		if (get_enum(d, v, where, s->choices, &c) < 0)
			return -1;
		buf_printf(b, "\"%s\": \"%s\"", s->path, c);
		return 0;
	}
	case P_STRING:
		if (want_scalar(d, v, where) < 0)
			return -1;
		if (!*scalar(v))
			return cfg_fail(d, v, "%s must not be empty", where);
		buf_printf(b, "\"%s\": ", s->path);
		json_str(b, scalar(v));
		return 0;
	case P_HOURS: {
		int a, z;
		char from[8], to[8];
		if (want_scalar(d, v, where) < 0)
			return -1;
		const char *t = scalar(v);
		if (strlen(t) != 11 || t[5] != '-')
			return cfg_fail(d, v, "%s: \"%s\" must be HH:MM-HH:MM", where, t);
		memcpy(from, t, 5);
		from[5] = '\0';
		memcpy(to, t + 6, 5);
		to[5] = '\0';
		if (parse_hhmm(from, &a) < 0 || parse_hhmm(to, &z) < 0 || a == z)
			return cfg_fail(d, v, "%s: \"%s\" must be HH:MM-HH:MM with two different times", where, t);
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
	return param_list_json(d, s, type, v, where, b);
}

/* The params object of one rule mapping being built: every key of the
 * kind's table, given or default, in table order. */
struct pctx {
	struct buf b;
	int first;
	yaml_node_t *map; /* the rule's mapping (NULL: an absent alerts: section) */
};

static int param_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *v, const char *where)
{
	struct pctx *pc = obj;
	enum ptype type = *(const enum ptype *)((const struct cfg_hook *)k->more)->arg;
	if (cfg_is_null(v))
		v = NULL;
	if (!v && (k->flags & CFG_REQUIRED))
		return cfg_fail(d, pc->map, "%s is required", where);
	if (!v && !k->def)
		return 0;
	if (!pc->first)
		buf_puts(&pc->b, ", ");
	pc->first = 0;
	if (v)
		return param_json(d, k, type, v, where, &pc->b);
	if (type == P_HOURS)
		buf_puts(&pc->b, k->def);
	else
		buf_printf(&pc->b, "\"%s%s\": %s", k->path, type == P_DURATION ? "_ms" : "", k->def);
	return 0;
}

static int params_json(struct cfg_doc *d, yaml_node_t *map, const struct cfg_key *params, const char *where,
		       char **out)
{
	struct pctx pc = { .first = 1, .map = map };
	buf_init(&pc.b, 0);
	buf_puts(&pc.b, "{");
	if (cfg_bind_values(d, params, &pc, map, where) < 0) {
		buf_release(&pc.b);
		return -1;
	}
	buf_puts(&pc.b, "}");
	*out = buf_detach(&pc.b, NULL);
	return 0;
}

/* ------------------------------------------------------------ rules */

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

/* What every rule mapping may say besides its kind's parameters. */
struct rule_common {
	int enabled;
	int severity;           /* index into severities */
	int recovered_severity; /* alerts.unreachable only */
	uint64_t snooze_ms;
};

#define RC(f) offsetof(struct rule_common, f)
static const struct cfg_key rule_keys[] = {
	{ "name", CFG_IGNORE, 0, NULL, 0, 0, NULL, "the rule's name (1-63 of a-z 0-9 _ -)", 0, NULL, 0, 0 },
	{ "kind", CFG_IGNORE, 0, NULL, 0, 0, NULL, "what the rule detects", 0, NULL, 0, 0 },
	{ "enabled", CFG_BOOL, RC(enabled), NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "severity", CFG_ENUM, RC(severity), NULL, 0, 0, severities, "", 0, NULL, 0, 0 },
	{ "snooze", CFG_DURATION, RC(snooze_ms), NULL, 0, 30 * MS_DAY, NULL, "", 0, NULL, 0, 0 },
	END,
};
static const struct cfg_key alert_rule_keys[] = {
	{ "enabled", CFG_BOOL, RC(enabled), NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "severity", CFG_ENUM, RC(severity), NULL, 0, 0, severities, "", 0, NULL, 0, 0 },
	{ "snooze", CFG_DURATION, RC(snooze_ms), NULL, 0, 30 * MS_DAY, NULL, "", 0, NULL, 0, 0 },
	END,
};
static const struct cfg_key unreachable_rule_keys[] = {
	{ "enabled", CFG_BOOL, RC(enabled), NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "severity", CFG_ENUM, RC(severity), NULL, 0, 0, severities, "", 0, NULL, 0, 0 },
	{ "snooze", CFG_DURATION, RC(snooze_ms), NULL, 0, 30 * MS_DAY, NULL, "", 0, NULL, 0, 0 },
	{ "recovered_severity", CFG_ENUM, RC(recovered_severity), NULL, 0, 0, severities, "", 0, NULL, 0, 0 },
	END,
};
#undef RC

static int severity_index(const char *name)
{
	int i = 0;
	while (severities[i] && strcmp(severities[i], name))
		i++;
	return i;
}

/* One rule row from map (NULL: an absent alerts: sub-section, all
 * defaults): the common keys of table common, then the params. */
static int add_rule_from(struct cfg_doc *d, struct fraud_config *fc, yaml_node_t *map, const char *where,
			 const struct cfg_key *common, const char *name, const char *kind, const char *def_sev,
			 int recovered, uint64_t def_snooze, const struct cfg_key *params)
{
	struct rule_common rc = { 1, severity_index(def_sev), severity_index(def_sev), def_snooze };
	struct fraud_rule_cfg *r = add_rule(fc);
	r->name = xstrdup(name);
	r->kind = xstrdup(kind);
	if (map && cfg_bind_values(d, common, &rc, map, where) < 0)
		return -1;
	r->enabled = rc.enabled;
	r->severity = xstrdup(severities[recovered ? rc.recovered_severity : rc.severity]);
	r->snooze_ms = rc.snooze_ms;
	return params_json(d, map, params, where, &r->params_json);
}

/* fraud.rules: a list of {name, kind, enabled, severity, snooze, <params>} */
static int rules_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *rules, const char *path)
{
	(void)k;
	struct fraud_config *fc = obj;
	if (want_seq(d, rules, path) < 0)
		return -1;
	for (size_t idx = 0; idx < cfg_seq_len(rules); idx++) {
		yaml_node_t *rn = cfg_seq_item(d, rules, idx);
		char where[64];
		snprintf(where, sizeof where, "fraud.rules[%zu]", idx);
		if (!cfg_is_map(rn))
			return cfg_fail(d, rn, "%s must be a mapping", where);
		yaml_node_t *kn = cfg_get(d, rn, "kind"), *nn = cfg_get(d, rn, "name");
		if (cfg_is_null(kn))
			kn = NULL;
		if (cfg_is_null(nn))
			nn = NULL;
		if (!nn)
			return cfg_fail(d, rn, "%s.name is required", where);
		if (want_scalar(d, nn, "name") < 0)
			return -1;
		if (!valid_name(scalar(nn)))
			return cfg_fail(d, nn, "%s.name: \"%s\" must be 1-63 of a-z 0-9 _ -", where, scalar(nn));
		if (name_taken(fc, scalar(nn)))
			return cfg_fail(d, nn, "%s.name: duplicate rule name \"%s\"", where, scalar(nn));
		if (!kn)
			return cfg_fail(d, rn, "%s.kind is required", where);
		if (want_scalar(d, kn, "kind") < 0)
			return -1;
		const struct kind *kd = kinds;
		while (kd->name && strcmp(kd->name, scalar(kn)))
			kd++;
		if (!kd->name) {
			char list[256];
			size_t n = 0;
			for (const struct kind *x = kinds; x->name && n < sizeof list; x++)
				n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", x == kinds ? "" : ", ", x->name);
			return cfg_fail(d, kn, "%s.kind: \"%s\" must be one of %s", where, scalar(kn), list);
		}
		const struct cfg_key *const tables[] = { rule_keys, kd->params, NULL };
		if (cfg_check_keys(d, rn, where, tables) < 0)
			return -1;
		if (add_rule_from(d, fc, rn, where, rule_keys, scalar(nn), kd->name, kd->severity, 0, fc->fraud_snooze_ms,
				  kd->params) < 0)
			return -1;
	}
	return 0;
}

static const struct cfg_hook rules_hook = { rules_bind, NULL, NULL, NULL };

#define F(f) offsetof(struct fraud_config, f)
static const struct cfg_key fraud_keys[] = {
	{ "outbound_contexts", CFG_STRLIST, F(outbound_contexts), NULL, 0, 0, NULL, "dialplan contexts of outbound calls", CFG_NONEMPTY, NULL, 0, F(n_outbound) },
	{ "inbound_contexts", CFG_STRLIST, F(inbound_contexts), NULL, 0, 0, NULL, "dialplan contexts of inbound calls", CFG_NONEMPTY, NULL, 0, F(n_inbound) },
	{ "max_call_duration", CFG_DURATION, F(max_call_ms), NULL, 60000, 2 * MS_DAY, NULL, "longer calls alert", 0, NULL, 0, 0 },
	{ "snooze", CFG_DURATION, F(fraud_snooze_ms), NULL, 0, 30 * MS_DAY, NULL, "the rules' default snooze", 0, NULL, 0, 0 },
	{ "rules", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "fraud rules", 0, &rules_hook, 0, 0 },
	END,
};

/* ------------------------------------------------------------ alerts */

/* One alerts: sub-section as a rule row (absent: defaults). */
struct alert_def {
	const char *name, *kind, *def_sev;
	const struct cfg_key *common;
	const struct cfg_key *params;
	const char *recovered_name; /* unreachable: the recovery's own row, the same switch */
};

static const struct alert_def alert_allowance = { "allowance", "allowance", "warning", alert_rule_keys, allowance_p, NULL };
static const struct alert_def alert_concurrent = { "tenant_concurrent", "tenant_concurrent", "major", alert_rule_keys, no_p, NULL };
static const struct alert_def alert_cps = { "tenant_cps", "tenant_cps", "major", alert_rule_keys, tenant_cps_p, NULL };
static const struct alert_def alert_unreachable = { "endpoint_unreachable", "endpoint_unreachable", "major",
						    unreachable_rule_keys, unreachable_p, "endpoint_recovered" };

static int alert_rule_one(struct cfg_doc *d, struct fraud_config *fc, yaml_node_t *m, const char *where,
			  const struct alert_def *ad, const char *name, const char *def_sev, int recovered)
{
	if (name_taken(fc, name))
		return cfg_fail(d, m ? m : cfg_get(d, cfg_doc_root(d), "alerts"), "%s: a fraud rule is already named \"%s\"",
				where, name);
	return add_rule_from(d, fc, m, where, ad->common, name, name, def_sev, recovered, fc->alerts_snooze_ms,
			     ad->params);
}

static int alert_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *m, const char *where)
{
	struct fraud_config *fc = obj;
	const struct alert_def *ad = ((const struct cfg_hook *)k->more)->arg;
	if (cfg_is_null(m))
		m = NULL;
	if (m) {
		const struct cfg_key *const tables[] = { ad->common, ad->params, NULL };
		if (cfg_check_keys(d, m, where, tables) < 0)
			return -1;
	}
	if (alert_rule_one(d, fc, m, where, ad, ad->name, ad->def_sev, 0) < 0)
		return -1;
	return ad->recovered_name ? alert_rule_one(d, fc, m, where, ad, ad->recovered_name, "info", 1) : 0;
}

static const struct cfg_hook allowance_hook = { alert_bind, NULL, NULL, &alert_allowance };
static const struct cfg_hook concurrent_hook = { alert_bind, NULL, NULL, &alert_concurrent };
static const struct cfg_hook cps_hook = { alert_bind, NULL, NULL, &alert_cps };
static const struct cfg_hook unreachable_hook = { alert_bind, NULL, NULL, &alert_unreachable };

#define T(f) offsetof(struct fraud_tenant_limit_cfg, f)
static const struct cfg_key tenant_limit_keys[] = {
	{ "tenant", CFG_STRING, T(tenant), NULL, 0, 0, NULL, "tenant (\"*\": every tenant without its own entry)", 0, NULL, 0, 0 },
	{ "allowance_minutes", CFG_NUMBER, T(allowance_minutes), "-1", 0, 0, NULL, "minutes per month", 0, NULL, 0, 0 },
	{ "max_concurrent", CFG_INT, T(max_concurrent), "-1", 0, 1000000, NULL, "concurrent calls", 0, NULL, 0, 0 },
	{ "max_cps", CFG_INT, T(max_cps), "-1", 0, 1000000, NULL, "calls per second", 0, NULL, 0, 0 },
	END,
};
#undef T

static const struct cfg_key tenants_list_key = {
	"tenants", CFG_LIST, F(limits), NULL, 0, 0, NULL, "per-tenant limits", 0, tenant_limit_keys,
	sizeof(struct fraud_tenant_limit_cfg), F(nlimits)
};

static int tenants_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *t, const char *where)
{
	(void)k;
	struct fraud_config *fc = obj;
	if (cfg_bind_value(d, &tenants_list_key, fc, t, where) < 0)
		return -1;
	for (size_t i = 0; i < fc->nlimits; i++) {
		yaml_node_t *item = cfg_seq_item(d, t, i), *v = cfg_get(d, item, "tenant");
		if (!v || cfg_is_null(v))
			return cfg_fail(d, item, "%s[%zu].tenant is required", where, i);
	}
	for (size_t i = 1; i < fc->nlimits; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(fc->limits[i].tenant, fc->limits[j].tenant))
				continue;
			char w[96];
			snprintf(w, sizeof w, "%s[%zu].tenant", where, i);
			return cfg_fail(d, cfg_get(d, cfg_seq_item(d, t, i), "tenant"), "%s: tenant \"%s\" is listed twice", w,
					fc->limits[i].tenant);
		}
	}
	return 0;
}

static const struct cfg_hook tenants_hook = { tenants_bind, NULL, NULL, NULL };

static const struct cfg_key alerts_keys[] = {
	{ "snooze", CFG_DURATION, F(alerts_snooze_ms), NULL, 0, 30 * MS_DAY, NULL, "the alert rules' default snooze", 0, NULL, 0, 0 },
	{ "allowance", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "allowance levels", CFG_ALWAYS, &allowance_hook, 0, 0 },
	{ "concurrent", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "tenant concurrency", CFG_ALWAYS, &concurrent_hook, 0, 0 },
	{ "cps", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "tenant calls per second", CFG_ALWAYS, &cps_hook, 0, 0 },
	{ "unreachable", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "endpoints unreachable and recovered", CFG_ALWAYS, &unreachable_hook, 0, 0 },
	{ "tenants", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "per-tenant limits", 0, &tenants_hook, 0, 0 },
	END,
};
#undef F

/* ------------------------------------------------------------ the two sections */

static void fraud_config_init(struct fraud_config *fc)
{
	memset(fc, 0, sizeof *fc);
	fc->max_call_ms = 4 * 3600000;
	fc->fraud_snooze_ms = 3600000;
	fc->alerts_snooze_ms = 3600000;
}

static struct fraud_config *fc_of(const struct cfg_key *k, void *obj)
{
	return (struct fraud_config *)((char *)obj + k->offset);
}

static int fraud_section_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *f, const char *where)
{
	struct fraud_config *fc = fc_of(k, obj);
	if (cfg_bind(d, fraud_keys, fc, f, where) < 0)
		return -1;
	for (size_t i = 0; i < fc->n_inbound; i++)
		for (size_t j = 0; j < fc->n_outbound; j++)
			if (!strcmp(fc->inbound_contexts[i], fc->outbound_contexts[j]))
				return cfg_fail(d, cfg_get(d, f, "inbound_contexts"),
						"fraud: context \"%s\" is both inbound and outbound", fc->inbound_contexts[i]);
	return 0;
}

static void fraud_section_init(const struct cfg_key *k, void *obj)
{
	fraud_config_init(fc_of(k, obj));
}

static void fraud_section_release(const struct cfg_key *k, void *obj)
{
	fraud_config_free(fc_of(k, obj));
}

static int alerts_section_bind(struct cfg_doc *d, const struct cfg_key *k, void *obj, yaml_node_t *a, const char *where)
{
	return cfg_bind(d, alerts_keys, fc_of(k, obj), a, where);
}

const struct cfg_hook fraud_section_hook = { fraud_section_bind, fraud_section_init, fraud_section_release, NULL };
const struct cfg_hook alerts_section_hook = { alerts_section_bind, NULL, NULL, NULL };

/* The two sections alone, other keys of the file left to their owners. */
static const struct cfg_key sections[] = {
	{ "fraud", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "", 0, &fraud_section_hook, 0, 0 },
	{ "alerts", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "", 0, &alerts_section_hook, 0, 0 },
	END,
};

static int load(const char *path, const char *name, const char *yaml, size_t len, struct fraud_config *out, char *err,
		size_t errlen)
{
	fraud_config_init(out);
	struct cfg_doc *d = cfg_doc_load(path, yaml, len, name, CFG_MSG_PATH, NULL, err, errlen);
	if (!d)
		return -1;
	int rc = 0;
	yaml_node_t *root = cfg_doc_root(d);
	if (cfg_is_map(root))
		rc = cfg_bind_values(d, sections, out, root, ""); /* fraud: before alerts: */
	else if (root && !(root->type == YAML_SCALAR_NODE && !*(const char *)root->data.scalar.value))
		rc = cfg_fail(d, root, "the document must be a mapping");
	cfg_doc_free(d);
	return rc;
}

int fraud_config_load_string(const char *name, const char *yaml, size_t len, struct fraud_config *out, char *err,
			     size_t errlen)
{
	return load(NULL, name, yaml, len, out, err, errlen);
}

int fraud_config_load(const char *path, struct fraud_config *out, char *err, size_t errlen)
{
	return load(path, path, NULL, 0, out, err, errlen);
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
