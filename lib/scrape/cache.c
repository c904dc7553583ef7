/* lib/scrape/cache.c - the per-target scrape cache, appending a scrape, staleness.
 *
 * Prometheus 2.42's scrapeLoop.append, scrapeCache, report and reportStale.
 * The cache is a dense array of entries (series text -> labels, ref) with an
 * open-addressing index of entry numbers. The texts themselves are not kept:
 * an entry holds the seeded 128-bit hash of its text and the text's length
 * (cache.h bounds the odds of two texts sharing them), so a new series costs
 * no allocation of its own beyond its label set. Entries stay in the order
 * their series first appeared, as targets tend to write them in the same
 * order every time: the entry after the last one found is offered to the
 * text parser as the expected next series (expfmt_expect: its length and
 * hash), so a sample in the usual place costs one hash of its text, which
 * the parser hands back, instead of a label parse and a probe. Samples of
 * cached series go to the appender in batches (tsdb_appender_append_batch:
 * one lock and overlapped cache misses for a run of series), flushed before
 * anything that may move the entries (a new series) and before any other
 * append, so samples are staged in body order as before.
 *
 * Scrape numbers (iter) order the flushes: an entry's `used` is the last
 * scrape that looked it up (its low 16 bits: an entry left unused for 65536
 * scrapes may survive one flush more). Staleness is two flags: CE_CUR, the
 * scrape in progress appended the entry without a timestamp; CE_LIVE, the
 * last scrape did and succeeded (a scrape that fails, or a pull, ends with
 * no entry live).
 * With a sample hook, a parallel array `alt` holds each entry's replacement
 * label set (the hook's last answer) and its series ref.
 *
 * Metadata is a second small table (family name -> type, help, unit, last
 * scrape that mentioned it) under meta_mu: the worker changes it, readers of
 * /api/v1/metadata list it. The worker reads its own table without the lock;
 * it takes the lock to change anything a reader looks at.
 *
 * Single-threaded per cache (the worker holding the target) except the
 * metadata; see cache.h.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "expfmt/pull.h"
#include "scrape/cache.h"
#include "scrape/target.h"
#include "tsdb/chunk.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

/* One cached series text, 48 bytes. */
struct centry {
	struct expfmt_hash h;	/* the key: expfmt_series_hash(text, c->seed) */
	uint64_t ref;		/* head series ref, 0 = unknown */
	const void *hint;	/* the head's prefetch hint (tsdb_append_item) */
	struct labels *ls;	/* final labels; NULL: dropped by relabeling */
	uint32_t klen;		/* the key: the text's length (its low 32 bits) */
	uint16_t used;		/* last scrape that looked it up (low 16 bits) */
	uint8_t flags;		/* CE_* */
	uint8_t shape;		/* with CE_PARSED: the series' expfmt shape */
};

enum {
	CE_PARSED = 0x01,	/* the text is a series expfmt returned (not a pull
				 * key) shorter than 4 GiB: it may be a parser hint */
	CE_CUR = 0x02,		/* the scrape in progress appended it (no timestamp) */
	CE_LIVE = 0x04,		/* the last scrape appended it (no timestamp) and
				 * succeeded: staleness candidate */
	CE_NEW = 0x08,		/* made by pass 1 of the pull in progress */
};

_Static_assert(sizeof(struct centry) <= 48, "a cache entry is 48 bytes");

/* A hook's replacement for one entry. */
struct calt {
	struct labels *ls;	/* a reference; NULL: none yet */
	uint64_t ref;
};

/* One metric family's metadata. */
struct meta {
	char *name;
	char *help;		/* "" when none */
	char *unit;		/* "" when none */
	uint64_t hash;
	enum expfmt_type type;
	uint32_t last;		/* last scrape that mentioned it */
};

enum { REP_UP, REP_DURATION, REP_SCRAPED, REP_POST_RELABEL, REP_SERIES_ADDED, NREP };

static const char *const rep_names[NREP] = {
	"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added",
};

