/*
 * cdrflow-collector - take every AMI event from Asterisk and append it to
 * crash-safe segment files.  See docs/man/cdrflow-collector.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "clock.h"
#include "config.h"
#include "exitcode.h"
#include "fsx.h"
#include "inspect.h"
#include "log.h"
#include "secmem.h"
#include "segment.h"
#include "session.h"
#include "source.h"
#include "spool.h"
#include "xalloc.h"
#include "ysnode.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cdrflow-collector -c FILE                     run the collector daemon\n"
		"       cdrflow-collector -c FILE --check             connect, log in, report the AMI settings, Ping\n"
		"       cdrflow-collector --replay CAPTURE --spool DIR [--node NAME]\n"
		"       cdrflow-collector --verify --spool DIR [--node NAME]\n"
		"       cdrflow-collector --list --spool DIR [--node NAME]\n"
		"       cdrflow-collector --dump --spool DIR [--node NAME]\n"
		"\n"
		"Takes every event from Asterisk's manager interface (AMI) and appends it to\n"
		"crash-safe, append-only segment files, one directory per PBX node.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE     YAML configuration (see cdrflow-collector(1))\n"
		"      --check           with -c: connect, log in, report what the PBX sends (Timestamp,\n"
		"                        channelvars, disabledevents, read classes, CEL), Ping, exit\n"
		"      --replay CAPTURE  store every event of a raw AMI byte capture (plain or .xz; - = stdin)\n"
		"      --spool DIR       spool directory (overrides the config file's spool)\n"
		"      --node NAME       node name for --replay (default: local) or to restrict --verify/--list/--dump\n"
		"      --fsync POLICY    always, interval or off (overrides collector.fsync)\n"
		"      --verify          check every record; prints records=N segments=M corrupt=K\n"
		"      --list            one line per record: NODE SEQ SEGNO OFFSET RECV_US LEN SHA1 EVENT\n"
		"      --dump            write the raw bytes of every stored event to stdout\n"
		"      --dump-config     print the effective configuration (secrets masked) and exit\n"
		"  -v, --verbose         log debug messages\n"
		"  -q, --quiet           log errors only\n"
		"  -h, --help            show this help and exit\n"
		"  -V, --version         show the version and exit\n"
		"\n"
		"Secrets never go on the command line: use the node's secret_env (default\n"
		"CDRFLOW_AMI_SECRET) or secret_file.  Settings may be overridden from the\n"
		"environment: CDRFLOW_COLLECTOR_FSYNC=off, CDRFLOW_SPOOL=/path, ...\n"
		"\n"
		"exit status: 0 ok, 64 usage, 65 corrupt data, 66 missing input, 69 AMI\n"
		"unreachable, 70 internal error, 73 cannot create, 74 write error (disk full),\n"
		"75 spool locked by another collector, 77 authentication refused, 78 bad\n"
		"configuration.\n");
}

enum mode { MODE_DAEMON, MODE_CHECK, MODE_REPLAY, MODE_VERIFY, MODE_LIST, MODE_DUMP, MODE_DUMP_CONFIG };

enum {
	OPT_CHECK = 256, OPT_REPLAY, OPT_SPOOL, OPT_NODE, OPT_FSYNC, OPT_VERIFY, OPT_LIST, OPT_DUMP, OPT_DUMP_CONFIG,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "replay", required_argument, NULL, OPT_REPLAY },
	{ "spool", required_argument, NULL, OPT_SPOOL },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "fsync", required_argument, NULL, OPT_FSYNC },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "dump", no_argument, NULL, OPT_DUMP },
	{ "dump-config", no_argument, NULL, OPT_DUMP_CONFIG },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static struct spool_opts spool_options(const struct collector_config *cfg, int fail_fast)
{
	struct spool_opts o = {
		.fsync = (enum seg_fsync)cfg->fsync,
		.fsync_interval_ms = cfg->fsync_interval_ms,
		.segment_max_size = cfg->segment_max_size,
		.segment_max_age_ms = cfg->segment_max_age_ms,
		.buffer_size = cfg->buffer_size,
		.max_event_size = cfg->max_event_size,
		.fail_fast = fail_fast,
	};
	return o;
}

static int exit_for_errno(int e)
{
	switch (e) {
	case EACCES: case EPERM: case EROFS: case ENOTDIR: case EEXIST: case ENAMETOOLONG:
		return EXIT_CANTCREAT;
	default:
		return EXIT_IOERR;
	}
}

/* Lock spool/node against a second collector; returns the fd or -1. */
static int lock_node(const char *spool, const char *node, int *code)
{
	char *dir = xasprintf("%s/%s", spool, node);
	char *path = xasprintf("%s/LOCK", dir);
	int fd = -1;
	if (mkdir_p(dir, 0755) < 0) {
		log_error("cannot create spool directory \"%s\": %s", dir, strerror(errno));
		*code = exit_for_errno(errno);
	} else if ((fd = lock_file(path)) < 0) {
		if (errno == EWOULDBLOCK) {
			log_error("spool \"%s\" is in use by another cdrflow-collector", dir);
			*code = EXIT_TEMPFAIL;
		} else {
			log_error("cannot lock \"%s\": %s", path, strerror(errno));
			*code = exit_for_errno(errno);
		}
	}
	free(path);
	free(dir);
	return fd;
}

