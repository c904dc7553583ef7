/* lib/expfmt/parse.c - pull parser for Prometheus text 0.0.4 and OpenMetrics 1.0.
 *
 * A hand-written scanner over the body: one pass, byte classes from a table,
 * no per-sample allocation (label arrays, scratch buffer and the OpenMetrics
 * name/group sets grow with the input and are reused across bodies). The
 * token rules mirror Prometheus 2.42's promlex.l / openmetricslex.l and the
 * error messages those parsers give ("expected equal, got \"INVALID\"");
 * OpenMetrics further gets the family-level checks its test corpus asks of a
 * parser (see om_* below). Every loop advances through the body or through a
 * label array, so the work is linear in the body size: duplicate label names
 * are found pairwise for short label sets and by sorting for long ones.
 * A caller that knows which series probably comes next (the scrape cache
 * does) can announce it with expfmt_expect(), by its length, shape and
 * 128-bit hash: a text-format sample line that starts with a series of that
 * length and hash skips the label parse, since the same bytes passed it
 * before.
 *
 * Single-threaded per parser; no global mutable state.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "expfmt/parse.h"
#include "util/mem.h"

#define EXPFMT_EXEMPLAR_MAX_RUNES 128
#define EXPFMT_GO_NAN 0x7ff8000000000001ULL
#define EXPFMT_PAIRWISE_MAX 24

/* Byte classes. */
enum {
	C_MSTART = 0x01,	/* [a-zA-Z_:] */
	C_MCONT = 0x02,		/* [a-zA-Z0-9_:] */
	C_LSTART = 0x04,	/* [a-zA-Z_] */
	C_LCONT = 0x08,		/* [a-zA-Z0-9_] */
	C_TEXTVEND = 0x10,	/* ends a text value token: NUL \t \n ' ' '{' */
	C_OMVEND = 0x20,	/* ends an OpenMetrics value token: NUL \n ' ' */
	C_QSTOP = 0x40,		/* stops the quoted-value fast loop: " \ \n >=0x80 */
	C_BLANK = 0x80,		/* ' ' \t */
};

#define C_NAME (C_MSTART | C_MCONT | C_LSTART | C_LCONT)

static const unsigned char expfmt_cls[256] = {
	[0] = C_TEXTVEND | C_OMVEND,
	['\t'] = C_TEXTVEND | C_BLANK,
	['\n'] = C_TEXTVEND | C_OMVEND | C_QSTOP,
	[' '] = C_TEXTVEND | C_OMVEND | C_BLANK,
	['{'] = C_TEXTVEND,
	['"'] = C_QSTOP,
	['\\'] = C_QSTOP,
	['0' ... '9'] = C_MCONT | C_LCONT,
	['A' ... 'Z'] = C_NAME,
	['a' ... 'z'] = C_NAME,
	['_'] = C_NAME,
	[':'] = C_MSTART | C_MCONT,
	[0x80 ... 0xff] = C_QSTOP,
};

/* Results of the internal float parser. */
enum { F_OK = 0, F_SYNTAX = -1, F_RANGE = -2 };

/* A growable array of labels; soff[i] is 1 + the offset of the value in
 * the scratch buffer when it had escapes (fixed up at the end of a line,
 * since the scratch buffer may move while the line is parsed). */
struct expfmt_lset {
	struct expfmt_label *v;
	uint32_t *soff;
	size_t n, cap;
};

/* A set of 64-bit hashes (open addressing; 0 marks a free slot). */
struct expfmt_hset {
	uint64_t *v;
	size_t n, cap;
};

/* The OpenMetrics family being read, with what its checks need. */
struct expfmt_family {
	bool active;
	const char *name;
	size_t len;
	enum expfmt_type type;
	bool has_type, has_help, has_unit;
	size_t nsamples;
	bool has_group;		/* the group (label set minus le/quantile/state) of the last sample */
	uint64_t group;
	bool group_has_ts;
	double group_ts;
	struct expfmt_hset groups;	/* groups seen in this family */
	/* the histogram point being read: one group at one timestamp */
	bool h_active;
	uint64_t h_group;
	bool h_has_ts;
	double h_ts;
	bool h_has_bucket, h_has_count, h_has_sum, h_has_gsum, h_neg_bucket, h_neg_gsum;
	double h_le, h_bval, h_count;
};

struct expfmt_parser {
	enum expfmt_format fmt;
	const unsigned char *b, *end, *p;
	size_t line;
	const unsigned char *lstart;
	bool done;
	enum expfmt_kind last;	/* EXPFMT_EOF or EXPFMT_ERROR once done */
	struct expfmt_error err;

	struct expfmt_lset lab, ex;
	char *scratch;
	size_t slen, scap;
	const struct expfmt_label **sortv;
	size_t sortcap;

	struct expfmt_hset names;	/* OpenMetrics: every name a family claimed */
	struct expfmt_family fam;

	const struct expfmt_hint *hint;	/* expfmt_expect()'s, or NULL */
};

/* Suffixes a sample name may carry beyond its family name. */
enum expfmt_sfx {
	SFX_NONE, SFX_TOTAL, SFX_CREATED, SFX_BUCKET, SFX_COUNT, SFX_SUM,
	SFX_GCOUNT, SFX_GSUM, SFX_INFO, SFX_COUNT_ALL
};

static const struct {
	const char *s;
	size_t len;
} expfmt_sfx_str[SFX_COUNT_ALL] = {
	[SFX_NONE] = { "", 0 },
	[SFX_TOTAL] = { "_total", 6 },
	[SFX_CREATED] = { "_created", 8 },
	[SFX_BUCKET] = { "_bucket", 7 },
	[SFX_COUNT] = { "_count", 6 },
	[SFX_SUM] = { "_sum", 4 },
	[SFX_GCOUNT] = { "_gcount", 7 },
	[SFX_GSUM] = { "_gsum", 5 },
	[SFX_INFO] = { "_info", 5 },
};

#define SFXBIT(x) (1u << (x))
static const unsigned expfmt_type_sfx[] = {
	[EXPFMT_UNKNOWN] = SFXBIT(SFX_NONE),
	[EXPFMT_COUNTER] = SFXBIT(SFX_TOTAL) | SFXBIT(SFX_CREATED),
	[EXPFMT_GAUGE] = SFXBIT(SFX_NONE),
	[EXPFMT_HISTOGRAM] = SFXBIT(SFX_BUCKET) | SFXBIT(SFX_COUNT) | SFXBIT(SFX_SUM) |
	    SFXBIT(SFX_CREATED),
	[EXPFMT_GAUGEHISTOGRAM] = SFXBIT(SFX_BUCKET) | SFXBIT(SFX_GCOUNT) | SFXBIT(SFX_GSUM),
	[EXPFMT_SUMMARY] = SFXBIT(SFX_NONE) | SFXBIT(SFX_COUNT) | SFXBIT(SFX_SUM) |
	    SFXBIT(SFX_CREATED),
	[EXPFMT_INFO] = SFXBIT(SFX_INFO),
	[EXPFMT_STATESET] = SFXBIT(SFX_NONE),
};

static const char *const expfmt_type_names[] = {
	[EXPFMT_UNKNOWN] = "unknown",
	[EXPFMT_COUNTER] = "counter",
	[EXPFMT_GAUGE] = "gauge",
	[EXPFMT_HISTOGRAM] = "histogram",
	[EXPFMT_GAUGEHISTOGRAM] = "gaugehistogram",
	[EXPFMT_SUMMARY] = "summary",
	[EXPFMT_INFO] = "info",
	[EXPFMT_STATESET] = "stateset",
};

const char *
expfmt_type_name(enum expfmt_type t, enum expfmt_format fmt)
{
	if ((unsigned)t > EXPFMT_STATESET)
		return "unknown";
	if (t == EXPFMT_UNKNOWN && fmt == EXPFMT_TEXT)
		return "untyped";
	return expfmt_type_names[t];
}

/* ---- small helpers -------------------------------------------------- */

static double
expfmt_go_nan(void)
{
	uint64_t bits = EXPFMT_GO_NAN;
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* expfmt_goquote writes s[0..n) as Go's %q would (ASCII only, bytes >= 0x80
 * as \x escapes), shortened with "..." to fit cap. */
static void
expfmt_goquote(char *dst, size_t cap, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (cap < 8) {
		if (cap)
			dst[0] = '\0';
		return;
	}
	dst[o++] = '"';
	for (i = 0; i < n; i++) {
		char tmp[4];
		size_t tl = 0;
		unsigned char c = s[i];

		switch (c) {
		case '"': tmp[0] = '\\'; tmp[1] = '"'; tl = 2; break;
		case '\\': tmp[0] = '\\'; tmp[1] = '\\'; tl = 2; break;
		case '\n': tmp[0] = '\\'; tmp[1] = 'n'; tl = 2; break;
		case '\t': tmp[0] = '\\'; tmp[1] = 't'; tl = 2; break;
		case '\r': tmp[0] = '\\'; tmp[1] = 'r'; tl = 2; break;
		default:
			if (c >= 0x20 && c < 0x7f) {
				tmp[0] = (char)c;
				tl = 1;
			} else {
				tmp[0] = '\\'; tmp[1] = 'x';
				tmp[2] = hex[c >> 4]; tmp[3] = hex[c & 15];
				tl = 4;
			}
		}
		if (o + tl + 5 > cap) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, tmp, tl);
		o += tl;
	}
	dst[o++] = '"';
	dst[o] = '\0';
}

