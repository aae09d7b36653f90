/*
 * cdrflow-query - the analyst's command line: calls, stats, flow.
 * See docs/query.md and cdrflow-query(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "caveatdb.h"
#include "log.h"
#include "period.h"
#include "pgconn.h"
#include "qdb.h"
#include "query.h"
#include "strparse.h"
#include "xalloc.h"

static void usage(FILE *out)
{
	fputs("usage: cdrflow-query calls [PERIOD] [--src NUM] [--dst PREFIX] [--dst-raw PREFIX]\n"
	      "                           [--disposition D] [--tenant T] [--trunk T] [--min-billsec N]\n"
	      "                           [--legs] [--format F] [--limit N] [--explain]\n"
	      "       cdrflow-query stats --by hour|day|tenant|trunk|destination [PERIOD] [--tenant T]\n"
	      "                           [--trunk T] [--source auto|rollup|base] [--format F] [--explain]\n"
	      "       cdrflow-query flow LINKEDID [--node NAME] [--all-events] [--explain]\n"
	      "  PERIOD: --from TIME [--to TIME] | --period NAME, in --tz ZONE\n"
	      "\n"
	      "Reads the cdrflow warehouse: calls lists one line per call (table call) or\n"
	      "per leg (--legs, table cdr); stats sums the metrics of docs/metrics.md (calls,\n"
	      "attempts, answered, ASR, ACD, billsec, costs) per hour, day, tenant, trunk or destination country (from the\n"
	      "hourly and quarter-hour rollups when they exist, else from the legs); flow draws a call's\n"
	      "CEL events as a ladder, one column per channel.  Results are streamed.\n"
	      "\n"
	      "options:\n"
	      "      --from TIME        the period, as cdrflow-report's --from: a date\n"
	      "                         (2026-11-01: that day), a month (2026-11), a range\n"
	      "                         (2026-11-01..2026-11-07, both days), a name (as\n"
	      "                         --period) or a time (\"2026-11-01 08:00\", in --tz\n"
	      "                         unless it carries an offset; until now without --to)\n"
	      "      --to TIME          end, with a date or time --from: a date is included\n"
	      "                         (its whole day), a time is exclusive\n"
	      "      --period NAME      today, yesterday, last-7-days (the 7 days before today),\n"
	      "                         this-month or last-month (or any --from form), in --tz\n"
	      "                         (default: today)\n"
	      "      --tz ZONE          time zone of the period and of the times shown\n"
	      "                         (default: UTC), e.g. Europe/Berlin\n"
	      "      --src NUM          calling number; a trailing * makes it a prefix\n"
	      "      --dst PREFIX       dialled number prefix in E.164 (4420, +4420 or +4420*)\n"
	      "      --dst-raw PREFIX   prefix of the dialled string as Asterisk wrote it (cdr.dst)\n"
	      "      --disposition D    answered, busy, no_answer, failed or congestion\n"
	      "      --tenant T         tenant name\n"
	      "      --trunk T          a leg's channel or dstchannel is on trunk T (e.g. SIP/loop)\n"
	      "      --min-billsec N    billed seconds at least N\n"
	      "      --legs             calls: one line per leg (cdr) instead of per call\n"
	      "      --by KEY           stats: hour, day, tenant, trunk or destination\n"
	      "      --source S         stats: auto (default), rollup or base\n"
	      "      --all-events       flow: show every CEL event, not only the call's milestones\n"
	      "      --node NAME        flow: the node (PBX) of the linkedid; needed when several\n"
	      "                         nodes have events with it (nodes are never mixed)\n"
	      "  -f, --format F         table (default), csv (RFC 4180), json (one object per\n"
	      "                         line) or json-array\n"
	      "      --no-header        table and csv: no header line\n"
	      "  -n, --limit N          calls: at most N rows (default 1000; 0 = no limit)\n"
	      "      --explain          print the query plan (EXPLAIN, FORMAT JSON) instead of rows\n"
	      "  -d, --db CONNINFO      libpq connection string or URI (default: the PG*\n"
	      "                         environment); one carrying a password is refused\n"
	      "                         (64): use PGPASSWORD or ~/.pgpass\n"
	      "  -v, --verbose          log debug messages (the SQL and its parameters)\n"
	      "  -q, --quiet            log errors only\n"
	      "  -h, --help             show this help and exit\n"
	      "  -V, --version          show the program version and exit\n"
	      "\n"
	      "exit status: 0 ok, 64 usage (also a bad time, zone or number; flow: a linkedid\n"
	      "of several nodes without --node), 66 flow: no such linkedid (on that node), 69 database unreachable (retry later), 70 internal error, 74\n"
	      "cannot write the output, 78 the database schema needs 'cdrflow-etl migrate'.\n",
	      out);
}

enum {
	OPT_FROM = 256, OPT_TO, OPT_PERIOD, OPT_TZ, OPT_SRC, OPT_DST, OPT_DST_RAW, OPT_DISPOSITION, OPT_TENANT,
	OPT_TRUNK, OPT_MIN_BILLSEC, OPT_LEGS, OPT_BY, OPT_SOURCE, OPT_ALL_EVENTS, OPT_NODE, OPT_NO_HEADER, OPT_EXPLAIN,
};

static const struct option long_options[] = {
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "period", required_argument, NULL, OPT_PERIOD },
	{ "tz", required_argument, NULL, OPT_TZ },
	{ "src", required_argument, NULL, OPT_SRC },
	{ "dst", required_argument, NULL, OPT_DST },
	{ "dst-raw", required_argument, NULL, OPT_DST_RAW },
	{ "disposition", required_argument, NULL, OPT_DISPOSITION },
	{ "tenant", required_argument, NULL, OPT_TENANT },
	{ "trunk", required_argument, NULL, OPT_TRUNK },
	{ "min-billsec", required_argument, NULL, OPT_MIN_BILLSEC },
	{ "legs", no_argument, NULL, OPT_LEGS },
	{ "by", required_argument, NULL, OPT_BY },
	{ "source", required_argument, NULL, OPT_SOURCE },
	{ "all-events", no_argument, NULL, OPT_ALL_EVENTS },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "format", required_argument, NULL, 'f' },
	{ "no-header", no_argument, NULL, OPT_NO_HEADER },
	{ "limit", required_argument, NULL, 'n' },
	{ "explain", no_argument, NULL, OPT_EXPLAIN },
	{ "db", required_argument, NULL, 'd' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Session settings, then the period (lib/period.h, the parser
 * cdrflow-report shares) as two timestamptz strings. */
