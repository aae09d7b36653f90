/*
 * test_lib.c - config loader, number parsing, CRC-32C, buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfg.h"
#include "config.h"
#include "secmem.h"
#include "crc32c.h"
#include "e164.h"
#include "json.h"
#include "md5key.h"
#include "strparse.h"
#include "xalloc.h"

static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	char big[1000];
	for (int i = 0; i < 1000; i++)
		big[i] = (char)(i * 31);
	for (size_t off = 0; off < 9; off++)
		for (size_t n = 0; n + off <= sizeof big; n += 7) /* past 192: the three-lane path */
			assert_int_equal(crc32c(0, big + off, n), crc32c_sw(0, big + off, n));
	/* incremental == one shot */
	assert_int_equal(crc32c(crc32c(0, big, 300), big + 300, 700), crc32c(0, big, 1000));
}

static void test_strparse(void **state)
{
	(void)state;
	char err[128];
	int64_t i;
	uint64_t u;
	int b;
	assert_int_equal(parse_int_range("5038", 1, 65535, &i, err, sizeof err), 0);
	assert_int_equal(i, 5038);
	assert_int_equal(parse_int_range("0", 1, 65535, &i, err, sizeof err), -1);
	assert_string_equal(err, "must be between 1 and 65535");
	assert_int_equal(parse_int_range("12x", 1, 65535, &i, err, sizeof err), -1);
	assert_int_equal(parse_int_range("", 1, 65535, &i, err, sizeof err), -1);
	assert_int_equal(parse_int_range(" 1", 1, 65535, &i, err, sizeof err), -1);
	assert_int_equal(parse_size("64MiB", 0, UINT64_MAX, &u, err, sizeof err), 0);
	assert_int_equal(u, 64u << 20);
	assert_int_equal(parse_size("4096", 0, UINT64_MAX, &u, err, sizeof err), 0);
	assert_int_equal(u, 4096);
	assert_int_equal(parse_size("1.5k", 0, UINT64_MAX, &u, err, sizeof err), 0);
	assert_int_equal(u, 1536);
	assert_int_equal(parse_size("3 parsecs", 0, UINT64_MAX, &u, err, sizeof err), -1);
	assert_int_equal(parse_size("-1", 0, UINT64_MAX, &u, err, sizeof err), -1);
	assert_int_equal(parse_duration_ms("250ms", 0, UINT64_MAX, &u, err, sizeof err), 0);
	assert_int_equal(u, 250);
	assert_int_equal(parse_duration_ms("2m", 0, UINT64_MAX, &u, err, sizeof err), 0);
	assert_int_equal(u, 120000);
	assert_int_equal(parse_duration_ms("5", 0, UINT64_MAX, &u, err, sizeof err), 0);
	assert_int_equal(u, 5000);
	assert_int_equal(parse_duration_ms("1h", 0, 1000, &u, err, sizeof err), -1);
	assert_int_equal(parse_bool("Yes", &b, err, sizeof err), 0);
	assert_true(b);
	assert_int_equal(parse_bool("off", &b, err, sizeof err), 0);
	assert_false(b);
	assert_int_equal(parse_bool("maybe", &b, err, sizeof err), -1);
}

static void test_json_string(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	static const char in[] = "a\"b\\c\n\r\t\x01\x7f \xc3\xa9";
	assert_int_equal(json_string(&b, in, sizeof in - 1), 0);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f \xc3\xa9\"");
	buf_reset(&b);
	assert_int_equal(json_string(&b, "", 0), 0);
	assert_string_equal(b.data, "\"\"");
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	assert_non_null(f);
	assert_int_equal(json_fput_string(f, in), 0);
	assert_int_equal(fclose(f), 0);
	buf_reset(&b);
	json_string(&b, in, sizeof in - 1);
	assert_string_equal(mem, b.data); /* both writers: the same bytes */
	free(mem);
	buf_release(&b);
}

