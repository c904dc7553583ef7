/* lib/tsdb/crc32c.c - CRC-32C with the SSE4.2 instruction or a table.
 *
 * The table path is slicing-by-8 over eight 256-entry tables built at first
 * use; the hardware path is chosen once at first use with
 * __builtin_cpu_supports. Both give the same values (the unit tests check
 * them against each other and the standard check value).
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "tsdb/crc32c.h"

#define POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc_table[j][i] = (crc_table[j - 1][i] >> 8) ^
			    crc_table[0][crc_table[j - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t
crc_sw(uint32_t c, const uint8_t *p, size_t len)
{
	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= c;
		c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
		    crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
		    crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
		    crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc_hw_run(uint32_t c, const uint8_t *p, size_t len)
{
	uint64_t c64;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = __builtin_ia32_crc32qi(c, *p++);
		len--;
	}
	c64 = c;
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	while (len-- > 0)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

uint32_t
crc32c_update(uint32_t crc, const void *p, size_t len)
{
	uint32_t c = ~crc;

	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_hw_run(c, p, len);
#endif
	return ~crc_sw(c, p, len);
}

uint32_t
crc32c(const void *p, size_t len)
{
	return crc32c_update(0, p, len);
}

uint32_t
crc32c_update_portable(uint32_t crc, const void *p, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw(~crc, p, len);
}
