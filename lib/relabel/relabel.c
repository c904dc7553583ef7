/* lib/relabel/relabel.c - Prometheus relabel rules: validation, compilation, application.
 *
 * relabel_rule_new() applies Prometheus 2.42's defaults and checks
 * (model/relabel Config.UnmarshalYAML) in the same order, with the same
 * messages, then compiles the regex (fully anchored, lib/labels/regex) and
 * keeps private copies of every string. A rule is immutable afterwards and
 * may be shared by any number of threads.
 *
 * relabel_apply() runs a list of rules over a caller-owned labels_builder.
 * Each rule reads the state left by the previous one, like Prometheus'
 * Process(): source values are joined before anything is changed, and the
 * name-wise actions (labelmap, labeldrop, labelkeep) first collect what to
 * change, then change it, so they see the set as it was before the rule.
 * Scratch memory is per call; nothing here is global except the MD5 digest
 * handle and the UTF-8 case-mapping locale, both created once.
 */
#include "config.h"

#include "relabel/relabel.h"

#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include <openssl/evp.h>

#include "labels/regex.h"
#include "util/mem.h"
#include "util/strbuf.h"

#define RELABEL_DEFAULT_SEPARATOR	";"
#define RELABEL_DEFAULT_REGEX		"(.*)"
#define RELABEL_DEFAULT_REPLACEMENT	"$1"

struct relabel_rule {
	enum relabel_action action;
	char **source_labels;
	size_t n_source_labels;
	char *separator;
	size_t seplen;
	struct regex *re;
	uint64_t modulus;
	char *target_label;
	char *replacement;
	bool target_is_template;	/* target_label contains '$' */
	bool replacement_is_template;	/* replacement contains '$' */
};

static const char *const relabel_action_names[] = {
	[RELABEL_REPLACE] = "replace",
	[RELABEL_KEEP] = "keep",
	[RELABEL_DROP] = "drop",
	[RELABEL_KEEPEQUAL] = "keepequal",
	[RELABEL_DROPEQUAL] = "dropequal",
	[RELABEL_HASHMOD] = "hashmod",
	[RELABEL_LABELMAP] = "labelmap",
	[RELABEL_LABELDROP] = "labeldrop",
	[RELABEL_LABELKEEP] = "labelkeep",
	[RELABEL_LOWERCASE] = "lowercase",
	[RELABEL_UPPERCASE] = "uppercase",
};
#define RELABEL_NACTIONS (sizeof(relabel_action_names) / sizeof(relabel_action_names[0]))

const char *
relabel_action_name(enum relabel_action a)
{
	if ((size_t)a >= RELABEL_NACTIONS)
		return "unknown";
	return relabel_action_names[a];
}

enum relabel_action
relabel_rule_action(const struct relabel_rule *r)
{
	return r->action;
}

/* ------------------------------------------------------------------------ */
/* validation                                                                */

static bool
relabel_is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/* relabel_is_valid_target tells whether s matches Prometheus' relabelTarget,
 * ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ with ASCII \w. Since
 * [a-zA-Z_] is part of \w, that language is: a first token that is a letter,
 * '_' or a $-reference, followed by any mix of \w bytes and $-references,
 * where a $-reference is "$" then \w+ or "{" \w+ "}". */
static bool
relabel_is_valid_target(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	bool first = true;

	if (*p == '\0')
		return false;
	while (*p != '\0') {
		if (*p == '$') {
			p++;
			if (*p == '{') {
				p++;
				if (!relabel_is_word(*p))
					return false;
				while (relabel_is_word(*p))
					p++;
				if (*p != '}')
					return false;
				p++;
			} else {
				if (!relabel_is_word(*p))
					return false;
				while (relabel_is_word(*p))
					p++;
			}
		} else if (relabel_is_word(*p)) {
			if (first && *p >= '0' && *p <= '9')
				return false;
			p++;
		} else {
			return false;
		}
		first = false;
	}
	return true;
}

