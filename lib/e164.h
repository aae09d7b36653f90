/*
 * e164.h - the digit rules of an E.164 number, in one place: what counts
 * as a number, how long an international one is, and the prefix syntax
 * users filter by.  etl/legclass.c turns dialled numbers into E.164 with
 * these; cdrflow-query reads --dst prefixes with them.
 */
#ifndef CDRFLOW_E164_H
#define CDRFLOW_E164_H

#include <stdbool.h>
#include <stddef.h>

/* An E.164 number has 7 to 15 digits after the '+' (country code included). */
#define E164_MIN_DIGITS 7
#define E164_MAX_DIGITS 15

/* The digits of a dialled number into d (NUL-terminated, at most dsize-1):
 * separators (space - . ( )) are dropped, a leading '+' sets *plus.
 * Returns the digit count, or -1 when it is not a number (letters, '*',
 * '#', a '+' after digits). */
int e164_digits(const char *number, char *d, size_t dsize, bool *plus);

/* Is n a valid digit count of an international number? */
bool e164_length_ok(size_t n);

/* A number prefix as users write it ("+44", "44", "4420*": optional '+',
 * 1 to E164_MAX_DIGITS digits, optional trailing '*') as "+digits",
 * malloc'ed; NULL when it is not one. */
char *e164_prefix(const char *arg);

#endif
