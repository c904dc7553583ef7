/* lib/tsdb/head.c - the in-memory head: series, appenders, out-of-order
 * samples, replay, dumps for blocks and checkpoints, selects, GC.
 *
 * Owns every series (struct series): its label set (one reference), the
 * list of its closed chunks (immutable; in the head chunk files of
 * lib/tsdb/hchunks.h when the store attached them, read through mmap, else
 * in memory and shared with readers by reference count), the open chunk
 * (struct chunk_app, whose last sample is the newest sample uncompressed),
 * the samples written out of order (struct ooo, sorted by time, each tagged
 * with the generation it was committed in; few series have any, so they hang
 * off the series' stripe, not the series) and the bookkeeping that hides an
 * in-flight commit from readers.
 *
 * Maps and locks, always taken in this order:
 *   shard (rwlock, by labels hash): labels hash -> id, the label-set map;
 *   stripe (mutex, by id): id -> series, id -> out-of-order samples, and all
 *     of that series' state;
 *   postings (rwlock inside lib/tsdb/postings.c): label pair -> ids.
 * The commit mutex serialises commits (and tsdb_head_roll); it is taken
 * before any of the above. A series' logged bit (PL_LOGGED) is only set or
 * cleared under it, with the stripe lock held as for every change of the
 * word it shares with the staged count (replay, which runs alone, aside).
 *
 * Visibility: each commit gets a sequence number; h->seq is the last one
 * fully applied. A series remembers the commit that last touched it
 * (pend_seq) and how many in-order samples that commit added (pend_n). A
 * reader loads h->seq once and hides the pend_n newest samples of any series
 * whose pend_seq is newer, so it never sees part of a commit's in-order
 * samples (its newest visible sample is then decoded, pend_n back). Readers copy the
 * open chunk's bytes under the stripe lock, so they never see a
 * half-written chunk. Out-of-order samples are visible once applied.
 *
 * Chunks a commit closes are written to the chunk files once the commit is
 * applied (flush_sealed, one write for all of them, commit mutex held);
 * until then, or when the write fails, their list entry points at memory.
 *
 * Write path with a store attached: commit takes the commit mutex, logs the
 * series no commit logged yet and every staged sample (hooks.log), applies,
 * hands what it applied to the observer if one is attached (obs_fn, read and
 * written under the commit mutex), releases, then waits for durability if
 * the store asks (hooks.wait).
 *
 * Chunks are cut as Prometheus' head cuts them: never across a multiple of
 * chunk_range, aiming at 120 samples (end time predicted at 30 samples),
 * at most 240. The store cuts blocks at multiples of chunk_range, so a chunk
 * always falls in one block.
 */
#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/enc.h"
#include "tsdb/hchunks.h"
#include "tsdb/head.h"
#include "tsdb/iter.h"
#include "tsdb/postings.h"
#include "util/mem.h"

#define NSTRIPES 256		/* power of two */
#define STRIPE_SHIFT 8		/* log2(NSTRIPES) */
#define RUN_SHIFT 6		/* runs of 64 consecutive ids share a stripe */
#define NSHARDS 64
#define SHARD_SHIFT 58		/* 64 - log2(NSHARDS) */

/* A series' out-of-order samples: few series have any, so they hang off
 * the series' stripe (ooo_get), not the series. */
struct ooo {
	uint32_t id;		/* the series' */
	uint32_t n, cap;
	struct tsdb_ooo_sample s[];
};

/* A series: 96 bytes (a jemalloc size class), its open chunk included. */
struct series {
	struct labels *ls;
	uint8_t *cl;		/* closed chunks, oldest first (closed chunk lists) */
	uint64_t pend_seq;
	uint32_t id;
	uint32_t pl;		/* staged samples << 1 | logged (PL_PENDING) */
	uint32_t pend_n;	/* in-order samples added by commit pend_seq */
	uint32_t cut_in;	/* cut the open chunk at app.t + cut_in (next_at) */
	struct chunk_app app;
};

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct series) <= 96, "struct series outgrew its size class");
#endif

/* A series' pl packs two counts into one word that staging and commits
 * change with one add: the samples appenders staged for it (GC skips a
 * series with any; 2^31 of them would take 64 GiB of appenders) and, in
 * the low bit, whether its series record is in the log. */
#define PL_PENDING 2u
#define PL_LOGGED 1u

static uint32_t
series_pending(const struct series *s)
{
	return s->pl >> 1;
}

static bool
is_logged(const struct series *s)
{
	return (s->pl & PL_LOGGED) != 0;
}

/* An id table: open addressing by id_key(), at most half full; a slot is
 * NULL or points at an object (not owned) that carries its uint32_t id at
 * the byte offset the table is used with (SERIES_ID, OOO_ID). */
struct idtab {
	void **v;
	uint32_t cap, n;	/* cap: a power of two, or 0 */
};

#define SERIES_ID offsetof(struct series, id)
#define OOO_ID offsetof(struct ooo, id)

struct stripe {
	pthread_mutex_t mu;
	struct idtab series;	/* its series */
	struct idtab ooo;	/* the out-of-order samples of its series */
} __attribute__((aligned(64)));

/* A label-set map slot: the low 32 bits of the labels hash (what picks the
 * home slot, and a filter before the labels are compared) and the id. */
struct hentry {
	uint32_t hash;
	uint32_t id;		/* 0 = empty */
};

struct shard {
	pthread_rwlock_t mu;
	struct hentry *tab;
	uint32_t cap, n;
} __attribute__((aligned(64)));

struct tsdb_head {
	int64_t chunk_range;
	int64_t ooo_window;
	bool bounded;
	bool has_hooks;
	struct tsdb_head_hooks hk;
	tsdb_commit_observer_fn obs_fn;	/* commit mutex */
	void *obs_arg;
	struct stripe stripes[NSTRIPES];
	struct shard shards[NSHARDS];
	struct postings *post;
	pthread_mutex_t commit_mu;
	uint64_t seq;		/* atomic: last applied commit */
	uint32_t next_id;	/* atomic */
	uint32_t gen;		/* atomic: generation of new out-of-order samples */
	uint64_t unlogged;	/* atomic: series not logged yet */
	int64_t min_valid;	/* atomic */
	struct hchunks *hc;	/* closed chunks' files; NULL: kept in memory */
	struct sealed *sealed;	/* chunks closed by the commit being applied */
	size_t nsealed, capsealed;	/* (commit mutex, or replay) */
	struct hchunks_rec *recs;	/* scratch of flush_sealed */
	uint64_t *pos;
	/* statistics, atomic */
	uint64_t nseries, series_created, series_removed, samples, dups,
	    ooo, dupts, chunks, chunks_created, chunks_removed, ooo_live,
	    ooo_appended, oob, too_old, commits_failed;
	int64_t mint, maxt, mint_inorder;
};

/* A chunk closed in memory, waiting to be written to the head chunk files. */
struct sealed {
	uint32_t id;
	struct chunk *c;	/* a reference */
};

struct tsdb_appender {
	struct tsdb_head *h;
	struct tsdb_log_sample *v;	/* staged */
	struct series **sv;		/* the series of each staged sample
					 * (kept alive by its pending count) */
	size_t n, cap;
	uint64_t created;
	bool unrestricted;
	struct tsdb_log_series *ls;	/* scratch: series to log */
	size_t nls, capls;
};

/* classify results beside the tsdb_err codes */
enum {
	C_APPEND = 0,
	C_DUP = 1,
	C_OOO = 2,
};

#define ADD(p, x) __atomic_add_fetch((p), (x), __ATOMIC_RELAXED)
#define SUB(p, x) __atomic_sub_fetch((p), (x), __ATOMIC_RELAXED)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, x) __atomic_store_n((p), (x), __ATOMIC_RELAXED)

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
	case TSDB_ERR_OUT_OF_BOUNDS: return "out of bounds";
	case TSDB_ERR_IO: return "write to WAL failed";
	case TSDB_ERR_TOO_OLD: return "too old sample";
	}
	return "unknown error";
}

/* --- closed chunk lists ------------------------------------------------------
 *
 * A series lists its closed chunks, oldest first, in a string of varints
 * (about 9 bytes a chunk where a struct chunk pointer alone took 8 and the
 * chunk 24 more) after a varint of the entries' length (NULL when there is
 * no closed chunk): the first chunk's mint (zigzag); for each chunk the gap
 * from the previous maxt to its mint (minus one), its span (maxt - mint) and
 * its ref as a zigzag delta from the previous ref. A ref is a position in
 * the head chunk files shifted left by one, or the address of a struct
 * chunk in memory (one reference) with the low bit set: a chunk of a head
 * without files, one not flushed yet, or one whose write failed.
 */
struct cent {
	int64_t mint, maxt;
	uint64_t ref;
};

#define CL_STACK 32
#define CENT_MAX_BYTES 30	/* three varints */

/* A decoded list: v points at st or at the heap. */
struct clv {
	struct cent *v;
	uint32_t n;
	struct cent st[CL_STACK];
};

static bool
cref_is_mem(uint64_t ref)
{
	return (ref & 1) != 0;
}

static struct chunk *
cref_chunk(uint64_t ref)
{
	return (struct chunk *)(uintptr_t)(ref & ~(uint64_t)1);
}

static uint64_t
cref_mem(struct chunk *c)
{
	return (uint64_t)(uintptr_t)c | 1;
}

static uint64_t
cref_pos(uint64_t ref)
{
	return ref >> 1;
}

static uint64_t
cref_file(uint64_t pos)
{
	return pos << 1;
}

/* cref_drop releases what a list entry holds. */
static void
cref_drop(struct tsdb_head *h, uint64_t ref)
{
	if (cref_is_mem(ref))
		chunk_put(cref_chunk(ref));
	else if (h->hc != NULL)
		hchunks_release(h->hc, cref_pos(ref));
}

