/* lib/promql/functions.c - the PromQL 2.42 functions.
 *
 * Instant-vector functions get one step's argument vectors and append to
 * the call's output; range-vector functions get one series' window of
 * points and return one value or none. The arithmetic is Prometheus':
 * rate/increase/delta extrapolate as extrapolatedRate does (half an
 * interval, or to zero for counters), sums and regressions use Kahan
 * summation, min/max treat NaN as Go's math does, date functions work in
 * UTC on the proleptic Gregorian calendar. Stateless apart from the
 * per-call caches in struct pq_call; runs on the query's thread.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "labels/regex.h"
#include "promql/internal.h"
#include "util/mem.h"
#include "util/strbuf.h"

/* ---- helpers --------------------------------------------------------------- */

static double
go_max(double x, double y)
{
	if (isinf(x) && x > 0)
		return x;
	if (isinf(y) && y > 0)
		return y;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? y : x;
	return x > y ? x : y;
}

static double
go_min(double x, double y)
{
	if (isinf(x) && x < 0)
		return x;
	if (isinf(y) && y < 0)
		return y;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? x : y;
	return x < y ? x : y;
}

static void
kahan_inc(double inc, double *sum, double *c)
{
	double t = *sum + inc;

	if (fabs(*sum) >= fabs(inc))
		*c += (*sum - t) + inc;
	else
		*c += (inc - t) + *sum;
	*sum = t;
}

static double
scalar_in(struct pq_vector *const *in, size_t nin, size_t i, double def)
{
	if (i >= nin || in[i]->n == 0)
		return def;
	return in[i]->s[0].v;
}

/* simple applies f to every sample, dropping the metric name. */
static void
simple(struct pq_call *c, struct pq_vector *const *in, double (*f)(double))
{
	struct pq_vector *v = in[0];
	size_t i;

	for (i = 0; i < v->n; i++)
		pq_vec_push(c->ev->q, c->out, pq_drop_name_cached(c, v->s[i].ls), f(v->s[i].v));
}

