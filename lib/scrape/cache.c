/* lib/scrape/cache.c - the per-target scrape cache, appending a scrape, staleness.
 *
 * Prometheus 2.42's scrapeLoop.append, scrapeCache, report and reportStale.
 * The cache is a dense array of entries (series text -> labels, ref) with an
 * open-addressing index of entry numbers; the series texts live in one
 * growing byte arena, so a new series costs no allocation of its own beyond
 * its label set. Scrape numbers (iter) order everything: an entry's `seen` is
 * the last successful scrape that appended it without a timestamp, `cur` the
 * scrape in progress that did, `used` the last scrape that looked it up.
 *
 * Single-threaded per cache (the worker holding the target); see cache.h.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "scrape/cache.h"
#include "scrape/target.h"
#include "tsdb/chunk.h"
#include "util/mem.h"
#include "util/strbuf.h"

struct centry {
	uint64_t khash;		/* xxh3 of the series text */
	uint64_t koff;		/* text offset in the arena */
	uint64_t ref;		/* head series ref, 0 = unknown */
	struct labels *ls;	/* final labels; NULL: dropped by relabeling */
	uint32_t klen;
	uint32_t seen;		/* last successful scrape that appended it (no timestamp) */
	uint32_t cur;		/* scrape in progress that appended it */
	uint32_t used;		/* last scrape that looked it up */
};

enum { REP_UP, REP_DURATION, REP_SCRAPED, REP_POST_RELABEL, REP_SERIES_ADDED, NREP };

static const char *const rep_names[NREP] = {
	"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added",
};

struct scrape_cache {
	struct centry *e;
	size_t n, cap;
	uint32_t *idx;		/* entry number + 1; 0 = free */
	size_t icap;		/* power of two */
	struct strbuf keys;	/* series texts */
	uint32_t iter;		/* current (or last) scrape number; 0 = none yet */
	bool open;		/* a scrape iter is in progress */
	bool last_ok;		/* the last finished scrape succeeded */
	size_t success_count;	/* entries after the last successful scrape */
	struct {
		uint64_t ref;
		struct labels *ls;
	} rep[NREP];
	struct labels *rep_target;	/* what rep[].ls were built for (a reference) */
};

struct scrape_scratch {
	struct expfmt_parser *p;
	struct labels_builder *lb;
	struct strbuf tmp;
};

static double
stale_nan(void)
{
	uint64_t b = CHUNK_STALE_NAN_BITS;
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

/* --- the table ------------------------------------------------------------- */

struct scrape_cache *
scrape_cache_new(void)
{
	return mem_calloc(1, sizeof(struct scrape_cache));
}

void
scrape_cache_free(struct scrape_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		labels_free(c->e[i].ls);
	for (i = 0; i < NREP; i++)
		labels_free(c->rep[i].ls);
	labels_free(c->rep_target);
	mem_free(c->e);
	mem_free(c->idx);
	strbuf_free(&c->keys);
	mem_free(c);
}

size_t
scrape_cache_size(const struct scrape_cache *c)
{
	return c->n;
}

bool
scrape_cache_has_scraped(const struct scrape_cache *c)
{
	return c->iter > 0;
}

static void
index_rebuild(struct scrape_cache *c, size_t icap)
{
	size_t i, mask = icap - 1;

	mem_free(c->idx);
	c->idx = mem_calloc(icap, sizeof(*c->idx));
	c->icap = icap;
	for (i = 0; i < c->n; i++) {
		size_t j = c->e[i].khash & mask;

		while (c->idx[j] != 0)
			j = (j + 1) & mask;
		c->idx[j] = (uint32_t)(i + 1);
	}
}

static struct centry *
cache_find(struct scrape_cache *c, uint64_t h, const char *k, size_t klen)
{
	size_t j, mask;

	if (c->icap == 0)
		return NULL;
	mask = c->icap - 1;
	for (j = h & mask; c->idx[j] != 0; j = (j + 1) & mask) {
		struct centry *e = &c->e[c->idx[j] - 1];

		if (e->khash == h && e->klen == klen &&
		    memcmp(c->keys.buf + e->koff, k, klen) == 0)
			return e;
	}
	return NULL;
}

/* cache_add appends an entry (the text must not be cached yet); takes the
 * reference on ls. */
static struct centry *
cache_add(struct scrape_cache *c, uint64_t h, const char *k, size_t klen,
    struct labels *ls)
{
	struct centry *e;
	size_t j, mask;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->e = mem_realloc(c->e, c->cap * sizeof(*c->e));
	}
	if ((c->n + 1) * 2 > c->icap)
		index_rebuild(c, c->icap ? c->icap * 2 : 128);
	e = &c->e[c->n];
	memset(e, 0, sizeof(*e));
	e->khash = h;
	e->koff = c->keys.len;
	e->klen = (uint32_t)klen;
	e->ls = ls;
	strbuf_append(&c->keys, k, klen);
	mask = c->icap - 1;
	for (j = h & mask; c->idx[j] != 0; j = (j + 1) & mask)
		;
	c->idx[j] = (uint32_t)(c->n + 1);
	c->n++;
	return e;
}

