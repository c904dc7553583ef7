/* lib/tsdb/block.c - block writer and mmap reader (format in block.h).
 *
 * The writer streams chunk records to the chunk files as series arrive and
 * keeps, per series, its label set and chunk metas; finish() derives the
 * symbol table (interned strings are unique pointers, so distinct strings
 * are found by pointer), the postings (a pair table built by counting) and
 * writes the index in one pass, checksumming each section as it goes.
 *
 * The reader maps the index and chunk files read-only and decodes on
 * demand; it allocates nothing that outlives a call except what it returns.
 * A block is immutable: any number of threads may read it. The reference
 * count and the deleted flag are atomic.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/block.h"
#include "tsdb/crc32c.h"
#include "tsdb/enc.h"
#include "tsdb/iter.h"
#include "tsdb/pack.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define IDX_MAGIC "STRIDX02"	/* written: chunks may be CHUNK_ENC_PACK2 */
#define IDX_MAGIC1 "STRIDX01"	/* read too: the same index, older chunk encodings */
#define MAGIC_LEN 8
#define CHUNK_MAGIC "STRCHK01"
#define CHUNK_FILE_MAX (512u << 20)
#define CHUNK_SAMPLES 1024	/* at most, per packed chunk */

enum { S_SYMBOLS, S_SYMTAB, S_SERIES, S_SERIESTAB, S_POSTINGS, S_PAIRS, S_META, NSECT };
#define TOC_LEN (NSECT * 20 + 12)

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* --- ids --------------------------------------------------------------------------- */

bool
block_is_id(const char *name)
{
	size_t i;

	for (i = 0; i < BLOCK_ID_LEN; i++)
		if (name[i] == '\0' || strchr(crockford, name[i]) == NULL)
			return false;
	return name[BLOCK_ID_LEN] == '\0';
}

void
block_new_id(char out[BLOCK_ID_LEN + 1])
{
	uint8_t b[16];
	uint64_t ms = (uint64_t)time_now_ms();
	unsigned i;

	for (i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	if (getrandom(b + 6, 10, 0) != 10) {
		for (i = 6; i < 16; i++)
			b[i] = (uint8_t)(rand() ^ (int)time_mono_ns());
	}
	/* 128 bits as 26 base-32 digits, the first carrying 3 bits */
	for (i = 0; i < BLOCK_ID_LEN; i++) {
		unsigned bit = i == 0 ? 0 : 3 + (i - 1) * 5, nbits = i == 0 ? 3 : 5, v = 0, k;

		for (k = 0; k < nbits; k++) {
			unsigned pos = bit + k;

			v = (v << 1) | ((b[pos / 8] >> (7 - pos % 8)) & 1);
		}
		out[i] = crockford[v];
	}
	out[BLOCK_ID_LEN] = '\0';
}

/* --- buffered files ---------------------------------------------------------------- */

struct bfile {
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t off;		/* bytes written so far, buffer included */
	uint32_t crc;		/* running CRC of the current section */
	int err;		/* errno of the first failure */
};

#define BFILE_BUF (1u << 20)

static int
bf_open(struct bfile *f, const char *path)
{
	memset(f, 0, sizeof *f);
	f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0)
		return -1;
	f->buf = mem_alloc(BFILE_BUF);
	return 0;
}

