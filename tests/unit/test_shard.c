/* tests/unit/test_shard.c - shard/: static hashmod ownership, rendezvous
 * hashing, replication, the health state machine, flag validation, and the
 * prober against real lib/http servers on 127.0.0.1 that go away, come
 * back, hang or answer garbage.
 *
 * Static ownership is checked against an MD5 computed here with libcrypto,
 * rendezvous ownership against an XXH3 computation written out here, so a
 * change of formula in shard/ fails the test. Prober tests run with a
 * 100 ms probe interval; every wait is bounded and the measured detection
 * and return times are printed (and asserted against generous bounds).
 */
#include "config.h"

#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <xxhash.h>

#include "api/api.h"
#include "config/config.h"
#include "api/metrics.h"
#include "http/json.h"
#include "http/server.h"
#include "tsdb/head.h"
#include "scrape/scrape.h"
#include "shard/api.h"
#include "shard/leaf.h"
#include "shard/members.h"
#include "shard/shard.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define NADDR 1500

static char g_addr[NADDR][48];

static void
make_addresses(void)
{
	size_t i;

	for (i = 0; i < NADDR; i++) {
		if (i % 3 == 0)
			snprintf(g_addr[i], sizeof(g_addr[i]), "10.%zu.%zu.%zu:9100",
			    i / 65536, (i / 256) % 256, i % 256);
		else if (i % 3 == 1)
			snprintf(g_addr[i], sizeof(g_addr[i]), "node-%zu.example.org:%zu",
			    i, 9000 + i % 100);
		else
			snprintf(g_addr[i], sizeof(g_addr[i]), "[2001:db8::%zx]:80", i);
	}
}

static int64_t
mono_ms(void)
{
	return time_mono_ns() / 1000000;
}

/* md5_hashmod is Prometheus' hashmod, written out independently. */
static uint64_t
md5_hashmod(const char *s, uint64_t mod)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	uint64_t h = 0;
	int i;

	assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_md5(), NULL), 1);
	assert_int_equal(len, 16);
	for (i = 8; i < 16; i++)
		h = (h << 8) | md[i];
	return h % mod;
}

/* xxh_owner is the rendezvous owner among urls (live[i]), written out
 * independently: highest XXH3_64bits_withSeed(addr, XXH3_64bits(url)),
 * ties to the smaller URL. */
static size_t
xxh_owner(const char *const *urls, const bool *live, size_t n, const char *addr)
{
	size_t i, best = SIZE_MAX;
	uint64_t bs = 0;

	for (i = 0; i < n; i++) {
		uint64_t sc;

		if (live != NULL && !live[i])
			continue;
		sc = XXH3_64bits_withSeed(addr, strlen(addr), XXH3_64bits(urls[i], strlen(urls[i])));
		if (best == SIZE_MAX || sc > bs || (sc == bs && strcmp(urls[i], urls[best]) < 0)) {
			best = i;
			bs = sc;
		}
	}
	return best;
}

static struct shard *
static_shard(int64_t count, int64_t index)
{
	struct shard_opts o;
	struct shard *s;
	char err[256];

	shard_opts_default(&o);
	o.count_set = o.index_set = true;
	o.count = count;
	o.index = index;
	s = shard_new(&o, err, sizeof(err));
	if (s == NULL)
		fail_msg("shard_new: %s", err);
	return s;
}

/* dyn_shard builds a dynamic shard (prober not started). */
static struct shard *
dyn_shard(const char *peers, const char *self, int64_t r)
{
	struct shard_opts o;
	struct shard *s;
	char err[256];

	shard_opts_default(&o);
	o.peers = peers;
	o.self = self;
	o.replication_factor = r;
	s = shard_new(&o, err, sizeof(err));
	if (s == NULL)
		fail_msg("shard_new: %s", err);
	return s;
}

/* --- static ---------------------------------------------------------------- */

static void
test_static_equals_md5(void **state)
{
	static const int64_t counts[] = { 1, 2, 3, 5, 16 };
	struct shard *s[16];
	size_t c, i;
	int64_t k;
	struct labels *ls;
	struct label l[2] = { { "__address__", NULL }, { "job", "node" } };

	(void)state;
	for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		for (k = 0; k < counts[c]; k++)
			s[k] = static_shard(counts[c], k);
		assert_int_equal(shard_mode(s[0]), SHARD_STATIC);
		for (i = 0; i < NADDR; i++) {
			uint64_t want = md5_hashmod(g_addr[i], (uint64_t)counts[c]);
			int owners = 0;

			for (k = 0; k < counts[c]; k++) {
				bool own = shard_owns_address(s[k], g_addr[i], strlen(g_addr[i]));

				assert_int_equal(own, (uint64_t)k == want);
				owners += own;
			}
			assert_int_equal(owners, 1);
		}
		/* through the scrape hook, with a label set */
		l[0].value = g_addr[7];
		ls = labels_new(l, 2);
		for (k = 0; k < counts[c]; k++)
			assert_int_equal(shard_owns(s[k], ls),
			    (uint64_t)k == md5_hashmod(g_addr[7], (uint64_t)counts[c]));
		labels_free(ls);
		for (k = 0; k < counts[c]; k++)
			shard_free(s[k]);
	}
}

