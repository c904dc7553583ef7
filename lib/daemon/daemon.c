/* lib/daemon/daemon.c - lifecycle, reload and the common endpoints. */
#include "config.h"

#include "daemon/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "http/json.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

struct daemon {
	enum daemon_role role;
	struct flag *flags;		/* owned */
	size_t nflags;
	const struct daemon_role_ops *ops;
	void *role_arg;
	struct http_server *http;	/* owned */

	pthread_mutex_t reload_mu;	/* serialises daemon_reload */
	pthread_mutex_t cfg_mu;		/* guards cfg, cfg_loaded_ms, last_reload_ok */
	struct cfg *cfg;		/* owned; the running configuration */
	int64_t cfg_loaded_ms;
	bool last_reload_ok;
	unsigned reloads_total, reload_failures_total;

	int64_t start_ms;
	atomic_bool ready;
	atomic_bool quit;
	pthread_t main_th;	/* the thread in daemon_run: /-/quit wakes it with SIGUSR1 */
};

static const char *
role_name(enum daemon_role role)
{
	return role == DAEMON_LEAF ? "strata-leaf" : "strata-central";
}

static const char *
daemon_name(const struct daemon *d)
{
	return role_name(d->role);
}

struct daemon *
daemon_new(enum daemon_role role, struct flag *flags, size_t nflags,
    const struct daemon_role_ops *ops, void *role_arg, char *err, size_t errlen)
{
	struct daemon *d = mem_calloc(1, sizeof(*d));
	struct http_server_opts o;

	d->role = role;
	d->flags = flags;
	d->nflags = nflags;
	d->ops = ops;
	d->role_arg = role_arg;
	d->start_ms = time_now_ms();
	pthread_mutex_init(&d->reload_mu, NULL);
	pthread_mutex_init(&d->cfg_mu, NULL);
	http_server_opts_default(&o);
	d->http = http_server_new(flag_str(flags, nflags, "web.listen-address"), &o, err, errlen);
	if (d->http == NULL) {
		daemon_free(d);
		return NULL;
	}
	return d;
}

void
daemon_free(struct daemon *d)
{
	if (d == NULL)
		return;
	http_server_free(d->http);
	cfg_free(d->cfg);
	daemon_flags_free(d->flags, d->nflags);
	pthread_mutex_destroy(&d->reload_mu);
	pthread_mutex_destroy(&d->cfg_mu);
	mem_free(d);
}

struct flag *
daemon_flags(struct daemon *d, size_t *n)
{
	*n = d->nflags;
	return d->flags;
}

bool
daemon_is_ready(const struct daemon *d)
{
	return atomic_load(&d->ready);
}

int
daemon_reload(struct daemon *d, char *err, size_t errlen)
{
	const char *path = flag_str(d->flags, d->nflags, "config.file");
	struct cfg *c, *old;
	int rc = -1;

	pthread_mutex_lock(&d->reload_mu);
	c = cfg_load_file(path, err, errlen);
	if (c != NULL && d->ops->apply(d->role_arg, c, err, errlen) == 0) {
		pthread_mutex_lock(&d->cfg_mu);
		old = d->cfg;
		d->cfg = c;
		d->cfg_loaded_ms = time_now_ms();
		d->last_reload_ok = true;
		d->reloads_total++;
		pthread_mutex_unlock(&d->cfg_mu);
		cfg_free(old);
		log_kv(LOG_INFO, "config", "Completed loading of configuration file",
		    "filename", path, (char *)NULL);
		rc = 0;
	} else {
		cfg_free(c);
		pthread_mutex_lock(&d->cfg_mu);
		d->last_reload_ok = false;
		d->reload_failures_total++;
		pthread_mutex_unlock(&d->cfg_mu);
		log_kv(LOG_ERROR, "config", "Error loading config", "filename", path,
		    "err", err, (char *)NULL);
	}
	pthread_mutex_unlock(&d->reload_mu);
	return rc;
}

/* --- common endpoints ------------------------------------------------- */

static int
daemon_healthy(struct http_request *req, void *arg)
{
	(void)arg;
	return http_respond_text(req, 200, "Strata Server is Healthy.\n");
}

