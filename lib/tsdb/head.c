/* lib/tsdb/head.c - the in-memory head: series, appenders, selects, GC.
 *
 * Owns every series (struct series): its label set (one reference), closed
 * chunks (immutable, shared with readers by reference count), the open chunk
 * (struct chunk_app, whose last sample is the newest sample uncompressed)
 * and the bookkeeping that hides an in-flight commit from readers.
 *
 * Maps and locks, always taken in this order:
 *   shard (rwlock, by labels hash): labels hash -> id, the label-set map;
 *   stripe (mutex, by id): id -> series, and all of that series' state;
 *   postings (rwlock inside lib/tsdb/postings.c): label pair -> ids.
 * The commit mutex serialises commits; it is taken before any of the above.
 *
 * Visibility: each commit gets a sequence number; h->seq is the last one
 * fully applied. A series remembers the commit that last touched it
 * (pend_seq), how many samples that commit added (pend_n) and its newest
 * sample before that commit (vis_t/vis_v). A reader loads h->seq once and
 * hides the pend_n newest samples of any series whose pend_seq is newer, so
 * it never sees part of a commit. Readers copy the open chunk's bytes under
 * the stripe lock, so they never see a half-written chunk.
 *
 * Chunks are cut as Prometheus' head cuts them: never across a multiple of
 * chunk_range, aiming at 120 samples (end time predicted at 30 samples),
 * at most 240.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/postings.h"
#include "util/mem.h"

#define NSTRIPES 256		/* power of two */
#define STRIPE_SHIFT 8
#define NSHARDS 64
#define SHARD_SHIFT 58		/* 64 - log2(NSHARDS) */

struct series {
	struct labels *ls;
	uint32_t id;
	uint32_t pending;	/* samples staged by appenders; GC skips */
	struct chunk **closed;
	uint32_t nclosed, capclosed;
	uint32_t pend_n;	/* samples added by commit pend_seq */
	uint8_t vis_has;	/* a sample existed before commit pend_seq */
	uint64_t pend_seq;
	int64_t vis_t;
	uint64_t vis_v;
	int64_t next_at;	/* cut the open chunk at this timestamp */
	struct chunk_app app;
};

struct stripe {
	pthread_mutex_t mu;
	struct series **tab;	/* open addressing by id >> STRIPE_SHIFT */
	uint32_t cap, n;
} __attribute__((aligned(64)));

struct hentry {
	uint64_t hash;
	uint32_t id;		/* 0 = empty */
};

struct shard {
	pthread_rwlock_t mu;
	struct hentry *tab;
	uint32_t cap, n;
} __attribute__((aligned(64)));

struct tsdb_head {
	int64_t chunk_range;
	struct stripe stripes[NSTRIPES];
	struct shard shards[NSHARDS];
	struct postings *post;
	pthread_mutex_t commit_mu;
	uint64_t seq;		/* atomic: last applied commit */
	uint32_t next_id;	/* atomic */
	/* statistics, atomic */
	uint64_t nseries, series_created, series_removed, samples, dups,
	    ooo, dupts, chunks, chunks_created, chunks_removed;
	int64_t mint, maxt;
};

struct staged {
	uint32_t id;
	int64_t t;
	uint64_t v;
};

struct tsdb_appender {
	struct tsdb_head *h;
	struct staged *v;
	size_t n, cap;
	uint64_t created;
};

#define ADD(p, x) __atomic_add_fetch((p), (x), __ATOMIC_RELAXED)
#define SUB(p, x) __atomic_sub_fetch((p), (x), __ATOMIC_RELAXED)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

const char *
tsdb_strerror(int err)
{
	switch (err) {
	case TSDB_OK: return "ok";
	case TSDB_ERR_OUT_OF_ORDER: return "out of order sample";
	case TSDB_ERR_DUPLICATE: return "duplicate sample for timestamp";
	case TSDB_ERR_NOT_FOUND: return "unknown series ref";
	case TSDB_ERR_EMPTY_LABELS: return "empty labelset";
	case TSDB_ERR_TOO_MANY_SERIES: return "too many series";
	}
	return "unknown error";
}

/* --- id map (per stripe) --------------------------------------------------- */

static struct stripe *
stripe_of(struct tsdb_head *h, uint32_t id)
{
	return &h->stripes[id & (NSTRIPES - 1)];
}

static uint32_t
id_home(const struct stripe *st, uint32_t id)
{
	return (id >> STRIPE_SHIFT) & (st->cap - 1);
}

/* stripe_find returns the series with id, or NULL; stripe lock held. */
static struct series *
stripe_find(const struct stripe *st, uint32_t id)
{
	uint32_t i, mask = st->cap - 1;

	if (st->cap == 0)
		return NULL;
	for (i = id_home(st, id); st->tab[i] != NULL; i = (i + 1) & mask)
		if (st->tab[i]->id == id)
			return st->tab[i];
	return NULL;
}