struct scrape_cache {
	struct centry *e;
	size_t n, cap;
	void *idx;		/* entry number + 1; 0 = free: uint16_t slots while
				 * icap <= IDX16_MAX (n < icap / 2 fits), else uint32_t */
	size_t icap;		/* power of two */
	uint64_t seed;		/* of the entries' hashes, random */
	uint32_t iter;		/* current (or last) scrape number; 0 = none yet */
	bool open;		/* a scrape iter is in progress */
	bool last_ok;		/* the last finished scrape succeeded */
	size_t success_count;	/* entries after the last successful scrape */
	struct {
		uint64_t ref;
		struct labels *ls;
	} rep[NREP];
	struct labels *rep_target;	/* what rep[].ls were built for (a reference) */
	/* sample hook */
	scrape_sample_fn hook;
	void *hook_arg;
	struct labels *hook_target;	/* a reference */
	struct calt *alt;		/* with a hook: cap entries, parallel to e */
	uint64_t hook_dropped;
	/* metadata */
	pthread_mutex_t meta_mu;	/* guards what readers see of meta */
	struct meta *meta;
	size_t nmeta, capmeta;
	uint32_t *midx;			/* entry number + 1; 0 = free */
	size_t micap;			/* power of two, or 0 */
};

/* Samples of known series a scrape hands the appender at a time. */
#define BATCH 64

struct scrape_scratch {
	struct expfmt_parser *p;
	struct labels_builder *lb;
	struct strbuf tmp;
	uint32_t *pidx;		/* pull: entry of each series of the body, or UINT32_MAX */
	size_t pcap;
	/* samples of cached series waiting for tsdb_appender_append_batch */
	struct tsdb_append_item bi[BATCH];
	struct centry *be[BATCH];	/* their entries */
	bool bts[BATCH];	/* they have their own timestamp */
	size_t nb;
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

/* cache_seed returns a random seed (a mix of clocks and addresses when the
 * kernel has no entropy to give). */
static uint64_t
cache_seed(const void *c)
{
	uint64_t s, mix[3];

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s))
		return s;
	mix[0] = (uint64_t)time_mono_ns();
	mix[1] = (uint64_t)time_now_ms();
	mix[2] = (uint64_t)(uintptr_t)c;
	return XXH3_64bits(mix, sizeof(mix));
}

struct scrape_cache *
scrape_cache_new(void)
{
	struct scrape_cache *c = mem_calloc(1, sizeof(struct scrape_cache));

	pthread_mutex_init(&c->meta_mu, NULL);
	c->seed = cache_seed(c);
	return c;
}

static void
meta_clear(struct meta *m)
{
	mem_free(m->name);
	mem_free(m->help);
	mem_free(m->unit);
}

void
scrape_cache_free(struct scrape_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		labels_free(c->e[i].ls);
		if (c->alt != NULL)
			labels_free(c->alt[i].ls);
	}
	for (i = 0; i < NREP; i++)
		labels_free(c->rep[i].ls);
	labels_free(c->rep_target);
	labels_free(c->hook_target);
	for (i = 0; i < c->nmeta; i++)
		meta_clear(&c->meta[i]);
	mem_free(c->meta);
	mem_free(c->midx);
	pthread_mutex_destroy(&c->meta_mu);
	mem_free(c->alt);
	mem_free(c->e);
	mem_free(c->idx);
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

/* Index tables up to this many slots have 16-bit slots. */
#define IDX16_MAX 65536

/* idx_get returns index slot j. */
static inline uint32_t
idx_get(const struct scrape_cache *c, size_t j)
{
	return c->icap <= IDX16_MAX ? ((const uint16_t *)c->idx)[j] :
	    ((const uint32_t *)c->idx)[j];
}

/* idx_put puts entry i in the first free slot from hash h on. */
static void
idx_put(struct scrape_cache *c, uint64_t h, size_t i)
{
	size_t j, mask = c->icap - 1;

	for (j = h & mask; idx_get(c, j) != 0; j = (j + 1) & mask)
		;
	if (c->icap <= IDX16_MAX)
		((uint16_t *)c->idx)[j] = (uint16_t)(i + 1);
	else
		((uint32_t *)c->idx)[j] = (uint32_t)(i + 1);
}

static void
index_rebuild(struct scrape_cache *c, size_t icap)
{
	size_t i;

	mem_free(c->idx);
	c->idx = mem_calloc(icap, icap <= IDX16_MAX ? sizeof(uint16_t) : sizeof(uint32_t));
	c->icap = icap;
	for (i = 0; i < c->n; i++)
		idx_put(c, c->e[i].h.lo, i);
}

/* cache_find returns the entry of the text of length klen and hash h, or
 * NULL. */
