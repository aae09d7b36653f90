/*
 * cdrfeed.c - AMI events -> cdrengine messages (see cdrfeed.h).
 *
 * Events the engine needs are copied (raw bytes and header index) into a
 * FIFO and run when they leave the reorder window; the copy lives in one
 * growing byte buffer that is compacted as the FIFO drains, so there is no
 * allocation per event.
 */
#include "cdrfeed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "xalloc.h"

/* Events the engine runs on. */
enum ev {
	EV_NONE,
	EV_NEWCHANNEL,
	EV_NEWSTATE,
	EV_NEWEXTEN,
	EV_SNAPSHOT,  /* NewCallerid, NewConnectedLine, NewAccountCode, Rename */
	EV_VARSET,
	EV_HANGUP,
	EV_DIALBEGIN,
	EV_DIALSTATE,
	EV_DIALEND,
	EV_BRIDGEENTER,
	EV_BRIDGELEAVE,
	EV_PARKEDCALL,
	EV_TRANSFER,
	EV_CEL,
};

static const struct {
	const char *name;
	enum ev ev;
} event_names[] = {
	{ "Newchannel", EV_NEWCHANNEL }, { "Newstate", EV_NEWSTATE },   { "Newexten", EV_NEWEXTEN },
	{ "NewCallerid", EV_SNAPSHOT },  { "NewConnectedLine", EV_SNAPSHOT }, { "NewAccountCode", EV_SNAPSHOT },
	{ "Rename", EV_SNAPSHOT },       { "VarSet", EV_VARSET },       { "Hangup", EV_HANGUP },
	{ "DialBegin", EV_DIALBEGIN },   { "DialState", EV_DIALSTATE }, { "DialEnd", EV_DIALEND },
	{ "BridgeEnter", EV_BRIDGEENTER }, { "BridgeLeave", EV_BRIDGELEAVE }, { "ParkedCall", EV_PARKEDCALL },
	{ "BlindTransfer", EV_TRANSFER }, { "AttendedTransfer", EV_TRANSFER }, { "CEL", EV_CEL },
};

static enum ev event_kind(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof event_names / sizeof event_names[0]; i++)
		if (strlen(event_names[i].name) == len && !memcmp(event_names[i].name, name, len))
			return event_names[i].ev;
	return EV_NONE;
}

bool cdr_feed_wants(const char *name, size_t len)
{
	return event_kind(name, len) != EV_NONE;
}

/* The moments a channel event and a CEL event both report. */
enum twin { TW_NONE, TW_START, TW_ANSWER, TW_HANGUP, TW_ENTER, TW_EXIT };

struct pending {
	uint64_t t, stamp, pos;
	size_t off;       /* into q.data: raw bytes, then the header index */
	uint32_t raw_len, nhdr;
	enum ev ev;
	enum twin twin;
	bool done;        /* a CEL already used for amaflags only... run anyway */
};

#define TWIN_SLOTS 8192u

struct twin_slot {
	bool used;
	enum twin twin;
	uint64_t cel_t;   /* a CEL came first: its time */
	uint64_t qidx;    /* a channel event waits: its absolute FIFO index + 1 */
	char uid[64];
};

struct cdr_feed {
	struct cdr_engine *eng;
	struct callgroups *calls;
	struct cdr_feed_sink sink;
	uint64_t cur_stamp, cur_pos;
	struct cdr_options opt;
	bool channelvars;        /* ChanVariable headers seen: VarSet updates snapshots */
	struct buf q;            /* event copies */
	struct pending *fifo;    /* ring */
	size_t cap, head, count; /* head: ring position of the oldest */
	uint64_t popped;         /* absolute index of fifo[head] */
	uint64_t newest_t;
	struct twin_slot *twins;
	size_t ntwins;
	/* amaflags from CEL events that came before their channel's first event */
	struct {
		char uid[64];
		int amaflags;
	} early_ama[32];
	unsigned early_ama_next;
	uint64_t events, matched;
};

/* ------------------------------------------------------------ twin matching */

static uint32_t twin_hash(const char *uid, size_t len, enum twin tw)
{
	uint32_t h = 2166136261u ^ (uint32_t)tw;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)uid[i]) * 16777619u;
	return h & (TWIN_SLOTS - 1);
}

