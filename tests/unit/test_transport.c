/*
 * test_transport.c — the socket layer and the public API on real loopback
 * sockets: address parsing, datagrams and stream exchanges between two
 * transports, timeouts and refusals, then whole vigil_t instances joining
 * each other (IPv4, IPv6, encrypted) and shrugging off garbage input.
 *
 * Everything runs in one process and one thread, driven by a poll loop
 * written here the way an embedder would write it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "transport.h"
#include "vigil.h"
#include "wire.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ addresses */

TEST(parse_addresses)
{
	struct wire_addr a;
	char buf[80];

	CHECK_EQ_INT(transport_parse_addr("10.1.2.3", 7946, false, &a), 0);
	CHECK_EQ_INT(a.ip_len, 4);
	CHECK_EQ_INT(a.port, 7946);
	CHECK_EQ_STR(transport_format_addr(&a, buf, sizeof buf), "10.1.2.3:7946");

	CHECK_EQ_INT(transport_parse_addr("10.1.2.3:8000", 7946, false, &a), 0);
	CHECK_EQ_INT(a.port, 8000);

	CHECK_EQ_INT(transport_parse_addr("[::1]:7000", 7946, false, &a), 0);
	CHECK_EQ_INT(a.ip_len, 16);
	CHECK_EQ_INT(a.port, 7000);
	CHECK_EQ_STR(transport_format_addr(&a, buf, sizeof buf), "[::1]:7000");

	CHECK_EQ_INT(transport_parse_addr("[fd00::2]", 7946, false, &a), 0);
	CHECK_EQ_INT(a.port, 7946);
	CHECK_EQ_STR(transport_format_ip(&a, buf, sizeof buf), "fd00::2");

	CHECK_EQ_INT(transport_parse_addr("fe80::1", 7946, false, &a), 0);
	CHECK_EQ_INT(a.ip_len, 16);
	CHECK_EQ_INT(a.port, 7946);

	/* IPv4-mapped IPv6 is carried as plain IPv4, like Go's To4 */
	CHECK_EQ_INT(transport_parse_addr("[::ffff:1.2.3.4]:5", 7946, false, &a), 0);
	CHECK_EQ_INT(a.ip_len, 4);
	CHECK_EQ_STR(transport_format_addr(&a, buf, sizeof buf), "1.2.3.4:5");

	const char *bad[] = {"", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x",
			     "1.2.3.4:-1", "[::1", "[::1]x", "[1.2.3.4]:80", "[]:80",
			     "no-such-host.invalid", ":80", "1.2.3.4:80:90x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (transport_parse_addr(bad[i], 7946, false, &a) == 0)
			printf("# unexpectedly parsed \"%s\"\n", bad[i]);
		CHECK(transport_parse_addr(bad[i], 7946, false, &a) != 0);
	}
	CHECK(transport_parse_addr(NULL, 7946, false, &a) != 0);

	/* resolving a name is allowed when asked for */
	CHECK_EQ_INT(transport_parse_addr("localhost:1234", 7946, true, &a), 0);
	CHECK_EQ_INT(a.port, 1234);
	CHECK(a.ip_len == 4 || a.ip_len == 16);
}

TEST(default_advertise_is_not_wildcard)
{
	struct wire_addr a;
	CHECK_EQ_INT(transport_default_advertise(&a), 0);
	CHECK_EQ_INT(a.ip_len, 4);
	CHECK(a.ip[0] != 0);
}

/* ---------------------------------------------------- transport harness */

struct tctx {
	struct transport *t;
	int packets;
	uint8_t last_pkt[2048];
	size_t last_pkt_len;
	struct wire_addr last_from;
	int streams;            /* incoming stream messages */
	size_t last_stream_len;
	uint8_t last_stream_tail;
	bool reply;             /* answer incoming streams with a user message */
	int replies;            /* outgoing stream outcomes */
	int failures;
	uint64_t last_cookie;
	size_t last_reply_len;
	uint8_t last_reply_first;
	int unreachable;        /* port unreachable reports */
	struct wire_addr last_unreachable;
};

static void tc_unreachable(void *ctx, const struct wire_addr *to)
{
	struct tctx *c = ctx;
	c->unreachable++;
	c->last_unreachable = *to;
}

static void tc_packet(void *ctx, const struct wire_addr *from, const uint8_t *p, size_t len)
{
	struct tctx *c = ctx;
	c->packets++;
	c->last_from = *from;
	c->last_pkt_len = len < sizeof c->last_pkt ? len : sizeof c->last_pkt;
	memcpy(c->last_pkt, p, c->last_pkt_len);
}

static void tc_stream(void *ctx, const struct wire_addr *from, const uint8_t *msg,
		      size_t len, struct wbuf *reply)
{
	struct tctx *c = ctx;
	(void)from;
	c->streams++;
	c->last_stream_len = len;
	c->last_stream_tail = len ? msg[len - 1] : 0;
	if (c->reply) {
		const uint8_t pong[] = "pong";
		wire_encode_stream_user(reply, pong, sizeof pong);
	}
}

static void tc_stream_reply(void *ctx, uint64_t cookie, const uint8_t *msg, size_t len)
{
	struct tctx *c = ctx;
	c->last_cookie = cookie;
	if (!msg) {
		c->failures++;
		return;
	}
	c->replies++;
	c->last_reply_len = len;
	c->last_reply_first = msg[0];
}

static struct transport *open_t(struct tctx *c, const char *bind, int timeout_ms)
{
	struct transport_config cfg;
	transport_config_default(&cfg);
	snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "%s", bind);
	cfg.bind_port = 0;
	if (timeout_ms)
		cfg.tcp_timeout_ms = timeout_ms;
	struct transport_hooks h = {
		.ctx = c,
		.on_packet = tc_packet,
		.on_stream = tc_stream,
		.on_stream_reply = tc_stream_reply,
		.on_unreachable = tc_unreachable,
	};
	char err[256] = "";
	memset(c, 0, sizeof *c);
	if (transport_open(&cfg, &h, &c->t, err, sizeof err) != 0) {
		printf("# transport_open(%s): %s\n", bind, err);
		return NULL;
	}
	return c->t;
}

/* Poll both transports until cond() holds or ms pass. */
#define PUMP(a, b, ms, cond)                                                 \
	do {                                                                 \
		int64_t end_ = now_ms() + (ms);                              \
		while (!(cond) && now_ms() < end_) {                         \
			struct pollfd fds_[2 * TRANSPORT_POLLFDS_MAX];       \
			int n_ = transport_pollfds((a), fds_, TRANSPORT_POLLFDS_MAX); \
			if (b)                                               \
				n_ += transport_pollfds((b), fds_ + n_,      \
							TRANSPORT_POLLFDS_MAX); \
			poll(fds_, (nfds_t)n_, 20);                          \
			transport_step((a), now_ms());                       \
			if (b)                                               \
				transport_step((b), now_ms());               \
		}                                                            \
	} while (0)

