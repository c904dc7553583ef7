/* tests/unit/test_api.c - lib/api: /federate and /metrics.
 *
 * /federate is checked byte for byte against what Prometheus 2.42 writes for
 * the same head contents (grouping by name, # TYPE untyped, external labels
 * appended only where missing, instance="" added, stale and old series
 * left out, explicit timestamps), then over HTTP with libcurl on 127.0.0.1
 * (status codes, gzip, a streamed body of many series).
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
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "api/federate.h"
#include "api/metrics.h"
#include "http/server.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"

#define MIN (60 * 1000)
#define NOW (INT64_C(1700000000000))

/* add appends one sample to series "name{k=v,...}" given as pairs. */
static void
add(struct tsdb_head *h, int64_t t, double v, ...)
{
	struct label l[16];
	struct labels *ls;
	size_t n = 0;
	va_list ap;
	const char *k;

	va_start(ap, v);
	while ((k = va_arg(ap, const char *)) != NULL && n < 16) {
		l[n].name = k;
		l[n].value = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	ls = labels_new(l, n);
	assert_int_equal(tsdb_head_append(h, NULL, ls, t, v), 0);
	labels_free(ls);
}

static double
stale_nan(void)
{
	uint64_t bits = CHUNK_STALE_NAN_BITS;
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

static struct labels *
ext_labels(const char *name, const char *value)
{
	struct label l = { name, value };

	return labels_new(&l, 1);
}

static void
federate(struct api_federate *f, const char *sel0, const char *sel1,
    struct strbuf *out)
{
	const char *sel[2] = { sel0, sel1 };
	char err[256];

	strbuf_reset(out);
	assert_int_equal(api_federate_write(f, sel, sel1 != NULL ? 2 : 1, NOW, out,
	    err, sizeof(err)), 0);
}

static void
test_federate_body(void **state)
{
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct api_federate *f = api_federate_new(h, 5 * MIN);
	struct strbuf out = STRBUF_INIT;
	struct labels *ext = ext_labels("replica", "a");

	(void)state;
	add(h, NOW - 2 * MIN, 1, "__name__", "b_total", "job", "x", (char *)NULL);
	add(h, NOW - 1 * MIN, 2.5, "__name__", "b_total", "job", "x", (char *)NULL);
	add(h, NOW - 1 * MIN, 1e6, "__name__", "a", "job", "y", "instance", "h:1", (char *)NULL);
	add(h, NOW - 1 * MIN, -INFINITY, "__name__", "a", "job", "x", "replica", "own", (char *)NULL);
	add(h, NOW - 10 * MIN, 7, "__name__", "old", "job", "x", (char *)NULL);
	add(h, NOW - 2 * MIN, 3, "__name__", "gone", "job", "x", (char *)NULL);
	add(h, NOW - 1 * MIN, stale_nan(), "__name__", "gone", "job", "x", (char *)NULL);
	add(h, NOW - 1 * MIN, NAN, "__name__", "c", "Zone", "z", (char *)NULL);
	api_federate_set_external_labels(f, ext);

	federate(f, "{job=~\".+\"}", NULL, &out);
	assert_string_equal(strbuf_cstr(&out),
	    "# TYPE a untyped\n"
	    "a{instance=\"h:1\",job=\"y\",replica=\"a\"} 1e+06 1699999940000\n"
	    "a{job=\"x\",replica=\"own\",instance=\"\"} -Inf 1699999940000\n"
	    "# TYPE b_total untyped\n"
	    "b_total{job=\"x\",instance=\"\",replica=\"a\"} 2.5 1699999940000\n");

	/* Label names before __name__ (upper case) still group by name;
	 * overlapping selectors give each series once. */
	federate(f, "{__name__=~\"a|c\"}", "{job=\"y\"}", &out);
	assert_string_equal(strbuf_cstr(&out),
	    "# TYPE a untyped\n"
	    "a{instance=\"h:1\",job=\"y\",replica=\"a\"} 1e+06 1699999940000\n"
	    "a{job=\"x\",replica=\"own\",instance=\"\"} -Inf 1699999940000\n"
	    "# TYPE c untyped\n"
	    "c{Zone=\"z\",instance=\"\",replica=\"a\"} NaN 1699999940000\n");

	/* "{}" parses and selects nothing, as in Prometheus. */
	federate(f, "{}", NULL, &out);
	assert_string_equal(strbuf_cstr(&out), "");

	labels_free(ext);
	strbuf_free(&out);
	api_federate_free(f);
	tsdb_head_free(h);
}

static void
test_federate_future_and_errors(void **state)
{
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct api_federate *f = api_federate_new(h, 5 * MIN);
	struct strbuf out = STRBUF_INIT;
	const char *bad[] = { "up{", "{job=\"a\"", "foo{a=~\"(\"}" };
	char err[256];
	size_t i;

	(void)state;
	add(h, NOW - 1 * MIN, 1, "__name__", "up", (char *)NULL);
	add(h, NOW + 1 * MIN, 2, "__name__", "up", (char *)NULL);
	add(h, NOW + 1 * MIN, 3, "__name__", "future_only", (char *)NULL);
	federate(f, "{__name__=~\".+\"}", NULL, &out);
	assert_string_equal(strbuf_cstr(&out),
	    "# TYPE up untyped\n"
	    "up{instance=\"\"} 1 1699999940000\n");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(api_federate_write(f, &bad[i], 1, NOW, &out, err, sizeof(err)), -1);
		assert_true(strstr(err, "parse error") != NULL || strstr(err, "error parsing regexp") != NULL);
		print_message("# bad selector %s: %s\n", bad[i], err);
	}
	strbuf_free(&out);
	api_federate_free(f);
	tsdb_head_free(h);
}

/* --- over HTTP ---------------------------------------------------------- */

struct fetch {
	long status;
	struct strbuf body;
	char encoding[64];
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	strbuf_append(&((struct fetch *)arg)->body, p, size * n);
	return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *fe = arg;

	if (strncasecmp(p, "Content-Encoding:", 17) == 0)
		snprintf(fe->encoding, sizeof(fe->encoding), "%.*s", (int)strcspn(p + 18, "\r\n"), p + 18);
	return size * n;
}

static void
fetch(const char *url, bool gzip, struct fetch *fe)
{
	CURL *c = curl_easy_init();

	memset(fe, 0, sizeof(*fe));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, fe);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, fe);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (gzip)
		curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &fe->status);
	curl_easy_cleanup(c);
}

