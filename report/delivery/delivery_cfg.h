/*
 * delivery_cfg.h - the report.delivery.* settings (docs/delivery.md).
 *
 * delivery_cfg_keys holds full key paths with offsets into struct
 * delivery_cfg and ignores the other programs' sections; a program with
 * more settings under report.* (cdrflow-report) copies these entries into
 * its own table, offsets shifted by where it embeds struct delivery_cfg.
 */
#ifndef CDRFLOW_REPORT_DELIVERY_CFG_H
#define CDRFLOW_REPORT_DELIVERY_CFG_H

#include <stddef.h>

#include "cfg.h"
#include "mail.h"
#include "webhook.h"

struct delivery_cfg {
	char *spool;       /* root: <spool>/mail and <spool>/webhook */
	char *conninfo;    /* database.conninfo (alerts) */
	struct mail_cfg mail;
	struct webhook_cfg webhook;
};

extern const char *const mail_tls_names[];

/* the settings, ending with { NULL }; other top-level sections are ignored */
extern const struct cfg_key delivery_cfg_keys[];

/* <spool>/<channel>, malloc()ed */
char *delivery_spool_dir(const struct delivery_cfg *c, const char *channel);

#endif
