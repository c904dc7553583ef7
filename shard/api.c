/* shard/api.c - GET /api/v1/shard and the strata_shard_* self-metrics.
 *
 * Stateless: every request or scrape takes a members snapshot and counts
 * the targets under the current view (shard_count_targets), so what is
 * reported is what the scrape manager decides on its next resync. Runs on
 * server threads; everything it reads is thread-safe in shard/ itself.
 */
#include "config.h"

#include "shard/api.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/metrics.h"
#include "http/json.h"
#include "shard/members.h"
#include "util/mem.h"
#include "util/time.h"

/* The self-metrics, written once: name, type, help. */
#define SHARD_METRICS(X) \
	X(INFO, "strata_shard_info", "gauge", \
	    "Shard settings of this leaf (mode and settings fingerprint as labels); always 1.") \
	X(TARGETS, "strata_shard_targets", "gauge", \
	    "Targets after target relabeling, owned by this leaf or not.") \
	X(OWNED, "strata_shard_targets_owned", "gauge", \
	    "Targets this leaf owns and scrapes.") \
	X(CHANGES, "strata_shard_ownership_changes_total", "counter", \
	    "Times the set of live members changed, each re-running target ownership.") \
	X(MISMATCH, "strata_shard_config_mismatch", "gauge", \
	    "Peers whose shard settings fingerprint differs from this leaf's.") \
	X(MEMBERS, "strata_shard_members", "gauge", \
	    "Members of the dynamic shard group (--shard.peers).") \
	X(ALIVE, "strata_shard_members_alive", "gauge", \
	    "Members this leaf counts as live, itself included.") \
	X(MEMBER_UP, "strata_shard_member_up", "gauge", \
	    "Whether this leaf counts the member as live (1) or not (0).") \
	X(PROBES, "strata_shard_probes_total", "counter", \
	    "Probes of the member's /-/ready.") \
	X(PROBE_FAILURES, "strata_shard_probe_failures_total", "counter", \
	    "Probes of the member's /-/ready that failed.")

enum shard_metric {
#define X(id, name, type, help) SM_##id,
	SHARD_METRICS(X)
#undef X
};

static const struct {
	const char *name, *type, *help;
} shard_metric_defs[] = {
#define X(id, name, type, help) [SM_##id] = { name, type, help },
	SHARD_METRICS(X)
#undef X
};

static const char *
sm(struct strbuf *out, enum shard_metric id)
{
	metrics_family(out, shard_metric_defs[id].name, shard_metric_defs[id].type,
	    shard_metric_defs[id].help);
	return shard_metric_defs[id].name;
}

/* shard_api_per_len returns how many per-member counts s reports. */
static size_t
shard_api_per_len(const struct shard *s)
{
	switch (shard_mode(s)) {
	case SHARD_NONE:
		return 1;
	case SHARD_STATIC:
		return shard_static_count(s) <= SHARD_STATIC_LIST_MAX ?
		    (size_t)shard_static_count(s) : 0;
	case SHARD_DYNAMIC:
		return shard_nmembers(s);
	}
	return 0;
}

static void
shard_api_time(struct json_writer *w, int64_t ms)
{
	char buf[40];

	if (ms <= 0) {
		json_null(w);
		return;
	}
	json_string(w, time_format_go(ms, buf, sizeof(buf)));
}