#define SIMPLE(name, expr) \
	static double name##_f(double v) { return (expr); } \
	static void fn_##name(struct pq_call *c, struct pq_vector *const *in, size_t nin) \
	{ (void)nin; simple(c, in, name##_f); }

static double
go_log2(double x)
{
	int e;
	double frac = frexp(x, &e);

	if (frac == 0.5)
		return (double)(e - 1);
	return log(frac) * (1 / M_LN2) + (double)e;
}

static double
go_sgn(double v)
{
	if (v < 0)
		return -1;
	if (v > 0)
		return 1;
	return v;
}

SIMPLE(abs, fabs(v))
SIMPLE(ceil, ceil(v))
SIMPLE(floor, floor(v))
SIMPLE(exp, exp(v))
SIMPLE(sqrt, sqrt(v))
SIMPLE(ln, log(v))
SIMPLE(log2, go_log2(v))
SIMPLE(log10, log10(v))
SIMPLE(sin, sin(v))
SIMPLE(cos, cos(v))
SIMPLE(tan, tan(v))
SIMPLE(asin, asin(v))
SIMPLE(acos, acos(v))
SIMPLE(atan, atan(v))
SIMPLE(sinh, sinh(v))
SIMPLE(cosh, cosh(v))
SIMPLE(tanh, tanh(v))
SIMPLE(asinh, asinh(v))
SIMPLE(acosh, acosh(v))
SIMPLE(atanh, atanh(v))
SIMPLE(rad, v * M_PI / 180)
SIMPLE(deg, v * 180 / M_PI)
SIMPLE(sgn, go_sgn(v))

static void
fn_none(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	/* histogram_count/sum/fraction: native histograms only, none here */
	(void)c;
	(void)in;
	(void)nin;
}

static void
fn_time(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	(void)in;
	(void)nin;
	pq_vec_push(c->ev->q, c->out, labels_empty(), (double)c->ts / 1000.0);
}

static void
fn_pi(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	(void)in;
	(void)nin;
	pq_vec_push(c->ev->q, c->out, labels_empty(), M_PI);
}

static void
fn_vector(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	pq_vec_push(c->ev->q, c->out, labels_empty(), scalar_in(in, nin, 0, NAN));
}

static void
fn_scalar(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	(void)nin;
	pq_vec_push(c->ev->q, c->out, labels_empty(), in[0]->n == 1 ? in[0]->s[0].v : NAN);
}

static void
fn_timestamp(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	size_t i;

	(void)nin;
	for (i = 0; i < in[0]->n; i++)
		pq_vec_push(c->ev->q, c->out, pq_drop_name_cached(c, in[0]->s[i].ls),
		    (double)in[0]->s[i].t / 1000.0);
}

static void
fn_clamp(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	double min = scalar_in(in, nin, 1, NAN), max = scalar_in(in, nin, 2, NAN);
	size_t i;

	if (max < min)
		return;
	for (i = 0; i < in[0]->n; i++)
		pq_vec_push(c->ev->q, c->out, pq_drop_name_cached(c, in[0]->s[i].ls),
		    go_max(min, go_min(max, in[0]->s[i].v)));
}

static void
fn_clamp_max(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	double max = scalar_in(in, nin, 1, NAN);
	size_t i;

	for (i = 0; i < in[0]->n; i++)
		pq_vec_push(c->ev->q, c->out, pq_drop_name_cached(c, in[0]->s[i].ls),
		    go_min(max, in[0]->s[i].v));
}

static void
fn_clamp_min(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	double min = scalar_in(in, nin, 1, NAN);
	size_t i;

	for (i = 0; i < in[0]->n; i++)
		pq_vec_push(c->ev->q, c->out, pq_drop_name_cached(c, in[0]->s[i].ls),
		    go_max(min, in[0]->s[i].v));
}

static void
fn_round(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	double to = c->nargs >= 2 ? scalar_in(in, nin, 1, NAN) : 1, inv = 1.0 / to;
	size_t i;

	for (i = 0; i < in[0]->n; i++)
		pq_vec_push(c->ev->q, c->out, pq_drop_name_cached(c, in[0]->s[i].ls),
		    floor(in[0]->s[i].v * inv + 0.5) / inv);
}

static void
fn_absent(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	(void)nin;
	if (in[0]->n > 0)
		return;
	pq_vec_push(c->ev->q, c->out, pq_absent_labels(c->ev->q, c->args[0]), 1);
}

/* sort_by sorts the input vector as Go's sort.Sort(sort.Reverse(h)) with h
 * ordering by value (desc false: by reverse value, NaN first). */
static bool
sort_less(const struct pq_sample *a, const struct pq_sample *b, bool desc)
{
	/* Reverse(h).Less(i, j) = h.Less(j, i) */
	if (isnan(b->v))
		return true;
	return desc ? b->v < a->v : b->v > a->v;
}

static void
sort_samples(struct pq_call *c, struct pq_sample *s, size_t n, bool desc)
{
	size_t i, j;

	if (n <= 12) {
		for (i = 1; i < n; i++) {
			for (j = i; j > 0 && sort_less(&s[j], &s[j - 1], desc); j--) {
				struct pq_sample t = s[j];

				s[j] = s[j - 1];
				s[j - 1] = t;
			}
		}
		return;
	}
	{
		struct pq_sample *tmp = pq_alloc(c->ev->q, n * sizeof(*tmp));
		size_t width;

		for (width = 1; width < n; width *= 2) {
			for (i = 0; i < n; i += 2 * width) {
				size_t lo = i, mid = i + width < n ? i + width : n;
				size_t hi = i + 2 * width < n ? i + 2 * width : n;
				size_t a = lo, b = mid, k = lo;

				while (a < mid && b < hi) {
					if (sort_less(&s[b], &s[a], desc))
						tmp[k++] = s[b++];
					else
						tmp[k++] = s[a++];
				}
				while (a < mid)
					tmp[k++] = s[a++];
				while (b < hi)
					tmp[k++] = s[b++];
			}
			memcpy(s, tmp, n * sizeof(*s));
		}
		pq_free(c->ev->q, tmp);
	}
}

static void
fn_sort_common(struct pq_call *c, struct pq_vector *const *in, bool desc)
{
	size_t i, start = c->out->n;

	for (i = 0; i < in[0]->n; i++)
		pq_vec_push(c->ev->q, c->out, in[0]->s[i].ls, in[0]->s[i].v);
	sort_samples(c, c->out->s + start, c->out->n - start, desc);
}

static void
fn_sort(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	(void)nin;
	fn_sort_common(c, in, false);
}

static void
fn_sort_desc(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	(void)nin;
	fn_sort_common(c, in, true);
}

static void
fn_label_replace(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	struct pq_query *q = c->ev->q;
	const char *dst = pq_string_arg(c->args[1]), *repl = pq_string_arg(c->args[2]);
	const char *src = pq_string_arg(c->args[3]), *pat = pq_string_arg(c->args[4]);
	size_t i;

	(void)nin;
	if (!c->inited) {
		char err[256];

		c->re = regex_new(pat, strlen(pat), err, sizeof(err));
		if (c->re == NULL)
			pq_fail(c->ev, PROMQL_ERR_EXECUTION,
			    "invalid regular expression in label_replace(): %s", pat);
		pq_regex_track(q, c->re);
		if (!labels_is_valid_name(dst, strlen(dst)))
			pq_fail(c->ev, PROMQL_ERR_EXECUTION,
			    "invalid destination label name in label_replace(): %s", dst);
		c->inited = true;
	}
	for (i = 0; i < in[0]->n; i++) {
		struct labels *ls = in[0]->s[i].ls, *outm;
		uint64_t *slot = pq_map_get(&c->cache, (uint64_t)(uintptr_t)ls);
		bool found;

		if (slot != NULL) {
			outm = (struct labels *)(uintptr_t)*slot;
		} else {
			const char *sv = labels_get(ls, src);
			struct regex_match m;

			if (sv == NULL)
				sv = "";
			if (!regex_match_groups(c->re, sv, strlen(sv), &m)) {
				outm = ls;
			} else {
				struct strbuf res = STRBUF_INIT;
				struct labels_builder *lb = labels_builder_new();

				regex_expand(c->re, repl, sv, &m, &res);
				labels_builder_reset(lb, ls);
				labels_builder_del(lb, dst);
				if (res.len > 0)
					labels_builder_setn(lb, dst, strlen(dst), res.buf, res.len);
				outm = pq_pool(q, labels_builder_labels(lb));
				labels_builder_free(lb);
				strbuf_free(&res);
			}
			*pq_map_put(q, &c->cache, (uint64_t)(uintptr_t)ls, &found) =
			    (uint64_t)(uintptr_t)outm;
		}
		pq_vec_push(q, c->out, outm, in[0]->s[i].v);
	}
}

static void
fn_label_join(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	struct pq_query *q = c->ev->q;
	const char *dst = pq_string_arg(c->args[1]), *sep = pq_string_arg(c->args[2]);
	size_t i, j;

	(void)nin;
	for (j = 3; j < c->nargs; j++) {
		const char *s = pq_string_arg(c->args[j]);

		if (!labels_is_valid_name(s, strlen(s)))
			pq_fail(c->ev, PROMQL_ERR_EXECUTION,
			    "invalid source label name in label_join(): %s", s);
	}
	if (!labels_is_valid_name(dst, strlen(dst)))
		pq_fail(c->ev, PROMQL_ERR_EXECUTION,
		    "invalid destination label name in label_join(): %s", dst);
	for (i = 0; i < in[0]->n; i++) {
		struct labels *ls = in[0]->s[i].ls, *outm;
		uint64_t *slot = pq_map_get(&c->cache, (uint64_t)(uintptr_t)ls);
		bool found;

		if (slot != NULL) {
			outm = (struct labels *)(uintptr_t)*slot;
		} else {
			struct strbuf sb = STRBUF_INIT;
			struct labels_builder *lb = labels_builder_new();

			for (j = 3; j < c->nargs; j++) {
				const char *v = labels_get(ls, pq_string_arg(c->args[j]));

				if (j > 3)
					strbuf_puts(&sb, sep);
				if (v != NULL)
					strbuf_puts(&sb, v);
			}
			labels_builder_reset(lb, ls);
			if (sb.len == 0)
				labels_builder_del(lb, dst);
			else
				labels_builder_setn(lb, dst, strlen(dst), sb.buf, sb.len);
			outm = pq_pool(q, labels_builder_labels(lb));
			labels_builder_free(lb);
			strbuf_free(&sb);
			*pq_map_put(q, &c->cache, (uint64_t)(uintptr_t)ls, &found) =
			    (uint64_t)(uintptr_t)outm;
		}
		pq_vec_push(q, c->out, outm, in[0]->s[i].v);
	}
}

/* ---- dates -------------------------------------------------------------------- */

/* The calendar arithmetic of Go's time package (absDate and friends),
 * including its wrap-around for seconds far outside of any calendar, so
 * that hour(vector(+Inf)) gives what Prometheus gives. */

struct civil {
	long long year;
	int month, day, yday, wday, hour, minute;
};

static bool
is_leap(long long y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static void
civil_from_unix(long long secs, struct civil *c)
{
	static const int before[13] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365 };
	const uint64_t per400 = 365 * 400 + 97, per100 = 365 * 100 + 24, per4 = 365 * 4 + 1;
	/* unixToInternal + internalToAbsolute, added with wrap-around */
	uint64_t abs = (uint64_t)secs + 9223372028715321600ULL;
	uint64_t d = abs / 86400, n, y;
	int day, month, end, begin;

	n = d / per400;
	y = 400 * n;
	d -= per400 * n;
	n = d / per100;
	n -= n >> 2;
	y += 100 * n;
	d -= per100 * n;
	n = d / per4;
	y += 4 * n;
	d -= per4 * n;
	n = d / 365;
	n -= n >> 2;
	y += n;
	d -= 365 * n;
	c->year = (long long)y + -292277022399LL;
	c->yday = (int)d + 1;
	day = (int)d;
	c->month = 0;
	if (is_leap(c->year) && day >= 31 + 29 - 1) {
		if (day == 31 + 29 - 1) {
			c->month = 2;
			c->day = 29;
			goto time;
		}
		day--;
	}
	month = day / 31;
	end = before[month + 1];
	if (day >= end) {
		month++;
		begin = end;
	} else {
		begin = before[month];
	}
	c->month = month + 1;
	c->day = day - begin + 1;
time:
	c->wday = (int)(((abs + 86400 * 1) % (7 * 86400)) / 86400);
	c->hour = (int)(abs % 86400 / 3600);
	c->minute = (int)(abs % 3600 / 60);
}

static int
days_in_month(long long year, int month)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return month == 2 && is_leap(year) ? 29 : d[month - 1];
}

static long long
go_int64(double v)
{
	/* Go's int64(f) on amd64: out of range and NaN give the minimum */
	if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
		return (long long)(-9223372036854775807LL - 1);
	return (long long)v;
}

static double
date_part(enum promql_function_id id, long long secs)
{
	struct civil c;

	civil_from_unix(secs, &c);
	switch (id) {
	case PROMQL_FN_DAYS_IN_MONTH:
		return days_in_month(c.year, c.month);
	case PROMQL_FN_DAY_OF_MONTH:
		return c.day;
	case PROMQL_FN_DAY_OF_WEEK:
		return c.wday;
	case PROMQL_FN_DAY_OF_YEAR:
		return c.yday;
	case PROMQL_FN_HOUR:
		return c.hour;
	case PROMQL_FN_MINUTE:
		return c.minute;
	case PROMQL_FN_MONTH:
		return c.month;
	default:
		return (double)c.year;
	}
}

static void
fn_date(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	enum promql_function_id id = c->node->u.call.func->id;
	size_t i;

	if (nin == 0) {
		pq_vec_push(c->ev->q, c->out, labels_empty(),
		    date_part(id, c->ts / 1000));
		return;
	}
	for (i = 0; i < in[0]->n; i++)
		pq_vec_push(c->ev->q, c->out, pq_drop_name_cached(c, in[0]->s[i].ls),
		    date_part(id, go_int64(in[0]->s[i].v)));
}

/* ---- quantiles ---------------------------------------------------------------- */

static int
cmp_nan_first(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	if (isnan(x))
		return isnan(y) ? 0 : -1;
	if (isnan(y))
		return 1;
	return x < y ? -1 : x > y ? 1 : 0;
}

double
pq_quantile(double q, double *v, size_t n)
{
	double rank, lo, hi, w, fn;

	if (n == 0 || isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(v, n, sizeof(*v), cmp_nan_first);
	fn = (double)n;
	rank = q * (fn - 1);
	lo = fmax(0, floor(rank));
	hi = fmin(fn - 1, lo + 1);
	w = rank - floor(rank);
	return v[(size_t)lo] * (1 - w) + v[(size_t)hi] * w;
}

struct bucket {
	double ub, count;
};

static int
cmp_bucket(const void *a, const void *b)
{
	double x = ((const struct bucket *)a)->ub, y = ((const struct bucket *)b)->ub;

	return x < y ? -1 : x > y ? 1 : 0;
}

static double
bucket_quantile(double q, struct bucket *b, size_t n)
{
	double observations, rank, start = 0, end, count, max;
	size_t i, k, lo, hi;

	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(b, n, sizeof(*b), cmp_bucket);
	if (!(isinf(b[n - 1].ub) && b[n - 1].ub > 0))
		return NAN;
	/* coalesce equal upper bounds */
	for (i = 1, k = 0; i < n; i++) {
		if (b[i].ub == b[k].ub) {
			b[k].count += b[i].count;
		} else {
			b[++k] = b[i];
		}
	}
	n = k + 1;
	max = b[0].count;
	for (i = 1; i < n; i++) {
		if (b[i].count > max)
			max = b[i].count;
		else if (b[i].count < max)
			b[i].count = max;
	}
	if (n < 2)
		return NAN;
	observations = b[n - 1].count;
	if (observations == 0)
		return NAN;
	rank = q * observations;
	/* sort.Search over the first n-1 buckets */
	lo = 0;
	hi = n - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (!(b[mid].count >= rank))
			lo = mid + 1;
		else
			hi = mid;
	}
	k = lo;
	if (k == n - 1)
		return b[n - 2].ub;
	if (k == 0 && b[0].ub <= 0)
		return b[0].ub;
	end = b[k].ub;
	count = b[k].count;
	if (k > 0) {
		start = b[k - 1].ub;
		count -= b[k - 1].count;
		rank -= b[k - 1].count;
	}
	return start + (end - start) * (rank / count);
}

/* go_parse_float is strconv.ParseFloat for the upper bounds of buckets. */
static bool
go_parse_float(const char *s, double *out)
{
	const char *p = s;
	size_t digits = 0;
	char *end;

	if (*p == '+' || *p == '-')
		p++;
	if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
		*out = s[0] == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (strcasecmp(p, "nan") == 0) {
		*out = NAN;
		return true;
	}
	while (*p >= '0' && *p <= '9') {
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			digits++;
		}
	}
	if (digits == 0)
		return false;
	if (*p == 'e' || *p == 'E') {
		size_t ed = 0;

		p++;
		if (*p == '+' || *p == '-')
			p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			ed++;
		}
		if (ed == 0)
			return false;
	}
	if (*p != '\0')
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return !(errno == ERANGE && isinf(*out));
}

