/*
 * dio.c - a stream written with O_DIRECT in the background (dio.h).
 */
#include "dio.h"

#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* O_DIRECT wants the buffer, offset and length aligned to the device's
 * logical block: 4 KiB covers the usual 512 and 4096 */
#define DIO_ALIGN 4096u
/* one write; two buffers of it are the stream's memory */
#define DIO_BUF (2u << 20)

struct dio {
	int fd;
	int direct;      /* O_DIRECT is set on fd */
	char *buf[2];
	int cur;         /* the buffer being filled */
	size_t fill;     /* its bytes */
	off_t off;       /* where they go in the file */
	struct aiocb cb; /* the other buffer's write, while busy */
	int busy;
	int err;         /* errno of the first failed write, kept */
};

/* Ordinary writes from here on: for the last partial block, and where the
 * file system refuses O_DIRECT. */
static int direct_off(struct dio *d)
{
	if (!d->direct)
		return 0;
	int fl = fcntl(d->fd, F_GETFL);
	if (fl < 0 || fcntl(d->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return -1;
	d->direct = 0;
	return 0;
}

/* pwrite all n bytes at off now, retrying on EINTR and short writes; an
 * EINVAL under O_DIRECT (alignment this device does not take) turns it off. */
static int write_now(struct dio *d, const char *p, size_t n, off_t off)
{
	while (n) {
		ssize_t k = pwrite(d->fd, p, n, off);
		if (k < 0 && errno == EINVAL && d->direct) {
			if (direct_off(d) < 0)
				return -1;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = ENOSPC;
			return -1;
		}
		p += k;
		n -= (size_t)k;
		off += k;
	}
	return 0;
}

static int failed(struct dio *d)
{
	d->err = errno ? errno : EIO;
	return -1;
}

/* Wait for the write in flight; what it left (a short write, or EINVAL
 * from O_DIRECT) is written now. */
static int wait_busy(struct dio *d)
{
	if (!d->busy)
		return 0;
	const struct aiocb *list[1] = { &d->cb };
	int e;
	while ((e = aio_error(&d->cb)) == EINPROGRESS)
		if (aio_suspend(list, 1, NULL) < 0 && errno != EINTR)
			continue; /* glibc returns only EINTR here: ask again */
	ssize_t r = aio_return(&d->cb);
	d->busy = 0;
	if (e < 0)
		return failed(d);
	size_t done = r > 0 ? (size_t)r : 0, len = d->cb.aio_nbytes;
	if (e == 0 && done == len)
		return 0;
	if (e != 0 && !(e == EINVAL && d->direct)) {
		errno = e;
		return failed(d);
	}
	const char *p = (const char *)d->cb.aio_buf;
	if (write_now(d, p + done, len - done, d->cb.aio_offset + (off_t)done) < 0)
		return failed(d);
	return 0;
}

/* Start writing the full buffer and switch to the other one. */
static int submit(struct dio *d)
{
	if (wait_busy(d) < 0)
		return -1;
	memset(&d->cb, 0, sizeof d->cb);
	d->cb.aio_fildes = d->fd;
	d->cb.aio_buf = d->buf[d->cur];
	d->cb.aio_nbytes = d->fill;
	d->cb.aio_offset = d->off;
	d->cb.aio_sigevent.sigev_notify = SIGEV_NONE;
	if (aio_write(&d->cb) == 0)
		d->busy = 1;
	else if (write_now(d, d->buf[d->cur], d->fill, d->off) < 0) /* EAGAIN: no room to queue it */
		return failed(d);
	d->off += (off_t)d->fill;
	d->cur ^= 1;
	d->fill = 0;
	return 0;
}

/* Write everything given so far: the whole blocks as they are, the rest
 * without O_DIRECT. */
static int drain(struct dio *d)
{
	if (d->err) {
		errno = d->err;
		return -1;
	}
	if (wait_busy(d) < 0)
		return -1;
	const char *p = d->buf[d->cur];
	size_t whole = d->direct ? d->fill & ~(size_t)(DIO_ALIGN - 1) : 0;
	if (write_now(d, p, whole, d->off) < 0 || (d->fill > whole && direct_off(d) < 0) ||
	    write_now(d, p + whole, d->fill - whole, d->off + (off_t)whole) < 0)
		return failed(d);
	d->off += (off_t)d->fill;
	d->fill = 0;
	return 0;
}

static ssize_t c_write(void *c, const char *p, size_t n)
{
	struct dio *d = c;
	if (d->err) {
		errno = d->err;
		return -1;
	}
	for (size_t left = n; left;) {
		size_t k = DIO_BUF - d->fill < left ? DIO_BUF - d->fill : left;
		memcpy(d->buf[d->cur] + d->fill, p, k);
		d->fill += k;
		p += k;
		left -= k;
		if (d->fill == DIO_BUF && submit(d) < 0)
			return -1;
	}
	return (ssize_t)n;
}

static void dio_free(struct dio *d)
{
	free(d->buf[0]);
	free(d->buf[1]);
	free(d);
}

static int c_close(void *c)
{
	struct dio *d = c;
	int rc = wait_busy(d) < 0 || drain(d) < 0 ? -1 : 0; /* nothing left in flight either way */
	int e = errno;
	if (close(d->fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	dio_free(d);
	errno = e;
	return rc;
}

FILE *dio_fopen(const char *path, struct dio **dp)
{
	*dp = NULL;
	int direct = 1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0666);
	if (fd < 0 && errno == EINVAL) { /* a file system without O_DIRECT */
		direct = 0;
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	}
	if (fd < 0)
		return NULL;
	struct dio *d = calloc(1, sizeof *d);
	if (d) {
		d->fd = fd;
		d->direct = direct;
		d->buf[0] = aligned_alloc(DIO_ALIGN, DIO_BUF);
		d->buf[1] = aligned_alloc(DIO_ALIGN, DIO_BUF);
	}
	cookie_io_functions_t io = { .write = c_write, .close = c_close };
	FILE *fp = d && d->buf[0] && d->buf[1] ? fopencookie(d, "w", io) : NULL;
	if (!fp) {
		int e = errno ? errno : ENOMEM;
		if (d)
			dio_free(d);
		(void)close(fd); /* a created file: the caller removes it */
		errno = e;
		return NULL;
	}
	/* each fwrite comes straight to c_write: no copy through stdio's buffer */
	if (setvbuf(fp, NULL, _IONBF, 0) != 0) {
		(void)fclose(fp);
		errno = ENOMEM;
		return NULL;
	}
	*dp = d;
	return fp;
}

int dio_sync(struct dio *d)
{
	if (drain(d) < 0)
		return -1;
	if (fsync(d->fd) < 0)
		return failed(d);
	return 0;
}
