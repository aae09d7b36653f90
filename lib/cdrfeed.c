/*
 * cdrfeed.c - AMI events -> cdrengine messages (see cdrfeed.h).
 *
 * Events the engine needs are copied (raw bytes and header index) into a
 * FIFO and run when they leave the reorder window; the copy lives in one
 * growing byte buffer that is compacted as the FIFO drains, so there is no
 * allocation per event.
 */
#include "cdrfeed.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "strparse.h"
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
	EV_ORIGINATE,     /* OriginateResponse: the application an Originate runs */
	EV_HANGUPHANDLER, /* HangupHandlerRun: hang-up logic */
};

static const struct {
	const char *name;
	size_t len;
	enum ev ev;
} event_names[] = {
#define EVN(s, e) { s, sizeof s - 1, e }
	EVN("Newchannel", EV_NEWCHANNEL), EVN("Newstate", EV_NEWSTATE), EVN("Newexten", EV_NEWEXTEN),
	EVN("NewCallerid", EV_SNAPSHOT), EVN("NewConnectedLine", EV_SNAPSHOT),
	EVN("NewAccountCode", EV_SNAPSHOT), EVN("Rename", EV_SNAPSHOT), EVN("VarSet", EV_VARSET),
	EVN("Hangup", EV_HANGUP), EVN("DialBegin", EV_DIALBEGIN), EVN("DialState", EV_DIALSTATE),
	EVN("DialEnd", EV_DIALEND), EVN("BridgeEnter", EV_BRIDGEENTER), EVN("BridgeLeave", EV_BRIDGELEAVE),
	EVN("ParkedCall", EV_PARKEDCALL), EVN("BlindTransfer", EV_TRANSFER),
	EVN("AttendedTransfer", EV_TRANSFER), EVN("CEL", EV_CEL), EVN("OriginateResponse", EV_ORIGINATE),
	EVN("HangupHandlerRun", EV_HANGUPHANDLER),
#undef EVN
};

static enum ev event_kind(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof event_names / sizeof event_names[0]; i++)
		if (event_names[i].len == len && !memcmp(event_names[i].name, name, len))
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
	bool odd;         /* its time was made up (clock stage): its twin's wins */
};

#define TWIN_SLOTS 8192u
#define FEED_FLAGGED 256

/* How an event's time is known. */
enum tsrc {
	TS_HEADER,  /* its Timestamp header */
	TS_RECV,    /* no Timestamp header: the collector's receive time */
	TS_BAD,     /* a Timestamp header that is not a time: receive time */
};

/* An event waiting in the clock stage. */
struct staged {
	uint64_t t, stamp, pos, rpos; /* rpos: where a replay must start to decide t the same */
	size_t off;
	uint32_t raw_len, nhdr;
	enum ev ev;
	enum tsrc src;
	bool ready;                   /* t is final except for the jump check */
	int64_t uid_sec;              /* Newchannel: the second in its Uniqueid (-1: none) */
};

struct twin_slot {
	bool used;
	enum twin twin;
	uint64_t cel_t;   /* a CEL came first: its time */
	uint64_t cel_pos, cel_idx; /* ... its pos, and feed_insert count then */
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
	/* Originate to an application: the app each originated channel runs,
	 * noted when its OriginateResponse is read (it may follow the answer) */
	struct {
		char uid[64];
		char app[CDR_STR], data[CDR_STR];
		bool used;
	} orig_app[64];
	unsigned orig_app_next;
	/* ParkedCall of a channel still in its bridge: Asterisk publishes it
	 * after the BridgeLeave (pull from the old bridge, then push into the
	 * parking one); AMI may write it first.  Held until that leave. */
	struct parked_hold {
		bool used;
		struct cdr_snapshot parkee;
		char lot[CDR_STR];
		unsigned space;
		uint64_t t;
	} parked[8];
	struct cdr_feed_caveat caveats[CAVEAT_N];
	uint64_t events, matched;
	uint64_t inserted;       /* events through feed_insert (twin distances) */
	/* the clock stage: events wait here until their time is decided */
	struct buf sq;
	struct staged *stage;    /* ring */
	size_t scap, shead, scount;
	uint64_t spopped;        /* events that left the stage */
	uint64_t run_first;      /* no Timestamp: absolute stage index of the open read run */
	bool run_open, seen_ts;
	unsigned no_ts_streak;   /* events in a row without a Timestamp header */
	uint64_t prev_run_t, prev_run_pos; /* the read before the open run */
	bool have_prev_run;
	uint64_t clock;          /* the stream's clock: newest time accepted in line */
	bool have_clock;
	/* channels and linkedids of events whose time was odd (flag their rows) */
	char flagged[FEED_FLAGGED][CDR_ID];
	unsigned flagged_next;
	uint64_t odd_events;
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
		/* CEL twins too old to match any more go first */
		for (uint32_t i = 0; i < TWIN_SLOTS; i++)
			while (f->twins[i].used && f->twins[i].cel_t && f->inserted - f->twins[i].cel_idx > FEED_TWIN_SPAN)
				twin_delete(f, &f->twins[i]);
	}
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

static inline bool word_has_nul(uint64_t w)
{
	return ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull) != 0;
}

/* Copy len bytes that hold no NUL, a word at a time (the last word may
 * overlap the one before); false at a NUL (dst then holds junk). */
static inline bool copy_no_nul(char *dst, const char *src, size_t len)
{
	if (len < 8) {
		for (size_t i = 0; i < len; i++)
			if (!(dst[i] = src[i]))
				return false;
		return true;
	}
	uint64_t w;
	for (size_t i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, src + i, 8);
		if (word_has_nul(w))
			return false;
		memcpy(dst + i, &w, 8);
	}
	memcpy(&w, src + len - 8, 8);
	if (word_has_nul(w))
		return false;
	memcpy(dst + len - 8, &w, 8);
	return true;
}

/* copy_cstr() of a value too long or holding a NUL. */
static void copy_cstr_slow(char *dst, size_t size, const char *src, size_t len)
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

/* Copy a header value into a C string of size bytes.  A NUL byte in the
 * value becomes U+FFFD, as every stored text column has it (copyfmt.h), so
 * a value is never cut at an embedded NUL (cdr.clid, src, ... = cel). */
