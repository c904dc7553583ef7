/* central/peer.c - gap repair between the replicas of the central pair.
 *
 * See peer.h for what it does. Two threads: the heartbeat thread extends
 * this process's stretch in the coverage file every heartbeat_ms and ends
 * it on a stall or a refused commit; the sync thread asks the peer for its
 * coverage and repairs what is missing. mu guards the configuration, the
 * stretch and the published state (read by the HTTP handlers and the
 * metrics collector); the sync thread does its network and store work
 * without it. cond wakes both threads on stop and on the first
 * configuration.
 */
#include "config.h"

#include "central/peer.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "api/api.h"
#include "api/metrics.h"
#include "central/coverage.h"
#include "http/json.h"
#include "labels/matcher.h"
#include "remote/read.h"
#include "remote/server.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define PEER_RECENT 16			/* repaired ranges listed in /api/v1/peer */
#define PEER_MIN_SLICE_MS 1000
#define PEER_MAX_SLICE_MS (2 * 3600 * 1000LL)

/* The self-metrics, written once: id, name, type, help. */
#define PEER_METRICS(X) \
	X(UP, "strata_peer_up", "gauge", \
	    "Whether the peer answered the last sync as a replica of the same cluster (1) or not (0).") \
	X(STATE, "strata_peer_state", "gauge", \
	    "The peer's state as this replica sees it: 1 for the current state, 0 for the others.") \
	X(SYNCED, "strata_peer_synced", "gauge", \
	    "Whether start-up gap repair is over, so this replica reports ready.") \
	X(MISSING, "strata_peer_ranges_missing", "gauge", \
	    "Time ranges the peer holds and this replica lacks, as of the last sync.") \
	X(MISSING_SECONDS, "strata_peer_missing_seconds", "gauge", \
	    "Summed length of the time ranges the peer holds and this replica lacks.") \
	X(COVERED_SECONDS, "strata_peer_coverage_seconds", "gauge", \
	    "Summed length of the time ranges this replica holds completely.") \
	X(RANGES_REPAIRED, "strata_peer_ranges_repaired_total", "counter", \
	    "Missing time ranges copied from the peer.") \
	X(SAMPLES_REPAIRED, "strata_peer_samples_repaired_total", "counter", \
	    "Samples copied from the peer into this replica's past.") \
	X(CONFLICTS, "strata_peer_samples_conflicting_total", "counter", \
	    "Samples the peer holds with other value bits at a timestamp this replica holds too (this replica's kept).") \
	X(FAILURES, "strata_peer_repair_failures_total", "counter", \
	    "Repairs of a range that stopped on an error (peer unreachable or garbage, store refused the write).") \
	X(SYNCS, "strata_peer_syncs_total", "counter", \
	    "Sync passes that ended with every missing range repaired.") \
	X(SYNC_FAILURES, "strata_peer_sync_failures_total", "counter", \
	    "Sync passes in which the peer could not be used (unreachable, garbage, another cluster).") \
	X(LAST_SYNC, "strata_peer_last_sync_timestamp_seconds", "gauge", \
	    "When the peer last answered a sync pass (0: never).") \
	X(SKEW, "strata_peer_clock_skew_seconds", "gauge", \
	    "The peer's clock minus this replica's, measured at the last sync.")

enum peer_metric {
#define X(id, name, type, help) PM_##id,
	PEER_METRICS(X)
#undef X
};

static const struct {
	const char *name, *type, *help;
} peer_metric_defs[] = {
#define X(id, name, type, help) [PM_##id] = { name, type, help },
	PEER_METRICS(X)
#undef X
};

static const char *const peer_state_names[] = {
	[PEER_NONE] = "none",
	[PEER_UNKNOWN] = "unknown",
	[PEER_OK] = "ok",
	[PEER_UNREACHABLE] = "unreachable",
	[PEER_GARBAGE] = "garbage",
	[PEER_MISMATCHED] = "mismatched",
};

/* One repaired range, for /api/v1/peer. */
struct peer_repair {
	int64_t start, end;
	uint64_t samples, conflicts;
	int64_t at_ms;			/* when it finished */
	double seconds;
};

struct peer {
	struct peer_opts o;
	char *url, *data_dir;		/* owned copies */
	struct coverage *cov;
	struct remote_reader *reader;	/* NULL without a peer */
	struct matcher *all;		/* {__name__=~".+"} */
	CURL *easy;			/* coverage GETs; sync thread only */
	bool curl_init;			/* curl_global_init was called */
	int64_t start_ms;		/* process start, wall clock */
	int64_t start_mono;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop, running;
	pthread_t hb_thread, sync_thread;

	/* configuration (mu) */
	bool configured;
	char fingerprint[PEER_FINGERPRINT_LEN];
	int64_t lag_ms, run_offset_ms;

	/* this process's stretch (mu) */
	bool run_open;
	int64_t run_start;
	int64_t last_hb_mono;
	uint64_t last_commits_failed;
	bool cov_write_failed;		/* logged once per failure streak */

	/* published state (mu) */
	enum peer_state state;
	char last_error[1024];
	char peer_fp[PEER_FINGERPRINT_LEN];
	int64_t peer_time, peer_watermark;
	bool peer_synced, answered;
	struct ranges peer_cov, missing;
	bool repairing;
	struct range repairing_range;
	bool synced;
	int64_t synced_at_ms;
	const char *synced_why;
	int64_t bad_since_mono;		/* first failed pass of the current streak; 0 none */
	double skew_s;
	struct peer_stats st;
	struct peer_repair recent[PEER_RECENT];
	size_t nrecent;			/* entries used; newest at (next - 1) */
	size_t recent_next;
	int64_t slice_ms;		/* current slice length (sync thread) */
};

const char *
peer_state_name(enum peer_state s)
{
	if ((size_t)s >= sizeof(peer_state_names) / sizeof(peer_state_names[0]))
		return "unknown";
	return peer_state_names[s];
}

static int64_t
mono_ms(void)
{
	return time_mono_ns() / 1000000;
}

/* --- fingerprint ------------------------------------------------------------ */

