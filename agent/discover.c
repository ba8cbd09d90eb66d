/*
 * discover.c — serf's -discover: an mDNS responder for our serf service
 * instance and a periodic browser for the others (see discover.h for the
 * names and records, which follow hashicorp/mdns as serf's agent uses it).
 *
 * DNS messages are encoded and decoded by dns_wire.c, which refuses what
 * does not decode (reads past the packet, compression loops, overlong
 * names); here the counts of questions and records looked at per packet
 * are capped, and a packet that does not decode is counted in
 * stats.malformed and otherwise ignored.
 */
#include "discover_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* hashicorp/mdns's defaultTTL */
#define DNS_TTL 120

/* hashicorp/mdns's SRV record */
#define SRV_PRIORITY 10
#define SRV_WEIGHT 1

/* per socket per discover_step: the rest waits for the next poll round */
#define PACKETS_PER_STEP 16
/* serf queries once at start; two early repeats cover agents that start
 * together, whose first query may go out before the other listens. */
#define EARLY_QUERY_COUNT 2
#define EARLY_QUERY_GAP_MS 1500

/* ------------------------------------------------------------- answers */

enum answer_record {
	ANSWER_ENUMERATION = 1, /* _services._dns-sd._udp.local. PTR service */
	ANSWER_PTR = 2,		/* service PTR instance */
	ANSWER_SRV = 4,		/* instance SRV host:port */
	ANSWER_ADDR = 8,	/* host A or AAAA */
	ANSWER_TXT = 16,	/* instance TXT */
};

/* The records hashicorp/mdns's MDNSService.Records gives for a question. */
static unsigned records_for_question(const struct discover *d, const struct dns_name *name, uint16_t type)
{
	bool any = type == DNS_TYPE_ANY;
	uint16_t addr_type = d->addr_len == 4 ? DNS_TYPE_A : DNS_TYPE_AAAA;
	if (dns_name_equal(name, &d->enumeration))
		return any || type == DNS_TYPE_PTR ? ANSWER_ENUMERATION : 0;
	if (dns_name_equal(name, &d->service))
		return any || type == DNS_TYPE_PTR ? ANSWER_PTR | ANSWER_SRV | ANSWER_ADDR | ANSWER_TXT : 0;
	if (dns_name_equal(name, &d->instance)) {
		if (any)
			return ANSWER_SRV | ANSWER_ADDR | ANSWER_TXT;
		if (type == DNS_TYPE_SRV)
			return ANSWER_SRV | ANSWER_ADDR;
		if (type == DNS_TYPE_TXT)
			return ANSWER_TXT;
		return type == addr_type ? ANSWER_ADDR : 0;
	}
	if (dns_name_equal(name, &d->host) && type == addr_type)
		return ANSWER_ADDR;
	return 0;
}

static unsigned count_bits(unsigned v)
{
	unsigned n = 0;
	for (; v; v &= v - 1)
		n++;
	return n;
}

/* The response with the wanted records, in hashicorp/mdns's order (PTR,
 * SRV, A/AAAA, TXT: its client aliases the SRV target to the instance
 * before it reads the address).  echoed, if not NULL, is repeated in the
 * question section (RFC 6762 6.7: legacy unicast replies must). */
static size_t encode_answer(const struct discover *d, unsigned wanted, uint16_t id,
			    const struct dns_question *echoed, uint8_t *out, size_t cap)
{
	struct dns_writer w = {out, cap, 0, false};
	dns_put_header(&w, id, DNS_FLAG_RESPONSE | DNS_FLAG_AUTHORITATIVE, echoed ? 1 : 0,
		       (uint16_t)count_bits(wanted));
	if (echoed)
		dns_put_question(&w, echoed);
	if (wanted & ANSWER_ENUMERATION) {
		dns_put_record_start(&w, &d->enumeration, DNS_TYPE_PTR, DNS_TTL, d->service.len);
		dns_put_name(&w, &d->service);
	}
	if (wanted & ANSWER_PTR) {
		dns_put_record_start(&w, &d->service, DNS_TYPE_PTR, DNS_TTL, d->instance.len);
		dns_put_name(&w, &d->instance);
	}
	if (wanted & ANSWER_SRV) {
		dns_put_record_start(&w, &d->instance, DNS_TYPE_SRV, DNS_TTL, 6 + (size_t)d->host.len);
		dns_put_u16(&w, SRV_PRIORITY);
		dns_put_u16(&w, SRV_WEIGHT);
		dns_put_u16(&w, d->port);
		dns_put_name(&w, &d->host);
	}
	if (wanted & ANSWER_ADDR) {
		dns_put_record_start(&w, &d->host, d->addr_len == 4 ? DNS_TYPE_A : DNS_TYPE_AAAA, DNS_TTL,
				     d->addr_len);
		dns_put_bytes(&w, d->addr, d->addr_len);
	}
	if (wanted & ANSWER_TXT) {
		uint8_t txt_len = (uint8_t)d->txt_len;
		dns_put_record_start(&w, &d->instance, DNS_TYPE_TXT, DNS_TTL, 1 + (size_t)d->txt_len);
		dns_put_bytes(&w, &txt_len, 1);
		dns_put_bytes(&w, d->txt, d->txt_len);
	}
	return w.overflow ? 0 : w.len;
}

