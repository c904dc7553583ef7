/* central/coverage.c - the coverage file of a replica (see coverage.h).
 *
 * mu guards held, fd and lines. The file is only ever appended to, except by
 * compaction, which writes the merged set to peer-coverage.tmp, fsyncs it
 * and renames it over the file before the next append goes to the new one.
 */
#include "config.h"

#include "central/coverage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/mem.h"
#include "util/strbuf.h"

#define COVERAGE_HEADER "# strata peer coverage v1\n"
#define COVERAGE_MAX_READ ((size_t)64 << 20)	/* a larger file is read in part */
#define COVERAGE_COMPACT_LINES 4096

struct coverage {
	pthread_mutex_t mu;
	char *path, *tmp_path;
	int fd;				/* append; -1 after a failed compaction */
	size_t lines;			/* appended since the last compaction */
	struct ranges held;
};

/* parse_int reads an optionally negative decimal int64 at *p (< end).
 * Returns false when there is none or it overflows. */
static bool
parse_int(const char **p, const char *end, int64_t *out)
{
	const char *s = *p;
	bool neg = false;
	uint64_t v = 0;
	int digits = 0;

	if (s < end && *s == '-') {
		neg = true;
		s++;
	}
	while (s < end && *s >= '0' && *s <= '9') {
		if (++digits > 18)
			return false;	/* beyond any millisecond timestamp */
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	if (digits == 0)
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
	*p = s;
	return true;
}

size_t
coverage_parse(const char *buf, size_t len, struct ranges *out)
{
	const char *p = buf, *end = buf + len;
	size_t taken = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *q = p;
		int64_t s, e;

		if (nl == NULL)
			break;		/* torn last line */
		if (*q != '#' && parse_int(&q, nl, &s) && q < nl && *q == ' ' &&
		    (q++, parse_int(&q, nl, &e)) && q == nl && s < e) {
			ranges_add(out, s, e);
			taken++;
		}
		p = nl + 1;
	}
	return taken;
}

/* write_all writes len bytes to fd. Returns 0 or -1 (errno set). */
static int
write_all(int fd, const char *b, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, b, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

/* compact writes c->held to the temporary file and renames it over the
 * file, then appends to the new one. Called with mu held (or before c is
 * shared). Returns 0 or -1 with err. */
static int
compact(struct coverage *c, char *err, size_t errlen)
{
	struct strbuf sb = STRBUF_INIT;
	int fd, nfd = -1;

	strbuf_puts(&sb, COVERAGE_HEADER);
	for (size_t i = 0; i < c->held.n; i++)
		strbuf_printf(&sb, "%" PRId64 " %" PRId64 "\n", c->held.v[i].start,
		    c->held.v[i].end);
	fd = open(c->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, sb.buf, sb.len) < 0 || fsync(fd) < 0) {
		snprintf(err, errlen, "write %s: %s", c->tmp_path, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(c->tmp_path, c->path) < 0) {
		snprintf(err, errlen, "rename %s: %s", c->tmp_path, strerror(errno));
		goto fail;
	}
	nfd = open(c->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (nfd < 0) {
		snprintf(err, errlen, "open %s: %s", c->path, strerror(errno));
		goto fail;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = nfd;
	c->lines = 0;
	strbuf_free(&sb);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(c->tmp_path);
	strbuf_free(&sb);
	return -1;
}

struct coverage *
coverage_open(const char *dir, int64_t min_time, char *err, size_t errlen)
{
	struct coverage *c = mem_calloc(1, sizeof(*c));
	struct strbuf sb = STRBUF_INIT;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	pthread_mutex_init(&c->mu, NULL);
	c->fd = -1;
	strbuf_printf(&sb, "%s/%s", dir, COVERAGE_FILE);
	c->path = strbuf_detach(&sb, NULL);
	strbuf_printf(&sb, "%s/%s.tmp", dir, COVERAGE_FILE);
	c->tmp_path = strbuf_detach(&sb, NULL);

	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		snprintf(err, errlen, "open %s: %s", c->path, strerror(errno));
		goto fail;
	}
	if (fd >= 0) {
		buf = mem_alloc(COVERAGE_MAX_READ);
		while (len < COVERAGE_MAX_READ) {
			ssize_t r = read(fd, buf + len, COVERAGE_MAX_READ - len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				snprintf(err, errlen, "read %s: %s", c->path, strerror(errno));
				close(fd);
				goto fail;
			}
			if (r == 0)
				break;
			len += (size_t)r;
		}
		close(fd);
		coverage_parse(buf, len, &c->held);
		MEM_FREE(buf);
	}
	coverage_forget(c, min_time);
	if (compact(c, err, errlen) < 0)
		goto fail;
	return c;
fail:
	mem_free(buf);
	coverage_close(c);
	return NULL;
}

void
coverage_close(struct coverage *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	ranges_free(&c->held);
	mem_free(c->path);
	mem_free(c->tmp_path);
	pthread_mutex_destroy(&c->mu);
	mem_free(c);
}

int
coverage_add(struct coverage *c, int64_t start, int64_t end, char *err, size_t errlen)
{
	char line[64];
	int n, rc = 0;

	if (start >= end)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (ranges_covers(&c->held, start, end))
		goto out;
	ranges_add(&c->held, start, end);
	if (c->lines >= COVERAGE_COMPACT_LINES) {
		rc = compact(c, err, errlen);
		goto out;
	}
	n = snprintf(line, sizeof(line), "%" PRId64 " %" PRId64 "\n", start, end);
	if (c->fd < 0) {
		rc = compact(c, err, errlen);	/* retry what failed before */
	} else if (write_all(c->fd, line, (size_t)n) < 0) {
		snprintf(err, errlen, "append to %s: %s", c->path, strerror(errno));
		rc = -1;
	} else {
		c->lines++;
	}
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void
coverage_forget(struct coverage *c, int64_t min_time)
{
	if (min_time <= 0)
		return;
	pthread_mutex_lock(&c->mu);
	ranges_clip(&c->held, min_time, INT64_MAX);
	pthread_mutex_unlock(&c->mu);
}

void
coverage_get(struct coverage *c, struct ranges *out)
{
	pthread_mutex_lock(&c->mu);
	ranges_copy(out, &c->held);
	pthread_mutex_unlock(&c->mu);
}
