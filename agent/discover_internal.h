/*
 * discover_internal.h — struct discover and its limits, for discover.c,
 * its unit test (tests/unit/test_discover.c checks the names it builds
 * and its peer queue) and its fuzz target (fuzz/fuzz_mdns.c bounds the
 * peers per packet by DNS_MAX_RECORDS).  Other agent code uses discover.h.
 */
#ifndef VIGIL_AGENT_DISCOVER_INTERNAL_H
#define VIGIL_AGENT_DISCOVER_INTERNAL_H

#include "discover.h"
#include "dns_wire.h"

/* questions and records looked at per packet; past them a query is
 * answered for its first ones, a response's further records are ignored */
#define DNS_MAX_QUESTIONS 32
#define DNS_MAX_RECORDS 64

#define PEER_QUEUE_MAX 32
#define SEEN_MAX 256

struct discover {
	struct dns_name service, instance, host, enumeration;
	char txt[256];
	size_t txt_len;
	uint8_t addr[16]; /* our advertised address */
	uint8_t addr_len;
	uint16_t port;
	char self[DISCOVER_ADDR_MAX];
	unsigned ifindex;
	uint16_t mdns_port;
	int64_t poll_interval_ms;
	int listen_fd, query_fd;
	int64_t next_query_ms;
	unsigned queries_scheduled;
	char queue[PEER_QUEUE_MAX][DISCOVER_ADDR_MAX];
	unsigned queue_head, queue_len;
	char seen[SEEN_MAX][DISCOVER_ADDR_MAX];
	unsigned seen_len, seen_next;
	struct dns_record records[DNS_MAX_RECORDS];
	uint8_t rx[DNS_PACKET_MAX];
	uint8_t tx[DNS_PACKET_MAX];
	struct discover_stats stats;
};

#endif
