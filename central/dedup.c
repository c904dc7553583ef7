/* central/dedup.c - one copy of series that replicated leaves serve twice.
 *
 * The rules (follow, takeover, epochs, birth, restart) and the memory
 * figures are in dedup.h. Here: a group (struct dd_group) holds, per
 * replica (struct dd_rep), the samples that arrived and are not decided
 * yet (a ring, oldest first, all after the group's last stored sample T)
 * and the newest decided one (prev: stored or dropped, at or before T).
 * step() looks at those and either stores one sample, or waits: for an
 * arrival, or until a replica's data is complete far enough by time (then
 * the group carries a wake time and the committer's scan of the shard's
 * active list comes back to it).
 *
 * Threads: the hook (scrape workers) and the committer take the shard's
 * mutex for a group; lock order shard -> replica value (its lag figures)
 * and shard -> the value table's rwlock. The committer alone appends,
 * frees groups, and owns the start-up table and the output buffer.
 */
#include "config.h"

#include "central/dedup.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/metrics.h"
#include "labels/matcher.h"
#include "tsdb/chunk.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define ADD(p, x) __atomic_add_fetch((p), (x), __ATOMIC_RELAXED)
#define SUB(p, x) __atomic_sub_fetch((p), (x), __ATOMIC_RELAXED)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, x) __atomic_store_n((p), (x), __ATOMIC_RELAXED)

#define NONE INT64_MIN		/* no timestamp */
#define LAG_BURSTS 3		/* pulls the arrival delay is taken over */
#define BURST_GAP_MS 500	/* arrivals further apart start a new pull */
#define LAG_MARGIN_MS 1000
#define SCAN_MS 1000		/* the active lists' wake scan */
#define SWEEP_MS (10 * 1000)	/* forgetting groups */
#define QUEUE_MIN 4
#define STACK_LABELS 64

/* One replica label value, for the process' life. */
struct dd_value {
	const char *value;	/* interned, one reference */
	pthread_mutex_t mu;	/* guards what follows */
	int64_t lag[LAG_BURSTS];	/* largest arrival delay (ms) of the last
					 * pulls (bursts of arrivals), a ring; -1 */
	int64_t last_arrival;	/* wall ms */
	unsigned cur;		/* lag[cur]: the current burst */
};

struct dd_sample {
	int64_t t;
	uint64_t v;		/* value bits */
};

/* One replica of a group. */
struct dd_rep {
	struct dd_value *r;
	int64_t last_t;		/* newest sample that arrived; NONE */
	int64_t prev_t;		/* newest decided (<= group T); NONE */
	uint64_t prev_v;
	struct dd_sample *q;	/* ring of undecided samples (> group T) */
	uint16_t qhead, qlen, qcap;
};

struct dd_group {
	struct dd_group *next;		/* hash chain */
	struct dd_group *dnext;		/* dirty list */
	struct dd_group *aprev, *anext;	/* active list */
	struct labels *key;		/* the stored series' labels */
	uint64_t ref;			/* head series ref (committer only) */
	int64_t T;			/* last stored sample; NONE */
	uint64_t vT;
	int64_t born;			/* wall ms */
	int64_t last_arrival;		/* wall ms */
	int64_t wake;			/* wall ms the committer comes back; INT64_MAX */
	int32_t delta[3];		/* last stored intervals (ms), a ring */
	uint8_t ndelta, idelta;
	int8_t leader;			/* index in rep, -1: none */
	uint8_t nrep;
	bool ended;			/* the last stored sample is a staleness marker */
	bool fresh;			/* the start-up table is not consulted yet */
	bool resume;			/* T came from the store: find who wrote it */
	bool birth_wait;		/* the first election waits one settle time */
	bool dirty, active;
	struct dd_rep *rep;		/* nrep, allocated to nrep */
};

struct dd_shard {
	pthread_mutex_t mu;
	struct dd_group **tab;		/* chains; mask + 1 buckets */
	size_t mask, n;
	struct dd_group *dirty;		/* arrivals since the last pass */
	struct dd_group active;		/* sentinel: groups with undecided samples */
	char pad[64];
};

/* The newest stored sample of a series at start-up. */
struct dd_latest {
	struct labels *ls;	/* a reference; NULL: empty slot */
	int64_t t;
	uint64_t v;
};

struct dd_out {
	struct dd_group *g;
	int64_t t;
	uint64_t v;
};

struct dedup {
	char *label;			/* the replica label's name */
	int64_t settle;			/* configured settle ms (atomic) */
	int64_t forget_ms, epoch_ms;
	int64_t (*now)(void *arg);
	void *now_arg;
	bool manual;

	struct dd_shard shards[DEDUP_SHARDS];

	pthread_rwlock_t vmu;		/* the value table */
	struct dd_value **vtab;		/* open addressing by pointer, 2 x DEDUP_MAX_VALUES */
	size_t nvals;
	bool warned_values;

	/* committer */
	struct tsdb_head *head;
	struct tsdb_appender *app;
	struct dd_latest *st;		/* start-up table; NULL once dropped */
	size_t st_mask;
	int64_t st_until;
	struct dd_out *out;
	size_t nout, capout;
	int64_t next_scan, next_sweep;
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu;		/* guards stopping */
	pthread_cond_t cv;
	bool stopping;

	struct dedup_stats st_;		/* atomic counters */
};

/* --- small helpers --------------------------------------------------------- */

static int64_t
clock_now(struct dedup *d)
{
	return d->now != NULL ? d->now(d->now_arg) : time_now_ms();
}

