/* lib/config/config.c - the Prometheus 2.42 configuration file: decode and validate.
 *
 * Decoding walks the ydoc tree (lib/config/yaml.h) with one function per
 * Prometheus type. Each starts from Prometheus' defaults, reads the fields
 * it knows (an unknown or repeated field is an error, as yaml.v2's strict
 * mode has it), then runs the same validation as the Go UnmarshalYAML /
 * Validate methods, with their messages. Every message is prefixed with
 * FILE:line:col of the node it is about. The first error stops the load and
 * everything built so far is released through cfg_free(), which accepts a
 * partly filled struct cfg.
 *
 * Loading runs on whichever thread calls it and touches no global state;
 * the resulting struct cfg is immutable. Marshalling lives in
 * lib/config/marshal.c; file_sd target files in lib/config/sd_file.c.
 */
#include "config.h"

#include "config/config.h"
#include "config/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"
#include "util/time.h"
#include "util/utf8.h"

static const char *const cfg_unsupported_sd[] = {
	"azure_sd_configs", "consul_sd_configs", "digitalocean_sd_configs",
	"dns_sd_configs", "docker_sd_configs", "dockerswarm_sd_configs",
	"ec2_sd_configs", "eureka_sd_configs", "gce_sd_configs",
	"hetzner_sd_configs", "http_sd_configs", "ionos_sd_configs",
	"kubernetes_sd_configs", "kuma_sd_configs", "lightsail_sd_configs",
	"linode_sd_configs", "marathon_sd_configs", "nerve_sd_configs",
	"nomad_sd_configs", "openstack_sd_configs", "ovhcloud_sd_configs",
	"puppetdb_sd_configs", "scaleway_sd_configs", "serverset_sd_configs",
	"triton_sd_configs", "uyuni_sd_configs", "vultr_sd_configs",
};

/*
 * cfg_is_unsupported_sd: see config.h.
 */
bool
cfg_is_unsupported_sd(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(cfg_unsupported_sd) / sizeof(cfg_unsupported_sd[0]); i++)
		if (strcmp(key, cfg_unsupported_sd[i]) == 0)
			return true;
	return false;
}

/* ---- messages ---------------------------------------------------------- */

int
cdec_fail(struct cdec *d, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (d->errlen == 0)
		return -1;
	if (n != NULL)
		k = snprintf(d->err, d->errlen, "%s:%u:%u: ", d->file, n->line, n->col);
	else
		k = snprintf(d->err, d->errlen, "%s: ", d->file);
	if (k < 0 || (size_t)k >= d->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(d->err + k, d->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

/* utf8_len returns the length of the valid UTF-8 sequence at s (at most
 * n bytes, n > 0), or 0 when it is invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	long r;
	size_t k = utf8_decode_rune(s, n, &r);

	return r < 0 ? 0 : k;
}

bool
cfg_utf8_valid(const char *s, size_t len)
{
	size_t i = 0, k;

	while (i < len) {
		if ((k = utf8_len((const unsigned char *)s + i, len - i)) == 0)
			return false;
		i += k;
	}
	return true;
}

void
cfg_goquote(struct strbuf *sb, const char *s, size_t len)
{
	size_t i = 0, k;

	strbuf_putc(sb, '"');
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		k = utf8_len((const unsigned char *)s + i, len - i);
		if (k == 0) {
			strbuf_printf(sb, "\\x%02x", c);
			i++;
			continue;
		}
		if (k > 1) {
			strbuf_append(sb, s + i, k);
			i += k;
			continue;
		}
		switch (c) {
		case '"': strbuf_puts(sb, "\\\""); break;
		case '\\': strbuf_puts(sb, "\\\\"); break;
		case '\a': strbuf_puts(sb, "\\a"); break;
		case '\b': strbuf_puts(sb, "\\b"); break;
		case '\f': strbuf_puts(sb, "\\f"); break;
		case '\n': strbuf_puts(sb, "\\n"); break;
		case '\r': strbuf_puts(sb, "\\r"); break;
		case '\t': strbuf_puts(sb, "\\t"); break;
		case '\v': strbuf_puts(sb, "\\v"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				strbuf_printf(sb, "\\x%02x", c);
			else
				strbuf_putc(sb, (char)c);
		}
		i++;
	}
	strbuf_putc(sb, '"');
}

/* cdec_failq fails with fmt where the one %s is s Go-quoted (%q). */
static int
cdec_failq(struct cdec *d, const struct ynode *n, const char *fmt, const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	cfg_goquote(&sb, s, strlen(s));
	cdec_fail(d, n, fmt, strbuf_cstr(&sb));
	strbuf_free(&sb);
	return -1;
}

static int
cdec_cannot(struct cdec *d, const struct ynode *n, const char *into)
{
	if (n->kind == YNODE_SCALAR) {
		if (n->len > 10)
			return cdec_fail(d, n, "cannot unmarshal %s `%.7s...` into %s",
			    ydoc_tag(n), n->s, into);
		return cdec_fail(d, n, "cannot unmarshal %s `%s` into %s",
		    ydoc_tag(n), n->s, into);
	}
	return cdec_fail(d, n, "cannot unmarshal %s into %s", ydoc_tag(n), into);
}

/* ---- scalars ----------------------------------------------------------- */

int
cdec_str(struct cdec *d, const struct ynode *n, char **out)
{
	if (n->kind != YNODE_SCALAR)
		return cdec_cannot(d, n, "string");
	if (memchr(n->s, '\0', n->len) != NULL)
		return cdec_fail(d, n, "string contains a NUL byte");
	if (!cfg_utf8_valid(n->s, n->len))
		return cdec_fail(d, n, "string is not valid UTF-8");
	mem_free(*out);
	*out = mem_strdup(n->null ? "" : n->s);
	return 0;
}

int
cdec_bool(struct cdec *d, const struct ynode *n, bool *out)
{
	if (n->kind == YNODE_SCALAR && n->null) {
		*out = false;
		return 0;
	}
	if (n->kind != YNODE_SCALAR || !n->plain || ydoc_parse_bool(n->s, out) < 0)
		return cdec_cannot(d, n, "bool");
	return 0;
}

static int
cdec_i64(struct cdec *d, const struct ynode *n, int64_t *out, const char *into)
{
	if (n->kind == YNODE_SCALAR && n->null) {
		*out = 0;
		return 0;
	}
	if (n->kind != YNODE_SCALAR || !n->plain || ydoc_parse_int(n->s, out) < 0)
		return cdec_cannot(d, n, into);
	return 0;
}

int
cdec_u64(struct cdec *d, const struct ynode *n, uint64_t *out)
{
	int64_t v;

	if (cdec_i64(d, n, &v, "uint") < 0)
		return -1;
	if (v < 0)
		return cdec_cannot(d, n, "uint");
	*out = (uint64_t)v;
	return 0;
}

static int
cdec_int(struct cdec *d, const struct ynode *n, int64_t *out)
{
	return cdec_i64(d, n, out, "int");
}

static int
cdec_float(struct cdec *d, const struct ynode *n, double *out)
{
	char *end;

	if (n->kind == YNODE_SCALAR && n->null) {
		*out = 0;
		return 0;
	}
	if (n->kind != YNODE_SCALAR || !n->plain)
		return cdec_cannot(d, n, "float64");
	errno = 0;
	*out = strtod(n->s, &end);
	if (end == n->s || *end != '\0' || errno != 0)
		return cdec_cannot(d, n, "float64");
	return 0;
}

int
cdec_duration(struct cdec *d, const struct ynode *n, int64_t *out)
{
	char e[128];

	if (n->kind == YNODE_SCALAR && n->null) {
		*out = 0;
		return 0;
	}
	if (n->kind != YNODE_SCALAR)
		return cdec_cannot(d, n, "string");
	if (time_parse_duration(n->s, n->len, out, e, sizeof(e)) < 0)
		return cdec_failq(d, n, "not a valid duration string: %s", n->s);
	return 0;
}

/* cdec_bytes reads a units.Base2Bytes ("10MB", "512KiB", "0"). */
static int
cdec_bytes(struct cdec *d, const struct ynode *n, int64_t *out)
{
	static const struct { const char *u; int shift; } units[] = {
		{ "B", 0 }, { "KB", 10 }, { "KiB", 10 }, { "MB", 20 }, { "MiB", 20 },
		{ "GB", 30 }, { "GiB", 30 }, { "TB", 40 }, { "TiB", 40 },
		{ "PB", 50 }, { "PiB", 50 }, { "EB", 60 }, { "EiB", 60 },
	};
	const char *s, *orig;
	double total = 0;

	if (n->kind == YNODE_SCALAR && n->null) {
		*out = 0;
		return 0;
	}
	if (n->kind != YNODE_SCALAR)
		return cdec_cannot(d, n, "units.Base2Bytes");
	orig = s = n->s;
	if (*s == '+' || *s == '-') {
		if (*s == '-')
			return cdec_fail(d, n, "units: invalid %s", orig);
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (*s == '\0')
		return cdec_fail(d, n, "units: invalid %s", orig);
	while (*s) {
		double g = 0, scale = 1;
		bool pre = false, post = false;
		const char *u;
		size_t ulen, i;
		bool found = false;

		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return cdec_fail(d, n, "units: invalid %s", orig);
		while (*s >= '0' && *s <= '9') {
			g = g * 10 + (*s++ - '0');
			pre = true;
		}
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				scale /= 10;
				g += (*s++ - '0') * scale;
				post = true;
			}
		}
		if (!pre && !post)
			return cdec_fail(d, n, "units: invalid %s", orig);
		u = s;
		while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
			s++;
		ulen = (size_t)(s - u);
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strlen(units[i].u) == ulen && memcmp(units[i].u, u, ulen) == 0) {
				total += g * (double)(1ULL << units[i].shift);
				found = true;
				break;
			}
		}
		if (!found)
			return cdec_fail(d, n, "units: unknown unit %.*s in %s",
			    (int)ulen, u, orig);
	}
	if (total > 9.2e18)
		return cdec_fail(d, n, "units: overflow parsing unit");
	*out = (int64_t)total;
	return 0;
}

