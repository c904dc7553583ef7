/* tests/unit/test_remote.c - lib/remote: codec, receiver, read endpoint,
 * remote write queue and remote read client.
 *
 * Codec tests round-trip the wire messages (NaN payloads, infinities and the
 * staleness marker bit-exact) and feed malformed, truncated and oversize
 * snappy and protobuf bodies, which must be refused with a message. The
 * server tests run the receiver and the read endpoint on a real head. The
 * client tests run lib/http servers on 127.0.0.1 port 0 that fail on
 * purpose (5xx, 429, 400, connection refused) and check batching, retries,
 * backoff, relabeling and the figures. The feed tests commit to a real
 * store and check what reaches the sink: every applied sample once, in
 * order per series, with its labels (from series records or the head),
 * overflow dropped and counted without stalling commits, unresolved
 * series counted, and the whole path store -> feed -> writer -> receiver
 * bit for bit. Every wait is bounded.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <dirent.h>

#include "config/config.h"
#include "http/server.h"
#include "labels/labels.h"
#include "labels/matcher.h"
#include "remote/client.h"
#include "remote/codec.h"
#include "remote/feed.h"
#include "remote/read.h"
#include "remote/server.h"
#include "remote/write.h"
#include "tsdb/db.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define STALE_BITS UINT64_C(0x7ff0000000000002)

static double
from_bits(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t
bits_of(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

/* mkls builds a label set from "name", "value", ... NULL. */
static struct labels *
mkls(const char *name, ...)
{
	struct label v[16];
	size_t n = 0;
	va_list ap;

	va_start(ap, name);
	for (const char *k = name; k != NULL; k = va_arg(ap, const char *)) {
		v[n].name = k;
		v[n].value = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	return labels_new(v, n);
}

static void
assert_labels_str(const struct labels *ls, const char *want)
{
	struct strbuf sb = STRBUF_INIT;

	labels_format(ls, &sb);
	assert_string_equal(strbuf_cstr(&sb), want);
	strbuf_free(&sb);
}

/* --- protobuf by hand, for hostile inputs ------------------------------------ */

static void
pb_varint(struct strbuf *sb, uint64_t x)
{
	do {
		uint8_t b = x & 0x7f;

		x >>= 7;
		if (x)
			b |= 0x80;
		strbuf_putc(sb, (char)b);
	} while (x);
}

static void
pb_bytes(struct strbuf *sb, unsigned field, const void *p, size_t n)
{
	pb_varint(sb, (uint64_t)field << 3 | 2);
	pb_varint(sb, n);
	strbuf_append(sb, p, n);
}

static void
pb_label(struct strbuf *sb, const char *name, const char *value)
{
	struct strbuf l = STRBUF_INIT;

	pb_bytes(&l, 1, name, strlen(name));
	pb_bytes(&l, 2, value, strlen(value));
	pb_bytes(sb, 1, l.buf, l.len);
	strbuf_free(&l);
}

/* pb_series appends a TimeSeries field with the given labels and one sample. */
static void
pb_series(struct strbuf *req, const char *const *kv, size_t nkv, int64_t t, double v)
{
	struct strbuf ts = STRBUF_INIT, s = STRBUF_INIT;
	uint64_t b = bits_of(v);

	for (size_t i = 0; i + 1 < nkv; i += 2)
		pb_label(&ts, kv[i], kv[i + 1]);
	strbuf_putc(&s, 0x09);	/* field 1, fixed64 */
	for (int i = 0; i < 8; i++)
		strbuf_putc(&s, (char)(b >> (8 * i)));
	strbuf_putc(&s, 0x10);	/* field 2, varint */
	pb_varint(&s, (uint64_t)t);
	pb_bytes(&ts, 2, s.buf, s.len);
	pb_bytes(req, 1, ts.buf, ts.len);
	strbuf_free(&ts);
	strbuf_free(&s);
}

/* --- codec ------------------------------------------------------------------- */

static void
test_snappy_round_trip(void **state)
{
	struct strbuf in = STRBUF_INIT, z = STRBUF_INIT;
	void *out;
	size_t n;
	char err[256];

	(void)state;
	for (int i = 0; i < 100000; i++)
		strbuf_printf(&in, "sample_%d %d\n", i % 97, i);
	remote_snappy_encode(in.buf, in.len, &z);
	assert_true(z.len < in.len / 2);
	assert_int_equal(remote_snappy_decode(z.buf, z.len, in.len, &out, &n, err, sizeof(err)), 0);
	assert_int_equal(n, in.len);
	assert_memory_equal(out, in.buf, n);
	mem_free(out);

	/* one byte under the decoded size: refused before allocating */
	assert_int_equal(remote_snappy_decode(z.buf, z.len, in.len - 1, &out, &n, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "snappy: decoded block is too large"));
	assert_null(out);

	/* truncated and corrupted blocks */
	assert_int_equal(remote_snappy_decode(z.buf, z.len / 2, in.len, &out, &n, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "snappy: corrupt input");
	assert_int_equal(remote_snappy_decode("", 0, in.len, &out, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "snappy: corrupt input");
	assert_int_equal(remote_snappy_decode("\xff\xff\xff\xff\xff\xff", 6, (size_t)1 << 40,
	    &out, &n, err, sizeof(err)), -1);
	z.buf[z.len - 3] ^= 0x55;
	z.buf[5] ^= 0x7f;
	if (remote_snappy_decode(z.buf, z.len, in.len, &out, &n, err, sizeof(err)) == 0) {
		/* a flipped literal byte can still decode: then it must differ */
		assert_int_equal(n, in.len);
		assert_true(memcmp(out, in.buf, n) != 0);
		mem_free(out);
	}
	strbuf_free(&in);
	strbuf_free(&z);
}

static void
test_write_round_trip(void **state)
{
	struct remote_sample s1[] = {
		{ 1000, 1.5 }, { 2000, NAN }, { 3000, INFINITY }, { 4000, -INFINITY },
		{ 5000, 0 }, { 6000, -0.0 }, { 7000, 0 }, { -1, 5e-324 },
	};
	struct remote_sample s2[] = { { INT64_MAX, 1e308 }, { INT64_MIN, -1 } };
	struct remote_series in[2];
	struct remote_write_req wr;
	struct strbuf body = STRBUF_INIT;
	char err[256];

	(void)state;
	s1[1].v = from_bits(UINT64_C(0x7ff8000000000001));	/* a NaN payload */
	s1[6].v = from_bits(STALE_BITS);
	in[0].ls = mkls("__name__", "up", "job", "a", "instance", "h:1", NULL);
	in[0].s = s1;
	in[0].n = 8;
	in[1].ls = mkls("__name__", "x:rate5m", "le", "+Inf", "utf8", "ünï \"q\"\n", NULL);
	in[1].s = s2;
	in[1].n = 2;
	remote_encode_write(in, 2, &body);
	assert_int_equal(remote_decode_write(body.buf, body.len, 1 << 20, &wr, err, sizeof(err)), 0);
	assert_int_equal(wr.nseries, 2);
	assert_int_equal(wr.nsamples, 10);
	for (size_t i = 0; i < 2; i++) {
		assert_true(labels_equal(wr.series[i].ls, in[i].ls));
		assert_int_equal(wr.series[i].n, in[i].n);
		for (size_t j = 0; j < in[i].n; j++) {
			assert_int_equal(wr.series[i].s[j].t, in[i].s[j].t);
			/* proto3 leaves zero-valued fields out, so -0 arrives as
			 * +0 (Prometheus' encoder does the same) */
			if (i == 0 && j == 5)
				assert_int_equal(bits_of(wr.series[i].s[j].v), 0);
			else
				assert_int_equal(bits_of(wr.series[i].s[j].v),
				    bits_of(in[i].s[j].v));
		}
	}
	assert_int_equal(bits_of(wr.series[0].s[6].v), STALE_BITS);
	remote_write_req_free(&wr);
	labels_free(in[0].ls);
	labels_free(in[1].ls);
	strbuf_free(&body);

	/* an empty request is valid */
	remote_encode_write(NULL, 0, &body);
	assert_int_equal(remote_decode_write(body.buf, body.len, 1 << 20, &wr, err, sizeof(err)), 0);
	assert_int_equal(wr.nseries, 0);
	remote_write_req_free(&wr);
	strbuf_free(&body);
}

/* The wire bytes of a tiny request, checked against protobuf's encoding
 * rules by hand: what Prometheus' gogo-generated code reads. */
static void
test_write_wire_bytes(void **state)
{
	struct remote_sample s = { 1, 1.0 };
	struct remote_series in = { NULL, &s, 1 };
	struct strbuf pb = STRBUF_INIT, want = STRBUF_INIT;
	const char *kv[] = { "__name__", "a" };

	(void)state;
	in.ls = mkls("__name__", "a", NULL);
	remote_encode_write_pb(&in, 1, &pb);
	pb_series(&want, kv, 2, 1, 1.0);
	assert_int_equal(pb.len, want.len);
	assert_memory_equal(pb.buf, want.buf, pb.len);
	labels_free(in.ls);
	strbuf_free(&pb);
	strbuf_free(&want);
}

static int
decode_pb(const struct strbuf *pb, char *err, size_t errlen)
{
	struct strbuf z = STRBUF_INIT;
	struct remote_write_req wr;
	int rc;

	remote_snappy_encode(pb->buf != NULL ? pb->buf : "", pb->len, &z);
	rc = remote_decode_write(z.buf, z.len, 1 << 20, &wr, err, errlen);
	if (rc == 0)
		remote_write_req_free(&wr);
	strbuf_free(&z);
	return rc;
}

static void
test_write_malformed(void **state)
{
	struct strbuf pb = STRBUF_INIT;
	char err[1024];
	const char *dup[] = { "__name__", "a", "job", "x", "job", "y" };
	const char *badname[] = { "__name__", "a", "bad-name", "x" };
	const char *badmetric[] = { "__name__", "1a", "job", "x" };
	const char *badutf8[] = { "__name__", "a", "job", "\xff\xfe" };
	const char *empty[] = { "job", "" };
	const char *emptyval[] = { "__name__", "a", "job", "" };

	(void)state;
	/* truncated protobuf: a length running past the end */
	pb_series(&pb, dup, 2, 5, 1);
	pb.len -= 3;
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "proto: cannot unmarshal WriteRequest"));
	strbuf_reset(&pb);

	/* wrong wire type for field 1 */
	strbuf_append(&pb, "\x08\x01", 2);
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "proto:"));
	strbuf_reset(&pb);

	/* garbage */
	strbuf_append(&pb, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	strbuf_reset(&pb);

	pb_series(&pb, dup, 6, 5, 1);
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "duplicate label name job"));
	strbuf_reset(&pb);

	pb_series(&pb, badname, 4, 5, 1);
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	assert_string_equal(err, "invalid metric name or label names: {__name__=\"a\", bad-name=\"x\"}");
	strbuf_reset(&pb);

	pb_series(&pb, badmetric, 4, 5, 1);
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid metric name or label names"));
	strbuf_reset(&pb);

	pb_series(&pb, badutf8, 4, 5, 1);
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid metric name or label names"));
	strbuf_reset(&pb);

	pb_series(&pb, empty, 2, 5, 1);
	assert_int_equal(decode_pb(&pb, err, sizeof(err)), -1);
	assert_string_equal(err, "series without labels");
	strbuf_reset(&pb);

	/* an empty value is an absent label */
	{
		struct strbuf z = STRBUF_INIT;
		struct remote_write_req wr;

		pb_series(&pb, emptyval, 4, 5, 1);
		remote_snappy_encode(pb.buf, pb.len, &z);
		assert_int_equal(remote_decode_write(z.buf, z.len, 1 << 20, &wr, err,
		    sizeof(err)), 0);
		assert_int_equal(wr.nseries, 1);
		assert_labels_str(wr.series[0].ls, "{__name__=\"a\"}");
		remote_write_req_free(&wr);
		strbuf_free(&z);
	}
	strbuf_free(&pb);

	/* not snappy at all */
	assert_int_equal(remote_decode_write("plain text", 10, 1 << 20, &(struct remote_write_req){ 0 },
	    err, sizeof(err)), -1);
}

