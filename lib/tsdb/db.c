/* lib/tsdb/db.c - the store: lock file, WAL replay, blocks, maintenance
 * (head cuts, out-of-order flushes, compaction, retention), reads.
 *
 * Owns the data directory: the lock file, the WAL (lib/tsdb/wal.c), the
 * head it feeds (lib/tsdb/head.c), the files the head's closed chunks live
 * in (head_chunks/, lib/tsdb/hchunks.c) and the list of loaded blocks
 * (lib/tsdb/block.c), sorted by mint. The head's commit hooks log each
 * commit to the WAL before it is applied.
 *
 * Checkpoints name closed head chunks by their position in head_chunks/:
 * the files are synced before a checkpoint is committed, and a file is only
 * deleted (hchunks_collect) after a checkpoint no longer names any of its
 * chunks, or at open when the replay claimed none of them.
 *
 * Persisting the head (a cut at a block boundary T, or a flush of the
 * out-of-order samples): tsdb_head_roll raises the head's min valid time to
 * T and starts a generation, so what the dump takes cannot change under it;
 * the dump is written as one block per block range it touches; the blocks
 * are loaded; only then is the head truncated, and a checkpoint written. A
 * crash between two steps leaves data twice (blocks and WAL), never zero
 * times: reads and compaction merge duplicates.
 *
 * Threads: appenders and readers on any thread; one maintenance thread
 * (unless no_maintenance) runs tsdb_db_maintain every few seconds. db->mu
 * serialises maintenance passes and checkpoints; db->bmu (rwlock) guards
 * the block list (readers take block references under it); db->smu guards
 * the statistics kept here.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/block.h"
#include "tsdb/db.h"
#include "tsdb/enc.h"
#include "tsdb/hchunks.h"
#include "tsdb/iter.h"
#include "tsdb/postings.h"
#include "tsdb/wal.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define MAINTAIN_EVERY_MS 5000
#define CKPT_MIN_BYTES (128u << 20)	/* WAL written before a checkpoint pays */
#define OOO_FLUSH_SAMPLES 1000000	/* out-of-order samples held before a flush */
#define NRANGES 5			/* compaction ranges: R, 3R, 9R, 27R, 81R */

struct tsdb_db {
	char *dir;
	char *waldir;
	int lockfd;
	struct tsdb_db_opts o;
	struct tsdb_head *head;
	struct hchunks *hc;		/* the head's closed chunks (head_chunks/) */
	struct wal *wal;
	pthread_rwlock_t bmu;		/* the block list */
	struct block **blocks;		/* sorted by mint, then id */
	size_t nblocks;
	char (*bad)[BLOCK_ID_LEN + 1];	/* block dirs that failed to load */
	size_t nbad;
	int64_t ranges[NRANGES];
	size_t nranges;
	pthread_mutex_t mu;		/* maintenance, checkpoints */
	pthread_mutex_t smu;		/* stats below */
	pthread_cond_t cv;		/* the maintenance thread sleeps here */
	pthread_t bg;
	bool bg_started;
	bool stop;
	uint64_t wal_at_ckpt;		/* WAL bytes written at the last checkpoint */
	bool replayed_tail;		/* segments were replayed, not checkpointed yet */
	struct tsdb_db_stats st;
};

/* --- paths and the lock file --------------------------------------------------- */

static char *
join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = mem_alloc(la + lb + 2);

	memcpy(p, a, la);
	if (la > 0 && a[la - 1] == '/')
		la--;
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

static int
mkdir_p(const char *path, char *err, size_t errlen)
{
	char *p = mem_strdup(path), *s;
	int rc = 0;

	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "create %s: %s", p, strerror(errno));
			rc = -1;
			break;
		}
		*s = '/';
	}
	if (rc == 0 && mkdir(p, 0777) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "create %s: %s", p, strerror(errno));
		rc = -1;
	}
	mem_free(p);
	return rc;
}

static int
take_lock(struct tsdb_db *db, char *err, size_t errlen)
{
	char *p = join(db->dir, "lock");
	char pid[32];
	int n;

	db->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (db->lockfd < 0) {
		snprintf(err, errlen, "open lock file %s: %s", p, strerror(errno));
		mem_free(p);
		return -1;
	}
	if (flock(db->lockfd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "lock %s: %s (is another strata using %s?)", p,
		    errno == EWOULDBLOCK ? "held by another process" : strerror(errno), db->dir);
		close(db->lockfd);
		db->lockfd = -1;
		mem_free(p);
		return -1;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(db->lockfd, 0) == 0 && pwrite(db->lockfd, pid, (size_t)n, 0) != n) {
		/* the pid is informational */
	}
	mem_free(p);
	return 0;
}

/* --- WAL hooks and replay ---------------------------------------------------------- */

static int
hook_log(void *arg, const struct tsdb_log_series *s, size_t ns,
    const struct tsdb_log_sample *v, size_t nv, uint64_t *pos)
{
	return wal_log(((struct tsdb_db *)arg)->wal, s, ns, v, nv, pos);
}

static void
hook_wait(void *arg, uint64_t pos)
{
	wal_wait(((struct tsdb_db *)arg)->wal, pos);
}

static void
hook_roll(void *arg)
{
	(void)wal_roll(((struct tsdb_db *)arg)->wal);
}

struct replay_ctx {
	struct tsdb_head_replay *r;
	struct wal_snap snap;
	struct tsdb_log_sample *v;	/* a record's samples */
	size_t cap;
	uint64_t bad;
	uint32_t seg;
};

static void
replay_series_fn(void *arg, uint32_t id, struct labels *ls)
{
	tsdb_head_replay_series(arg, id, ls);
}

static void
replay_record(void *arg, uint8_t type, const uint8_t *p, size_t len, uint32_t seg)
{
	struct replay_ctx *c = arg;
	struct wal_samples_dec d;
	struct tsdb_log_sample x;
	struct dec md;

	c->seg = seg;
	switch (type) {
	case WAL_SERIES:
		if (wal_dec_series(p, len, replay_series_fn, c->r) < 0)
			c->bad++;
		break;
	case WAL_SAMPLES: {
		size_t n = 0;

		wal_samples_init(&d, p, len);
		while (wal_samples_next(&d, &x)) {
			if (n == c->cap) {
				c->cap = c->cap ? c->cap * 2 : 4096;
				c->v = mem_realloc(c->v, c->cap * sizeof *c->v);
			}
			c->v[n++] = x;
		}
		tsdb_head_replay_samples(c->r, c->v, n, seg);
		if (d.err)
			c->bad++;
		break;
	}
	case WAL_SNAP_SERIES:
	case WAL_SNAP_SERIES2:
		if (wal_dec_snap(type, p, len, &c->snap) < 0) {
			c->bad++;
			break;
		}
		if (tsdb_head_replay_snap(c->r, c->snap.id, c->snap.ls, c->snap.c,
		    c->snap.nchunks, c->snap.open, c->snap.has_state ? &c->snap.state : NULL,
		    c->snap.ooo, c->snap.nooo) < 0)
			c->bad++;
		break;
	case WAL_SNAP_META: {
		uint64_t next;

		dec_init(&md, p, len);
		next = dec_uvarint(&md);
		if (!md.err && next < UINT32_MAX)
			tsdb_head_replay_next_id(c->r, (uint32_t)next);
		break;
	}
	}
}

