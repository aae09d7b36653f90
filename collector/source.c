#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ami.h"
#include "buf.h"
#include "clock.h"
#include "exitcode.h"
#include "fsx.h"
#include "log.h"
#include "xalloc.h"

#define IN_CHUNK (256u << 10)

/* A replay's receive times are replay times, not when the PBX sent the
 * events: only events that carry their own Timestamp (manager.conf
 * timestampevents = yes) have a clock.  The first events are held back
 * until one with a Timestamp shows; a capture whose first REPLAY_CLOCK_PROBE
 * events (or all of them) have none is refused with nothing stored.
 * FullyBooted never has one (sent before timestamps apply). */
#define REPLAY_CLOCK_PROBE 64

struct replay {
	uint64_t batch_us; /* receive time of the chunk being parsed, as live */
	struct spool *spool;
	struct replay_result *res;
	int failed;
	int clock_seen, no_clock; /* a Timestamp header seen / refused: none */
	struct buf held;          /* events held until then: [u32 len][u64 us][bytes] */
	unsigned nheld;
	uint64_t skip;            /* events a previous run of this replay stored already */
};

static int store(struct replay *r, const char *raw, size_t len, uint64_t us)
{
	if (r->res->skipped < r->skip) {
		r->res->skipped++; /* stored by the run this one resumes */
		return 0;
	}
	if (spool_add(r->spool, raw, len, us) < 0) {
		r->failed = 1;
		return -1;
	}
	r->res->events++;
	return 0;
}

static int release_held(struct replay *r)
{
	size_t off = 0;
	while (off < r->held.len) {
		uint32_t len;
		uint64_t us;
		memcpy(&len, r->held.data + off, sizeof len);
		memcpy(&us, r->held.data + off + sizeof len, sizeof us);
		if (store(r, r->held.data + off + sizeof len + sizeof us, len, us) < 0)
			return -1;
		off += sizeof len + sizeof us + len;
	}
	buf_reset(&r->held);
	r->nheld = 0;
	return 0;
}

static int replay_event(struct replay *r, const struct ami_msg *m)
{
	if (r->clock_seen)
		return store(r, m->raw, m->raw_len, r->batch_us);
	if (memmem(m->raw, m->raw_len, "\nTimestamp: ", 12) || memmem(m->raw, m->raw_len, "\ntimestamp: ", 12)) {
		r->clock_seen = 1;
		if (release_held(r) < 0)
			return -1;
		return store(r, m->raw, m->raw_len, r->batch_us);
	}
	uint32_t len = (uint32_t)m->raw_len;
	if (buf_append(&r->held, &len, sizeof len) < 0 || buf_append(&r->held, &r->batch_us, sizeof r->batch_us) < 0 ||
	    buf_append(&r->held, m->raw, m->raw_len) < 0)
		abort(); /* uncapped buffer */
	if (!(m->raw_len >= 19 && !memcmp(m->raw, "Event: FullyBooted", 18)) && ++r->nheld >= REPLAY_CLOCK_PROBE) {
		r->no_clock = 1;
		return -1;
	}
	return 0;
}

static int on_message(void *ctx, const struct ami_msg *m)
{
	struct replay *r = ctx;
	switch (m->kind) {
	case AMI_EVENT:
		if (replay_event(r, m) < 0)
			return -1;
		break;
	case AMI_RESPONSE: r->res->responses++; break;
	case AMI_ERR_GARBAGE:
		if (r->res->garbage++ < 10)
			log_warn("ignoring a line that is not \"Key: Value\": \"%.*s\"",
				 (int)(m->raw_len > 80 ? 80 : m->raw_len), m->raw);
		break;
	case AMI_ERR_OVERSIZED:
		r->res->oversized++;
		log_error("dropped a %zu-byte message larger than max_event_size", m->full_len);
		break;
	case AMI_BANNER:
	case AMI_OTHER: break;
	}
	return 0;
}

static void show_progress(uint64_t done, uint64_t total, uint64_t events, double t0)
{
	double dt = clock_mono_s() - t0;
	if (total)
		fprintf(stderr, "\rreplay: %3.0f%%  %" PRIu64 " events  %.1f MB  %.0f events/s ",
			100.0 * (double)done / (double)total, events, (double)done / 1e6, dt > 0 ? (double)events / dt : 0.0);
	else
		fprintf(stderr, "\rreplay: %" PRIu64 " events  %.1f MB  %.0f events/s ", events,
			(double)done / 1e6, dt > 0 ? (double)events / dt : 0.0);
}

