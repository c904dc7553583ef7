/* tests/fuzz/fuzz_expfmt.c - libFuzzer target for lib/expfmt.
 *
 * The first byte picks the format (even: text, odd: OpenMetrics); the rest is
 * the body. Every entry is checked for sane slices (inside the body or the
 * parser's scratch), and every sample of a text body is written back with
 * the writer and parsed again: the second parse must give the same name,
 * labels, value bits and timestamp (a negative OpenMetrics timestamp must be
 * refused by the text parser instead, as Prometheus' is). A text body is
 * then parsed again with series hints (expfmt_expect: length and hash, as
 * the scrape cache gives them): before each entry the series of the sample
 * at that place in the first pass, or of another sample (a wrong hint), as
 * the input's bits choose; the second pass must return the same entries,
 * samples and error, and every hash it returns must be its series'.
 * Build: make tests/fuzz/fuzz_expfmt.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expfmt/parse.h"
#include "expfmt/write.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_roundtrip(const struct expfmt_entry *e)
{
	struct strbuf sb = STRBUF_INIT;
	struct expfmt_parser *p;
	struct expfmt_entry r;
	size_t i;

	expfmt_write_sample(&sb, e->name.p, e->name.len, e->labels, e->nlabels, e->value,
	    e->has_ts, e->ts);
	p = expfmt_parser_new(EXPFMT_TEXT, sb.buf, sb.len);
	if (e->has_ts && e->ts < 0) {
		/* OpenMetrics allows timestamps before 1970; the text format,
		 * like Prometheus' promlex, has no sign on a timestamp. */
		if (expfmt_next(p, &r) != EXPFMT_ERROR ||
		    strcmp(expfmt_error(p)->msg,
		    "expected timestamp or new record, got \"INVALID\"") != 0)
			abort();
		expfmt_parser_free(p);
		strbuf_free(&sb);
		return;
	}
	if (expfmt_next(p, &r) != EXPFMT_SAMPLE)
		abort();
	if (r.name.len != e->name.len || memcmp(r.name.p, e->name.p, r.name.len) != 0)
		abort();
	if (r.nlabels != e->nlabels)
		abort();
	for (i = 0; i < r.nlabels; i++) {
		if (r.labels[i].name.len != e->labels[i].name.len ||
		    memcmp(r.labels[i].name.p, e->labels[i].name.p, r.labels[i].name.len) != 0)
			abort();
		if (r.labels[i].value.len != e->labels[i].value.len ||
		    memcmp(r.labels[i].value.p, e->labels[i].value.p, r.labels[i].value.len) != 0)
			abort();
	}
	if (memcmp(&r.value, &e->value, sizeof(r.value)) != 0 &&
	    !(r.value == 0 && e->value == 0))
		abort();	/* -0 is written as 0, as Prometheus does */
	if (r.has_ts != e->has_ts || (r.has_ts && r.ts != e->ts))
		abort();
	if (expfmt_next(p, &r) != EXPFMT_EOF)
		abort();
	expfmt_parser_free(p);
	strbuf_free(&sb);
}

/* What the first pass returned, for the hinted second pass. */
struct seen {
	enum expfmt_kind kind;
	const char *series;	/* SAMPLE: in the body */
	size_t series_len;
	uint8_t shape;
	uint64_t value_bits;
	bool has_ts;
	int64_t ts;
};

/* fuzz_check_hints parses body again with a hint before every entry:
 * the series of the sample first seen at that place, or (when the input's
 * bit for that place is set) of the sample after it. The entries must be
 * those of the first pass, and the end (EOF or the same error). */
