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
#include "deliver.h"
#include "delivery_cfg.h"
#include "exitcode.h"
#include "log.h"
#include "pgconn.h"
#include "rdb.h"
#include "run.h"
#include "tpl.h"
#include "xalloc.h"

struct report_config {
	char *conninfo;
	char *log_level;
	char *log_file;
	char *templates_dir;
	char *out_dir;
	char *tz;
	int paper;
	char *font_dir;
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
	{ "spool", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "collector", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "etl", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "cdr", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "tenants", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "numbering", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "rating", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "fraud", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "alerts", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
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
		"                          [--tz ZONE] [--format pdf,csv,xlsx] [--out DIR] [--deliver]\n"
		"                          [-c FILE] [--db CONNINFO] [--templates DIR] [--paper a4|letter]\n"
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
		"  -f, --format LIST  comma-separated: pdf, csv, xlsx (default: the template's)\n"
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

enum { OPT_FROM = 256, OPT_TO, OPT_TZ, OPT_DELIVER, OPT_PAPER, OPT_TEMPLATES, OPT_RECIPIENTS, OPT_LIMIT };

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

int main(int argc, char **argv)
{
	log_init("cdrflow-report");
	log_set_cli(1);
	const char *cfgpath = NULL, *db = NULL, *out = NULL, *tz = NULL, *paper = NULL, *tdir = NULL, *fmt = NULL;
	const char *from = NULL, *to = NULL, *recipients = NULL, *limit_arg = NULL;
	int deliver = 0, verbose = 0, quiet = 0, o;
	char **pnames = NULL, **pvalues = NULL;
	size_t np = 0, limit = 0;
	while ((o = getopt_long(argc, argv, "p:f:o:c:d:vqhV", long_options, NULL)) != -1) {
		switch (o) {
		case 'p': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				for (size_t i = 0; i < np; i++) {
					free(pnames[i]);
					free(pvalues[i]);
				}
				free(pnames);
				free(pvalues);
				return log_usage_error("--param \"%s\": want NAME=VALUE", optarg);
			}
			pnames = xrealloc(pnames, (np + 1) * sizeof *pnames);
			pvalues = xrealloc(pvalues, (np + 1) * sizeof *pvalues);
			pnames[np] = xstrndup(optarg, (size_t)(eq - optarg));
			pvalues[np] = xstrdup(eq + 1);
			np++;
			break;
		}
		case OPT_FROM: from = optarg; break;
		case OPT_TO: to = optarg; break;
		case OPT_TZ: tz = optarg; break;
		case 'f': fmt = optarg; break;
		case 'o': out = optarg; break;
		case OPT_DELIVER: deliver = 1; break;
		case OPT_RECIPIENTS: recipients = optarg; break;
		case OPT_LIMIT: limit_arg = optarg; break;
		case OPT_PAPER: paper = optarg; break;
		case OPT_TEMPLATES: tdir = optarg; break;
		case 'c': cfgpath = optarg; break;
		case 'd': db = optarg; break;
		case 'v': verbose = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		case 'V': printf("cdrflow-report %s\n", CDRFLOW_VERSION); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		default: fprintf(stderr, "Try 'cdrflow-report --help' for more information.\n"); return EXIT_USAGE;
		}
	}
	int rc = EXIT_OK;
	const char *cmd = optind < argc ? argv[optind] : NULL;
	unsigned formats = 0;
	char err[1024];
	int is_run = cmd && !strcmp(cmd, "run"), is_list = cmd && !strcmp(cmd, "list");
	int is_dlv = cmd && (!strcmp(cmd, "retry") || !strcmp(cmd, "alerts"));
	if (!cmd)
		rc = log_usage_error("%s", "a command is required (run, list, retry or alerts)");
	else if (!is_run && !is_list && !is_dlv)
		rc = log_usage_error("unknown command \"%s\" (run, list, retry or alerts)", cmd);
	else if (is_run && optind + 2 != argc)
		rc = log_usage_error("%s", optind + 2 > argc ? "run needs a TEMPLATE" : "run takes one TEMPLATE");
	else if (!is_run && optind + 1 != argc)
		rc = log_usage_error("unexpected argument \"%s\"", argv[optind + 1]);
	else if (to && !from)
		rc = log_usage_error("%s", "--to needs --from");
	else if (fmt && tpl_parse_formats(fmt, &formats, err, sizeof err) < 0)
		rc = log_usage_error("--format: %s", err);
	else if (paper && strcmp(paper, "a4") && strcmp(paper, "letter"))
		rc = log_usage_error("--paper \"%s\": want a4 or letter", paper);
	else if (db && conninfo_has_password(db))
		rc = log_usage_error("%s", CONNINFO_PASSWORD_REFUSED);
	else if (deliver && !report_deliver_available())
		rc = log_usage_error("%s", "--deliver: delivery (mail, webhook) is not built into this cdrflow-report");
	else if (recipients && !deliver)
		rc = log_usage_error("%s", "--recipients needs --deliver");
	else if (limit_arg && strcmp(cmd, "alerts"))
		rc = log_usage_error("%s", "--limit is an option of alerts");
	else if (limit_arg && parse_limit(limit_arg, &limit) < 0)
		rc = log_usage_error("--limit \"%s\": want a number of alerts (0: all)", limit_arg);
	if (rc != EXIT_OK)
		goto out_params;

