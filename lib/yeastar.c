/*
 * yeastar.c - Yeastar event messages (yeastar.h), parsed with jansson.
 */
#include "yeastar.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum ys_class ys_classify(const char *data, size_t len)
{
	size_t i = 0;
	while (i < len && isspace((unsigned char)data[i]))
		i++;
	if (len - i >= 9 && !memcmp(data + i, "heartbeat", 9))
		return YS_REPLY;
	if (i == len || data[i] != '{')
		return YS_GARBAGE;
	json_error_t je;
	json_t *root = json_loadb(data, len, 0, &je);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return YS_GARBAGE;
	}
	json_t *type = json_object_get(root, "type");
	json_t *event = json_object_get(root, "event");
	json_t *action = json_object_get(root, "action");
	enum ys_class c = YS_REPLY;
	if ((json_is_integer(type) && json_object_get(root, "msg")) || json_is_string(event) || json_is_string(action))
		c = YS_EVENT;
	json_decref(root);
	return c;
}

static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

int ys_event_parse(const char *data, size_t len, struct ys_event *ev, char *err, size_t errlen)
{
	memset(ev, 0, sizeof *ev);
	json_error_t je;
	json_t *root = json_loadb(data, len, 0, &je);
	if (!root) {
		snprintf(err, errlen, "not JSON: %s at offset %d", je.text, je.position);
		return -1;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	ev->root = root;
	json_t *type = json_object_get(root, "type");
	json_t *name = json_object_get(root, "event");
	if (!json_is_string(name))
		name = json_object_get(root, "action");
	if (json_is_integer(type)) {
		json_int_t t = json_integer_value(type);
		if (t <= 0 || t > 999999) {
			snprintf(err, errlen, "event type %lld out of range", (long long)t);
			goto fail;
		}
		ev->type = (int)t;
		json_t *sn = json_object_get(root, "sn");
		copy_str(ev->sn, sizeof ev->sn, json_string_value(sn));
		json_t *msg = json_object_get(root, "msg");
		if (json_is_string(msg)) {
			/* msg is JSON encoded as a string */
			json_t *inner = json_loadb(json_string_value(msg), json_string_length(msg), 0, &je);
			if (!inner || !json_is_object(inner)) {
				json_decref(inner);
				snprintf(err, errlen, "event %d: msg is not a JSON object%s%s", ev->type, inner ? "" : ": ",
					 inner ? "" : je.text);
				goto fail;
			}
			ev->msg = inner;
		} else if (json_is_object(msg)) {
			ev->msg = json_incref(msg);
		} else {
			snprintf(err, errlen, "event %d: no msg object", ev->type);
			goto fail;
		}
		return 0;
	}
	if (json_is_string(name)) {
		copy_str(ev->name, sizeof ev->name, json_string_value(name));
		copy_str(ev->sn, sizeof ev->sn, json_string_value(json_object_get(root, "sn")));
		ev->msg = json_incref(root);
		return 0;
	}
	snprintf(err, errlen, "no event envelope (neither type+msg nor event)");
fail:
	ys_event_release(ev);
	return -1;
}

void ys_event_release(struct ys_event *ev)
{
	json_decref(ev->msg);
	json_decref(ev->root);
	ev->msg = ev->root = NULL;
}

char *ys_event_fields_json(const struct ys_event *ev)
{
	return ev->msg ? json_dumps(ev->msg, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

const char *ys_event_call_id(const struct ys_event *ev)
{
	const char *v = ev->msg ? json_string_value(json_object_get(ev->msg, "call_id")) : NULL;
	if (!v && ev->msg)
		v = json_string_value(json_object_get(ev->msg, "callid"));
	return v;
}

bool ys_event_is_cdr(const struct ys_event *ev)
{
	return ev->type == YS_EV_NEW_CDR || (!ev->type && !strcasecmp(ev->name, "NewCdr"));
}

void ys_event_name(const struct ys_event *ev, char *out, size_t outlen)
{
	switch (ev->type) {
	case YS_EV_EXT_REGISTRATION: snprintf(out, outlen, "YeastarExtensionRegistration"); return;
	case YS_EV_EXT_CALL_STATUS: snprintf(out, outlen, "YeastarExtensionCallStatus"); return;
	case YS_EV_CALL_STATUS: snprintf(out, outlen, "YeastarCallStatus"); return;
	case YS_EV_NEW_CDR: snprintf(out, outlen, "YeastarNewCdr"); return;
	case 0: {
		/* S-Series names are letters; anything else is not carried over */
		char clean[32];
		size_t n = 0;
		for (const char *p = ev->name; *p && n + 1 < sizeof clean; p++)
			if (isalnum((unsigned char)*p))
				clean[n++] = *p;
		clean[n] = '\0';
		snprintf(out, outlen, "Yeastar%s", clean);
		return;
	}
	default: snprintf(out, outlen, "Yeastar%d", ev->type); return;
	}
}

/* A field as text: strings as they are, integers in decimal; the first
 * of the names that is present (the S-Series spellings vary). */
static const char *field_text(json_t *o, const char *const *names, char *buf, size_t n)
{
	for (; *names; names++) {
		json_t *v = json_object_get(o, *names);
		if (json_is_string(v))
			return json_string_value(v);
		if (json_is_integer(v)) {
			snprintf(buf, n, "%lld", (long long)json_integer_value(v));
			return buf;
		}
		if (json_is_real(v)) {
			snprintf(buf, n, "%.0f", json_real_value(v));
			return buf;
		}
	}
	return "";
}

/* A duration in seconds (integer or digits in a string); -1 when absent or not a number. */
static long field_seconds(json_t *o, const char *const *names)
{
	char buf[32];
	const char *s = field_text(o, names, buf, sizeof buf);
	if (!*s)
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 100L * 86400)
		return -1;
	return v;
}

uint64_t ys_parse_time(const char *s, int64_t utc_offset_s)
{
	int y, mo, d, h, mi, se;
	char s1, s2;
	int used = 0;
	if (sscanf(s, "%4d%c%2d%c%2d %2d:%2d:%2d%n", &y, &s1, &mo, &s2, &d, &h, &mi, &se, &used) != 8 || s[used] ||
	    s1 != s2 || (s1 != '/' && s1 != '-'))
		return 0;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || h < 0 ||
	    mi < 0 || se < 0)
		return 0;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se };
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	int64_t utc = (int64_t)t - utc_offset_s;
	return utc > 0 ? (uint64_t)utc * 1000000u : 0;
}

