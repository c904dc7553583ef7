/* lib/remote/write.c - the remote_write client: queues, shards, batching, retries.
 *
 * Objects and threads:
 * - struct remote_writer: the list of queues (rwlock: appends read it,
 *   apply swaps it) and the storage-wide counters. apply_mu serialises
 *   reloads.
 * - struct rw_queue: one remote_write entry. Its series cache maps an input
 *   label set to its output (external labels added, write relabeling
 *   applied; NULL when dropped), guarded by cache_mu. Its shard array is
 *   guarded by shards_lock (appends read it; resharding writes it). Its
 *   control thread recomputes the number of shards every shard_update
 *   interval, reshards and ages the series cache.
 * - struct rw_shard: a ring of queued samples (each holding a reference on
 *   its output labels) guarded by the shard's mutex, and the thread that
 *   takes batches off it and sends them with its own libcurl handle.
 *
 * Invariants: all queued samples of one series sit in one shard, in append
 * order; a shard thread sends at most one batch at a time, so a series'
 * samples leave in order. q->pending counts samples in rings and in flight.
 *
 * Stopping a queue: stop_at is set (retries and waits give up from then
 * on), the control thread is joined, then every shard drains its ring,
 * sending what it can before stop_at, and exits; what is left is dropped.
 */
#include "config.h"

#include "remote/write.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "expfmt/write.h"
#include "relabel/relabel.h"
#include "remote/client.h"
#include "remote/codec.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define EWMA_WEIGHT 0.2
#define SHARD_TOLERANCE 0.3
#define MAX_ERR_BODY 1024

static const double duration_bounds[REMOTE_DURATION_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300,
};

struct rw_item {
	struct labels *ls;	/* one reference */
	int64_t t;
	double v;
};

struct rw_queue;

struct rw_shard {
	struct rw_queue *q;
	pthread_mutex_t mu;
	pthread_cond_t cond;		/* samples arrived, stop, or stop_at moved */
	struct rw_item *ring;
	size_t cap, head, len;
	int64_t first_ns;		/* when the oldest unsent sample arrived */
	bool stop;			/* exit: after draining (drain) or after the batch in flight */
	bool drain;
	pthread_t thread;
	bool started;
	CURL *easy;
};

struct rw_series {
	struct rw_series *next;
	struct labels *in;		/* one reference */
	struct labels *out;		/* one reference; NULL: dropped by relabeling */
	int64_t used_ms;
};

struct ewma {
	double rate;
	bool init;
};

struct rw_queue {
	struct remote_writer *w;
	char *name;			/* remote_name label */
	char *fingerprint;		/* the settings; equal fingerprints keep the queue on reload */
	struct remote_client *client;
	struct relabel_rule **rules;
	size_t nrules;
	struct labels *ext;
	struct cfg_queue qc;
	int64_t max_pending;

	pthread_mutex_t cache_mu;
	struct rw_series **buckets;
	size_t nbuckets, nseries;
	struct labels_builder *lb;

	pthread_rwlock_t shards_lock;
	struct rw_shard **shards;
	size_t nshards;

	pthread_mutex_t ctl_mu;
	pthread_cond_t ctl_cond;
	bool closing;
	pthread_t ctl;
	bool ctl_started;
	atomic_int_fast64_t stop_at_ns;	/* 0: running; else give up at this monotonic time */

	/* figures */
	atomic_uint_fast64_t samples_sent, samples_failed, samples_retried, samples_dropped,
	    samples_overflow, samples_in, bytes_sent, batches_sent, batches_failed;
	atomic_int_fast64_t pending;
	atomic_int_fast64_t highest_sent_ms, highest_in_ms;
	atomic_int_fast64_t last_ok_ns;
	atomic_int_fast64_t last_log_ns;
	atomic_uint_fast64_t send_ns;	/* total time spent in sends */
	atomic_uint_fast64_t dur_buckets[REMOTE_DURATION_BUCKETS + 1];	/* last: +Inf */
	atomic_uint_fast64_t desired_bits;	/* double */

	/* control thread only */
	struct ewma r_in, r_out, r_dur;
	uint64_t last_in, last_out, last_dur;
};

struct remote_writer {
	char *user_agent;
	int64_t max_pending;
	int64_t flush_deadline_ms;
	int64_t shard_update_ms;
	int64_t series_ttl_ms;

	pthread_mutex_t apply_mu;
	pthread_rwlock_t lock;		/* guards q, nq */
	struct rw_queue **q;
	size_t nq;

	atomic_uint_fast64_t samples_in;
	atomic_int_fast64_t highest_ms;
};

/* --- helpers ---------------------------------------------------------------- */

static void
atomic_max(atomic_int_fast64_t *a, int64_t v)
{
	int_fast64_t cur = atomic_load(a);

	while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
		;
}

/* rwlock_init_writer makes a rwlock that lets a waiting writer in before
 * new readers (appends never starve a reshard or a reload). */
static void
rwlock_init_writer(pthread_rwlock_t *l)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(l, &a);
	pthread_rwlockattr_destroy(&a);
}

static void
cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

/* wait_until waits on c (mu held) until the monotonic time due_ns. */
static void
wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t due_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(due_ns / 1000000000),
		.tv_nsec = (long)(due_ns % 1000000000),
	};

	pthread_cond_timedwait(c, mu, &ts);
}

static bool
queue_given_up(struct rw_queue *q)
{
	int64_t at = atomic_load(&q->stop_at_ns);

	return at != 0 && time_mono_ns() >= at;
}

static double
ewma_update(struct ewma *e, double instant)
{
	if (e->init)
		e->rate += EWMA_WEIGHT * (instant - e->rate);
	else
		e->rate = instant;
	e->init = true;
	return e->rate;
}

static uint64_t
fnv64(const char *s, size_t n)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

/* --- shards ----------------------------------------------------------------- */

static struct rw_shard *
shard_new(struct rw_queue *q)
{
	struct rw_shard *s = mem_calloc(1, sizeof(*s));

	s->q = q;
	pthread_mutex_init(&s->mu, NULL);
	cond_init_mono(&s->cond);
	return s;
}

/* shard_push appends one item (mu held); the ring grows as needed (the
 * queue's pending bound limits it). */