/* cache_flush drops the entries not looked up by scrape c->iter. */
static void
cache_flush(struct scrape_cache *c)
{
	struct strbuf keys = STRBUF_INIT;
	size_t i, n = 0;

	for (i = 0; i < c->n; i++)
		if (c->e[i].used != c->iter)
			break;
	if (i == c->n)
		return;
	strbuf_grow(&keys, c->keys.len);
	for (i = 0; i < c->n; i++) {
		struct centry *e = &c->e[i];

		if (e->used != c->iter) {
			labels_free(e->ls);
			continue;
		}
		strbuf_append(&keys, c->keys.buf + e->koff, e->klen);
		e->koff = keys.len - e->klen;
		c->e[n++] = *e;
	}
	c->n = n;
	strbuf_free(&c->keys);
	c->keys = keys;
	if (c->n == 0) {
		strbuf_free(&c->keys);
		MEM_FREE(c->idx);
		c->icap = 0;
		return;
	}
	{
		size_t icap = 128;

		while (icap < c->n * 2 + 2)
			icap *= 2;
		index_rebuild(c, icap);
	}
	if (c->cap > 64 && c->n < c->cap / 4) {
		c->cap = c->n * 2 > 64 ? c->n * 2 : 64;
		c->e = mem_realloc(c->e, c->cap * sizeof(*c->e));
	}
}

/* --- scratch --------------------------------------------------------------- */

struct scrape_scratch *
scrape_scratch_new(void)
{
	struct scrape_scratch *w = mem_calloc(1, sizeof(*w));

	w->p = expfmt_parser_new(EXPFMT_TEXT, NULL, 0);
	w->lb = labels_builder_new();
	return w;
}

void
scrape_scratch_free(struct scrape_scratch *w)
{
	if (w == NULL)
		return;
	expfmt_parser_free(w->p);
	labels_builder_free(w->lb);
	strbuf_free(&w->tmp);
	mem_free(w);
}

/* --- building a series' labels (cache misses only) ---------------------------- */

static bool
scraped_has(const struct expfmt_entry *s, const char *name)
{
	size_t i, nl = strlen(name);

	if (strcmp(name, LABEL_METRIC_NAME) == 0)
		return true;
	for (i = 0; i < s->nlabels; i++)
		if (s->labels[i].value.len > 0 && s->labels[i].name.len == nl &&
		    memcmp(s->labels[i].name.p, name, nl) == 0)
			return true;
	return false;
}

struct conflict {
	char *name;	/* owned */
	char *value;	/* owned */
};

static int
conflict_len_cmp(const struct conflict *a, const struct conflict *b)
{
	size_t la = strlen(a->name), lb = strlen(b->name);

	return la < lb ? -1 : la > lb ? 1 : 0;
}

/* resolve_conflicts renames clashing scraped labels exported_<name> (again
 * and again while that name is taken), as resolveConflictingExposedLabels. */
static void
resolve_conflicts(struct labels_builder *lb, const struct expfmt_entry *s,
    const struct labels *target, struct conflict *cf, size_t n)
{
	size_t i, j;

	/* stable insertion sort by name length */
	for (i = 1; i < n; i++) {
		struct conflict x = cf[i];

		for (j = i; j > 0 && conflict_len_cmp(&cf[j - 1], &x) > 0; j--)
			cf[j] = cf[j - 1];
		cf[j] = x;
	}
	for (i = 0; i < n; i++) {
		for (;;) {
			struct strbuf sb = STRBUF_INIT;
			bool taken;

			strbuf_printf(&sb, "exported_%s", cf[i].name);
			mem_free(cf[i].name);
			cf[i].name = strbuf_detach(&sb, NULL);
			taken = scraped_has(s, cf[i].name) ||
			    labels_get(target, cf[i].name) != NULL;
			for (j = 0; j < i && !taken; j++)
				taken = strcmp(cf[j].name, cf[i].name) == 0;
			if (!taken)
				break;
		}
	}
	for (i = 0; i < n; i++)
		labels_builder_set(lb, cf[i].name, cf[i].value);
}

