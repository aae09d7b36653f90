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
};

/* Returns an exit code (EXIT_OK, EXIT_NOINPUT, EXIT_DATAERR, EXIT_IOERR)
 * with a one-line reason in err. */
int replay_capture(const char *path, struct spool *spool, uint64_t max_event_size, int progress,
		   struct replay_result *res, char *err, size_t errlen);

#endif
