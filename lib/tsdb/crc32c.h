/* lib/tsdb/crc32c.h - CRC-32C (Castagnoli), the checksum of WAL records,
 * block index sections and block chunks.
 *
 * The polynomial is iSCSI's (reflected 0x82F63B78), as in Prometheus' WAL
 * and index. On x86-64 with SSE4.2 the CPU's crc32 instruction computes it
 * (about 8 bytes per cycle); elsewhere a slicing-by-8 table does. Stateless
 * and thread-safe (the table is built once, under pthread_once).
 */
#ifndef STRATA_TSDB_CRC32C_H
#define STRATA_TSDB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c_update continues crc (0 to start) over len bytes at p and returns
 * the new value: crc32c_update(crc32c_update(0, a), b) == crc32c(a || b). */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t len);
/* crc32c returns the CRC-32C of len bytes at p ("123456789" -> 0xe3069283). */
uint32_t crc32c(const void *p, size_t len);
/* crc32c_update_portable is crc32c_update on the table path only (tests
 * compare both paths). */
uint32_t crc32c_update_portable(uint32_t crc, const void *p, size_t len);

#endif
