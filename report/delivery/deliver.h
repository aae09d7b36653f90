/*
 * deliver.h - how `cdrflow-report run --deliver` hands the files it wrote to
 * delivery (e-mail, webhook), and the `retry` and `alerts` commands.
 *
 * Delivery is its own library (libdelivery.a, report/delivery/): it knows
 * nothing of templates, queries or writers, and the renderer (libreport.a)
 * knows nothing of it.  cdrflow-report (report/handoff.c) joins them: it
 * turns the template's delivery section into a struct deliver_spec and the
 * run's files and KPI tiles into struct deliver_file / deliver_kpi.
 *
 * The program prepares a delivery before the report is built
 * (report_deliver_prepare: recipients, server and secrets are checked, so a
 * bad configuration fails before any query runs), then calls
 * report_deliver() once, after every output file has been renamed into
 * place.  What goes where is the spec; how (server, URL, secrets, spool)
 * is the configuration's report.delivery.* (struct delivery_cfg).
 *
 * Mail: one message, text + HTML summary (title, period, KPI tiles, the
 * files with their sizes), the selected files attached (mail.h).  Webhook:
 * one "report.ready" JSON event describing the files (name, format, size,
 * sha256; never their contents).  Both carry the idempotency key
 * report_deliver_key() derives from the template, the period, the
 * delivered formats and the parameters.  What a peer does not accept waits
 * in the outbox (outbox.h) for `cdrflow-report retry`; the report files
 * themselves stay where the run wrote them.
 */
#ifndef CDRFLOW_REPORT_DELIVER_H
#define CDRFLOW_REPORT_DELIVER_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

#include "delivery_cfg.h"
#include "webhook.h"

/* File formats a delivery knows (the key lists them in this order). */
#define DELIVER_FMT_PDF 1u
#define DELIVER_FMT_CSV 2u
#define DELIVER_FMT_XLSX 4u
#define DELIVER_FMT_HTML 8u
#define DELIVER_FMT_ALL (DELIVER_FMT_PDF | DELIVER_FMT_CSV | DELIVER_FMT_XLSX | DELIVER_FMT_HTML)

/* One written file. */
struct deliver_file {
	const char *path;    /* final path, as printed on stdout */
	unsigned format;     /* one DELIVER_FMT_* */
	const char *section; /* CSV: the section id; NULL otherwise */
};

/* One KPI tile as the report shows it. */
struct deliver_kpi {
	const char *section; /* the KPI section's title */
	const char *label;
	const char *value;   /* display text ("" for NULL) */
};

/* What goes to whom (a template's delivery section).  Borrowed strings. */
struct deliver_spec {
	char *const *recipients; /* "a@x" or "Name <a@x>"; none: report.delivery.mail.to */
	size_t nrecipients;
	int mail;                /* send mail */
	int webhook;             /* post a "report.ready" event */
	const char *subject;     /* NULL = "<title> <period>" */
	unsigned formats;        /* DELIVER_FMT_* to deliver; 0 = every file written */
};

/* What a delivery knows about the run besides the files. */
struct report_run_info {
	const char *template_name;
	const char *title;
	const char *period;    /* "2026-11-01 .. 2026-11-30 (UTC)" */
	const char *from, *to; /* the period as timestamptz text, to exclusive */
	const char *tz;
	char *const *param_names, *const *param_values; /* the --param values given */
	size_t nparams;
	const struct deliver_kpi *kpis;
	size_t nkpis;
};

/* A prepared delivery.  Owns its strings and secrets. */
struct report_delivery {
	const struct delivery_cfg *cfg;
	struct deliver_spec spec; /* copied; its strings borrowed */
	int mail, webhook;   /* channels in use */
	char *to;            /* To: header ("a@x, B <b@y>") */
	char **rcpt;         /* envelope recipients */
	size_t nrcpt;
	char *from_addr;     /* envelope sender */
	char *password;      /* SMTP password ("" without AUTH) */
	struct webhook w;
	int w_open;
};

/* 1 if this build can deliver (checked before a run starts). */
int report_deliver_available(void);

/* Check the channels the template asks for against the configuration and
 * load the secrets.  recipients: --recipients (a comma-separated list) or
 * NULL: the template's, else report.delivery.mail.to.  Returns EXIT_OK, or
 * EXIT_CONFIG (a channel is not configured, a secret is missing),
 * EXIT_USAGE (a bad --recipients) with a message in err.  libcurl must be
 * initialised (curl_global_init).  Release with report_deliver_release()
 * whatever it returned. */
int report_deliver_prepare(struct report_delivery *rd, const struct delivery_cfg *cfg, const struct deliver_spec *d,
			   const char *recipients, char *err, size_t errlen);
void report_deliver_release(struct report_delivery *rd);

/* The idempotency key of a run's delivery: "report-<template>-" and the
 * first 32 hex digits of SHA-256 over the template name, from, to, the
 * formats delivered ("pdf,csv,xlsx" order) and the --param values sorted
 * by name; rcpt (NULL for the webhook) adds the mail's recipients.  At most
 * OUTBOX_KEY_MAX bytes. */
void report_deliver_key(const struct report_run_info *info, unsigned formats, const char *rcpt, char *out,
			size_t outlen);

/* Deliver files[0..n) (those of the delivery's formats) on every channel
 * of rd.  When an HTML report is among them, the mail's HTML body is that
 * report (self-contained, so a mail client shows it as is) and the text
 * body the summary; otherwise both are the summary.  Returns the merged exit code (delivery.h): 0 delivered, 69
 * queued, 77 queued after an auth refusal, 65 rejected (in dead/) or bad
 * input, 66 a file vanished, 74 the spool failed; err says why. */
int report_deliver(struct report_delivery *rd, const struct report_run_info *info,
		   const struct deliver_file *files, size_t n, char *err, size_t errlen);

/* `cdrflow-report retry`: retry the mail and the webhook spool; one summary
 * line per channel on out.  Returns the merged exit code. */
int report_retry(const struct delivery_cfg *cfg, FILE *out);

/* `cdrflow-report alerts`: alerts_deliver() with the configuration's webhook
 * and spool; a summary line on out. */
int report_alerts(PGconn *c, const struct delivery_cfg *cfg, size_t limit, FILE *out);

#endif