static void
bf_flush(struct bfile *f)
{
	size_t done = 0;

	while (done < f->len && f->err == 0) {
		ssize_t n = write(f->fd, f->buf + done, f->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			f->err = n < 0 ? errno : ENOSPC;
		else
			done += (size_t)n;
	}
	f->len = 0;
}

static void
bf_write(struct bfile *f, const void *p, size_t n)
{
	const uint8_t *s = p;

	f->crc = crc32c_update(f->crc, p, n);
	f->off += n;
	while (n > 0) {
		size_t k = BFILE_BUF - f->len < n ? BFILE_BUF - f->len : n;

		memcpy(f->buf + f->len, s, k);
		f->len += k;
		s += k;
		n -= k;
		if (f->len == BFILE_BUF)
			bf_flush(f);
	}
}

static void
bf_u32(struct bfile *f, uint32_t x)
{
	uint8_t b[4];

	put_u32le(b, x);
	bf_write(f, b, 4);
}

static void
bf_u64(struct bfile *f, uint64_t x)
{
	bf_u32(f, (uint32_t)x);
	bf_u32(f, (uint32_t)(x >> 32));
}

static void
bf_uvarint(struct bfile *f, uint64_t x)
{
	uint8_t b[10];
	size_t n = 0;

	while (x >= 0x80) {
		b[n++] = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	b[n++] = (uint8_t)x;
	bf_write(f, b, n);
}

/* bf_close flushes, syncs and closes; returns 0 or -1 (f->err set). */
static int
bf_close(struct bfile *f)
{
	if (f->fd < 0)
		return -1;
	bf_flush(f);
	if (f->err == 0 && fdatasync(f->fd) < 0)
		f->err = errno;
	close(f->fd);
	f->fd = -1;
	mem_free(f->buf);
	f->buf = NULL;
	return f->err ? -1 : 0;
}

static void
bf_discard(struct bfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	mem_free(f->buf);
	f->buf = NULL;
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

void
block_rmdir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *p;
		size_t n;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n = strlen(path) + strlen(de->d_name) + 2;
		p = mem_alloc(n);
		snprintf(p, n, "%s/%s", path, de->d_name);
		block_rmdir(p);
		mem_free(p);
	}
	closedir(d);
	(void)rmdir(path);
}

static char *
pathf(const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 16;
	char *p = mem_alloc(n);

	snprintf(p, n, fmt, a, b);
	return p;
}

/* --- writer ---------------------------------------------------------------------------- */

struct wchunk {
	int64_t mint, maxt;
	uint32_t file;
	uint32_t off;
};

struct wseries {
	struct labels *ls;	/* a reference */
	size_t first;		/* index of its first chunk in w->chunks */
	uint32_t nchunks;
};

struct block_writer {
	char *datadir;
	char id[BLOCK_ID_LEN + 1];
	char *tmp;		/* <datadir>/<id>.tmp */
	int64_t mint, maxt;
	uint32_t level;
	char (*parents)[BLOCK_ID_LEN + 1];
	uint32_t nparents;
	struct bfile cf;	/* current chunk file */
	uint32_t file;		/* its number (1-based) */
	uint64_t *fsizes;	/* finished files' sizes */
	uint32_t nfiles;
	struct wseries *series;
	size_t nseries, capseries;
	struct wchunk *chunks;
	size_t nchunks, capchunks;
	uint64_t nsamples;
	struct enc scratch;
};

static int
open_chunk_file(struct block_writer *w, char *err, size_t errlen)
{
	char name[32];
	char *p;

	w->file++;
	snprintf(name, sizeof name, "%06" PRIu32, w->file);
	p = pathf("%s/chunks/%s", w->tmp, name);
	if (bf_open(&w->cf, p) < 0) {
		snprintf(err, errlen, "create %s: %s", p, strerror(errno));
		mem_free(p);
		return -1;
	}
	mem_free(p);
	bf_write(&w->cf, CHUNK_MAGIC, MAGIC_LEN);
	return 0;
}

static int
close_chunk_file(struct block_writer *w, char *err, size_t errlen)
{
	uint64_t size = w->cf.off;

	if (bf_close(&w->cf) < 0) {
		snprintf(err, errlen, "write chunk file %06" PRIu32 " of %s: %s", w->file,
		    w->tmp, strerror(w->cf.err));
		return -1;
	}
	w->fsizes = mem_realloc(w->fsizes, (w->nfiles + 1) * sizeof *w->fsizes);
	w->fsizes[w->nfiles++] = size;
	return 0;
}

struct block_writer *
block_writer_new(const char *datadir, int64_t mint, int64_t maxt, uint32_t level,
    char *err, size_t errlen)
{
	struct block_writer *w = mem_calloc(1, sizeof *w);
	char *p;

	w->datadir = mem_strdup(datadir);
	block_new_id(w->id);
	w->tmp = pathf("%s/%s.tmp", datadir, w->id);
	w->mint = mint;
	w->maxt = maxt;
	w->level = level ? level : 1;
	w->cf.fd = -1;
	p = pathf("%s/chunks", w->tmp, NULL);
	if (mkdir(w->tmp, 0777) < 0 || mkdir(p, 0777) < 0) {
		snprintf(err, errlen, "create %s: %s", p, strerror(errno));
		mem_free(p);
		block_writer_abort(w);
		return NULL;
	}
	mem_free(p);
	if (open_chunk_file(w, err, errlen) < 0) {
		block_writer_abort(w);
		return NULL;
	}
	return w;
}

void
block_writer_parent(struct block_writer *w, const char *id)
{
	w->parents = mem_realloc(w->parents, (w->nparents + 1) * sizeof *w->parents);
	snprintf(w->parents[w->nparents++], BLOCK_ID_LEN + 1, "%s", id);
}

static void
writer_free(struct block_writer *w, bool remove)
{
	size_t i;

	bf_discard(&w->cf);
	if (remove)
		block_rmdir(w->tmp);
	for (i = 0; i < w->nseries; i++)
		labels_free(w->series[i].ls);
	mem_free(w->series);
	mem_free(w->chunks);
	mem_free(w->fsizes);
	mem_free(w->parents);
	enc_free(&w->scratch);
	mem_free(w->tmp);
	mem_free(w->datadir);
	mem_free(w);
}

void
block_writer_abort(struct block_writer *w)
{
	if (w != NULL)
		writer_free(w, true);
}

/* put_chunk writes one chunk record of encoded bytes. */
static int
put_chunk(struct block_writer *w, uint8_t enc, const uint8_t *b, size_t len,
    int64_t mint, int64_t maxt, char *err, size_t errlen)
{
	uint8_t crcb[4];
	uint32_t crc;
	struct wchunk *c;

	if (w->cf.off + len + 16 > CHUNK_FILE_MAX && w->cf.off > MAGIC_LEN) {
		if (close_chunk_file(w, err, errlen) < 0 || open_chunk_file(w, err, errlen) < 0)
			return -1;
	}
	if (w->nchunks == w->capchunks) {
		w->capchunks = w->capchunks ? w->capchunks * 2 : 1024;
		w->chunks = mem_realloc(w->chunks, w->capchunks * sizeof *w->chunks);
	}
	c = &w->chunks[w->nchunks++];
	c->mint = mint;
	c->maxt = maxt;
	c->file = w->file;
	c->off = (uint32_t)w->cf.off;
	bf_uvarint(&w->cf, len);
	bf_write(&w->cf, &enc, 1);
	bf_write(&w->cf, b, len);
	crc = crc32c_update(crc32c_update(0, &enc, 1), b, len);
	put_u32le(crcb, crc);
	bf_write(&w->cf, crcb, 4);
	if (w->cf.err) {
		snprintf(err, errlen, "write chunk file %06" PRIu32 " of %s: %s", w->file,
		    w->tmp, strerror(w->cf.err));
		return -1;
	}
	return 0;
}

/* encode_chunks writes v as packed chunks (version 2) of at most
 * CHUNK_SAMPLES samples, evenly split. */
static int
encode_chunks(struct block_writer *w, const struct tsdb_sample *v, size_t n,
    char *err, size_t errlen)
{
	size_t i = 0, parts = (n + CHUNK_SAMPLES - 1) / CHUNK_SAMPLES, p;

	for (p = 0; p < parts; p++) {
		size_t k = (n - i) / (parts - p);

		w->scratch.len = 0;
		pack2_encode(v + i, k, &w->scratch);
		if (put_chunk(w, CHUNK_ENC_PACK2, w->scratch.b, w->scratch.len, v[i].t,
		    v[i + k - 1].t, err, errlen) < 0)
			return -1;
		i += k;
	}
	return 0;
}

int
block_writer_add(struct block_writer *w, const struct labels *ls,
    const struct tsdb_sample *v, size_t n, char *err, size_t errlen)
{
	size_t a = 0, b = n, first = w->nchunks;
	struct wseries *s;

	while (a < n && v[a].t < w->mint)
		a++;
	while (b > a && v[b - 1].t >= w->maxt)
		b--;
	if (a == b)
		return 0;
	if (encode_chunks(w, v + a, b - a, err, errlen) < 0)
		return -1;
	if (w->nseries == w->capseries) {
		w->capseries = w->capseries ? w->capseries * 2 : 1024;
		w->series = mem_realloc(w->series, w->capseries * sizeof *w->series);
	}
	s = &w->series[w->nseries++];
	s->ls = labels_ref((struct labels *)ls);
	s->first = first;
	s->nchunks = (uint32_t)(w->nchunks - first);
	w->nsamples += b - a;
	return 0;
}

/* --- symbols and postings at finish ------------------------------------------------------ */

struct symmap {
	const char **key;	/* interned pointers */
	uint32_t *val;
	size_t cap;		/* power of two */
};

static size_t
ptr_hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return (size_t)x;
}

