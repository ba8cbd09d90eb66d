/*
 * wire.h — the HashiCorp memberlist wire format (protocol versions 1..5,
 * as spoken by memberlist 0.2.x inside the Debian `serf` 0.9 agent).
 *
 * Bytes become messages here and nowhere else.  A message on the wire is one
 * type byte followed by a msgpack map whose keys are the Go field names
 * (go-msgpack, old "raw" string format).  Packets may wrap messages in
 * hasCrc (CRC-32/IEEE, big endian), compress (LZW, LSB, 8-bit literals) and
 * compound (count + big-endian u16 lengths) envelopes.  Encryption is a
 * separate layer (crypto.h) applied by the transport around whole packets.
 *
 * Decoded messages are *views*: wire_bytes point into the caller's input
 * buffer and stay valid only while it does.  Every decoder validates types
 * and lengths and returns a negative WIRE_E* code on malformed input without
 * touching anything but its output struct.
 */
#ifndef VIGIL_WIRE_H
#define VIGIL_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

enum wire_type {
	WIRE_PING = 0,
	WIRE_INDIRECT_PING = 1,
	WIRE_ACK = 2,
	WIRE_SUSPECT = 3,
	WIRE_ALIVE = 4,
	WIRE_DEAD = 5,
	WIRE_PUSH_PULL = 6,
	WIRE_COMPOUND = 7,
	WIRE_USER = 8,
	WIRE_COMPRESS = 9,
	WIRE_ENCRYPT = 10,
	WIRE_NACK = 11,
	WIRE_HAS_CRC = 12,
	WIRE_ERR = 13,
};

/* memberlist NodeStateType as carried in push-pull. */
enum wire_node_state {
	WIRE_STATE_ALIVE = 0,
	WIRE_STATE_SUSPECT = 1,
	WIRE_STATE_DEAD = 2,
	WIRE_STATE_LEFT = 3,
};

enum wire_error {
	WIRE_OK = 0,
	WIRE_ETRUNC = -1,    /* input ended early */
	WIRE_EFORMAT = -2,   /* msgpack not shaped like the message */
	WIRE_ETYPE = -3,     /* unknown or unexpected message type */
	WIRE_ETOOBIG = -4,   /* a field or the message exceeds a limit */
	WIRE_ECRC = -5,      /* checksum mismatch */
	WIRE_ENOMEM = -6,
	WIRE_ENEST = -7,     /* envelopes nested deeper than allowed */
};

#define WIRE_NAME_MAX 128     /* longest node name we accept */
#define WIRE_META_MAX 512     /* memberlist MetaMaxSize */
#define WIRE_UDP_MAX 65536    /* largest datagram we will look at */
#define WIRE_PUSH_MAX (20u * 1024 * 1024) /* memberlist maxPushStateBytes */
#define WIRE_PUSH_NODES_MAX 100000

/* A borrowed byte range (string or []byte); not NUL terminated. */
struct wire_bytes {
	const uint8_t *p;
	uint32_t len;
};

/* Address as memberlist carries it: raw 4 or 16 byte IP plus port. */
struct wire_addr {
	uint8_t ip[16];
	uint8_t ip_len; /* 0 (absent), 4 or 16 */
	uint16_t port;
};

/* Same IP (same length and bytes) and port. */
static inline bool wire_addr_equal(const struct wire_addr *a, const struct wire_addr *b)
{
	return a->ip_len == b->ip_len && a->port == b->port &&
	       memcmp(a->ip, b->ip, a->ip_len) == 0;
}

struct wire_ping {
	uint32_t seq;
	struct wire_bytes node;        /* target's name; may be empty */
	struct wire_addr source;       /* optional (ip_len 0 = absent) */
	struct wire_bytes source_node; /* optional */
};

struct wire_indirect_ping {
	uint32_t seq;
	struct wire_addr target;
	struct wire_bytes node;
	bool nack;
	struct wire_addr source;
	struct wire_bytes source_node;
};

struct wire_ack {
	uint32_t seq;
	struct wire_bytes payload;
};

struct wire_nack {
	uint32_t seq;
};

