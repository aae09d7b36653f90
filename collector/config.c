#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "exitcode.h"
#include "fsx.h"
#include "log.h"
#include "secmem.h"
#include "segment.h"
#include "xalloc.h"

static const char *const fsync_names[] = { "always", "interval", "off", NULL };
static const char *const auth_names[] = { "plain", "md5", NULL };

#define N(f) offsetof(struct node_config, f)
static const struct cfg_key node_keys[] = {
	{ "name", CFG_STRING, N(name), NULL, 0, 0, NULL, "node name stamped on every record (A-Z a-z 0-9 . _ -)", CFG_REQUIRED, NULL, 0, 0 },
	{ "host", CFG_STRING, N(host), "127.0.0.1", 0, 0, NULL, "AMI host name or address", 0, NULL, 0, 0 },
	{ "port", CFG_INT, N(port), "5038", 1, 65535, NULL, "AMI port (5038 plain, 5039 TLS)", 0, NULL, 0, 0 },
	{ "username", CFG_STRING, N(username), NULL, 0, 0, NULL, "manager.conf user", CFG_REQUIRED, NULL, 0, 0 },
	{ "secret", CFG_STRING, N(secret), NULL, 0, 0, NULL, "the secret itself (prefer secret_env or secret_file)", CFG_SECRET, NULL, 0, 0 },
	{ "secret_env", CFG_STRING, N(secret_env), "CDRFLOW_AMI_SECRET", 0, 0, NULL, "environment variable holding the secret", 0, NULL, 0, 0 },
	{ "secret_file", CFG_STRING, N(secret_file), NULL, 0, 0, NULL, "file whose first line is the secret", 0, NULL, 0, 0 },
	{ "auth", CFG_ENUM, N(auth), "md5", 0, 0, auth_names, "login method: md5 (challenge/response) or plain", 0, NULL, 0, 0 },
	{ "tls", CFG_BOOL, N(tls), "false", 0, 0, NULL, "connect with TLS (Asterisk tlsenable, port 5039)", 0, NULL, 0, 0 },
	{ "tls_ca_file", CFG_STRING, N(tls_ca_file), NULL, 0, 0, NULL, "CA bundle to verify the server (default: system store)", 0, NULL, 0, 0 },
	{ "tls_verify", CFG_BOOL, N(tls_verify), "true", 0, 0, NULL, "verify the server certificate and host name", 0, NULL, 0, 0 },
	{ "tls_server_name", CFG_STRING, N(tls_server_name), NULL, 0, 0, NULL, "name to verify and send as SNI (default: host)", 0, NULL, 0, 0 },
	{ "connect_timeout", CFG_DURATION, N(connect_timeout_ms), "5s", 100, 600000, NULL, "timeout of each step: TCP connect, TLS handshake, AMI banner and login", 0, NULL, 0, 0 },
	{ "ping_interval", CFG_DURATION, N(ping_interval_ms), "20s", 100, 3600000, NULL, "send Action: Ping this often", 0, NULL, 0, 0 },
	{ "ping_timeout", CFG_DURATION, N(ping_timeout_ms), "10s", 100, 3600000, NULL, "reconnect if a Ping gets no answer in this time", 0, NULL, 0, 0 },
	{ "reconnect_min", CFG_DURATION, N(reconnect_min_ms), "500ms", 10, 3600000, NULL, "first reconnect delay (doubles, with jitter)", 0, NULL, 0, 0 },
	{ "reconnect_max", CFG_DURATION, N(reconnect_max_ms), "30s", 10, 86400000, NULL, "cap on the reconnect delay", 0, NULL, 0, 0 },
	{ "auth_retry", CFG_DURATION, N(auth_retry_ms), "60s", 10, 86400000, NULL, "delay before retrying after an authentication failure", 0, NULL, 0, 0 },
	{ "events", CFG_STRING, N(events), "on", 0, 0, NULL, "Events: mask sent at login (on, or a list such as call,agent,reporting,cdr,security,system)", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef N

#define C(f) offsetof(struct collector_config, f)
const struct cfg_key collector_keys[] = {
	{ "spool", CFG_STRING, C(spool), "/var/spool/cdrflow", 0, 0, NULL, "spool directory (one sub-directory per node)", 0, NULL, 0, 0 },
	{ "log.level", CFG_STRING, C(log_level), "info", 0, 0, NULL, "error, warn, info or debug", 0, NULL, 0, 0 },
	{ "log.file", CFG_STRING, C(log_file), NULL, 0, 0, NULL, "log file (empty: stderr); reopened on SIGHUP", 0, NULL, 0, 0 },
	{ "collector.fsync", CFG_ENUM, C(fsync), "always", 0, 0, fsync_names, "always: fsync every write batch (group commit); interval: every fsync_interval; off: leave it to the OS", 0, NULL, 0, 0 },
	{ "collector.fsync_interval", CFG_DURATION, C(fsync_interval_ms), "100ms", 1, 60000, NULL, "fsync period for fsync: interval", 0, NULL, 0, 0 },
	{ "collector.segment_max_size", CFG_SIZE, C(segment_max_size), "64MiB", 4096, (int64_t)1 << 40, NULL, "rotate a segment at about this size", 0, NULL, 0, 0 },
	{ "collector.segment_max_age", CFG_DURATION, C(segment_max_age_ms), "1h", 1000, (int64_t)366 * 86400000, NULL, "rotate a segment at this age", 0, NULL, 0, 0 },
	{ "collector.buffer_size", CFG_SIZE, C(buffer_size), "3MiB", 65536, (int64_t)1 << 32, NULL, "memory per node for events waiting for the disk", 0, NULL, 0, 0 },
	{ "collector.max_event_size", CFG_SIZE, C(max_event_size), "1MiB", 1024, 64 << 20, NULL, "larger AMI messages are dropped with an error", 0, NULL, 0, 0 },
	{ "collector.status_interval", CFG_DURATION, C(status_interval_ms), "60s", 0, 86400000, NULL, "period of the status line in the log (0: off)", 0, NULL, 0, 0 },
	{ "collector.nodes", CFG_LIST, C(nodes), NULL, 0, 0, NULL, "the PBX nodes to collect from", 0, node_keys, sizeof(struct node_config), C(nnodes) },
	{ "sources", CFG_LIST, C(sources), NULL, 0, 0, NULL, "PBXs and proxies that are not AMI nodes (docs/sources.md)", 0, source_item_keys, sizeof(struct source_config), C(nsources) },
	/* sections read by the other programs */
	{ "etl", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "cdr", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "database", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "report", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "tenants", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "numbering", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "rating", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "fraud", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "alerts", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "delivery", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef C

int collector_config_load(struct collector_config *cfg, const char *path, char *err, size_t errlen)
{
	int missing = 0;
	memset(cfg, 0, sizeof *cfg);
	if (cfg_load(collector_keys, cfg, path, &missing, err, errlen) < 0)
		return missing ? EXIT_NOINPUT : EXIT_CONFIG;
	if (log_level_parse(cfg->log_level) < 0) {
		snprintf(err, errlen, "%s: log.level: \"%s\" must be one of error, warn (or warning), info, debug",
			 path ? path : "configuration", cfg->log_level);
		return EXIT_CONFIG;
	}
	for (size_t i = 0; i < cfg->nnodes; i++) {
		struct node_config *n = &cfg->nodes[i];
		if (!seg_node_name_valid(n->name)) {
			snprintf(err, errlen, "%s: collector.nodes[%zu].name: \"%s\" is not a valid node name (1-64 of A-Z a-z 0-9 . _ -)",
				 path ? path : "configuration", i, n->name);
			return EXIT_CONFIG;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(cfg->nodes[j].name, n->name)) {
				snprintf(err, errlen, "%s: collector.nodes[%zu].name: \"%s\" is used twice",
					 path ? path : "configuration", i, n->name);
				return EXIT_CONFIG;
			}
		}
		if (n->ping_timeout_ms > n->ping_interval_ms * 10)
			n->ping_timeout_ms = n->ping_interval_ms * 10;
		if (n->reconnect_max_ms < n->reconnect_min_ms)
			n->reconnect_max_ms = n->reconnect_min_ms;
	}
	{
		const char **names = xcalloc(cfg->nnodes + 1, sizeof *names);
		for (size_t i = 0; i < cfg->nnodes; i++)
			names[i] = cfg->nodes[i].name;
		int bad = sources_check(cfg->sources, cfg->nsources, names, cfg->nnodes, path, err, errlen);
		free(names);
		if (bad < 0)
			return EXIT_CONFIG;
	}
	if (path && cfg->nnodes) {
		struct stat st;
		int inline_secret = 0;
		for (size_t i = 0; i < cfg->nnodes; i++)
			inline_secret |= *cfg->nodes[i].secret != '\0';
		if (inline_secret && stat(path, &st) == 0 && (st.st_mode & 0004))
			log_warn("config file \"%s\" holds a secret and is world-readable (chmod 600 it)", path);
	}
	return 0;
}

void collector_secrets_seal(struct collector_config *cfg)
{
	for (size_t i = 0; i < cfg->nnodes; i++) {
		struct node_config *n = &cfg->nodes[i];
		if (*n->secret_file || n->held)
			continue;
		if (*n->secret) {
			n->held = secmem_dup(n->secret, strlen(n->secret));
			explicit_bzero(n->secret, strlen(n->secret));
			continue;
		}
		const char *v = *n->secret_env ? getenv(n->secret_env) : NULL;
		if (v)
			n->held = secmem_dup(v, strlen(v));
		else /* wiped already for a node before that uses the same variable */
			for (size_t j = 0; j < i; j++)
				if (cfg->nodes[j].held && !*cfg->nodes[j].secret_file && !strcmp(cfg->nodes[j].secret_env, n->secret_env))
					n->held = secmem_dup(cfg->nodes[j].held, strlen(cfg->nodes[j].held));
	}
	/* then wipe the environment strings the held copies came from */
	for (size_t i = 0; i < cfg->nnodes; i++) {
		struct node_config *n = &cfg->nodes[i];
		if (*n->secret_file || !n->held || !*n->secret_env)
			continue;
		char *v = getenv(n->secret_env);
		if (v) {
			explicit_bzero(v, strlen(v));
			unsetenv(n->secret_env);
		}
	}
}

void collector_config_free(struct collector_config *cfg)
{
	sources_release(cfg->sources, cfg->nsources);
	for (size_t i = 0; i < cfg->nnodes; i++) {
		secmem_free(cfg->nodes[i].held);
		cfg->nodes[i].held = NULL;
	}
	cfg_free(collector_keys, cfg);
}

static char *secret_copy(const struct node_config *n, const char *s, char *err, size_t errlen)
{
	char *out = secmem_dup(s, strlen(s));
	if (!out)
		snprintf(err, errlen, "node %s: cannot allocate memory for the secret: %s", n->name, strerror(errno));
	return out;
}

char *node_secret(const struct node_config *n, char *err, size_t errlen)
{
	if (*n->secret_file) {
		char who[SEG_NODE_MAX + 8];
		snprintf(who, sizeof who, "node %s", n->name);
		return source_secret(who, "secret_file", NULL, n->secret_file, NULL, err, errlen);
	}
	if (*n->secret)
		return secret_copy(n, n->secret, err, errlen);
	if (n->held)
		return secret_copy(n, n->held, err, errlen);
	const char *v = *n->secret_env ? getenv(n->secret_env) : NULL;
	if (v)
		return secret_copy(n, v, err, errlen);
	snprintf(err, errlen, "node %s: no secret: set environment variable %s, or secret_file", n->name,
		 *n->secret_env ? n->secret_env : "CDRFLOW_AMI_SECRET");
	return NULL;
}