static enum expfmt_kind expfmt_fail(struct expfmt_parser *p, const unsigned char *at,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* expfmt_fail records an error at byte position at and stops the parser. */
static enum expfmt_kind
expfmt_fail(struct expfmt_parser *p, const unsigned char *at, const char *fmt, ...)
{
	va_list ap;

	if (at < p->lstart)
		at = p->lstart;
	if (at > p->end)
		at = p->end;
	p->err.line = p->line;
	p->err.column = (size_t)(at - p->lstart) + 1;
	va_start(ap, fmt);
	vsnprintf(p->err.msg, sizeof(p->err.msg), fmt, ap);
	va_end(ap);
	p->done = true;
	p->last = EXPFMT_ERROR;
	return EXPFMT_ERROR;
}

static enum expfmt_kind
expfmt_oom(struct expfmt_parser *p, const unsigned char *at)
{
	return expfmt_fail(p, at, "out of memory");
}

/* expfmt_newline notes that a line ends just before next. */
static inline void
expfmt_newline(struct expfmt_parser *p, const unsigned char *next)
{
	p->line++;
	p->lstart = next;
}

static inline const unsigned char *
expfmt_skip_blanks(const unsigned char *s, const unsigned char *end)
{
	while (s < end && (expfmt_cls[*s] & C_BLANK))
		s++;
	return s;
}

/* expfmt_utf8_valid tells whether s[0..n) is valid UTF-8 as Go's utf8.Valid
 * decides (no overlongs, no surrogates, nothing past U+10FFFF). */
static bool
expfmt_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			if (i + 1 >= n || (s[i + 1] & 0xc0) != 0x80)
				return false;
			i += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

			if (i + 2 >= n || s[i + 1] < lo || s[i + 1] > hi ||
			    (s[i + 2] & 0xc0) != 0x80)
				return false;
			i += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

			if (i + 3 >= n || s[i + 1] < lo || s[i + 1] > hi ||
			    (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
				return false;
			i += 4;
		} else {
			return false;
		}
	}
	return true;
}

static size_t
expfmt_runes(const char *s, size_t n)
{
	size_t i, r = 0;

	for (i = 0; i < n; i++)
		r += ((unsigned char)s[i] & 0xc0) != 0x80;
	return r;
}

/* 64-bit FNV-1a, then a murmur3 finaliser; streaming over several pieces. */
#define EXPFMT_HASH_INIT 0xcbf29ce484222325ULL

static inline uint64_t
expfmt_hash_add(uint64_t h, const void *data, size_t n)
{
	const unsigned char *s = data;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static inline uint64_t
expfmt_hash_fin(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h ? h : 1;
}

static void
expfmt_hset_clear(struct expfmt_hset *h)
{
	if (h->cap > 4096) {
		MEM_FREE(h->v);
		h->cap = 0;
	} else if (h->v) {
		memset(h->v, 0, h->cap * sizeof(*h->v));
	}
	h->n = 0;
}

/* expfmt_hset_add returns 1 when k was added, 0 when present, -1 on OOM. */
static int
expfmt_hset_add(struct expfmt_hset *h, uint64_t k)
{
	size_t i, mask;

	if ((h->n + 1) * 2 > h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64, j;
		uint64_t *nv;

		if (ncap > SIZE_MAX / sizeof(*nv))
			return -1;
		nv = mem_try_alloc(ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		memset(nv, 0, ncap * sizeof(*nv));
		for (j = 0; j < h->cap; j++) {
			uint64_t x = h->v[j];

			if (x == 0)
				continue;
			for (i = x & (ncap - 1); nv[i]; i = (i + 1) & (ncap - 1))
				;
			nv[i] = x;
		}
		mem_free(h->v);
		h->v = nv;
		h->cap = ncap;
	}
	mask = h->cap - 1;
	for (i = k & mask; h->v[i]; i = (i + 1) & mask)
		if (h->v[i] == k)
			return 0;
	h->v[i] = k;
	h->n++;
	return 1;
}

/* ---- floats ---------------------------------------------------------- */

static const double expfmt_pow10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static const uint64_t expfmt_pow10_u64[] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
	100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
	10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
	100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
};

/* expfmt_dec128 returns mant * 10^e10 correctly rounded (to nearest, ties
 * to even) for 2^53 < mant < 2^64 and -19 <= e10 <= 19: what a
 * correctly rounding strtod gives for 17 to 19 significant digits, the
 * length Go and %.17g write most fractions with. The exact value, or for a
 * negative e10 a quotient of 64 bits or more and whether a remainder was
 * left, is rounded to 53 bits in integers; the result is normal. */
static double
expfmt_dec128(uint64_t mant, int e10)
{
	unsigned __int128 q, half, rem;
	bool sticky = false;
	uint64_t m, hi, pow2;
	int s = 0, nb, drop;
	double v;

	if (e10 >= 0) {
		q = (unsigned __int128)mant * expfmt_pow10_u64[e10];
	} else {
		unsigned __int128 n;
		uint64_t d = expfmt_pow10_u64[-e10];

		s = 64 + __builtin_clzll(mant);	/* n in [2^127, 2^128): q >= 2^63 */
		n = (unsigned __int128)mant << s;
		q = n / d;
		sticky = n - q * d != 0;
	}
	hi = (uint64_t)(q >> 64);
	nb = hi != 0 ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)q);
	drop = nb - 53;		/* >= 1: q > 2^53 */
	m = (uint64_t)(q >> drop);
	rem = q & (((unsigned __int128)1 << drop) - 1);
	half = (unsigned __int128)1 << (drop - 1);
	if (rem > half || (rem == half && (sticky || (m & 1))))
		m++;
	if (m == UINT64_C(1) << 53) {
		m >>= 1;
		drop++;
	}
	pow2 = (uint64_t)(1023 + drop - s) << 52;	/* 2^(drop - s), normal */
	memcpy(&v, &pow2, sizeof v);
	return (double)m * v;
}

static bool
expfmt_eq_nocase(const unsigned char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp((const char *)s, lit, n) == 0;
}

/* expfmt_fparse parses Go's ParseFloat syntax minus hex and underscores:
 * [+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?, or
 * [+-]?(inf|infinity) or nan, case-insensitive. Exact: a Clinger fast path,
 * 128-bit integers for up to 19 digits (expfmt_dec128), else strtod
 * (correctly rounded in glibc). */
static int
expfmt_fparse(const unsigned char *s, size_t n, double *out)
{
	const unsigned char *q = s, *e = s + n;
	bool neg = false, sawdig = false, sawdot = false, trunc = false;
	uint64_t mant = 0;
	int ndig = 0;
	long long dexp = 0, x = 0;
	double v;

	if (q < e && (*q == '+' || *q == '-')) {
		neg = *q == '-';
		q++;
	}
	/* Most values are plain integers: up to 15 digits a double holds
	 * them exactly, so they need neither the general scan nor rounding. */
	if (q < e && e - q <= 15) {
		const unsigned char *d = q;

		for (; d < e && (unsigned)*d - '0' < 10; d++)
			mant = mant * 10 + ((unsigned)*d - '0');
		if (d == e) {
			v = (double)mant;
			*out = neg ? -v : v;
			return F_OK;
		}
		mant = 0;
	}
	for (; q < e; q++) {
		unsigned d = (unsigned)*q - '0';

		if (d < 10) {
			sawdig = true;
			if (mant == 0 && d == 0) {
				if (sawdot)
					dexp--;
			} else if (ndig < 19) {
				mant = mant * 10 + d;
				ndig++;
				if (sawdot)
					dexp--;
			} else {
				trunc = true;
				if (!sawdot)
					dexp++;
			}
			continue;
		}
		if (*q == '.' && !sawdot) {
			sawdot = true;
			continue;
		}
		break;
	}
	if (!sawdig) {
		size_t rest = (size_t)(e - q);

		if (sawdot)
			return F_SYNTAX;
		if (expfmt_eq_nocase(q, rest, "inf") || expfmt_eq_nocase(q, rest, "infinity")) {
			*out = neg ? -HUGE_VAL : HUGE_VAL;
			return F_OK;
		}
		if (q == s && expfmt_eq_nocase(q, rest, "nan")) {
			*out = expfmt_go_nan();
			return F_OK;
		}
		return F_SYNTAX;
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		bool eneg = false, edig = false;

		q++;
		if (q < e && (*q == '+' || *q == '-')) {
			eneg = *q == '-';
			q++;
		}
		for (; q < e && (unsigned)*q - '0' < 10; q++) {
			edig = true;
			if (x < 1000000)
				x = x * 10 + (*q - '0');
		}
		if (!edig)
			return F_SYNTAX;
		if (eneg)
			x = -x;
	}
	if (q != e)
		return F_SYNTAX;
	if (mant == 0) {
		v = 0.0;
	} else if (!trunc && mant <= (1ULL << 53) && dexp + x >= -22 && dexp + x <= 22) {
		long long e10 = dexp + x;

		v = (double)mant;
		if (e10 < 0)
			v /= expfmt_pow10[-e10];
		else
			v *= expfmt_pow10[e10];
	} else if (!trunc && dexp + x >= -19 && dexp + x <= 19) {
		v = expfmt_dec128(mant, (int)(dexp + x));	/* mant > 2^53 */
	} else {
		char stackbuf[128], *buf = stackbuf;

		if (n >= sizeof(stackbuf)) {
			buf = mem_try_alloc(n + 1);
			if (buf == NULL)
				return F_SYNTAX;
		}
		memcpy(buf, s, n);
		buf[n] = '\0';
		v = strtod(buf, NULL);
		if (buf != stackbuf)
			mem_free(buf);
		if (isinf(v))
			return F_RANGE;
		*out = v;
		return F_OK;
	}
	*out = neg ? -v : v;
	return F_OK;
}

