/* lib/scrape/target.c - target label building, URLs, identity and phase.
 *
 * Prometheus 2.42's PopulateLabels, Target.URL, Target.hash and
 * Target.offset, written against lib/labels and lib/relabel. Stateless;
 * any thread. Error texts are Prometheus' own, so a target that Prometheus
 * refuses is refused here with the same words.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "relabel/relabel.h"
#include "scrape/target.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define PARAM_PREFIX "__param_"
#define META_PREFIX "__meta_"

int
scrape_split_host_port(const char *s, size_t len, const char **host, size_t *hlen,
    const char **port, size_t *plen, const char **why)
{
	const char *end, *colon = NULL;
	size_t i, j = 0, k = 0;

	for (i = len; i > 0; i--) {
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	}
	if (colon == NULL) {
		*why = "missing port in address";
		return -1;
	}
	if (len > 0 && s[0] == '[') {
		end = memchr(s, ']', len);
		if (end == NULL) {
			*why = "missing ']' in address";
			return -1;
		}
		if ((size_t)(end - s) + 1 == len) {
			*why = "missing port in address";
			return -1;
		}
		if (end + 1 != colon) {
			*why = end[1] == ':' ? "too many colons in address" :
			    "missing port in address";
			return -1;
		}
		*host = s + 1;
		*hlen = (size_t)(end - s) - 1;
		j = 1;
		k = (size_t)(end - s) + 1;
	} else {
		*host = s;
		*hlen = (size_t)(colon - s);
		if (memchr(s, ':', *hlen) != NULL) {
			*why = "too many colons in address";
			return -1;
		}
	}
	if (memchr(s + j, '[', len - j) != NULL) {
		*why = "unexpected '[' in address";
		return -1;
	}
	if (memchr(s + k, ']', len - k) != NULL) {
		*why = "unexpected ']' in address";
		return -1;
	}
	*port = colon + 1;
	*plen = len - (size_t)(colon + 1 - s);
	return 0;
}

bool
scrape_is_valid_utf8(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t j = 1; j <= n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static bool
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

struct labels *
scrape_public_labels(const struct labels *ls)
{
	struct label *v = mem_alloc((ls->n ? ls->n : 1) * sizeof(*v));
	struct labels *out;
	size_t i, n = 0;

	for (i = 0; i < ls->n; i++)
		if (!has_prefix(ls->v[i].name, "__"))
			v[n++] = ls->v[i];
	out = labels_new(v, n);
	mem_free(v);
	return out;
}

void
scrape_tdef_clear(struct scrape_tdef *d)
{
	labels_free(d->discovered);
	labels_free(d->labels);
	labels_free(d->public);
	mem_free(d->url);
	memset(d, 0, sizeof(*d));
}

/* quote appends s Go-quoted (%q) to sb. */
static void
quote(struct strbuf *sb, const char *s)
{
	labels_quote(s, strlen(s), sb);
}

static int
fail(char *err, size_t errlen, struct strbuf *sb)
{
	snprintf(err, errlen, "%s", strbuf_cstr(sb));
	strbuf_free(sb);
	return -1;
}

int
scrape_tdef_build(const struct labels *base, const struct cfg_scrape *sc,
    struct scrape_tdef *out, char *err, size_t errlen)
{
	struct labels_builder *lb = labels_builder_new();
	struct labels *pre = NULL, *mid = NULL;
	struct strbuf sb = STRBUF_INIT;
	char ivs[32], tos[32];
	const char *addr, *scheme, *host, *port, *why, *s;
	size_t hlen, plen, i;
	int64_t iv, to;