static bool
is_marker(uint64_t v)
{
	return v == CHUNK_STALE_NAN_BITS;
}

static double
fval(uint64_t v)
{
	double x;

	memcpy(&x, &v, sizeof(x));
	return x;
}

static uint64_t
vbits(double x)
{
	uint64_t v;

	memcpy(&v, &x, sizeof(v));
	return v;
}

static bool
str_eq(const char *a, const char *b)
{
	return a == b || strcmp(a, b) == 0;
}

/* epoch_of returns floor(t / e). */
static int64_t
epoch_of(int64_t t, int64_t e)
{
	return t >= 0 ? t / e : -((-(t + 1)) / e) - 1;
}

/* --- replica values -------------------------------------------------------- */

static size_t
ptr_hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return (size_t)x;
}

#define VTAB_SIZE (2 * DEDUP_MAX_VALUES)

/* vtab_find returns the entry of the interned value v, or NULL (vmu held). */
static struct dd_value *
vtab_find(struct dedup *d, const char *v)
{
	for (size_t i = ptr_hash(v) & (VTAB_SIZE - 1);; i = (i + 1) & (VTAB_SIZE - 1)) {
		if (d->vtab[i] == NULL)
			return NULL;
		if (d->vtab[i]->value == v)
			return d->vtab[i];
	}
}

/* value_get returns the process-wide entry of replica value v (any
 * string), creating it; NULL when DEDUP_MAX_VALUES are taken. */
static struct dd_value *
value_get(struct dedup *d, const char *v)
{
	const char *iv = intern_get(v, strlen(v));
	struct dd_value *r;

	pthread_rwlock_rdlock(&d->vmu);
	r = vtab_find(d, iv);
	pthread_rwlock_unlock(&d->vmu);
	if (r != NULL) {
		intern_put(iv);
		return r;
	}
	pthread_rwlock_wrlock(&d->vmu);
	r = vtab_find(d, iv);
	if (r == NULL && d->nvals < DEDUP_MAX_VALUES) {
		size_t i;

		r = mem_calloc(1, sizeof(*r));
		r->value = iv;
		iv = NULL;	/* the entry's reference now */
		pthread_mutex_init(&r->mu, NULL);
		for (size_t k = 0; k < LAG_BURSTS; k++)
			r->lag[k] = -1;
		for (i = ptr_hash(r->value) & (VTAB_SIZE - 1); d->vtab[i] != NULL;
		    i = (i + 1) & (VTAB_SIZE - 1))
			;
		d->vtab[i] = r;
		d->nvals++;
	}
	pthread_rwlock_unlock(&d->vmu);
	intern_put(iv);
	return r;
}

/* value_observe records that a sample stamped t arrived at now. The delay
 * is kept per burst of arrivals (one pull), over the last LAG_BURSTS: a
 * catch-up after a start or a cut (minutes late) is forgotten after a few
 * ordinary pulls, and a replica that went silent keeps its last figures. */
static void
value_observe(struct dd_value *r, int64_t now, int64_t t)
{
	int64_t lag = now > t ? now - t : 0;

	pthread_mutex_lock(&r->mu);
	if (r->lag[r->cur] >= 0 && now - r->last_arrival > BURST_GAP_MS) {
		r->cur = (r->cur + 1) % LAG_BURSTS;
		r->lag[r->cur] = -1;
	}
	r->last_arrival = now;
	if (lag > r->lag[r->cur])
		r->lag[r->cur] = lag;
	pthread_mutex_unlock(&r->mu);
}

/* settle_of returns how long after its timestamp every sample of r has
 * arrived: the configured settle time or r's largest recent delay, or
 * INT64_MAX while nothing is known of r. */
static int64_t
settle_of(struct dedup *d, struct dd_value *r)
{
	int64_t lag = -1, s = LOAD(&d->settle);

	pthread_mutex_lock(&r->mu);
	for (size_t k = 0; k < LAG_BURSTS; k++)
		if (r->lag[k] > lag)
			lag = r->lag[k];
	pthread_mutex_unlock(&r->mu);
	if (lag < 0)
		return INT64_MAX;
	return lag + LAG_MARGIN_MS > s ? lag + LAG_MARGIN_MS : s;
}

/* complete_of returns the time up to which every sample of q has arrived. */
static int64_t
complete_of(struct dedup *d, const struct dd_rep *q, int64_t now, int64_t *settle)
{
	int64_t s = settle_of(d, q->r), c = q->last_t;

	*settle = s;
	if (s != INT64_MAX && now - s > c)
		c = now - s;
	return c;
}

/* --- queues ---------------------------------------------------------------- */

static struct dd_sample *
q_at(struct dd_rep *q, size_t i)
{
	return &q->q[(q->qhead + i) & (q->qcap - 1u)];
}

/* q_push appends a sample; false when the queue was full and its oldest
 * sample made room. */
static bool
q_push(struct dd_rep *q, int64_t t, uint64_t v)
{
	bool ok = true;

	if (q->qlen == q->qcap) {
		if (q->qcap < DEDUP_QUEUE_MAX) {
			size_t ncap = q->qcap ? (size_t)q->qcap * 2 : QUEUE_MIN;
			struct dd_sample *nq = mem_alloc(ncap * sizeof(*nq));

			for (size_t i = 0; i < q->qlen; i++)
				nq[i] = *q_at(q, i);
			mem_free(q->q);
			q->q = nq;
			q->qhead = 0;
			q->qcap = (uint16_t)ncap;
		} else {
			q->qhead = (uint16_t)((q->qhead + 1u) & (q->qcap - 1u));
			q->qlen--;
			ok = false;
		}
	}
	*q_at(q, q->qlen) = (struct dd_sample){ t, v };
	q->qlen++;
	return ok;
}