int ys_disposition(const char *status, bool *known)
{
	*known = true;
	if (!strcasecmp(status, "ANSWERD") || !strcasecmp(status, "ANSWERED") || !strcasecmp(status, "VOICEMAIL"))
		return CDR_ANSWERED;
	if (!strcasecmp(status, "NO ANSWER") || !strcasecmp(status, "NO ANSWERED") || !strcasecmp(status, "NOANSWER"))
		return CDR_NOANSWER;
	if (!strcasecmp(status, "BUSY"))
		return CDR_BUSY;
	if (!strcasecmp(status, "FAILED"))
		return CDR_FAILED;
	*known = false;
	return CDR_FAILED;
}

static const char *outcome_of(int disposition)
{
	switch (disposition) {
	case CDR_ANSWERED: return "answered";
	case CDR_BUSY: return "busy";
	case CDR_NOANSWER: return "no_answer";
	default: return "failed";
	}
}

/* field names: P-Series first, then the S-Series spellings */
static const char *const F_CALLID[] = { "call_id", "callid", "cdrid", NULL };
static const char *const F_START[] = { "time_start", "timestart", NULL };
static const char *const F_FROM[] = { "call_from", "callfrom", NULL };
static const char *const F_TO[] = { "call_to", "callto", NULL };
static const char *const F_CALLDUR[] = { "call_duration", "callduraction", "callduration", NULL };
static const char *const F_TALKDUR[] = { "talk_duration", "talkduraction", "talkduration", NULL };
static const char *const F_SRCTRUNK[] = { "src_trunk_name", "srctrunkname", NULL };
static const char *const F_DSTTRUNK[] = { "dst_trunk_name", "dsttrcunkname", "dsttrunkname", "desttrunkname", NULL };
static const char *const F_PIN[] = { "pin_code", "pincode", NULL };
static const char *const F_STATUS[] = { "status", NULL };
static const char *const F_TYPE[] = { "type", NULL };
static const char *const F_RECORDING[] = { "recording", NULL };
static const char *const F_DID[] = { "did_number", "didnumber", NULL };

