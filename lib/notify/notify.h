/* lib/notify/notify.h - the notifier: alerts to Alertmanagers, as Prometheus 2.42.
 *
 * A struct notifier is Prometheus' notifier.Manager. The rule manager hands
 * it the alerts of one alerting rule that need sending (notify_send is a
 * rules_notify_fn: firing alerts every resend delay, resolved ones once);
 * the notifier adds the external labels each alert lacks (absent or empty),
 * applies alerting.alert_relabel_configs (an alert dropped by them is not
 * sent), fills generatorURL (<external URL>/graph?g0.expr=<expr>&g0.tab=1)
 * and puts the alerts on a bounded queue: a call bringing more alerts than
 * the capacity keeps the newest ones, and a full queue drops its oldest
 * alerts; both count in prometheus_notifications_dropped_total. notify_send
 * never waits for the network.
 *
 * One sender thread takes batches of up to 64 alerts off the queue, in
 * order, and POSTs each batch to every discovered Alertmanager of every
 * alerting.alertmanagers entry at once (a thread per extra Alertmanager),
 * as JSON of that entry's api_version (v2: POST <path_prefix>/api/v2/alerts,
 * v1: /api/v1/alerts), with the entry's timeout, basic auth, authorization,
 * TLS and proxy settings (lib/remote/client), and waits for all of them. A
 * batch that no Alertmanager accepted (2xx), including when there is none,
 * counts as dropped; every failed request counts in
 * prometheus_notifications_errors_total{alertmanager=URL}. A slow or dead
 * Alertmanager thus delays the next batch by at most its timeout, while the
 * queue absorbs (and, when full, drops) what the rules keep sending.
 *
 * Discovery: each alertmanagers entry's targets come from static_configs
 * and file_sd_configs (files re-read when they change, checked every
 * sd_check_ms, and every refresh_interval). Each target gets __address__,
 * __scheme__ (the entry's scheme), __alerts_path__ (path_prefix joined with
 * /api/<version>/alerts) and its group's labels; the entry's
 * relabel_configs then keep or drop it; the URL is
 * __scheme__://__address__ + __alerts_path__, listed once per entry.
 * /api/v1/alertmanagers shows the active and dropped URLs.
 *
 * Threads and locks: notify_send runs on rule group threads, notify_apply
 * on the daemon's, the collector and the API handler on server threads,
 * sends on the sender thread (and its short-lived helpers). One mutex
 * guards the queue, the running configuration's alert relabeling and
 * external labels, the published set of Alertmanagers (an immutable,
 * reference-counted view) and the per-URL counters; no network I/O or file
 * read happens under it. File discovery state belongs to the sender thread
 * once a configuration is installed.
 */
#ifndef STRATA_NOTIFY_NOTIFY_H
#define STRATA_NOTIFY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/server.h"
#include "labels/labels.h"
#include "rules/rules.h"
#include "util/strbuf.h"

#define NOTIFY_DEFAULT_QUEUE_CAPACITY 10000	/* --alertmanager.notification-queue-capacity */
#define NOTIFY_MAX_BATCH 64			/* Prometheus 2.42's maxBatchSize */

struct notify_opts {
	int64_t queue_capacity;		/* alerts; 0: 10000 */
	size_t max_batch;		/* alerts per request; 0: 64 */
	const char *external_url;	/* generatorURL prefix (notify_external_url); copied; NULL: none */
	const char *user_agent;		/* copied; NULL: "strata/<version>" */
	int64_t sd_check_ms;		/* how often file_sd files are checked; 0: 5s */
};

struct notifier;
struct notify_config;

/* notify_new starts a notifier with no Alertmanagers (alerts sent before
 * the first configuration are dropped and counted, as in Prometheus).
 * opts may be NULL. Free with notify_free(). */
struct notifier *notify_new(const struct notify_opts *opts);
/* notify_stop stops the sender: an in-flight request is cancelled, queued
 * alerts are discarded, later notify_send calls are ignored. Idempotent. */
void notify_stop(struct notifier *n);
/* notify_free stops and frees n; NULL is a no-op. */
void notify_free(struct notifier *n);

/* notify_prepare builds what notify_commit installs from cfg's alerting
 * section and the external labels ext (may be NULL; a reference is taken),
 * copying everything it needs (cfg may be freed afterwards). Returns the
 * prepared configuration (give it to notify_commit or free it with
 * notify_config_free) or NULL with err (e.g. oauth2, which strata does not
 * implement). */
struct notify_config *notify_prepare(const struct cfg *cfg, const struct labels *ext,
    const char *user_agent, char *err, size_t errlen);
/* notify_commit discovers the Alertmanagers of nc (reading file_sd files)
 * and installs it in place of the running configuration; takes ownership
 * of nc. Queued alerts stay queued. */
void notify_commit(struct notifier *n, struct notify_config *nc);
void notify_config_free(struct notify_config *nc);
/* notify_apply is notify_prepare then notify_commit. Returns 0, or -1 with
 * err and nothing changed. */
int notify_apply(struct notifier *n, const struct cfg *cfg, const struct labels *ext,
    char *err, size_t errlen);

/* notify_send queues alerts (a rules_notify_fn: arg is the notifier, expr
 * the rule's expression for generatorURL). Copies what it keeps; never
 * blocks on I/O. */
void notify_send(void *arg, const char *expr, const struct rules_notify_alert *alerts,
    size_t n);

struct notify_stats {
	size_t queue_length, queue_capacity;
	size_t alertmanagers;		/* discovered and active */
	uint64_t dropped;		/* alerts */
	uint64_t sent, errors;		/* summed over every Alertmanager URL */
};

/* notify_get_stats fills *st. Thread-safe. */
void notify_get_stats(struct notifier *n, struct notify_stats *st);
/* notify_alertmanagers_json appends the "data" object of
 * /api/v1/alertmanagers ({"activeAlertmanagers":[{"url":...}],
 * "droppedAlertmanagers":[...]}) to out. Thread-safe. */
void notify_alertmanagers_json(struct notifier *n, struct strbuf *out);
/* notify_collect is the /metrics collector of a notifier (arg): the
 * prometheus_notifications_* families. */
void notify_collect(void *arg, struct strbuf *out);
/* notify_route registers GET /api/v1/alertmanagers on srv. Returns 0 or -1. */
int notify_route(struct notifier *n, struct http_server *srv);

/* notify_external_url returns the external URL as Prometheus computes it
 * from --web.external-url (flag) and --web.listen-address (listen): flag
 * without trailing slashes, or "http://<hostname>:<port>" when flag is
 * empty. Caller frees with mem_free(). */
char *notify_external_url(const char *flag, const char *listen);

/* notify_format_v2 / notify_format_v1 append the JSON body of one request
 * to out: a list of the given alerts in the shape of Alertmanager API v2
 * (PostableAlerts: times in milliseconds) or v1 (times in RFC 3339 with
 * nanoseconds). generator_url may be NULL (omitted). For tests and the
 * sender. */
struct notify_alert {
	struct labels *labels;		/* one reference */
	struct rulefmt_kv *annotations;	/* sorted by name, owned */
	size_t n_annotations;
	int64_t starts_at, ends_at;	/* ns; RULES_TIME_ZERO: Go's zero time */
	char *generator_url;		/* owned; may be NULL */
};
void notify_format_v2(const struct notify_alert *const *alerts, size_t n, struct strbuf *out);
void notify_format_v1(const struct notify_alert *const *alerts, size_t n, struct strbuf *out);

#endif