/* q_pop decides the oldest sample: it becomes prev. */
static struct dd_sample
q_pop(struct dd_rep *q)
{
	struct dd_sample s = *q_at(q, 0);

	q->qhead = (uint16_t)((q->qhead + 1u) & (q->qcap - 1u));
	q->qlen--;
	q->prev_t = s.t;
	q->prev_v = s.v;
	return s;
}

/* --- groups ---------------------------------------------------------------- */

static void
group_free(struct dd_group *g)
{
	for (size_t i = 0; i < g->nrep; i++)
		mem_free(g->rep[i].q);
	mem_free(g->rep);
	labels_free(g->key);
	mem_free(g);
}

static bool
key_equal(const struct labels *k, const struct label *v, size_t n)
{
	if (k->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!str_eq(k->v[i].name, v[i].name) || !str_eq(k->v[i].value, v[i].value))
			return false;
	return true;
}

static size_t
bucket(const struct dd_shard *sh, uint64_t h)
{
	return (size_t)(h >> 6) & sh->mask;
}

static void
shard_grow(struct dd_shard *sh)
{
	size_t ncap = (sh->mask + 1) * 2;
	struct dd_group **nt = mem_calloc(ncap, sizeof(*nt));
	struct dd_group *g, *next;

	for (size_t i = 0; i <= sh->mask; i++)
		for (g = sh->tab[i]; g != NULL; g = next) {
			size_t b = (size_t)(g->key->hash >> 6) & (ncap - 1);

			next = g->next;
			g->next = nt[b];
			nt[b] = g;
		}
	mem_free(sh->tab);
	sh->tab = nt;
	sh->mask = ncap - 1;
}

static void
active_unlink(struct dd_group *g)
{
	if (!g->active)
		return;
	g->aprev->anext = g->anext;
	g->anext->aprev = g->aprev;
	g->aprev = g->anext = NULL;
	g->active = false;
}

static void
active_link(struct dd_shard *sh, struct dd_group *g)
{
	if (g->active)
		return;
	g->anext = sh->active.anext;
	g->aprev = &sh->active;
	sh->active.anext->aprev = g;
	sh->active.anext = g;
	g->active = true;
}

static bool
has_queued(const struct dd_group *g)
{
	for (size_t i = 0; i < g->nrep; i++)
		if (g->rep[i].qlen > 0)
			return true;
	return false;
}

/* rep_remove drops replica slot i (no queued samples, not the leader). */
static void
rep_remove(struct dd_group *g, size_t i)
{
	mem_free(g->rep[i].q);
	g->nrep--;
	if (i != g->nrep) {
		g->rep[i] = g->rep[g->nrep];
		if (g->leader == (int8_t)g->nrep)
			g->leader = (int8_t)i;
	}
}

/* rep_forget drops the replicas that sent nothing for an epoch before T. */
static void
rep_forget(struct dedup *d, struct dd_group *g)
{
	if (g->T == NONE)
		return;
	for (size_t i = g->nrep; i-- > 0;) {
		struct dd_rep *q = &g->rep[i];

		if (q->qlen == 0 && (int8_t)i != g->leader && q->last_t < g->T - d->epoch_ms)
			rep_remove(g, i);
	}
}

/* --- the decision ---------------------------------------------------------- */

enum step_result { ST_OUT, ST_AGAIN, ST_WAIT, ST_IDLE };

enum cover { COVER_NO, COVER_YES, COVER_UNKNOWN };

static int64_t
spacing_of(const struct dd_group *g)
{
	int32_t a, b, c;

	switch (g->ndelta) {
	case 0:
		return 0;
	case 1:
		return g->delta[0];
	case 2:
		return g->delta[0] > g->delta[1] ? g->delta[0] : g->delta[1];
	default:
		a = g->delta[0], b = g->delta[1], c = g->delta[2];
		if ((a <= b && b <= c) || (c <= b && b <= a))
			return b;
		if ((b <= a && a <= c) || (c <= a && a <= b))
			return a;
		return c;
	}
}

/* thr_of returns how far apart two samples of a replica may be and still
 * count as one live stretch. */
static int64_t
thr_of(const struct dd_group *g)
{
	int64_t s = spacing_of(g);

	if (s <= 0)
		s = DEDUP_DEFAULT_SPACING_MS;
	return s * 5 / 2;
}

/* guarded tells whether a takeover at sample s would go back in value
 * within the same scrape round (see the header). */
static bool
guarded(const struct dd_group *g, const struct dd_sample *s)
{
	int64_t sp = spacing_of(g);

	if (g->ended || g->T == NONE || sp <= 0 || is_marker(g->vT))
		return false;
	return s->t - g->T < sp / 2 && fval(s->v) < fval(g->vT);
}

/* first_eligible returns the index in q's queue of its first sample that
 * may start a takeover (not a marker, not guarded) at or before limit, or
 * -1. */
static int
first_eligible(const struct dd_group *g, struct dd_rep *q, int64_t limit)
{
	for (size_t i = 0; i < q->qlen; i++) {
		const struct dd_sample *s = q_at(q, i);

		if (s->t > limit)
			return -1;
		if (is_marker(s->v) || guarded(g, s))
			continue;
		return (int)i;
	}
	return -1;
}

