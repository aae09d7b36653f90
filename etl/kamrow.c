/*
 * kamrow.c - a Kamailio acc row -> a leg and its call (kamrow.h).
 */
#include "kamrow.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

/* ".123456" -> microseconds (digits past the sixth ignored) */
static uint64_t fraction_us(const char **p)
{
	uint64_t us = 0;
	int n = 0;
	if (**p != '.')
		return 0;
	(*p)++;
	while (**p >= '0' && **p <= '9') {
		if (n < 6) {
			us = us * 10 + (uint64_t)(**p - '0');
			n++;
		}
		(*p)++;
	}
	while (n++ < 6)
		us *= 10;
	return us;
}

int kam_parse_time(const char *s, int local, uint64_t *us)
{
	if (!s)
		return -1;
	while (*s == ' ')
		s++;
	const char *p = s;
	size_t nd = strspn(p, "0123456789");
	if (nd == 0)
		return -1;
	if (p[nd] != '-') { /* epoch seconds */
		if (nd > 12)
			return -1;
		uint64_t sec = 0;
		for (size_t i = 0; i < nd; i++)
			sec = sec * 10 + (uint64_t)(p[i] - '0');
		p += nd;
		uint64_t f = fraction_us(&p);
		while (*p == ' ')
			p++;
		if (*p || sec == 0 || sec >= UINT64_C(253402300800)) /* 1970 .. 9999 */
			return -1;
		*us = sec * 1000000u + f;
		return 0;
	}
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int y, mo, d, h, mi, se;
	if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' || digits(&p, 2, &d) < 0)
		return -1;
	if (*p != ' ' && *p != 'T')
		return -1;
	p++;
	if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' || digits(&p, 2, &se) < 0)
		return -1;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	uint64_t f = fraction_us(&p);
	int zone = 0, has_zone = 0;
	if (*p == 'Z') {
		has_zone = 1;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, zh, zm = 0;
		if (digits(&p, 2, &zh) < 0)
			return -1;
		if (*p == ':')
			p++;
		if (*p >= '0' && *p <= '9' && digits(&p, 2, &zm) < 0)
			return -1;
		if (zh > 23 || zm > 59)
			return -1;
		zone = sign * (zh * 3600 + zm * 60);
		has_zone = 1;
	}
	while (*p == ' ')
		p++;
	if (*p)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	time_t t;
	if (local && !has_zone) {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	} else {
		t = timegm(&tm) - zone;
	}
	if (t == (time_t)-1 || t <= 0 || (uint64_t)t >= UINT64_C(253402300800))
		return -1;
	*us = (uint64_t)t * 1000000u + f;
	return 0;
}

int kam_disposition(const char *sip_code, int answered)
{
	if (answered)
		return CDR_ANSWERED;
	int code = 0;
	if (sip_code && strspn(sip_code, "0123456789") == 3 && !sip_code[3])
		code = (sip_code[0] - '0') * 100 + (sip_code[1] - '0') * 10 + (sip_code[2] - '0');
	if (code >= 200 && code < 300)
		return CDR_ANSWERED;
	switch (code) {
	case 486: /* Busy Here */
	case 600: /* Busy Everywhere */
	case 603: /* Decline */
		return CDR_BUSY;
	case 408: /* Request Timeout (no final answer in fr_inv_timer) */
	case 480: /* Temporarily Unavailable (no answer, not registered) */
	case 487: /* Request Terminated (the caller cancelled) */
		return CDR_NOANSWER;
	default:
		return CDR_FAILED; /* 3xx, other 4xx, 5xx, 6xx, none */
	}
}

uint64_t kam_sequence(int64_t id, enum kam_kind kind)
{
	return (uint64_t)id * KAM_KINDS + (uint64_t)kind;
}

static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

/* "sip:gw1.example.com:5060;transport=udp" -> "gw1.example.com:5060" */
static void endpoint(const char *s, char *out, size_t n)
{
	if (!s)
		s = "";
	if (!strncmp(s, "sips:", 5))
		s += 5;
	else if (!strncmp(s, "sip:", 4))
		s += 4;
	const char *at = strchr(s, '@');
	if (at && at < s + strcspn(s, ";>"))
		s = at + 1;
	size_t len = strcspn(s, ";> \t");
	if (len >= n)
		len = n - 1;
	memcpy(out, s, len);
	out[len] = '\0';
}

