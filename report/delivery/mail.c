/*
 * mail.c - MIME building and SMTP submission.
 */
#include "mail.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "exitcode.h"
#include "log.h"
#include "xalloc.h"

#define MAIL_ADDR_MAX 254

const char *mail_content_type(const char *filename)
{
	const char *dot = strrchr(filename, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcasecmp(dot, ".pdf"))
		return "application/pdf";
	if (!strcasecmp(dot, ".csv"))
		return "text/csv; charset=utf-8";
	if (!strcasecmp(dot, ".xlsx"))
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
	if (!strcasecmp(dot, ".json"))
		return "application/json";
	if (!strcasecmp(dot, ".txt"))
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

/* ---------------------------------------------------------------- addresses */

static int addr_ok(const char *a, size_t n)
{
	if (n == 0 || n > MAIL_ADDR_MAX)
		return 0;
	const char *at = memchr(a, '@', n);
	if (!at || at == a || at == a + n - 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)a[i];
		if (ch <= ' ' || ch > '~' || strchr("<>,\"()[];:\\", ch))
			return 0;
	}
	return 1;
}

static const char *trim(const char *s, const char *e, const char **end)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*end = e;
	return s;
}

/* the bare address of one "a@b" or "Name <a@b>" entry [s, e) */
static int entry_addr(const char *s, const char *e, const char **as, size_t *an)
{
	const char *lt = memchr(s, '<', (size_t)(e - s));
	if (lt) {
		const char *gt = memchr(lt, '>', (size_t)(e - lt));
		if (!gt || gt + 1 != e)
			return -1;
		*as = lt + 1;
		*an = (size_t)(gt - lt - 1);
	} else {
		*as = s;
		*an = (size_t)(e - s);
	}
	return addr_ok(*as, *an) ? 0 : -1;
}

void mail_addresses_free(char **addrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
}

int mail_addresses(const char *list, char ***addrs, size_t *n, char *err, size_t errlen)
{
	*addrs = NULL;
	*n = 0;
	if (!list || strpbrk(list, "\r\n")) {
		snprintf(err, errlen, "bad address list");
		return -1;
	}
	const char *p = list;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *stop = comma ? comma : p + strlen(p), *e;
		const char *s = trim(p, stop, &e);
		if (s < e) {
			const char *as;
			size_t an;
			if (entry_addr(s, e, &as, &an) < 0) {
				snprintf(err, errlen, "bad address \"%.*s\"", (int)(e - s), s);
				mail_addresses_free(*addrs, *n);
				*addrs = NULL;
				*n = 0;
				return -1;
			}
			*addrs = xrealloc(*addrs, (*n + 1) * sizeof **addrs);
			(*addrs)[(*n)++] = xstrndup(as, an);
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (*n == 0) {
		snprintf(err, errlen, "no address in \"%s\"", list);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- encodings */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of p; line > 0: CRLF after every `line` output characters and at the end */
static int put_base64(struct buf *o, const unsigned char *p, size_t n, size_t line)
{
	size_t col = 0;
	if (buf_grow(o, n / 3 * 4 + 4 + (line ? (n / 3 * 4 / line + 2) * 2 : 0)) < 0)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		size_t k = n - i < 3 ? n - i : 3;
		if (k > 1)
			v |= (unsigned)p[i + 1] << 8;
		if (k > 2)
			v |= p[i + 2];
		char q[4] = { b64[(v >> 18) & 63], b64[(v >> 12) & 63], k > 1 ? b64[(v >> 6) & 63] : '=',
			      k > 2 ? b64[v & 63] : '=' };
		if (buf_append(o, q, 4) < 0)
			return -1;
		col += 4;
		if (line && col >= line) {
			if (buf_append(o, "\r\n", 2) < 0)
				return -1;
			col = 0;
		}
	}
	if (line && col && buf_append(o, "\r\n", 2) < 0)
		return -1;
	return 0;
}

static int is_plain_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s > '~')
			return 0;
	return 1;
}

