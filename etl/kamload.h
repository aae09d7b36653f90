/*
 * kamload.h - load the `sources:` of type kamailio: rows of the acc tables
 * after each table's checkpoint -> legs and calls, committed with the new
 * checkpoint in one transaction (exactly once, as the AMI path).
 */
#ifndef CDRFLOW_KAMLOAD_H
#define CDRFLOW_KAMLOAD_H

#include <libpq-fe.h>
#include <stdint.h>

#include "config.h"
#include "legclass.h"

struct kam_stats {
	uint64_t rows, legs, calls, skipped, batches, sources;
};

/* Every kamailio source whose poll interval has passed (all of them when
 * due_only is 0).  Returns an exit code; err says why.  A source whose
 * database cannot be reached is logged and left for the next pass
 * (EXIT_UNAVAILABLE is returned only when due_only is 0). */
int kam_load_all(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, int due_only,
		 struct kam_stats *st, char *err, size_t errlen);

/* Free what kam_load_all() keeps between passes (poll times, states). */
void kam_load_release(void);

/* The SELECT that reads one table of a source after last_id (for tests
 * and the bench): a malloc'ed string. */
struct kamdb;
char *kam_select_sql(const struct kamdb *db, const struct kam_source *k, int kind, int64_t last_id);

#endif