static void
shard_push(struct rw_shard *s, struct labels *ls, int64_t t, double v)
{
	struct rw_item *it;

	if (s->len == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		struct rw_item *nr = mem_alloc(ncap * sizeof(*nr));

		for (size_t i = 0; i < s->len; i++)
			nr[i] = s->ring[(s->head + i) % s->cap];
		mem_free(s->ring);
		s->ring = nr;
		s->cap = ncap;
		s->head = 0;
	}
	it = &s->ring[(s->head + s->len) % s->cap];
	it->ls = ls;
	it->t = t;
	it->v = v;
	s->len++;
}

/* shard_drop releases what is left in a stopped shard's ring. */
static size_t
shard_drop(struct rw_shard *s)
{
	size_t n = s->len;

	for (size_t i = 0; i < s->len; i++)
		labels_free(s->ring[(s->head + i) % s->cap].ls);
	s->len = 0;
	return n;
}

static void
shard_free(struct rw_shard *s)
{
	if (s == NULL)
		return;
	shard_drop(s);
	mem_free(s->ring);
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	mem_free(s);
}

static bool
same_series(const struct labels *a, const struct labels *b)
{
	return a == b || (a->hash == b->hash && labels_equal(a, b));
}

/* item_cmp orders by series (hash, then labels), then timestamp. */
static int
item_cmp(const void *a, const void *b)
{
	const struct rw_item *x = a, *y = b;

	if (x->ls->hash != y->ls->hash)
		return x->ls->hash < y->ls->hash ? -1 : 1;
	if (x->ls != y->ls) {
		int c = labels_compare(x->ls, y->ls);

		if (c != 0)
			return c;
	}
	return (x->t > y->t) - (x->t < y->t);
}

/* encode_batch groups the batch by series (a series' samples keep their
 * order: they were queued in time order) into a WriteRequest body. */
static void
encode_batch(struct rw_item *b, size_t n, struct strbuf *body, int64_t *maxt)
{
	struct remote_series *rs = mem_alloc(n * sizeof(*rs));
	struct remote_sample *smp = mem_alloc(n * sizeof(*smp));
	size_t ns = 0;

	/* A series' samples were queued in time order; sorting by series
	 * then time keeps that order and makes each series one TimeSeries
	 * (two label sets that are equal count as one series). */
	qsort(b, n, sizeof(*b), item_cmp);
	*maxt = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		if (ns == 0 || !same_series(rs[ns - 1].ls, b[i].ls)) {
			rs[ns].ls = b[i].ls;
			rs[ns].s = &smp[i];
			rs[ns].n = 0;
			ns++;
		}
		smp[i].t = b[i].t;
		smp[i].v = b[i].v;
		rs[ns - 1].n++;
		if (b[i].t > *maxt)
			*maxt = b[i].t;
	}
	remote_encode_write(rs, ns, body);
	mem_free(rs);
	mem_free(smp);
}

static void
observe_duration(struct rw_queue *q, int64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;

	while (i < REMOTE_DURATION_BUCKETS && s > duration_bounds[i])
		i++;
	atomic_fetch_add(&q->dur_buckets[i], 1);
	atomic_fetch_add(&q->send_ns, (uint64_t)ns);
}

/* log_limited logs a send failure at most every 10 seconds per queue. */
static void
log_limited(struct rw_queue *q, const char *msg, const char *err)
{
	int64_t now = time_mono_ns();
	int_fast64_t last = atomic_load(&q->last_log_ns);

	if (last != 0 && now - last < INT64_C(10000000000))
		return;
	if (!atomic_compare_exchange_strong(&q->last_log_ns, &last, now))
		return;
	log_kv(LOG_WARN, "remote", msg, "remote_name", q->name,
	    "url", remote_client_url(q->client), "err", err, (char *)NULL);
}

/* shard_sleep waits ms on the shard (mu not held) unless the queue gives up
 * first. Returns false when it gave up. */