static struct twin_slot *twin_find(struct cdr_feed *f, const char *uid, size_t len, enum twin tw)
{
	if (len >= sizeof f->twins[0].uid)
		return NULL;
	for (uint32_t i = twin_hash(uid, len, tw), n = 0; n < TWIN_SLOTS; i = (i + 1) & (TWIN_SLOTS - 1), n++) {
		struct twin_slot *s = &f->twins[i];
		if (!s->used)
			return NULL;
		if (s->twin == tw && !strncmp(s->uid, uid, len) && !s->uid[len])
			return s;
	}
	return NULL;
}

/* Backward-shift deletion keeps linear probing correct without tombstones. */
static void twin_delete(struct cdr_feed *f, struct twin_slot *s)
{
	uint32_t i = (uint32_t)(s - f->twins);
	f->twins[i].used = false;
	f->ntwins--;
	for (uint32_t j = (i + 1) & (TWIN_SLOTS - 1); f->twins[j].used; j = (j + 1) & (TWIN_SLOTS - 1)) {
		struct twin_slot *t = &f->twins[j];
		uint32_t home = twin_hash(t->uid, strlen(t->uid), t->twin);
		/* move t to i if its home is not cyclically in (i, j] */
		bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!in_range) {
			f->twins[i] = *t;
			t->used = false;
			i = j;
		}
	}
}

static struct twin_slot *twin_insert(struct cdr_feed *f, const char *uid, size_t len, enum twin tw)
{
	if (len >= sizeof f->twins[0].uid)
		return NULL;
	if (f->ntwins >= TWIN_SLOTS / 2) {
		/* unmatched leftovers (rare): start over rather than grow */
		memset(f->twins, 0, TWIN_SLOTS * sizeof f->twins[0]);
		f->ntwins = 0;
	}
	uint32_t i = twin_hash(uid, len, tw);
	while (f->twins[i].used)
		i = (i + 1) & (TWIN_SLOTS - 1);
	struct twin_slot *s = &f->twins[i];
	memset(s, 0, sizeof *s);
	s->used = true;
	s->twin = tw;
	memcpy(s->uid, uid, len);
	s->uid[len] = '\0';
	f->ntwins++;
	return s;
}

/* ------------------------------------------------------------ header access */

static const char *prefixed(const char *prefix, const char *key, char *buf, size_t size)
{
	if (!*prefix)
		return key;
	size_t pl = strlen(prefix), kl = strlen(key);
	if (pl + kl >= size)
		return key;
	memcpy(buf, prefix, pl);
	memcpy(buf + pl, key, kl + 1);
	return buf;
}

/* Copy a header value into a C string of size bytes.  A NUL byte in the
 * value becomes U+FFFD, as every stored text column has it (copyfmt.h), so
 * a value is never cut at an embedded NUL (cdr.clid, src, ... = cel). */
static void copy_cstr(char *dst, size_t size, const char *src, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		if (src[i] != '\0') {
			dst[o++] = src[i];
		} else if (o + 3 < size) {
			memcpy(dst + o, "\xEF\xBF\xBD", 3);
			o += 3;
		} else {
			break;
		}
	}
	dst[o] = '\0';
}

static size_t hdr(const struct ami_msg *m, const char *prefix, const char *key, char *out, size_t size)
{
	char k[64];
	size_t len;
	const char *v = ami_get(m, prefixed(prefix, key, k, sizeof k), &len);
	if (!v) {
		out[0] = '\0';
		return 0;
	}
	copy_cstr(out, size, v, len);
	return strlen(out);
}

static int hdr_int(const struct ami_msg *m, const char *prefix, const char *key, int dflt)
{
	char v[24];
	if (!hdr(m, prefix, key, v, sizeof v) || !v[0])
		return dflt;
	return atoi(v);
}

/* AMI prints an empty caller id as "<unknown>". */
static void unknown_to_empty(char *s)
{
	if (!strcmp(s, "<unknown>"))
		s[0] = '\0';
}

/* The snapshot headers of a channel event, found in one pass. */
enum { SF_UNIQUEID, SF_CHANNEL, SF_LINKEDID, SF_CIDNUM, SF_CIDNAME, SF_ACCOUNT, SF_CONTEXT, SF_EXTEN,
       SF_PRIORITY, SF_STATE, SF_CHANVAR, SF_N };
static const char *const snap_keys[SF_N] = { "Uniqueid", "Channel", "Linkedid", "CallerIDNum", "CallerIDName",
					     "AccountCode", "Context", "Exten", "Priority", "ChannelState",
					     "ChanVariable" };

