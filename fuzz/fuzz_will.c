/*
 * fuzz_will — the last-will component (src/will.c) on hostile input.
 *
 * Each input runs against a fresh `struct will` named "py" that knows
 * members py, s1, a and b.  Will messages are signed (will.h); this build
 * (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) lets a signature whose first
 * byte is 0 pass, so mutations get past the check, while the seeds' real
 * signatures and the component's own go through OpenSSL.  Key binding is
 * real: the first key seen for a member is the one that counts, a later
 * other key is refused.  The input is cut at every "VSEP" into segments
 * (one when there is none):
 *   - the first segment, wrapped in a valid state-file envelope ("VWIL",
 *     length, CRC-32), is loaded with will_load (from a memfd) before any
 *     traffic, as the glue does at start-up; the raw segment is loaded too;
 *   - every segment goes to will_handle_msg (an extension message, p[0] is
 *     the type) and to will_merge_state (p[0] the record type, the rest its
 *     body);
 * a is dead from the start (a delivery is only taken while the owner is
 * dead here); then b dies, s1 leaves, and the clock runs through every
 * deadline the component asks for, and a comes back.
 *
 * Oracles, beyond the sanitizers:
 *   - will_list entries are well formed (NUL-terminated names, exactly one
 *     of recipient/event, payload within VIGIL_WILL_MAX, seq >= 1);
 *   - what will_local_state produces is records that a fresh component
 *     (knowing the same members) merges without an error (we read our own
 *     push-pull), holding the same live wills afterwards;
 *   - every message sent starts with a serf extension type (>= 200) and
 *     every event is a will event with sane fields.
 */
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_common.h"
#include "will.h"

#define SEP "VSEP"
#define SEP_LEN 4

static int memfd = -1;
static char memfd_path[64];

static void o_msg(const uint8_t *msg, size_t len)
{
	FUZZ_ASSERT(len >= 2);
	/* serf extension types only (a stock serf agent drops those) */
	FUZZ_ASSERTF(msg[0] >= SERF_EXT_TYPE_MIN, "sent type %d", msg[0]);
	fuzz_touch(msg, len);
}

static void o_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	(void)ctx;
	o_msg(msg, len);
}

static void o_send_to(void *ctx, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	(void)ctx;
	FUZZ_ASSERT(to != NULL);
	o_msg(msg, len);
}

static int o_user_event(void *ctx, const char *name, const uint8_t *payload, size_t len,
			int64_t now)
{
	(void)ctx;
	(void)now;
	FUZZ_ASSERT(name && name[0]);
	FUZZ_ASSERT(strlen(name) <= WIRE_NAME_MAX);
	FUZZ_ASSERT(len <= VIGIL_WILL_MAX);
	fuzz_touch(payload, len);
	return 0;
}

static void o_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	FUZZ_ASSERT(level >= 0 && level <= 3);
	fuzz_touch(msg, strlen(msg));
}

static void on_event(void *ctx, const struct vigil_event *ev)
{
	(void)ctx;
	FUZZ_ASSERTF(ev->type == VIGIL_EV_MEMBER_WILL || ev->type == VIGIL_EV_WILL_REVOKED ||
			     ev->type == VIGIL_EV_WILL_UNDELIVERABLE ||
			     ev->type == VIGIL_EV_MEMBER_RETURNED,
		     "event type %d", (int)ev->type);
	if (ev->member)
		fuzz_cstr(ev->member->name, sizeof ev->member->name);
	if (ev->name)
		fuzz_touch(ev->name, strlen(ev->name));
	FUZZ_ASSERT(ev->payload_len <= VIGIL_WILL_MAX);
	fuzz_touch(ev->payload, ev->payload_len);
}

static struct will *make(const char *name, int64_t now)
{
	struct will_config cfg;
	will_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "%s", name);
	/* a fixed key: runs of one input stay identical */
	cfg.has_key_seed = true;
	snprintf((char *)cfg.key_seed, sizeof cfg.key_seed, "fuzz key %s", name);
	cfg.on_event = on_event;
	cfg.out.broadcast = o_broadcast;
	cfg.out.send_to = o_send_to;
	cfg.out.user_event = o_user_event;
	cfg.out.log = o_log;
	struct will *w = will_new(&cfg, now);
	FUZZ_ASSERT(w != NULL);
	return w;
}

