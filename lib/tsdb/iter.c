/* lib/tsdb/iter.c - merging sample iterators and series sets.
 *
 * Owns struct tsdb_iter and struct tsdb_series_set (see iter.h): the
 * public tsdb_iter_* and tsdb_series_set_* functions of head.h are here.
 * An iterator keeps its sources sorted by first timestamp and opens them
 * one "run" at a time: a run is a maximal group of sources whose time
 * ranges overlap. A run of one head chunk (XOR or dense, in memory or in a
 * chunk file) is streamed with a chunk_iter; any other run is decoded into
 * a buffer, sorted and deduplicated.
 *
 * A series set is filled by the head (tsdb_head_select) or the store
 * (tsdb_db_select) with one entry per (series, place), then sorted by
 * labels and merged, so one series found in the head and in three blocks
 * is one entry with four places. Used by one thread at a time.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tsdb/block.h"
#include "tsdb/hchunks.h"
#include "tsdb/iter.h"
#include "tsdb/pack.h"
#include "util/mem.h"

/* --- iterators ------------------------------------------------------------------ */

void
iter_init(struct tsdb_iter *it, int64_t mint, int64_t maxt)
{
	memset(it, 0, sizeof *it);
	it->mint = mint;
	it->maxt = maxt;
	it->seek = INT64_MIN;
}

/* iter_lo is the oldest timestamp the iterator still wants. */
static int64_t
iter_lo(const struct tsdb_iter *it)
{
	return it->seek > it->mint ? it->seek : it->mint;
}

static void
src_release(struct isrc *s)
{
	if (s->kind == ISRC_CHUNK)
		chunk_put(s->u.c);
	else if (s->kind == ISRC_ARRAY)
		mem_free(s->u.arr.v);
	else if (s->kind == ISRC_HFILE)
		hchunks_put(s->u.hf.f);
}

void
iter_clear(struct tsdb_iter *it)
{
	uint32_t i;

	for (i = 0; i < it->n; i++)
		src_release(&it->src[i]);
	it->n = 0;
	it->i = 0;
	it->mode = 0;
	it->done = it->have = false;
	it->sorted = true;
	it->err = 0;
	it->bn = it->bpos = 0;
	it->seek = INT64_MIN;
}

void
iter_release(struct tsdb_iter *it)
{
	iter_clear(it);
	mem_free(it->src);
	mem_free(it->buf);
	it->src = NULL;
	it->buf = NULL;
	it->cap = 0;
	it->bcap = 0;
}

static struct isrc *
src_push(struct tsdb_iter *it, int64_t mint, int64_t maxt, uint32_t prio)
{
	struct isrc *s;

	if (it->n == it->cap) {
		it->cap = it->cap ? it->cap * 2 : 8;
		it->src = mem_realloc(it->src, it->cap * sizeof *it->src);
	}
	if (it->n > 0 && mint < it->src[it->n - 1].mint)
		it->sorted = false;
	s = &it->src[it->n++];
	s->mint = mint;
	s->maxt = maxt;
	s->prio = prio;
	return s;
}

void
iter_add_chunk(struct tsdb_iter *it, struct chunk *c, uint16_t lim, uint32_t prio)
{
	struct isrc *s = src_push(it, c->mint, c->maxt, prio);

	s->kind = ISRC_CHUNK;
	s->lim = lim;
	s->u.c = c;
}

void
iter_add_raw(struct tsdb_iter *it, uint8_t enc, const uint8_t *b, size_t len,
    int64_t mint, int64_t maxt, uint32_t prio)
{
	struct isrc *s = src_push(it, mint, maxt, prio);

	s->kind = ISRC_RAW;
	s->enc = enc;
	s->u.raw.b = b;
	s->u.raw.len = len;
}

void
iter_add_array(struct tsdb_iter *it, struct tsdb_sample *v, size_t n, uint32_t prio)
{
	struct isrc *s;

	if (n == 0) {
		mem_free(v);
		return;
	}
	s = src_push(it, v[0].t, v[n - 1].t, prio);
	s->kind = ISRC_ARRAY;
	s->u.arr.v = v;
	s->u.arr.n = n;
}

