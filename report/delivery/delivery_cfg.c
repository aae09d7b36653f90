/*
 * delivery_cfg.c - one key table for report.delivery.*.
 */
#include "delivery_cfg.h"

#include "xalloc.h"

const char *const mail_tls_names[] = { "none", "starttls", "tls", NULL };

#define D(f) offsetof(struct delivery_cfg, f)
#define M(f) (offsetof(struct delivery_cfg, mail) + offsetof(struct mail_cfg, f))
#define W(f) (offsetof(struct delivery_cfg, webhook) + offsetof(struct webhook_cfg, f))
const struct cfg_key delivery_cfg_keys[] = {
	{ "report.delivery.spool", CFG_STRING, D(spool), "/var/spool/cdrflow/delivery", 0, 0, NULL, "undelivered messages wait here (mail/ and webhook/ below it)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.host", CFG_STRING, M(host), NULL, 0, 0, NULL, "SMTP server (empty: no mail)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.port", CFG_INT, M(port), "587", 1, 65535, NULL, "SMTP port (587 submission with starttls, 465 tls, 25 relay)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.tls", CFG_ENUM, M(tls), "starttls", 0, 0, mail_tls_names, "none, starttls (required, never falls back to clear text) or tls (implicit, smtps)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.tls_ca_file", CFG_STRING, M(tls_ca_file), NULL, 0, 0, NULL, "CA bundle to verify the server (default: system store)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.tls_verify", CFG_BOOL, M(tls_verify), "true", 0, 0, NULL, "verify the server certificate and host name", 0, NULL, 0, 0 },
	{ "report.delivery.mail.helo", CFG_STRING, M(helo), NULL, 0, 0, NULL, "name sent in EHLO (default: libcurl's)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.username", CFG_STRING, M(username), NULL, 0, 0, NULL, "SMTP AUTH user (empty: no AUTH)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.password_env", CFG_STRING, M(password_env), "CDRFLOW_SMTP_PASSWORD", 0, 0, NULL, "environment variable holding the SMTP password", 0, NULL, 0, 0 },
	{ "report.delivery.mail.password_file", CFG_STRING, M(password_file), NULL, 0, 0, NULL, "file whose first line is the SMTP password (wins over password_env)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.from", CFG_STRING, M(from), NULL, 0, 0, NULL, "From: address (\"reports@example.com\" or \"Name <reports@example.com>\")", 0, NULL, 0, 0 },
	{ "report.delivery.mail.to", CFG_STRING, M(to), NULL, 0, 0, NULL, "recipients, comma-separated", 0, NULL, 0, 0 },
	{ "report.delivery.mail.subject", CFG_STRING, M(subject), "cdrflow report", 0, 0, NULL, "Subject: (UTF-8)", 0, NULL, 0, 0 },
	{ "report.delivery.mail.timeout", CFG_DURATION, M(timeout_ms), "60s", 100, 3600000, NULL, "whole SMTP session", 0, NULL, 0, 0 },
	{ "report.delivery.mail.connect_timeout", CFG_DURATION, M(connect_timeout_ms), "10s", 100, 600000, NULL, "TCP connect", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.url", CFG_STRING, W(url), NULL, 0, 0, NULL, "http:// or https:// URL events are POSTed to (empty: no webhook)", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.secret_env", CFG_STRING, W(secret_env), "CDRFLOW_WEBHOOK_SECRET", 0, 0, NULL, "environment variable holding the HMAC secret", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.secret_file", CFG_STRING, W(secret_file), NULL, 0, 0, NULL, "file whose first line is the HMAC secret (wins over secret_env)", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.tls_ca_file", CFG_STRING, W(tls_ca_file), NULL, 0, 0, NULL, "CA bundle for https (default: system store)", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.tls_verify", CFG_BOOL, W(tls_verify), "true", 0, 0, NULL, "verify the server certificate and host name", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.max_attempts", CFG_INT, W(max_attempts), "5", 1, 100, NULL, "requests per message and run before it is queued", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.backoff_min", CFG_DURATION, W(backoff_min_ms), "1s", 1, 3600000, NULL, "delay before the second attempt (doubles each time, jittered)", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.backoff_max", CFG_DURATION, W(backoff_max_ms), "30s", 1, 3600000, NULL, "cap of any delay (Retry-After included)", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.timeout", CFG_DURATION, W(timeout_ms), "10s", 100, 600000, NULL, "whole request", 0, NULL, 0, 0 },
	{ "report.delivery.webhook.connect_timeout", CFG_DURATION, W(connect_timeout_ms), "5s", 100, 600000, NULL, "TCP connect", 0, NULL, 0, 0 },
	{ "database.conninfo", CFG_STRING, D(conninfo), NULL, 0, 0, NULL, "libpq connection string for the alert table (empty: the PG* environment)", 0, NULL, 0, 0 },
	/* sections read by the other programs */
	{ "spool", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "log", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "collector", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "etl", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "cdr", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "fraud", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "alerts", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "sources", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef D
#undef M
#undef W

char *delivery_spool_dir(const struct delivery_cfg *c, const char *channel)
{
	return xasprintf("%s/%s", c->spool, channel);
}
