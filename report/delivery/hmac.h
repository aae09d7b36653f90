/*
 * hmac.h - the webhook signature: HMAC-SHA256 over "<timestamp>.<body>".
 *
 * The signed string is the decimal unix timestamp sent in
 * X-Cdrflow-Timestamp, one '.' (0x2e), then the request body exactly as
 * sent (no newline added).  The header value is "sha256=" followed by the
 * 64 lower-case hex digits of the MAC.  docs/delivery.md shows how a
 * receiver checks it.
 */
#ifndef CDRFLOW_REPORT_HMAC_H
#define CDRFLOW_REPORT_HMAC_H

#include <stddef.h>
#include <stdint.h>

/* "sha256=" + 64 hex + NUL */
#define WEBHOOK_SIG_LEN (7 + 64 + 1)

/* out = 64 hex digits of HMAC-SHA256(key, msg) + NUL.  0 or -1. */
int hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char out[65]);
/* out = "sha256=<hex HMAC-SHA256(secret, ts "." body)>".  0 or -1. */
int webhook_signature(const char *secret, size_t secretlen, int64_t ts, const void *body, size_t bodylen,
		      char out[WEBHOOK_SIG_LEN]);
/* out = 64 hex digits of SHA-256(p).  0 or -1. */
int sha256_hex(const void *p, size_t n, char out[65]);

#endif
