/* tests/unit/test_scrape.c - lib/scrape: targets, the scrape cache, the manager over HTTP.
 *
 * Three layers, simplest first:
 * - target building (PopulateLabels), host:port splitting, URLs, identity
 *   and phase: table tests against Prometheus 2.42's behaviour;
 * - scrape_cache_append on a real tsdb head, no network: honor_labels and
 *   exported_ renaming, honor_timestamps, every limit with Prometheus' error
 *   text, metric relabeling, duplicates/out-of-order counting, staleness on
 *   disappearance, failure and end of run;
 * - the scrape manager against lib/http servers on 127.0.0.1:0: request
 *   headers, gzip, basic auth and bearer credentials, error texts (timeout,
 *   refused, HTTP status, body size, parse line:column), a hanging target
 *   not stalling the others, reloads keeping phase and writing staleness
 *   markers, file_sd changes, ownership resync, target_limit.
 * Scrape intervals are 250-300 ms so the suite stays within seconds.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "config/config.h"
#include "http/server.h"
#include "labels/matcher.h"
#include "scrape/cache.h"
#include "scrape/scrape.h"
#include "scrape/target.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

/* --- helpers -------------------------------------------------------------------- */

static struct cfg *
load_cfg(const char *yaml)
{
	char err[1024];
	struct cfg *c = cfg_load_string(yaml, strlen(yaml), "t.yml", "/tmp", err, sizeof(err));

	if (c == NULL)
		fail_msg("config refused: %s\n%s", err, yaml);
	return c;
}

/* fmt_labels returns ls as {a="b", ...} in a static buffer ("<nil>" for NULL). */
static const char *
fmt_labels(const struct labels *ls)
{
	static char buf[2048];
	struct strbuf sb = STRBUF_INIT;

	if (ls == NULL)
		return "<nil>";
	labels_format(ls, &sb);
	snprintf(buf, sizeof(buf), "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
	return buf;
}

static bool
is_stale(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b == CHUNK_STALE_NAN_BITS;
}

#define MAXS 4096

struct samples {
	size_t n;
	int64_t t[MAXS];
	double v[MAXS];
	char ls[256];		/* labels of the (single) series */
	size_t nseries;
};

/* select_series collects the samples of the series matching the selector
 * pairs (name, value, ..., NULL), requiring at most one series. */
static void
select_series(struct tsdb_head *h, struct samples *out, ...)
{
	struct matcher *ms[16];
	size_t nm = 0, i;
	va_list ap;
	const char *n, *v;
	struct tsdb_series_set *ss;
	char err[256];

	memset(out, 0, sizeof(*out));
	va_start(ap, out);
	while ((n = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		ms[nm] = matcher_new(MATCH_EQUAL, n, v, err, sizeof(err));
		assert_non_null(ms[nm]);
		nm++;
	}
	va_end(ap);
	ss = tsdb_head_select(h, ms, nm, INT64_MIN, INT64_MAX);
	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		int64_t t;
		double val;

		out->nseries++;
		snprintf(out->ls, sizeof(out->ls), "%s", fmt_labels(tsdb_series_set_labels(ss)));
		while (tsdb_iter_next(it, &t, &val) && out->n < MAXS) {
			out->t[out->n] = t;
			out->v[out->n] = val;
			out->n++;
		}
	}
	tsdb_series_set_free(ss);
	for (i = 0; i < nm; i++)
		matcher_free(ms[i]);
	if (out->nseries > 1)
		fail_msg("selector matched %zu series", out->nseries);
}

static char *
xdup(const char *s)
{
	return s != NULL ? mem_strdup(s) : NULL;
}

static struct tsdb_head *
new_head(void)
{
	char err[256];
	struct tsdb_head *h = tsdb_head_new(NULL, err, sizeof(err));

	assert_non_null(h);
	return h;
}

/* --- host:port ---------------------------------------------------------------------- */

static void
test_split_host_port(void **state)
{
	static const struct {
		const char *in, *host, *port, *why;
	} tc[] = {
		{ "localhost:80", "localhost", "80", NULL },
		{ "localhost:", "localhost", "", NULL },
		{ "[::1]:9090", "::1", "9090", NULL },
		{ "localhost", NULL, NULL, "missing port in address" },
		{ "::1", NULL, NULL, "too many colons in address" },
		{ "[::1]", NULL, NULL, "missing port in address" },
		{ "[::1]x:1", NULL, NULL, "missing port in address" },
		{ "[::1]:1:2", NULL, NULL, "too many colons in address" },
		{ "[::1:80", NULL, NULL, "missing ']' in address" },
		{ "a[b:80", NULL, NULL, "unexpected '[' in address" },
		{ "a]b:80", NULL, NULL, "unexpected ']' in address" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		const char *h, *p, *why = NULL;
		size_t hl, pl;
		int rc = scrape_split_host_port(tc[i].in, strlen(tc[i].in), &h, &hl, &p, &pl, &why);

		if (tc[i].why != NULL) {
			assert_int_equal(rc, -1);
			assert_string_equal(why, tc[i].why);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(hl, strlen(tc[i].host));
			assert_memory_equal(h, tc[i].host, hl);
			assert_int_equal(pl, strlen(tc[i].port));
			assert_memory_equal(p, tc[i].port, pl);
		}
	}
}

/* --- target building ------------------------------------------------------------------- */

struct build_case {
	const char *name;
	const char *job;	/* YAML of one scrape config (indented by 2) */
	const char *addr;
	const char *group;	/* extra group labels "a=b,c=d" or NULL */
	const char *want_labels;	/* public labels, NULL: dropped or error */
	const char *want_url;
	const char *want_err;	/* substring; NULL: no error */
	int64_t want_interval, want_timeout;
	const char *want_discovered_has;	/* label name that must be in discovered */
};

static void
run_build_case(const struct build_case *bc)
{
	struct strbuf y = STRBUF_INIT;
	struct cfg *c;
	struct labels_builder *lb = labels_builder_new();
	struct labels *base;
	struct scrape_tdef d;
	char err[1024] = "";
	int rc;

	strbuf_printf(&y, "global:\n  scrape_interval: 30s\n  scrape_timeout: 10s\n"
	    "scrape_configs:\n%s", bc->job);
	c = load_cfg(strbuf_cstr(&y));
	if (bc->group != NULL) {
		const char *kv = bc->group;

		while (*kv != '\0') {
			const char *eq = strchr(kv, '='), *end = strchr(kv, ',');

			if (end == NULL)
				end = kv + strlen(kv);
			labels_builder_setn(lb, kv, (size_t)(eq - kv), eq + 1, (size_t)(end - eq - 1));
			kv = *end == ',' ? end + 1 : end;
		}
	}
	labels_builder_set(lb, "__address__", bc->addr);
	base = labels_builder_labels(lb);
	rc = scrape_tdef_build(base, &c->scrape[0], &d, err, sizeof(err));
	if (bc->want_err != NULL) {
		if (rc == 0)
			fail_msg("%s: accepted, wanted error %s", bc->name, bc->want_err);
		if (strstr(err, bc->want_err) == NULL)
			fail_msg("%s: error '%s' lacks '%s'", bc->name, err, bc->want_err);
	} else {
		if (rc != 0)
			fail_msg("%s: error %s", bc->name, err);
		assert_non_null(d.discovered);
		if (bc->want_labels == NULL) {
			if (d.labels != NULL)
				fail_msg("%s: not dropped: %s", bc->name, fmt_labels(d.labels));
		} else {
			if (d.labels == NULL)
				fail_msg("%s: dropped", bc->name);
			if (strcmp(fmt_labels(d.public), bc->want_labels) != 0)
				fail_msg("%s: labels %s, want %s", bc->name, fmt_labels(d.public),
				    bc->want_labels);
			if (bc->want_url != NULL && strcmp(d.url, bc->want_url) != 0)
				fail_msg("%s: url %s, want %s", bc->name, d.url, bc->want_url);
			if (bc->want_interval && d.interval_ms != bc->want_interval)
				fail_msg("%s: interval %lld", bc->name, (long long)d.interval_ms);
			if (bc->want_timeout && d.timeout_ms != bc->want_timeout)
				fail_msg("%s: timeout %lld", bc->name, (long long)d.timeout_ms);
			/* the full set keeps __ labels but never __meta_ */
			for (uint32_t i = 0; i < d.labels->n; i++)
				assert_true(strncmp(d.labels->v[i].name, "__meta_", 7) != 0);
			assert_non_null(labels_get(d.labels, "__address__"));
		}
		if (bc->want_discovered_has != NULL &&
		    labels_get(d.discovered, bc->want_discovered_has) == NULL)
			fail_msg("%s: discovered %s lacks %s", bc->name,
			    fmt_labels(d.discovered), bc->want_discovered_has);
		scrape_tdef_clear(&d);
	}
	labels_free(base);
	labels_builder_free(lb);
	cfg_free(c);
	strbuf_free(&y);
}

static void
test_target_build(void **state)
{
	static const struct build_case tc[] = {
		{ "default port http",
		  "  - job_name: j\n", "localhost", NULL,
		  "{instance=\"localhost:80\", job=\"j\"}", "http://localhost:80/metrics",
		  NULL, 30000, 10000, "__scrape_interval__" },
		{ "default port https",
		  "  - job_name: j\n    scheme: https\n", "example.org", NULL,
		  "{instance=\"example.org:443\", job=\"j\"}", "https://example.org:443/metrics",
		  NULL, 0, 0, NULL },
		{ "ipv6 default port",
		  "  - job_name: j\n", "[::1]", NULL,
		  "{instance=\"[::1]:80\", job=\"j\"}", "http://[::1]:80/metrics", NULL, 0, 0, NULL },
		{ "port kept, params in url and labels",
		  "  - job_name: j\n    metrics_path: /federate\n    params:\n"
		  "      match[]: ['{job=\"a\"}', 'up']\n      x: [\"a b\"]\n",
		  "h:9090", NULL,
		  "{instance=\"h:9090\", job=\"j\"}",
		  "http://h:9090/federate?match%5B%5D=%7Bjob%3D%22a%22%7D&match%5B%5D=up&x=a+b",
		  NULL, 0, 0, "__param_match[]" },
		{ "group labels, meta removed, instance from group",
		  "  - job_name: j\n", "h:1", "__meta_x=1,instance=mine,team=a",
		  "{instance=\"mine\", job=\"j\", team=\"a\"}", "http://h:1/metrics", NULL, 0, 0,
		  "__meta_x" },
		{ "group job label wins over the job name",
		  "  - job_name: j\n", "h:1", "job=other",
		  "{instance=\"h:1\", job=\"other\"}", NULL, NULL, 0, 0, NULL },
		{ "relabel drop keeps discovered labels",
		  "  - job_name: j\n    relabel_configs:\n      - source_labels: [__address__]\n"
		  "        regex: h:1\n        action: drop\n", "h:1", NULL,
		  NULL, NULL, NULL, 0, 0, "__address__" },
		{ "relabel sets interval, timeout, param, path",
		  "  - job_name: j\n    relabel_configs:\n"
		  "      - target_label: __scrape_interval__\n        replacement: 5s\n"
		  "      - target_label: __scrape_timeout__\n        replacement: 2s\n"
		  "      - target_label: __param_module\n        replacement: if_mib\n"
		  "      - target_label: __metrics_path__\n        replacement: snmp\n",
		  "h:1", NULL, "{instance=\"h:1\", job=\"j\"}",
		  "http://h:1/snmp?module=if_mib", NULL, 5000, 2000, NULL },
		{ "relabel moves address (blackbox style)",
		  "  - job_name: j\n    relabel_configs:\n"
		  "      - source_labels: [__address__]\n        target_label: __param_target\n"
		  "      - source_labels: [__param_target]\n        target_label: instance\n"
		  "      - target_label: __address__\n        replacement: bb:9115\n",
		  "example.com", NULL, "{instance=\"example.com\", job=\"j\"}",
		  "http://bb:9115/metrics?target=example.com", NULL, 0, 0, NULL },
		{ "timeout above interval",
		  "  - job_name: j\n    relabel_configs:\n"
		  "      - target_label: __scrape_timeout__\n        replacement: 1m\n",
		  "h:1", NULL, NULL, NULL,
		  "scrape timeout cannot be greater than scrape interval (\"1m\" > \"30s\")", 0, 0, NULL },
		{ "bad interval",
		  "  - job_name: j\n    relabel_configs:\n"
		  "      - target_label: __scrape_interval__\n        replacement: soon\n",
		  "h:1", NULL, NULL, NULL, "error parsing scrape interval: not a valid duration string",
		  0, 0, NULL },
		{ "zero interval",
		  "  - job_name: j\n    relabel_configs:\n"
		  "      - target_label: __scrape_interval__\n        replacement: 0s\n",
		  "h:1", NULL, NULL, NULL, "scrape interval cannot be 0", 0, 0, NULL },
		{ "no address",
		  "  - job_name: j\n    relabel_configs:\n      - action: labeldrop\n"
		  "        regex: __address__\n", "h:1", NULL, NULL, NULL, "no address", 0, 0, NULL },
		{ "slash in address",
		  "  - job_name: j\n", "h/x:1", NULL, NULL, NULL,
		  "\"h/x:1\" is not a valid hostname", 0, 0, NULL },
		{ "invalid scheme from relabeling",
		  "  - job_name: j\n    relabel_configs:\n"
		  "      - target_label: __scheme__\n        replacement: ftp\n",
		  "h", NULL, NULL, NULL, "invalid scheme: \"http\"", 0, 0, NULL },
		{ "invalid utf-8 label value",
		  "  - job_name: j\n", "h:1", "a=\xff", NULL, NULL,
		  "invalid label value for \"a\": \"\\xff\"", 0, 0, NULL },
		{ "path without slash, escaped",
		  "  - job_name: j\n    metrics_path: 'a b?c'\n", "h:1", NULL,
		  "{instance=\"h:1\", job=\"j\"}", "http://h:1/a%20b%3Fc", NULL, 0, 0, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tc) / sizeof(tc[0]); i++)
		run_build_case(&tc[i]);
}

static void
test_target_identity(void **state)
{
	struct label a[] = { { "__address__", "h:1" }, { "job", "j" }, { "instance", "h:1" } };
	struct label b[] = { { "__address__", "h:2" }, { "job", "j" }, { "instance", "h:2" } };
	struct labels *la = labels_new(a, 3), *lb = labels_new(b, 3), *pub;
	uint64_t ha = scrape_target_hash(la, "http://h:1/metrics");
	uint64_t hb = scrape_target_hash(lb, "http://h:2/metrics");
	int64_t p;
	struct label empty_l[] = { { "a", "b" } };
	struct labels *one = labels_new(empty_l, 1);

	(void)state;
	/* Prometheus' labels.Hash: xxh64 of "a\xffb\xff" */
	assert_true(scrape_labels_xxh64(one) != 0);
	assert_int_equal(ha, scrape_target_hash(la, "http://h:1/metrics"));
	assert_true(ha != hb);
	assert_true(ha != scrape_target_hash(la, "http://h:1/other"));
	p = scrape_target_phase(ha, 0, 15000);
	assert_true(p >= 0 && p < INT64_C(15000) * 1000000);
	assert_int_equal(p, scrape_target_phase(ha, 0, 15000));
	assert_true(p != scrape_target_phase(ha, 12345, 15000) ||
	    scrape_target_phase(ha, 12345, 15000) == p);
	pub = scrape_public_labels(la);
	assert_string_equal(fmt_labels(pub), "{instance=\"h:1\", job=\"j\"}");
	labels_free(pub);
	labels_free(la);
	labels_free(lb);
	labels_free(one);
}

/* --- the scrape cache ------------------------------------------------------------------- */

struct cache_env {
	struct tsdb_head *h;
	struct scrape_cache *c;
	struct scrape_scratch *w;
	struct tsdb_appender *app;
	struct labels *target;
	struct scrape_append_conf conf;
	struct scrape_append_result r;
	char err[1024];
};

static void
env_init(struct cache_env *e)
{
	struct label tl[] = { { "job", "j" }, { "instance", "i:1" } };

	memset(e, 0, sizeof(*e));
	e->h = new_head();
	e->c = scrape_cache_new();
	e->w = scrape_scratch_new();
	e->app = tsdb_appender_new(e->h);
	e->target = labels_new(tl, 2);
	e->conf.target = e->target;
	e->conf.honor_timestamps = true;
}

static void
env_free(struct cache_env *e)
{
	tsdb_appender_free(e->app);
	scrape_scratch_free(e->w);
	scrape_cache_free(e->c);
	labels_free(e->target);
	tsdb_head_free(e->h);
}

/* scrape runs one scrape of body at ts the way a worker does (append, on
 * failure rollback + fail, report, commit) and returns the append's rc. */
static int
scrape(struct cache_env *e, const char *body, int64_t ts)
{
	int rc;

	e->err[0] = '\0';
	rc = scrape_cache_append(e->c, e->w, e->app, &e->conf, EXPFMT_TEXT, body,
	    body ? strlen(body) : 0, ts, ts, &e->r, e->err, sizeof(e->err));
	if (rc < 0) {
		tsdb_appender_rollback(e->app);
		scrape_cache_fail(e->c, e->app, ts);
	}
	scrape_cache_report(e->c, e->app, e->target, ts, rc == 0, 0.5, e->r.total,
	    e->r.added, e->r.series_added);
	tsdb_appender_commit(e->app);
	return rc;
}

static void
test_cache_basic(void **state)
{
	struct cache_env e;
	struct samples s;

	(void)state;
	env_init(&e);
	assert_int_equal(scrape(&e, "# TYPE a counter\na{x=\"1\"} 1\nb 2\n", 1000), 0);
	assert_int_equal(e.r.total, 2);
	assert_int_equal(e.r.added, 2);
	assert_int_equal(e.r.series_added, 2);
	assert_int_equal(scrape_cache_size(e.c), 2);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_string_equal(s.ls, "{__name__=\"a\", instance=\"i:1\", job=\"j\", x=\"1\"}");
	assert_int_equal(s.n, 1);
	assert_int_equal(s.t[0], 1000);
	assert_true(s.v[0] == 1);
	select_series(e.h, &s, "__name__", "up", NULL);
	assert_string_equal(s.ls, "{__name__=\"up\", instance=\"i:1\", job=\"j\"}");
	assert_true(s.n == 1 && s.v[0] == 1);
	select_series(e.h, &s, "__name__", "scrape_samples_scraped", NULL);
	assert_true(s.n == 1 && s.v[0] == 2);
	select_series(e.h, &s, "__name__", "scrape_samples_post_metric_relabeling", NULL);
	assert_true(s.n == 1 && s.v[0] == 2);
	select_series(e.h, &s, "__name__", "scrape_series_added", NULL);
	assert_true(s.n == 1 && s.v[0] == 2);
	select_series(e.h, &s, "__name__", "scrape_duration_seconds", NULL);
	assert_true(s.n == 1 && s.v[0] == 0.5);

	/* second scrape: cache hits, no series added */
	assert_int_equal(scrape(&e, "# TYPE a counter\na{x=\"1\"} 3\nb 4\n", 2000), 0);
	assert_int_equal(e.r.series_added, 0);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.n, 2);
	assert_true(s.v[1] == 3);
	select_series(e.h, &s, "__name__", "scrape_series_added", NULL);
	assert_true(s.n == 2 && s.v[1] == 0);
	env_free(&e);
}

static void
test_cache_honor_labels(void **state)
{
	struct cache_env e;
	struct samples s;

	(void)state;
	env_init(&e);
	/* job conflicts; exported_job is taken by the scrape, so the scraped job
	 * becomes exported_exported_job; instance conflicts too */
	assert_int_equal(scrape(&e, "m{job=\"x\",exported_job=\"y\",instance=\"z\"} 1\n", 1000), 0);
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_string_equal(s.ls, "{__name__=\"m\", exported_exported_job=\"x\", "
	    "exported_instance=\"z\", exported_job=\"y\", instance=\"i:1\", job=\"j\"}");
	/* an empty scraped value is no conflict */
	assert_int_equal(scrape(&e, "n{job=\"\"} 1\n", 2000), 0);
	select_series(e.h, &s, "__name__", "n", NULL);
	assert_string_equal(s.ls, "{__name__=\"n\", instance=\"i:1\", job=\"j\"}");
	env_free(&e);

	env_init(&e);
	e.conf.honor_labels = true;
	assert_int_equal(scrape(&e, "m{job=\"x\"} 1\n", 1000), 0);
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_string_equal(s.ls, "{__name__=\"m\", instance=\"i:1\", job=\"x\"}");
	env_free(&e);
}

static void
test_cache_honor_timestamps(void **state)
{
	struct cache_env e;
	struct samples s;

	(void)state;
	env_init(&e);
	assert_int_equal(scrape(&e, "a 1 500\nb 1\n", 1000), 0);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.n == 1 && s.t[0] == 500);
	/* explicit timestamps are not tracked for staleness: a goes, no marker */
	assert_int_equal(scrape(&e, "b 2\n", 2000), 0);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.n, 1);
	env_free(&e);

	env_init(&e);
	e.conf.honor_timestamps = false;
	assert_int_equal(scrape(&e, "a 1 500\n", 1000), 0);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.n == 1 && s.t[0] == 1000);
	/* now tracked: a goes, a stale marker at the next scrape */
	assert_int_equal(scrape(&e, "b 2\n", 2000), 0);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.n, 2);
	assert_true(s.t[1] == 2000 && is_stale(s.v[1]));
	env_free(&e);
}