size_t discover_answer_query(struct discover *d, const uint8_t *pkt, size_t len, bool echo_id,
			     bool *unicast_requested, uint8_t *out, size_t cap)
{
	struct dns_header h;
	*unicast_requested = false;
	if (dns_read_header(pkt, len, &h) != 0) {
		d->stats.malformed++;
		return 0;
	}
	if ((h.flags & DNS_FLAG_RESPONSE) || !dns_is_plain(&h))
		return 0;
	size_t pos = DNS_HEADER_LEN;
	unsigned wanted = 0;
	unsigned questions = h.questions < DNS_MAX_QUESTIONS ? h.questions : DNS_MAX_QUESTIONS;
	struct dns_question q;
	for (unsigned i = 0; i < questions; i++) {
		if (dns_read_question(pkt, len, &pos, &q) != 0) {
			d->stats.malformed++;
			return 0;
		}
		uint16_t plain_class = q.klass & (uint16_t)~DNS_CLASS_UNICAST_BIT;
		if (plain_class != DNS_CLASS_IN && plain_class != DNS_CLASS_ANY)
			continue;
		unsigned records = records_for_question(d, &q.name, q.type);
		if (records && (q.klass & DNS_CLASS_UNICAST_BIT))
			*unicast_requested = true;
		wanted |= records;
	}
	if (!wanted)
		return 0;
	/* legacy resolvers ask one question; a single one is repeated */
	bool echo_question = echo_id && h.questions == 1;
	return encode_answer(d, wanted, echo_id ? h.id : 0, echo_question ? &q : NULL, out, cap);
}

size_t discover_build_query(const struct discover *d, uint8_t *buf, size_t cap)
{
	struct dns_writer w = {buf, cap, 0, false};
	/* RFC 6762 18.1: ID 0; hashicorp/mdns asks without the unicast bit */
	dns_put_header(&w, 0, 0, 1, 0);
	dns_put_name(&w, &d->service);
	dns_put_u16(&w, DNS_TYPE_PTR);
	dns_put_u16(&w, DNS_CLASS_IN);
	return w.overflow ? 0 : w.len;
}

/* ------------------------------------------------------------ peers */

static bool seen_before(const struct discover *d, const char *addr)
{
	for (unsigned i = 0; i < d->seen_len; i++)
		if (strcmp(d->seen[i], addr) == 0)
			return true;
	return false;
}

/* Remembers addr; past SEEN_MAX the oldest is forgotten (and would be
 * handed out again if it is still announced). */
static void remember(struct discover *d, const char *addr)
{
	snprintf(d->seen[d->seen_next], DISCOVER_ADDR_MAX, "%s", addr);
	d->seen_next = (d->seen_next + 1) % SEEN_MAX;
	if (d->seen_len < SEEN_MAX)
		d->seen_len++;
}

static void format_addr(const uint8_t *addr, uint8_t addr_len, uint16_t port, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];
	inet_ntop(addr_len == 4 ? AF_INET : AF_INET6, addr, ip, sizeof ip);
	snprintf(out, outlen, addr_len == 4 ? "%s:%u" : "[%s]:%u", ip, (unsigned)port);
}

/* Queues addr unless it is ours or was handed out before; true if queued.
 * A full queue drops it unremembered, so a later poll finds it again. */
