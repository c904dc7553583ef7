/* shard/shard.h - target ownership for strata-leaf: which leaf scrapes a target.
 *
 * A struct shard answers one question for the scrape manager, for every
 * target after target relabeling: does this leaf own it? (shard_owns(),
 * the scrape_opts owns hook). Three modes, chosen from the --shard.* flags:
 *
 *   none     no --shard.* flag: the leaf owns every target.
 *   static   --shard.count=N --shard.index=I: owns the targets whose
 *            relabel_hashmod(__address__, N) is I, bit-identical to a
 *            Prometheus "hashmod" rule on __address__ with modulus N.
 *   dynamic  --shard.peers=URL,... --shard.self=URL: rendezvous (highest
 *            random weight) hashing over the live members. The score of
 *            member m for address a is
 *                XXH3_64bits_withSeed(a, len(a), XXH3_64bits(url(m)))
 *            where url(m) is the member's canonical URL (see
 *            shard_canonical_url); the R members with the highest scores
 *            own the target (--shard.replication-factor=R, default 1); equal
 *            scores rank the smaller URL first. Every leaf computes the same
 *            owners from the same live set, and a member's death moves only
 *            the targets it owned.
 *
 * In dynamic mode a prober thread (shard/members.h) keeps the live set; a
 * change updates the view under a rwlock and then calls the change
 * callback, on the prober thread, so the wiring can re-run ownership
 * (scrape_manager_resync). shard_owns() may be called from any thread.
 *
 * The fingerprint (16 hex digits) hashes what the members of a group must
 * agree on: the mode, the static count (not the index, which differs per
 * leaf by design), or the sorted canonical peer list, the replication
 * factor and, when R > 1, the replica label name. Leaves read each other's
 * fingerprint from /api/v1/shard and report disagreement.
 */
#ifndef STRATA_SHARD_SHARD_H
#define STRATA_SHARD_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "util/flag.h"

enum shard_mode {
	SHARD_NONE,
	SHARD_STATIC,
	SHARD_DYNAMIC,
};

/* Defaults of the probing knobs (flags --shard.probe-interval,
 * --shard.dead-after, --shard.hold-down). A probe times out after one
 * probe interval. */
#define SHARD_DEFAULT_PROBE_INTERVAL_MS 1000
#define SHARD_DEFAULT_DEAD_AFTER 3
#define SHARD_DEFAULT_HOLD_DOWN_MS 30000
/* Static mode lists per-shard target counts only up to this many shards. */
#define SHARD_STATIC_LIST_MAX 4096

/* The settings as given; strings borrowed for shard_new(). */
struct shard_opts {
	bool count_set, index_set;	/* given on the command line */
	int64_t count, index;
	const char *peers;		/* comma-separated URLs; NULL or "": none */
	const char *self;		/* NULL or "": none */
	int64_t replication_factor;	/* default 1 */
	const char *replica_label;	/* default "leaf_replica" */
	int64_t probe_interval_ms;
	int64_t dead_after;
	int64_t hold_down_ms;
};

/* shard_opts_default fills o with the defaults (mode none). */
void shard_opts_default(struct shard_opts *o);
/* shard_opts_from_flags fills o from a parsed strata-leaf flag table
 * (strings borrowed from it); flags missing from the table keep their
 * defaults. */
void shard_opts_from_flags(struct shard_opts *o, struct flag *flags, size_t n);

struct shard;

/* Called on the prober thread after the live set changed and the view was
 * updated. */
typedef void (*shard_change_fn)(void *arg);
/* A targets source calls emit(ctx, address, len) once for every target the
 * leaf currently has after target relabeling, owned or not (its
 * __address__). */
typedef void (*shard_emit_fn)(void *ctx, const char *addr, size_t len);
typedef void (*shard_targets_fn)(void *arg, shard_emit_fn emit, void *ctx);

/* shard_new validates o and builds the shard (the prober is not started).
 * Returns NULL with a message naming the flag in err (index out of range,
 * static and dynamic flags mixed, duplicate peers, self not a peer,
 * malformed URL, R larger than the group, ...). Caller frees with
 * shard_free(). */
struct shard *shard_new(const struct shard_opts *o, char *err, size_t errlen);
/* shard_free stops the prober and releases s; NULL is a no-op. */
void shard_free(struct shard *s);
/* shard_on_change sets the change callback; call before shard_start(). */
void shard_on_change(struct shard *s, shard_change_fn fn, void *arg);
/* shard_set_targets sets where target counts come from (for
 * /api/v1/shard and the metrics); fn runs on the caller's thread of
 * shard_count_targets(). Call before serving. */