int
cdec_strlist(struct cdec *d, const struct ynode *n, char ***out, size_t *nout)
{
	size_t i;

	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_SEQ)
		return cdec_cannot(d, n, "[]string");
	*out = mem_calloc(n->n ? n->n : 1, sizeof(**out));
	for (i = 0; i < n->n; i++) {
		if (cdec_str(d, n->v[i], &(*out)[i]) < 0) {
			*nout = i;
			return -1;
		}
	}
	*nout = n->n;
	return 0;
}

static int
cdec_kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cfg_kv *)a)->key, ((const struct cfg_kv *)b)->key);
}

/* cdec_key_dup checks that the keys of mapping n are unique (sorting a copy
 * of the key nodes); returns 0 or fails naming the repeated key. */
static int
cdec_key_node_cmp(const void *a, const void *b)
{
	const struct ynode *x = *(const struct ynode *const *)a;
	const struct ynode *y = *(const struct ynode *const *)b;
	int c = strcmp(x->kind == YNODE_SCALAR ? x->s : "",
	    y->kind == YNODE_SCALAR ? y->s : "");

	if (c != 0)
		return c;
	return x->line != y->line ? (x->line < y->line ? -1 : 1) :
	    (x->col < y->col ? -1 : x->col > y->col);
}

static int
cdec_key_dup(struct cdec *d, const struct ynode *n)
{
	const struct ynode **keys;
	size_t i;
	int rc = 0;

	if (n->n < 2)
		return 0;
	keys = mem_alloc(n->n * sizeof(*keys));
	for (i = 0; i < n->n; i++)
		keys[i] = n->v[2 * i];
	qsort(keys, n->n, sizeof(*keys), cdec_key_node_cmp);
	for (i = 1; i < n->n; i++) {
		if (keys[i]->kind == YNODE_SCALAR && keys[i - 1]->kind == YNODE_SCALAR &&
		    strcmp(keys[i]->s, keys[i - 1]->s) == 0) {
			rc = cdec_failq(d, keys[i], "key %s already set in map", keys[i]->s);
			break;
		}
	}
	mem_free(keys);
	return rc;
}

int
cdec_strmap(struct cdec *d, const struct ynode *n, struct cfg_kv **out, size_t *nout)
{
	size_t i;

	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, "map[string]string");
	if (cdec_key_dup(d, n) < 0)
		return -1;
	*out = mem_calloc(n->n ? n->n : 1, sizeof(**out));
	for (i = 0; i < n->n; i++) {
		*nout = i + 1;
		if (cdec_str(d, n->v[2 * i], &(*out)[i].key) < 0 ||
		    cdec_str(d, n->v[2 * i + 1], &(*out)[i].value) < 0)
			return -1;
	}
	*nout = n->n;
	qsort(*out, n->n, sizeof(**out), cdec_kv_cmp);
	return 0;
}

void
cfg_kv_free(struct cfg_kv *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		mem_free(v[i].key);
		mem_free(v[i].value);
	}
	mem_free(v);
}

void
cfg_strlist_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		mem_free(v[i]);
	mem_free(v);
}

/* cdec_labelset reads a model.LabelSet (name -> value, names validated) into
 * a struct labels; check_values also requires valid UTF-8 values with
 * Prometheus' external_labels message. */
int
cdec_labelset(struct cdec *d, const struct ynode *n, struct labels **out,
    bool check_values)
{
	struct label *v;
	size_t i;

	if (n->kind == YNODE_SCALAR && n->null) {
		*out = labels_empty();
		return 0;
	}
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, "model.LabelSet");
	if (cdec_key_dup(d, n) < 0)
		return -1;
	for (i = 0; i < n->n; i++) {
		const struct ynode *k = n->v[2 * i], *val = n->v[2 * i + 1];

		if (k->kind != YNODE_SCALAR)
			return cdec_cannot(d, k, "model.LabelName");
		if (val->kind != YNODE_SCALAR)
			return cdec_cannot(d, val, "model.LabelValue");
		if (!labels_is_valid_name(k->s, k->len) || k->null)
			return cdec_failq(d, k, "%s is not a valid label name",
			    k->null ? "" : k->s);
		if (memchr(val->s, '\0', val->len) != NULL ||
		    !cfg_utf8_valid(val->s, val->len)) {
			struct strbuf sb = STRBUF_INIT;

			cfg_goquote(&sb, val->s, val->len);
			cdec_fail(d, val, "%s is not a valid label value", strbuf_cstr(&sb));
			strbuf_free(&sb);
			return -1;
		}
	}
	(void)check_values;
	v = mem_calloc(n->n ? n->n : 1, sizeof(*v));
	for (i = 0; i < n->n; i++) {
		v[i].name = n->v[2 * i]->s;
		v[i].value = n->v[2 * i + 1]->null ? "" : n->v[2 * i + 1]->s;
	}
	*out = labels_new(v, n->n);
	mem_free(v);
	return 0;
}

/* ---- struct walking ---------------------------------------------------- */

/* cdec_struct checks that n can be decoded into a Go struct named tname:
 * a mapping (returns 1) or null (returns 0: leave the defaults). */
int
cdec_struct(struct cdec *d, const struct ynode *n, const char *tname)
{
	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, tname);
	return 1;
}

/* cdec_field_dup fails when key i of map n repeats an earlier key. The
 * earlier keys are known fields (anything else failed already), so this
 * stays short. */
int
cdec_field_dup(struct cdec *d, const struct ynode *n, size_t i, const char *tname)
{
	const char *k = ydoc_map_key(n, i);
	size_t j;

	for (j = 0; j < i; j++)
		if (strcmp(ydoc_map_key(n, j), k) == 0)
			return cdec_fail(d, n->v[2 * i], "field %s already set in type %s",
			    k, tname);
	return 0;
}

int
cdec_unknown(struct cdec *d, const struct ynode *n, size_t i, const char *tname)
{
	const char *k = ydoc_map_key(n, i);

	if (cfg_is_unsupported_sd(k))
		return cdec_fail(d, n->v[2 * i],
		    "%s is not supported by strata (supported: static_configs, file_sd_configs)",
		    k);
	return cdec_fail(d, n->v[2 * i], "field %s not found in type %s", k, tname);
}

/* ---- paths -------------------------------------------------------------- */

/* cfg_path_clean rewrites p in place as Go's filepath.Clean does. */
static void
cfg_path_clean(char *p)
{
	size_t r = 0, w = 0, n = strlen(p), dotdot = 0;
	bool rooted = p[0] == '/';

	if (n == 0) {
		return;
	}
	if (rooted) {
		r = w = 1;
		dotdot = 1;
	}
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && p[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					p[w++] = '/';
				p[w++] = '.';
				p[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				p[w++] = '/';
			for (; r < n && p[r] != '/'; r++)
				p[w++] = p[r];
		}
	}
	if (w == 0)
		p[w++] = '.';
	p[w] = '\0';
}

/* cfg_join_dir replaces *path with dir/path (cleaned) unless it is empty or
 * absolute or dir is NULL, as Prometheus' config.JoinDir. */
void
cfg_join_dir(const char *dir, char **path)
{
	struct strbuf sb = STRBUF_INIT;

	if (dir == NULL || *path == NULL || (*path)[0] == '\0' || (*path)[0] == '/')
		return;
	strbuf_printf(&sb, "%s/%s", dir, *path);
	mem_free(*path);
	*path = strbuf_detach(&sb, NULL);
	cfg_path_clean(*path);
}

/* ---- TLS, auth, HTTP client -------------------------------------------- */

static int
cdec_tls_version(struct cdec *d, const struct ynode *n, uint16_t *out)
{
	static const struct { const char *name; uint16_t v; } vers[] = {
		{ "TLS10", 0x0301 }, { "TLS11", 0x0302 }, { "TLS12", 0x0303 },
		{ "TLS13", 0x0304 },
	};
	char *s = NULL;
	size_t i;

	if (cdec_str(d, n, &s) < 0)
		return -1;
	for (i = 0; i < 4; i++) {
		if (strcmp(s, vers[i].name) == 0) {
			*out = vers[i].v;
			mem_free(s);
			return 0;
		}
	}
	cdec_fail(d, n, "unknown TLS version: %s", s);
	mem_free(s);
	return -1;
}

int
cdec_tls(struct cdec *d, const struct ynode *n, struct cfg_tls *t)
{
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, "config.plain")) <= 0)
		return rc;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "config.plain") < 0)
			return -1;
		if (strcmp(k, "ca_file") == 0)
			rc = cdec_str(d, v, &t->ca_file);
		else if (strcmp(k, "cert_file") == 0)
			rc = cdec_str(d, v, &t->cert_file);
		else if (strcmp(k, "key_file") == 0)
			rc = cdec_str(d, v, &t->key_file);
		else if (strcmp(k, "server_name") == 0)
			rc = cdec_str(d, v, &t->server_name);
		else if (strcmp(k, "insecure_skip_verify") == 0)
			rc = cdec_bool(d, v, &t->insecure_skip_verify);
		else if (strcmp(k, "min_version") == 0)
			rc = cdec_tls_version(d, v, &t->min_version);
		else if (strcmp(k, "max_version") == 0)
			rc = cdec_tls_version(d, v, &t->max_version);
		else
			return cdec_unknown(d, n, i, "config.plain");
		if (rc < 0)
			return -1;
	}
	cfg_join_dir(d->dir, &t->ca_file);
	cfg_join_dir(d->dir, &t->cert_file);
	cfg_join_dir(d->dir, &t->key_file);
	return 0;
}

