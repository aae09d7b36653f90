/*
 * bench-rating.c - rating throughput: longest-prefix lookups through the
 * digit trie of a generated 50k-prefix deck, against a naive linear scan of
 * the same deck on a small sample, plus whole legs (buy + sell + cost).
 *
 * Everything is generated from a fixed seed, so runs are comparable.  The
 * deck goes through the real CSV importer.  Exit status: 0, or 1 if the
 * trie and the naive scan ever disagree (the speed is reported, not
 * enforced: the machine is shared).
 *
 * usage: bench-rating [prefixes [lookups]]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ratedeck.h"
#include "rating.h"
#include "ratetrie.h"
#include "strparse.h"
#include "xalloc.h"

#define T2024 INT64_C(1704067200) /* 2024-01-01T00:00:00Z */
#define T0701 INT64_C(1719792000) /* 2024-07-01: the price change */
#define YEAR INT64_C(31622400)
#define NUM_STRIDE 16
#define NUM_POOL 1000000
#define NAIVE_SAMPLE 2000

static uint64_t rng = 0x2545F4914F6CDD1Du;
static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A set of prefixes (as (value, length) keys) with open addressing. */
struct pset {
	uint64_t *slot;
	size_t mask;
};

static int pset_add(struct pset *s, const char *p, size_t len)
{
	uint64_t key = len;
	for (size_t i = 0; i < len; i++)
		key = key * 10 + (uint64_t)(p[i] - '0');
	key = key << 5 | len; /* never 0 */
	for (size_t h = (key * 0x9E3779B97F4A7C15u) >> 20 & s->mask;; h = (h + 1) & s->mask) {
		if (s->slot[h] == key)
			return 0;
		if (!s->slot[h]) {
			s->slot[h] = key;
			return 1;
		}
	}
}

/*
 * Prefixes shaped like a real international deck: ~300 country codes of 1..3
 * digits, then area/mobile ranges extending them by 1..6 digits.  10% of
 * the prefixes change price on 2024-07-01 (two effective periods).
 */
static void gen_csv(struct buf *csv, char (*prefixes)[16], size_t n)
{
	char cc[300][4];
	struct pset set;
	set.mask = 1;
	while (set.mask < n * 4)
		set.mask <<= 1;
	set.slot = xcalloc(set.mask, sizeof *set.slot);
	set.mask--;
	for (int i = 0; i < 300;) {
		int len = 1 + (int)(rnd() % 3);
		for (int k = 0; k < len; k++)
			cc[i][k] = (char)('1' + rnd() % 9); /* no 0: international */
		cc[i][len] = '\0';
		if (pset_add(&set, cc[i], (size_t)len))
			i++;
	}
	buf_puts(csv, "prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to\n");
	for (size_t i = 0; i < n;) {
		char *p = prefixes[i];
		const char *c = cc[rnd() % 300];
		size_t len = strlen(c), ext = 1 + rnd() % 6;
		memcpy(p, c, len);
		for (size_t k = 0; k < ext; k++)
			p[len + k] = (char)('0' + rnd() % 10);
		len += ext;
		p[len] = '\0';
		if (!pset_add(&set, p, len))
			continue;
		i++;
		unsigned rate = (unsigned)(rnd() % 500000);
		static const char *const incr[] = {"60/60", "1/1", "30/6", "60/1"};
		if (rnd() % 10 == 0) {
			buf_printf(csv, "%s,dest %zu,0.%06u,0.01,%s,3,2024-01-01,2024-07-01\n", p, i, rate,
				   incr[rnd() % 4]);
			rate = rate * 9 / 10;
			buf_printf(csv, "%s,dest %zu,0.%06u,0.01,%s,3,2024-07-01T00:00:00Z,\n", p, i, rate,
				   incr[rnd() % 4]);
		} else {
			buf_printf(csv, "%s,\"dest %zu, mobile\",0.%06u,,%s,,2024-01-01,\n", p, i, rate,
				   incr[rnd() % 4]);
		}
	}
	free(set.slot);
}

static const struct rate_entry *naive(const struct rate_deck *d, const char *num, size_t len, int64_t at)
{
	const struct rate_entry *best = NULL;
	for (size_t i = 0; i < d->n; i++) {
		const struct rate_entry *e = &d->entries[i];
		if (e->prefix_len <= len && (!best || e->prefix_len > best->prefix_len) &&
		    memcmp(e->prefix, num, e->prefix_len) == 0 && e->eff_from <= at && at < e->eff_to)
			best = e;
	}
	return best;
}