	memset(out, 0, sizeof(*out));
	labels_builder_reset(lb, base);
	time_format_duration(sc->scrape_interval_ms, ivs, sizeof(ivs));
	time_format_duration(sc->scrape_timeout_ms, tos, sizeof(tos));
	{
		const struct label defs[] = {
			{ "job", sc->job_name },
			{ "__scrape_interval__", ivs },
			{ "__scrape_timeout__", tos },
			{ "__metrics_path__", sc->metrics_path },
			{ "__scheme__", sc->scheme },
		};
		for (i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
			s = labels_get(base, defs[i].name);
			if (s == NULL || *s == '\0')
				labels_builder_set(lb, defs[i].name, defs[i].value);
		}
	}
	for (i = 0; i < sc->n_params; i++) {
		if (sc->params[i].n_values == 0)
			continue;
		strbuf_reset(&sb);
		strbuf_printf(&sb, PARAM_PREFIX "%s", sc->params[i].name);
		labels_builder_set(lb, strbuf_cstr(&sb), sc->params[i].values[0]);
	}
	strbuf_reset(&sb);
	pre = labels_builder_labels(lb);
	if (!relabel_apply(sc->relabel.rules, sc->relabel.n, lb)) {
		out->discovered = pre;
		labels_builder_free(lb);
		strbuf_free(&sb);
		return 0;
	}
	addr = labels_builder_get(lb, "__address__");
	if (addr == NULL || *addr == '\0') {
		strbuf_puts(&sb, "no address");
		goto fail;
	}
	scheme = labels_builder_get(lb, "__scheme__");
	if (scheme == NULL)
		scheme = "";
	if (scrape_split_host_port(addr, strlen(addr), &host, &hlen, &port, &plen, &why) < 0) {
		char *probe = NULL;
		struct strbuf pb = STRBUF_INIT;

		strbuf_printf(&pb, "%s:1234", addr);
		probe = strbuf_detach(&pb, NULL);
		if (scrape_split_host_port(probe, strlen(probe), &host, &hlen, &port,
		    &plen, &why) == 0) {
			const char *dp;

			if (strcmp(scheme, "http") == 0 || *scheme == '\0') {
				dp = ":80";
			} else if (strcmp(scheme, "https") == 0) {
				dp = ":443";
			} else {
				mem_free(probe);
				strbuf_puts(&sb, "invalid scheme: ");
				quote(&sb, sc->scheme);
				goto fail;
			}
			strbuf_printf(&pb, "%s%s", addr, dp);
			labels_builder_set(lb, "__address__", strbuf_cstr(&pb));
			strbuf_free(&pb);
		}
		mem_free(probe);
		addr = labels_builder_get(lb, "__address__");
	}
	if (strchr(addr, '/') != NULL) {
		quote(&sb, addr);
		strbuf_puts(&sb, " is not a valid hostname");
		goto fail;
	}
	s = labels_builder_get(lb, "__scrape_interval__");
	if (s == NULL)
		s = "";
	if (time_parse_duration(s, strlen(s), &iv, err, errlen) < 0) {
		strbuf_printf(&sb, "error parsing scrape interval: %s", err);
		goto fail;
	}
	if (iv == 0) {
		strbuf_puts(&sb, "scrape interval cannot be 0");
		goto fail;
	}
	s = labels_builder_get(lb, "__scrape_timeout__");
	if (s == NULL)
		s = "";
	if (time_parse_duration(s, strlen(s), &to, err, errlen) < 0) {
		strbuf_printf(&sb, "error parsing scrape timeout: %s", err);
		goto fail;
	}
	if (to == 0) {
		strbuf_puts(&sb, "scrape timeout cannot be 0");
		goto fail;
	}
	if (to > iv) {
		strbuf_puts(&sb, "scrape timeout cannot be greater than scrape interval (");
		quote(&sb, labels_builder_get(lb, "__scrape_timeout__"));
		strbuf_puts(&sb, " > ");
		quote(&sb, labels_builder_get(lb, "__scrape_interval__"));
		strbuf_puts(&sb, ")");
		goto fail;
	}
	mid = labels_builder_labels(lb);
	for (i = 0; i < mid->n; i++)
		if (has_prefix(mid->v[i].name, META_PREFIX))
			labels_builder_del(lb, mid->v[i].name);
	if (labels_get(mid, "instance") == NULL)
		labels_builder_set(lb, "instance", labels_get(mid, "__address__"));
	labels_free(mid);
	mid = labels_builder_labels(lb);
	for (i = 0; i < mid->n; i++) {
		const char *v = mid->v[i].value;

		if (!scrape_is_valid_utf8(v, strlen(v))) {
			strbuf_puts(&sb, "invalid label value for ");
			quote(&sb, mid->v[i].name);
			strbuf_puts(&sb, ": ");
			quote(&sb, v);
			goto fail;
		}
	}
	out->discovered = pre;
	out->labels = mid;
	out->public = scrape_public_labels(mid);
	out->url = scrape_target_url(mid, sc->params, sc->n_params);
	out->hash = scrape_target_hash(mid, out->url);
	out->interval_ms = iv;
	out->timeout_ms = to;
	labels_builder_free(lb);
	strbuf_free(&sb);
	return 0;
fail:
	labels_free(pre);
	labels_free(mid);
	labels_builder_free(lb);
	return fail(err, errlen, &sb);
}

/* --- URL ----------------------------------------------------------------- */

enum esc_mode { ESC_HOST, ESC_PATH, ESC_QUERY };

/* should_escape is Go's net/url shouldEscape for the three modes used. */
static bool
should_escape(unsigned char c, enum esc_mode mode)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return false;
	if (mode == ESC_HOST) {
		switch (c) {
		case '!': case '$': case '&': case '\'': case '(': case ')':
		case '*': case '+': case ',': case ';': case '=': case ':':
		case '[': case ']': case '<': case '>': case '"':
			return false;
		}
	}
	switch (c) {
	case '-': case '_': case '.': case '~':
		return false;
	case '$': case '&': case '+': case ',': case '/': case ':': case ';':
	case '=': case '?': case '@':
		if (mode == ESC_PATH)
			return c == '?';
		return true;
	}
	return true;
}