static const char *opt(const char *const v[KF_N], enum kam_field f)
{
	return v[f] ? v[f] : "";
}

static const char *outcome_of(int disposition)
{
	switch (disposition) {
	case CDR_ANSWERED: return "answered";
	case CDR_BUSY: return "busy";
	case CDR_CONGESTION: return "congestion";
	case CDR_FAILED: return "failed";
	default: return "no_answer";
	}
}

int kam_leg_build(const struct kam_source *k, enum kam_kind kind, const char *const v[KF_N], const char *node,
		  struct kam_leg *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	const char *ids = v[KF_ID];
	if (!ids || !*ids || strspn(ids, "0123456789") != strlen(ids) || strlen(ids) > 15) {
		snprintf(err, errlen, "row key \"%.40s\" is not a number", ids ? ids : "(null)");
		return -1;
	}
	int64_t id = 0;
	for (const char *p = ids; *p; p++)
		id = id * 10 + (*p - '0');
	out->id = id;
	int local = k->time_mode != 4;
	uint64_t start = 0, end = 0, answer = 0;
	const char *code = v[KF_CODE];
	int disp;
	if (kind == KAM_CDRS) {
		uint64_t logged, t;
		if (kam_parse_time(v[KF_START], local, &logged) < 0) {
			snprintf(err, errlen, "row %s: start time \"%.40s\" does not parse", ids, opt(v, KF_START));
			return -1;
		}
		/* acc_cdrs keeps whole seconds: a cdr_extra INVITE time is finer;
		 * with cdr_start_on_confirmed, start_time is the answer and the
		 * INVITE time (when mapped) is the only ring start there is */
		start = logged;
		if (v[KF_SETUP] && kam_parse_time(v[KF_SETUP], local, &t) == 0 &&
		    (k->start_on_confirmed ? t <= logged + 1000000u && t + UINT64_C(86400000000) > logged
					   : t + 1000000u >= logged && t < logged + 1000000u))
			start = t;
		if (v[KF_ANSWER] && *v[KF_ANSWER] && kam_parse_time(v[KF_ANSWER], local, &t) == 0 &&
		    t + 1000000u >= logged)
			answer = t > start ? t : start;
		/* the end: Kamailio's duration (in ms, from its own start: the
		 * INVITE, or the answer with cdr_start_on_confirmed), else
		 * end_time (acc_cdrs' default end is 2000-01-01) */
		double d = -1;
		const char *ds = v[KF_DURATION];
		if (!ds || sscanf(ds, "%lf", &d) != 1 || !(d >= 0 && d < 1e9))
			d = -1;
		uint64_t base = !k->start_on_confirmed ? start : answer ? answer : logged;
		if (d >= 0)
			end = base + (uint64_t)(d * 1e6 + 0.5);
		else if (kam_parse_time(v[KF_END], local, &end) < 0)
			end = start;
		if (end < start)
			end = start;
		if (answer > end)
			answer = end;
		int code_known = code && *code;
		disp = kam_disposition(code, answer != 0 || (!code_known && k->start_on_confirmed && d > 0));
		if (disp == CDR_ANSWERED && !answer) {
			/* no answer time: the confirmed start, else billed from the start (docs/sources.md) */
			answer = k->start_on_confirmed && logged > start ? logged : start;
			if (answer > end)
				answer = end;
		}
		/* a failed dialog's CDR ends where it starts: the failure reply's time says how long it rang */
		if (disp != CDR_ANSWERED && v[KF_FAILURE] && kam_parse_time(v[KF_FAILURE], local, &t) == 0 && t > end &&
		    t < start + UINT64_C(86400000000))
			end = t;
	} else if (kind == KAM_MISSED) {
		if (kam_parse_time(v[KF_TIME], local, &start) < 0) {
			snprintf(err, errlen, "row %s: time \"%.40s\" does not parse", ids, opt(v, KF_TIME));
			return -1;
		}
		end = start;
		disp = kam_disposition(code, 0);
		if (disp == CDR_ANSWERED)
			disp = CDR_FAILED; /* a missed call was not answered, whatever the column says */
	} else {
		/* acc: the INVITE's 200 (answer) and the BYE's time */
		if (kam_parse_time(v[KF_TIME], local, &start) < 0) {
			snprintf(err, errlen, "row %s: time \"%.40s\" does not parse", ids, opt(v, KF_TIME));
			return -1;
		}
		if (kam_parse_time(v[KF_END], local, &end) < 0 || end < start)
			end = start;
		answer = start;
		disp = CDR_ANSWERED;
	}
	if (disp != CDR_ANSWERED)
		answer = 0;
	struct cdr_row *r = &out->row;
	copy_str(out->callid, sizeof out->callid, v[KF_CALLID]);
	if (!out->callid[0])
		snprintf(out->callid, sizeof out->callid, "%s-%d-%s", node, (int)kind, ids);
	copy_str(out->src, sizeof out->src, v[KF_SRC_USER]);
	copy_str(out->dst, sizeof out->dst, v[KF_DST_USER]);
	copy_str(out->accountcode, sizeof out->accountcode, v[KF_ACCOUNTCODE]);
	if (out->src[0])
		snprintf(out->clid, sizeof out->clid, "\"%s\" <%s>", out->src, out->src);
	/* channels as Asterisk names them, "SIP/<peer>-<8 hex>", so that
	 * tenants.trunks, tenant rules and rating.buy[].trunk globs and the
	 * trunk column work as for Asterisk legs */
	char peer[KAM_STR];
	const char *from = v[KF_SRC_IP] && *v[KF_SRC_IP] ? v[KF_SRC_IP] : opt(v, KF_SRC_DOMAIN);
	endpoint(from, peer, sizeof peer);
	if (peer[0])
		snprintf(out->channel, sizeof out->channel, "SIP/%s-%08x", peer, (unsigned)((uint64_t)id & 0xffffffffu));
	const char *to = v[KF_CARRIER] && *v[KF_CARRIER] ? v[KF_CARRIER] : opt(v, KF_DST_DOMAIN);
	endpoint(to, peer, sizeof peer);
	if (peer[0])
		snprintf(out->dstchannel, sizeof out->dstchannel, "SIP/%s-%08x", peer,
			 (unsigned)((uint64_t)id & 0xffffffffu));
	if (code && *code)
		snprintf(out->lastdata, sizeof out->lastdata, "%.3s %s", code, opt(v, KF_REASON));
	r->accountcode = out->accountcode;
	r->src = out->src;
	r->dst = out->dst;
	r->dcontext = k->context;
	r->clid = out->clid;
	r->channel = out->channel;
	r->dstchannel = out->dstchannel;
	r->lastapp = "Kamailio";
	r->lastdata = out->lastdata;
	r->uniqueid = out->callid;
	r->linkedid = out->callid;
	r->userfield = "";
	r->peeraccount = "";
	r->start_us = start;
	r->answer_us = answer;
	r->end_us = end;
	r->duration = (long)((end - start) / 1000000u);
	r->billsec = answer ? (long)((end - answer) / 1000000u) : 0;
	r->disposition = disp;
	r->amaflags = 3; /* DOCUMENTATION, Asterisk's default */
	r->sequence = kam_sequence(id, kind);
	/* the call: one per dialog, named by its Call-ID */
	size_t n = 0;
	out->linkedids[n++] = '{';
	out->linkedids[n++] = '"';
	for (const char *p = out->callid; *p && n + 4 < sizeof out->linkedids; p++) {
		if (*p == '"' || *p == '\\')
			out->linkedids[n++] = '\\';
		out->linkedids[n++] = *p;
	}
	out->linkedids[n++] = '"';
	out->linkedids[n++] = '}';
	out->linkedids[n] = '\0';
	struct call_row *c = &out->call;
	c->call_id = out->callid;
	c->linkedids = out->linkedids;
	c->src = out->src;
	c->dst = out->dst;
	c->start_us = start;
	c->end_us = end;
	c->first_answer_us = answer;
	c->legs = 1;
	c->total_billsec = r->billsec;
	c->duration = r->duration;
	c->transfers = 0;
	c->outcome = outcome_of(disp);
	return 0;
}
