/*
 * copytext.h - one row of PostgreSQL's COPY TO text format, split in place.
 *
 * The format (COPY's default): fields separated by a tab, the row ended by
 * a newline, NULL written as \N, and in a value a backslash, tab, newline,
 * carriage return, backspace, form feed and vertical tab written as \\ \t
 * \n \r \b \f \v.  Reading also accepts what COPY FROM accepts: \ooo (octal),
 * \xhh (hex) and \c for any other c.
 */
#ifndef CDRFLOW_REPORT_COPYTEXT_H
#define CDRFLOW_REPORT_COPYTEXT_H

#include <stddef.h>

/* Split the len bytes of row (NUL-terminated at row[len], as libpq's
 * PQgetCopyData() hands them; one trailing newline allowed) into fields, in
 * place: fields[i] points into row, unescaped and NUL-terminated, or is NULL
 * for SQL NULL.  Returns the number of fields (>= 1), or -1 if there are
 * more than max. */
long copytext_split(char *row, size_t len, char **fields, size_t max);

#endif
