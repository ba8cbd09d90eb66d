/*
 * fuzz_mdns — agent/discover.c's and dns_wire.c's DNS decoding (serf
 * -discover's mDNS):
 *   - the input as a response: discover_take_response refuses it (-1) or
 *     queues at most one peer per record looked at; every queued address
 *     is a NUL-terminated "ip:port" or "[ip6]:port";
 *   - the input as a query: an answer, if any, fits the buffer and is
 *     itself well-formed: a second module decodes it without refusal.
 *
 * discover.o and dns_wire.o are linked from libvigil-fuzz.a (the
 * Makefile's FUZZ_AGENT_OBJS).
 */
#include "discover_internal.h"
#include "dns_wire.h"
#include "fuzz_common.h"

#include <string.h>

static struct discover *module_for(const char *node, const char *ip)
{
	struct discover_config cfg = {
		.cluster = "test",
		.node_name = node,
		.advertise_ip = ip,
		.port = 7946,
		.host_name = "myhost.",
	};
	char err[256];
	struct discover *d = discover_create(&cfg, err, sizeof err);
	FUZZ_ASSERTF(d != NULL, "%s", err);
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct discover *me, *peer;
	static uint8_t out[DNS_PACKET_MAX];
	if (!me) {
		me = module_for("me", "10.0.0.1");
		peer = module_for("peer", "10.0.0.2");
	}
	if (size > DNS_PACKET_MAX) /* discover_step drops those unread */
		return 0;

	int queued = discover_take_response(me, data, size);
	FUZZ_ASSERT(queued >= -1 && queued <= DNS_MAX_RECORDS);
	char addr[DISCOVER_ADDR_MAX];
	while (discover_next_peer(me, addr, sizeof addr)) {
		size_t n = fuzz_cstr(addr, sizeof addr);
		FUZZ_ASSERTF(n > 2 && strchr(addr, ':') != NULL, "peer '%s'", addr);
	}

	bool unicast;
	size_t len = discover_answer_query(me, data, size, true, &unicast, out, sizeof out);
	FUZZ_ASSERT(len <= sizeof out);
	if (len > 0) {
		uint64_t malformed = discover_get_stats(peer)->malformed;
		FUZZ_ASSERT(discover_take_response(peer, out, len) >= 0);
		FUZZ_ASSERT(discover_get_stats(peer)->malformed == malformed);
		while (discover_next_peer(peer, addr, sizeof addr))
			FUZZ_ASSERTF(strcmp(addr, "10.0.0.1:7946") == 0, "peer '%s'", addr);
	}
	return 0;
}
