/*
 * fuzz_packet — the UDP receive path of the codec: wire_unwrap_packet
 * (hasCrc / compress / compound envelopes) and wire_decode of every
 * message found inside, plus wire_decode of the raw input.
 *
 * Oracles, beyond the sanitizers:
 *   - the callback never runs for a packet that is rejected, and every
 *     message it gets has at least its type byte;
 *   - every decoded message survives decode/encode/decode (wire_check.h);
 *   - the messages of an accepted packet, re-wrapped by our own encoders as
 *     crc(compound(...)) and crc(compress(compound(...))), unwrap to the
 *     same list.
 */
#include "fuzz_common.h"
#include "wire_check.h"

#define MAX_KEEP 512

struct collected {
	size_t n;
	bool overflow;
	struct wire_bytes msg[MAX_KEEP]; /* heap copies */
	size_t total;
};

static void on_msg(void *ctx, const uint8_t *msg, size_t len)
{
	struct collected *c = ctx;
	FUZZ_ASSERT(len >= 1);
	fuzz_touch(msg, len);
	wire_check_msg(msg, len);
	if (c->n == MAX_KEEP) {
		c->overflow = true;
		return;
	}
	c->msg[c->n].p = fuzz_dup(msg, len);
	c->msg[c->n].len = (uint32_t)len;
	c->n++;
	c->total += len;
}

static void collected_free(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free((void *)c->msg[i].p);
	c->n = 0;
}

static void same_list(const struct collected *a, const struct collected *b, const char *how)
{
	FUZZ_ASSERTF(a->n == b->n, "%s: %zu messages became %zu", how, a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		FUZZ_ASSERTF(a->msg[i].len == b->msg[i].len &&
				     memcmp(a->msg[i].p, b->msg[i].p, a->msg[i].len) == 0,
			     "%s: message %zu differs", how, i);
}

/* Re-wrap the messages of an accepted packet and unwrap them again. */
static void rewrap(const struct collected *c)
{
	if (c->overflow || c->n == 0 || c->n > 255)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->msg[i].len > UINT16_MAX)
			return;

	struct wbuf comp, pkt, z;
	wbuf_init(&comp);
	wbuf_init(&pkt);
	wbuf_init(&z);
	FUZZ_ASSERT(wire_make_compound(&comp, c->msg, c->n) == WIRE_OK);

	if (comp.len + 5 <= WIRE_UDP_MAX) {
		struct collected back = { 0 };
		FUZZ_ASSERT(wire_add_crc(&pkt, comp.p, comp.len) == WIRE_OK);
		int rc = wire_unwrap_packet(pkt.p, pkt.len, on_msg, &back);
		FUZZ_ASSERTF(rc == WIRE_OK, "crc(compound) of accepted messages: %s",
			     wire_strerror(rc));
		same_list(c, &back, "crc(compound)");
		collected_free(&back);
	}

	/* The packet-wide inflate budget is 4 * WIRE_UDP_MAX. */
	if (comp.len <= 4u * WIRE_UDP_MAX) {
		FUZZ_ASSERT(wire_compress(&z, comp.p, comp.len) == WIRE_OK);
		FUZZ_ASSERT(z.len >= 1 && z.p[0] == WIRE_COMPRESS);
		wbuf_reset(&pkt);
		FUZZ_ASSERT(wire_add_crc(&pkt, z.p, z.len) == WIRE_OK);
		if (pkt.len <= WIRE_UDP_MAX) {
			struct collected back = { 0 };
			int rc = wire_unwrap_packet(pkt.p, pkt.len, on_msg, &back);
			FUZZ_ASSERTF(rc == WIRE_OK, "crc(compress(compound)): %s",
				     wire_strerror(rc));
			same_list(c, &back, "crc(compress(compound))");
			collected_free(&back);
		}
	}
	wbuf_free(&comp);
	wbuf_free(&pkt);
	wbuf_free(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct collected c; /* large: keep it off the stack */

	/* The raw input as a single message. */
	wire_check_msg(data, size);

	/* The raw input as a datagram. */
	memset(&c, 0, sizeof c);
	int rc = wire_unwrap_packet(data, size, on_msg, &c);
	FUZZ_ASSERT(rc <= 0);
	if (rc != WIRE_OK)
		FUZZ_ASSERTF(c.n == 0 && !c.overflow,
			     "%zu messages delivered from a packet rejected with %s", c.n,
			     wire_strerror(rc));
	else
		rewrap(&c);
	collected_free(&c);
	return 0;
}
