/*
 * ratedeck.c - rate decks: exact field parsers and the libcsv importer.
 *
 * libcsv does not count lines, so the importer feeds it one physical line
 * at a time and counts the newlines that end up inside quoted fields: a row
 * then starts on (line being fed) - (newlines inside its fields).
 */
#include "ratedeck.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsx.h"
#include "strparse.h"
#include "errmsg.h"
#include "xalloc.h"

#define CSV_MAX_FIELDS 64
#define CSV_ROW_MAX (64u << 10) /* bytes of one row's fields */

/* ------------------------------------------------------------ field parsers */

int rate_parse_money(const char *s, int64_t max, int64_t *out, char *err, size_t errlen)
{
	const char *p = s;
	int64_t units = 0, micro = 0;
	int ndig = 0, nfrac = 0;

	if (*p == '-')
		return errmsg(err, errlen, "is negative");
	for (; *p >= '0' && *p <= '9'; p++, ndig++) {
		if (units > max / 1000000)
			break; /* reported below as too large */
		units = units * 10 + (*p - '0');
	}
	if (*p >= '0' && *p <= '9')
		return errmsg(err, errlen, "must be at most %" PRId64 ".%06" PRId64, max / 1000000,
			    max % 1000000);
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, ndig++, nfrac++) {
			if (nfrac < 6)
				micro = micro * 10 + (*p - '0');
			else if (*p != '0')
				return errmsg(err, errlen, "has more than 6 decimals");
		}
	}
	if (*p || ndig == 0)
		return errmsg(err, errlen, "is not a decimal number");
	for (; nfrac < 6; nfrac++)
		micro *= 10;
	if (units > max / 1000000 || units * 1000000 + micro > max)
		return errmsg(err, errlen, "must be at most %" PRId64 ".%06" PRId64, max / 1000000,
			    max % 1000000);
	*out = units * 1000000 + micro;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic: a
 * 400-year era has a fixed 146097 days; March-based years put the leap day
 * last). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned mp = m > 2 ? m - 3 : m + 9;
	unsigned doy = (153 * mp + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* n digits at *p into *v; advances *p.  -1 if they are not all digits. */
static int take_digits(const char **p, int n, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		*v = *v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	return 0;
}

int rate_parse_time(const char *s, int64_t *out, char *err, size_t errlen)
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = s;
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
	int sign = 0;

	if (take_digits(&p, 4, &y) || *p++ != '-' || take_digits(&p, 2, &mo) || *p++ != '-' ||
	    take_digits(&p, 2, &d))
		return errmsg(err, errlen, "is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)");
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return errmsg(err, errlen, "is not a valid date");
	if (*p == 'T' || *p == ' ') {
		p++;
		if (take_digits(&p, 2, &h) || *p++ != ':' || take_digits(&p, 2, &mi))
			return errmsg(err, errlen, "has a bad time of day (HH:MM or HH:MM:SS)");
		if (*p == ':' && (p++, take_digits(&p, 2, &sec)))
			return errmsg(err, errlen, "has a bad time of day (HH:MM or HH:MM:SS)");
		if (h > 23 || mi > 59 || sec > 59)
			return errmsg(err, errlen, "has a bad time of day (HH:MM or HH:MM:SS)");
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p++ == '-' ? -1 : 1;
			if (take_digits(&p, 2, &oh) || *p++ != ':' || take_digits(&p, 2, &om) || oh > 23 ||
			    om > 59)
				return errmsg(err, errlen, "has a bad UTC offset (+HH:MM)");
		}
	}
	if (*p)
		return errmsg(err, errlen, "has trailing characters after the date");
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	*out = t;
	return 0;
}

static int parse_seconds(const char **p, uint32_t *out)
{
	uint32_t v = 0;
	const char *q = *p;
	for (; *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (uint32_t)(*q - '0');
		if (v > RATE_INCREMENT_MAX)
			return -1;
	}
	if (q == *p)
		return -1;
	*p = q;
	*out = v;
	return 0;
}

