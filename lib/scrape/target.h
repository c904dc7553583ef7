/* lib/scrape/target.h - building scrape targets from target groups.
 *
 * What Prometheus 2.42's scrape/target.go does between service discovery and
 * a scrape loop, as pure functions (no threads, no I/O): a discovered label
 * set (a group's labels plus one __address__) gets the job's defaults (job,
 * __scheme__, __metrics_path__, __scrape_interval__, __scrape_timeout__,
 * __param_<name>), goes through target relabeling, gets a default port and
 * instance, loses its __meta_* labels and is validated (PopulateLabels).
 * The result names the target: its URL (Target.URL), its identity hash
 * (Target.hash: labels hash and URL, used to deduplicate targets in a pool and
 * to keep a target's loop across reloads) and its scrape phase.
 *
 * Phase: a target is scraped at the wall-clock instants t (ns since the
 * epoch) with t mod interval == phase, where
 *   phase = (fnv1a64(decimal(%016) of xxh64(target labels)) || URL) ^ seed) mod interval
 * the same formula as Prometheus' Target.offset (xxh64 over name 0xff value
 * 0xff of every label, __ labels included), so two servers with the same seed
 * (strata uses 0 unless told otherwise) scrape a target at the same instants.
 *
 * Every function here is thread-safe; strings returned are owned by the
 * caller (mem_free) and label sets are references (labels_free).
 */
#ifndef STRATA_SCRAPE_TARGET_H
#define STRATA_SCRAPE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "labels/labels.h"

/* A target after relabeling (or a dropped one: labels == NULL). */
struct scrape_tdef {
	struct labels *discovered;	/* before relabeling */
	struct labels *labels;		/* after: with __address__ etc., no __meta_*; NULL if dropped */
	struct labels *public;		/* labels without names starting "__"; NULL if dropped */
	char *url;			/* NULL if dropped */
	uint64_t hash;			/* identity in its pool; 0 if dropped */
	int64_t interval_ms, timeout_ms;
};

/* scrape_split_host_port splits s like Go's net.SplitHostPort. Returns 0 with
 * host and port slices of s (host without brackets), or -1 with Go's reason
 * ("missing port in address", "too many colons in address", ...) in why. */
int scrape_split_host_port(const char *s, size_t len, const char **host, size_t *hlen,
    const char **port, size_t *plen, const char **why);

/* scrape_tdef_build runs PopulateLabels for one discovered set (base: the
 * group's labels with the target's __address__; borrowed) under job sc.
 * Returns 0 and fills *out (a kept target, or a dropped one with only
 * discovered set), or -1 with Prometheus' reason in err (the target is then
 * neither active nor dropped: Prometheus logs and skips it). Free the result
 * with scrape_tdef_clear(). */
int scrape_tdef_build(const struct labels *base, const struct cfg_scrape *sc,
    struct scrape_tdef *out, char *err, size_t errlen);
/* scrape_tdef_clear releases what *d holds and zeroes it. */
void scrape_tdef_clear(struct scrape_tdef *d);

/* scrape_target_url returns the scrape URL of a target (full label set ls,
 * job params) as Go's url.URL.String() writes it: scheme://address/path?query
 * with the job's params, each __param_<name> label replacing the first value
 * of <name> (or adding it), keys sorted, values query-escaped. */
char *scrape_target_url(const struct labels *ls, const struct cfg_param *params, size_t nparams);

/* scrape_target_hash returns Prometheus' Target.hash() of (ls, url). */
uint64_t scrape_target_hash(const struct labels *ls, const char *url);

/* scrape_labels_xxh64 returns Prometheus' labels.Hash() (xxh64) of ls. */
uint64_t scrape_labels_xxh64(const struct labels *ls);

/* scrape_target_phase returns the phase in ns within interval_ms (see top). */
int64_t scrape_target_phase(uint64_t hash, uint64_t seed, int64_t interval_ms);

/* scrape_public_labels returns ls without the labels whose name starts "__"
 * (Target.Labels()). */
struct labels *scrape_public_labels(const struct labels *ls);

/* scrape_is_valid_utf8 tells whether s[0..len) is valid UTF-8. */
bool scrape_is_valid_utf8(const char *s, size_t len);

#endif
