/* deliver.c - stub: delivery (mail, webhook) is wired in by its own module. */
#include "deliver.h"

#include <stdio.h>

#include "exitcode.h"

int report_deliver_available(void)
{
	return 0;
}

int report_deliver(const struct tpl_delivery *d, const struct report_run_info *info,
		   const struct report_output *files, size_t n, char *err, size_t errlen)
{
	(void)d;
	(void)files;
	snprintf(err, errlen, "%s: cannot deliver %zu file(s): delivery is not built into this cdrflow-report",
		 info->template_name, n);
	return EXIT_UNAVAILABLE;
}
