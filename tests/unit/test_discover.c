/*
 * test_discover.c — agent/discover.c and agent/dns_wire.c: DNS encoding
 * and decoding, the answers discover gives serf's queries, the peers it
 * takes from responses (hashicorp/mdns's layout, compressed as miekg/dns
 * compresses), and its handling of malformed packets: compression loops,
 * truncations, bad lengths, oversized names.
 *
 * It links discover.o and dns_wire.o from build/libvigil-agent.a; the
 * names discover builds and its peer queue are read from struct discover
 * (discover_internal.h), the packets are crafted with dns_wire's writer.
 */
#include "testlib.h"

#include "discover_internal.h"
#include "dns_wire.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ crafting packets */

/* A packet being crafted, written through the module's own writer. */
struct packet {
	uint8_t b[1024];
	struct dns_writer w;
};

static void packet_start(struct packet *p)
{
	p->w = (struct dns_writer){p->b, sizeof p->b, 0, false};
}

static void packet_copy(struct packet *dst, const struct packet *src)
{
	packet_start(dst);
	dns_put_bytes(&dst->w, src->b, src->w.len);
}

/* labels of a dotted name, without the final zero (so a pointer or the
 * zero can follow) */
static void p_labels(struct packet *p, const char *dotted)
{
	struct dns_name n;
	if (dns_name_from_dotted(&n, dotted) != 0)
		abort();
	dns_put_bytes(&p->w, n.wire, n.len - 1u);
}

static void p_name(struct packet *p, const char *dotted)
{
	p_labels(p, dotted);
	dns_put_bytes(&p->w, "", 1);
}

static void p_pointer(struct packet *p, size_t offset)
{
	dns_put_u16(&p->w, (uint16_t)(0xC000 | offset));
}

/* type, class IN, ttl, rdlength: after the owner name */
static void p_rr_fixed(struct packet *p, uint16_t type, uint32_t ttl, uint16_t rdlength)
{
	dns_put_u16(&p->w, type);
	dns_put_u16(&p->w, DNS_CLASS_IN);
	dns_put_u32(&p->w, ttl);
	dns_put_u16(&p->w, rdlength);
}

/* set while a test expects discover_create to refuse */
static bool expect_refusal;

static struct discover *make(const char *cluster, const char *node, const char *ip, uint16_t port)
{
	struct discover_config cfg = {
		.cluster = cluster,
		.node_name = node,
		.advertise_ip = ip,
		.port = port,
		.host_name = "myhost.",
	};
	char err[256];
	struct discover *d = discover_create(&cfg, err, sizeof err);
	if (!d && !expect_refusal) { /* every test needs its module: stop */
		printf("# discover_create: %s\nnot ok - fixture\n", err);
		exit(1);
	}
	return d;
}

static struct discover *make_me(void)
{
	return make("test", "me", "10.0.0.1", 7946);
}

/* An mDNS response header announcing that many answers. */
static void start_response(struct packet *p, uint16_t answers)
{
	packet_start(p);
	dns_put_header(&p->w, 0, DNS_FLAG_RESPONSE, 0, answers);
}

/* The rest of an A record of 10.0.0.2 after its owner name, with the
 * given rdlength (4 unless a test lies about it). */
static void a_rdata(struct packet *p, uint16_t rdlength)
{
	p_rr_fixed(p, DNS_TYPE_A, 120, rdlength);
	dns_put_u32(&p->w, 0x0a000002);
}

/* An SRV record of instance s1 for box:7950, uncompressed, with the
 * given rdlength (6 + 5 unless a test lies about it). */
static void srv_record(struct packet *p, uint16_t rdlength)
{
	p_name(p, "s1._serf_test._tcp.local");
	p_rr_fixed(p, DNS_TYPE_SRV, 120, rdlength);
	dns_put_u16(&p->w, 10);
	dns_put_u16(&p->w, 1);
	dns_put_u16(&p->w, 7950);
	p_name(p, "box");
}