/* --- checkpoints -------------------------------------------------------------------- */

struct ckpt_ctx {
	struct wal_ckpt *ck;
	int rc;
};

static void
ckpt_series(void *arg, const struct tsdb_series_dump *d)
{
	struct ckpt_ctx *c = arg;

	if (c->rc == 0 && wal_ckpt_series(c->ck, d) < 0)
		c->rc = -1;
}

/* checkpoint_locked writes the head as checkpoint of every segment before
 * the one a roll starts now (db->mu held). */
static int
checkpoint_locked(struct tsdb_db *db)
{
	struct tsdb_head_stats hs;
	struct wal_stats ws;
	struct ckpt_ctx c = { NULL, 0 };
	char err[256];
	uint32_t seg;
	int64_t t0 = time_mono_ns();

	tsdb_head_stats(db->head, &hs);
	(void)tsdb_head_roll(db->head, hs.min_valid);
	seg = wal_segment(db->wal);
	if (seg == 0)
		return 0;
	c.ck = wal_ckpt_begin(db->wal, seg - 1, err, sizeof err);
	if (c.ck == NULL) {
		log_kv(LOG_ERROR, "tsdb", "checkpoint failed", "err", err, (char *)NULL);
		return -1;
	}
	tsdb_head_dump(db->head, INT64_MAX, INT64_MAX, UINT32_MAX, ckpt_series, &c);
	if (c.rc == 0)
		c.rc = wal_ckpt_meta(c.ck, tsdb_head_next_id(db->head));
	if (c.rc < 0) {
		wal_ckpt_abort(c.ck);
		log_kv(LOG_ERROR, "tsdb", "checkpoint failed", "err", "write error", (char *)NULL);
		return -1;
	}
	/* the checkpoint names head chunks by position: they must be on disk
	 * before it is */
	if (hchunks_sync(db->hc) < 0) {
		wal_ckpt_abort(c.ck);
		log_kv(LOG_ERROR, "tsdb", "checkpoint failed", "err", "head chunk files not synced",
		    (char *)NULL);
		return -1;
	}
	if (wal_ckpt_commit(c.ck, err, sizeof err) < 0) {
		log_kv(LOG_ERROR, "tsdb", "checkpoint failed", "err", err, (char *)NULL);
		return -1;
	}
	/* no checkpoint names the chunks the head let go of any more */
	hchunks_collect(db->hc);
	wal_stats(db->wal, &ws);
	db->wal_at_ckpt = ws.bytes_written;
	db->replayed_tail = false;
	if (log_enabled(LOG_INFO)) {
		char segs[32], dur[32];

		snprintf(segs, sizeof segs, "%" PRIu32, seg - 1);
		snprintf(dur, sizeof dur, "%.3fs", (double)(time_mono_ns() - t0) / 1e9);
		log_kv(LOG_INFO, "tsdb", "WAL checkpoint written", "upto_segment", segs,
		    "duration", dur, (char *)NULL);
	}
	return 0;
}

