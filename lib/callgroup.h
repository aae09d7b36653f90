/*
 * callgroup.h - conversations: CDR legs grouped by linkedid, groups merged
 * when they share a channel (a channel whose linkedid changes, as after an
 * attended transfer or a pickup, joins the two groups).
 *
 * A group is open while any of its channels lives; when the last one goes
 * its call row is handed to emit.  Every leg the CDR engine produces is
 * added to its channel's group.
 */
#ifndef CDRFLOW_CALLGROUP_H
#define CDRFLOW_CALLGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "cdrengine.h"

/* What the warehouse derives from a leg (etl/legclass.c, the one place that
 * knows these rules) and its call sums up.  Strings are copied. */
struct leg_facts {
	const char *tenant;    /* NULL: none */
	const char *direction; /* inbound, outbound, internal, unknown (NULL: unknown) */
	const char *trunk;     /* "" or NULL: none */
	const char *country;   /* ISO code of the destination, NULL: none */
	bool has_buy, has_sell;
	int64_t buy, sell;     /* micro-units */
};

/* A call's facts, from its legs:
 *   tenant, trunk, country  those of its lowest-sequence leg that has one
 *   direction               inbound if a leg is, else outbound, else
 *                           internal, else unknown
 *   buy, sell               the sums of the legs that have one (has_*: any) */
struct call_facts {
	char tenant[64];       /* "" with has_tenant false: none */
	bool has_tenant;
	const char *direction; /* a constant */
	char trunk[64];        /* "": none */
	char country[8];       /* "": none */
	bool has_buy, has_sell;
	int64_t buy, sell;
};

/* The facts of a call that has one leg (a Kamailio dialog). */
void call_facts_of_leg(struct call_facts *out, const struct leg_facts *f);

struct call_row {
	const char *call_id;   /* the oldest linkedid of the group */
	const char *linkedids; /* PostgreSQL array literal: {a,b} */
	const char *src, *dst; /* of the first leg */
	uint64_t start_us, end_us, first_answer_us;
	long legs, total_billsec, duration, transfers;
	const char *outcome;   /* answered, busy, congestion, failed, no_answer */
	bool incomplete;
	bool clock_fault;      /* an event of the call had an odd time (cdrfeed.c sets it) */
	struct call_facts facts; /* empty unless legs came with leg_facts */
};

typedef void (*call_emit_fn)(void *arg, const struct call_row *row);

struct callgroups;

struct callgroups *callgroups_new(call_emit_fn emit, void *arg);
void callgroups_free(struct callgroups *g);

/* A channel seen with this linkedid (first sight or a change), at stream
 * position tag pos (kept as the group's oldest position). */
void callgroups_channel(struct callgroups *g, const char *uniqueid, const char *linkedid, uint64_t pos,
			bool incomplete);
/* The channel is gone; may close (emit) its group. */
void callgroups_channel_gone(struct callgroups *g, const char *uniqueid);
/* A leg of the channel's group, with its facts (NULL: none). */
void callgroups_leg(struct callgroups *g, const struct cdr_row *r, const struct leg_facts *f);
/* A transfer by this channel. */
void callgroups_transfer(struct callgroups *g, const char *uniqueid);
/* Oldest position any open group depends on (UINT64_MAX if none). */
uint64_t callgroups_oldest_pos(const struct callgroups *g);
size_t callgroups_open(const struct callgroups *g);

/* Compare Asterisk ids numerically: [system-]epoch.seq */
int asterisk_id_cmp(const char *a, const char *b);

#endif
