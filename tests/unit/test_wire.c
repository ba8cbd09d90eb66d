/*
 * test_wire.c — memberlist wire codec: golden bytes, real serf traffic,
 * round trips, limits, and robustness against truncated / random input.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "testlib.h"
#include "wire.h"
#include "wire_vectors.h"

static uint32_t rng_state = 88172645u;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static struct wire_bytes S(const char *s)
{
	struct wire_bytes b = { (const uint8_t *)s, (uint32_t)strlen(s) };
	return b;
}

static bool bytes_eq(struct wire_bytes b, const char *s)
{
	return b.len == strlen(s) && (b.len == 0 || memcmp(b.p, s, b.len) == 0);
}

static struct wire_addr A4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	struct wire_addr x = { .ip = { a, b, c, d }, .ip_len = 4, .port = port };
	return x;
}

/* Copy into an exact-size heap block so ASan sees any over-read. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* Collects what wire_unwrap_packet delivers. */
struct got {
	int n;
	char types[64];
	uint8_t *msgs[64];
	size_t lens[64];
};

static void collect(void *ctx, const uint8_t *msg, size_t len)
{
	struct got *g = ctx;
	if (g->n < 63) {
		g->types[g->n] = "0123456789abcdef"[msg[0] & 15];
		g->msgs[g->n] = dup_exact(msg, len);
		g->lens[g->n] = len;
	}
	g->n++;
	g->types[g->n < 63 ? g->n : 63] = '\0';
}

static void got_free(struct got *g)
{
	for (int i = 0; i < g->n && i < 63; i++)
		free(g->msgs[i]);
	memset(g, 0, sizeof *g);
}

/* ------------------------------------------------------------ golden */

/* A string literal as (bytes, length), without the terminating NUL. */
#define LIT(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

TEST(golden_ping)
{
	/*
	 * ping{SeqNo: 7, Node: "node-b", SourceAddr: 10.0.0.1, SourcePort: 7946,
	 * SourceNode: "node-a"} as go-msgpack writes it: fixmap of 5, keys in
	 * sorted order, strings and []byte as fixraw, 7946 as uint16.
	 */
	static const uint8_t want[] = {
		0x00, 0x85,
		0xa4, 'N', 'o', 'd', 'e', 0xa6, 'n', 'o', 'd', 'e', '-', 'b',
		0xa5, 'S', 'e', 'q', 'N', 'o', 0x07,
		0xaa, 'S', 'o', 'u', 'r', 'c', 'e', 'A', 'd', 'd', 'r', 0xa4, 10, 0, 0, 1,
		0xaa, 'S', 'o', 'u', 'r', 'c', 'e', 'N', 'o', 'd', 'e', 0xa6, 'n', 'o', 'd', 'e', '-', 'a',
		0xaa, 'S', 'o', 'u', 'r', 'c', 'e', 'P', 'o', 'r', 't', 0xcd, 0x1f, 0x0a,
	};
	struct wire_msg m = { .type = WIRE_PING };
	m.u.ping.seq = 7;
	m.u.ping.node = S("node-b");
	m.u.ping.source = A4(10, 0, 0, 1, 7946);
	m.u.ping.source_node = S("node-a");
	struct wbuf b;
	wbuf_init(&b);
	CHECK_EQ_INT(wire_encode(&b, &m), WIRE_OK);
	CHECK_EQ_INT(b.len, sizeof want);
	CHECK_MEM(b.p, want, sizeof want);

	struct wire_msg d;
	CHECK_EQ_INT(wire_decode(want, sizeof want, &d), WIRE_OK);
	CHECK_EQ_INT(d.type, WIRE_PING);
	CHECK_EQ_INT(d.u.ping.seq, 7);
	CHECK(bytes_eq(d.u.ping.node, "node-b"));
	CHECK(bytes_eq(d.u.ping.source_node, "node-a"));
	CHECK_EQ_INT(d.u.ping.source.ip_len, 4);
	CHECK_EQ_INT(d.u.ping.source.ip[0], 10);
	CHECK_EQ_INT(d.u.ping.source.ip[3], 1);
	CHECK_EQ_INT(d.u.ping.source.port, 7946);

	/* Without a source the omitempty fields vanish. */
	static const uint8_t bare[] = {
		0x00, 0x82, 0xa4, 'N', 'o', 'd', 'e', 0xa1, 'x',
		0xa5, 'S', 'e', 'q', 'N', 'o', 0xcc, 200,
	};
	struct wire_msg m2 = { .type = WIRE_PING };
	m2.u.ping.seq = 200;
	m2.u.ping.node = S("x");
	wbuf_reset(&b);
	CHECK_EQ_INT(wire_encode(&b, &m2), WIRE_OK);
	CHECK_EQ_INT(b.len, sizeof bare);
	CHECK_MEM(b.p, bare, sizeof bare);
	wbuf_free(&b);
}

TEST(golden_alive)
{
	/*
	 * alive{Incarnation: 300, Node: "n1", Addr: 127.0.0.1, Port: 7946,
	 * Meta: "\xff\x80", Vsn: []uint8{1,5,2,2,5,4}}: Vsn is a byte slice, so
	 * go-msgpack writes it as raw bytes, not as an array.
	 */
	static const char wantc[] = "\x04\x86"
		"\xa4" "Addr" "\xa4\x7f\x00\x00\x01"
		"\xab" "Incarnation" "\xcd\x01\x2c"
		"\xa4" "Meta" "\xa2\xff\x80"
		"\xa4" "Node" "\xa2" "n1"
		"\xa4" "Port" "\xcd\x1f\x0a"
		"\xa3" "Vsn" "\xa6\x01\x05\x02\x02\x05\x04";
	const uint8_t *want = (const uint8_t *)wantc;
	const size_t want_len = sizeof wantc - 1;
	struct wire_msg m = { .type = WIRE_ALIVE };
	m.u.alive.incarnation = 300;
	m.u.alive.node = S("n1");
	m.u.alive.addr = A4(127, 0, 0, 1, 7946);
	m.u.alive.meta = S("\xff\x80");
	memcpy(m.u.alive.vsn, (uint8_t[]){ 1, 5, 2, 2, 5, 4 }, 6);
	m.u.alive.vsn_len = 6;
	struct wbuf b;
	wbuf_init(&b);
	CHECK_EQ_INT(wire_encode(&b, &m), WIRE_OK);
	CHECK_EQ_INT(b.len, want_len);
	CHECK_MEM(b.p, want, want_len);

	struct wire_msg d;
	CHECK_EQ_INT(wire_decode(want, want_len, &d), WIRE_OK);
	CHECK_EQ_INT(d.u.alive.incarnation, 300);
	CHECK(bytes_eq(d.u.alive.node, "n1"));
	CHECK(bytes_eq(d.u.alive.meta, "\xff\x80"));
	CHECK_EQ_INT(d.u.alive.addr.port, 7946);
	CHECK_EQ_INT(d.u.alive.vsn_len, 6);
	CHECK_EQ_INT(d.u.alive.vsn[5], 4);
	wbuf_free(&b);
}