static bool
shard_sleep(struct rw_shard *s, int64_t ms)
{
	struct rw_queue *q = s->q;
	int64_t due = time_mono_ns() + ms * 1000000;
	bool ok = true;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		int64_t now = time_mono_ns(), at = atomic_load(&q->stop_at_ns), until = due;

		if (at != 0 && now >= at) {
			ok = false;
			break;
		}
		if (now >= due)
			break;
		if (at != 0 && at < until)
			until = at;
		wait_until(&s->cond, &s->mu, until);
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

/* send_batch sends n items, retrying recoverable failures, and accounts
 * for them. The items' references stay with the caller. */
static void
send_batch(struct rw_shard *s, struct rw_item *b, size_t n)
{
	struct rw_queue *q = s->q;
	struct strbuf body = STRBUF_INIT;
	struct remote_response r;
	int64_t backoff = q->qc.min_backoff_ms, maxt;
	char msg[MAX_ERR_BODY + 256];

	encode_batch(b, n, &body, &maxt);
	remote_response_init(&r);
	if (s->easy == NULL)
		s->easy = curl_easy_init();
	for (;;) {
		int64_t t0 = time_mono_ns(), sleep_ms;
		int rc;
		bool recoverable;

		if (s->easy == NULL) {
			rc = -1;
			snprintf(r.err, sizeof(r.err), "cannot create an HTTP client handle");
			r.status = 0;
		} else {
			rc = remote_client_post(q->client, s->easy, body.buf, body.len,
			    MAX_ERR_BODY, &r);
		}
		observe_duration(q, time_mono_ns() - t0);
		if (rc == 0 && r.status / 100 == 2) {
			atomic_fetch_add(&q->samples_sent, n);
			atomic_fetch_add(&q->bytes_sent, body.len);
			atomic_fetch_add(&q->batches_sent, 1);
			atomic_max(&q->highest_sent_ms, maxt);
			atomic_store(&q->last_ok_ns, time_mono_ns());
			break;
		}
		if (rc == 0) {
			size_t l = r.body.len;

			while (l > 0 && (r.body.buf[l - 1] == '\n' || r.body.buf[l - 1] == '\r'))
				l--;
			snprintf(msg, sizeof(msg), "server returned HTTP status %ld: %.*s",
			    r.status, (int)l, l > 0 ? r.body.buf : "");
		} else {
			snprintf(msg, sizeof(msg), "%s", r.err);
		}
		recoverable = rc < 0 || r.status / 100 == 5 ||
		    (r.status == 429 && q->qc.retry_on_http_429);
		if (!recoverable) {
			atomic_fetch_add(&q->samples_failed, n);
			atomic_fetch_add(&q->batches_failed, 1);
			log_kv(LOG_ERROR, "remote", "non-recoverable error sending samples; dropped",
			    "remote_name", q->name, "url", remote_client_url(q->client),
			    "err", msg, (char *)NULL);
			break;
		}
		atomic_fetch_add(&q->samples_retried, n);
		log_limited(q, "failed to send batch, retrying", msg);
		sleep_ms = r.retry_after_ms >= 0 ? r.retry_after_ms : backoff;
		if (!shard_sleep(s, sleep_ms)) {
			atomic_fetch_add(&q->samples_dropped, n);
			atomic_fetch_add(&q->batches_failed, 1);
			break;
		}
		backoff = backoff * 2 > q->qc.max_backoff_ms ? q->qc.max_backoff_ms : backoff * 2;
	}
	remote_response_free(&r);
	strbuf_free(&body);
}

static void *
shard_main(void *arg)
{
	struct rw_shard *s = arg;
	struct rw_queue *q = s->q;
	size_t max = (size_t)q->qc.max_samples_per_send;
	int64_t deadline_ns = q->qc.batch_send_deadline_ms * 1000000;
	struct rw_item *batch = mem_alloc(max * sizeof(*batch));

#ifdef HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), "remote-write");
#endif
	pthread_mutex_lock(&s->mu);
	for (;;) {
		size_t k;

		if (s->stop && (!s->drain || s->len == 0 || queue_given_up(q)))
			break;
		if (s->len == 0) {
			pthread_cond_wait(&s->cond, &s->mu);
			continue;
		}
		if (s->len < max && !s->stop) {
			int64_t due = s->first_ns + deadline_ns;

			if (time_mono_ns() < due) {
				wait_until(&s->cond, &s->mu, due);
				continue;
			}
		}
		k = s->len < max ? s->len : max;
		for (size_t i = 0; i < k; i++)
			batch[i] = s->ring[(s->head + i) % s->cap];
		s->head = (s->head + k) % s->cap;
		s->len -= k;
		s->first_ns = time_mono_ns();
		pthread_mutex_unlock(&s->mu);

		send_batch(s, batch, k);
		for (size_t i = 0; i < k; i++)
			labels_free(batch[i].ls);
		atomic_fetch_sub(&q->pending, (int64_t)k);

		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	mem_free(batch);
	return NULL;
}

static void
shard_start(struct rw_shard *s)
{
	if (pthread_create(&s->thread, NULL, shard_main, s) == 0)
		s->started = true;
	else
		log_kv(LOG_ERROR, "remote", "cannot start a remote write shard thread",
		    "remote_name", s->q->name, (char *)NULL);
}

/* shard_stop asks s to stop (draining first when drain) and joins it. */
static void
shard_stop(struct rw_shard *s, bool drain)
{
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	s->drain = drain;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->thread, NULL);
	s->started = false;
	s->stop = false;
}

/* --- resharding ------------------------------------------------------------- */

/* reshard replaces q's shards with n new ones. Every old shard finishes its
 * batch in flight; queued samples move over shard by shard in ring order,
 * so each series keeps its order. Control thread only. */
static void
reshard(struct rw_queue *q, size_t n)
{
	struct rw_shard **old = q->shards, **nw;
	size_t on = q->nshards;

	for (size_t i = 0; i < on; i++)
		shard_stop(old[i], false);
	nw = mem_calloc(n, sizeof(*nw));
	for (size_t i = 0; i < n; i++)
		nw[i] = shard_new(q);
	pthread_rwlock_wrlock(&q->shards_lock);
	for (size_t i = 0; i < on; i++) {
		struct rw_shard *s = old[i];

		for (size_t j = 0; j < s->len; j++) {
			struct rw_item *it = &s->ring[(s->head + j) % s->cap];
			struct rw_shard *d = nw[it->ls->hash % n];

			if (d->len == 0)
				d->first_ns = s->first_ns;
			shard_push(d, it->ls, it->t, it->v);
		}
		s->len = 0;	/* references moved */
	}
	q->shards = nw;
	q->nshards = n;
	pthread_rwlock_unlock(&q->shards_lock);
	for (size_t i = 0; i < n; i++)
		shard_start(nw[i]);
	for (size_t i = 0; i < on; i++)
		shard_free(old[i]);
	mem_free(old);
}

/* desired_shards recomputes the shard count from the rates of the last
 * interval (Prometheus' calculateDesiredShards): the time one sample takes
 * to send, times the ingestion rate plus 5% of the backlog per second. */
static size_t
desired_shards(struct rw_queue *q, double interval_s)
{
	uint64_t in = atomic_load(&q->samples_in), out = atomic_load(&q->samples_sent);
	uint64_t dur = atomic_load(&q->send_ns);
	double in_rate, out_rate, dur_rate, delay, desired, lower, upper;
	int64_t hi_in = atomic_load(&q->highest_in_ms), hi_sent = atomic_load(&q->highest_sent_ms);
	size_t cur = q->nshards, want;

	in_rate = ewma_update(&q->r_in, (double)(in - q->last_in) / interval_s);
	out_rate = ewma_update(&q->r_out, (double)(out - q->last_out) / interval_s);
	dur_rate = ewma_update(&q->r_dur, (double)(dur - q->last_dur) / 1e9 / interval_s);
	q->last_in = in;
	q->last_out = out;
	q->last_dur = dur;
	if (out_rate <= 0)
		return cur;
	delay = hi_in > INT64_MIN && hi_sent > INT64_MIN ? (double)(hi_in - hi_sent) / 1000.0 : 0;
	if (delay < 0)
		delay = 0;
	desired = dur_rate / out_rate * (in_rate + 0.05 * delay * in_rate);
	{
		uint64_t bits;

		memcpy(&bits, &desired, sizeof(bits));
		atomic_store(&q->desired_bits, bits);
	}
	lower = (double)cur * (1 - SHARD_TOLERANCE);
	upper = (double)cur * (1 + SHARD_TOLERANCE);
	desired = ceil(desired);
	if (lower <= desired && desired <= upper)
		return cur;
	want = desired < 1 ? 1 : (size_t)desired;
	if (want < cur && delay > 10)
		return cur;	/* behind: never scale down */
	if (want > (size_t)q->qc.max_shards)
		want = (size_t)q->qc.max_shards;
	if (want < (size_t)q->qc.min_shards)
		want = (size_t)q->qc.min_shards;
	return want;
}

static void cache_expire(struct rw_queue *q, int64_t before_ms);

static void *
queue_ctl(void *arg)
{
	struct rw_queue *q = arg;
	int64_t every = q->w->shard_update_ms * 1000000;

#ifdef HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), "remote-ctl");
#endif
	pthread_mutex_lock(&q->ctl_mu);
	for (;;) {
		int64_t due = time_mono_ns() + every;
		size_t want;
		int64_t last_ok;

		while (!q->closing && time_mono_ns() < due)
			wait_until(&q->ctl_cond, &q->ctl_mu, due);
		if (q->closing)
			break;
		pthread_mutex_unlock(&q->ctl_mu);

		cache_expire(q, time_now_ms() - q->w->series_ttl_ms);
		want = desired_shards(q, (double)q->w->shard_update_ms / 1000.0);
		last_ok = atomic_load(&q->last_ok_ns);
		/* reshard only while sends succeed (a dead endpoint is not slow) */
		if (want != q->nshards && last_ok != 0 && time_mono_ns() - last_ok < 2 * every) {
			log_msg(LOG_INFO, "remote", "remote_name=%s resharding from %zu to %zu shards",
			    q->name, q->nshards, want);
			reshard(q, want);
		}
		pthread_mutex_lock(&q->ctl_mu);
	}
	pthread_mutex_unlock(&q->ctl_mu);
	return NULL;
}

/* --- series cache ------------------------------------------------------------ */

/* queue_output returns the output labels of in (borrowed from the cache;
 * NULL when dropped). cache_mu held. */
static struct labels *
queue_output(struct rw_queue *q, const struct labels *in, int64_t now_ms)
{
	size_t b;
	struct rw_series *e;
	struct labels *out = NULL;

	if (q->nbuckets == 0) {
		q->nbuckets = 1024;
		q->buckets = mem_calloc(q->nbuckets, sizeof(*q->buckets));
	}
	b = in->hash & (q->nbuckets - 1);
	for (e = q->buckets[b]; e != NULL; e = e->next) {
		if (e->in == in || (e->in->hash == in->hash && labels_equal(e->in, in))) {
			e->used_ms = now_ms;
			return e->out;
		}
	}
	labels_builder_reset(q->lb, in);
	for (uint32_t i = 0; i < q->ext->n; i++)
		if (labels_builder_get(q->lb, q->ext->v[i].name) == NULL)
			labels_builder_set(q->lb, q->ext->v[i].name, q->ext->v[i].value);
	if (relabel_apply(q->rules, q->nrules, q->lb)) {
		out = labels_builder_labels(q->lb);
		if (out->n == 0) {
			labels_free(out);
			out = NULL;
		}
	}
	e = mem_alloc(sizeof(*e));
	e->in = labels_ref((struct labels *)in);
	e->out = out;
	e->used_ms = now_ms;
	e->next = q->buckets[b];
	q->buckets[b] = e;
	q->nseries++;
	if (q->nseries > q->nbuckets * 2) {
		size_t nb = q->nbuckets * 4;
		struct rw_series **nbk = mem_calloc(nb, sizeof(*nbk));

		for (size_t i = 0; i < q->nbuckets; i++) {
			while ((e = q->buckets[i]) != NULL) {
				q->buckets[i] = e->next;
				e->next = nbk[e->in->hash & (nb - 1)];
				nbk[e->in->hash & (nb - 1)] = e;
			}
		}
		mem_free(q->buckets);
		q->buckets = nbk;
		q->nbuckets = nb;
	}
	return out;
}

static void
cache_expire(struct rw_queue *q, int64_t before_ms)
{
	pthread_mutex_lock(&q->cache_mu);
	for (size_t i = 0; i < q->nbuckets; i++) {
		struct rw_series **pp = &q->buckets[i], *e;

		while ((e = *pp) != NULL) {
			if (e->used_ms < before_ms) {
				*pp = e->next;
				labels_free(e->in);
				labels_free(e->out);
				mem_free(e);
				q->nseries--;
			} else {
				pp = &e->next;
			}
		}
	}
	pthread_mutex_unlock(&q->cache_mu);
}

/* --- queues ------------------------------------------------------------------ */

static void
fp_str(struct strbuf *sb, const char *k, const char *v)
{
	strbuf_printf(sb, "%s=%zu:%s;", k, v != NULL ? strlen(v) : 0, v != NULL ? v : "");
}

/* fingerprint writes every setting that shapes what a queue sends. */
static void
fingerprint(const struct cfg_remote_write *rw, const struct labels *ext, struct strbuf *sb)
{
	const struct cfg_http *h = &rw->http;

	fp_str(sb, "url", rw->url);
	fp_str(sb, "name", rw->name);
	strbuf_printf(sb, "timeout=%" PRId64 ";", rw->remote_timeout_ms);
	for (size_t i = 0; i < rw->n_headers; i++) {
		fp_str(sb, "hk", rw->headers[i].key);
		fp_str(sb, "hv", rw->headers[i].value);
	}
	for (size_t i = 0; i < rw->write_relabel.n; i++) {
		const struct cfg_relabel_raw *r = &rw->write_relabel.raw[i];

		strbuf_printf(sb, "rule=%zu;", r->n_source_labels);
		for (size_t j = 0; j < r->n_source_labels; j++)
			fp_str(sb, "src", r->source_labels[j]);
		fp_str(sb, "sep", r->separator);
		fp_str(sb, "re", r->regex);
		fp_str(sb, "tl", r->target_label);
		fp_str(sb, "repl", r->replacement);
		fp_str(sb, "act", r->action);
		strbuf_printf(sb, "mod=%d/%" PRIu64 ";", r->has_modulus, r->modulus);
	}
	strbuf_printf(sb, "q=%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
	    ",%" PRId64 ",%" PRId64 ",%d;", rw->queue.capacity, rw->queue.max_shards,
	    rw->queue.min_shards, rw->queue.max_samples_per_send,
	    rw->queue.batch_send_deadline_ms, rw->queue.min_backoff_ms,
	    rw->queue.max_backoff_ms, rw->queue.retry_on_http_429);
	/* settings queue_new refuses: a queue is never kept past them */
	strbuf_printf(sb, "unsupported=%d,%d;", rw->sigv4 != NULL, h->oauth2 != NULL);
	strbuf_printf(sb, "auth=%d,%d;", h->has_basic_auth, h->has_authorization);
	fp_str(sb, "bu", h->basic_username);
	fp_str(sb, "bp", h->basic_password);
	fp_str(sb, "bpf", h->basic_password_file);
	fp_str(sb, "at", h->auth_type);
	fp_str(sb, "ac", h->auth_credentials);
	fp_str(sb, "acf", h->auth_credentials_file);
	fp_str(sb, "ca", h->tls.ca_file);
	fp_str(sb, "cert", h->tls.cert_file);
	fp_str(sb, "key", h->tls.key_file);
	fp_str(sb, "sn", h->tls.server_name);
	strbuf_printf(sb, "tls=%d,%u,%u;", h->tls.insecure_skip_verify, h->tls.min_version,
	    h->tls.max_version);
	fp_str(sb, "proxy", h->proxy_url);
	for (size_t i = 0; i < h->n_proxy_connect_header; i++) {
		fp_str(sb, "ph", h->proxy_connect_header[i].name);
		for (size_t j = 0; j < h->proxy_connect_header[i].n_values; j++)
			fp_str(sb, "pv", h->proxy_connect_header[i].values[j]);
	}
	strbuf_printf(sb, "redir=%d,h2=%d;", h->follow_redirects, h->enable_http2);
	for (uint32_t i = 0; i < ext->n; i++) {
		fp_str(sb, "ek", ext->v[i].name);
		fp_str(sb, "ev", ext->v[i].value);
	}
}

static void
queue_free(struct rw_queue *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->nshards; i++) {
		atomic_fetch_sub(&q->pending, (int64_t)q->shards[i]->len);
		shard_free(q->shards[i]);
	}
	mem_free(q->shards);
	for (size_t i = 0; i < q->nbuckets; i++) {
		struct rw_series *e, *next;

		for (e = q->buckets[i]; e != NULL; e = next) {
			next = e->next;
			labels_free(e->in);
			labels_free(e->out);
			mem_free(e);
		}
	}
	mem_free(q->buckets);
	labels_builder_free(q->lb);
	for (size_t i = 0; i < q->nrules; i++)
		relabel_rule_free(q->rules[i]);
	mem_free(q->rules);
	labels_free(q->ext);
	remote_client_free(q->client);
	pthread_rwlock_destroy(&q->shards_lock);
	pthread_mutex_destroy(&q->cache_mu);
	pthread_mutex_destroy(&q->ctl_mu);
	pthread_cond_destroy(&q->ctl_cond);
	mem_free(q->name);
	mem_free(q->fingerprint);
	mem_free(q);
}

