/*
 * caveat.h - --once/--follow: run the doctor over each range a run loads,
 * print its warnings once per node and process, and keep what was missing,
 * per node and period, in input_caveat (sql/0015_input_caveats.sql).
 *
 * Used around load_once(): caveat_before() notes every node's checkpoint,
 * caveat_after() reads the records between it and the new checkpoint.
 */
#ifndef CDRFLOW_CAVEAT_H
#define CDRFLOW_CAVEAT_H

#include <libpq-fe.h>
#include <stddef.h>

struct caveat_run;

struct caveat_run *caveat_run_new(void);
void caveat_run_free(struct caveat_run *cr);

/* Note where each node's checkpoint is now.  0, or -1 with err. */
int caveat_before(struct caveat_run *cr, PGconn *c, char *err, size_t errlen);
/* Start reading, beside the load, each node of spool from the checkpoint
 * caveat_before() noted up to what the spool holds now (the nodes this
 * process has not read yet); caveat_after() then reads only what the load
 * took beyond it, and reads everything itself when the load stopped short
 * of it.  Nothing is stored before caveat_after(). */
void caveat_prescan(struct caveat_run *cr, const char *spool);
/* Stop it and forget what it read (caveat_after() is not to be called). */
void caveat_prescan_drop(struct caveat_run *cr);
/* Diagnose what the run loaded since caveat_before(), warn, store the
 * caveats.  0, or -1 with err (the loaded rows stay loaded either way). */
int caveat_after(struct caveat_run *cr, PGconn *c, const char *spool, char *err, size_t errlen);

#endif
