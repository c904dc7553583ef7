/* lib/api/federate.c - GET /federate: newest sample per matched series.
 *
 * A request first collects, per selector, the head's newest-sample entries
 * (tsdb_head_latest: no chunk is decoded), merges the selectors' results
 * (a series matched twice is sent once), drops stale markers and orders the
 * entries by metric name as Prometheus does. The stream callback then
 * writes a bounded number of series per call. The collected entries hold a
 * reference on each label set, so series garbage-collected meanwhile stay
 * printable; they are released when the stream ends.
 */
#include "config.h"

#include "api/federate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/pull.h"
#include "expfmt/pull.h"
#include "expfmt/write.h"
#include "labels/selector.h"
#include "tsdb/chunk.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

/* Series written per stream callback: a few hundred KiB of text. */
#define FEDERATE_BATCH 2048

struct api_federate {
	struct tsdb_head *head;		/* borrowed */
	const struct promql_storage *store;	/* borrowed; NULL: no pulls */
	int64_t lookback_ms;
	pthread_mutex_t mu;		/* guards ext */
	struct labels *ext;		/* owned reference; never NULL */
};

/* One response: what is left to write. */
struct federate_stream {
	struct tsdb_latest *v;		/* owned, entries [pos, n) still to write */
	size_t n, pos;
	struct labels *ext;		/* owned reference: external labels, with
					 * instance="" when they lack it */
	const char *cur_name;		/* metric name of the open family */
	struct expfmt_label *lbuf;	/* owned scratch for one line's labels */
	size_t lcap;
};

struct api_federate *
api_federate_new(struct tsdb_head *head, int64_t lookback_ms)
{
	struct api_federate *f = mem_calloc(1, sizeof(*f));

	f->head = head;
	f->lookback_ms = lookback_ms;
	pthread_mutex_init(&f->mu, NULL);
	f->ext = labels_empty();
	return f;
}

void
api_federate_free(struct api_federate *f)
{
	if (f == NULL)
		return;
	labels_free(f->ext);
	pthread_mutex_destroy(&f->mu);
	mem_free(f);
}

void
api_federate_set_external_labels(struct api_federate *f, struct labels *ext)
{
	struct labels *old;

	ext = labels_ref(ext);
	pthread_mutex_lock(&f->mu);
	old = f->ext;
	f->ext = ext;
	pthread_mutex_unlock(&f->mu);
	labels_free(old);
}

/* federate_ext returns the external labels to append, with instance=""
 * added when they have no instance label (Prometheus does the same, so
 * that federated series never take the federating job's instance). */
static struct labels *
federate_ext(struct api_federate *f)
{
	struct labels *ext, *out;
	struct label *v;

	pthread_mutex_lock(&f->mu);
	ext = labels_ref(f->ext);
	pthread_mutex_unlock(&f->mu);
	if (labels_get(ext, "instance") != NULL)
		return ext;
	v = mem_calloc(ext->n + 1, sizeof(*v));
	memcpy(v, ext->v, ext->n * sizeof(*v));
	v[ext->n].name = "instance";
	v[ext->n].value = "";
	out = labels_new(v, ext->n + 1);
	mem_free(v);
	labels_free(ext);
	return out;
}

static int
cmp_by_ref(const void *a, const void *b)
{
	const struct tsdb_latest *x = a, *y = b;

	return x->ref < y->ref ? -1 : x->ref > y->ref;
}

/* cmp_by_name orders by metric name, then by label set (Prometheus leaves
 * the order inside a name unspecified; this makes it deterministic). */
static int
cmp_by_name(const void *a, const void *b)
{
	const struct tsdb_latest *x = a, *y = b;
	const char *nx = labels_name(x->ls), *ny = labels_name(y->ls);
	int c = nx == ny ? 0 : strcmp(nx, ny);

	return c != 0 ? c : labels_compare(x->ls, y->ls);
}

static bool
is_stale(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits == CHUNK_STALE_NAN_BITS;
}

/* newest_before replaces e's sample, newer than maxt (a sample from the
 * future), with the newest one in [mint, maxt]. Returns false when there
 * is none. */