static size_t
put_uv(uint8_t *p, uint64_t x)
{
	size_t n = 0;

	while (x >= 0x80) {
		p[n++] = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	p[n++] = (uint8_t)x;
	return n;
}

/* get_uv reads a varint of a list (our own bytes, well-formed). */
static uint64_t
get_uv(const uint8_t **pp)
{
	const uint8_t *p = *pp;
	uint64_t x = 0;
	unsigned shift = 0;

	while (*p & 0x80) {
		x |= (uint64_t)(*p++ & 0x7f) << shift;
		shift += 7;
	}
	x |= (uint64_t)*p++ << shift;
	*pp = p;
	return x;
}

/* cent_put encodes e after prev (NULL for the first entry) into p. */
static size_t
cent_put(uint8_t *p, const struct cent *prev, const struct cent *e)
{
	size_t n;

	if (prev == NULL) {
		n = put_uv(p, enc_zigzag(e->mint));
		n += put_uv(p + n, (uint64_t)e->maxt - (uint64_t)e->mint);
		n += put_uv(p + n, e->ref);
	} else {
		n = put_uv(p, (uint64_t)e->mint - (uint64_t)prev->maxt - 1);
		n += put_uv(p + n, (uint64_t)e->maxt - (uint64_t)e->mint);
		n += put_uv(p + n, enc_zigzag((int64_t)(e->ref - prev->ref)));
	}
	return n;
}

/* cl_entries returns s's list entries and sets *len to their bytes (NULL
 * and 0 when s lists no chunk). */
static const uint8_t *
cl_entries(const struct series *s, size_t *len)
{
	const uint8_t *p = s->cl;

	if (p == NULL) {
		*len = 0;
		return NULL;
	}
	*len = (size_t)get_uv(&p);
	return p;
}

/* cl_count returns how many chunks s lists: three varints each. */
static uint32_t
cl_count(const struct series *s)
{
	size_t i, len;
	const uint8_t *p = cl_entries(s, &len);
	uint32_t ends = 0;

	for (i = 0; i < len; i++)
		ends += p[i] < 0x80;
	return ends / 3;
}

/* cl_load decodes s's list into c (release with cl_done). */
static void
cl_load(const struct series *s, struct clv *c)
{
	size_t len;
	const uint8_t *p = cl_entries(s, &len);
	uint32_t i;

	c->n = cl_count(s);
	c->v = c->n <= CL_STACK ? c->st : mem_alloc(c->n * sizeof *c->v);
	for (i = 0; i < c->n; i++) {
		struct cent *e = &c->v[i];

		if (i == 0) {
			e->mint = dec_unzigzag(get_uv(&p));
			e->maxt = (int64_t)((uint64_t)e->mint + get_uv(&p));
			e->ref = get_uv(&p);
		} else {
			e->mint = (int64_t)((uint64_t)c->v[i - 1].maxt + 1 + get_uv(&p));
			e->maxt = (int64_t)((uint64_t)e->mint + get_uv(&p));
			e->ref = c->v[i - 1].ref + (uint64_t)dec_unzigzag(get_uv(&p));
		}
	}
}

static void
cl_done(struct clv *c)
{
	if (c->v != c->st)
		mem_free(c->v);
	c->v = NULL;
}

/* cl_store replaces s's list with v[0..n). */
static void
cl_store(struct series *s, const struct cent *v, uint32_t n)
{
	uint8_t st[CL_STACK * CENT_MAX_BYTES], *b = st, pre[10];
	size_t len = 0, plen;
	uint32_t i;

	if (n == 0) {
		MEM_FREE(s->cl);
		return;
	}
	if (n > CL_STACK)
		b = mem_alloc((size_t)n * CENT_MAX_BYTES);
	for (i = 0; i < n; i++)
		len += cent_put(b + len, i > 0 ? &v[i - 1] : NULL, &v[i]);
	plen = put_uv(pre, len);
	s->cl = mem_realloc(s->cl, plen + len);
	memcpy(s->cl, pre, plen);
	memcpy(s->cl + plen, b, len);
	if (b != st)
		mem_free(b);
}

/* cl_append adds a chunk after the last one (mint > its maxt). */
static void
cl_append(struct series *s, int64_t mint, int64_t maxt, uint64_t ref)
{
	struct cent e = { mint, maxt, ref }, last;
	uint8_t b[CENT_MAX_BYTES], pre[10];
	size_t n, len, plen, oldplen;
	const uint8_t *p = cl_entries(s, &len);

	if (p == NULL) {
		n = cent_put(b, NULL, &e);
	} else {
		const uint8_t *end = p + len;
		uint32_t i;

		/* walk to the last entry */
		for (i = 0; p < end; i++) {
			if (i == 0) {
				last.mint = dec_unzigzag(get_uv(&p));
				last.maxt = (int64_t)((uint64_t)last.mint + get_uv(&p));
				last.ref = get_uv(&p);
			} else {
				last.mint = (int64_t)((uint64_t)last.maxt + 1 + get_uv(&p));
				last.maxt = (int64_t)((uint64_t)last.mint + get_uv(&p));
				last.ref += (uint64_t)dec_unzigzag(get_uv(&p));
			}
		}
		n = cent_put(b, &last, &e);
	}
	/* the length prefix may grow a byte: move the entries behind it */
	oldplen = s->cl != NULL ? put_uv(pre, len) : 0;
	plen = put_uv(pre, len + n);
	s->cl = mem_realloc(s->cl, plen + len + n);
	if (plen != oldplen)
		memmove(s->cl + plen, s->cl + oldplen, len);
	memcpy(s->cl, pre, plen);
	memcpy(s->cl + plen + len, b, n);
}

/* cl_first_mint returns the first closed chunk's mint (s->cl != NULL). */
static int64_t
cl_first_mint(const struct series *s)
{
	size_t len;
	const uint8_t *p = cl_entries(s, &len);

	return dec_unzigzag(get_uv(&p));
}

/* cl_swap replaces the entry whose ref is from by to; false when gone. */
static bool
cl_swap(struct series *s, uint64_t from, uint64_t to)
{
	struct clv cv;
	uint32_t i;
	bool found = false;

	cl_load(s, &cv);
	for (i = cv.n; i-- > 0;) {
		if (cv.v[i].ref == from) {
			cv.v[i].ref = to;
			found = true;
			break;
		}
	}
	if (found)
		cl_store(s, cv.v, cv.n);
	cl_done(&cv);
	return found;
}

/* cent_bytes returns the bytes of closed chunk e of series id (*enc, *len
 * set; *f a file reference to drop with hchunks_put, NULL for a chunk in
 * memory), or NULL when its file chunk is unreadable. */
static const uint8_t *
cent_bytes(struct tsdb_head *h, uint32_t id, const struct cent *e, uint8_t *enc, size_t *len,
    struct hchunks_file **f)
{
	const uint8_t *b;

	*f = NULL;
	if (cref_is_mem(e->ref)) {
		*enc = cref_chunk(e->ref)->enc;
		*len = cref_chunk(e->ref)->len;
		return cref_chunk(e->ref)->b;
	}
	if (h->hc == NULL || (*f = hchunks_ref(h->hc, cref_pos(e->ref))) == NULL)
		return NULL;
	b = hchunks_read(*f, cref_pos(e->ref), id, enc, len);
	if (b == NULL || (*enc != CHUNK_ENC_XOR && *enc != CHUNK_ENC_DENSE) || *len < 2) {
		hchunks_put(*f);
		*f = NULL;
		return NULL;
	}
	return b;
}

/* cent_samples returns how many samples closed chunk e holds (0 when
 * unreadable). */
static uint32_t
cent_samples(struct tsdb_head *h, uint32_t id, const struct cent *e)
{
	struct hchunks_file *f;
	size_t len;
	uint8_t enc;
	const uint8_t *b = cent_bytes(h, id, e, &enc, &len, &f);
	uint32_t n = b != NULL ? (uint32_t)(b[0] << 8 | b[1]) : 0;

	hchunks_put(f);
	return n;
}

/* seal closes s's open chunk into its list; with files attached, the
 * chunk waits in h->sealed for flush_sealed (commit mutex held, or
 * replay). */
static void
seal(struct tsdb_head *h, struct series *s)
{
	struct chunk *c = chunk_app_seal(&s->app);

	cl_append(s, c->mint, c->maxt, cref_mem(c));
	if (h->hc == NULL)
		return;
	if (h->nsealed == h->capsealed) {
		h->capsealed = h->capsealed ? h->capsealed * 2 : 64;
		h->sealed = mem_realloc(h->sealed, h->capsealed * sizeof *h->sealed);
		h->recs = mem_realloc(h->recs, h->capsealed * sizeof *h->recs);
		h->pos = mem_realloc(h->pos, h->capsealed * sizeof *h->pos);
	}
	h->sealed[h->nsealed].id = s->id;
	h->sealed[h->nsealed++].c = chunk_ref(c);
}

static struct stripe *stripe_of(struct tsdb_head *h, uint32_t id);
static struct series *stripe_find(const struct stripe *st, uint32_t id);

/* flush_sealed writes the chunks sealed since the last flush to the head
 * chunk files and points their series at them (commit mutex held, or
 * replay). Chunks whose write failed stay in memory. */
static void
flush_sealed(struct tsdb_head *h)
{
	size_t i, n = h->nsealed, done;

	if (n == 0)
		return;
	for (i = 0; i < n; i++) {
		h->recs[i].id = h->sealed[i].id;
		h->recs[i].enc = h->sealed[i].c->enc;
		h->recs[i].b = h->sealed[i].c->b;
		h->recs[i].len = h->sealed[i].c->len;
	}
	done = hchunks_write(h->hc, h->recs, n, h->pos);
	for (i = 0; i < done; i++) {
		struct stripe *st = stripe_of(h, h->sealed[i].id);
		struct series *s;
		bool swapped = false;

		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, h->sealed[i].id);
		if (s != NULL)
			swapped = cl_swap(s, cref_mem(h->sealed[i].c), cref_file(h->pos[i]));
		pthread_mutex_unlock(&st->mu);
		if (swapped)
			chunk_put(h->sealed[i].c);	/* the list's reference */
		else
			hchunks_release(h->hc, h->pos[i]);	/* truncated meanwhile */
	}
	for (i = 0; i < n; i++)
		chunk_put(h->sealed[i].c);
	h->nsealed = 0;
}

/* --- id map (per stripe) --------------------------------------------------- */

/* A stripe holds runs of consecutive ids: a scrape's series were mostly
 * created together, so a commit walking its samples in order keeps one
 * stripe lock for many of them. stripe_no is id's stripe's number. */
static inline uint32_t
stripe_no(uint32_t id)
{
	return (id >> RUN_SHIFT) & (NSTRIPES - 1);
}

static struct stripe *
stripe_of(struct tsdb_head *h, uint32_t id)
{
	return &h->stripes[stripe_no(id)];
}

