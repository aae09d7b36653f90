/*
 * amidoctor.c - what the AMI stream carries of the inputs cdrflow needs.
 */
#include "amidoctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strparse.h"
#include "xalloc.h"

/* Events counted by name. */
enum ev {
	E_NEWCHANNEL, E_HANGUP, E_NEWSTATE, E_NEWEXTEN, E_VARSET, E_DIALBEGIN, E_DIALEND, E_BRIDGEENTER,
	E_BRIDGELEAVE, E_CEL, E_ORIGINATERESPONSE, E_QUEUECALLERJOIN, E_AGENTCALLED, E_AGENTCONNECT, E_RTCPSENT,
	E_RTCPRECEIVED, E_CDR, E_CONFBRIDGEJOIN, E_PARKEDCALL, E_FULLYBOOTED, E_N
};
/* A name and its length (known when compiling). */
struct name {
	const char *s;
	uint8_t len;
};
#define N(lit) { lit, sizeof lit - 1 }
static const struct name ev_names[E_N] = {
	N("Newchannel"), N("Hangup"), N("Newstate"), N("Newexten"), N("VarSet"), N("DialBegin"), N("DialEnd"),
	N("BridgeEnter"), N("BridgeLeave"), N("CEL"), N("OriginateResponse"), N("QueueCallerJoin"), N("AgentCalled"),
	N("AgentConnect"), N("RTCPSent"), N("RTCPReceived"), N("Cdr"), N("ConfbridgeJoin"), N("ParkedCall"),
	N("FullyBooted"),
};

/* CEL EventName values. */
enum cel {
	C_CHAN_START, C_CHAN_END, C_ANSWER, C_HANGUP, C_BRIDGE_ENTER, C_BRIDGE_EXIT, C_LINKEDID_END, C_APP_START,
	C_APP_END, C_PARK_START, C_PARK_END, C_BLINDTRANSFER, C_ATTENDEDTRANSFER, C_PICKUP, C_FORWARD, C_USER_DEFINED,
	C_DTMF, C_STREAM_BEGIN, C_STREAM_END, C_LOCAL_OPTIMIZE, C_OTHER, C_N
};
static const struct name cel_names[C_N] = {
	N("CHAN_START"), N("CHAN_END"), N("ANSWER"), N("HANGUP"), N("BRIDGE_ENTER"), N("BRIDGE_EXIT"),
	N("LINKEDID_END"), N("APP_START"), N("APP_END"), N("PARK_START"), N("PARK_END"), N("BLINDTRANSFER"),
	N("ATTENDEDTRANSFER"), N("PICKUP"), N("FORWARD"), N("USER_DEFINED"), N("DTMF"), N("STREAM_BEGIN"),
	N("STREAM_END"), N("LOCAL_OPTIMIZE"), N("other"),
};

/* manager.conf read classes, as they appear in Privilege headers. */
static const struct name class_names[] = {
	N("system"), N("call"), N("log"), N("verbose"), N("command"), N("agent"), N("user"), N("config"), N("dtmf"),
	N("reporting"), N("cdr"), N("dialplan"), N("originate"), N("agi"), N("cc"), N("aoc"), N("test"), N("security"),
	N("message"),
};
#define N_CLASSES (sizeof class_names / sizeof class_names[0])

/* A count, and where its first event was: evidence proves an absence only
 * once the stream went on long enough for the missing event to have come
 * (a load that ends between a DialEnd and its VarSet proves nothing). */
struct cnt {
	uint64_t n, first_idx, first_us;
};
#define SETTLE_EVENTS 200
#define RTCP_LONG_US 15000000u /* Asterisk sends RTCP every 5 s by default */
#define UP_SLOTS 4096u
#define SETTLE_US 2000000u

struct amidoctor {
	uint64_t events, with_ts, chanvar_events;
	struct cnt channel_events;
	struct cnt ev[E_N], cel[C_N];
	struct cnt prio2;            /* channel events at priority >= 2: dialplan ran */
	struct cnt dialbegin_caller; /* DialBegin with a caller channel: the Dial app ran */
	struct cnt dialend_caller;   /* DialEnd with a caller: Dial set DIALSTATUS (VarSet) */
	struct cnt dialend_answer;   /* DialEnd ANSWER */
	struct cnt up;               /* Newstate to Up */
	struct cnt sip_up;           /* SIP/PJSIP channels answered: RTP, so RTCP */
	struct cnt sip_long;         /* ...and up for RTCP_LONG_US or more: RTCP reports were due */
	struct upslot {              /* answered SIP/PJSIP channels still up (open addressing) */
		uint32_t hash;       /* 0 = free */
		uint64_t up_us;
	} *ups;
	struct cnt app_dial, app_queue, app_set; /* Newexten applications */
	uint32_t classes;
	struct privmemo {            /* Privilege values noted already: the same few repeat */
		uint8_t len;
		char v[31];
	} privs[4];
	unsigned next_priv;
	uint64_t first_us, last_us;
	uint64_t span_first_us, span_last_us; /* since adoc_span_start() */
	int64_t max_skew_us;       /* |receive time - EventTV| */
};

