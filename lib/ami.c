#include "ami.h"
#include "xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { ST_BANNER, ST_MSG, ST_SKIP };

#define END_COMMAND "--END COMMAND--"

void ami_parser_init(struct ami_parser *p, size_t max_msg)
{
	memset(p, 0, sizeof *p);
	buf_init(&p->in, 0);
	if (max_msg < 64)
		max_msg = 64;
	if (max_msg > UINT32_MAX / 2)
		max_msg = UINT32_MAX / 2;
	p->max_msg = max_msg;
	p->state = ST_BANNER;
}

void ami_parser_release(struct ami_parser *p)
{
	buf_release(&p->in);
	free(p->hdr);
	p->hdr = NULL;
	p->nhdr = p->hdr_cap = 0;
}

static void message_reset(struct ami_parser *p)
{
	p->nhdr = 0;
	p->first_is_event = 0;
	p->follows_body = 0;
	p->follows_ended = 0;
}

void ami_parser_reset(struct ami_parser *p)
{
	buf_reset(&p->in);
	p->msg_start = p->scan = 0;
	p->skipped = 0;
	p->skip_dropped = 0;
	p->skip_cr_only = 1;
	p->state = ST_BANNER;
	message_reset(p);
}

size_t ami_parser_pending(const struct ami_parser *p)
{
	return p->in.len - p->msg_start + p->skipped;
}

char *ami_parser_space(struct ami_parser *p, size_t min, size_t *avail)
{
	*avail = 0;
	if (buf_grow(&p->in, min) < 0)
		return NULL; /* cannot happen: the input buffer has no cap */
	*avail = p->in.cap - p->in.len;
	return p->in.data + p->in.len;
}

static int emit(struct ami_parser *p, enum ami_kind kind, const char *raw, size_t len,
		ami_msg_fn fn, void *ctx)
{
	struct ami_msg m = { kind, raw, len, p->hdr, p->nhdr, len };
	if (kind == AMI_ERR_OVERSIZED)
		m.full_len = p->skipped;
	switch (kind) {
	case AMI_EVENT: p->n_events++; break;
	case AMI_RESPONSE: p->n_responses++; break;
	case AMI_OTHER: p->n_other++; break;
	case AMI_ERR_GARBAGE: p->n_garbage++; break;
	case AMI_ERR_OVERSIZED: p->n_oversized++; break;
	case AMI_BANNER: break;
	}
	return fn ? fn(ctx, &m) : 0;
}

static inline int key_is(const char *msg, const struct ami_header *h, const char *key)
{
	size_t n = strlen(key);
	return h->key_len == n && ami_ascii_eq_nocase(msg + h->key_off, key, n);
}

static inline int val_is(const char *msg, const struct ami_header *h, const char *val)
{
	size_t n = strlen(val);
	return h->val_len == n && !strncasecmp(msg + h->val_off, val, n);
}

static enum ami_kind classify(const struct ami_parser *p, const char *msg)
{
	if (key_is(msg, &p->hdr[0], "Event"))
		return AMI_EVENT;
	if (key_is(msg, &p->hdr[0], "Response"))
		return AMI_RESPONSE;
	for (size_t i = 1; i < p->nhdr; i++)
		if (key_is(msg, &p->hdr[i], "Event"))
			return AMI_EVENT;
	return AMI_OTHER;
}

static void parse_banner(struct ami_parser *p, const char *line, size_t len)
{
	size_t n = len < sizeof p->banner - 1 ? len : sizeof p->banner - 1;
	memcpy(p->banner, line, n);
	p->banner[n] = '\0';
	const char *slash = strchr(p->banner, '/');
	if (slash && sscanf(slash + 1, "%d.%d.%d", &p->version[0], &p->version[1], &p->version[2]) < 1)
		p->version[0] = 0;
}

/* Index "Key: Value" at msg + line_off, len bytes, into (*hdr)[*nhdr]
 * (grown as needed); 0 if the line is not a header. */
static int index_line(const char *msg, size_t line_off, size_t len, struct ami_header **hdr, size_t *nhdr,
		      size_t *cap)
{
	const char *line = msg + line_off;
	const char *colon = memchr(line, ':', len);
	if (!colon || colon == line)
		return 0;
	size_t v = (size_t)(colon - line) + 1;
	while (v < len && (line[v] == ' ' || line[v] == '\t'))
		v++;
	if (*nhdr == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*hdr = xrealloc(*hdr, *cap * sizeof **hdr);
	}
	struct ami_header *h = &(*hdr)[(*nhdr)++];
	h->key_off = (uint32_t)line_off;
	h->key_len = (uint32_t)(colon - line);
	h->val_off = (uint32_t)(line_off + v);
	h->val_len = (uint32_t)(len - v);
	return 1;
}