static void snap_headers(const struct ami_msg *m, const char *prefix, const struct ami_header *out[SF_N])
{
	static size_t klen[SF_N];
	if (!klen[0])
		for (size_t i = 0; i < SF_N; i++)
			klen[i] = strlen(snap_keys[i]);
	size_t plen = strlen(prefix);
	memset(out, 0, SF_N * sizeof out[0]);
	for (size_t h = 0; h < m->nhdr; h++) {
		const char *key = m->raw + m->hdr[h].key_off;
		size_t kl = m->hdr[h].key_len;
		if (kl <= plen || (plen && strncasecmp(key, prefix, plen)))
			continue;
		key += plen;
		kl -= plen;
		for (size_t i = 0; i < SF_N; i++)
			if (!out[i] && kl == klen[i] && (key[0] | 32) == (snap_keys[i][0] | 32) &&
			    !strncasecmp(key, snap_keys[i], kl)) {
				out[i] = &m->hdr[h];
				break;
			}
	}
}

static void snap_str(const struct ami_msg *m, const struct ami_header *h, char *out, size_t size)
{
	if (!h) {
		out[0] = '\0';
		return;
	}
	copy_cstr(out, size, m->raw + h->val_off, h->val_len);
}

static int snap_int(const struct ami_msg *m, const struct ami_header *h, int dflt)
{
	if (!h || !h->val_len)
		return dflt;
	char v[24];
	snap_str(m, h, v, sizeof v);
	return atoi(v);
}

/* The channel snapshot an event carries (prefix "", "Dest", "Parkee"...),
 * merged over what we know of the channel (appl/data, flags, amaflags and
 * creation time are not in the headers).  False if there is none. */
static bool event_snapshot(struct cdr_feed *f, const struct ami_msg *m, const char *prefix, uint64_t t,
			   struct cdr_snapshot *s)
{
	const struct ami_header *h[SF_N];
	snap_headers(m, prefix, h);
	if (!h[SF_UNIQUEID] || !h[SF_UNIQUEID]->val_len)
		return false;
	char uid[CDR_ID];
	snap_str(m, h[SF_UNIQUEID], uid, sizeof uid);
	if (!cdr_engine_snapshot(f->eng, uid, s)) {
		memset(s, 0, sizeof *s);
		memcpy(s->uniqueid, uid, sizeof uid);
		s->created_us = t;
		s->amaflags = 3; /* AST_AMA_DOCUMENTATION, Asterisk's default */
		for (size_t i = 0; i < sizeof f->early_ama / sizeof f->early_ama[0]; i++)
			if (f->early_ama[i].amaflags && !strcmp(f->early_ama[i].uid, uid)) {
				s->amaflags = f->early_ama[i].amaflags;
				f->early_ama[i].amaflags = 0;
				break;
			}
	}
	snap_str(m, h[SF_CHANNEL], s->name, sizeof s->name);
	snap_str(m, h[SF_LINKEDID], s->linkedid, sizeof s->linkedid);
	snap_str(m, h[SF_CIDNUM], s->cid_num, sizeof s->cid_num);
	unknown_to_empty(s->cid_num);
	snap_str(m, h[SF_CIDNAME], s->cid_name, sizeof s->cid_name);
	unknown_to_empty(s->cid_name);
	snap_str(m, h[SF_ACCOUNT], s->accountcode, sizeof s->accountcode);
	snap_str(m, h[SF_CONTEXT], s->context, sizeof s->context);
	snap_str(m, h[SF_EXTEN], s->exten, sizeof s->exten);
	s->priority = snap_int(m, h[SF_PRIORITY], s->priority);
	s->state = snap_int(m, h[SF_STATE], s->state);
	if (h[SF_CHANVAR])
		f->channelvars = true;
	return true;
}

/* ------------------------------------------------------------ running events */

static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
	copy_cstr(dst, size, src, len);
}

/* Split s[0..len) at the first sep outside parentheses and quotes, as
 * ast_app_separate_args() does; returns the position or len. */
static size_t split_at(const char *s, size_t len, char sep)
{
	int depth = 0;
	bool quote = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '"')
			quote = !quote;
		else if (quote)
			continue;
		else if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (c == sep && depth == 0)
			return i;
	}
	return len;
}