void
peer_fingerprint(const struct cfg *cfg, char *out)
{
	struct cfg c = *cfg;		/* shallow: only marshalled, never freed */
	struct strbuf sb = STRBUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	c.external_labels = labels_empty();
	c.rule_files = NULL;
	c.n_rule_files = 0;
	c.n_alertmanagers = 0;
	c.alert_relabel.rules = NULL;
	c.alert_relabel.raw = NULL;
	c.alert_relabel.n = 0;
	c.n_remote_write = 0;
	c.n_remote_read = 0;
	c.tracing.present = false;
	c.query_log_file = NULL;
	cfg_marshal_yaml(&c, &sb);
	labels_free(c.external_labels);

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, sb.buf != NULL ? sb.buf : "", sb.len);
	for (size_t i = 0; i < cfg->n_rule_files; i++) {
		glob_t g;

		if (glob(cfg->rule_files[i], 0, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++) {
			FILE *f = fopen(g.gl_pathv[j], "rb");
			char buf[8192];
			size_t n;

			EVP_DigestUpdate(ctx, "\n# rule file\n", 13);
			if (f == NULL)
				continue;
			while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
				EVP_DigestUpdate(ctx, buf, n);
			fclose(f);
		}
		globfree(&g);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	strbuf_free(&sb);
	for (unsigned i = 0; i < 16 && i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[32] = '\0';
}

/* --- the coverage answer ---------------------------------------------------- */

void
peer_write_answer(struct peer *p, struct strbuf *out)
{
	struct ranges held = RANGES_INIT;
	int64_t now = time_now_ms(), lag;
	char fp[PEER_FINGERPRINT_LEN];
	bool synced;

	pthread_mutex_lock(&p->mu);
	memcpy(fp, p->fingerprint, sizeof(fp));
	lag = p->lag_ms;
	synced = p->synced;
	pthread_mutex_unlock(&p->mu);
	coverage_get(p->cov, &held);
	strbuf_puts(out, "# strata-peer 1\n");
	strbuf_printf(out, "fingerprint %s\n", fp[0] != '\0' ? fp : "-");
	strbuf_printf(out, "time %" PRId64 "\n", now);
	strbuf_printf(out, "watermark %" PRId64 "\n", now - lag);
	strbuf_printf(out, "synced %d\n", synced ? 1 : 0);
	for (size_t i = 0; i < held.n; i++)
		strbuf_printf(out, "range %" PRId64 " %" PRId64 "\n", held.v[i].start, held.v[i].end);
	strbuf_puts(out, "# EOF\n");
	ranges_free(&held);
}

/* answer_int parses a decimal int64 filling all of s[0..len). */
static bool
answer_int(const char *s, size_t len, int64_t *out)
{
	char buf[24];
	char *end;
	long long v;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
		return false;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

int
peer_parse_answer(const char *buf, size_t len, struct peer_answer *a,
    char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	bool have_fp = false, have_time = false, have_wm = false, have_synced = false;
	bool eof = false;
	unsigned line = 0;

	memset(a, 0, sizeof(*a));
	while (p < end && !eof) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp;
		size_t ll, kl;

		line++;
		if (line == 1 && (len < 16 || memcmp(p, "# strata-peer 1\n", 16) != 0)) {
			size_t l = nl != NULL ? (size_t)(nl - p) : len;

			snprintf(err, errlen, "line 1: not a strata peer answer: \"%.*s\"",
			    (int)(l < 60 ? l : 60), p);
			goto fail;
		}
		if (nl == NULL) {
			snprintf(err, errlen, "line %u: unterminated line", line);
			goto fail;
		}
		ll = (size_t)(nl - p);
		if (line == 1) {
			p = nl + 1;
			continue;
		}
		if (ll == 5 && memcmp(p, "# EOF", 5) == 0) {
			eof = true;
			p = nl + 1;
			break;
		}
		sp = memchr(p, ' ', ll);
		kl = sp != NULL ? (size_t)(sp - p) : ll;
		if (kl == 11 && memcmp(p, "fingerprint", 11) == 0 && sp != NULL) {
			size_t vl = (size_t)(nl - sp - 1);

			if (vl == 0 || vl >= PEER_FINGERPRINT_LEN) {
				snprintf(err, errlen, "line %u: bad fingerprint", line);
				goto fail;
			}
			for (size_t i = 0; i < vl; i++) {
				char ch = sp[1 + i];

				if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || ch == '-')) {
					snprintf(err, errlen, "line %u: bad fingerprint", line);
					goto fail;
				}
			}
			memcpy(a->fingerprint, sp + 1, vl);
			a->fingerprint[vl] = '\0';
			have_fp = true;
		} else if (kl == 4 && memcmp(p, "time", 4) == 0 && sp != NULL) {
			if (!answer_int(sp + 1, (size_t)(nl - sp - 1), &a->time)) {
				snprintf(err, errlen, "line %u: bad time", line);
				goto fail;
			}
			have_time = true;
		} else if (kl == 9 && memcmp(p, "watermark", 9) == 0 && sp != NULL) {
			if (!answer_int(sp + 1, (size_t)(nl - sp - 1), &a->watermark)) {
				snprintf(err, errlen, "line %u: bad watermark", line);
				goto fail;
			}
			have_wm = true;
		} else if (kl == 6 && memcmp(p, "synced", 6) == 0 && sp != NULL) {
			if (nl - sp != 2 || (sp[1] != '0' && sp[1] != '1')) {
				snprintf(err, errlen, "line %u: bad synced", line);
				goto fail;
			}
			a->synced = sp[1] == '1';
			have_synced = true;
		} else if (kl == 5 && memcmp(p, "range", 5) == 0 && sp != NULL) {
			const char *sp2 = memchr(sp + 1, ' ', (size_t)(nl - sp - 1));
			int64_t s, e;

			if (sp2 == NULL || !answer_int(sp + 1, (size_t)(sp2 - sp - 1), &s) ||
			    !answer_int(sp2 + 1, (size_t)(nl - sp2 - 1), &e) || s >= e) {
				snprintf(err, errlen, "line %u: bad range", line);
				goto fail;
			}
			ranges_add(&a->coverage, s, e);
		} else if (ll > 0 && p[0] == '#') {
			/* a comment */
		} else if (ll == 0 || sp == NULL) {
			snprintf(err, errlen, "line %u: expected \"key value\"", line);
			goto fail;
		}
		/* other keys: a later version's; ignored */
		p = nl + 1;
	}
	if (line == 0) {
		snprintf(err, errlen, "empty answer");
		goto fail;
	}
	if (!eof) {
		snprintf(err, errlen, "answer cut short: no \"# EOF\"");
		goto fail;
	}
	if (p != end) {
		snprintf(err, errlen, "line %u: data after \"# EOF\"", line + 1);
		goto fail;
	}
	if (!have_fp || !have_time || !have_wm || !have_synced) {
		snprintf(err, errlen, "answer lacks %s", !have_fp ? "fingerprint" :
		    !have_time ? "time" : !have_wm ? "watermark" : "synced");
		goto fail;
	}
	return 0;
fail:
	ranges_free(&a->coverage);
	return -1;
}

