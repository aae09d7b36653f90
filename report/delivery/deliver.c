/*
 * deliver.c - a report run's files by mail and as a "report.ready" webhook
 * event; the retry and alerts commands (docs/report.md, DELIVERY).
 */
#include "deliver.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alerts.h"
#include "buf.h"
#include "json.h"
#include "delivery.h"
#include "exitcode.h"
#include "hmac.h"
#include "log.h"
#include "mail.h"
#include "outbox.h"
#include "utf8.h"
#include "xalloc.h"

int report_deliver_available(void)
{
	return 1;
}

/* ------------------------------------------------------------- prepare */

static char *join_list(char *const *l, size_t n)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++)
		if (buf_printf(&b, "%s%s", i ? ", " : "", l[i]) < 0) {
			buf_release(&b);
			return NULL;
		}
	if (!b.data)
		return xstrdup("");
	return buf_detach(&b, NULL);
}

int report_deliver_prepare(struct report_delivery *rd, const struct delivery_cfg *cfg, const struct deliver_spec *d,
			   const char *recipients, char *err, size_t errlen)
{
	memset(rd, 0, sizeof *rd);
	rd->cfg = cfg;
	rd->spec = *d;
	rd->mail = d->mail || recipients;
	rd->webhook = d->webhook;
	if (rd->mail) {
		const struct mail_cfg *m = &cfg->mail;
		if (!m->host || !*m->host || !m->from || !*m->from) {
			snprintf(err, errlen, "the template asks for mail: set report.delivery.mail.host and .from");
			return EXIT_CONFIG;
		}
		const char *src;
		if (recipients) {
			rd->to = xstrdup(recipients);
			src = "--recipients";
		} else if (d->nrecipients) {
			rd->to = join_list(d->recipients, d->nrecipients);
			src = "the template's delivery.recipients";
		} else {
			rd->to = xstrdup(m->to ? m->to : "");
			src = "report.delivery.mail.to";
		}
		if (!rd->to) {
			snprintf(err, errlen, "out of memory");
			return EXIT_SOFTWARE;
		}
		if (!*rd->to) {
			snprintf(err, errlen, "mail: no recipients (the template lists none and report.delivery.mail.to is empty)");
			return EXIT_CONFIG;
		}
		char e[256];
		if (strpbrk(rd->to, "\r\n") || mail_addresses(rd->to, &rd->rcpt, &rd->nrcpt, e, sizeof e) < 0) {
			snprintf(err, errlen, "%s: %s", src, strpbrk(rd->to, "\r\n") ? "a line break" : e);
			return recipients ? EXIT_USAGE : d->nrecipients ? EXIT_DATAERR : EXIT_CONFIG;
		}
		char **from;
		size_t nfrom;
		if (mail_addresses(m->from, &from, &nfrom, e, sizeof e) < 0) {
			snprintf(err, errlen, "report.delivery.mail.from: %s", e);
			return EXIT_CONFIG;
		}
		rd->from_addr = xstrdup(from[0]);
		mail_addresses_free(from, nfrom);
		int need = m->username && *m->username;
		if (secret_load(m->password_env, m->password_file, need, &rd->password, e, sizeof e) < 0) {
			snprintf(err, errlen, "mail: %s", e);
			return EXIT_CONFIG;
		}
	}
	if (rd->webhook) {
		char e[512];
		if (!cfg->webhook.url || !*cfg->webhook.url) {
			snprintf(err, errlen, "the template asks for a webhook: set report.delivery.webhook.url");
			return EXIT_CONFIG;
		}
		if (webhook_open(&rd->w, &cfg->webhook, e, sizeof e) < 0) {
			snprintf(err, errlen, "webhook: %s", e);
			return EXIT_CONFIG;
		}
		rd->w_open = 1;
	}
	return EXIT_OK;
}