int
expfmt_parse_float(const char *s, size_t len, double *out)
{
	double v;

	if (s == NULL || expfmt_fparse((const unsigned char *)s, len, &v) != F_OK)
		return -1;
	*out = v;
	return 0;
}

/* expfmt_float_error reports a value Prometheus' parseFloat refuses. */
static enum expfmt_kind
expfmt_float_error(struct expfmt_parser *p, const unsigned char *s, size_t n, int rc)
{
	char q[96];

	if (memchr(s, 'p', n) || memchr(s, 'P', n) || memchr(s, '_', n))
		return expfmt_fail(p, s, "unsupported character in float");
	expfmt_goquote(q, sizeof(q), s, n);
	return expfmt_fail(p, s, "strconv.ParseFloat: parsing %s: %s", q,
	    rc == F_RANGE ? "value out of range" : "invalid syntax");
}

/* expfmt_ms converts float seconds to milliseconds as Go's int64(ts*1000)
 * does on amd64 (out of range gives the minimum int64). */
static int64_t
expfmt_ms(double sec)
{
	double ms = sec * 1000.0;

	if (!(ms >= -9223372036854775808.0 && ms < 9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)ms;
}

/* ---- buffers --------------------------------------------------------- */

static int
expfmt_lset_push(struct expfmt_lset *ls)
{
	if (ls->n == ls->cap) {
		size_t ncap = ls->cap ? ls->cap * 2 : 16;
		struct expfmt_label *nv;
		uint32_t *ns;

		nv = mem_try_realloc(ls->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		ls->v = nv;
		ns = mem_try_realloc(ls->soff, ncap * sizeof(*ns));
		if (ns == NULL)
			return -1;
		ls->soff = ns;
		ls->cap = ncap;
	}
	ls->n++;
	return 0;
}

/* expfmt_scratch_reserve makes room for n more scratch bytes. */
static int
expfmt_scratch_reserve(struct expfmt_parser *p, size_t n)
{
	if (p->scap - p->slen < n) {
		size_t ncap = p->scap ? p->scap : 256;
		char *nb;

		while (ncap - p->slen < n) {
			if (ncap > SIZE_MAX / 2)
				return -1;
			ncap *= 2;
		}
		if (ncap > UINT32_MAX - 1)
			return -1;
		nb = mem_try_realloc(p->scratch, ncap);
		if (nb == NULL)
			return -1;
		p->scratch = nb;
		p->scap = ncap;
	}
	return 0;
}

/* expfmt_unescape appends s[0..n) to the scratch buffer with escapes decoded
 * (\\ and \n, and \" when quote is set; any other backslash stays), and
 * returns the offset of the result. Space must be reserved. */
static size_t
expfmt_unescape(struct expfmt_parser *p, const unsigned char *s, size_t n, bool quote)
{
	size_t off = p->slen, i;
	char *o = p->scratch + p->slen;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			unsigned char c = s[i + 1];

			if (c == '\\' || (c == '"' && quote)) {
				*o++ = (char)c;
				i++;
				continue;
			}
			if (c == 'n') {
				*o++ = '\n';
				i++;
				continue;
			}
		}
		*o++ = (char)s[i];
	}
	p->slen = (size_t)(o - p->scratch);
	return off;
}

static void
expfmt_lset_fixup(struct expfmt_parser *p, struct expfmt_lset *ls)
{
	size_t i;

	for (i = 0; i < ls->n; i++)
		if (ls->soff[i])
			ls->v[i].value.p = p->scratch + ls->soff[i] - 1;
}

static int
expfmt_cmp_label_ptr(const void *a, const void *b)
{
	const struct expfmt_label *x = *(const struct expfmt_label *const *)a;
	const struct expfmt_label *y = *(const struct expfmt_label *const *)b;
	size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
	int c = memcmp(x->name.p, y->name.p, n);

	if (c)
		return c;
	return x->name.len < y->name.len ? -1 : x->name.len > y->name.len;
}

static bool
expfmt_str_eq(struct expfmt_str a, const char *b, size_t blen)
{
	return a.len == blen && memcmp(a.p, b, blen) == 0;
}

/* expfmt_check_dups fails when two labels of ls share a name, or one is
 * named __name__ (the metric name is one already). */
static enum expfmt_kind
expfmt_check_dups(struct expfmt_parser *p, struct expfmt_lset *ls, bool exemplar,
    const unsigned char *at)
{
	const struct expfmt_label *dup = NULL;
	char q[96];
	size_t i, j;

	if (!exemplar) {
		for (i = 0; i < ls->n; i++)
			if (expfmt_str_eq(ls->v[i].name, "__name__", 8)) {
				dup = &ls->v[i];
				goto found;
			}
	}
	if (ls->n <= EXPFMT_PAIRWISE_MAX) {
		for (i = 1; i < ls->n; i++)
			for (j = 0; j < i; j++)
				if (ls->v[i].name.len == ls->v[j].name.len &&
				    memcmp(ls->v[i].name.p, ls->v[j].name.p, ls->v[i].name.len) == 0) {
					dup = &ls->v[i];
					goto found;
				}
		return EXPFMT_SAMPLE;
	}
	if (p->sortcap < ls->n) {
		const struct expfmt_label **nv = mem_try_realloc(p->sortv, ls->n * sizeof(*nv));

		if (nv == NULL)
			return expfmt_oom(p, at);
		p->sortv = nv;
		p->sortcap = ls->n;
	}
	for (i = 0; i < ls->n; i++)
		p->sortv[i] = &ls->v[i];
	qsort(p->sortv, ls->n, sizeof(*p->sortv), expfmt_cmp_label_ptr);
	for (i = 1; i < ls->n; i++)
		if (expfmt_cmp_label_ptr(&p->sortv[i - 1], &p->sortv[i]) == 0) {
			dup = p->sortv[i];
			goto found;
		}
	return EXPFMT_SAMPLE;
found:
	expfmt_goquote(q, sizeof(q), (const unsigned char *)dup->name.p, dup->name.len);
	return expfmt_fail(p, (const unsigned char *)dup->name.p, "%slabel name %s is not unique",
	    exemplar ? "exemplar " : "", q);
}

/* ---- labels ---------------------------------------------------------- */

/* expfmt_tok names the token Prometheus' lexer sees at s inside a label
 * block, for error messages. */
static const char *
expfmt_tok_labels(const struct expfmt_parser *p, const unsigned char *s)
{
	if (s >= p->end)
		return p->fmt == EXPFMT_TEXT ? "INVALID" : "EOF";
	switch (*s) {
	case '}': return "BCLOSE";
	case ',': return "COMMA";
	case '=': return "EQUAL";
	default:
		return (expfmt_cls[*s] & C_LSTART) ? "LNAME" : "INVALID";
	}
}

/* expfmt_parse_labels reads a label block starting at the '{' at s into ls,
 * and returns the position after the '}', or NULL after expfmt_fail(). */