static void
test_cache_staleness(void **state)
{
	struct cache_env e;
	struct samples s;

	(void)state;
	env_init(&e);
	assert_int_equal(scrape(&e, "a 1\nb 1\nc 1\n", 1000), 0);
	/* b disappears: stale at 2000; a, c carry on */
	assert_int_equal(scrape(&e, "a 2\nc 2\n", 2000), 0);
	select_series(e.h, &s, "__name__", "b", NULL);
	assert_int_equal(s.n, 2);
	assert_true(s.t[1] == 2000 && is_stale(s.v[1]));
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.n == 2 && s.v[1] == 2);
	/* a failed scrape (parse error half way) marks every series of the
	 * previous scrape stale; the synthetic series get real values */
	assert_int_equal(scrape(&e, "a 3\nc{ 3\n", 3000), -1);
	assert_string_equal(e.err, "2:4: expected label name, got \"INVALID\"");
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.n, 3);
	assert_true(s.t[2] == 3000 && is_stale(s.v[2]));
	select_series(e.h, &s, "__name__", "c", NULL);
	assert_true(s.n == 3 && is_stale(s.v[2]));
	select_series(e.h, &s, "__name__", "b", NULL);
	assert_int_equal(s.n, 2);	/* no second marker */
	select_series(e.h, &s, "__name__", "up", NULL);
	assert_true(s.n == 3 && s.v[2] == 0);
	/* a second failure writes nothing more */
	assert_int_equal(scrape(&e, NULL, 4000), 0);	/* empty body: success, nothing */
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.n, 3);
	/* back: values again, then b goes stale... b was never back */
	assert_int_equal(scrape(&e, "a 5\nb 5\n", 5000), 0);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.n == 4 && s.v[3] == 5);
	/* end of run: the last scrape's series and the synthetic ones */
	scrape_cache_end_of_run(e.c, e.app, e.target, 6000);
	tsdb_appender_commit(e.app);
	select_series(e.h, &s, "__name__", "b", NULL);
	assert_true(s.t[s.n - 1] == 6000 && is_stale(s.v[s.n - 1]));
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.t[s.n - 1] == 6000 && is_stale(s.v[s.n - 1]));
	select_series(e.h, &s, "__name__", "up", NULL);
	assert_true(s.t[s.n - 1] == 6000 && is_stale(s.v[s.n - 1]));
	select_series(e.h, &s, "__name__", "scrape_series_added", NULL);
	assert_true(is_stale(s.v[s.n - 1]));
	select_series(e.h, &s, "__name__", "c", NULL);
	assert_int_equal(s.n, 3);	/* already stale */
	env_free(&e);
}

