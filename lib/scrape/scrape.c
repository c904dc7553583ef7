/* lib/scrape/scrape.c - scrape pools, the event loop, HTTP transfers, workers.
 *
 * Objects:
 * - struct pool: one job of the installed configuration: its cfg_scrape
 *   (borrowed), its file_sd state, its candidate targets (what survived
 *   target relabeling, each active, not owned or a duplicate) and the
 *   discovered sets relabeling dropped. A pool replaced by an apply waits in
 *   the graveyard until no worker job uses it, so its cfg_scrape stays valid
 *   for every scrape started under it.
 * - struct target: one scraped endpoint: identity (labels, URL, hash,
 *   interval, phase), a libcurl easy handle (set up again only when its
 *   pool changes, for pulls, or for secrets read from files), the body
 *   buffer (from the manager's pool of buffers, held only while it
 *   scrapes), the scrape cache and the status shown by /api/v1/targets. A
 *   target moves from pool to pool across applies while its identity is
 *   unchanged; otherwise it is retired: it stops ticking and, two intervals
 *   later, writes its end-of-run staleness markers and is freed.
 *
 * Threads and locks:
 * - The loop thread owns the timer heap, the curl multi handle, every
 *   easy handle, pool membership and the state of every target. It sleeps in
 *   epoll_wait on curl's sockets and an eventfd (commands, finished jobs).
 *   Each target has its own libcurl share (connection and DNS cache), so
 *   no libcurl operation walks the connections of all targets.
 * - Worker threads take targets whose body is complete from the work queue
 *   (wq_mu), inflate gzip bodies, parse and append them with the target's
 *   cache (a target is in at most one place at a time: T_FETCH on the loop,
 *   T_WORK in a worker), then put them on the done list. While the loop
 *   thread is lightly loaded it does that job itself for small bodies
 *   (dispatch, process_here): on a virtual machine the wake-up of a sleeping
 *   worker costs about as much as parsing a thousand samples. They poke the
 *   eventfd only while the loop waits for finished jobs (want_done: a
 *   retired target or a replaced pool) or for a catch-up pull; otherwise
 *   the loop takes the done list back when it next wakes, before it fires
 *   timers, so an ordinary scrape costs no extra wakeup.
 * - mu guards what readers see: the pool list, each pool's candidates and
 *   dropped sets, each target's discovered labels and status fields. The
 *   loop thread takes it to change membership, workers to set status.
 * - api_mu serialises apply, resync and stop; cmd_mu/cmd_cond carry one
 *   command at a time to the loop thread and its completion back.
 * - cur_mu guards the pull cursor table (and its file): the loop thread
 *   reads a target's cursor there once, workers update it after pulls.
 *   A target's own cursor is used like its body: by the loop thread while
 *   it fetches, by the worker while it appends.
 * - Each scrape cache's metadata has its own lock (cache.h); readers reach
 *   the caches of active targets under mu.
 * Lock order: api_mu, then mu, then wq_mu / cmd_mu / ist_mu / cur_mu / a
 * cache's metadata lock.
 *
 * Pull catch-up: a worker that finds its pull far behind sets pull_again;
 * the loop thread, taking the target back, moves its timer to now (catchup)
 * and, when that fires, back onto its phase grid.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "expfmt/pull.h"
#include "http/client_opts.h"
#include "scrape/cache.h"
#include "scrape/scrape.h"
#include "scrape/target.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define ACCEPT_HEADER "application/openmetrics-text;version=1.0.0," \
	"application/openmetrics-text;version=0.0.1;q=0.75," \
	"text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
#define NS_PER_MS INT64_C(1000000)
#define ALIGN_TOLERANCE_NS (2 * NS_PER_MS)	/* Prometheus' ScrapeTimestampTolerance */
#define BUF_POOL_MAX 16			/* body buffers kept for reuse ... */
#define BUF_POOL_BYTES (32u << 20)	/* ... holding at most this in all */
#define RING 1024			/* interval observations kept for quantiles */
#define MAX_WORKERS 8
#define GZIP_SLACK 1024			/* gzip framing allowed over body_size_limit */
/* libcurl's receive buffer (its default: 16 KiB). libcurl 7.88 mallocs it
 * (this + 1 bytes) for every transfer and frees it when the transfer is done;
 * 32 KiB in all is the largest size jemalloc's thread cache keeps, so the
 * allocation stays off the arena. */
#define RECV_BUF (32 * 1024 - 1)
#define ZBUF_KEEP (16u << 20)		/* a worker keeps its inflate buffer up to this */
#define HERE_MAX_BODY (128u << 10)	/* the loop processes bodies up to this itself ... */
#define HERE_MAX_SERIES 4096		/* ... of targets with up to this many cached series ... */
#define HERE_WINDOW_NS INT64_C(1000000000)	/* ... while busy under half of the last second */
#define PULL_LOOKBACK_MS (5 * 60 * 1000)	/* default cursor start: the lookback delta */
#define CURSOR_WRITE_GAP_MS 1000		/* workers write the cursor file at most this often */

#define ADD(p, x) __atomic_add_fetch((p), (x), __ATOMIC_RELAXED)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* --- types -------------------------------------------------------------------- */

enum timer_kind { TM_SCRAPE, TM_STALE, TM_SD };

struct timer {
	int64_t at;		/* wall clock, ns */
	size_t idx;		/* position in the heap + 1; 0 = not queued */
	enum timer_kind kind;
};

struct heap {
	struct timer **v;
	size_t n, cap;
};

enum tstate { T_IDLE, T_FETCH, T_WORK };

struct pool;
struct scrape_manager;

struct target {
	struct timer tm;		/* first: a timer of kind TM_SCRAPE/TM_STALE is a target */
	struct scrape_manager *m;
	struct target *anext, *aprev;	/* every live target (for free) */
	struct pool *pool;		/* current pool; NULL once retired */
	struct pool *jpool;		/* pool the job in a worker runs under */
	struct labels *discovered;	/* under mu */
	struct labels *labels, *public;
	char *url;
	uint64_t hash;
	int64_t interval_ns, timeout_ms, phase_ns;
	/* loop thread */
	enum tstate state;
	bool retired;
	CURL *easy;
	CURLSH *share;			/* the target's own connection and DNS cache */
	struct curl_slist *hdrs;	/* request headers */
	struct curl_slist *connect_to;	/* CURLOPT_CONNECT_TO (tls server_name) */
	struct curl_slist *proxy_hdrs;	/* proxy_connect_header */
	CURLU *uh;			/* the request URL parsed once (CURLOPT_CURLU) ... */
	char *uh_url;			/* ... from this string */
	char errbuf[CURL_ERROR_SIZE];
	char status[96];
	bool code_checked, not_ok, over_limit, oom;
	bool gzip;			/* Content-Encoding: gzip (the worker inflates) */
	uint64_t body_limit;
	char *buf;			/* from the buffer pool while scraping */
	size_t len, cap, last_size;
	uint64_t conf_pool;		/* id of the pool easy is set up for; 0: none */
	int64_t ts_ms;			/* sample timestamp of this scrape */
	int64_t start_mono_ns;
	int64_t start_wall_ms;
	int64_t last_start_ns;
	/* job */
	char *fetch_err;		/* NULL: the body arrived */
	char *ctype;
	struct target *qnext;
	/* the worker holding the target */
	struct scrape_cache *cache;
	/* pulls (loop thread while fetching, the worker while appending) */
	bool pullable;			/* this scrape asks for a pull body */
	bool cursor_set;		/* cursor holds a value */
	bool pull_again;		/* worker -> loop: pull again at once */
	bool catchup;			/* loop: the timer is a catch-up pull */
	int64_t cursor;			/* ms: the next pull asks for samples after it */
	int64_t pull_window;		/* ms: the most a pull asks for (0: the most) */
	/* status, under mu */
	char *last_error;
	int64_t last_scrape_ms;
	double last_duration_s;
	enum scrape_health health;
	bool pull_mode;			/* the last successful scrape was a pull */
};

/* A target's pull cursor as the manager remembers (and saves) it. */
struct cursor {
	char *pool, *url;
	int64_t cur;			/* where the target's next pull starts */
	int64_t saved;			/* what the file holds: the start of the last
					 * successful pull */
	int64_t touched;		/* wall ms of the last pull attempt */
};

struct sd_file {
	char *path;
	int64_t mtime_ns;
	int64_t size;
	uint64_t ino;
	struct cfg_target_group *groups;
	size_t ngroups;
};

struct sd_conf {
	const struct cfg_file_sd *fs;	/* borrowed from the pool's cfg */
	int64_t next_refresh_ns;
	struct sd_file *files;
	size_t nfiles;
};

enum cstate { C_ACTIVE, C_NOT_OWNED, C_DUP };

struct cand {
	struct scrape_tdef d;
	enum cstate st;
	struct target *t;		/* C_ACTIVE */
};

struct pool {
	char *name;
	const struct cfg_scrape *sc;
	struct sd_conf *sd;
	size_t nsd;
	struct cand *cands;		/* under mu */
	size_t ncands;
	struct labels **dropped;	/* under mu */
	size_t ndropped;
	size_t nactive;
	uint64_t discovered, sync_failed;
	char *forced_err;		/* target_limit exceeded, or NULL */
	unsigned busy;			/* jobs in workers under this pool */
	uint64_t id;			/* unique in the manager, never 0 */
	struct pool *gnext;
};

struct istat {
	int64_t interval_ms;
	uint64_t count;
	double sum;
	double ring[RING];
	size_t pos, n;
};

enum cmd { CMD_NONE, CMD_INSTALL, CMD_RESYNC, CMD_STOP };

struct install {
	struct pool **pools;
	size_t n;
};

/* Body buffers between scrapes (loop thread): a target holds one only
 * while it scrapes, so memory follows the scrapes in flight, not the
 * number of targets. */
struct buf_pool {
	char *p[BUF_POOL_MAX];
	size_t cap[BUF_POOL_MAX];
	size_t n, bytes;
};

/* A worker's inflate buffer. */
struct zbuf {
	char *p;
	size_t cap;
};

/* What the loop thread needs to process scrapes itself (dispatch). */
struct here {
	struct scrape_scratch *w;	/* created on first use */
	struct tsdb_appender *app, *papp;
	struct zbuf z;
	int64_t woke;			/* monotonic ns: the loop's last wake-up */
	int64_t win_start, win_busy;	/* the current window and the loop's time awake in it */
	bool loaded;			/* awake over half of the last window */
};

struct scrape_manager {
	struct scrape_opts o;
	char *user_agent;
	int64_t sd_poll_ns;
	pthread_t loop_th;
	pthread_t *workers;
	unsigned nworkers;
	int ep, evfd;
	CURLM *multi;
	uint8_t *socks;			/* loop thread: SOCK_* of each fd number */
	size_t nsocks;
	int64_t curl_deadline;		/* monotonic ns; -1: none */
	struct heap heap;
	struct buf_pool bufs;		/* loop thread */
	uint64_t pool_ids;		/* under api_mu: the last pool id given */
	struct timer sd_timer;
	struct tsdb_appender *loop_app;
	struct target *all;
	size_t ntargets;		/* live targets (in m->all) */
	size_t maxconnects;		/* what CURLMOPT_MAXCONNECTS was set to */
	int64_t last_now;		/* wall clock at the last timer pass */
	bool loop_exit;

	pthread_mutex_t mu;
	struct pool **pools;
	size_t npools;
	struct pool *graveyard;		/* loop thread */
	bool install_waiting;		/* loop thread: complete CMD_INSTALL once the graveyard is empty */

	pthread_mutex_t api_mu;
	bool stopped;

	pthread_mutex_t cmd_mu;
	pthread_cond_t cmd_cond;
	enum cmd cmd;
	void *cmd_arg;
	bool cmd_done;

	pthread_mutex_t wq_mu;
	pthread_cond_t wq_cond;
	struct target *wq_head, *wq_tail, *done;
	bool workers_stop;
	bool want_done;			/* atomic, set by the loop: workers poke it
					 * after every job (else only for pull_again) */
	size_t retired_busy;		/* loop thread: retired targets in a worker */
	struct here here;		/* loop thread */

	pthread_mutex_t ist_mu;
	struct istat *ist;
	size_t nist;

	pthread_mutex_t cur_mu;
	struct cursor *curs;
	size_t ncurs, capcurs;
	char *cur_path;			/* the cursor file, or NULL */
	bool cur_dirty;			/* curs holds what the file does not */
	int64_t cur_written_ms;		/* last write attempt */

	/* statistics (atomic) */
	uint64_t st_scrapes, st_failed, st_samples, st_skipped, st_sample_limit,
	    st_body_limit, st_label_limits, st_target_limit, st_ooo, st_dup,
	    st_oob, st_flush_forced, st_sd_errors, st_reloads, st_reloads_failed,
	    st_pulls, st_catchups, st_pull_samples, st_cur_errors, st_hook_dropped;
};

/* --- clocks ---------------------------------------------------------------------- */

static int64_t
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* next_tick returns the first instant after now at phase modulo interval. */
static int64_t
next_tick(int64_t now, int64_t phase, int64_t interval)
{
	int64_t r = (now - phase) % interval;

	if (r < 0)
		r += interval;
	return now - r + interval;
}

/* --- timer heap (loop thread) ------------------------------------------------------ */

static void
heap_swap(struct heap *h, size_t a, size_t b)
{
	struct timer *x = h->v[a];

	h->v[a] = h->v[b];
	h->v[b] = x;
	h->v[a]->idx = a + 1;
	h->v[b]->idx = b + 1;
}

