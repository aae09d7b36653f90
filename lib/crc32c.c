#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	pthread_once(&table_once, table_init);
	crc = ~crc;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc; /* little-endian hosts only; see the big-endian path below */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		n -= 8;
#else
		break;
#endif
	}
	while (n--)
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
/* Three streams at once: the crc32 instruction takes 3 cycles but can start
 * every cycle, so a buffer of at least 3 x SHORT bytes is run as three
 * SHORT-byte blocks in parallel, their CRCs then joined by shifting one
 * over the next block's length (CRC is linear: crc(A B) = crc(A) shifted by
 * |B| zero bytes, xor crc(B) from a zero state).  The shift is four lookups
 * in shift_short, built once from the polynomial (M. Adler's method). */
#define SHORT 64
static uint32_t shift_short[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

/* mat (32 x 32 over GF(2), one column per word) times vec */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	while (vec) {
		if (vec & 1)
			sum ^= *mat;
		vec >>= 1;
		mat++;
	}
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

static void shift_init(void)
{
	/* the operator for one zero bit, then squared up to SHORT zero bytes */
	uint32_t op[32], sq[32];
	op[0] = POLY;
	for (int n = 1; n < 32; n++)
		op[n] = 1u << (n - 1);
	gf2_square(sq, op); /* 2 bits */
	gf2_square(op, sq); /* 4 bits */
	for (size_t len = 1; len < SHORT * 2; len *= 2) { /* op: 8 bits = 1 byte, then 2, 4, ... SHORT bytes */
		gf2_square(sq, op);
		memcpy(op, sq, sizeof op);
	}
	for (uint32_t n = 0; n < 256; n++) {
		shift_short[0][n] = gf2_times(op, n);
		shift_short[1][n] = gf2_times(op, n << 8);
		shift_short[2][n] = gf2_times(op, n << 16);
		shift_short[3][n] = gf2_times(op, n << 24);
	}
}

static inline uint64_t shift_by_short(uint64_t crc)
{
	return shift_short[0][crc & 0xff] ^ shift_short[1][(crc >> 8) & 0xff] ^ shift_short[2][(crc >> 16) & 0xff] ^
	       shift_short[3][(crc >> 24) & 0xff];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t c = ~crc;
	while (n && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		n--;
	}
	while (n >= 3 * SHORT) {
		uint64_t c1 = 0, c2 = 0;
		for (const unsigned char *end = p + SHORT; p < end; p += 8) {
			uint64_t w0, w1, w2;
			memcpy(&w0, p, 8);
			memcpy(&w1, p + SHORT, 8);
			memcpy(&w2, p + 2 * SHORT, 8);
			c = __builtin_ia32_crc32di(c, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c = shift_by_short(c) ^ c1;
		c = shift_by_short(c) ^ c2;
		p += 2 * SHORT;
		n -= 3 * SHORT;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		n -= 8;
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t n)
{
	static _Atomic int have_hw = -1;
	if (have_hw < 0) {
		__builtin_cpu_init();
		pthread_once(&shift_once, shift_init);
		have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	}
	return have_hw ? crc32c_hw(crc, data, n) : crc32c_sw(crc, data, n);
}
#else
uint32_t crc32c(uint32_t crc, const void *data, size_t n)
{
	return crc32c_sw(crc, data, n);
}
#endif
