/*
 * cdrcsv.c - rebuilt CDR rows as Master.csv, straight from the segments.
 */
#include "cdrcsv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ami.h"
#include "cdrfeed.h"
#include "exitcode.h"
#include "log.h"
#include "segment.h"
#include "strparse.h"
#include "xalloc.h"

static void csv_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void csv_time(FILE *out, uint64_t us)
{
	if (!us)
		return; /* cdr_csv writes an empty, unquoted field */
	time_t sec = (time_t)(us / 1000000u);
	struct tm tm;
	char buf[32];
	gmtime_r(&sec, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	csv_str(out, buf);
}

static const char *ama_name(int a)
{
	switch (a) {
	case 1: return "OMIT";
	case 2: return "BILLING";
	case 3: return "DOCUMENTATION";
	}
	return "Unknown";
}

void cdr_csv_row(FILE *out, const struct cdr_row *r)
{
	const char *s[] = { r->accountcode, r->src, r->dst, r->dcontext, r->clid, r->channel, r->dstchannel,
			    r->lastapp, r->lastdata };
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
		csv_str(out, s[i]);
		fputc(',', out);
	}
	csv_time(out, r->start_us);
	fputc(',', out);
	csv_time(out, r->answer_us);
	fputc(',', out);
	csv_time(out, r->end_us);
	fprintf(out, ",%ld,%ld,", r->duration, r->billsec);
	csv_str(out, cdr_disposition_name(r->disposition));
	fputc(',', out);
	csv_str(out, ama_name(r->amaflags));
	fputc(',', out);
	csv_str(out, r->uniqueid);
	fputc(',', out);
	csv_str(out, r->userfield);
	fputc(',', out);
	csv_str(out, r->peeraccount);
	fputc(',', out);
	csv_str(out, r->linkedid);
	fprintf(out, ",%" PRIu64 "\n", r->sequence);
}

struct run {
	FILE *out;
	const char *node;
	struct cdr_feed *feed;
	struct ami_parser full;
	uint64_t recv_us, seq, rows;
};

static void emit(void *arg, const struct cdr_row *r, uint64_t stamp)
{
	struct run *run = arg;
	(void)stamp;
	cdr_csv_row(run->out, r);
	run->rows++;
}

static void clock_warn(void *arg, const char *msg, uint64_t stamp)
{
	struct run *run = arg;
	(void)stamp;
	log_warn("node %s: %s", run->node, msg);
}

static int on_msg(void *ctx, const struct ami_msg *m)
{
	struct run *run = ctx;
	size_t len, tlen;
	const char *name = m->kind == AMI_EVENT ? ami_get(m, "Event", &len) : NULL;
	if (!name || !cdr_feed_wants(name, len))
		return 0;
	const char *ts = ami_get(m, "Timestamp", &tlen);
	uint64_t t = ts ? parse_unix_us(ts, tlen) : 0;
	cdr_feed_event(run->feed, m, name, len, t ? t : run->recv_us, run->seq, run->seq);
	return 0;
}

int cdr_csv(const struct etl_config *cfg, FILE *out, struct cdrcsv_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	char **nodes;
	size_t n;
	if (seg_list_nodes(cfg->spool, &nodes, &n, err, errlen) < 0)
		return EXIT_NOINPUT;
	struct cdr_options opt = etl_cdr_options(cfg);
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		if (rc != EXIT_OK) {
			free(nodes[i]);
			continue;
		}
		char *dir = xasprintf("%s/%s", cfg->spool, nodes[i]);
		struct run run = { .out = out, .node = nodes[i] };
		struct cdr_feed_sink sink = { emit, NULL, &run, clock_warn, NULL };
		run.feed = cdr_feed_new(&opt, &sink);
		ami_parser_init(&run.full, SEG_DATA_MAX);
		struct seg_reader r;
		struct seg_record rec;
		seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
		enum seg_status s;
		while ((s = seg_reader_next(&r, &rec)) == SEG_OK) {
			run.recv_us = rec.recv_us;
			run.seq = rec.seq;
			ami_parser_reset(&run.full);
			ami_parser_feed(&run.full, rec.data, rec.data_len, on_msg, &run);
			st->events++;
		}
		if (s == SEG_CORRUPT || s == SEG_IOERR) {
			snprintf(err, errlen, "%s", r.err);
			rc = s == SEG_CORRUPT ? EXIT_DATAERR : EXIT_IOERR;
		}
		seg_reader_close(&r);
		cdr_feed_flush(run.feed, UINT64_MAX);
		struct cdr_feed_stats fs;
		cdr_feed_stats(run.feed, &fs);
		for (int k = 0; k < CAVEAT_N; k++) {
			char line[512];
			if (!cdr_feed_caveat(run.feed, (enum cdr_caveat)k)->count)
				continue;
			cdr_feed_caveat_line(run.feed, (enum cdr_caveat)k, nodes[i], line, sizeof line);
			log_warn("%s", line);
		}
		st->live += fs.live;
		st->rows += run.rows;
		cdr_feed_free(run.feed);
		ami_parser_release(&run.full);
		free(dir);
		free(nodes[i]);
	}
	free(nodes);
	if (fflush(out) != 0 && rc == EXIT_OK) {
		snprintf(err, errlen, "cannot write: %s", strerror(errno));
		rc = EXIT_IOERR;
	}
	return rc;
}