static int index_header(struct ami_parser *p, size_t line_off, size_t len)
{
	return index_line(p->in.data + p->msg_start, line_off, len, &p->hdr, &p->nhdr, &p->hdr_cap);
}

static int ends_with_end_command(const char *line, size_t len)
{
	size_t n = sizeof END_COMMAND - 1;
	return len >= n && !memcmp(line + len - n, END_COMMAND, n);
}

/* Start skipping the current (oversized) message. */
static void start_skip(struct ami_parser *p, size_t upto)
{
	size_t n = upto - p->msg_start;
	p->over_head_len = n < sizeof p->over_head ? n : sizeof p->over_head;
	memcpy(p->over_head, p->in.data + p->msg_start, p->over_head_len);
	p->skipped = n;
	p->skip_dropped = 0;
	p->skip_cr_only = 1;
	p->state = ST_SKIP;
	message_reset(p);
}

/* One complete line [off, off+len) ending at next (the byte after '\n'). */
static int handle_line(struct ami_parser *p, size_t off, size_t len, size_t next,
		       ami_msg_fn fn, void *ctx)
{
	char *data = p->in.data;
	int rc = 0;

	if (p->state == ST_SKIP) {
		p->skipped += next - p->msg_start;
		p->msg_start = next;
		if (len == 0 && p->skipped > 0) {
			rc = emit(p, AMI_ERR_OVERSIZED, p->over_head, p->over_head_len, fn, ctx);
			p->skipped = 0;
			p->state = ST_MSG;
		}
		return rc;
	}
	if (next - p->msg_start > p->max_msg) {
		start_skip(p, next);
		p->msg_start = next;
		if (len == 0) /* the line that overflowed also ended the message */
			return handle_line(p, off, len, next, fn, ctx);
		return 0;
	}

	if (p->state == ST_BANNER) {
		if (len == 0) {
			p->msg_start = next;
			return 0;
		}
		p->state = ST_MSG;
		if (memmem(data + off, len, "Call Manager", 12) && !memchr(data + off, ':', len)) {
			parse_banner(p, data + off, len);
			rc = emit(p, AMI_BANNER, data + off, len, fn, ctx);
			p->msg_start = next;
			return rc;
		}
	}

	if (len == 0) {
		if (p->follows_body && !p->follows_ended)
			return 0; /* blank line inside raw Command output */
		if (p->nhdr == 0) { /* stray blank line between messages */
			p->msg_start = next;
			return 0;
		}
		const char *msg = data + p->msg_start;
		rc = emit(p, classify(p, msg), msg, next - p->msg_start, fn, ctx);
		p->msg_start = next;
		message_reset(p);
		return rc;
	}

	size_t rel = off - p->msg_start;
	if (p->follows_body) {
		if (ends_with_end_command(data + off, len))
			p->follows_ended = 1;
		else if (!p->follows_ended && p->nhdr < 3)
			(void)index_header(p, rel, len); /* Privilege/ActionID before the raw text */
		return 0;
	}
	if (p->headers_only_first_event && p->first_is_event)
		return 0; /* the caller wants only the Event header of events */
	if (index_header(p, rel, len)) {
		if (p->nhdr == 1 && p->headers_only_first_event && key_is(data + p->msg_start, &p->hdr[0], "Event"))
			p->first_is_event = 1;
		if (p->nhdr == 1 && key_is(data + p->msg_start, &p->hdr[0], "Response") &&
		    val_is(data + p->msg_start, &p->hdr[0], "Follows"))
			p->follows_body = 1;
		return 0;
	}
	if (p->nhdr == 0) { /* junk outside a message: report and drop it */
		rc = emit(p, AMI_ERR_GARBAGE, data + off, len, fn, ctx);
		p->msg_start = next;
	}
	/* else: a colon-less line inside a message stays in raw, unindexed */
	return rc;
}

/* Remember what was dropped of a line still being read while skipping, so
 * that its end can tell whether the whole line was empty ("" or "\r"). */
static void note_dropped(struct ami_parser *p, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\r')
			p->skip_cr_only = 0;
	p->skip_dropped += n;
}

