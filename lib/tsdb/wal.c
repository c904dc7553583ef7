/* lib/tsdb/wal.c - write-ahead log: segments, replay and repair, group
 * commit, checkpoints.
 *
 * Owns the files under <data>/wal (see wal.h for the formats). One writer
 * position (segment fd, offset) guarded by w->mu; a sync thread fdatasyncs a
 * dup of the current segment's fd outside the mutex and advances `synced`,
 * waking committers that wait for it. Positions are byte counts over the
 * log's life (`written`, `synced`), so a roll (which syncs the segment it
 * closes) keeps them comparable across segments.
 *
 * Writes use pwrite at the tracked offset: after a failed or partial write
 * the next record overwrites the same place, and ftruncate removes what a
 * failure left behind, so a disk-full episode leaves no hole in a segment.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/chunk.h"
#include "tsdb/crc32c.h"
#include "tsdb/enc.h"
#include "tsdb/wal.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define MAGIC "STRWAL\0\1"
#define CKPT_MAGIC2 "STRWAL\0\2"	/* checkpoints with WAL_SNAP_SERIES2 records */
#define MAGIC_LEN 8
#define HDR 9			/* u32 len, u32 crc, u8 type */
#define SAMPLES_PER_RECORD 50000	/* keeps records well under WAL_MAX_RECORD */

struct wal {
	char *dir;
	struct wal_opts o;
	pthread_mutex_t mu;
	pthread_cond_t wake;		/* the sync thread waits here */
	bool syncer_idle;		/* it waits for a first dirty byte */
	pthread_cond_t synced_cv;	/* committers wait here */
	pthread_t syncer;
	bool syncer_started;
	bool stop;
	int fd;				/* current segment, -1 when none could be opened */
	uint32_t seg;
	uint64_t off;
	uint64_t written;		/* bytes logged over the log's life */
	uint64_t synced;
	int64_t dirty_since_ns;		/* when written first exceeded synced */
	uint32_t waiters;
	uint32_t ckpt;			/* newest checkpoint (valid when has_ckpt) */
	bool has_ckpt;
	uint32_t first_seg;
	struct enc buf;			/* framing buffer, under mu */
	char lasterr[160];
	struct wal_stats st;
};

struct wal_ckpt {
	struct wal *w;
	uint32_t upto;
	int fd;
	char *tmp;
	char *final;
	struct enc buf;
	struct enc rec;
	uint64_t bytes;
	bool failed;
};

/* --- files ------------------------------------------------------------------ */

static char *
path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = mem_alloc(a + b + 2);

	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

static char *
seg_path(const struct wal *w, uint32_t seg)
{
	char name[32];

	snprintf(name, sizeof name, "%08" PRIu32, seg);
	return path_join(w->dir, name);
}

static char *
ckpt_path(const struct wal *w, uint32_t n)
{
	char name[40];

	snprintf(name, sizeof name, "checkpoint.%08" PRIu32, n);
	return path_join(w->dir, name);
}

