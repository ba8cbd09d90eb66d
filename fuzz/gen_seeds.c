/*
 * gen_seeds.c — write the seed corpora in fuzz/corpus/<target>/.
 *
 *     make fuzz-seeds          (= build-fuzz/gen_seeds fuzz/corpus)
 *
 * Seeds are valid inputs, so the fuzzer starts deep inside each parser:
 *   - real traffic: the serf/memberlist captures in tests/unit/wire_vectors.h
 *     (UDP packets, TCP frames, LZW streams), the encrypted serf captures
 *     and the serf 0.9.4 event/query/push-pull vectors of the unit tests;
 *   - what our own encoders produce: every memberlist message, envelopes
 *     (compound, hasCrc, compress), push-pull, stream user messages, serf
 *     intents/events/queries/responses/push-pull/tags, will messages,
 *     state records and state files, RPC requests, agent configuration,
 *     snapshot files (serf-written logs and our own rendering).
 * File names are stable ("<what>.bin"); rerunning overwrites them with the
 * same bytes, except the few encrypted seeds, which use random nonces and
 * are therefore only written when missing.
 *
 * Multi-message targets (serf, will) split their input at "VSEP"; some
 * seeds chain several messages that way.
 */
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "serf.h"
#include "snapshot.h"
#include "swim.h"
#include "will.h"
#include "wire.h"
#include "wire_vectors.h"

static const char *root;
static int written;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "gen_seeds: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void mkdirs(const char *target)
{
	char p[512];
	snprintf(p, sizeof p, "%s", root);
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		die("mkdir %s: %s", p, strerror(errno));
	snprintf(p, sizeof p, "%s/%s", root, target);
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		die("mkdir %s: %s", p, strerror(errno));
}

static void put_file(const char *target, const char *name, const void *p, size_t n,
		     bool only_if_missing)
{
	char path[512];
	mkdirs(target);
	snprintf(path, sizeof path, "%s/%s/%s.bin", root, target, name);
	if (only_if_missing && access(path, F_OK) == 0)
		return;
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
		die("write %s: %s", path, strerror(errno));
	written++;
}

static void put(const char *target, const char *name, const void *p, size_t n)
{
	put_file(target, name, p, n, false);
}