/* go_quote_trunc appends %.50q of s: at most 50 runes, Go-quoted. */
static void
go_quote_trunc(struct strbuf *sb, const char *s)
{
	size_t i = 0, runes = 0;

	while (s[i] != '\0' && runes < 50) {
		i++;
		while ((s[i] & 0xc0) == 0x80)
			i++;
		runes++;
	}
	labels_quote(s, i, sb);
}

/* runes50 returns the byte length of s's first 50 runes (Go's %.50s). */
static int
runes50(const char *s)
{
	size_t i = 0, runes = 0;

	while (s[i] != '\0' && runes < 50) {
		i++;
		while ((s[i] & 0xc0) == 0x80)
			i++;
		runes++;
	}
	return (int)i;
}

/* check_limits is verifyLabelLimits. */
static int
check_limits(const struct labels *ls, const struct scrape_append_conf *conf,
    char *err, size_t errlen)
{
	const char *met = labels_name(ls);
	uint32_t i;

	if (conf->label_limit > 0 && ls->n > conf->label_limit) {
		snprintf(err, errlen, "label_limit exceeded (metric: %.*s, number of labels: %u, limit: %llu)",
		    runes50(met), met, ls->n, (unsigned long long)conf->label_limit);
		return -1;
	}
	if (conf->label_name_length_limit == 0 && conf->label_value_length_limit == 0)
		return 0;
	for (i = 0; i < ls->n; i++) {
		const char *n = ls->v[i].name, *v = ls->v[i].value;
		size_t nl = strlen(n), vl = strlen(v);

		if (conf->label_name_length_limit > 0 && nl > conf->label_name_length_limit) {
			snprintf(err, errlen, "label_name_length_limit exceeded (metric: %.*s, label name: %.*s, length: %zu, limit: %llu)",
			    runes50(met), met, runes50(n), n, nl,
			    (unsigned long long)conf->label_name_length_limit);
			return -1;
		}
		if (conf->label_value_length_limit > 0 && vl > conf->label_value_length_limit) {
			struct strbuf q = STRBUF_INIT;

			go_quote_trunc(&q, v);
			snprintf(err, errlen, "label_value_length_limit exceeded (metric: %.*s, label name: %.*s, value: %s, length: %zu, limit: %llu)",
			    runes50(met), met, runes50(n), n, strbuf_cstr(&q), vl,
			    (unsigned long long)conf->label_value_length_limit);
			strbuf_free(&q);
			return -1;
		}
	}
	return 0;
}

/* build_labels makes the final label set of a sample not in the cache:
 * scraped labels, target labels (honor_labels), metric relabeling. Returns 1
 * with *out, 0 when relabeling dropped it, -1 with err (invalid set or a
 * label limit; *label_limit tells which). */