struct hq_group {
	struct labels *ls;
	struct bucket *b;
	size_t n, cap;
};

static void
fn_histogram_quantile(struct pq_call *c, struct pq_vector *const *in, size_t nin)
{
	struct pq_query *q = c->ev->q;
	double qv = scalar_in(in, nin, 0, NAN);
	struct pq_vector *v = in[1];
	struct pq_map groups = { 0 };
	struct hq_group *g = NULL;
	size_t i, ng = 0;

	for (i = 0; i < v->n; i++) {
		const char *ub = labels_get(v->s[i].ls, "le");
		struct label *tmp;
		struct labels *ls = v->s[i].ls;
		uint64_t sig, *slot;
		double upper;
		bool found;
		size_t j, k = 0;

		if (ub == NULL || !go_parse_float(ub, &upper))
			continue;
		/* signature: every label but le (the metric name included) */
		tmp = pq_alloc(q, (ls->n + 1) * sizeof(*tmp));
		for (j = 0; j < ls->n; j++)
			if (strcmp(ls->v[j].name, "le") != 0)
				tmp[k++] = ls->v[j];
		sig = labels_hash(tmp, k);
		pq_free(q, tmp);
		slot = pq_map_put(q, &groups, sig, &found);
		if (!found) {
			struct labels *gl;
			uint64_t *cs = pq_map_get(&c->cache, sig);

			if (cs != NULL) {
				gl = (struct labels *)(uintptr_t)*cs;
			} else {
				struct label *lv = pq_alloc(q, (ls->n + 1) * sizeof(*lv));

				k = 0;
				for (j = 0; j < ls->n; j++)
					if (strcmp(ls->v[j].name, "le") != 0 &&
					    strcmp(ls->v[j].name, LABEL_METRIC_NAME) != 0)
						lv[k++] = ls->v[j];
				gl = pq_labels(q, lv, k);
				pq_free(q, lv);
				*pq_map_put(q, &c->cache, sig, &found) = (uint64_t)(uintptr_t)gl;
			}
			*pq_map_put(q, &groups, sig, &found) = ng;
			g = pq_realloc(q, g, (ng + 1) * sizeof(*g));
			memset(&g[ng], 0, sizeof(*g));
			g[ng].ls = gl;
			slot = pq_map_get(&groups, sig);
			ng++;
		}
		{
			struct hq_group *gg = &g[*slot];

			if (gg->n == gg->cap) {
				gg->cap = gg->cap ? gg->cap * 2 : 8;
				gg->b = pq_realloc(q, gg->b, gg->cap * sizeof(*gg->b));
			}
			gg->b[gg->n].ub = upper;
			gg->b[gg->n].count = v->s[i].v;
			gg->n++;
		}
	}
	for (i = 0; i < ng; i++) {
		pq_vec_push(q, c->out, g[i].ls, bucket_quantile(qv, g[i].b, g[i].n));
		pq_free(q, g[i].b);
	}
	pq_free(q, g);
	pq_map_free(q, &groups);
}