static void
cfg_tls_init(struct cfg_tls *t)
{
	memset(t, 0, sizeof(*t));
	t->ca_file = mem_strdup("");
	t->cert_file = mem_strdup("");
	t->key_file = mem_strdup("");
	t->server_name = mem_strdup("");
}

void
cfg_tls_free(struct cfg_tls *t)
{
	mem_free(t->ca_file);
	mem_free(t->cert_file);
	mem_free(t->key_file);
	mem_free(t->server_name);
}

static int
cdec_basic_auth(struct cdec *d, const struct ynode *n, struct cfg_http *h)
{
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, "config.BasicAuth")) <= 0)
		return rc;
	h->has_basic_auth = true;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "config.BasicAuth") < 0)
			return -1;
		if (strcmp(k, "username") == 0)
			rc = cdec_str(d, v, &h->basic_username);
		else if (strcmp(k, "password") == 0)
			rc = cdec_str(d, v, &h->basic_password);
		else if (strcmp(k, "password_file") == 0)
			rc = cdec_str(d, v, &h->basic_password_file);
		else
			return cdec_unknown(d, n, i, "config.BasicAuth");
		if (rc < 0)
			return -1;
	}
	cfg_join_dir(d->dir, &h->basic_password_file);
	return 0;
}

static int
cdec_authorization(struct cdec *d, const struct ynode *n, struct cfg_http *h)
{
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, "config.Authorization")) <= 0)
		return rc;
	h->has_authorization = true;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "config.Authorization") < 0)
			return -1;
		if (strcmp(k, "type") == 0)
			rc = cdec_str(d, v, &h->auth_type);
		else if (strcmp(k, "credentials") == 0)
			rc = cdec_str(d, v, &h->auth_credentials);
		else if (strcmp(k, "credentials_file") == 0)
			rc = cdec_str(d, v, &h->auth_credentials_file);
		else
			return cdec_unknown(d, n, i, "config.Authorization");
		if (rc < 0)
			return -1;
	}
	cfg_join_dir(d->dir, &h->auth_credentials_file);
	return 0;
}

static int
cdec_oauth2(struct cdec *d, const struct ynode *n, struct cfg_http *h)
{
	struct cfg_oauth2 *o;
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, "config.OAuth2")) <= 0)
		return rc;
	o = h->oauth2 = mem_calloc(1, sizeof(*o));
	o->client_id = mem_strdup("");
	o->client_secret = mem_strdup("");
	o->client_secret_file = mem_strdup("");
	o->token_url = mem_strdup("");
	o->proxy_url = mem_strdup("");
	cfg_tls_init(&o->tls);
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "config.OAuth2") < 0)
			return -1;
		if (strcmp(k, "client_id") == 0)
			rc = cdec_str(d, v, &o->client_id);
		else if (strcmp(k, "client_secret") == 0)
			rc = cdec_str(d, v, &o->client_secret);
		else if (strcmp(k, "client_secret_file") == 0)
			rc = cdec_str(d, v, &o->client_secret_file);
		else if (strcmp(k, "scopes") == 0)
			rc = cdec_strlist(d, v, &o->scopes, &o->n_scopes);
		else if (strcmp(k, "token_url") == 0)
			rc = cdec_str(d, v, &o->token_url);
		else if (strcmp(k, "endpoint_params") == 0)
			rc = cdec_strmap(d, v, &o->endpoint_params, &o->n_endpoint_params);
		else if (strcmp(k, "proxy_url") == 0)
			rc = cdec_url(d, v, &o->proxy_url);
		else if (strcmp(k, "tls_config") == 0)
			rc = cdec_tls(d, v, &o->tls);
		else
			return cdec_unknown(d, n, i, "config.OAuth2");
		if (rc < 0)
			return -1;
	}
	cfg_join_dir(d->dir, &o->client_secret_file);
	return 0;
}

/* cdec_url reads a URL field; Go's url.Parse refuses control characters. */
int
cdec_url(struct cdec *d, const struct ynode *n, char **out)
{
	size_t i;

	if (cdec_str(d, n, out) < 0)
		return -1;
	for (i = 0; (*out)[i]; i++) {
		unsigned char c = (unsigned char)(*out)[i];

		if (c < 0x20 || c == 0x7f)
			return cdec_failq(d, n, "parse %s: net/url: invalid control character in URL",
			    *out);
	}
	return 0;
}

static int
cdec_proxy_header(struct cdec *d, const struct ynode *n, struct cfg_http *h)
{
	size_t i;

	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, "config.Header");
	if (cdec_key_dup(d, n) < 0)
		return -1;
	h->proxy_connect_header = mem_calloc(n->n ? n->n : 1, sizeof(struct cfg_param));
	for (i = 0; i < n->n; i++) {
		struct cfg_param *p = &h->proxy_connect_header[i];

		h->n_proxy_connect_header = i + 1;
		if (cdec_str(d, n->v[2 * i], &p->name) < 0 ||
		    cdec_strlist(d, n->v[2 * i + 1], &p->values, &p->n_values) < 0)
			return -1;
	}
	return 0;
}

void
cfg_http_init(struct cfg_http *h)
{
	memset(h, 0, sizeof(*h));
	h->basic_username = mem_strdup("");
	h->basic_password = mem_strdup("");
	h->basic_password_file = mem_strdup("");
	h->auth_type = mem_strdup("");
	h->auth_credentials = mem_strdup("");
	h->auth_credentials_file = mem_strdup("");
	h->proxy_url = mem_strdup("");
	h->bearer_token = mem_strdup("");
	h->bearer_token_file = mem_strdup("");
	cfg_tls_init(&h->tls);
	h->follow_redirects = true;
	h->enable_http2 = true;
}

static void
cfg_params_free(struct cfg_param *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		mem_free(p[i].name);
		cfg_strlist_free(p[i].values, p[i].n_values);
	}
	mem_free(p);
}

void
cfg_http_free(struct cfg_http *h)
{
	mem_free(h->basic_username);
	mem_free(h->basic_password);
	mem_free(h->basic_password_file);
	mem_free(h->auth_type);
	mem_free(h->auth_credentials);
	mem_free(h->auth_credentials_file);
	if (h->oauth2 != NULL) {
		struct cfg_oauth2 *o = h->oauth2;

		mem_free(o->client_id);
		mem_free(o->client_secret);
		mem_free(o->client_secret_file);
		mem_free(o->token_url);
		cfg_strlist_free(o->scopes, o->n_scopes);
		cfg_kv_free(o->endpoint_params, o->n_endpoint_params);
		mem_free(o->proxy_url);
		cfg_tls_free(&o->tls);
		mem_free(o);
	}
	mem_free(h->proxy_url);
	cfg_params_free(h->proxy_connect_header, h->n_proxy_connect_header);
	cfg_tls_free(&h->tls);
	mem_free(h->bearer_token);
	mem_free(h->bearer_token_file);
}

/* cdec_http_field decodes key i of n when it belongs to the inlined
 * HTTPClientConfig. Returns 1 when handled, 0 when not an HTTP field, -1. */
int
cdec_http_field(struct cdec *d, const struct ynode *n, size_t i, struct cfg_http *h)
{
	const char *k = ydoc_map_key(n, i);
	const struct ynode *v = ydoc_map_value(n, i);
	int rc;

	if (strcmp(k, "basic_auth") == 0)
		rc = cdec_basic_auth(d, v, h);
	else if (strcmp(k, "authorization") == 0)
		rc = cdec_authorization(d, v, h);
	else if (strcmp(k, "oauth2") == 0)
		rc = cdec_oauth2(d, v, h);
	else if (strcmp(k, "bearer_token") == 0)
		rc = cdec_str(d, v, &h->bearer_token);
	else if (strcmp(k, "bearer_token_file") == 0)
		rc = cdec_str(d, v, &h->bearer_token_file);
	else if (strcmp(k, "proxy_url") == 0)
		rc = cdec_url(d, v, &h->proxy_url);
	else if (strcmp(k, "proxy_connect_header") == 0)
		rc = cdec_proxy_header(d, v, h);
	else if (strcmp(k, "tls_config") == 0)
		rc = cdec_tls(d, v, &h->tls);
	else if (strcmp(k, "follow_redirects") == 0)
		rc = cdec_bool(d, v, &h->follow_redirects);
	else if (strcmp(k, "enable_http2") == 0)
		rc = cdec_bool(d, v, &h->enable_http2);
	else
		return 0;
	return rc < 0 ? -1 : 1;
}

static void
cfg_set(char **p, const char *s)
{
	mem_free(*p);
	*p = mem_strdup(s);
}

/* cdec_http_validate is HTTPClientConfig.Validate() of Prometheus'
 * common/config v0.39, reporting at n (the enclosing mapping). */