static void
stripe_put(struct stripe *st, struct series *s)
{
	uint32_t i, mask;

	if ((st->n + 1) * 2 > st->cap) {
		struct series **old = st->tab;
		uint32_t oldcap = st->cap, j;

		st->cap = st->cap ? st->cap * 2 : 16;
		st->tab = mem_calloc(st->cap, sizeof *st->tab);
		for (j = 0; j < oldcap; j++) {
			if (old[j] == NULL)
				continue;
			mask = st->cap - 1;
			for (i = id_home(st, old[j]->id); st->tab[i]; i = (i + 1) & mask)
				;
			st->tab[i] = old[j];
		}
		mem_free(old);
	}
	mask = st->cap - 1;
	for (i = id_home(st, s->id); st->tab[i]; i = (i + 1) & mask)
		;
	st->tab[i] = s;
	st->n++;
}

/* in_between tells whether home h is cyclically in (i, j]: an entry at j
 * with home h must stay when the hole at i is not on its probe path. */
static bool
in_between(uint32_t i, uint32_t j, uint32_t h)
{
	return i <= j ? (i < h && h <= j) : (i < h || h <= j);
}

static void
stripe_del(struct stripe *st, uint32_t id)
{
	uint32_t i, j, mask = st->cap - 1;

	for (i = id_home(st, id); st->tab[i] != NULL; i = (i + 1) & mask)
		if (st->tab[i]->id == id)
			break;
	if (st->tab[i] == NULL)
		return;
	for (j = (i + 1) & mask; st->tab[j] != NULL; j = (j + 1) & mask) {
		if (in_between(i, j, id_home(st, st->tab[j]->id)))
			continue;
		st->tab[i] = st->tab[j];
		i = j;
	}
	st->tab[i] = NULL;
	st->n--;
}

/* --- label-set map (per shard) -------------------------------------------- */

static struct shard *
shard_of(struct tsdb_head *h, uint64_t hash)
{
	return &h->shards[hash >> SHARD_SHIFT];
}

static uint32_t
hash_home(const struct shard *sh, uint64_t hash)
{
	return (uint32_t)hash & (sh->cap - 1);
}

static void
shard_put(struct shard *sh, uint64_t hash, uint32_t id)
{
	uint32_t i, mask;

	if ((sh->n + 1) * 4 > sh->cap * 3) {
		struct hentry *old = sh->tab;
		uint32_t oldcap = sh->cap, j;

		sh->cap = sh->cap ? sh->cap * 2 : 16;
		sh->tab = mem_calloc(sh->cap, sizeof *sh->tab);
		mask = sh->cap - 1;
		for (j = 0; j < oldcap; j++) {
			if (old[j].id == 0)
				continue;
			for (i = hash_home(sh, old[j].hash); sh->tab[i].id; i = (i + 1) & mask)
				;
			sh->tab[i] = old[j];
		}
		mem_free(old);
	}
	mask = sh->cap - 1;
	for (i = hash_home(sh, hash); sh->tab[i].id; i = (i + 1) & mask)
		;
	sh->tab[i].hash = hash;
	sh->tab[i].id = id;
	sh->n++;
}

static void
shard_del(struct shard *sh, uint64_t hash, uint32_t id)
{
	uint32_t i, j, mask = sh->cap - 1;

	if (sh->cap == 0)
		return;
	for (i = hash_home(sh, hash); sh->tab[i].id; i = (i + 1) & mask)
		if (sh->tab[i].id == id)
			break;
	if (sh->tab[i].id == 0)
		return;
	for (j = (i + 1) & mask; sh->tab[j].id; j = (j + 1) & mask) {
		if (in_between(i, j, hash_home(sh, sh->tab[j].hash)))
			continue;
		sh->tab[i] = sh->tab[j];
		i = j;
	}
	sh->tab[i].id = 0;
	sh->n--;
}

/* --- head ------------------------------------------------------------------ */

struct tsdb_head *
tsdb_head_new(const struct tsdb_head_opts *opts, char *err, size_t errlen)
{
	struct tsdb_head *h;
	size_t i;

	if (opts != NULL && opts->chunk_range < 0) {
		snprintf(err, errlen, "tsdb: negative chunk range %lld",
		    (long long)opts->chunk_range);
		return NULL;
	}
	h = mem_calloc(1, sizeof *h);
	h->chunk_range = opts && opts->chunk_range ? opts->chunk_range : TSDB_DEFAULT_CHUNK_RANGE;
	for (i = 0; i < NSTRIPES; i++)
		pthread_mutex_init(&h->stripes[i].mu, NULL);
	for (i = 0; i < NSHARDS; i++)
		pthread_rwlock_init(&h->shards[i].mu, NULL);
	pthread_mutex_init(&h->commit_mu, NULL);
	h->post = postings_new();
	h->next_id = 1;
	h->mint = INT64_MAX;
	h->maxt = INT64_MIN;
	return h;
}