/* Allocation failures while decoding remote input are errors, not aborts. */
static void
test_decode_oom(void **state)
{
	struct remote_sample s[8];
	struct remote_series in[4];
	struct strbuf body = STRBUF_INIT;
	struct remote_write_req wr;
	char err[256];
	int failed = 0, ok = 0;

	(void)state;
	for (size_t i = 0; i < 8; i++) {
		s[i].t = (int64_t)i;
		s[i].v = (double)i;
	}
	for (size_t i = 0; i < 4; i++) {
		char v[16];

		snprintf(v, sizeof(v), "%zu", i);
		in[i].ls = mkls("__name__", "m", "i", v, NULL);
		in[i].s = s;
		in[i].n = 8;
	}
	remote_encode_write(in, 4, &body);
	for (long k = 0; k < 1000; k++) {
		mem_fail_after(k);
		if (remote_decode_write(body.buf, body.len, 1 << 20, &wr, err, sizeof(err)) == 0) {
			ok++;
			assert_int_equal(wr.nsamples, 4 * 8);
			remote_write_req_free(&wr);
			break;
		}
		failed++;
	}
	mem_fail_after(-1);
	assert_true(failed > 10);
	assert_int_equal(ok, 1);
	for (size_t i = 0; i < 4; i++)
		labels_free(in[i].ls);
	strbuf_free(&body);
}

static struct matcher *
mkm(enum matcher_op op, const char *name, const char *value)
{
	char err[256];
	struct matcher *m = matcher_new(op, name, value, err, sizeof(err));

	assert_non_null(m);
	return m;
}

static void
test_read_request_round_trip(void **state)
{
	struct matcher *m1[] = { mkm(MATCH_EQUAL, "__name__", "up"), mkm(MATCH_NOT_EQUAL, "a", "b") };
	struct matcher *m2[] = { mkm(MATCH_REGEX, "job", "n.*|x"), mkm(MATCH_NOT_REGEX, "i", "") };
	struct remote_query q[2] = { { -5, 10, m1, 2 }, { 100, INT64_MAX, m2, 2 } };
	struct remote_read_req rr;
	struct strbuf body = STRBUF_INIT;
	char err[256];

	(void)state;
	remote_encode_read_request(q, 2, &body);
	assert_int_equal(remote_decode_read_request(body.buf, body.len, 1 << 20, &rr, err,
	    sizeof(err)), 0);
	assert_true(rr.samples_ok);
	assert_int_equal(rr.n, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(rr.q[i].mint, q[i].mint);
		assert_int_equal(rr.q[i].maxt, q[i].maxt);
		assert_int_equal(rr.q[i].nms, 2);
		for (size_t j = 0; j < 2; j++) {
			assert_int_equal(rr.q[i].ms[j]->op, q[i].ms[j]->op);
			assert_string_equal(rr.q[i].ms[j]->name, q[i].ms[j]->name);
			assert_string_equal(rr.q[i].ms[j]->value, q[i].ms[j]->value);
		}
	}
	assert_true(matcher_matches(rr.q[1].ms[0], "nope"));
	assert_false(matcher_matches(rr.q[1].ms[0], "xx"));
	remote_read_req_free(&rr);
	strbuf_free(&body);
	for (size_t i = 0; i < 2; i++) {
		matcher_free(m1[i]);
		matcher_free(m2[i]);
	}
}