static const unsigned char *
expfmt_parse_labels(struct expfmt_parser *p, const unsigned char *s, struct expfmt_lset *ls)
{
	const unsigned char *end = p->end;
	bool text = p->fmt == EXPFMT_TEXT, first = true;

	ls->n = 0;
	s++;
	for (;;) {
		const unsigned char *nm, *q, *vstart, *lastnl = NULL;
		bool esc = false, high = false;
		size_t nls = 0;
		struct expfmt_label *l;

		if (text) {
			s = expfmt_skip_blanks(s, end);
			if (s < end && *s == '}')
				return s + 1;
			if (s >= end || !(expfmt_cls[*s] & C_LSTART)) {
				expfmt_fail(p, s, "expected label name, got \"%s\"", expfmt_tok_labels(p, s));
				return NULL;
			}
		} else {
			if (s < end && *s == '}')
				return s + 1;
			if (s < end && *s == ',') {
				if (first) {
					expfmt_fail(p, s, "expected label name or left brace, got \"COMMA\"");
					return NULL;
				}
				s++;
				if (s >= end || !(expfmt_cls[*s] & C_LSTART)) {
					expfmt_fail(p, s, "expected label name, got \"%s\"",
					    expfmt_tok_labels(p, s));
					return NULL;
				}
			} else if (s < end && (expfmt_cls[*s] & C_LSTART)) {
				if (!first) {
					expfmt_fail(p, s, "expected comma, got \"LNAME\"");
					return NULL;
				}
			} else {
				expfmt_fail(p, s, "expected %s, got \"%s\"",
				    first ? "label name or left brace" : "comma or left brace",
				    expfmt_tok_labels(p, s));
				return NULL;
			}
		}
		first = false;
		nm = s;
		while (s < end && (expfmt_cls[*s] & C_LCONT))
			s++;
		if (expfmt_lset_push(ls) < 0) {
			expfmt_oom(p, nm);
			return NULL;
		}
		l = &ls->v[ls->n - 1];
		ls->soff[ls->n - 1] = 0;
		l->name.p = (const char *)nm;
		l->name.len = (size_t)(s - nm);

		if (text)
			s = expfmt_skip_blanks(s, end);
		if (s >= end || *s != '=') {
			expfmt_fail(p, s, "expected equal, got \"%s\"", expfmt_tok_labels(p, s));
			return NULL;
		}
		s++;
		if (text)
			s = expfmt_skip_blanks(s, end);
		if (s >= end || *s != '"') {
			expfmt_fail(p, s, "expected label value, got \"%s\"",
			    s >= end && !text ? "EOF" : "INVALID");
			return NULL;
		}
		vstart = s + 1;
		q = vstart;
		for (;;) {
			while (q < end && !(expfmt_cls[*q] & C_QSTOP))
				q++;
			if (q >= end)
				goto badvalue;
			if (*q == '"')
				break;
			if (*q == '\\') {
				if (q + 1 >= end || q[1] == '\n')
					goto badvalue;
				if (q[1] >= 0x80)
					high = true;	/* a backslash, then 0x80..0xff: check it too */
				esc = true;
				q += 2;
				continue;
			}
			if (*q == '\n') {
				if (!text)
					goto badvalue;
				nls++;
				lastnl = q;
				q++;
				continue;
			}
			high = true;
			q++;
		}
		if (high && !expfmt_utf8_valid(vstart, (size_t)(q - vstart))) {
			expfmt_fail(p, s, "invalid UTF-8 label value");
			return NULL;
		}
		if (esc) {
			if (expfmt_scratch_reserve(p, (size_t)(q - vstart)) < 0) {
				expfmt_oom(p, s);
				return NULL;
			}
			ls->soff[ls->n - 1] = (uint32_t)expfmt_unescape(p, vstart,
			    (size_t)(q - vstart), true) + 1;
			l->value.p = NULL;
			l->value.len = p->slen - (ls->soff[ls->n - 1] - 1);
		} else {
			l->value.p = (const char *)vstart;
			l->value.len = (size_t)(q - vstart);
		}
		if (nls) {
			p->line += nls;
			p->lstart = lastnl + 1;
		}
		s = q + 1;
		if (text) {
			s = expfmt_skip_blanks(s, end);
			if (s < end && *s == ',')
				s++;
		}
		continue;
badvalue:
		expfmt_fail(p, s, "expected label value, got \"INVALID\"");
		return NULL;
	}
}

/* ---- text format ----------------------------------------------------- */

static enum expfmt_kind
expfmt_text_meta(struct expfmt_parser *p, const unsigned char *w, bool help,
    struct expfmt_entry *e)
{
	const unsigned char *end = p->end, *nm, *t, *eol;
	const char *kw = help ? "HELP" : "TYPE";

	w = expfmt_skip_blanks(w + 4, end);
	if (w >= end || !(expfmt_cls[*w] & C_MSTART))
		return expfmt_fail(p, w, "expected metric name after %s, got \"INVALID\"", kw);
	nm = w;
	while (w < end && (expfmt_cls[*w] & C_MCONT))
		w++;
	e->name.p = (const char *)nm;
	e->name.len = (size_t)(w - nm);
	eol = memchr(w, '\n', (size_t)(end - w));
	if (eol == NULL)
		eol = end;
	t = w < eol ? w + 1 : w;	/* Prometheus drops the first byte */
	if (help) {
		size_t n = (size_t)(eol - t);

		if (!expfmt_utf8_valid(t, n))
			return expfmt_fail(p, t, "help text is not a valid utf8 string");
		e->kind = EXPFMT_HELP;
		if (memchr(t, '\\', n)) {
			size_t off;

			if (expfmt_scratch_reserve(p, n) < 0)
				return expfmt_oom(p, t);
			off = expfmt_unescape(p, t, n, false);
			e->text.p = p->scratch + off;
			e->text.len = p->slen - off;
		} else {
			e->text.p = (const char *)t;
			e->text.len = n;
		}
	} else {
		static const struct {
			const char *s;
			enum expfmt_type t;
		} types[] = {
			{ "counter", EXPFMT_COUNTER }, { "gauge", EXPFMT_GAUGE },
			{ "histogram", EXPFMT_HISTOGRAM }, { "summary", EXPFMT_SUMMARY },
			{ "untyped", EXPFMT_UNKNOWN },
		};
		size_t i, n = (size_t)(eol - t);
		char q[96];

		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strlen(types[i].s) == n && memcmp(types[i].s, t, n) == 0)
				break;
		if (i == sizeof(types) / sizeof(types[0])) {
			expfmt_goquote(q, sizeof(q), t, n);
			return expfmt_fail(p, t, "invalid metric type %s", q);
		}
		e->kind = EXPFMT_TYPE;
		e->type = types[i].t;
		e->text.p = (const char *)t;
		e->text.len = n;
	}
	p->p = eol < end ? eol + 1 : end;
	if (eol < end)
		expfmt_newline(p, eol + 1);
	return e->kind;
}

/* expfmt_hint_take checks the hint on the sample line at s. When the
 * line's first hint.len bytes can be a whole series (a label block ends
 * with the '}' at their end, which the label parse does not look past; or
 * a bare name that no more name bytes or label block follow) it hashes
 * them into *h and returns 1 when the hash is the hint's, setting *t to
 * the end of the metric name (from the shape, else scanned) and counting
 * the newlines a text-format label value may hold, as the label parse
 * would; else 0, with *hashed telling whether *h holds the hash of those
 * bytes. */
static int
expfmt_hint_take(struct expfmt_parser *p, const unsigned char *s, const unsigned char **t,
    struct expfmt_hash *h, bool *hashed)
{
	const unsigned char *end = p->end, *u;
	size_t n = p->hint->len, nlen = p->hint->shape & EXPFMT_SHAPE_NAME;
	bool labels;

	*hashed = false;
	if ((size_t)(end - s) < n || nlen > n)
		return 0;
	labels = s[n - 1] == '}';
	if (!labels) {
		if (!(expfmt_cls[s[n - 1]] & C_MCONT) ||
		    (s + n < end && (expfmt_cls[s[n]] & C_MCONT)))
			return 0;
		u = expfmt_skip_blanks(s + n, end);
		if (u < end && *u == '{')
			return 0;
	}
	*h = expfmt_series_hash((const char *)s, n, p->hint->seed);
	*hashed = true;
	if (h->lo != p->hint->hash.lo || h->hi != p->hint->hash.hi)
		return 0;
	if (!labels) {
		*t = s + n;
		return 1;
	}
	if (nlen > 0) {
		*t = s + nlen;
	} else {
		for (u = s; u < s + n && (expfmt_cls[*u] & C_MCONT); u++)
			;
		*t = u;
	}
	if ((p->hint->shape & EXPFMT_SHAPE_LINES) &&
	    (u = memchr(*t, '\n', (size_t)(s + n - *t))) != NULL) {
		const unsigned char *last = u;

		for (; u != NULL; u = memchr(u + 1, '\n', (size_t)(s + n - u - 1))) {
			p->line++;
			last = u;
		}
		p->lstart = last + 1;
	}
	return 1;
}

/* expfmt_int_token parses, at *s, a text value token (up to a C_TEXTVEND
 * byte or end) that is a sign and 1 to 15 digits, as the first case of
 * expfmt_fparse does, while finding its end: then it sets *out and moves
 * *s past it. Returns false for any other token, with *s unchanged. */
static inline bool
expfmt_int_token(const unsigned char **s, const unsigned char *end, double *out)
{
	const unsigned char *q = *s, *d, *lim;
	bool neg = *q == '-';
	uint64_t mant = 0;
	double v;

	if (*q == '+' || *q == '-')
		q++;
	lim = end - q > 15 ? q + 15 : end;
	for (d = q; d < lim && (unsigned)*d - '0' < 10; d++)
		mant = mant * 10 + ((unsigned)*d - '0');
	if (d == q || (d < end && !(expfmt_cls[*d] & C_TEXTVEND)))
		return false;
	v = (double)mant;
	*out = neg ? -v : v;
	*s = d;
	return true;
}

