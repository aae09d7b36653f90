#include "inspect.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exitcode.h"
#include "log.h"
#include "segment.h"
#include "xalloc.h"

struct totals {
	uint64_t records, segments, corrupt;
};

static void sha1_hex(const char *p, size_t n, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_Digest(p, n, md, &len, EVP_sha1(), NULL);
	for (unsigned i = 0; i < len && i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[40] = '\0';
}

static void print_record(const struct seg_record *rec)
{
	char sha[41];
	sha1_hex(rec->data, rec->data_len, sha);
	const char *name = "-";
	size_t name_len = 1;
	/* first line "Event: Name" */
	if (rec->data_len > 7 && !strncasecmp(rec->data, "Event:", 6)) {
		const char *v = rec->data + 6;
		const char *end = rec->data + rec->data_len;
		while (v < end && *v == ' ')
			v++;
		const char *e = v;
		while (e < end && *e != '\r' && *e != '\n')
			e++;
		name = v;
		name_len = (size_t)(e - v);
	}
	printf("%.*s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %zu %s %.*s\n", (int)rec->node_len, rec->node,
	       rec->seq, rec->pos.segno, rec->pos.offset, rec->recv_us, rec->data_len, sha, (int)name_len, name);
}

static int inspect_node(const char *spool, const char *node, enum inspect_mode mode, struct totals *t)
{
	char *dir = xasprintf("%s/%s", spool, node);
	uint64_t *list;
	size_t n;
	int rc = EXIT_OK;
	if (seg_list(dir, &list, &n) < 0) {
		log_error("cannot read \"%s\": %s", dir, strerror(errno));
		free(dir);
		return EXIT_NOINPUT;
	}
	free(list);
	t->segments += n;
	struct seg_reader r;
	struct seg_record rec;
	seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
	for (;;) {
		enum seg_status st = seg_reader_next(&r, &rec);
		if (st == SEG_OK) {
			t->records++;
			if (rec.node_len != strlen(node) || memcmp(rec.node, node, rec.node_len)) {
				log_error("%s/%016" PRIu64 ".seg: offset %" PRIu64 ": record of node \"%.*s\" in the spool of \"%s\"",
					  dir, rec.pos.segno, rec.pos.offset, (int)rec.node_len, rec.node, node);
				t->corrupt++;
			}
			/* sequences: the reader reports gaps and steps back as corrupt */
			if (mode == INSPECT_LIST)
				print_record(&rec);
			else if (mode == INSPECT_DUMP && fwrite(rec.data, 1, rec.data_len, stdout) != rec.data_len) {
				rc = EXIT_IOERR;
				break;
			}
			continue;
		}
		if (st == SEG_END) {
			if (r.torn_bytes)
				log_warn("%s/%016" PRIu64 ".seg: %" PRIu64 " bytes of an incomplete record at offset %" PRIu64
					 " (being written, or a torn tail the collector truncates at start-up)",
					 dir, r.pos.segno, r.torn_bytes, r.pos.offset);
			break;
		}
		if (st == SEG_IOERR) {
			log_error("%s", r.err);
			rc = EXIT_IOERR;
			break;
		}
		t->corrupt++;
		log_error("corrupt: %s", r.err);
		int gap = r.gap_pending;
		uint64_t skipped = seg_reader_resync(&r);
		if (gap && r.lost_records)
			log_error("%" PRIu64 " records are missing before this one", r.lost_records);
		else if (!gap)
			log_error("skipped %" PRIu64 " bytes to the next valid record", skipped);
	}
	seg_reader_close(&r);
	free(dir);
	return rc;
}

int inspect_spool(const char *spool, const char *node, enum inspect_mode mode)
{
	struct stat st;
	if (stat(spool, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("spool \"%s\" is not a directory: %s", spool, errno ? strerror(errno) : "not a directory");
		return EXIT_NOINPUT;
	}
	struct totals t = { 0, 0, 0 };
	int rc = EXIT_OK;
	if (node) {
		rc = inspect_node(spool, node, mode, &t);
	} else {
		char **nodes;
		size_t n;
		char lerr[512];
		if (seg_list_nodes(spool, &nodes, &n, lerr, sizeof lerr) < 0) {
			log_error("%s", lerr);
			return EXIT_NOINPUT;
		}
		for (size_t i = 0; i < n; i++) {
			int r = inspect_node(spool, nodes[i], mode, &t);
			if (r && !rc)
				rc = r;
			free(nodes[i]);
		}
		free(nodes);
	}
	if (mode == INSPECT_VERIFY)
		printf("records=%" PRIu64 " segments=%" PRIu64 " corrupt=%" PRIu64 "\n", t.records, t.segments, t.corrupt);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_error("cannot write to standard output: %s", strerror(errno));
		return EXIT_IOERR;
	}
	if (rc)
		return rc;
	return t.corrupt ? EXIT_DATAERR : EXIT_OK;
}