void report_deliver_release(struct report_delivery *rd)
{
	free(rd->to);
	if (rd->rcpt)
		mail_addresses_free(rd->rcpt, rd->nrcpt);
	free(rd->from_addr);
	secret_free(rd->password);
	if (rd->w_open)
		webhook_close(&rd->w);
	memset(rd, 0, sizeof *rd);
}

/* ------------------------------------------------------------- keys, files */

static const char *fmt_name(unsigned f)
{
	return f == DELIVER_FMT_PDF    ? "pdf"
	       : f == DELIVER_FMT_CSV  ? "csv"
	       : f == DELIVER_FMT_XLSX ? "xlsx"
	       : f == DELIVER_FMT_HTML ? "html"
				       : "?";
}

static void fmt_set(unsigned formats, char *out, size_t n)
{
	/* "pdf,csv,xlsx,html" order: a run without html keeps the key it had */
	static const unsigned order[] = { DELIVER_FMT_PDF, DELIVER_FMT_CSV, DELIVER_FMT_XLSX, DELIVER_FMT_HTML };
	size_t k = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		if (formats & order[i])
			k += (size_t)snprintf(out + k, k < n ? n - k : 0, "%s%s", k ? "," : "", fmt_name(order[i]));
}

void report_deliver_key(const struct report_run_info *info, unsigned formats, const char *rcpt, char *out,
			size_t outlen)
{
	struct buf b;
	buf_init(&b, 0);
	char fs[32];
	fmt_set(formats, fs, sizeof fs);
	/* fields separated by NUL bytes: no value can fake a boundary */
	buf_append(&b, info->template_name, strlen(info->template_name) + 1);
	buf_append(&b, info->from, strlen(info->from) + 1);
	buf_append(&b, info->to, strlen(info->to) + 1);
	buf_append(&b, fs, strlen(fs) + 1);
	/* parameters sorted by name (names are unique) */
	const char *prev = NULL;
	for (size_t k = 0; k < info->nparams; k++) {
		const char *best = NULL, *val = NULL;
		for (size_t i = 0; i < info->nparams; i++)
			if ((!prev || strcmp(info->param_names[i], prev) > 0) &&
			    (!best || strcmp(info->param_names[i], best) < 0)) {
				best = info->param_names[i];
				val = info->param_values[i];
			}
		if (!best)
			break;
		buf_append(&b, best, strlen(best) + 1);
		buf_append(&b, val, strlen(val) + 1);
		prev = best;
	}
	if (rcpt) {
		buf_append(&b, "\0rcpt", 6);
		buf_append(&b, rcpt, strlen(rcpt) + 1);
	}
	char hex[65] = "";
	if (sha256_hex(b.data ? b.data : "", b.len, hex) < 0)
		memset(hex, '0', 64);
	hex[64] = '\0';
	buf_release(&b);
	/* the name as printable ASCII without spaces, at most 100 bytes */
	char name[101];
	size_t j = 0;
	for (const char *c = info->template_name; *c && j < sizeof name - 1; c++)
		name[j++] = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
				    *c == '-' || *c == '_' || *c == '.'
			    ? *c
			    : '_';
	name[j] = '\0';
	snprintf(out, outlen, "report-%s-%.32s", name, hex);
}

struct dfile {
	const struct deliver_file *o;
	const char *name; /* base name */
	int64_t size;
	char sha256[65];
};

