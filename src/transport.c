/*
 * transport.c — non-blocking UDP + TCP for vigil (see transport.h).
 *
 * Everything here is driven from transport_step(): it polls its own fds
 * with a zero timeout, drains the UDP socket and the listen queue, and
 * advances every TCP connection's small state machine.  Connections live in
 * an array of pointers; a connection that finishes is only marked DONE and
 * freed when the array is compacted at the end of the step, so hooks may
 * start new connections (which are appended) while we iterate.
 */
#include "transport.h"

#include "logline.h"
#include "ratelimit.h"
#include "grow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/errqueue.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

enum conn_state {
	C_CONNECTING, /* outgoing: non-blocking connect in progress */
	C_OUT_WRITE,  /* outgoing: writing our message */
	C_OUT_READ,   /* outgoing: waiting for the one reply message */
	C_IN_READ,    /* incoming: waiting for the one request message */
	C_IN_WRITE,   /* incoming: writing the reply, then close */
	C_DONE,       /* finished; freed at the next compaction */
};

struct conn {
	int fd;
	bool outgoing;
	enum conn_state st;
	struct wire_addr peer;
	uint64_t cookie;
	int64_t deadline;
	int64_t born;          /* transport clock when accepted / started */
	/* what we still have to write */
	uint8_t *out;
	size_t out_len, out_off;
	/* what we have read so far */
	uint8_t *in;
	size_t in_len, in_cap;
};

struct transport {
	struct transport_config cfg;
	struct transport_hooks hooks;
	int family;
	int udp_fd, tcp_fd;
	struct wire_addr local;

	struct conn **conns;
	int n_conns, cap_conns;

	/* outgoing streams that failed before they had a socket */
	uint64_t *fail_q;
	size_t n_fail, cap_fail;

	uint8_t *udp_buf; /* TRANSPORT_UDP_RECV_MAX */
	int64_t now;
	struct transport_stats st;
	struct ratelimit log_rl; /* for lines a connection flood causes */
};

/* Bound the work done per step so one busy socket cannot starve the rest. */
#define UDP_BATCH 256
#define ACCEPT_BATCH 64
#define READ_CHUNK 65536

/* One log function; rl NULL = always, else the shared limiter decides. */
__attribute__((format(printf, 4, 5)))
static void tlog_to(struct transport *t, struct ratelimit *rl, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logline_vemit(t->hooks.log, t->hooks.ctx, rl, t->now, LOGLINE_MAX, level, fmt, ap);
	va_end(ap);
}

#define tlog(t, level, ...) tlog_to((t), NULL, (level), __VA_ARGS__)
/* for what a remote host can cause once per connection */
#define tlog_rl(t, level, ...) tlog_to((t), &(t)->log_rl, (level), __VA_ARGS__)

/* ---------------------------------------------------------------- addresses */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void addr_from_sockaddr(const struct sockaddr_storage *ss, struct wire_addr *a)
{
	memset(a, 0, sizeof *a);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		memcpy(a->ip, &s4->sin_addr, 4);
		a->ip_len = 4;
		a->port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		const uint8_t *b = s6->sin6_addr.s6_addr;
		/* A dual-stack socket sees IPv4 peers as ::ffff:a.b.c.d; memberlist
		 * (Go's To4) carries those as 4-byte addresses. */
		if (memcmp(b, v4mapped_prefix, 12) == 0) {
			memcpy(a->ip, b + 12, 4);
			a->ip_len = 4;
		} else {
			memcpy(a->ip, b, 16);
			a->ip_len = 16;
		}
		a->port = ntohs(s6->sin6_port);
	}
}

/*
 * Build a sockaddr for `a` usable on a socket of `family`.  IPv4 goes over
 * an IPv6 socket as a mapped address; a real IPv6 address cannot go over an
 * IPv4 socket.
 */
static int addr_to_sockaddr(const struct wire_addr *a, int family,
			    struct sockaddr_storage *ss, socklen_t *sl)
{
	memset(ss, 0, sizeof *ss);
	uint8_t v4[4];
	bool is4 = false;
	if (a->ip_len == 4) {
		memcpy(v4, a->ip, 4);
		is4 = true;
	} else if (a->ip_len == 16 && memcmp(a->ip, v4mapped_prefix, 12) == 0) {
		memcpy(v4, a->ip + 12, 4);
		is4 = true;
	} else if (a->ip_len != 16) {
		return -1;
	}
	if (family == AF_INET) {
		if (!is4)
			return -1;
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(a->port);
		memcpy(&s4->sin_addr, v4, 4);
		*sl = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		if (is4) {
			memcpy(s6->sin6_addr.s6_addr, v4mapped_prefix, 12);
			memcpy(s6->sin6_addr.s6_addr + 12, v4, 4);
		} else {
			memcpy(s6->sin6_addr.s6_addr, a->ip, 16);
		}
		*sl = sizeof *s6;
	}
	return 0;
}

