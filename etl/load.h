/*
 * load.h - one ETL pass: for each node, read segment records from the
 * checkpoint, turn them into warehouse rows, COPY them, and advance the
 * checkpoint in the same transaction (exactly once, whatever crashes).
 */
#ifndef CDRFLOW_LOAD_H
#define CDRFLOW_LOAD_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>

#include "config.h"

struct load_stats {
	uint64_t events, cel_rows, ami_rows, legs, calls, batches, bytes;
};

/* Set (from a signal handler) to stop after the current batch. */
extern volatile sig_atomic_t load_stop_requested;

/* Load everything available now.  Returns an exit code; err says why. */
struct legclass;
int load_once(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, int progress, struct load_stats *st,
	      char *err, size_t errlen);

/* 'cdrflow-etl skip': check that reading node from its checkpoint stops at
 * a corrupt position exactly at `at` (past skips recorded before), then
 * record the skip in etl_skip (bytes and records lost, where reading
 * resumes, the reader's message, who, when) and print one line on out.
 * The loader passes only recorded positions.  Returns an exit code:
 * EXIT_USAGE when `at` is not where the reader stops. */
#include <stdio.h>
#include "segment.h"
int load_skip(PGconn *c, const struct etl_config *cfg, const char *node, struct seg_pos at, FILE *out, char *err,
	      size_t errlen);

/* Free the CDR engines kept between load_once() calls. */
void load_release(void);

/* Measuring aid: run the transform over the whole spool with no database;
 * with copy_dir, write the COPY rows to copy_dir/{cel,ami_event}.copy. */
int transform_only(const struct etl_config *cfg, const struct legclass *lc, const char *copy_dir, struct load_stats *st, char *err, size_t errlen);

#endif