static bool
newest_before(struct tsdb_head *h, struct tsdb_latest *e, int64_t mint, int64_t maxt)
{
	struct tsdb_series_set *ss;
	struct matcher *ms[64];
	const struct labels *ls = e->ls;
	size_t i, n = 0;
	bool found = false;
	int64_t t;
	double v;

	for (i = 0; i < ls->n && n < 64; i++) {
		ms[n] = matcher_new(MATCH_EQUAL, ls->v[i].name, ls->v[i].value, NULL, 0);
		if (ms[n] != NULL)
			n++;
	}
	ss = n > 0 ? tsdb_head_select(h, ms, n, mint, maxt) : NULL;
	while (ss != NULL && tsdb_series_set_next(ss)) {
		struct tsdb_iter *it;

		if (tsdb_series_set_ref(ss) != e->ref)
			continue;
		it = tsdb_series_set_iter(ss);
		while (tsdb_iter_next(it, &t, &v)) {
			if (t > maxt)
				break;
			e->t = t;
			e->v = v;
			found = true;
		}
	}
	tsdb_series_set_free(ss);
	for (i = 0; i < n; i++)
		matcher_free(ms[i]);
	return found;
}

/* federate_collect fills *out with the entries to send for the selectors
 * sel[0..nsel) at now. Returns 0, or -1 with the selector's parse error. */
static int
federate_collect(struct api_federate *f, const char *const *sel, size_t nsel,
    int64_t now, struct tsdb_latest **out, size_t *nout, char *err, size_t errlen)
{
	struct tsdb_latest *all = NULL;
	size_t i, j, n = 0, k;
	int64_t mint = now - f->lookback_ms;

	*out = NULL;
	*nout = 0;
	for (i = 0; i < nsel; i++) {
		struct selector s;
		struct tsdb_latest *v;
		size_t nv;

		if (selector_parse(sel[i], strlen(sel[i]), &s, err, errlen) < 0) {
			tsdb_latest_free(all, n);
			return -1;
		}
		tsdb_head_latest(f->head, s.ms, s.n, mint, &v, &nv);
		selector_free(&s);
		if (nv > 0) {
			all = mem_realloc(all, (n + nv) * sizeof(*all));
			memcpy(all + n, v, nv * sizeof(*v));
			n += nv;
		}
		mem_free(v);	/* the entries (and their references) moved to all */
	}
	/* Several selectors may match one series: keep it once. */
	if (nsel > 1 && n > 1) {
		qsort(all, n, sizeof(*all), cmp_by_ref);
		for (i = 1, j = 0; i < n; i++) {
			if (all[i].ref == all[j].ref)
				labels_free(all[i].ls);
			else
				all[++j] = all[i];
		}
		n = j + 1;
	}
	/* Drop stale series; step back from samples in the future. */
	for (i = 0, k = 0; i < n; i++) {
		bool keep = true;

		if (all[i].t > now)
			keep = newest_before(f->head, &all[i], mint, now);
		if (keep && is_stale(all[i].v))
			keep = false;
		if (keep && labels_name(all[i].ls)[0] == '\0') {
			log_kv(LOG_WARN, "federation", "Ignoring nameless metric during federation",
			    (char *)NULL);
			keep = false;
		}
		if (keep)
			all[k++] = all[i];
		else
			labels_free(all[i].ls);
	}
	n = k;
	/* The head returns label-set order, which is name order when every
	 * set starts with its name (no label name sorts before "__name__"):
	 * sort only otherwise. */
	for (i = 0; i < n; i++)
		if (strcmp(all[i].ls->v[0].name, LABEL_METRIC_NAME) != 0)
			break;
	if (nsel > 1 || i < n)
		qsort(all, n, sizeof(*all), cmp_by_name);
	*out = all;
	*nout = n;
	return 0;
}

/* federate_write_some appends up to max series of st to sb. Returns true
 * when everything has been written. */
