/*
 * transport.h — non-blocking sockets for vigil: one UDP socket, one TCP
 * listener and up to TRANSPORT_MAX_CONNS short-lived TCP connections, the
 * way memberlist's NetTransport uses them.
 *
 * The transport knows nothing about encryption or the SWIM state machine.
 * It moves bytes and finds message boundaries on streams with
 * wire_stream_frame_len(); src/vigil.c decrypts, dispatches and encrypts in
 * the hooks.  Like the rest of vigil it never blocks and starts no threads:
 * the embedder polls the fds from transport_pollfds() and then calls
 * transport_step(), which does a zero-timeout poll of its own to learn what
 * is ready (so it works even if the embedder could not poll every fd).
 *
 * Streams (memberlist push-pull, stream ping, reliable user messages):
 *   - incoming: accept, read exactly one stream message, call on_stream,
 *     write whatever reply it produced, close.
 *   - outgoing (transport_send_stream): connect, write the message, read one
 *     message back, report it through on_stream_reply(cookie); any error or
 *     the TCP timeout (10 s, memberlist's TCPTimeout) reports msg == NULL.
 *
 * Hooks are never called from inside transport_send_*: results, including
 * immediate failures, are reported from the next transport_step(), so the
 * caller (swim) is never re-entered from one of its own hooks.
 *
 * Addresses are struct wire_addr: 4-byte IPv4 or 16-byte IPv6 plus port.
 * A socket bound to "::" is dual-stack; IPv4-mapped peers are reported as
 * plain 4-byte addresses.
 */
#ifndef VIGIL_TRANSPORT_H
#define VIGIL_TRANSPORT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define TRANSPORT_DEFAULT_PORT 7946
#define TRANSPORT_MAX_CONNS 128          /* concurrent TCP connections */
#define TRANSPORT_TCP_TIMEOUT_MS 10000   /* memberlist DefaultLANConfig TCPTimeout */
/*
 * Incoming connections from one IP address beyond this make room by
 * closing that address's own idlest connection, so one host cannot hold
 * the shared slots (a NAT or loopback cluster shares an address: the
 * newcomer still gets in, by evicting a connection that has sat idle).
 */
#define TRANSPORT_MAX_CONNS_PER_SOURCE 16
/*
 * Memory all incoming connections together may buffer: three push-pulls of
 * memberlist's 20 MiB maximum.  A connection whose next read would go past
 * it is closed (peers retry; an attacker's slow streams end at the 10 s
 * timeout), so 128 slow senders cannot make us hold 128 x 20 MiB.
 */
#define TRANSPORT_IN_BUDGET (64u << 20)
#define TRANSPORT_UDP_RECV_MAX 65536     /* memberlist udpPacketBufSize */
/*
 * Largest stream message we buffer: memberlist's maxPushStateBytes plus
 * room for the headers and envelopes the codec allows around it (a
 * compress envelope may be WIRE_PUSH_MAX + 64 KiB).
 */
#define TRANSPORT_STREAM_MAX (WIRE_PUSH_MAX + 128u * 1024)
/* Most fds transport_pollfds can report: UDP + listener + connections. */
#define TRANSPORT_POLLFDS_MAX (2 + TRANSPORT_MAX_CONNS)

struct transport;

struct transport_hooks {
	void *ctx;
	/* One datagram (0..65536 bytes: empty ones too, so they are counted), exactly as received. */
	void (*on_packet)(void *ctx, const struct wire_addr *from,
			  const uint8_t *pkt, size_t len);
	/*
	 * One complete incoming stream message (still encrypted if the peer
	 * encrypted it).  Append the bytes to write back to `reply` (leave it
	 * empty for none); the connection is closed after the reply is sent.
	 */
	void (*on_stream)(void *ctx, const struct wire_addr *from,
			  const uint8_t *msg, size_t len, struct wbuf *reply);
	/*
	 * Optional: a datagram we sent to `to` was answered with ICMP "port
	 * unreachable" (the host is up, nothing listens on that port).
	 */
	void (*on_unreachable)(void *ctx, const struct wire_addr *to);
	/* Outcome of transport_send_stream: msg == NULL on any failure. */
	void (*on_stream_reply)(void *ctx, uint64_t cookie,
				const uint8_t *msg, size_t len);
	/* Optional log line (0 debug .. 3 error). */
	void (*log)(void *ctx, int level, const char *msg);
};

