/*
 * caveat.c - degraded inputs of each loaded range: warnings and input_caveat.
 */
#include "caveat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amidoctor.h"
#include "doctor.h"
#include "exitcode.h"
#include "load.h"
#include "log.h"
#include "pgconn.h"
#include "segment.h"
#include "xalloc.h"

struct node_state {
	char *node;
	struct amidoctor *ad; /* everything this process diagnosed of the node */
	uint32_t warned;      /* inputs already warned about */
	uint32_t stored;      /* inputs already kept in input_caveat by this process */
	struct seg_pos before;
	/* ad has read the records up to fed (fed_seq: the last one's
	 * sequence); placed: fed is known.  Unplaced, caveat_before() starts
	 * ad again where the stored caveats end. */
	bool placed;
	struct seg_pos fed;
	uint64_t fed_seq;
	struct seg_pos cav; /* where the stored caveats end (etl_checkpoint) */
	uint64_t reread;    /* records caveat_before() read again for this run */
	bool broken;        /* no doctor for the node in this run (a read error) */
	/* what the load fed the doctor in this run and committed (load.h):
	 * ad and then the loaded records up to pending_to */
	struct amidoctor *pending;
	uint64_t pending_records;
	struct seg_pos pending_to;
};

struct caveat_run {
	struct node_state *v;
	size_t n;
	struct load_doctor feed;
};

static struct amidoctor *feed_node(void *arg, const char *node);
static void feed_committed(void *arg, const char *node, const struct amidoctor *ad, uint64_t records,
			   struct seg_pos to);

struct caveat_run *caveat_run_new(void)
{
	struct caveat_run *cr = xcalloc(1, sizeof(struct caveat_run));
	cr->feed = (struct load_doctor){ feed_node, feed_committed, cr };
	return cr;
}

void caveat_run_free(struct caveat_run *cr)
{
	if (!cr)
		return;
	for (size_t i = 0; i < cr->n; i++) {
		free(cr->v[i].node);
		adoc_free(cr->v[i].ad);
		adoc_free(cr->v[i].pending);
	}
	free(cr->v);
	free(cr);
}

static struct node_state *node_state(struct caveat_run *cr, const char *node)
{
	for (size_t i = 0; i < cr->n; i++)
		if (!strcmp(cr->v[i].node, node))
			return &cr->v[i];
	cr->v = xrealloc(cr->v, (cr->n + 1) * sizeof *cr->v);
	struct node_state *ns = &cr->v[cr->n++];
	memset(ns, 0, sizeof *ns);
	ns->node = xstrdup(node);
	ns->ad = adoc_new();
	return ns;
}

/* One node's row of etl_checkpoint: the load's position and where its
 * stored caveats end. */
struct ckpt {
	const char *node;
	struct seg_pos pos, cav;
	uint64_t last_seq, cav_seq;
};

/* Every node's checkpoint: fn for each row until it returns -1 (which
 * checkpoints() returns, err filled by fn). */
static int checkpoints(PGconn *c, int (*fn)(void *arg, const struct ckpt *k, char *err, size_t errlen), void *arg,
		       char *err, size_t errlen)
{
	PGresult *r = PQexec(c, "SELECT node, segno, seg_offset, last_seq, caveat_segno, caveat_offset, caveat_seq "
				"FROM etl_checkpoint ORDER BY node");
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "etl_checkpoint: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		struct ckpt k;
		k.node = PQgetvalue(r, i, 0);
		k.pos = (struct seg_pos){ strtoull(PQgetvalue(r, i, 1), NULL, 10), strtoull(PQgetvalue(r, i, 2), NULL, 10) };
		k.last_seq = strtoull(PQgetvalue(r, i, 3), NULL, 10);
		k.cav = (struct seg_pos){ strtoull(PQgetvalue(r, i, 4), NULL, 10), strtoull(PQgetvalue(r, i, 5), NULL, 10) };
		k.cav_seq = strtoull(PQgetvalue(r, i, 6), NULL, 10);
		rc = fn(arg, &k, err, errlen);
	}
	PQclear(r);
	return rc;
}

/* Feed ad the node's records from `from` up to `to` again, passing the
 * recorded skips; the record at `from` has sequence from_seq + 1 when that
 * is known (from_seq not 0, or `from` is (0, 0)).  Say once what the spool
 * no longer holds of the range.  0, or -1 with err: a database error
 * (nothing read), or a read error (*ioerr set, ad half fed). */
