/* libFuzzer target: the CDR engine behind its AMI feed must survive any event
 * stream (missing headers, events for unknown or dead channels, bridges
 * entered twice, dials without channels, huge values), emit rows with sane
 * fields, and leave nothing alive after expiring everything. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ami.h"
#include "cdrfeed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	struct cdr_feed *f;
	uint64_t stamp;
	size_t rows;
};

static void leg(void *arg, const struct cdr_row *r, uint64_t stamp)
{
	struct run *run = arg;
	(void)stamp;
	/* every string is there and terminated; times are ordered as cdr.c keeps them */
	if (!r->channel || !r->dstchannel || !r->lastapp || !r->uniqueid || !r->linkedid || !r->userfield ||
	    strlen(r->channel) >= CDR_STR || strlen(r->lastdata) >= CDR_STR || strlen(r->userfield) >= CDR_USERFIELD)
		abort();
	if (r->answer_us && r->billsec < 0 && r->answer_us <= r->end_us)
		abort();
	run->rows++;
}

static void call(void *arg, const struct call_row *c, uint64_t stamp)
{
	(void)arg;
	(void)stamp;
	if (!c->call_id || !c->linkedids || c->linkedids[0] != '{' || c->legs < 0)
		abort();
}

static int on_msg(void *ctx, const struct ami_msg *m)
{
	struct run *run = ctx;
	size_t len, tl;
	const char *name = m->kind == AMI_EVENT ? ami_get(m, "Event", &len) : NULL;
	if (!name || !cdr_feed_wants(name, len))
		return 0;
	const char *ts = ami_get(m, "Timestamp", &tl);
	uint64_t t = 1800000000000000u + run->stamp * 1000u;
	if (ts && tl && ts[0] >= '0' && ts[0] <= '9')
		t += (uint64_t)(ts[0] - '0') * 1000000u; /* some disorder, bounded */
	run->stamp++;
	cdr_feed_event(run->f, m, name, len, t, run->stamp, run->stamp);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct cdr_options o = { .unanswered = data[0] & 1, .congestion = data[0] & 2, .endbeforehexten = data[0] & 4,
				 .initiatedseconds = data[0] & 8, .nochanneldefault = data[0] & 16,
				 .ignorestatechanges = data[0] & 32, .ignoredialchanges = data[0] & 64,
				 .canceldisposition = data[0] & 128 };
	struct run run = { NULL, 0, 0 };
	struct cdr_feed_sink sink = { leg, call, &run, NULL, NULL };
	run.f = cdr_feed_new(&o, &sink);
	struct ami_parser p;
	ami_parser_init(&p, 4096);
	ami_parser_feed(&p, data + 1, size - 1, on_msg, &run);
	cdr_feed_flush(run.f, UINT64_MAX);
	cdr_feed_expire(run.f, 0);
	struct cdr_feed_stats st;
	cdr_feed_stats(run.f, &st);
	if (st.live != 0 || st.open_calls != 0 || cdr_feed_oldest_pos(run.f) != UINT64_MAX)
		abort();
	ami_parser_release(&p);
	cdr_feed_free(run.f);
	return 0;
}
