/* lib/daemon/flags.c - the daemons' flag table and argument handling. */
#include "config.h"

#include "daemon/flags.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

static const struct flag daemon_common_flags[] = {
	{ "config.file", FLAG_STRING, "prometheus.yml", "Prometheus configuration file path.", NULL, false },
	{ "web.listen-address", FLAG_STRING, "0.0.0.0:9090", "Address to listen on for the web interface, API and telemetry.", NULL, false },
	{ "web.config.file", FLAG_STRING, "", "Path to a web configuration file (TLS, basic auth).", NULL, false },
	{ "web.enable-lifecycle", FLAG_BOOL, "false", "Enable shutdown and reload via HTTP request.", NULL, false },
	{ "web.enable-remote-write-receiver", FLAG_BOOL, "false", "Enable API endpoint accepting remote write requests.", NULL, false },
	{ "web.external-url", FLAG_STRING, "", "The URL under which strata is reachable from outside.", NULL, false },
	{ "storage.tsdb.path", FLAG_STRING, "data/", "Base path for metrics storage.", NULL, false },
	{ "storage.tsdb.retention.time", FLAG_DURATION, "15d", "How long to retain samples in storage.", NULL, false },
	{ "storage.tsdb.retention.size", FLAG_BYTES, "0B", "Maximum number of bytes of storage blocks to retain (0B: no limit).", NULL, false },
	{ "storage.tsdb.out-of-order-time-window", FLAG_DURATION, "0s", "How far in the past scraped out-of-order samples are accepted.", NULL, false },
	{ "query.lookback-delta", FLAG_DURATION, "5m", "The maximum lookback duration for retrieving metrics during expression evaluations and federation.", NULL, false },
	{ "query.timeout", FLAG_DURATION, "2m", "Maximum time a query may take before being aborted.", NULL, false },
	{ "query.max-samples", FLAG_INT, "50000000", "Maximum number of samples a single query can load into memory.", NULL, false },
	{ "query.max-concurrency", FLAG_INT, "20", "Maximum number of queries executed concurrently.", NULL, false },
	{ "rules.alert.for-outage-tolerance", FLAG_DURATION, "1h", "Max time to tolerate prometheus outage for restoring \"for\" state of alert.", NULL, false },
	{ "rules.alert.for-grace-period", FLAG_DURATION, "10m", "Minimum duration between alert and restored \"for\" state. This is maintained only for alerts with configured \"for\" time greater than grace period.", NULL, false },
	{ "rules.alert.resend-delay", FLAG_DURATION, "1m", "Minimum amount of time to wait before resending an alert to Alertmanager.", NULL, false },
	{ "alertmanager.notification-queue-capacity", FLAG_INT, "10000", "The capacity of the queue for pending Alertmanager notifications.", NULL, false },
	{ "log.level", FLAG_STRING, "info", "Only log messages with the given severity or above: debug, info, warn, error.", NULL, false },
	{ "log.format", FLAG_STRING, "logfmt", "Output format of log messages: logfmt or json.", NULL, false },
};

static const struct flag daemon_leaf_flags[] = {
	{ "shard.count", FLAG_INT, "1", "Static sharding: number of shards (hashmod of __address__).", NULL, false },
	{ "shard.index", FLAG_INT, "0", "Static sharding: the shard this leaf owns, 0 <= index < count.", NULL, false },
	{ "shard.peers", FLAG_STRING, "", "Dynamic sharding: comma-separated URLs of every leaf of the group, itself included.", NULL, false },
	{ "shard.self", FLAG_STRING, "", "Dynamic sharding: this leaf's URL as it appears in --shard.peers.", NULL, false },
	{ "shard.replication-factor", FLAG_INT, "1", "Number of live leaves that scrape each target.", NULL, false },
	{ "shard.replica-label", FLAG_STRING, "leaf_replica", "External label naming this leaf when targets are replicated.", NULL, false },
	{ "shard.probe-interval", FLAG_DURATION, "1s", "Dynamic sharding: how often each peer's /-/ready is probed; a probe times out after the same time.", NULL, false },
	{ "shard.dead-after", FLAG_INT, "3", "Dynamic sharding: consecutive failed probes after which a peer is dead and its targets move.", NULL, false },
	{ "shard.hold-down", FLAG_DURATION, "30s", "Dynamic sharding: how long a dead peer must keep answering before it owns targets again.", NULL, false },
};

static const struct flag daemon_central_flags[] = {
	{ "peer.url", FLAG_STRING, "", "URL of the other replica of the central pair, for gap repair.", NULL, false },
	{ "dedup.replica-label", FLAG_STRING, "leaf_replica", "Label whose values mark replicas of one series; such series are stored once.", NULL, false },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct flag *
daemon_flags_new(enum daemon_role role, size_t *n)
{
	const struct flag *extra = role == DAEMON_LEAF ? daemon_leaf_flags : daemon_central_flags;
	size_t nextra = role == DAEMON_LEAF ? NELEM(daemon_leaf_flags) : NELEM(daemon_central_flags);
	struct flag *t = mem_calloc(NELEM(daemon_common_flags) + nextra, sizeof(*t));

	memcpy(t, daemon_common_flags, sizeof(daemon_common_flags));
	memcpy(t + NELEM(daemon_common_flags), extra, nextra * sizeof(*t));
	*n = NELEM(daemon_common_flags) + nextra;
	return t;
}

void
daemon_flags_free(struct flag *flags, size_t n)
{
	if (flags == NULL)
		return;
	flag_free(flags, n);
	mem_free(flags);
}

int
daemon_parse_args(enum daemon_role role, struct flag *flags, size_t n,
    int argc, char **argv, int *status)
{
	const char *prog = role == DAEMON_LEAF ? "strata-leaf" : "strata-central";
	char err[256];
	size_t nargs;
	int rc;

	rc = flag_parse(flags, n, argc, argv, NULL, 0, &nargs, err, sizeof(err));
	switch (rc) {
	case FLAG_HELP:
		flag_usage(stdout, role == DAEMON_LEAF ? "strata-leaf [<flags>]" : "strata-central [<flags>]",
		    role == DAEMON_LEAF ?
		    "The strata leaf: scrapes its shard of the targets, stores them and serves /federate." :
		    "The strata central: federates from every leaf, stores aggregates, repairs gaps from its peer.",
		    flags, n);
		*status = 0;
		return -1;
	case FLAG_VERSION:
		printf("%s, version %s\n", prog, PACKAGE_VERSION);
		*status = 0;
		return -1;
	case FLAG_ERROR:
		fprintf(stderr, "%s: error: %s, try --help\n", prog, err);
		*status = 2;
		return -1;
	}
	if (log_setup(flag_str(flags, n, "log.level"), flag_str(flags, n, "log.format"),
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: error: %s\n", prog, err);
		*status = 2;
		return -1;
	}
	return 0;
}
