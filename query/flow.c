/*
 * flow.c - "cdrflow-query flow LINKEDID": a call's CEL events as a ladder.
 *
 * The events are those of every channel (uniqueid) that ever carried one of
 * the call's linkedids (call.linkedids when the linkedid belongs to a call in
 * the warehouse, else the linkedid alone), ordered by event time.  Each
 * channel is a column (A, B, ... in order of first event; the legend gives
 * the full channel name); each shown event is a row: its time relative to
 * the first event, a marker in its channel's column, a line between the
 * columns of bridged channels or from the transferer to the transferee, and
 * a note.  A column shows '|' while its channel exists (CHAN_START ..
 * CHAN_END).  Markers (docs/query.md):
 *
 *   +  CHAN_START        A  ANSWER            X  HANGUP (cause in the note)
 *   o==o BRIDGE_ENTER    o--o BRIDGE_EXIT     [ ]  bridge enter/exit, no peer
 *   T~~>  BLINDTRANSFER / ATTENDEDTRANSFER (to the transferee / target)
 *   P  PARK_START        p  PARK_END          .  CHAN_END (with --all-events)
 *   *  any other event (with --all-events)
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "exitcode.h"
#include "log.h"
#include "pgconn.h"
#include "qdb.h"
#include "query.h"
#include "xalloc.h"

#define COLW 6 /* characters per channel column */

struct chan {
	char *uniqueid;
	char *name; /* first name seen */
	char *last_name;
	char label[4];
	int alive;
};

struct flow {
	struct chan *ch;
	size_t nch, cap;
};

static void col_label(size_t i, char *out)
{
	if (i < 26)
		snprintf(out, 4, "%c", (char)('A' + i));
	else
		snprintf(out, 4, "%c%c", (char)('A' + (i / 26 - 1) % 26), (char)('A' + i % 26));
}

static long find_uid(const struct flow *f, const char *uid)
{
	for (size_t i = 0; i < f->nch; i++)
		if (!strcmp(f->ch[i].uniqueid, uid))
			return (long)i;
	return -1;
}

static long find_name(const struct flow *f, const char *name)
{
	if (!name || !*name)
		return -1;
	for (size_t i = 0; i < f->nch; i++)
		if (!strcmp(f->ch[i].last_name, name) || !strcmp(f->ch[i].name, name))
			return (long)i;
	return -1;
}

static long add_chan(struct flow *f, const char *uid, const char *name)
{
	long i = find_uid(f, uid);
	if (i >= 0) {
		if (strcmp(f->ch[i].last_name, name)) {
			free(f->ch[i].last_name);
			f->ch[i].last_name = xstrdup(name);
		}
		return i;
	}
	if (f->nch == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->ch = xrealloc(f->ch, f->cap * sizeof *f->ch);
	}
	struct chan *c = &f->ch[f->nch];
	memset(c, 0, sizeof *c);
	c->uniqueid = xstrdup(uid);
	c->name = xstrdup(name);
	c->last_name = xstrdup(name);
	col_label(f->nch, c->label);
	return (long)f->nch++;
}

/* The value of "key" in a JSON object (CEL extra) as text, or NULL: a
 * string as it is, a number as written.  malloc'ed. */
static char *json_get(const char *json, const char *key)
{
	if (!json || !*json)
		return NULL;
	json_t *root = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	json_t *v = json_is_object(root) ? json_object_get(root, key) : NULL;
	char *out = NULL;
	if (json_is_string(v))
		out = xstrdup(json_string_value(v));
	else if (json_is_integer(v))
		out = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		out = xasprintf("%g", json_real_value(v));
	json_decref(root);
	return out;
}

static const char *cause_name(int cause)
{
	switch (cause) {
	case 1: return "Unallocated number";
	case 3: return "No route to destination";
	case 16: return "Normal Clearing";
	case 17: return "User busy";
	case 18: return "No user responding";
	case 19: return "No answer";
	case 20: return "Subscriber absent";
	case 21: return "Call rejected";
	case 22: return "Number changed";
	case 27: return "Destination out of order";
	case 28: return "Invalid number format";
	case 31: return "Normal, unspecified";
	case 34: return "No circuit available";
	case 38: return "Network out of order";
	case 41: return "Temporary failure";
	case 42: return "Switching equipment congestion";
	case 58: return "Bearer capability not available";
	case 102: return "Recovery on timer expiry";
	case 127: return "Interworking, unspecified";
	default: return "";
	}
}