static void
test_cache_limits(void **state)
{
	static const struct {
		uint64_t sample, labels, name_len, value_len;
		const char *body, *err;
	} tc[] = {
		{ 2, 0, 0, 0, "a 1\nb 1\nc 1\n", "sample limit exceeded" },
		{ 0, 2, 0, 0, "a{x=\"1\",y=\"2\"} 1\n",
		  "label_limit exceeded (metric: a, number of labels: 5, limit: 2)" },
		{ 0, 0, 3, 0, "a{long=\"1\"} 1\n",
		  "label_name_length_limit exceeded (metric: a, label name: __name__, length: 8, limit: 3)" },
		{ 0, 0, 0, 3, "a{x=\"abcd\"} 1\n",
		  "label_value_length_limit exceeded (metric: a, label name: x, value: \"abcd\", length: 4, limit: 3)" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		struct cache_env e;
		struct samples s;

		env_init(&e);
		assert_int_equal(scrape(&e, "keep 1\n", 500), 0);
		e.conf.sample_limit = tc[i].sample;
		e.conf.label_limit = tc[i].labels;
		e.conf.label_name_length_limit = tc[i].name_len;
		e.conf.label_value_length_limit = tc[i].value_len;
		assert_int_equal(scrape(&e, tc[i].body, 1000), -1);
		assert_string_equal(e.err, tc[i].err);
		assert_int_equal(e.r.sample_limit, tc[i].sample > 0);
		assert_int_equal(e.r.label_limits, tc[i].sample == 0);
		/* nothing of the body was appended; the series before went stale */
		select_series(e.h, &s, "__name__", "a", NULL);
		assert_int_equal(s.n, 0);
		select_series(e.h, &s, "__name__", "b", NULL);
		assert_int_equal(s.n, 0);
		select_series(e.h, &s, "__name__", "keep", NULL);
		assert_true(s.n == 2 && is_stale(s.v[1]));
		select_series(e.h, &s, "__name__", "up", NULL);
		assert_true(s.n == 2 && s.v[1] == 0);
		if (tc[i].sample > 0) {
			/* every sample is counted, as Prometheus reports them */
			select_series(e.h, &s, "__name__", "scrape_samples_scraped", NULL);
			assert_true(s.v[1] == 3);
			select_series(e.h, &s, "__name__", "scrape_samples_post_metric_relabeling", NULL);
			assert_true(s.v[1] == 3);
		}
		/* within the limit the same scrape is fine */
		e.conf.sample_limit = e.conf.label_limit = 0;
		e.conf.label_name_length_limit = e.conf.label_value_length_limit = 0;
		assert_int_equal(scrape(&e, tc[i].body, 2000), 0);
		env_free(&e);
	}
}

static void
test_cache_metric_relabel(void **state)
{
	struct cache_env e;
	struct samples s;
	struct cfg *c = load_cfg("scrape_configs:\n  - job_name: j\n    metric_relabel_configs:\n"
	    "      - source_labels: [__name__]\n        regex: drop_.*\n        action: drop\n"
	    "      - source_labels: [x]\n        target_label: y\n"
	    "      - regex: x\n        action: labeldrop\n");

	(void)state;
	env_init(&e);
	e.conf.metric_relabel = c->scrape[0].metric_relabel.rules;
	e.conf.n_metric_relabel = c->scrape[0].metric_relabel.n;
	assert_int_equal(scrape(&e, "drop_me 1\nkeep{x=\"1\"} 1\n", 1000), 0);
	assert_int_equal(e.r.total, 2);
	assert_int_equal(e.r.added, 1);
	assert_int_equal(scrape_cache_size(e.c), 2);	/* the dropped text is cached too */
	select_series(e.h, &s, "__name__", "drop_me", NULL);
	assert_int_equal(s.nseries, 0);
	select_series(e.h, &s, "__name__", "keep", NULL);
	assert_string_equal(s.ls, "{__name__=\"keep\", instance=\"i:1\", job=\"j\", y=\"1\"}");
	assert_int_equal(scrape(&e, "drop_me 2\nkeep{x=\"1\"} 2\n", 2000), 0);
	assert_int_equal(e.r.added, 1);
	select_series(e.h, &s, "__name__", "scrape_samples_post_metric_relabeling", NULL);
	assert_true(s.n == 2 && s.v[1] == 1);
	env_free(&e);

	/* a relabeling that removes __name__ fails the scrape */
	env_init(&e);
	cfg_free(c);
	c = load_cfg("scrape_configs:\n  - job_name: j\n    metric_relabel_configs:\n"
	    "      - regex: __name__\n        action: labeldrop\n");
	e.conf.metric_relabel = c->scrape[0].metric_relabel.rules;
	e.conf.n_metric_relabel = c->scrape[0].metric_relabel.n;
	assert_int_equal(scrape(&e, "a 1\n", 1000), -1);
	assert_string_equal(e.err, "missing metric name (__name__ label)");
	env_free(&e);
	cfg_free(c);
}

static void
test_cache_append_errors(void **state)
{
	struct cache_env e;
	struct samples s;

	(void)state;
	env_init(&e);
	assert_int_equal(scrape(&e, "a 1 5000\n", 6000), 0);
	/* older timestamp: out of order, counted, scrape still fine */
	assert_int_equal(scrape(&e, "a 1 4000\n", 7000), 0);
	assert_int_equal(e.r.out_of_order, 1);
	assert_int_equal(e.r.added, 1);
	/* same timestamp, other value */
	assert_int_equal(scrape(&e, "a 2 5000\n", 8000), 0);
	assert_int_equal(e.r.duplicate, 1);
	/* far future: out of bounds */
	assert_int_equal(scrape(&e, "a 2 999999999999\n", 9000), 0);
	assert_int_equal(e.r.out_of_bounds, 1);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.n, 1);
	select_series(e.h, &s, "__name__", "up", NULL);
	assert_true(s.n == 4 && s.v[3] == 1);
	/* OpenMetrics: parse by format; a missing # EOF is a parse error */
	e.err[0] = '\0';
	assert_int_equal(scrape_cache_append(e.c, e.w, e.app, &e.conf, EXPFMT_OPENMETRICS,
	    "b 1\n", 4, 10000, 10000, &e.r, e.err, sizeof(e.err)), -1);
	assert_non_null(strstr(e.err, ":"));
	tsdb_appender_rollback(e.app);
	scrape_cache_fail(e.c, e.app, 10000);
	tsdb_appender_commit(e.app);
	env_free(&e);
}

/* a target far over its sample_limit costs no cache memory */
static void
test_cache_limit_memory(void **state)
{
	struct cache_env e;
	struct strbuf body = STRBUF_INIT;
	int i;

	(void)state;
	env_init(&e);
	for (i = 0; i < 20000; i++)
		strbuf_printf(&body, "series_%d{a=\"%d\"} %d\n", i, i, i);
	e.conf.sample_limit = 10;
	assert_int_equal(scrape(&e, strbuf_cstr(&body), 1000), -1);
	assert_string_equal(e.err, "sample limit exceeded");
	assert_int_equal(e.r.total, 20000);
	assert_int_equal(e.r.added, 20000);
	assert_true(scrape_cache_size(e.c) <= 11);
	strbuf_free(&body);
	env_free(&e);
}

/* the scrape cache forgets texts that left; a label set reached by two
 * texts (other label order) is one series */
static void
test_cache_flush_and_aliases(void **state)
{
	struct cache_env e;
	struct samples s;

	(void)state;
	env_init(&e);
	assert_int_equal(scrape(&e, "a{x=\"1\",y=\"2\"} 1\nb 1\n", 1000), 0);
	assert_int_equal(scrape_cache_size(e.c), 2);
	assert_int_equal(scrape(&e, "a{y=\"2\",x=\"1\"} 2\n", 2000), 0);
	assert_int_equal(scrape_cache_size(e.c), 1);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.nseries, 1);
	assert_true(s.n == 2 && s.v[1] == 2);	/* the alias' value, no stale marker */
	select_series(e.h, &s, "__name__", "b", NULL);
	assert_true(s.n == 2 && is_stale(s.v[1]));
	env_free(&e);
}

/* The series after the last one found is offered to the parser as a hint:
 * reordered, inserted, removed and look-alike series land where they
 * belong, and an error after a hinted series reads as without hints. */
static void
test_cache_order(void **state)
{
	static const char *const bodies[] = {
		"a 1\nb 1\nc{x=\"1\"} 1\nd 1\n",
		"a 2\nb 2\nc{x=\"1\"} 2\nd 2\n",
		"d 3\nc{x=\"1\"} 3\nb 3\na 3\n",
		"a 4\na_total 4\nb 4\nb{y=\"1\"} 4\nc{x=\"1\"} 4\nc {x=\"1\"} 4\nd 4\n",
		"a 5\nb{y=\"1\"} 5\nc{x=\"1\",} 5\nd 5\n",
		"a 6\nb 6\nc{x=\"1\"} 6\nd 6\n",
	};
	static const struct {
		const char *sel;
		size_t n;		/* samples */
		double last;		/* last value; -1: a stale marker */
	} want[] = {
		{ "a", 6, 6 }, { "b", 6, 6 }, { "d", 6, 6 }, { "a_total", 2, -1 },
	};
	struct cache_env e;
	struct samples s;
	size_t i;

	(void)state;
	env_init(&e);
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_int_equal(scrape(&e, bodies[i], 1000 * (int64_t)(i + 1)), 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		select_series(e.h, &s, "__name__", want[i].sel, "y", "", NULL);
		assert_int_equal(s.nseries, 1);
		assert_int_equal(s.n, want[i].n);
		if (want[i].last < 0)
			assert_true(is_stale(s.v[s.n - 1]));
		else
			assert_true(s.v[s.n - 1] == want[i].last);
	}
	/* c{x="1"}, c {x="1"} and c{x="1",} are one series; b{y="1"} another */
	select_series(e.h, &s, "__name__", "c", NULL);
	assert_int_equal(s.n, 6);
	assert_true(s.t[3] == 4000 && s.v[3] == 4 && s.t[4] == 5000 && s.v[5] == 6);
	select_series(e.h, &s, "__name__", "b", "y", "1", NULL);
	assert_int_equal(s.n, 3);
	assert_true(s.v[0] == 4 && s.v[1] == 5 && is_stale(s.v[2]));
	/* an error on a line whose series is hinted: as from a fresh cache */
	assert_int_equal(scrape(&e, "a 7\nb 7 x\n", 7000), -1);
	assert_string_equal(e.err, "2:5: expected timestamp or new record, got \"INVALID\"");
	env_free(&e);
	env_init(&e);
	assert_int_equal(scrape(&e, "a 7\nb 7 x\n", 7000), -1);
	assert_string_equal(e.err, "2:5: expected timestamp or new record, got \"INVALID\"");
	/* series of one length swap places (the hint has the right length,
	 * other bytes), one ends the body without a newline */
	assert_int_equal(scrape(&e, "e{x=\"1\"} 1\ne{x=\"2\"} 2\ne{x=\"3\"} 3\n", 8000), 0);
	assert_int_equal(scrape(&e, "e{x=\"2\"} 4\ne{x=\"1\"} 5\ne{x=\"3\"} 6", 9000), 0);
	assert_int_equal(scrape(&e, "e{x=\"2\"} 7\ne{x=\"1\"} 8\ne{x=\"3\"} 9", 10000), 0);
	for (i = 0; i < 3; i++) {
		static const double v[3][3] = { { 1, 5, 8 }, { 2, 4, 7 }, { 3, 6, 9 } };
		char x[2] = { (char)('1' + i), '\0' };

		select_series(e.h, &s, "__name__", "e", "x", x, NULL);
		assert_int_equal(s.n, 3);
		assert_true(s.v[0] == v[i][0] && s.v[1] == v[i][1] && s.v[2] == v[i][2]);
	}
	assert_int_equal(scrape_cache_size(e.c), 3);
	env_free(&e);
}