static enum expfmt_kind
expfmt_text_sample(struct expfmt_parser *p, const unsigned char *s, struct expfmt_entry *e)
{
	const unsigned char *end = p->end, *t, *v;
	struct expfmt_hash h;
	bool hashed = false;
	int rc;

	e->kind = EXPFMT_SAMPLE;
	e->name.p = (const char *)s;
	e->series.p = (const char *)s;
	p->lab.n = 0;
	if (p->hint != NULL && p->hint->len > 0 && expfmt_hint_take(p, s, &t, &h, &hashed)) {
		e->name.len = (size_t)(t - s);
		e->shape = p->hint->shape;
		e->expected = true;
		e->series.len = p->hint->len;
		e->has_hash = true;
		e->hash = h;
		t = expfmt_skip_blanks(s + p->hint->len, end);
		goto value;
	}
	t = s;
	while (t < end && (expfmt_cls[*t] & C_MCONT))
		t++;
	e->name.len = (size_t)(t - s);
	e->shape = e->name.len <= EXPFMT_SHAPE_NAME ? (uint8_t)e->name.len : 0;
	e->series.len = e->name.len;
	t = expfmt_skip_blanks(t, end);
	if (t < end && *t == '{') {
		size_t line = p->line;

		t = expfmt_parse_labels(p, t, &p->lab);
		if (t == NULL)
			return EXPFMT_ERROR;
		if (p->line != line)
			e->shape |= EXPFMT_SHAPE_LINES;
		e->series.len = (size_t)(t - s);
		t = expfmt_skip_blanks(t, end);
	}
	if (hashed && e->series.len == p->hint->len) {
		/* a wrong hint of the series' length: its hash is the series' */
		e->has_hash = true;
		e->hash = h;
	}
value:
	if (t >= end || (expfmt_cls[*t] & C_TEXTVEND))
		return expfmt_fail(p, t, "expected value after metric, got \"%s\"",
		    t < end && *t == '{' ? "BOPEN" : "INVALID");
	v = t;
	if (!expfmt_int_token(&t, end, &e->value)) {
		while (t < end && !(expfmt_cls[*t] & C_TEXTVEND))
			t++;
		rc = expfmt_fparse(v, (size_t)(t - v), &e->value);
		if (rc != F_OK)
			return expfmt_float_error(p, v, (size_t)(t - v), rc);
	}
	t = expfmt_skip_blanks(t, end);
	e->has_ts = false;
	if (t < end && *t != '\n') {
		const unsigned char *d = t;
		uint64_t ts = 0;
		bool ovf = false;

		if ((unsigned)*t - '0' >= 10)
			return expfmt_fail(p, t, "expected timestamp or new record, got \"INVALID\"");
		for (; t < end && (unsigned)*t - '0' < 10; t++) {
			unsigned dg = (unsigned)*t - '0';

			if (ts > (UINT64_C(9223372036854775807) - dg) / 10)
				ovf = true;
			else
				ts = ts * 10 + dg;
		}
		if (ovf) {
			char q[96];

			expfmt_goquote(q, sizeof(q), d, (size_t)(t - d));
			return expfmt_fail(p, d, "strconv.ParseInt: parsing %s: value out of range", q);
		}
		e->has_ts = true;
		e->ts = (int64_t)ts;
		t = expfmt_skip_blanks(t, end);
		if (t < end && *t != '\n')
			return expfmt_fail(p, t, "expected next entry after timestamp, got \"%s\"",
			    (unsigned)*t - '0' < 10 ? "TIMESTAMP" : "INVALID");
	}
	if (p->lab.n > 0 && expfmt_check_dups(p, &p->lab, false, s) == EXPFMT_ERROR)
		return EXPFMT_ERROR;
	if (t < end) {
		t++;
		expfmt_newline(p, t);
	}
	p->p = t;
	expfmt_lset_fixup(p, &p->lab);
	e->labels = p->lab.v;
	e->nlabels = p->lab.n;
	return EXPFMT_SAMPLE;
}

static enum expfmt_kind
expfmt_text_next(struct expfmt_parser *p, struct expfmt_entry *e)
{
	const unsigned char *end = p->end, *s;

	for (;;) {
		s = expfmt_skip_blanks(p->p, end);
		if (s >= end || *s == '\0') {
			/* Prometheus' lexer ends the body at a NUL that starts a line */
			p->p = end;
			p->done = true;
			p->last = EXPFMT_EOF;
			return EXPFMT_EOF;
		}
		if (*s != '\n')
			break;
		p->p = s + 1;
		expfmt_newline(p, s + 1);
	}
	if (*s == '#') {
		const unsigned char *w = s + 1, *eol;

		if (w < end && (*w == ' ' || *w == '\t')) {
			w = expfmt_skip_blanks(w, end);
			if (end - w >= 5 && (w[4] == ' ' || w[4] == '\t')) {
				if (memcmp(w, "HELP", 4) == 0)
					return expfmt_text_meta(p, w, true, e);
				if (memcmp(w, "TYPE", 4) == 0)
					return expfmt_text_meta(p, w, false, e);
			}
		}
		eol = memchr(w, '\n', (size_t)(end - w));
		if (eol == NULL)
			eol = end;
		e->kind = EXPFMT_COMMENT;
		e->text.p = (const char *)w;
		e->text.len = (size_t)(eol - w);
		p->p = eol < end ? eol + 1 : end;
		if (eol < end)
			expfmt_newline(p, eol + 1);
		return EXPFMT_COMMENT;
	}
	if (expfmt_cls[*s] & C_MSTART)
		return expfmt_text_sample(p, s, e);
	return expfmt_fail(p, s, "\"INVALID\" is not a valid start token");
}

/* ---- OpenMetrics family checks --------------------------------------- */

static uint64_t
expfmt_name_hash(const char *name, size_t len, enum expfmt_sfx sfx)
{
	uint64_t h = expfmt_hash_add(EXPFMT_HASH_INIT, name, len);

	h = expfmt_hash_add(h, expfmt_sfx_str[sfx].s, expfmt_sfx_str[sfx].len);
	return expfmt_hash_fin(h);
}

/* expfmt_claim records that name+sfx belongs to a family; fails on a clash. */
static enum expfmt_kind
expfmt_claim(struct expfmt_parser *p, const char *name, size_t len, enum expfmt_sfx sfx,
    const unsigned char *at)
{
	int rc = expfmt_hset_add(&p->names, expfmt_name_hash(name, len, sfx));
	char q[96], full[72];
	size_t n = len < 60 ? len : 60;

	if (rc < 0)
		return expfmt_oom(p, at);
	if (rc == 0) {
		memcpy(full, name, n);
		memcpy(full + n, expfmt_sfx_str[sfx].s, expfmt_sfx_str[sfx].len);
		expfmt_goquote(q, sizeof(q), (const unsigned char *)full, n + expfmt_sfx_str[sfx].len);
		return expfmt_fail(p, at, "metric name %s clashes with an earlier metric family "
		    "(families must be unique and not interleaved)", q);
	}
	return EXPFMT_SAMPLE;
}

static enum expfmt_kind
expfmt_hist_check(struct expfmt_parser *p, const unsigned char *at)
{
	struct expfmt_family *f = &p->fam;
	const char *why = NULL;
	char q[96];

	if (!f->h_active)
		return EXPFMT_SAMPLE;
	f->h_active = false;
	if (!f->h_has_bucket || !(isinf(f->h_le) && f->h_le > 0))
		why = "has no +Inf bucket";
	else if (f->h_has_count && f->h_count != f->h_bval)
		why = "has a count that does not match its +Inf bucket";
	else if (f->h_has_sum && !f->h_has_count)
		why = "has _sum without _count";
	else if (f->h_has_gsum && !f->h_has_count)
		why = "has _gsum without _gcount";
	else if (!(f->h_has_sum || f->h_has_gsum) && f->h_has_count)
		why = f->type == EXPFMT_HISTOGRAM ? "has _count without _sum" :
		    "has _gcount without _gsum";
	else if (f->h_neg_bucket && f->h_has_sum)
		why = "has negative buckets and a _sum";
	else if (!f->h_neg_bucket && f->h_neg_gsum)
		why = "has a negative _gsum but no negative bucket";
	if (why == NULL)
		return EXPFMT_SAMPLE;
	expfmt_goquote(q, sizeof(q), (const unsigned char *)f->name, f->len);
	return expfmt_fail(p, at, "%s %s %s", expfmt_type_names[f->type], q, why);
}

/* expfmt_family_start closes the current family and opens one named name. */
static enum expfmt_kind
expfmt_family_start(struct expfmt_parser *p, const char *name, size_t len,
    const unsigned char *at)
{
	struct expfmt_family *f = &p->fam;

	if (expfmt_hist_check(p, at) == EXPFMT_ERROR)
		return EXPFMT_ERROR;
	if (expfmt_claim(p, name, len, SFX_NONE, at) == EXPFMT_ERROR)
		return EXPFMT_ERROR;
	expfmt_hset_clear(&f->groups);
	f->active = true;
	f->name = name;
	f->len = len;
	f->type = EXPFMT_UNKNOWN;
	f->has_type = f->has_help = f->has_unit = false;
	f->nsamples = 0;
	f->has_group = false;
	f->h_active = false;
	return EXPFMT_SAMPLE;
}

