/*
 * discover_probe.c — drives agent/discover.c alone, for
 * tests/interop/test_discover.sh: announces NODE at IP:PORT in mDNS
 * cluster CLUSTER, browses it, prints "peer ADDR" for each address found,
 * and exits after SECONDS (status 0), or as soon as ADDR shows up with
 * -expect ADDR (status 0; 1 if it never does).  It prints "# ready" once
 * its sockets are open and a last "# stats" line with the module's
 * counters.
 *
 *   discover_probe CLUSTER NODE IP PORT SECONDS [-expect ADDR] [-iface IFACE]
 *
 * Built by the script with cc from agent/discover.c and agent/dns_wire.c.
 */
#include "discover.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_stats(const struct discover *d)
{
	const struct discover_stats *s = discover_get_stats(d);
	printf("# stats received=%llu malformed=%llu answered=%llu queries=%llu peers=%llu send_errors=%llu\n",
	       (unsigned long long)s->packets_received, (unsigned long long)s->malformed,
	       (unsigned long long)s->queries_answered, (unsigned long long)s->queries_sent,
	       (unsigned long long)s->peers_found, (unsigned long long)s->send_errors);
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: %s CLUSTER NODE IP PORT SECONDS [-expect ADDR] [-iface IFACE]\n", argv[0]);
		return 2;
	}
	const char *expect = NULL, *iface = NULL;
	for (int i = 6; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "-expect") == 0)
			expect = argv[i + 1];
		else if (strcmp(argv[i], "-iface") == 0)
			iface = argv[i + 1];
	}
	struct discover_config cfg = {
		.cluster = argv[1],
		.node_name = argv[2],
		.advertise_ip = argv[3],
		.port = (uint16_t)atoi(argv[4]),
		.iface = iface,
	};
	char err[256];
	struct discover *d = discover_new(&cfg, err, sizeof err);
	if (!d) {
		fprintf(stderr, "discover_probe: %s\n", err);
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# ready\n"); /* the sockets are open: queries get answers from now on */

	int64_t end = monotonic_ms() + (int64_t)atoi(argv[5]) * 1000;
	int status = expect ? 1 : 0;
	while (!stop) {
		int64_t now = monotonic_ms();
		if (now >= end)
			break;
		discover_step(d, now);
		char addr[DISCOVER_ADDR_MAX];
		while (discover_next_peer(d, addr, sizeof addr)) {
			printf("peer %s\n", addr);
			if (expect && strcmp(addr, expect) == 0)
				status = 0;
		}
		if (expect && status == 0)
			break;
		struct pollfd fds[2];
		int fd_list[2], n = discover_fds(d, fd_list, 2);
		for (int i = 0; i < n; i++)
			fds[i] = (struct pollfd){.fd = fd_list[i], .events = POLLIN};
		int64_t wait = discover_next_deadline_ms(d) - now;
		if (wait > end - now)
			wait = end - now;
		if (wait < 0)
			wait = 0;
		if (poll(fds, (nfds_t)n, (int)wait) < 0 && errno != EINTR)
			break;
	}
	print_stats(d);
	discover_free(d);
	return status;
}
