/*
 * fuzz_stream — the TCP side of the codec: wire_stream_frame_len,
 * wire_decode_push_pull, wire_decode_stream_user and wire_decompress.
 *
 * Oracles, beyond the sanitizers:
 *   - frame_len is consistent under truncation: every proper prefix of a
 *     complete frame is "need more" (0) — an error there would kill a peer
 *     whose frame arrives in pieces — the frame alone has the same length
 *     as with bytes after it, and a prefix of a refused frame is never a
 *     complete frame;
 *   - decoded push-pull entries point into the input, respect wire.h's
 *     limits, and re-encode (wire_encode_push_pull) to bytes that decode to
 *     the same entries; user payloads point into the input; a stream user
 *     message re-encodes to the identical frame;
 *   - wire_decompress leaves `out` unchanged on failure and otherwise
 *     inflates to at most WIRE_PUSH_MAX bytes; compressing the output and
 *     inflating again gives it back.
 */
#include "fuzz_common.h"
#include "wire_check.h"

static void check_frame_len(const uint8_t *data, size_t size)
{
	long fl = wire_stream_frame_len(data, size);
	FUZZ_ASSERT(fl >= (long)WIRE_ENEST);
	if (fl > 0) {
		FUZZ_ASSERT((size_t)fl <= size);
		/* Same answer from an exact-size copy (no peeking past the frame). */
		uint8_t *d = fuzz_dup(data, (size_t)fl);
		FUZZ_ASSERT(wire_stream_frame_len(d, (size_t)fl) == fl);
		free(d);
		/* Every proper prefix is incomplete. */
		size_t cuts[3] = { 0, (size_t)fl / 2, (size_t)fl - 1 };
		for (int i = 0; i < 3; i++) {
			if (cuts[i] >= (size_t)fl)
				continue;
			d = fuzz_dup(data, cuts[i]);
			long p = wire_stream_frame_len(d, cuts[i]);
			FUZZ_ASSERTF(p == 0, "prefix %zu of a %ld-byte frame gave %ld", cuts[i], fl,
				     p);
			free(d);
		}
	} else if (fl < 0 && size > 1) {
		/* A frame refused early is not accepted once more bytes arrive. */
		uint8_t *d = fuzz_dup(data, size - 1);
		long p = wire_stream_frame_len(d, size - 1);
		FUZZ_ASSERTF(p <= 0, "prefix of a refused frame has length %ld", p);
		free(d);
	}
}

static void check_entry(const struct wire_node_state_entry *e, const uint8_t *buf,
			size_t len)
{
	wc_bytes(&e->name, buf, len, WIRE_NAME_MAX);
	wc_bytes(&e->meta, buf, len, WIRE_META_MAX);
	wc_addr(&e->addr);
	FUZZ_ASSERT(e->state <= WIRE_STATE_LEFT);
	FUZZ_ASSERT(e->vsn_len == 0 || e->vsn_len == 6);
}

static bool entry_eq(const struct wire_node_state_entry *a,
		     const struct wire_node_state_entry *b)
{
	return wc_bytes_eq(&a->name, &b->name) && wc_addr_eq(&a->addr, &b->addr) &&
	       wc_bytes_eq(&a->meta, &b->meta) && a->incarnation == b->incarnation &&
	       a->state == b->state && a->vsn_len == b->vsn_len &&
	       memcmp(a->vsn, b->vsn, a->vsn_len) == 0;
}