static void
test_read_request_malformed(void **state)
{
	struct strbuf pb = STRBUF_INIT, q = STRBUF_INIT, m = STRBUF_INIT, z = STRBUF_INIT;
	struct remote_read_req rr;
	char err[256];

	(void)state;
	/* a regex matcher that does not compile */
	pb_varint(&m, 0x08);
	pb_varint(&m, 2);	/* RE */
	pb_bytes(&m, 2, "job", 3);
	pb_bytes(&m, 3, "(", 1);
	pb_bytes(&q, 3, m.buf, m.len);
	pb_bytes(&pb, 1, q.buf, q.len);
	remote_snappy_encode(pb.buf, pb.len, &z);
	assert_int_equal(remote_decode_read_request(z.buf, z.len, 1 << 20, &rr, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	assert_null(rr.q);

	/* an unknown matcher type */
	strbuf_reset(&m);
	strbuf_reset(&q);
	strbuf_reset(&pb);
	strbuf_reset(&z);
	pb_varint(&m, 0x08);
	pb_varint(&m, 9);
	pb_bytes(&m, 2, "job", 3);
	pb_bytes(&q, 3, m.buf, m.len);
	pb_bytes(&pb, 1, q.buf, q.len);
	remote_snappy_encode(pb.buf, pb.len, &z);
	assert_int_equal(remote_decode_read_request(z.buf, z.len, 1 << 20, &rr, err, sizeof(err)), -1);
	assert_string_equal(err, "invalid matcher type 9");

	/* only streamed chunks accepted */
	strbuf_reset(&pb);
	strbuf_reset(&z);
	pb_varint(&pb, 0x10);
	pb_varint(&pb, 1);
	remote_snappy_encode(pb.buf, pb.len, &z);
	assert_int_equal(remote_decode_read_request(z.buf, z.len, 1 << 20, &rr, err, sizeof(err)), 0);
	assert_false(rr.samples_ok);
	remote_read_req_free(&rr);

	/* truncated */
	assert_int_equal(remote_decode_read_request(z.buf, z.len - 1, 1 << 20, &rr, err,
	    sizeof(err)), -1);
	strbuf_free(&pb);
	strbuf_free(&q);
	strbuf_free(&m);
	strbuf_free(&z);
}

static void
test_read_response_round_trip(void **state)
{
	struct remote_read_resp_builder b = REMOTE_READ_RESP_BUILDER_INIT;
	struct remote_sample s[3] = { { 1, 1 }, { 2, 0 }, { 3, -INFINITY } };
	struct labels *a = mkls("__name__", "a", "x", "1", NULL);
	struct labels *c = mkls("__name__", "c", NULL);
	struct remote_read_resp rr;
	struct strbuf out = STRBUF_INIT;
	char err[256];

	(void)state;
	s[1].v = from_bits(STALE_BITS);
	remote_resp_add_series(&b, a, s, 3);
	remote_resp_add_series(&b, c, s + 2, 1);
	remote_resp_end_result(&b);
	remote_resp_end_result(&b);	/* an empty result for a second query */
	remote_resp_add_series(&b, c, s, 2);
	remote_resp_end_result(&b);
	assert_int_equal(b.nsamples, 6);
	remote_resp_finish(&b, &out);
	assert_int_equal(remote_decode_read_response(out.buf, out.len, 1 << 20, &rr, err,
	    sizeof(err)), 0);
	assert_int_equal(rr.n, 3);
	assert_int_equal(rr.nsamples, 6);
	assert_int_equal(rr.results[0].n, 2);
	assert_true(labels_equal(rr.results[0].series[0].ls, a));
	assert_int_equal(rr.results[0].series[0].n, 3);
	assert_int_equal(bits_of(rr.results[0].series[0].s[1].v), STALE_BITS);
	assert_true(isinf(rr.results[0].series[0].s[2].v) && rr.results[0].series[0].s[2].v < 0);
	assert_true(labels_equal(rr.results[0].series[1].ls, c));
	assert_int_equal(rr.results[1].n, 0);
	assert_int_equal(rr.results[2].n, 1);
	assert_int_equal(rr.results[2].series[0].s[1].t, 2);
	remote_read_resp_free(&rr);

	/* cut anywhere: refused, never a crash */
	for (size_t cut = 0; cut < out.len; cut++) {
		if (remote_decode_read_response(out.buf, cut, 1 << 20, &rr, err, sizeof(err)) == 0)
			remote_read_resp_free(&rr);
	}
	assert_int_equal(remote_decode_read_response(out.buf, out.len, 10, &rr, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "too large"));
	labels_free(a);
	labels_free(c);
	strbuf_free(&out);
}

/* --- receiver and read endpoint on a head ------------------------------------- */

/* head_dump appends every sample of the series matching sel (one matcher
 * name=~value) as "labels t bits\n". */
static void
head_dump(struct tsdb_head *h, struct strbuf *out)
{
	struct matcher *m = mkm(MATCH_REGEX, "__name__", ".+");
	struct tsdb_series_set *ss = tsdb_head_select(h, &m, 1, INT64_MIN, INT64_MAX);

	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		int64_t t;
		double v;

		while (tsdb_iter_next(it, &t, &v)) {
			labels_format(tsdb_series_set_labels(ss), out);
			strbuf_printf(out, " %lld %016llx\n", (long long)t,
			    (unsigned long long)bits_of(v));
		}
	}
	tsdb_series_set_free(ss);
	matcher_free(m);
}

static void
test_server_write(void **state)
{
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct remote_server *rs = remote_server_new(h, NULL);
	struct remote_sample s1[] = { { 1000, 1 }, { 2000, 0 }, { 3000, NAN } };
	struct remote_sample s2[] = { { 1500, 7 } };
	struct remote_sample s3[] = { { 500, 3 }, { 3000, 9 }, { 3000, NAN }, { 4000, 4 } };
	struct remote_series in[2];
	struct remote_server_stats st;
	struct strbuf body = STRBUF_INIT, msg = STRBUF_INIT, dump = STRBUF_INIT;
	const char *bad[] = { "__name__", "ok", "job", "x", "job", "y" };
	const char *good[] = { "__name__", "ok" };

	(void)state;
	s1[1].v = from_bits(STALE_BITS);
	in[0].ls = mkls("__name__", "a", "job", "j", NULL);
	in[0].s = s1;
	in[0].n = 3;
	in[1].ls = mkls("__name__", "b", NULL);
	in[1].s = s2;
	in[1].n = 1;
	remote_encode_write(in, 2, &body);
	assert_int_equal(remote_server_write(rs, body.buf, body.len, &msg), 204);
	head_dump(h, &dump);
	assert_string_equal(strbuf_cstr(&dump),
	    "{__name__=\"a\", job=\"j\"} 1000 3ff0000000000000\n"
	    "{__name__=\"a\", job=\"j\"} 2000 7ff0000000000002\n"
	    "{__name__=\"a\", job=\"j\"} 3000 7ff8000000000000\n"
	    "{__name__=\"b\"} 1500 401c000000000000\n");

	/* out of order and duplicate timestamps are counted, not fatal */
	strbuf_reset(&body);
	in[0].s = s3;
	in[0].n = 4;
	remote_encode_write(in, 1, &body);
	assert_int_equal(remote_server_write(rs, body.buf, body.len, &msg), 204);
	remote_server_stats(rs, &st);
	assert_int_equal(st.write_requests, 2);
	assert_int_equal(st.samples_received, 8);
	assert_int_equal(st.samples_out_of_order, 1);	/* 500 */
	assert_int_equal(st.samples_duplicate, 1);	/* 3000 with 9; 3000 NaN is the same sample again */
	assert_int_equal(st.samples_appended, 4 + 2);
	strbuf_reset(&dump);
	head_dump(h, &dump);
	assert_non_null(strstr(strbuf_cstr(&dump), "{__name__=\"a\", job=\"j\"} 4000 4010000000000000\n"));
	assert_null(strstr(strbuf_cstr(&dump), " 500 "));

	/* one bad series: 400 with the reason, and nothing of the request written */
	strbuf_reset(&body);
	{
		struct strbuf pb = STRBUF_INIT;

		pb_series(&pb, good, 2, 10000, 1);
		pb_series(&pb, bad, 6, 10000, 1);
		remote_snappy_encode(pb.buf, pb.len, &body);
		strbuf_free(&pb);
	}
	assert_int_equal(remote_server_write(rs, body.buf, body.len, &msg), 400);
	assert_non_null(strstr(strbuf_cstr(&msg), "duplicate label name job"));
	strbuf_reset(&dump);
	head_dump(h, &dump);
	assert_null(strstr(strbuf_cstr(&dump), "ok"));

	strbuf_reset(&msg);
	assert_int_equal(remote_server_write(rs, "garbage", 7, &msg), 400);
	assert_string_equal(strbuf_cstr(&msg), "snappy: corrupt input");
	remote_server_stats(rs, &st);
	assert_int_equal(st.write_rejected, 2);
	assert_int_equal(st.write_failed, 0);

	labels_free(in[0].ls);
	labels_free(in[1].ls);
	strbuf_free(&body);
	strbuf_free(&msg);
	strbuf_free(&dump);
	remote_server_free(rs);
	tsdb_head_free(h);
}

/* read_one sends one query to rs and decodes the answer (status returned). */
static int
read_one(struct remote_server *rs, struct matcher **ms, size_t n, int64_t mint, int64_t maxt,
    struct remote_read_resp *rr, struct strbuf *err)
{
	struct remote_query q = { mint, maxt, ms, n };
	struct strbuf body = STRBUF_INIT, out = STRBUF_INIT;
	char e[256];
	int status;

	remote_encode_read_request(&q, 1, &body);
	status = remote_server_read(rs, body.buf, body.len, &out);
	if (status == 200)
		assert_int_equal(remote_decode_read_response(out.buf, out.len, 1 << 26, rr, e,
		    sizeof(e)), 0);
	else
		strbuf_puts(err, strbuf_cstr(&out));
	strbuf_free(&body);
	strbuf_free(&out);
	return status;
}

static void
test_server_read(void **state)
{
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct remote_server_opts o = { .read_sample_limit = 150 };
	struct remote_server *rs = remote_server_new(h, &o);
	struct labels *a = mkls("__name__", "m", "job", "a", NULL);
	struct labels *b = mkls("__name__", "m", "job", "b", "replica", "own", NULL);
	struct labels *c = mkls("__name__", "other", NULL);
	struct labels *ext = mkls("replica", "r1", "site", "s", NULL);
	struct remote_read_resp rr;
	struct strbuf err = STRBUF_INIT;
	struct matcher *ms[3];
	uint64_t ra = 0, rb = 0, rc = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		double v = i == 50 ? from_bits(STALE_BITS) : (double)i;

		assert_int_equal(tsdb_head_append(h, &ra, a, 1000 * i, v), 0);
		assert_int_equal(tsdb_head_append(h, &rb, b, 1000 * i, -v), 0);
		assert_int_equal(tsdb_head_append(h, &rc, c, 1000 * i, 1), 0);
	}

	ms[0] = mkm(MATCH_EQUAL, "__name__", "m");
	assert_int_equal(read_one(rs, ms, 1, 10000, 59999, &rr, &err), 200);
	assert_int_equal(rr.n, 1);
	assert_int_equal(rr.results[0].n, 2);
	assert_true(labels_equal(rr.results[0].series[0].ls, a));
	assert_int_equal(rr.results[0].series[0].n, 50);
	assert_int_equal(rr.results[0].series[0].s[0].t, 10000);
	assert_int_equal(rr.results[0].series[0].s[49].t, 59000);
	assert_int_equal(bits_of(rr.results[0].series[0].s[40].v), STALE_BITS);
	assert_true(labels_equal(rr.results[0].series[1].ls, b));
	remote_read_resp_free(&rr);

	/* external labels: added where missing; an equality matcher on one is
	 * satisfied by it */
	remote_server_set_external_labels(rs, ext);
	ms[1] = mkm(MATCH_EQUAL, "site", "s");
	assert_int_equal(read_one(rs, ms, 2, 0, 2000, &rr, &err), 200);
	assert_int_equal(rr.results[0].n, 2);
	assert_labels_str(rr.results[0].series[0].ls,
	    "{__name__=\"m\", job=\"a\", replica=\"r1\", site=\"s\"}");
	assert_labels_str(rr.results[0].series[1].ls,
	    "{__name__=\"m\", job=\"b\", replica=\"own\", site=\"s\"}");
	remote_read_resp_free(&rr);
	/* a stored read (a strata peer repairing): no external label added and
	 * a matcher on one is not satisfied by it */
	{
		struct remote_query q = { 0, 2000, ms, 2 };
		struct remote_query q1 = { 0, 2000, ms, 1 };
		struct strbuf body = STRBUF_INIT, out = STRBUF_INIT;
		char e[256];

		remote_encode_read_request(&q, 1, &body);
		assert_int_equal(remote_server_read_stored(rs, body.buf, body.len, &out), 200);
		assert_int_equal(remote_decode_read_response(out.buf, out.len, 1 << 20, &rr, e,
		    sizeof(e)), 0);
		assert_int_equal(rr.results[0].n, 0);
		remote_read_resp_free(&rr);
		strbuf_reset(&body);
		strbuf_reset(&out);
		remote_encode_read_request(&q1, 1, &body);
		assert_int_equal(remote_server_read_stored(rs, body.buf, body.len, &out), 200);
		assert_int_equal(remote_decode_read_response(out.buf, out.len, 1 << 20, &rr, e,
		    sizeof(e)), 0);
		assert_int_equal(rr.results[0].n, 2);
		assert_true(labels_equal(rr.results[0].series[0].ls, a));
		assert_true(labels_equal(rr.results[0].series[1].ls, b));
		remote_read_resp_free(&rr);
		strbuf_free(&body);
		strbuf_free(&out);
	}
	/* only the external label: nothing left to select on, nothing returned */
	assert_int_equal(read_one(rs, &ms[1], 1, 0, 2000, &rr, &err), 200);
	assert_int_equal(rr.results[0].n, 0);
	remote_read_resp_free(&rr);
	ms[2] = mkm(MATCH_EQUAL, "site", "elsewhere");
	assert_int_equal(read_one(rs, (struct matcher *[]){ ms[0], ms[2] }, 2, 0, 2000, &rr, &err), 200);
	assert_int_equal(rr.results[0].n, 0);
	remote_read_resp_free(&rr);
	remote_server_set_external_labels(rs, NULL);

	/* the sample limit (150 per request): 200 samples do not pass, 100 do,
	 * and it counts over every query of a request */
	assert_int_equal(read_one(rs, ms, 1, 0, 99999, &rr, &err), 400);
	assert_string_equal(strbuf_cstr(&err), "exceeded sample limit (150)");
	strbuf_reset(&err);
	assert_int_equal(read_one(rs, ms, 1, 0, 49999, &rr, &err), 200);
	assert_int_equal(rr.nsamples, 100);
	remote_read_resp_free(&rr);
	{
		struct remote_query q[2] = { { 0, 49999, ms, 1 }, { 50000, 99999, ms, 1 } };
		struct strbuf body = STRBUF_INIT, out = STRBUF_INIT;

		remote_encode_read_request(q, 2, &body);
		assert_int_equal(remote_server_read(rs, body.buf, body.len, &out), 400);
		assert_string_equal(strbuf_cstr(&out), "exceeded sample limit (150)");
		strbuf_free(&body);
		strbuf_free(&out);
	}

	/* malformed and streamed-only requests */
	strbuf_reset(&err);
	assert_int_equal(remote_server_read(rs, "\x05" "abc", 4, &err), 400);
	assert_string_equal(strbuf_cstr(&err), "snappy: corrupt input");
	/* an empty snappy block is an empty request: no results */
	strbuf_reset(&err);
	assert_int_equal(remote_server_read(rs, "\x00", 1, &err), 200);
	{
		char e[256];

		assert_int_equal(remote_decode_read_response(err.buf, err.len, 1 << 20, &rr, e,
		    sizeof(e)), 0);
		assert_int_equal(rr.n, 0);
		remote_read_resp_free(&rr);
	}
	{
		struct strbuf pb = STRBUF_INIT, z = STRBUF_INIT;

		strbuf_reset(&err);
		pb_varint(&pb, 0x10);
		pb_varint(&pb, 1);
		remote_snappy_encode(pb.buf, pb.len, &z);
		assert_int_equal(remote_server_read(rs, z.buf, z.len, &err), 400);
		assert_non_null(strstr(strbuf_cstr(&err), "response types"));
		strbuf_free(&pb);
		strbuf_free(&z);
	}

	for (int i = 0; i < 3; i++)
		matcher_free(ms[i]);
	labels_free(a);
	labels_free(b);
	labels_free(c);
	labels_free(ext);
	strbuf_free(&err);
	remote_server_free(rs);
	tsdb_head_free(h);
}

