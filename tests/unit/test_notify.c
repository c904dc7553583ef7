/* tests/unit/test_notify.c - the notifier (lib/notify) against fake Alertmanagers.
 *
 * Each fake Alertmanager is a lib/http server on 127.0.0.1:0 that records
 * every POST (path, headers, body) and answers with a chosen status, after
 * an optional delay, or holds a request until the test releases it (so the
 * sender is known to be busy while the test fills the queue). Payloads are
 * compared byte for byte with what Prometheus 2.42 sends (captured from the
 * real binary); batching, overflow, discovery, auth, dead and slow
 * Alertmanagers, and the rule manager's resend and resolve are driven
 * through the public API.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "config/config.h"
#include "http/server.h"
#include "labels/labels.h"
#include "notify/notify.h"
#include "promql/engine.h"
#include "promql/storage.h"
#include "rules/query.h"
#include "rules/rules.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define SEC INT64_C(1000000000)

/* --- a fake Alertmanager ------------------------------------------------- */

struct req {
	char *path, *body, *auth, *ctype, *ua;
};

struct fake {
	struct http_server *srv;
	char addr[64];			/* 127.0.0.1:port */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct req r[512];
	size_t n;
	int status;
	int delay_ms;
	bool hold, holding;
};

static char *
dup0(const char *s)
{
	return s != NULL ? mem_strdup(s) : NULL;
}

static int
fake_handler(struct http_request *req, void *arg)
{
	struct fake *f = arg;
	size_t len;
	const char *body = http_request_body(req, &len);
	int status;
	struct timespec ts;

	pthread_mutex_lock(&f->mu);
	if (f->n < sizeof(f->r) / sizeof(f->r[0])) {
		struct req *r = &f->r[f->n++];

		r->path = dup0(http_request_path(req));
		r->body = mem_strndup(body, len);
		r->auth = dup0(http_request_header(req, "Authorization"));
		r->ctype = dup0(http_request_header(req, "Content-Type"));
		r->ua = dup0(http_request_header(req, "User-Agent"));
	}
	pthread_cond_broadcast(&f->cond);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;	/* never hold longer than this */
	while (f->hold) {
		f->holding = true;
		pthread_cond_broadcast(&f->cond);
		if (pthread_cond_timedwait(&f->cond, &f->mu, &ts) != 0)
			break;
	}
	f->holding = false;
	if (f->delay_ms > 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += f->delay_ms / 1000;
		ts.tv_nsec += (long)(f->delay_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (pthread_cond_timedwait(&f->cond, &f->mu, &ts) == 0 && f->delay_ms > 0)
			;
	}
	status = f->status;
	pthread_mutex_unlock(&f->mu);
	return http_respond_text(req, status, "%s", status == 200 ? "" : "nope\n");
}

static void
fake_start(struct fake *f)
{
	char err[256];

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->status = 200;
	f->srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(f->srv);
	assert_int_equal(http_server_route(f->srv, HTTP_POST, "/", HTTP_ROUTE_PREFIX,
	    fake_handler, f), 0);
	assert_int_equal(http_server_start(f->srv, err, sizeof(err)), 0);
	snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", http_server_port(f->srv));
}

static void
fake_release(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	f->hold = false;
	f->delay_ms = 0;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

static void
fake_hold(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	f->hold = true;
	pthread_mutex_unlock(&f->mu);
}

static void
fake_stop(struct fake *f)
{
	fake_release(f);
	http_server_free(f->srv);
	for (size_t i = 0; i < f->n; i++) {
		mem_free(f->r[i].path);
		mem_free(f->r[i].body);
		mem_free(f->r[i].auth);
		mem_free(f->r[i].ctype);
		mem_free(f->r[i].ua);
	}
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->mu);
}

/* fake_wait waits until f has recorded at least n requests (or, with
 * holding, until a request is being held); fails after 10 s. */
static void
fake_wait(struct fake *f, size_t n, bool holding)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&f->mu);
	while (holding ? !f->holding : f->n < n)
		if (pthread_cond_timedwait(&f->cond, &f->mu, &ts) != 0)
			break;
	if (holding ? !f->holding : f->n < n) {
		size_t got = f->n;

		pthread_mutex_unlock(&f->mu);
		fail_msg("fake alertmanager %s: %zu requests, wanted %zu%s", f->addr, got, n,
		    holding ? " (holding)" : "");
	}
	pthread_mutex_unlock(&f->mu);
}