static enum expfmt_kind
expfmt_om_meta_family(struct expfmt_parser *p, struct expfmt_entry *e, const unsigned char *at)
{
	struct expfmt_family *f = &p->fam;
	const char *what = e->kind == EXPFMT_TYPE ? "TYPE" : e->kind == EXPFMT_HELP ? "HELP" : "UNIT";
	bool *seen;
	char q[96];
	int i;

	if (!f->active || f->len != e->name.len || memcmp(f->name, e->name.p, f->len) != 0) {
		if (expfmt_family_start(p, e->name.p, e->name.len, at) == EXPFMT_ERROR)
			return EXPFMT_ERROR;
	}
	expfmt_goquote(q, sizeof(q), (const unsigned char *)e->name.p, e->name.len);
	if (f->nsamples > 0)
		return expfmt_fail(p, at, "%s for %s after its samples", what, q);
	seen = e->kind == EXPFMT_TYPE ? &f->has_type : e->kind == EXPFMT_HELP ? &f->has_help :
	    &f->has_unit;
	if (*seen)
		return expfmt_fail(p, at, "second %s line for %s", what, q);
	*seen = true;
	if (e->kind == EXPFMT_TYPE) {
		f->type = e->type;
		for (i = SFX_TOTAL; i < SFX_COUNT_ALL; i++)
			if (expfmt_type_sfx[f->type] & SFXBIT(i))
				if (expfmt_claim(p, f->name, f->len, i, at) == EXPFMT_ERROR)
					return EXPFMT_ERROR;
	}
	if (f->has_unit && e->text.len > 0 && e->kind == EXPFMT_UNIT &&
	    (f->type == EXPFMT_INFO || f->type == EXPFMT_STATESET))
		return expfmt_fail(p, at, "%s metrics cannot have a unit", expfmt_type_names[f->type]);
	if (e->kind == EXPFMT_TYPE && f->has_unit &&
	    (f->type == EXPFMT_INFO || f->type == EXPFMT_STATESET))
		return expfmt_fail(p, at, "%s metrics cannot have a unit", expfmt_type_names[f->type]);
	return e->kind;
}

static const struct expfmt_label *
expfmt_find_label(const struct expfmt_entry *e, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < e->nlabels; i++)
		if (expfmt_str_eq(e->labels[i].name, name, len))
			return &e->labels[i];
	return NULL;
}

/* expfmt_qname quotes e's name into q for an error message; only called
 * on the error path, so a valid sample costs no quoting. */
static const char *
expfmt_qname(char *q, size_t cap, const struct expfmt_entry *e)
{
	expfmt_goquote(q, cap, (const unsigned char *)e->name.p, e->name.len);
	return q;
}

/* expfmt_om_sample_family applies the family-level OpenMetrics rules to a
 * sample already parsed into e. */
static enum expfmt_kind
expfmt_om_sample_family(struct expfmt_parser *p, struct expfmt_entry *e, const unsigned char *at)
{
	struct expfmt_family *f = &p->fam;
	enum expfmt_sfx sfx = SFX_NONE;
	const struct expfmt_label *skip = NULL;
	double v = e->value, tsf = 0, le = 0;
	uint64_t g = 0;
	char q[96];
	size_t i;
	bool member = false;

	if (f->active && e->name.len >= f->len && memcmp(e->name.p, f->name, f->len) == 0) {
		const char *rest = e->name.p + f->len;
		size_t rlen = e->name.len - f->len;

		for (i = 0; i < SFX_COUNT_ALL; i++)
			if ((expfmt_type_sfx[f->type] & SFXBIT(i)) && expfmt_sfx_str[i].len == rlen &&
			    memcmp(expfmt_sfx_str[i].s, rest, rlen) == 0) {
				sfx = i;
				member = true;
				break;
			}
	}
	if (!member && expfmt_family_start(p, e->name.p, e->name.len, at) == EXPFMT_ERROR)
		return EXPFMT_ERROR;
	f->nsamples++;

	/* values */
	switch (f->type) {
	case EXPFMT_COUNTER:
		if (sfx == SFX_TOTAL && (isnan(v) || v < 0))
			goto counterlike;
		break;
	case EXPFMT_HISTOGRAM:
	case EXPFMT_GAUGEHISTOGRAM:
		if ((sfx == SFX_BUCKET || sfx == SFX_COUNT || sfx == SFX_SUM || sfx == SFX_GCOUNT) &&
		    (isnan(v) || v < 0))
			goto counterlike;
		if (sfx == SFX_GSUM && isnan(v))
			return expfmt_fail(p, at, "%s cannot be NaN",
			    expfmt_qname(q, sizeof(q), e));
		break;
	case EXPFMT_SUMMARY:
		if ((sfx == SFX_COUNT || sfx == SFX_SUM) && (isnan(v) || v < 0))
			goto counterlike;
		if (sfx == SFX_NONE && v < 0)
			return expfmt_fail(p, at, "summary quantile %s cannot be negative",
			    expfmt_qname(q, sizeof(q), e));
		break;
	case EXPFMT_INFO:
		if (v != 1)
			return expfmt_fail(p, at, "info metric %s must have value 1",
			    expfmt_qname(q, sizeof(q), e));
		break;
	case EXPFMT_STATESET:
		if (v != 0 && v != 1)
			return expfmt_fail(p, at, "stateset %s must have value 0 or 1",
			    expfmt_qname(q, sizeof(q), e));
		break;
	default:
		break;
	}

	/* labels each type needs */
	if ((f->type == EXPFMT_HISTOGRAM || f->type == EXPFMT_GAUGEHISTOGRAM) && sfx == SFX_BUCKET) {
		const struct expfmt_label *l = expfmt_find_label(e, "le", 2);

		if (l == NULL)
			return expfmt_fail(p, at, "histogram bucket %s has no le label",
			    expfmt_qname(q, sizeof(q), e));
		if (expfmt_fparse((const unsigned char *)l->value.p, l->value.len, &le) != F_OK ||
		    isnan(le) || (isinf(le) && !expfmt_str_eq(l->value, le > 0 ? "+Inf" : "-Inf", 4))) {
			expfmt_goquote(q, sizeof(q), (const unsigned char *)l->value.p, l->value.len);
			return expfmt_fail(p, (const unsigned char *)l->name.p, "invalid le label value %s", q);
		}
		skip = l;
	} else if (f->type == EXPFMT_SUMMARY && sfx == SFX_NONE) {
		const struct expfmt_label *l = expfmt_find_label(e, "quantile", 8);
		double qv;

		if (l == NULL)
			return expfmt_fail(p, at, "summary sample %s has no quantile label",
			    expfmt_qname(q, sizeof(q), e));
		if (expfmt_fparse((const unsigned char *)l->value.p, l->value.len, &qv) != F_OK ||
		    !(qv >= 0 && qv <= 1)) {
			expfmt_goquote(q, sizeof(q), (const unsigned char *)l->value.p, l->value.len);
			return expfmt_fail(p, (const unsigned char *)l->name.p,
			    "invalid quantile label value %s (must be a number from 0 to 1)", q);
		}
		skip = l;
	} else if (f->type == EXPFMT_STATESET) {
		const struct expfmt_label *l = expfmt_find_label(e, f->name, f->len);

		if (l == NULL)
			return expfmt_fail(p, at, "stateset sample %s has no label named after its family",
			    expfmt_qname(q, sizeof(q), e));
		skip = l;
	}

	/* exemplars: counters' _total and histograms' _bucket only */
	if (e->has_exemplar && f->type != EXPFMT_UNKNOWN &&
	    !(f->type == EXPFMT_COUNTER && sfx == SFX_TOTAL) &&
	    !((f->type == EXPFMT_HISTOGRAM || f->type == EXPFMT_GAUGEHISTOGRAM) && sfx == SFX_BUCKET))
		return expfmt_fail(p, at, "metric name %.*s does not support exemplars",
		    (int)e->name.len, e->name.p);

	/* grouping: one group (labels minus le/quantile/state) in one place,
	 * timestamps all present or all absent within it and not going back */
	for (i = 0; i < e->nlabels; i++) {
		const struct expfmt_label *l = &e->labels[i];
		uint64_t h;

		if (l == skip)
			continue;
		/* the name's hash seeds the value's: a pair hashes as one */
		h = XXH3_64bits_withSeed(l->value.p, l->value.len,
		    XXH3_64bits(l->name.p, l->name.len));
		g += expfmt_hash_fin(h);
	}
	g = expfmt_hash_fin(g ^ 0x9e3779b97f4a7c15ULL);
	if (e->has_ts)
		tsf = e->ts;	/* compared in ms; ties within a ms are allowed */
	if (f->has_group && g == f->group) {
		if (e->has_ts != f->group_has_ts)
			return expfmt_fail(p, at, "%s mixes samples with and without timestamps",
			    expfmt_qname(q, sizeof(q), e));
		if (e->has_ts && tsf < f->group_ts)
			return expfmt_fail(p, at, "timestamps of %s go backwards",
			    expfmt_qname(q, sizeof(q), e));
	} else {
		int rc = expfmt_hset_add(&f->groups, g);

		if (rc < 0)
			return expfmt_oom(p, at);
		if (rc == 0)
			return expfmt_fail(p, at, "samples of one metric of family %.*s are not together",
			    (int)f->len, f->name);
	}
	f->has_group = true;
	f->group = g;
	f->group_has_ts = e->has_ts;
	f->group_ts = tsf;

	/* histogram points */
	if (f->type == EXPFMT_HISTOGRAM || f->type == EXPFMT_GAUGEHISTOGRAM) {
		if (!f->h_active || g != f->h_group || e->has_ts != f->h_has_ts ||
		    (e->has_ts && tsf != f->h_ts)) {
			if (expfmt_hist_check(p, at) == EXPFMT_ERROR)
				return EXPFMT_ERROR;
			f->h_active = true;
			f->h_group = g;
			f->h_has_ts = e->has_ts;
			f->h_ts = tsf;
			f->h_has_bucket = f->h_has_count = f->h_has_sum = f->h_has_gsum = false;
			f->h_neg_bucket = f->h_neg_gsum = false;
			f->h_bval = 0;
		}
		switch (sfx) {
		case SFX_BUCKET:
			if (f->h_has_bucket && le <= f->h_le)
				return expfmt_fail(p, at, "histogram buckets of %.*s out of order",
				    (int)f->len, f->name);
			if (v < f->h_bval)
				return expfmt_fail(p, at, "histogram bucket values of %.*s decrease",
				    (int)f->len, f->name);
			if (le < 0)
				f->h_neg_bucket = true;
			f->h_has_bucket = true;
			f->h_le = le;
			f->h_bval = v;
			break;
		case SFX_COUNT:
		case SFX_GCOUNT:
			f->h_has_count = true;
			f->h_count = v;
			break;
		case SFX_SUM:
			f->h_has_sum = true;
			break;
		case SFX_GSUM:
			f->h_has_gsum = true;
			if (v < 0)
				f->h_neg_gsum = true;
			break;
		default:
			break;
		}
	}
	return EXPFMT_SAMPLE;
counterlike:
	return expfmt_fail(p, at, "%s is counter-like and cannot be NaN or negative",
	    expfmt_qname(q, sizeof(q), e));
}