int rate_parse_increment(const char *s, uint32_t *a, uint32_t *b, char *err, size_t errlen)
{
	const char *p = s;
	uint32_t x, y;
	if (parse_seconds(&p, &x))
		goto bad;
	if (*p == '/') {
		p++;
		if (parse_seconds(&p, &y))
			goto bad;
	} else {
		y = x;
	}
	if (*p)
		goto bad;
	if (x == 0 || y == 0)
		return errmsg(err, errlen, "must not be 0 seconds");
	if (y > x)
		return errmsg(err, errlen, "has the later step b larger than the first block a (write a/b, e.g. 30/6)");
	*a = x;
	*b = y;
	return 0;
bad:
	return errmsg(err, errlen, "is not an increment a/b in seconds (e.g. 60/60, 30/6; each at most %d)",
		    RATE_INCREMENT_MAX);
}

int rate_parse_prefix(const char *s, char out[RATE_PREFIX_MAX + 1], char *err, size_t errlen)
{
	int n = 0, seen_plus = 0;
	for (const char *p = s; *p; p++) {
		if (*p == ' ')
			continue;
		if (*p == '+' && n == 0 && !seen_plus) {
			seen_plus = 1;
			continue;
		}
		if (*p < '0' || *p > '9')
			return errmsg(err, errlen, "is not a digit string");
		if (n == RATE_PREFIX_MAX)
			return errmsg(err, errlen, "is longer than %d digits", RATE_PREFIX_MAX);
		out[n++] = *p;
	}
	out[n] = '\0';
	if (n == 0)
		return errmsg(err, errlen, "has no digits");
	return n;
}

/* ------------------------------------------------------------ the deck */

void rate_deck_init(struct rate_deck *d, const char *name)
{
	memset(d, 0, sizeof *d);
	d->name = xstrdup(name ? name : "");
	buf_init(&d->strings, UINT32_MAX);
	buf_append(&d->strings, "", 1); /* offset 0: the empty description */
	d->finished = 1;
}

void rate_deck_release(struct rate_deck *d)
{
	free(d->name);
	free(d->entries);
	buf_release(&d->strings);
	memset(d, 0, sizeof *d);
}

const char *rate_entry_description(const struct rate_deck *d, const struct rate_entry *e)
{
	return e->desc_off < d->strings.len ? d->strings.data + e->desc_off : "";
}

/* The rules of docs/rating.md that a whole entry must satisfy. */
static const char *entry_problem(const struct rate_entry *e)
{
	if (e->prefix_len == 0 || e->prefix_len > RATE_PREFIX_MAX || strlen(e->prefix) != e->prefix_len)
		return "prefix length is wrong";
	for (unsigned i = 0; i < e->prefix_len; i++)
		if (e->prefix[i] < '0' || e->prefix[i] > '9')
			return "prefix is not a digit string";
	if (e->rate_per_min < 0 || e->rate_per_min > RATE_MONEY_MAX)
		return "rate_per_min is out of range";
	if (e->connect_fee < 0 || e->connect_fee > RATE_MONEY_MAX)
		return "connect_fee is out of range";
	if (e->first_incr < 1 || e->first_incr > RATE_INCREMENT_MAX || e->incr < 1 || e->incr > e->first_incr)
		return "increment must satisfy 1 <= b <= a <= 3600";
	if (e->grace > RATE_INCREMENT_MAX)
		return "grace must be at most 3600 seconds";
	if (e->eff_to <= e->eff_from)
		return "effective_to must be after effective_from";
	return NULL;
}

int rate_deck_add(struct rate_deck *d, const struct rate_entry *e, const char *desc, char *err,
		  size_t errlen)
{
	const char *why = entry_problem(e);
	if (why)
		return errmsg(err, errlen, "prefix \"%.*s\": %s", RATE_PREFIX_MAX, e->prefix, why);
	if (d->n >= RATE_DECK_MAX_ENTRIES)
		return errmsg(err, errlen, "deck \"%s\" has more than %u entries", d->name, RATE_DECK_MAX_ENTRIES);
	uint32_t off = 0;
	if (desc && *desc) {
		size_t len = strlen(desc) + 1;
		if (buf_append(&d->strings, desc, len))
			return errmsg(err, errlen, "deck \"%s\": descriptions exceed 4 GiB", d->name);
		off = (uint32_t)(d->strings.len - len);
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 256;
		d->entries = xrealloc(d->entries, d->cap * sizeof *d->entries);
	}
	d->entries[d->n] = *e;
	d->entries[d->n].desc_off = off;
	d->n++;
	d->finished = 0;
	return 0;
}