static int hash_file(const char *path, struct dfile *f, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
		return EXIT_NOINPUT;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	unsigned char chunk[65536];
	size_t r;
	int64_t size = 0;
	while (ok && (r = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		ok = EVP_DigestUpdate(md, chunk, r) == 1;
		size += (int64_t)r;
	}
	int rerr = ferror(fp);
	fclose(fp);
	unsigned char dig[32];
	unsigned dl = 0;
	if (ok && !rerr)
		ok = EVP_DigestFinal_ex(md, dig, &dl) == 1 && dl == 32;
	EVP_MD_CTX_free(md);
	if (rerr) {
		snprintf(err, errlen, "cannot read \"%s\"", path);
		return EXIT_IOERR;
	}
	if (!ok) {
		snprintf(err, errlen, "sha256 of \"%s\" failed", path);
		return EXIT_SOFTWARE;
	}
	for (unsigned i = 0; i < 32; i++)
		snprintf(f->sha256 + 2 * i, 3, "%02x", dig[i]);
	f->size = size;
	return EXIT_OK;
}

/* ------------------------------------------------------------- text */

static void json_str(struct buf *b, const char *s)
{
	if (!s) {
		buf_puts(b, "null");
		return;
	}
	struct buf clean;
	buf_init(&clean, 0);
	rtext_clean(&clean, s, 0, 0); /* valid UTF-8 */
	json_string(b, clean.data ? clean.data : "", clean.len);
	buf_release(&clean);
}

static void html_str(struct buf *b, const char *s)
{
	struct buf clean;
	buf_init(&clean, 0);
	rtext_clean(&clean, s ? s : "", 0, RTEXT_NO_CTRL);
	for (size_t i = 0; i < clean.len; i++) {
		char c = clean.data[i];
		switch (c) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		case '\'': buf_puts(b, "&#39;"); break;
		default: buf_append(b, &c, 1);
		}
	}
	buf_release(&clean);
}

static void size_text(int64_t n, char *out, size_t len)
{
	if (n < 10 * 1024)
		snprintf(out, len, "%" PRId64 " bytes", n);
	else if (n < 10 * 1024 * 1024)
		snprintf(out, len, "%.1f KiB (%" PRId64 " bytes)", (double)n / 1024.0, n);
	else
		snprintf(out, len, "%.1f MiB (%" PRId64 " bytes)", (double)n / 1048576.0, n);
}