static bool
federate_write_some(struct federate_stream *st, struct strbuf *sb, size_t max)
{
	const struct labels *ext = st->ext;
	size_t end = st->pos + max < st->n ? st->pos + max : st->n;

	for (; st->pos < end; st->pos++) {
		const struct tsdb_latest *e = &st->v[st->pos];
		const struct labels *ls = e->ls;
		const char *name = labels_name(ls);
		size_t i, j, k = 0, need = ls->n + ext->n;

		if (need > st->lcap) {
			st->lcap = need * 2;
			st->lbuf = mem_realloc(st->lbuf, st->lcap * sizeof(*st->lbuf));
		}
		if (st->cur_name == NULL || strcmp(st->cur_name, name) != 0) {
			expfmt_write_type(sb, name, strlen(name), EXPFMT_UNKNOWN);
			st->cur_name = name;
		}
		for (i = 0; i < ls->n; i++) {
			if (strcmp(ls->v[i].name, LABEL_METRIC_NAME) == 0 || ls->v[i].value[0] == '\0')
				continue;
			st->lbuf[k].name.p = ls->v[i].name;
			st->lbuf[k].name.len = strlen(ls->v[i].name);
			st->lbuf[k].value.p = ls->v[i].value;
			st->lbuf[k].value.len = strlen(ls->v[i].value);
			k++;
		}
		/* External labels the series lacks, in their sorted order. */
		for (j = 0; j < ext->n; j++) {
			const char *v = labels_get(ls, ext->v[j].name);

			if (v != NULL && v[0] != '\0')
				continue;
			st->lbuf[k].name.p = ext->v[j].name;
			st->lbuf[k].name.len = strlen(ext->v[j].name);
			st->lbuf[k].value.p = ext->v[j].value;
			st->lbuf[k].value.len = strlen(ext->v[j].value);
			k++;
		}
		expfmt_write_sample(sb, name, strlen(name), st->lbuf, k, e->v, true, e->t);
	}
	return st->pos >= st->n;
}

static void
federate_stream_free(void *arg)
{
	struct federate_stream *st = arg;

	tsdb_latest_free(st->v, st->n);
	labels_free(st->ext);
	mem_free(st->lbuf);
	mem_free(st);
}

int
api_federate_write(struct api_federate *f, const char *const *sel, size_t n,
    int64_t now_ms, struct strbuf *out, char *err, size_t errlen)
{
	struct federate_stream *st = mem_calloc(1, sizeof(*st));

	if (federate_collect(f, sel, n, now_ms, &st->v, &st->n, err, errlen) < 0) {
		mem_free(st);
		return -1;
	}
	st->ext = federate_ext(f);
	federate_write_some(st, out, SIZE_MAX);
	federate_stream_free(st);
	return 0;
}

static int
federate_next(struct http_stream *s, void *arg)
{
	return federate_write_some(arg, http_stream_buf(s), FEDERATE_BATCH) ? 0 : 1;
}

static int
federate_handler(struct http_request *req, void *arg)
{
	struct api_federate *f = arg;
	struct federate_stream *st;
	const char *const *sel;
	const char *ferr, *since;
	char err[512];
	size_t n;

	if ((ferr = http_request_form_error(req)) != NULL)
		return http_respond_text(req, 400, "error parsing form values: %s\n", ferr);
	sel = http_request_args(req, "match[]", &n);
	if (f->store != NULL && (since = http_request_header(req, PULL_SINCE_HEADER)) != NULL) {
		struct labels *ext = federate_ext(f);
		const char *win;
		char *end;
		long long v = strtoll(since, &end, 10);
		int rc;

		if (*since == '\0' || *end != '\0') {
			labels_free(ext);
			return http_respond_text(req, 400, "bad %s header: %s\n",
			    PULL_SINCE_HEADER, since);
		}
		win = http_request_header(req, PULL_WINDOW_HEADER);
		rc = api_pull_respond(req, f->store, sel, n, (int64_t)v,
		    time_now_ms() - API_PULL_SETTLE_MS,
		    win != NULL ? (int64_t)strtoll(win, NULL, 10) : 0, ext);
		labels_free(ext);
		return rc;
	}
	st = mem_calloc(1, sizeof(*st));
	if (federate_collect(f, sel, n, time_now_ms(), &st->v, &st->n, err, sizeof(err)) < 0) {
		mem_free(st);
		return http_respond_text(req, 400, "%s\n", err);
	}
	st->ext = federate_ext(f);
	return http_respond_stream(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    federate_next, st, federate_stream_free);
}

void
api_federate_set_storage(struct api_federate *f, const struct promql_storage *st)
{
	f->store = st;
}

int
api_federate_route(struct api_federate *f, struct http_server *srv)
{
	return http_server_route(srv, HTTP_GET, "/federate", HTTP_ROUTE_GZIP,
	    federate_handler, f);
}
