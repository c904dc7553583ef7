/* lib/tsdb/hchunks.c - closed head chunks in memory-mapped files (format
 * and lifetime in hchunks.h).
 *
 * Owns the files under <data>/head_chunks. hc->mu guards the file table,
 * the current file's write position, the live-chunk counts and the
 * statistics; a file's reference count is atomic (the store holds one while
 * the file is in the table, each reader one more). Every file is mapped
 * once, read-only and shared: the file being written is mapped at
 * HCHUNKS_FILE_MAX bytes from the start, so records written with pwrite
 * become readable through the same mapping; a record's position is handed
 * out only after its write returned. Syncs run on dup'd descriptors outside
 * the mutex, so a long fdatasync never stalls writers or readers.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/crc32c.h"
#include "tsdb/enc.h"
#include "tsdb/hchunks.h"
#include "util/log.h"
#include "util/mem.h"

#define MAGIC "STRHCK01"
#define MAGIC_LEN 8
#define REC_MIN 10		/* id, length, encoding, checksum */

struct hchunks_file {
	struct hchunks *hc;
	uint32_t num;
	uint32_t refs;		/* atomic */
	uint64_t live;		/* live chunks; hc->mu */
	uint64_t size;		/* bytes written; written under hc->mu, atomic */
	const uint8_t *map;
	size_t maplen;
	int fd;			/* open while written or unsynced, else -1 */
	bool dirty;		/* written since the last sync */
	bool bad_logged;	/* atomic: a damaged read was logged */
	char *path;
};

struct hchunks {
	char *dir;
	pthread_mutex_t mu;
	struct hchunks_file **files;	/* files[i] is number base + i, or NULL */
	uint32_t base, nfiles;
	struct hchunks_file *cur;	/* being written, NULL before the first write */
	uint32_t next;			/* number of the next file */
	struct enc buf;
	bool failing;			/* the last write failed (logged) */
	uint32_t missing_logged;	/* file number of the last failed claim logged */
	struct hchunks_stats st;
};

static char *
file_path(const char *dir, uint32_t num)
{
	size_t n = strlen(dir) + 16;
	char *p = mem_alloc(n);

	snprintf(p, n, "%s/%06" PRIu32, dir, num);
	return p;
}

static bool
parse_num(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < 6; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[6] != '\0' || v == 0)
		return false;
	*out = (uint32_t)v;
	return true;
}

static void
file_free(struct hchunks_file *f)
{
	if (f->map != NULL)
		munmap((void *)f->map, f->maplen);
	if (f->fd >= 0)
		close(f->fd);
	mem_free(f->path);
	mem_free(f);
}

void
hchunks_put(struct hchunks_file *f)
{
	if (f != NULL && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
		file_free(f);
}

/* table_add puts f into the table (mu held or not shared yet). */
static void
table_add(struct hchunks *hc, struct hchunks_file *f)
{
	uint32_t i;

	if (hc->nfiles == 0)
		hc->base = f->num;
	if (f->num < hc->base) {
		uint32_t shift = hc->base - f->num;

		hc->files = mem_realloc(hc->files, (hc->nfiles + shift) * sizeof *hc->files);
		memmove(hc->files + shift, hc->files, hc->nfiles * sizeof *hc->files);
		for (i = 0; i < shift; i++)
			hc->files[i] = NULL;
		hc->nfiles += shift;
		hc->base = f->num;
	}
	if (f->num - hc->base >= hc->nfiles) {
		uint32_t n = f->num - hc->base + 1;

		hc->files = mem_realloc(hc->files, n * sizeof *hc->files);
		for (i = hc->nfiles; i < n; i++)
			hc->files[i] = NULL;
		hc->nfiles = n;
	}
	hc->files[f->num - hc->base] = f;
}

static struct hchunks_file *
table_get(const struct hchunks *hc, uint32_t num)
{
	if (num < hc->base || num - hc->base >= hc->nfiles)
		return NULL;
	return hc->files[num - hc->base];
}

/* table_trim drops the empty slots at the front. */
static void
table_trim(struct hchunks *hc)
{
	uint32_t k = 0;

	while (k < hc->nfiles && hc->files[k] == NULL)
		k++;
	if (k == 0)
		return;
	memmove(hc->files, hc->files + k, (hc->nfiles - k) * sizeof *hc->files);
	hc->nfiles -= k;
	hc->base += k;
}

/* load maps an existing file; NULL (logged) when it cannot be used. */
static struct hchunks_file *
load(struct hchunks *hc, uint32_t num)
{
	struct hchunks_file *f = mem_calloc(1, sizeof *f);
	struct stat sb;
	int fd;

	f->hc = hc;
	f->num = num;
	f->refs = 1;
	f->fd = -1;
	f->path = file_path(hc->dir, num);
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		log_kv(LOG_WARN, "tsdb", "head chunk file unreadable: ignored", "file", f->path,
		    "err", strerror(errno), (char *)NULL);
		if (fd >= 0)
			close(fd);
		file_free(f);
		return NULL;
	}
	f->size = (uint64_t)sb.st_size;
	if (f->size >= MAGIC_LEN) {
		f->maplen = (size_t)f->size;
		f->map = mmap(NULL, f->maplen, PROT_READ, MAP_SHARED, fd, 0);
		if (f->map == MAP_FAILED)
			f->map = NULL;
	}
	close(fd);
	if (f->map == NULL || memcmp(f->map, MAGIC, MAGIC_LEN) != 0) {
		/* empty (a crash right after creating it) or not ours: never
		 * referred to by a good checkpoint; deleted at the next collect */
		if (f->map != NULL)
			munmap((void *)f->map, f->maplen);
		f->map = NULL;
		f->maplen = 0;
		f->size = 0;
	}
	return f;
}