static void test_buf_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_puts(&b, "hello"), 0);
	assert_int_equal(buf_puts(&b, "world"), 0);
	assert_int_equal(buf_puts(&b, "!"), -1); /* over the cap: unchanged */
	assert_string_equal(b.data, "helloworld");
	buf_consume(&b, 5);
	assert_string_equal(b.data, "world");
	assert_int_equal(buf_printf(&b, "%d", 12345), 0);
	assert_string_equal(b.data, "world12345");
	size_t len;
	char *p = buf_detach(&b, &len);
	assert_int_equal(len, 10);
	assert_string_equal(p, "world12345");
	free(p);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static int load(struct collector_config *cfg, const char *yaml, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof *cfg);
	return cfg_load_string(collector_keys, cfg, "test.yaml", yaml, strlen(yaml), err, errlen);
}

static void test_cfg_good(void **state)
{
	(void)state;
	struct collector_config cfg;
	char err[512];
	const char *yaml = "spool: /tmp/x\n"
			   "collector:\n"
			   "  fsync: interval\n"
			   "  fsync_interval: 250ms\n"
			   "  segment_max_size: 1MiB\n"
			   "  nodes:\n"
			   "    - name: pbx1\n"
			   "      host: 10.0.0.1\n"
			   "      username: collector\n"
			   "      port: 5039\n"
			   "      tls: yes\n"
			   "    - name: pbx2\n"
			   "      username: c2\n"
			   "      secret: hunter2\n"
			   "cdr:\n"
			   "  unanswered: yes\n";
	assert_int_equal(load(&cfg, yaml, err, sizeof err), 0);
	assert_string_equal(cfg.spool, "/tmp/x");
	assert_int_equal(cfg.fsync, 1);
	assert_int_equal(cfg.fsync_interval_ms, 250);
	assert_int_equal(cfg.segment_max_size, 1 << 20);
	assert_int_equal(cfg.buffer_size, 4 << 20); /* default */
	assert_int_equal(cfg.nnodes, 2);
	assert_string_equal(cfg.nodes[0].host, "10.0.0.1");
	assert_int_equal(cfg.nodes[0].port, 5039);
	assert_true(cfg.nodes[0].tls);
	assert_true(cfg.nodes[0].tls_verify);
	assert_string_equal(cfg.nodes[1].host, "127.0.0.1");
	assert_int_equal(cfg.nodes[1].port, 5038);
	assert_string_equal(cfg.nodes[1].secret_env, "CDRFLOW_AMI_SECRET");
	/* --dump-config never shows the secret */
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	cfg_dump(collector_keys, &cfg, f);
	fclose(f);
	assert_null(strstr(out, "hunter2"));
	assert_non_null(strstr(out, "secret: \"********\""));
	assert_non_null(strstr(out, "fsync: interval"));
	free(out);
	collector_config_free(&cfg);
}