static bool addr_is_v4(const struct wire_addr *a)
{
	return a->ip_len == 4 ||
	       (a->ip_len == 16 && memcmp(a->ip, v4mapped_prefix, 12) == 0);
}

char *transport_format_ip(const struct wire_addr *a, char *out, size_t outlen)
{
	char tmp[INET6_ADDRSTRLEN];
	if (!outlen)
		return out;
	if (a->ip_len == 4)
		inet_ntop(AF_INET, a->ip, tmp, sizeof tmp);
	else if (a->ip_len == 16)
		inet_ntop(AF_INET6, a->ip, tmp, sizeof tmp);
	else
		snprintf(tmp, sizeof tmp, "?");
	snprintf(out, outlen, "%s", tmp);
	return out;
}

char *transport_format_addr(const struct wire_addr *a, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];
	transport_format_ip(a, ip, sizeof ip);
	if (a->ip_len == 16)
		snprintf(out, outlen, "[%s]:%u", ip, (unsigned)a->port);
	else
		snprintf(out, outlen, "%s:%u", ip, (unsigned)a->port);
	return out;
}

bool transport_addr_equal(const struct wire_addr *a, const struct wire_addr *b)
{
	return wire_addr_equal(a, b);
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int parse_ip(const char *host, struct wire_addr *out)
{
	uint8_t buf[16];
	if (inet_pton(AF_INET, host, buf) == 1) {
		memcpy(out->ip, buf, 4);
		out->ip_len = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, buf) == 1) {
		if (memcmp(buf, v4mapped_prefix, 12) == 0) {
			memcpy(out->ip, buf + 12, 4);
			out->ip_len = 4;
		} else {
			memcpy(out->ip, buf, 16);
			out->ip_len = 16;
		}
		return 0;
	}
	return -1;
}

static int resolve_host(const char *host, struct wire_addr *out)
{
	struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -1;
	/* Prefer IPv4 like most serf deployments; fall back to IPv6. */
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	if (!pick)
		for (ai = res; ai; ai = ai->ai_next)
			if (ai->ai_family == AF_INET6) {
				pick = ai;
				break;
			}
	int rc = -1;
	if (pick && pick->ai_addrlen <= sizeof(struct sockaddr_storage)) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		memcpy(&ss, pick->ai_addr, pick->ai_addrlen);
		uint16_t port = out->port;
		addr_from_sockaddr(&ss, out);
		out->port = port;
		rc = 0;
	}
	freeaddrinfo(res);
	return rc;
}

int transport_parse_addr(const char *s, uint16_t default_port, bool allow_dns,
			 struct wire_addr *out)
{
	char host[256];
	const char *port_s = NULL;
	size_t hl;