static void
heap_up(struct heap *h, size_t i)
{
	while (i > 0 && h->v[(i - 1) / 2]->at > h->v[i]->at) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && h->v[l]->at < h->v[m]->at)
			m = l;
		if (r < h->n && h->v[r]->at < h->v[m]->at)
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

static void
heap_push(struct heap *h, struct timer *t)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 256;
		h->v = mem_realloc(h->v, h->cap * sizeof(*h->v));
	}
	h->v[h->n] = t;
	t->idx = ++h->n;
	heap_up(h, h->n - 1);
}

static void
heap_remove(struct heap *h, struct timer *t)
{
	size_t i;

	if (t->idx == 0)
		return;
	i = t->idx - 1;
	t->idx = 0;
	h->n--;
	if (i == h->n)
		return;
	h->v[i] = h->v[h->n];
	h->v[i]->idx = i + 1;
	heap_down(h, i);
	heap_up(h, i);
}

/* --- small helpers ------------------------------------------------------------------ */

static char *
xstrdup(const char *s)
{
	return s != NULL ? mem_strdup(s) : NULL;
}

/* read_secret reads a credentials file and trims white space (Go's
 * strings.TrimSpace). Returns the text (caller frees) or NULL with err. */
static char *
read_secret(const char *path, const char *what, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char buf[8192];
	size_t n, b = 0;

	if (f == NULL) {
		snprintf(err, errlen, "unable to read %s file %s: open %s: %s", what,
		    path, path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
	    buf[n - 1] == '\t' || buf[n - 1] == '\v' || buf[n - 1] == '\f'))
		n--;
	while (b < n && (buf[b] == ' ' || buf[b] == '\n' || buf[b] == '\r' || buf[b] == '\t' ||
	    buf[b] == '\v' || buf[b] == '\f'))
		b++;
	return mem_strndup(buf + b, n - b);
}

/* format_seconds writes ms as Go's strconv.FormatFloat(s, 'f', -1, 64). */
static void
format_seconds(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms / 1000, f = ms % 1000;

	if (f == 0) {
		snprintf(buf, len, "%" PRId64, s);
	} else {
		char frac[8];
		int n;

		snprintf(frac, sizeof(frac), "%03d", (int)f);
		for (n = 3; n > 0 && frac[n - 1] == '0'; n--)
			frac[n - 1] = '\0';
		snprintf(buf, len, "%" PRId64 ".%s", s, frac);
	}
}

static const char *
status_text(long code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "";
}

/* --- interval statistics ------------------------------------------------------------- */

static void
ist_observe(struct scrape_manager *m, int64_t interval_ms, double secs)
{
	struct istat *s = NULL;
	size_t i;

	pthread_mutex_lock(&m->ist_mu);
	for (i = 0; i < m->nist; i++)
		if (m->ist[i].interval_ms == interval_ms)
			s = &m->ist[i];
	if (s == NULL) {
		m->ist = mem_realloc(m->ist, (m->nist + 1) * sizeof(*m->ist));
		s = &m->ist[m->nist++];
		memset(s, 0, sizeof(*s));
		s->interval_ms = interval_ms;
	}
	s->count++;
	s->sum += secs;
	s->ring[s->pos] = secs;
	s->pos = (s->pos + 1) % RING;
	if (s->n < RING)
		s->n++;
	pthread_mutex_unlock(&m->ist_mu);
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* --- pull cursors (cur_mu) ----------------------------------------------------------- */

static ssize_t
cursor_find(struct scrape_manager *m, const char *pool, const char *url)
{
	size_t i;

	for (i = 0; i < m->ncurs; i++)
		if (strcmp(m->curs[i].url, url) == 0 && strcmp(m->curs[i].pool, pool) == 0)
			return (ssize_t)i;
	return -1;
}

static struct cursor *
cursor_add(struct scrape_manager *m, const char *pool, const char *url)
{
	struct cursor *c;

	if (m->ncurs == m->capcurs) {
		m->capcurs = m->capcurs ? m->capcurs * 2 : 16;
		m->curs = mem_realloc(m->curs, m->capcurs * sizeof(*m->curs));
	}
	c = &m->curs[m->ncurs++];
	memset(c, 0, sizeof(*c));
	c->pool = mem_strdup(pool);
	c->url = mem_strdup(url);
	return c;
}

/* pool_escape writes a pool name with the bytes that would break a line
 * of the cursor file (blanks, controls, '%') as %XX. */
static void
pool_escape(struct strbuf *sb, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= 0x20 || ch == 0x7f || ch == '%')
			strbuf_printf(sb, "%%%02X", ch);
		else
			strbuf_putc(sb, (char)ch);
	}
}

static int
hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 :
	    ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* cursors_write saves the table (cur_mu held): tmp file, fsync, rename.
 * Entries not pulled for SCRAPE_CURSOR_KEEP_MS are forgotten first. */
