/* lib/labels/regex.c - Go (RE2) regular expressions, fully anchored, on PCRE2.
 *
 * regex_new() parses the pattern with Go's regexp/syntax rules and rewrites
 * it into an equivalent PCRE2 pattern: every literal becomes \x{..}, Go-only
 * spellings are translated (\v is a vertical tab, \s is [\t\n\f\r ], octal
 * \123, scripts as \p{sc:..}), named groups become plain groups whose names
 * this module keeps (so Go names like "1x" work), and everything RE2 refuses
 * (backreferences, lookaround, atomic groups, possessive or stacked
 * quantifiers, \C, \K, \R, comments, (?x) ...) is refused here with Go's own
 * "error parsing regexp: <code>: `<text>`" message. The result is compiled as
 * \A(?:p)\z with UTF, MATCH_INVALID_UTF, DOLLAR_ENDONLY (Go's $ is the end of
 * the text), ALT_CIRCUMFLEX and LF newlines, then JIT-compiled.
 *
 * Subjects that are not valid UTF-8 are matched the way Go sees them: each
 * bad byte as U+FFFD, in a per-thread scratch copy, offsets mapped back.
 *
 * Every match runs under a match context with a match limit (about 10 ms of
 * backtracking at most here), a depth and a heap limit, and a per-thread JIT
 * stack of bounded size (a match that outgrows it is rerun by the
 * interpreter, whose frames live on the heap); a match that hits a limit
 * counts as no match (and is counted, see regex_limit_hits()), so a
 * pathological pattern cannot hang a thread. Per-thread state (match data,
 * match context, JIT stack, scratch) is thread-local and freed at thread
 * exit; a compiled struct regex is immutable and shared freely.
 */
#include "config.h"

#include "labels/regex.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/mem.h"
#include "util/utf8.h"

#define REGEX_MATCH_LIMIT	1000000
#define REGEX_DEPTH_LIMIT	1000000
#define REGEX_HEAP_LIMIT_KIB	(64 * 1024)
#define REGEX_JIT_STACK_MAX	(1024 * 1024)
#define REGEX_MAX_REPEAT	1000
#define REGEX_MAX_NEST		1000

enum regex_kind {
	RK_GENERAL,
	RK_LITERAL,		/* compare with lit */
	RK_ANY_LINE,		/* .*: no \n */
	RK_ANY_LINE_NONEMPTY,	/* .+ */
	RK_ANY,			/* (?s).* */
};

struct regex {
	pcre2_code *code;
	char *pattern;		/* as given, NUL-terminated */
	char *lit;		/* literal value when kind == RK_LITERAL */
	size_t litlen;
	enum regex_kind kind;
	int ncap;		/* capturing groups, not counting group 0 */
	char **names;		/* [0..ncap], NULL for unnamed groups */
};

/* ------------------------------------------------------------------------ */
/* process-wide PCRE2 contexts                                               */

static pcre2_general_context *regex_gctx;
static pcre2_compile_context *regex_cctx;
static pcre2_code *regex_namechar;	/* [\p{L}\p{Nd}_], for Expand */
static pthread_once_t regex_once = PTHREAD_ONCE_INIT;
static pthread_key_t regex_tls_key;
static unsigned long regex_limit_count;	/* atomic */

struct regex_tls {
	pcre2_match_data *md;
	uint32_t md_pairs;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit;
	char *buf;		/* sanitized subject */
	size_t bufcap;
	long *map;		/* sanitized offset -> subject offset */
	size_t mapcap;
};

static _Thread_local struct regex_tls *regex_tls;

static void *
regex_pcre_alloc(size_t n, void *data)
{
	(void)data;
	return mem_try_alloc(n);
}

static void
regex_pcre_free(void *p, void *data)
{
	(void)data;
	mem_free(p);
}

static void
regex_tls_destroy(void *arg)
{
	struct regex_tls *t = arg;

	if (t == NULL)
		return;
	pcre2_match_data_free(t->md);
	pcre2_match_context_free(t->mctx);
	pcre2_jit_stack_free(t->jit);
	mem_free(t->buf);
	mem_free(t->map);
	mem_free(t);
}

static void
regex_init(void)
{
	static const char nc[] = "[\\p{L}\\p{Nd}_]";
	PCRE2_SIZE eo;
	int ec;

	regex_gctx = pcre2_general_context_create(regex_pcre_alloc, regex_pcre_free, NULL);
	regex_cctx = pcre2_compile_context_create(regex_gctx);
	if (regex_cctx != NULL) {
		pcre2_set_newline(regex_cctx, PCRE2_NEWLINE_LF);
		pcre2_set_parens_nest_limit(regex_cctx, REGEX_MAX_NEST + 10);
	}
	regex_namechar = pcre2_compile((PCRE2_SPTR)nc, sizeof(nc) - 1,
	    PCRE2_UTF | PCRE2_ANCHORED, &ec, &eo, regex_cctx);
	if (regex_namechar != NULL)
		(void)pcre2_jit_compile(regex_namechar, PCRE2_JIT_COMPLETE);
	pthread_key_create(&regex_tls_key, regex_tls_destroy);
}

/* regex_thread returns this thread's match state with match data for at
 * least pairs pairs, or NULL when memory is short. */
