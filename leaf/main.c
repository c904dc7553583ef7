/* leaf/main.c - strata-leaf: scrape its share of the targets, store, serve.
 *
 * The wiring of a leaf: the daemon shell (lib/daemon/daemon.h: flags,
 * config, reload, lifecycle endpoints) around one core (lib/daemon/core.h:
 * the store on --storage.tsdb.path, the scrape manager, /federate,
 * /metrics, /api/v1/targets, the query API), plus shard/, which decides
 * which targets this leaf owns (the scrape manager's owns hook, from the
 * --shard.* flags), serves /api/v1/shard, and in dynamic mode probes the
 * other leaves and asks for a resync when the live set changes.
 *
 * Ownership: main() owns struct leaf and everything in it; daemon_main()
 * builds and frees it through leaf_setup, leaf_halt and leaf_cleanup, and
 * calls back into it (leaf_routes, leaf_apply, leaf_stop) from its own
 * thread, and the HTTP handlers borrow the core's parts until the server
 * has stopped.
 */
#include "config.h"

#include <stdio.h>

#include "daemon/core.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "shard/api.h"
#include "shard/leaf.h"
#include "shard/shard.h"

struct leaf {
	struct core *core;
	struct shard *shard;		/* target ownership */
};

static int
leaf_routes(void *arg, struct daemon *d, struct http_server *srv, char *err, size_t errlen)
{
	struct leaf *l = arg;

	(void)d;
	if (core_routes(l->core, srv) < 0 || shard_api_route(l->shard, srv) < 0) {
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
	int rc;

	/* The replica label (--shard.replication-factor > 1) joins the
	 * external labels. */
	ext = shard_external_labels(l->shard, cfg->external_labels);
	rc = core_apply(l->core, cfg, ext, err, errlen);
	labels_free(ext);
	return rc;
}

static void
leaf_stop(void *arg)
{
	struct leaf *l = arg;

	shard_stop(l->shard);	/* no resync after the scrape manager stopped */
	core_stop(l->core);
}

/* leaf_shard_changed runs on the shard prober thread when the live
 * members changed: re-decide which targets this leaf scrapes. */
static void
leaf_shard_changed(void *arg)
{
	struct leaf *l = arg;

	scrape_manager_resync(core_scrape(l->core));
}

/* leaf_setup builds the shard (validating the --shard.* flags before
 * anything starts) and the core that asks it which targets to scrape. */
static int
leaf_setup(void *arg, struct flag *flags, size_t nflags, char *err, size_t errlen)
{
	struct leaf *l = arg;
	struct core_opts co = { 0 };
	struct shard_opts sho;

	shard_opts_from_flags(&sho, flags, nflags);
	l->shard = shard_new(&sho, err, errlen);
	if (l->shard == NULL)
		return -1;
	co.flags = flags;
	co.nflags = nflags;
	co.owns = shard_owns;
	co.owns_arg = l->shard;
	l->core = core_new(&co, err, errlen);
	if (l->core == NULL)
		return -1;
	shard_set_targets(l->shard, shard_leaf_targets, core_scrape(l->core));
	shard_on_change(l->shard, leaf_shard_changed, l);
	api_metrics_add(core_metrics(l->core), shard_api_metrics, l->shard);
	if (shard_start(l->shard, err, errlen) < 0)
		return -1;
	return 0;
}

static void
leaf_halt(void *arg)
{
	struct leaf *l = arg;

	if (l->shard != NULL)
		shard_stop(l->shard);
}

static void
leaf_cleanup(void *arg)
{
	struct leaf *l = arg;

	core_free(l->core);
	shard_free(l->shard);
}

static const struct daemon_role_ops leaf_ops = {
	.routes = leaf_routes,
	.apply = leaf_apply,
	.stop = leaf_stop,
	.setup = leaf_setup,
	.halt = leaf_halt,
	.cleanup = leaf_cleanup,
};

int
main(int argc, char **argv)
{
	struct leaf l = { 0 };

	return daemon_main(DAEMON_LEAF, argc, argv, &leaf_ops, &l);
}