void
shard_api_write(struct shard *s, struct json_writer *w)
{
	size_t nper = shard_api_per_len(s), n = shard_nmembers(s), i, nlive = 0;
	uint64_t *per = mem_calloc(nper > 0 ? nper : 1, sizeof(*per));
	uint64_t total = 0, owned = 0;
	bool have_counts = shard_count_targets(s, &total, &owned, per) == 0;
	struct member_info *mi = NULL;
	bool *live = NULL;
	size_t mismatch = 0;
	int64_t interval_ms, hold_ms;
	unsigned dead_after;
	const char *rname, *rvalue;
	char dur[40];
	struct strbuf reason = STRBUF_INIT;

	if (shard_mode(s) == SHARD_DYNAMIC) {
		mi = mem_calloc(n, sizeof(*mi));
		live = mem_calloc(n, sizeof(*live));
		members_snapshot(shard_members(s), mi);
		nlive = shard_live(s, live);
		for (i = 0; i < n; i++)
			mismatch += mi[i].fingerprint_match == 0;
	}
	shard_probe_settings(s, &interval_ms, &dead_after, &hold_ms);

	json_object_begin(w);
	/* First, so that a peer reading only the head of the answer finds it. */
	json_key(w, "fingerprint");
	json_string(w, shard_fingerprint(s));
	json_key(w, "mode");
	json_string(w, shard_mode_name(shard_mode(s)));
	json_key(w, "hash");
	switch (shard_mode(s)) {
	case SHARD_NONE:
		json_null(w);
		break;
	case SHARD_STATIC:
		json_string(w, "hashmod (MD5 of __address__, bytes 8..15 big-endian, modulo count)");
		break;
	case SHARD_DYNAMIC:
		json_string(w, "rendezvous: XXH3_64bits_withSeed(__address__, XXH3_64bits(member URL)), highest wins");
		break;
	}
	if (shard_mode(s) == SHARD_STATIC) {
		json_key(w, "shardCount");
		json_uint(w, shard_static_count(s));
		json_key(w, "shardIndex");
		json_uint(w, shard_static_index(s));
	}
	if (shard_mode(s) == SHARD_DYNAMIC) {
		json_key(w, "self");
		json_string(w, shard_member_url(s, shard_self(s)));
	}
	json_key(w, "replicationFactor");
	json_uint(w, shard_replication_factor(s));
	json_key(w, "replicaLabel");
	if (shard_replica_label(s, &rname, &rvalue)) {
		json_object_begin(w);
		json_key(w, "name");
		json_string(w, rname);
		json_key(w, "value");
		json_string(w, rvalue);
		json_object_end(w);
	} else {
		json_null(w);
	}
	if (shard_mode(s) == SHARD_DYNAMIC) {
		json_key(w, "probeInterval");
		json_string(w, time_format_duration(interval_ms, dur, sizeof(dur)));
		json_key(w, "probeTimeout");
		json_string(w, time_format_duration(interval_ms, dur, sizeof(dur)));
		json_key(w, "deadAfter");
		json_uint(w, dead_after);
		json_key(w, "holdDown");
		json_string(w, time_format_duration(hold_ms, dur, sizeof(dur)));
		json_key(w, "membersAlive");
		json_uint(w, nlive);
	}
	json_key(w, "ownershipChanges");
	json_uint(w, shard_changes(s));
	json_key(w, "configMismatch");
	json_uint(w, mismatch);
	json_key(w, "targets");
	if (have_counts)
		json_uint(w, total);
	else
		json_null(w);
	json_key(w, "targetsOwned");
	if (have_counts)
		json_uint(w, owned);
	else
		json_null(w);
	json_key(w, "share");
	if (have_counts)
		json_double(w, total > 0 ? (double)owned / (double)total : 0);
	else
		json_null(w);

	/* degraded: what the network (not the configuration) is doing to us */
	json_key(w, "degradedReasons");
	json_array_begin(w);
	if (shard_mode(s) == SHARD_DYNAMIC) {
		if (nlive < n) {
			strbuf_reset(&reason);
			strbuf_printf(&reason, "%zu of %zu members not live", n - nlive, n);
			json_string(w, reason.buf);
		}
		if (nlive < shard_replication_factor(s)) {
			strbuf_reset(&reason);
			strbuf_printf(&reason, "fewer live members (%zu) than the replication factor (%u)",
			    nlive, shard_replication_factor(s));
			json_string(w, reason.buf);
		}
		if (mismatch > 0) {
			strbuf_reset(&reason);
			strbuf_printf(&reason, "shard settings differ from %zu peer%s", mismatch,
			    mismatch == 1 ? "" : "s");
			json_string(w, reason.buf);
		}
		for (i = 0; i < n; i++) {
			if (mi[i].self || !mi[i].live || mi[i].fingerprint_error[0] == '\0' ||
			    mi[i].state == MEMBER_UNKNOWN)
				continue;
			strbuf_reset(&reason);
			strbuf_printf(&reason, "cannot read the shard settings of %s: %s",
			    mi[i].url, mi[i].fingerprint_error);
			json_string(w, reason.buf);
		}
	}
	json_array_end(w);

	json_key(w, "members");
	json_array_begin(w);
	if (shard_mode(s) == SHARD_DYNAMIC) {
		for (i = 0; i < n; i++) {
			json_object_begin(w);
			json_key(w, "url");
			json_string(w, mi[i].url);
			json_key(w, "self");
			json_bool(w, mi[i].self);
			json_key(w, "state");
			json_string(w, mi[i].self ? "alive" : member_state_name(mi[i].state));
			json_key(w, "live");
			json_bool(w, live[i]);
			json_key(w, "stateSince");
			shard_api_time(w, mi[i].state_since);
			json_key(w, "lastProbe");
			shard_api_time(w, mi[i].last_probe);
			json_key(w, "lastProbeDuration");
			json_double(w, mi[i].last_probe_s);
			json_key(w, "lastError");
			json_string(w, mi[i].last_error);
			json_key(w, "consecutiveFailures");
			json_uint(w, mi[i].fails);
			json_key(w, "fingerprint");
			if (mi[i].fingerprint[0] != '\0')
				json_string(w, mi[i].fingerprint);
			else
				json_null(w);
			json_key(w, "fingerprintMatch");
			if (mi[i].fingerprint_match < 0)
				json_null(w);
			else
				json_bool(w, mi[i].fingerprint_match == 1);
			json_key(w, "fingerprintError");
			json_string(w, mi[i].fingerprint_error);
			json_key(w, "targetsOwned");
			if (have_counts)
				json_uint(w, per[i]);
			else
				json_null(w);
			json_object_end(w);
		}
	} else if (shard_mode(s) == SHARD_STATIC) {
		for (i = 0; i < nper; i++) {
			json_object_begin(w);
			json_key(w, "index");
			json_uint(w, i);
			json_key(w, "self");
			json_bool(w, i == shard_static_index(s));
			json_key(w, "targetsOwned");
			if (have_counts)
				json_uint(w, per[i]);
			else
				json_null(w);
			json_object_end(w);
		}
	}
	json_array_end(w);
	json_object_end(w);

	strbuf_free(&reason);
	mem_free(per);
	mem_free(mi);
	mem_free(live);
}

