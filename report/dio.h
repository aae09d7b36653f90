/*
 * dio.h - a write-only stream whose file is written with O_DIRECT.
 *
 * A large streamed file (a month's CDR export is about 2 GB) written the
 * ordinary way is copied into the page cache by the kernel, which costs
 * more CPU than formatting it, and the fsync at the end then waits for all
 * of it.  This stream gathers the bytes in two aligned buffers and writes
 * each full one with O_DIRECT in the background (POSIX AIO) while the other
 * fills.  Where the file system refuses O_DIRECT (tmpfs, some network file
 * systems) it falls back to ordinary writes; the file's bytes are the same.
 */
#ifndef CDRFLOW_REPORT_DIO_H
#define CDRFLOW_REPORT_DIO_H

#include <stdio.h>

struct dio;

/* Create or truncate path (mode 0666 less the umask, as fopen "wb") and
 * return an unbuffered stream on it, and in *dp its writer for dio_sync().
 * fclose() writes what is left, closes the file and frees the writer.
 * NULL with errno set if the file cannot be created. */
FILE *dio_fopen(const char *path, struct dio **dp);

/* Write everything given so far and fsync the file (fileno() of the stream
 * is -1: this replaces fsync(fileno(fp))).  0, or -1 with errno set. */
int dio_sync(struct dio *d);

#endif