static void bump(struct amidoctor *d, struct cnt *c, uint64_t t)
{
	if (!c->n++) {
		c->first_idx = d->events;
		c->first_us = t;
	}
}

/* The count, if the stream went on far enough past its first event. */
static uint64_t proof(const struct amidoctor *d, const struct cnt *c)
{
	if (!c->n)
		return 0;
	return d->events >= c->first_idx + SETTLE_EVENTS || d->last_us >= c->first_us + SETTLE_US ? c->n : 0;
}

static const struct adoc_info infos[AI_N] = {
	[AI_TIMESTAMP] = { "timestamp", "Timestamp header",
			   "the PBX's clock: start, answer, end, duration and billsec come from the collector's receive "
			   "time (live: legs can shift by a second at boundaries; a replay has no clock at all); every "
			   "analytics time",
			   "exact start, answer and end times",
			   "manager.conf [general]: timestampevents = yes", true },
	[AI_CHANNEL] = { "channel", "Newchannel, Hangup", "every CDR row and call: nothing can be rebuilt",
			 "every CDR row",
			 "manager.conf [<user>]: read = ...,call,... (no eventfilter or disabledevents dropping them)",
			 true },
	[AI_NEWSTATE] = { "newstate", "Newstate", "CDR answer, billsec and disposition ANSWERED",
			  "answer time and billsec",
			  "manager.conf [<user>]: read = ...,call,...; Newstate not in disabledevents", true },
	[AI_NEWEXTEN] = { "newexten", "Newexten",
			  "CDR lastapp, lastdata and userfield (Set(CDR(userfield))), dst/dcontext changes, the h "
			  "extension (endbeforehexten), NoCDR/ResetCDR/ForkCDR/CDR_PROP, rows after Dial (Busy, "
			  "Congestion, Hangup); flow analytics (the dialplan path)",
			  "lastapp, lastdata, userfield and the rows after Dial",
			  "manager.conf [general]: remove Newexten from disabledevents; [<user>] read = ...,dialplan,...",
			  true },
	[AI_VARSET] = { "varset", "VarSet",
			"snapshot updates Asterisk publishes around variables (Gosub frames: dst/dcontext inside "
			"subroutines; BRIDGEPEER: 3-party ConfBridge pairing times; with channelvars every variable "
			"change); DIALSTATUS and QUEUESTATUS analytics",
			"Gosub locations and ConfBridge pairing times",
			"manager.conf [general]: remove VarSet from disabledevents; [<user>] read = ...,dialplan,...", true },
	[AI_CHANVARIABLE] = { "channelvars", "ChanVariable header (channelvars)",
			      "the channel variables on every event (e.g. CALLTAG/TENANT tags for analytics); the CDR "
			      "rows are not affected: Asterisk's own rows differ with and without channelvars (it then "
			      "sees every variable change) and cdrflow rebuilds them either way",
			      "variables on events (analytics only)",
			      "manager.conf [general]: channelvars = CALLTAG,TENANT (any list of variables)", false },
	[AI_DIAL] = { "dial", "DialBegin, DialEnd", "CDR dstchannel, disposition (NO ANSWER, BUSY, CONGESTION), fork rows",
		      "dstchannel and dial dispositions",
		      "manager.conf [<user>]: read = ...,call,...; DialBegin/DialEnd not in disabledevents", true },
	[AI_BRIDGE] = { "bridge", "BridgeEnter, BridgeLeave",
			"CDR pairing (dstchannel), answered legs, transfers and conferences",
			"pairings (dstchannel) and answered legs",
			"manager.conf [<user>]: read = ...,call,...; Bridge events not in disabledevents", true },
	[AI_CEL] = { "cel", "CEL",
		     "amaflags (only CEL carries them), the earlier of the CEL/channel-event twin times (start, answer, "
		     "end at second boundaries); the cel table",
		     "amaflags, CEL-twin times and the cel table",
		     "cel.conf [general]: enable = yes, events = ALL; [manager] enabled = yes", true },
	[AI_CEL_TYPES] = { "cel-types", "CEL event types",
			   "the twin times of the missing types (CHAN_START start, ANSWER answer, HANGUP end, "
			   "BRIDGE_ENTER/EXIT pairing times); LINKEDID_END call completion in the cel table",
			   "the times of the missing CEL types",
			   "cel.conf [general]: events = ALL", true },
	[AI_ORIGINATE] = { "originate", "OriginateResponse",
			   "the outcome of AMI Originates (failed originates, Originate to an application: its "
			   "lastapp/lastdata)",
			   "AMI Originate outcomes",
			   "manager.conf [<user>]: read = ...,call,... (originators use Async: true)", false },
	[AI_QUEUE] = { "queue", "QueueCallerJoin, AgentCalled, ...",
		       "queue and agent analytics (service level, abandons, agent performance reports)",
		       "queue and agent figures",
		       "manager.conf [<user>]: read = ...,agent,...", false },
	[AI_RTCP] = { "rtcp", "RTCPSent, RTCPReceived", "QoS analytics (jitter, loss, RTT, MES)",
		      "QoS figures",
		      "manager.conf [<user>]: read = ...,reporting,...; RTCP not disabled on the SIP peers", false },
	[AI_CDR] = { "cdr", "Cdr (cdr_manager)", "only the doctor's self-check against Asterisk's own rows",
		     "the self-check",
		     "cdr_manager.conf [general]: enabled = yes; [<user>] read = ...,cdr,...", false },
};