	if (!s || !out)
		return -1;
	memset(out, 0, sizeof *out);
	out->port = default_port;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb)
			return -1;
		hl = (size_t)(rb - s - 1);
		if (rb[1] == ':')
			port_s = rb + 2;
		else if (rb[1] != '\0')
			return -1;
		if (hl == 0 || hl >= sizeof host)
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		/* brackets are only for IPv6 literals */
		struct wire_addr tmp = *out;
		if (inet_pton(AF_INET6, host, tmp.ip) != 1)
			return -1;
	} else {
		const char *c1 = strchr(s, ':');
		if (c1 && strchr(c1 + 1, ':')) {
			/* two or more colons and no brackets: a bare IPv6 literal */
			hl = strlen(s);
		} else if (c1) {
			hl = (size_t)(c1 - s);
			port_s = c1 + 1;
		} else {
			hl = strlen(s);
		}
		if (hl == 0 || hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (port_s && parse_port(port_s, &out->port) != 0)
		return -1;
	if (parse_ip(host, out) == 0)
		return 0;
	if (!allow_dns)
		return -1;
	return resolve_host(host, out);
}

static bool ipv4_is_private(const uint8_t *b)
{
	return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
	       (b[0] == 192 && b[1] == 168) ||
	       (b[0] == 100 && (b[1] & 0xc0) == 64); /* RFC 6598 shared space */
}

int transport_default_advertise(struct wire_addr *out)
{
	struct ifaddrs *ifs = NULL, *i;
	const uint8_t *first = NULL, *priv = NULL;
	memset(out, 0, sizeof *out);
	if (getifaddrs(&ifs) == 0) {
		for (i = ifs; i; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
				continue;
			const uint8_t *b = (const uint8_t *)
				&((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
			if (b[0] == 127)
				continue;
			if (!first)
				first = b;
			if (!priv && ipv4_is_private(b))
				priv = b;
		}
	}
	const uint8_t *pick = priv ? priv : first;
	if (pick) {
		memcpy(out->ip, pick, 4);
	} else {
		static const uint8_t lo[4] = {127, 0, 0, 1};
		memcpy(out->ip, lo, 4);
	}
	out->ip_len = 4;
	if (ifs)
		freeifaddrs(ifs);
	return 0;
}

/* ------------------------------------------------------------ setup/teardown */

void transport_config_default(struct transport_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->bind_addr, sizeof cfg->bind_addr, "0.0.0.0");
	cfg->bind_port = TRANSPORT_DEFAULT_PORT;
	cfg->tcp_timeout_ms = TRANSPORT_TCP_TIMEOUT_MS;
	cfg->max_conns = TRANSPORT_MAX_CONNS;
	cfg->max_conns_per_source = TRANSPORT_MAX_CONNS_PER_SOURCE;
	cfg->in_budget = TRANSPORT_IN_BUDGET;
	cfg->stream_max = TRANSPORT_STREAM_MAX;
}

static int set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

static int open_socket(int family, int type, bool dualstack)
{
	int fd = socket(family, type, 0);
	if (fd < 0)
		return -1;
	if (set_nonblock_cloexec(fd) < 0) {
		close(fd);
		return -1;
	}
	if (family == AF_INET6) {
		int v6only = dualstack ? 0 : 1;
		/* Best effort: some systems force v6only. */
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	}
	return fd;
}

/* Bind TCP then UDP on one port.  0 or -1 with errno. */
static int bind_pair(struct transport *t, const struct wire_addr *bind_ip, bool dualstack,
		     uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct wire_addr a = *bind_ip;
	int one = 1;

	a.port = port;
	t->tcp_fd = open_socket(t->family, SOCK_STREAM, dualstack);
	if (t->tcp_fd < 0) {
		snprintf(err, errlen, "tcp socket: %s", strerror(errno));
		return -1;
	}
	/* As Go's net.Listen: lets a restarted agent rebind despite TIME_WAIT. */
	(void)setsockopt(t->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	addr_to_sockaddr(&a, t->family, &ss, &sl);
	if (bind(t->tcp_fd, (struct sockaddr *)&ss, sl) < 0 || listen(t->tcp_fd, 128) < 0) {
		int e = errno;
		snprintf(err, errlen, "tcp bind %s port %u: %s", t->cfg.bind_addr,
			 (unsigned)port, strerror(e));
		close(t->tcp_fd);
		t->tcp_fd = -1;
		errno = e;
		return -1;
	}
	if (port == 0) {
		struct sockaddr_storage got;
		socklen_t gl = sizeof got;
		if (getsockname(t->tcp_fd, (struct sockaddr *)&got, &gl) < 0) {
			snprintf(err, errlen, "getsockname: %s", strerror(errno));
			close(t->tcp_fd);
			t->tcp_fd = -1;
			return -1;
		}
		struct wire_addr ga;
		addr_from_sockaddr(&got, &ga);
		a.port = ga.port;
	}

	t->udp_fd = open_socket(t->family, SOCK_DGRAM, dualstack);
	if (t->udp_fd < 0) {
		snprintf(err, errlen, "udp socket: %s", strerror(errno));
		close(t->tcp_fd);
		t->tcp_fd = -1;
		return -1;
	}
	addr_to_sockaddr(&a, t->family, &ss, &sl);
	if (bind(t->udp_fd, (struct sockaddr *)&ss, sl) < 0) {
		int e = errno;
		snprintf(err, errlen, "udp bind %s port %u: %s", t->cfg.bind_addr,
			 (unsigned)a.port, strerror(e));
		close(t->udp_fd);
		close(t->tcp_fd);
		t->udp_fd = t->tcp_fd = -1;
		errno = e;
		return -1;
	}
	/* memberlist asks for a 2 MiB receive buffer so bursts of gossip are
	 * not dropped; Linux clamps to rmem_max instead of failing. */
	int rcv = 2 * 1024 * 1024;
	(void)setsockopt(t->udp_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	/*
	 * Queue ICMP errors for our datagrams (udp_errors reads them): a
	 * "port unreachable" from a peer's host says its process is gone,
	 * which the agent uses to probe that peer at once.  An unconnected
	 * socket hears nothing of them otherwise.  Best effort.
	 */
	if (t->family == AF_INET6)
		(void)setsockopt(t->udp_fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one);
	(void)setsockopt(t->udp_fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one);

	t->local = a;
	return 0;
}

int transport_open(const struct transport_config *cfg, const struct transport_hooks *hooks,
		   struct transport **out, char *err, size_t errlen)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		errlen = sizeof dummy;
	}
	if (!cfg || !hooks || !out) {
		snprintf(err, errlen, "transport_open: bad arguments");
		return -1;
	}
	*out = NULL;
	struct transport *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->cfg = *cfg;
	t->hooks = *hooks;
	t->udp_fd = t->tcp_fd = -1;
	if (t->cfg.tcp_timeout_ms <= 0)
		t->cfg.tcp_timeout_ms = TRANSPORT_TCP_TIMEOUT_MS;
	if (t->cfg.max_conns <= 0)
		t->cfg.max_conns = TRANSPORT_MAX_CONNS;
	if (t->cfg.max_conns_per_source <= 0)
		t->cfg.max_conns_per_source = TRANSPORT_MAX_CONNS_PER_SOURCE;
	if (t->cfg.in_budget == 0)
		t->cfg.in_budget = TRANSPORT_IN_BUDGET;
	if (t->cfg.stream_max == 0)
		t->cfg.stream_max = TRANSPORT_STREAM_MAX;
	if (!t->cfg.bind_addr[0])
		snprintf(t->cfg.bind_addr, sizeof t->cfg.bind_addr, "0.0.0.0");

	struct wire_addr bind_ip;
	memset(&bind_ip, 0, sizeof bind_ip);
	const char *ba = t->cfg.bind_addr;
	char stripped[64];
	/* accept "[::]" as well as "::" */
	size_t bl = strlen(ba);
	if (bl >= 2 && ba[0] == '[' && ba[bl - 1] == ']' && bl - 2 < sizeof stripped) {
		memcpy(stripped, ba + 1, bl - 2);
		stripped[bl - 2] = '\0';
		ba = stripped;
	}
	uint8_t raw[16];
	bool dualstack = false;
	if (inet_pton(AF_INET, ba, raw) == 1) {
		t->family = AF_INET;
		memcpy(bind_ip.ip, raw, 4);
		bind_ip.ip_len = 4;
	} else if (inet_pton(AF_INET6, ba, raw) == 1) {
		t->family = AF_INET6;
		memcpy(bind_ip.ip, raw, 16);
		bind_ip.ip_len = 16;
		static const uint8_t any6[16];
		dualstack = memcmp(raw, any6, 16) == 0;
	} else {
		snprintf(err, errlen, "bind address %s is not an IP literal", t->cfg.bind_addr);
		free(t);
		return -1;
	}

	t->udp_buf = malloc(TRANSPORT_UDP_RECV_MAX);
	t->cap_conns = 16;
	t->conns = calloc((size_t)t->cap_conns, sizeof *t->conns);
	if (!t->udp_buf || !t->conns) {
		snprintf(err, errlen, "out of memory");
		transport_close(t);
		return -1;
	}

	int rc = -1;
	/* With port 0 the UDP half may find the kernel's TCP pick taken; retry
	 * a few times with a fresh pick, as memberlist's agent does. */
	for (int attempt = 0; attempt < (cfg->bind_port ? 1 : 16); attempt++) {
		rc = bind_pair(t, &bind_ip, dualstack, cfg->bind_port, err, errlen);
		if (rc == 0 || errno != EADDRINUSE)
			break;
	}
	if (rc != 0) {
		transport_close(t);
		return -1;
	}
	*out = t;
	return 0;
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	free(c->in);
	free(c);
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n_conns; i++)
		conn_free(t->conns[i]);
	free(t->conns);
	free(t->fail_q);
	if (t->udp_fd >= 0)
		close(t->udp_fd);
	if (t->tcp_fd >= 0)
		close(t->tcp_fd);
	free(t->udp_buf);
	free(t);
}

void transport_local_addr(const struct transport *t, struct wire_addr *out)
{
	*out = t->local;
}

int transport_family(const struct transport *t)
{
	return t->family;
}

const struct transport_stats *transport_stats(const struct transport *t)
{
	return &t->st;
}

int transport_active_conns(const struct transport *t)
{
	int n = 0;
	for (int i = 0; i < t->n_conns; i++)
		if (t->conns[i]->st != C_DONE)
			n++;
	return n;
}

/* ----------------------------------------------------------------------- UDP */

int transport_send_packet(struct transport *t, const struct wire_addr *to,
			  const uint8_t *pkt, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (addr_to_sockaddr(to, t->family, &ss, &sl) < 0) {
		char a[80];
		t->st.udp_send_errors++;
		tlog(t, 0, "transport: cannot send to %s from an IPv4 socket",
		     transport_format_addr(to, a, sizeof a));
		return -1;
	}
	ssize_t n = sendto(t->udp_fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&ss, sl);
	/*
	 * With IP_RECVERR, an ICMP error for an earlier datagram that has not
	 * been read yet fails this send instead, and is consumed by doing so
	 * (its copy stays in the error queue): this datagram was not sent.
	 */
	if (n < 0 && errno == ECONNREFUSED)
		n = sendto(t->udp_fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&ss, sl);
	if (n < 0) {
		/* UDP is lossy anyway: a full socket buffer is just a drop. */
		char a[80];
		t->st.udp_send_errors++;
		tlog(t, 0, "transport: udp send to %s: %s",
		     transport_format_addr(to, a, sizeof a), strerror(errno));
		return -1;
	}
	t->st.udp_out++;
	t->st.udp_out_bytes += (uint64_t)n;
	return 0;
}

static void udp_drain(struct transport *t)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t n = recvfrom(t->udp_fd, t->udp_buf, TRANSPORT_UDP_RECV_MAX, MSG_DONTWAIT,
				     (struct sockaddr *)&ss, &sl);
		if (n < 0) {
			/* ICMP errors (ECONNREFUSED) surface here too: udp_errors
			 * reports them from the error queue; keep draining. */
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNREFUSED)
				tlog(t, 2, "transport: udp recv: %s", strerror(errno));
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}
		struct wire_addr from;
		addr_from_sockaddr(&ss, &from);
		if (from.ip_len == 0)
			continue;
		t->st.udp_in++;
		t->st.udp_in_bytes += (uint64_t)n;
		if (t->hooks.on_packet)
			t->hooks.on_packet(t->hooks.ctx, &from, t->udp_buf, (size_t)n);
	}
}