static void putb(const char *target, const char *name, const struct wbuf *b)
{
	if (b->oom)
		die("out of memory building %s/%s", target, name);
	put(target, name, b->p, b->len);
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	for (; s[0] && s[1]; s += 2) {
		unsigned v;
		if (sscanf(s, "%2x", &v) != 1 || n == cap)
			die("bad hex");
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* Join pieces with the "VSEP" separator the serf and will targets use. */
static void put_chain(const char *target, const char *name, const struct wbuf *parts,
		      size_t n)
{
	struct wbuf b;
	wbuf_init(&b);
	for (size_t i = 0; i < n; i++) {
		if (i)
			wbuf_append(&b, "VSEP", 4);
		wbuf_append(&b, parts[i].p, parts[i].len);
	}
	putb(target, name, &b);
	wbuf_free(&b);
}

/* ------------------------------------------------------------ memberlist */

static struct wire_bytes B(const char *s)
{
	struct wire_bytes b = { (const uint8_t *)s, (uint32_t)strlen(s) };
	return b;
}

static struct wire_addr A4(uint8_t d, uint16_t port)
{
	struct wire_addr a;
	memset(&a, 0, sizeof a);
	a.ip[0] = 127;
	a.ip[3] = d;
	a.ip_len = 4;
	a.port = port;
	return a;
}

static struct wire_addr A6(uint16_t port)
{
	struct wire_addr a;
	memset(&a, 0, sizeof a);
	a.ip[0] = 0xfd;
	a.ip[15] = 1;
	a.ip_len = 16;
	a.port = port;
	return a;
}

static const uint8_t VSN[6] = { 1, 5, 2, 2, 5, 4 };
static const uint8_t META_WEB[] = { 0xff, 0x81, 0xa4, 'r', 'o', 'l', 'e', 0xa3, 'w', 'e', 'b' };

static void enc(struct wbuf *out, const struct wire_msg *m)
{
	wbuf_reset(out);
	if (wire_encode(out, m) != WIRE_OK)
		die("wire_encode type %d", (int)m->type);
}

/* Every message type, into msgs[] (caller frees); returns the count. */
static size_t all_messages(struct wbuf *msgs, const char **names)
{
	struct wire_msg m;
	size_t n = 0;

#define NEXT(nm) do { wbuf_init(&msgs[n]); enc(&msgs[n], &m); names[n++] = nm; } while (0)
	memset(&m, 0, sizeof m);
	m.type = WIRE_PING;
	m.u.ping.seq = 7;
	m.u.ping.node = B("fake");
	NEXT("ping");

	memset(&m, 0, sizeof m);
	m.type = WIRE_PING;
	m.u.ping.seq = 8;
	m.u.ping.node = B("fake");
	m.u.ping.source = A4(1, 7946);
	m.u.ping.source_node = B("a");
	NEXT("ping-source");

	memset(&m, 0, sizeof m);
	m.type = WIRE_INDIRECT_PING;
	m.u.indirect.seq = 9;
	m.u.indirect.target = A4(4, 7947);
	m.u.indirect.node = B("b");
	m.u.indirect.nack = true;
	m.u.indirect.source = A4(1, 7946);
	m.u.indirect.source_node = B("a");
	NEXT("indirect-ping");

	memset(&m, 0, sizeof m);
	m.type = WIRE_ACK;
	m.u.ack.seq = 1;
	m.u.ack.payload = B("pong");
	NEXT("ack");

	memset(&m, 0, sizeof m);
	m.type = WIRE_NACK;
	m.u.nack.seq = 1;
	NEXT("nack");

	memset(&m, 0, sizeof m);
	m.type = WIRE_ERR;
	m.u.err.error = B("remote error");
	NEXT("err");

	memset(&m, 0, sizeof m);
	m.type = WIRE_SUSPECT;
	m.u.suspect.incarnation = 1;
	m.u.suspect.node = B("b");
	m.u.suspect.from = B("a");
	NEXT("suspect");

	memset(&m, 0, sizeof m);
	m.type = WIRE_SUSPECT;
	m.u.suspect.incarnation = 5;
	m.u.suspect.node = B("fake");
	m.u.suspect.from = B("a");
	NEXT("suspect-self");

	memset(&m, 0, sizeof m);
	m.type = WIRE_DEAD;
	m.u.dead.incarnation = 2;
	m.u.dead.node = B("b");
	m.u.dead.from = B("a");
	NEXT("dead");

	memset(&m, 0, sizeof m);
	m.type = WIRE_DEAD;
	m.u.dead.incarnation = 2;
	m.u.dead.node = B("b");
	m.u.dead.from = B("b");
	NEXT("dead-left");

	memset(&m, 0, sizeof m);
	m.type = WIRE_ALIVE;
	m.u.alive.incarnation = 3;
	m.u.alive.node = B("c");
	m.u.alive.addr = A4(5, 7948);
	m.u.alive.meta.p = META_WEB;
	m.u.alive.meta.len = sizeof META_WEB;
	memcpy(m.u.alive.vsn, VSN, 6);
	m.u.alive.vsn_len = 6;
	NEXT("alive");

	memset(&m, 0, sizeof m);
	m.type = WIRE_ALIVE;
	m.u.alive.incarnation = 4;
	m.u.alive.node = B("a");
	m.u.alive.addr = A6(7946);
	memcpy(m.u.alive.vsn, VSN, 6);
	m.u.alive.vsn_len = 6;
	NEXT("alive-v6-nometa");

	memset(&m, 0, sizeof m);
	m.type = WIRE_USER;
	static const uint8_t ev[] = { 0x03, 0x84, 0xa2, 'C', 'C', 0xc2 };
	m.u.user.payload.p = ev;
	m.u.user.payload.len = sizeof ev;
	NEXT("user");
#undef NEXT
	return n;
}

static void memberlist_seeds(void)
{
	struct wbuf msgs[32], b, c, z;
	const char *names[32];
	char nm[64];
	size_t n = all_messages(msgs, names);
	wbuf_init(&b);
	wbuf_init(&c);
	wbuf_init(&z);

	for (size_t i = 0; i < n; i++) {
		put("packet", names[i], msgs[i].p, msgs[i].len);
		put("packet_swim", names[i], msgs[i].p, msgs[i].len);
		wbuf_reset(&b);
		wire_add_crc(&b, msgs[i].p, msgs[i].len);
		snprintf(nm, sizeof nm, "crc-%s", names[i]);
		putb("packet", nm, &b);
	}
	/* envelopes */
	struct wire_bytes parts[32];
	for (size_t i = 0; i < n; i++) {
		parts[i].p = msgs[i].p;
		parts[i].len = (uint32_t)msgs[i].len;
	}
	wire_make_compound(&c, parts, n);
	putb("packet", "compound-all", &c);
	putb("packet_swim", "compound-all", &c);
	wbuf_reset(&b);
	wire_add_crc(&b, c.p, c.len);
	putb("packet", "crc-compound-all", &b);
	wire_compress(&z, c.p, c.len);
	putb("packet", "compress-compound-all", &z);
	putb("packet_swim", "compress-compound-all", &z);
	wbuf_reset(&b);
	wire_add_crc(&b, z.p, z.len);
	putb("packet", "crc-compress-compound-all", &b);
	/* compound of compounds (nesting) */
	struct wire_bytes two[2] = { { c.p, (uint32_t)c.len }, { msgs[0].p, (uint32_t)msgs[0].len } };
	wbuf_reset(&b);
	wire_make_compound(&b, two, 2);
	putb("packet", "compound-nested", &b);
	/* a failure story for swim: suspect b, then dead b, then b alive again */
	struct wire_bytes story[3] = { parts[6], parts[8], parts[10] };
	wbuf_reset(&b);
	wire_make_compound(&b, story, 3);
	putb("packet_swim", "compound-suspect-dead-alive", &b);

	/* real captures */
	for (size_t i = 0; i < sizeof wire_udp_vectors / sizeof wire_udp_vectors[0]; i++) {
		snprintf(nm, sizeof nm, "serf-udp-%zu", i);
		put("packet", nm, wire_udp_vectors[i].pkt, wire_udp_vectors[i].len);
		put("packet_swim", nm, wire_udp_vectors[i].pkt, wire_udp_vectors[i].len);
	}
	for (size_t i = 0; i < n; i++)
		wbuf_free(&msgs[i]);
	wbuf_free(&b);
	wbuf_free(&c);
	wbuf_free(&z);
}

static void stream_seeds(void)
{
	struct wbuf b, z;
	char nm[64];
	wbuf_init(&b);
	wbuf_init(&z);

	struct wire_node_state_entry nodes[4];
	memset(nodes, 0, sizeof nodes);
	const char *nn[4] = { "a", "b", "fake", "c" };
	for (int i = 0; i < 4; i++) {
		nodes[i].name = B(nn[i]);
		nodes[i].addr = i == 3 ? A6(7949) : A4((uint8_t)(1 + i), (uint16_t)(7946 + i));
		nodes[i].meta.p = META_WEB;
		nodes[i].meta.len = sizeof META_WEB;
		nodes[i].incarnation = (uint32_t)(1 + i);
		nodes[i].state = (uint8_t)i; /* alive, suspect, dead, left */
		memcpy(nodes[i].vsn, VSN, 6);
		nodes[i].vsn_len = 6;
	}
	static const uint8_t user_state[] = { 0x02, 0x80 };
	wire_encode_push_pull(&b, true, nodes, 4, user_state, sizeof user_state);
	putb("stream", "push-pull-join", &b);
	putb("packet_swim", "push-pull-join", &b);
	wire_compress(&z, b.p, b.len);
	putb("stream", "compress-push-pull", &z);
	putb("packet_swim", "compress-push-pull", &z);
	wbuf_reset(&b);
	wire_encode_push_pull(&b, false, nodes, 1, NULL, 0);
	putb("stream", "push-pull-one", &b);
	putb("packet_swim", "push-pull-one", &b);
	wbuf_reset(&b);
	wire_encode_push_pull(&b, false, NULL, 0, NULL, 0);
	putb("stream", "push-pull-empty", &b);

	wbuf_reset(&b);
	static const uint8_t ev[] = { 0x03, 0x84, 0xa2, 'C', 'C', 0xc2 };
	wire_encode_stream_user(&b, ev, sizeof ev);
	putb("stream", "user", &b);
	putb("packet_swim", "stream-user", &b);

	struct wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = WIRE_PING;
	m.u.ping.seq = 3;
	m.u.ping.node = B("fake");
	wbuf_reset(&b);
	wire_encode(&b, &m);
	putb("stream", "ping", &b);
	memset(&m, 0, sizeof m);
	m.type = WIRE_ERR;
	m.u.err.error = B("no");
	wbuf_reset(&b);
	wire_encode(&b, &m);
	putb("stream", "err", &b);

	static const uint8_t encmsg[] = { 0x0a, 0, 0, 0, 4, 1, 2, 3, 4 };
	put("stream", "encrypt-frame", encmsg, sizeof encmsg);

	for (size_t i = 0; i < sizeof wire_tcp_vectors / sizeof wire_tcp_vectors[0]; i++) {
		snprintf(nm, sizeof nm, "serf-tcp-%zu", i);
		put("stream", nm, wire_tcp_vectors[i].frame, wire_tcp_vectors[i].len);
		put("packet_swim", nm, wire_tcp_vectors[i].frame, wire_tcp_vectors[i].len);
	}
	wbuf_free(&b);
	wbuf_free(&z);
}

static void lzw_seeds(void)
{
	char nm[64];
	for (size_t i = 0; i < sizeof lzw_go_vectors / sizeof lzw_go_vectors[0]; i++) {
		snprintf(nm, sizeof nm, "go-lzw-%zu", i);
		put("lzw", nm, lzw_go_vectors[i].lzw, lzw_go_vectors[i].lzw_len);
		snprintf(nm, sizeof nm, "go-plain-%zu", i);
		put("lzw", nm, lzw_go_vectors[i].plain, lzw_go_vectors[i].plain_len);
	}
	/* the code table filling up: 5000 distinct-ish bytes */
	uint8_t *big = malloc(5000);
	uint32_t x = 1;
	for (int i = 0; i < 5000; i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)(x >> 24);
	}
	struct wbuf z;
	wbuf_init(&z);
	lzw_compress(&z, big, 5000);
	putb("lzw", "table-full-lzw", &z);
	wbuf_free(&z);
	free(big);
}

/* ------------------------------------------------------------ crypto */

static const char *const KEYS[] = {
	"9g7igTfW1zXWHPvFK0UbqL4Bli7qRBG8n1JNd2+Lqfo=",
	"ko43TPtIyMXxwgs0+ePXrQ==",
};

static void crypto_seeds(void)
{
	/* tests/unit/test_crypto.c: serf agents with -encrypt (AES-256) and a
	 * 16-byte key from a keyring file */
	static const struct {
		const char *name, *hex;
	} caps[] = {
		{ "serf32-udp-small",
		  "01d8e55e4d3ab0700f99536ae0001107c6d8c113736b435986d706054fbd06cd"
		  "c8f2e46efcd4a0074b8eb85a1337d497ca763ad13f528549d08e163558a845" },
		{ "serf32-udp-large",
		  "01cd4ea293c632a1965d96c2d0b944cfd5a0eb9afeca43091e4aeb34520cc4d5"
		  "bded313e9862ccb18eeb47f5c0a88ce9947d6640d335533e556b0e63e32e323e"
		  "638c7ac1fe0469f140e0ce7113d7d24ad349f1690ba09eec7d9141eec9a7b1cc"
		  "96cf9d34c997f58f0804404dcb27b13195bd8d526d5abba6dec2d7bc0f77a886"
		  "c8c2cdb611fb4ccebbb786ec0e2c48d6d22a7d5be5d8d38780a8f35676d6f9d3"
		  "dcbbb8cca4ffc3be95604883456edaefa9" },
		{ "serf32-tcp",
		  "0a0000006601936383148679ae48ac53769ee581548c64c43bb9e2e839188f65"
		  "e0b8132767593c2d0b52e2e1aea9c8b32684e1a085910966ddeeba1b88ae849c"
		  "0454797e5d54815867bfea2668e44d6de6d6d46fe6966989f019d1efc54d87f8"
		  "821a0b9680944be83dfe67" },
		{ "serf16-udp",
		  "0140be30eff9ba73eb018308af5adb46b5146a3821e5f0173bff88797f131c33"
		  "9dd478a4294254f36a25584ba350ff090bf1260d5bfb214ce6a1dec9722ae137"
		  "5edbbad7ccef4b8bc641b7c3c9f136336509d914bb0d799b" },
		{ "serf16-tcp",
		  "0a0000006601fa032bdb145dd0b6299fbd714890d3f2f29c3c650cd0eed1ae9c"
		  "50bedc929d1fda5da7c685b8bc6a33a8ff2ac67e0b8ac30d66510fbf31b39b81"
		  "52dd1a3c39c02f82fc062b9fb9086caad779025276e96ce116a2a8de499455ef"
		  "24d02cf849fec0056ce20b" },
	};
	uint8_t buf[1024];
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		put("decrypt", caps[i].name, buf, unhex(caps[i].hex, buf, sizeof buf));

	/* Our own: version 0 (padded) and 1, UDP and stream (random nonces). */
	struct vigil_keyring *kr = vigil_keyring_new();
	if (!kr || vigil_keyring_add_b64(kr, KEYS[1]) != 0)
		die("keyring");
	static const uint8_t plain[] = "\x00\x82\xa4Node\xa4" "fake\xa5SeqNo\x07";
	size_t n;
	for (int v = 0; v <= 1; v++) {
		char nm[32];
		if (vigil_encrypt(kr, v, NULL, 0, plain, sizeof plain - 1, buf, sizeof buf, &n) != 0)
			die("encrypt");
		snprintf(nm, sizeof nm, "ours-v%d-udp", v);
		put_file("decrypt", nm, buf, n, true);
		if (vigil_encrypt_stream(kr, v, plain, sizeof plain - 1, buf, sizeof buf, &n) != 0)
			die("encrypt stream");
		snprintf(nm, sizeof nm, "ours-v%d-tcp", v);
		put_file("decrypt", nm, buf, n, true);
	}
	vigil_keyring_free(kr);
	/* roundtrip selectors: version/key/stream bits in byte 0 */
	for (int sel = 0; sel < 16; sel += 3) {
		char nm[32];
		buf[0] = (uint8_t)sel;
		memcpy(buf + 1, plain, sizeof plain - 1);
		snprintf(nm, sizeof nm, "roundtrip-%02x", sel);
		put("decrypt", nm, buf, sizeof plain);
	}
}

/* ------------------------------------------------------------ serf */

struct outbox {
	struct wbuf msgs[64];
	size_t n;
};

static void ob_keep(struct outbox *o, const uint8_t *msg, size_t len)
{
	if (o->n == 64)
		return;
	wbuf_init(&o->msgs[o->n]);
	wbuf_append(&o->msgs[o->n], msg, len);
	o->n++;
}

static void ob_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	ob_keep(ctx, msg, len);
}

