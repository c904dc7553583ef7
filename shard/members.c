/* shard/members.c - membership of a dynamic shard group: peer probing, hold-down.
 *
 * The health state machine (member_health_*) is pure. The prober thread
 * runs rounds: at the start of a round it adds one GET /-/ready per peer
 * (and a GET /api/v1/shard where a fingerprint read is due) to one curl
 * multi handle, drives them to completion (each bounded by the probe
 * timeout), then takes the members mutex once to fold the results into
 * each member's health and report fields. If the live set changed, it
 * copies it and calls the change callback after unlocking. Then it sleeps
 * in curl_multi_poll() until the next round, so members_stop() wakes it at
 * once with curl_multi_wakeup(). Easy handles are kept per peer and reused
 * across rounds, so keep-alive connections are reused too.
 */
#include "config.h"

#include "shard/members.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define MEMBERS_READY_BODY_MAX 4096		/* a /-/ready answer is one line */
#define MEMBERS_SHARD_BODY_MAX (64 * 1024)	/* the fingerprint comes first */

/* ------------------------------------------------------------------------ */
/* health                                                                    */
/* ------------------------------------------------------------------------ */

const char *
member_state_name(enum member_state s)
{
	switch (s) {
	case MEMBER_UNKNOWN:
		return "unknown";
	case MEMBER_ALIVE:
		return "alive";
	case MEMBER_SUSPECT:
		return "suspect";
	case MEMBER_DEAD:
		return "dead";
	case MEMBER_RETURNING:
		return "returning";
	}
	return "unknown";
}

void
member_health_init(struct member_health *h, int64_t now_ms)
{
	memset(h, 0, sizeof(*h));
	h->state = MEMBER_UNKNOWN;
	h->since_ms = now_ms;
}

bool
member_health_is_live(const struct member_health *h)
{
	return h->state == MEMBER_UNKNOWN || h->state == MEMBER_ALIVE ||
	    h->state == MEMBER_SUSPECT;
}

static void
member_health_enter(struct member_health *h, enum member_state s, int64_t now_ms)
{
	if (h->state != s)
		h->since_ms = now_ms;
	h->state = s;
}

bool
member_health_observe(struct member_health *h, const struct member_policy *p,
    bool ok, int64_t now_ms)
{
	bool was = member_health_is_live(h);
	unsigned dead_after = p->dead_after > 0 ? p->dead_after : 1;

	if (ok) {
		h->fails = 0;
		switch (h->state) {
		case MEMBER_UNKNOWN:
		case MEMBER_ALIVE:
		case MEMBER_SUSPECT:
			member_health_enter(h, MEMBER_ALIVE, now_ms);
			break;
		case MEMBER_DEAD:
			h->ok_since_ms = now_ms;
			member_health_enter(h, p->hold_down_ms <= 0 ? MEMBER_ALIVE :
			    MEMBER_RETURNING, now_ms);
			break;
		case MEMBER_RETURNING:
			if (now_ms - h->ok_since_ms >= p->hold_down_ms)
				member_health_enter(h, MEMBER_ALIVE, now_ms);
			break;
		}
	} else {
		if (h->fails < UINT32_MAX)
			h->fails++;
		switch (h->state) {
		case MEMBER_UNKNOWN:
		case MEMBER_ALIVE:
		case MEMBER_SUSPECT:
			member_health_enter(h, h->fails >= dead_after ? MEMBER_DEAD :
			    MEMBER_SUSPECT, now_ms);
			break;
		case MEMBER_DEAD:
			break;
		case MEMBER_RETURNING:
			/* One failure within the hold-down restarts it. */
			member_health_enter(h, MEMBER_DEAD, now_ms);
			break;
		}
	}
	return was != member_health_is_live(h);
}

/* ------------------------------------------------------------------------ */
/* fingerprint answer                                                        */
/* ------------------------------------------------------------------------ */

int
members_parse_fingerprint(const char *body, size_t len, char *fp, char *err,
    size_t errlen)
{
	static const char key[] = "\"fingerprint\"";
	const char *p = NULL, *end = body + len, *v;
	size_t i, n;

	for (i = 0; i + sizeof(key) - 1 <= len; i++) {
		if (memcmp(body + i, key, sizeof(key) - 1) == 0) {
			p = body + i + sizeof(key) - 1;
			break;
		}
	}
	if (p == NULL) {
		snprintf(err, errlen, "no \"fingerprint\" in the answer");
		return -1;
	}
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	if (p < end && *p == ':')
		p++;
	else
		goto bad;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	if (p >= end || *p != '"')
		goto bad;
	v = ++p;
	while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
		p++;
	n = (size_t)(p - v);
	if (p >= end || *p != '"' || n == 0 || n > 23)
		goto bad;
	memcpy(fp, v, n);
	fp[n] = '\0';
	return 0;
bad:
	snprintf(err, errlen, "malformed \"fingerprint\" in the answer");
	return -1;
}

