/* tests/fuzz/fuzz_expfmt.c - libFuzzer target for lib/expfmt.
 *
 * The first byte picks the format (even: text, odd: OpenMetrics); the rest is
 * the body. Every entry is checked for sane slices (inside the body or the
 * parser's scratch), and every sample of a text body is written back with
 * the writer and parsed again: the second parse must give the same name,
 * labels, value bits and timestamp (a negative OpenMetrics timestamp must be
 * refused by the text parser instead, as Prometheus' is). Build: make tests/fuzz/fuzz_expfmt.
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct expfmt_parser *p;
	struct expfmt_entry e;
	enum expfmt_format fmt;
	enum expfmt_kind k;
	char *body;
	size_t len, guard = 0;

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
	expfmt_parser_free(p);
	free(body);
	return 0;
}