/* --- a scripted remote-write receiver on lib/http --------------------------------- */

#define MAX_REQS 4096

struct recv {
	pthread_mutex_t mu;
	int script[64];			/* statuses to answer, in order; then 204 */
	int nscript, next;
	const char *retry_after;	/* sent with 429/503 when not NULL */
	int delay_ms;			/* per request */
	int nreq;
	int64_t at_ms[MAX_REQS];	/* arrival of each request (monotonic) */
	size_t nsamples[MAX_REQS];
	struct strbuf got;		/* accepted samples: "labels t v\n" */
	char hdr_enc[64], hdr_ver[64], hdr_type[64], hdr_auth[256], hdr_custom[64], hdr_ua[64];
	size_t accepted;
};

static struct recv R;

static int
h_recv(struct http_request *req, void *arg)
{
	struct remote_write_req wr;
	const void *body;
	size_t len;
	char err[256];
	int status, i;
	const char *h;

	(void)arg;
	body = http_request_body(req, &len);
	if (R.delay_ms > 0)
		usleep((useconds_t)R.delay_ms * 1000);
	if (remote_decode_write(body, len, 1 << 26, &wr, err, sizeof(err)) < 0)
		return http_respond_text(req, 400, "%s\n", err);
	pthread_mutex_lock(&R.mu);
	i = R.nreq++;
	if (i < MAX_REQS) {
		R.at_ms[i] = time_mono_ns() / 1000000;
		R.nsamples[i] = wr.nsamples;
	}
#define HDR(name, field) \
	h = http_request_header(req, name); \
	snprintf(R.field, sizeof(R.field), "%s", h != NULL ? h : "");
	HDR("Content-Encoding", hdr_enc)
	HDR("X-Prometheus-Remote-Write-Version", hdr_ver)
	HDR("Content-Type", hdr_type)
	HDR("Authorization", hdr_auth)
	HDR("X-Custom", hdr_custom)
	HDR("User-Agent", hdr_ua)
#undef HDR
	status = R.next < R.nscript ? R.script[R.next++] : 204;
	if (status / 100 == 2) {
		for (size_t s = 0; s < wr.nseries; s++)
			for (size_t j = 0; j < wr.series[s].n; j++) {
				labels_format(wr.series[s].ls, &R.got);
				strbuf_printf(&R.got, " %lld %g\n",
				    (long long)wr.series[s].s[j].t, wr.series[s].s[j].v);
				R.accepted++;
			}
	}
	pthread_mutex_unlock(&R.mu);
	remote_write_req_free(&wr);
	if (status / 100 == 2)
		return http_respond_data(req, status, NULL, "", 0);
	if (R.retry_after != NULL && (status == 429 || status == 503))
		http_response_header(req, "Retry-After", R.retry_after);
	return http_respond_text(req, status, "scripted failure %d\n", status);
}

