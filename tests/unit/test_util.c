/* tests/unit/test_util.c - lib/util: memory seam, strbuf, durations, flags, logger. */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/flag.h"
#include "util/float.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"
#include "util/utf8.h"

static void
test_mem_fail_injection(void **state)
{
	void *p;

	(void)state;
	mem_fail_after(1);
	p = mem_try_alloc(16);
	assert_non_null(p);
	mem_free(p);
	assert_null(mem_try_alloc(16));
	p = mem_try_alloc(16);	/* injection is one-shot */
	assert_non_null(p);
	mem_free(p);
	mem_fail_after(-1);
}

static void
test_strbuf(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;
	size_t len, i;

	(void)state;
	assert_string_equal(strbuf_cstr(&sb), "");
	strbuf_puts(&sb, "abc");
	strbuf_putc(&sb, '-');
	strbuf_printf(&sb, "%d/%s", 42, "x");
	assert_string_equal(strbuf_cstr(&sb), "abc-42/x");
	for (i = 0; i < 1000; i++)
		strbuf_printf(&sb, "%0100d", 7);
	assert_int_equal(sb.len, 8 + 100000);
	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
	strbuf_append(&sb, "a\0b", 3);
	s = strbuf_detach(&sb, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "a\0b", 3);
	assert_null(sb.buf);
	mem_free(s);
	strbuf_free(&sb);
}

static void
test_duration_parse(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;
		bool ok;
	} cases[] = {
		{ "0", 0, true },
		{ "0s", 0, true },
		{ "1ms", 1, true },
		{ "15s", 15000, true },
		{ "1m30s", 90000, true },
		{ "5m", 300000, true },
		{ "2h", 7200000, true },
		{ "1d", 86400000, true },
		{ "1w", 604800000, true },
		{ "1y", 31536000000, true },
		{ "1y2w3d4h5m6s7ms", 31536000000 + 2 * 604800000 + 3 * 86400000 + 4 * 3600000 + 5 * 60000 + 6000 + 7, true },
		{ "10m5ms", 600005, true },
		{ "", 0, false },
		{ "s", 0, false },
		{ "5", 0, false },
		{ "1.5s", 0, false },
		{ "-1s", 0, false },
		{ "1s1m", 0, false },
		{ "1m1m", 0, false },
		{ "1x", 0, false },
		{ " 1s", 0, false },
		{ "99999999999999999999y", 0, false },
		{ "300000000y", 0, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -1;
		char err[128] = "";
		int rc = time_parse_duration(cases[i].in, strlen(cases[i].in), &ms, err, sizeof(err));

		if (cases[i].ok) {
			assert_int_equal(rc, 0);
			assert_int_equal(ms, cases[i].ms);
		} else {
			assert_int_equal(rc, -1);
			assert_true(err[0] != '\0');
		}
	}
}

static void
test_duration_format(void **state)
{
	static const struct {
		int64_t ms;
		const char *out;
	} cases[] = {
		{ 0, "0s" },
		{ 1, "1ms" },
		{ 15000, "15s" },
		{ 90000, "1m30s" },
		{ 3600000, "1h" },
		{ 86400000, "1d" },
		{ 604800000, "1w" },
		{ 90LL * 86400000, "90d" },	/* not 12w6d */
		{ 31536000000, "1y" },
		{ 86400000 + 1, "1d1ms" },
	};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(time_format_duration(cases[i].ms, buf, sizeof(buf)), cases[i].out);
}