TEST(golden_compound_crc_compress_headers)
{
	struct wire_bytes parts[2] = { S("\x08" "ab"), S("\x08" "c") };
	static const uint8_t want[] = { 7, 2, 0, 3, 0, 2, 8, 'a', 'b', 8, 'c' };
	struct wbuf b, c;
	wbuf_init(&b);
	wbuf_init(&c);
	CHECK_EQ_INT(wire_make_compound(&b, parts, 2), WIRE_OK);
	CHECK_EQ_INT(b.len, sizeof want);
	CHECK_MEM(b.p, want, sizeof want);

	CHECK_EQ_INT(wire_add_crc(&c, b.p, b.len), WIRE_OK);
	REQUIRE(c.len == b.len + 5);
	uint32_t crc = (uint32_t)crc32(0, b.p, (uInt)b.len);
	uint8_t be[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
			  (uint8_t)crc };
	CHECK_EQ_INT(c.p[0], 12);
	CHECK_MEM(c.p + 1, be, 4);
	CHECK_MEM(c.p + 5, b.p, b.len);

	/* compress{Algo: 0, Buf: raw} */
	wbuf_reset(&c);
	CHECK_EQ_INT(wire_compress(&c, b.p, b.len), WIRE_OK);
	static const char head[] = "\x09\x82" "\xa4" "Algo" "\x00" "\xa3" "Buf";
	CHECK_MEM(c.p, head, sizeof head - 1);
	wbuf_free(&b);
	wbuf_free(&c);
}

/* ---------------------------------------------------------- round trips */

static void rt(const struct wire_msg *m, struct wire_msg *d)
{
	struct wbuf b, b2;
	wbuf_init(&b);
	wbuf_init(&b2);
	CHECK_EQ_INT(wire_encode(&b, m), WIRE_OK);
	CHECK_EQ_INT(wire_decode(b.p, b.len, d), WIRE_OK);
	CHECK_EQ_INT(d->type, m->type);
	/* decoding then encoding again gives the same bytes */
	CHECK_EQ_INT(wire_encode(&b2, d), WIRE_OK);
	CHECK_EQ_INT(b2.len, b.len);
	if (b2.len == b.len)
		CHECK_MEM(b2.p, b.p, b.len);
	/* views point into b, which dies here: compare before returning */
	struct wire_msg again;
	CHECK_EQ_INT(wire_decode(b2.p, b2.len, &again), WIRE_OK);
	/*
	 * With a scratch zone, used twice as a receiver does: the same
	 * message, views into the input, and the zone left empty for reuse.
	 */
	msgpack_zone z;
	REQUIRE(msgpack_zone_init(&z, 64));
	for (int i = 0; i < 2; i++) {
		struct wire_msg zd;
		CHECK_EQ_INT(wire_decode_in(&z, b2.p, b2.len, &zd), WIRE_OK);
		CHECK_EQ_INT(zd.type, m->type);
		CHECK(msgpack_zone_is_empty(&z));
		wbuf_reset(&b);
		CHECK_EQ_INT(wire_encode(&b, &zd), WIRE_OK);
		CHECK_EQ_INT(b.len, b2.len);
		if (b.len == b2.len)
			CHECK_MEM(b.p, b2.p, b2.len);
	}
	msgpack_zone_destroy(&z);
	wbuf_free(&b);
	wbuf_free(&b2);
}

TEST(roundtrip_every_type)
{
	struct wire_msg m, d;
	uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

	memset(&m, 0, sizeof m);
	m.type = WIRE_PING;
	m.u.ping.seq = 0xffffffffu;
	m.u.ping.node = S("b");
	rt(&m, &d);
	CHECK_EQ_INT(d.u.ping.source.ip_len, 0);

	memset(&m, 0, sizeof m);
	m.type = WIRE_INDIRECT_PING;
	m.u.indirect.seq = 65536;
	memcpy(m.u.indirect.target.ip, ip6, 16);
	m.u.indirect.target.ip_len = 16;
	m.u.indirect.target.port = 1;
	m.u.indirect.node = S("target");
	m.u.indirect.nack = true;
	m.u.indirect.source = A4(192, 168, 1, 2, 65535);
	m.u.indirect.source_node = S("me");
	rt(&m, &d);
	CHECK_EQ_INT(d.u.indirect.seq, 65536);
	CHECK_EQ_INT(d.u.indirect.target.ip_len, 16);
	CHECK(memcmp(d.u.indirect.target.ip, ip6, 16) == 0);
	CHECK_EQ_INT(d.u.indirect.target.port, 1);
	CHECK(d.u.indirect.nack);
	CHECK_EQ_INT(d.u.indirect.source.port, 65535);

	memset(&m, 0, sizeof m);
	m.type = WIRE_ACK;
	m.u.ack.seq = 9;
	m.u.ack.payload = S("coords\x00\x01");
	m.u.ack.payload.len = 8;
	rt(&m, &d);
	CHECK_EQ_INT(d.u.ack.payload.len, 8);

	memset(&m, 0, sizeof m);
	m.type = WIRE_ACK; /* nil payload, as a stream ack from Go has */
	rt(&m, &d);
	CHECK(d.u.ack.payload.p == NULL && d.u.ack.payload.len == 0);

	memset(&m, 0, sizeof m);
	m.type = WIRE_NACK;
	m.u.nack.seq = 123456;
	rt(&m, &d);
	CHECK_EQ_INT(d.u.nack.seq, 123456);

	memset(&m, 0, sizeof m);
	m.type = WIRE_ERR;
	m.u.err.error = S("remote said no");
	rt(&m, &d);

	memset(&m, 0, sizeof m);
	m.type = WIRE_SUSPECT;
	m.u.suspect.incarnation = 5;
	m.u.suspect.node = S("n");
	m.u.suspect.from = S("f");
	rt(&m, &d);
	CHECK_EQ_INT(d.u.suspect.incarnation, 5);

	memset(&m, 0, sizeof m);
	m.type = WIRE_DEAD;
	m.u.dead.incarnation = 70000;
	m.u.dead.node = S("n");
	m.u.dead.from = S("n");
	rt(&m, &d);
	CHECK_EQ_INT(d.u.dead.incarnation, 70000);

	memset(&m, 0, sizeof m);
	m.type = WIRE_ALIVE;
	m.u.alive.incarnation = 1;
	m.u.alive.node = S("node");
	memcpy(m.u.alive.addr.ip, ip6, 16);
	m.u.alive.addr.ip_len = 16;
	m.u.alive.addr.port = 7946;
	rt(&m, &d); /* nil meta, no vsn */
	CHECK_EQ_INT(d.u.alive.vsn_len, 0);
	CHECK_EQ_INT(d.u.alive.addr.ip_len, 16);

	memset(&m, 0, sizeof m);
	m.type = WIRE_USER;
	m.u.user.payload = S("\x01hello");
	struct wbuf b;
	wbuf_init(&b);
	CHECK_EQ_INT(wire_encode(&b, &m), WIRE_OK);
	CHECK_EQ_INT(b.len, 7);
	CHECK(b.p[0] == 8 && memcmp(b.p + 1, "\x01hello", 6) == 0);
	CHECK_EQ_INT(wire_decode(b.p, b.len, &d), WIRE_OK);
	CHECK(bytes_eq(d.u.user.payload, "\x01hello"));
	wbuf_free(&b);
}

