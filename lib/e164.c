/*
 * e164.c - E.164 digit rules (e164.h).
 */
#include "e164.h"

#include <ctype.h>
#include <string.h>

#include "xalloc.h"

int e164_digits(const char *number, char *d, size_t dsize, bool *plus)
{
	size_t n = 0;
	*plus = false;
	for (const char *p = number; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n + 1 < dsize)
				d[n++] = *p;
		} else if (*p == '+' && n == 0 && !*plus) {
			*plus = true;
		} else if (*p != ' ' && *p != '-' && *p != '.' && *p != '(' && *p != ')') {
			d[0] = '\0';
			return -1;
		}
	}
	d[n] = '\0';
	return (int)n;
}

bool e164_length_ok(size_t n)
{
	return n >= E164_MIN_DIGITS && n <= E164_MAX_DIGITS;
}

char *e164_prefix(const char *arg)
{
	const char *p = arg;
	if (*p == '+')
		p++;
	size_t n = strlen(p);
	if (n && p[n - 1] == '*')
		n--;
	if (n == 0 || n > E164_MAX_DIGITS)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return NULL;
	return xasprintf("+%.*s", (int)n, p);
}