/* ---- range-vector functions -------------------------------------------------- */

static double
duration_seconds(int64_t ms)
{
	/* time.Duration.Seconds(): whole seconds plus the nanosecond rest */
	int64_t ns = ms * 1000000;

	return (double)(ns / 1000000000) + (double)(ns % 1000000000) / 1e9;
}

static bool
extrapolated_rate(const struct pq_point *p, size_t n, int64_t range_start, int64_t range_end,
    int64_t range, bool is_counter, bool is_rate, double *out)
{
	double result, prev, to_start, to_end, sampled, avg, threshold, extrap, factor;
	size_t i;

	if (n < 2)
		return false;
	result = p[n - 1].v - p[0].v;
	if (is_counter) {
		prev = p[0].v;
		for (i = 1; i < n; i++) {
			if (p[i].v < prev)
				result += prev;
			prev = p[i].v;
		}
	}
	to_start = (double)(p[0].t - range_start) / 1000;
	to_end = (double)(range_end - p[n - 1].t) / 1000;
	sampled = (double)(p[n - 1].t - p[0].t) / 1000;
	avg = sampled / (double)(n - 1);
	if (is_counter && result > 0 && p[0].v >= 0) {
		double to_zero = sampled * (p[0].v / result);

		if (to_zero < to_start)
			to_start = to_zero;
	}
	threshold = avg * 1.1;
	extrap = sampled;
	extrap += to_start < threshold ? to_start : avg / 2;
	extrap += to_end < threshold ? to_end : avg / 2;
	factor = extrap / sampled;
	if (is_rate)
		factor /= duration_seconds(range);
	*out = result * factor;
	return true;
}

