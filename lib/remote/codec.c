/* lib/remote/codec.c - Prometheus remote write/read bodies: protobuf + snappy.
 *
 * Messages are packed and unpacked by protobuf-c (code generated from
 * remote.proto at build time) with an allocator on the mem_try_* seam, so a
 * hostile body costs an error, not the process. snappy's C API does the
 * block (de)compression; the decoded size is read from the block header and
 * checked against the caller's limit before anything is allocated.
 *
 * A ReadResponse is written without building it as one protobuf-c tree: each
 * TimeSeries is packed on its own behind its field tag and length, and each
 * QueryResult is framed the same way when it is closed (the two framing
 * bytes sequences are the only protobuf encoding done by hand).
 */
#include "config.h"

#include "remote/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote/remote.pb-c.h"
#include "util/mem.h"

/* --- allocation seam for protobuf-c ------------------------------------- */

static void *
pb_alloc(void *data, size_t size)
{
	(void)data;
	return mem_try_alloc(size);
}

static void
pb_free(void *data, void *p)
{
	(void)data;
	mem_free(p);
}

static ProtobufCAllocator pb_allocator = { pb_alloc, pb_free, NULL };

/* A ProtobufCBuffer appending to a strbuf. */
struct sb_buffer {
	ProtobufCBuffer base;
	struct strbuf *sb;
};

static void
sb_buffer_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
	struct sb_buffer *b = (struct sb_buffer *)buf;

	strbuf_append(b->sb, data, len);
}

static void
pack_into(const ProtobufCMessage *m, struct strbuf *out)
{
	struct sb_buffer b = { { sb_buffer_append }, out };

	strbuf_grow(out, protobuf_c_message_get_packed_size(m));
	protobuf_c_message_pack_to_buffer(m, &b.base);
}

/* put_len appends a length-delimited field header: tag (field, wire type 2)
 * and the length as a varint. */
static void
put_len(struct strbuf *out, unsigned field, size_t len)
{
	uint8_t v[16];
	size_t n = 0;
	uint64_t x = len;

	v[n++] = (uint8_t)((field << 3) | 2);
	do {
		v[n] = (uint8_t)(x & 0x7f);
		x >>= 7;
		if (x != 0)
			v[n] |= 0x80;
		n++;
	} while (x != 0);
	strbuf_append(out, v, n);
}

/* --- snappy --------------------------------------------------------------- */

void
remote_snappy_encode(const void *in, size_t len, struct strbuf *out)
{
	size_t max = snappy_max_compressed_length(len);
	size_t n = max;

	strbuf_grow(out, max);
	if (snappy_compress(in, len, out->buf + out->len, &n) != SNAPPY_OK)
		abort();	/* only fails for a too-small buffer, which max rules out */
	out->len += n;
	out->buf[out->len] = '\0';
}

int
remote_snappy_decode(const void *in, size_t len, size_t max, void **out,
    size_t *outlen, char *err, size_t errlen)
{
	size_t n;
	char *buf;

	*out = NULL;
	*outlen = 0;
	if (snappy_uncompressed_length(in, len, &n) != SNAPPY_OK) {
		snprintf(err, errlen, "snappy: corrupt input");
		return -1;
	}
	if (n > max) {
		snprintf(err, errlen, "snappy: decoded block is too large (%zu bytes, limit %zu)",
		    n, max);
		return -1;
	}
	buf = mem_try_alloc(n);
	if (buf == NULL) {
		snprintf(err, errlen, "snappy: out of memory for %zu decoded bytes", n);
		return -1;
	}
	if (snappy_uncompress(in, len, buf, &n) != SNAPPY_OK) {
		mem_free(buf);
		snprintf(err, errlen, "snappy: corrupt input");
		return -1;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* --- labels --------------------------------------------------------------- */

static bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p, need;
		uint32_t cp;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= need)
			return false;
		for (unsigned i = 1; i <= need; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		p += need + 1;
	}
	return true;
}

static int
label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* describe appends the labels as sent, {a="b", ...}, for messages. */
static void
describe(Prometheus__Label *const *pl, size_t n, char *buf, size_t buflen)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_putc(&sb, '{');
	for (size_t i = 0; i < n && sb.len < 512; i++) {
		if (i > 0)
			strbuf_puts(&sb, ", ");
		strbuf_puts(&sb, pl[i]->name);
		strbuf_putc(&sb, '=');
		labels_quote(pl[i]->value, strlen(pl[i]->value), &sb);
	}
	strbuf_putc(&sb, '}');
	snprintf(buf, buflen, "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
}