TEST(encoder_refuses_what_decoder_refuses)
{
	char longname[WIRE_NAME_MAX + 2];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	struct wire_msg m = { .type = WIRE_PING };
	m.u.ping.node = S(longname);
	struct wbuf b;
	wbuf_init(&b);
	CHECK_EQ_INT(wire_encode(&b, &m), WIRE_ETOOBIG);
	m.u.ping.node = S("ok");
	m.u.ping.source.ip_len = 5;
	CHECK_EQ_INT(wire_encode(&b, &m), WIRE_EFORMAT);
	m.type = WIRE_COMPOUND;
	CHECK_EQ_INT(wire_encode(&b, &m), WIRE_ETYPE);
	CHECK_EQ_INT(b.len, 0);
	wbuf_free(&b);
}

/* -------------------------------------------------- liberal decoding */

static int pk_cb(void *data, const char *buf, size_t len)
{
	return wbuf_append(data, buf, len);
}

static void pk_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s)); /* str8 for >= 32 bytes */
}

TEST(decoder_accepts_modern_msgpack_any_order)
{
	struct wbuf b;
	msgpack_packer pk;
	wbuf_init(&b);
	msgpack_packer_init(&pk, &b, pk_cb);
	wbuf_append(&b, "\x04", 1);
	msgpack_pack_map(&pk, 8);
	msgpack_pack_bin_with_body(&pk, "Vsn", 3); /* key as bin */
	msgpack_pack_array(&pk, 6);
	for (int i = 0; i < 6; i++)
		msgpack_pack_int64(&pk, i + 1); /* fixints */
	pk_s(&pk, "Unknown");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_nil(&pk);
	msgpack_pack_double(&pk, 1.5);
	pk_s(&pk, "Node");
	pk_s(&pk, "a-node-name-that-is-long-enough-for-str8");
	pk_s(&pk, "Incarnation");
	msgpack_pack_uint64(&pk, 3); /* positive fixint from a u64 call */
	pk_s(&pk, "Port");
	msgpack_pack_int32(&pk, 7946);
	pk_s(&pk, "Addr");
	msgpack_pack_bin_with_body(&pk, "\x7f\x00\x00\x01", 4);
	pk_s(&pk, "Meta");
	msgpack_pack_bin_with_body(&pk, "m", 1);
	pk_s(&pk, "Incarnation"); /* duplicate: last one wins, as in Go */
	/* a wide encoding of a small number */
	wbuf_append(&b, "\xcf\x00\x00\x00\x00\x00\x00\x00\x04", 9);

	struct wire_msg d;
	CHECK_EQ_INT(wire_decode(b.p, b.len, &d), WIRE_OK);
	CHECK_EQ_INT(d.u.alive.vsn_len, 6);
	CHECK_EQ_INT(d.u.alive.vsn[0], 1);
	CHECK_EQ_INT(d.u.alive.vsn[5], 6);
	CHECK(bytes_eq(d.u.alive.node, "a-node-name-that-is-long-enough-for-str8"));
	CHECK_EQ_INT(d.u.alive.incarnation, 4);
	CHECK_EQ_INT(d.u.alive.addr.port, 7946);
	CHECK(bytes_eq(d.u.alive.meta, "m"));

	/* missing keys are zero values */
	static const uint8_t empty_map[] = { 0x03, 0x80 };
	CHECK_EQ_INT(wire_decode(empty_map, sizeof empty_map, &d), WIRE_OK);
	CHECK_EQ_INT(d.u.suspect.incarnation, 0);
	CHECK_EQ_INT(d.u.suspect.node.len, 0);
	wbuf_free(&b);
}

/* Build [type] + {key: <raw msgpack value bytes>} */
static size_t one_field(uint8_t *out, uint8_t type, const char *key, const void *val,
			size_t vlen)
{
	size_t kl = strlen(key), n = 0;
	out[n++] = type;
	out[n++] = 0x81;
	out[n++] = (uint8_t)(0xa0 | kl);
	memcpy(out + n, key, kl);
	n += kl;
	memcpy(out + n, val, vlen);
	return n + vlen;
}

TEST(decoder_strict_about_values)
{
	uint8_t buf[2048], val[1024];
	struct wire_msg d;
	size_t n;

	/* names over WIRE_NAME_MAX, meta over WIRE_META_MAX */
	val[0] = 0xd9;
	val[1] = WIRE_NAME_MAX + 1;
	memset(val + 2, 'x', WIRE_NAME_MAX + 1);
	n = one_field(buf, WIRE_PING, "Node", val, WIRE_NAME_MAX + 3);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_ETOOBIG);
	val[1] = WIRE_NAME_MAX;
	n = one_field(buf, WIRE_PING, "Node", val, WIRE_NAME_MAX + 2);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_OK);
	val[0] = 0xda;
	val[1] = (WIRE_META_MAX + 1) >> 8;
	val[2] = (WIRE_META_MAX + 1) & 0xff;
	memset(val + 3, 'm', WIRE_META_MAX + 1);
	n = one_field(buf, WIRE_ALIVE, "Meta", val, WIRE_META_MAX + 4);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_ETOOBIG);

	/* addresses must be 4 or 16 bytes */
	n = one_field(buf, WIRE_ALIVE, "Addr", "\xa5\x01\x02\x03\x04\x05", 6);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	n = one_field(buf, WIRE_PING, "SourceAddr", "\xc4\x03\x01\x02\x03", 5);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	/* Vsn must have 6 entries, each a byte */
	n = one_field(buf, WIRE_ALIVE, "Vsn", "\xa3\x01\x02\x03", 4);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	n = one_field(buf, WIRE_ALIVE, "Vsn", "\x96\x01\x02\x03\x04\x05\xcd\x01\x00", 9);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	/* integers in range, not negative, not strings */
	n = one_field(buf, WIRE_PING, "SeqNo", "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	n = one_field(buf, WIRE_PING, "SeqNo", "\xff", 1);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	n = one_field(buf, WIRE_PING, "SeqNo", "\xa1\x31", 2);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	n = one_field(buf, WIRE_ALIVE, "Port", "\xce\x00\x01\x00\x00", 5);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	n = one_field(buf, WIRE_INDIRECT_PING, "Nack", "\x01", 1);
	CHECK_EQ_INT(wire_decode(buf, n, &d), WIRE_EFORMAT);
	/* body must be a map; type must be one wire_decode handles */
	CHECK_EQ_INT(wire_decode((const uint8_t *)"\x00\x91\x01", 3, &d), WIRE_EFORMAT);
	CHECK_EQ_INT(wire_decode((const uint8_t *)"\x06\x80", 2, &d), WIRE_ETYPE);
	CHECK_EQ_INT(wire_decode((const uint8_t *)"\x0c\x80", 2, &d), WIRE_ETYPE);
	CHECK_EQ_INT(wire_decode((const uint8_t *)"\x63\x80", 2, &d), WIRE_ETYPE);
	CHECK_EQ_INT(wire_decode(buf, 0, &d), WIRE_ETRUNC);
	CHECK_EQ_INT(wire_decode((const uint8_t *)"\x00", 1, &d), WIRE_ETRUNC);
	CHECK_EQ_INT(wire_decode((const uint8_t *)"\x00\xc1", 2, &d), WIRE_EFORMAT);
}

