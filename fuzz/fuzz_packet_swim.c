/*
 * fuzz_packet_swim — garbage into a real SWIM state machine.
 *
 * Each input runs against a fresh `struct swim` (swim_config_default, named
 * "fake" like the node in the serf captures of tests/unit/wire_vectors.h,
 * which already knows members "a" and "b" and has one push-pull join in
 * flight) with hooks that do no I/O.  The input is handed over as
 *   1. a datagram:               swim_handle_packet
 *   2. a stream message:         swim_handle_stream (push-pull gets a reply)
 *   3. the answer to our join:   swim_handle_stream_reply
 * and then the clock runs forward through every timer swim asks for (probe,
 * suspicion, gossip, push-pull, reap), a day and more.
 *
 * Invariants checked after every step:
 *   - at least one member; we are a member, alive, under our own name, and
 *     our incarnation never goes down;
 *   - every member: a NUL-terminated non-empty unique name that
 *     swim_member_find finds, meta within WIRE_META_MAX, a known state, an
 *     address of 0/4/16 bytes; swim_alive_count matches the table;
 *   - Lifeguard health stays within [0, awareness_max_multiplier);
 *   - everything swim sends is something we can parse: packets unwrap and
 *     every inner message decodes (the first few packets of each input:
 *     the timers repeat themselves), outgoing push-pulls and push-pull
 *     replies decode, a stream ping's reply survives the wire_check.h
 *     roundtrip.
 */
#include "fuzz_common.h"
#include "swim.h"
#include "wire_check.h"

struct ctx {
	struct swim *sw;
	uint64_t cookie;
	bool have_cookie;
	size_t sent;
};

static void check_out_msg(void *ctx, const uint8_t *msg, size_t len)
{
	(void)ctx;
	FUZZ_ASSERT(len >= 1);
	if (msg[0] == WIRE_USER)
		return; /* opaque payload (nothing queues user messages here) */
	/* (fuzz_packet does the full roundtrip check; decoding is enough here) */
	struct wire_msg m;
	int rc = wire_decode(msg, len, &m);
	FUZZ_ASSERTF(rc == WIRE_OK, "swim sent a type %d message it cannot decode: %s",
		     msg[0], wire_strerror(rc));
}

static void h_send_packet(void *vctx, const struct wire_addr *to, const uint8_t *pkt,
			  size_t len)
{
	struct ctx *c = vctx;
	c->sent++;
	FUZZ_ASSERT(to != NULL);
	FUZZ_ASSERT(to->ip_len == 0 || to->ip_len == 4 || to->ip_len == 16);
	FUZZ_ASSERT(len >= 1 && len <= WIRE_UDP_MAX);
	/* The timers send the same few shapes over and over: decoding the
	 * first packets of each input is enough and keeps the target fast. */
	if (c->sent > 4)
		return;
	int rc = wire_unwrap_packet(pkt, len, check_out_msg, NULL);
	FUZZ_ASSERTF(rc == WIRE_OK, "swim sent a packet it cannot unwrap: %s", wire_strerror(rc));
}

static void check_push_pull(const uint8_t *msg, size_t len, const char *what)
{
	struct wire_push_pull pp;
	FUZZ_ASSERT(len >= 1 && msg[0] == WIRE_PUSH_PULL);
	long fl = wire_stream_frame_len(msg, len);
	FUZZ_ASSERTF(fl == (long)len, "%s: frame length %ld for %zu bytes", what, fl, len);
	int rc = wire_decode_push_pull(msg, len, &pp);
	FUZZ_ASSERTF(rc == WIRE_OK, "%s does not decode: %s", what, wire_strerror(rc));
	FUZZ_ASSERT(pp.n_nodes >= 1);
	for (uint32_t i = 0; i < pp.n_nodes; i++) {
		FUZZ_ASSERT(pp.nodes[i].name.len >= 1);
		FUZZ_ASSERT(pp.nodes[i].state <= WIRE_STATE_LEFT);
	}
	wire_push_pull_free(&pp);
}

static void h_send_stream(void *vctx, const struct wire_addr *to, const uint8_t *msg,
			  size_t len, uint64_t cookie)
{
	struct ctx *c = vctx;
	(void)to;
	if (!c->have_cookie) {
		check_push_pull(msg, len, "outgoing push-pull");
		c->cookie = cookie;
		c->have_cookie = true;
	}
}