/* pbx_checkcondition(): empty is false, a number is its value, text is true. */
static bool check_condition(const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	if (!len)
		return false;
	char buf[32];
	copy_field(buf, sizeof buf, s, len);
	char *end;
	long v = strtol(buf, &end, 10);
	if (end != buf)
		return v != 0;
	return true;
}

/* ExecIf(expr?app(args):app(args)) as AMI shows it, expr evaluated: the app
 * that runs and its arguments (app_exec.c execif_exec), false if none. */
static bool execif_branch(const char *d, size_t len, char *app, size_t appsize, char *args, size_t argsize)
{
	size_t q = split_at(d, len, '?');
	if (q == len)
		return false;
	const char *rest = d + q + 1;
	size_t rlen = len - q - 1;
	size_t colon = split_at(rest, rlen, ':');
	const char *br;
	size_t blen;
	if (check_condition(d, q)) {
		br = rest;
		blen = colon;
	} else {
		if (colon == rlen)
			return false;
		br = rest + colon + 1;
		blen = rlen - colon - 1;
	}
	const char *paren = memchr(br, '(', blen);
	size_t nlen = paren ? (size_t)(paren - br) : blen;
	while (nlen && (br[nlen - 1] == ' ' || br[nlen - 1] == '\t'))
		nlen--;
	if (!nlen)
		return false;
	copy_field(app, appsize, br, nlen);
	if (paren) {
		const char *a = paren + 1, *close = NULL;
		for (const char *p = br + blen; p > a; p--)
			if (p[-1] == ')') {
				close = p - 1;
				break;
			}
		copy_field(args, argsize, a, close ? (size_t)(close - a) : (size_t)(br + blen - a));
	} else {
		args[0] = '\0';
	}
	return true;
}

static void bridge_info(const struct ami_msg *m, struct cdr_bridge_info *b, char *id, char *sub, char *tech)
{
	hdr(m, "", "BridgeUniqueid", id, CDR_ID);
	hdr(m, "", "BridgeType", sub, 32);
	hdr(m, "", "BridgeTechnology", tech, 32);
	b->id = id;
	b->subclass = sub;
	b->tech = tech;
	b->nchannels = hdr_int(m, "", "BridgeNumChannels", 0);
}

static int amaflags_number(const char *v)
{
	if (!strcasecmp(v, "OMIT"))
		return 1;
	if (!strcasecmp(v, "BILLING"))
		return 2;
	if (!strcasecmp(v, "DOCUMENTATION"))
		return 3;
	return 0;
}

