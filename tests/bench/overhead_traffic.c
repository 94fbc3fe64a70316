// SPDX-License-Identifier: MIT
/*
 * Unrelated TCP traffic for tests/bench/wire_overhead.ts, as fast as it goes.
 * Built by the bench with `gcc -O2 -pthread`; its process name is never the
 * followed one.
 *
 *   overhead_traffic sink PORT
 *     accepts on 0.0.0.0:PORT, reads and discards every connection; prints
 *     "ready PORT" once listening.
 *   overhead_traffic send ADDR PORT STREAMS WRITE
 *     opens STREAMS connections to ADDR:PORT and writes WRITE-byte buffers
 *     on each (TCP_NODELAY) until standard input closes. Each line read from
 *     standard input samples the connections' tcp_info and prints
 *     "mark NS BYTES_ACKED SEGS_OUT SEGS_IN": CLOCK_MONOTONIC nanoseconds and
 *     the sums over the connections (segments as TCP counts them: one per
 *     MSS, so a GSO super-packet counts as many).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 64
#define READ_SIZE (256 * 1024)

static void die(const char *what)
{
	fprintf(stderr, "overhead_traffic: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *drain(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(READ_SIZE);

	if (!buf)
		die("malloc");
	while (read(fd, buf, READ_SIZE) > 0)
		;
	close(fd);
	free(buf);
	return NULL;
}

static void __attribute__((noreturn)) sink(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64))
		die("bind/listen");
	if (getsockname(fd, (struct sockaddr *)&a, &len))
		die("getsockname");
	printf("ready %d\n", ntohs(a.sin_port));
	fflush(stdout);
	for (;;) {
		pthread_t t;
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		if (pthread_create(&t, NULL, drain, (void *)(intptr_t)c))
			die("pthread_create");
		pthread_detach(t);
	}
}

struct stream {
	int fd;
	size_t write;
};

static void *pump(void *arg)
{
	struct stream *s = arg;
	char *buf = calloc(1, s->write);

	if (!buf)
		die("calloc");
	while (write(s->fd, buf, s->write) > 0)
		;
	return NULL;
}

static int send_traffic(const char *addr, int port, int streams, size_t size)
{
	struct stream s[MAX_STREAMS];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	char line[64];

	if (streams < 1 || streams > MAX_STREAMS || size < 1)
		return fprintf(stderr, "overhead_traffic: bad STREAMS or WRITE\n"), 2;
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		return fprintf(stderr, "overhead_traffic: bad address \"%s\"\n", addr), 2;
	for (int i = 0; i < streams; i++) {
		pthread_t t;
		int one = 1;

		s[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		s[i].write = size;
		if (s[i].fd < 0)
			die("socket");
		setsockopt(s[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(s[i].fd, (struct sockaddr *)&a, sizeof(a)))
			die("connect");
		if (pthread_create(&t, NULL, pump, &s[i]))
			die("pthread_create");
		pthread_detach(t);
	}
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t bytes = 0, out = 0, in = 0;
		struct timespec ts;

		for (int i = 0; i < streams; i++) {
			struct tcp_info ti;
			socklen_t len = sizeof(ti);

			memset(&ti, 0, sizeof(ti));
			if (getsockopt(s[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
				die("TCP_INFO");
			bytes += ti.tcpi_bytes_acked;
			out += ti.tcpi_segs_out;
			in += ti.tcpi_segs_in;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("mark %llu %llu %llu %llu\n",
		       (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec,
		       (unsigned long long)bytes, (unsigned long long)out,
		       (unsigned long long)in);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "sink"))
		sink(atoi(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "send"))
		return send_traffic(argv[2], atoi(argv[3]), atoi(argv[4]),
				    strtoul(argv[5], NULL, 10));
	fprintf(stderr, "usage: overhead_traffic sink PORT | send ADDR PORT STREAMS WRITE\n");
	return 2;
}
