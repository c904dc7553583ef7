/* lib/api/rules.c - GET /api/v1/rules and /api/v1/alerts from a rule manager snapshot.
 *
 * Stateless: each request (and each /metrics scrape) takes a snapshot of
 * the manager and writes from it. See rules.h for the shapes.
 */
#include "config.h"

#include "api/rules.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/metrics.h"
#include "http/json.h"
#include "util/mem.h"

/* format_time writes ns as Go marshals a UTC time.Time (RFC3339Nano:
 * fraction without trailing zeros); RULES_TIME_ZERO is Go's zero time. */
static void
format_time(int64_t ns, char *buf, size_t len)
{
	int64_t secs, frac, days, rem, era, y;
	unsigned doe, yoe, doy, mp, d, mo;

	if (ns == RULES_TIME_ZERO) {
		snprintf(buf, len, "0001-01-01T00:00:00Z");
		return;
	}
	secs = ns / 1000000000;
	frac = ns % 1000000000;
	if (frac < 0) {
		frac += 1000000000;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	/* civil date from days since 1970-01-01 (Howard Hinnant) */
	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = (unsigned)(days - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	mo = mp < 10 ? mp + 3 : mp - 9;
	y = (int64_t)yoe + era * 400 + (mo <= 2);
	if (frac == 0) {
		snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02dZ", y, mo, d,
		    (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
	} else {
		char fb[16];
		int n = snprintf(fb, sizeof(fb), "%09" PRId64, frac);

		while (n > 0 && fb[n - 1] == '0')
			fb[--n] = '\0';
		snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%sZ", y, mo, d,
		    (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), fb);
	}
}

static void
write_time(struct json_writer *w, int64_t ns)
{
	char buf[64];

	format_time(ns, buf, sizeof(buf));
	json_string(w, buf);
}

static void
write_kv(struct json_writer *w, const struct rulefmt_kv *kv, size_t n)
{
	size_t i;

	json_object_begin(w);
	for (i = 0; i < n; i++) {
		json_key(w, kv[i].name);
		json_string(w, kv[i].value);
	}
	json_object_end(w);
}

/* write_alert writes one alert as Prometheus' API Alert. */
static void
write_alert(struct json_writer *w, const struct rules_alert_info *a)
{
	struct strbuf v = STRBUF_INIT;

	json_object_begin(w);
	json_key(w, "labels");
	json_labels(w, a->labels);
	json_key(w, "annotations");
	write_kv(w, a->annotations, a->n_annotations);
	json_key(w, "state");
	json_string(w, rules_state_name(a->state));
	json_key(w, "activeAt");
	write_time(w, a->active_at);
	if (a->keep_firing_since != RULES_TIME_ZERO) {
		json_key(w, "keepFiringSince");
		write_time(w, a->keep_firing_since);
	}
	json_key(w, "value");
	json_format_float(&v, a->value, 'e');
	json_string_n(w, v.buf, v.len);
	json_object_end(w);
	strbuf_free(&v);
}

/* write_active_alerts writes the alerts of r that are not resolved
 * (Prometheus' ActiveAlerts). */
static void
write_active_alerts(struct json_writer *w, const struct rules_rule_info *r)
{
	size_t i;

	for (i = 0; i < r->n_alerts; i++)
		if (r->alerts[i].resolved_at == RULES_TIME_ZERO)
			write_alert(w, &r->alerts[i]);
}

static void
write_rule(struct json_writer *w, const struct rules_rule_info *r)
{
	json_object_begin(w);
	if (r->alert) {
		json_key(w, "state");
		json_string(w, rules_state_name(r->state));
	}
	json_key(w, "name");
	json_string(w, r->name);
	json_key(w, "query");
	json_string(w, r->query);
	if (r->alert) {
		json_key(w, "duration");
		json_double(w, (double)r->for_ms / 1000.0);
		json_key(w, "keepFiringFor");
		json_double(w, (double)r->keep_firing_for_ms / 1000.0);
		json_key(w, "labels");
		write_kv(w, r->labels, r->n_labels);
		json_key(w, "annotations");
		write_kv(w, r->annotations, r->n_annotations);
		json_key(w, "alerts");
		json_array_begin(w);
		write_active_alerts(w, r);
		json_array_end(w);
	} else if (r->n_labels > 0) {
		json_key(w, "labels");
		write_kv(w, r->labels, r->n_labels);
	}
	json_key(w, "health");
	json_string(w, rules_health_name(r->health));
	if (r->last_error != NULL && r->last_error[0] != '\0') {
		json_key(w, "lastError");
		json_string(w, r->last_error);
	}
	json_key(w, "evaluationTime");
	json_double(w, r->eval_seconds);
	json_key(w, "lastEvaluation");
	write_time(w, r->last_eval);
	json_key(w, "type");
	json_string(w, r->alert ? "alerting" : "recording");
	json_object_end(w);
}

/* api_rules_write: see rules.h. */
void
api_rules_write(const struct rules_snapshot *s, const char *type, struct strbuf *out)
{
	bool alerts = type == NULL || type[0] == '\0' || strcmp(type, "alert") == 0;
	bool records = type == NULL || type[0] == '\0' || strcmp(type, "record") == 0;
	struct json_writer w;
	size_t i, j;

	json_init(&w, out);
	json_object_begin(&w);
	json_key(&w, "status");
	json_string(&w, "success");
	json_key(&w, "data");
	json_object_begin(&w);
	json_key(&w, "groups");
	json_array_begin(&w);
	for (i = 0; i < s->n_groups; i++) {
		const struct rules_group_info *g = &s->groups[i];

		json_object_begin(&w);
		json_key(&w, "name");
		json_string(&w, g->name);
		json_key(&w, "file");
		json_string(&w, g->file);
		json_key(&w, "rules");
		json_array_begin(&w);
		for (j = 0; j < g->n_rules; j++) {
			const struct rules_rule_info *r = &g->rules[j];

			if ((r->alert && alerts) || (!r->alert && records))
				write_rule(&w, r);
		}
		json_array_end(&w);
		json_key(&w, "interval");
		json_double(&w, (double)g->interval_ms / 1000.0);
		json_key(&w, "limit");
		json_int(&w, g->limit);
		json_key(&w, "evaluationTime");
		json_double(&w, g->eval_seconds);
		json_key(&w, "lastEvaluation");
		write_time(&w, g->last_eval);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	json_object_end(&w);
}

/* api_alerts_write: see rules.h. */
void
api_alerts_write(const struct rules_snapshot *s, struct strbuf *out)
{
	struct json_writer w;
	size_t i, j;

	json_init(&w, out);
	json_object_begin(&w);
	json_key(&w, "status");
	json_string(&w, "success");
	json_key(&w, "data");
	json_object_begin(&w);
	json_key(&w, "alerts");
	json_array_begin(&w);
	for (i = 0; i < s->n_groups; i++)
		for (j = 0; j < s->groups[i].n_rules; j++)
			if (s->groups[i].rules[j].alert)
				write_active_alerts(&w, &s->groups[i].rules[j]);
	json_array_end(&w);
	json_object_end(&w);
	json_object_end(&w);
}

static int
rules_handler(struct http_request *req, void *arg)
{
	struct rules_manager *m = arg;
	struct rules_snapshot *s;
	struct strbuf out = STRBUF_INIT;
	const char *t = http_request_arg(req, "type");
	char type[64];
	size_t i;
	int rc;

	snprintf(type, sizeof(type), "%s", t != NULL ? t : "");
	for (i = 0; type[i] != '\0'; i++)
		type[i] = (char)tolower((unsigned char)type[i]);
	if (type[0] != '\0' && strcmp(type, "alert") != 0 && strcmp(type, "record") != 0) {
		struct strbuf q = STRBUF_INIT;

		/* the value as Go lower-cases it, quoted as %q does */
		labels_quote(t, strlen(t), &q);
		for (i = 0; i < q.len; i++)
			q.buf[i] = (char)tolower((unsigned char)q.buf[i]);
		rc = api_error(req, API_ERR_BAD_DATA, "invalid parameter \"type\": not supported value %s",
		    strbuf_cstr(&q));
		strbuf_free(&q);
		return rc;
	}
	s = rules_manager_snapshot(m);
	api_rules_write(s, type, &out);
	rules_snapshot_free(s);
	rc = http_respond(req, 200, "application/json", &out);
	strbuf_free(&out);
	return rc;
}

static int
alerts_handler(struct http_request *req, void *arg)
{
	struct rules_manager *m = arg;
	struct rules_snapshot *s = rules_manager_snapshot(m);
	struct strbuf out = STRBUF_INIT;
	int rc;

	api_alerts_write(s, &out);
	rules_snapshot_free(s);
	rc = http_respond(req, 200, "application/json", &out);
	strbuf_free(&out);
	return rc;
}

/* api_rules_route: see rules.h. */
int
api_rules_route(struct rules_manager *m, struct http_server *srv)
{
	if (http_server_route(srv, HTTP_GET, "/api/v1/rules", HTTP_ROUTE_GZIP, rules_handler, m) < 0)
		return -1;
	return http_server_route(srv, HTTP_GET, "/api/v1/alerts", HTTP_ROUTE_GZIP, alerts_handler, m);
}

/* The families of Prometheus' rules.Metrics that strata keeps, in the
 * order a Prometheus registry writes them: value, name, type, help. */
#define RULE_GROUP_METRICS(X) \
	X((double)g->failures, "prometheus_rule_evaluation_failures_total", "counter", \
	    "The total number of rule evaluation failures.") \
	X((double)g->evaluations, "prometheus_rule_evaluations_total", "counter", \
	    "The total number of rule evaluations.") \
	X((double)g->interval_ms / 1000.0, "prometheus_rule_group_interval_seconds", "gauge", \
	    "The interval of a rule group.") \
	X((double)g->missed, "prometheus_rule_group_iterations_missed_total", "counter", \
	    "The total number of rule group evaluations missed due to slow rule group evaluation.") \
	X((double)g->iterations, "prometheus_rule_group_iterations_total", "counter", \
	    "The total number of scheduled rule group evaluations, whether executed or missed.") \
	X(g->eval_seconds, "prometheus_rule_group_last_duration_seconds", "gauge", \
	    "The duration of the last rule group evaluation.") \
	X(g->last_samples, "prometheus_rule_group_last_evaluation_samples", "gauge", \
	    "The number of samples returned during the last rule group evaluation.") \
	X(g->last_eval == RULES_TIME_ZERO ? 0 : (double)g->last_eval / 1e9, \
	    "prometheus_rule_group_last_evaluation_timestamp_seconds", "gauge", \
	    "The timestamp of the last rule group evaluation in seconds.") \
	X((double)g->n_rules, "prometheus_rule_group_rules", "gauge", \
	    "The number of rules.")

/* api_metrics_rules: see rules.h. */
void
api_metrics_rules(void *arg, struct strbuf *out)
{
	struct rules_snapshot *s = rules_manager_snapshot(arg);
	char **keys;
	size_t i;

	if (s->n_groups == 0) {
		rules_snapshot_free(s);
		return;
	}
	keys = mem_calloc(s->n_groups, sizeof(*keys));
	for (i = 0; i < s->n_groups; i++) {
		struct strbuf k = STRBUF_INIT;

		strbuf_printf(&k, "%s;%s", s->groups[i].file, s->groups[i].name);
		keys[i] = strbuf_detach(&k, NULL);
	}
	/* groups are sorted by file then name, which is also the order of the
	 * "file;name" label values except when a file name holds bytes below
	 * ';': sort the indexes by key to be exact */
	{
		size_t *ord = mem_calloc(s->n_groups, sizeof(*ord)), j;

		for (i = 0; i < s->n_groups; i++)
			ord[i] = i;
		for (i = 1; i < s->n_groups; i++)
			for (j = i; j > 0 && strcmp(keys[ord[j - 1]], keys[ord[j]]) > 0; j--) {
				size_t t = ord[j];

				ord[j] = ord[j - 1];
				ord[j - 1] = t;
			}
#define X(value, name, type, help) \
		metrics_family(out, name, type, help); \
		for (j = 0; j < s->n_groups; j++) { \
			const struct rules_group_info *g = &s->groups[ord[j]]; \
			metrics_sample(out, name, value, "rule_group", keys[ord[j]], (char *)NULL); \
		}
		RULE_GROUP_METRICS(X)
#undef X
		mem_free(ord);
	}
	for (i = 0; i < s->n_groups; i++)
		mem_free(keys[i]);
	mem_free(keys);
	rules_snapshot_free(s);
}
