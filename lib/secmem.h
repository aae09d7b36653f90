/*
 * secmem.h - memory for secrets: its own anonymous mapping, excluded from
 * core dumps (MADV_DONTDUMP) and from swap (mlock) where the platform
 * allows, wiped (explicit_bzero) before it is unmapped.
 */
#ifndef CDRFLOW_SECMEM_H
#define CDRFLOW_SECMEM_H

#include <stddef.h>

/* A zeroed buffer of at least n bytes; NULL on failure (errno set). */
char *secmem_alloc(size_t n);
/* A NUL-terminated copy of s[0..n) in secret memory; NULL on failure. */
char *secmem_dup(const char *s, size_t n);
/* Wipe and unmap (NULL is fine). */
void secmem_free(char *p);

#endif