static struct spool *open_node_spool(const struct collector_config *cfg, const char *node, int fail_fast, int *code)
{
	struct seg_recovery rec;
	struct spool_opts o = spool_options(cfg, fail_fast);
	for (size_t i = 0; i < cfg->nsources; i++)
		if (cfg->sources[i].type == SOURCE_YEASTAR && !strcmp(cfg->sources[i].name, node))
			o.record_flags = SEG_FLAG_JSON; /* its records are JSON messages */
	char err[512];
	int e = 0;
	struct spool *s = spool_open(cfg->spool, node, &o, &rec, &e, err, sizeof err);
	if (!s) {
		log_error("%s", err);
		*code = exit_for_errno(e);
		return NULL;
	}
	if (rec.torn_bytes)
		log_warn("node %s: truncated a torn tail of %" PRIu64 " bytes from segment %" PRIu64
			 " (a record cut by a crash; every whole record is kept)", node, rec.torn_bytes, rec.torn_segno);
	if (rec.damaged)
		log_error("node %s: the last segment has corrupt records that are not a torn tail; left untouched "
			  "(run --verify), writing to a new segment", node);
	log_debug("node %s: %" PRIu64 " existing segments, next sequence %" PRIu64, node, rec.segments,
		  spool_next_seq(s));
	return s;
}

/* ---- resumable replay: <spool>/<node>/replay-<sha256 of the capture file>
 * records where the capture's events start in the node's sequence; the
 * spool itself says how many of them are stored (sequence numbers are
 * contiguous, docs/segment-format.md), so a replay stopped by a full disk
 * or a crash resumes with the first event not stored, and a finished one
 * stores nothing again. */
struct replay_state {
	uint64_t first_seq, events;
	int complete;
};

