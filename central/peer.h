/* central/peer.h - gap repair between the two replicas of the central pair.
 *
 * Each replica records which time ranges it holds completely
 * (central/coverage.h): a stretch opens when the replica starts holding
 * everything itself, a heartbeat extends it to "now minus the lag" (the
 * newest instant whose raw samples and rule results are final here), and a
 * restart, a stall of the heartbeat or a commit the store refused ends it.
 * The replica serves its coverage, its configuration fingerprint and
 * whether it has caught up at GET /api/v1/peer/coverage (a small text
 * format, below), and its whole view, peer included, at GET /api/v1/peer.
 *
 * A sync pass reads the peer's coverage, and copies what the peer holds
 * and this replica does not (within the retention, up to the older of both
 * watermarks) through the peer's remote read (/api/v1/read, asking for
 * the series as stored: no external labels), oldest first, in time slices
 * sized so one answer stays near PEER_SLICE_SAMPLES. Each slice is merged
 * with what the store already holds: samples present with the same value
 * bits are left alone, samples present with other bits are counted as
 * conflicts and kept (the store never overwrites), the rest are appended
 * through an unrestricted appender (tsdb_appender_new_unrestricted) and
 * committed; then the slice is added to the coverage. Repaired data is the
 * peer's samples, never interpolated; a slice that does not decode, whose
 * series repeat or whose samples are out of order or out of range is
 * refused whole.
 *
 * A peer whose fingerprint differs (another cluster: the scrape and rule
 * configuration without external labels differ) is never copied from.
 * States: none (no --peer.url), unknown (not asked yet), ok, unreachable
 * (connection, timeout, 5xx), garbage (an answer that is not a peer's:
 * 4xx, malformed body, malformed remote read), mismatched (another
 * cluster).
 *
 * Start-up, in two steps. (1) Once a pass finds nothing left to copy with
 * the peer's watermark past this process's start (or the peer says it is
 * catching up itself: both restarted), this process's own stretch opens,
 * at now + run_offset (the first instant whose rule results it evaluates
 * itself), and the on_open callback runs (the central starts its rule
 * evaluation there), so rules never evaluate over a window that is still
 * being repaired. (2) The replica is "synced" (and /-/ready, through the
 * central's readiness hook) once a later pass finds nothing left to copy
 * with the peer's watermark past the start of that stretch: it then holds
 * everything the peer holds before its own stretch, so the pair survives
 * losing the peer from then on. Between (1) and (2) the instants from the
 * peer's watermark to the stretch start (about the lag minus the run
 * offset) are final on the peer only. Both steps are taken at once when
 * there is no peer or it is of another cluster, after PEER_GIVE_UP_MS of
 * failed passes, or after max_wait.
 *
 *   GET /api/v1/peer/coverage  (Content-Type PEER_CONTENT_TYPE)
 *   # strata-peer 1
 *   fingerprint 3f9a0c2e5b7d4a1f
 *   time 1700000000123          this replica's clock, ms
 *   watermark 1699999970000     coverage is final up to here
 *   synced 1
 *   range 1699990000000 1699999970000
 *   # EOF
 *
 * Threads: a heartbeat thread and a sync thread (peer_start); the HTTP
 * handlers and the metrics collector run on server threads. mu guards the
 * configuration and the state; the coverage has its own lock; the store is
 * thread-safe.
 */
#ifndef STRATA_CENTRAL_PEER_H
#define STRATA_CENTRAL_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "central/ranges.h"
#include "config/config.h"
#include "http/server.h"
#include "tsdb/db.h"
#include "util/strbuf.h"

#define PEER_CONTENT_TYPE "application/vnd.strata.peer; version=1"
#define PEER_FINGERPRINT_LEN 33		/* 32 hex digits and a NUL */
#define PEER_SLICE_SAMPLES 500000	/* aimed at per remote read answer */
#define PEER_GIVE_UP_MS 10000		/* failed passes before serving unrepaired */
#define PEER_MAX_ANSWER (4 << 20)	/* coverage answer bound */

enum peer_state {
	PEER_NONE,
	PEER_UNKNOWN,
	PEER_OK,
	PEER_UNREACHABLE,
	PEER_GARBAGE,
	PEER_MISMATCHED,
};