static void run_event(struct cdr_feed *f, const struct pending *p, const struct ami_msg *m)
{
	struct cdr_engine *e = f->eng;
	struct cdr_snapshot s, peer;
	uint64_t t = p->t;
	cdr_engine_set_stamp(e, p->stamp);
	f->cur_stamp = p->stamp;
	f->cur_pos = p->pos;
	switch (p->ev) {
	case EV_NEWCHANNEL:
	case EV_NEWSTATE:
	case EV_SNAPSHOT:
		if (event_snapshot(f, m, "", t, &s))
			cdr_engine_channel_update(e, &s, t);
		break;
	case EV_VARSET:
		/* a snapshot update only when manager.conf has channelvars */
		if (event_snapshot(f, m, "", t, &s) && f->channelvars)
			cdr_engine_channel_update(e, &s, t);
		break;
	case EV_NEWEXTEN: {
		if (!event_snapshot(f, m, "", t, &s))
			break;
		hdr(m, "", "Application", s.appl, sizeof s.appl);
		hdr(m, "", "AppData", s.data, sizeof s.data);
		if (!strcmp(s.appl, "AppDial") || !strcmp(s.appl, "AppQueue"))
			s.flags |= SNAP_OUTGOING;
		if (!strcmp(s.exten, "h"))
			s.flags |= SNAP_HANGUP_EXEC;
		cdr_engine_channel_update(e, &s, t);
		size_t len;
		const char *d = ami_get(m, "AppData", &len);
		char app[CDR_STR], args[CDR_USERFIELD];
		if (!strcasecmp(s.appl, "ExecIf") && d && execif_branch(d, len, app, sizeof app, args, sizeof args)) {
			/* the app ExecIf runs is a snapshot update with no Newexten */
			copy_field(s.appl, sizeof s.appl, app, strlen(app));
			copy_field(s.data, sizeof s.data, args, strlen(args));
			cdr_engine_channel_update(e, &s, t);
			d = args;
			len = strlen(args);
		}
		/* Set(CDR(userfield)=...) */
		if (!strcasecmp(s.appl, "Set") && d && len > 15 && !strncasecmp(d, "CDR(userfield)=", 15)) {
			char v[CDR_USERFIELD];
			copy_field(v, sizeof v, d + 15, len - 15);
			cdr_engine_userfield(e, s.name, v);
		}
		break;
	}
	case EV_HANGUP:
		if (!event_snapshot(f, m, "", t, &s))
			break;
		s.cause = hdr_int(m, "", "Cause", 0);
		s.flags |= SNAP_DEAD;
		cdr_engine_channel_update(e, &s, t);
		break;
	case EV_DIALBEGIN:
	case EV_DIALSTATE:
	case EV_DIALEND: {
		if (!event_snapshot(f, m, "Dest", t, &peer))
			break;
		bool has_caller = event_snapshot(f, m, "", t, &s);
		if (p->ev == EV_DIALBEGIN) {
			peer.flags |= has_caller ? SNAP_OUTGOING : SNAP_OUTGOING | SNAP_ORIGINATED;
			peer.flags |= SNAP_FEED_DIALBEGIN;
		} else if (!(peer.flags & SNAP_FEED_DIALBEGIN)) {
			/* dialed without a DialBegin: an attended transfer's consult call */
			peer.flags |= SNAP_OUTGOING;
		}
		char status[32] = "";
		if (p->ev != EV_DIALBEGIN)
			hdr(m, "", "DialStatus", status, sizeof status);
		cdr_engine_dial(e, has_caller ? &s : NULL, &peer, status, t);
		break;
	}
	case EV_BRIDGEENTER:
	case EV_BRIDGELEAVE: {
		if (!event_snapshot(f, m, "", t, &s))
			break;
		struct cdr_bridge_info b;
		char id[CDR_ID], sub[32], tech[32];
		bridge_info(m, &b, id, sub, tech);
		if (p->ev == EV_BRIDGEENTER) {
			cdr_engine_bridge_enter(e, &s, &b, t);
		} else {
			cdr_engine_bridge_leave(e, &s, &b, t);
			/* bridge_channel.c: a channel that leaves a bridge alive is no longer outgoing */
			if (strcmp(tech, "holding_bridge"))
				cdr_engine_channel_flags(e, s.uniqueid, 0, SNAP_OUTGOING);
		}
		break;
	}
	case EV_PARKEDCALL: {
		if (!event_snapshot(f, m, "Parkee", t, &s))
			break;
		char lot[CDR_STR];
		hdr(m, "", "ParkingLot", lot, sizeof lot);
		cdr_engine_parked(e, &s, lot, (unsigned)hdr_int(m, "", "ParkingSpace", 0), t);
		break;
	}
	case EV_TRANSFER: {
		char uid[CDR_ID];
		if (hdr(m, "", "TransfererUniqueid", uid, sizeof uid) || hdr(m, "", "OrigTransfererUniqueid", uid, sizeof uid))
			callgroups_transfer(f->calls, uid);
		break;
	}
	case EV_CEL: {
		char uid[CDR_ID], ama[24];
		if (hdr(m, "", "UniqueID", uid, sizeof uid) && hdr(m, "", "AMAFlags", ama, sizeof ama)) {
			int a = amaflags_number(ama);
			if (!a)
				break;
			if (cdr_engine_snapshot(e, uid, &s)) {
				/* not a snapshot update: only the cached value changes */
				if (a != s.amaflags)
					cdr_engine_amaflags(e, uid, a);
			} else if (a != 3 && strlen(uid) < sizeof f->early_ama[0].uid) {
				/* before the channel's first event: keep it for its creation */
				unsigned i = f->early_ama_next++ % (sizeof f->early_ama / sizeof f->early_ama[0]);
				snprintf(f->early_ama[i].uid, sizeof f->early_ama[i].uid, "%s", uid);
				f->early_ama[i].amaflags = a;
			}
		}
		break;
	}
	case EV_NONE:
		break;
	}
}

