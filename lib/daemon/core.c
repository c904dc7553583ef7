/* lib/daemon/core.c - the store, scraping, rules, remote write and the read
 * endpoints of a server.
 *
 * Remote write: a remote_writer (lib/remote/write) holds the queues of the
 * configuration's remote_write entries; a remote feed (lib/remote/feed)
 * observes every commit of the store and hands the committed samples to
 * it, so whatever the store takes in (scrapes, pulls, rule results, peer
 * repair, the remote-write receiver, the central's deduplication) is
 * shipped. The feed observes only while at least one entry is configured.
 * At shutdown, once nothing appends any more, the feed hands over what it
 * holds and the writer sends it for up to its flush deadline (1m). */
#include "config.h"

#include "daemon/core.h"

#include <pthread.h>
#include <stdio.h>

#include "api/federate.h"
#include "api/query.h"
#include "api/targets.h"
#include "api/tsdb_status.h"
#include "remote/feed.h"
#include "remote/server.h"
#include "remote/write.h"
#include "api/rules.h"
#include "notify/notify.h"
#include "rules/query.h"
#include "rules/rules.h"
#include "util/log.h"
#include "util/mem.h"

struct core {
	struct tsdb_db *db;
	struct scrape_manager *scrape;
	struct api_federate *federate;
	struct api_metrics *metrics;
	struct api_query *query;
	struct remote_server *remote;	/* /api/v1/read, /api/v1/write */
	bool remote_write;		/* --web.enable-remote-write-receiver */
	struct remote_writer *writer;	/* the remote_write entries */
	struct remote_feed *feed;	/* the store's commits to writer */
	struct promql_storage storage;	/* reads db */

	/* recording and alerting rules (rule_files) */
	struct promql_engine *rules_engine;
	struct rules_manager_opts rules_opts;
	struct rules_manager *rules;
	pthread_mutex_t rules_mu;	/* guards what follows; serialises rule applies */
	const struct cfg *rules_cfg;	/* the running configuration (borrowed) */
	bool rules_hold, rules_started;
	int64_t rules_max_interval_ms;

	/* alerting: the notifier the alerting rules send to (lib/notify) */
	struct notifier *notify;
	char *external_url;		/* --web.external-url as Prometheus computes it */
};

/* Metadata for /api/v1/metadata: the scrape manager's, in lib/api's shape. */
struct core_md {
	void (*emit)(void *ctx, const struct api_metadata *md);
	void *ctx;
};

static void
core_metadata_emit(void *arg, const struct scrape_metadata *md)
{
	struct core_md *x = arg;
	struct api_metadata a;

	a.metric = md->metric;
	a.type = md->type;
	a.help = md->help;
	a.unit = md->unit;
	x->emit(x->ctx, &a);
}

static void
core_metadata(void *arg, const char *metric,
    void (*emit)(void *ctx, const struct api_metadata *md), void *ctx)
{
	struct core_md x = { emit, ctx };

	scrape_manager_metadata(arg, metric, core_metadata_emit, &x);
}