static int entry_cmp(const void *pa, const void *pb)
{
	const struct rate_entry *a = pa, *b = pb;
	int c = strcmp(a->prefix, b->prefix);
	if (c)
		return c;
	if (a->eff_from != b->eff_from)
		return a->eff_from < b->eff_from ? -1 : 1;
	return a->line < b->line ? -1 : a->line > b->line;
}

int rate_deck_finish(struct rate_deck *d, const char *source, char *err, size_t errlen)
{
	if (!source)
		source = d->name;
	if (d->n > 1)
		qsort(d->entries, d->n, sizeof *d->entries, entry_cmp);
	for (size_t i = 1; i < d->n; i++) {
		const struct rate_entry *p = &d->entries[i - 1], *e = &d->entries[i];
		if (strcmp(p->prefix, e->prefix) == 0 && p->eff_to > e->eff_from) {
			uint32_t late = p->line > e->line ? p->line : e->line;
			uint32_t early = p->line > e->line ? e->line : p->line;
			return errmsg(err, errlen, "%s:%u: prefix \"%s\": effective range overlaps the entry on line %u",
				    source, late, e->prefix, early);
		}
	}
	d->finished = 1;
	return 0;
}

/* ------------------------------------------------------------ CSV import */

enum col {
	COL_PREFIX, COL_DESCRIPTION, COL_RATE, COL_CONNECT_FEE, COL_INCREMENT, COL_MIN_INCREMENT,
	COL_GRACE, COL_EFF_FROM, COL_EFF_TO, COL_N
};

static const struct {
	const char *name;
	int required;
} columns[COL_N] = {
	[COL_PREFIX] = {"prefix", 1},
	[COL_DESCRIPTION] = {"description", 0},
	[COL_RATE] = {"rate_per_min", 1},
	[COL_CONNECT_FEE] = {"connect_fee", 0},
	[COL_INCREMENT] = {"increment", 1},
	[COL_MIN_INCREMENT] = {"min_increment", 0},
	[COL_GRACE] = {"grace", 0},
	[COL_EFF_FROM] = {"effective_from", 1},
	[COL_EFF_TO] = {"effective_to", 0},
};

struct csv_ctx {
	struct rate_deck *d;
	const char *source;
	char *err;
	size_t errlen;
	int failed;
	uint32_t line;        /* physical line being fed, 1-based */
	uint32_t embedded_nl; /* newlines inside the current row's fields */
	int row_open;         /* a non-blank line was fed since the last row ended */
	uint32_t row_start;   /* the line it was on */
	struct buf row;       /* the current row's fields, each NUL-terminated */
	size_t off[CSV_MAX_FIELDS];
	size_t nfields;
	int have_header;
	size_t ncols;         /* fields in the header */
	int col[COL_N];       /* header position of each column, -1 = absent */
};