static void
cursors_write(struct scrape_manager *m, int64_t now_ms)
{
	struct strbuf sb = STRBUF_INIT, tmp = STRBUF_INIT;
	size_t i, n = 0;
	int fd;
	bool ok;

	m->cur_written_ms = now_ms;
	for (i = 0; i < m->ncurs; i++) {
		if (m->curs[i].touched < now_ms - SCRAPE_CURSOR_KEEP_MS) {
			mem_free(m->curs[i].pool);
			mem_free(m->curs[i].url);
			continue;
		}
		m->curs[n++] = m->curs[i];
	}
	m->ncurs = n;
	if (m->cur_path == NULL) {
		m->cur_dirty = false;
		return;
	}
	strbuf_puts(&sb, "# strata scrape pull cursors 1: <cursor ms> <last pull ms> <pool> <url>\n");
	for (i = 0; i < m->ncurs; i++) {
		strbuf_printf(&sb, "%" PRId64 " %" PRId64 " ", m->curs[i].saved, m->curs[i].touched);
		pool_escape(&sb, m->curs[i].pool);
		strbuf_printf(&sb, " %s\n", m->curs[i].url);
	}
	strbuf_printf(&tmp, "%s.tmp", m->cur_path);
	fd = open(strbuf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ok = fd >= 0;
	if (ok) {
		size_t off = 0;

		while (ok && off < sb.len) {
			ssize_t w = write(fd, sb.buf + off, sb.len - off);

			if (w < 0 && errno == EINTR)
				continue;
			ok = w > 0;
			off += w > 0 ? (size_t)w : 0;
		}
		ok = ok && fdatasync(fd) == 0;
		ok = close(fd) == 0 && ok;
	}
	ok = ok && rename(strbuf_cstr(&tmp), m->cur_path) == 0;
	if (ok) {
		m->cur_dirty = false;
	} else {
		ADD(&m->st_cur_errors, 1);
		log_kv(LOG_ERROR, "scrape", "cannot save the pull cursors", "path", m->cur_path,
		    "err", strerror(errno), NULL);
		(void)unlink(strbuf_cstr(&tmp));
	}
	strbuf_free(&sb);
	strbuf_free(&tmp);
}

/* cursors_flush writes the table when it changed since the last write. */
static void
cursors_flush(struct scrape_manager *m)
{
	pthread_mutex_lock(&m->cur_mu);
	if (m->cur_dirty)
		cursors_write(m, time_now_ms());
	pthread_mutex_unlock(&m->cur_mu);
}

/* cursors_load reads the cursor file (at start, no lock needed). Lines it
 * cannot read are skipped and logged. */
static void
cursors_load(struct scrape_manager *m)
{
	FILE *f = fopen(m->cur_path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0, bad = 0;
	ssize_t len;

	if (f == NULL) {
		if (errno != ENOENT)
			log_kv(LOG_ERROR, "scrape", "cannot read the pull cursors", "path",
			    m->cur_path, "err", strerror(errno), NULL);
		return;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		long long saved, touched;
		int off = 0;
		char *pool, *url, *o;
		const char *q;
		struct cursor *c;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (sscanf(line, "%lld %lld %n", &saved, &touched, &off) != 2 || off == 0 ||
		    (url = strchr(line + off, ' ')) == NULL || url == line + off) {
			bad++;
			continue;
		}
		*url++ = '\0';
		pool = o = line + off;
		for (q = pool; *q != '\0'; q++) {
			if (*q == '%' && hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
				*o++ = (char)(hexval(q[1]) * 16 + hexval(q[2]));
				q += 2;
			} else {
				*o++ = *q;
			}
		}
		*o = '\0';
		if (cursor_find(m, pool, url) >= 0) {
			bad++;
			continue;
		}
		c = cursor_add(m, pool, url);
		c->cur = c->saved = saved;
		c->touched = touched;
	}
	free(line);
	fclose(f);
	if (bad > 0) {
		char nb[32];

		snprintf(nb, sizeof(nb), "%zu", bad);
		log_kv(LOG_WARN, "scrape", "skipped unreadable lines of the pull cursors", "path",
		    m->cur_path, "lines", nb, NULL);
	}
	log_kv(LOG_DEBUG, "scrape", "pull cursors loaded", "path", m->cur_path, NULL);
}

/* cursors_free releases the table and its lock (the manager is going). */
static void
cursors_free(struct scrape_manager *m)
{
	size_t i;

	for (i = 0; i < m->ncurs; i++) {
		mem_free(m->curs[i].pool);
		mem_free(m->curs[i].url);
	}
	mem_free(m->curs);
	mem_free(m->cur_path);
	pthread_mutex_destroy(&m->cur_mu);
}

/* cursor_start gives t its cursor, once: the remembered one, else now minus
 * the pull lookback (loop thread). */
static void
cursor_start(struct scrape_manager *m, struct target *t, int64_t now_ms)
{
	ssize_t i;

	pthread_mutex_lock(&m->cur_mu);
	i = cursor_find(m, t->pool->name, t->url);
	t->cursor = i >= 0 ? m->curs[i].cur : now_ms - m->o.pull_lookback_ms;
	t->cursor_set = true;
	pthread_mutex_unlock(&m->cur_mu);
}

/* cursor_note records the outcome of a pull of t under pool (worker): on
 * success (from -> t->cursor) the table moves and is saved at most once per
 * CURSOR_WRITE_GAP_MS (the loop's sd poll and stop save the rest); a
 * failure only marks the entry as in use. */
static void
cursor_note(struct scrape_manager *m, struct target *t, const char *pool, bool ok,
    int64_t from, int64_t now_ms)
{
	ssize_t i;
	struct cursor *c;

	pthread_mutex_lock(&m->cur_mu);
	i = cursor_find(m, pool, t->url);
	if (i < 0 && !ok) {
		pthread_mutex_unlock(&m->cur_mu);
		return;
	}
	c = i >= 0 ? &m->curs[i] : cursor_add(m, pool, t->url);
	c->touched = now_ms;
	if (ok) {
		c->cur = t->cursor;
		c->saved = from;
		m->cur_dirty = true;
		if (now_ms - m->cur_written_ms >= CURSOR_WRITE_GAP_MS)
			cursors_write(m, now_ms);
	}
	pthread_mutex_unlock(&m->cur_mu);
}

/* --- targets -------------------------------------------------------------------------- */

static struct target *
target_new(struct scrape_manager *m, struct pool *p, const struct scrape_tdef *d, int64_t now)
{
	struct target *t = mem_calloc(1, sizeof(*t));

	t->m = m;
	t->pool = p;
	t->discovered = labels_ref(d->discovered);
	t->labels = labels_ref(d->labels);
	t->public = labels_ref(d->public);
	t->url = mem_strdup(d->url);
	t->hash = d->hash;
	t->interval_ns = d->interval_ms * NS_PER_MS;
	t->timeout_ms = d->timeout_ms;
	t->phase_ns = scrape_target_phase(d->hash, m->o.jitter_seed, d->interval_ms);
	t->cache = scrape_cache_new();
	if (m->o.sample_hook != NULL)
		scrape_cache_set_hook(t->cache, m->o.sample_hook, m->o.sample_hook_arg, t->public);
	t->last_error = mem_strdup("");
	t->health = SCRAPE_UNKNOWN;
	t->tm.kind = TM_SCRAPE;
	t->tm.at = next_tick(now, t->phase_ns, t->interval_ns);
	heap_push(&m->heap, &t->tm);
	t->anext = m->all;
	if (m->all != NULL)
		m->all->aprev = t;
	m->all = t;
	m->ntargets++;
	return t;
}

static void
target_free(struct target *t)
{
	struct scrape_manager *m = t->m;

	heap_remove(&m->heap, &t->tm);
	if (t->aprev != NULL)
		t->aprev->anext = t->anext;
	else
		m->all = t->anext;
	if (t->anext != NULL)
		t->anext->aprev = t->aprev;
	m->ntargets--;
	if (t->easy != NULL) {
		if (t->state == T_FETCH)
			curl_multi_remove_handle(m->multi, t->easy);
		curl_easy_cleanup(t->easy);
	}
	if (t->share != NULL)
		curl_share_cleanup(t->share);
	curl_slist_free_all(t->hdrs);
	curl_slist_free_all(t->connect_to);
	curl_slist_free_all(t->proxy_hdrs);
	curl_url_cleanup(t->uh);
	mem_free(t->uh_url);
	labels_free(t->discovered);
	labels_free(t->labels);
	labels_free(t->public);
	mem_free(t->url);
	mem_free(t->buf);
	mem_free(t->fetch_err);
	mem_free(t->ctype);
	scrape_cache_free(t->cache);
	mem_free(t->last_error);
	mem_free(t);
}

/* retire_finish schedules the end-of-run staleness of an idle retired
 * target: at the instant of its next scrape plus one interval and 10%, stale
 * markers stamped with that next scrape (Prometheus' endOfRunStaleness). */
static void
retire_finish(struct scrape_manager *m, struct target *t)
{
	int64_t now = real_ns(), at;

	if (!scrape_cache_has_scraped(t->cache)) {
		target_free(t);
		return;
	}
	heap_remove(&m->heap, &t->tm);
	at = next_tick(now, t->phase_ns, t->interval_ns);
	t->ts_ms = at / NS_PER_MS;
	t->tm.kind = TM_STALE;
	t->tm.at = at + t->interval_ns + t->interval_ns / 10;
	heap_push(&m->heap, &t->tm);
}

static void
target_retire(struct scrape_manager *m, struct target *t)
{
	t->retired = true;
	t->pool = NULL;
	heap_remove(&m->heap, &t->tm);
	if (t->state == T_WORK)
		m->retired_busy++;
	if (t->state == T_FETCH) {
		curl_multi_remove_handle(m->multi, t->easy);
		t->state = T_IDLE;
	}
	if (t->state == T_IDLE)
		retire_finish(m, t);
	/* T_WORK: finished when the worker hands it back */
}

/* --- file_sd ------------------------------------------------------------------------------ */

static void
sd_file_clear(struct sd_file *f)
{
	mem_free(f->path);
	cfg_target_groups_free(f->groups, f->ngroups);
	memset(f, 0, sizeof(*f));
}

/* sd_refresh brings one file_sd config up to date: files matched by its
 * globs, read when new, changed (mtime, size, inode) or when the refresh
 * interval is due. A file that cannot be read keeps its previous groups, as
 * Prometheus keeps them. Returns true when the groups changed. */
static bool
sd_refresh(struct scrape_manager *m, const char *job, struct sd_conf *sd, int64_t now, bool force)
{
	struct sd_file *nf = NULL;
	size_t nn = 0, cap = 0, i, j;
	bool due = force || now >= sd->next_refresh_ns, changed = false;

	for (i = 0; i < sd->fs->n_files; i++) {
		glob_t g;
		int rc = glob(sd->fs->files[i], 0, NULL, &g);

		if (rc != 0) {
			if (rc != GLOB_NOMATCH)
				log_kv(LOG_ERROR, "scrape", "Error expanding glob", "job", job,
				    "glob", sd->fs->files[i], NULL);
			continue;
		}
		for (j = 0; j < g.gl_pathc; j++) {
			const char *path = g.gl_pathv[j];
			struct sd_file *old = NULL, cur;
			struct stat stt;
			size_t k;

			for (k = 0; k < nn; k++)
				if (strcmp(nf[k].path, path) == 0)
					break;
			if (k < nn)
				continue;	/* matched by an earlier glob */
			for (k = 0; k < sd->nfiles; k++)
				if (sd->files[k].path != NULL && strcmp(sd->files[k].path, path) == 0)
					old = &sd->files[k];
			memset(&cur, 0, sizeof(cur));
			if (stat(path, &stt) == 0) {
				cur.mtime_ns = (int64_t)stt.st_mtim.tv_sec * 1000000000 + stt.st_mtim.tv_nsec;
				cur.size = (int64_t)stt.st_size;
				cur.ino = (uint64_t)stt.st_ino;
			}
			if (old != NULL && !due && old->mtime_ns == cur.mtime_ns &&
			    old->size == cur.size && old->ino == cur.ino) {
				cur = *old;
				memset(old, 0, sizeof(*old));
			} else {
				char err[512];

				cur.path = mem_strdup(path);
				if (cfg_sd_file_load(path, &cur.groups, &cur.ngroups, err, sizeof(err)) < 0) {
					ADD(&m->st_sd_errors, 1);
					log_kv(LOG_ERROR, "scrape", "Error reading file", "job", job,
					    "path", path, "err", err, NULL);
					if (old != NULL) {
						cur.groups = old->groups;
						cur.ngroups = old->ngroups;
						old->groups = NULL;
						old->ngroups = 0;
					}
				} else {
					changed = true;
				}
			}
			if (nn == cap) {
				cap = cap ? cap * 2 : 8;
				nf = mem_realloc(nf, cap * sizeof(*nf));
			}
			nf[nn++] = cur;
		}
		globfree(&g);
	}
	for (i = 0; i < sd->nfiles; i++) {
		if (sd->files[i].path != NULL && sd->files[i].ngroups > 0)
			changed = true;	/* a file that went away had groups */
		sd_file_clear(&sd->files[i]);
	}
	mem_free(sd->files);
	sd->files = nf;
	sd->nfiles = nn;
	if (due)
		sd->next_refresh_ns = now + sd->fs->refresh_interval_ms * NS_PER_MS;
	return changed;
}

/* --- pools ------------------------------------------------------------------------------------ */

static void
pool_clear_targets(struct pool *p)
{
	size_t i;

	for (i = 0; i < p->ncands; i++)
		scrape_tdef_clear(&p->cands[i].d);
	mem_free(p->cands);
	for (i = 0; i < p->ndropped; i++)
		labels_free(p->dropped[i]);
	mem_free(p->dropped);
	p->cands = NULL;
	p->dropped = NULL;
	p->ncands = p->ndropped = p->nactive = 0;
}

static void
pool_free(struct pool *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	pool_clear_targets(p);
	for (i = 0; i < p->nsd; i++) {
		for (j = 0; j < p->sd[i].nfiles; j++)
			sd_file_clear(&p->sd[i].files[j]);
		mem_free(p->sd[i].files);
	}
	mem_free(p->sd);
	mem_free(p->forced_err);
	mem_free(p->name);
	mem_free(p);
}

struct tbuild {
	struct cand *cands;
	size_t ncands, ccap;
	struct labels **dropped;
	size_t ndropped, dcap;
	uint64_t discovered, failed;
};

static void
build_group(struct tbuild *b, const struct cfg_scrape *sc, const struct cfg_target_group *g,
    struct labels_builder *lb)
{
	size_t i;

	for (i = 0; i < g->n_targets; i++) {
		struct scrape_tdef d;
		struct labels *base;
		char err[1024];

		b->discovered++;
		labels_builder_reset(lb, g->labels);
		labels_builder_set(lb, "__address__", g->targets[i]);
		base = labels_builder_labels(lb);
		if (scrape_tdef_build(base, sc, &d, err, sizeof(err)) < 0) {
			struct strbuf sb = STRBUF_INIT;

			strbuf_printf(&sb, "instance %zu in group %s: %s", i, g->source, err);
			log_kv(LOG_ERROR, "scrape", "Creating target failed", "job", sc->job_name,
			    "err", strbuf_cstr(&sb), NULL);
			strbuf_free(&sb);
			b->failed++;
		} else if (d.labels == NULL) {
			if (b->ndropped == b->dcap) {
				b->dcap = b->dcap ? b->dcap * 2 : 16;
				b->dropped = mem_realloc(b->dropped, b->dcap * sizeof(*b->dropped));
			}
			b->dropped[b->ndropped++] = labels_ref(d.discovered);
			scrape_tdef_clear(&d);
		} else {
			if (b->ncands == b->ccap) {
				b->ccap = b->ccap ? b->ccap * 2 : 16;
				b->cands = mem_realloc(b->cands, b->ccap * sizeof(*b->cands));
			}
			memset(&b->cands[b->ncands], 0, sizeof(b->cands[0]));
			b->cands[b->ncands++].d = d;
		}
		labels_free(base);
	}
}

/* pool_build computes the candidates of p from its static groups and the
 * groups its file_sd state holds (no lock: the result is not yet visible). */
static void
pool_build(struct pool *p, struct tbuild *b)
{
	struct labels_builder *lb = labels_builder_new();
	size_t i, j, k;

	memset(b, 0, sizeof(*b));
	for (i = 0; i < p->sc->n_static_configs; i++)
		build_group(b, p->sc, &p->sc->static_configs[i], lb);
	for (i = 0; i < p->nsd; i++)
		for (j = 0; j < p->sd[i].nfiles; j++)
			for (k = 0; k < p->sd[i].files[j].ngroups; k++)
				build_group(b, p->sc, &p->sd[i].files[j].groups[k], lb);
	labels_builder_free(lb);
}

/* pool_install_build puts b's result into p (caller holds mu when p is visible). */
static void
pool_install_build(struct pool *p, struct tbuild *b)
{
	pool_clear_targets(p);
	p->cands = b->cands;
	p->ncands = b->ncands;
	p->dropped = b->dropped;
	p->ndropped = b->ndropped;
	p->discovered = b->discovered;
	p->sync_failed += b->failed;
}

static struct pool *
pool_new(struct scrape_manager *m, const struct cfg_scrape *sc, int64_t now)
{
	struct pool *p = mem_calloc(1, sizeof(*p));
	struct tbuild b;
	size_t i;

	p->name = mem_strdup(sc->job_name);
	p->sc = sc;
	p->id = ++m->pool_ids;
	p->nsd = sc->n_file_sd;
	p->sd = mem_calloc(p->nsd ? p->nsd : 1, sizeof(*p->sd));
	for (i = 0; i < p->nsd; i++) {
		p->sd[i].fs = &sc->file_sd[i];
		(void)sd_refresh(m, sc->job_name, &p->sd[i], now, true);
	}
	pool_build(p, &b);
	pool_install_build(p, &b);
	return p;
}

/* target lookup by hash, for sync */
struct tmap {
	struct target **v;
	size_t cap;
};

static void
tmap_init(struct tmap *tm, size_t n)
{
	tm->cap = 16;
	while (tm->cap < n * 2 + 2)
		tm->cap *= 2;
	tm->v = mem_calloc(tm->cap, sizeof(*tm->v));
}

static void
tmap_put(struct tmap *tm, struct target *t)
{
	size_t i = t->hash & (tm->cap - 1);

	while (tm->v[i] != NULL)
		i = (i + 1) & (tm->cap - 1);
	tm->v[i] = t;
}

/* tmap_take removes and returns the target with hash h, or NULL. */
static struct target *
tmap_get(struct tmap *tm, uint64_t h, bool take)
{
	size_t i = h & (tm->cap - 1), j, k;
	struct target *t;

	for (; tm->v[i] != NULL; i = (i + 1) & (tm->cap - 1))
		if (tm->v[i]->hash == h)
			break;
	if ((t = tm->v[i]) == NULL || !take)
		return t;
	/* backward-shift delete */
	tm->v[i] = NULL;
	for (j = (i + 1) & (tm->cap - 1); tm->v[j] != NULL; j = (j + 1) & (tm->cap - 1)) {
		k = tm->v[j]->hash & (tm->cap - 1);
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		tm->v[i] = tm->v[j];
		tm->v[j] = NULL;
		i = j;
	}
	return t;
}

/* pool_sync decides, for every candidate of p, whether it is owned, a
 * duplicate or active; an active one takes over the old target of the same
 * identity (when reusable) or gets a new one; old targets left over are
 * retired. Loop thread, mu held. */
static void
pool_sync(struct scrape_manager *m, struct pool *p, struct target **olds, size_t nolds,
    bool reusable, int64_t now)
{
	struct tmap old, cur;
	size_t i;

	tmap_init(&old, nolds);
	tmap_init(&cur, p->ncands);
	for (i = 0; i < nolds; i++)
		tmap_put(&old, olds[i]);
	p->nactive = 0;
	for (i = 0; i < p->ncands; i++) {
		struct cand *c = &p->cands[i];
		struct target *t;

		c->t = NULL;
		if (m->o.owns != NULL && !m->o.owns(m->o.owns_arg, c->d.labels)) {
			c->st = C_NOT_OWNED;
			continue;
		}
		if ((t = tmap_get(&cur, c->d.hash, false)) != NULL) {
			c->st = C_DUP;
			labels_free(t->discovered);
			t->discovered = labels_ref(c->d.discovered);
			continue;
		}
		t = tmap_get(&old, c->d.hash, true);
		if (t != NULL && reusable) {
			t->pool = p;
			labels_free(t->discovered);
			t->discovered = labels_ref(c->d.discovered);
		} else {
			if (t != NULL)
				target_retire(m, t);
			t = target_new(m, p, &c->d, now);
		}
		c->st = C_ACTIVE;
		c->t = t;
		tmap_put(&cur, t);
		p->nactive++;
	}
	for (i = 0; i < old.cap; i++)
		if (old.v[i] != NULL)
			target_retire(m, old.v[i]);
	mem_free(old.v);
	mem_free(cur.v);
	MEM_FREE(p->forced_err);
	if (p->sc->target_limit > 0 && p->nactive > p->sc->target_limit) {
		struct strbuf sb = STRBUF_INIT;

		ADD(&m->st_target_limit, 1);
		strbuf_printf(&sb, "target_limit exceeded (number of targets: %zu, limit: %" PRIu64 ")",
		    p->nactive, p->sc->target_limit);
		p->forced_err = strbuf_detach(&sb, NULL);
	}
}

/* pool_actives returns p's active targets (caller frees the array). */
static struct target **
pool_actives(struct pool *p, size_t *n)
{
	struct target **v = mem_calloc(p->ncands + 1, sizeof(*v));
	size_t i;

	*n = 0;
	for (i = 0; i < p->ncands; i++)
		if (p->cands[i].st == C_ACTIVE && p->cands[i].t != NULL)
			v[(*n)++] = p->cands[i].t;
	return v;
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* cache_reusable tells whether scraped series map to the same label sets
 * under both job configurations (what a scrape cache remembers). */
static bool
cache_reusable(const struct cfg_scrape *a, const struct cfg_scrape *b)
{
	size_t i, j;

	if (a->honor_labels != b->honor_labels || a->honor_timestamps != b->honor_timestamps ||
	    a->label_limit != b->label_limit ||
	    a->label_name_length_limit != b->label_name_length_limit ||
	    a->label_value_length_limit != b->label_value_length_limit ||
	    a->metric_relabel.n != b->metric_relabel.n)
		return false;
	for (i = 0; i < a->metric_relabel.n; i++) {
		const struct cfg_relabel_raw *x = &a->metric_relabel.raw[i];
		const struct cfg_relabel_raw *y = &b->metric_relabel.raw[i];

		if (x->n_source_labels != y->n_source_labels || !str_eq(x->separator, y->separator) ||
		    !str_eq(x->regex, y->regex) || !str_eq(x->target_label, y->target_label) ||
		    !str_eq(x->replacement, y->replacement) || !str_eq(x->action, y->action) ||
		    x->has_modulus != y->has_modulus || x->modulus != y->modulus)
			return false;
		for (j = 0; j < x->n_source_labels; j++)
			if (!str_eq(x->source_labels[j], y->source_labels[j]))
				return false;
	}
	return true;
}

/* size_conn_cache keeps one idle connection per target: libcurl's default
 * (4 per easy handle in the multi, and a handle is in it only while it
 * transfers) would close kept-alive connections, making every scrape
 * connect anew and every new connection search the whole cache. */
static void
size_conn_cache(struct scrape_manager *m)
{
	size_t want = m->ntargets + m->ntargets / 4 + 64;

	if (want > m->maxconnects || want < m->maxconnects / 2) {
		curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)want);
		m->maxconnects = want;
	}
}

/* --- commands (loop thread) ----------------------------------------------------------------- */

static void
cmd_complete(struct scrape_manager *m)
{
	pthread_mutex_lock(&m->cmd_mu);
	m->cmd_done = true;
	pthread_cond_broadcast(&m->cmd_cond);
	pthread_mutex_unlock(&m->cmd_mu);
}

static void
graveyard_sweep(struct scrape_manager *m)
{
	struct pool **pp = &m->graveyard;

	while (*pp != NULL) {
		struct pool *p = *pp;

		if (p->busy == 0) {
			*pp = p->gnext;
			pool_free(p);
		} else {
			pp = &p->gnext;
		}
	}
	if (m->install_waiting && m->graveyard == NULL) {
		m->install_waiting = false;
		cmd_complete(m);
	}
}

static void
do_install(struct scrape_manager *m, struct install *in)
{
	int64_t now = real_ns();
	bool *used = mem_calloc(m->npools + 1, sizeof(*used));
	struct pool **oldp;
	size_t i, j, nold;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < in->n; i++) {
		struct pool *np = in->pools[i], *op = NULL;
		struct target **olds = NULL;
		size_t nolds = 0;

		for (j = 0; j < m->npools; j++) {
			if (!used[j] && strcmp(m->pools[j]->name, np->name) == 0) {
				op = m->pools[j];
				used[j] = true;
				break;
			}
		}
		if (op != NULL) {
			olds = pool_actives(op, &nolds);
			np->sync_failed += op->sync_failed;
		}
		pool_sync(m, np, olds, nolds, op != NULL && cache_reusable(op->sc, np->sc), now);
		mem_free(olds);
	}
	for (j = 0; j < m->npools; j++) {
		size_t n, k;
		struct target **v;

		if (used[j])
			continue;
		v = pool_actives(m->pools[j], &n);
		for (k = 0; k < n; k++)
			target_retire(m, v[k]);
		mem_free(v);
	}
	oldp = m->pools;
	nold = m->npools;
	m->pools = in->pools;
	m->npools = in->n;
	pthread_mutex_unlock(&m->mu);
	for (j = 0; j < nold; j++) {
		oldp[j]->gnext = m->graveyard;
		m->graveyard = oldp[j];
	}
	mem_free(oldp);
	mem_free(used);
	mem_free(in);
	m->install_waiting = true;
	size_conn_cache(m);
	graveyard_sweep(m);
}