static struct centry *
cache_find(struct scrape_cache *c, struct expfmt_hash h, size_t klen)
{
	size_t j, mask;
	uint32_t k;

	if (c->icap == 0)
		return NULL;
	mask = c->icap - 1;
	for (j = h.lo & mask; (k = idx_get(c, j)) != 0; j = (j + 1) & mask) {
		struct centry *e = &c->e[k - 1];

		if (e->h.lo == h.lo && e->h.hi == h.hi && e->klen == (uint32_t)klen)
			return e;
	}
	return NULL;
}

/* cache_add appends an entry for the text of length klen and hash h (not
 * cached yet); takes the reference on ls. */
static struct centry *
cache_add(struct scrape_cache *c, struct expfmt_hash h, size_t klen, struct labels *ls)
{
	struct centry *e;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->e = mem_realloc(c->e, c->cap * sizeof(*c->e));
		if (c->hook != NULL)
			c->alt = mem_realloc(c->alt, c->cap * sizeof(*c->alt));
	}
	if ((c->n + 1) * 2 > c->icap)
		index_rebuild(c, c->icap ? c->icap * 2 : 128);
	e = &c->e[c->n];
	memset(e, 0, sizeof(*e));
	e->h = h;
	e->klen = (uint32_t)klen;
	e->ls = ls;
	if (c->alt != NULL)
		memset(&c->alt[c->n], 0, sizeof(c->alt[0]));
	idx_put(c, h.lo, c->n);
	c->n++;
	return e;
}

/* is_unused tells whether entry e was not looked up by the last keep + 1
 * scrapes (c->iter and the keep before it). */
static bool
is_unused(const struct scrape_cache *c, const struct centry *e, uint16_t keep)
{
	return (uint16_t)((uint16_t)c->iter - e->used) > keep;
}

/* cache_flush drops the entries not looked up by the last keep + 1
 * scrapes. */