int replay_capture(const char *path, struct spool *spool, uint64_t max_event_size, uint64_t skip, int progress,
		   struct replay_result *res, char *err, size_t errlen)
{
	memset(res, 0, sizeof *res);
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		snprintf(err, errlen, "cannot open capture \"%s\": %s", path, strerror(errno));
		return EXIT_NOINPUT;
	}
	struct stat st;
	uint64_t total = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	struct ami_parser p;
	ami_parser_init(&p, max_event_size);
	struct replay r = { .spool = spool, .res = res, .skip = skip };
	buf_init(&r.held, 0);
	p.headers_only_first_event = 1;
	unsigned char *in = xmalloc(IN_CHUNK);
	lzma_stream xz = LZMA_STREAM_INIT;
	int is_xz = -1, rc = EXIT_OK;
	uint64_t done = 0, last_shown = 0;
	double t0 = clock_mono_s();
	for (;;) {
		ssize_t n = read(fd, in, IN_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read capture \"%s\": %s", path, strerror(errno));
			rc = EXIT_NOINPUT;
			break;
		}
		if (is_xz < 0) {
			is_xz = n >= 6 && !memcmp(in, "\xFD" "7zXZ", 6);
			if (is_xz && lzma_stream_decoder(&xz, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
				snprintf(err, errlen, "cannot start the xz decoder");
				rc = EXIT_SOFTWARE;
				break;
			}
		}
		done += (uint64_t)n;
		if (!is_xz) {
			if (n == 0)
				break;
			res->bytes_in += (uint64_t)n;
			r.batch_us = clock_real_us();
			if (ami_parser_feed(&p, in, (size_t)n, on_message, &r))
				break;
		} else {
			xz.next_in = in;
			xz.avail_in = (size_t)n;
			lzma_action action = n == 0 ? LZMA_FINISH : LZMA_RUN;
			lzma_ret lr = LZMA_OK;
			while (xz.avail_in || action == LZMA_FINISH) {
				size_t avail;
				char *dst = ami_parser_space(&p, IN_CHUNK, &avail);
				xz.next_out = (uint8_t *)dst;
				xz.avail_out = avail;
				lr = lzma_code(&xz, action);
				size_t got = avail - xz.avail_out;
				res->bytes_in += got;
				r.batch_us = clock_real_us();
				if (got && ami_parser_commit(&p, got, on_message, &r))
					break;
				if (lr == LZMA_STREAM_END || (lr != LZMA_OK && lr != LZMA_BUF_ERROR))
					break;
				if (action == LZMA_FINISH && got == 0)
					break;
			}
			if (r.failed || r.no_clock)
				break;
			if (lr != LZMA_OK && lr != LZMA_STREAM_END && !(lr == LZMA_BUF_ERROR && n)) {
				snprintf(err, errlen, "capture \"%s\" is not a valid xz file (lzma error %d)", path, (int)lr);
				rc = EXIT_DATAERR;
				break;
			}
			if (n == 0 || lr == LZMA_STREAM_END)
				break;
		}
		spool_batch_end(spool);
		if (progress && done - last_shown >= (8u << 20)) {
			show_progress(done, total, res->events, t0);
			last_shown = done;
		}
	}
	if (rc == EXIT_OK && !r.failed && !r.clock_seen && r.nheld)
		r.no_clock = 1; /* the whole capture: events, none with a Timestamp */
	if (r.no_clock && rc == EXIT_OK) {
		snprintf(err, errlen,
			 "capture \"%s\": no event carries a Timestamp header (manager.conf timestampevents = no, "
			 "Asterisk's default): a replay has no clock (receive times would be replay times and every "
			 "duration made up), so nothing is stored; load the live collector's spool instead, or record "
			 "with timestampevents = yes", path);
		rc = EXIT_DATAERR;
	} else if (rc == EXIT_OK && !r.failed && r.nheld && release_held(&r) < 0) {
		r.failed = 1; /* only FullyBooted-like events held: store them */
	}
	buf_release(&r.held);
	spool_batch_end(spool);
	if (r.failed && rc == EXIT_OK) {
		char why[512];
		spool_error(spool, why, sizeof why);
		snprintf(err, errlen, "%s", why);
		rc = EXIT_IOERR;
	}
	if (progress) {
		show_progress(done, total, res->events, t0);
		fputc('\n', stderr);
	}
	if (rc == EXIT_OK && ami_parser_pending(&p))
		log_warn("capture \"%s\" ends inside a message (%zu bytes not stored)", path, ami_parser_pending(&p));
	res->garbage = p.n_garbage;
	res->oversized = p.n_oversized;
	if (is_xz > 0)
		lzma_end(&xz);
	ami_parser_release(&p);
	free(in);
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}