static size_t
fake_count(struct fake *f)
{
	size_t n;

	pthread_mutex_lock(&f->mu);
	n = f->n;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* count_str counts the occurrences of needle in s. */
static size_t
count_str(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* --- helpers ------------------------------------------------------------- */

static struct cfg *
load_cfg(const char *fmt, ...)
{
	char buf[8192], err[1024];
	va_list ap;
	struct cfg *c;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c = cfg_load_string(buf, strlen(buf), "t.yml", "/tmp", err, sizeof(err));
	if (c == NULL)
		fail_msg("config: %s\n%s", err, buf);
	return c;
}

static void
apply(struct notifier *n, const char *fmt, ...)
{
	char buf[8192], err[1024];
	va_list ap;
	struct cfg *c;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c = load_cfg("%s", buf);
	if (notify_apply(n, c, c->external_labels, err, sizeof(err)) != 0)
		fail_msg("notify_apply: %s", err);
	cfg_free(c);
}

/* send_named queues one firing alert per name (alertname=<name>, plus
 * the given extra label pairs), startsAt 1000 s, endsAt 1240 s. */
static void
send_named(struct notifier *n, const char *expr, const char *const *names, size_t count,
    const char *extra_name, const char *extra_value)
{
	struct rules_notify_alert *a = mem_calloc(count, sizeof(*a));
	struct rulefmt_kv ann = { "summary", "the summary" };

	for (size_t i = 0; i < count; i++) {
		struct label l[2] = { { "alertname", names[i] }, { extra_name, extra_value } };

		a[i].labels = labels_new(l, extra_name != NULL ? 2 : 1);
		a[i].annotations = &ann;
		a[i].n_annotations = 1;
		a[i].starts_at = 1000 * SEC;
		a[i].ends_at = 1240 * SEC;
	}
	notify_send(n, expr, a, count);
	for (size_t i = 0; i < count; i++)
		labels_free((struct labels *)a[i].labels);
	mem_free(a);
}

static void
send_one_named(struct notifier *n, const char *name)
{
	const char *names[1] = { name };

	send_named(n, "up == 0", names, 1, NULL, NULL);
}

static char *
collect(struct notifier *n)
{
	struct strbuf sb = STRBUF_INIT;

	notify_collect(n, &sb);
	return strbuf_detach(&sb, NULL);
}

static void
assert_has(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("missing %s in:\n%s", needle, hay);
}

static void
wait_stats(struct notifier *n, uint64_t sent, uint64_t errors, uint64_t dropped)
{
	struct notify_stats st;

	for (int i = 0; i < 1000; i++) {
		notify_get_stats(n, &st);
		if (st.sent >= sent && st.errors >= errors && st.dropped >= dropped)
			break;
		usleep(10000);
	}
	notify_get_stats(n, &st);
	if (st.sent != sent || st.errors != errors || st.dropped != dropped)
		fail_msg("stats: sent %llu errors %llu dropped %llu, wanted %llu %llu %llu",
		    (unsigned long long)st.sent, (unsigned long long)st.errors,
		    (unsigned long long)st.dropped, (unsigned long long)sent,
		    (unsigned long long)errors, (unsigned long long)dropped);
}

/* --- payloads: byte for byte as Prometheus 2.42 -------------------------- */

static int64_t
utc_ns(int y, int mo, int d, int h, int mi, int s, int64_t ns)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (int64_t)timegm(&tm) * SEC + ns;
}

static void
test_format(void **state)
{
	struct label l1[] = { { "alertname", "Always" }, { "severity", "page" }, { "site", "s1" } };
	struct label l2[] = { { "alertname", "Blink" }, { "severity", "ext" }, { "site", "s1" } };
	struct rulefmt_kv ann[] = { { "empty", "" }, { "summary", "v=1 <x>&" } };
	struct notify_alert a1 = { 0 }, a2 = { 0 };
	const struct notify_alert *list[2] = { &a1, &a2 };
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	a1.labels = labels_new(l1, 3);
	a1.annotations = ann;
	a1.n_annotations = 2;
	a1.starts_at = utc_ns(2026, 11, 25, 22, 54, 22, 632510205);
	a1.ends_at = utc_ns(2026, 11, 25, 22, 54, 42, 632510205);
	a1.generator_url = "http://vm:19090/graph?g0.expr=vector%281%29+%3E+0&g0.tab=1";
	a2.labels = labels_new(l2, 3);
	a2.starts_at = utc_ns(2026, 11, 25, 22, 54, 24, 632510205);
	a2.ends_at = utc_ns(2026, 11, 25, 22, 54, 28, 0);

	/* captured from Prometheus 2.42's POST /api/v2/alerts */
	notify_format_v2(list, 1, &sb);
	assert_string_equal(sb.buf, "[{\"annotations\":{\"empty\":\"\",\"summary\":"
	    "\"v=1 \\u003cx\\u003e\\u0026\"},\"endsAt\":\"2026-11-25T22:54:42.632Z\","
	    "\"startsAt\":\"2026-11-25T22:54:22.632Z\",\"generatorURL\":"
	    "\"http://vm:19090/graph?g0.expr=vector%281%29+%3E+0\\u0026g0.tab=1\","
	    "\"labels\":{\"alertname\":\"Always\",\"severity\":\"page\",\"site\":\"s1\"}}]");
	/* ... and /api/v1/alerts */
	strbuf_reset(&sb);
	notify_format_v1(list, 1, &sb);
	assert_string_equal(sb.buf, "[{\"labels\":{\"alertname\":\"Always\",\"severity\":\"page\","
	    "\"site\":\"s1\"},\"annotations\":{\"empty\":\"\",\"summary\":"
	    "\"v=1 \\u003cx\\u003e\\u0026\"},\"startsAt\":\"2026-11-25T22:54:22.632510205Z\","
	    "\"endsAt\":\"2026-11-25T22:54:42.632510205Z\",\"generatorURL\":"
	    "\"http://vm:19090/graph?g0.expr=vector%281%29+%3E+0\\u0026g0.tab=1\"}]");
	/* no annotations: left out in v2, {} in v1; a whole second; no URL */
	strbuf_reset(&sb);
	notify_format_v2(list + 1, 1, &sb);
	assert_string_equal(sb.buf, "[{\"endsAt\":\"2026-11-25T22:54:28.000Z\","
	    "\"startsAt\":\"2026-11-25T22:54:24.632Z\",\"labels\":{\"alertname\":\"Blink\","
	    "\"severity\":\"ext\",\"site\":\"s1\"}}]");
	strbuf_reset(&sb);
	notify_format_v1(list + 1, 1, &sb);
	assert_string_equal(sb.buf, "[{\"labels\":{\"alertname\":\"Blink\",\"severity\":\"ext\","
	    "\"site\":\"s1\"},\"annotations\":{},\"startsAt\":\"2026-11-25T22:54:24.632510205Z\","
	    "\"endsAt\":\"2026-11-25T22:54:28Z\"}]");
	/* two alerts; Go's zero time */
	a2.starts_at = RULES_TIME_ZERO;
	strbuf_reset(&sb);
	notify_format_v2(list, 2, &sb);
	assert_int_equal(count_str(sb.buf, "\"labels\""), 2);
	assert_non_null(strstr(sb.buf, "\"startsAt\":\"0001-01-01T00:00:00.000Z\""));
	strbuf_reset(&sb);
	notify_format_v2(list, 0, &sb);
	assert_string_equal(sb.buf, "[]");

	strbuf_free(&sb);
	labels_free(a1.labels);
	labels_free(a2.labels);
}

static void
test_external_url(void **state)
{
	char host[256], want[300];
	char *u;

	(void)state;
	u = notify_external_url("http://x.example/prom/", "0.0.0.0:9090");
	assert_string_equal(u, "http://x.example/prom");
	mem_free(u);
	u = notify_external_url("https://x.example//", NULL);
	assert_string_equal(u, "https://x.example");
	mem_free(u);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	snprintf(want, sizeof(want), "http://%s:9093", host);
	u = notify_external_url("", "127.0.0.1:9093");
	assert_string_equal(u, want);
	mem_free(u);
	snprintf(want, sizeof(want), "http://%s:9090", host);
	u = notify_external_url(NULL, "[::1]:9090");
	assert_string_equal(u, want);
	mem_free(u);
}

/* --- sending -------------------------------------------------------------- */

/* Every Alertmanager of every entry gets every alert, in its API version,
 * with external labels (only where the alert lacks them) and alert
 * relabeling applied; metrics count per URL. */
static void
test_send_all(void **state)
{
	struct notify_opts o = { 0 };
	struct notifier *n;
	struct fake a, b;
	char url_a[128], url_b[128], line[256];
	char *m;
	const char *names[4] = { "Keep", "DropMe", "Rename", "Sev" };

	(void)state;
	fake_start(&a);
	fake_start(&b);
	o.external_url = "http://strata.example:9090";
	n = notify_new(&o);
	apply(n,
	    "global:\n"
	    "  external_labels: {site: s1, severity: ext}\n"
	    "alerting:\n"
	    "  alert_relabel_configs:\n"
	    "    - {source_labels: [alertname], regex: DropMe, action: drop}\n"
	    "    - {source_labels: [alertname], regex: Rename, target_label: alertname, replacement: Renamed}\n"
	    "  alertmanagers:\n"
	    "    - path_prefix: /pfx/\n"
	    "      static_configs: [{targets: ['%s']}]\n"
	    "    - api_version: v1\n"
	    "      static_configs: [{targets: ['%s']}]\n",
	    a.addr, b.addr);

	send_named(n, "vector(1) and on () (vector(time() % 8) < 4)", names, 3, NULL, NULL);
	send_named(n, "up", names + 3, 1, "severity", "page");
	fake_wait(&a, 1, false);
	fake_wait(&b, 1, false);
	/* both alerts may come in one batch or two */
	wait_stats(n, 6, 0, 0);
	{
		struct strbuf all_a = STRBUF_INIT, all_b = STRBUF_INIT;

		pthread_mutex_lock(&a.mu);
		for (size_t i = 0; i < a.n; i++) {
			assert_string_equal(a.r[i].path, "/pfx/api/v2/alerts");
			assert_string_equal(a.r[i].ctype, "application/json");
			assert_string_equal(a.r[i].ua, "strata/" PACKAGE_VERSION);
			assert_null(a.r[i].auth);
			strbuf_puts(&all_a, a.r[i].body);
		}
		pthread_mutex_unlock(&a.mu);
		pthread_mutex_lock(&b.mu);
		for (size_t i = 0; i < b.n; i++) {
			assert_string_equal(b.r[i].path, "/api/v1/alerts");
			strbuf_puts(&all_b, b.r[i].body);
		}
		pthread_mutex_unlock(&b.mu);
		assert_has(all_a.buf, "{\"annotations\":{\"summary\":\"the summary\"},"
		    "\"endsAt\":\"1970-01-01T00:20:40.000Z\",\"startsAt\":\"1970-01-01T00:16:40.000Z\","
		    "\"generatorURL\":\"http://strata.example:9090/graph?g0.expr="
		    "vector%281%29+and+on+%28%29+%28vector%28time%28%29+%25+8%29+%3C+4%29"
		    "\\u0026g0.tab=1\",\"labels\":{\"alertname\":\"Keep\",\"severity\":\"ext\","
		    "\"site\":\"s1\"}}");
		assert_has(all_a.buf, "\"labels\":{\"alertname\":\"Renamed\",\"severity\":\"ext\","
		    "\"site\":\"s1\"}");
		assert_has(all_a.buf, "\"labels\":{\"alertname\":\"Sev\",\"severity\":\"page\","
		    "\"site\":\"s1\"}");
		assert_null(strstr(all_a.buf, "DropMe"));
		assert_int_equal(count_str(all_a.buf, "\"labels\""), 3);
		assert_has(all_b.buf, "{\"labels\":{\"alertname\":\"Keep\",\"severity\":\"ext\","
		    "\"site\":\"s1\"},\"annotations\":{\"summary\":\"the summary\"},"
		    "\"startsAt\":\"1970-01-01T00:16:40Z\",\"endsAt\":\"1970-01-01T00:20:40Z\"");
		assert_has(all_b.buf, "\"alertname\":\"Sev\",\"severity\":\"page\"");
		assert_int_equal(count_str(all_b.buf, "\"labels\""), 3);
		strbuf_free(&all_a);
		strbuf_free(&all_b);
	}

	snprintf(url_a, sizeof(url_a), "http://%s/pfx/api/v2/alerts", a.addr);
	snprintf(url_b, sizeof(url_b), "http://%s/api/v1/alerts", b.addr);
	m = collect(n);
	assert_has(m, "# TYPE prometheus_notifications_latency_seconds summary\n");
	assert_has(m, "prometheus_notifications_alertmanagers_discovered 2\n");
	assert_has(m, "prometheus_notifications_dropped_total 0\n");
	assert_has(m, "prometheus_notifications_queue_capacity 10000\n");
	assert_has(m, "prometheus_notifications_queue_length 0\n");
	snprintf(line, sizeof(line), "prometheus_notifications_sent_total{alertmanager=\"%s\"} 3\n",
	    url_a);
	assert_has(m, line);
	snprintf(line, sizeof(line), "prometheus_notifications_sent_total{alertmanager=\"%s\"} 3\n",
	    url_b);
	assert_has(m, line);
	snprintf(line, sizeof(line), "prometheus_notifications_errors_total{alertmanager=\"%s\"} 0\n",
	    url_a);
	assert_has(m, line);
	snprintf(line, sizeof(line),
	    "prometheus_notifications_latency_seconds{alertmanager=\"%s\",quantile=\"0.99\"} ", url_a);
	assert_has(m, line);
	snprintf(line, sizeof(line),
	    "prometheus_notifications_latency_seconds_count{alertmanager=\"%s\"} %zu\n", url_a,
	    fake_count(&a));
	assert_has(m, line);
	mem_free(m);

	notify_free(n);
	fake_stop(&a);
	fake_stop(&b);
}

/* Batches of at most 64 alerts, in queue order. */
static void
test_batches(void **state)
{
	struct notifier *n = notify_new(NULL);
	struct fake a;
	const char *names[150];
	char buf[150][16];
	size_t total = 0;

	(void)state;
	fake_start(&a);
	apply(n, "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['%s']}]\n", a.addr);
	fake_hold(&a);
	send_one_named(n, "first");
	fake_wait(&a, 0, true);		/* the sender is busy with "first" */
	for (size_t i = 0; i < 150; i++) {
		snprintf(buf[i], sizeof(buf[i]), "a%03zu", i);
		names[i] = buf[i];
	}
	send_named(n, "up", names, 100, NULL, NULL);
	send_named(n, "up", names + 100, 50, NULL, NULL);
	fake_release(&a);
	fake_wait(&a, 4, false);
	wait_stats(n, 151, 0, 0);
	assert_int_equal(fake_count(&a), 4);
	assert_int_equal(count_str(a.r[0].body, "\"labels\""), 1);
	assert_int_equal(count_str(a.r[1].body, "\"labels\""), 64);
	assert_int_equal(count_str(a.r[2].body, "\"labels\""), 64);
	assert_int_equal(count_str(a.r[3].body, "\"labels\""), 22);
	/* in order: a000 .. a149 */
	for (size_t r = 1; r < 4; r++) {
		const char *p = a.r[r].body;

		while ((p = strstr(p, "\"alertname\":\"a")) != NULL) {
			char want[32];

			snprintf(want, sizeof(want), "\"alertname\":\"a%03zu\"", total);
			assert_memory_equal(p, want, strlen(want));
			total++;
			p++;
		}
	}
	assert_int_equal(total, 150);
	notify_free(n);
	fake_stop(&a);
}

/* A full queue drops its oldest alerts; a call bringing more than the
 * capacity keeps its newest; both counted. */
static void
test_overflow(void **state)
{
	struct notify_opts o = { 0 };
	struct notifier *n;
	struct fake a;
	struct notify_stats st;
	const char *names[12] = { "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9",
	    "n10", "n11" };
	const char *more[3] = { "m0", "m1", "m2" };
	char *m;

	(void)state;
	fake_start(&a);
	o.queue_capacity = 5;
	n = notify_new(&o);
	apply(n, "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['%s']}]\n", a.addr);
	fake_hold(&a);
	send_one_named(n, "first");
	fake_wait(&a, 0, true);
	send_named(n, "up", names, 12, NULL, NULL);	/* keeps n7..n11: 7 dropped */
	notify_get_stats(n, &st);
	assert_int_equal(st.queue_length, 5);
	assert_int_equal(st.dropped, 7);
	send_named(n, "up", more, 3, NULL, NULL);	/* drops n7..n9 */
	notify_get_stats(n, &st);
	assert_int_equal(st.queue_length, 5);
	assert_int_equal(st.queue_capacity, 5);
	assert_int_equal(st.dropped, 10);
	m = collect(n);
	assert_has(m, "prometheus_notifications_dropped_total 10\n");
	assert_has(m, "prometheus_notifications_queue_length 5\n");
	assert_has(m, "prometheus_notifications_queue_capacity 5\n");
	mem_free(m);
	fake_release(&a);
	fake_wait(&a, 2, false);
	wait_stats(n, 6, 0, 10);
	{
		const char *b = a.r[1].body;
		const char *want[5] = { "n10", "n11", "m0", "m1", "m2" };
		const char *p = b;

		assert_int_equal(count_str(b, "\"labels\""), 5);
		for (size_t i = 0; i < 5; i++) {
			char s[32];

			snprintf(s, sizeof(s), "\"alertname\":\"%s\"", want[i]);
			p = strstr(p, s);
			if (p == NULL)
				fail_msg("%s not in order in %s", want[i], b);
		}
	}
	notify_free(n);
	fake_stop(&a);
}

/* A dead and a slow Alertmanager: sends never wait for them, each failed
 * request counts once per Alertmanager, the batch is not dropped while
 * another Alertmanager took it, and is when none did. */
static void
test_dead_and_slow(void **state)
{
	struct notifier *n = notify_new(NULL);
	struct fake slow, good;
	char dead[64], line[256];
	int64_t worst = 0;
	char *m;

	(void)state;
	fake_start(&slow);
	fake_start(&good);
	{
		/* a port nothing listens on */
		struct fake tmp;

		fake_start(&tmp);
		snprintf(dead, sizeof(dead), "%s", tmp.addr);
		fake_stop(&tmp);
	}
	slow.delay_ms = 3000;
	apply(n,
	    "alerting:\n  alertmanagers:\n"
	    "    - static_configs: [{targets: ['%s']}]\n"
	    "    - timeout: 1s\n      static_configs: [{targets: ['%s']}]\n"
	    "    - static_configs: [{targets: ['%s']}]\n",
	    dead, slow.addr, good.addr);
	for (int i = 0; i < 40; i++) {
		int64_t s = time_mono_ns(), d;

		send_one_named(n, "x");
		d = time_mono_ns() - s;
		if (d > worst)
			worst = d;
		usleep(20000);
	}
	/* 40 sends over ~0.8 s while the slow one holds each batch for its
	 * 1 s timeout: none waits for it (the bound leaves room for a loaded
	 * machine) */
	if (worst > 300 * 1000000)
		fail_msg("notify_send took %lld ms", (long long)(worst / 1000000));
	fake_wait(&good, 2, false);
	fake_wait(&slow, 2, false);
	{
		struct notify_stats st;

		/* let the queue drain: each batch takes the slow one's timeout */
		for (int i = 0; i < 500; i++) {
			notify_get_stats(n, &st);
			if (st.queue_length == 0 && st.sent == 3 * 40)
				break;
			usleep(10000);
		}
		notify_get_stats(n, &st);
		assert_int_equal(st.sent, 3 * 40);
		assert_int_equal(st.dropped, 0);
		/* one error per request to the dead and the slow one */
		assert_int_equal(st.errors, 2 * fake_count(&good));
	}
	m = collect(n);
	snprintf(line, sizeof(line),
	    "prometheus_notifications_errors_total{alertmanager=\"http://%s/api/v2/alerts\"} %zu\n",
	    dead, fake_count(&good));
	assert_has(m, line);
	snprintf(line, sizeof(line),
	    "prometheus_notifications_errors_total{alertmanager=\"http://%s/api/v2/alerts\"} 0\n",
	    good.addr);
	assert_has(m, line);
	mem_free(m);

	/* only the dead one: every batch is dropped */
	apply(n, "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['%s']}]\n", dead);
	{
		struct notify_stats st0, st;

		notify_get_stats(n, &st0);
		send_one_named(n, "y");
		send_one_named(n, "z");
		for (int i = 0; i < 500; i++) {
			notify_get_stats(n, &st);
			if (st.dropped == st0.dropped + 2)
				break;
			usleep(10000);
		}
		assert_int_equal(st.dropped, st0.dropped + 2);
	}
	/* and none configured: dropped too, as in Prometheus */
	apply(n, "global: {}\n");
	{
		struct notify_stats st0, st;

		notify_get_stats(n, &st0);
		assert_int_equal(st0.alertmanagers, 0);
		send_one_named(n, "w");
		for (int i = 0; i < 500; i++) {
			notify_get_stats(n, &st);
			if (st.dropped == st0.dropped + 1)
				break;
			usleep(10000);
		}
		assert_int_equal(st.dropped, st0.dropped + 1);
	}
	notify_free(n);
	fake_stop(&slow);
	fake_stop(&good);
}

/* Stopping cancels a request in flight instead of waiting for its timeout. */
static void
test_stop_cancels(void **state)
{
	struct notifier *n = notify_new(NULL);
	struct fake a;
	int64_t t0;

	(void)state;
	fake_start(&a);
	apply(n, "alerting:\n  alertmanagers:\n    - timeout: 30s\n"
	    "      static_configs: [{targets: ['%s']}]\n", a.addr);
	fake_hold(&a);
	send_one_named(n, "first");
	fake_wait(&a, 0, true);
	t0 = time_mono_ns();
	notify_free(n);
	if (time_mono_ns() - t0 > 3 * SEC)
		fail_msg("notify_free waited %lld ms", (long long)((time_mono_ns() - t0) / 1000000));
	fake_stop(&a);
}

/* basic_auth and authorization from the entry's HTTP settings. */
static void
test_auth(void **state)
{
	struct notifier *n = notify_new(NULL);
	struct fake a;
	char path[] = "/tmp/strata-notify-secret-XXXXXX";
	int fd;
	bool seen[3] = { false, false, false };

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "filetoken\n", 10), 10);
	close(fd);
	fake_start(&a);
	apply(n,
	    "alerting:\n  alertmanagers:\n"
	    "    - path_prefix: /basic\n      basic_auth: {username: u, password: p}\n"
	    "      static_configs: [{targets: ['%s']}]\n"
	    "    - path_prefix: /bearer\n      authorization: {credentials: tok}\n"
	    "      static_configs: [{targets: ['%s']}]\n"
	    "    - path_prefix: /file\n      authorization: {type: Token, credentials_file: %s}\n"
	    "      static_configs: [{targets: ['%s']}]\n",
	    a.addr, a.addr, path, a.addr);
	send_one_named(n, "x");
	fake_wait(&a, 3, false);
	for (size_t i = 0; i < 3; i++) {
		struct req *r = &a.r[i];

		assert_non_null(r->auth);
		if (strcmp(r->path, "/basic/api/v2/alerts") == 0) {
			assert_string_equal(r->auth, "Basic dTpw");	/* u:p */
			seen[0] = true;
		} else if (strcmp(r->path, "/bearer/api/v2/alerts") == 0) {
			assert_string_equal(r->auth, "Bearer tok");
			seen[1] = true;
		} else if (strcmp(r->path, "/file/api/v2/alerts") == 0) {
			assert_string_equal(r->auth, "Token filetoken");
			seen[2] = true;
		} else {
			fail_msg("unexpected path %s", r->path);
		}
	}
	assert_true(seen[0] && seen[1] && seen[2]);
	notify_free(n);
	fake_stop(&a);
	unlink(path);
}