TEST(transport_packet_roundtrip)
{
	struct tctx ca, cb;
	struct transport *a = open_t(&ca, "127.0.0.1", 0);
	struct transport *b = open_t(&cb, "127.0.0.1", 0);
	REQUIRE(a && b);
	struct wire_addr la, lb;
	transport_local_addr(a, &la);
	transport_local_addr(b, &lb);
	CHECK(la.port != 0);
	CHECK(la.port != lb.port);
	CHECK_EQ_INT(transport_family(a), AF_INET);

	const uint8_t msg[] = {WIRE_PING, 1, 2, 3};
	CHECK_EQ_INT(transport_send_packet(a, &lb, msg, sizeof msg), 0);
	PUMP(a, b, 2000, cb.packets > 0);
	CHECK_EQ_INT(cb.packets, 1);
	CHECK_EQ_INT(cb.last_pkt_len, sizeof msg);
	CHECK_MEM(cb.last_pkt, msg, sizeof msg);
	/* the source is a's bound address: replies to it reach a's socket */
	CHECK(transport_addr_equal(&cb.last_from, &la));
	CHECK_EQ_INT(transport_stats(b)->udp_in, 1);
	CHECK_EQ_INT(transport_stats(a)->udp_out, 1);

	transport_close(a);
	transport_close(b);
}

/*
 * A datagram to a port where nothing listens comes back as ICMP port
 * unreachable: reported once, with the address we sent to, and the socket
 * keeps working (the error queue is emptied, so poll does not spin on it).
 */
TEST(transport_port_unreachable)
{
	struct tctx ca, cb;
	struct transport *a = open_t(&ca, "127.0.0.1", 0);
	struct transport *b = open_t(&cb, "127.0.0.1", 0);
	REQUIRE(a && b);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	REQUIRE(bind(s, (struct sockaddr *)&sin, sizeof sin) == 0);
	socklen_t sl = sizeof sin;
	getsockname(s, (struct sockaddr *)&sin, &sl);
	close(s); /* now nothing listens there */
	struct wire_addr gone = {.ip = {127, 0, 0, 1}, .ip_len = 4, .port = ntohs(sin.sin_port)};

	const uint8_t msg[] = {WIRE_PING, 1, 2, 3};
	CHECK_EQ_INT(transport_send_packet(a, &gone, msg, sizeof msg), 0);
	PUMP(a, (struct transport *)NULL, 2000, ca.unreachable > 0);
	CHECK_EQ_INT(ca.unreachable, 1);
	CHECK(transport_addr_equal(&ca.last_unreachable, &gone));
	CHECK_EQ_INT(transport_stats(a)->udp_unreachable, 1);
	/* the queue is empty again: poll says nothing is ready */
	struct pollfd fds[TRANSPORT_POLLFDS_MAX];
	int n = transport_pollfds(a, fds, TRANSPORT_POLLFDS_MAX);
	CHECK_EQ_INT(poll(fds, (nfds_t)n, 0), 0);
	/* and datagrams still flow both ways */
	struct wire_addr la, lb;
	transport_local_addr(a, &la);
	transport_local_addr(b, &lb);
	CHECK_EQ_INT(transport_send_packet(b, &la, msg, sizeof msg), 0);
	PUMP(a, b, 2000, ca.packets > 0);
	CHECK_EQ_INT(ca.packets, 1);
	/*
	 * A bounce not read yet must not cost the next datagram: the kernel
	 * fails the next send with it (IP_RECVERR) unless the send is retried.
	 */
	CHECK_EQ_INT(transport_send_packet(a, &gone, msg, sizeof msg), 0);
	usleep(50 * 1000); /* the ICMP is back, a not stepped */
	int before = cb.packets;
	CHECK_EQ_INT(transport_send_packet(a, &lb, msg, sizeof msg), 0);
	PUMP(a, b, 2000, cb.packets > before && ca.unreachable > 1);
	CHECK_EQ_INT(cb.packets, before + 1);
	CHECK_EQ_INT(ca.unreachable, 2);
	/* a live peer is no reason for a report */
	CHECK_EQ_INT(transport_send_packet(a, &lb, msg, sizeof msg), 0);
	PUMP(a, b, 2000, cb.packets > before + 1);
	PUMP(a, b, 100, false);
	CHECK_EQ_INT(ca.unreachable, 2);
	transport_close(a);
	transport_close(b);

	/* a dual-stack socket hears of its IPv4 datagrams too */
	struct tctx c6;
	struct transport *d = open_t(&c6, "::", 0);
	if (!d) {
		SKIP("no IPv6 here: dual-stack case not run");
	}
	CHECK_EQ_INT(transport_send_packet(d, &gone, msg, sizeof msg), 0);
	PUMP(d, (struct transport *)NULL, 2000, c6.unreachable > 0);
	CHECK_EQ_INT(c6.unreachable, 1);
	CHECK(transport_addr_equal(&c6.last_unreachable, &gone));
	transport_close(d);
}

TEST(transport_stream_roundtrip)
{
	struct tctx ca, cb;
	struct transport *a = open_t(&ca, "127.0.0.1", 0);
	struct transport *b = open_t(&cb, "127.0.0.1", 0);
	REQUIRE(a && b);
	cb.reply = true;
	struct wire_addr lb;
	transport_local_addr(b, &lb);

	struct wbuf m;
	wbuf_init(&m);
	const uint8_t payload[] = "hello over tcp";
	wire_encode_stream_user(&m, payload, sizeof payload);
	transport_send_stream(a, &lb, m.p, m.len, 42, now_ms());
	/* never reported synchronously */
	CHECK_EQ_INT(ca.replies + ca.failures, 0);
	PUMP(a, b, 3000, ca.replies + ca.failures > 0);
	CHECK_EQ_INT(cb.streams, 1);
	CHECK_EQ_INT(cb.last_stream_len, m.len);
	CHECK_EQ_INT(ca.replies, 1);
	CHECK_EQ_INT(ca.failures, 0);
	CHECK_EQ_INT(ca.last_cookie, 42);
	CHECK_EQ_INT(ca.last_reply_first, WIRE_USER);
	/* connections are closed and freed once done */
	PUMP(a, b, 1000, transport_active_conns(b) == 0);
	CHECK_EQ_INT(transport_active_conns(a), 0);
	CHECK_EQ_INT(transport_active_conns(b), 0);
	wbuf_free(&m);
	transport_close(a);
	transport_close(b);
}