TEST(decoder_survives_allocation_bombs)
{
	/*
	 * Container headers that claim billions of elements must be refused
	 * before msgpack-c tries to allocate for them.
	 */
	static const uint8_t arr[] = { 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
	static const uint8_t map[] = { 0x04, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02 };
	static const uint8_t nested[] = { 0x04, 0x81, 0xa3, 'V', 's', 'n', 0xdd, 0x7f, 0xff, 0xff, 0xff };
	static const uint8_t str[] = { 0x02, 0x81, 0xa7, 'P', 'a', 'y', 'l', 'o', 'a', 'd',
				       0xdb, 0xff, 0xff, 0xff, 0xf0, 'x' };
	struct wire_msg d;
	CHECK_EQ_INT(wire_decode(arr, sizeof arr, &d), WIRE_ETRUNC);
	CHECK_EQ_INT(wire_decode(map, sizeof map, &d), WIRE_ETRUNC);
	CHECK_EQ_INT(wire_decode(nested, sizeof nested, &d), WIRE_ETRUNC);
	CHECK_EQ_INT(wire_decode(str, sizeof str, &d), WIRE_ETRUNC);

	/* deep nesting is refused by msgpack-c's fixed stack, not by crashing */
	uint8_t deep[600];
	deep[0] = 0x00;
	for (size_t i = 1; i < sizeof deep; i++)
		deep[i] = 0x91;
	deep[sizeof deep - 1] = 0x01;
	CHECK(wire_decode(deep, sizeof deep, &d) < 0);

	static const char pp[] = "\x06\x83" "\xa4" "Join" "\xc2" "\xa5" "Nodes"
		"\xce\x00\x01\x00\x00" "\xac" "UserStateLen" "\x00";
	struct wire_push_pull p;
	CHECK_EQ_INT(wire_decode_push_pull(LIT(pp), &p), WIRE_ETRUNC);
	CHECK(p.nodes == NULL);
}

/* ----------------------------------------------------- real serf traffic */

/* Names are compared against the comma separated list in the vector. */
static bool name_at(const char *list, int idx, struct wire_bytes name)
{
	const char *p = list;
	for (int i = 0; i < idx && p; i++) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p)
		return false;
	size_t l = strcspn(p, ",");
	return name.len == l && memcmp(name.p, p, l) == 0;
}

TEST(serf_udp_vectors_decode)
{
	for (size_t i = 0; i < sizeof wire_udp_vectors / sizeof wire_udp_vectors[0]; i++) {
		const struct wire_udp_vector *v = &wire_udp_vectors[i];
		struct got g = { 0 };
		uint8_t *pkt = dup_exact(v->pkt, v->len);
		CHECK_EQ_INT(wire_unwrap_packet(pkt, v->len, collect, &g), WIRE_OK);
		if (strcmp(g.types, v->types) != 0) {
			printf("# %s: got types %s want %s\n", v->what, g.types, v->types);
			CHECK(0);
		}
		for (int k = 0; k < g.n && k < 63; k++) {
			struct wire_msg d;
			struct wbuf re;
			CHECK_EQ_INT(wire_decode(g.msgs[k], g.lens[k], &d), WIRE_OK);
			struct wire_bytes node = { 0 };
			switch (d.type) {
			case WIRE_PING: node = d.u.ping.node; break;
			case WIRE_ALIVE: node = d.u.alive.node; break;
			case WIRE_SUSPECT: node = d.u.suspect.node; break;
			case WIRE_DEAD: node = d.u.dead.node; break;
			case WIRE_USER: node = S("-"); break;
			default: break;
			}
			CHECK(name_at(v->nodes, k, node));
			/* Our encoder reproduces Go's bytes exactly. */
			wbuf_init(&re);
			CHECK_EQ_INT(wire_encode(&re, &d), WIRE_OK);
			CHECK_EQ_INT(re.len, g.lens[k]);
			if (re.len == g.lens[k])
				CHECK_MEM(re.p, g.msgs[k], re.len);
			wbuf_free(&re);
		}
		got_free(&g);
		free(pkt);
	}
}

TEST(serf_udp_vector_details)
{
	/* The first vector: a hasCrc'd compound of alive(fake) + a serf user msg. */
	const struct wire_udp_vector *v = &wire_udp_vectors[0];
	struct got g = { 0 };
	REQUIRE(wire_unwrap_packet(v->pkt, v->len, collect, &g) == WIRE_OK);
	REQUIRE(g.n == 2);
	struct wire_msg d;
	REQUIRE(wire_decode(g.msgs[0], g.lens[0], &d) == WIRE_OK);
	CHECK_EQ_INT(d.type, WIRE_ALIVE);
	CHECK(bytes_eq(d.u.alive.node, "fake"));
	CHECK_EQ_INT(d.u.alive.addr.ip_len, 4);
	CHECK_EQ_INT(d.u.alive.addr.ip[0], 127);
	CHECK_EQ_INT(d.u.alive.addr.port, 7950);
	CHECK_EQ_INT(d.u.alive.vsn_len, 6);
	CHECK_EQ_INT(d.u.alive.vsn[1], 5); /* pmax */
	CHECK(d.u.alive.meta.p == NULL);   /* Go sent nil meta */
	got_free(&g);

	/* Any flipped bit in a hasCrc packet is caught by the checksum. */
	uint8_t *pkt = dup_exact(v->pkt, v->len);
	REQUIRE(pkt[0] == WIRE_HAS_CRC);
	for (size_t i = 5; i < v->len; i++) {
		pkt[i] ^= 0x10;
		CHECK_EQ_INT(wire_unwrap_packet(pkt, v->len, collect, &g), WIRE_ECRC);
		CHECK_EQ_INT(g.n, 0);
		pkt[i] ^= 0x10;
	}
	free(pkt);
}