static void
series_free(struct series *s)
{
	uint32_t i;

	for (i = 0; i < s->nclosed; i++)
		chunk_put(s->closed[i]);
	mem_free(s->closed);
	chunk_app_reset(&s->app);
	labels_free(s->ls);
	mem_free(s);
}

void
tsdb_head_free(struct tsdb_head *h)
{
	size_t i, j;

	if (h == NULL)
		return;
	for (i = 0; i < NSTRIPES; i++) {
		struct stripe *st = &h->stripes[i];

		for (j = 0; j < st->cap; j++)
			if (st->tab[j] != NULL)
				series_free(st->tab[j]);
		mem_free(st->tab);
		pthread_mutex_destroy(&st->mu);
	}
	for (i = 0; i < NSHARDS; i++) {
		mem_free(h->shards[i].tab);
		pthread_rwlock_destroy(&h->shards[i].mu);
	}
	postings_free(h->post);
	pthread_mutex_destroy(&h->commit_mu);
	mem_free(h);
}

/* lookup_locked finds the series of ls and returns it with its stripe lock
 * held, or NULL. */
static struct series *
lookup_locked(struct tsdb_head *h, const struct labels *ls)
{
	struct shard *sh = shard_of(h, ls->hash);
	struct series *found = NULL;
	uint32_t i, mask;

	pthread_rwlock_rdlock(&sh->mu);
	if (sh->cap > 0) {
		mask = sh->cap - 1;
		for (i = hash_home(sh, ls->hash); sh->tab[i].id; i = (i + 1) & mask) {
			struct stripe *st;
			struct series *s;

			if (sh->tab[i].hash != ls->hash)
				continue;
			st = stripe_of(h, sh->tab[i].id);
			pthread_mutex_lock(&st->mu);
			s = stripe_find(st, sh->tab[i].id);
			if (s != NULL && labels_equal(s->ls, ls)) {
				found = s;
				break;
			}
			pthread_mutex_unlock(&st->mu);
		}
	}
	pthread_rwlock_unlock(&sh->mu);
	return found;
}

/* get_or_create returns the series of ls with its stripe lock held (NULL
 * when ids are exhausted); *created tells whether it is new. */
static struct series *
get_or_create(struct tsdb_head *h, struct labels *ls, bool *created)
{
	struct shard *sh = shard_of(h, ls->hash);
	struct stripe *st;
	struct series *s;
	uint32_t i, mask, id;

	*created = false;
	if ((s = lookup_locked(h, ls)) != NULL)
		return s;
	pthread_rwlock_wrlock(&sh->mu);
	if (sh->cap > 0) {	/* again, now exclusively */
		mask = sh->cap - 1;
		for (i = hash_home(sh, ls->hash); sh->tab[i].id; i = (i + 1) & mask) {
			if (sh->tab[i].hash != ls->hash)
				continue;
			st = stripe_of(h, sh->tab[i].id);
			pthread_mutex_lock(&st->mu);
			s = stripe_find(st, sh->tab[i].id);
			if (s != NULL && labels_equal(s->ls, ls)) {
				pthread_rwlock_unlock(&sh->mu);
				return s;
			}
			pthread_mutex_unlock(&st->mu);
		}
	}
	id = __atomic_fetch_add(&h->next_id, 1, __ATOMIC_RELAXED);
	if (id == 0 || id == UINT32_MAX) {
		__atomic_store_n(&h->next_id, UINT32_MAX, __ATOMIC_RELAXED);
		pthread_rwlock_unlock(&sh->mu);
		return NULL;
	}
	s = mem_calloc(1, sizeof *s);
	s->ls = labels_ref(ls);
	s->id = id;
	s->next_at = INT64_MIN;
	chunk_app_init(&s->app);
	st = stripe_of(h, id);
	pthread_mutex_lock(&st->mu);
	stripe_put(st, s);
	shard_put(sh, ls->hash, id);
	postings_add(h->post, id, s->ls);
	pthread_rwlock_unlock(&sh->mu);
	ADD(&h->nseries, 1);
	ADD(&h->series_created, 1);
	*created = true;
	return s;
}

/* check_append applies Prometheus' appendable rules against the series'
 * newest sample. Returns 0 (append), 1 (identical duplicate: drop) or a
 * tsdb_err. */
