/*
 * handoff.h - where cdrflow-report joins rendering (libreport.a) and
 * delivery (libdelivery.a, report/delivery/): the template's delivery
 * section becomes a struct deliver_spec, a run's files and KPI tiles the
 * delivery's own types.  Neither library includes the other's headers.
 */
#ifndef CDRFLOW_REPORT_HANDOFF_H
#define CDRFLOW_REPORT_HANDOFF_H

#include <stddef.h>

#include "deliver.h"
#include "run.h"
#include "tpl.h"

/* The template's delivery section as a spec (strings borrowed from d).
 * recipients (NULL: the template's) replaces its list: --each's
 * per-tenant recipients.  0, or -1 with err (an unknown format). */
int handoff_spec(const struct tpl_delivery *d, struct deliver_spec *out, char *err, size_t errlen);

/* TPL_FMT_* bit -> DELIVER_FMT_* bit. */
unsigned handoff_format(unsigned tpl_fmt);

/* Deliver a finished run's files with rd (report_deliver()); info's kpis
 * are filled from res.  Returns report_deliver()'s exit code. */
int handoff_deliver(struct report_delivery *rd, struct report_run_info *info, const struct run_result *res,
		    char *err, size_t errlen);

#endif
