/* lib/expfmt/parse.h - pull parser for Prometheus text 0.0.4 and OpenMetrics 1.0.
 *
 * The parser walks an in-memory body (a scrape response) and returns one
 * entry per call: a sample, a TYPE, HELP or UNIT line, a comment, or the end.
 * It is zero-copy: every slice it hands out points into the body, except
 * label values and HELP texts that had escapes to decode, which point into a
 * scratch buffer the parser owns. All of them stay valid until the next call
 * to expfmt_next() (or expfmt_reset/free); the body must outlive that.
 * Nothing is allocated per sample: the label arrays and the scratch buffer
 * grow to the largest line seen and are reused.
 *
 * Validation follows Prometheus 2.42's textparse (promparse for text,
 * openmetricsparse for OpenMetrics) token by token, with its error messages;
 * OpenMetrics adds what the OpenMetrics test corpus requires of a parser
 * (# EOF required and final, family grouping, metadata placement, histogram,
 * summary, stateset and info rules, counter values, exemplar size). Both
 * formats refuse duplicate label names and invalid UTF-8 in label values.
 *
 * One parser per thread; a parser holds no global state.
 */
#ifndef STRATA_EXPFMT_PARSE_H
#define STRATA_EXPFMT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum expfmt_format {
	EXPFMT_TEXT,		/* text/plain; version=0.0.4 */
	EXPFMT_OPENMETRICS,	/* application/openmetrics-text; version=1.0.0 */
};

/* What expfmt_next() found. */
enum expfmt_kind {
	EXPFMT_ERROR = -1,	/* see expfmt_error(); the parser stays failed */
	EXPFMT_EOF = 0,		/* body fully consumed (OpenMetrics: after # EOF) */
	EXPFMT_SAMPLE,
	EXPFMT_TYPE,
	EXPFMT_HELP,
	EXPFMT_UNIT,		/* OpenMetrics only */
	EXPFMT_COMMENT,		/* text format only */
};

/* Metric types, as TYPE lines name them. UNKNOWN is "untyped" in text
 * format and "unknown" in OpenMetrics. */
enum expfmt_type {
	EXPFMT_UNKNOWN,
	EXPFMT_COUNTER,
	EXPFMT_GAUGE,
	EXPFMT_HISTOGRAM,
	EXPFMT_GAUGEHISTOGRAM,
	EXPFMT_SUMMARY,
	EXPFMT_INFO,
	EXPFMT_STATESET,
};

/* A byte range; not NUL-terminated. */
struct expfmt_str {
	const char *p;
	size_t len;
};

/* One label, name and value decoded (escapes resolved). */
struct expfmt_label {
	struct expfmt_str name;
	struct expfmt_str value;
};

/* A 128-bit series hash (expfmt_series_hash). */
struct expfmt_hash {
	uint64_t lo, hi;
};

/* The entry expfmt_next() filled in. Fields not listed for a kind are unset. */
struct expfmt_entry {
	enum expfmt_kind kind;
	/* SAMPLE, TYPE, HELP, UNIT: the metric name (family name for metadata) */
	struct expfmt_str name;
	/* HELP: the text, unescaped; UNIT: the unit; COMMENT: the text after
	 * "#" and the blanks that follow it */
	struct expfmt_str text;
	/* TYPE */
	enum expfmt_type type;

	/* SAMPLE: name and label block exactly as in the body, e.g.
	 * `up{job="x"}`: a cache key that identifies the series */
	struct expfmt_str series;
	const struct expfmt_label *labels;	/* in input order, no __name__ */
	size_t nlabels;
	/* the series is the one expfmt_expect() announced: its labels were
	 * not parsed again (labels NULL, nlabels 0) */
	bool expected;
	/* text format: the series' shape for expfmt_expect(), the name's
	 * length (1-127; 0: longer) and EXPFMT_SHAPE_LINES when a label value
	 * holds a newline */
	uint8_t shape;
	/* hash is expfmt_series_hash(series, the hint's seed), computed while
	 * checking a hint of the series' length: always with expected */
	bool has_hash;
	struct expfmt_hash hash;
	double value;		/* NaN is always 0x7ff8000000000001, as in Go */
	bool has_ts;
	int64_t ts;		/* milliseconds */