/* Discovery: static and file_sd targets, relabel_configs on them,
 * duplicates listed once, a bad address failing its group, a changed file
 * picked up; /api/v1/alertmanagers lists active and dropped URLs. */
static void
test_discovery(void **state)
{
	struct notify_opts o = { 0 };
	struct notifier *n;
	struct notify_stats st;
	struct strbuf js = STRBUF_INIT;
	char dir[] = "/tmp/strata-notify-sd-XXXXXX", file[128], tmp[140];
	FILE *fp;
	struct fake a;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/am.json", dir);
	snprintf(tmp, sizeof(tmp), "%s/am.json.tmp", dir);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("[{\"targets\": [\"10.0.0.1:9093\", \"10.0.0.2:9093\"], \"labels\": {\"dc\": \"x\"}}]",
	    fp);
	fclose(fp);
	fake_start(&a);
	o.sd_check_ms = 50;
	n = notify_new(&o);
	apply(n,
	    "alerting:\n  alertmanagers:\n"
	    "    - scheme: https\n      path_prefix: /a/../b//\n      timeout: 1s\n"
	    "      static_configs:\n"
	    "        - targets: ['am1:9093', 'am2:9093', 'am1:9093']\n"
	    "          labels: {zone: z1}\n"
	    "        - targets: ['am3:9093']\n"
	    "          labels: {zone: bad}\n"
	    "      relabel_configs:\n"
	    "        - {source_labels: [__address__], regex: 'am2:.*', action: drop}\n"
	    "        - {source_labels: [zone], regex: bad, target_label: __address__, replacement: 'h/x'}\n"
	    "        - {source_labels: [zone], regex: z1, target_label: __alerts_path__, replacement: /z1/api/v2/alerts}\n"
	    "    - api_version: v1\n      timeout: 1s\n"
	    "      file_sd_configs: [{files: ['%s/*.json']}]\n"
	    "      relabel_configs:\n"
	    "        - {source_labels: [__meta_filepath], regex: '.*/am.json', target_label: __scheme__, replacement: http}\n"
	    "        - {source_labels: [dc], regex: x, action: keep}\n"
	    "    - static_configs: [{targets: ['%s']}]\n",
	    dir, a.addr);
	notify_alertmanagers_json(n, &js);
	{
		char want[1024];

		snprintf(want, sizeof(want),
		    "{\"activeAlertmanagers\":[{\"url\":\"https://am1:9093/z1/api/v2/alerts\"},"
		    "{\"url\":\"http://10.0.0.1:9093/api/v1/alerts\"},"
		    "{\"url\":\"http://10.0.0.2:9093/api/v1/alerts\"},"
		    "{\"url\":\"http://%s/api/v2/alerts\"}],"
		    "\"droppedAlertmanagers\":[{\"url\":\"https://am2:9093/b/api/v2/alerts\"}]}",
		    a.addr);
		assert_string_equal(js.buf, want);
	}
	notify_get_stats(n, &st);
	assert_int_equal(st.alertmanagers, 4);

	/* the file changes: one target goes, the group's label no longer kept */
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	fputs("[{\"targets\": [\"10.0.0.3:9093\"], \"labels\": {\"dc\": \"x\"}},"
	    " {\"targets\": [\"10.0.0.4:9093\"], \"labels\": {\"dc\": \"y\"}}]", fp);
	fclose(fp);
	assert_int_equal(rename(tmp, file), 0);
	for (int i = 0; i < 300; i++) {
		strbuf_reset(&js);
		notify_alertmanagers_json(n, &js);
		if (strstr(js.buf, "10.0.0.3") != NULL)
			break;
		usleep(10000);
	}
	assert_has(js.buf, "{\"url\":\"http://10.0.0.3:9093/api/v1/alerts\"}");
	assert_null(strstr(js.buf, "10.0.0.1"));
	assert_has(js.buf, "\"droppedAlertmanagers\":[{\"url\":\"https://am2:9093/b/api/v2/alerts\"},"
	    "{\"url\":\"http://10.0.0.4:9093/api/v1/alerts\"}]");
	notify_get_stats(n, &st);
	assert_int_equal(st.alertmanagers, 3);

	/* what was discovered gets the alerts (the reachable one answers) */
	send_one_named(n, "x");
	fake_wait(&a, 1, false);

	/* oauth2 is refused and nothing changes */
	{
		struct cfg *c = load_cfg("alerting:\n  alertmanagers:\n"
		    "    - oauth2: {client_id: a, client_secret: b, token_url: 'http://t/'}\n"
		    "      static_configs: [{targets: ['x:1']}]\n");
		char err[512];

		assert_int_equal(notify_apply(n, c, NULL, err, sizeof(err)), -1);
		assert_has(err, "oauth2 is not supported by strata");
		cfg_free(c);
		notify_get_stats(n, &st);
		assert_int_equal(st.alertmanagers, 3);
	}
	notify_free(n);
	fake_stop(&a);
	strbuf_free(&js);
	unlink(file);
	rmdir(dir);
}