static void build_bodies(const struct report_run_info *info, const struct dfile *f, size_t n, struct buf *text,
			 struct buf *html)
{
	buf_printf(text, "%s\nPeriod: %s\n", info->title, info->period);
	buf_puts(html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	html_str(html, info->title);
	buf_puts(html, "</title></head>\n<body style=\"font-family: sans-serif\">\n<h1>");
	html_str(html, info->title);
	buf_puts(html, "</h1>\n<p>Period: ");
	html_str(html, info->period);
	buf_puts(html, "</p>\n");
	for (size_t i = 0; i < info->nparams; i++) {
		buf_printf(text, "%s: %s\n", info->param_names[i], info->param_values[i]);
		buf_puts(html, "<p>");
		html_str(html, info->param_names[i]);
		buf_puts(html, ": ");
		html_str(html, info->param_values[i]);
		buf_puts(html, "</p>\n");
	}
	const char *sec = NULL;
	for (size_t i = 0; i < info->nkpis; i++) {
		const struct deliver_kpi *k = &info->kpis[i];
		if (!sec || strcmp(sec, k->section)) {
			if (sec)
				buf_puts(html, "</table>\n");
			buf_printf(text, "\n%s\n", k->section);
			buf_puts(html, "<h2>");
			html_str(html, k->section);
			buf_puts(html, "</h2>\n<table cellpadding=\"4\">\n");
			sec = k->section;
		}
		buf_printf(text, "  %s: %s\n", k->label, *k->value ? k->value : "-");
		buf_puts(html, "<tr><td>");
		html_str(html, k->label);
		buf_puts(html, "</td><td align=\"right\"><b>");
		html_str(html, *k->value ? k->value : "-");
		buf_puts(html, "</b></td></tr>\n");
	}
	if (sec)
		buf_puts(html, "</table>\n");
	buf_printf(text, "\nAttached (%zu):\n", n);
	buf_printf(html, "<h2>Attached (%zu)</h2>\n<table cellpadding=\"4\">\n", n);
	for (size_t i = 0; i < n; i++) {
		char sz[96];
		size_text(f[i].size, sz, sizeof sz);
		buf_printf(text, "  %s  %s\n", f[i].name, sz);
		buf_puts(html, "<tr><td>");
		html_str(html, f[i].name);
		buf_printf(html, "</td><td align=\"right\">%s</td></tr>\n", sz);
	}
	buf_puts(html, "</table>\n<p><small>cdrflow-report</small></p>\n</body></html>\n");
	buf_puts(text, "\n-- \ncdrflow-report\n");
}

static void build_event(const struct report_run_info *info, const char *key, const struct dfile *f, size_t n,
			struct buf *b)
{
	buf_puts(b, "{\"type\": \"report.ready\", \"key\": ");
	json_str(b, key);
	buf_puts(b, ", \"template\": ");
	json_str(b, info->template_name);
	buf_puts(b, ", \"title\": ");
	json_str(b, info->title);
	buf_puts(b, ", \"period\": ");
	json_str(b, info->period);
	buf_puts(b, ", \"from\": ");
	json_str(b, info->from);
	buf_puts(b, ", \"to\": ");
	json_str(b, info->to);
	buf_puts(b, ", \"tz\": ");
	json_str(b, info->tz);
	buf_puts(b, ", \"params\": {");
	for (size_t i = 0; i < info->nparams; i++) {
		buf_puts(b, i ? ", " : "");
		json_str(b, info->param_names[i]);
		buf_puts(b, ": ");
		json_str(b, info->param_values[i]);
	}
	buf_puts(b, "}, \"kpis\": [");
	for (size_t i = 0; i < info->nkpis; i++) {
		buf_puts(b, i ? ", {\"section\": " : "{\"section\": ");
		json_str(b, info->kpis[i].section);
		buf_puts(b, ", \"label\": ");
		json_str(b, info->kpis[i].label);
		buf_puts(b, ", \"value\": ");
		json_str(b, info->kpis[i].value);
		buf_puts(b, "}");
	}
	buf_puts(b, "], \"files\": [");
	for (size_t i = 0; i < n; i++) {
		buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
		json_str(b, f[i].name);
		buf_puts(b, ", \"path\": ");
		json_str(b, f[i].o->path);
		buf_printf(b, ", \"format\": \"%s\", \"section\": ", fmt_name(f[i].o->format));
		json_str(b, f[i].o->section);
		buf_printf(b, ", \"size\": %" PRId64 ", \"sha256\": \"%s\"}", f[i].size, f[i].sha256);
	}
	buf_puts(b, "]}");
}

/* A whole file (an HTML report: a mail body is bounded by the mail size
 * limit anyway); NULL with errno. */
static char *read_small_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	struct buf b;
	buf_init(&b, 0);
	char chunk[65536];
	size_t r;
	while ((r = fread(chunk, 1, sizeof chunk, fp)) > 0)
		if (buf_append(&b, chunk, r) < 0) {
			fclose(fp);
			buf_release(&b);
			errno = ENOMEM;
			return NULL;
		}
	int bad = ferror(fp);
	fclose(fp);
	if (bad) {
		buf_release(&b);
		errno = EIO;
		return NULL;
	}
	if (!b.data)
		return xstrdup("");
	return buf_detach(&b, len);
}

/* ------------------------------------------------------------- channels */

/* 1 if key waits in dir already (then this run leaves it to the spool), 0, or -1. */
static int queued(const char *dir, const char *key)
{
	return outbox_find_key(dir, key, NULL);
}