static void
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* parse_u32 parses exactly 8 decimal digits. */
static bool
parse_seg(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < 8; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[8] != '\0' || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* --- framing ---------------------------------------------------------------- */

/* frame_open reserves a record header at the end of out, for the payload
 * the caller appends next; returns where the header is. */
static size_t
frame_open(struct enc *out)
{
	size_t at = out->len;

	enc_grow(out, HDR);
	out->len += HDR;
	return at;
}

/* frame_close fills the header at `at` for the payload after it. */
static void
frame_close(struct enc *out, size_t at, uint8_t type)
{
	const uint8_t *p = out->b + at + HDR;
	size_t len = out->len - at - HDR;
	uint32_t crc;

	crc = crc32c_update(0, &type, 1);
	crc = crc32c_update(crc, p, len);
	put_u32le(out->b + at, (uint32_t)len);
	put_u32le(out->b + at + 4, crc);
	out->b[at + 8] = type;
}

/* frame appends a record (header + payload) to out. */
static void
frame(struct enc *out, uint8_t type, const uint8_t *p, size_t len)
{
	uint8_t hdr[HDR];
	uint32_t crc;

	put_u32le(hdr, (uint32_t)len);
	crc = crc32c_update(0, &type, 1);
	crc = crc32c_update(crc, p, len);
	put_u32le(hdr + 4, crc);
	hdr[8] = type;
	enc_bytes(out, hdr, HDR);
	enc_bytes(out, p, len);
}

static bool
known_type(uint8_t t)
{
	return t >= WAL_SERIES && t <= WAL_SNAP_SERIES2;
}

/* read_records calls fn for the good records of a mapped file and returns
 * the offset where the good part ends (== len when all of it is good);
 * *why says what stopped it. */
static size_t
read_records(const uint8_t *b, size_t len, wal_record_fn fn, void *arg,
    uint32_t seg, const char **why, uint64_t *nrec)
{
	size_t off = MAGIC_LEN;

	*why = NULL;
	while (off < len) {
		uint32_t n, crc;
		uint8_t type;

		if (len - off < HDR) {
			*why = "short record header";
			return off;
		}
		n = get_u32le(b + off);
		crc = get_u32le(b + off + 4);
		type = b[off + 8];
		if (!known_type(type)) {
			*why = "unknown record type";
			return off;
		}
		if (n > WAL_MAX_RECORD || n > len - off - HDR) {
			*why = "record length past the end";
			return off;
		}
		if (crc32c_update(crc32c_update(0, &type, 1), b + off + HDR, n) != crc) {
			*why = "checksum mismatch";
			return off;
		}
		if (fn != NULL)
			fn(arg, type, b + off + HDR, n, seg);
		(*nrec)++;
		off += HDR + n;
	}
	return off;
}

/* --- replay and repair ------------------------------------------------------ */

struct listing {
	uint32_t *segs;
	size_t nsegs;
	uint32_t *ckpts;
	size_t nckpts;
};

static void
listing_free(struct listing *l)
{
	mem_free(l->segs);
	mem_free(l->ckpts);
}

static int
list_dir(const char *dir, struct listing *l, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cs = 0, cc = 0;

	memset(l, 0, sizeof *l);
	if (d == NULL) {
		snprintf(err, errlen, "open WAL directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		uint32_t n;
		size_t len = strlen(de->d_name);

		if (parse_seg(de->d_name, &n)) {
			if (l->nsegs == cs) {
				cs = cs ? cs * 2 : 16;
				l->segs = mem_realloc(l->segs, cs * sizeof *l->segs);
			}
			l->segs[l->nsegs++] = n;
		} else if (strncmp(de->d_name, "checkpoint.", 11) == 0 &&
		    parse_seg(de->d_name + 11, &n)) {
			if (l->nckpts == cc) {
				cc = cc ? cc * 2 : 4;
				l->ckpts = mem_realloc(l->ckpts, cc * sizeof *l->ckpts);
			}
			l->ckpts[l->nckpts++] = n;
		} else if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
			char *p = path_join(dir, de->d_name);

			/* a checkpoint that was being written when the process died */
			log_kv(LOG_INFO, "wal", "removing unfinished file", "file", p, (char *)NULL);
			(void)unlink(p);
			mem_free(p);
		}
	}
	closedir(d);
	if (l->nsegs > 1)
		qsort(l->segs, l->nsegs, sizeof *l->segs, cmp_u32);
	if (l->nckpts > 1)
		qsort(l->ckpts, l->nckpts, sizeof *l->ckpts, cmp_u32);
	return 0;
}

/* map_file maps path read-only; *len 0 and NULL for an empty file. Returns 0
 * or -1 with err. */
static int
map_file(const char *path, const uint8_t **b, size_t *len, char *err, size_t errlen)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *m;

	*b = NULL;
	*len = 0;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (sb.st_size == 0) {
		close(fd);
		return 0;
	}
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "mmap %s: %s", path, strerror(errno));
		return -1;
	}
	(void)madvise(m, (size_t)sb.st_size, MADV_SEQUENTIAL);
	*b = m;
	*len = (size_t)sb.st_size;
	return 0;
}

static bool
has_magic(const uint8_t *b, size_t len)
{
	return len >= MAGIC_LEN && memcmp(b, MAGIC, MAGIC_LEN) == 0;
}

/* is_foreign tells whether no segment of the listing carries our magic
 * (and some segment has content): a log written by another program. */
static bool
is_foreign(const struct wal *w, const struct listing *l, char *which, size_t wlen)
{
	size_t i;
	bool any = false;

	for (i = 0; i < l->nsegs; i++) {
		char *p = seg_path(w, l->segs[i]);
		uint8_t head[MAGIC_LEN];
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, head, sizeof head) : -1;

		if (fd >= 0)
			close(fd);
		if (n == MAGIC_LEN && memcmp(head, MAGIC, MAGIC_LEN) == 0) {
			mem_free(p);
			return false;
		}
		if (n > 0 && !any) {
			snprintf(which, wlen, "%s", p);
			any = true;
		}
		mem_free(p);
	}
	return any;
}

static void
drop_segment(struct wal *w, uint32_t seg, const char *why)
{
	char *p = seg_path(w, seg);
	char bytes[32];

	snprintf(bytes, sizeof bytes, "%" PRId64, file_size(p));
	log_kv(LOG_WARN, "wal", "deleting segment after a corrupt record", "file", p,
	    "bytes_dropped", bytes, "reason", why, (char *)NULL);
	w->st.dropped_bytes += (uint64_t)file_size(p);
	(void)unlink(p);
	mem_free(p);
}

/* truncate_at cuts path to off (a corrupt record there), logging it. */
static void
truncate_at(struct wal *w, const char *path, size_t off, size_t len, const char *why)
{
	char o[32], d[32];

	snprintf(o, sizeof o, "%zu", off);
	snprintf(d, sizeof d, "%zu", len - off);
	log_kv(LOG_WARN, "wal", "corrupt or torn record: truncating", "file", path,
	    "offset", o, "bytes_dropped", d, "reason", why, (char *)NULL);
	w->st.corruptions++;
	w->st.dropped_bytes += len - off;
	if (truncate(path, (off_t)(off < MAGIC_LEN ? 0 : off)) < 0)
		log_kv(LOG_ERROR, "wal", "truncate failed", "file", path,
		    "err", strerror(errno), (char *)NULL);
}

