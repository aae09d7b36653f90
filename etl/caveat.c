/*
 * caveat.c - degraded inputs of each loaded range: warnings and input_caveat.
 */
#include "caveat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amidoctor.h"
#include "doctor.h"
#include "exitcode.h"
#include "load.h"
#include "pgconn.h"
#include "segment.h"
#include "xalloc.h"

struct node_state {
	char *node;
	struct amidoctor *ad; /* everything this process diagnosed of the node */
	uint32_t warned;      /* inputs already warned about */
	uint32_t stored;      /* inputs already kept in input_caveat by this process */
	struct seg_pos before;
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

/* Every node's checkpoint: calls fn for each row. */
static int checkpoints(PGconn *c, void (*fn)(void *arg, const char *node, struct seg_pos p), void *arg, char *err,
		       size_t errlen)
{
	PGresult *r = PQexec(c, "SELECT node, segno, seg_offset FROM etl_checkpoint");
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "etl_checkpoint: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct seg_pos p = { strtoull(PQgetvalue(r, i, 1), NULL, 10), strtoull(PQgetvalue(r, i, 2), NULL, 10) };
		fn(arg, PQgetvalue(r, i, 0), p);
	}
	PQclear(r);
	return 0;
}

static void set_before(void *arg, const char *node, struct seg_pos p)
{
	node_state(arg, node)->before = p;
}

int caveat_before(struct caveat_run *cr, PGconn *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < cr->n; i++) {
		struct node_state *ns = &cr->v[i];
		ns->before = (struct seg_pos){ 0, 0 };
		adoc_free(ns->pending); /* a run caveat_after() did not diagnose */
		ns->pending = NULL;
		ns->pending_records = 0;
		adoc_span_start(ns->ad); /* this run's period */
	}
	return checkpoints(c, set_before, cr, err, errlen);
}

const struct load_doctor *caveat_feed(struct caveat_run *cr)
{
	return &cr->feed;
}

/* The load asks for a node's doctor before it reads the node: it feeds a
 * copy from the checkpoint on. */
static struct amidoctor *feed_node(void *arg, const char *node)
{
	return node_state(arg, node)->ad;
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

static int pos_lt(struct seg_pos a, struct seg_pos b)
{
	return a.segno < b.segno || (a.segno == b.segno && a.offset < b.offset);
}

struct after {
	char **node;
	struct seg_pos *pos;
	size_t n;
};

static void add_after(void *arg, const char *node, struct seg_pos p)
{
	struct after *a = arg;
	a->node = xrealloc(a->node, (a->n + 1) * sizeof *a->node);
	a->pos = xrealloc(a->pos, (a->n + 1) * sizeof *a->pos);
	a->node[a->n] = xstrdup(node);
	a->pos[a->n++] = p;
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

/* The range from ns->before to `to` was loaded: what the load fed the
 * doctor of it becomes the node's; a part the load did not tell (not
 * expected: a commit whose success the load never saw) is read from the
 * spool.  Then warn and store. */
static int diagnose_node(PGconn *c, const char *spool, struct node_state *ns, struct seg_pos to, char *err,
			 size_t errlen)
{
	uint64_t records = 0;
	int rc = 0;
	struct seg_pos from = ns->before;
	if (ns->pending) {
		adoc_free(ns->ad);
		ns->ad = ns->pending;
		ns->pending = NULL;
		records = ns->pending_records;
		from = ns->pending_to;
		ns->pending_records = 0;
	}
	if (pos_lt(from, to)) {
		char *dir = xasprintf("%s/%s", spool, ns->node);
		uint64_t tail = 0;
		rc = doctor_scan(dir, from, &to, ns->ad, NULL, &tail, err, errlen) == EXIT_OK ? 0 : -1;
		free(dir);
		records += tail;
	}
	if (rc == 0 && records) {
		doctor_warn(ns->node, ns->ad, &ns->warned);
		uint64_t first, last; /* this run's */
		adoc_span(ns->ad, &first, &last);
		uint32_t missing = adoc_missing_all(ns->ad);
		struct adoc_summary all; /* everything this process read of the node */
		adoc_summary(ns->ad, &all);
		if (missing && first) {
			if (pgc_exec(c, "BEGIN", err, errlen) < 0)
				rc = -1;
			for (int i = 0; i < AI_N && rc == 0; i++) {
				if (!(missing & (1u << i)))
					continue;
				struct adoc_verdict v;
				adoc_verdict(ns->ad, (enum adoc_input)i, &v);
				/* the proof may have come only now: the first caveat covers all this process read */
				uint64_t since = ns->stored & (1u << i) ? first : all.first_us;
				rc = store(c, ns->node, (enum adoc_input)i, &v, since ? since : first, last, err, errlen);
			}
			char ignored[128];
			if (rc == 0 && pgc_exec(c, "COMMIT", err, errlen) < 0)
				rc = -1;
			else if (rc < 0)
				pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
			if (rc == 0)
				ns->stored |= missing;
		}
	}
	return rc;
}

int caveat_after(struct caveat_run *cr, PGconn *c, const char *spool, char *err, size_t errlen)
{
	struct after a = { NULL, NULL, 0 };
	int rc = checkpoints(c, add_after, &a, err, errlen);
	for (size_t i = 0; i < a.n; i++) {
		if (rc == 0) {
			struct node_state *ns = node_state(cr, a.node[i]);
			struct seg_pos before = ns->before;
			if (before.segno < a.pos[i].segno || (before.segno == a.pos[i].segno && before.offset < a.pos[i].offset))
				rc = diagnose_node(c, spool, ns, a.pos[i], err, errlen);
			ns->before = a.pos[i];
		}
		free(a.node[i]);
	}
	free(a.node);
	free(a.pos);
	return rc;
}