/* Several megabytes force partial writes and many reads on both sides. */
TEST(transport_big_stream)
{
	struct tctx ca, cb;
	struct transport *a = open_t(&ca, "127.0.0.1", 0);
	struct transport *b = open_t(&cb, "127.0.0.1", 0);
	REQUIRE(a && b);
	cb.reply = true;
	struct wire_addr lb;
	transport_local_addr(b, &lb);

	size_t n = 6u * 1024 * 1024;
	uint8_t *big = malloc(n);
	REQUIRE(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	struct wbuf m;
	wbuf_init(&m);
	wire_encode_stream_user(&m, big, (uint32_t)n);
	free(big);
	REQUIRE(!m.oom);
	transport_send_stream(a, &lb, m.p, m.len, 7, now_ms());
	PUMP(a, b, 10000, ca.replies + ca.failures > 0);
	CHECK_EQ_INT(cb.streams, 1);
	CHECK_EQ_INT(cb.last_stream_len, m.len);
	CHECK_EQ_INT(cb.last_stream_tail, m.p[m.len - 1]);
	CHECK_EQ_INT(ca.replies, 1);
	CHECK_EQ_INT(ca.last_cookie, 7);
	wbuf_free(&m);
	transport_close(a);
	transport_close(b);
}

TEST(transport_stream_refused)
{
	struct tctx ca;
	struct transport *a = open_t(&ca, "127.0.0.1", 0);
	REQUIRE(a);
	/* a port that was just free: bind, note it, close */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	REQUIRE(bind(s, (struct sockaddr *)&sin, sizeof sin) == 0);
	socklen_t sl = sizeof sin;
	getsockname(s, (struct sockaddr *)&sin, &sl);
	close(s);
	struct wire_addr to = {.ip = {127, 0, 0, 1}, .ip_len = 4, .port = ntohs(sin.sin_port)};

	const uint8_t msg[] = {WIRE_ENCRYPT, 0, 0, 0, 1, 0};
	transport_send_stream(a, &to, msg, sizeof msg, 9, now_ms());
	CHECK_EQ_INT(ca.failures, 0);
	PUMP(a, (struct transport *)NULL, 3000, ca.failures > 0);
	CHECK_EQ_INT(ca.failures, 1);
	CHECK_EQ_INT(ca.replies, 0);
	CHECK_EQ_INT(ca.last_cookie, 9);

	/* an address the socket family cannot reach fails later, not now */
	struct wire_addr bad = {.ip_len = 7, .port = 1};
	transport_send_stream(a, &bad, msg, sizeof msg, 10, now_ms());
	CHECK_EQ_INT(ca.failures, 1);
	CHECK(transport_next_deadline(a) <= now_ms());
	PUMP(a, (struct transport *)NULL, 1000, ca.failures > 1);
	CHECK_EQ_INT(ca.failures, 2);
	CHECK_EQ_INT(ca.last_cookie, 10);
	transport_close(a);
}

/* A peer that accepts (in the kernel backlog) but never answers. */
TEST(transport_stream_timeout)
{
	struct tctx ca;
	struct transport *a = open_t(&ca, "127.0.0.1", 300);
	REQUIRE(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	REQUIRE(bind(s, (struct sockaddr *)&sin, sizeof sin) == 0);
	REQUIRE(listen(s, 4) == 0);
	socklen_t sl = sizeof sin;
	getsockname(s, (struct sockaddr *)&sin, &sl);
	struct wire_addr to = {.ip = {127, 0, 0, 1}, .ip_len = 4, .port = ntohs(sin.sin_port)};

	const uint8_t msg[] = {WIRE_ENCRYPT, 0, 0, 0, 1, 0};
	int64_t t0 = now_ms();
	transport_send_stream(a, &to, msg, sizeof msg, 11, t0);
	CHECK(transport_next_deadline(a) <= t0 + 300);
	PUMP(a, (struct transport *)NULL, 3000, ca.failures > 0);
	int64_t took = now_ms() - t0;
	CHECK_EQ_INT(ca.failures, 1);
	CHECK(took >= 290 && took < 2000);
	CHECK_EQ_INT(transport_stats(a)->tcp_timeouts, 1);
	close(s);
	transport_close(a);
}

/* Garbage on a stream closes that connection and nothing else. */
TEST(transport_garbage_stream)
{
	struct tctx cb;
	struct transport *b = open_t(&cb, "127.0.0.1", 0);
	REQUIRE(b);
	struct wire_addr lb;
	transport_local_addr(b, &lb);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(lb.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	REQUIRE(connect(s, (struct sockaddr *)&sin, sizeof sin) == 0);
	const uint8_t junk[] = {0xee, 1, 2, 3, 4, 5};
	CHECK_EQ_INT(write(s, junk, sizeof junk), (long)sizeof junk);
	PUMP(b, (struct transport *)NULL, 2000, transport_stats(b)->tcp_bad_frames > 0);
	CHECK_EQ_INT(transport_stats(b)->tcp_bad_frames, 1);
	CHECK_EQ_INT(cb.streams, 0);
	/* the peer sees the close */
	char rb[8];
	struct pollfd p = {.fd = s, .events = POLLIN};
	CHECK(poll(&p, 1, 2000) == 1);
	CHECK(read(s, rb, sizeof rb) <= 0);
	close(s);

	/* connect and close straight away: no stream, no error */
	s = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(connect(s, (struct sockaddr *)&sin, sizeof sin) == 0);
	close(s);
	PUMP(b, (struct transport *)NULL, 300, 0);
	CHECK_EQ_INT(transport_active_conns(b), 0);
	CHECK_EQ_INT(cb.streams, 0);
	transport_close(b);
}

TEST(transport_conn_cap)
{
	struct tctx cb;
	struct transport_config cfg;
	transport_config_default(&cfg);
	snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "127.0.0.1");
	cfg.bind_port = 0;
	cfg.max_conns = 2;
	struct transport_hooks h = {.ctx = &cb, .on_stream = tc_stream};
	memset(&cb, 0, sizeof cb);
	REQUIRE(transport_open(&cfg, &h, &cb.t, NULL, 0) == 0);
	struct wire_addr lb;
	transport_local_addr(cb.t, &lb);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(lb.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s[3];
	for (int i = 0; i < 3; i++) {
		s[i] = socket(AF_INET, SOCK_STREAM, 0);
		REQUIRE(connect(s[i], (struct sockaddr *)&sin, sizeof sin) == 0);
	}
	PUMP(cb.t, (struct transport *)NULL, 500,
	     transport_stats(cb.t)->tcp_accepted + transport_stats(cb.t)->tcp_rejected >= 3);
	CHECK_EQ_INT(transport_stats(cb.t)->tcp_accepted, 2);
	CHECK_EQ_INT(transport_stats(cb.t)->tcp_rejected, 1);
	CHECK_EQ_INT(transport_active_conns(cb.t), 2);
	for (int i = 0; i < 3; i++)
		close(s[i]);
	transport_close(cb.t);
}

TEST(transport_ipv6_dualstack)
{
	struct tctx ca, cb;
	struct transport *a = open_t(&ca, "::", 0);
	if (!a) {
		SKIP("no IPv6 here");
	}
	struct transport *b = open_t(&cb, "127.0.0.1", 0);
	REQUIRE(b);
	CHECK_EQ_INT(transport_family(a), AF_INET6);
	struct wire_addr la, lb;
	transport_local_addr(a, &la);
	transport_local_addr(b, &lb);
	/* IPv4 peer reaches the dual-stack socket and is seen as IPv4 */
	struct wire_addr to = {.ip = {127, 0, 0, 1}, .ip_len = 4, .port = la.port};
	const uint8_t msg[] = {WIRE_PING, 9};
	CHECK_EQ_INT(transport_send_packet(b, &to, msg, sizeof msg), 0);
	PUMP(a, b, 2000, ca.packets > 0);
	CHECK_EQ_INT(ca.packets, 1);
	CHECK_EQ_INT(ca.last_from.ip_len, 4);
	CHECK_EQ_INT(ca.last_from.port, lb.port);
	/* and the dual-stack socket can answer an IPv4 address */
	CHECK_EQ_INT(transport_send_packet(a, &ca.last_from, msg, sizeof msg), 0);
	PUMP(a, b, 2000, cb.packets > 0);
	CHECK_EQ_INT(cb.packets, 1);
	transport_close(a);
	transport_close(b);
}

/* ------------------------------------------------------ vigil instances */

#define MAX_NODES 4

struct node {
	vigil_t *v;
	int joins, leaves, fails, updates;
	int wills;
	char will_owner[VIGIL_NAME_MAX + 1];
	char will_payload[64];
	int logs_err;
};

static void on_event(void *ctx, const struct vigil_event *ev)
{
	struct node *n = ctx;
	switch (ev->type) {
	case VIGIL_EV_MEMBER_JOIN: n->joins++; break;
	case VIGIL_EV_MEMBER_LEAVE: n->leaves++; break;
	case VIGIL_EV_MEMBER_FAILED: n->fails++; break;
	case VIGIL_EV_MEMBER_UPDATE: n->updates++; break;
	case VIGIL_EV_MEMBER_WILL:
		n->wills++;
		snprintf(n->will_owner, sizeof n->will_owner, "%s",
			 ev->member ? ev->member->name : "");
		snprintf(n->will_payload, sizeof n->will_payload, "%.*s",
			 (int)ev->payload_len, (const char *)ev->payload);
		break;
	default: break;
	}
}

static void on_log(void *ctx, int level, const char *msg)
{
	struct node *n = ctx;
	if (level >= 3)
		n->logs_err++;
	if (getenv("VIGIL_TEST_LOG"))
		printf("# [%d] %s\n", level, msg);
}

static const char *test_key = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

static int make_node(struct node *n, const char *name, const char *bind, bool encrypted)
{
	struct vigil_config cfg;
	vigil_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "%s", name);
	snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "%s", bind);
	cfg.bind_port = 0;
	/* faster than LAN defaults so failures show up quickly in a test */
	cfg.probe_interval_ms = 200;
	cfg.probe_timeout_ms = 100;
	cfg.gossip_interval_ms = 50;
	struct vigil_tag tags[] = {{"role", "test"}};
	cfg.tags = tags;
	cfg.n_tags = 1;
	const char *keys[] = {test_key};
	if (encrypted) {
		cfg.keys = keys;
		cfg.n_keys = 1;
	}
	cfg.on_event = on_event;
	cfg.on_log = on_log;
	cfg.ctx = n;
	memset(n, 0, sizeof *n);
	char err[256] = "";
	if (vigil_create(&cfg, &n->v, err, sizeof err) != 0) {
		printf("# vigil_create(%s on %s): %s\n", name, bind, err);
		return -1;
	}
	return 0;
}

/* The embedder's loop: one poll over every node's fds, then step them all. */
static void run(struct node *ns, int n, int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end) {
		struct pollfd fds[MAX_NODES * 16];
		int nf = 0, timeout = 50;
		for (int i = 0; i < n; i++) {
			if (!ns[i].v)
				continue;
			nf += vigil_pollfds(ns[i].v, fds + nf, 16);
			int t = vigil_timeout_ms(ns[i].v);
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		int64_t left = end - now_ms();
		if (left < timeout)
			timeout = left < 0 ? 0 : (int)left;
		poll(fds, (nfds_t)nf, timeout);
		for (int i = 0; i < n; i++)
			if (ns[i].v)
				vigil_step(ns[i].v);
	}
}

static enum vigil_status status_of(vigil_t *v, const char *name)
{
	struct vigil_member *m = NULL;
	size_t n = 0;
	enum vigil_status st = VIGIL_STATUS_NONE;
	if (vigil_members(v, &m, &n) != 0)
		return st;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0)
			st = m[i].status;
	vigil_members_free(m, n);
	return st;
}

