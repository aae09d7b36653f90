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
		for (size_t n = 0; n < 200; n += 7)
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
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_cfg_good),
		cmocka_unit_test(test_cfg_errors),
		cmocka_unit_test(test_cfg_env_override),
		cmocka_unit_test(test_node_secret_sources),
	};
	return cmocka_run_group_tests_name("lib", tests, NULL, NULL);
}