/* A target with more series than 16-bit index slots hold: the index
 * widens, finds every series again, and narrows after a flush. */
static void
test_cache_large(void **state)
{
	struct strbuf big = STRBUF_INIT, small = STRBUF_INIT;
	struct cache_env e;
	size_t i, n = 40000;

	(void)state;
	for (i = 0; i < n; i++)
		strbuf_printf(&big, "m{i=\"%zu\"} 1\n", i);
	for (i = 0; i < 10; i++)
		strbuf_printf(&small, "m{i=\"%zu\"} 1\n", i * 997);
	env_init(&e);
	assert_int_equal(scrape(&e, strbuf_cstr(&big), 1000), 0);
	assert_int_equal(e.r.series_added, n);
	assert_int_equal(scrape_cache_size(e.c), n);
	assert_int_equal(scrape(&e, strbuf_cstr(&big), 2000), 0);
	assert_int_equal(e.r.total, n);
	assert_int_equal(e.r.series_added, 0);
	assert_int_equal(scrape(&e, strbuf_cstr(&small), 3000), 0);
	assert_int_equal(scrape_cache_size(e.c), 10);
	assert_int_equal(e.r.series_added, 0);
	assert_int_equal(scrape(&e, strbuf_cstr(&big), 4000), 0);
	assert_int_equal(e.r.series_added, n - 10);
	assert_int_equal(scrape_cache_size(e.c), n);
	env_free(&e);
	strbuf_free(&big);
	strbuf_free(&small);
}

/* --- the sample hook ------------------------------------------------------------------ */

struct hook_call {
	char ls[160];
	int64_t t;
	uint64_t bits;
	bool pull, marker;
	const struct labels *target;
};

struct hook_state {
	struct hook_call calls[64];
	size_t n;
	struct labels *dedup;	/* the replacement handed out (a reference kept) */
	size_t replaced;
};

static uint64_t
bits_of(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

/* test_hook drops replica "b", files replica "a" under the labels without
 * the replica label, keeps the rest, and records every call. */
static enum scrape_sample_verdict
test_hook(void *arg, const struct scrape_sample *s, struct labels **replace)
{
	struct hook_state *st = arg;
	const char *r = labels_get(s->ls, "replica");

	if (st->n < 64) {
		struct hook_call *c = &st->calls[st->n++];

		snprintf(c->ls, sizeof(c->ls), "%s", fmt_labels(s->ls));
		c->t = s->t;
		c->bits = bits_of(s->v);
		c->pull = s->pull;
		c->marker = s->marker;
		c->target = s->target;
	}
	if (r == NULL)
		return SCRAPE_SAMPLE_KEEP;
	if (strcmp(r, "b") == 0)
		return SCRAPE_SAMPLE_DROP;
	if (st->dedup == NULL) {
		struct labels_builder *lb = labels_builder_new();

		labels_builder_reset(lb, s->ls);
		labels_builder_del(lb, "replica");
		st->dedup = labels_builder_labels(lb);
		labels_builder_free(lb);
	}
	st->replaced++;
	*replace = labels_ref(st->dedup);
	return SCRAPE_SAMPLE_REPLACE;
}

static void
test_cache_hook(void **state)
{
	struct cache_env e;
	struct hook_state hs;
	struct samples s;

	(void)state;
	memset(&hs, 0, sizeof(hs));
	env_init(&e);
	scrape_cache_set_hook(e.c, test_hook, &hs, e.target);
	assert_int_equal(scrape(&e, "m{replica=\"a\"} 1\nm{replica=\"b\"} 2\nn 3\n", 1000), 0);
	assert_int_equal(hs.n, 3);
	/* the hook sees the final labels (target labels added) */
	assert_string_equal(hs.calls[0].ls,
	    "{__name__=\"m\", instance=\"i:1\", job=\"j\", replica=\"a\"}");
	assert_true(hs.calls[0].target == e.target);
	assert_true(hs.calls[0].t == 1000 && !hs.calls[0].pull && !hs.calls[0].marker);
	assert_int_equal(scrape_cache_take_hook_dropped(e.c), 1);
	assert_int_equal(scrape_cache_take_hook_dropped(e.c), 0);
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_string_equal(s.ls, "{__name__=\"m\", instance=\"i:1\", job=\"j\"}");
	assert_true(s.n == 1 && s.v[0] == 1);
	/* what the hook drops still counts as scraped and kept by relabeling */
	assert_int_equal(e.r.added, 3);

	/* replica b goes away: its marker goes through the hook (dropped) */
	hs.n = 0;
	assert_int_equal(scrape(&e, "m{replica=\"a\"} 4\nn 5\n", 2000), 0);
	assert_int_equal(hs.n, 3);
	assert_true(hs.calls[2].marker && hs.calls[2].t == 2000 &&
	    hs.calls[2].bits == CHUNK_STALE_NAN_BITS);
	assert_string_equal(hs.calls[2].ls,
	    "{__name__=\"m\", instance=\"i:1\", job=\"j\", replica=\"b\"}");
	assert_int_equal(scrape_cache_take_hook_dropped(e.c), 1);
	/* replica a goes away: its marker lands on the replacement series */
	assert_int_equal(scrape(&e, "n 6\n", 3000), 0);
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_int_equal(s.nseries, 1);
	assert_true(s.n == 3 && s.v[1] == 4 && s.t[2] == 3000 && is_stale(s.v[2]));
	assert_int_equal(hs.replaced, 3);
	/* end of run: markers through the hook; the synthetic series bypass it */
	hs.n = 0;
	scrape_cache_end_of_run(e.c, e.app, e.target, 4000);
	tsdb_appender_commit(e.app);
	assert_int_equal(hs.n, 1);
	assert_true(hs.calls[0].marker && hs.calls[0].t == 4000);
	assert_string_equal(hs.calls[0].ls, "{__name__=\"n\", instance=\"i:1\", job=\"j\"}");
	select_series(e.h, &s, "__name__", "n", NULL);
	assert_true(s.n == 4 && is_stale(s.v[3]));
	env_free(&e);
	labels_free(hs.dedup);
}

/* --- metadata ---------------------------------------------------------------------------- */

struct md_list {
	char v[16][160];
	size_t n;
};

static void
md_add(void *ctx, const char *metric, const char *type, const char *help, const char *unit)
{
	struct md_list *l = ctx;

	if (l->n < 16)
		snprintf(l->v[l->n++], sizeof(l->v[0]), "%s|%s|%s|%s", metric, type, help, unit);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* md_of lists c's metadata (of metric, or all) sorted, joined with ';'. */
static const char *
md_of(struct scrape_cache *c, const char *metric)
{
	static char buf[2048];
	struct md_list l;
	size_t i, o = 0;

	l.n = 0;
	scrape_cache_metadata(c, metric, md_add, &l);
	qsort(l.v, l.n, sizeof(l.v[0]), str_cmp);
	buf[0] = '\0';
	for (i = 0; i < l.n; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? ";" : "", l.v[i]);
	return buf;
}

static void
test_cache_metadata(void **state)
{
	struct cache_env e;
	int i;
	static const char om[] = "# TYPE d_seconds gauge\n# UNIT d_seconds seconds\n"
	    "# HELP d_seconds Time \\\"spent\\\".\nd_seconds 1\n# EOF\n";

	(void)state;
	env_init(&e);
	assert_int_equal(scrape(&e, "# HELP a Some help.\n# TYPE a counter\na 1\n"
	    "# TYPE b untyped\nb 2\n# HELP c only help\nc 3\n", 1000), 0);
	assert_string_equal(md_of(e.c, NULL),
	    "a|counter|Some help.|;b|unknown||;c|unknown|only help|");
	assert_string_equal(md_of(e.c, "c"), "c|unknown|only help|");
	assert_string_equal(md_of(e.c, "nope"), "");
	/* OpenMetrics units; a help that changes */
	assert_int_equal(scrape_cache_append(e.c, e.w, e.app, &e.conf, EXPFMT_OPENMETRICS, om,
	    strlen(om), 2000, 2000, &e.r, e.err, sizeof(e.err)), 0);
	tsdb_appender_commit(e.app);
	assert_string_equal(md_of(e.c, "d_seconds"), "d_seconds|gauge|Time \"spent\".|seconds");
	assert_int_equal(scrape(&e, "# HELP a Other help.\n# TYPE a gauge\na 1\n", 3000), 0);
	assert_string_equal(md_of(e.c, "a"), "a|gauge|Other help.|");
	/* a family not mentioned for 10 scrapes is kept, then forgotten */
	for (i = 0; i < 10; i++)
		assert_int_equal(scrape(&e, "z 1\n", 4000 + i * 1000), 0);
	assert_string_equal(md_of(e.c, "a"), "a|gauge|Other help.|");
	assert_int_equal(scrape(&e, "z 1\n", 20000), 0);
	assert_string_equal(md_of(e.c, NULL), "");
	/* metadata of a body that fails later is kept, as in Prometheus */
	assert_int_equal(scrape(&e, "# TYPE f gauge\nf 1\nf{ 2\n", 21000), -1);
	assert_string_equal(md_of(e.c, NULL), "f|gauge||");
	env_free(&e);
}

/* --- pull bodies --------------------------------------------------------------------------- */

/* pull runs a pull body the way a worker does: append on pa (unrestricted),
 * on failure scrape_cache_fail on the normal appender, then commit. */
static int
pull(struct cache_env *e, struct tsdb_appender *pa, const char *body, int64_t want,
    struct scrape_pull_window *win)
{
	int rc;

	e->err[0] = '\0';
	rc = scrape_cache_append_pull(e->c, e->w, pa, &e->conf, body, strlen(body), want,
	    100000, win, &e->r, e->err, sizeof(e->err));
	if (rc < 0)
		scrape_cache_fail(e->c, e->app, 100000);
	tsdb_appender_commit(e->app);
	return rc;
}

static void
test_cache_pull(void **state)
{
	struct cache_env e;
	struct tsdb_appender *pa;
	struct scrape_pull_window win;
	struct hook_state hs;
	struct samples s;
	struct cfg *c = load_cfg("scrape_configs:\n  - job_name: j\n    metric_relabel_configs:\n"
	    "      - source_labels: [__name__]\n        regex: drop_.*\n        action: drop\n");

	(void)state;
	env_init(&e);
	memset(&hs, 0, sizeof(hs));
	scrape_cache_set_hook(e.c, test_hook, &hs, e.target);
	pa = tsdb_appender_new_unrestricted(e.h);
	e.conf.honor_labels = true;
	e.conf.metric_relabel = c->scrape[0].metric_relabel.rules;
	e.conf.n_metric_relabel = c->scrape[0].metric_relabel.n;
	assert_int_equal(pull(&e, pa, "# strata-pull 1 1000 9000\n"
	    "S m{instance=\"src:1\",site=\"s\"}\n2000 1\n3000 NaN:7ff0000000000002\n8000 4\n"
	    "S n\n1500 2\n2500 NaN:7ff8000000000001\n"
	    "S drop_me\n1500 1\n"
	    "# EOF\n", 1000, &win), 0);
	assert_true(win.since == 1000 && win.until == 9000);
	assert_int_equal(e.r.total, 6);
	assert_int_equal(e.r.added, 5);
	assert_int_equal(e.r.series_added, 2);
	/* honor_labels: the body's instance wins; the target fills job */
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_string_equal(s.ls, "{__name__=\"m\", instance=\"src:1\", job=\"j\", site=\"s\"}");
	assert_true(s.n == 3 && s.t[0] == 2000 && s.v[0] == 1 && s.t[1] == 3000 &&
	    bits_of(s.v[1]) == CHUNK_STALE_NAN_BITS && s.t[2] == 8000);
	select_series(e.h, &s, "__name__", "n", NULL);
	assert_string_equal(s.ls, "{__name__=\"n\", instance=\"i:1\", job=\"j\"}");
	assert_true(s.n == 2 && bits_of(s.v[1]) == UINT64_C(0x7ff8000000000001));
	select_series(e.h, &s, "__name__", "drop_me", NULL);
	assert_int_equal(s.nseries, 0);
	/* the hook saw every kept sample, marked as pulled, markers as data */
	assert_int_equal(hs.n, 5);
	assert_true(hs.calls[1].pull && !hs.calls[1].marker &&
	    hs.calls[1].bits == CHUNK_STALE_NAN_BITS);

	/* Into the past, an identical duplicate, and m absent from a body:
	 * no marker of its own in pull mode. */
	assert_int_equal(pull(&e, pa, "# strata-pull 1 1000 12000\n"
	    "S m{instance=\"src:1\",site=\"s\"}\n4000 5\n8000 4\nS n\n11000 3\n# EOF\n", 9000, &win), 0);
	assert_int_equal(e.r.series_added, 0);
	assert_int_equal(pull(&e, pa, "# strata-pull 1 12000 13000\nS n\n12500 4\n# EOF\n",
	    12000, &win), 0);
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_true(s.n == 4 && s.t[2] == 4000 && s.v[2] == 5 && s.t[3] == 8000);

	/* Refused bodies append nothing, and their failure writes no marker. */
	assert_int_equal(pull(&e, pa, "# strata-pull 1 14000 15000\nS m{instance=\"src:1\",site=\"s\"}\n"
	    "14500 6\n# EOF\n", 13000, &win), -1);
	assert_string_equal(e.err, "pull answer starts at 14000, after the cursor 13000");
	assert_int_equal(pull(&e, pa, "# strata-pull 1 13000 15000\nS m{instance=\"src:1\",site=\"s\"}\n"
	    "14500 6\n", 13000, &win), -1);
	assert_non_null(strstr(e.err, "truncated"));
	assert_int_equal(pull(&e, pa, "# strata-pull 1 13000 15000\nS m{instance=\"src:1\",site=\"s\"}\n"
	    "14500 6\nS n\n14600 x\n# EOF\n", 13000, &win), -1);
	assert_string_equal(e.err, "5:7: bad sample value");
	assert_int_equal(pull(&e, pa, "13000 15000\n", 13000, &win), -1);
	e.conf.sample_limit = 2;
	assert_int_equal(pull(&e, pa, "# strata-pull 1 13000 15000\nS m{instance=\"src:1\",site=\"s\"}\n"
	    "14500 6\n14600 7\nS drop_me\n14000 1\nS n\n14700 1\n# EOF\n", 13000, &win), -1);
	assert_string_equal(e.err, "sample limit exceeded");
	assert_true(e.r.sample_limit);
	e.conf.sample_limit = 0;
	e.conf.label_limit = 3;	/* checked for series not cached, as Prometheus */
	assert_int_equal(pull(&e, pa, "# strata-pull 1 13000 15000\nS m{instance=\"src:1\",site=\"s\"}\n"
	    "14500 6\nS fresh{a=\"1\",b=\"2\"}\n14500 1\n# EOF\n", 13000, &win), -1);
	assert_true(e.r.label_limits);
	assert_string_equal(e.err, "label_limit exceeded (metric: fresh, number of labels: 5, limit: 3)");
	e.conf.label_limit = 0;
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_int_equal(s.n, 4);
	select_series(e.h, &s, "__name__", "n", NULL);
	assert_int_equal(s.n, 4);
	/* and the next good body goes in whole */
	assert_int_equal(pull(&e, pa, "# strata-pull 1 13000 15000\nS m{instance=\"src:1\",site=\"s\"}\n"
	    "14500 6\n14600 7\n# EOF\n", 13000, &win), 0);
	select_series(e.h, &s, "__name__", "m", NULL);
	assert_true(s.n == 6 && s.v[5] == 7);
	/* drop_me was in none of the last SCRAPE_PULL_CACHE_KEEP + 1 pulls */
	assert_int_equal(scrape_cache_size(e.c), 2);
	tsdb_appender_free(pa);
	env_free(&e);
	labels_free(hs.dedup);
	cfg_free(c);
}

/* Scrapes and pulls on one cache (a source that turns into a strata server
 * and back): a pull ends the staleness tracking of the scrape before it,
 * a failed pull marks that scrape's series stale, and a target that goes
 * away after a pull gets no markers for them. */
static void
test_cache_scrape_pull_mix(void **state)
{
	struct cache_env e;
	struct tsdb_appender *pa;
	struct scrape_pull_window win;
	struct samples s;

	(void)state;
	env_init(&e);
	pa = tsdb_appender_new_unrestricted(e.h);
	assert_int_equal(scrape(&e, "a 1\nb 1\n", 1000), 0);
	assert_int_equal(pull(&e, pa, "# strata-pull 1 1000 2000\nS c\n1500 1\n# EOF\n", 1000,
	    &win), 0);
	assert_int_equal(scrape(&e, "a 2\n", 3000), 0);
	select_series(e.h, &s, "__name__", "b", NULL);
	assert_true(s.n == 1 && s.v[0] == 1);	/* the pull came between: no marker */
	assert_int_equal(scrape(&e, "a 3\nb 3\n", 4000), 0);
	assert_int_equal(pull(&e, pa, "bad\n", 2000, &win), -1);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.n == 4 && s.t[3] == 100000 && is_stale(s.v[3]));
	select_series(e.h, &s, "__name__", "b", NULL);
	assert_true(s.n == 3 && s.t[2] == 100000 && is_stale(s.v[2]));
	select_series(e.h, &s, "__name__", "c", NULL);
	assert_int_equal(s.n, 1);
	assert_int_equal(scrape(&e, "a 4\n", 101000), 0);
	assert_int_equal(scrape(&e, "a 5\n", 102000), 0);
	select_series(e.h, &s, "__name__", "b", NULL);
	assert_int_equal(s.n, 3);
	assert_int_equal(pull(&e, pa, "# strata-pull 1 2000 103000\nS c\n102500 2\n# EOF\n",
	    2000, &win), 0);
	scrape_cache_end_of_run(e.c, e.app, e.target, 104000);
	tsdb_appender_commit(e.app);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.n == 6 && s.t[5] == 102000 && s.v[5] == 5);
	select_series(e.h, &s, "__name__", "c", NULL);
	assert_true(s.n == 2 && s.v[1] == 2);
	tsdb_appender_free(pa);
	env_free(&e);

	/* the same without the pull: end of run marks a */
	env_init(&e);
	assert_int_equal(scrape(&e, "a 1\n", 1000), 0);
	scrape_cache_end_of_run(e.c, e.app, e.target, 2000);
	tsdb_appender_commit(e.app);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_true(s.n == 2 && s.t[1] == 2000 && is_stale(s.v[1]));
	env_free(&e);
}

