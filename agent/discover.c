/*
 * discover.c — serf's -discover: an mDNS responder for our serf service
 * instance and a periodic browser for the others (see discover.h for the
 * names and records, which follow hashicorp/mdns as serf's agent uses it).
 *
 * DNS messages are encoded and decoded here (RFC 1035, RFC 6762): every
 * read is bounds-checked against the packet, name compression pointers
 * must point strictly before the previous jump (so they cannot loop) and
 * are capped in number, names stay within 255 bytes, and the counts of
 * questions and records looked at per packet are capped.  A packet that
 * does not decode is counted in stats.malformed and otherwise ignored.
 */
#include "discover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_HEADER_LEN 12
#define DNS_NAME_MAX 255
#define DNS_LABEL_MAX 63
#define DNS_MAX_POINTER_HOPS 16
/* RFC 6762 17: an mDNS message may be up to 9000 bytes (jumbo frames). */
#define DNS_PACKET_MAX 9000
#define DNS_MAX_QUESTIONS 32
#define DNS_MAX_RECORDS 64
/* hashicorp/mdns's defaultTTL */
#define DNS_TTL 120

#define DNS_TYPE_A 1
#define DNS_TYPE_PTR 12
#define DNS_TYPE_TXT 16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
#define DNS_TYPE_ANY 255
#define DNS_CLASS_IN 1
#define DNS_CLASS_ANY 255
/* RFC 6762 18.12: top bit of a question's class asks for a unicast reply */
#define DNS_CLASS_UNICAST_BIT 0x8000

#define DNS_FLAG_RESPONSE 0x8000
#define DNS_FLAG_AUTHORITATIVE 0x0400
#define DNS_OPCODE_MASK 0x7800
#define DNS_RCODE_MASK 0x000f

/* hashicorp/mdns's SRV record */
#define SRV_PRIORITY 10
#define SRV_WEIGHT 1

#define PEER_QUEUE_MAX 32
#define SEEN_MAX 256
/* per socket per discover_step: the rest waits for the next poll round */
#define PACKETS_PER_STEP 16
/* serf queries once at start; two early repeats cover agents that start
 * together, whose first query may go out before the other listens. */
#define EARLY_QUERY_COUNT 2
#define EARLY_QUERY_GAP_MS 1500

/* A name in uncompressed wire form: length-prefixed labels, then 0. */
struct dns_name {
	uint8_t wire[DNS_NAME_MAX];
	uint16_t len;
};

struct dns_header {
	uint16_t id, flags, questions, answers, authorities, additionals;
};

/* The parts of a resource record that discovery uses. */
struct dns_record {
	struct dns_name owner;
	uint16_t type;
	uint32_t ttl;
	uint16_t port;		/* SRV */
	struct dns_name target; /* SRV target, PTR domain */
	uint8_t addr[16];	/* A, AAAA */
	uint8_t addr_len;
};

struct dns_writer {
	uint8_t *buf;
	size_t cap, len;
	bool overflow;
};

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

/* ---------------------------------------------------------------- names */

/* "a.b.c." or "a.b.c" to wire form; -1 for an empty label, a label over
 * 63 bytes or a name over 255 (miekg/dns refuses to pack those too). */
static int name_from_dotted(struct dns_name *n, const char *text)
{
	size_t text_len = strlen(text);
	if (text_len > 0 && text[text_len - 1] == '.')
		text_len--;
	if (text_len == 0)
		return -1;
	n->len = 0;
	size_t start = 0;
	for (size_t i = 0; i <= text_len; i++) {
		if (i < text_len && text[i] != '.')
			continue;
		size_t label = i - start;
		if (label == 0 || label > DNS_LABEL_MAX || n->len + 1 + label + 1 > DNS_NAME_MAX)
			return -1;
		n->wire[n->len++] = (uint8_t)label;
		memcpy(n->wire + n->len, text + start, label);
		n->len = (uint16_t)(n->len + label);
		start = i + 1;
	}
	n->wire[n->len++] = 0;
	return 0;
}

static uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* DNS names compare without ASCII case (RFC 1035 2.3.3).  Folding the
 * length bytes too is harmless: they are at most 63, below 'A'. */
static bool wire_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

static bool name_equal(const struct dns_name *a, const struct dns_name *b)
{
	return wire_equal(a->wire, a->len, b->wire, b->len);
}

/* Is name "<one or more labels>.<service>"?  The instance name may have
 * several labels: hashicorp/mdns splits a node name on its dots. */
static bool name_is_instance_of(const struct dns_name *name, const struct dns_name *service)
{
	size_t off = 0;
	while (off < name->len && name->wire[off] != 0) {
		off += 1 + (size_t)name->wire[off];
		if (off < name->len && name->len - off == service->len)
			return wire_equal(name->wire + off, service->len, service->wire, service->len);
	}
	return false;
}

/*
 * Reads the possibly compressed name at *pos into out and moves *pos past
 * the name's bytes in place.  Every pointer must point before the previous
 * jump target (before the name's start for the first): compressors only
 * point back at names already written, and a strictly decreasing target
 * cannot loop.  The step bound makes termination evident besides.
 */
static int dns_read_name(const uint8_t *pkt, size_t len, size_t *pos, struct dns_name *out)
{
	size_t at = *pos, limit = *pos, end_in_place = 0;
	unsigned hops = 0;
	out->len = 0;
	for (unsigned step = 0; step < DNS_NAME_MAX + DNS_MAX_POINTER_HOPS; step++) {
		if (at >= len)
			return -1;
		uint8_t c = pkt[at];
		if ((c & 0xC0) == 0xC0) {
			if (at + 1 >= len)
				return -1;
			size_t target = ((size_t)(c & 0x3F) << 8) | pkt[at + 1];
			if (target >= limit || ++hops > DNS_MAX_POINTER_HOPS)
				return -1;
			if (end_in_place == 0)
				end_in_place = at + 2;
			limit = target;
			at = target;
			continue;
		}
		if (c & 0xC0) /* 0x40, 0x80: RFC 6891's extended label types */
			return -1;
		if (c == 0) {
			out->wire[out->len++] = 0;
			*pos = end_in_place ? end_in_place : at + 1;
			return 0;
		}
		/* the label, and room for the final zero */
		if (at + 1 + c > len || out->len + 1 + (size_t)c + 1 > DNS_NAME_MAX)
			return -1;
		memcpy(out->wire + out->len, pkt + at, 1 + (size_t)c);
		out->len = (uint16_t)(out->len + 1 + c);
		at += 1 + (size_t)c;
	}
	return -1;
}

/* ------------------------------------------------------ packet reading */

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int dns_read_header(const uint8_t *pkt, size_t len, struct dns_header *h)
{
	if (len < DNS_HEADER_LEN)
		return -1;
	h->id = get_u16(pkt);
	h->flags = get_u16(pkt + 2);
	h->questions = get_u16(pkt + 4);
	h->answers = get_u16(pkt + 6);
	h->authorities = get_u16(pkt + 8);
	h->additionals = get_u16(pkt + 10);
	return 0;
}

/* RFC 6762 18.3, 18.11: messages with another opcode or a response code
 * are ignored (they are not malformed, just not for us). */
static bool dns_is_plain(const struct dns_header *h)
{
	return (h->flags & (DNS_OPCODE_MASK | DNS_RCODE_MASK)) == 0;
}

/* Reads one question at *pos: its name, type and class. */
static int dns_read_question(const uint8_t *pkt, size_t len, size_t *pos, struct dns_name *name,
			     uint16_t *type, uint16_t *klass)
{
	if (dns_read_name(pkt, len, pos, name) != 0 || *pos + 4 > len)
		return -1;
	*type = get_u16(pkt + *pos);
	*klass = get_u16(pkt + *pos + 2);
	*pos += 4;
	return 0;
}

