/*
 * discover.h — serf's `agent -discover=CLUSTER`: mDNS announcement and
 * discovery, wire-compatible with serf's agent (cmd/serf/command/agent/
 * mdns.go on hashicorp/mdns).
 *
 * What goes over the wire (IPv4 multicast 224.0.0.251:5353):
 *   service   "_serf_<cluster>._tcp.local."
 *   instance  "<node>._serf_<cluster>._tcp.local."
 *   host      "<gethostname()>."  (hashicorp/mdns: os.Hostname() + ".")
 * A query for the service (PTR or ANY) is answered with PTR service ->
 * instance, SRV instance -> host (priority 10, weight 1, the memberlist
 * port), A (or AAAA) host -> advertise address and TXT instance ->
 * "Serf '<cluster>' cluster", all in the answer section with TTL 120.
 * Queries are a PTR question for the service.
 *
 * Event-loop use (no threads, no blocking calls):
 *
 *   struct discover *d = discover_new(&cfg, err, sizeof err);
 *   loop:
 *     poll on discover_fds(d, ...) for POLLIN, with a timeout up to
 *     discover_next_deadline_ms(d) (CLOCK_MONOTONIC milliseconds);
 *     discover_step(d, now_ms);             (whether or not fds are ready)
 *     while (discover_next_peer(d, addr, sizeof addr))
 *         join addr;                        ("ip:port" or "[ip6]:port")
 *   discover_free(d);
 *
 * Each address is handed out once (serf's agent also joins each
 * discovered address once, whether or not the join worked); our own
 * advertised address is never handed out.
 */
#ifndef VIGIL_AGENT_DISCOVER_H
#define VIGIL_AGENT_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISCOVER_MDNS_GROUP "224.0.0.251"
#define DISCOVER_MDNS_PORT 5353
/* serf's mdnsPollInterval */
#define DISCOVER_POLL_INTERVAL_MS 60000
/* "255.255.255.255:65535" and "[ipv6]:65535" fit */
#define DISCOVER_ADDR_MAX 64

struct discover_config {
	const char *cluster;	  /* the -discover value */
	const char *node_name;	  /* our node name: the instance label(s) */
	const char *advertise_ip; /* our advertised address, IPv4 or IPv6 literal */
	uint16_t port;		  /* our advertised memberlist port */
	const char *iface;	  /* multicast interface name, NULL: the kernel's choice */
	/* Optional, 0/NULL for serf's values: */
	const char *host_name;	  /* SRV target; default gethostname() + "." */
	int64_t poll_interval_ms; /* default DISCOVER_POLL_INTERVAL_MS */
	uint16_t mdns_port;	  /* default DISCOVER_MDNS_PORT (tests only) */
};

struct discover_stats {
	uint64_t packets_received;
	uint64_t malformed;	    /* undecodable packets, ignored */
	uint64_t queries_answered;
	uint64_t queries_sent;
	uint64_t peers_found;	    /* distinct addresses handed out */
	uint64_t send_errors;
};

struct discover;

/* Validates cfg, opens and joins the multicast sockets.  NULL with a
 * message in err on failure. */
struct discover *discover_new(const struct discover_config *cfg, char *err, size_t errlen);

/* Like discover_new, without sockets: for tests of the packet logic. */
struct discover *discover_create(const struct discover_config *cfg, char *err, size_t errlen);

void discover_free(struct discover *d);

/* Writes up to max socket fds to poll for POLLIN; returns how many. */
int discover_fds(const struct discover *d, int *fds, int max);

/* When discover_step must run next at the latest (monotonic ms). */
int64_t discover_next_deadline_ms(const struct discover *d);

/* Reads what the sockets have (a bounded number of packets), answers
 * queries for our service and sends our periodic query when due. */
void discover_step(struct discover *d, int64_t now_ms);

/* Pops a discovered peer address into out; false when there is none. */
bool discover_next_peer(struct discover *d, char *out, size_t outlen);

const struct discover_stats *discover_get_stats(const struct discover *d);

/* The packet logic under discover_step, exposed for tests. */

/* Our query for the service; returns its length, 0 if cap is too small. */
size_t discover_build_query(const struct discover *d, uint8_t *buf, size_t cap);

/* The answer to query packet pkt (the records our service has for its
 * questions) into out; returns its length, 0 for no answer (not a query,
 * malformed, or nothing of ours asked).  echo_id: a legacy unicast query
 * (RFC 6762 6.7, source port not 5353) gets its ID and its question back
 * (if it asked just one), others ID 0 and no question.
 * *unicast_requested tells if a question had the unicast-response bit. */
size_t discover_answer_query(struct discover *d, const uint8_t *pkt, size_t len, bool echo_id,
			     bool *unicast_requested, uint8_t *out, size_t cap);

/* Takes the instances of our service from response packet pkt into the
 * peer queue; returns how many new peers it queued, -1 if malformed. */
int discover_take_response(struct discover *d, const uint8_t *pkt, size_t len);

#endif
