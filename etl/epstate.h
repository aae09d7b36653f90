/*
 * epstate.h - a batch's endpoint-state changes, for fraud_state_step.
 *
 * PeerStatus, ContactStatus, Registry and DeviceStateChange events name an
 * endpoint and its state.  The loader hands the step (sql/0062) one row per
 * event that changes its endpoint's state within the batch: an event whose
 * state equals the previous event of the same endpoint in the batch is not
 * a change and is dropped here; whether the first one changes what history
 * already holds is the step's question.  This is the one place an event's
 * endpoint is named:
 *
 *   event              kind      endpoint                           detail  state
 *   PeerStatus         peer      Peer                               ''      PeerStatus
 *   ContactStatus      contact   PJSIP/EndpointName, else AOR       URI     ContactStatus
 *   Registry           registry  ChannelType/Username@Domain        ''      Status
 *   DeviceStateChange  device    Device                             ''      State
 *
 * A header is read as every column of cdrflow reads AMI (ami_get: the
 * first of its name); an event without its endpoint or state is skipped.
 * Rows, COPY text: seq, eventtime, kind, endpoint, detail, state, fields
 * (every header as JSON, as ami_event.fields).
 */
#ifndef CDRFLOW_EPSTATE_H
#define CDRFLOW_EPSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "ami.h"
#include "buf.h"

/* The columns of the rows, in order (the session table endpoint_event_batch). */
#define EPSTATE_COLUMNS "seq, eventtime, kind, endpoint, detail, state, fields"

struct epstate_slot {
	size_t key_off, state_off; /* in arena */
	uint32_t key_len, state_len;
	uint32_t hash;
	int used;
};

struct epstate {
	struct buf arena;  /* each endpoint's key, then its latest state (COPY text) */
	struct buf key, state, json; /* scratch */
	struct epstate_slot *tab;
	size_t cap, n;
};

void epstate_init(struct epstate *s);
void epstate_release(struct epstate *s);
/* Forget every endpoint (a new batch). */
void epstate_reset(struct epstate *s);
/* Is an event of this name an endpoint-state event? */
int epstate_is_event(const char *name, size_t len);
/* An endpoint-state event of the batch, in seq order: appends its row to
 * rows when it changes its endpoint's state; returns 1 then, else 0. */
int epstate_event(struct epstate *s, struct buf *rows, const struct ami_msg *m, const char *name, size_t len,
		  uint64_t seq, uint64_t time_us);

#endif
