/*
 * fuzz_serf — the Serf gossip layer (src/serf.c) on hostile user messages
 * and push-pull state, plus the node-meta tag codec.
 *
 * Each input runs against a fresh serf_layer named "py" (tag role=web) that
 * knows members py, s1 (127.0.0.1:32819, the query source in the serf
 * captures), a and b, has an extension installed (types >= 200) and a
 * no-op outbox.  Queries shown to the application are answered from inside
 * the callback, as an application would.  The input is cut at every "VSEP"
 * into segments (one segment when there is none); each segment, in its own
 * heap block, goes to
 *   serf_layer_on_user_msg, serf_layer_merge_remote_state (join alternating)
 *   and serf_decode_tags,
 * and then the clock runs through every serf deadline.
 *
 * Oracles, beyond the sanitizers:
 *   - the three Lamport clocks never go backwards; we stay a member, alive;
 *     every member has a valid NUL-terminated name and a known status;
 *   - what serf_layer_local_state produces merges into a fresh layer
 *     without a decode error (we can read our own push-pull);
 *   - everything the layer sends or broadcasts is a serf message type we
 *     know (0..9) or an extension type (>= 200), and events carry sane
 *     fields;
 *   - tags: decode -> encode (protocol 4) -> decode gives the same tags, and
 *     meta without the magic byte encodes back to itself under protocol 2.
 */
#include "fuzz_common.h"
#include "serf.h"

#define SEP "VSEP"
#define SEP_LEN 4

struct ctx {
	struct serf_layer *sl;
	int64_t now;
	size_t events, sent;
};

static void check_out(const uint8_t *msg, size_t len)
{
	FUZZ_ASSERT(len >= 1);
	FUZZ_ASSERTF(msg[0] <= SERF_MSG_RELAY || msg[0] >= SERF_EXT_TYPE_MIN,
		     "layer sent a message of type %d", msg[0]);
	fuzz_touch(msg, len);
}

static void o_broadcast(void *vctx, const uint8_t *msg, size_t len)
{
	struct ctx *c = vctx;
	c->sent++;
	check_out(msg, len);
}

static void o_send_to(void *vctx, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	struct ctx *c = vctx;
	c->sent++;
	FUZZ_ASSERT(to != NULL);
	FUZZ_ASSERT(to->ip_len == 4 || to->ip_len == 16);
	check_out(msg, len);
}

static void o_set_meta(void *vctx, const uint8_t *meta, size_t len)
{
	(void)vctx;
	FUZZ_ASSERT(len <= WIRE_META_MAX);
	fuzz_touch(meta, len);
}

static void o_reconnect(void *vctx, const char *name, const struct wire_addr *addr)
{
	(void)vctx;
	FUZZ_ASSERT(name && name[0]);
	FUZZ_ASSERT(addr != NULL);
}

static void o_log(void *vctx, int level, const char *msg)
{
	(void)vctx;
	FUZZ_ASSERT(level >= 0 && level <= 3);
	fuzz_touch(msg, strlen(msg));
}

static void check_member(const struct vigil_member *m)
{
	size_t l = fuzz_cstr(m->name, sizeof m->name);
	FUZZ_ASSERT(l >= 1);
	fuzz_cstr(m->addr, sizeof m->addr);
	FUZZ_ASSERT(m->status >= VIGIL_STATUS_NONE && m->status <= VIGIL_STATUS_FAILED);
	FUZZ_ASSERT(m->n_tags <= VIGIL_MAX_TAGS);
	for (size_t i = 0; i < m->n_tags; i++) {
		FUZZ_ASSERT(m->tags[i].key && m->tags[i].value);
		fuzz_touch(m->tags[i].key, strlen(m->tags[i].key));
		fuzz_touch(m->tags[i].value, strlen(m->tags[i].value));
	}
}

static void on_event(void *vctx, const struct vigil_event *ev)
{
	struct ctx *c = vctx;
	c->events++;
	FUZZ_ASSERT(ev->type >= VIGIL_EV_MEMBER_JOIN && ev->type <= VIGIL_EV_LOCAL_STALL);
	if (ev->member)
		check_member(ev->member);
	if (ev->name)
		fuzz_touch(ev->name, strlen(ev->name));
	fuzz_touch(ev->payload, ev->payload_len);
	if (ev->type == VIGIL_EV_QUERY) {
		int rc = serf_layer_respond(c->sl, ev->id, (const uint8_t *)"pong", 4, c->now);
		FUZZ_ASSERT(rc <= 0);
	}
}

static bool internal_query(void *vctx, struct serf_layer *sl, const struct serf_query_in *q,
			   int64_t now)
{
	(void)vctx;
	FUZZ_ASSERT(q->name && strncmp(q->name, SERF_INTERNAL_QUERY_PREFIX, 6) == 0);
	fuzz_touch(q->payload, q->payload_len);
	if (q->source_node)
		fuzz_touch(q->source_node, strlen(q->source_node));
	/* answer half of them */
	if (q->id & 1)
		FUZZ_ASSERT(serf_layer_respond(sl, q->id, NULL, 0, now) <= 0);
	return q->id & 1;
}