static int
check_append(const struct series *s, int64_t t, uint64_t vbits)
{
	if (s->app.n == 0 || t > s->app.t)
		return 0;
	if (t == s->app.t)
		return vbits == s->app.v ? 1 : TSDB_ERR_DUPLICATE;
	return TSDB_ERR_OUT_OF_ORDER;
}

static int64_t
range_end(int64_t t, int64_t width)
{
	return (t / width) * width + width;
}

static int64_t
chunk_end_estimate(int64_t start, int64_t cur, int64_t max)
{
	int64_t n = (max - start) / ((cur - start + 1) * 4);

	return n <= 1 ? max : start + (max - start) / n;
}

static void
atomic_min(int64_t *p, int64_t v)
{
	int64_t cur = LOAD(p);

	while (v < cur && !__atomic_compare_exchange_n(p, &cur, v, true,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static void
atomic_max(int64_t *p, int64_t v)
{
	int64_t cur = LOAD(p);

	while (v > cur && !__atomic_compare_exchange_n(p, &cur, v, true,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* apply appends one sample to s as part of commit seq (stripe lock held). */
static void
apply(struct tsdb_head *h, struct series *s, int64_t t, uint64_t vbits, uint64_t seq)
{
	int rc = check_append(s, t, vbits);

	if (rc != 0) {
		if (rc == 1)
			ADD(&h->dups, 1);
		else if (rc == TSDB_ERR_DUPLICATE)
			ADD(&h->dupts, 1);
		else
			ADD(&h->ooo, 1);
		return;
	}
	if (s->pend_seq != seq) {
		s->pend_seq = seq;
		s->pend_n = 0;
		s->vis_has = s->app.n > 0;
		s->vis_t = s->app.t;
		s->vis_v = s->app.v;
	}
	if (s->app.n > 0) {
		if (s->app.n == TSDB_SAMPLES_PER_CHUNK / 4)
			s->next_at = chunk_end_estimate(s->app.mint, s->app.t, s->next_at);
		if (t >= s->next_at || s->app.n >= TSDB_SAMPLES_PER_CHUNK * 2) {
			if (s->nclosed == s->capclosed) {
				s->capclosed = s->capclosed ? s->capclosed * 2 : 2;
				s->closed = mem_realloc(s->closed, s->capclosed * sizeof *s->closed);
			}
			s->closed[s->nclosed++] = chunk_app_seal(&s->app);
		}
	}
	if (s->app.n == 0) {
		s->next_at = range_end(t, h->chunk_range);
		ADD(&h->chunks, 1);
		ADD(&h->chunks_created, 1);
	}
	chunk_app_append(&s->app, t, vbits);
	s->pend_n++;
	ADD(&h->samples, 1);
	atomic_min(&h->mint, t);
	atomic_max(&h->maxt, t);
}

/* --- appenders --------------------------------------------------------------- */

struct tsdb_appender *
tsdb_appender_new(struct tsdb_head *h)
{
	struct tsdb_appender *a = mem_calloc(1, sizeof *a);

	a->h = h;
	return a;
}

int
tsdb_appender_append(struct tsdb_appender *a, uint64_t *ref, struct labels *ls,
    int64_t t, double v)
{
	struct tsdb_head *h = a->h;
	struct series *s = NULL;
	struct stripe *st;
	uint64_t vbits = chunk_f64_bits(v);
	bool created = false;
	int rc;

	if (ref != NULL && *ref != 0 && *ref < UINT32_MAX) {
		st = stripe_of(h, (uint32_t)*ref);
		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, (uint32_t)*ref);
		if (s == NULL)
			pthread_mutex_unlock(&st->mu);
	}
	if (s == NULL) {
		if (ls == NULL)
			return TSDB_ERR_NOT_FOUND;
		if (ls->n == 0)
			return TSDB_ERR_EMPTY_LABELS;
		s = get_or_create(h, ls, &created);
		if (s == NULL)
			return TSDB_ERR_TOO_MANY_SERIES;
		if (created)
			a->created++;
	}
	st = stripe_of(h, s->id);
	rc = check_append(s, t, vbits);
	if (rc == 0)
		s->pending++;
	pthread_mutex_unlock(&st->mu);
	if (ref != NULL)
		*ref = s->id;
	if (rc == 1) {
		ADD(&h->dups, 1);
		return TSDB_OK;
	}
	if (rc < 0) {
		ADD(rc == TSDB_ERR_DUPLICATE ? &h->dupts : &h->ooo, 1);
		return rc;
	}
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = mem_realloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n].id = s->id;
	a->v[a->n].t = t;
	a->v[a->n].v = vbits;
	a->n++;
	return TSDB_OK;
}

int
tsdb_appender_commit(struct tsdb_appender *a)
{
	struct tsdb_head *h = a->h;
	uint64_t seq;
	size_t i;

	if (a->n == 0)
		return TSDB_OK;
	pthread_mutex_lock(&h->commit_mu);
	seq = LOAD(&h->seq) + 1;
	for (i = 0; i < a->n; i++) {
		struct stripe *st = stripe_of(h, a->v[i].id);
		struct series *s;

		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, a->v[i].id);
		if (s != NULL) {	/* pending kept it from GC */
			s->pending--;
			apply(h, s, a->v[i].t, a->v[i].v, seq);
		}
		pthread_mutex_unlock(&st->mu);
	}
	__atomic_store_n(&h->seq, seq, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&h->commit_mu);
	a->n = 0;
	return TSDB_OK;
}

void
tsdb_appender_rollback(struct tsdb_appender *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		struct stripe *st = stripe_of(a->h, a->v[i].id);
		struct series *s;

		pthread_mutex_lock(&st->mu);
		if ((s = stripe_find(st, a->v[i].id)) != NULL)
			s->pending--;
		pthread_mutex_unlock(&st->mu);
	}
	a->n = 0;
}

uint64_t
tsdb_appender_series_created(const struct tsdb_appender *a)
{
	return a->created;
}

void
tsdb_appender_free(struct tsdb_appender *a)
{
	if (a == NULL)
		return;
	tsdb_appender_rollback(a);
	mem_free(a->v);
	mem_free(a);
}

int
tsdb_head_append(struct tsdb_head *h, uint64_t *ref, struct labels *ls, int64_t t, double v)
{
	struct tsdb_appender a = { h, NULL, 0, 0, 0 };
	struct staged one;
	int rc;

	a.v = &one;
	a.cap = 1;
	rc = tsdb_appender_append(&a, ref, ls, t, v);
	if (rc == 0)
		tsdb_appender_commit(&a);
	return rc;
}

/* --- reading ---------------------------------------------------------------- */

/* visible_newest gives the newest sample a reader at commit w may see. */
static bool
visible_newest(const struct series *s, uint64_t w, int64_t *t, uint64_t *v)
{
	if (s->pend_seq > w) {
		*t = s->vis_t;
		*v = s->vis_v;
		return s->vis_has;
	}
	*t = s->app.t;
	*v = s->app.v;
	return s->app.n > 0;
}

static int64_t
series_mint(const struct series *s)
{
	return s->nclosed > 0 ? s->closed[0]->mint : s->app.mint;
}

struct tsdb_iter {
	struct chunk **c;
	uint16_t *lim;
	uint32_t n, cap;
	uint32_t i;		/* chunk being decoded */
	bool open;		/* ci is set up for c[i] */
	bool done;
	bool have;		/* cur is valid */
	struct chunk_iter ci;
	int64_t mint, maxt;
	int64_t t;
	uint64_t v;
};

struct ss_entry {
	uint32_t id;
	struct labels *ls;
};

struct tsdb_series_set {
	struct tsdb_head *h;
	uint64_t w;
	int64_t mint, maxt;
	struct ss_entry *e;
	size_t n, pos;		/* pos: 1 + index of the current entry */
	struct tsdb_iter it;
};

static void
iter_clear(struct tsdb_iter *it)
{
	uint32_t i;

	for (i = 0; i < it->n; i++)
		chunk_put(it->c[i]);
	it->n = 0;
	it->i = 0;
	it->open = it->done = it->have = false;
}

static void
iter_push(struct tsdb_iter *it, struct chunk *c, uint16_t lim)
{
	if (it->n == it->cap) {
		it->cap = it->cap ? it->cap * 2 : 8;
		it->c = mem_realloc(it->c, it->cap * sizeof *it->c);
		it->lim = mem_realloc(it->lim, it->cap * sizeof *it->lim);
	}
	it->c[it->n] = c;
	it->lim[it->n] = lim;
	it->n++;
}

/* snapshot loads s's chunks overlapping [mint, maxt] as seen at commit w
 * into it (stripe lock held). */
static void
snapshot(struct tsdb_iter *it, const struct series *s, uint64_t w)
{
	uint32_t hidden = s->pend_seq > w ? s->pend_n : 0, i, total = s->nclosed + 1;
	uint32_t k;

	iter_clear(it);
	/* walk from the newest chunk, hiding the in-flight commit's samples */
	for (k = total; k-- > 0;) {
		const struct chunk_app *app = &s->app;
		uint32_t cnt;
		int64_t cmint, cmaxt;

		if (k == s->nclosed) {
			cnt = app->n;
			cmint = app->mint;
			cmaxt = app->t;
		} else {
			cnt = chunk_samples(s->closed[k]);
			cmint = s->closed[k]->mint;
			cmaxt = s->closed[k]->maxt;
		}
		if (hidden >= cnt) {
			hidden -= cnt;
			continue;
		}
		cnt -= hidden;
		hidden = 0;
		if (cmaxt < it->mint)
			break;
		if (cmint > it->maxt)
			continue;
		iter_push(it, k == s->nclosed ? chunk_app_snapshot(app) : chunk_ref(s->closed[k]),
		    (uint16_t)cnt);
	}
	/* pushed newest first: reverse */
	for (i = 0; i < it->n / 2; i++) {
		struct chunk *c = it->c[i];
		uint16_t l = it->lim[i];

		it->c[i] = it->c[it->n - 1 - i];
		it->lim[i] = it->lim[it->n - 1 - i];
		it->c[it->n - 1 - i] = c;
		it->lim[it->n - 1 - i] = l;
	}
}

bool
tsdb_iter_next(struct tsdb_iter *it, int64_t *t, double *v)
{
	while (!it->done) {
		if (!it->open) {
			if (it->i >= it->n) {
				it->done = true;
				break;
			}
			chunk_iter_init(&it->ci, it->c[it->i]->b, it->c[it->i]->len, it->lim[it->i]);
			it->open = true;
		}
		if (!chunk_iter_next(&it->ci)) {
			it->open = false;
			it->i++;
			continue;
		}
		if (it->ci.t < it->mint)
			continue;
		if (it->ci.t > it->maxt) {
			it->done = true;
			break;
		}
		it->have = true;
		it->t = it->ci.t;
		it->v = it->ci.v;
		if (t != NULL)
			*t = it->t;
		if (v != NULL)
			*v = chunk_bits_f64(it->v);
		return true;
	}
	it->have = false;
	return false;
}

bool
tsdb_iter_seek(struct tsdb_iter *it, int64_t t, int64_t *tout, double *vout)
{
	if (!(it->have && it->t >= t)) {
		/* skip whole chunks that end before t */
		while (it->i < it->n && it->c[it->i]->maxt < t) {
			it->i++;
			it->open = false;
		}
		do {
			if (!tsdb_iter_next(it, NULL, NULL))
				return false;
		} while (it->t < t);
	}
	if (tout != NULL)
		*tout = it->t;
	if (vout != NULL)
		*vout = chunk_bits_f64(it->v);
	return true;
}

static int
cmp_entry(const void *a, const void *b)
{
	return labels_compare(((const struct ss_entry *)a)->ls, ((const struct ss_entry *)b)->ls);
}

struct tsdb_series_set *
tsdb_head_select(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt)
{
	struct tsdb_series_set *ss = mem_calloc(1, sizeof *ss);
	struct postings_ids ids;
	size_t i;

	ss->h = h;
	ss->mint = ss->it.mint = mint;
	ss->maxt = ss->it.maxt = maxt;
	ss->w = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
	if (n == 0 || mint > maxt)
		return ss;
	postings_select(h->post, ms, n, &ids);
	ss->e = mem_alloc((ids.n + 1) * sizeof *ss->e);
	for (i = 0; i < ids.n; i++) {
		struct stripe *st = stripe_of(h, ids.v[i]);
		struct series *s;
		int64_t t;
		uint64_t v;

		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, ids.v[i]);
		if (s != NULL && visible_newest(s, ss->w, &t, &v) && t >= mint &&
		    series_mint(s) <= maxt) {
			ss->e[ss->n].id = s->id;
			ss->e[ss->n].ls = labels_ref(s->ls);
			ss->n++;
		}
		pthread_mutex_unlock(&st->mu);
	}
	postings_ids_free(&ids);
	qsort(ss->e, ss->n, sizeof *ss->e, cmp_entry);
	return ss;
}

bool
tsdb_series_set_next(struct tsdb_series_set *ss)
{
	while (ss->pos < ss->n) {
		struct ss_entry *e = &ss->e[ss->pos++];
		struct stripe *st = stripe_of(ss->h, e->id);
		struct series *s;

		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, e->id);
		if (s != NULL)
			snapshot(&ss->it, s, ss->w);
		else
			iter_clear(&ss->it);
		pthread_mutex_unlock(&st->mu);
		if (ss->it.n > 0)
			return true;
	}
	iter_clear(&ss->it);
	return false;
}