/* A name inside rdata: it may be compressed, but its bytes in place must
 * end within the rdata. */
static int dns_read_rdata_name(const uint8_t *pkt, size_t len, size_t at, size_t rdata_end,
			       struct dns_name *out)
{
	size_t pos = at;
	if (dns_read_name(pkt, len, &pos, out) != 0 || pos > rdata_end)
		return -1;
	return 0;
}

/* Reads the record at *pos into r and moves past it; *kept tells if it is
 * of a type discovery looks at (A, AAAA, SRV, PTR). */
static int dns_read_record(const uint8_t *pkt, size_t len, size_t *pos, struct dns_record *r, bool *kept)
{
	*kept = false;
	if (dns_read_name(pkt, len, pos, &r->owner) != 0 || *pos + 10 > len)
		return -1;
	r->type = get_u16(pkt + *pos);
	r->ttl = get_u32(pkt + *pos + 4);
	size_t rdata = *pos + 10;
	size_t rdata_end = rdata + get_u16(pkt + *pos + 8);
	if (rdata_end > len)
		return -1;
	*pos = rdata_end;
	switch (r->type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		r->addr_len = r->type == DNS_TYPE_A ? 4 : 16;
		if (rdata_end - rdata != r->addr_len)
			return -1;
		memcpy(r->addr, pkt + rdata, r->addr_len);
		break;
	case DNS_TYPE_SRV:
		/* priority, weight, port, target */
		if (rdata_end - rdata < 7)
			return -1;
		r->port = get_u16(pkt + rdata + 4);
		if (dns_read_rdata_name(pkt, len, rdata + 6, rdata_end, &r->target) != 0)
			return -1;
		break;
	case DNS_TYPE_PTR:
		if (dns_read_rdata_name(pkt, len, rdata, rdata_end, &r->target) != 0)
			return -1;
		break;
	default:
		return 0;
	}
	*kept = true;
	return 0;
}

/* ------------------------------------------------------ packet writing */

