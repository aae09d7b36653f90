/*
 * sources.h - the non-AMI sources of the YAML config: a top-level
 * `sources:` list, each item a `name:`, a `type:` (kamailio | yeastar) and
 * the settings of its type under a block of that name (`kamailio:`,
 * `yeastar:`).  One key table (source_keys, in sources.c) read by
 * cdrflow-collector and cdrflow-etl alike, so both accept the same file;
 * each program acts on the types it owns and ignores the others
 * (docs/configuration.md, docs/sources.md).
 */
#ifndef CDRFLOW_SOURCES_H
#define CDRFLOW_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

enum source_type { SOURCE_KAMAILIO, SOURCE_YEASTAR };

/* ---------------------------------------------------------------- kamailio */

enum kam_db_type { KAM_DB_POSTGRESQL, KAM_DB_MYSQL };

/* The columns cdrflow reads, named as the deployment's acc/cdr tables name
 * them (acc module: cdr_start_id, cdr_end_id, cdr_duration_id, db_extra,
 * cdr_extra).  "" = the column does not exist: the field stays empty. */
struct kam_columns {
	char *id;          /* the table's increasing key (the checkpoint) */
	char *start_time;  /* acc_cdrs: cdr_start_id */
	char *end_time;    /* acc_cdrs: cdr_end_id */
	char *duration;    /* acc_cdrs: cdr_duration_id (seconds, may be fractional) */
	char *setup_time;  /* cdr_extra: when the INVITE came, precisely (optional) */
	char *answer_time; /* cdr_extra: when the 200 OK came (optional) */
	char *failure_time; /* cdr_extra: when the final failure came (optional) */
	char *time;        /* missed_calls: acc_time_column */
	char *callid;
	char *sip_code;
	char *sip_reason;
	char *src_user;
	char *src_domain;
	char *src_ip;
	char *dst_user;
	char *dst_domain;
	char *carrier;     /* the dispatcher destination / carrier the call left by */
	char *accountcode; /* optional: a column tenant rules can match as accountcode */
};

struct kam_source {
	int db_type;          /* enum kam_db_type */
	char *host;           /* host name, address, or (PostgreSQL) a socket directory */
	int64_t port;         /* 0: the driver's default */
	char *socket;         /* MySQL: unix socket path ("" = TCP to host:port) */
	char *database;
	char *user;
	char *secret_env;     /* environment variable holding the password */
	char *secret_file;    /* file whose first line is the password */
	char *options;        /* PostgreSQL: extra libpq conninfo (sslmode=...), never a password */
	char *cdrs_table;     /* dialog CDRs (cdrs_table), "" = not read */
	char *missed_table;   /* failed calls (db_table_missed_calls), "" = not read */
	char *acc_table;      /* transactions (db_table_acc), "" = not read */
	int time_mode;        /* the acc module's time_mode (0..4) */
	int start_on_confirmed; /* the acc module's cdr_start_on_confirmed */
	char *context;        /* dcontext of the legs (tenant rules match it) */
	int64_t batch_rows;   /* rows per transaction */
	uint64_t poll_ms;     /* --follow: read the tables this often */
	uint64_t settle_ms;   /* a key gap followed by a row this young: wait for the gap to fill */
	struct kam_columns col;
};

/* ---------------------------------------------------------------- yeastar */
/* (the yeastar: block goes here) */

/* ---------------------------------------------------------------- one item */

struct source_config {
	char *name; /* the node name its legs carry */
	int type;   /* enum source_type */
	struct kam_source kamailio;
};

extern const struct cfg_key source_keys[];

/* Check the list after loading: names valid and unique, not an AMI node's
 * (names: the collector's nodes, n of them, or NULL), each item's block
 * consistent with its type.  0, or -1 with "sources[i]: ..." in err. */
int sources_check(const struct source_config *s, size_t n, char *const *node_names, size_t nnodes, char *err,
		  size_t errlen);

/* The password of a source from secret_file or secret_env, in secret memory
 * (secmem_free it); NULL with err when neither is set or readable.  *none
 * is set when neither is configured (a source may not need one). */
char *source_secret(const char *name, const char *secret_env, const char *secret_file, int *none, char *err,
		    size_t errlen);

const char *source_type_name(int type);

#endif