/* best_candidate finds the earliest eligible sample at or before limit
 * over every replica but skip (ties: the smallest label value). Returns
 * the replica index (and *pos) or -1. */
static int
best_candidate(const struct dd_group *g, int skip, int64_t limit, int *pos)
{
	int best = -1, bpos = -1;
	int64_t bt = 0;

	for (size_t i = 0; i < g->nrep; i++) {
		int p;
		int64_t t;

		if ((int)i == skip)
			continue;
		p = first_eligible(g, &g->rep[i], limit);
		if (p < 0)
			continue;
		t = q_at(&g->rep[i], (size_t)p)->t;
		if (best < 0 || t < bt ||
		    (t == bt && strcmp(g->rep[i].r->value, g->rep[best].r->value) < 0)) {
			best = (int)i;
			bpos = p;
			bt = t;
		}
	}
	*pos = bpos;
	return best;
}

/* covers tells whether replica q is live at x (> T): samples a <= x <= b,
 * consecutive, neither a marker, at most thr apart. */
static enum cover
covers(struct dedup *d, const struct dd_group *g, struct dd_rep *q, int64_t x, int64_t now,
    int64_t *wake)
{
	int64_t thr = thr_of(g), c, s, at;
	uint64_t av;
	bool have_a;
	size_t i;

	for (i = 0; i < q->qlen && q_at(q, i)->t < x; i++)
		;
	if (i > 0) {
		have_a = true;
		at = q_at(q, i - 1)->t;
		av = q_at(q, i - 1)->v;
	} else {
		have_a = q->prev_t != NONE;
		at = q->prev_t;
		av = q->prev_v;
	}
	if (i < q->qlen) {
		const struct dd_sample *b = q_at(q, i);

		if (b->t == x)
			return is_marker(b->v) ? COVER_NO : COVER_YES;
		if (!have_a || is_marker(av) || is_marker(b->v))
			return COVER_NO;
		return b->t - at <= thr ? COVER_YES : COVER_NO;
	}
	c = complete_of(d, q, now, &s);
	if (c < x) {
		if (s != INT64_MAX && x + s < *wake)
			*wake = x + s;
		return COVER_UNKNOWN;
	}
	if (!have_a || is_marker(av) || at + thr < x || c >= at + thr)
		return COVER_NO;
	if (s != INT64_MAX && at + thr + s < *wake)
		*wake = at + thr + s;
	return COVER_UNKNOWN;
}

/* emit stores sample pos of replica i: the ones before it in i's queue are
 * dropped, the group's T moves to it. */
static void
emit(struct dedup *d, struct dd_group *g, int i, int pos)
{
	struct dd_rep *q = &g->rep[i];
	struct dd_sample s;
	struct dd_out *o;

	for (int k = 0; k < pos; k++) {
		q_pop(q);
		ADD(&d->st_.samples_dropped, 1);
	}
	s = q_pop(q);
	if (!is_marker(s.v) && g->T != NONE && !g->ended) {
		int64_t dt = s.t - g->T;

		g->delta[g->idelta] = dt > INT32_MAX ? INT32_MAX : (int32_t)dt;
		g->idelta = (uint8_t)((g->idelta + 1) % 3);
		if (g->ndelta < 3)
			g->ndelta++;
	}
	g->T = s.t;
	g->vT = s.v;
	g->ended = is_marker(s.v);
	if (d->nout == d->capout) {
		d->capout = d->capout ? d->capout * 2 : 256;
		d->out = mem_realloc(d->out, d->capout * sizeof(*d->out));
	}
	o = &d->out[d->nout++];
	o->g = g;
	o->t = s.t;
	o->v = s.v;
}

/* drain decides (drops) every queued sample at or before T, and the
 * staleness markers at the head of the queues of replicas that are not
 * elected (they are never stored; as prev they still end that replica's
 * live stretch for covers()). */
static void
drain(struct dedup *d, struct dd_group *g)
{
	for (size_t i = 0; i < g->nrep; i++) {
		struct dd_rep *q = &g->rep[i];

		while (q->qlen > 0 && ((g->T != NONE && q_at(q, 0)->t <= g->T) ||
		    ((int)i != g->leader && is_marker(q_at(q, 0)->v)))) {
			q_pop(q);
			ADD(&d->st_.samples_dropped, 1);
		}
	}
}

/* all_complete tells whether every replica but skip has all its samples
 * up to x; else lowers *wake to when the clock makes it so. */
static bool
all_complete(struct dedup *d, const struct dd_group *g, int skip, int64_t x, int64_t now,
    int64_t *wake)
{
	bool ok = true;

	for (size_t i = 0; i < g->nrep; i++) {
		int64_t s;

		if ((int)i == skip)
			continue;
		if (complete_of(d, &g->rep[i], now, &s) < x) {
			ok = false;
			if (s != INT64_MAX && x + s < *wake)
				*wake = x + s;
		}
	}
	return ok;
}

/* epoch_pick returns the replica with the smallest label value below the
 * leader's that is live at e, -1 when none is, -2 when that is not known
 * yet. */