static struct regex_tls *
regex_thread(uint32_t pairs)
{
	struct regex_tls *t = regex_tls;

	if (t == NULL) {
		t = mem_calloc(1, sizeof(*t));
		t->mctx = pcre2_match_context_create(regex_gctx);
		t->jit = pcre2_jit_stack_create(32 * 1024, REGEX_JIT_STACK_MAX, regex_gctx);
		if (t->mctx == NULL) {
			regex_tls_destroy(t);
			return NULL;
		}
		pcre2_set_match_limit(t->mctx, REGEX_MATCH_LIMIT);
		pcre2_set_depth_limit(t->mctx, REGEX_DEPTH_LIMIT);
		pcre2_set_heap_limit(t->mctx, REGEX_HEAP_LIMIT_KIB);
		if (t->jit != NULL)
			pcre2_jit_stack_assign(t->mctx, NULL, t->jit);
		regex_tls = t;
		pthread_setspecific(regex_tls_key, t);
	}
	if (t->md == NULL || t->md_pairs < pairs) {
		uint32_t want = pairs < 16 ? 16 : pairs;
		pcre2_match_data *md = pcre2_match_data_create(want, regex_gctx);

		if (md == NULL)
			return NULL;
		pcre2_match_data_free(t->md);
		t->md = md;
		t->md_pairs = want;
	}
	return t;
}

void
regex_thread_cleanup(void)
{
	struct regex_tls *t = regex_tls;

	if (t == NULL)
		return;
	regex_tls = NULL;
	pthread_setspecific(regex_tls_key, NULL);
	regex_tls_destroy(t);
}

unsigned long
regex_limit_hits(void)
{
	return __atomic_load_n(&regex_limit_count, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */

/* utf8_valid tells whether s[0..len) is valid UTF-8. */
static bool
utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	long r;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		i += utf8_decode_rune(s + i, len - i, &r);
		if (r < 0)
			return false;
	}
	return true;
}

