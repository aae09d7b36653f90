/*
 * lock.h - the ETL's run locks: a row of etl_lock (sql/0013) locked FOR
 * UPDATE by a second connection held open in a transaction.  Tenant roles
 * have no privilege on etl_lock, so unlike an advisory lock key (anyone who
 * may run pg_advisory_lock() can take any key) they can neither take nor
 * hold it.  The wait is bounded by lock_timeout (15 s unless set).
 */
#ifndef CDRFLOW_ETL_LOCK_H
#define CDRFLOW_ETL_LOCK_H

#include <libpq-fe.h>
#include <stddef.h>

struct etl_lock {
	PGconn *c; /* the holder connection, kept between takes */
	int held;
};

/* Lock row `name` of etl_lock.  Returns EXIT_OK, EXIT_TEMPFAIL (another run
 * holds it past lock_timeout: err names the holder when visible), or the
 * exit code of a database failure; err says why. */
int etl_lock_take(struct etl_lock *l, PGconn *main, const char *name, char *err, size_t errlen);
/* End the holding transaction (the connection stays for the next take). */
void etl_lock_release(struct etl_lock *l);
/* Release and close. */
void etl_lock_close(struct etl_lock *l);

#endif