static int
epoch_pick(struct dedup *d, const struct dd_group *g, int64_t e, int64_t now, int64_t *wake)
{
	const char *lv = g->rep[g->leader].r->value;
	const char *done = NULL;	/* last value looked at, ascending */

	for (;;) {
		int next = -1;

		for (size_t i = 0; i < g->nrep; i++) {
			const char *v = g->rep[i].r->value;

			if (strcmp(v, lv) >= 0 || (done != NULL && strcmp(v, done) <= 0))
				continue;
			if (next < 0 || strcmp(v, g->rep[next].r->value) < 0)
				next = (int)i;
		}
		if (next < 0)
			return -1;
		switch (covers(d, g, &g->rep[next], e, now, wake)) {
		case COVER_YES:
			return next;
		case COVER_UNKNOWN:
			return -2;
		case COVER_NO:
			break;
		}
		done = g->rep[next].r->value;
	}
}

static enum step_result
step_leader(struct dedup *d, struct dd_group *g, int64_t now, int64_t *wake)
{
	int L = g->leader, best, pos;
	struct dd_rep *lq = &g->rep[L];
	const struct dd_sample *n = lq->qlen > 0 ? q_at(lq, 0) : NULL;
	int64_t thr = thr_of(g), limit, s;
	enum { K_MARK, K_GAP, K_NONE } kind;

	if (n != NULL && !is_marker(n->v) && n->t - g->T <= thr) {
		/* Still live. At an epoch boundary the smallest live replica
		 * is elected. */
		if (epoch_of(n->t, d->epoch_ms) != epoch_of(g->T, d->epoch_ms)) {
			int64_t e = epoch_of(n->t, d->epoch_ms) * d->epoch_ms;
			int r = epoch_pick(d, g, e, now, wake);

			if (r == -2)
				return ST_WAIT;
			if (r >= 0) {
				pos = first_eligible(g, &g->rep[r], INT64_MAX);
				if (pos >= 0) {
					g->leader = (int8_t)r;
					emit(d, g, r, pos);
					ADD(&d->st_.switches, 1);
					return ST_OUT;
				}
				/* Its samples after T are all too close to
				 * count: wait for its next, unless it has none
				 * coming. */
				if (complete_of(d, &g->rep[r], now, &s) < g->T + thr) {
					if (s != INT64_MAX && g->T + thr + s < *wake)
						*wake = g->T + thr + s;
					return ST_WAIT;
				}
			}
		}
		emit(d, g, L, 0);
		return ST_OUT;
	}
	if (n != NULL && is_marker(n->v)) {
		kind = K_MARK;
		limit = n->t;
	} else if (n != NULL) {
		kind = K_GAP;
		limit = n->t - 1;
	} else {
		if (complete_of(d, lq, now, &s) < g->T + thr) {
			if (s != INT64_MAX && g->T + thr + s < *wake)
				*wake = g->T + thr + s;
			return ST_WAIT;
		}
		kind = K_NONE;
		limit = INT64_MAX;
	}
	best = best_candidate(g, L, limit, &pos);
	if (best < 0 && kind == K_NONE)
		return ST_IDLE;
	if (!all_complete(d, g, best, best >= 0 ? q_at(&g->rep[best], (size_t)pos)->t : limit,
	    now, wake))
		return ST_WAIT;
	if (best >= 0) {
		g->leader = (int8_t)best;
		emit(d, g, best, pos);
		ADD(&d->st_.switches, 1);
		return ST_OUT;
	}
	emit(d, g, L, 0);	/* the marker, or the leader after its gap */
	if (kind == K_MARK)
		g->leader = -1;
	return ST_OUT;
}

static enum step_result
step_elect(struct dedup *d, struct dd_group *g, int64_t now, int64_t *wake)
{
	int best, pos;

	if (g->resume && g->T != NONE) {
		for (size_t i = 0; i < g->nrep; i++)
			if (g->rep[i].prev_t == g->T && g->rep[i].prev_v == g->vT) {
				g->leader = (int8_t)i;
				g->resume = false;
				g->birth_wait = false;
				return ST_AGAIN;
			}
	}
	if (g->birth_wait && now < g->born + LOAD(&d->settle)) {
		if (g->born + LOAD(&d->settle) < *wake)
			*wake = g->born + LOAD(&d->settle);
		return ST_WAIT;
	}
	/* The earliest sample te; every replica whose first sample comes
	 * within one spacing of it is live there; the smallest of those is
	 * elected, at its first sample. (Not simply the earliest: two
	 * centrals started at other times see the data from other points
	 * on, and still elect alike.) */
	best = best_candidate(g, -1, INT64_MAX, &pos);
	if (best < 0)
		return ST_IDLE;
	{
		int64_t te = q_at(&g->rep[best], (size_t)pos)->t, sp = spacing_of(g);
		struct dd_rep *e = &g->rep[best];

		if (sp <= 0 && (size_t)pos + 1 < e->qlen)
			sp = q_at(e, (size_t)pos + 1)->t - te;
		if (sp <= 0)
			sp = DEDUP_DEFAULT_SPACING_MS;
		if (!all_complete(d, g, -1, te + sp, now, wake))
			return ST_WAIT;
		for (size_t i = 0; i < g->nrep; i++) {
			int p = first_eligible(g, &g->rep[i], te + sp);

			if (p >= 0 && strcmp(g->rep[i].r->value, g->rep[best].r->value) < 0) {
				best = (int)i;
				pos = p;
			}
		}
	}
	g->leader = (int8_t)best;
	g->resume = false;
	g->birth_wait = false;
	emit(d, g, best, pos);
	return ST_OUT;
}

/* startup_take returns the store's newest sample of key from the start-up
 * table (and forgets it there). */