int
tsdb_db_checkpoint(struct tsdb_db *db)
{
	int rc;

	pthread_mutex_lock(&db->mu);
	rc = checkpoint_locked(db);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/* --- blocks ---------------------------------------------------------------------------------- */

static int
cmp_block(const void *a, const void *b)
{
	const struct block_meta *x = block_meta(*(struct block *const *)a);
	const struct block_meta *y = block_meta(*(struct block *const *)b);

	if (x->mint != y->mint)
		return x->mint < y->mint ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int
cmp_block_id(const void *a, const void *b)
{
	return strcmp(block_meta(*(struct block *const *)a)->id,
	    block_meta(*(struct block *const *)b)->id);
}

static bool
is_loaded(const struct tsdb_db *db, const char *id)
{
	size_t i;

	for (i = 0; i < db->nblocks; i++)
		if (strcmp(block_meta(db->blocks[i])->id, id) == 0)
			return true;
	return false;
}

static bool
is_bad(const struct tsdb_db *db, const char *id)
{
	size_t i;

	for (i = 0; i < db->nbad; i++)
		if (strcmp(db->bad[i], id) == 0)
			return true;
	return false;
}

/* add_block inserts b (taking over its reference) into the list, bmu held
 * for writing, and drops the blocks it replaces. */
static void
add_block_locked(struct tsdb_db *db, struct block *b)
{
	const struct block_meta *m = block_meta(b);
	size_t i, k;
	uint32_t p;

	db->blocks = mem_realloc(db->blocks, (db->nblocks + 1) * sizeof *db->blocks);
	db->blocks[db->nblocks++] = b;
	for (p = 0; p < m->nparents; p++) {
		for (i = k = 0; i < db->nblocks; i++) {
			if (strcmp(block_meta(db->blocks[i])->id, m->parents[p]) == 0) {
				block_delete(db->blocks[i]);
				block_put(db->blocks[i]);
				continue;
			}
			db->blocks[k++] = db->blocks[i];
		}
		db->nblocks = k;
	}
	qsort(db->blocks, db->nblocks, sizeof *db->blocks, cmp_block);
}

/* scan_blocks loads the block directories not loaded yet (at open and on
 * every maintenance pass, so blocks an import drops in are picked up).
 * Damaged ones are skipped with a message, once. Returns how many loaded. */
static size_t
scan_blocks(struct tsdb_db *db, bool at_open)
{
	DIR *d = opendir(db->dir);
	struct dirent *de;
	struct block **found = NULL;
	size_t nfound = 0, i;

	if (d == NULL) {
		pthread_mutex_lock(&db->smu);
		db->st.reloads_failed++;
		pthread_mutex_unlock(&db->smu);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		char *p;
		char err[512];
		struct block *b;
		size_t len = strlen(de->d_name);
		bool loaded;

		if (at_open && len > BLOCK_ID_LEN && de->d_name[BLOCK_ID_LEN] == '.' &&
		    (strcmp(de->d_name + BLOCK_ID_LEN, ".tmp") == 0 ||
		    strcmp(de->d_name + BLOCK_ID_LEN, ".deleting") == 0)) {
			/* a block being written or deleted when the process died */
			p = join(db->dir, de->d_name);
			log_kv(LOG_INFO, "tsdb", "removing unfinished block directory", "dir", p,
			    (char *)NULL);
			block_rmdir(p);
			mem_free(p);
			continue;
		}
		if (!block_is_id(de->d_name))
			continue;
		pthread_rwlock_rdlock(&db->bmu);
		loaded = is_loaded(db, de->d_name) || is_bad(db, de->d_name);
		pthread_rwlock_unlock(&db->bmu);
		if (loaded)
			continue;
		p = join(db->dir, de->d_name);
		b = block_open(p, err, sizeof err);
		if (b == NULL) {
			log_kv(LOG_ERROR, "tsdb", "skipping block directory", "dir", p, "err", err,
			    (char *)NULL);
			db->bad = mem_realloc(db->bad, (db->nbad + 1) * sizeof *db->bad);
			memcpy(db->bad[db->nbad], de->d_name, BLOCK_ID_LEN);	/* block_is_id */
			db->bad[db->nbad++][BLOCK_ID_LEN] = '\0';
			pthread_mutex_lock(&db->smu);
			db->st.corrupt_blocks++;
			pthread_mutex_unlock(&db->smu);
		} else {
			found = mem_realloc(found, (nfound + 1) * sizeof *found);
			found[nfound++] = b;
		}
		mem_free(p);
	}
	closedir(d);
	/* parents first, so a compacted block replaces the ones it merged */
	if (nfound > 1)
		qsort(found, nfound, sizeof *found, cmp_block_id);
	pthread_rwlock_wrlock(&db->bmu);
	for (i = 0; i < nfound; i++) {
		size_t j;
		bool superseded = false;

		/* a block some loaded block replaces is left over from a crash */
		for (j = 0; j < db->nblocks && !superseded; j++) {
			const struct block_meta *m = block_meta(db->blocks[j]);
			uint32_t k;

			for (k = 0; k < m->nparents; k++)
				if (strcmp(m->parents[k], block_meta(found[i])->id) == 0)
					superseded = true;
		}
		for (j = i + 1; j < nfound && !superseded; j++) {
			const struct block_meta *m = block_meta(found[j]);
			uint32_t k;

			for (k = 0; k < m->nparents; k++)
				if (strcmp(m->parents[k], block_meta(found[i])->id) == 0)
					superseded = true;
		}
		if (superseded) {
			block_delete(found[i]);
			block_put(found[i]);
			continue;
		}
		add_block_locked(db, found[i]);
	}
	pthread_rwlock_unlock(&db->bmu);
	mem_free(found);
	if (nfound > 0) {
		pthread_mutex_lock(&db->smu);
		db->st.reloads++;
		pthread_mutex_unlock(&db->smu);
	}
	return nfound;
}

/* blocks_for returns references to the blocks overlapping [mint, maxt],
 * oldest id first (so newer blocks get higher priorities). */
static size_t
blocks_for(struct tsdb_db *db, int64_t mint, int64_t maxt, struct block ***out)
{
	size_t i, n = 0;

	pthread_rwlock_rdlock(&db->bmu);
	*out = mem_alloc((db->nblocks + 1) * sizeof **out);
	for (i = 0; i < db->nblocks; i++) {
		const struct block_meta *m = block_meta(db->blocks[i]);

		if (m->mint <= maxt && m->maxt > mint)
			(*out)[n++] = block_ref(db->blocks[i]);
	}
	pthread_rwlock_unlock(&db->bmu);
	qsort(*out, n, sizeof **out, cmp_block_id);
	return n;
}

static void
blocks_put(struct block **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		block_put(v[i]);
	mem_free(v);
}

static int64_t
align_down(int64_t t, int64_t r)
{
	int64_t q = t / r;

	if (t < 0 && q * r != t)
		q--;
	return q * r;
}

/* --- persisting the head ---------------------------------------------------------------------- */

struct cut_series {
	struct labels *ls;
	uint32_t id;
	struct tsdb_dump_chunk *c;	/* references of their own */
	uint32_t nc;
	struct tsdb_ooo_sample *ooo;
	uint32_t nooo;
};

struct cut_ctx {
	struct cut_series *v;
	size_t n, cap;
	int64_t range;
	int64_t *starts;	/* block ranges touched, unsorted, unique */
	size_t nstarts, capstarts;
};

static void
cut_range(struct cut_ctx *c, int64_t t)
{
	int64_t s = align_down(t, c->range);
	size_t i;

	for (i = 0; i < c->nstarts; i++)
		if (c->starts[i] == s)
			return;
	if (c->nstarts == c->capstarts) {
		c->capstarts = c->capstarts ? c->capstarts * 2 : 4;
		c->starts = mem_realloc(c->starts, c->capstarts * sizeof *c->starts);
	}
	c->starts[c->nstarts++] = s;
}

static void
cut_collect(void *arg, const struct tsdb_series_dump *d)
{
	struct cut_ctx *c = arg;
	struct cut_series *s;
	uint32_t i;
	int64_t last = INT64_MIN;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->v = mem_realloc(c->v, c->cap * sizeof *c->v);
	}
	s = &c->v[c->n++];
	s->ls = labels_ref(d->ls);
	s->id = d->id;
	s->nc = d->nc;
	s->c = mem_alloc((d->nc + 1) * sizeof *s->c);
	for (i = 0; i < d->nc; i++) {
		int64_t t;

		s->c[i] = d->c[i];
		if (s->c[i].c != NULL)
			chunk_ref(s->c[i].c);
		else
			hchunks_file_ref(s->c[i].f);
		for (t = align_down(d->c[i].mint, c->range); t <= d->c[i].maxt; t += c->range)
			cut_range(c, t);
	}
	s->nooo = d->nooo;
	s->ooo = mem_alloc((d->nooo + 1) * sizeof *s->ooo);
	if (d->nooo > 0)
		memcpy(s->ooo, d->ooo, d->nooo * sizeof *s->ooo);
	for (i = 0; i < d->nooo; i++) {
		if (align_down(d->ooo[i].t, c->range) != last) {
			last = align_down(d->ooo[i].t, c->range);
			cut_range(c, d->ooo[i].t);
		}
	}
}

static int
cmp_cut(const void *a, const void *b)
{
	return labels_compare(((const struct cut_series *)a)->ls, ((const struct cut_series *)b)->ls);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* series_samples gathers s's samples in [lo, hi) through an iterator (in
 * order and out of order merged, one per timestamp). */
static size_t
series_samples(const struct cut_series *s, int64_t lo, int64_t hi, struct tsdb_iter *it,
    struct tsdb_sample **v, size_t *cap)
{
	uint32_t i, a, b;
	size_t n = 0;
	int64_t t;
	double val;

	iter_clear(it);
	it->mint = lo;
	it->maxt = hi - 1;
	for (i = 0; i < s->nc; i++)
		if (s->c[i].maxt >= lo && s->c[i].mint < hi)
			iter_add_dump(it, s->id, &s->c[i], 2);
	for (a = 0; a < s->nooo && s->ooo[a].t < lo; a++)
		;
	for (b = a; b < s->nooo && s->ooo[b].t < hi; b++)
		;
	if (b > a) {
		struct tsdb_sample *o = mem_alloc((b - a) * sizeof *o);

		for (i = a; i < b; i++) {
			o[i - a].t = s->ooo[i].t;
			o[i - a].v = s->ooo[i].v;
		}
		iter_add_array(it, o, b - a, 1);
	}
	while (tsdb_iter_next(it, &t, &val)) {
		if (n == *cap) {
			*cap = *cap ? *cap * 2 : 512;
			*v = mem_realloc(*v, *cap * sizeof **v);
		}
		(*v)[n].t = t;
		(*v)[n++].v = it->v;
	}
	return n;
}

/* persist_locked writes the head's in-order chunks ending before maxt and
 * its out-of-order samples before ooo_maxt to blocks, then truncates them
 * from the head (db->mu held). Returns the number of blocks written, or -1. */
static int
persist_locked(struct tsdb_db *db, int64_t maxt, int64_t ooo_maxt, const char *why)
{
	struct cut_ctx c;
	struct tsdb_iter it;
	struct tsdb_sample *v = NULL;
	size_t vcap = 0, i, r;
	uint32_t gen;
	int written = 0, rc = 0;
	int64_t t0 = time_mono_ns();
	char err[512];

	memset(&c, 0, sizeof c);
	c.range = db->o.block_range_ms;
	gen = tsdb_head_roll(db->head, maxt);
	tsdb_head_dump(db->head, maxt, ooo_maxt, gen, cut_collect, &c);
	if (c.n > 1)
		qsort(c.v, c.n, sizeof *c.v, cmp_cut);
	if (c.nstarts > 1)
		qsort(c.starts, c.nstarts, sizeof *c.starts, cmp_i64);
	iter_init(&it, INT64_MIN, INT64_MAX);
	for (r = 0; r < c.nstarts && rc == 0; r++) {
		int64_t lo = c.starts[r], hi = lo + c.range;
		struct block_writer *w = block_writer_new(db->dir, lo, hi, 1, err, sizeof err);
		char id[BLOCK_ID_LEN + 1];

		if (w == NULL) {
			rc = -1;
			break;
		}
		for (i = 0; i < c.n && rc == 0; i++) {
			size_t n = series_samples(&c.v[i], lo, hi, &it, &v, &vcap);

			if (n > 0 && block_writer_add(w, c.v[i].ls, v, n, err, sizeof err) < 0)
				rc = -1;
		}
		if (rc < 0) {
			block_writer_abort(w);
			break;
		}
		rc = block_writer_finish(w, id, err, sizeof err);
		if (rc == 1) {
			rc = 0;
			continue;
		}
		if (rc == 0) {
			char *p = join(db->dir, id);
			struct block *b = block_open(p, err, sizeof err);

			mem_free(p);
			if (b == NULL) {
				rc = -1;
				break;
			}
			pthread_rwlock_wrlock(&db->bmu);
			add_block_locked(db, b);
			pthread_rwlock_unlock(&db->bmu);
			written++;
		}
	}
	iter_release(&it);
	mem_free(v);
	for (i = 0; i < c.n; i++) {
		uint32_t k;

		for (k = 0; k < c.v[i].nc; k++) {
			chunk_put(c.v[i].c[k].c);
			hchunks_put(c.v[i].c[k].f);
		}
		mem_free(c.v[i].c);
		mem_free(c.v[i].ooo);
		labels_free(c.v[i].ls);
	}
	mem_free(c.v);
	mem_free(c.starts);
	pthread_mutex_lock(&db->smu);
	if (maxt != INT64_MIN) {
		db->st.head_truncations++;
		if (rc < 0)
			db->st.head_truncations_failed++;
	} else if (rc == 0) {
		db->st.ooo_flushes++;
	}
	pthread_mutex_unlock(&db->smu);
	if (rc < 0) {
		log_kv(LOG_ERROR, "tsdb", "writing the head to a block failed; retried later",
		    "reason", why, "err", err, (char *)NULL);
		return -1;
	}
	/* the blocks are loaded: the head can let go */
	tsdb_head_truncate(db->head, maxt, ooo_maxt, gen);
	if (log_enabled(LOG_INFO)) {
		char nb[16], dur[32], ns[32];

		snprintf(nb, sizeof nb, "%d", written);
		snprintf(ns, sizeof ns, "%zu", c.n);
		snprintf(dur, sizeof dur, "%.3fs", (double)(time_mono_ns() - t0) / 1e9);
		log_kv(LOG_INFO, "tsdb", "head persisted to blocks", "reason", why, "blocks", nb,
		    "series", ns, "duration", dur, (char *)NULL);
	}
	return written;
}

/* --- compaction ------------------------------------------------------------------------------ */

/* plan picks the blocks to compact next (Prometheus' leveled planner):
 * overlapping blocks first; else, leaving out the newest block, the first
 * group of blocks inside one aligned range of a larger size that fills it
 * or lies before the newest. Fills idx (indices into bs, sorted by mint)
 * and returns how many, 0 for none. */
static size_t
plan(const struct tsdb_db *db, struct block *const *bs, size_t n, size_t *idx)
{
	size_t i, j, k, r;
	int64_t gmax, high;

	/* overlapping blocks */
	for (i = 0; i + 1 < n; i = j) {
		gmax = block_meta(bs[i])->maxt;
		for (j = i + 1; j < n && block_meta(bs[j])->mint < gmax; j++)
			if (block_meta(bs[j])->maxt > gmax)
				gmax = block_meta(bs[j])->maxt;
		if (j - i > 1) {
			for (k = i; k < j; k++)
				idx[k - i] = k;
			return j - i;
		}
	}
	if (n < 2)
		return 0;
	n--;	/* not the newest block */
	high = block_meta(bs[n - 1])->mint;
	for (r = 1; r < db->nranges; r++) {
		int64_t tr = db->ranges[r];

		for (i = 0; i < n;) {
			int64_t t0 = align_down(block_meta(bs[i])->mint, tr), mint, maxt;

			if (block_meta(bs[i])->maxt > t0 + tr) {
				i++;
				continue;
			}
			for (j = i; j < n && block_meta(bs[j])->maxt <= t0 + tr; j++)
				;
			mint = block_meta(bs[i])->mint;
			maxt = block_meta(bs[j - 1])->maxt;
			if (j - i > 1 && (maxt - mint == tr || maxt <= high)) {
				for (k = i; k < j; k++)
					idx[k - i] = k;
				return j - i;
			}
			i = j;
		}
	}
	return 0;
}

struct cursor {
	struct block *b;
	struct postings_ids refs;
	size_t pos;
	struct labels *ls;	/* labels of refs.v[pos], NULL at the end */
};

static void
cursor_load(struct cursor *c)
{
	labels_free(c->ls);
	c->ls = NULL;
	while (c->pos < c->refs.n && (c->ls = block_labels(c->b, c->refs.v[c->pos])) == NULL)
		c->pos++;
}

/* compact_locked merges group (n blocks) into one block (db->mu held). */
static int
compact_locked(struct tsdb_db *db, struct block **group, size_t n)
{
	struct cursor *cur = mem_calloc(n, sizeof *cur);
	struct block_writer *w;
	struct tsdb_iter it;
	struct tsdb_sample *v = NULL;
	size_t vcap = 0, i;
	int64_t mint = INT64_MAX, maxt = INT64_MIN, t0 = time_mono_ns();
	uint32_t level = 0;
	char err[512], id[BLOCK_ID_LEN + 1];
	int rc = 0;

	qsort(group, n, sizeof *group, cmp_block_id);	/* newer ids win */
	for (i = 0; i < n; i++) {
		const struct block_meta *m = block_meta(group[i]);

		if (m->mint < mint)
			mint = m->mint;
		if (m->maxt > maxt)
			maxt = m->maxt;
		if (m->level > level)
			level = m->level;
	}
	w = block_writer_new(db->dir, mint, maxt, level + 1, err, sizeof err);
	if (w == NULL) {
		mem_free(cur);
		goto fail;
	}
	for (i = 0; i < n; i++) {
		block_writer_parent(w, block_meta(group[i])->id);
		cur[i].b = group[i];
		block_all(group[i], &cur[i].refs);
		cursor_load(&cur[i]);
	}
	iter_init(&it, mint, maxt - 1);
	for (;;) {
		struct labels *min = NULL;
		size_t nv = 0;
		int64_t t;
		double val;

		for (i = 0; i < n; i++)
			if (cur[i].ls != NULL && (min == NULL || labels_compare(cur[i].ls, min) < 0))
				min = cur[i].ls;
		if (min == NULL)
			break;
		min = labels_ref(min);
		iter_clear(&it);
		it.mint = mint;
		it.maxt = maxt - 1;
		for (i = 0; i < n; i++) {
			if (cur[i].ls == NULL || !labels_equal(cur[i].ls, min))
				continue;
			block_series_sources(cur[i].b, cur[i].refs.v[cur[i].pos], &it, (uint32_t)i + 1);
			cur[i].pos++;
			cursor_load(&cur[i]);
		}
		while (tsdb_iter_next(&it, &t, &val)) {
			if (nv == vcap) {
				vcap = vcap ? vcap * 2 : 512;
				v = mem_realloc(v, vcap * sizeof *v);
			}
			v[nv].t = t;
			v[nv++].v = it.v;
		}
		if (nv > 0 && block_writer_add(w, min, v, nv, err, sizeof err) < 0)
			rc = -1;
		labels_free(min);
		if (rc < 0)
			break;
	}
	iter_release(&it);
	mem_free(v);
	for (i = 0; i < n; i++) {
		labels_free(cur[i].ls);
		postings_ids_free(&cur[i].refs);
	}
	mem_free(cur);
	if (rc < 0) {
		block_writer_abort(w);
		goto fail;
	}
	rc = block_writer_finish(w, id, err, sizeof err);
	if (rc < 0)
		goto fail;
	pthread_rwlock_wrlock(&db->bmu);
	if (rc == 0) {
		char *p = join(db->dir, id);
		struct block *b = block_open(p, err, sizeof err);

		mem_free(p);
		if (b == NULL) {
			pthread_rwlock_unlock(&db->bmu);
			goto fail;
		}
		add_block_locked(db, b);	/* drops the parents */
	} else {
		/* all empty: the parents just go */
		size_t j, k;

		for (i = 0; i < n; i++) {
			for (j = k = 0; j < db->nblocks; j++) {
				if (db->blocks[j] == group[i]) {
					block_delete(group[i]);
					block_put(group[i]);
					continue;
				}
				db->blocks[k++] = db->blocks[j];
			}
			db->nblocks = k;
		}
	}
	pthread_rwlock_unlock(&db->bmu);
	pthread_mutex_lock(&db->smu);
	db->st.compactions++;
	pthread_mutex_unlock(&db->smu);
	if (log_enabled(LOG_INFO)) {
		char nb[32], dur[32];

		snprintf(nb, sizeof nb, "%zu", n);
		snprintf(dur, sizeof dur, "%.3fs", (double)(time_mono_ns() - t0) / 1e9);
		log_kv(LOG_INFO, "tsdb", "compacted blocks", "blocks", nb, "into", rc == 0 ? id : "(empty)",
		    "duration", dur, (char *)NULL);
	}
	return 0;
fail:
	pthread_mutex_lock(&db->smu);
	db->st.compactions_failed++;
	pthread_mutex_unlock(&db->smu);
	log_kv(LOG_ERROR, "tsdb", "compaction failed", "err", err, (char *)NULL);
	return -1;
}

/* compact_all compacts until the planner has nothing left. */
static int
compact_all(struct tsdb_db *db)
{
	int rounds;

	for (rounds = 0; rounds < 100; rounds++) {
		struct block **bs, **group;
		size_t n, i, ng, *idx;
		int rc;

		pthread_rwlock_rdlock(&db->bmu);
		n = db->nblocks;
		bs = mem_alloc((n + 1) * sizeof *bs);
		for (i = 0; i < n; i++)
			bs[i] = block_ref(db->blocks[i]);
		pthread_rwlock_unlock(&db->bmu);
		idx = mem_alloc((n + 1) * sizeof *idx);
		ng = plan(db, bs, n, idx);
		group = mem_alloc((ng + 1) * sizeof *group);
		for (i = 0; i < ng; i++)
			group[i] = bs[idx[i]];
		rc = ng > 1 ? compact_locked(db, group, ng) : 1;
		mem_free(group);
		mem_free(idx);
		blocks_put(bs, n);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
	return 0;
}

/* --- retention ------------------------------------------------------------------------------ */

static void
retention(struct tsdb_db *db)
{
	struct wal_stats ws;
	size_t i, k, cut = SIZE_MAX;
	uint64_t total;
	bool by_time = false, by_size = false;

	wal_stats(db->wal, &ws);
	pthread_rwlock_wrlock(&db->bmu);
	if (db->nblocks == 0) {
		pthread_rwlock_unlock(&db->bmu);
		return;
	}
	/* newest first: blocks are sorted by mint; maxt order is the same for
	 * non-overlapping blocks, and overlaps are compacted away first */
	if (db->o.retention_ms > 0) {
		int64_t newest = block_meta(db->blocks[db->nblocks - 1])->maxt;

		for (i = db->nblocks - 1; i-- > 0;) {
			if (newest - block_meta(db->blocks[i])->maxt > db->o.retention_ms) {
				cut = i + 1;
				by_time = true;
				break;
			}
		}
	}
	if (db->o.retention_bytes > 0) {
		struct hchunks_stats hst;

		/* as Prometheus: the WAL and the head's chunk files count */
		hchunks_stats(db->hc, &hst);
		total = ws.storage_bytes + hst.bytes;
		for (i = db->nblocks; i-- > 0;) {
			total += block_bytes(db->blocks[i]);
			if (total > (uint64_t)db->o.retention_bytes) {
				if (cut == SIZE_MAX || i + 1 > cut) {
					cut = i + 1;
					by_size = true;
					by_time = false;
				}
				break;
			}
		}
	}
	if (cut == SIZE_MAX) {
		pthread_rwlock_unlock(&db->bmu);
		return;
	}
	for (i = 0; i < cut; i++) {
		log_kv(LOG_INFO, "tsdb", "deleting block beyond retention", "block",
		    block_meta(db->blocks[i])->id, "by", by_size ? "size" : "time", (char *)NULL);
		block_delete(db->blocks[i]);
		block_put(db->blocks[i]);
	}
	for (i = cut, k = 0; i < db->nblocks; i++)
		db->blocks[k++] = db->blocks[i];
	db->nblocks = k;
	pthread_rwlock_unlock(&db->bmu);
	pthread_mutex_lock(&db->smu);
	if (by_time)
		db->st.retention_time++;
	if (by_size)
		db->st.retention_size++;
	pthread_mutex_unlock(&db->smu);
}

/* --- commit observer ------------------------------------------------------------------ */

void
tsdb_db_set_observer(struct tsdb_db *db, tsdb_commit_observer_fn fn, void *arg)
{
	tsdb_head_set_observer(db->head, fn, arg);
}

/* --- maintenance ---------------------------------------------------------------------- */

int
tsdb_db_maintain(struct tsdb_db *db)
{
	struct tsdb_head_stats hs;
	struct wal_stats ws;
	int64_t r = db->o.block_range_ms;
	bool persisted = false;
	uint64_t tail;
	int rc = 0, i;

	pthread_mutex_lock(&db->mu);
	(void)scan_blocks(db, false);
	/* cut the head's oldest block range once the head spans 1.5 ranges */
	for (i = 0; i < 100; i++) {
		int64_t t1;

		tsdb_head_stats(db->head, &hs);
		if (hs.mint_inorder == INT64_MAX || hs.maxt == INT64_MIN ||
		    hs.maxt - hs.mint_inorder <= r / 2 * 3)
			break;
		t1 = align_down(hs.mint_inorder, r) + r;
		if (persist_locked(db, t1, t1, "head cut") < 0) {
			rc = -1;
			break;
		}
		persisted = true;
	}
	tsdb_head_stats(db->head, &hs);
	if (rc == 0 && hs.ooo_samples > OOO_FLUSH_SAMPLES) {
		if (persist_locked(db, INT64_MIN, INT64_MAX, "out-of-order flush") < 0)
			rc = -1;
		else
			persisted = true;
	}
	if (compact_all(db) < 0)
		rc = -1;
	retention(db);
	wal_stats(db->wal, &ws);
	/* checkpoint after a cut, or once the segments after the checkpoint
	 * cost more to replay than half the checkpoint's load */
	tail = ws.storage_bytes - ws.checkpoint_bytes;
	if (persisted || (tail > CKPT_MIN_BYTES && tail > ws.checkpoint_bytes / 2)) {
		if (checkpoint_locked(db) < 0)
			rc = -1;
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

static void *
maintain_main(void *arg)
{
	struct tsdb_db *db = arg;

	pthread_mutex_lock(&db->smu);
	while (!db->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += MAINTAIN_EVERY_MS / 1000;
		pthread_cond_timedwait(&db->cv, &db->smu, &ts);
		if (db->stop)
			break;
		pthread_mutex_unlock(&db->smu);
		(void)tsdb_db_maintain(db);
		pthread_mutex_lock(&db->smu);
	}
	pthread_mutex_unlock(&db->smu);
	return NULL;
}

/* --- open and close ----------------------------------------------------------------------- */

static void
free_blocks(struct tsdb_db *db)
{
	size_t i;

	for (i = 0; i < db->nblocks; i++)
		block_put(db->blocks[i]);
	mem_free(db->blocks);
	mem_free(db->bad);
	db->blocks = NULL;
	db->nblocks = 0;
}

/* check_foreign refuses a directory holding another program's data: a
 * Prometheus data directory has a wal/ of pages without our magic (wal.c
 * refuses it) or chunks_head/ beside it. */
static int
check_foreign(struct tsdb_db *db, char *err, size_t errlen)
{
	char *p = join(db->dir, "chunks_head");
	struct stat sb;
	int rc = 0;

	if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s holds a Prometheus head (%s): not a strata data "
		    "directory; import its data with promtool/strata-tool instead", db->dir, p);
		rc = -1;
	}
	mem_free(p);
	return rc;
}

struct tsdb_db *
tsdb_db_open(const struct tsdb_db_opts *o, char *err, size_t errlen)
{
	struct tsdb_db *db;
	struct tsdb_head_opts ho;
	struct tsdb_head_hooks hk;
	struct wal_opts wo;
	struct replay_ctx rc;
	struct tsdb_replay_stats rs;
	int64_t t0 = time_mono_ns();

	if (o == NULL || o->path == NULL || o->path[0] == '\0') {
		snprintf(err, errlen, "tsdb: no data directory");
		return NULL;
	}
	if (o->retention_ms < 0 || o->retention_bytes < 0 || o->ooo_window_ms < 0 ||
	    o->block_range_ms < 0) {
		snprintf(err, errlen, "tsdb: negative retention, window or block range");
		return NULL;
	}
	db = mem_calloc(1, sizeof *db);
	db->o = *o;
	db->lockfd = -1;
	if (db->o.block_range_ms == 0)
		db->o.block_range_ms = TSDB_DEFAULT_CHUNK_RANGE;
	db->dir = mem_strdup(o->path);
	db->o.path = db->dir;
	db->waldir = join(db->dir, "wal");
	pthread_mutex_init(&db->mu, NULL);
	pthread_mutex_init(&db->smu, NULL);
	pthread_cond_init(&db->cv, NULL);
	pthread_rwlock_init(&db->bmu, NULL);
	db->ranges[0] = db->o.block_range_ms;
	db->nranges = 1;
	while (db->nranges < NRANGES) {
		int64_t next = db->ranges[db->nranges - 1] * 3;

		/* Prometheus: no block longer than a tenth of the retention */
		if (db->o.retention_ms > 0 && next > db->o.retention_ms / 10)
			break;
		db->ranges[db->nranges++] = next;
	}
	if (mkdir_p(db->dir, err, errlen) < 0 || take_lock(db, err, errlen) < 0)
		goto fail;
	if (check_foreign(db, err, errlen) < 0)
		goto fail;
	memset(&ho, 0, sizeof ho);
	ho.chunk_range = db->o.block_range_ms;
	ho.ooo_window = db->o.ooo_window_ms;
	ho.bounded = true;
	if ((db->head = tsdb_head_new(&ho, err, errlen)) == NULL)
		goto fail;
	{
		char *p = join(db->dir, "head_chunks");

		db->hc = hchunks_open(p, err, errlen);
		mem_free(p);
		if (db->hc == NULL)
			goto fail;
		tsdb_head_set_chunk_store(db->head, db->hc);
	}
	(void)scan_blocks(db, true);
	if (db->nblocks > 0) {
		int64_t maxt = INT64_MIN;
		size_t i;

		for (i = 0; i < db->nblocks; i++)
			if (block_meta(db->blocks[i])->maxt > maxt)
				maxt = block_meta(db->blocks[i])->maxt;
		/* in-order samples start where the blocks end */
		(void)tsdb_head_roll(db->head, maxt);
	}
	memset(&wo, 0, sizeof wo);
	wo.segment_size = db->o.wal_segment_size;
	wo.sync = db->o.wal_sync;
	wo.sync_interval_ms = db->o.wal_sync_ms;
	memset(&rc, 0, sizeof rc);
	rc.r = tsdb_head_replay_begin(db->head);
	db->wal = wal_open(db->waldir, &wo, replay_record, &rc, err, errlen);
	tsdb_head_replay_end(rc.r, &rs);
	wal_snap_free(&rc.snap);
	mem_free(rc.v);
	if (db->wal == NULL)
		goto fail;
	/* head chunk files no replayed chunk lives in: written after the
	 * checkpoint (replay wrote their chunks again) or left by a crash */
	hchunks_collect(db->hc);
	if (rc.bad > 0 || rs.unknown_refs > 0) {
		char b[32], u[32];

		snprintf(b, sizeof b, "%" PRIu64, rc.bad);
		snprintf(u, sizeof u, "%" PRIu64, rs.unknown_refs);
		log_kv(LOG_WARN, "tsdb", "WAL replay skipped records", "malformed_records", b,
		    "samples_of_unknown_series", u, (char *)NULL);
		if (rc.bad > 0)
			(void)wal_keep_checkpoint(db->wal);
	}
	db->st.replay_seconds = (double)(time_mono_ns() - t0) / 1e9;
	db->st.replay_unknown_refs = rs.unknown_refs;
	{
		struct wal_stats ws;
		char secs[32], ser[32], smp[32];

		wal_stats(db->wal, &ws);
		db->wal_at_ckpt = 0;
		db->replayed_tail = ws.replayed_bytes > 0;
		snprintf(secs, sizeof secs, "%.3fs", db->st.replay_seconds);
		snprintf(ser, sizeof ser, "%" PRIu64, rs.series);
		snprintf(smp, sizeof smp, "%" PRIu64, rs.samples + rs.ooo);
		log_kv(LOG_INFO, "tsdb", "WAL replay completed", "dir", db->waldir,
		    "duration", secs, "series", ser, "samples", smp, (char *)NULL);
	}
	hk.log = hook_log;
	hk.wait = hook_wait;
	hk.roll = hook_roll;
	hk.arg = db;
	tsdb_head_set_hooks(db->head, &hk);
	db->st.retention_limit_bytes = (uint64_t)db->o.retention_bytes;
	if (!db->o.no_maintenance) {
		if (pthread_create(&db->bg, NULL, maintain_main, db) != 0) {
			snprintf(err, errlen, "tsdb: maintenance thread: %s", strerror(errno));
			goto fail;
		}
		db->bg_started = true;
	}
	return db;
fail:
	wal_close(db->wal);
	tsdb_head_free(db->head);
	hchunks_close(db->hc);
	free_blocks(db);
	if (db->lockfd >= 0)
		close(db->lockfd);
	pthread_rwlock_destroy(&db->bmu);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->smu);
	pthread_cond_destroy(&db->cv);
	mem_free(db->waldir);
	mem_free(db->dir);
	mem_free(db);
	return NULL;
}

void
tsdb_db_close(struct tsdb_db *db)
{
	struct wal_stats ws;

	if (db == NULL)
		return;
	pthread_mutex_lock(&db->smu);
	db->stop = true;
	pthread_cond_broadcast(&db->cv);
	pthread_mutex_unlock(&db->smu);
	if (db->bg_started)
		pthread_join(db->bg, NULL);
	/* a final checkpoint makes the next start a load, not a replay */
	wal_stats(db->wal, &ws);
	if (ws.bytes_written > db->wal_at_ckpt || db->replayed_tail)
		(void)tsdb_db_checkpoint(db);
	tsdb_head_set_hooks(db->head, NULL);
	wal_close(db->wal);
	tsdb_head_free(db->head);
	hchunks_close(db->hc);
	free_blocks(db);
	if (db->lockfd >= 0)
		close(db->lockfd);
	pthread_rwlock_destroy(&db->bmu);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->smu);
	pthread_cond_destroy(&db->cv);
	mem_free(db->waldir);
	mem_free(db->dir);
	mem_free(db);
}