static void
do_resync(struct scrape_manager *m)
{
	int64_t now = real_ns();
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->npools; i++) {
		size_t n;
		struct target **v = pool_actives(m->pools[i], &n);

		pool_sync(m, m->pools[i], v, n, true, now);
		mem_free(v);
	}
	pthread_mutex_unlock(&m->mu);
	size_conn_cache(m);
}

static void
do_sd_poll(struct scrape_manager *m, int64_t now)
{
	size_t i, j;

	for (i = 0; i < m->npools; i++) {
		struct pool *p = m->pools[i];
		bool changed = false;
		struct tbuild b;
		struct target **v;
		size_t n;

		for (j = 0; j < p->nsd; j++)
			if (sd_refresh(m, p->name, &p->sd[j], now, false))
				changed = true;
		if (!changed)
			continue;
		pool_build(p, &b);
		pthread_mutex_lock(&m->mu);
		v = pool_actives(p, &n);
		pool_install_build(p, &b);
		pool_sync(m, p, v, n, true, now);
		pthread_mutex_unlock(&m->mu);
		mem_free(v);
		size_conn_cache(m);
	}
}

/* --- HTTP (loop thread) --------------------------------------------------------------------- */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct target *t = ud;
	size_t n = size * nmemb;

	if (!t->code_checked) {
		long code = 0;

		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
		t->not_ok = code != 200;
		t->code_checked = true;
	}
	if (t->not_ok)
		return n;
	/* A gzip body inflates to at least its size less a little framing,
	 * so the limit bounds what is kept either way; the worker checks the
	 * inflated size exactly. */
	if (t->body_limit > 0 && t->len + n >= t->body_limit + (t->gzip ? GZIP_SLACK : 0)) {
		t->over_limit = true;
		return 0;
	}
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 16384;
		char *nb;

		while (cap < t->len + n + 1)
			cap *= 2;
		if ((nb = mem_try_realloc(t->buf, cap)) == NULL) {
			t->oom = true;
			return 0;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, ptr, n);
	t->len += n;
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct target *t = ud;
	size_t n = size * nmemb, i = 0, e = n;

	if (n > 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		bool h2 = n > 6 && ptr[5] >= '2';
		long code;

		while (i < n && ptr[i] != ' ')
			i++;
		while (i < n && ptr[i] == ' ')
			i++;
		while (e > i && (ptr[e - 1] == '\r' || ptr[e - 1] == '\n'))
			e--;
		if (h2) {
			code = strtol(ptr + i, NULL, 10);
			snprintf(t->status, sizeof(t->status), "%ld %s", code, status_text(code));
		} else {
			size_t k = e - i < sizeof(t->status) - 1 ? e - i : sizeof(t->status) - 1;

			memcpy(t->status, ptr + i, k);
			t->status[k] = '\0';
		}
		t->code_checked = false;
		t->gzip = false;
	} else if (n > 17 && strncasecmp(ptr, "Content-Encoding:", 17) == 0) {
		i = 17;
		while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
			i++;
		while (e > i && (ptr[e - 1] == '\r' || ptr[e - 1] == '\n' || ptr[e - 1] == ' '))
			e--;
		/* Prometheus compares the header with "gzip" exactly */
		t->gzip = e - i == 4 && memcmp(ptr + i, "gzip", 4) == 0;
	}
	return n;
}

/* Sockets libcurl opened through on_open_socket stay in the epoll set
 * between transfers: a keep-alive connection waiting for its next scrape
 * is parked there with EPOLLIN instead of being deleted when libcurl stops
 * watching it and added back when the next request is sent (two epoll_ctl
 * calls a scrape). An event on a parked socket (the peer closed it) deletes
 * it; libcurl finds the connection dead when it next checks. The table is
 * exact because libcurl closes those sockets through on_close_socket. */
enum {
	SOCK_OURS = 0x01,	/* opened by on_open_socket, not yet closed */
	SOCK_WATCH = 0x02,	/* libcurl asked for its events */
	SOCK_IN = 0x04,		/* in the epoll set with EPOLLIN ... */
	SOCK_OUT = 0x08,	/* ... and/or EPOLLOUT */
};
#define SOCK_REG (SOCK_IN | SOCK_OUT)

/* sock_state returns fd's entry in m->socks, growing the table; NULL when
 * fd is negative or the table cannot grow. */
static uint8_t *
sock_state(struct scrape_manager *m, curl_socket_t fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= m->nsocks) {
		size_t n = m->nsocks ? m->nsocks : 256;
		uint8_t *v;

		while (n <= (size_t)fd)
			n *= 2;
		if ((v = mem_try_realloc(m->socks, n)) == NULL)
			return NULL;
		memset(v + m->nsocks, 0, n - m->nsocks);
		m->socks = v;
		m->nsocks = n;
	}
	return &m->socks[fd];
}

static curl_socket_t
on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct scrape_manager *m = clientp;
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	uint8_t *st;

	(void)purpose;
	if (fd >= 0 && (st = sock_state(m, fd)) != NULL)
		*st = SOCK_OURS;
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int
on_close_socket(void *clientp, curl_socket_t fd)
{
	struct scrape_manager *m = clientp;

	if (fd >= 0 && (size_t)fd < m->nsocks)
		m->socks[fd] = 0;
	return close(fd);	/* takes it out of the epoll set too */
}

/* set_url gives e the request URL url: as a URL handle parsed once per
 * target (CURLOPT_CURLU), so that a transfer copies the parsed parts instead
 * of parsing the string and printing it back (about a tenth of what libcurl
 * 7.88 spends on a small scrape). A string libcurl's parser refuses is set as
 * it is, for the transfer to fail with libcurl's own error. */