static int shown_by_default(const char *ev)
{
	static const char *const shown[] = { "CHAN_START", "ANSWER", "BRIDGE_ENTER", "BRIDGE_EXIT", "BLINDTRANSFER",
					     "ATTENDEDTRANSFER", "PARK_START", "PARK_END", "HANGUP", "PICKUP",
					     "FORWARD", "LOCAL_OPTIMIZE", "USER_DEFINED", NULL };
	for (int i = 0; shown[i]; i++)
		if (!strcmp(ev, shown[i]))
			return 1;
	return 0;
}

/* Draw a connection between columns a and b (a != b) on line l. */
static void connect_cols(char *l, long a, long b, char fill, char end_a, char end_b)
{
	long pa = a * COLW + COLW / 2, pb = b * COLW + COLW / 2;
	long lo = pa < pb ? pa : pb, hi = pa < pb ? pb : pa;
	for (long p = lo + 1; p < hi; p++)
		l[p] = fill;
	l[pa] = end_a;
	l[pb] = end_b;
	if (end_b == '>' && pb < pa) /* arrow pointing left */
		l[pb] = '<';
}

/* the columns of a comma-separated peer list */
static size_t peer_cols(const struct flow *f, const char *peers, long *out, size_t max)
{
	size_t n = 0;
	if (!peers)
		return 0;
	char *copy = xstrdup(peers), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
		long i = find_name(f, t);
		if (i >= 0)
			out[n++] = i;
	}
	free(copy);
	return n;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);
	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

/* The node of the linkedid: o->node, else the only node whose CEL has it.
 * *node points into *held (PQclear it) or at o->node; NULL: no event.
 * Two PBXs may use the same linkedid, so nodes are never mixed. */
static int resolve_node(PGconn *c, const struct qopts *o, const char **node, PGresult **held, char *err,
			size_t errlen)
{
	*node = o->node;
	*held = NULL;
	if (o->node)
		return EXIT_OK;
	struct qsql q;
	qsql_init(&q);
	qsql_text(&q, "SELECT DISTINCT e.node FROM cel e WHERE e.linkedid = ");
	qsql_param(&q, o->linkedid);
	qsql_text(&q, " ORDER BY 1");
	int rc = qdb_exec(c, &q, held, err, errlen);
	qsql_release(&q);
	if (rc < 0)
		return -1;
	int n = PQntuples(*held);
	if (n > 1) {
		struct buf names;
		buf_init(&names, 0);
		for (int i = 0; i < n; i++)
			buf_printf(&names, "%s%s", i ? ", " : "", PQgetvalue(*held, i, 0));
		log_error("linkedid \"%s\" has events on %d nodes (%s): choose one with --node", o->linkedid, n,
			  names.data);
		buf_release(&names);
		return EXIT_USAGE;
	}
	if (n == 1)
		*node = PQgetvalue(*held, 0, 0);
	return EXIT_OK;
}

/* The call the linkedid belongs to on that node, if any (0 or 1 row). */
static int fetch_call(PGconn *c, const struct qopts *o, const char *node, PGresult **out, char *err, size_t errlen)
{
	struct qsql q;
	qsql_init(&q);
	/* MATERIALIZED: the few calls holding the linkedid come from the
	 * linkedids GIN index; with ORDER BY start LIMIT 1 over the plain
	 * query the planner walks the start index instead, filtering every
	 * earlier call of the warehouse */
	qsql_text(&q, "WITH m AS MATERIALIZED (SELECT k.call_id, k.linkedids, k.src, k.dst, k.outcome, k.node, k.start"
		      " FROM call k WHERE k.linkedids @> ARRAY[");
	qsql_param(&q, o->linkedid);
	qsql_text(&q, "]::text[]");
	if (node) {
		qsql_text(&q, " AND k.node = ");
		qsql_param(&q, node);
	}
	qsql_text(&q, ") SELECT m.call_id, m.linkedids, m.src, m.dst, m.outcome, m.node FROM m ORDER BY m.start LIMIT 1");
	int rc = qdb_exec(c, &q, out, err, errlen);
	qsql_release(&q);
	return rc;
}

