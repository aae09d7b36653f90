#include "strparse.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errmsg.h"

int parse_int_range(const char *s, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
	char *end;
	if (!s || !*s || isspace((unsigned char)*s))
		return errmsg(err, errlen, "%s", "is not an integer");
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno == ERANGE || *end)
		return errmsg(err, errlen, "%s", "is not an integer");
	if (v < min || v > max) {
		if (err)
			snprintf(err, errlen, "must be between %" PRId64 " and %" PRId64, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* Parse "<digits>[.<digits>]<unit>" into a double and a unit suffix. */
static int split_number(const char *s, double *v, const char **unit)
{
	char *end;
	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	if (errno == ERANGE || end == s || *v < 0)
		return -1;
	while (*end == ' ')
		end++;
	*unit = end;
	return 0;
}

static int check_range_u64(double v, uint64_t min, uint64_t max, uint64_t *out, const char *what,
			   char *err, size_t errlen)
{
	if (v > 1.8e19 || (uint64_t)v < min || (uint64_t)v > max) {
		if (err)
			snprintf(err, errlen, "must be between %" PRIu64 " and %" PRIu64 " %s", min, max, what);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	static const struct { const char *name; double mult; } units[] = {
		{ "", 1 }, { "b", 1 }, { "k", 1024.0 }, { "kb", 1024.0 }, { "kib", 1024.0 },
		{ "m", 1048576.0 }, { "mb", 1048576.0 }, { "mib", 1048576.0 },
		{ "g", 1073741824.0 }, { "gb", 1073741824.0 }, { "gib", 1073741824.0 },
	};
	double v;
	const char *unit;
	if (split_number(s, &v, &unit) < 0)
		return errmsg(err, errlen, "%s", "is not a size (e.g. 4096, 64KiB, 16MiB)");
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcasecmp(unit, units[i].name))
			return check_range_u64(v * units[i].mult, min, max, out, "bytes", err, errlen);
	return errmsg(err, errlen, "%s", "has an unknown size unit (use B, KiB, MiB or GiB)");
}

int parse_duration_ms(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	static const struct { const char *name; double mult; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "min", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	double v;
	const char *unit;
	if (split_number(s, &v, &unit) < 0)
		return errmsg(err, errlen, "%s", "is not a duration (e.g. 250ms, 5s, 2m, 1h)");
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(unit, units[i].name))
			return check_range_u64(v * units[i].mult, min, max, out, "milliseconds", err, errlen);
	return errmsg(err, errlen, "%s", "has an unknown duration unit (use ms, s, m, h or d)");
}

int parse_bool(const char *s, int *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return errmsg(err, errlen, "%s", "is not a boolean (use yes/no, true/false, on/off)");
}

/* 8 ASCII digits at s as a number, or -1 if one is not a digit (SWAR). */
static int64_t digits8(const char *s)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t v;
	memcpy(&v, s, 8);
	if (((v & 0xF0F0F0F0F0F0F0F0ull) | (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) !=
	    0x3333333333333333ull)
		return -1; /* simdjson's eight-digit test */
	v -= 0x3030303030303030ull;
	v = v * 10 + (v >> 8); /* pairs */
	v = ((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32)) +
	     ((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32))) >> 32;
	return (int64_t)(uint32_t)v;
#else
	(void)s;
	return -1;
#endif
}

uint64_t parse_unix_us(const char *s, size_t n)
{
	if (n == 17 && s[10] == '.') { /* the usual "1795288510.020841": the loops' value, fewer steps */
		int64_t hi = digits8(s);
		unsigned d8 = (unsigned)(s[8] - '0'), d9 = (unsigned)(s[9] - '0');
		uint64_t us = 0;
		size_t k = 11;
		for (; k < 17 && s[k] >= '0' && s[k] <= '9'; k++)
			us = us * 10 + (uint64_t)(s[k] - '0');
		if (hi >= 0 && d8 <= 9 && d9 <= 9 && k == 17)
			return ((uint64_t)hi * 100 + d8 * 10 + d9) * 1000000u + us;
	}
	uint64_t sec = 0, usec = 0;
	size_t i = 0;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		sec = sec * 10 + (uint64_t)(s[i] - '0');
	if (i == 0 || i > 12)
		return 0;
	if (i < n && s[i] == '.') {
		int digits = 0;
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
			if (digits < 6)
				usec = usec * 10 + (uint64_t)(s[i] - '0');
		for (; digits < 6; digits++)
			usec *= 10;
	}
	return sec * 1000000u + usec;
}
