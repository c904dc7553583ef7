/* shard/members.h - membership of a dynamic shard group: peer probing, hold-down.
 *
 * A struct members knows the leaves of one group (their canonical URLs, in
 * the group's sorted order) and which of them is this process. A prober
 * thread (libcurl multi, one round about every probe interval) asks every
 * other member's GET <url>/-/ready and, every few rounds, its
 * GET <url>/api/v1/shard to read the peer's shard fingerprint. Each answer
 * goes through the per-member health state machine below; whenever the set
 * of live members changes, the change callback runs on the prober thread
 * with the new set.
 *
 * Health (struct member_health, pure functions, any thread with its own
 * copy): a member starts UNKNOWN and counts as live; any successful probe
 * makes an UNKNOWN or SUSPECT member ALIVE; a failure makes it SUSPECT
 * (still live) and dead_after consecutive failures make it DEAD; a DEAD
 * member that answers becomes RETURNING (not live) and only after it has
 * answered without a single failure for hold_down is it ALIVE again. So a
 * flapping peer changes the live set at most once per hold-down period.
 * Self is never probed and always live.
 *
 * Threads: the prober thread owns the curl handles; every field the
 * snapshot reports is guarded by the members mutex. Probes are bounded by
 * probe_timeout (connect and transfer) and bodies by a few KiB, so a slow,
 * silent or garbage-answering peer is a failed probe, never a hang.
 */
#ifndef STRATA_SHARD_MEMBERS_H
#define STRATA_SHARD_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum member_state {
	MEMBER_UNKNOWN,		/* not probed yet; live */
	MEMBER_ALIVE,		/* answering; live */
	MEMBER_SUSPECT,		/* failing, fewer than dead_after in a row; live */
	MEMBER_DEAD,		/* dead_after failures in a row; not live */
	MEMBER_RETURNING,	/* answering again, within hold-down; not live */
};

struct member_policy {
	unsigned dead_after;	/* consecutive failed probes to declare a member dead, >= 1 */
	int64_t hold_down_ms;	/* answering time before a dead member is live again, >= 0 */
};

struct member_health {
	enum member_state state;
	unsigned fails;		/* consecutive failed probes */
	int64_t since_ms;	/* monotonic ms the state was entered */
	int64_t ok_since_ms;	/* RETURNING: monotonic ms of the streak's first success */
};

/* member_state_name returns "unknown", "alive", "suspect", "dead", "returning". */
const char *member_state_name(enum member_state s);
/* member_health_init puts h in MEMBER_UNKNOWN at now_ms. */
void member_health_init(struct member_health *h, int64_t now_ms);
/* member_health_is_live tells whether h counts as a live member. */
bool member_health_is_live(const struct member_health *h);
/* member_health_observe records one probe result (ok or not) at monotonic
 * now_ms. Returns true when liveness changed. */
bool member_health_observe(struct member_health *h, const struct member_policy *p,
    bool ok, int64_t now_ms);

/* --- the prober ----------------------------------------------------------- */

struct members_opts {
	int64_t probe_interval_ms;	/* a round starts this often; > 0 */
	int64_t probe_timeout_ms;	/* bound of one probe (connect + answer); > 0 */
	struct member_policy policy;
	unsigned fingerprint_every;	/* read a peer's fingerprint every N rounds (>= 1) */
	const char *fingerprint;	/* ours; copied */
};

/* What members_snapshot reports about one member. */
struct member_info {
	const char *url;		/* borrowed from the members object */
	bool self;
	bool live;
	enum member_state state;
	unsigned fails;			/* consecutive failures */
	int64_t state_since;		/* wall-clock ms the state was entered */
	int64_t last_probe;		/* wall-clock ms of the last finished probe, 0: none */
	double last_probe_s;		/* its duration */
	char last_error[160];		/* of the last probe, "" when it succeeded */
	uint64_t probes, failures;	/* totals */
	char fingerprint[24];		/* the peer's, "" while unknown */
	char fingerprint_error[160];	/* why the last read failed, "" when it worked */
	int fingerprint_match;		/* 1 same as ours, 0 differs, -1 unknown */
};

/* Called on the prober thread after the live set changed; live[i] for each
 * member i (in members order), valid during the call only. */
typedef void (*members_change_fn)(void *arg, const bool *live, size_t n);

struct members;

/* members_new builds the group from n canonical URLs (copied; order kept)
 * of which urls[self] is this process. Does not probe yet. Caller frees
 * with members_free(). */
struct members *members_new(const char *const *urls, size_t n, size_t self,
    const struct members_opts *o);
/* members_free stops the prober if it runs and releases m; NULL is a no-op. */
void members_free(struct members *m);
/* members_on_change sets the change callback; call before members_start(). */
void members_on_change(struct members *m, members_change_fn fn, void *arg);
/* members_start starts the prober thread. Returns 0, or -1 with err. */
int members_start(struct members *m, char *err, size_t errlen);
/* members_stop stops the prober and waits for it (within one probe
 * timeout). Idempotent. */
void members_stop(struct members *m);

/* members_count returns the number of members. */
size_t members_count(const struct members *m);
/* members_live copies the live set into live[0..n). Returns how many are live. */
size_t members_live(struct members *m, bool *live);
/* members_snapshot fills out[0..members_count) with the current state. */
void members_snapshot(struct members *m, struct member_info *out);
/* members_mismatches returns how many peers' last known fingerprint differs
 * from ours. */
size_t members_mismatches(struct members *m);
/* members_rounds returns how many probe rounds have completed (for tests). */
uint64_t members_rounds(struct members *m);

/* members_parse_fingerprint finds "fingerprint":"<hex>" in body[0..len)
 * (the answer of a peer's /api/v1/shard) and copies the value into fp
 * (at least 24 bytes). Returns 0, or -1 with the reason in err. */
int members_parse_fingerprint(const char *body, size_t len, char *fp,
    char *err, size_t errlen);

#endif