int
cdec_http_validate(struct cdec *d, const struct ynode *n, struct cfg_http *h)
{
	bool bt = h->bearer_token[0] != '\0', btf = h->bearer_token_file[0] != '\0';
	char *t;
	size_t a, b;

	cfg_join_dir(d->dir, &h->bearer_token_file);
	if (bt && btf)
		return cdec_fail(d, n, "at most one of bearer_token & bearer_token_file must be configured");
	if ((h->has_basic_auth || h->oauth2) && (bt || btf))
		return cdec_fail(d, n, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured");
	if (h->has_basic_auth && h->basic_password[0] && h->basic_password_file[0])
		return cdec_fail(d, n, "at most one of basic_auth password & password_file must be configured");
	if (h->has_authorization) {
		if (bt || btf)
			return cdec_fail(d, n, "authorization is not compatible with bearer_token & bearer_token_file");
		if (h->auth_credentials[0] && h->auth_credentials_file[0])
			return cdec_fail(d, n, "at most one of authorization credentials & credentials_file must be configured");
		for (a = 0; h->auth_type[a] == ' ' || h->auth_type[a] == '\t' ||
		    h->auth_type[a] == '\n' || h->auth_type[a] == '\r'; a++)
			;
		for (b = strlen(h->auth_type); b > a && (h->auth_type[b - 1] == ' ' ||
		    h->auth_type[b - 1] == '\t' || h->auth_type[b - 1] == '\n' ||
		    h->auth_type[b - 1] == '\r'); b--)
			;
		t = mem_strndup(h->auth_type + a, b - a);
		mem_free(h->auth_type);
		h->auth_type = t;
		if (t[0] == '\0')
			cfg_set(&h->auth_type, "Bearer");
		if (strcasecmp(h->auth_type, "basic") == 0)
			return cdec_fail(d, n, "authorization type cannot be set to \"basic\", use \"basic_auth\" instead");
		if (h->has_basic_auth || h->oauth2)
			return cdec_fail(d, n, "at most one of basic_auth, oauth2 & authorization must be configured");
	} else if (bt || btf) {
		h->has_authorization = true;
		cfg_set(&h->auth_type, "Bearer");
		if (bt)
			cfg_set(&h->auth_credentials, h->bearer_token);
		else
			cfg_set(&h->auth_credentials_file, h->bearer_token_file);
		cfg_set(&h->bearer_token, "");
		cfg_set(&h->bearer_token_file, "");
	}
	if (h->oauth2 != NULL) {
		struct cfg_oauth2 *o = h->oauth2;

		if (h->has_basic_auth)
			return cdec_fail(d, n, "at most one of basic_auth, oauth2 & authorization must be configured");
		if (o->client_id[0] == '\0')
			return cdec_fail(d, n, "oauth2 client_id must be configured");
		if (o->client_secret[0] == '\0' && o->client_secret_file[0] == '\0')
			return cdec_fail(d, n, "either oauth2 client_secret or client_secret_file must be configured");
		if (o->token_url[0] == '\0')
			return cdec_fail(d, n, "oauth2 token_url must be configured");
		if (o->client_secret[0] && o->client_secret_file[0])
			return cdec_fail(d, n, "at most one of oauth2 client_secret & client_secret_file must be configured");
	}
	if (h->n_proxy_connect_header > 0 && h->proxy_url[0] == '\0')
		return cdec_fail(d, n, "if proxy_connect_header is configured proxy_url must also be configured");
	return 0;
}

/* ---- relabeling ----------------------------------------------------------- */

static void
cfg_relabel_raw_free(struct cfg_relabel_raw *r)
{
	cfg_strlist_free(r->source_labels, r->n_source_labels);
	mem_free(r->separator);
	mem_free(r->regex);
	mem_free(r->target_label);
	mem_free(r->replacement);
	mem_free(r->action);
}

void
cfg_relabels_free(struct cfg_relabels *rl)
{
	size_t i;

	for (i = 0; i < rl->n; i++) {
		relabel_rule_free(rl->rules[i]);
		cfg_relabel_raw_free(&rl->raw[i]);
	}
	mem_free(rl->rules);
	mem_free(rl->raw);
	memset(rl, 0, sizeof(*rl));
}

static int
cdec_relabel(struct cdec *d, const struct ynode *n, struct cfg_relabel_raw *r,
    struct relabel_rule **rule)
{
	struct relabel_spec spec;
	char e[512];
	size_t i;
	int rc;

	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "relabel.plain") < 0)
			return -1;
		if (strcmp(k, "source_labels") == 0) {
			size_t j;

			rc = cdec_strlist(d, v, &r->source_labels, &r->n_source_labels);
			for (j = 0; rc == 0 && j < r->n_source_labels; j++)
				if (!labels_is_valid_name(r->source_labels[j],
				    strlen(r->source_labels[j])))
					return cdec_failq(d, v->v[j], "%s is not a valid label name",
					    r->source_labels[j]);
		} else if (strcmp(k, "separator") == 0) {
			rc = cdec_str(d, v, &r->separator);
		} else if (strcmp(k, "regex") == 0) {
			rc = cdec_str(d, v, &r->regex);
		} else if (strcmp(k, "modulus") == 0) {
			r->has_modulus = true;
			rc = cdec_u64(d, v, &r->modulus);
		} else if (strcmp(k, "target_label") == 0) {
			rc = cdec_str(d, v, &r->target_label);
		} else if (strcmp(k, "replacement") == 0) {
			rc = cdec_str(d, v, &r->replacement);
		} else if (strcmp(k, "action") == 0) {
			rc = cdec_str(d, v, &r->action);
		} else {
			return cdec_unknown(d, n, i, "relabel.plain");
		}
		if (rc < 0)
			return -1;
	}
	if (r->action != NULL && r->action[0] == '\0')
		return cdec_fail(d, n, "relabel action cannot be empty");
	memset(&spec, 0, sizeof(spec));
	spec.action = r->action;
	spec.source_labels = (const char *const *)r->source_labels;
	spec.n_source_labels = r->n_source_labels;
	spec.separator = r->separator;
	spec.regex = r->regex;
	spec.has_modulus = r->has_modulus;
	spec.modulus = r->modulus;
	spec.target_label = r->target_label;
	spec.replacement = r->replacement;
	e[0] = '\0';
	if ((*rule = relabel_rule_new(&spec, e, sizeof(e))) == NULL)
		return cdec_fail(d, n, "%s", e[0] ? e : "invalid relabel configuration");
	/* Prometheus keeps the lowercased action ("Replace" prints as
	 * "replace"); relabel_rule_new() knows Go's lowercasing. */
	mem_free(r->action);
	r->action = mem_strdup(relabel_action_name(relabel_rule_action(*rule)));
	return 0;
}

/* cdec_relabels reads a list of relabel configs; a null entry fails with
 * nullmsg (Prometheus' wording for that list). */
int
cdec_relabels(struct cdec *d, const struct ynode *n, struct cfg_relabels *rl,
    const char *nullmsg)
{
	size_t i;

	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_SEQ)
		return cdec_cannot(d, n, "[]*relabel.Config");
	rl->rules = mem_calloc(n->n ? n->n : 1, sizeof(*rl->rules));
	rl->raw = mem_calloc(n->n ? n->n : 1, sizeof(*rl->raw));
	for (i = 0; i < n->n; i++) {
		const struct ynode *item = n->v[i];

		rl->n = i + 1;
		if (item->kind == YNODE_SCALAR && item->null)
			return cdec_fail(d, item, "%s", nullmsg);
		if (item->kind != YNODE_MAP)
			return cdec_cannot(d, item, "relabel.plain");
		if (cdec_relabel(d, item, &rl->raw[i], &rl->rules[i]) < 0)
			return -1;
	}
	return 0;
}

/* ---- service discovery: static_configs, file_sd_configs ------------------ */

void
cfg_target_groups_free(struct cfg_target_group *g, size_t n)
{
	size_t i;

	if (g == NULL)
		return;
	for (i = 0; i < n; i++) {
		cfg_strlist_free(g[i].targets, g[i].n_targets);
		labels_free(g[i].labels);
		mem_free(g[i].source);
	}
	mem_free(g);
}

/* cdec_target_group reads one {targets, labels} group into g. */
int
cdec_target_group(struct cdec *d, const struct ynode *n, struct cfg_target_group *g)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "targetgroup.Group") < 0)
			return -1;
		if (strcmp(k, "targets") == 0) {
			rc = cdec_strlist(d, v, &g->targets, &g->n_targets);
		} else if (strcmp(k, "labels") == 0) {
			labels_free(g->labels);
			g->labels = NULL;
			rc = cdec_labelset(d, v, &g->labels, false);
		} else {
			return cdec_unknown(d, n, i, "targetgroup.Group");
		}
		if (rc < 0)
			return -1;
	}
	if (g->labels == NULL)
		g->labels = labels_empty();
	return 0;
}

static int
cdec_static_configs(struct cdec *d, const struct ynode *n,
    struct cfg_target_group **out, size_t *nout)
{
	size_t i, base = *nout;

	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_SEQ)
		return cdec_cannot(d, n, "discovery.StaticConfig");
	*out = mem_realloc(*out, (base + n->n + 1) * sizeof(**out));
	for (i = 0; i < n->n; i++) {
		const struct ynode *item = n->v[i];
		struct cfg_target_group *g = &(*out)[base + i];
		struct strbuf sb = STRBUF_INIT;

		memset(g, 0, sizeof(*g));
		*nout = base + i + 1;
		strbuf_printf(&sb, "%zu", base + i);
		g->source = strbuf_detach(&sb, NULL);
		if (item->kind == YNODE_SCALAR && item->null)
			return cdec_fail(d, item, "empty or null section in static_configs");
		if (item->kind != YNODE_MAP)
			return cdec_cannot(d, item, "targetgroup.Group");
		if (cdec_target_group(d, item, g) < 0)
			return -1;
	}
	return 0;
}

/* A file_sd path: a glob only in the last element, ending .json/.yml/.yaml. */
static bool
cfg_file_sd_name_ok(const char *s)
{
	static const char *const ext[] = { ".json", ".yml", ".yaml", ".JSON",
	    ".YML", ".YAML" };
	const char *star = strchr(s, '*');
	size_t i, len = strlen(s);

	if (star != NULL && (strchr(star, '/') != NULL || strchr(star + 1, '*') != NULL))
		return false;
	for (i = 0; i < 6; i++) {
		size_t el = strlen(ext[i]);

		if (len >= el && strcmp(s + len - el, ext[i]) == 0) {
			/* the extension must not overlap the star part oddly */
			return true;
		}
	}
	return false;
}