static int resolve_period(PGconn *c, struct qopts *o)
{
	char err[1024];
	struct qsql q;
	PGresult *r;
	qsql_init(&q);
	qsql_text(&q, "SELECT set_config('TimeZone', ");
	qsql_param(&q, o->tz);
	qsql_text(&q, ", false), set_config('DateStyle', 'ISO, YMD', false), set_config('IntervalStyle', 'postgres', false)");
	int rc = qdb_exec(c, &q, &r, err, sizeof err);
	qsql_release(&q);
	if (rc < 0) {
		log_error("--tz \"%s\": %s", o->tz, err);
		return pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	PQclear(r);
	if (pgc_reader_session(c, err, sizeof err) < 0) {
		log_error("%s", err);
		return pgc_error_exit(c, err);
	}
	struct period p;
	rc = period_resolve(c, o->from ? o->from : o->period, o->to, o->tz, &p, err, sizeof err);
	if (rc != 0) {
		log_error("%s", err);
		return rc < 0 ? pgc_exit_for_value(c, err, EXIT_USAGE) : rc;
	}
	o->from_ts = xstrdup(p.from);
	o->to_ts = xstrdup(p.to);
	log_debug("period [%s, %s) tz %s", o->from_ts, o->to_ts, o->tz);
	return EXIT_OK;
}

/* the schema must have the tables this program reads; the columns of
 * those the command probes (q_has_column) are read at once, one round trip
 * instead of one per column */
static int check_schema(PGconn *c, const char *cmd)
{
	static const char *const calls_tables[] = { "call", "cdr", "source_node", NULL };
	static const char *const stats_tables[] = { "call", "rollup_hourly_v", "rollup_leg_v", "metric_call_v",
						    "rollup_call_hourly", "rollup_quarter_hour",
						    "rollup_call_quarter_hour", NULL };
	static const char *const flow_tables[] = { "call", NULL };
	char err[1024];
	const char *const *tables = !strcmp(cmd, "calls")   ? calls_tables
				    : !strcmp(cmd, "stats") ? stats_tables
							    : flow_tables;
	int h = q_schema_load(c, tables, err, sizeof err);
	if (h == 0)
		h = q_has_column(c, "call", "linkedids", err, sizeof err);
	if (h < 0) {
		log_error("%s", err);
		return pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	if (!h) {
		log_error("the database has no cdrflow warehouse (table call): run 'cdrflow-etl migrate'");
		return EXIT_CONFIG;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	log_init("cdrflow-query");
	log_set_cli(1);
	struct qopts o;
	memset(&o, 0, sizeof o);
	o.tz = "UTC";
	o.source = "auto";
	o.header = 1;
	o.limit = 1000;
	o.fmt = QOUT_TABLE;
	o.out = stdout;
	const char *db = NULL;
	int level = -1, c;
	char err[256];
	int64_t v;
	while ((c = getopt_long(argc, argv, "f:n:d:vqhV", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_FROM: o.from = optarg; break;
		case OPT_TO: o.to = optarg; break;
		case OPT_PERIOD: o.period = optarg; break;
		case OPT_TZ: o.tz = optarg; break;
		case OPT_SRC: o.src = optarg; break;
		case OPT_DST: o.dst = optarg; break;
		case OPT_DST_RAW: o.dst_raw = optarg; break;
		case OPT_DISPOSITION: o.disposition = optarg; break;
		case OPT_TENANT: o.tenant = optarg; break;
		case OPT_TRUNK: o.trunk = optarg; break;
		case OPT_MIN_BILLSEC:
			if (parse_int_range(optarg, 0, 2147483647, &v, err, sizeof err) < 0)
				return log_usage_error("--min-billsec \"%s\": %s", optarg, err);
			o.min_billsec = optarg;
			break;
		case OPT_LEGS: o.legs = 1; break;
		case OPT_BY: o.by = optarg; break;
		case OPT_SOURCE: o.source = optarg; break;
		case OPT_ALL_EVENTS: o.all_events = 1; break;
		case OPT_NODE: o.node = optarg; break;
		case OPT_NO_HEADER: o.header = 0; break;
		case OPT_EXPLAIN: o.explain = 1; break;
		case 'f':
			if (qout_format_parse(optarg, &o.fmt) < 0)
				return log_usage_error("unknown --format \"%s\" (table, csv, json, json-array)", optarg);
			o.fmt_set = 1;
			break;
		case 'n':
			if (parse_int_range(optarg, 0, INT64_MAX, &v, err, sizeof err) < 0)
				return log_usage_error("--limit \"%s\": %s", optarg, err);
			o.limit = v;
			break;
		case 'd': db = optarg; break;
		case 'v': level = LOG_DEBUG; o.verbose = 1; break;
		case 'q': level = LOG_ERROR; o.quiet = 1; break;
		case 'h': usage(stdout); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		case 'V': printf("cdrflow-query %s\n", CDRFLOW_VERSION); return EXIT_OK;
		default:
			fprintf(stderr, "Try 'cdrflow-query --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (level >= 0)
		log_set_level((enum log_level)level);
	if (db && conninfo_has_password(db))
		return log_usage_error("%s", CONNINFO_PASSWORD_REFUSED);
	if (optind >= argc)
		return log_usage_error("%s", "a command is required (calls, stats, flow)");
	const char *cmd = argv[optind++];
	if (!strcmp(cmd, "flow")) {
		if (optind >= argc)
			return log_usage_error("%s", "flow needs a LINKEDID");
		o.linkedid = argv[optind++];
		if (o.fmt_set && o.fmt != QOUT_TABLE)
			return log_usage_error("%s", "flow prints a ladder only (no --format)");
	} else if (strcmp(cmd, "calls") && strcmp(cmd, "stats")) {
		return log_usage_error("unknown command \"%s\" (calls, stats, flow)", cmd);
	}
	if (optind < argc)
		return log_usage_error("unexpected argument \"%s\"", argv[optind]);
	if (o.period && (o.from || o.to))
		return log_usage_error("%s", "--period and --from/--to exclude each other");
	if (o.to && !o.from)
		return log_usage_error("%s", "--to needs --from");
	if (!o.from && !o.period)
		o.period = "today";
	if (strcmp(o.source, "auto") && strcmp(o.source, "rollup") && strcmp(o.source, "base"))
		return log_usage_error("unknown --source \"%s\" (auto, rollup, base)", o.source);
	if (!strcmp(cmd, "stats") && !o.by)
		return log_usage_error("%s", "stats needs --by hour|day|tenant|trunk|destination");
	if (strcmp(cmd, "stats") && o.by)
		return log_usage_error("%s", "--by is for stats");
	if (!strcmp(cmd, "stats") && (o.src || o.dst || o.dst_raw || o.disposition || o.min_billsec || o.legs))
		return log_usage_error("%s", "stats takes --tenant and --trunk as filters only");

	char cerr[1024];
	PGconn *conn = pgc_connect(db, "cdrflow-query", NULL, cerr, sizeof cerr);
	if (!conn) {
		log_error("%s", cerr);
		return EXIT_UNAVAILABLE;
	}
	int rc = check_schema(conn, cmd);
	if (rc == EXIT_OK)
		rc = resolve_period(conn, &o);
	if (rc == EXIT_OK && o.from_ts) { /* inputs the PBX did not send in the period */
		size_t ncav;
		char e[512];
		if (caveats_print(conn, o.from_ts, o.to_ts, stderr, "cdrflow-query: warning: caveat: ", &ncav, e, sizeof e) < 0)
			log_warn("cannot read the input caveats of the period: %s", e);
	}
	if (rc == EXIT_OK) {
		if (o.verbose)
			log_info("period [%s, %s) tz %s", o.from_ts, o.to_ts, o.tz);
		if (!strcmp(cmd, "calls"))
			rc = q_calls(conn, &o);
		else if (!strcmp(cmd, "stats"))
			rc = q_stats(conn, &o);
		else
			rc = q_flow(conn, &o);
	}
	PQfinish(conn);
	q_schema_release();
	free(o.from_ts);
	free(o.to_ts);
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_IOERR;
	return rc;
}