/* The first i >= from in d[0, len) where an empty line starts at i + 1:
 * d[i] == '\n' followed by "\n" or "\r\n" (handle_line's empty line), all
 * within len; SIZE_MAX if there is none yet. */
static size_t find_message_end(const char *d, size_t from, size_t len)
{
	size_t i = from;
#ifdef __SSE2__
	const __m128i nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
	for (; len - i >= 18; i += 16) { /* bytes i .. i + 17 */
		__m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
		__m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(d + i + 1));
		__m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(d + i + 2));
		__m128i n1 = _mm_cmpeq_epi8(v1, nl);
		__m128i crnl = _mm_and_si128(_mm_cmpeq_epi8(v1, cr), _mm_cmpeq_epi8(v2, nl));
		__m128i m = _mm_and_si128(_mm_cmpeq_epi8(v0, nl), _mm_or_si128(n1, crnl));
		unsigned bits = (unsigned)_mm_movemask_epi8(m);
		if (bits)
			return i + (size_t)__builtin_ctz(bits);
	}
#endif
	while (i < len) {
		const char *q = memchr(d + i, '\n', len - i);
		if (!q)
			break;
		i = (size_t)(q - d);
		if (len - i >= 2 && d[i + 1] == '\n')
			return i;
		if (len - i >= 3 && d[i + 1] == '\r' && d[i + 2] == '\n')
			return i;
		i++;
	}
	return SIZE_MAX;
}

int ami_parser_commit(struct ami_parser *p, size_t n, ami_msg_fn fn, void *ctx)
{
	int rc = 0;
	size_t slow_until = 0; /* the line-by-line path has the bytes before this */
	buf_setlen(&p->in, p->in.len + n);
	while (p->scan < p->in.len) {
		/* An event whose Event header is indexed, when the caller wants
		 * only that: its other lines are not looked at, so jump to its
		 * empty line.  p->scan - 1 is the '\n' that ended the line
		 * before.  A message that would pass max_msg, or the rest of an
		 * incomplete one, goes through the line-by-line path below
		 * (which frames the same bytes), and is not searched again. */
		if (p->first_is_event && p->headers_only_first_event && p->state == ST_MSG && !p->follows_body &&
		    p->scan > p->msg_start && p->scan >= slow_until) {
			size_t end = find_message_end(p->in.data, p->scan - 1, p->in.len);
			if (end == SIZE_MAX) {
				slow_until = p->in.len;
			} else {
				size_t off = end + 1;
				size_t next = off + (p->in.data[off] == '\n' ? 1 : 2);
				if (next - p->msg_start <= p->max_msg) {
					p->scan = next;
					rc = handle_line(p, off, 0, next, fn, ctx);
					if (rc)
						break;
					continue;
				}
				slow_until = next;
			}
		}
		char *start = p->in.data + p->scan;
		char *nl = memchr(start, '\n', p->in.len - p->scan);
		if (!nl) {
			if (p->state == ST_SKIP) {
				/* drop the partial line; only whole empty lines matter */
				note_dropped(p, start, p->in.len - p->scan);
				p->skipped += p->in.len - p->msg_start;
				buf_setlen(&p->in, p->msg_start);
				p->scan = p->msg_start;
			} else if (p->in.len - p->msg_start > p->max_msg) {
				start_skip(p, p->in.len);
				note_dropped(p, start, p->in.len - p->scan);
				buf_setlen(&p->in, p->msg_start);
				p->scan = p->msg_start;
			}
			break;
		}
		size_t off = p->scan;
		size_t next = (size_t)(nl - p->in.data) + 1;
		size_t len = next - 1 - off;
		if (len && p->in.data[off + len - 1] == '\r')
			len--;
		p->scan = next;
		/* A line that began in a dropped fragment of an oversized
		 * message is never "empty", whatever remains of it. */
		if (p->state == ST_SKIP && p->skip_dropped) {
			size_t raw = p->skip_dropped + (next - 1 - off);
			int empty = raw == 0 || (raw == 1 && p->skip_cr_only && next - 1 == off);
			len = empty ? 0 : 1;
			p->skip_dropped = 0;
			p->skip_cr_only = 1;
		}
		rc = handle_line(p, off, len, next, fn, ctx);
		if (rc)
			break;
	}
	/* compact: keep only the current partial message */
	if (p->msg_start > 0) {
		size_t shift = p->msg_start;
		buf_consume(&p->in, shift);
		p->scan -= shift;
		p->msg_start = 0;
	}
	return rc;
}

