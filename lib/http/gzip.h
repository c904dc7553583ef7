/* lib/http/gzip.h - streaming gzip/deflate encoder for HTTP response bodies.
 *
 * A struct http_gzip wraps one zlib deflate stream. Bytes go in with
 * http_gzip_write() and the compressed bytes are appended to a caller's
 * strbuf as zlib produces them, so a streamed response never holds more than
 * zlib's window plus one chunk. http_gzip_finish() flushes the trailer. One
 * encoder belongs to one response and is used by one thread at a time.
 * The "gzip" format is RFC 1952 (Content-Encoding: gzip); the "deflate"
 * format is the zlib wrapper of RFC 1950, which is what Go's zlib.Writer and
 * hence Prometheus send for Content-Encoding: deflate.
 */
#ifndef STRATA_HTTP_GZIP_H
#define STRATA_HTTP_GZIP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

struct http_gzip;

/* http_gzip_new returns an encoder at level (1..9; 0 or out of range means
 * 1) writing gzip, or the zlib "deflate" format when deflate is true. NULL
 * only if zlib refuses to initialise. Caller frees with http_gzip_free(). */
struct http_gzip *http_gzip_new(int level, bool deflate);
/* http_gzip_write compresses len bytes of data and appends whatever output
 * zlib emits to out. Returns 0, or -1 if zlib reports an error. */
int http_gzip_write(struct http_gzip *z, const void *data, size_t len,
    struct strbuf *out);
/* http_gzip_finish ends the stream, appending the remaining output and the
 * trailer to out. Returns 0 or -1. No writes may follow. */
int http_gzip_finish(struct http_gzip *z, struct strbuf *out);
/* http_gzip_free releases z; NULL is a no-op. */
void http_gzip_free(struct http_gzip *z);

/* http_gzip_compress compresses len bytes of data in one go into out (which
 * is appended to). Returns 0 or -1. */
int http_gzip_compress(int level, bool deflate, const void *data, size_t len,
    struct strbuf *out);

#endif