static void
cache_flush(struct scrape_cache *c, uint16_t keep)
{
	size_t i, n = 0;

	for (i = 0; i < c->n; i++)
		if (is_unused(c, &c->e[i], keep))
			break;
	if (i == c->n)
		return;
	for (i = 0; i < c->n; i++) {
		struct centry *e = &c->e[i];

		if (is_unused(c, e, keep)) {
			labels_free(e->ls);
			if (c->alt != NULL)
				labels_free(c->alt[i].ls);
			continue;
		}
		if (c->alt != NULL)
			c->alt[n] = c->alt[i];
		c->e[n++] = *e;
	}
	c->n = n;
	if (c->n == 0) {
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
		if (c->alt != NULL)
			c->alt = mem_realloc(c->alt, c->cap * sizeof(*c->alt));
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
	mem_free(w->pidx);
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

/* --- the sample hook -------------------------------------------------------- */

void
scrape_cache_set_hook(struct scrape_cache *c, scrape_sample_fn fn, void *arg,
    const struct labels *target)
{
	c->hook = fn;
	c->hook_arg = arg;
	labels_free(c->hook_target);
	c->hook_target = target != NULL ? labels_ref((struct labels *)target) : NULL;
	if (fn != NULL && c->alt == NULL && c->cap > 0)
		c->alt = mem_calloc(c->cap, sizeof(*c->alt));
}

uint64_t
scrape_cache_take_hook_dropped(struct scrape_cache *c)
{
	uint64_t n = c->hook_dropped;

	c->hook_dropped = 0;
	return n;
}

#define PUT_DROPPED 1	/* put(): the hook dropped the sample */

/* put stages one sample of entry ce on app, through the hook when there is
 * one. Returns a tsdb result, or PUT_DROPPED. */
static int
put(struct scrape_cache *c, struct tsdb_appender *app, struct centry *ce,
    int64_t t, double v, bool pull, bool marker)
{
	struct scrape_sample s;
	struct labels *rep = NULL;
	struct calt *a;

	if (c->hook == NULL)
		return tsdb_appender_append(app, &ce->ref, ce->ls, t, v);
	s.target = c->hook_target;
	s.ls = ce->ls;
	s.t = t;
	s.v = v;
	s.pull = pull;
	s.marker = marker;
	switch (c->hook(c->hook_arg, &s, &rep)) {
	case SCRAPE_SAMPLE_DROP:
		labels_free(rep);
		c->hook_dropped++;
		return PUT_DROPPED;
	case SCRAPE_SAMPLE_REPLACE:
		if (rep == NULL)
			break;
		a = &c->alt[ce - c->e];
		if (a->ls != rep && (a->ls == NULL || !labels_equal(a->ls, rep))) {
			labels_free(a->ls);
			a->ls = rep;
			a->ref = 0;
		} else {
			labels_free(rep);
		}
		return tsdb_appender_append(app, &a->ref, a->ls, t, v);
	default:
		labels_free(rep);
		break;
	}
	return tsdb_appender_append(app, &ce->ref, ce->ls, t, v);
}

/* --- metadata ---------------------------------------------------------------- */

static uint64_t
meta_hash(const char *name, size_t len)
{
	return XXH3_64bits(name, len);
}

static struct meta *
meta_find(struct scrape_cache *c, const char *name, size_t len, uint64_t h)
{
	size_t j, mask;

	if (c->micap == 0)
		return NULL;
	mask = c->micap - 1;
	for (j = h & mask; c->midx[j] != 0; j = (j + 1) & mask) {
		struct meta *m = &c->meta[c->midx[j] - 1];

		if (m->hash == h && strncmp(m->name, name, len) == 0 && m->name[len] == '\0')
			return m;
	}
	return NULL;
}

/* meta_reindex rebuilds the index (meta_mu held). */
static void
meta_reindex(struct scrape_cache *c)
{
	size_t i, icap = 16, mask;

	while (icap < c->nmeta * 2 + 2)
		icap *= 2;
	mem_free(c->midx);
	c->midx = mem_calloc(icap, sizeof(*c->midx));
	c->micap = icap;
	mask = icap - 1;
	for (i = 0; i < c->nmeta; i++) {
		size_t j = c->meta[i].hash & mask;

		while (c->midx[j] != 0)
			j = (j + 1) & mask;
		c->midx[j] = (uint32_t)(i + 1);
	}
}

/* meta_get returns the entry of family name, creating it (type unknown,
 * no help, no unit) when there is room; NULL when the table is full. */
static struct meta *
meta_get(struct scrape_cache *c, const char *name, size_t len)
{
	uint64_t h = meta_hash(name, len);
	struct meta *m = meta_find(c, name, len, h);

	if (m != NULL || c->nmeta >= SCRAPE_META_MAX_FAMILIES)
		return m;
	pthread_mutex_lock(&c->meta_mu);
	if (c->nmeta == c->capmeta) {
		c->capmeta = c->capmeta ? c->capmeta * 2 : 16;
		c->meta = mem_realloc(c->meta, c->capmeta * sizeof(*c->meta));
	}
	m = &c->meta[c->nmeta++];
	memset(m, 0, sizeof(*m));
	m->name = mem_strndup(name, len);
	m->help = mem_strdup("");
	m->unit = mem_strdup("");
	m->hash = h;
	m->type = EXPFMT_UNKNOWN;
	if (c->nmeta * 2 > c->micap)
		meta_reindex(c);
	else {
		size_t j, mask = c->micap - 1;

		for (j = h & mask; c->midx[j] != 0; j = (j + 1) & mask)
			;
		c->midx[j] = (uint32_t)c->nmeta;
	}
	pthread_mutex_unlock(&c->meta_mu);
	return m;
}

/* meta_set_text replaces *field with s[0..len) when it differs. */
static void
meta_set_text(struct scrape_cache *c, char **field, const char *s, size_t len)
{
	char *old;

	if (strncmp(*field, s, len) == 0 && (*field)[len] == '\0')
		return;
	old = *field;
	pthread_mutex_lock(&c->meta_mu);
	*field = mem_strndup(s, len);
	pthread_mutex_unlock(&c->meta_mu);
	mem_free(old);
}

/* meta_note records a TYPE, HELP or UNIT entry of the scrape c->iter. */
static void
meta_note(struct scrape_cache *c, const struct expfmt_entry *e, enum expfmt_kind k)
{
	struct meta *m = meta_get(c, e->name.p, e->name.len);

	if (m == NULL)
		return;
	m->last = c->iter;
	if (k == EXPFMT_TYPE) {
		if (m->type != e->type) {
			pthread_mutex_lock(&c->meta_mu);
			m->type = e->type;
			pthread_mutex_unlock(&c->meta_mu);
		}
	} else if (k == EXPFMT_HELP) {
		meta_set_text(c, &m->help, e->text.p, e->text.len);
	} else {
		meta_set_text(c, &m->unit, e->text.p, e->text.len);
	}
}

/* meta_prune forgets the families not mentioned in the last 10 scrapes
 * (Prometheus keeps them that long after their metric disappeared). */
static void
meta_prune(struct scrape_cache *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->nmeta; i++)
		if ((uint32_t)(c->iter - c->meta[i].last) > 10)
			break;
	if (i == c->nmeta)
		return;
	pthread_mutex_lock(&c->meta_mu);
	for (i = 0; i < c->nmeta; i++) {
		if ((uint32_t)(c->iter - c->meta[i].last) > 10)
			meta_clear(&c->meta[i]);
		else
			c->meta[n++] = c->meta[i];
	}
	c->nmeta = n;
	meta_reindex(c);
	pthread_mutex_unlock(&c->meta_mu);
}

void
scrape_cache_metadata(struct scrape_cache *c, const char *metric,
    void (*fn)(void *ctx, const char *metric, const char *type, const char *help,
    const char *unit), void *ctx)
{
	size_t i;

	pthread_mutex_lock(&c->meta_mu);
	if (metric != NULL) {
		size_t len = strlen(metric);
		struct meta *m = meta_find(c, metric, len, meta_hash(metric, len));

		if (m != NULL)
			fn(ctx, m->name, expfmt_type_name(m->type, EXPFMT_OPENMETRICS),
			    m->help, m->unit);
	} else {
		for (i = 0; i < c->nmeta; i++)
			fn(ctx, c->meta[i].name,
			    expfmt_type_name(c->meta[i].type, EXPFMT_OPENMETRICS),
			    c->meta[i].help, c->meta[i].unit);
	}
	pthread_mutex_unlock(&c->meta_mu);
}

/* --- a scrape ---------------------------------------------------------------- */

/* clear_flags clears the flags f of every entry. */
static void
clear_flags(struct scrape_cache *c, uint8_t f)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		c->e[i].flags &= (uint8_t)~f;
}