static void
test_rfc3339(void **state)
{
	char buf[40];

	(void)state;
	assert_string_equal(time_format_rfc3339(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
	assert_string_equal(time_format_rfc3339(1700000000123, buf, sizeof(buf)), "2023-11-14T22:13:20.123Z");
	assert_string_equal(time_format_rfc3339(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
	assert_string_equal(time_format_go(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
	assert_string_equal(time_format_go(1700000000120, buf, sizeof(buf)), "2023-11-14T22:13:20.12Z");
	assert_string_equal(time_format_go(1700000000100, buf, sizeof(buf)), "2023-11-14T22:13:20.1Z");
	assert_string_equal(time_format_go(1700000000001, buf, sizeof(buf)), "2023-11-14T22:13:20.001Z");
}

static struct flag test_flag_table[] = {
	{ "config.file", FLAG_STRING, "prometheus.yml", "config", NULL, false },
	{ "web.enable-lifecycle", FLAG_BOOL, "false", "lifecycle", NULL, false },
	{ "query.lookback-delta", FLAG_DURATION, "5m", "lookback", NULL, false },
	{ "query.max-samples", FLAG_INT, "50000000", "samples", NULL, false },
	{ "storage.tsdb.retention.size", FLAG_BYTES, "0B", "size", NULL, false },
};
#define NFLAGS (sizeof(test_flag_table) / sizeof(test_flag_table[0]))

static int
parse_flags(int argc, char **argv, char *err, size_t errlen)
{
	size_t nargs;

	flag_free(test_flag_table, NFLAGS);
	return flag_parse(test_flag_table, NFLAGS, argc, argv, NULL, 0, &nargs, err, errlen);
}

static void
test_flags(void **state)
{
	char err[256];
	char *a1[] = { "p", "--config.file=x.yml", "--web.enable-lifecycle",
		"--query.lookback-delta", "1m", "--query.max-samples=7",
		"--storage.tsdb.retention.size=2GB", NULL };
	char *a2[] = { "p", "--no-web.enable-lifecycle", NULL };
	char *a3[] = { "p", "--bogus", NULL };
	char *a4[] = { "p", "--query.lookback-delta=5x", NULL };
	char *a5[] = { "p", "--config.file", NULL };
	char *a6[] = { "p", "positional", NULL };
	char *a7[] = { "p", "--version", NULL };
	char *a8[] = { "p", "--query.max-samples=1e3", NULL };
	char *a9[] = { "p", "--web.enable-lifecycle=maybe", NULL };

	(void)state;
	assert_int_equal(parse_flags(7, a1, err, sizeof(err)), FLAG_OK);
	assert_string_equal(flag_str(test_flag_table, NFLAGS, "config.file"), "x.yml");
	assert_true(flag_bool(test_flag_table, NFLAGS, "web.enable-lifecycle"));
	assert_int_equal(flag_duration_ms(test_flag_table, NFLAGS, "query.lookback-delta"), 60000);
	assert_int_equal(flag_int(test_flag_table, NFLAGS, "query.max-samples"), 7);
	assert_int_equal(flag_bytes(test_flag_table, NFLAGS, "storage.tsdb.retention.size"), 2LL << 30);

	assert_int_equal(parse_flags(2, a2, err, sizeof(err)), FLAG_OK);
	assert_false(flag_bool(test_flag_table, NFLAGS, "web.enable-lifecycle"));
	assert_string_equal(flag_str(test_flag_table, NFLAGS, "config.file"), "prometheus.yml");

	assert_int_equal(parse_flags(2, a3, err, sizeof(err)), FLAG_ERROR);
	assert_string_equal(err, "unknown long flag '--bogus'");
	assert_int_equal(parse_flags(2, a4, err, sizeof(err)), FLAG_ERROR);
	assert_non_null(strstr(err, "query.lookback-delta"));
	assert_int_equal(parse_flags(2, a5, err, sizeof(err)), FLAG_ERROR);
	assert_non_null(strstr(err, "expected argument"));
	assert_int_equal(parse_flags(2, a6, err, sizeof(err)), FLAG_ERROR);
	assert_int_equal(parse_flags(2, a7, err, sizeof(err)), FLAG_VERSION);
	assert_int_equal(parse_flags(2, a8, err, sizeof(err)), FLAG_ERROR);
	assert_int_equal(parse_flags(2, a9, err, sizeof(err)), FLAG_ERROR);
	flag_free(test_flag_table, NFLAGS);
}

static void
test_bytes(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(flag_parse_bytes("0B", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(flag_parse_bytes("512MB", &v), 0);
	assert_int_equal(v, 512LL << 20);
	assert_int_equal(flag_parse_bytes("1KB", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(flag_parse_bytes("1", &v), -1);
	assert_int_equal(flag_parse_bytes("-1GB", &v), -1);
	assert_int_equal(flag_parse_bytes("9999999999EB", &v), -1);
}

static void
test_log_setup(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(log_setup("debug", "json", err, sizeof(err)), 0);
	assert_true(log_enabled(LOG_DEBUG));
	assert_int_equal(log_setup("loud", "logfmt", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "loud"));
	assert_int_equal(log_setup("info", "xml", err, sizeof(err)), -1);
	assert_int_equal(log_setup("warn", "logfmt", err, sizeof(err)), 0);
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_ERROR));
}

static void
test_float_format(void **state)
{
	static const struct {
		double v;
		char fmt;
		const char *want;
	} cases[] = {
		{ 1e6, 'g', "1e+06" }, { 123456789, 'g', "1.23456789e+08" }, { 999999, 'g', "999999" },
		{ 0.0001, 'g', "0.0001" }, { 0.00001, 'g', "1e-05" }, { 1.5, 'g', "1.5" },
		{ 1.0 / 3, 'g', "0.3333333333333333" }, { 5e-324, 'g', "5e-324" },
		{ 1e100, 'g', "1e+100" }, { -2.5e-7, 'g', "-2.5e-07" }, { 0, 'g', "0" },
		{ -0.0, 'g', "-0" }, { 1e21, 'f', "1000000000000000000000" }, { 0.1, 'f', "0.1" },
		{ 1e-7, 'f', "0.0000001" }, { -0.0, 'f', "-0" }, { 0, 'e', "0e+00" },
		{ 1e-7, 'e', "1e-07" }, { 1.7976931348623157e308, 'e', "1.7976931348623157e+308" },
		{ 123.456, 'e', "1.23456e+02" }, { 1e15, 'f', "1000000000000000" },
		{ 9007199254740993.0, 'f', "9007199254740992" },
	};
	struct strbuf sb = STRBUF_INIT;
	char buf[FLOAT_FMT_MAX], digs[24];
	size_t i;
	unsigned seed = 12345;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		strbuf_reset(&sb);
		float_format(&sb, cases[i].v, cases[i].fmt);
		assert_string_equal(strbuf_cstr(&sb), cases[i].want);
	}
	strbuf_reset(&sb);
	float_format(&sb, NAN, 'f');
	float_format(&sb, INFINITY, 'g');
	float_format(&sb, -INFINITY, 'e');
	assert_string_equal(strbuf_cstr(&sb), "NaN+Inf-Inf");
	/* Random bit patterns: every finite value reads back, and one digit
	 * fewer never does (the digits are the shortest). */
	for (i = 0; i < 20000; i++) {
		uint64_t bits = 0;
		double v, back;
		int nd, dp, k;
		char shorter[48];

		for (k = 0; k < 4; k++) {
			seed = seed * 1103515245u + 12345u;
			bits = bits << 16 | (seed >> 8 & 0xffff);
		}
		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v) || v == 0)
			continue;
		float_format_buf(v, 'g', buf);
		back = strtod(buf, NULL);
		assert_true(memcmp(&back, &v, sizeof(v)) == 0);
		nd = float_shortest(fabs(v), digs, &dp);
		if (nd > 1) {
			snprintf(shorter, sizeof(shorter), "%.*e", nd - 2, fabs(v));
			assert_true(strtod(shorter, NULL) != fabs(v));
		}
	}
	strbuf_free(&sb);
}

static void
test_utf8_decode_rune(void **state)
{
	static const struct {
		const char *s;
		size_t len, w;
		long r;
	} cases[] = {
		{ "a", 1, 1, 'a' },
		{ "\xc3\xa9", 2, 2, 0xe9 },
		{ "\xe2\x82\xac", 3, 3, 0x20ac },
		{ "\xf0\x9f\x98\x80", 4, 4, 0x1f600 },
		{ "\xc3", 1, 1, -1 },			/* truncated */
		{ "\xc0\xaf", 2, 1, -1 },		/* overlong */
		{ "\xe0\x80\xaf", 3, 1, -1 },		/* overlong */
		{ "\xed\xa0\x80", 3, 1, -1 },		/* surrogate */
		{ "\xf4\x90\x80\x80", 4, 1, -1 },	/* past U+10FFFF */
		{ "\xe2\x28\xa1", 3, 1, -1 },		/* bad continuation */
		{ "\x80", 1, 1, -1 },
	};
	size_t i;
	long r;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(utf8_decode_rune((const unsigned char *)cases[i].s,
		    cases[i].len, &r), cases[i].w);
		assert_int_equal(r, cases[i].r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_fail_injection),
		cmocka_unit_test(test_strbuf),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_float_format),
		cmocka_unit_test(test_utf8_decode_rune),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_log_setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
