/*
 * delivery.c - outcome names, exit-code merging, secrets.
 */
#include "delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "xalloc.h"

const char *dlv_result_name(enum dlv_result r)
{
	switch (r) {
	case DLV_OK: return "delivered";
	case DLV_TEMPFAIL: return "temporary failure";
	case DLV_AUTH: return "authentication refused";
	case DLV_REJECTED: return "rejected";
	case DLV_LOCAL: return "local error";
	}
	return "?";
}

static int severity(int code)
{
	switch (code) {
	case EXIT_OK: return 0;
	case EXIT_UNAVAILABLE: return 1;
	case EXIT_TEMPFAIL: return 1;
	case EXIT_DATAERR: return 2;
	case EXIT_NOINPUT: return 2;
	case EXIT_NOPERM: return 3;
	default: return 4; /* IOERR, CANTCREAT, SOFTWARE, CONFIG */
	}
}

int dlv_exit_merge(int cur, int code)
{
	return severity(code) > severity(cur) ? code : cur;
}

int dlv_exit_code(enum dlv_result r)
{
	switch (r) {
	case DLV_OK: return EXIT_OK;
	case DLV_TEMPFAIL: return EXIT_UNAVAILABLE;
	case DLV_AUTH: return EXIT_NOPERM;
	case DLV_REJECTED: return EXIT_DATAERR;
	case DLV_LOCAL: return EXIT_DATAERR;
	}
	return EXIT_SOFTWARE;
}

int secret_load(const char *env, const char *file, int required, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (file && *file) {
		FILE *f = fopen(file, "r");
		if (!f) {
			snprintf(err, errlen, "cannot read secret file \"%s\": %s", file, strerror(errno));
			return -1;
		}
		char line[4096];
		int ok = fgets(line, sizeof line, f) != NULL;
		int rerr = ferror(f);
		fclose(f);
		if (rerr) {
			snprintf(err, errlen, "cannot read secret file \"%s\"", file);
			return -1;
		}
		if (ok)
			line[strcspn(line, "\r\n")] = '\0';
		if (!ok || !*line) {
			explicit_bzero(line, sizeof line);
			snprintf(err, errlen, "secret file \"%s\" is empty", file);
			return -1;
		}
		*out = xstrdup(line);
		explicit_bzero(line, sizeof line);
		return 0;
	}
	const char *v = env && *env ? getenv(env) : NULL;
	if (v && *v) {
		*out = xstrdup(v);
		return 0;
	}
	if (!required) {
		*out = xstrdup("");
		return 0;
	}
	if (env && *env)
		snprintf(err, errlen, "no secret: set environment variable %s or the _file setting", env);
	else
		snprintf(err, errlen, "no secret: neither an environment variable nor a file is configured");
	return -1;
}

void secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