void
iter_add_hfile(struct tsdb_iter *it, struct hchunks_file *f, uint64_t pos, uint32_t id,
    int64_t mint, int64_t maxt, uint16_t lim, uint32_t prio)
{
	struct isrc *s = src_push(it, mint, maxt, prio);

	s->kind = ISRC_HFILE;
	s->lim = lim;
	s->u.hf.f = f;
	s->u.hf.pos = pos;
	s->u.hf.id = id;
}

void
iter_add_dump(struct tsdb_iter *it, uint32_t id, const struct tsdb_dump_chunk *dc, uint32_t prio)
{
	if (dc->c != NULL)
		iter_add_chunk(it, chunk_ref(dc->c), CHUNK_MAX_SAMPLES, prio);
	else
		iter_add_hfile(it, hchunks_file_ref(dc->f), dc->pos, id, dc->mint, dc->maxt,
		    CHUNK_MAX_SAMPLES, prio);
}

/* hfile_bytes reads an ISRC_HFILE source's bytes: NULL when damaged. */
static const uint8_t *
hfile_bytes(const struct isrc *s, uint8_t *enc, size_t *len)
{
	return hchunks_read(s->u.hf.f, s->u.hf.pos, s->u.hf.id, enc, len);
}

int
chunk_decode(uint8_t enc, const uint8_t *b, size_t len, struct tsdb_sample **v,
    size_t *n, size_t *cap)
{
	struct chunk_iter ci;

	switch (enc) {
	case CHUNK_ENC_XOR:
	case CHUNK_ENC_DENSE:
		chunk_iter_init_enc(&ci, enc, b, len, CHUNK_MAX_SAMPLES);
		while (chunk_iter_next(&ci)) {
			if (*n == *cap) {
				*cap = *cap ? *cap * 2 : 256;
				*v = mem_realloc(*v, *cap * sizeof **v);
			}
			(*v)[*n].t = ci.t;
			(*v)[(*n)++].v = ci.v;
		}
		return ci.err ? CHUNK_ERR_CORRUPT : 0;
	case CHUNK_ENC_PACK:
		return pack_decode(b, len, v, n, cap);
	case CHUNK_ENC_PACK2:
		return pack2_decode_range(b, len, INT64_MIN, INT64_MAX, v, n, cap);
	}
	return CHUNK_ERR_CORRUPT;
}

/* src_decode appends the samples of s to the buffer, tagging nothing: the
 * caller sorts by (t, priority) using the parallel prio array. */
static int
src_decode(struct tsdb_iter *it, const struct isrc *s)
{
	switch (s->kind) {
	case ISRC_CHUNK: {
		struct chunk_iter ci;

		chunk_iter_init_enc(&ci, s->u.c->enc, s->u.c->b, s->u.c->len, s->lim);
		while (chunk_iter_next(&ci)) {
			if (it->bn == it->bcap) {
				it->bcap = it->bcap ? it->bcap * 2 : 256;
				it->buf = mem_realloc(it->buf, it->bcap * sizeof *it->buf);
			}
			it->buf[it->bn].t = ci.t;
			it->buf[it->bn++].v = ci.v;
		}
		return ci.err;
	}
	case ISRC_RAW:
		/* a block chunk: only its groups that can hold samples in range */
		if (s->enc == CHUNK_ENC_PACK2)
			return pack2_decode_range(s->u.raw.b, s->u.raw.len, iter_lo(it), it->maxt,
			    &it->buf, &it->bn, &it->bcap);
		return chunk_decode(s->enc, s->u.raw.b, s->u.raw.len, &it->buf, &it->bn, &it->bcap);
	case ISRC_HFILE: {
		struct chunk_iter ci;
		const uint8_t *b;
		uint8_t enc;
		size_t len;

		if ((b = hfile_bytes(s, &enc, &len)) == NULL)
			return CHUNK_ERR_CORRUPT;
		if (enc != CHUNK_ENC_XOR && enc != CHUNK_ENC_DENSE)
			return chunk_decode(enc, b, len, &it->buf, &it->bn, &it->bcap);
		chunk_iter_init_enc(&ci, enc, b, len, s->lim);
		while (chunk_iter_next(&ci)) {
			if (it->bn == it->bcap) {
				it->bcap = it->bcap ? it->bcap * 2 : 256;
				it->buf = mem_realloc(it->buf, it->bcap * sizeof *it->buf);
			}
			it->buf[it->bn].t = ci.t;
			it->buf[it->bn++].v = ci.v;
		}
		return ci.err;
	}
	case ISRC_ARRAY:
		if (it->bn + s->u.arr.n > it->bcap) {
			it->bcap = (it->bn + s->u.arr.n) * 2;
			it->buf = mem_realloc(it->buf, it->bcap * sizeof *it->buf);
		}
		memcpy(it->buf + it->bn, s->u.arr.v, s->u.arr.n * sizeof *it->buf);
		it->bn += s->u.arr.n;
		return 0;
	}
	return CHUNK_ERR_CORRUPT;
}