static inline void copy_cstr(char *dst, size_t size, const char *src, size_t len)
{
	if (len < size && copy_no_nul(dst, src, len)) { /* the common case: it fits, no NUL */
		dst[len] = '\0';
		return;
	}
	copy_cstr_slow(dst, size, src, len);
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

/* The snapshot keys of each length (at most 3 share one), -1 after the last. */
static signed char snap_by_len[64][4];

static void snap_by_len_init(void)
{
	memset(snap_by_len, -1, sizeof snap_by_len);
	for (size_t i = 0; i < SF_N; i++) {
		size_t l = strlen(snap_keys[i]), k = 0;
		while (snap_by_len[l][k] >= 0)
			k++;
		snap_by_len[l][k] = (signed char)i; /* in key order: first match wins as before */
	}
}

static void snap_headers(const struct ami_msg *m, const char *prefix, const struct ami_header *out[SF_N])
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	(void)pthread_once(&once, snap_by_len_init);
	size_t plen = strlen(prefix);
	memset(out, 0, SF_N * sizeof out[0]);
	for (size_t h = 0; h < m->nhdr; h++) {
		const char *key = m->raw + m->hdr[h].key_off;
		size_t kl = m->hdr[h].key_len;
		if (kl <= plen || kl - plen >= 64 || snap_by_len[kl - plen][0] < 0 ||
		    (plen && !ami_key_eq(key, plen, prefix, plen)))
			continue;
		key += plen;
		kl -= plen;
		const signed char *cand = snap_by_len[kl];
		for (size_t c = 0; c < 4 && cand[c] >= 0; c++) {
			size_t i = (size_t)cand[c];
			if (!out[i] && (key[0] | 32) == (snap_keys[i][0] | 32) && ami_key_eq(key, kl, snap_keys[i], kl)) {
				out[i] = &m->hdr[h];
				break;
			}
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
	if (h->val_len <= 9) { /* plain digits (the usual value): what atoi() gives, without the copy */
		const char *d = m->raw + h->val_off;
		int v = 0;
		size_t i = 0;
		while (i < h->val_len && d[i] >= '0' && d[i] <= '9')
			v = v * 10 + (d[i++] - '0');
		if (i == h->val_len)
			return v;
	}
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
#define SET_FIELD(dst, src) copy_field((dst), sizeof(dst), (src), strlen(src))

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

/* Variables set inside an ast_channel_stage_snapshot() block that ends
 * right after them (bridge.c, app_dial.c, app_queue.c, parking): the block
 * publishes a channel snapshot even when manager.conf has no channelvars. */
static bool staged_variable(const char *var)
{
	static const char *const staged[] = { "BRIDGEPEER", "BRIDGEPVTCALLID", "DIALEDPEERNUMBER", "RINGTIME_MS",
					      "PROGRESSTIME_MS", "DIALEDTIME_MS", "PARKER_FLAT" };
	for (size_t i = 0; i < sizeof staged / sizeof staged[0]; i++)
		if (!strcmp(var, staged[i]))
			return true;
	return false;
}

/* A channel's creation message time t, bounded by its Uniqueid
 * ("[systemname-]<epoch>.<n>", the epoch read when Asterisk allocated the
 * channel, just before publishing it): an event written just past a second
 * boundary belongs to the second before when the Uniqueid says so. */
static uint64_t creation_time(const char *uid, uint64_t t)
{
	const char *p = strrchr(uid, '-');
	p = p ? p + 1 : uid;
	uint64_t sec = 0;
	size_t n = 0;
	for (; p[n] >= '0' && p[n] <= '9' && n < 12; n++)
		sec = sec * 10 + (uint64_t)(p[n] - '0');
	if (!n || p[n] != '.')
		return t; /* a custom ChannelId: no clock in it */
	uint64_t last = sec * 1000000 + 999999;
	/* Only a boundary case.  Allocation comes before the publish (one
	 * second after the Uniqueid's is possible: 315 us and more past the
	 * boundary were the next second in the captures), and AMI writes the
	 * event 10 us to 1.5 ms after the publish (17 and 39 us past the
	 * boundary were still the Uniqueid's second): within 100 us, the
	 * Uniqueid's second wins. */
	if (t > last && t - last <= 100)
		return last;
	return t;
}

/* ast_true(): yes, true, y, t, 1, on. */
static bool ast_true_str(const char *v)
{
	static const char *const yes[] = { "yes", "true", "y", "t", "1", "on" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (!strcasecmp(v, yes[i]))
			return true;
	return false;
}

/* "NAME(ARG[,...])" with NAME matched case-insensitively: ARG's first field. */
static bool func_arg(const char *lhs, size_t len, const char *name, char *arg, size_t size)
{
	size_t nl = strlen(name);
	while (len && (*lhs == ' ' || *lhs == '\t'))
		lhs++, len--;
	if (len < nl + 2 || strncasecmp(lhs, name, nl) || lhs[nl] != '(' || lhs[len - 1] != ')')
		return false;
	const char *a = lhs + nl + 1;
	size_t alen = len - nl - 2;
	alen = split_at(a, alen, ',');
	while (alen && (a[alen - 1] == ' ' || a[alen - 1] == '\t'))
		alen--;
	copy_field(arg, size, a, alen);
	return true;
}

/* Is option letter opt in an app's option string (letters, some with (args))? */
static bool has_option(const char *opts, size_t len, char opt)
{
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		if (opts[i] == '(')
			depth++;
		else if (opts[i] == ')' && depth > 0)
			depth--;
		else if (!depth && opts[i] == opt)
			return true;
	}
	return false;
}

/* The n-th comma-separated argument of an app's data (0-based). */
static bool app_arg(const char *d, size_t len, unsigned n, const char **arg, size_t *alen)
{
	for (;;) {
		size_t end = split_at(d, len, ',');
		if (!n) {
			*arg = d;
			*alen = end;
			return true;
		}
		if (end == len)
			return false;
		d += end + 1;
		len -= end + 1;
		n--;
	}
}

/* Does a Dial() with this data carry option opt (Dial(dest,timeout,options))? */
static bool dial_option(const struct cdr_snapshot *caller, char opt)
{
	const char *o;
	size_t olen;
	if (strcmp(caller->appl, "Dial"))
		return false;
	return app_arg(caller->data, strlen(caller->data), 2, &o, &olen) && has_option(o, olen, opt);
}

/* Gosub pushes a frame saving the SUBROUTINE flag and sets it; Return
 * restores the saved flag, StackPop drops the frame and keeps the flag. */
static void gosub_push(struct cdr_snapshot *s)
{
	if (s->gosub_depth < SNAP_GOSUB_DEPTH) {
		uint64_t bit = 1ull << s->gosub_depth;
		s->gosub_saved = (s->flags & SNAP_SUBROUTINE) ? s->gosub_saved | bit : s->gosub_saved & ~bit;
	}
	s->gosub_depth++;
	s->flags |= SNAP_SUBROUTINE;
	s->flags &= ~(unsigned)SNAP_FEED_GOSUB;
}

static void gosub_pop(struct cdr_snapshot *s, bool restore)
{
	if (!s->gosub_depth)
		return;
	s->gosub_depth--;
	if (restore && s->gosub_depth < SNAP_GOSUB_DEPTH) {
		if (s->gosub_saved & (1ull << s->gosub_depth))
			s->flags |= SNAP_SUBROUTINE;
		else
			s->flags &= ~(unsigned)SNAP_SUBROUTINE;
	}
}

/* One Set() assignment NAME=value that changes a CDR (func_cdr.c). */
static void apply_assignment(struct cdr_feed *f, struct cdr_snapshot *s, const char *d, size_t len)
{
	struct cdr_engine *e = f->eng;
	size_t eq = split_at(d, len, '=');
	if (eq == len)
		return;
	char arg[32], value[CDR_USERFIELD];
	copy_field(value, sizeof value, d + eq + 1, len - eq - 1);
	if (func_arg(d, eq, "CDR", arg, sizeof arg)) {
		if (!strcasecmp(arg, "userfield")) {
			cdr_engine_userfield(e, s->name, value);
		} else if (!strcasecmp(arg, "amaflags")) {
			int a = value[0] >= '0' && value[0] <= '9' ? atoi(value) : cdr_amaflags_number(value, strlen(value));
			s->amaflags = a;
			cdr_engine_amend(e, s);
		}
		/* accountcode shows as NewAccountCode; peeraccount is ignored by Asterisk */
	} else if (func_arg(d, eq, "CHANNEL", arg, sizeof arg)) {
		if (!strcasecmp(arg, "amaflags")) {
			s->amaflags = cdr_amaflags_number(value, strlen(value));
			cdr_engine_amend(e, s);
		}
	} else if (func_arg(d, eq, "CDR_PROP", arg, sizeof arg) && value[0]) {
		unsigned prop = !strcasecmp(arg, "disable") ? CDR_PROP_DISABLE_ALL
			      : !strcasecmp(arg, "party_a") ? CDR_PROP_PARTY_A : 0;
		if (prop && ast_true_str(value))
			cdr_engine_set_property(e, s->name, prop);
		else if (prop)
			cdr_engine_clear_property(e, s->name, prop);
	}
}

/* What an application that just started on a channel does to its CDRs and
 * to what cdr.c sees of it next.  s: the channel's snapshot as cached. */
static void run_app(struct cdr_feed *f, struct cdr_snapshot *s, const char *app, const char *d, size_t len,
		    uint64_t t)
{
	struct cdr_engine *e = f->eng;
	if (!strcasecmp(app, "Set")) {
		apply_assignment(f, s, d, len);
	} else if (!strcasecmp(app, "MSet")) {
		for (;;) {
			size_t end = split_at(d, len, ',');
			apply_assignment(f, s, d, end);
			if (end == len)
				break;
			d += end + 1;
			len -= end + 1;
		}
	} else if (!strcasecmp(app, "NoCDR")) {
		cdr_engine_set_property(e, s->name, CDR_PROP_DISABLE_ALL);
	} else if (!strcasecmp(app, "ResetCDR")) {
		if (has_option(d, len, 'e'))
			cdr_engine_clear_property(e, s->name, CDR_PROP_DISABLE_ALL);
		cdr_engine_reset(e, s->name, t);
	} else if (!strcasecmp(app, "ForkCDR")) {
		unsigned o = 0;
		o |= has_option(d, len, 'a') ? CDR_FORK_SET_ANSWER : 0;
		o |= has_option(d, len, 'e') ? CDR_FORK_FINALIZE : 0;
		o |= has_option(d, len, 'r') ? CDR_FORK_RESET : 0;
		o |= has_option(d, len, 'v') ? CDR_FORK_KEEP_VARS : 0;
		cdr_engine_fork(e, s->name, o, t);
	} else if (!strcasecmp(app, "Gosub")) {
		/* the frame is pushed (and the flag set) after its ARGn/ARGC VarSets */
		s->flags |= SNAP_FEED_GOSUB;
		cdr_engine_amend(e, s);
	} else if (!strcasecmp(app, "Return")) {
		gosub_pop(s, true);
		cdr_engine_amend(e, s);
	} else if (!strcasecmp(app, "StackPop")) {
		gosub_pop(s, false);
		cdr_engine_amend(e, s);
	}
}

/* The application an originated channel runs (OriginateResponse), as the
 * snapshot update pbx_exec() publishes: no Newexten shows it. */
static void originate_app_apply(struct cdr_feed *f, const char *uid, uint64_t t)
{
	for (size_t i = 0; i < sizeof f->orig_app / sizeof f->orig_app[0]; i++) {
		if (f->orig_app[i].used || strcmp(f->orig_app[i].uid, uid))
			continue;
		struct cdr_snapshot s;
		if (!cdr_engine_snapshot(f->eng, uid, &s) || !(s.flags & SNAP_ORIGINATED) || s.state != 6)
			return;
		f->orig_app[i].used = true;
		SET_FIELD(s.appl, f->orig_app[i].app);
		SET_FIELD(s.data, f->orig_app[i].data);
		cdr_engine_channel_update(f->eng, &s, t);
		return;
	}
}

static void caveat_note(struct cdr_feed *f, enum cdr_caveat k, const char *channel, uint64_t t)
{
	struct cdr_feed_caveat *c = &f->caveats[k];
	if (!c->count++) {
		SET_FIELD(c->example, channel);
		c->first_us = t;
	}
	if (t > c->last_us)
		c->last_us = t;
}

void cdr_feed_caveat_line(const struct cdr_feed *f, enum cdr_caveat k, const char *node, char *out, size_t size)
{
	const struct cdr_feed_caveat *c = &f->caveats[k];
	snprintf(out, size, "node %s: %" PRIu64 " leg(s), e.g. %s: %s", node, c->count, c->example,
		 cdr_feed_caveat_text(k));
}

const char *cdr_feed_caveat_key(enum cdr_caveat k)
{
	return k == CAVEAT_ORIGINATE_APP ? "originate_app" : "";
}

const char *cdr_feed_caveat_ami_name(enum cdr_caveat k)
{
	return k == CAVEAT_ORIGINATE_APP ? "OriginateResponse" : "";
}

const struct cdr_feed_caveat *cdr_feed_caveat(const struct cdr_feed *f, enum cdr_caveat k)
{
	return &f->caveats[k];
}

const char *cdr_feed_caveat_text(enum cdr_caveat k)
{
	switch (k) {
	case CAVEAT_ORIGINATE_APP:
		return "lastapp/lastdata unknown for channels an AMI Originate sent straight to an application "
		       "(no OriginateResponse was received): send the Originate action with 'Async: true' so "
		       "Asterisk sends OriginateResponse to every session with read = call";
	case CAVEAT_N:
		break;
	}
	return "";
}

/* Run a held ParkedCall of this channel now (at no earlier than t). */
static void parked_release(struct cdr_feed *f, const char *uid, uint64_t t)
{
	for (size_t i = 0; i < sizeof f->parked / sizeof f->parked[0]; i++) {
		struct parked_hold *h = &f->parked[i];
		if (!h->used || strcmp(h->parkee.uniqueid, uid))
			continue;
		h->used = false;
		/* the message carries the snapshot of when it is published: now */
		struct cdr_snapshot now;
		if (!cdr_engine_snapshot(f->eng, uid, &now))
			now = h->parkee;
		cdr_engine_parked(f->eng, &now, h->lot, h->space, h->t > t ? h->t : t);
	}
}

static bool parked_hold(struct cdr_feed *f, const struct cdr_snapshot *s, const char *lot, unsigned space,
			uint64_t t)
{
	for (size_t i = 0; i < sizeof f->parked / sizeof f->parked[0]; i++) {
		struct parked_hold *h = &f->parked[i];
		if (h->used)
			continue;
		h->used = true;
		h->parkee = *s;
		SET_FIELD(h->lot, lot);
		h->space = space;
		h->t = t;
		return true;
	}
	return false;
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
	case EV_NEWCHANNEL: {
		/* the Uniqueid tells the second the channel was created in */
		char uid[CDR_ID];
		if (hdr(m, "", "Uniqueid", uid, sizeof uid))
			t = creation_time(uid, t);
		if (event_snapshot(f, m, "", t, &s))
			cdr_engine_channel_update(e, &s, t);
		break;
	}
	case EV_NEWSTATE:
	case EV_SNAPSHOT:
		if (event_snapshot(f, m, "", t, &s))
			cdr_engine_channel_update(e, &s, t);
		break;
	case EV_VARSET: {
		/* a snapshot update only when manager.conf has channelvars */
		if (!event_snapshot(f, m, "", t, &s))
			break;
		char var[32];
		hdr(m, "", "Variable", var, sizeof var);
		if (f->channelvars || staged_variable(var))
			cdr_engine_channel_update(e, &s, t);
		/* Gosub's last frame variable: the SUBROUTINE flag is set right after */
		if (!strcmp(var, "ARGC") &&
		    cdr_engine_snapshot(e, s.uniqueid, &s)) {
			gosub_push(&s);
			cdr_engine_amend(e, &s);
		}
		break;
	}
	case EV_NEWEXTEN: {
		if (!event_snapshot(f, m, "", t, &s))
			break;
		struct cdr_snapshot old;
		bool known = cdr_engine_snapshot(e, s.uniqueid, &old);
		hdr(m, "", "Application", s.appl, sizeof s.appl);
		hdr(m, "", "AppData", s.data, sizeof s.data);
		if (!strcmp(s.appl, "AppDial") || !strcmp(s.appl, "AppQueue"))
			s.flags |= SNAP_OUTGOING;
		if (!strcmp(s.exten, "h"))
			s.flags |= SNAP_HANGUP_EXEC;
		/* a Gosub whose ARGC VarSet we did not see (VarSet disabled) */
		if (s.flags & SNAP_FEED_GOSUB)
			gosub_push(&s);
		/* Dial(...,G(...)): the callee leaves for the dialplan, no longer outgoing */
		if ((s.flags & SNAP_FEED_GOTO) && known &&
		    (strcmp(old.context, s.context) || strcmp(old.exten, s.exten) || old.priority != s.priority))
			s.flags &= ~(unsigned)(SNAP_OUTGOING | SNAP_FEED_GOTO);
		cdr_engine_channel_update(e, &s, t);
		size_t len;
		const char *d = ami_get(m, "AppData", &len);
		char app[CDR_STR], args[CDR_USERFIELD];
		copy_field(app, sizeof app, s.appl, strlen(s.appl));
		if (!strcasecmp(s.appl, "ExecIf")) {
			if (!d || !execif_branch(d, len, app, sizeof app, args, sizeof args))
				break;
			/* the app ExecIf runs is a snapshot update with no Newexten */
			copy_field(s.appl, sizeof s.appl, app, strlen(app));
			copy_field(s.data, sizeof s.data, args, strlen(args));
			cdr_engine_channel_update(e, &s, t);
			d = args;
			len = strlen(args);
		}
		run_app(f, &s, app, d ? d : "", d ? len : 0, t);
		break;
	}
	case EV_ORIGINATE: {
		char uid[CDR_ID];
		if (hdr(m, "", "Uniqueid", uid, sizeof uid))
			originate_app_apply(f, uid, t);
		break;
	}
	case EV_HANGUPHANDLER: {
		char uid[CDR_ID];
		if (hdr(m, "", "Uniqueid", uid, sizeof uid) && cdr_engine_snapshot(e, uid, &s)) {
			s.flags |= SNAP_HANGUP_EXEC;
			cdr_engine_amend(e, &s);
		}
		break;
	}
	case EV_HANGUP:
		if (!event_snapshot(f, m, "", t, &s))
			break;
		parked_release(f, s.uniqueid, t);
		/* answered, originated, never ran dialplan: an application we cannot name */
		if ((s.flags & SNAP_ORIGINATED) && s.state == 6 && !strncasecmp(s.appl, "AppDial", 7))
			caveat_note(f, CAVEAT_ORIGINATE_APP, s.name, t);
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
			if (has_caller && dial_option(&s, 'G'))
				peer.flags |= SNAP_FEED_GOTO;
			if (has_caller && dial_option(&s, 'U'))
				peer.flags |= SNAP_FEED_GOSUB; /* the callee runs a Gosub when answered */
		} else if (!(peer.flags & SNAP_FEED_DIALBEGIN)) {
			/* dialed without a DialBegin: an attended transfer's consult call */
			peer.flags |= SNAP_OUTGOING;
		}
		char status[32] = "";
		if (p->ev != EV_DIALBEGIN)
			hdr(m, "", "DialStatus", status, sizeof status);
		cdr_engine_dial(e, has_caller ? &s : NULL, &peer, status, t);
		if (!strcmp(status, "ANSWER") && !has_caller)
			originate_app_apply(f, peer.uniqueid, t);
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
			parked_release(f, s.uniqueid, t);
			cdr_engine_bridge_enter(e, &s, &b, t);
		} else {
			cdr_engine_bridge_leave(e, &s, &b, t);
			parked_release(f, s.uniqueid, t);
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
		unsigned space = (unsigned)hdr_int(m, "", "ParkingSpace", 0);
		if (!cdr_engine_bridged(e, s.uniqueid) || !parked_hold(f, &s, lot, space, t))
			cdr_engine_parked(e, &s, lot, space, t);
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
			int a = cdr_amaflags_number(ama, strlen(ama));
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

/* A waiting event is a copy in a byte buffer: its raw bytes, padding to 8,
 * then its header index (offsets into the raw bytes).  Returns the offset. */
static size_t msg_copy(struct buf *q, const struct ami_msg *m)
{
	size_t off = q->len;
	size_t pad = ((m->raw_len + 7) & ~(size_t)7) - m->raw_len;
	static const char zeros[8];
	if (buf_append(q, m->raw, m->raw_len) < 0 || buf_append(q, zeros, pad) < 0 ||
	    buf_append(q, m->hdr, m->nhdr * sizeof m->hdr[0]) < 0)
		abort(); /* uncapped buffer: cannot fail short of xmalloc dying first */
	return off;
}

/* The message a msg_copy() at off holds. */
static void msg_at(const struct buf *q, size_t off, uint32_t raw_len, uint32_t nhdr, struct ami_msg *m)
{
	memset(m, 0, sizeof *m);
	m->kind = AMI_EVENT;
	m->raw = q->data + off;
	m->raw_len = raw_len;
	m->full_len = raw_len;
	m->hdr = (const struct ami_header *)(q->data + off + ((raw_len + 7) & ~(size_t)7));
	m->nhdr = nhdr;
}

static void pop_one(struct cdr_feed *f)
{
	struct pending *p = &f->fifo[f->head];
	struct ami_msg m;
	msg_at(&f->q, p->off, p->raw_len, p->nhdr, &m);
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
	} else if (f->fifo[f->head].off > (4u << 20) && f->fifo[f->head].off / 3 > f->q.len - f->fifo[f->head].off) {
		/* compact: move what is still waiting (the window, under a
		 * quarter of the buffer) to the front: a byte read moves at
		 * most a third of a byte; the buffer stays under 4 MB + 4x the window */
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

/* Note the application of a successful Originate when the response is read:
 * it may come after the channel answered, within the reorder window. */
static void originate_note(struct cdr_feed *f, const struct ami_msg *m)
{
	char resp[16], uid[CDR_ID], app[CDR_STR];
	if (!hdr(m, "", "Response", resp, sizeof resp) || strcmp(resp, "Success") ||
	    !hdr(m, "", "Application", app, sizeof app) || !hdr(m, "", "Uniqueid", uid, sizeof uid) ||
	    strlen(uid) >= sizeof f->orig_app[0].uid)
		return;
	unsigned i = f->orig_app_next++ % (sizeof f->orig_app / sizeof f->orig_app[0]);
	SET_FIELD(f->orig_app[i].uid, uid);
	SET_FIELD(f->orig_app[i].app, app);
	hdr(m, "", "Data", f->orig_app[i].data, sizeof f->orig_app[i].data);
	f->orig_app[i].used = false;
}

/* An event whose time is decided: twin matching, then the reorder window. */
static void feed_insert(struct cdr_feed *f, const struct ami_msg *m, enum ev ev, uint64_t t, uint64_t stamp,
			uint64_t pos, bool odd)
{
	f->inserted++;
	if (ev == EV_ORIGINATE)
		originate_note(f, m);
	if (t > f->newest_t)
		f->newest_t = t;
	enum twin tw = ev == EV_CEL ? cel_twin(m) : twin_of(ev, m);
	if (odd && ev == EV_CEL)
		tw = TW_NONE; /* a made-up time is nobody's better bound */
	char uid[CDR_ID];
	size_t ulen = tw != TW_NONE ? hdr(m, "", "Uniqueid", uid, sizeof uid) : 0;
	if (tw != TW_NONE && ev == EV_CEL) {
		/* a channel event waiting for this CEL takes the earlier time */
		struct twin_slot *s = twin_find(f, uid, ulen, tw);
		if (s && s->qidx) {
			struct pending *p = &f->fifo[(f->head + (s->qidx - 1 - f->popped)) % f->cap];
			if (t < p->t || p->odd)
				p->t = t;
			twin_delete(f, s);
			f->matched++;
		} else if (!s) {
			s = twin_insert(f, uid, ulen, tw);
			if (s) {
				s->cel_t = t;
				s->cel_pos = pos;
				s->cel_idx = f->inserted;
			}
		}
	}
	uint64_t qidx = f->popped + f->count;
	if (tw != TW_NONE && ev != EV_CEL) {
		struct twin_slot *s = twin_find(f, uid, ulen, tw);
		if (s && s->cel_t && f->inserted - s->cel_idx > FEED_TWIN_SPAN) {
			/* too far back to be this event's twin (and a resumed run,
			 * which may not read that far back, must decide the same) */
			twin_delete(f, s);
			s = NULL;
		}
		if (s && s->cel_t) {
			if (s->cel_t < t || odd)
				t = s->cel_t;
			/* a resumed run must read the CEL again to decide the same */
			if (s->cel_pos < pos)
				pos = s->cel_pos;
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
	size_t off = msg_copy(&f->q, m);
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
	p->odd = odd;
	f->count++;
	while (f->count > FEED_WINDOW_EVENTS ||
	       (f->count && f->fifo[f->head].t + FEED_WINDOW_US < f->newest_t))
		pop_one(f);
}

/* ------------------------------------------------------------ the clock stage
 *
 * Every event waits here until its time is decided, so that the reorder
 * window, the grace period and the rows only ever see times in line with
 * the stream:
 *  - without a Timestamp header the time is the collector's receive time,
 *    shared by all the records of one read(): such a run is spread back
 *    over the time since the previous read (at most FEED_RUN_PACE_US per
 *    event), within the second each new channel's Uniqueid names;
 *  - a time more than FEED_CLOCK_JUMP_US away from the stream's clock is
 *    judged by the FEED_CLOCK_LOOKAHEAD events after it: if most of them
 *    agree with it, the clock moved (an idle gap, a clock that was set);
 *    otherwise the event is odd: it runs at the time of the first event
 *    after it that is in line (else at the clock), its made-up time never
 *    wins a twin match, and its channel's legs and call are flagged
 *    clock_fault;
 *  - a Timestamp that is not a time, or missing in a stream that has them,
 *    is odd as well.
 * The decisions depend only on the events themselves (never on where a run
 * stopped reading), and each event carries the position a resumed run must
 * read from to decide the same (rpos). */

static uint64_t tdist(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

static struct staged *st_at(struct cdr_feed *f, uint64_t abs)
{
	return &f->stage[(f->shead + (size_t)(abs - f->spopped)) % f->scap];
}

static void stage_msg(const struct cdr_feed *f, const struct staged *e, struct ami_msg *m)
{
	msg_at(&f->sq, e->off, e->raw_len, e->nhdr, m);
}

/* The second Asterisk created the channel in, from its Uniqueid
 * ([systemname-]epoch.n); -1 if it does not look like one. */
static int64_t uid_second(const struct ami_msg *m)
{
	char uid[CDR_ID];
	if (!hdr(m, "", "Uniqueid", uid, sizeof uid))
		return -1;
	const char *d = strrchr(uid, '-');
	d = d ? d + 1 : uid;
	int64_t v = 0;
	int n = 0;
	for (; *d >= '0' && *d <= '9' && n < 12; d++, n++)
		v = v * 10 + (*d - '0');
	return n >= 9 && n <= 11 && *d == '.' ? v : -1;
}

/* The records of one read(): spread them over the time since the previous
 * read, at most FEED_RUN_PACE_US each, then within the seconds their
 * channels' Uniqueids name (a Newchannel of second S is at or after S and
 * before S + 1, and so is the order of the stream). */
static void run_close(struct cdr_feed *f)
{
	uint64_t end = f->spopped + f->scount, n = end - f->run_first;
	f->run_open = false;
	if (!n)
		return;
	struct staged *first = st_at(f, f->run_first);
	uint64_t r = first->t;
	uint64_t span = n * FEED_RUN_PACE_US < r ? n * FEED_RUN_PACE_US : r;
	uint64_t lo = r - span;
	if (f->have_prev_run && f->prev_run_t < r && f->prev_run_t > lo)
		lo = f->prev_run_t;
	uint64_t ctx = f->have_prev_run ? f->prev_run_pos : first->pos;
	for (uint64_t i = 0; i < n; i++) {
		struct staged *e = st_at(f, f->run_first + i);
		e->t = lo + (r - lo) * (i + 1) / n;
		if (ctx < e->rpos)
			e->rpos = ctx;
	}
	/* a Uniqueid's second counts only when the clocks look alike (the
	 * PBX's second not after, and at most 2 s before, the receive time) */
	uint64_t ceil = UINT64_MAX;
	for (uint64_t i = n; i-- > 0;) {
		struct staged *e = st_at(f, f->run_first + i);
		if (e->uid_sec >= 0 && (uint64_t)e->uid_sec * 1000000u <= r && r < ((uint64_t)e->uid_sec + 2) * 1000000u &&
		    ((uint64_t)e->uid_sec + 1) * 1000000u - 1 < ceil)
			ceil = ((uint64_t)e->uid_sec + 1) * 1000000u - 1;
		if (e->t > ceil)
			e->t = ceil;
	}
	uint64_t floor = 0, prev = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct staged *e = st_at(f, f->run_first + i);
		if (e->uid_sec >= 0 && (uint64_t)e->uid_sec * 1000000u <= r && r < ((uint64_t)e->uid_sec + 2) * 1000000u &&
		    (uint64_t)e->uid_sec * 1000000u > floor)
			floor = (uint64_t)e->uid_sec * 1000000u;
		if (e->t < floor)
			e->t = floor;
		if (e->t < prev)
			e->t = prev;
		prev = e->t;
		e->ready = true;
	}
	f->prev_run_t = r;
	f->prev_run_pos = st_at(f, end - 1)->pos;
	f->have_prev_run = true;
}

static void stage_push(struct cdr_feed *f, const struct ami_msg *m, enum ev ev, uint64_t t, enum tsrc src,
		       uint64_t stamp, uint64_t pos)
{
	bool in_run = src == TS_RECV && !f->seen_ts;
	if (f->run_open && (!in_run || st_at(f, f->run_first)->t != t))
		run_close(f);
	if (f->scount == f->scap) {
		size_t ncap = f->scap ? 2 * f->scap : 256;
		struct staged *n = xmalloc(ncap * sizeof *n);
		for (size_t i = 0; i < f->scount; i++)
			n[i] = f->stage[(f->shead + i) % f->scap];
		free(f->stage);
		f->stage = n;
		f->scap = ncap;
		f->shead = 0;
	}
	size_t off = msg_copy(&f->sq, m);
	struct staged *e = &f->stage[(f->shead + f->scount) % f->scap];
	memset(e, 0, sizeof *e);
	e->t = t;
	e->stamp = stamp;
	e->pos = e->rpos = pos;
	e->off = off;
	e->raw_len = (uint32_t)m->raw_len;
	e->nhdr = (uint32_t)m->nhdr;
	e->ev = ev;
	e->src = src;
	e->uid_sec = ev == EV_NEWCHANNEL || (ev == EV_CEL && cel_twin(m) == TW_START) ? uid_second(m) : -1;
	e->ready = !in_run;
	if (in_run && !f->run_open) {
		f->run_open = true;
		f->run_first = f->spopped + f->scount;
	}
	f->scount++;
}

static bool is_flagged(const struct cdr_feed *f, const char *id)
{
	if (!f->odd_events || !id || !*id)
		return false;
	for (size_t i = 0; i < FEED_FLAGGED; i++)
		if (f->flagged[i][0] && !strcmp(f->flagged[i], id))
			return true;
	return false;
}

static void flag_id(struct cdr_feed *f, const char *id)
{
	if (!*id || is_flagged(f, id))
		return;
	snprintf(f->flagged[f->flagged_next++ % FEED_FLAGGED], CDR_ID, "%s", id);
}

/* An odd event: flag its channel and call, and say so. */
static void odd_event(struct cdr_feed *f, const struct staged *e, const struct ami_msg *m, const char *why,
		      uint64_t used)
{
	char name[32], chan[CDR_STR], uid[CDR_ID], link[CDR_ID], ts[40];
	hdr(m, "", "Event", name, sizeof name);
	hdr(m, "", "Channel", chan, sizeof chan);
	hdr(m, "", "Uniqueid", uid, sizeof uid);
	hdr(m, "", "Linkedid", link, sizeof link);
	hdr(m, "", "Timestamp", ts, sizeof ts);
	flag_id(f, uid);
	flag_id(f, link);
	f->odd_events++;
	if (!f->sink.clock || (f->odd_events > 20 && f->odd_events % 1000))
		return;
	char msg[512];
	snprintf(msg, sizeof msg,
		 "event %s (record %" PRIu64 ") of channel %s (uniqueid %s, call %s): %s%s%s%s; it runs at %" PRIu64
		 ".%06" PRIu64 " (the time of the events after it) and its call is flagged clock_fault%s",
		 name, e->stamp, *chan ? chan : "-", *uid ? uid : "-", *link ? link : "-", why,
		 *ts ? " (Timestamp: " : "", ts, *ts ? ")" : "", used / 1000000u, used % 1000000u,
		 f->odd_events == 20 ? " (further odd events: every 1000th is reported)" : "");
	f->sink.clock(f->sink.arg, msg, e->stamp);
}

/* The time an odd event at the head runs at: that of the first event after
 * it with a Timestamp in line with the clock (the odd event came just
 * before it; the clock may be an idle gap old), else the clock.  False if
 * none is staged yet and more may come. */
static bool odd_time(struct cdr_feed *f, bool end, uint64_t *t)
{
	for (uint64_t i = 1; i < f->scount; i++) {
		const struct staged *x = st_at(f, f->spopped + i);
		if (!x->ready)
			break;
		if (x->src == TS_HEADER && (!f->have_clock || tdist(x->t, f->clock) <= FEED_CLOCK_JUMP_US)) {
			*t = f->have_clock && x->t < f->clock ? f->clock : x->t;
			return true;
		}
		if (i >= FEED_CLOCK_LOOKAHEAD)
			break;
	}
	if (!end && f->scount <= FEED_CLOCK_LOOKAHEAD)
		return false;
	if (f->have_clock)
		*t = f->clock;
	return true;
}

/* Decide the times of the events at the head of the stage and pass them on
 * (end: nothing more will come). */
static void stage_drain(struct cdr_feed *f, bool end)
{
	while (f->scount) {
		struct staged *e = st_at(f, f->spopped);
		if (!e->ready)
			break;
		uint64_t t = e->t;
		const char *why = NULL;
		if (e->src == TS_BAD)
			why = "its Timestamp is not a time";
		else if (e->src == TS_RECV && f->seen_ts)
			why = "it has no Timestamp (the others have)";
		if (why) {
			/* a receive time, good enough when it agrees with the clock */
			if ((!f->have_clock || tdist(t, f->clock) > FEED_CLOCK_JUMP_US) && !odd_time(f, end, &t))
				return; /* wait for the events after it */
		} else if (!f->have_clock || tdist(t, f->clock) > FEED_CLOCK_JUMP_US) {
			/* out of line: what do the events after it say? */
			unsigned count = 0, agree = 0;
			for (uint64_t i = 1; count < FEED_CLOCK_LOOKAHEAD && i < f->scount; i++) {
				struct staged *x = st_at(f, f->spopped + i);
				if (!x->ready)
					break;
				if (x->src == TS_BAD || (x->src == TS_RECV && f->seen_ts))
					continue;
				count++;
				if (tdist(x->t, t) <= FEED_CLOCK_JUMP_US)
					agree++;
			}
			if (count < FEED_CLOCK_LOOKAHEAD && !end)
				return; /* wait */
			if ((count ? 2 * agree > count : !f->have_clock)) {
				/* the clock moved (or starts here) */
				if (f->have_clock && t < f->clock && f->sink.clock) {
					char msg[160];
					snprintf(msg, sizeof msg,
						 "the stream's clock went back %" PRIu64 " s at record %" PRIu64
						 " (the PBX's clock was set back?)",
						 (f->clock - t) / 1000000u, e->stamp);
					f->sink.clock(f->sink.arg, msg, e->stamp);
				}
				f->clock = t;
				f->newest_t = t;
				f->have_clock = true;
			} else {
				why = t > f->clock ? "its time is ahead of the stream's clock"
						   : "its time is behind the stream's clock";
				if (!odd_time(f, true, &t))
					return; /* not reached: end = true always decides */
			}
		}
		struct ami_msg m;
		stage_msg(f, e, &m);
		if (why)
			odd_event(f, e, &m, why, t);
		else if (!f->have_clock || t > f->clock) {
			f->clock = t;
			f->have_clock = true;
		}
		feed_insert(f, &m, e->ev, t, e->stamp, e->rpos, why != NULL);
		f->shead = (f->shead + 1) % f->scap;
		f->scount--;
		f->spopped++;
		if (!f->scount)
			buf_reset(&f->sq);
		else if (st_at(f, f->spopped)->off > (1u << 20) && st_at(f, f->spopped)->off > f->sq.len / 2) {
			size_t base = st_at(f, f->spopped)->off;
			buf_consume(&f->sq, base);
			for (uint64_t i = 0; i < f->scount; i++)
				st_at(f, f->spopped + i)->off -= base;
		}
	}
}

void cdr_feed_event(struct cdr_feed *f, const struct ami_msg *m, const char *name, size_t len, uint64_t t,
		    uint64_t stamp, uint64_t pos)
{
	size_t tl;
	const char *tv = ami_get(m, "Timestamp", &tl);
	cdr_feed_event_ts(f, m, name, len, t, !tv ? CDR_TS_NONE : parse_unix_us(tv, tl) ? CDR_TS_OK : CDR_TS_BAD, stamp,
			  pos);
}

void cdr_feed_event_ts(struct cdr_feed *f, const struct ami_msg *m, const char *name, size_t len, uint64_t t,
		       enum cdr_feed_ts ts, uint64_t stamp, uint64_t pos)
{
	enum ev ev = event_kind(name, len);
	if (ev == EV_NONE)
		return;
	f->events++;
	enum tsrc src = ts == CDR_TS_NONE ? TS_RECV : ts == CDR_TS_OK ? TS_HEADER : TS_BAD;
	if (src == TS_HEADER) {
		f->seen_ts = true;
		f->no_ts_streak = 0;
	} else if (src == TS_RECV && f->seen_ts && ++f->no_ts_streak >= FEED_NO_TS_STREAK) {
		/* manager.conf changed (timestampevents = no): receive times from now on */
		f->seen_ts = false;
		if (f->sink.clock)
			f->sink.clock(f->sink.arg,
				      "events stopped carrying a Timestamp header (manager.conf timestampevents = no?): "
				      "times are the collector's receive times from here on",
				      stamp);
	}
	if (src == TS_HEADER && !f->scount && !f->run_open && f->have_clock && tdist(t, f->clock) <= FEED_CLOCK_JUMP_US) {
		/* the usual event: nothing waits, its time is in line; what
		 * stage_push + stage_drain would do, without copying it there */
		if (t > f->clock)
			f->clock = t;
		f->spopped++;
		feed_insert(f, m, ev, t, stamp, pos, false);
		return;
	}
	stage_push(f, m, ev, t, src, stamp, pos);
	stage_drain(f, false);
}

void cdr_feed_flush(struct cdr_feed *f, uint64_t now_us)
{
	bool end = now_us == UINT64_MAX;
	/* a read's records are all stored within a moment of the read */
	if (f->run_open && (end || st_at(f, f->run_first)->t + 2 * FEED_WINDOW_US < now_us))
		run_close(f);
	stage_drain(f, end);
	while (f->count && (now_us == UINT64_MAX || f->fifo[f->head].t + 2 * FEED_WINDOW_US < now_us))
		pop_one(f);
	if (end && f->ntwins) {
		/* the end: no channel event will come for a waiting CEL twin */
		memset(f->twins, 0, TWIN_SLOTS * sizeof f->twins[0]);
		f->ntwins = 0;
	}
}

static void on_leg(void *arg, const struct cdr_row *r)
{
	struct cdr_feed *f = arg;
	struct cdr_row row = *r;
	if (is_flagged(f, r->uniqueid) || is_flagged(f, r->linkedid))
		row.clock_fault = true;
	struct leg_facts facts = { 0 };
	if (f->sink.classify)
		f->sink.classify(f->sink.arg, &row, &facts);
	callgroups_leg(f->calls, &row, f->sink.classify ? &facts : NULL);
	if (f->sink.leg)
		f->sink.leg(f->sink.arg, &row, f->cur_stamp);
}

static void on_call(void *arg, const struct call_row *c)
{
	struct cdr_feed *f = arg;
	struct call_row row = *c;
	if (!row.clock_fault && f->odd_events)
		for (size_t i = 0; i < FEED_FLAGGED && !row.clock_fault; i++)
			if (f->flagged[i][0]) {
				char q[CDR_ID + 3];
				snprintf(q, sizeof q, "\"%s\"", f->flagged[i]);
				if (strstr(row.linkedids, q) || !strcmp(row.call_id, f->flagged[i]))
					row.clock_fault = true;
			}
	if (f->sink.call)
		f->sink.call(f->sink.arg, &row, f->cur_stamp);
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
	buf_init(&f->sq, 0);
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
	buf_release(&f->sq);
	free(f->stage);
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
	/* events whose time is not decided yet, and the read before them */
	for (size_t i = 0; i < f->scount; i++)
		if (f->stage[(f->shead + i) % f->scap].rpos < oldest)
			oldest = f->stage[(f->shead + i) % f->scap].rpos;
	if (f->run_open && f->have_prev_run && f->prev_run_pos < oldest)
		oldest = f->prev_run_pos;
	/* CEL events still waiting for their channel event's twin */
	if (f->ntwins)
		for (size_t i = 0; i < TWIN_SLOTS; i++) {
			const struct twin_slot *s = &f->twins[i];
			if (s->used && s->cel_t && f->inserted - s->cel_idx <= FEED_TWIN_SPAN && s->cel_pos < oldest)
				oldest = s->cel_pos;
		}
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
	st->waiting = f->count + f->scount;
	st->clock_faults = f->odd_events;
}