struct tsdb_head *
tsdb_db_head(struct tsdb_db *db)
{
	return db->head;
}

/* --- reads ---------------------------------------------------------------------------------- */

struct tsdb_series_set *
tsdb_db_select(struct tsdb_db *db, struct matcher *const *ms, size_t n, int64_t mint,
    int64_t maxt)
{
	struct tsdb_series_set *ss = sset_new(db->head, mint, maxt);
	struct block **bs;
	size_t nb, i, j;

	if (n == 0 || mint > maxt) {
		sset_finish(ss);
		return ss;
	}
	nb = blocks_for(db, mint, maxt, &bs);
	for (i = 0; i < nb; i++) {
		struct postings_ids ids;
		uint32_t bi = sset_add_block(ss, bs[i]);

		block_select(bs[i], ms, n, &ids);
		for (j = 0; j < ids.n; j++) {
			struct labels *ls = block_labels(bs[i], ids.v[j]);

			if (ls != NULL)
				sset_add(ss, ls, false, 0, bi, ids.v[j]);
		}
		postings_ids_free(&ids);
	}
	blocks_put(bs, nb);
	tsdb_head_select_into(db->head, ms, n, mint, maxt, ss);
	sset_finish(ss);
	return ss;
}

static int
cmp_latest(const void *a, const void *b)
{
	return labels_compare(((const struct tsdb_latest *)a)->ls, ((const struct tsdb_latest *)b)->ls);
}

