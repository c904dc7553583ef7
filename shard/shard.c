/* shard/shard.c - target ownership for strata-leaf: modes, hashing, the view.
 *
 * Validation turns the --shard.* flags into a struct shard or one clear
 * message. Member URLs are checked and canonicalized with libcurl's URL
 * parser, sorted, so that the member order (and the tie-break of equal
 * scores) is the same on every leaf whatever the order of --shard.peers.
 *
 * The view (live[] and its count) is guarded by a rwlock: shard_owns()
 * takes it for reading, the prober's change callback for writing. The
 * change callback of the wiring runs after the write lock is released.
 * Everything else in struct shard is immutable after shard_new().
 */
#include "config.h"

#include "shard/shard.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "relabel/relabel.h"
#include "shard/members.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"

/* Bumped whenever the assignment formula changes, so that leaves running
 * different formulas see different fingerprints. */
#define SHARD_SCHEME "strata-shard-v1"
#define SHARD_FINGERPRINT_EVERY 5	/* probe rounds between fingerprint reads */

struct shard {
	enum shard_mode mode;
	uint64_t count, index;		/* static */
	unsigned rf;
	char **urls;			/* dynamic: sorted canonical URLs */
	uint64_t *seeds;		/* shard_member_seed(urls[i]) */
	size_t n, self;
	int64_t probe_interval_ms, hold_down_ms;
	unsigned dead_after;
	char fp[24];
	char *replica_name, *replica_value;	/* NULL unless R > 1 */

	pthread_rwlock_t lock;		/* guards live, nlive, changes */
	bool *live;
	size_t nlive;
	uint64_t changes;

	struct members *members;	/* dynamic */
	shard_change_fn fn;
	void *fn_arg;
	shard_targets_fn tfn;
	void *targ;
};

void
shard_opts_default(struct shard_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->count = 1;
	o->index = 0;
	o->peers = "";
	o->self = "";
	o->replication_factor = 1;
	o->replica_label = "leaf_replica";
	o->probe_interval_ms = SHARD_DEFAULT_PROBE_INTERVAL_MS;
	o->dead_after = SHARD_DEFAULT_DEAD_AFTER;
	o->hold_down_ms = SHARD_DEFAULT_HOLD_DOWN_MS;
}

void
shard_opts_from_flags(struct shard_opts *o, struct flag *flags, size_t n)
{
	struct flag *f;

	shard_opts_default(o);
	if ((f = flag_find(flags, n, "shard.count")) != NULL) {
		o->count = flag_int(flags, n, "shard.count");
		o->count_set = f->set;
	}
	if ((f = flag_find(flags, n, "shard.index")) != NULL) {
		o->index = flag_int(flags, n, "shard.index");
		o->index_set = f->set;
	}
	if (flag_find(flags, n, "shard.peers") != NULL)
		o->peers = flag_str(flags, n, "shard.peers");
	if (flag_find(flags, n, "shard.self") != NULL)
		o->self = flag_str(flags, n, "shard.self");
	if (flag_find(flags, n, "shard.replication-factor") != NULL)
		o->replication_factor = flag_int(flags, n, "shard.replication-factor");
	if (flag_find(flags, n, "shard.replica-label") != NULL)
		o->replica_label = flag_str(flags, n, "shard.replica-label");
	if (flag_find(flags, n, "shard.probe-interval") != NULL)
		o->probe_interval_ms = flag_duration_ms(flags, n, "shard.probe-interval");
	if (flag_find(flags, n, "shard.dead-after") != NULL)
		o->dead_after = flag_int(flags, n, "shard.dead-after");
	if (flag_find(flags, n, "shard.hold-down") != NULL)
		o->hold_down_ms = flag_duration_ms(flags, n, "shard.hold-down");
}

/* ------------------------------------------------------------------------ */
/* URLs                                                                      */
/* ------------------------------------------------------------------------ */

static void
shard_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* shard_url_parts parses url into canonical scheme://host:port[path] (cb)
 * and host:port (hp). Returns 0, or -1 with err. */