struct core *
core_new(const struct core_opts *o, char *err, size_t errlen)
{
	struct core *c = mem_calloc(1, sizeof(*c));
	struct tsdb_db_opts dbo = { 0 };
	struct scrape_opts so = { 0 };
	struct api_query_opts qo = { 0 };
	struct flag *f = o->flags;
	size_t n = o->nflags;

	dbo.path = flag_str(f, n, "storage.tsdb.path");
	dbo.retention_ms = flag_duration_ms(f, n, "storage.tsdb.retention.time");
	dbo.retention_bytes = flag_bytes(f, n, "storage.tsdb.retention.size");
	dbo.ooo_window_ms = flag_duration_ms(f, n, "storage.tsdb.out-of-order-time-window");
	c->db = tsdb_db_open(&dbo, err, errlen);
	if (c->db == NULL)
		goto fail;
	promql_storage_db(&c->storage, c->db);
	c->writer = remote_writer_new(NULL);
	c->feed = remote_feed_new(c->db, remote_writer_sink, c->writer, NULL);

	so.head = tsdb_db_head(c->db);
	so.user_agent = "strata/" PACKAGE_VERSION;
	so.owns = o->owns;
	so.owns_arg = o->owns_arg;
	so.state_dir = dbo.path;	/* pull cursors beside the data */
	so.pull_lookback_ms = flag_duration_ms(f, n, "query.lookback-delta");
	so.sample_hook = o->sample_hook;
	so.sample_hook_arg = o->sample_hook_arg;
	c->scrape = scrape_manager_new(&so, err, errlen);
	if (c->scrape == NULL)
		goto fail;

	c->federate = api_federate_new(tsdb_db_head(c->db),
	    flag_duration_ms(f, n, "query.lookback-delta"));
	api_federate_set_storage(c->federate, &c->storage);
	qo.engine.lookback_delta = flag_duration_ms(f, n, "query.lookback-delta");
	qo.engine.timeout = flag_duration_ms(f, n, "query.timeout");
	qo.engine.max_samples = (long)flag_int(f, n, "query.max-samples");
	qo.max_concurrency = (int)flag_int(f, n, "query.max-concurrency");
	qo.storage = c->storage;
	qo.metadata = core_metadata;
	qo.metadata_arg = c->scrape;
	c->query = api_query_new(&qo);

	/* Remote read answers from head and blocks; the write receiver is
	 * off unless asked for, as in Prometheus. */
	c->remote = remote_server_new(tsdb_db_head(c->db), NULL);
	remote_server_set_db(c->remote, c->db);
	c->remote_write = flag_bool(f, n, "web.enable-remote-write-receiver");

	/* Alerting: alerts go to the notifier, which sends them on. */
	{
		struct notify_opts no = { 0 };

		c->external_url = notify_external_url(flag_str(f, n, "web.external-url"),
		    flag_str(f, n, "web.listen-address"));
		no.queue_capacity = flag_int(f, n, "alertmanager.notification-queue-capacity");
		no.external_url = c->external_url;
		no.user_agent = "strata/" PACKAGE_VERSION;
		c->notify = notify_new(&no);
	}

	/* Rules: evaluated over the same store, results appended to it. */
	c->rules_engine = promql_engine_new(&qo.engine);
	c->rules_opts.query = rules_query_engine;
	c->rules_opts.engine = c->rules_engine;
	c->rules_opts.storage = &c->storage;
	c->rules_opts.head = tsdb_db_head(c->db);
	c->rules_opts.external_url = c->external_url;
	c->rules_opts.eval_delay_ms = o->rules_eval_delay_ms;
	c->rules_opts.resend_delay_ms = flag_duration_ms(f, n, "rules.alert.resend-delay");
	c->rules_opts.outage_tolerance_ms = flag_duration_ms(f, n, "rules.alert.for-outage-tolerance");
	c->rules_opts.for_grace_period_ms = flag_duration_ms(f, n, "rules.alert.for-grace-period");
	c->rules_opts.notify = notify_send;
	c->rules_opts.notify_arg = c->notify;
	c->rules = rules_manager_new(&c->rules_opts, err, errlen);
	if (c->rules == NULL)
		goto fail;
	pthread_mutex_init(&c->rules_mu, NULL);
	c->rules_hold = o->rules_hold;

	c->metrics = api_metrics_new();
	api_metrics_add(c->metrics, api_metrics_db, c->db);
	api_metrics_add(c->metrics, api_metrics_scrape, c->scrape);
	api_metrics_add(c->metrics, remote_server_collect, c->remote);
	api_metrics_add(c->metrics, remote_writer_collect, c->writer);
	api_metrics_add(c->metrics, remote_feed_collect, c->feed);
	api_metrics_add(c->metrics, api_metrics_rules, c->rules);
	api_metrics_add(c->metrics, notify_collect, c->notify);
	return c;
fail:
	core_free(c);
	return NULL;
}

void
core_free(struct core *c)
{
	if (c == NULL)
		return;
	if (c->rules != NULL) {
		rules_manager_free(c->rules);
		pthread_mutex_destroy(&c->rules_mu);
	}
	if (c->rules_engine != NULL)
		promql_engine_free(c->rules_engine);
	notify_free(c->notify);		/* after the rules: they send to it */
	mem_free(c->external_url);
	scrape_manager_free(c->scrape);	/* no appender outlives the store */
	/* nothing appends any more: ship what was committed */
	remote_feed_free(c->feed);
	remote_writer_free(c->writer);
	api_query_free(c->query);
	api_federate_free(c->federate);
	remote_server_free(c->remote);
	api_metrics_free(c->metrics);
	tsdb_db_close(c->db);
	mem_free(c);
}

/* write_disabled answers /api/v1/write without the receiver, as Prometheus. */
static int
write_disabled(struct http_request *req, void *arg)
{
	(void)arg;
	return http_respond_text(req, 404, "remote write receiver needs to be enabled with "
	    "--web.enable-remote-write-receiver\n");
}

int
core_routes(struct core *c, struct http_server *srv)
{
	if (api_federate_route(c->federate, srv) < 0 ||
	    api_metrics_route(c->metrics, srv) < 0 ||
	    api_targets_route(c->scrape, srv) < 0 ||
	    api_query_route(c->query, srv) < 0 ||
	    api_tsdb_status_route(c->db, srv) < 0 ||
	    api_rules_route(c->rules, srv) < 0 ||
	    notify_route(c->notify, srv) < 0 ||
	    remote_server_route(c->remote, srv, c->remote_write, true) < 0)
		return -1;
	if (!c->remote_write &&
	    http_server_route(srv, HTTP_POST, "/api/v1/write", 0, write_disabled, NULL) < 0)
		return -1;
	return 0;
}