static void
set_url(struct target *t, CURL *e, const char *url)
{
	if (t->uh == NULL || strcmp(t->uh_url, url) != 0) {
		CURLU *u = curl_url();

		curl_url_cleanup(t->uh);
		mem_free(t->uh_url);
		t->uh = NULL;
		t->uh_url = NULL;
		/* the flags libcurl parses CURLOPT_URL with */
		if (u == NULL || curl_url_set(u, CURLUPART_URL, url,
		    CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
			curl_url_cleanup(u);
			curl_easy_setopt(e, CURLOPT_URL, url);
			return;
		}
		t->uh = u;
		t->uh_url = mem_strdup(url);
	}
	curl_easy_setopt(e, CURLOPT_CURLU, t->uh);
}

/* configure sets every option of t's easy handle for one scrape under sc.
 * Returns 0, or -1 with err (a credentials file could not be read). */
static int
configure(struct scrape_manager *m, struct target *t, const struct cfg_scrape *sc,
    char *err, size_t errlen)
{
	const struct cfg_http *hc = &sc->http;
	struct strbuf sb = STRBUF_INIT;
	CURL *e;
	char secs[32];

	if (t->easy == NULL) {
		t->easy = curl_easy_init();
		t->share = curl_share_init();
		if (t->easy == NULL || t->share == NULL) {
			snprintf(err, errlen, "cannot create an HTTP client handle");
			return -1;
		}
		/* A cache of its own per target: libcurl 7.88 walks a transfer's
		 * whole connection cache when the transfer is removed from the
		 * multi handle, and prunes its whole DNS cache per connection;
		 * one shared cache of N targets makes each scrape O(N). */
		curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
		curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	}
	e = t->easy;
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_SHARE, t->share);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* fewer recv and poll calls per body than the default 16 KiB */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)RECV_BUF);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, m);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, m);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, hc->follow_redirects ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, hc->enable_http2 ?
	    (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");

	curl_slist_free_all(t->hdrs);
	curl_slist_free_all(t->connect_to);
	curl_slist_free_all(t->proxy_hdrs);
	t->connect_to = t->proxy_hdrs = NULL;
	t->hdrs = NULL;
	if (hc->proxy_url[0] == '\0') {
		/* The same bytes in the same place as CURLOPT_USERAGENT puts
		 * them (after Host and basic auth, before the headers below),
		 * without libcurl printing the line once more per transfer.
		 * Through a proxy, CURLOPT_USERAGENT also names us in CONNECT. */
		strbuf_printf(&sb, "User-Agent: %s", m->user_agent);
		t->hdrs = curl_slist_append(t->hdrs, strbuf_cstr(&sb));
		strbuf_reset(&sb);
	} else {
		curl_easy_setopt(e, CURLOPT_USERAGENT, m->user_agent);
	}
	t->hdrs = curl_slist_append(t->hdrs, "Accept: " ACCEPT_HEADER);
	/* gzip bodies are inflated by the worker, not on the loop thread */
	t->hdrs = curl_slist_append(t->hdrs, "Accept-Encoding: gzip");
	format_seconds(t->timeout_ms, secs, sizeof(secs));
	strbuf_printf(&sb, "X-Prometheus-Scrape-Timeout-Seconds: %s", secs);
	t->hdrs = curl_slist_append(t->hdrs, strbuf_cstr(&sb));
	if (t->pullable) {
		strbuf_reset(&sb);
		strbuf_printf(&sb, "%s: %" PRId64, PULL_SINCE_HEADER, t->cursor);
		t->hdrs = curl_slist_append(t->hdrs, strbuf_cstr(&sb));
		strbuf_reset(&sb);
		strbuf_printf(&sb, "%s: %" PRId64, PULL_WINDOW_HEADER,
		    t->pull_window > 0 ? t->pull_window : (int64_t)PULL_MAX_WINDOW_MS);
		t->hdrs = curl_slist_append(t->hdrs, strbuf_cstr(&sb));
	}
	if (hc->has_authorization) {
		char *cred = NULL;

		if (hc->auth_credentials_file[0] != '\0') {
			cred = read_secret(hc->auth_credentials_file,
			    "authorization credentials", err, errlen);
			if (cred == NULL)
				goto fail;
		}
		strbuf_reset(&sb);
		strbuf_printf(&sb, "Authorization: %s %s", hc->auth_type,
		    cred != NULL ? cred : hc->auth_credentials);
		t->hdrs = curl_slist_append(t->hdrs, strbuf_cstr(&sb));
		mem_free(cred);
	}
	if (hc->has_basic_auth) {
		char *pw = NULL;

		if (hc->basic_password_file[0] != '\0') {
			pw = read_secret(hc->basic_password_file, "basic auth password", err, errlen);
			if (pw == NULL)
				goto fail;
		}
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, hc->basic_username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, pw != NULL ? pw : hc->basic_password);
		mem_free(pw);
	}
	http_client_set_tls(e, &hc->tls);
	if (hc->tls.server_name[0] != '\0' && strncmp(t->url, "https://", 8) == 0) {
		/* SNI and certificate name from server_name, connection and Host
		 * header to the target's address (Go's tls.Config.ServerName). */
		const char *addr = labels_get(t->labels, "__address__");
		const char *host, *port, *why;
		size_t hl, pl;
		struct strbuf u = STRBUF_INIT, ct = STRBUF_INIT;

		if (addr != NULL && scrape_split_host_port(addr, strlen(addr), &host, &hl,
		    &port, &pl, &why) == 0) {
			strbuf_printf(&u, "https://%s:%.*s%s", hc->tls.server_name, (int)pl, port,
			    t->url + 8 + strlen(addr));
			strbuf_printf(&ct, "%s:%.*s:%.*s:%.*s", hc->tls.server_name, (int)pl, port,
			    (int)hl, host, (int)pl, port);
			set_url(t, e, strbuf_cstr(&u));
			t->connect_to = curl_slist_append(NULL, strbuf_cstr(&ct));
			curl_easy_setopt(e, CURLOPT_CONNECT_TO, t->connect_to);
			strbuf_reset(&sb);
			strbuf_printf(&sb, "Host: %s", addr);
			t->hdrs = curl_slist_append(t->hdrs, strbuf_cstr(&sb));
		} else {
			set_url(t, e, t->url);
		}
		strbuf_free(&u);
		strbuf_free(&ct);
	} else {
		set_url(t, e, t->url);
	}
	http_client_set_proxy(e, hc->proxy_url);
	if (hc->proxy_url[0] != '\0') {
		if (hc->n_proxy_connect_header > 0) {
			size_t i, j;

			for (i = 0; i < hc->n_proxy_connect_header; i++) {
				for (j = 0; j < hc->proxy_connect_header[i].n_values; j++) {
					strbuf_reset(&sb);
					strbuf_printf(&sb, "%s: %s", hc->proxy_connect_header[i].name,
					    hc->proxy_connect_header[i].values[j]);
					t->proxy_hdrs = curl_slist_append(t->proxy_hdrs,
					    strbuf_cstr(&sb));
				}
			}
			curl_easy_setopt(e, CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
			curl_easy_setopt(e, CURLOPT_PROXYHEADER, t->proxy_hdrs);
		}
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
	strbuf_free(&sb);
	return 0;
fail:
	strbuf_free(&sb);
	return -1;
}

/* --- scraping (loop thread) -------------------------------------------------------------------- */

/* buf_take returns a pooled buffer for a body of about want bytes (the
 * smallest that holds it, else the largest) with its size in *cap, or
 * NULL when the pool is empty. */
static char *
buf_take(struct buf_pool *bp, size_t want, size_t *cap)
{
	size_t i, best = SIZE_MAX;
	char *p;

	for (i = 0; i < bp->n; i++) {
		if (best == SIZE_MAX)
			best = i;
		else if (bp->cap[i] >= want ? (bp->cap[best] < want || bp->cap[i] < bp->cap[best]) :
		    (bp->cap[best] < want && bp->cap[i] > bp->cap[best]))
			best = i;
	}
	if (best == SIZE_MAX)
		return NULL;
	p = bp->p[best];
	*cap = bp->cap[best];
	bp->bytes -= *cap;
	bp->n--;
	bp->p[best] = bp->p[bp->n];
	bp->cap[best] = bp->cap[bp->n];
	return p;
}

/* buf_give puts a body buffer back (takes ownership of p); it is freed
 * when the pool is full. */
static void
buf_give(struct buf_pool *bp, char *p, size_t cap)
{
	if (p == NULL)
		return;
	if (bp->n == BUF_POOL_MAX || bp->bytes + cap > BUF_POOL_BYTES) {
		mem_free(p);
		return;
	}
	bp->p[bp->n] = p;
	bp->cap[bp->n] = cap;
	bp->n++;
	bp->bytes += cap;
}

/* needs_configure tells whether t's easy handle must be set up again for
 * this scrape: a first scrape, another pool (job configuration), pull
 * headers that change every time, or secrets read from files (Prometheus
 * reads them for every request). Otherwise the handle keeps its options. */
static bool
needs_configure(const struct target *t)
{
	const struct cfg_http *hc = &t->pool->sc->http;

	return t->conf_pool != t->pool->id || t->pullable ||
	    (hc->has_authorization && hc->auth_credentials_file[0] != '\0') ||
	    (hc->has_basic_auth && hc->basic_password_file[0] != '\0');
}

static void process(struct scrape_manager *m, struct scrape_scratch *w, struct zbuf *z,
    struct tsdb_appender *app, struct tsdb_appender **papp, struct target *t);

/* process_here tells whether the loop thread processes t's finished scrape
 * itself rather than waking a worker: a small body (a gzip one counted at
 * 8 times its size) of a target with few series, while the loop was awake
 * less than half of the last window, so that it neither holds up other
 * targets' timers for long nor does the work of busy workers. */
static bool
process_here(const struct scrape_manager *m, const struct target *t)
{
	size_t body = t->gzip ? t->len * 8 : t->len;

	return !m->here.loaded && body <= HERE_MAX_BODY &&
	    scrape_cache_size(t->cache) <= HERE_MAX_SERIES;
}

/* here_account adds the loop's time awake since its last wake-up, just
 * before it sleeps at now, and closes the window when it is over. */
static void
here_account(struct here *h, int64_t now)
{
	if (h->woke > 0)
		h->win_busy += now - h->woke;
	if (now - h->win_start >= HERE_WINDOW_NS) {
		h->loaded = h->win_busy * 2 > now - h->win_start;
		h->win_start = now;
		h->win_busy = 0;
	}
}

static void
dispatch(struct scrape_manager *m, struct target *t)
{
	t->state = T_WORK;
	t->jpool = t->pool;
	t->jpool->busy++;
	if (process_here(m, t)) {
		struct here *h = &m->here;

		if (h->w == NULL) {
			h->w = scrape_scratch_new();
			h->app = tsdb_appender_new(m->o.head);
		}
		process(m, h->w, &h->z, h->app, &h->papp, t);
		if (h->z.cap > HERE_MAX_BODY * 16) {
			MEM_FREE(h->z.p);
			h->z.cap = 0;
		}
		/* handle_done takes it back, as from a worker */
		pthread_mutex_lock(&m->wq_mu);
		t->qnext = m->done;
		m->done = t;
		pthread_mutex_unlock(&m->wq_mu);
		return;
	}
	t->qnext = NULL;
	pthread_mutex_lock(&m->wq_mu);
	if (m->wq_tail != NULL)
		m->wq_tail->qnext = t;
	else
		m->wq_head = t;
	m->wq_tail = t;
	pthread_mutex_unlock(&m->wq_mu);
	/* signalled after the unlock: the woken worker does not block on
	 * wq_mu still held here */
	pthread_cond_signal(&m->wq_cond);
}

/* pull_capable tells whether a target of job sc with labels ls asks for
 * pull bodies: a /federate path, honor_labels and honor_timestamps. */
static bool
pull_capable(const struct cfg_scrape *sc, const struct labels *ls)
{
	static const char tail[] = "/federate";
	const char *p = labels_get(ls, "__metrics_path__");
	size_t n = p != NULL ? strlen(p) : 0;

	return sc->honor_labels && sc->honor_timestamps && n >= sizeof(tail) - 1 &&
	    strcmp(p + n - (sizeof(tail) - 1), tail) == 0;
}

static void
scrape_start(struct scrape_manager *m, struct target *t, int64_t tick, int64_t now,
    bool catchup)
{
	char err[1024];

	t->ts_ms = (now - tick <= ALIGN_TOLERANCE_NS && t->interval_ns > 100 * ALIGN_TOLERANCE_NS) ?
	    tick / NS_PER_MS : now / NS_PER_MS;
	if (catchup) {
		/* not a tick: no interval figure, nor for the next one */
		ADD(&m->st_catchups, 1);
		t->last_start_ns = 0;
	} else {
		if (t->last_start_ns != 0)
			ist_observe(m, t->interval_ns / NS_PER_MS,
			    (double)(now - t->last_start_ns) / 1e9);
		t->last_start_ns = now;
	}
	t->pullable = pull_capable(t->pool->sc, t->labels);
	if (t->pullable && !t->cursor_set)
		cursor_start(m, t, now / NS_PER_MS);
	t->start_wall_ms = now / NS_PER_MS;
	t->start_mono_ns = time_mono_ns();
	mem_free(t->fetch_err);
	mem_free(t->ctype);
	t->fetch_err = t->ctype = NULL;
	if (t->pool->forced_err != NULL) {
		t->fetch_err = mem_strdup(t->pool->forced_err);
		dispatch(m, t);
		return;
	}
	if (needs_configure(t)) {
		t->conf_pool = 0;
		if (configure(m, t, t->pool->sc, err, sizeof(err)) < 0) {
			t->fetch_err = mem_strdup(err);
			dispatch(m, t);
			return;
		}
		t->conf_pool = t->pool->id;
	}
	t->len = 0;
	if (t->buf == NULL) {
		size_t want = t->last_size > 0 ? t->last_size + t->last_size / 8 + 1 : 0;

		t->buf = buf_take(&m->bufs, want, &t->cap);
		if (t->cap < want) {
			char *nb = mem_try_realloc(t->buf, want);

			if (nb != NULL) {
				t->buf = nb;
				t->cap = want;
			}
		}
		if (t->buf == NULL)
			t->cap = 0;
	}
	t->body_limit = t->pool->sc->body_size_limit > 0 ? (uint64_t)t->pool->sc->body_size_limit : 0;
	t->code_checked = t->not_ok = t->over_limit = t->oom = false;
	t->status[0] = '\0';
	t->errbuf[0] = '\0';
	if (curl_multi_add_handle(m->multi, t->easy) != CURLM_OK) {
		t->fetch_err = mem_strdup("cannot start the HTTP request");
		dispatch(m, t);
		return;
	}
	t->state = T_FETCH;
}

/* fetch_error returns the error of a finished transfer as Go's client
 * words it, or NULL when the body is good. */
static char *
fetch_error(struct target *t, CURLcode rc)
{
	struct strbuf sb = STRBUF_INIT;

	if (t->over_limit) {
		strbuf_puts(&sb, "body size limit exceeded");
	} else if (t->oom) {
		strbuf_puts(&sb, "out of memory reading the response body");
	} else if (rc == CURLE_OK) {
		long code = 0;

		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code == 200)
			return NULL;
		if (t->status[0] == '\0')
			snprintf(t->status, sizeof(t->status), "%ld %s", code, status_text(code));
		strbuf_printf(&sb, "server returned HTTP status %s", t->status);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		strbuf_printf(&sb, "Get \"%s\": context deadline exceeded", t->url);
	} else if (rc == CURLE_COULDNT_CONNECT) {
		long oserr = 0, port = 0;
		char *ip = NULL;

		/* libcurl knows the address it tried only when it connected; the
		 * target's address stands in for it (Go names the resolved IP) */
		curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &oserr);
		curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_IP, &ip);
		curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_PORT, &port);
		if (oserr != 0) {
			char es[128];
			const char *s = strerror_r((int)oserr, es, sizeof(es));

			strbuf_printf(&sb, "Get \"%s\": dial tcp ", t->url);
			if (ip != NULL && *ip != '\0')
				strbuf_printf(&sb, "%s%s%s:%ld", strchr(ip, ':') ? "[" : "", ip,
				    strchr(ip, ':') ? "]" : "", port);
			else
				strbuf_puts(&sb, labels_get(t->labels, "__address__"));
			strbuf_puts(&sb, ": connect: ");
			if (*s >= 'A' && *s <= 'Z') {
				strbuf_putc(&sb, (char)(*s - 'A' + 'a'));
				s++;
			}
			strbuf_puts(&sb, s);
		} else {
			strbuf_printf(&sb, "Get \"%s\": %s", t->url,
			    t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
		}
	} else if (rc == CURLE_GOT_NOTHING) {
		/* the server closed the connection without an answer */
		strbuf_printf(&sb, "Get \"%s\": EOF", t->url);
	} else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
		const char *addr = labels_get(t->labels, "__address__");
		const char *host = addr, *port, *why;
		size_t hl = addr ? strlen(addr) : 0, pl;

		if (addr != NULL)
			(void)scrape_split_host_port(addr, strlen(addr), &host, &hl, &port, &pl, &why);
		strbuf_printf(&sb, "Get \"%s\": dial tcp: lookup %.*s: no such host", t->url,
		    (int)hl, host ? host : "");
	} else {
		strbuf_printf(&sb, "Get \"%s\": %s", t->url,
		    t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
	}
	return strbuf_detach(&sb, NULL);
}