static int
cmp_src(const void *a, const void *b)
{
	const struct isrc *x = a, *y = b;

	if (x->mint != y->mint)
		return x->mint < y->mint ? -1 : 1;
	return x->prio < y->prio ? -1 : x->prio > y->prio;
}

/* A sample with the priority of its source, for merging a run. */
struct psample {
	int64_t t;
	uint64_t v;
	uint32_t prio;
};

static int
cmp_psample(const void *a, const void *b)
{
	const struct psample *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->prio > y->prio ? -1 : x->prio < y->prio;	/* highest first */
}

/* merge_run decodes sources [i, j) into the buffer, sorted, one sample per
 * timestamp (the highest priority's). */
static void
merge_run(struct tsdb_iter *it, uint32_t i, uint32_t j)
{
	struct psample *ps = NULL;
	size_t nps = 0, k, m;
	uint32_t s;

	it->bn = it->bpos = 0;
	for (s = i; s < j; s++) {
		size_t before = it->bn;

		if (src_decode(it, &it->src[s]) != 0)
			it->err = CHUNK_ERR_CORRUPT;
		ps = mem_realloc(ps, (nps + it->bn - before + 1) * sizeof *ps);
		for (k = before; k < it->bn; k++) {
			ps[nps].t = it->buf[k].t;
			ps[nps].v = it->buf[k].v;
			ps[nps++].prio = it->src[s].prio;
		}
	}
	qsort(ps, nps, sizeof *ps, cmp_psample);
	for (k = m = 0; k < nps; k++) {
		if (m > 0 && it->buf[m - 1].t == ps[k].t)
			continue;
		it->buf[m].t = ps[k].t;
		it->buf[m++].v = ps[k].v;
	}
	it->bn = m;
	mem_free(ps);
}

/* open_run opens the next run of sources; false when none is left. */
static bool
open_run(struct tsdb_iter *it)
{
	uint32_t j;
	int64_t end;

	if (!it->sorted) {
		if (it->n - it->i > 1)
			qsort(it->src + it->i, it->n - it->i, sizeof *it->src, cmp_src);
		it->sorted = true;
	}
	/* sources that end before the range (or the seek target) hold nothing */
	while (it->i < it->n && it->src[it->i].maxt < it->mint)
		it->i++;
	if (it->i >= it->n || it->src[it->i].mint > it->maxt)
		return false;
	end = it->src[it->i].maxt;
	for (j = it->i + 1; j < it->n && it->src[j].mint <= end; j++)
		if (it->src[j].maxt > end)
			end = it->src[j].maxt;
	if (j == it->i + 1 && it->src[it->i].kind == ISRC_CHUNK) {
		chunk_iter_init_enc(&it->ci, it->src[it->i].u.c->enc, it->src[it->i].u.c->b,
		    it->src[it->i].u.c->len, it->src[it->i].lim);
		it->mode = 1;
	} else if (j == it->i + 1 && it->src[it->i].kind == ISRC_HFILE) {
		const uint8_t *b;
		uint8_t enc;
		size_t len;

		/* a head chunk in a file streams like one in memory */
		if ((b = hfile_bytes(&it->src[it->i], &enc, &len)) == NULL) {
			it->err = CHUNK_ERR_CORRUPT;
			it->mode = 0;
		} else if (enc == CHUNK_ENC_XOR || enc == CHUNK_ENC_DENSE) {
			chunk_iter_init_enc(&it->ci, enc, b, len, it->src[it->i].lim);
			it->mode = 1;
		} else {
			it->bn = it->bpos = 0;
			if (chunk_decode(enc, b, len, &it->buf, &it->bn, &it->bcap) != 0)
				it->err = CHUNK_ERR_CORRUPT;
			it->mode = 2;
		}
	} else if (j == it->i + 1) {
		it->bn = it->bpos = 0;
		if (src_decode(it, &it->src[it->i]) != 0)
			it->err = CHUNK_ERR_CORRUPT;
		it->mode = 2;
	} else {
		merge_run(it, it->i, j);
		it->mode = 2;
	}
	if (it->mode == 2 && it->bn > 0 && it->buf[0].t < iter_lo(it)) {
		/* decoded whole groups: start at the first sample wanted */
		size_t lo = 0, hi = it->bn;
		int64_t want = iter_lo(it);

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (it->buf[mid].t < want)
				lo = mid + 1;
			else
				hi = mid;
		}
		it->bpos = lo;
	}
	it->i = j;
	return true;
}

