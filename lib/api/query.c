/* lib/api/query.c - /api/v1/query, query_range, series, labels, label values,
 * query_exemplars and metadata over a struct promql_storage.
 *
 * Handlers parse and validate their parameters in Prometheus' order (so the
 * first error reported is the one Prometheus reports), take a slot of the
 * concurrency limit for anything that evaluates PromQL, and write the JSON
 * with lib/http/json.h. Sample values are strings ("1", "NaN", "+Inf"),
 * timestamps are float seconds with at most millisecond precision, exactly
 * as Prometheus marshals them.
 */
#include "config.h"

#include "api/query.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "expfmt/parse.h"
#include "labels/selector.h"
#include "promql/parse.h"
#include "util/mem.h"
#include "util/time.h"

/* Prometheus' minTime/maxTime for series/labels without start/end, in ms. */
#define API_MIN_TIME ((INT64_MIN / 1000 + INT64_C(62135596801)) * 1000)
#define API_MAX_TIME ((INT64_MAX / 1000 - INT64_C(62135596801)) * 1000 + 999)

struct api_query {
	struct api_query_opts o;
	struct promql_engine *engine;	/* owned; with o.engine's options */
	pthread_mutex_t mu;		/* guards running, with cond */
	pthread_cond_t cond;
	int running, max;
};

struct api_query *
api_query_new(const struct api_query_opts *o)
{
	struct api_query *q = mem_calloc(1, sizeof(*q));

	q->o = *o;
	q->engine = promql_engine_new(&q->o.engine);
	q->max = o->max_concurrency > 0 ? o->max_concurrency : 20;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cond, NULL);
	return q;
}

void
api_query_free(struct api_query *q)
{
	if (q == NULL)
		return;
	promql_engine_free(q->engine);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->mu);
	mem_free(q);
}

static void
slot_take(struct api_query *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->running >= q->max)
		pthread_cond_wait(&q->cond, &q->mu);
	q->running++;
	pthread_mutex_unlock(&q->mu);
}