static void
check_transfers(struct scrape_manager *m)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		struct target *t;
		char *ct = NULL, *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		t = (struct target *)(void *)priv;
		curl_multi_remove_handle(m->multi, msg->easy_handle);
		if (t == NULL || t->state != T_FETCH)
			continue;
		t->fetch_err = fetch_error(t, msg->data.result);
		curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
		t->ctype = xstrdup(ct);
		if (t->fetch_err == NULL && t->len > 0)
			t->last_size = t->len;
		if (t->over_limit)
			ADD(&m->st_body_limit, 1);
		dispatch(m, t);
	}
}

/* handle_done takes back the targets workers finished. Workers poke the
 * loop after a job only while want_done is set (a retired target or a
 * replaced pool waits for its jobs) or for a catch-up pull; otherwise the
 * loop finds their jobs here when it next wakes, before it fires timers,
 * so the handoff of an ordinary scrape costs no wakeup. */
static void
handle_done(struct scrape_manager *m)
{
	struct target *t, *next;

	/* stored before the list is taken: a worker that finds the list
	 * taken (it locks wq_mu after us) sees the flag */
	__atomic_store_n(&m->want_done, m->graveyard != NULL || m->install_waiting ||
	    m->retired_busy > 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&m->wq_mu);
	t = m->done;
	m->done = NULL;
	pthread_mutex_unlock(&m->wq_mu);
	for (; t != NULL; t = next) {
		next = t->qnext;
		t->state = T_IDLE;
		t->jpool->busy--;
		t->jpool = NULL;
		buf_give(&m->bufs, t->buf, t->cap);
		t->buf = NULL;
		t->cap = 0;
		t->len = 0;
		if (t->retired) {
			m->retired_busy--;
			retire_finish(m, t);
		} else if (t->pull_again) {
			/* far behind after a cut: the next pull now */
			t->pull_again = false;
			heap_remove(&m->heap, &t->tm);
			t->tm.at = real_ns();
			t->catchup = true;
			heap_push(&m->heap, &t->tm);
		}
	}
	if (m->graveyard != NULL || m->install_waiting)
		graveyard_sweep(m);
	__atomic_store_n(&m->want_done, m->graveyard != NULL || m->install_waiting ||
	    m->retired_busy > 0, __ATOMIC_RELAXED);
}

/* rephase puts every scrape timer back on its grid after the wall clock
 * stepped back (a timer set before the step would otherwise wait out the
 * step); forward steps need nothing: due timers fire and move on. */
static void
rephase(struct scrape_manager *m, int64_t now)
{
	struct target *t;

	for (t = m->all; t != NULL; t = t->anext) {
		int64_t latest = now + 2 * t->interval_ns + t->interval_ns / 10;

		if (t->tm.idx == 0 || (t->tm.kind == TM_STALE && t->tm.at <= latest))
			continue;
		heap_remove(&m->heap, &t->tm);
		t->tm.at = t->tm.kind == TM_SCRAPE ?
		    next_tick(now, t->phase_ns, t->interval_ns) : latest;
		heap_push(&m->heap, &t->tm);
	}
	heap_remove(&m->heap, &m->sd_timer);
	m->sd_timer.at = now + m->sd_poll_ns;
	heap_push(&m->heap, &m->sd_timer);
}

static void
fire_timers(struct scrape_manager *m)
{
	int64_t now = real_ns();

	if (now < m->last_now - 1000 * NS_PER_MS) {
		log_msg(LOG_WARN, "scrape", "wall clock stepped back %.3f s: rescheduling scrapes",
		    (double)(m->last_now - now) / 1e9);
		rephase(m, now);
	}
	m->last_now = now;

	while (m->heap.n > 0 && m->heap.v[0]->at <= now) {
		struct timer *tm = m->heap.v[0];

		heap_remove(&m->heap, tm);
		if (tm->kind == TM_SD) {
			do_sd_poll(m, now);
			cursors_flush(m);
			tm->at = now + m->sd_poll_ns;
			heap_push(&m->heap, tm);
		} else if (tm->kind == TM_STALE) {
			struct target *t = (struct target *)tm;

			scrape_cache_end_of_run(t->cache, m->loop_app, t->public, t->ts_ms);
			tsdb_appender_commit(m->loop_app);
			ADD(&m->st_hook_dropped, scrape_cache_take_hook_dropped(t->cache));
			target_free(t);
		} else {
			struct target *t = (struct target *)tm;
			int64_t tick = tm->at;
			bool catchup = t->catchup;

			t->catchup = false;
			tm->at = tick + t->interval_ns;
			if (tm->at <= now || catchup)
				tm->at = next_tick(now, t->phase_ns, t->interval_ns);
			heap_push(&m->heap, tm);
			if (t->state != T_IDLE)
				ADD(&m->st_skipped, 1);
			else
				scrape_start(m, t, tick, now, catchup);
		}
		now = real_ns();
	}
}

/* --- curl multi glue ------------------------------------------------------------------------------ */

static int
on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct scrape_manager *m = userp;
	struct epoll_event ev;
	uint8_t *st = sock_state(m, s), reg, want;

	(void)e;
	(void)socketp;
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = s;
	reg = st != NULL ? *st & SOCK_REG : 0;
	if (what == CURL_POLL_REMOVE) {
		if (st != NULL)
			*st &= (uint8_t)~SOCK_WATCH;
		/* ours and read-only: parked. Anything else leaves the set. */
		if (st != NULL && (*st & SOCK_OURS) && reg == SOCK_IN)
			return 0;
		(void)epoll_ctl(m->ep, EPOLL_CTL_DEL, s, NULL);
		if (st != NULL)
			*st &= (uint8_t)~SOCK_REG;
		return 0;
	}
	want = (uint8_t)(((what & CURL_POLL_IN) ? SOCK_IN : 0) | ((what & CURL_POLL_OUT) ? SOCK_OUT : 0));
	ev.events = ((want & SOCK_IN) ? EPOLLIN : 0) | ((want & SOCK_OUT) ? EPOLLOUT : 0);
	if (st == NULL) {	/* no table entry: add or change, whichever works */
		if (epoll_ctl(m->ep, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
			(void)epoll_ctl(m->ep, EPOLL_CTL_MOD, s, &ev);
		return 0;
	}
	if (reg != want) {
		int op = reg != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

		if (epoll_ctl(m->ep, op, s, &ev) < 0)
			(void)epoll_ctl(m->ep, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev);
	}
	*st = (uint8_t)((*st & SOCK_OURS) | SOCK_WATCH | want);
	return 0;
}

/* sock_unwatched handles an event on fd that libcurl is not watching (a
 * parked socket): takes fd out of the epoll set. Returns whether it did. */
static bool
sock_unwatched(struct scrape_manager *m, int fd)
{
	uint8_t *st = fd >= 0 && (size_t)fd < m->nsocks ? &m->socks[fd] : NULL;

	if (st == NULL || (*st & SOCK_WATCH) || !(*st & SOCK_REG))
		return false;
	(void)epoll_ctl(m->ep, EPOLL_CTL_DEL, fd, NULL);
	*st &= (uint8_t)~SOCK_REG;
	return true;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct scrape_manager *m = userp;

	(void)multi;
	m->curl_deadline = timeout_ms < 0 ? -1 : time_mono_ns() + (int64_t)timeout_ms * NS_PER_MS;
	return 0;
}

static void
handle_cmd(struct scrape_manager *m)
{
	enum cmd c;
	void *arg;

	pthread_mutex_lock(&m->cmd_mu);
	c = m->cmd;
	arg = m->cmd_arg;
	m->cmd = CMD_NONE;
	pthread_mutex_unlock(&m->cmd_mu);
	switch (c) {
	case CMD_NONE:
		break;
	case CMD_INSTALL:
		do_install(m, arg);
		break;
	case CMD_RESYNC:
		do_resync(m);
		cmd_complete(m);
		break;
	case CMD_STOP:
		m->loop_exit = true;
		break;
	}
}

/* curl_timeout_due runs libcurl's timeout when its deadline has come.
 * Returns whether it did. */
static bool
curl_timeout_due(struct scrape_manager *m)
{
	int running;

	if (m->curl_deadline < 0 || time_mono_ns() < m->curl_deadline)
		return false;
	m->curl_deadline = -1;
	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	return true;
}

static void *
loop_main(void *arg)
{
	struct scrape_manager *m = arg;
	struct epoll_event evs[256];
	int running, i, n;

#ifdef HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), "scrape-loop");
#endif
	while (!m->loop_exit) {
		int64_t wait, now;
		int ms;

		/* jobs finished without a poke, before their targets' timers */
		handle_done(m);
		fire_timers(m);
		/* and what a retirement in fire_timers now waits for */
		handle_done(m);
		/* A transfer just added asks for a 0 ms timeout: start it now
		 * rather than after an epoll_wait that returns at once. */
		if (curl_timeout_due(m)) {
			check_transfers(m);
			handle_done(m);
		}
		now = real_ns();
		wait = m->heap.n > 0 ? m->heap.v[0]->at - now : 1000 * NS_PER_MS;
		if (m->curl_deadline >= 0) {
			int64_t d = m->curl_deadline - time_mono_ns();

			if (d < wait)
				wait = d;
		}
		if (wait > 1000 * NS_PER_MS)
			wait = 1000 * NS_PER_MS;
		ms = wait <= 0 ? 0 : (int)((wait + NS_PER_MS - 1) / NS_PER_MS);
		here_account(&m->here, time_mono_ns());
		n = epoll_wait(m->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), ms);
		m->here.woke = time_mono_ns();
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd == m->evfd) {
				uint64_t v;

				(void)!read(m->evfd, &v, sizeof(v));
				continue;
			}
			if (sock_unwatched(m, evs[i].data.fd))
				continue;
			curl_multi_socket_action(m->multi, evs[i].data.fd,
			    ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
			    ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
			    ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0),
			    &running);
		}
		(void)curl_timeout_due(m);
		check_transfers(m);
		handle_done(m);
		handle_cmd(m);
	}
	/* stop: cancel transfers; workers finish what they hold */
	{
		struct target *t;

		for (t = m->all; t != NULL; t = t->anext) {
			if (t->state == T_FETCH) {
				curl_multi_remove_handle(m->multi, t->easy);
				t->state = T_IDLE;
			}
		}
	}
	return NULL;
}

/* --- workers ----------------------------------------------------------------------------------------- */

/* gunzip inflates a gzip body (several members allowed, as Go's
 * gzip.Reader reads them) into z, at most limit bytes (0: no limit).
 * Returns 0 with *out and *outlen, -1 with Go's error text in err and *over
 * set when the limit was reached. */
static int
gunzip(struct zbuf *z, const char *in, size_t inlen, uint64_t limit, const char **out,
    size_t *outlen, bool *over, char *err, size_t errlen)
{
	z_stream zs;
	size_t len = 0;
	int rc = Z_OK;

	*over = false;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		snprintf(err, errlen, "gzip: cannot initialise zlib");
		return -1;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)(inlen > UINT_MAX ? UINT_MAX : inlen);
	if (inlen == 0) {
		snprintf(err, errlen, "EOF");
		goto fail;
	}
	for (;;) {
		if (zs.avail_in == 0) {	/* bodies over 4 GiB come in slices */
			size_t used = (size_t)(zs.next_in - (const Bytef *)in);

			zs.avail_in = (uInt)(inlen - used > UINT_MAX ? UINT_MAX : inlen - used);
		}
		if (len == z->cap) {
			size_t cap = z->cap ? z->cap * 2 : 1u << 20;
			char *np;

			/* failing at limit bytes, the buffer never needs more */
			if (limit > 0 && cap > limit)
				cap = (size_t)limit;
			if ((np = mem_try_realloc(z->p, cap)) == NULL) {
				snprintf(err, errlen, "out of memory inflating the response body");
				goto fail;
			}
			z->p = np;
			z->cap = cap;
		}
		zs.next_out = (Bytef *)z->p + len;
		zs.avail_out = (uInt)(z->cap - len > UINT_MAX ? UINT_MAX : z->cap - len);
		rc = inflate(&zs, Z_NO_FLUSH);
		len = (size_t)((char *)zs.next_out - z->p);
		if (limit > 0 && len >= limit) {
			*over = true;
			snprintf(err, errlen, "body size limit exceeded");
			goto fail;
		}
		if (rc == Z_STREAM_END) {
			size_t used = (size_t)(zs.next_in - (const Bytef *)in);

			if (used == inlen)
				break;
			if (inlen - used < 2 || (unsigned char)in[used] != 0x1f ||
			    (unsigned char)in[used + 1] != 0x8b) {
				snprintf(err, errlen, "gzip: invalid header");
				goto fail;
			}
			inflateReset(&zs);
			zs.avail_in = (uInt)(inlen - used > UINT_MAX ? UINT_MAX : inlen - used);
			continue;
		}
		if (rc == Z_DATA_ERROR) {
			const char *msg = zs.msg != NULL ? zs.msg : "";

			if (strstr(msg, "header") != NULL)
				snprintf(err, errlen, "gzip: invalid header");
			else if (strstr(msg, "check") != NULL)
				snprintf(err, errlen, "gzip: invalid checksum");
			else
				snprintf(err, errlen, "flate: corrupt input before offset %lu",
				    (unsigned long)zs.total_in);
			goto fail;
		}
		if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
			snprintf(err, errlen, "unexpected EOF");
			goto fail;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			snprintf(err, errlen, "gzip: %s", zs.msg != NULL ? zs.msg : "inflate failed");
			goto fail;
		}
	}
	inflateEnd(&zs);
	*out = z->p;
	*outlen = len;
	return 0;