static bool offer_peer(struct discover *d, const char *addr)
{
	if (strcmp(addr, d->self) == 0 || seen_before(d, addr) || d->queue_len == PEER_QUEUE_MAX)
		return false;
	unsigned slot = (d->queue_head + d->queue_len) % PEER_QUEUE_MAX;
	snprintf(d->queue[slot], DISCOVER_ADDR_MAX, "%s", addr);
	d->queue_len++;
	remember(d, addr);
	d->stats.peers_found++;
	return true;
}

/* The address record for an SRV target: the first A, else the first
 * AAAA (serf's agent joins over IPv4 when the responder has both). */
static const struct dns_record *address_of(const struct discover *d, unsigned count,
					   const struct dns_name *host)
{
	const struct dns_record *v6 = NULL;
	for (unsigned i = 0; i < count; i++) {
		const struct dns_record *r = &d->records[i];
		if ((r->type != DNS_TYPE_A && r->type != DNS_TYPE_AAAA) || !dns_name_equal(&r->owner, host))
			continue;
		if (r->type == DNS_TYPE_A)
			return r;
		if (!v6)
			v6 = r;
	}
	return v6;
}

/* Each SRV record of an instance of our service, with an address for its
 * target in the same packet, is a peer.  hashicorp/mdns's responder sends
 * them together; a responder that does not is not followed up. */
static int collect_peers(struct discover *d, unsigned count)
{
	int queued = 0;
	for (unsigned i = 0; i < count; i++) {
		const struct dns_record *srv = &d->records[i];
		/* TTL 0 is a goodbye (RFC 6762 10.1): the instance is leaving */
		if (srv->type != DNS_TYPE_SRV || srv->ttl == 0 || srv->port == 0 ||
		    !dns_name_is_instance_of(&srv->owner, &d->service))
			continue;
		const struct dns_record *a = address_of(d, count, &srv->target);
		if (!a)
			continue;
		char addr[DISCOVER_ADDR_MAX];
		format_addr(a->addr, a->addr_len, srv->port, addr, sizeof addr);
		if (offer_peer(d, addr))
			queued++;
	}
	return queued;
}

int discover_take_response(struct discover *d, const uint8_t *pkt, size_t len)
{
	struct dns_header h;
	if (dns_read_header(pkt, len, &h) != 0 || h.questions > DNS_MAX_QUESTIONS)
		goto malformed;
	if (!(h.flags & DNS_FLAG_RESPONSE) || !dns_is_plain(&h))
		return 0;
	size_t pos = DNS_HEADER_LEN;
	for (unsigned i = 0; i < h.questions; i++) {
		struct dns_question q;
		if (dns_read_question(pkt, len, &pos, &q) != 0)
			goto malformed;
	}
	/* records past the first DNS_MAX_RECORDS are not looked at */
	unsigned total = (unsigned)h.answers + h.authorities + h.additionals;
	unsigned kept_count = 0;
	for (unsigned i = 0; i < total && i < DNS_MAX_RECORDS; i++) {
		bool kept;
		if (dns_read_record(pkt, len, &pos, &d->records[kept_count], &kept) != 0)
			goto malformed;
		if (kept)
			kept_count++;
	}
	return collect_peers(d, kept_count);
malformed:
	d->stats.malformed++;
	return -1;
}

bool discover_next_peer(struct discover *d, char *out, size_t outlen)
{
	if (d->queue_len == 0)
		return false;
	snprintf(out, outlen, "%s", d->queue[d->queue_head]);
	d->queue_head = (d->queue_head + 1) % PEER_QUEUE_MAX;
	d->queue_len--;
	return true;
}

/* ------------------------------------------------------------ sockets */

static struct sockaddr_in group_addr(const struct discover *d)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(d->mdns_port)};
	inet_pton(AF_INET, DISCOVER_MDNS_GROUP, &sa.sin_addr);
	return sa;
}

/* The listener binds the mDNS port beside other responders (serf's, as Go
 * binds multicast listeners, also sets SO_REUSEADDR) and joins the group;
 * the query socket has an ephemeral port, so that answers sent back to
 * the querier reach us and not another socket on port 5353.  Loopback
 * stays on: agents on one host must hear each other. */
