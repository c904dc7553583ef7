/* lib/daemon/core.h - what every strata server runs, leaf or central.
 *
 * A core owns the store (lib/tsdb: head, WAL, blocks on
 * --storage.tsdb.path), the scrape manager appending to it (lib/scrape;
 * on a central the federation jobs are scrape jobs), the rule manager
 * (lib/rules: the configuration's rule_files, evaluated over the store and
 * written back to it), and the endpoints that read it (lib/api):
 * /federate, /metrics, /api/v1/targets and the query API, and remote read
 * (/api/v1/read over head and blocks) with the remote-write receiver
 * (/api/v1/write, with --web.enable-remote-write-receiver) from
 * lib/remote, and the remote_write client, fed every sample the store
 * commits (lib/remote/feed.h). A role (leaf/main.c, central/main.c) creates one core from
 * the parsed flags, adds its own parts (shard ownership, peer repair, ...)
 * and calls the core from its daemon callbacks.
 *
 * Ownership: the core owns everything it creates; accessors return
 * borrowed pointers valid until core_free(). Threads: core_apply and
 * core_stop run on the daemon's thread; the endpoints on server threads.
 */
#ifndef STRATA_DAEMON_CORE_H
#define STRATA_DAEMON_CORE_H

#include <stdbool.h>
#include <stddef.h>

#include "api/metrics.h"
#include "config/config.h"
#include "http/server.h"
#include "labels/labels.h"
#include "promql/storage.h"
#include "scrape/scrape.h"
#include "tsdb/db.h"
#include "util/flag.h"

struct core_opts {
	struct flag *flags;		/* borrowed: the parsed daemon flags */
	size_t nflags;
	/* scrape ownership filter (scrape_opts.owns); may be NULL */
	bool (*owns)(void *arg, const struct labels *target_labels);
	void *owns_arg;
	/* scrape sample hook (scrape_opts.sample_hook, e.g. deduplication);
	 * may be NULL */
	scrape_sample_fn sample_hook;
	void *sample_hook_arg;
	/* rules: evaluate the instant t at wall time t + rules_eval_delay_ms
	 * (rules_manager_opts.eval_delay_ms; 0: none); with rules_hold, no
	 * rule runs before core_rules_start() (a central repairing its gaps) */
	int64_t rules_eval_delay_ms;
	bool rules_hold;
};

struct core;

/* core_new opens the store and starts the scrape manager (no targets yet).
 * Returns NULL with err (e.g. the data directory is locked by another
 * process). Free with core_free(). */
struct core *core_new(const struct core_opts *o, char *err, size_t errlen);
/* core_free stops and releases everything; the HTTP server must have
 * stopped and the role's own appenders too. What the store committed is
 * first handed to remote write and sent for up to its flush deadline.
 * NULL is a no-op. */
void core_free(struct core *c);

/* core_routes registers the core's endpoints on srv. Returns 0 or -1. */
int core_routes(struct core *c, struct http_server *srv);
/* core_apply installs cfg (borrowed until the next apply) with the
 * external labels ext (the role may have added its own; a reference is
 * taken; remote write adds them too, where a series lacks them). Returns
 * 0, or -1 with err and nothing changed (a bad rule file, remote_write or
 * scrape section refuses the whole configuration). */
int core_apply(struct core *c, const struct cfg *cfg, struct labels *ext,
    char *err, size_t errlen);
/* core_stop stops rule evaluation and scraping (before the process exits). */
void core_stop(struct core *c);

/* core_rules_start starts evaluating the configuration's rules when the
 * core was made with rules_hold (a no-op after the first call).
 * Thread-safe. */
void core_rules_start(struct core *c);
/* core_set_rules_eval_delay changes the evaluation delay. Thread-safe. */
void core_set_rules_eval_delay(struct core *c, int64_t ms);
/* core_rules_max_interval_ms returns the longest rule group interval of
 * the running configuration (0: no groups). */
int64_t core_rules_max_interval_ms(struct core *c);
/* core_rules returns the rule manager (for /api/v1/rules and alerts). */
struct rules_manager *core_rules(struct core *c);

struct tsdb_db *core_db(struct core *c);
struct scrape_manager *core_scrape(struct core *c);
struct api_metrics *core_metrics(struct core *c);
/* core_storage returns the query engine's view of the store. */
const struct promql_storage *core_storage(struct core *c);

#endif
