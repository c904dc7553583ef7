/* tool/shard_owner.c - strata-tool shard owner: which shard or leaf owns a target.
 *
 * "strata-tool shard owner --count N ADDRESS..." prints "ADDRESS INDEX" for
 * each address, INDEX being relabel_hashmod(ADDRESS, N): the same number a
 * Prometheus "hashmod" rule on __address__ with modulus N computes, and the
 * one strata-leaf's --shard.count/--shard.index filter uses.
 *
 * "strata-tool shard owner --peers URL,... [--replication-factor R]
 * [--dead URL,...] ADDRESS..." prints "ADDRESS URL[,URL...]": the R members
 * owning each address under dynamic sharding (shard/shard.h: rendezvous
 * hashing), best first, with the --dead members left out as a leaf would
 * once it has seen them die. Same peer list, same answer as the leaves.
 *
 * With no address on the command line, addresses are read from stdin, one
 * a line (surrounding blanks trimmed, blank lines skipped). Single-threaded.
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
#include "shard/shard.h"
#include "tool/tool.h"
#include "util/mem.h"

#define SHARD_OWNER_USAGE \
	"usage: strata-tool shard owner --count N [ADDRESS...]\n" \
	"       strata-tool shard owner --peers URL,... [--replication-factor R] [--dead URL,...] [ADDRESS...]\n" \
	"  --count: prints \"ADDRESS INDEX\" per address, the hashmod shard (0..N-1) owning it.\n" \
	"  --peers: prints \"ADDRESS URL[,URL...]\", the R leaves owning it under dynamic\n" \
	"  sharding (rendezvous hashing), best first; --dead leaves out members that are down.\n" \
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

/* What to compute: a static count, or a dynamic group. */
struct shard_owner_how {
	uint64_t count;		/* static when > 0 */
	char **urls;		/* dynamic: sorted canonical member URLs */
	size_t n;
	uint64_t *seeds;
	bool *live;
	size_t r;
	size_t *out;
};

static void
shard_owner_print(const char *addr, size_t len, const struct shard_owner_how *h)
{
	size_t k, i;

	if (h->count > 0) {
		printf("%.*s %" PRIu64 "\n", (int)len, addr, relabel_hashmod(addr, len, h->count));
		return;
	}
	k = shard_hrw_owners(h->seeds, h->live, h->n, addr, len, h->r, h->out);
	printf("%.*s ", (int)len, addr);
	for (i = 0; i < k; i++)
		printf("%s%s", i > 0 ? "," : "", h->urls[h->out[i]]);
	printf("%s\n", k == 0 ? "-" : "");
}

/* shard_owner_stdin reads addresses from stdin. Returns how many it printed. */
static size_t
shard_owner_stdin(const struct shard_owner_how *h)
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
		shard_owner_print(b, (size_t)(e - b), h);
		n++;
	}
	free(line);	/* allocated by getline(), not by mem_* */
	return n;
}

/* shard_owner_value takes the value of flag name from argv[*i] ("--name=v"
 * or "--name v"). Returns NULL when a is not that flag; *missing is set
 * when the value is absent. */
static const char *
shard_owner_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	const char *a = argv[*i];
	size_t len = strlen(name);

	*missing = false;
	if (strncmp(a, name, len) != 0 || (a[len] != '\0' && a[len] != '='))
		return NULL;
	if (a[len] == '=')
		return a + len + 1;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static void
shard_owner_how_free(struct shard_owner_how *h)
{
	shard_urls_free(h->urls, h->n);
	mem_free(h->seeds);
	mem_free(h->live);
	mem_free(h->out);
}