TEST(serf_tcp_vectors_decode)
{
	for (size_t i = 0; i < sizeof wire_tcp_vectors / sizeof wire_tcp_vectors[0]; i++) {
		const struct wire_tcp_vector *v = &wire_tcp_vectors[i];
		uint8_t *f = dup_exact(v->frame, v->len);
		CHECK_EQ_INT(wire_stream_frame_len(f, v->len), (long)v->len);
		for (size_t cut = 0; cut < v->len; cut++)
			CHECK_EQ_INT(wire_stream_frame_len(f, cut), 0);
		REQUIRE(f[0] == WIRE_COMPRESS); /* serf compresses streams */

		struct wbuf plain;
		wbuf_init(&plain);
		CHECK_EQ_INT(wire_decompress(f, v->len, &plain), WIRE_OK);
		REQUIRE(plain.len > 0);
		CHECK_EQ_INT(plain.p[0], v->inner_type);
		/* inflated stream messages are whole frames too */
		CHECK_EQ_INT(wire_stream_frame_len(plain.p, plain.len), (long)plain.len);

		/* and compressing them again gives the very bytes Go sent */
		struct wbuf z;
		wbuf_init(&z);
		CHECK_EQ_INT(wire_compress(&z, plain.p, plain.len), WIRE_OK);
		CHECK_EQ_INT(z.len, v->len);
		if (z.len == v->len)
			CHECK_MEM(z.p, v->frame, v->len);
		wbuf_free(&z);

		if (v->inner_type == WIRE_PUSH_PULL) {
			struct wire_push_pull pp;
			REQUIRE(wire_decode_push_pull(plain.p, plain.len, &pp) == WIRE_OK);
			CHECK_EQ_INT(pp.join, v->join);
			CHECK_EQ_INT(pp.user_state.len, v->user_state_len);
			for (uint32_t k = 0; k < pp.n_nodes; k++) {
				CHECK(name_at(v->nodes, (int)k, pp.nodes[k].name));
				CHECK_EQ_INT(pp.nodes[k].state, WIRE_STATE_ALIVE);
				CHECK_EQ_INT(pp.nodes[k].addr.ip_len, 4);
				CHECK_EQ_INT(pp.nodes[k].vsn_len, 6);
				CHECK(pp.nodes[k].addr.port >= 7946 && pp.nodes[k].addr.port <= 7950);
			}
			CHECK(name_at(v->nodes, (int)pp.n_nodes - 1, pp.nodes[pp.n_nodes - 1].name));
			CHECK(!name_at(v->nodes, (int)pp.n_nodes, S("")));
			/* serf's user state is a msgpack messageJoin/... blob */
			CHECK(pp.user_state.p + pp.user_state.len == plain.p + plain.len);

			struct wbuf re;
			wbuf_init(&re);
			CHECK_EQ_INT(wire_encode_push_pull(&re, pp.join, pp.nodes, pp.n_nodes,
							   pp.user_state.p, pp.user_state.len),
				     WIRE_OK);
			CHECK_EQ_INT(re.len, plain.len);
			if (re.len == plain.len)
				CHECK_MEM(re.p, plain.p, plain.len);
			wbuf_free(&re);
			wire_push_pull_free(&pp);
		} else {
			struct wire_msg d;
			CHECK_EQ_INT(wire_decode(plain.p, plain.len, &d), WIRE_OK);
			if (d.type == WIRE_PING)
				CHECK(bytes_eq(d.u.ping.node, v->nodes));
			if (d.type == WIRE_ACK) {
				CHECK_EQ_INT(d.u.ack.seq, 77);
				CHECK(d.u.ack.payload.p == NULL);
			}
		}
		wbuf_free(&plain);
		free(f);
	}
}

/* ---------------------------------------------------------- envelopes */

static void enc(struct wbuf *b, const struct wire_msg *m)
{
	wbuf_init(b);
	CHECK_EQ_INT(wire_encode(b, m), WIRE_OK);
}

TEST(unwrap_envelopes_and_nesting)
{
	struct wire_msg m = { .type = WIRE_PING };
	m.u.ping.seq = 1;
	m.u.ping.node = S("p");
	struct wbuf ping, a, b;
	enc(&ping, &m);
	wbuf_init(&a);
	wbuf_init(&b);

	/* crc -> compress -> compound -> compress -> ping: four envelopes */
	CHECK_EQ_INT(wire_compress(&a, ping.p, ping.len), WIRE_OK);
	struct wire_bytes parts[3] = { { ping.p, (uint32_t)ping.len },
				       { a.p, (uint32_t)a.len },
				       { ping.p, (uint32_t)ping.len } };
	CHECK_EQ_INT(wire_make_compound(&b, parts, 3), WIRE_OK);
	wbuf_reset(&a);
	CHECK_EQ_INT(wire_compress(&a, b.p, b.len), WIRE_OK);
	wbuf_reset(&b);
	CHECK_EQ_INT(wire_add_crc(&b, a.p, a.len), WIRE_OK);
	struct got g = { 0 };
	CHECK_EQ_INT(wire_unwrap_packet(b.p, b.len, collect, &g), WIRE_OK);
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_STR(g.types, "000");
	got_free(&g);

	/* five nested compounds is one too many */
	wbuf_reset(&a);
	wbuf_append(&a, ping.p, ping.len);
	for (int depth = 1; depth <= 5; depth++) {
		struct wire_bytes one = { a.p, (uint32_t)a.len };
		wbuf_reset(&b);
		CHECK_EQ_INT(wire_make_compound(&b, &one, 1), WIRE_OK);
		wbuf_reset(&a);
		wbuf_append(&a, b.p, b.len);
		int rc = wire_unwrap_packet(a.p, a.len, collect, &g);
		CHECK_EQ_INT(rc, depth <= 4 ? WIRE_OK : WIRE_ENEST);
		CHECK_EQ_INT(g.n, depth <= 4 ? 1 : 0);
		got_free(&g);
	}

	/* hasCrc only counts on the outside; inside it is just a message */
	wbuf_reset(&a);
	CHECK_EQ_INT(wire_add_crc(&a, ping.p, ping.len), WIRE_OK);
	struct wire_bytes inner = { a.p, (uint32_t)a.len };
	wbuf_reset(&b);
	CHECK_EQ_INT(wire_make_compound(&b, &inner, 1), WIRE_OK);
	CHECK_EQ_INT(wire_unwrap_packet(b.p, b.len, collect, &g), WIRE_OK);
	CHECK_EQ_STR(g.types, "c");
	got_free(&g);

	wbuf_free(&ping);
	wbuf_free(&a);
	wbuf_free(&b);
}

TEST(unwrap_rejects_bad_compound_whole)
{
	/* [7][2][len 3][len 9] but only 3 + 2 bytes follow */
	static const uint8_t trunc[] = { 7, 2, 0, 3, 0, 9, 8, 'a', 'b', 8, 'c' };
	static const uint8_t zero[] = { 7, 2, 0, 3, 0, 0, 8, 'a', 'b' };
	static const uint8_t short_hdr[] = { 7, 3, 0, 1, 0 };
	static const uint8_t empty_ok[] = { 7, 0 };
	static const uint8_t trailing_ok[] = { 7, 1, 0, 2, 8, 'a', 'j', 'u', 'n', 'k' };
	struct got g = { 0 };
	CHECK_EQ_INT(wire_unwrap_packet(trunc, sizeof trunc, collect, &g), WIRE_ETRUNC);
	CHECK_EQ_INT(g.n, 0);
	CHECK_EQ_INT(wire_unwrap_packet(zero, sizeof zero, collect, &g), WIRE_EFORMAT);
	CHECK_EQ_INT(wire_unwrap_packet(short_hdr, sizeof short_hdr, collect, &g), WIRE_ETRUNC);
	CHECK_EQ_INT(g.n, 0);
	CHECK_EQ_INT(wire_unwrap_packet(empty_ok, sizeof empty_ok, collect, &g), WIRE_OK);
	CHECK_EQ_INT(g.n, 0);
	CHECK_EQ_INT(wire_unwrap_packet(trailing_ok, sizeof trailing_ok, collect, &g), WIRE_OK);
	CHECK_EQ_INT(g.n, 1);
	got_free(&g);
	CHECK_EQ_INT(wire_unwrap_packet(trunc, 0, collect, &g), WIRE_ETRUNC);
	CHECK_EQ_INT(wire_unwrap_packet((const uint8_t *)"\x0c\x00\x00", 3, collect, &g),
		     WIRE_ETRUNC);

	/* a bad envelope late in the packet stops delivery of earlier parts */
	static const char bad_c[] = "\x09\x82" "\xa4" "Algo" "\x00" "\xa3" "Buf" "\xa2\x00\x00";
	uint8_t bad_compress[sizeof bad_c - 1];
	memcpy(bad_compress, bad_c, sizeof bad_compress);
	uint8_t pkt[64];
	size_t n = 0;
	pkt[n++] = 7;
	pkt[n++] = 2;
	pkt[n++] = 0;
	pkt[n++] = 2;
	pkt[n++] = 0;
	pkt[n++] = sizeof bad_compress;
	pkt[n++] = 8;
	pkt[n++] = 'x';
	memcpy(pkt + n, bad_compress, sizeof bad_compress);
	n += sizeof bad_compress;
	CHECK_EQ_INT(wire_unwrap_packet(pkt, n, collect, &g), WIRE_ETRUNC);
	CHECK_EQ_INT(g.n, 0);
	/* unknown compression algorithm */
	bad_compress[7] = 1; /* Algo */
	memcpy(pkt + 8, bad_compress, sizeof bad_compress);
	CHECK_EQ_INT(wire_unwrap_packet(pkt, n, collect, &g), WIRE_EFORMAT);
	CHECK_EQ_INT(g.n, 0);
}

