/*
 * fsx.h - file-system helpers that do not lose data quietly.
 *
 * All return 0 on success and -1 with errno set on failure.
 */
#ifndef CDRFLOW_FSX_H
#define CDRFLOW_FSX_H

#include <stddef.h>
#include <sys/types.h>

/* write(2) all n bytes, retrying on EINTR and short writes. */
int write_full(int fd, const void *p, size_t n);
/* read(2) up to n bytes, retrying on EINTR; returns bytes read (< n at EOF) or -1. */
ssize_t read_full(int fd, void *p, size_t n);
ssize_t pread_full(int fd, void *p, size_t n, off_t off);
/* fsync the directory holding a file we created, renamed or removed. */
int fsync_dir(const char *dir);
/* mkdir -p with the given mode for created directories. */
int mkdir_p(const char *path, mode_t mode);
/* Write a whole file atomically: tmp file, fsync, rename, fsync(dir). */
int atomic_write_file(const char *path, const void *p, size_t n);
/* Take an exclusive, non-blocking flock on path (created if missing).
 * Returns the fd to keep open for as long as the lock is held, or -1
 * (errno EWOULDBLOCK when another process holds it). */
int lock_file(const char *path);

#endif