/* RFC 2047 B encoded-words, at most 39 input bytes (52 base64 chars, 64 in
 * all) each, so that even after "Subject: " a line stays within 78
 * characters; never splitting a UTF-8 sequence; words are folded onto
 * continuation lines. */
static int put_encoded_words(struct buf *o, const char *s)
{
	size_t n = strlen(s), i = 0;
	while (i < n) {
		size_t k = n - i < 39 ? n - i : 39;
		while (k > 1 && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80)
			k--;
		if (i && buf_puts(o, "\r\n ") < 0)
			return -1;
		if (buf_puts(o, "=?UTF-8?B?") < 0 || put_base64(o, (const unsigned char *)s + i, k, 0) < 0 ||
		    buf_puts(o, "?=") < 0)
			return -1;
		i += k;
	}
	return 0;
}

static int put_text_header(struct buf *o, const char *name, const char *value)
{
	if (buf_printf(o, "%s: ", name) < 0)
		return -1;
	if (is_plain_ascii(value)) {
		if (buf_puts(o, value) < 0)
			return -1;
	} else if (put_encoded_words(o, value) < 0) {
		return -1;
	}
	return buf_puts(o, "\r\n");
}

/* an RFC 5322 quoted-string */
static int put_quoted(struct buf *o, const char *s)
{
	if (buf_puts(o, "\"") < 0)
		return -1;
	for (; *s; s++)
		if ((*s == '"' || *s == '\\') ? buf_printf(o, "\\%c", *s) < 0 : buf_append(o, s, 1) < 0)
			return -1;
	return buf_puts(o, "\"");
}