static bool
fm_rate(struct pq_call *c, const struct pq_point *p, size_t n, int64_t mint, int64_t maxt,
    int64_t range, const double *sc, double *out)
{
	(void)c;
	(void)sc;
	return extrapolated_rate(p, n, mint, maxt, range, true, true, out);
}

static bool
fm_increase(struct pq_call *c, const struct pq_point *p, size_t n, int64_t mint, int64_t maxt,
    int64_t range, const double *sc, double *out)
{
	(void)c;
	(void)sc;
	return extrapolated_rate(p, n, mint, maxt, range, true, false, out);
}

static bool
fm_delta(struct pq_call *c, const struct pq_point *p, size_t n, int64_t mint, int64_t maxt,
    int64_t range, const double *sc, double *out)
{
	(void)c;
	(void)sc;
	return extrapolated_rate(p, n, mint, maxt, range, false, false, out);
}

static bool
instant_value(const struct pq_point *p, size_t n, bool is_rate, double *out)
{
	const struct pq_point *last, *prev;
	double r;
	int64_t iv;

	if (n < 2)
		return false;
	last = &p[n - 1];
	prev = &p[n - 2];
	if (is_rate && last->v < prev->v)
		r = last->v;
	else
		r = last->v - prev->v;
	iv = last->t - prev->t;
	if (iv == 0)
		return false;
	if (is_rate)
		r /= (double)iv / 1000;
	*out = r;
	return true;
}