static int
build_labels(struct scrape_scratch *w, const struct scrape_append_conf *conf,
    const struct expfmt_entry *s, struct labels **out, bool *label_limit,
    char *err, size_t errlen)
{
	struct labels_builder *lb = w->lb;
	const struct labels *t = conf->target;
	struct labels *ls;
	size_t i;
	uint32_t k;

	*out = NULL;
	*label_limit = false;
	labels_builder_reset(lb, NULL);
	labels_builder_setn(lb, LABEL_METRIC_NAME, strlen(LABEL_METRIC_NAME),
	    s->name.p, s->name.len);
	for (i = 0; i < s->nlabels; i++)
		labels_builder_setn(lb, s->labels[i].name.p, s->labels[i].name.len,
		    s->labels[i].value.p, s->labels[i].value.len);
	if (conf->honor_labels) {
		for (k = 0; k < t->n; k++)
			if (labels_builder_get(lb, t->v[k].name) == NULL)
				labels_builder_set(lb, t->v[k].name, t->v[k].value);
	} else {
		struct conflict *cf = NULL;
		size_t ncf = 0;

		for (k = 0; k < t->n; k++) {
			const char *ev = labels_builder_get(lb, t->v[k].name);

			if (ev != NULL && *ev != '\0') {
				cf = mem_realloc(cf, (ncf + 1) * sizeof(*cf));
				cf[ncf].name = mem_strdup(t->v[k].name);
				cf[ncf].value = mem_strdup(ev);
				ncf++;
			}
			labels_builder_set(lb, t->v[k].name, t->v[k].value);
		}
		if (ncf > 0)
			resolve_conflicts(lb, s, t, cf, ncf);
		for (i = 0; i < ncf; i++) {
			mem_free(cf[i].name);
			mem_free(cf[i].value);
		}
		mem_free(cf);
	}
	if (conf->n_metric_relabel > 0 &&
	    !relabel_apply(conf->metric_relabel, conf->n_metric_relabel, lb))
		return 0;
	if (labels_builder_count(lb) == 0)
		return 0;
	ls = labels_builder_labels(lb);
	if (labels_get(ls, LABEL_METRIC_NAME) == NULL) {
		snprintf(err, errlen, "missing metric name (__name__ label)");
		labels_free(ls);
		return -1;
	}
	for (k = 0; k < ls->n; k++) {
		const char *n = ls->v[k].name, *v = ls->v[k].value;
		bool ok = strcmp(n, LABEL_METRIC_NAME) == 0 ?
		    labels_is_valid_metric_name(v, strlen(v)) :
		    labels_is_valid_name(n, strlen(n));

		if (!ok || !scrape_is_valid_utf8(v, strlen(v))) {
			struct strbuf sb = STRBUF_INIT;

			labels_format(ls, &sb);
			snprintf(err, errlen, "invalid metric name or label names: %s",
			    strbuf_cstr(&sb));
			strbuf_free(&sb);
			labels_free(ls);
			return -1;
		}
	}
	if (check_limits(ls, conf, err, errlen) < 0) {
		*label_limit = true;
		labels_free(ls);
		return -1;
	}
	*out = ls;
	return 1;
}

/* --- a scrape ---------------------------------------------------------------- */

static void
scrape_begin(struct scrape_cache *c)
{
	c->iter++;
	if (c->iter == 0)	/* wrapped after 4e9 scrapes: start over */
		c->iter = 1;
	c->open = true;
}

/* stage_stale appends a stale marker; out-of-order and duplicates are
 * expected (the series came back in another loop) and ignored. */
static void
stage_stale(struct tsdb_appender *app, uint64_t *ref, struct labels *ls, int64_t ts)
{
	(void)tsdb_appender_append(app, ref, ls, ts, stale_nan());
}

int
scrape_cache_append(struct scrape_cache *c, struct scrape_scratch *w,
    struct tsdb_appender *app, const struct scrape_append_conf *conf,
    enum expfmt_format fmt, const char *body, size_t len, int64_t ts_ms,
    int64_t now_ms, struct scrape_append_result *r, char *err, size_t errlen)
{
	struct expfmt_entry e;
	uint64_t nlimit = 0;
	uint32_t iter, prev;
	bool limit_hit = false;
	size_t i;

	memset(r, 0, sizeof(*r));
	scrape_begin(c);
	iter = c->iter;
	prev = iter - 1;
	expfmt_reset(w->p, fmt, body, len);
	for (;;) {
		enum expfmt_kind k = expfmt_next(w->p, &e);
		struct centry *ce;
		bool explicit_ts, fresh = false, appended = false;
		int64_t t;
		uint64_t h;
		int rc;

		if (k == EXPFMT_EOF)
			break;
		if (k == EXPFMT_ERROR) {
			const struct expfmt_error *pe = expfmt_error(w->p);

			snprintf(err, errlen, "%zu:%zu: %s", pe->line, pe->column, pe->msg);
			return -1;
		}
		if (k != EXPFMT_SAMPLE)
			continue;
		r->total++;
		explicit_ts = e.has_ts && conf->honor_timestamps;
		t = explicit_ts ? e.ts : ts_ms;
		h = XXH3_64bits(e.series.p, e.series.len);
		ce = cache_find(c, h, e.series.p, e.series.len);
		if (ce != NULL) {
			ce->used = iter;
			if (ce->ls == NULL)
				continue;
		} else {
			struct labels *ls;
			bool ll;

			rc = build_labels(w, conf, &e, &ls, &ll, err, errlen);
			if (rc < 0) {
				r->label_limits = ll;
				return -1;
			}
			if (limit_hit) {
				/* The scrape fails anyway: count what Prometheus counts,
				 * but cache nothing more, so a target exposing millions
				 * of series over its sample_limit costs no memory. */
				if (rc > 0)
					r->added++;
				labels_free(ls);
				continue;
			}
			ce = cache_add(c, h, e.series.p, e.series.len, ls);
			ce->used = iter;
			if (rc == 0)
				continue;
			fresh = true;
		}
		if (conf->sample_limit > 0 && ++nlimit > conf->sample_limit) {
			limit_hit = true;
		} else if (t > now_ms + SCRAPE_MAX_AHEAD_MS) {
			r->out_of_bounds++;
		} else {
			rc = tsdb_appender_append(app, &ce->ref, ce->ls, t, e.value);
			switch (rc) {
			case TSDB_OK:
				appended = true;
				break;
			case TSDB_ERR_OUT_OF_ORDER:
				r->out_of_order++;
				break;
			case TSDB_ERR_DUPLICATE:
				r->duplicate++;
				break;
			default:
				snprintf(err, errlen, "%s", tsdb_strerror(rc));
				return -1;
			}
		}
		/* Prometheus tracks a new series for staleness whatever became
		 * of its sample, a known one only when the sample went in. */
		if (!explicit_ts && (fresh || appended))
			ce->cur = iter;
		if (fresh && appended && !limit_hit)
			r->series_added++;
		r->added++;
	}
	if (limit_hit) {
		r->sample_limit = true;
		snprintf(err, errlen, "sample limit exceeded");
		return -1;
	}
	/* Success: stale markers for what the previous scrape had and this one
	 * has not; then this scrape becomes the previous one. */
	for (i = 0; i < c->n; i++) {
		struct centry *ce = &c->e[i];

		if (ce->ls == NULL)
			continue;
		if (ce->cur == iter)
			ce->seen = iter;
		else if (ce->seen == prev && prev != 0)
			stage_stale(app, &ce->ref, ce->ls, ts_ms);
	}
	c->open = false;
	c->last_ok = true;
	if (len > 0) {
		cache_flush(c);
		c->success_count = c->n;
	}
	return 0;
}