const struct labels *
tsdb_series_set_labels(const struct tsdb_series_set *ss)
{
	return ss->pos > 0 ? ss->e[ss->pos - 1].ls : NULL;
}

uint64_t
tsdb_series_set_ref(const struct tsdb_series_set *ss)
{
	return ss->pos > 0 ? ss->e[ss->pos - 1].id : 0;
}

struct tsdb_iter *
tsdb_series_set_iter(struct tsdb_series_set *ss)
{
	return &ss->it;
}

size_t
tsdb_series_set_count(const struct tsdb_series_set *ss)
{
	return ss->n;
}

void
tsdb_series_set_free(struct tsdb_series_set *ss)
{
	size_t i;

	if (ss == NULL)
		return;
	iter_clear(&ss->it);
	mem_free(ss->it.c);
	mem_free(ss->it.lim);
	for (i = 0; i < ss->n; i++)
		labels_free(ss->e[i].ls);
	mem_free(ss->e);
	mem_free(ss);
}

static int
cmp_latest(const void *a, const void *b)
{
	return labels_compare(((const struct tsdb_latest *)a)->ls, ((const struct tsdb_latest *)b)->ls);
}

int
tsdb_head_latest(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    int64_t mint, struct tsdb_latest **out, size_t *nout)
{
	uint64_t w = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
	struct postings_ids ids = { NULL, 0 };
	struct tsdb_latest *v;
	size_t i, k = 0;

	if (n > 0)
		postings_select(h->post, ms, n, &ids);
	v = mem_alloc((ids.n + 1) * sizeof *v);
	for (i = 0; i < ids.n; i++) {
		struct stripe *st = stripe_of(h, ids.v[i]);
		struct series *s;
		int64_t t;
		uint64_t bits;

		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, ids.v[i]);
		if (s != NULL && visible_newest(s, w, &t, &bits) && t >= mint) {
			v[k].ls = labels_ref(s->ls);
			v[k].ref = s->id;
			v[k].t = t;
			v[k].v = chunk_bits_f64(bits);
			k++;
		}
		pthread_mutex_unlock(&st->mu);
	}
	postings_ids_free(&ids);
	qsort(v, k, sizeof *v, cmp_latest);
	*out = v;
	*nout = k;
	return TSDB_OK;
}