static void x_on_msg(void *vctx, const uint8_t *p, size_t len, int64_t now)
{
	(void)vctx;
	(void)now;
	FUZZ_ASSERT(len >= 1 && p[0] >= SERF_EXT_TYPE_MIN);
	fuzz_touch(p, len);
}

static void x_local_state(void *vctx, bool join, struct wbuf *out)
{
	(void)vctx;
	(void)join;
	static const uint8_t rec[] = "ext-state";
	FUZZ_ASSERT(serf_ext_state_record(out, 201, rec, sizeof rec - 1) == SERF_OK);
}

static void x_merge_state(void *vctx, uint8_t type, const uint8_t *p, size_t len, bool join,
			  int64_t now)
{
	(void)vctx;
	(void)join;
	(void)now;
	FUZZ_ASSERT(type >= SERF_EXT_TYPE_MIN);
	fuzz_touch(p, len);
}

static struct swim_member member(const char *name, uint8_t d, uint16_t port, int proto,
				 const struct vigil_tag *tags, size_t n)
{
	struct swim_member m;
	static const uint8_t vsn[6] = { 1, 5, 2, 2, 5, 4 };
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "%s", name);
	m.addr.ip[0] = 127;
	m.addr.ip[3] = d;
	m.addr.ip_len = 4;
	m.addr.port = port;
	int l = serf_encode_tags(tags, n, proto, m.meta, sizeof m.meta);
	FUZZ_ASSERT(l >= 0);
	m.meta_len = (uint16_t)l;
	m.incarnation = 1;
	m.state = SWIM_ALIVE;
	memcpy(m.vsn, vsn, 6);
	return m;
}

struct clocks {
	uint64_t member, event, query;
};

/* Cheap checks after every step; `full` adds the member table walk. */
static void invariants(const struct serf_layer *sl, struct clocks *last, bool full)
{
	struct clocks c;
	serf_layer_clocks(sl, &c.member, &c.event, &c.query);
	FUZZ_ASSERTF(c.member >= last->member, "member clock %llu -> %llu",
		     (unsigned long long)last->member, (unsigned long long)c.member);
	FUZZ_ASSERTF(c.event >= last->event, "event clock %llu -> %llu",
		     (unsigned long long)last->event, (unsigned long long)c.event);
	FUZZ_ASSERTF(c.query >= last->query, "query clock %llu -> %llu",
		     (unsigned long long)last->query, (unsigned long long)c.query);
	*last = c;
	FUZZ_ASSERT(serf_layer_member_count(sl) >= 1);
	FUZZ_ASSERTF(serf_layer_member_status(sl, "py") == VIGIL_STATUS_ALIVE,
		     "self status %d", (int)serf_layer_member_status(sl, "py"));
	FUZZ_ASSERT(!serf_layer_is_leaving(sl));
	if (!full)
		return;
	struct vigil_member *ms;
	size_t n;
	FUZZ_ASSERT(serf_layer_members(sl, &ms, &n) == SERF_OK);
	FUZZ_ASSERT(n == serf_layer_member_count(sl));
	for (size_t i = 0; i < n; i++) {
		check_member(&ms[i]);
		FUZZ_ASSERT(ms[i].status != VIGIL_STATUS_NONE);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERTF(strcmp(ms[i].name, ms[j].name) != 0, "member %s twice", ms[i].name);
	}
	serf_layer_members_free(ms, n);
}

static bool tags_eq(const struct vigil_tag *a, size_t na, const struct vigil_tag *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0)
			return false;
	return true;
}

static void check_tags(const uint8_t *meta, size_t len)
{
	struct vigil_tag *t = NULL, *t2 = NULL;
	size_t n = 0, n2 = 0;
	int rc = serf_decode_tags(meta, len, &t, &n);
	/* (SERF_ENOMEM too: msgpack-c reports nesting deeper than 32 as NOMEM) */
	FUZZ_ASSERT(rc == SERF_OK || rc == SERF_EFORMAT || rc == SERF_ETOOBIG || rc == SERF_ENOMEM);
	if (rc != SERF_OK) {
		FUZZ_ASSERT(t == NULL && n == 0);
		return;
	}
	FUZZ_ASSERT(n <= VIGIL_MAX_TAGS);
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(t[i].key && t[i].value);
		if (i)
			FUZZ_ASSERTF(strcmp(t[i - 1].key, t[i].key) < 0, "tags not sorted/unique");
	}
	static uint8_t buf[1 << 16];
	int l = serf_encode_tags(t, n, 4, buf, sizeof buf);
	FUZZ_ASSERTF(l >= 0, "re-encoding decoded tags: %d", l);
	FUZZ_ASSERT(serf_decode_tags(buf, (size_t)l, &t2, &n2) == SERF_OK);
	FUZZ_ASSERTF(tags_eq(t, n, t2, n2), "tags changed in a decode/encode/decode roundtrip");
	serf_tags_free(t2, n2);
	if (len == 0 || meta[0] != SERF_TAG_MAGIC) {
		FUZZ_ASSERT(n == 1 && strcmp(t[0].key, "role") == 0);
		l = serf_encode_tags(t, n, 2, buf, sizeof buf);
		FUZZ_ASSERT(l >= 0 && (size_t)l == len && memcmp(buf, meta, len) == 0);
	}
	serf_tags_free(t, n);
}