static size_t count_members(vigil_t *v)
{
	struct vigil_member *m = NULL;
	size_t n = 0;
	if (vigil_members(v, &m, &n) != 0)
		return 0;
	vigil_members_free(m, n);
	return n;
}

/* Run until both see each other alive (or the time runs out). */
static bool run_until_mutual(struct node *ns, int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end) {
		run(ns, 2, 50);
		if (status_of(ns[0].v, "b") == VIGIL_STATUS_ALIVE &&
		    status_of(ns[1].v, "a") == VIGIL_STATUS_ALIVE)
			return true;
	}
	return false;
}

static double stat_of(vigil_t *v, const char *name)
{
	struct vigil_stat st[128];
	int n = vigil_stats(v, st, 128);
	for (int i = 0; i < n; i++)
		if (strcmp(st[i].name, name) == 0)
			return st[i].value;
	return -1;
}

static void join_pair(const char *bind, const char *join_fmt, bool encrypted)
{
	struct node ns[2];
	if (make_node(&ns[0], "a", bind, encrypted) != 0) {
		CHECK(!"create a");
		return;
	}
	if (make_node(&ns[1], "b", bind, encrypted) != 0) {
		vigil_destroy(ns[0].v);
		CHECK(!"create b");
		return;
	}
	CHECK_EQ_STR(vigil_name(ns[0].v), "a");
	CHECK_EQ_INT(status_of(ns[0].v, "a"), VIGIL_STATUS_ALIVE);

	/* find b's port through its own member entry */
	struct vigil_member *m = NULL;
	size_t n = 0;
	REQUIRE(vigil_members(ns[1].v, &m, &n) == 0);
	REQUIRE(n == 1);
	char seed[128];
	snprintf(seed, sizeof seed, join_fmt, (unsigned)m[0].port);
	CHECK_EQ_INT(m[0].n_tags, 1);
	vigil_members_free(m, n);

	const char *seeds[] = {seed};
	CHECK_EQ_INT(vigil_join(ns[0].v, seeds, 1), 1);
	CHECK(run_until_mutual(ns, 5000));
	CHECK_EQ_INT(count_members(ns[0].v), 2);
	CHECK_EQ_INT(count_members(ns[1].v), 2);
	CHECK(ns[0].joins >= 2); /* ourselves and b */
	CHECK(ns[1].joins >= 2);
	if (encrypted) {
		CHECK_EQ_INT(stat_of(ns[0].v, "encrypted"), 1);
		CHECK(stat_of(ns[0].v, "tcp_plain_dropped") == 0);
		CHECK(stat_of(ns[1].v, "udp_decrypt_failed") == 0);
	}

	/* keep running: probes flow both ways and nobody gets suspected */
	run(ns, 2, 700);
	CHECK_EQ_INT(status_of(ns[0].v, "b"), VIGIL_STATUS_ALIVE);
	CHECK_EQ_INT(status_of(ns[1].v, "a"), VIGIL_STATUS_ALIVE);
	CHECK(stat_of(ns[0].v, "acks") > 0);
	CHECK_EQ_INT(ns[0].fails + ns[1].fails, 0);

	/* graceful leave of b: a sees it as left */
	CHECK_EQ_INT(vigil_leave(ns[1].v), 0);
	int64_t end = now_ms() + 5000;
	while (!vigil_leave_done(ns[1].v) && now_ms() < end)
		run(ns, 2, 20);
	CHECK(vigil_leave_done(ns[1].v));
	end = now_ms() + 3000;
	while (status_of(ns[0].v, "b") != VIGIL_STATUS_LEFT && now_ms() < end)
		run(ns, 2, 20);
	CHECK_EQ_INT(status_of(ns[0].v, "b"), VIGIL_STATUS_LEFT);

	vigil_destroy(ns[0].v);
	vigil_destroy(ns[1].v);
}

