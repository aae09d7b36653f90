/*
 * outbox.c - one file per undelivered message, written atomically.
 */
#include "outbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "exitcode.h"
#include "fsx.h"
#include "hmac.h"
#include "log.h"
#include "xalloc.h"

#define OUTBOX_MAGIC "cdrflow-spool 1\n"
#define OUTBOX_HEADER_MAX 8192

void outbox_msg_free(struct outbox_msg *m)
{
	free(m->kind);
	free(m->key);
	free(m->meta);
	free(m->last_error);
	free(m->body);
	free(m->name);
	memset(m, 0, sizeof *m);
}

static int key_ok(const char *k)
{
	size_t n = k ? strlen(k) : 0;
	if (n == 0 || n > OUTBOX_KEY_MAX)
		return 0;
	for (const char *p = k; *p; p++)
		if (*p <= ' ' || *p > '~')
			return 0;
	return 1;
}

static int line_ok(const char *s)
{
	return !s || !strpbrk(s, "\r\n");
}

/* "-<16 hex>.msg": the part of the file name that the key decides */
static int key_suffix(const char *key, char out[22])
{
	char hex[65];
	if (sha256_hex(key, strlen(key), hex) < 0)
		return -1;
	snprintf(out, 22, "-%.16s.msg", hex);
	return 0;
}

static int is_msg_name(const char *n)
{
	/* 20 digits, '-', 16 hex, ".msg" */
	if (strlen(n) != 20 + 1 + 16 + 4)
		return 0;
	for (int i = 0; i < 20; i++)
		if (n[i] < '0' || n[i] > '9')
			return 0;
	return n[20] == '-' && strcmp(n + 37, ".msg") == 0;
}

static int ensure_dirs(const char *dir)
{
	char *dead = xasprintf("%s/dead", dir);
	int rc = mkdir_p(dead, 0700);
	int saved = errno;
	free(dead);
	errno = saved;
	return rc;
}

static int serialize(const struct outbox_msg *m, struct buf *b)
{
	if (buf_puts(b, OUTBOX_MAGIC) < 0 ||
	    buf_printf(b, "kind: %s\nkey: %s\ncreated: %" PRId64 "\nattempts: %" PRId64 "\n", m->kind, m->key,
		       m->created_us, m->attempts) < 0)
		return -1;
	if (m->last_error && *m->last_error && buf_printf(b, "last-error: %s\n", m->last_error) < 0)
		return -1;
	if (m->meta && *m->meta && buf_printf(b, "meta: %s\n", m->meta) < 0)
		return -1;
	if (buf_printf(b, "length: %zu\n\n", m->body_len) < 0 || buf_append(b, m->body, m->body_len) < 0)
		return -1;
	return 0;
}

static int write_msg(const char *dir, const struct outbox_msg *m)
{
	struct buf b;
	buf_init(&b, 0);
	int rc = -1, saved = ENOMEM;
	if (serialize(m, &b) == 0) {
		char *path = xasprintf("%s/%s", dir, m->name);
		rc = atomic_write_file(path, b.data, b.len);
		saved = errno;
		free(path);
	}
	buf_release(&b);
	errno = saved;
	return rc;
}

int outbox_find_key(const char *dir, const char *key, char **name)
{
	char suffix[22];
	if (name)
		*name = NULL;
	if (key_suffix(key, suffix) < 0) {
		errno = EINVAL;
		return -1;
	}
	char **names;
	size_t n;
	if (outbox_list(dir, &names, &n) < 0)
		return -1;
	int found = 0;
	for (size_t i = 0; i < n && !found; i++) {
		if (strcmp(names[i] + 20, suffix) == 0) {
			found = 1;
			if (name)
				*name = xstrdup(names[i]);
		}
	}
	outbox_names_free(names, n);
	return found;
}

