/*
 * ami.h - a pure, incremental parser for the Asterisk Manager Interface.
 *
 * Bytes in, messages out; no sockets, no clocks.  Feed it any chunking of
 * the stream (1 byte at a time included) and the same messages come out.
 *
 * Framing (protocols.md section 1): an optional banner line
 * "Asterisk Call Manager/<version>", then messages made of "Key: Value" lines
 * ended by an empty line.  CRLF and bare LF are both accepted.  Asterisk <= 13
 * sends Command output as "Response: Follows" + raw text + "--END COMMAND--";
 * that body may hold blank lines and is read until the end marker.
 *
 * Each message is delivered with its exact raw bytes (through the empty line
 * that ends it) and an index of its headers.  Pointers in struct ami_msg are
 * valid only during the callback.
 *
 * Bounds: a message longer than max_msg bytes is skipped up to its end and
 * reported once as AMI_ERR_OVERSIZED; memory never grows past about
 * max_msg + one read chunk.
 */
#ifndef CDRFLOW_AMI_H
#define CDRFLOW_AMI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

enum ami_kind {
	AMI_BANNER,        /* raw = the banner line, no headers */
	AMI_EVENT,         /* has an Event header (Asterisk puts it first) */
	AMI_RESPONSE,      /* first header is Response */
	AMI_OTHER,         /* anything else with headers (e.g. an echoed Action) */
	AMI_ERR_GARBAGE,   /* a line outside any message that is not "Key: Value"; dropped */
	AMI_ERR_OVERSIZED, /* a message longer than max_msg, dropped; raw = its first bytes */
};

struct ami_header {
	uint32_t key_off, key_len; /* offsets from the start of the message */
	uint32_t val_off, val_len;
};

struct ami_msg {
	enum ami_kind kind;
	const char *raw;
	size_t raw_len;
	const struct ami_header *hdr;
	size_t nhdr;
	size_t full_len; /* == raw_len, except the whole size for AMI_ERR_OVERSIZED */
};

/* Return 0 to go on, anything else to stop: ami_parser_* then returns it. */
typedef int (*ami_msg_fn)(void *ctx, const struct ami_msg *msg);

struct ami_parser {
	struct buf in;          /* unconsumed input; in.data + msg_start is the current message */
	size_t msg_start;       /* offset of the current message in in */
	size_t scan;            /* offset of the first line not yet examined */
	size_t max_msg;
	int state;
	int follows_body;       /* in a "Response: Follows" body, waiting for --END COMMAND-- */
	int follows_ended;      /* saw --END COMMAND--, waiting for the empty line */
	size_t skipped;         /* bytes of an oversized message dropped so far */
	size_t skip_dropped;    /* bytes of the current line dropped while skipping */
	int skip_cr_only;       /* ...and they were all CRs */
	char over_head[128];    /* first bytes of the oversized message, for the report */
	size_t over_head_len;
	struct ami_header *hdr; /* index of the current message's headers */
	size_t nhdr, hdr_cap;
	int headers_only_first_event; /* option: for events, index only the Event header (fast path) */
	int first_is_event;
	char banner[128];       /* "Asterisk Call Manager/9.0.0" ("" until seen) */
	int version[3];         /* AMI version from the banner, {0,0,0} if none */
	/* counters since init */
	uint64_t n_events, n_responses, n_other, n_garbage, n_oversized;
};

/* max_msg: the largest message accepted (e.g. 1 MiB). */
void ami_parser_init(struct ami_parser *p, size_t max_msg);
void ami_parser_release(struct ami_parser *p);
/* Forget any partial message and expect a banner again (new connection). */
void ami_parser_reset(struct ami_parser *p);

/* Zero-copy feeding: get space to read(2) into (at least min bytes), then
 * tell the parser how many bytes landed there. */
char *ami_parser_space(struct ami_parser *p, size_t min, size_t *avail);
int ami_parser_commit(struct ami_parser *p, size_t n, ami_msg_fn fn, void *ctx);
/* Copying variant. */
int ami_parser_feed(struct ami_parser *p, const void *data, size_t n, ami_msg_fn fn, void *ctx);
/* One stored record: exactly ami_parser_reset() then ami_parser_feed(),
 * but a record that is one plain message (the usual case) is indexed in
 * place, without copying it into the parser's buffer. */
int ami_parser_feed_record(struct ami_parser *p, const char *data, size_t n, ami_msg_fn fn, void *ctx);
/* Bytes of a partial message held right now (0 at a message boundary). */
size_t ami_parser_pending(const struct ami_parser *p);

/* ASCII case-insensitive equality of n bytes (AMI keys are ASCII; the C
 * locale's strncasecmp folds the same letters and nothing else). */
static inline int ami_ascii_eq_nocase(const char *a, const char *b, size_t n)
{
	size_t i = 0;
	if (n >= 8) { /* keys usually match exactly: 8 bytes a step, the last 8 overlapping */
		uint64_t x, y;
		for (; i + 8 <= n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y)
				break;
		}
		if (i + 8 > n) {
			memcpy(&x, a + n - 8, 8);
			memcpy(&y, b + n - 8, 8);
			if (x == y)
				return 1;
		}
	}
	for (; i < n; i++) { /* from the first word that differs */
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x == y)
			continue;
		if ((x | 0x20) != (y | 0x20) || (unsigned char)((x | 0x20) - 'a') > 'z' - 'a')
			return 0;
	}
	return 1;
}

/* Key comparison as ami_get does it (ASCII, case-insensitive). */
static inline int ami_key_eq(const char *key, size_t key_len, const char *want, size_t want_len)
{
	return key_len == want_len && ami_ascii_eq_nocase(key, want, want_len);
}

/* Header lookup, case-insensitive key; returns the value (not NUL-terminated)
 * of the first match and sets *len, or NULL (*len = 0). */
static inline const char *ami_get(const struct ami_msg *m, const char *key, size_t *len)
{
	size_t n = strlen(key); /* inline: a constant key's length is known when compiling */
	for (size_t i = 0; i < m->nhdr; i++) {
		const struct ami_header *h = &m->hdr[i];
		if (h->key_len == n && ami_ascii_eq_nocase(m->raw + h->key_off, key, n)) {
			if (len)
				*len = h->val_len;
			return m->raw + h->val_off;
		}
	}
	if (len)
		*len = 0;
	return NULL;
}
/* Compare a header value with a C string. */
int ami_value_is(const struct ami_msg *m, const char *key, const char *value);

#endif
