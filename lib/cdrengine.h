/*
 * cdrengine.h - Asterisk's CDR engine (main/cdr.c, Asterisk 20), re-run
 * outside Asterisk.
 *
 * Asterisk builds its CDR rows with a per-channel state machine (Single,
 * Dial, DialedPending, Bridged, Parked, Finalized) fed by stasis messages:
 * channel snapshot updates, dial begin/end, bridge enter/leave and parking.
 * This module is that state machine, fed with the same messages rebuilt
 * from the AMI stream (cdrfeed.c does the rebuilding).  It knows nothing
 * about AMI, segments or PostgreSQL: messages in, finished rows out.
 *
 * Memory: one record per live channel and one per open CDR, taken from
 * free lists; nothing is allocated per message.
 */
#ifndef CDRFLOW_CDRENGINE_H
#define CDRFLOW_CDRENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Field sizes of Asterisk's struct ast_cdr: values are truncated alike. */
#define CDR_STR 80      /* AST_MAX_EXTENSION: channel, src, dst, lastdata, ... */
#define CDR_ID 150      /* AST_MAX_UNIQUEID */
#define CDR_USERFIELD 256

/* Channel snapshot flags (the subset of AST_FLAG_* cdr.c looks at). */
enum {
	SNAP_DEAD = 1u << 0,        /* hung up */
	SNAP_OUTGOING = 1u << 1,    /* created to be called (Dial, Queue, Originate) */
	SNAP_ORIGINATED = 1u << 2,  /* created by Originate */
	SNAP_HANGUP_EXEC = 1u << 3, /* running the h extension */
	SNAP_INTERNAL = 1u << 4,    /* AST_CHAN_TP_INTERNAL: never gets a CDR */
	SNAP_FEED_DIALBEGIN = 1u << 5, /* cdrfeed's own: a DialBegin named it as peer */
	SNAP_SUBROUTINE = 1u << 6,  /* AST_FLAG_SUBROUTINE_EXEC: running a Gosub */
	SNAP_FEED_GOSUB = 1u << 7,  /* cdrfeed's own: Gosub ran, its frame not yet pushed */
	SNAP_FEED_GOTO = 1u << 8,   /* cdrfeed's own: dialed by Dial(...,G(...)) */
};

/* The Gosub return stack of a channel as far as cdr.c can see it: the
 * SUBROUTINE flag each frame restores on Return (bit i = frame i). */
#define SNAP_GOSUB_DEPTH 64

/* What cdr.c reads from an ast_channel_snapshot. */
struct cdr_snapshot {
	char name[CDR_STR];
	char uniqueid[CDR_ID];
	char linkedid[CDR_ID];
	char cid_num[CDR_STR];
	char cid_name[CDR_STR];
	char accountcode[CDR_STR];
	char context[CDR_STR];
	char exten[CDR_STR];
	char appl[CDR_STR];
	char data[CDR_STR];
	int priority;
	int state;      /* AST_STATE_*: 6 = Up */
	int cause;      /* hangup cause, 0 = none */
	int amaflags;   /* 1 OMIT, 2 BILLING, 3 DOCUMENTATION */
	unsigned flags; /* SNAP_* */
	unsigned gosub_depth;  /* frames on the Gosub stack (cdrfeed keeps it) */
	uint64_t gosub_saved;  /* SUBROUTINE flag saved by each frame */
	uint64_t created_us;
};

enum cdr_disposition {
	CDR_NOANSWER = 0,
	CDR_NULL = 1 << 0,
	CDR_FAILED = 1 << 1,
	CDR_BUSY = 1 << 2,
	CDR_ANSWERED = 1 << 3,
	CDR_CONGESTION = 1 << 4,
	CDR_CANCEL = 1 << 5, /* canceldispositionenabled: a Dial the caller cancelled */
};
const char *cdr_disposition_name(int disposition);
/* The number of an AMA flag name as Asterisk writes it (OMIT 1, BILLING 2,
 * DOCUMENTATION 3, any case; n bytes of v); 0 for anything else. */
int cdr_amaflags_number(const char *v, size_t n);

/* A finished row, as Asterisk would hand it to its backends. */
struct cdr_row {
	const char *accountcode, *src, *dst, *dcontext, *clid, *channel, *dstchannel;
	const char *lastapp, *lastdata, *uniqueid, *linkedid, *userfield, *peeraccount;
	uint64_t start_us, answer_us, end_us; /* answer_us 0 = never answered */
	long duration, billsec;
	int disposition, amaflags;
	uint64_t sequence;   /* creation order (not Asterisk's process-global counter) */
	bool incomplete;     /* the channel was seen mid-call or closed by the grace period */
	bool clock_fault;    /* an event of its call had an odd time (cdrfeed.c sets it) */
};

/* cdr.conf [general] settings that change the rows (names as in cdr.conf;
 * a zeroed struct is Asterisk's defaults except endbeforehexten). */
struct cdr_options {
	bool unanswered;         /* default no */
	bool congestion;         /* default no */
	bool endbeforehexten;    /* default yes */
	bool initiatedseconds;   /* default no */
	bool nochanneldefault;   /* channeldefaultenabled = no (default yes) */
	bool ignorestatechanges; /* default no: bridge and parking messages ignored */
	bool ignoredialchanges;  /* default no: dial messages only set the disposition */
	bool canceldisposition;  /* canceldispositionenabled (default no): CANCEL, not NO ANSWER */
};