/* ------------------------------------------------------------------------ */
/* the prober                                                                */
/* ------------------------------------------------------------------------ */

enum probe_kind { PROBE_READY, PROBE_SHARD };

struct probe {
	CURL *easy;
	char *url;			/* owned */
	struct strbuf body;
	size_t max;			/* body bound */
	bool truncated;			/* the body went past max */
	bool busy;			/* in the multi handle this round */
	bool done;			/* finished this round */
	bool ok;
	double secs;
	char err[160];
	char curl_err[CURL_ERROR_SIZE];	/* libcurl's detailed message */
};

struct member {
	char *url;			/* canonical, owned */
	struct member_health h;
	struct probe ready, shard;	/* prober thread only, except results */
	/* reported; guarded by mu */
	int64_t state_since;		/* wall ms */
	int64_t last_probe;
	double last_probe_s;
	char last_error[160];
	uint64_t probes, failures;
	char fingerprint[24];
	char fingerprint_error[160];
	int fingerprint_match;
};

struct members {
	pthread_mutex_t mu;		/* guards every member's reported fields and h */
	struct member *v;
	size_t n, self;
	struct members_opts o;
	char fp[24];			/* ours */
	members_change_fn fn;
	void *fn_arg;
	CURLM *multi;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	_Atomic uint64_t rounds;
};

static int64_t
members_mono_ms(void)
{
	return time_mono_ns() / 1000000;
}

static size_t
members_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct probe *p = arg;
	size_t len = size * nmemb;

	if (p->body.len + len > p->max) {
		size_t room = p->max - p->body.len;

		strbuf_append(&p->body, data, room);
		p->truncated = true;
		return 0;	/* abort the transfer: CURLE_WRITE_ERROR */
	}
	strbuf_append(&p->body, data, len);
	return len;
}

static void
probe_setup(struct probe *p, const char *base, const char *path, size_t max,
    const struct members_opts *o)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_printf(&sb, "%s%s", base, path);
	p->url = strbuf_detach(&sb, NULL);
	p->max = max;
	p->easy = curl_easy_init();
	if (p->easy == NULL)
		return;
	curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
	curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)o->probe_timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)o->probe_timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, members_write);
	curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
	curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->curl_err);
	curl_easy_setopt(p->easy, CURLOPT_USERAGENT, "strata-shard/" PACKAGE_VERSION);
	curl_easy_setopt(p->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(p->easy, CURLOPT_ACCEPT_ENCODING, "");
}

static void
probe_clear(struct probe *p)
{
	if (p->easy != NULL)
		curl_easy_cleanup(p->easy);
	p->easy = NULL;
	MEM_FREE(p->url);
	strbuf_free(&p->body);
}

struct members *
members_new(const char *const *urls, size_t n, size_t self,
    const struct members_opts *o)
{
	struct members *m = mem_calloc(1, sizeof(*m));
	int64_t now = members_mono_ms(), wall = time_now_ms();
	size_t i;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_mutex_init(&m->mu, NULL);
	m->o = *o;
	m->o.fingerprint = NULL;
	if (m->o.fingerprint_every == 0)
		m->o.fingerprint_every = 1;
	snprintf(m->fp, sizeof(m->fp), "%s", o->fingerprint != NULL ? o->fingerprint : "");
	m->n = n;
	m->self = self;
	m->v = mem_calloc(n, sizeof(*m->v));
	for (i = 0; i < n; i++) {
		struct member *mb = &m->v[i];

		mb->url = mem_strdup(urls[i]);
		member_health_init(&mb->h, now);
		mb->state_since = wall;
		mb->fingerprint_match = -1;
		if (i == self) {
			mb->h.state = MEMBER_ALIVE;
			snprintf(mb->fingerprint, sizeof(mb->fingerprint), "%s", m->fp);
			mb->fingerprint_match = 1;
			continue;
		}
		probe_setup(&mb->ready, mb->url, "/-/ready", MEMBERS_READY_BODY_MAX, &m->o);
		probe_setup(&mb->shard, mb->url, "/api/v1/shard", MEMBERS_SHARD_BODY_MAX, &m->o);
	}
	m->multi = curl_multi_init();
	return m;
}