static size_t
utf8_encode(long r, char *out)
{
	if (r < 0x80) {
		out[0] = (char)r;
		return 1;
	}
	if (r < 0x800) {
		out[0] = (char)(0xc0 | (r >> 6));
		out[1] = (char)(0x80 | (r & 0x3f));
		return 2;
	}
	if (r < 0x10000) {
		out[0] = (char)(0xe0 | (r >> 12));
		out[1] = (char)(0x80 | ((r >> 6) & 0x3f));
		out[2] = (char)(0x80 | (r & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (r >> 18));
	out[1] = (char)(0x80 | ((r >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((r >> 6) & 0x3f));
	out[3] = (char)(0x80 | (r & 0x3f));
	return 4;
}

/* ------------------------------------------------------------------------ */
/* Go syntax -> PCRE2 translation                                            */

struct xlate {
	const char *p;		/* the Go pattern */
	size_t len;
	size_t i;		/* read position */
	struct strbuf out;	/* the PCRE2 pattern */
	char *err;
	size_t errlen;
	int ncap;
	char **names;		/* by group number */
	size_t names_cap;
	int depth;
	/* literal detection */
	bool literal;
	struct strbuf lit;
	/* repetition state (Go's parser stack, reduced to what checks need) */
	bool can_repeat;	/* an item precedes that a quantifier may apply to */
	bool last_assert;	/* that item is a zero-width assertion */
	size_t item_out;	/* where that item starts in out */
	long last_repeat;	/* input offset of the quantifier just before, or -1 */
	long item_prod;		/* product of {n,m} bounds inside that item */
	long grp_prod[REGEX_MAX_NEST + 2];	/* max product within each open group */
	size_t grp_start[REGEX_MAX_NEST + 2];	/* output offset of each open group */
};

static void
xl_error(struct xlate *x, const char *code, const char *text, size_t tlen)
{
	if (x->err != NULL && x->errlen > 0)
		snprintf(x->err, x->errlen, "error parsing regexp: %s: `%.*s`", code,
		    (int)tlen, text);
}

/* xl_rune reads the rune at x->i (pattern is valid UTF-8). */
static long
xl_rune(struct xlate *x, size_t *w)
{
	long r;

	*w = utf8_decode_rune((const unsigned char *)x->p + x->i, x->len - x->i, &r);
	return r;
}

/* xl_emit_rune writes r as a PCRE2 literal, safe inside and outside classes. */
static void
xl_emit_rune(struct strbuf *sb, long r)
{
	if ((r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_')
		strbuf_putc(sb, (char)r);
	else
		strbuf_printf(sb, "\\x{%lx}", r);
}

/* xl_item starts a new repeatable item at the current output position. */
static void
xl_item(struct xlate *x, bool assertion)
{
	x->can_repeat = true;
	x->last_assert = assertion;
	x->item_out = x->out.len;
	x->item_prod = 1;
}

static void
xl_literal(struct xlate *x, long r)
{
	char u[4];

	xl_item(x, false);
	xl_emit_rune(&x->out, r);
	if (x->literal) {
		if (r == 0)
			x->literal = false;
		else
			strbuf_append(&x->lit, u, utf8_encode(r, u));
	}
}

static void
xl_note_prod(struct xlate *x)
{
	if (x->item_prod > x->grp_prod[x->depth])
		x->grp_prod[x->depth] = x->item_prod;
}

static int
hexval(long c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

static bool
is_alnum(long c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* xl_escape parses a single-rune escape at x->i (which is at the backslash),
 * as Go's parseEscape: octal, \x, \a\f\n\r\t\v, escaped punctuation. Returns
 * the rune or -1 after setting the error. */
static long
xl_escape(struct xlate *x)
{
	size_t start = x->i, w;
	long c, r;
	int k, h1, h2;

	x->i++;			/* the backslash */
	if (x->i >= x->len) {
		xl_error(x, "trailing backslash at end of expression", "", 0);
		return -1;
	}
	c = xl_rune(x, &w);
	x->i += w;
	switch (c) {
	case '1': case '2': case '3': case '4': case '5': case '6': case '7':
		/* A single non-zero digit is a backreference: not supported. */
		if (x->i >= x->len || x->p[x->i] < '0' || x->p[x->i] > '7')
			break;
		/* fall through */
	case '0':
		r = c - '0';
		for (k = 1; k < 3; k++) {
			if (x->i >= x->len || x->p[x->i] < '0' || x->p[x->i] > '7')
				break;
			r = r * 8 + (x->p[x->i] - '0');
			x->i++;
		}
		return r;
	case 'x':
		if (x->i >= x->len)
			break;
		c = xl_rune(x, &w);
		x->i += w;
		if (c == '{') {
			int nhex = 0;

			r = 0;
			for (;;) {
				if (x->i >= x->len)
					goto bad;
				c = xl_rune(x, &w);
				x->i += w;
				if (c == '}')
					break;
				if (hexval(c) < 0)
					goto bad;
				r = r * 16 + hexval(c);
				if (r > 0x10ffff)
					goto bad;
				nhex++;
			}
			if (nhex == 0)
				break;
			return r;
		}
		if (x->i >= x->len)
			break;
		h1 = hexval(c);
		c = xl_rune(x, &w);
		x->i += w;
		h2 = hexval(c);
		if (h1 < 0 || h2 < 0)
			break;
		return h1 * 16 + h2;
	case 'a': return 7;
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'v': return '\v';
	default:
		if (c < 0x80 && !is_alnum(c))
			return c;
		break;
	}
bad:
	xl_error(x, "invalid escape sequence", x->p + start, x->i - start);
	return -1;
}

static const char *const go_categories[] = {
	"C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc",
	"Me", "Mn", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po",
	"Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs", "Any",
};

/* xl_unicode_class parses \pX, \p{Name}, \PX, \P{^Name} at x->i and emits it
 * (inside or outside a class). Returns 0, or -1 with the error set. */
static int
xl_unicode_class(struct xlate *x)
{
	size_t start = x->i, nstart, nend, k;
	bool neg = x->p[x->i + 1] == 'P', script = true, ok;
	const char *name;
	size_t nlen, w;

	x->i += 2;
	if (x->i >= x->len) {
		xl_error(x, "invalid character class range", x->p + start, x->i - start);
		return -1;
	}
	if (x->p[x->i] != '{') {
		(void)xl_rune(x, &w);
		nstart = x->i;
		x->i += w;
		nend = x->i;
	} else {
		const char *e = memchr(x->p + x->i, '}', x->len - x->i);

		if (e == NULL) {
			xl_error(x, "invalid character class range", x->p + start, x->len - start);
			return -1;
		}
		nstart = x->i + 1;
		nend = (size_t)(e - x->p);
		x->i = nend + 1;
	}
	name = x->p + nstart;
	nlen = nend - nstart;
	if (nlen > 0 && name[0] == '^') {
		neg = !neg;
		name++;
		nlen--;
	}
	for (k = 0; k < sizeof(go_categories) / sizeof(go_categories[0]); k++) {
		if (strlen(go_categories[k]) == nlen && memcmp(go_categories[k], name, nlen) == 0) {
			script = false;
			break;
		}
	}
	/* Scripts: Latin, Old_Italic, SignWriting (PCRE2 checks the rest). */
	ok = !script;
	if (script && nlen > 0 && name[0] >= 'A' && name[0] <= 'Z') {
		ok = true;
		for (k = 0; k < nlen; k++) {
			char c = name[k];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c == '_' && k + 1 < nlen && name[k + 1] >= 'A' && name[k + 1] <= 'Z')))
				ok = false;
		}
		/* PCRE2-only specials */
		if (nlen == 3 && name[0] == 'X')
			ok = false;
	}
	if (ok && script) {
		/* Let PCRE2 say whether it knows the script. */
		char probe[96];
		pcre2_code *c;
		PCRE2_SIZE eo;
		int ec;

		ok = nlen < 64;
		if (ok) {
			snprintf(probe, sizeof(probe), "\\p{sc:%.*s}", (int)nlen, name);
			c = pcre2_compile((PCRE2_SPTR)probe, strlen(probe), PCRE2_UTF, &ec, &eo,
			    regex_cctx);
			ok = c != NULL;
			pcre2_code_free(c);
		}
	}
	if (!ok) {
		xl_error(x, "invalid character class range", x->p + start, x->i - start);
		return -1;
	}
	strbuf_printf(&x->out, "\\%c{%s%.*s}", neg ? 'P' : 'p', script ? "sc:" : "",
	    (int)nlen, name);
	return 0;
}

/* xl_perl_class emits \d \D \s \S \w \W with Go's ASCII meanings, spelled
 * out as ranges so no PCRE2 option can widen them. */
static void
xl_perl_class(struct xlate *x, char c, bool in_class)
{
	static const char *const inner[][2] = {
		/* class body, complement body */
		{ "0-9", "\\x{0}-\\x{2f}\\x{3a}-\\x{10ffff}" },
		{ "\\t\\n\\f\\r\\x{20}", "\\x{0}-\\x{8}\\x{b}\\x{e}-\\x{1f}\\x{21}-\\x{10ffff}" },
		{ "0-9A-Za-z_", "\\x{0}-\\x{2f}\\x{3a}-\\x{40}\\x{5b}-\\x{5e}\\x{60}\\x{7b}-\\x{10ffff}" },
	};
	int k = (c == 'd' || c == 'D') ? 0 : (c == 's' || c == 'S') ? 1 : 2;
	int neg = c == 'D' || c == 'S' || c == 'W';

	if (!in_class)
		strbuf_putc(&x->out, '[');
	strbuf_puts(&x->out, inner[k][neg]);
	if (!in_class)
		strbuf_putc(&x->out, ']');
}

static const char *const posix_classes[] = {
	"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
	"print", "punct", "space", "upper", "word", "xdigit",
};

/* xl_class parses a bracketed class at x->i (at '[') like Go's parseClass and
 * emits a PCRE2 class. Returns 0 or -1 with the error set. */
static int
xl_class(struct xlate *x)
{
	size_t start = x->i, w, k;
	bool first = true;
	long lo, hi;

	x->i++;
	strbuf_putc(&x->out, '[');
	if (x->i < x->len && x->p[x->i] == '^') {
		strbuf_putc(&x->out, '^');
		x->i++;
	}
	while (x->i >= x->len || x->p[x->i] != ']' || first) {
		size_t item = x->i;

		first = false;
		if (x->i >= x->len) {
			xl_error(x, "missing closing ]", x->p + start, x->len - start);
			return -1;
		}
		/* POSIX class [:alpha:] / [:^alpha:] */
		if (x->i + 1 < x->len && x->p[x->i] == '[' && x->p[x->i + 1] == ':') {
			const char *e = memmem(x->p + x->i + 2, x->len - x->i - 2, ":]", 2);

			if (e != NULL) {
				size_t nend = (size_t)(e - x->p), nstart = x->i + 2;
				bool found = false;

				if (nstart < nend && x->p[nstart] == '^')
					nstart++;
				for (k = 0; k < sizeof(posix_classes) / sizeof(posix_classes[0]); k++)
					if (strlen(posix_classes[k]) == nend - nstart &&
					    memcmp(posix_classes[k], x->p + nstart, nend - nstart) == 0)
						found = true;
				if (!found) {
					xl_error(x, "invalid character class range", x->p + x->i,
					    nend + 2 - x->i);
					return -1;
				}
				strbuf_append(&x->out, x->p + x->i, nend + 2 - x->i);
				x->i = nend + 2;
				continue;
			}
		}
		if (x->p[x->i] == '\\' && x->i + 1 < x->len) {
			char c = x->p[x->i + 1];

			if (c == 'p' || c == 'P') {
				if (xl_unicode_class(x) < 0)
					return -1;
				continue;
			}
			if (c == 'd' || c == 'D' || c == 's' || c == 'S' || c == 'w' || c == 'W') {
				xl_perl_class(x, c, true);
				x->i += 2;
				continue;
			}
		}
		/* a single rune or a range */
		if (x->p[x->i] == '\\') {
			if ((lo = xl_escape(x)) < 0)
				return -1;
		} else {
			lo = xl_rune(x, &w);
			x->i += w;
		}
		hi = lo;
		if (x->i + 1 < x->len && x->p[x->i] == '-' && x->p[x->i + 1] != ']') {
			x->i++;
			if (x->p[x->i] == '\\') {
				if ((hi = xl_escape(x)) < 0)
					return -1;
			} else {
				hi = xl_rune(x, &w);
				x->i += w;
			}
			if (hi < lo) {
				xl_error(x, "invalid character class range", x->p + item, x->i - item);
				return -1;
			}
		}
		xl_emit_rune(&x->out, lo);
		if (hi != lo) {
			strbuf_putc(&x->out, '-');
			xl_emit_rune(&x->out, hi);
		}
	}
	x->i++;			/* ] */
	strbuf_putc(&x->out, ']');
	return 0;
}

/* xl_parse_int parses Go's repeat count at x->i: digits without a leading
 * zero; -1 for a value too big. Returns false when there are no digits. */
static bool
xl_parse_int(struct xlate *x, size_t *i, long *n)
{
	size_t j = *i;

	if (j >= x->len || x->p[j] < '0' || x->p[j] > '9')
		return false;
	if (j + 1 < x->len && x->p[j] == '0' && x->p[j + 1] >= '0' && x->p[j + 1] <= '9')
		return false;
	*n = 0;
	for (; j < x->len && x->p[j] >= '0' && x->p[j] <= '9'; j++) {
		if (*n >= 100000000)
			*n = -1;
		else if (*n >= 0)
			*n = *n * 10 + (x->p[j] - '0');
	}
	*i = j;
	return true;
}

/* xl_parse_repeat parses {n}, {n,}, {n,m} at x->i; returns false (and leaves
 * x->i) when the text is not a repeat, making { a literal. */
static bool
xl_parse_repeat(struct xlate *x, long *min, long *max, size_t *end)
{
	size_t j = x->i + 1;

	if (!xl_parse_int(x, &j, min))
		return false;
	if (j >= x->len)
		return false;
	if (x->p[j] != ',') {
		*max = *min;
	} else {
		j++;
		if (j >= x->len)
			return false;
		if (x->p[j] == '}') {
			*max = -1;
		} else {
			if (!xl_parse_int(x, &j, max))
				return false;
			if (*max < 0)
				*min = -1;
		}
	}
	if (j >= x->len || x->p[j] != '}')
		return false;
	*end = j + 1;
	return true;
}

/* xl_repeat applies the quantifier at x->i..qend (plus an optional lazy '?')
 * to the last item, checking what Go checks. Returns 0 or -1. */
static int
xl_repeat(struct xlate *x, size_t qend, long min, long max, bool counted)
{
	size_t start = x->i, end = qend;

	if (end < x->len && x->p[end] == '?')
		end++;
	if (x->last_repeat >= 0) {
		xl_error(x, "invalid nested repetition operator", x->p + x->last_repeat,
		    end - (size_t)x->last_repeat);
		return -1;
	}
	if (!x->can_repeat) {
		xl_error(x, "missing argument to repetition operator", x->p + start, end - start);
		return -1;
	}
	if (counted && (min >= 2 || max >= 2)) {
		long m = max < 0 ? min : max;

		if (m > 0 && x->item_prod > REGEX_MAX_REPEAT / m) {
			xl_error(x, "invalid repeat count", x->p + start, qend - start);
			return -1;
		}
	}
	if (counted)
		x->item_prod *= max < 0 ? min : max;
	xl_note_prod(x);
	if (x->last_assert) {
		/* PCRE2 does not quantify a bare assertion; Go does. */
		strbuf_grow(&x->out, 3);
		memmove(x->out.buf + x->item_out + 3, x->out.buf + x->item_out,
		    x->out.len - x->item_out + 1);
		memcpy(x->out.buf + x->item_out, "(?:", 3);
		x->out.len += 3;
		strbuf_putc(&x->out, ')');
		x->last_assert = false;
	}
	strbuf_append(&x->out, x->p + start, end - start);
	x->literal = false;
	x->last_repeat = (long)start;
	x->i = end;
	return 0;
}

static bool
is_name_char(char c)
{
	return is_alnum((unsigned char)c) || c == '_';
}

/* xl_group parses what follows '(' at x->i: a capture, a named capture, a
 * flag group or a non-capturing group. Returns 0 or -1. */
static int
xl_group(struct xlate *x)
{
	size_t start = x->i, open_out = x->out.len, k;
	bool neg = false, saw = false;

	if (x->i + 1 >= x->len || x->p[x->i + 1] != '?') {
		x->i++;
		goto capture;
	}
	/* (?P<name>re) */
	if (x->len - x->i > 4 && x->p[x->i + 2] == 'P' && x->p[x->i + 3] == '<') {
		const char *e = memchr(x->p + x->i + 4, '>', x->len - x->i - 4);
		size_t nstart = x->i + 4, nend;

		if (e == NULL) {
			xl_error(x, "invalid named capture", x->p + start, x->len - start);
			return -1;
		}
		nend = (size_t)(e - x->p);
		for (k = nstart; k < nend; k++)
			if (!is_name_char(x->p[k]))
				break;
		if (nend == nstart || k < nend) {
			xl_error(x, "invalid named capture", x->p + start, nend + 1 - start);
			return -1;
		}
		x->i = nend + 1;
		x->ncap++;
		if ((size_t)x->ncap >= x->names_cap) {
			size_t ncap = x->names_cap ? x->names_cap * 2 : 8;

			while (ncap <= (size_t)x->ncap)
				ncap *= 2;
			x->names = mem_realloc(x->names, ncap * sizeof(*x->names));
			memset(x->names + x->names_cap, 0, (ncap - x->names_cap) * sizeof(*x->names));
			x->names_cap = ncap;
		}
		x->names[x->ncap] = mem_strndup(x->p + nstart, nend - nstart);
		strbuf_putc(&x->out, '(');
		goto open;
	}
	/* (?flags) and (?flags:re) */
	for (k = x->i + 2; k < x->len; k++) {
		char c = x->p[k];

		switch (c) {
		case 'i': case 'm': case 's': case 'U':
			saw = true;
			continue;
		case '-':
			if (neg)
				goto bad;
			neg = true;
			saw = false;
			continue;
		case ':': case ')':
			if (neg && !saw)
				goto bad_at;
			x->literal = false;
			if (c == ')') {
				/* flags for the rest of the current group */
				if (k > x->i + 2) {
					strbuf_append(&x->out, x->p + x->i, k + 1 - x->i);
				}
				x->i = k + 1;
				return 0;
			}
			strbuf_append(&x->out, x->p + x->i, k + 1 - x->i);
			x->i = k + 1;
			goto open;
		default:
			goto bad;
		}
	}
	/* ran off the end */
	xl_error(x, "invalid or unsupported Perl syntax", x->p + start, x->len - start);
	return -1;
bad:
	{
		size_t w;

		x->i = k;
		(void)xl_rune(x, &w);
		xl_error(x, "invalid or unsupported Perl syntax", x->p + start, k + w - start);
		return -1;
	}
bad_at:
	xl_error(x, "invalid or unsupported Perl syntax", x->p + start, k + 1 - start);
	return -1;
capture:
	x->ncap++;
	strbuf_putc(&x->out, '(');
open:
	x->literal = false;
	if (x->depth >= REGEX_MAX_NEST) {
		xl_error(x, "expression nests too deeply", x->p, x->len);
		return -1;
	}
	x->depth++;
	x->grp_prod[x->depth] = 0;
	x->grp_start[x->depth] = open_out;
	x->can_repeat = false;
	x->last_repeat = -1;
	return 0;
}

/* xl_run translates the whole pattern; returns 0 or -1 with the error set. */
static int
xl_run(struct xlate *x)
{
	size_t w, end;
	long r, min, max;
	char c;

	x->literal = true;
	x->can_repeat = false;
	x->last_repeat = -1;
	x->grp_prod[0] = 0;
	while (x->i < x->len) {
		long repeat_before = x->last_repeat;

		x->last_repeat = -1;
		c = x->p[x->i];
		switch (c) {
		case '(':
			if (xl_group(x) < 0)
				return -1;
			break;
		case ')':
			if (x->depth == 0) {
				xl_error(x, "unexpected )", x->p, x->len);
				return -1;
			}
			{
				long inner = x->grp_prod[x->depth];
				size_t gs = x->grp_start[x->depth];

				x->depth--;
				strbuf_putc(&x->out, ')');
				x->i++;
				x->can_repeat = true;
				x->last_assert = false;
				x->item_out = gs;	/* the item is the whole group */
				x->item_prod = inner > 0 ? inner : 1;
				xl_note_prod(x);
			}
			break;
		case '|':
			strbuf_putc(&x->out, '|');
			x->i++;
			x->literal = false;
			x->can_repeat = false;
			break;
		case '^':
		case '$':
			xl_item(x, true);
			strbuf_putc(&x->out, c);
			x->i++;
			x->literal = false;
			break;
		case '.':
			xl_item(x, false);
			strbuf_putc(&x->out, '.');
			x->i++;
			x->literal = false;
			break;
		case '[':
			xl_item(x, false);
			x->literal = false;
			if (xl_class(x) < 0)
				return -1;
			xl_note_prod(x);
			break;
		case '*':
		case '+':
		case '?':
			x->last_repeat = repeat_before;
			if (xl_repeat(x, x->i + 1, 0, 0, false) < 0)
				return -1;
			break;
		case '{':
			if (!xl_parse_repeat(x, &min, &max, &end)) {
				xl_literal(x, '{');
				x->i++;
				break;
			}
			if (min < 0 || min > REGEX_MAX_REPEAT || max > REGEX_MAX_REPEAT ||
			    (max >= 0 && min > max)) {
				xl_error(x, "invalid repeat count", x->p + x->i, end - x->i);
				return -1;
			}
			x->last_repeat = repeat_before;
			if (xl_repeat(x, end, min, max, true) < 0)
				return -1;
			break;
		case '\\':
			if (x->i + 1 >= x->len) {
				xl_error(x, "trailing backslash at end of expression", "", 0);
				return -1;
			}
			switch (x->p[x->i + 1]) {
			case 'A':
			case 'z':
			case 'b':
			case 'B':
				xl_item(x, true);
				strbuf_append(&x->out, x->p + x->i, 2);
				x->i += 2;
				x->literal = false;
				continue;
			case 'Q': {
				const char *e;
				size_t lend, next, k;

				x->i += 2;
				e = memmem(x->p + x->i, x->len - x->i, "\\E", 2);
				lend = e != NULL ? (size_t)(e - x->p) : x->len;
				next = e != NULL ? lend + 2 : x->len;
				for (k = x->i; k < lend; k += w) {
					x->i = k;
					r = xl_rune(x, &w);
					xl_literal(x, r);
				}
				x->i = next;
				continue;
			}
			case 'd': case 'D': case 's': case 'S': case 'w': case 'W':
				xl_item(x, false);
				xl_perl_class(x, x->p[x->i + 1], false);
				x->i += 2;
				x->literal = false;
				continue;
			case 'p': case 'P':
				xl_item(x, false);
				x->literal = false;
				if (xl_unicode_class(x) < 0)
					return -1;
				continue;
			default:
				if ((r = xl_escape(x)) < 0)
					return -1;
				xl_literal(x, r);
				continue;
			}
		default:
			r = xl_rune(x, &w);
			x->i += w;
			xl_literal(x, r);
			break;
		}
		if (c != '(' && c != '|')
			xl_note_prod(x);
	}
	if (x->depth > 0) {
		xl_error(x, "missing closing )", x->p, x->len);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* compile                                                                   */

static void
regex_names_free(char **names, int ncap)
{
	int i;

	if (names == NULL)
		return;
	for (i = 0; i <= ncap; i++)
		mem_free(names[i]);
	mem_free(names);
}

struct regex *
regex_new(const char *pattern, size_t len, char *err, size_t errlen)
{
	struct xlate x;
	struct regex *re = NULL;
	struct strbuf full = STRBUF_INIT;
	PCRE2_SIZE eo;
	int ec;

	pthread_once(&regex_once, regex_init);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&x, 0, sizeof(x));
	x.p = pattern;
	x.len = len;
	x.err = err;
	x.errlen = errlen;
	if (!utf8_valid(pattern, len)) {
		size_t i = 0, w;
		long r;

		/* Go names the text from the first bad byte on. */
		for (; i < len; i += w) {
			w = utf8_decode_rune((const unsigned char *)pattern + i, len - i, &r);
			if (r < 0)
				break;
		}
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "error parsing regexp: invalid UTF-8: `%.*s`",
			    (int)(len - i), pattern + i);
		goto fail;
	}
	if (regex_cctx == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "error parsing regexp: out of memory");
		goto fail;
	}
	if (xl_run(&x) < 0)
		goto fail;

	re = mem_calloc(1, sizeof(*re));
	re->pattern = mem_strndup(pattern, len);
	re->ncap = x.ncap;
	re->names = mem_calloc((size_t)x.ncap + 1, sizeof(*re->names));
	if (x.names != NULL) {
		int i;

		for (i = 1; i <= x.ncap && (size_t)i < x.names_cap; i++) {
			re->names[i] = x.names[i];
			x.names[i] = NULL;
		}
	}
	re->kind = RK_GENERAL;
	/* U+FFFD also matches every invalid byte (Go's reading): not a literal. */
	if (x.literal && strlen(pattern) == len &&
	    (x.lit.len == 0 || memmem(x.lit.buf, x.lit.len, "\xef\xbf\xbd", 3) == NULL)) {
		re->kind = RK_LITERAL;
		re->litlen = x.lit.len;
		re->lit = mem_strndup(x.lit.buf != NULL ? x.lit.buf : "", x.lit.len);
	} else if (len == 2 && memcmp(pattern, ".*", 2) == 0) {
		re->kind = RK_ANY_LINE;
	} else if (len == 2 && memcmp(pattern, ".+", 2) == 0) {
		re->kind = RK_ANY_LINE_NONEMPTY;
	} else if ((len == 6 && memcmp(pattern, "(?s).*", 6) == 0) ||
	    (len == 7 && memcmp(pattern, "(?s:.*)", 7) == 0)) {
		re->kind = RK_ANY;
	}

	strbuf_puts(&full, "\\A(?:");
	strbuf_append(&full, x.out.buf != NULL ? x.out.buf : "", x.out.len);
	strbuf_puts(&full, ")\\z");
	re->code = pcre2_compile((PCRE2_SPTR)full.buf, full.len,
	    PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY |
	    PCRE2_ALT_CIRCUMFLEX | PCRE2_NEVER_BACKSLASH_C | PCRE2_NO_UTF_CHECK,
	    &ec, &eo, regex_cctx);
	if (re->code == NULL) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(ec, msg, sizeof(msg));
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "error parsing regexp: %s: `%s`", (char *)msg,
			    re->pattern);
		goto fail;
	}
	(void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
	strbuf_free(&full);
	strbuf_free(&x.out);
	strbuf_free(&x.lit);
	regex_names_free(x.names, (int)x.names_cap - 1);
	return re;
fail:
	strbuf_free(&full);
	strbuf_free(&x.out);
	strbuf_free(&x.lit);
	regex_names_free(x.names, (int)x.names_cap - 1);
	regex_free(re);
	return NULL;
}

void
regex_free(struct regex *re)
{
	if (re == NULL)
		return;
	pcre2_code_free(re->code);
	regex_names_free(re->names, re->ncap);
	mem_free(re->pattern);
	mem_free(re->lit);
	mem_free(re);
}

const char *
regex_pattern(const struct regex *re)
{
	return re->pattern;
}

const char *
regex_literal(const struct regex *re)
{
	return re->kind == RK_LITERAL ? re->lit : NULL;
}

int
regex_groups(const struct regex *re)
{
	return re->ncap;
}

const char *
regex_group_name(const struct regex *re, int i)
{
	if (i < 1 || i > re->ncap || re->names[i] == NULL)
		return "";
	return re->names[i];
}

/* ------------------------------------------------------------------------ */
/* match                                                                     */

/* regex_run matches s against re; on a match fills m (when not NULL).
 * Handles invalid UTF-8 by matching a sanitized copy. */
static bool
regex_run(const struct regex *re, const char *s, size_t len, struct regex_match *m)
{
	uint32_t pairs = m != NULL ? (uint32_t)re->ncap + 1 : 1;
	const char *subj = s;
	size_t slen = len, i, j;
	struct regex_tls *t;
	PCRE2_SIZE *ov;
	bool mapped = false;
	int rc, g;

	if (pairs > REGEX_MAX_GROUPS)
		pairs = REGEX_MAX_GROUPS;
	t = regex_thread(pairs);
	if (t == NULL)
		return false;
	if (!utf8_valid(s, len)) {
		/* Go reads each invalid byte as U+FFFD: match that text instead. */
		size_t need = 0, w;
		long r;

		for (i = 0; i < len; i += w) {
			w = utf8_decode_rune((const unsigned char *)s + i, len - i, &r);
			need += r < 0 ? 3 : w;
		}
		if (need + 1 > t->bufcap) {
			char *nb = mem_try_realloc(t->buf, need + 1);

			if (nb == NULL)
				return false;
			t->buf = nb;
			t->bufcap = need + 1;
		}
		if (m != NULL && need + 1 > t->mapcap) {
			long *nm = mem_try_realloc(t->map, (need + 1) * sizeof(long));

			if (nm == NULL)
				return false;
			t->map = nm;
			t->mapcap = need + 1;
		}
		for (i = 0, j = 0; i < len; i += w) {
			w = utf8_decode_rune((const unsigned char *)s + i, len - i, &r);
			if (m != NULL)
				t->map[j] = (long)i;
			if (r < 0) {
				memcpy(t->buf + j, "\xef\xbf\xbd", 3);
				j += 3;
			} else {
				memcpy(t->buf + j, s + i, w);
				j += w;
			}
		}
		if (m != NULL)
			t->map[j] = (long)len;
		subj = t->buf;
		slen = j;
		mapped = true;
	}
	rc = pcre2_match(re->code, (PCRE2_SPTR)subj, slen, 0, PCRE2_NO_UTF_CHECK, t->md, t->mctx);
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
		/* Deep but legitimate (a long subject through a capturing loop):
		 * the interpreter keeps its frames on the heap, under the same
		 * match limit and a heap limit. */
		rc = pcre2_match(re->code, (PCRE2_SPTR)subj, slen, 0,
		    PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, t->md, t->mctx);
	}
	if (rc < 0) {
		if (rc != PCRE2_ERROR_NOMATCH)
			__atomic_fetch_add(&regex_limit_count, 1, __ATOMIC_RELAXED);
		return false;
	}
	if (m == NULL)
		return true;
	ov = pcre2_get_ovector_pointer(t->md);
	m->ngroups = (int)pairs;
	for (g = 0; g < (int)pairs; g++) {
		if (ov[2 * g] == PCRE2_UNSET) {
			m->start[g] = -1;
			m->end[g] = -1;
		} else if (mapped) {
			m->start[g] = t->map[ov[2 * g]];
			m->end[g] = t->map[ov[2 * g + 1]];
		} else {
			m->start[g] = (long)ov[2 * g];
			m->end[g] = (long)ov[2 * g + 1];
		}
	}
	return true;
}

bool
regex_match(const struct regex *re, const char *s, size_t len)
{
	switch (re->kind) {
	case RK_LITERAL:
		return len == re->litlen && memcmp(s, re->lit, len) == 0;
	case RK_ANY_LINE:
		return memchr(s, '\n', len) == NULL;
	case RK_ANY_LINE_NONEMPTY:
		return len > 0 && memchr(s, '\n', len) == NULL;
	case RK_ANY:
		return true;
	default:
		return regex_run(re, s, len, NULL);
	}
}

bool
regex_match_groups(const struct regex *re, const char *s, size_t len, struct regex_match *m)
{
	return regex_run(re, s, len, m);
}

/* ------------------------------------------------------------------------ */
/* Expand                                                                    */

/* name_len returns how many bytes of s[0..len) form a Go template name:
 * letters, decimal digits and '_' (unicode.IsLetter / IsDigit). */
static size_t
name_len(const char *s, size_t len)
{
	size_t i = 0, w;
	struct regex_tls *t = NULL;
	long r;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80) {
			if (!is_name_char((char)c))
				break;
			i++;
			continue;
		}
		w = utf8_decode_rune((const unsigned char *)s + i, len - i, &r);
		if (r < 0 || regex_namechar == NULL)
			break;
		if (t == NULL && (t = regex_thread(1)) == NULL)
			break;
		if (pcre2_match(regex_namechar, (PCRE2_SPTR)s + i, w, 0, PCRE2_NO_UTF_CHECK,
		    t->md, NULL) < 0)
			break;
		i += w;
	}
	return i;
}