/*
 * A response as hashicorp/mdns sends it for serf node "s1" of cluster
 * "test" on host "box" at ip:port, compressed as miekg/dns does: PTR, SRV,
 * A, TXT in the answer section, later names pointing at earlier ones.
 */
static void serf_response(struct packet *p, const uint8_t ip[4], uint16_t port, uint32_t ttl)
{
	packet_start(p);
	dns_put_header(&p->w, 0, DNS_FLAG_RESPONSE | DNS_FLAG_AUTHORITATIVE, 0, 4);
	size_t service = p->w.len; /* 12 */
	p_name(p, "_serf_test._tcp.local");
	p_rr_fixed(p, DNS_TYPE_PTR, ttl, 5);
	size_t instance = p->w.len;
	p_labels(p, "s1"); /* 3 bytes + pointer = 5 */
	p_pointer(p, service);
	p_pointer(p, instance); /* SRV owner */
	p_rr_fixed(p, DNS_TYPE_SRV, ttl, 6 + 5);
	dns_put_u16(&p->w, 10);
	dns_put_u16(&p->w, 1);
	dns_put_u16(&p->w, port);
	size_t host = p->w.len;
	p_name(p, "box");
	p_pointer(p, host); /* A owner */
	p_rr_fixed(p, DNS_TYPE_A, ttl, 4);
	dns_put_bytes(&p->w, ip, 4);
	p_pointer(p, instance); /* TXT owner */
	p_rr_fixed(p, DNS_TYPE_TXT, ttl, 17);
	dns_put_bytes(&p->w, "\x10Serf 'test' clus", 17);
}

/* ------------------------------------------------------------ names */

TEST(names_are_built_as_serf_registers_them)
{
	struct discover *d = make("test", "node-1", "10.0.0.1", 7946);
	static const uint8_t service[] = "\x0a_serf_test\x04_tcp\x05local";
	static const uint8_t instance[] = "\x06node-1\x0a_serf_test\x04_tcp\x05local";
	static const uint8_t host[] = "\x06myhost";
	CHECK_EQ_INT(d->service.len, sizeof service);
	CHECK_MEM(d->service.wire, service, sizeof service);
	CHECK_EQ_INT(d->instance.len, sizeof instance);
	CHECK_MEM(d->instance.wire, instance, sizeof instance);
	CHECK_EQ_INT(d->host.len, sizeof host);
	CHECK_MEM(d->host.wire, host, sizeof host);
	CHECK_EQ_STR(d->txt, "Serf 'test' cluster");
	CHECK_EQ_STR(d->self, "10.0.0.1:7946");
	discover_free(d);
}

TEST(dotted_node_names_become_several_labels)
{
	/* miekg/dns splits "a.b" of the instance string into two labels */
	struct discover *d = make("test", "web.1", "10.0.0.1", 7946);
	static const uint8_t instance[] = "\x03web\x01\x31\x0a_serf_test\x04_tcp\x05local";
	CHECK_EQ_INT(d->instance.len, sizeof instance);
	CHECK_MEM(d->instance.wire, instance, sizeof instance);
	CHECK(dns_name_is_instance_of(&d->instance, &d->service));
	CHECK(!dns_name_is_instance_of(&d->service, &d->service));
	discover_free(d);
}

TEST(invalid_names_and_addresses_are_refused)
{
	char long_label[80];
	memset(long_label, 'x', 64);
	long_label[64] = '\0';
	char long_name[300];
	for (int i = 0; i < 100; i++)
		memcpy(long_name + 3 * i, "ab.", 3);
	long_name[299] = '\0';
	expect_refusal = true;
	CHECK(make("test", long_label, "10.0.0.1", 7946) == NULL);
	CHECK(make("test", long_name, "10.0.0.1", 7946) == NULL);
	CHECK(make("test", "a..b", "10.0.0.1", 7946) == NULL);
	CHECK(make("", "n", "10.0.0.1", 7946) == NULL);
	CHECK(make("test", "n", "0.0.0.0", 7946) == NULL);
	CHECK(make("test", "n", "not-an-ip", 7946) == NULL);
	CHECK(make("test", "n", "10.0.0.1", 0) == NULL);
	expect_refusal = false;
	struct dns_name n;
	long_label[63] = '\0';
	CHECK_EQ_INT(dns_name_from_dotted(&n, long_label), 0); /* 63 is the limit */
	CHECK_EQ_INT(n.len, 65);
	CHECK_EQ_INT(dns_name_from_dotted(&n, "."), -1);
}

