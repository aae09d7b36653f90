/*
 * lcr.c - the LCR what-if over the warehouse's rated legs.
 *
 * The legs that left by a carrier (cdr.carrier set, billsec > 0) in the
 * period are re-rated against every carrier deck of the configuration with
 * lcr_whatif() (lib/rating.c); each deck's total is printed next to what the
 * traffic actually cost.  Legs are streamed from one query in a single
 * result: fine for a month of a mid-size PBX; the per-leg arrays are 16
 * bytes a leg plus the numbers.
 */
#include "lcr.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "pgconn.h"
#include "xalloc.h"

/* micro-units as a decimal with 6 places */
static void money_str(char *buf, size_t size, int64_t micro)
{
	uint64_t a = micro < 0 ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
	snprintf(buf, size, "%s%" PRIu64 ".%06" PRIu64, micro < 0 ? "-" : "", a / 1000000u, a % 1000000u);
}

static void money(FILE *out, int64_t micro)
{
	char buf[32];
	money_str(buf, sizeof buf, micro);
	fputs(buf, out);
}

int lcr_report(PGconn *c, const struct legclass *lc, const char *from, const char *to, FILE *out, char *err,
	       size_t errlen)
{
	const struct rating_book *bk = &lc->book;
	if (!bk->n_buy) {
		snprintf(err, errlen, "no carrier decks configured (rating.buy)");
		return EXIT_CONFIG;
	}
	const char *params[2] = { from, to };
	PGresult *r = PQexecParams(c,
				   "SELECT coalesce(ltrim(dst_e164, '+'), dst), extract(epoch FROM calldate)::bigint, "
				   "billsec, coalesce(buy_cost, 0), buy_cost IS NULL FROM cdr WHERE carrier IS NOT NULL "
				   "AND billsec > 0 AND calldate >= $1::timestamptz AND calldate < $2::timestamptz",
				   2, NULL, params, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		for (char *p = err; *p; p++)
			if (*p == '\n')
				*p = ' ';
		int rc = r && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
				 !strncmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22", 2)
			 ? EXIT_USAGE /* a bad date */
			 : pgc_error_exit(c, err);
		PQclear(r);
		return rc;
	}
	size_t n = (size_t)PQntuples(r);
	struct rating_leg *legs = xcalloc(n ? n : 1, sizeof *legs);
	int64_t actual = 0;
	uint64_t actual_unknown = 0;
	for (size_t i = 0; i < n; i++) {
		legs[i].dst = PQgetvalue(r, (int)i, 0);
		legs[i].dst_len = strlen(legs[i].dst);
		legs[i].start = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
		legs[i].billsec = (uint32_t)strtoul(PQgetvalue(r, (int)i, 2), NULL, 10);
		actual += strtoll(PQgetvalue(r, (int)i, 3), NULL, 10);
		actual_unknown += PQgetvalue(r, (int)i, 4)[0] == 't';
	}
	const struct rate_trie **decks = xcalloc(bk->n_buy, sizeof *decks);
	for (size_t i = 0; i < bk->n_buy; i++)
		decks[i] = &bk->buy[i]->trie;
	struct lcr_result res;
	int rc = EXIT_OK;
	if (lcr_whatif(decks, bk->n_buy, legs, n, LCR_AT_CALL_START, &res, err, errlen) < 0) {
		rc = EXIT_SOFTWARE;
	} else {
		fprintf(out, "lcr: %zu carrier legs from %s to %s; actual buy cost ", n, from, to);
		money(out, actual);
		fprintf(out, " (%" PRIu64 " legs unrated)\n", actual_unknown);
		fprintf(out, "%-24s %16s %10s %10s %10s\n", "deck", "cost", "rated", "unrated", "cheapest");
		for (size_t i = 0; i < bk->n_buy; i++) {
			fprintf(out, "%-24s ", bk->buy[i]->deck.name);
			char buf[32];
			money_str(buf, sizeof buf, res.deck[i].cost);
			fprintf(out, "%16s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", buf, res.deck[i].rated,
				res.deck[i].unrated, res.deck[i].cheapest);
		}
		int64_t best = 0;
		uint64_t none = 0;
		for (size_t i = 0; i < n; i++) {
			if (res.cheapest[i] < 0)
				none++;
			else
				best += res.cheapest_cost[i];
		}
		fprintf(out, "least-cost routing of every leg: ");
		money(out, best);
		fprintf(out, " (%" PRIu64 " legs no deck rates)\n", none);
	}
	lcr_result_release(&res);
	free(decks);
	free(legs);
	PQclear(r);
	return rc;
}