struct transport_config {
	char bind_addr[64];  /* IP literal; "" = "0.0.0.0" */
	uint16_t bind_port;  /* 0 = pick one free for both TCP and UDP */
	int tcp_timeout_ms;  /* 0 = TRANSPORT_TCP_TIMEOUT_MS */
	int max_conns;       /* 0 = TRANSPORT_MAX_CONNS */
	int max_conns_per_source; /* 0 = TRANSPORT_MAX_CONNS_PER_SOURCE */
	size_t stream_max;   /* 0 = TRANSPORT_STREAM_MAX */
	size_t in_budget;    /* 0 = TRANSPORT_IN_BUDGET */
};

/* Counters; only ever increase. */
struct transport_stats {
	uint64_t udp_in, udp_out, udp_in_bytes, udp_out_bytes, udp_send_errors;
	uint64_t udp_unreachable;    /* ICMP port unreachable for datagrams we sent */
	uint64_t tcp_accepted, tcp_connects, tcp_rejected; /* rejected: conn cap */
	uint64_t tcp_evicted;        /* idle incoming connections closed to make room */
	uint64_t tcp_errors, tcp_timeouts, tcp_bad_frames;
	uint64_t tcp_in_bytes, tcp_out_bytes;
};

void transport_config_default(struct transport_config *cfg);

/*
 * Bind the UDP socket and TCP listener on the same port.  With port 0 the
 * kernel picks the TCP port and UDP binds the same one (as memberlist);
 * a few retries cover the race where that UDP port is taken.
 */
int transport_open(const struct transport_config *cfg, const struct transport_hooks *hooks,
		   struct transport **out, char *err, size_t errlen);
/* Closes every socket; pending outgoing streams are dropped silently. */
void transport_close(struct transport *t);

/* The bound address (port resolved when 0 was asked for). */
void transport_local_addr(const struct transport *t, struct wire_addr *out);
/* Address family of the sockets: AF_INET or AF_INET6 (dual-stack). */
int transport_family(const struct transport *t);

/* Send one datagram; best effort (0, or -1 if it could not be handed to the kernel). */
int transport_send_packet(struct transport *t, const struct wire_addr *to,
			  const uint8_t *pkt, size_t len);
/*
 * Start an outgoing stream exchange (msg is copied).  The result always
 * arrives later through on_stream_reply.  now is the caller's clock (ms).
 */
void transport_send_stream(struct transport *t, const struct wire_addr *to,
			   const uint8_t *msg, size_t len, uint64_t cookie, int64_t now);

/* Fill fds for poll(); returns how many were written (at most max). */
int transport_pollfds(const struct transport *t, struct pollfd *fds, int max);
/* How many fds transport_pollfds wants to report right now. */
int transport_nfds(const struct transport *t);
/*
 * Earliest time (ms, caller's clock) at which transport_step has work
 * without any fd becoming ready: a connection timeout or a queued report.
 * INT64_MAX if none.
 */
int64_t transport_next_deadline(const struct transport *t);
/* Do all I/O that is possible right now and fire hooks; never blocks. */
void transport_step(struct transport *t, int64_t now);

int transport_active_conns(const struct transport *t);
const struct transport_stats *transport_stats(const struct transport *t);

/* ---- addresses ---- */

/*
 * Parse "ip", "ip:port", "[v6]", "[v6]:port" or a bare IPv6 literal; with
 * allow_dns, "host[:port]" is resolved with getaddrinfo (blocking — only
 * for joins the user asked for), preferring IPv4.  Missing port =
 * default_port.  IPv4-mapped IPv6 becomes a 4-byte address.  0 or -1.
 */
int transport_parse_addr(const char *s, uint16_t default_port, bool allow_dns,
			 struct wire_addr *out);
/* "1.2.3.4:7946" or "[::1]:7946"; returns out. */
char *transport_format_addr(const struct wire_addr *a, char *out, size_t outlen);
/* The bare IP ("1.2.3.4", "::1"); returns out. */
char *transport_format_ip(const struct wire_addr *a, char *out, size_t outlen);
bool transport_addr_equal(const struct wire_addr *a, const struct wire_addr *b);

/*
 * The address to advertise when bound to a wildcard: the first
 * non-loopback IPv4 address of an interface that is up (private ranges
 * first, as memberlist's GetPrivateIP), else 127.0.0.1.  0 or -1.
 */
int transport_default_advertise(struct wire_addr *out);

#endif