/* labels_from_pb validates n wire labels and builds the set (empty values
 * are absent labels). Returns 0 or -1 with the reason in err. */
static int
labels_from_pb(Prometheus__Label *const *pl, size_t n, struct labels **out,
    char *err, size_t errlen)
{
	struct label small[32], *v = small;
	size_t m = 0;
	char desc[600];
	int rc = -1;

	*out = NULL;
	if (n > 32 && (v = mem_try_alloc(n * sizeof(*v))) == NULL) {
		snprintf(err, errlen, "out of memory for %zu labels", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = pl[i]->name, *value = pl[i]->value;
		size_t nlen = strlen(name), vlen = strlen(value);

		if (!labels_is_valid_name(name, nlen) || !utf8_valid(value, vlen) ||
		    (strcmp(name, LABEL_METRIC_NAME) == 0 &&
		    !labels_is_valid_metric_name(value, vlen))) {
			describe(pl, n, desc, sizeof(desc));
			snprintf(err, errlen, "invalid metric name or label names: %s", desc);
			goto out;
		}
		if (vlen == 0)
			continue;
		v[m].name = name;
		v[m].value = value;
		m++;
	}
	qsort(v, m, sizeof(*v), label_cmp);
	for (size_t i = 1; i < m; i++) {
		if (strcmp(v[i - 1].name, v[i].name) == 0) {
			describe(pl, n, desc, sizeof(desc));
			snprintf(err, errlen, "duplicate label name %s in series %s",
			    v[i].name, desc);
			goto out;
		}
	}
	if (m == 0) {
		snprintf(err, errlen, "series without labels");
		goto out;
	}
	*out = labels_new(v, m);
	rc = 0;
out:
	if (v != small)
		mem_free(v);
	return rc;
}

void
remote_series_free(struct remote_series *s, size_t n)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		labels_free(s[i].ls);
		mem_free(s[i].s);
	}
	mem_free(s);
}

/* series_from_pb converts the wire series ts[0..n) that carry float samples
 * into *out (*nout set). Returns 0 or -1 with err. */
