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
 * advisory lock.  Refuses a database newer than this program.  Returns an
 * exit code; *from and *to get the versions before and after. */
int migrate_run(PGconn *c, int *from, int *to, char *err, size_t errlen);
/* The database's schema version (0 if none); -1 on error. */
int migrate_current(PGconn *c, char *err, size_t errlen);

#endif
