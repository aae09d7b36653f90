#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"

static const char *progname = "cdrflow";
static _Atomic int level = LOG_INFO;
static _Atomic int log_fd = STDERR_FILENO;
static char *log_path;
static _Atomic int cli_style;
static pthread_mutex_t reopen_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void log_init(const char *name)
{
	const char *slash = strrchr(name, '/');
	progname = slash ? slash + 1 : name;
}

void log_set_cli(int cli)
{
	cli_style = cli != 0;
}

const char *log_progname(void)
{
	return progname;
}

void log_set_level(enum log_level l)
{
	level = l;
}

enum log_level log_get_level(void)
{
	return (enum log_level)level;
}

int log_level_parse(const char *s)
{
	if (!strcmp(s, "error"))
		return LOG_ERROR;
	if (!strcmp(s, "warn") || !strcmp(s, "warning"))
		return LOG_WARN;
	if (!strcmp(s, "info"))
		return LOG_INFO;
	if (!strcmp(s, "debug"))
		return LOG_DEBUG;
	return -1;
}

int log_open_file(const char *path)
{
	pthread_mutex_lock(&reopen_lock);
	free(log_path);
	log_path = (path && *path) ? xstrdup(path) : NULL;
	pthread_mutex_unlock(&reopen_lock);
	return log_reopen();
}

int log_reopen(void)
{
	int rc = 0;
	pthread_mutex_lock(&reopen_lock);
	if (log_path) {
		int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			rc = -1;
		} else {
			int old = atomic_exchange(&log_fd, fd);
			if (old != STDERR_FILENO)
				close(old);
		}
	}
	pthread_mutex_unlock(&reopen_lock);
	return rc;
}

void log_vmsg(enum log_level l, const char *fmt, va_list ap)
{
	if ((int)l > level)
		return;
	int saved = errno;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n;
	if (cli_style && !log_path) {
		n = l == LOG_ERROR ? snprintf(line, sizeof line, "%s: ", progname)
				   : snprintf(line, sizeof line, "%s: %s: ", progname, level_names[l]);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld]: %s: ", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, progname,
			     (long)getpid(), level_names[l]);
	}
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(log_fd, line, len);
	(void)w; /* nowhere left to report a failing log write */
	errno = saved;
}

void log_msg(enum log_level l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, fmt, ap);
	va_end(ap);
}

int log_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", log_progname());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", log_progname());
	return EXIT_USAGE;
}