/* Whether a queued socket error is an ICMP (or ICMPv6) port unreachable. */
static bool is_port_unreachable(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
		bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
		if (!v4 && !v6)
			continue;
		struct sock_extended_err ee;
		memcpy(&ee, CMSG_DATA(c), sizeof ee);
		if (ee.ee_errno == ECONNREFUSED &&
		    (ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6))
			return true;
	}
	return false;
}

/*
 * Empty the socket's error queue (poll reports POLLERR until it is empty),
 * reporting each port unreachable with the address we had sent to.
 */
static void udp_errors(struct transport *t)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage ss;
		union {
			char buf[256];
			struct cmsghdr align;
		} ctrl;
		uint8_t head[64]; /* the start of our datagram; not needed */
		struct iovec iov = { head, sizeof head };
		struct msghdr mh = { .msg_name = &ss, .msg_namelen = sizeof ss,
				     .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf };
		memset(&ss, 0, sizeof ss);
		if (recvmsg(t->udp_fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return; /* EAGAIN: the queue is empty */
		if (!is_port_unreachable(&mh))
			continue;
		struct wire_addr to;
		addr_from_sockaddr(&ss, &to);
		if (to.ip_len == 0)
			continue;
		t->st.udp_unreachable++;
		if (t->hooks.on_unreachable)
			t->hooks.on_unreachable(t->hooks.ctx, &to);
	}
}