/* CDR properties (CDR_PROP(), NoCDR): Asterisk's AST_CDR_FLAG_* values. */
enum {
	CDR_PROP_DISABLE = 1u << 1,     /* this CDR is not posted */
	CDR_PROP_DISABLE_ALL = 3u << 1, /* nor are the CDRs that follow */
	CDR_PROP_PARTY_A = 1u << 3,     /* always Party A in a pairing */
};

/* ForkCDR options (app_forkcdr.c). */
enum {
	CDR_FORK_KEEP_VARS = 1u << 0,  /* v */
	CDR_FORK_FINALIZE = 1u << 4,   /* e */
	CDR_FORK_SET_ANSWER = 1u << 5, /* a */
	CDR_FORK_RESET = 1u << 6,      /* r */
};

struct cdr_bridge_info {
	const char *id;       /* BridgeUniqueid */
	const char *subclass; /* BridgeType: basic, parking, confbridge, holding... */
	const char *tech;     /* BridgeTechnology: simple_bridge, holding_bridge, softmix... */
	int nchannels;        /* BridgeNumChannels, the entering channel included */
};

typedef void (*cdr_emit_fn)(void *arg, const struct cdr_row *row);

struct cdr_engine;

/* Returns NULL only on allocation failure.  Rows are passed to emit as the
 * channels that own them hang up (pointers valid during the call only). */
struct cdr_engine *cdr_engine_new(const struct cdr_options *opt, cdr_emit_fn emit, void *arg);
void cdr_engine_free(struct cdr_engine *e);

/* Called with a channel's uniqueid when the engine forgets it (hung up or
 * expired), after its rows were emitted. */
typedef void (*cdr_gone_fn)(void *arg, const char *uniqueid);
/* Called when the engine starts tracking a channel, and when a channel's
 * linkedid changes (incomplete: first seen mid-call). */
typedef void (*cdr_seen_fn)(void *arg, const char *uniqueid, const char *linkedid, bool incomplete);
void cdr_engine_on_gone(struct cdr_engine *e, cdr_gone_fn fn, void *arg);
void cdr_engine_on_seen(struct cdr_engine *e, cdr_seen_fn fn, void *arg);

/* The creation order stamp of CDRs made by the next messages. */
void cdr_engine_set_stamp(struct cdr_engine *e, uint64_t stamp);

/* Is a live channel in a bridge (not a parking or holding one)? */
bool cdr_engine_bridged(const struct cdr_engine *e, const char *uniqueid);

/* The current snapshot of a live channel (copied into *out), false if unknown. */
bool cdr_engine_snapshot(const struct cdr_engine *e, const char *uniqueid, struct cdr_snapshot *out);

/* The messages.  Times are microseconds since the epoch. */
void cdr_engine_channel_update(struct cdr_engine *e, const struct cdr_snapshot *s, uint64_t t);
/* Set flags on a live channel's cached snapshot without a snapshot update. */
/* Set a live channel's amaflags (carried by CEL only). */
void cdr_engine_amaflags(struct cdr_engine *e, const char *uniqueid, int amaflags);
void cdr_engine_channel_flags(struct cdr_engine *e, const char *uniqueid, unsigned set, unsigned clear);
/* Replace what the feed keeps in a live channel's cached snapshot (flags,
 * Gosub stack, amaflags) without a snapshot update: the change shows in the
 * next update, as a channel flag set without a publish does in Asterisk. */
void cdr_engine_amend(struct cdr_engine *e, const struct cdr_snapshot *s);
void cdr_engine_dial(struct cdr_engine *e, const struct cdr_snapshot *caller, const struct cdr_snapshot *peer,
		     const char *dialstatus, uint64_t t);
void cdr_engine_bridge_enter(struct cdr_engine *e, const struct cdr_snapshot *s, const struct cdr_bridge_info *b,
			     uint64_t t);
void cdr_engine_bridge_leave(struct cdr_engine *e, const struct cdr_snapshot *s, const struct cdr_bridge_info *b,
			     uint64_t t);
void cdr_engine_parked(struct cdr_engine *e, const struct cdr_snapshot *parkee, const char *lot, unsigned space,
		       uint64_t t);
/* Set(CDR(userfield)=value) on a channel. */
void cdr_engine_userfield(struct cdr_engine *e, const char *channel_name, const char *value);
/* CDR_PROP(name)=1 / =0 and NoCDR() (ast_cdr_set_property/clear_property). */
void cdr_engine_set_property(struct cdr_engine *e, const char *channel_name, unsigned prop);
void cdr_engine_clear_property(struct cdr_engine *e, const char *channel_name, unsigned prop);
/* ResetCDR() at time t (ast_cdr_reset). */
void cdr_engine_reset(struct cdr_engine *e, const char *channel_name, uint64_t t);
/* ForkCDR(options) at time t (ast_cdr_fork). */
void cdr_engine_fork(struct cdr_engine *e, const char *channel_name, unsigned options, uint64_t t);

/* Close every channel whose last message is older than idle_before_us (or
 * all when 0): finalize and emit its rows flagged incomplete.  Returns the
 * number of channels closed. */
size_t cdr_engine_expire(struct cdr_engine *e, uint64_t idle_before_us);

/* Live channels right now, and the oldest first-message stamp among them
 * (UINT64_MAX when none). */
size_t cdr_engine_live(const struct cdr_engine *e, uint64_t *oldest_stamp);

#endif