	struct cfg_key *keys = config_keys();
	struct report_config cfg;
	memset(&cfg, 0, sizeof cfg);
	int missing = 0;
	if (cfg_load(keys, &cfg, cfgpath, &missing, err, sizeof err) < 0) {
		log_error("%s", err);
		rc = missing ? EXIT_NOINPUT : EXIT_CONFIG;
		goto out_cfg;
	}
	/* borrowed (the key table owns database.conninfo once): retry marks alerts there */
	cfg.dlv.conninfo = db ? (char *)db : cfg.conninfo;
	int lvl = log_level_parse(cfg.log_level);
	if (lvl < 0) {
		log_error("%s: log.level \"%s\" must be one of error, warn, info, debug", cfgpath ? cfgpath : "configuration",
			  cfg.log_level);
		rc = EXIT_CONFIG;
		goto out_cfg;
	}
	log_set_level(verbose ? LOG_DEBUG : quiet ? LOG_ERROR : (enum log_level)lvl);
	if (*cfg.log_file && log_open_file(cfg.log_file) < 0) {
		log_error("cannot open log file \"%s\": %s", cfg.log_file, strerror(errno));
		rc = EXIT_CONFIG;
		goto out_cfg;
	}
	if (!tdir)
		tdir = cfg.templates_dir;

	if (is_list) {
		rc = list_templates(tdir);
		if (fflush(stdout) != 0 && rc == EXIT_OK)
			rc = EXIT_IOERR;
		goto out_cfg;
	}
	if (is_dlv) {
		rc = run_delivery_cmd(cmd, &cfg, db, tz ? tz : cfg.tz, limit);
		goto out_cfg;
	}

	char *tpath, *tname;
	if (locate(tdir, argv[optind + 1], &tpath, &tname) < 0) {
		log_error("template \"%s\" not found (looked in \"%s\"; 'cdrflow-report list' shows them)", argv[optind + 1],
			  tdir);
		rc = EXIT_NOINPUT;
		goto out_cfg;
	}
	struct tpl *t = tpl_load(tpath, tname, err, sizeof err);
	free(tpath);
	free(tname);
	if (!t) {
		log_error("%s", err);
		rc = EXIT_DATAERR;
		goto out_cfg;
	}
	struct report_delivery rd;
	memset(&rd, 0, sizeof rd);
	int curl_up = 0;
	if (deliver && !t->has_delivery) {
		log_error("--deliver: template %s has no delivery section", t->name);
		rc = EXIT_USAGE;
		goto out_tpl;
	}
	if (deliver) { /* fail on a bad delivery set-up before the report is built */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_error("cannot initialise libcurl");
			rc = EXIT_SOFTWARE;
			goto out_tpl;
		}
		curl_up = 1;
		rc = report_deliver_prepare(&rd, &cfg.dlv, &t->delivery, recipients, err, sizeof err);
		if (rc != EXIT_OK) {
			log_error("--deliver: %s", err);
			goto out_tpl;
		}
	}
	PGconn *c = NULL;
	const char *zone = tz ? tz : cfg.tz;
	rc = rdb_connect(db ? db : cfg.conninfo, zone, &c, err, sizeof err);
	if (rc != EXIT_OK) {
		log_error("%s", err);
		goto out_tpl;
	}
	struct run_opts ro = {
		.out_dir = out ? out : cfg.out_dir,
		.formats = formats,
		.paper = paper ? (strcmp(paper, "letter") ? PDF_A4 : PDF_LETTER) : (cfg.paper == 1 ? PDF_LETTER : PDF_A4),
		.font_dir = cfg.font_dir,
		.tz = zone,
		.from = from,
		.to = to,
		.param_names = pnames,
		.param_values = pvalues,
		.nparams = np,
	};
	struct run_result res;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = report_run(c, t, &ro, &res, err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	PQfinish(c);
	if (rc != EXIT_OK) {
		log_error("%s", err);
	} else {
		for (size_t i = 0; i < res.nfiles; i++)
			printf("%s\n", res.files[i].path);
		double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		log_info("%s %s: %zu files, %llu table rows in %.3f s (%.0f rows/s)", t->name, res.period.display, res.nfiles,
			 res.rows, s, s > 0 ? (double)res.rows / s : 0.0);
		if (fflush(stdout) != 0)
			rc = EXIT_IOERR;
		if (rc == EXIT_OK && deliver) {
			struct report_run_info info = {
				.template_name = t->name,
				.title = t->title,
				.period = res.period.display,
				.from = res.period.from,
				.to = res.period.to,
				.tz = zone,
				.param_names = pnames,
				.param_values = pvalues,
				.nparams = np,
				.kpis = res.kpis,
				.nkpis = res.nkpis,
			};
			/* the errors are logged where they happen; the files stay on disk either way */
			rc = report_deliver(&rd, &info, res.files, res.nfiles, err, sizeof err);
		}
		run_result_release(&res);
	}
out_tpl:
	report_deliver_release(&rd);
	if (curl_up)
		curl_global_cleanup();
	tpl_free(t);
out_cfg:
	cfg.dlv.conninfo = NULL;
	cfg_free(keys, &cfg);
	free(keys);
out_params:
	for (size_t i = 0; i < np; i++) {
		free(pnames[i]);
		free(pvalues[i]);
	}
	free(pnames);
	free(pvalues);
	return rc;
}