int
tsdb_db_latest(struct tsdb_db *db, struct matcher *const *ms, size_t n, int64_t mint,
    struct tsdb_latest **out, size_t *nout)
{
	struct tsdb_latest *h, *b = NULL, *m;
	size_t nh, nbl = 0, cap = 0, i, j, k;
	struct tsdb_series_set *ss;
	struct block **bs;
	size_t nb;

	tsdb_head_latest(db->head, ms, n, mint, &h, &nh);
	nb = n > 0 ? blocks_for(db, mint, INT64_MAX, &bs) : 0;
	if (nb == 0) {
		if (n > 0)
			blocks_put(bs, 0);
		*out = h;
		*nout = nh;
		return 0;
	}
	/* series in blocks that end after mint: their newest sample there */
	ss = sset_new(NULL, mint, INT64_MAX);
	for (i = 0; i < nb; i++) {
		struct postings_ids ids;
		uint32_t bi = sset_add_block(ss, bs[i]);

		block_select(bs[i], ms, n, &ids);
		for (j = 0; j < ids.n; j++) {
			struct labels *ls = block_labels(bs[i], ids.v[j]);

			if (ls != NULL)
				sset_add(ss, ls, false, 0, bi, ids.v[j]);
		}
		postings_ids_free(&ids);
	}
	blocks_put(bs, nb);
	sset_finish(ss);
	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		int64_t t, lt = INT64_MIN;
		double v, lv = 0;

