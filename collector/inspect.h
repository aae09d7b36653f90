/*
 * inspect.h - read a spool back: --verify, --list, --dump.
 */
#ifndef CDRFLOW_INSPECT_H
#define CDRFLOW_INSPECT_H

enum inspect_mode { INSPECT_VERIFY, INSPECT_LIST, INSPECT_DUMP };

/* node NULL = every node.  Returns an exit code. */
int inspect_spool(const char *spool, const char *node, enum inspect_mode mode);

#endif
