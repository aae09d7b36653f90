/*
 * doctor.c - cdrflow-etl doctor and the degraded-input warnings.
 */
#include "doctor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ami.h"
#include "buf.h"
#include "cdrfeed.h"
#include "exitcode.h"
#include "log.h"
#include "strparse.h"
#include "xalloc.h"

/* ---- the self-check against Event: Cdr ---- */

struct keys {
	char **v;
	size_t n, cap;
};

static void keys_add(struct keys *k, char *s)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 256;
		k->v = xrealloc(k->v, k->cap * sizeof *k->v);
	}
	k->v[k->n++] = s;
}

static void keys_free(struct keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The columns both sides have and that do not depend on the time zone. */
static char *row_key(const char *uid, const char *chan, const char *dst, const char *app, const char *data,
		     const char *disp, long duration, long billsec, const char *userfield)
{
	return xasprintf("%s|%s|%s|%s|%s|%s|%ld|%ld|%s", uid, chan, dst, app, data, disp, duration, billsec, userfield);
}

struct scan {
	struct amidoctor *ad, *ad2; /* ad2: optional second accumulator */
	struct ami_parser p;
	uint64_t recv_us, seq;
	struct cdr_feed *feed; /* only for the self-check */
	struct keys rebuilt, asterisk;
	uint64_t json;         /* JSON records (a Yeastar node): not AMI, not checked here */
};

static void on_leg(void *arg, const struct cdr_row *r, uint64_t stamp)
{
	struct scan *s = arg;
	(void)stamp;
	keys_add(&s->rebuilt, row_key(r->uniqueid, r->channel, r->dstchannel, r->lastapp, r->lastdata,
				      cdr_disposition_name(r->disposition), r->duration, r->billsec, r->userfield));
}

static void hval(const struct ami_msg *m, const char *key, char *out, size_t outlen)
{
	size_t len;
	const char *v = ami_get(m, key, &len);
	if (!v)
		len = 0;
	if (len >= outlen)
		len = outlen - 1;
	if (len)
		memcpy(out, v, len);
	out[len] = '\0';
}

static void note_cdr_event(struct scan *s, const struct ami_msg *m)
{
	char uid[128], chan[256], dst[256], app[128], data[512], disp[32], dur[24], bill[24], uf[512];
	hval(m, "UniqueID", uid, sizeof uid);
	hval(m, "Channel", chan, sizeof chan);
	hval(m, "DestinationChannel", dst, sizeof dst);
	hval(m, "LastApplication", app, sizeof app);
	hval(m, "LastData", data, sizeof data);
	hval(m, "Disposition", disp, sizeof disp);
	hval(m, "Duration", dur, sizeof dur);
	hval(m, "BillableSeconds", bill, sizeof bill);
	hval(m, "UserField", uf, sizeof uf);
	keys_add(&s->asterisk, row_key(uid, chan, dst, app, data, disp, strtol(dur, NULL, 10), strtol(bill, NULL, 10), uf));
}

static int on_msg(void *ctx, const struct ami_msg *m)
{
	struct scan *s = ctx;
	if (m->kind != AMI_EVENT)
		return 0;
	adoc_event(s->ad, m, s->recv_us);
	if (s->ad2)
		adoc_event(s->ad2, m, s->recv_us);
	if (!s->feed)
		return 0;
	size_t len, tlen;
	const char *name = ami_get(m, "Event", &len);
	if (!name)
		return 0;
	if (len == 3 && !memcmp(name, "Cdr", 3)) {
		note_cdr_event(s, m); /* compared with, never built from */
		return 0;
	}
	if (!cdr_feed_wants(name, len))
		return 0;
	const char *ts = ami_get(m, "Timestamp", &tlen);
	uint64_t t = ts ? parse_unix_us(ts, tlen) : 0;
	cdr_feed_event(s->feed, m, name, len, t ? t : s->recv_us, s->seq, s->seq);
	return 0;
}

static int scan_range(const char *node_dir, struct seg_pos from, const struct seg_pos *to, struct scan *s,
		      uint64_t *records, char *err, size_t errlen)
{
	struct seg_reader r;
	struct seg_record rec;
	*records = 0;
	if (seg_reader_open(&r, node_dir, from) < 0) {
		snprintf(err, errlen, "%s", r.err);
		return EXIT_NOINPUT;
	}
	ami_parser_init(&s->p, SEG_DATA_MAX);
	enum seg_status st;
	while ((st = seg_reader_next(&r, &rec)) == SEG_OK) {
		if (to && !seg_pos_before(rec.pos, *to))
			break;
		s->recv_us = rec.recv_us;
		s->seq = rec.seq;
		(*records)++;
		if (rec.flags & SEG_FLAG_JSON) {
			s->json++;
			continue;
		}
		ami_parser_reset(&s->p);
		ami_parser_feed(&s->p, rec.data, rec.data_len, on_msg, s);
	}
	int rc = EXIT_OK;
	/* bad data at or past `to` is not this scan's: the load reports it */
	if ((st == SEG_CORRUPT || st == SEG_IOERR) && !(to && !seg_pos_before(r.pos, *to))) {
		snprintf(err, errlen, "%s", r.err);
		rc = st == SEG_CORRUPT ? EXIT_DATAERR : EXIT_IOERR;
	}
	seg_reader_close(&r);
	ami_parser_release(&s->p);
	return rc;
}

int doctor_scan(const char *node_dir, struct seg_pos from, const struct seg_pos *to, struct amidoctor *ad,
		struct amidoctor *ad2, uint64_t *records, char *err, size_t errlen)
{
	struct scan s;
	memset(&s, 0, sizeof s);
	s.ad = ad;
	s.ad2 = ad2;
	return scan_range(node_dir, from, to, &s, records, err, errlen);
}

int doctor_rescan(const char *node_dir, struct seg_pos from, uint64_t expect_seq, struct seg_pos to,
		  const struct seg_pos *skips, size_t nskips, struct amidoctor *ad, uint64_t *records,
		  struct doctor_gap *gap, char *err, size_t errlen)
{
	struct scan s;
	struct seg_reader r;
	struct seg_record rec;
	memset(&s, 0, sizeof s);
	memset(gap, 0, sizeof *gap);
	s.ad = ad;
	*records = 0;
	if (seg_reader_open(&r, node_dir, from) < 0) {
		snprintf(err, errlen, "%s", r.err);
		return EXIT_IOERR;
	}
	r.expect_seq = expect_seq;
	ami_parser_init(&s.p, SEG_DATA_MAX);
	int rc = EXIT_OK;
	for (;;) {
		enum seg_status st = seg_reader_next(&r, &rec);
		if (st == SEG_OK) {
			if (!seg_pos_before(rec.pos, to))
				break;
			(*records)++;
			if (rec.flags & SEG_FLAG_JSON)
				continue;
			s.recv_us = rec.recv_us;
			ami_parser_reset(&s.p);
			ami_parser_feed(&s.p, rec.data, rec.data_len, on_msg, &s);
			continue;
		}
		if (st == SEG_CORRUPT && seg_pos_before(r.pos, to)) {
			if (!seg_pos_listed(skips, nskips, r.pos) && !gap->count++) {
				gap->at = r.pos;
				snprintf(gap->what, sizeof gap->what, "%s", r.err);
			}
			seg_reader_resync(&r);
			continue;
		}
		if (st == SEG_IOERR) {
			snprintf(err, errlen, "%s", r.err);
			rc = EXIT_IOERR;
		} else if (st == SEG_END && seg_pos_before(r.pos, to)) {
			gap->short_read = true;
			gap->end = r.pos;
		}
		break; /* the end, or damage at or past `to`: the load's to report */
	}
	seg_reader_close(&r);
	ami_parser_release(&s.p);
	return rc;
}

/* ---- printing ---- */

static void fmt_time(char *out, size_t outlen, uint64_t us)
{
	if (!us) {
		snprintf(out, outlen, "-");
		return;
	}
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

void doctor_print(FILE *out, const char *node, const struct amidoctor *ad)
{
	struct adoc_summary sm;
	adoc_summary(ad, &sm);
	char a[40], b[40];
	fmt_time(a, sizeof a, sm.first_us);
	fmt_time(b, sizeof b, sm.last_us);
	fprintf(out, "node %s: %" PRIu64 " events, %s .. %s%s\n", node, sm.events, a, b,
		sm.clock_is_receive ? " (receive times: no Timestamp header)" : "");
	fprintf(out, "  AMI banner and login response: not kept in the spool (cdrflow-collector --check reads them)\n");
	fprintf(out, "  event classes received (Privilege): %s\n", *sm.classes ? sm.classes : "(none)");
	fprintf(out, "  CEL event types: %s\n", *sm.cel_types ? sm.cel_types : "(none)");
	for (int i = 0; i < AI_N; i++) {
		const struct adoc_info *in = adoc_info((enum adoc_input)i);
		struct adoc_verdict v;
		adoc_verdict(ad, (enum adoc_input)i, &v);
		fprintf(out, "  %-34s %-8s %s\n", in->name, adoc_state_name(v.state), v.evidence);
		if (v.state == ADOC_MISSING) {
			fprintf(out, "  %-34s   affects: %s\n", "", v.rows ? "CDR rows and analytics" : "analytics only");
			fprintf(out, "  %-34s   lost: %s\n", "", in->lost);
			fprintf(out, "  %-34s   restore: %s\n", "", in->restore);
		} else if (v.state == ADOC_NOT_SEEN && i != AI_CDR) {
			fprintf(out, "  %-34s   needed for: %s; if disabled: %s\n", "", in->lost, in->restore);
		}
	}
	uint32_t rows = adoc_missing_rows(ad), all = adoc_missing_all(ad);
	fprintf(out, "  verdict: %s\n",
		rows ? "inputs that change the CDR rows are MISSING" : all ? "rows unaffected; some analytics inputs missing"
									 : "every input cdrflow relies on is present or "
									   "had no activity to show");
}

void doctor_caveat_text(char *out, size_t outlen, const char *node, enum adoc_input i)
{
	const struct adoc_info *in = adoc_info(i);
	snprintf(out, outlen, "%s unknown for node %s: %s not received", in->brief, node, in->name);
}

void doctor_warn(const char *node, const struct amidoctor *ad, uint32_t *warned)
{
	for (int i = 0; i < AI_N; i++) {
		if (*warned & (1u << i))
			continue;
		struct adoc_verdict v;
		adoc_verdict(ad, (enum adoc_input)i, &v);
		if (v.state != ADOC_MISSING)
			continue;
		const struct adoc_info *in = adoc_info((enum adoc_input)i);
		log_warn("node %s: %s not received (%s); %s lost: %s; restore: %s", node, in->name, v.evidence,
			 v.rows ? "CDR rows affected," : "analytics only,", in->lost, in->restore);
		*warned |= 1u << i;
	}
}

/* ---- commands ---- */

/* Merge the two sorted lists: counts, and with out the first disagreements. */
static void merge(FILE *out, const struct scan *s, size_t *same, size_t *only_a, size_t *only_r)
{
	size_t i = 0, j = 0, shown = 0;
	*same = *only_a = *only_r = 0;
	while (i < s->asterisk.n || j < s->rebuilt.n) {
		int c = i == s->asterisk.n ? 1 : j == s->rebuilt.n ? -1 : strcmp(s->asterisk.v[i], s->rebuilt.v[j]);
		if (c == 0) {
			(*same)++, i++, j++;
			continue;
		}
		if (out && shown++ < 6)
			fprintf(out, "    %s %s\n", c < 0 ? "only Asterisk's:" : "only rebuilt:   ",
				c < 0 ? s->asterisk.v[i] : s->rebuilt.v[j]);
		if (c < 0)
			(*only_a)++, i++;
		else
			(*only_r)++, j++;
	}
}

static void self_check(FILE *out, struct scan *s)
{
	qsort(s->rebuilt.v, s->rebuilt.n, sizeof *s->rebuilt.v, cmp_str);
	qsort(s->asterisk.v, s->asterisk.n, sizeof *s->asterisk.v, cmp_str);
	size_t same, only_a, only_r;
	merge(NULL, s, &same, &only_a, &only_r);
	fprintf(out, "  self-check against Event: Cdr (uniqueid|channel|dstchannel|lastapp|lastdata|disposition|duration|"
		     "billsec|userfield): %zu Asterisk rows, %zu rebuilt, %zu identical, %zu only Asterisk's, %zu only "
		     "rebuilt%s\n",
		s->asterisk.n, s->rebuilt.n, same, only_a, only_r,
		only_a || only_r ? " (cdr: settings must match cdr.conf; the rows never come from Event: Cdr):" : "");
	if (only_a || only_r)
		merge(out, s, &same, &only_a, &only_r);
}

int doctor_command(const struct etl_config *cfg, FILE *out, char *err, size_t errlen)
{
	char **nodes;
	size_t n;
	if (seg_list_nodes(cfg->spool, &nodes, &n, err, errlen) < 0)
		return EXIT_NOINPUT;
	struct cdr_options opt = etl_cdr_options(cfg);
	int rc = EXIT_OK, degraded = 0;
	if (n == 0)
		fprintf(out, "spool %s: no nodes\n", cfg->spool);
	for (size_t i = 0; i < n; i++) {
		if (rc == EXIT_OK) {
			char *dir = xasprintf("%s/%s", cfg->spool, nodes[i]);
			struct scan s;
			memset(&s, 0, sizeof s);
			s.ad = adoc_new();
			struct cdr_feed_sink sink = { on_leg, NULL, &s, NULL, NULL };
			s.feed = cdr_feed_new(&opt, &sink);
			uint64_t records;
			rc = scan_range(dir, (struct seg_pos){ 0, 0 }, NULL, &s, &records, err, errlen);
			cdr_feed_flush(s.feed, UINT64_MAX);
			if (rc == EXIT_OK && s.json && s.json == records) {
				/* a Yeastar source: its JSON events have no AMI inputs to check */
				fprintf(out, "node %s: %" PRIu64 " JSON records of a Yeastar source: the AMI checks do not apply "
					"(what it provides and cannot: docs/sources.md)\n", nodes[i], records);
			} else if (rc == EXIT_OK) {
				doctor_print(out, nodes[i], s.ad);
				if (s.asterisk.n)
					self_check(out, &s);
				if (adoc_missing_rows(s.ad))
					degraded = 1;
			}
			cdr_feed_free(s.feed);
			keys_free(&s.rebuilt);
			keys_free(&s.asterisk);
			adoc_free(s.ad);
			free(dir);
		}
		free(nodes[i]);
	}
	free(nodes);
	if (fflush(out) != 0 && rc == EXIT_OK) {
		snprintf(err, errlen, "cannot write: %s", strerror(errno));
		rc = EXIT_IOERR;
	}
	if (rc == EXIT_OK && degraded)
		rc = EXIT_DEGRADED;
	return rc;
}

int doctor_warn_spool(const char *spool, char *err, size_t errlen)
{
	char **nodes;
	size_t n;
	if (seg_list_nodes(spool, &nodes, &n, err, errlen) < 0)
		return EXIT_NOINPUT;
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		if (rc == EXIT_OK) {
			char *dir = xasprintf("%s/%s", spool, nodes[i]);
			struct amidoctor *ad = adoc_new();
			uint64_t records;
			uint32_t warned = 0;
			/* corrupt or unreadable data: warn on what was read; cdr-csv reports the error */
			rc = doctor_scan(dir, (struct seg_pos){ 0, 0 }, NULL, ad, NULL, &records, err, errlen);
			doctor_warn(nodes[i], ad, &warned);
			if (rc == EXIT_DATAERR || rc == EXIT_IOERR)
				rc = EXIT_OK;
			adoc_free(ad);
			free(dir);
		}
		free(nodes[i]);
	}
	free(nodes);
	return rc;
}