/* --- state ------------------------------------------------------------------ */

/* set_state publishes a state and error (NULL: none). Called with mu held. */
static void
set_state_locked(struct peer *p, enum peer_state s, const char *err)
{
	if (s != PEER_OK && (p->state != s || strcmp(p->last_error, err != NULL ? err : "") != 0))
		log_kv(LOG_WARN, "peer", "peer not usable for gap repair", "peer", p->url,
		    "state", peer_state_name(s), "err", err != NULL ? err : "", (char *)NULL);
	else if (s == PEER_OK && p->state != PEER_OK)
		log_kv(LOG_INFO, "peer", "peer answers", "peer", p->url, (char *)NULL);
	p->state = s;
	snprintf(p->last_error, sizeof(p->last_error), "%s", err != NULL ? err : "");
}

/* open_stretch opens this process's own stretch (at now + run offset: the
 * first instant whose rules it evaluates itself) and runs the on_open
 * callback (without mu), once. Returns where the stretch starts. */
static int64_t
open_stretch(struct peer *p)
{
	bool call = false;
	int64_t start;
	char b[40];

	pthread_mutex_lock(&p->mu);
	if (!p->run_open) {
		p->run_open = true;
		p->run_start = time_now_ms() + p->run_offset_ms;
		call = true;
	}
	start = p->run_start;
	pthread_mutex_unlock(&p->mu);
	if (!call)
		return start;
	log_kv(LOG_INFO, "peer", "this replica's own stretch opens; rules start", "stretch_start",
	    time_format_rfc3339(start, b, sizeof(b)), (char *)NULL);
	if (p->o.on_open != NULL)
		p->o.on_open(p->o.on_open_arg);
	return start;
}

/* become_synced ends start-up: opens this process's stretch if it is not
 * open yet and reports the replica ready. */
static void
become_synced(struct peer *p, const char *why)
{
	bool done = false;

	open_stretch(p);
	pthread_mutex_lock(&p->mu);
	if (!p->synced) {
		p->synced = true;
		p->synced_at_ms = time_now_ms();
		p->synced_why = why;
		done = true;
	}
	pthread_mutex_unlock(&p->mu);
	if (done)
		log_kv(LOG_INFO, "peer", "start-up gap repair over; serving", "reason", why,
		    (char *)NULL);
}

enum peer_state
peer_state(struct peer *p, char *err, size_t errlen)
{
	enum peer_state s;

	pthread_mutex_lock(&p->mu);
	s = p->state;
	if (err != NULL)
		snprintf(err, errlen, "%s", p->last_error);
	pthread_mutex_unlock(&p->mu);
	return s;
}

bool
peer_is_synced(struct peer *p)
{
	bool s;

	pthread_mutex_lock(&p->mu);
	s = p->synced;
	pthread_mutex_unlock(&p->mu);
	return s;
}

void
peer_stats(struct peer *p, struct peer_stats *st)
{
	pthread_mutex_lock(&p->mu);
	*st = p->st;
	st->ranges_missing = p->missing.n;
	pthread_mutex_unlock(&p->mu);
}

void
peer_coverage(struct peer *p, struct ranges *out)
{
	coverage_get(p->cov, out);
}

/* --- heartbeat -------------------------------------------------------------- */

void
peer_heartbeat(struct peer *p, int64_t now, int64_t mono)
{
	struct tsdb_head_stats hs;
	int64_t s = 0, e = 0;
	bool claim = false, log_fail = false;
	char err[512];

	tsdb_head_stats(tsdb_db_head(p->o.db), &hs);
	pthread_mutex_lock(&p->mu);
	if (p->run_open && p->last_hb_mono != 0 && mono - p->last_hb_mono > p->o.stall_ms) {
		log_msg(LOG_WARN, "peer", "heartbeat stalled for %" PRId64 " ms: this replica's "
		    "stretch ends, the gap will be repaired from the peer", mono - p->last_hb_mono);
		p->run_start = now + p->run_offset_ms;
	}
	if (p->run_open && hs.commits_failed > p->last_commits_failed) {
		log_msg(LOG_WARN, "peer", "the store refused %" PRIu64 " commits: this replica's "
		    "stretch ends, the gap will be repaired from the peer",
		    hs.commits_failed - p->last_commits_failed);
		if (p->run_start < now)
			p->run_start = now;
	}
	p->last_commits_failed = hs.commits_failed;
	p->last_hb_mono = mono;
	if (p->run_open && p->configured) {
		s = p->run_start;
		e = now - p->lag_ms;
		claim = e > s;
	}
	pthread_mutex_unlock(&p->mu);
	if (p->o.retention_ms > 0)
		coverage_forget(p->cov, now - p->o.retention_ms);
	if (!claim)
		return;
	if (coverage_add(p->cov, s, e, err, sizeof(err)) < 0) {
		pthread_mutex_lock(&p->mu);
		log_fail = !p->cov_write_failed;
		p->cov_write_failed = true;
		pthread_mutex_unlock(&p->mu);
		if (log_fail)
			log_kv(LOG_ERROR, "peer", "cannot record coverage", "err", err, (char *)NULL);
	} else {
		pthread_mutex_lock(&p->mu);
		p->cov_write_failed = false;
		pthread_mutex_unlock(&p->mu);
	}
}

/* --- talking to the peer ------------------------------------------------------ */

struct fetch {
	struct strbuf body;
	size_t max;
	bool too_large;
};

static size_t
fetch_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;

	if (f->body.len + n > f->max) {
		f->too_large = true;
		return 0;
	}
	strbuf_append(&f->body, ptr, n);
	return n;
}

/* fetch_answer GETs the peer's coverage answer into a. Returns 0, or the
 * state to report with err. */