static void ob_send_to(void *ctx, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	(void)to;
	ob_keep(ctx, msg, len);
}

static void ob_free(struct outbox *o)
{
	for (size_t i = 0; i < o->n; i++)
		wbuf_free(&o->msgs[i]);
	o->n = 0;
}

struct responder {
	struct serf_layer *sl;
};

static void ev_respond(void *ctx, const struct vigil_event *ev)
{
	struct responder *r = ctx;
	if (ev->type == VIGIL_EV_QUERY && r->sl)
		serf_layer_respond(r->sl, ev->id, (const uint8_t *)"pong", 4, 0);
}

static struct serf_layer *layer(const char *name, struct outbox *o, struct responder *r,
				const struct vigil_tag *tags, size_t nt)
{
	struct serf_layer_config cfg;
	serf_layer_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "%s", name);
	cfg.tags = tags;
	cfg.n_tags = nt;
	cfg.out.ctx = o;
	cfg.out.broadcast = ob_broadcast;
	cfg.out.send_to = ob_send_to;
	cfg.on_event = ev_respond;
	cfg.event_ctx = r;
	cfg.seed = 7;
	struct serf_layer *sl = serf_layer_new(&cfg);
	if (!sl)
		die("serf_layer_new");
	if (r)
		r->sl = sl;
	return sl;
}

