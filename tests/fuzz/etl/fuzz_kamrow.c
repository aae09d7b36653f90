/* libFuzzer target: a Kamailio acc row -> leg and call (etl/kamrow.c,
 * kam_leg_build and kam_parse_time) and the leg's COPY row (load_leg_row).
 * Input: a first byte picking the table (acc_cdrs, missed_calls, acc),
 * time_mode 4 or 0 and cdr_start_on_confirmed, then the row's fields
 * separated by 0x1f (a field that is exactly 0x1e is SQL NULL).  Checks:
 * end >= start, the answer inside [start, end] and set iff ANSWERED,
 * billsec <= duration, a well-formed one-element array of linkedids, and a
 * cdr COPY row of 37 columns. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "kamrow.h"
#include "legclass.h"
#include "load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 8192)
		return 0;
	char *s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	const char *v[KF_N] = { NULL };
	char *p = s;
	for (int i = 0; i < KF_N && p; i++) {
		char *e = strchr(p, 0x1f);
		if (e)
			*e = '\0';
		v[i] = strcmp(p, "\x1e") ? p : NULL;
		p = e ? e + 1 : NULL;
	}
	uint64_t t;
	if (kam_parse_time(v[0], data[0] & 8, &t) == 0 && t > UINT64_C(253402300800000000))
		abort(); /* past year 9999 */
	struct kam_source k;
	memset(&k, 0, sizeof k);
	k.time_mode = data[0] & 4 ? 4 : 0;
	k.start_on_confirmed = (data[0] >> 4) & 1;
	k.context = "kamailio";
	enum kam_kind kind = (enum kam_kind)((data[0] & 3) % KAM_KINDS);
	struct kam_leg *leg = malloc(sizeof *leg);
	char err[256];
	if (leg && kam_leg_build(&k, kind, v, "fz", leg, err, sizeof err) == 0) {
		const struct cdr_row *r = &leg->row;
		if (r->end_us < r->start_us || (r->answer_us && (r->answer_us < r->start_us || r->answer_us > r->end_us)))
			abort();
		if ((r->answer_us != 0) != (r->disposition == CDR_ANSWERED))
			abort();
		if (r->billsec < 0 || r->duration < 0 || r->billsec > r->duration)
			abort();
		size_t n = strlen(leg->linkedids);
		if (n < 4 || strncmp(leg->linkedids, "{\"", 2) || strcmp(leg->linkedids + n - 2, "\"}"))
			abort();
		struct etl_config cfg;
		memset(&cfg, 0, sizeof cfg);
		cfg.trunks = "SIP/*";
		struct legclass lc;
		if (legclass_init(&lc, &cfg, err, sizeof err) == 0) {
			struct buf row;
			buf_init(&row, 0);
			struct leg_extra e;
			legclass_apply(&lc, r, &e);
			load_leg_row(&row, &e, r, "fz");
			load_leg_row_end(&row, r->linkedid);
			size_t tabs = 0;
			for (size_t i = 0; i < row.len; i++)
				tabs += row.data[i] == '\t';
			if (tabs != 39 || !row.len || row.data[row.len - 1] != '\n') /* 40 columns, call_id last */
				abort();
			buf_release(&row);
			legclass_release(&lc);
		}
	}
	free(leg);
	free(s);
	return 0;
}
