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