/* queue_new builds a queue (not yet sending) for rw. Returns NULL with err. */
static struct rw_queue *
queue_new(struct remote_writer *w, const struct cfg_remote_write *rw, struct labels *ext,
    const char *fp, char *err, size_t errlen)
{
	struct rw_queue *q;
	char name[32];

	if (rw->sigv4 != NULL) {
		snprintf(err, errlen, "remote_write %s: sigv4 is not supported by strata", rw->url);
		return NULL;
	}
	q = mem_calloc(1, sizeof(*q));
	q->w = w;
	q->client = remote_client_new(REMOTE_KIND_WRITE, rw->url, rw->remote_timeout_ms,
	    rw->headers, rw->n_headers, &rw->http, w->user_agent, err, errlen);
	if (q->client == NULL) {
		mem_free(q);
		return NULL;
	}
	q->fingerprint = mem_strdup(fp);
	if (rw->name != NULL && rw->name[0] != '\0') {
		q->name = mem_strdup(rw->name);
	} else {
		snprintf(name, sizeof(name), "%06" PRIx64,
		    fnv64(fp, strlen(fp)) & UINT64_C(0xffffff));
		q->name = mem_strdup(name);
	}
	q->rules = mem_calloc(rw->write_relabel.n ? rw->write_relabel.n : 1, sizeof(*q->rules));
	for (size_t i = 0; i < rw->write_relabel.n; i++) {
		const struct cfg_relabel_raw *r = &rw->write_relabel.raw[i];
		struct relabel_spec spec = {
			.action = r->action,
			.source_labels = (const char *const *)r->source_labels,
			.n_source_labels = r->n_source_labels,
			.separator = r->separator,
			.regex = r->regex,
			.has_modulus = r->has_modulus,
			.modulus = r->modulus,
			.target_label = r->target_label,
			.replacement = r->replacement,
		};

		q->rules[i] = relabel_rule_new(&spec, err, errlen);
		if (q->rules[i] == NULL) {
			queue_free(q);
			return NULL;
		}
		q->nrules = i + 1;
	}
	q->ext = labels_ref(ext);
	q->qc = rw->queue;
	if (q->qc.max_samples_per_send <= 0)
		q->qc.max_samples_per_send = 500;
	if (q->qc.min_shards <= 0)
		q->qc.min_shards = 1;
	if (q->qc.max_shards < q->qc.min_shards)
		q->qc.max_shards = q->qc.min_shards;
	if (q->qc.capacity <= 0)
		q->qc.capacity = 2500;
	if (q->qc.min_backoff_ms <= 0)
		q->qc.min_backoff_ms = 30;
	if (q->qc.max_backoff_ms < q->qc.min_backoff_ms)
		q->qc.max_backoff_ms = q->qc.min_backoff_ms;
	if (q->qc.batch_send_deadline_ms <= 0)
		q->qc.batch_send_deadline_ms = 5000;
	q->max_pending = w->max_pending > 0 ? w->max_pending : q->qc.capacity * q->qc.max_shards;
	pthread_mutex_init(&q->cache_mu, NULL);
	q->lb = labels_builder_new();
	rwlock_init_writer(&q->shards_lock);
	q->nshards = (size_t)q->qc.min_shards;
	q->shards = mem_calloc(q->nshards, sizeof(*q->shards));
	for (size_t i = 0; i < q->nshards; i++)
		q->shards[i] = shard_new(q);
	pthread_mutex_init(&q->ctl_mu, NULL);
	cond_init_mono(&q->ctl_cond);
	atomic_init(&q->highest_sent_ms, INT64_MIN);
	atomic_init(&q->highest_in_ms, INT64_MIN);
	return q;
}

