/* central/main.c - strata-central: federate from every leaf, store, answer.
 *
 * The wiring of one replica of the central pair: the daemon shell
 * (lib/daemon/daemon.h) around one core (lib/daemon/core.h: the store, the
 * scrape manager that runs the federation jobs, /federate so centrals can
 * be federated, /metrics, /api/v1/targets, the query API, remote read),
 * plus the peer (central/peer.h): gap repair from the other replica named
 * by --peer.url, /api/v1/peer and the strata_peer_* metrics. The replica
 * reports ready (/-/ready, what a load balancer checks) only once its
 * start-up repair is over, so it is never asked while it still has a hole
 * its peer could fill, and the pair survives losing the peer from then on.
 *
 * Identical answers: a leaf answers lossless pulls up to
 * API_PULL_SETTLE_MS before now and the central pulls every scrape
 * interval, within the scrape timeout; rules evaluate the instant t only
 * after that much (the evaluation delay), at the same slotted instants on
 * both replicas, so both compute from the same samples. Rules start only
 * once start-up repair has copied everything before this process's start
 * (central_open).
 *
 * Each configuration load gives the peer this replica's fingerprint (the
 * scrape and rule configuration without external labels, so both replicas
 * of one cluster agree and a replica of another cluster is refused), the
 * lag (how far behind now the samples held here are final: the delay plus
 * the longest rule group interval) and where a new stretch of coverage
 * opens (the first rule instant evaluated here).
 *
 * Ownership: main() owns struct central and everything in it;
 * daemon_main() builds and frees it through central_setup, central_halt
 * and central_cleanup, and calls back into it from its own thread and the HTTP handlers borrow the
 * core's and the peer's parts until the server has stopped.
 */
#include "config.h"

#include <stdio.h>

#include "api/pull.h"
#include "central/dedup.h"
#include "central/peer.h"
#include "daemon/core.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "util/log.h"

/* Slack added to the lag for clocks a few seconds apart and slow commits. */
#define CENTRAL_LAG_MARGIN_MS 5000

struct central {
	struct core *core;
	struct peer *peer;
	struct dedup *dedup;	/* replicated series stored once; NULL: off */
};

/* central_eval_delay returns how long after an instant every raw sample
 * of it has been pulled under cfg: the source's settling time, then at
 * most one interval and one timeout of the slowest federation job. Rules
 * evaluate an instant only then, so both replicas see the same input. */
static int64_t
central_eval_delay(const struct cfg *cfg)
{
	int64_t worst = 0;

	for (size_t i = 0; i < cfg->n_scrape; i++) {
		int64_t l = cfg->scrape[i].scrape_interval_ms + cfg->scrape[i].scrape_timeout_ms;

		if (l > worst)
			worst = l;
	}
	return API_PULL_SETTLE_MS + worst;
}

static int
central_routes(void *arg, struct daemon *d, struct http_server *srv, char *err, size_t errlen)
{
	struct central *c = arg;

	(void)d;
	if (core_routes(c->core, srv) < 0 || peer_route(c->peer, srv) < 0) {
		snprintf(err, errlen, "cannot register the central's endpoints");
		return -1;
	}
	return 0;
}

static int
central_apply(void *arg, const struct cfg *cfg, char *err, size_t errlen)
{
	struct central *c = arg;
	char fp[PEER_FINGERPRINT_LEN];
	int64_t delay = central_eval_delay(cfg), iv, lag, offset = 0;

	core_set_rules_eval_delay(c->core, delay);
	if (c->dedup != NULL)	/* dedup: every raw sample is in by then */
		dedup_set_settle(c->dedup, delay);
	if (core_apply(c->core, cfg, cfg->external_labels, err, errlen) < 0)
		return -1;
	/* Final here: raw samples after the delay, rule results one group
	 * interval later. A stretch opens at the first instant whose rules
	 * this replica evaluates itself: at most one interval after the
	 * delayed clock's now. */
	iv = core_rules_max_interval_ms(c->core);
	lag = delay + iv + CENTRAL_LAG_MARGIN_MS;
	if (iv > 0)
		offset = iv - delay;
	peer_fingerprint(cfg, fp);
	peer_set_config(c->peer, fp, lag, offset);
	return 0;
}