		while (tsdb_iter_next(it, &t, &v)) {
			lt = t;
			lv = v;
		}
		if (lt == INT64_MIN)
			continue;
		if (nbl == cap) {
			cap = cap ? cap * 2 : 64;
			b = mem_realloc(b, cap * sizeof *b);
		}
		b[nbl].ls = labels_ref((struct labels *)tsdb_series_set_labels(ss));
		b[nbl].ref = 0;
		b[nbl].t = lt;
		b[nbl++].v = lv;
	}
	tsdb_series_set_free(ss);
	/* merge the two sorted lists, the newer sample of a series winning */
	m = mem_alloc((nh + nbl + 1) * sizeof *m);
	for (i = j = k = 0; i < nh || j < nbl;) {
		int c = i == nh ? 1 : j == nbl ? -1 : labels_compare(h[i].ls, b[j].ls);

		if (c < 0) {
			m[k++] = h[i++];
		} else if (c > 0) {
			m[k++] = b[j++];
		} else {
			if (b[j].t > h[i].t) {
				b[j].ref = h[i].ref;
				labels_free(h[i].ls);
				m[k++] = b[j];
			} else {
				labels_free(b[j].ls);
				m[k++] = h[i];
			}
			i++;
			j++;
		}
	}
	mem_free(h);
	mem_free(b);
	*out = m;
	*nout = k;
	(void)cmp_latest;
	return 0;
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* strings_add appends the strings of add (references moved) to out. */
static void
strings_add(struct tsdb_strings *out, size_t *cap, struct tsdb_strings *add)
{
	if (out->n + add->n > *cap) {
		*cap = (out->n + add->n) * 2 + 16;
		out->v = mem_realloc(out->v, *cap * sizeof *out->v);
	}
	if (add->n > 0)
		memcpy(out->v + out->n, add->v, add->n * sizeof *add->v);
	out->n += add->n;
	mem_free(add->v);
	add->v = NULL;
	add->n = 0;
}