static size_t
symmap_slot(const struct symmap *m, const char *k)
{
	size_t i = ptr_hash(k) & (m->cap - 1);

	while (m->key[i] != NULL && m->key[i] != k)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int
cmp_cstrp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct pair {
	uint64_t key;		/* name symbol << 32 | value symbol */
	uint32_t count;
	uint32_t fill;
	uint64_t off;
};

static int
cmp_pair(const void *a, const void *b)
{
	uint64_t x = ((const struct pair *)a)->key, y = ((const struct pair *)b)->key;

	return x < y ? -1 : x > y;
}

/* pairmap: key -> index into the pair array (open addressing). */
struct pairmap {
	uint64_t *key;
	uint32_t *idx;
	size_t cap;
};

static size_t
pairmap_slot(const struct pairmap *m, uint64_t k)
{
	size_t i = ptr_hash((const void *)(uintptr_t)(k * 0x9e3779b97f4a7c15ULL)) & (m->cap - 1);

	while (m->idx[i] != UINT32_MAX && m->key[i] != k)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void
write_json_meta(struct block_writer *w, uint64_t bytes)
{
	char *p = pathf("%s/meta.json", w->tmp, NULL);
	FILE *f = fopen(p, "w");
	uint32_t i;

	mem_free(p);
	if (f == NULL)
		return;
	fprintf(f, "{\n\t\"ulid\": \"%s\",\n\t\"minTime\": %" PRId64 ",\n\t\"maxTime\": %" PRId64
	    ",\n\t\"stats\": {\n\t\t\"numSamples\": %" PRIu64 ",\n\t\t\"numSeries\": %zu,\n"
	    "\t\t\"numChunks\": %zu,\n\t\t\"numBytes\": %" PRIu64 "\n\t},\n\t\"compaction\": {\n"
	    "\t\t\"level\": %" PRIu32 ",\n\t\t\"parents\": [", w->id, w->mint, w->maxt,
	    w->nsamples, w->nseries, w->nchunks, bytes, w->level);
	for (i = 0; i < w->nparents; i++)
		fprintf(f, "%s\"%s\"", i ? ", " : "", w->parents[i]);
	fprintf(f, "]\n\t},\n\t\"format\": \"strata block 2 (index STRIDX02)\"\n}\n");
	fflush(f);
	(void)fdatasync(fileno(f));
	fclose(f);
}

int
block_writer_finish(struct block_writer *w, char id[BLOCK_ID_LEN + 1], char *err,
    size_t errlen)
{
	struct symmap sm = { NULL, NULL, 0 };
	const char **syms = NULL;
	size_t nsyms = 0, i, j, total_labels = 0, npairs = 0;
	struct pairmap pm = { NULL, NULL, 0 };
	struct pair *pairs = NULL;
	uint32_t *lists = NULL, *listpos = NULL;
	uint32_t *sertab = NULL, *symtab = NULL;
	struct bfile f;
	uint64_t sect_off[NSECT], sect_len[NSECT], bytes = 0;
	uint32_t sect_crc[NSECT];
	uint8_t toc[TOC_LEN], foot[12 + MAGIC_LEN];
	char *ipath = NULL, *final = NULL;
	int rc = -1;

	if (w->nseries == 0) {
		block_writer_abort(w);
		return 1;
	}
	if (close_chunk_file(w, err, errlen) < 0)
		goto out;
	for (i = 0; i < w->nfiles; i++)
		bytes += w->fsizes[i];
	/* symbols: distinct interned pointers, then sorted by content */
	for (i = 0; i < w->nseries; i++)
		total_labels += w->series[i].ls->n;
	sm.cap = 64;
	while (sm.cap < total_labels * 2 + 2)
		sm.cap *= 2;
	sm.key = mem_calloc(sm.cap, sizeof *sm.key);
	sm.val = mem_alloc(sm.cap * sizeof *sm.val);
	syms = mem_alloc((2 * total_labels + 1) * sizeof *syms);
	for (i = 0; i < w->nseries; i++) {
		const struct labels *ls = w->series[i].ls;

		for (j = 0; j < 2 * ls->n; j++) {
			const char *s = j % 2 ? ls->v[j / 2].value : ls->v[j / 2].name;
			size_t slot = symmap_slot(&sm, s);

			if (sm.key[slot] == NULL) {
				sm.key[slot] = s;
				syms[nsyms++] = s;
			}
		}
	}
	qsort(syms, nsyms, sizeof *syms, cmp_cstrp);
	for (i = 0; i < nsyms; i++)
		sm.val[symmap_slot(&sm, syms[i])] = (uint32_t)i;
	/* pairs and their counts */
	pm.cap = 64;
	while (pm.cap < total_labels * 2 + 2)
		pm.cap *= 2;
	pm.key = mem_alloc(pm.cap * sizeof *pm.key);
	pm.idx = mem_alloc(pm.cap * sizeof *pm.idx);
	memset(pm.idx, 0xff, pm.cap * sizeof *pm.idx);
	pairs = mem_alloc((total_labels + 1) * sizeof *pairs);
	for (i = 0; i < w->nseries; i++) {
		const struct labels *ls = w->series[i].ls;

		for (j = 0; j < ls->n; j++) {
			uint64_t k = (uint64_t)sm.val[symmap_slot(&sm, ls->v[j].name)] << 32 |
			    sm.val[symmap_slot(&sm, ls->v[j].value)];
			size_t slot = pairmap_slot(&pm, k);

			if (pm.idx[slot] == UINT32_MAX) {
				pm.key[slot] = k;
				pm.idx[slot] = (uint32_t)npairs;
				pairs[npairs].key = k;
				pairs[npairs++].count = 0;
			}
			pairs[pm.idx[slot]].count++;
		}
	}
	qsort(pairs, npairs, sizeof *pairs, cmp_pair);
	for (i = 0; i < npairs; i++) {
		pm.idx[pairmap_slot(&pm, pairs[i].key)] = (uint32_t)i;
		pairs[i].fill = 0;
	}
	/* postings lists: series in order, so each list comes out sorted */
	lists = mem_alloc((total_labels + 1) * sizeof *lists);
	listpos = mem_alloc((npairs + 1) * sizeof *listpos);
	for (i = 0, j = 0; i < npairs; i++) {
		listpos[i] = (uint32_t)j;
		j += pairs[i].count;
	}
	for (i = 0; i < w->nseries; i++) {
		const struct labels *ls = w->series[i].ls;
		uint32_t k;

		for (k = 0; k < ls->n; k++) {
			uint64_t key = (uint64_t)sm.val[symmap_slot(&sm, ls->v[k].name)] << 32 |
			    sm.val[symmap_slot(&sm, ls->v[k].value)];
			size_t p = pm.idx[pairmap_slot(&pm, key)];

			lists[listpos[p] + pairs[p].fill++] = (uint32_t)i;
		}
	}
	/* the index */
	ipath = pathf("%s/index", w->tmp, NULL);
	if (bf_open(&f, ipath) < 0) {
		snprintf(err, errlen, "create %s: %s", ipath, strerror(errno));
		goto out;
	}
	bf_write(&f, IDX_MAGIC, MAGIC_LEN);
	symtab = mem_alloc((nsyms + 1) * sizeof *symtab);
	sect_off[S_SYMBOLS] = f.off;
	f.crc = 0;
	for (i = 0; i < nsyms; i++) {
		size_t len = strlen(syms[i]);

		symtab[i] = (uint32_t)(f.off - sect_off[S_SYMBOLS]);
		bf_uvarint(&f, len);
		bf_write(&f, syms[i], len + 1);
	}
	sect_len[S_SYMBOLS] = f.off - sect_off[S_SYMBOLS];
	sect_crc[S_SYMBOLS] = f.crc;
	sect_off[S_SYMTAB] = f.off;
	f.crc = 0;
	for (i = 0; i < nsyms; i++)
		bf_u32(&f, symtab[i]);
	sect_len[S_SYMTAB] = f.off - sect_off[S_SYMTAB];
	sect_crc[S_SYMTAB] = f.crc;
	sertab = mem_alloc((w->nseries + 1) * sizeof *sertab);
	sect_off[S_SERIES] = f.off;
	f.crc = 0;
	for (i = 0; i < w->nseries; i++) {
		const struct wseries *s = &w->series[i];
		int64_t prev = w->mint;
		uint32_t k;

		if (f.off - sect_off[S_SERIES] > UINT32_MAX) {
			snprintf(err, errlen, "block %s: series section over 4 GiB", w->tmp);
			bf_discard(&f);
			goto out;
		}
		sertab[i] = (uint32_t)(f.off - sect_off[S_SERIES]);
		bf_uvarint(&f, s->ls->n);
		for (k = 0; k < s->ls->n; k++) {
			bf_uvarint(&f, sm.val[symmap_slot(&sm, s->ls->v[k].name)]);
			bf_uvarint(&f, sm.val[symmap_slot(&sm, s->ls->v[k].value)]);
		}
		bf_uvarint(&f, s->nchunks);
		for (k = 0; k < s->nchunks; k++) {
			const struct wchunk *c = &w->chunks[s->first + k];

			bf_uvarint(&f, enc_zigzag(c->mint - prev));
			bf_uvarint(&f, (uint64_t)(c->maxt - c->mint));
			bf_uvarint(&f, c->file);
			bf_uvarint(&f, c->off);
			prev = c->maxt;
		}
	}
	sect_len[S_SERIES] = f.off - sect_off[S_SERIES];
	sect_crc[S_SERIES] = f.crc;
	sect_off[S_SERIESTAB] = f.off;
	f.crc = 0;
	for (i = 0; i < w->nseries; i++)
		bf_u32(&f, sertab[i]);
	sect_len[S_SERIESTAB] = f.off - sect_off[S_SERIESTAB];
	sect_crc[S_SERIESTAB] = f.crc;
	sect_off[S_POSTINGS] = f.off;
	f.crc = 0;
	for (i = 0; i < npairs; i++) {
		uint32_t prev = 0, k;

		pairs[i].off = f.off - sect_off[S_POSTINGS];
		if (pairs[i].off > UINT32_MAX) {
			snprintf(err, errlen, "block %s: postings section over 4 GiB", w->tmp);
			bf_discard(&f);
			goto out;
		}
		bf_uvarint(&f, pairs[i].count);
		for (k = 0; k < pairs[i].count; k++) {
			uint32_t sid = lists[listpos[i] + k];

			bf_uvarint(&f, sid - prev);
			prev = sid;
		}
	}
	sect_len[S_POSTINGS] = f.off - sect_off[S_POSTINGS];
	sect_crc[S_POSTINGS] = f.crc;
	sect_off[S_PAIRS] = f.off;
	f.crc = 0;
	for (i = 0; i < npairs; i++) {
		bf_u32(&f, (uint32_t)(pairs[i].key >> 32));
		bf_u32(&f, (uint32_t)pairs[i].key);
		bf_u32(&f, (uint32_t)pairs[i].off);
		bf_u32(&f, pairs[i].count);
	}
	sect_len[S_PAIRS] = f.off - sect_off[S_PAIRS];
	sect_crc[S_PAIRS] = f.crc;
	sect_off[S_META] = f.off;
	f.crc = 0;
	bf_u64(&f, (uint64_t)w->mint);
	bf_u64(&f, (uint64_t)w->maxt);
	bf_u64(&f, w->nseries);
	bf_u64(&f, w->nchunks);
	bf_u64(&f, w->nsamples);
	bf_u32(&f, w->level);
	bf_u32(&f, w->nfiles);
	for (i = 0; i < w->nfiles; i++)
		bf_u64(&f, w->fsizes[i]);
	bf_u32(&f, w->nparents);
	for (i = 0; i < w->nparents; i++)
		bf_write(&f, w->parents[i], BLOCK_ID_LEN);
	bf_write(&f, w->id, BLOCK_ID_LEN);
	sect_len[S_META] = f.off - sect_off[S_META];
	sect_crc[S_META] = f.crc;
	for (i = 0; i < NSECT; i++) {
		uint8_t *t = toc + i * 20;

		put_u32le(t, (uint32_t)sect_off[i]);
		put_u32le(t + 4, (uint32_t)(sect_off[i] >> 32));
		put_u32le(t + 8, (uint32_t)sect_len[i]);
		put_u32le(t + 12, (uint32_t)(sect_len[i] >> 32));
		put_u32le(t + 16, sect_crc[i]);
	}
	put_u32le(toc + NSECT * 20, (uint32_t)nsyms);
	put_u32le(toc + NSECT * 20 + 4, (uint32_t)w->nseries);
	put_u32le(toc + NSECT * 20 + 8, (uint32_t)npairs);
	put_u32le(foot, (uint32_t)f.off);
	put_u32le(foot + 4, (uint32_t)(f.off >> 32));
	put_u32le(foot + 8, crc32c(toc, TOC_LEN));
	memcpy(foot + 12, IDX_MAGIC, MAGIC_LEN);
	bf_write(&f, toc, TOC_LEN);
	bf_write(&f, foot, sizeof foot);
	bytes += f.off;
	if (bf_close(&f) < 0) {
		snprintf(err, errlen, "write %s: %s", ipath, strerror(f.err));
		goto out;
	}
	write_json_meta(w, bytes);
	{
		char *cdir = pathf("%s/chunks", w->tmp, NULL);

		sync_dir(cdir);
		mem_free(cdir);
	}
	sync_dir(w->tmp);
	final = pathf("%s/%s", w->datadir, w->id);
	if (rename(w->tmp, final) < 0) {
		snprintf(err, errlen, "rename %s: %s", w->tmp, strerror(errno));
		goto out;
	}
	sync_dir(w->datadir);
	memcpy(id, w->id, BLOCK_ID_LEN + 1);
	rc = 0;
out:
	mem_free(sm.key);
	mem_free(sm.val);
	mem_free(syms);
	mem_free(pm.key);
	mem_free(pm.idx);
	mem_free(pairs);
	mem_free(lists);
	mem_free(listpos);
	mem_free(sertab);
	mem_free(symtab);
	mem_free(ipath);
	mem_free(final);
	writer_free(w, rc != 0);
	return rc;
}

/* --- reader ------------------------------------------------------------------------------- */

struct mapping {
	const uint8_t *b;
	size_t len;
};

struct block {
	uint32_t refs;		/* atomic */
	uint8_t deleted;	/* atomic */
	char *dir;
	struct block_meta meta;
	struct mapping idx;
	struct mapping *files;	/* chunk files, [0] is 000001 */
	uint64_t *want;		/* their sizes per the index */
	uint32_t nfiles;
	uint64_t bytes;
	/* sections of idx */
	const uint8_t *sect[NSECT];
	uint64_t sectlen[NSECT];
	uint32_t nsyms, nseries, npairs;
	uint32_t bad_chunks;	/* atomic: logged once */
};

static int
map_ro(const char *path, struct mapping *m, char *err, size_t errlen)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *p;

	m->b = NULL;
	m->len = 0;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (sb.st_size == 0) {
		close(fd);
		snprintf(err, errlen, "%s is empty", path);
		return -1;
	}
	p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap %s: %s", path, strerror(errno));
		return -1;
	}
	m->b = p;
	m->len = (size_t)sb.st_size;
	return 0;
}