/* From/To: each "Name <addr>" entry with a non-ASCII name gets it encoded */
static int put_address_header(struct buf *o, const char *name, const char *list, char *err, size_t errlen)
{
	if (buf_printf(o, "%s: ", name) < 0)
		return -1;
	const char *p = list;
	int first = 1;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *stop = comma ? comma : p + strlen(p), *e;
		const char *s = trim(p, stop, &e);
		if (s < e) {
			const char *as;
			size_t an;
			if (entry_addr(s, e, &as, &an) < 0) {
				snprintf(err, errlen, "bad address \"%.*s\" in %s", (int)(e - s), s, name);
				errno = EINVAL;
				return -1;
			}
			if (!first && buf_puts(o, ",\r\n ") < 0)
				return -1;
			first = 0;
			const char *lt = memchr(s, '<', (size_t)(e - s)), *ne;
			const char *ns = lt ? trim(s, lt, &ne) : s;
			if (lt && ns < ne) {
				char *dn = xstrndup(ns, (size_t)(ne - ns));
				int rc = 0;
				if (is_plain_ascii(dn) && !strpbrk(dn, "()<>[]:;@\\,.\""))
					rc = buf_puts(o, dn);
				else if (is_plain_ascii(dn))
					rc = put_quoted(o, dn);
				else
					rc = put_encoded_words(o, dn);
				free(dn);
				if (rc < 0 || buf_puts(o, " ") < 0)
					return -1;
			}
			if (buf_printf(o, "<%.*s>", (int)an, as) < 0)
				return -1;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (first) {
		snprintf(err, errlen, "no address in %s", name);
		errno = EINVAL;
		return -1;
	}
	return buf_puts(o, "\r\n");
}

/* a text body in canonical form (CRLF line ends), base64 */
static int put_text_part(struct buf *o, const char *boundary, const char *type, const char *text)
{
	struct buf c;
	buf_init(&c, 0);
	int rc = -1;
	for (const char *p = text; *p; p++) {
		if (*p == '\n' && (p == text || p[-1] != '\r')) {
			if (buf_append(&c, "\r", 1) < 0)
				goto out;
		}
		if (buf_append(&c, p, 1) < 0)
			goto out;
	}
	if (buf_printf(o, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		       boundary, type) < 0 ||
	    put_base64(o, (const unsigned char *)c.data, c.len, 76) < 0)
		goto out;
	rc = 0;
out:
	buf_release(&c);
	return rc;
}

static int read_whole(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char chunk[65536];
	size_t r;
	while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (buf_append(b, chunk, r) < 0) {
			fclose(f);
			errno = EFBIG;
			return -1;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static int safe_quoted(const char *s)
{
	return is_plain_ascii(s) && !strpbrk(s, "\"\\");
}

static int put_attachment(struct buf *o, const char *boundary, const struct mail_attachment *a, char *err,
			  size_t errlen)
{
	const char *fname = a->filename;
	if (!fname) {
		const char *slash = strrchr(a->path, '/');
		fname = slash ? slash + 1 : a->path;
	}
	const char *type = a->content_type ? a->content_type : mail_content_type(fname);
	if (!*fname || strpbrk(fname, "\r\n") || strpbrk(type, "\r\n")) {
		snprintf(err, errlen, "bad attachment name \"%s\"", fname);
		errno = EINVAL;
		return -1;
	}
	struct buf data;
	buf_init(&data, 0);
	if (read_whole(a->path, &data) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot read attachment \"%s\": %s", a->path, strerror(e));
		buf_release(&data);
		errno = e;
		return -1;
	}
	int rc = -1;
	/* the XLSX type is 65 characters: fold before it to stay within 78 */
	const char *fold = strlen("Content-Type: ") + strlen(type) + 1 > 78 ? "\r\n " : " ";
	if (buf_printf(o, "--%s\r\n", boundary) < 0)
		goto out;
	if (safe_quoted(fname)) {
		if (buf_printf(o, "Content-Type:%s%s;\r\n name=\"%s\"\r\nContent-Disposition: attachment;\r\n filename=\"%s\"\r\n",
			       fold, type, fname, fname) < 0)
			goto out;
	} else {
		/* RFC 2231 for the disposition; an encoded-word name= for old readers */
		if (buf_printf(o, "Content-Type:%s%s;\r\n name=\"", fold, type) < 0 || put_encoded_words(o, fname) < 0 ||
		    buf_puts(o, "\"\r\nContent-Disposition: attachment;\r\n filename*=UTF-8''") < 0)
			goto out;
		for (const unsigned char *p = (const unsigned char *)fname; *p; p++) {
			int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
				    strchr("!#$&+-.^_`|~", *p);
			if ((plain ? buf_append(o, p, 1) : buf_printf(o, "%%%02X", *p)) < 0)
				goto out;
		}
		if (buf_puts(o, "\r\n") < 0)
			goto out;
	}
	if (buf_puts(o, "Content-Transfer-Encoding: base64\r\n\r\n") < 0 ||
	    put_base64(o, (const unsigned char *)data.data, data.len, 76) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && !*err) {
		snprintf(err, errlen, "out of memory building the message");
		errno = ENOMEM;
	}
	buf_release(&data);
	return rc;
}

static int random_hex(char *out, size_t nbytes)
{
	unsigned char r[32];
	if (nbytes > sizeof r || RAND_bytes(r, (int)nbytes) != 1)
		return -1;
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

static int put_date(struct buf *o, int64_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		return -1;
	return buf_printf(o, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday,
			  mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int mail_build(const struct mail_msg *m, struct buf *out, char *err, size_t errlen)
{
	*err = '\0';
	if (!m->from || !m->to || !m->subject || !m->text || strpbrk(m->subject, "\r\n") ||
	    (m->message_id && strpbrk(m->message_id, "\r\n"))) {
		snprintf(err, errlen, "bad message: from, to, subject and text are required, on one line each");
		errno = EINVAL;
		return -1;
	}
	char outer[64] = "=_cdrflow_", inner[64], rnd[33];
	if (random_hex(rnd, 16) < 0) {
		snprintf(err, errlen, "no random bytes for the MIME boundary");
		errno = EIO;
		return -1;
	}
	snprintf(outer, sizeof outer, "=_cdrflow_mixed_%s", rnd);
	snprintf(inner, sizeof inner, "=_cdrflow_alt_%s", rnd);
	char **from;
	size_t nfrom;
	if (mail_addresses(m->from, &from, &nfrom, err, errlen) < 0 || nfrom != 1) {
		if (nfrom > 1) {
			mail_addresses_free(from, nfrom);
			snprintf(err, errlen, "from must be one address");
		}
		errno = EINVAL;
		return -1;
	}
	const char *domain = strrchr(from[0], '@') + 1;
	int rc = -1;
	if (put_date(out, m->date ? m->date : (int64_t)time(NULL)) < 0 ||
	    put_address_header(out, "From", m->from, err, errlen) < 0 ||
	    put_address_header(out, "To", m->to, err, errlen) < 0 || put_text_header(out, "Subject", m->subject) < 0)
		goto out;
	if (m->message_id) {
		if (buf_printf(out, "Message-ID: %s\r\n", m->message_id) < 0)
			goto out;
	} else {
		char id[33];
		if (random_hex(id, 16) < 0 || buf_printf(out, "Message-ID: <%s@%s>\r\n", id, domain) < 0)
			goto out;
	}
	if (buf_puts(out, "MIME-Version: 1.0\r\nX-Mailer: cdrflow\r\n") < 0 ||
	    buf_printf(out, "Content-Type: multipart/mixed;\r\n boundary=\"%s\"\r\n\r\n", outer) < 0 ||
	    buf_puts(out, "This is a multi-part message in MIME format.\r\n\r\n") < 0)
		goto out;
	if (m->html) {
		if (buf_printf(out, "--%s\r\nContent-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", outer,
			       inner) < 0 ||
		    put_text_part(out, inner, "text/plain", m->text) < 0 ||
		    put_text_part(out, inner, "text/html", m->html) < 0 || buf_printf(out, "--%s--\r\n", inner) < 0)
			goto out;
	} else if (put_text_part(out, outer, "text/plain", m->text) < 0) {
		goto out;
	}
	for (size_t i = 0; i < m->natt; i++)
		if (put_attachment(out, outer, &m->att[i], err, errlen) < 0)
			goto out;
	if (buf_printf(out, "--%s--\r\n", outer) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && !*err) {
		snprintf(err, errlen, "out of memory building the message");
		errno = ENOMEM;
	}
	mail_addresses_free(from, nfrom);
	return rc;
}

/* ---------------------------------------------------------------- SMTP */

struct upload {
	const char *p;
	size_t left;
};

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t room = size * n, take = u->left < room ? u->left : room;
	memcpy(dst, u->p, take);
	u->p += take;
	u->left -= take;
	return take;
}

static size_t on_discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

enum dlv_result mail_send(const struct mail_cfg *c, const char *password, const char *from_addr,
			  char *const *rcpt, size_t nrcpt, const char *data, size_t len, char *err, size_t errlen)
{
	if (!c->host || !*c->host) {
		snprintf(err, errlen, "no mail host configured");
		return DLV_LOCAL;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return DLV_LOCAL;
	}
	struct curl_slist *to = NULL;
	for (size_t i = 0; i < nrcpt; i++) {
		char *r = xasprintf("<%s>", rcpt[i]);
		struct curl_slist *t = curl_slist_append(to, r);
		free(r);
		if (!t) {
			curl_slist_free_all(to);
			curl_easy_cleanup(h);
			snprintf(err, errlen, "out of memory");
			return DLV_LOCAL;
		}
		to = t;
	}
	int v6 = strchr(c->host, ':') != NULL;
	char *url = xasprintf("%s://%s%s%s:%" PRId64 "/%s", c->tls == MAIL_TLS_TLS ? "smtps" : "smtp", v6 ? "[" : "",
			      c->host, v6 ? "]" : "", c->port, c->helo ? c->helo : "");
	char *mfrom = xasprintf("<%s>", from_addr);
	struct upload up = { data, len };
	char ebuf[CURL_ERROR_SIZE] = "";
	int auth = c->username && *c->username;
	int ok = curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps") == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_USE_SSL,
				  c->tls == MAIL_TLS_NONE ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L) == CURLE_OK &&
		 (!c->tls_ca_file || !*c->tls_ca_file || curl_easy_setopt(h, CURLOPT_CAINFO, c->tls_ca_file) == CURLE_OK) &&
		 (!auth || (curl_easy_setopt(h, CURLOPT_USERNAME, c->username) == CURLE_OK &&
			    curl_easy_setopt(h, CURLOPT_PASSWORD, password ? password : "") == CURLE_OK)) &&
		 curl_easy_setopt(h, CURLOPT_MAIL_FROM, mfrom) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_MAIL_RCPT, to) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_READDATA, &up) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_discard) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms) == CURLE_OK &&
		 curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms) == CURLE_OK;
	enum dlv_result r = DLV_LOCAL;
	if (!ok) {
		snprintf(err, errlen, "cannot set up the SMTP session (libcurl option refused)");
	} else {
		CURLcode rc = curl_easy_perform(h);
		long code = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (rc == CURLE_OK) {
			r = DLV_OK;
		} else {
			if (rc == CURLE_LOGIN_DENIED || code == 530 || code == 534 || code == 535 || code == 538)
				r = DLV_AUTH;
			else if (code >= 500 && code < 600)
				r = DLV_REJECTED;
			else
				r = DLV_TEMPFAIL;
			if (code)
				snprintf(err, errlen, "%s (SMTP %ld)", *ebuf ? ebuf : curl_easy_strerror(rc), code);
			else
				snprintf(err, errlen, "%s", *ebuf ? ebuf : curl_easy_strerror(rc));
		}
	}
	free(url);
	free(mfrom);
	curl_slist_free_all(to);
	curl_easy_cleanup(h);
	return r;
}

