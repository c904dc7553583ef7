/* lib/http/gzip.c - streaming gzip/deflate encoder on zlib.
 *
 * Owns one z_stream per encoder; zlib's own allocations go through the
 * mem.h seam (they are sized by the level, not by remote input, so the
 * aborting variants are right). Output grows the caller's strbuf in steps of
 * at least 16 KiB. No shared state: an encoder is used by one thread at a time.
 */
#include "config.h"

#include "http/gzip.h"

#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "util/mem.h"

struct http_gzip {
	z_stream zs;
	bool done;
};

static voidpf
gz_zalloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return mem_calloc(items, size);
}

static void
gz_zfree(voidpf opaque, voidpf p)
{
	(void)opaque;
	mem_free(p);
}

struct http_gzip *
http_gzip_new(int level, bool deflate)
{
	struct http_gzip *z = mem_calloc(1, sizeof(*z));

	if (level < 1 || level > 9)
		level = 1;
	z->zs.zalloc = gz_zalloc;
	z->zs.zfree = gz_zfree;
	if (deflateInit2(&z->zs, level, Z_DEFLATED, deflate ? 15 : 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		mem_free(z);
		return NULL;
	}
	return z;
}

/* gz_run feeds data through deflate with flush mode, appending output. */
static int
gz_run(struct http_gzip *z, const void *data, size_t len, int flush,
    struct strbuf *out)
{
	const unsigned char *p = data;
	int rc;

	if (z->done)
		return -1;
	do {
		size_t chunk = len > (1u << 30) ? (1u << 30) : len;
		size_t room;

		z->zs.next_in = (Bytef *)(uintptr_t)p;
		z->zs.avail_in = (uInt)chunk;
		do {
			strbuf_grow(out, 16384 + chunk / 4);
			room = out->cap - out->len - 1;
			if (room > (1u << 30))
				room = 1u << 30;
			z->zs.next_out = (Bytef *)out->buf + out->len;
			z->zs.avail_out = (uInt)room;
			rc = deflate(&z->zs, len == chunk ? flush : Z_NO_FLUSH);
			out->len += room - z->zs.avail_out;
			out->buf[out->len] = '\0';
			if (rc == Z_STREAM_ERROR)
				return -1;
		} while (z->zs.avail_out == 0 ||
		    (len == chunk && flush == Z_FINISH && rc != Z_STREAM_END));
		p += chunk;
		len -= chunk;
	} while (len > 0);
	if (flush == Z_FINISH)
		z->done = true;
	return 0;
}

int
http_gzip_write(struct http_gzip *z, const void *data, size_t len,
    struct strbuf *out)
{
	if (len == 0)
		return 0;
	return gz_run(z, data, len, Z_NO_FLUSH, out);
}

int
http_gzip_finish(struct http_gzip *z, struct strbuf *out)
{
	return gz_run(z, "", 0, Z_FINISH, out);
}

void
http_gzip_free(struct http_gzip *z)
{
	if (z == NULL)
		return;
	deflateEnd(&z->zs);
	mem_free(z);
}

int
http_gzip_compress(int level, bool deflate, const void *data, size_t len,
    struct strbuf *out)
{
	struct http_gzip *z = http_gzip_new(level, deflate);
	int rc;

	if (z == NULL)
		return -1;
	strbuf_grow(out, len / 3 + 64);
	rc = gz_run(z, data, len, Z_FINISH, out);
	http_gzip_free(z);
	return rc;
}