void
members_free(struct members *m)
{
	size_t i;

	if (m == NULL)
		return;
	members_stop(m);
	for (i = 0; i < m->n; i++) {
		if (m->v[i].ready.busy)
			curl_multi_remove_handle(m->multi, m->v[i].ready.easy);
		if (m->v[i].shard.busy)
			curl_multi_remove_handle(m->multi, m->v[i].shard.easy);
		probe_clear(&m->v[i].ready);
		probe_clear(&m->v[i].shard);
		mem_free(m->v[i].url);
	}
	if (m->multi != NULL)
		curl_multi_cleanup(m->multi);
	mem_free(m->v);
	pthread_mutex_destroy(&m->mu);
	mem_free(m);
	curl_global_cleanup();
}

void
members_on_change(struct members *m, members_change_fn fn, void *arg)
{
	m->fn = fn;
	m->fn_arg = arg;
}

size_t
members_count(const struct members *m)
{
	return m->n;
}

size_t
members_live(struct members *m, bool *live)
{
	size_t i, k = 0;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++) {
		live[i] = member_health_is_live(&m->v[i].h);
		k += live[i];
	}
	pthread_mutex_unlock(&m->mu);
	return k;
}

void
members_snapshot(struct members *m, struct member_info *out)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++) {
		const struct member *mb = &m->v[i];
		struct member_info *mi = &out[i];

		memset(mi, 0, sizeof(*mi));
		mi->url = mb->url;
		mi->self = i == m->self;
		mi->live = member_health_is_live(&mb->h);
		mi->state = mb->h.state;
		mi->fails = mb->h.fails;
		mi->state_since = mb->state_since;
		mi->last_probe = mb->last_probe;
		mi->last_probe_s = mb->last_probe_s;
		memcpy(mi->last_error, mb->last_error, sizeof(mi->last_error));
		mi->probes = mb->probes;
		mi->failures = mb->failures;
		memcpy(mi->fingerprint, mb->fingerprint, sizeof(mi->fingerprint));
		memcpy(mi->fingerprint_error, mb->fingerprint_error,
		    sizeof(mi->fingerprint_error));
		mi->fingerprint_match = mb->fingerprint_match;
	}
	pthread_mutex_unlock(&m->mu);
}

size_t
members_mismatches(struct members *m)
{
	size_t i, k = 0;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++)
		k += m->v[i].fingerprint_match == 0;
	pthread_mutex_unlock(&m->mu);
	return k;
}

uint64_t
members_rounds(struct members *m)
{
	return atomic_load(&m->rounds);
}

/* probe_add queues p for this round. */
static void
probe_add(struct members *m, struct probe *p)
{
	if (p->busy) {
		curl_multi_remove_handle(m->multi, p->easy);
		p->busy = false;
	}
	strbuf_reset(&p->body);
	p->truncated = false;
	p->done = false;
	p->ok = false;
	p->secs = 0;
	p->err[0] = '\0';
	if (p->easy == NULL) {
		p->done = true;
		snprintf(p->err, sizeof(p->err), "cannot create a curl handle");
		return;
	}
	if (curl_multi_add_handle(m->multi, p->easy) != CURLM_OK) {
		p->done = true;
		snprintf(p->err, sizeof(p->err), "cannot queue the probe");
		return;
	}
	p->busy = true;
}

/* probe_finish records the outcome of a finished transfer. */
static void
probe_finish(struct members *m, struct probe *p, CURLcode rc)
{
	long code = 0;
	curl_off_t us = 0;

	curl_multi_remove_handle(m->multi, p->easy);
	p->busy = false;
	p->done = true;
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(p->easy, CURLINFO_TOTAL_TIME_T, &us);
	p->secs = (double)us / 1e6;
	if (rc == CURLE_WRITE_ERROR && p->truncated && code >= 200 && code < 300) {
		/* Past the body bound: the head of the answer is all we read. */
		rc = CURLE_OK;
	}
	if (rc != CURLE_OK) {
		snprintf(p->err, sizeof(p->err), "%.150s", p->curl_err[0] != '\0' ?
		    p->curl_err : curl_easy_strerror(rc));
		return;
	}
	if (code < 200 || code > 299) {
		snprintf(p->err, sizeof(p->err), "server returned HTTP status %ld", code);
		return;
	}
	p->ok = true;
}