static struct http_server *
recv_start(char *url, size_t urllen)
{
	struct http_server *srv;
	char err[256];

	pthread_mutex_destroy(&R.mu);
	strbuf_free(&R.got);
	memset(&R, 0, sizeof(R));
	pthread_mutex_init(&R.mu, NULL);
	srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(http_server_route(srv, HTTP_POST, "/api/v1/write", 0, h_recv, NULL), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	snprintf(url, urllen, "http://127.0.0.1:%d/api/v1/write", http_server_port(srv));
	return srv;
}

static size_t
recv_accepted(void)
{
	size_t n;

	pthread_mutex_lock(&R.mu);
	n = R.accepted;
	pthread_mutex_unlock(&R.mu);
	return n;
}

static bool
wait_accepted(size_t n, int64_t ms)
{
	int64_t due = time_mono_ns() / 1000000 + ms;

	while (recv_accepted() < n) {
		if (time_mono_ns() / 1000000 > due)
			return false;
		usleep(2000);
	}
	return true;
}

/* load_cfg parses a configuration; %s in yaml is replaced by url. */
static struct cfg *
load_cfg(const char *yaml, const char *url)
{
	struct strbuf sb = STRBUF_INIT;
	char err[1024];
	struct cfg *c;

	strbuf_printf(&sb, yaml, url, url);
	c = cfg_load_string(sb.buf, sb.len, "test.yml", NULL, err, sizeof(err));
	if (c == NULL)
		fail_msg("config: %s", err);
	strbuf_free(&sb);
	return c;
}

static struct remote_writer *
writer_for(const char *yaml, const char *url, int64_t flush_ms)
{
	struct remote_write_opts o = { .flush_deadline_ms = flush_ms, .user_agent = "strata-test" };
	struct remote_writer *w = remote_writer_new(&o);
	struct cfg *c = load_cfg(yaml, url);
	char err[1024];

	if (remote_writer_apply(w, c, err, sizeof(err)) < 0)
		fail_msg("apply: %s", err);
	cfg_free(c);
	return w;
}

static void
test_writer_batching(void **state)
{
	char url[128];
	struct http_server *srv = recv_start(url, sizeof(url));
	struct remote_writer *w;
	struct labels *ls = mkls("__name__", "m", "i", "1", NULL);
	struct remote_writer_stats st;

	(void)state;
	w = writer_for("remote_write:\n  - url: %s\n    headers: {X-Custom: yes}\n"
	    "    queue_config: {max_samples_per_send: 10, batch_send_deadline: 200ms}\n",
	    url, 5000);
	for (int i = 0; i < 25; i++)
		remote_write_append(w, ls, 1000 + i, i);
	/* two full batches go at once, the last five after the deadline */
	assert_true(wait_accepted(20, 2000));
	assert_true(remote_writer_flush(w, 3000));
	pthread_mutex_lock(&R.mu);
	assert_int_equal(R.nreq, 3);
	assert_int_equal(R.nsamples[0], 10);
	assert_int_equal(R.nsamples[1], 10);
	assert_int_equal(R.nsamples[2], 5);
	assert_true(R.at_ms[2] - R.at_ms[1] >= 150);
	assert_string_equal(R.hdr_enc, "snappy");
	assert_string_equal(R.hdr_ver, "0.1.0");
	assert_string_equal(R.hdr_type, "application/x-protobuf");
	assert_string_equal(R.hdr_custom, "yes");
	assert_string_equal(R.hdr_ua, "strata-test");
	{
		struct strbuf want = STRBUF_INIT;

		for (int i = 0; i < 25; i++)
			strbuf_printf(&want, "{__name__=\"m\", i=\"1\"} %d %d\n", 1000 + i, i);
		assert_string_equal(strbuf_cstr(&R.got), strbuf_cstr(&want));
		strbuf_free(&want);
	}
	pthread_mutex_unlock(&R.mu);
	remote_writer_stats(w, &st);
	assert_int_equal(st.n, 1);
	assert_int_equal(st.samples_in, 25);
	assert_int_equal(st.q[0].samples_sent, 25);
	assert_int_equal(st.q[0].batches_sent, 3);
	assert_int_equal(st.q[0].samples_pending, 0);
	assert_int_equal(st.q[0].samples_failed, 0);
	assert_true(st.q[0].highest_sent_s == 1.024);
	assert_int_equal(st.q[0].duration_count, 3);
	remote_writer_stats_free(&st);
	remote_writer_free(w);
	http_server_free(srv);
	labels_free(ls);
}

static void
test_writer_retry_backoff(void **state)
{
	char url[128];
	struct http_server *srv = recv_start(url, sizeof(url));
	struct remote_writer *w;
	struct labels *ls = mkls("__name__", "m", NULL);
	struct remote_writer_stats st;

	(void)state;
	R.script[0] = 500;
	R.script[1] = 503;
	R.script[2] = 502;
	R.nscript = 3;
	w = writer_for("remote_write:\n  - url: %s\n"
	    "    queue_config: {max_samples_per_send: 5, batch_send_deadline: 20ms,"
	    " min_backoff: 50ms, max_backoff: 80ms}\n", url, 5000);
	for (int i = 0; i < 5; i++)
		remote_write_append(w, ls, i, i);
	assert_true(wait_accepted(5, 5000));
	assert_true(remote_writer_flush(w, 5000));
	pthread_mutex_lock(&R.mu);
	assert_int_equal(R.nreq, 4);
	/* backoff 50ms, then 80ms (100 capped at max_backoff), then 80ms */
	assert_true(R.at_ms[1] - R.at_ms[0] >= 45);
	assert_true(R.at_ms[2] - R.at_ms[1] >= 75);
	assert_true(R.at_ms[3] - R.at_ms[2] >= 75);
	assert_true(R.at_ms[3] - R.at_ms[2] < 1000);
	pthread_mutex_unlock(&R.mu);
	remote_writer_stats(w, &st);
	assert_int_equal(st.q[0].samples_retried, 15);
	assert_int_equal(st.q[0].samples_sent, 5);
	assert_int_equal(st.q[0].samples_failed, 0);
	assert_int_equal(st.q[0].duration_count, 4);
	remote_writer_stats_free(&st);
	remote_writer_free(w);
	http_server_free(srv);
	labels_free(ls);
}

static void
test_writer_429_and_4xx(void **state)
{
	char url[128];
	struct http_server *srv = recv_start(url, sizeof(url));
	struct remote_writer *w;
	struct labels *ls = mkls("__name__", "m", NULL);
	struct remote_writer_stats st;

	(void)state;
	/* without retry_on_http_429: 429 and 400 drop their batch */
	R.script[0] = 429;
	R.script[1] = 400;
	R.nscript = 2;
	w = writer_for("remote_write:\n  - url: %s\n"
	    "    queue_config: {max_samples_per_send: 2, batch_send_deadline: 10ms,"
	    " min_backoff: 10ms}\n", url, 5000);
	for (int i = 0; i < 6; i++) {
		remote_write_append(w, ls, i, i);
		if (i % 2 == 1)
			assert_true(remote_writer_flush(w, 3000));
	}
	remote_writer_stats(w, &st);
	assert_int_equal(st.q[0].samples_failed, 4);
	assert_int_equal(st.q[0].samples_retried, 0);
	assert_int_equal(st.q[0].samples_sent, 2);
	assert_int_equal(st.q[0].batches_failed, 2);
	remote_writer_stats_free(&st);
	assert_string_equal(strbuf_cstr(&R.got), "{__name__=\"m\"} 4 4\n{__name__=\"m\"} 5 5\n");
	remote_writer_free(w);
	http_server_free(srv);

	/* with it: 429 is retried, after the Retry-After delay */
	srv = recv_start(url, sizeof(url));
	R.script[0] = 429;
	R.nscript = 1;
	R.retry_after = "1";
	w = writer_for("remote_write:\n  - url: %s\n"
	    "    queue_config: {max_samples_per_send: 2, batch_send_deadline: 10ms,"
	    " min_backoff: 10ms, retry_on_http_429: true}\n", url, 5000);
	remote_write_append(w, ls, 1, 1);
	remote_write_append(w, ls, 2, 2);
	assert_true(remote_writer_flush(w, 5000));
	pthread_mutex_lock(&R.mu);
	assert_int_equal(R.nreq, 2);
	assert_true(R.at_ms[1] - R.at_ms[0] >= 950);
	pthread_mutex_unlock(&R.mu);
	remote_writer_stats(w, &st);
	assert_int_equal(st.q[0].samples_retried, 2);
	assert_int_equal(st.q[0].samples_sent, 2);
	remote_writer_stats_free(&st);
	remote_writer_free(w);
	http_server_free(srv);
	labels_free(ls);
}

static void
test_writer_relabel_and_auth(void **state)
{
	char url[128];
	struct http_server *srv = recv_start(url, sizeof(url));
	struct remote_writer *w;
	struct labels *keep = mkls("__name__", "keep_me", "job", "j", NULL);
	struct labels *drop = mkls("__name__", "drop_me", "job", "j", NULL);
	struct labels *own = mkls("__name__", "keep_me", "job", "j", "site", "mine", NULL);
	struct remote_writer_stats st;
	struct remote_write_sample b[3];

	(void)state;
	w = writer_for("global:\n  external_labels: {site: s1, region: r}\n"
	    "remote_write:\n  - url: %s\n    name: primary\n"
	    "    basic_auth: {username: u, password: p}\n"
	    "    write_relabel_configs:\n"
	    "      - {source_labels: [__name__], regex: drop_.*, action: drop}\n"
	    "      - {source_labels: [site], target_label: where, replacement: at-$1}\n"
	    "      - {regex: region, action: labeldrop}\n"
	    "    queue_config: {batch_send_deadline: 10ms}\n", url, 5000);
	b[0] = (struct remote_write_sample){ keep, 10, 1 };
	b[1] = (struct remote_write_sample){ drop, 10, 2 };
	b[2] = (struct remote_write_sample){ own, 10, 3 };
	remote_write_append_batch(w, b, 3);
	remote_write_append_batch(w, b, 1);	/* the cached result again (same t: dup at receiver is fine) */
	assert_true(remote_writer_flush(w, 3000));
	pthread_mutex_lock(&R.mu);
	assert_string_equal(R.hdr_auth, "Basic dTpw");
	assert_non_null(strstr(strbuf_cstr(&R.got),
	    "{__name__=\"keep_me\", job=\"j\", site=\"s1\", where=\"at-s1\"} 10 1\n"));
	assert_non_null(strstr(strbuf_cstr(&R.got),
	    "{__name__=\"keep_me\", job=\"j\", site=\"mine\", where=\"at-mine\"} 10 3\n"));
	assert_null(strstr(strbuf_cstr(&R.got), "drop_me"));
	assert_null(strstr(strbuf_cstr(&R.got), "region"));
	assert_int_equal(R.accepted, 3);
	pthread_mutex_unlock(&R.mu);
	remote_writer_stats(w, &st);
	assert_string_equal(st.q[0].remote_name, "primary");
	assert_int_equal(st.samples_in, 4);
	assert_int_equal(st.q[0].samples_dropped, 1);
	assert_int_equal(st.q[0].samples_sent, 3);
	remote_writer_stats_free(&st);
	remote_writer_free(w);
	http_server_free(srv);
	labels_free(keep);
	labels_free(drop);
	labels_free(own);
}

/* authorization from a credentials file, read again for every request */
static void
test_writer_credentials_file(void **state)
{
	char url[128], path[] = "/tmp/strata-test-remote-credXXXXXX", yaml[512];
	struct http_server *srv = recv_start(url, sizeof(url));
	struct remote_writer *w;
	struct labels *ls = mkls("__name__", "m", NULL);
	FILE *f;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	f = fopen(path, "w");
	fputs("  first-token\n", f);
	fclose(f);
	snprintf(yaml, sizeof(yaml), "remote_write:\n  - url: %%s\n"
	    "    authorization: {type: Token, credentials_file: %s}\n"
	    "    queue_config: {batch_send_deadline: 10ms}\n", path);
	w = writer_for(yaml, url, 300);
	remote_write_append(w, ls, 1, 1);
	assert_true(remote_writer_flush(w, 3000));
	pthread_mutex_lock(&R.mu);
	assert_string_equal(R.hdr_auth, "Token first-token");
	pthread_mutex_unlock(&R.mu);
	f = fopen(path, "w");
	fputs("second-token", f);
	fclose(f);
	remote_write_append(w, ls, 2, 2);
	assert_true(remote_writer_flush(w, 3000));
	pthread_mutex_lock(&R.mu);
	assert_string_equal(R.hdr_auth, "Token second-token");
	pthread_mutex_unlock(&R.mu);
	/* an unreadable file fails the request in transport: retried, not sent */
	unlink(path);
	remote_write_append(w, ls, 3, 3);
	assert_false(remote_writer_flush(w, 200));
	{
		struct remote_writer_stats st;

		remote_writer_stats(w, &st);
		assert_true(st.q[0].samples_retried >= 1);
		assert_int_equal(st.q[0].samples_sent, 2);
		remote_writer_stats_free(&st);
	}
	remote_writer_free(w);	/* gives the last sample up after the deadline */
	http_server_free(srv);
	labels_free(ls);
}

/* A dead endpoint: retried until the writer stops, pending bounded. */
static void
test_writer_dead_endpoint(void **state)
{
	char url[128];
	struct http_server *srv = recv_start(url, sizeof(url));
	struct remote_writer *w;
	struct remote_write_opts o = { .flush_deadline_ms = 200, .max_pending = 10 };
	struct labels *ls = mkls("__name__", "m", NULL);
	struct remote_writer_stats st;
	struct cfg *c;
	char err[256];
	int64_t t0;

	(void)state;
	http_server_free(srv);	/* nothing listens there any more */
	w = remote_writer_new(&o);
	c = load_cfg("remote_write:\n  - url: %s\n"
	    "    queue_config: {max_samples_per_send: 5, batch_send_deadline: 10ms,"
	    " min_backoff: 10ms, max_backoff: 20ms}\n", url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), 0);
	cfg_free(c);
	for (int i = 0; i < 100; i++)
		remote_write_append(w, ls, i, i);
	assert_false(remote_writer_flush(w, 150));
	remote_writer_stats(w, &st);
	assert_int_equal(st.q[0].samples_overflow, 90);
	assert_int_equal(st.q[0].samples_pending, 10);
	assert_true(st.q[0].samples_retried >= 10);
	assert_int_equal(st.q[0].samples_sent, 0);
	remote_writer_stats_free(&st);
	t0 = time_mono_ns();
	remote_writer_free(w);	/* gives up after the flush deadline */
	assert_true(time_mono_ns() - t0 < INT64_C(2000000000));
	labels_free(ls);
}

static void
test_writer_apply(void **state)
{
	char url[128], url2[160];
	struct http_server *srv = recv_start(url, sizeof(url));
	struct remote_write_opts o = { .flush_deadline_ms = 2000 };
	struct remote_writer *w = remote_writer_new(&o);
	struct labels *ls = mkls("__name__", "m", NULL);
	struct remote_writer_stats st;
	struct cfg *c;
	char err[1024];
	const char *one = "remote_write:\n  - url: %s\n    queue_config: {batch_send_deadline: 10ms}\n";

	(void)state;
	c = load_cfg(one, url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), 0);
	remote_write_append(w, ls, 1, 1);
	assert_true(remote_writer_flush(w, 3000));
	/* the same settings again: the queue (and its figures) stay */
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), 0);
	cfg_free(c);
	remote_writer_stats(w, &st);
	assert_int_equal(st.q[0].samples_sent, 1);
	remote_writer_stats_free(&st);

	/* unsupported settings are refused and nothing changes */
	c = load_cfg("remote_write:\n  - url: %s\n    sigv4: {region: eu}\n", url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "sigv4 is not supported"));
	cfg_free(c);
	/* also when everything else is what the running queue has */
	c = load_cfg("remote_write:\n  - url: %s\n    queue_config: {batch_send_deadline: 10ms}\n"
	    "    sigv4: {region: eu}\n", url);
	assert_int_equal(remote_writer_check(w, c, err, sizeof(err)), -1);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "sigv4 is not supported"));
	cfg_free(c);
	c = load_cfg("remote_write:\n  - url: %s\n    queue_config: {batch_send_deadline: 10ms}\n"
	    "    oauth2: {client_id: a, client_secret: b, token_url: 'http://x/'}\n", url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "oauth2 is not supported"));
	cfg_free(c);
	c = load_cfg("remote_write:\n  - url: %s\n    oauth2: {client_id: a, client_secret: b,"
	    " token_url: 'http://x/'}\n", url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "oauth2 is not supported"));
	cfg_free(c);
	c = load_cfg("remote_write:\n  - url: %s\n  - url: %s\n", url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "duplicate remote write configs"));
	err[0] = '\0';
	assert_int_equal(remote_writer_check(w, c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "duplicate remote write configs"));
	cfg_free(c);
	/* a check of a good configuration changes nothing either */
	c = load_cfg("remote_write:\n  - url: %s\n    name: other\n", url);
	assert_int_equal(remote_writer_check(w, c, err, sizeof(err)), 0);
	cfg_free(c);
	c = load_cfg("global: {}\n", url);
	assert_int_equal(remote_writer_check(w, c, err, sizeof(err)), 0);
	cfg_free(c);
	remote_writer_stats(w, &st);
	assert_int_equal(st.n, 1);
	assert_int_equal(st.q[0].samples_sent, 1);
	assert_string_not_equal(st.q[0].remote_name, "other");
	remote_writer_stats_free(&st);

	/* two endpoints, then changed settings: a new queue */
	snprintf(url2, sizeof(url2), "%s?second", url);
	{
		struct strbuf y = STRBUF_INIT;

		strbuf_printf(&y, "remote_write:\n  - url: %s\n    queue_config: {batch_send_deadline: 10ms}\n"
		    "  - url: %s\n    name: second\n    queue_config: {batch_send_deadline: 10ms}\n",
		    url, url2);
		c = cfg_load_string(y.buf, y.len, "t.yml", NULL, err, sizeof(err));
		assert_non_null(c);
		strbuf_free(&y);
	}
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), 0);
	cfg_free(c);
	remote_write_append(w, ls, 2, 2);
	assert_true(remote_writer_flush(w, 3000));
	remote_writer_stats(w, &st);
	assert_int_equal(st.n, 2);
	assert_int_equal(st.q[0].samples_sent, 2);	/* kept */
	assert_int_equal(st.q[1].samples_sent, 1);	/* new */
	assert_string_equal(st.q[1].remote_name, "second");
	remote_writer_stats_free(&st);
	assert_int_equal(recv_accepted(), 3);

	/* none */
	c = load_cfg("global: {}\n", url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), 0);
	cfg_free(c);
	remote_write_append(w, ls, 3, 3);
	remote_writer_stats(w, &st);
	assert_int_equal(st.n, 0);
	assert_int_equal(st.samples_in, 3);
	remote_writer_stats_free(&st);
	remote_writer_free(w);
	http_server_free(srv);
	labels_free(ls);
}