static void
test_none_owns_all(void **state)
{
	struct shard_opts o;
	struct shard *s;
	char err[256];
	const char *n, *v;

	(void)state;
	shard_opts_default(&o);
	s = shard_new(&o, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(shard_mode(s), SHARD_NONE);
	assert_true(shard_owns_address(s, "a:1", 3));
	assert_false(shard_replica_label(s, &n, &v));
	shard_free(s);
}

/* --- rendezvous -------------------------------------------------------------- */

static const char *const g_five[] = {
	"http://10.0.0.1:9090", "http://10.0.0.2:9090", "http://10.0.0.3:9090",
	"http://10.0.0.4:9090", "http://10.0.0.5:9090",
};
#define FIVE_PEERS "http://10.0.0.3:9090, http://10.0.0.1:9090,http://10.0.0.5:9090," \
	"http://10.0.0.2:9090,http://10.0.0.4:9090/"

static void
test_hrw_matches_independent(void **state)
{
	uint64_t seeds[5];
	size_t i, j, out[5], owners;
	struct shard *s[5];
	bool live[5] = { true, true, true, true, true };

	(void)state;
	for (j = 0; j < 5; j++)
		seeds[j] = shard_member_seed(g_five[j]);
	for (j = 0; j < 5; j++)
		s[j] = dyn_shard(FIVE_PEERS, g_five[j], 1);
	/* members are sorted canonical URLs, whatever the flag order */
	for (j = 0; j < 5; j++)
		assert_string_equal(shard_member_url(s[0], j), g_five[j]);
	assert_int_equal(shard_self(s[3]), 3);
	for (i = 0; i < NADDR; i++) {
		size_t want = xxh_owner(g_five, NULL, 5, g_addr[i]);

		assert_int_equal(shard_hrw_owners(seeds, live, 5, g_addr[i],
		    strlen(g_addr[i]), 1, out), 1);
		assert_int_equal(out[0], want);
		owners = 0;
		for (j = 0; j < 5; j++) {
			bool own = shard_owns_address(s[j], g_addr[i], strlen(g_addr[i]));

			assert_int_equal(own, j == want);
			owners += own;
		}
		assert_int_equal(owners, 1);
	}
	for (j = 0; j < 5; j++)
		shard_free(s[j]);
}

static void
test_hrw_only_dead_members_targets_move(void **state)
{
	uint64_t seeds[5];
	bool live[5];
	size_t before[NADDR], cnt[5] = { 0 }, moved_to[5] = { 0 }, i, j, dead, o;

	(void)state;
	for (j = 0; j < 5; j++) {
		seeds[j] = shard_member_seed(g_five[j]);
		live[j] = true;
	}
	for (i = 0; i < NADDR; i++) {
		shard_hrw_owners(seeds, live, 5, g_addr[i], strlen(g_addr[i]), 1, &before[i]);
		cnt[before[i]]++;
	}
	/* balance: expected 300 each (sd ~15) */
	for (j = 0; j < 5; j++)
		assert_in_range(cnt[j], 200, 400);
	for (dead = 0; dead < 5; dead++) {
		memset(moved_to, 0, sizeof(moved_to));
		live[dead] = false;
		for (i = 0; i < NADDR; i++) {
			shard_hrw_owners(seeds, live, 5, g_addr[i], strlen(g_addr[i]), 1, &o);
			assert_int_not_equal(o, dead);
			if (before[i] != dead)
				assert_int_equal(o, before[i]);	/* nothing else moved */
			else
				moved_to[o]++;
			assert_int_equal(o, xxh_owner(g_five, live, 5, g_addr[i]));
		}
		/* the dead member's targets spread over all survivors */
		for (j = 0; j < 5; j++)
			if (j != dead)
				assert_true(moved_to[j] >= cnt[dead] / 10);
		live[dead] = true;
		for (i = 0; i < NADDR; i++) {
			shard_hrw_owners(seeds, live, 5, g_addr[i], strlen(g_addr[i]), 1, &o);
			assert_int_equal(o, before[i]);	/* and they come back */
		}
	}
}

static void
test_hrw_replication(void **state)
{
	uint64_t seeds[5];
	bool live[5];
	size_t out[5], out2[5], i, j, k, n, dead, per[5] = { 0 };
	struct shard *s[5];

	(void)state;
	for (j = 0; j < 5; j++) {
		seeds[j] = shard_member_seed(g_five[j]);
		live[j] = true;
		s[j] = dyn_shard(FIVE_PEERS, g_five[j], 2);
	}
	for (i = 0; i < NADDR; i++) {
		size_t owners = 0;

		n = shard_hrw_owners(seeds, live, 5, g_addr[i], strlen(g_addr[i]), 2, out);
		assert_int_equal(n, 2);
		assert_int_not_equal(out[0], out[1]);
		/* the first owner is the R=1 owner */
		assert_int_equal(out[0], xxh_owner(g_five, NULL, 5, g_addr[i]));
		for (j = 0; j < 5; j++) {
			bool own = shard_owns_address(s[j], g_addr[i], strlen(g_addr[i]));

			assert_int_equal(own, j == out[0] || j == out[1]);
			owners += own;
			per[j] += own;
		}
		assert_int_equal(owners, 2);
		/* one member dead: still 2 owners, surviving owners kept */
		for (dead = 0; dead < 5; dead++) {
			live[dead] = false;
			n = shard_hrw_owners(seeds, live, 5, g_addr[i], strlen(g_addr[i]), 2, out2);
			assert_int_equal(n, 2);
			for (k = 0; k < 2; k++) {
				assert_int_not_equal(out2[k], dead);
				if (out[k] != dead)
					assert_true(out2[0] == out[k] || out2[1] == out[k]);
			}
			live[dead] = true;
		}
	}
	for (j = 0; j < 5; j++)
		assert_in_range(per[j], 450, 750);	/* 2 * 1500 / 5 = 600 */
	/* fewer live members than R: each live one owns everything */
	for (j = 0; j < 5; j++)
		live[j] = j == 2;
	assert_int_equal(shard_hrw_owners(seeds, live, 5, "x:1", 3, 2, out), 1);
	assert_int_equal(out[0], 2);
	for (j = 0; j < 5; j++)
		shard_free(s[j]);
}

/* --- health ------------------------------------------------------------------ */

static void
test_health_state_machine(void **state)
{
	struct member_policy p = { 3, 1000 };
	struct member_health h;
	int64_t t = 0;

	(void)state;
	member_health_init(&h, 0);
	assert_int_equal(h.state, MEMBER_UNKNOWN);
	assert_true(member_health_is_live(&h));
	/* unknown -> alive on the first answer, no hold-down */
	assert_false(member_health_observe(&h, &p, true, t += 100));
	assert_int_equal(h.state, MEMBER_ALIVE);
	/* two failures: suspect, still live; an answer resets */
	assert_false(member_health_observe(&h, &p, false, t += 100));
	assert_false(member_health_observe(&h, &p, false, t += 100));
	assert_int_equal(h.state, MEMBER_SUSPECT);
	assert_int_equal(h.fails, 2);
	assert_false(member_health_observe(&h, &p, true, t += 100));
	assert_int_equal(h.state, MEMBER_ALIVE);
	assert_int_equal(h.fails, 0);
	/* three in a row: dead */
	assert_false(member_health_observe(&h, &p, false, t += 100));
	assert_false(member_health_observe(&h, &p, false, t += 100));
	assert_true(member_health_observe(&h, &p, false, t += 100));
	assert_int_equal(h.state, MEMBER_DEAD);
	assert_false(member_health_is_live(&h));
	/* answers again: returning, not live, until 1000 ms of answers */
	assert_false(member_health_observe(&h, &p, true, t += 100));
	assert_int_equal(h.state, MEMBER_RETURNING);
	assert_false(member_health_observe(&h, &p, true, t += 500));
	assert_int_equal(h.state, MEMBER_RETURNING);
	/* flapping: one failure within the hold-down restarts it */
	assert_false(member_health_observe(&h, &p, false, t += 100));
	assert_int_equal(h.state, MEMBER_DEAD);
	assert_false(member_health_observe(&h, &p, true, t += 100));
	assert_false(member_health_observe(&h, &p, true, t += 999));
	assert_int_equal(h.state, MEMBER_RETURNING);
	assert_true(member_health_observe(&h, &p, true, t += 1));
	assert_int_equal(h.state, MEMBER_ALIVE);
	assert_true(member_health_is_live(&h));

	/* a peer that alternates answer/failure forever never changes liveness
	 * once dead: at most one change per hold-down */
	{
		int changes = 0, i;

		member_health_init(&h, t);
		for (i = 0; i < 3; i++)
			changes += member_health_observe(&h, &p, false, t += 100);
		assert_int_equal(changes, 1);
		for (i = 0; i < 200; i++)
			changes += member_health_observe(&h, &p, i % 2 == 0, t += 100);
		assert_int_equal(changes, 1);
		assert_false(member_health_is_live(&h));
	}
	/* unknown peer that never answers: dead after 3 */
	member_health_init(&h, t);
	assert_false(member_health_observe(&h, &p, false, t += 100));
	assert_false(member_health_observe(&h, &p, false, t += 100));
	assert_true(member_health_observe(&h, &p, false, t += 100));
	/* hold-down 0: back at once */
	p.hold_down_ms = 0;
	assert_true(member_health_observe(&h, &p, true, t += 100));
	assert_int_equal(h.state, MEMBER_ALIVE);
	assert_string_equal(member_state_name(MEMBER_RETURNING), "returning");
}

/* --- configuration ------------------------------------------------------------ */

struct bad_case {
	const char *peers, *self;
	bool count_set, index_set;
	int64_t count, index, r, interval, dead_after, hold;
	const char *label;
	const char *want;	/* substring of the error */
};

static void
test_validation_messages(void **state)
{
	static const struct bad_case cases[] = {
		{ "", "", true, true, 3, 3, 1, 1000, 3, 0, NULL,
		  "--shard.index=3 is out of range for --shard.count=3 (want 0 to 2)" },
		{ "", "", true, true, 0, 0, 1, 1000, 3, 0, NULL,
		  "--shard.count must be at least 1, got 0" },
		{ "", "", true, true, 2, -1, 1, 1000, 3, 0, NULL,
		  "--shard.index must not be negative, got -1" },
		{ "", "", false, true, 1, 2, 1, 1000, 3, 0, NULL,
		  "--shard.index=2 is out of range for --shard.count=1" },
		{ "http://a:1,http://b:1", "http://a:1", true, false, 2, 0, 1, 1000, 3, 0, NULL,
		  "--shard.peers cannot be combined with --shard.count or --shard.index" },
		{ "http://a:1,http://b:1", "http://a:1", false, true, 1, 0, 1, 1000, 3, 0, NULL,
		  "cannot be combined" },
		{ "", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.self needs --shard.peers" },
		{ "http://a:1,http://b:1", "", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.peers needs --shard.self" },
		{ "http://a:1,http://b:1,http://a:1/", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.peers: duplicate member http://a:1 (entries 1 and 3)" },
		{ "http://A:1,http://a:1", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "duplicate member http://a:1" },
		{ "http://a:80,http://a", "http://a", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "duplicate member http://a:80" },
		{ "http://a:1,,http://b:1", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.peers: empty entry (entry 2" },
		{ "http://a:1,http://b:1", "http://c:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.self http://c:1 is not in --shard.peers (http://a:1, http://b:1)" },
		{ "http://a:1,b:1", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.peers: invalid URL \"b:1\": want http://host:port" },
		{ "http://a:1,ftp://b:1", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "scheme \"ftp\" is not http or https" },
		{ "http://a:1,http://b:1?x=1", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "a query string is not allowed" },
		{ "http://a:1,http://u:p@b:1", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "user information is not allowed" },
		{ "http://a:1,http://b:99999", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.peers: invalid URL \"http://b:99999\"" },
		{ "http://a:1,http://b c:1", "http://a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "invalid URL" },
		{ "http://a:1,http://b:1", "a:1", false, false, 1, 0, 1, 1000, 3, 0, NULL,
		  "--shard.self: invalid URL \"a:1\"" },
		{ "http://a:1,http://b:1", "http://a:1", false, false, 1, 0, 3, 1000, 3, 0, NULL,
		  "--shard.replication-factor=3 is larger than the group (2 members in --shard.peers)" },
		{ "http://a:1,http://b:1", "http://a:1", false, false, 1, 0, 0, 1000, 3, 0, NULL,
		  "--shard.replication-factor must be at least 1, got 0" },
		{ "", "", true, true, 2, 0, 2, 1000, 3, 0, NULL,
		  "--shard.replication-factor=2 needs dynamic sharding" },
		{ "http://a:1,http://b:1", "http://a:1", false, false, 1, 0, 2, 1000, 3, 0, "1x",
		  "--shard.replica-label \"1x\" is not a valid label name" },
		{ "http://a:1,http://b:1", "http://a:1", false, false, 1, 0, 2, 1000, 3, 0, "__x",
		  "is reserved" },
		{ "http://a:1,http://b:1", "http://a:1", false, false, 1, 0, 1, 0, 3, 0, NULL,
		  "--shard.probe-interval must be more than 0s" },
		{ "http://a:1,http://b:1", "http://a:1", false, false, 1, 0, 1, 1000, 0, 0, NULL,
		  "--shard.dead-after must be from 1 to 1000" },
		{ "http://a:1,http://b:1", "http://a:1", false, false, 1, 0, 1, 1000, 3, -1, NULL,
		  "--shard.hold-down must not be negative" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		struct shard_opts o;
		char err[512] = "";
		struct shard *s;

		shard_opts_default(&o);
		o.peers = c->peers;
		o.self = c->self;
		o.count_set = c->count_set;
		o.index_set = c->index_set;
		o.count = c->count;
		o.index = c->index;
		o.replication_factor = c->r;
		o.probe_interval_ms = c->interval;
		o.dead_after = c->dead_after;
		o.hold_down_ms = c->hold;
		if (c->label != NULL)
			o.replica_label = c->label;
		s = shard_new(&o, err, sizeof(err));
		if (s != NULL || strstr(err, c->want) == NULL) {
			shard_free(s);
			fail_msg("case %zu: want error containing \"%s\", got \"%s\"", i, c->want, err);
		}
	}
}

static void
test_flags_to_opts(void **state)
{
	struct flag flags[] = {
		{ "shard.count", FLAG_INT, "1", "", NULL, false },
		{ "shard.index", FLAG_INT, "0", "", NULL, false },
		{ "shard.peers", FLAG_STRING, "", "", NULL, false },
		{ "shard.self", FLAG_STRING, "", "", NULL, false },
		{ "shard.replication-factor", FLAG_INT, "1", "", NULL, false },
		{ "shard.hold-down", FLAG_DURATION, "30s", "", NULL, false },
	};
	char *argv[] = { "x", "--shard.count=4", "--shard.index", "3", "--shard.hold-down=5s", NULL };
	size_t n = sizeof(flags) / sizeof(flags[0]), nargs;
	struct shard_opts o;
	char err[256];

	(void)state;
	assert_int_equal(flag_parse(flags, n, 5, argv, NULL, 0, &nargs, err, sizeof(err)), FLAG_OK);
	shard_opts_from_flags(&o, flags, n);
	assert_true(o.count_set);
	assert_true(o.index_set);
	assert_int_equal(o.count, 4);
	assert_int_equal(o.index, 3);
	assert_int_equal(o.hold_down_ms, 5000);
	/* not in the table: the default */
	assert_int_equal(o.dead_after, SHARD_DEFAULT_DEAD_AFTER);
	assert_int_equal(o.probe_interval_ms, SHARD_DEFAULT_PROBE_INTERVAL_MS);
	assert_string_equal(o.replica_label, "leaf_replica");
	flag_free(flags, n);
}

static void
test_canonical_urls(void **state)
{
	static const char *const ok[][2] = {
		{ "HTTP://Leaf-A.Example:9090/", "http://leaf-a.example:9090" },
		{ "http://a", "http://a:80" },
		{ "https://a/prefix//", "https://a:443/prefix" },
		{ "http://[::1]:9091", "http://[::1]:9091" },
		{ "http://127.0.0.1:9091/", "http://127.0.0.1:9091" },
	};
	static const char *const bad[] = {
		"", "a:9090", "ftp://a:1", "http://a:1#x", "http://:80", "http://a:1/?q",
		"://a", "http://", "http://a:-1",
	};
	char err[256], *u;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		u = shard_canonical_url(ok[i][0], err, sizeof(err));
		if (u == NULL)
			fail_msg("%s: %s", ok[i][0], err);
		assert_string_equal(u, ok[i][1]);
		mem_free(u);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		u = shard_canonical_url(bad[i], err, sizeof(err));
		if (u != NULL) {
			mem_free(u);
			fail_msg("\"%s\" accepted", bad[i]);
		}
		assert_true(err[0] != '\0');
	}
}

static void
test_fingerprint_and_labels(void **state)
{
	struct shard *a, *b, *c, *d, *s0, *s1;
	const char *n, *v;
	struct labels *ext, *out;
	struct label l[] = { { "site", "a" } }, l2[] = { { "leaf_replica", "mine" } };
	char fp[24], err[128];

	(void)state;
	a = dyn_shard("http://a:1,http://b:1,http://c:1", "http://a:1", 2);
	b = dyn_shard("http://c:1, http://b:1/, HTTP://A:1", "http://b:1", 2);
	c = dyn_shard("http://a:1,http://b:1,http://c:1", "http://a:1", 1);
	d = dyn_shard("http://a:1,http://b:1", "http://a:1", 2);
	/* same group in any order and spelling: same fingerprint; differing
	 * settings: different */
	assert_int_equal(strlen(shard_fingerprint(a)), 16);
	assert_string_equal(shard_fingerprint(a), shard_fingerprint(b));
	assert_string_not_equal(shard_fingerprint(a), shard_fingerprint(c));
	assert_string_not_equal(shard_fingerprint(a), shard_fingerprint(d));
	/* static: the index differs by design, the count must agree */
	s0 = static_shard(3, 0);
	s1 = static_shard(3, 2);
	assert_string_equal(shard_fingerprint(s0), shard_fingerprint(s1));
	shard_free(s1);
	s1 = static_shard(4, 0);
	assert_string_not_equal(shard_fingerprint(s0), shard_fingerprint(s1));
	assert_string_not_equal(shard_fingerprint(s0), shard_fingerprint(c));

	/* replica label: only with R > 1; the config's own value wins */
	assert_true(shard_replica_label(a, &n, &v));
	assert_string_equal(n, "leaf_replica");
	assert_string_equal(v, "a:1");
	assert_false(shard_replica_label(c, &n, &v));
	ext = labels_new(l, 1);
	out = shard_external_labels(a, ext);
	assert_string_equal(labels_get(out, "leaf_replica"), "a:1");
	assert_string_equal(labels_get(out, "site"), "a");
	labels_free(out);
	out = shard_external_labels(c, ext);
	assert_null(labels_get(out, "leaf_replica"));
	labels_free(out);
	labels_free(ext);
	ext = labels_new(l2, 1);
	out = shard_external_labels(b, ext);
	assert_string_equal(labels_get(out, "leaf_replica"), "mine");
	labels_free(out);
	labels_free(ext);

	/* reading a peer's fingerprint */
	assert_int_equal(members_parse_fingerprint("{\"status\":\"success\",\"data\":{\"fingerprint\":\"00ff12\",\"x\":1}}",
	    58, fp, err, sizeof(err)), 0);
	assert_string_equal(fp, "00ff12");
	assert_int_equal(members_parse_fingerprint("{\"fingerprint\" : \"abc\"}", 23, fp, err, sizeof(err)), 0);
	assert_string_equal(fp, "abc");
	assert_int_equal(members_parse_fingerprint("<html>nope</html>", 17, fp, err, sizeof(err)), -1);
	assert_string_equal(err, "no \"fingerprint\" in the answer");
	assert_int_equal(members_parse_fingerprint("{\"fingerprint\":\"XYZ\"}", 21, fp, err, sizeof(err)), -1);
	assert_int_equal(members_parse_fingerprint("{\"fingerprint\":\"abc", 19, fp, err, sizeof(err)), -1);
	assert_int_equal(members_parse_fingerprint("{\"fingerprint\":12}", 18, fp, err, sizeof(err)), -1);
	assert_int_equal(members_parse_fingerprint("\"fingerprint\"", 13, fp, err, sizeof(err)), -1);
	assert_int_equal(members_parse_fingerprint("{\"fingerprint\":\"0123456789abcdef0123456789\"}", 44,
	    fp, err, sizeof(err)), -1);
	assert_int_equal(members_parse_fingerprint("", 0, fp, err, sizeof(err)), -1);

	shard_free(a);
	shard_free(b);
	shard_free(c);
	shard_free(d);
	shard_free(s0);
	shard_free(s1);
}

/* --- prober against real servers --------------------------------------------- */

/* A fake peer: /-/ready answers 200 or 503, /api/v1/shard a body we pick. */
struct fake_peer {
	struct http_server *srv;
	int port;
	char url[64];
	atomic_bool ready;
	char shard_body[256];
};

static int
fake_ready(struct http_request *req, void *arg)
{
	struct fake_peer *p = arg;

	if (atomic_load(&p->ready))
		return http_respond_text(req, 200, "Strata is Ready.\n");
	return http_respond_text(req, 503, "Service Unavailable\n");
}

static int
fake_shard(struct http_request *req, void *arg)
{
	struct fake_peer *p = arg;

	return http_respond_data(req, 200, "application/json", p->shard_body,
	    strlen(p->shard_body));
}

static void
fake_peer_start(struct fake_peer *p, int port, const char *body)
{
	char addr[64], err[256];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	p->srv = http_server_new(addr, NULL, err, sizeof(err));
	if (p->srv == NULL)
		fail_msg("http_server_new %s: %s", addr, err);
	p->port = http_server_port(p->srv);
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
	atomic_store(&p->ready, true);
	snprintf(p->shard_body, sizeof(p->shard_body), "%s", body);
	assert_int_equal(http_server_route(p->srv, HTTP_GET, "/-/ready", 0, fake_ready, p), 0);
	assert_int_equal(http_server_route(p->srv, HTTP_GET, "/api/v1/shard", 0, fake_shard, p), 0);
	assert_int_equal(http_server_start(p->srv, err, sizeof(err)), 0);
}

/* A raw TCP peer: accepts and answers garbage (not HTTP), or listens
 * without ever accepting (a hung peer). */
struct raw_peer {
	int fd, port;
	bool garbage;
	atomic_bool stop;
	pthread_t th;
	char url[64];
};

static void *
raw_peer_run(void *arg)
{
	struct raw_peer *p = arg;
	static const char junk[] = "\x01\x02 NOT HTTP AT ALL \xff\xfe\r\n\r\n{{{{";

	while (!atomic_load(&p->stop)) {
		struct pollfd pf = { p->fd, POLLIN, 0 };
		int c;

		if (poll(&pf, 1, 50) <= 0)
			continue;
		c = accept(p->fd, NULL, NULL);
		if (c < 0)
			continue;
		(void)!write(c, junk, sizeof(junk) - 1);
		close(c);
	}
	return NULL;
}

static void
raw_peer_start(struct raw_peer *p, bool garbage)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(p, 0, sizeof(*p));
	p->garbage = garbage;
	p->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->fd, 64), 0);
	assert_int_equal(getsockname(p->fd, (struct sockaddr *)&sa, &sl), 0);
	p->port = ntohs(sa.sin_port);
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
	if (garbage)
		assert_int_equal(pthread_create(&p->th, NULL, raw_peer_run, p), 0);
}

static void
raw_peer_stop(struct raw_peer *p)
{
	atomic_store(&p->stop, true);
	if (p->garbage)
		pthread_join(p->th, NULL);
	close(p->fd);
}

static atomic_int g_changes;

static void
count_change(void *arg, const bool *live, size_t n)
{
	(void)arg;
	(void)live;
	(void)n;
	atomic_fetch_add(&g_changes, 1);
}

static struct member_info *
info_of(struct members *m, struct member_info *mi, const char *url)
{
	size_t i, n = members_count(m);

	members_snapshot(m, mi);
	for (i = 0; i < n; i++)
		if (strcmp(mi[i].url, url) == 0)
			return &mi[i];
	fail_msg("no member %s", url);
	return NULL;
}

/* wait_state waits up to limit_ms for url to reach state; returns the ms
 * it took, or -1. */
static int64_t
wait_state(struct members *m, const char *url, enum member_state st, int64_t limit_ms)
{
	struct member_info mi[8];
	int64_t t0 = mono_ms();

	while (mono_ms() - t0 < limit_ms) {
		if (info_of(m, mi, url)->state == st)
			return mono_ms() - t0;
		usleep(10000);
	}
	return -1;
}

#define FP_OURS "1111222233334444"

static void
test_prober_real_peers(void **state)
{
	struct fake_peer good, wrongfp, badjson;
	struct raw_peer garbage, hung;
	const char *urls[6];
	struct members_opts mo;
	struct members *m;
	struct member_info mi[6], *x;
	char err[256];
	bool live[6];
	int64_t t, t_dead, t_back;
	int port;

	(void)state;
	memset(&good, 0, sizeof(good));
	memset(&wrongfp, 0, sizeof(wrongfp));
	memset(&badjson, 0, sizeof(badjson));
	fake_peer_start(&good, 0, "{\"status\":\"success\",\"data\":{\"fingerprint\":\"" FP_OURS "\"}}");
	fake_peer_start(&wrongfp, 0, "{\"status\":\"success\",\"data\":{\"fingerprint\":\"ffff000011112222\"}}");
	fake_peer_start(&badjson, 0, "<html>404 page not found</html>");
	raw_peer_start(&garbage, true);
	raw_peer_start(&hung, false);
	urls[0] = "http://127.0.0.1:1";	/* self: never probed */
	urls[1] = good.url;
	urls[2] = wrongfp.url;
	urls[3] = badjson.url;
	urls[4] = garbage.url;
	urls[5] = hung.url;

	memset(&mo, 0, sizeof(mo));
	mo.probe_interval_ms = 100;
	mo.probe_timeout_ms = 100;
	mo.policy.dead_after = 2;
	mo.policy.hold_down_ms = 400;
	mo.fingerprint_every = 2;
	mo.fingerprint = FP_OURS;
	m = members_new(urls, 6, 0, &mo);
	atomic_store(&g_changes, 0);
	members_on_change(m, count_change, NULL);
	assert_int_equal(members_live(m, live), 6);	/* unknown counts as live */
	assert_int_equal(members_start(m, err, sizeof(err)), 0);

	/* garbage and hung peers are dead after 2 rounds, the rest alive */
	assert_true(wait_state(m, garbage.url, MEMBER_DEAD, 3000) >= 0);
	assert_true(wait_state(m, hung.url, MEMBER_DEAD, 3000) >= 0);
	assert_true(wait_state(m, good.url, MEMBER_ALIVE, 3000) >= 0);
	t = mono_ms();
	while (members_rounds(m) < 4 && mono_ms() - t < 3000)
		usleep(10000);
	assert_int_equal(members_live(m, live), 4);
	assert_true(live[0] && live[1] && live[2] && live[3] && !live[4] && !live[5]);
	assert_true(atomic_load(&g_changes) >= 1);

	x = info_of(m, mi, garbage.url);
	assert_true(x->last_error[0] != '\0');
	assert_true(x->failures >= 2);
	printf("# garbage peer: %s\n", x->last_error);
	x = info_of(m, mi, hung.url);
	assert_true(x->last_error[0] != '\0');
	assert_true(x->last_probe_s < 1.0);	/* bounded by the timeout */
	printf("# hung peer: %s (%.3f s)\n", x->last_error, x->last_probe_s);
	x = info_of(m, mi, good.url);
	assert_string_equal(x->last_error, "");
	assert_string_equal(x->fingerprint, FP_OURS);
	assert_int_equal(x->fingerprint_match, 1);
	x = info_of(m, mi, wrongfp.url);
	assert_int_equal(x->fingerprint_match, 0);
	assert_true(x->live);
	x = info_of(m, mi, badjson.url);
	assert_true(x->live);
	assert_int_equal(x->fingerprint_match, -1);
	assert_string_equal(x->fingerprint_error, "no \"fingerprint\" in the answer");
	assert_int_equal(members_mismatches(m), 1);

	/* the good peer goes away: dead within dead_after rounds */
	port = good.port;
	atomic_store(&g_changes, 0);
	t = mono_ms();
	http_server_free(good.srv);
	good.srv = NULL;
	assert_true(wait_state(m, good.url, MEMBER_DEAD, 3000) >= 0);
	t_dead = mono_ms() - t;
	assert_int_equal(atomic_load(&g_changes), 1);
	members_live(m, live);
	assert_false(live[1]);
	/* ... comes back on the same port: returning, then alive after the
	 * hold-down (400 ms of answers) */
	fake_peer_start(&good, port, "{\"status\":\"success\",\"data\":{\"fingerprint\":\"" FP_OURS "\"}}");
	t = mono_ms();
	assert_true(wait_state(m, good.url, MEMBER_RETURNING, 3000) >= 0);
	members_live(m, live);
	assert_false(live[1]);
	assert_true(wait_state(m, good.url, MEMBER_ALIVE, 3000) >= 0);
	t_back = mono_ms() - t;
	assert_int_equal(atomic_load(&g_changes), 2);
	printf("# probe 100 ms, dead after 2: death seen in %lld ms, return (hold-down 400 ms) in %lld ms\n",
	    (long long)t_dead, (long long)t_back);
	assert_true(t_dead <= 1500);
	assert_true(t_back >= 350 && t_back <= 2500);

	/* not ready (503) counts as a failure too */
	atomic_store(&wrongfp.ready, false);
	assert_true(wait_state(m, wrongfp.url, MEMBER_DEAD, 3000) >= 0);
	x = info_of(m, mi, wrongfp.url);
	assert_string_equal(x->last_error, "server returned HTTP status 503");

	t = mono_ms();
	members_stop(m);
	assert_true(mono_ms() - t < 1000);
	members_stop(m);	/* idempotent */
	members_free(m);
	http_server_free(good.srv);
	http_server_free(wrongfp.srv);
	http_server_free(badjson.srv);
	raw_peer_stop(&garbage);
	raw_peer_stop(&hung);
}

/* A peer goes down, then its /-/ready flips between 200 and 503 every
 * 250 ms: it is declared dead once and stays out of the live set while it
 * flaps (the 400 ms hold-down never completes), then returns once after it
 * settles: two changes of the live set in all. */
struct flapper {
	struct fake_peer *p;
	atomic_bool stop;
};

static void *
flap_run(void *arg)
{
	struct flapper *f = arg;

	while (!atomic_load(&f->stop)) {
		atomic_store(&f->p->ready, !atomic_load(&f->p->ready));
		usleep(250000);
	}
	return NULL;
}

static void
test_prober_flapping_peer(void **state)
{
	struct fake_peer peer;
	struct flapper f;
	pthread_t th;
	const char *urls[2];
	struct members_opts mo;
	struct members *m;
	char err[256];
	int changes_flapping;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	fake_peer_start(&peer, 0, "{\"data\":{\"fingerprint\":\"" FP_OURS "\"}}");
	urls[0] = "http://127.0.0.1:1";
	urls[1] = peer.url;
	memset(&mo, 0, sizeof(mo));
	mo.probe_interval_ms = 100;
	mo.probe_timeout_ms = 100;
	mo.policy.dead_after = 2;
	mo.policy.hold_down_ms = 400;
	mo.fingerprint_every = 5;
	mo.fingerprint = FP_OURS;
	m = members_new(urls, 2, 0, &mo);
	atomic_store(&g_changes, 0);
	members_on_change(m, count_change, NULL);
	assert_int_equal(members_start(m, err, sizeof(err)), 0);
	assert_true(wait_state(m, peer.url, MEMBER_ALIVE, 3000) >= 0);

	/* it goes down: dead (one change) */
	atomic_store(&peer.ready, false);
	assert_true(wait_state(m, peer.url, MEMBER_DEAD, 3000) >= 0);
	assert_int_equal(atomic_load(&g_changes), 1);
	/* then flaps: no 250 ms answering phase completes the 400 ms
	 * hold-down, so it is never live again while it flaps */
	f.p = &peer;
	atomic_store(&f.stop, false);
	assert_int_equal(pthread_create(&th, NULL, flap_run, &f), 0);
	{
		int64_t t0 = mono_ms();
		struct member_info mi[2];
		bool seen_returning = false;

		while (mono_ms() - t0 < 1500) {
			const struct member_info *x = info_of(m, mi, peer.url);

			assert_false(x->live);
			seen_returning |= x->state == MEMBER_RETURNING;
			usleep(20000);
		}
		assert_true(seen_returning);	/* it did answer in between */
	}
	atomic_store(&f.stop, true);
	pthread_join(th, NULL);
	changes_flapping = atomic_load(&g_changes);
	printf("# down, then flapping every 250 ms for 1.5 s: %d change(s) of the live set\n",
	    changes_flapping);
	assert_int_equal(changes_flapping, 1);

	atomic_store(&peer.ready, true);
	assert_true(wait_state(m, peer.url, MEMBER_ALIVE, 3000) >= 0);
	assert_int_equal(atomic_load(&g_changes), 2);
	members_free(m);
	http_server_free(peer.srv);
}

static size_t
http_get_write(char *data, size_t size, size_t nmemb, void *arg)
{
	strbuf_append(arg, data, size * nmemb);
	return size * nmemb;
}

/* http_get fetches url into body and returns the status code (0 on a
 * transport error). */
static long
http_get(const char *url, struct strbuf *body)
{
	CURL *c = curl_easy_init();
	long code = 0;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_get_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	return code;
}

/* --- a group of three real shards in this process ------------------------------ */

struct leaf {
	struct http_server *srv;
	struct shard *s;
	char url[64];
	atomic_bool ready;
	atomic_int changes;
};

static int
leaf_ready(struct http_request *req, void *arg)
{
	struct leaf *l = arg;

	if (!atomic_load(&l->ready))
		return http_respond_text(req, 503, "not ready\n");
	return http_respond_text(req, 200, "ready\n");
}

static void
leaf_changed(void *arg)
{
	struct leaf *l = arg;

	atomic_fetch_add(&l->changes, 1);
}

static void
leaf_targets(void *arg, shard_emit_fn emit, void *ctx)
{
	size_t i;

	(void)arg;
	for (i = 0; i < 300; i++)
		emit(ctx, g_addr[i], strlen(g_addr[i]));
}

/* leaf_owners counts, for each of the first 300 addresses, the leaves
 * (among those with s) owning it, and records leaf 0..2's decision. */
static void
leaf_owners(struct leaf *lv, size_t n, int *cnt, unsigned char *who)
{
	size_t i, j;

	for (i = 0; i < 300; i++) {
		cnt[i] = 0;
		who[i] = 0;
		for (j = 0; j < n; j++) {
			if (lv[j].s == NULL)
				continue;
			if (shard_owns_address(lv[j].s, g_addr[i], strlen(g_addr[i]))) {
				cnt[i]++;
				who[i] |= (unsigned char)(1u << j);
			}
		}
	}
}

static void
test_group_failover_and_api(void **state)
{
	struct leaf lv[3];
	struct strbuf peers = STRBUF_INIT, sb = STRBUF_INIT;
	struct shard_opts o;
	char err[256];
	int cnt[300];
	unsigned char who0[300], who1[300];
	bool live[3];
	size_t i, j, dead = 1;
	int64_t t;
	struct json_writer w;
	struct api_metrics *am;

	(void)state;
	memset(lv, 0, sizeof(lv));
	for (j = 0; j < 3; j++) {
		lv[j].srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
		assert_non_null(lv[j].srv);
		snprintf(lv[j].url, sizeof(lv[j].url), "http://127.0.0.1:%d",
		    http_server_port(lv[j].srv));
		strbuf_printf(&peers, "%s%s", j > 0 ? "," : "", lv[j].url);
		atomic_store(&lv[j].ready, true);
	}
	for (j = 0; j < 3; j++) {
		shard_opts_default(&o);
		o.peers = peers.buf;
		o.self = lv[j].url;
		o.probe_interval_ms = 100;
		o.dead_after = 2;
		o.hold_down_ms = 300;
		lv[j].s = shard_new(&o, err, sizeof(err));
		if (lv[j].s == NULL)
			fail_msg("%s", err);
		shard_on_change(lv[j].s, leaf_changed, &lv[j]);
		shard_set_targets(lv[j].s, leaf_targets, NULL);
		assert_int_equal(http_server_route(lv[j].srv, HTTP_GET, "/-/ready", 0, leaf_ready, &lv[j]), 0);
		assert_int_equal(shard_api_route(lv[j].s, lv[j].srv), 0);
		assert_int_equal(http_server_start(lv[j].srv, err, sizeof(err)), 0);
	}
	for (j = 0; j < 3; j++)
		assert_int_equal(shard_start(lv[j].s, err, sizeof(err)), 0);

	/* everyone alive and agreeing: each target owned once */
	t = mono_ms();
	while (mono_ms() - t < 3000) {
		size_t ok = 0;

		for (j = 0; j < 3; j++) {
			struct member_info mi[3];

			members_snapshot(shard_members(lv[j].s), mi);
			for (i = 0; i < 3; i++)
				ok += mi[i].state == MEMBER_ALIVE && mi[i].fingerprint_match == 1;
		}
		if (ok == 9)
			break;
		usleep(20000);
	}
	for (j = 0; j < 3; j++) {
		assert_int_equal(members_mismatches(shard_members(lv[j].s)), 0);
		assert_int_equal(shard_live(lv[j].s, live), 3);
	}
	leaf_owners(lv, 3, cnt, who0);
	for (i = 0; i < 300; i++)
		assert_int_equal(cnt[i], 1);

	/* /api/v1/shard through HTTP, fingerprint first */
	{
		struct strbuf body = STRBUF_INIT;
		char url[128];

		snprintf(url, sizeof(url), "%s/api/v1/shard", lv[0].url);
		assert_int_equal(http_get(url, &body), 200);
		strbuf_reset(&sb);
		strbuf_printf(&sb, "{\"status\":\"success\",\"data\":{\"fingerprint\":\"%s\",\"mode\":\"dynamic\"",
		    shard_fingerprint(lv[0].s));
		assert_true(body.len > sb.len);
		assert_memory_equal(body.buf, sb.buf, sb.len);
		assert_non_null(strstr(body.buf, "\"membersAlive\":3"));
		assert_non_null(strstr(body.buf, "\"targets\":300"));
		assert_non_null(strstr(body.buf, "\"degradedReasons\":[]"));
		assert_non_null(strstr(body.buf, "\"fingerprintMatch\":true"));
		strbuf_free(&body);
	}

	/* leaf 1 dies (its server stops): its targets, and only those, move */
	atomic_store(&lv[dead].ready, false);
	http_server_stop(lv[dead].srv);
	shard_stop(lv[dead].s);
	t = mono_ms();
	while (mono_ms() - t < 3000 &&
	    (shard_live(lv[0].s, live) != 2 || shard_live(lv[2].s, live) != 2))
		usleep(10000);
	printf("# 3 shards, probe 100 ms, dead after 2: failover seen after %lld ms\n",
	    (long long)(mono_ms() - t));
	assert_int_equal(shard_live(lv[0].s, live), 2);
	assert_int_equal(shard_live(lv[2].s, live), 2);
	assert_true(atomic_load(&lv[0].changes) >= 1);
	{
		struct shard *keep = lv[dead].s;

		lv[dead].s = NULL;	/* leave it out of the count */
		leaf_owners(lv, 3, cnt, who1);
		lv[dead].s = keep;
	}
	for (i = 0; i < 300; i++) {
		assert_int_equal(cnt[i], 1);
		if (!(who0[i] & (1u << dead)))
			assert_int_equal(who1[i], who0[i]);
	}
	/* the report says degraded, the metrics say 2 alive */
	strbuf_reset(&sb);
	json_init(&w, &sb);
	shard_api_write(lv[0].s, &w);
	assert_true(json_ok(&w));
	assert_non_null(strstr(sb.buf, "\"degradedReasons\":[\"1 of 3 members not live\"]"));
	assert_non_null(strstr(sb.buf, "\"state\":\"dead\""));
	am = api_metrics_new();
	api_metrics_add(am, shard_api_metrics, lv[0].s);
	strbuf_reset(&sb);
	api_metrics_write(am, &sb);
	assert_non_null(strstr(sb.buf, "\nstrata_shard_members_alive 2\n"));
	assert_non_null(strstr(sb.buf, "\nstrata_shard_members 3\n"));
	assert_non_null(strstr(sb.buf, "\nstrata_shard_targets 300\n"));
	assert_non_null(strstr(sb.buf, "\nstrata_shard_config_mismatch 0\n"));
	assert_non_null(strstr(sb.buf, "# TYPE strata_shard_ownership_changes_total counter\n"));
	assert_non_null(strstr(sb.buf, "# TYPE strata_shard_targets_owned gauge\n"));
	api_metrics_free(am);

	/* it comes back (a new server on the same port): after the hold-down
	 * the assignment is the original one again */
	{
		const char *colon = strrchr(lv[dead].url, ':');
		char addr[64];

		http_server_free(lv[dead].srv);
		shard_free(lv[dead].s);
		snprintf(addr, sizeof(addr), "127.0.0.1:%s", colon + 1);
		lv[dead].srv = http_server_new(addr, NULL, err, sizeof(err));
		assert_non_null(lv[dead].srv);
		shard_opts_default(&o);
		o.peers = peers.buf;
		o.self = lv[dead].url;
		o.probe_interval_ms = 100;
		o.dead_after = 2;
		o.hold_down_ms = 300;
		lv[dead].s = shard_new(&o, err, sizeof(err));
		assert_non_null(lv[dead].s);
		atomic_store(&lv[dead].ready, true);
		assert_int_equal(http_server_route(lv[dead].srv, HTTP_GET, "/-/ready", 0, leaf_ready, &lv[dead]), 0);
		assert_int_equal(shard_api_route(lv[dead].s, lv[dead].srv), 0);
		assert_int_equal(http_server_start(lv[dead].srv, err, sizeof(err)), 0);
		assert_int_equal(shard_start(lv[dead].s, err, sizeof(err)), 0);
	}
	t = mono_ms();
	while (mono_ms() - t < 4000 &&
	    (shard_live(lv[0].s, live) != 3 || shard_live(lv[2].s, live) != 3))
		usleep(10000);
	printf("# return seen after %lld ms (hold-down 300 ms)\n", (long long)(mono_ms() - t));
	assert_int_equal(shard_live(lv[0].s, live), 3);
	leaf_owners(lv, 3, cnt, who1);
	for (i = 0; i < 300; i++) {
		assert_int_equal(cnt[i], 1);
		assert_int_equal(who1[i], who0[i]);
	}

	for (j = 0; j < 3; j++) {
		http_server_free(lv[j].srv);
		shard_free(lv[j].s);
	}
	strbuf_free(&peers);
	strbuf_free(&sb);
}

static void
test_static_api(void **state)
{
	struct shard *s = static_shard(3, 1);
	struct strbuf sb = STRBUF_INIT;
	struct json_writer w;
	size_t i, per[3] = { 0 };
	char want[64];
	struct api_metrics *am;

	(void)state;
	json_init(&w, &sb);
	shard_api_write(s, &w);	/* no targets source: counts are null */
	assert_non_null(strstr(sb.buf, "\"targetsOwned\":null"));
	shard_set_targets(s, leaf_targets, NULL);
	strbuf_reset(&sb);
	json_init(&w, &sb);
	shard_api_write(s, &w);
	assert_true(json_ok(&w));
	assert_non_null(strstr(sb.buf, "\"mode\":\"static\""));
	assert_non_null(strstr(sb.buf, "\"shardCount\":3,\"shardIndex\":1"));
	for (i = 0; i < 300; i++)
		per[md5_hashmod(g_addr[i], 3)]++;
	for (i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "{\"index\":%zu,\"self\":%s,\"targetsOwned\":%zu}",
		    i, i == 1 ? "true" : "false", per[i]);
		assert_non_null(strstr(sb.buf, want));
	}
	am = api_metrics_new();
	api_metrics_add(am, shard_api_metrics, s);
	strbuf_reset(&sb);
	api_metrics_write(am, &sb);
	snprintf(want, sizeof(want), "\nstrata_shard_targets_owned %zu\n", per[1]);
	assert_non_null(strstr(sb.buf, want));
	assert_non_null(strstr(sb.buf, "strata_shard_info{mode=\"static\",fingerprint=\""));
	assert_null(strstr(sb.buf, "strata_shard_members_alive"));
	api_metrics_free(am);
	strbuf_free(&sb);
	shard_free(s);
}

/* --- the leaf's targets source over a real scrape manager ------------------------ */

static void
test_leaf_source(void **state)
{
	static const char yml[] =
	    "scrape_configs:\n"
	    "  - job_name: a\n"
	    "    scrape_interval: 1h\n"
	    "    static_configs:\n"
	    "      - targets: ['127.0.0.1:1', '127.0.0.1:2', 'drop.me:3', 'rewrite:4']\n"
	    "    relabel_configs:\n"
	    "      - source_labels: [__address__]\n"
	    "        regex: drop.*\n"
	    "        action: drop\n"
	    "      - source_labels: [__address__]\n"
	    "        regex: rewrite:4\n"
	    "        target_label: __address__\n"
	    "        replacement: rewritten:5\n"
	    "  - job_name: b\n"
	    "    scrape_interval: 1h\n"
	    "    static_configs:\n"
	    "      - targets: ['127.0.0.1:1', 'x:9']\n";
	static const char *const kept[] = { "127.0.0.1:1", "127.0.0.1:2", "rewritten:5", "127.0.0.1:1", "x:9" };
	struct shard *s = static_shard(2, 0);
	struct tsdb_head *h;
	struct scrape_manager *m;
	struct scrape_opts so;
	struct cfg *cfg;
	struct scrape_target_info *v;
	char err[512];
	uint64_t total, owned, per[2], want[2] = { 0, 0 };
	size_t i, n, active = 0;

	(void)state;
	cfg = cfg_load_string(yml, sizeof(yml) - 1, "test.yml", NULL, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	h = tsdb_head_new(NULL, err, sizeof(err));
	assert_non_null(h);
	memset(&so, 0, sizeof(so));
	so.head = h;
	so.owns = shard_owns;
	so.owns_arg = s;
	so.workers = 1;
	m = scrape_manager_new(&so, err, sizeof(err));
	assert_non_null(m);
	shard_set_targets(s, shard_leaf_targets, m);
	/* no configuration yet: nothing to count */
	assert_int_equal(shard_count_targets(s, &total, &owned, per), 0);
	assert_int_equal(total, 0);

	assert_int_equal(scrape_manager_apply(m, cfg, err, sizeof(err)), 0);
	for (i = 0; i < 5; i++)
		want[md5_hashmod(kept[i], 2)]++;
	memset(per, 0, sizeof(per));
	assert_int_equal(shard_count_targets(s, &total, &owned, per), 0);
	assert_int_equal(total, 5);	/* drop.me:3 is not a target */
	assert_int_equal(owned, want[0]);
	assert_int_equal(per[0], want[0]);
	assert_int_equal(per[1], want[1]);
	/* and the scrape manager agrees on what this leaf owns */
	assert_int_equal(scrape_manager_targets(m, &v, &n), 0);
	for (i = 0; i < n; i++)
		active += v[i].active;
	assert_int_equal(active, want[0]);
	scrape_target_info_free(v, n);

	scrape_manager_free(m);
	tsdb_head_free(h);
	cfg_free(cfg);
	shard_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_equals_md5),
		cmocka_unit_test(test_none_owns_all),
		cmocka_unit_test(test_hrw_matches_independent),
		cmocka_unit_test(test_hrw_only_dead_members_targets_move),
		cmocka_unit_test(test_hrw_replication),
		cmocka_unit_test(test_health_state_machine),
		cmocka_unit_test(test_validation_messages),
		cmocka_unit_test(test_flags_to_opts),
		cmocka_unit_test(test_canonical_urls),
		cmocka_unit_test(test_fingerprint_and_labels),
		cmocka_unit_test(test_static_api),
		cmocka_unit_test(test_leaf_source),
		cmocka_unit_test(test_prober_real_peers),
		cmocka_unit_test(test_prober_flapping_peer),
		cmocka_unit_test(test_group_failover_and_api),
	};
	int rc;

	make_addresses();
	{
		char err[128];

		(void)log_setup("warn", "logfmt", err, sizeof(err));
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
