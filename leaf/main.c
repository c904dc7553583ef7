/* leaf/main.c - strata-leaf: scrape its targets into the head, serve them.
 *
 * The wiring of a leaf: the daemon shell (lib/daemon: flags, config,
 * reload, lifecycle endpoints) around one in-memory head (lib/tsdb), one
 * scrape manager appending to it (lib/scrape) and the endpoints that read
 * it (lib/api: /federate, /metrics, /api/v1/targets). A housekeeping thread
 * drops samples older than --storage.tsdb.retention.time from the head.
 * shard/ decides which targets this leaf owns (the scrape manager's owns
 * hook, from the --shard.* flags), serves /api/v1/shard, and in dynamic
 * mode its prober thread calls scrape_manager_resync() when the live
 * members change.
 *
 * Ownership: main() owns struct leaf and everything in it; the daemon
 * calls back into it (leaf_routes, leaf_apply, leaf_stop) from its own
 * thread, and the HTTP handlers borrow the head, the scrape manager and
 * the api objects until the server has stopped.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "api/federate.h"
#include "api/metrics.h"
#include "api/targets.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "scrape/scrape.h"
#include "shard/api.h"
#include "shard/leaf.h"
#include "shard/shard.h"
#include "tsdb/head.h"
#include "util/log.h"
#include "util/time.h"

struct leaf {
	struct tsdb_head *head;
	struct scrape_manager *scrape;
	struct api_federate *federate;
	struct api_metrics *metrics;
	struct shard *shard;		/* shard: target ownership (shard/) */
	struct shard_leaf_source *shard_src;	/* shard: targets for its counts */
	int64_t retention_ms;

	pthread_t housekeeping;
	bool housekeeping_started;
	pthread_mutex_t mu;		/* guards stop, with cond */
	pthread_cond_t cond;
	bool stop;
};

static int
leaf_routes(void *arg, struct daemon *d, struct http_server *srv, char *err, size_t errlen)
{
	struct leaf *l = arg;

	(void)d;
	if (api_federate_route(l->federate, srv) < 0 ||
	    api_metrics_route(l->metrics, srv) < 0 ||
	    api_targets_route(l->scrape, srv) < 0 ||
	    shard_api_route(l->shard, srv) < 0) {
		snprintf(err, errlen, "cannot register the leaf's endpoints");
		return -1;
	}
	return 0;
}

static int
leaf_apply(void *arg, const struct cfg *cfg, char *err, size_t errlen)
{
	struct leaf *l = arg;
	struct labels *ext;

	if (scrape_manager_apply(l->scrape, cfg, err, errlen) < 0)
		return -1;
	/* shard: count targets under the new configuration; add the replica
	 * label (--shard.replication-factor > 1) to the external labels */
	shard_leaf_source_set_cfg(l->shard_src, cfg);
	ext = shard_external_labels(l->shard, cfg->external_labels);
	api_federate_set_external_labels(l->federate, ext);
	labels_free(ext);
	return 0;
}

static void
leaf_stop(void *arg)
{
	struct leaf *l = arg;

	shard_stop(l->shard);	/* no resync after the scrape manager stopped */
	scrape_manager_stop(l->scrape);
}

/* leaf_shard_changed runs on the shard prober thread when the live
 * members changed: re-decide which targets this leaf scrapes. */
static void
leaf_shard_changed(void *arg)
{
	struct leaf *l = arg;

	scrape_manager_resync(l->scrape);
}

/* housekeeping drops what is older than the retention, once a minute. */
static void *
housekeeping(void *arg)
{
	struct leaf *l = arg;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		struct timespec ts;
		size_t removed;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 60;
		pthread_cond_timedwait(&l->cond, &l->mu, &ts);
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->mu);
		removed = tsdb_head_gc(l->head, time_now_ms() - l->retention_ms);
		if (removed > 0)
			log_msg(LOG_DEBUG, "tsdb", "head gc removed %zu series", removed);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static const struct daemon_role_ops leaf_ops = {
	.routes = leaf_routes,
	.apply = leaf_apply,
	.stop = leaf_stop,
};

int
main(int argc, char **argv)
{
	struct leaf l = { 0 };
	struct scrape_opts so = { 0 };
	struct shard_opts sho;
	struct daemon *d = NULL;
	struct flag *flags;
	size_t nflags;
	char err[1024];
	int status = 0;

	flags = daemon_flags_new(DAEMON_LEAF, &nflags);
	if (daemon_parse_args(DAEMON_LEAF, flags, nflags, argc, argv, &status) < 0) {
		daemon_flags_free(flags, nflags);
		return status;
	}
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cond, NULL);
	l.retention_ms = flag_duration_ms(flags, nflags, "storage.tsdb.retention.time");
	/* shard: validate the --shard.* flags before anything starts */
	shard_opts_from_flags(&sho, flags, nflags);
	l.shard = shard_new(&sho, err, sizeof(err));
	if (l.shard == NULL)
		goto fail;
	l.head = tsdb_head_new(NULL, err, sizeof(err));
	if (l.head == NULL)
		goto fail;
	so.head = l.head;
	so.user_agent = "strata/" PACKAGE_VERSION;
	so.owns = shard_owns;
	so.owns_arg = l.shard;
	l.scrape = scrape_manager_new(&so, err, sizeof(err));
	if (l.scrape == NULL)
		goto fail;
	l.federate = api_federate_new(l.head, flag_duration_ms(flags, nflags, "query.lookback-delta"));
	l.metrics = api_metrics_new();
	api_metrics_add(l.metrics, api_metrics_head, l.head);
	api_metrics_add(l.metrics, api_metrics_scrape, l.scrape);
	/* shard: counts, resync on membership changes, metrics, probing */
	l.shard_src = shard_leaf_source_new(l.scrape);
	shard_set_targets(l.shard, shard_leaf_targets, l.shard_src);
	shard_on_change(l.shard, leaf_shard_changed, &l);
	api_metrics_add(l.metrics, shard_api_metrics, l.shard);
	if (shard_start(l.shard, err, sizeof(err)) < 0)
		goto fail;

	d = daemon_new(DAEMON_LEAF, flags, nflags, &leaf_ops, &l, err, sizeof(err));
	flags = NULL;	/* the daemon owns them now, even on failure */
	if (d == NULL)
		goto fail;
	if (pthread_create(&l.housekeeping, NULL, housekeeping, &l) == 0)
		l.housekeeping_started = true;
	status = daemon_run(d);
	goto out;
fail:
	fprintf(stderr, "strata-leaf: %s\n", err);
	status = 1;
out:
	if (l.housekeeping_started) {
		pthread_mutex_lock(&l.mu);
		l.stop = true;
		pthread_cond_signal(&l.cond);
		pthread_mutex_unlock(&l.mu);
		pthread_join(l.housekeeping, NULL);
	}
	if (l.shard != NULL)
		shard_stop(l.shard);
	daemon_free(d);		/* stops the server: no handler runs after this */
	if (flags != NULL)
		daemon_flags_free(flags, nflags);
	scrape_manager_free(l.scrape);
	shard_leaf_source_free(l.shard_src);
	shard_free(l.shard);
	api_federate_free(l.federate);
	api_metrics_free(l.metrics);
	tsdb_head_free(l.head);
	pthread_cond_destroy(&l.cond);
	pthread_mutex_destroy(&l.mu);
	return status;
}