static int
cdec_file_sd(struct cdec *d, const struct ynode *n, struct cfg_file_sd **out,
    size_t *nout)
{
	size_t i, j, base = *nout;

	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_SEQ)
		return cdec_cannot(d, n, "[]*file.SDConfig");
	*out = mem_realloc(*out, (base + n->n + 1) * sizeof(**out));
	for (i = 0; i < n->n; i++) {
		const struct ynode *item = n->v[i];
		struct cfg_file_sd *f = &(*out)[base + i];

		memset(f, 0, sizeof(*f));
		f->refresh_interval_ms = 5 * 60 * 1000;
		*nout = base + i + 1;
		if (item->kind == YNODE_SCALAR && item->null)
			return cdec_fail(d, item, "empty or null section in file_sd_configs");
		if (item->kind != YNODE_MAP)
			return cdec_cannot(d, item, "file.SDConfig");
		for (j = 0; j < item->n; j++) {
			const char *k = ydoc_map_key(item, j);
			const struct ynode *v = ydoc_map_value(item, j);
			int rc;

			if (cdec_field_dup(d, item, j, "file.plain") < 0)
				return -1;
			if (strcmp(k, "files") == 0)
				rc = cdec_strlist(d, v, &f->files, &f->n_files);
			else if (strcmp(k, "refresh_interval") == 0)
				rc = cdec_duration(d, v, &f->refresh_interval_ms);
			else
				return cdec_unknown(d, item, j, "file.plain");
			if (rc < 0)
				return -1;
		}
		if (f->n_files == 0)
			return cdec_fail(d, item,
			    "file service discovery config must contain at least one path name");
		for (j = 0; j < f->n_files; j++) {
			if (!cfg_file_sd_name_ok(f->files[j]))
				return cdec_failq(d, item,
				    "path name %s is not valid for file discovery",
				    f->files[j]);
			cfg_join_dir(d->dir, &f->files[j]);
		}
	}
	return 0;
}

void
cfg_file_sd_free(struct cfg_file_sd *f, size_t n)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < n; i++)
		cfg_strlist_free(f[i].files, f[i].n_files);
	mem_free(f);
}

/* cdec_sd_field decodes key i of n when it is a service discovery section.
 * Returns 1 when handled, 0 when not an SD key, -1 on error (unsupported
 * sections included). */
static int
cdec_sd_field(struct cdec *d, const struct ynode *n, size_t i,
    struct cfg_target_group **st, size_t *nst, struct cfg_file_sd **fs, size_t *nfs)
{
	const char *k = ydoc_map_key(n, i);
	const struct ynode *v = ydoc_map_value(n, i);

	if (strcmp(k, "static_configs") == 0)
		return cdec_static_configs(d, v, st, nst) < 0 ? -1 : 1;
	if (strcmp(k, "file_sd_configs") == 0)
		return cdec_file_sd(d, v, fs, nfs) < 0 ? -1 : 1;
	if (cfg_is_unsupported_sd(k))
		return cdec_unknown(d, n, i, "");
	return 0;
}

/* Prometheus' checkStaticTargets: a "/" in a static target is a URL. */
static int
cdec_check_static_targets(struct cdec *d, const struct ynode *n,
    const struct cfg_target_group *g, size_t ng)
{
	size_t i, j;

	for (i = 0; i < ng; i++)
		for (j = 0; j < g[i].n_targets; j++)
			if (strchr(g[i].targets[j], '/') != NULL)
				return cdec_failq(d, n, "%s is not a valid hostname",
				    g[i].targets[j]);
	return 0;
}

/* ---- scrape_configs ------------------------------------------------------ */

static void
cfg_scrape_free(struct cfg_scrape *s)
{
	mem_free(s->job_name);
	cfg_params_free(s->params, s->n_params);
	mem_free(s->metrics_path);
	mem_free(s->scheme);
	cfg_http_free(&s->http);
	cfg_relabels_free(&s->relabel);
	cfg_relabels_free(&s->metric_relabel);
	cfg_target_groups_free(s->static_configs, s->n_static_configs);
	cfg_file_sd_free(s->file_sd, s->n_file_sd);
}

static int
cdec_params(struct cdec *d, const struct ynode *n, struct cfg_scrape *s)
{
	size_t i;

	if (n->kind == YNODE_SCALAR && n->null)
		return 0;
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, "url.Values");
	if (cdec_key_dup(d, n) < 0)
		return -1;
	s->params = mem_calloc(n->n ? n->n : 1, sizeof(*s->params));
	for (i = 0; i < n->n; i++) {
		struct cfg_param *p = &s->params[i];

		s->n_params = i + 1;
		if (cdec_str(d, n->v[2 * i], &p->name) < 0 ||
		    cdec_strlist(d, n->v[2 * i + 1], &p->values, &p->n_values) < 0)
			return -1;
	}
	qsort(s->params, s->n_params, sizeof(*s->params), cdec_kv_cmp);
	return 0;
}

static int
cdec_scheme(struct cdec *d, const struct ynode *n, char **out)
{
	if (cdec_str(d, n, out) < 0)
		return -1;
	if (strcmp(*out, "http") != 0 && strcmp(*out, "https") != 0)
		return cdec_failq(d, n, "scheme must be \"http\" or \"https\", got %s", *out);
	return 0;
}

static int
cdec_scrape(struct cdec *d, const struct ynode *n, struct cfg_scrape *s)
{
	const char *T = "config.ScrapeConfig";
	size_t i;
	int rc;

	s->honor_timestamps = true;
	s->job_name = mem_strdup("");
	s->metrics_path = mem_strdup("/metrics");
	s->scheme = mem_strdup("http");
	cfg_http_init(&s->http);
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, T);
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if ((rc = cdec_http_field(d, n, i, &s->http)) != 0) {
			if (rc < 0)
				return -1;
			continue;
		}
		if ((rc = cdec_sd_field(d, n, i, &s->static_configs, &s->n_static_configs,
		    &s->file_sd, &s->n_file_sd)) != 0) {
			if (rc < 0)
				return -1;
			continue;
		}
		if (strcmp(k, "job_name") == 0)
			rc = cdec_str(d, v, &s->job_name);
		else if (strcmp(k, "honor_labels") == 0)
			rc = cdec_bool(d, v, &s->honor_labels);
		else if (strcmp(k, "honor_timestamps") == 0)
			rc = cdec_bool(d, v, &s->honor_timestamps);
		else if (strcmp(k, "params") == 0)
			rc = cdec_params(d, v, s);
		else if (strcmp(k, "scrape_interval") == 0)
			rc = cdec_duration(d, v, &s->scrape_interval_ms);
		else if (strcmp(k, "scrape_timeout") == 0)
			rc = cdec_duration(d, v, &s->scrape_timeout_ms);
		else if (strcmp(k, "metrics_path") == 0)
			rc = cdec_str(d, v, &s->metrics_path);
		else if (strcmp(k, "scheme") == 0)
			rc = cdec_scheme(d, v, &s->scheme);
		else if (strcmp(k, "body_size_limit") == 0)
			rc = cdec_bytes(d, v, &s->body_size_limit);
		else if (strcmp(k, "sample_limit") == 0)
			rc = cdec_u64(d, v, &s->sample_limit);
		else if (strcmp(k, "target_limit") == 0)
			rc = cdec_u64(d, v, &s->target_limit);
		else if (strcmp(k, "label_limit") == 0)
			rc = cdec_u64(d, v, &s->label_limit);
		else if (strcmp(k, "label_name_length_limit") == 0)
			rc = cdec_u64(d, v, &s->label_name_length_limit);
		else if (strcmp(k, "label_value_length_limit") == 0)
			rc = cdec_u64(d, v, &s->label_value_length_limit);
		else if (strcmp(k, "relabel_configs") == 0)
			rc = cdec_relabels(d, v, &s->relabel,
			    "empty or null target relabeling rule in scrape config");
		else if (strcmp(k, "metric_relabel_configs") == 0)
			rc = cdec_relabels(d, v, &s->metric_relabel,
			    "empty or null metric relabeling rule in scrape config");
		else
			return cdec_unknown(d, n, i, T);
		if (rc < 0)
			return -1;
	}
	if (s->job_name[0] == '\0')
		return cdec_fail(d, n, "job_name is empty");
	if (cdec_http_validate(d, n, &s->http) < 0)
		return -1;
	if (s->relabel.n == 0 &&
	    cdec_check_static_targets(d, n, s->static_configs, s->n_static_configs) < 0)
		return -1;
	return 0;
}

/*
 * cfg_scrape_find: see config.h.
 */
const struct cfg_scrape *
cfg_scrape_find(const struct cfg *c, const char *job_name)
{
	size_t i;

	for (i = 0; i < c->n_scrape; i++)
		if (strcmp(c->scrape[i].job_name, job_name) == 0)
			return &c->scrape[i];
	return NULL;
}

/* ---- alerting ------------------------------------------------------------- */

static void
cfg_alertmanager_free(struct cfg_alertmanager *a)
{
	cfg_http_free(&a->http);
	mem_free(a->scheme);
	mem_free(a->path_prefix);
	mem_free(a->api_version);
	cfg_relabels_free(&a->relabel);
	cfg_target_groups_free(a->static_configs, a->n_static_configs);
	cfg_file_sd_free(a->file_sd, a->n_file_sd);
}

