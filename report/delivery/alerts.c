/*
 * alerts.c - alert rows to the webhook, at least once, never lost.
 */
#include "alerts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "xalloc.h"

struct retry_ctx {
	struct webhook *w;
	PGconn *c;
	int db_failed;
};

static int exec_ok(PGconn *c, const char *sql, int nparams, const char *const *params, ExecStatusType want,
		   PGresult **out, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != want) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		if (out)
			*out = NULL;
		return -1;
	}
	if (out)
		*out = r;
	else
		PQclear(r);
	return 0;
}

/* "alert-<digits>" -> the id text, else NULL */
static const char *alert_id_of(const char *key)
{
	if (strncmp(key, "alert-", 6) || !key[6] || strspn(key + 6, "0123456789") != strlen(key + 6))
		return NULL;
	return key + 6;
}

static enum dlv_result retry_send(void *ctx, const struct outbox_msg *m, char *err, size_t errlen)
{
	struct retry_ctx *rc = ctx;
	enum dlv_result r = webhook_spool_send(rc->w, m, err, errlen);
	const char *id = alert_id_of(m->key);
	if (r == DLV_OK && id) {
		const char *p[1] = { id };
		char e[256];
		if (exec_ok(rc->c,
			    "UPDATE alert SET delivered_at = now(), delivery_attempts = coalesce(delivery_attempts, 0) + 1 "
			    "WHERE id = $1::bigint AND delivered_at IS NULL",
			    1, p, PGRES_COMMAND_OK, NULL, e, sizeof e) < 0) {
			/* delivered but not marked: the next run posts it again with the
			 * same Idempotency-Key, which the receiver de-duplicates */
			log_error("alert %s delivered from the spool but not marked: %s", id, e);
			rc->db_failed = 1;
		}
	}
	return r;
}

static const char *const select_sql =
	"SELECT a.id::text, (jsonb_build_object('type', 'alert') || "
	"(to_jsonb(a) - 'delivered_at' - 'delivery_attempts'))::text "
	"FROM alert a WHERE a.delivered_at IS NULL AND a.id > $1::bigint "
	"ORDER BY a.id LIMIT 1 FOR UPDATE SKIP LOCKED";

static const char *const mark_sql =
	"UPDATE alert SET delivered_at = CASE WHEN $2::bool THEN now() END, "
	"delivery_attempts = coalesce(delivery_attempts, 0) + $3::int WHERE id = $1::bigint";

int alerts_deliver(PGconn *c, const struct webhook_cfg *wc, const char *spool_dir, size_t limit,
		   struct alerts_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	*err = '\0';
	struct webhook w;
	if (webhook_open(&w, wc, err, errlen) < 0)
		return EXIT_CONFIG;
	struct retry_ctx rc = { &w, c, 0 };
	char e[1024];
	int code = outbox_retry(spool_dir, retry_send, &rc, &st->spool, e, sizeof e);
	if (code)
		snprintf(err, errlen, "%s", e);
	if (code == EXIT_TEMPFAIL) {
		/* another run is draining: do not race it */
		webhook_close(&w);
		return code;
	}
	if (rc.db_failed)
		code = dlv_exit_merge(code, EXIT_UNAVAILABLE);
	char last[32] = "0";
	for (size_t n = 0; !limit || n < limit; n++) {
		PGresult *r;
		const char *p1[1] = { last };
		if (exec_ok(c, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, e, sizeof e) < 0 ||
		    exec_ok(c, select_sql, 1, p1, PGRES_TUPLES_OK, &r, e, sizeof e) < 0) {
			snprintf(err, errlen, "%s", e);
			code = dlv_exit_merge(code, EXIT_UNAVAILABLE);
			break;
		}
		if (PQntuples(r) == 0) {
			PQclear(r);
			exec_ok(c, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, e, sizeof e);
			break;
		}
		snprintf(last, sizeof last, "%s", PQgetvalue(r, 0, 0));
		const char *body = PQgetvalue(r, 0, 1);
		size_t blen = (size_t)PQgetlength(r, 0, 1);
		char key[64];
		snprintf(key, sizeof key, "alert-%s", last);
		int q = outbox_find_key(spool_dir, key, NULL);
		if (q != 0) {
			PQclear(r);
			exec_ok(c, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, e, sizeof e);
			if (q < 0) {
				snprintf(err, errlen, "cannot read spool \"%s\": %s", spool_dir, strerror(errno));
				code = dlv_exit_merge(code, EXIT_IOERR);
				break;
			}
			st->already_queued++;
			continue;
		}
		int attempts = 0;
		long status = 0;
		enum dlv_result res = webhook_post(&w, key, body, blen, &attempts, &status, e, sizeof e);
		int one = EXIT_OK;
		if (res != DLV_OK) {
			if (res == DLV_LOCAL)
				res = DLV_TEMPFAIL; /* keep it: nothing was sent */
			one = outbox_keep(spool_dir, "webhook", key, NULL, body, blen, res, e, sizeof e);
			snprintf(err, errlen, "%s: %s", key, e);
		}
		PQclear(r);
		char att[16];
		snprintf(att, sizeof att, "%d", attempts);
		const char *p3[3] = { last, res == DLV_OK ? "true" : "false", att };
		if (exec_ok(c, mark_sql, 3, p3, PGRES_COMMAND_OK, NULL, e, sizeof e) < 0 ||
		    exec_ok(c, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, e, sizeof e) < 0) {
			/* the message is delivered or queued; only the row's marks are lost */
			snprintf(err, errlen, "%s: %s", key, e);
			code = dlv_exit_merge(code, EXIT_UNAVAILABLE);
			PQclear(PQexec(c, "ROLLBACK"));
			break;
		}
		if (res == DLV_OK)
			st->delivered++;
		else
			st->queued++;
		code = dlv_exit_merge(code, one);
	}
	webhook_close(&w);
	return code;
}