/* vigil_join_begin / vigil_join_poll: the outcome serf's Join reports. */
TEST(vigil_join_outcome)
{
	struct node ns[2];
	REQUIRE(make_node(&ns[0], "a", "127.0.0.1", false) == 0);
	if (make_node(&ns[1], "b", "127.0.0.1", false) != 0) {
		vigil_destroy(ns[0].v);
		REQUIRE(!"create b");
	}
	struct vigil_member *m = NULL;
	size_t n = 0;
	REQUIRE(vigil_members(ns[1].v, &m, &n) == 0 && n == 1);
	char seed[64];
	snprintf(seed, sizeof seed, "127.0.0.1:%u", (unsigned)m[0].port);
	vigil_members_free(m, n);

	/* one seed answers, one refuses: done with 1, and then forgotten */
	const char *two[] = {seed, "127.0.0.1:1"};
	uint32_t id = 0;
	int joined = -1, done = 0;
	CHECK_EQ_INT(vigil_join_begin(ns[0].v, two, 2, false, &id), 2);
	CHECK(id != 0);
	for (int64_t end = now_ms() + 5000; done == 0 && now_ms() < end;) {
		run(ns, 2, 20);
		done = vigil_join_poll(ns[0].v, id, &joined);
	}
	CHECK_EQ_INT(done, 1);
	CHECK_EQ_INT(joined, 1);
	CHECK_EQ_INT(vigil_join_poll(ns[0].v, id, &joined), -1);

	/* nobody answers: done with 0, well before the TCP timeout */
	const char *refused[] = {"127.0.0.1:1"};
	uint32_t id2 = 0;
	CHECK_EQ_INT(vigil_join_begin(ns[0].v, refused, 1, false, &id2), 1);
	CHECK(id2 != 0 && id2 != id);
	done = 0;
	joined = -1;
	int64_t t0 = now_ms();
	while (done == 0 && now_ms() < t0 + 5000) {
		run(ns, 2, 20);
		done = vigil_join_poll(ns[0].v, id2, &joined);
	}
	CHECK_EQ_INT(done, 1);
	CHECK_EQ_INT(joined, 0);
	CHECK(now_ms() - t0 < 2000);

	/* nothing to join: not tracked */
	const char *bad[] = {"not an address"};
	uint32_t id3 = 7;
	CHECK_EQ_INT(vigil_join_begin(ns[0].v, bad, 1, false, &id3), 0);
	CHECK_EQ_INT(id3, 0);
	CHECK_EQ_INT(vigil_join_poll(ns[0].v, 12345, &joined), -1);
	CHECK_EQ_INT(vigil_join_poll(NULL, id, &joined), -1);
	vigil_destroy(ns[0].v);
	vigil_destroy(ns[1].v);
}

TEST(vigil_join_ipv4)
{
	join_pair("127.0.0.1", "127.0.0.1:%u", false);
}

TEST(vigil_join_ipv6)
{
	int s = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	bool ok = s >= 0 && bind(s, (struct sockaddr *)&sin6, sizeof sin6) == 0;
	if (s >= 0)
		close(s);
	if (!ok) {
		SKIP("no ::1 here");
	}
	join_pair("::1", "[::1]:%u", false);
}

TEST(vigil_join_encrypted)
{
	join_pair("127.0.0.1", "127.0.0.1:%u", true);
}

/* An encrypted node refuses a plaintext one (verify_incoming on). */
TEST(vigil_encryption_mismatch)
{
	struct node ns[2];
	REQUIRE(make_node(&ns[0], "a", "127.0.0.1", false) == 0);
	REQUIRE(make_node(&ns[1], "b", "127.0.0.1", true) == 0);
	struct vigil_member *m = NULL;
	size_t n = 0;
	REQUIRE(vigil_members(ns[1].v, &m, &n) == 0);
	char seed[64];
	snprintf(seed, sizeof seed, "127.0.0.1:%u", (unsigned)m[0].port);
	vigil_members_free(m, n);
	const char *seeds[] = {seed};
	CHECK_EQ_INT(vigil_join(ns[0].v, seeds, 1), 1);
	run(ns, 2, 800);
	CHECK_EQ_INT(count_members(ns[0].v), 1);
	CHECK_EQ_INT(count_members(ns[1].v), 1);
	CHECK(stat_of(ns[1].v, "tcp_plain_dropped") >= 1);
	vigil_destroy(ns[0].v);
	vigil_destroy(ns[1].v);
}

/* Garbage datagrams and streams change nothing and crash nothing. */
static void garbage_at(bool encrypted)
{
	struct node ns[2];
	REQUIRE(make_node(&ns[0], "a", "127.0.0.1", encrypted) == 0);
	REQUIRE(make_node(&ns[1], "b", "127.0.0.1", encrypted) == 0);
	struct vigil_member *m = NULL;
	size_t n = 0;
	REQUIRE(vigil_members(ns[1].v, &m, &n) == 0);
	uint16_t port = m[0].port;
	vigil_members_free(m, n);
	char seed[64];
	snprintf(seed, sizeof seed, "127.0.0.1:%u", (unsigned)port);
	const char *seeds[] = {seed};
	vigil_join(ns[0].v, seeds, 1);
	REQUIRE(run_until_mutual(ns, 5000));

	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	REQUIRE(u >= 0);
	uint32_t rng = 12345;
	uint8_t pkt[1500];
	for (int i = 0; i < 300; i++) {
		size_t len = 1 + (size_t)(i * 37 % 1400);
		for (size_t j = 0; j < len; j++) {
			rng = rng * 1103515245u + 12345u;
			pkt[j] = (uint8_t)(rng >> 16);
		}
		/* plausible type bytes make the decoders work harder */
		pkt[0] = (uint8_t)(i % 16);
		sendto(u, pkt, len, 0, (struct sockaddr *)&sin, sizeof sin);
		if (i % 50 == 0)
			run(ns, 2, 5);
	}
	/* an "encrypted" datagram with a bad tag and a huge compound count */
	const uint8_t enc[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9,
			       9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
	sendto(u, enc, sizeof enc, 0, (struct sockaddr *)&sin, sizeof sin);
	const uint8_t comp[] = {WIRE_COMPOUND, 255, 0, 1};
	sendto(u, comp, sizeof comp, 0, (struct sockaddr *)&sin, sizeof sin);
	close(u);

	/* garbage streams: bad type, truncated encrypt frame, huge lengths */
#define RAW(lit) {(const uint8_t *)(lit), sizeof(lit) - 1}
	static const struct { const uint8_t *p; size_t len; } streams[] = {
		RAW("\xee\x01\x02\x03"),
		RAW("\x0a\xff\xff\xff\xff\x00"),
		RAW("\x0a\x00\x00\x00\x20\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"
		    "\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b"
		    "\x1c\x1d\x1e\x1f\x20"),
		RAW("\x06\x83\xa4Join\xc2\xa5Nodes\x05\xacUserStateLen\x00"),
		RAW("\x06\xc1"),
		RAW("\x08\x81\xaaUserMsgLen\xce\x7f\xff\xff\xff"),
	};
#undef RAW
	for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		REQUIRE(connect(s, (struct sockaddr *)&sin, sizeof sin) == 0);
		CHECK_EQ_INT(write(s, streams[i].p, streams[i].len), (long)streams[i].len);
		shutdown(s, SHUT_WR);
		run(ns, 2, 30);
		close(s);
	}
	run(ns, 2, 600);

	CHECK_EQ_INT(count_members(ns[0].v), 2);
	CHECK_EQ_INT(count_members(ns[1].v), 2);
	CHECK_EQ_INT(status_of(ns[0].v, "b"), VIGIL_STATUS_ALIVE);
	CHECK_EQ_INT(status_of(ns[1].v, "a"), VIGIL_STATUS_ALIVE);
	CHECK_EQ_INT(status_of(ns[1].v, "b"), VIGIL_STATUS_ALIVE);
	CHECK_EQ_INT(ns[0].fails + ns[1].fails, 0);
	if (encrypted)
		CHECK(stat_of(ns[1].v, "udp_decrypt_failed") >= 300);
	else
		CHECK(stat_of(ns[1].v, "decode_errors") > 0);
	CHECK(stat_of(ns[1].v, "tcp_active") == 0);
	vigil_destroy(ns[0].v);
	vigil_destroy(ns[1].v);
}