static enum peer_state
fetch_answer(struct peer *p, struct peer_answer *a, int64_t *t0, int64_t *t1,
    char *err, size_t errlen)
{
	struct fetch f = { STRBUF_INIT, PEER_MAX_ANSWER, false };
	char url[2048], cerr[CURL_ERROR_SIZE] = "";
	enum peer_state st = PEER_OK;
	CURLcode rc;
	long status = 0;

	snprintf(url, sizeof(url), "%s/api/v1/peer/coverage", p->url);
	if (p->easy == NULL)
		p->easy = curl_easy_init();
	if (p->easy == NULL) {
		snprintf(err, errlen, "cannot create an HTTP client handle");
		return PEER_UNREACHABLE;
	}
	curl_easy_reset(p->easy);
	curl_easy_setopt(p->easy, CURLOPT_URL, url);
	curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)p->o.timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)p->o.timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, fetch_data);
	curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(p->easy, CURLOPT_USERAGENT, "strata/" PACKAGE_VERSION);
	curl_easy_setopt(p->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(p->easy, CURLOPT_PROXY, "");	/* no proxy from the environment */
	*t0 = time_now_ms();
	rc = curl_easy_perform(p->easy);
	*t1 = time_now_ms();
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && f.too_large)) {
		snprintf(err, errlen, "GET %.512s: %s", url, cerr[0] != '\0' ? cerr :
		    curl_easy_strerror(rc));
		st = PEER_UNREACHABLE;
		goto out;
	}
	if (f.too_large) {
		snprintf(err, errlen, "GET %.512s: answer larger than %d bytes", url, PEER_MAX_ANSWER);
		st = PEER_GARBAGE;
		goto out;
	}
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		size_t l = f.body.len < 200 ? f.body.len : 200;

		while (l > 0 && (f.body.buf[l - 1] == '\n' || f.body.buf[l - 1] == '\r'))
			l--;
		snprintf(err, errlen, "GET %.512s: HTTP status %ld: %.*s", url, status, (int)l,
		    l > 0 ? f.body.buf : "");
		st = status >= 500 ? PEER_UNREACHABLE : PEER_GARBAGE;
		goto out;
	}
	if (peer_parse_answer(f.body.buf != NULL ? f.body.buf : "", f.body.len, a, cerr,
	    sizeof(cerr)) < 0) {
		snprintf(err, errlen, "GET %.512s: %s", url, cerr);
		st = PEER_GARBAGE;
	}
out:
	strbuf_free(&f.body);
	return st;
}

/* read_state tells what a failed remote read says about the peer. */
static enum peer_state
read_state(const char *err)
{
	const char *h = strstr(err, "HTTP status ");

	if (h != NULL)
		return h[12] == '5' ? PEER_UNREACHABLE : PEER_GARBAGE;
	if (strstr(err, "snappy") != NULL || strstr(err, "proto") != NULL ||
	    strstr(err, "results for") != NULL || strstr(err, "larger than") != NULL ||
	    strstr(err, "invalid") != NULL || strstr(err, "label") != NULL)
		return PEER_GARBAGE;
	return PEER_UNREACHABLE;
}

/* --- repair --------------------------------------------------------------------- */

static int
cmp_series(const void *a, const void *b)
{
	const struct remote_series *x = a, *y = b;

	return labels_compare(x->ls, y->ls);
}

static bool
same_bits(double a, double b)
{
	uint64_t x, y;

	memcpy(&x, &a, sizeof(x));
	memcpy(&y, &b, sizeof(y));
	return x == y;
}

/* check_slice refuses an answer that cannot be the peer's store for
 * [mint, maxt]: samples out of order or out of range, repeated series. */
static int
check_slice(struct remote_series *s, size_t n, int64_t mint, int64_t maxt,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i].ls == NULL || s[i].ls->n == 0) {
			snprintf(err, errlen, "remote read answer: a series without labels");
			return -1;
		}
		for (size_t j = 0; j < s[i].n; j++) {
			if (s[i].s[j].t < mint || s[i].s[j].t > maxt) {
				snprintf(err, errlen, "remote read answer: a sample at %" PRId64
				    " outside the range asked for, [%" PRId64 ", %" PRId64 "]",
				    s[i].s[j].t, mint, maxt);
				return -1;
			}
			if (j > 0 && s[i].s[j].t <= s[i].s[j - 1].t) {
				snprintf(err, errlen, "remote read answer: samples out of order");
				return -1;
			}
		}
	}
	qsort(s, n, sizeof(*s), cmp_series);
	for (size_t i = 1; i < n; i++) {
		if (labels_equal(s[i - 1].ls, s[i].ls)) {
			snprintf(err, errlen, "remote read answer: a series appears twice");
			return -1;
		}
	}
	return 0;
}

/* apply_slice merges the peer's series (sorted) for [mint, maxt] into the
 * store. Returns 0 with the counts, or -1 with err (nothing written). */
static int
apply_slice(struct peer *p, struct remote_series *s, size_t n, int64_t mint, int64_t maxt,
    uint64_t *appended, uint64_t *conflicts, char *err, size_t errlen)
{
	struct tsdb_series_set *ss = tsdb_db_select(p->o.db, &p->all, 1, mint, maxt);
	struct tsdb_appender *a = tsdb_appender_new_unrestricted(tsdb_db_head(p->o.db));
	struct remote_sample *loc = NULL;
	size_t cap = 0;
	uint64_t add = 0, conf = 0;
	bool has = tsdb_series_set_next(ss);
	int rc;

	for (size_t i = 0; i < n; i++) {
		size_t nloc = 0, k = 0;
		uint64_t ref = 0;
		int c = 1;

		while (has && (c = labels_compare(tsdb_series_set_labels(ss), s[i].ls)) < 0)
			has = tsdb_series_set_next(ss);
		if (has && c == 0) {
			struct tsdb_iter *it = tsdb_series_set_iter(ss);
			int64_t t;
			double v;

			while (tsdb_iter_next(it, &t, &v)) {
				if (nloc == cap) {
					cap = cap ? cap * 2 : 256;
					loc = mem_realloc(loc, cap * sizeof(*loc));
				}
				loc[nloc].t = t;
				loc[nloc].v = v;
				nloc++;
			}
		}
		for (size_t j = 0; j < s[i].n; j++) {
			const struct remote_sample *x = &s[i].s[j];

			while (k < nloc && loc[k].t < x->t)
				k++;
			if (k < nloc && loc[k].t == x->t) {
				if (!same_bits(loc[k].v, x->v))
					conf++;
				continue;
			}
			rc = tsdb_appender_append(a, &ref, s[i].ls, x->t, x->v);
			if (rc == TSDB_OK) {
				add++;
			} else if (rc == TSDB_ERR_DUPLICATE) {
				conf++;		/* written here meanwhile, other bits */
			} else if (rc == TSDB_ERR_EMPTY_LABELS || rc == TSDB_ERR_TOO_MANY_SERIES ||
			    rc == TSDB_ERR_NOT_FOUND) {
				snprintf(err, errlen, "store refused a repaired sample: %s",
				    tsdb_strerror(rc));
				goto fail;
			}
			/* anything else (out of bounds) cannot happen unrestricted */
		}
	}
	tsdb_series_set_free(ss);
	ss = NULL;
	rc = tsdb_appender_commit(a);
	if (rc != 0) {
		snprintf(err, errlen, "store refused the repaired samples: %s", tsdb_strerror(rc));
		goto fail;
	}
	tsdb_appender_free(a);
	mem_free(loc);
	*appended = add;
	*conflicts = conf;
	return 0;
fail:
	if (ss != NULL)
		tsdb_series_set_free(ss);
	tsdb_appender_free(a);
	mem_free(loc);
	return -1;
}