static void h_on_member(void *vctx, enum swim_member_event ev, const struct swim_member *m)
{
	(void)vctx;
	FUZZ_ASSERT(ev >= SWIM_EV_JOIN && ev <= SWIM_EV_REAP);
	size_t n = fuzz_cstr(m->name, sizeof m->name);
	FUZZ_ASSERTF(n >= 1 || fuzz_known("swim-nul-name"), "member event %d for an empty name",
		     (int)ev);
	FUZZ_ASSERT(m->meta_len <= WIRE_META_MAX);
	fuzz_touch(m->meta, m->meta_len);
}

static void h_on_user_msg(void *vctx, const uint8_t *p, size_t len)
{
	(void)vctx;
	fuzz_touch(p, len);
}

static void h_local_state(void *vctx, bool join, struct wbuf *out)
{
	(void)vctx;
	(void)join;
	static const uint8_t st[] = { 0x02, 0x80 }; /* serf push-pull type + {} */
	wbuf_append(out, st, sizeof st);
}

static void h_merge_remote_state(void *vctx, const uint8_t *p, size_t len, bool join)
{
	(void)vctx;
	(void)join;
	fuzz_touch(p, len);
}

static void h_join_result(void *vctx, const struct wire_addr *seed, bool ok)
{
	(void)vctx;
	(void)ok;
	FUZZ_ASSERT(seed != NULL);
}

static void h_log(void *vctx, int level, const char *msg)
{
	(void)vctx;
	FUZZ_ASSERT(level >= 0 && level <= 3);
	fuzz_touch(msg, strlen(msg));
}

static void invariants(const struct swim *sw, const struct swim_config *cfg,
		       uint32_t *self_inc)
{
	size_t n = swim_member_count(sw), alive = 0;
	FUZZ_ASSERT(n >= 1);
	const struct swim_member *self = swim_self(sw);
	FUZZ_ASSERT(self != NULL);
	FUZZ_ASSERT(strcmp(self->name, cfg->name) == 0);
	FUZZ_ASSERTF(self->state == SWIM_ALIVE, "self is in state %d", (int)self->state);
	FUZZ_ASSERTF(self->incarnation >= *self_inc, "self incarnation went from %u to %u",
		     *self_inc, self->incarnation);
	*self_inc = self->incarnation;
	FUZZ_ASSERT(swim_member_find(sw, cfg->name) == self);
	bool self_seen = false;
	for (size_t i = 0; i < n; i++) {
		const struct swim_member *m = swim_member_at(sw, i);
		FUZZ_ASSERT(m != NULL);
		size_t l = fuzz_cstr(m->name, sizeof m->name);
		FUZZ_ASSERTF((l >= 1 || fuzz_known("swim-nul-name")) && l <= WIRE_NAME_MAX,
			     "member %zu has a name of %zu bytes", i, l);
		FUZZ_ASSERTF(swim_member_find(sw, m->name) == m, "member %zu (%s) not found by name",
			     i, m->name);
		FUZZ_ASSERT(m->meta_len <= WIRE_META_MAX);
		FUZZ_ASSERT(m->state >= SWIM_ALIVE && m->state <= SWIM_LEFT);
		FUZZ_ASSERT(m->addr.ip_len == 0 || m->addr.ip_len == 4 || m->addr.ip_len == 16);
		if (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT)
			alive++;
		if (m == self)
			self_seen = true;
	}
	FUZZ_ASSERT(self_seen);
	FUZZ_ASSERTF(swim_alive_count(sw) == alive, "alive count %zu, table says %zu",
		     swim_alive_count(sw), alive);
	int h = swim_health(sw);
	FUZZ_ASSERT(h >= 0 && h < cfg->awareness_max_multiplier);
	const struct swim_stats *st = swim_stats(sw);
	FUZZ_ASSERT(st != NULL);
}

static struct wire_addr v4(uint8_t d, uint16_t port)
{
	struct wire_addr a;
	memset(&a, 0, sizeof a);
	a.ip[0] = 127;
	a.ip[3] = d;
	a.ip_len = 4;
	a.port = port;
	return a;
}

