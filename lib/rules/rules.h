/* lib/rules/rules.h - the rule manager: recording and alerting rules on timers.
 *
 * A struct rules_manager runs the rule groups of a configuration's
 * rule_files the way Prometheus 2.42's rules.Manager does:
 *
 * - Each group evaluates on its own timer at slotted instants: with I the
 *   group's interval in ns and h = XXH64 of "file\xff<file>\xffname\xff<name>\xff"
 *   (Prometheus' labels {file, name} hash), the instants are
 *   t = k*I + (h mod I) for integers k: every replica with the same
 *   configuration (same file path and group name) evaluates at the same
 *   instants. The first evaluation is at the first such instant after the
 *   group starts; when evaluations run late, the instants that were skipped
 *   are counted as missed and never evaluated.
 * - Rules run in order; each rule's output is committed to the head before
 *   the next rule runs, so a later rule reads an earlier rule's samples of
 *   the same instant. Samples are written at the instant (ms).
 * - A series a rule wrote last time but not this time gets a staleness
 *   marker at this instant. When a reload removes a group, its series are
 *   marked stale two intervals later (stamped with the removal time),
 *   unless the manager stops first.
 * - A reload keeps a group whose definition did not change running as is;
 *   a changed group copies the alert state and previous series of rules
 *   with the same name and labels.
 * - Alerting rules keep pending, firing and resolved alerts (resolved ones
 *   for 15 minutes), honour for and keep_firing_for, expand label and
 *   annotation templates, and write ALERTS and ALERTS_FOR_STATE. After the
 *   first load, the second evaluation of each group is followed by the
 *   restoration of `for` state from ALERTS_FOR_STATE (outage tolerance 1h,
 *   grace period 10m); until then, as in Prometheus, ALERTS and
 *   ALERTS_FOR_STATE are not written.
 * - limit: a recording rule producing more series, or an alerting rule with
 *   more pending and firing alerts, fails with Prometheus' error (and the
 *   alerting rule forgets its alerts).
 *
 * Threads: one thread per group (none in manual mode, where the caller
 * drives evaluations with rules_manager_run). The manager lock guards the
 * group list; each group's lock guards its rules' state, which snapshots
 * copy. Queries and appends run without the manager lock.
 */
#ifndef STRATA_RULES_RULES_H
#define STRATA_RULES_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "rules/rulefmt.h"
#include "util/strbuf.h"

struct cfg;
struct tsdb_head;
struct promql_engine;
struct promql_storage;

/* One sample of an instant query's result. */
struct rules_sample {
	struct labels *ls;	/* one reference */
	double v;
};

struct rules_vector {
	struct rules_sample *v;
	size_t n, cap;
};

/* rules_vector_push appends a sample, taking ls's reference. */
void rules_vector_push(struct rules_vector *vec, struct labels *ls, double v);
/* rules_vector_free releases the samples and empties vec. */
void rules_vector_free(struct rules_vector *vec);

struct rules_manager_opts;

/* rules_query_fn evaluates expr as an instant query at ts (ms). A scalar
 * result is one sample with no labels; other non-vector results are the
 * error "rule result is not a vector or scalar". cancel (may be NULL) is
 * set when the group stops. Returns 0 with *out filled, or -1 with err. */
typedef int (*rules_query_fn)(const struct rules_manager_opts *o, const char *expr,
    int64_t ts, const volatile bool *cancel, struct rules_vector *out, char *err,
    size_t errlen);

/* An alert as handed to a notifier (Prometheus' notifier.Alert). */
struct rules_notify_alert {
	const struct labels *labels;
	const struct rulefmt_kv *annotations;
	size_t n_annotations;
	int64_t starts_at;	/* ns: when it fired */
	int64_t ends_at;	/* ns: resolved at, or valid until */
};

/* rules_notify_fn receives the alerts of one rule that need sending (as
 * Prometheus' sendAlerts picks them: firing ones every resend delay,
 * resolved ones once). It runs on the group's thread with the group's lock
 * held: it must copy what it keeps and must not call into the manager. */
typedef void (*rules_notify_fn)(void *arg, const char *expr,
    const struct rules_notify_alert *alerts, size_t n);

struct rules_manager_opts {
	/* evaluation: rules_query_engine (lib/rules/query.h) with engine and
	 * storage set, or a test's own function */
	rules_query_fn query;
	struct promql_engine *engine;
	const struct promql_storage *storage;	/* also read to restore `for` state */
	void *query_arg;			/* for other query functions */
	struct tsdb_head *head;			/* where results are appended */
	/* wall clock in ns since the epoch; NULL: the real clock */
	int64_t (*now_ns)(void *arg);
	void *clock_arg;
	bool manual;			/* no threads: rules_manager_run drives */
	/* evaluation delay: the instant t is evaluated (and its results
	 * written at t) only at wall time t + eval_delay_ms, once inputs that
	 * arrive late (a central's lossless pulls, settled 15 s behind their
	 * source) are complete; slots, missed instants and `for` restoration
	 * follow the delayed clock. 0: none, as Prometheus 2.42. */
	int64_t eval_delay_ms;
	const char *external_url;	/* .ExternalURL, externalURL, pathPrefix */
	int64_t outage_tolerance_ms;	/* 0: 1h (--rules.alert.for-outage-tolerance) */
	int64_t for_grace_period_ms;	/* 0: 10m (--rules.alert.for-grace-period) */
	int64_t resend_delay_ms;	/* 0: 1m (--rules.alert.resend-delay) */
	rules_notify_fn notify;		/* may be NULL */
	void *notify_arg;
};

