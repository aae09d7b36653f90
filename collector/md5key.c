/* The low-level MD5 API is deprecated in OpenSSL 3 (still built in Debian
 * 12's libcrypto3); see md5key.h for why it is used here. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "md5key.h"

#include <openssl/crypto.h>
#include <openssl/md5.h>
#include <string.h>

int ami_md5_key(const char *challenge, const char *secret, char hex[33])
{
	static const char digits[] = "0123456789abcdef";
	MD5_CTX c;
	unsigned char md[MD5_DIGEST_LENGTH];
	int ok = MD5_Init(&c) == 1 && MD5_Update(&c, challenge, strlen(challenge)) == 1 &&
		 MD5_Update(&c, secret, strlen(secret)) == 1 && MD5_Final(md, &c) == 1;
	OPENSSL_cleanse(&c, sizeof c); /* it saw the secret */
	if (!ok) {
		hex[0] = '\0';
		return -1;
	}
	for (int i = 0; i < MD5_DIGEST_LENGTH; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[32] = '\0';
	OPENSSL_cleanse(md, sizeof md);
	return 0;
}