#define MAT_ARGS struct pq_call *c, const struct pq_point *p, size_t n, int64_t mint, \
	int64_t maxt, int64_t range, const double *sc, double *out
#define MAT_UNUSED (void)c; (void)mint; (void)maxt; (void)range; (void)sc

static bool
fm_irate(MAT_ARGS)
{
	MAT_UNUSED;
	return instant_value(p, n, true, out);
}

static bool
fm_idelta(MAT_ARGS)
{
	MAT_UNUSED;
	return instant_value(p, n, false, out);
}

static bool
fm_avg_over_time(MAT_ARGS)
{
	double mean = 0, cc = 0, count = 0;
	size_t i;

	MAT_UNUSED;
	for (i = 0; i < n; i++) {
		double v = p[i].v;

		count++;
		if (isinf(mean)) {
			if (isinf(v) && (mean > 0) == (v > 0))
				continue;
			if (!isinf(v) && !isnan(v))
				continue;
		}
		kahan_inc(v / count - mean / count, &mean, &cc);
	}
	*out = isinf(mean) ? mean : mean + cc;
	return true;
}

static bool
fm_sum_over_time(MAT_ARGS)
{
	double sum = 0, cc = 0;
	size_t i;

	MAT_UNUSED;
	for (i = 0; i < n; i++)
		kahan_inc(p[i].v, &sum, &cc);
	*out = isinf(sum) ? sum : sum + cc;
	return true;
}

static bool
fm_count_over_time(MAT_ARGS)
{
	MAT_UNUSED;
	(void)p;
	*out = (double)n;
	return true;
}

static bool
fm_last_over_time(MAT_ARGS)
{
	MAT_UNUSED;
	*out = p[n - 1].v;
	return true;
}

static bool
fm_max_over_time(MAT_ARGS)
{
	double max = p[0].v;
	size_t i;

	MAT_UNUSED;
	for (i = 0; i < n; i++)
		if (p[i].v > max || isnan(max))
			max = p[i].v;
	*out = max;
	return true;
}

static bool
fm_min_over_time(MAT_ARGS)
{
	double min = p[0].v;
	size_t i;

	MAT_UNUSED;
	for (i = 0; i < n; i++)
		if (p[i].v < min || isnan(min))
			min = p[i].v;
	*out = min;
	return true;
}

static double
stdvar(const struct pq_point *p, size_t n)
{
	double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		double delta;

		count++;
		delta = p[i].v - (mean + cmean);
		kahan_inc(delta / count, &mean, &cmean);
		kahan_inc(delta * (p[i].v - (mean + cmean)), &aux, &caux);
	}
	return (aux + caux) / count;
}

static bool
fm_stdvar_over_time(MAT_ARGS)
{
	MAT_UNUSED;
	*out = stdvar(p, n);
	return true;
}

static bool
fm_stddev_over_time(MAT_ARGS)
{
	MAT_UNUSED;
	*out = sqrt(stdvar(p, n));
	return true;
}

static bool
fm_quantile_over_time(MAT_ARGS)
{
	double *v = pq_alloc(c->ev->q, n * sizeof(*v));
	size_t i;

	(void)mint;
	(void)maxt;
	(void)range;
	for (i = 0; i < n; i++)
		v[i] = p[i].v;
	*out = pq_quantile(sc[0], v, n);
	pq_free(c->ev->q, v);
	return true;
}

static bool
fm_present_over_time(MAT_ARGS)
{
	MAT_UNUSED;
	(void)p;
	(void)n;
	*out = 1;
	return true;
}

