/*
 * test_delivery.c - the delivery pieces without a network: MIME building
 * (base64, encoded-words, RFC 2231 names, line lengths, header injection),
 * address lists, content types, HMAC vectors, the outbox spool (round
 * trip, one message per key, order, corruption, dead/), exit-code merging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "delivery.h"
#include "exitcode.h"
#include "hmac.h"
#include "mail.h"
#include "outbox.h"
#include "testutil.h"
#include "xalloc.h"

static void test_hmac_vectors(void **state)
{
	(void)state;
	char hex[65];
	/* RFC 4231 test case 2 */
	assert_int_equal(hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex), 0);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* the signature is that MAC over "<ts>.<body>" */
	char sig[WEBHOOK_SIG_LEN];
	assert_int_equal(webhook_signature("Jefe", 4, 1714550400, "{\"a\":1}", 7, sig), 0);
	assert_int_equal(hmac_sha256_hex("Jefe", 4, "1714550400.{\"a\":1}", 18, hex), 0);
	assert_memory_equal(sig, "sha256=", 7);
	assert_string_equal(sig + 7, hex);
	assert_int_equal(sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_content_types(void **state)
{
	(void)state;
	assert_string_equal(mail_content_type("a.pdf"), "application/pdf");
	assert_string_equal(mail_content_type("A.PDF"), "application/pdf");
	assert_string_equal(mail_content_type("x.csv"), "text/csv; charset=utf-8");
	assert_string_equal(mail_content_type("r.xlsx"),
			    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
	assert_string_equal(mail_content_type("noext"), "application/octet-stream");
	assert_string_equal(mail_content_type("x.bin"), "application/octet-stream");
}

static void test_addresses(void **state)
{
	(void)state;
	char **a, err[256];
	size_t n;
	assert_int_equal(mail_addresses(" a@x.org, Zoë <b@y.net> ,", &a, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(a[0], "a@x.org");
	assert_string_equal(a[1], "b@y.net");
	mail_addresses_free(a, n);
	assert_int_equal(mail_addresses("not an address", &a, &n, err, sizeof err), -1);
	assert_int_equal(mail_addresses("a@x\r\nRCPT TO:<evil@x>", &a, &n, err, sizeof err), -1);
	assert_int_equal(mail_addresses(" , ", &a, &n, err, sizeof err), -1);
	assert_int_equal(mail_addresses("<a@x", &a, &n, err, sizeof err), -1);
}

/* decode one base64 run (no line breaks) */
static size_t unb64(const char *s, size_t n, unsigned char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *p = strchr(t, s[i]);
		assert_non_null(p);
		v = (v << 6) | (unsigned)(p - t);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	return o;
}

static void build(const struct mail_msg *m, struct buf *out)
{
	char err[256];
	buf_init(out, 0);
	assert_int_equal(mail_build(m, out, err, sizeof err), 0);
}

static void check_lines(const struct buf *b)
{
	const char *p = b->data, *end = b->data + b->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(nl);
		assert_true(nl > p && nl[-1] == '\r');
		assert_true(nl - p - 1 <= 78);
		p = nl + 1;
	}
}

static void test_mail_build(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *f1 = xasprintf("%s/Bericht Zürich.pdf", dir), *f2 = xasprintf("%s/r.csv", dir);
	FILE *f = fopen(f1, "wb");
	assert_non_null(f);
	unsigned char bin[1000];
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (unsigned char)(i * 7 + 3);
	assert_int_equal(fwrite(bin, 1, sizeof bin, f), sizeof bin);
	fclose(f);
	f = fopen(f2, "wb");
	fputs("hello", f);
	fclose(f);
	const char *subject = "Tagesbericht Zürich ☎ 2024-05-01 — Anrufe, Kosten und Qualität je Mandant";
	struct mail_attachment att[2] = { { f1, NULL, NULL }, { f2, NULL, NULL } };
	struct mail_msg m = { .from = "J. Doe <r@example.com>", .to = "a@x.org, Zoë <b@y.net>", .subject = subject,
			      .text = "line 1\nline 2\n", .html = "<p>hi</p>", .att = att, .natt = 2,
			      .message_id = "<id@example.com>", .date = 1714550400 };
	struct buf b;
	build(&m, &b);
	check_lines(&b);
	assert_non_null(strstr(b.data, "Date: Wed, 01 May 2024 08:00:00 +0000\r\n"));
	assert_non_null(strstr(b.data, "From: \"J. Doe\" <r@example.com>\r\n"));
	assert_non_null(strstr(b.data, "To: <a@x.org>,\r\n =?UTF-8?B?Wm/Dqw==?= <b@y.net>\r\n"));
	assert_non_null(strstr(b.data, "Message-ID: <id@example.com>\r\n"));
	assert_non_null(strstr(b.data, "filename*=UTF-8''Bericht%20Z%C3%BCrich.pdf\r\n"));
	assert_non_null(strstr(b.data, "Content-Type: application/pdf;\r\n"));
	assert_non_null(strstr(b.data, "Content-Type: text/csv; charset=utf-8;\r\n name=\"r.csv\"\r\n"));
	assert_non_null(strstr(b.data, "\r\n\r\naGVsbG8=\r\n"));
	assert_non_null(strstr(b.data, "Content-Type: multipart/alternative;"));
	/* the subject: encoded-words that decode, concatenated, to the original */
	const char *s = strstr(b.data, "Subject: ");
	assert_non_null(s);
	char dec[512] = "";
	size_t dl = 0;
	for (const char *w = s; (w = strstr(w, "=?UTF-8?B?")) && w < strstr(s, "Message-ID:");) {
		w += 10;
		const char *e = strstr(w, "?=");
		dl += unb64(w, (size_t)(e - w), (unsigned char *)dec + dl);
		w = e + 2;
	}
	dec[dl] = '\0';
	assert_string_equal(dec, subject);
	/* the plain text is CRLF-canonical: "line 1\r\nline 2\r\n" */
	assert_non_null(strstr(b.data, "bGluZSAxDQpsaW5lIDINCg==\r\n"));
	/* the binary attachment: 76-column lines that decode to the bytes */
	const char *p = strstr(b.data, "filename*=");
	p = strstr(p, "\r\n\r\n") + 4;
	unsigned char got[1100];
	size_t gl = 0;
	while (strncmp(p, "--", 2)) {
		const char *nl = strstr(p, "\r\n");
		assert_true(nl - p <= 76);
		gl += unb64(p, (size_t)(nl - p), got + gl);
		p = nl + 2;
	}
	assert_int_equal(gl, sizeof bin);
	assert_memory_equal(got, bin, sizeof bin);
	buf_release(&b);

	/* header injection and missing files */
	char err[256];
	struct buf x;
	buf_init(&x, 0);
	m.subject = "hi\r\nBcc: evil@x";
	assert_int_equal(mail_build(&m, &x, err, sizeof err), -1);
	assert_int_equal(errno, EINVAL);
	m.subject = "ok";
	struct mail_attachment bad = { "/nonexistent/x.pdf", NULL, NULL };
	m.att = &bad;
	m.natt = 1;
	buf_reset(&x);
	assert_int_equal(mail_build(&m, &x, err, sizeof err), -1);
	assert_int_equal(errno, ENOENT);
	buf_release(&x);
	rm_rf(dir);
	free(dir);
	free(f1);
	free(f2);
}

static struct outbox_msg msg(const char *key, int64_t created, const char *body)
{
	struct outbox_msg m = { 0 };
	m.kind = xstrdup("webhook");
	m.key = xstrdup(key);
	m.created_us = created;
	m.attempts = 1;
	m.last_error = xstrdup("HTTP 503\nsecond line");
	m.body = xstrdup(body);
	m.body_len = strlen(body);
	return m;
}

static void test_outbox(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char err[256];
	int existed;
	struct outbox_msg b = msg("b", 2000, "{\"b\":2}"), a = msg("a", 1000, "{\"a\":1}"), a2 = msg("a", 3000, "x");
	assert_int_equal(outbox_put(dir, &b, &existed), 0);
	assert_int_equal(existed, 0);
	assert_int_equal(outbox_put(dir, &a, &existed), 0);
	assert_int_equal(outbox_put(dir, &a2, &existed), 0);
	assert_int_equal(existed, 1);
	assert_string_equal(a2.name, a.name);
	/* a temporary file of a writer that died is not a message */
	char *tmp = xasprintf("%s/%s.tmp.123", dir, a.name);
	FILE *f = fopen(tmp, "w");
	fputs("junk", f);
	fclose(f);
	char **names;
	size_t n;
	assert_int_equal(outbox_list(dir, &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], a.name); /* oldest first */
	assert_string_equal(names[1], b.name);
	struct outbox_msg r;
	assert_int_equal(outbox_load(dir, names[0], &r, err, sizeof err), 0);
	assert_string_equal(r.key, "a");
	assert_string_equal(r.kind, "webhook");
	assert_string_equal(r.body, "{\"a\":1}");
	assert_string_equal(r.last_error, "HTTP 503 second line");
	assert_int_equal(r.created_us, 1000);
	assert_int_equal(outbox_find_key(dir, "a", NULL), 1);
	assert_int_equal(outbox_find_key(dir, "zz", NULL), 0);
	outbox_msg_free(&r);
	/* a truncated file is corrupt */
	char *path = xasprintf("%s/%s", dir, names[1]);
	assert_int_equal(truncate(path, 40), 0);
	assert_int_equal(outbox_load(dir, names[1], &r, err, sizeof err), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(outbox_bury(dir, names[1]), 0);
	char *deadp = xasprintf("%s/dead/%s", dir, names[1]);
	assert_int_equal(access(deadp, F_OK), 0);
	assert_int_equal(outbox_remove(dir, names[0]), 0);
	outbox_names_free(names, n);
	assert_int_equal(outbox_list(dir, &names, &n), 0);
	assert_int_equal(n, 0);
	outbox_names_free(names, n);
	/* bad keys and header values are refused */
	struct outbox_msg bad = msg("has space", 1, "x");
	assert_int_equal(outbox_put(dir, &bad, NULL), -1);
	assert_int_equal(errno, EINVAL);
	outbox_msg_free(&bad);
	for (struct outbox_msg *m2 = &a; m2; m2 = m2 == &a ? &b : m2 == &b ? &a2 : NULL)
		outbox_msg_free(m2);
	rm_rf(dir);
	free(dir);
	free(tmp);
	free(path);
	free(deadp);
}

static void test_exit_merge(void **state)
{
	(void)state;
	assert_int_equal(dlv_exit_merge(EXIT_OK, EXIT_UNAVAILABLE), EXIT_UNAVAILABLE);
	assert_int_equal(dlv_exit_merge(EXIT_UNAVAILABLE, EXIT_DATAERR), EXIT_DATAERR);
	assert_int_equal(dlv_exit_merge(EXIT_DATAERR, EXIT_NOPERM), EXIT_NOPERM);
	assert_int_equal(dlv_exit_merge(EXIT_NOPERM, EXIT_IOERR), EXIT_IOERR);
	assert_int_equal(dlv_exit_merge(EXIT_IOERR, EXIT_UNAVAILABLE), EXIT_IOERR);
	assert_int_equal(dlv_exit_merge(EXIT_NOPERM, EXIT_OK), EXIT_NOPERM);
	assert_int_equal(dlv_exit_code(DLV_TEMPFAIL), EXIT_UNAVAILABLE);
	assert_int_equal(dlv_exit_code(DLV_AUTH), EXIT_NOPERM);
	assert_int_equal(dlv_exit_code(DLV_REJECTED), EXIT_DATAERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_vectors), cmocka_unit_test(test_content_types),
		cmocka_unit_test(test_addresses),    cmocka_unit_test(test_mail_build),
		cmocka_unit_test(test_outbox),       cmocka_unit_test(test_exit_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