static int deliver_mail(struct report_delivery *rd, const struct report_run_info *info, const struct dfile *f,
			size_t n, unsigned formats, char *err, size_t errlen)
{
	char key[OUTBOX_KEY_MAX + 1];
	report_deliver_key(info, formats, rd->to, key, sizeof key);
	char *dir = delivery_spool_dir(rd->cfg, "mail");
	int code = EXIT_OK, q = queued(dir, key);
	if (q != 0) {
		if (q < 0) {
			snprintf(err, errlen, "mail: cannot read the spool \"%s\": %s", dir, strerror(errno));
			code = EXIT_IOERR;
		} else {
			snprintf(err, errlen, "mail %s: already queued from an earlier run ('cdrflow-report retry' sends it)",
				 key);
			code = EXIT_UNAVAILABLE;
		}
		free(dir);
		return code;
	}
	struct buf text, html, msg;
	buf_init(&text, 0);
	buf_init(&html, 0);
	buf_init(&msg, 0);
	build_bodies(info, f, n, &text, &html);
	/* an HTML report is the HTML body itself (and then not attached) */
	const struct dfile *hf = NULL;
	for (size_t i = 0; i < n && !hf; i++)
		if (f[i].o->format == DELIVER_FMT_HTML)
			hf = &f[i];
	if (hf) {
		size_t len = 0;
		char *body = read_small_file(hf->o->path, &len);
		if (!body) {
			snprintf(err, errlen, "mail: cannot read \"%s\": %s", hf->o->path, strerror(errno));
			buf_release(&text);
			buf_release(&html);
			free(dir);
			return EXIT_NOINPUT;
		}
		buf_release(&html);
		buf_init(&html, 0);
		buf_append(&html, body, len);
		free(body);
	}
	char *subject = rd->spec.subject ? xasprintf("%s %s", rd->spec.subject, info->period)
					 : xasprintf("%s %s", info->title, info->period);
	struct mail_attachment *att = xcalloc(n ? n : 1, sizeof *att);
	size_t natt = 0;
	for (size_t i = 0; i < n; i++) {
		if (&f[i] == hf)
			continue;
		att[natt].path = f[i].o->path;
		att[natt++].filename = f[i].name;
	}
	struct mail_msg m = { .from = rd->cfg->mail.from,
			      .to = rd->to,
			      .subject = subject,
			      .text = text.data,
			      .html = html.data,
			      .att = att,
			      .natt = natt };
	char e[1024] = "";
	if (!text.data || !html.data) {
		snprintf(err, errlen, "mail: out of memory");
		code = EXIT_SOFTWARE;
	} else if (mail_build(&m, &msg, e, sizeof e) < 0) {
		int en = errno;
		snprintf(err, errlen, "mail: %s", e);
		code = en == EINVAL ? EXIT_DATAERR : en == ENOMEM || en == EFBIG ? EXIT_SOFTWARE : EXIT_NOINPUT;
	} else {
		code = mail_deliver(&rd->cfg->mail, rd->password, dir, key, rd->from_addr, rd->rcpt, rd->nrcpt, msg.data,
				    msg.len, e, sizeof e);
		if (code == EXIT_OK)
			log_info("mail %s: %zu files, %zu bytes, delivered to %zu recipients", key, n, msg.len, rd->nrcpt);
		else
			snprintf(err, errlen, "mail %s: %s (%s)", key, e,
				 code == EXIT_DATAERR	? "rejected: kept in the spool's dead/"
				 : code == EXIT_IOERR ? "NOT queued: the spool failed; the files are still on disk"
						      : "queued: 'cdrflow-report retry' sends it");
	}
	free(subject);
	free(att);
	buf_release(&text);
	buf_release(&html);
	buf_release(&msg);
	free(dir);
	return code;
}

static int deliver_webhook(struct report_delivery *rd, const struct report_run_info *info, const struct dfile *f,
			   size_t n, unsigned formats, char *err, size_t errlen)
{
	char key[OUTBOX_KEY_MAX + 1];
	report_deliver_key(info, formats, NULL, key, sizeof key);
	char *dir = delivery_spool_dir(rd->cfg, "webhook");
	int code = EXIT_OK, q = queued(dir, key);
	if (q != 0) {
		if (q < 0) {
			snprintf(err, errlen, "webhook: cannot read the spool \"%s\": %s", dir, strerror(errno));
			code = EXIT_IOERR;
		} else {
			snprintf(err, errlen,
				 "webhook %s: already queued from an earlier run ('cdrflow-report retry' sends it)", key);
			code = EXIT_UNAVAILABLE;
		}
		free(dir);
		return code;
	}
	struct buf ev;
	buf_init(&ev, 0);
	build_event(info, key, f, n, &ev);
	char e[1024] = "";
	if (!ev.data) {
		snprintf(err, errlen, "webhook: out of memory");
		code = EXIT_SOFTWARE;
	} else {
		code = webhook_deliver(&rd->w, dir, key, ev.data, ev.len, e, sizeof e);
		if (code == EXIT_OK)
			log_info("webhook %s: report.ready delivered (%zu files)", key, n);
		else
			snprintf(err, errlen, "webhook %s: %s (%s)", key, e,
				 code == EXIT_DATAERR	? "rejected: kept in the spool's dead/"
				 : code == EXIT_IOERR ? "NOT queued: the spool failed"
						      : "queued: 'cdrflow-report retry' sends it");
	}
	buf_release(&ev);
	free(dir);
	return code;
}