static int reread(PGconn *c, const char *spool, const char *node, struct seg_pos from, uint64_t from_seq,
		  struct seg_pos to, uint64_t to_seq, struct amidoctor *ad, uint64_t *records, bool *ioerr, char *err,
		  size_t errlen)
{
	struct seg_pos *skips;
	size_t nskips;
	*records = 0;
	*ioerr = false;
	if (load_recorded_skips(c, node, &skips, &nskips, err, errlen) < 0)
		return -1;
	/* from (0, 0): where a node's first load began (caveat_seq: the sequence before it) */
	int start = from.segno == 0 && from.offset == 0;
	uint64_t expect = start || (from_seq && !load_after_byte_skip(c, node, from)) ? from_seq + 1 : 0;
	char *dir = xasprintf("%s/%s", spool, node);
	struct doctor_gap gap;
	int rc = doctor_rescan(dir, from, expect, to, skips, nskips, ad, records, &gap, err, errlen);
	free(dir);
	free(skips);
	if (rc != EXIT_OK) {
		*ioerr = true;
		return -1;
	}
	if (gap.count || gap.short_read) {
		char range[200] = "", why[700];
		size_t n = 0;
		if (expect && to_seq >= expect)
			n = (size_t)snprintf(range, sizeof range, "sequences %" PRIu64 "..%" PRIu64 ", ", expect, to_seq);
		if (start)
			snprintf(range + n, sizeof range - n, "from the node's first up to segment %" PRIu64 " offset %" PRIu64,
				 to.segno, to.offset);
		else
			snprintf(range + n, sizeof range - n, "from segment %" PRIu64 " offset %" PRIu64 " up to segment %" PRIu64
				 " offset %" PRIu64, from.segno, from.offset, to.segno, to.offset);
		if (gap.count)
			snprintf(why, sizeof why, "%" PRIu64 " place%s damaged or removed, the first: %s", gap.count,
				 gap.count == 1 ? "" : "s", gap.what);
		else
			snprintf(why, sizeof why, "its records end at segment %" PRIu64 " offset %" PRIu64, gap.end.segno,
				 gap.end.offset);
		log_warn("node %s: records loaded but not diagnosed (a run ended before it stored their input caveats), %s: "
			 "the spool no longer holds all of them (%s; %" PRIu64 " records read again); inputs missing in what "
			 "is gone stay unknown", node, range, why, *records);
	}
	return 0;
}

struct before {
	struct caveat_run *cr;
	PGconn *c;
	const char *spool;
};

/* A node's row at the start of a run: the doctor continues where it left
 * off, or starts where the stored caveats end, and reads again what was
 * loaded since then (a run that ended before it stored them). */
static int place_node(void *arg, const struct ckpt *k, char *err, size_t errlen)
{
	struct before *b = arg;
	struct node_state *ns = node_state(b->cr, k->node);
	ns->before = k->pos;
	ns->cav = k->cav;
	if (!ns->placed || !seg_pos_equal(ns->fed, k->cav)) {
		/* new to this process, or what it diagnosed was not stored */
		adoc_free(ns->ad);
		ns->ad = adoc_new();
		ns->fed = k->cav;
		ns->fed_seq = k->cav_seq;
		ns->placed = true;
	}
	if (!seg_pos_before(ns->fed, k->pos))
		return 0;
	bool ioerr;
	char rerr[600];
	if (reread(b->c, b->spool, k->node, ns->fed, ns->fed_seq, k->pos, k->last_seq, ns->ad, &ns->reread, &ioerr,
		   rerr, sizeof rerr) < 0) {
		if (!ioerr) {
			snprintf(err, errlen, "%s", rerr);
			return -1;
		}
		log_warn("doctor: node %s: %s; its input caveats wait for the next run", k->node, rerr);
		ns->broken = true;
		ns->placed = false;
		return 0;
	}
	ns->fed = k->pos;
	ns->fed_seq = k->last_seq;
	return 0;
}