/* central_open runs on the peer's thread once start-up repair has copied
 * everything before this process's start: only now do rules evaluate,
 * over inputs that are whole. (The replica reports ready a little later,
 * once it also holds the peer's rule results up to its first own instant.) */
static void
central_open(void *arg)
{
	struct central *c = arg;

	core_rules_start(c->core);
}

static void
central_stop(void *arg)
{
	struct central *c = arg;

	peer_stop(c->peer);	/* no repair writes after this */
	core_stop(c->core);
	if (c->dedup != NULL)	/* dedup: no hook call after core_stop */
		dedup_stop(c->dedup);
}

static bool
central_ready(void *arg, char *why, size_t whylen)
{
	struct central *c = arg;

	if (peer_is_synced(c->peer))
		return true;
	snprintf(why, whylen, "repairing gaps from the peer replica, see /api/v1/peer");
	return false;
}

/* central_setup builds dedup (when --dedup.replica-label is set), the core
 * and the peer, and starts the peer's start-up repair. */
static int
central_setup(void *arg, struct flag *flags, size_t nflags, char *err, size_t errlen)
{
	struct central *c = arg;
	struct core_opts co = { 0 };
	struct peer_opts po = { 0 };

	co.flags = flags;
	co.nflags = nflags;
	co.rules_hold = true;		/* until central_open */
	/* --- dedup: the scrape hook stores replicated series once --- */
	if (flag_str(flags, nflags, "dedup.replica-label")[0] != '\0') {
		struct dedup_opts dopt = { .replica_label = flag_str(flags, nflags,
		    "dedup.replica-label") };

		c->dedup = dedup_new(&dopt, err, errlen);
		if (c->dedup == NULL)
			return -1;
		co.sample_hook = dedup_hook;
		co.sample_hook_arg = c->dedup;
	}
	/* --- end dedup --- */
	c->core = core_new(&co, err, errlen);
	if (c->core == NULL)
		return -1;
	if (c->dedup != NULL) {	/* dedup: before any target exists */
		if (dedup_start(c->dedup, tsdb_db_head(core_db(c->core)), err, errlen) < 0)
			return -1;
		api_metrics_add(core_metrics(c->core), dedup_collect, c->dedup);
	}
	po.url = flag_str(flags, nflags, "peer.url");
	po.data_dir = flag_str(flags, nflags, "storage.tsdb.path");
	po.db = core_db(c->core);
	po.retention_ms = flag_duration_ms(flags, nflags, "storage.tsdb.retention.time");
	po.on_open = central_open;
	po.on_open_arg = c;
	c->peer = peer_new(&po, err, errlen);
	if (c->peer == NULL)
		return -1;
	api_metrics_add(core_metrics(c->core), peer_collect, c->peer);
	if (peer_start(c->peer, err, errlen) < 0)
		return -1;
	return 0;
}

static void
central_halt(void *arg)
{
	struct central *c = arg;

	if (c->peer != NULL)
		peer_stop(c->peer);
}

static void
central_cleanup(void *arg)
{
	struct central *c = arg;

	peer_free(c->peer);
	if (c->dedup != NULL)	/* dedup: its committer appends to the core's store */
		dedup_stop(c->dedup);
	core_free(c->core);
	dedup_free(c->dedup);
}

static const struct daemon_role_ops central_ops = {
	.routes = central_routes,
	.apply = central_apply,
	.stop = central_stop,
	.ready = central_ready,
	.setup = central_setup,
	.halt = central_halt,
	.cleanup = central_cleanup,
};

int
main(int argc, char **argv)
{
	struct central c = { 0 };

	return daemon_main(DAEMON_CENTRAL, argc, argv, &central_ops, &c);
}
