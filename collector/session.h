/*
 * session.h - one PBX node: connect, log in, stream events into the spool,
 * keep the link alive with Ping, reconnect forever with capped exponential
 * backoff and jitter.  Runs in its own thread.
 */
#ifndef CDRFLOW_SESSION_H
#define CDRFLOW_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "spool.h"

enum session_result {
	SESSION_STOPPED,     /* asked to stop */
	SESSION_LOST,        /* connection failed or dropped: retry with backoff */
	SESSION_AUTH_FAILED, /* login refused: retry slowly */
	SESSION_FATAL,       /* the spool failed */
	SESSION_CONFIG,      /* no secret, unreadable CA file...: fix the configuration */
};

/* --check: what the PBX says over AMI about the inputs cdrflow relies on. */
struct node_check {
	char banner[128];            /* "Asterisk Call Manager/9.0.0" */
	uint64_t events, events_ts;  /* events received during the check; with a Timestamp header */
	uint32_t classes;            /* Privilege classes of those events (bit i = check_class_names[i]) */
	int settings, user, cel;     /* 0 = no answer, 1 = answered, -1 = refused (the user lacks write=command) */
	char timestampevents[16], channelvars[256], disabledevents[256]; /* manager show settings */
	char read_perm[512];         /* manager show user <username> */
	char cel_logging[32], cel_events[512]; /* cel show status */
};
extern const char *const check_class_names[];
extern const unsigned check_nclasses;

struct node {
	const struct node_config *cfg;
	struct spool *spool;
	int stop_fd;  /* eventfd: readable when the program is stopping */
	int once;     /* --check: connect, log in, ping once, return */
	pthread_t thread;
	/* stats, read by the status line */
	_Atomic uint64_t reconnects;
	_Atomic uint64_t connected;   /* 1 while logged in */
	_Atomic int64_t lag_us;       /* receive time - event Timestamp of the last event */
	_Atomic uint64_t oversized, garbage;
	uint64_t max_event_size;
	enum session_result result;   /* of the last session (for --check) */
	char why[256];                /* why the last session ended */
	char ami_version[32];
	struct node_check check;      /* --check only */
};

/* Run one connection until it ends. */
enum session_result session_run(struct node *n);
/* Thread body: session_run in a loop with backoff until stop_fd fires. */
void *node_main(void *arg);
/* Wait up to ms for stop_fd; 1 if stopping. */
int node_wait_stop(struct node *n, uint64_t ms);

#endif
