/*
 * crc32c.h - CRC-32C (Castagnoli), as used by iSCSI, ext4 and many WALs.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8
 * table otherwise.  crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef CDRFLOW_CRC32C_H
#define CDRFLOW_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over n bytes. */
uint32_t crc32c(uint32_t crc, const void *data, size_t n);
/* The portable implementation, exposed so tests can compare both paths. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t n);

#endif