int ami_parser_feed(struct ami_parser *p, const void *data, size_t n, ami_msg_fn fn, void *ctx)
{
	const char *c = data;
	while (n) {
		size_t avail;
		char *dst = ami_parser_space(p, n < 65536 ? n : 65536, &avail);
		size_t k = n < avail ? n : avail;
		memcpy(dst, c, k);
		int rc = ami_parser_commit(p, k, fn, ctx);
		if (rc)
			return rc;
		c += k;
		n -= k;
	}
	return 0;
}

/* The first '\n' at or after off (SIZE_MAX: none) and, in *colon, the
 * first ':' from off up to it (SIZE_MAX: none): 16 bytes a step (SSE2)
 * while 16 remain, then memchr. */
static inline size_t find_line(const char *data, size_t n, size_t off, size_t *colon)
{
	size_t p = off;
	*colon = SIZE_MAX;
#ifdef __SSE2__
	const __m128i nl16 = _mm_set1_epi8('\n'), colon16 = _mm_set1_epi8(':');
	for (; n - p >= 16; p += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(data + p));
		unsigned nls = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl16));
		unsigned cols = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, colon16));
		if (*colon == SIZE_MAX && cols && (!nls || __builtin_ctz(cols) < __builtin_ctz(nls)))
			*colon = p + (size_t)__builtin_ctz(cols);
		if (nls)
			return p + (size_t)__builtin_ctz(nls);
	}
#endif
	const char *nl = memchr(data + p, '\n', n - p);
	if (!nl)
		return SIZE_MAX;
	size_t at = (size_t)(nl - data);
	if (*colon == SIZE_MAX) {
		const char *c = memchr(data + p, ':', at - p);
		if (c)
			*colon = (size_t)(c - data);
	}
	return at;
}

/* The in-place path of ami_parser_feed_record(): 1 if data[0..n) is one
 * message that the generic path would frame the same way (headers from the
 * first line, no banner or Follows body, its empty line ends the data),
 * then its index is in p->hdr, as index_line() makes it; 0 to take the
 * generic path.  The index is built in locals (one call, no aliasing). */
static int index_whole(struct ami_parser *p, const char *data, size_t n, size_t *raw_len)
{
	if (n > p->max_msg || p->headers_only_first_event)
		return 0;
	struct ami_header *hdr = p->hdr;
	size_t nh = 0, cap = p->hdr_cap, off = 0;
	int whole = 0;
	while (off < n) {
		size_t colon, at = find_line(data, n, off, &colon);
		if (at == SIZE_MAX)
			break; /* a partial message: pending */
		size_t next = at + 1, len = at - off;
		if (len && data[at - 1] == '\r')
			len--;
		if (len == 0) {
			*raw_len = next;
			whole = off > 0 && next == n; /* a leading blank line, or more after it: generic */
			break;
		}
		if (colon != SIZE_MAX && colon != off) { /* colon < off + len: not the CR */
			const char *line = data + off;
			size_t v = colon - off + 1;
			while (v < len && (unsigned char)line[v] <= ' ' && (line[v] == ' ' || line[v] == '\t'))
				v++;
			if (nh == cap) {
				cap = cap ? cap * 2 : 64;
				hdr = xrealloc(hdr, cap * sizeof *hdr);
			}
			hdr[nh++] = (struct ami_header){ (uint32_t)off, (uint32_t)(colon - off), (uint32_t)(off + v),
							 (uint32_t)(len - v) };
			if (off == 0 && key_is(data, &hdr[0], "Response") && val_is(data, &hdr[0], "Follows"))
				break;
		} else if (off == 0) {
			break; /* garbage or a banner */
		} /* else a colon-less line inside stays in raw, unindexed (as handle_line) */
		off = next;
	}
	p->hdr = hdr;
	p->hdr_cap = cap;
	p->nhdr = nh;
	return whole;
}

int ami_parser_feed_record(struct ami_parser *p, const char *data, size_t n, ami_msg_fn fn, void *ctx)
{
	ami_parser_reset(p);
	size_t raw_len;
	if (!index_whole(p, data, n, &raw_len)) {
		ami_parser_reset(p);
		return ami_parser_feed(p, data, n, fn, ctx);
	}
	p->state = ST_MSG;
	int rc = emit(p, classify(p, data), data, raw_len, fn, ctx);
	message_reset(p);
	return rc;
}

int ami_value_is(const struct ami_msg *m, const char *key, const char *value)
{
	size_t len;
	const char *v = ami_get(m, key, &len);
	return v && len == strlen(value) && !strncasecmp(v, value, len);
}
