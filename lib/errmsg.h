/*
 * errmsg.h - the one way library code reports an error: a one-line message
 * into the caller's err buffer, and -1 to return.
 *
 *	if (n > max)
 *		return errmsg(err, errlen, "%s: %lld is above %lld", key, n, max);
 */
#ifndef CDRFLOW_ERRMSG_H
#define CDRFLOW_ERRMSG_H

#include <stddef.h>

/* printf into err (NULL or errlen 0: nothing written); errno is kept as it
 * was.  Returns -1. */
int errmsg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A writer's first error, kept: its later calls fail fast and its close
 * reports that one (the report writers: CSV, XLSX, PDF, HTML). */
struct first_err {
	int failed;
	char msg[256];
};

/* Keep the message unless one is kept already; errno is kept as it was.
 * Returns -1. */
int first_err_set(struct first_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