/* members_drive runs the queued transfers until all finished or stop. */
static void
members_drive(struct members *m)
{
	int running = 1, left;
	CURLMsg *msg;

	while (!atomic_load(&m->stop)) {
		if (curl_multi_perform(m->multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
			struct probe *p = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
			if (p != NULL)
				probe_finish(m, p, msg->data.result);
		}
		if (running == 0)
			break;
		curl_multi_poll(m->multi, NULL, 0, 100, NULL);
	}
}

/* members_fold applies the round's results under the lock. Returns true
 * when the live set changed (and copies it to live). */
static bool
members_fold(struct members *m, bool *live)
{
	int64_t now = members_mono_ms(), wall = time_now_ms();
	bool changed = false;
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++) {
		struct member *mb = &m->v[i];
		enum member_state before = mb->h.state;
		char fp[24], err[160];

		if (i == m->self)
			continue;
		if (mb->ready.done) {
			mb->ready.done = false;
			mb->probes++;
			if (!mb->ready.ok)
				mb->failures++;
			mb->last_probe = wall;
			mb->last_probe_s = mb->ready.secs;
			memcpy(mb->last_error, mb->ready.err, sizeof(mb->last_error));
			if (member_health_observe(&mb->h, &m->o.policy, mb->ready.ok, now))
				changed = true;
			if (mb->h.state != before) {
				mb->state_since = wall;
				log_kv(mb->h.state == MEMBER_DEAD || mb->h.state == MEMBER_SUSPECT ?
				    LOG_WARN : LOG_INFO, "shard", "shard member state changed",
				    "member", mb->url, "from", member_state_name(before),
				    "to", member_state_name(mb->h.state),
				    "err", mb->ready.ok ? "" : mb->ready.err, (char *)NULL);
			}
		}
		if (mb->shard.done) {
			int match = mb->fingerprint_match;

			mb->shard.done = false;
			if (!mb->shard.ok) {
				snprintf(mb->fingerprint_error, sizeof(mb->fingerprint_error),
				    "%s", mb->shard.err);
			} else if (members_parse_fingerprint(mb->shard.body.buf != NULL ?
			    mb->shard.body.buf : "", mb->shard.body.len, fp, err,
			    sizeof(err)) < 0) {
				snprintf(mb->fingerprint_error, sizeof(mb->fingerprint_error),
				    "%s", err);
			} else {
				mb->fingerprint_error[0] = '\0';
				memcpy(mb->fingerprint, fp, sizeof(mb->fingerprint));
				match = strcmp(fp, m->fp) == 0;
			}
			if (match != mb->fingerprint_match) {
				if (match == 0)
					log_kv(LOG_WARN, "shard",
					    "shard settings differ from a peer's (peer list, replication factor or mode)",
					    "member", mb->url, "fingerprint", mb->fingerprint,
					    "ours", m->fp, (char *)NULL);
				else if (mb->fingerprint_match == 0)
					log_kv(LOG_INFO, "shard", "shard settings agree with the peer again",
					    "member", mb->url, "fingerprint", mb->fingerprint, (char *)NULL);
				mb->fingerprint_match = match;
			}
		}
	}
	if (changed)
		for (i = 0; i < m->n; i++)
			live[i] = member_health_is_live(&m->v[i].h);
	pthread_mutex_unlock(&m->mu);
	return changed;
}

static void *
members_run(void *arg)
{
	struct members *m = arg;
	bool *live = mem_calloc(m->n, sizeof(*live));
	uint64_t round = 0;
	size_t i;

	while (!atomic_load(&m->stop)) {
		int64_t t0 = members_mono_ms(), left;

		for (i = 0; i < m->n; i++) {
			struct member *mb = &m->v[i];
			bool fp_due;

			if (i == m->self)
				continue;
			pthread_mutex_lock(&m->mu);
			fp_due = mb->fingerprint[0] == '\0' ||
			    round % m->o.fingerprint_every == 0;
			pthread_mutex_unlock(&m->mu);
			probe_add(m, &mb->ready);
			if (fp_due)
				probe_add(m, &mb->shard);
		}
		members_drive(m);
		if (atomic_load(&m->stop))
			break;
		if (members_fold(m, live) && m->fn != NULL)
			m->fn(m->fn_arg, live, m->n);
		round++;
		atomic_fetch_add(&m->rounds, 1);
		while (!atomic_load(&m->stop) &&
		    (left = t0 + m->o.probe_interval_ms - members_mono_ms()) > 0)
			curl_multi_poll(m->multi, NULL, 0, left > 1000 ? 1000 : (int)left, NULL);
	}
	mem_free(live);
	return NULL;
}

int
members_start(struct members *m, char *err, size_t errlen)
{
	int rc;

	if (m->started)
		return 0;
	if (m->multi == NULL) {
		snprintf(err, errlen, "cannot create the curl multi handle");
		return -1;
	}
	atomic_store(&m->stop, false);
	rc = pthread_create(&m->thread, NULL, members_run, m);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the prober thread: %s", strerror(rc));
		return -1;
	}
	m->started = true;
	return 0;
}

void
members_stop(struct members *m)
{
	if (!m->started)
		return;
	atomic_store(&m->stop, true);
	curl_multi_wakeup(m->multi);
	pthread_join(m->thread, NULL);
	m->started = false;
}