static bool
startup_take(struct dedup *d, const struct labels *key, int64_t *t, uint64_t *v)
{
	if (d->st == NULL)
		return false;
	for (size_t i = (size_t)key->hash & d->st_mask;; i = (i + 1) & d->st_mask) {
		struct dd_latest *e = &d->st[i];

		if (e->ls == NULL && e->t == 0)
			return false;
		if (e->ls != NULL && labels_equal(e->ls, key)) {
			*t = e->t;
			*v = e->v;
			labels_free(e->ls);
			e->ls = NULL;
			e->t = 1;	/* a tombstone: probing goes on past it */
			return true;
		}
	}
}

/* advance decides what it can for g (shard locked, committer). */
static void
advance(struct dedup *d, struct dd_shard *sh, struct dd_group *g, int64_t now)
{
	int64_t wake = INT64_MAX;

	if (g->fresh) {
		int64_t t;
		uint64_t v;

		g->fresh = false;
		if (startup_take(d, g->key, &t, &v)) {
			g->T = t;
			g->vT = v;
			g->ended = is_marker(v);
			g->resume = !g->ended;
		}
	}
	for (;;) {
		enum step_result r;

		drain(d, g);
		r = g->leader >= 0 ? step_leader(d, g, now, &wake) : step_elect(d, g, now, &wake);
		if (r == ST_WAIT || r == ST_IDLE)
			break;
	}
	rep_forget(d, g);
	g->wake = wake;
	if (has_queued(g))
		active_link(sh, g);
	else
		active_unlink(g);
}

/* --- the hook -------------------------------------------------------------- */

static struct dd_group *
group_find(struct dd_shard *sh, uint64_t h, const struct label *kv, size_t n)
{
	for (struct dd_group *g = sh->tab[bucket(sh, h)]; g != NULL; g = g->next)
		if (g->key->hash == h && key_equal(g->key, kv, n))
			return g;
	return NULL;
}

static struct dd_rep *
rep_find(struct dd_group *g, const char *value)
{
	for (size_t i = 0; i < g->nrep; i++)
		if (str_eq(g->rep[i].r->value, value))
			return &g->rep[i];
	return NULL;
}

/* rep_add adds a replica slot for r; NULL when the group is full. */
static struct dd_rep *
rep_add(struct dedup *d, struct dd_group *g, struct dd_value *r)
{
	struct dd_rep *q;

	if (g->nrep == DEDUP_MAX_REPLICAS) {
		rep_forget(d, g);
		if (g->nrep == DEDUP_MAX_REPLICAS)
			return NULL;
	}
	g->rep = mem_realloc(g->rep, (g->nrep + 1u) * sizeof(*g->rep));
	q = &g->rep[g->nrep++];
	memset(q, 0, sizeof(*q));
	q->r = r;
	q->last_t = q->prev_t = NONE;
	return q;
}