static void
strings_unique(struct tsdb_strings *out)
{
	size_t i, k;

	if (out->n > 1)
		qsort(out->v, out->n, sizeof *out->v, cmp_cstr);
	for (i = k = 0; i < out->n; i++) {
		if (k > 0 && strcmp(out->v[k - 1], out->v[i]) == 0)
			intern_put(out->v[i]);
		else
			out->v[k++] = out->v[i];
	}
	out->n = k;
}

/* block_strings lists the names (name NULL) or values of name of the
 * series of b matching the matchers. */
static void
block_strings(struct block *b, const char *name, struct matcher *const *ms, size_t n,
    struct tsdb_strings *out)
{
	struct postings_ids ids;
	size_t i, cap = 0;
	uint32_t k;

	if (n == 0) {
		if (name == NULL)
			block_label_names(b, out);
		else
			block_label_values(b, name, out);
		return;
	}
	out->v = NULL;
	out->n = 0;
	block_select(b, ms, n, &ids);
	for (i = 0; i < ids.n; i++) {
		struct labels *ls = block_labels(b, ids.v[i]);

		for (k = 0; ls != NULL && k < ls->n; k++) {
			const char *s;

			if (name == NULL)
				s = ls->v[k].name;
			else if (strcmp(ls->v[k].name, name) == 0)
				s = ls->v[k].value;
			else
				continue;
			if (out->n == cap) {
				cap = cap ? cap * 2 : 64;
				out->v = mem_realloc(out->v, cap * sizeof *out->v);
			}
			out->v[out->n++] = intern_ref(s);
		}
		labels_free(ls);
	}
	postings_ids_free(&ids);
	strings_unique(out);
}

