/*
 * sources.h - the `sources:` list of the YAML configuration: PBXs and
 * proxies that are not Asterisk AMI nodes, one item each, with a `name:`
 * (the node name stamped on their rows and spool directory), a `type:`
 * and that type's settings in a block named after it.  One key table
 * (sources.c) shared by cdrflow-collector and cdrflow-etl.
 * docs/configuration.md and docs/sources.md describe every key.
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
enum yeastar_transport { YEASTAR_WEBSOCKET, YEASTAR_WEBHOOK };

/* type: yeastar - a Yeastar P-Series PBX through its OpenAPI event
 * subscription (WebSocket), or its webhook push (the PBX POSTs to us);
 * the S-Series NewCdr push arrives by webhook as well. */
struct yeastar_source {
	char *api_url;          /* https://pbx:8088/openapi/v1.0 */
	char *client_id;        /* OpenAPI Client ID (get_token username) */
	char *secret_env;       /* environment variable holding the Client Secret */
	char *secret_file;      /* ...or a file whose first line is it */
	int transport;          /* enum yeastar_transport */
	char *topics;           /* event IDs subscribed: "30011,30012,30008" */
	char *listen;           /* webhook: address:port the collector listens on */
	char *webhook_path;     /* webhook: the URL path the PBX posts to */
	char *webhook_secret_env;  /* webhook: the X-Signature HMAC-SHA256 key */
	char *webhook_secret_file;
	int s_series_login;     /* webhook: log in to an S-Series API so that it pushes, keep its token alive */
	char *push_url;         /* webhook: ip:port/path the PBX posts to (default: listen + webhook_path) */
	uint64_t heartbeat_ms;  /* send "heartbeat" this often */
	uint64_t heartbeat_timeout_ms; /* reconnect when nothing arrives for this long */
	uint64_t connect_timeout_ms;
	uint64_t reconnect_min_ms, reconnect_max_ms, auth_retry_ms;
	int tls_verify;
	char *tls_ca_file;
	char *utc_offset;       /* the PBX clock's offset: time_start is local time */
	int64_t utc_offset_s;   /* parsed */
	char *held, *webhook_held; /* secmem: the secrets, once sources_secrets_seal() ran */
};
extern const char *const yeastar_transport_names[];

/* ---------------------------------------------------------------- item */
struct source_config {
	char *name; /* the node its rows carry */
	int type;   /* enum source_type */
	struct kam_source kamailio;
	struct yeastar_source yeastar;
};

extern const char *const source_type_names[];
/* "kamailio", "yeastar" ("?" for anything else). */
const char *source_type_name(int type);
/* The keys of one `sources:` item (for a CFG_LIST key of a program). */
extern const struct cfg_key source_item_keys[];

/* After cfg_load: valid node names, unique names (also against the AMI
 * nodes in other_names, may be NULL), the settings each type needs.
 * 0, or -1 with "path: sources[i].key: why" in err. */
int sources_check(struct source_config *s, size_t n, const char *const *other_names, size_t nother,
		  const char *path, char *err, size_t errlen);

/* A secret from file (its first line, read into secret memory) when set,
 * else from the environment variable env; secmem_free it.  NULL + err
 * ("NAME: cannot read FILE_KEY \"F\": why", "NAME: no secret: set
 * environment variable V, or FILE_KEY") if neither gives one; when none is
 * not NULL and neither file nor env is configured, NULL with *none = 1 (a
 * source that may need no secret, e.g. a database with trust auth). */
char *source_secret(const char *name, const char *file_key, const char *env, const char *file, int *none, char *err,
		    size_t errlen);

/* Before any thread (collector daemon): read every Yeastar secret into
 * secret memory (held, webhook_held) and wipe the environment variables
 * they came from.  0, or -1 with err (a secret that cannot be had). */
int sources_secrets_seal(struct source_config *s, size_t n, char *err, size_t errlen);
/* Free the held secrets (before cfg_free). */
void sources_release(struct source_config *s, size_t n);

/* "+02:00", "-0530", "Z", "" -> seconds east of UTC; -1 if malformed
 * (*out untouched). */
int source_parse_utc_offset(const char *s, int64_t *out);

#endif
