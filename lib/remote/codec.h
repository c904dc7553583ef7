/* lib/remote/codec.h - Prometheus remote write/read bodies: protobuf + snappy.
 *
 * The wire messages are those of lib/remote/remote.proto (Prometheus'
 * prompb), snappy block-compressed as Prometheus sends them. This module
 * turns them into strata values and back: series are struct labels (sorted,
 * interned, validated) with (timestamp, value) samples whose value bits
 * travel unchanged, so NaN payloads and the staleness marker
 * 0x7ff0000000000002 round-trip exactly (only -0 arrives as +0: proto3
 * leaves zero-valued fields out, in Prometheus' encoder too). Matchers are
 * struct matcher.
 *
 * Decoders take bytes chosen by a remote peer: every size they allocate is
 * bounded by a caller's limit or by the input, goes through mem_try_* and
 * fails with a message (never an abort) when memory runs out. Errors read
 * like Prometheus' ("snappy: corrupt input", "proto: ...", "invalid metric
 * name or label names: ...").
 *
 * Stateless; any thread.
 */
#ifndef STRATA_REMOTE_CODEC_H
#define STRATA_REMOTE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "labels/matcher.h"
#include "util/strbuf.h"

#define REMOTE_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* Protocol headers. */
#define REMOTE_WRITE_VERSION "0.1.0"
#define REMOTE_READ_VERSION "0.1.0"
#define REMOTE_CONTENT_TYPE "application/x-protobuf"

/* One sample: milliseconds since the epoch and the value as sent. */
struct remote_sample {
	int64_t t;
	double v;
};

/* A series and some of its samples (ordered by time on the wire). Decoders
 * fill ls with one reference and s with an owned array; encoders borrow both. */
struct remote_series {
	struct labels *ls;
	struct remote_sample *s;
	size_t n;
};

/* A decoded WriteRequest. */
struct remote_write_req {
	struct remote_series *series;	/* owned; free with remote_write_req_free */
	size_t nseries;
	size_t nsamples;		/* float samples over every series */
	size_t histograms;		/* native histogram samples: not kept */
	size_t exemplars;		/* not kept */
	size_t metadata;		/* metadata entries: not kept */
};

/* One query of a ReadRequest: series matching every matcher, samples in
 * [mint, maxt]. */
struct remote_query {
	int64_t mint, maxt;
	struct matcher **ms;		/* owned by a decoded request, borrowed when encoding */
	size_t nms;
};

/* A decoded ReadRequest. */
struct remote_read_req {
	struct remote_query *q;		/* owned */
	size_t n;
	bool samples_ok;		/* the SAMPLES answer is acceptable (listed, or no type listed) */
};

/* One query's answer. */
struct remote_result {
	struct remote_series *series;	/* owned */
	size_t n;
};

/* A decoded ReadResponse: one result per query, in the request's order. */
struct remote_read_resp {
	struct remote_result *results;	/* owned */
	size_t n;
	size_t nsamples;		/* over every result */
};

/* --- snappy (block format) ------------------------------------------------ */

/* remote_snappy_encode appends the snappy block encoding of in[0..len) to out. */
void remote_snappy_encode(const void *in, size_t len, struct strbuf *out);
/* remote_snappy_decode decodes a snappy block of at most max decoded bytes
 * into a new buffer (*out, caller frees with mem_free(); *outlen set).
 * Returns 0, or -1 with "snappy: corrupt input", "snappy: decoded block is
 * too large ..." or an out-of-memory message in err. */
int remote_snappy_decode(const void *in, size_t len, size_t max, void **out,
    size_t *outlen, char *err, size_t errlen);

/* --- remote write --------------------------------------------------------- */

/* remote_encode_write appends a snappy-compressed WriteRequest holding the n
 * series (labels and samples borrowed) to out. */
void remote_encode_write(const struct remote_series *series, size_t n, struct strbuf *out);
/* remote_encode_write_pb appends the same WriteRequest uncompressed (tests). */
void remote_encode_write_pb(const struct remote_series *series, size_t n, struct strbuf *out);
/* remote_decode_write decodes a snappy-compressed WriteRequest (decoded size
 * at most max bytes) into *out, validating every series' labels (names valid
 * and unique, metric name valid, UTF-8 values; empty values dropped as
 * absent). Returns 0, or -1 with the reason in err and *out empty. Caller
 * frees a success with remote_write_req_free(). */
int remote_decode_write(const void *body, size_t len, size_t max,
    struct remote_write_req *out, char *err, size_t errlen);
/* remote_decode_write_pb is remote_decode_write for an uncompressed body. */
int remote_decode_write_pb(const void *pb, size_t len,
    struct remote_write_req *out, char *err, size_t errlen);
void remote_write_req_free(struct remote_write_req *r);

/* --- remote read ---------------------------------------------------------- */

/* remote_encode_read_request appends a snappy-compressed ReadRequest of the
 * n queries (matchers borrowed), accepting the SAMPLES answer, to out. */
void remote_encode_read_request(const struct remote_query *q, size_t n, struct strbuf *out);
/* remote_decode_read_request decodes a snappy-compressed ReadRequest (at
 * most max decoded bytes), compiling the matchers. Returns 0, or -1 with
 * the reason (e.g. a regex that does not compile) in err. Caller frees with
 * remote_read_req_free(). */
int remote_decode_read_request(const void *body, size_t len, size_t max,
    struct remote_read_req *out, char *err, size_t errlen);
void remote_read_req_free(struct remote_read_req *r);

/* A ReadResponse under construction: results are added one after the other,
 * series by series, without building the whole message in memory twice.
 * A plain value; zero it (or REMOTE_READ_RESP_BUILDER_INIT) before use. */
struct remote_read_resp_builder {
	struct strbuf msg;		/* ReadResponse bytes so far */
	struct strbuf result;		/* the open QueryResult's bytes */
	size_t nseries, nsamples;	/* so far, over every result */
};
#define REMOTE_READ_RESP_BUILDER_INIT { STRBUF_INIT, STRBUF_INIT, 0, 0 }

/* remote_resp_add_series adds a series (ls and s borrowed) to the open result. */
void remote_resp_add_series(struct remote_read_resp_builder *b, const struct labels *ls,
    const struct remote_sample *s, size_t n);
/* remote_resp_end_result closes the open result (one per query, even empty). */
void remote_resp_end_result(struct remote_read_resp_builder *b);
/* remote_resp_finish appends the snappy-compressed ReadResponse to out and
 * releases the builder (reusable afterwards). */
void remote_resp_finish(struct remote_read_resp_builder *b, struct strbuf *out);
/* remote_resp_builder_free releases a builder that will not be finished. */
void remote_resp_builder_free(struct remote_read_resp_builder *b);

/* remote_decode_read_response decodes a snappy-compressed ReadResponse (at
 * most max decoded bytes). Returns 0, or -1 with the reason in err. Caller
 * frees with remote_read_resp_free(). */
int remote_decode_read_response(const void *body, size_t len, size_t max,
    struct remote_read_resp *out, char *err, size_t errlen);
void remote_read_resp_free(struct remote_read_resp *r);

/* remote_series_free releases n decoded series (labels and samples) and the
 * array itself. */
void remote_series_free(struct remote_series *s, size_t n);

#endif