/* Every CEL event of every channel that carried one of the call's
 * linkedids (or the linkedid alone), in time order. */
/* With --explain: its plan printed instead (*explained: the exit code). */
static int fetch_events(PGconn *c, const struct qopts *o, const char *node, PGresult **out, int *explained,
			char *err, size_t errlen)
{
	struct qsql q;
	qsql_init(&q);
	qsql_text(&q, "WITH m AS MATERIALIZED (SELECT k.linkedids, k.start FROM call k WHERE k.linkedids @> ARRAY[");
	size_t pid = qsql_param(&q, o->linkedid);
	qsql_text(&q, "]::text[] AND k.node = ");
	size_t pn = qsql_param(&q, node ? node : "");
	qsql_text(&q, "), ids AS (SELECT coalesce((SELECT m.linkedids FROM m ORDER BY m.start LIMIT 1), ARRAY[");
	qsql_ref(&q, pid);
	qsql_text(&q, "]::text[]) AS a),"
		      " u AS (SELECT DISTINCT e.uniqueid FROM cel e, ids WHERE e.linkedid = ANY (ids.a) AND e.node = ");
	qsql_ref(&q, pn);
	qsql_text(&q, "), ev AS (SELECT e.* FROM cel e WHERE e.uniqueid IN (SELECT uniqueid FROM u) AND e.node = ");
	qsql_ref(&q, pn);
	qsql_text(&q, ")"
		      " SELECT e.eventtype, to_char(e.eventtime, 'YYYY-MM-DD HH24:MI:SS.MS TZ'),"
		      " to_char(extract(epoch FROM e.eventtime - min(e.eventtime) OVER ()), 'FM999990.000'),"
		      " e.channame, e.uniqueid, coalesce(e.peer, ''), coalesce(e.extra, ''), coalesce(e.exten, ''),"
		      " coalesce(e.context, ''), e.linkedid"
		      " FROM ev e ORDER BY e.eventtime, e.node, e.seq");
	if (o->explain) { /* the plan of the ladder's query (it holds the call lookup) */
		*explained = q_explain(c, &q, o);
		qsql_release(&q);
		return 0;
	}
	int rc = qdb_exec(c, &q, out, err, errlen);
	qsql_release(&q);
	return rc;
}

/* The heading: the call (or the bare linkedid), the first event, the
 * legend of the columns and their labels. */
static void print_heading(FILE *out, const struct qopts *o, const PGresult *call, const PGresult *ev,
			  const struct flow *f, char *line, size_t width)
{
	if (PQntuples(call) > 0)
		fprintf(out, "call %s (node %s, linkedids %s): src %s dst %s, %s\n", PQgetvalue(call, 0, 0),
			PQgetvalue(call, 0, 5), PQgetvalue(call, 0, 1), PQgetvalue(call, 0, 2), PQgetvalue(call, 0, 3),
			PQgetvalue(call, 0, 4));
	else
		fprintf(out, "linkedid %s (not in table call)\n", o->linkedid);
	fprintf(out, "first event %s, %d events, %zu channels\n", PQgetvalue(ev, 0, 1), PQntuples(ev), f->nch);
	for (size_t i = 0; i < f->nch; i++)
		fprintf(out, "  %-2s = %s (%s)\n", f->ch[i].label, f->ch[i].name, f->ch[i].uniqueid);
	fputc('\n', out);
	memset(line, ' ', width);
	line[width] = '\0';
	for (size_t i = 0; i < f->nch; i++)
		memcpy(line + i * COLW + COLW / 2, f->ch[i].label, strlen(f->ch[i].label));
	rstrip(line);
	fprintf(out, "%10s  %s\n", "", line);
}

