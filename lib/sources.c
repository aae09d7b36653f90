/*
 * sources.c - the `sources:` list of the YAML config (sources.h).
 */
#include "sources.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secmem.h"
#include "segment.h"

static const char *const type_names[] = { "kamailio", "yeastar", NULL };

const char *source_type_name(int type)
{
	return type >= 0 && type <= SOURCE_YEASTAR ? type_names[type] : "?";
}

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

/* ---------------------------------------------------------------- yeastar keys */
/* (#define YEASTAR_KEYS here, listed in source_keys below) */

const struct cfg_key source_keys[] = {
	{ "name", CFG_STRING, offsetof(struct source_config, name), NULL, 0, 0, NULL, "source name: the node its legs carry (A-Z a-z 0-9 . _ -)", CFG_REQUIRED, NULL, 0, 0 },
	{ "type", CFG_ENUM, offsetof(struct source_config, type), "kamailio", 0, 0, type_names, "kamailio or yeastar", 0, NULL, 0, 0 },
	KAMAILIO_KEYS,
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef K
#undef KC

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

int sources_check(const struct source_config *s, size_t n, char *const *node_names, size_t nnodes, char *err,
		  size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (!seg_node_name_valid(s[i].name)) {
			snprintf(err, errlen, "sources[%zu].name: \"%s\" must be 1-64 of A-Z a-z 0-9 . _ - (not starting with .)",
				 i, s[i].name);
			return -1;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(s[i].name, s[j].name)) {
				snprintf(err, errlen, "sources[%zu].name: \"%s\" is used twice", i, s[i].name);
				return -1;
			}
		}
		for (size_t j = 0; node_names && j < nnodes; j++) {
			if (node_names[j] && !strcmp(s[i].name, node_names[j])) {
				snprintf(err, errlen, "sources[%zu].name: \"%s\" is an AMI node's name too", i, s[i].name);
				return -1;
			}
		}
		if (s[i].type == SOURCE_KAMAILIO && check_kamailio(&s[i], i, err, errlen) < 0)
			return -1;
	}
	return 0;
}

char *source_secret(const char *name, const char *secret_env, const char *secret_file, int *none, char *err,
		    size_t errlen)
{
	*none = 0;
	if (secret_file && *secret_file) {
		int fd = open(secret_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "source %s: cannot read secret_file \"%s\": %s", name, secret_file,
				 strerror(errno));
			return NULL;
		}
		char *line = secmem_alloc(1024);
		size_t got = 0;
		while (line && got < 1023) {
			ssize_t r = read(fd, line + got, 1023 - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		close(fd);
		if (!line) {
			snprintf(err, errlen, "source %s: out of memory for the secret", name);
			return NULL;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (!*line) {
			secmem_free(line);
			snprintf(err, errlen, "source %s: secret_file \"%s\" is empty", name, secret_file);
			return NULL;
		}
		return line;
	}
	if (secret_env && *secret_env) {
		const char *v = getenv(secret_env);
		if (!v) {
			snprintf(err, errlen, "source %s: environment variable %s (secret_env) is not set", name, secret_env);
			return NULL;
		}
		char *p = secmem_dup(v, strlen(v));
		if (!p)
			snprintf(err, errlen, "source %s: out of memory for the secret", name);
		return p;
	}
	*none = 1;
	return NULL;
}