bool
scrape_cache_fail(struct scrape_cache *c, struct tsdb_appender *app, int64_t ts_ms)
{
	uint32_t prev;
	size_t i;

	if (!c->open)
		scrape_begin(c);
	prev = c->iter - 1;
	if (prev != 0) {
		for (i = 0; i < c->n; i++) {
			struct centry *ce = &c->e[i];

			if (ce->ls != NULL && ce->seen == prev)
				stage_stale(app, &ce->ref, ce->ls, ts_ms);
		}
	}
	c->open = false;
	c->last_ok = false;
	if (c->n > c->success_count * 2 + 1000) {
		cache_flush(c);
		return true;
	}
	return false;
}

/* --- synthetic series ---------------------------------------------------------- */

static void
rep_prepare(struct scrape_cache *c, const struct labels *target)
{
	struct labels_builder *lb;
	size_t i;

	if (c->rep_target != NULL && labels_equal(c->rep_target, target))
		return;
	lb = labels_builder_new();
	for (i = 0; i < NREP; i++) {
		labels_free(c->rep[i].ls);
		labels_builder_reset(lb, target);
		labels_builder_set(lb, LABEL_METRIC_NAME, rep_names[i]);
		c->rep[i].ls = labels_builder_labels(lb);
		c->rep[i].ref = 0;
	}
	labels_builder_free(lb);
	labels_free(c->rep_target);
	c->rep_target = labels_ref((struct labels *)target);
}

void
scrape_cache_report(struct scrape_cache *c, struct tsdb_appender *app,
    const struct labels *target, int64_t ts_ms, bool up, double duration_s,
    uint64_t scraped, uint64_t added, uint64_t series_added)
{
	const double v[NREP] = {
		up ? 1 : 0, duration_s, (double)scraped, (double)added, (double)series_added,
	};
	size_t i;

	rep_prepare(c, target);
	for (i = 0; i < NREP; i++)
		(void)tsdb_appender_append(app, &c->rep[i].ref, c->rep[i].ls, ts_ms, v[i]);
}

void
scrape_cache_end_of_run(struct scrape_cache *c, struct tsdb_appender *app,
    const struct labels *target, int64_t ts_ms)
{
	size_t i;

	if (c->iter == 0)
		return;
	if (c->last_ok) {
		for (i = 0; i < c->n; i++) {
			struct centry *ce = &c->e[i];

			if (ce->ls != NULL && ce->seen == c->iter)
				stage_stale(app, &ce->ref, ce->ls, ts_ms);
		}
	}
	rep_prepare(c, target);
	for (i = 0; i < NREP; i++)
		stage_stale(app, &c->rep[i].ref, c->rep[i].ls, ts_ms);
}