static bool
peer_stopping(struct peer *p)
{
	bool s;

	pthread_mutex_lock(&p->mu);
	s = p->stop;
	pthread_mutex_unlock(&p->mu);
	return s;
}

/* repair_range copies [start, end) from the peer. Returns 0, or -1 with the
 * state to report in *bad and err. */
static int
repair_range(struct peer *p, int64_t start, int64_t end, enum peer_state *bad,
    char *err, size_t errlen)
{
	int64_t t = start, began = time_mono_ns();
	uint64_t total = 0, total_conf = 0;
	char cerr[512];

	pthread_mutex_lock(&p->mu);
	p->repairing = true;
	p->repairing_range.start = start;
	p->repairing_range.end = end;
	pthread_mutex_unlock(&p->mu);
	log_kv(LOG_INFO, "peer", "repairing a range from the peer", "peer", p->url,
	    (char *)NULL);
	while (t < end) {
		int64_t u = end - t > p->slice_ms ? t + p->slice_ms : end;
		struct remote_series *s = NULL;
		size_t n = 0, nsamples = 0;
		uint64_t add = 0, conf = 0;

		if (peer_stopping(p)) {
			snprintf(err, errlen, "stopped");
			*bad = PEER_OK;
			goto fail;
		}
		if (remote_read(p->reader, &p->all, 1, t, u - 1, NULL, &s, &n, cerr,
		    sizeof(cerr)) < 0) {
			if (strstr(cerr, "exceeded sample limit") != NULL &&
			    p->slice_ms > PEER_MIN_SLICE_MS) {
				p->slice_ms /= 2;	/* the peer's limit: smaller pieces */
				continue;
			}
			snprintf(err, errlen, "%s", cerr);
			*bad = read_state(cerr);
			goto fail;
		}
		for (size_t i = 0; i < n; i++)
			nsamples += s[i].n;
		if (check_slice(s, n, t, u - 1, cerr, sizeof(cerr)) < 0) {
			remote_series_free(s, n);
			snprintf(err, errlen, "%s", cerr);
			*bad = PEER_GARBAGE;
			goto fail;
		}
		if (apply_slice(p, s, n, t, u - 1, &add, &conf, cerr, sizeof(cerr)) < 0) {
			remote_series_free(s, n);
			snprintf(err, errlen, "%s", cerr);
			*bad = PEER_OK;		/* our store, not the peer */
			goto fail;
		}
		remote_series_free(s, n);
		if (coverage_add(p->cov, t, u, cerr, sizeof(cerr)) < 0)
			log_kv(LOG_ERROR, "peer", "cannot record coverage", "err", cerr, (char *)NULL);
		total += add;
		total_conf += conf;
		pthread_mutex_lock(&p->mu);
		p->st.samples_repaired += add;
		p->st.samples_conflicting += conf;
		pthread_mutex_unlock(&p->mu);
		/* aim the next slice at slice_samples */
		if (nsamples > p->o.slice_samples && p->slice_ms > PEER_MIN_SLICE_MS)
			p->slice_ms /= 2;
		else if (nsamples < p->o.slice_samples / 4 && p->slice_ms < PEER_MAX_SLICE_MS)
			p->slice_ms *= 2;
		t = u;
	}
	pthread_mutex_lock(&p->mu);
	p->repairing = false;
	p->st.ranges_repaired++;
	p->recent[p->recent_next] = (struct peer_repair){
		.start = start, .end = end, .samples = total, .conflicts = total_conf,
		.at_ms = time_now_ms(), .seconds = (double)(time_mono_ns() - began) / 1e9,
	};
	p->recent_next = (p->recent_next + 1) % PEER_RECENT;
	if (p->nrecent < PEER_RECENT)
		p->nrecent++;
	pthread_mutex_unlock(&p->mu);
	{
		char b1[40], b2[40], ns[32], ss[32];

		snprintf(ns, sizeof(ns), "%" PRIu64, total);
		snprintf(ss, sizeof(ss), "%.3f", (double)(time_mono_ns() - began) / 1e9);
		log_kv(LOG_INFO, "peer", "repaired a range from the peer", "start",
		    time_format_rfc3339(start, b1, sizeof(b1)), "end",
		    time_format_rfc3339(end, b2, sizeof(b2)), "samples", ns, "seconds", ss,
		    (char *)NULL);
	}
	return 0;
fail:
	pthread_mutex_lock(&p->mu);
	p->repairing = false;
	pthread_mutex_unlock(&p->mu);
	return -1;
}

/* missing_now computes what the peer's answer holds that this replica
 * lacks, within the retention and up to both watermarks. */
static void
missing_now(struct peer *p, const struct peer_answer *a, int64_t lag, struct ranges *out)
{
	struct ranges held = RANGES_INIT, theirs = RANGES_INIT;
	int64_t now = time_now_ms();
	int64_t lo = p->o.retention_ms > 0 ? now - p->o.retention_ms : INT64_MIN;
	int64_t hi = a->watermark < now - lag ? a->watermark : now - lag;

	/* What lies after the start of this process's own stretch is ours:
	 * the heartbeat claims it as it becomes final. */
	pthread_mutex_lock(&p->mu);
	if (p->run_open && p->run_start < hi)
		hi = p->run_start;
	pthread_mutex_unlock(&p->mu);
	coverage_get(p->cov, &held);
	ranges_copy(&theirs, &a->coverage);
	ranges_clip(&theirs, lo, hi);
	ranges_subtract(out, &theirs, &held);
	ranges_free(&held);
	ranges_free(&theirs);
}

/* failed_pass records a pass the peer could not be used in. */
static void
failed_pass(struct peer *p, enum peer_state s, const char *err)
{
	bool give_up = false;
	int64_t now = mono_ms();

	pthread_mutex_lock(&p->mu);
	set_state_locked(p, s, err);
	p->st.sync_failures++;
	if (p->bad_since_mono == 0)
		p->bad_since_mono = now;
	give_up = !p->synced && (s == PEER_MISMATCHED || now - p->bad_since_mono >= p->o.give_up_ms);
	pthread_mutex_unlock(&p->mu);
	if (give_up)
		become_synced(p, s == PEER_MISMATCHED ? "peer belongs to another cluster" :
		    "peer not usable");
}