const struct adoc_info *adoc_info(enum adoc_input i)
{
	return i < AI_N ? &infos[i] : NULL;
}

const char *adoc_state_name(enum adoc_state s)
{
	switch (s) {
	case ADOC_PRESENT: return "present";
	case ADOC_NOT_SEEN: return "not seen";
	case ADOC_MISSING: return "MISSING";
	}
	return "?";
}

struct amidoctor *adoc_new(void)
{
	return xcalloc(1, sizeof(struct amidoctor));
}

void adoc_free(struct amidoctor *d)
{
	if (d)
		free(d->ups);
	free(d);
}

void adoc_copy(struct amidoctor *dst, const struct amidoctor *src)
{
	struct upslot *ups = dst->ups;
	*dst = *src;
	dst->ups = ups;
	if (!src->ups) {
		free(ups);
		dst->ups = NULL;
		return;
	}
	if (!dst->ups)
		dst->ups = xmalloc(UP_SLOTS * sizeof *dst->ups);
	memcpy(dst->ups, src->ups, UP_SLOTS * sizeof *dst->ups);
}

struct amidoctor *adoc_dup(const struct amidoctor *src)
{
	struct amidoctor *d = adoc_new();
	adoc_copy(d, src);
	return d;
}

void adoc_span_start(struct amidoctor *d)
{
	d->span_first_us = d->span_last_us = 0;
}

void adoc_span(const struct amidoctor *d, uint64_t *first_us, uint64_t *last_us)
{
	*first_us = d->span_first_us;
	*last_us = d->span_last_us;
}

static uint32_t uid_hash(const char *v, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)v[i]) * 16777619u;
	return h ? h : 1;
}

/* Remember when an SIP/PJSIP channel answered (a full table forgets: this is only evidence). */
static void up_note(struct amidoctor *d, const char *uid, size_t len, uint64_t t)
{
	if (!d->ups)
		d->ups = xcalloc(UP_SLOTS, sizeof *d->ups);
	uint32_t h = uid_hash(uid, len);
	for (uint32_t i = 0; i < 16; i++) {
		struct upslot *u = &d->ups[(h + i) % UP_SLOTS];
		if (!u->hash || u->hash == h) {
			u->hash = h;
			u->up_us = t;
			return;
		}
	}
}

/* At hang-up: how long was it up (0 if not tracked)?  Frees the slot. */
static uint64_t up_take(struct amidoctor *d, const char *uid, size_t len, uint64_t t)
{
	if (!d->ups)
		return 0;
	uint32_t h = uid_hash(uid, len);
	for (uint32_t i = 0; i < 16; i++) {
		struct upslot *u = &d->ups[(h + i) % UP_SLOTS];
		if (u->hash == h) {
			uint64_t up = u->up_us;
			u->hash = 0;
			return t > up ? t - up : 0;
		}
	}
	return 0;
}

static int is(const char *v, size_t len, const char *s)
{
	return v && strlen(s) == len && !memcmp(v, s, len);
}

static int starts(const char *v, size_t len, const char *s)
{
	size_t n = strlen(s);
	return v && len >= n && !memcmp(v, s, n);
}

static int64_t num(const char *v, size_t len)
{
	int64_t x = 0;
	size_t i = 0;
	if (!v || !len)
		return -1;
	for (; i < len && v[i] >= '0' && v[i] <= '9' && i < 18; i++)
		x = x * 10 + (v[i] - '0');
	return i ? x : -1;
}