static struct swim_member member(const char *name, uint8_t d, enum swim_state st,
				 uint32_t inc)
{
	struct swim_member m;
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "%s", name);
	m.addr.ip[0] = 127;
	m.addr.ip[3] = d;
	m.addr.ip_len = 4;
	m.addr.port = 7946;
	m.incarnation = inc;
	m.state = st;
	return m;
}

static void load_from(struct will *w, const uint8_t *p, size_t n)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz_will", 0);
		FUZZ_ASSERT(memfd >= 0);
		snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
	}
	FUZZ_ASSERT(ftruncate(memfd, 0) == 0);
	size_t off = 0;
	while (off < n) {
		ssize_t k = pwrite(memfd, p + off, n - off, (off_t)off);
		FUZZ_ASSERT(k > 0);
		off += (size_t)k;
	}
	int rc = will_load(w, memfd_path);
	FUZZ_ASSERTF(rc == WILL_OK || rc == WILL_EFORMAT, "will_load: %d", rc);
}

static void load(struct will *w, const uint8_t *body, size_t n)
{
	uint8_t *f = malloc(n + 12);
	FUZZ_ASSERT(f != NULL);
	memcpy(f, "VWIL", 4);
	f[4] = (uint8_t)(n >> 24);
	f[5] = (uint8_t)(n >> 16);
	f[6] = (uint8_t)(n >> 8);
	f[7] = (uint8_t)n;
	if (n)
		memcpy(f + 8, body, n);
	uint32_t crc = (uint32_t)crc32(0L, f + 8, (uInt)n);
	f[8 + n] = (uint8_t)(crc >> 24);
	f[9 + n] = (uint8_t)(crc >> 16);
	f[10 + n] = (uint8_t)(crc >> 8);
	f[11 + n] = (uint8_t)crc;
	load_from(w, f, n + 12);
	free(f);
}

static const char *const names[] = { "py", "s1", "a", "b" };

/* Live wills held of the four members (a state file may bind other names). */
static size_t live_wills(const struct will *w)
{
	size_t k = 0;
	for (int i = 0; i < 4; i++) {
		struct vigil_will_info *v = NULL;
		size_t n = 0;
		FUZZ_ASSERT(will_list(w, names[i], &v, &n) == WILL_OK);
		free(v);
		k += n;
	}
	return k;
}

static void invariants(const struct will *w)
{
	struct vigil_will_info *v = NULL;
	size_t n = 0;
	FUZZ_ASSERT(will_list(w, NULL, &v, &n) == WILL_OK);
	for (size_t i = 0; i < n; i++) {
		size_t lo = fuzz_cstr(v[i].owner, sizeof v[i].owner);
		size_t lr = fuzz_cstr(v[i].recipient, sizeof v[i].recipient);
		size_t le = fuzz_cstr(v[i].event, sizeof v[i].event);
		FUZZ_ASSERT(lo >= 1);
		FUZZ_ASSERTF((lr == 0) != (le == 0), "will of %s: recipient \"%s\" event \"%s\"",
			     v[i].owner, v[i].recipient, v[i].event);
		FUZZ_ASSERT(v[i].payload_len <= VIGIL_WILL_MAX);
		FUZZ_ASSERT(v[i].seq >= 1);
		FUZZ_ASSERT(v[i].delay_ms >= 0);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERTF(strcmp(v[i].owner, v[j].owner) != 0, "two wills of %s",
				     v[i].owner);
	}
	free(v);
	const struct will_stats *st = will_stats(w);
	FUZZ_ASSERT(st != NULL);
}

