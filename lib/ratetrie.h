/*
 * ratetrie.h - longest-prefix match of dialled digits against a rate deck.
 *
 * A digit trie frozen into one contiguous array of 12-byte nodes: each node
 * has a 10-bit bitmap of the digits that continue it and the index of its
 * first child; children of a node are adjacent, so child d is at
 * first_child + popcount(bitmap & ((1 << d) - 1)).  Built once per deck;
 * lookups allocate nothing and never write, so one trie may be shared by
 * any number of threads.
 *
 * Matching rule (docs/rating.md): the longest deck prefix of the number
 * that has an entry effective at the call's start (eff_from <= at <
 * eff_to).  If the longest matching prefix has no entry effective then, the
 * next shorter matching prefix that has one is used, and so on; NULL when
 * none has.
 *
 * Ownership: the trie owns its node array and borrows the deck's entry
 * array: the deck must outlive the trie and stay unmodified.
 */
#ifndef CDRFLOW_RATETRIE_H
#define CDRFLOW_RATETRIE_H

#include <stddef.h>
#include <stdint.h>

#include "ratedeck.h"

struct rate_trie_node {
	uint32_t first_child; /* index of the child for the lowest digit in bitmap */
	uint32_t first_entry; /* entries of this exact prefix: [first_entry, +n_entries) */
	uint16_t bitmap;      /* bit d set = a child for digit d exists */
	uint16_t n_entries;   /* 0 = this node is only a path to longer prefixes */
};

/* An entry's effective range, copied next to the trie: the lookup reads
 * 16 bytes per candidate instead of a whole entry's cache line. */
struct rate_trie_span {
	int64_t from, to;
};

struct rate_trie {
	struct rate_trie_node *nodes; /* owned; nodes[0] is the root (empty prefix) */
	size_t n_nodes;
	struct rate_trie_span *spans; /* owned; spans[i] is entries[i]'s range */
	const struct rate_entry *entries; /* borrowed from the deck */
	size_t n_entries;
};

/*
 * Build the trie of a finished deck (rate_deck_finish()).  Returns 0, or -1
 * with a reason in err (the deck is unfinished, or a prefix has more than
 * 65535 entries).
 */
int rate_trie_build(struct rate_trie *t, const struct rate_deck *d, char *err, size_t errlen);
void rate_trie_release(struct rate_trie *t);

/*
 * The entry for a call to digits[0..len) starting at unix second `at`, or
 * NULL if no prefix of it has an entry effective then.  Matching stops at
 * the first character that is not a digit.  The matched prefix is
 * entry->prefix (entry->prefix_len digits).
 */
const struct rate_entry *rate_trie_lookup(const struct rate_trie *t, const char *digits, size_t len,
					  int64_t at);

#endif
