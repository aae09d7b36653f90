/*
 * alerts.h - drain the alert table to the webhook.
 *
 * alerts_deliver() first retries the webhook spool (oldest first; an
 * "alert-<id>" message that goes through there marks its row delivered),
 * then walks the undelivered rows in id order, one short transaction per
 * row (SELECT ... FOR UPDATE SKIP LOCKED, so concurrent runs never post
 * the same row at once):
 *
 *   - a row whose "alert-<id>" message is already queued is left to the
 *     spool (it is not posted twice in one run);
 *   - otherwise it is posted with Idempotency-Key "alert-<id>"; on 2xx
 *     delivered_at = now(); on failure the message is queued (outbox_keep)
 *     first and only then the transaction ends; delivery_attempts counts
 *     the HTTP requests made for the row.
 *
 * Delivery is at least once: a crash between the receiver's 2xx and the
 * COMMIT re-sends the alert with the same key next run, and receivers
 * de-duplicate on the key.  The body is the row as JSON:
 * {"type": "alert", <every column but delivered_at and delivery_attempts>}.
 */
#ifndef CDRFLOW_REPORT_ALERTS_H
#define CDRFLOW_REPORT_ALERTS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "outbox.h"
#include "webhook.h"

struct alerts_stats {
	size_t delivered;      /* posted now and accepted */
	size_t queued;         /* not accepted: in the spool (or dead/) */
	size_t already_queued; /* left to their queued copy */
	struct outbox_stats spool; /* the retry of the spool before */
};

/* limit: at most this many rows (0: all).  Returns an exit code
 * (delivery.h; 69 when PostgreSQL fails, 78 when the webhook cannot be set
 * up), err says why when it is not 0. */
int alerts_deliver(PGconn *c, const struct webhook_cfg *w, const char *spool_dir, size_t limit,
		   struct alerts_stats *st, char *err, size_t errlen);

#endif
