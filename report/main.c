/*
 * cdrflow-report - run report templates against the cdrflow warehouse and
 * write PDF, CSV and XLSX files (docs/report.md).
 */
#ifndef CDRFLOW_DATADIR
#define CDRFLOW_DATADIR "/usr/local/share/cdrflow" /* make sets it from PREFIX */
#endif

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cfg.h"
#include "clock.h"
#include "deliver.h"
#include "delivery_cfg.h"
#include "handoff.h"
#include "exitcode.h"
#include "log.h"
#include "pgconn.h"
#include "rdb.h"
#include "run.h"
#include "tpl.h"
#include "xalloc.h"

struct report_tenant {
	char *tenant;
	char *recipients; /* "a@x, Name <b@y>" */
};

#define T(f) offsetof(struct report_tenant, f)
static const struct cfg_key tenant_keys[] = {
	{ "tenant", CFG_STRING, T(tenant), NULL, 0, 0, NULL, "tenant", CFG_REQUIRED, NULL, 0, 0 },
	{ "recipients", CFG_STRING, T(recipients), NULL, 0, 0, NULL, "comma-separated addresses its reports are mailed to (--each tenant --deliver)", CFG_REQUIRED, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef T

struct report_config {
	char *conninfo;
	char *log_level;
	char *log_file;
	char *templates_dir;
	char *out_dir;
	char *tz;
	int paper;
	char *font_dir;
	struct report_tenant *tenants; /* report.tenants: where each tenant's statements go */
	size_t ntenants;
	struct delivery_cfg dlv; /* report.delivery.* (its conninfo is unused: database.conninfo is above) */
};

static const char *const papers[] = { "a4", "letter", NULL };

#define E(f) offsetof(struct report_config, f)
static const struct cfg_key report_keys[] = {
	{ "database.conninfo", CFG_STRING, E(conninfo), NULL, 0, 0, NULL, "libpq connection string (empty: the PG* environment); keep passwords in PGPASSWORD or ~/.pgpass", 0, NULL, 0, 0 },
	{ "log.level", CFG_STRING, E(log_level), "info", 0, 0, NULL, "error, warn, info or debug", 0, NULL, 0, 0 },
	{ "log.file", CFG_STRING, E(log_file), NULL, 0, 0, NULL, "log file (empty: stderr)", 0, NULL, 0, 0 },
	{ "report.templates_dir", CFG_STRING, E(templates_dir), CDRFLOW_DATADIR "/templates", 0, 0, NULL, "directory of the report templates (NAME.yaml; default: where make install puts them)", 0, NULL, 0, 0 },
	{ "report.out_dir", CFG_STRING, E(out_dir), ".", 0, 0, NULL, "directory the report files are written to", 0, NULL, 0, 0 },
	{ "report.tz", CFG_STRING, E(tz), "UTC", 0, 0, NULL, "time zone of periods and times in reports (IANA name)", 0, NULL, 0, 0 },
	{ "report.paper", CFG_ENUM, E(paper), "a4", 0, 0, papers, "PDF paper size: a4 or letter", 0, NULL, 0, 0 },
	{ "report.font_dir", CFG_STRING, E(font_dir), NULL, 0, 0, NULL, "directory of DejaVuSans.ttf and DejaVuSans-Bold.ttf (empty: /usr/share/fonts/truetype/dejavu)", 0, NULL, 0, 0 },
	{ "report.tenants", CFG_LIST, E(tenants), NULL, 0, 0, NULL, "per tenant: the recipients of its reports (--each tenant --deliver)", 0, tenant_keys, sizeof(struct report_tenant), E(ntenants) },
	{ "spool", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "collector", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "etl", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "cdr", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "tenants", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "numbering", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "rating", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "fraud", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "alerts", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "sources", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "delivery", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef E

/* report_keys plus delivery_cfg_keys' report.delivery.* entries, offsets
 * shifted to where struct report_config embeds struct delivery_cfg. */
static struct cfg_key *config_keys(void)
{
	size_t n = 0, m = 0;
	while (report_keys[n].path)
		n++;
	while (delivery_cfg_keys[m].path)
		m++;
	struct cfg_key *k = xcalloc(n + m + 1, sizeof *k);
	memcpy(k, report_keys, n * sizeof *k);
	for (size_t i = 0; i < m; i++) {
		if (strncmp(delivery_cfg_keys[i].path, "report.delivery.", 16))
			continue; /* database.conninfo and the other programs' sections: report_keys has them */
		k[n] = delivery_cfg_keys[i];
		k[n].offset += offsetof(struct report_config, dlv);
		n++;
	}
	return k; /* ends with a zeroed entry: { NULL } */
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cdrflow-report run TEMPLATE [--param NAME=VALUE]... [--from PERIOD [--to END]]\n"
		"                          [--tz ZONE] [--format pdf,csv,xlsx,html] [--out DIR] [--deliver]\n"
		"                          [--each tenant] [-c FILE] [--db CONNINFO] [--templates DIR]\n"
		"                          [--paper a4|letter]\n"
		"       cdrflow-report list [-c FILE] [--templates DIR]\n"
		"       cdrflow-report retry [-c FILE]\n"
		"       cdrflow-report alerts [--limit N] [-c FILE] [--db CONNINFO]\n"
		"\n"
		"Runs a report template (templates/NAME.yaml, see docs/report.md) against the\n"
		"cdrflow warehouse and writes <template>-<from>-<to>.pdf/.xlsx and one CSV per\n"
		"section into --out; prints each written path on stdout.  All formats come from\n"
		"the same query results, read in one snapshot.\n"
		"\n"
		"commands:\n"
		"  run TEMPLATE       build the report (TEMPLATE: a name in the templates\n"
		"                     directory, or a path to a .yaml file)\n"
		"  list               list the templates with their parameters\n"
		"  retry              send what the delivery spool holds (mail and webhook)\n"
		"  alerts             post the undelivered rows of the alert table to the\n"
		"                     webhook (key alert-<id>), then mark them delivered\n"
		"\n"
		"options:\n"
		"  -p, --param NAME=VALUE  a template parameter (repeatable); sent to the\n"
		"                     database as a bind parameter, never pasted into SQL\n"
		"  --from PERIOD      today, yesterday, last-7-days, this-month, last-month,\n"
		"                     YYYY-MM, YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD, or a date/time\n"
		"                     start with --to (default: the template's period, else\n"
		"                     yesterday)\n"
		"  --to END           end of the period: a date (inclusive) or a time (exclusive)\n"
		"  --tz ZONE          time zone of the period and of times shown (default: UTC)\n"
		"  -f, --format LIST  comma-separated: pdf, csv, xlsx, html (default: the\n"
		"                     template's)\n"
		"  --each tenant      run the template once per tenant (its tenant parameter);\n"
		"                     with --deliver each goes to report.tenants[].recipients\n"
		"  -o, --out DIR      output directory (default: report.out_dir, else .)\n"
		"  --deliver          deliver the files as the template's delivery section says\n"
		"                     (report.delivery.* in the configuration: server, URL, spool)\n"
		"  --recipients LIST  with --deliver: mail these (comma-separated) instead of the\n"
		"                     template's recipients\n"
		"  --limit N          alerts: at most N rows (default: all)\n"
		"  --paper SIZE       PDF paper: a4 or letter (default: report.paper)\n"
		"  --templates DIR    templates directory (default: report.templates_dir)\n"
		"  -c, --config FILE  YAML configuration (database and report sections)\n"
		"  -d, --db CONNINFO  libpq connection string without a password (default: the\n"
		"                     PG* environment; passwords go in PGPASSWORD or ~/.pgpass)\n"
		"  -v, --verbose      log debug messages\n"
		"  -q, --quiet        log errors only\n"
		"  -h, --help         show this help and exit\n"
		"  -V, --version      show the program version and exit\n"
		"\n"
		"exit status: 0 ok, 64 usage (bad option, period or parameter), 65 bad template,\n"
		"66 template or config file not found, 69 database unreachable (retry later),\n"
		"70 internal error, 73 cannot create output, 74 write error, 78 bad configuration\n"
		"or a database that lacks a relation the template needs.\n"
		"Delivery (--deliver, retry, alerts): 0 delivered, 69 queued in the spool for\n"
		"'retry' (the report files stay), 77 credentials refused (queued), 65 rejected\n"
		"for good (kept in the spool's dead/), 74 the spool failed, 75 another run holds\n"
		"the spool, 78 delivery not configured or a secret missing.\n");
}

enum { OPT_FROM = 256, OPT_TO, OPT_TZ, OPT_DELIVER, OPT_PAPER, OPT_TEMPLATES, OPT_RECIPIENTS, OPT_LIMIT, OPT_EACH };

static const struct option long_options[] = {
	{ "param", required_argument, NULL, 'p' },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "tz", required_argument, NULL, OPT_TZ },
	{ "format", required_argument, NULL, 'f' },
	{ "out", required_argument, NULL, 'o' },
	{ "deliver", no_argument, NULL, OPT_DELIVER },
	{ "recipients", required_argument, NULL, OPT_RECIPIENTS },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "each", required_argument, NULL, OPT_EACH },
	{ "paper", required_argument, NULL, OPT_PAPER },
	{ "templates", required_argument, NULL, OPT_TEMPLATES },
	{ "config", required_argument, NULL, 'c' },
	{ "db", required_argument, NULL, 'd' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* Find a template by name or path; path and name are malloc'ed. */
static int locate(const char *dir, const char *arg, char **path, char **name)
{
	struct stat st;
	if (strchr(arg, '/') || ends_with(arg, ".yaml")) {
		*path = xstrdup(arg);
		const char *b = strrchr(arg, '/');
		b = b ? b + 1 : arg;
		*name = ends_with(b, ".yaml") ? xstrndup(b, strlen(b) - 5) : xstrdup(b);
	} else {
		for (const char *c = arg; *c; c++)
			if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '_'))
				return -1;
		*path = xasprintf("%s/%s.yaml", dir, arg);
		*name = xstrdup(arg);
	}
	if (stat(*path, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(*path);
		free(*name);
		*path = *name = NULL;
		return -1;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_templates(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		log_error("cannot open the templates directory \"%s\": %s", dir, strerror(errno));
		return EXIT_NOINPUT;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !ends_with(e->d_name, ".yaml"))
			continue;
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrndup(e->d_name, strlen(e->d_name) - 5);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s.yaml", dir, names[i]), err[512];
		struct tpl *t = tpl_load(path, names[i], err, sizeof err);
		if (!t) {
			log_error("%s", err);
			rc = EXIT_DATAERR;
		} else {
			printf("%s: %s\n", t->name, t->title);
			printf("  period: %s; formats:%s%s%s\n", t->period ? t->period : "yesterday",
			       t->formats & TPL_FMT_PDF ? " pdf" : "", t->formats & TPL_FMT_CSV ? " csv" : "",
			       t->formats & TPL_FMT_XLSX ? " xlsx" : "");
			for (size_t k = 0; k < t->nparams; k++) {
				const struct tpl_param *p = &t->params[k];
				printf("  --param %s=%s", p->name, tpl_ptype_name(p->type));
				if (p->required)
					printf(" (required)");
				else if (p->def)
					printf(" (default %s)", p->def);
				else
					printf(" (optional)");
				if (*p->help)
					printf("  %s", p->help);
				if (p->choices) {
					printf(" [");
					for (size_t j = 0; p->choices[j]; j++)
						printf("%s%s", j ? "|" : "", p->choices[j]);
					printf("]");
				}
				printf("\n");
			}
			tpl_free(t);
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return rc;
}

static int parse_limit(const char *s, size_t *out)
{
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno || e == s || *e || *s == '-' || v > SIZE_MAX)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* `retry` and `alerts`: the delivery spool and the alert table. */
static int run_delivery_cmd(const char *cmd, struct report_config *cfg, const char *db, const char *zone,
			    size_t limit)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		return EXIT_SOFTWARE;
	}
	int rc;
	if (!strcmp(cmd, "retry")) {
		rc = report_retry(&cfg->dlv, stdout);
	} else {
		PGconn *c = NULL;
		char err[1024];
		rc = rdb_connect(db ? db : cfg->conninfo, zone, &c, err, sizeof err);
		if (rc != EXIT_OK)
			log_error("%s", err);
		else
			rc = report_alerts(c, &cfg->dlv, limit, stdout);
		if (c)
			PQfinish(c);
	}
	curl_global_cleanup();
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_IOERR;
	return rc;
}

/* The command line, parsed. */
struct cli {
	const char *cfgpath, *db, *out, *tz, *paper, *tdir, *fmt;
	const char *from, *to, *recipients, *limit_arg, *each;
	int deliver, verbose, quiet;
	char **pnames, **pvalues;
	size_t np, limit;
	unsigned formats;
	const char *cmd, *template_arg;
};

static void cli_free_params(struct cli *o)
{
	for (size_t i = 0; i < o->np; i++) {
		free(o->pnames[i]);
		free(o->pvalues[i]);
	}
	free(o->pnames);
	free(o->pvalues);
	o->pnames = o->pvalues = NULL;
	o->np = 0;
}

static void cli_add_param(struct cli *o, const char *name, size_t nlen, const char *value)
{
	o->pnames = xrealloc(o->pnames, (o->np + 1) * sizeof *o->pnames);
	o->pvalues = xrealloc(o->pvalues, (o->np + 1) * sizeof *o->pvalues);
	o->pnames[o->np] = xstrndup(name, nlen);
	o->pvalues[o->np] = xstrdup(value);
	o->np++;
}

/* Parse argv into o.  -1: keep going; else the exit code (--help, errors). */
static int parse_cli(int argc, char **argv, struct cli *o)
{
	int c;
	memset(o, 0, sizeof *o);
	while ((c = getopt_long(argc, argv, "p:f:o:c:d:vqhV", long_options, NULL)) != -1) {
		switch (c) {
		case 'p': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return log_usage_error("--param \"%s\": want NAME=VALUE", optarg);
			cli_add_param(o, optarg, (size_t)(eq - optarg), eq + 1);
			break;
		}
		case OPT_FROM: o->from = optarg; break;
		case OPT_TO: o->to = optarg; break;
		case OPT_TZ: o->tz = optarg; break;
		case 'f': o->fmt = optarg; break;
		case 'o': o->out = optarg; break;
		case OPT_DELIVER: o->deliver = 1; break;
		case OPT_RECIPIENTS: o->recipients = optarg; break;
		case OPT_LIMIT: o->limit_arg = optarg; break;
		case OPT_EACH: o->each = optarg; break;
		case OPT_PAPER: o->paper = optarg; break;
		case OPT_TEMPLATES: o->tdir = optarg; break;
		case 'c': o->cfgpath = optarg; break;
		case 'd': o->db = optarg; break;
		case 'v': o->verbose = 1; break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		case 'V': printf("cdrflow-report %s\n", CDRFLOW_VERSION); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		default: fprintf(stderr, "Try 'cdrflow-report --help' for more information.\n"); return EXIT_USAGE;
		}
	}
	o->cmd = optind < argc ? argv[optind] : NULL;
	int is_run = o->cmd && !strcmp(o->cmd, "run"), is_list = o->cmd && !strcmp(o->cmd, "list");
	int is_dlv = o->cmd && (!strcmp(o->cmd, "retry") || !strcmp(o->cmd, "alerts"));
	char err[256];
	if (!o->cmd)
		return log_usage_error("%s", "a command is required (run, list, retry or alerts)");
	if (!is_run && !is_list && !is_dlv)
		return log_usage_error("unknown command \"%s\" (run, list, retry or alerts)", o->cmd);
	if (is_run && optind + 2 != argc)
		return log_usage_error("%s", optind + 2 > argc ? "run needs a TEMPLATE" : "run takes one TEMPLATE");
	if (!is_run && optind + 1 != argc)
		return log_usage_error("unexpected argument \"%s\"", argv[optind + 1]);
	o->template_arg = is_run ? argv[optind + 1] : NULL;
	if (o->to && !o->from)
		return log_usage_error("%s", "--to needs --from");
	if (o->fmt && tpl_parse_formats(o->fmt, &o->formats, err, sizeof err) < 0)
		return log_usage_error("--format: %s", err);
	if (o->paper && strcmp(o->paper, "a4") && strcmp(o->paper, "letter"))
		return log_usage_error("--paper \"%s\": want a4 or letter", o->paper);
	if (o->db && conninfo_has_password(o->db))
		return log_usage_error("%s",
				   "--db must not carry a password (it would show in ps): use PGPASSWORD or ~/.pgpass");
	if (o->deliver && !report_deliver_available())
		return log_usage_error("%s", "--deliver: delivery (mail, webhook) is not built into this cdrflow-report");
	if (o->recipients && !o->deliver)
		return log_usage_error("%s", "--recipients needs --deliver");
	if (o->each && strcmp(o->each, "tenant"))
		return log_usage_error("--each \"%s\": only --each tenant is supported", o->each);
	if (o->each && !is_run)
		return log_usage_error("%s", "--each is an option of run");
	for (size_t i = 0; o->each && i < o->np; i++)
		if (!strcmp(o->pnames[i], o->each))
			return log_usage_error("--each %s and --param of the same name", o->each);
	if (o->limit_arg && strcmp(o->cmd, "alerts"))
		return log_usage_error("%s", "--limit is an option of alerts");
	if (o->limit_arg && parse_limit(o->limit_arg, &o->limit) < 0)
		return log_usage_error("--limit \"%s\": want a number of alerts (0: all)", o->limit_arg);
	return -1;
}

/* Load the configuration and set up logging; EXIT_OK or an exit code (logged). */
static int load_config(const struct cli *o, struct cfg_key *keys, struct report_config *cfg)
{
	char err[1024];
	int missing = 0;
	memset(cfg, 0, sizeof *cfg);
	if (cfg_load(keys, cfg, o->cfgpath, &missing, err, sizeof err) < 0) {
		log_error("%s", err);
		return missing ? EXIT_NOINPUT : EXIT_CONFIG;
	}
	/* borrowed (the key table owns database.conninfo once): retry marks alerts there */
	cfg->dlv.conninfo = o->db ? (char *)o->db : cfg->conninfo;
	int lvl = log_level_parse(cfg->log_level);
	if (lvl < 0) {
		log_error("%s: log.level \"%s\" must be one of error, warn, info, debug",
			  o->cfgpath ? o->cfgpath : "configuration", cfg->log_level);
		return EXIT_CONFIG;
	}
	log_set_level(o->verbose ? LOG_DEBUG : o->quiet ? LOG_ERROR : (enum log_level)lvl);
	if (*cfg->log_file && log_open_file(cfg->log_file) < 0) {
		log_error("cannot open log file \"%s\": %s", cfg->log_file, strerror(errno));
		return EXIT_CONFIG;
	}
	return EXIT_OK;
}

/* The recipients of tenant's reports (report.tenants), or NULL. */
static const char *tenant_recipients(const struct report_config *cfg, const char *tenant)
{
	for (size_t i = 0; i < cfg->ntenants; i++)
		if (!strcmp(cfg->tenants[i].tenant, tenant) && cfg->tenants[i].recipients && *cfg->tenants[i].recipients)
			return cfg->tenants[i].recipients;
	return NULL;
}

/* One run of t with the CLI's parameters plus extra_name=extra_value (NULL:
 * none), then, with --deliver, its delivery to recipients (NULL: the
 * template's).  Returns the run's exit code, else delivery's. */
static int run_one(PGconn *c, const struct tpl *t, const struct cli *o, const struct report_config *cfg,
		   const char *zone, const char *extra_name, const char *extra_value, const char *recipients)
{
	char err[1024];
	struct cli p = *o; /* the parameters of this run */
	p.pnames = xcalloc(o->np + 1, sizeof *p.pnames);
	p.pvalues = xcalloc(o->np + 1, sizeof *p.pvalues);
	for (size_t i = 0; i < o->np; i++) {
		p.pnames[i] = o->pnames[i];
		p.pvalues[i] = o->pvalues[i];
	}
	if (extra_name) {
		p.pnames[p.np] = (char *)extra_name;
		p.pvalues[p.np++] = (char *)extra_value;
	}
	struct report_delivery rd;
	memset(&rd, 0, sizeof rd);
	int rc = EXIT_OK;
	if (o->deliver) { /* fail on a bad delivery set-up before the report is built */
		struct deliver_spec spec;
		if (handoff_spec(&t->delivery, &spec, err, sizeof err) < 0) {
			log_error("%s: delivery.formats: %s", t->name, err);
			rc = EXIT_DATAERR;
		} else {
			rc = report_deliver_prepare(&rd, &cfg->dlv, &spec, recipients, err, sizeof err);
			if (rc != EXIT_OK)
				log_error("--deliver: %s", err);
		}
	}
	struct run_opts ro = {
		.out_dir = o->out ? o->out : cfg->out_dir,
		.formats = o->formats,
		.paper = o->paper ? (strcmp(o->paper, "letter") ? PDF_A4 : PDF_LETTER)
				  : (cfg->paper == 1 ? PDF_LETTER : PDF_A4),
		.font_dir = cfg->font_dir,
		.tz = zone,
		.from = o->from,
		.to = o->to,
		.param_names = p.pnames,
		.param_values = p.pvalues,
		.nparams = p.np,
	};
	struct run_result res;
	double t0 = clock_mono_s();
	memset(&res, 0, sizeof res);
	if (rc == EXIT_OK) {
		rc = report_run(c, t, &ro, &res, err, sizeof err);
		if (rc != EXIT_OK)
			log_error("%s", err);
	}
	double t1 = clock_mono_s();
	if (rc == EXIT_OK) {
		for (size_t i = 0; i < res.nfiles; i++)
			printf("%s\n", res.files[i].path);
		double s = t1 - t0;
		log_info("%s %s%s%s: %zu files, %llu table rows in %.3f s (%.0f rows/s)", t->name, res.period.display,
			 extra_value ? " " : "", extra_value ? extra_value : "", res.nfiles, res.rows, s,
			 s > 0 ? (double)res.rows / s : 0.0);
		if (fflush(stdout) != 0)
			rc = EXIT_IOERR;
		if (rc == EXIT_OK && o->deliver) {
			struct report_run_info info = {
				.template_name = t->name,
				.title = t->title,
				.period = res.period.display,
				.from = res.period.from,
				.to = res.period.to,
				.tz = zone,
				.param_names = p.pnames,
				.param_values = p.pvalues,
				.nparams = p.np,
			};
			/* the errors are logged where they happen; the files stay on disk either way */
			rc = handoff_deliver(&rd, &info, &res, err, sizeof err);
		}
		run_result_release(&res);
	}
	report_deliver_release(&rd);
	free(p.pnames);
	free(p.pvalues);
	return rc;
}

/* --each tenant: every tenant's report in one run; with --deliver each to
 * its own report.tenants[].recipients (all checked before any is built).
 * The worst exit code of the runs. */
static int run_each(PGconn *c, const struct tpl *t, const struct cli *o, const struct report_config *cfg,
		    const char *zone)
{
	char err[1024];
	if (!tpl_find_param(t, o->each)) {
		log_error("--each %s: template %s has no parameter %s", o->each, t->name, o->each);
		return EXIT_USAGE;
	}
	struct run_opts ro = { .tz = zone, .from = o->from, .to = o->to };
	char **tenants;
	size_t n;
	int rc = report_each_tenants(c, t, &ro, &tenants, &n, err, sizeof err);
	if (rc != EXIT_OK) {
		log_error("%s", err);
		return rc;
	}
	if (n == 0)
		log_warn("--each tenant: no tenant in this period: nothing to write");
	for (size_t i = 0; i < n && o->deliver && !o->recipients; i++)
		if (!tenant_recipients(cfg, tenants[i])) {
			log_error("--each tenant --deliver: tenant %s has no report.tenants[].recipients: nothing was sent",
				  tenants[i]);
			report_each_free(tenants, n);
			return EXIT_CONFIG;
		}
	int worst = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		const char *to = o->recipients ? o->recipients : o->deliver ? tenant_recipients(cfg, tenants[i]) : NULL;
		int r = run_one(c, t, o, cfg, zone, o->each, tenants[i], to);
		if (r != EXIT_OK && worst == EXIT_OK)
			worst = r;
	}
	report_each_free(tenants, n);
	return worst;
}