static void
queue_start(struct rw_queue *q)
{
	for (size_t i = 0; i < q->nshards; i++)
		shard_start(q->shards[i]);
	if (pthread_create(&q->ctl, NULL, queue_ctl, q) == 0)
		q->ctl_started = true;
}

/* queue_stop_begin tells q to stop: its shards send what is queued until
 * deadline_ms from now, then give up. Returns at once. */
static void
queue_stop_begin(struct rw_queue *q, int64_t deadline_ms)
{
	atomic_store(&q->stop_at_ns, time_mono_ns() + deadline_ms * 1000000);
	pthread_mutex_lock(&q->ctl_mu);
	q->closing = true;
	pthread_cond_broadcast(&q->ctl_cond);
	pthread_mutex_unlock(&q->ctl_mu);
	pthread_rwlock_rdlock(&q->shards_lock);
	for (size_t i = 0; i < q->nshards; i++) {
		pthread_mutex_lock(&q->shards[i]->mu);
		pthread_cond_broadcast(&q->shards[i]->cond);	/* sleepers see stop_at */
		pthread_mutex_unlock(&q->shards[i]->mu);
	}
	pthread_rwlock_unlock(&q->shards_lock);
}

/* queue_stop_end waits for q's threads: each shard drains its ring (what
 * is left at the deadline is dropped and counted). */