static int
cdec_alertmanager(struct cdec *d, const struct ynode *n, struct cfg_alertmanager *a)
{
	const char *T = "config.AlertmanagerConfig";
	size_t i;
	int rc;

	cfg_http_init(&a->http);
	a->scheme = mem_strdup("http");
	a->path_prefix = mem_strdup("");
	a->timeout_ms = 10000;
	a->api_version = mem_strdup("v2");
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, T);
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if ((rc = cdec_http_field(d, n, i, &a->http)) != 0) {
			if (rc < 0)
				return -1;
			continue;
		}
		if ((rc = cdec_sd_field(d, n, i, &a->static_configs, &a->n_static_configs,
		    &a->file_sd, &a->n_file_sd)) != 0) {
			if (rc < 0)
				return -1;
			continue;
		}
		if (strcmp(k, "scheme") == 0) {
			rc = cdec_scheme(d, v, &a->scheme);
		} else if (strcmp(k, "path_prefix") == 0) {
			rc = cdec_str(d, v, &a->path_prefix);
		} else if (strcmp(k, "timeout") == 0) {
			rc = cdec_duration(d, v, &a->timeout_ms);
		} else if (strcmp(k, "api_version") == 0) {
			rc = cdec_str(d, v, &a->api_version);
			if (rc == 0 && strcmp(a->api_version, "v1") != 0 &&
			    strcmp(a->api_version, "v2") != 0)
				return cdec_fail(d, v,
				    "expected Alertmanager api version to be one of [v1 v2] but got %s",
				    a->api_version);
		} else if (strcmp(k, "relabel_configs") == 0) {
			rc = cdec_relabels(d, v, &a->relabel,
			    "empty or null Alertmanager target relabeling rule");
		} else {
			return cdec_unknown(d, n, i, T);
		}
		if (rc < 0)
			return -1;
	}
	if (cdec_http_validate(d, n, &a->http) < 0)
		return -1;
	if (a->relabel.n == 0 &&
	    cdec_check_static_targets(d, n, a->static_configs, a->n_static_configs) < 0)
		return -1;
	return 0;
}

static int
cdec_alerting(struct cdec *d, const struct ynode *n, struct cfg *c)
{
	size_t i, j;
	int rc;

	if ((rc = cdec_struct(d, n, "config.plain")) <= 0)
		return rc;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "config.plain") < 0)
			return -1;
		if (strcmp(k, "alert_relabel_configs") == 0) {
			if (cdec_relabels(d, v, &c->alert_relabel,
			    "empty or null alert relabeling rule") < 0)
				return -1;
		} else if (strcmp(k, "alertmanagers") == 0) {
			if (v->kind == YNODE_SCALAR && v->null)
				continue;
			if (v->kind != YNODE_SEQ)
				return cdec_cannot(d, v, "config.AlertmanagerConfigs");
			c->alertmanagers = mem_calloc(v->n ? v->n : 1, sizeof(*c->alertmanagers));
			for (j = 0; j < v->n; j++) {
				c->n_alertmanagers = j + 1;
				if (v->v[j]->kind == YNODE_SCALAR && v->v[j]->null) {
					cfg_http_init(&c->alertmanagers[j].http);
					return cdec_fail(d, v->v[j],
					    "empty or null alertmanager config section");
				}
				if (cdec_alertmanager(d, v->v[j], &c->alertmanagers[j]) < 0)
					return -1;
			}
		} else {
			return cdec_unknown(d, n, i, "config.plain");
		}
	}
	return 0;
}

/* ---- remote write / read ---------------------------------------------------- */

static const char *const cfg_reserved_headers[] = {
	"host", "content-encoding", "content-length", "content-type", "user-agent",
	"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
	"www-authenticate", "accept-encoding", "x-prometheus-remote-write-version",
	"x-prometheus-remote-read-version", "x-amz-date", "x-amz-security-token",
	"x-amz-content-sha256",
};

static int
cdec_validate_headers(struct cdec *d, const struct ynode *n,
    const struct cfg_kv *h, size_t nh, bool tracing)
{
	size_t i, j;

	for (i = 0; i < nh; i++) {
		if (strcasecmp(h[i].key, "authorization") == 0)
			return cdec_fail(d, n, "%s", tracing ?
			    "custom authorization header configuration is not yet supported" :
			    "authorization header must be changed via the basic_auth, authorization, oauth2, or sigv4 parameter");
		for (j = 0; j < sizeof(cfg_reserved_headers) / sizeof(cfg_reserved_headers[0]); j++)
			if (strcasecmp(h[i].key, cfg_reserved_headers[j]) == 0)
				return cdec_fail(d, n, "%s is a reserved header. It must not be changed",
				    h[i].key);
	}
	return 0;
}

static int
cdec_queue(struct cdec *d, const struct ynode *n, struct cfg_queue *q)
{
	const char *T = "config.QueueConfig";
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, T)) <= 0)
		return rc;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if (strcmp(k, "capacity") == 0)
			rc = cdec_int(d, v, &q->capacity);
		else if (strcmp(k, "max_shards") == 0)
			rc = cdec_int(d, v, &q->max_shards);
		else if (strcmp(k, "min_shards") == 0)
			rc = cdec_int(d, v, &q->min_shards);
		else if (strcmp(k, "max_samples_per_send") == 0)
			rc = cdec_int(d, v, &q->max_samples_per_send);
		else if (strcmp(k, "batch_send_deadline") == 0)
			rc = cdec_duration(d, v, &q->batch_send_deadline_ms);
		else if (strcmp(k, "min_backoff") == 0)
			rc = cdec_duration(d, v, &q->min_backoff_ms);
		else if (strcmp(k, "max_backoff") == 0)
			rc = cdec_duration(d, v, &q->max_backoff_ms);
		else if (strcmp(k, "retry_on_http_429") == 0)
			rc = cdec_bool(d, v, &q->retry_on_http_429);
		else
			return cdec_unknown(d, n, i, T);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int
cdec_metadata(struct cdec *d, const struct ynode *n, struct cfg_metadata *m)
{
	const char *T = "config.MetadataConfig";
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, T)) <= 0)
		return rc;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if (strcmp(k, "send") == 0)
			rc = cdec_bool(d, v, &m->send);
		else if (strcmp(k, "send_interval") == 0)
			rc = cdec_duration(d, v, &m->send_interval_ms);
		else if (strcmp(k, "max_samples_per_send") == 0)
			rc = cdec_int(d, v, &m->max_samples_per_send);
		else
			return cdec_unknown(d, n, i, T);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int
cdec_sigv4(struct cdec *d, const struct ynode *n, struct cfg_remote_write *rw)
{
	const char *T = "sigv4.plain";
	struct cfg_sigv4 *s;
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, T)) <= 0)
		return rc;
	s = rw->sigv4 = mem_calloc(1, sizeof(*s));
	s->region = mem_strdup("");
	s->access_key = mem_strdup("");
	s->secret_key = mem_strdup("");
	s->profile = mem_strdup("");
	s->role_arn = mem_strdup("");
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if (strcmp(k, "region") == 0)
			rc = cdec_str(d, v, &s->region);
		else if (strcmp(k, "access_key") == 0)
			rc = cdec_str(d, v, &s->access_key);
		else if (strcmp(k, "secret_key") == 0)
			rc = cdec_str(d, v, &s->secret_key);
		else if (strcmp(k, "profile") == 0)
			rc = cdec_str(d, v, &s->profile);
		else if (strcmp(k, "role_arn") == 0)
			rc = cdec_str(d, v, &s->role_arn);
		else
			return cdec_unknown(d, n, i, T);
		if (rc < 0)
			return -1;
	}
	if ((s->access_key[0] == '\0') != (s->secret_key[0] == '\0'))
		return cdec_fail(d, n, "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config");
	return 0;
}

static void
cfg_remote_write_free(struct cfg_remote_write *rw)
{
	mem_free(rw->url);
	cfg_kv_free(rw->headers, rw->n_headers);
	cfg_relabels_free(&rw->write_relabel);
	mem_free(rw->name);
	cfg_http_free(&rw->http);
	if (rw->sigv4 != NULL) {
		mem_free(rw->sigv4->region);
		mem_free(rw->sigv4->access_key);
		mem_free(rw->sigv4->secret_key);
		mem_free(rw->sigv4->profile);
		mem_free(rw->sigv4->role_arn);
		mem_free(rw->sigv4);
	}
}

static int
cdec_remote_write(struct cdec *d, const struct ynode *n, struct cfg_remote_write *rw)
{
	const char *T = "config.plain";
	size_t i;
	int rc;

	rw->remote_timeout_ms = 30000;
	rw->name = mem_strdup("");
	cfg_http_init(&rw->http);
	rw->queue.capacity = 2500;
	rw->queue.max_shards = 200;
	rw->queue.min_shards = 1;
	rw->queue.max_samples_per_send = 500;
	rw->queue.batch_send_deadline_ms = 5000;
	rw->queue.min_backoff_ms = 30;
	rw->queue.max_backoff_ms = 5000;
	rw->metadata.send = true;
	rw->metadata.send_interval_ms = 60000;
	rw->metadata.max_samples_per_send = 500;
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, T);
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if ((rc = cdec_http_field(d, n, i, &rw->http)) != 0) {
			if (rc < 0)
				return -1;
			continue;
		}
		if (strcmp(k, "url") == 0) {
			if (v->kind == YNODE_SCALAR && v->null)
				continue;
			rc = cdec_url(d, v, &rw->url);
		} else if (strcmp(k, "remote_timeout") == 0) {
			rc = cdec_duration(d, v, &rw->remote_timeout_ms);
		} else if (strcmp(k, "headers") == 0) {
			rc = cdec_strmap(d, v, &rw->headers, &rw->n_headers);
		} else if (strcmp(k, "write_relabel_configs") == 0) {
			rc = cdec_relabels(d, v, &rw->write_relabel,
			    "empty or null relabeling rule in remote write config");
		} else if (strcmp(k, "name") == 0) {
			rc = cdec_str(d, v, &rw->name);
		} else if (strcmp(k, "send_exemplars") == 0) {
			rc = cdec_bool(d, v, &rw->send_exemplars);
		} else if (strcmp(k, "send_native_histograms") == 0) {
			rc = cdec_bool(d, v, &rw->send_native_histograms);
		} else if (strcmp(k, "queue_config") == 0) {
			rc = cdec_queue(d, v, &rw->queue);
		} else if (strcmp(k, "metadata_config") == 0) {
			rc = cdec_metadata(d, v, &rw->metadata);
		} else if (strcmp(k, "sigv4") == 0) {
			rc = cdec_sigv4(d, v, rw);
		} else {
			return cdec_unknown(d, n, i, T);
		}
		if (rc < 0)
			return -1;
	}
	if (rw->url == NULL)
		return cdec_fail(d, n, "url for remote_write is empty");
	if (cdec_validate_headers(d, n, rw->headers, rw->n_headers, false) < 0 ||
	    cdec_http_validate(d, n, &rw->http) < 0)
		return -1;
	if ((rw->http.has_basic_auth || rw->http.has_authorization || rw->http.oauth2) &&
	    rw->sigv4 != NULL)
		return cdec_fail(d, n, "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured");
	return 0;
}