/* meta line of a queued mail: "<from> <to1>,<to2>,..." (addresses hold no
 * spaces or commas: addr_ok) */
int mail_deliver(const struct mail_cfg *c, const char *password, const char *spool_dir, const char *key,
		 const char *from_addr, char *const *rcpt, size_t nrcpt, const char *data, size_t len, char *err,
		 size_t errlen)
{
	enum dlv_result r = mail_send(c, password, from_addr, rcpt, nrcpt, data, len, err, errlen);
	if (r == DLV_OK) {
		log_info("mail %s delivered to %zu recipients", key, nrcpt);
		return 0;
	}
	if (r == DLV_LOCAL)
		r = DLV_TEMPFAIL; /* nothing was sent: keep it for a run that can send */
	struct buf meta;
	buf_init(&meta, 0);
	if (buf_puts(&meta, from_addr) < 0)
		goto oom;
	for (size_t i = 0; i < nrcpt; i++)
		if (buf_printf(&meta, "%c%s", i ? ',' : ' ', rcpt[i]) < 0)
			goto oom;
	int code = outbox_keep(spool_dir, "mail", key, meta.data, data, len, r, err, errlen);
	buf_release(&meta);
	return code;
oom:
	buf_release(&meta);
	snprintf(err, errlen, "out of memory");
	return EXIT_SOFTWARE;
}

enum dlv_result mail_spool_send(void *ctx, const struct outbox_msg *m, char *err, size_t errlen)
{
	const struct mail_sender *s = ctx;
	if (strcmp(m->kind, "mail")) {
		snprintf(err, errlen, "not a mail message (kind %s)", m->kind);
		return DLV_LOCAL;
	}
	if (!s || !s->cfg) {
		snprintf(err, errlen, "no mail server configured for this run");
		return DLV_LOCAL;
	}
	const char *sp = m->meta ? strchr(m->meta, ' ') : NULL;
	if (!sp) {
		snprintf(err, errlen, "queued mail without an envelope");
		return DLV_REJECTED;
	}
	char *from = xstrndup(m->meta, (size_t)(sp - m->meta));
	char **rcpt;
	size_t n;
	enum dlv_result r;
	if (mail_addresses(sp + 1, &rcpt, &n, err, errlen) < 0) {
		r = DLV_REJECTED;
	} else {
		r = mail_send(s->cfg, s->password, from, rcpt, n, m->body, m->body_len, err, errlen);
		mail_addresses_free(rcpt, n);
	}
	free(from);
	return r;
}
