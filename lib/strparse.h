/*
 * strparse.h - range-checked parsing of numbers, sizes, durations, booleans.
 *
 * No atoi: each parser takes the whole string, rejects trailing junk and
 * out-of-range values, and on failure writes a one-line reason into err
 * (e.g. "must be between 1 and 65535") and returns -1.
 */
#ifndef CDRFLOW_STRPARSE_H
#define CDRFLOW_STRPARSE_H

#include <stddef.h>
#include <stdint.h>

int parse_int_range(const char *s, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen);
/* "4096", "64KiB", "64MiB", "1GiB", "10k", "10M" (k/M/G are also 1024-based). */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen);
/* "250ms", "5s", "2m", "1h", "1d"; a bare number is seconds.  Result in ms. */
int parse_duration_ms(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen);
/* yes/no, true/false, on/off, 1/0. */
int parse_bool(const char *s, int *out, char *err, size_t errlen);

/* Parse an AMI "Timestamp: 1795288510.020841" value (not NUL-terminated)
 * into unix microseconds; 0 if it is not one. */
uint64_t parse_unix_us(const char *s, size_t n);

#endif
