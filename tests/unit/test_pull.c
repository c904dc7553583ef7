/* tests/unit/test_pull.c - the strata pull format and /federate's pull mode.
 *
 * The writer and parser round-trip every value bit-exact (staleness
 * markers, other NaNs, -0, infinities) and label values with escapes; cut,
 * garbled and misplaced input is refused with a line:column reason. Over
 * HTTP on 127.0.0.1, /federate with X-Strata-Pull-Since returns every
 * sample of the window from a real head (not only the newest), with the
 * external labels, and a plain request still gets the text exposition.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "api/federate.h"
#include "api/pull.h"
#include "expfmt/pull.h"
#include "http/server.h"
#include "promql/storage.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"

static double
from_bits(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

static uint64_t
bits_of(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

static void
test_round_trip(void **state)
{
	const uint64_t vals[] = {
		CHUNK_STALE_NAN_BITS, UINT64_C(0x7ff8000000000001), UINT64_C(0xfff8000000000000),
		UINT64_C(0x8000000000000000), 0, UINT64_C(0x7ff0000000000000),
		UINT64_C(0xfff0000000000000), UINT64_C(0x3ff0000000000000),
		UINT64_C(0x0000000000000001), UINT64_C(0x7fefffffffffffff),
		UINT64_C(0x3fb999999999999a),
	};
	struct expfmt_label l[2] = {
		{ { "job", 3 }, { "a\"b\\c\nd", 8 } },
		{ { "z", 1 }, { "", 0 } },
	};
	struct strbuf sb = STRBUF_INIT;
	struct pull_parser *p;
	struct pull_entry e;
	int64_t since, until;
	char err[256];
	size_t i, n = sizeof(vals) / sizeof(vals[0]);

	(void)state;
	pull_write_header(&sb, -5, 1700000000000);
	pull_write_series(&sb, "up", l, 2);
	for (i = 0; i < n; i++)
		pull_write_sample(&sb, (int64_t)i * 1000 - 3, from_bits(vals[i]));
	pull_write_series(&sb, "bare", NULL, 0);
	pull_write_sample(&sb, 7, 1.5);
	pull_write_end(&sb);

	p = pull_parser_new(sb.buf, sb.len, &since, &until, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(since, -5);
	assert_int_equal(until, 1700000000000);
	assert_int_equal(pull_next(p, &e), PULL_SERIES);
	assert_int_equal(e.name.len, 2);
	assert_memory_equal(e.name.p, "up", 2);
	assert_int_equal(e.nlabels, 2);
	assert_int_equal(e.labels[0].value.len, 8);
	assert_memory_equal(e.labels[0].value.p, "a\"b\\c\nd", 8);
	assert_int_equal(e.labels[1].value.len, 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(pull_next(p, &e), PULL_SAMPLE);
		assert_int_equal(e.t, (int64_t)i * 1000 - 3);
		assert_true(bits_of(e.v) == vals[i]);
	}
	assert_int_equal(pull_next(p, &e), PULL_SERIES);
	assert_int_equal(e.nlabels, 0);
	assert_int_equal(pull_next(p, &e), PULL_SAMPLE);
	assert_int_equal(pull_next(p, &e), PULL_END);
	assert_int_equal(pull_next(p, &e), PULL_END);
	pull_parser_free(p);
	strbuf_free(&sb);
}

static void
test_bad_bodies(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
		{ "", "not a strata pull body" },
		{ "up 1\n", "not a strata pull body" },
		{ "# strata-pull 1 5 4\n# EOF\n", "bad pull window" },
		{ "# strata-pull 1 0 9\nS up\n1 1\n", "2 0 truncated" },
		{ "# strata-pull 1 0 9\n1 1\n# EOF\n", "2:1: sample before any series" },
		{ "# strata-pull 1 0 9\nS up{a=\"x}\n# EOF\n", "2:11: unterminated label value" },
		{ "# strata-pull 1 0 9\nS up{a=\"x\" b=\"y\"}\n# EOF\n", "expected \",\" or \"}\"" },
		{ "# strata-pull 1 0 9\nS 9up\n# EOF\n", "2:3: expected a metric name" },
		{ "# strata-pull 1 0 9\nS up\nx 1\n# EOF\n", "3:1: expected \"<timestamp> <value>\"" },
		{ "# strata-pull 1 0 9\nS up\n1 one\n# EOF\n", "3:3: bad sample value" },
		{ "# strata-pull 1 0 9\nS up\n1 NaN:7ff000000000000g\n# EOF\n", "bad NaN bits" },
		{ "# strata-pull 1 0 9\nS up\n1 NaN:3ff0000000000000\n# EOF\n", "not a NaN" },
		{ "# strata-pull 1 0 9\n# EOF\nS up\n", "text after \"# EOF\"" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pull_parser *p;
		struct pull_entry e;
		int64_t since, until;
		char err[256] = "";
		const char *got;
		enum pull_kind k;

		p = pull_parser_new(cases[i].body, strlen(cases[i].body), &since, &until, err, sizeof(err));
		if (p == NULL) {
			got = err;
		} else {
			while ((k = pull_next(p, &e)) > 0)
				;
			got = k == PULL_ERROR ? pull_error(p) : "(accepted)";
		}
		print_message("# bad pull body %zu: %s\n", i, got);
		if (strcmp(cases[i].want, "2 0 truncated") == 0)
			assert_non_null(strstr(got, "truncated"));
		else
			assert_non_null(strstr(got, cases[i].want));
		pull_parser_free(p);
	}
}

/* --- over HTTP ---------------------------------------------------------- */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	strbuf_append(arg, ptr, size * nmemb);
	return size * nmemb;
}