fail:
	inflateEnd(&zs);
	return -1;
}

/* is_pull_type tells whether a Content-Type is the strata pull format's. */
static bool
is_pull_type(const char *ct)
{
	static const char type[] = "application/vnd.strata.pull";

	return ct != NULL && strncasecmp(ct, type, sizeof(type) - 1) == 0 &&
	    (ct[sizeof(type) - 1] == '\0' || ct[sizeof(type) - 1] == ';' ||
	    ct[sizeof(type) - 1] == ' ');
}

/* pull_window_of returns the most a pull of t asks for. */
static int64_t
pull_window_of(const struct target *t)
{
	return t->pull_window > 0 ? t->pull_window : PULL_MAX_WINDOW_MS;
}

/* pull_window_grow doubles t's window after a successful pull. */
static void
pull_window_grow(struct target *t)
{
	int64_t w = pull_window_of(t) * 2;

	t->pull_window = w > PULL_MAX_WINDOW_MS ? PULL_MAX_WINDOW_MS : w;
}

/* pull_window_shrink halves t's window after a failed pull: a catch-up
 * answer may be too big to fetch within the timeout or the body limit. */
static void
pull_window_shrink(struct target *t)
{
	int64_t w = pull_window_of(t) / 2;

	t->pull_window = w < PULL_MIN_WINDOW_MS ? PULL_MIN_WINDOW_MS : w;
}

/* process_pull appends a pull body of t (worker). Returns 0 and moves the
 * cursor (asking for a catch-up pull when far behind), or -1 with err. */
static int
process_pull(struct scrape_manager *m, struct scrape_scratch *w, struct tsdb_appender **papp,
    struct target *t, const struct scrape_append_conf *conf, const char *body, size_t len,
    struct scrape_append_result *r, char *err, size_t errlen)
{
	struct scrape_pull_window win;
	int64_t now = time_now_ms(), from = t->cursor, iv = t->interval_ns / NS_PER_MS;
	int64_t advanced, behind;

	if (*papp == NULL)
		*papp = tsdb_appender_new_unrestricted(m->o.head);
	if (scrape_cache_append_pull(t->cache, w, *papp, conf, body, len, from, now, &win, r,
	    err, errlen) < 0) {
		cursor_note(m, t, t->jpool->name, false, from, now);
		pull_window_shrink(t);
		return -1;
	}
	if (win.until > t->cursor)
		t->cursor = win.until;
	cursor_note(m, t, t->jpool->name, true, from, now);
	ADD(&m->st_pulls, 1);
	/* Far behind after advancing well over an interval: the server capped
	 * its answer (catching up after a cut), so pull the rest now. A pull
	 * that advanced about an interval is steady state, whatever the
	 * clocks say. */
	advanced = win.until - from;
	behind = now - SCRAPE_PULL_SETTLE_MS - win.until;
	t->pull_again = behind > iv && (advanced > iv + iv / 2 ||
	    advanced >= pull_window_of(t));
	pull_window_grow(t);
	return 0;
}

static void
process(struct scrape_manager *m, struct scrape_scratch *w, struct zbuf *z,
    struct tsdb_appender *app, struct tsdb_appender **papp, struct target *t)
{
	const struct cfg_scrape *sc = t->jpool->sc;
	struct scrape_append_conf conf;
	struct scrape_append_result r;
	const char *body = t->buf;
	size_t len = t->len;
	char err[1024];
	bool up = true, pulled = false;
	double dur;
	uint64_t dropped;

	memset(&r, 0, sizeof(r));
	err[0] = '\0';
	t->pull_again = false;
	if (t->fetch_err == NULL && t->gzip) {
		const char *out;
		size_t outlen;
		bool over;

		if (gunzip(z, t->buf, t->len, t->body_limit, &out, &outlen, &over, err,
		    sizeof(err)) == 0) {
			body = out;
			len = outlen;
		} else {
			t->fetch_err = mem_strdup(err);
			if (over)
				ADD(&m->st_body_limit, 1);
		}
	}
	if (t->fetch_err != NULL) {
		up = false;
		snprintf(err, sizeof(err), "%s", t->fetch_err);
		if (scrape_cache_fail(t->cache, app, t->ts_ms))
			ADD(&m->st_flush_forced, 1);
		if (t->pullable) {
			cursor_note(m, t, t->jpool->name, false, t->cursor, time_now_ms());
			pull_window_shrink(t);
		}
	} else {
		int rc;

		memset(&conf, 0, sizeof(conf));
		conf.target = t->public;
		conf.honor_labels = sc->honor_labels;
		conf.honor_timestamps = sc->honor_timestamps;
		conf.sample_limit = sc->sample_limit;
		conf.label_limit = sc->label_limit;
		conf.label_name_length_limit = sc->label_name_length_limit;
		conf.label_value_length_limit = sc->label_value_length_limit;
		conf.metric_relabel = sc->metric_relabel.rules;
		conf.n_metric_relabel = sc->metric_relabel.n;
		if (t->pullable && is_pull_type(t->ctype)) {
			pulled = true;
			rc = process_pull(m, w, papp, t, &conf, body, len, &r, err, sizeof(err));
		} else {
			rc = scrape_cache_append(t->cache, w, app, &conf,
			    expfmt_format_from_content_type(t->ctype), body, len, t->ts_ms,
			    time_now_ms(), &r, err, sizeof(err));
			if (rc < 0)
				tsdb_appender_rollback(app);
			else if (t->pullable && t->cursor < t->ts_ms - m->o.pull_lookback_ms)
				/* answered in text: should the server turn into a
				 * strata server, pull from the lookback on */
				t->cursor = t->ts_ms - m->o.pull_lookback_ms;
		}
		if (rc < 0) {
			up = false;
			if (scrape_cache_fail(t->cache, app, t->ts_ms))
				ADD(&m->st_flush_forced, 1);
			if (r.sample_limit)
				ADD(&m->st_sample_limit, 1);
			if (r.label_limits)
				ADD(&m->st_label_limits, 1);
		} else {
			ADD(&m->st_samples, r.added);
		}
		ADD(&m->st_ooo, r.out_of_order);
		ADD(&m->st_dup, r.duplicate);
		ADD(&m->st_oob, r.out_of_bounds);
	}
	dropped = scrape_cache_take_hook_dropped(t->cache);
	ADD(&m->st_hook_dropped, dropped);
	if (pulled && up)
		ADD(&m->st_pull_samples, r.added - r.out_of_order - r.duplicate - r.out_of_bounds -
		    dropped);
	dur = (double)(time_mono_ns() - t->start_mono_ns) / 1e9;
	scrape_cache_report(t->cache, app, t->public, t->ts_ms, up, dur, r.total, r.added,
	    r.series_added);
	tsdb_appender_commit(app);
	ADD(&m->st_scrapes, 1);
	if (!up)
		ADD(&m->st_failed, 1);
	pthread_mutex_lock(&m->mu);
	mem_free(t->last_error);
	t->last_error = mem_strdup(err);
	t->last_scrape_ms = t->start_wall_ms;
	t->last_duration_s = dur;
	t->health = up ? SCRAPE_UP : SCRAPE_DOWN;
	if (up)
		t->pull_mode = pulled;
	pthread_mutex_unlock(&m->mu);
}

static void
poke(struct scrape_manager *m)
{
	uint64_t one = 1;

	(void)!write(m->evfd, &one, sizeof(one));
}

static void *
worker_main(void *arg)
{
	struct scrape_manager *m = arg;
	struct scrape_scratch *w = scrape_scratch_new();
	struct tsdb_appender *app = tsdb_appender_new(m->o.head);
	struct tsdb_appender *papp = NULL;	/* unrestricted, for pull bodies */
	struct zbuf z = { NULL, 0 };

#ifdef HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), "scrape-worker");
#endif
	for (;;) {
		struct target *t;
		bool wake;

		pthread_mutex_lock(&m->wq_mu);
		while (m->wq_head == NULL && !m->workers_stop)
			pthread_cond_wait(&m->wq_cond, &m->wq_mu);
		if (m->wq_head == NULL) {
			pthread_mutex_unlock(&m->wq_mu);
			break;
		}
		t = m->wq_head;
		m->wq_head = t->qnext;
		if (m->wq_head == NULL)
			m->wq_tail = NULL;
		pthread_mutex_unlock(&m->wq_mu);

		process(m, w, &z, app, &papp, t);
		if (z.cap > ZBUF_KEEP) {
			MEM_FREE(z.p);
			z.cap = 0;
		}

		pthread_mutex_lock(&m->wq_mu);
		t->qnext = m->done;
		m->done = t;
		wake = t->pull_again || __atomic_load_n(&m->want_done, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&m->wq_mu);
		if (wake)
			poke(m);
	}
	tsdb_appender_free(app);
	tsdb_appender_free(papp);
	scrape_scratch_free(w);
	mem_free(z.p);
	return NULL;
}

/* --- API ----------------------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}

struct scrape_manager *
scrape_manager_new(const struct scrape_opts *o, char *err, size_t errlen)
{
	struct scrape_manager *m;
	unsigned i;
	long ncpu;

	if (o == NULL || o->head == NULL) {
		snprintf(err, errlen, "scrape: no storage head");
		return NULL;
	}
	pthread_once(&curl_once, curl_init_once);
	m = mem_calloc(1, sizeof(*m));
	m->o = *o;
	m->user_agent = mem_strdup(o->user_agent != NULL ? o->user_agent : "strata");
	m->o.user_agent = m->user_agent;
	m->sd_poll_ns = (o->sd_poll_ms > 0 ? o->sd_poll_ms : 5000) * NS_PER_MS;
	m->o.state_dir = NULL;
	if (m->o.pull_lookback_ms <= 0)
		m->o.pull_lookback_ms = PULL_LOOKBACK_MS;
	pthread_mutex_init(&m->cur_mu, NULL);
	if (o->state_dir != NULL && o->state_dir[0] != '\0') {
		struct strbuf sb = STRBUF_INIT;

		strbuf_printf(&sb, "%s/%s", o->state_dir, SCRAPE_CURSOR_FILE);
		m->cur_path = strbuf_detach(&sb, NULL);
		cursors_load(m);
	}
	m->curl_deadline = -1;
	m->ep = epoll_create1(EPOLL_CLOEXEC);
	m->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	m->multi = curl_multi_init();
	if (m->ep < 0 || m->evfd < 0 || m->multi == NULL) {
		snprintf(err, errlen, "scrape: cannot set up the event loop: %s", strerror(errno));
		if (m->ep >= 0)
			close(m->ep);
		if (m->evfd >= 0)
			close(m->evfd);
		if (m->multi != NULL)
			curl_multi_cleanup(m->multi);
		cursors_free(m);
		mem_free(m->user_agent);
		mem_free(m);
		return NULL;
	}
	{
		struct epoll_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.fd = m->evfd;
		epoll_ctl(m->ep, EPOLL_CTL_ADD, m->evfd, &ev);
	}
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->api_mu, NULL);
	pthread_mutex_init(&m->cmd_mu, NULL);
	pthread_cond_init(&m->cmd_cond, NULL);
	pthread_mutex_init(&m->wq_mu, NULL);
	pthread_cond_init(&m->wq_cond, NULL);
	pthread_mutex_init(&m->ist_mu, NULL);
	m->loop_app = tsdb_appender_new(o->head);
	m->sd_timer.kind = TM_SD;
	m->sd_timer.at = real_ns() + m->sd_poll_ns;
	heap_push(&m->heap, &m->sd_timer);

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m->nworkers = o->workers > 0 ? o->workers : (ncpu > 0 ? (unsigned)ncpu : 1);
	if (m->nworkers > MAX_WORKERS && o->workers == 0)
		m->nworkers = MAX_WORKERS;
	m->workers = mem_calloc(m->nworkers, sizeof(*m->workers));
	for (i = 0; i < m->nworkers; i++)
		pthread_create(&m->workers[i], NULL, worker_main, m);
	pthread_create(&m->loop_th, NULL, loop_main, m);
	return m;
}

/* post runs a command on the loop thread and waits for its completion
 * (api_mu held). */
static void
post(struct scrape_manager *m, enum cmd c, void *arg)
{
	pthread_mutex_lock(&m->cmd_mu);
	m->cmd = c;
	m->cmd_arg = arg;
	m->cmd_done = false;
	pthread_mutex_unlock(&m->cmd_mu);
	poke(m);
	if (c == CMD_STOP)
		return;
	pthread_mutex_lock(&m->cmd_mu);
	while (!m->cmd_done)
		pthread_cond_wait(&m->cmd_cond, &m->cmd_mu);
	pthread_mutex_unlock(&m->cmd_mu);
}