static void
scrape_begin(struct scrape_cache *c)
{
	if (c->open)	/* never finished nor failed: nothing is live */
		clear_flags(c, CE_CUR | CE_LIVE);
	c->iter++;
	if (c->iter == 0)	/* wrapped after 4e9 scrapes: start over */
		c->iter = 1;
	c->open = true;
}

/* stage_stale appends a stale marker for entry ce; out-of-order and
 * duplicates are expected (the series came back in another loop) and
 * ignored. */
static void
stage_stale(struct scrape_cache *c, struct tsdb_appender *app, struct centry *ce, int64_t ts)
{
	(void)put(c, app, ce, ts, stale_nan(), false, true);
}

/* count_rc counts a refused sample in r; false for an error that fails the
 * scrape. */
static bool
count_rc(int rc, struct scrape_append_result *r)
{
	switch (rc) {
	case TSDB_ERR_OUT_OF_ORDER:
		r->out_of_order++;
		return true;
	case TSDB_ERR_DUPLICATE:
		r->duplicate++;
		return true;
	case TSDB_ERR_OUT_OF_BOUNDS:
	case TSDB_ERR_TOO_OLD:
		r->out_of_bounds++;
		return true;
	}
	return false;
}

/* batch_flush stages the batched samples, then does for each what the
 * append loop does after put(): counts the refused ones, tracks the
 * appended ones for staleness. Returns 0, or -1 with err when the store
 * failed the scrape. Entries must not move while samples are batched. */
static int
batch_flush(struct scrape_cache *c, struct scrape_scratch *w, struct tsdb_appender *app,
    struct scrape_append_result *r, char *err, size_t errlen)
{
	size_t i, n = w->nb;

