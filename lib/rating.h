/*
 * rating.h - cost of a leg from a rate entry; buy/sell/margin rating of
 * legs against carrier (buy) and tenant (sell) decks; LCR what-if.
 *
 * The formula and its rounding are specified in docs/rating.md:
 *
 *   billsec == 0 or billsec <= grace  -> cost 0 (no connect fee either)
 *   billed = a                              if billsec <= a
 *          = a + ceil((billsec - a) / b) * b  otherwise
 *   cost   = connect_fee + ceil(rate_per_min * billed / 60)
 *
 * all in integer micro-units, the division rounded up to the next whole
 * micro-unit.  With the deck limits (rate and fee <= 100000 units) no input
 * can overflow int64.
 *
 * Nothing here allocates per leg; only the book and the LCR result own
 * memory, released by their _release functions.
 */
#ifndef CDRFLOW_RATING_H
#define CDRFLOW_RATING_H

#include <stddef.h>
#include <stdint.h>

#include "ratedeck.h"
#include "ratetrie.h"

/* Seconds charged for billsec seconds under e (0 when free by grace). */
uint64_t rate_billed_seconds(const struct rate_entry *e, uint32_t billsec);
/* The cost of billsec seconds under e, in micro-units (>= 0). */
int64_t rate_cost(const struct rate_entry *e, uint32_t billsec);

/* What the caller knows about one leg. */
struct rating_leg {
	const char *dst;  /* dialled number, normalised to digits (not NUL-terminated) */
	size_t dst_len;
	int64_t start;    /* call start, unix seconds UTC (floor of the microseconds) */
	uint32_t billsec; /* answered seconds; 0 for unanswered legs */
};

enum rating_status {
	RATING_RATED = 0,        /* buy, sell and margin are all valid */
	RATING_NO_BUY_RATE = 1,  /* the carrier deck has no rate: buy and margin unknown */
	RATING_NO_SELL_RATE = 2, /* buy known, the tenant deck has no rate: sell and margin unknown */
	RATING_NOT_BILLABLE = 3, /* billsec == 0: nothing to charge, all costs 0 */
};

/* "rated", "no_buy_rate", "no_sell_rate", "not_billable" (stable: stored
 * and reported as text). */
const char *rating_status_name(enum rating_status s);

struct rating_result {
	enum rating_status status;
	const struct rate_entry *buy_entry;  /* NULL when none matched (or not billable) */
	const struct rate_entry *sell_entry; /* NULL when none matched (or not billable) */
	int64_t buy;    /* micro-units; valid when buy_entry != NULL */
	int64_t sell;   /* micro-units; valid when sell_entry != NULL */
	int64_t margin; /* sell - buy; valid only when status == RATING_RATED */
};

/*
 * Rate one leg against a buy trie and a sell trie (either may be NULL: no
 * deck means no rate).  When both are missing the status is
 * RATING_NO_BUY_RATE; check sell_entry for the sell side.  Returns status.
 */
enum rating_status rating_rate_leg(const struct rate_trie *buy, const struct rate_trie *sell,
				   const struct rating_leg *leg, struct rating_result *out);

/* ---- a book: buy decks by carrier, sell decks by tenant ---- */

struct rating_book_deck {
	struct rate_deck deck; /* owned */
	struct rate_trie trie; /* owned, borrows deck's entries */
};

/* Each deck is allocated on its own, so the trie pointers handed out stay
 * valid while more decks are added, until rating_book_release(). */
struct rating_book {
	struct rating_book_deck **buy;  /* owned; deck.name = carrier */
	size_t n_buy;
	struct rating_book_deck **sell; /* owned; deck.name = tenant */
	size_t n_sell;
};

void rating_book_init(struct rating_book *b);
/* Free every deck and trie in the book. */
void rating_book_release(struct rating_book *b);
/*
 * Take over a finished deck as the buy deck of the carrier (deck->name) or
 * the sell deck of the tenant (deck->name) and build its trie.  On success
 * *deck is consumed (reset to all zeros; do not release it); on failure it
 * is left with the caller.  One deck per name: a second one is an error.
 */
int rating_book_add_buy(struct rating_book *b, struct rate_deck *deck, char *err, size_t errlen);
int rating_book_add_sell(struct rating_book *b, struct rate_deck *deck, char *err, size_t errlen);
/* The trie of a carrier / tenant, or NULL if the book has none; valid
 * until the book is released. */
const struct rate_trie *rating_book_buy(const struct rating_book *b, const char *carrier);
const struct rate_trie *rating_book_sell(const struct rating_book *b, const char *tenant);

/* ---- LCR what-if ---- */

#define LCR_AT_CALL_START INT64_MIN /* rate each leg at its own start time */

struct lcr_deck_total {
	int64_t cost;      /* micro-units, over the legs this deck could rate */
	uint64_t rated;    /* legs with a rate in this deck */
	uint64_t unrated;  /* billable legs this deck has no rate for (excluded from cost) */
	uint64_t cheapest; /* legs for which this deck was the cheapest */
};

struct lcr_result {
	size_t n_decks, n_legs;
	struct lcr_deck_total *deck; /* owned, n_decks */
	int32_t *cheapest;           /* owned, n_legs: deck index, -1 = none rates it or not billable */
	int64_t *cheapest_cost;      /* owned, n_legs: its cost (0 when cheapest == -1) */
	uint64_t not_billable;       /* legs with billsec == 0 (skipped) */
};

/*
 * What the legs would have cost on each of the n_decks carrier decks.
 * Each leg is rated at `at` (LCR_AT_CALL_START = its own start; another
 * value = "at today's prices").  Ties go to the lower deck index.
 * Returns 0, or -1 with a reason in err if a total would overflow int64.
 * out is owned by the caller afterwards: lcr_result_release() it (also
 * after a failure).
 */
int lcr_whatif(const struct rate_trie *const *decks, size_t n_decks, const struct rating_leg *legs,
	       size_t n_legs, int64_t at, struct lcr_result *out, char *err, size_t errlen);
void lcr_result_release(struct lcr_result *r);

#endif