/* ---------------------------------------------------------- queries */

TEST(query_is_a_ptr_question_for_the_service)
{
	struct discover *d = make("test", "n", "10.0.0.1", 7946);
	uint8_t buf[128];
	size_t len = discover_build_query(d, buf, sizeof buf);
	static const uint8_t expected[] = "\0\0\0\0\0\x01\0\0\0\0\0\0"
					  "\x0a_serf_test\x04_tcp\x05local\0"
					  "\0\x0c\0\x01";
	CHECK_EQ_INT(len, sizeof expected - 1);
	CHECK_MEM(buf, expected, sizeof expected - 1);
	CHECK_EQ_INT(discover_build_query(d, buf, 20), 0); /* too small */
	discover_free(d);
}

/* A query with one question, as hashicorp/mdns's client sends it. */
static void query_for(struct packet *p, uint16_t id, const char *name, uint16_t type, uint16_t klass)
{
	packet_start(p);
	dns_put_header(&p->w, id, 0, 1, 0);
	p_name(p, name);
	dns_put_u16(&p->w, type);
	dns_put_u16(&p->w, klass);
}

/* Decodes every answer record of response pkt into out (up to max). */
static int decode_answers(const uint8_t *pkt, size_t len, struct dns_record *out, int max)
{
	struct dns_header h;
	if (dns_read_header(pkt, len, &h) != 0)
		return -1;
	size_t pos = DNS_HEADER_LEN;
	for (int i = 0; i < h.questions; i++) {
		struct dns_question q;
		if (dns_read_question(pkt, len, &pos, &q) != 0)
			return -1;
	}
	int n = 0;
	for (int i = 0; i < h.answers && n < max; i++) {
		bool kept;
		if (dns_read_record(pkt, len, &pos, &out[n], &kept) != 0)
			return -1;
		n++;
	}
	return pos == len ? n : -1;
}

TEST(service_query_gets_ptr_srv_a_txt)
{
	struct discover *d = make("test", "node-1", "10.0.0.1", 7946);
	struct packet q;
	query_for(&q, 0x1234, "_serf_test._tcp.local", DNS_TYPE_PTR, DNS_CLASS_IN);
	uint8_t out[1024];
	bool unicast = true;
	size_t len = discover_answer_query(d, q.b, q.w.len, true, &unicast, out, sizeof out);
	REQUIRE(len > DNS_HEADER_LEN);
	CHECK(!unicast);
	struct dns_header h;
	REQUIRE(dns_read_header(out, len, &h) == 0);
	CHECK_EQ_INT(h.id, 0x1234);
	CHECK_EQ_INT(h.flags, DNS_FLAG_RESPONSE | DNS_FLAG_AUTHORITATIVE);
	CHECK_EQ_INT(h.answers, 4);
	/* a legacy unicast reply repeats the question (RFC 6762 6.7) */
	CHECK_EQ_INT(h.questions, 1);
	CHECK_MEM(out + DNS_HEADER_LEN, q.b + DNS_HEADER_LEN, q.w.len - DNS_HEADER_LEN);
	struct dns_record r[4];
	REQUIRE(decode_answers(out, len, r, 4) == 4);
	CHECK_EQ_INT(r[0].type, DNS_TYPE_PTR);
	CHECK(dns_name_equal(&r[0].owner, &d->service));
	CHECK(dns_name_equal(&r[0].target, &d->instance));
	CHECK_EQ_INT(r[1].type, DNS_TYPE_SRV);
	CHECK(dns_name_equal(&r[1].owner, &d->instance));
	CHECK_EQ_INT(r[1].port, 7946);
	CHECK(dns_name_equal(&r[1].target, &d->host));
	CHECK_EQ_INT(r[1].ttl, 120);
	CHECK_EQ_INT(r[2].type, DNS_TYPE_A);
	CHECK(dns_name_equal(&r[2].owner, &d->host));
	CHECK_MEM(r[2].addr, "\x0a\x00\x00\x01", 4);
	CHECK_EQ_INT(r[3].type, DNS_TYPE_TXT);
	/* the TXT rdata: one character-string */
	static const char txt[] = "\x13Serf 'test' cluster";
	CHECK_MEM(out + len - (sizeof txt - 1), txt, sizeof txt - 1);

	/* a multicast-style reply (querier on 5353): ID 0, no question */
	len = discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out);
	REQUIRE(dns_read_header(out, len, &h) == 0);
	CHECK_EQ_INT(h.id, 0);
	CHECK_EQ_INT(h.questions, 0);
	CHECK_EQ_INT(decode_answers(out, len, r, 4), 4);
	/* and the answer does not fit a small buffer: no partial packet */
	CHECK_EQ_INT(discover_answer_query(d, q.b, q.w.len, false, &unicast, out, 60), 0);
	discover_free(d);
}

