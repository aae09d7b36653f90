/*
 * cfg.h - YAML configuration through one declarative key table.
 *
 * A program describes its settings once, as an array of struct cfg_key
 * ending with { NULL }: YAML path, type, default, range, where the value
 * lives (offsetof) and a help line.  cfg_load() applies the defaults, reads
 * the file with libyaml, rejects unknown keys and bad values with
 * "file:line:col: ..." and then applies environment overrides:
 * CDRFLOW_<PATH> with dots turned into underscores and upper-cased
 * (collector.fsync -> CDRFLOW_COLLECTOR_FSYNC).  The same table prints
 * --dump-config and the docs, so they cannot drift apart.
 *
 * Ownership: strings and lists stored into the object are owned by it and
 * released by cfg_free().
 */
#ifndef CDRFLOW_CFG_H
#define CDRFLOW_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cfg_type {
	CFG_STRING,   /* char * */
	CFG_BOOL,     /* int */
	CFG_INT,      /* int64_t, range min..max */
	CFG_SIZE,     /* uint64_t bytes, "64MiB" */
	CFG_DURATION, /* uint64_t milliseconds, "250ms", "5s" */
	CFG_ENUM,     /* int: index into choices */
	CFG_LIST,     /* a sequence of mappings: void *items at offset, size_t count at count_offset */
	CFG_IGNORE,   /* a section owned by another program: accepted, not checked here */
};

enum cfg_flags {
	CFG_REQUIRED = 1 << 0,
	CFG_SECRET = 1 << 1, /* never printed */
};

struct cfg_key {
	const char *path;
	enum cfg_type type;
	size_t offset;
	const char *def; /* default, written as in YAML; NULL = empty/zero */
	int64_t min, max;
	const char *const *choices; /* CFG_ENUM, NULL-terminated */
	const char *help;
	unsigned flags;
	/* CFG_LIST only */
	const struct cfg_key *item_keys;
	size_t item_size;
	size_t count_offset;
};

/* Apply defaults only (no file). */
int cfg_defaults(const struct cfg_key *keys, void *obj, char *err, size_t errlen);
/* Defaults, then the file (NULL = none), then environment overrides.
 * Returns 0, or -1 with a one-line message in err; *missing is set when the
 * file does not exist (so callers can pick the exit code). */
int cfg_load(const struct cfg_key *keys, void *obj, const char *path, int *missing, char *err, size_t errlen);
/* Load from a string (tests, fuzzing); name is used in messages. */
int cfg_load_string(const struct cfg_key *keys, void *obj, const char *name, const char *yaml, size_t len,
		    char *err, size_t errlen);
void cfg_free(const struct cfg_key *keys, void *obj);
/* Print the effective configuration as YAML, secrets masked. */
void cfg_dump(const struct cfg_key *keys, const void *obj, FILE *out);
/* Print one line per key: path, type, default, help (for docs and --help). */
void cfg_describe(const struct cfg_key *keys, FILE *out);

#endif