/* --- with the rule manager: resend and resolve ---------------------------- */

struct clock {
	int64_t now;
};

static int64_t
clock_now(void *arg)
{
	return ((struct clock *)arg)->now;
}

/* assert_times checks the endsAt and startsAt of the (only) alert in a v2
 * body. */
static void
assert_times(const char *body, int64_t starts, int64_t ends)
{
	struct notify_alert x = { 0 };
	const struct notify_alert *l[1] = { &x };
	struct strbuf sb = STRBUF_INIT;
	const char *got = strstr(body, "\"endsAt\"");
	const char *want;
	size_t len = strlen("\"endsAt\":\"2023-11-14T22:13:20.000Z\",\"startsAt\":"
	    "\"2023-11-14T22:13:20.000Z\"");

	x.labels = labels_empty();
	x.starts_at = starts;
	x.ends_at = ends;
	notify_format_v2(l, 1, &sb);
	want = strstr(sb.buf, "\"endsAt\"");
	if (got == NULL || strncmp(got, want, len) != 0)
		fail_msg("times: %s, wanted %.*s", body, (int)len, want);
	labels_free(x.labels);
	strbuf_free(&sb);
}

static void
add_sample(struct tsdb_head *h, const char *name, int64_t t_ms, double v)
{
	struct label l = { "__name__", name };
	struct labels *ls = labels_new(&l, 1);

	assert_int_equal(tsdb_head_append(h, NULL, ls, t_ms, v), 0);
	labels_free(ls);
}

