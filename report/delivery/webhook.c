/*
 * webhook.c - signed JSON POSTs through libcurl.
 */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"
#include "hmac.h"
#include "log.h"
#include "xalloc.h"

#ifndef CDRFLOW_VERSION
#define CDRFLOW_VERSION "0"
#endif

int webhook_open(struct webhook *w, const struct webhook_cfg *cfg, char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	w->cfg = cfg;
	if (!cfg->url || !*cfg->url) {
		snprintf(err, errlen, "no webhook url configured");
		return -1;
	}
	if (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8)) {
		snprintf(err, errlen, "webhook url must start with http:// or https://");
		return -1;
	}
	if (secret_load(cfg->secret_env, cfg->secret_file, 1, &w->secret, err, errlen) < 0)
		return -1;
	w->curl = curl_easy_init();
	if (!w->curl) {
		secret_free(w->secret);
		w->secret = NULL;
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w->rnd = (unsigned)ts.tv_nsec ^ (unsigned)getpid();
	return 0;
}

void webhook_close(struct webhook *w)
{
	if (w->curl)
		curl_easy_cleanup(w->curl);
	secret_free(w->secret);
	memset(w, 0, sizeof *w);
}

struct reply {
	char text[200]; /* the start of the response body, for the log */
	size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t len = size * n, room = sizeof r->text - 1 - r->len;
	size_t take = len < room ? len : room;
	memcpy(r->text + r->len, p, take);
	r->len += take;
	r->text[r->len] = '\0';
	return len;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static enum dlv_result classify(long status)
{
	if (status >= 200 && status < 300)
		return DLV_OK;
	if (status >= 500 || status == 408 || status == 429)
		return DLV_TEMPFAIL;
	if (status == 401 || status == 403)
		return DLV_AUTH;
	return DLV_REJECTED;
}

/* one request; *status 0 when no HTTP status was received */
static enum dlv_result post_once(struct webhook *w, const char *key, const char *body, size_t len, long *status,
				 long *retry_after_s, char *err, size_t errlen)
{
	CURL *c = w->curl;
	const struct webhook_cfg *cfg = w->cfg;
	int64_t ts = (int64_t)time(NULL);
	char sig[WEBHOOK_SIG_LEN];
	*status = 0;
	*retry_after_s = 0;
	if (webhook_signature(w->secret, strlen(w->secret), ts, body, len, sig) < 0) {
		snprintf(err, errlen, "cannot compute the signature");
		return DLV_LOCAL;
	}
	char h_ts[64], h_sig[64 + WEBHOOK_SIG_LEN], h_key[64 + OUTBOX_KEY_MAX];
	snprintf(h_ts, sizeof h_ts, "X-Cdrflow-Timestamp: %" PRId64, ts);
	snprintf(h_sig, sizeof h_sig, "X-Cdrflow-Signature: %s", sig);
	snprintf(h_key, sizeof h_key, "Idempotency-Key: %s", key);
	struct curl_slist *hdr = NULL, *t;
	const char *lines[] = { "Content-Type: application/json", "Expect:", h_ts, h_sig, h_key };
	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
		t = curl_slist_append(hdr, lines[i]);
		if (!t) {
			curl_slist_free_all(hdr);
			snprintf(err, errlen, "out of memory");
			return DLV_LOCAL;
		}
		hdr = t;
	}
	struct reply rep = { .len = 0 };
	rep.text[0] = '\0';
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_easy_reset(c);
	int ok = curl_easy_setopt(c, CURLOPT_URL, cfg->url) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_USERAGENT, "cdrflow/" CDRFLOW_VERSION) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_WRITEDATA, &rep) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L) == CURLE_OK &&
		 curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L) == CURLE_OK &&
		 (!cfg->tls_ca_file || !*cfg->tls_ca_file ||
		  curl_easy_setopt(c, CURLOPT_CAINFO, cfg->tls_ca_file) == CURLE_OK);
	if (!ok) {
		curl_slist_free_all(hdr);
		snprintf(err, errlen, "cannot set up the request (libcurl option refused)");
		return DLV_LOCAL;
	}
	CURLcode rc = curl_easy_perform(c);
	w->requests++;
	curl_slist_free_all(hdr);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", *ebuf ? ebuf : curl_easy_strerror(rc));
		return DLV_TEMPFAIL;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_off_t ra = 0;
	if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
		*retry_after_s = (long)ra;
	/* keep the peer's words on one printable line */
	for (char *p = rep.text; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	enum dlv_result r = classify(*status);
	if (r != DLV_OK)
		snprintf(err, errlen, "HTTP %ld%s%s", *status, *rep.text ? ": " : "", rep.text);
	return r;
}

enum dlv_result webhook_post(struct webhook *w, const char *key, const char *body, size_t len, int *attempts,
			     long *status, char *err, size_t errlen)
{
	*attempts = 0;
	*status = 0;
	if (w->down != DLV_OK) {
		snprintf(err, errlen, "endpoint down earlier in this run (%s)", w->down_reason);
		return w->down;
	}
	uint64_t delay = w->cfg->backoff_min_ms;
	enum dlv_result r = DLV_TEMPFAIL;
	for (int64_t n = 1; n <= w->cfg->max_attempts; n++) {
		long retry_after = 0;
		(*attempts)++;
		r = post_once(w, key, body, len, status, &retry_after, err, errlen);
		log_debug("webhook %s attempt %" PRId64 ": %s%s%s", key, n, dlv_result_name(r), r ? ", " : "",
			  r ? err : "");
		if (r != DLV_TEMPFAIL || n == w->cfg->max_attempts)
			break;
		uint64_t d = delay;
		if (retry_after > 0 && (uint64_t)retry_after * 1000 > d)
			d = (uint64_t)retry_after * 1000;
		if (d > w->cfg->backoff_max_ms)
			d = w->cfg->backoff_max_ms;
		/* jitter: uniform in [d/2, d] */
		uint64_t half = d / 2;
		uint64_t wait = half + (half ? (uint64_t)rand_r(&w->rnd) % (d - half + 1) : 0);
		log_info("webhook %s: %s; retrying in %" PRIu64 " ms", key, err, wait);
		sleep_ms(wait);
		if (delay < w->cfg->backoff_max_ms)
			delay *= 2;
	}
	if (r == DLV_TEMPFAIL || r == DLV_AUTH) {
		w->down = r;
		snprintf(w->down_reason, sizeof w->down_reason, "%s", err);
	}
	return r;
}

int webhook_deliver(struct webhook *w, const char *spool_dir, const char *key, const char *body, size_t len,
		    char *err, size_t errlen)
{
	int attempts;
	long status;
	enum dlv_result r = webhook_post(w, key, body, len, &attempts, &status, err, errlen);
	if (r == DLV_OK) {
		log_info("webhook %s delivered (HTTP %ld, %d attempts)", key, status, attempts);
		return EXIT_OK;
	}
	if (r == DLV_LOCAL)
		return EXIT_DATAERR;
	return outbox_keep(spool_dir, "webhook", key, NULL, body, len, r, err, errlen);
}

enum dlv_result webhook_spool_send(void *ctx, const struct outbox_msg *m, char *err, size_t errlen)
{
	struct webhook *w = ctx;
	if (strcmp(m->kind, "webhook")) {
		snprintf(err, errlen, "not a webhook message (kind %s)", m->kind);
		return DLV_LOCAL;
	}
	int attempts;
	long status;
	return webhook_post(w, m->key, m->body, m->body_len, &attempts, &status, err, errlen);
}