/* EventTV "2026-12-06T05:40:04.303+0000" -> unix µs (UTC only), 0 if not that. */
static uint64_t eventtv_us(const char *v, size_t len)
{
	if (!v || len < 23)
		return 0;
	char s[40];
	size_t n = len < sizeof s - 1 ? len : sizeof s - 1;
	memcpy(s, v, n);
	s[n] = '\0';
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int ms = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &ms) != 7)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t <= 0)
		return 0;
	if (strstr(s, "+0000") == NULL)
		return 0; /* a local-time EventTV: do not guess the zone */
	return (uint64_t)t * 1000000u + (uint64_t)ms * 1000u;
}

static void note_classes(struct amidoctor *d, const char *v, size_t len)
{
	for (int k = 0; k < 4; k++)
		if (d->privs[k].len == len && !memcmp(d->privs[k].v, v, len))
			return; /* its classes are in d->classes */
	if (len && len <= sizeof d->privs[0].v) {
		struct privmemo *p = &d->privs[d->next_priv++ % 4];
		p->len = (uint8_t)len;
		memcpy(p->v, v, len);
	}
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		for (size_t k = 0; k < N_CLASSES; k++)
			if (class_names[k].len == j - i && !memcmp(v + i, class_names[k].s, j - i))
				d->classes |= 1u << k;
		i = j + 1;
	}
}

void adoc_event(struct amidoctor *d, const struct ami_msg *m, uint64_t recv_us)
{
	if (m->kind != AMI_EVENT)
		return;
	size_t len;
	const char *name = ami_get(m, "Event", &len);
	if (name)
		adoc_event_named(d, m, name, len, recv_us);
}

/* The headers adoc_event_named() reads: the first of each, as ami_get()
 * finds it (case-insensitive key), gathered in one pass over the index. */
enum hk { H_PRIVILEGE, H_TIMESTAMP, H_EVENTTV, H_CHANNEL, H_UNIQUEID, H_PRIORITY, H_CHANNELSTATE, H_APPLICATION,
	  H_DIALSTATUS, H_EVENTNAME, H_N };
struct hv {
	const char *v;
	size_t len;
};

/* Which header of enum hk the key is (H_N: none): by length and first
 * letter, then one caseless comparison. */
static enum hk key_of(const char *k, size_t n)
{
	enum hk x;
	const char *want;
	switch (n) {
	case 7: x = (k[0] | 0x20) == 'c' ? H_CHANNEL : H_EVENTTV; want = x == H_CHANNEL ? "Channel" : "EventTV"; break;
	case 8: x = (k[0] | 0x20) == 'u' ? H_UNIQUEID : H_PRIORITY; want = x == H_UNIQUEID ? "Uniqueid" : "Priority"; break;
	case 9:
		switch (k[0] | 0x20) {
		case 't': x = H_TIMESTAMP; want = "Timestamp"; break;
		case 'p': x = H_PRIVILEGE; want = "Privilege"; break;
		default: x = H_EVENTNAME; want = "EventName"; break;
		}
		break;
	case 10: x = H_DIALSTATUS; want = "DialStatus"; break;
	case 11: x = H_APPLICATION; want = "Application"; break;
	case 12: x = H_CHANNELSTATE; want = "ChannelState"; break;
	default: return H_N;
	}
	return ami_key_eq(k, n, want, n) ? x : H_N;
}

/* One pass: hv[] gets the first value of each key; *chanvar whether a key
 * starts with ChanVariable (as written: channelvars headers). */
static void gather(const struct ami_msg *m, struct hv hv[H_N], int *chanvar)
{
	memset(hv, 0, H_N * sizeof *hv);
	*chanvar = 0;
	for (size_t i = 0; i < m->nhdr; i++) {
		const struct ami_header *h = &m->hdr[i];
		const char *k = m->raw + h->key_off;
		if (h->key_len >= 12 && !memcmp(k, "ChanVariable", 12)) {
			*chanvar = 1;
			continue;
		}
		enum hk x = key_of(k, h->key_len);
		if (x != H_N && !hv[x].v) {
			hv[x].v = m->raw + h->val_off;
			hv[x].len = h->val_len;
		}
	}
}

/* The index of v in names[n] (exact), or n: lengths first, so most names
 * cost one integer comparison. */
static int name_index(const struct name *names, int n, const char *v, size_t len)
{
	if (!v)
		return n;
	for (int k = 0; k < n; k++)
		if (names[k].len == len && !memcmp(v, names[k].s, len))
			return k;
	return n;
}

