/* lib/remote/server.h - POST /api/v1/write and POST /api/v1/read on a head.
 *
 * The receiving side of both protocols, answering as Prometheus 2.42 does:
 *
 * - /api/v1/write (the remote-write receiver): a snappy-compressed
 *   WriteRequest is decoded and validated whole first (a malformed body, or
 *   a series with invalid or duplicate label names, is a 400 with the
 *   reason and nothing is written), then its float samples are appended
 *   and committed together; 204 on success. Samples the head refuses as
 *   out of order, out of bounds or as a duplicate timestamp are counted and
 *   skipped, not fatal (Prometheus answers 400 for the whole request
 *   there). Native histograms, exemplars and metadata are counted and
 *   dropped. A store failure (WAL) is a 500, so the sender retries.
 * - /api/v1/read: a snappy-compressed ReadRequest; each query's matchers
 *   select series from the head with their raw samples in the query's
 *   range (staleness markers included), answered as one snappy-compressed
 *   ReadResponse (the SAMPLES type). A request accepting only streamed
 *   chunks, a malformed body, a bad regex or more than the sample limit is
 *   a 400. The external labels, when set, are added to every series that
 *   lacks them, and equality matchers on them are satisfied by them, as
 *   Prometheus does.
 *
 * The store: both endpoints take the head pointer (tsdb_head_select and
 * iterators to read, an appender to write). A server given the whole
 * store (remote_server_set_db) reads head and blocks through
 * tsdb_db_select instead, so a remote read reaches everything retained.
 *
 * Stored answers: a read request carrying REMOTE_READ_STORED_HEADER: true
 * (a strata peer copying samples for gap repair) gets the series exactly as
 * stored: no external labels added and no matcher dropped for them.
 *
 * Threads: handlers run on server threads concurrently; reads are limited
 * to read_concurrency at a time (others wait). The external labels are
 * swapped under a mutex; figures are atomic.
 */
#ifndef STRATA_REMOTE_SERVER_H
#define STRATA_REMOTE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/server.h"
#include "labels/labels.h"
#include "tsdb/head.h"
#include "util/strbuf.h"

/* Request header of a read that wants series as stored (value "true"). */
#define REMOTE_READ_STORED_HEADER "X-Strata-Read-Stored"

struct remote_server;
struct tsdb_db;

struct remote_server_opts {
	size_t max_decoded;		/* decoded request bound; 0: 256 MiB */
	uint64_t read_sample_limit;	/* per request; 0: 5e7 (--storage.remote.read-sample-limit) */
	unsigned read_concurrency;	/* 0: 10 (--storage.remote.read-concurrent-limit) */
};

struct remote_server_stats {
	uint64_t write_requests, write_rejected, write_failed;	/* 400s, 500s */
	uint64_t samples_received, samples_appended;
	uint64_t samples_out_of_order;	/* out of order, too old, out of bounds */
	uint64_t samples_duplicate;	/* same timestamp, other value */
	uint64_t histograms_dropped, exemplars_dropped, metadata_dropped;
	uint64_t read_requests, read_rejected, read_series, read_samples;
};

/* remote_server_new serves head (borrowed; must outlive the server's
 * routes). opts may be NULL. Free with remote_server_free() after the HTTP
 * server stopped. */
struct remote_server *remote_server_new(struct tsdb_head *head,
    const struct remote_server_opts *opts);
void remote_server_free(struct remote_server *rs);
/* remote_server_set_db makes reads select from db (borrowed; head and
 * blocks; db's head must be the server's head). Call before the routes
 * serve. */
void remote_server_set_db(struct remote_server *rs, struct tsdb_db *db);
/* remote_server_set_external_labels installs the labels added to read
 * answers (takes a new reference; NULL for none). */
void remote_server_set_external_labels(struct remote_server *rs, struct labels *ext);

/* remote_server_route registers POST /api/v1/write (when write) and POST
 * /api/v1/read (when read) on srv. Returns 0 or -1. */
int remote_server_route(struct remote_server *rs, struct http_server *srv,
    bool write, bool read);

/* remote_server_write handles one write body: returns the HTTP status
 * (204, 400 or 500) and appends the error text to msg for the others. */
int remote_server_write(struct remote_server *rs, const void *body, size_t len,
    struct strbuf *msg);
/* remote_server_read handles one read body: returns 200 with the
 * snappy-compressed ReadResponse appended to out, or 400 with the error
 * text appended to out. */
int remote_server_read(struct remote_server *rs, const void *body, size_t len,
    struct strbuf *out);
/* remote_server_read_stored is remote_server_read answering the series as
 * stored (no external labels). */
int remote_server_read_stored(struct remote_server *rs, const void *body, size_t len,
    struct strbuf *out);

void remote_server_stats(struct remote_server *rs, struct remote_server_stats *st);
/* remote_server_collect appends strata_remote_* families for rs (a struct
 * remote_server *) to out: a /metrics collector. */
void remote_server_collect(void *rs, struct strbuf *out);

#endif