int caveat_before(struct caveat_run *cr, PGconn *c, const char *spool, char *err, size_t errlen)
{
	for (size_t i = 0; i < cr->n; i++) {
		struct node_state *ns = &cr->v[i];
		ns->before = ns->cav = (struct seg_pos){ 0, 0 };
		adoc_free(ns->pending); /* a run caveat_after() did not diagnose */
		ns->pending = NULL;
		ns->pending_records = 0;
		ns->reread = 0;
		ns->broken = false;
		adoc_span_start(ns->ad); /* this run's period */
	}
	struct before b = { cr, c, spool };
	return checkpoints(c, place_node, &b, err, errlen);
}

const struct load_doctor *caveat_feed(struct caveat_run *cr)
{
	return &cr->feed;
}

/* The load asks for a node's doctor before it reads the node: it feeds a
 * copy from the checkpoint on. */
static struct amidoctor *feed_node(void *arg, const char *node)
{
	struct node_state *ns = node_state(arg, node);
	return ns->broken ? NULL : ns->ad;
}

/* A batch committed: the doctor as of its last record. */
static void feed_committed(void *arg, const char *node, const struct amidoctor *ad, uint64_t records,
			   struct seg_pos to)
{
	struct node_state *ns = node_state(arg, node);
	if (!ns->pending)
		ns->pending = adoc_new();
	adoc_copy(ns->pending, ad);
	ns->pending_records += records;
	ns->pending_to = to;
}

struct after {
	char **node;
	struct seg_pos *pos;
	uint64_t *seq;
	size_t n;
};

static int add_after(void *arg, const struct ckpt *k, char *err, size_t errlen)
{
	struct after *a = arg;
	(void)err, (void)errlen;
	a->node = xrealloc(a->node, (a->n + 1) * sizeof *a->node);
	a->pos = xrealloc(a->pos, (a->n + 1) * sizeof *a->pos);
	a->seq = xrealloc(a->seq, (a->n + 1) * sizeof *a->seq);
	a->node[a->n] = xstrdup(k->node);
	a->seq[a->n] = k->last_seq;
	a->pos[a->n++] = k->pos;
	return 0;
}

/* Where the node's stored caveats end now: `to`, whose record before has
 * sequence seq.  Inside the caveats' transaction. */
