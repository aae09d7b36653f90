/*
 * xalloc.h - allocation that cannot fail.
 *
 * Out of memory is not a condition cdrflow can recover from, so these print
 * one line and abort().  Everything they return is owned by the caller and is
 * released with free().
 */
#ifndef CDRFLOW_XALLOC_H
#define CDRFLOW_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a freshly allocated string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
