/*
 * rating.c - cost formula, leg rating, the deck book and LCR what-if.
 */
#include "rating.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "xalloc.h"

uint64_t rate_billed_seconds(const struct rate_entry *e, uint32_t billsec)
{
	if (billsec == 0 || billsec <= e->grace)
		return 0;
	if (billsec <= e->first_incr)
		return e->first_incr;
	uint64_t rest = billsec - e->first_incr;
	return e->first_incr + (rest + e->incr - 1) / e->incr * e->incr;
}

int64_t rate_cost(const struct rate_entry *e, uint32_t billsec)
{
	uint64_t billed = rate_billed_seconds(e, billsec);
	if (billed == 0)
		return 0;
	/*
	 * ceil(rate * billed / 60) without a 128-bit product: split billed into
	 * whole minutes and leftover seconds.  rate * minutes is exact (no
	 * rounding) and, with rate <= 1e11 and billed < 2^32 + 3600, at most
	 * 7.2e18 < INT64_MAX; only the leftover part needs rounding up.
	 */
	uint64_t rate = (uint64_t)e->rate_per_min;
	uint64_t whole = rate * (billed / 60);
	uint64_t part = (rate * (billed % 60) + 59) / 60;
	return e->connect_fee + (int64_t)(whole + part);
}

const char *rating_status_name(enum rating_status s)
{
	switch (s) {
	case RATING_RATED:
		return "rated";
	case RATING_NO_BUY_RATE:
		return "no_buy_rate";
	case RATING_NO_SELL_RATE:
		return "no_sell_rate";
	case RATING_NOT_BILLABLE:
		return "not_billable";
	}
	return "unknown";
}

enum rating_status rating_rate_leg(const struct rate_trie *buy, const struct rate_trie *sell,
				   const struct rating_leg *leg, struct rating_result *out)
{
	memset(out, 0, sizeof *out);
	if (leg->billsec == 0)
		return out->status = RATING_NOT_BILLABLE;
	if (buy)
		out->buy_entry = rate_trie_lookup(buy, leg->dst, leg->dst_len, leg->start);
	if (sell)
		out->sell_entry = rate_trie_lookup(sell, leg->dst, leg->dst_len, leg->start);
	if (out->buy_entry)
		out->buy = rate_cost(out->buy_entry, leg->billsec);
	if (out->sell_entry)
		out->sell = rate_cost(out->sell_entry, leg->billsec);
	if (!out->buy_entry)
		return out->status = RATING_NO_BUY_RATE;
	if (!out->sell_entry)
		return out->status = RATING_NO_SELL_RATE;
	out->margin = out->sell - out->buy; /* both <= 7.2e18 and >= 0: no overflow */
	return out->status = RATING_RATED;
}

/* ------------------------------------------------------------ the book */

void rating_book_init(struct rating_book *b)
{
	memset(b, 0, sizeof *b);
}

static void release_decks(struct rating_book_deck **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rate_trie_release(&v[i]->trie);
		rate_deck_release(&v[i]->deck);
		free(v[i]);
	}
	free(v);
}

void rating_book_release(struct rating_book *b)
{
	release_decks(b->buy, b->n_buy);
	release_decks(b->sell, b->n_sell);
	memset(b, 0, sizeof *b);
}

static const struct rating_book_deck *find(struct rating_book_deck *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->deck.name, name) == 0)
			return v[i];
	return NULL;
}

static int add(struct rating_book_deck ***v, size_t *n, const char *what, struct rate_deck *deck, char *err,
	       size_t errlen)
{
	if (!deck->name || !*deck->name)
		return errmsg(err, errlen, "a %s deck needs a name", what);
	if (find(*v, *n, deck->name))
		return errmsg(err, errlen, "%s \"%s\" already has a deck", what, deck->name);
	struct rate_trie t;
	if (rate_trie_build(&t, deck, err, errlen))
		return -1;
	/* the trie points at deck->entries (heap), so moving the struct is fine */
	struct rating_book_deck *bd = xmalloc(sizeof *bd);
	bd->deck = *deck;
	bd->trie = t;
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = bd;
	memset(deck, 0, sizeof *deck);
	return 0;
}

int rating_book_add_buy(struct rating_book *b, struct rate_deck *deck, char *err, size_t errlen)
{
	return add(&b->buy, &b->n_buy, "carrier", deck, err, errlen);
}

int rating_book_add_sell(struct rating_book *b, struct rate_deck *deck, char *err, size_t errlen)
{
	return add(&b->sell, &b->n_sell, "tenant", deck, err, errlen);
}

const struct rate_trie *rating_book_buy(const struct rating_book *b, const char *carrier)
{
	const struct rating_book_deck *d = find(b->buy, b->n_buy, carrier);
	return d ? &d->trie : NULL;
}

const struct rate_trie *rating_book_sell(const struct rating_book *b, const char *tenant)
{
	const struct rating_book_deck *d = find(b->sell, b->n_sell, tenant);
	return d ? &d->trie : NULL;
}

/* ------------------------------------------------------------ LCR what-if */

int lcr_whatif(const struct rate_trie *const *decks, size_t n_decks, const struct rating_leg *legs,
	       size_t n_legs, int64_t at, struct lcr_result *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->n_decks = n_decks;
	out->n_legs = n_legs;
	out->deck = xcalloc(n_decks ? n_decks : 1, sizeof *out->deck);
	out->cheapest = xcalloc(n_legs ? n_legs : 1, sizeof *out->cheapest);
	out->cheapest_cost = xcalloc(n_legs ? n_legs : 1, sizeof *out->cheapest_cost);
	if (n_decks > INT32_MAX)
		return errmsg(err, errlen, "lcr: more than %d decks", INT32_MAX);

	for (size_t i = 0; i < n_legs; i++) {
		const struct rating_leg *leg = &legs[i];
		int64_t when = at == LCR_AT_CALL_START ? leg->start : at;
		int32_t best = -1;
		int64_t best_cost = 0;
		out->cheapest[i] = -1;
		if (leg->billsec == 0) {
			out->not_billable++;
			continue;
		}
		for (size_t k = 0; k < n_decks; k++) {
			struct lcr_deck_total *tot = &out->deck[k];
			const struct rate_entry *e = decks[k] ? rate_trie_lookup(decks[k], leg->dst, leg->dst_len, when) : NULL;
			if (!e) {
				tot->unrated++;
				continue;
			}
			int64_t c = rate_cost(e, leg->billsec);
			if (__builtin_add_overflow(tot->cost, c, &tot->cost))
				return errmsg(err, errlen, "lcr: the total of deck %zu overflows", k);
			tot->rated++;
			if (best < 0 || c < best_cost) {
				best = (int32_t)k;
				best_cost = c;
			}
		}
		out->cheapest[i] = best;
		out->cheapest_cost[i] = best_cost;
		if (best >= 0)
			out->deck[best].cheapest++;
	}
	return 0;
}

void lcr_result_release(struct lcr_result *r)
{
	free(r->deck);
	free(r->cheapest);
	free(r->cheapest_cost);
	memset(r, 0, sizeof *r);
}
