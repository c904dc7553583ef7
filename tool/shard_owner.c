/* tool/shard_owner.c - strata-tool shard owner: which static shard owns a target.
 *
 * "strata-tool shard owner --count N ADDRESS..." prints "ADDRESS INDEX" for
 * each address, INDEX being relabel_hashmod(ADDRESS, N): the same number a
 * Prometheus "hashmod" rule on __address__ with modulus N computes, and the
 * one strata-leaf's --shard.count/--shard.index filter uses. With no address
 * on the command line, addresses are read from stdin, one a line
 * (surrounding blanks trimmed, blank lines skipped). Single-threaded.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relabel/relabel.h"
#include "tool/tool.h"

#define SHARD_OWNER_USAGE \
	"usage: strata-tool shard owner --count N [ADDRESS...]\n" \
	"  Prints \"ADDRESS INDEX\" per address: the hashmod shard (0..N-1) owning it.\n" \
	"  With no ADDRESS, reads addresses from stdin, one a line.\n"

static int
shard_owner_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "strata-tool shard owner: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", SHARD_OWNER_USAGE);
	return 2;
}

/* shard_owner_parse_count parses N: a decimal integer >= 1. */
static int
shard_owner_parse_count(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	const char *p;

	if (s[0] == '\0')
		return -1;
	for (p = s; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static void
shard_owner_print(const char *addr, size_t len, uint64_t count)
{
	printf("%.*s %" PRIu64 "\n", (int)len, addr, relabel_hashmod(addr, len, count));
}

/* shard_owner_stdin reads addresses from stdin. Returns how many it printed. */
static size_t
shard_owner_stdin(uint64_t count)
{
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t got;

	while ((got = getline(&line, &cap, stdin)) >= 0) {
		const char *b = line, *e = line + got;

		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' ||
		    e[-1] == '\t'))
			e--;
		if (e == b)
			continue;
		shard_owner_print(b, (size_t)(e - b), count);
		n++;
	}
	free(line);	/* allocated by getline(), not by mem_* */
	return n;
}

int
tool_shard_owner(int argc, char **argv)
{
	uint64_t count = 0;
	bool have_count = false, flags_done = false;
	int i, first_addr = -1, n_addr = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (flags_done)
			goto address;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(SHARD_OWNER_USAGE, stdout);
			return 0;
		}
		if (strcmp(a, "--") == 0) {
			flags_done = true;
			continue;
		}
		if (strcmp(a, "--count") == 0 || strncmp(a, "--count=", 8) == 0) {
			const char *v;

			if (a[7] == '=') {
				v = a + 8;
			} else {
				if (i + 1 >= argc)
					return shard_owner_usage("%s needs a value", "--count");
				v = argv[++i];
			}
			if (shard_owner_parse_count(v, &count) < 0)
				return shard_owner_usage("invalid --count \"%s\": want an integer from 1 to 2^64-1", v);
			have_count = true;
			continue;
		}
		if (a[0] == '-' && a[1] != '\0')
			return shard_owner_usage("unknown flag \"%s\"", a);
address:
		/* Addresses and flags may mix; collect addresses in place. */
		if (first_addr < 0)
			first_addr = i;
		argv[first_addr + n_addr++] = argv[i];
	}
	if (!have_count)
		return shard_owner_usage("%s", "missing --count N");
	if (n_addr == 0) {
		if (isatty(STDIN_FILENO))
			return shard_owner_usage("%s", "no address given (pass ADDRESS... or pipe them on stdin)");
		if (shard_owner_stdin(count) == 0)
			return shard_owner_usage("%s", "no address given (stdin was empty)");
	} else {
		for (i = 0; i < n_addr; i++)
			shard_owner_print(argv[first_addr + i], strlen(argv[first_addr + i]), count);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "strata-tool shard owner: writing output: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