struct peer_opts {
	const char *url;		/* the other replica ("" or NULL: none); copied */
	const char *data_dir;		/* where the coverage file lives; copied */
	struct tsdb_db *db;		/* borrowed: repaired samples go here */
	int64_t retention_ms;		/* 0: keep everything */
	/* all optional (0 = default) */
	int64_t heartbeat_ms;		/* 2 s */
	int64_t stall_ms;		/* a heartbeat this late ends the stretch: 30 s */
	int64_t sync_interval_ms;	/* between passes once synced: 10 s (1 s before) */
	int64_t timeout_ms;		/* coverage GET: 5 s */
	int64_t read_timeout_ms;	/* one remote read: 60 s */
	int64_t max_wait_ms;		/* serve unrepaired after this: 10 min */
	int64_t give_up_ms;		/* PEER_GIVE_UP_MS */
	size_t slice_samples;		/* PEER_SLICE_SAMPLES */
	int64_t slice_ms;		/* first slice length: 1 min */
	/* called once on the sync thread when this replica's own stretch
	 * opens (its rules may start; see "Start-up" above) */
	void (*on_open)(void *arg);
	void *on_open_arg;
};

/* What a peer says about itself (/api/v1/peer/coverage, parsed). */
struct peer_answer {
	char fingerprint[PEER_FINGERPRINT_LEN];
	int64_t time, watermark;
	bool synced;
	struct ranges coverage;		/* owned; ranges_free() */
};

struct peer;

/* peer_new opens the coverage file in o->data_dir. Returns NULL with err;
 * free with peer_free(). Nothing runs before peer_start(). */
struct peer *peer_new(const struct peer_opts *o, char *err, size_t errlen);
/* peer_free stops the threads if needed and frees p; NULL is a no-op. */
void peer_free(struct peer *p);

/* peer_set_config installs this replica's fingerprint (copied), the lag
 * (ms between now and the newest instant it holds completely) and the run
 * offset (where a new stretch opens relative to now: the first rule
 * instant it will evaluate itself minus now; 0 without rules). The first
 * call lets the sync thread begin. Thread-safe. */
void peer_set_config(struct peer *p, const char *fingerprint, int64_t lag_ms,
    int64_t run_offset_ms);
/* peer_start starts the heartbeat and sync threads. Returns 0 or -1. */
int peer_start(struct peer *p, char *err, size_t errlen);
/* peer_stop stops both threads (a repair in progress ends after its
 * current slice). Idempotent. */
void peer_stop(struct peer *p);

/* peer_is_synced tells whether start-up repair is over (the readiness hook). */
bool peer_is_synced(struct peer *p);
/* peer_state_name returns "none", "unknown", "ok", "unreachable", "garbage"
 * or "mismatched". */
const char *peer_state_name(enum peer_state s);

/* peer_route registers GET /api/v1/peer and /api/v1/peer/coverage. */
int peer_route(struct peer *p, struct http_server *srv);
/* peer_collect appends the strata_peer_* families for p (a struct peer *):
 * a /metrics collector. */
void peer_collect(void *p, struct strbuf *out);

/* --- parts, exposed for tests and the central's wiring --------------------- */

/* peer_sync_once runs one sync pass now (what the sync thread does).
 * Returns 0 when the peer answered and every missing range was repaired,
 * else -1. Not concurrently with the sync thread. */
int peer_sync_once(struct peer *p);
/* peer_heartbeat runs one heartbeat now with the wall clock now_ms and the
 * monotonic clock mono_ms (what the heartbeat thread does). */
void peer_heartbeat(struct peer *p, int64_t now_ms, int64_t mono_ms);
/* peer_state returns the current state; err (may be NULL) receives the
 * last error. */
enum peer_state peer_state(struct peer *p, char *err, size_t errlen);
/* Figures of a replica's repair. */
struct peer_stats {
	uint64_t ranges_repaired, samples_repaired, samples_conflicting;
	uint64_t repair_failures, syncs, sync_failures;
	size_t ranges_missing;
	int64_t last_sync_ms;		/* wall clock of the last pass the peer answered; 0 never */
};
void peer_stats(struct peer *p, struct peer_stats *st);
/* peer_coverage copies this replica's held ranges into out. */
void peer_coverage(struct peer *p, struct ranges *out);

/* peer_write_answer appends this replica's coverage answer to out. */
void peer_write_answer(struct peer *p, struct strbuf *out);
/* peer_parse_answer parses a coverage answer of len bytes. Returns 0 with
 * *a filled (free a->coverage), or -1 with the reason in err ("line 3:
 * ..."; an answer without "# EOF" was cut). */
int peer_parse_answer(const char *buf, size_t len, struct peer_answer *a,
    char *err, size_t errlen);

/* peer_fingerprint writes the fingerprint of cfg into out
 * (PEER_FINGERPRINT_LEN bytes): SHA-256 of the configuration as
 * /api/v1/status/config prints it without external labels, rule file
 * names, alerting, remote write/read and tracing, followed by the contents
 * of every rule file its rule_files globs match (in name order), as 32 hex
 * digits. Replicas of one cluster differ only in what is left out. */
void peer_fingerprint(const struct cfg *cfg, char *out);

#endif