struct wire_err {
	struct wire_bytes error;
};

/* suspect and dead share a shape. */
struct wire_accuse {
	uint32_t incarnation;
	struct wire_bytes node;
	struct wire_bytes from;
};

struct wire_alive {
	uint32_t incarnation;
	struct wire_bytes node;
	struct wire_addr addr;
	struct wire_bytes meta;
	uint8_t vsn[6];
	uint8_t vsn_len; /* 0 or 6 (anything else is rejected) */
};

/* userMsg body as it rides in UDP: type byte then raw payload, no msgpack. */
struct wire_user {
	struct wire_bytes payload;
};

struct wire_msg {
	enum wire_type type;
	union {
		struct wire_ping ping;
		struct wire_indirect_ping indirect;
		struct wire_ack ack;
		struct wire_nack nack;
		struct wire_err err;
		struct wire_accuse suspect;
		struct wire_accuse dead;
		struct wire_alive alive;
		struct wire_user user;
	} u;
};

/* One member's entry in a push-pull exchange. */
struct wire_node_state_entry {
	struct wire_bytes name;
	struct wire_addr addr;
	struct wire_bytes meta;
	uint32_t incarnation;
	uint8_t state; /* enum wire_node_state */
	uint8_t vsn[6];
	uint8_t vsn_len;
};

struct wire_push_pull {
	bool join;
	uint32_t n_nodes;
	struct wire_node_state_entry *nodes; /* malloc'd, free with wire_push_pull_free */
	struct wire_bytes user_state;
};

/* Growable output buffer. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom; /* sticky: set when an append could not grow the buffer */
};

void wbuf_init(struct wbuf *b);
void wbuf_free(struct wbuf *b);
void wbuf_reset(struct wbuf *b);
/* Append n bytes (WIRE_OK, or WIRE_ENOMEM and oom set).  Inline when they
 * fit, because the msgpack packer appends every header and key separately. */
int wbuf_append_grow(struct wbuf *b, const void *data, size_t n);
static inline int wbuf_append(struct wbuf *b, const void *data, size_t n)
{
	if (!b->oom && n - 1 < b->cap - b->len) { /* 0 < n <= room */
		uint8_t *d = b->p + b->len;
		const uint8_t *s = data;
		/*
		 * Most appends are msgpack headers of 1 to 9 bytes and map
		 * keys of up to 16: copied with fixed-size moves the compiler
		 * inlines, instead of a call into memmove for each.
		 */
		if (n <= 3) {
			d[0] = s[0];
			d[n / 2] = s[n / 2];
			d[n - 1] = s[n - 1];
		} else if (n <= 8) {
			memcpy(d, s, 4);
			memcpy(d + n - 4, s + n - 4, 4);
		} else if (n <= 16) {
			memcpy(d, s, 8);
			memcpy(d + n - 8, s + n - 8, 8);
		} else {
			memcpy(d, s, n);
		}
		b->len += n;
		return WIRE_OK;
	}
	return wbuf_append_grow(b, data, n);
}

/* ---- single messages (buf[0] is the type byte) ---- */

/* Encode one message (type byte + body) appending to out. */
int wire_encode(struct wbuf *out, const struct wire_msg *m);
/* Decode one message of type ping/indirect/ack/nack/err/suspect/alive/dead/user. */
int wire_decode(const uint8_t *buf, size_t len, struct wire_msg *out);
/*
 * The same with a scratch zone of the caller's (msgpack_zone_init'ed),
 * cleared again before this returns: a receiver decoding message after
 * message keeps one zone instead of allocating and freeing one for each.
 * The views in *out point into buf, never into the zone.
 */
struct msgpack_zone;
int wire_decode_in(struct msgpack_zone *scratch, const uint8_t *buf, size_t len,
		   struct wire_msg *out);

/* ---- packets (UDP payloads after decryption) ---- */

/* Called for every plain message found inside a packet; msg[0] is its type. */
typedef void (*wire_msg_fn)(void *ctx, const uint8_t *msg, size_t len);