	if (n == 0)
		return 0;
	w->nb = 0;
	tsdb_appender_append_batch(app, w->bi, n);
	for (i = 0; i < n; i++) {
		int rc = w->bi[i].rc;
		struct centry *ce = w->be[i];

		ce->hint = w->bi[i].hint;
		if (rc == TSDB_OK) {
			if (!w->bts[i])
				ce->flags |= CE_CUR;
		} else if (!count_rc(rc, r)) {
			snprintf(err, errlen, "%s", tsdb_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* append_body is scrape_cache_append on the body w->p was reset to, which
 * announces each expected series in *hint (expfmt_expect'ed). */
static int
append_body(struct scrape_cache *c, struct scrape_scratch *w,
    struct tsdb_appender *app, const struct scrape_append_conf *conf,
    enum expfmt_format fmt, size_t len, int64_t ts_ms, int64_t now_ms,
    struct expfmt_hint *hint, struct scrape_append_result *r, char *err, size_t errlen)
{
	struct expfmt_entry e;
	uint64_t nlimit = 0, sample_limit = conf->sample_limit;
	int64_t tmax = now_ms + SCRAPE_MAX_AHEAD_MS;
	uint16_t iter;
	bool limit_hit = false, text = fmt == EXPFMT_TEXT;
	bool honor_ts = conf->honor_timestamps, batch = c->hook == NULL;
	size_t i, next = 0;	/* entry expected next: the one after the last found */

	memset(r, 0, sizeof(*r));
	scrape_begin(c);
	iter = (uint16_t)c->iter;
	w->nb = 0;
	for (;;) {
		enum expfmt_kind k;
		struct centry *ce;
		bool explicit_ts, fresh = false, appended = false;
		int64_t t;
		struct expfmt_hash h;
		int rc;

		/* Targets write their series in the same order every time, so the
		 * entry after the last one found is most likely next: the parser
		 * checks the hash of the line's series against it instead of
		 * parsing the labels, and no probe is needed. */
		if (text && next < c->n && (c->e[next].flags & CE_PARSED)) {
			hint->len = c->e[next].klen;
			hint->shape = c->e[next].shape;
			hint->hash = c->e[next].h;
		} else {
			hint->len = 0;
		}
		k = expfmt_next(w->p, &e);

		if (k != EXPFMT_SAMPLE) {	/* one test for a sample, the usual kind */
			if (k == EXPFMT_EOF)
				break;
			if (k == EXPFMT_ERROR) {
				const struct expfmt_error *pe = expfmt_error(w->p);

				if (batch_flush(c, w, app, r, err, errlen) < 0)
					return -1;
				snprintf(err, errlen, "%zu:%zu: %s", pe->line, pe->column,
				    pe->msg);
				return -1;
			}
			if (k == EXPFMT_TYPE || k == EXPFMT_HELP || k == EXPFMT_UNIT)
				meta_note(c, &e, k);
			continue;
		}
		r->total++;
		explicit_ts = e.has_ts && honor_ts;
		t = explicit_ts ? e.ts : ts_ms;
		if (e.expected) {	/* a CE_PARSED entry */
			ce = &c->e[next++];
		} else {
			h = e.has_hash ? e.hash : expfmt_series_hash(e.series.p, e.series.len,
			    c->seed);
			ce = cache_find(c, h, e.series.len);
			if (ce != NULL) {
				if (!(ce->flags & CE_PARSED) && text &&
				    e.series.len <= UINT32_MAX) {
					ce->flags |= CE_PARSED;
					ce->shape = e.shape;
				}
				next = (size_t)(ce - c->e) + 1;
			}
		}
		if (ce != NULL) {
			ce->used = iter;
			if (ce->ls == NULL)
				continue;
		} else {
			struct labels *ls;
			bool ll;

			/* cache_add may move the entries the batch points at */
			if (batch_flush(c, w, app, r, err, errlen) < 0)
				return -1;
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
			ce = cache_add(c, h, e.series.len, ls);
			ce->used = iter;
			if (text && e.series.len <= UINT32_MAX) {
				ce->flags |= CE_PARSED;
				ce->shape = e.shape;
			}
			next = c->n;
			if (rc == 0)
				continue;
			fresh = true;
		}
		if (sample_limit > 0 && ++nlimit > sample_limit) {
			limit_hit = true;
		} else if (t > tmax) {
			r->out_of_bounds++;
		} else if (!fresh && batch) {
			/* a cached series: staged with the batch, which tracks it
			 * for staleness once it went in */
			struct tsdb_append_item *bi = &w->bi[w->nb];

			/* the batch reaches it some samples from now */
			tsdb_hint_prefetch(ce->hint);
			bi->ref = &ce->ref;
			bi->ls = ce->ls;
			bi->t = t;
			bi->v = e.value;
			w->be[w->nb] = ce;
			w->bts[w->nb] = explicit_ts;
			if (++w->nb == BATCH && batch_flush(c, w, app, r, err, errlen) < 0)
				return -1;
		} else {
			if (batch_flush(c, w, app, r, err, errlen) < 0)
				return -1;
			rc = put(c, app, ce, t, e.value, false, false);
			if (rc == TSDB_OK || rc == PUT_DROPPED) {
				/* a sample the hook dropped is tracked as if
				 * appended: the hook hears of its series' end */
				appended = true;
			} else if (!count_rc(rc, r)) {
				snprintf(err, errlen, "%s", tsdb_strerror(rc));
				return -1;
			}
		}
		/* Prometheus tracks a new series for staleness whatever became
		 * of its sample, a known one only when the sample went in. */
		if (!explicit_ts && (fresh || appended))
			ce->flags |= CE_CUR;
		if (fresh && appended && !limit_hit)
			r->series_added++;
		r->added++;
	}
	if (batch_flush(c, w, app, r, err, errlen) < 0)
		return -1;
	if (limit_hit) {
		r->sample_limit = true;
		snprintf(err, errlen, "sample limit exceeded");
		return -1;
	}
	/* Success: stale markers for what the previous scrape had and this one
	 * has not; then this scrape becomes the previous one. */
	for (i = 0; i < c->n; i++) {
		struct centry *ce = &c->e[i];

		if (ce->flags & CE_CUR) {
			ce->flags = (uint8_t)((ce->flags & ~CE_CUR) | CE_LIVE);
		} else if (ce->flags & CE_LIVE) {
			ce->flags &= (uint8_t)~CE_LIVE;
			if (ce->ls != NULL)
				stage_stale(c, app, ce, ts_ms);
		}
	}
	c->open = false;
	c->last_ok = true;
	if (len > 0) {
		cache_flush(c, 0);
		c->success_count = c->n;
		meta_prune(c);
	}
	return 0;
}

int
scrape_cache_append(struct scrape_cache *c, struct scrape_scratch *w,
    struct tsdb_appender *app, const struct scrape_append_conf *conf,
    enum expfmt_format fmt, const char *body, size_t len, int64_t ts_ms,
    int64_t now_ms, struct scrape_append_result *r, char *err, size_t errlen)
{
	struct expfmt_hint hint = { .seed = c->seed };
	int rc;

	expfmt_reset(w->p, fmt, body, len);
	expfmt_expect(w->p, &hint);
	rc = append_body(c, w, app, conf, fmt, len, ts_ms, now_ms, &hint, r, err, errlen);
	expfmt_expect(w->p, NULL);	/* hint goes with this frame */
	return rc;
}

/* pull_key returns the "S" line of the series e opened (from its name to
 * the end of the line): the cache key of a pulled series. */
static size_t
pull_key(const struct pull_entry *e, const char *end)
{
	const char *nl = memchr(e->name.p, '\n', (size_t)(end - e->name.p));

	return (size_t)((nl != NULL ? nl : end) - e->name.p);
}

int
scrape_cache_append_pull(struct scrape_cache *c, struct scrape_scratch *w,
    struct tsdb_appender *app, const struct scrape_append_conf *conf,
    const char *body, size_t len, int64_t want_since, int64_t now_ms,
    struct scrape_pull_window *win, struct scrape_append_result *r,
    char *err, size_t errlen)
{
	struct pull_parser *p;
	struct pull_entry e;
	enum pull_kind k;
	size_t nser = 0, si = 0, staged = 0, i;
	uint64_t kept = 0;
	struct centry *ce = NULL;
	bool fresh = false, fresh_added = false;
	uint16_t iter;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(win, 0, sizeof(*win));
	scrape_begin(c);
	iter = (uint16_t)c->iter;
	/* Pass 1: the whole body is checked and its series resolved before
	 * anything is appended. */
	if ((p = pull_parser_new(body, len, &win->since, &win->until, err, errlen)) == NULL)
		return -1;
	if (win->since > want_since) {
		snprintf(err, errlen, "pull answer starts at %lld, after the cursor %lld",
		    (long long)win->since, (long long)want_since);
		goto fail;
	}
	while ((k = pull_next(p, &e)) != PULL_END) {
		if (k == PULL_ERROR) {
			snprintf(err, errlen, "%s", pull_error(p));
			goto fail;
		}
		if (k == PULL_SAMPLE) {
			r->total++;
			if (ce == NULL)
				continue;
			r->added++;
			if (conf->sample_limit > 0 && ++kept > conf->sample_limit) {
				r->sample_limit = true;
				snprintf(err, errlen, "sample limit exceeded");
				goto fail;
			}
			continue;
		}
		{
			size_t klen = pull_key(&e, body + len);
			struct expfmt_hash h = expfmt_series_hash(e.name.p, klen, c->seed);

			ce = cache_find(c, h, klen);
			if (ce == NULL) {
				struct expfmt_entry x;
				struct labels *ls;
				bool ll;

				memset(&x, 0, sizeof(x));
				x.name = e.name;
				x.labels = e.labels;
				x.nlabels = e.nlabels;
				rc = build_labels(w, conf, &x, &ls, &ll, err, errlen);
				if (rc < 0) {
					r->label_limits = ll;
					goto fail;
				}
				/* new, for pass 2 */
				ce = cache_add(c, h, klen, ls);
				ce->flags |= CE_NEW;
			}
			if (nser == w->pcap) {
				w->pcap = w->pcap ? w->pcap * 2 : 256;
				w->pidx = mem_realloc(w->pidx, w->pcap * sizeof(*w->pidx));
			}
			w->pidx[nser++] = (uint32_t)(ce - c->e);
			if (ce->ls == NULL)
				ce = NULL;
		}
	}
	pull_parser_free(p);
	/* Pass 2: append. An entry pass 1 created (CE_NEW): its series counts
	 * as added once a sample of it goes in. */
	p = pull_parser_new(body, len, &win->since, &win->until, err, errlen);
	ce = NULL;
	while ((k = pull_next(p, &e)) == PULL_SERIES || k == PULL_SAMPLE) {
		if (k == PULL_SERIES) {
			ce = &c->e[w->pidx[si++]];
			fresh = (ce->flags & CE_NEW) != 0;
			fresh_added = false;
			ce->flags &= (uint8_t)~CE_NEW;
			ce->used = iter;
			if (ce->ls == NULL)
				ce = NULL;
			continue;
		}
		if (ce == NULL)
			continue;
		if (e.t > now_ms + SCRAPE_MAX_AHEAD_MS) {
			r->out_of_bounds++;
			continue;
		}
		rc = put(c, app, ce, e.t, e.v, true, false);
		if (rc == TSDB_OK) {
			if (fresh && !fresh_added) {
				r->series_added++;
				fresh_added = true;
			}
		} else if (rc != PUT_DROPPED && !count_rc(rc, r)) {
			snprintf(err, errlen, "%s", tsdb_strerror(rc));
			tsdb_appender_rollback(app);
			goto fail;
		}
		if (++staged >= SCRAPE_PULL_COMMIT_EVERY) {
			staged = 0;
			if ((rc = tsdb_appender_commit(app)) != TSDB_OK) {
				snprintf(err, errlen, "%s", tsdb_strerror(rc));
				goto fail;
			}
		}
	}
	pull_parser_free(p);
	p = NULL;
	if ((rc = tsdb_appender_commit(app)) != TSDB_OK) {
		snprintf(err, errlen, "%s", tsdb_strerror(rc));
		goto fail;
	}
	c->open = false;
	c->last_ok = true;
	/* a pull is no scrape: the series of the scrape before get no marker */
	clear_flags(c, CE_LIVE);
	cache_flush(c, SCRAPE_PULL_CACHE_KEEP);
	c->success_count = c->n;
	meta_prune(c);
	return 0;
fail:
	pull_parser_free(p);
	/* entries pass 1 created are real now: this scrape used them */
	for (i = 0; i < c->n; i++)
		if (c->e[i].flags & CE_NEW) {
			c->e[i].flags &= (uint8_t)~CE_NEW;
			c->e[i].used = iter;
		}
	return -1;
}

bool
scrape_cache_fail(struct scrape_cache *c, struct tsdb_appender *app, int64_t ts_ms)
{
	size_t i;

	if (!c->open)
		scrape_begin(c);
	for (i = 0; i < c->n; i++) {
		struct centry *ce = &c->e[i];

		if (ce->ls != NULL && (ce->flags & CE_LIVE))
			stage_stale(c, app, ce, ts_ms);
		ce->flags &= (uint8_t)~(CE_CUR | CE_LIVE);
	}
	c->open = false;
	c->last_ok = false;
	if (c->n > c->success_count * 2 + 1000) {
		cache_flush(c, 0);
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
	if (c->last_ok && !c->open) {
		for (i = 0; i < c->n; i++) {
			struct centry *ce = &c->e[i];

			if (ce->ls != NULL && (ce->flags & CE_LIVE))
				stage_stale(c, app, ce, ts_ms);
		}
	}
	rep_prepare(c, target);
	for (i = 0; i < NREP; i++)
		(void)tsdb_appender_append(app, &c->rep[i].ref, c->rep[i].ls, ts_ms,
		    stale_nan());
}
