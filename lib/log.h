/*
 * log.h - one-line log messages to stderr (or a file, reopened on SIGHUP).
 *
 * Style: lower case, no trailing period, say what failed first, quote the
 * subject: log_error("cannot open segment \"%s\": %s", path, strerror(errno)).
 * Every line is written with one write(2), so lines from threads never mix.
 * Never pass a secret to these functions.
 */
#ifndef CDRFLOW_LOG_H
#define CDRFLOW_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_init(const char *progname);
/* Interactive commands print "program: message" (errors) and
 * "program: level: message"; daemons and their log files keep the
 * timestamped "TIME program[pid]: level: message" (the default). */
void log_set_cli(int cli);
const char *log_progname(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; -1 if unknown. */
int log_level_parse(const char *s);
/* Log to path instead of stderr (NULL or "" = stderr).  0 or -1 with errno. */
int log_open_file(const char *path);
/* Reopen the log file (after rotation); a no-op when logging to stderr. */
int log_reopen(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A bad command line: "PROGRAM: message" and "Try 'PROGRAM --help' for
 * more information." on stderr.  Returns EXIT_USAGE, for main() to return. */
int log_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) do { if (log_get_level() >= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