static bool
fm_resets(MAT_ARGS)
{
	double prev = p[0].v;
	size_t i, r = 0;

	MAT_UNUSED;
	for (i = 1; i < n; i++) {
		if (p[i].v < prev)
			r++;
		prev = p[i].v;
	}
	*out = (double)r;
	return true;
}

static bool
fm_changes(MAT_ARGS)
{
	double prev = p[0].v;
	size_t i, r = 0;

	MAT_UNUSED;
	for (i = 1; i < n; i++) {
		double cur = p[i].v;

		if (cur != prev && !(isnan(cur) && isnan(prev)))
			r++;
		prev = cur;
	}
	*out = (double)r;
	return true;
}

static void
linear_regression(const struct pq_point *p, size_t n, int64_t intercept_time,
    double *slope, double *intercept)
{
	double cnt = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
	double init_y = p[0].v, cov, var;
	bool const_y = true;
	size_t i;

	for (i = 0; i < n; i++) {
		double x;

		if (const_y && i > 0 && p[i].v != init_y)
			const_y = false;
		cnt += 1;
		x = (double)(p[i].t - intercept_time) / 1e3;
		kahan_inc(x, &sx, &cx);
		kahan_inc(p[i].v, &sy, &cy);
		kahan_inc(x * p[i].v, &sxy, &cxy);
		kahan_inc(x * x, &sx2, &cx2);
	}
	if (const_y) {
		if (isinf(init_y)) {
			*slope = NAN;
			*intercept = NAN;
			return;
		}
		*slope = 0;
		*intercept = init_y;
		return;
	}
	sx += cx;
	sy += cy;
	sxy += cxy;
	sx2 += cx2;
	cov = sxy - sx * sy / cnt;
	var = sx2 - sx * sx / cnt;
	*slope = cov / var;
	*intercept = sy / cnt - *slope * sx / cnt;
}

static bool
fm_deriv(MAT_ARGS)
{
	double slope, icpt;

	MAT_UNUSED;
	if (n < 2)
		return false;
	linear_regression(p, n, p[0].t, &slope, &icpt);
	*out = slope;
	return true;
}

static bool
fm_predict_linear(MAT_ARGS)
{
	double slope, icpt;

	(void)mint;
	(void)maxt;
	(void)range;
	if (n < 2)
		return false;
	linear_regression(p, n, c->ts, &slope, &icpt);
	*out = slope * sc[1] + icpt;
	return true;
}

/* go_fmt_f formats v as Go's %f. */
static const char *
go_fmt_f(double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "NaN");
	else if (isinf(v))
		snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
	else
		snprintf(buf, len, "%f", v);
	return buf;
}

static double
trend_value(size_t i, double tf, double s0, double s1, double b)
{
	if (i == 0)
		return b;
	return tf * (s1 - s0) + (1 - tf) * b;
}

static bool
fm_holt_winters(MAT_ARGS)
{
	double sf = sc[1], tf = sc[2], s0 = 0, s1, b, x, y;
	size_t i;

	(void)mint;
	(void)maxt;
	(void)range;
	if (sf <= 0 || sf >= 1) {
		char b1[400];

		pq_fail(c->ev, PROMQL_ERR_EXECUTION, "invalid smoothing factor. Expected: "
		    "0 < sf < 1, got: %s", go_fmt_f(sf, b1, sizeof(b1)));
	}
	if (tf <= 0 || tf >= 1) {
		char b1[400];

		pq_fail(c->ev, PROMQL_ERR_EXECUTION, "invalid trend factor. Expected: "
		    "0 < tf < 1, got: %s", go_fmt_f(tf, b1, sizeof(b1)));
	}
	if (n < 2)
		return false;
	s1 = p[0].v;
	b = p[1].v - p[0].v;
	for (i = 1; i < n; i++) {
		x = sf * p[i].v;
		b = trend_value(i - 1, tf, s0, s1, b);
		y = (1 - sf) * (s1 + b);
		s0 = s1;
		s1 = x + y;
	}
	*out = s1;
	return true;
}

static bool
fm_absent_over_time(MAT_ARGS)
{
	MAT_UNUSED;
	(void)p;
	(void)n;
	*out = 1;
	return true;
}

/* ---- the table ------------------------------------------------------------- */

#define V_(f) { f, NULL }
#define M_(f) { NULL, f }

