/* tests/unit/test_remote.c - lib/remote: codec, receiver, read endpoint,
 * remote write queue and remote read client.
 *
 * Codec tests round-trip the wire messages (NaN payloads, infinities and the
 * staleness marker bit-exact) and feed malformed, truncated and oversize
 * snappy and protobuf bodies, which must be refused with a message. The
 * server tests run the receiver and the read endpoint on a real head. The
 * client tests run lib/http servers on 127.0.0.1 port 0 that fail on
 * purpose (5xx, 429, 400, connection refused) and check batching, retries,
 * backoff, relabeling and the figures. Every wait is bounded.
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

#include "config/config.h"
#include "http/server.h"
#include "labels/labels.h"
#include "labels/matcher.h"
#include "remote/client.h"
#include "remote/codec.h"
#include "remote/read.h"
#include "remote/server.h"
#include "remote/write.h"
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
		char v[8];

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