int ys_leg_from_event(const struct ys_event *ev, int64_t utc_offset_s, uint64_t recv_us, uint64_t sequence,
		      struct ys_leg *L, char *err, size_t errlen)
{
	memset(L, 0, sizeof *L);
	json_t *m = ev->msg;
	if (!m || !ys_event_is_cdr(ev)) {
		snprintf(err, errlen, "not a CDR event");
		return -1;
	}
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], b8[32];
	const char *call_id = field_text(m, F_CALLID, b1, sizeof b1);
	if (!*call_id) {
		snprintf(err, errlen, "CDR without call_id");
		return -1;
	}
	long call_dur = field_seconds(m, F_CALLDUR), talk_dur = field_seconds(m, F_TALKDUR);
	if (call_dur < 0) {
		snprintf(err, errlen, "CDR %s: call_duration is missing or not a number of seconds", call_id);
		return -1;
	}
	if (talk_dur < 0)
		talk_dur = 0;
	const char *status = field_text(m, F_STATUS, b2, sizeof b2);
	bool known;
	int disp = ys_disposition(status, &known);
	if (disp != CDR_ANSWERED)
		talk_dur = 0; /* billsec counts only answered legs */
	if (talk_dur > call_dur)
		call_dur = talk_dur;
	const char *from = field_text(m, F_FROM, b3, sizeof b3);
	const char *to = field_text(m, F_TO, b4, sizeof b4);
	const char *did = field_text(m, F_DID, b5, sizeof b5);
	const char *srct = field_text(m, F_SRCTRUNK, b6, sizeof b6);
	const char *dstt = field_text(m, F_DSTTRUNK, b7, sizeof b7);
	const char *type = field_text(m, F_TYPE, b8, sizeof b8);
	char pinbuf[32], recbuf[32];
	const char *pin = field_text(m, F_PIN, pinbuf, sizeof pinbuf);
	const char *rec = field_text(m, F_RECORDING, recbuf, sizeof recbuf);
	char tbuf[32];
	uint64_t start = ys_parse_time(field_text(m, F_START, tbuf, sizeof tbuf), utc_offset_s);
	if (!start)
		start = recv_us > (uint64_t)call_dur * 1000000u ? recv_us - (uint64_t)call_dur * 1000000u : recv_us;

	if (!strcasecmp(type, "inbound"))
		L->direction = "inbound";
	else if (!strcasecmp(type, "outbound"))
		L->direction = "outbound";
	else if (!strcasecmp(type, "internal"))
		L->direction = "internal";
	copy_str(L->trunk, sizeof L->trunk, L->direction && !strcmp(L->direction, "inbound") ? (*srct ? srct : dstt)
										: (*dstt ? dstt : srct));
	copy_str(L->call_id, sizeof L->call_id, call_id);
	copy_str(L->src, sizeof L->src, from);
	/* inbound: the number the caller dialled (the DID), as Asterisk's dst */
	copy_str(L->dst, sizeof L->dst, L->direction && !strcmp(L->direction, "inbound") && *did ? did : to);
	copy_str(L->clid, sizeof L->clid, from);
	if (*srct)
		snprintf(L->channel, sizeof L->channel, "Yeastar/trunk/%s", srct);
	else
		snprintf(L->channel, sizeof L->channel, "Yeastar/ext/%s", from);
	if (*dstt)
		snprintf(L->dstchannel, sizeof L->dstchannel, "Yeastar/trunk/%s", dstt);
	else
		snprintf(L->dstchannel, sizeof L->dstchannel, "Yeastar/ext/%s", to);
	snprintf(L->dcontext, sizeof L->dcontext, "%s", L->direction ? L->direction : "unknown");
	copy_str(L->lastapp, sizeof L->lastapp, !strcasecmp(status, "VOICEMAIL") ? "VoiceMail" : "Dial");
	copy_str(L->userfield, sizeof L->userfield, rec);
	copy_str(L->accountcode, sizeof L->accountcode, pin);
	copy_str(L->status, sizeof L->status, status);
	/* an array literal {"id"}: quote and escape for PostgreSQL */
	size_t k = 0;
	L->linkedids[k++] = '{';
	L->linkedids[k++] = '"';
	for (const char *p = L->call_id; *p && k + 4 < sizeof L->linkedids; p++) {
		if (*p == '"' || *p == '\\')
			L->linkedids[k++] = '\\';
		L->linkedids[k++] = *p;
	}
	L->linkedids[k++] = '"';
	L->linkedids[k++] = '}';
	L->linkedids[k] = '\0';

	struct cdr_row *r = &L->row;
	r->accountcode = L->accountcode;
	r->src = L->src;
	r->dst = L->dst;
	r->dcontext = L->dcontext;
	r->clid = L->clid;
	r->channel = L->channel;
	r->dstchannel = L->dstchannel;
	r->lastapp = L->lastapp;
	r->lastdata = "";
	r->uniqueid = L->call_id;
	r->linkedid = L->call_id;
	r->userfield = L->userfield;
	r->peeraccount = "";
	r->start_us = start;
	r->end_us = start + (uint64_t)call_dur * 1000000u;
	r->answer_us = disp == CDR_ANSWERED ? r->end_us - (uint64_t)talk_dur * 1000000u : 0;
	r->duration = call_dur;
	r->billsec = talk_dur;
	r->disposition = disp;
	r->amaflags = 3; /* DOCUMENTATION, Asterisk's default */
	r->sequence = sequence;

	struct call_row *c = &L->call;
	c->call_id = L->call_id;
	c->linkedids = L->linkedids;
	c->src = L->src;
	c->dst = L->dst;
	c->start_us = r->start_us;
	c->end_us = r->end_us;
	c->first_answer_us = r->answer_us;
	c->legs = 1;
	c->total_billsec = talk_dur;
	c->duration = call_dur;
	c->transfers = 0;
	c->outcome = outcome_of(disp);
	if (!known)
		snprintf(err, errlen, "CDR %s: unknown status \"%s\", stored as FAILED", call_id, status);
	return 0;
}