TEST(unwrap_bounds_decompression)
{
	size_t big = (size_t)WIRE_UDP_MAX * 4 + 1;
	uint8_t *zeros = calloc(1, big);
	REQUIRE(zeros);
	zeros[0] = WIRE_USER;
	struct wbuf z, pkt;
	wbuf_init(&z);
	wbuf_init(&pkt);
	REQUIRE(wire_compress(&z, zeros, big) == WIRE_OK);
	CHECK(z.len < 4096);
	struct got g = { 0 };
	CHECK_EQ_INT(wire_unwrap_packet(z.p, z.len, collect, &g), WIRE_ETOOBIG);
	CHECK_EQ_INT(g.n, 0);

	/* the budget is per packet: two envelopes of 60% each are too much */
	wbuf_reset(&z);
	REQUIRE(wire_compress(&z, zeros, big * 6 / 10) == WIRE_OK);
	struct wire_bytes two[2] = { { z.p, (uint32_t)z.len }, { z.p, (uint32_t)z.len } };
	REQUIRE(wire_make_compound(&pkt, two, 2) == WIRE_OK);
	CHECK_EQ_INT(wire_unwrap_packet(pkt.p, pkt.len, collect, &g), WIRE_ETOOBIG);
	CHECK_EQ_INT(g.n, 0);
	/* one of them alone is fine */
	CHECK_EQ_INT(wire_unwrap_packet(z.p, z.len, collect, &g), WIRE_OK);
	CHECK_EQ_INT(g.n, 1);
	got_free(&g);
	wbuf_free(&z);
	wbuf_free(&pkt);
	free(zeros);
}

/* ------------------------------------------------------------ streams */

TEST(stream_push_pull_and_user_roundtrip)
{
	struct wire_node_state_entry nodes[2];
	memset(nodes, 0, sizeof nodes);
	nodes[0].name = S("alpha");
	nodes[0].addr = A4(10, 1, 2, 3, 7946);
	nodes[0].meta = S("\xff\x80");
	nodes[0].incarnation = 9;
	nodes[0].state = WIRE_STATE_SUSPECT;
	memcpy(nodes[0].vsn, (uint8_t[]){ 1, 5, 2, 2, 5, 4 }, 6);
	nodes[0].vsn_len = 6;
	nodes[1].name = S("beta");
	nodes[1].addr = A4(10, 1, 2, 4, 7947);
	nodes[1].state = WIRE_STATE_LEFT;

	struct wbuf b;
	wbuf_init(&b);
	CHECK_EQ_INT(wire_encode_push_pull(&b, true, nodes, 2, (const uint8_t *)"USER", 4),
		     WIRE_OK);
	CHECK_EQ_INT(wire_stream_frame_len(b.p, b.len), (long)b.len);
	for (size_t cut = 0; cut < b.len; cut++)
		CHECK_EQ_INT(wire_stream_frame_len(b.p, cut), 0);
	/* a following frame does not change the answer */
	size_t one = b.len;
	wbuf_append(&b, b.p, one);
	CHECK_EQ_INT(wire_stream_frame_len(b.p, b.len), (long)one);

	struct wire_push_pull pp;
	REQUIRE(wire_decode_push_pull(b.p, one, &pp) == WIRE_OK);
	CHECK(pp.join);
	CHECK_EQ_INT(pp.n_nodes, 2);
	CHECK(bytes_eq(pp.nodes[0].name, "alpha"));
	CHECK(bytes_eq(pp.nodes[1].name, "beta"));
	CHECK_EQ_INT(pp.nodes[0].state, WIRE_STATE_SUSPECT);
	CHECK_EQ_INT(pp.nodes[1].state, WIRE_STATE_LEFT);
	CHECK_EQ_INT(pp.nodes[0].incarnation, 9);
	CHECK_EQ_INT(pp.nodes[1].addr.port, 7947);
	CHECK_EQ_INT(pp.nodes[1].vsn_len, 0);
	CHECK(bytes_eq(pp.user_state, "USER"));
	wire_push_pull_free(&pp);
	CHECK_EQ_INT(wire_decode_push_pull(b.p, one - 1, &pp), WIRE_ETRUNC);

	/* zero nodes, no user state */
	wbuf_reset(&b);
	CHECK_EQ_INT(wire_encode_push_pull(&b, false, NULL, 0, NULL, 0), WIRE_OK);
	CHECK_EQ_INT(wire_stream_frame_len(b.p, b.len), (long)b.len);
	REQUIRE(wire_decode_push_pull(b.p, b.len, &pp) == WIRE_OK);
	CHECK_EQ_INT(pp.n_nodes, 0);
	wire_push_pull_free(&pp);

	/* stream user message */
	wbuf_reset(&b);
	CHECK_EQ_INT(wire_encode_stream_user(&b, (const uint8_t *)"payload", 7), WIRE_OK);
	static const char hdr[] = "\x08\x81" "\xaa" "UserMsgLen" "\x07";
	CHECK_MEM(b.p, hdr, sizeof hdr - 1);
	CHECK_EQ_INT(wire_stream_frame_len(b.p, b.len), (long)b.len);
	CHECK_EQ_INT(wire_stream_frame_len(b.p, b.len - 1), 0);
	struct wire_bytes up;
	CHECK_EQ_INT(wire_decode_stream_user(b.p, b.len, &up), WIRE_OK);
	CHECK(bytes_eq(up, "payload"));
	CHECK_EQ_INT(wire_decode_stream_user(b.p, b.len - 1, &up), WIRE_ETRUNC);
	wbuf_free(&b);
}