static void
slot_give(struct api_query *q)
{
	pthread_mutex_lock(&q->mu);
	q->running--;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

/* --- parameters ------------------------------------------------------- */

/* quote writes s as Go's %q into buf. */
static const char *
quote(const char *s, char *buf, size_t len)
{
	struct strbuf sb = STRBUF_INIT;

	labels_quote(s, strlen(s), &sb);
	snprintf(buf, len, "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
	return buf;
}

/* parse_go_float parses s as strconv.ParseFloat would (the whole string). */
static bool
parse_go_float(const char *s, double *out)
{
	return s[0] != '\0' && expfmt_parse_float(s, strlen(s), out) == 0;
}

/* parse_rfc3339 parses RFC 3339 with an optional fraction and a Z or
 * +hh:mm zone into ms. */
static bool
parse_rfc3339(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, n = 0, zh, zm;
	int64_t frac_ms = 0, scale = 100, off = 0;
	struct tm tm = { 0 };
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		for (; *p >= '0' && *p <= '9'; p++) {
			frac_ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d%n", &zh, &zm, &n) == 2 &&
	    n == 5 && p[6] == '\0' && zh < 24 && zm < 60) {
		off = (int64_t)(zh * 3600 + zm * 60) * (*p == '-' ? -1 : 1);
	} else {
		return false;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ms = ((int64_t)t - off) * 1000 + frac_ms;
	return true;
}

int
api_parse_time(const char *s, int64_t *ms, char *err, size_t errlen)
{
	char q[256];
	double f;

	if (parse_go_float(s, &f) && isfinite(f) && fabs(f) < 9.2e15) {
		double ip, fp = modf(f, &ip);

		*ms = (int64_t)ip * 1000 + (int64_t)llround(fp * 1000);
		return 0;
	}
	if (parse_rfc3339(s, ms))
		return 0;
	if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) {
		*ms = API_MIN_TIME;
		return 0;
	}
	if (strcmp(s, "292277025-08-18T07:12:54.999999999Z") == 0) {
		*ms = API_MAX_TIME;
		return 0;
	}
	snprintf(err, errlen, "cannot parse %s to a valid timestamp", quote(s, q, sizeof(q)));
	return -1;
}

int
api_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen)
{
	char q[256], e[128];
	double f;

	if (parse_go_float(s, &f)) {
		double ns = f * 1e9;

		if (!(ns <= 9.2233720368547758e18 && ns >= -9.2233720368547758e18)) {
			snprintf(err, errlen, "cannot parse %s to a valid duration. It overflows int64",
			    quote(s, q, sizeof(q)));
			return -1;
		}
		*ms = (int64_t)ns / 1000000;
		return 0;
	}
	if (time_parse_duration(s, strlen(s), ms, e, sizeof(e)) == 0)
		return 0;
	snprintf(err, errlen, "cannot parse %s to a valid duration", quote(s, q, sizeof(q)));
	return -1;
}

/* time_param reads an optional time parameter (default def). Answers the
 * error itself and returns -1 when it is malformed. */
static int
time_param(struct http_request *req, const char *name, int64_t def, int64_t *out)
{
	const char *v = http_request_arg(req, name);
	char err[512];

	if (v == NULL || v[0] == '\0') {
		*out = def;
		return 0;
	}
	if (api_parse_time(v, out, err, sizeof(err)) < 0) {
		api_error(req, API_ERR_BAD_DATA, "invalid parameter \"%s\": %s", name, err);
		return -1;
	}
	return 0;
}

/* form_ok answers a malformed form as Prometheus' API does. */
static bool
form_ok(struct http_request *req)
{
	const char *e = http_request_form_error(req);

	if (e == NULL)
		return true;
	api_error(req, API_ERR_BAD_DATA, "error parsing form values: %s", e);
	return false;
}

/* --- results ---------------------------------------------------------- */

static void
write_ts(struct json_writer *w, int64_t t)
{
	struct strbuf sb = STRBUF_INIT;

	json_format_float(&sb, (double)t / 1000.0, 'f');
	json_raw(w, sb.buf, sb.len);
	strbuf_free(&sb);
}

/* write_value writes a vector or matrix sample value as Prometheus'
 * marshalPointJSON does: 'f' form, but 'e' form ("1e-07", "1e+21") for
 * values of magnitude below 1e-6 or from 1e21 on. */
static void
write_value(struct json_writer *w, double v)
{
	double a = fabs(v);
	struct strbuf sb = STRBUF_INIT;

	if (a == 0 || !isfinite(v) || (a >= 1e-6 && a < 1e21)) {
		json_float_string(w, v);
		return;
	}
	json_format_float(&sb, v, 'e');
	json_string_n(w, sb.buf, sb.len);
	strbuf_free(&sb);
}

static void
write_point(struct json_writer *w, int64_t t, double v)
{
	json_array_begin(w);
	write_ts(w, t);
	write_value(w, v);
	json_array_end(w);
}

static const char *
type_name(enum promql_type t)
{
	switch (t) {
	case PROMQL_TYPE_SCALAR:
		return "scalar";
	case PROMQL_TYPE_VECTOR:
		return "vector";
	case PROMQL_TYPE_MATRIX:
		return "matrix";
	case PROMQL_TYPE_STRING:
		return "string";
	default:
		return "none";
	}
}

static int
respond_result(struct http_request *req, const struct promql_result *res)
{
	struct api_response r;
	size_t i, j;

	api_success_begin(&r);
	json_object_begin(&r.w);
	json_key(&r.w, "resultType");
	json_string(&r.w, type_name(res->type));
	json_key(&r.w, "result");
	switch (res->type) {
	case PROMQL_TYPE_SCALAR:	/* always 'f' form, as Prometheus */
		json_array_begin(&r.w);
		write_ts(&r.w, res->t);
		json_float_string(&r.w, res->scalar);
		json_array_end(&r.w);
		break;
	case PROMQL_TYPE_STRING:
		json_array_begin(&r.w);
		write_ts(&r.w, res->t);
		json_string(&r.w, res->str);
		json_array_end(&r.w);
		break;
	case PROMQL_TYPE_VECTOR:
		json_array_begin(&r.w);
		for (i = 0; i < res->nvec; i++) {
			json_object_begin(&r.w);
			json_key(&r.w, "metric");
			json_labels(&r.w, res->vec[i].ls);
			json_key(&r.w, "value");
			write_point(&r.w, res->vec[i].t, res->vec[i].v);
			json_object_end(&r.w);
		}
		json_array_end(&r.w);
		break;
	case PROMQL_TYPE_MATRIX:
		json_array_begin(&r.w);
		for (i = 0; i < res->nmat; i++) {
			json_object_begin(&r.w);
			json_key(&r.w, "metric");
			json_labels(&r.w, res->mat[i].ls);
			json_key(&r.w, "values");
			json_array_begin(&r.w);
			for (j = 0; j < res->mat[i].n; j++)
				write_point(&r.w, res->mat[i].points[j].t, res->mat[i].points[j].v);
			json_array_end(&r.w);
			json_object_end(&r.w);
		}
		json_array_end(&r.w);
		break;
	default:
		json_null(&r.w);
		break;
	}
	json_object_end(&r.w);
	return api_success_end(&r, req);
}

/* respond_engine_error answers an engine error. Prometheus names the
 * parameter for /api/v1/query's bad queries (named true) but not for
 * /api/v1/query_range's. */
static int
respond_engine_error(struct http_request *req, const struct promql_error *e, bool named)
{
	switch (e->cls) {
	case PROMQL_ERR_BAD_DATA:
		if (!named)
			return api_error(req, API_ERR_BAD_DATA, "%s", e->msg);
		return api_error(req, API_ERR_BAD_DATA, "invalid parameter \"query\": %s", e->msg);
	case PROMQL_ERR_TIMEOUT:
		return api_error(req, API_ERR_TIMEOUT, "%s", e->msg);
	case PROMQL_ERR_CANCELED:
		return api_error(req, API_ERR_CANCELED, "%s", e->msg);
	case PROMQL_ERR_STORAGE:
		return api_error(req, API_ERR_INTERNAL, "%s", e->msg);
	default:
		return api_error(req, API_ERR_EXEC, "%s", e->msg);
	}
}

/* query_engine returns the engine for this request: the shared one, or a
 * temporary one (*tmp, freed by the caller) when timeout= asks for less
 * than --query.timeout. Answers the error and returns NULL when timeout=
 * is malformed. */
static struct promql_engine *
query_engine(struct api_query *q, struct http_request *req, struct promql_engine **tmp)
{
	const char *to = http_request_arg(req, "timeout");
	struct promql_engine_opts o = q->o.engine;
	char err[512];
	int64_t ms;

	*tmp = NULL;
	if (to == NULL || to[0] == '\0')
		return q->engine;
	if (api_parse_duration(to, &ms, err, sizeof(err)) < 0) {
		api_error(req, API_ERR_BAD_DATA, "invalid parameter \"timeout\": %s", err);
		return NULL;
	}
	if (o.timeout > 0 && ms >= o.timeout)
		return q->engine;
	o.timeout = ms > 0 ? ms : 1;
	*tmp = promql_engine_new(&o);
	return *tmp;
}

static int
h_query(struct http_request *req, void *arg)
{
	struct api_query *q = arg;
	struct promql_engine *e, *tmp;
	struct promql_result res;
	struct promql_error err;
	const char *expr;
	int64_t ts;
	int rc;

	if (!form_ok(req) || time_param(req, "time", time_now_ms(), &ts) < 0)
		return 0;
	if ((e = query_engine(q, req, &tmp)) == NULL)
		return 0;
	expr = http_request_arg(req, "query");
	if (expr == NULL)
		expr = "";
	memset(&res, 0, sizeof(res));
	slot_take(q);
	rc = promql_query_instant(e, &q->o.storage, expr, strlen(expr), ts, NULL, &res, &err);
	slot_give(q);
	promql_engine_free(tmp);
	if (rc < 0)
		return respond_engine_error(req, &err, true);
	rc = respond_result(req, &res);
	promql_result_free(&res);
	return rc;
}

static int
h_query_range(struct http_request *req, void *arg)
{
	struct api_query *q = arg;
	struct promql_engine *e, *tmp;
	struct promql_result res;
	struct promql_error err;
	const char *expr, *v;
	int64_t start, end, step;
	char msg[512];
	int rc;

	if (!form_ok(req))
		return 0;
	v = http_request_arg(req, "start");
	if (api_parse_time(v != NULL ? v : "", &start, msg, sizeof(msg)) < 0)
		return api_error(req, API_ERR_BAD_DATA, "invalid parameter \"start\": %s", msg);
	v = http_request_arg(req, "end");
	if (api_parse_time(v != NULL ? v : "", &end, msg, sizeof(msg)) < 0)
		return api_error(req, API_ERR_BAD_DATA, "invalid parameter \"end\": %s", msg);
	if (end < start)
		return api_error(req, API_ERR_BAD_DATA, "end timestamp must not be before start time");
	v = http_request_arg(req, "step");
	if (api_parse_duration(v != NULL ? v : "", &step, msg, sizeof(msg)) < 0)
		return api_error(req, API_ERR_BAD_DATA, "invalid parameter \"step\": %s", msg);
	if (step <= 0)
		return api_error(req, API_ERR_BAD_DATA,
		    "zero or negative query resolution step widths are not accepted. Try a positive integer");
	if ((end - start) / step > 11000)
		return api_error(req, API_ERR_BAD_DATA,
		    "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)");
	if ((e = query_engine(q, req, &tmp)) == NULL)
		return 0;
	expr = http_request_arg(req, "query");
	if (expr == NULL)
		expr = "";
	memset(&res, 0, sizeof(res));
	slot_take(q);
	rc = promql_query_range(e, &q->o.storage, expr, strlen(expr), start, end, step,
	    NULL, &res, &err);
	slot_give(q);
	promql_engine_free(tmp);
	if (rc < 0)
		return respond_engine_error(req, &err, false);
	rc = respond_result(req, &res);
	promql_result_free(&res);
	return rc;
}

/* --- metadata endpoints ------------------------------------------------ */

/* The parsed match[] selectors of a request. */
struct match_sets {
	struct selector *v;
	size_t n;
};

static void
match_sets_free(struct match_sets *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		selector_free(&m->v[i]);
	mem_free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* parse_matches parses every match[]; answers the error itself and returns
 * -1 on a bad one. */
static int
parse_matches(struct http_request *req, struct match_sets *m)
{
	const char *const *sel;
	char err[512];
	size_t i, n;

	sel = http_request_args(req, "match[]", &n);
	m->v = mem_calloc(n + 1, sizeof(*m->v));
	m->n = 0;
	for (i = 0; i < n; i++) {
		if (selector_parse(sel[i], strlen(sel[i]), &m->v[i], err, sizeof(err)) < 0) {
			match_sets_free(m);
			api_error(req, API_ERR_BAD_DATA, "%s", err);
			return -1;
		}
		m->n++;
	}
	return 0;
}

static int
cmp_labels_ptr(const void *a, const void *b)
{
	return labels_compare(*(struct labels *const *)a, *(struct labels *const *)b);
}

static int
h_series(struct http_request *req, void *arg)
{
	struct api_query *q = arg;
	struct match_sets m;
	struct labels **all = NULL;
	struct api_response r;
	size_t i, n = 0, cap = 0, k;
	int64_t start, end;
	char err[512];
	int rc = 0;

	if (!form_ok(req))
		return 0;
	http_request_args(req, "match[]", &i);
	if (i == 0)
		return api_error(req, API_ERR_BAD_DATA, "no match[] parameter provided");
	if (time_param(req, "start", API_MIN_TIME, &start) < 0 ||
	    time_param(req, "end", API_MAX_TIME, &end) < 0)
		return 0;
	if (parse_matches(req, &m) < 0)
		return 0;
	for (i = 0; i < m.n; i++) {
		const struct promql_series_set_ops *ops;
		void *set;

		if (m.v[i].n == 0)
			continue;	/* "{}" selects nothing */
		set = q->o.storage.select(q->o.storage.ctx, m.v[i].ms, m.v[i].n, start, end,
		    &ops, err, sizeof(err));
		if (set == NULL) {
			rc = -1;
			break;
		}
		while (ops->next(set)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				all = mem_realloc(all, cap * sizeof(*all));
			}
			all[n++] = labels_ref((struct labels *)ops->labels(set));
		}
		ops->free(set);
	}
	match_sets_free(&m);
	if (rc < 0) {
		for (i = 0; i < n; i++)
			labels_free(all[i]);
		mem_free(all);
		return api_error(req, API_ERR_INTERNAL, "%s", err);
	}
	if (n > 1)
		qsort(all, n, sizeof(*all), cmp_labels_ptr);
	api_success_begin(&r);
	json_array_begin(&r.w);
	for (i = 0, k = 0; i < n; i++) {
		if (k > 0 && labels_equal(all[k - 1], all[i])) {
			labels_free(all[i]);
			continue;
		}
		json_labels(&r.w, all[i]);
		all[k++] = all[i];
	}
	json_array_end(&r.w);
	for (i = 0; i < k; i++)
		labels_free(all[i]);
	mem_free(all);
	return api_success_end(&r, req);
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* label_strings answers /labels (name NULL) or /label/<name>/values. */
static int
label_strings(struct api_query *q, struct http_request *req, const char *name)
{
	struct match_sets m;
	struct api_response r;
	const char **all = NULL;
	struct promql_strings *parts;
	size_t i, j, n = 0, nparts;
	int64_t start, end;
	char err[512];
	int rc = 0;

	if (!form_ok(req))
		return 0;
	if (time_param(req, "start", API_MIN_TIME, &start) < 0 ||
	    time_param(req, "end", API_MAX_TIME, &end) < 0)
		return 0;
	if (parse_matches(req, &m) < 0)
		return 0;
	nparts = m.n > 0 ? m.n : 1;
	parts = mem_calloc(nparts, sizeof(*parts));
	for (i = 0; i < nparts && rc == 0; i++) {
		struct matcher *const *ms = m.n > 0 ? m.v[i].ms : NULL;
		size_t nm = m.n > 0 ? m.v[i].n : 0;

		if (m.n > 0 && nm == 0)
			continue;
		if (name == NULL)
			rc = q->o.storage.label_names == NULL ? 0 :
			    q->o.storage.label_names(q->o.storage.ctx, ms, nm, start, end,
			    &parts[i], err, sizeof(err));
		else
			rc = q->o.storage.label_values == NULL ? 0 :
			    q->o.storage.label_values(q->o.storage.ctx, name, ms, nm, start, end,
			    &parts[i], err, sizeof(err));
		n += parts[i].n;
	}
	match_sets_free(&m);
	if (rc == 0) {
		all = mem_calloc(n + 1, sizeof(*all));
		for (i = 0, n = 0; i < nparts; i++)
			for (j = 0; j < parts[i].n; j++)
				all[n++] = parts[i].v[j];
		if (n > 1)
			qsort(all, n, sizeof(*all), cmp_cstr);
		api_success_begin(&r);
		json_array_begin(&r.w);
		for (i = 0; i < n; i++)
			if (i == 0 || strcmp(all[i - 1], all[i]) != 0)
				json_string(&r.w, all[i]);
		json_array_end(&r.w);
		rc = api_success_end(&r, req);
		mem_free(all);
	} else {
		rc = api_error(req, API_ERR_INTERNAL, "%s", err);
	}
	for (i = 0; i < nparts; i++)
		if (parts[i].v != NULL)
			q->o.storage.strings_free(q->o.storage.ctx, &parts[i]);
	mem_free(parts);
	return rc;
}

static int
h_labels(struct http_request *req, void *arg)
{
	return label_strings(arg, req, NULL);
}

static int
h_label_values(struct http_request *req, void *arg)
{
	const char *suffix = http_request_suffix(req);
	const char *slash = strchr(suffix, '/');
	char *name;
	char q[512];
	int rc;

	if (slash == NULL || strcmp(slash, "/values") != 0)
		return http_respond_text(req, 404, "404 page not found\n");
	name = mem_strndup(suffix, (size_t)(slash - suffix));
	if (!labels_is_valid_name(name, strlen(name)))
		rc = api_error(req, API_ERR_BAD_DATA, "invalid label name: %s",
		    quote(name, q, sizeof(q)));
	else
		rc = label_strings(arg, req, name);
	mem_free(name);
	return rc;
}

static int
h_query_exemplars(struct http_request *req, void *arg)
{
	struct api_response r;
	const char *expr = http_request_arg(req, "query");
	struct promql_node *node;
	int64_t start, end;
	char err[1024];

	(void)arg;
	if (!form_ok(req) || time_param(req, "start", API_MIN_TIME, &start) < 0 ||
	    time_param(req, "end", API_MAX_TIME, &end) < 0)
		return 0;
	if (end < start)
		return api_error(req, API_ERR_BAD_DATA, "end timestamp must not be before start time");
	/* strata stores no exemplars: validate the query, answer none. */
	if (expr == NULL)
		expr = "";
	if ((node = promql_parse(expr, strlen(expr), err, sizeof(err))) == NULL)
		return api_error(req, API_ERR_BAD_DATA, "invalid parameter \"query\": %s", err);
	promql_node_free(node);
	api_success_begin(&r);
	json_array_begin(&r.w);
	json_array_end(&r.w);
	return api_success_end(&r, req);
}

/* Metadata: {"metric":[{"type":..,"help":..,"unit":..},...],...} */
struct md_ctx {
	struct json_writer *w;
	const char *cur;		/* metric whose array is open, or NULL */
	long limit, per_metric_limit;
	long metrics, in_metric;
};

static void
md_emit(void *arg, const struct api_metadata *md)
{
	struct md_ctx *c = arg;

	if (c->cur == NULL || strcmp(c->cur, md->metric) != 0) {
		if (c->limit >= 0 && c->metrics >= c->limit)
			return;
		if (c->cur != NULL)
			json_array_end(c->w);
		json_key(c->w, md->metric);
		json_array_begin(c->w);
		c->cur = md->metric;
		c->metrics++;
		c->in_metric = 0;
	}
	if (c->per_metric_limit >= 0 && c->in_metric >= c->per_metric_limit)
		return;
	json_object_begin(c->w);
	json_key(c->w, "type");
	json_string(c->w, md->type);
	json_key(c->w, "help");
	json_string(c->w, md->help);
	json_key(c->w, "unit");
	json_string(c->w, md->unit);
	json_object_end(c->w);
	c->in_metric++;
}

static int
h_metadata(struct http_request *req, void *arg)
{
	struct api_query *q = arg;
	struct api_response r;
	struct md_ctx c = { 0 };
	const char *v, *metric;
	char *end;

	if (!form_ok(req))
		return 0;
	c.limit = -1;
	c.per_metric_limit = -1;
	if ((v = http_request_arg(req, "limit")) != NULL && v[0] != '\0') {
		errno = 0;
		c.limit = strtol(v, &end, 10);
		if (*end != '\0' || errno != 0)
			return api_error(req, API_ERR_BAD_DATA, "limit must be a number");
	}
	metric = http_request_arg(req, "metric");
	api_success_begin(&r);
	json_object_begin(&r.w);
	c.w = &r.w;
	if (q->o.metadata != NULL && c.limit != 0)
		q->o.metadata(q->o.metadata_arg, metric != NULL && metric[0] != '\0' ? metric : NULL,
		    md_emit, &c);
	if (c.cur != NULL)
		json_array_end(&r.w);
	json_object_end(&r.w);
	return api_success_end(&r, req);
}

int
api_query_route(struct api_query *q, struct http_server *srv)
{
	static const struct {
		unsigned methods, flags;
		const char *path;
		http_handler_fn fn;
	} routes[] = {
		{ HTTP_GET | HTTP_POST, 0, "/api/v1/query", h_query },
		{ HTTP_GET | HTTP_POST, 0, "/api/v1/query_range", h_query_range },
		{ HTTP_GET | HTTP_POST, 0, "/api/v1/query_exemplars", h_query_exemplars },
		{ HTTP_GET | HTTP_POST, 0, "/api/v1/series", h_series },
		{ HTTP_GET | HTTP_POST, 0, "/api/v1/labels", h_labels },
		{ HTTP_GET, HTTP_ROUTE_PREFIX, "/api/v1/label/", h_label_values },
		{ HTTP_GET, 0, "/api/v1/metadata", h_metadata },
	};
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (http_server_route(srv, routes[i].methods, routes[i].path,
		    routes[i].flags | HTTP_ROUTE_GZIP, routes[i].fn, q) < 0)
			return -1;
	return 0;
}