/* ---- OpenMetrics lines ----------------------------------------------- */

static enum expfmt_kind
expfmt_om_meta(struct expfmt_parser *p, const unsigned char *s, const unsigned char *w,
    enum expfmt_kind kind, struct expfmt_entry *e)
{
	const unsigned char *end = p->end, *nm, *eol, *t;
	const char *kw = kind == EXPFMT_HELP ? "HELP" : kind == EXPFMT_TYPE ? "TYPE" : "UNIT";
	size_t n;
	char q[96];

	w += 5;
	if (w >= end || !(expfmt_cls[*w] & C_MSTART))
		return expfmt_fail(p, w, "expected metric name after %s, got \"%s\"", kw,
		    w >= end ? "EOF" : "INVALID");
	nm = w;
	while (w < end && (expfmt_cls[*w] & C_MCONT))
		w++;
	e->name.p = (const char *)nm;
	e->name.len = (size_t)(w - nm);
	if (w >= end || *w != ' ')
		return expfmt_fail(p, w, "expected text in %s", kw);
	t = w + 1;
	eol = memchr(t, '\n', (size_t)(end - t));
	if (eol == NULL)
		return expfmt_fail(p, w, "expected text in %s", kw);
	n = (size_t)(eol - t);
	e->kind = kind;
	e->text.p = (const char *)t;
	e->text.len = n;
	if (kind == EXPFMT_TYPE) {
		int i;

		for (i = EXPFMT_UNKNOWN; i <= EXPFMT_STATESET; i++)
			if (strlen(expfmt_type_names[i]) == n && memcmp(expfmt_type_names[i], t, n) == 0)
				break;
		if (i > EXPFMT_STATESET) {
			expfmt_goquote(q, sizeof(q), t, n);
			return expfmt_fail(p, t, "invalid metric type %s", q);
		}
		e->type = i;
	} else if (kind == EXPFMT_HELP) {
		if (!expfmt_utf8_valid(t, n))
			return expfmt_fail(p, t, "help text is not a valid utf8 string");
		if (memchr(t, '\\', n)) {
			size_t off;

			if (expfmt_scratch_reserve(p, n) < 0)
				return expfmt_oom(p, t);
			off = expfmt_unescape(p, t, n, true);
			e->text.p = p->scratch + off;
			e->text.len = p->slen - off;
		}
	} else if (n > 0) {
		if (e->name.len < n + 1 || memcmp(nm + e->name.len - n, t, n) != 0 ||
		    nm[e->name.len - n - 1] != '_') {
			expfmt_goquote(q, sizeof(q), nm, e->name.len);
			return expfmt_fail(p, t, "unit not a suffix of metric %s", q);
		}
	}
	if (expfmt_om_meta_family(p, e, s) == EXPFMT_ERROR)
		return EXPFMT_ERROR;
	p->p = eol + 1;
	expfmt_newline(p, eol + 1);
	return kind;
}

/* expfmt_om_value reads " <token>" at s: returns the token end, or NULL. */
static inline const unsigned char *
expfmt_om_token(const unsigned char *s, const unsigned char *end)
{
	if (s + 1 >= end || *s != ' ' || (expfmt_cls[s[1]] & C_OMVEND))
		return NULL;
	s++;
	while (s < end && !(expfmt_cls[*s] & C_OMVEND))
		s++;
	return s;
}

static const char *
expfmt_tok_after(const unsigned char *s, const unsigned char *end)
{
	if (s >= end)
		return "EOF";
	if (expfmt_om_token(s, end))
		return "TIMESTAMP";
	return "INVALID";
}

static enum expfmt_kind
expfmt_om_sample(struct expfmt_parser *p, const unsigned char *s, struct expfmt_entry *e)
{
	const unsigned char *end = p->end, *t, *v;
	int rc;
	double tsf;

	e->kind = EXPFMT_SAMPLE;
	e->name.p = (const char *)s;
	t = s;
	while (t < end && (expfmt_cls[*t] & C_MCONT))
		t++;
	e->name.len = (size_t)(t - s);
	e->series.p = (const char *)s;
	p->lab.n = 0;
	p->ex.n = 0;
	if (t < end && *t == '{') {
		t = expfmt_parse_labels(p, t, &p->lab);
		if (t == NULL)
			return EXPFMT_ERROR;
	}
	e->series.len = (size_t)(t - s);
	v = expfmt_om_token(t, end);
	if (v == NULL)
		return expfmt_fail(p, t, "expected value after metric, got \"%s\"",
		    t >= end ? "EOF" : *t == '{' ? "BOPEN" : "INVALID");
	rc = expfmt_fparse(t + 1, (size_t)(v - t - 1), &e->value);
	if (rc != F_OK)
		return expfmt_float_error(p, t + 1, (size_t)(v - t - 1), rc);
	t = v;
	e->has_ts = false;
	if (t >= end)
		return expfmt_fail(p, t, "data does not end with # EOF");
	if (*t != ' ' && *t != '\n')
		return expfmt_fail(p, t, "expected timestamp or # symbol, got \"INVALID\"");
	if (*t == ' ' && !(end - t >= 4 && t[1] == '#' && t[2] == ' ' && t[3] == '{')) {
		v = expfmt_om_token(t, end);
		if (v == NULL)
			return expfmt_fail(p, t, "expected timestamp or # symbol, got \"INVALID\"");
		rc = expfmt_fparse(t + 1, (size_t)(v - t - 1), &tsf);
		if (rc != F_OK)
			return expfmt_float_error(p, t + 1, (size_t)(v - t - 1), rc);
		if (isnan(tsf) || isinf(tsf))
			return expfmt_fail(p, t + 1, "invalid timestamp");
		e->has_ts = true;
		e->ts = expfmt_ms(tsf);
		t = v;
		if (t >= end || (*t != '\n' &&
		    !(end - t >= 4 && t[1] == '#' && t[2] == ' ' && t[3] == '{')))
			return expfmt_fail(p, t, "expected next entry after timestamp, got \"%s\"",
			    expfmt_tok_after(t, end));
	}
	e->has_exemplar = false;
	if (*t == ' ') {
		/* " # {" starts an exemplar */
		static const char *const okay[] = { "_total", "_bucket" };
		bool ok = false;
		size_t i, runes = 0;

		for (i = 0; i < 2; i++) {
			size_t l = strlen(okay[i]);

			if (e->name.len >= l && memcmp(e->name.p + e->name.len - l, okay[i], l) == 0)
				ok = true;
		}
		if (!ok)
			return expfmt_fail(p, t + 1, "metric name %.*s does not support exemplars",
			    (int)e->name.len, e->name.p);
		t = expfmt_parse_labels(p, t + 3, &p->ex);
		if (t == NULL)
			return EXPFMT_ERROR;
		v = expfmt_om_token(t, end);
		if (v == NULL)
			return expfmt_fail(p, t, "expected value after exemplar labels, got \"%s\"",
			    t >= end ? "EOF" : "INVALID");
		rc = expfmt_fparse(t + 1, (size_t)(v - t - 1), &e->ex_value);
		if (rc != F_OK)
			return expfmt_float_error(p, t + 1, (size_t)(v - t - 1), rc);
		t = v;
		e->ex_has_ts = false;
		if (t >= end)
			return expfmt_fail(p, t, "data does not end with # EOF");
		if (*t != '\n') {
			v = expfmt_om_token(t, end);
			if (v == NULL)
				return expfmt_fail(p, t, "expected timestamp or comment, got \"INVALID\"");
			rc = expfmt_fparse(t + 1, (size_t)(v - t - 1), &tsf);
			if (rc != F_OK)
				return expfmt_float_error(p, t + 1, (size_t)(v - t - 1), rc);
			if (isnan(tsf) || isinf(tsf))
				return expfmt_fail(p, t + 1, "invalid exemplar timestamp");
			e->ex_has_ts = true;
			e->ex_ts = expfmt_ms(tsf);
			t = v;
			if (t >= end || *t != '\n')
				return expfmt_fail(p, t,
				    "expected next entry after exemplar timestamp, got \"%s\"",
				    expfmt_tok_after(t, end));
		}
		if (expfmt_check_dups(p, &p->ex, true, s) == EXPFMT_ERROR)
			return EXPFMT_ERROR;
		for (i = 0; i < p->ex.n; i++) {
			runes += p->ex.v[i].name.len;
			runes += p->ex.soff[i] ? expfmt_runes(p->scratch + p->ex.soff[i] - 1,
			    p->ex.v[i].value.len) : expfmt_runes(p->ex.v[i].value.p, p->ex.v[i].value.len);
		}
		if (runes > EXPFMT_EXEMPLAR_MAX_RUNES)
			return expfmt_fail(p, s, "exemplar labels have %zu UTF-8 characters, more "
			    "than %d", runes, EXPFMT_EXEMPLAR_MAX_RUNES);
		e->has_exemplar = true;
		expfmt_lset_fixup(p, &p->ex);
		e->ex_labels = p->ex.v;
		e->ex_nlabels = p->ex.n;
	}
	if (expfmt_check_dups(p, &p->lab, false, s) == EXPFMT_ERROR)
		return EXPFMT_ERROR;
	expfmt_lset_fixup(p, &p->lab);
	e->labels = p->lab.v;
	e->nlabels = p->lab.n;
	if (expfmt_om_sample_family(p, e, s) == EXPFMT_ERROR)
		return EXPFMT_ERROR;
	p->p = t + 1;
	expfmt_newline(p, t + 1);
	return EXPFMT_SAMPLE;
}