static void
cfg_remote_read_free(struct cfg_remote_read *rr)
{
	mem_free(rr->url);
	cfg_kv_free(rr->headers, rr->n_headers);
	mem_free(rr->name);
	cfg_http_free(&rr->http);
	cfg_kv_free(rr->required_matchers, rr->n_required_matchers);
}

static int
cdec_remote_read(struct cdec *d, const struct ynode *n, struct cfg_remote_read *rr)
{
	const char *T = "config.plain";
	size_t i, j;
	int rc;

	rr->remote_timeout_ms = 60000;
	rr->name = mem_strdup("");
	rr->filter_external_labels = true;
	cfg_http_init(&rr->http);
	if (n->kind != YNODE_MAP)
		return cdec_cannot(d, n, T);
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if ((rc = cdec_http_field(d, n, i, &rr->http)) != 0) {
			if (rc < 0)
				return -1;
			continue;
		}
		if (strcmp(k, "url") == 0) {
			if (v->kind == YNODE_SCALAR && v->null)
				continue;
			rc = cdec_url(d, v, &rr->url);
		} else if (strcmp(k, "remote_timeout") == 0) {
			rc = cdec_duration(d, v, &rr->remote_timeout_ms);
		} else if (strcmp(k, "headers") == 0) {
			rc = cdec_strmap(d, v, &rr->headers, &rr->n_headers);
		} else if (strcmp(k, "read_recent") == 0) {
			rc = cdec_bool(d, v, &rr->read_recent);
		} else if (strcmp(k, "name") == 0) {
			rc = cdec_str(d, v, &rr->name);
		} else if (strcmp(k, "required_matchers") == 0) {
			rc = cdec_strmap(d, v, &rr->required_matchers, &rr->n_required_matchers);
			for (j = 0; rc == 0 && j < rr->n_required_matchers; j++)
				if (!labels_is_valid_name(rr->required_matchers[j].key,
				    strlen(rr->required_matchers[j].key)))
					return cdec_failq(d, v, "%s is not a valid label name",
					    rr->required_matchers[j].key);
		} else if (strcmp(k, "filter_external_labels") == 0) {
			rc = cdec_bool(d, v, &rr->filter_external_labels);
		} else {
			return cdec_unknown(d, n, i, T);
		}
		if (rc < 0)
			return -1;
	}
	if (rr->url == NULL)
		return cdec_fail(d, n, "url for remote_read is empty");
	if (cdec_validate_headers(d, n, rr->headers, rr->n_headers, false) < 0)
		return -1;
	return cdec_http_validate(d, n, &rr->http);
}

/* ---- global, storage, tracing --------------------------------------------- */

static int
cdec_global(struct cdec *d, const struct ynode *n, struct cfg *c)
{
	const char *T = "config.plain";
	int64_t si = 0, st = 0, ei = 0;
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, T)) <= 0)
		return rc;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if (strcmp(k, "scrape_interval") == 0) {
			rc = cdec_duration(d, v, &si);
		} else if (strcmp(k, "scrape_timeout") == 0) {
			rc = cdec_duration(d, v, &st);
		} else if (strcmp(k, "evaluation_interval") == 0) {
			rc = cdec_duration(d, v, &ei);
		} else if (strcmp(k, "query_log_file") == 0) {
			rc = cdec_str(d, v, &c->query_log_file);
		} else if (strcmp(k, "external_labels") == 0) {
			labels_free(c->external_labels);
			c->external_labels = NULL;
			rc = cdec_labelset(d, v, &c->external_labels, true);
		} else {
			return cdec_unknown(d, n, i, T);
		}
		if (rc < 0)
			return -1;
	}
	if (si == 0)
		si = 60000;
	if (st > si)
		return cdec_fail(d, n, "global scrape timeout greater than scrape interval");
	if (st == 0)
		st = 10000 > si ? si : 10000;
	if (ei == 0)
		ei = 60000;
	c->scrape_interval_ms = si;
	c->scrape_timeout_ms = st;
	c->evaluation_interval_ms = ei;
	cfg_join_dir(d->dir, &c->query_log_file);
	return 0;
}

static int
cdec_storage(struct cdec *d, const struct ynode *n, struct cfg *c)
{
	size_t i, j;
	int rc;

	if ((rc = cdec_struct(d, n, "config.StorageConfig")) <= 0)
		return rc;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, "config.StorageConfig") < 0)
			return -1;
		if (strcmp(k, "tsdb") == 0) {
			if ((rc = cdec_struct(d, v, "config.plain")) < 0)
				return -1;
			c->has_tsdb = rc > 0;
			for (j = 0; rc > 0 && j < v->n; j++) {
				int64_t ignored;

				if (cdec_field_dup(d, v, j, "config.plain") < 0)
					return -1;
				/* TSDBConfig's untagged OutOfOrderTimeWindow int64 is
				 * the yaml.v2 field "outofordertimewindow": Prometheus
				 * prints it in /api/v1/status/config and reads it back
				 * (then overwrites it from out_of_order_time_window). */
				if (strcmp(ydoc_map_key(v, j), "outofordertimewindow") == 0) {
					if (cdec_i64(d, ydoc_map_value(v, j), &ignored, "int64") < 0)
						return -1;
					continue;
				}
				if (strcmp(ydoc_map_key(v, j), "out_of_order_time_window") != 0)
					return cdec_unknown(d, v, j, "config.plain");
				if (cdec_duration(d, ydoc_map_value(v, j),
				    &c->out_of_order_time_window_ms) < 0)
					return -1;
			}
		} else if (strcmp(k, "exemplars") == 0) {
			if ((rc = cdec_struct(d, v, "config.ExemplarsConfig")) < 0)
				return -1;
			c->has_exemplars = rc > 0;
			for (j = 0; rc > 0 && j < v->n; j++) {
				if (cdec_field_dup(d, v, j, "config.ExemplarsConfig") < 0)
					return -1;
				if (strcmp(ydoc_map_key(v, j), "max_exemplars") != 0)
					return cdec_unknown(d, v, j, "config.ExemplarsConfig");
				if (cdec_int(d, ydoc_map_value(v, j), &c->max_exemplars) < 0)
					return -1;
			}
		} else {
			return cdec_unknown(d, n, i, "config.StorageConfig");
		}
	}
	return 0;
}

static void
cfg_tracing_free(struct cfg_tracing *t)
{
	mem_free(t->client_type);
	mem_free(t->endpoint);
	cfg_tls_free(&t->tls);
	cfg_kv_free(t->headers, t->n_headers);
	mem_free(t->compression);
}

static int
cdec_tracing(struct cdec *d, const struct ynode *n, struct cfg_tracing *t)
{
	const char *T = "config.plain";
	size_t i;
	int rc;

	if ((rc = cdec_struct(d, n, T)) <= 0)
		return rc;
	t->present = true;
	for (i = 0; i < n->n; i++) {
		const char *k = ydoc_map_key(n, i);
		const struct ynode *v = ydoc_map_value(n, i);

		if (cdec_field_dup(d, n, i, T) < 0)
			return -1;
		if (strcmp(k, "client_type") == 0) {
			rc = cdec_str(d, v, &t->client_type);
			if (rc == 0 && strcmp(t->client_type, "grpc") != 0 &&
			    strcmp(t->client_type, "http") != 0)
				return cdec_fail(d, v,
				    "expected tracing client type to be to be http or grpc, but got %s",
				    t->client_type);
		} else if (strcmp(k, "endpoint") == 0) {
			rc = cdec_str(d, v, &t->endpoint);
		} else if (strcmp(k, "sampling_fraction") == 0) {
			rc = cdec_float(d, v, &t->sampling_fraction);
		} else if (strcmp(k, "insecure") == 0) {
			rc = cdec_bool(d, v, &t->insecure);
		} else if (strcmp(k, "tls_config") == 0) {
			rc = cdec_tls(d, v, &t->tls);
		} else if (strcmp(k, "headers") == 0) {
			rc = cdec_strmap(d, v, &t->headers, &t->n_headers);
		} else if (strcmp(k, "compression") == 0) {
			rc = cdec_str(d, v, &t->compression);
		} else if (strcmp(k, "timeout") == 0) {
			rc = cdec_duration(d, v, &t->timeout_ms);
		} else {
			return cdec_unknown(d, n, i, T);
		}
		if (rc < 0)
			return -1;
	}
	if (cdec_validate_headers(d, n, t->headers, t->n_headers, true) < 0)
		return -1;
	if (t->endpoint[0] == '\0')
		return cdec_fail(d, n, "tracing endpoint must be set");
	if (t->compression[0] != '\0' && strcmp(t->compression, "gzip") != 0)
		return cdec_fail(d, n, "invalid compression type %s provided, valid options: gzip",
		    t->compression);
	return 0;
}

/* ---- the top level ------------------------------------------------------------ */