TEST(other_questions_get_hashicorp_mdns_answers)
{
	struct discover *d = make("test", "node-1", "10.0.0.1", 7946);
	struct {
		const char *name;
		uint16_t type;
		int answers;
	} cases[] = {
		{"node-1._serf_test._tcp.local", DNS_TYPE_ANY, 3}, /* SRV A TXT */
		{"node-1._serf_test._tcp.local", DNS_TYPE_SRV, 2}, /* SRV A */
		{"node-1._serf_test._tcp.local", DNS_TYPE_TXT, 1},
		{"node-1._serf_test._tcp.local", DNS_TYPE_A, 1},
		{"node-1._serf_test._tcp.local", DNS_TYPE_AAAA, 0},
		{"myhost", DNS_TYPE_A, 1},
		{"myhost", DNS_TYPE_TXT, 0},
		{"_services._dns-sd._udp.local", DNS_TYPE_PTR, 1},
		{"_serf_test._tcp.local", DNS_TYPE_ANY, 4},
		{"_serf_test._tcp.local", DNS_TYPE_SRV, 0},
		{"_SERF_Test._TCP.Local", DNS_TYPE_PTR, 4}, /* names ignore case */
		{"_serf_other._tcp.local", DNS_TYPE_PTR, 0},
		{"other._serf_test._tcp.local", DNS_TYPE_ANY, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct packet q;
		query_for(&q, 1, cases[i].name, cases[i].type, DNS_CLASS_IN);
		uint8_t out[1024];
		bool unicast;
		size_t len = discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out);
		struct dns_header h = {0};
		if (len)
			dns_read_header(out, len, &h);
		if (h.answers != cases[i].answers)
			printf("# %s type %u: %u answers, expected %d\n", cases[i].name, cases[i].type,
			       h.answers, cases[i].answers);
		CHECK_EQ_INT(h.answers, cases[i].answers);
		struct dns_record r[4];
		if (len)
			CHECK_EQ_INT(decode_answers(out, len, r, 4), cases[i].answers);
	}
	discover_free(d);
}