static int
replay(struct wal *w, wal_record_fn fn, void *arg, uint32_t *next, char *err, size_t errlen)
{
	struct listing l;
	size_t i, start = 0;
	bool broken = false;
	char which[512];

	if (list_dir(w->dir, &l, err, errlen) < 0)
		return -1;
	if (is_foreign(w, &l, which, sizeof which)) {
		snprintf(err, errlen, "%s is not a strata WAL segment (a data directory "
		    "written by another program?)", which);
		listing_free(&l);
		return -1;
	}
	*next = 0;
	/* the newest checkpoint; older ones are leftovers of an interrupted
	 * clean-up */
	for (i = 0; i + 1 < l.nckpts; i++) {
		char *p = ckpt_path(w, l.ckpts[i]);

		(void)unlink(p);
		mem_free(p);
	}
	if (l.nckpts > 0) {
		uint32_t c = l.ckpts[l.nckpts - 1];
		char *p = ckpt_path(w, c);
		const uint8_t *b;
		size_t len, good;
		const char *why;

		if (map_file(p, &b, &len, err, errlen) < 0) {
			mem_free(p);
			listing_free(&l);
			return -1;
		}
		if (!has_magic(b, len) && !(len >= MAGIC_LEN && memcmp(b, CKPT_MAGIC2, MAGIC_LEN) == 0)) {
			snprintf(err, errlen, "%s is not a strata WAL checkpoint (or one of a newer "
			    "strata)", p);
			if (b != NULL)
				munmap((void *)b, len);
			mem_free(p);
			listing_free(&l);
			return -1;
		}
		good = read_records(b, len, fn, arg, c, &why, &w->st.replay_records);
		if (good < len) {
			/* checkpoints are written whole and renamed: a bad record
			 * is damage, keep what was readable */
			char o[32];

			snprintf(o, sizeof o, "%zu", good);
			log_kv(LOG_ERROR, "wal", "corrupt checkpoint: series after this offset are lost",
			    "file", p, "offset", o, "reason", why, (char *)NULL);
			w->st.corruptions++;
		}
		munmap((void *)b, len);
		w->st.storage_bytes += len;
		w->st.checkpoint_bytes = len;
		w->ckpt = c;
		w->has_ckpt = true;
		*next = c + 1;
		mem_free(p);
	}
	/* segments the checkpoint covers were meant to be deleted */
	while (start < l.nsegs && w->has_ckpt && l.segs[start] <= w->ckpt) {
		char *p = seg_path(w, l.segs[start++]);

		(void)unlink(p);
		mem_free(p);
	}
	if (start < l.nsegs && w->has_ckpt && l.segs[start] != w->ckpt + 1) {
		char e[64];

		snprintf(e, sizeof e, "segments %08" PRIu32 "..%08" PRIu32 " missing",
		    w->ckpt + 1, l.segs[start] - 1);
		log_kv(LOG_WARN, "wal", "gap after the checkpoint: replaying what exists",
		    "dir", w->dir, "reason", e, (char *)NULL);
	}
	w->first_seg = start < l.nsegs ? l.segs[start] : *next;
	for (i = start; i < l.nsegs; i++) {
		uint32_t s = l.segs[i];
		char *p = seg_path(w, s);
		const uint8_t *b = NULL;
		size_t len = 0, good;
		const char *why;

		if (broken || (i > start && s != l.segs[i - 1] + 1)) {
			drop_segment(w, s, broken ? "follows a corrupt segment" :
			    "follows a gap in segment numbers");
			broken = true;
			mem_free(p);
			continue;
		}
		if (map_file(p, &b, &len, err, errlen) < 0) {
			mem_free(p);
			listing_free(&l);
			return -1;
		}
		if (!has_magic(b, len)) {
			good = 0;
			why = len < MAGIC_LEN ? "short segment header" : "bad segment magic";
		} else {
			good = read_records(b, len, fn, arg, s, &why, &w->st.replay_records);
			w->st.replayed_bytes += good - MAGIC_LEN;
		}
		if (b != NULL)
			munmap((void *)b, len);
		if (good < len || len < MAGIC_LEN) {
			if (len == 0 || (len < MAGIC_LEN && i + 1 == l.nsegs)) {
				/* created, never written: not a corruption */
				(void)unlink(p);
			} else {
				truncate_at(w, p, good, len, why);
				if (i + 1 < l.nsegs)
					broken = true;
				w->st.storage_bytes += good < MAGIC_LEN ? 0 : good;
			}
		} else {
			w->st.storage_bytes += len;
		}
		*next = s + 1;
		mem_free(p);
	}
	listing_free(&l);
	return 0;
}

/* --- writing ------------------------------------------------------------------ */

/* open_segment creates segment seg with its magic (mu held or before
 * threads exist). Returns 0 or -errno. */
static int
open_segment(struct wal *w, uint32_t seg)
{
	char *p = seg_path(w, seg);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), e;

	if (fd < 0) {
		e = errno;
		snprintf(w->lasterr, sizeof w->lasterr, "create %s: %s", p, strerror(e));
		mem_free(p);
		return -e;
	}
	if (pwrite(fd, MAGIC, MAGIC_LEN, 0) != MAGIC_LEN) {
		e = errno ? errno : EIO;
		snprintf(w->lasterr, sizeof w->lasterr, "write %s: %s", p, strerror(e));
		close(fd);
		(void)unlink(p);
		mem_free(p);
		return -e;
	}
	mem_free(p);
	sync_dir(w->dir);
	w->fd = fd;
	w->seg = seg;
	w->off = MAGIC_LEN;
	w->st.segment_current = seg;
	w->st.storage_bytes += MAGIC_LEN;
	return 0;
}