static int capture_sha256(const char *path, char out[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	unsigned char *buf = xmalloc(1u << 16);
	ssize_t n = 0;
	while (ok && (n = read_full(fd, buf, 1u << 16)) > 0)
		ok = EVP_DigestUpdate(ctx, buf, (size_t)n) == 1;
	if (n < 0)
		ok = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (ok)
		ok = EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
	for (unsigned i = 0; ok && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return ok ? 0 : -1;
}

/* 1 found, 0 none, -1 unreadable or malformed. */
static int state_read(const char *path, struct replay_state *st)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	int n = fscanf(f, "cdrflow-replay 1 first_seq %" SCNu64 " events %" SCNu64 " complete %d", &st->first_seq,
		       &st->events, &st->complete);
	fclose(f);
	return n == 3 ? 1 : -1;
}

static int state_write(const char *path, const struct replay_state *st)
{
	char buf[160];
	int n = snprintf(buf, sizeof buf, "cdrflow-replay 1 first_seq %" PRIu64 " events %" PRIu64 " complete %d\n",
			 st->first_seq, st->events, st->complete);
	return atomic_write_file(path, buf, (size_t)n);
}

static int run_replay(const struct collector_config *cfg, const char *capture, const char *node)
{
	int code = EXIT_OK;
	char sha[65] = "";
	if (strcmp(capture, "-") && capture_sha256(capture, sha) < 0) {
		log_error("cannot read capture \"%s\": %s", capture, strerror(errno));
		return EXIT_NOINPUT;
	}
	int lock = lock_node(cfg->spool, node, &code);
	if (lock < 0)
		return code;
	struct spool *s = open_node_spool(cfg, node, 1, &code);
	if (!s) {
		close(lock);
		return code;
	}
	uint64_t first = spool_next_seq(s), skip = 0;
	char *state_path = *sha ? xasprintf("%s/%s/replay-%s", cfg->spool, node, sha) : NULL;
	struct replay_state st = { first, 0, 0 };
	int have = state_path ? state_read(state_path, &st) : 0;
	char err[512] = "", cerr[512] = "";
	if (have < 0) {
		log_error("cannot read the replay state \"%s\": %s", state_path, errno ? strerror(errno) : "malformed");
		spool_close(s, NULL, cerr, sizeof cerr);
		close(lock);
		free(state_path);
		return EXIT_DATAERR;
	}
	if (have && st.complete) {
		spool_close(s, NULL, cerr, sizeof cerr);
		close(lock);
		free(state_path);
		printf("replayed 0 events from %s: all %" PRIu64 " were stored before (sequence %" PRIu64 "..%" PRIu64
		       "), nothing stored\n", capture, st.events, st.first_seq, st.first_seq + st.events - 1);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
	}
	if (have) {
		if (first < st.first_seq) {
			log_error("replay state \"%s\" starts at sequence %" PRIu64 " but the node holds only up to %" PRIu64
				  ": the spool was changed; remove the state file to store the capture again", state_path,
				  st.first_seq, first - 1);
			spool_close(s, NULL, cerr, sizeof cerr);
			close(lock);
			free(state_path);
			return EXIT_DATAERR;
		}
		skip = first - st.first_seq; /* this capture's events already stored */
	} else if (state_path && state_write(state_path, &st) < 0) {
		log_error("cannot write the replay state \"%s\": %s", state_path, strerror(errno));
		spool_close(s, NULL, cerr, sizeof cerr);
		close(lock);
		free(state_path);
		return exit_for_errno(errno);
	}
	struct replay_result res;
	uint64_t stored = 0;
	int rc = replay_capture(capture, s, cfg->max_event_size, skip, isatty(STDERR_FILENO), &res, err, sizeof err);
	if (spool_close(s, &stored, cerr, sizeof cerr) < 0) {
		if (rc == EXIT_OK) {
			rc = EXIT_IOERR;
			snprintf(err, sizeof err, "%s", cerr);
		}
	}
	if (rc == EXIT_OK && res.skipped < skip) {
		/* more records after the start than this capture has events */
		snprintf(err, sizeof err, "node %s holds %" PRIu64 " records from sequence %" PRIu64 " on, more than the %"
			 PRIu64 " events of this capture: something else wrote the node since the replay started; "
			 "nothing stored", node, skip, st.first_seq, res.skipped);
		rc = EXIT_DATAERR;
	}
	if (rc == EXIT_OK && state_path) {
		st.events = skip + res.events;
		st.complete = 1;
		if (state_write(state_path, &st) < 0) {
			snprintf(err, sizeof err, "cannot write the replay state \"%s\": %s", state_path, strerror(errno));
			rc = EXIT_IOERR;
		}
	}
	close(lock);
	free(state_path);
	if (rc != EXIT_OK) {
		log_error("%s", err);
		if (res.events || skip) {
			char range[64] = "";
			if (stored)
				snprintf(range, sizeof range, " (sequence %" PRIu64 "..%" PRIu64 ")", first, first + stored - 1);
			log_error("this run accepted %" PRIu64 " events of \"%s\": %" PRIu64 " stored%s, %" PRIu64 " not stored; %"
				  PRIu64 " stored by earlier runs; every whole record stored is intact (check with --verify)%s",
				  res.events, capture, stored, range, res.events - stored, skip,
				  *sha ? "; run the same command again to store the rest, each event once" : "");
		}
		return rc;
	}
	if (skip)
		printf("resumed: %" PRIu64 " events of %s were stored by an earlier run (sequence %" PRIu64 "..%" PRIu64
		       "), not stored again\n", skip, capture, st.first_seq, first - 1);
	if (res.events)
		printf("replayed %" PRIu64 " events (%" PRIu64 " bytes) from %s into %s/%s, sequence %" PRIu64 "..%" PRIu64 "\n",
		       res.events, res.bytes_in, capture, cfg->spool, node, first, first + res.events - 1);
	else
		printf("replayed 0 events (%" PRIu64 " bytes) from %s: nothing stored\n", res.bytes_in, capture);
	if (fflush(stdout) != 0) {
		log_error("cannot write to standard output: %s", strerror(errno));
		return EXIT_IOERR;
	}
	return EXIT_OK;
}

static int class_in(const char *list, const char *cls)
{
	size_t n = strlen(cls);
	for (const char *p = list; (p = strstr(p, cls)) != NULL; p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* What --check learnt over AMI about the inputs cdrflow relies on
 * (cdrflow-etl doctor says the same from the spool; docs/asterisk-setup.md). */
static void print_check(const char *node, const struct node_check *c)
{
	printf("node %s: banner \"%s\"\n", node, c->banner);
	printf("node %s: events during the check: %" PRIu64 ", %" PRIu64 " with a Timestamp header", node, c->events,
	       c->events_ts);
	if (c->classes) {
		printf("; classes seen:");
		for (unsigned k = 0, first = 1; k < check_nclasses; k++)
			if (c->classes & (1u << k)) {
				printf("%s%s", first ? " " : ",", check_class_names[k]);
				first = 0;
			}
	}
	printf("\n");
	if (c->settings == 1) {
		int ts = !strcasecmp(c->timestampevents, "yes");
		printf("node %s: timestampevents: %s%s\n", node, *c->timestampevents ? c->timestampevents : "(not shown)",
		       ts ? "" : "  warning: events carry no Timestamp header; CDR times fall back to the receive time "
			       "(manager.conf [general]: timestampevents = yes)");
		printf("node %s: channelvars: %s%s\n", node, *c->channelvars ? c->channelvars : "(none)",
		       *c->channelvars ? "" : "  warning: no ChanVariable headers (manager.conf [general]: channelvars = "
					     "CALLTAG,TENANT)");
		int dis = *c->disabledevents && strcasecmp(c->disabledevents, "none") && strcmp(c->disabledevents, "-");
		printf("node %s: disabledevents: %s%s\n", node, dis ? c->disabledevents : "(none)",
		       dis && (strstr(c->disabledevents, "Newexten") || strstr(c->disabledevents, "VarSet") ||
			       strstr(c->disabledevents, "Newstate") || strstr(c->disabledevents, "Dial") ||
			       strstr(c->disabledevents, "Bridge") || strstr(c->disabledevents, "Hangup") ||
			       strstr(c->disabledevents, "Newchannel"))
			       ? "  warning: cdrflow needs these events for the CDR rows (remove them from disabledevents)"
			       : "");
	} else {
		printf("node %s: manager show settings: %s\n", node,
		       c->settings < 0 ? "refused (the AMI user lacks write=command); run cdrflow-etl doctor on the spool"
				       : "no answer");
	}
	if (c->user == 1) {
		static const char *const need[] = { "call", "dialplan", "agent", "reporting", "cdr" };
		char miss[128] = "";
		if (!class_in(c->read_perm, "all"))
			for (size_t k = 0; k < sizeof need / sizeof need[0]; k++)
				if (!class_in(c->read_perm, need[k]))
					snprintf(miss + strlen(miss), sizeof miss - strlen(miss), "%s%s", *miss ? "," : "", need[k]);
		printf("node %s: read classes of the user: %s%s%s%s\n", node, *c->read_perm ? c->read_perm : "(not shown)",
		       *miss ? "  warning: missing " : "", miss, *miss ? " (manager.conf [<user>]: read = ...)" : "");
	} else {
		printf("node %s: manager show user: %s\n", node, c->user < 0 ? "refused" : "no answer");
	}
	if (c->cel == 1) {
		int on = !strcasecmp(c->cel_logging, "Enabled");
		printf("node %s: CEL: %s%s%s%s\n", node, *c->cel_logging ? c->cel_logging : "(not shown)",
		       *c->cel_events ? ", events " : "", c->cel_events,
		       on ? "" : "  warning: no CEL events (cel.conf [general]: enable = yes, events = ALL)");
	} else {
		printf("node %s: cel show status: %s\n", node, c->cel < 0 ? "refused" : "no answer");
	}
}

/* Any Yeastar source?  Only then is libcurl initialised: curl_global_init
 * initialises OpenSSL (its configuration file and default provider),
 * libssh2 and libcurl's other backends, 2 MB resident for the life of a
 * daemon that may only read AMI. */
static int collector_has_yeastar(const struct collector_config *cfg)
{
	for (size_t i = 0; i < cfg->nsources; i++)
		if (cfg->sources[i].type == SOURCE_YEASTAR)
			return 1;
	return 0;
}

static int run_check(const struct collector_config *cfg)
{
	int code = EXIT_OK;
	int stop = eventfd(0, EFD_CLOEXEC);
	for (size_t i = 0; i < cfg->nnodes; i++) {
		struct node n;
		memset(&n, 0, sizeof n);
		n.cfg = &cfg->nodes[i];
		n.stop_fd = stop;
		n.once = 1;
		n.max_event_size = cfg->max_event_size;
		enum session_result r = session_run(&n);
		if (r == SESSION_STOPPED) {
			printf("node %s: ok (%s:%" PRId64 ", AMI %s)\n", n.cfg->name, n.cfg->host, n.cfg->port, n.ami_version);
			print_check(n.cfg->name, &n.check);
		} else {
			printf("node %s: failed: %s\n", n.cfg->name, n.why);
			int c = r == SESSION_CONFIG ? EXIT_CONFIG : r == SESSION_AUTH_FAILED ? EXIT_NOPERM : EXIT_UNAVAILABLE;
			if (code == EXIT_OK || c > code)
				code = c;
		}
	}
	for (size_t i = 0; i < cfg->nsources; i++) {
		if (cfg->sources[i].type != SOURCE_YEASTAR)
			continue;
		struct node n;
		memset(&n, 0, sizeof n);
		n.src = &cfg->sources[i];
		n.name = n.src->name;
		n.stop_fd = stop;
		n.once = 1;
		n.max_event_size = cfg->max_event_size;
		enum session_result r = yeastar_check(&n);
		if (r == SESSION_STOPPED) {
			printf("node %s: ok (yeastar, %s)\n", n.name,
			       n.src->yeastar.transport == YEASTAR_WEBHOOK ? "webhook listener bound" : "token and subscription accepted");
		} else {
			printf("node %s: failed: %s\n", n.name, n.why);
			int c = r == SESSION_CONFIG ? EXIT_CONFIG : r == SESSION_AUTH_FAILED ? EXIT_NOPERM : EXIT_UNAVAILABLE;
			if (code == EXIT_OK || c > code)
				code = c;
		}
	}
	close(stop);
	fflush(stdout);
	return code;
}

/* Lock and open the node's spool and start its thread (n->cfg or n->src
 * set by the caller).  0, or -1 with *code set and nothing left open. */
static int start_node(const struct collector_config *cfg, struct node *n, const char *name, int stop_fd,
		      void *(*body)(void *), int *lock, int *code)
{
	*lock = lock_node(cfg->spool, name, code);
	if (*lock < 0)
		return -1;
	n->name = name;
	n->stop_fd = stop_fd;
	n->max_event_size = cfg->max_event_size;
	n->spool = open_node_spool(cfg, name, 0, code);
	if (!n->spool) {
		close(*lock);
		return -1;
	}
	if (pthread_create(&n->thread, NULL, body, n) != 0) {
		log_error("cannot start thread for node %s", name);
		char e2[256];
		spool_close(n->spool, NULL, e2, sizeof e2);
		close(*lock);
		*code = EXIT_SOFTWARE;
		return -1;
	}
	return 0;
}

static void status_line(const struct node *n, uint64_t *last_events, double dt)
{
	struct spool_stats *st = spool_stats(n->spool);
	uint64_t ev = atomic_load(&st->events);
	double rate = dt > 0 ? (double)(ev - *last_events) / dt : 0;
	*last_events = ev;
	log_info("node %s: %s, events=%" PRIu64 " rate=%.1f/s bytes=%" PRIu64 " reconnects=%" PRIu64
		 " lag_ms=%.1f backlog=%" PRIu64 " synced_seq=%" PRIu64 " stalls=%" PRIu64 " dropped_oversized=%" PRIu64,
		 n->name, atomic_load(&n->connected) ? "connected" : "disconnected", ev, rate,
		 atomic_load(&st->bytes), atomic_load(&n->reconnects), (double)atomic_load(&n->lag_us) / 1000.0,
		 atomic_load(&st->backlog_bytes), atomic_load(&st->synced_seq), atomic_load(&st->stalls),
		 atomic_load(&n->oversized));
}

static int run_daemon(const struct collector_config *cfg, const char *config_path)
{
	size_t nys = 0;
	for (size_t i = 0; i < cfg->nsources; i++)
		nys += cfg->sources[i].type == SOURCE_YEASTAR;
	if (cfg->nnodes == 0 && nys == 0) {
		log_error("%s: no nodes configured (collector.nodes, or sources with type yeastar)", config_path);
		return EXIT_CONFIG;
	}
	/* Every thread inherits this mask; the main thread takes signals with sigtimedwait. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	int code = EXIT_OK;
	int stop_fd = eventfd(0, EFD_CLOEXEC);
	size_t total = cfg->nnodes + nys;
	struct node *nodes = xcalloc(total, sizeof *nodes);
	int *locks = xcalloc(total, sizeof *locks);
	uint64_t *last_events = xcalloc(total, sizeof *last_events);
	size_t started = 0;
	for (size_t i = 0; i < cfg->nnodes; i++) {
		char err[256];
		char *secret = node_secret(&cfg->nodes[i], err, sizeof err);
		if (!secret) {
			log_error("%s", err);
			code = EXIT_CONFIG;
			break;
		}
		secmem_free(secret);
		nodes[started].cfg = &cfg->nodes[i];
		if (start_node(cfg, &nodes[started], cfg->nodes[i].name, stop_fd, node_main, &locks[started], &code) < 0)
			break;
		started++;
	}
	/* the Yeastar sources: one thread each, the same spool and locks */
	for (size_t i = 0; i < cfg->nsources && code == EXIT_OK; i++) {
		if (cfg->sources[i].type != SOURCE_YEASTAR)
			continue;
		nodes[started].src = &cfg->sources[i];
		if (start_node(cfg, &nodes[started], cfg->sources[i].name, stop_fd, yeastar_node_main, &locks[started],
			       &code) < 0)
			break;
		started++;
	}
	if (code == EXIT_OK)
		log_info("started: %zu node(s), spool \"%s\", fsync %s", started, cfg->spool,
			 cfg->fsync == SEG_FSYNC_ALWAYS ? "always" : cfg->fsync == SEG_FSYNC_OFF ? "off" : "interval");
	double last = clock_mono_s();
	while (code == EXIT_OK) {
		uint64_t wait_ms = cfg->status_interval_ms ? cfg->status_interval_ms : 3600000;
		struct timespec ts = { (time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("received %s: flushing and stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (sig == SIGHUP) {
			if (log_reopen() < 0)
				log_error("cannot reopen log file: %s", strerror(errno));
			else
				log_info("log file reopened");
			continue;
		}
		if (sig < 0 && errno == EAGAIN && cfg->status_interval_ms) {
			double now = clock_mono_s();
			for (size_t i = 0; i < started; i++)
				status_line(&nodes[i], &last_events[i], now - last);
			last = now;
		}
	}
	uint64_t one = 1;
	if (write(stop_fd, &one, sizeof one) != sizeof one)
		log_error("cannot signal node threads: %s", strerror(errno));
	for (size_t i = 0; i < started; i++) {
		pthread_join(nodes[i].thread, NULL);
		char err[512];
		struct spool_stats *st = spool_stats(nodes[i].spool);
		uint64_t events = atomic_load(&st->events);
		if (spool_close(nodes[i].spool, NULL, err, sizeof err) < 0) {
			log_error("node %s: %s", nodes[i].name, err);
			code = EXIT_IOERR;
		} else {
			log_info("node %s: stopped after %" PRIu64 " events, all synced", nodes[i].name, events);
		}
		close(locks[i]);
	}
	free(nodes);
	free(locks);
	free(last_events);
	close(stop_fd);
	return code;
}

int main(int argc, char **argv)
{
	log_init("cdrflow-collector");
	/* a file-size limit must give EFBIG (exit 74), not kill us mid-record */
	signal(SIGXFSZ, SIG_IGN);
	const char *config_path = NULL, *capture = NULL, *spool = NULL, *node = NULL, *fsync_opt = NULL;
	enum mode mode = MODE_DAEMON;
	int modes = 0, verbose = 0, quiet = 0, c;

	while ((c = getopt_long(argc, argv, "c:vqhV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case OPT_CHECK: mode = MODE_CHECK; modes++; break;
		case OPT_REPLAY: mode = MODE_REPLAY; capture = optarg; modes++; break;
		case OPT_SPOOL: spool = optarg; break;
		case OPT_NODE: node = optarg; break;
		case OPT_FSYNC: fsync_opt = optarg; break;
		case OPT_VERIFY: mode = MODE_VERIFY; modes++; break;
		case OPT_LIST: mode = MODE_LIST; modes++; break;
		case OPT_DUMP: mode = MODE_DUMP; modes++; break;
		case OPT_DUMP_CONFIG: mode = MODE_DUMP_CONFIG; modes++; break;
		case 'v': verbose = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		case 'V': printf("cdrflow-collector %s\n", CDRFLOW_VERSION); return EXIT_OK;
		default:
			fprintf(stderr, "Try 'cdrflow-collector --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return log_usage_error("unexpected argument \"%s\"", argv[optind]);
	if (modes > 1)
		return log_usage_error("%s", "--check, --replay, --verify, --list, --dump and --dump-config exclude each other");
	/* the daemon logs with time and pid; the one-shot modes like a command */
	log_set_cli(mode != MODE_DAEMON);
	if ((mode == MODE_DAEMON || mode == MODE_CHECK) && !config_path)
		return log_usage_error("%s", "a configuration file is required (-c FILE); see --help");
	if (node && !seg_node_name_valid(node))
		return log_usage_error("invalid node name \"%s\" (use 1-64 of A-Z a-z 0-9 . _ -)", node);

	struct collector_config cfg;
	char err[768];
	int rc = collector_config_load(&cfg, config_path, err, sizeof err);
	if (rc) {
		log_error("%s", err);
		collector_config_free(&cfg);
		return rc;
	}
	if (spool) {
		free(cfg.spool);
		cfg.spool = xstrdup(spool);
	}
	if (fsync_opt) {
		static const char *const names[] = { "always", "interval", "off" };
		int found = -1;
		for (int i = 0; i < 3; i++)
			if (!strcmp(fsync_opt, names[i]))
				found = i;
		if (found < 0) {
			collector_config_free(&cfg);
			return log_usage_error("--fsync: \"%s\" must be always, interval or off", fsync_opt);
		}
		cfg.fsync = found;
	}
	log_set_level(verbose ? LOG_DEBUG : quiet ? LOG_ERROR : (enum log_level)log_level_parse(cfg.log_level));
	if ((mode == MODE_DAEMON) && *cfg.log_file && log_open_file(cfg.log_file) < 0) {
		log_error("cannot open log file \"%s\": %s", cfg.log_file, strerror(errno));
		collector_config_free(&cfg);
		return EXIT_CANTCREAT;
	}

	switch (mode) {
	case MODE_DUMP_CONFIG:
		cfg_dump(collector_keys, &cfg, stdout);
		rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		break;
	case MODE_VERIFY:
	case MODE_LIST:
	case MODE_DUMP:
		if (!spool && !config_path && !getenv("CDRFLOW_SPOOL")) {
			rc = log_usage_error("%s", "--spool DIR is required");
			break;
		}
		rc = inspect_spool(cfg.spool, node,
				   mode == MODE_VERIFY ? INSPECT_VERIFY : mode == MODE_LIST ? INSPECT_LIST : INSPECT_DUMP);
		break;
	case MODE_REPLAY:
		if (!spool && !config_path && !getenv("CDRFLOW_SPOOL")) {
			rc = log_usage_error("%s", "--spool DIR is required with --replay");
			break;
		}
		rc = run_replay(&cfg, capture, node ? node : "local");
		break;
	case MODE_CHECK:
	case MODE_DAEMON:
		collector_secrets_seal(&cfg); /* before any thread: setenv/getenv are not thread-safe */
		if (sources_secrets_seal(cfg.sources, cfg.nsources, err, sizeof err) < 0) {
			log_error("%s", err);
			rc = EXIT_CONFIG;
			break;
		}
		if (collector_has_yeastar(&cfg) && yeastar_global_init(err, sizeof err) < 0) {
			log_error("%s", err);
			rc = EXIT_SOFTWARE;
			break;
		}
		if (mode == MODE_CHECK)
			rc = cfg.nnodes || cfg.nsources ? run_check(&cfg)
							: (log_error("%s: no nodes configured (collector.nodes)", config_path), EXIT_CONFIG);
		else
			rc = run_daemon(&cfg, config_path);
		if (collector_has_yeastar(&cfg))
			yeastar_global_release();
		break;
	}
	collector_config_free(&cfg);
	return rc;
}