TEST(unicast_bit_class_and_flags_are_honoured)
{
	struct discover *d = make("test", "n", "10.0.0.1", 7946);
	struct packet q;
	uint8_t out[1024];
	bool unicast = false;
	query_for(&q, 1, "_serf_test._tcp.local", DNS_TYPE_PTR, DNS_CLASS_IN | DNS_CLASS_UNICAST_BIT);
	CHECK(discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out) > 0);
	CHECK(unicast);
	query_for(&q, 1, "_serf_test._tcp.local", DNS_TYPE_PTR, 3 /* CHAOS */);
	CHECK_EQ_INT(discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out), 0);
	/* a response, another opcode, a response code: not answered */
	static const uint16_t flags[] = {DNS_FLAG_RESPONSE, 0x2800 /* UPDATE */, 0x0003};
	for (size_t i = 0; i < 3; i++) {
		query_for(&q, 1, "_serf_test._tcp.local", DNS_TYPE_PTR, DNS_CLASS_IN);
		q.b[2] = (uint8_t)(flags[i] >> 8);
		q.b[3] = (uint8_t)flags[i];
		CHECK_EQ_INT(discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out), 0);
	}
	CHECK_EQ_INT(discover_get_stats(d)->malformed, 0);
	discover_free(d);
}

TEST(ipv6_advertise_address_is_an_aaaa_record)
{
	struct discover *d = make("test", "n6", "fd00::1", 7946);
	CHECK_EQ_STR(d->self, "[fd00::1]:7946");
	struct packet q;
	query_for(&q, 1, "_serf_test._tcp.local", DNS_TYPE_PTR, DNS_CLASS_IN);
	uint8_t out[1024];
	bool unicast;
	size_t len = discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out);
	struct dns_record r[4];
	REQUIRE(decode_answers(out, len, r, 4) == 4);
	CHECK_EQ_INT(r[2].type, DNS_TYPE_AAAA);
	CHECK_EQ_INT(r[2].addr_len, 16);

	/* and another module takes it as a peer */
	struct discover *other = make("test", "other", "10.0.0.2", 7946);
	CHECK_EQ_INT(discover_take_response(other, out, len), 1);
	char addr[DISCOVER_ADDR_MAX];
	CHECK(discover_next_peer(other, addr, sizeof addr));
	CHECK_EQ_STR(addr, "[fd00::1]:7946");
	discover_free(other);
	discover_free(d);
}

/* -------------------------------------------------------- responses */

TEST(serf_response_yields_its_address_once)
{
	struct discover *d = make_me();
	struct packet p;
	static const uint8_t ip[4] = {192, 168, 1, 5};
	serf_response(&p, ip, 7950, 120);
	CHECK_EQ_INT(discover_take_response(d, p.b, p.w.len), 1);
	char addr[DISCOVER_ADDR_MAX];
	CHECK(discover_next_peer(d, addr, sizeof addr));
	CHECK_EQ_STR(addr, "192.168.1.5:7950");
	CHECK(!discover_next_peer(d, addr, sizeof addr));
	/* serf joins each address once; so do we */
	CHECK_EQ_INT(discover_take_response(d, p.b, p.w.len), 0);
	CHECK(!discover_next_peer(d, addr, sizeof addr));
	CHECK_EQ_INT(discover_get_stats(d)->peers_found, 1);
	CHECK_EQ_INT(discover_get_stats(d)->malformed, 0);
	discover_free(d);
}

TEST(our_own_answer_goodbyes_and_other_clusters_are_not_peers)
{
	struct discover *d = make("test", "me", "192.168.1.5", 7950);
	struct packet p;
	static const uint8_t ip[4] = {192, 168, 1, 5};
	serf_response(&p, ip, 7950, 120); /* our own address */
	CHECK_EQ_INT(discover_take_response(d, p.b, p.w.len), 0);
	serf_response(&p, ip, 7951, 0); /* TTL 0: a goodbye */
	CHECK_EQ_INT(discover_take_response(d, p.b, p.w.len), 0);
	discover_free(d);

	d = make("prod", "me", "10.0.0.1", 7946); /* another cluster */
	serf_response(&p, ip, 7951, 120);
	CHECK_EQ_INT(discover_take_response(d, p.b, p.w.len), 0);
	/* an answer from the module to itself is not a peer either */
	struct packet q;
	query_for(&q, 1, "_serf_prod._tcp.local", DNS_TYPE_PTR, DNS_CLASS_IN);
	uint8_t out[1024];
	bool unicast;
	size_t len = discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out);
	REQUIRE(len > 0);
	CHECK_EQ_INT(discover_take_response(d, out, len), 0);
	char addr[DISCOVER_ADDR_MAX];
	CHECK(!discover_next_peer(d, addr, sizeof addr));
	CHECK_EQ_INT(discover_get_stats(d)->malformed, 0);
	discover_free(d);
}