static int
label_find(const struct labels *ls, const char *name)
{
	size_t lo = 0, hi = ls->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(ls->v[mid].name, name);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

enum scrape_sample_verdict
dedup_hook(void *arg, const struct scrape_sample *s, struct labels **replace)
{
	struct dedup *d = arg;
	const struct labels *ls = s->ls;
	struct label stackv[STACK_LABELS], *kv = stackv;
	struct dd_shard *sh;
	struct dd_group *g;
	struct dd_rep *q;
	struct dd_value *r = NULL;
	const char *value;
	size_t n, j = 0;
	uint64_t h;
	int64_t now;
	int ri;

	(void)replace;
	ri = label_find(ls, d->label);
	if (ri < 0)
		return SCRAPE_SAMPLE_KEEP;
	value = ls->v[ri].value;
	n = ls->n - 1;
	if (n > STACK_LABELS)
		kv = mem_alloc(n * sizeof(*kv));
	for (size_t i = 0; i < ls->n; i++)
		if ((int)i != ri)
			kv[j++] = ls->v[i];
	h = labels_hash(kv, n);
	sh = &d->shards[h & (DEDUP_SHARDS - 1)];
	now = clock_now(d);

	pthread_mutex_lock(&sh->mu);
	g = group_find(sh, h, kv, n);
	if (g == NULL) {
		if (n == 0)
			goto keep;	/* nothing but the replica label */
		g = mem_calloc(1, sizeof(*g));
		g->key = labels_new(kv, n);
		g->T = NONE;
		g->leader = -1;
		g->born = now;
		g->wake = INT64_MAX;
		g->fresh = true;
		g->birth_wait = true;
		g->next = sh->tab[bucket(sh, h)];
		sh->tab[bucket(sh, h)] = g;
		if (++sh->n > (sh->mask + 1) * 2)
			shard_grow(sh);
		ADD(&d->st_.groups, 1);
	}
	q = rep_find(g, value);
	if (q == NULL) {
		r = value_get(d, value);
		if (r == NULL || (q = rep_add(d, g, r)) == NULL) {
			if (r == NULL && !__atomic_exchange_n(&d->warned_values, true,
			    __ATOMIC_RELAXED)) {
				log_kv(LOG_WARN, "dedup", "too many replica label values: "
				    "further ones are stored as they are", "label", d->label,
				    (char *)NULL);
			}
			if (r == NULL)
				goto keep;
			/* too many replicas in one group: not stored */
			ADD(&d->st_.samples_in, 1);
			ADD(&d->st_.samples_dropped, 1);
			pthread_mutex_unlock(&sh->mu);
			goto drop;
		}
	}
	r = q->r;
	g->last_arrival = now;
	ADD(&d->st_.samples_in, 1);
	if (q->last_t != NONE && s->t <= q->last_t) {
		/* the same samples again (a re-pull after a restart) */
		ADD(&d->st_.samples_dropped, 1);
	} else {
		uint64_t v = vbits(s->v);

		q->last_t = s->t;
		if (g->T != NONE && s->t <= g->T) {
			q->prev_t = s->t;
			q->prev_v = v;
			ADD(&d->st_.samples_dropped, 1);
		} else if (!q_push(q, s->t, v)) {
			ADD(&d->st_.samples_dropped, 1);
			ADD(&d->st_.overflows, 1);
		}
		if (!g->dirty) {
			g->dirty = true;
			g->dnext = sh->dirty;
			sh->dirty = g;
		}
	}
	pthread_mutex_unlock(&sh->mu);
	value_observe(r, now, s->t);
drop:
	if (kv != stackv)
		mem_free(kv);
	return SCRAPE_SAMPLE_DROP;
keep:
	pthread_mutex_unlock(&sh->mu);
	if (r == NULL)
		ADD(&d->st_.passthrough, 1);
	if (kv != stackv)
		mem_free(kv);
	return SCRAPE_SAMPLE_KEEP;
}

/* --- the committer --------------------------------------------------------- */

static void
startup_free(struct dedup *d)
{
	if (d->st == NULL)
		return;
	for (size_t i = 0; i <= d->st_mask; i++)
		labels_free(d->st[i].ls);
	MEM_FREE(d->st);
}

/* sweep forgets the groups that received nothing for forget_ms. */
static void
sweep(struct dedup *d, int64_t now)
{
	for (size_t k = 0; k < DEDUP_SHARDS; k++) {
		struct dd_shard *sh = &d->shards[k];

		pthread_mutex_lock(&sh->mu);
		for (size_t b = 0; b <= sh->mask; b++) {
			struct dd_group **pp = &sh->tab[b], *g;

			while ((g = *pp) != NULL) {
				if (!g->dirty && !g->active && now - g->last_arrival > d->forget_ms) {
					*pp = g->next;
					sh->n--;
					group_free(g);
					SUB(&d->st_.groups, 1);
					continue;
				}
				pp = &g->next;
			}
		}
		pthread_mutex_unlock(&sh->mu);
	}
}

size_t
dedup_run(struct dedup *d)
{
	int64_t now = clock_now(d);
	bool scan = d->manual || now >= d->next_scan;
	size_t appended = 0;

	d->nout = 0;
	for (size_t k = 0; k < DEDUP_SHARDS; k++) {
		struct dd_shard *sh = &d->shards[k];
		struct dd_group *g, *next;

		pthread_mutex_lock(&sh->mu);
		g = sh->dirty;
		sh->dirty = NULL;
		for (; g != NULL; g = next) {
			next = g->dnext;
			g->dnext = NULL;
			g->dirty = false;
			advance(d, sh, g, now);
		}
		if (scan) {
			for (g = sh->active.anext; g != &sh->active; g = next) {
				next = g->anext;
				if (g->wake <= now || g->fresh)
					advance(d, sh, g, now);
			}
		}
		pthread_mutex_unlock(&sh->mu);
	}
	if (scan)
		d->next_scan = now + SCAN_MS;

	/* Only the committer appends a group's samples, in the order decided. */
	for (size_t i = 0; i < d->nout; i++) {
		struct dd_out *o = &d->out[i];
		int rc = tsdb_appender_append(d->app, &o->g->ref, o->g->key, o->t, fval(o->v));

		if (rc == 0) {
			appended++;
		} else {
			ADD(&d->st_.append_errors, 1);
		}
	}
	if (d->nout > 0 && tsdb_appender_commit(d->app) != 0) {
		ADD(&d->st_.append_errors, appended);
		log_kv(LOG_ERROR, "dedup", "the store refused deduplicated samples",
		    (char *)NULL);
		appended = 0;
	}
	ADD(&d->st_.samples_appended, appended);
	d->nout = 0;

	if (now >= d->next_sweep) {
		if (d->next_sweep != 0)
			sweep(d, now);
		d->next_sweep = now + (d->manual ? 0 : SWEEP_MS);
	}
	if (d->st != NULL && now >= d->st_until)
		startup_free(d);
	return appended;
}

static void *
committer(void *arg)
{
	struct dedup *d = arg;

	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		struct timespec ts;

		pthread_mutex_unlock(&d->mu);
		dedup_run(d);
		pthread_mutex_lock(&d->mu);
		if (d->stopping)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += DEDUP_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* --- life cycle ------------------------------------------------------------ */

struct dedup *
dedup_new(const struct dedup_opts *o, char *err, size_t errlen)
{
	struct dedup *d;

	if (o->replica_label == NULL || o->replica_label[0] == '\0') {
		snprintf(err, errlen, "dedup: empty replica label name");
		return NULL;
	}
	d = mem_calloc(1, sizeof(*d));
	d->label = mem_strdup(o->replica_label);
	d->settle = o->settle_ms > 0 ? o->settle_ms : DEDUP_DEFAULT_SETTLE_MS;
	d->forget_ms = o->forget_ms > 0 ? o->forget_ms : DEDUP_DEFAULT_FORGET_MS;
	d->epoch_ms = o->epoch_ms > 0 ? o->epoch_ms : DEDUP_EPOCH_MS;
	d->now = o->now;
	d->now_arg = o->now_arg;
	d->manual = o->manual;
	for (size_t k = 0; k < DEDUP_SHARDS; k++) {
		struct dd_shard *sh = &d->shards[k];

		pthread_mutex_init(&sh->mu, NULL);
		sh->mask = 63;
		sh->tab = mem_calloc(sh->mask + 1, sizeof(*sh->tab));
		sh->active.anext = sh->active.aprev = &sh->active;
	}
	pthread_rwlock_init(&d->vmu, NULL);
	d->vtab = mem_calloc(VTAB_SIZE, sizeof(*d->vtab));
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	return d;
}

int
dedup_start(struct dedup *d, struct tsdb_head *head, char *err, size_t errlen)
{
	struct matcher *m;
	struct tsdb_latest *v = NULL;
	size_t n = 0, cap;

	d->head = head;
	d->app = tsdb_appender_new_unrestricted(head);
	m = matcher_new(MATCH_REGEX, LABEL_METRIC_NAME, ".+", err, errlen);
	if (m == NULL)
		return -1;
	tsdb_head_latest(head, &m, 1, INT64_MIN, &v, &n);
	matcher_free(m);
	for (cap = 16; cap < n * 2; cap *= 2)
		;
	d->st = mem_calloc(cap, sizeof(*d->st));
	d->st_mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = (size_t)v[i].ls->hash & d->st_mask; d->st[j].ls != NULL;
		    j = (j + 1) & d->st_mask)
			;
		d->st[j].ls = labels_ref(v[i].ls);
		d->st[j].t = v[i].t;
		d->st[j].v = vbits(v[i].v);
	}
	tsdb_latest_free(v, n);
	d->st_until = clock_now(d) + DEDUP_STARTUP_KEEP_MS;
	log_kv(LOG_INFO, "dedup", "storing replicated series once", "replica_label", d->label,
	    (char *)NULL);
	if (d->manual)
		return 0;
	if (pthread_create(&d->thr, NULL, committer, d) != 0) {
		snprintf(err, errlen, "dedup: cannot start the committer: %s", strerror(errno));
		return -1;
	}
	d->thr_started = true;
	return 0;
}