void
tsdb_latest_free(struct tsdb_latest *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		labels_free(v[i].ls);
	mem_free(v);
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* collect_strings gathers name itself (value == false) or the value of label
 * name (value == true; name NULL = every label name) of the series in ids. */
static void
collect_strings(struct tsdb_head *h, const struct postings_ids *ids,
    const char *name, struct tsdb_strings *out)
{
	size_t i, cap = 16, k;
	uint32_t j;

	out->n = 0;
	out->v = mem_alloc(cap * sizeof *out->v);
	for (i = 0; i < ids->n; i++) {
		struct stripe *st = stripe_of(h, ids->v[i]);
		struct series *s;

		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, ids->v[i]);
		for (j = 0; s != NULL && j < s->ls->n; j++) {
			const char *str;

			if (name == NULL)
				str = s->ls->v[j].name;
			else if (strcmp(s->ls->v[j].name, name) == 0)
				str = s->ls->v[j].value;
			else
				continue;
			if (out->n == cap) {
				cap *= 2;
				out->v = mem_realloc(out->v, cap * sizeof *out->v);
			}
			out->v[out->n++] = intern_ref(str);
		}
		pthread_mutex_unlock(&st->mu);
	}
	qsort(out->v, out->n, sizeof *out->v, cmp_cstr);
	for (i = k = 0; i < out->n; i++) {
		if (k > 0 && strcmp(out->v[k - 1], out->v[i]) == 0)
			intern_put(out->v[i]);
		else
			out->v[k++] = out->v[i];
	}
	out->n = k;
}