int
peer_sync_once(struct peer *p)
{
	struct peer_answer a;
	struct ranges miss = RANGES_INIT;
	char fp[PEER_FINGERPRINT_LEN], err[1024];
	int64_t lag, t0 = 0, t1 = 0;
	enum peer_state st;
	bool synced, configured;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	configured = p->configured;
	memcpy(fp, p->fingerprint, sizeof(fp));
	lag = p->lag_ms;
	synced = p->synced;
	pthread_mutex_unlock(&p->mu);
	if (!configured)
		return -1;
	if (p->reader == NULL) {
		become_synced(p, "no peer configured");
		return 0;
	}
	if (!synced && mono_ms() - p->start_mono >= p->o.max_wait_ms)
		become_synced(p, "start-up repair took too long");

	st = fetch_answer(p, &a, &t0, &t1, err, sizeof(err));
	if (st != PEER_OK) {
		failed_pass(p, st, err);
		return -1;
	}
	if (strcmp(a.fingerprint, fp) != 0) {
		snprintf(err, sizeof(err), "the peer's configuration fingerprint %s differs from "
		    "this replica's %s: it belongs to another cluster; nothing is copied from it",
		    a.fingerprint, fp);
		ranges_free(&a.coverage);
		pthread_mutex_lock(&p->mu);
		memcpy(p->peer_fp, a.fingerprint, sizeof(p->peer_fp));
		ranges_reset(&p->missing);
		pthread_mutex_unlock(&p->mu);
		failed_pass(p, PEER_MISMATCHED, err);
		return -1;
	}

	missing_now(p, &a, lag, &miss);
	pthread_mutex_lock(&p->mu);
	set_state_locked(p, PEER_OK, NULL);
	p->answered = true;
	memcpy(p->peer_fp, a.fingerprint, sizeof(p->peer_fp));
	p->peer_time = a.time;
	p->peer_watermark = a.watermark;
	p->peer_synced = a.synced;
	p->skew_s = (double)(a.time - (t0 + t1) / 2) / 1000.0;
	ranges_copy(&p->peer_cov, &a.coverage);
	ranges_copy(&p->missing, &miss);
	pthread_mutex_unlock(&p->mu);

	for (size_t i = 0; i < miss.n; i++) {
		enum peer_state bad = PEER_OK;

		if (repair_range(p, miss.v[i].start, miss.v[i].end, &bad, err, sizeof(err)) < 0) {
			bool stopped = strcmp(err, "stopped") == 0;

			pthread_mutex_lock(&p->mu);
			if (!stopped)
				p->st.repair_failures++;
			if (bad == PEER_OK)	/* our store: the peer is fine */
				snprintf(p->last_error, sizeof(p->last_error), "%s", err);
			pthread_mutex_unlock(&p->mu);
			if (!stopped)
				log_kv(LOG_WARN, "peer", "repair failed", "peer", p->url, "err", err,
				    (char *)NULL);
			if (bad != PEER_OK)
				failed_pass(p, bad, err);
			rc = -1;
			break;
		}
	}
	missing_now(p, &a, lag, &miss);
	pthread_mutex_lock(&p->mu);
	ranges_copy(&p->missing, &miss);
	p->st.last_sync_ms = time_now_ms();
	if (rc == 0) {
		p->st.syncs++;
		p->bad_since_mono = 0;	/* a failure streak ends with a whole pass */
	}
	pthread_mutex_unlock(&p->mu);
	if (!synced && rc == 0) {
		bool open;
		int64_t own;

		pthread_mutex_lock(&p->mu);
		open = p->run_open;
		own = p->run_start;
		pthread_mutex_unlock(&p->mu);
		/* Every sample before this process's start is here: rules may
		 * run from now on (or the peer is catching up itself: nothing
		 * more to wait for before they do). */
		if (!open && ((miss.n == 0 && a.watermark >= p->start_ms) || !a.synced)) {
			own = open_stretch(p);
			open = true;
		}
		/* Ready once whole: the peer's final samples reach the start of
		 * the own stretch and all of them are here. Before that, the
		 * instants between the peer's watermark and that start exist on
		 * the peer alone (it evaluated their rules, this process did
		 * not), and losing the peer now would lose them for the pair. */
		if (open && miss.n == 0 && a.watermark >= own)
			become_synced(p, "caught up with the peer");
	}
	ranges_free(&miss);
	ranges_free(&a.coverage);
	return rc;
}

/* --- threads ---------------------------------------------------------------- */

/* wait_for sleeps up to ms or until stopped (mu held). Returns true when
 * stopping. */
static bool
wait_for(struct peer *p, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (!p->stop)
		pthread_cond_timedwait(&p->cond, &p->mu, &ts);
	return p->stop;
}