/* relabel_errq writes "<q quoted as Go does> <tail> <action> action" into err. */
static void
relabel_errq(char *err, size_t errlen, const char *q, const char *tail,
    const char *action)
{
	struct strbuf sb = STRBUF_INIT;

	labels_quote(q, strlen(q), &sb);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s %s %s action", strbuf_cstr(&sb), tail, action);
	strbuf_free(&sb);
}

static void relabel_case(const char *s, size_t len, bool upper, struct strbuf *out);

/* relabel_parse_action maps an action name to its enum the way Prometheus'
 * Action.UnmarshalYAML does: after Go's strings.ToLower, so "Replace" and
 * even "\u212Aeep" (KELVIN SIGN lowers to 'k') are accepted. The error
 * quotes the name as written. */
static int
relabel_parse_action(const char *s, enum relabel_action *out, char *err, size_t errlen)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i, len = strlen(s);

	relabel_case(s, len, false, &sb);
	for (i = 0; i < RELABEL_NACTIONS; i++) {
		if (sb.len == strlen(relabel_action_names[i]) &&
		    memcmp(strbuf_cstr(&sb), relabel_action_names[i], sb.len) == 0) {
			*out = (enum relabel_action)i;
			strbuf_free(&sb);
			return 0;
		}
	}
	strbuf_reset(&sb);
	labels_quote(s, len, &sb);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "unknown relabel action %s", strbuf_cstr(&sb));
	strbuf_free(&sb);
	return -1;
}

/* relabel_validate runs Prometheus' checks in their order. */
static int
relabel_validate(enum relabel_action a, const struct relabel_spec *spec,
    const char *separator, const char *target, const char *replacement,
    char *err, size_t errlen)
{
	const char *an = relabel_action_name(a);
	bool is_equal = a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL;
	bool is_case = a == RELABEL_LOWERCASE || a == RELABEL_UPPERCASE;
	uint64_t modulus = spec->has_modulus ? spec->modulus : 0;

	if (a == RELABEL_HASHMOD && modulus == 0) {
		snprintf(err, errlen, "relabel configuration for hashmod requires non-zero modulus");
		return -1;
	}
	if ((a == RELABEL_REPLACE || a == RELABEL_HASHMOD || is_case || is_equal) &&
	    target[0] == '\0') {
		snprintf(err, errlen,
		    "relabel configuration for %s action requires 'target_label' value", an);
		return -1;
	}
	if ((a == RELABEL_REPLACE || is_case || is_equal) && !relabel_is_valid_target(target)) {
		relabel_errq(err, errlen, target, "is invalid 'target_label' for", an);
		return -1;
	}
	if ((is_case || is_equal) && strcmp(replacement, RELABEL_DEFAULT_REPLACEMENT) != 0) {
		snprintf(err, errlen, "'replacement' can not be set for %s action", an);
		return -1;
	}
	if (a == RELABEL_LABELMAP && !relabel_is_valid_target(replacement)) {
		relabel_errq(err, errlen, replacement, "is invalid 'replacement' for", an);
		return -1;
	}
	if (a == RELABEL_HASHMOD && !labels_is_valid_name(target, strlen(target))) {
		relabel_errq(err, errlen, target, "is invalid 'target_label' for", an);
		return -1;
	}
	/* Prometheus compares the regex by pointer with the default one, so any
	 * regex written in the file counts as set, even "(.*)". */
	if (is_equal && (spec->regex != NULL || modulus != 0 ||
	    strcmp(separator, RELABEL_DEFAULT_SEPARATOR) != 0 ||
	    strcmp(replacement, RELABEL_DEFAULT_REPLACEMENT) != 0)) {
		snprintf(err, errlen, "%s action requires only 'source_labels' and `target_label`, "
		    "and no other fields", an);
		return -1;
	}
	if ((a == RELABEL_LABELDROP || a == RELABEL_LABELKEEP) &&
	    (spec->source_labels != NULL || spec->n_source_labels > 0 ||
	    target[0] != '\0' || modulus != 0 ||
	    strcmp(separator, RELABEL_DEFAULT_SEPARATOR) != 0 ||
	    strcmp(replacement, RELABEL_DEFAULT_REPLACEMENT) != 0)) {
		snprintf(err, errlen, "%s action requires only 'regex', and no other fields", an);
		return -1;
	}
	return 0;
}