/* rules_check loads cfg's rule files into a scratch manager that never
 * runs, so a bad rule file refuses the whole configuration before anything
 * changes; *max_iv receives the longest group interval (0: no groups). */
static int
rules_check(struct core *c, const struct cfg *cfg, int64_t *max_iv, char *err, size_t errlen)
{
	struct rules_manager_opts o = c->rules_opts;
	struct rules_manager *m;
	struct rules_snapshot *snap;
	int rc;

	o.manual = true;
	m = rules_manager_new(&o, err, errlen);
	if (m == NULL)
		return -1;
	rc = rules_manager_apply(m, cfg, err, errlen);
	*max_iv = 0;
	if (rc == 0) {
		snap = rules_manager_snapshot(m);
		for (size_t i = 0; i < snap->n_groups; i++)
			if (snap->groups[i].interval_ms > *max_iv)
				*max_iv = snap->groups[i].interval_ms;
		rules_snapshot_free(snap);
	}
	rules_manager_free(m);
	return rc;
}

int
core_apply(struct core *c, const struct cfg *cfg, struct labels *ext, char *err, size_t errlen)
{
	int64_t max_iv;
	char rerr[1024];
	struct cfg rw = *cfg;	/* remote write adds the role's external labels */
	struct notify_config *nc;

	if (ext != NULL)
		rw.external_labels = ext;
	if (rules_check(c, cfg, &max_iv, err, errlen) < 0)
		return -1;
	if (remote_writer_check(c->writer, &rw, err, errlen) < 0)
		return -1;
	/* the alerting section: built first (it can fail), installed once
	 * nothing else can */
	nc = notify_prepare(cfg, ext, "strata/" PACKAGE_VERSION, err, errlen);
	if (nc == NULL)
		return -1;
	if (scrape_manager_apply(c->scrape, cfg, err, errlen) < 0) {
		notify_config_free(nc);
		return -1;
	}
	notify_commit(c->notify, nc);
	if (remote_writer_apply(c->writer, &rw, rerr, sizeof(rerr)) < 0)
		log_kv(LOG_ERROR, "remote", "cannot install the remote_write configuration",
		    "err", rerr, (char *)NULL);
	remote_feed_set_active(c->feed, cfg->n_remote_write > 0);
	api_federate_set_external_labels(c->federate, ext);
	remote_server_set_external_labels(c->remote, ext);
	pthread_mutex_lock(&c->rules_mu);
	c->rules_cfg = cfg;
	c->rules_max_interval_ms = max_iv;
	if (!c->rules_hold)
		c->rules_started = true;
	if (c->rules_started && rules_manager_apply(c->rules, cfg, rerr, sizeof(rerr)) < 0)
		log_kv(LOG_ERROR, "rules", "cannot install the rules", "err", rerr, (char *)NULL);
	pthread_mutex_unlock(&c->rules_mu);
	return 0;
}

void
core_rules_start(struct core *c)
{
	char err[1024];

	pthread_mutex_lock(&c->rules_mu);
	if (!c->rules_started) {
		c->rules_started = true;
		if (c->rules_cfg != NULL &&
		    rules_manager_apply(c->rules, c->rules_cfg, err, sizeof(err)) < 0)
			log_kv(LOG_ERROR, "rules", "cannot install the rules", "err", err,
			    (char *)NULL);
	}
	pthread_mutex_unlock(&c->rules_mu);
}

void
core_set_rules_eval_delay(struct core *c, int64_t ms)
{
	rules_manager_set_eval_delay(c->rules, ms);
}

int64_t
core_rules_max_interval_ms(struct core *c)
{
	int64_t iv;

	pthread_mutex_lock(&c->rules_mu);
	iv = c->rules_max_interval_ms;
	pthread_mutex_unlock(&c->rules_mu);
	return iv;
}

struct rules_manager *
core_rules(struct core *c)
{
	return c->rules;
}

void
core_stop(struct core *c)
{
	rules_manager_stop(c->rules);
	notify_stop(c->notify);
	scrape_manager_stop(c->scrape);
}

struct tsdb_db *
core_db(struct core *c)
{
	return c->db;
}

struct scrape_manager *
core_scrape(struct core *c)
{
	return c->scrape;
}

struct api_metrics *
core_metrics(struct core *c)
{
	return c->metrics;
}

const struct promql_storage *
core_storage(struct core *c)
{
	return &c->storage;
}