/* A rule file path: a glob only in the last element (Prometheus'
 * ^[^*]*(\*[^/]*)?$). */
static bool
cfg_rule_path_ok(const char *s)
{
	const char *star = strchr(s, '*');

	return star == NULL || strchr(star, '/') == NULL;
}

static int
cdec_list_of(struct cdec *d, const struct ynode *v, const char *tname)
{
	if (v->kind == YNODE_SCALAR && v->null)
		return 0;
	if (v->kind != YNODE_SEQ)
		return cdec_cannot(d, v, tname);
	return 1;
}

static int
cdec_config(struct cdec *d, const struct ynode *root, struct cfg *c)
{
	const char *T = "config.plain";
	const struct ynode *scrape_node = NULL, *rw_node = NULL, *rr_node = NULL;
	size_t i, j;
	int rc;

	if (root == NULL || (rc = cdec_struct(d, root, T)) == 0)
		return 0;
	if (rc < 0)
		return -1;
	for (i = 0; i < root->n; i++) {
		const char *k = ydoc_map_key(root, i);
		const struct ynode *v = ydoc_map_value(root, i);

		if (cdec_field_dup(d, root, i, T) < 0)
			return -1;
		if (strcmp(k, "global") == 0) {
			rc = cdec_global(d, v, c);
		} else if (strcmp(k, "alerting") == 0) {
			rc = cdec_alerting(d, v, c);
		} else if (strcmp(k, "rule_files") == 0) {
			rc = cdec_strlist(d, v, &c->rule_files, &c->n_rule_files);
		} else if (strcmp(k, "scrape_configs") == 0) {
			if ((rc = cdec_list_of(d, v, "[]*config.ScrapeConfig")) <= 0)
				goto next;
			scrape_node = v;
			c->scrape = mem_calloc(v->n ? v->n : 1, sizeof(*c->scrape));
			for (j = 0; j < v->n; j++) {
				c->n_scrape = j + 1;
				if (v->v[j]->kind == YNODE_SCALAR && v->v[j]->null) {
					cfg_http_init(&c->scrape[j].http);
					return cdec_fail(d, v->v[j],
					    "empty or null scrape config section");
				}
				if (cdec_scrape(d, v->v[j], &c->scrape[j]) < 0)
					return -1;
			}
		} else if (strcmp(k, "storage") == 0) {
			rc = cdec_storage(d, v, c);
		} else if (strcmp(k, "tracing") == 0) {
			rc = cdec_tracing(d, v, &c->tracing);
		} else if (strcmp(k, "remote_write") == 0) {
			if ((rc = cdec_list_of(d, v, "[]*config.RemoteWriteConfig")) <= 0)
				goto next;
			rw_node = v;
			c->remote_write = mem_calloc(v->n ? v->n : 1, sizeof(*c->remote_write));
			for (j = 0; j < v->n; j++) {
				c->n_remote_write = j + 1;
				if (v->v[j]->kind == YNODE_SCALAR && v->v[j]->null) {
					cfg_http_init(&c->remote_write[j].http);
					return cdec_fail(d, v->v[j],
					    "empty or null remote write config section");
				}
				if (cdec_remote_write(d, v->v[j], &c->remote_write[j]) < 0)
					return -1;
			}
		} else if (strcmp(k, "remote_read") == 0) {
			if ((rc = cdec_list_of(d, v, "[]*config.RemoteReadConfig")) <= 0)
				goto next;
			rr_node = v;
			c->remote_read = mem_calloc(v->n ? v->n : 1, sizeof(*c->remote_read));
			for (j = 0; j < v->n; j++) {
				c->n_remote_read = j + 1;
				if (v->v[j]->kind == YNODE_SCALAR && v->v[j]->null) {
					cfg_http_init(&c->remote_read[j].http);
					return cdec_fail(d, v->v[j],
					    "empty or null remote read config section");
				}
				if (cdec_remote_read(d, v->v[j], &c->remote_read[j]) < 0)
					return -1;
			}
		} else {
			return cdec_unknown(d, root, i, T);
		}
next:
		if (rc < 0)
			return -1;
	}

	for (i = 0; i < c->n_rule_files; i++) {
		if (!cfg_rule_path_ok(c->rule_files[i]))
			return cdec_failq(d, ydoc_map_get(root, "rule_files")->v[i],
			    "invalid rule file path %s", c->rule_files[i]);
		cfg_join_dir(d->dir, &c->rule_files[i]);
	}
	for (i = 0; i < c->n_scrape; i++) {
		struct cfg_scrape *s = &c->scrape[i];

		if (s->scrape_interval_ms == 0)
			s->scrape_interval_ms = c->scrape_interval_ms;
		if (s->scrape_timeout_ms > s->scrape_interval_ms)
			return cdec_failq(d, scrape_node->v[i],
			    "scrape timeout greater than scrape interval for scrape config with job name %s",
			    s->job_name);
		if (s->scrape_timeout_ms == 0)
			s->scrape_timeout_ms = c->scrape_timeout_ms > s->scrape_interval_ms ?
			    s->scrape_interval_ms : c->scrape_timeout_ms;
		for (j = 0; j < i; j++)
			if (strcmp(c->scrape[j].job_name, s->job_name) == 0)
				return cdec_failq(d, scrape_node->v[i],
				    "found multiple scrape configs with job name %s", s->job_name);
	}
	for (i = 0; i < c->n_remote_write; i++)
		for (j = 0; c->remote_write[i].name[0] && j < i; j++)
			if (strcmp(c->remote_write[j].name, c->remote_write[i].name) == 0)
				return cdec_failq(d, rw_node->v[i],
				    "found multiple remote write configs with job name %s",
				    c->remote_write[i].name);
	for (i = 0; i < c->n_remote_read; i++)
		for (j = 0; c->remote_read[i].name[0] && j < i; j++)
			if (strcmp(c->remote_read[j].name, c->remote_read[i].name) == 0)
				return cdec_failq(d, rr_node->v[i],
				    "found multiple remote read configs with job name %s",
				    c->remote_read[i].name);
	return 0;
}

static struct cfg *
cfg_new_defaults(void)
{
	struct cfg *c = mem_calloc(1, sizeof(*c));

	c->scrape_interval_ms = 60000;
	c->scrape_timeout_ms = 10000;
	c->evaluation_interval_ms = 60000;
	c->query_log_file = mem_strdup("");
	c->external_labels = labels_empty();
	c->tracing.client_type = mem_strdup("grpc");
	c->tracing.endpoint = mem_strdup("");
	c->tracing.compression = mem_strdup("");
	cfg_tls_init(&c->tracing.tls);
	return c;
}

/*
 * cfg_load_string: see config.h.
 */
struct cfg *
cfg_load_string(const char *buf, size_t len, const char *name, const char *dir,
    char *err, size_t errlen)
{
	struct cdec d;
	struct ydoc *doc;
	struct cfg *c;

	memset(&d, 0, sizeof(d));
	d.file = name ? name : "<config>";
	d.dir = dir;
	d.err = err;
	d.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	if ((doc = ydoc_parse(buf, len, d.file, err, errlen)) == NULL)
		return NULL;
	c = cfg_new_defaults();
	c->dir = mem_strdup(dir ? dir : ".");
	if (cdec_config(&d, doc->root, c) < 0) {
		ydoc_free(doc);
		cfg_free(c);
		return NULL;
	}
	ydoc_free(doc);
	return c;
}

/* cfg_read_file reads path whole (at most YDOC_MAX_INPUT + 1 bytes). Returns
 * the bytes (caller frees) or NULL with err. */
char *
cfg_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	struct strbuf sb = STRBUF_INIT;
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		strbuf_append(&sb, chunk, n);
		if (sb.len > YDOC_MAX_INPUT) {
			fclose(f);
			strbuf_free(&sb);
			snprintf(err, errlen, "%s: file is larger than the limit of %u bytes",
			    path, YDOC_MAX_INPUT);
			return NULL;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "read %s: %s", path, strerror(errno));
		fclose(f);
		strbuf_free(&sb);
		return NULL;
	}
	fclose(f);
	return strbuf_detach(&sb, len);
}

/*
 * cfg_load_file: see config.h.
 */
struct cfg *
cfg_load_file(const char *path, char *err, size_t errlen)
{
	struct cfg *c;
	char *buf, *dir, *slash;
	size_t len;

	if ((buf = cfg_read_file(path, &len, err, errlen)) == NULL)
		return NULL;
	dir = mem_strdup(path);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		mem_free(dir);
		dir = mem_strdup(".");
	} else if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	c = cfg_load_string(buf, len, path, dir, err, errlen);
	mem_free(buf);
	mem_free(dir);
	if (c != NULL)
		c->path = mem_strdup(path);
	return c;
}

/*
 * cfg_free: see config.h.
 */
void
cfg_free(struct cfg *c)
{
	size_t i;

	if (c == NULL)
		return;
	mem_free(c->path);
	mem_free(c->dir);
	mem_free(c->query_log_file);
	labels_free(c->external_labels);
	cfg_strlist_free(c->rule_files, c->n_rule_files);
	for (i = 0; i < c->n_scrape; i++)
		cfg_scrape_free(&c->scrape[i]);
	mem_free(c->scrape);
	cfg_relabels_free(&c->alert_relabel);
	for (i = 0; i < c->n_alertmanagers; i++)
		cfg_alertmanager_free(&c->alertmanagers[i]);
	mem_free(c->alertmanagers);
	for (i = 0; i < c->n_remote_write; i++)
		cfg_remote_write_free(&c->remote_write[i]);
	mem_free(c->remote_write);
	for (i = 0; i < c->n_remote_read; i++)
		cfg_remote_read_free(&c->remote_read[i]);
	mem_free(c->remote_read);
	cfg_tracing_free(&c->tracing);
	mem_free(c);
}