/* relabel_compile compiles pattern the way Prometheus does: as the Go regexp
 * "^(?:" pattern ")$". The pattern alone is tried first (lib/labels anchors
 * it and recognises simple forms); only when it does not parse on its own is
 * the wrapped text compiled, which both reproduces Go's error text (it names
 * the wrapped pattern) and accepts what the wrapping makes valid, e.g.
 * "a)(?:b". */
static struct regex *
relabel_compile(const char *pattern, char *err, size_t errlen)
{
	struct strbuf sb = STRBUF_INIT;
	struct regex *re;
	char ignored[256];

	re = regex_new(pattern, strlen(pattern), ignored, sizeof(ignored));
	if (re != NULL)
		return re;
	strbuf_puts(&sb, "^(?:");
	strbuf_puts(&sb, pattern);
	strbuf_puts(&sb, ")$");
	re = regex_new(sb.buf, sb.len, err, errlen);
	strbuf_free(&sb);
	return re;
}

struct relabel_rule *
relabel_rule_new(const struct relabel_spec *spec, char *err, size_t errlen)
{
	char ebuf[512];
	struct relabel_rule *r;
	enum relabel_action a = RELABEL_REPLACE;
	const char *separator, *target, *replacement, *regex;
	size_t i;

	if (err == NULL || errlen == 0) {
		err = ebuf;
		errlen = sizeof(ebuf);
	}
	err[0] = '\0';
	if (spec->action != NULL) {
		if (spec->action[0] == '\0') {
			snprintf(err, errlen, "relabel action cannot be empty");
			return NULL;
		}
		if (relabel_parse_action(spec->action, &a, err, errlen) < 0)
			return NULL;
	}
	separator = spec->separator != NULL ? spec->separator : RELABEL_DEFAULT_SEPARATOR;
	target = spec->target_label != NULL ? spec->target_label : "";
	replacement = spec->replacement != NULL ? spec->replacement : RELABEL_DEFAULT_REPLACEMENT;
	regex = spec->regex != NULL ? spec->regex : RELABEL_DEFAULT_REGEX;

	r = mem_calloc(1, sizeof(*r));
	r->action = a;
	/* The regex is parsed while the YAML is decoded, before the checks. */
	if ((r->re = relabel_compile(regex, err, errlen)) == NULL) {
		if (err[0] == '\0')
			snprintf(err, errlen, "error parsing regexp");
		goto fail;
	}
	if (relabel_validate(a, spec, separator, target, replacement, err, errlen) < 0)
		goto fail;
	r->n_source_labels = spec->n_source_labels;
	r->source_labels = mem_calloc(spec->n_source_labels ? spec->n_source_labels : 1,
	    sizeof(char *));
	for (i = 0; i < spec->n_source_labels; i++)
		r->source_labels[i] = mem_strdup(spec->source_labels[i]);
	r->separator = mem_strdup(separator);
	r->seplen = strlen(separator);
	r->modulus = spec->has_modulus ? spec->modulus : 0;
	r->target_label = mem_strdup(target);
	r->replacement = mem_strdup(replacement);
	r->target_is_template = strchr(target, '$') != NULL;
	r->replacement_is_template = strchr(replacement, '$') != NULL;
	return r;
fail:
	relabel_rule_free(r);
	return NULL;
}

void
relabel_rule_free(struct relabel_rule *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->source_labels != NULL) {
		for (i = 0; i < r->n_source_labels; i++)
			mem_free(r->source_labels[i]);
		mem_free(r->source_labels);
	}
	regex_free(r->re);
	mem_free(r->separator);
	mem_free(r->target_label);
	mem_free(r->replacement);
	mem_free(r);
}

/* ------------------------------------------------------------------------ */
/* hashmod                                                                   */

static pthread_once_t relabel_once = PTHREAD_ONCE_INIT;
static EVP_MD *relabel_md5;
static locale_t relabel_utf8_locale;