static void
unmap(struct mapping *m)
{
	if (m->b != NULL)
		munmap((void *)m->b, m->len);
	m->b = NULL;
}

static void
block_free(struct block *b)
{
	uint32_t i;

	unmap(&b->idx);
	for (i = 0; i < b->nfiles; i++)
		unmap(&b->files[i]);
	mem_free(b->files);
	mem_free(b->want);
	mem_free(b->meta.parents);
	if (b->deleted)
		block_rmdir(b->dir);
	mem_free(b->dir);
	mem_free(b);
}

/* parse_index checks the index's footer, toc and section checksums. */
static int
parse_index(struct block *b, const char *path, char *err, size_t errlen)
{
	const uint8_t *p = b->idx.b, *toc;
	size_t len = b->idx.len;
	uint64_t tocoff;
	struct dec d;
	uint32_t i, nparents, nfiles;

	if (len < MAGIC_LEN + TOC_LEN + 12 + MAGIC_LEN ||
	    (memcmp(p, IDX_MAGIC, MAGIC_LEN) != 0 && memcmp(p, IDX_MAGIC1, MAGIC_LEN) != 0) ||
	    memcmp(p + len - MAGIC_LEN, p, MAGIC_LEN) != 0) {
		snprintf(err, errlen, "%s is not a strata block index (bad magic)", path);
		return -1;
	}
	tocoff = get_u64le(p + len - MAGIC_LEN - 12);
	if (tocoff != len - MAGIC_LEN - 12 - TOC_LEN) {
		snprintf(err, errlen, "%s: bad table of contents offset", path);
		return -1;
	}
	toc = p + tocoff;
	if (crc32c(toc, TOC_LEN) != get_u32le(p + len - MAGIC_LEN - 4)) {
		snprintf(err, errlen, "%s: table of contents checksum mismatch", path);
		return -1;
	}
	for (i = 0; i < NSECT; i++) {
		uint64_t off = get_u64le(toc + i * 20), sl = get_u64le(toc + i * 20 + 8);

		if (off < MAGIC_LEN || off > tocoff || sl > tocoff - off) {
			snprintf(err, errlen, "%s: section %u out of bounds", path, i);
			return -1;
		}
		if (crc32c(p + off, sl) != get_u32le(toc + i * 20 + 16)) {
			snprintf(err, errlen, "%s: checksum mismatch in section %u", path, i);
			return -1;
		}
		b->sect[i] = p + off;
		b->sectlen[i] = sl;
	}
	b->nsyms = get_u32le(toc + NSECT * 20);
	b->nseries = get_u32le(toc + NSECT * 20 + 4);
	b->npairs = get_u32le(toc + NSECT * 20 + 8);
	if (b->sectlen[S_SYMTAB] != 4ull * b->nsyms || b->sectlen[S_SERIESTAB] != 4ull * b->nseries ||
	    b->sectlen[S_PAIRS] != 16ull * b->npairs) {
		snprintf(err, errlen, "%s: inconsistent table sizes", path);
		return -1;
	}
	dec_init(&d, b->sect[S_META], b->sectlen[S_META]);
	b->meta.mint = (int64_t)dec_u64(&d);
	b->meta.maxt = (int64_t)dec_u64(&d);
	b->meta.nseries = dec_u64(&d);
	b->meta.nchunks = dec_u64(&d);
	b->meta.nsamples = dec_u64(&d);
	b->meta.level = dec_u32(&d);
	nfiles = dec_u32(&d);
	if (d.err || nfiles > 100000 || b->meta.nseries != b->nseries) {
		snprintf(err, errlen, "%s: bad meta section", path);
		return -1;
	}
	b->files = mem_calloc(nfiles + 1, sizeof *b->files);
	b->want = mem_calloc(nfiles + 1, sizeof *b->want);
	b->nfiles = nfiles;
	for (i = 0; i < b->nfiles; i++)
		b->want[i] = dec_u64(&d);	/* expected size, checked at map */
	nparents = dec_u32(&d);
	if (d.err || nparents > dec_left(&d) / BLOCK_ID_LEN) {
		snprintf(err, errlen, "%s: bad meta section", path);
		return -1;
	}
	b->meta.nparents = nparents;
	b->meta.parents = mem_calloc(nparents + 1, sizeof *b->meta.parents);
	for (i = 0; i < nparents; i++)
		memcpy(b->meta.parents[i], dec_bytes(&d, BLOCK_ID_LEN), BLOCK_ID_LEN);
	{
		const uint8_t *bid = dec_bytes(&d, BLOCK_ID_LEN);

		if (bid == NULL) {
			snprintf(err, errlen, "%s: bad meta section", path);
			return -1;
		}
		memcpy(b->meta.id, bid, BLOCK_ID_LEN);
	}
	return 0;
}