int outbox_put(const char *dir, struct outbox_msg *m, int *existed)
{
	if (existed)
		*existed = 0;
	if (!key_ok(m->key) || !m->kind || !*m->kind || !line_ok(m->kind) || !line_ok(m->meta) ||
	    strchr(m->kind, ' ')) {
		errno = EINVAL;
		return -1;
	}
	if (ensure_dirs(dir) < 0)
		return -1;
	char *old = NULL;
	int f = outbox_find_key(dir, m->key, &old);
	if (f < 0)
		return -1;
	if (f == 1) {
		if (existed)
			*existed = 1;
		free(m->name);
		m->name = old;
		return 0;
	}
	char suffix[22];
	if (key_suffix(m->key, suffix) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (m->created_us <= 0)
		m->created_us = clock_real_us();
	/* the error text may hold a peer's reply: keep it on one line */
	if (m->last_error)
		for (char *p = m->last_error; *p; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
	free(m->name);
	m->name = xasprintf("%020" PRId64 "%s", m->created_us, suffix);
	return write_msg(dir, m);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void outbox_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int outbox_list(const char *dir, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	size_t cap = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (!is_msg_name(e->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			*names = xrealloc(*names, cap * sizeof **names);
		}
		(*names)[(*n)++] = xstrdup(e->d_name);
		errno = 0;
	}
	int saved = errno;
	closedir(d);
	if (saved) {
		outbox_names_free(*names, *n);
		*names = NULL;
		*n = 0;
		errno = saved;
		return -1;
	}
	if (*n)
		qsort(*names, *n, sizeof **names, cmp_names);
	return 0;
}

static int read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (buf_grow(b, (size_t)st.st_size + 1) < 0) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		if (buf_grow(b, 65536) < 0) {
			close(fd);
			errno = ENOMEM;
			return -1;
		}
		ssize_t r = read_full(fd, b->data + b->len, 65536);
		if (r < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		buf_setlen(b, b->len + (size_t)r);
		if (r < 65536)
			break;
	}
	close(fd);
	return 0;
}

static int corrupt(char *err, size_t errlen, const char *name, const char *why)
{
	snprintf(err, errlen, "spool message \"%s\" is corrupt: %s", name, why);
	errno = EBADMSG;
	return -1;
}

int outbox_load(const char *dir, const char *name, struct outbox_msg *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	struct buf b;
	buf_init(&b, 0);
	char *path = xasprintf("%s/%s", dir, name);
	int rc = read_file(path, &b);
	int saved = errno;
	free(path);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read spool message \"%s\": %s", name, strerror(saved));
		buf_release(&b);
		errno = saved;
		return -1;
	}
	rc = -1;
	const char *p = b.data, *end = b.data + b.len;
	int have_len = 0, have_created = 0, have_attempts = 0;
	size_t len = 0;
	if (b.len < sizeof OUTBOX_MAGIC - 1 || memcmp(p, OUTBOX_MAGIC, sizeof OUTBOX_MAGIC - 1)) {
		corrupt(err, errlen, name, "bad magic");
		goto out;
	}
	p += sizeof OUTBOX_MAGIC - 1;
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || nl - b.data > OUTBOX_HEADER_MAX) {
			corrupt(err, errlen, name, "header not terminated");
			goto out;
		}
		if (nl == p) {
			p = nl + 1;
			break;
		}
		const char *colon = memchr(p, ':', (size_t)(nl - p));
		if (!colon || colon + 1 >= nl || colon[1] != ' ') {
			corrupt(err, errlen, name, "bad header line");
			goto out;
		}
		size_t klen = (size_t)(colon - p);
		char *val = xstrndup(colon + 2, (size_t)(nl - colon - 2));
		char *e = NULL;