static enum expfmt_kind
expfmt_om_next(struct expfmt_parser *p, struct expfmt_entry *e)
{
	const unsigned char *end = p->end, *s = p->p;
	char q[16];

	if (s >= end)
		return expfmt_fail(p, s, "data does not end with # EOF");
	if (*s == '#') {
		const unsigned char *w = s + 2;

		if (s + 1 < end && s[1] == ' ') {
			if (end - w >= 5 && w[4] == ' ') {
				if (memcmp(w, "HELP", 4) == 0)
					return expfmt_om_meta(p, s, w, EXPFMT_HELP, e);
				if (memcmp(w, "TYPE", 4) == 0)
					return expfmt_om_meta(p, s, w, EXPFMT_TYPE, e);
				if (memcmp(w, "UNIT", 4) == 0)
					return expfmt_om_meta(p, s, w, EXPFMT_UNIT, e);
			}
			if (end - w >= 3 && memcmp(w, "EOF", 3) == 0) {
				w += 3;
				if (w < end && *w == '\n' && w + 1 == end)
					w++;
				if (w != end) {
					if (*w == '\n')
						expfmt_newline(p, ++w);
					return expfmt_fail(p, w, "unexpected data after # EOF");
				}
				if (expfmt_hist_check(p, s) == EXPFMT_ERROR)
					return EXPFMT_ERROR;
				p->p = end;
				p->done = true;
				p->last = EXPFMT_EOF;
				return EXPFMT_EOF;
			}
			expfmt_goquote(q, sizeof(q), w < end ? w : (const unsigned char *)" ", 1);
			return expfmt_fail(p, w, "\"INVALID\" %s is not a valid start token", q);
		}
		expfmt_goquote(q, sizeof(q), s + 1 < end ? s + 1 : (const unsigned char *)" ", 1);
		return expfmt_fail(p, s + 1, "\"INVALID\" %s is not a valid start token", q);
	}
	if (expfmt_cls[*s] & C_MSTART)
		return expfmt_om_sample(p, s, e);
	expfmt_goquote(q, sizeof(q), s, 1);
	return expfmt_fail(p, s, "\"INVALID\" %s is not a valid start token", q);
}

/* ---- public ---------------------------------------------------------- */

enum expfmt_format
expfmt_format_from_content_type(const char *ct)
{
	static const char om[] = "application/openmetrics-text";
	const char *s, *e;

	if (ct == NULL)
		return EXPFMT_TEXT;
	/* as Go's mime.ParseMediaType: the media type before any ';', trimmed,
	 * case-insensitive; malformed parameters make it fail (then text) */
	for (s = ct; *s == ' ' || *s == '\t'; s++)
		;
	for (e = s; *e && *e != ';'; e++)
		;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if ((size_t)(e - s) != sizeof(om) - 1 || strncasecmp(s, om, sizeof(om) - 1) != 0)
		return EXPFMT_TEXT;
	for (s = strchr(s, ';'); s != NULL; s = strchr(s + 1, ';')) {
		const char *k = s + 1, *eq;

		while (*k == ' ' || *k == '\t')
			k++;
		if (*k == '\0' || *k == ';')
			continue;	/* trailing semicolons are ignored */
		eq = strchr(k, '=');
		if (eq == NULL || eq == k)
			return EXPFMT_TEXT;
		if (strchr(k, ';') != NULL && strchr(k, ';') < eq)
			return EXPFMT_TEXT;
	}
	return EXPFMT_OPENMETRICS;
}

void
expfmt_reset(struct expfmt_parser *p, enum expfmt_format fmt, const char *body, size_t len)
{
	static const unsigned char empty[1];

	p->fmt = fmt;
	p->b = body ? (const unsigned char *)body : empty;
	p->end = p->b + (body ? len : 0);
	p->p = p->b;
	p->line = 1;
	p->lstart = p->b;
	p->done = false;
	p->last = EXPFMT_EOF;
	memset(&p->err, 0, sizeof(p->err));
	p->lab.n = p->ex.n = 0;
	p->slen = 0;
	p->hint = NULL;
	expfmt_hset_clear(&p->names);
	expfmt_hset_clear(&p->fam.groups);
	p->fam.active = false;
	p->fam.h_active = false;
}

struct expfmt_parser *
expfmt_parser_new(enum expfmt_format fmt, const char *body, size_t len)
{
	struct expfmt_parser *p = mem_calloc(1, sizeof(*p));

	expfmt_reset(p, fmt, body, len);
	return p;
}

void
expfmt_parser_free(struct expfmt_parser *p)
{
	if (p == NULL)
		return;
	mem_free(p->lab.v);
	mem_free(p->lab.soff);
	mem_free(p->ex.v);
	mem_free(p->ex.soff);
	mem_free(p->scratch);
	mem_free(p->sortv);
	mem_free(p->names.v);
	mem_free(p->fam.groups.v);
	mem_free(p);
}

enum expfmt_kind
expfmt_next(struct expfmt_parser *p, struct expfmt_entry *e)
{
	if (p->done) {
		e->kind = p->last;
		return p->last;
	}
	p->slen = 0;
	e->nlabels = 0;
	e->labels = NULL;
	e->expected = false;
	e->shape = 0;
	e->has_hash = false;
	e->has_exemplar = false;
	e->ex_nlabels = 0;
	e->ex_labels = NULL;
	e->has_ts = false;
	if (p->fmt == EXPFMT_OPENMETRICS)
		e->kind = expfmt_om_next(p, e);
	else
		e->kind = expfmt_text_next(p, e);
	return e->kind;
}

struct expfmt_hash
expfmt_series_hash(const char *s, size_t len, uint64_t seed)
{
	XXH128_hash_t x = XXH3_128bits_withSeed(s, len, seed);
	struct expfmt_hash h = { x.low64, x.high64 };

	return h;
}

void
expfmt_expect(struct expfmt_parser *p, const struct expfmt_hint *h)
{
	p->hint = h;
}

const struct expfmt_error *
expfmt_error(const struct expfmt_parser *p)
{
	return p->done && p->last == EXPFMT_ERROR ? &p->err : NULL;
}