static struct swim_member smember(const char *name, uint8_t d, uint16_t port,
				  const struct vigil_tag *tags, size_t nt)
{
	struct swim_member m;
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "%s", name);
	m.addr = A4(d, port);
	int l = serf_encode_tags(tags, nt, 4, m.meta, sizeof m.meta);
	if (l < 0)
		die("tags");
	m.meta_len = (uint16_t)l;
	m.incarnation = 1;
	memcpy(m.vsn, VSN, 6);
	return m;
}

static void serf_seeds(void)
{
	static const struct vigil_tag web[] = { { "role", "web" }, { "dc", "fuzz" } };
	static const struct vigil_tag py[] = { { "role", "py" } };
	struct outbox o = { .n = 0 };
	struct responder r = { NULL };
	uint8_t buf[2048];
	size_t n;
	char nm[64];

	/* serf 0.9.4 captures (tests/unit/test_serf.c) */
	n = unhex("0384a24343c3a54c54696d6501a44e616d65a66465706c6f79a75061796c6f6164a27631",
		  buf, sizeof buf);
	put("serf", "serf-user-event", buf, n);
	n = unhex("048ba441646472a47f000001a746696c7465727391b30182a445787072a27079a3546167"
		  "a4726f6c65a5466c61677301a24944ce310d7e75a54c54696d6501a44e616d65a6757074"
		  "696d65a75061796c6f6164a568656c6c6fa4506f7274cd8033ab52656c6179466163746f"
		  "7200aa536f757263654e6f6465a27331a754696d656f7574ce77359400",
		  buf, sizeof buf);
	put("serf", "serf-query", buf, n);
	n = unhex("0585a5466c61677300a446726f6da27079a24944ce310d7e75a54c54696d6501"
		  "a75061796c6f6164a4706f6e67", buf, sizeof buf);
	put("serf", "serf-query-response", buf, n);
	n = unhex("0286aa4576656e744c54696d6501a64576656e7473dc0200", buf, sizeof buf);
	memset(buf + n, 0xc0, 512);
	n += 512;
	n += unhex("a54c54696d6501ab4c6566744d656d6265727390aa51756572794c54696d6501"
		   "ac5374617475734c54696d657381a2733100", buf + n, sizeof buf - n);
	put("serf", "serf-push-pull", buf, n);

	/* serf user messages inside the captured UDP packets */
	for (size_t i = 0; i < sizeof wire_udp_vectors / sizeof wire_udp_vectors[0]; i++) {
		const uint8_t *p = wire_udp_vectors[i].pkt;
		size_t l = wire_udp_vectors[i].len;
		/* only the simple shapes: [crc][8 ...] and [8 ...] */
		if (l > 5 && p[0] == WIRE_HAS_CRC) {
			p += 5;
			l -= 5;
		}
		if (l > 1 && p[0] == WIRE_USER) {
			snprintf(nm, sizeof nm, "serf-udp-user-%zu", i);
			put("serf", nm, p + 1, l - 1);
		}
	}
	/* serf push-pull user state inside the captured TCP frames */
	for (size_t i = 0; i < sizeof wire_tcp_vectors / sizeof wire_tcp_vectors[0]; i++) {
		struct wbuf plain;
		struct wire_push_pull pp;
		wbuf_init(&plain);
		if (wire_decompress(wire_tcp_vectors[i].frame, wire_tcp_vectors[i].len, &plain) == 0 &&
		    wire_decode_push_pull(plain.p, plain.len, &pp) == 0) {
			if (pp.user_state.len) {
				snprintf(nm, sizeof nm, "serf-tcp-state-%zu", i);
				put("serf", nm, pp.user_state.p, pp.user_state.len);
			}
			for (uint32_t k = 0; k < pp.n_nodes; k++)
				if (pp.nodes[k].meta.len) {
					snprintf(nm, sizeof nm, "serf-tags-%zu-%u", i, k);
					put("serf", nm, pp.nodes[k].meta.p, pp.nodes[k].meta.len);
				}
			wire_push_pull_free(&pp);
		}
		wbuf_free(&plain);
	}

	/* ours: a layer "s1" that talks to "py" */
	struct serf_layer *sl = layer("s1", &o, NULL, py, 1);
	struct swim_member ms[3] = { smember("s1", 1, 32819, py, 1), smember("py", 2, 7946, web, 2),
				     smember("a", 3, 7946, web, 2) };
	for (int i = 0; i < 3; i++)
		serf_layer_on_member(sl, SWIM_EV_JOIN, &ms[i], 0);
	serf_layer_broadcast_join(sl, 0);
	serf_layer_user_event(sl, "deploy", (const uint8_t *)"v2", 2, false, 0);
	serf_layer_user_event(sl, "deploy", (const uint8_t *)"v3", 2, true, 0);
	const char *fnodes[] = { "py", "a" };
	const char *ftags[] = { "role", "w.*" };
	struct vigil_query_params qp = { fnodes, 2, ftags, 2, true, 5000, 2 };
	uint32_t id;
	serf_layer_query(sl, "uptime", (const uint8_t *)"x", 1, &qp, NULL, NULL, &id, 0);
	serf_layer_query(sl, "_serf_ping", NULL, 0, NULL, NULL, NULL, &id, 0);
	serf_layer_force_leave(sl, "a", true, 0);
	struct wbuf st;
	wbuf_init(&st);
	serf_layer_local_state(sl, true, &st);
	serf_ext_state_record(&st, 200, (const uint8_t *)"\x90", 1);
	putb("serf", "ours-push-pull", &st);
	for (size_t i = 0; i < o.n; i++) {
		snprintf(nm, sizeof nm, "ours-%zu-type%d", i, o.msgs[i].p[0]);
		putb("serf", nm, &o.msgs[i]);
	}
	/* feed the query to py: its ack/response (and relays) are seeds too */
	struct outbox o2 = { .n = 0 };
	struct serf_layer *pyl = layer("py", &o2, &r, web, 2);
	for (int i = 0; i < 3; i++)
		serf_layer_on_member(pyl, SWIM_EV_JOIN, &ms[i], 0);
	for (size_t i = 0; i < o.n; i++)
		serf_layer_on_user_msg(pyl, o.msgs[i].p, o.msgs[i].len, 0);
	for (size_t i = 0; i < o2.n; i++) {
		snprintf(nm, sizeof nm, "py-%zu-type%d", i, o2.msgs[i].p[0]);
		putb("serf", nm, &o2.msgs[i]);
	}
	/* a chain: everything s1 said, as one input */
	put_chain("serf", "chain-s1", o.msgs, o.n);
	serf_layer_leave(sl, 0);
	if (o.n)
		putb("serf", "ours-leave", &o.msgs[o.n - 1]);
	/* extension message */
	put("serf", "ext-200", "\xc8\x90", 2);

	int l = serf_encode_tags(web, 2, 4, buf, sizeof buf);
	put("serf", "tags-web", buf, (size_t)l);
	put("serf", "tags-role-only", "web", 3);

	wbuf_free(&st);
	serf_layer_free(sl);
	serf_layer_free(pyl);
	ob_free(&o);
	ob_free(&o2);
}

