/*
 * tcpcopy - the physical ceiling for the collector benchmark: connect to an
 * AMI server, log in, and copy every byte it sends into a file until
 * --bytes have arrived, then fdatasync.  No parsing, no framing.
 *
 *   tcpcopy HOST PORT USER OUTFILE BYTES      (secret from $CDRFLOW_AMI_SECRET)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsx.h"

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: tcpcopy HOST PORT USER OUTFILE BYTES\n");
		return 64;
	}
	char *end;
	unsigned long long want = strtoull(argv[5], &end, 10);
	const char *secret = getenv("CDRFLOW_AMI_SECRET");
	if (*end || !secret) {
		fprintf(stderr, "tcpcopy: bad BYTES or CDRFLOW_AMI_SECRET unset\n");
		return 64;
	}
	struct addrinfo hints = { 0 }, *ai;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) {
		fprintf(stderr, "tcpcopy: cannot resolve %s\n", argv[1]);
		return 69;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		fprintf(stderr, "tcpcopy: connect: %s\n", strerror(errno));
		return 69;
	}
	freeaddrinfo(ai);
	int rcvbuf = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	char login[512];
	int n = snprintf(login, sizeof login, "Action: Login\r\nUsername: %s\r\nSecret: %s\r\nEvents: on\r\n\r\n",
			 argv[3], secret);
	if (write_full(fd, login, (size_t)n) < 0)
		return 74;
	int out = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		fprintf(stderr, "tcpcopy: %s: %s\n", argv[4], strerror(errno));
		return 73;
	}
	static char buf[256 << 10];
	unsigned long long got = 0;
	while (got < want) {
		ssize_t k = read(fd, buf, sizeof buf);
		if (k <= 0)
			break;
		if (write_full(out, buf, (size_t)k) < 0)
			return 74;
		got += (unsigned long long)k;
	}
	if (fdatasync(out) < 0 || close(out) < 0)
		return 74;
	close(fd);
	printf("%llu\n", got);
	return got >= want ? 0 : 1;
}