void shard_set_targets(struct shard *s, shard_targets_fn fn, void *arg);
/* shard_start starts probing (dynamic mode; a no-op otherwise). Returns 0,
 * or -1 with err. */
int shard_start(struct shard *s, char *err, size_t errlen);
/* shard_stop stops probing; idempotent. */
void shard_stop(struct shard *s);

/* shard_owns is the scrape ownership hook: arg is a struct shard, the
 * labels those of a target after relabeling. A target without
 * __address__ is hashed as "". */
bool shard_owns(void *arg, const struct labels *target_labels);
/* shard_owns_address tells whether this leaf owns address a[0..len). */
bool shard_owns_address(struct shard *s, const char *a, size_t len);

enum shard_mode shard_mode(const struct shard *s);
/* shard_mode_name returns "none", "static", "dynamic". */
const char *shard_mode_name(enum shard_mode m);
/* shard_fingerprint returns the 16 hex digit fingerprint (owned by s). */
const char *shard_fingerprint(const struct shard *s);
uint64_t shard_static_count(const struct shard *s);
uint64_t shard_static_index(const struct shard *s);
unsigned shard_replication_factor(const struct shard *s);
/* shard_nmembers, shard_member_url and shard_self describe a dynamic
 * group (0, NULL, 0 otherwise): members sorted by canonical URL. */
size_t shard_nmembers(const struct shard *s);
const char *shard_member_url(const struct shard *s, size_t i);
size_t shard_self(const struct shard *s);
/* shard_probe_settings gives the probing knobs in force. */
void shard_probe_settings(const struct shard *s, int64_t *interval_ms,
    unsigned *dead_after, int64_t *hold_down_ms);
/* shard_members returns the prober's membership (dynamic mode) or NULL;
 * borrowed. */
struct members *shard_members(const struct shard *s);
/* shard_live copies the current view into live[0..nmembers) and returns
 * how many members are live. */
size_t shard_live(struct shard *s, bool *live);
/* shard_changes returns how many times the live set changed. */
uint64_t shard_changes(struct shard *s);

/* shard_count_targets enumerates the targets source under the current
 * view: *total targets, *owned by this leaf and, when per is not NULL,
 * per[i] targets owned by member i (dynamic: nmembers entries; static: one
 * per shard index when count <= SHARD_STATIC_LIST_MAX). Returns 0, or -1
 * when no source is set. */
int shard_count_targets(struct shard *s, uint64_t *total, uint64_t *owned,
    uint64_t *per);

/* shard_replica_label gives the external label this leaf adds (dynamic
 * mode with R > 1): name from --shard.replica-label, value the host:port of
 * --shard.self. Returns false when the leaf adds none. */
bool shard_replica_label(const struct shard *s, const char **name,
    const char **value);
/* shard_external_labels returns ext with the replica label added (when
 * there is one and ext does not already set that name) as a new set;
 * caller frees with labels_free(). ext is borrowed. */
struct labels *shard_external_labels(const struct shard *s, const struct labels *ext);

/* --- the hashing, for strata-tool and tests ------------------------------- */

/* shard_canonical_url checks one member URL (http or https, a host, no
 * user, query or fragment) and returns it canonical: lower-case scheme
 * and host, explicit port, path without trailing '/'. Caller frees with
 * mem_free(); NULL with the reason in err. */
char *shard_canonical_url(const char *url, char *err, size_t errlen);
/* shard_parse_peers splits a comma-separated list (blanks around entries
 * ignored), canonicalizes each entry, refuses empty entries and
 * duplicates, and returns the URLs sorted in *urls (free with
 * shard_urls_free()). Returns 0, or -1 with err. */
int shard_parse_peers(const char *list, char ***urls, size_t *n, char *err,
    size_t errlen);
void shard_urls_free(char **urls, size_t n);
/* shard_member_seed returns XXH3_64bits of a canonical member URL. */
uint64_t shard_member_seed(const char *url);
/* shard_hrw_score returns member (seed)'s score for address a[0..len). */
uint64_t shard_hrw_score(uint64_t seed, const char *a, size_t len);
/* shard_hrw_owners writes to out the indexes of the (at most) r live
 * members with the highest scores for a[0..len), best first, and returns
 * how many it wrote (min(r, live members)). live may be NULL (all live). */
size_t shard_hrw_owners(const uint64_t *seeds, const bool *live, size_t n,
    const char *a, size_t len, size_t r, size_t *out);

#endif