bool
tsdb_iter_next(struct tsdb_iter *it, int64_t *t, double *v)
{
	while (!it->done) {
		int64_t st;
		uint64_t sv;

		if (it->mode == 0) {
			if (!open_run(it)) {
				it->done = true;
				break;
			}
			continue;
		}
		if (it->mode == 1) {
			if (!chunk_iter_next(&it->ci)) {
				if (it->ci.err)
					it->err = CHUNK_ERR_CORRUPT;
				it->mode = 0;
				continue;
			}
			st = it->ci.t;
			sv = it->ci.v;
		} else {
			if (it->bpos >= it->bn) {
				it->mode = 0;
				continue;
			}
			st = it->buf[it->bpos].t;
			sv = it->buf[it->bpos++].v;
		}
		if (st < it->mint)
			continue;
		if (st > it->maxt) {
			it->done = true;
			break;
		}
		it->have = true;
		it->t = st;
		it->v = sv;
		if (t != NULL)
			*t = st;
		if (v != NULL)
			*v = chunk_bits_f64(sv);
		return true;
	}
	it->have = false;
	return false;
}

bool
tsdb_iter_seek(struct tsdb_iter *it, int64_t t, int64_t *tout, double *vout)
{
	if (!(it->have && it->t >= t)) {
		if (t > it->seek)
			it->seek = t;
		if (it->mode == 0 && !it->done) {
			/* skip whole sources that end before t */
			if (!it->sorted) {
				if (it->n - it->i > 1)
					qsort(it->src + it->i, it->n - it->i, sizeof *it->src, cmp_src);
				it->sorted = true;
			}
			while (it->i < it->n && it->src[it->i].maxt < t)
				it->i++;
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

/* --- series sets ------------------------------------------------------------------- */

struct ss_place {
	uint32_t blk;		/* UINT32_MAX: the head */
	uint32_t ref;
};

struct ss_entry {
	struct labels *ls;
	uint32_t first;		/* index of its first place */
	uint32_t nplaces;
};

struct tsdb_series_set {
	struct tsdb_head *h;
	uint64_t w;
	int64_t mint, maxt;
	struct block **blocks;
	uint32_t nblocks, capblocks;
	struct ss_entry *e;
	size_t n, cap, pos;	/* pos: 1 + index of the current entry */
	struct ss_place *pl;
	size_t npl, cappl;
	bool unsorted;		/* an entry was added before the one added last */
	struct tsdb_iter it;
};

struct tsdb_series_set *
sset_new(struct tsdb_head *h, int64_t mint, int64_t maxt)
{
	struct tsdb_series_set *ss = mem_calloc(1, sizeof *ss);

	ss->h = h;
	ss->mint = mint;
	ss->maxt = maxt;
	ss->w = h != NULL ? tsdb_head_seq(h) : 0;
	iter_init(&ss->it, mint, maxt);
	return ss;
}

uint64_t
sset_head_w(const struct tsdb_series_set *ss)
{
	return ss->w;
}

uint32_t
sset_add_block(struct tsdb_series_set *ss, struct block *b)
{
	if (ss->nblocks == ss->capblocks) {
		ss->capblocks = ss->capblocks ? ss->capblocks * 2 : 8;
		ss->blocks = mem_realloc(ss->blocks, ss->capblocks * sizeof *ss->blocks);
	}
	ss->blocks[ss->nblocks] = block_ref(b);
	return ss->nblocks++;
}

void
sset_add(struct tsdb_series_set *ss, struct labels *ls, bool head, uint32_t id,
    uint32_t blk, uint32_t ref)
{
	if (ss->n == ss->cap) {
		ss->cap = ss->cap ? ss->cap * 2 : 64;
		ss->e = mem_realloc(ss->e, ss->cap * sizeof *ss->e);
	}
	if (ss->npl == ss->cappl) {
		ss->cappl = ss->cappl ? ss->cappl * 2 : 64;
		ss->pl = mem_realloc(ss->pl, ss->cappl * sizeof *ss->pl);
	}
	ss->pl[ss->npl].blk = head ? UINT32_MAX : blk;
	ss->pl[ss->npl].ref = head ? id : ref;
	/* a block's series come in labels order: then no sort is needed */
	if (!ss->unsorted && ss->n > 0 && labels_compare(ss->e[ss->n - 1].ls, ls) > 0)
		ss->unsorted = true;
	ss->e[ss->n].ls = ls;
	ss->e[ss->n].first = (uint32_t)ss->npl++;
	ss->e[ss->n++].nplaces = 1;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct ss_entry *x = a, *y = b;
	int c = x->ls == y->ls ? 0 : labels_compare(x->ls, y->ls);

	if (c != 0)
		return c;
	return x->first < y->first ? -1 : x->first > y->first;
}

void
sset_finish(struct tsdb_series_set *ss)
{
	struct ss_place *pl;
	size_t i, k, np = 0;

	if (ss->n > 1 && ss->unsorted)
		qsort(ss->e, ss->n, sizeof *ss->e, cmp_entry);
	/* regroup places so each series' are contiguous */
	pl = mem_alloc((ss->npl + 1) * sizeof *pl);
	for (i = k = 0; i < ss->n; i++) {
		if (k > 0 && labels_equal(ss->e[k - 1].ls, ss->e[i].ls)) {
			pl[np++] = ss->pl[ss->e[i].first];
			ss->e[k - 1].nplaces++;
			labels_free(ss->e[i].ls);
			continue;
		}
		ss->e[k] = ss->e[i];
		pl[np] = ss->pl[ss->e[i].first];
		ss->e[k].first = (uint32_t)np++;
		k++;
	}
	ss->n = k;
	mem_free(ss->pl);
	ss->pl = pl;
	ss->npl = ss->cappl = np;
}

bool
tsdb_series_set_next(struct tsdb_series_set *ss)
{
	while (ss->pos < ss->n) {
		struct ss_entry *e = &ss->e[ss->pos++];
		uint32_t k;

		iter_clear(&ss->it);
		for (k = 0; k < e->nplaces; k++) {
			const struct ss_place *p = &ss->pl[e->first + k];

			if (p->blk == UINT32_MAX)
				tsdb_head_series_sources(ss->h, p->ref, ss->w, &ss->it, UINT32_MAX - 1);
			else if (p->blk < ss->nblocks)
				block_series_sources(ss->blocks[p->blk], p->ref, &ss->it, p->blk + 1);
		}
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
	const struct ss_entry *e;
	uint32_t k;

	if (ss->pos == 0)
		return 0;
	e = &ss->e[ss->pos - 1];
	for (k = 0; k < e->nplaces; k++)
		if (ss->pl[e->first + k].blk == UINT32_MAX)
			return ss->pl[e->first + k].ref;
	return 0;
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
	iter_release(&ss->it);
	for (i = 0; i < ss->n; i++)
		labels_free(ss->e[i].ls);
	for (i = 0; i < ss->nblocks; i++)
		block_put(ss->blocks[i]);
	mem_free(ss->e);
	mem_free(ss->pl);
	mem_free(ss->blocks);
	mem_free(ss);
}