/* ------------------------------------------------------------ will */

static int ue_ok(void *ctx, const char *name, const uint8_t *p, size_t len, int64_t now)
{
	(void)ctx;
	(void)name;
	(void)p;
	(void)len;
	(void)now;
	return 0;
}

static struct will *wnew(const char *name, struct outbox *o, const char *path)
{
	struct will_config cfg;
	will_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "%s", name);
	cfg.state_path = path;
	cfg.out.ctx = o;
	cfg.out.broadcast = ob_broadcast;
	cfg.out.send_to = ob_send_to;
	cfg.out.user_event = ue_ok;
	struct will *w = will_new(&cfg, 0);
	if (!w)
		die("will_new");
	return w;
}

static void will_seeds(void)
{
	struct outbox oa = { .n = 0 }, os = { .n = 0 }, op = { .n = 0 };
	char nm[64], dir[] = "/tmp/gen_seeds.XXXXXX", path[128];
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(path, sizeof path, "%s/py.will", dir);

	struct swim_member m[4];
	const char *names[4] = { "py", "s1", "a", "b" };
	for (int i = 0; i < 4; i++) {
		memset(&m[i], 0, sizeof m[i]);
		snprintf(m[i].name, sizeof m[i].name, "%s", names[i]);
		m[i].addr = A4((uint8_t)(i + 1), 7946);
		m[i].incarnation = 1;
		m[i].state = SWIM_ALIVE;
	}
	struct will *wa = wnew("a", &oa, NULL), *ws = wnew("s1", &os, NULL),
		    *wp = wnew("py", &op, path);
	struct will *all[3] = { wa, ws, wp };
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 4; i++)
			will_on_member(all[k], SWIM_EV_JOIN, &m[i], 0);

	/* a: a member will for py, b: an event will (made by hand below) */
	will_set(wa, "py", NULL, 1000, (const uint8_t *)"bye", 3, 0);
	for (size_t i = 0; i < oa.n; i++) {
		will_handle_msg(ws, oa.msgs[i].p, oa.msgs[i].len, 0);
		will_handle_msg(wp, oa.msgs[i].p, oa.msgs[i].len, 0);
	}
	/* a dies: s1 (a holder, not the recipient) sends DELIVER to py */
	struct swim_member dead = m[2];
	dead.state = SWIM_DEAD;
	for (int64_t t = 0; t < 120000; t += 500) {
		if (t == 500) {
			will_on_member(ws, SWIM_EV_LEAVE, &dead, t);
			will_on_member(wp, SWIM_EV_LEAVE, &dead, t);
		}
		will_tick(ws, t);
		will_tick(wp, t);
	}
	for (size_t i = 0; i < os.n; i++)
		will_handle_msg(wp, os.msgs[i].p, os.msgs[i].len, 120000);
	struct outbox *obs[3] = { &oa, &os, &op };
	const char *on[3] = { "a", "s1", "py" };
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < obs[k]->n; i++) {
			snprintf(nm, sizeof nm, "%s-%zu-type%d", on[k], i, obs[k]->msgs[i].p[0]);
			putb("will", nm, &obs[k]->msgs[i]);
		}
	/* an event will by py itself, then the state records and state file */
	will_set(wp, NULL, "wevt", 0, (const uint8_t *)"gone", 4, 120000);
	struct wbuf st;
	wbuf_init(&st);
	will_local_state(wp, false, &st);
	/* records as the target reads them: [type][body] (no length) */
	size_t off = 0;
	int rec = 0;
	while (off + 5 <= st.len) {
		uint32_t l = (uint32_t)st.p[off + 1] << 24 | (uint32_t)st.p[off + 2] << 16 |
			     (uint32_t)st.p[off + 3] << 8 | st.p[off + 4];
		struct wbuf r;
		wbuf_init(&r);
		wbuf_append(&r, st.p + off, 1);
		wbuf_append(&r, st.p + off + 5, l);
		snprintf(nm, sizeof nm, "record-%d-type%d", rec++, st.p[off]);
		putb("will", nm, &r);
		wbuf_free(&r);
		off += 5 + (size_t)l;
	}
	/* the state file: body only (the target adds magic, length, CRC), and
	 * the body followed by the messages */
	if (will_save(wp, path) == WILL_OK) {
		FILE *f = fopen(path, "rb");
		uint8_t fb[8192];
		size_t fl = f ? fread(fb, 1, sizeof fb, f) : 0;
		if (f)
			fclose(f);
		if (fl > 12) {
			put("will", "state-body", fb + 8, fl - 12);
			struct wbuf parts[3];
			size_t np = 0;
			wbuf_init(&parts[np]);
			wbuf_append(&parts[np++], fb + 8, fl - 12);
			for (size_t i = 0; i < oa.n && np < 3; i++) {
				wbuf_init(&parts[np]);
				wbuf_append(&parts[np++], oa.msgs[i].p, oa.msgs[i].len);
			}
			for (size_t i = 0; i < os.n && np < 3; i++) {
				wbuf_init(&parts[np]);
				wbuf_append(&parts[np++], os.msgs[i].p, os.msgs[i].len);
			}
			put_chain("will", "chain-state-version-deliver", parts, np);
			for (size_t i = 0; i < np; i++)
				wbuf_free(&parts[i]);
		}
	}
	unlink(path);
	char tmp[160];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	snprintf(tmp, sizeof tmp, "%s.key", path); /* py's will key (will_key.h) */
	unlink(tmp);
	rmdir(dir);
	wbuf_free(&st);
	will_free(wa);
	will_free(ws);
	will_free(wp);
	ob_free(&oa);
	ob_free(&os);
	ob_free(&op);
}

