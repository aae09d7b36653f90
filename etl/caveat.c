/*
 * caveat.c - degraded inputs of each loaded range: warnings and input_caveat.
 */
#include "caveat.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amidoctor.h"
#include "doctor.h"
#include "exitcode.h"
#include "pgconn.h"
#include "segment.h"
#include "xalloc.h"

struct node_state {
	char *node;
	struct amidoctor *ad; /* everything this process read of the node */
	uint32_t warned;      /* inputs already warned about */
	uint32_t stored;      /* inputs already kept in input_caveat by this process */
	struct seg_pos before;
	uint64_t records;     /* records ad has read */
};

/* A node's records read by the doctor beside the load (caveat_prescan):
 * from its checkpoint to what the spool held then. */
struct prescan {
	char *node, *dir;
	struct seg_pos from, end;
	struct amidoctor *ad, *range;
	uint64_t records;
	int ok;
};

struct caveat_run {
	struct node_state *v;
	size_t n;
	struct prescan *pre;
	size_t npre;
	pthread_t thread;
	int running;
};

struct caveat_run *caveat_run_new(void)
{
	return xcalloc(1, sizeof(struct caveat_run));
}

static void prescan_free(struct caveat_run *cr)
{
	if (cr->running)
		pthread_join(cr->thread, NULL);
	cr->running = 0;
	for (size_t i = 0; i < cr->npre; i++) {
		free(cr->pre[i].node);
		free(cr->pre[i].dir);
		adoc_free(cr->pre[i].ad);
		adoc_free(cr->pre[i].range);
	}
	free(cr->pre);
	cr->pre = NULL;
	cr->npre = 0;
}

