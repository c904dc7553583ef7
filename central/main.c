/* central/main.c - strata-central: federate from every leaf, store, answer.
 *
 * The wiring of one replica of the central pair: the daemon shell
 * (lib/daemon/daemon.h) around one core (lib/daemon/core.h: the store, the
 * scrape manager that runs the federation jobs, /federate so centrals can
 * be federated in turn, /metrics, /api/v1/targets, the query API).
 *
 * Ownership: main() owns struct central and everything in it; the daemon
 * calls back into it from its own thread and the HTTP handlers borrow the
 * core's parts until the server has stopped.
 */
#include "config.h"

#include <stdio.h>

#include "daemon/core.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"

struct central {
	struct core *core;
};

static int
central_routes(void *arg, struct daemon *d, struct http_server *srv, char *err, size_t errlen)
{
	struct central *c = arg;

	(void)d;
	if (core_routes(c->core, srv) < 0) {
		snprintf(err, errlen, "cannot register the central's endpoints");
		return -1;
	}
	return 0;
}

static int
central_apply(void *arg, const struct cfg *cfg, char *err, size_t errlen)
{
	struct central *c = arg;

	return core_apply(c->core, cfg, cfg->external_labels, err, errlen);
}

static void
central_stop(void *arg)
{
	struct central *c = arg;

	core_stop(c->core);
}

static const struct daemon_role_ops central_ops = {
	.routes = central_routes,
	.apply = central_apply,
	.stop = central_stop,
};

int
main(int argc, char **argv)
{
	struct central c = { 0 };
	struct core_opts co = { 0 };
	struct daemon *d = NULL;
	struct flag *flags;
	size_t nflags;
	char err[1024];
	int status = 0;

	flags = daemon_flags_new(DAEMON_CENTRAL, &nflags);
	if (daemon_parse_args(DAEMON_CENTRAL, flags, nflags, argc, argv, &status) < 0) {
		daemon_flags_free(flags, nflags);
		return status;
	}
	co.flags = flags;
	co.nflags = nflags;
	c.core = core_new(&co, err, sizeof(err));
	if (c.core == NULL)
		goto fail;
	d = daemon_new(DAEMON_CENTRAL, flags, nflags, &central_ops, &c, err, sizeof(err));
	flags = NULL;	/* the daemon owns them now, even on failure */
	if (d == NULL)
		goto fail;
	status = daemon_run(d);
	goto out;
fail:
	fprintf(stderr, "strata-central: %s\n", err);
	status = 1;
out:
	daemon_free(d);		/* stops the server: no handler runs after this */
	if (flags != NULL)
		daemon_flags_free(flags, nflags);
	core_free(c.core);
	return status;
}
