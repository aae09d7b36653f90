/*
 * migrate.h - bring the warehouse schema up to date (forward only).
 */
#ifndef CDRFLOW_MIGRATE_H
#define CDRFLOW_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/* The newest schema version this program knows. */
int migrate_latest(void);
/* Apply every missing migration, each in its own transaction, under an
 * advisory lock.  Refuses a database newer than this program.  On a
 * distributed schema (Citus), or with distribute set, then distributes
 * every table not yet distributed (cdrflow_distribute, docs/scale-out.md);
 * *distributed gets how many (-1: not distributed).  Returns an exit code;
 * *from and *to get the versions before and after. */
int migrate_run(PGconn *c, int distribute, int *from, int *to, int *distributed, char *err, size_t errlen);
/* --distribute's precondition: the citus extension exists in the database.
 * EXIT_OK, or EXIT_CONFIG with the reason in err (or a database error). */
int migrate_distribute_check(PGconn *c, char *err, size_t errlen);
/* The database's schema version (0 if none); -1 on error. */
int migrate_current(PGconn *c, char *err, size_t errlen);

#endif