static int
shard_api_handle(struct http_request *req, void *arg)
{
	struct api_response r;

	api_success_begin(&r);
	shard_api_write(arg, &r.w);
	return api_success_end(&r, req);
}

int
shard_api_route(struct shard *s, struct http_server *srv)
{
	return http_server_route(srv, HTTP_GET, "/api/v1/shard", HTTP_ROUTE_GZIP,
	    shard_api_handle, s);
}

void
shard_api_metrics(void *arg, struct strbuf *out)
{
	struct shard *s = arg;
	uint64_t total = 0, owned = 0;
	const char *name;
	size_t n = shard_nmembers(s), i;
	struct member_info *mi;
	bool *live;
	size_t nlive, mismatch = 0;

	name = sm(out, SM_INFO);
	metrics_sample(out, name, 1, "mode", shard_mode_name(shard_mode(s)),
	    "fingerprint", shard_fingerprint(s), (char *)NULL);
	if (shard_count_targets(s, &total, &owned, NULL) == 0) {
		name = sm(out, SM_TARGETS);
		metrics_sample(out, name, (double)total, (char *)NULL);
		name = sm(out, SM_OWNED);
		metrics_sample(out, name, (double)owned, (char *)NULL);
	}
	name = sm(out, SM_CHANGES);
	metrics_sample(out, name, (double)shard_changes(s), (char *)NULL);
	if (shard_mode(s) != SHARD_DYNAMIC) {
		name = sm(out, SM_MISMATCH);
		metrics_sample(out, name, 0, (char *)NULL);
		return;
	}

	mi = mem_calloc(n, sizeof(*mi));
	live = mem_calloc(n, sizeof(*live));
	members_snapshot(shard_members(s), mi);
	nlive = shard_live(s, live);
	for (i = 0; i < n; i++)
		mismatch += mi[i].fingerprint_match == 0;
	name = sm(out, SM_MISMATCH);
	metrics_sample(out, name, (double)mismatch, (char *)NULL);
	name = sm(out, SM_MEMBERS);
	metrics_sample(out, name, (double)n, (char *)NULL);
	name = sm(out, SM_ALIVE);
	metrics_sample(out, name, (double)nlive, (char *)NULL);
	name = sm(out, SM_MEMBER_UP);
	for (i = 0; i < n; i++)
		metrics_sample(out, name, live[i] ? 1 : 0, "member", mi[i].url, (char *)NULL);
	name = sm(out, SM_PROBES);
	for (i = 0; i < n; i++)
		if (!mi[i].self)
			metrics_sample(out, name, (double)mi[i].probes, "member", mi[i].url, (char *)NULL);
	name = sm(out, SM_PROBE_FAILURES);
	for (i = 0; i < n; i++)
		if (!mi[i].self)
			metrics_sample(out, name, (double)mi[i].failures, "member", mi[i].url, (char *)NULL);
	mem_free(mi);
	mem_free(live);
}
