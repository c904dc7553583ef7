/* tests/fuzz/fuzz_remote.c - libFuzzer target for lib/remote's decoders.
 *
 * The first byte picks what the rest is fed to: a raw WriteRequest, a
 * snappy-compressed WriteRequest, ReadRequest or ReadResponse. Nothing may
 * crash or leak; a WriteRequest that decodes must encode and decode again
 * to the same series (labels, timestamps and value bits; -0 may come back
 * as +0, which proto3 does not send).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote/codec.h"
#include "util/mem.h"

#define MAX_DECODED (1u << 22)

static void
check_round_trip(const struct remote_write_req *a)
{
	struct strbuf body = STRBUF_INIT;
	struct remote_write_req b;
	char err[1024];

	remote_encode_write(a->series, a->nseries, &body);
	if (remote_decode_write(body.buf, body.len, (size_t)1 << 30, &b, err, sizeof(err)) != 0)
		abort();
	if (b.nseries != a->nseries)
		abort();
	for (size_t i = 0; i < a->nseries; i++) {
		if (!labels_equal(a->series[i].ls, b.series[i].ls) || a->series[i].n != b.series[i].n)
			abort();
		for (size_t j = 0; j < a->series[i].n; j++) {
			uint64_t x, y;

			memcpy(&x, &a->series[i].s[j].v, 8);
			memcpy(&y, &b.series[i].s[j].v, 8);
			if (a->series[i].s[j].t != b.series[i].s[j].t ||
			    (x != y && !(x == UINT64_C(0x8000000000000000) && y == 0)))
				abort();
		}
	}
	remote_write_req_free(&b);
	strbuf_free(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: {
		struct remote_write_req wr;

		if (remote_decode_write_pb(data + 1, size - 1, &wr, err, sizeof(err)) == 0) {
			check_round_trip(&wr);
			remote_write_req_free(&wr);
		}
		break;
	}
	case 1: {
		struct remote_write_req wr;

		if (remote_decode_write(data + 1, size - 1, MAX_DECODED, &wr, err, sizeof(err)) == 0)
			remote_write_req_free(&wr);
		break;
	}
	case 2: {
		struct remote_read_req rr;

		if (remote_decode_read_request(data + 1, size - 1, MAX_DECODED, &rr, err,
		    sizeof(err)) == 0)
			remote_read_req_free(&rr);
		break;
	}
	default: {
		struct remote_read_resp rr;

		if (remote_decode_read_response(data + 1, size - 1, MAX_DECODED, &rr, err,
		    sizeof(err)) == 0)
			remote_read_resp_free(&rr);
		break;
	}
	}
	return 0;
}