/* --- the manager over HTTP ---------------------------------------------------------- */

/* A route of the test server: what it answers and what it saw. */
struct troute {
	const char *path;
	int status;
	const char *ctype;
	const char *body;
	int delay_ms;
	int nreq;
	char accept[256], ua[64], tmo[32], ae[64], auth[256];
	bool compressed;
	const char *location;	/* a Location header to send */
	const char *cenc;	/* a Content-Encoding to send (body sent as is) */
	size_t body_len;	/* 0: strlen(body) */
};

static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;
static int stop_hang;	/* atomic */

static void
copy_hdr(struct http_request *req, const char *name, char *dst, size_t len)
{
	const char *v = http_request_header(req, name);

	snprintf(dst, len, "%s", v != NULL ? v : "");
}

static int
h_route(struct http_request *req, void *arg)
{
	struct troute *r = arg;
	int waited = 0;
	const char *body;
	int status;

	pthread_mutex_lock(&tmu);
	r->nreq++;
	copy_hdr(req, "Accept", r->accept, sizeof(r->accept));
	copy_hdr(req, "User-Agent", r->ua, sizeof(r->ua));
	copy_hdr(req, "X-Prometheus-Scrape-Timeout-Seconds", r->tmo, sizeof(r->tmo));
	copy_hdr(req, "Accept-Encoding", r->ae, sizeof(r->ae));
	copy_hdr(req, "Authorization", r->auth, sizeof(r->auth));
	r->compressed = http_request_compresses(req);
	body = r->body;
	status = r->status;
	pthread_mutex_unlock(&tmu);
	while (waited < r->delay_ms && !__atomic_load_n(&stop_hang, __ATOMIC_RELAXED)) {
		usleep(10000);
		waited += 10;
	}
	if (r->location != NULL)
		(void)http_response_header(req, "Location", r->location);
	if (r->cenc != NULL)
		(void)http_response_header(req, "Content-Encoding", r->cenc);
	return http_respond_data(req, status, r->ctype, body,
	    r->body_len ? r->body_len : strlen(body));
}