struct block *
block_open(const char *dir, char *err, size_t errlen)
{
	struct block *b = mem_calloc(1, sizeof *b);
	char *p = pathf("%s/index", dir, NULL);
	uint32_t i;

	b->refs = 1;
	b->dir = mem_strdup(dir);
	if (map_ro(p, &b->idx, err, errlen) < 0 || parse_index(b, p, err, errlen) < 0)
		goto fail;
	b->bytes = b->idx.len;
	for (i = 0; i < b->nfiles; i++) {
		char name[32];
		char *cp;
		uint64_t want = b->want[i];

		snprintf(name, sizeof name, "%06" PRIu32, i + 1);
		cp = pathf("%s/chunks/%s", dir, name);
		if (map_ro(cp, &b->files[i], err, errlen) < 0) {
			mem_free(cp);
			goto fail;
		}
		if (b->files[i].len != want || memcmp(b->files[i].b, CHUNK_MAGIC, MAGIC_LEN) != 0) {
			snprintf(err, errlen, "%s: %s", cp, b->files[i].len != want ?
			    "size differs from the index (truncated or replaced)" : "bad magic");
			mem_free(cp);
			goto fail;
		}
		b->bytes += b->files[i].len;
		mem_free(cp);
	}
	mem_free(p);
	return b;
fail:
	mem_free(p);
	block_free(b);
	return NULL;
}

