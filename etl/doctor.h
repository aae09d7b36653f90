/*
 * doctor.h - cdrflow-etl doctor: read the spool, say per node which inputs
 * cdrflow relies on are present, which are missing (provably: the activity
 * happened, the event did not come), what that costs and which
 * manager.conf / cel.conf line restores it.  Also the warnings that
 * --once/--follow/cdr-csv print once per node and run.
 */
#ifndef CDRFLOW_DOCTOR_H
#define CDRFLOW_DOCTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "amidoctor.h"
#include "config.h"
#include "segment.h"

/* Feed the records of node_dir from `from` up to (not including) `to` into
 * ad and, when not NULL, ad2 (to = NULL: to the end).  Returns 0, or an exit
 * code with err filled. */
int doctor_scan(const char *node_dir, struct seg_pos from, const struct seg_pos *to, struct amidoctor *ad,
		struct amidoctor *ad2, uint64_t *records, char *err, size_t errlen);

/* What doctor_rescan() could not read again: damage or data that is gone
 * (not passed by a recorded skip), or records that end before `to`. */
struct doctor_gap {
	uint64_t count;    /* damaged or missing places passed */
	struct seg_pos at; /* the first of them */
	char what[512];    /* the reader's message there */
	bool short_read;   /* the records end at `end`, before `to` */
	struct seg_pos end;
};

/* Feed ad again the records of node_dir the load read from `from` up to
 * (not including) `to`.  The corrupt positions in skips[] (recorded by
 * 'cdrflow-etl skip') are passed as the load passed them; other damage, a
 * missing segment or a sequence gap is passed too and noted in *gap, as
 * are records that end before `to`.  expect_seq: the sequence of the
 * record at `from` (0: not known).  *records: the records read.  Returns
 * 0, or EXIT_IOERR with err (a read error: ad is then half fed). */
int doctor_rescan(const char *node_dir, struct seg_pos from, uint64_t expect_seq, struct seg_pos to,
		  const struct seg_pos *skips, size_t nskips, struct amidoctor *ad, uint64_t *records,
		  struct doctor_gap *gap, char *err, size_t errlen);

/* The full diagnosis of one node. */
void doctor_print(FILE *out, const char *node, const struct amidoctor *ad);

/* One "warning:" line per missing input not yet in *warned (bits of enum
 * adoc_input), which gains them: a run says each thing once per node. */
void doctor_warn(const char *node, const struct amidoctor *ad, uint32_t *warned);

/* The short caveat text for a missing input, e.g. "lastapp, lastdata ...
 * unknown for node X: Newexten not received". */
void doctor_caveat_text(char *out, size_t outlen, const char *node, enum adoc_input i);

/* cdrflow-etl doctor: every node of cfg->spool.  Returns EXIT_OK, or
 * EXIT_DEGRADED when an input that changes the rows is missing on a node,
 * or another exit code with err filled. */
int doctor_command(const struct etl_config *cfg, FILE *out, char *err, size_t errlen);

/* cdr-csv: scan the whole spool and print the warnings (once per node). */
int doctor_warn_spool(const char *spool, char *err, size_t errlen);

#endif
