/*
 * ascii8.h - 8 bytes at a time (SWAR) helpers for ASCII text.
 */
#ifndef CDRFLOW_ASCII8_H
#define CDRFLOW_ASCII8_H

#include <stdint.h>

/* w with every byte 'A'-'Z' made lower case (as the C locale's tolower;
 * other bytes as they are).  No carry crosses a byte. */
static inline uint64_t ascii8_fold(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t low7 = w & ~highs;
	uint64_t upper = ((low7 + ones * (0x80 - 'A')) ^ (low7 + ones * (0x80 - 'Z' - 1))) & ~w & highs;
	return w | upper >> 2;
}

#endif