struct hchunks *
hchunks_open(const char *dir, char *err, size_t errlen)
{
	struct hchunks *hc;
	DIR *d;
	struct dirent *de;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "create %s: %s", dir, strerror(errno));
		return NULL;
	}
	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errlen, "open %s: %s", dir, strerror(errno));
		return NULL;
	}
	hc = mem_calloc(1, sizeof *hc);
	hc->dir = mem_strdup(dir);
	hc->next = 1;
	pthread_mutex_init(&hc->mu, NULL);
	while ((de = readdir(d)) != NULL) {
		struct hchunks_file *f;
		uint32_t num;

		if (!parse_num(de->d_name, &num))
			continue;
		if (num >= hc->next)
			hc->next = num + 1;
		if ((f = load(hc, num)) != NULL)
			table_add(hc, f);
	}
	closedir(d);
	return hc;
}

void
hchunks_close(struct hchunks *hc)
{
	uint32_t i;

	if (hc == NULL)
		return;
	for (i = 0; i < hc->nfiles; i++)
		if (hc->files[i] != NULL)
			hchunks_put(hc->files[i]);
	mem_free(hc->files);
	enc_free(&hc->buf);
	pthread_mutex_destroy(&hc->mu);
	mem_free(hc->dir);
	mem_free(hc);
}

/* create starts file hc->next as the current one (mu held). */
static int
create(struct hchunks *hc, char *err, size_t errlen)
{
	struct hchunks_file *f = mem_calloc(1, sizeof *f);
	void *m;

	f->hc = hc;
	f->num = hc->next;
	f->refs = 1;
	f->path = file_path(hc->dir, f->num);
	f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0) {
		snprintf(err, errlen, "create %s: %s", f->path, strerror(errno));
		file_free(f);
		return -1;
	}
	if (pwrite(f->fd, MAGIC, MAGIC_LEN, 0) != MAGIC_LEN) {
		snprintf(err, errlen, "write %s: %s", f->path, strerror(errno ? errno : ENOSPC));
		(void)unlink(f->path);
		file_free(f);
		return -1;
	}
	m = mmap(NULL, HCHUNKS_FILE_MAX, PROT_READ, MAP_SHARED, f->fd, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "mmap %s: %s", f->path, strerror(errno));
		(void)unlink(f->path);
		file_free(f);
		return -1;
	}
	f->map = m;
	f->maplen = HCHUNKS_FILE_MAX;
	f->size = MAGIC_LEN;
	f->dirty = true;
	hc->next++;
	table_add(hc, f);
	hc->cur = f;
	return 0;
}

/* flush writes the buffer at the end of the current file (mu held).
 * Returns 0, or -1 with err (the file is cut back to where it was). */
static int
flush(struct hchunks *hc, char *err, size_t errlen)
{
	struct hchunks_file *f = hc->cur;
	size_t done = 0;

	while (done < hc->buf.len) {
		ssize_t n = pwrite(f->fd, hc->buf.b + done, hc->buf.len - done,
		    (off_t)(f->size + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "write %s: %s", f->path,
			    strerror(n < 0 ? errno : ENOSPC));
			if (ftruncate(f->fd, (off_t)f->size) < 0) {
				/* the tail is unreferenced either way */
			}
			hc->buf.len = 0;
			return -1;
		}
		done += (size_t)n;
	}
	__atomic_store_n(&f->size, f->size + hc->buf.len, __ATOMIC_RELEASE);
	f->dirty = true;
	hc->buf.len = 0;
	return 0;
}

