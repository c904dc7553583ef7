/* lib/api/rules.h - GET /api/v1/rules and /api/v1/alerts, and the rule manager's /metrics.
 *
 * The JSON is Prometheus 2.42's, field for field: groups (name, file,
 * rules, interval, limit, evaluationTime, lastEvaluation) with alerting
 * rules (state, name, query, duration, keepFiringFor, labels, annotations,
 * alerts, health, lastError, evaluationTime, lastEvaluation, type) and
 * recording rules (name, query, labels, health, lastError, evaluationTime,
 * lastEvaluation, type); ?type=alert|record filters (any case, anything
 * else is a 400 "invalid parameter \"type\": not supported value ...").
 * /api/v1/alerts lists the pending and firing alerts of every alerting
 * rule (resolved ones, which the manager keeps for 15 minutes for the
 * notifier, are left out as Prometheus does). Times are written in UTC.
 * The data comes from a rule manager snapshot taken per request.
 */
#ifndef STRATA_API_RULES_H
#define STRATA_API_RULES_H

#include "http/server.h"
#include "rules/rules.h"
#include "util/strbuf.h"

/* api_rules_route registers GET /api/v1/rules and GET /api/v1/alerts on srv
 * for m (borrowed; must outlive the server). Returns 0 or -1. */
int api_rules_route(struct rules_manager *m, struct http_server *srv);

/* api_rules_write appends the whole /api/v1/rules response body for s
 * (type: "", "alert" or "record", lower case). */
void api_rules_write(const struct rules_snapshot *s, const char *type, struct strbuf *out);
/* api_alerts_write appends the whole /api/v1/alerts response body for s. */
void api_alerts_write(const struct rules_snapshot *s, struct strbuf *out);

/* api_metrics_rules is the /metrics collector of a struct rules_manager
 * (arg): prometheus_rule_evaluations_total, ..._failures_total and the
 * prometheus_rule_group_* families, labelled rule_group="FILE;NAME". */
void api_metrics_rules(void *arg, struct strbuf *out);

#endif