	/* SAMPLE, OpenMetrics only */
	bool has_exemplar;
	const struct expfmt_label *ex_labels;
	size_t ex_nlabels;
	double ex_value;
	bool ex_has_ts;
	int64_t ex_ts;		/* milliseconds */
};

/* Where and why parsing failed. */
struct expfmt_error {
	size_t line;		/* 1-based */
	size_t column;		/* 1-based, in bytes */
	char msg[256];
};

struct expfmt_parser;

/* expfmt_format_from_content_type returns the format a scrape response with
 * this Content-Type header (may be NULL) is parsed as, as Prometheus 2.42
 * decides: application/openmetrics-text is OpenMetrics, anything else text. */
enum expfmt_format expfmt_format_from_content_type(const char *ct);

/* expfmt_parser_new returns a parser for fmt over body[0..len) (body may be
 * NULL when len is 0; it is borrowed and must outlive the parse). Caller frees
 * with expfmt_parser_free(). */
struct expfmt_parser *expfmt_parser_new(enum expfmt_format fmt, const char *body, size_t len);
/* expfmt_parser_free releases p; NULL is a no-op. */
void expfmt_parser_free(struct expfmt_parser *p);
/* expfmt_reset restarts p on a new body (and format), keeping its buffers:
 * a scrape loop keeps one parser per target. */
void expfmt_reset(struct expfmt_parser *p, enum expfmt_format fmt, const char *body, size_t len);

/* expfmt_next parses the next entry into *e and returns its kind: a kind > 0,
 * EXPFMT_EOF at the end (again on every later call), or EXPFMT_ERROR (again on
 * every later call) with details in expfmt_error(). Pointers in *e are valid
 * until the next call on p. */
enum expfmt_kind expfmt_next(struct expfmt_parser *p, struct expfmt_entry *e);

/* expfmt_series_hash returns the seeded 128-bit XXH3 hash of s[0..len):
 * what hints are checked with (and what the scrape cache keys series by). */
struct expfmt_hash expfmt_series_hash(const char *s, size_t len, uint64_t seed);

#define EXPFMT_SHAPE_NAME 0x7f	/* entry.shape: the name's length */
#define EXPFMT_SHAPE_LINES 0x80	/* entry.shape: the series spans lines */

/* A series announced to expfmt_expect(): a series (entry.series) that a
 * text-format parse returned, by its length, its shape (entry.shape) and
 * its hash under seed (expfmt_series_hash). */
struct expfmt_hint {
	size_t len;		/* 0: no hint */
	uint8_t shape;
	struct expfmt_hash hash;
	uint64_t seed;
};

/* expfmt_expect announces the series of the next sample, e.g. the series
 * that followed the last one in the previous scrape of the same target.
 * h is borrowed and read again at every sample line until expfmt_expect()
 * replaces it (NULL: no hint) or expfmt_reset(): a caller changes *h
 * between expfmt_next() calls (h->len 0 announces nothing). When
 * the next sample line of a text-format body has h->len bytes that can be
 * a whole series (a label block's '}' last, or a bare name followed by
 * neither more name nor a label block) and hash to h->hash, expfmt_next() does not parse its
 * labels again: identical bytes were checked before (two texts of one
 * hash are as likely as a 128-bit collision), and the shape tells where
 * the name ends and whether to count lines. The entry then has `expected`
 * set, no labels, and the hash; everything else (name, series, value,
 * timestamp, errors on the rest of the line) is as without the hint.
 * OpenMetrics ignores hints: its family checks need every sample's
 * labels. */
void expfmt_expect(struct expfmt_parser *p, const struct expfmt_hint *h);

/* expfmt_error returns the error of a failed parser (NULL if it has not
 * failed); owned by p. */
const struct expfmt_error *expfmt_error(const struct expfmt_parser *p);

/* expfmt_parse_float parses s[0..len) as Go's strconv.ParseFloat does under
 * Prometheus' rules (decimal, Inf/Infinity/NaN in any case, no hex, no '_',
 * out of range is an error). Returns 0 and the value, or -1. */
int expfmt_parse_float(const char *s, size_t len, double *out);

/* expfmt_type_name returns the name of t in fmt ("untyped" vs "unknown"). */
const char *expfmt_type_name(enum expfmt_type t, enum expfmt_format fmt);

#endif