static int
shard_url_parts(const char *url, struct strbuf *cb, struct strbuf *hp, char *err,
    size_t errlen)
{
	CURLU *u = curl_url();
	CURLUcode rc;
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *x = NULL;
	size_t plen;
	int ret = -1;

	if (u == NULL) {
		snprintf(err, errlen, "out of memory parsing \"%s\"", url);
		return -1;
	}
	if (url[0] == '\0') {
		snprintf(err, errlen, "empty URL");
		goto out;
	}
	if (strstr(url, "://") == NULL) {
		snprintf(err, errlen, "invalid URL \"%s\": want http://host:port or https://host:port", url);
		goto out;
	}
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK) {
		snprintf(err, errlen, "invalid URL \"%s\": %s", url, curl_url_strerror(rc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		snprintf(err, errlen, "invalid URL \"%s\": no scheme", url);
		goto out;
	}
	shard_lower(scheme);
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(err, errlen, "invalid URL \"%s\": scheme \"%s\" is not http or https", url, scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		snprintf(err, errlen, "invalid URL \"%s\": no host", url);
		goto out;
	}
	shard_lower(host);
	if (curl_url_get(u, CURLUPART_USER, &x, 0) == CURLUE_OK) {
		snprintf(err, errlen, "invalid URL \"%s\": user information is not allowed", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &x, 0) == CURLUE_OK) {
		snprintf(err, errlen, "invalid URL \"%s\": a query string is not allowed", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_FRAGMENT, &x, 0) == CURLUE_OK) {
		snprintf(err, errlen, "invalid URL \"%s\": a fragment is not allowed", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(err, errlen, "invalid URL \"%s\": no port", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		snprintf(err, errlen, "invalid URL \"%s\": bad path", url);
		goto out;
	}
	plen = strlen(path);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	strbuf_printf(cb, "%s://%s:%s%.*s", scheme, host, port, (int)plen, path);
	strbuf_printf(hp, "%s:%s", host, port);
	ret = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(x);
	curl_url_cleanup(u);
	return ret;
}

char *
shard_canonical_url(const char *url, char *err, size_t errlen)
{
	struct strbuf cb = STRBUF_INIT, hp = STRBUF_INIT;

	if (shard_url_parts(url, &cb, &hp, err, errlen) < 0) {
		strbuf_free(&cb);
		strbuf_free(&hp);
		return NULL;
	}
	strbuf_free(&hp);
	return strbuf_detach(&cb, NULL);
}

static int
shard_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
shard_urls_free(char **urls, size_t n)
{
	size_t i;

	if (urls == NULL)
		return;
	for (i = 0; i < n; i++)
		mem_free(urls[i]);
	mem_free(urls);
}

int
shard_parse_peers(const char *list, char ***urls, size_t *n, char *err, size_t errlen)
{
	char **v = NULL, *one;
	size_t k = 0, i, j;
	const char *p = list, *b, *e, *comma;

	*urls = NULL;
	*n = 0;
	for (;;) {
		comma = strchr(p, ',');
		e = comma != NULL ? comma : p + strlen(p);
		b = p;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (b == e) {
			snprintf(err, errlen, "empty entry (entry %zu of \"%s\")", k + 1, list);
			goto fail;
		}
		one = mem_strndup(b, (size_t)(e - b));
		v = mem_realloc(v, (k + 1) * sizeof(*v));
		v[k] = shard_canonical_url(one, err, errlen);
		mem_free(one);
		if (v[k] == NULL)
			goto fail;
		for (j = 0; j < k; j++) {
			if (strcmp(v[j], v[k]) == 0) {
				snprintf(err, errlen, "duplicate member %s (entries %zu and %zu)",
				    v[k], j + 1, k + 1);
				k++;
				goto fail;
			}
		}
		k++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	qsort(v, k, sizeof(*v), shard_cmp_str);
	*urls = v;
	*n = k;
	return 0;
fail:
	for (i = 0; i < k; i++)
		mem_free(v[i]);
	mem_free(v);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* hashing                                                                   */
/* ------------------------------------------------------------------------ */

uint64_t
shard_member_seed(const char *url)
{
	return XXH3_64bits(url, strlen(url));
}

uint64_t
shard_hrw_score(uint64_t seed, const char *a, size_t len)
{
	return XXH3_64bits_withSeed(a, len, seed);
}

/* shard_better tells whether (sa, ia) ranks before (sb, ib). */
static inline bool
shard_better(uint64_t sa, size_t ia, uint64_t sb, size_t ib)
{
	return sa > sb || (sa == sb && ia < ib);
}

size_t
shard_hrw_owners(const uint64_t *seeds, const bool *live, size_t n,
    const char *a, size_t len, size_t r, size_t *out)
{
	uint64_t stack[32], *sc = r <= 32 ? stack : mem_alloc(r * sizeof(*sc));
	size_t i, k = 0, j;

	for (i = 0; i < n && r > 0; i++) {
		uint64_t s;

		if (live != NULL && !live[i])
			continue;
		s = shard_hrw_score(seeds[i], a, len);
		if (k == r && !shard_better(s, i, sc[k - 1], out[k - 1]))
			continue;
		j = k < r ? k++ : k - 1;
		while (j > 0 && shard_better(s, i, sc[j - 1], out[j - 1])) {
			sc[j] = sc[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		sc[j] = s;
		out[j] = i;
	}
	if (sc != stack)
		mem_free(sc);
	return k;
}

/* ------------------------------------------------------------------------ */
/* the shard                                                                 */
/* ------------------------------------------------------------------------ */

static void
shard_compute_fingerprint(struct shard *s)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	strbuf_printf(&sb, "%s\n%s\n", SHARD_SCHEME, shard_mode_name(s->mode));
	if (s->mode == SHARD_STATIC)
		strbuf_printf(&sb, "count=%" PRIu64 "\n", s->count);
	if (s->mode == SHARD_DYNAMIC) {
		strbuf_printf(&sb, "hrw=xxh3\nr=%u\n", s->rf);
		if (s->replica_name != NULL)
			strbuf_printf(&sb, "replica_label=%s\n", s->replica_name);
		for (i = 0; i < s->n; i++)
			strbuf_printf(&sb, "member=%s\n", s->urls[i]);
	}
	snprintf(s->fp, sizeof(s->fp), "%016" PRIx64, XXH3_64bits(sb.buf, sb.len));
	strbuf_free(&sb);
}

static void
shard_members_changed(void *arg, const bool *live, size_t n)
{
	struct shard *s = arg;
	size_t i, k = 0;

	pthread_rwlock_wrlock(&s->lock);
	for (i = 0; i < n && i < s->n; i++) {
		s->live[i] = live[i] || i == s->self;
		k += s->live[i];
	}
	s->nlive = k;
	s->changes++;
	pthread_rwlock_unlock(&s->lock);
	log_msg(LOG_INFO, "shard", "live members changed: %zu of %zu live, re-running target ownership",
	    k, s->n);
	if (s->fn != NULL)
		s->fn(s->fn_arg);
}

static int
shard_check_label_name(const char *name, char *err, size_t errlen)
{
	if (!labels_is_valid_name(name, strlen(name))) {
		snprintf(err, errlen, "--shard.replica-label \"%s\" is not a valid label name", name);
		return -1;
	}
	if (name[0] == '_' && name[1] == '_') {
		snprintf(err, errlen, "--shard.replica-label \"%s\" is reserved (names starting with __ are internal)", name);
		return -1;
	}
	return 0;
}

struct shard *
shard_new(const struct shard_opts *o, char *err, size_t errlen)
{
	struct shard *s = NULL;
	bool dynamic = o->peers != NULL && o->peers[0] != '\0';
	bool has_self = o->self != NULL && o->self[0] != '\0';
	struct strbuf cb = STRBUF_INIT, hp = STRBUF_INIT, all = STRBUF_INIT;
	size_t i;

	if (dynamic && (o->count_set || o->index_set)) {
		snprintf(err, errlen, "--shard.peers cannot be combined with --shard.count or --shard.index: choose static (hashmod) or dynamic (peers) sharding");
		goto fail;
	}
	if (has_self && !dynamic) {
		snprintf(err, errlen, "--shard.self needs --shard.peers (the URLs of every leaf of the group)");
		goto fail;
	}
	if (dynamic && !has_self) {
		snprintf(err, errlen, "--shard.peers needs --shard.self (this leaf's URL as it appears in --shard.peers)");
		goto fail;
	}
	if (o->count < 1) {
		snprintf(err, errlen, "--shard.count must be at least 1, got %" PRId64, o->count);
		goto fail;
	}
	if (o->index < 0) {
		snprintf(err, errlen, "--shard.index must not be negative, got %" PRId64, o->index);
		goto fail;
	}
	if (o->index >= o->count) {
		snprintf(err, errlen, "--shard.index=%" PRId64 " is out of range for --shard.count=%" PRId64
		    " (want 0 to %" PRId64 ")", o->index, o->count, o->count - 1);
		goto fail;
	}
	if (o->replication_factor < 1) {
		snprintf(err, errlen, "--shard.replication-factor must be at least 1, got %" PRId64,
		    o->replication_factor);
		goto fail;
	}
	if (o->replication_factor > 1 && !dynamic) {
		snprintf(err, errlen, "--shard.replication-factor=%" PRId64
		    " needs dynamic sharding (--shard.peers and --shard.self)", o->replication_factor);
		goto fail;
	}
	if (o->probe_interval_ms <= 0) {
		snprintf(err, errlen, "--shard.probe-interval must be more than 0s");
		goto fail;
	}
	if (o->dead_after < 1 || o->dead_after > 1000) {
		snprintf(err, errlen, "--shard.dead-after must be from 1 to 1000 failed probes, got %" PRId64,
		    o->dead_after);
		goto fail;
	}
	if (o->hold_down_ms < 0) {
		snprintf(err, errlen, "--shard.hold-down must not be negative");
		goto fail;
	}

	s = mem_calloc(1, sizeof(*s));
	pthread_rwlock_init(&s->lock, NULL);
	s->rf = 1;
	s->count = 1;
	s->probe_interval_ms = o->probe_interval_ms;
	s->dead_after = (unsigned)o->dead_after;
	s->hold_down_ms = o->hold_down_ms;
	if (!dynamic) {
		s->mode = o->count_set || o->index_set ? SHARD_STATIC : SHARD_NONE;
		s->count = (uint64_t)o->count;
		s->index = (uint64_t)o->index;
		shard_compute_fingerprint(s);
		return s;
	}

	s->mode = SHARD_DYNAMIC;
	{
		char e2[256];

		if (shard_parse_peers(o->peers, &s->urls, &s->n, e2, sizeof(e2)) < 0) {
			snprintf(err, errlen, "--shard.peers: %s", e2);
			goto fail;
		}
		if (shard_url_parts(o->self, &cb, &hp, e2, sizeof(e2)) < 0) {
			snprintf(err, errlen, "--shard.self: %s", e2);
			goto fail;
		}
	}
	for (i = 0; i < s->n; i++)
		if (strcmp(s->urls[i], cb.buf) == 0)
			break;
	if (i == s->n) {
		for (i = 0; i < s->n; i++)
			strbuf_printf(&all, "%s%s", i > 0 ? ", " : "", s->urls[i]);
		snprintf(err, errlen, "--shard.self %s is not in --shard.peers (%s)", cb.buf, all.buf);
		goto fail;
	}
	s->self = i;
	if ((uint64_t)o->replication_factor > s->n) {
		snprintf(err, errlen, "--shard.replication-factor=%" PRId64
		    " is larger than the group (%zu member%s in --shard.peers)",
		    o->replication_factor, s->n, s->n == 1 ? "" : "s");
		goto fail;
	}
	s->rf = (unsigned)o->replication_factor;
	if (s->rf > 1) {
		if (shard_check_label_name(o->replica_label, err, errlen) < 0)
			goto fail;
		s->replica_name = mem_strdup(o->replica_label);
		s->replica_value = strbuf_detach(&hp, NULL);
	}
	s->seeds = mem_calloc(s->n, sizeof(*s->seeds));
	s->live = mem_calloc(s->n, sizeof(*s->live));
	for (i = 0; i < s->n; i++) {
		s->seeds[i] = shard_member_seed(s->urls[i]);
		s->live[i] = true;	/* unknown counts as live */
	}
	s->nlive = s->n;
	shard_compute_fingerprint(s);
	{
		struct members_opts mo;

		memset(&mo, 0, sizeof(mo));
		mo.probe_interval_ms = o->probe_interval_ms;
		mo.probe_timeout_ms = o->probe_interval_ms;
		mo.policy.dead_after = (unsigned)o->dead_after;
		mo.policy.hold_down_ms = o->hold_down_ms;
		mo.fingerprint_every = SHARD_FINGERPRINT_EVERY;
		mo.fingerprint = s->fp;
		s->members = members_new((const char *const *)s->urls, s->n, s->self, &mo);
		members_on_change(s->members, shard_members_changed, s);
	}
	strbuf_free(&cb);
	strbuf_free(&hp);
	strbuf_free(&all);
	return s;
fail:
	strbuf_free(&cb);
	strbuf_free(&hp);
	strbuf_free(&all);
	shard_free(s);
	return NULL;
}

void
shard_free(struct shard *s)
{
	if (s == NULL)
		return;
	members_free(s->members);
	shard_urls_free(s->urls, s->n);
	mem_free(s->seeds);
	mem_free(s->live);
	mem_free(s->replica_name);
	mem_free(s->replica_value);
	pthread_rwlock_destroy(&s->lock);
	mem_free(s);
}

void
shard_on_change(struct shard *s, shard_change_fn fn, void *arg)
{
	s->fn = fn;
	s->fn_arg = arg;
}

void
shard_set_targets(struct shard *s, shard_targets_fn fn, void *arg)
{
	s->tfn = fn;
	s->targ = arg;
}

int
shard_start(struct shard *s, char *err, size_t errlen)
{
	if (s->members == NULL)
		return 0;
	return members_start(s->members, err, errlen);
}

void
shard_stop(struct shard *s)
{
	if (s->members != NULL)
		members_stop(s->members);
}

/* shard_dynamic_owns tells whether self is among the rf best live members:
 * fewer than rf live members rank before it. Caller holds the read lock. */
static bool
shard_dynamic_owns(const struct shard *s, const char *a, size_t len)
{
	uint64_t mine = shard_hrw_score(s->seeds[s->self], a, len);
	unsigned better = 0;
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (i == s->self || !s->live[i])
			continue;
		if (shard_better(shard_hrw_score(s->seeds[i], a, len), i, mine, s->self) &&
		    ++better >= s->rf)
			return false;
	}
	return true;
}

bool
shard_owns_address(struct shard *s, const char *a, size_t len)
{
	bool own;

	switch (s->mode) {
	case SHARD_NONE:
		return true;
	case SHARD_STATIC:
		return relabel_hashmod(a, len, s->count) == s->index;
	case SHARD_DYNAMIC:
		pthread_rwlock_rdlock(&s->lock);
		own = shard_dynamic_owns(s, a, len);
		pthread_rwlock_unlock(&s->lock);
		return own;
	}
	return true;
}

bool
shard_owns(void *arg, const struct labels *target_labels)
{
	const char *a = labels_get(target_labels, "__address__");

	if (a == NULL)
		a = "";
	return shard_owns_address(arg, a, strlen(a));
}

enum shard_mode
shard_mode(const struct shard *s)
{
	return s->mode;
}

const char *
shard_mode_name(enum shard_mode m)
{
	switch (m) {
	case SHARD_NONE:
		return "none";
	case SHARD_STATIC:
		return "static";
	case SHARD_DYNAMIC:
		return "dynamic";
	}
	return "none";
}

const char *
shard_fingerprint(const struct shard *s)
{
	return s->fp;
}

uint64_t
shard_static_count(const struct shard *s)
{
	return s->count;
}

uint64_t
shard_static_index(const struct shard *s)
{
	return s->index;
}

unsigned
shard_replication_factor(const struct shard *s)
{
	return s->rf;
}

size_t
shard_nmembers(const struct shard *s)
{
	return s->n;
}

const char *
shard_member_url(const struct shard *s, size_t i)
{
	return i < s->n ? s->urls[i] : NULL;
}

size_t
shard_self(const struct shard *s)
{
	return s->self;
}

void
shard_probe_settings(const struct shard *s, int64_t *interval_ms,
    unsigned *dead_after, int64_t *hold_down_ms)
{
	*interval_ms = s->probe_interval_ms;
	*dead_after = s->dead_after;
	*hold_down_ms = s->hold_down_ms;
}

struct members *
shard_members(const struct shard *s)
{
	return s->members;
}

size_t
shard_live(struct shard *s, bool *live)
{
	size_t k;

	pthread_rwlock_rdlock(&s->lock);
	if (s->n > 0)
		memcpy(live, s->live, s->n * sizeof(*live));
	k = s->nlive;
	pthread_rwlock_unlock(&s->lock);
	return k;
}

uint64_t
shard_changes(struct shard *s)
{
	uint64_t c;

	pthread_rwlock_rdlock(&s->lock);
	c = s->changes;
	pthread_rwlock_unlock(&s->lock);
	return c;
}

struct shard_count_ctx {
	struct shard *s;
	const bool *live;
	size_t *out;
	uint64_t total, owned, *per;
};

static void
shard_count_one(void *arg, const char *a, size_t len)
{
	struct shard_count_ctx *c = arg;
	struct shard *s = c->s;
	size_t k, i;
	uint64_t idx;

	c->total++;
	switch (s->mode) {
	case SHARD_NONE:
		c->owned++;
		if (c->per != NULL)
			c->per[0]++;
		break;
	case SHARD_STATIC:
		idx = relabel_hashmod(a, len, s->count);
		c->owned += idx == s->index;
		if (c->per != NULL && s->count <= SHARD_STATIC_LIST_MAX)
			c->per[idx]++;
		break;
	case SHARD_DYNAMIC:
		k = shard_hrw_owners(s->seeds, c->live, s->n, a, len, s->rf, c->out);
		for (i = 0; i < k; i++) {
			c->owned += c->out[i] == s->self;
			if (c->per != NULL)
				c->per[c->out[i]]++;
		}
		break;
	}
}

int
shard_count_targets(struct shard *s, uint64_t *total, uint64_t *owned, uint64_t *per)
{
	struct shard_count_ctx c;
	bool *live = NULL;

	*total = *owned = 0;
	if (s->tfn == NULL)
		return -1;
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.per = per;
	if (s->mode == SHARD_DYNAMIC) {
		live = mem_calloc(s->n, sizeof(*live));
		shard_live(s, live);
		c.live = live;
		c.out = mem_calloc(s->rf, sizeof(*c.out));
	}
	s->tfn(s->targ, shard_count_one, &c);
	mem_free(live);
	mem_free(c.out);
	*total = c.total;
	*owned = c.owned;
	return 0;
}

bool
shard_replica_label(const struct shard *s, const char **name, const char **value)
{
	if (s->replica_name == NULL)
		return false;
	*name = s->replica_name;
	*value = s->replica_value;
	return true;
}

struct labels *
shard_external_labels(const struct shard *s, const struct labels *ext)
{
	struct labels_builder *lb;
	struct labels *out;

	if (s->replica_name == NULL || labels_get(ext, s->replica_name) != NULL)
		return labels_ref((struct labels *)ext);
	lb = labels_builder_new();
	labels_builder_reset(lb, ext);
	labels_builder_set(lb, s->replica_name, s->replica_value);
	out = labels_builder_labels(lb);
	labels_builder_free(lb);
	return out;
}