static struct serf_layer *make_layer(struct ctx *c, const char *name)
{
	static const struct vigil_tag tags[] = { { "role", "web" }, { "dc", "fuzz" } };
	struct serf_layer_config cfg;
	serf_layer_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "%s", name);
	cfg.tags = tags;
	cfg.n_tags = 2;
	cfg.on_event = on_event;
	cfg.event_ctx = c;
	cfg.out.ctx = c;
	cfg.out.broadcast = o_broadcast;
	cfg.out.send_to = o_send_to;
	cfg.out.set_meta = o_set_meta;
	cfg.out.reconnect = o_reconnect;
	cfg.out.log = o_log;
	cfg.internal_query = internal_query;
	cfg.seed = 42;
	/* Small rings (serf's default is 512): cheaper per input, and the
	 * fuzzer reaches wrap-around and eviction sooner. */
	cfg.event_buffer = 16;
	cfg.query_buffer = 16;
	struct serf_layer *sl = serf_layer_new(&cfg);
	FUZZ_ASSERT(sl != NULL);
	c->sl = sl;
	struct serf_extension ext = { c, x_on_msg, x_local_state, x_merge_state };
	serf_layer_set_extension(sl, &ext);
	return sl;
}

/* What we send in push-pull must merge cleanly into someone else. */
static void check_local_state(struct serf_layer *sl, int64_t now)
{
	struct wbuf st;
	struct ctx c2;
	wbuf_init(&st);
	serf_layer_local_state(sl, false, &st);
	FUZZ_ASSERT(!st.oom && st.len >= 1 && st.p[0] == SERF_MSG_PUSH_PULL);
	memset(&c2, 0, sizeof c2);
	c2.now = now;
	struct serf_layer *other = make_layer(&c2, "other");
	uint64_t before = serf_layer_stats(other)->decode_errors;
	serf_layer_merge_remote_state(other, st.p, st.len, true, now);
	FUZZ_ASSERTF(serf_layer_stats(other)->decode_errors == before,
		     "our own push-pull state (%zu bytes) did not decode", st.len);
	FUZZ_ASSERT(serf_layer_stats(other)->push_pull_merges == 1);
	serf_layer_free(other);
	wbuf_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct vigil_tag web[] = { { "role", "web" }, { "dc", "fuzz" } };
	static const struct vigil_tag py[] = { { "role", "py" } };
	struct ctx c;
	struct clocks clk = { 0, 0, 0 };

	memset(&c, 0, sizeof c);
	c.now = 1000000;
	struct serf_layer *sl = make_layer(&c, "py");
	struct swim_member ms[4] = {
		member("py", 2, 7946, 4, web, 2),
		member("s1", 1, 32819, 4, py, 1),
		member("a", 3, 7946, 4, web, 1),
		member("b", 4, 7947, 2, py, 1),
	};
	for (int i = 0; i < 4; i++)
		serf_layer_on_member(sl, SWIM_EV_JOIN, &ms[i], c.now);
	invariants(sl, &clk, true);

	const uint8_t *p = data, *end = data + size;
	for (int seg = 0; p <= end && seg < 64; seg++) {
		const uint8_t *s = memmem(p, (size_t)(end - p), SEP, SEP_LEN);
		size_t n = s ? (size_t)(s - p) : (size_t)(end - p);
		uint8_t *d = fuzz_dup(p, n);
		c.now += 100;
		serf_layer_on_user_msg(sl, d, n, c.now);
		invariants(sl, &clk, false);
		serf_layer_merge_remote_state(sl, d, n, seg & 1, c.now);
		invariants(sl, &clk, true);
		check_tags(d, n);
		free(d);
		if (!s)
			break;
		p = s + SEP_LEN;
	}

	/* b fails, a updates, then time passes through every serf deadline */
	serf_layer_on_member(sl, SWIM_EV_LEAVE, &ms[3], c.now);
	serf_layer_on_member(sl, SWIM_EV_UPDATE, &ms[2], c.now);
	invariants(sl, &clk, false);
	for (int i = 0; i < 12; i++) {
		int64_t next = serf_layer_next_deadline(sl);
		if (next <= c.now)
			next = c.now + 1;
		if (next > c.now + 3600 * 1000)
			next = c.now + 3600 * 1000;
		c.now = next;
		serf_layer_tick(sl, c.now);
		invariants(sl, &clk, false);
	}
	invariants(sl, &clk, true);
	check_local_state(sl, c.now);
	c.now += 25LL * 3600 * 1000;
	serf_layer_tick(sl, c.now);
	invariants(sl, &clk, true);
	serf_layer_free(sl);
	return 0;
}