/*
 * Peel hasCrc / compress / compound envelopes and call fn for each message
 * inside.  Envelope errors abort the whole packet before fn is called for
 * anything in the malformed envelope; returns WIRE_OK or a WIRE_E* code.
 */
int wire_unwrap_packet(const uint8_t *pkt, size_t len, wire_msg_fn fn, void *ctx);
/*
 * The same, but all the messages of the packet are handed over in one call
 * (in packet order; none if the packet is malformed), so that a receiver
 * can look ahead: swim prefetches the member records a compound touches.
 */
typedef void (*wire_msgs_fn)(void *ctx, const struct wire_bytes *msgs, size_t n);
int wire_unwrap_packet_all(const uint8_t *pkt, size_t len, wire_msgs_fn fn, void *ctx);

/* Build a compound message from n already-encoded messages (n <= 255, each < 64 KiB). */
int wire_make_compound(struct wbuf *out, const struct wire_bytes *msgs, size_t n);
/* Prefix a packet with hasCrc + CRC-32 (what memberlist does for peers with PMax >= 5). */
int wire_add_crc(struct wbuf *out, const uint8_t *pkt, size_t len);
/* Wrap a message in a compress envelope (LZW). */
int wire_compress(struct wbuf *out, const uint8_t *msg, size_t len);

/* ---- TCP streams ---- */

/*
 * How long is the first complete stream message in buf?  Returns the byte
 * count (> 0) when buf holds a whole message (pushPull, user, ping,
 * compress, encrypt), 0 when more bytes are needed, or a WIRE_E* code when
 * the bytes can never become a valid message.
 */
long wire_stream_frame_len(const uint8_t *buf, size_t len);

/* pushPull stream message: type byte, header, node states, user state. */
int wire_encode_push_pull(struct wbuf *out, bool join,
			  const struct wire_node_state_entry *nodes, uint32_t n,
			  const uint8_t *user_state, uint32_t user_len);
int wire_decode_push_pull(const uint8_t *buf, size_t len, struct wire_push_pull *out);
void wire_push_pull_free(struct wire_push_pull *pp);

/* userMsg over a stream: type byte, msgpack {UserMsgLen}, payload. */
int wire_encode_stream_user(struct wbuf *out, const uint8_t *payload, uint32_t len);
int wire_decode_stream_user(const uint8_t *buf, size_t len, struct wire_bytes *payload);

/* Decompress a compress envelope body (buf[0] == WIRE_COMPRESS) into out. */
int wire_decompress(const uint8_t *buf, size_t len, struct wbuf *out);

const char *wire_strerror(int err);

/*
 * Length of the first msgpack object in p[0..len), from its structure
 * alone.  msgpack-c allocates room for an array or map as soon as it reads
 * the header, so 5 hostile bytes can make it ask for ~100 GB; every
 * msgpack-c unpack of untrusted bytes in vigil goes through this check
 * first.  WIRE_OK and *objlen, WIRE_ETRUNC (input ends first), WIRE_ETOOBIG
 * (provably needs more than `limit`, SIZE_MAX for none) or WIRE_EFORMAT.
 */
int wire_msgpack_span(const uint8_t *p, size_t len, size_t limit, size_t *objlen);

/*
 * Unpack the first msgpack object of p[0..len) into u (msgpack_unpacked_init
 * by the caller, msgpack_unpacked_destroy after, whatever the result), once
 * wire_msgpack_span has proved its shape, so that lying length headers
 * cannot make msgpack-c allocate.  *used (if not NULL) gets the object's
 * length.  WIRE_OK, or the WIRE_E* code of wire_msgpack_span, WIRE_ENOMEM,
 * or WIRE_EFORMAT (e.g. nesting deeper than msgpack-c's stack).
 */
struct msgpack_unpacked;
int wire_msgpack_unpack(const uint8_t *p, size_t len, size_t limit,
			struct msgpack_unpacked *u, size_t *used);

/* ---- LZW as Go's compress/lzw (LSB order, litWidth 8) ---- */
int lzw_compress(struct wbuf *out, const uint8_t *in, size_t len);
int lzw_decompress(struct wbuf *out, const uint8_t *in, size_t len, size_t max_out);

#endif
