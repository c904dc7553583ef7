/* lib/tsdb/db.c - the store: lock file, WAL replay, maintenance, reads.
 *
 * Owns the data directory: the lock file, the WAL (lib/tsdb/wal.c) and the
 * head it feeds (lib/tsdb/head.c). The head's commit hooks log each commit
 * to the WAL before it is applied.
 *
 * Threads: appenders and readers on any thread; one maintenance thread
 * (unless no_maintenance) runs tsdb_db_maintain every few seconds. db->mu
 * serialises maintenance passes and checkpoints; db->smu guards the
 * statistics kept here.
 */
#include "config.h"

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

#include "tsdb/db.h"
#include "tsdb/enc.h"
#include "tsdb/iter.h"
#include "tsdb/wal.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define MAINTAIN_EVERY_MS 5000
#define CKPT_MIN_BYTES (128u << 20)	/* WAL written before a checkpoint pays */

struct tsdb_db {
	char *dir;
	char *waldir;
	int lockfd;
	struct tsdb_db_opts o;
	struct tsdb_head *head;
	struct wal *wal;
	pthread_mutex_t mu;		/* maintenance, checkpoints */
	pthread_mutex_t smu;		/* stats below */
	pthread_cond_t cv;		/* the maintenance thread sleeps here */
	pthread_t bg;
	bool bg_started;
	bool stop;
	uint64_t ckpt_bytes;		/* size of the last checkpoint */
	uint64_t wal_at_ckpt;		/* WAL bytes written at the last checkpoint */
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
	case WAL_SAMPLES:
		wal_samples_init(&d, p, len);
		while (wal_samples_next(&d, &x))
			tsdb_head_replay_sample(c->r, &x, seg);
		if (d.err)
			c->bad++;
		break;
	case WAL_SNAP_SERIES:
		if (wal_dec_snap(p, len, &c->snap) < 0) {
			c->bad++;
			break;
		}
		if (tsdb_head_replay_snap(c->r, c->snap.id, c->snap.ls, c->snap.chunk,
		    c->snap.chunklen, c->snap.mint, c->snap.maxt, c->snap.nchunks,
		    c->snap.open, c->snap.ooo, c->snap.nooo) < 0)
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
	if (wal_ckpt_commit(c.ck, err, sizeof err) < 0) {
		log_kv(LOG_ERROR, "tsdb", "checkpoint failed", "err", err, (char *)NULL);
		return -1;
	}
	wal_stats(db->wal, &ws);
	db->wal_at_ckpt = ws.bytes_written;
	db->ckpt_bytes = ws.storage_bytes;
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

/* --- maintenance ---------------------------------------------------------------------- */

int
tsdb_db_maintain(struct tsdb_db *db)
{
	struct wal_stats ws;
	int rc = 0;

	pthread_mutex_lock(&db->mu);
	wal_stats(db->wal, &ws);
	/* checkpoint once the WAL since the last one costs more to replay
	 * than the checkpoint itself */
	if (ws.bytes_written - db->wal_at_ckpt > CKPT_MIN_BYTES &&
	    ws.bytes_written - db->wal_at_ckpt > db->ckpt_bytes / 2)
		rc = checkpoint_locked(db);
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
	if (mkdir_p(db->dir, err, errlen) < 0 || take_lock(db, err, errlen) < 0)
		goto fail;
	memset(&ho, 0, sizeof ho);
	ho.chunk_range = db->o.block_range_ms;
	ho.ooo_window = db->o.ooo_window_ms;
	ho.bounded = true;
	if ((db->head = tsdb_head_new(&ho, err, errlen)) == NULL)
		goto fail;
	memset(&wo, 0, sizeof wo);
	wo.segment_size = db->o.wal_segment_size;
	wo.sync = db->o.wal_sync;
	wo.sync_interval_ms = db->o.wal_sync_ms;
	memset(&rc, 0, sizeof rc);
	rc.r = tsdb_head_replay_begin(db->head);
	db->wal = wal_open(db->waldir, &wo, replay_record, &rc, err, errlen);
	tsdb_head_replay_end(rc.r, &rs);
	wal_snap_free(&rc.snap);
	if (db->wal == NULL)
		goto fail;
	if (rc.bad > 0 || rs.unknown_refs > 0) {
		char b[32], u[32];

		snprintf(b, sizeof b, "%" PRIu64, rc.bad);
		snprintf(u, sizeof u, "%" PRIu64, rs.unknown_refs);
		log_kv(LOG_WARN, "tsdb", "WAL replay skipped records", "malformed_records", b,
		    "samples_of_unknown_series", u, (char *)NULL);
	}
	db->st.replay_seconds = (double)(time_mono_ns() - t0) / 1e9;
	db->st.replay_unknown_refs = rs.unknown_refs;
	{
		struct wal_stats ws;
		char secs[32], ser[32], smp[32];

		wal_stats(db->wal, &ws);
		db->wal_at_ckpt = 0;
		db->ckpt_bytes = ws.storage_bytes;
		snprintf(secs, sizeof secs, "%.3fs", db->st.replay_seconds);
		snprintf(ser, sizeof ser, "%" PRIu64, rs.series + rs.snap_series);
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
	if (db->lockfd >= 0)
		close(db->lockfd);
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
	if (ws.bytes_written > db->wal_at_ckpt)
		(void)tsdb_db_checkpoint(db);
	tsdb_head_set_hooks(db->head, NULL);
	wal_close(db->wal);
	tsdb_head_free(db->head);
	if (db->lockfd >= 0)
		close(db->lockfd);
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
	return tsdb_head_select(db->head, ms, n, mint, maxt);
}

int
tsdb_db_latest(struct tsdb_db *db, struct matcher *const *ms, size_t n, int64_t mint,
    struct tsdb_latest **out, size_t *nout)
{
	return tsdb_head_latest(db->head, ms, n, mint, out, nout);
}

void
tsdb_db_label_names(struct tsdb_db *db, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct tsdb_strings *out)
{
	(void)mint;
	(void)maxt;
	tsdb_head_label_names(db->head, ms, n, out);
}

void
tsdb_db_label_values(struct tsdb_db *db, const char *name, struct matcher *const *ms,
    size_t n, int64_t mint, int64_t maxt, struct tsdb_strings *out)
{
	(void)mint;
	(void)maxt;
	tsdb_head_label_values(db->head, name, ms, n, out);
}

void
tsdb_db_stats(struct tsdb_db *db, struct tsdb_db_stats *st)
{
	pthread_mutex_lock(&db->smu);
	*st = db->st;
	pthread_mutex_unlock(&db->smu);
	tsdb_head_stats(db->head, &st->head);
	wal_stats(db->wal, &st->wal);
	st->lowest_timestamp = st->head.mint == INT64_MAX ? 0 : st->head.mint;
}