static void pop_one(struct cdr_feed *f)
{
	struct pending *p = &f->fifo[f->head];
	struct ami_msg m;
	memset(&m, 0, sizeof m);
	m.kind = AMI_EVENT;
	m.raw = f->q.data + p->off;
	m.raw_len = p->raw_len;
	m.full_len = p->raw_len;
	m.hdr = (const struct ami_header *)(f->q.data + p->off + ((p->raw_len + 7) & ~(size_t)7));
	m.nhdr = p->nhdr;
	if (p->twin != TW_NONE && p->ev != EV_CEL) {
		/* no twin came: forget that we were waiting for one */
		char uid[CDR_ID];
		size_t len = hdr(&m, "", "Uniqueid", uid, sizeof uid);
		struct twin_slot *s = twin_find(f, uid, len, p->twin);
		if (s && s->qidx == f->popped + 1)
			twin_delete(f, s);
	}
	run_event(f, p, &m);
	f->head = (f->head + 1) % f->cap;
	f->count--;
	f->popped++;
	if (!f->count) {
		buf_reset(&f->q);
	} else if (f->fifo[f->head].off > (1u << 20) && f->fifo[f->head].off > f->q.len / 2) {
		/* compact: move what is still waiting to the front */
		size_t base = f->fifo[f->head].off;
		buf_consume(&f->q, base);
		for (size_t i = 0, j = f->head; i < f->count; i++, j = (j + 1) % f->cap)
			f->fifo[j].off -= base;
	}
}

static enum twin twin_of(enum ev ev, const struct ami_msg *m)
{
	switch (ev) {
	case EV_NEWCHANNEL:
		return TW_START;
	case EV_NEWSTATE:
		return hdr_int(m, "", "ChannelState", 0) == 6 ? TW_ANSWER : TW_NONE;
	case EV_HANGUP:
		return TW_HANGUP;
	case EV_BRIDGEENTER:
		return TW_ENTER;
	case EV_BRIDGELEAVE:
		return TW_EXIT;
	default:
		return TW_NONE;
	}
}

static enum twin cel_twin(const struct ami_msg *m)
{
	char name[32];
	hdr(m, "", "EventName", name, sizeof name);
	if (!strcmp(name, "CHAN_START"))
		return TW_START;
	if (!strcmp(name, "ANSWER"))
		return TW_ANSWER;
	if (!strcmp(name, "HANGUP"))
		return TW_HANGUP;
	if (!strcmp(name, "BRIDGE_ENTER"))
		return TW_ENTER;
	if (!strcmp(name, "BRIDGE_EXIT"))
		return TW_EXIT;
	return TW_NONE;
}

void cdr_feed_event(struct cdr_feed *f, const struct ami_msg *m, const char *name, size_t len, uint64_t t,
		    uint64_t stamp, uint64_t pos)
{
	enum ev ev = event_kind(name, len);
	if (ev == EV_NONE)
		return;
	f->events++;
	if (t > f->newest_t)
		f->newest_t = t;
	enum twin tw = ev == EV_CEL ? cel_twin(m) : twin_of(ev, m);
	char uid[CDR_ID];
	size_t ulen = tw != TW_NONE ? hdr(m, "", "Uniqueid", uid, sizeof uid) : 0;
	if (tw != TW_NONE && ev == EV_CEL) {
		/* a channel event waiting for this CEL takes the earlier time */
		struct twin_slot *s = twin_find(f, uid, ulen, tw);
		if (s && s->qidx) {
			struct pending *p = &f->fifo[(f->head + (s->qidx - 1 - f->popped)) % f->cap];
			if (t < p->t)
				p->t = t;
			twin_delete(f, s);
			f->matched++;
		} else if (!s) {
			s = twin_insert(f, uid, ulen, tw);
			if (s)
				s->cel_t = t;
		}
	}
	uint64_t qidx = f->popped + f->count;
	if (tw != TW_NONE && ev != EV_CEL) {
		struct twin_slot *s = twin_find(f, uid, ulen, tw);
		if (s && s->cel_t) {
			if (s->cel_t < t)
				t = s->cel_t;
			twin_delete(f, s);
			f->matched++;
		} else if (!s) {
			s = twin_insert(f, uid, ulen, tw);
			if (s)
				s->qidx = qidx + 1;
		}
	}
	/* queue a copy: raw bytes, padding, header index */
	if (f->count == f->cap) {
		size_t ncap = f->cap ? 2 * f->cap : 1024;
		struct pending *n = xmalloc(ncap * sizeof *n);
		for (size_t i = 0; i < f->count; i++)
			n[i] = f->fifo[(f->head + i) % f->cap];
		free(f->fifo);
		f->fifo = n;
		f->cap = ncap;
		f->head = 0;
	}
	size_t off = f->q.len;
	size_t pad = ((m->raw_len + 7) & ~(size_t)7) - m->raw_len;
	static const char zeros[8];
	if (buf_append(&f->q, m->raw, m->raw_len) < 0 || buf_append(&f->q, zeros, pad) < 0 ||
	    buf_append(&f->q, m->hdr, m->nhdr * sizeof m->hdr[0]) < 0)
		abort(); /* uncapped buffer: cannot fail short of xmalloc dying first */
	struct pending *p = &f->fifo[(f->head + f->count) % f->cap];
	memset(p, 0, sizeof *p);
	p->t = t;
	p->stamp = stamp;
	p->pos = pos;
	p->off = off;
	p->raw_len = (uint32_t)m->raw_len;
	p->nhdr = (uint32_t)m->nhdr;
	p->ev = ev;
	p->twin = tw;
	f->count++;
	while (f->count > FEED_WINDOW_EVENTS ||
	       (f->count && f->fifo[f->head].t + FEED_WINDOW_US < f->newest_t))
		pop_one(f);
}