/* ------------------------------------------------------------ rpc */

static int sb_write(void *data, const char *buf, size_t len)
{
	return wbuf_append(data, buf, len) == 0 ? 0 : -1;
}

static void pk_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void hdr(msgpack_packer *pk, const char *cmd, uint64_t seq)
{
	msgpack_pack_map(pk, 2);
	pk_s(pk, "Command");
	pk_s(pk, cmd);
	pk_s(pk, "Seq");
	msgpack_pack_uint64(pk, seq);
}

static void rpc_seeds(void)
{
	struct wbuf b;
	msgpack_packer pk;
	wbuf_init(&b);
	msgpack_packer_init(&pk, &b, sb_write);

	/* handshake + members, the first thing `serf members` sends */
	hdr(&pk, "handshake", 0);
	msgpack_pack_map(&pk, 1);
	pk_s(&pk, "Version");
	msgpack_pack_int(&pk, 1);
	hdr(&pk, "members", 1);
	putb("rpc", "handshake-members", &b);

	const char *simple[] = { "members", "leave", "stats", "stop", "get-coordinate",
				 "will-clear", "list-keys" };
	for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
		char nm[64];
		wbuf_reset(&b);
		hdr(&pk, "handshake", 0);
		msgpack_pack_map(&pk, 1);
		pk_s(&pk, "Version");
		msgpack_pack_int(&pk, 1);
		hdr(&pk, simple[i], 2);
		snprintf(nm, sizeof nm, "cmd-%s", simple[i]);
		putb("rpc", nm, &b);
	}

	wbuf_reset(&b);
	hdr(&pk, "event", 3);
	msgpack_pack_map(&pk, 3);
	pk_s(&pk, "Name");
	pk_s(&pk, "deploy");
	pk_s(&pk, "Payload");
	msgpack_pack_bin(&pk, 2);
	msgpack_pack_bin_body(&pk, "v1", 2);
	pk_s(&pk, "Coalesce");
	msgpack_pack_true(&pk);
	putb("rpc", "event", &b);

	wbuf_reset(&b);
	hdr(&pk, "query", 4);
	msgpack_pack_map(&pk, 7);
	pk_s(&pk, "FilterNodes");
	msgpack_pack_array(&pk, 1);
	pk_s(&pk, "a");
	pk_s(&pk, "FilterTags");
	msgpack_pack_map(&pk, 1);
	pk_s(&pk, "role");
	pk_s(&pk, "w.*");
	pk_s(&pk, "RequestAck");
	msgpack_pack_true(&pk);
	pk_s(&pk, "Timeout");
	msgpack_pack_int64(&pk, 2000000000LL);
	pk_s(&pk, "Name");
	pk_s(&pk, "uptime");
	pk_s(&pk, "Payload");
	msgpack_pack_nil(&pk);
	pk_s(&pk, "RelayFactor");
	msgpack_pack_uint8(&pk, 2);
	putb("rpc", "query", &b);

	wbuf_reset(&b);
	hdr(&pk, "join", 5);
	msgpack_pack_map(&pk, 2);
	pk_s(&pk, "Existing");
	msgpack_pack_array(&pk, 2);
	pk_s(&pk, "127.0.0.1:7946");
	pk_s(&pk, "[::1]:7946");
	pk_s(&pk, "Replay");
	msgpack_pack_false(&pk);
	putb("rpc", "join", &b);

	wbuf_reset(&b);
	hdr(&pk, "tags", 6);
	msgpack_pack_map(&pk, 2);
	pk_s(&pk, "Tags");
	msgpack_pack_map(&pk, 1);
	pk_s(&pk, "role");
	pk_s(&pk, "db");
	pk_s(&pk, "DeleteTags");
	msgpack_pack_array(&pk, 1);
	pk_s(&pk, "dc");
	putb("rpc", "tags", &b);

	wbuf_reset(&b);
	hdr(&pk, "stream", 7);
	msgpack_pack_map(&pk, 1);
	pk_s(&pk, "Type");
	pk_s(&pk, "member-join,user:deploy");
	hdr(&pk, "monitor", 8);
	msgpack_pack_map(&pk, 1);
	pk_s(&pk, "LogLevel");
	pk_s(&pk, "DEBUG");
	putb("rpc", "stream-monitor", &b);

	wbuf_reset(&b);
	hdr(&pk, "will-set", 9);
	msgpack_pack_map(&pk, 3);
	pk_s(&pk, "To");
	pk_s(&pk, "py");
	pk_s(&pk, "Delay");
	msgpack_pack_int64(&pk, 1000);
	pk_s(&pk, "Payload");
	msgpack_pack_bin(&pk, 3);
	msgpack_pack_bin_body(&pk, "bye", 3);
	putb("rpc", "will-set", &b);

	wbuf_reset(&b);
	hdr(&pk, "install-key", 10);
	msgpack_pack_map(&pk, 1);
	pk_s(&pk, "Key");
	pk_s(&pk, KEYS[0]);
	hdr(&pk, "respond", 11);
	msgpack_pack_map(&pk, 2);
	pk_s(&pk, "ID");
	msgpack_pack_uint32(&pk, 7);
	pk_s(&pk, "Payload");
	msgpack_pack_bin(&pk, 0);
	putb("rpc", "key-respond", &b);

	wbuf_reset(&b);
	hdr(&pk, "force-leave", 12);
	msgpack_pack_map(&pk, 2);
	pk_s(&pk, "Node");
	pk_s(&pk, "b");
	pk_s(&pk, "Prune");
	msgpack_pack_true(&pk);
	hdr(&pk, "auth", 13);
	msgpack_pack_map(&pk, 1);
	pk_s(&pk, "AuthKey");
	pk_s(&pk, "secret");
	putb("rpc", "force-leave-auth", &b);
	wbuf_free(&b);
}