/* id_key is what distinguishes id within its stripe. */
static uint32_t
id_key(uint32_t id)
{
	return ((id >> (RUN_SHIFT + STRIPE_SHIFT)) << RUN_SHIFT) | (id & ((1u << RUN_SHIFT) - 1));
}

static uint32_t
idtab_id(const void *obj, size_t off)
{
	uint32_t id;

	memcpy(&id, (const char *)obj + off, sizeof id);
	return id;
}

static uint32_t
idtab_home(const struct idtab *t, uint32_t id)
{
	return id_key(id) & (t->cap - 1);
}

/* idtab_slot returns the slot of the object with id, or UINT32_MAX. */
static uint32_t
idtab_slot(const struct idtab *t, uint32_t id, size_t off)
{
	uint32_t i, mask = t->cap - 1;

	if (t->n == 0)
		return UINT32_MAX;
	for (i = idtab_home(t, id); t->v[i] != NULL; i = (i + 1) & mask)
		if (idtab_id(t->v[i], off) == id)
			return i;
	return UINT32_MAX;
}

static void
idtab_place(struct idtab *t, void *obj, size_t off)
{
	uint32_t i, mask = t->cap - 1;

	for (i = idtab_home(t, idtab_id(obj, off)); t->v[i] != NULL; i = (i + 1) & mask)
		;
	t->v[i] = obj;
}

/* idtab_put adds obj, whose id t does not hold yet; an empty table starts
 * with mincap slots. */
static void
idtab_put(struct idtab *t, void *obj, size_t off, uint32_t mincap)
{
	if ((t->n + 1) * 2 > t->cap) {
		void **old = t->v;
		uint32_t oldcap = t->cap, j;

		t->cap = t->cap ? t->cap * 2 : mincap;
		t->v = mem_calloc(t->cap, sizeof *t->v);
		for (j = 0; j < oldcap; j++)
			if (old[j] != NULL)
				idtab_place(t, old[j], off);
		mem_free(old);
	}
	idtab_place(t, obj, off);
	t->n++;
}

/* in_between tells whether home h is cyclically in (i, j]: an entry at j
 * with home h must stay when the hole at i is not on its probe path. */
static bool
in_between(uint32_t i, uint32_t j, uint32_t h)
{
	return i <= j ? (i < h && h <= j) : (i < h || h <= j);
}

/* idtab_remove empties slot i, moving back the entries after it whose
 * probe path crosses it. */
static void
idtab_remove(struct idtab *t, uint32_t i, size_t off)
{
	uint32_t j, mask = t->cap - 1;

	for (j = (i + 1) & mask; t->v[j] != NULL; j = (j + 1) & mask) {
		if (in_between(i, j, idtab_home(t, idtab_id(t->v[j], off))))
			continue;
		t->v[i] = t->v[j];
		i = j;
	}
	t->v[i] = NULL;
	t->n--;
}

/* stripe_find returns the series with id, or NULL; stripe lock held. */
static struct series *
stripe_find(const struct stripe *st, uint32_t id)
{
	uint32_t i = idtab_slot(&st->series, id, SERIES_ID);

	return i != UINT32_MAX ? st->series.v[i] : NULL;
}

static void
stripe_put(struct stripe *st, struct series *s)
{
	idtab_put(&st->series, s, SERIES_ID, 16);
}

static void
stripe_del(struct stripe *st, uint32_t id)
{
	uint32_t i = idtab_slot(&st->series, id, SERIES_ID);

	if (i != UINT32_MAX)
		idtab_remove(&st->series, i, SERIES_ID);
}

/* --- out-of-order samples (per stripe) ---------------------------------------- */

/* ooo_get returns the out-of-order samples of the series with id, or NULL
 * (stripe lock held). */
static struct ooo *
ooo_get(const struct stripe *st, uint32_t id)
{
	uint32_t i = idtab_slot(&st->ooo, id, OOO_ID);

	return i != UINT32_MAX ? st->ooo.v[i] : NULL;
}

/* ooo_del frees the out-of-order samples of the series with id, if any
 * (stripe lock held). */
static void
ooo_del(struct stripe *st, uint32_t id)
{
	uint32_t i = idtab_slot(&st->ooo, id, OOO_ID);

	if (i == UINT32_MAX)
		return;
	mem_free(st->ooo.v[i]);
	idtab_remove(&st->ooo, i, OOO_ID);
	if (st->ooo.n == 0) {
		MEM_FREE(st->ooo.v);
		st->ooo.cap = 0;
	}
}

/* series_ooo returns s's out-of-order samples, or NULL (stripe lock held). */
static struct ooo *
series_ooo(struct tsdb_head *h, const struct series *s)
{
	return ooo_get(stripe_of(h, s->id), s->id);
}

/* --- label-set map (per shard) -------------------------------------------- */

static struct shard *
shard_of(struct tsdb_head *h, uint64_t hash)
{
	return &h->shards[hash >> SHARD_SHIFT];
}

static uint32_t
hash_home(const struct shard *sh, uint32_t hash)
{
	return hash & (sh->cap - 1);
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
	for (i = hash_home(sh, (uint32_t)hash); sh->tab[i].id; i = (i + 1) & mask)
		;
	sh->tab[i].hash = (uint32_t)hash;
	sh->tab[i].id = id;
	sh->n++;
}

static void
shard_del(struct shard *sh, uint64_t hash, uint32_t id)
{
	uint32_t i, j, mask = sh->cap - 1;

	if (sh->cap == 0)
		return;
	for (i = hash_home(sh, (uint32_t)hash); sh->tab[i].id; i = (i + 1) & mask)
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

	if (opts != NULL && (opts->chunk_range < 0 || opts->ooo_window < 0)) {
		snprintf(err, errlen, "tsdb: negative %s %lld",
		    opts->chunk_range < 0 ? "chunk range" : "out-of-order window",
		    (long long)(opts->chunk_range < 0 ? opts->chunk_range : opts->ooo_window));
		return NULL;
	}
	h = mem_calloc(1, sizeof *h);
	h->chunk_range = opts && opts->chunk_range ? opts->chunk_range : TSDB_DEFAULT_CHUNK_RANGE;
	h->ooo_window = opts ? opts->ooo_window : 0;
	h->bounded = opts ? opts->bounded : false;
	for (i = 0; i < NSTRIPES; i++)
		pthread_mutex_init(&h->stripes[i].mu, NULL);
	for (i = 0; i < NSHARDS; i++)
		pthread_rwlock_init(&h->shards[i].mu, NULL);
	pthread_mutex_init(&h->commit_mu, NULL);
	h->post = postings_new();
	h->next_id = 1;
	h->mint = h->mint_inorder = INT64_MAX;
	h->maxt = INT64_MIN;
	h->min_valid = INT64_MIN;
	return h;
}

static void
series_free(struct tsdb_head *h, struct series *s)
{
	struct clv cv;
	uint32_t i;

	cl_load(s, &cv);
	for (i = 0; i < cv.n; i++)
		cref_drop(h, cv.v[i].ref);
	cl_done(&cv);
	mem_free(s->cl);
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

		for (j = 0; j < st->series.cap; j++)
			if (st->series.v[j] != NULL)
				series_free(h, st->series.v[j]);
		for (j = 0; j < st->ooo.cap; j++)
			mem_free(st->ooo.v[j]);
		mem_free(st->series.v);
		mem_free(st->ooo.v);
		pthread_mutex_destroy(&st->mu);
	}
	for (i = 0; i < NSHARDS; i++) {
		mem_free(h->shards[i].tab);
		pthread_rwlock_destroy(&h->shards[i].mu);
	}
	for (i = 0; i < h->nsealed; i++)
		chunk_put(h->sealed[i].c);
	mem_free(h->sealed);
	mem_free(h->recs);
	mem_free(h->pos);
	postings_free(h->post);
	pthread_mutex_destroy(&h->commit_mu);
	mem_free(h);
}

void
tsdb_head_set_hooks(struct tsdb_head *h, const struct tsdb_head_hooks *hk)
{
	if (hk != NULL) {
		h->hk = *hk;
		h->has_hooks = hk->log != NULL;
	} else {
		memset(&h->hk, 0, sizeof h->hk);
		h->has_hooks = false;
	}
}

void
tsdb_head_set_chunk_store(struct tsdb_head *h, struct hchunks *hc)
{
	h->hc = hc;
}

void
tsdb_head_set_observer(struct tsdb_head *h, tsdb_commit_observer_fn fn, void *arg)
{
	pthread_mutex_lock(&h->commit_mu);
	h->obs_fn = fn;
	h->obs_arg = fn != NULL ? arg : NULL;
	pthread_mutex_unlock(&h->commit_mu);
}

struct labels *
tsdb_head_series_labels(struct tsdb_head *h, uint64_t ref)
{
	struct stripe *st;
	struct series *s;
	struct labels *ls = NULL;

	if (ref == 0 || ref >= UINT32_MAX)
		return NULL;
	st = stripe_of(h, (uint32_t)ref);
	pthread_mutex_lock(&st->mu);
	if ((s = stripe_find(st, (uint32_t)ref)) != NULL)
		ls = labels_ref(s->ls);
	pthread_mutex_unlock(&st->mu);
	return ls;
}

uint32_t
tsdb_head_next_id(struct tsdb_head *h)
{
	return LOAD(&h->next_id);
}

uint64_t
tsdb_head_seq(struct tsdb_head *h)
{
	return __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
}

