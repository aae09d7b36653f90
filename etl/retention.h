/*
 * retention.h - drop whole monthly partitions older than the kept window
 * (cdrflow-etl retention --keep 13mo).  Never DELETEs a row.
 *
 * The tables are those listed in retention_table (migration 0009: cel, cdr,
 * call, ami_event; other families add theirs); their partitions are named
 * <table>_yYYYYmMM (cdrflow_ensure_month) and hold one UTC month.  With
 * keep = K months, the kept window starts at the first day of the UTC month
 * of now() - K months (the "boundary"); a partition is dropped when its
 * whole month ends at or before the boundary, so no row younger than K
 * months is ever dropped.  The rollups are not partitioned and are kept.
 */
#ifndef CDRFLOW_RETENTION_H
#define CDRFLOW_RETENTION_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

/* The largest window accepted: 100 years. */
#define RETENTION_MAX_MONTHS 1200

/* Parse a kept window: "13mo" (months), "2y" (years, 12 months each) or
 * "400d" (days: the fewest whole months whose shortest possible span, from
 * a February on in a non-leap year, is at least that many days: 400d = 14
 * months).  Returns 0 with *months in 1..RETENTION_MAX_MONTHS, or -1 for
 * anything else (no unit, zero, negative, junk, too large). */
int retention_parse_keep(const char *s, int *months);

/* Drop (DETACH PARTITION, then DROP TABLE) every expired monthly partition
 * of the retention tables, all in one transaction, printing one line per
 * partition to out ("drop cdr_y2020m01 (cdr, 2020-01, 48 kB)"; "would drop"
 * when dry_run, which changes nothing).  Rows older than the boundary found
 * in a table's DEFAULT partition are reported, not deleted.  lock_timeout
 * is 10 s so a long load does not make every reader queue behind us.
 * Returns 0; -1 on a database error (err "SQLSTATE: message", so
 * pgc_error_exit() applies; nothing was dropped); -2 when keep_months is
 * outside 1..RETENTION_MAX_MONTHS (err says so). */
int retention_run(PGconn *c, int keep_months, int dry_run, FILE *out, char *err, size_t errlen);

#endif
