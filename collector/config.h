/*
 * config.h - cdrflow-collector settings (the YAML key table lives in config.c).
 */
#ifndef CDRFLOW_COLLECTOR_CONFIG_H
#define CDRFLOW_COLLECTOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "sources.h"

enum ami_auth { AUTH_PLAIN, AUTH_MD5 };

struct node_config {
	char *name;
	char *host;
	int64_t port;
	char *username;
	char *secret;      /* inline secret (discouraged; config file must not be world-readable) */
	char *secret_env;  /* name of the environment variable holding the secret */
	char *secret_file; /* file holding the secret (first line) */
	int auth;          /* enum ami_auth */
	int tls;
	char *tls_ca_file;
	int tls_verify;
	char *tls_server_name;
	uint64_t connect_timeout_ms;
	uint64_t ping_interval_ms;
	uint64_t ping_timeout_ms;
	uint64_t reconnect_min_ms;
	uint64_t reconnect_max_ms;
	uint64_t auth_retry_ms;
	char *events; /* the Events: mask sent at login */
	char *held;   /* secmem: an inline or environment secret moved out of the
		       * config and the environment by collector_secrets_seal() */
};

struct collector_config {
	char *spool;
	char *log_level;
	char *log_file;
	int fsync;  /* enum seg_fsync */
	uint64_t fsync_interval_ms;
	uint64_t segment_max_size;
	uint64_t segment_max_age_ms;
	uint64_t buffer_size;
	uint64_t max_event_size;
	uint64_t status_interval_ms;
	struct node_config *nodes;
	size_t nnodes;
	/* sources: (lib/sources.h); the collector skips type kamailio (the ETL
	 * reads Kamailio's database itself) */
	struct source_config *sources;
	size_t nsources;
};

extern const struct cfg_key collector_keys[];

/* Load (path may be NULL for defaults only).  Returns an exit code:
 * 0, EXIT_NOINPUT (file missing) or EXIT_CONFIG, with a message in err. */
int collector_config_load(struct collector_config *cfg, const char *path, char *err, size_t errlen);
void collector_config_free(struct collector_config *cfg);
/* Resolve a node's secret from secret / secret_file / secret_env into a
 * newly allocated string (caller frees, after wiping).  NULL + err if none. */
char *node_secret(const struct node_config *n, char *err, size_t errlen);
/* Daemon and --check, before any thread starts: move every inline secret
 * and every secret_env value a node uses into secret memory (secmem.h: not
 * in a core, not swapped) and wipe the originals (the config string; the
 * environment string in place, then unsetenv), so the only copy left for
 * the process's life is that one.  secret_file is read at each login. */
void collector_secrets_seal(struct collector_config *cfg);

#endif
