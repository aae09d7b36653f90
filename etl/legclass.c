/*
 * legclass.c - tenant, direction, E.164, country and rating of a leg
 * (legclass.h): the one place that knows them.
 */
#include "legclass.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e164.h"
#include "xalloc.h"

static bool glob_ok(const char *pattern, const char *value)
{
	return !pattern || !*pattern || (value && fnmatch(pattern, value, 0) == 0);
}

static char **split_list(const char *s, size_t *n)
{
	char **v = NULL;
	*n = 0;
	if (!s)
		return NULL;
	const char *p = s;
	while (*p) {
		while (*p == ',' || *p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		size_t len = (size_t)(e - p);
		while (len && p[len - 1] == ' ')
			len--;
		if (len) {
			v = xrealloc(v, (*n + 1) * sizeof *v);
			v[(*n)++] = xstrndup(p, len);
		}
		p = e;
	}
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int legclass_init(struct legclass *lc, const struct etl_config *cfg, char *err, size_t errlen)
{
	memset(lc, 0, sizeof *lc);
	lc->cfg = cfg;
	rating_book_init(&lc->book);
	lc->trunks = split_list(cfg->trunks, &lc->ntrunks);
	lc->buy_decimals = xcalloc(cfg->n_carriers ? cfg->n_carriers : 1, sizeof *lc->buy_decimals);
	lc->sell_decimals = xcalloc(cfg->n_sells ? cfg->n_sells : 1, sizeof *lc->sell_decimals);
	for (size_t i = 0; i < cfg->n_carriers; i++) {
		struct rate_deck d;
		rate_deck_init(&d, cfg->carriers[i].carrier);
		if (rate_deck_load(&d, cfg->carriers[i].deck, err, errlen) == 0)
			lc->buy_decimals[i] = rate_deck_decimals(&d);
		else {
			rate_deck_release(&d);
			legclass_release(lc);
			return -1;
		}
		if (rating_book_add_buy(&lc->book, &d, err, errlen) < 0) {
			rate_deck_release(&d);
			legclass_release(lc);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->n_sells; i++) {
		struct rate_deck d;
		rate_deck_init(&d, cfg->sells[i].tenant);
		if (rate_deck_load(&d, cfg->sells[i].deck, err, errlen) == 0)
			lc->sell_decimals[i] = rate_deck_decimals(&d);
		else {
			rate_deck_release(&d);
			legclass_release(lc);
			return -1;
		}
		if (rating_book_add_sell(&lc->book, &d, err, errlen) < 0) {
			rate_deck_release(&d);
			legclass_release(lc);
			return -1;
		}
	}
	return 0;
}

void legclass_release(struct legclass *lc)
{
	free(lc->countries);
	lc->countries = NULL;
	lc->ncountries = 0;
	rating_book_release(&lc->book);
	free(lc->buy_decimals);
	free(lc->sell_decimals);
	lc->buy_decimals = lc->sell_decimals = NULL;
	free_list(lc->trunks, lc->ntrunks);
	lc->trunks = NULL;
	lc->ntrunks = 0;
}

static const struct number_plan *plan_for(const struct etl_config *cfg, const char *tenant)
{
	const struct number_plan *dflt = NULL;
	for (size_t i = 0; i < cfg->n_plans; i++) {
		const struct number_plan *p = &cfg->plans[i];
		if (tenant && p->tenant && *p->tenant && !strcmp(p->tenant, tenant))
			return p;
		if ((!p->tenant || !*p->tenant) && !dflt)
			dflt = p;
	}
	return dflt;
}

static bool starts(const char *s, const char *prefix)
{
	return prefix && *prefix && !strncmp(s, prefix, strlen(prefix));
}

void legclass_e164(const struct etl_config *cfg, const char *tenant, const char *number, char *out)
{
	char d[64];
	bool plus;
	out[0] = '\0';
	/* digits only; a leading + (after spaces) means already international */
	int n = e164_digits(number, d, sizeof d, &plus);
	if (n <= 0)
		return; /* letters, *, #: not a number */
	if (plus) {
		if (e164_length_ok((size_t)n))
			snprintf(out, 24, "+%s", d);
		return;
	}
	const struct number_plan *p = plan_for(cfg, tenant);
	if (!p) {
		/* no plan: 00 is the international prefix (ITU-T E.164's
		 * recommendation, most of the world); the rest stays national */
		if (d[0] == '0' && d[1] == '0' && d[2] && d[2] != '0' && e164_length_ok((size_t)n - 2))
			snprintf(out, 24, "+%s", d + 2);
		return;
	}
	const char *s = d;
	/* tech prefixes first (outside-line digit...), the longest that matches */
	size_t nstrip;
	char **strip = split_list(p->strip_prefixes, &nstrip);
	size_t best = 0;
	for (size_t i = 0; i < nstrip; i++)
		if (starts(s, strip[i]) && strlen(strip[i]) > best)
			best = strlen(strip[i]);
	free_list(strip, nstrip);
	s += best;
	if ((int64_t)strlen(s) < p->min_length)
		return; /* an extension or a short code */
	char buf[64];
	if (starts(s, p->international_prefix))
		snprintf(buf, sizeof buf, "%s", s + strlen(p->international_prefix));
	else if (starts(s, p->national_prefix))
		snprintf(buf, sizeof buf, "%s%s", p->country_code, s + strlen(p->national_prefix));
	else
		snprintf(buf, sizeof buf, "%s%s", p->country_code, s); /* a national number dialled without prefix */
	if (e164_length_ok(strlen(buf)))
		snprintf(out, 24, "+%s", buf);
}

static int country_cmp(const void *a, const void *b)
{
	return strcmp(((const struct country_prefix *)a)->prefix, ((const struct country_prefix *)b)->prefix);
}

int legclass_set_countries(struct legclass *lc, const char *table, char *err, size_t errlen)
{
	struct country_prefix *v = NULL;
	size_t n = 0, line = 0;
	for (const char *p = table; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		line++;
		if (len) {
			struct country_prefix c;
			size_t pl = strspn(p, "0123456789");
			const char *iso = p + pl + 1;
			size_t il = len > pl + 1 ? len - pl - 1 : 0;
			if (pl == 0 || pl >= sizeof c.prefix || p[pl] != ' ' || il == 0 || il >= sizeof c.iso) {
				snprintf(err, errlen, "country table line %zu: want \"PREFIX ISO\"", line);
				free(v);
				return -1;
			}
			memcpy(c.prefix, p, pl);
			c.prefix[pl] = '\0';
			memcpy(c.iso, iso, il);
			c.iso[il] = '\0';
			v = xrealloc(v, (n + 1) * sizeof *v);
			v[n++] = c;
		}
		p += len + (e ? 1 : 0);
	}
	if (n)
		qsort(v, n, sizeof *v, country_cmp);
	free(lc->countries);
	lc->countries = v;
	lc->ncountries = n;
	return 0;
}

const char *legclass_country(const struct legclass *lc, const char *e164)
{
	if (!e164 || e164[0] != '+' || !lc->ncountries)
		return NULL;
	struct country_prefix key;
	size_t len = strlen(e164 + 1);
	for (size_t l = len < sizeof key.prefix - 1 ? len : sizeof key.prefix - 1; l > 0; l--) {
		memcpy(key.prefix, e164 + 1, l);
		key.prefix[l] = '\0';
		const struct country_prefix *c = bsearch(&key, lc->countries, lc->ncountries, sizeof key, country_cmp);
		if (c)
			return c->iso;
	}
	return NULL;
}

/* the endpoint of one side, or 0 when it is Local or empty */
static size_t channel_peer(const char *ch, const char **start)
{
	*start = ch;
	if (!ch || !ch[0] || !strncmp(ch, "Local/", 6))
		return 0;
	size_t n = strlen(ch);
	if (n && ch[n - 1] == '>') { /* a trailing "<ZOMBIE>"-style tag */
		size_t lt = n - 1;
		while (lt && ch[lt - 1] != '<' && ch[lt - 1] != '>')
			lt--;
		if (lt && ch[lt - 1] == '<')
			n = lt - 1;
	}
	/* "-<hex>", then an optional ";n" (a Local half), at the end */
	size_t e = n;
	while (e && ch[e - 1] >= '0' && ch[e - 1] <= '9')
		e--;
	size_t h = e < n && e && ch[e - 1] == ';' ? e - 1 : n;
	e = h;
	while (e && isxdigit((unsigned char)ch[e - 1]))
		e--;
	if (e < h && e && ch[e - 1] == '-')
		n = e - 1;
	else if (h != n) { /* no "-<hex>" before the ";n": try the whole tail as hex */
		e = n;
		while (e && isxdigit((unsigned char)ch[e - 1]))
			e--;
		if (e < n && e && ch[e - 1] == '-')
			n = e - 1;
	}
	return n;
}

void legclass_trunk(const char *channel, const char *dstchannel, const char *direction, char *out)
{
	const char *a, *b;
	size_t na = channel_peer(channel, &a), nb = channel_peer(dstchannel, &b);
	int inbound = direction && !strcmp(direction, "inbound");
	const char *s = inbound ? (na ? a : b) : (nb ? b : a);
	size_t n = inbound ? (na ? na : nb) : (nb ? nb : na);
	if (n > 63)
		n = 63;
	memcpy(out, s, n);
	out[n] = '\0';
}

static bool is_trunk(const struct legclass *lc, const char *channel)
{
	for (size_t i = 0; i < lc->ntrunks; i++)
		if (channel[0] && fnmatch(lc->trunks[i], channel, 0) == 0)
			return true;
	return false;
}

static const char *tenant_of(const struct etl_config *cfg, const struct cdr_row *r, const char *dst_e164)
{
	for (size_t i = 0; i < cfg->n_tenant_rules; i++) {
		const struct tenant_rule *t = &cfg->tenant_rules[i];
		if (!glob_ok(t->accountcode, r->accountcode) || !glob_ok(t->context, r->dcontext))
			continue;
		if (t->channel && *t->channel && !glob_ok(t->channel, r->channel) && !glob_ok(t->channel, r->dstchannel))
			continue;
		if (t->did && *t->did && !glob_ok(t->did, r->dst) && !(dst_e164[0] && glob_ok(t->did, dst_e164)))
			continue;
		return t->tenant;
	}
	return cfg->tenant_default && *cfg->tenant_default ? cfg->tenant_default : NULL;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* Direction without trunk globs: by dialplan context (the lists under
 * fraud:), "unknown" when neither list is given. */
static const char *direction_by_context(const struct fraud_config *f, const char *dcontext)
{
	if (!f->n_inbound && !f->n_outbound)
		return "unknown";
	if (in_list(f->inbound_contexts, f->n_inbound, dcontext))
		return "inbound";
	if (!f->n_outbound || in_list(f->outbound_contexts, f->n_outbound, dcontext))
		return "outbound";
	return "internal";
}

bool legclass_international(const struct legclass *lc, const char *tenant, const char *e164)
{
	if (!e164 || e164[0] != '+')
		return false;
	const struct number_plan *p = plan_for(lc->cfg, tenant);
	if (!p)
		return true; /* without a plan only +/00 numbers are E.164 */
	const char *country = legclass_country(lc, e164);
	if (p->country && *p->country)
		return !country || strcmp(country, p->country) != 0;
	char home[24];
	snprintf(home, sizeof home, "+%s", p->country_code);
	const char *home_iso = legclass_country(lc, home);
	if (country && home_iso)
		return strcmp(country, home_iso) != 0;
	return strncmp(e164 + 1, p->country_code, strlen(p->country_code)) != 0;
}

void legclass_apply(const struct legclass *lc, const struct cdr_row *r, struct leg_extra *x)
{
	legclass_apply_source(lc, r, NULL, NULL, x);
}

void legclass_apply_source(const struct legclass *lc, const struct cdr_row *r, const char *direction,
			   const char *trunk, struct leg_extra *x)
{
	const struct etl_config *cfg = lc->cfg;
	memset(x, 0, sizeof *x);
	/* E.164 under the default plan first (a DID rule may need it), then the tenant's */
	legclass_e164(cfg, NULL, r->dst, x->dst_e164);
	x->tenant = tenant_of(cfg, r, x->dst_e164);
	legclass_e164(cfg, x->tenant, r->dst, x->dst_e164);
	legclass_e164(cfg, x->tenant, r->src, x->src_e164);
	if (direction)
		x->direction = direction; /* the source said it (a Yeastar CDR's type) */
	else if (!lc->ntrunks)
		x->direction = direction_by_context(&cfg->fraud, r->dcontext);
	else if (is_trunk(lc, r->channel))
		x->direction = "inbound";
	else if (is_trunk(lc, r->dstchannel))
		x->direction = "outbound";
	else
		x->direction = "internal";
	if (trunk)
		snprintf(x->trunk, sizeof x->trunk, "%s", trunk);
	else
		legclass_trunk(r->channel, r->dstchannel, x->direction, x->trunk);
	x->country = legclass_country(lc, x->dst_e164);
	x->src_intl = legclass_international(lc, x->tenant, x->src_e164);
	x->dst_intl = legclass_international(lc, x->tenant, x->dst_e164);
	/* rating: legs that left by a carrier's trunk */
	const struct carrier_deck *car = NULL;
	for (size_t i = 0; i < cfg->n_carriers && !car; i++)
		if (r->dstchannel[0] && fnmatch(cfg->carriers[i].trunk, r->dstchannel, 0) == 0)
			car = &cfg->carriers[i];
	if (!car)
		return;
	x->carrier = car->carrier;
	const char *num = x->dst_e164[0] ? x->dst_e164 + 1 : r->dst;
	struct rating_leg leg = { num, strlen(num), (int64_t)(r->start_us / 1000000u),
				  r->billsec > 0 ? (uint32_t)r->billsec : 0 };
	const struct rate_trie *buy = rating_book_buy(&lc->book, car->carrier);
	const struct rate_trie *sell = x->tenant ? rating_book_sell(&lc->book, x->tenant) : NULL;
	struct rating_result res;
	enum rating_status st = rating_rate_leg(buy, sell, &leg, &res);
	x->rate_status = rating_status_name(st);
	if (res.buy_entry) {
		x->has_buy = true;
		x->buy = res.buy;
		snprintf(x->buy_prefix, sizeof x->buy_prefix, "%s", res.buy_entry->prefix);
	}
	if (res.sell_entry) {
		x->has_sell = true;
		x->sell = res.sell;
		snprintf(x->sell_prefix, sizeof x->sell_prefix, "%s", res.sell_entry->prefix);
	}
	if (st == RATING_RATED) {
		x->has_margin = true;
		x->margin = res.margin;
	}
	if (st == RATING_NOT_BILLABLE) {
		x->has_buy = x->has_sell = x->has_margin = true; /* all zero: nothing to charge */
	}
}
