/*
 * md5key.h - the Key of an AMI "AuthType: MD5" login: the hex MD5 of the
 * challenge followed by the secret.
 *
 * OpenSSL's low-level MD5 is used, not EVP: an EVP digest loads the
 * default provider and its configuration on first use (about 2 MB of
 * resident memory for the life of the daemon, for one digest per login).
 */
#ifndef CDRFLOW_MD5KEY_H
#define CDRFLOW_MD5KEY_H

/* hex: 32 lowercase hex digits and a NUL.  0, or -1 if MD5 failed. */
int ami_md5_key(const char *challenge, const char *secret, char hex[33]);

#endif
