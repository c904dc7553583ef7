/* lib/util/utf8.c - Go's UTF-8 rune decoding. */
#include "config.h"

#include "util/utf8.h"

size_t
utf8_decode_rune(const unsigned char *s, size_t len, long *r)
{
	unsigned char c = s[0];
	size_t n, i;
	long v, min;

	*r = -1;
	if (c < 0x80) {
		*r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2; v = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3; v = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4; v = c & 0x07; min = 0x10000;
	} else {
		return 1;
	}
	if (len < n)
		return 1;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 1;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 1;
	*r = v;
	return n;
}
