/*
 * source.h - read a recorded AMI byte capture (plain, or .xz by content)
 * and feed it through the same parser and spool as the live path.
 */
#ifndef CDRFLOW_SOURCE_H
#define CDRFLOW_SOURCE_H

#include <stdint.h>

#include "spool.h"

struct replay_result {
	uint64_t events, bytes_in, garbage, oversized, responses;
	uint64_t skipped; /* leading events not stored because a previous run stored them */
};

/* Returns an exit code (EXIT_OK, EXIT_NOINPUT, EXIT_DATAERR, EXIT_IOERR)
 * with a one-line reason in err. */
/* The first `skip` events of the capture are parsed and counted in
 * res->skipped, not stored (a resumed replay). */
int replay_capture(const char *path, struct spool *spool, uint64_t max_event_size, uint64_t skip, int progress,
		   struct replay_result *res, char *err, size_t errlen);

#endif