void
tsdb_head_label_names(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    struct tsdb_strings *out)
{
	struct postings_strings ps;
	struct postings_ids ids;

	if (n == 0) {
		postings_label_names(h->post, &ps);
		out->v = ps.v;
		out->n = ps.n;
		return;
	}
	postings_select(h->post, ms, n, &ids);
	collect_strings(h, &ids, NULL, out);
	postings_ids_free(&ids);
}

void
tsdb_head_label_values(struct tsdb_head *h, const char *name,
    struct matcher *const *ms, size_t n, struct tsdb_strings *out)
{
	struct postings_strings ps;
	struct postings_ids ids;

	if (n == 0) {
		postings_label_values(h->post, name, &ps);
		out->v = ps.v;
		out->n = ps.n;
		return;
	}
	postings_select(h->post, ms, n, &ids);
	collect_strings(h, &ids, name, out);
	postings_ids_free(&ids);
}

void
tsdb_strings_free(struct tsdb_strings *s)
{
	struct postings_strings ps = { s->v, s->n };

	postings_strings_free(&ps);
	s->v = NULL;
	s->n = 0;
}

void
tsdb_head_stats(struct tsdb_head *h, struct tsdb_head_stats *st)
{
	st->series = LOAD(&h->nseries);
	st->series_created = LOAD(&h->series_created);
	st->series_removed = LOAD(&h->series_removed);
	st->samples_appended = LOAD(&h->samples);
	st->duplicates = LOAD(&h->dups);
	st->out_of_order = LOAD(&h->ooo);
	st->duplicate_ts = LOAD(&h->dupts);
	st->chunks = LOAD(&h->chunks);
	st->chunks_created = LOAD(&h->chunks_created);
	st->chunks_removed = LOAD(&h->chunks_removed);
	st->mint = LOAD(&h->mint);
	st->maxt = LOAD(&h->maxt);
}

