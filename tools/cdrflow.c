/*
 * cdrflow - the git-style dispatcher: "cdrflow CMD ARGS..." runs
 * "cdrflow-CMD ARGS...", looked up first next to this program (the
 * directory of /proc/self/exe) and then in PATH.  See docs/cdrflow.md.
 *
 * Exit status: that of the command; 127 for an unknown command, 126 when
 * the command exists but cannot be run, 64 for a bad invocation.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "xalloc.h"

static const struct {
	const char *name, *what;
} known[] = {
	{ "collector", "store every Asterisk AMI event in crash-safe segment files" },
	{ "etl", "load the segments into the PostgreSQL warehouse (cel, cdr, call), migrate, import" },
	{ "report", "render and deliver daily/monthly reports (PDF, CSV, XLSX)" },
	{ "query", "the analyst's command line: calls, stats, flow" },
};
#define NKNOWN (sizeof known / sizeof known[0])

/* The directory holding this program, or NULL.  malloc'ed. */
static char *self_dir(void)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (n <= 0)
		return NULL;
	path[n] = '\0';
	char *slash = strrchr(path, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	return xstrdup(path[0] ? path : "/");
}

static int is_exec(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Where cdrflow-<cmd> is (malloc'ed), or NULL. */
static char *find_cmd(const char *cmd)
{
	char *dir = self_dir(), *p;
	if (dir) {
		p = xasprintf("%s/cdrflow-%s", dir, cmd);
		free(dir);
		if (is_exec(p))
			return p;
		free(p);
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	char *copy = xstrdup(path), *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		p = xasprintf("%s/cdrflow-%s", *d ? d : ".", cmd);
		if (is_exec(p)) {
			free(copy);
			return p;
		}
		free(p);
	}
	free(copy);
	return NULL;
}

static int valid_name(const char *s)
{
	if (!*s || *s == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

static int usage(FILE *out)
{
	fprintf(out, "usage: cdrflow [--help | --version] COMMAND [ARGS...]\n"
		     "       cdrflow help COMMAND\n"
		     "\n"
		     "Runs cdrflow-COMMAND ARGS..., found next to this program or in PATH.\n"
		     "\n"
		     "commands:\n");
	for (size_t i = 0; i < NKNOWN; i++) {
		char *p = find_cmd(known[i].name);
		fprintf(out, "  %-10s %s%s\n", known[i].name, known[i].what, p ? "" : " (not installed)");
		free(p);
	}
	fprintf(out, "\n'cdrflow help COMMAND' shows a command's --help.\n"
		     "exit status: the command's; 127 unknown command, 126 cannot run it, 64 usage.\n");
	return fflush(out) == 0 ? EXIT_OK : EXIT_IOERR;
}

static int run(const char *cmd, int argc, char **argv)
{
	if (!valid_name(cmd)) {
		fprintf(stderr, "cdrflow: '%s' is not a cdrflow command. See 'cdrflow --help'.\n", cmd);
		return 127;
	}
	char *path = find_cmd(cmd);
	if (!path) {
		fprintf(stderr, "cdrflow: '%s' is not a cdrflow command (no cdrflow-%s next to cdrflow or in PATH). "
				"See 'cdrflow --help'.\n", cmd, cmd);
		return 127;
	}
	char **args = xcalloc((size_t)argc + 2, sizeof *args);
	args[0] = xasprintf("cdrflow-%s", cmd);
	for (int i = 0; i < argc; i++)
		args[i + 1] = argv[i];
	execv(path, args);
	int e = errno;
	fprintf(stderr, "cdrflow: cannot run %s: %s\n", path, strerror(e));
	free(args[0]);
	free(args);
	free(path);
	return 126;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *a = argv[1];
	if (!strcmp(a, "--help") || !strcmp(a, "-h") || (!strcmp(a, "help") && argc == 2))
		return usage(stdout);
	if (!strcmp(a, "--version") || !strcmp(a, "-V") || !strcmp(a, "version")) {
		printf("cdrflow %s\n", CDRFLOW_VERSION);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
	}
	if (!strcmp(a, "help")) {
		char *h[] = { (char *)"--help", NULL };
		if (argc > 3) {
			fprintf(stderr, "cdrflow: help takes one command\n");
			return EXIT_USAGE;
		}
		return run(argv[2], 1, h);
	}
	if (a[0] == '-') {
		fprintf(stderr, "cdrflow: unknown option %s\n", a);
		usage(stderr);
		return EXIT_USAGE;
	}
	return run(a, argc - 2, argv + 2);
}
