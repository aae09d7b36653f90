/*
 * amidoctor.h - which inputs of the AMI stream cdrflow relies on, whether a
 * stream carries them, and what is lost without them (pure: events in,
 * verdicts out; no files, no clocks, no database).
 *
 * An input is MISSING only when the stream proves it was not sent although
 * the activity that produces it happened: Newexten absent while channels ran
 * dialplan (a channel event at priority >= 2, a DialBegin from a caller);
 * VarSet absent while Dial set DIALSTATUS (a DialEnd from a caller); no
 * Timestamp header on any event; no ChanVariable header on any channel
 * event; no CEL event although channels exist.  An input with no such
 * evidence is NOT_SEEN (no such activity), never "disabled".  Evidence
 * counts only once the stream went on 2 s or 200 events past its first
 * event: a spool that ends between a DialEnd and its VarSet proves nothing.
 */
#ifndef CDRFLOW_AMIDOCTOR_H
#define CDRFLOW_AMIDOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ami.h"

enum adoc_input {
	AI_TIMESTAMP,
	AI_CHANNEL,     /* Newchannel, Hangup */
	AI_NEWSTATE,
	AI_NEWEXTEN,
	AI_VARSET,
	AI_CHANVARIABLE,
	AI_DIAL,        /* DialBegin, DialEnd */
	AI_BRIDGE,      /* BridgeEnter, BridgeLeave */
	AI_CEL,
	AI_CEL_TYPES,
	AI_ORIGINATE,   /* OriginateResponse */
	AI_QUEUE,       /* Queue and Agent events */
	AI_RTCP,        /* RTCPSent, RTCPReceived */
	AI_CDR,         /* Event: Cdr (cdr_manager), for the self-check only */
	AI_N
};

enum adoc_state { ADOC_PRESENT, ADOC_NOT_SEEN, ADOC_MISSING };

struct adoc_info {
	const char *key;     /* stable identifier stored with a caveat, e.g. "newexten" */
	const char *name;    /* the AMI name(s), e.g. "Newexten" */
	const char *lost;    /* what is lost without it */
	const char *brief;   /* the same in a few words, for a caveat: "lastapp, lastdata, userfield" */
	const char *restore; /* the configuration line that restores it */
	bool rows;           /* missing it changes CDR rows (not only analytics) */
};

struct adoc_verdict {
	enum adoc_state state;
	bool rows;           /* this verdict affects CDR rows */
	char evidence[320];  /* why: counts seen in the stream */
};

const struct adoc_info *adoc_info(enum adoc_input i);
const char *adoc_state_name(enum adoc_state s);

struct amidoctor;

struct amidoctor *adoc_new(void);
void adoc_free(struct amidoctor *d);

/* One AMI message (events only are looked at; every header indexed).
 * recv_us: when the collector received it. */
void adoc_event(struct amidoctor *d, const struct ami_msg *m, uint64_t recv_us);
/* The same for an event whose Event header (name, len) the caller has
 * looked up already (the loader's one parse, etl/load.c). */
void adoc_event_named(struct amidoctor *d, const struct ami_msg *m, const char *name, size_t len, uint64_t recv_us);

/* dst becomes what src knows (a snapshot: the loader keeps one per batch,
 * and the state after the last committed batch). */
void adoc_copy(struct amidoctor *dst, const struct amidoctor *src);
struct amidoctor *adoc_dup(const struct amidoctor *src);

/* A span: the first and last event time fed since adoc_span_start() (0, 0
 * when none), beside everything fed since adoc_new(): the period of one
 * load run within all a process read of a node. */
void adoc_span_start(struct amidoctor *d);
void adoc_span(const struct amidoctor *d, uint64_t *first_us, uint64_t *last_us);

/* The verdict on one input, from everything fed so far. */
void adoc_verdict(const struct amidoctor *d, enum adoc_input i, struct adoc_verdict *v);

/* Inputs missing that change rows (bit i = enum adoc_input i). */
uint32_t adoc_missing_rows(const struct amidoctor *d);
/* Every input missing (rows or analytics). */
uint32_t adoc_missing_all(const struct amidoctor *d);

struct adoc_summary {
	uint64_t events, with_timestamp, channel_events, cdr_events;
	uint64_t first_us, last_us; /* event time (Timestamp, else receive time) */
	bool clock_is_receive;      /* no Timestamp: times are the collector's receive times */
	bool receive_not_pbx;       /* receive times are minutes away from the PBX's EventTV: a replay */
	char classes[256];          /* the Privilege classes seen, comma-separated */
	char cel_types[512];        /* CEL EventName values seen with counts */
};
void adoc_summary(const struct amidoctor *d, struct adoc_summary *s);

#endif