size_t
hchunks_write(struct hchunks *hc, const struct hchunks_rec *r, size_t n, uint64_t *pos)
{
	size_t i, done = 0, first = 0;
	char err[512] = "";
	int rc = 0;

	pthread_mutex_lock(&hc->mu);
	hc->buf.len = 0;
	for (i = 0; i < n && rc == 0; i++) {
		size_t need = 4 + 5 + 1 + (size_t)r[i].len + 4, at;
		uint8_t id[4];
		uint32_t crc;

		if (need > HCHUNKS_FILE_MAX - MAGIC_LEN) {
			snprintf(err, sizeof err, "chunk of %" PRIu32 " bytes too large", r[i].len);
			rc = -1;
			break;
		}
		if (hc->cur == NULL || hc->cur->size + hc->buf.len + need > HCHUNKS_FILE_MAX) {
			if (hc->cur != NULL && hc->buf.len > 0) {
				if ((rc = flush(hc, err, sizeof err)) < 0)
					break;
				hc->cur->live += i - first;
				done = i;
			}
			if ((rc = create(hc, err, sizeof err)) < 0)
				break;
			first = i;
		}
		at = hc->buf.len;
		pos[i] = (uint64_t)hc->cur->num << 32 | (hc->cur->size + at);
		put_u32le(id, r[i].id);
		enc_bytes(&hc->buf, id, 4);
		enc_uvarint(&hc->buf, r[i].len);
		enc_u8(&hc->buf, r[i].enc);
		enc_bytes(&hc->buf, r[i].b, r[i].len);
		crc = crc32c(hc->buf.b + at, hc->buf.len - at);
		enc_u32(&hc->buf, crc);
	}
	if (rc == 0 && hc->buf.len > 0) {
		rc = flush(hc, err, sizeof err);
		if (rc == 0) {
			hc->cur->live += n - first;
			done = n;
		}
	}
	hc->buf.len = 0;
	hc->st.chunks_written += done;
	hc->st.write_failures += n - done;
	if (rc < 0 && !hc->failing)
		log_kv(LOG_ERROR, "tsdb", "writing head chunks failed: they stay in memory",
		    "dir", hc->dir, "err", err, (char *)NULL);
	else if (rc == 0 && hc->failing)
		log_kv(LOG_INFO, "tsdb", "writing head chunks works again", "dir", hc->dir,
		    (char *)NULL);
	hc->failing = rc < 0;
	if (hc->buf.cap > (1u << 20))
		enc_free(&hc->buf);
	pthread_mutex_unlock(&hc->mu);
	return done;
}

struct hchunks_file *
hchunks_ref(struct hchunks *hc, uint64_t pos)
{
	struct hchunks_file *f;

	pthread_mutex_lock(&hc->mu);
	f = table_get(hc, (uint32_t)(pos >> 32));
	if (f != NULL)
		__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&hc->mu);
	return f;
}

struct hchunks_file *
hchunks_file_ref(struct hchunks_file *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	return f;
}

static void
bad_read(struct hchunks_file *f, uint64_t pos, const char *why)
{
	pthread_mutex_lock(&f->hc->mu);
	f->hc->st.bad_reads++;
	pthread_mutex_unlock(&f->hc->mu);
	if (!__atomic_exchange_n(&f->bad_logged, true, __ATOMIC_RELAXED)) {
		char p[32];

		snprintf(p, sizeof p, "%" PRIu64, pos & UINT32_MAX);
		log_kv(LOG_ERROR, "tsdb", "damaged head chunk skipped", "file", f->path,
		    "offset", p, "reason", why, (char *)NULL);
	}
}

const uint8_t *
hchunks_read(struct hchunks_file *f, uint64_t pos, uint32_t id, uint8_t *enc, size_t *len)
{
	uint64_t size = __atomic_load_n(&f->size, __ATOMIC_ACQUIRE), off = pos & UINT32_MAX, n;
	struct dec d;
	const uint8_t *p;
	const char *why;

	if (f->map == NULL || (uint32_t)(pos >> 32) != f->num) {
		why = "no such file";
		goto bad;
	}
	if (off < MAGIC_LEN || off + REC_MIN > size) {
		why = "position past the end of the file";
		goto bad;
	}
	p = f->map + off;
	dec_init(&d, p + 4, (size_t)(size - off - 4));
	n = dec_uvarint(&d);
	if (d.err || n >= dec_left(&d) || dec_left(&d) - n < 5) {
		why = "bad length";
		goto bad;
	}
	if (get_u32le(p) != id) {
		why = "chunk of another series";
		goto bad;
	}
	if (crc32c(p, (size_t)(d.p - p) + 1 + (size_t)n) != get_u32le(d.p + 1 + n)) {
		why = "checksum mismatch";
		goto bad;
	}
	*enc = d.p[0];
	*len = (size_t)n;
	return d.p + 1;
bad:
	bad_read(f, pos, why);
	return NULL;
}

