/* testutil.h - small helpers shared by the cmocka unit tests. */
#ifndef CDRFLOW_TESTUTIL_H
#define CDRFLOW_TESTUTIL_H

#include <stddef.h>

/* ../shared (or $CDRFLOW_SHARED) relative to the repository root. */
const char *shared_dir(void);
/* Read a whole file (plain or .xz) into memory; NULL if missing. */
char *slurp(const char *path, size_t *len);
/* A fresh empty temporary directory (caller removes it with rm_rf). */
char *make_tmpdir(void);
void rm_rf(const char *path);

#endif