static void
queue_stop_end(struct rw_queue *q)
{
	size_t left = 0;

	if (q->ctl_started)
		pthread_join(q->ctl, NULL);
	q->ctl_started = false;
	for (size_t i = 0; i < q->nshards; i++) {
		struct rw_shard *s = q->shards[i];
		size_t n;

		if (!s->started)
			shard_start(s);	/* never ran (a queue replaced at once): send now */
		shard_stop(s, true);
		n = shard_drop(s);
		left += n;
		atomic_fetch_sub(&q->pending, (int64_t)n);
	}
	if (left > 0) {
		char nbuf[32];

		atomic_fetch_add(&q->samples_dropped, left);
		snprintf(nbuf, sizeof(nbuf), "%zu", left);
		log_kv(LOG_WARN, "remote", "failed to flush all samples on shutdown",
		    "remote_name", q->name, "url", remote_client_url(q->client),
		    "dropped", nbuf, (char *)NULL);
	}
}

/* queue_append queues n samples (ls borrowed); the caller holds w->lock. */
static void
queue_append(struct rw_queue *q, const struct remote_write_sample *s, size_t n)
{
	int64_t now_ms = time_now_ms(), maxt = INT64_MIN;
	size_t max = (size_t)q->qc.max_samples_per_send;
	uint64_t queued = 0, dropped = 0, overflow = 0;
	bool plain = q->nrules == 0 && q->ext->n == 0;

	pthread_rwlock_rdlock(&q->shards_lock);
	if (!plain)
		pthread_mutex_lock(&q->cache_mu);
	for (size_t i = 0; i < n; i++) {
		struct labels *out;
		struct rw_shard *sh;

		out = plain ? (struct labels *)s[i].ls : queue_output(q, s[i].ls, now_ms);
		if (out == NULL) {
			dropped++;
			continue;
		}
		if (atomic_fetch_add(&q->pending, 1) >= q->max_pending) {
			atomic_fetch_sub(&q->pending, 1);
			overflow++;
			continue;
		}
		sh = q->shards[out->hash % q->nshards];
		pthread_mutex_lock(&sh->mu);
		shard_push(sh, labels_ref(out), s[i].t, s[i].v);
		if (sh->len == 1)
			sh->first_ns = time_mono_ns();
		if (sh->len == 1 || sh->len == max)
			pthread_cond_signal(&sh->cond);
		pthread_mutex_unlock(&sh->mu);
		queued++;
		if (s[i].t > maxt)
			maxt = s[i].t;
	}
	if (!plain)
		pthread_mutex_unlock(&q->cache_mu);
	pthread_rwlock_unlock(&q->shards_lock);
	if (queued > 0) {
		atomic_fetch_add(&q->samples_in, queued);
		atomic_max(&q->highest_in_ms, maxt);
	}
	if (dropped + overflow > 0)
		atomic_fetch_add(&q->samples_dropped, dropped + overflow);
	if (overflow > 0)
		atomic_fetch_add(&q->samples_overflow, overflow);
}

/* --- the writer --------------------------------------------------------------- */

struct remote_writer *
remote_writer_new(const struct remote_write_opts *opts)
{
	struct remote_writer *w = mem_calloc(1, sizeof(*w));
	struct remote_write_opts o = { 0 };

	if (opts != NULL)
		o = *opts;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	w->user_agent = mem_strdup(o.user_agent != NULL ? o.user_agent : "strata/" PACKAGE_VERSION);
	w->max_pending = o.max_pending;
	w->flush_deadline_ms = o.flush_deadline_ms > 0 ? o.flush_deadline_ms : 60000;
	w->shard_update_ms = o.shard_update_ms > 0 ? o.shard_update_ms : 10000;
	w->series_ttl_ms = o.series_ttl_ms > 0 ? o.series_ttl_ms : 600000;
	pthread_mutex_init(&w->apply_mu, NULL);
	rwlock_init_writer(&w->lock);
	atomic_init(&w->highest_ms, INT64_MIN);
	return w;
}

void
remote_writer_free(struct remote_writer *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->nq; i++)
		queue_stop_begin(w->q[i], w->flush_deadline_ms);
	for (size_t i = 0; i < w->nq; i++) {
		queue_stop_end(w->q[i]);
		queue_free(w->q[i]);
	}
	mem_free(w->q);
	pthread_rwlock_destroy(&w->lock);
	pthread_mutex_destroy(&w->apply_mu);
	mem_free(w->user_agent);
	mem_free(w);
	curl_global_cleanup();
}

/* writer_apply builds the queues of cfg and, unless dry, installs them;
 * a dry run frees what it built and changes nothing. */
