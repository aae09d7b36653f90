/* libFuzzer target: Yeastar messages (lib/yeastar.c) - the classifier the
 * collector runs on every received text, the envelope parser and the
 * CDR -> leg mapping the ETL runs: never crash, never leak, and every leg
 * it makes is consistent (billsec <= duration, answer within the call,
 * a known disposition, end = start + duration). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yeastar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	enum ys_class c = ys_classify(text, size);
	check(c == YS_GARBAGE || c == YS_REPLY || c == YS_EVENT);
	/* the time parser on the input as a string */
	char s[40];
	size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	(void)ys_parse_time(s, size ? (int64_t)(data[0] % 29) * 1800 - 12 * 3600 : 0);

	struct ys_event ev;
	char err[256];
	if (ys_event_parse(text, size, &ev, err, sizeof err) < 0)
		return 0;
	check(ev.msg != NULL);
	char name[48];
	ys_event_name(&ev, name, sizeof name);
	check(!strncmp(name, "Yeastar", 7));
	char *fields = ys_event_fields_json(&ev);
	free(fields);
	(void)ys_event_call_id(&ev);
	if (ys_event_is_cdr(&ev)) {
		struct ys_leg *leg = malloc(sizeof *leg);
		err[0] = '\0';
		if (leg && ys_leg_from_event(&ev, 3600, 1700000000000000u, 7, leg, err, sizeof err) == 0) {
			const struct cdr_row *r = &leg->row;
			check(r->billsec >= 0 && r->billsec <= r->duration);
			check(r->end_us == r->start_us + (uint64_t)r->duration * 1000000u);
			check(!r->answer_us || (r->answer_us >= r->start_us && r->answer_us <= r->end_us));
			check(r->disposition == CDR_ANSWERED || r->disposition == CDR_NOANSWER ||
			      r->disposition == CDR_BUSY || r->disposition == CDR_FAILED);
			check((r->disposition == CDR_ANSWERED) == (leg->call.first_answer_us != 0));
			check(r->uniqueid[0] != '\0' && leg->call.legs == 1 && r->sequence == 7);
			check(leg->linkedids[0] == '{' && leg->linkedids[strlen(leg->linkedids) - 1] == '}');
			check(strlen(leg->trunk) < sizeof leg->trunk);
		}
		free(leg);
	}
	ys_event_release(&ev);
	return 0;
}