int main(int argc, char **argv)
{
	char err[512];
	int64_t nprefix = 50000, nlookups = 20000000;
	if ((argc > 1 && parse_int_range(argv[1], 1000, 1000000, &nprefix, err, sizeof err)) ||
	    (argc > 2 && parse_int_range(argv[2], 1000000, INT64_C(1000000000), &nlookups, err, sizeof err))) {
		fprintf(stderr, "bench-rating: bad argument: %s\nusage: bench-rating [prefixes [lookups]]\n", err);
		return 64;
	}

	/* the deck, through the CSV importer */
	struct buf csv;
	char(*prefixes)[16] = xmalloc((size_t)nprefix * sizeof *prefixes);
	buf_init(&csv, 0);
	gen_csv(&csv, prefixes, (size_t)nprefix);
	struct rate_deck deck, sell;
	struct rate_trie trie, strie;
	rate_deck_init(&deck, "carrier");
	double t0 = now();
	if (rate_deck_parse(&deck, "generated.csv", csv.data, csv.len, err, sizeof err)) {
		fprintf(stderr, "bench-rating: %s\n", err);
		return 70;
	}
	double t1 = now();
	if (rate_trie_build(&trie, &deck, err, sizeof err)) {
		fprintf(stderr, "bench-rating: %s\n", err);
		return 70;
	}
	double t2 = now();
	printf("rating: deck of %" PRId64 " prefixes (%zu entries, %zu KiB CSV) parsed in %.3f s, trie of %zu nodes (%zu KiB) built in %.3f s\n",
	       nprefix, deck.n, csv.len >> 10, t1 - t0, trie.n_nodes,
	       trie.n_nodes * sizeof *trie.nodes >> 10, t2 - t1);

	/* a sell deck: the same destinations with a 30% markup */
	rate_deck_init(&sell, "tenant");
	for (size_t i = 0; i < deck.n; i++) {
		struct rate_entry e = deck.entries[i];
		e.rate_per_min = e.rate_per_min * 13 / 10;
		if (rate_deck_add(&sell, &e, NULL, err, sizeof err)) {
			fprintf(stderr, "bench-rating: %s\n", err);
			return 70;
		}
	}
	if (rate_deck_finish(&sell, NULL, err, sizeof err) || rate_trie_build(&strie, &sell, err, sizeof err)) {
		fprintf(stderr, "bench-rating: %s\n", err);
		return 70;
	}

	/* dialled numbers: 90% inside a deck prefix, 10% anywhere (some unrated) */
	char *nums = xmalloc((size_t)NUM_POOL * NUM_STRIDE);
	int64_t *starts = xmalloc(NUM_POOL * sizeof *starts);
	for (size_t i = 0; i < NUM_POOL; i++) {
		char *n = nums + i * NUM_STRIDE;
		size_t len = 0, total = 11 + rnd() % 2;
		if (rnd() % 10) {
			const char *p = prefixes[rnd() % (uint64_t)nprefix];
			len = strlen(p);
			memcpy(n, p, len);
		}
		for (; len < total; len++)
			n[len] = (char)('0' + rnd() % 10);
		n[NUM_STRIDE - 1] = (char)total;
		starts[i] = T2024 + (int64_t)(rnd() % (uint64_t)YEAR);
	}

	/* trie lookups */
	uint64_t found = 0, check = 0;
	int64_t done = 0;
	t0 = now();
	while (done < nlookups) {
		for (size_t i = 0; i < NUM_POOL && done < nlookups; i++, done++) {
			const char *n = nums + i * NUM_STRIDE;
			const struct rate_entry *e = rate_trie_lookup(&trie, n, (size_t)n[NUM_STRIDE - 1], starts[i]);
			if (e) {
				found++;
				check += e->line;
			}
		}
	}
	t1 = now();
	double trie_rate = (double)done / (t1 - t0);
	printf("rating: %" PRId64 " lookups in %.3f s = %.2f M lookups/s (target >= 5 M/s)%s; %.1f%% matched (checksum %" PRIu64 ")\n",
	       done, t1 - t0, trie_rate / 1e6, trie_rate >= 5e6 ? "" : " BELOW TARGET",
	       100.0 * (double)found / (double)done, check);

	/* naive scan on a sample, checked against the trie */
	int mismatch = 0;
	t0 = now();
	for (size_t i = 0; i < NAIVE_SAMPLE; i++) {
		const char *n = nums + i * NUM_STRIDE;
		size_t len = (size_t)n[NUM_STRIDE - 1];
		if (naive(&deck, n, len, starts[i]) != rate_trie_lookup(&trie, n, len, starts[i]))
			mismatch++;
	}
	t1 = now();
	double naive_rate = NAIVE_SAMPLE / (t1 - t0);
	printf("rating: naive linear scan: %d lookups in %.3f s = %.0f lookups/s; trie is %.0fx faster%s\n",
	       NAIVE_SAMPLE, t1 - t0, naive_rate, trie_rate / naive_rate,
	       mismatch ? "; MISMATCHES between trie and scan" : ", same answers");

	/* whole legs: buy and sell lookups, both costs, margin */
	int64_t legs = nlookups / 2, margin = 0;
	uint64_t rated = 0;
	done = 0;
	t0 = now();
	while (done < legs) {
		for (size_t i = 0; i < NUM_POOL && done < legs; i++, done++) {
			const char *n = nums + i * NUM_STRIDE;
			struct rating_leg leg = {n, (size_t)n[NUM_STRIDE - 1], starts[i], (uint32_t)(i % 600)};
			struct rating_result r;
			if (rating_rate_leg(&trie, &strie, &leg, &r) == RATING_RATED) {
				rated++;
				margin += r.margin;
			}
		}
	}
	t1 = now();
	printf("rating: %" PRId64 " legs (buy + sell + margin) in %.3f s = %.2f M legs/s; %" PRIu64 " rated, margin %" PRId64 ".%06" PRId64 "\n",
	       done, t1 - t0, (double)done / (t1 - t0) / 1e6, rated, margin / 1000000, margin % 1000000);

	rate_trie_release(&strie);
	rate_trie_release(&trie);
	rate_deck_release(&sell);
	rate_deck_release(&deck);
	buf_release(&csv);
	free(prefixes);
	free(nums);
	free(starts);
	return mismatch ? 1 : 0;
}