static int open_socket(const struct discover *d, bool listener, char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "mDNS socket: %s", strerror(errno));
		return -1;
	}
	int one = 1, ttl = 255; /* RFC 6762 11: IP TTL 255 */
	unsigned char loop = 1;
	struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(listener ? d->mdns_port : 0)};
	struct ip_mreqn iface = {.imr_ifindex = (int)d->ifindex};
	struct ip_mreqn membership = {.imr_multiaddr = group_addr(d).sin_addr, .imr_ifindex = (int)d->ifindex};
	const char *what = NULL;
	if (listener && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
		what = "SO_REUSEADDR";
	else if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0)
		what = "bind";
	else if (listener && setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &membership, sizeof membership) != 0)
		what = "joining " DISCOVER_MDNS_GROUP;
	else if (d->ifindex && setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface) != 0)
		what = "IP_MULTICAST_IF";
	else if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0)
		what = "IP_MULTICAST_TTL";
	else if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0)
		what = "IP_MULTICAST_LOOP";
	if (what) {
		snprintf(err, errlen, "mDNS %s socket: %s: %s", listener ? "listener" : "query", what,
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void send_to(struct discover *d, int fd, const uint8_t *buf, size_t len, const struct sockaddr_in *to)
{
	if (sendto(fd, buf, len, 0, (const struct sockaddr *)to, sizeof *to) != (ssize_t)len)
		d->stats.send_errors++;
}

/* A query heard on the listener: answer it.  RFC 6762 6.7: a querier not
 * on port 5353 (serf's, ours) gets a unicast reply with its ID, like
 * hashicorp/mdns replies to every querier; one on 5353 gets the answer
 * multicast unless it asked for unicast. */
static void answer(struct discover *d, size_t len, const struct sockaddr_in *from)
{
	bool legacy = ntohs(from->sin_port) != d->mdns_port, unicast;
	size_t out_len = discover_answer_query(d, d->rx, len, legacy, &unicast, d->tx, sizeof d->tx);
	if (out_len == 0)
		return;
	struct sockaddr_in group = group_addr(d);
	send_to(d, d->listen_fd, d->tx, out_len, legacy || unicast ? from : &group);
	d->stats.queries_answered++;
}

static void drain(struct discover *d, int fd, bool listener)
{
	for (unsigned i = 0; i < PACKETS_PER_STEP; i++) {
		struct sockaddr_in from;
		socklen_t from_len = sizeof from;
		/* MSG_TRUNC: the real length, so an oversized packet is seen as such */
		ssize_t n = recvfrom(fd, d->rx, sizeof d->rx, MSG_TRUNC, (struct sockaddr *)&from, &from_len);
		if (n < 0)
			return;
		d->stats.packets_received++;
		if ((size_t)n > sizeof d->rx || n < DNS_HEADER_LEN || from.sin_family != AF_INET) {
			d->stats.malformed++;
			continue;
		}
		if (d->rx[2] & 0x80) /* the QR bit: a response */
			discover_take_response(d, d->rx, (size_t)n);
		else if (listener)
			answer(d, (size_t)n, &from);
	}
}

static void send_query(struct discover *d, int64_t now_ms)
{
	size_t len = discover_build_query(d, d->tx, sizeof d->tx);
	struct sockaddr_in group = group_addr(d);
	if (len) {
		send_to(d, d->query_fd, d->tx, len, &group);
		d->stats.queries_sent++;
	}
	d->queries_scheduled++;
	d->next_query_ms = now_ms + (d->queries_scheduled <= EARLY_QUERY_COUNT ? EARLY_QUERY_GAP_MS
									       : d->poll_interval_ms);
}

void discover_step(struct discover *d, int64_t now_ms)
{
	if (d->listen_fd >= 0)
		drain(d, d->listen_fd, true);
	if (d->query_fd >= 0) {
		drain(d, d->query_fd, false);
		if (now_ms >= d->next_query_ms)
			send_query(d, now_ms);
	}
}

int discover_fds(const struct discover *d, int *fds, int max)
{
	int n = 0;
	if (d->listen_fd >= 0 && n < max)
		fds[n++] = d->listen_fd;
	if (d->query_fd >= 0 && n < max)
		fds[n++] = d->query_fd;
	return n;
}

int64_t discover_next_deadline_ms(const struct discover *d)
{
	return d->next_query_ms;
}

const struct discover_stats *discover_get_stats(const struct discover *d)
{
	return &d->stats;
}

/* ------------------------------------------------------------ set-up */

/* The names serf's agent registers (mdns.go mdnsName, hashicorp/mdns
 * NewMDNSService with domain "local."). */
static int build_names(struct discover *d, const struct discover_config *cfg, char *err, size_t errlen)
{
	char host[DNS_NAME_MAX + 2], text[4 * DNS_NAME_MAX];
	if (cfg->host_name && *cfg->host_name) {
		snprintf(host, sizeof host, "%s", cfg->host_name);
	} else if (gethostname(host, sizeof host - 1) != 0) {
		snprintf(err, errlen, "mDNS: cannot determine the host name: %s", strerror(errno));
		return -1;
	}
	host[sizeof host - 1] = '\0';
	int service_len = snprintf(text, sizeof text, "_serf_%s._tcp.local.", cfg->cluster);
	if (service_len >= (int)sizeof text || dns_name_from_dotted(&d->service, text) != 0) {
		snprintf(err, errlen, "mDNS: discovery name '%s' does not make a valid DNS name", cfg->cluster);
		return -1;
	}
	int instance_len = snprintf(text, sizeof text, "%s._serf_%s._tcp.local.", cfg->node_name, cfg->cluster);
	if (instance_len >= (int)sizeof text || dns_name_from_dotted(&d->instance, text) != 0) {
		snprintf(err, errlen, "mDNS: node name '%s' does not make a valid DNS name", cfg->node_name);
		return -1;
	}
	if (dns_name_from_dotted(&d->host, host) != 0) {
		snprintf(err, errlen, "mDNS: host name '%s' is not a valid DNS name", host);
		return -1;
	}
	dns_name_from_dotted(&d->enumeration, "_services._dns-sd._udp.local.");
	int txt_len = snprintf(d->txt, sizeof d->txt, "Serf '%s' cluster", cfg->cluster);
	if (txt_len < 0 || txt_len > 255) { /* one TXT character-string */
		snprintf(err, errlen, "mDNS: discovery name '%s' is too long", cfg->cluster);
		return -1;
	}
	d->txt_len = (size_t)txt_len;
	return 0;
}

static int parse_advertise(struct discover *d, const struct discover_config *cfg, char *err, size_t errlen)
{
	static const uint8_t zeros[16];
	if (cfg->advertise_ip && inet_pton(AF_INET, cfg->advertise_ip, d->addr) == 1)
		d->addr_len = 4;
	else if (cfg->advertise_ip && inet_pton(AF_INET6, cfg->advertise_ip, d->addr) == 1)
		d->addr_len = 16;
	if (d->addr_len == 0 || memcmp(d->addr, zeros, d->addr_len) == 0 || cfg->port == 0) {
		snprintf(err, errlen, "mDNS: need the advertised address and port, not '%s' port %u",
			 cfg->advertise_ip ? cfg->advertise_ip : "(none)", (unsigned)cfg->port);
		return -1;
	}
	d->port = cfg->port;
	format_addr(d->addr, d->addr_len, d->port, d->self, sizeof d->self);
	return 0;
}

void discover_free(struct discover *d)
{
	if (!d)
		return;
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->query_fd >= 0)
		close(d->query_fd);
	free(d);
}

struct discover *discover_create(const struct discover_config *cfg, char *err, size_t errlen)
{
	if (!cfg->cluster || !*cfg->cluster || !cfg->node_name || !*cfg->node_name) {
		snprintf(err, errlen, "mDNS: a discovery name and a node name are required");
		return NULL;
	}
	struct discover *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, errlen, "mDNS: out of memory");
		return NULL;
	}
	d->listen_fd = d->query_fd = -1;
	d->mdns_port = cfg->mdns_port ? cfg->mdns_port : DISCOVER_MDNS_PORT;
	d->poll_interval_ms = cfg->poll_interval_ms > 0 ? cfg->poll_interval_ms : DISCOVER_POLL_INTERVAL_MS;
	if (build_names(d, cfg, err, errlen) != 0 || parse_advertise(d, cfg, err, errlen) != 0)
		goto fail;
	if (cfg->iface && *cfg->iface) {
		d->ifindex = if_nametoindex(cfg->iface);
		if (d->ifindex == 0) {
			snprintf(err, errlen, "mDNS: no network interface '%s'", cfg->iface);
			goto fail;
		}
	}
	return d;
fail:
	free(d);
	return NULL;
}

struct discover *discover_new(const struct discover_config *cfg, char *err, size_t errlen)
{
	struct discover *d = discover_create(cfg, err, errlen);
	if (d && (d->listen_fd = open_socket(d, true, err, errlen)) >= 0)
		d->query_fd = open_socket(d, false, err, errlen);
	if (d && d->query_fd < 0) { /* either socket failed: err says which */
		discover_free(d);
		d = NULL;
	}
	return d;
}