const struct pq_func_impl pq_functions[PROMQL_FN_COUNT_] = {
	[PROMQL_FN_ABS] = V_(fn_abs),
	[PROMQL_FN_ABSENT] = V_(fn_absent),
	[PROMQL_FN_ABSENT_OVER_TIME] = M_(fm_absent_over_time),
	[PROMQL_FN_ACOS] = V_(fn_acos),
	[PROMQL_FN_ACOSH] = V_(fn_acosh),
	[PROMQL_FN_ASIN] = V_(fn_asin),
	[PROMQL_FN_ASINH] = V_(fn_asinh),
	[PROMQL_FN_ATAN] = V_(fn_atan),
	[PROMQL_FN_ATANH] = V_(fn_atanh),
	[PROMQL_FN_AVG_OVER_TIME] = M_(fm_avg_over_time),
	[PROMQL_FN_CEIL] = V_(fn_ceil),
	[PROMQL_FN_CHANGES] = M_(fm_changes),
	[PROMQL_FN_CLAMP] = V_(fn_clamp),
	[PROMQL_FN_CLAMP_MAX] = V_(fn_clamp_max),
	[PROMQL_FN_CLAMP_MIN] = V_(fn_clamp_min),
	[PROMQL_FN_COS] = V_(fn_cos),
	[PROMQL_FN_COSH] = V_(fn_cosh),
	[PROMQL_FN_COUNT_OVER_TIME] = M_(fm_count_over_time),
	[PROMQL_FN_DAYS_IN_MONTH] = V_(fn_date),
	[PROMQL_FN_DAY_OF_MONTH] = V_(fn_date),
	[PROMQL_FN_DAY_OF_WEEK] = V_(fn_date),
	[PROMQL_FN_DAY_OF_YEAR] = V_(fn_date),
	[PROMQL_FN_DEG] = V_(fn_deg),
	[PROMQL_FN_DELTA] = M_(fm_delta),
	[PROMQL_FN_DERIV] = M_(fm_deriv),
	[PROMQL_FN_EXP] = V_(fn_exp),
	[PROMQL_FN_FLOOR] = V_(fn_floor),
	[PROMQL_FN_HISTOGRAM_COUNT] = V_(fn_none),
	[PROMQL_FN_HISTOGRAM_SUM] = V_(fn_none),
	[PROMQL_FN_HISTOGRAM_FRACTION] = V_(fn_none),
	[PROMQL_FN_HISTOGRAM_QUANTILE] = V_(fn_histogram_quantile),
	[PROMQL_FN_HOLT_WINTERS] = M_(fm_holt_winters),
	[PROMQL_FN_HOUR] = V_(fn_date),
	[PROMQL_FN_IDELTA] = M_(fm_idelta),
	[PROMQL_FN_INCREASE] = M_(fm_increase),
	[PROMQL_FN_IRATE] = M_(fm_irate),
	[PROMQL_FN_LABEL_REPLACE] = V_(fn_label_replace),
	[PROMQL_FN_LABEL_JOIN] = V_(fn_label_join),
	[PROMQL_FN_LAST_OVER_TIME] = M_(fm_last_over_time),
	[PROMQL_FN_LN] = V_(fn_ln),
	[PROMQL_FN_LOG10] = V_(fn_log10),
	[PROMQL_FN_LOG2] = V_(fn_log2),
	[PROMQL_FN_MAX_OVER_TIME] = M_(fm_max_over_time),
	[PROMQL_FN_MIN_OVER_TIME] = M_(fm_min_over_time),
	[PROMQL_FN_MINUTE] = V_(fn_date),
	[PROMQL_FN_MONTH] = V_(fn_date),
	[PROMQL_FN_PI] = V_(fn_pi),
	[PROMQL_FN_PREDICT_LINEAR] = M_(fm_predict_linear),
	[PROMQL_FN_PRESENT_OVER_TIME] = M_(fm_present_over_time),
	[PROMQL_FN_QUANTILE_OVER_TIME] = M_(fm_quantile_over_time),
	[PROMQL_FN_RAD] = V_(fn_rad),
	[PROMQL_FN_RATE] = M_(fm_rate),
	[PROMQL_FN_RESETS] = M_(fm_resets),
	[PROMQL_FN_ROUND] = V_(fn_round),
	[PROMQL_FN_SCALAR] = V_(fn_scalar),
	[PROMQL_FN_SGN] = V_(fn_sgn),
	[PROMQL_FN_SIN] = V_(fn_sin),
	[PROMQL_FN_SINH] = V_(fn_sinh),
	[PROMQL_FN_SORT] = V_(fn_sort),
	[PROMQL_FN_SORT_DESC] = V_(fn_sort_desc),
	[PROMQL_FN_SQRT] = V_(fn_sqrt),
	[PROMQL_FN_STDDEV_OVER_TIME] = M_(fm_stddev_over_time),
	[PROMQL_FN_STDVAR_OVER_TIME] = M_(fm_stdvar_over_time),
	[PROMQL_FN_SUM_OVER_TIME] = M_(fm_sum_over_time),
	[PROMQL_FN_TAN] = V_(fn_tan),
	[PROMQL_FN_TANH] = V_(fn_tanh),
	[PROMQL_FN_TIME] = V_(fn_time),
	[PROMQL_FN_TIMESTAMP] = V_(fn_timestamp),
	[PROMQL_FN_VECTOR] = V_(fn_vector),
	[PROMQL_FN_YEAR] = V_(fn_date),
};
