/* lib/util/flag.c - kingpin-compatible command-line flag parsing. */
#include "config.h"

#include "util/flag.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"
#include "util/time.h"

struct flag *
flag_find(struct flag *flags, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(flags[i].name, name) == 0)
			return &flags[i];
	return NULL;
}

static struct flag *
flag_findn(struct flag *flags, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

static int
flag_parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int
flag_parse_bytes(const char *s, int64_t *out)
{
	static const char *const units[] = { "B", "KB", "MB", "GB", "TB", "PB", "EB" };
	char *end;
	unsigned long long v;
	size_t u;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *s == '-')
		return -1;
	for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(end, units[u]) == 0) {
			unsigned long long mult = 1ULL << (10 * u);

			if (v > (unsigned long long)INT64_MAX / mult)
				return -1;
			*out = (int64_t)(v * mult);
			return 0;
		}
	}
	return -1;
}

static int
flag_check(const struct flag *f, const char *v, char *err, size_t errlen)
{
	int64_t x;
	char derr[128];

	switch (f->kind) {
	case FLAG_STRING:
		return 0;
	case FLAG_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
			return 0;
		snprintf(err, errlen, "--%s: expected true or false, got \"%s\"", f->name, v);
		return -1;
	case FLAG_DURATION:
		if (time_parse_duration(v, strlen(v), &x, derr, sizeof(derr)) == 0)
			return 0;
		snprintf(err, errlen, "--%s: %s", f->name, derr);
		return -1;
	case FLAG_INT:
		if (flag_parse_int(v, &x) == 0)
			return 0;
		snprintf(err, errlen, "--%s: expected an integer, got \"%s\"", f->name, v);
		return -1;
	case FLAG_BYTES:
		if (flag_parse_bytes(v, &x) == 0)
			return 0;
		snprintf(err, errlen, "--%s: expected a size such as 512MB, got \"%s\"", f->name, v);
		return -1;
	}
	return -1;
}

static void
flag_set(struct flag *f, const char *v)
{
	mem_free(f->value);
	f->value = mem_strdup(v);
	f->set = true;
}

int
flag_parse(struct flag *flags, size_t n, int argc, char **argv,
    char **args, size_t max_args, size_t *nargs, char *err, size_t errlen)
{
	size_t i;
	int a;
	bool only_args = false;

	*nargs = 0;
	for (i = 0; i < n; i++)
		if (flags[i].value == NULL)
			flags[i].value = mem_strdup(flags[i].def ? flags[i].def : "");
	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *name, *eq, *val;
		struct flag *f;
		size_t nlen;
		bool negated = false;

		if (only_args || arg[0] != '-' || arg[1] == '\0') {
			if (*nargs >= max_args) {
				snprintf(err, errlen, "unexpected argument \"%s\"", arg);
				return FLAG_ERROR;
			}
			args[(*nargs)++] = argv[a];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_args = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
			return FLAG_HELP;
		if (strcmp(arg, "--version") == 0)
			return FLAG_VERSION;
		if (arg[1] != '-') {
			snprintf(err, errlen, "unknown short flag '%s'", arg);
			return FLAG_ERROR;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		nlen = eq ? (size_t)(eq - name) : strlen(name);
		f = flag_findn(flags, n, name, nlen);
		if (f == NULL && nlen > 3 && strncmp(name, "no-", 3) == 0) {
			f = flag_findn(flags, n, name + 3, nlen - 3);
			if (f != NULL && f->kind == FLAG_BOOL && eq == NULL)
				negated = true;
			else
				f = NULL;
		}
		if (f == NULL) {
			snprintf(err, errlen, "unknown long flag '--%.*s'", (int)nlen, name);
			return FLAG_ERROR;
		}
		if (eq != NULL) {
			val = eq + 1;
		} else if (f->kind == FLAG_BOOL) {
			val = negated ? "false" : "true";
		} else if (a + 1 < argc) {
			val = argv[++a];
		} else {
			snprintf(err, errlen, "expected argument for flag '--%s'", f->name);
			return FLAG_ERROR;
		}
		if (flag_check(f, val, err, errlen) < 0)
			return FLAG_ERROR;
		flag_set(f, val);
	}
	for (i = 0; i < n; i++)
		if (!flags[i].set && flag_check(&flags[i], flags[i].value, err, errlen) < 0 &&
		    flags[i].value[0] != '\0')
			return FLAG_ERROR;
	return FLAG_OK;
}

void
flag_usage(FILE *out, const char *usage, const char *about,
    const struct flag *flags, size_t n)
{
	size_t i;

	fprintf(out, "usage: %s\n\n%s\n\nFlags:\n", usage, about);
	fprintf(out, "  -h, --help  Show this help.\n");
	fprintf(out, "  --version   Show the version.\n");
	for (i = 0; i < n; i++) {
		const struct flag *f = &flags[i];

		if (f->kind == FLAG_BOOL)
			fprintf(out, "  --[no-]%s\n", f->name);
		else
			fprintf(out, "  --%s=%s\n", f->name,
			    f->kind == FLAG_DURATION ? "DURATION" :
			    f->kind == FLAG_INT ? "INT" :
			    f->kind == FLAG_BYTES ? "SIZE" : "VALUE");
		fprintf(out, "      %s", f->help);
		if (f->def != NULL && f->def[0] != '\0')
			fprintf(out, " (default: %s)", f->def);
		fputc('\n', out);
	}
}

void
flag_free(struct flag *flags, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		MEM_FREE(flags[i].value);
		flags[i].set = false;
	}
}

const char *
flag_str(struct flag *flags, size_t n, const char *name)
{
	struct flag *f = flag_find(flags, n, name);

	return f != NULL && f->value != NULL ? f->value : "";
}

bool
flag_bool(struct flag *flags, size_t n, const char *name)
{
	return strcmp(flag_str(flags, n, name), "true") == 0;
}

int64_t
flag_duration_ms(struct flag *flags, size_t n, const char *name)
{
	const char *v = flag_str(flags, n, name);
	int64_t ms = 0;
	char err[64];

	if (time_parse_duration(v, strlen(v), &ms, err, sizeof(err)) < 0)
		return 0;
	return ms;
}

int64_t
flag_int(struct flag *flags, size_t n, const char *name)
{
	int64_t v = 0;

	flag_parse_int(flag_str(flags, n, name), &v);
	return v;
}

int64_t
flag_bytes(struct flag *flags, size_t n, const char *name)
{
	int64_t v = 0;

	flag_parse_bytes(flag_str(flags, n, name), &v);
	return v;
}