#define HDR(s) (klen == sizeof(s) - 1 && memcmp(p, s, klen) == 0)
		if (HDR("kind")) {
			free(m->kind);
			m->kind = val;
		} else if (HDR("key")) {
			free(m->key);
			m->key = val;
		} else if (HDR("meta")) {
			free(m->meta);
			m->meta = val;
		} else if (HDR("last-error")) {
			free(m->last_error);
			m->last_error = val;
		} else if (HDR("created") || HDR("attempts") || HDR("length")) {
			errno = 0;
			long long v = strtoll(val, &e, 10);
			int bad = errno || !*val || *e || v < 0;
			if (!bad && HDR("created")) {
				m->created_us = v;
				have_created = 1;
			} else if (!bad && HDR("attempts")) {
				m->attempts = v;
				have_attempts = 1;
			} else if (!bad) {
				len = (size_t)v;
				have_len = 1;
			}
			free(val);
			if (bad) {
				corrupt(err, errlen, name, "bad number in header");
				goto out;
			}
		} else {
			free(val); /* unknown header: a newer writer; ignored */
		}
#undef HDR
		p = nl + 1;
	}
	if (!m->kind || !key_ok(m->key) || !have_len || !have_created || !have_attempts) {
		corrupt(err, errlen, name, "missing header");
		goto out;
	}
	if ((size_t)(end - p) != len) {
		corrupt(err, errlen, name, "body length differs from its header");
		goto out;
	}
	m->body = xmalloc(len + 1);
	memcpy(m->body, p, len);
	m->body[len] = '\0';
	m->body_len = len;
	m->name = xstrdup(name);
	rc = 0;
out:
	saved = errno;
	buf_release(&b);
	if (rc < 0)
		outbox_msg_free(m);
	errno = saved;
	return rc;
}

int outbox_rewrite(const char *dir, const struct outbox_msg *m)
{
	if (!m->name || !line_ok(m->meta)) {
		errno = EINVAL;
		return -1;
	}
	struct outbox_msg c = *m;
	char *le = m->last_error ? xstrdup(m->last_error) : NULL;
	if (le)
		for (char *p = le; *p; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
	c.last_error = le;
	int rc = write_msg(dir, &c);
	int saved = errno;
	free(le);
	errno = saved;
	return rc;
}

int outbox_remove(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	int rc = unlink(path);
	int saved = errno;
	free(path);
	if (rc < 0) {
		errno = saved;
		return -1;
	}
	return fsync_dir(dir);
}

int outbox_bury(const char *dir, const char *name)
{
	if (ensure_dirs(dir) < 0)
		return -1;
	char *from = xasprintf("%s/%s", dir, name);
	char *to = xasprintf("%s/dead/%s", dir, name);
	char *dead = xasprintf("%s/dead", dir);
	int rc = rename(from, to);
	if (rc == 0)
		rc = fsync_dir(dead);
	if (rc == 0)
		rc = fsync_dir(dir);
	int saved = errno;
	free(from);
	free(to);
	free(dead);
	errno = saved;
	return rc;
}

int outbox_lock(const char *dir)
{
	if (ensure_dirs(dir) < 0)
		return -1;
	char *path = xasprintf("%s/LOCK", dir);
	int fd = lock_file(path);
	int saved = errno;
	free(path);
	errno = saved;
	return fd;
}

int outbox_retry(const char *dir, outbox_send_fn send, void *ctx, struct outbox_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	*err = '\0';
	int lock = outbox_lock(dir);
	if (lock < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot lock spool \"%s\": %s", dir,
			 e == EWOULDBLOCK ? "another run is retrying it" : strerror(e));
		return e == EWOULDBLOCK ? EXIT_TEMPFAIL : EXIT_IOERR;
	}
	char **names;
	size_t n;
	int code = EXIT_OK;
	if (outbox_list(dir, &names, &n) < 0) {
		snprintf(err, errlen, "cannot list spool \"%s\": %s", dir, strerror(errno));
		close(lock);
		return EXIT_IOERR;
	}
	for (size_t i = 0; i < n; i++) {
		struct outbox_msg m;
		char e[512];
		if (outbox_load(dir, names[i], &m, e, sizeof e) < 0) {
			if (errno != EBADMSG) {
				snprintf(err, errlen, "%s", e);
				code = dlv_exit_merge(code, EXIT_IOERR);
				continue;
			}
			log_error("%s: moved to dead/", e);
			st->corrupt++;
			if (outbox_bury(dir, names[i]) < 0) {
				snprintf(err, errlen, "cannot move \"%s\" to dead/: %s", names[i], strerror(errno));
				code = dlv_exit_merge(code, EXIT_IOERR);
			} else {
				snprintf(err, errlen, "%s", e);
				code = dlv_exit_merge(code, EXIT_DATAERR);
			}
			continue;
		}
		*e = '\0';
		enum dlv_result r = send(ctx, &m, e, sizeof e);
		m.attempts++;
		if (r == DLV_OK) {
			if (outbox_remove(dir, m.name) < 0) {
				snprintf(err, errlen, "delivered \"%s\" but cannot remove it from the spool: %s", m.key,
					 strerror(errno));
				code = dlv_exit_merge(code, EXIT_IOERR);
			} else {
				log_info("spool: %s %s delivered after %" PRId64 " attempts", m.kind, m.key, m.attempts);
				st->delivered++;
			}
		} else if (r == DLV_REJECTED) {
			free(m.last_error);
			m.last_error = xstrdup(e);
			log_error("spool: %s %s rejected (%s): moved to dead/", m.kind, m.key, e);
			if (outbox_rewrite(dir, &m) < 0 || outbox_bury(dir, m.name) < 0) {
				snprintf(err, errlen, "cannot move \"%s\" to dead/: %s", m.name, strerror(errno));
				code = dlv_exit_merge(code, EXIT_IOERR);
			} else {
				snprintf(err, errlen, "%s %s rejected: %s", m.kind, m.key, e);
				st->dead++;
				code = dlv_exit_merge(code, EXIT_DATAERR);
			}
		} else {
			free(m.last_error);
			m.last_error = xstrdup(e);
			log_warn("spool: %s %s not delivered (%s), stays queued", m.kind, m.key, e);
			st->queued++;
			if (outbox_rewrite(dir, &m) < 0) {
				snprintf(err, errlen, "cannot update spool message \"%s\": %s", m.name, strerror(errno));
				code = dlv_exit_merge(code, EXIT_IOERR);
			} else {
				snprintf(err, errlen, "%s %s: %s", m.kind, m.key, e);
				code = dlv_exit_merge(code, dlv_exit_code(r));
			}
		}
		outbox_msg_free(&m);
	}
	outbox_names_free(names, n);
	close(lock);
	return code;
}

