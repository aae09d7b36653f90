/*
 * ratetrie.c - build a 10-way digit trie, then freeze it breadth-first into
 * the bitmap + first-child layout the lookup walks.
 *
 * Why two phases: inserting is simplest with a plain child[10] per node, but
 * those are 48-byte nodes of which ~90% is zeros; the frozen 12-byte nodes
 * keep a 50k-prefix deck's trie in a few hundred KiB, which stays in cache
 * and is what makes millions of lookups per second possible.  Both phases
 * use one growing array each, never a malloc per node.
 */
#include "ratetrie.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "xalloc.h"

/* Set bits of every 10-bit value: a child's rank among its siblings.  A
 * table rather than __builtin_popcount, which without -mpopcnt is a libgcc
 * call per trie level (measured: ~6% of lookup time). */
#define P2(n) n, n + 1, n + 1, n + 2
#define P4(n) P2(n), P2(n + 1), P2(n + 1), P2(n + 2)
#define P6(n) P4(n), P4(n + 1), P4(n + 1), P4(n + 2)
#define P8(n) P6(n), P6(n + 1), P6(n + 1), P6(n + 2)
static const uint8_t popcount10[1024] = {P8(0), P8(1), P8(1), P8(2)};

struct build_node {
	uint32_t child[10]; /* 0 = none (the root is never anyone's child) */
	uint32_t first_entry;
	uint32_t n_entries;
};

struct builder {
	struct build_node *n;
	size_t len, cap;
};

static uint32_t new_node(struct builder *b)
{
	if (b->len == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 1024;
		b->n = xrealloc(b->n, b->cap * sizeof *b->n);
	}
	memset(&b->n[b->len], 0, sizeof *b->n);
	return (uint32_t)b->len++;
}

int rate_trie_build(struct rate_trie *t, const struct rate_deck *d, char *err, size_t errlen)
{
	struct builder b = {0};
	memset(t, 0, sizeof *t);
	if (!d->finished)
		return errmsg(err, errlen, "deck \"%s\" is not finished (call rate_deck_finish)", d->name);
	/* at most 20 nodes per entry plus the root, so uint32 indices suffice */
	new_node(&b);
	for (size_t i = 0; i < d->n;) {
		const struct rate_entry *e = &d->entries[i];
		size_t j = i + 1;
		/* finished decks are sorted: a prefix's entries are adjacent */
		while (j < d->n && strcmp(d->entries[j].prefix, e->prefix) == 0)
			j++;
		if (j - i > UINT16_MAX) {
			free(b.n);
			return errmsg(err, errlen, "deck \"%s\": prefix \"%s\" has more than %u entries", d->name,
				    e->prefix, UINT16_MAX);
		}
		uint32_t n = 0;
		for (unsigned k = 0; k < e->prefix_len; k++) {
			unsigned dig = (unsigned)(e->prefix[k] - '0');
			if (!b.n[n].child[dig]) {
				uint32_t c = new_node(&b); /* may move b.n */
				b.n[n].child[dig] = c;
			}
			n = b.n[n].child[dig];
		}
		b.n[n].first_entry = (uint32_t)i;
		b.n[n].n_entries = (uint32_t)(j - i);
		i = j;
	}

	/* Freeze breadth-first: a node's children get consecutive slots.
	 * order[k] = build node at frozen slot k. */
	uint32_t *order = xmalloc(b.len * sizeof *order);
	t->nodes = xcalloc(b.len, sizeof *t->nodes);
	size_t head = 0, tail = 1;
	order[0] = 0;
	while (head < tail) {
		const struct build_node *bn = &b.n[order[head]];
		struct rate_trie_node *fn = &t->nodes[head];
		fn->first_child = (uint32_t)tail;
		fn->first_entry = bn->first_entry;
		fn->n_entries = (uint16_t)bn->n_entries;
		for (unsigned dig = 0; dig < 10; dig++)
			if (bn->child[dig]) {
				fn->bitmap |= (uint16_t)(1u << dig);
				order[tail++] = bn->child[dig];
			}
		head++;
	}
	t->n_nodes = b.len;
	t->spans = xmalloc((d->n ? d->n : 1) * sizeof *t->spans);
	for (size_t i = 0; i < d->n; i++) {
		t->spans[i].from = d->entries[i].eff_from;
		t->spans[i].to = d->entries[i].eff_to;
	}
	t->entries = d->entries;
	t->n_entries = d->n;
	free(order);
	free(b.n);
	return 0;
}

void rate_trie_release(struct rate_trie *t)
{
	free(t->nodes);
	free(t->spans);
	memset(t, 0, sizeof *t);
}

static const struct rate_entry *effective(const struct rate_trie *t, const struct rate_trie_node *n,
					  int64_t at)
{
	const struct rate_trie_span *s = t->spans + n->first_entry, *end = s + n->n_entries;
	for (; s < end; s++)
		if (s->from <= at && at < s->to)
			return t->entries + (s - t->spans);
	return NULL;
}

const struct rate_entry *rate_trie_lookup(const struct rate_trie *t, const char *digits, size_t len,
					  int64_t at)
{
	const struct rate_trie_node *nodes = t->nodes;
	const struct rate_trie_node *hit[RATE_PREFIX_MAX];
	size_t nhit = 0;

	if (!nodes)
		return NULL;
	if (len > RATE_PREFIX_MAX)
		len = RATE_PREFIX_MAX; /* no prefix is longer */
	const struct rate_trie_node *n = &nodes[0];
	for (size_t i = 0; i < len; i++) {
		unsigned dig = (unsigned)(unsigned char)digits[i] - '0';
		if (dig > 9 || !(n->bitmap >> dig & 1))
			break;
		n = &nodes[n->first_child + popcount10[n->bitmap & ((1u << dig) - 1)]];
		if (n->n_entries)
			hit[nhit++] = n;
	}
	/* Longest first; a shorter prefix only when the longer has no entry in
	 * force at `at` (a prefix not yet or no longer priced). */
	while (nhit) {
		const struct rate_entry *e = effective(t, hit[--nhit], at);
		if (e)
			return e;
	}
	return NULL;
}
