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

struct source_config;
struct node {
	const struct node_config *cfg;     /* an AMI node; NULL for a source */
	const struct source_config *src;   /* a `sources:` item (yeastar.c); NULL for an AMI node */
	const char *name;                  /* the node name (either's) */
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

/* The reconnect delay every node type uses: capped exponential backoff
 * with equal jitter (half fixed, half random), back to min after a
 * session that lasted more than 30 s. */
struct backoff {
	uint64_t min_ms, max_ms, delay_ms;
	unsigned seed;
};
void backoff_init(struct backoff *b, uint64_t min_ms, uint64_t max_ms, const void *salt);
/* The wait before the next attempt, for a session that lasted ran_ms. */
uint64_t backoff_next(struct backoff *b, uint64_t ran_ms);

/* Run one connection until it ends. */
enum session_result session_run(struct node *n);
/* Thread body: session_run in a loop with backoff until stop_fd fires. */
void *node_main(void *arg);
/* Wait up to ms for stop_fd; 1 if stopping. */
int node_wait_stop(struct node *n, uint64_t ms);

#endif