static void ctx_fail(struct csv_ctx *c, uint32_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ctx_fail(struct csv_ctx *c, uint32_t line, const char *fmt, ...)
{
	if (c->failed)
		return;
	c->failed = 1;
	if (!c->err || !c->errlen)
		return;
	int n = snprintf(c->err, c->errlen, "%s:%u: ", c->source, line);
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static uint32_t row_line(const struct csv_ctx *c)
{
	return c->line > c->embedded_nl ? c->line - c->embedded_nl : 1;
}

static void on_field(void *s, size_t len, void *data)
{
	struct csv_ctx *c = data;
	if (c->failed)
		return;
	if (c->nfields == CSV_MAX_FIELDS) {
		ctx_fail(c, row_line(c), "more than %d fields", CSV_MAX_FIELDS);
		return;
	}
	if (len && memchr(s, '\0', len)) {
		ctx_fail(c, row_line(c), "NUL byte in field %zu", c->nfields + 1);
		return;
	}
	for (size_t i = 0; i < len; i++)
		c->embedded_nl += ((const char *)s)[i] == '\n';
	c->off[c->nfields++] = c->row.len;
	if (buf_append(&c->row, len ? s : "", len) || buf_append(&c->row, "", 1))
		ctx_fail(c, row_line(c), "row longer than %u bytes", CSV_ROW_MAX);
}

static const char *field(const struct csv_ctx *c, enum col k)
{
	int i = c->col[k];
	return i < 0 ? "" : c->row.data + c->off[i];
}

static void take_header(struct csv_ctx *c, uint32_t line)
{
	for (int k = 0; k < COL_N; k++)
		c->col[k] = -1;
	for (size_t i = 0; i < c->nfields; i++) {
		const char *name = c->row.data + c->off[i];
		int k;
		if (!*name) {
			ctx_fail(c, line, "header: column %zu has no name", i + 1);
			return;
		}
		for (k = 0; k < COL_N; k++)
			if (strcasecmp(name, columns[k].name) == 0)
				break;
		if (k == COL_N) {
			ctx_fail(c, line, "header: unknown column \"%s\"", name);
			return;
		}
		if (c->col[k] >= 0) {
			ctx_fail(c, line, "header: duplicate column \"%s\"", name);
			return;
		}
		c->col[k] = (int)i;
	}
	for (int k = 0; k < COL_N; k++)
		if (columns[k].required && c->col[k] < 0) {
			ctx_fail(c, line, "header: missing column \"%s\"", columns[k].name);
			return;
		}
	c->ncols = c->nfields;
	c->have_header = 1;
}

/* The value of a required column, or NULL after reporting it missing. */
static const char *required(struct csv_ctx *c, uint32_t line, enum col k)
{
	const char *v = field(c, k);
	if (!*v) {
		ctx_fail(c, line, "%s is empty", columns[k].name);
		return NULL;
	}
	return v;
}

static void take_row(struct csv_ctx *c, uint32_t line)
{
	struct rate_entry e;
	char why[160];
	const char *v;
	memset(&e, 0, sizeof e);
	e.line = line;
	e.eff_to = RATE_TIME_OPEN;

#define BAD(k, val) do { ctx_fail(c, line, "%s \"%s\": %s", columns[k].name, val, why); return; } while (0)
	if (!(v = required(c, line, COL_PREFIX)))
		return;
	int n = rate_parse_prefix(v, e.prefix, why, sizeof why);
	if (n < 0)
		BAD(COL_PREFIX, v);
	e.prefix_len = (uint8_t)n;

	if (!(v = required(c, line, COL_RATE)))
		return;
	if (rate_parse_money(v, RATE_MONEY_MAX, &e.rate_per_min, why, sizeof why))
		BAD(COL_RATE, v);

	v = field(c, COL_CONNECT_FEE);
	if (*v && rate_parse_money(v, RATE_MONEY_MAX, &e.connect_fee, why, sizeof why))
		BAD(COL_CONNECT_FEE, v);

	if (!(v = required(c, line, COL_INCREMENT)))
		return;
	if (rate_parse_increment(v, &e.first_incr, &e.incr, why, sizeof why))
		BAD(COL_INCREMENT, v);
	const char *mv = field(c, COL_MIN_INCREMENT);
	if (*mv) {
		int64_t a;
		if (strchr(v, '/')) {
			snprintf(why, sizeof why, "is a/b while min_increment is also given");
			BAD(COL_INCREMENT, v);
		}
		if (parse_int_range(mv, 1, RATE_INCREMENT_MAX, &a, why, sizeof why))
			BAD(COL_MIN_INCREMENT, mv);
		if (e.incr > (uint32_t)a) {
			snprintf(why, sizeof why, "is larger than min_increment %s", mv);
			BAD(COL_INCREMENT, v);
		}
		e.first_incr = (uint32_t)a;
	}

	v = field(c, COL_GRACE);
	if (*v) {
		int64_t g;
		if (parse_int_range(v, 0, RATE_INCREMENT_MAX, &g, why, sizeof why))
			BAD(COL_GRACE, v);
		e.grace = (uint32_t)g;
	}

	if (!(v = required(c, line, COL_EFF_FROM)))
		return;
	if (rate_parse_time(v, &e.eff_from, why, sizeof why))
		BAD(COL_EFF_FROM, v);
	v = field(c, COL_EFF_TO);
	if (*v) {
		if (rate_parse_time(v, &e.eff_to, why, sizeof why))
			BAD(COL_EFF_TO, v);
		if (e.eff_to <= e.eff_from) {
			snprintf(why, sizeof why, "is not after effective_from \"%s\"", field(c, COL_EFF_FROM));
			BAD(COL_EFF_TO, v);
		}
	}
#undef BAD

	if (rate_deck_add(c->d, &e, field(c, COL_DESCRIPTION), why, sizeof why))
		ctx_fail(c, line, "%s", why);
}

static void on_row(int term, void *data)
{
	struct csv_ctx *c = data;
	(void)term;
	if (!c->failed) {
		uint32_t line = row_line(c);
		int blank = 1;
		for (size_t i = 0; i < c->nfields && blank; i++)
			blank = c->row.data[c->off[i]] == '\0';
		if (blank)
			; /* an empty line, or only separators: skipped */
		else if (!c->have_header)
			take_header(c, line);
		else if (c->nfields != c->ncols)
			ctx_fail(c, line, "row has %zu fields, the header has %zu", c->nfields, c->ncols);
		else
			take_row(c, line);
	}
	c->nfields = 0;
	c->embedded_nl = 0;
	c->row_open = 0;
	buf_reset(&c->row);
}

int rate_deck_parse(struct rate_deck *d, const char *source, const char *data, size_t len, char *err,
		    size_t errlen)
{
	struct csv_parser p;
	struct csv_ctx c;
	int rc = -1;

	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
		return errmsg(err, errlen, "%s: cannot initialise the CSV parser", source);
	memset(&c, 0, sizeof c);
	c.d = d;
	c.source = source;
	c.err = err;
	c.errlen = errlen;
	c.line = 1;
	buf_init(&c.row, CSV_ROW_MAX);

	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
		data += 3; /* a UTF-8 byte order mark, as spreadsheets write */
		len -= 3;
	}
	/* One physical line per call, so c.line is the line libcsv is in. */
	size_t pos = 0;
	while (pos < len && !c.failed) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;
		if (!c.row_open && !(n == 1 || (n == 2 && data[pos] == '\r' && nl))) {
			c.row_open = 1;
			c.row_start = c.line;
		}
		if (csv_parse(&p, data + pos, n, on_field, on_row, &c) != n) {
			ctx_fail(&c, c.line, "malformed CSV: %s", csv_strerror(csv_error(&p)));
			break;
		}
		pos += n;
		if (nl && c.line < UINT32_MAX)
			c.line++;
	}
	/* with CSV_STRICT_FINI this fails only for a quote still open at EOF */
	if (!c.failed && csv_fini(&p, on_field, on_row, &c) != 0)
		ctx_fail(&c, c.row_open ? c.row_start : c.line,
			 "malformed CSV: a quoted field is still open at the end of the file");
	if (!c.failed && !c.have_header)
		ctx_fail(&c, 1, "no header row (an empty deck)");
	if (!c.failed)
		rc = rate_deck_finish(d, source, err, errlen);
	csv_free(&p);
	buf_release(&c.row);
	return rc;
}

int rate_deck_load(struct rate_deck *d, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return errmsg(err, errlen, "cannot stat \"%s\": %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > RATE_DECK_FILE_MAX) {
		close(fd);
		return errmsg(err, errlen, "\"%s\" is not a regular file of at most %u MiB", path,
			    RATE_DECK_FILE_MAX >> 20);
	}
	size_t size = (size_t)st.st_size;
	char *data = xmalloc(size + 1);
	ssize_t got = read_full(fd, data, size);
	int e = errno;
	close(fd);
	if (got < 0 || (size_t)got != size) {
		free(data);
		return errmsg(err, errlen, "cannot read \"%s\": %s", path, got < 0 ? strerror(e) : "file shrank");
	}
	int rc = rate_deck_parse(d, path, data, size, err, errlen);
	free(data);
	return rc;
}