void caveat_run_free(struct caveat_run *cr)
{
	if (!cr)
		return;
	prescan_free(cr);
	for (size_t i = 0; i < cr->n; i++) {
		free(cr->v[i].node);
		adoc_free(cr->v[i].ad);
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
	for (size_t i = 0; i < cr->n; i++)
		cr->v[i].before = (struct seg_pos){ 0, 0 };
	return checkpoints(c, set_before, cr, err, errlen);
}

static void *prescan_thread(void *arg)
{
	struct caveat_run *cr = arg;
	for (size_t i = 0; i < cr->npre; i++) {
		struct prescan *p = &cr->pre[i];
		char err[512];
		p->ok = doctor_scan_end(p->dir, p->from, p->ad, p->range, &p->records, &p->end, err, sizeof err) ==
			EXIT_OK;
	}
	return NULL;
}

void caveat_prescan(struct caveat_run *cr, const char *spool)
{
	prescan_free(cr);
	char **nodes, err[512];
	size_t n;
	if (seg_list_nodes(spool, &nodes, &n, err, sizeof err) < 0)
		return;
	cr->pre = xcalloc(n ? n : 1, sizeof *cr->pre);
	for (size_t i = 0; i < n; i++) {
		struct node_state *ns = node_state(cr, nodes[i]);
		/* a node read before in this process: its ad holds more than a range */
		if (!ns->records) {
			struct prescan *p = &cr->pre[cr->npre++];
			p->node = xstrdup(nodes[i]);
			p->dir = xasprintf("%s/%s", spool, nodes[i]);
			p->from = ns->before;
			p->ad = adoc_new();
			p->range = adoc_new();
		}
		free(nodes[i]);
	}
	free(nodes);
	if (cr->npre && pthread_create(&cr->thread, NULL, prescan_thread, cr) == 0)
		cr->running = 1;
	else
		prescan_free(cr); /* read after the load instead */
}

void caveat_prescan_drop(struct caveat_run *cr)
{
	prescan_free(cr);
}

static int pos_lt(struct seg_pos a, struct seg_pos b)
{
	return a.segno < b.segno || (a.segno == b.segno && a.offset < b.offset);
}

/* The prescan of ns, when it read from ns->before to no further than to
 * without an error: the range from its end to `to` is read into it too,
 * and it is handed over (*ad, *range, *records).  0 when there is none. */
static int prescan_take(struct caveat_run *cr, struct node_state *ns, struct seg_pos to, const char *spool,
			struct amidoctor **ad, struct amidoctor **range, uint64_t *records)
{
	for (size_t i = 0; i < cr->npre; i++) {
		struct prescan *p = &cr->pre[i];
		if (strcmp(p->node, ns->node))
			continue;
		if (!p->ok || ns->records || p->from.segno != ns->before.segno || p->from.offset != ns->before.offset ||
		    pos_lt(to, p->end))
			return 0;
		char err[512];
		uint64_t tail = 0;
		char *dir = xasprintf("%s/%s", spool, ns->node);
		int rc = doctor_scan(dir, p->end, &to, p->ad, p->range, &tail, err, sizeof err);
		free(dir);
		if (rc != EXIT_OK)
			return 0; /* p->ad fed part of the tail: read it all again */
		*ad = p->ad;
		*range = p->range;
		*records = p->records + tail;
		p->ad = p->range = NULL;
		return 1;
	}
	return 0;
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

static int diagnose_node(struct caveat_run *cr, PGconn *c, const char *spool, struct node_state *ns,
			 struct seg_pos to, char *err, size_t errlen)
{
	struct amidoctor *range = NULL, *pre_ad = NULL;
	uint64_t records = 0;
	int rc = 0;
	if (prescan_take(cr, ns, to, spool, &pre_ad, &range, &records)) {
		adoc_free(ns->ad); /* read nothing yet: the prescan's is the same read */
		ns->ad = pre_ad;
	} else {
		char *dir = xasprintf("%s/%s", spool, ns->node);
		range = adoc_new();
		rc = doctor_scan(dir, ns->before, &to, ns->ad, range, &records, err, errlen) == EXIT_OK ? 0 : -1;
		free(dir);
	}
	ns->records += records;
	if (rc == 0 && records) {
		doctor_warn(ns->node, ns->ad, &ns->warned);
		struct adoc_summary sm;
		adoc_summary(range, &sm);
		uint32_t missing = adoc_missing_all(ns->ad);
		struct adoc_summary all; /* everything this process read of the node */
		adoc_summary(ns->ad, &all);
		if (missing && sm.first_us) {
			if (pgc_exec(c, "BEGIN", err, errlen) < 0)
				rc = -1;
			for (int i = 0; i < AI_N && rc == 0; i++) {
				if (!(missing & (1u << i)))
					continue;
				struct adoc_verdict v;
				adoc_verdict(ns->ad, (enum adoc_input)i, &v);
				/* the proof may have come only now: the first caveat covers all this process read */
				uint64_t from = ns->stored & (1u << i) ? sm.first_us : all.first_us;
				rc = store(c, ns->node, (enum adoc_input)i, &v, from ? from : sm.first_us, sm.last_us, err, errlen);
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
	adoc_free(range);
	return rc;
}

int caveat_after(struct caveat_run *cr, PGconn *c, const char *spool, char *err, size_t errlen)
{
	struct after a = { NULL, NULL, 0 };
	if (cr->running) {
		pthread_join(cr->thread, NULL);
		cr->running = 0;
	}
	int rc = checkpoints(c, add_after, &a, err, errlen);
	for (size_t i = 0; i < a.n; i++) {
		if (rc == 0) {
			struct node_state *ns = node_state(cr, a.node[i]);
			struct seg_pos before = ns->before;
			if (before.segno < a.pos[i].segno || (before.segno == a.pos[i].segno && before.offset < a.pos[i].offset))
				rc = diagnose_node(cr, c, spool, ns, a.pos[i], err, errlen);
			ns->before = a.pos[i];
		}
		free(a.node[i]);
	}
	free(a.node);
	free(a.pos);
	prescan_free(cr);
	return rc;
}