/* `run TEMPLATE`: find and load it, connect, run it (once or per tenant). */
static int run_command(const struct cli *o, const struct report_config *cfg, const char *tdir)
{
	char err[1024];
	char *tpath, *tname;
	if (locate(tdir, o->template_arg, &tpath, &tname) < 0) {
		log_error("template \"%s\" not found (looked in \"%s\"; 'cdrflow-report list' shows them)",
			  o->template_arg, tdir);
		return EXIT_NOINPUT;
	}
	struct tpl *t = tpl_load(tpath, tname, err, sizeof err);
	free(tpath);
	free(tname);
	if (!t) {
		log_error("%s", err);
		return EXIT_DATAERR;
	}
	int rc = EXIT_OK, curl_up = 0;
	if (o->deliver && !t->has_delivery) {
		log_error("--deliver: template %s has no delivery section", t->name);
		rc = EXIT_USAGE;
	} else if (o->deliver && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		rc = EXIT_SOFTWARE;
	} else {
		curl_up = o->deliver;
	}
	PGconn *c = NULL;
	const char *zone = o->tz ? o->tz : cfg->tz;
	if (rc == EXIT_OK) {
		rc = rdb_connect(o->db ? o->db : cfg->conninfo, zone, &c, err, sizeof err);
		if (rc != EXIT_OK)
			log_error("%s", err);
	}
	if (rc == EXIT_OK)
		rc = o->each ? run_each(c, t, o, cfg, zone) : run_one(c, t, o, cfg, zone, NULL, NULL, o->recipients);
	if (c)
		PQfinish(c);
	if (curl_up)
		curl_global_cleanup();
	tpl_free(t);
	return rc;
}

int main(int argc, char **argv)
{
	log_init("cdrflow-report");
	log_set_cli(1);
	struct cli o;
	int rc = parse_cli(argc, argv, &o);
	if (rc >= 0) {
		cli_free_params(&o);
		return rc;
	}
	struct cfg_key *keys = config_keys();
	struct report_config cfg;
	rc = load_config(&o, keys, &cfg);
	const char *tdir = o.tdir ? o.tdir : cfg.templates_dir;
	if (rc == EXIT_OK && !strcmp(o.cmd, "list")) {
		rc = list_templates(tdir);
		if (fflush(stdout) != 0 && rc == EXIT_OK)
			rc = EXIT_IOERR;
	} else if (rc == EXIT_OK && (!strcmp(o.cmd, "retry") || !strcmp(o.cmd, "alerts"))) {
		rc = run_delivery_cmd(o.cmd, &cfg, o.db, o.tz ? o.tz : cfg.tz, o.limit);
	} else if (rc == EXIT_OK) {
		rc = run_command(&o, &cfg, tdir);
	}
	cfg.dlv.conninfo = NULL;
	cfg_free(keys, &cfg);
	free(keys);
	cli_free_params(&o);
	return rc;
}
