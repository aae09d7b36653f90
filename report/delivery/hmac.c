/*
 * hmac.c - HMAC-SHA256 and SHA-256 through OpenSSL's one-shot functions.
 */
#include "hmac.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"

static void to_hex(const unsigned char *md, unsigned n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[2 * n] = '\0';
}

int hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (keylen > INT32_MAX)
		return -1;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &mdlen) || mdlen != 32)
		return -1;
	to_hex(md, mdlen, out);
	return 0;
}

int sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -1;
	to_hex(md, mdlen, out);
	return 0;
}

int webhook_signature(const char *secret, size_t secretlen, int64_t ts, const void *body, size_t bodylen,
		      char out[WEBHOOK_SIG_LEN])
{
	struct buf m;
	buf_init(&m, 0);
	int rc = -1;
	if (buf_printf(&m, "%" PRId64 ".", ts) == 0 && buf_append(&m, body, bodylen) == 0) {
		memcpy(out, "sha256=", 7);
		rc = hmac_sha256_hex(secret, secretlen, m.data, m.len, out + 7);
	}
	buf_release(&m);
	return rc;
}
