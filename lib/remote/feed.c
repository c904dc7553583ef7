/* lib/remote/feed.c - the store's commits, queued and resolved for remote write.
 *
 * Objects and threads:
 * - the commit observer (feed_observe) runs on a committing thread with
 *   the store's commit lock held: under f->mu it appends the commit's
 *   series records (each with a labels reference) to f->recs and its
 *   samples to the ring f->ring, growing the ring up to f->max. What does
 *   not fit is dropped and counted; it never waits for the feed thread.
 * - the feed thread (feed_main) takes, under f->mu, every series record
 *   queued so far and up to f->batch samples, then without the lock
 *   resolves ids through its map (ids to labels, owned by this thread
 *   only) or the head, and calls the sink. Records are always taken no
 *   later than the samples queued after them, so a sample's series record,
 *   when there is one, is in the map before the sample is resolved.
 *
 * Counters: f->in counts samples queued, f->done samples taken off the
 * queue and dealt with (shipped or unresolved); remote_feed_flush waits
 * for done to reach in. The map is swept every sweep interval (ttl / 2,
 * at most a minute) by rebuilding it without the entries unused for ttl.
 */
#include "config.h"

#include "remote/feed.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expfmt/write.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define FEED_DEFAULT_MAX (1u << 20)
#define FEED_DEFAULT_BATCH 4096
#define FEED_MIN_RING 4096
#define FEED_DEFAULT_TTL_MS (10 * 60 * 1000)

struct feed_rec {
	uint32_t id;
	struct labels *ls;	/* one reference */
};

struct feed_entry {
	uint32_t id;		/* 0: empty */
	int64_t used_ms;
	struct labels *ls;	/* one reference */
};

struct remote_feed {
	struct tsdb_db *db;
	struct tsdb_head *head;
	remote_feed_sink_fn sink;
	void *sink_arg;
	size_t max, batch;
	int64_t ttl_ms;

	pthread_mutex_t mu;		/* everything down to the thread's own state */
	pthread_cond_t work;		/* the thread waits here for samples or stop */
	pthread_cond_t progress;	/* flush waits here for done */
	struct tsdb_log_sample *ring;
	size_t cap, head_i, len;
	struct feed_rec *recs;
	size_t nrecs, caprecs;
	bool waiting;			/* the thread sleeps on work */
	bool stop;
	uint64_t in, done, dropped, unresolved, out;
	size_t series;			/* map size, for the figures */
	pthread_t thread;
	bool active;			/* observer attached (set_active's caller) */
	pthread_mutex_t active_mu;

	/* feed thread only */
	struct feed_entry *map;
	size_t mapcap, mapn;
	struct tsdb_log_sample *take;	/* samples taken off the ring */
	struct feed_rec *trecs;
	size_t captrecs;
	struct remote_write_sample *outv;
	int64_t next_sweep_ns;
};

/* --- the observer (commit lock held) ----------------------------------------- */

/* ring_grow doubles the ring (f->mu held), keeping the queued order. */
static void
ring_grow(struct remote_feed *f)
{
	size_t cap = f->cap ? f->cap * 2 : FEED_MIN_RING, first;
	struct tsdb_log_sample *r;

	if (cap > f->max)
		cap = f->max;
	r = mem_alloc(cap * sizeof *r);
	first = f->cap - f->head_i < f->len ? f->cap - f->head_i : f->len;
	if (f->len > 0) {
		memcpy(r, f->ring + f->head_i, first * sizeof *r);
		memcpy(r + first, f->ring, (f->len - first) * sizeof *r);
	}
	mem_free(f->ring);
	f->ring = r;
	f->cap = cap;
	f->head_i = 0;
}

static void
feed_observe(void *arg, const struct tsdb_log_series *s, size_t ns,
    const struct tsdb_log_sample *v, size_t nv)
{
	struct remote_feed *f = arg;
	size_t i, room, n, tail, first;

	if (ns == 0 && nv == 0)
		return;
	pthread_mutex_lock(&f->mu);
	for (i = 0; i < ns; i++) {
		if (f->nrecs == f->caprecs) {
			f->caprecs = f->caprecs ? f->caprecs * 2 : 64;
			f->recs = mem_realloc(f->recs, f->caprecs * sizeof *f->recs);
		}
		f->recs[f->nrecs].id = s[i].id;
		f->recs[f->nrecs++].ls = labels_ref((struct labels *)s[i].ls);
	}
	while (f->len + nv > f->cap && f->cap < f->max)
		ring_grow(f);
	room = f->cap - f->len;
	n = nv < room ? nv : room;
	if (n > 0) {
		tail = (f->head_i + f->len) % f->cap;
		first = f->cap - tail < n ? f->cap - tail : n;
		memcpy(f->ring + tail, v, first * sizeof *v);
		memcpy(f->ring, v + first, (n - first) * sizeof *v);
		f->len += n;
		f->in += n;
	}
	f->dropped += nv - n;
	if (f->waiting)
		pthread_cond_signal(&f->work);
	pthread_mutex_unlock(&f->mu);
}