static void
db_strings(struct tsdb_db *db, const char *name, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct tsdb_strings *out)
{
	struct tsdb_strings part;
	struct block **bs;
	size_t nb = blocks_for(db, mint, maxt, &bs), i, cap = 0;

	if (name == NULL)
		tsdb_head_label_names(db->head, ms, n, out);
	else
		tsdb_head_label_values(db->head, name, ms, n, out);
	cap = out->n;
	for (i = 0; i < nb; i++) {
		block_strings(bs[i], name, ms, n, &part);
		strings_add(out, &cap, &part);
	}
	blocks_put(bs, nb);
	if (nb > 0)
		strings_unique(out);
}

void
tsdb_db_label_names(struct tsdb_db *db, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct tsdb_strings *out)
{
	db_strings(db, NULL, ms, n, mint, maxt, out);
}

void
tsdb_db_label_values(struct tsdb_db *db, const char *name, struct matcher *const *ms,
    size_t n, int64_t mint, int64_t maxt, struct tsdb_strings *out)
{
	db_strings(db, name, ms, n, mint, maxt, out);
}

void
tsdb_db_stats(struct tsdb_db *db, struct tsdb_db_stats *st)
{
	size_t i;

	pthread_mutex_lock(&db->smu);
	*st = db->st;
	pthread_mutex_unlock(&db->smu);
	tsdb_head_stats(db->head, &st->head);
	wal_stats(db->wal, &st->wal);
	hchunks_stats(db->hc, &st->hchunks);
	st->lowest_timestamp = st->head.mint == INT64_MAX ? 0 : st->head.mint;
	pthread_rwlock_rdlock(&db->bmu);
	st->blocks_loaded = db->nblocks;
	st->blocks_bytes = 0;
	for (i = 0; i < db->nblocks; i++) {
		const struct block_meta *m = block_meta(db->blocks[i]);

		st->blocks_bytes += block_bytes(db->blocks[i]);
		if (m->mint < st->lowest_timestamp || (i == 0 && st->head.mint == INT64_MAX))
			st->lowest_timestamp = m->mint;
	}
	pthread_rwlock_unlock(&db->bmu);
}

void
tsdb_db_status(struct tsdb_db *db, size_t limit, struct tsdb_status *out)
{
	struct tsdb_head_stats hs;

	memset(out, 0, sizeof *out);
	tsdb_head_stats(db->head, &hs);
	postings_stats(tsdb_head_postings(db->head), LABEL_METRIC_NAME, limit, &out->card);
	out->num_series = hs.series;
	out->num_label_pairs = out->card.num_label_pairs;
	out->chunk_count = hs.chunks;
	out->min_time = hs.mint;
	out->max_time = hs.maxt;
}

void
tsdb_status_free(struct tsdb_status *st)
{
	postings_stats_free(&st->card);
}