TEST(vigil_garbage_plain)
{
	garbage_at(false);
}

TEST(vigil_garbage_encrypted)
{
	garbage_at(true);
}

static bool has_key(vigil_t *v, const char *key, bool primary)
{
	char **keys = NULL;
	size_t n = 0;
	bool found = false;
	if (vigil_keys_list(v, &keys, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(keys[i], key) == 0 && (!primary || i == 0))
			found = true;
		free(keys[i]);
	}
	free(keys);
	return found;
}

/* A finished vigil_keys_op, copied out of the callback. */
struct keys_done {
	int calls;
	enum vigil_keys_opcode op;
	int num_nodes, num_resp, num_err;
	char error[128];
	char msgs[4][2][128]; /* node, message */
	size_t n_msgs;
	char keys[4][64];
	int key_counts[4];
	size_t n_keys;
	char primary[4][64];
	int primary_counts[4];
	size_t n_primary;
};

static void on_keys_done(void *ctx, const struct vigil_keys_result *r)
{
	struct keys_done *d = ctx;
	d->calls++;
	d->op = r->op;
	d->num_nodes = r->num_nodes;
	d->num_resp = r->num_resp;
	d->num_err = r->num_err;
	snprintf(d->error, sizeof d->error, "%s", r->error ? r->error : "");
	d->n_msgs = r->n_messages < 4 ? r->n_messages : 4;
	for (size_t i = 0; i < d->n_msgs; i++) {
		snprintf(d->msgs[i][0], sizeof d->msgs[i][0], "%s", r->messages[i].node);
		snprintf(d->msgs[i][1], sizeof d->msgs[i][1], "%s", r->messages[i].message);
	}
	d->n_keys = r->n_keys < 4 ? r->n_keys : 4;
	for (size_t i = 0; i < d->n_keys; i++) {
		snprintf(d->keys[i], sizeof d->keys[i], "%s", r->keys[i].key);
		d->key_counts[i] = r->keys[i].count;
	}
	d->n_primary = r->n_primary_keys < 4 ? r->n_primary_keys : 4;
	for (size_t i = 0; i < d->n_primary; i++) {
		snprintf(d->primary[i], sizeof d->primary[i], "%s", r->primary_keys[i].key);
		d->primary_counts[i] = r->primary_keys[i].count;
	}
}

/* Start op on ns[who] and step all n nodes until its callback ran. */
static int keys_op_wait(struct node *ns, int n, int who, enum vigil_keys_opcode op,
			const char *key, struct keys_done *d, int ms)
{
	char err[256] = "";
	memset(d, 0, sizeof *d);
	if (vigil_keys_op(ns[who].v, op, key, on_keys_done, d, err, sizeof err) != 0) {
		printf("# vigil_keys_op(%s): %s\n", vigil_keys_op_name(op), err);
		return -1;
	}
	if (d->calls != 0)
		return -2; /* never from inside vigil_keys_op */
	int64_t end = now_ms() + ms;
	while (d->calls == 0 && now_ms() < end)
		run(ns, n, 10);
	return d->calls == 1 ? 0 : -3;
}

static int key_count_of(const struct keys_done *d, const char *key)
{
	for (size_t i = 0; i < d->n_keys; i++)
		if (strcmp(d->keys[i], key) == 0)
			return d->key_counts[i];
	return 0;
}

