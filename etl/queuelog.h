/*
 * queuelog.h - backfill from Asterisk's queue_log file, parsed in C.
 *
 * queue_log is "time|callid|queuename|agent|event|data1|data2|...", one
 * event a line.  qlog_parse() turns a file's text into COPY rows of the
 * temporary table queue_log_in (sql/0040_queue_log_c.sql): the lines the
 * SQL function cdrflow_import_queue_log() takes (the same pattern: digits,
 * four '|'-separated fields, a non-empty event; others are skipped and
 * counted), with every text made valid UTF-8 and the numbers the queue
 * metrics read checked, so that a bad line is refused with its number
 * instead of failing the whole import in SQL.  qlog_import() loads one file
 * in one transaction through cdrflow_queue_log_apply().
 */
#ifndef CDRFLOW_ETL_QUEUELOG_H
#define CDRFLOW_ETL_QUEUELOG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct qlog_stats {
	uint64_t lines;   /* lines in the text */
	uint64_t rows;    /* event lines (COPY rows) */
	uint64_t skipped; /* lines that are no event (blank, truncated, foreign) */
};

/* Parse text (len bytes, any content) into COPY text rows appended to out:
 * line_no, time, callid, queuename, agent, event, data (a text[] literal).
 * name is the file's name in messages.  0, or -1 with "name:line: reason"
 * in err (out then holds a partial result). */
int qlog_parse(const char *name, const char *text, size_t len, struct buf *out, struct qlog_stats *st, char *err,
	       size_t errlen);

/* Import the file path for node in one transaction.  Returns an exit code;
 * *new_lines gets the number of lines not imported before. */
int qlog_import(PGconn *c, const char *path, const char *node, struct qlog_stats *st, uint64_t *new_lines, char *err,
		size_t errlen);

#endif