static void
relabel_init(void)
{
	/* Fetched once: the implicit fetch behind EVP_md5() costs a lookup on
	 * every digest. Freed never (process lifetime). */
	relabel_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	relabel_utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

uint64_t
relabel_hashmod(const char *s, size_t len, uint64_t mod)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t h = 0;
	int i;

	pthread_once(&relabel_once, relabel_init);
	if (mod == 0)
		return 0;
	if (relabel_md5 == NULL ||
	    EVP_Digest(s, len, md, &mdlen, relabel_md5, NULL) != 1 || mdlen != 16) {
		/* Only a broken libcrypto gets here: MD5 is always available
		 * in the default provider. */
		fprintf(stderr, "relabel: MD5 digest unavailable\n");
		abort();
	}
	/* Prometheus sums all 16 bytes shifted by (15-i)*8; Go drops shifts
	 * of 64 and more, leaving bytes 8..15 as a big-endian uint64. */
	for (i = 8; i < 16; i++)
		h = (h << 8) | md[i];
	return h % mod;
}

/* ------------------------------------------------------------------------ */
/* case mapping (Go's strings.ToLower / ToUpper)                             */

/* relabel_utf8_decode decodes one rune at p[0..n) with Go's rules (no
 * overlongs, surrogates or values past U+10FFFF). Returns its width, and -1
 * in *r for an invalid byte (width 1). */
static size_t
relabel_utf8_decode(const unsigned char *p, size_t n, long *r)
{
	unsigned char b0 = p[0], lo = 0x80, hi = 0xbf;
	size_t w, i;
	long v;

	*r = -1;
	if (b0 < 0x80) {
		*r = b0;
		return 1;
	}
	if (b0 >= 0xc2 && b0 <= 0xdf) {
		w = 2;
		v = b0 & 0x1f;
	} else if (b0 >= 0xe0 && b0 <= 0xef) {
		w = 3;
		v = b0 & 0x0f;
		if (b0 == 0xe0)
			lo = 0xa0;
		else if (b0 == 0xed)
			hi = 0x9f;
	} else if (b0 >= 0xf0 && b0 <= 0xf4) {
		w = 4;
		v = b0 & 0x07;
		if (b0 == 0xf0)
			lo = 0x90;
		else if (b0 == 0xf4)
			hi = 0x8f;
	} else {
		return 1;
	}
	if (n < w || p[1] < lo || p[1] > hi)
		return 1;
	for (i = 1; i < w; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 1;
		v = (v << 6) | (p[i] & 0x3f);
	}
	*r = v;
	return w;
}