static int
writer_apply(struct remote_writer *w, const struct cfg *cfg, bool dry, char *err, size_t errlen)
{
	size_t n = cfg->n_remote_write;
	struct rw_queue **nq = mem_calloc(n ? n : 1, sizeof(*nq));
	bool *fresh = mem_calloc(n ? n : 1, sizeof(*fresh));
	struct rw_queue **old;
	size_t nold;
	struct strbuf fp = STRBUF_INIT;
	int rc = -1;

	pthread_mutex_lock(&w->apply_mu);
	for (size_t i = 0; i < n; i++) {
		const struct cfg_remote_write *rw = &cfg->remote_write[i];

		strbuf_reset(&fp);
		fingerprint(rw, cfg->external_labels, &fp);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(nq[j]->fingerprint, strbuf_cstr(&fp)) == 0) {
				snprintf(err, errlen, "duplicate remote write configs are not allowed, "
				    "found duplicate for URL: %s", rw->url);
				goto fail;
			}
			if (rw->name[0] != '\0' && strcmp(nq[j]->name, rw->name) == 0) {
				snprintf(err, errlen, "found multiple remote write configs with "
				    "job name \"%s\"", rw->name);
				goto fail;
			}
		}
		for (size_t j = 0; j < w->nq; j++) {
			if (w->q[j] != NULL && strcmp(w->q[j]->fingerprint, strbuf_cstr(&fp)) == 0) {
				nq[i] = w->q[j];	/* kept, with what it holds */
				break;
			}
		}
		if (nq[i] == NULL) {
			nq[i] = queue_new(w, rw, cfg->external_labels, strbuf_cstr(&fp), err, errlen);
			if (nq[i] == NULL)
				goto fail;
			fresh[i] = true;
		}
	}
	if (dry) {
		rc = 0;
		goto fail;	/* the same clean-up */
	}

	pthread_rwlock_wrlock(&w->lock);
	old = w->q;
	nold = w->nq;
	w->q = nq;
	w->nq = n;
	pthread_rwlock_unlock(&w->lock);
	nq = NULL;

	/* Stop what was replaced before the new queues send, so a series whose
	 * endpoint stayed the same keeps its order at the receiver. */
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t j = 0; j < nold; j++) {
			bool kept = false;

			for (size_t i = 0; i < n && !kept; i++)
				kept = w->q[i] == old[j];
			if (kept)
				continue;
			if (pass == 0) {
				queue_stop_begin(old[j], w->flush_deadline_ms);
			} else {
				queue_stop_end(old[j]);
				queue_free(old[j]);
			}
		}
	}
	mem_free(old);
	for (size_t i = 0; i < n; i++)
		if (fresh[i])
			queue_start(w->q[i]);
	rc = 0;
	goto out;
fail:
	for (size_t i = 0; i < n; i++)
		if (fresh[i])
			queue_free(nq[i]);
out:
	pthread_mutex_unlock(&w->apply_mu);
	mem_free(nq);
	mem_free(fresh);
	strbuf_free(&fp);
	return rc;
}

int
remote_writer_apply(struct remote_writer *w, const struct cfg *cfg, char *err, size_t errlen)
{
	return writer_apply(w, cfg, false, err, errlen);
}

int
remote_writer_check(struct remote_writer *w, const struct cfg *cfg, char *err, size_t errlen)
{
	return writer_apply(w, cfg, true, err, errlen);
}

void
remote_write_append_batch(struct remote_writer *w, const struct remote_write_sample *s, size_t n)
{
	int64_t maxt = INT64_MIN;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (s[i].t > maxt)
			maxt = s[i].t;
	atomic_fetch_add(&w->samples_in, n);
	atomic_max(&w->highest_ms, maxt);
	pthread_rwlock_rdlock(&w->lock);
	for (size_t i = 0; i < w->nq; i++)
		queue_append(w->q[i], s, n);
	pthread_rwlock_unlock(&w->lock);
}

void
remote_write_append(struct remote_writer *w, const struct labels *ls, int64_t t, double v)
{
	struct remote_write_sample s = { ls, t, v };

	remote_write_append_batch(w, &s, 1);
}

bool
remote_writer_flush(struct remote_writer *w, int64_t timeout_ms)
{
	int64_t due = time_mono_ns() + timeout_ms * 1000000;

	for (;;) {
		int64_t pending = 0;

		pthread_rwlock_rdlock(&w->lock);
		for (size_t i = 0; i < w->nq; i++)
			pending += atomic_load(&w->q[i]->pending);
		pthread_rwlock_unlock(&w->lock);
		if (pending == 0)
			return true;
		if (time_mono_ns() >= due)
			return false;
		{
			struct timespec ts = { 0, 5000000 };

			nanosleep(&ts, NULL);
		}
	}
}

/* --- figures ------------------------------------------------------------------- */

void
remote_writer_stats(struct remote_writer *w, struct remote_writer_stats *st)
{
	int64_t hi = atomic_load(&w->highest_ms);

	memset(st, 0, sizeof(*st));
	st->samples_in = atomic_load(&w->samples_in);
	st->highest_s = hi == INT64_MIN ? 0 : (double)hi / 1000.0;
	pthread_rwlock_rdlock(&w->lock);
	st->q = mem_calloc(w->nq ? w->nq : 1, sizeof(*st->q));
	st->n = w->nq;
	for (size_t i = 0; i < w->nq; i++) {
		struct rw_queue *q = w->q[i];
		struct remote_queue_stats *qs = &st->q[i];
		int64_t hs = atomic_load(&q->highest_sent_ms);
		uint64_t cum = 0, bits = atomic_load(&q->desired_bits);

		qs->remote_name = mem_strdup(q->name);
		qs->url = mem_strdup(remote_client_url(q->client));
		qs->samples_sent = atomic_load(&q->samples_sent);
		qs->samples_failed = atomic_load(&q->samples_failed);
		qs->samples_retried = atomic_load(&q->samples_retried);
		qs->samples_dropped = atomic_load(&q->samples_dropped);
		qs->samples_overflow = atomic_load(&q->samples_overflow);
		qs->samples_in = atomic_load(&q->samples_in);
		qs->bytes_sent = atomic_load(&q->bytes_sent);
		qs->batches_sent = atomic_load(&q->batches_sent);
		qs->batches_failed = atomic_load(&q->batches_failed);
		{
			int64_t p = atomic_load(&q->pending);

			qs->samples_pending = p > 0 ? (uint64_t)p : 0;
		}
		qs->highest_sent_s = hs == INT64_MIN ? 0 : (double)hs / 1000.0;
		pthread_rwlock_rdlock(&q->shards_lock);
		qs->shards = (int64_t)q->nshards;
		pthread_rwlock_unlock(&q->shards_lock);
		qs->shards_min = q->qc.min_shards;
		qs->shards_max = q->qc.max_shards;
		memcpy(&qs->shards_desired, &bits, sizeof(bits));
		qs->shard_capacity = q->qc.capacity;
		qs->max_samples_per_send = q->qc.max_samples_per_send;
		for (size_t b = 0; b < REMOTE_DURATION_BUCKETS; b++) {
			cum += atomic_load(&q->dur_buckets[b]);
			qs->duration_buckets[b] = cum;
		}
		qs->duration_count = cum + atomic_load(&q->dur_buckets[REMOTE_DURATION_BUCKETS]);
		qs->duration_sum = (double)atomic_load(&q->send_ns) / 1e9;
	}
	pthread_rwlock_unlock(&w->lock);
}

void
remote_writer_stats_free(struct remote_writer_stats *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->n; i++) {
		mem_free(st->q[i].remote_name);
		mem_free(st->q[i].url);
	}
	mem_free(st->q);
	memset(st, 0, sizeof(*st));
}