void adoc_event_named(struct amidoctor *d, const struct ami_msg *m, const char *name, size_t len, uint64_t recv_us)
{
	enum ev e = (enum ev)name_index(ev_names, E_N, name, len);
	struct hv hv[H_N];
	int chanvar;
	gather(m, hv, &chanvar);
	const char *v = hv[H_PRIVILEGE].v;
	if (v)
		note_classes(d, v, hv[H_PRIVILEGE].len);
	if (e == E_FULLYBOOTED) {
		d->ev[e].n++;
		return; /* sent straight after login, never with a Timestamp */
	}
	d->events++;
	v = hv[H_TIMESTAMP].v;
	uint64_t t = v ? parse_unix_us(v, hv[H_TIMESTAMP].len) : 0;
	if (v)
		d->with_ts++;
	if (!t)
		t = recv_us;
	if (e != E_N)
		bump(d, &d->ev[e], t);
	if (t && (!d->first_us || t < d->first_us))
		d->first_us = t;
	if (t > d->last_us)
		d->last_us = t;
	if (t && (!d->span_first_us || t < d->span_first_us))
		d->span_first_us = t;
	if (t > d->span_last_us)
		d->span_last_us = t;
	uint64_t tv = eventtv_us(hv[H_EVENTTV].v, hv[H_EVENTTV].len);
	if (tv && recv_us) {
		int64_t skew = (int64_t)recv_us - (int64_t)tv;
		if (skew < 0)
			skew = -skew;
		if (skew > d->max_skew_us)
			d->max_skew_us = skew;
	}
	const char *chan = hv[H_CHANNEL].v;
	size_t chan_len = hv[H_CHANNEL].len;
	const char *uid = hv[H_UNIQUEID].v;
	size_t uid_len = hv[H_UNIQUEID].len;
	if (chan && uid && e != E_CEL) {
		bump(d, &d->channel_events, t);
		d->chanvar_events += (uint64_t)chanvar;
		if (num(hv[H_PRIORITY].v, hv[H_PRIORITY].len) >= 2)
			bump(d, &d->prio2, t);
	}
	switch (e) {
	case E_NEWSTATE:
		if (num(hv[H_CHANNELSTATE].v, hv[H_CHANNELSTATE].len) == 6) {
			bump(d, &d->up, t);
			if (starts(chan, chan_len, "SIP/") || starts(chan, chan_len, "PJSIP/")) {
				bump(d, &d->sip_up, t);
				if (uid)
					up_note(d, uid, uid_len, t);
			}
		}
		break;
	case E_HANGUP:
		if (uid && (starts(chan, chan_len, "SIP/") || starts(chan, chan_len, "PJSIP/")) &&
		    up_take(d, uid, uid_len, t) >= RTCP_LONG_US)
			bump(d, &d->sip_long, t);
		break;
	case E_NEWEXTEN: {
		size_t alen = hv[H_APPLICATION].len;
		v = hv[H_APPLICATION].v;
		if (is(v, alen, "Dial"))
			bump(d, &d->app_dial, t);
		else if (is(v, alen, "Queue"))
			bump(d, &d->app_queue, t);
		else if (is(v, alen, "Set") || is(v, alen, "MSet"))
			bump(d, &d->app_set, t);
		break;
	}
	case E_DIALBEGIN:
		if (chan && chan_len)
			bump(d, &d->dialbegin_caller, t);
		break;
	case E_DIALEND:
		if (chan && chan_len)
			bump(d, &d->dialend_caller, t);
		if (is(hv[H_DIALSTATUS].v, hv[H_DIALSTATUS].len, "ANSWER"))
			bump(d, &d->dialend_answer, t);
		break;
	case E_CEL:
		bump(d, &d->cel[name_index(cel_names, C_OTHER, hv[H_EVENTNAME].v, hv[H_EVENTNAME].len)], t);
		break;
	default: break;
	}
}

#define EVID(...) snprintf(v->evidence, sizeof v->evidence, __VA_ARGS__)

/* Name the missing CEL types whose activity the channel events show. */
static int cel_types_missing(const struct amidoctor *d, char *out, size_t outlen, int *rows)
{
	struct {
		int cel;
		uint64_t activity;
		int rows;
	} need[] = {
		{ C_CHAN_START, proof(d, &d->ev[E_NEWCHANNEL]), 1 }, { C_ANSWER, proof(d, &d->up), 1 },
		{ C_HANGUP, proof(d, &d->ev[E_HANGUP]), 1 },         { C_CHAN_END, proof(d, &d->ev[E_HANGUP]), 0 },
		{ C_BRIDGE_ENTER, proof(d, &d->ev[E_BRIDGEENTER]), 1 }, { C_BRIDGE_EXIT, proof(d, &d->ev[E_BRIDGELEAVE]), 1 },
		{ C_LINKEDID_END, proof(d, &d->ev[E_HANGUP]), 0 },   { C_PARK_START, proof(d, &d->ev[E_PARKEDCALL]), 0 },
	};
	int n = 0;
	size_t off = 0;
	out[0] = '\0';
	*rows = 0;
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		if (d->cel[need[i].cel].n || !need[i].activity)
			continue;
		int w = snprintf(out + off, outlen - off, "%s%s", n ? ", " : "", cel_names[need[i].cel].s);
		if (w > 0 && (size_t)w < outlen - off)
			off += (size_t)w;
		n++;
		*rows |= need[i].rows;
	}
	return n;
}

