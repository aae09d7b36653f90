/*
 * outbox.h - the durable delivery spool: messages a peer has not accepted yet.
 *
 * One message per file, written atomically (temporary file, fsync, rename,
 * fsync of the directory: lib/fsx.h), so a crash leaves either the whole
 * message or nothing.  Layout (docs/delivery.md):
 *
 *   DIR/<created_us, 20 digits>-<first 16 hex of sha256(key)>.msg
 *   DIR/dead/...   permanently rejected messages, kept for a human
 *   DIR/LOCK       flock()ed by a run that retries the spool
 *
 * File names sort oldest first.  The key is the message's idempotency key:
 * the spool holds at most one message per key, so queueing the same alert
 * twice keeps the first copy.  A message leaves the spool only when its
 * peer accepted it (outbox_remove) or moves to dead/ (outbox_bury).
 *
 * File format: "cdrflow-spool 1\n", then "name: value\n" header lines
 * (kind, key, created, attempts, last-error, meta, length), a blank line,
 * and exactly `length` body bytes.
 *
 * Ownership: struct outbox_msg owns its strings; outbox_msg_free() them.
 */
#ifndef CDRFLOW_REPORT_OUTBOX_H
#define CDRFLOW_REPORT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"

#define OUTBOX_KEY_MAX 200

struct outbox_msg {
	char *kind;         /* "webhook" or "mail" */
	char *key;          /* idempotency key, 1..OUTBOX_KEY_MAX printable ASCII bytes */
	char *meta;         /* one line of channel data (mail: the envelope), may be NULL */
	char *last_error;   /* why the last attempt failed, may be NULL */
	int64_t created_us; /* when it was first queued */
	int64_t attempts;   /* delivery attempts so far, over all runs */
	char *body;
	size_t body_len;
	char *name;         /* file name inside the spool: set by outbox_put/outbox_load */
};

void outbox_msg_free(struct outbox_msg *m);

/* Queue m (created_us 0 = now).  If a message with the same key is queued
 * already, nothing is written and *existed (if not NULL) is set to 1.
 * Creates DIR (and DIR/dead) when missing.  0, or -1 with errno (EINVAL for
 * a bad key/kind or a header value with a line break). */
int outbox_put(const char *dir, struct outbox_msg *m, int *existed);
/* Names of the queued messages, oldest first (*names is a malloc()ed array
 * of malloc()ed strings; free with outbox_names_free).  A missing DIR is an
 * empty spool.  0 or -1 with errno. */
int outbox_list(const char *dir, char ***names, size_t *n);
void outbox_names_free(char **names, size_t n);
/* Read one message.  0; -1 with errno: EBADMSG when the file is corrupt
 * (a message in err), another errno for an I/O error. */
int outbox_load(const char *dir, const char *name, struct outbox_msg *m, char *err, size_t errlen);
/* Write m back under its name (after attempts/last_error changed). */
int outbox_rewrite(const char *dir, const struct outbox_msg *m);
/* The peer accepted it: unlink + fsync(DIR). */
int outbox_remove(const char *dir, const char *name);
/* Permanently rejected or corrupt: move to DIR/dead/ (rename + fsyncs). */
int outbox_bury(const char *dir, const char *name);
/* Is a message with this key queued?  1 (and *name if not NULL), 0, -1. */
int outbox_find_key(const char *dir, const char *key, char **name);
/* Exclusive lock of DIR/LOCK for one retrying run: the fd, or -1 with
 * errno (EWOULDBLOCK: another run holds it). */
int outbox_lock(const char *dir);

/* Keep a message its peer did not accept (r: DLV_TEMPFAIL, DLV_AUTH or
 * DLV_REJECTED; err holds the reason and gets the outcome appended when the
 * spool fails): queued, or for DLV_REJECTED moved to dead/.  Returns the
 * exit code: 69 queued, 77 queued after an auth refusal, 65 rejected (in
 * dead/), 74 the spool could not be written: the message is NOT safe and
 * the caller must keep it some other way. */
int outbox_keep(const char *dir, const char *kind, const char *key, const char *meta, const char *body, size_t len,
	       enum dlv_result r, char *err, size_t errlen);

/* Send one message; err gets the reason of a failure. */
typedef enum dlv_result (*outbox_send_fn)(void *ctx, const struct outbox_msg *m, char *err, size_t errlen);

struct outbox_stats {
	size_t delivered, queued, dead, corrupt;
};

/* Retry every queued message, oldest first, under outbox_lock(): delivered
 * ones are removed, rejected and corrupt ones buried, the others stay with
 * attempts + 1.  Returns an exit code (delivery.h: dlv_exit_merge over the
 * outcomes; 75 when another run holds the lock, 74 when the spool cannot be
 * read or changed), err says why when it is not 0. */
int outbox_retry(const char *dir, outbox_send_fn send, void *ctx, struct outbox_stats *st, char *err, size_t errlen);

#endif