static void
escape(struct strbuf *sb, const char *s, enum esc_mode mode)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (mode == ESC_HOST && c >= 0x80) {
			strbuf_putc(sb, (char)c);
		} else if (c == ' ' && mode == ESC_QUERY) {
			strbuf_putc(sb, '+');
		} else if (should_escape(c, mode)) {
			strbuf_putc(sb, '%');
			strbuf_putc(sb, hex[c >> 4]);
			strbuf_putc(sb, hex[c & 15]);
		} else {
			strbuf_putc(sb, (char)c);
		}
	}
}

struct qparam {
	const char *key;
	const char *const *values;	/* borrowed */
	size_t n;
	const char *first;		/* overrides values[0] when not NULL */
};

static int
qparam_cmp(const void *a, const void *b)
{
	return strcmp(((const struct qparam *)a)->key, ((const struct qparam *)b)->key);
}

char *
scrape_target_url(const struct labels *ls, const struct cfg_param *params, size_t nparams)
{
	struct strbuf sb = STRBUF_INIT;
	struct qparam *q = mem_calloc(nparams + ls->n + 1, sizeof(*q));
	const char *scheme = labels_get(ls, "__scheme__");
	const char *addr = labels_get(ls, "__address__");
	const char *path = labels_get(ls, "__metrics_path__");
	size_t nq = 0, i, j, plen = strlen(PARAM_PREFIX);
	bool first = true;

	for (i = 0; i < nparams; i++) {
		q[nq].key = params[i].name;
		q[nq].values = (const char *const *)params[i].values;
		q[nq].n = params[i].n_values;
		nq++;
	}
	for (i = 0; i < ls->n; i++) {
		const char *k;

		if (strncmp(ls->v[i].name, PARAM_PREFIX, plen) != 0)
			continue;
		k = ls->v[i].name + plen;
		for (j = 0; j < nparams; j++)
			if (strcmp(q[j].key, k) == 0)
				break;
		if (j < nparams && q[j].n > 0) {
			q[j].first = ls->v[i].value;
		} else if (j < nparams) {
			q[j].first = ls->v[i].value;
			q[j].n = 1;
		} else {
			q[nq].key = k;
			q[nq].first = ls->v[i].value;
			q[nq].n = 1;
			nq++;
		}
	}
	qsort(q, nq, sizeof(*q), qparam_cmp);

	if (scheme != NULL && *scheme != '\0') {
		strbuf_puts(&sb, scheme);
		strbuf_putc(&sb, ':');
	}
	if ((addr != NULL && *addr != '\0') || (path != NULL && *path != '\0'))
		strbuf_puts(&sb, "//");
	if (addr != NULL)
		escape(&sb, addr, ESC_HOST);
	if (path != NULL && *path != '\0') {
		if (*path != '/' && addr != NULL && *addr != '\0')
			strbuf_putc(&sb, '/');
		escape(&sb, path, ESC_PATH);
	}
	for (i = 0; i < nq; i++) {
		for (j = 0; j < q[i].n; j++) {
			strbuf_putc(&sb, first ? '?' : '&');
			first = false;
			escape(&sb, q[i].key, ESC_QUERY);
			strbuf_putc(&sb, '=');
			escape(&sb, j == 0 && q[i].first ? q[i].first : q[i].values[j], ESC_QUERY);
		}
	}
	mem_free(q);
	return strbuf_detach(&sb, NULL);
}

/* --- identity and phase ------------------------------------------------------ */

uint64_t
scrape_labels_xxh64(const struct labels *ls)
{
	XXH64_state_t st;
	static const char sep = (char)0xff;
	uint32_t i;

	XXH64_reset(&st, 0);
	for (i = 0; i < ls->n; i++) {
		XXH64_update(&st, ls->v[i].name, strlen(ls->v[i].name));
		XXH64_update(&st, &sep, 1);
		XXH64_update(&st, ls->v[i].value, strlen(ls->v[i].value));
		XXH64_update(&st, &sep, 1);
	}
	return XXH64_digest(&st);
}

static uint64_t
fnv1a(uint64_t h, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

uint64_t
scrape_target_hash(const struct labels *ls, const char *url)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%016" PRIu64, scrape_labels_xxh64(ls));
	uint64_t h = UINT64_C(14695981039346656037);

	h = fnv1a(h, num, (size_t)n);
	return fnv1a(h, url, strlen(url));
}

int64_t
scrape_target_phase(uint64_t hash, uint64_t seed, int64_t interval_ms)
{
	uint64_t iv = (uint64_t)interval_ms * UINT64_C(1000000);

	if (iv == 0)
		return 0;
	return (int64_t)((hash ^ seed) % iv);
}
