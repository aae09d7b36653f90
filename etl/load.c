#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ami.h"
#include "copyfmt.h"
#include "exitcode.h"
#include "log.h"
#include "pg.h"
#include "segment.h"
#include "strparse.h"
#include "xalloc.h"

volatile sig_atomic_t load_stop_requested;

/* Rows of one batch, in COPY text format, plus what the checkpoint needs. */
struct batch {
	struct buf cel, ami;
	uint64_t events, cel_rows, ami_rows, last_seq;
	struct seg_pos next;
	int months[64]; /* distinct YYYYMM seen, to create partitions first */
	size_t nmonths;
	const struct etl_config *cfg;
	const char *node;
	struct seg_record rec;
};

static void note_month(struct batch *b, uint64_t us)
{
	time_t sec = (time_t)(us / 1000000u);
	struct tm tm;
	gmtime_r(&sec, &tm);
	int ym = (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
	for (size_t i = 0; i < b->nmonths; i++)
		if (b->months[i] == ym)
			return;
	if (b->nmonths < sizeof b->months / sizeof b->months[0])
		b->months[b->nmonths++] = ym;
}

static void field(struct buf *row, const struct ami_msg *m, const char *key, char sep)
{
	size_t len;
	const char *v = ami_get(m, key, &len);
	if (v)
		copy_text(row, v, len, sep);
	else
		copy_null(row, sep);
}

static int amaflags_number(const char *v, size_t len)
{
	if (len == 4 && !strncasecmp(v, "OMIT", 4))
		return 1;
	if (len == 7 && !strncasecmp(v, "BILLING", 7))
		return 2;
	if (len == 13 && !strncasecmp(v, "DOCUMENTATION", 13))
		return 3;
	return 0;
}

/* The event's time: its Timestamp header, else when the collector got it. */
static uint64_t event_time_us(const struct ami_msg *m, uint64_t recv_us)
{
	size_t len;
	const char *v = ami_get(m, "Timestamp", &len);
	uint64_t us = v ? parse_unix_us(v, len) : 0;
	return us ? us : recv_us;
}

static void add_position(struct buf *row, const struct batch *b)
{
	copy_int(row, (int64_t)b->rec.seq, '\t');
	copy_int(row, (int64_t)b->rec.pos.segno, '\t');
	copy_int(row, (int64_t)b->rec.pos.offset, '\n');
}

static void add_cel(struct batch *b, const struct ami_msg *m, uint64_t t)
{
	struct buf *r = &b->cel;
	size_t len;
	const char *v;
	field(r, m, "EventName", '\t');
	copy_time_us(r, t, '\t');
	field(r, m, "UserDefType", '\t'); /* present when cel.conf show_user_defined=yes */
	field(r, m, "CallerIDname", '\t');
	field(r, m, "CallerIDnum", '\t');
	field(r, m, "CallerIDani", '\t');
	field(r, m, "CallerIDrdnis", '\t');
	field(r, m, "CallerIDdnid", '\t');
	field(r, m, "Exten", '\t');
	field(r, m, "Context", '\t');
	field(r, m, "Channel", '\t');
	field(r, m, "Application", '\t');
	field(r, m, "AppData", '\t');
	v = ami_get(m, "AMAFlags", &len);
	if (v)
		copy_int(r, amaflags_number(v, len), '\t');
	else
		copy_null(r, '\t');
	field(r, m, "AccountCode", '\t');
	field(r, m, "PeerAccount", '\t');
	field(r, m, "UniqueID", '\t');
	field(r, m, "LinkedID", '\t');
	field(r, m, "Userfield", '\t');
	field(r, m, "Peer", '\t');
	field(r, m, "Extra", '\t');
	copy_text(r, b->node, strlen(b->node), '\t');
	add_position(r, b);
	b->cel_rows++;
}

static void add_ami_event(struct batch *b, const struct ami_msg *m, const char *name, size_t name_len, uint64_t t)
{
	struct buf *r = &b->ami;
	copy_text(r, name, name_len, '\t');
	copy_time_us(r, t, '\t');
	copy_text(r, b->node, strlen(b->node), '\t');
	field(r, m, "Uniqueid", '\t');
	field(r, m, "Linkedid", '\t');
	field(r, m, "Channel", '\t');
	/* every header as JSON; a repeated key becomes an array, in order */
	struct buf j;
	buf_init(&j, 0);
	buf_append(&j, "{", 1);
	int first = 1;
	for (size_t i = 0; i < m->nhdr; i++) {
		const struct ami_header *h = &m->hdr[i];
		const char *key = m->raw + h->key_off;
		int seen = 0, count = 0;
		for (size_t k = 0; k < m->nhdr; k++) {
			const struct ami_header *o = &m->hdr[k];
			if (o->key_len == h->key_len && !memcmp(m->raw + o->key_off, key, h->key_len)) {
				if (k < i)
					seen = 1;
				count++;
			}
		}
		if (seen)
			continue;
		if (!first)
			buf_append(&j, ",", 1);
		first = 0;
		buf_append(&j, "\"", 1);
		json_string_body(&j, key, h->key_len);
		buf_append(&j, "\":", 2);
		if (count > 1)
			buf_append(&j, "[", 1);
		int n = 0;
		for (size_t k = i; k < m->nhdr; k++) {
			const struct ami_header *o = &m->hdr[k];
			if (o->key_len != h->key_len || memcmp(m->raw + o->key_off, key, h->key_len))
				continue;
			if (n++)
				buf_append(&j, ",", 1);
			buf_append(&j, "\"", 1);
			json_string_body(&j, m->raw + o->val_off, o->val_len);
			buf_append(&j, "\"", 1);
		}
		if (count > 1)
			buf_append(&j, "]", 1);
	}
	buf_append(&j, "}", 1);
	copy_text(r, j.data, j.len, '\t');
	buf_release(&j);
	add_position(r, b);
	b->ami_rows++;
}

static int on_event(void *ctx, const struct ami_msg *m)
{
	struct batch *b = ctx;
	if (m->kind != AMI_EVENT)
		return 0;
	size_t len;
	const char *name = ami_get(m, "Event", &len);
	if (!name)
		return 0;
	uint64_t t = event_time_us(m, b->rec.recv_us);
	note_month(b, t);
	if (len == 3 && !memcmp(name, "CEL", 3))
		add_cel(b, m, t);
	else if (etl_keep_event(b->cfg, name, len))
		add_ami_event(b, m, name, len, t);
	return 0;
}

static int copy_in(PGconn *c, const char *sql, const struct buf *rows, char *err, size_t errlen)
{
	if (!rows->len)
		return 0;
	PGresult *r = PQexec(c, sql);
	if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(err, errlen, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	size_t off = 0;
	while (off < rows->len) {
		size_t n = rows->len - off > (1u << 20) ? (1u << 20) : rows->len - off;
		if (PQputCopyData(c, rows->data + off, (int)n) != 1) {
			snprintf(err, errlen, "COPY failed: %s", PQerrorMessage(c));
			return -1;
		}
		off += n;
	}
	if (PQputCopyEnd(c, NULL) != 1) {
		snprintf(err, errlen, "COPY failed: %s", PQerrorMessage(c));
		return -1;
	}
	int rc = 0;
	while ((r = PQgetResult(c))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			snprintf(err, errlen, "%s%s%s", state ? state : "", state ? ": " : "", PQresultErrorMessage(r));
			rc = -1;
		}
		PQclear(r);
	}
	return rc;
}

/* One node: batches until the segments have nothing more. */
static int load_node(PGconn *c, const struct etl_config *cfg, const char *node, struct load_stats *st,
		     char *err, size_t errlen)
{
	char *dir = xasprintf("%s/%s", cfg->spool, node);
	int rc = EXIT_OK;
	struct ami_parser p;
	ami_parser_init(&p, SEG_DATA_MAX);
	struct batch b;
	memset(&b, 0, sizeof b);
	buf_init(&b.cel, 0);
	buf_init(&b.ami, 0);
	b.cfg = cfg;
	b.node = node;
	for (int more = 1; more && rc == EXIT_OK && !load_stop_requested;) {
		char sql[512];
		char *v = NULL;
		if (pg_exec(c, "BEGIN", err, errlen) < 0) {
			rc = pg_error_exit(c, err);
			break;
		}
		char *esc = PQescapeLiteral(c, node, strlen(node));
		snprintf(sql, sizeof sql,
			 "SELECT segno || ' ' || seg_offset || ' ' || last_seq FROM etl_checkpoint WHERE node = %s FOR UPDATE", esc);
		if (pg_query_value(c, sql, &v, err, errlen) < 0) {
			PQfreemem(esc);
			rc = pg_error_exit(c, err);
			break;
		}
		struct seg_pos pos = { 0, 0 };
		uint64_t last_seq = 0;
		if (v && sscanf(v, "%" SCNu64 " %" SCNu64 " %" SCNu64, &pos.segno, &pos.offset, &last_seq) != 3) {
			snprintf(err, errlen, "bad etl_checkpoint row for node %s: \"%s\"", node, v);
			rc = EXIT_DATAERR;
		}
		free(v);
		if (rc) {
			PQfreemem(esc);
			break;
		}
		struct seg_reader r;
		seg_reader_open(&r, dir, pos);
		buf_reset(&b.cel);
		buf_reset(&b.ami);
		b.events = b.cel_rows = b.ami_rows = 0;
		b.nmonths = 0;
		b.next = pos;
		b.last_seq = last_seq;
		enum seg_status s = SEG_OK;
		while (b.events < (uint64_t)cfg->batch_events) {
			s = seg_reader_next(&r, &b.rec);
			if (s != SEG_OK)
				break;
			ami_parser_reset(&p);
			if (ami_parser_feed(&p, b.rec.data, b.rec.data_len, on_event, &b) != 0 || ami_parser_pending(&p)) {
				/* a stored record that is not one whole AMI message: keep going, say so */
				log_warn("node %s: record %" PRIu64 " at segment %" PRIu64 " offset %" PRIu64
					 " is not a complete AMI message", node, b.rec.seq, b.rec.pos.segno, b.rec.pos.offset);
			}
			b.events++;
			st->bytes += b.rec.data_len;
			b.last_seq = b.rec.seq;
			b.next = b.rec.next;
		}
		if (s == SEG_CORRUPT || s == SEG_IOERR) {
			snprintf(err, errlen, "%s", r.err);
			rc = s == SEG_CORRUPT ? EXIT_DATAERR : EXIT_IOERR;
		}
		more = s == SEG_OK;
		seg_reader_close(&r);
		if (b.events == 0) {
			PQfreemem(esc);
			pg_exec(c, "ROLLBACK", sql, sizeof sql);
			break;
		}
		/* partitions first, then the rows, then the checkpoint: one transaction */
		for (size_t i = 0; i < b.nmonths && rc != EXIT_SOFTWARE; i++) {
			snprintf(sql, sizeof sql, "SELECT cdrflow_ensure_month('%04d-%02d-01 00:00:00+00')",
				 b.months[i] / 100, b.months[i] % 100);
			if (pg_exec(c, sql, err, errlen) < 0)
				goto db_fail;
		}
		if (copy_in(c, "COPY cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, "
			       "cid_dnid, exten, context, channame, appname, appdata, amaflags, accountcode, peeraccount, "
			       "uniqueid, linkedid, userfield, peer, extra, node, seq, segno, seg_offset) FROM STDIN",
			    &b.cel, err, errlen) < 0 ||
		    copy_in(c, "COPY ami_event (event, eventtime, node, uniqueid, linkedid, channel, fields, seq, segno, "
			       "seg_offset) FROM STDIN", &b.ami, err, errlen) < 0)
			goto db_fail;
		snprintf(sql, sizeof sql,
			 "INSERT INTO etl_checkpoint (node, segno, seg_offset, last_seq, events) VALUES (%s, %" PRIu64 ", %" PRIu64
			 ", %" PRIu64 ", %" PRIu64 ") ON CONFLICT (node) DO UPDATE SET segno = excluded.segno, seg_offset = "
			 "excluded.seg_offset, last_seq = excluded.last_seq, events = etl_checkpoint.events + excluded.events, "
			 "updated_at = now()",
			 esc, b.next.segno, b.next.offset, b.last_seq, b.events);
		if (pg_exec(c, sql, err, errlen) < 0 || pg_exec(c, "COMMIT", err, errlen) < 0)
			goto db_fail;
		PQfreemem(esc);
		st->events += b.events;
		st->cel_rows += b.cel_rows;
		st->ami_rows += b.ami_rows;
		st->batches++;
		log_debug("node %s: committed %" PRIu64 " events up to segment %" PRIu64 " offset %" PRIu64, node, b.events,
			  b.next.segno, b.next.offset);
		continue;
db_fail:
		PQfreemem(esc);
		{
			char ignored[256];
			pg_exec(c, "ROLLBACK", ignored, sizeof ignored);
		}
		rc = pg_error_exit(c, err);
	}
	buf_release(&b.cel);
	buf_release(&b.ami);
	ami_parser_release(&p);
	free(dir);
	return rc;
}

int load_once(PGconn *c, const struct etl_config *cfg, int progress, struct load_stats *st, char *err, size_t errlen)
{
	(void)progress;
	memset(st, 0, sizeof *st);
	char **nodes;
	size_t n;
	if (seg_list_nodes(cfg->spool, &nodes, &n) < 0) {
		snprintf(err, errlen, "cannot read spool \"%s\": %s", cfg->spool, strerror(errno));
		return EXIT_NOINPUT;
	}
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		if (rc == EXIT_OK)
			rc = load_node(c, cfg, nodes[i], st, err, errlen);
		free(nodes[i]);
	}
	free(nodes);
	return rc;
}