static void check_push_pull(const uint8_t *data, size_t size)
{
	struct wire_push_pull pp, pp2;
	int rc = wire_decode_push_pull(data, size, &pp);
	FUZZ_ASSERT(rc <= 0);
	if (rc != WIRE_OK) {
		FUZZ_ASSERT(pp.nodes == NULL && pp.n_nodes == 0);
		return;
	}
	FUZZ_ASSERT(pp.n_nodes <= WIRE_PUSH_NODES_MAX);
	FUZZ_ASSERT(pp.n_nodes == 0 || pp.nodes != NULL);
	for (uint32_t i = 0; i < pp.n_nodes; i++)
		check_entry(&pp.nodes[i], data, size);
	wc_bytes(&pp.user_state, data, size, WIRE_PUSH_MAX);

	/* The frame scanner agrees that the message is complete (it refuses
	 * headers over 64 KiB that the decoder itself would take). */
	long fl = wire_stream_frame_len(data, size);
	if (size <= 65536)
		FUZZ_ASSERTF(fl > 0, "decoded push-pull but frame_len says %ld", fl);
	FUZZ_ASSERT(fl <= (long)size);

	struct wbuf e;
	wbuf_init(&e);
	rc = wire_encode_push_pull(&e, pp.join, pp.nodes, pp.n_nodes, pp.user_state.p,
				   pp.user_state.len);
	FUZZ_ASSERTF(rc == WIRE_OK, "re-encoding a decoded push-pull: %s", wire_strerror(rc));
	FUZZ_ASSERT(wire_stream_frame_len(e.p, e.len) == (long)e.len);
	rc = wire_decode_push_pull(e.p, e.len, &pp2);
	FUZZ_ASSERTF(rc == WIRE_OK, "decoding our own push-pull: %s", wire_strerror(rc));
	FUZZ_ASSERT(pp2.join == pp.join && pp2.n_nodes == pp.n_nodes);
	for (uint32_t i = 0; i < pp.n_nodes; i++)
		FUZZ_ASSERTF(entry_eq(&pp.nodes[i], &pp2.nodes[i]),
			     "push-pull node %u changed in a roundtrip", i);
	FUZZ_ASSERT(wc_bytes_eq(&pp.user_state, &pp2.user_state));
	wire_push_pull_free(&pp2);
	FUZZ_ASSERT(pp2.nodes == NULL && pp2.n_nodes == 0);
	wbuf_free(&e);
	wire_push_pull_free(&pp);
}

static void check_stream_user(const uint8_t *data, size_t size)
{
	struct wire_bytes pl, pl2;
	int rc = wire_decode_stream_user(data, size, &pl);
	FUZZ_ASSERT(rc <= 0);
	if (rc != WIRE_OK)
		return;
	wc_bytes(&pl, data, size, WIRE_PUSH_MAX);
	long fl = wire_stream_frame_len(data, size);
	if (size <= 65536)
		FUZZ_ASSERTF(fl > 0, "decoded stream user but frame_len says %ld", fl);

	struct wbuf e;
	wbuf_init(&e);
	FUZZ_ASSERT(wire_encode_stream_user(&e, pl.p, pl.len) == WIRE_OK);
	FUZZ_ASSERT(wire_decode_stream_user(e.p, e.len, &pl2) == WIRE_OK);
	FUZZ_ASSERT(wc_bytes_eq(&pl, &pl2));
	FUZZ_ASSERT(wire_stream_frame_len(e.p, e.len) == (long)e.len);
	wbuf_free(&e);
}

static void check_decompress(const uint8_t *data, size_t size)
{
	static const uint8_t prefix[3] = { 'p', 'r', 'e' };
	struct wbuf out;
	wbuf_init(&out);
	/* Something already in out must survive either way. */
	FUZZ_ASSERT(wbuf_append(&out, prefix, sizeof prefix) == WIRE_OK);
	int rc = wire_decompress(data, size, &out);
	FUZZ_ASSERT(rc <= 0);
	FUZZ_ASSERT(out.len >= sizeof prefix && memcmp(out.p, prefix, sizeof prefix) == 0);
	if (rc != WIRE_OK) {
		FUZZ_ASSERTF(out.len == sizeof prefix, "failed decompress (%s) left %zu bytes",
			     wire_strerror(rc), out.len - sizeof prefix);
		wbuf_free(&out);
		return;
	}
	size_t n = out.len - sizeof prefix;
	FUZZ_ASSERT(n <= WIRE_PUSH_MAX);
	fuzz_touch(out.p, out.len);

	/* compress what came out and inflate again (bounded: keep it fast) */
	if (n <= 65536) {
		struct wbuf z, back;
		wbuf_init(&z);
		wbuf_init(&back);
		FUZZ_ASSERT(wire_compress(&z, out.p + sizeof prefix, n) == WIRE_OK);
		FUZZ_ASSERT(wire_decompress(z.p, z.len, &back) == WIRE_OK);
		FUZZ_ASSERT(back.len == n && (n == 0 || memcmp(back.p, out.p + sizeof prefix, n) == 0));
		wbuf_free(&z);
		wbuf_free(&back);
	}
	wbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_frame_len(data, size);
	check_push_pull(data, size);
	check_stream_user(data, size);
	check_decompress(data, size);
	return 0;
}
