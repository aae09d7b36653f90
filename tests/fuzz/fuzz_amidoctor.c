/* libFuzzer target: any AMI bytes fed to the doctor give a verdict for every
 * input, with NUL-terminated evidence, and never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ami.h"
#include "amidoctor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_msg(void *ctx, const struct ami_msg *m)
{
	adoc_event(ctx, m, 1796535900000000u + m->raw_len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct amidoctor *d = adoc_new();
	struct ami_parser p;
	ami_parser_init(&p, 4096);
	ami_parser_feed(&p, data, size, on_msg, d);
	ami_parser_release(&p);
	for (int i = 0; i < AI_N; i++) {
		struct adoc_verdict v;
		adoc_verdict(d, (enum adoc_input)i, &v);
		if (memchr(v.evidence, '\0', sizeof v.evidence) == NULL || v.state > ADOC_MISSING)
			abort();
		if (v.state == ADOC_MISSING && !(adoc_missing_all(d) & (1u << i)))
			abort();
	}
	struct adoc_summary s;
	adoc_summary(d, &s);
	if (!memchr(s.classes, '\0', sizeof s.classes) || !memchr(s.cel_types, '\0', sizeof s.cel_types) ||
	    s.with_timestamp > s.events || (s.first_us && s.first_us > s.last_us))
		abort();
	adoc_free(d);
	return 0;
}