static void
do_fsync(struct wal *w, int fd)
{
	int64_t t0 = time_mono_ns();

	(void)fdatasync(fd);
	w->st.fsyncs++;
	w->st.fsync_seconds += (double)(time_mono_ns() - t0) / 1e9;
}

/* roll_locked closes the current segment (synced) and opens the next. */
static void
roll_locked(struct wal *w)
{
	uint32_t next = w->seg + 1;

	if (w->fd >= 0) {
		if (w->o.sync != WAL_SYNC_NONE)
			do_fsync(w, w->fd);
		close(w->fd);
		w->fd = -1;
	}
	w->synced = w->written;
	pthread_cond_broadcast(&w->synced_cv);
	if (open_segment(w, next) < 0) {
		w->seg = next;	/* retried by the next write */
		w->st.failing = true;
	}
}

static void *
syncer_main(void *arg)
{
	struct wal *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		int64_t now = time_mono_ns(), due;
		uint64_t target;
		int fd;

		if (w->written == w->synced || w->fd < 0) {
			w->syncer_idle = true;
			pthread_cond_wait(&w->wake, &w->mu);
			w->syncer_idle = false;
			continue;
		}
		due = w->dirty_since_ns + w->o.sync_interval_ms * 1000000;
		if (w->waiters == 0 && w->o.sync != WAL_SYNC_COMMIT && now < due) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (due - now) / 1000000000;
			ts.tv_nsec += (due - now) % 1000000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&w->wake, &w->mu, &ts);
			continue;
		}
		target = w->written;
		fd = dup(w->fd);
		pthread_mutex_unlock(&w->mu);
		if (fd >= 0) {
			int64_t t0 = time_mono_ns();

			(void)fdatasync(fd);
			close(fd);
			pthread_mutex_lock(&w->mu);
			w->st.fsyncs++;
			w->st.fsync_seconds += (double)(time_mono_ns() - t0) / 1e9;
		} else {
			pthread_mutex_lock(&w->mu);
		}
		if (target > w->synced)
			w->synced = target;
		if (w->written > w->synced)
			w->dirty_since_ns = time_mono_ns();
		pthread_cond_broadcast(&w->synced_cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct wal *
wal_open(const char *dir, const struct wal_opts *o, wal_record_fn fn, void *arg,
    char *err, size_t errlen)
{
	struct wal *w;
	uint32_t next;
	int rc;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "create WAL directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	w = mem_calloc(1, sizeof *w);
	w->dir = mem_strdup(dir);
	w->fd = -1;
	if (o != NULL)
		w->o = *o;
	if (w->o.segment_size == 0)
		w->o.segment_size = WAL_SEGMENT_SIZE;
	if (w->o.segment_size < 64 * 1024)
		w->o.segment_size = 64 * 1024;
	if (w->o.sync_interval_ms <= 0)
		w->o.sync_interval_ms = WAL_SYNC_INTERVAL_MS;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->synced_cv, NULL);
	if (replay(w, fn, arg, &next, err, errlen) < 0)
		goto fail;
	if ((rc = open_segment(w, next)) < 0) {
		snprintf(err, errlen, "%s", w->lasterr);
		goto fail;
	}
	if (!w->has_ckpt && w->first_seg > next)
		w->first_seg = next;
	w->st.segment_first = w->first_seg;
	if (w->o.sync != WAL_SYNC_NONE) {
		if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
			snprintf(err, errlen, "WAL sync thread: %s", strerror(errno));
			goto fail;
		}
		w->syncer_started = true;
	}
	return w;
fail:
	if (w->fd >= 0)
		close(w->fd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->synced_cv);
	mem_free(w->dir);
	mem_free(w);
	return NULL;
}

void
wal_close(struct wal *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->wake);
	pthread_cond_broadcast(&w->synced_cv);
	pthread_mutex_unlock(&w->mu);
	if (w->syncer_started)
		pthread_join(w->syncer, NULL);
	if (w->fd >= 0) {
		(void)fdatasync(w->fd);
		close(w->fd);
	}
	enc_free(&w->buf);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->synced_cv);
	mem_free(w->dir);
	mem_free(w);
}

/* --- record encoding ----------------------------------------------------------- */

static void
enc_labels(struct enc *e, const struct labels *ls)
{
	uint32_t i;

	enc_uvarint(e, ls->n);
	for (i = 0; i < ls->n; i++) {
		enc_str(e, ls->v[i].name, strlen(ls->v[i].name));
		enc_str(e, ls->v[i].value, strlen(ls->v[i].value));
	}
}