struct postings *
tsdb_head_postings(struct tsdb_head *h)
{
	return h->post;
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
		for (i = hash_home(sh, (uint32_t)ls->hash); sh->tab[i].id; i = (i + 1) & mask) {
			struct stripe *st;
			struct series *s;

			if (sh->tab[i].hash != (uint32_t)ls->hash)
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

uint64_t
tsdb_head_lookup(struct tsdb_head *h, const struct labels *ls)
{
	struct series *s = lookup_locked(h, ls);
	uint32_t id;

	if (s == NULL)
		return 0;
	id = s->id;
	pthread_mutex_unlock(&stripe_of(h, id)->mu);
	return id;
}

/* insert_series makes a new series with id for ls (shard write lock held)
 * and returns it with its stripe lock held. */
static struct series *
insert_series(struct tsdb_head *h, struct shard *sh, struct labels *ls, uint32_t id,
    bool replay)
{
	struct stripe *st = stripe_of(h, id);
	struct series *s = mem_calloc(1, sizeof *s);

	s->ls = labels_ref(ls);
	s->id = id;
	chunk_app_init_enc(&s->app, CHUNK_ENC_DENSE);
	pthread_mutex_lock(&st->mu);
	stripe_put(st, s);
	shard_put(sh, ls->hash, id);
	if (replay)
		postings_add_unsorted(h->post, id, s->ls);
	else
		postings_add(h->post, id, s->ls);
	ADD(&h->nseries, 1);
	ADD(&h->series_created, 1);
	return s;
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
		for (i = hash_home(sh, (uint32_t)ls->hash); sh->tab[i].id; i = (i + 1) & mask) {
			if (sh->tab[i].hash != (uint32_t)ls->hash)
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
		STORE(&h->next_id, UINT32_MAX);
		pthread_rwlock_unlock(&sh->mu);
		return NULL;
	}
	s = insert_series(h, sh, ls, id, false);
	pthread_rwlock_unlock(&sh->mu);
	ADD(&h->unlogged, 1);
	*created = true;
	return s;
}

/* --- appendability ------------------------------------------------------------ */

static int64_t
min_valid_for(struct tsdb_head *h, bool replay)
{
	int64_t mv = LOAD(&h->min_valid), maxt;

	if (h->bounded && !replay && (maxt = LOAD(&h->maxt)) != INT64_MIN) {
		int64_t cw = maxt - h->chunk_range / 2;

		if (cw > mv)
			mv = cw;
	}
	return mv;
}

/* ooo_find returns the index of the first out-of-order sample at or after t. */
static uint32_t
ooo_find(const struct ooo *o, int64_t t)
{
	uint32_t lo = 0, hi = o->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (o->s[mid].t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* inorder_find looks for a sample at t in s's in-order chunks. */
static bool
inorder_find(struct tsdb_head *h, const struct series *s, int64_t t, uint64_t *bits)
{
	struct chunk_iter ci;
	struct clv cv;
	uint32_t i;
	bool found = false, done = false;

	cl_load(s, &cv);
	for (i = 0; i < cv.n && !done; i++) {
		struct hchunks_file *f;
		const uint8_t *b;
		uint8_t enc;
		size_t len;

		if (t < cv.v[i].mint || t > cv.v[i].maxt)
			continue;
		done = true;
		if ((b = cent_bytes(h, s->id, &cv.v[i], &enc, &len, &f)) == NULL)
			break;
		chunk_iter_init_enc(&ci, enc, b, len, CHUNK_MAX_SAMPLES);
		if (chunk_iter_seek(&ci, t) && ci.t == t) {
			*bits = ci.v;
			found = true;
		}
		hchunks_put(f);
	}
	cl_done(&cv);
	if (done)
		return found;
	if (s->app.n > 0 && t >= chunk_app_mint(&s->app) && t <= s->app.t) {
		chunk_iter_init_enc(&ci, s->app.enc, s->app.b, s->app.len, s->app.n);
		if (chunk_iter_seek(&ci, t) && ci.t == t) {
			*bits = ci.v;
			return true;
		}
	}
	return false;
}

/* ooo_check classifies a sample that cannot go in order. */
static __attribute__((noinline)) int
ooo_check(struct tsdb_head *h, const struct series *s, int64_t t, uint64_t vbits)
{
	uint64_t bits;
	const struct ooo *o = series_ooo(h, s);

	if (o != NULL) {
		uint32_t i = ooo_find(o, t);

		if (i < o->n && o->s[i].t == t)
			return o->s[i].v == vbits ? C_DUP : TSDB_ERR_DUPLICATE;
	}
	if (inorder_find(h, s, t, &bits))
		return bits == vbits ? C_DUP : TSDB_ERR_DUPLICATE;
	return C_OOO;
}

/* classify applies Prometheus' appendable rules (stripe lock held); mv is
 * min_valid_for(h, replay), which callers take once for many samples (a
 * commit: it cannot change under the commit mutex; a batch staged: as if
 * staged when it was taken). Returns C_APPEND, C_DUP, C_OOO or a tsdb_err. */
static inline int
classify(struct tsdb_head *h, const struct series *s, int64_t t, uint64_t vbits,
    int64_t mv, bool unrestricted, bool replay)
{
	int64_t maxt;
	bool ooo_ok;

	if (s->app.n == 0 || t > s->app.t) {
		if (t >= mv)
			return C_APPEND;
	} else if (t == s->app.t) {
		return vbits == s->app.v ? C_DUP : TSDB_ERR_DUPLICATE;
	}
	maxt = LOAD(&h->maxt);
	ooo_ok = unrestricted || replay || (h->ooo_window > 0 &&
	    (maxt == INT64_MIN || t >= maxt - h->ooo_window));
	if (ooo_ok)
		return ooo_check(h, s, t, vbits);
	if (h->ooo_window > 0)
		return TSDB_ERR_TOO_OLD;
	if (s->app.n == 0 || t > s->app.t)
		return TSDB_ERR_OUT_OF_BOUNDS;
	return TSDB_ERR_OUT_OF_ORDER;
}

static void
count_rejected(struct tsdb_head *h, int rc)
{
	switch (rc) {
	case C_DUP: ADD(&h->dups, 1); break;
	case TSDB_ERR_DUPLICATE: ADD(&h->dupts, 1); break;
	case TSDB_ERR_OUT_OF_BOUNDS: ADD(&h->oob, 1); break;
	case TSDB_ERR_TOO_OLD: ADD(&h->too_old, 1); break;
	default: ADD(&h->ooo, 1); break;
	}
}

static int64_t
range_end(int64_t t, int64_t width)
{
	int64_t q = t / width;

	if (t < 0 && q * width != t)
		q--;	/* floor for negative timestamps */
	return q * width + width;
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

/* What a commit adds to the head-wide statistics and time range, applied
 * once at its end (acc_apply): atomics on lines every appender writes cost
 * a cache-line transfer each when done per sample. */
struct acc {
	uint64_t samples, chunks, ooo;
	int64_t mint, mint_inorder, maxt;
};

static void
acc_init(struct acc *a)
{
	a->samples = a->chunks = a->ooo = 0;
	a->mint = a->mint_inorder = INT64_MAX;
	a->maxt = INT64_MIN;
}

static void
acc_apply(struct tsdb_head *h, const struct acc *a)
{
	if (a->samples > 0) {
		ADD(&h->samples, a->samples);
		atomic_min(&h->mint_inorder, a->mint_inorder);
	}
	if (a->chunks > 0) {
		ADD(&h->chunks, a->chunks);
		ADD(&h->chunks_created, a->chunks);
	}
	if (a->ooo > 0) {
		ADD(&h->ooo_live, a->ooo);
		ADD(&h->ooo_appended, a->ooo);
	}
	if (a->samples > 0 || a->ooo > 0) {
		atomic_min(&h->mint, a->mint);
		atomic_max(&h->maxt, a->maxt);
	}
}

/* next_at returns the time the open chunk is cut at (app.n > 0): kept
 * relative to its last timestamp, which each append moves (append_inorder),
 * so the hot path needs no first timestamp. */
static int64_t
next_at(const struct series *s)
{
	return (int64_t)((uint64_t)s->app.t + s->cut_in);
}

/* set_next_at cuts the open chunk, whose first timestamp is mint, at t from
 * now on (app.n > 0); a cut more than 2^32 ms after the chunk's start comes
 * earlier, one before its last sample comes with the next sample. */
static void
set_next_at(struct series *s, int64_t mint, int64_t t)
{
	uint64_t off = t > mint ? (uint64_t)t - (uint64_t)mint : 0;
	int64_t at = (int64_t)((uint64_t)mint + (off > UINT32_MAX ? UINT32_MAX : off));

	s->cut_in = at > s->app.t ? (uint32_t)((uint64_t)at - (uint64_t)s->app.t) : 0;
}

/* count_inorder counts a sample at t just appended to s's open chunk in
 * the commit's s->pend_n and in *a. */
static inline void
count_inorder(struct series *s, int64_t t, struct acc *a)
{
	s->pend_n++;
	a->samples++;
	if (t < a->mint_inorder)
		a->mint_inorder = t;
	if (t < a->mint)
		a->mint = t;
	if (t > a->maxt)
		a->maxt = t;
}

/* append_inorder appends one sample to s's open chunk as part of commit seq
 * (stripe lock held; classify said C_APPEND), counting it in *a. */
static __attribute__((noinline)) void
append_inorder(struct tsdb_head *h, struct series *s, int64_t t, uint64_t vbits, uint64_t seq,
    struct acc *a)
{
	bool fresh;

	if (s->pend_seq != seq) {
		s->pend_seq = seq;
		s->pend_n = 0;
	}
	if (s->app.n > 0) {
		if (s->app.n == TSDB_SAMPLES_PER_CHUNK / 4) {
			int64_t mint = chunk_app_mint(&s->app);

			set_next_at(s, mint, chunk_end_estimate(mint, s->app.t, next_at(s)));
		}
		if (t >= next_at(s) || s->app.n >= TSDB_SAMPLES_PER_CHUNK * 2)
			seal(h, s);
		else	/* t < next_at: the cut stays where it is */
			s->cut_in -= (uint32_t)((uint64_t)t - (uint64_t)s->app.t);
	}
	fresh = s->app.n == 0;
	chunk_app_append(&s->app, t, vbits);
	if (fresh) {
		a->chunks++;
		set_next_at(s, t, range_end(t, h->chunk_range));
	}
	count_inorder(s, t, a);
}

/* append_steady is append_inorder, inline for the samples that neither
 * start the open chunk, nor cut it, nor estimate its end. */
static inline void
append_steady(struct tsdb_head *h, struct series *s, int64_t t, uint64_t vbits, uint64_t seq,
    struct acc *a)
{
	if (s->app.n == 0 || s->app.n == TSDB_SAMPLES_PER_CHUNK / 4 || t >= next_at(s) ||
	    s->app.n >= TSDB_SAMPLES_PER_CHUNK * 2) {
		append_inorder(h, s, t, vbits, seq, a);
		return;
	}
	if (s->pend_seq != seq) {
		s->pend_seq = seq;
		s->pend_n = 0;
	}
	s->cut_in -= (uint32_t)((uint64_t)t - (uint64_t)s->app.t);
	chunk_app_append(&s->app, t, vbits);
	count_inorder(s, t, a);
}

/* ooo_insert adds an out-of-order sample (classify said C_OOO), counting
 * it in *a. */
static void
ooo_insert(struct tsdb_head *h, struct series *s, int64_t t, uint64_t vbits, uint32_t gen,
    struct acc *a)
{
	struct stripe *st = stripe_of(h, s->id);
	uint32_t i, slot = idtab_slot(&st->ooo, s->id, OOO_ID);
	struct ooo *o = slot != UINT32_MAX ? st->ooo.v[slot] : NULL;

	if (o == NULL) {
		o = mem_alloc(sizeof *o + 4 * sizeof o->s[0]);
		o->id = s->id;
		o->n = 0;
		o->cap = 4;
		idtab_put(&st->ooo, o, OOO_ID, 8);
	} else if (o->n == o->cap) {
		o->cap += o->cap / 2 + 1;
		o = mem_realloc(o, sizeof *o + o->cap * sizeof o->s[0]);
		st->ooo.v[slot] = o;
	}
	i = ooo_find(o, t);
	memmove(&o->s[i + 1], &o->s[i], (o->n - i) * sizeof o->s[0]);
	o->s[i].t = t;
	o->s[i].v = vbits;
	o->s[i].gen = gen;
	o->n++;
	a->ooo++;
	if (t < a->mint)
		a->mint = t;
	if (t > a->maxt)
		a->maxt = t;
}

/* apply applies one committed sample (stripe lock held), counting it in
 * *a. Returns whether the sample went in (in order or out of order). */
static inline bool
apply(struct tsdb_head *h, struct series *s, int64_t t, uint64_t vbits, uint64_t seq,
    int64_t mv, bool unrestricted, uint32_t gen, struct acc *a)
{
	int rc = classify(h, s, t, vbits, mv, unrestricted, false);

	if (rc == C_APPEND)
		append_steady(h, s, t, vbits, seq, a);
	else if (rc == C_OOO)
		ooo_insert(h, s, t, vbits, gen, a);
	else
		count_rejected(h, rc);
	return rc == C_APPEND || rc == C_OOO;
}

uint32_t
tsdb_head_roll(struct tsdb_head *h, int64_t min_valid)
{
	uint32_t gen;

	pthread_mutex_lock(&h->commit_mu);
	if (min_valid > LOAD(&h->min_valid))
		STORE(&h->min_valid, min_valid);
	if (h->has_hooks && h->hk.roll != NULL)
		h->hk.roll(h->hk.arg);
	gen = __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&h->commit_mu);
	return gen;
}

/* --- appenders --------------------------------------------------------------- */

struct tsdb_appender *
tsdb_appender_new(struct tsdb_head *h)
{
	struct tsdb_appender *a = mem_calloc(1, sizeof *a);

	a->h = h;
	return a;
}

struct tsdb_appender *
tsdb_appender_new_unrestricted(struct tsdb_head *h)
{
	struct tsdb_appender *a = tsdb_appender_new(h);

	a->unrestricted = true;
	return a;
}

/* stage_locked classifies a sample of s and stages it when it can go in
 * (stripe lock held; mv as classify's). Returns what tsdb_appender_append
 * does. */
static inline int
stage_locked(struct tsdb_appender *a, struct series *s, int64_t t, uint64_t vbits, int64_t mv)
{
	int rc = classify(a->h, s, t, vbits, mv, a->unrestricted, false);

	if (rc == C_DUP) {
		ADD(&a->h->dups, 1);
		return TSDB_OK;
	}
	if (rc < 0) {
		count_rejected(a->h, rc);
		return rc;
	}
	s->pl += PL_PENDING;
	/* the commit writes the chunk's count and its last byte: have them
	 * in cache by then */
	if (rc == C_APPEND && s->app.b != NULL) {
		__builtin_prefetch(s->app.b, 1);
		__builtin_prefetch(s->app.b + s->app.len - 1, 1);
	}
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = mem_realloc(a->v, a->cap * sizeof *a->v);
		a->sv = mem_realloc(a->sv, a->cap * sizeof *a->sv);
	}
	a->v[a->n].id = s->id;
	a->v[a->n].t = t;
	a->v[a->n].v = vbits;
	a->sv[a->n] = s;
	a->n++;
	return TSDB_OK;
}

/* Samples a batch stages under one stripe lock at most. */
#define BATCH_RUN 32

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
	rc = stage_locked(a, s, t, vbits, min_valid_for(h, false));
	pthread_mutex_unlock(&st->mu);
	if (ref != NULL)
		*ref = s->id;
	return rc;
}

void
tsdb_appender_append_batch(struct tsdb_appender *a, struct tsdb_append_item *it, size_t n)
{
	struct tsdb_head *h = a->h;
	struct series *found[BATCH_RUN];
	uint32_t ids[BATCH_RUN], home[BATCH_RUN];
	size_t i = 0, k, m;
	int64_t mv = min_valid_for(h, false);

	while (i < n) {
		uint64_t ref = *it[i].ref;
		struct stripe *st;
		uint32_t run;

		if (ref == 0 || ref >= UINT32_MAX) {
			it[i].rc = tsdb_appender_append(a, it[i].ref, it[i].ls, it[i].t, it[i].v);
			it[i].hint = NULL;
			i++;
			continue;
		}
		/* the run of samples whose series share ref's stripe: find them
		 * all first, so their cache misses overlap, then stage them */
		st = stripe_of(h, (uint32_t)ref);
		run = stripe_no((uint32_t)ref);	/* st's */
		ids[0] = (uint32_t)ref;
		for (m = 1; m < BATCH_RUN && i + m < n; m++) {
			uint64_t r = *it[i + m].ref;

			if (r == 0 || r >= UINT32_MAX || stripe_no((uint32_t)r) != run)
				break;
			ids[m] = (uint32_t)r;
		}
		pthread_mutex_lock(&st->mu);
		if (st->series.cap > 0) {
			/* their table slots, then the series there (most are at
			 * home), so the loads below find them in cache */
			for (k = 0; k < m; k++) {
				home[k] = idtab_home(&st->series, ids[k]);
				__builtin_prefetch(&st->series.v[home[k]]);
			}
			for (k = 0; k < m; k++) {
				struct series *p = st->series.v[home[k]];

				if (p != NULL) {
					__builtin_prefetch(p);
					__builtin_prefetch((const char *)p + 64);
				}
				found[k] = p;	/* NULL: not in the table */
			}
		} else {
			memset(found, 0, m * sizeof found[0]);
		}
		for (k = 0; k < m; k++) {
			struct series *s = found[k];
			uint64_t vbits;

			if (s != NULL && s->id != ids[k])	/* not at home: probe */
				s = stripe_find(st, ids[k]);
			if (s == NULL)
				break;
			memcpy(&vbits, &it[i + k].v, sizeof vbits);
			it[i + k].rc = stage_locked(a, s, it[i + k].t, vbits, mv);
			it[i + k].hint = s;
		}
		pthread_mutex_unlock(&st->mu);
		i += k;
		if (k < m) {	/* a series gone since: found or made again from ls */
			it[i].rc = tsdb_appender_append(a, it[i].ref, it[i].ls, it[i].t, it[i].v);
			it[i].hint = NULL;
			i++;
		}
	}
}

/* stripe_hold returns st locked, releasing held (NULL: none) when it is
 * another stripe: loops over staged samples keep a lock across a run. */
static struct stripe *
stripe_hold(struct stripe *held, struct stripe *st)
{
	if (held == st)
		return st;
	if (held != NULL)
		pthread_mutex_unlock(&held->mu);
	pthread_mutex_lock(&st->mu);
	return st;
}

/* unpend drops the pending marks of the staged samples. */
static void
unpend(struct tsdb_appender *a)
{
	struct stripe *held = NULL;
	size_t i;

	for (i = 0; i < a->n; i++) {
		held = stripe_hold(held, stripe_of(a->h, a->v[i].id));
		a->sv[i]->pl -= PL_PENDING;
	}
	if (held != NULL)
		pthread_mutex_unlock(&held->mu);
	a->n = 0;
}

/* log_commit hands the commit to the store's log (commit lock held).
 * Returns 0 or the log's error. */
static int
log_commit(struct tsdb_appender *a, uint64_t *pos)
{
	struct tsdb_head *h = a->h;
	size_t i;
	int rc;

	a->nls = 0;
	if (LOAD(&h->unlogged) > 0) {
		struct stripe *held = NULL;

		for (i = 0; i < a->n; i++) {
			struct series *s = a->sv[i];

			held = stripe_hold(held, stripe_of(h, a->v[i].id));
			if (!is_logged(s)) {
				s->pl |= PL_LOGGED;	/* pending keeps s and s->ls alive */
				if (a->nls == a->capls) {
					a->capls = a->capls ? a->capls * 2 : 64;
					a->ls = mem_realloc(a->ls, a->capls * sizeof *a->ls);
				}
				a->ls[a->nls].id = s->id;
				/* an observer gets them after pending dropped:
				 * keep them alive with a reference till then */
				a->ls[a->nls++].ls = h->obs_fn != NULL ? labels_ref(s->ls) : s->ls;
			}
		}
		if (held != NULL)
			pthread_mutex_unlock(&held->mu);
	}
	rc = h->hk.log(h->hk.arg, a->ls, a->nls, a->v, a->n, pos);
	if (rc == 0) {
		SUB(&h->unlogged, a->nls);
		return 0;
	}
	for (i = 0; i < a->nls; i++) {
		struct stripe *st = stripe_of(h, a->ls[i].id);
		struct series *s;

		pthread_mutex_lock(&st->mu);
		if ((s = stripe_find(st, a->ls[i].id)) != NULL)
			s->pl &= ~PL_LOGGED;
		pthread_mutex_unlock(&st->mu);
	}
	return rc;
}

/* unref_logged drops the references log_commit took for the observer
 * (commit lock held, so obs_fn is the one log_commit saw). */
static void
unref_logged(struct tsdb_appender *a)
{
	size_t i;

	if (a->h->obs_fn == NULL)
		return;
	for (i = 0; i < a->nls; i++)
		labels_free((struct labels *)a->ls[i].ls);
	a->nls = 0;
}

int
tsdb_appender_commit(struct tsdb_appender *a)
{
	struct tsdb_head *h = a->h;
	uint64_t seq, pos = 0;
	uint32_t gen;
	int64_t mv;
	size_t i, k = 0;
	struct stripe *held = NULL;
	struct acc acc;

	if (a->n == 0)
		return TSDB_OK;
	pthread_mutex_lock(&h->commit_mu);
	if (h->has_hooks) {
		int rc = log_commit(a, &pos);

		if (rc != 0) {
			unref_logged(a);
			pthread_mutex_unlock(&h->commit_mu);
			ADD(&h->commits_failed, 1);
			unpend(a);
			return rc;
		}
	}
	seq = LOAD(&h->seq) + 1;
	gen = LOAD(&h->gen);
	mv = min_valid_for(h, false);	/* moves only under the commit mutex */
	acc_init(&acc);
	for (i = 0; i < a->n; i++) {
		struct series *s = a->sv[i];	/* pending kept it from GC */

		held = stripe_hold(held, stripe_of(h, a->v[i].id));
		s->pl -= PL_PENDING;
		if (apply(h, s, a->v[i].t, a->v[i].v, seq, mv, a->unrestricted, gen, &acc)) {
			if (k != i)	/* the applied ones, for the observer */
				a->v[k] = a->v[i];
			k++;
		}
	}
	if (held != NULL)
		pthread_mutex_unlock(&held->mu);
	acc_apply(h, &acc);
	__atomic_store_n(&h->seq, seq, __ATOMIC_RELEASE);
	if (h->obs_fn != NULL) {
		h->obs_fn(h->obs_arg, a->ls, h->has_hooks ? a->nls : 0, a->v, k);
		if (h->has_hooks)
			unref_logged(a);
	}
	flush_sealed(h);
	pthread_mutex_unlock(&h->commit_mu);
	a->n = 0;
	if (h->has_hooks && h->hk.wait != NULL)
		h->hk.wait(h->hk.arg, pos);
	return TSDB_OK;
}

void
tsdb_appender_rollback(struct tsdb_appender *a)
{
	unpend(a);
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
	mem_free(a->sv);
	mem_free(a->ls);
	mem_free(a);
}

int
tsdb_head_append(struct tsdb_head *h, uint64_t *ref, struct labels *ls, int64_t t, double v)
{
	struct tsdb_appender a;
	struct tsdb_log_sample one;
	struct tsdb_log_series ones;
	struct series *ones_s;
	int rc;

	memset(&a, 0, sizeof a);
	a.h = h;
	a.v = &one;
	a.sv = &ones_s;
	a.cap = 1;
	a.ls = &ones;
	a.capls = 1;
	rc = tsdb_appender_append(&a, ref, ls, t, v);
	if (rc == 0)
		rc = tsdb_appender_commit(&a);
	return rc;
}

/* --- reading ---------------------------------------------------------------- */

/* nth_newest gives s's in-order sample k back from its newest (stripe lock
 * held); false when it has no more than k, or a chunk is unreadable. */
static bool
nth_newest(struct tsdb_head *h, const struct series *s, uint32_t k, int64_t *t, uint64_t *v)
{
	struct chunk_iter ci;
	struct clv cv;
	uint32_t i;
	bool found = false;

	if (k < s->app.n) {
		chunk_iter_init_enc(&ci, s->app.enc, s->app.b, s->app.len, (uint16_t)(s->app.n - k));
		while (chunk_iter_next(&ci))
			;
		*t = ci.t;
		*v = ci.v;
		return ci.err == 0 && ci.read == s->app.n - k;
	}
	k -= s->app.n;
	cl_load(s, &cv);
	for (i = cv.n; i-- > 0 && !found;) {
		struct hchunks_file *f;
		const uint8_t *b;
		uint8_t enc;
		size_t len;
		uint32_t cnt;

		if ((b = cent_bytes(h, s->id, &cv.v[i], &enc, &len, &f)) == NULL)
			break;
		cnt = (uint32_t)(b[0] << 8 | b[1]);
		if (k < cnt) {
			chunk_iter_init_enc(&ci, enc, b, len, (uint16_t)(cnt - k));
			while (chunk_iter_next(&ci))
				;
			*t = ci.t;
			*v = ci.v;
			found = ci.err == 0 && ci.read == cnt - k;
			hchunks_put(f);
			break;
		}
		k -= cnt;
		hchunks_put(f);
	}
	cl_done(&cv);
	return found;
}

/* visible_newest gives the newest sample a reader at commit w may see
 * (stripe lock held). */
static bool
visible_newest(struct tsdb_head *h, const struct series *s, uint64_t w, int64_t *t,
    uint64_t *v)
{
	const struct ooo *o;

	if (s->pend_seq > w && s->pend_n > 0) {
		/* a commit is being applied to s: its newest sample before */
		if (nth_newest(h, s, s->pend_n, t, v))
			return true;
	} else if (s->app.n > 0) {
		*t = s->app.t;
		*v = s->app.v;
		return true;
	}
	if ((o = series_ooo(h, s)) != NULL && o->n > 0) {
		*t = o->s[o->n - 1].t;
		*v = o->s[o->n - 1].v;
		return true;
	}
	return false;
}

static int64_t
series_mint(struct tsdb_head *h, const struct series *s)
{
	const struct ooo *o = series_ooo(h, s);
	int64_t m = s->cl != NULL ? cl_first_mint(s) : s->app.n > 0 ? chunk_app_mint(&s->app) :
	    INT64_MAX;

	if (o != NULL && o->n > 0 && o->s[0].t < m)
		m = o->s[0].t;
	return m;
}

bool
tsdb_head_series_sources(struct tsdb_head *h, uint32_t id, uint64_t w,
    struct tsdb_iter *it, uint32_t prio)
{
	struct stripe *st = stripe_of(h, id);
	const struct series *s;
	const struct ooo *o;
	struct clv cv;
	uint32_t hidden, k;
	int64_t amint;

	pthread_mutex_lock(&st->mu);
	s = stripe_find(st, id);
	if (s == NULL) {
		pthread_mutex_unlock(&st->mu);
		return false;
	}
	hidden = s->pend_seq > w ? s->pend_n : 0;
	amint = s->app.n > 0 ? chunk_app_mint(&s->app) : 0;
	cv.n = 0;
	cv.v = cv.st;
	/* a range inside the open chunk needs no closed chunk */
	if (s->cl != NULL && (hidden >= s->app.n || s->app.n == 0 || it->mint < amint))
		cl_load(s, &cv);
	/* walk from the newest chunk, hiding the in-flight commit's samples */
	for (k = cv.n + 1; k-- > 0;) {
		uint32_t cnt;
		int64_t cmint, cmaxt;

		if (k == cv.n) {
			cnt = s->app.n;
			cmint = amint;
			cmaxt = s->app.t;
		} else {
			/* counted only when it matters: it reads the chunk */
			cnt = hidden > 0 ? cent_samples(h, id, &cv.v[k]) : CHUNK_MAX_SAMPLES;
			cmint = cv.v[k].mint;
			cmaxt = cv.v[k].maxt;
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
		if (k == cv.n) {
			iter_add_chunk(it, chunk_app_snapshot(&s->app), (uint16_t)cnt, prio);
		} else if (cref_is_mem(cv.v[k].ref)) {
			iter_add_chunk(it, chunk_ref(cref_chunk(cv.v[k].ref)), (uint16_t)cnt, prio);
		} else {
			struct hchunks_file *f = h->hc != NULL ?
			    hchunks_ref(h->hc, cref_pos(cv.v[k].ref)) : NULL;

			if (f == NULL)
				it->err = CHUNK_ERR_CORRUPT;
			else
				iter_add_hfile(it, f, cref_pos(cv.v[k].ref), id, cmint, cmaxt,
				    (uint16_t)cnt, prio);
		}
	}
	cl_done(&cv);
	if ((o = series_ooo(h, s)) != NULL && o->n > 0) {
		uint32_t a = ooo_find(o, it->mint), b, j;
		struct tsdb_sample *v;

		for (b = a; b < o->n && o->s[b].t <= it->maxt; b++)
			;
		if (b > a) {
			v = mem_alloc((b - a) * sizeof *v);
			for (j = a; j < b; j++) {
				v[j - a].t = o->s[j].t;
				v[j - a].v = o->s[j].v;
			}
			iter_add_array(it, v, b - a, prio - 1);
		}
	}
	pthread_mutex_unlock(&st->mu);
	return true;
}

void
tsdb_head_select_into(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct tsdb_series_set *ss)
{
	uint64_t w = sset_head_w(ss);
	struct postings_ids ids;
	size_t i;

	if (n == 0 || mint > maxt)
		return;
	postings_select(h->post, ms, n, &ids);
	for (i = 0; i < ids.n; i++) {
		struct stripe *st = stripe_of(h, ids.v[i]);
		struct series *s;
		int64_t t;
		uint64_t v;

		pthread_mutex_lock(&st->mu);
		s = stripe_find(st, ids.v[i]);
		if (s != NULL && visible_newest(h, s, w, &t, &v) && t >= mint &&
		    series_mint(h, s) <= maxt)
			sset_add(ss, labels_ref(s->ls), true, s->id, 0, 0);
		pthread_mutex_unlock(&st->mu);
	}
	postings_ids_free(&ids);
}

struct tsdb_series_set *
tsdb_head_select(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt)
{
	struct tsdb_series_set *ss = sset_new(h, mint, maxt);

	tsdb_head_select_into(h, ms, n, mint, maxt, ss);
	sset_finish(ss);
	return ss;
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
		if (s != NULL && visible_newest(h, s, w, &t, &bits) && t >= mint) {
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

/* collect_strings gathers the label names (name NULL) or the values of label
 * name of the series in ids. */
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
	st->ooo_samples = LOAD(&h->ooo_live);
	st->ooo_appended = LOAD(&h->ooo_appended);
	st->out_of_bounds = LOAD(&h->oob);
	st->too_old = LOAD(&h->too_old);
	st->commits_failed = LOAD(&h->commits_failed);
	st->mint_inorder = LOAD(&h->mint_inorder);
	st->min_valid = LOAD(&h->min_valid);
}

/* --- dumps ------------------------------------------------------------------ */

/* dump_series fills d with what the selection takes of s (stripe lock
 * held). Returns false when it takes nothing. */
static bool
dump_series(struct tsdb_head *h, const struct series *s, int64_t maxt, int64_t ooo_maxt,
    uint32_t ooo_gen, struct tsdb_series_dump *d, uint32_t *capc, uint32_t *capo)
{
	const struct ooo *o;
	struct clv cv;
	uint32_t i;

	d->id = s->id;
	d->nc = d->nooo = 0;
	d->open = false;
	cl_load(s, &cv);
	for (i = 0; i < cv.n + 1; i++) {
		struct tsdb_dump_chunk dc = { 0, 0, NULL, 0, NULL };

		if (i < cv.n) {
			if (cv.v[i].maxt >= maxt)
				break;
			dc.mint = cv.v[i].mint;
			dc.maxt = cv.v[i].maxt;
			if (cref_is_mem(cv.v[i].ref)) {
				dc.c = chunk_ref(cref_chunk(cv.v[i].ref));
			} else {
				dc.pos = cref_pos(cv.v[i].ref);
				dc.f = h->hc != NULL ? hchunks_ref(h->hc, dc.pos) : NULL;
				if (dc.f == NULL)
					continue;	/* its file is gone: nothing to hand out */
			}
		} else {
			if (s->app.n == 0 || s->app.t >= maxt)
				break;
			dc.c = chunk_app_snapshot(&s->app);
			dc.mint = dc.c->mint;
			dc.maxt = dc.c->maxt;
			chunk_app_save(&s->app, &d->state);
			d->open = true;
		}
		if (d->nc == *capc) {
			*capc = *capc ? *capc * 2 : 8;
			d->c = mem_realloc(d->c, *capc * sizeof *d->c);
		}
		d->c[d->nc++] = dc;
	}
	cl_done(&cv);
	o = series_ooo(h, s);
	for (i = 0; o != NULL && i < o->n && o->s[i].t < ooo_maxt; i++) {
		if (o->s[i].gen >= ooo_gen)
			continue;
		if (d->nooo == *capo) {
			*capo = *capo ? *capo * 2 : 16;
			d->ooo = mem_realloc(d->ooo, *capo * sizeof *d->ooo);
		}
		d->ooo[d->nooo++] = o->s[i];
	}
	if (d->nc == 0 && d->nooo == 0)
		return false;
	d->ls = labels_ref(s->ls);
	return true;
}

void
tsdb_head_dump(struct tsdb_head *h, int64_t maxt, int64_t ooo_maxt, uint32_t ooo_gen,
    void (*fn)(void *arg, const struct tsdb_series_dump *d), void *arg)
{
	struct tsdb_series_dump *batch = NULL;
	uint32_t *capc = NULL, *capo = NULL;
	size_t cap = 0, i;

	for (i = 0; i < NSTRIPES; i++) {
		struct stripe *st = &h->stripes[i];
		size_t n = 0, j, k;

		/* copy the stripe's selection under its lock, hand it out after */
		pthread_mutex_lock(&st->mu);
		if (st->series.n > cap) {
			batch = mem_realloc(batch, st->series.n * sizeof *batch);
			capc = mem_realloc(capc, st->series.n * sizeof *capc);
			capo = mem_realloc(capo, st->series.n * sizeof *capo);
			for (j = cap; j < st->series.n; j++) {
				memset(&batch[j], 0, sizeof batch[j]);
				capc[j] = capo[j] = 0;
			}
			cap = st->series.n;
		}
		for (j = 0; j < st->series.cap; j++) {
			if (st->series.v[j] == NULL)
				continue;
			if (dump_series(h, st->series.v[j], maxt, ooo_maxt, ooo_gen, &batch[n],
			    &capc[n], &capo[n]))
				n++;
		}
		pthread_mutex_unlock(&st->mu);
		for (j = 0; j < n; j++) {
			fn(arg, &batch[j]);
			for (k = 0; k < batch[j].nc; k++) {
				chunk_put(batch[j].c[k].c);
				hchunks_put(batch[j].c[k].f);
			}
			labels_free(batch[j].ls);
		}
	}
	for (i = 0; i < cap; i++) {
		mem_free(batch[i].c);
		mem_free(batch[i].ooo);
	}
	mem_free(batch);
	mem_free(capc);
	mem_free(capo);
}

/* --- truncation and garbage collection --------------------------------------------- */

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

/* is_empty_below tells whether s holds nothing at or after maxt in order,
 * no out-of-order sample, and nothing staged. */
static bool
is_empty_below(struct tsdb_head *h, const struct series *s, int64_t maxt)
{
	return (s->app.n == 0 || s->app.t < maxt) && s->cl == NULL &&
	    series_ooo(h, s) == NULL && series_pending(s) == 0;
}

/* trim_series drops s's chunks ending before maxt (the open one only when
 * out-of-order samples keep the series) and its selected out-of-order
 * samples (stripe lock held). */
static void
trim_series(struct tsdb_head *h, struct series *s, int64_t maxt, int64_t ooo_maxt,
    uint32_t ooo_gen)
{
	struct ooo *o;
	uint32_t drop = 0, k, j;

	if (s->cl != NULL && cl_first_mint(s) < maxt) {
		struct clv cv;

		cl_load(s, &cv);
		for (drop = 0; drop < cv.n && cv.v[drop].maxt < maxt; drop++)
			cref_drop(h, cv.v[drop].ref);
		if (drop > 0)
			cl_store(s, cv.v + drop, cv.n - drop);
		cl_done(&cv);
	}
	if (drop > 0) {
		SUB(&h->chunks, drop);
		ADD(&h->chunks_removed, drop);
	}
	if ((o = series_ooo(h, s)) != NULL) {
		for (j = k = 0; j < o->n; j++) {
			if (o->s[j].t < ooo_maxt && o->s[j].gen < ooo_gen)
				continue;
			o->s[k++] = o->s[j];
		}
		SUB(&h->ooo_live, o->n - k);
		o->n = k;
		if (k == 0) {
			ooo_del(stripe_of(h, s->id), s->id);
			o = NULL;
		}
	}
	if (o != NULL && s->cl == NULL && s->app.n > 0 && s->app.t < maxt &&
	    series_pending(s) == 0) {
		chunk_app_reset(&s->app);
		s->pend_n = 0;
		SUB(&h->chunks, 1);
		ADD(&h->chunks_removed, 1);
	}
}

size_t
tsdb_head_truncate(struct tsdb_head *h, int64_t maxt, int64_t ooo_maxt, uint32_t ooo_gen)
{
	struct victim *vic = NULL;
	size_t nv = 0, cv = 0, i, removed = 0;
	int64_t newmint = INT64_MAX, newmint_in = INT64_MAX;
	uint32_t *ids;
	const struct labels **lss;

	/* 1: drop old chunks; note series that are left empty */
	for (i = 0; i < NSTRIPES; i++) {
		struct stripe *st = &h->stripes[i];
		uint32_t j;

		pthread_mutex_lock(&st->mu);
		for (j = 0; j < st->series.cap; j++) {
			struct series *s = st->series.v[j];

			if (s == NULL)
				continue;
			trim_series(h, s, maxt, ooo_maxt, ooo_gen);
			if (is_empty_below(h, s, maxt)) {
				if (nv == cv) {
					cv = cv ? cv * 2 : 64;
					vic = mem_realloc(vic, cv * sizeof *vic);
				}
				vic[nv].id = s->id;
				vic[nv].ls = labels_ref(s->ls);
				nv++;
				continue;
			}
			if (series_mint(h, s) < newmint)
				newmint = series_mint(h, s);
			if (s->cl != NULL && cl_first_mint(s) < newmint_in)
				newmint_in = cl_first_mint(s);
			else if (s->cl == NULL && s->app.n > 0 && chunk_app_mint(&s->app) < newmint_in)
				newmint_in = chunk_app_mint(&s->app);
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
		if (s != NULL && is_empty_below(h, s, maxt)) {
			stripe_del(st, s->id);
			shard_del(sh, vic[i].ls->hash, s->id);
			SUB(&h->chunks, s->app.n > 0);
			ADD(&h->chunks_removed, s->app.n > 0);
			if (!is_logged(s))
				SUB(&h->unlogged, 1);
		} else {
			if (s != NULL) {
				if (series_mint(h, s) < newmint)
					newmint = series_mint(h, s);
				if (s->cl != NULL && cl_first_mint(s) < newmint_in)
					newmint_in = cl_first_mint(s);
				else if (s->cl == NULL && s->app.n > 0 &&
				    chunk_app_mint(&s->app) < newmint_in)
					newmint_in = chunk_app_mint(&s->app);
			}
			s = NULL;
		}
		pthread_mutex_unlock(&st->mu);
		pthread_rwlock_unlock(&sh->mu);
		if (s != NULL) {
			series_free(h, s);
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
	STORE(&h->mint, newmint);
	STORE(&h->mint_inorder, newmint_in);
	if (LOAD(&h->nseries) == 0)
		STORE(&h->maxt, INT64_MIN);
	return removed;
}

size_t
tsdb_head_gc(struct tsdb_head *h, int64_t mint)
{
	return tsdb_head_truncate(h, mint, mint, UINT32_MAX);
}

/* --- replay ------------------------------------------------------------------ */

#define REPLAY_FLUSH 4096	/* sealed chunks written at a time during a replay */

struct tsdb_head_replay {
	struct tsdb_head *h;
	struct series **byid;	/* logged id -> series (aliases included) */
	uint32_t cap;
	struct tsdb_replay_stats st;
};

struct tsdb_head_replay *
tsdb_head_replay_begin(struct tsdb_head *h)
{
	struct tsdb_head_replay *r = mem_calloc(1, sizeof *r);

	r->h = h;
	return r;
}

static void
byid_put(struct tsdb_head_replay *r, uint32_t id, struct series *s)
{
	if (id >= r->cap) {
		uint32_t cap = r->cap ? r->cap : 1024;

		while (cap <= id)
			cap *= 2;
		r->byid = mem_realloc(r->byid, cap * sizeof *r->byid);
		memset(r->byid + r->cap, 0, (cap - r->cap) * sizeof *r->byid);
		r->cap = cap;
	}
	r->byid[id] = s;
}

static struct series *
byid_get(const struct tsdb_head_replay *r, uint32_t id)
{
	return id < r->cap ? r->byid[id] : NULL;
}

/* replay_series finds or makes the series for (id, ls); takes over ls. */
static struct series *
replay_series(struct tsdb_head_replay *r, uint32_t id, struct labels *ls)
{
	struct tsdb_head *h = r->h;
	struct series *s = byid_get(r, id);
	struct shard *sh;

	if (s != NULL) {
		if (!labels_equal(s->ls, ls))
			s = NULL;	/* an id logged twice for two sets: keep the first */
		labels_free(ls);
		return s;
	}
	if ((s = lookup_locked(h, ls)) != NULL) {
		pthread_mutex_unlock(&stripe_of(h, s->id)->mu);
		byid_put(r, id, s);	/* logged again under another id */
		labels_free(ls);
		return s;
	}
	if (stripe_find(stripe_of(h, id), id) != NULL) {
		labels_free(ls);	/* id taken by another label set */
		return NULL;
	}
	sh = shard_of(h, ls->hash);
	pthread_rwlock_wrlock(&sh->mu);
	s = insert_series(h, sh, ls, id, true);
	pthread_mutex_unlock(&stripe_of(h, id)->mu);
	pthread_rwlock_unlock(&sh->mu);
	s->pl |= PL_LOGGED;
	if (id >= LOAD(&h->next_id))
		STORE(&h->next_id, id + 1);
	byid_put(r, id, s);
	labels_free(ls);
	r->st.series++;
	return s;
}

void
tsdb_head_replay_series(struct tsdb_head_replay *r, uint32_t id, struct labels *ls)
{
	(void)replay_series(r, id, ls);
}

/* replay_ooo inserts a replayed out-of-order sample; live ones get a
 * newer generation than any replayed. */
static void
replay_ooo(struct tsdb_head *h, struct series *s, int64_t t, uint64_t v, uint32_t gen)
{
	struct acc a;

	acc_init(&a);
	ooo_insert(h, s, t, v, gen, &a);
	acc_apply(h, &a);
	if (gen < UINT32_MAX && gen >= LOAD(&h->gen))
		STORE(&h->gen, gen + 1);
}

static void
replay_apply(struct tsdb_head_replay *r, struct series *s, int64_t t, uint64_t v, uint32_t gen)
{
	int rc = classify(r->h, s, t, v, min_valid_for(r->h, true), true, true);

	if (rc == C_APPEND) {
		struct acc a;

		acc_init(&a);
		append_inorder(r->h, s, t, v, 0, &a);
		acc_apply(r->h, &a);
		r->st.samples++;
	} else if (rc == C_OOO) {
		replay_ooo(r->h, s, t, v, gen);
		r->st.ooo++;
	} else {
		r->st.dropped++;
	}
}

void
tsdb_head_replay_sample(struct tsdb_head_replay *r, const struct tsdb_log_sample *x,
    uint32_t gen)
{
	struct series *s = byid_get(r, x->id);

	if (s == NULL) {
		r->st.unknown_refs++;
		return;
	}
	replay_apply(r, s, x->t, x->v, gen);
	if (r->h->nsealed >= REPLAY_FLUSH)
		flush_sealed(r->h);
}

#define REPLAY_AHEAD 8

void
tsdb_head_replay_samples(struct tsdb_head_replay *r, const struct tsdb_log_sample *v,
    size_t n, uint32_t gen)
{
	size_t i;

	for (i = 0; i < n && i < 2 * REPLAY_AHEAD; i++) {
		const struct series *s = byid_get(r, v[i].id);

		if (s != NULL) {
			__builtin_prefetch(s);
			__builtin_prefetch(&s->app);
		}
	}
	for (i = 0; i < n; i++) {
		struct series *s;

		/* the series two windows ahead, its chunk's tail one window ahead */
		if (i + 2 * REPLAY_AHEAD < n && (s = byid_get(r, v[i + 2 * REPLAY_AHEAD].id)) != NULL) {
			__builtin_prefetch(s);
			__builtin_prefetch(&s->app);
		}
		if (i + REPLAY_AHEAD < n && (s = byid_get(r, v[i + REPLAY_AHEAD].id)) != NULL &&
		    s->app.b != NULL)
			__builtin_prefetch(s->app.b + s->app.len - 1, 1);
		s = byid_get(r, v[i].id);
		if (s == NULL) {
			r->st.unknown_refs++;
			continue;
		}
		replay_apply(r, s, v[i].t, v[i].v, gen);
	}
	if (r->h->nsealed >= REPLAY_FLUSH)
		flush_sealed(r->h);
}

int
tsdb_head_replay_snap(struct tsdb_head_replay *r, uint32_t id, struct labels *ls,
    const struct tsdb_snap_chunk *c, size_t n, bool open, const struct chunk_app_state *state,
    const struct tsdb_ooo_sample *ooo, size_t nooo)
{
	struct tsdb_head *h = r->h;
	struct series *s = replay_series(r, id, ls);
	size_t i, nclosed = open && n > 0 ? n - 1 : n;
	int rc = 0;

	if (s == NULL)
		return -1;
	r->st.snap_series++;
	if (s->cl == NULL && s->app.n == 0 && series_ooo(h, s) == NULL) {
		/* fresh series: take the chunks as they are */
		struct cent st[CL_STACK], *v = nclosed <= CL_STACK ? st : mem_alloc(nclosed * sizeof *v);
		uint32_t nv = 0;

		for (i = 0; i < nclosed; i++) {
			struct chunk *ch;

			if (c[i].maxt < c[i].mint || (nv > 0 && c[i].mint <= v[nv - 1].maxt) ||
			    (c[i].b != NULL && (c[i].len < 2 || (c[i].enc != CHUNK_ENC_XOR &&
			    c[i].enc != CHUNK_ENC_DENSE)))) {
				rc = -1;
				continue;
			}
			v[nv].mint = c[i].mint;
			v[nv].maxt = c[i].maxt;
			if (c[i].b == NULL) {
				if (h->hc == NULL || hchunks_claim(h->hc, c[i].pos) < 0) {
					rc = -1;	/* its file is gone or short */
					continue;
				}
				v[nv++].ref = cref_file(c[i].pos);
				continue;
			}
			ch = chunk_new_enc(c[i].enc, c[i].b, c[i].len, c[i].mint, c[i].maxt);
			v[nv++].ref = cref_mem(ch);
			if (h->hc != NULL) {	/* an older checkpoint's bytes: to the files */
				if (h->nsealed == h->capsealed) {
					h->capsealed = h->capsealed ? h->capsealed * 2 : 64;
					h->sealed = mem_realloc(h->sealed, h->capsealed * sizeof *h->sealed);
					h->recs = mem_realloc(h->recs, h->capsealed * sizeof *h->recs);
					h->pos = mem_realloc(h->pos, h->capsealed * sizeof *h->pos);
				}
				h->sealed[h->nsealed].id = s->id;
				h->sealed[h->nsealed++].c = chunk_ref(ch);
			}
		}
		cl_store(s, v, nv);
		if (open && n > 0) {
			int crc = c[n - 1].b == NULL ? CHUNK_ERR_CORRUPT : state != NULL ?
			    chunk_app_restore(&s->app, c[n - 1].b, c[n - 1].len, c[n - 1].mint, state) :
			    chunk_app_resume_enc(&s->app, c[n - 1].enc, c[n - 1].b, c[n - 1].len);

			if (crc != CHUNK_OK || (nv > 0 && chunk_app_mint(&s->app) <= v[nv - 1].maxt)) {
				chunk_app_reset(&s->app);
				chunk_app_init_enc(&s->app, CHUNK_ENC_DENSE);
				rc = -1;
			} else {
				int64_t amint = chunk_app_mint(&s->app);

				set_next_at(s, amint, range_end(amint, h->chunk_range));
				if (s->app.n >= TSDB_SAMPLES_PER_CHUNK / 4)
					set_next_at(s, amint, chunk_end_estimate(amint, s->app.t,
					    next_at(s)));
			}
		}
		ADD(&h->chunks, nv + (s->app.n > 0));
		ADD(&h->chunks_created, nv + (s->app.n > 0));
		if (nv > 0 || s->app.n > 0) {
			int64_t lo = nv > 0 ? v[0].mint : chunk_app_mint(&s->app);
			int64_t hi = s->app.n > 0 ? s->app.t : v[nv - 1].maxt;

			atomic_min(&h->mint, lo);
			atomic_min(&h->mint_inorder, lo);
			atomic_max(&h->maxt, hi);
		}
		if (v != st)
			mem_free(v);
		for (i = 0; i < nooo; i++) {
			if (i > 0 && ooo[i].t <= ooo[i - 1].t)
				continue;
			replay_ooo(h, s, ooo[i].t, ooo[i].v, ooo[i].gen);
		}
		if (h->nsealed >= REPLAY_FLUSH)
			flush_sealed(h);
		return rc;
	}
	/* the series already has data (logged twice): merge sample by sample */
	for (i = 0; i < n; i++) {
		struct hchunks_file *f = NULL;
		const uint8_t *b = c[i].b;
		size_t len = c[i].len;
		struct chunk_iter ci;
		uint8_t enc;

		enc = c[i].enc;
		if (b == NULL && h->hc != NULL && (f = hchunks_ref(h->hc, c[i].pos)) != NULL)
			b = hchunks_read(f, c[i].pos, id, &enc, &len);
		if (b == NULL) {
			hchunks_put(f);
			rc = -1;
			continue;
		}
		chunk_iter_init_enc(&ci, enc, b, len, CHUNK_MAX_SAMPLES);
		while (chunk_iter_next(&ci))
			replay_apply(r, s, ci.t, ci.v, 0);
		if (ci.err)
			rc = -1;
		hchunks_put(f);
	}
	for (i = 0; i < nooo; i++)
		replay_apply(r, s, ooo[i].t, ooo[i].v, ooo[i].gen);
	if (h->nsealed >= REPLAY_FLUSH)
		flush_sealed(h);
	return rc;
}

void
tsdb_head_replay_next_id(struct tsdb_head_replay *r, uint32_t id)
{
	if (id > LOAD(&r->h->next_id) && id < UINT32_MAX)
		STORE(&r->h->next_id, id);
}

void
tsdb_head_replay_end(struct tsdb_head_replay *r, struct tsdb_replay_stats *st)
{
	flush_sealed(r->h);
	postings_sort(r->h->post);
	if (st != NULL)
		*st = r->st;
	mem_free(r->byid);
	mem_free(r);
}