static long
get(const char *url, const char *header, struct strbuf *body, char *ctype, size_t ctlen)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	const char *ct = NULL;
	long status = 0;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
	if (header != NULL) {
		h = curl_slist_append(h, header);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(ctype, ctlen, "%s", ct != NULL ? ct : "");
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

static void
test_federate_pull(void **state)
{
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct api_federate *f;
	struct promql_storage st;
	struct http_server *srv;
	struct strbuf body = STRBUF_INIT;
	struct label el = { "site", "x" };
	struct labels *ext = labels_new(&el, 1);
	char err[256], url[256], hdr[64], ct[128];
	struct timespec ts;
	int64_t now, since, until, t;
	size_t i, series = 0, samples = 0, stale = 0;
	struct pull_parser *p;
	struct pull_entry e;
	enum pull_kind k;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000;
	/* 50 series x 40 samples every 1s ending a minute ago; series 7 ends
	 * with a staleness marker. */
	for (i = 0; i < 50; i++) {
		char inst[16];
		struct label l[2] = { { "__name__", "m" }, { "instance", inst } };
		struct labels *ls;
		uint64_t ref = 0;

		snprintf(inst, sizeof(inst), "i%02zu", i);
		ls = labels_new(l, 2);
		for (t = now - 100000; t < now - 60000; t += 1000)
			assert_int_equal(tsdb_head_append(h, &ref, ls, t,
			    i == 7 && t == now - 61000 ? from_bits(CHUNK_STALE_NAN_BITS) : (double)t), 0);
		labels_free(ls);
	}
	promql_storage_head(&st, h);
	f = api_federate_new(h, 5 * 60 * 1000);
	api_federate_set_storage(f, &st);
	api_federate_set_external_labels(f, ext);
	srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(api_federate_route(f, srv), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/federate?match[]=m", http_server_port(srv));

	/* Pull from 90s ago: samples in (now-90000, until]. */
	snprintf(hdr, sizeof(hdr), "%s: %lld", PULL_SINCE_HEADER, (long long)(now - 90000));
	assert_int_equal(get(url, hdr, &body, ct, sizeof(ct)), 200);
	assert_string_equal(ct, PULL_CONTENT_TYPE);
	p = pull_parser_new(body.buf, body.len, &since, &until, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(since, now - 90000);
	assert_true(until >= now - API_PULL_SETTLE_MS && until <= now + 5000);
	while ((k = pull_next(p, &e)) > 0) {
		if (k == PULL_SERIES) {
			series++;
			assert_int_equal(e.nlabels, 2);	/* instance, site */
			continue;
		}
		assert_true(e.t > now - 90000 && e.t < now - 60000);
		if (bits_of(e.v) == CHUNK_STALE_NAN_BITS)
			stale++;
		else
			assert_true(e.v == (double)e.t);
		samples++;
	}
	assert_int_equal(k, PULL_END);
	assert_int_equal(series, 50);
	assert_int_equal(samples, 50 * 29);
	assert_int_equal(stale, 1);
	pull_parser_free(p);

	/* A client asking for at most 10 s gets (since, since + 10 s]. */
	{
		struct curl_slist *hl = NULL;
		CURL *c = curl_easy_init();
		char wh[64];

		strbuf_reset(&body);
		snprintf(hdr, sizeof(hdr), "%s: %lld", PULL_SINCE_HEADER, (long long)(now - 90000));
		snprintf(wh, sizeof(wh), "%s: 10000", PULL_WINDOW_HEADER);
		hl = curl_slist_append(hl, hdr);
		hl = curl_slist_append(hl, wh);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
		assert_int_equal(curl_easy_perform(c), CURLE_OK);
		curl_slist_free_all(hl);
		curl_easy_cleanup(c);
		p = pull_parser_new(body.buf, body.len, &since, &until, err, sizeof(err));
		assert_non_null(p);
		assert_int_equal(until, now - 80000);
		samples = 0;
		while ((k = pull_next(p, &e)) > 0)
			if (k == PULL_SAMPLE) {
				assert_true(e.t > now - 90000 && e.t <= now - 80000);
				samples++;
			}
		assert_int_equal(k, PULL_END);
		assert_int_equal(samples, 50 * 10);
		pull_parser_free(p);
	}

	/* Without the header: the text exposition, where series 7 is stale. */
	strbuf_reset(&body);
	assert_int_equal(get(url, NULL, &body, ct, sizeof(ct)), 200);
	assert_non_null(strstr(ct, "text/plain"));
	assert_null(strstr(body.buf, "instance=\"i07\""));
	assert_non_null(strstr(body.buf, "m{instance=\"i08\",site=\"x\"}"));

	/* A bad cursor is a 400. */
	strbuf_reset(&body);
	snprintf(hdr, sizeof(hdr), "%s: soon", PULL_SINCE_HEADER);
	assert_int_equal(get(url, hdr, &body, ct, sizeof(ct)), 400);

	http_server_free(srv);
	api_federate_free(f);
	labels_free(ext);
	strbuf_free(&body);
	tsdb_head_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_federate_pull),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
