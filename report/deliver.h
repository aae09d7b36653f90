/*
 * deliver.h - the hook through which `cdrflow-report run --deliver` hands
 * the files it wrote to delivery (e-mail, webhook).
 *
 * This file is the seam: the runner calls report_deliver() once, after every
 * output file has been renamed into place, with the template's delivery
 * settings and the list of files.  The implementation in deliver.c is a
 * stub that says delivery is not built in; report/mail.c and
 * report/webhook.c plug in here.
 */
#ifndef CDRFLOW_REPORT_DELIVER_H
#define CDRFLOW_REPORT_DELIVER_H

#include <stddef.h>

#include "tpl.h"

/* One written file. */
struct report_output {
	const char *path;    /* final path, as printed on stdout */
	unsigned format;     /* TPL_FMT_PDF, TPL_FMT_CSV or TPL_FMT_XLSX */
	const char *section; /* CSV: the section id; NULL for PDF/XLSX */
};

/* What a delivery knows about the run besides the files. */
struct report_run_info {
	const char *template_name;
	const char *title;
	const char *period;  /* "2026-11-01 .. 2026-11-30 (UTC)" */
	const char *from, *to; /* the period as timestamptz text, to exclusive */
};

/* 1 if this build can deliver (checked before a run starts, so that
 * --deliver fails early instead of after the report was built). */
int report_deliver_available(void);

/* Deliver files[0..n) as d says (d->formats selects which; NULL = all).
 * Returns EXIT_OK or an exit code of lib/exitcode.h with a one-line
 * message in err (EXIT_UNAVAILABLE: a peer is down, retry later). */
int report_deliver(const struct tpl_delivery *d, const struct report_run_info *info,
		   const struct report_output *files, size_t n, char *err, size_t errlen);

#endif
