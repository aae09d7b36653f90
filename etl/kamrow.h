/*
 * kamrow.h - one row of Kamailio's acc tables (acc_cdrs, missed_calls, or
 * an INVITE/BYE pair of acc) -> one leg (struct cdr_row) and its call
 * (struct call_row), the shapes the AMI path writes, so that tenants,
 * E.164, direction, rating (legclass.c) and everything downstream treat
 * Kamailio legs like Asterisk's.  Pure: no I/O, no allocation (fuzzed by
 * tests/fuzz/etl/fuzz_kamrow.c).  The mapping is docs/sources.md's table.
 */
#ifndef CDRFLOW_KAMROW_H
#define CDRFLOW_KAMROW_H

#include <stdint.h>

#include "callgroup.h"
#include "cdrengine.h"
#include "sources.h"

/* The fields of a row, in the order the reader selects them; NULL = SQL
 * NULL or a column the configuration does not map. */
enum kam_field {
	KF_ID, KF_START, KF_END, KF_DURATION, KF_ANSWER, KF_TIME, KF_CALLID, KF_CODE, KF_REASON,
	KF_SRC_USER, KF_SRC_DOMAIN, KF_SRC_IP, KF_DST_USER, KF_DST_DOMAIN, KF_CARRIER, KF_ACCOUNTCODE,
	KF_SETUP, KF_FAILURE,
	KF_N
};

/* Which table a row came from. */
enum kam_kind {
	KAM_CDRS,   /* one dialog: start_time, end_time, duration (+ cdr_extra) */
	KAM_MISSED, /* one failed INVITE transaction: time is its end */
	KAM_ACC,    /* an answered INVITE (time = answer) with its BYE's time in KF_END */
	KAM_KINDS
};

#define KAM_STR 256

struct kam_leg {
	struct cdr_row row;
	struct call_row call;
	int64_t id; /* the row's key */
	char callid[KAM_STR], src[KAM_STR], dst[KAM_STR], clid[2 * KAM_STR + 8];
	char channel[KAM_STR + 24], dstchannel[KAM_STR + 24], lastdata[KAM_STR], accountcode[KAM_STR];
	char linkedids[2 * KAM_STR + 4];
};

/* Parse a time as the acc module writes it: "YYYY-MM-DD HH:MM:SS[.frac]"
 * (also with 'T', and a "+HH[:MM]"/"Z" zone suffix a timestamptz prints),
 * or epoch seconds "1733480000[.123]" (time_mode 1/2 attributes, $TV).
 * A date-time without a zone is local time when local is set (time_mode 0
 * to 3: Kamailio's localtime()), else UTC (time_mode 4).  0 or -1. */
int kam_parse_time(const char *s, int local, uint64_t *us);

/* The disposition of a final SIP code ("" or NULL: none).  answered: the
 * row says the call was answered (answer time, acc pair) whatever the code. */
int kam_disposition(const char *sip_code, int answered);

/* Build the leg of one row.  node: the source's name.  0, or -1 with a
 * reason in err (no id, a time that does not parse, end before start). */
int kam_leg_build(const struct kam_source *k, enum kam_kind kind, const char *const v[KF_N], const char *node,
		  struct kam_leg *out, char *err, size_t errlen);

/* The leg's sequence (cdr.sequence, unique per node): the row's id and its
 * table. */
uint64_t kam_sequence(int64_t id, enum kam_kind kind);

#endif