/* ----------------------------------------------------------------------- TCP */

static int conn_add(struct transport *t, struct conn *c)
{
	if (t->n_conns == t->cap_conns) {
		int nc = t->cap_conns * 2;
		struct conn **p = realloc(t->conns, (size_t)nc * sizeof *p);
		if (!p)
			return -1;
		t->conns = p;
		t->cap_conns = nc;
	}
	t->conns[t->n_conns++] = c;
	return 0;
}

static void queue_failure(struct transport *t, uint64_t cookie)
{
	uint64_t *p = array_grow(t->fail_q, &t->cap_fail, t->n_fail + 1, sizeof *p, 8);
	if (!p) {
		/* Nothing we can do; swim times the exchange out itself. */
		tlog(t, 3, "transport: out of memory queueing a stream failure");
		return;
	}
	t->fail_q = p;
	t->fail_q[t->n_fail++] = cookie;
}

static void conn_close_fd(struct conn *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

/* Close it and drop what it had read; freed at the next compaction. */
static void conn_end(struct conn *c)
{
	conn_close_fd(c);
	c->st = C_DONE;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
}

/* Fail a connection; outgoing ones report msg == NULL to the owner. */
static void conn_fail(struct transport *t, struct conn *c, const char *why)
{
	char a[80];
	if (c->st == C_DONE)
		return;
	t->st.tcp_errors++;
	if (c->outgoing)
		tlog(t, 1, "transport: outgoing stream to %s: %s",
		     transport_format_addr(&c->peer, a, sizeof a), why);
	else /* any host can open these by the thousand */
		tlog_rl(t, 0, "transport: incoming stream from %s: %s",
			transport_format_addr(&c->peer, a, sizeof a), why);
	conn_end(c);
	if (c->outgoing && t->hooks.on_stream_reply)
		t->hooks.on_stream_reply(t->hooks.ctx, c->cookie, NULL, 0);
}

static int active_socket_conns(const struct transport *t)
{
	return transport_active_conns(t);
}

static bool same_host(const struct wire_addr *a, const struct wire_addr *b)
{
	return a->ip_len == b->ip_len && memcmp(a->ip, b->ip, a->ip_len) == 0;
}

/*
 * An incoming connection that may be closed to make room: still waiting
 * for its request (nothing of ours is invested in it yet), and accepted
 * in an earlier step, so it has had a chance to send.  Of those (from
 * `host` only, when given), the one that sent nothing is taken first,
 * then the oldest: a peer that is mid-push-pull is the last to go.
 */
static struct conn *evict_candidate(const struct transport *t, const struct wire_addr *host)
{
	struct conn *best = NULL;
	for (int i = 0; i < t->n_conns; i++) {
		struct conn *c = t->conns[i];
		if (c->outgoing || c->st != C_IN_READ || c->born >= t->now)
			continue;
		if (host && !same_host(&c->peer, host))
			continue;
		if (!best || (c->in_len == 0 && best->in_len != 0) ||
		    ((c->in_len == 0) == (best->in_len == 0) && c->born < best->born))
			best = c;
	}
	return best;
}

static void evict(struct transport *t, struct conn *c, const char *why)
{
	char a[80];
	t->st.tcp_evicted++;
	tlog_rl(t, 1, "transport: closing idle stream from %s: %s",
		transport_format_addr(&c->peer, a, sizeof a), why);
	conn_end(c);
}

/*
 * Whether a new connection (incoming from `from`, or outgoing when NULL)
 * may have a slot, closing an idle incoming one if that is what it takes.
 * Idle connections cost an attacker nothing, so they must never be what
 * keeps a joiner (or our own push-pull) out.
 */
static bool make_room(struct transport *t, const struct wire_addr *from)
{
	if (from) {
		int n = 0;
		for (int i = 0; i < t->n_conns; i++) {
			const struct conn *c = t->conns[i];
			if (!c->outgoing && c->st != C_DONE && same_host(&c->peer, from))
				n++;
		}
		if (n >= t->cfg.max_conns_per_source) {
			struct conn *v = evict_candidate(t, from);
			if (!v)
				return false;
			evict(t, v, "too many connections from one address");
			return true;
		}
	}
	if (active_socket_conns(t) < t->cfg.max_conns)
		return true;
	struct conn *v = evict_candidate(t, NULL);
	if (!v)
		return false;
	evict(t, v, "connection table full");
	return true;
}

void transport_send_stream(struct transport *t, const struct wire_addr *to,
			   const uint8_t *msg, size_t len, uint64_t cookie, int64_t now)
{
	char a[80];
	struct sockaddr_storage ss;
	socklen_t sl;
	int family = addr_is_v4(to) ? AF_INET : AF_INET6;

	t->now = now; /* for make_room's age test */
	if (!make_room(t, NULL)) {
		t->st.tcp_rejected++;
		tlog_rl(t, 2, "transport: too many connections, not connecting to %s",
			transport_format_addr(to, a, sizeof a));
		queue_failure(t, cookie);
		return;
	}
	if (len == 0) {
		/* nothing to send means nothing will come back: fail now, not
		 * after the timeout */
		queue_failure(t, cookie);
		return;
	}
	if (addr_to_sockaddr(to, family, &ss, &sl) < 0 || to->port == 0) {
		tlog(t, 1, "transport: bad stream address %s",
		     transport_format_addr(to, a, sizeof a));
		queue_failure(t, cookie);
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	if (!c || (len && !(c->out = malloc(len)))) {
		free(c);
		queue_failure(t, cookie);
		return;
	}
	if (len)
		memcpy(c->out, msg, len);
	c->out_len = len;
	c->outgoing = true;
	c->peer = *to;
	c->cookie = cookie;
	c->deadline = now + t->cfg.tcp_timeout_ms;
	c->born = now;
	c->fd = open_socket(family, SOCK_STREAM, false);
	if (c->fd < 0) {
		tlog(t, 2, "transport: tcp socket: %s", strerror(errno));
		conn_free(c);
		queue_failure(t, cookie);
		return;
	}
	int one = 1;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&ss, sl) == 0) {
		c->st = C_OUT_WRITE;
	} else if (errno == EINPROGRESS || errno == EINTR) {
		c->st = C_CONNECTING;
	} else {
		tlog(t, 1, "transport: connect %s: %s",
		     transport_format_addr(to, a, sizeof a), strerror(errno));
		t->st.tcp_errors++;
		conn_free(c);
		queue_failure(t, cookie);
		return;
	}
	if (conn_add(t, c) < 0) {
		conn_free(c);
		queue_failure(t, cookie);
		return;
	}
	t->st.tcp_connects++;
}