TEST(srv_without_an_address_in_the_packet_is_skipped)
{
	struct discover *d = make_me();
	struct packet p;
	start_response(&p, 1);
	srv_record(&p, 6 + 5);
	CHECK_EQ_INT(discover_take_response(d, p.b, p.w.len), 0);
	CHECK_EQ_INT(discover_get_stats(d)->malformed, 0);
	discover_free(d);
}

TEST(the_peer_queue_is_bounded_and_drops_are_found_again)
{
	struct discover *d = make_me();
	struct packet p;
	for (int i = 0; i < PEER_QUEUE_MAX + 8; i++) {
		uint8_t ip[4] = {10, 1, 0, (uint8_t)i};
		serf_response(&p, ip, 7946, 120);
		discover_take_response(d, p.b, p.w.len);
	}
	CHECK_EQ_INT(d->queue_len, PEER_QUEUE_MAX);
	char addr[DISCOVER_ADDR_MAX];
	int n = 0;
	while (n < 100 && discover_next_peer(d, addr, sizeof addr))
		n++;
	CHECK_EQ_INT(n, PEER_QUEUE_MAX);
	uint8_t dropped[4] = {10, 1, 0, PEER_QUEUE_MAX};
	serf_response(&p, dropped, 7946, 120);
	CHECK_EQ_INT(discover_take_response(d, p.b, p.w.len), 1);
	discover_free(d);
}

/* -------------------------------------------------------- malformed */

/* The response must be refused as malformed (by a fresh module, so the
 * count is its alone), with nothing queued. */
static void expect_malformed(const struct packet *p, const char *what)
{
	struct discover *d = make_me();
	int r = discover_take_response(d, p->b, p->w.len);
	if (r != -1)
		printf("# %s: discover_take_response returned %d\n", what, r);
	CHECK_EQ_INT(r, -1);
	CHECK_EQ_INT(discover_get_stats(d)->malformed, 1);
	CHECK_EQ_INT(d->queue_len, 0);
	discover_free(d);
}

TEST(compression_loops_are_refused)
{
	struct packet p;
	packet_start(&p);
	/* an owner name that is a pointer to itself */
	dns_put_header(&p.w, 0, DNS_FLAG_RESPONSE, 0, 1);
	p_pointer(&p, DNS_HEADER_LEN);
	a_rdata(&p, 4);
	expect_malformed(&p, "self pointer");

	/* a label, then a pointer back to that label: a -> a -> a ... */
	start_response(&p, 1);
	p_labels(&p, "a");
	p_pointer(&p, DNS_HEADER_LEN);
	a_rdata(&p, 4);
	expect_malformed(&p, "label then pointer to it");

	/* two names pointing at each other: the second record's owner points
	 * at the first's, which points forward at the second */
	start_response(&p, 2);
	p_labels(&p, "x");
	size_t patch = p.w.len;
	p_pointer(&p, 0); /* patched below */
	a_rdata(&p, 4);
	size_t second = p.w.len;
	p_labels(&p, "y");
	p_pointer(&p, DNS_HEADER_LEN);
	a_rdata(&p, 4);
	p.b[patch] = (uint8_t)(0xC0 | (second >> 8));
	p.b[patch + 1] = (uint8_t)second;
	expect_malformed(&p, "mutual pointers");

	/* a pointer forward, to a well-formed name further on: compressors
	 * only point back at names already written, so it is refused */
	start_response(&p, 1);
	p_pointer(&p, DNS_HEADER_LEN + 2 + 10 + 4);
	a_rdata(&p, 4);
	p_name(&p, "box");
	expect_malformed(&p, "forward pointer");

	/* a pointer past the end of the packet */
	start_response(&p, 1);
	p_pointer(&p, 0x3fff);
	a_rdata(&p, 4);
	expect_malformed(&p, "pointer past the end");
}