static void expect_error(const char *yaml, const char *want)
{
	struct collector_config cfg;
	char err[512];
	assert_int_equal(load(&cfg, yaml, err, sizeof err), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	collector_config_free(&cfg);
}

static void test_cfg_errors(void **state)
{
	(void)state;
	expect_error("spool: /x\nsppol: /y\n", "test.yaml:2:1: unknown key \"sppol\"");
	expect_error("collector:\n  fsync: sometimes\n", "test.yaml:2:10: collector.fsync: \"sometimes\" must be one of always, interval, off");
	expect_error("collector:\n  nodes:\n    - name: a\n      username: u\n      port: 70000\n",
		     "test.yaml:5:13: collector.nodes[0].port: \"70000\" must be between 1 and 65535");
	expect_error("collector:\n  nodes:\n    - name: a\n      usernme: u\n", "test.yaml:4:7: unknown key \"collector.nodes[0].usernme\"");
	expect_error("collector:\n  nodes:\n    - host: h\n      username: u\n", "collector.nodes[0].name is required");
	expect_error("collector: [1, 2\n", "test.yaml:");
	expect_error("collector:\n  nodes:\n    - name: a\n      username: u\n      secret: [x]\n", "collector.nodes[0].secret must be a single value");
	expect_error("collector:\n  buffer_size: 12 bananas\n", "collector.buffer_size: \"12 bananas\" has an unknown size unit");
	expect_error("spool: /x\n---\nspool: /y\n", "more than one YAML document");
	{
		struct collector_config ok;
		char e[256];
		assert_int_equal(load(&ok, "spool: /x\n---\n", e, sizeof e), 0); /* trailing marker is fine */
		collector_config_free(&ok);
	}
	expect_error("collector:\n  fsync: off\ncollector:\n  fsync: off\n", "test.yaml:3:1: duplicate key \"collector\"");
}

/* cfg_bind on a table of its own: lists of scalars, numbers, custom
 * hooks (always called, even when absent), both message styles */
struct bound {
	char **tags;
	size_t ntags;
	char **one; /* CFG_ONE_OR_LIST, NULL-terminated, no count */
	double rate;
	int64_t n;
	int kind;
	int hook_calls;
	char hook_seen[64];
};

static int count_hook(struct cfg_doc *d, const struct cfg_key *k, void *obj, struct yaml_node_s *v, const char *where)
{
	(void)k;
	struct bound *b = obj;
	b->hook_calls++;
	snprintf(b->hook_seen, sizeof b->hook_seen, "%s=%s", where, v ? (cfg_scalar(v) ? cfg_scalar(v) : "?") : "absent");
	if (v && cfg_scalar(v) && !strcmp(cfg_scalar(v), "bad"))
		return cfg_fail(d, v, "%s: the hook refuses it", where);
	return 0;
}

static const struct cfg_hook hook = { count_hook, NULL, NULL, NULL };
static const char *const kinds[] = { "bar", "line", NULL };
#define B(f) offsetof(struct bound, f)
static const struct cfg_key bound_keys[] = {
	{ "tags", CFG_STRLIST, B(tags), NULL, 0, 0, NULL, "", CFG_NONEMPTY, NULL, 0, B(ntags) },
	{ "one", CFG_STRLIST, B(one), NULL, 0, 0, NULL, "", CFG_ONE_OR_LIST, NULL, 0, CFG_NO_COUNT },
	{ "rate", CFG_NUMBER, B(rate), "-1", 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "n", CFG_INT, B(n), "-1", 0, 9, NULL, "", 0, NULL, 0, 0 },
	{ "kind", CFG_ENUM, B(kind), NULL, 0, 0, kinds, "", 0, NULL, 0, 0 },
	{ "hooked", CFG_CUSTOM, 0, NULL, 0, 0, NULL, "", CFG_ALWAYS, &hook, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef B

static int bind_str(const char *yaml, enum cfg_msg_style style, struct bound *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof *b);
	if (cfg_defaults(bound_keys, b, err, errlen) < 0)
		return -1;
	struct cfg_doc *d = cfg_doc_load(NULL, yaml, strlen(yaml), "b.yaml", style, NULL, err, errlen);
	if (!d)
		return -1;
	int rc = cfg_bind(d, bound_keys, b, cfg_doc_root(d), style == CFG_MSG_IN ? "the thing" : "x");
	cfg_doc_free(d);
	return rc;
}

static void expect_bind_error(const char *yaml, enum cfg_msg_style style, const char *want)
{
	struct bound b;
	char err[512] = "";
	assert_int_equal(bind_str(yaml, style, &b, err, sizeof err), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	cfg_free(bound_keys, &b);
}

static void test_cfg_bind(void **state)
{
	(void)state;
	struct bound b;
	char err[512];
	/* defaults may be sentinels outside the range; the hook runs when absent */
	assert_int_equal(bind_str("tags: [a, b]\n", CFG_MSG_PATH, &b, err, sizeof err), 0);
	assert_int_equal(b.ntags, 2);
	assert_string_equal(b.tags[1], "b");
	assert_null(b.tags[2]);
	assert_true(b.rate < 0 && b.n == -1);
	assert_int_equal(b.hook_calls, 1);
	assert_string_equal(b.hook_seen, "x.hooked=absent");
	cfg_free(bound_keys, &b);
	assert_null(b.tags);
	assert_int_equal(b.ntags, 0);
	/* one value for a list of one; a number; the hook gets the value */
	assert_int_equal(bind_str("one: solo\nrate: 2.5\nn: 9\nkind: line\nhooked: fine\n", CFG_MSG_IN, &b, err, sizeof err),
			 0);
	assert_string_equal(b.one[0], "solo");
	assert_null(b.one[1]);
	assert_true(b.rate == 2.5 && b.n == 9 && b.kind == 1);
	assert_string_equal(b.hook_seen, "the thing.hooked=fine");
	cfg_free(bound_keys, &b);
	/* the two message styles */
	expect_bind_error("tags: [a, \"\"]\n", CFG_MSG_PATH, "b.yaml:1:11: x.tags: every item must be a non-empty single value");
	expect_bind_error("tags: a\n", CFG_MSG_PATH, "b.yaml:1:7: x.tags must be a list");
	expect_bind_error("rate: 0\n", CFG_MSG_PATH, "b.yaml:1:7: x.rate: \"0\" must be a number above 0");
	expect_bind_error("n: 10\n", CFG_MSG_PATH, "x.n: \"10\"");
	expect_bind_error("n: 10\n", CFG_MSG_IN, "b.yaml:1:4: the thing.n must be 0..9");
	expect_bind_error("kind: pie\n", CFG_MSG_IN, "the thing.kind must be one of bar, line");
	expect_bind_error("kind: pie\n", CFG_MSG_PATH, "x.kind: \"pie\" must be one of bar, line");
	expect_bind_error("colour: red\n", CFG_MSG_PATH, "b.yaml:1:1: unknown key \"x.colour\"");
	expect_bind_error("colour: red\n", CFG_MSG_IN,
			  "unknown key \"colour\" in the thing (known: tags, one, rate, n, kind, hooked)");
	expect_bind_error("n: 1\nn: 2\n", CFG_MSG_IN, "b.yaml:2:1: duplicate key \"n\" in the thing");
	expect_bind_error("n: 1\nn: 2\n", CFG_MSG_PATH, "b.yaml:2:1: duplicate key \"x.n\"");
	expect_bind_error("one: [[a]]\n", CFG_MSG_IN, "the thing.one[0] must be a single value");
	expect_bind_error("hooked: bad\n", CFG_MSG_PATH, "b.yaml:1:9: x.hooked: the hook refuses it");
	expect_bind_error("[1, 2]\n", CFG_MSG_IN, "b.yaml:1:1: the thing must be a mapping");
	expect_bind_error("a: [1\n", CFG_MSG_PATH, "b.yaml:2:1: ");
}

static void test_cfg_env_override(void **state)
{
	(void)state;
	struct collector_config cfg;
	char err[512];
	setenv("CDRFLOW_COLLECTOR_FSYNC", "off", 1);
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(cfg_load(collector_keys, &cfg, NULL, NULL, err, sizeof err), 0);
	assert_int_equal(cfg.fsync, 2);
	collector_config_free(&cfg);
	setenv("CDRFLOW_COLLECTOR_FSYNC", "never", 1);
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(cfg_load(collector_keys, &cfg, NULL, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "CDRFLOW_COLLECTOR_FSYNC"));
	collector_config_free(&cfg);
	unsetenv("CDRFLOW_COLLECTOR_FSYNC");
}

static void test_node_secret_sources(void **state)
{
	(void)state;
	struct collector_config cfg;
	char err[512];
	assert_int_equal(load(&cfg, "collector:\n  nodes:\n    - name: a\n      username: u\n      secret_env: TEST_SECRET_X\n", err, sizeof err), 0);
	unsetenv("TEST_SECRET_X");
	assert_null(node_secret(&cfg.nodes[0], err, sizeof err));
	assert_non_null(strstr(err, "TEST_SECRET_X"));
	setenv("TEST_SECRET_X", "s3cret", 1);
	char *s = node_secret(&cfg.nodes[0], err, sizeof err);
	assert_string_equal(s, "s3cret");
	secmem_free(s);
	/* sealed: the environment string is wiped and unset, the secret still
	 * served from the sealed copy */
	char *envp = getenv("TEST_SECRET_X");
	collector_secrets_seal(&cfg);
	assert_null(getenv("TEST_SECRET_X"));
	assert_int_equal(envp[0], 0);
	s = node_secret(&cfg.nodes[0], err, sizeof err);
	assert_non_null(s);
	assert_string_equal(s, "s3cret");
	secmem_free(s);
	collector_config_free(&cfg);
}

/* The AMI MD5 login key: md5(challenge . secret) in lowercase hex. */
static void test_md5_key(void **state)
{
	(void)state;
	char hex[33];
	assert_int_equal(ami_md5_key("abc", "def", hex), 0);
	assert_string_equal(hex, "e80b5017098950fc58aad83c8c14978e"); /* md5("abcdef") */
	assert_int_equal(ami_md5_key("", "", hex), 0);
	assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
}

/* buf_append's inline fast path and its slow path give the same bytes. */
static void test_buf_append_paths(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, "abc", (size_t)(i % 4)), 0);
	assert_int_equal(b.len, 1500);
	assert_int_equal(b.data[b.len], '\0');
	assert_memory_equal(b.data, "aababc", 6);
	buf_release(&b);
	buf_init(&b, 5);
	assert_int_equal(buf_append(&b, "abcd", 4), 0);
	assert_int_equal(buf_append(&b, "ef", 2), -1); /* the cap, also past the fast path */
	assert_int_equal(b.len, 4);
	assert_int_equal(buf_append(&b, "e", 1), 0);
	assert_string_equal(b.data, "abcde");
	buf_release(&b);
}

static void test_e164_rules(void **state)
{
	(void)state;
	char d[32];
	bool plus;
	assert_int_equal(e164_digits("+44 (20) 7946-0000", d, sizeof d, &plus), 12);
	assert_true(plus);
	assert_string_equal(d, "442079460000");
	assert_int_equal(e164_digits("0207.946", d, sizeof d, &plus), 7);
	assert_false(plus);
	assert_int_equal(e164_digits("*72", d, sizeof d, &plus), -1);
	assert_int_equal(e164_digits("12+3", d, sizeof d, &plus), -1);
	assert_int_equal(e164_digits("alice", d, sizeof d, &plus), -1);
	assert_int_equal(e164_digits("", d, sizeof d, &plus), 0);
	assert_false(e164_length_ok(6));
	assert_true(e164_length_ok(7));
	assert_true(e164_length_ok(15));
	assert_false(e164_length_ok(16));
	char *p = e164_prefix("4420*");
	assert_string_equal(p, "+4420");
	free(p);
	p = e164_prefix("+882");
	assert_string_equal(p, "+882");
	free(p);
	assert_null(e164_prefix("+"));
	assert_null(e164_prefix("44a"));
	assert_null(e164_prefix("1234567890123456"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_e164_rules),
		cmocka_unit_test(test_strparse),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_append_paths),
		cmocka_unit_test(test_md5_key),
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_cfg_good),
		cmocka_unit_test(test_cfg_errors),
		cmocka_unit_test(test_cfg_bind),
		cmocka_unit_test(test_cfg_env_override),
		cmocka_unit_test(test_node_secret_sources),
	};
	return cmocka_run_group_tests_name("lib", tests, NULL, NULL);
}