static int
daemon_ready(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	char why[256] = "";

	if (!daemon_is_ready(d))
		return http_respond_text(req, 503, "Service Unavailable\n");
	if (d->ops->ready != NULL && !d->ops->ready(d->role_arg, why, sizeof(why)))
		return http_respond_text(req, 503, "Service Unavailable: %s\n", why);
	return http_respond_text(req, 200, "Strata Server is Ready.\n");
}

static int
daemon_reload_endpoint(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	char err[1024];

	if (!flag_bool(d->flags, d->nflags, "web.enable-lifecycle"))
		return http_respond_text(req, 403, "Lifecycle API is not enabled.\n");
	if (daemon_reload(d, err, sizeof(err)) < 0)
		return http_respond_text(req, 500, "failed to reload config: %s\n", err);
	return http_respond_text(req, 200, "%s", "");
}

static int
daemon_quit_endpoint(struct http_request *req, void *arg)
{
	struct daemon *d = arg;

	if (!flag_bool(d->flags, d->nflags, "web.enable-lifecycle"))
		return http_respond_text(req, 403, "Lifecycle API is not enabled.\n");
	atomic_store(&d->quit, true);
	pthread_kill(d->main_th, SIGUSR1);
	return http_respond_text(req, 200, "Requesting termination... Goodbye!\n");
}

static int
daemon_buildinfo(struct http_request *req, void *arg)
{
	struct api_response r;

	(void)arg;
	api_success_begin(&r);
	json_object_begin(&r.w);
	json_key(&r.w, "version");
	json_string(&r.w, PACKAGE_VERSION);
	json_key(&r.w, "revision");
	json_string(&r.w, "");
	json_key(&r.w, "branch");
	json_string(&r.w, "");
	json_key(&r.w, "buildUser");
	json_string(&r.w, "");
	json_key(&r.w, "buildDate");
	json_string(&r.w, __DATE__);
	json_key(&r.w, "goVersion");
	json_string(&r.w, "C11 (strata)");
	json_object_end(&r.w);
	return api_success_end(&r, req);
}

static int
daemon_flags_endpoint(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct api_response r;
	size_t i;

	api_success_begin(&r);
	json_object_begin(&r.w);
	for (i = 0; i < d->nflags; i++) {
		json_key(&r.w, d->flags[i].name);
		json_string(&r.w, d->flags[i].value ? d->flags[i].value : "");
	}
	json_object_end(&r.w);
	return api_success_end(&r, req);
}

static int
daemon_config_endpoint(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct strbuf yaml = STRBUF_INIT;
	struct api_response r;

	pthread_mutex_lock(&d->cfg_mu);
	if (d->cfg != NULL)
		cfg_marshal_yaml(d->cfg, &yaml);
	pthread_mutex_unlock(&d->cfg_mu);
	api_success_begin(&r);
	json_object_begin(&r.w);
	json_key(&r.w, "yaml");
	json_string_n(&r.w, strbuf_cstr(&yaml), yaml.len);
	json_object_end(&r.w);
	strbuf_free(&yaml);
	return api_success_end(&r, req);
}

static int
daemon_runtimeinfo(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct api_response r;
	char ts[40], cwd[1024];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		cwd[0] = '\0';
	api_success_begin(&r);
	json_object_begin(&r.w);
	json_key(&r.w, "startTime");
	json_string(&r.w, time_format_rfc3339(d->start_ms, ts, sizeof(ts)));
	json_key(&r.w, "CWD");
	json_string(&r.w, cwd);
	pthread_mutex_lock(&d->cfg_mu);
	json_key(&r.w, "reloadConfigSuccess");
	json_bool(&r.w, d->last_reload_ok);
	json_key(&r.w, "lastConfigTime");
	json_string(&r.w, time_format_rfc3339(d->cfg_loaded_ms, ts, sizeof(ts)));
	pthread_mutex_unlock(&d->cfg_mu);
	json_key(&r.w, "storageRetention");
	json_string(&r.w, flag_str(d->flags, d->nflags, "storage.tsdb.retention.time"));
	json_object_end(&r.w);
	return api_success_end(&r, req);
}