/* ------------------------------------------------------------ config */

static void config_seeds(void)
{
	static const struct {
		const char *name, *text;
	} docs[] = {
		{ "basic", "{\"node_name\": \"py\", \"bind\": \"127.0.0.1:7946\", "
			   "\"tags\": {\"role\": \"web\", \"dc\": \"x\"}, \"protocol\": 4}" },
		{ "lists", "{\"start_join\": [\"127.0.0.1:7946\", \"[::1]:7947\"], "
			   "\"retry_join\": [\"a\"], \"event_handlers\": [\"user:deploy=./x.sh\"], "
			   "\"retry_interval\": \"1m30s\", \"retry_max_attempts\": 3}" },
		{ "security", "{\"encrypt_key\": \"ko43TPtIyMXxwgs0+ePXrQ==\", "
			      "\"keyring_file\": \"/tmp/k\", \"rpc_addr\": \"127.0.0.1:7373\", "
			      "\"rpc_auth\": \"s\", \"log_level\": \"debug\"}" },
		{ "flags", "{\"replay_on_join\": true, \"leave_on_terminate\": false, "
			   "\"skip_leave_on_interrupt\": true, \"rejoin_after_leave\": true, "
			   "\"broadcast_timeout\": \"5s\", \"event_handler_timeout\": \"1.5h\", "
			   "\"snapshot_path\": \"/tmp/s\", \"enable_compression\": true}" },
		{ "durations", "{}\n300ms\n-1.5h\n1h2m3.5s\n2562047h47m16.854775807s\n0\n.5us\n"
			       "1µs\n-node\nx\n-retry-interval=2s\n--join=a\n-join\nb\n-replay\n" },
		{ "bad-key", "{\"nodename\": 1}" },
		{ "flags-argv", "-node=py\n-replay=false\n-retry-max\n0x10\n-join\n1.2.3.4\n--\nrest" },
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
		put("config", docs[i].name, docs[i].text, strlen(docs[i].text));
}

/* ---------------------------------------------------------- snapshot */

static void snapshot_seeds(void)
{
	/* serf-written logs, as serf/snapshot.go appends them */
	static const struct {
		const char *name, *text;
	} logs[] = {
		{ "serf-log", "alive: s1 127.0.0.1:7946\nclock: 3\nalive: s2 127.0.0.1:7947\n"
			      "alive: s3 [::1]:7948\nevent-clock: 5\nquery-clock: 2\n"
			      "not-alive: s2\ncoordinate: 0.1 0.2\nclock: 9\n" },
		{ "serf-leave", "alive: a 1.1.1.1:1\nclock: 4\nleave\nclock: 5\n"
				"alive: b 2.2.2.2:2\n" },
		{ "serf-partial", "alive: a 10.0.0.1:7946\nclock: 12\nalive: b 10.0.0.2:79" },
		{ "serf-comment", "# written by hand\nalive: n\xc3\xb6" "de 1.1.1.1:1\n" },
		{ "empty", "" },
	};
	for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++)
		put("snapshot", logs[i].name, logs[i].text, strlen(logs[i].text));

	/* what vigil's snapshotter writes: with and without an earlier leave */
	const struct snap_node pre[] = { { "old", "192.168.1.9:7946" } };
	const struct snap_node alive[] = { { "a", "127.0.0.1:7946" },
					   { "b", "[fe80::1]:7947" } };
	const char *const gone[] = { "c" };
	struct snap_image img = {
		.alive = alive, .n_alive = 2, .not_alive = gone, .n_not_alive = 1,
		.clock = 41, .event_clock = 7, .query_clock = 3,
	};
	char *file;
	size_t len;
	for (int variant = 0; variant < 2; variant++) {
		if (variant == 1) {
			img.has_prefix = true;
			img.pre_alive = pre;
			img.n_pre_alive = 1;
			img.pre_clock = 11;
			img.leave = true;
			img.clock_after_leave = 42;
		}
		if (snap_render(&img, &file, &len) != SNAP_OK)
			die("snap_render failed");
		put("snapshot", variant ? "vigil-after-leave" : "vigil", file, len);
		free(file);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	memberlist_seeds();
	stream_seeds();
	lzw_seeds();
	crypto_seeds();
	serf_seeds();
	will_seeds();
	rpc_seeds();
	config_seeds();
	snapshot_seeds();
	printf("gen_seeds: wrote %d files under %s\n", written, root);
	return 0;
}