static void accept_all(struct transport *t)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(t->tcp_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* EMFILE and friends: try again next step. */
			tlog(t, 3, "transport: accept: %s", strerror(errno));
			return;
		}
		struct wire_addr peer;
		addr_from_sockaddr(&ss, &peer);
		if (!make_room(t, &peer)) {
			/* Every slot is busy with a real exchange: close at once
			 * rather than leave the peer hanging in the backlog. */
			char a[80];
			t->st.tcp_rejected++;
			tlog_rl(t, 2, "transport: too many connections, rejecting %s",
				transport_format_addr(&peer, a, sizeof a));
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c || conn_add(t, c) < 0) {
			free(c);
			close(fd);
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->fd = fd;
		c->peer = peer;
		c->st = C_IN_READ;
		c->deadline = t->now + t->cfg.tcp_timeout_ms;
		c->born = t->now;
		t->st.tcp_accepted++;
	}
}

/* Write what we can.  1 = all written, 0 = would block, -1 = error. */
static int conn_write(struct transport *t, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->out_off += (size_t)n;
		t->st.tcp_out_bytes += (uint64_t)n;
	}
	return 1;
}

/* Bytes of read buffer all incoming connections hold now. */
static size_t incoming_buffered(const struct transport *t)
{
	size_t n = 0;
	for (int i = 0; i < t->n_conns; i++)
		if (!t->conns[i]->outgoing)
			n += t->conns[i]->in_cap;
	return n;
}

/*
 * Read what is available.  1 = peer closed (EOF), 0 = would block,
 * -1 = error, -2 = message would exceed stream_max, -3 = incoming
 * connections together would exceed in_budget.
 */
