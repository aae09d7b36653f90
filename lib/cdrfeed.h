/*
 * cdrfeed.h - turns the AMI event stream into the messages cdrengine.c
 * runs on (see ../shared/docs/cdr-reconstruction.md).
 *
 * What the stream does not say directly is inferred here:
 *  - the message time: AMI's Timestamp is taken when the event is written,
 *    after Asterisk's CDR engine saw the message.  A channel event and its
 *    CEL twin (Newchannel/CHAN_START, Newstate Up/ANSWER, Hangup/HANGUP,
 *    BridgeEnter/BRIDGE_ENTER, BridgeLeave/BRIDGE_EXIT) are both upper
 *    bounds; the earlier one is used.  Events wait in a short reorder
 *    window (FEED_WINDOW_EVENTS events or FEED_WINDOW_US of stream time)
 *    so that a twin written a little later is still seen;
 *  - "was this channel dialed" (AST_FLAG_OUTGOING without ORIGINATED):
 *    the callee of a DialBegin that has a caller, a channel that runs
 *    AppDial/AppQueue, the peer of a DialEnd/DialState without DialBegin;
 *    an AMI Originate (DialBegin without a caller) is originated instead;
 *    leaving a bridge clears it;
 *  - whether VarSet is a snapshot update: only when manager.conf sets
 *    channelvars, which shows as ChanVariable headers;
 *  - amaflags (only CEL carries them), Set(CDR(userfield)=...) from
 *    Newexten, the h extension (endbeforehexten).
 *
 * Everything else is the channel snapshot each channel event carries.
 */
#ifndef CDRFLOW_CDRFEED_H
#define CDRFLOW_CDRFEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ami.h"
#include "callgroup.h"
#include "cdrengine.h"

#define FEED_WINDOW_EVENTS 512
#define FEED_WINDOW_US 500000u
/* A CEL event is a channel event's twin only within this many events. */
#define FEED_TWIN_SPAN 2048u
/* The clock stage (see cdrfeed.c): a time this far from the stream's clock
 * is judged by the events after it. */
#define FEED_CLOCK_JUMP_US (60u * 1000000u)
#define FEED_CLOCK_LOOKAHEAD 8u
/* Without Timestamp headers: the most time one event of a read() is spread
 * back over. */
#define FEED_RUN_PACE_US 250u
/* This many events in a row without a Timestamp: the stream has none now. */
#define FEED_NO_TS_STREAK 64u

struct cdr_feed;

/* Where finished legs and calls go.  stamp: that of the event that finished
 * them (cdr_feed_event's stamp), so a replay can tell what it already sent. */
struct cdr_feed_sink {
	void (*leg)(void *arg, const struct cdr_row *r, uint64_t stamp);
	void (*call)(void *arg, const struct call_row *c, uint64_t stamp);
	void *arg;
	/* optional: a warning about the stream's clock (an odd event, named);
	 * stamp: the event's, so a replay can tell what it already said */
	void (*clock)(void *arg, const char *msg, uint64_t stamp);
	/* optional: a leg's business facts (the ETL's legclass), called before
	 * leg() for every leg, replayed ones too, so that its call sums them up
	 * (call_row.facts) */
	void (*classify)(void *arg, const struct cdr_row *r, struct leg_facts *out);
};

struct cdr_feed *cdr_feed_new(const struct cdr_options *opt, const struct cdr_feed_sink *sink);
void cdr_feed_free(struct cdr_feed *f);

/* Does the engine need this event (so the caller indexes all its headers)? */
bool cdr_feed_wants(const char *name, size_t len);

/* One event, every header indexed.  t_us: its Timestamp (or receive time);
 * stamp: a number increasing along the stream (the record's sequence);
 * pos: where to start reading to see this event again (opaque, increasing). */
void cdr_feed_event(struct cdr_feed *f, const struct ami_msg *m, const char *name, size_t len, uint64_t t_us,
		    uint64_t stamp, uint64_t pos);
/* The same, for a caller that already read the Timestamp header: ts says
 * what it was (t_us is then its time, else the receive time). */
enum cdr_feed_ts { CDR_TS_NONE, CDR_TS_OK, CDR_TS_BAD }; /* absent, a time, not a time */
void cdr_feed_event_ts(struct cdr_feed *f, const struct ami_msg *m, const char *name, size_t len, uint64_t t_us,
		       enum cdr_feed_ts ts, uint64_t stamp, uint64_t pos);

/* Run the events that waited in the window and are older than
 * now_us - 2 * FEED_WINDOW_US (UINT64_MAX: all of them, end of input). */
void cdr_feed_flush(struct cdr_feed *f, uint64_t now_us);

/* Close channels idle since before idle_before_us (0: all), rows flagged
 * incomplete.  Returns how many. */
size_t cdr_feed_expire(struct cdr_feed *f, uint64_t idle_before_us);

/* The smallest pos the state depends on: the first event of the oldest open
 * call or of the window (UINT64_MAX if none).  Replaying the stream from
 * there rebuilds the same state. */
uint64_t cdr_feed_oldest_pos(const struct cdr_feed *f);
/* The stamp of the last event run (0 if none). */
uint64_t cdr_feed_done_stamp(const struct cdr_feed *f);

/* The newest event time seen. */
uint64_t cdr_feed_stream_time(const struct cdr_feed *f);

/* What the stream did not say, for rows that were written anyway: each
 * kind counted with the first channel it concerned, so a run can warn once
 * with the setting that fixes it (cdr_feed_caveat_text). */
enum cdr_caveat {
	CAVEAT_ORIGINATE_APP, /* lastapp/lastdata of an Originate to an application */
	CAVEAT_N
};
struct cdr_feed_caveat {
	uint64_t count;
	char example[CDR_STR];
	uint64_t first_us, last_us; /* times of the first and the latest concerned event */
};
const struct cdr_feed_caveat *cdr_feed_caveat(const struct cdr_feed *f, enum cdr_caveat k);
/* What is unknown and the Asterisk setting that restores it. */
const char *cdr_feed_caveat_text(enum cdr_caveat k);
/* The one-line warning of caveat k: "node N: C leg(s), e.g. CHANNEL: TEXT". */
void cdr_feed_caveat_line(const struct cdr_feed *f, enum cdr_caveat k, const char *node, char *out, size_t size);
/* Its stable key and AMI name (input_caveat.input, .ami_name). */
const char *cdr_feed_caveat_key(enum cdr_caveat k);
const char *cdr_feed_caveat_ami_name(enum cdr_caveat k);

/* Counters. */
struct cdr_feed_stats {
	uint64_t events, cel_matched, live, open_calls, waiting;
	uint64_t clock_faults; /* events whose time was odd */
};
void cdr_feed_stats(const struct cdr_feed *f, struct cdr_feed_stats *st);

#endif