TEST(pointer_chains_and_long_names_are_bounded)
{
	/* a chain of DNS_MAX_POINTER_HOPS + 1 pointers, each pointing at the
	 * previous one: legal in form, refused by the hop limit */
	struct packet p;
	query_for(&p, 0, "q", DNS_TYPE_A, DNS_CLASS_IN);
	p.b[2] = 0x80; /* QR: a response */
	struct packet chain;
	packet_copy(&chain, &p);
	size_t prev = DNS_HEADER_LEN;
	for (int i = 0; i <= DNS_MAX_POINTER_HOPS; i++) {
		size_t here = chain.w.len;
		p_labels(&chain, "c");
		p_pointer(&chain, prev);
		prev = here;
	}
	struct dns_name n;
	size_t pos = prev;
	CHECK_EQ_INT(dns_read_name(chain.b, chain.w.len, &pos, &n), -1);
	pos = DNS_HEADER_LEN + 3 + 4 + 4; /* the second link: few enough hops */
	CHECK_EQ_INT(dns_read_name(chain.b, chain.w.len, &pos, &n), 0);

	/* labels adding up to more than 255 bytes */
	p.w.len = DNS_HEADER_LEN;
	p.b[5] = 0; /* no question */
	p.b[7] = 1;
	for (int i = 0; i < 5; i++)
		p_labels(&p, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij");
	dns_put_bytes(&p.w, "", 1);
	a_rdata(&p, 4);
	expect_malformed(&p, "name over 255 bytes");

	/* extended label types (0x40, 0x80) */
	p.w.len = DNS_HEADER_LEN;
	dns_put_bytes(&p.w, "\x41", 1);
	p_rr_fixed(&p, DNS_TYPE_A, 120, 4);
	expect_malformed(&p, "label type 0x40");
}

TEST(bad_lengths_are_refused)
{
	/* rdlength past the end */
	struct packet p;
	start_response(&p, 1);
	p_name(&p, "box");
	a_rdata(&p, 40);
	expect_malformed(&p, "rdlength past the end");
	/* an A record of 5 bytes */
	start_response(&p, 1);
	p_name(&p, "box");
	p_rr_fixed(&p, DNS_TYPE_A, 120, 5);
	dns_put_bytes(&p.w, "\x0a\0\0\x02\x09", 5);
	expect_malformed(&p, "A of 5 bytes");
	/* an SRV whose target runs past its rdata */
	start_response(&p, 1);
	srv_record(&p, 6 + 2);
	expect_malformed(&p, "SRV target past its rdata");
	/* an SRV too short for its fixed fields */
	start_response(&p, 1);
	p_name(&p, "s1._serf_test._tcp.local");
	p_rr_fixed(&p, DNS_TYPE_SRV, 120, 4);
	dns_put_u32(&p.w, 0);
	expect_malformed(&p, "SRV of 4 bytes");
	/* more records announced than present */
	start_response(&p, 3);
	p_name(&p, "box");
	a_rdata(&p, 4);
	expect_malformed(&p, "missing records");
	/* too many questions for a response */
	packet_start(&p);
	dns_put_header(&p.w, 0, DNS_FLAG_RESPONSE, 1000, 0);
	expect_malformed(&p, "1000 questions");
	/* a header cut short */
	p.w.len = 7;
	expect_malformed(&p, "7-byte header");
}

TEST(every_truncation_of_a_response_is_refused)
{
	struct discover *d = make_me();
	struct packet full;
	static const uint8_t ip[4] = {192, 168, 1, 5};
	serf_response(&full, ip, 7950, 120);
	for (size_t len = 0; len < full.w.len; len++) {
		struct packet cut;
		packet_copy(&cut, &full);
		cut.w.len = len;
		int r = discover_take_response(d, cut.b, cut.w.len);
		if (r != -1)
			printf("# truncated to %zu: %d\n", len, r);
		CHECK_EQ_INT(r, -1);
	}
	CHECK_EQ_INT(d->queue_len, 0);
	CHECK_EQ_INT(discover_get_stats(d)->malformed, full.w.len);
	discover_free(d);
}

TEST(malformed_queries_are_counted_and_unanswered)
{
	struct discover *d = make_me();
	struct packet q;
	query_for(&q, 1, "_serf_test._tcp.local", DNS_TYPE_PTR, DNS_CLASS_IN);
	uint8_t out[1024];
	bool unicast;
	for (size_t len = 0; len < q.w.len; len++)
		CHECK_EQ_INT(discover_answer_query(d, q.b, len, false, &unicast, out, sizeof out), 0);
	CHECK_EQ_INT(discover_get_stats(d)->malformed, q.w.len);
	/* a question whose name loops */
	uint64_t before = discover_get_stats(d)->malformed;
	packet_start(&q);
	dns_put_header(&q.w, 1, 0, 1, 0);
	p_labels(&q, "_serf_test");
	p_pointer(&q, DNS_HEADER_LEN);
	dns_put_u16(&q.w, DNS_TYPE_PTR);
	dns_put_u16(&q.w, DNS_CLASS_IN);
	CHECK_EQ_INT(discover_answer_query(d, q.b, q.w.len, false, &unicast, out, sizeof out), 0);
	CHECK_EQ_INT(discover_get_stats(d)->malformed, before + 1);
	discover_free(d);
}

/* Deterministic byte flips over a valid response and a valid query: no
 * crash, no read outside the packet (run under ASan by `make asan-tests`),
 * every result either a clean parse or a refusal. */
TEST(random_corruption_never_crashes)
{
	struct discover *d = make_me();
	struct packet resp, query;
	static const uint8_t ip[4] = {192, 168, 1, 5};
	serf_response(&resp, ip, 7950, 120);
	query_for(&query, 1, "_serf_test._tcp.local", DNS_TYPE_ANY, DNS_CLASS_IN);
	uint32_t seed = 12345;
	int refused = 0;
	for (int round = 0; round < 20000; round++) {
		struct packet p;
		packet_copy(&p, round % 2 ? &resp : &query);
		for (int flips = 0; flips < 1 + round % 4; flips++) {
			seed = seed * 1103515245u + 12345u;
			p.b[(seed >> 8) % p.w.len] ^= (uint8_t)(1u << ((seed >> 4) % 8));
		}
		uint8_t out[1024];
		bool unicast;
		if (discover_take_response(d, p.b, p.w.len) < 0)
			refused++;
		size_t len = discover_answer_query(d, p.b, p.w.len, true, &unicast, out, sizeof out);
		CHECK(len <= sizeof out);
		char addr[DISCOVER_ADDR_MAX];
		while (discover_next_peer(d, addr, sizeof addr))
			CHECK(strlen(addr) < DISCOVER_ADDR_MAX);
	}
	CHECK(refused > 0);
	discover_free(d);
}

TEST_MAIN(names_are_built_as_serf_registers_them, dotted_node_names_become_several_labels,
	  invalid_names_and_addresses_are_refused, query_is_a_ptr_question_for_the_service,
	  service_query_gets_ptr_srv_a_txt, other_questions_get_hashicorp_mdns_answers,
	  unicast_bit_class_and_flags_are_honoured, ipv6_advertise_address_is_an_aaaa_record,
	  serf_response_yields_its_address_once, our_own_answer_goodbyes_and_other_clusters_are_not_peers,
	  srv_without_an_address_in_the_packet_is_skipped, the_peer_queue_is_bounded_and_drops_are_found_again,
	  compression_loops_are_refused, pointer_chains_and_long_names_are_bounded, bad_lengths_are_refused,
	  every_truncation_of_a_response_is_refused, malformed_queries_are_counted_and_unanswered,
	  random_corruption_never_crashes)