void adoc_verdict(const struct amidoctor *d, enum adoc_input i, struct adoc_verdict *v)
{
	memset(v, 0, sizeof *v);
	v->state = ADOC_PRESENT;
	int dialplan_class = (d->classes >> 11) & 1; /* "dialplan" */
	switch (i) {
	case AI_TIMESTAMP:
		if (!d->events) {
			v->state = ADOC_NOT_SEEN;
			EVID("no events");
		} else if (!d->with_ts) {
			v->state = ADOC_MISSING;
			EVID("none of %llu events carries a Timestamp header%s", (unsigned long long)d->events,
			     d->max_skew_us > 60000000 ? "; receive times are over a minute from the PBX's EventTV: a "
							 "replay, no clock at all (or the clocks are apart)"
						       : "");
		} else if ((d->events - d->with_ts) * 100 > d->events) {
			/* more than 1 %: timestampevents changed while the spool was written, or something strips it */
			v->state = ADOC_MISSING;
			EVID("only %llu of %llu events carry a Timestamp header: timestampevents changed during the spool?",
			     (unsigned long long)d->with_ts, (unsigned long long)d->events);
		} else {
			EVID("%llu of %llu events", (unsigned long long)d->with_ts, (unsigned long long)d->events);
		}
		break;
	case AI_CHANNEL:
		if (!d->ev[E_NEWCHANNEL].n && !d->ev[E_HANGUP].n) {
			v->state = proof(d, &d->channel_events) || proof(d, &d->cel[C_CHAN_START]) ? ADOC_MISSING : ADOC_NOT_SEEN;
			EVID(v->state == ADOC_MISSING ? "%llu other channel events, %llu CEL CHAN_START"
						       : "no channel activity (%llu channel events, %llu CEL CHAN_START)",
			     (unsigned long long)d->channel_events.n, (unsigned long long)d->cel[C_CHAN_START].n);
		} else {
			EVID("%llu Newchannel, %llu Hangup", (unsigned long long)d->ev[E_NEWCHANNEL].n,
			     (unsigned long long)d->ev[E_HANGUP].n);
		}
		break;
	case AI_NEWSTATE:
		if (!d->ev[E_NEWSTATE].n) {
			uint64_t ev = proof(d, &d->cel[C_ANSWER]) + proof(d, &d->dialend_answer);
			v->state = ev ? ADOC_MISSING : ADOC_NOT_SEEN;
			EVID(ev ? "not received although channels answered (%llu CEL ANSWER, %llu DialEnd ANSWER)"
				: "no answered channel seen", (unsigned long long)d->cel[C_ANSWER].n,
			     (unsigned long long)d->dialend_answer.n);
		} else {
			EVID("%llu events (%llu to Up)", (unsigned long long)d->ev[E_NEWSTATE].n, (unsigned long long)d->up.n);
		}
		break;
	case AI_NEWEXTEN:
		if (!d->ev[E_NEWEXTEN].n) {
			uint64_t ev = proof(d, &d->prio2) + proof(d, &d->dialbegin_caller) + proof(d, &d->cel[C_APP_START]);
			v->state = ev ? ADOC_MISSING : ADOC_NOT_SEEN;
			if (ev)
				EVID("not received although channels ran dialplan (%llu channel events at priority >= 2, "
				     "%llu DialBegin from a caller): %s",
				     (unsigned long long)d->prio2.n, (unsigned long long)d->dialbegin_caller.n,
				     dialplan_class ? "disabledevents or an eventfilter drops it"
						    : "disabledevents, or the user's read= lacks dialplan");
			else if (d->prio2.n + d->dialbegin_caller.n)
				EVID("channels ran dialplan just before the stream ends: too early to tell");
			else
				EVID("no channel was seen running dialplan (%llu channel events)",
				     (unsigned long long)d->channel_events.n);
		} else {
			EVID("%llu events", (unsigned long long)d->ev[E_NEWEXTEN].n);
		}
		break;
	case AI_VARSET:
		if (!d->ev[E_VARSET].n) {
			uint64_t ev = proof(d, &d->dialend_caller) + proof(d, &d->app_set);
			v->state = ev ? ADOC_MISSING : ADOC_NOT_SEEN;
			if (ev)
				EVID("not received although variables were set (%llu DialEnd from a caller set DIALSTATUS, "
				     "%llu Newexten Set/MSet): %s",
				     (unsigned long long)d->dialend_caller.n, (unsigned long long)d->app_set.n,
				     dialplan_class ? "disabledevents or an eventfilter drops it"
						    : "disabledevents, or the user's read= lacks dialplan");
			else if (d->dialend_caller.n + d->app_set.n)
				EVID("a Dial ended or a Set ran just before the stream ends: too early to tell");
			else
				EVID("no variable change was seen (no Dial, no Set)");
		} else {
			EVID("%llu events", (unsigned long long)d->ev[E_VARSET].n);
		}
		break;
	case AI_CHANVARIABLE:
		if (!d->chanvar_events) {
			v->state = d->channel_events.n ? ADOC_MISSING : ADOC_NOT_SEEN; /* the header rides on the event itself */
			EVID(d->channel_events.n ? "none of %llu channel events carries a ChanVariable header: manager.conf "
						 "has no channelvars"
					       : "no channel events (%llu)", (unsigned long long)d->channel_events.n);
		} else {
			EVID("on %llu of %llu channel events", (unsigned long long)d->chanvar_events,
			     (unsigned long long)d->channel_events.n);
		}
		break;
	case AI_DIAL:
		if (!d->ev[E_DIALBEGIN].n && !d->ev[E_DIALEND].n) {
			uint64_t ev = proof(d, &d->app_dial) + proof(d, &d->app_queue);
			v->state = ev ? ADOC_MISSING : ADOC_NOT_SEEN;
			EVID(ev ? "not received although Dial/Queue ran (%llu Newexten Dial, %llu Queue)"
				: "no Dial or Queue was seen (%llu Newexten Dial, %llu Queue)",
			     (unsigned long long)d->app_dial.n, (unsigned long long)d->app_queue.n);
		} else {
			EVID("%llu DialBegin, %llu DialEnd", (unsigned long long)d->ev[E_DIALBEGIN].n,
			     (unsigned long long)d->ev[E_DIALEND].n);
		}
		break;
	case AI_BRIDGE:
		if (!d->ev[E_BRIDGEENTER].n) {
			uint64_t ev = proof(d, &d->cel[C_BRIDGE_ENTER]) + proof(d, &d->ev[E_AGENTCONNECT]) + proof(d, &d->ev[E_CONFBRIDGEJOIN]);
			v->state = ev ? ADOC_MISSING : ADOC_NOT_SEEN;
			EVID(ev ? "not received although channels were bridged (%llu CEL BRIDGE_ENTER, %llu AgentConnect, "
				  "%llu ConfbridgeJoin)"
				: "no bridge was seen (%llu CEL BRIDGE_ENTER, %llu AgentConnect, %llu ConfbridgeJoin)",
			     (unsigned long long)d->cel[C_BRIDGE_ENTER].n, (unsigned long long)d->ev[E_AGENTCONNECT].n,
			     (unsigned long long)d->ev[E_CONFBRIDGEJOIN].n);
		} else {
			EVID("%llu BridgeEnter, %llu BridgeLeave", (unsigned long long)d->ev[E_BRIDGEENTER].n,
			     (unsigned long long)d->ev[E_BRIDGELEAVE].n);
		}
		break;
	case AI_CEL:
		if (!d->ev[E_CEL].n) {
			uint64_t ch = proof(d, &d->ev[E_NEWCHANNEL]) + proof(d, &d->ev[E_HANGUP]);
			v->state = ch ? ADOC_MISSING : ADOC_NOT_SEEN;
			EVID(ch ? "no CEL event although %llu channels were created and %llu hung up: CEL is off "
				  "(cel.conf enable = no, or cel_manager off)"
				: "no channel activity", (unsigned long long)d->ev[E_NEWCHANNEL].n,
			     (unsigned long long)d->ev[E_HANGUP].n);
		} else {
			EVID("%llu events", (unsigned long long)d->ev[E_CEL].n);
		}
		break;
	case AI_CEL_TYPES: {
		if (!d->ev[E_CEL].n) {
			v->state = ADOC_NOT_SEEN;
			EVID("no CEL events");
			break;
		}
		char miss[256];
		int rows;
		if (cel_types_missing(d, miss, sizeof miss, &rows)) {
			v->state = ADOC_MISSING;
			v->rows = rows != 0;
			EVID("not received although their activity happened: %s (cel.conf events= leaves them out)", miss);
			return;
		}
		EVID("every type whose activity happened%s", d->cel[C_APP_START].n ? "" : " (no APP_START/APP_END: cel.conf "
											"apps lists no application; "
											"cdrflow does not need them)");
		break;
	}
	case AI_ORIGINATE:
		if (!d->ev[E_ORIGINATERESPONSE].n) {
			v->state = ADOC_NOT_SEEN;
			EVID("no OriginateResponse (no AMI Originate with Async, or call class filtered; cannot tell)");
		} else {
			EVID("%llu events", (unsigned long long)d->ev[E_ORIGINATERESPONSE].n);
		}
		break;
	case AI_QUEUE:
		if (!d->ev[E_QUEUECALLERJOIN].n && !d->ev[E_AGENTCALLED].n) {
			v->state = proof(d, &d->app_queue) ? ADOC_MISSING : ADOC_NOT_SEEN;
			EVID(d->app_queue.n ? "not received although Queue() ran %llu times"
					  : "no queue call seen (%llu Newexten Queue)", (unsigned long long)d->app_queue.n);
		} else {
			EVID("%llu QueueCallerJoin, %llu AgentCalled, %llu AgentConnect",
			     (unsigned long long)d->ev[E_QUEUECALLERJOIN].n, (unsigned long long)d->ev[E_AGENTCALLED].n,
			     (unsigned long long)d->ev[E_AGENTCONNECT].n);
		}
		break;
	case AI_RTCP:
		if (!d->ev[E_RTCPSENT].n && !d->ev[E_RTCPRECEIVED].n) {
			if (proof(d, &d->sip_long)) {
				v->state = ADOC_MISSING;
				EVID("none although %llu SIP/PJSIP channels were up 15 s or more: the user's read= lacks "
				     "reporting, or the media bypassed Asterisk (directmedia), or RTCP is off",
				     (unsigned long long)d->sip_long.n);
				break;
			}
			v->state = ADOC_NOT_SEEN;
			EVID(d->sip_up.n ? "none, and no SIP/PJSIP channel stayed up 15 s (%llu answered; RTCP comes every 5 s)"
				       : "no answered SIP/PJSIP channel (%llu)", (unsigned long long)d->sip_up.n);
		} else {
			EVID("%llu RTCPSent, %llu RTCPReceived", (unsigned long long)d->ev[E_RTCPSENT].n,
			     (unsigned long long)d->ev[E_RTCPRECEIVED].n);
		}
		break;
	case AI_CDR:
		if (!d->ev[E_CDR].n) {
			v->state = ADOC_NOT_SEEN;
			EVID("no Event: Cdr: no self-check possible (rows never come from it)");
		} else {
			EVID("%llu events (for the self-check only)", (unsigned long long)d->ev[E_CDR].n);
		}
		break;
	case AI_N: break;
	}
	if (v->state == ADOC_MISSING)
		v->rows = infos[i].rows;
}