static int
series_from_pb(Prometheus__TimeSeries *const *ts, size_t n, struct remote_series **out,
    size_t *nout, size_t *nsamples, size_t *nhist, size_t *nexemplars,
    char *err, size_t errlen)
{
	struct remote_series *v;
	size_t m = 0;

	*out = NULL;
	*nout = 0;
	v = mem_try_alloc((n ? n : 1) * sizeof(*v));
	if (v == NULL) {
		snprintf(err, errlen, "out of memory for %zu series", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct remote_series *s = &v[m];
		struct labels *ls;

		if (labels_from_pb(ts[i]->labels, ts[i]->n_labels, &ls, err, errlen) < 0)
			goto fail;
		if (nhist != NULL)
			*nhist += ts[i]->n_histograms;
		if (nexemplars != NULL)
			*nexemplars += ts[i]->n_exemplars;
		if (ts[i]->n_samples == 0) {
			labels_free(ls);
			continue;
		}
		s->ls = ls;
		s->n = ts[i]->n_samples;
		s->s = mem_try_alloc(s->n * sizeof(*s->s));
		if (s->s == NULL) {
			labels_free(ls);
			snprintf(err, errlen, "out of memory for %zu samples", s->n);
			goto fail;
		}
		for (size_t j = 0; j < s->n; j++) {
			s->s[j].t = ts[i]->samples[j]->timestamp;
			s->s[j].v = ts[i]->samples[j]->value;
		}
		*nsamples += s->n;
		m++;
	}
	*out = v;
	*nout = m;
	return 0;
fail:
	remote_series_free(v, m);
	return -1;
}

/* --- remote write --------------------------------------------------------- */

/* A WriteRequest's protobuf-c tree over borrowed strata series. */
struct write_tree {
	Prometheus__WriteRequest req;
	Prometheus__TimeSeries *ts, **tsp;
	Prometheus__Label *l, **lp;
	Prometheus__Sample *s, **sp;
};

static void
write_tree_build(struct write_tree *w, const struct remote_series *series, size_t n)
{
	size_t nl = 0, ns = 0, il = 0, is = 0;

	for (size_t i = 0; i < n; i++) {
		nl += series[i].ls->n;
		ns += series[i].n;
	}
	prometheus__write_request__init(&w->req);
	w->ts = mem_calloc(n ? n : 1, sizeof(*w->ts));
	w->tsp = mem_calloc(n ? n : 1, sizeof(*w->tsp));
	w->l = mem_calloc(nl ? nl : 1, sizeof(*w->l));
	w->lp = mem_calloc(nl ? nl : 1, sizeof(*w->lp));
	w->s = mem_calloc(ns ? ns : 1, sizeof(*w->s));
	w->sp = mem_calloc(ns ? ns : 1, sizeof(*w->sp));
	for (size_t i = 0; i < n; i++) {
		const struct remote_series *rs = &series[i];
		Prometheus__TimeSeries *t = &w->ts[i];

		prometheus__time_series__init(t);
		t->n_labels = rs->ls->n;
		t->labels = &w->lp[il];
		for (size_t j = 0; j < rs->ls->n; j++, il++) {
			prometheus__label__init(&w->l[il]);
			w->l[il].name = (char *)rs->ls->v[j].name;
			w->l[il].value = (char *)rs->ls->v[j].value;
			w->lp[il] = &w->l[il];
		}
		t->n_samples = rs->n;
		t->samples = &w->sp[is];
		for (size_t j = 0; j < rs->n; j++, is++) {
			prometheus__sample__init(&w->s[is]);
			w->s[is].timestamp = rs->s[j].t;
			w->s[is].value = rs->s[j].v;
			w->sp[is] = &w->s[is];
		}
		w->tsp[i] = t;
	}
	w->req.n_timeseries = n;
	w->req.timeseries = w->tsp;
}

static void
write_tree_free(struct write_tree *w)
{
	mem_free(w->ts);
	mem_free(w->tsp);
	mem_free(w->l);
	mem_free(w->lp);
	mem_free(w->s);
	mem_free(w->sp);
}

void
remote_encode_write_pb(const struct remote_series *series, size_t n, struct strbuf *out)
{
	struct write_tree w;

	write_tree_build(&w, series, n);
	pack_into(&w.req.base, out);
	write_tree_free(&w);
}

void
remote_encode_write(const struct remote_series *series, size_t n, struct strbuf *out)
{
	struct strbuf pb = STRBUF_INIT;

	remote_encode_write_pb(series, n, &pb);
	remote_snappy_encode(pb.buf != NULL ? pb.buf : "", pb.len, out);
	strbuf_free(&pb);
}

int
remote_decode_write_pb(const void *pb, size_t len, struct remote_write_req *out,
    char *err, size_t errlen)
{
	Prometheus__WriteRequest *m;
	int rc;

	memset(out, 0, sizeof(*out));
	m = prometheus__write_request__unpack(&pb_allocator, len, pb);
	if (m == NULL) {
		snprintf(err, errlen, "proto: cannot unmarshal WriteRequest: "
		    "malformed or truncated protobuf (%zu bytes)", len);
		return -1;
	}
	rc = series_from_pb(m->timeseries, m->n_timeseries, &out->series, &out->nseries,
	    &out->nsamples, &out->histograms, &out->exemplars, err, errlen);
	out->metadata = m->n_metadata;
	prometheus__write_request__free_unpacked(m, &pb_allocator);
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
remote_decode_write(const void *body, size_t len, size_t max,
    struct remote_write_req *out, char *err, size_t errlen)
{
	void *pb;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (remote_snappy_decode(body, len, max, &pb, &n, err, errlen) < 0)
		return -1;
	rc = remote_decode_write_pb(pb, n, out, err, errlen);
	mem_free(pb);
	return rc;
}

void
remote_write_req_free(struct remote_write_req *r)
{
	if (r == NULL)
		return;
	remote_series_free(r->series, r->nseries);
	memset(r, 0, sizeof(*r));
}

/* --- remote read: requests ------------------------------------------------ */

static const Prometheus__LabelMatcher__Type op_to_pb[] = {
	[MATCH_EQUAL] = PROMETHEUS__LABEL_MATCHER__TYPE__EQ,
	[MATCH_NOT_EQUAL] = PROMETHEUS__LABEL_MATCHER__TYPE__NEQ,
	[MATCH_REGEX] = PROMETHEUS__LABEL_MATCHER__TYPE__RE,
	[MATCH_NOT_REGEX] = PROMETHEUS__LABEL_MATCHER__TYPE__NRE,
};

void
remote_encode_read_request(const struct remote_query *q, size_t n, struct strbuf *out)
{
	Prometheus__ReadRequest req;
	Prometheus__ReadRequest__ResponseType samples = PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES;
	Prometheus__Query *qs = mem_calloc(n ? n : 1, sizeof(*qs));
	Prometheus__Query **qp = mem_calloc(n ? n : 1, sizeof(*qp));
	Prometheus__LabelMatcher *lm, **lmp;
	struct strbuf pb = STRBUF_INIT;
	size_t nm = 0, k = 0;

	for (size_t i = 0; i < n; i++)
		nm += q[i].nms;
	lm = mem_calloc(nm ? nm : 1, sizeof(*lm));
	lmp = mem_calloc(nm ? nm : 1, sizeof(*lmp));
	prometheus__read_request__init(&req);
	for (size_t i = 0; i < n; i++) {
		prometheus__query__init(&qs[i]);
		qs[i].start_timestamp_ms = q[i].mint;
		qs[i].end_timestamp_ms = q[i].maxt;
		qs[i].n_matchers = q[i].nms;
		qs[i].matchers = &lmp[k];
		for (size_t j = 0; j < q[i].nms; j++, k++) {
			prometheus__label_matcher__init(&lm[k]);
			lm[k].type = op_to_pb[q[i].ms[j]->op];
			lm[k].name = q[i].ms[j]->name;
			lm[k].value = q[i].ms[j]->value;
			lmp[k] = &lm[k];
		}
		qp[i] = &qs[i];
	}
	req.n_queries = n;
	req.queries = qp;
	req.n_accepted_response_types = 1;
	req.accepted_response_types = &samples;
	pack_into(&req.base, &pb);
	remote_snappy_encode(pb.buf != NULL ? pb.buf : "", pb.len, out);
	strbuf_free(&pb);
	mem_free(lm);
	mem_free(lmp);
	mem_free(qs);
	mem_free(qp);
}

void
remote_read_req_free(struct remote_read_req *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		for (size_t j = 0; j < r->q[i].nms; j++)
			matcher_free(r->q[i].ms[j]);
		mem_free(r->q[i].ms);
	}
	mem_free(r->q);
	memset(r, 0, sizeof(*r));
}

int
remote_decode_read_request(const void *body, size_t len, size_t max,
    struct remote_read_req *out, char *err, size_t errlen)
{
	Prometheus__ReadRequest *m;
	void *pb;
	size_t n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (remote_snappy_decode(body, len, max, &pb, &n, err, errlen) < 0)
		return -1;
	m = prometheus__read_request__unpack(&pb_allocator, n, pb);
	mem_free(pb);
	if (m == NULL) {
		snprintf(err, errlen, "proto: cannot unmarshal ReadRequest: "
		    "malformed or truncated protobuf (%zu bytes)", n);
		return -1;
	}
	out->samples_ok = m->n_accepted_response_types == 0;
	for (size_t i = 0; i < m->n_accepted_response_types; i++)
		if (m->accepted_response_types[i] == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES)
			out->samples_ok = true;
	out->q = mem_try_alloc((m->n_queries ? m->n_queries : 1) * sizeof(*out->q));
	if (out->q == NULL) {
		snprintf(err, errlen, "out of memory for %zu queries", m->n_queries);
		goto out;
	}
	for (size_t i = 0; i < m->n_queries; i++) {
		Prometheus__Query *pq = m->queries[i];
		struct remote_query *q = &out->q[i];

		q->mint = pq->start_timestamp_ms;
		q->maxt = pq->end_timestamp_ms;
		q->nms = 0;
		q->ms = mem_try_alloc((pq->n_matchers ? pq->n_matchers : 1) * sizeof(*q->ms));
		out->n = i + 1;
		if (q->ms == NULL) {
			snprintf(err, errlen, "out of memory for %zu matchers", pq->n_matchers);
			goto out;
		}
		for (size_t j = 0; j < pq->n_matchers; j++) {
			Prometheus__LabelMatcher *lm = pq->matchers[j];
			enum matcher_op op;

			switch (lm->type) {
			case PROMETHEUS__LABEL_MATCHER__TYPE__EQ: op = MATCH_EQUAL; break;
			case PROMETHEUS__LABEL_MATCHER__TYPE__NEQ: op = MATCH_NOT_EQUAL; break;
			case PROMETHEUS__LABEL_MATCHER__TYPE__RE: op = MATCH_REGEX; break;
			case PROMETHEUS__LABEL_MATCHER__TYPE__NRE: op = MATCH_NOT_REGEX; break;
			default:
				snprintf(err, errlen, "invalid matcher type %d", (int)lm->type);
				goto out;
			}
			q->ms[j] = matcher_new(op, lm->name, lm->value, err, errlen);
			if (q->ms[j] == NULL)
				goto out;
			q->nms = j + 1;
		}
	}
	out->n = m->n_queries;
	rc = 0;
out:
	prometheus__read_request__free_unpacked(m, &pb_allocator);
	if (rc < 0)
		remote_read_req_free(out);
	return rc;
}

/* --- remote read: responses ----------------------------------------------- */

void
remote_resp_add_series(struct remote_read_resp_builder *b, const struct labels *ls,
    const struct remote_sample *s, size_t n)
{
	struct remote_series rs = { (struct labels *)ls, (struct remote_sample *)s, n };
	struct write_tree w;

	/* One TimeSeries, packed as the tree for a one-series WriteRequest
	 * would hold it, behind QueryResult's field 1. */
	write_tree_build(&w, &rs, 1);
	put_len(&b->result, 1, prometheus__time_series__get_packed_size(&w.ts[0]));
	pack_into(&w.ts[0].base, &b->result);
	write_tree_free(&w);
	b->nseries++;
	b->nsamples += n;
}

void
remote_resp_end_result(struct remote_read_resp_builder *b)
{
	put_len(&b->msg, 1, b->result.len);
	strbuf_append(&b->msg, b->result.buf != NULL ? b->result.buf : "", b->result.len);
	strbuf_reset(&b->result);
}

void
remote_resp_finish(struct remote_read_resp_builder *b, struct strbuf *out)
{
	remote_snappy_encode(b->msg.buf != NULL ? b->msg.buf : "", b->msg.len, out);
	remote_resp_builder_free(b);
}

void
remote_resp_builder_free(struct remote_read_resp_builder *b)
{
	strbuf_free(&b->msg);
	strbuf_free(&b->result);
	b->nseries = b->nsamples = 0;
}

void
remote_read_resp_free(struct remote_read_resp *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		remote_series_free(r->results[i].series, r->results[i].n);
	mem_free(r->results);
	memset(r, 0, sizeof(*r));
}

int
remote_decode_read_response(const void *body, size_t len, size_t max,
    struct remote_read_resp *out, char *err, size_t errlen)
{
	Prometheus__ReadResponse *m;
	void *pb;
	size_t n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (remote_snappy_decode(body, len, max, &pb, &n, err, errlen) < 0)
		return -1;
	m = prometheus__read_response__unpack(&pb_allocator, n, pb);
	mem_free(pb);
	if (m == NULL) {
		snprintf(err, errlen, "proto: cannot unmarshal ReadResponse: "
		    "malformed or truncated protobuf (%zu bytes)", n);
		return -1;
	}
	out->results = mem_try_alloc((m->n_results ? m->n_results : 1) * sizeof(*out->results));
	if (out->results == NULL) {
		snprintf(err, errlen, "out of memory for %zu results", m->n_results);
		goto out;
	}
	for (size_t i = 0; i < m->n_results; i++) {
		struct remote_result *r = &out->results[i];

		if (series_from_pb(m->results[i]->timeseries, m->results[i]->n_timeseries,
		    &r->series, &r->n, &out->nsamples, NULL, NULL, err, errlen) < 0)
			goto out;
		out->n = i + 1;
	}
	rc = 0;
out:
	prometheus__read_response__free_unpacked(m, &pb_allocator);
	if (rc < 0)
		remote_read_resp_free(out);
	return rc;
}