int report_deliver(struct report_delivery *rd, const struct report_run_info *info,
		   const struct deliver_file *files, size_t n, char *err, size_t errlen)
{
	*err = '\0';
	unsigned want = rd->spec.formats ? rd->spec.formats : DELIVER_FMT_ALL;
	struct dfile *f = xcalloc(n ? n : 1, sizeof *f);
	size_t nf = 0;
	unsigned formats = 0;
	int code = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		if (!(files[i].format & want))
			continue;
		struct dfile *d = &f[nf];
		d->o = &files[i];
		const char *s = strrchr(files[i].path, '/');
		d->name = s ? s + 1 : files[i].path;
		code = hash_file(files[i].path, d, err, errlen);
		if (code != EXIT_OK)
			break;
		formats |= files[i].format;
		nf++;
	}
	if (code == EXIT_OK && nf == 0)
		log_warn("%s: none of the files written is of the delivery's formats: the summary goes alone",
			 info->template_name);
	if (code == EXIT_OK) {
		char e[1024] = "";
		if (rd->mail) {
			int c = deliver_mail(rd, info, f, nf, formats, e, sizeof e);
			if (c != EXIT_OK) {
				log_error("%s", e);
				snprintf(err, errlen, "%s", e);
			}
			code = dlv_exit_merge(code, c);
		}
		if (rd->webhook) {
			int c = deliver_webhook(rd, info, f, nf, formats, e, sizeof e);
			if (c != EXIT_OK) {
				log_error("%s", e);
				if (code == EXIT_OK || dlv_exit_merge(code, c) != code)
					snprintf(err, errlen, "%s", e);
			}
			code = dlv_exit_merge(code, c);
		}
	}
	free(f);
	return code;
}

/* ------------------------------------------------------------- retry, alerts */

/* The webhook spool holds alert-<id> messages too (queued by `alerts`):
 * one that goes through here marks its row delivered when the database can
 * be reached (connected on the first such message), else the next
 * `alerts` run posts it again with the same key (at least once). */
struct retry_hook {
	struct webhook *w;
	const char *conninfo;
	PGconn *c;
	int db_tried;
	size_t unmarked;
};

static enum dlv_result retry_hook_send(void *ctx, const struct outbox_msg *m, char *err, size_t errlen)
{
	struct retry_hook *h = ctx;
	enum dlv_result r = webhook_spool_send(h->w, m, err, errlen);
	const char *id = !strncmp(m->key, "alert-", 6) ? m->key + 6 : NULL;
	if (r != DLV_OK || !id || !*id || strspn(id, "0123456789") != strlen(id))
		return r;
	if (!h->db_tried) {
		h->db_tried = 1;
		h->c = PQconnectdb(h->conninfo ? h->conninfo : "");
		if (PQstatus(h->c) != CONNECTION_OK) {
			char *e = PQerrorMessage(h->c);
			e[strcspn(e, "\n")] = '\0';
			log_warn("retry: cannot mark delivered alerts in the database: %s", e);
			PQfinish(h->c);
			h->c = NULL;
		}
	}
	PGresult *q = h->c ? PQexecParams(h->c,
					  "UPDATE alert SET delivered_at = now(), "
					  "delivery_attempts = coalesce(delivery_attempts, 0) + 1 "
					  "WHERE id = $1::bigint AND delivered_at IS NULL",
					  1, NULL, (const char *const[]){ id }, NULL, NULL, 0)
			   : NULL;
	if (!q || PQresultStatus(q) != PGRES_COMMAND_OK)
		h->unmarked++;
	PQclear(q);
	return r;
}