/* put_uvarint writes x at p; returns the byte after it. */
static inline uint8_t *
put_uvarint(uint8_t *p, uint64_t x)
{
	while (x >= 0x80) {
		*p++ = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	*p++ = (uint8_t)x;
	return p;
}

/* The most a sample takes: two 10-byte varints and a 9-byte value. */
#define SAMPLE_MAX_BYTES 29

void
wal_encode_samples(struct enc *out, const struct tsdb_log_sample *v, size_t n)
{
	int64_t pid = 0, pt = 0;
	uint8_t *p;
	size_t i;

	/* room for the worst case once, then plain stores: two varints,
	 * then the value: a small integer as a varint (shifted left, low bit
	 * 0), the rest as 1 and the 8 bytes */
	enc_grow(out, n * SAMPLE_MAX_BYTES);
	p = out->b + out->len;
	for (i = 0; i < n; i++) {
		uint64_t bits = v[i].v;
		double d;
		int k;

		p = put_uvarint(p, enc_zigzag((int64_t)v[i].id - pid));
		p = put_uvarint(p, enc_zigzag((int64_t)((uint64_t)v[i].t - (uint64_t)pt)));
		pid = v[i].id;
		pt = v[i].t;
		memcpy(&d, &bits, sizeof d);
		if (fabs(d) <= 4503599627370496.0) {	/* 2^52; not NaN */
			int64_t x = (int64_t)d;
			double dx = (double)x;
			uint64_t xbits;

			memcpy(&xbits, &dx, sizeof xbits);
			if (xbits == bits) {	/* an integer, not -0 */
				p = put_uvarint(p, enc_zigzag(x) << 1);
				continue;
			}
		}
		*p++ = 1;
		for (k = 0; k < 8; k++)	/* little-endian, as enc_u64 */
			p[k] = (uint8_t)(bits >> (8 * k));
		p += 8;
	}
	out->len = (size_t)(p - out->b);
}

/* encode_commit writes the records of a commit to out (payloads in place,
 * after their headers). */
static void
encode_commit(struct enc *out, const struct tsdb_log_series *s, size_t ns,
    const struct tsdb_log_sample *v, size_t nv)
{
	size_t i, k, at;

	out->len = 0;
	for (i = 0; i < ns;) {
		at = frame_open(out);
		for (k = 0; i < ns && (k < 10000 || out->len == at + HDR); i++, k++) {
			enc_uvarint(out, s[i].id);
			enc_labels(out, s[i].ls);
		}
		frame_close(out, at, WAL_SERIES);
	}
	for (i = 0; i < nv; i += SAMPLES_PER_RECORD) {
		size_t m = nv - i < SAMPLES_PER_RECORD ? nv - i : SAMPLES_PER_RECORD;

		at = frame_open(out);
		wal_encode_samples(out, v + i, m);
		frame_close(out, at, WAL_SAMPLES);
	}
}

int
wal_log(struct wal *w, const struct tsdb_log_series *s, size_t ns,
    const struct tsdb_log_sample *v, size_t nv, uint64_t *pos)
{
	size_t done = 0;
	int e = 0;

	if (ns == 0 && nv == 0)
		return 0;
	pthread_mutex_lock(&w->mu);
	encode_commit(&w->buf, s, ns, v, nv);
	if (w->fd >= 0 && w->off > MAGIC_LEN && w->off + w->buf.len > w->o.segment_size)
		roll_locked(w);
	if (w->fd < 0 && (e = -open_segment(w, w->seg)) != 0)
		goto fail;
	while (done < w->buf.len) {
		ssize_t n = pwrite(w->fd, w->buf.b + done, w->buf.len - done,
		    (off_t)(w->off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : ENOSPC;
			snprintf(w->lasterr, sizeof w->lasterr, "write segment %08" PRIu32 ": %s",
			    w->seg, strerror(e));
			/* leave no partial record behind */
			if (ftruncate(w->fd, (off_t)w->off) < 0) {
				/* a later write overwrites it anyway */
			}
			goto fail;
		}
		done += (size_t)n;
	}
	if (w->written == w->synced)
		w->dirty_since_ns = time_mono_ns();
	w->off += w->buf.len;
	w->written += w->buf.len;
	w->st.bytes_written += w->buf.len;
	w->st.storage_bytes += w->buf.len;
	w->st.records += (ns > 0) + (nv + SAMPLES_PER_RECORD - 1) / SAMPLES_PER_RECORD;
	if (w->st.failing) {
		w->st.failing = false;
		log_kv(LOG_INFO, "wal", "writes succeed again", "dir", w->dir, (char *)NULL);
	}
	if (pos != NULL)
		*pos = w->written;
	/* a syncer already counting down to its due time needs no wakeup:
	 * one per commit cost a context switch each */
	if (w->o.sync == WAL_SYNC_COMMIT || (w->o.sync != WAL_SYNC_NONE && w->syncer_idle))
		pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->mu);
	return 0;
fail:
	w->st.writes_failed++;
	if (!w->st.failing) {
		w->st.failing = true;
		log_kv(LOG_ERROR, "wal", "write failed: commits are refused until it succeeds",
		    "dir", w->dir, "err", w->lasterr, (char *)NULL);
	}
	pthread_mutex_unlock(&w->mu);
	(void)e;
	return TSDB_ERR_IO;
}

void
wal_wait(struct wal *w, uint64_t pos)
{
	if (w->o.sync != WAL_SYNC_COMMIT)
		return;
	pthread_mutex_lock(&w->mu);
	w->waiters++;
	pthread_cond_signal(&w->wake);
	while (w->synced < pos && !w->stop)
		pthread_cond_wait(&w->synced_cv, &w->mu);
	w->waiters--;
	pthread_mutex_unlock(&w->mu);
}

uint32_t
wal_roll(struct wal *w)
{
	uint32_t seg;

	pthread_mutex_lock(&w->mu);
	roll_locked(w);
	seg = w->seg;
	pthread_mutex_unlock(&w->mu);
	return seg;
}

uint32_t
wal_segment(struct wal *w)
{
	uint32_t seg;

	pthread_mutex_lock(&w->mu);
	seg = w->seg;
	pthread_mutex_unlock(&w->mu);
	return seg;
}

void
wal_last_error(struct wal *w, char *buf, size_t len)
{
	pthread_mutex_lock(&w->mu);
	snprintf(buf, len, "%s", w->lasterr);
	pthread_mutex_unlock(&w->mu);
}

int
wal_keep_checkpoint(struct wal *w)
{
	char *p, *q;
	int rc = -1;

	pthread_mutex_lock(&w->mu);
	if (w->has_ckpt) {
		p = ckpt_path(w, w->ckpt);
		q = mem_alloc(strlen(p) + 16);
		snprintf(q, strlen(p) + 16, "%s.damaged", p);
		(void)unlink(q);
		if (link(p, q) == 0) {
			rc = 0;
			log_kv(LOG_ERROR, "wal", "checkpoint kept aside: some of its records could not be "
			    "used", "file", q, (char *)NULL);
		}
		mem_free(p);
		mem_free(q);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void
wal_stats(struct wal *w, struct wal_stats *st)
{
	pthread_mutex_lock(&w->mu);
	*st = w->st;
	st->segment_current = w->seg;
	st->segment_first = w->first_seg;
	pthread_mutex_unlock(&w->mu);
}

/* --- checkpoints ------------------------------------------------------------------- */

struct wal_ckpt *
wal_ckpt_begin(struct wal *w, uint32_t upto, char *err, size_t errlen)
{
	struct wal_ckpt *ck = mem_calloc(1, sizeof *ck);
	char name[48];

	ck->w = w;
	ck->upto = upto;
	ck->final = ckpt_path(w, upto);
	snprintf(name, sizeof name, "checkpoint.%08" PRIu32 ".tmp", upto);
	ck->tmp = path_join(w->dir, name);
	ck->fd = open(ck->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (ck->fd < 0) {
		snprintf(err, errlen, "create %s: %s", ck->tmp, strerror(errno));
		mem_free(ck->tmp);
		mem_free(ck->final);
		mem_free(ck);
		pthread_mutex_lock(&w->mu);
		w->st.checkpoints_failed++;
		pthread_mutex_unlock(&w->mu);
		return NULL;
	}
	enc_bytes(&ck->buf, CKPT_MAGIC2, MAGIC_LEN);
	return ck;
}

static int
ckpt_flush(struct wal_ckpt *ck)
{
	size_t done = 0;

	while (done < ck->buf.len && !ck->failed) {
		ssize_t n = write(ck->fd, ck->buf.b + done, ck->buf.len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ck->failed = true;
		else
			done += (size_t)n;
	}
	ck->bytes += ck->buf.len;
	ck->buf.len = 0;
	return ck->failed ? -1 : 0;
}

static int
ckpt_add(struct wal_ckpt *ck, uint8_t type)
{
	frame(&ck->buf, type, ck->rec.b, ck->rec.len);
	ck->rec.len = 0;
	if (ck->buf.len >= (1u << 20))
		return ckpt_flush(ck);
	return ck->failed ? -1 : 0;
}

int
wal_ckpt_series(struct wal_ckpt *ck, const struct tsdb_series_dump *d)
{
	struct enc *e = &ck->rec;
	int64_t pt = 0;
	uint32_t i;

	e->len = 0;
	enc_uvarint(e, d->id);
	enc_labels(e, d->ls);
	enc_uvarint(e, d->nc);
	for (i = 0; i < d->nc; i++) {
		const struct tsdb_dump_chunk *c = &d->c[i];

		enc_varint(e, c->mint);
		enc_uvarint(e, (uint64_t)(c->maxt - c->mint));
		if (c->c != NULL && c->c->enc == CHUNK_ENC_XOR) {
			enc_u8(e, 0);
			enc_str(e, (const char *)c->c->b, c->c->len);
		} else if (c->c != NULL) {
			enc_u8(e, 2);
			enc_u8(e, c->c->enc);
			enc_str(e, (const char *)c->c->b, c->c->len);
		} else {
			enc_u8(e, 1);
			enc_uvarint(e, c->pos);
		}
	}
	enc_u8(e, !d->open ? 0 : d->state.enc == CHUNK_ENC_DENSE ? 3 : 2);
	if (d->open) {
		enc_varint(e, d->state.t);
		enc_u64(e, d->state.v);
		enc_uvarint(e, d->state.tdelta);
		enc_u8(e, d->state.bitsfree);
		enc_u8(e, d->state.leading);
		enc_u8(e, d->state.trailing);
		if (d->state.enc == CHUNK_ENC_DENSE) {
			enc_u8(e, d->state.dec);
			enc_u8(e, d->state.e);
			enc_varint(e, d->state.m);
			enc_varint(e, d->state.dm);
		}
	}
	enc_uvarint(e, d->nooo);
	for (i = 0; i < d->nooo; i++) {
		enc_varint(e, (int64_t)((uint64_t)d->ooo[i].t - (uint64_t)pt));
		enc_u64(e, d->ooo[i].v);
		enc_uvarint(e, d->ooo[i].gen);
		pt = d->ooo[i].t;
	}
	return ckpt_add(ck, WAL_SNAP_SERIES2);
}

int
wal_ckpt_meta(struct wal_ckpt *ck, uint32_t next_id)
{
	ck->rec.len = 0;
	enc_uvarint(&ck->rec, next_id);
	return ckpt_add(ck, WAL_SNAP_META);
}

static void
ckpt_free(struct wal_ckpt *ck)
{
	if (ck->fd >= 0)
		close(ck->fd);
	enc_free(&ck->buf);
	enc_free(&ck->rec);
	mem_free(ck->tmp);
	mem_free(ck->final);
	mem_free(ck);
}

void
wal_ckpt_abort(struct wal_ckpt *ck)
{
	if (ck == NULL)
		return;
	(void)unlink(ck->tmp);
	pthread_mutex_lock(&ck->w->mu);
	ck->w->st.checkpoints_failed++;
	pthread_mutex_unlock(&ck->w->mu);
	ckpt_free(ck);
}

int
wal_ckpt_commit(struct wal_ckpt *ck, char *err, size_t errlen)
{
	struct wal *w = ck->w;
	struct listing l;
	uint64_t freed = 0;
	uint32_t first;
	size_t i;

	if (ckpt_flush(ck) < 0 || fdatasync(ck->fd) < 0) {
		snprintf(err, errlen, "write %s: %s", ck->tmp, strerror(errno ? errno : EIO));
		wal_ckpt_abort(ck);
		return -1;
	}
	if (rename(ck->tmp, ck->final) < 0) {
		snprintf(err, errlen, "rename %s: %s", ck->tmp, strerror(errno));
		wal_ckpt_abort(ck);
		return -1;
	}
	sync_dir(w->dir);
	/* the new checkpoint is durable: what it covers can go */
	if (list_dir(w->dir, &l, err, errlen) == 0) {
		for (i = 0; i < l.nsegs; i++) {
			if (l.segs[i] <= ck->upto) {
				char *p = seg_path(w, l.segs[i]);

				freed += (uint64_t)file_size(p);
				if (unlink(p) == 0) {
					pthread_mutex_lock(&w->mu);
					w->st.segments_deleted++;
					pthread_mutex_unlock(&w->mu);
				}
				mem_free(p);
			}
		}
		for (i = 0; i < l.nckpts; i++) {
			if (l.ckpts[i] < ck->upto) {
				char *p = ckpt_path(w, l.ckpts[i]);

				freed += (uint64_t)file_size(p);
				(void)unlink(p);
				mem_free(p);
			}
		}
		listing_free(&l);
	}
	first = ck->upto + 1;
	pthread_mutex_lock(&w->mu);
	w->ckpt = ck->upto;
	w->has_ckpt = true;
	if (w->first_seg < first)
		w->first_seg = first;
	w->st.checkpoints++;
	w->st.checkpoint_bytes = ck->bytes;
	w->st.storage_bytes = w->st.storage_bytes + ck->bytes > freed ?
	    w->st.storage_bytes + ck->bytes - freed : 0;
	pthread_mutex_unlock(&w->mu);
	ckpt_free(ck);
	return 0;
}

/* --- decoding ------------------------------------------------------------------- */

/* dec_labels reads a label set (strings copied into scratch to terminate
 * them); NULL on malformed input. */
static struct labels *
dec_labels(struct dec *d, struct enc *scratch)
{
	uint64_t n = dec_uvarint(d), i;
	struct label stackv[32], *v = stackv;
	size_t *offs;
	struct labels *ls = NULL;

	if (d->err || n > dec_left(d) / 2 || n == 0)
		return NULL;
	if (n > 32)
		v = mem_alloc(n * sizeof *v);
	offs = mem_alloc(2 * n * sizeof *offs);
	scratch->len = 0;
	for (i = 0; i < 2 * n; i++) {
		size_t len;
		const uint8_t *s = dec_str(d, &len);

		if (s == NULL)
			goto out;
		offs[i] = scratch->len;
		enc_bytes(scratch, s, len);
		enc_u8(scratch, 0);
	}
	for (i = 0; i < n; i++) {
		v[i].name = (const char *)scratch->b + offs[2 * i];
		v[i].value = (const char *)scratch->b + offs[2 * i + 1];
		if (i > 0 && strcmp(v[i - 1].name, v[i].name) >= 0)
			goto out;	/* sorted and unique, as written */
	}
	ls = labels_new(v, (size_t)n);
out:
	mem_free(offs);
	if (v != stackv)
		mem_free(v);
	return ls;
}

int
wal_dec_series(const uint8_t *p, size_t len,
    void (*fn)(void *arg, uint32_t id, struct labels *ls), void *arg)
{
	struct enc scratch = { NULL, 0, 0 };
	struct dec d;
	int rc = 0;

	dec_init(&d, p, len);
	while (dec_left(&d) > 0) {
		uint64_t id = dec_uvarint(&d);
		struct labels *ls;

		if (d.err || id == 0 || id >= UINT32_MAX || (ls = dec_labels(&d, &scratch)) == NULL) {
			rc = -1;
			break;
		}
		fn(arg, (uint32_t)id, ls);
	}
	enc_free(&scratch);
	return rc;
}

void
wal_samples_init(struct wal_samples_dec *d, const uint8_t *p, size_t len)
{
	d->p = p;
	d->end = p + len;
	d->t = 0;
	d->id = 0;
	d->err = false;
}

bool
wal_samples_next(struct wal_samples_dec *d, struct tsdb_log_sample *out)
{
	struct dec x;
	uint64_t id, vx;

	if (d->err || d->p >= d->end)
		return false;
	x.p = d->p;
	x.end = d->end;
	x.err = false;
	id = d->id + (uint64_t)dec_varint(&x);
	d->t = (int64_t)((uint64_t)d->t + (uint64_t)dec_varint(&x));
	vx = dec_uvarint(&x);
	if (vx == 1)
		out->v = dec_u64(&x);
	else if (!(vx & 1))
		out->v = chunk_f64_bits((double)dec_unzigzag(vx >> 1));
	else
		x.err = true;
	if (x.err || id == 0 || id >= UINT32_MAX) {
		d->err = true;
		return false;
	}
	d->p = x.p;
	d->id = id;
	out->id = (uint32_t)id;
	out->t = d->t;
	return true;
}

int
wal_dec_snap(uint8_t type, const uint8_t *p, size_t len, struct wal_snap *s)
{
	struct enc scratch = { NULL, 0, 0 };
	struct dec d;
	uint64_t id, n, i;
	int64_t pt = 0;

	dec_init(&d, p, len);
	s->ls = NULL;
	s->nchunks = s->nooo = 0;
	id = dec_uvarint(&d);
	if (d.err || id == 0 || id >= UINT32_MAX || (type != WAL_SNAP_SERIES &&
	    type != WAL_SNAP_SERIES2))
		return -1;
	s->id = (uint32_t)id;
	s->ls = dec_labels(&d, &scratch);
	enc_free(&scratch);
	if (s->ls == NULL)
		return -1;
	n = dec_uvarint(&d);
	if (d.err || n > dec_left(&d))
		goto bad;
	if (n > s->cap) {
		s->cap = (size_t)n;
		s->c = mem_realloc(s->c, s->cap * sizeof *s->c);
	}
	for (i = 0; i < n; i++) {
		struct tsdb_snap_chunk *c = &s->c[i];

		c->mint = dec_varint(&d);
		c->maxt = (int64_t)((uint64_t)c->mint + dec_uvarint(&d));
		c->b = NULL;
		c->len = 0;
		c->pos = 0;
		c->enc = CHUNK_ENC_XOR;
		if (type == WAL_SNAP_SERIES2) {
			uint8_t where = dec_u8(&d);

			if (where > 2)
				goto bad;
			if (where == 1) {
				c->pos = dec_uvarint(&d);
				if (d.err || c->pos == 0)
					goto bad;
				continue;
			}
			if (where == 2)
				c->enc = dec_u8(&d);
		}
		c->b = dec_str(&d, &c->len);
		if (c->b == NULL || c->len < 2)
			goto bad;
	}
	s->nchunks = (size_t)n;
	{
		uint8_t open = dec_u8(&d);

		s->open = open != 0;
		s->has_state = open >= 2;
		memset(&s->state, 0, sizeof s->state);
		if (open == 2 || (open == 3 && type == WAL_SNAP_SERIES2)) {
			s->state.t = dec_varint(&d);
			s->state.v = dec_u64(&d);
			s->state.tdelta = dec_uvarint(&d);
			s->state.bitsfree = dec_u8(&d);
			s->state.leading = dec_u8(&d);
			s->state.trailing = dec_u8(&d);
			s->state.enc = CHUNK_ENC_XOR;
			if (open == 3) {
				s->state.enc = CHUNK_ENC_DENSE;
				s->state.dec = dec_u8(&d);
				s->state.e = dec_u8(&d);
				s->state.m = dec_varint(&d);
				s->state.dm = dec_varint(&d);
			}
		} else if (open > 1) {
			goto bad;
		}
	}
	n = dec_uvarint(&d);
	if (d.err || n > dec_left(&d) / 10)
		goto bad;
	if (n > s->ooocap) {
		s->ooocap = (size_t)n;
		s->ooo = mem_realloc(s->ooo, s->ooocap * sizeof *s->ooo);
	}
	for (i = 0; i < n; i++) {
		uint64_t gen;

		pt = (int64_t)((uint64_t)pt + (uint64_t)dec_varint(&d));
		s->ooo[i].t = pt;
		s->ooo[i].v = dec_u64(&d);
		gen = dec_uvarint(&d);
		s->ooo[i].gen = gen > UINT32_MAX ? UINT32_MAX : (uint32_t)gen;
	}
	s->nooo = (size_t)n;
	if (d.err || dec_left(&d) != 0)
		goto bad;
	return 0;
bad:
	labels_free(s->ls);
	s->ls = NULL;
	return -1;
}

void
wal_snap_free(struct wal_snap *s)
{
	mem_free(s->c);
	mem_free(s->ooo);
	memset(s, 0, sizeof *s);
}