struct block *
block_ref(struct block *b)
{
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

void
block_put(struct block *b)
{
	if (b != NULL && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		block_free(b);
}

void
block_delete(struct block *b)
{
	char *to = pathf("%s.deleting", b->dir, NULL);

	if (rename(b->dir, to) == 0) {
		mem_free(b->dir);
		b->dir = to;
	} else {
		mem_free(to);
	}
	__atomic_store_n(&b->deleted, 1, __ATOMIC_RELEASE);
}

const struct block_meta *
block_meta(const struct block *b)
{
	return &b->meta;
}

const char *
block_dir(const struct block *b)
{
	return b->dir;
}

uint64_t
block_bytes(const struct block *b)
{
	return b->bytes;
}

/* --- symbol and pair lookups ---------------------------------------------------------------- */

/* sym returns symbol i as a C string (the file stores the NUL). */
static const char *
sym(const struct block *b, uint32_t i, size_t *len)
{
	struct dec d;
	uint32_t off;
	size_t n;
	const uint8_t *s;

	if (i >= b->nsyms)
		return NULL;
	off = get_u32le(b->sect[S_SYMTAB] + 4 * (size_t)i);
	if (off >= b->sectlen[S_SYMBOLS])
		return NULL;
	dec_init(&d, b->sect[S_SYMBOLS] + off, b->sectlen[S_SYMBOLS] - off);
	s = dec_str(&d, &n);
	if (s == NULL || dec_left(&d) < 1 || s[n] != '\0')
		return NULL;
	if (len != NULL)
		*len = n;
	return (const char *)s;
}

/* find_sym returns the index of str, or UINT32_MAX. */
static uint32_t
find_sym(const struct block *b, const char *str)
{
	uint32_t lo = 0, hi = b->nsyms;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *s = sym(b, mid, NULL);
		int c;

		if (s == NULL)
			return UINT32_MAX;
		c = strcmp(s, str);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return UINT32_MAX;
}

static uint64_t
pair_key(const struct block *b, uint32_t i)
{
	const uint8_t *p = b->sect[S_PAIRS] + 16 * (size_t)i;

	return (uint64_t)get_u32le(p) << 32 | get_u32le(p + 4);
}

/* pair_lower returns the first pair index with key >= k. */
static uint32_t
pair_lower(const struct block *b, uint64_t k)
{
	uint32_t lo = 0, hi = b->npairs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (pair_key(b, mid) < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* pair_ids appends pair i's series list to out. */
static void
pair_ids(const struct block *b, uint32_t i, struct postings_ids *out, size_t *cap)
{
	const uint8_t *p = b->sect[S_PAIRS] + 16 * (size_t)i;
	uint32_t off = get_u32le(p + 8), count = get_u32le(p + 12), k, id = 0;
	struct dec d;

	if (off >= b->sectlen[S_POSTINGS])
		return;
	dec_init(&d, b->sect[S_POSTINGS] + off, b->sectlen[S_POSTINGS] - off);
	if (dec_uvarint(&d) != count || d.err)
		return;
	if (out->n + count > *cap) {
		*cap = (out->n + count) * 2;
		out->v = mem_realloc(out->v, *cap * sizeof *out->v);
	}
	for (k = 0; k < count; k++) {
		id += (uint32_t)dec_uvarint(&d);
		if (d.err || id >= b->nseries)
			break;
		out->v[out->n++] = id;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* values_ids: the ids of name's values matching m (want) or not (!want). */
static void
values_ids(void *src, const struct matcher *m, bool want, struct postings_ids *out)
{
	const struct block *b = src;
	uint32_t name = find_sym(b, m->name), i, lists = 0;
	const char *lit = NULL;
	size_t cap = 0;

	out->v = NULL;
	out->n = 0;
	if (name == UINT32_MAX)
		return;
	if (want)
		lit = matcher_literal(m);
	if (lit != NULL) {
		uint32_t v = find_sym(b, lit);

		if (v != UINT32_MAX) {
			i = pair_lower(b, (uint64_t)name << 32 | v);
			if (i < b->npairs && pair_key(b, i) == ((uint64_t)name << 32 | v))
				pair_ids(b, i, out, &cap);
		}
		return;
	}
	for (i = pair_lower(b, (uint64_t)name << 32); i < b->npairs &&
	    pair_key(b, i) >> 32 == name; i++) {
		const char *v = sym(b, (uint32_t)pair_key(b, i), NULL);

		if (v != NULL && matcher_matches(m, v) == want) {
			pair_ids(b, i, out, &cap);
			lists++;
		}
	}
	if (lists > 1)
		qsort(out->v, out->n, sizeof *out->v, cmp_u32);
}

void
block_all(struct block *b, struct postings_ids *out)
{
	uint32_t i;

	out->v = mem_alloc(((size_t)b->nseries + 1) * sizeof *out->v);
	out->n = b->nseries;
	for (i = 0; i < b->nseries; i++)
		out->v[i] = i;
}

/* all_ids is block_all as a postings_all_fn. */
static void
all_ids(void *src, struct postings_ids *out)
{
	block_all(src, out);
}

void
block_select(struct block *b, struct matcher *const *ms, size_t n, struct postings_ids *out)
{
	postings_ids_for_matchers(ms, n, values_ids, all_ids, b, out);
}

/* series_at opens a decoder on series ref. */
static bool
series_at(const struct block *b, uint32_t ref, struct dec *d)
{
	uint32_t off;

	if (ref >= b->nseries)
		return false;
	off = get_u32le(b->sect[S_SERIESTAB] + 4 * (size_t)ref);
	if (off >= b->sectlen[S_SERIES])
		return false;
	dec_init(d, b->sect[S_SERIES] + off, b->sectlen[S_SERIES] - off);
	return true;
}

struct labels *
block_labels(struct block *b, uint32_t ref)
{
	struct label stackv[32], *v = stackv;
	struct labels *ls = NULL;
	struct dec d;
	uint64_t n, i;

	if (!series_at(b, ref, &d))
		return NULL;
	n = dec_uvarint(&d);
	if (d.err || n == 0 || n > 4096)
		return NULL;
	if (n > 32)
		v = mem_alloc(n * sizeof *v);
	for (i = 0; i < n; i++) {
		v[i].name = sym(b, (uint32_t)dec_uvarint(&d), NULL);
		v[i].value = sym(b, (uint32_t)dec_uvarint(&d), NULL);
		if (d.err || v[i].name == NULL || v[i].value == NULL)
			goto out;
	}
	ls = labels_new(v, (size_t)n);
out:
	if (v != stackv)
		mem_free(v);
	return ls;
}

/* skip_labels moves d past a series' labels. */
static void
skip_labels(struct dec *d)
{
	uint64_t n = dec_uvarint(d), i;

	for (i = 0; i < n && !d->err; i++) {
		(void)dec_uvarint(d);
		(void)dec_uvarint(d);
	}
}

/* chunk_at returns the bytes of the chunk record at (file, off), checking
 * its checksum; NULL (logged once per block) when damaged. */
static const uint8_t *
chunk_at(struct block *b, uint64_t file, uint64_t off, uint8_t *enc, size_t *len)
{
	const struct mapping *m;
	struct dec d;
	uint64_t n;
	const uint8_t *p;
	const char *why = "out of bounds";

	if (file == 0 || file > b->nfiles)
		goto bad;
	m = &b->files[file - 1];
	if (off < MAGIC_LEN || off >= m->len)
		goto bad;
	dec_init(&d, m->b + off, m->len - off);
	n = dec_uvarint(&d);
	if (d.err || n > dec_left(&d) || dec_left(&d) - n < 5)
		goto bad;
	p = d.p;
	if (crc32c(p, n + 1) != get_u32le(p + n + 1)) {
		why = "checksum mismatch";
		goto bad;
	}
	*enc = p[0];
	*len = (size_t)n;
	return p + 1;
bad:
	if (__atomic_fetch_add(&b->bad_chunks, 1, __ATOMIC_RELAXED) == 0) {
		char f[32], o[32];

		snprintf(f, sizeof f, "%06" PRIu64, file);
		snprintf(o, sizeof o, "%" PRIu64, off);
		log_kv(LOG_ERROR, "tsdb", "damaged chunk skipped", "block", b->dir,
		    "chunk_file", f, "offset", o, "reason", why, (char *)NULL);
	}
	return NULL;
}

bool
block_series_sources(struct block *b, uint32_t ref, struct tsdb_iter *it, uint32_t prio)
{
	struct dec d;
	uint64_t n, i;
	int64_t prev = b->meta.mint;

	if (!series_at(b, ref, &d))
		return false;
	skip_labels(&d);
	n = dec_uvarint(&d);
	for (i = 0; i < n && !d.err; i++) {
		int64_t mint = prev + dec_varint(&d), maxt = mint + (int64_t)dec_uvarint(&d);
		uint64_t file = dec_uvarint(&d), off = dec_uvarint(&d);
		const uint8_t *p;
		uint8_t enc;
		size_t len;

		prev = maxt;
		if (d.err)
			break;
		if (maxt < it->mint || mint > it->maxt)
			continue;
		p = chunk_at(b, file, off, &enc, &len);
		if (p == NULL) {
			it->err = CHUNK_ERR_CORRUPT;
			continue;
		}
		iter_add_raw(it, enc, p, len, mint, maxt, prio);
	}
	return !d.err;
}

int
block_series_samples(struct block *b, uint32_t ref, struct tsdb_sample **v, size_t *nv,
    size_t *cap)
{
	struct dec d;
	uint64_t n, i;
	int64_t prev = b->meta.mint;
	int rc = 0;

	if (!series_at(b, ref, &d))
		return -1;
	skip_labels(&d);
	n = dec_uvarint(&d);
	for (i = 0; i < n && !d.err; i++) {
		int64_t mint = prev + dec_varint(&d), maxt = mint + (int64_t)dec_uvarint(&d);
		uint64_t file = dec_uvarint(&d), off = dec_uvarint(&d);
		const uint8_t *p;
		uint8_t enc;
		size_t len, before = *nv;

		prev = maxt;
		if (d.err || (p = chunk_at(b, file, off, &enc, &len)) == NULL) {
			rc = -1;
			continue;
		}
		if (chunk_decode(enc, p, len, v, nv, cap) != 0) {
			*nv = before;
			rc = -1;
		}
	}
	return d.err ? -1 : rc;
}

void
block_label_names(struct block *b, struct tsdb_strings *out)
{
	uint32_t i, last = UINT32_MAX;

	out->n = 0;
	out->v = mem_alloc(((size_t)b->npairs + 1) * sizeof *out->v);
	for (i = 0; i < b->npairs; i++) {
		uint32_t name = (uint32_t)(pair_key(b, i) >> 32);
		const char *s;
		size_t len;

		if (name == last || (s = sym(b, name, &len)) == NULL)
			continue;
		last = name;
		out->v[out->n++] = intern_get(s, len);
	}
}

void
block_label_values(struct block *b, const char *name, struct tsdb_strings *out)
{
	uint32_t nm = find_sym(b, name), i;

	out->n = 0;
	out->v = NULL;
	if (nm == UINT32_MAX)
		return;
	i = pair_lower(b, (uint64_t)nm << 32);
	out->v = mem_alloc(((size_t)b->npairs - i + 1) * sizeof *out->v);
	for (; i < b->npairs && pair_key(b, i) >> 32 == nm; i++) {
		size_t len;
		const char *s = sym(b, (uint32_t)pair_key(b, i), &len);

		if (s != NULL)
			out->v[out->n++] = intern_get(s, len);
	}
}