/* Many series against a slow receiver: the queue reshards, and every
 * series still arrives complete and in order. */
static void
test_writer_reshard(void **state)
{
	char url[128];
	struct http_server *srv;
	struct remote_write_opts o = { .flush_deadline_ms = 5000, .shard_update_ms = 100 };
	struct remote_writer *w = remote_writer_new(&o);
	struct labels *ls[50];
	struct remote_writer_stats st;
	struct cfg *c;
	char err[1024];
	int64_t t0 = time_mono_ns();
	int64_t maxshards = 0, n = 0;
	struct strbuf metrics = STRBUF_INIT;

	(void)state;
	{
		struct http_server_opts ho;

		http_server_opts_default(&ho);
		srv = recv_start(url, sizeof(url));
		http_server_free(srv);
		srv = http_server_new("127.0.0.1:0", &ho, err, sizeof(err));
		assert_non_null(srv);
		assert_int_equal(http_server_route(srv, HTTP_POST, "/api/v1/write", 0, h_recv, NULL), 0);
		assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", http_server_port(srv));
	}
	R.delay_ms = 10;
	for (int i = 0; i < 50; i++) {
		char v[16];

		snprintf(v, sizeof(v), "%d", i);
		ls[i] = mkls("__name__", "m", "s", v, NULL);
	}
	c = load_cfg("remote_write:\n  - url: %s\n    queue_config: {max_samples_per_send: 20,"
	    " batch_send_deadline: 20ms, min_shards: 1, max_shards: 8}\n", url);
	assert_int_equal(remote_writer_apply(w, c, err, sizeof(err)), 0);
	cfg_free(c);
	/* about 8000 samples/s for 1.5 s; one shard sends at most ~2000/s */
	while (time_mono_ns() - t0 < INT64_C(1500000000)) {
		struct remote_write_sample b[50];

		for (int i = 0; i < 50; i++)
			b[i] = (struct remote_write_sample){ ls[i], n, (double)n };
		remote_write_append_batch(w, b, 50);
		n++;
		usleep(5000);
		remote_writer_stats(w, &st);
		if (st.q[0].shards > maxshards)
			maxshards = st.q[0].shards;
		remote_writer_stats_free(&st);
	}
	assert_true(remote_writer_flush(w, 20000));
	assert_true(maxshards > 1);
	assert_int_equal(recv_accepted(), (size_t)(50 * n));
	/* per series, the samples arrived in order: check from the receiver's log */
	{
		int64_t last[50];
		const char *p = strbuf_cstr(&R.got);

		for (int i = 0; i < 50; i++)
			last[i] = -1;
		while (*p != '\0') {
			int s;
			long long t;
			const char *q = strstr(p, "s=\"");

			assert_non_null(q);
			s = atoi(q + 3);
			q = strchr(q, '}');
			t = atoll(q + 2);
			assert_true(t == last[s] + 1);
			last[s] = t;
			p = strchr(p, '\n') + 1;
		}
	}
	remote_writer_collect(w, &metrics);
	assert_non_null(strstr(strbuf_cstr(&metrics), "# TYPE prometheus_remote_storage_shards gauge\n"));
	assert_non_null(strstr(strbuf_cstr(&metrics),
	    "prometheus_remote_storage_samples_pending{remote_name=\""));
	assert_non_null(strstr(strbuf_cstr(&metrics),
	    "prometheus_remote_storage_sent_batch_duration_seconds_bucket{remote_name="));
	assert_non_null(strstr(strbuf_cstr(&metrics), ",le=\"+Inf\"} "));
	assert_non_null(strstr(strbuf_cstr(&metrics), "le=\"0.005\"}"));
	strbuf_free(&metrics);
	remote_writer_free(w);
	http_server_free(srv);
	for (int i = 0; i < 50; i++)
		labels_free(ls[i]);
}

/* The client against the receiver and the reader against the read
 * endpoint, over HTTP: writer -> /api/v1/write -> head -> /api/v1/read -> reader. */
static void
test_http_end_to_end(void **state)
{
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct remote_server *rs = remote_server_new(h, NULL);
	struct http_server *srv;
	struct remote_writer *w;
	struct remote_reader *rd;
	struct labels *a = mkls("__name__", "e2e", "k", "v", NULL);
	struct labels *strip = mkls("replica", "x", NULL);
	struct labels *ext = mkls("replica", "x", NULL);
	struct remote_series *out;
	size_t nout;
	char err[1024], url[128], rurl[128];
	struct matcher *m = mkm(MATCH_EQUAL, "__name__", "e2e");
	struct remote_reader_stats rst;

	(void)state;
	srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(remote_server_route(rs, srv, true, true), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", http_server_port(srv));
	snprintf(rurl, sizeof(rurl), "http://127.0.0.1:%d/api/v1/read", http_server_port(srv));
	w = writer_for("remote_write:\n  - url: %s\n    queue_config: {batch_send_deadline: 10ms}\n",
	    url, 5000);
	for (int i = 0; i < 1000; i++)
		remote_write_append(w, a, i * 10, i == 500 ? from_bits(STALE_BITS) : i * 0.5);
	assert_true(remote_writer_flush(w, 5000));

	rd = remote_reader_new_url(rurl, 5000, NULL, err, sizeof(err));
	assert_non_null(rd);
	remote_server_set_external_labels(rs, ext);
	assert_int_equal(remote_read(rd, &m, 1, 0, 100000, strip, &out, &nout, err, sizeof(err)), 0);
	assert_int_equal(nout, 1);
	assert_true(labels_equal(out[0].ls, a));	/* the external label stripped again */
	assert_int_equal(out[0].n, 1000);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(out[0].s[i].t, i * 10);
		if (i == 500)
			assert_int_equal(bits_of(out[0].s[i].v), STALE_BITS);
		else
			assert_true(out[0].s[i].v == i * 0.5);
	}
	remote_series_free(out, nout);
	/* without strip the server's external label is there */
	assert_int_equal(remote_read(rd, &m, 1, 0, 100, NULL, &out, &nout, err, sizeof(err)), 0);
	assert_int_equal(nout, 1);
	assert_string_equal(labels_get(out[0].ls, "replica"), "x");
	assert_int_equal(out[0].n, 11);
	remote_series_free(out, nout);
	remote_reader_free(rd);

	/* a failing server: the status and its message */
	rd = remote_reader_new_url(url, 5000, NULL, err, sizeof(err));	/* the write endpoint */
	assert_int_equal(remote_read(rd, &m, 1, 0, 100, NULL, &out, &nout, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "server returned HTTP status 400"));
	remote_reader_stats(rd, &rst);
	assert_int_equal(rst.requests, 1);
	assert_int_equal(rst.failures, 1);
	remote_reader_free(rd);
	snprintf(rurl, sizeof(rurl), "http://127.0.0.1:1/api/v1/read");
	rd = remote_reader_new_url(rurl, 2000, NULL, err, sizeof(err));
	assert_int_equal(remote_read(rd, &m, 1, 0, 100, NULL, &out, &nout, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Post \"http://127.0.0.1:1/api/v1/read\""));
	remote_reader_free(rd);
	assert_null(remote_reader_new_url("ftp://x/", 1000, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "scheme must be http or https"));

	/* the receiver over HTTP: a malformed body is a 400 with the message */
	{
		CURL *e = curl_easy_init();
		long code = 0;

		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "not snappy");
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fwrite);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, stderr);
		assert_int_equal(curl_easy_perform(e), CURLE_OK);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		assert_int_equal(code, 400);
		curl_easy_cleanup(e);
	}
	{
		struct strbuf mtx = STRBUF_INIT;

		remote_server_collect(rs, &mtx);
		assert_non_null(strstr(strbuf_cstr(&mtx), "strata_remote_write_samples_appended_total 1000\n"));
		assert_non_null(strstr(strbuf_cstr(&mtx), "strata_remote_read_requests_total 2\n"));
		assert_non_null(strstr(strbuf_cstr(&mtx), "strata_remote_write_requests_rejected_total 2\n"));
		strbuf_free(&mtx);
	}
	remote_writer_free(w);
	http_server_free(srv);
	remote_server_free(rs);
	tsdb_head_free(h);
	matcher_free(m);
	labels_free(a);
	labels_free(strip);
	labels_free(ext);
}

static void
test_retry_after_parse(void **state)
{
	(void)state;
	assert_int_equal(remote_parse_retry_after("5", 0), 5000);
	assert_int_equal(remote_parse_retry_after(" 0 ", 0), 0);
	assert_int_equal(remote_parse_retry_after("-1", 0), -1);
	assert_int_equal(remote_parse_retry_after("soon", 0), -1);
	assert_int_equal(remote_parse_retry_after("", 0), -1);
	assert_int_equal(remote_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT",
	    INT64_C(1445412470000)), 10000);
	assert_int_equal(remote_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT",
	    INT64_C(1445412490000)), 0);
}

/* --- the feed: store commits to remote write ---------------------------------------- */

static char *
feed_tmpdir(void)
{
	char tmpl[256];
	const char *base = getenv("TMPDIR");

	snprintf(tmpl, sizeof(tmpl), "%s/strata-feed-XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	return mem_strdup(tmpl);
}

static void
feed_rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char p[1024];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		feed_rm_rf(p);
	}
	closedir(d);
	(void)rmdir(path);
}