static int store_end(PGconn *c, const char *node, struct seg_pos to, uint64_t seq, char *err, size_t errlen)
{
	char a[24], b[24], q[24];
	snprintf(a, sizeof a, "%" PRIu64, to.segno);
	snprintf(b, sizeof b, "%" PRIu64, to.offset);
	snprintf(q, sizeof q, "%" PRIu64, seq);
	const char *p[4] = { node, a, b, q };
	PGresult *r = PQexecParams(c, "UPDATE etl_checkpoint SET caveat_segno = $2, caveat_offset = $3, caveat_seq = $4 "
				      "WHERE node = $1", 4, NULL, p, NULL, NULL, 0);
	int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		snprintf(err, errlen, "etl_checkpoint: %s", PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Extend the caveat row of this node and input that touches the period, or
 * add one. */
static int store(PGconn *c, const char *node, enum adoc_input i, const struct adoc_verdict *v, uint64_t from_us,
		 uint64_t to_us, char *err, size_t errlen)
{
	const struct adoc_info *in = adoc_info(i);
	char text[1024], from[24], to[24];
	doctor_caveat_text(text, sizeof text, node, i);
	snprintf(from, sizeof from, "%" PRIu64, from_us);
	snprintf(to, sizeof to, "%" PRIu64, to_us);
	const char *p[9] = { node, in->key, from, to, v->evidence, in->name, v->rows ? "t" : "f", text, in->restore };
	PGresult *r = PQexecParams(c,
				   "UPDATE input_caveat SET period_start = least(period_start, to_timestamp($3::bigint / 1e6)), "
				   "period_end = greatest(period_end, to_timestamp($4::bigint / 1e6)), evidence = $5, "
				   "ami_name = $6, affects_rows = $7::boolean, caveat = $8, restore = $9, "
				   "last_seen = now() WHERE node = $1 AND input = $2 "
				   "AND period_end >= to_timestamp($3::bigint / 1e6) - interval '1 hour' "
				   "AND period_start <= to_timestamp($4::bigint / 1e6) + interval '1 hour'",
				   9, NULL, p, NULL, NULL, 0);
	int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	int updated = ok && strcmp(PQcmdTuples(r), "0") != 0;
	PQclear(r);
	if (ok && !updated) {
		r = PQexecParams(c,
				 "INSERT INTO input_caveat (node, input, period_start, period_end, evidence, ami_name, "
				 "affects_rows, caveat, restore) VALUES ($1, $2, to_timestamp($3::bigint / 1e6), "
				 "to_timestamp($4::bigint / 1e6), $5, $6, $7::boolean, $8, $9)",
				 9, NULL, p, NULL, NULL, 0);
		ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (!ok)
		snprintf(err, errlen, "input_caveat: %s", PQerrorMessage(c));
	return ok ? 0 : -1;
}

/* The range from ns->before to `to` was loaded: the doctor the load fed
 * of it (or ns->ad, which caveat_before() brought up to ns->before) reads
 * what the load did not tell (not expected: a commit whose success the
 * load never saw) from the spool.  Then warn, and store the caveats and
 * where they end in one transaction; ns->ad becomes that doctor once it
 * committed, else the next run starts again where the stored ones end. */
static int diagnose_node(PGconn *c, const char *spool, struct node_state *ns, struct seg_pos to, uint64_t to_seq,
			 char *err, size_t errlen)
{
	uint64_t records = ns->reread;
	int rc = 0;
	struct seg_pos from = ns->before;
	uint64_t from_seq = 0; /* a commit the load did not see: the sequence there is not known */
	struct amidoctor *cand;
	if (ns->pending) {
		cand = ns->pending;
		ns->pending = NULL;
		records += ns->pending_records;
		from = ns->pending_to;
		ns->pending_records = 0;
	} else {
		cand = adoc_dup(ns->ad);
		from_seq = ns->fed_seq;
	}
	if (seg_pos_before(from, to)) {
		uint64_t tail = 0;
		bool ioerr;
		rc = reread(c, spool, ns->node, from, from_seq, to, to_seq, cand, &tail, &ioerr, err, errlen);
		records += tail;
	}
	uint32_t missing = 0;
	if (rc == 0 && records)
		doctor_warn(ns->node, cand, &ns->warned);
	if (rc == 0 && pgc_exec(c, "BEGIN", err, errlen) < 0)
		rc = -1;
	else if (rc == 0) {
		uint64_t first, last; /* this run's */
		adoc_span(cand, &first, &last);
		struct adoc_summary all; /* everything this process read of the node */
		adoc_summary(cand, &all);
		missing = records && first ? adoc_missing_all(cand) : 0;
		for (int i = 0; i < AI_N && rc == 0; i++) {
			if (!(missing & (1u << i)))
				continue;
			struct adoc_verdict v;
			adoc_verdict(cand, (enum adoc_input)i, &v);
			/* the proof may have come only now: the first caveat covers all this process read */
			uint64_t since = ns->stored & (1u << i) ? first : all.first_us;
			rc = store(c, ns->node, (enum adoc_input)i, &v, since ? since : first, last, err, errlen);
		}
		if (rc == 0)
			rc = store_end(c, ns->node, to, to_seq, err, errlen);
		char ignored[128];
		if (rc == 0 && pgc_exec(c, "COMMIT", err, errlen) < 0)
			rc = -1;
		else if (rc < 0)
			pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
	}
	if (rc == 0) {
		ns->stored |= missing;
		adoc_free(ns->ad);
		ns->ad = cand;
		ns->fed = ns->cav = to;
		ns->fed_seq = to_seq;
		ns->placed = true;
	} else {
		adoc_free(cand);
		ns->placed = false;
	}
	ns->reread = 0;
	return rc;
}

int caveat_after(struct caveat_run *cr, PGconn *c, const char *spool, char *err, size_t errlen)
{
	struct after a = { NULL, NULL, NULL, 0 };
	int rc = checkpoints(c, add_after, &a, err, errlen);
	for (size_t i = 0; i < a.n; i++) {
		if (rc == 0) {
			struct node_state *ns = node_state(cr, a.node[i]);
			/* loaded in this run, or loaded before and not diagnosed yet */
			if (!ns->broken && (seg_pos_before(ns->before, a.pos[i]) || seg_pos_before(ns->cav, a.pos[i])))
				rc = diagnose_node(c, spool, ns, a.pos[i], a.seq[i], err, errlen);
			ns->before = a.pos[i];
		}
		free(a.node[i]);
	}
	free(a.node);
	free(a.pos);
	free(a.seq);
	return rc;
}