/* serf key rotation through the _serf_*-key internal queries. */
TEST(vigil_key_rotation)
{
	static const char *new_key = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=";
	struct node ns[2];
	struct keys_done d;
	REQUIRE(make_node(&ns[0], "a", "127.0.0.1", true) == 0);
	REQUIRE(make_node(&ns[1], "b", "127.0.0.1", true) == 0);
	struct vigil_member *m = NULL;
	size_t n = 0;
	REQUIRE(vigil_members(ns[1].v, &m, &n) == 0);
	char seed[64];
	snprintf(seed, sizeof seed, "127.0.0.1:%u", (unsigned)m[0].port);
	vigil_members_free(m, n);
	const char *seeds[] = {seed};
	vigil_join(ns[0].v, seeds, 1);
	REQUIRE(run_until_mutual(ns, 5000));

	char err[256] = "";
	/* refused before asking anyone: not a key */
	CHECK(vigil_keys_op(ns[0].v, VIGIL_KEYS_INSTALL, "bad", on_keys_done, &d, err,
			    sizeof err) != 0);
	CHECK(err[0] != '\0');
	CHECK(vigil_keys_op(ns[0].v, VIGIL_KEYS_INSTALL, "AAAA", on_keys_done, &d, err,
			    sizeof err) != 0);
	CHECK(strstr(err, "16, 24 or 32") != NULL);

	/* the cluster's view: one key on both */
	CHECK_EQ_INT(keys_op_wait(ns, 2, 1, VIGIL_KEYS_LIST, NULL, &d, 3000), 0);
	CHECK_EQ_INT(d.op, VIGIL_KEYS_LIST);
	CHECK_EQ_INT(d.num_nodes, 2);
	CHECK_EQ_INT(d.num_resp, 2);
	CHECK_EQ_INT(d.num_err, 0);
	CHECK_EQ_STR(d.error, "");
	CHECK_EQ_INT(d.n_keys, 1);
	CHECK_EQ_INT(key_count_of(&d, test_key), 2);
	CHECK_EQ_INT(d.n_primary, 1);
	CHECK_EQ_STR(d.primary[0], test_key);
	CHECK_EQ_INT(d.primary_counts[0], 2);

	/* per-node refusals come back as serf reports them */
	CHECK_EQ_INT(keys_op_wait(ns, 2, 0, VIGIL_KEYS_USE, new_key, &d, 3000), 0);
	CHECK_EQ_INT(d.num_resp, 2);
	CHECK_EQ_INT(d.num_err, 2);
	CHECK_EQ_STR(d.error, "2/2 nodes reported failure");
	CHECK_EQ_INT(d.n_msgs, 2);
	for (size_t i = 0; i < d.n_msgs; i++)
		CHECK_EQ_STR(d.msgs[i][1], "Requested key is not in the keyring");
	CHECK_EQ_INT(keys_op_wait(ns, 2, 0, VIGIL_KEYS_REMOVE, test_key, &d, 3000), 0);
	CHECK_EQ_INT(d.num_err, 2);
	CHECK_EQ_STR(d.error, "2/2 nodes reported failure");
	if (d.n_msgs)
		CHECK_EQ_STR(d.msgs[0][1], "Removing the primary key is not allowed");

	/* install: done means done everywhere */
	CHECK_EQ_INT(keys_op_wait(ns, 2, 0, VIGIL_KEYS_INSTALL, new_key, &d, 3000), 0);
	CHECK_EQ_INT(d.op, VIGIL_KEYS_INSTALL);
	CHECK_EQ_INT(d.num_nodes, 2);
	CHECK_EQ_INT(d.num_resp, 2);
	CHECK_EQ_INT(d.num_err, 0);
	CHECK_EQ_STR(d.error, "");
	CHECK_EQ_INT(d.n_msgs, 0);
	CHECK(has_key(ns[0].v, new_key, false));
	CHECK(has_key(ns[1].v, new_key, false));
	CHECK(has_key(ns[1].v, test_key, true));
	CHECK_EQ_INT(keys_op_wait(ns, 2, 0, VIGIL_KEYS_LIST, NULL, &d, 3000), 0);
	CHECK_EQ_INT(d.n_keys, 2);
	CHECK_EQ_INT(key_count_of(&d, new_key), 2);
	CHECK_EQ_INT(key_count_of(&d, test_key), 2);

	/* use then remove back to back: the remove only starts once every
	 * node encrypts with the new key */
	CHECK_EQ_INT(keys_op_wait(ns, 2, 1, VIGIL_KEYS_USE, new_key, &d, 3000), 0);
	CHECK_EQ_STR(d.error, "");
	CHECK(has_key(ns[0].v, new_key, true));
	CHECK(has_key(ns[1].v, new_key, true));
	CHECK_EQ_INT(keys_op_wait(ns, 2, 0, VIGIL_KEYS_REMOVE, test_key, &d, 3000), 0);
	CHECK_EQ_STR(d.error, "");
	CHECK_EQ_INT(d.num_resp, 2);
	CHECK(!has_key(ns[0].v, test_key, false));
	CHECK(!has_key(ns[1].v, test_key, false));
	CHECK_EQ_INT(keys_op_wait(ns, 2, 1, VIGIL_KEYS_LIST, NULL, &d, 3000), 0);
	CHECK_EQ_INT(d.n_keys, 1);
	CHECK_EQ_INT(key_count_of(&d, new_key), 2);

	/* a cancelled operation is never reported */
	memset(&d, 0, sizeof d);
	CHECK_EQ_INT(vigil_keys_op(ns[0].v, VIGIL_KEYS_LIST, NULL, on_keys_done, &d, err,
				   sizeof err), 0);
	vigil_keys_cancel(ns[0].v, &d);
	run(ns, 2, 1500);
	CHECK_EQ_INT(d.calls, 0);

	/* still talking, now with the new key only */
	run(ns, 2, 600);
	CHECK_EQ_INT(status_of(ns[0].v, "b"), VIGIL_STATUS_ALIVE);
	CHECK_EQ_INT(status_of(ns[1].v, "a"), VIGIL_STATUS_ALIVE);
	CHECK_EQ_INT(ns[0].fails + ns[1].fails, 0);

	/* a member that does not answer (b is not stepped): the operation
	 * completes at the query timeout with b missing, as serf reports it */
	int64_t t0 = now_ms();
	CHECK_EQ_INT(keys_op_wait(ns, 1, 0, VIGIL_KEYS_LIST, NULL, &d, 5000), 0);
	CHECK(now_ms() - t0 >= 500); /* 50 ms gossip * 16 * ceil(log10(3)) */
	CHECK_EQ_INT(d.num_nodes, 2);
	CHECK_EQ_INT(d.num_resp, 1);
	CHECK_EQ_INT(d.num_err, 0);
	CHECK_EQ_STR(d.error, "1/2 nodes reported success");
	CHECK_EQ_INT(key_count_of(&d, new_key), 1);
	vigil_destroy(ns[0].v);
	vigil_destroy(ns[1].v);

	/* plaintext node: every node (just us) says why; the callback runs
	 * from vigil_step even though our own answer came at once */
	REQUIRE(make_node(&ns[0], "p", "127.0.0.1", false) == 0);
	memset(&d, 0, sizeof d);
	CHECK_EQ_INT(vigil_keys_op(ns[0].v, VIGIL_KEYS_INSTALL, new_key, on_keys_done, &d, err,
				   sizeof err), 0);
	CHECK_EQ_INT(d.calls, 0);
	CHECK_EQ_INT(vigil_timeout_ms(ns[0].v), 0);
	vigil_step(ns[0].v);
	CHECK_EQ_INT(d.calls, 1);
	CHECK_EQ_INT(d.num_nodes, 1);
	CHECK_EQ_INT(d.num_resp, 1);
	CHECK_EQ_INT(d.num_err, 1);
	CHECK_EQ_STR(d.error, "1/1 nodes reported failure");
	CHECK_EQ_INT(d.n_msgs, 1);
	CHECK_EQ_STR(d.msgs[0][0], "p");
	CHECK(strstr(d.msgs[0][1], "not enabled") != NULL);
	CHECK_EQ_INT(keys_op_wait(ns, 1, 0, VIGIL_KEYS_LIST, NULL, &d, 3000), 0);
	CHECK_EQ_INT(d.num_err, 1);
	CHECK_EQ_INT(d.n_keys, 0);
	CHECK_EQ_INT(d.n_primary, 1);
	CHECK_EQ_STR(d.primary[0], "");
	/* destroying with an operation pending calls nobody back */
	memset(&d, 0, sizeof d);
	CHECK_EQ_INT(vigil_keys_op(ns[0].v, VIGIL_KEYS_LIST, NULL, on_keys_done, &d, err,
				   sizeof err), 0);
	vigil_destroy(ns[0].v);
	CHECK_EQ_INT(d.calls, 0);
}

/* Three encrypted nodes; a node that answers a key query sends its answer
 * while the query it decrypted is still being handled (and then
 * rebroadcast): the answer must not be encrypted over it. */
