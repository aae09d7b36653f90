#include "spool.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

/* Chunk size: buffer_size / CHUNKS_PER_BUFFER within [MIN_CHUNK, MAX_CHUNK].
 * Small chunks keep resident only what is really waiting for the disk
 * (the free list is LIFO: the same few chunks are reused while the writer
 * keeps up); a record larger than a chunk gets a chunk of its own. */
#define MIN_CHUNK (64u << 10)
#define MAX_CHUNK (256u << 10)
#define CHUNKS_PER_BUFFER 16

struct chunk {
	char *data;
	size_t len;
	uint64_t nrec;
	uint64_t last_seq;
	struct chunk *next;
	int big; /* s->big: one record larger than chunk_cap, data freed once written */
};

struct spool {
	struct seg_writer w;
	struct spool_opts opts;
	char node[SEG_NODE_MAX + 1];
	size_t node_len;
	size_t chunk_cap;
	uint64_t next_seq; /* producer only */

	pthread_mutex_t mu;
	pthread_cond_t wake_writer;  /* a chunk was queued, or closing */
	pthread_cond_t wake_producer; /* a chunk became free */
	struct chunk *free_list;
	struct chunk *queue_head, *queue_tail;
	struct chunk *cur;  /* the producer's chunk being filled */
	int cur_ready;      /* cur holds whole records and the producer is not touching it */
	int writer_idle;
	int closing;
	int failed;         /* errno of a fatal write failure (fail_fast) */
	char fail_msg[512];
	pthread_t thread;
	struct chunk *all;  /* every chunk, for freeing */
	size_t nchunks;
	struct chunk big;   /* the chunk of a record larger than chunk_cap */
	int big_busy;       /* big is queued or being written */

	/* fsync always: the syncer thread runs fdatasync while the writer goes
	 * on writing; each fdatasync covers every record written before it
	 * started (group commit).  wmu guards w's file (the writer holds it
	 * while appending or rotating) and the two sequences. */
	pthread_mutex_t wmu;
	pthread_cond_t wake_syncer;
	uint64_t written_seq;  /* last record the writer has in the file */
	uint64_t sync_done_seq; /* last record the syncer has synced, or tried to */
	int sync_stop;
	int has_syncer;
	pthread_t syncer;

	struct spool_stats stats;
};

/* ------------------------------------------------------------ writer side */

static void push_locked(struct spool *s, struct chunk *c)
{
	c->next = NULL;
	if (s->queue_tail)
		s->queue_tail->next = c;
	else
		s->queue_head = c;
	s->queue_tail = c;
	pthread_cond_signal(&s->wake_writer);
}

