/* lib/util/strbuf.c - growable NUL-terminated byte buffer. */
#include "config.h"

#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>

#include "util/mem.h"

void
strbuf_init(struct strbuf *sb)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
}

void
strbuf_free(struct strbuf *sb)
{
	MEM_FREE(sb->buf);
	sb->len = 0;
	sb->cap = 0;
}

void
strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf != NULL)
		sb->buf[0] = '\0';
}

void
strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	size_t cap;

	if (need <= sb->cap)
		return;
	cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap = cap < ((size_t)1 << 62) ? cap * 2 : need;
	sb->buf = mem_realloc(sb->buf, cap);
	sb->buf[sb->len] = '\0';	/* the first growth too: NUL-terminated once cap > 0 */
	sb->cap = cap;
}

void
strbuf_append(struct strbuf *sb, const void *data, size_t len)
{
	strbuf_grow(sb, len);
	if (len > 0)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void
strbuf_puts(struct strbuf *sb, const char *s)
{
	strbuf_append(sb, s, strlen(s));
}

void
strbuf_putc(struct strbuf *sb, char c)
{
	strbuf_grow(sb, 1);
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void
strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	strbuf_grow(sb, 64);
	va_copy(ap2, ap);
	n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if ((size_t)n >= sb->cap - sb->len) {
		strbuf_grow(sb, (size_t)n);
		vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
	}
	sb->len += (size_t)n;
}

void
strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vprintf(sb, fmt, ap);
	va_end(ap);
}

const char *
strbuf_cstr(const struct strbuf *sb)
{
	return sb->buf != NULL ? sb->buf : "";
}

char *
strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *p;

	if (sb->buf == NULL)
		strbuf_grow(sb, 0);
	p = sb->buf;
	if (len != NULL)
		*len = sb->len;
	strbuf_init(sb);
	return p;
}