TEST(vigil_key_query_rebroadcast_intact)
{
	struct node ns[3];
	struct keys_done d;
	REQUIRE(make_node(&ns[0], "a", "127.0.0.1", true) == 0);
	REQUIRE(make_node(&ns[1], "b", "127.0.0.1", true) == 0);
	REQUIRE(make_node(&ns[2], "c", "127.0.0.1", true) == 0);
	struct vigil_member *m = NULL;
	size_t n = 0;
	REQUIRE(vigil_members(ns[0].v, &m, &n) == 0);
	char seed[64];
	snprintf(seed, sizeof seed, "127.0.0.1:%u", (unsigned)m[0].port);
	vigil_members_free(m, n);
	const char *seeds[] = {seed};
	vigil_join(ns[1].v, seeds, 1);
	vigil_join(ns[2].v, seeds, 1);
	int64_t end = now_ms() + 5000;
	while (now_ms() < end && !(count_members(ns[0].v) == 3 && count_members(ns[1].v) == 3 &&
				   count_members(ns[2].v) == 3))
		run(ns, 3, 50);
	REQUIRE(count_members(ns[2].v) == 3);
	run(ns, 3, 300);
	double before = 0, after = 0;
	for (int i = 0; i < 3; i++)
		before += stat_of(ns[i].v, "serf_decode_errors") + stat_of(ns[i].v, "decode_errors");
	for (int k = 0; k < 6; k++) {
		CHECK_EQ_INT(keys_op_wait(ns, 3, k % 3, VIGIL_KEYS_LIST, NULL, &d, 3000), 0);
		CHECK_EQ_INT(d.num_resp, 3);
		CHECK_EQ_INT(d.num_err, 0);
	}
	run(ns, 3, 500);
	for (int i = 0; i < 3; i++)
		after += stat_of(ns[i].v, "serf_decode_errors") + stat_of(ns[i].v, "decode_errors");
	CHECK(after == before);
	for (int i = 0; i < 3; i++)
		vigil_destroy(ns[i].v);
}

/* A will travels over the real sockets and is delivered when its owner dies. */
TEST(vigil_will_delivery)
{
	struct node ns[2];
	REQUIRE(make_node(&ns[0], "a", "127.0.0.1", true) == 0);
	REQUIRE(make_node(&ns[1], "b", "127.0.0.1", true) == 0);
	struct vigil_member *m = NULL;
	size_t n = 0;
	REQUIRE(vigil_members(ns[1].v, &m, &n) == 0);
	char seed[64];
	snprintf(seed, sizeof seed, "127.0.0.1:%u", (unsigned)m[0].port);
	vigil_members_free(m, n);
	const char *seeds[] = {seed};
	vigil_join(ns[0].v, seeds, 1);
	REQUIRE(run_until_mutual(ns, 5000));

	const char *msg = "goodbye from a";
	CHECK_EQ_INT(vigil_will_set(ns[0].v, "b", NULL, 0, (const uint8_t *)msg, strlen(msg)), 0);
	CHECK(vigil_will_set(ns[0].v, "b", "ev", 0, NULL, 0) != 0); /* not both */
	struct vigil_will_info *wi = NULL;
	size_t nw = 0;
	int64_t end = now_ms() + 3000;
	for (;;) {
		CHECK_EQ_INT(vigil_will_list(ns[1].v, "a", &wi, &nw), 0);
		if (nw || now_ms() > end)
			break;
		free(wi);
		run(ns, 2, 20);
	}
	CHECK_EQ_INT(nw, 1);
	if (nw) {
		CHECK_EQ_STR(wi[0].owner, "a");
		CHECK_EQ_STR(wi[0].recipient, "b");
		CHECK_EQ_INT(wi[0].payload_len, strlen(msg));
	}
	free(wi);

	/* a crashes: no leave, its sockets just go away */
	vigil_destroy(ns[0].v);
	ns[0].v = NULL;
	end = now_ms() + 10000;
	while (ns[1].wills == 0 && now_ms() < end)
		run(ns, 2, 20);
	CHECK_EQ_INT(ns[1].fails, 1);
	CHECK_EQ_INT(ns[1].wills, 1);
	CHECK_EQ_STR(ns[1].will_owner, "a");
	CHECK_EQ_STR(ns[1].will_payload, msg);
	vigil_destroy(ns[1].v);
}

TEST(vigil_api_edges)
{
	struct node n0;
	REQUIRE(make_node(&n0, "solo", "127.0.0.1", true) == 0);
	/* pollfds with little room still returns something usable */
	struct pollfd one[1];
	CHECK_EQ_INT(vigil_pollfds(n0.v, one, 1), 1);
	CHECK(vigil_timeout_ms(n0.v) <= 10);
	struct pollfd fds[8];
	CHECK(vigil_pollfds(n0.v, fds, 8) >= 2);
	/* bad join addresses are skipped */
	const char *bad[] = {"[::1", "1.2.3.4:0"};
	CHECK_EQ_INT(vigil_join(n0.v, bad, 2), 0);
	char **keys = NULL;
	size_t nk = 0;
	CHECK_EQ_INT(vigil_keys_list(n0.v, &keys, &nk), 0);
	CHECK_EQ_INT(nk, 1);
	if (nk)
		CHECK_EQ_STR(keys[0], test_key);
	for (size_t i = 0; i < nk; i++)
		free(keys[i]);
	free(keys);
	struct vigil_stat st[4];
	CHECK_EQ_INT(vigil_stats(n0.v, st, 4), 3);
	CHECK(st[3].name == NULL);
	/* alone: leave completes without anyone to tell */
	CHECK_EQ_INT(vigil_leave(n0.v), 0);
	int64_t end = now_ms() + 3000;
	while (!vigil_leave_done(n0.v) && now_ms() < end)
		run(&n0, 1, 20);
	CHECK(vigil_leave_done(n0.v));
	vigil_destroy(n0.v);

	/* configuration errors are reported, not crashed on */
	struct vigil_config cfg;
	vigil_config_default(&cfg);
	char err[256] = "";
	vigil_t *v = NULL;
	snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "not-an-ip");
	CHECK(vigil_create(&cfg, &v, err, sizeof err) != 0);
	CHECK(err[0] != '\0');
	CHECK(v == NULL);
	vigil_config_default(&cfg);
	cfg.bind_port = 0;
	snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "127.0.0.1");
	const char *badkey[] = {"not base64"};
	cfg.keys = badkey;
	cfg.n_keys = 1;
	CHECK(vigil_create(&cfg, &v, err, sizeof err) != 0);
	CHECK(v == NULL);
}

TEST_MAIN(parse_addresses, default_advertise_is_not_wildcard, transport_packet_roundtrip,
	  transport_port_unreachable,
	  transport_stream_roundtrip, transport_big_stream, transport_stream_refused,
	  transport_stream_timeout, transport_garbage_stream, transport_conn_cap,
	  transport_ipv6_dualstack, vigil_join_outcome, vigil_join_ipv4, vigil_join_ipv6, vigil_join_encrypted,
	  vigil_encryption_mismatch, vigil_garbage_plain, vigil_garbage_encrypted,
	  vigil_key_rotation, vigil_key_query_rebroadcast_intact, vigil_will_delivery,
	  vigil_api_edges)