/* --- the id map (feed thread) ------------------------------------------------- */

static size_t
slot_of(uint32_t id, size_t cap)
{
	return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static struct feed_entry *
map_find(struct remote_feed *f, uint32_t id)
{
	size_t i;

	if (f->mapcap == 0)
		return NULL;
	for (i = slot_of(id, f->mapcap); f->map[i].id != 0; i = (i + 1) & (f->mapcap - 1))
		if (f->map[i].id == id)
			return &f->map[i];
	return NULL;
}

/* map_insert puts an entry known to be absent into a table with room. */
static void
map_insert(struct feed_entry *tab, size_t cap, const struct feed_entry *e)
{
	size_t i;

	for (i = slot_of(e->id, cap); tab[i].id != 0; i = (i + 1) & (cap - 1))
		;
	tab[i] = *e;
}

/* map_rebuild moves the entries used since keep_ms into a table at most
 * half full with room for `room` more; the others are released. */
static void
map_rebuild(struct remote_feed *f, int64_t keep_ms, size_t room)
{
	size_t i, n = 0, cap = 64;
	struct feed_entry *tab;

	for (i = 0; i < f->mapcap; i++)
		if (f->map[i].id != 0 && f->map[i].used_ms >= keep_ms)
			n++;
	while (cap < (n + room) * 2)
		cap *= 2;
	tab = mem_calloc(cap, sizeof *tab);
	for (i = 0; i < f->mapcap; i++) {
		if (f->map[i].id == 0)
			continue;
		if (f->map[i].used_ms >= keep_ms)
			map_insert(tab, cap, &f->map[i]);
		else
			labels_free(f->map[i].ls);
	}
	mem_free(f->map);
	f->map = tab;
	f->mapcap = cap;
	f->mapn = n;
}

/* map_put sets id's labels (takes over ls). */
static struct feed_entry *
map_put(struct remote_feed *f, uint32_t id, struct labels *ls, int64_t now_ms)
{
	struct feed_entry *e = map_find(f, id), ne;

	if (e != NULL) {
		labels_free(e->ls);
		e->ls = ls;
		e->used_ms = now_ms;
		return e;
	}
	if ((f->mapn + 1) * 2 > f->mapcap)
		map_rebuild(f, INT64_MIN, f->mapn + 1);	/* doubles */
	ne.id = id;
	ne.used_ms = now_ms;
	ne.ls = ls;
	map_insert(f->map, f->mapcap, &ne);
	f->mapn++;
	return map_find(f, id);
}

/* --- the feed thread ------------------------------------------------------------ */

/* process resolves n samples and hands them to the sink; returns how many
 * were unresolved. */
static size_t
process(struct remote_feed *f, const struct tsdb_log_sample *v, size_t n, int64_t now_ms)
{
	size_t i, k = 0, lost = 0;

	for (i = 0; i < n; i++) {
		struct feed_entry *e = map_find(f, v[i].id);

		if (e == NULL) {
			struct labels *ls = tsdb_head_series_labels(f->head, v[i].id);

			if (ls == NULL) {
				lost++;
				continue;
			}
			e = map_put(f, v[i].id, ls, now_ms);
		}
		e->used_ms = now_ms;
		f->outv[k].ls = e->ls;
		f->outv[k].t = v[i].t;
		memcpy(&f->outv[k].v, &v[i].v, sizeof f->outv[k].v);
		k++;
	}
	if (k > 0)
		f->sink(f->sink_arg, f->outv, k);
	return lost;
}

static int64_t
sweep_every_ns(const struct remote_feed *f)
{
	int64_t ms = f->ttl_ms / 2;

	if (ms > 60000)
		ms = 60000;
	if (ms < 10)
		ms = 10;
	return ms * 1000000;
}

static void *
feed_main(void *arg)
{
	struct remote_feed *f = arg;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		size_t nrecs, n, first, i, lost;
		int64_t now_ns = time_mono_ns(), now_ms;

		if (now_ns >= f->next_sweep_ns) {
			pthread_mutex_unlock(&f->mu);
			map_rebuild(f, time_now_ms() - f->ttl_ms, 1);
			pthread_mutex_lock(&f->mu);
			f->series = f->mapn;
			f->next_sweep_ns = now_ns + sweep_every_ns(f);
		}
		if (f->len == 0 && f->nrecs == 0) {
			struct timespec ts;

			if (f->stop)
				break;
			ts.tv_sec = (time_t)(f->next_sweep_ns / 1000000000);
			ts.tv_nsec = (long)(f->next_sweep_ns % 1000000000);
			f->waiting = true;
			pthread_cond_timedwait(&f->work, &f->mu, &ts);
			f->waiting = false;
			continue;
		}
		/* every record so far, then up to a batch of samples */
		nrecs = f->nrecs;
		if (nrecs > f->captrecs) {
			f->captrecs = nrecs;
			f->trecs = mem_realloc(f->trecs, nrecs * sizeof *f->trecs);
		}
		if (nrecs > 0)
			memcpy(f->trecs, f->recs, nrecs * sizeof *f->recs);
		f->nrecs = 0;
		n = f->len < f->batch ? f->len : f->batch;
		if (n > 0) {
			first = f->cap - f->head_i < n ? f->cap - f->head_i : n;
			memcpy(f->take, f->ring + f->head_i, first * sizeof *f->take);
			memcpy(f->take + first, f->ring, (n - first) * sizeof *f->take);
			f->head_i = (f->head_i + n) % f->cap;
			f->len -= n;
		}
		pthread_mutex_unlock(&f->mu);

		now_ms = time_now_ms();
		for (i = 0; i < nrecs; i++)
			map_put(f, f->trecs[i].id, f->trecs[i].ls, now_ms);
		lost = process(f, f->take, n, now_ms);

		pthread_mutex_lock(&f->mu);
		f->done += n;
		f->unresolved += lost;
		f->out += n - lost;
		f->series = f->mapn;
		pthread_cond_broadcast(&f->progress);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* --- the feed ------------------------------------------------------------------- */

struct remote_feed *
remote_feed_new(struct tsdb_db *db, remote_feed_sink_fn sink, void *arg,
    const struct remote_feed_opts *o)
{
	struct remote_feed *f = mem_calloc(1, sizeof *f);
	pthread_condattr_t ca;

	f->db = db;
	f->head = tsdb_db_head(db);
	f->sink = sink;
	f->sink_arg = arg;
	f->max = o != NULL && o->max_samples > 0 ? o->max_samples : FEED_DEFAULT_MAX;
	f->batch = o != NULL && o->batch > 0 ? o->batch : FEED_DEFAULT_BATCH;
	f->ttl_ms = o != NULL && o->series_ttl_ms > 0 ? o->series_ttl_ms : FEED_DEFAULT_TTL_MS;
	f->take = mem_alloc(f->batch * sizeof *f->take);
	f->outv = mem_alloc(f->batch * sizeof *f->outv);
	f->next_sweep_ns = time_mono_ns() + sweep_every_ns(f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->active_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&f->progress, NULL);
	if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
		/* like an allocation failure: nothing sensible to go on with */
		log_kv(LOG_ERROR, "remote", "cannot start the remote write feed thread", (char *)NULL);
		abort();
	}
	return f;
}

void
remote_feed_free(struct remote_feed *f)
{
	size_t i;

	if (f == NULL)
		return;
	remote_feed_set_active(f, false);
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_signal(&f->work);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	for (i = 0; i < f->mapcap; i++)
		if (f->map[i].id != 0)
			labels_free(f->map[i].ls);
	mem_free(f->map);
	mem_free(f->ring);
	mem_free(f->recs);
	mem_free(f->take);
	mem_free(f->trecs);
	mem_free(f->outv);
	pthread_cond_destroy(&f->work);
	pthread_cond_destroy(&f->progress);
	pthread_mutex_destroy(&f->mu);
	pthread_mutex_destroy(&f->active_mu);
	mem_free(f);
}

void
remote_feed_set_active(struct remote_feed *f, bool on)
{
	pthread_mutex_lock(&f->active_mu);
	if (on != f->active) {
		tsdb_db_set_observer(f->db, on ? feed_observe : NULL, f);
		f->active = on;
	}
	pthread_mutex_unlock(&f->active_mu);
}

bool
remote_feed_flush(struct remote_feed *f, int64_t timeout_ms)
{
	int64_t due = time_mono_ns() + timeout_ms * 1000000;
	uint64_t want;
	bool ok;

	pthread_mutex_lock(&f->mu);
	want = f->in;
	while (f->done < want) {
		int64_t left = due - time_mono_ns();
		struct timespec ts;

		if (left <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(left / 1000000000);
		ts.tv_nsec += (long)(left % 1000000000);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->progress, &f->mu, &ts);
	}
	ok = f->done >= want;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

void
remote_feed_stats(struct remote_feed *f, struct remote_feed_stats *st)
{
	pthread_mutex_lock(&f->mu);
	st->samples_in = f->in;
	st->samples_dropped = f->dropped;
	st->samples_unresolved = f->unresolved;
	st->samples_out = f->out;
	st->pending = f->len;
	st->capacity = f->max;
	st->series = f->series;
	pthread_mutex_unlock(&f->mu);
}

void
remote_feed_collect(void *arg, struct strbuf *out)
{
	struct remote_feed_stats st;

	remote_feed_stats(arg, &st);
#define FEED_FAMILY(field, name, type, help) \
	expfmt_write_help(out, name, strlen(name), help, strlen(help)); \
	strbuf_printf(out, "# TYPE %s %s\n%s %" PRIu64 "\n", name, type, name, st.field);
	REMOTE_FEED_METRICS(FEED_FAMILY)
#undef FEED_FAMILY
}

void
remote_writer_sink(void *arg, const struct remote_write_sample *s, size_t n)
{
	remote_write_append_batch(arg, s, n);
}