static void
relabel_utf8_put(struct strbuf *out, long r)
{
	char b[4];

	if (r < 0x80) {
		strbuf_putc(out, (char)r);
	} else if (r < 0x800) {
		b[0] = (char)(0xc0 | (r >> 6));
		b[1] = (char)(0x80 | (r & 0x3f));
		strbuf_append(out, b, 2);
	} else if (r < 0x10000) {
		b[0] = (char)(0xe0 | (r >> 12));
		b[1] = (char)(0x80 | ((r >> 6) & 0x3f));
		b[2] = (char)(0x80 | (r & 0x3f));
		strbuf_append(out, b, 3);
	} else {
		b[0] = (char)(0xf0 | (r >> 18));
		b[1] = (char)(0x80 | ((r >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((r >> 6) & 0x3f));
		b[3] = (char)(0x80 | (r & 0x3f));
		strbuf_append(out, b, 4);
	}
}

/* relabel_case appends s[0..len) mapped to lower (or upper) case the way Go
 * does: ASCII-only input byte by byte; otherwise rune by rune with the
 * Unicode simple case mapping (glibc's C.UTF-8 tables), invalid bytes
 * becoming U+FFFD. */
static void
relabel_case(const char *s, size_t len, bool upper, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, w;
	bool ascii = true;
	long r;

	for (i = 0; i < len; i++)
		if (p[i] >= 0x80)
			ascii = false;
	if (ascii) {
		strbuf_grow(out, len);
		for (i = 0; i < len; i++) {
			unsigned char c = p[i];

			if (upper && c >= 'a' && c <= 'z')
				c = (unsigned char)(c - 'a' + 'A');
			else if (!upper && c >= 'A' && c <= 'Z')
				c = (unsigned char)(c - 'A' + 'a');
			strbuf_putc(out, (char)c);
		}
		return;
	}
	pthread_once(&relabel_once, relabel_init);
	for (i = 0; i < len; i += w) {
		w = relabel_utf8_decode(p + i, len - i, &r);
		if (r < 0) {
			r = 0xfffd;
		} else if (r < 0x80) {
			if (upper && r >= 'a' && r <= 'z')
				r -= 'a' - 'A';
			else if (!upper && r >= 'A' && r <= 'Z')
				r += 'a' - 'A';
		} else if (relabel_utf8_locale != (locale_t)0) {
			wint_t m = upper ? towupper_l((wint_t)r, relabel_utf8_locale) :
			    towlower_l((wint_t)r, relabel_utf8_locale);

			if (m <= 0x10ffff && !(m >= 0xd800 && m <= 0xdfff))
				r = (long)m;
		}
		relabel_utf8_put(out, r);
	}
}

/* ------------------------------------------------------------------------ */
/* application                                                               */

struct relabel_scratch {
	struct strbuf val;	/* joined source values */
	struct strbuf a;	/* expanded target / case-mapped value / pending names */
	struct strbuf b;	/* expanded replacement */
	struct regex_match m;
};

static void
relabel_join(const struct relabel_rule *r, const struct labels_builder *lb,
    struct strbuf *val)
{
	size_t i;

	strbuf_reset(val);
	strbuf_grow(val, 1);	/* val.buf is never NULL below */
	for (i = 0; i < r->n_source_labels; i++) {
		const char *v = labels_builder_get(lb, r->source_labels[i]);

		if (i > 0)
			strbuf_append(val, r->separator, r->seplen);
		if (v != NULL)
			strbuf_puts(val, v);
	}
}

static void
relabel_replace(const struct relabel_rule *r, struct labels_builder *lb,
    struct relabel_scratch *sc)
{
	const char *target = r->target_label;
	size_t tlen;

	if (!regex_match_groups(r->re, sc->val.buf, sc->val.len, &sc->m))
		return;
	if (r->target_is_template) {
		strbuf_reset(&sc->a);
		regex_expand(r->re, r->target_label, sc->val.buf, &sc->m, &sc->a);
		target = strbuf_cstr(&sc->a);
		tlen = sc->a.len;
	} else {
		tlen = strlen(target);
	}
	/* Prometheus deletes the unexpanded target_label in both cases below
	 * (for a template that names no existing label, so nothing happens). */
	if (!labels_is_valid_name(target, tlen)) {
		labels_builder_del(lb, r->target_label);
		return;
	}
	strbuf_reset(&sc->b);
	if (r->replacement_is_template)
		regex_expand(r->re, r->replacement, sc->val.buf, &sc->m, &sc->b);
	else
		strbuf_puts(&sc->b, r->replacement);
	if (sc->b.len == 0) {
		labels_builder_del(lb, r->target_label);
		return;
	}
	labels_builder_setn(lb, target, tlen, sc->b.buf, sc->b.len);
}

/* relabel_labelmap copies every label whose name matches to the expanded
 * replacement name. Pairs are collected first as "name\0value\0" in sc->a. */
static void
relabel_labelmap(const struct relabel_rule *r, struct labels_builder *lb,
    struct relabel_scratch *sc)
{
	size_t i, n = labels_builder_count(lb), off, count = 0;

	strbuf_reset(&sc->a);
	for (i = 0; i < n; i++) {
		struct label l = labels_builder_at(lb, i);
		size_t nlen = strlen(l.name);

		if (!regex_match_groups(r->re, l.name, nlen, &sc->m))
			continue;
		if (r->replacement_is_template)
			regex_expand(r->re, r->replacement, l.name, &sc->m, &sc->a);
		else
			strbuf_puts(&sc->a, r->replacement);
		strbuf_putc(&sc->a, '\0');
		strbuf_puts(&sc->a, l.value);
		strbuf_putc(&sc->a, '\0');
		count++;
	}
	for (i = 0, off = 0; i < count; i++) {
		const char *name = sc->a.buf + off;
		const char *value = name + strlen(name) + 1;

		off = (size_t)(value - sc->a.buf) + strlen(value) + 1;
		labels_builder_set(lb, name, value);
	}
}

/* relabel_labelfilter deletes the labels whose name matches (labeldrop) or
 * does not match (labelkeep). */
static void
relabel_labelfilter(const struct relabel_rule *r, struct labels_builder *lb,
    struct relabel_scratch *sc, bool drop_matching)
{
	size_t i, n = labels_builder_count(lb), off, count = 0;

	strbuf_reset(&sc->a);
	for (i = 0; i < n; i++) {
		struct label l = labels_builder_at(lb, i);

		if (regex_match(r->re, l.name, strlen(l.name)) != drop_matching)
			continue;
		strbuf_puts(&sc->a, l.name);
		strbuf_putc(&sc->a, '\0');
		count++;
	}
	for (i = 0, off = 0; i < count; i++) {
		const char *name = sc->a.buf + off;

		off += strlen(name) + 1;
		labels_builder_del(lb, name);
	}
}

/* relabel_one applies r; returns false when the set is dropped. */
static bool
relabel_one(const struct relabel_rule *r, struct labels_builder *lb,
    struct relabel_scratch *sc)
{
	const char *tv;
	char num[24];

	relabel_join(r, lb, &sc->val);
	switch (r->action) {
	case RELABEL_DROP:
		return !regex_match(r->re, sc->val.buf, sc->val.len);
	case RELABEL_KEEP:
		return regex_match(r->re, sc->val.buf, sc->val.len);
	case RELABEL_DROPEQUAL:
		tv = labels_builder_get(lb, r->target_label);
		return strcmp(tv != NULL ? tv : "", sc->val.buf) != 0;
	case RELABEL_KEEPEQUAL:
		tv = labels_builder_get(lb, r->target_label);
		return strcmp(tv != NULL ? tv : "", sc->val.buf) == 0;
	case RELABEL_REPLACE:
		relabel_replace(r, lb, sc);
		return true;
	case RELABEL_LOWERCASE:
	case RELABEL_UPPERCASE:
		strbuf_reset(&sc->a);
		relabel_case(sc->val.buf, sc->val.len, r->action == RELABEL_UPPERCASE, &sc->a);
		labels_builder_setn(lb, r->target_label, strlen(r->target_label),
		    strbuf_cstr(&sc->a), sc->a.len);
		return true;
	case RELABEL_HASHMOD:
		snprintf(num, sizeof(num), "%" PRIu64,
		    relabel_hashmod(sc->val.buf, sc->val.len, r->modulus));
		labels_builder_set(lb, r->target_label, num);
		return true;
	case RELABEL_LABELMAP:
		relabel_labelmap(r, lb, sc);
		return true;
	case RELABEL_LABELDROP:
		relabel_labelfilter(r, lb, sc, true);
		return true;
	case RELABEL_LABELKEEP:
		relabel_labelfilter(r, lb, sc, false);
		return true;
	}
	return true;
}

bool
relabel_apply(struct relabel_rule *const *rules, size_t n, struct labels_builder *lb)
{
	struct relabel_scratch *sc;
	bool keep = true;
	size_t i;

	if (n == 0)
		return true;
	sc = mem_alloc(sizeof(*sc));
	strbuf_init(&sc->val);
	strbuf_init(&sc->a);
	strbuf_init(&sc->b);
	for (i = 0; i < n && keep; i++)
		keep = relabel_one(rules[i], lb, sc);
	strbuf_free(&sc->val);
	strbuf_free(&sc->a);
	strbuf_free(&sc->b);
	mem_free(sc);
	return keep;
}

struct labels *
relabel_process(struct relabel_rule *const *rules, size_t n, const struct labels *in)
{
	struct labels_builder *lb = labels_builder_new();
	struct labels *out = NULL;

	labels_builder_reset(lb, in);
	if (relabel_apply(rules, n, lb))
		out = labels_builder_labels(lb);
	labels_builder_free(lb);
	return out;
}