TEST(stream_frame_len_limits)
{
	/* encrypt: [10][u32 BE length][bytes] */
	static const uint8_t enc_ok[] = { 10, 0, 0, 0, 2, 0xaa, 0xbb, 0xcc };
	CHECK_EQ_INT(wire_stream_frame_len(enc_ok, sizeof enc_ok), 7);
	CHECK_EQ_INT(wire_stream_frame_len(enc_ok, 6), 0);
	CHECK_EQ_INT(wire_stream_frame_len(enc_ok, 3), 0);
	static const uint8_t enc_huge[] = { 10, 0xff, 0xff, 0xff, 0xff };
	CHECK_EQ_INT(wire_stream_frame_len(enc_huge, sizeof enc_huge), WIRE_ETOOBIG);

	/* pushPull headers that promise too much are refused at once */
	static const char many_nodes[] = "\x06\x83" "\xa4" "Join" "\xc2" "\xa5" "Nodes"
		"\xce\x00\x03\x00\x00" "\xac" "UserStateLen" "\x00";
	CHECK_EQ_INT(wire_stream_frame_len(LIT(many_nodes)), WIRE_ETOOBIG);
	static const char big_user[] = "\x06\x83" "\xa4" "Join" "\xc2" "\xa5" "Nodes" "\x00"
		"\xac" "UserStateLen" "\xce\x02\x00\x00\x00";
	CHECK_EQ_INT(wire_stream_frame_len(LIT(big_user)), WIRE_ETOOBIG);
	static const char neg[] = "\x06\x81" "\xa5" "Nodes" "\xff";
	CHECK_EQ_INT(wire_stream_frame_len(LIT(neg)), WIRE_EFORMAT);
	static const char big_umsg[] = "\x08\x81" "\xaa" "UserMsgLen" "\xce\x7f\x00\x00\x00";
	CHECK_EQ_INT(wire_stream_frame_len(LIT(big_umsg)), WIRE_ETOOBIG);
	/* a header claiming a 2 GB string is not waited for */
	static const char huge_obj[] = "\x00\x81" "\xa4" "Node" "\xdb\x7f\x00\x00\x00" "x";
	CHECK_EQ_INT(wire_stream_frame_len(LIT(huge_obj)), WIRE_ETOOBIG);
	static const uint8_t huge_arr[] = { 9, 0xdd, 0x7f, 0, 0, 0 };
	CHECK_EQ_INT(wire_stream_frame_len(huge_arr, sizeof huge_arr), WIRE_ETOOBIG);

	/* types that do not travel on streams */
	CHECK_EQ_INT(wire_stream_frame_len((const uint8_t *)"\x05\x80", 2), WIRE_ETYPE);
	CHECK_EQ_INT(wire_stream_frame_len((const uint8_t *)"\x07\x00", 2), WIRE_ETYPE);
	CHECK_EQ_INT(wire_stream_frame_len((const uint8_t *)"", 0), 0);
	/* ping frame */
	static const char ping[] = "\x00\x81" "\xa5" "SeqNo" "\x05" "\xff";
	CHECK_EQ_INT(wire_stream_frame_len(LIT(ping)), 9);
	CHECK_EQ_INT(wire_stream_frame_len((const uint8_t *)ping, 8), 0);
}

TEST(strerror_covers_codes)
{
	for (int e = WIRE_ENEST; e <= WIRE_OK; e++)
		CHECK(wire_strerror(e) != NULL && strlen(wire_strerror(e)) > 0);
	CHECK(wire_strerror(-99) != NULL);
}

/* ------------------------------------------------------- robustness */

static void noop(void *ctx, const uint8_t *msg, size_t len)
{
	(void)ctx;
	/* touch every byte so ASan would notice a bad range */
	volatile uint8_t x = 0;
	for (size_t i = 0; i < len; i++)
		x ^= msg[i];
	(void)x;
}

/* Every decoder on one input; all that matters is no crash and a valid code. */
static void all_decoders(const uint8_t *p, size_t n)
{
	uint8_t *d = dup_exact(p, n);
	struct wire_msg m;
	struct wire_push_pull pp;
	struct wire_bytes ub;
	struct wbuf out;
	int rc;

	rc = wire_decode(d, n, &m);
	CHECK(rc <= 0 && rc >= WIRE_ENEST);
	if (rc == WIRE_OK) {
		/* whatever decodes must encode again */
		wbuf_init(&out);
		CHECK_EQ_INT(wire_encode(&out, &m), WIRE_OK);
		wbuf_free(&out);
	}
	rc = wire_unwrap_packet(d, n, noop, NULL);
	CHECK(rc <= 0 && rc >= WIRE_ENEST);
	rc = wire_decode_push_pull(d, n, &pp);
	CHECK(rc <= 0 && rc >= WIRE_ENEST);
	if (rc == WIRE_OK)
		wire_push_pull_free(&pp);
	CHECK(pp.nodes == NULL);
	rc = wire_decode_stream_user(d, n, &ub);
	CHECK(rc <= 0 && rc >= WIRE_ENEST);
	long fl = wire_stream_frame_len(d, n);
	CHECK(fl >= WIRE_ENEST && fl <= (long)n);
	wbuf_init(&out);
	rc = wire_decompress(d, n, &out);
	CHECK(rc <= 0 && rc >= WIRE_ENEST);
	wbuf_free(&out);
	free(d);
}

/* Every valid input we know of: vectors, their inflated forms, encodings. */
static void for_each_valid(void (*fn)(const uint8_t *, size_t))
{
	for (size_t i = 0; i < sizeof wire_udp_vectors / sizeof wire_udp_vectors[0]; i++)
		fn(wire_udp_vectors[i].pkt, wire_udp_vectors[i].len);
	for (size_t i = 0; i < sizeof wire_tcp_vectors / sizeof wire_tcp_vectors[0]; i++) {
		const struct wire_tcp_vector *v = &wire_tcp_vectors[i];
		struct wbuf plain;
		wbuf_init(&plain);
		fn(v->frame, v->len);
		if (wire_decompress(v->frame, v->len, &plain) == WIRE_OK)
			fn(plain.p, plain.len);
		wbuf_free(&plain);
	}
	for (size_t i = 0; i < sizeof lzw_go_vectors / sizeof lzw_go_vectors[0]; i++)
		fn(lzw_go_vectors[i].plain, lzw_go_vectors[i].plain_len);
}

static size_t prefixes_done;

static void every_prefix(const uint8_t *p, size_t n)
{
	for (size_t cut = 0; cut <= n; cut++)
		all_decoders(p, cut);
	prefixes_done += n + 1;
}

TEST(every_prefix_of_every_vector)
{
	prefixes_done = 0;
	for_each_valid(every_prefix);
	CHECK(prefixes_done > 1000);
}

