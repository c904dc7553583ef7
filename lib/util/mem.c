/* lib/util/mem.c - the allocation seam: abort-on-OOM and try variants.
 *
 * When configure links jemalloc, malloc() here is jemalloc's (Debian's build
 * replaces the system allocator), so no prefix is needed. The failure
 * injection counter is the only mutable state; it is atomic so tests may call
 * allocating code from several threads.
 */
#include "config.h"

#include "util/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long mem_fail_countdown = -1;

static void
mem_oom(size_t n)
{
	fprintf(stderr, "strata: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
mem_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		mem_oom(n);
	return p;
}

void *
mem_calloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		mem_oom(SIZE_MAX);
	p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		mem_oom(n * size);
	return p;
}

void *
mem_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		mem_oom(n);
	return q;
}

char *
mem_strndup(const char *s, size_t len)
{
	char *p = mem_alloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
mem_strdup(const char *s)
{
	return mem_strndup(s, strlen(s));
}

void
mem_free(void *p)
{
	free(p);
}

static int
mem_injected_failure(void)
{
	long v = atomic_load(&mem_fail_countdown);

	while (v >= 0) {
		if (atomic_compare_exchange_weak(&mem_fail_countdown, &v, v - 1))
			return v == 0;
	}
	return 0;
}

void *
mem_try_alloc(size_t n)
{
	if (mem_injected_failure())
		return NULL;
	return malloc(n ? n : 1);
}

void *
mem_try_realloc(void *p, size_t n)
{
	if (mem_injected_failure())
		return NULL;
	return realloc(p, n ? n : 1);
}

void
mem_fail_after(long n)
{
	atomic_store(&mem_fail_countdown, n < 0 ? -1 : n);
}
