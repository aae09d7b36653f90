/*
 * epstate.c - a batch's endpoint-state changes (epstate.h).
 */
#include "epstate.h"

#include <stdlib.h>
#include <string.h>

#include "copyfmt.h"
#include "xalloc.h"

enum ep_kind { EP_PEER, EP_CONTACT, EP_REGISTRY, EP_DEVICE, EP_NONE };

static const char *const kind_names[] = { "peer", "contact", "registry", "device" };

static enum ep_kind kind_of(const char *name, size_t len)
{
	if (len == 10 && !memcmp(name, "PeerStatus", 10))
		return EP_PEER;
	if (len == 13 && !memcmp(name, "ContactStatus", 13))
		return EP_CONTACT;
	if (len == 8 && !memcmp(name, "Registry", 8))
		return EP_REGISTRY;
	if (len == 17 && !memcmp(name, "DeviceStateChange", 17))
		return EP_DEVICE;
	return EP_NONE;
}

int epstate_is_event(const char *name, size_t len)
{
	return kind_of(name, len) != EP_NONE;
}

void epstate_init(struct epstate *s)
{
	memset(s, 0, sizeof *s);
	buf_init(&s->arena, 0);
	buf_init(&s->key, 0);
	buf_init(&s->state, 0);
	buf_init(&s->json, 0);
}

void epstate_release(struct epstate *s)
{
	buf_release(&s->arena);
	buf_release(&s->key);
	buf_release(&s->state);
	buf_release(&s->json);
	free(s->tab);
	memset(s, 0, sizeof *s);
}

void epstate_reset(struct epstate *s)
{
	buf_reset(&s->arena);
	if (s->tab)
		memset(s->tab, 0, s->cap * sizeof *s->tab);
	s->n = 0;
}

/* s as one COPY text field without its separator (copy_text's escaping and
 * UTF-8 repair), so that parts joined here equal the parts joined by SQL. */
static void text_part(struct buf *b, const char *s, size_t n)
{
	copy_text(b, s, n, '\t');
	buf_setlen(b, b->len - 1);
}

/* The key (kind, endpoint, detail) and state of m in s->key / s->state, as
 * COPY text fields each ending in a TAB; 0 when m has no endpoint or state. */
static int name_endpoint(struct epstate *s, const struct ami_msg *m, enum ep_kind k)
{
	size_t n1, n2, n3;
	const char *v1, *v2, *v3, *st;
	size_t stn;
	struct buf *key = &s->key;
	buf_reset(key);
	buf_reset(&s->state);
	text_part(key, kind_names[k], strlen(kind_names[k]));
	buf_append(key, "\t", 1);
	switch (k) {
	case EP_PEER:
		v1 = ami_get(m, "Peer", &n1);
		st = ami_get(m, "PeerStatus", &stn);
		if (!v1 || !st)
			return 0;
		text_part(key, v1, n1);
		buf_append(key, "\t\t", 2);
		break;
	case EP_CONTACT:
		v1 = ami_get(m, "EndpointName", &n1);
		st = ami_get(m, "ContactStatus", &stn);
		if (!st)
			return 0;
		if (v1) {
			buf_append(key, "PJSIP/", 6);
			text_part(key, v1, n1);
		} else {
			v2 = ami_get(m, "AOR", &n2);
			if (!v2)
				return 0;
			text_part(key, v2, n2);
		}
		buf_append(key, "\t", 1);
		v3 = ami_get(m, "URI", &n3);
		if (v3)
			text_part(key, v3, n3);
		buf_append(key, "\t", 1);
		break;
	case EP_REGISTRY:
		st = ami_get(m, "Status", &stn);
		if (!st)
			return 0;
		v1 = ami_get(m, "ChannelType", &n1);
		v2 = ami_get(m, "Username", &n2);
		v3 = ami_get(m, "Domain", &n3);
		if (v1)
			text_part(key, v1, n1);
		buf_append(key, "/", 1);
		if (v2) {
			text_part(key, v2, n2);
			buf_append(key, "@", 1);
		}
		if (v3)
			text_part(key, v3, n3);
		buf_append(key, "\t\t", 2);
		break;
	default:
		v1 = ami_get(m, "Device", &n1);
		st = ami_get(m, "State", &stn);
		if (!v1 || !st)
			return 0;
		text_part(key, v1, n1);
		buf_append(key, "\t\t", 2);
		break;
	}
	copy_text(&s->state, st, stn, '\t');
	return 1;
}

static uint32_t hash_bytes(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static void grow(struct epstate *s)
{
	size_t cap = s->cap ? 2 * s->cap : 256;
	struct epstate_slot *tab = xcalloc(cap, sizeof *tab);
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->tab[i].used)
			continue;
		size_t j = s->tab[i].hash & (cap - 1);
		while (tab[j].used)
			j = (j + 1) & (cap - 1);
		tab[j] = s->tab[i];
	}
	free(s->tab);
	s->tab = tab;
	s->cap = cap;
}

/* The endpoint's slot, a new one (used, no state yet) if it is new. */
static struct epstate_slot *slot_of(struct epstate *s, const char *key, size_t klen)
{
	if (2 * (s->n + 1) > s->cap)
		grow(s);
	uint32_t h = hash_bytes(key, klen);
	size_t j = h & (s->cap - 1);
	for (; s->tab[j].used; j = (j + 1) & (s->cap - 1)) {
		struct epstate_slot *e = &s->tab[j];
		if (e->hash == h && e->key_len == klen && !memcmp(s->arena.data + e->key_off, key, klen))
			return e;
	}
	struct epstate_slot *e = &s->tab[j];
	e->used = 1;
	e->hash = h;
	e->key_off = s->arena.len;
	e->key_len = (uint32_t)klen;
	e->state_len = UINT32_MAX; /* none yet */
	buf_append(&s->arena, key, klen);
	s->n++;
	return e;
}

int epstate_event(struct epstate *s, struct buf *rows, const struct ami_msg *m, const char *name, size_t len,
		  uint64_t seq, uint64_t time_us)
{
	enum ep_kind k = kind_of(name, len);
	if (k == EP_NONE || !name_endpoint(s, m, k))
		return 0;
	struct epstate_slot *e = slot_of(s, s->key.data, s->key.len);
	if (e->state_len == s->state.len && !memcmp(s->arena.data + e->state_off, s->state.data, s->state.len))
		return 0; /* the state the endpoint's previous event of the batch gave */
	if (e->state_len == UINT32_MAX || e->state_len < s->state.len) {
		e->state_off = s->arena.len; /* the arena only grows within a batch */
		buf_append(&s->arena, s->state.data, s->state.len);
	} else {
		memcpy(s->arena.data + e->state_off, s->state.data, s->state.len);
	}
	e->state_len = (uint32_t)s->state.len;
	copy_int(rows, (int64_t)seq, '\t');
	copy_time_us(rows, time_us, '\t');
	buf_append(rows, s->key.data, s->key.len);
	buf_append(rows, s->state.data, s->state.len);
	copy_ami_fields(rows, m, &s->json, '\n');
	return 1;
}
