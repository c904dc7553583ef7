/* lib/remote/read.h - the remote read client: series from a remote /api/v1/read.
 *
 * A struct remote_reader is one remote read endpoint (a remote_read entry
 * of the configuration, or a bare URL such as a peer's). remote_read()
 * sends one ReadRequest (matchers and a time range, SAMPLES answer) and
 * returns the series with their raw samples, value bits as the server
 * stored them (staleness markers included). The central's gap repair uses
 * it to copy a peer's samples for a range it misses.
 *
 * Servers answering as Prometheus does add their external labels to every
 * series they return; pass those labels as strip to get the series as
 * stored (a label is removed where its value equals the given one).
 *
 * Threads: a reader may be used from several threads; requests share one
 * cached libcurl handle (kept alive between calls) under a mutex, and run
 * on a private handle when it is busy. Figures are atomic.
 */
#ifndef STRATA_REMOTE_READ_H
#define STRATA_REMOTE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "labels/labels.h"
#include "labels/matcher.h"
#include "remote/codec.h"

struct remote_reader;

struct remote_read_opts {
	const char *user_agent;		/* default "strata/<version>" */
	size_t max_response;		/* compressed body bound; 0: 256 MiB */
	size_t max_decoded;		/* decoded body bound; 0: 1 GiB */
};

struct remote_reader_stats {
	uint64_t requests, failures, series, samples, bytes;
};

/* remote_reader_new builds a reader for a remote_read entry (copied;
 * url, remote_timeout, headers, HTTP client settings). opts may be NULL.
 * Returns NULL with err (e.g. oauth2, a bad URL); free with
 * remote_reader_free(). */
struct remote_reader *remote_reader_new(const struct cfg_remote_read *rr,
    const struct remote_read_opts *opts, char *err, size_t errlen);
/* remote_reader_new_url builds a reader for url with a timeout and no
 * authentication. */
struct remote_reader *remote_reader_new_url(const char *url, int64_t timeout_ms,
    const struct remote_read_opts *opts, char *err, size_t errlen);
void remote_reader_free(struct remote_reader *r);

/* remote_read fetches the series matching all n matchers (borrowed) with
 * samples in [mint, maxt]. On success *out holds *nout series (labels with
 * strip removed, when strip is not NULL; caller frees with
 * remote_series_free(*out, *nout)) and 0 is returned; on failure -1 with
 * the reason in err: the transport error, "remote read URL: server returned
 * HTTP status 400: <body>", or a decoding error. */
int remote_read(struct remote_reader *r, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, const struct labels *strip,
    struct remote_series **out, size_t *nout, char *err, size_t errlen);

/* remote_reader_stats reads the reader's figures. */
void remote_reader_stats(struct remote_reader *r, struct remote_reader_stats *st);

#endif
