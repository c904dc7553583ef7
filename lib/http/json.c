/* lib/http/json.c - JSON writer with Go encoding/json escaping and numbers.
 *
 * Stateless apart from the caller's struct json_writer. String escaping
 * decodes UTF-8 exactly as Go's utf8.DecodeRuneInString does (no overlongs,
 * no surrogates, nothing past U+10FFFF), so each invalid byte becomes one
 * \ufffd just like Go. Floats use the shortest decimal that reads back to
 * the same double (found by trying printf precisions), then are laid out in
 * Go's 'f' or 'e' form.
 */
#include "config.h"

#include "http/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/float.h"

static const char json_hex[] = "0123456789abcdef";

/* utf8_decode returns the length of the valid UTF-8 sequence at s (at most
 * n bytes) and its code point in *cp, or 0 when the first byte starts no
 * valid sequence. */
static size_t
utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		if (n < 2 || (s[1] & 0xc0) != 0x80)
			return 0;
		*cp = ((c & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = c == 0xe0 ? 0xa0 : 0x80;
		unsigned hi = c == 0xed ? 0x9f : 0xbf;

		if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		*cp = ((c & 0x0f) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3f);
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = c == 0xf0 ? 0x90 : 0x80;
		unsigned hi = c == 0xf4 ? 0x8f : 0xbf;

		if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		*cp = ((c & 0x07) << 18) | ((s[1] & 0x3fu) << 12) |
		    ((s[2] & 0x3fu) << 6) | (s[3] & 0x3f);
		return 4;
	}
	return 0;
}

void
json_escape(struct strbuf *sb, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, start = 0;

	strbuf_grow(sb, len + 2);
	strbuf_putc(sb, '"');
	while (i < len) {
		unsigned c = s[i], cp;
		size_t n;
		char esc[6];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' &&
		    c != '<' && c != '>' && c != '&') {
			i++;
			continue;
		}
		if (c < 0x80) {
			strbuf_append(sb, s + start, i - start);
			if (c == '"' || c == '\\') {
				esc[0] = '\\';
				esc[1] = (char)c;
				strbuf_append(sb, esc, 2);
			} else if (c == '\n') {
				strbuf_append(sb, "\\n", 2);
			} else if (c == '\r') {
				strbuf_append(sb, "\\r", 2);
			} else if (c == '\t') {
				strbuf_append(sb, "\\t", 2);
			} else {
				memcpy(esc, "\\u00", 4);
				esc[4] = json_hex[c >> 4];
				esc[5] = json_hex[c & 15];
				strbuf_append(sb, esc, 6);
			}
			start = ++i;
			continue;
		}
		n = utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			strbuf_append(sb, s + start, i - start);
			strbuf_append(sb, "\\ufffd", 6);
			start = ++i;
			continue;
		}
		if (cp == 0x2028 || cp == 0x2029) {
			strbuf_append(sb, s + start, i - start);
			strbuf_append(sb, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
			i += n;
			start = i;
			continue;
		}
		i += n;
	}
	strbuf_append(sb, s + start, i - start);
	strbuf_putc(sb, '"');
}

void
json_format_float(struct strbuf *sb, double v, char fmt)
{
	float_format(sb, v, fmt);
}

void
json_init(struct json_writer *w, struct strbuf *sb)
{
	memset(w, 0, sizeof(*w));
	w->sb = sb;
}

/* json_sep writes the comma a new value at the current level needs. */
static void
json_sep(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0 && w->depth <= JSON_MAX_DEPTH) {
		uint64_t bit = (uint64_t)1 << (w->depth - 1);

		if (w->nonempty & bit)
			strbuf_putc(w->sb, ',');
		w->nonempty |= bit;
	}
}

static void
json_open(struct json_writer *w, char c)
{
	json_sep(w);
	strbuf_putc(w->sb, c);
	w->depth++;
	if (w->depth > JSON_MAX_DEPTH)
		w->overflow = true;
	else
		w->nonempty &= ~((uint64_t)1 << (w->depth - 1));
}

static void
json_close(struct json_writer *w, char c)
{
	strbuf_putc(w->sb, c);
	if (w->depth > 0)
		w->depth--;
	w->after_key = false;
}

void json_object_begin(struct json_writer *w) { json_open(w, '{'); }
void json_object_end(struct json_writer *w) { json_close(w, '}'); }
void json_array_begin(struct json_writer *w) { json_open(w, '['); }
void json_array_end(struct json_writer *w) { json_close(w, ']'); }

void
json_key_n(struct json_writer *w, const char *key, size_t len)
{
	json_sep(w);
	json_escape(w->sb, key, len);
	strbuf_putc(w->sb, ':');
	w->after_key = true;
}

void
json_key(struct json_writer *w, const char *key)
{
	json_key_n(w, key, strlen(key));
}

void
json_string_n(struct json_writer *w, const char *s, size_t len)
{
	json_sep(w);
	json_escape(w->sb, s, len);
}

void
json_string(struct json_writer *w, const char *s)
{
	if (s == NULL)
		json_null(w);
	else
		json_string_n(w, s, strlen(s));
}

void
json_int(struct json_writer *w, int64_t v)
{
	json_sep(w);
	strbuf_printf(w->sb, "%lld", (long long)v);
}

void
json_uint(struct json_writer *w, uint64_t v)
{
	json_sep(w);
	strbuf_printf(w->sb, "%llu", (unsigned long long)v);
}

void
json_double(struct json_writer *w, double v)
{
	double a = fabs(v);
	size_t n;

	json_sep(w);
	if (!isfinite(v)) {
		strbuf_puts(w->sb, "null");
		return;
	}
	if (a != 0 && (a < 1e-6 || a >= 1e21)) {
		json_format_float(w->sb, v, 'e');
		/* Go trims "e-07" to "e-7" (not "e+07"). */
		n = w->sb->len;
		if (n >= 4 && w->sb->buf[n - 4] == 'e' &&
		    w->sb->buf[n - 3] == '-' && w->sb->buf[n - 2] == '0') {
			w->sb->buf[n - 2] = w->sb->buf[n - 1];
			w->sb->len--;
			w->sb->buf[w->sb->len] = '\0';
		}
		return;
	}
	json_format_float(w->sb, v, 'f');
}

void
json_float_string(struct json_writer *w, double v)
{
	json_sep(w);
	strbuf_putc(w->sb, '"');
	json_format_float(w->sb, v, 'f');
	strbuf_putc(w->sb, '"');
}

void
json_bool(struct json_writer *w, bool v)
{
	json_sep(w);
	strbuf_puts(w->sb, v ? "true" : "false");
}

void
json_null(struct json_writer *w)
{
	json_sep(w);
	strbuf_puts(w->sb, "null");
}

void
json_raw(struct json_writer *w, const char *s, size_t len)
{
	json_sep(w);
	strbuf_append(w->sb, s, len);
}

bool
json_ok(const struct json_writer *w)
{
	return w->depth == 0 && !w->overflow && !w->after_key;
}

void
json_labels(struct json_writer *w, const struct labels *ls)
{
	size_t i;

	json_object_begin(w);
	for (i = 0; ls != NULL && i < ls->n; i++) {
		json_key(w, ls->v[i].name);
		json_string(w, ls->v[i].value);
	}
	json_object_end(w);
}