static int conn_read(struct transport *t, struct conn *c)
{
	for (;;) {
		if (c->in_len == c->in_cap) {
			if (c->in_cap >= t->cfg.stream_max)
				return -2;
			size_t nc = c->in_cap ? c->in_cap * 2 : 4096;
			if (nc > t->cfg.stream_max)
				nc = t->cfg.stream_max;
			/* only on growth (log2 of the message size times per
			 * connection), so the scan of <= 128 is cheap */
			if (!c->outgoing && incoming_buffered(t) - c->in_cap + nc > t->cfg.in_budget)
				return -3;
			uint8_t *p = realloc(c->in, nc);
			if (!p)
				return -1;
			c->in = p;
			c->in_cap = nc;
		}
		size_t want = c->in_cap - c->in_len;
		if (want > READ_CHUNK * 4)
			want = READ_CHUNK * 4;
		ssize_t n = recv(c->fd, c->in + c->in_len, want, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		if (n == 0)
			return 1;
		c->in_len += (size_t)n;
		t->st.tcp_in_bytes += (uint64_t)n;
	}
}

static void conn_finish_write(struct transport *t, struct conn *c)
{
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->outgoing) {
		/* memberlist re-arms the deadline before reading the answer */
		c->st = C_OUT_READ;
		c->deadline = t->now + t->cfg.tcp_timeout_ms;
	} else {
		/* Reply sent: a clean FIN, then close (we read everything the
		 * peer sent, so close does not turn into a reset). */
		shutdown(c->fd, SHUT_WR);
		conn_close_fd(c);
		c->st = C_DONE;
	}
}

/* A whole message of `flen` bytes sits at c->in. */
static void conn_got_message(struct transport *t, struct conn *c, size_t flen)
{
	if (c->outgoing) {
		conn_close_fd(c);
		c->st = C_DONE;
		if (t->hooks.on_stream_reply)
			t->hooks.on_stream_reply(t->hooks.ctx, c->cookie, c->in, flen);
		free(c->in);
		c->in = NULL;
		c->in_len = c->in_cap = 0;
		return;
	}
	struct wbuf reply;
	wbuf_init(&reply);
	if (t->hooks.on_stream)
		t->hooks.on_stream(t->hooks.ctx, &c->peer, c->in, flen, &reply);
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	if (reply.oom) {
		wbuf_free(&reply);
		conn_fail(t, c, "out of memory building reply");
		return;
	}
	if (reply.len == 0) {
		wbuf_free(&reply);
		conn_close_fd(c);
		c->st = C_DONE;
		return;
	}
	/* Take over the wbuf's storage as our output buffer. */
	c->out = reply.p;
	c->out_len = reply.len;
	c->out_off = 0;
	c->st = C_IN_WRITE;
	c->deadline = t->now + t->cfg.tcp_timeout_ms;
	int w = conn_write(t, c);
	if (w < 0)
		conn_fail(t, c, strerror(errno));
	else if (w == 1)
		conn_finish_write(t, c);
}

static void conn_step(struct transport *t, struct conn *c, short revents)
{
	if (c->st == C_CONNECTING) {
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return;
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			conn_fail(t, c, strerror(soerr));
			return;
		}
		c->st = C_OUT_WRITE;
		revents |= POLLOUT;
	}
	if (c->st == C_OUT_WRITE || c->st == C_IN_WRITE) {
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return;
		int w = conn_write(t, c);
		if (w < 0) {
			conn_fail(t, c, strerror(errno));
			return;
		}
		if (w == 0)
			return;
		conn_finish_write(t, c);
		if (c->st != C_OUT_READ)
			return;
		/* the reply may already be waiting; fall through and try */
		revents |= POLLIN;
	}
	if (c->st == C_OUT_READ || c->st == C_IN_READ) {
		if (!(revents & (POLLIN | POLLERR | POLLHUP)))
			return;
		int r = conn_read(t, c);
		if (r == -1) {
			conn_fail(t, c, strerror(errno));
			return;
		}
		/* Look for a complete message whatever the read outcome: the peer
		 * may have sent it and closed in one go. */
		long fl = c->in_len ? wire_stream_frame_len(c->in, c->in_len) : 0;
		if (fl < 0) {
			t->st.tcp_bad_frames++;
			conn_fail(t, c, wire_strerror((int)fl));
			return;
		}
		if (fl > 0 && (size_t)fl <= c->in_len) {
			conn_got_message(t, c, (size_t)fl);
			return;
		}
		if (r == -2) {
			t->st.tcp_bad_frames++;
			conn_fail(t, c, "message exceeds the stream size limit");
			return;
		}
		if (r == -3) {
			conn_fail(t, c, "incoming streams are over their memory budget");
			return;
		}
		if (r == 1) {
			if (c->in_len == 0 && !c->outgoing) {
				/* connect-and-close (a port check): not worth a log */
				conn_close_fd(c);
				c->st = C_DONE;
				return;
			}
			conn_fail(t, c, "connection closed before a whole message arrived");
		}
	}
}

