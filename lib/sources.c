/*
 * sources.c - the `sources:` key table and its checks (sources.h).
 *
 * Each source type keeps its keys in its own block below ("yeastar.*",
 * "kamailio.*"): one table, read by cdrflow-collector and cdrflow-etl.
 */
#include "sources.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsx.h"
#include "secmem.h"
#include "segment.h"

const char *const source_type_names[] = { "kamailio", "yeastar", NULL };

const char *source_type_name(int type)
{
	return type >= SOURCE_KAMAILIO && type <= SOURCE_YEASTAR ? source_type_names[type] : "?";
}
const char *const yeastar_transport_names[] = { "websocket", "webhook", NULL };

/* ---------------------------------------------------------------- kamailio keys */
static const char *const kam_db_names[] = { "postgresql", "mysql", NULL };

#define K(f) offsetof(struct source_config, kamailio.f)
#define KC(f) offsetof(struct source_config, kamailio.col.f)
#define KAMAILIO_KEYS                                                                                                   \
	{ "kamailio.db_type", CFG_ENUM, K(db_type), "postgresql", 0, 0, kam_db_names, "the Kamailio database: postgresql or mysql (MySQL/MariaDB)", 0, NULL, 0, 0 }, \
	{ "kamailio.host", CFG_STRING, K(host), "127.0.0.1", 0, 0, NULL, "database host (PostgreSQL: also a socket directory)", 0, NULL, 0, 0 }, \
	{ "kamailio.port", CFG_INT, K(port), "0", 0, 65535, NULL, "database port (0: 5432 or 3306)", 0, NULL, 0, 0 }, \
	{ "kamailio.socket", CFG_STRING, K(socket), NULL, 0, 0, NULL, "MySQL: unix socket path (instead of host and port)", 0, NULL, 0, 0 }, \
	{ "kamailio.database", CFG_STRING, K(database), "kamailio", 0, 0, NULL, "database name", 0, NULL, 0, 0 }, \
	{ "kamailio.user", CFG_STRING, K(user), "kamailio", 0, 0, NULL, "database user (read access to the acc tables is enough)", 0, NULL, 0, 0 }, \
	{ "kamailio.secret_env", CFG_STRING, K(secret_env), NULL, 0, 0, NULL, "environment variable holding the password", 0, NULL, 0, 0 }, \
	{ "kamailio.secret_file", CFG_STRING, K(secret_file), NULL, 0, 0, NULL, "file whose first line is the password", 0, NULL, 0, 0 }, \
	{ "kamailio.options", CFG_STRING, K(options), NULL, 0, 0, NULL, "PostgreSQL: more libpq conninfo (e.g. sslmode=require); no password", 0, NULL, 0, 0 }, \
	{ "kamailio.cdrs_table", CFG_STRING, K(cdrs_table), "acc_cdrs", 0, 0, NULL, "dialog CDR table (acc cdrs_table; empty: not read)", 0, NULL, 0, 0 }, \
	{ "kamailio.missed_table", CFG_STRING, K(missed_table), NULL, 0, 0, NULL, "failed-call table (acc db_table_missed_calls; read it when cdr_on_failed is 0)", 0, NULL, 0, 0 }, \
	{ "kamailio.acc_table", CFG_STRING, K(acc_table), NULL, 0, 0, NULL, "transaction table (acc db_table_acc): INVITE/BYE pairs, when there is no CDR table", 0, NULL, 0, 0 }, \
	{ "kamailio.time_mode", CFG_INT, K(time_mode), "0", 0, 4, NULL, "the acc module's time_mode: 0, 1, 2, 3 local time; 4 UTC", 0, NULL, 0, 0 }, \
	{ "kamailio.start_on_confirmed", CFG_BOOL, K(start_on_confirmed), "no", 0, 0, NULL, "the acc module's cdr_start_on_confirmed: start_time is the answer", 0, NULL, 0, 0 }, \
	{ "kamailio.context", CFG_STRING, K(context), "kamailio", 0, 0, NULL, "dcontext of the legs (tenant rules can match it)", 0, NULL, 0, 0 }, \
	{ "kamailio.batch_rows", CFG_INT, K(batch_rows), "5000", 1, 10000000, NULL, "rows per transaction", 0, NULL, 0, 0 }, \
	{ "kamailio.poll_interval", CFG_DURATION, K(poll_ms), "5s", 0, 86400000, NULL, "--follow: read the tables this often", 0, NULL, 0, 0 }, \
	{ "kamailio.settle_time", CFG_DURATION, K(settle_ms), "2s", 0, 3600000, NULL, "a gap in the keys before a row younger than this: wait, an insert may still commit", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.id", CFG_STRING, KC(id), "id", 0, 0, NULL, "increasing row key (the checkpoint)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.start_time", CFG_STRING, KC(start_time), "start_time", 0, 0, NULL, "CDR start (cdr_start_id)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.end_time", CFG_STRING, KC(end_time), "end_time", 0, 0, NULL, "CDR end (cdr_end_id)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.duration", CFG_STRING, KC(duration), "duration", 0, 0, NULL, "CDR duration in seconds (cdr_duration_id)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.setup_time", CFG_STRING, KC(setup_time), NULL, 0, 0, NULL, "cdr_extra column: INVITE time, sub-second (epoch seconds or date-time)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.answer_time", CFG_STRING, KC(answer_time), NULL, 0, 0, NULL, "cdr_extra column: answer time (epoch seconds or date-time)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.failure_time", CFG_STRING, KC(failure_time), NULL, 0, 0, NULL, "cdr_extra column: time of the final failure reply (ring time of failed calls)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.time", CFG_STRING, KC(time), "time", 0, 0, NULL, "acc and missed_calls: time of the transaction (acc_time_column)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.callid", CFG_STRING, KC(callid), "callid", 0, 0, NULL, "SIP Call-ID", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.sip_code", CFG_STRING, KC(sip_code), "sip_code", 0, 0, NULL, "final SIP code (disposition)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.sip_reason", CFG_STRING, KC(sip_reason), "sip_reason", 0, 0, NULL, "final SIP reason phrase", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.src_user", CFG_STRING, KC(src_user), "src_user", 0, 0, NULL, "caller user part (src)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.src_domain", CFG_STRING, KC(src_domain), "src_domain", 0, 0, NULL, "caller domain", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.src_ip", CFG_STRING, KC(src_ip), "src_ip", 0, 0, NULL, "source IP of the INVITE (the calling side)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.dst_user", CFG_STRING, KC(dst_user), "dst_user", 0, 0, NULL, "callee user part (dst)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.dst_domain", CFG_STRING, KC(dst_domain), "dst_domain", 0, 0, NULL, "callee domain", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.carrier", CFG_STRING, KC(carrier), NULL, 0, 0, NULL, "carrier / dispatcher destination the call left by (the trunk)", 0, NULL, 0, 0 }, \
	{ "kamailio.columns.accountcode", CFG_STRING, KC(accountcode), NULL, 0, 0, NULL, "column used as the leg's accountcode (tenant rules)", 0, NULL, 0, 0 }

#define S(f) offsetof(struct source_config, f)
#define Y(f) (offsetof(struct source_config, yeastar) + offsetof(struct yeastar_source, f))
const struct cfg_key source_item_keys[] = {
	{ "name", CFG_STRING, S(name), NULL, 0, 0, NULL, "node name of the source: its spool directory and the node column of its rows (A-Z a-z 0-9 . _ -)", CFG_REQUIRED, NULL, 0, 0 },
	{ "type", CFG_ENUM, S(type), "kamailio", 0, 0, source_type_names, "kamailio or yeastar; the settings go in the block of that name", 0, NULL, 0, 0 },
	/* ---- type: kamailio (the acc module's tables in Kamailio's database) ---- */
	KAMAILIO_KEYS,
	/* ---- end of type: kamailio ---- */
	/* ---- type: yeastar (Yeastar P-Series OpenAPI events, S-Series NewCdr push) ---- */
	{ "yeastar.api_url", CFG_STRING, Y(api_url), NULL, 0, 0, NULL, "OpenAPI base URL, e.g. https://192.168.5.150:8088/openapi/v1.0 (websocket transport)", 0, NULL, 0, 0 },
	{ "yeastar.client_id", CFG_STRING, Y(client_id), NULL, 0, 0, NULL, "Client ID of the PBX's API page (get_token username)", 0, NULL, 0, 0 },
	{ "yeastar.secret_env", CFG_STRING, Y(secret_env), "CDRFLOW_YEASTAR_SECRET", 0, 0, NULL, "environment variable holding the Client Secret", 0, NULL, 0, 0 },
	{ "yeastar.secret_file", CFG_STRING, Y(secret_file), NULL, 0, 0, NULL, "file whose first line is the Client Secret (instead of secret_env)", 0, NULL, 0, 0 },
	{ "yeastar.transport", CFG_ENUM, Y(transport), "websocket", 0, 0, yeastar_transport_names, "websocket: the collector subscribes; webhook: the PBX POSTs to listen", 0, NULL, 0, 0 },
	{ "yeastar.topics", CFG_STRING, Y(topics), "30011,30012,30008,30007", 0, 0, NULL, "event IDs to subscribe to (websocket)", 0, NULL, 0, 0 },
	{ "yeastar.listen", CFG_STRING, Y(listen), "127.0.0.1:8260", 0, 0, NULL, "webhook: address:port the collector listens on for the PBX's POSTs", 0, NULL, 0, 0 },
	{ "yeastar.webhook_path", CFG_STRING, Y(webhook_path), "/", 0, 0, NULL, "webhook: the URL path the PBX posts to", 0, NULL, 0, 0 },
	{ "yeastar.webhook_secret_env", CFG_STRING, Y(webhook_secret_env), NULL, 0, 0, NULL, "webhook: environment variable holding the webhook Secret; then every POST must carry X-Signature = base64(HMAC-SHA256(secret, body))", 0, NULL, 0, 0 },
	{ "yeastar.webhook_secret_file", CFG_STRING, Y(webhook_secret_file), NULL, 0, 0, NULL, "webhook: file whose first line is the webhook Secret", 0, NULL, 0, 0 },
	{ "yeastar.s_series_login", CFG_BOOL, Y(s_series_login), "false", 0, 0, NULL, "webhook: log in to an S-Series PBX's API (api_url, client_id = API username, the secret = API password) so that it pushes its events to push_url, and keep its token alive with a heartbeat every heartbeat_interval", 0, NULL, 0, 0 },
	{ "yeastar.push_url", CFG_STRING, Y(push_url), NULL, 0, 0, NULL, "webhook with s_series_login: where the PBX pushes, ip:port/path as it can reach the collector (default: listen and webhook_path)", 0, NULL, 0, 0 },
	{ "yeastar.heartbeat_interval", CFG_DURATION, Y(heartbeat_ms), "20s", 100, 3600000, NULL, "send \"heartbeat\" this often (the PBX drops a socket idle for 60 s)", 0, NULL, 0, 0 },
	{ "yeastar.heartbeat_timeout", CFG_DURATION, Y(heartbeat_timeout_ms), "30s", 100, 3600000, NULL, "reconnect when nothing at all arrives for this long", 0, NULL, 0, 0 },
	{ "yeastar.connect_timeout", CFG_DURATION, Y(connect_timeout_ms), "10s", 100, 600000, NULL, "timeout of the token request and of the WebSocket handshake", 0, NULL, 0, 0 },
	{ "yeastar.reconnect_min", CFG_DURATION, Y(reconnect_min_ms), "500ms", 10, 3600000, NULL, "first reconnect delay (doubles, with jitter, as for AMI nodes)", 0, NULL, 0, 0 },
	{ "yeastar.reconnect_max", CFG_DURATION, Y(reconnect_max_ms), "30s", 10, 86400000, NULL, "cap on the reconnect delay", 0, NULL, 0, 0 },
	{ "yeastar.auth_retry", CFG_DURATION, Y(auth_retry_ms), "60s", 10, 86400000, NULL, "delay before retrying after get_token was refused", 0, NULL, 0, 0 },
	{ "yeastar.tls_verify", CFG_BOOL, Y(tls_verify), "true", 0, 0, NULL, "verify the PBX's certificate and host name (https/wss)", 0, NULL, 0, 0 },
	{ "yeastar.tls_ca_file", CFG_STRING, Y(tls_ca_file), NULL, 0, 0, NULL, "CA bundle to verify the PBX (default: system store)", 0, NULL, 0, 0 },
	{ "yeastar.utc_offset", CFG_STRING, Y(utc_offset), "+00:00", 0, 0, NULL, "offset of the PBX's clock from UTC (time_start is local time), e.g. +02:00", 0, NULL, 0, 0 },
	/* ---- end of type: yeastar ---- */
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef Y
#undef S
#undef K
#undef KC

int source_parse_utc_offset(const char *s, int64_t *out)
{
	if (!s || !*s || !strcmp(s, "Z") || !strcmp(s, "UTC")) {
		*out = 0;
		return 0;
	}
	int sign = s[0] == '-' ? -1 : s[0] == '+' ? 1 : 0;
	if (!sign)
		return -1;
	const char *p = s + 1;
	int d[4], nd = 0;
	for (; *p && nd < 4; p++) {
		if (*p >= '0' && *p <= '9')
			d[nd++] = *p - '0';
		else if (*p != ':' || nd != 2)
			return -1;
	}
	if (*p || (nd != 4 && nd != 2))
		return -1;
	int h = d[0] * 10 + d[1], m = nd == 4 ? d[2] * 10 + d[3] : 0;
	if (h > 14 || m > 59)
		return -1;
	*out = sign * (int64_t)(h * 3600 + m * 60);
	return 0;
}

static int fail(char *err, size_t errlen, const char *path, size_t i, const char *key, const char *why)
{
	snprintf(err, errlen, "%s: sources[%zu].%s: %s", path ? path : "configuration", i, key, why);
	return -1;
}

/* a table or column name put into SQL: plain identifiers only */
static int ident_ok(const char *s)
{
	if (strlen(s) > 63)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (p > s && *p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

/* ---- type: kamailio ---- */
static int check_kamailio(const struct source_config *s, size_t i, char *err, size_t errlen)
{
	const struct kam_source *k = &s->kamailio;
	const struct {
		const char *key, *v;
	} ids[] = {
		{ "cdrs_table", k->cdrs_table }, { "missed_table", k->missed_table }, { "acc_table", k->acc_table },
		{ "columns.id", k->col.id }, { "columns.start_time", k->col.start_time },
		{ "columns.end_time", k->col.end_time }, { "columns.duration", k->col.duration },
		{ "columns.answer_time", k->col.answer_time }, { "columns.time", k->col.time },
		{ "columns.setup_time", k->col.setup_time }, { "columns.failure_time", k->col.failure_time },
		{ "columns.callid", k->col.callid }, { "columns.sip_code", k->col.sip_code },
		{ "columns.sip_reason", k->col.sip_reason }, { "columns.src_user", k->col.src_user },
		{ "columns.src_domain", k->col.src_domain }, { "columns.src_ip", k->col.src_ip },
		{ "columns.dst_user", k->col.dst_user }, { "columns.dst_domain", k->col.dst_domain },
		{ "columns.carrier", k->col.carrier }, { "columns.accountcode", k->col.accountcode },
	};
	for (size_t j = 0; j < sizeof ids / sizeof ids[0]; j++) {
		if (!ident_ok(ids[j].v)) {
			snprintf(err, errlen, "sources[%zu].kamailio.%s: \"%s\" is not a plain SQL name (letters, digits, _)", i,
				 ids[j].key, ids[j].v);
			return -1;
		}
	}
	if (!*k->cdrs_table && !*k->missed_table && !*k->acc_table) {
		snprintf(err, errlen, "sources[%zu] (%s): no table to read: set kamailio.cdrs_table, missed_table or acc_table",
			 i, s->name);
		return -1;
	}
	if (!*k->col.id) {
		snprintf(err, errlen, "sources[%zu].kamailio.columns.id is required (the checkpoint)", i);
		return -1;
	}
	if (*k->cdrs_table && (!*k->col.start_time || !*k->col.end_time)) {
		snprintf(err, errlen, "sources[%zu].kamailio: cdrs_table needs columns.start_time and columns.end_time", i);
		return -1;
	}
	if ((*k->missed_table || *k->acc_table) && !*k->col.time) {
		snprintf(err, errlen, "sources[%zu].kamailio: missed_table and acc_table need columns.time", i);
		return -1;
	}
	if (*k->acc_table && (!*k->col.callid || !*k->col.sip_code)) {
		snprintf(err, errlen, "sources[%zu].kamailio: acc_table needs columns.callid and columns.sip_code", i);
		return -1;
	}
	if (k->db_type == KAM_DB_POSTGRESQL && strstr(k->options, "password")) {
		snprintf(err, errlen, "sources[%zu].kamailio.options: no password here: use secret_env or secret_file", i);
		return -1;
	}
	return 0;
}
/* ---- end of type: kamailio ---- */

/* ---- type: yeastar ---- */
static int yeastar_check(struct yeastar_source *y, size_t i, const char *path, char *err, size_t errlen)
{
	if (source_parse_utc_offset(y->utc_offset, &y->utc_offset_s) < 0)
		return fail(err, errlen, path, i, "yeastar.utc_offset", "want +HH:MM or -HH:MM");
	if (y->transport == YEASTAR_WEBSOCKET || y->s_series_login) {
		if (!*y->api_url)
			return fail(err, errlen, path, i, "yeastar.api_url", "is required with transport websocket or s_series_login");
		if (strncmp(y->api_url, "http://", 7) && strncmp(y->api_url, "https://", 8))
			return fail(err, errlen, path, i, "yeastar.api_url", "must start with http:// or https://");
		if (!*y->client_id)
			return fail(err, errlen, path, i, "yeastar.client_id", "is required with transport websocket or s_series_login");
		if (!*y->secret_env && !*y->secret_file)
			return fail(err, errlen, path, i, "yeastar.secret_env", "set secret_env or secret_file");
	}
	if (y->s_series_login && y->transport != YEASTAR_WEBHOOK)
		return fail(err, errlen, path, i, "yeastar.s_series_login", "needs transport webhook (the PBX pushes)");
	if (y->transport == YEASTAR_WEBHOOK) {
		const char *colon = strrchr(y->listen, ':');
		if (!colon || colon == y->listen || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
			return fail(err, errlen, path, i, "yeastar.listen", "want address:port");
		if (y->webhook_path[0] != '/')
			return fail(err, errlen, path, i, "yeastar.webhook_path", "must start with /");
	}
	if (y->reconnect_max_ms < y->reconnect_min_ms)
		y->reconnect_max_ms = y->reconnect_min_ms;
	return 0;
}
/* ---- end of type: yeastar ---- */

int sources_check(struct source_config *s, size_t n, const char *const *other_names, size_t nother,
		  const char *path, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (!seg_node_name_valid(s[i].name))
			return fail(err, errlen, path, i, "name", "not a valid node name (1-64 of A-Z a-z 0-9 . _ -)");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s[j].name, s[i].name))
				return fail(err, errlen, path, i, "name", "is used twice");
		for (size_t j = 0; j < nother; j++)
			if (!strcmp(other_names[j], s[i].name))
				return fail(err, errlen, path, i, "name", "is the name of an AMI node too");
		char why[512];
		if (s[i].type == SOURCE_KAMAILIO && check_kamailio(&s[i], i, why, sizeof why) < 0) {
			snprintf(err, errlen, "%s: %s", path ? path : "configuration", why);
			return -1;
		}
		if (s[i].type == SOURCE_YEASTAR && yeastar_check(&s[i].yeastar, i, path, err, errlen) < 0)
			return -1;
	}
	return 0;
}

char *source_secret(const char *name, const char *file_key, const char *env, const char *file, int *none, char *err,
		    size_t errlen)
{
	if (none)
		*none = 0;
	if (none && !(file && *file) && !(env && *env)) {
		*none = 1;
		return NULL;
	}
	if (file && *file) {
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "%s: cannot read %s \"%s\": %s", name, file_key, file, strerror(errno));
			return NULL;
		}
		/* read(2) into secret memory: no stdio buffer keeps a copy */
		char *line = secmem_alloc(1024);
		ssize_t got = line ? read_full(fd, line, 1023) : -1;
		int e = errno;
		close(fd);
		if (got < 0) {
			secmem_free(line);
			snprintf(err, errlen, "%s: cannot read %s \"%s\": %s", name, file_key, file, strerror(e));
			return NULL;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (!*line) {
			secmem_free(line);
			snprintf(err, errlen, "%s: %s \"%s\" is empty", name, file_key, file);
			return NULL;
		}
		return line;
	}
	const char *v = env && *env ? getenv(env) : NULL;
	if (v && *v) {
		char *out = secmem_dup(v, strlen(v));
		if (!out)
			snprintf(err, errlen, "%s: cannot allocate memory for the secret: %s", name, strerror(errno));
		return out;
	}
	snprintf(err, errlen, "%s: no secret: set environment variable %s, or %s", name, env && *env ? env : "(none named)",
		 file_key);
	return NULL;
}

static void wipe_env(const char *env)
{
	char *v = env && *env ? getenv(env) : NULL;
	if (v) {
		explicit_bzero(v, strlen(v));
		unsetenv(env);
	}
}

int sources_secrets_seal(struct source_config *s, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		struct yeastar_source *y = &s[i].yeastar;
		if (s[i].type != SOURCE_YEASTAR)
			continue;
		if ((y->transport == YEASTAR_WEBSOCKET || y->s_series_login) && !y->held &&
		    !(y->held = source_secret(s[i].name, "yeastar.secret_file", y->secret_env, y->secret_file, NULL, err, errlen)))
			return -1;
		if (y->transport == YEASTAR_WEBHOOK && !y->webhook_held &&
		    (*y->webhook_secret_env || *y->webhook_secret_file) &&
		    !(y->webhook_held = source_secret(s[i].name, "yeastar.webhook_secret_file", y->webhook_secret_env,
						      y->webhook_secret_file, NULL, err, errlen)))
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i].type != SOURCE_YEASTAR)
			continue;
		if (s[i].yeastar.held && !*s[i].yeastar.secret_file)
			wipe_env(s[i].yeastar.secret_env);
		if (s[i].yeastar.webhook_held && !*s[i].yeastar.webhook_secret_file)
			wipe_env(s[i].yeastar.webhook_secret_env);
	}
	return 0;
}

void sources_release(struct source_config *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		secmem_free(s[i].yeastar.held);
		secmem_free(s[i].yeastar.webhook_held);
		s[i].yeastar.held = s[i].yeastar.webhook_held = NULL;
	}
}
