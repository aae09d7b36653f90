/*
 * yeastar.h - Yeastar PBX event messages: what the collector stores and
 * what the ETL makes of them (docs/sources.md has the field mapping).
 *
 * P-Series OpenAPI events (WebSocket or webhook) are an envelope
 *   {"type": 30012, "sn": "3631A2124XXX", "msg": "{\"call_id\": ...}"}
 * whose msg is a JSON-encoded string (an object is accepted too).  The
 * S-Series push (webhook) is one flat object {"event": "NewCdr", ...} (or
 * "action") with its own field names, misspellings included
 * (callduraction, talkduraction, dsttrcunkname).
 */
#ifndef CDRFLOW_YEASTAR_H
#define CDRFLOW_YEASTAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "callgroup.h"
#include "cdrengine.h"

/* P-Series event IDs cdrflow maps (every subscribed event is stored). */
enum {
	YS_EV_EXT_REGISTRATION = 30007, /* Extension Registration Status Changed */
	YS_EV_EXT_CALL_STATUS = 30008,  /* Extension Call Status Changed */
	YS_EV_CALL_STATUS = 30011,      /* Call Status Changed */
	YS_EV_NEW_CDR = 30012,          /* New CDR */
};

enum ys_class {
	YS_GARBAGE = -1,  /* not a JSON object */
	YS_REPLY = 0,     /* a response (errcode...), the heartbeat answer: not stored */
	YS_EVENT = 1,     /* an event: stored as received */
};

/* What a received text message is.  The heartbeat answer is the plain
 * text "heartbeat response" (any text starting with "heartbeat"). */
enum ys_class ys_classify(const char *data, size_t len);

/* One event, decoded. */
struct ys_event {
	int type;          /* P-Series event ID; 0 for an S-Series push */
	char name[32];     /* S-Series "event"/"action" ("NewCdr"); "" for P-Series */
	char sn[64];
	void *msg;         /* json_t *: the event's fields (owned; for S-Series the object itself) */
	void *root;        /* json_t * (owned) */
};

/* 0, or -1 with err (not JSON, no envelope, msg not an object or a string
 * holding one). */
int ys_event_parse(const char *data, size_t len, struct ys_event *ev, char *err, size_t errlen);
void ys_event_release(struct ys_event *ev);
/* The event's fields as compact JSON (malloc'd, caller frees). */
char *ys_event_fields_json(const struct ys_event *ev);
/* A name for the ami_event row of a non-CDR event: YeastarExtensionRegistration,
 * YeastarExtensionCallStatus, YeastarCallStatus, Yeastar<ID>, Yeastar<name>. */
void ys_event_name(const struct ys_event *ev, char *out, size_t outlen);
/* The call_id field of the event's fields, NULL when none (30011 has one). */
const char *ys_event_call_id(const struct ys_event *ev);
/* Is it a CDR (30012 or NewCdr)? */
bool ys_event_is_cdr(const struct ys_event *ev);

/* A CDR as a leg and a one-leg call; strings live in the struct. */
struct ys_leg {
	struct cdr_row row;
	struct call_row call;
	const char *direction;  /* inbound, outbound, internal, or NULL (type unknown) */
	char trunk[64];         /* the trunk the call used, "" for internal */
	/* storage */
	char call_id[128], src[96], dst[96], clid[96], channel[192], dstchannel[192], dcontext[32];
	char lastapp[16], userfield[256], accountcode[64], linkedids[260], status[32];
};

/* Map a CDR event (ys_event_is_cdr) to a leg.  utc_offset_s: the PBX
 * clock's offset (time_start is local).  recv_us: when it was received
 * (the time when time_start is missing or unreadable).  0, or -1 with err. */
int ys_leg_from_event(const struct ys_event *ev, int64_t utc_offset_s, uint64_t recv_us, uint64_t sequence,
		      struct ys_leg *leg, char *err, size_t errlen);

/* Disposition of a Yeastar CDR status: ANSWERD/ANSWERED -> CDR_ANSWERED,
 * VOICEMAIL -> CDR_ANSWERED (the PBX answered with voicemail), NO ANSWER
 * (NO ANSWERED) -> CDR_NOANSWER, BUSY -> CDR_BUSY, FAILED -> CDR_FAILED,
 * anything else -> CDR_FAILED; *known = false for the last. */
int ys_disposition(const char *status, bool *known);

/* "2022/04/27 19:04:36" or "2019-10-23 22:18:50" (local time at utc_offset_s)
 * -> microseconds since the epoch; 0 when unreadable. */
uint64_t ys_parse_time(const char *s, int64_t utc_offset_s);

#endif