static struct http_server *
start_server(struct troute *routes, size_t n, int *port)
{
	struct http_server_opts o;
	struct http_server *srv;
	char err[256];
	size_t i;

	http_server_opts_default(&o);
	o.threads = 0;
	srv = http_server_new("127.0.0.1:0", &o, err, sizeof(err));
	assert_non_null(srv);
	for (i = 0; i < n; i++)
		assert_int_equal(http_server_route(srv, HTTP_GET, routes[i].path,
		    routes[i].cenc != NULL ? 0 : HTTP_ROUTE_GZIP, h_route, &routes[i]), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	*port = http_server_port(srv);
	return srv;
}

/* free_port returns a port nothing listens on. */
static int
free_port(void)
{
	char err[256];
	struct http_server *srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	int p;

	assert_non_null(srv);
	p = http_server_port(srv);
	http_server_free(srv);
	return p;
}

static char test_owned[64];
static pthread_mutex_t owned_mu = PTHREAD_MUTEX_INITIALIZER;

/* test_owns owns the target whose address is test_owned. */
static bool
test_owns(void *arg, const struct labels *ls)
{
	const char *a = labels_get(ls, "__address__");
	bool own;

	(void)arg;
	if (labels_get(ls, "__scheme__") == NULL)
		return false;
	pthread_mutex_lock(&owned_mu);
	own = strcmp(a, test_owned) == 0 || strncmp(a, "127.0.0.1:", 10) != 0 ||
	    strstr(test_owned, "all") != NULL;
	pthread_mutex_unlock(&owned_mu);
	return own;
}

static void set_owned(const char *a);

static void
set_owned(const char *a)
{
	pthread_mutex_lock(&owned_mu);
	snprintf(test_owned, sizeof(test_owned), "%s", a);
	pthread_mutex_unlock(&owned_mu);
}

struct menv {
	struct tsdb_head *h;
	struct scrape_manager *m;
	struct cfg *cfg[4];
	size_t ncfg;
};

static void
menv_init(struct menv *e, bool (*owns)(void *, const struct labels *))
{
	struct scrape_opts o;
	char err[256];

	memset(e, 0, sizeof(*e));
	e->h = new_head();
	memset(&o, 0, sizeof(o));
	o.head = e->h;
	o.user_agent = "strata-test/1";
	o.workers = 2;
	o.sd_poll_ms = 100;
	o.owns = owns;
	e->m = scrape_manager_new(&o, err, sizeof(err));
	assert_non_null(e->m);
}

static void
menv_apply(struct menv *e, const char *yaml)
{
	char err[512];

	assert_true(e->ncfg < 4);
	e->cfg[e->ncfg] = load_cfg(yaml);
	if (scrape_manager_apply(e->m, e->cfg[e->ncfg], err, sizeof(err)) != 0)
		fail_msg("apply: %s", err);
	e->ncfg++;
}

static void
menv_free(struct menv *e)
{
	size_t i;

	scrape_manager_free(e->m);
	for (i = 0; i < e->ncfg; i++)
		cfg_free(e->cfg[i]);
	tsdb_head_free(e->h);
}

/* target_info finds the target of pool whose scrape URL contains url_part
 * (or, for dropped ones, whose discovered __address__ equals it). */
static bool
target_info(struct scrape_manager *m, const char *pool, const char *part,
    struct scrape_target_info *out)
{
	struct scrape_target_info *v;
	size_t n, i;
	bool found = false;

	assert_int_equal(scrape_manager_targets(m, &v, &n), 0);
	for (i = 0; i < n && !found; i++) {
		const char *a = labels_get(v[i].discovered, "__address__");

		if (strcmp(v[i].pool, pool) != 0)
			continue;
		if ((v[i].scrape_url != NULL && strstr(v[i].scrape_url, part) != NULL) ||
		    (v[i].scrape_url == NULL && a != NULL && strcmp(a, part) == 0)) {
			*out = v[i];
			out->pool = NULL;
			out->discovered = labels_ref(v[i].discovered);
			out->labels = labels_ref(v[i].labels);
			out->scrape_url = xdup(v[i].scrape_url);
			out->last_error = xdup(v[i].last_error);
			out->address = xdup(v[i].address);
			out->global_url = NULL;
			found = true;
		}
	}
	scrape_target_info_free(v, n);
	return found;
}

static void
info_clear(struct scrape_target_info *x)
{
	labels_free(x->discovered);
	labels_free(x->labels);
	mem_free(x->scrape_url);
	mem_free(x->last_error);
	mem_free(x->address);
	memset(x, 0, sizeof(*x));
}

/* wait_scraped waits until the target of pool (url part) has been scraped
 * at least n times (health known and n up samples), at most 5 s. */
static void
wait_up_samples(struct menv *e, const char *job, size_t n)
{
	struct samples s;
	int i;

	for (i = 0; i < 250; i++) {
		select_series(e->h, &s, "__name__", "up", "job", job, NULL);
		if (s.n >= n)
			return;
		usleep(20000);
	}
	fail_msg("job %s: %zu up samples after 5 s, wanted %zu", job, s.n, n);
}

#define JOB(name, path, extra) \
	"  - job_name: " name "\n    scrape_interval: 300ms\n    scrape_timeout: 250ms\n" \
	"    metrics_path: " path "\n" extra

static void
test_manager_basic(void **state)
{
	struct troute r[] = {
		{ .path = "/metrics", .status = 200, .ctype = "text/plain; version=0.0.4", .body = "# TYPE a gauge\na 1\nb{x=\"y\"} 2\n" },
		{ .path = "/om", .status = 200, .ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8", .body = "# TYPE c counter\nc_total 5\n# EOF\n" },
	};
	struct menv e;
	struct http_server *srv;
	struct strbuf y = STRBUF_INIT;
	struct scrape_target_info ti;
	struct samples s;
	int port;
	size_t i;
	char want[128];

	(void)state;
	srv = start_server(r, 2, &port);
	menv_init(&e, NULL);
	strbuf_printf(&y, "scrape_configs:\n"
	    JOB("basic", "/metrics", "    static_configs:\n      - targets: ['127.0.0.1:%d', '127.0.0.1:%d']\n"
	    "        labels: {team: a}\n")
	    JOB("om", "/om", "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"),
	    port, port, port);
	menv_apply(&e, strbuf_cstr(&y));
	wait_up_samples(&e, "basic", 3);
	wait_up_samples(&e, "om", 1);

	/* the duplicate target is scraped once */
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(s.nseries, 1);
	snprintf(want, sizeof(want), "{__name__=\"a\", instance=\"127.0.0.1:%d\", job=\"basic\", team=\"a\"}", port);
	assert_string_equal(s.ls, want);
	assert_true(s.v[0] == 1);
	/* timestamps on the phase grid: one phase, 300 ms apart */
	select_series(e.h, &s, "__name__", "up", "job", "basic", NULL);
	for (i = 1; i < s.n; i++) {
		assert_int_equal(s.v[i], 1);
		if (s.t[i] - s.t[i - 1] < 240 || s.t[i] - s.t[i - 1] > 360)
			fail_msg("up at %lld then %lld", (long long)s.t[i - 1], (long long)s.t[i]);
	}
	select_series(e.h, &s, "__name__", "c_total", NULL);
	assert_true(s.n >= 1 && s.v[0] == 5);

	assert_true(target_info(e.m, "basic", "/metrics", &ti));
	assert_true(ti.active);
	assert_int_equal(ti.health, SCRAPE_UP);
	assert_string_equal(ti.last_error, "");
	snprintf(want, sizeof(want), "http://127.0.0.1:%d/metrics", port);
	assert_string_equal(ti.scrape_url, want);
	assert_int_equal(ti.interval_ms, 300);
	assert_int_equal(ti.timeout_ms, 250);
	assert_true(ti.last_scrape_ms > 0 && ti.last_duration_s > 0);
	assert_non_null(labels_get(ti.discovered, "__scrape_interval__"));
	assert_null(labels_get(ti.labels, "__address__"));
	info_clear(&ti);

	/* the request as Prometheus sends it */
	pthread_mutex_lock(&tmu);
	assert_string_equal(r[0].accept, "application/openmetrics-text;version=1.0.0,"
	    "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
	assert_string_equal(r[0].ua, "strata-test/1");
	assert_string_equal(r[0].tmo, "0.25");
	assert_non_null(strstr(r[0].ae, "gzip"));
	assert_true(r[0].compressed);	/* the body came gzip'ed and was read */
	assert_string_equal(r[0].auth, "");
	pthread_mutex_unlock(&tmu);

	{
		struct scrape_stats st;

		scrape_manager_stats(e.m, &st);
		assert_true(st.scrapes >= 4);
		assert_int_equal(st.scrapes_failed, 0);
		assert_int_equal(st.n_pools, 2);
		assert_string_equal(st.pools[0].pool, "basic");
		assert_int_equal(st.pools[0].targets, 1);
		assert_int_equal(st.pools[0].discovered, 2);
		assert_int_equal(st.n_intervals, 1);
		assert_int_equal(st.intervals[0].interval_ms, 300);
		assert_true(st.intervals[0].count >= 2);
		assert_true(st.intervals[0].q[2] > 0.25 && st.intervals[0].q[2] < 0.35);
		scrape_stats_free(&st);
	}
	menv_free(&e);
	http_server_free(srv);
	strbuf_free(&y);
}

static void
test_manager_auth(void **state)
{
	struct troute r[] = {
		{ .path = "/basic", .status = 200, .ctype = "text/plain", .body = "a 1\n" },
		{ .path = "/bearer", .status = 200, .ctype = "text/plain", .body = "a 1\n" },
		{ .path = "/credfile", .status = 200, .ctype = "text/plain", .body = "a 1\n" },
	};
	char pwfile[] = "/tmp/strata-scrape-pw-XXXXXX", tokfile[] = "/tmp/strata-scrape-tok-XXXXXX";
	struct strbuf y = STRBUF_INIT;
	struct http_server *srv;
	struct menv e;
	int port, fd;

	(void)state;
	fd = mkstemp(pwfile);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, " s3cret\n", 8), 8);
	close(fd);
	fd = mkstemp(tokfile);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "tok-from-file\n", 14), 14);
	close(fd);
	srv = start_server(r, 3, &port);
	menv_init(&e, NULL);
	strbuf_printf(&y, "scrape_configs:\n"
	    JOB("basic", "/basic", "    basic_auth:\n      username: alice\n      password_file: %s\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("bearer", "/bearer", "    bearer_token: tok\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("credfile", "/credfile", "    authorization:\n      type: Token\n      credentials_file: %s\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"),
	    pwfile, port, port, tokfile, port);
	menv_apply(&e, strbuf_cstr(&y));
	wait_up_samples(&e, "basic", 1);
	wait_up_samples(&e, "bearer", 1);
	wait_up_samples(&e, "credfile", 1);
	pthread_mutex_lock(&tmu);
	/* base64("alice:s3cret") */
	assert_string_equal(r[0].auth, "Basic YWxpY2U6czNjcmV0");
	assert_string_equal(r[1].auth, "Bearer tok");
	assert_string_equal(r[2].auth, "Token tok-from-file");
	pthread_mutex_unlock(&tmu);

	/* an unreadable credentials file fails the scrape with Prometheus' words */
	unlink(tokfile);
	{
		struct scrape_target_info ti;
		int i;

		for (i = 0; i < 100; i++) {
			assert_true(target_info(e.m, "credfile", "/credfile", &ti));
			if (ti.health == SCRAPE_DOWN)
				break;
			info_clear(&ti);
			usleep(20000);
		}
		assert_int_equal(ti.health, SCRAPE_DOWN);
		if (strstr(ti.last_error, "unable to read authorization credentials file") == NULL)
			fail_msg("last error: %s", ti.last_error);
		info_clear(&ti);
	}
	menv_free(&e);
	http_server_free(srv);
	unlink(pwfile);
	strbuf_free(&y);
}

/* one bad target of each kind next to a good one: each is down with a clear
 * error, the good one is scraped on time all along */