struct rules_manager;

/* rules_manager_new returns a manager with no groups (opts is copied; the
 * pointers in it are borrowed and must outlive the manager), or NULL with
 * err. Free with rules_manager_free(). */
struct rules_manager *rules_manager_new(const struct rules_manager_opts *opts,
    char *err, size_t errlen);
/* rules_manager_apply loads the rule files of cfg (globs, sorted matches;
 * a pattern matching nothing adds nothing, as in Prometheus) with
 * cfg->evaluation_interval_ms and cfg->external_labels, and installs them.
 * On any error nothing changes: returns -1 with "error loading rules,
 * previous rule set restored: <first error> (and N more)" in err and every
 * error logged. Returns 0 on success. cfg is not referenced afterwards. */
int rules_manager_apply(struct rules_manager *m, const struct cfg *cfg, char *err,
    size_t errlen);
/* rules_manager_update is rules_manager_apply with explicit files (already
 * expanded), evaluation interval and external labels (borrowed, may be NULL). */
int rules_manager_update(struct rules_manager *m, int64_t interval_ms,
    const char *const *files, size_t nfiles, const struct labels *external_labels,
    char *err, size_t errlen);
/* rules_manager_set_eval_delay changes the evaluation delay (see
 * rules_manager_opts.eval_delay_ms); groups already waiting keep their
 * wake-up time. Thread-safe. */
void rules_manager_set_eval_delay(struct rules_manager *m, int64_t eval_delay_ms);
/* rules_manager_stop stops every group (in-flight queries are cancelled);
 * pending staleness markers of removed groups are not written. Idempotent. */
void rules_manager_stop(struct rules_manager *m);
/* rules_manager_free stops and frees m; NULL is a no-op. */
void rules_manager_free(struct rules_manager *m);

/* rules_manager_run, in manual mode, runs every evaluation (and pending
 * staleness marking of removed groups) due at the clock's current time
 * (less eval_delay_ms), in group order, and returns the next clock time
 * (ns) something is due (INT64_MAX: nothing). Outside manual mode it does
 * nothing. */
int64_t rules_manager_run(struct rules_manager *m);

/* rules_eval_timestamp returns the latest slotted evaluation instant (ns)
 * at or before now_ns for a group (Prometheus' Group.EvalTimestamp). */
int64_t rules_eval_timestamp(const char *file, const char *name, int64_t interval_ms,
    int64_t now_ns);

/* --- snapshots (for /api/v1/rules, /api/v1/alerts and /metrics) ---------- */

enum rules_health {
	RULES_HEALTH_UNKNOWN,	/* "unknown" */
	RULES_HEALTH_OK,	/* "ok" */
	RULES_HEALTH_ERR,	/* "err" */
};

enum rules_alert_state {
	RULES_INACTIVE,		/* "inactive" */
	RULES_PENDING,		/* "pending" */
	RULES_FIRING,		/* "firing" */
};

#define RULES_TIME_ZERO INT64_MIN	/* Go's zero time.Time */

struct rules_alert_info {
	struct labels *labels;		/* one reference */
	struct rulefmt_kv *annotations;	/* sorted by name */
	size_t n_annotations;
	enum rules_alert_state state;
	double value;
	int64_t active_at;		/* ns */
	int64_t fired_at;		/* ns or RULES_TIME_ZERO */
	int64_t resolved_at;		/* ns or RULES_TIME_ZERO */
	int64_t keep_firing_since;	/* ns or RULES_TIME_ZERO */
};

struct rules_rule_info {
	bool alert;
	char *name;
	char *query;			/* the expression as Prometheus prints it */
	int64_t for_ms, keep_firing_for_ms;
	struct rulefmt_kv *labels;	/* as written, sorted */
	size_t n_labels;
	struct rulefmt_kv *annotations;	/* as written, sorted */
	size_t n_annotations;
	enum rules_health health;
	char *last_error;		/* NULL when none */
	double eval_seconds;		/* duration of the last evaluation */
	int64_t last_eval;		/* ns (wall clock) or RULES_TIME_ZERO */
	enum rules_alert_state state;	/* the highest state of its alerts */
	struct rules_alert_info *alerts;	/* every kept alert, resolved ones too,
					 * sorted by labels */
	size_t n_alerts;
};

struct rules_group_info {
	char *file, *name;
	int64_t interval_ms;
	int64_t limit;
	double eval_seconds;		/* duration of the last iteration */
	int64_t last_eval;		/* ns (wall clock) or RULES_TIME_ZERO */
	struct rules_rule_info *rules;
	size_t n_rules;
	/* self-metrics (prometheus_rule_*) */
	uint64_t evaluations, failures, iterations, missed;
	double last_samples;
};

struct rules_snapshot {
	struct rules_group_info *groups;	/* sorted by file, then name */
	size_t n_groups;
};

/* rules_manager_snapshot copies the state of every group. Free with
 * rules_snapshot_free(). Thread-safe. */
struct rules_snapshot *rules_manager_snapshot(struct rules_manager *m);
void rules_snapshot_free(struct rules_snapshot *s);

/* rules_health_name returns "unknown", "ok" or "err". */
const char *rules_health_name(enum rules_health h);
/* rules_state_name returns "inactive", "pending" or "firing". */
const char *rules_state_name(enum rules_alert_state s);

#endif
