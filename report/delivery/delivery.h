/*
 * delivery.h - what every delivery channel (mail, webhook) agrees on: the
 * outcome of one attempt, how an outcome becomes an exit code, and where
 * secrets come from.
 *
 * The contract that matters (docs/delivery.md): a message that was not
 * accepted by its peer is never dropped.  A temporary failure or a refused
 * login leaves it in the spool (spool.h) for a later run; a permanent
 * rejection moves it to the spool's dead/ directory for a human.
 */
#ifndef CDRFLOW_REPORT_DELIVERY_H
#define CDRFLOW_REPORT_DELIVERY_H

#include <stddef.h>

enum dlv_result {
	DLV_OK = 0,   /* the peer accepted it (2xx, SMTP 250 after DATA) */
	DLV_TEMPFAIL, /* unreachable, timeout, 5xx/408/429, SMTP 4xx: retry later */
	DLV_AUTH,     /* credentials refused (SMTP 535/530, HTTP 401/403): retry once fixed */
	DLV_REJECTED, /* permanent rejection (other HTTP 4xx, 3xx, SMTP 5xx): dead letter */
	DLV_LOCAL,    /* a local error before anything was sent (bad input, no memory for it) */
};

const char *dlv_result_name(enum dlv_result r);

/* Exit-code aggregation over a run: each outcome raises the run's code to
 * at least the code of that outcome; the most severe one wins:
 * 74 (spool I/O) > 77 (auth) > 65 (rejected / bad input) > 69 (queued) > 0. */
int dlv_exit_merge(int cur, int code);
/* The exit code of one outcome that was safely queued (or dead-lettered). */
int dlv_exit_code(enum dlv_result r);

/* A secret from a file (first line, trailing CR/LF removed) when file is
 * non-empty, else from the environment variable env.  *out is malloc()ed;
 * NULL with an empty string when neither names anything and !required.
 * Returns 0, or -1 with a message naming the variable or file (never the
 * value) in err. */
int secret_load(const char *env, const char *file, int required, char **out, char *err, size_t errlen);
/* Overwrite and free a secret. */
void secret_free(char *s);

#endif