/* The marker and the lines of a bridge event; its note. */
static void draw_bridge(const struct flow *f, const char *type, long col, const char *peer, const char *extra,
			char *line, struct buf *note)
{
	long peers[64];
	int enter = type[7] == 'E' && type[8] == 'N';
	size_t np = peer_cols(f, peer, peers, sizeof peers / sizeof peers[0]);
	for (size_t k = 0; k < np; k++) {
		if (peers[k] == col)
			continue;
		connect_cols(line, col, peers[k], enter ? '=' : '-', 'o', 'o');
		buf_printf(note, "%s%s", k ? "," : " <-> ", f->ch[peers[k]].label);
	}
	if (np == 0)
		line[col * COLW + COLW / 2] = enter ? '[' : ']';
	char *tech = json_get(extra, "bridge_technology");
	if (tech && *tech)
		buf_printf(note, " (%s)", tech);
	free(tech);
}

/* The marker and the arrow of a transfer; its note. */
static void draw_transfer(const struct flow *f, long col, const char *extra, char *line, struct buf *note)
{
	char *tee = json_get(extra, "transferee_channel_name");
	char *target = json_get(extra, "transfer_target_channel_name");
	char *ext = json_get(extra, "extension"), *ctx = json_get(extra, "context");
	long tc = find_name(f, tee);
	long gc = find_name(f, target);
	if (tc >= 0 && tc != col)
		connect_cols(line, col, tc, '~', 'T', '>');
	line[col * COLW + COLW / 2] = 'T';
	buf_printf(note, " transfers %s", tc >= 0 ? f->ch[tc].label : (tee && *tee ? tee : "?"));
	if (gc >= 0)
		buf_printf(note, " to %s", f->ch[gc].label);
	else if (target && *target)
		buf_printf(note, " to %s", target);
	else if (ext && *ext)
		buf_printf(note, " to %s@%s", ext, ctx ? ctx : "");
	free(tee);
	free(target);
	free(ext);
	free(ctx);
}

/* Row r of ev as one ladder line into line/note; 0 when it is not shown. */
static int draw_event(struct flow *f, const struct qopts *o, const PGresult *ev, int r, char *line, size_t width,
		      struct buf *note)
{
	const char *type = PQgetvalue(ev, r, 0), *name = PQgetvalue(ev, r, 3);
	const char *extra = PQgetvalue(ev, r, 6), *peer = PQgetvalue(ev, r, 5);
	long col = add_chan(f, PQgetvalue(ev, r, 4), name);
	struct chan *ch = &f->ch[col];
	int is_start = !strcmp(type, "CHAN_START");
	if (is_start)
		ch->alive = 1;
	if (!strcmp(type, "CHAN_END") && !o->all_events) {
		ch->alive = 0;
		return 0;
	}
	if (!o->all_events && !shown_by_default(type))
		return 0;
	memset(line, ' ', width);
	line[width] = '\0';
	for (size_t i = 0; i < f->nch; i++)
		if (f->ch[i].alive)
			line[i * COLW + COLW / 2] = '|';
	long pos = col * COLW + COLW / 2;
	buf_printf(note, "%s %s", type, ch->label);
	if (is_start) {
		line[pos] = '+';
		buf_printf(note, " %s", name);
		if (*PQgetvalue(ev, r, 7))
			buf_printf(note, " exten %s@%s", PQgetvalue(ev, r, 7), PQgetvalue(ev, r, 8));
	} else if (!strcmp(type, "ANSWER")) {
		line[pos] = 'A';
	} else if (!strcmp(type, "BRIDGE_ENTER") || !strcmp(type, "BRIDGE_EXIT")) {
		draw_bridge(f, type, col, peer, extra, line, note);
	} else if (!strcmp(type, "BLINDTRANSFER") || !strcmp(type, "ATTENDEDTRANSFER")) {
		draw_transfer(f, col, extra, line, note);
	} else if (!strcmp(type, "HANGUP")) {
		line[pos] = 'X';
		char *cause = json_get(extra, "hangupcause"), *ds = json_get(extra, "dialstatus");
		if (cause && *cause)
			buf_printf(note, " cause %s %s", cause, cause_name(atoi(cause)));
		if (ds && *ds)
			buf_printf(note, " dialstatus %s", ds);
		free(cause);
		free(ds);
	} else if (!strcmp(type, "PARK_START") || !strcmp(type, "PARK_END")) {
		line[pos] = type[5] == 'S' ? 'P' : 'p';
	} else if (!strcmp(type, "CHAN_END")) {
		line[pos] = '.';
		ch->alive = 0;
	} else {
		line[pos] = '*';
		if (*extra)
			buf_printf(note, " %s", extra);
	}
	rstrip(line);
	return 1;
}