/* The per-queue families: name, type, help, and where the value is. */
enum { V_U64, V_I64, V_DBL };
#define RW_QUEUE_FAMILIES(X) \
	X("prometheus_remote_storage_samples_total", "counter", \
	    "Total number of samples sent to remote storage.", samples_sent, V_U64) \
	X("prometheus_remote_storage_samples_failed_total", "counter", \
	    "Total number of samples which failed on send to remote storage, non-recoverable errors.", \
	    samples_failed, V_U64) \
	X("prometheus_remote_storage_samples_retried_total", "counter", \
	    "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.", \
	    samples_retried, V_U64) \
	X("prometheus_remote_storage_samples_dropped_total", "counter", \
	    "Total number of samples which were dropped before being sent via remote write, either via relabelling or because the queue was full or shut down.", \
	    samples_dropped, V_U64) \
	X("strata_remote_storage_samples_overflow_total", "counter", \
	    "Total number of samples dropped because the queue already held its maximum of pending samples.", \
	    samples_overflow, V_U64) \
	X("prometheus_remote_storage_samples_pending", "gauge", \
	    "The number of samples pending in the queues shards to be sent to the remote storage.", \
	    samples_pending, V_U64) \
	X("prometheus_remote_storage_bytes_total", "counter", \
	    "The total number of bytes of data (not metadata) sent by the queue after compression.", \
	    bytes_sent, V_U64) \
	X("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", "gauge", \
	    "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.", \
	    highest_sent_s, V_DBL) \
	X("prometheus_remote_storage_shards", "gauge", \
	    "The number of shards used for parallel sending to the remote storage.", shards, V_I64) \
	X("prometheus_remote_storage_shards_min", "gauge", \
	    "The minimum number of shards that the queue is allowed to run.", shards_min, V_I64) \
	X("prometheus_remote_storage_shards_max", "gauge", \
	    "The maximum number of shards that the queue is allowed to run.", shards_max, V_I64) \
	X("prometheus_remote_storage_shards_desired", "gauge", \
	    "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.", \
	    shards_desired, V_DBL) \
	X("prometheus_remote_storage_shard_capacity", "gauge", \
	    "The capacity of each shard of the queue used for parallel sending to the remote storage.", \
	    shard_capacity, V_I64) \
	X("prometheus_remote_storage_max_samples_per_send", "gauge", \
	    "The maximum number of samples to be sent, in a single request, to the remote storage.", \
	    max_samples_per_send, V_I64)

#define RW_FAMILY_ENTRY(n, t, h, f, k) \
	{ n, t, h, offsetof(struct remote_queue_stats, f), k },
static const struct {
	const char *name, *type, *help;
	size_t off;
	int kind;
} queue_families[] = { RW_QUEUE_FAMILIES(RW_FAMILY_ENTRY) };

static void
family(struct strbuf *out, const char *name, const char *type, const char *help)
{
	expfmt_write_help(out, name, strlen(name), help, strlen(help));
	strbuf_printf(out, "# TYPE %s %s\n", name, type);
}

static void
queue_labels(struct strbuf *out, const struct remote_queue_stats *qs, const char *le)
{
	strbuf_puts(out, "{remote_name=\"");
	expfmt_write_label_value(out, qs->remote_name, strlen(qs->remote_name));
	strbuf_puts(out, "\",url=\"");
	expfmt_write_label_value(out, qs->url, strlen(qs->url));
	strbuf_putc(out, '"');
	if (le != NULL)
		strbuf_printf(out, ",le=\"%s\"", le);
	strbuf_puts(out, "} ");
}

void
remote_writer_collect(void *arg, struct strbuf *out)
{
	struct remote_writer *w = arg;
	struct remote_writer_stats st;
	const char *hname = "prometheus_remote_storage_sent_batch_duration_seconds";

	remote_writer_stats(w, &st);
	family(out, "prometheus_remote_storage_samples_in_total", "counter",
	    "Samples in to remote storage, compare to samples out for queue managers.");
	strbuf_puts(out, "prometheus_remote_storage_samples_in_total ");
	expfmt_write_float(out, (double)st.samples_in);
	strbuf_putc(out, '\n');
	family(out, "prometheus_remote_storage_highest_timestamp_in_seconds", "gauge",
	    "Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch.");
	strbuf_puts(out, "prometheus_remote_storage_highest_timestamp_in_seconds ");
	expfmt_write_float(out, st.highest_s);
	strbuf_putc(out, '\n');
	if (st.n > 0) {
		for (size_t f = 0; f < sizeof(queue_families) / sizeof(queue_families[0]); f++) {
			family(out, queue_families[f].name, queue_families[f].type,
			    queue_families[f].help);
			for (size_t i = 0; i < st.n; i++) {
				const char *p = (const char *)&st.q[i] + queue_families[f].off;
				double v;

				if (queue_families[f].kind == V_U64) {
					uint64_t u;

					memcpy(&u, p, sizeof(u));
					v = (double)u;
				} else if (queue_families[f].kind == V_I64) {
					int64_t x;

					memcpy(&x, p, sizeof(x));
					v = (double)x;
				} else {
					memcpy(&v, p, sizeof(v));
				}
				strbuf_puts(out, queue_families[f].name);
				queue_labels(out, &st.q[i], NULL);
				expfmt_write_float(out, v);
				strbuf_putc(out, '\n');
			}
		}
		family(out, hname, "histogram", "Duration of send calls to the remote storage.");
		for (size_t i = 0; i < st.n; i++) {
			const struct remote_queue_stats *qs = &st.q[i];

			for (size_t b = 0; b < REMOTE_DURATION_BUCKETS; b++) {
				char le[EXPFMT_FLOAT_MAX];

				expfmt_format_float(duration_bounds[b], le);
				strbuf_printf(out, "%s_bucket", hname);
				queue_labels(out, qs, le);
				strbuf_printf(out, "%" PRIu64 "\n", qs->duration_buckets[b]);
			}
			strbuf_printf(out, "%s_bucket", hname);
			queue_labels(out, qs, "+Inf");
			strbuf_printf(out, "%" PRIu64 "\n", qs->duration_count);
			strbuf_printf(out, "%s_sum", hname);
			queue_labels(out, qs, NULL);
			expfmt_write_float(out, qs->duration_sum);
			strbuf_putc(out, '\n');
			strbuf_printf(out, "%s_count", hname);
			queue_labels(out, qs, NULL);
			strbuf_printf(out, "%" PRIu64 "\n", qs->duration_count);
		}
	}
	remote_writer_stats_free(&st);
}