/* shard_owner_dynamic prepares h for peers (and dead). Returns 0 or 2. */
static int
shard_owner_dynamic(struct shard_owner_how *h, const char *peers, const char *dead,
    uint64_t r)
{
	char err[512], **gone = NULL;
	size_t ngone = 0, i, j;

	if (shard_parse_peers(peers, &h->urls, &h->n, err, sizeof(err)) < 0)
		return shard_owner_usage("--peers: %s", err);
	if (r > h->n) {
		snprintf(err, sizeof(err), "--replication-factor=%" PRIu64 " is larger than the group (%zu members in --peers)",
		    r, h->n);
		return shard_owner_usage("%s", err);
	}
	h->r = (size_t)r;
	h->seeds = mem_calloc(h->n, sizeof(*h->seeds));
	h->live = mem_calloc(h->n, sizeof(*h->live));
	h->out = mem_calloc(h->n, sizeof(*h->out));
	for (i = 0; i < h->n; i++) {
		h->seeds[i] = shard_member_seed(h->urls[i]);
		h->live[i] = true;
	}
	if (dead != NULL && dead[0] != '\0') {
		if (shard_parse_peers(dead, &gone, &ngone, err, sizeof(err)) < 0)
			return shard_owner_usage("--dead: %s", err);
		for (j = 0; j < ngone; j++) {
			for (i = 0; i < h->n; i++)
				if (strcmp(h->urls[i], gone[j]) == 0)
					break;
			if (i == h->n) {
				snprintf(err, sizeof(err), "--dead: %s is not in --peers", gone[j]);
				shard_urls_free(gone, ngone);
				return shard_owner_usage("%s", err);
			}
			h->live[i] = false;
		}
		shard_urls_free(gone, ngone);
	}
	return 0;
}

int
tool_shard_owner(int argc, char **argv)
{
	struct shard_owner_how how;
	uint64_t count = 0, r = 1;
	const char *peers = NULL, *dead = NULL, *v;
	bool have_count = false, have_r = false, flags_done = false, missing;
	int i, first_addr = -1, n_addr = 0, rc = 0;

	memset(&how, 0, sizeof(how));
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
		if ((v = shard_owner_value(argc, argv, &i, "--count", &missing)) != NULL || missing) {
			if (missing)
				return shard_owner_usage("%s needs a value", "--count");
			if (shard_owner_parse_count(v, &count) < 0)
				return shard_owner_usage("invalid --count \"%s\": want an integer from 1 to 2^64-1", v);
			have_count = true;
			continue;
		}
		if ((v = shard_owner_value(argc, argv, &i, "--replication-factor", &missing)) != NULL || missing) {
			if (missing)
				return shard_owner_usage("%s needs a value", "--replication-factor");
			if (shard_owner_parse_count(v, &r) < 0)
				return shard_owner_usage("invalid --replication-factor \"%s\": want an integer from 1", v);
			have_r = true;
			continue;
		}
		if ((v = shard_owner_value(argc, argv, &i, "--peers", &missing)) != NULL || missing) {
			if (missing)
				return shard_owner_usage("%s needs a value", "--peers");
			peers = v;
			continue;
		}
		if ((v = shard_owner_value(argc, argv, &i, "--dead", &missing)) != NULL || missing) {
			if (missing)
				return shard_owner_usage("%s needs a value", "--dead");
			dead = v;
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
	if (have_count && peers != NULL)
		return shard_owner_usage("%s", "--count and --peers exclude each other (static or dynamic sharding)");
	if (!have_count && peers == NULL)
		return shard_owner_usage("%s", "missing --count N or --peers URL,...");
	if (have_count && (have_r || dead != NULL))
		return shard_owner_usage("%s", "--replication-factor and --dead need --peers");
	if (have_count) {
		how.count = count;
	} else if ((rc = shard_owner_dynamic(&how, peers, dead, r)) != 0) {
		shard_owner_how_free(&how);
		return rc;
	}
	if (n_addr == 0) {
		if (isatty(STDIN_FILENO))
			rc = shard_owner_usage("%s", "no address given (pass ADDRESS... or pipe them on stdin)");
		else if (shard_owner_stdin(&how) == 0)
			rc = shard_owner_usage("%s", "no address given (stdin was empty)");
	} else {
		for (i = 0; i < n_addr; i++)
			shard_owner_print(argv[first_addr + i], strlen(argv[first_addr + i]), &how);
	}
	shard_owner_how_free(&how);
	if (rc != 0)
		return rc;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "strata-tool shard owner: writing output: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