static void mutate_many(const uint8_t *p, size_t n)
{
	uint8_t *buf = malloc(n + 8);
	if (!buf || n == 0) {
		free(buf);
		return;
	}
	for (int iter = 0; iter < 300; iter++) {
		memcpy(buf, p, n);
		size_t len = n;
		int flips = 1 + (int)(rng() % 4);
		for (int k = 0; k < flips; k++) {
			size_t at = rng() % len;
			switch (rng() % 4) {
			case 0: buf[at] ^= (uint8_t)(1u << (rng() % 8)); break;
			case 1: buf[at] = (uint8_t)rng(); break;
			case 2: buf[at] = (uint8_t[]){ 0x00, 0x7f, 0x80, 0xff, 0xc1, 0xdb,
						       0xdd, 0xdf, 0xcf, 0x91 }[rng() % 10];
				break;
			case 3: len = at + 1; break;
			}
		}
		/* keep hasCrc packets interesting: fix the checksum up half the time */
		if (buf[0] == WIRE_HAS_CRC && len >= 5 && (rng() & 1)) {
			uint32_t c = (uint32_t)crc32(0, buf + 5, (uInt)(len - 5));
			buf[1] = (uint8_t)(c >> 24);
			buf[2] = (uint8_t)(c >> 16);
			buf[3] = (uint8_t)(c >> 8);
			buf[4] = (uint8_t)c;
		}
		all_decoders(buf, len);
	}
	free(buf);
}

TEST(mutated_vectors_never_crash)
{
	for_each_valid(mutate_many);
}

TEST(random_bytes_never_crash)
{
	uint8_t buf[512];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = rng() % sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rng();
		/* a plausible type byte makes the decoders go deeper */
		if (n && (iter & 1))
			buf[0] = (uint8_t)(rng() % 14);
		if (n > 1 && (iter & 2))
			buf[1] = (uint8_t)(0x80 | (rng() % 16));
		all_decoders(buf, n);
	}
}

/* wire_unwrap_packet_all: one call with every message of the packet, in order. */
struct batches {
	int calls;
	size_t n;
	char types[16];
};

static void collect_all(void *ctx, const struct wire_bytes *msgs, size_t n)
{
	struct batches *b = ctx;
	b->calls++;
	b->n = n;
	for (size_t i = 0; i < n && i < sizeof b->types - 1; i++)
		b->types[i] = "0123456789abcdef"[msgs[i].p[0] & 15];
}

struct seqs {
	int calls;
	size_t n;
	bool in_order;               /* every message a ping, seq = its position */
};

static void collect_seqs(void *ctx, const struct wire_bytes *msgs, size_t n)
{
	struct seqs *got = ctx;
	got->calls++;
	got->n = n;
	for (size_t i = 0; i < n; i++) {
		struct wire_msg d;
		if (wire_decode(msgs[i].p, msgs[i].len, &d) != WIRE_OK || d.type != WIRE_PING ||
		    d.u.ping.seq != i)
			got->in_order = false;
	}
}

TEST(unwrap_all_hands_over_the_whole_packet)
{
	struct wbuf ping, alive, c, z;
	wbuf_init(&ping);
	wbuf_init(&alive);
	wbuf_init(&c);
	wbuf_init(&z);
	struct wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = WIRE_PING;
	m.u.ping.seq = 7;
	m.u.ping.node = (struct wire_bytes){ (const uint8_t *)"b", 1 };
	REQUIRE(wire_encode(&ping, &m) == WIRE_OK);
	memset(&m, 0, sizeof m);
	m.type = WIRE_ALIVE;
	m.u.alive.incarnation = 3;
	m.u.alive.node = (struct wire_bytes){ (const uint8_t *)"a", 1 };
	m.u.alive.addr.ip_len = 4;
	m.u.alive.addr.port = 7946;
	REQUIRE(wire_encode(&alive, &m) == WIRE_OK);
	/* compound(ping, compress(compound(alive, ping)), alive): 4 messages */
	struct wire_bytes in[2] = { { alive.p, (uint32_t)alive.len }, { ping.p, (uint32_t)ping.len } };
	REQUIRE(wire_make_compound(&c, in, 2) == WIRE_OK);
	REQUIRE(wire_compress(&z, c.p, c.len) == WIRE_OK);
	struct wire_bytes out[3] = { { ping.p, (uint32_t)ping.len }, { z.p, (uint32_t)z.len },
				     { alive.p, (uint32_t)alive.len } };
	wbuf_reset(&c);
	REQUIRE(wire_make_compound(&c, out, 3) == WIRE_OK);
	struct batches b = { 0 };
	CHECK_EQ_INT(wire_unwrap_packet_all(c.p, c.len, collect_all, &b), WIRE_OK);
	CHECK_EQ_INT(b.calls, 1);
	CHECK_EQ_INT(b.n, 4);
	CHECK_EQ_STR(b.types, "0404");
	/* a malformed envelope: no call at all */
	memset(&b, 0, sizeof b);
	CHECK_EQ_INT(wire_unwrap_packet_all(c.p, c.len - 1, collect_all, &b), WIRE_ETRUNC);
	CHECK_EQ_INT(b.calls, 0);
	wbuf_free(&ping);
	wbuf_free(&alive);
	wbuf_free(&c);
	wbuf_free(&z);
}

/* 200 messages (more than the unwrapper holds without the heap), in order. */
TEST(unwrap_all_hands_over_long_packets)
{
	struct wbuf ping[200], inner[2], c;
	struct wire_bytes part[100], outer[2];
	for (int h = 0; h < 2; h++) {
		for (int i = 0; i < 100; i++) {
			struct wire_msg m;
			memset(&m, 0, sizeof m);
			m.type = WIRE_PING;
			m.u.ping.seq = (uint32_t)(h * 100 + i);
			m.u.ping.node = (struct wire_bytes){ (const uint8_t *)"b", 1 };
			wbuf_init(&ping[h * 100 + i]);
			REQUIRE(wire_encode(&ping[h * 100 + i], &m) == WIRE_OK);
			part[i] = (struct wire_bytes){ ping[h * 100 + i].p, (uint32_t)ping[h * 100 + i].len };
		}
		wbuf_init(&inner[h]);
		REQUIRE(wire_make_compound(&inner[h], part, 100) == WIRE_OK);
		outer[h] = (struct wire_bytes){ inner[h].p, (uint32_t)inner[h].len };
	}
	wbuf_init(&c);
	REQUIRE(wire_make_compound(&c, outer, 2) == WIRE_OK);
	struct seqs got = { 0, 0, true };
	CHECK_EQ_INT(wire_unwrap_packet_all(c.p, c.len, collect_seqs, &got), WIRE_OK);
	CHECK_EQ_INT(got.calls, 1);
	CHECK_EQ_INT(got.n, 200);
	CHECK(got.in_order);
	for (int i = 0; i < 200; i++)
		wbuf_free(&ping[i]);
	wbuf_free(&inner[0]);
	wbuf_free(&inner[1]);
	wbuf_free(&c);
}

TEST_MAIN(golden_ping, golden_alive, golden_compound_crc_compress_headers,
	  roundtrip_every_type, encoder_refuses_what_decoder_refuses,
	  decoder_accepts_modern_msgpack_any_order, decoder_strict_about_values,
	  decoder_survives_allocation_bombs, serf_udp_vectors_decode,
	  serf_udp_vector_details, serf_tcp_vectors_decode, unwrap_envelopes_and_nesting,
	  unwrap_rejects_bad_compound_whole, unwrap_bounds_decompression,
	  stream_push_pull_and_user_roundtrip, stream_frame_len_limits,
	  strerror_covers_codes, every_prefix_of_every_vector, mutated_vectors_never_crash,
	  random_bytes_never_crash, unwrap_all_hands_over_the_whole_packet,
	  unwrap_all_hands_over_long_packets)
