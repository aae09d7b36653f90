/*
 * errmsg.c - error messages of library code (errmsg.h).
 */
#include "errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int errmsg(char *err, size_t errlen, const char *fmt, ...)
{
	int saved = errno;
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return -1;
}

int first_err_set(struct first_err *e, const char *fmt, ...)
{
	int saved = errno;
	if (!e->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		e->failed = 1;
	}
	errno = saved;
	return -1;
}
