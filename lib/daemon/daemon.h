/* lib/daemon/daemon.h - the process shell shared by strata-leaf and strata-central.
 *
 * A daemon owns the parsed flags, the current configuration, the HTTP
 * server and the lifecycle: load the configuration, let the role register
 * its endpoints and install the configuration, serve, reload on SIGHUP or
 * POST /-/reload (with --web.enable-lifecycle), stop on SIGTERM/SIGINT or
 * /-/quit. It serves the endpoints every strata server has: /-/healthy,
 * /-/ready, /-/reload, /-/quit, /api/v1/status/{buildinfo,flags,config,
 * runtimeinfo}.
 *
 * Threads: the main thread runs daemon_run() and handles signals; HTTP
 * handlers run on server threads. Reloads are serialised by a lock; a
 * failed reload keeps the running configuration, logs the error and
 * answers it to /-/reload.
 */
#ifndef STRATA_DAEMON_DAEMON_H
#define STRATA_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "daemon/flags.h"
#include "http/server.h"

struct daemon;

/* What a role (leaf, central) plugs into the shell. */
struct daemon_role_ops {
	/* routes registers the role's endpoints; called once before serving. */
	int (*routes)(void *role, struct daemon *d, struct http_server *srv,
	    char *err, size_t errlen);
	/* apply installs cfg. The role may keep pointers into cfg until its
	 * next apply returns (the daemon frees the previous configuration
	 * only then). Returns 0, or -1 with err: the running configuration
	 * then stays in force. */
	int (*apply)(void *role, const struct cfg *cfg, char *err, size_t errlen);
	/* stop stops the role's loops before the daemon exits; may be NULL. */
	void (*stop)(void *role);
	/* ready tells whether the role is ready for traffic (a central
	 * repairing its gaps is not); /-/ready answers 503 while it returns
	 * false, with the reason written to why. May be NULL: always ready. */
	bool (*ready)(void *role, char *why, size_t whylen);
	/* For daemon_main(): setup builds the role's parts from the parsed
	 * flags before the daemon exists (the daemon then owns them: they
	 * stay valid until halt has run); returns 0, or -1 with err. halt stops the role's
	 * own threads before the daemon is freed, cleanup frees the role after
	 * it. Both run also after a failed setup, on what it built; either may
	 * be NULL. */
	int (*setup)(void *role, struct flag *flags, size_t nflags, char *err,
	    size_t errlen);
	void (*halt)(void *role);
	void (*cleanup)(void *role);
};

/* daemon_new takes ownership of flags (freed by daemon_free). Returns NULL
 * with err. */
struct daemon *daemon_new(enum daemon_role role, struct flag *flags, size_t nflags,
    const struct daemon_role_ops *ops, void *role_arg, char *err, size_t errlen);
void daemon_free(struct daemon *d);

/* daemon_run loads the configuration, starts serving, and returns the
 * process exit status when asked to stop. */
int daemon_run(struct daemon *d);

/* daemon_main is a daemon's whole main(): parse argv into role's flags,
 * ops->setup, daemon_new, daemon_run, then ops->halt, daemon_free and
 * ops->cleanup. Errors before serving go to stderr as "strata-<role>: err".
 * Returns the process exit status. */
int daemon_main(enum daemon_role role, int argc, char **argv,
    const struct daemon_role_ops *ops, void *role_arg);

/* daemon_reload loads the configuration file again and applies it. Returns
 * 0, or -1 with the reason in err. Thread-safe. */
int daemon_reload(struct daemon *d, char *err, size_t errlen);

/* daemon_flags returns the flag table (read-only after start-up). */
struct flag *daemon_flags(struct daemon *d, size_t *n);
/* daemon_is_ready tells whether the daemon serves traffic. */
bool daemon_is_ready(const struct daemon *d);

#endif