/* Teach swim about members "a" and "b" the way a peer would. */
static void prime(struct swim *sw, int64_t now)
{
	static const char *names[2] = { "a", "b" };
	static const uint8_t vsn[6] = { 1, 5, 2, 2, 5, 4 };
	/* serf tags {"role": "web"}, as every serf member carries */
	static const uint8_t meta[] = { 0xff, 0x81, 0xa4, 'r', 'o', 'l', 'e', 0xa3, 'w', 'e', 'b' };
	struct wbuf enc[2], pkt;
	struct wire_bytes parts[2];
	wbuf_init(&pkt);
	for (int i = 0; i < 2; i++) {
		struct wire_msg m;
		memset(&m, 0, sizeof m);
		m.type = WIRE_ALIVE;
		m.u.alive.incarnation = 1;
		m.u.alive.node.p = (const uint8_t *)names[i];
		m.u.alive.node.len = 1;
		m.u.alive.addr = v4(1, (uint16_t)(7946 + i));
		m.u.alive.meta.p = meta;
		m.u.alive.meta.len = sizeof meta;
		memcpy(m.u.alive.vsn, vsn, 6);
		m.u.alive.vsn_len = 6;
		wbuf_init(&enc[i]);
		FUZZ_ASSERT(wire_encode(&enc[i], &m) == WIRE_OK);
		parts[i].p = enc[i].p;
		parts[i].len = (uint32_t)enc[i].len;
	}
	FUZZ_ASSERT(wire_make_compound(&pkt, parts, 2) == WIRE_OK);
	struct wire_addr from = v4(1, 7946);
	swim_handle_packet(sw, &from, pkt.p, pkt.len, now);
	wbuf_free(&enc[0]);
	wbuf_free(&enc[1]);
	wbuf_free(&pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct swim_config cfg;
	struct ctx c;
	struct swim_hooks hooks = {
		.ctx = &c,
		.send_packet = h_send_packet,
		.send_stream = h_send_stream,
		.on_member = h_on_member,
		.on_user_msg = h_on_user_msg,
		.local_state = h_local_state,
		.merge_remote_state = h_merge_remote_state,
		.join_result = h_join_result,
		.log = h_log,
	};
	int64_t now = 1000000;
	uint32_t inc = 0;

	memset(&c, 0, sizeof c);
	swim_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "fake");
	cfg.addr = v4(1, 7950);
	c.sw = swim_new(&cfg, &hooks, now);
	FUZZ_ASSERT(c.sw != NULL);
	struct swim *sw = c.sw;
	invariants(sw, &cfg, &inc);
	prime(sw, now);
	FUZZ_ASSERT(swim_member_count(sw) == 3);
	invariants(sw, &cfg, &inc);
	struct wire_addr seed = v4(1, 7946);
	swim_join(sw, &seed, 1, now);
	FUZZ_ASSERT(c.have_cookie);

	/* 1. datagram */
	struct wire_addr from = v4(2, 7946);
	swim_handle_packet(sw, &from, data, size, now);
	invariants(sw, &cfg, &inc);

	/* 2. stream message */
	struct wbuf reply;
	wbuf_init(&reply);
	int rc = swim_handle_stream(sw, &from, data, size, &reply, now);
	FUZZ_ASSERT(rc <= 0);
	if (rc == WIRE_OK && reply.len > 0) {
		if (reply.p[0] == WIRE_PUSH_PULL)
			check_push_pull(reply.p, reply.len, "push-pull reply");
		else
			FUZZ_ASSERT(wire_check_msg(reply.p, reply.len) == WIRE_OK);
	}
	wbuf_free(&reply);
	invariants(sw, &cfg, &inc);

	/* 3. the reply to our join's push-pull (and the same cookie again: a no-op) */
	swim_handle_stream_reply(sw, c.cookie, data, size, now);
	invariants(sw, &cfg, &inc);
	swim_handle_stream_reply(sw, c.cookie, data, size, now);

	/* 4. run the clock through whatever timers the input set up */
	for (int i = 0; i < 16; i++) {
		int64_t next = swim_next_deadline(sw);
		if (next <= now)
			next = now + 1;
		if (next > now + 3600 * 1000)
			next = now + 3600 * 1000;
		now = next;
		swim_tick(sw, now);
		invariants(sw, &cfg, &inc);
	}
	now += cfg.reap_interval_ms + 1000;
	swim_tick(sw, now);
	invariants(sw, &cfg, &inc);
	now += 2000;
	swim_tick(sw, now);
	invariants(sw, &cfg, &inc);

	swim_free(sw);
	return 0;
}