/* ---------------------------------------------------------------- event loop */

static short conn_events(const struct conn *c)
{
	switch (c->st) {
	case C_CONNECTING:
	case C_OUT_WRITE:
	case C_IN_WRITE:
		return POLLOUT;
	case C_OUT_READ:
	case C_IN_READ:
		return POLLIN;
	default:
		return 0;
	}
}

int transport_nfds(const struct transport *t)
{
	return 2 + transport_active_conns(t);
}

int transport_pollfds(const struct transport *t, struct pollfd *fds, int max)
{
	int n = 0;
	if (n < max) {
		fds[n].fd = t->udp_fd;
		fds[n].events = POLLIN;
		fds[n++].revents = 0;
	}
	if (n < max) {
		fds[n].fd = t->tcp_fd;
		fds[n].events = POLLIN;
		fds[n++].revents = 0;
	}
	for (int i = 0; i < t->n_conns && n < max; i++) {
		const struct conn *c = t->conns[i];
		if (c->st == C_DONE || c->fd < 0)
			continue;
		fds[n].fd = c->fd;
		fds[n].events = conn_events(c);
		fds[n++].revents = 0;
	}
	return n;
}

int64_t transport_next_deadline(const struct transport *t)
{
	int64_t d = INT64_MAX;
	if (t->n_fail)
		return INT64_MIN; /* reports are due now */
	for (int i = 0; i < t->n_conns; i++) {
		const struct conn *c = t->conns[i];
		if (c->st != C_DONE && c->deadline < d)
			d = c->deadline;
	}
	return d;
}

static void compact(struct transport *t)
{
	int j = 0;
	for (int i = 0; i < t->n_conns; i++) {
		if (t->conns[i]->st == C_DONE)
			conn_free(t->conns[i]);
		else
			t->conns[j++] = t->conns[i];
	}
	t->n_conns = j;
}

void transport_step(struct transport *t, int64_t now)
{
	t->now = now;

	/* Report streams that failed before they got a socket.  Take the queue
	 * first: the hook may start (and fail) new streams. */
	if (t->n_fail) {
		uint64_t *q = t->fail_q;
		size_t n = t->n_fail;
		t->fail_q = NULL;
		t->n_fail = t->cap_fail = 0;
		for (size_t i = 0; i < n; i++)
			if (t->hooks.on_stream_reply)
				t->hooks.on_stream_reply(t->hooks.ctx, q[i], NULL, 0);
		free(q);
	}

	/* Zero-timeout poll of everything we own, so we only touch sockets
	 * that are ready.  Connections added by hooks during this step wait
	 * for the next one. */
	struct pollfd stack_fds[64];
	struct pollfd *fds = stack_fds;
	int nconn = t->n_conns;
	int want = 2 + nconn;
	int *idx_of = NULL;
	if (want > (int)(sizeof stack_fds / sizeof stack_fds[0])) {
		fds = malloc((size_t)want * sizeof *fds);
		if (!fds)
			return; /* try again next step */
	}
	idx_of = malloc((size_t)(nconn ? nconn : 1) * sizeof *idx_of);
	if (!idx_of) {
		if (fds != stack_fds)
			free(fds);
		return;
	}
	int n = 0;
	fds[n++] = (struct pollfd){.fd = t->udp_fd, .events = POLLIN};
	fds[n++] = (struct pollfd){.fd = t->tcp_fd, .events = POLLIN};
	for (int i = 0; i < nconn; i++) {
		struct conn *c = t->conns[i];
		if (c->st == C_DONE || c->fd < 0) {
			idx_of[i] = -1;
			continue;
		}
		idx_of[i] = n;
		fds[n++] = (struct pollfd){.fd = c->fd, .events = conn_events(c)};
	}
	int pr = poll(fds, (nfds_t)n, 0);
	if (pr < 0) {
		if (errno != EINTR)
			tlog(t, 3, "transport: poll: %s", strerror(errno));
		pr = 0;
	}

	if (pr > 0 && (fds[0].revents & POLLERR))
		udp_errors(t);
	if (pr > 0 && (fds[0].revents & POLLIN))
		udp_drain(t);

	for (int i = 0; pr > 0 && i < nconn; i++) {
		if (idx_of[i] < 0)
			continue;
		short re = fds[idx_of[i]].revents;
		/* t->conns may have been reallocated by a hook; index afresh. */
		if (re && t->conns[i]->st != C_DONE)
			conn_step(t, t->conns[i], re);
	}

	/* Accept after serving existing connections so new ones start with a
	 * fresh deadline based on this step's clock. */
	if (pr > 0 && fds[1].revents)
		accept_all(t);

	free(idx_of);
	if (fds != stack_fds)
		free(fds);

	for (int i = 0; i < t->n_conns; i++) {
		struct conn *c = t->conns[i];
		if (c->st != C_DONE && c->deadline <= now) {
			t->st.tcp_timeouts++;
			conn_fail(t, c, "timed out");
		}
	}
	compact(t);
}
