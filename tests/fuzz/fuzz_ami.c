/* libFuzzer target: the AMI parser must give the same messages whatever the
 * chunking, never crash, and never hold more than max_msg + a chunk. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ami.h"
#include "crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	uint32_t idx_crc; /* kinds, raw bytes and the whole header index */
	uint32_t crc;     /* kinds, raw bytes and header values */
	uint32_t raw_crc; /* kinds and raw bytes only */
	size_t n;
};

static int on_msg(void *ctx, const struct ami_msg *m)
{
	struct acc *a = ctx;
	unsigned char k = (unsigned char)m->kind;
	a->crc = crc32c(a->crc, &k, 1);
	a->crc = crc32c(a->crc, m->raw, m->raw_len);
	a->raw_crc = crc32c(a->raw_crc, &k, 1);
	a->raw_crc = crc32c(a->raw_crc, m->raw, m->raw_len);
	for (size_t i = 0; i < m->nhdr; i++) {
		if (m->hdr[i].key_off + m->hdr[i].key_len > m->raw_len ||
		    m->hdr[i].val_off + m->hdr[i].val_len > m->raw_len)
			abort();
		a->crc = crc32c(a->crc, m->raw + m->hdr[i].val_off, m->hdr[i].val_len);
		a->idx_crc = crc32c(a->idx_crc, &m->hdr[i], sizeof m->hdr[i]);
	}
	a->idx_crc = crc32c(a->idx_crc, &k, 1);
	a->idx_crc = crc32c(a->idx_crc, m->raw, m->raw_len);
	a->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acc whole = { 0, 0, 0, 0 }, pieces = { 0, 0, 0, 0 }, fast = { 0, 0, 0, 0 }, rec = { 0, 0, 0, 0 };
	struct ami_parser p;
	ami_parser_init(&p, 256);
	ami_parser_feed(&p, data, size, on_msg, &whole);
	size_t whole_pending = ami_parser_pending(&p);
	ami_parser_release(&p);
	/* the first byte picks a chunk size for the second pass */
	size_t chunk = size ? (size_t)data[0] % 17 + 1 : 1;
	ami_parser_init(&p, 256);
	for (size_t off = 0; off < size; off += chunk) {
		ami_parser_feed(&p, data + off, size - off < chunk ? size - off : chunk, on_msg, &pieces);
		if (p.in.len > 256 + 2 * 65536)
			abort();
	}
	ami_parser_release(&p);
	if (whole.crc != pieces.crc || whole.n != pieces.n)
		abort();
	/* the collector's fast path frames exactly the same messages */
	ami_parser_init(&p, 256);
	p.headers_only_first_event = 1;
	for (size_t off = 0; off < size; off += chunk)
		ami_parser_feed(&p, data + off, size - off < chunk ? size - off : chunk, on_msg, &fast);
	ami_parser_release(&p);
	if (fast.raw_crc != whole.raw_crc || fast.n != whole.n)
		abort();
	/* a stored record indexed in place: the very same messages and index
	 * (twice: the second call starts from a used parser) */
	ami_parser_init(&p, 256);
	for (int pass = 0; pass < 2; pass++) {
		rec = (struct acc){ 0, 0, 0, 0 };
		ami_parser_feed_record(&p, (const char *)data, size, on_msg, &rec);
		if (rec.idx_crc != whole.idx_crc || rec.n != whole.n || ami_parser_pending(&p) != whole_pending)
			abort();
	}
	ami_parser_release(&p);
	return 0;
}