static struct tsdb_db *
feed_db(const char *dir)
{
	struct tsdb_db_opts o = { .path = dir, .no_maintenance = true };
	char err[512];
	struct tsdb_db *db = tsdb_db_open(&o, err, sizeof(err));

	if (db == NULL)
		fail_msg("open: %s", err);
	return db;
}

/* A sink that records what it gets and can hold the feed thread (gate).
 * It runs on the feed thread: lib/util/mem, not cmocka's test_malloc
 * (not thread-safe). */
struct got_sample {
	struct labels *ls;	/* one reference */
	int64_t t;
	uint64_t v;
};

struct sink_rec {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool gate_closed;
	int calls;
	struct got_sample *v;
	size_t n, cap;
};

static void
sink_init(struct sink_rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static void
sink_release(struct sink_rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		labels_free(r->v[i].ls);
	mem_free(r->v);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

static void
rec_sink(void *arg, const struct remote_write_sample *s, size_t n)
{
	struct sink_rec *r = arg;

	pthread_mutex_lock(&r->mu);
	r->calls++;
	pthread_cond_broadcast(&r->cv);
	while (r->gate_closed)
		pthread_cond_wait(&r->cv, &r->mu);
	if (r->n + n > r->cap) {
		r->cap = (r->n + n) * 2;
		r->v = mem_realloc(r->v, r->cap * sizeof(*r->v));
	}
	for (size_t i = 0; i < n; i++) {
		r->v[r->n].ls = labels_ref((struct labels *)s[i].ls);
		r->v[r->n].t = s[i].t;
		r->v[r->n++].v = bits_of(s[i].v);
	}
	pthread_mutex_unlock(&r->mu);
}

static void
sink_gate(struct sink_rec *r, bool closed)
{
	pthread_mutex_lock(&r->mu);
	r->gate_closed = closed;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* sink_wait_calls waits until the sink was entered n times (2 s at most). */
static bool
sink_wait_calls(struct sink_rec *r, int n)
{
	int64_t due = time_mono_ns() + 2000000000LL;
	bool ok;

	pthread_mutex_lock(&r->mu);
	while (r->calls < n && time_mono_ns() < due) {
		pthread_mutex_unlock(&r->mu);
		usleep(1000);
		pthread_mutex_lock(&r->mu);
	}
	ok = r->calls >= n;
	pthread_mutex_unlock(&r->mu);
	return ok;
}

#define FW 3		/* appender threads */
#define FS 30		/* series each */
#define FC 1000		/* commits each */

struct feed_conc {
	struct tsdb_db *db;
	struct labels *ls[FW][FS];
	int w;
	int stop;	/* atomic */
	size_t errors, reads;	/* atomic */
};

static void *
feed_writer(void *arg)
{
	struct feed_conc *c = ((void **)arg)[0];
	int w = (int)(intptr_t)((void **)arg)[1];
	struct tsdb_appender *ap = tsdb_appender_new(tsdb_db_head(c->db));
	uint64_t refs[FS] = { 0 };

	for (int k = 1; k <= FC; k++) {
		for (int i = 0; i < FS; i++) {
			/* the last commit of series 0 is a staleness marker */
			double v = k == FC && i == 0 ? from_bits(STALE_BITS) : (double)(k * 100 + w);

			if (tsdb_appender_append(ap, &refs[i], c->ls[w][i], (int64_t)k * 1000, v) != 0)
				__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
		}
		if (tsdb_appender_commit(ap) != 0)
			__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
	}
	tsdb_appender_free(ap);
	return NULL;
}

static void *
feed_reader(void *arg)
{
	struct feed_conc *c = arg;
	struct matcher *m = mkm(MATCH_REGEX, "__name__", "f.*");

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		struct tsdb_series_set *ss = tsdb_db_select(c->db, &m, 1, 0, INT64_MAX);

		while (tsdb_series_set_next(ss)) {
			struct tsdb_iter *it = tsdb_series_set_iter(ss);
			int64_t t;
			double v;

			while (tsdb_iter_next(it, &t, &v))
				;
		}
		tsdb_series_set_free(ss);
		__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
	}
	matcher_free(m);
	return NULL;
}

static void
test_feed_delivery(void **state)
{
	static struct feed_conc c;
	char *dir = feed_tmpdir();
	struct sink_rec r;
	struct remote_feed *f;
	struct remote_feed_stats st;
	pthread_t wt[FW], rt[2];
	void *args[FW][2];
	int64_t last[FW][FS];
	size_t bad = 0;
	char name[32];

	(void)state;
	memset(&c, 0, sizeof(c));
	sink_init(&r);
	c.db = feed_db(dir);
	for (int w = 0; w < FW; w++)
		for (int i = 0; i < FS; i++) {
			snprintf(name, sizeof(name), "f%d_%d", w, i);
			c.ls[w][i] = mkls("__name__", name, "job", "feed", NULL);
		}
	/* writers 0 and 1's series are committed (and logged) before the
	 * feed observes: the feed finds their labels in the head; writer 2's
	 * come with series records */
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < FS; i++)
			assert_int_equal(tsdb_head_append(tsdb_db_head(c.db), NULL, c.ls[w][i], 0, -1), 0);
	f = remote_feed_new(c.db, rec_sink, &r, &(struct remote_feed_opts){ .batch = 512 });
	assert_int_equal(tsdb_head_append(tsdb_db_head(c.db), NULL, c.ls[0][0], 500, -2), 0);
	remote_feed_set_active(f, true);
	for (int i = 0; i < 2; i++)
		pthread_create(&rt[i], NULL, feed_reader, &c);
	for (int w = 0; w < FW; w++) {
		args[w][0] = &c;
		args[w][1] = (void *)(intptr_t)w;
		pthread_create(&wt[w], NULL, feed_writer, args[w]);
	}
	for (int w = 0; w < FW; w++)
		pthread_join(wt[w], NULL);
	assert_true(remote_feed_flush(f, 10000));
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(rt[i], NULL);
	assert_int_equal(c.errors, 0);

	/* every committed sample once, per series in time order, labels and
	 * value bits as committed; nothing from before the feed was active */
	pthread_mutex_lock(&r.mu);
	assert_int_equal(r.n, (size_t)FW * FS * FC);
	memset(last, 0, sizeof(last));
	for (size_t k = 0; k < r.n; k++) {
		const struct got_sample *g = &r.v[k];
		int w = -1, i = -1;
		uint64_t want;

		if (sscanf(labels_name(g->ls), "f%d_%d", &w, &i) != 2 || w < 0 || w >= FW ||
		    i < 0 || i >= FS || labels_get(g->ls, "job") == NULL || g->ls->n != 2) {
			bad++;
			continue;
		}
		want = g->t == (int64_t)FC * 1000 && i == 0 ? STALE_BITS :
		    bits_of((double)(g->t / 1000 * 100 + w));
		if (g->t != last[w][i] + 1000 || g->v != want)
			bad++;
		last[w][i] = g->t;
	}
	pthread_mutex_unlock(&r.mu);
	for (int w = 0; w < FW; w++)
		for (int i = 0; i < FS; i++)
			assert_int_equal(last[w][i], (int64_t)FC * 1000);
	remote_feed_stats(f, &st);
	printf("feed: %d appenders x %d commits of %d series + 2 readers: %zu samples "
	    "delivered, %zu out of place, %zu selects\n", FW, FC, FS, r.n, bad, c.reads);
	assert_int_equal(bad, 0);
	assert_int_equal(st.samples_in, (uint64_t)FW * FS * FC);
	assert_int_equal(st.samples_out, st.samples_in);
	assert_int_equal(st.samples_dropped, 0);
	assert_int_equal(st.samples_unresolved, 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.series, FW * FS);

	/* inactive: not observed; active again: observed */
	remote_feed_set_active(f, false);
	assert_int_equal(tsdb_head_append(tsdb_db_head(c.db), NULL, c.ls[1][1], 2000000, 1), 0);
	remote_feed_set_active(f, true);
	assert_int_equal(tsdb_head_append(tsdb_db_head(c.db), NULL, c.ls[1][2], 2000000, 2), 0);
	assert_true(remote_feed_flush(f, 5000));
	pthread_mutex_lock(&r.mu);
	assert_int_equal(r.n, (size_t)FW * FS * FC + 1);
	assert_true(labels_equal(r.v[r.n - 1].ls, c.ls[1][2]));
	pthread_mutex_unlock(&r.mu);

	{	/* the figures for /metrics */
		struct strbuf sb = STRBUF_INIT;

		remote_feed_collect(f, &sb);
		assert_non_null(strstr(strbuf_cstr(&sb),
		    "\nstrata_remote_storage_feed_samples_total 90001\n"));
		assert_non_null(strstr(strbuf_cstr(&sb),
		    "# TYPE strata_remote_storage_feed_dropped_samples_total counter\n"
		    "strata_remote_storage_feed_dropped_samples_total 0\n"));
		strbuf_free(&sb);
	}
	remote_feed_free(f);
	tsdb_db_close(c.db);
	for (int w = 0; w < FW; w++)
		for (int i = 0; i < FS; i++)
			labels_free(c.ls[w][i]);
	sink_release(&r);
	feed_rm_rf(dir);
	mem_free(dir);
}

static void
test_feed_overflow(void **state)
{
	char *dir = feed_tmpdir();
	struct tsdb_db *db = feed_db(dir);
	struct tsdb_head *h = tsdb_db_head(db);
	struct labels *a = mkls("__name__", "a", NULL), *b = mkls("__name__", "b", NULL);
	struct sink_rec r;
	struct remote_feed *f;
	struct remote_feed_stats st;
	struct tsdb_appender *ap = tsdb_appender_new(h);
	uint64_t ref = 0;
	int64_t t0;

	(void)state;
	sink_init(&r);
	f = remote_feed_new(db, rec_sink, &r, &(struct remote_feed_opts){ .max_samples = 100 });
	remote_feed_set_active(f, true);
	/* the feed thread takes a@1 and is held in the sink */
	sink_gate(&r, true);
	assert_int_equal(tsdb_head_append(h, NULL, a, 1, 1), 0);
	assert_true(sink_wait_calls(&r, 1));
	/* 50 commits of 10 samples: 100 fit, the rest is dropped, and no
	 * commit waits for the held feed */
	t0 = time_mono_ns();
	for (int k = 0; k < 50; k++) {
		for (int i = 0; i < 10; i++)
			assert_int_equal(tsdb_appender_append(ap, &ref, b, k * 10 + i + 1, k * 10 + i), 0);
		assert_int_equal(tsdb_appender_commit(ap), 0);
	}
	assert_true(time_mono_ns() - t0 < 2000000000LL);
	remote_feed_stats(f, &st);
	assert_int_equal(st.samples_in, 101);
	assert_int_equal(st.samples_dropped, 400);
	assert_int_equal(st.pending, 100);
	assert_int_equal(st.capacity, 100);
	assert_false(remote_feed_flush(f, 50));
	sink_gate(&r, false);
	assert_true(remote_feed_flush(f, 5000));
	/* what was queued arrives, in order: a@1, then b's first 100 */
	pthread_mutex_lock(&r.mu);
	assert_int_equal(r.n, 101);
	assert_true(labels_equal(r.v[0].ls, a));
	for (size_t i = 1; i < r.n; i++) {
		assert_true(labels_equal(r.v[i].ls, b));
		assert_int_equal(r.v[i].t, (int64_t)i);
		assert_int_equal(r.v[i].v, bits_of((double)(i - 1)));
	}
	pthread_mutex_unlock(&r.mu);
	remote_feed_stats(f, &st);
	assert_int_equal(st.samples_out, 101);
	assert_int_equal(st.pending, 0);
	/* room again */
	assert_int_equal(tsdb_head_append(h, NULL, a, 2, 2), 0);
	assert_true(remote_feed_flush(f, 5000));
	assert_int_equal(r.n, 102);
	printf("feed overflow: 400 of 500 samples dropped and counted while the sink was held, "
	    "commits never waited\n");
	tsdb_appender_free(ap);
	remote_feed_free(f);
	tsdb_db_close(db);
	labels_free(a);
	labels_free(b);
	sink_release(&r);
	feed_rm_rf(dir);
	mem_free(dir);
}

static void
test_feed_unresolved_and_ttl(void **state)
{
	char *dir = feed_tmpdir();
	struct tsdb_db *db = feed_db(dir);
	struct tsdb_head *h = tsdb_db_head(db);
	struct labels *x = mkls("__name__", "x", NULL), *z = mkls("__name__", "z", NULL);
	struct sink_rec r;
	struct remote_feed *f;
	struct remote_feed_stats st;
	int64_t due;

	(void)state;
	sink_init(&r);
	assert_int_equal(tsdb_head_append(h, NULL, x, 1000, 1), 0);	/* logged, no record later */
	f = remote_feed_new(db, rec_sink, &r, &(struct remote_feed_opts){ .series_ttl_ms = 40 });
	remote_feed_set_active(f, true);
	sink_gate(&r, true);
	assert_int_equal(tsdb_head_append(h, NULL, z, 2000, 2), 0);	/* with its record */
	assert_true(sink_wait_calls(&r, 1));
	assert_int_equal(tsdb_head_append(h, NULL, x, 2000, 2), 0);
	/* x leaves the head before the feed gets to it; z too, but its
	 * record was taken with its sample */
	assert_int_equal(tsdb_head_gc(h, 3000), 2);
	sink_gate(&r, false);
	assert_true(remote_feed_flush(f, 5000));
	remote_feed_stats(f, &st);
	assert_int_equal(st.samples_in, 2);
	assert_int_equal(st.samples_unresolved, 1);
	assert_int_equal(st.samples_out, 1);
	pthread_mutex_lock(&r.mu);
	assert_int_equal(r.n, 1);
	assert_true(labels_equal(r.v[0].ls, z));
	pthread_mutex_unlock(&r.mu);

	/* x comes back (a new id): resolved in the head; unused entries go
	 * after the ttl */
	assert_int_equal(tsdb_head_append(h, NULL, x, 4000, 4), 0);
	assert_true(remote_feed_flush(f, 5000));
	remote_feed_stats(f, &st);
	assert_int_equal(st.samples_out, 2);
	due = time_mono_ns() + 3000000000LL;
	do {
		usleep(5000);
		remote_feed_stats(f, &st);
	} while (st.series > 0 && time_mono_ns() < due);
	assert_int_equal(st.series, 0);
	assert_int_equal(tsdb_head_append(h, NULL, x, 5000, 5), 0);
	assert_true(remote_feed_flush(f, 5000));
	pthread_mutex_lock(&r.mu);
	assert_int_equal(r.n, 3);
	assert_true(labels_equal(r.v[1].ls, x));
	assert_true(labels_equal(r.v[2].ls, x));
	assert_int_equal(r.v[2].t, 5000);
	pthread_mutex_unlock(&r.mu);
	printf("feed: a series gone before it was resolved counted unresolved; id map entries "
	    "expire and are looked up again\n");
	remote_feed_free(f);
	tsdb_db_close(db);
	labels_free(x);
	labels_free(z);
	sink_release(&r);
	feed_rm_rf(dir);
	mem_free(dir);
}

/* test_feed_end_to_end: store -> feed -> remote_writer -> HTTP -> the
 * receiver's head; the receiver holds the store's samples bit for bit,
 * with the external label added. */
static void
test_feed_end_to_end(void **state)
{
	char *dir = feed_tmpdir();
	struct tsdb_db *db = feed_db(dir);
	/* the receiver takes writes into the past too */
	struct tsdb_head *dst = tsdb_head_new(&(struct tsdb_head_opts){ .ooo_window = 86400000 },
	    NULL, 0);
	struct remote_server *rs = remote_server_new(dst, NULL);
	struct http_server *srv;
	struct remote_writer *w;
	struct remote_feed *f;
	struct tsdb_appender *ap = tsdb_appender_new(tsdb_db_head(db));
	struct tsdb_appender *un = tsdb_appender_new_unrestricted(tsdb_db_head(db));
	struct labels *ls[20];
	uint64_t refs[20] = { 0 };
	struct matcher *m = mkm(MATCH_EQUAL, "job", "e2e");
	char err[512], url[128], name[32];
	size_t nsrc = 0, ndst = 0;

	(void)state;
	srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(remote_server_route(rs, srv, true, true), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", http_server_port(srv));
	w = writer_for("global:\n  external_labels: {site: a}\nremote_write:\n  - url: %s\n"
	    "    queue_config: {batch_send_deadline: 10ms, max_samples_per_send: 300}\n", url, 5000);
	f = remote_feed_new(db, remote_writer_sink, w, NULL);
	remote_feed_set_active(f, true);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "e2e_%d", i);
		ls[i] = mkls("__name__", name, "job", "e2e", NULL);
	}
	for (int k = 1; k <= 500; k++) {
		for (int i = 0; i < 20; i++) {
			double v = k == 250 && i == 3 ? from_bits(STALE_BITS) :
			    k == 300 && i == 4 ? NAN : k % 7 == 0 ? -k * 0.1 : k * 1e-3 + i;

			assert_int_equal(tsdb_appender_append(ap, &refs[i], ls[i], k * 15000, v), 0);
		}
		assert_int_equal(tsdb_appender_commit(ap), 0);
	}
	/* repair-style writes into the past go too (out of order) */
	for (int k = 0; k < 50; k++)
		assert_int_equal(tsdb_appender_append(un, &refs[5], ls[5], k * 15000 + 7, k), 0);
	assert_int_equal(tsdb_appender_commit(un), 0);
	assert_true(remote_feed_flush(f, 10000));
	assert_true(remote_writer_flush(w, 10000));

	{
		struct tsdb_series_set *a = tsdb_db_select(db, &m, 1, INT64_MIN, INT64_MAX);
		struct tsdb_series_set *b = tsdb_head_select(dst, &m, 1, INT64_MIN, INT64_MAX);

		while (tsdb_series_set_next(a)) {
			struct labels_builder *lb = labels_builder_new();
			struct labels *want;
			struct tsdb_iter *ia, *ib;
			int64_t ta, tb;
			double va, vb;

			assert_true(tsdb_series_set_next(b));
			labels_builder_reset(lb, tsdb_series_set_labels(a));
			labels_builder_set(lb, "site", "a");
			want = labels_builder_labels(lb);
			assert_true(labels_equal(want, tsdb_series_set_labels(b)));
			labels_free(want);
			labels_builder_free(lb);
			ia = tsdb_series_set_iter(a);
			ib = tsdb_series_set_iter(b);
			while (tsdb_iter_next(ia, &ta, &va)) {
				assert_true(tsdb_iter_next(ib, &tb, &vb));
				assert_int_equal(ta, tb);
				assert_int_equal(bits_of(va), bits_of(vb));
				nsrc++;
			}
			assert_false(tsdb_iter_next(ib, &tb, &vb));
			ndst++;
		}
		assert_false(tsdb_series_set_next(b));
		tsdb_series_set_free(a);
		tsdb_series_set_free(b);
	}
	assert_int_equal(ndst, 20);
	assert_int_equal(nsrc, 20 * 500 + 50);
	printf("feed end to end: %zu samples of %zu series in the receiver bit for bit "
	    "(staleness marker, NaN, out-of-order writes)\n", nsrc, ndst);
	remote_feed_free(f);
	remote_writer_free(w);
	tsdb_appender_free(ap);
	tsdb_appender_free(un);
	tsdb_db_close(db);
	http_server_free(srv);
	remote_server_free(rs);
	tsdb_head_free(dst);
	for (int i = 0; i < 20; i++)
		labels_free(ls[i]);
	matcher_free(m);
	feed_rm_rf(dir);
	mem_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snappy_round_trip),
		cmocka_unit_test(test_write_round_trip),
		cmocka_unit_test(test_write_wire_bytes),
		cmocka_unit_test(test_write_malformed),
		cmocka_unit_test(test_decode_oom),
		cmocka_unit_test(test_read_request_round_trip),
		cmocka_unit_test(test_read_request_malformed),
		cmocka_unit_test(test_read_response_round_trip),
		cmocka_unit_test(test_server_write),
		cmocka_unit_test(test_server_read),
		cmocka_unit_test(test_retry_after_parse),
		cmocka_unit_test(test_writer_batching),
		cmocka_unit_test(test_writer_retry_backoff),
		cmocka_unit_test(test_writer_429_and_4xx),
		cmocka_unit_test(test_writer_relabel_and_auth),
		cmocka_unit_test(test_writer_credentials_file),
		cmocka_unit_test(test_writer_dead_endpoint),
		cmocka_unit_test(test_writer_apply),
		cmocka_unit_test(test_writer_reshard),
		cmocka_unit_test(test_http_end_to_end),
		cmocka_unit_test(test_feed_delivery),
		cmocka_unit_test(test_feed_overflow),
		cmocka_unit_test(test_feed_unresolved_and_ttl),
		cmocka_unit_test(test_feed_end_to_end),
	};

	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
