/*
 * webhook.h - signed JSON POSTs with retries, backed by the spool.
 *
 * Every request carries
 *   Content-Type: application/json
 *   X-Cdrflow-Timestamp: <unix seconds at this attempt>
 *   X-Cdrflow-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>
 *   Idempotency-Key: <the message's key, the same on every attempt and run>
 * (hmac.h defines the signed string; docs/delivery.md shows a receiver).
 *
 * Retry policy within one call of webhook_post(): connection errors,
 * timeouts, HTTP 5xx, 408 and 429 are retried up to max_attempts times with
 * exponential backoff and jitter (the delay before attempt n+1 is drawn from
 * [d/2, d] with d = min(backoff_max, backoff_min * 2^(n-1)); a Retry-After
 * header raises it, capped at backoff_max).  401/403 (DLV_AUTH) and other
 * 4xx/3xx (DLV_REJECTED) are not retried.  Once a call ended in
 * DLV_TEMPFAIL or DLV_AUTH, the endpoint is marked down for the rest of the
 * run: later calls return the same outcome at once, without a request, so a
 * dead receiver costs one backoff series per run, not one per message.
 *
 * libcurl must be initialised by the program (curl_global_init) first.
 */
#ifndef CDRFLOW_REPORT_WEBHOOK_H
#define CDRFLOW_REPORT_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "outbox.h"

struct webhook_cfg {
	char *url;
	char *secret_env;  /* environment variable holding the HMAC secret */
	char *secret_file; /* or a file whose first line is the secret */
	char *tls_ca_file; /* CA bundle for https (empty: the system's) */
	int tls_verify;
	int64_t max_attempts;       /* per message and run, >= 1 */
	uint64_t backoff_min_ms;    /* delay before the 2nd attempt (before jitter) */
	uint64_t backoff_max_ms;    /* cap of any delay */
	uint64_t timeout_ms;        /* whole request */
	uint64_t connect_timeout_ms;
};

struct webhook {
	const struct webhook_cfg *cfg;
	char *secret;
	void *curl;              /* CURL *, reused (keeps the connection) */
	enum dlv_result down;    /* DLV_OK, or the outcome that marked the endpoint down */
	char down_reason[256];
	unsigned rnd;            /* jitter state */
	uint64_t requests;       /* HTTP requests made (tests, logs) */
};

/* Load the secret and set up curl.  0, or -1 with err. */
int webhook_open(struct webhook *w, const struct webhook_cfg *cfg, char *err, size_t errlen);
void webhook_close(struct webhook *w);

/* POST body with its idempotency key; *attempts gets the number of HTTP
 * requests made and *status the last HTTP status (0 if none).  err gets the
 * reason of a failure. */
enum dlv_result webhook_post(struct webhook *w, const char *key, const char *body, size_t len, int *attempts,
			     long *status, char *err, size_t errlen);

/* Post, and queue the message in spool_dir when it was not accepted
 * (DLV_TEMPFAIL/DLV_AUTH: the spool; DLV_REJECTED: the spool's dead/).
 * Returns an exit code: 0 delivered, 69 queued, 77 queued after an auth
 * refusal, 65 rejected (kept in dead/), 74 the spool could not be written
 * (the message is NOT safe: the caller must keep it). */
int webhook_deliver(struct webhook *w, const char *spool_dir, const char *key, const char *body, size_t len,
		    char *err, size_t errlen);

/* A outbox_send_fn for kind "webhook" messages (ctx: struct webhook *). */
enum dlv_result webhook_spool_send(void *ctx, const struct outbox_msg *m, char *err, size_t errlen);

#endif