static void *
heartbeat_main(void *arg)
{
	struct peer *p = arg;

#ifdef HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), "peer-heartbeat");
#endif
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		pthread_mutex_unlock(&p->mu);
		peer_heartbeat(p, time_now_ms(), mono_ms());
		pthread_mutex_lock(&p->mu);
		if (wait_for(p, p->o.heartbeat_ms))
			break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void *
sync_main(void *arg)
{
	struct peer *p = arg;

#ifdef HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), "peer-sync");
#endif
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		int64_t next;

		if (!p->configured) {
			wait_for(p, 1000);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		peer_sync_once(p);
		pthread_mutex_lock(&p->mu);
		next = p->synced ? p->o.sync_interval_ms : 1000;
		if (wait_for(p, next))
			break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* --- life cycle -------------------------------------------------------------- */

struct peer *
peer_new(const struct peer_opts *o, char *err, size_t errlen)
{
	struct peer *p = mem_calloc(1, sizeof(*p));
	size_t ul;

	p->o = *o;
	if (p->o.heartbeat_ms <= 0)
		p->o.heartbeat_ms = 2000;
	if (p->o.stall_ms <= 0)
		p->o.stall_ms = 30000;
	if (p->o.sync_interval_ms <= 0)
		p->o.sync_interval_ms = 10000;
	if (p->o.timeout_ms <= 0)
		p->o.timeout_ms = 5000;
	if (p->o.read_timeout_ms <= 0)
		p->o.read_timeout_ms = 60000;
	if (p->o.max_wait_ms <= 0)
		p->o.max_wait_ms = 10 * 60 * 1000;
	if (p->o.give_up_ms <= 0)
		p->o.give_up_ms = PEER_GIVE_UP_MS;
	if (p->o.slice_samples == 0)
		p->o.slice_samples = PEER_SLICE_SAMPLES;
	p->slice_ms = p->o.slice_ms > 0 ? p->o.slice_ms : 60 * 1000;
	p->url = mem_strdup(o->url != NULL ? o->url : "");
	ul = strlen(p->url);
	while (ul > 0 && p->url[ul - 1] == '/')
		p->url[--ul] = '\0';
	p->data_dir = mem_strdup(o->data_dir != NULL ? o->data_dir : ".");
	p->o.url = p->url;
	p->o.data_dir = p->data_dir;
	p->start_ms = time_now_ms();
	p->start_mono = mono_ms();
	p->state = ul > 0 ? PEER_UNKNOWN : PEER_NONE;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);

	p->cov = coverage_open(p->data_dir, o->retention_ms > 0 ? p->start_ms - o->retention_ms : 0,
	    err, errlen);
	if (p->cov == NULL)
		goto fail;
	p->all = matcher_new(MATCH_REGEX, LABEL_METRIC_NAME, ".+", err, errlen);
	if (p->all == NULL)
		goto fail;
	if (ul > 0) {
		struct cfg_remote_read rr = { 0 };
		struct cfg_kv h = { (char *)REMOTE_READ_STORED_HEADER, (char *)"true" };
		struct strbuf u = STRBUF_INIT;
		char e[512];

		if (strncmp(p->url, "http://", 7) != 0 && strncmp(p->url, "https://", 8) != 0) {
			snprintf(err, errlen, "--peer.url=%s: must be an http:// or https:// URL", p->url);
			goto fail;
		}
		strbuf_printf(&u, "%s/api/v1/read", p->url);
		rr.url = (char *)strbuf_cstr(&u);
		rr.remote_timeout_ms = p->o.read_timeout_ms;
		rr.headers = &h;
		rr.n_headers = 1;
		rr.http.follow_redirects = true;
		p->reader = remote_reader_new(&rr, NULL, e, sizeof(e));
		strbuf_free(&u);
		if (p->reader == NULL) {
			snprintf(err, errlen, "--peer.url: %s", e);
			goto fail;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	p->curl_init = true;
	return p;
fail:
	peer_free(p);
	return NULL;
}

void
peer_set_config(struct peer *p, const char *fingerprint, int64_t lag_ms, int64_t run_offset_ms)
{
	pthread_mutex_lock(&p->mu);
	snprintf(p->fingerprint, sizeof(p->fingerprint), "%s", fingerprint);
	p->lag_ms = lag_ms;
	p->run_offset_ms = run_offset_ms;
	p->configured = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
}

int
peer_start(struct peer *p, char *err, size_t errlen)
{
	if (pthread_create(&p->hb_thread, NULL, heartbeat_main, p) != 0) {
		snprintf(err, errlen, "cannot start the peer heartbeat thread");
		return -1;
	}
	if (pthread_create(&p->sync_thread, NULL, sync_main, p) != 0) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->hb_thread, NULL);
		snprintf(err, errlen, "cannot start the peer sync thread");
		return -1;
	}
	p->running = true;
	return 0;
}

void
peer_stop(struct peer *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	if (p->running) {
		pthread_join(p->hb_thread, NULL);
		pthread_join(p->sync_thread, NULL);
		p->running = false;
	}
}

void
peer_free(struct peer *p)
{
	if (p == NULL)
		return;
	peer_stop(p);
	if (p->easy != NULL)
		curl_easy_cleanup(p->easy);
	if (p->reader != NULL)
		remote_reader_free(p->reader);
	if (p->all != NULL)
		matcher_free(p->all);
	coverage_close(p->cov);
	ranges_free(&p->peer_cov);
	ranges_free(&p->missing);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
	mem_free(p->url);
	mem_free(p->data_dir);
	if (p->curl_init)
		curl_global_cleanup();
	mem_free(p);
}

/* --- endpoints ------------------------------------------------------------------ */

static void
json_ranges(struct json_writer *w, const struct ranges *r)
{
	char b[40];

	json_array_begin(w);
	for (size_t i = 0; i < r->n; i++) {
		json_object_begin(w);
		json_key(w, "start");
		json_string(w, time_format_rfc3339(r->v[i].start, b, sizeof(b)));
		json_key(w, "end");
		json_string(w, time_format_rfc3339(r->v[i].end, b, sizeof(b)));
		json_key(w, "startMs");
		json_int(w, r->v[i].start);
		json_key(w, "endMs");
		json_int(w, r->v[i].end);
		json_object_end(w);
	}
	json_array_end(w);
}

static void
json_time(struct json_writer *w, const char *key, int64_t ms)
{
	char b[40];

	json_key(w, key);
	if (ms == 0)
		json_null(w);
	else
		json_string(w, time_format_rfc3339(ms, b, sizeof(b)));
}

static int
handle_peer(struct http_request *req, void *arg)
{
	struct peer *p = arg;
	struct ranges held = RANGES_INIT;
	struct api_response r;
	struct json_writer *w;
	int64_t now = time_now_ms();

	coverage_get(p->cov, &held);
	api_success_begin(&r);
	w = &r.w;
	pthread_mutex_lock(&p->mu);
	json_object_begin(w);
	json_key(w, "url");
	json_string(w, p->url);
	json_key(w, "state");
	json_string(w, peer_state_name(p->state));
	json_key(w, "lastError");
	json_string(w, p->last_error);
	json_key(w, "synced");
	json_bool(w, p->synced);
	json_key(w, "syncedReason");
	json_string(w, p->synced_why != NULL ? p->synced_why : "");
	json_time(w, "syncedAt", p->synced ? p->synced_at_ms : 0);
	json_time(w, "stretchStart", p->run_open ? p->run_start : 0);
	json_key(w, "stretchStartMs");
	if (p->run_open)
		json_int(w, p->run_start);
	else
		json_null(w);
	json_time(w, "startTime", p->start_ms);
	json_key(w, "fingerprint");
	json_string(w, p->fingerprint);
	json_key(w, "peerFingerprint");
	json_string(w, p->peer_fp);
	json_time(w, "lastSync", p->st.last_sync_ms);
	json_key(w, "lastSyncTimestamp");
	json_double(w, (double)p->st.last_sync_ms / 1000.0);
	json_key(w, "clockSkewSeconds");
	json_double(w, p->skew_s);
	json_key(w, "lagSeconds");
	json_double(w, (double)p->lag_ms / 1000.0);
	json_time(w, "watermark", p->configured ? now - p->lag_ms : 0);
	json_time(w, "peerWatermark", p->answered ? p->peer_watermark : 0);
	json_key(w, "peerSynced");
	json_bool(w, p->peer_synced);
	json_key(w, "coverage");
	json_ranges(w, &held);
	json_key(w, "peerCoverage");
	json_ranges(w, &p->peer_cov);
	json_key(w, "missing");
	json_ranges(w, &p->missing);
	json_key(w, "rangesMissing");
	json_uint(w, p->missing.n);
	json_key(w, "missingSeconds");
	json_double(w, (double)ranges_total(&p->missing) / 1000.0);
	json_key(w, "repairing");
	if (p->repairing) {
		struct ranges one = RANGES_INIT;

		ranges_add(&one, p->repairing_range.start, p->repairing_range.end);
		json_ranges(w, &one);
		ranges_free(&one);
	} else {
		json_null(w);
	}
	json_key(w, "rangesRepaired");
	json_uint(w, p->st.ranges_repaired);
	json_key(w, "samplesRepaired");
	json_uint(w, p->st.samples_repaired);
	json_key(w, "samplesConflicting");
	json_uint(w, p->st.samples_conflicting);
	json_key(w, "repairFailures");
	json_uint(w, p->st.repair_failures);
	json_key(w, "syncs");
	json_uint(w, p->st.syncs);
	json_key(w, "syncFailures");
	json_uint(w, p->st.sync_failures);
	json_key(w, "recentRepairs");
	json_array_begin(w);
	for (size_t i = 0; i < p->nrecent; i++) {
		const struct peer_repair *x =
		    &p->recent[(p->recent_next + PEER_RECENT - 1 - i) % PEER_RECENT];
		char b[40];

		json_object_begin(w);
		json_key(w, "start");
		json_string(w, time_format_rfc3339(x->start, b, sizeof(b)));
		json_key(w, "end");
		json_string(w, time_format_rfc3339(x->end, b, sizeof(b)));
		json_key(w, "startMs");
		json_int(w, x->start);
		json_key(w, "endMs");
		json_int(w, x->end);
		json_key(w, "samples");
		json_uint(w, x->samples);
		json_key(w, "conflicts");
		json_uint(w, x->conflicts);
		json_time(w, "finished", x->at_ms);
		json_key(w, "durationSeconds");
		json_double(w, x->seconds);
		json_object_end(w);
	}
	json_array_end(w);
	json_object_end(w);
	pthread_mutex_unlock(&p->mu);
	ranges_free(&held);
	return api_success_end(&r, req);
}

static int
handle_coverage(struct http_request *req, void *arg)
{
	struct strbuf out = STRBUF_INIT;

	peer_write_answer(arg, &out);
	return http_respond(req, 200, PEER_CONTENT_TYPE, &out);
}

int
peer_route(struct peer *p, struct http_server *srv)
{
	if (http_server_route(srv, HTTP_GET, "/api/v1/peer", HTTP_ROUTE_GZIP, handle_peer, p) < 0 ||
	    http_server_route(srv, HTTP_GET, "/api/v1/peer/coverage", HTTP_ROUTE_GZIP,
	    handle_coverage, p) < 0)
		return -1;
	return 0;
}

/* --- metrics ---------------------------------------------------------------------- */

static void
family(struct strbuf *out, enum peer_metric m)
{
	metrics_family(out, peer_metric_defs[m].name, peer_metric_defs[m].type,
	    peer_metric_defs[m].help);
}

void
peer_collect(void *arg, struct strbuf *out)
{
	struct peer *p = arg;
	struct ranges held = RANGES_INIT;
	struct peer_stats st;
	enum peer_state state;
	double skew, missing_s;
	bool synced;

	coverage_get(p->cov, &held);
	pthread_mutex_lock(&p->mu);
	st = p->st;
	st.ranges_missing = p->missing.n;
	missing_s = (double)ranges_total(&p->missing) / 1000.0;
	state = p->state;
	skew = p->skew_s;
	synced = p->synced;
	pthread_mutex_unlock(&p->mu);

	family(out, PM_UP);
	metrics_sample(out, peer_metric_defs[PM_UP].name, state == PEER_OK ? 1 : 0, (char *)NULL);
	family(out, PM_STATE);
	for (size_t i = 0; i < sizeof(peer_state_names) / sizeof(peer_state_names[0]); i++)
		metrics_sample(out, peer_metric_defs[PM_STATE].name, (size_t)state == i ? 1 : 0,
		    "state", peer_state_names[i], (char *)NULL);
	family(out, PM_SYNCED);
	metrics_sample(out, peer_metric_defs[PM_SYNCED].name, synced ? 1 : 0, (char *)NULL);
	family(out, PM_MISSING);
	metrics_sample(out, peer_metric_defs[PM_MISSING].name, (double)st.ranges_missing,
	    (char *)NULL);
	family(out, PM_MISSING_SECONDS);
	metrics_sample(out, peer_metric_defs[PM_MISSING_SECONDS].name, missing_s, (char *)NULL);
	family(out, PM_COVERED_SECONDS);
	metrics_sample(out, peer_metric_defs[PM_COVERED_SECONDS].name,
	    (double)ranges_total(&held) / 1000.0, (char *)NULL);
	family(out, PM_RANGES_REPAIRED);
	metrics_sample(out, peer_metric_defs[PM_RANGES_REPAIRED].name,
	    (double)st.ranges_repaired, (char *)NULL);
	family(out, PM_SAMPLES_REPAIRED);
	metrics_sample(out, peer_metric_defs[PM_SAMPLES_REPAIRED].name,
	    (double)st.samples_repaired, (char *)NULL);
	family(out, PM_CONFLICTS);
	metrics_sample(out, peer_metric_defs[PM_CONFLICTS].name,
	    (double)st.samples_conflicting, (char *)NULL);
	family(out, PM_FAILURES);
	metrics_sample(out, peer_metric_defs[PM_FAILURES].name, (double)st.repair_failures,
	    (char *)NULL);
	family(out, PM_SYNCS);
	metrics_sample(out, peer_metric_defs[PM_SYNCS].name, (double)st.syncs, (char *)NULL);
	family(out, PM_SYNC_FAILURES);
	metrics_sample(out, peer_metric_defs[PM_SYNC_FAILURES].name, (double)st.sync_failures,
	    (char *)NULL);
	family(out, PM_LAST_SYNC);
	metrics_sample(out, peer_metric_defs[PM_LAST_SYNC].name, (double)st.last_sync_ms / 1000.0,
	    (char *)NULL);
	family(out, PM_SKEW);
	metrics_sample(out, peer_metric_defs[PM_SKEW].name, skew, (char *)NULL);
	ranges_free(&held);
}
