/*
 * caveat.h - --once/--follow: run the doctor over each range a run loads,
 * print its warnings once per node and process, and keep what was missing,
 * per node and period, in input_caveat (sql/0015_input_caveats.sql).
 *
 * Used around load_once(): caveat_before() notes every node's checkpoint,
 * the load feeds the doctor what it reads from there (caveat_feed()), and
 * caveat_after() diagnoses what it committed up to the new checkpoint and
 * stores the caveats with where they end (etl_checkpoint.caveat_*, 0066),
 * from where the next run's caveat_before() continues.
 */
#ifndef CDRFLOW_CAVEAT_H
#define CDRFLOW_CAVEAT_H

#include <libpq-fe.h>
#include <stddef.h>

struct caveat_run;

struct caveat_run *caveat_run_new(void);
void caveat_run_free(struct caveat_run *cr);

/* Note where each node's checkpoint is now, and bring each node's doctor
 * up to it: a node whose stored caveats end before its checkpoint (a run
 * that ended between its commits and storing them) has the records in
 * between read again from the spool, by the doctor only.  0, or -1 with
 * err (a database error). */
int caveat_before(struct caveat_run *cr, PGconn *c, const char *spool, char *err, size_t errlen);
/* What load_once() is to feed: each node's doctor from its checkpoint on,
 * out of the load's own parse (load.h); only what commits is kept.
 * Valid until caveat_run_free(). */
struct load_doctor;
const struct load_doctor *caveat_feed(struct caveat_run *cr);
/* Diagnose what the run loaded since caveat_before() (and what
 * caveat_before() read again), warn, store the caveats and their end.  0, or -1 with err (the loaded rows stay loaded either way). */
int caveat_after(struct caveat_run *cr, PGconn *c, const char *spool, char *err, size_t errlen);

#endif