int outbox_keep(const char *dir, const char *kind, const char *key, const char *meta, const char *body, size_t len,
	       enum dlv_result r, char *err, size_t errlen)
{
	struct outbox_msg m = { 0 };
	m.kind = xstrdup(kind);
	m.key = xstrdup(key);
	m.meta = meta ? xstrdup(meta) : NULL;
	m.last_error = xstrdup(err);
	m.attempts = 1; /* runs that tried it */
	m.body = xmalloc(len + 1);
	memcpy(m.body, body, len);
	m.body[len] = '\0';
	m.body_len = len;
	int existed = 0, code;
	size_t used = strlen(err);
	if (outbox_put(dir, &m, &existed) < 0) {
		int e = errno;
		snprintf(err + used, errlen - used, "; and cannot queue it in \"%s\": %s", dir, strerror(e));
		code = e == EINVAL ? EXIT_DATAERR : EXIT_IOERR;
	} else if (r == DLV_REJECTED) {
		if (existed) {
			/* the queued copy stays: a later retry decides its fate */
			code = EXIT_DATAERR;
		} else if (outbox_bury(dir, m.name) < 0) {
			snprintf(err + used, errlen - used, "; and cannot move it to dead/: %s", strerror(errno));
			code = EXIT_IOERR;
		} else {
			log_error("%s %s rejected (%s): kept in %s/dead/%s", kind, key, err, dir, m.name);
			code = EXIT_DATAERR;
		}
	} else {
		log_warn("%s %s not delivered (%s): queued as %s/%s%s", kind, key, err, dir, m.name,
			 existed ? " (already queued)" : "");
		code = dlv_exit_code(r);
	}
	outbox_msg_free(&m);
	return code;
}
