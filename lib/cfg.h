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
 * The same tables describe the other YAML files (fraud rules, report
 * templates): cfg_doc_load() parses a file once into a node tree, and
 * cfg_bind() binds one mapping of it to a struct through a key table --
 * unknown and duplicate keys, wrong shapes and bad values are rejected with
 * "file:line:col: ..." in the document's message style.  What a table
 * cannot say (a rule whose keys depend on its kind, a cross-field check)
 * is a CFG_CUSTOM key whose hook gets the value node and binds it with the
 * same helpers.
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
	CFG_STRLIST,  /* a sequence of scalars: char ** at offset (NULL-terminated), size_t count at
		       * count_offset (or CFG_NO_COUNT) */
	CFG_NUMBER,   /* double, a finite decimal above 0 */
	CFG_CUSTOM,   /* the key's hook binds the value */
};

#define CFG_NO_COUNT ((size_t)-1)

enum cfg_flags {
	CFG_REQUIRED = 1 << 0,
	CFG_SECRET = 1 << 1, /* never printed */
	CFG_ONE_OR_LIST = 1 << 2, /* CFG_STRLIST: a single scalar is a list of one */
	CFG_NONEMPTY = 1 << 3,    /* CFG_STRLIST: every item non-empty */
	CFG_ALWAYS = 1 << 4,      /* CFG_CUSTOM: the hook is called when the key is absent too (value NULL) */
};

struct cfg_doc;
struct yaml_node_s; /* libyaml's yaml_node_t */
struct cfg_key;

/* A CFG_CUSTOM key's behaviour.  bind() gets the object being bound, the
 * key, the value node (never a YAML null)
 * and the value's display path ("fraud.rules"); with CFG_ALWAYS it gets the
 * raw value (a YAML null too; NULL when the key is absent), so a hook can
 * refuse an explicit null; it returns 0 or -1 after
 * cfg_fail().  init() (may be NULL) sets the field's default, release()
 * (may be NULL) frees it.  arg is the hook's own data. */
struct cfg_hook {
	int (*bind)(struct cfg_doc *d, const struct cfg_key *k, void *obj, struct yaml_node_s *value, const char *where);
	void (*init)(const struct cfg_key *k, void *obj);
	void (*release)(const struct cfg_key *k, void *obj);
	const void *arg;
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
	/* CFG_LIST: the items' key table (const struct cfg_key *);
	 * CFG_CUSTOM: the hook (const struct cfg_hook *) */
	const void *more;
	size_t item_size;    /* CFG_LIST */
	size_t count_offset; /* CFG_LIST, CFG_STRLIST */
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

/* ------------------------------------------------------------ documents */

/* How messages name things.  CFG_MSG_PATH (configuration, fraud rules):
 * 'unknown key "fraud.rules[0].colour"', 'fraud.max_call_duration: "x" must
 * be ...'.  CFG_MSG_IN (report templates): 'unknown key "colour" in
 * sections[0] (known: ...)', 'sections[0].kind must be one of ...'. */
enum cfg_msg_style { CFG_MSG_PATH, CFG_MSG_IN };

/* Parse a whole file (path) or string (yaml, len; path NULL) into a node
 * tree; name is the file's name in messages.  A syntax error, a second
 * document or an unreadable file: NULL with the message in err (*missing
 * set when the file does not exist; missing may be NULL; the message says
 * "cannot open <what> ..." with what = "template" for CFG_MSG_IN, else
 * "config file").  The returned
 * document keeps err/errlen for cfg_fail(). */
struct cfg_doc *cfg_doc_load(const char *path, const char *yaml, size_t len, const char *name,
			     enum cfg_msg_style style, int *missing, char *err, size_t errlen);
/* After binding: a second, non-empty document in the stream is an error
 * (a trailing "---" is not).  0 or -1 with the message. */
int cfg_doc_end(struct cfg_doc *d);
void cfg_doc_free(struct cfg_doc *d);
/* The root node; NULL for an empty document. */
struct yaml_node_s *cfg_doc_root(struct cfg_doc *d);
const char *cfg_doc_name(const struct cfg_doc *d);
/* "name:line:col: message" (node NULL: "name: message") into the
 * document's err; returns -1. */
int cfg_fail(struct cfg_doc *d, const struct yaml_node_s *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same at a position given by hand (1-based; e.g. inside a scalar). */
int cfg_fail_at(struct cfg_doc *d, size_t line, size_t col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Node access.  cfg_scalar(): the text of a scalar, else NULL;
 * cfg_is_null(): a plain ~, null or empty scalar; cfg_get(): the value of
 * key in a mapping (NULL when absent or not a mapping; a YAML null is
 * returned as it is); sequences: cfg_seq_len() and cfg_seq_item(). */
const char *cfg_scalar(const struct yaml_node_s *n);
int cfg_is_null(const struct yaml_node_s *n);
int cfg_is_map(const struct yaml_node_s *n);
int cfg_is_seq(const struct yaml_node_s *n);
struct yaml_node_s *cfg_get(struct cfg_doc *d, struct yaml_node_s *map, const char *key);
size_t cfg_seq_len(const struct yaml_node_s *n);
/* Mappings: the number of pairs, the i-th key and value nodes. */
size_t cfg_map_len(const struct yaml_node_s *n);
struct yaml_node_s *cfg_map_key(struct cfg_doc *d, struct yaml_node_s *map, size_t i);
struct yaml_node_s *cfg_map_value(struct cfg_doc *d, struct yaml_node_s *map, size_t i);
struct yaml_node_s *cfg_seq_item(struct cfg_doc *d, struct yaml_node_s *seq, size_t i);
/* The line (1-based) a node starts on. */
size_t cfg_line(const struct yaml_node_s *n);

/* Bind mapping map to obj through keys (defaults are not applied: call
 * cfg_defaults() first).  where is the mapping's display path ("" for a
 * configuration's root).  Checks the keys (plain, known, once), then binds
 * each present value in table order (a YAML null leaves the default),
 * calls CFG_CUSTOM hooks (CFG_ALWAYS ones also when absent) and rejects an
 * absent or empty CFG_REQUIRED value (not at a configuration's root, where
 * the environment may still give it: cfg_load checks it last).  0 or -1. */
int cfg_bind(struct cfg_doc *d, const struct cfg_key *keys, void *obj, struct yaml_node_s *map, const char *where);
/* The key check alone, against the union of the NULL-terminated tables. */
int cfg_check_keys(struct cfg_doc *d, struct yaml_node_s *map, const char *where, const struct cfg_key *const *tables);
/* The value pass alone (after cfg_check_keys()). */
int cfg_bind_values(struct cfg_doc *d, const struct cfg_key *keys, void *obj, struct yaml_node_s *map,
		    const char *where);
/* Bind one value node (not NULL, not a YAML null) of key k: what cfg_bind()
 * does per key, for hooks that add checks around it. */
int cfg_bind_value(struct cfg_doc *d, const struct cfg_key *k, void *obj, struct yaml_node_s *v, const char *where);

#endif