static void
test_manager_bad_targets(void **state)
{
	static char big[4096];
	struct troute r[] = {
		{ .path = "/good", .status = 200, .ctype = "text/plain", .body = "g 1\n" },
		{ .path = "/garbage", .status = 200, .ctype = "text/plain", .body = "ok 1\nthis is { not an exposition\n" },
		{ .path = "/500", .status = 500, .ctype = "text/plain", .body = "boom\n" },
		{ .path = "/big", .status = 200, .ctype = "text/plain", .body = big },
		{ .path = "/hang", .status = 200, .ctype = "text/plain", .body = "h 1\n", .delay_ms = 3000 },
		{ .path = "/many", .status = 200, .ctype = "text/plain", .body = "m1 1\nm2 1\nm3 1\n" },
		{ .path = "/redir", .status = 302, .ctype = "text/plain", .body = "", .location = "/good" },
	};
	static const struct {
		const char *job, *err;
	} want[] = {
		{ "garbage", "2:6: " },
		{ "e500", "server returned HTTP status 500 Internal Server Error" },
		{ "big", "body size limit exceeded" },
		{ "hang", "/hang\": context deadline exceeded" },
		{ "many", "sample limit exceeded" },
		{ "refused", ": connect: connection refused" },
		{ "noredir", "server returned HTTP status 302 Found" },
	};
	struct strbuf y = STRBUF_INIT;
	struct http_server *srv;
	struct menv e;
	struct samples s;
	int port, dead = free_port();
	size_t i;
	int64_t t0;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "# ", 2);
	big[sizeof(big) - 2] = '\n';
	__atomic_store_n(&stop_hang, 0, __ATOMIC_RELAXED);
	srv = start_server(r, 7, &port);
	menv_init(&e, NULL);
	strbuf_printf(&y, "scrape_configs:\n"
	    JOB("good", "/good", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("garbage", "/garbage", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("e500", "/500", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("big", "/big", "    body_size_limit: 1KB\n    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("hang", "/hang", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("many", "/many", "    sample_limit: 2\n    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("refused", "/metrics", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("redir", "/redir", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("noredir", "/redir", "    follow_redirects: false\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"),
	    port, port, port, port, port, port, dead, port, port);
	t0 = time_now_ms();
	menv_apply(&e, strbuf_cstr(&y));
	wait_up_samples(&e, "hang", 2);
	wait_up_samples(&e, "good", 5);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct scrape_target_info ti;
		char ws[128];

		snprintf(ws, sizeof(ws), "127.0.0.1:%d", want[i].job[0] == 'r' ? dead : port);
		assert_true(target_info(e.m, want[i].job, ws, &ti));
		if (ti.health != SCRAPE_DOWN || strstr(ti.last_error, want[i].err) == NULL)
			fail_msg("%s: health %d, last error '%s', wanted '%s'", want[i].job,
			    ti.health, ti.last_error, want[i].err);
		info_clear(&ti);
		select_series(e.h, &s, "__name__", "up", "job", want[i].job, NULL);
		assert_true(s.n >= 1 && s.v[s.n - 1] == 0);
	}
	/* the good target: up all along, one scrape per interval */
	select_series(e.h, &s, "__name__", "up", "job", "good", NULL);
	for (i = 0; i < s.n; i++)
		assert_true(s.v[i] == 1);
	for (i = 1; i < s.n; i++)
		assert_true(s.t[i] - s.t[i - 1] <= 360);
	assert_true(s.n >= (size_t)((time_now_ms() - t0) / 300) - 2);
	/* a followed redirect reads the good body */
	select_series(e.h, &s, "__name__", "up", "job", "redir", NULL);
	assert_true(s.n >= 1 && s.v[s.n - 1] == 1);
	select_series(e.h, &s, "__name__", "g", "job", "redir", NULL);
	assert_true(s.n >= 1);
	/* nothing of the failed bodies was stored */
	select_series(e.h, &s, "__name__", "ok", NULL);
	assert_int_equal(s.n, 0);
	select_series(e.h, &s, "__name__", "m1", NULL);
	assert_int_equal(s.n, 0);
	{
		struct scrape_stats st;

		scrape_manager_stats(e.m, &st);
		assert_true(st.exceeded_sample_limit >= 1);
		assert_true(st.exceeded_body_size_limit >= 1);
		assert_true(st.scrapes_failed >= 7);
		scrape_stats_free(&st);
	}
	__atomic_store_n(&stop_hang, 1, __ATOMIC_RELAXED);
	menv_free(&e);
	http_server_free(srv);
	strbuf_free(&y);
}

/* gz returns data gzip'ed (caller frees), its length in *out. */
static char *
gz(const char *data, size_t len, size_t *out)
{
	z_stream zs;
	size_t cap = len + len / 10 + 1024;
	char *buf = mem_alloc(cap);

	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)buf;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out = zs.total_out;
	deflateEnd(&zs);
	return buf;
}

/* gzip bodies the worker inflates: two members, a bomb over the limit,
 * a truncated body, a body that is not gzip */
static void
test_manager_gzip(void **state)
{
	size_t l1, l2, lbomb, i;
	char *m1 = gz("# TYPE p gauge\np 1\n", 19, &l1);
	char *m2 = gz("q 2\n", 4, &l2);
	char *zeros = mem_calloc(4u << 20, 1);
	char *bomb, *two = mem_alloc(l1 + l2);
	struct strbuf y = STRBUF_INIT;
	struct http_server *srv;
	struct menv e;
	struct samples s;
	int port;
	static const struct {
		const char *job, *err;
	} want[] = {
		{ "gzbomb", "body size limit exceeded" },
		{ "gztrunc", "unexpected EOF" },
		{ "gzbad", "gzip: invalid header" },
	};

	(void)state;
	memset(zeros, '#', 4u << 20);
	bomb = gz(zeros, 4u << 20, &lbomb);
	assert_true(lbomb < (64u << 10));
	memcpy(two, m1, l1);
	memcpy(two + l1, m2, l2);
	{
		struct troute r[] = {
			{ .path = "/gzok", .status = 200, .ctype = "text/plain", .body = two,
			  .body_len = l1 + l2, .cenc = "gzip" },
			{ .path = "/gzbomb", .status = 200, .ctype = "text/plain", .body = bomb,
			  .body_len = lbomb, .cenc = "gzip" },
			{ .path = "/gztrunc", .status = 200, .ctype = "text/plain", .body = m1,
			  .body_len = l1 - 6, .cenc = "gzip" },
			{ .path = "/gzbad", .status = 200, .ctype = "text/plain", .body = "p 1\n",
			  .cenc = "gzip" },
			{ .path = "/identity", .status = 200, .ctype = "text/plain", .body = "p 1\n",
			  .cenc = "identity" },
		};

		srv = start_server(r, 5, &port);
		menv_init(&e, NULL);
		strbuf_printf(&y, "scrape_configs:\n"
		    JOB("gzok", "/gzok", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
		    JOB("gzbomb", "/gzbomb", "    body_size_limit: 1MB\n"
		    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
		    JOB("gztrunc", "/gztrunc", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
		    JOB("gzbad", "/gzbad", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
		    JOB("identity", "/identity", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"),
		    port, port, port, port, port);
		menv_apply(&e, strbuf_cstr(&y));
		wait_up_samples(&e, "gzok", 1);
		wait_up_samples(&e, "gzbad", 1);
		wait_up_samples(&e, "gzbomb", 1);
		wait_up_samples(&e, "gztrunc", 1);
		wait_up_samples(&e, "identity", 1);
		select_series(e.h, &s, "__name__", "p", "job", "gzok", NULL);
		assert_true(s.n >= 1 && s.v[0] == 1);
		select_series(e.h, &s, "__name__", "q", "job", "gzok", NULL);
		assert_true(s.n >= 1 && s.v[0] == 2);
		select_series(e.h, &s, "__name__", "p", "job", "identity", NULL);
		assert_true(s.n >= 1);
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			struct scrape_target_info ti;

			assert_true(target_info(e.m, want[i].job, "127.0.0.1", &ti));
			if (ti.health != SCRAPE_DOWN || strcmp(ti.last_error, want[i].err) != 0)
				fail_msg("%s: health %d, last error '%s', wanted '%s'", want[i].job,
				    ti.health, ti.last_error, want[i].err);
			info_clear(&ti);
		}
		{
			struct scrape_stats st;

			scrape_manager_stats(e.m, &st);
			assert_true(st.exceeded_body_size_limit >= 1);
			scrape_stats_free(&st);
		}
		menv_free(&e);
		http_server_free(srv);
	}
	mem_free(m1);
	mem_free(m2);
	mem_free(two);
	mem_free(bomb);
	mem_free(zeros);
	strbuf_free(&y);
}

static size_t
count_stale(const struct samples *s)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += is_stale(s->v[i]);
	return n;
}

/* a reload keeps unchanged targets (same cache: scrape_series_added stays
 * 0, no gap, no stale marker), restarts those whose metric handling
 * changed, and retires removed ones with stale markers */
static void
test_manager_reload(void **state)
{
	struct troute r[] = {
		{ .path = "/a", .status = 200, .ctype = "text/plain", .body = "a 1\n" },
		{ .path = "/b", .status = 200, .ctype = "text/plain", .body = "b 1\n" },
	};
	struct strbuf y1 = STRBUF_INIT, y2 = STRBUF_INIT, y3 = STRBUF_INIT;
	struct http_server *srv;
	struct menv e;
	struct samples s;
	int port, i;
	size_t n_before, k;
	int64_t t_reload;

	(void)state;
	srv = start_server(r, 2, &port);
	menv_init(&e, NULL);
	strbuf_printf(&y1, "scrape_configs:\n"
	    JOB("a", "/a", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("b", "/b", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"), port, port);
	/* b removed; a unchanged (a new sample_limit does not touch the cache) */
	strbuf_printf(&y2, "scrape_configs:\n"
	    JOB("a", "/a", "    sample_limit: 100\n    static_configs: [{targets: ['127.0.0.1:%d']}]\n"), port);
	/* a's metric relabeling changes: the target restarts with a new cache */
	strbuf_printf(&y3, "scrape_configs:\n"
	    JOB("a", "/a", "    metric_relabel_configs: [{target_label: r, replacement: x}]\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"), port);
	menv_apply(&e, strbuf_cstr(&y1));
	wait_up_samples(&e, "a", 2);
	wait_up_samples(&e, "b", 2);

	select_series(e.h, &s, "__name__", "up", "job", "a", NULL);
	n_before = s.n;
	t_reload = time_now_ms();
	menv_apply(&e, strbuf_cstr(&y2));
	wait_up_samples(&e, "a", n_before + 4);
	select_series(e.h, &s, "__name__", "scrape_series_added", "job", "a", NULL);
	assert_true(s.v[0] == 1);
	for (k = 1; k < s.n; k++)
		assert_true(s.v[k] == 0);
	select_series(e.h, &s, "__name__", "up", "job", "a", NULL);
	for (k = 1; k < s.n; k++)
		assert_true(s.t[k] - s.t[k - 1] >= 240 && s.t[k] - s.t[k - 1] <= 360);
	assert_int_equal(count_stale(&s), 0);
	select_series(e.h, &s, "__name__", "a", NULL);
	assert_int_equal(count_stale(&s), 0);

	/* b: stale markers for its series and its synthetic ones, stamped with
	 * the scrape that would have come next, written about 2.1 intervals on */
	for (i = 0; i < 100; i++) {
		select_series(e.h, &s, "__name__", "b", NULL);
		if (s.n > 0 && is_stale(s.v[s.n - 1]))
			break;
		usleep(20000);
	}
	assert_true(s.n > 0 && is_stale(s.v[s.n - 1]));
	assert_true(s.t[s.n - 1] > s.t[s.n - 2] && s.t[s.n - 1] <= s.t[s.n - 2] + 360);
	assert_true(s.t[s.n - 1] >= t_reload - 10);
	select_series(e.h, &s, "__name__", "up", "job", "b", NULL);
	assert_true(is_stale(s.v[s.n - 1]));
	assert_false(target_info(e.m, "b", "/b", &(struct scrape_target_info){ 0 }));

	/* restart: new cache (series added again), the old loop's markers lose
	 * to the new loop's samples, so a never reads as stale */
	select_series(e.h, &s, "__name__", "up", "job", "a", NULL);
	n_before = s.n;
	menv_apply(&e, strbuf_cstr(&y3));
	wait_up_samples(&e, "a", n_before + 5);
	select_series(e.h, &s, "__name__", "scrape_series_added", "job", "a", NULL);
	for (k = 0, i = 0; k < s.n; k++)
		i += s.v[k] == 1;
	assert_int_equal(i, 2);
	select_series(e.h, &s, "__name__", "up", "job", "a", NULL);
	assert_int_equal(count_stale(&s), 0);
	select_series(e.h, &s, "__name__", "a", "r", "x", NULL);
	assert_true(s.n >= 3);
	/* the series before the change went stale (it is no longer exposed) */
	{
		struct matcher *ms[2];
		char err[64];
		struct tsdb_series_set *ss;
		int found = 0;

		ms[0] = matcher_new(MATCH_EQUAL, "__name__", "a", err, sizeof(err));
		ms[1] = matcher_new(MATCH_EQUAL, "r", "", err, sizeof(err));
		ss = tsdb_head_select(e.h, ms, 2, INT64_MIN, INT64_MAX);
		while (tsdb_series_set_next(ss)) {
			struct tsdb_iter *it = tsdb_series_set_iter(ss);
			int64_t t;
			double v = 0;

			while (tsdb_iter_next(it, &t, &v))
				;
			found = 1;
			assert_true(is_stale(v));
		}
		assert_int_equal(found, 1);
		tsdb_series_set_free(ss);
		matcher_free(ms[0]);
		matcher_free(ms[1]);
	}
	menv_free(&e);
	http_server_free(srv);
	strbuf_free(&y1);
	strbuf_free(&y2);
	strbuf_free(&y3);
}

static void
write_file(const char *path, const char *text)
{
	char tmp[256];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

static bool
wait_target(struct menv *e, const char *pool, const char *part, bool present)
{
	struct scrape_target_info ti;
	int i;

	for (i = 0; i < 150; i++) {
		bool f = target_info(e->m, pool, part, &ti);

		if (f)
			info_clear(&ti);
		if (f == present)
			return true;
		usleep(20000);
	}
	return false;
}

static void
test_manager_file_sd(void **state)
{
	struct troute r[] = {
		{ .path = "/metrics", .status = 200, .ctype = "text/plain", .body = "f 1\n" },
	};
	char dir[] = "/tmp/strata-scrape-sd-XXXXXX", path[300], a[64], b[64], txt[512];
	struct strbuf y = STRBUF_INIT;
	struct http_server *srv, *srv2;
	struct scrape_target_info ti;
	struct samples s;
	struct menv e;
	int port, port2;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/targets.json", dir);
	srv = start_server(r, 1, &port);
	srv2 = start_server(r, 1, &port2);
	snprintf(a, sizeof(a), "127.0.0.1:%d", port);
	snprintf(b, sizeof(b), "127.0.0.1:%d", port2);
	snprintf(txt, sizeof(txt), "[{\"targets\": [\"%s\"], \"labels\": {\"env\": \"t\"}}]\n", a);
	write_file(path, txt);
	menv_init(&e, NULL);
	strbuf_printf(&y, "scrape_configs:\n"
	    JOB("sd", "/metrics", "    file_sd_configs: [{files: ['%s/*.json'], refresh_interval: 1h}]\n"), dir);
	menv_apply(&e, strbuf_cstr(&y));
	assert_true(target_info(e.m, "sd", a, &ti));
	assert_string_equal(labels_get(ti.discovered, "__meta_filepath"), path);
	assert_string_equal(labels_get(ti.labels, "env"), "t");
	info_clear(&ti);
	assert_false(target_info(e.m, "sd", b, &ti));

	/* a second target appears in the file: picked up by the mtime poll */
	snprintf(txt, sizeof(txt), "[{\"targets\": [\"%s\", \"%s\"], \"labels\": {\"env\": \"t\"}}]\n", a, b);
	write_file(path, txt);
	assert_true(wait_target(&e, "sd", b, true));
	select_series(e.h, &s, "__name__", "f", "instance", b, NULL);
	for (int i = 0; i < 100 && s.n == 0; i++) {
		usleep(20000);
		select_series(e.h, &s, "__name__", "f", "instance", b, NULL);
	}
	assert_true(s.n >= 1);

	/* a broken file keeps the targets it had */
	write_file(path, "[{\"targets\": [\"x\"");
	usleep(400000);
	assert_true(target_info(e.m, "sd", b, &ti));
	info_clear(&ti);
	{
		struct scrape_stats st;

		scrape_manager_stats(e.m, &st);
		assert_true(st.sd_file_read_errors >= 1);
		scrape_stats_free(&st);
	}

	/* b leaves the file: retired, its series go stale */
	snprintf(txt, sizeof(txt), "[{\"targets\": [\"%s\"]}]\n", a);
	write_file(path, txt);
	assert_true(wait_target(&e, "sd", b, false));
	for (int i = 0; i < 100; i++) {
		select_series(e.h, &s, "__name__", "f", "instance", b, NULL);
		if (is_stale(s.v[s.n - 1]))
			break;
		usleep(20000);
	}
	assert_true(is_stale(s.v[s.n - 1]));
	/* a's env label went with the group: a is a new target (labels changed) */
	assert_true(target_info(e.m, "sd", a, &ti));
	assert_null(labels_get(ti.labels, "env"));
	info_clear(&ti);

	menv_free(&e);
	http_server_free(srv);
	http_server_free(srv2);
	unlink(path);
	rmdir(dir);
	strbuf_free(&y);
}

static void
test_manager_owns_and_limits(void **state)
{
	struct troute r[] = {
		{ .path = "/metrics", .status = 200, .ctype = "text/plain", .body = "o 1\n" },
	};
	struct troute r2[] = {
		{ .path = "/metrics", .status = 200, .ctype = "text/plain", .body = "o 1\n" },
	};
	struct troute r3[] = {
		{ .path = "/limited", .status = 200, .ctype = "text/plain", .body = "l 1\n" },
	};
	struct strbuf y = STRBUF_INIT;
	struct http_server *s1, *s2, *s3;
	struct scrape_target_info ti;
	struct menv e;
	struct samples s;
	int p1, p2, p3, i;
	char a1[64], a2[64], *even, *odd;

	(void)state;
	s1 = start_server(r, 1, &p1);
	s2 = start_server(r2, 1, &p2);
	s3 = start_server(r3, 1, &p3);
	snprintf(a1, sizeof(a1), "127.0.0.1:%d", p1);
	snprintf(a2, sizeof(a2), "127.0.0.1:%d", p2);
	even = a1;	/* owned first */
	odd = a2;
	set_owned(even);
	menv_init(&e, test_owns);
	strbuf_printf(&y, "scrape_configs:\n"
	    JOB("own", "/metrics", "    static_configs: [{targets: ['%s', '%s']}]\n")
	    JOB("limited", "/limited", "    target_limit: 1\n"
	    "    static_configs: [{targets: ['localhost:%d', 'other.invalid:%d']}]\n"),
	    a1, a2, p3, p3);
	menv_apply(&e, strbuf_cstr(&y));

	/* the odd one is not owned: listed as dropped with its discovered
	 * labels and its address after relabeling */
	assert_true(target_info(e.m, "own", odd, &ti));
	assert_false(ti.active);
	assert_null(ti.labels);
	assert_null(ti.scrape_url);
	assert_string_equal(ti.address, odd);
	info_clear(&ti);
	assert_true(target_info(e.m, "own", even, &ti));
	assert_true(ti.active);
	assert_string_equal(ti.address, even);
	assert_false(ti.pull);
	info_clear(&ti);
	wait_up_samples(&e, "own", 2);
	select_series(e.h, &s, "__name__", "up", "instance", odd, NULL);
	assert_int_equal(s.n, 0);

	/* target_limit: every target of the job fails without a request */
	for (i = 0; i < 100; i++) {
		assert_true(target_info(e.m, "limited", "localhost", &ti));
		if (ti.health == SCRAPE_DOWN)
			break;
		info_clear(&ti);
		usleep(20000);
	}
	assert_string_equal(ti.last_error, "target_limit exceeded (number of targets: 2, limit: 1)");
	info_clear(&ti);
	pthread_mutex_lock(&tmu);
	assert_int_equal(r3[0].nreq, 0);
	pthread_mutex_unlock(&tmu);

	/* ownership flips: the odd target starts, the even one is retired */
	set_owned(odd);
	scrape_manager_resync(e.m);
	assert_true(target_info(e.m, "own", even, &ti));
	assert_false(ti.active);
	info_clear(&ti);
	for (i = 0; i < 100; i++) {
		select_series(e.h, &s, "__name__", "up", "instance", odd, NULL);
		if (s.n >= 1)
			break;
		usleep(20000);
	}
	assert_true(s.n >= 1 && s.v[0] == 1);
	for (i = 0; i < 100; i++) {
		select_series(e.h, &s, "__name__", "o", "instance", even, NULL);
		if (s.n > 0 && is_stale(s.v[s.n - 1]))
			break;
		usleep(20000);
	}
	assert_true(is_stale(s.v[s.n - 1]));

	menv_free(&e);
	http_server_free(s1);
	http_server_free(s2);
	http_server_free(s3);
	strbuf_free(&y);
}

/* stop writes no stale markers; apply after stop fails */
struct mdm {
	char v[8][160];
	size_t n;
};

static void
mdm_emit(void *ctx, const struct scrape_metadata *md)
{
	struct mdm *l = ctx;

	if (l->n < 8)
		snprintf(l->v[l->n++], sizeof(l->v[0]), "%s|%s|%s|%s", md->metric, md->type,
		    md->help, md->unit);
}

/* Metadata of every active target, merged: what /api/v1/metadata lists. */
static void
test_manager_metadata(void **state)
{
	struct troute r[] = {
		{ .path = "/one", .status = 200, .ctype = "text/plain",
		  .body = "# HELP a First.\n# TYPE a counter\na 1\n# TYPE b gauge\nb 1\n" },
		{ .path = "/two", .status = 200, .ctype = "text/plain",
		  .body = "# HELP a Second.\n# TYPE a counter\na 1\n# TYPE b gauge\nb 1\n"
		  "# TYPE c untyped\nc 1\n" },
	};
	struct strbuf y = STRBUF_INIT;
	struct http_server *srv;
	struct menv e;
	struct mdm l;
	int port;

	(void)state;
	srv = start_server(r, 2, &port);
	menv_init(&e, NULL);
	strbuf_printf(&y, "scrape_configs:\n"
	    JOB("one", "/one", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n")
	    JOB("two", "/two", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"), port, port);
	menv_apply(&e, strbuf_cstr(&y));
	wait_up_samples(&e, "one", 1);
	wait_up_samples(&e, "two", 1);
	memset(&l, 0, sizeof(l));
	scrape_manager_metadata(e.m, NULL, mdm_emit, &l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0], "a|counter|First.|");
	assert_string_equal(l.v[1], "a|counter|Second.|");
	assert_string_equal(l.v[2], "b|gauge||");	/* both targets: once */
	assert_string_equal(l.v[3], "c|unknown||");
	memset(&l, 0, sizeof(l));
	scrape_manager_metadata(e.m, "b", mdm_emit, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "b|gauge||");
	/* a removed target's metadata goes with it */
	menv_apply(&e, "scrape_configs: []\n");
	memset(&l, 0, sizeof(l));
	scrape_manager_metadata(e.m, NULL, mdm_emit, &l);
	assert_int_equal(l.n, 0);
	menv_free(&e);
	http_server_free(srv);
	strbuf_free(&y);
}

static void
test_manager_stop(void **state)
{
	struct troute r[] = {
		{ .path = "/metrics", .status = 200, .ctype = "text/plain", .body = "z 1\n" },
	};
	struct strbuf y = STRBUF_INIT;
	struct http_server *srv;
	struct menv e;
	struct samples s;
	char err[256];
	int port;

	(void)state;
	srv = start_server(r, 1, &port);
	menv_init(&e, NULL);
	strbuf_printf(&y, "scrape_configs:\n"
	    JOB("z", "/metrics", "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"), port);
	menv_apply(&e, strbuf_cstr(&y));
	wait_up_samples(&e, "z", 1);
	scrape_manager_stop(e.m);
	scrape_manager_stop(e.m);
	usleep(700000);
	select_series(e.h, &s, "__name__", "z", NULL);
	assert_int_equal(count_stale(&s), 0);
	assert_int_equal(scrape_manager_apply(e.m, e.cfg[0], err, sizeof(err)), -1);
	menv_free(&e);
	http_server_free(srv);
	strbuf_free(&y);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_host_port),
		cmocka_unit_test(test_target_build),
		cmocka_unit_test(test_target_identity),
		cmocka_unit_test(test_cache_basic),
		cmocka_unit_test(test_cache_honor_labels),
		cmocka_unit_test(test_cache_honor_timestamps),
		cmocka_unit_test(test_cache_staleness),
		cmocka_unit_test(test_cache_limits),
		cmocka_unit_test(test_cache_metric_relabel),
		cmocka_unit_test(test_cache_append_errors),
		cmocka_unit_test(test_cache_limit_memory),
		cmocka_unit_test(test_cache_flush_and_aliases),
		cmocka_unit_test(test_cache_order),
		cmocka_unit_test(test_cache_hook),
		cmocka_unit_test(test_cache_metadata),
		cmocka_unit_test(test_cache_pull),
		cmocka_unit_test(test_cache_scrape_pull_mix),
		cmocka_unit_test(test_cache_large),
		cmocka_unit_test(test_manager_basic),
		cmocka_unit_test(test_manager_auth),
		cmocka_unit_test(test_manager_gzip),
		cmocka_unit_test(test_manager_bad_targets),
		cmocka_unit_test(test_manager_reload),
		cmocka_unit_test(test_manager_file_sd),
		cmocka_unit_test(test_manager_owns_and_limits),
		cmocka_unit_test(test_manager_metadata),
		cmocka_unit_test(test_manager_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