static size_t spool_count(const char *dir)
{
	char **names;
	size_t n = 0;
	if (outbox_list(dir, &names, &n) == 0)
		outbox_names_free(names, n);
	return n;
}

int report_retry(const struct delivery_cfg *cfg, FILE *out)
{
	int code = EXIT_OK;
	char err[1024];
	char *dir = delivery_spool_dir(cfg, "mail");
	struct outbox_stats st;
	memset(&st, 0, sizeof st);
	if (spool_count(dir)) {
		char *password = NULL;
		int need = cfg->mail.username && *cfg->mail.username;
		if (!cfg->mail.host || !*cfg->mail.host) {
			log_error("mail: messages are queued in \"%s\" but report.delivery.mail.host is not set", dir);
			code = dlv_exit_merge(code, EXIT_CONFIG);
		} else if (secret_load(cfg->mail.password_env, cfg->mail.password_file, need, &password, err, sizeof err) <
			   0) {
			log_error("mail: %s", err);
			code = dlv_exit_merge(code, EXIT_CONFIG);
		} else {
			struct mail_sender s = { &cfg->mail, password };
			int rc = outbox_retry(dir, mail_spool_send, &s, &st, err, sizeof err);
			if (rc)
				log_error("mail retry: %s", err);
			code = dlv_exit_merge(code, rc);
		}
		secret_free(password);
	}
	fprintf(out, "mail delivered=%zu queued=%zu dead=%zu corrupt=%zu\n", st.delivered, st.queued, st.dead,
		st.corrupt);
	free(dir);

	dir = delivery_spool_dir(cfg, "webhook");
	memset(&st, 0, sizeof st);
	uint64_t requests = 0;
	if (spool_count(dir)) {
		struct webhook w;
		if (webhook_open(&w, &cfg->webhook, err, sizeof err) < 0) {
			log_error("webhook: messages are queued in \"%s\" but: %s", dir, err);
			code = dlv_exit_merge(code, EXIT_CONFIG);
		} else {
			struct retry_hook h = { &w, cfg->conninfo, NULL, 0, 0 };
			int rc = outbox_retry(dir, retry_hook_send, &h, &st, err, sizeof err);
			if (rc)
				log_error("webhook retry: %s", err);
			if (h.unmarked)
				log_warn("webhook retry: %zu alerts delivered but not marked in the database: the next "
					 "'cdrflow-report alerts' posts them again with the same key",
					 h.unmarked);
			code = dlv_exit_merge(code, rc);
			requests = w.requests;
			if (h.c)
				PQfinish(h.c);
			webhook_close(&w);
		}
	}
	fprintf(out, "webhook delivered=%zu queued=%zu dead=%zu corrupt=%zu requests=%" PRIu64 "\n", st.delivered,
		st.queued, st.dead, st.corrupt, requests);
	free(dir);
	return code;
}

int report_alerts(PGconn *c, const struct delivery_cfg *cfg, size_t limit, FILE *out)
{
	char err[1024];
	struct alerts_stats st;
	char *dir = delivery_spool_dir(cfg, "webhook");
	int code = alerts_deliver(c, &cfg->webhook, dir, limit, &st, err, sizeof err);
	if (code)
		log_error("alerts: %s", err);
	fprintf(out, "alerts delivered=%zu queued=%zu already_queued=%zu spool_delivered=%zu spool_queued=%zu\n",
		st.delivered, st.queued, st.already_queued, st.spool.delivered, st.spool.queued);
	free(dir);
	return code;
}