int
hchunks_claim(struct hchunks *hc, uint64_t pos)
{
	struct hchunks_file *f;
	int rc = -1;

	pthread_mutex_lock(&hc->mu);
	f = table_get(hc, (uint32_t)(pos >> 32));
	if (f != NULL && (pos & UINT32_MAX) >= MAGIC_LEN && (pos & UINT32_MAX) + REC_MIN <= f->size) {
		f->live++;
		rc = 0;
	} else {
		hc->st.bad_reads++;
		if (hc->missing_logged != (uint32_t)(pos >> 32)) {
			char *p = file_path(hc->dir, (uint32_t)(pos >> 32));

			hc->missing_logged = (uint32_t)(pos >> 32);
			log_kv(LOG_ERROR, "tsdb", "head chunk named by the checkpoint is missing: its "
			    "samples are lost", "file", p, "reason", f == NULL ? "no such file" :
			    "file too short", (char *)NULL);
			mem_free(p);
		}
	}
	pthread_mutex_unlock(&hc->mu);
	return rc;
}

void
hchunks_release(struct hchunks *hc, uint64_t pos)
{
	struct hchunks_file *f;

	pthread_mutex_lock(&hc->mu);
	f = table_get(hc, (uint32_t)(pos >> 32));
	if (f != NULL && f->live > 0)
		f->live--;
	pthread_mutex_unlock(&hc->mu);
}

int
hchunks_sync(struct hchunks *hc)
{
	int *fds = NULL, rc = 0;
	struct hchunks_file **fs = NULL;
	uint32_t i, n = 0;

	pthread_mutex_lock(&hc->mu);
	for (i = 0; i < hc->nfiles; i++) {
		struct hchunks_file *f = hc->files[i];
		int fd;

		if (f == NULL || !f->dirty || f->fd < 0 || (fd = dup(f->fd)) < 0)
			continue;
		fds = mem_realloc(fds, (n + 1) * sizeof *fds);
		fs = mem_realloc(fs, (n + 1) * sizeof *fs);
		fds[n] = fd;
		fs[n++] = f;
		f->dirty = false;
		__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&hc->mu);
	for (i = 0; i < n; i++) {
		if (fdatasync(fds[i]) < 0) {
			log_kv(LOG_ERROR, "tsdb", "syncing a head chunk file failed", "file",
			    fs[i]->path, "err", strerror(errno), (char *)NULL);
			pthread_mutex_lock(&hc->mu);
			fs[i]->dirty = true;
			pthread_mutex_unlock(&hc->mu);
			rc = -1;
		}
		close(fds[i]);
	}
	pthread_mutex_lock(&hc->mu);
	for (i = 0; i < n; i++) {
		/* a finished, synced file needs no descriptor any more */
		if (fs[i] != hc->cur && !fs[i]->dirty && fs[i]->fd >= 0) {
			close(fs[i]->fd);
			fs[i]->fd = -1;
		}
	}
	pthread_mutex_unlock(&hc->mu);
	for (i = 0; i < n; i++)
		hchunks_put(fs[i]);
	mem_free(fds);
	mem_free(fs);
	if (rc == 0) {
		int dfd = open(hc->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	return rc;
}

void
hchunks_collect(struct hchunks *hc)
{
	struct hchunks_file **gone = NULL;
	uint32_t i, n = 0;

	pthread_mutex_lock(&hc->mu);
	for (i = 0; i < hc->nfiles; i++) {
		struct hchunks_file *f = hc->files[i];

		if (f == NULL || f == hc->cur || f->live > 0)
			continue;
		(void)unlink(f->path);
		hc->files[i] = NULL;
		gone = mem_realloc(gone, (n + 1) * sizeof *gone);
		gone[n++] = f;
	}
	table_trim(hc);
	pthread_mutex_unlock(&hc->mu);
	for (i = 0; i < n; i++)
		hchunks_put(gone[i]);
	mem_free(gone);
}

void
hchunks_stats(struct hchunks *hc, struct hchunks_stats *st)
{
	uint32_t i;

	pthread_mutex_lock(&hc->mu);
	*st = hc->st;
	st->bytes = 0;
	st->files = 0;
	for (i = 0; i < hc->nfiles; i++) {
		if (hc->files[i] == NULL)
			continue;
		st->bytes += hc->files[i]->size;
		st->files++;
	}
	pthread_mutex_unlock(&hc->mu);
}