/* The ladder: heading, then one line per shown event.  An exit code. */
static int print_flow(FILE *out, const struct qopts *o, const PGresult *call, const PGresult *ev)
{
	struct flow f = { NULL, 0, 0 };
	int n = PQntuples(ev), rc = EXIT_OK;
	/* columns: channels in order of first event, named as first seen */
	for (int i = 0; i < n; i++)
		add_chan(&f, PQgetvalue(ev, i, 4), PQgetvalue(ev, i, 3));
	for (size_t i = 0; i < f.nch; i++) {
		free(f.ch[i].last_name);
		f.ch[i].last_name = xstrdup(f.ch[i].name);
	}
	size_t width = f.nch * COLW;
	char *line = xmalloc(width + 1);
	print_heading(out, o, call, ev, &f, line, width);
	struct buf note;
	buf_init(&note, 0);
	for (int r = 0; r < n && rc == EXIT_OK; r++) {
		buf_reset(&note);
		if (!draw_event(&f, o, ev, r, line, width, &note))
			continue;
		char t[24];
		snprintf(t, sizeof t, "+%ss", PQgetvalue(ev, r, 2));
		if (fprintf(out, "%10s  %-*s  %s\n", t, (int)width, line, note.data ? note.data : "") < 0)
			rc = EXIT_IOERR;
	}
	buf_release(&note);
	if (rc == EXIT_OK && (fflush(out) != 0 || ferror(out)))
		rc = EXIT_IOERR;
	if (rc == EXIT_IOERR)
		log_error("cannot write the output");
	for (size_t i = 0; i < f.nch; i++) {
		free(f.ch[i].uniqueid);
		free(f.ch[i].name);
		free(f.ch[i].last_name);
	}
	free(f.ch);
	free(line);
	return rc;
}

int q_flow(PGconn *c, const struct qopts *o)
{
	char err[1024];
	PGresult *nodes = NULL, *call = NULL, *ev = NULL;
	const char *node;
	int rc = resolve_node(c, o, &node, &nodes, err, sizeof err);
	int explained = -1;
	if (rc == EXIT_OK && fetch_events(c, o, node, &ev, &explained, err, sizeof err) < 0)
		rc = -1;
	/* the call's line of the heading: only for a ladder to draw (no
	 * events is exit 66, --explain prints the plan; neither reads it) */
	if (rc == EXIT_OK && explained < 0 && PQntuples(ev) > 0 && fetch_call(c, o, node, &call, err, sizeof err) < 0)
		rc = -1;
	if (rc == EXIT_OK && explained >= 0) {
		rc = explained;
	} else if (rc < 0) {
		log_error("flow query failed: %s", err);
		rc = pgc_exit_for_value(c, err, EXIT_USAGE);
	} else if (rc == EXIT_OK && PQntuples(ev) == 0) {
		if (o->node)
			log_error("no CEL events for linkedid \"%s\" on node \"%s\"", o->linkedid, o->node);
		else
			log_error("no CEL events for linkedid \"%s\"", o->linkedid);
		rc = EXIT_NOINPUT;
	} else if (rc == EXIT_OK) {
		rc = print_flow(o->out, o, call, ev);
	}
	PQclear(call);
	PQclear(ev);
	PQclear(nodes);
	return rc;
}