/* Our push-pull records merge into a fresh component. */
static void check_local_state(struct will *w, int64_t now)
{
	struct wbuf out;
	wbuf_init(&out);
	will_local_state(w, false, &out);
	FUZZ_ASSERT(!out.oom);
	struct will *o = make("other", now);
	for (uint8_t i = 0; i < 4; i++) {
		struct swim_member m = member(names[i], (uint8_t)(i + 1), SWIM_ALIVE, 1);
		will_on_member(o, SWIM_EV_JOIN, &m, now);
	}
	size_t off = 0;
	while (off < out.len) {
		FUZZ_ASSERT(out.len - off >= 5);
		uint8_t t = out.p[off];
		uint32_t l = (uint32_t)out.p[off + 1] << 24 | (uint32_t)out.p[off + 2] << 16 |
			     (uint32_t)out.p[off + 3] << 8 | out.p[off + 4];
		FUZZ_ASSERT(t >= SERF_EXT_TYPE_MIN);
		FUZZ_ASSERT(out.len - off - 5 >= l);
		int rc = will_merge_state(o, t, out.p + off + 5, l, false, now);
		FUZZ_ASSERTF(rc == WILL_OK, "our own state record type %d (%u bytes): %d", t, l, rc);
		off += 5 + (size_t)l;
	}
	invariants(o);
	/* Every live will we hold is signed by a key we bound, so the other
	 * side (same members, no keys yet) takes them all. */
	FUZZ_ASSERTF(live_wills(o) == live_wills(w), "merged %zu of our %zu wills",
		     live_wills(o), live_wills(w));
	will_free(o);
	wbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t now = 1000000;
	struct will *w = make("py", now);
	const uint8_t *first_end = memmem(data, size, SEP, SEP_LEN);
	size_t first = first_end ? (size_t)(first_end - data) : size;
	load(w, data, first);
	invariants(w);
	load_from(w, data, size);
	invariants(w);

	struct swim_member ms[4] = {
		member("py", 2, SWIM_ALIVE, 1),
		member("s1", 1, SWIM_ALIVE, 1),
		member("a", 3, SWIM_ALIVE, 1),
		member("b", 4, SWIM_ALIVE, 1),
	};
	for (int i = 0; i < 4; i++)
		will_on_member(w, SWIM_EV_JOIN, &ms[i], now);
	/* a is dead from the start too: a delivery of a's will is only taken
	 * while we hold a dead, and the seeds carry one */
	struct swim_member dead_a = member("a", 3, SWIM_DEAD, 1);
	will_on_member(w, SWIM_EV_LEAVE, &dead_a, now);
	invariants(w);

	const uint8_t *p = data, *end = data + size;
	for (int seg = 0; p <= end && seg < 64; seg++) {
		const uint8_t *s = memmem(p, (size_t)(end - p), SEP, SEP_LEN);
		size_t n = s ? (size_t)(s - p) : (size_t)(end - p);
		uint8_t *d = fuzz_dup(p, n);
		now += 100;
		int rc = will_handle_msg(w, d, n, now);
		FUZZ_ASSERT(rc <= 0);
		invariants(w);
		if (n >= 1) {
			rc = will_merge_state(w, d[0], d + 1, n - 1, seg & 1, now);
			FUZZ_ASSERT(rc <= 0);
			invariants(w);
		}
		free(d);
		if (!s)
			break;
		p = s + SEP_LEN;
	}
	check_local_state(w, now);

	/* deaths: a and b dead, s1 left; then run every deadline */
	struct swim_member dead_b = member("b", 4, SWIM_DEAD, 2);
	struct swim_member left_s1 = member("s1", 1, SWIM_LEFT, 1);
	will_on_member(w, SWIM_EV_LEAVE, &dead_a, now);
	will_on_member(w, SWIM_EV_LEAVE, &dead_b, now);
	will_on_member(w, SWIM_EV_LEAVE, &left_s1, now);
	invariants(w);
	for (int i = 0; i < 40; i++) {
		int64_t next = will_next_deadline(w);
		if (next <= now)
			next = now + 1;
		if (next > now + 3600 * 1000)
			next = now + 3600 * 1000;
		now = next;
		will_tick(w, now);
		invariants(w);
		if (i == 20) {
			struct swim_member back_a = member("a", 3, SWIM_ALIVE, 2);
			will_on_member(w, SWIM_EV_JOIN, &back_a, now);
		}
	}
	will_on_member(w, SWIM_EV_REAP, &dead_b, now);
	invariants(w);
	check_local_state(w, now);
	will_free(w);
	return 0;
}