static void put_bytes(struct dns_writer *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_u16(struct dns_writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put_bytes(w, b, 2);
}

static void put_u32(struct dns_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put_bytes(w, b, 4);
}

static void put_name(struct dns_writer *w, const struct dns_name *n)
{
	put_bytes(w, n->wire, n->len);
}

static void put_header(struct dns_writer *w, uint16_t id, uint16_t flags, uint16_t questions,
		       uint16_t answers)
{
	put_u16(w, id);
	put_u16(w, flags);
	put_u16(w, questions);
	put_u16(w, answers);
	put_u16(w, 0);
	put_u16(w, 0);
}

/* Owner, type, class IN, TTL and rdata length; the rdata follows.  Names
 * are written uncompressed: simpler, and legal (RFC 6762 18.14 says
 * "should"), and our answer stays far below a packet's size. */
static void put_record_start(struct dns_writer *w, const struct dns_name *owner, uint16_t type,
			     size_t rdata_len)
{
	put_name(w, owner);
	put_u16(w, type);
	put_u16(w, DNS_CLASS_IN);
	put_u32(w, DNS_TTL);
	put_u16(w, (uint16_t)rdata_len);
}

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
	if (name_equal(name, &d->enumeration))
		return any || type == DNS_TYPE_PTR ? ANSWER_ENUMERATION : 0;
	if (name_equal(name, &d->service))
		return any || type == DNS_TYPE_PTR ? ANSWER_PTR | ANSWER_SRV | ANSWER_ADDR | ANSWER_TXT : 0;
	if (name_equal(name, &d->instance)) {
		if (any)
			return ANSWER_SRV | ANSWER_ADDR | ANSWER_TXT;
		if (type == DNS_TYPE_SRV)
			return ANSWER_SRV | ANSWER_ADDR;
		if (type == DNS_TYPE_TXT)
			return ANSWER_TXT;
		return type == addr_type ? ANSWER_ADDR : 0;
	}
	if (name_equal(name, &d->host) && type == addr_type)
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

/* A question, kept to be repeated in a legacy unicast reply. */
struct dns_question {
	struct dns_name name;
	uint16_t type, klass;
};

/* The response with the wanted records, in hashicorp/mdns's order (PTR,
 * SRV, A/AAAA, TXT: its client aliases the SRV target to the instance
 * before it reads the address).  echoed, if not NULL, is repeated in the
 * question section (RFC 6762 6.7: legacy unicast replies must). */
static size_t encode_answer(const struct discover *d, unsigned wanted, uint16_t id,
			    const struct dns_question *echoed, uint8_t *out, size_t cap)
{
	struct dns_writer w = {out, cap, 0, false};
	put_header(&w, id, DNS_FLAG_RESPONSE | DNS_FLAG_AUTHORITATIVE, echoed ? 1 : 0,
		   (uint16_t)count_bits(wanted));
	if (echoed) {
		put_name(&w, &echoed->name);
		put_u16(&w, echoed->type);
		put_u16(&w, echoed->klass);
	}
	if (wanted & ANSWER_ENUMERATION) {
		put_record_start(&w, &d->enumeration, DNS_TYPE_PTR, d->service.len);
		put_name(&w, &d->service);
	}
	if (wanted & ANSWER_PTR) {
		put_record_start(&w, &d->service, DNS_TYPE_PTR, d->instance.len);
		put_name(&w, &d->instance);
	}
	if (wanted & ANSWER_SRV) {
		put_record_start(&w, &d->instance, DNS_TYPE_SRV, 6 + (size_t)d->host.len);
		put_u16(&w, SRV_PRIORITY);
		put_u16(&w, SRV_WEIGHT);
		put_u16(&w, d->port);
		put_name(&w, &d->host);
	}
	if (wanted & ANSWER_ADDR) {
		put_record_start(&w, &d->host, d->addr_len == 4 ? DNS_TYPE_A : DNS_TYPE_AAAA, d->addr_len);
		put_bytes(&w, d->addr, d->addr_len);
	}
	if (wanted & ANSWER_TXT) {
		uint8_t txt_len = (uint8_t)d->txt_len;
		put_record_start(&w, &d->instance, DNS_TYPE_TXT, 1 + (size_t)d->txt_len);
		put_bytes(&w, &txt_len, 1);
		put_bytes(&w, d->txt, d->txt_len);
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
		if (dns_read_question(pkt, len, &pos, &q.name, &q.type, &q.klass) != 0) {
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
	put_header(&w, 0, 0, 1, 0);
	put_name(&w, &d->service);
	put_u16(&w, DNS_TYPE_PTR);
	put_u16(&w, DNS_CLASS_IN);
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
		if ((r->type != DNS_TYPE_A && r->type != DNS_TYPE_AAAA) || !name_equal(&r->owner, host))
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
		    !name_is_instance_of(&srv->owner, &d->service))
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
		struct dns_name name;
		uint16_t type, klass;
		if (dns_read_question(pkt, len, &pos, &name, &type, &klass) != 0)
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
	if (service_len >= (int)sizeof text || name_from_dotted(&d->service, text) != 0) {
		snprintf(err, errlen, "mDNS: discovery name '%s' does not make a valid DNS name", cfg->cluster);
		return -1;
	}
	int instance_len = snprintf(text, sizeof text, "%s._serf_%s._tcp.local.", cfg->node_name, cfg->cluster);
	if (instance_len >= (int)sizeof text || name_from_dotted(&d->instance, text) != 0) {
		snprintf(err, errlen, "mDNS: node name '%s' does not make a valid DNS name", cfg->node_name);
		return -1;
	}
	if (name_from_dotted(&d->host, host) != 0) {
		snprintf(err, errlen, "mDNS: host name '%s' is not a valid DNS name", host);
		return -1;
	}
	name_from_dotted(&d->enumeration, "_services._dns-sd._udp.local.");
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