void
regex_expand(const struct regex *re, const char *tmpl, const char *s,
    const struct regex_match *m, struct strbuf *out)
{
	const char *p = tmpl, *d;
	size_t len = strlen(tmpl);
	const char *end = tmpl + len;

	pthread_once(&regex_once, regex_init);
	while (p < end) {
		const char *name, *q;
		size_t nlen, k;
		bool brace = false;
		long num;
		int g = -1;

		d = memchr(p, '$', (size_t)(end - p));
		if (d == NULL)
			break;
		strbuf_append(out, p, (size_t)(d - p));
		p = d + 1;
		if (p < end && *p == '$') {
			strbuf_putc(out, '$');
			p++;
			continue;
		}
		q = p;
		if (q < end && *q == '{') {
			brace = true;
			q++;
		}
		name = q;
		nlen = name_len(q, (size_t)(end - q));
		q += nlen;
		if (nlen == 0 || (brace && (q >= end || *q != '}'))) {
			/* malformed: the $ is plain text */
			strbuf_putc(out, '$');
			continue;
		}
		if (brace)
			q++;
		p = q;
		num = 0;
		for (k = 0; k < nlen; k++) {
			if (name[k] < '0' || name[k] > '9' || num >= 100000000) {
				num = -1;
				break;
			}
			num = num * 10 + (name[k] - '0');
		}
		if (name[0] == '0' && nlen > 1)
			num = -1;
		if (m == NULL)
			continue;
		if (num >= 0) {
			if (num < m->ngroups)
				g = (int)num;
		} else {
			int i;

			for (i = 1; i <= re->ncap && i < m->ngroups; i++) {
				if (re->names[i] != NULL && strlen(re->names[i]) == nlen &&
				    memcmp(re->names[i], name, nlen) == 0 && m->start[i] >= 0) {
					g = i;
					break;
				}
			}
		}
		if (g >= 0 && m->start[g] >= 0)
			strbuf_append(out, s + m->start[g], (size_t)(m->end[g] - m->start[g]));
	}
	strbuf_append(out, p, (size_t)(end - p));
}