void
dedup_set_settle(struct dedup *d, int64_t ms)
{
	STORE(&d->settle, ms > 0 ? ms : DEDUP_DEFAULT_SETTLE_MS);
}

void
dedup_stop(struct dedup *d)
{
	if (!d->thr_started)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thr, NULL);
	d->thr_started = false;
}

void
dedup_free(struct dedup *d)
{
	if (d == NULL)
		return;
	dedup_stop(d);
	for (size_t k = 0; k < DEDUP_SHARDS; k++) {
		struct dd_shard *sh = &d->shards[k];

		for (size_t b = 0; b <= sh->mask; b++) {
			struct dd_group *g, *next;

			for (g = sh->tab[b]; g != NULL; g = next) {
				next = g->next;
				group_free(g);
			}
		}
		mem_free(sh->tab);
		pthread_mutex_destroy(&sh->mu);
	}
	for (size_t i = 0; i < VTAB_SIZE; i++) {
		struct dd_value *r = d->vtab[i];

		if (r == NULL)
			continue;
		intern_put(r->value);
		pthread_mutex_destroy(&r->mu);
		mem_free(r);
	}
	mem_free(d->vtab);
	pthread_rwlock_destroy(&d->vmu);
	tsdb_appender_free(d->app);
	startup_free(d);
	mem_free(d->out);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	mem_free(d->label);
	mem_free(d);
}

void
dedup_get_stats(struct dedup *d, struct dedup_stats *st)
{
	st->groups = LOAD(&d->st_.groups);
	st->samples_in = LOAD(&d->st_.samples_in);
	st->samples_appended = LOAD(&d->st_.samples_appended);
	st->samples_dropped = LOAD(&d->st_.samples_dropped);
	st->switches = LOAD(&d->st_.switches);
	st->overflows = LOAD(&d->st_.overflows);
	st->append_errors = LOAD(&d->st_.append_errors);
	st->passthrough = LOAD(&d->st_.passthrough);
}

/* --- /metrics -------------------------------------------------------------- */

#define DEDUP_METRICS(X) \
	X(groups, "strata_dedup_groups", "gauge", \
	    "Groups of series that differ only in the replica label, stored once each.") \
	X(samples_in, "strata_dedup_samples_received_total", "counter", \
	    "Samples of replicated series received from the federation jobs.") \
	X(samples_appended, "strata_dedup_samples_appended_total", "counter", \
	    "Samples stored for the groups (one replica's, without the replica label).") \
	X(samples_dropped, "strata_dedup_samples_dropped_total", "counter", \
	    "Samples of replicated series not stored: another replica's were, or they came again.") \
	X(switches, "strata_dedup_switches_total", "counter", \
	    "Times a group's elected replica changed.") \
	X(overflows, "strata_dedup_queue_overflows_total", "counter", \
	    "Samples dropped because a replica's queue of undecided samples was full.") \
	X(append_errors, "strata_dedup_append_errors_total", "counter", \
	    "Deduplicated samples the store refused.") \
	X(passthrough, "strata_dedup_passthrough_samples_total", "counter", \
	    "Samples stored with their replica label: too many distinct replica values.")

void
dedup_collect(void *arg, struct strbuf *out)
{
	struct dedup_stats st;

	dedup_get_stats(arg, &st);
#define X(field, name, type, help) \
	metrics_family(out, name, type, help); \
	metrics_sample(out, name, (double)st.field, (char *)NULL);
	DEDUP_METRICS(X)
#undef X
}
