/*
 * ysnode.h - a Yeastar PBX as a collector node (docs/collector.md):
 * transport websocket: get_token / refresh_token over HTTP(S), then the
 * OpenAPI WebSocket, subscribe to the configured event IDs, "heartbeat"
 * every heartbeat_interval, reconnect with the same capped exponential
 * backoff and jitter as AMI nodes; transport webhook: an HTTP listener the
 * PBX POSTs its events to (X-Signature checked when a secret is set).
 * Every event is stored in the node's segments exactly as received (record
 * flag SEG_FLAG_JSON); responses and heartbeat answers are not.
 */
#ifndef CDRFLOW_COLLECTOR_YSNODE_H
#define CDRFLOW_COLLECTOR_YSNODE_H

#include <stddef.h>

#include "session.h"

/* Thread body for a node whose src is a yeastar source. */
void *yeastar_node_main(void *arg);

/* --check: get a token and open the WebSocket (websocket), or bind the
 * listener (webhook), then stop.  Returns the session result; n->why says
 * what failed. */
enum session_result yeastar_check(struct node *n);

/* Process-wide set-up before any node thread: loads libcurl (dlopen) and
 * initialises it.  0, or -1 with a one-line reason in err. */
int yeastar_global_init(char *err, size_t errlen);
void yeastar_global_release(void);

#endif