void cdr_feed_flush(struct cdr_feed *f, uint64_t now_us)
{
	while (f->count && (now_us == UINT64_MAX || f->fifo[f->head].t + 2 * FEED_WINDOW_US < now_us))
		pop_one(f);
}

static void on_leg(void *arg, const struct cdr_row *r)
{
	struct cdr_feed *f = arg;
	callgroups_leg(f->calls, r);
	if (f->sink.leg)
		f->sink.leg(f->sink.arg, r, f->cur_stamp);
}

static void on_call(void *arg, const struct call_row *c)
{
	struct cdr_feed *f = arg;
	if (f->sink.call)
		f->sink.call(f->sink.arg, c, f->cur_stamp);
}

static void on_seen(void *arg, const char *uniqueid, const char *linkedid, bool incomplete)
{
	struct cdr_feed *f = arg;
	callgroups_channel(f->calls, uniqueid, linkedid, f->cur_pos, incomplete);
}

static void on_gone(void *arg, const char *uniqueid)
{
	struct cdr_feed *f = arg;
	callgroups_channel_gone(f->calls, uniqueid);
}

struct cdr_feed *cdr_feed_new(const struct cdr_options *opt, const struct cdr_feed_sink *sink)
{
	struct cdr_feed *f = xcalloc(1, sizeof *f);
	f->opt = *opt;
	f->sink = *sink;
	f->eng = cdr_engine_new(opt, on_leg, f);
	cdr_engine_on_gone(f->eng, on_gone, f);
	cdr_engine_on_seen(f->eng, on_seen, f);
	f->calls = callgroups_new(on_call, f);
	f->twins = xcalloc(TWIN_SLOTS, sizeof *f->twins);
	buf_init(&f->q, 0);
	return f;
}

void cdr_feed_free(struct cdr_feed *f)
{
	if (!f)
		return;
	cdr_engine_on_gone(f->eng, NULL, NULL);
	cdr_engine_free(f->eng);
	callgroups_free(f->calls);
	buf_release(&f->q);
	free(f->fifo);
	free(f->twins);
	free(f);
}

size_t cdr_feed_expire(struct cdr_feed *f, uint64_t idle_before_us)
{
	return cdr_engine_expire(f->eng, idle_before_us);
}

uint64_t cdr_feed_oldest_pos(const struct cdr_feed *f)
{
	uint64_t oldest = callgroups_oldest_pos(f->calls);
	if (f->count && f->fifo[f->head].pos < oldest)
		oldest = f->fifo[f->head].pos;
	return oldest;
}

uint64_t cdr_feed_done_stamp(const struct cdr_feed *f)
{
	return f->cur_stamp;
}

uint64_t cdr_feed_stream_time(const struct cdr_feed *f)
{
	return f->newest_t;
}

void cdr_feed_stats(const struct cdr_feed *f, struct cdr_feed_stats *st)
{
	st->events = f->events;
	st->cel_matched = f->matched;
	st->live = cdr_engine_live(f->eng, NULL);
	st->open_calls = callgroups_open(f->calls);
	st->waiting = f->count;
}