uint32_t adoc_missing_rows(const struct amidoctor *d)
{
	uint32_t m = 0;
	for (int i = 0; i < AI_N; i++) {
		struct adoc_verdict v;
		adoc_verdict(d, (enum adoc_input)i, &v);
		if (v.state == ADOC_MISSING && v.rows)
			m |= 1u << i;
	}
	return m;
}

uint32_t adoc_missing_all(const struct amidoctor *d)
{
	uint32_t m = 0;
	for (int i = 0; i < AI_N; i++) {
		struct adoc_verdict v;
		adoc_verdict(d, (enum adoc_input)i, &v);
		if (v.state == ADOC_MISSING)
			m |= 1u << i;
	}
	return m;
}

void adoc_summary(const struct amidoctor *d, struct adoc_summary *s)
{
	memset(s, 0, sizeof *s);
	s->events = d->events;
	s->with_timestamp = d->with_ts;
	s->channel_events = d->channel_events.n;
	s->cdr_events = d->ev[E_CDR].n;
	s->first_us = d->first_us;
	s->last_us = d->last_us;
	s->clock_is_receive = d->events && !d->with_ts;
	s->receive_not_pbx = d->max_skew_us > 60000000;
	size_t off = 0;
	for (size_t k = 0; k < N_CLASSES; k++) {
		if (!(d->classes & (1u << k)))
			continue;
		int w = snprintf(s->classes + off, sizeof s->classes - off, "%s%s", off ? "," : "", class_names[k].s);
		if (w > 0 && (size_t)w < sizeof s->classes - off)
			off += (size_t)w;
	}
	off = 0;
	for (int k = 0; k < C_N; k++) {
		if (!d->cel[k].n)
			continue;
		int w = snprintf(s->cel_types + off, sizeof s->cel_types - off, "%s%s=%llu", off ? " " : "", cel_names[k].s,
				 (unsigned long long)d->cel[k].n);
		if (w > 0 && (size_t)w < sizeof s->cel_types - off)
			off += (size_t)w;
	}
}