static void
fuzz_check_hints(const char *body, size_t len, const uint8_t *bits, size_t nbits,
    const struct seen *v, size_t n, enum expfmt_kind last, const struct expfmt_error *err1)
{
	struct expfmt_parser *p = expfmt_parser_new(EXPFMT_TEXT, body, len);
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (len + 1);
	struct expfmt_hint hint = { .seed = seed };	/* borrowed by p */
	struct expfmt_entry e;
	enum expfmt_kind k;
	size_t i, j;

	for (i = 0;; i++) {
		const struct seen *h = NULL;

		/* the sample at i or after; a set bit picks the next one */
		for (j = i; j < n && v[j].kind != EXPFMT_SAMPLE; j++)
			;
		if (j < n && nbits > 0 && (bits[i % nbits] & 1)) {
			for (j++; j < n && v[j].kind != EXPFMT_SAMPLE; j++)
				;
		}
		if (j < n)
			h = &v[j];
		if (h != NULL) {
			hint.len = h->series_len;
			hint.shape = h->shape;
			hint.hash = expfmt_series_hash(h->series, h->series_len, seed);
			expfmt_expect(p, &hint);
		}
		k = expfmt_next(p, &e);
		if (k <= 0)
			break;
		if (i >= n || k != v[i].kind)
			abort();
		if (k != EXPFMT_SAMPLE)
			continue;
		if (e.series.len != v[i].series_len || memcmp(e.series.p, v[i].series, e.series.len) != 0)
			abort();
		if (memcmp(&e.value, &v[i].value_bits, sizeof(e.value)) != 0)
			abort();
		if (e.has_ts != v[i].has_ts || (e.has_ts && e.ts != v[i].ts))
			abort();
		if (e.expected && (e.nlabels != 0 || !e.has_hash || h == NULL ||
		    h->series_len != e.series.len ||
		    memcmp(h->series, e.series.p, e.series.len) != 0))
			abort();
		if (e.shape != v[i].shape)
			abort();
		if (e.has_hash) {
			struct expfmt_hash x = expfmt_series_hash(e.series.p, e.series.len, seed);

			if (x.lo != e.hash.lo || x.hi != e.hash.hi)
				abort();
		}
	}
	if (i != n || k != last)
		abort();
	if (k == EXPFMT_ERROR) {
		const struct expfmt_error *err2 = expfmt_error(p);

		if (err2->line != err1->line || err2->column != err1->column ||
		    strcmp(err2->msg, err1->msg) != 0)
			abort();
	}
	expfmt_parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct expfmt_parser *p;
	struct expfmt_entry e;
	enum expfmt_format fmt;
	enum expfmt_kind k;
	char *body;
	size_t len, guard = 0;
	struct seen *v = NULL;
	size_t nv = 0, capv = 0;

	if (size < 1)
		return 0;
	fmt = (data[0] & 1) ? EXPFMT_OPENMETRICS : EXPFMT_TEXT;
	len = size - 1;
	/* a private copy so reads past the end are caught by ASan */
	body = malloc(len ? len : 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + 1, len);
	p = expfmt_parser_new(fmt, body, len);
	while ((k = expfmt_next(p, &e)) > 0) {
		size_t i;

		if (++guard > len + 1)
			abort();	/* every entry consumes input */
		if (fmt == EXPFMT_TEXT) {
			if (nv == capv) {
				struct seen *nvp;

				capv = capv ? capv * 2 : 16;
				if ((nvp = realloc(v, capv * sizeof(*v))) == NULL)
					abort();
				v = nvp;
			}
			memset(&v[nv], 0, sizeof(v[nv]));
			v[nv].kind = k;
			if (k == EXPFMT_SAMPLE) {
				v[nv].series = e.series.p;
				v[nv].series_len = e.series.len;
				v[nv].shape = e.shape;
				memcpy(&v[nv].value_bits, &e.value, sizeof(e.value));
				v[nv].has_ts = e.has_ts;
				v[nv].ts = e.ts;
			}
			nv++;
		}
		if (k != EXPFMT_SAMPLE)
			continue;
		if (e.series.p < body || e.series.p + e.series.len > body + len)
			abort();
		for (i = 0; i < e.nlabels; i++)
			if (e.labels[i].value.len && e.labels[i].value.p == NULL)
				abort();
		fuzz_check_roundtrip(&e);
	}
	if (k == EXPFMT_ERROR) {
		const struct expfmt_error *err = expfmt_error(p);

		if (err == NULL || err->line == 0 || err->column == 0 || err->msg[0] == '\0')
			abort();
	}
	if (fmt == EXPFMT_TEXT)
		fuzz_check_hints(body, len, data + 1, len, v, nv, k, expfmt_error(p));
	free(v);
	expfmt_parser_free(p);
	free(body);
	return 0;
}
