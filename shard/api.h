/* shard/api.h - GET /api/v1/shard and the strata_shard_* self-metrics.
 *
 * /api/v1/shard answers in Prometheus' envelope with this leaf's shard
 * settings (mode, fingerprint first so peers can read it cheaply), the
 * members with their probe state, the targets owned by each member under
 * this leaf's view, this leaf's share, and a degraded flag with reasons.
 * The metrics collector writes the strata_shard_* families. Both read the
 * shard through its thread-safe accessors and run on server threads.
 */
#ifndef STRATA_SHARD_API_H
#define STRATA_SHARD_API_H

#include "http/server.h"
#include "shard/shard.h"
#include "util/strbuf.h"

/* shard_api_route registers GET /api/v1/shard on srv for s (borrowed; must
 * outlive the server). Returns 0 or -1. */
int shard_api_route(struct shard *s, struct http_server *srv);
/* shard_api_write appends the JSON value of "data" for s to w. */
struct json_writer;
void shard_api_write(struct shard *s, struct json_writer *w);
/* shard_api_metrics is the /metrics collector of a struct shard (arg). */
void shard_api_metrics(void *arg, struct strbuf *out);

#endif
