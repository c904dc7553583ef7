/* lib/util/flag.h - command-line flags the way Prometheus (kingpin) takes them.
 *
 * A program describes its flags in a table of struct flag; flag_parse() fills
 * each entry's value text from argv ("--name=value", "--name value",
 * "--bool", "--no-bool"), checks it against the flag's kind and refuses
 * unknown flags. Values stay as text (that is what /api/v1/status/flags
 * shows); typed getters convert. The table owns the value strings: release
 * them with flag_free().
 */
#ifndef STRATA_UTIL_FLAG_H
#define STRATA_UTIL_FLAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum flag_kind {
	FLAG_STRING,
	FLAG_BOOL,
	FLAG_DURATION,	/* Prometheus duration: "5m" */
	FLAG_INT,
	FLAG_BYTES,	/* "512MB", "0B" (units B, KB, MB, GB, TB, PB, EB; powers of 1024) */
};

struct flag {
	const char *name;	/* without the leading "--" */
	enum flag_kind kind;
	const char *def;	/* default as text; NULL for none */
	const char *help;
	char *value;		/* owned; the default until set */
	bool set;		/* given on the command line */
};

enum {
	FLAG_OK = 0,
	FLAG_HELP = 1,		/* --help or -h was given */
	FLAG_VERSION = 2,	/* --version was given */
	FLAG_ERROR = -1,
};

/* flag_parse parses argv[1..argc). Positional arguments are collected in
 * order into args (borrowed from argv; at most max_args) and counted in
 * *nargs; pass max_args 0 to refuse them. Returns FLAG_OK, FLAG_HELP,
 * FLAG_VERSION or FLAG_ERROR with the reason in err. */
int flag_parse(struct flag *flags, size_t n, int argc, char **argv,
    char **args, size_t max_args, size_t *nargs, char *err, size_t errlen);
/* flag_usage prints a --help text. */
void flag_usage(FILE *out, const char *usage, const char *about,
    const struct flag *flags, size_t n);
void flag_free(struct flag *flags, size_t n);

/* flag_find returns the entry called name, or NULL. */
struct flag *flag_find(struct flag *flags, size_t n, const char *name);
/* Typed getters for a flag that flag_parse() has checked; name must exist. */
const char *flag_str(struct flag *flags, size_t n, const char *name);
bool flag_bool(struct flag *flags, size_t n, const char *name);
int64_t flag_duration_ms(struct flag *flags, size_t n, const char *name);
int64_t flag_int(struct flag *flags, size_t n, const char *name);
int64_t flag_bytes(struct flag *flags, size_t n, const char *name);

/* flag_parse_bytes parses a Prometheus byte size ("512MB"). Returns 0 or -1. */
int flag_parse_bytes(const char *s, int64_t *out);

#endif