int
scrape_manager_apply(struct scrape_manager *m, const struct cfg *cfg, char *err, size_t errlen)
{
	struct install *in;
	int64_t now = real_ns();
	size_t i;

	pthread_mutex_lock(&m->api_mu);
	ADD(&m->st_reloads, 1);
	if (m->stopped) {
		snprintf(err, errlen, "scrape manager is stopped");
		goto fail;
	}
	for (i = 0; i < cfg->n_scrape; i++) {
		if (cfg->scrape[i].http.oauth2 != NULL) {
			snprintf(err, errlen, "scrape job \"%s\": oauth2 is not supported by strata",
			    cfg->scrape[i].job_name);
			goto fail;
		}
	}
	in = mem_calloc(1, sizeof(*in));
	in->n = cfg->n_scrape;
	in->pools = mem_calloc(in->n ? in->n : 1, sizeof(*in->pools));
	for (i = 0; i < cfg->n_scrape; i++)
		in->pools[i] = pool_new(m, &cfg->scrape[i], now);
	post(m, CMD_INSTALL, in);
	pthread_mutex_unlock(&m->api_mu);
	return 0;
fail:
	ADD(&m->st_reloads_failed, 1);
	pthread_mutex_unlock(&m->api_mu);
	return -1;
}

void
scrape_manager_resync(struct scrape_manager *m)
{
	pthread_mutex_lock(&m->api_mu);
	if (!m->stopped)
		post(m, CMD_RESYNC, NULL);
	pthread_mutex_unlock(&m->api_mu);
}

void
scrape_manager_stop(struct scrape_manager *m)
{
	unsigned i;

	pthread_mutex_lock(&m->api_mu);
	if (m->stopped) {
		pthread_mutex_unlock(&m->api_mu);
		return;
	}
	m->stopped = true;
	post(m, CMD_STOP, NULL);
	pthread_join(m->loop_th, NULL);
	pthread_mutex_lock(&m->wq_mu);
	m->workers_stop = true;
	pthread_cond_broadcast(&m->wq_cond);
	pthread_mutex_unlock(&m->wq_mu);
	for (i = 0; i < m->nworkers; i++)
		pthread_join(m->workers[i], NULL);
	cursors_flush(m);
	pthread_mutex_unlock(&m->api_mu);
}

void
scrape_manager_free(struct scrape_manager *m)
{
	size_t i;

	if (m == NULL)
		return;
	scrape_manager_stop(m);
	while (m->all != NULL) {
		m->all->state = T_IDLE;	/* transfers were removed at stop */
		target_free(m->all);
	}
	for (i = 0; i < m->npools; i++)
		pool_free(m->pools[i]);
	mem_free(m->pools);
	while (m->graveyard != NULL) {
		struct pool *p = m->graveyard;

		m->graveyard = p->gnext;
		pool_free(p);
	}
	tsdb_appender_free(m->loop_app);
	tsdb_appender_free(m->here.app);
	tsdb_appender_free(m->here.papp);
	scrape_scratch_free(m->here.w);
	mem_free(m->here.z.p);
	while (m->bufs.n > 0)
		mem_free(m->bufs.p[--m->bufs.n]);
	curl_multi_cleanup(m->multi);
	close(m->ep);
	close(m->evfd);
	mem_free(m->socks);	/* after the last on_close_socket */
	mem_free(m->heap.v);
	mem_free(m->ist);
	mem_free(m->workers);
	mem_free(m->user_agent);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->api_mu);
	pthread_mutex_destroy(&m->cmd_mu);
	pthread_cond_destroy(&m->cmd_cond);
	pthread_mutex_destroy(&m->wq_mu);
	pthread_cond_destroy(&m->wq_cond);
	pthread_mutex_destroy(&m->ist_mu);
	cursors_free(m);
	mem_free(m);
}

int
scrape_manager_targets(struct scrape_manager *m, struct scrape_target_info **out, size_t *n)
{
	struct scrape_target_info *v;
	size_t i, j, k = 0, cap = 0;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->npools; i++)
		cap += m->pools[i]->ncands + m->pools[i]->ndropped;
	v = mem_calloc(cap ? cap : 1, sizeof(*v));
	for (i = 0; i < m->npools; i++) {
		struct pool *p = m->pools[i];

		for (j = 0; j < p->ncands; j++) {
			struct target *t = p->cands[j].t;
			struct scrape_target_info *x = &v[k];

			if (p->cands[j].st != C_ACTIVE || t == NULL)
				continue;
			k++;
			x->pool = mem_strdup(p->name);
			x->discovered = labels_ref(t->discovered);
			x->labels = labels_ref(t->public);
			x->active = true;
			x->scrape_url = mem_strdup(t->url);
			x->global_url = mem_strdup(t->url);
			x->address = xstrdup(labels_get(t->labels, "__address__"));
			x->pull = t->pull_mode;
			x->last_error = mem_strdup(t->last_error);
			x->last_scrape_ms = t->last_scrape_ms;
			x->last_duration_s = t->last_duration_s;
			x->health = t->health;
			x->interval_ms = t->interval_ns / NS_PER_MS;
			x->timeout_ms = t->timeout_ms;
		}
		for (j = 0; j < p->ncands; j++) {
			struct scrape_target_info *x = &v[k];

			if (p->cands[j].st != C_NOT_OWNED)
				continue;
			k++;
			x->pool = mem_strdup(p->name);
			x->discovered = labels_ref(p->cands[j].d.discovered);
			x->address = xstrdup(labels_get(p->cands[j].d.labels, "__address__"));
			x->interval_ms = p->cands[j].d.interval_ms;
			x->timeout_ms = p->cands[j].d.timeout_ms;
		}
		for (j = 0; j < p->ndropped; j++) {
			struct scrape_target_info *x = &v[k++];

			x->pool = mem_strdup(p->name);
			x->discovered = labels_ref(p->dropped[j]);
			x->interval_ms = p->sc->scrape_interval_ms;
			x->timeout_ms = p->sc->scrape_timeout_ms;
		}
	}
	pthread_mutex_unlock(&m->mu);
	*out = v;
	*n = k;
	return 0;
}

void
scrape_target_info_free(struct scrape_target_info *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		mem_free(v[i].pool);
		labels_free(v[i].discovered);
		labels_free(v[i].labels);
		mem_free(v[i].scrape_url);
		mem_free(v[i].global_url);
		mem_free(v[i].address);
		mem_free(v[i].last_error);
	}
	mem_free(v);
}

void
scrape_manager_stats(struct scrape_manager *m, struct scrape_stats *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	st->scrapes = LOAD(&m->st_scrapes);
	st->scrapes_failed = LOAD(&m->st_failed);
	st->samples_appended = LOAD(&m->st_samples);
	st->ticks_skipped = LOAD(&m->st_skipped);
	st->exceeded_sample_limit = LOAD(&m->st_sample_limit);
	st->exceeded_body_size_limit = LOAD(&m->st_body_limit);
	st->exceeded_label_limits = LOAD(&m->st_label_limits);
	st->exceeded_target_limit = LOAD(&m->st_target_limit);
	st->sample_out_of_order = LOAD(&m->st_ooo);
	st->sample_duplicate = LOAD(&m->st_dup);
	st->sample_out_of_bounds = LOAD(&m->st_oob);
	st->cache_flush_forced = LOAD(&m->st_flush_forced);
	st->sd_file_read_errors = LOAD(&m->st_sd_errors);
	st->reloads = LOAD(&m->st_reloads);
	st->reloads_failed = LOAD(&m->st_reloads_failed);
	st->pulls = LOAD(&m->st_pulls);
	st->pull_catchups = LOAD(&m->st_catchups);
	st->pull_samples = LOAD(&m->st_pull_samples);
	st->cursor_write_errors = LOAD(&m->st_cur_errors);
	st->samples_hook_dropped = LOAD(&m->st_hook_dropped);

	pthread_mutex_lock(&m->mu);
	st->n_pools = m->npools;
	st->pools = mem_calloc(m->npools ? m->npools : 1, sizeof(*st->pools));
	for (i = 0; i < m->npools; i++) {
		struct pool *p = m->pools[i];
		struct scrape_pool_stats *ps = &st->pools[i];
		size_t j;

		ps->pool = mem_strdup(p->name);
		ps->targets = p->nactive;
		ps->dropped = p->ndropped;
		for (j = 0; j < p->ncands; j++)
			if (p->cands[j].st == C_NOT_OWNED)
				ps->dropped++;
		ps->discovered = p->discovered;
		ps->target_limit = p->sc->target_limit;
		ps->sync_failed = p->sync_failed;
	}
	pthread_mutex_unlock(&m->mu);

	pthread_mutex_lock(&m->ist_mu);
	st->n_intervals = m->nist;
	st->intervals = mem_calloc(m->nist ? m->nist : 1, sizeof(*st->intervals));
	for (i = 0; i < m->nist; i++) {
		struct istat *s = &m->ist[i];
		struct scrape_interval_stats *x = &st->intervals[i];
		static const double qs[5] = { 0.01, 0.05, 0.5, 0.9, 0.99 };
		double *tmp = mem_alloc((s->n ? s->n : 1) * sizeof(*tmp));
		size_t q;

		x->interval_ms = s->interval_ms;
		x->count = s->count;
		x->sum = s->sum;
		memcpy(tmp, s->ring, s->n * sizeof(*tmp));
		qsort(tmp, s->n, sizeof(*tmp), dbl_cmp);
		for (q = 0; q < 5; q++)
			x->q[q] = s->n == 0 ? NAN : tmp[(size_t)(qs[q] * (double)(s->n - 1) + 0.5)];
		mem_free(tmp);
	}
	pthread_mutex_unlock(&m->ist_mu);
}

void
scrape_stats_free(struct scrape_stats *st)
{
	size_t i;

	for (i = 0; i < st->n_pools; i++)
		mem_free(st->pools[i].pool);
	mem_free(st->pools);
	mem_free(st->intervals);
	memset(st, 0, sizeof(*st));
}

/* --- metadata ------------------------------------------------------------------------------------------ */

struct md_item {
	char *metric, *help, *unit;	/* owned */
	const char *type;		/* static */
	uint64_t hash;
};

/* A set of distinct metadata entries (open addressing over items). */
struct md_set {
	struct md_item *v;
	size_t n, cap;
	uint32_t *idx;			/* item + 1; 0 = free */
	size_t icap;			/* power of two */
};

static uint64_t
md_hash(const char *metric, const char *type, const char *help, const char *unit)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, metric, strlen(metric) + 1);
	XXH3_64bits_update(&st, type, strlen(type) + 1);
	XXH3_64bits_update(&st, help, strlen(help) + 1);
	XXH3_64bits_update(&st, unit, strlen(unit));
	return XXH3_64bits_digest(&st);
}

static void
md_reindex(struct md_set *s, size_t icap)
{
	size_t i;

	mem_free(s->idx);
	s->idx = mem_calloc(icap, sizeof(*s->idx));
	s->icap = icap;
	for (i = 0; i < s->n; i++) {
		size_t j = s->v[i].hash & (icap - 1);

		while (s->idx[j] != 0)
			j = (j + 1) & (icap - 1);
		s->idx[j] = (uint32_t)(i + 1);
	}
}

static void
md_collect(void *ctx, const char *metric, const char *type, const char *help, const char *unit)
{
	struct md_set *s = ctx;
	uint64_t h = md_hash(metric, type, help, unit);
	struct md_item *it;
	size_t j;

	if ((s->n + 1) * 2 > s->icap)
		md_reindex(s, s->icap ? s->icap * 2 : 64);
	for (j = h & (s->icap - 1); s->idx[j] != 0; j = (j + 1) & (s->icap - 1)) {
		it = &s->v[s->idx[j] - 1];
		if (it->hash == h && it->type == type && strcmp(it->metric, metric) == 0 &&
		    strcmp(it->help, help) == 0 && strcmp(it->unit, unit) == 0)
			return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = mem_realloc(s->v, s->cap * sizeof(*s->v));
	}
	it = &s->v[s->n];
	it->metric = mem_strdup(metric);
	it->type = type;
	it->help = mem_strdup(help);
	it->unit = mem_strdup(unit);
	it->hash = h;
	s->idx[j] = (uint32_t)(++s->n);
}

static int
md_cmp(const void *a, const void *b)
{
	const struct md_item *x = a, *y = b;
	int c;

	if ((c = strcmp(x->metric, y->metric)) != 0)
		return c;
	if ((c = strcmp(x->type, y->type)) != 0)
		return c;
	if ((c = strcmp(x->help, y->help)) != 0)
		return c;
	return strcmp(x->unit, y->unit);
}

void
scrape_manager_metadata(struct scrape_manager *m, const char *metric,
    void (*emit)(void *ctx, const struct scrape_metadata *md), void *ctx)
{
	struct md_set s;
	size_t i, j;

	memset(&s, 0, sizeof(s));
	/* Active targets are reachable from the pools under mu, and a
	 * target is freed only after it left them. */
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->npools; i++) {
		struct pool *p = m->pools[i];

		for (j = 0; j < p->ncands; j++)
			if (p->cands[j].st == C_ACTIVE && p->cands[j].t != NULL)
				scrape_cache_metadata(p->cands[j].t->cache, metric, md_collect, &s);
	}
	pthread_mutex_unlock(&m->mu);
	if (s.n > 1)
		qsort(s.v, s.n, sizeof(*s.v), md_cmp);
	for (i = 0; i < s.n; i++) {
		struct scrape_metadata md;

		md.metric = s.v[i].metric;
		md.type = s.v[i].type;
		md.help = s.v[i].help;
		md.unit = s.v[i].unit;
		emit(ctx, &md);
	}
	for (i = 0; i < s.n; i++) {
		mem_free(s.v[i].metric);
		mem_free(s.v[i].help);
		mem_free(s.v[i].unit);
	}
	mem_free(s.v);
	mem_free(s.idx);
}