static int
daemon_routes(struct daemon *d)
{
	static const struct {
		unsigned methods;
		const char *path;
		http_handler_fn fn;
	} routes[] = {
		{ HTTP_GET, "/-/healthy", daemon_healthy },
		{ HTTP_GET, "/-/ready", daemon_ready },
		{ HTTP_POST | HTTP_PUT, "/-/reload", daemon_reload_endpoint },
		{ HTTP_POST | HTTP_PUT, "/-/quit", daemon_quit_endpoint },
		{ HTTP_GET, "/api/v1/status/buildinfo", daemon_buildinfo },
		{ HTTP_GET, "/api/v1/status/flags", daemon_flags_endpoint },
		{ HTTP_GET, "/api/v1/status/config", daemon_config_endpoint },
		{ HTTP_GET, "/api/v1/status/runtimeinfo", daemon_runtimeinfo },
	};
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (http_server_route(d->http, routes[i].methods, routes[i].path,
		    HTTP_ROUTE_GZIP, routes[i].fn, d) < 0)
			return -1;
	return 0;
}

int
daemon_run(struct daemon *d)
{
	char err[1024];
	sigset_t set;
	int status = 0;

	/* Signals go to this thread only: block them before any other
	 * thread exists so every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d->main_th = pthread_self();
	signal(SIGPIPE, SIG_IGN);

	if (daemon_reload(d, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: error loading config (--config.file=%s): %s\n",
		    daemon_name(d), flag_str(d->flags, d->nflags, "config.file"), err);
		return 1;
	}
	if (daemon_routes(d) < 0 ||
	    (d->ops->routes != NULL && d->ops->routes(d->role_arg, d, d->http, err, sizeof(err)) < 0)) {
		fprintf(stderr, "%s: %s\n", daemon_name(d), err);
		return 1;
	}
	if (http_server_start(d->http, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", daemon_name(d), err);
		status = 1;
		goto out;
	}
	log_msg(LOG_INFO, "web", "Start listening for connections on port %d",
	    http_server_port(d->http));
	atomic_store(&d->ready, true);
	log_kv(LOG_INFO, "main", "Server is ready to receive web requests.", (char *)NULL);

	while (!atomic_load(&d->quit)) {
		/* woken by a signal: SIGUSR1 from /-/quit, the rest from outside */
		struct timespec ts = { 10, 0 };
		int sig = sigtimedwait(&set, NULL, &ts);

		if (sig == SIGHUP) {
			daemon_reload(d, err, sizeof(err));
		} else if (sig == SIGINT || sig == SIGTERM) {
			log_kv(LOG_WARN, "main", "Received termination request, exiting gracefully...",
			    "signal", sig == SIGINT ? "interrupt" : "terminated", (char *)NULL);
			break;
		}
	}
out:
	atomic_store(&d->ready, false);
	http_server_stop(d->http);
	if (d->ops->stop != NULL)
		d->ops->stop(d->role_arg);
	log_kv(LOG_INFO, "main", "See you next time!", (char *)NULL);
	return status;
}

int
daemon_main(enum daemon_role role, int argc, char **argv,
    const struct daemon_role_ops *ops, void *role_arg)
{
	struct daemon *d = NULL;
	struct flag *flags;
	size_t nflags;
	char err[1024];
	int status = 0;

	flags = daemon_flags_new(role, &nflags);
	if (daemon_parse_args(role, flags, nflags, argc, argv, &status) < 0) {
		daemon_flags_free(flags, nflags);
		return status;
	}
	if (ops->setup != NULL && ops->setup(role_arg, flags, nflags, err, sizeof(err)) < 0)
		goto fail;
	d = daemon_new(role, flags, nflags, ops, role_arg, err, sizeof(err));
	flags = NULL;	/* the daemon owns them now, even on failure */
	if (d == NULL)
		goto fail;
	status = daemon_run(d);
	goto out;
fail:
	fprintf(stderr, "%s: %s\n", role_name(role), err);
	status = 1;
out:
	if (ops->halt != NULL)
		ops->halt(role_arg);
	daemon_free(d);		/* stops the server: no handler runs after this */
	if (flags != NULL)
		daemon_flags_free(flags, nflags);
	if (ops->cleanup != NULL)
		ops->cleanup(role_arg);
	return status;
}