/* --- garbage collection ----------------------------------------------------- */

struct victim {
	uint32_t id;
	struct labels *ls;	/* a reference, for the shard and postings */
};

static int
cmp_victim(const void *a, const void *b)
{
	uint32_t x = ((const struct victim *)a)->id, y = ((const struct victim *)b)->id;

	return x < y ? -1 : x > y;
}

size_t
tsdb_head_gc(struct tsdb_head *h, int64_t mint)
{
	struct victim *vic = NULL;
	size_t nv = 0, cv = 0, i, removed = 0;
	int64_t newmint = INT64_MAX;
	uint32_t *ids;
	const struct labels **lss;

	/* 1: drop old closed chunks; note series that are left empty */
	for (i = 0; i < NSTRIPES; i++) {
		struct stripe *st = &h->stripes[i];
		uint32_t j, k, drop;

		pthread_mutex_lock(&st->mu);
		for (j = 0; j < st->cap; j++) {
			struct series *s = st->tab[j];

			if (s == NULL)
				continue;
			for (drop = 0; drop < s->nclosed && s->closed[drop]->maxt < mint; drop++)
				chunk_put(s->closed[drop]);
			if (drop > 0) {
				for (k = drop; k < s->nclosed; k++)
					s->closed[k - drop] = s->closed[k];
				s->nclosed -= drop;
				SUB(&h->chunks, drop);
				ADD(&h->chunks_removed, drop);
			}
			if ((s->app.n == 0 || s->app.t < mint) && s->pending == 0) {
				if (nv == cv) {
					cv = cv ? cv * 2 : 64;
					vic = mem_realloc(vic, cv * sizeof *vic);
				}
				vic[nv].id = s->id;
				vic[nv].ls = labels_ref(s->ls);
				nv++;
			} else if (s->app.n > 0 && series_mint(s) < newmint) {
				newmint = series_mint(s);
			}
		}
		pthread_mutex_unlock(&st->mu);
	}
	/* 2: remove them from the maps, rechecking under the locks */
	for (i = 0; i < nv; i++) {
		struct shard *sh = shard_of(h, vic[i].ls->hash);
		struct stripe *st = stripe_of(h, vic[i].id);
		struct series *s;

		pthread_rwlock_wrlock(&sh->mu);
		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, vic[i].id);
		if (s != NULL && (s->app.n == 0 || s->app.t < mint) && s->pending == 0) {
			stripe_del(st, s->id);
			shard_del(sh, vic[i].ls->hash, s->id);
			SUB(&h->chunks, s->nclosed + (s->app.n > 0));
			ADD(&h->chunks_removed, s->nclosed + (s->app.n > 0));
		} else {
			if (s != NULL && s->app.n > 0 && series_mint(s) < newmint)
				newmint = series_mint(s);
			s = NULL;
		}
		pthread_mutex_unlock(&st->mu);
		pthread_rwlock_unlock(&sh->mu);
		if (s != NULL) {
			series_free(s);
			vic[removed++] = vic[i];
		} else {
			labels_free(vic[i].ls);
		}
	}
	/* 3: drop them from the postings */
	if (removed > 1)
		qsort(vic, removed, sizeof *vic, cmp_victim);
	ids = mem_alloc((removed + 1) * sizeof *ids);
	lss = mem_alloc((removed + 1) * sizeof *lss);
	for (i = 0; i < removed; i++) {
		ids[i] = vic[i].id;
		lss[i] = vic[i].ls;
	}
	postings_del(h->post, ids, lss, removed);
	for (i = 0; i < removed; i++)
		labels_free(vic[i].ls);
	mem_free(ids);
	mem_free(lss);
	mem_free(vic);
	SUB(&h->nseries, removed);
	ADD(&h->series_removed, removed);
	/* the head now starts at its oldest remaining sample (or at mint when
	 * a concurrent append went older, which the next gc corrects) */
	__atomic_store_n(&h->mint, newmint, __ATOMIC_RELAXED);
	if (LOAD(&h->nseries) == 0)
		__atomic_store_n(&h->maxt, INT64_MIN, __ATOMIC_RELAXED);
	return removed;
}
