/* lib/util/mem.h - the one allocation seam of strata.
 *
 * Every allocation goes through these functions (jemalloc underneath when the
 * build links it). mem_alloc() and friends abort on out-of-memory: use them for
 * control structures whose size the program chooses. The mem_try_* variants
 * return NULL instead: use them for sizes chosen by remote input (a scrape
 * body, a request), and turn NULL into an error for that input only.
 *
 * Tests can make the try variants fail on purpose with mem_fail_after().
 */
#ifndef STRATA_UTIL_MEM_H
#define STRATA_UTIL_MEM_H

#include <stddef.h>

/* mem_alloc returns n bytes of uninitialised memory; aborts on OOM. */
void *mem_alloc(size_t n);
/* mem_calloc returns n*size zeroed bytes; aborts on OOM or overflow. */
void *mem_calloc(size_t n, size_t size);
/* mem_realloc resizes p (may be NULL) to n bytes; aborts on OOM. */
void *mem_realloc(void *p, size_t n);
/* mem_strdup copies s; caller frees with mem_free(). */
char *mem_strdup(const char *s);
/* mem_strndup copies len bytes of s and a NUL; caller frees with mem_free(). */
char *mem_strndup(const char *s, size_t len);
/* mem_free releases p; NULL is a no-op. */
void mem_free(void *p);

/* mem_try_alloc returns n bytes or NULL on OOM (or an injected failure). */
void *mem_try_alloc(size_t n);
/* mem_try_realloc resizes p or returns NULL, leaving p valid. */
void *mem_try_realloc(void *p, size_t n);

/* mem_fail_after makes the (n+1)th following mem_try_* call fail; a negative
 * n disables injection. Only tests call this. */
void mem_fail_after(long n);

/* MEM_FREE frees p and sets it to NULL. */
#define MEM_FREE(p) do { mem_free(p); (p) = NULL; } while (0)

#endif
