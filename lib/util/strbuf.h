/* lib/util/strbuf.h - a growable byte buffer, always NUL-terminated.
 *
 * A struct strbuf is a plain value: zero it (or strbuf_init) and append.
 * It owns its bytes; strbuf_free() releases them and strbuf_detach() hands
 * them to the caller. Growth aborts on OOM (mem_realloc): use it for output
 * the program builds, and bound what remote input can make it hold.
 */
#ifndef STRATA_UTIL_STRBUF_H
#define STRATA_UTIL_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf;	/* NUL-terminated when cap > 0; NULL before first growth */
	size_t len;	/* bytes in use, excluding the NUL */
	size_t cap;	/* bytes allocated */
};

#define STRBUF_INIT { NULL, 0, 0 }

void strbuf_init(struct strbuf *sb);
/* strbuf_free releases the bytes and leaves sb empty and reusable. */
void strbuf_free(struct strbuf *sb);
/* strbuf_reset empties sb, keeping its allocation. */
void strbuf_reset(struct strbuf *sb);
/* strbuf_grow makes room for at least extra more bytes. */
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_append(struct strbuf *sb, const void *data, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* strbuf_cstr returns the contents as a C string ("" when empty); valid
 * until the next change to sb. */
const char *strbuf_cstr(const struct strbuf *sb);
/* strbuf_detach returns the bytes (caller frees with mem_free()) and leaves
 * sb empty. Never NULL. */
char *strbuf_detach(struct strbuf *sb, size_t *len);

#endif