static void
test_rules_resend_resolve(void **state)
{
	struct notify_opts no = { 0 };
	struct rules_manager_opts o;
	struct rules_manager *m;
	struct notifier *n;
	struct tsdb_head *h;
	struct promql_storage st;
	struct promql_engine *e;
	struct clock clk;
	struct fake a;
	char dir[] = "/tmp/strata-notify-rules-XXXXXX", path[128], err[512];
	const char *files[1] = { path };
	struct labels *ext;
	struct label el = { "site", "s1" };
	FILE *fp;
	int64_t t, first, start, resolve_at;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/r.yml", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("groups:\n- name: g\n  interval: 10s\n  rules:\n"
	    "  - alert: High\n    expr: x > 0\n    labels: {severity: page}\n"
	    "    annotations: {summary: 'x is {{ $value }}'}\n", fp);
	fclose(fp);
	fake_start(&a);
	no.external_url = "http://strata.example:9090";
	n = notify_new(&no);
	apply(n, "global:\n  external_labels: {site: s1}\n"
	    "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['%s']}]\n", a.addr);

	h = tsdb_head_new(NULL, err, sizeof(err));
	assert_non_null(h);
	promql_storage_head(&st, h);
	e = promql_engine_new(NULL);
	clk.now = INT64_C(1700000000) * SEC;
	memset(&o, 0, sizeof(o));
	o.query = rules_query_engine;
	o.engine = e;
	o.storage = &st;
	o.head = h;
	o.now_ns = clock_now;
	o.clock_arg = &clk;
	o.manual = true;
	o.external_url = "http://strata.example:9090";
	o.notify = notify_send;
	o.notify_arg = n;
	m = rules_manager_new(&o, err, sizeof(err));
	assert_non_null(m);
	ext = labels_new(&el, 1);
	assert_int_equal(rules_manager_update(m, 10000, files, 1, ext, err, sizeof(err)), 0);
	labels_free(ext);

	for (t = clk.now / 1000000 - 60000; t <= clk.now / 1000000 + 200000; t += 5000)
		add_sample(h, "x", t, t < clk.now / 1000000 + 100000 ? 3 : 0);

	/* first evaluations: the alert fires and is sent once */
	start = clk.now;
	first = rules_manager_run(m);
	clk.now = first;
	rules_manager_run(m);
	fake_wait(&a, 1, false);
	assert_has(a.r[0].body, "\"annotations\":{\"summary\":\"x is 3\"}");
	assert_has(a.r[0].body, "\"generatorURL\":\"http://strata.example:9090/graph?g0.expr="
	    "x+%3E+0\\u0026g0.tab=1\",\"labels\":{\"alertname\":\"High\",\"severity\":\"page\","
	    "\"site\":\"s1\"}");
	/* startsAt the firing instant, endsAt 4 resend delays (1m) later */
	assert_times(a.r[0].body, first, first + 240 * SEC);

	/* evaluations within the resend delay send nothing */
	fake_hold(&a);
	for (int i = 1; i <= 6; i++) {
		clk.now = first + i * 10 * SEC;
		rules_manager_run(m);
	}
	usleep(200000);
	assert_int_equal(fake_count(&a), 1);
	/* past it (1m after the last send): sent again, and held there */
	clk.now = first + 70 * SEC;
	rules_manager_run(m);
	fake_wait(&a, 0, true);
	assert_int_equal(fake_count(&a), 2);
	assert_has(a.r[1].body, "\"alertname\":\"High\"");
	assert_times(a.r[1].body, first, first + 70 * SEC + 240 * SEC);
	/* x is 0 from start+100s: the alert resolves at the first evaluation
	 * after that; rule evaluation goes on while the Alertmanager holds */
	resolve_at = first;
	while (resolve_at < start + 100 * SEC)
		resolve_at += 10 * SEC;
	for (clk.now = first + 80 * SEC; clk.now <= resolve_at; clk.now += 10 * SEC) {
		int64_t s = time_mono_ns();

		rules_manager_run(m);
		assert_true(time_mono_ns() - s < SEC);
	}
	assert_int_equal(fake_count(&a), 2);
	fake_release(&a);
	/* sent once, with endsAt = the resolving instant */
	fake_wait(&a, 3, false);
	assert_times(a.r[2].body, first, resolve_at);
	/* and not again at the next evaluation */
	clk.now = resolve_at + 10 * SEC;
	rules_manager_run(m);
	usleep(200000);
	assert_int_equal(fake_count(&a), 3);

	rules_manager_free(m);
	promql_engine_free(e);
	tsdb_head_free(h);
	notify_free(n);
	fake_stop(&a);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_external_url),
		cmocka_unit_test(test_send_all),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_stop_cancels),
		cmocka_unit_test(test_dead_and_slow),
		cmocka_unit_test(test_rules_resend_resolve),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
