#include "secmem.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The mapping starts with its length, the caller's bytes follow. */
#define SECMEM_HDR 16

char *secmem_alloc(size_t n)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	if (n > SIZE_MAX - SECMEM_HDR - page) {
		errno = ENOMEM;
		return NULL;
	}
	size_t len = (n + SECMEM_HDR + page - 1) / page * page;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_DONTDUMP
	(void)madvise(p, len, MADV_DONTDUMP); /* best effort: not in a core file */
#endif
	(void)mlock(p, len); /* best effort: not written to swap (RLIMIT_MEMLOCK may refuse) */
	memcpy(p, &len, sizeof len);
	return (char *)p + SECMEM_HDR;
}

char *secmem_dup(const char *s, size_t n)
{
	char *p = secmem_alloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void secmem_free(char *p)
{
	if (!p)
		return;
	char *base = p - SECMEM_HDR;
	size_t len;
	memcpy(&len, base, sizeof len);
	explicit_bzero(base, len);
	(void)munlock(base, len);
	munmap(base, len);
}