static struct chunk *pop_locked(struct spool *s)
{
	struct chunk *c = s->queue_head;
	if (c) {
		s->queue_head = c->next;
		if (!s->queue_head)
			s->queue_tail = NULL;
	}
	return c;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

static int do_sync(struct spool *s, uint64_t seq)
{
	if (seg_writer_sync(&s->w) < 0) {
		log_error("node %s: cannot fsync segment \"%s\": %s", s->node, s->w.path, strerror(errno));
		return -1;
	}
	if (seq)
		atomic_store(&s->stats.synced_seq, seq);
	return 0;
}

/* Whole records in the first len bytes of an encoded chunk. */
static uint64_t records_in(const char *p, size_t len)
{
	uint64_t n = 0;
	size_t off = 0;
	while (len - off >= SEG_RECORD_HEADER) {
		const unsigned char *q = (const unsigned char *)p + off;
		size_t rec = (size_t)q[0] | (size_t)q[1] << 8 | (size_t)q[2] << 16 | (size_t)q[3] << 24;
		if (rec < SEG_RECORD_HEADER || rec > len - off)
			break;
		off += rec;
		n++;
	}
	return n;
}

/* Write one chunk, retrying forever unless fail_fast.  0 or -1 (failed). */
static int write_chunk(struct spool *s, struct chunk *c)
{
	uint64_t backoff = 100, last_log = 0;
	size_t done = 0;
	for (;;) {
		char err[512];
		size_t written = 0;
		pthread_mutex_lock(&s->wmu);
		int rc = seg_writer_append(&s->w, c->data + done, c->len - done, &written, err, sizeof err);
		int e = errno;
		pthread_mutex_unlock(&s->wmu);
		done += written;
		if (rc == 0)
			break;
		atomic_fetch_add(&s->stats.write_errors, 1);
		if (s->opts.fail_fast) {
			/* the records of the chunk written before the failure are
			 * stored: count them, so "could not be stored" is exact */
			atomic_fetch_add(&s->stats.written, records_in(c->data, done));
			pthread_mutex_lock(&s->mu);
			s->failed = e ? e : EIO;
			snprintf(s->fail_msg, sizeof s->fail_msg, "%s", err);
			pthread_cond_broadcast(&s->wake_producer);
			pthread_mutex_unlock(&s->mu);
			return -1;
		}
		uint64_t now = clock_mono_ms();
		if (!last_log || now - last_log >= 10000) {
			log_error("node %s: %s; holding %" PRIu64 " events in memory and retrying", s->node, err,
				  atomic_load(&s->stats.events) - atomic_load(&s->stats.written));
			last_log = now;
		}
		pthread_mutex_lock(&s->mu);
		int closing = s->closing;
		if (!closing)
			timed_wait(&s->wake_writer, &s->mu, backoff);
		pthread_mutex_unlock(&s->mu);
		if (closing && backoff >= 1000) {
			/* shutting down and the disk still refuses: give up on this chunk */
			atomic_fetch_add(&s->stats.written, records_in(c->data, done));
			pthread_mutex_lock(&s->mu);
			s->failed = e ? e : EIO;
			snprintf(s->fail_msg, sizeof s->fail_msg, "%s", err);
			pthread_mutex_unlock(&s->mu);
			return -1;
		}
		backoff = backoff < 1000 ? backoff * 2 : 1000;
	}
	atomic_fetch_add(&s->stats.written, c->nrec);
	if (s->has_syncer) {
		pthread_mutex_lock(&s->wmu);
		s->written_seq = c->last_seq;
		pthread_cond_signal(&s->wake_syncer);
		pthread_mutex_unlock(&s->wmu);
	}
	return 0;
}

/* fsync always: fdatasync whatever the writer has written, until stopped
 * with nothing left to sync.  The segment's fd is dup()ed under wmu, so a
 * rotation (which syncs and closes the old segment itself) may go on. */
static void *syncer_main(void *arg)
{
	struct spool *s = arg;
	pthread_mutex_lock(&s->wmu);
	for (;;) {
		while (s->written_seq == s->sync_done_seq && !s->sync_stop)
			pthread_cond_wait(&s->wake_syncer, &s->wmu);
		if (s->written_seq == s->sync_done_seq)
			break;
		uint64_t target = s->written_seq;
		int fd = dup(s->w.fd);
		int rc, e;
		if (fd >= 0) {
			pthread_mutex_unlock(&s->wmu);
			rc = fdatasync(fd);
			e = errno;
			close(fd);
			pthread_mutex_lock(&s->wmu);
		} else { /* no fd to spare: sync under the lock (the writer waits) */
			rc = fdatasync(s->w.fd);
			e = errno;
		}
		s->sync_done_seq = target;
		if (rc == 0) {
			atomic_store(&s->stats.synced_seq, target);
			continue;
		}
		char path[400]; /* w.path changes with a rotation: read it under wmu */
		snprintf(path, sizeof path, "%s", s->w.path);
		pthread_mutex_unlock(&s->wmu);
		log_error("node %s: cannot fsync segment \"%s\": %s", s->node, path, strerror(e));
		if (s->opts.fail_fast) {
			pthread_mutex_lock(&s->mu);
			if (!s->failed) {
				s->failed = e ? e : EIO;
				snprintf(s->fail_msg, sizeof s->fail_msg, "cannot fsync segment \"%s\": %s", path,
					 strerror(s->failed));
			}
			pthread_cond_broadcast(&s->wake_producer);
			pthread_cond_signal(&s->wake_writer);
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		pthread_mutex_lock(&s->wmu);
	}
	pthread_mutex_unlock(&s->wmu);
	return NULL;
}


static void *writer_main(void *arg)
{
	struct spool *s = arg;
	uint64_t last_sync = clock_mono_ms(), unsynced_seq = 0;
	uint64_t tick = s->opts.fsync == SEG_FSYNC_INTERVAL ? s->opts.fsync_interval_ms : 1000;
	if (tick > 1000)
		tick = 1000;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		struct chunk *c = NULL;
		for (;;) {
			if (s->failed)
				break; /* nothing more after a failed fsync of a fail_fast spool */
			c = pop_locked(s);
			if (c)
				break;
			if (s->cur_ready && s->cur && s->cur->len) {
				c = s->cur; /* the producer is idle: take its partial chunk */
				s->cur = NULL;
				break;
			}
			if (s->closing || s->failed)
				break;
			s->writer_idle = 1;
			timed_wait(&s->wake_writer, &s->mu, tick);
			s->writer_idle = 0;
			pthread_mutex_unlock(&s->mu);
			/* idle housekeeping: interval fsync and age rotation */
			char err[512];
			if (unsynced_seq && s->opts.fsync != SEG_FSYNC_OFF && clock_mono_ms() - last_sync >= s->opts.fsync_interval_ms) {
				if (do_sync(s, unsynced_seq) == 0)
					unsynced_seq = 0;
				last_sync = clock_mono_ms();
			}
			pthread_mutex_lock(&s->wmu);
			int trc = seg_writer_tick(&s->w, err, sizeof err);
			pthread_mutex_unlock(&s->wmu);
			if (trc < 0)
				log_error("node %s: %s", s->node, err);
			pthread_mutex_lock(&s->mu);
		}
		int stop = !c;
		if (c)
			atomic_fetch_sub(&s->stats.backlog_bytes, c->len);
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		int rc = write_chunk(s, c);
		uint64_t seq = c->last_seq;
		/* The chunk's bytes are in the file now (or never will be): its
		 * memory goes back to the reader at once; with fsync always the
		 * syncer makes them durable meanwhile. */
		pthread_mutex_lock(&s->mu);
		c->len = 0;
		c->nrec = 0;
		if (c->big) {
			free(c->data);
			c->data = NULL;
			s->big_busy = 0;
		} else {
			c->next = s->free_list;
			s->free_list = c;
		}
		pthread_cond_signal(&s->wake_producer);
		pthread_mutex_unlock(&s->mu);
		if (rc < 0)
			break; /* failed for good: what follows must not be written after a gap */
		if (s->opts.fsync == SEG_FSYNC_INTERVAL) {
			unsynced_seq = seq;
			if (clock_mono_ms() - last_sync >= s->opts.fsync_interval_ms) {
				if (do_sync(s, unsynced_seq) == 0)
					unsynced_seq = 0;
				last_sync = clock_mono_ms();
			}
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ producer side */

struct spool *spool_open(const char *spool_dir, const char *node, const struct spool_opts *opts,
			 struct seg_recovery *rec, int *errnum, char *err, size_t errlen)
{
	struct spool *s = xcalloc(1, sizeof *s);
	struct seg_writer_opts wo = { opts->segment_max_size, opts->segment_max_age_ms };
	if (seg_writer_open(&s->w, spool_dir, node, &wo, rec, err, errlen) < 0) {
		*errnum = errno;
		free(s);
		return NULL;
	}
	s->opts = *opts;
	snprintf(s->node, sizeof s->node, "%s", node);
	s->node_len = strlen(s->node);
	s->next_seq = s->w.next_seq;
	atomic_store(&s->stats.synced_seq, s->next_seq - 1);
	/* At least 3 chunks; a record larger than a chunk goes in s->big. */
	s->chunk_cap = opts->buffer_size / CHUNKS_PER_BUFFER;
	if (s->chunk_cap < MIN_CHUNK)
		s->chunk_cap = MIN_CHUNK;
	if (s->chunk_cap > MAX_CHUNK)
		s->chunk_cap = MAX_CHUNK;
	s->nchunks = opts->buffer_size / s->chunk_cap;
	if (s->nchunks < 3)
		s->nchunks = 3;
	s->big.big = 1;
	s->all = xcalloc(s->nchunks, sizeof *s->all);
	for (size_t i = 0; i < s->nchunks; i++) {
		s->all[i].data = xmalloc(s->chunk_cap);
		s->all[i].next = s->free_list;
		s->free_list = &s->all[i];
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->wake_writer, &ca);
	pthread_cond_init(&s->wake_producer, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wake_syncer, NULL);
	s->written_seq = s->sync_done_seq = s->next_seq - 1;
	int rc = 0;
	if (opts->fsync == SEG_FSYNC_ALWAYS) {
		rc = pthread_create(&s->syncer, NULL, syncer_main, s);
		s->has_syncer = rc == 0;
	}
	if (rc == 0) {
		rc = pthread_create(&s->thread, NULL, writer_main, s);
		if (rc && s->has_syncer) {
			pthread_mutex_lock(&s->wmu);
			s->sync_stop = 1;
			pthread_cond_signal(&s->wake_syncer);
			pthread_mutex_unlock(&s->wmu);
			pthread_join(s->syncer, NULL);
		}
	}
	if (rc) {
		*errnum = rc;
		snprintf(err, errlen, "cannot start writer thread: %s", strerror(rc));
		seg_writer_close(&s->w);
		for (size_t i = 0; i < s->nchunks; i++)
			free(s->all[i].data);
		free(s->all);
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->wake_writer);
		pthread_cond_destroy(&s->wake_producer);
		pthread_mutex_destroy(&s->wmu);
		pthread_cond_destroy(&s->wake_syncer);
		free(s);
		return NULL;
	}
	return s;
}

/* Get a chunk with room for need bytes into s->cur (producer). */
static int ensure_room(struct spool *s, size_t need)
{
	if (s->cur && s->chunk_cap - s->cur->len >= need)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (s->cur && s->cur->len) {
		push_locked(s, s->cur);
		s->cur = NULL;
	}
	if (!s->cur) {
		int stalled = 0;
		while (!s->free_list && !s->failed) {
			if (!stalled) {
				atomic_fetch_add(&s->stats.stalls, 1);
				stalled = 1;
			}
			timed_wait(&s->wake_producer, &s->mu, 1000);
		}
		if (s->failed) {
			pthread_mutex_unlock(&s->mu);
			return -1;
		}
		s->cur = s->free_list;
		s->free_list = s->cur->next;
		s->cur->len = 0;
		s->cur->nrec = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* The chunk for one record of need > chunk_cap bytes (producer): the
 * current chunk is queued first, so records stay in order; waits while the
 * previous big record is still being written.  NULL if the spool failed. */
static struct chunk *take_big(struct spool *s, size_t need)
{
	pthread_mutex_lock(&s->mu);
	if (s->cur && s->cur->len) {
		push_locked(s, s->cur);
		s->cur = NULL;
	}
	int stalled = 0;
	while (s->big_busy && !s->failed) {
		if (!stalled) {
			atomic_fetch_add(&s->stats.stalls, 1);
			stalled = 1;
		}
		timed_wait(&s->wake_producer, &s->mu, 1000);
	}
	int failed = s->failed;
	if (!failed)
		s->big_busy = 1;
	pthread_mutex_unlock(&s->mu);
	if (failed)
		return NULL;
	s->big.data = xmalloc(need);
	s->big.len = 0;
	s->big.nrec = 0;
	return &s->big;
}

int spool_add(struct spool *s, const char *raw, size_t len, uint64_t recv_us)
{
	size_t need = seg_record_size(s->node_len, len);
	if (len > s->opts.max_event_size) {
		errno = EMSGSIZE;
		return -1;
	}
	if (s->cur_ready) { /* first event of a batch: take the chunk back */
		pthread_mutex_lock(&s->mu);
		s->cur_ready = 0;
		pthread_mutex_unlock(&s->mu);
	}
	struct chunk *c;
	if (need > s->chunk_cap) {
		c = take_big(s, need);
		if (!c)
			return -1;
	} else {
		if (ensure_room(s, need) < 0)
			return -1;
		c = s->cur;
	}
	uint64_t seq = s->next_seq++;
	seg_record_encode(c->data + c->len, seq, recv_us, s->opts.record_flags, s->node, s->node_len, raw, len);
	c->len += need;
	c->nrec++;
	c->last_seq = seq;
	atomic_fetch_add(&s->stats.events, 1);
	atomic_fetch_add(&s->stats.bytes, len);
	atomic_fetch_add(&s->stats.backlog_bytes, need);
	if (c->big) { /* queued at once, after every record before it */
		pthread_mutex_lock(&s->mu);
		push_locked(s, c);
		pthread_mutex_unlock(&s->mu);
	}
	return 0;
}

void spool_batch_end(struct spool *s)
{
	pthread_mutex_lock(&s->mu);
	if (s->cur && s->cur->len) {
		if (s->writer_idle) {
			push_locked(s, s->cur);
			s->cur = NULL;
		} else {
			s->cur_ready = 1; /* the writer may take it when it is done */
		}
	}
	pthread_mutex_unlock(&s->mu);
}

int spool_close(struct spool *s, uint64_t *stored, char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (s->cur && s->cur->len && !s->cur_ready) {
		push_locked(s, s->cur);
		s->cur = NULL;
	}
	s->closing = 1;
	pthread_cond_signal(&s->wake_writer);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	if (s->has_syncer) { /* it syncs what the writer wrote, then stops */
		pthread_mutex_lock(&s->wmu);
		s->sync_stop = 1;
		pthread_cond_signal(&s->wake_syncer);
		pthread_mutex_unlock(&s->wmu);
		pthread_join(s->syncer, NULL);
	}
	if (s->failed) {
		uint64_t lost = atomic_load(&s->stats.events) - atomic_load(&s->stats.written);
		snprintf(err, errlen, "%s; %" PRIu64 " accepted events could not be stored (every stored one is intact and in order)",
			 s->fail_msg, lost);
		rc = -1;
	}
	if (stored)
		*stored = atomic_load(&s->stats.written);
	uint64_t last = s->next_seq - 1;
	if (seg_writer_close(&s->w) < 0) {
		if (!rc)
			snprintf(err, errlen, "cannot fsync segment of node %s: %s", s->node, strerror(errno));
		rc = -1;
	} else if (!s->failed) {
		atomic_store(&s->stats.synced_seq, last);
	}
	for (size_t i = 0; i < s->nchunks; i++)
		free(s->all[i].data);
	free(s->all);
	free(s->big.data); /* still queued when the writer stopped */
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->wake_writer);
	pthread_cond_destroy(&s->wake_producer);
	pthread_mutex_destroy(&s->wmu);
	pthread_cond_destroy(&s->wake_syncer);
	free(s);
	return rc;
}

int spool_error(struct spool *s, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->mu);
	int e = s->failed;
	if (e && err)
		snprintf(err, errlen, "%s", s->fail_msg);
	pthread_mutex_unlock(&s->mu);
	return e;
}

struct spool_stats *spool_stats(struct spool *s)
{
	return &s->stats;
}

uint64_t spool_next_seq(const struct spool *s)
{
	return s->next_seq;
}
