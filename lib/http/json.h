/* lib/http/json.h - a small JSON writer onto a struct strbuf.
 *
 * Writes JSON the way Prometheus' API does (Go encoding/json semantics as
 * used through json-iterator's standard-library-compatible config): strings
 * escape '"', '\\', control bytes (\n, \r, \t short, the rest as \u00XX),
 * '<', '>', '&' as \u003c, \u003e, \u0026, U+2028/U+2029, and every byte of
 * invalid UTF-8 becomes \ufffd. A struct json_writer tracks nesting so
 * commas and colons come out right; it is a plain value owned by the
 * caller, and it does not own the strbuf it writes to. Not thread-safe; one
 * writer per response.
 */
#ifndef STRATA_HTTP_JSON_H
#define STRATA_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "util/strbuf.h"

#define JSON_MAX_DEPTH 64

struct json_writer {
	struct strbuf *sb;	/* output; not owned */
	unsigned depth;		/* open arrays/objects */
	uint64_t nonempty;	/* bit d: level d already holds a value */
	bool after_key;		/* a key was written, its value comes next */
	bool overflow;		/* nesting went past JSON_MAX_DEPTH */
};

/* json_init starts a writer appending to sb. */
void json_init(struct json_writer *w, struct strbuf *sb);
void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);
/* json_key writes an object key (NUL-terminated) and the colon. */
void json_key(struct json_writer *w, const char *key);
void json_key_n(struct json_writer *w, const char *key, size_t len);
/* json_string writes a quoted, escaped string; NULL writes null. */
void json_string(struct json_writer *w, const char *s);
void json_string_n(struct json_writer *w, const char *s, size_t len);
void json_int(struct json_writer *w, int64_t v);
void json_uint(struct json_writer *w, uint64_t v);
/* json_double writes v as Go's encoding/json does (shortest round-trip,
 * exponent form outside [1e-6, 1e21)); NaN and infinities, which JSON
 * cannot hold, are written as null. */
void json_double(struct json_writer *w, double v);
/* json_float_string writes v as a JSON string the way Prometheus writes
 * sample values: strconv.FormatFloat(v, 'f', -1, 64), "NaN", "+Inf", "-Inf". */
void json_float_string(struct json_writer *w, double v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
/* json_labels writes ls as an object of its labels, in their (sorted)
 * order, as Prometheus marshals a label set; NULL writes {}. */
void json_labels(struct json_writer *w, const struct labels *ls);
/* json_raw writes len bytes of already-encoded JSON as one value. */
void json_raw(struct json_writer *w, const char *s, size_t len);
/* json_ok tells whether the document is complete and nesting never
 * overflowed. */
bool json_ok(const struct json_writer *w);

/* json_escape appends s (len bytes) to sb as a quoted JSON string. */
void json_escape(struct strbuf *sb, const char *s, size_t len);
/* json_format_float writes v in Go's strconv.FormatFloat(v, fmt, -1, 64)
 * form for fmt 'f' or 'e' into sb (unquoted; "NaN", "+Inf", "-Inf"). */
void json_format_float(struct strbuf *sb, double v, char fmt);

#endif
