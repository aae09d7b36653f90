/*
 * handoff.c - a run's output handed to delivery (handoff.h).
 */
#include "handoff.h"

#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

unsigned handoff_format(unsigned f)
{
	return f == TPL_FMT_PDF    ? DELIVER_FMT_PDF
	       : f == TPL_FMT_CSV  ? DELIVER_FMT_CSV
	       : f == TPL_FMT_XLSX ? DELIVER_FMT_XLSX
	       : f == TPL_FMT_HTML ? DELIVER_FMT_HTML
				   : 0;
}

int handoff_spec(const struct tpl_delivery *d, struct deliver_spec *out, char *err, size_t errlen)
{
	unsigned want = 0;
	for (size_t i = 0; i < d->nformats; i++) {
		unsigned fm = 0;
		if (tpl_parse_formats(d->formats[i], &fm, err, errlen) < 0)
			return -1;
		for (unsigned bit = 1; bit <= TPL_FMT_ALL; bit <<= 1)
			if (fm & bit)
				want |= handoff_format(bit);
	}
	*out = (struct deliver_spec){ .recipients = d->recipients,
				      .nrecipients = d->nrecipients,
				      .mail = d->mail,
				      .webhook = d->webhook,
				      .subject = d->subject,
				      .formats = want };
	return 0;
}

int handoff_deliver(struct report_delivery *rd, struct report_run_info *info, const struct run_result *res,
		    char *err, size_t errlen)
{
	struct deliver_file *f = xcalloc(res->nfiles ? res->nfiles : 1, sizeof *f);
	struct deliver_kpi *k = xcalloc(res->nkpis ? res->nkpis : 1, sizeof *k);
	for (size_t i = 0; i < res->nfiles; i++)
		f[i] = (struct deliver_file){ .path = res->files[i].path,
					      .format = handoff_format(res->files[i].format),
					      .section = res->files[i].section };
	for (size_t i = 0; i < res->nkpis; i++)
		k[i] = (struct deliver_kpi){ .section = res->kpis[i].section,
					     .label = res->kpis[i].label,
					     .value = res->kpis[i].value };
	info->kpis = k;
	info->nkpis = res->nkpis;
	int rc = report_deliver(rd, info, f, res->nfiles, err, errlen);
	info->kpis = NULL;
	info->nkpis = 0;
	free(f);
	free(k);
	return rc;
}
