/*
 * deliver - drive report/ delivery (mail, webhook, spool, alerts) from the
 * command line: the tests' handle on the API cdrflow-report is built on.
 *
 *   deliver mail    -c CONFIG [--attach FILE]... [--text FILE] [--html FILE]
 *                   [--subject S] [--key K] [--message-out FILE]
 *   deliver webhook -c CONFIG (--event JSON | --event-file FILE) [--key K]
 *   deliver retry   -c CONFIG [--channel mail|webhook|all]
 *   deliver alerts  -c CONFIG [--limit N]
 *
 * Secrets come from the environment or files named in the configuration,
 * never from the command line.  Exit codes: docs/delivery.md.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "buf.h"
#include "cfg.h"
#include "delivery.h"
#include "delivery_cfg.h"
#include "exitcode.h"
#include "fsx.h"
#include "hmac.h"
#include "log.h"
#include "mail.h"
#include "outbox.h"
#include "webhook.h"
#include "xalloc.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: deliver mail -c CONFIG [--attach FILE]... [--text FILE] [--html FILE] [--subject S]\n"
		   "                    [--key K] [--message-out FILE]\n"
		   "       deliver webhook -c CONFIG (--event JSON | --event-file FILE) [--key K]\n"
		   "       deliver retry -c CONFIG [--channel mail|webhook|all]\n"
		   "       deliver alerts -c CONFIG [--limit N]\n"
		   "exit status: 0 delivered, 69 queued for a later run, 77 authentication refused (queued),\n"
		   "65 rejected (kept in dead/) or bad input, 66 an input file is missing, 74 spool I/O error,\n"
		   "75 another run holds the spool, 78 configuration, 64 usage\n");
}

static int read_text(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char chunk[8192];
	size_t r;
	while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (buf_append(b, chunk, r) < 0) {
			fclose(f);
			errno = EFBIG;
			return -1;
		}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		errno = EIO;
		return -1;
	}
	return 0;
}

struct opts {
	const char *config, *text, *html, *subject, *key, *message_out, *event, *event_file, *channel;
	const char **attach;
	size_t nattach;
	int64_t limit;
};

static int cmd_mail(struct delivery_cfg *c, const struct opts *o)
{
	char err[1024] = "";
	if (!c->mail.from || !*c->mail.from || !c->mail.to || !*c->mail.to) {
		log_error("report.delivery.mail.from and .to must be set");
		return EXIT_CONFIG;
	}
	struct buf text, html;
	buf_init(&text, 0);
	buf_init(&html, 0);
	int code = EXIT_OK;
	if (o->text) {
		if (read_text(o->text, &text) < 0) {
			log_error("cannot read \"%s\": %s", o->text, strerror(errno));
			code = EXIT_NOINPUT;
			goto out0;
		}
	} else {
		buf_puts(&text, "cdrflow report\n\nAttached:\n");
		for (size_t i = 0; i < o->nattach; i++) {
			const char *s = strrchr(o->attach[i], '/');
			buf_printf(&text, "  %s\n", s ? s + 1 : o->attach[i]);
		}
	}
	if (o->html && read_text(o->html, &html) < 0) {
		log_error("cannot read \"%s\": %s", o->html, strerror(errno));
		code = EXIT_NOINPUT;
		goto out0;
	}
	struct mail_attachment *att = xcalloc(o->nattach ? o->nattach : 1, sizeof *att);
	for (size_t i = 0; i < o->nattach; i++)
		att[i].path = o->attach[i];
	struct mail_msg m = { .from = c->mail.from,
			      .to = c->mail.to,
			      .subject = o->subject ? o->subject : c->mail.subject,
			      .text = text.data,
			      .html = o->html ? html.data : NULL,
			      .att = att,
			      .natt = o->nattach };
	struct buf msg;
	buf_init(&msg, 0);
	char *password = NULL, **rcpt = NULL, **from = NULL;
	size_t nrcpt = 0, nfrom = 0;
	if (mail_build(&m, &msg, err, sizeof err) < 0) {
		int e = errno;
		log_error("%s", err);
		code = e == EINVAL ? EXIT_DATAERR : e == ENOMEM || e == EFBIG ? EXIT_SOFTWARE : EXIT_NOINPUT;
		goto out1;
	}
	if (o->message_out && atomic_write_file(o->message_out, msg.data, msg.len) < 0) {
		log_error("cannot write \"%s\": %s", o->message_out, strerror(errno));
		code = EXIT_CANTCREAT;
		goto out1;
	}
	if (mail_addresses(c->mail.to, &rcpt, &nrcpt, err, sizeof err) < 0 ||
	    mail_addresses(c->mail.from, &from, &nfrom, err, sizeof err) < 0) {
		log_error("%s", err);
		code = EXIT_CONFIG;
		goto out1;
	}
	int need = c->mail.username && *c->mail.username;
	if (secret_load(c->mail.password_env, c->mail.password_file, need, &password, err, sizeof err) < 0) {
		log_error("mail: %s", err);
		code = EXIT_CONFIG;
		goto out1;
	}
	char key[80];
	if (o->key) {
		snprintf(key, sizeof key, "%s", o->key);
	} else {
		char hex[65];
		if (sha256_hex(msg.data, msg.len, hex) < 0) {
			code = EXIT_SOFTWARE;
			goto out1;
		}
		snprintf(key, sizeof key, "mail-%.32s", hex);
	}
	char *dir = delivery_spool_dir(c, "mail");
	*err = '\0';
	code = mail_deliver(&c->mail, password, dir, key, from[0], rcpt, nrcpt, msg.data, msg.len, err, sizeof err);
	free(dir);
	if (code)
		log_error("mail %s: %s", key, err);
	printf("mail key=%s result=%s bytes=%zu\n", key, code == 0 ? "delivered" : code == EXIT_DATAERR ? "dead" : "queued",
	       msg.len);
out1:
	secret_free(password);
	if (rcpt)
		mail_addresses_free(rcpt, nrcpt);
	if (from)
		mail_addresses_free(from, nfrom);
	buf_release(&msg);
	free(att);
out0:
	buf_release(&text);
	buf_release(&html);
	return code;
}

static int cmd_webhook(struct delivery_cfg *c, const struct opts *o)
{
	char err[1024] = "";
	struct buf ev;
	buf_init(&ev, 0);
	if (o->event_file) {
		if (read_text(o->event_file, &ev) < 0) {
			log_error("cannot read \"%s\": %s", o->event_file, strerror(errno));
			buf_release(&ev);
			return EXIT_NOINPUT;
		}
	} else {
		buf_puts(&ev, o->event);
	}
	if (ev.len == 0 || memchr(ev.data, '\0', ev.len)) {
		log_error("the event is empty or not text");
		buf_release(&ev);
		return EXIT_DATAERR;
	}
	char key[OUTBOX_KEY_MAX + 1];
	if (o->key) {
		snprintf(key, sizeof key, "%s", o->key);
	} else {
		char hex[65];
		sha256_hex(ev.data, ev.len, hex);
		snprintf(key, sizeof key, "event-%.32s", hex);
	}
	struct webhook w;
	if (webhook_open(&w, &c->webhook, err, sizeof err) < 0) {
		log_error("webhook: %s", err);
		buf_release(&ev);
		return EXIT_CONFIG;
	}
	char *dir = delivery_spool_dir(c, "webhook");
	int code = webhook_deliver(&w, dir, key, ev.data, ev.len, err, sizeof err);
	if (code)
		log_error("webhook %s: %s", key, err);
	printf("webhook key=%s result=%s requests=%" PRIu64 "\n", key,
	       code == 0 ? "delivered" : code == EXIT_DATAERR ? "dead" : code == EXIT_IOERR ? "lost" : "queued",
	       w.requests);
	free(dir);
	webhook_close(&w);
	buf_release(&ev);
	return code;
}

static int cmd_retry(struct delivery_cfg *c, const struct opts *o)
{
	int code = EXIT_OK;
	char err[1024];
	const char *ch = o->channel ? o->channel : "all";
	if (strcmp(ch, "all") && strcmp(ch, "mail") && strcmp(ch, "webhook")) {
		log_error("--channel must be mail, webhook or all");
		return EXIT_USAGE;
	}
	if (!strcmp(ch, "all") || !strcmp(ch, "webhook")) {
		char *dir = delivery_spool_dir(c, "webhook");
		char **names;
		size_t n = 0;
		if (outbox_list(dir, &names, &n) == 0)
			outbox_names_free(names, n);
		if (n) {
			struct webhook w;
			if (webhook_open(&w, &c->webhook, err, sizeof err) < 0) {
				log_error("webhook: %s", err);
				code = dlv_exit_merge(code, EXIT_CONFIG);
			} else {
				struct outbox_stats st;
				int rc = outbox_retry(dir, webhook_spool_send, &w, &st, err, sizeof err);
				if (rc)
					log_error("webhook retry: %s", err);
				printf("webhook delivered=%zu queued=%zu dead=%zu corrupt=%zu requests=%" PRIu64 "\n",
				       st.delivered, st.queued, st.dead, st.corrupt, w.requests);
				code = dlv_exit_merge(code, rc);
				webhook_close(&w);
			}
		} else {
			printf("webhook delivered=0 queued=0 dead=0 corrupt=0 requests=0\n");
		}
		free(dir);
	}
	if (!strcmp(ch, "all") || !strcmp(ch, "mail")) {
		char *dir = delivery_spool_dir(c, "mail");
		char *password = NULL;
		int need = c->mail.username && *c->mail.username;
		if (secret_load(c->mail.password_env, c->mail.password_file, need, &password, err, sizeof err) < 0) {
			log_error("mail: %s", err);
			code = dlv_exit_merge(code, EXIT_CONFIG);
		} else {
			struct mail_sender s = { &c->mail, password };
			struct outbox_stats st;
			int rc = outbox_retry(dir, mail_spool_send, &s, &st, err, sizeof err);
			if (rc)
				log_error("mail retry: %s", err);
			printf("mail delivered=%zu queued=%zu dead=%zu corrupt=%zu\n", st.delivered, st.queued, st.dead,
			       st.corrupt);
			code = dlv_exit_merge(code, rc);
		}
		secret_free(password);
		free(dir);
	}
	return code;
}

static int cmd_alerts(struct delivery_cfg *c, const struct opts *o)
{
	PGconn *db = PQconnectdb(c->conninfo ? c->conninfo : "");
	if (PQstatus(db) != CONNECTION_OK) {
		char *m = PQerrorMessage(db);
		m[strcspn(m, "\n")] = '\0';
		log_error("cannot connect to PostgreSQL: %s", m);
		PQfinish(db);
		return EXIT_UNAVAILABLE;
	}
	char err[1024];
	struct alerts_stats st;
	char *dir = delivery_spool_dir(c, "webhook");
	int code = alerts_deliver(db, &c->webhook, dir, (size_t)o->limit, &st, err, sizeof err);
	if (code)
		log_error("alerts: %s", err);
	printf("alerts delivered=%zu queued=%zu already_queued=%zu spool_delivered=%zu spool_queued=%zu\n",
	       st.delivered, st.queued, st.already_queued, st.spool.delivered, st.spool.queued);
	free(dir);
	PQfinish(db);
	return code;
}

int main(int argc, char **argv)
{
	log_init("deliver");
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return EXIT_OK;
	}
	const char *cmd = argv[1];
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },     { "attach", required_argument, NULL, 'a' },
		{ "text", required_argument, NULL, 't' },       { "html", required_argument, NULL, 'H' },
		{ "subject", required_argument, NULL, 's' },    { "key", required_argument, NULL, 'k' },
		{ "message-out", required_argument, NULL, 'o' }, { "event", required_argument, NULL, 'e' },
		{ "event-file", required_argument, NULL, 'E' }, { "channel", required_argument, NULL, 'C' },
		{ "limit", required_argument, NULL, 'l' },      { "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	o.attach = xcalloc((size_t)argc, sizeof *o.attach);
	optind = 2;
	int ch, rc = EXIT_OK;
	while ((ch = getopt_long(argc, argv, "c:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.config = optarg; break;
		case 'a': o.attach[o.nattach++] = optarg; break;
		case 't': o.text = optarg; break;
		case 'H': o.html = optarg; break;
		case 's': o.subject = optarg; break;
		case 'k': o.key = optarg; break;
		case 'o': o.message_out = optarg; break;
		case 'e': o.event = optarg; break;
		case 'E': o.event_file = optarg; break;
		case 'C': o.channel = optarg; break;
		case 'l': {
			char *e;
			errno = 0;
			long long v = strtoll(optarg, &e, 10);
			if (errno || *e || v < 0) {
				fprintf(stderr, "deliver: bad --limit\n");
				free(o.attach);
				return EXIT_USAGE;
			}
			o.limit = v;
			break;
		}
		case 'v': log_set_level(LOG_DEBUG); break;
		default: usage(stderr); free(o.attach); return EXIT_USAGE;
		}
	}
	int known = !strcmp(cmd, "mail") || !strcmp(cmd, "webhook") || !strcmp(cmd, "retry") || !strcmp(cmd, "alerts");
	if (!known || optind != argc || !o.config ||
	    (!strcmp(cmd, "webhook") && !o.event == !o.event_file)) {
		fprintf(stderr, "deliver: %s\n", !known ? "unknown command" : !o.config ? "-c CONFIG is required"
			: optind != argc ? "extra argument" : "give one of --event or --event-file");
		usage(stderr);
		free(o.attach);
		return EXIT_USAGE;
	}
	struct delivery_cfg c = { 0 };
	char err[512];
	int missing = 0;
	if (cfg_load(delivery_cfg_keys, &c, o.config, &missing, err, sizeof err) < 0) {
		log_error("%s", err);
		cfg_free(delivery_cfg_keys, &c);
		free(o.attach);
		return missing ? EXIT_NOINPUT : EXIT_CONFIG;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		rc = EXIT_SOFTWARE;
	} else {
		if (!strcmp(cmd, "mail"))
			rc = cmd_mail(&c, &o);
		else if (!strcmp(cmd, "webhook"))
			rc = cmd_webhook(&c, &o);
		else if (!strcmp(cmd, "retry"))
			rc = cmd_retry(&c, &o);
		else
			rc = cmd_alerts(&c, &o);
		curl_global_cleanup();
	}
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_IOERR;
	cfg_free(delivery_cfg_keys, &c);
	free(o.attach);
	return rc;
}
