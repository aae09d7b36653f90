/*
 * ratedeck.h - rate decks: a named set of per-prefix rate entries, loaded
 * from CSV (libcsv).  The CSV format, every validation rule and the units are
 * specified in docs/rating.md; keep the two in step.
 *
 * Units: money is integer micro-units (1e-6 of the deck's currency), parsed
 * exactly from decimal text, never through floating point.  Times are unix
 * seconds, UTC.  An entry applies to calls that start in
 * [eff_from, eff_to); eff_to == RATE_TIME_OPEN means "until further notice".
 *
 * Ownership: the deck owns its entries, its name and its description
 * strings; rate_deck_release() frees them all.  A struct rate_trie built
 * from a deck borrows the entry array: keep the deck alive and unmodified
 * for as long as the trie is used.
 *
 * Errors: every function that can fail returns 0 or -1 and writes one line
 * into err, "source:line: message" for CSV input (see docs/rating.md for the
 * messages).
 */
#ifndef CDRFLOW_RATEDECK_H
#define CDRFLOW_RATEDECK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RATE_PREFIX_MAX 20               /* digits; E.164 numbers have at most 15 */
#define RATE_TIME_OPEN INT64_MAX         /* eff_to of an open-ended entry */
#define RATE_MONEY_MAX INT64_C(100000000000) /* 100000.000000 units: rate/min and connect fee */
#define RATE_INCREMENT_MAX 3600          /* seconds, for a, b and grace */
#define RATE_DECK_MAX_ENTRIES 10000000u
#define RATE_DECK_FILE_MAX (512u << 20)  /* bytes; rate_deck_load refuses bigger files */

struct rate_entry {
	int64_t rate_per_min; /* micro-units per minute, 0..RATE_MONEY_MAX */
	int64_t connect_fee;  /* micro-units, charged once per billed leg, 0..RATE_MONEY_MAX */
	int64_t eff_from;     /* unix seconds UTC, inclusive */
	int64_t eff_to;       /* unix seconds UTC, exclusive; RATE_TIME_OPEN = open */
	uint32_t first_incr;  /* a: the first block in seconds, 1..3600 */
	uint32_t incr;        /* b: each later step in seconds, 1..a */
	uint32_t grace;       /* billsec <= grace costs nothing, 0..3600 */
	uint32_t line;        /* CSV line the entry came from (0 = added by code) */
	uint32_t desc_off;    /* description: offset into the deck's string pool */
	uint8_t prefix_len;
	char prefix[RATE_PREFIX_MAX + 1]; /* digits only, NUL-terminated */
};

struct rate_deck {
	char *name;              /* carrier or tenant name, owned */
	struct rate_entry *entries; /* owned; sorted by (prefix, eff_from) once finished */
	size_t n, cap;
	struct buf strings;      /* descriptions, NUL-separated; offset 0 is "" */
	int finished;            /* sorted and checked for overlaps (rate_deck_finish) */
};

/* An empty deck called name (copied). */
void rate_deck_init(struct rate_deck *d, const char *name);
/* Free everything the deck owns; the deck may be initialised again. */
void rate_deck_release(struct rate_deck *d);

/*
 * Append one entry by hand (tests, generators).  e->prefix must already be
 * digits only; the other fields are checked against the same rules as CSV
 * rows.  desc may be NULL.  Marks the deck unfinished.  Returns 0 or -1.
 */
int rate_deck_add(struct rate_deck *d, const struct rate_entry *e, const char *desc, char *err,
		  size_t errlen);

/*
 * Sort the entries by (prefix, eff_from) and reject a prefix whose effective
 * ranges overlap ("source:line: prefix \"44\" overlaps the entry on line N").
 * source names the input in messages (NULL = the deck's name).  Required
 * before rate_trie_build(); parsing calls it itself.
 */
int rate_deck_finish(struct rate_deck *d, const char *source, char *err, size_t errlen);

/*
 * Parse a whole CSV deck held in memory and append its rows to d, then
 * finish it.  source names the input in messages ("carrierA.csv").  Stops
 * at the first error; the deck may then hold some of the rows and must not
 * be used, only released.
 */
int rate_deck_parse(struct rate_deck *d, const char *source, const char *data, size_t len, char *err,
		    size_t errlen);
/* Read path (at most RATE_DECK_FILE_MAX bytes) and rate_deck_parse() it. */
int rate_deck_load(struct rate_deck *d, const char *path, char *err, size_t errlen);

/* The decimals the deck's money is written with: the most any entry's
 * rate_per_min or connect_fee needs (0..6; "0.0123" needs 4).  Reports show
 * amounts at this precision (docs/rating.md, Units). */
int rate_deck_decimals(const struct rate_deck *d);

/* The description of an entry of d ("" when none). */
const char *rate_entry_description(const struct rate_deck *d, const struct rate_entry *e);

/* ---- the field parsers, exposed for tests and other importers ---- */

/* "0.0123" -> 12300 micro-units.  Digits with an optional '.' and up to 6
 * decimals (more only if they are zeros); no sign, no exponent; at most max.
 * Returns 0 or -1 with a reason ("has more than 6 decimals"). */
int rate_parse_money(const char *s, int64_t max, int64_t *out, char *err, size_t errlen);
/* "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DD[T ]HH:MM[:SS]" followed by
 * nothing (UTC), "Z", or "+HH:MM"/"-HH:MM"; unix seconds.  0 or -1. */
int rate_parse_time(const char *s, int64_t *out, char *err, size_t errlen);
/* "a/b" or a bare "n" (= n/n), 1 <= b <= a <= 3600.  0 or -1. */
int rate_parse_increment(const char *s, uint32_t *a, uint32_t *b, char *err, size_t errlen);
/* Copy s into out without '+' (leading only) and spaces; 1..RATE_PREFIX_MAX
 * digits must remain.  Returns the digit count or -1. */
int rate_parse_prefix(const char *s, char out[RATE_PREFIX_MAX + 1], char *err, size_t errlen);

#endif