static void
test_federate_http(void **state)
{
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct api_federate *f = api_federate_new(h, 5 * MIN);
	struct api_metrics *m = api_metrics_new();
	struct http_server *srv;
	struct fetch fe;
	char err[256], base[64], url[256];
	int64_t now = NOW;
	size_t i, lines;
	const char *p;

	(void)state;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		now = (int64_t)ts.tv_sec * 1000 - 1000;
	}
	/* 20000 series: many stream callbacks. */
	for (i = 0; i < 20000; i++) {
		char inst[32];

		snprintf(inst, sizeof(inst), "host-%05zu:9100", i);
		add(h, now, (double)i, "__name__", i % 2 ? "odd" : "even", "instance", inst, (char *)NULL);
	}
	srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(api_federate_route(f, srv), 0);
	api_metrics_add(m, api_metrics_head, h);
	assert_int_equal(api_metrics_route(m, srv), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", http_server_port(srv));

	snprintf(url, sizeof(url), "%s/federate?match[]=%%7B__name__%%3D~%%22.%%2B%%22%%7D", base);
	fetch(url, true, &fe);
	assert_int_equal(fe.status, 200);
	assert_string_equal(fe.encoding, "gzip");
	for (lines = 0, p = fe.body.buf; p != NULL && *p != '\0'; p = strchr(p, '\n') + 1)
		lines++;
	assert_int_equal(lines, 20000 + 2);
	assert_non_null(strstr(fe.body.buf, "# TYPE even untyped\neven{instance=\"host-00000:9100\"} 0 "));
	assert_non_null(strstr(fe.body.buf, "odd{instance=\"host-19999:9100\"} 19999 "));
	strbuf_free(&fe.body);

	snprintf(url, sizeof(url), "%s/federate?match[]=up%%7B", base);
	fetch(url, false, &fe);
	assert_int_equal(fe.status, 400);
	assert_non_null(strstr(fe.body.buf, "parse error"));
	strbuf_free(&fe.body);

	snprintf(url, sizeof(url), "%s/federate?match[]=%%zz", base);
	fetch(url, false, &fe);
	assert_int_equal(fe.status, 400);
	assert_non_null(strstr(fe.body.buf, "error parsing form values"));
	strbuf_free(&fe.body);

	snprintf(url, sizeof(url), "%s/federate", base);
	fetch(url, false, &fe);
	assert_int_equal(fe.status, 200);
	assert_int_equal(fe.body.len, 0);
	strbuf_free(&fe.body);

	snprintf(url, sizeof(url), "%s/metrics", base);
	fetch(url, false, &fe);
	assert_int_equal(fe.status, 200);
	assert_non_null(strstr(fe.body.buf, "\nprometheus_tsdb_head_series 20000\n"));
	assert_non_null(strstr(fe.body.buf,
	    "\nprometheus_tsdb_head_samples_appended_total{type=\"float\"} 20000\n"));
	assert_non_null(strstr(fe.body.buf, "\n# TYPE process_resident_memory_bytes gauge\n"));
	strbuf_free(&fe.body);

	http_server_free(srv);
	api_metrics_free(m);
	api_federate_free(f);
	tsdb_head_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_federate_body),
		cmocka_unit_test(test_federate_future_and_errors),
		cmocka_unit_test(test_federate_http),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
