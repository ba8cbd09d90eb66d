/*
 * fuzz_rpc — the byte-level half of the agent's RPC ("IPC") server:
 * agent/mp.c's mp_frame_len (the framing that decides how much of a
 * client's stream is one request), mp_decode and the mp_get_* accessors,
 * driven the way agent/rpc.c's process_input drives them: frames are taken
 * off the front of the input one by one, alternately as a request header
 * ({Command, Seq}) and a body whose fields the handlers read.
 *
 * Not covered (pending): rpc.c's process_input / dispatch / h_* handlers
 * are static and reachable only through a socket and a live agent; see
 * docs/FUZZING.md.
 *
 * Oracles, beyond the sanitizers:
 *   - mp_frame_len returns -1/0/1, and for 1 a length within the input and
 *     MP_MAX_FRAME; the frame alone gives the same answer; every proper
 *     prefix of it is "need more" (0) — an error there would drop a client
 *     whose request arrives in pieces;
 *   - a frame mp_decode accepts re-encodes (msgpack-c) to the same bytes or
 *     at least to an object of the same type.
 */
#include <msgpack.h>

#include "fuzz_common.h"
#include "mp.h"

static const char *const KEYS[] = {
	"Command", "Seq", "Version", "AuthKey", "Name", "Payload", "Coalesce", "Existing",
	"Replay", "Node", "Prune", "Type", "Tags", "DeleteTags", "FilterNodes", "FilterTags",
	"RequestAck", "RelayFactor", "Timeout", "ID", "Key", "LogLevel", "Stop", "Status",
	"To", "Delay", "Owner", "Event",
};

static void frame_consistency(const uint8_t *buf, size_t len, size_t fl)
{
	size_t fl2 = 0;
	uint8_t *d = fuzz_dup(buf, fl);
	FUZZ_ASSERT(mp_frame_len(d, fl, &fl2) == 1 && fl2 == fl);
	size_t cuts[3] = { 0, fl / 2, fl - 1 };
	for (int i = 0; i < 3; i++) {
		size_t x = 0;
		int r = mp_frame_len(d, cuts[i], &x);
		FUZZ_ASSERTF(r == 0, "prefix %zu of a %zu-byte frame gave %d", cuts[i], fl, r);
	}
	free(d);
	(void)len;
}

/* What the handlers do with a body: typed lookups of their keys. */
static void read_fields(const msgpack_object *o)
{
	char small[32], big[256];
	uint64_t u;
	int64_t i;
	bool b;
	/* the typed accessors, once each on the keys rpc.c reads that way */
	if (mp_get_str(o, "Command", small, sizeof small))
		FUZZ_ASSERT(strlen(small) < sizeof small);
	if (mp_get_str(o, "Name", big, sizeof big))
		FUZZ_ASSERT(strlen(big) < sizeof big);
	free(mp_get_strdup(o, "Type"));
	(void)mp_get_uint(o, "Seq", &u);
	(void)mp_get_int(o, "Timeout", &i);
	(void)mp_get_bool(o, "Coalesce", &b);
	/* every key: one lookup, then whatever shape it has */
	for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0]; k++) {
		const msgpack_object *v = mp_get(o, KEYS[k]);
		const char *p;
		size_t n;
		if (!v)
			continue;
		if (mp_as_bytes(v, &p, &n))
			fuzz_touch(p, n);
		/* lists of strings (FilterNodes, DeleteTags) and maps (Tags, FilterTags) */
		if (v->type == MSGPACK_OBJECT_ARRAY)
			for (uint32_t j = 0; j < v->via.array.size; j++)
				if (mp_as_bytes(&v->via.array.ptr[j], &p, &n))
					fuzz_touch(p, n);
		if (v->type == MSGPACK_OBJECT_MAP)
			for (uint32_t j = 0; j < v->via.map.size; j++) {
				if (mp_as_bytes(&v->via.map.ptr[j].key, &p, &n))
					fuzz_touch(p, n);
				if (mp_as_bytes(&v->via.map.ptr[j].val, &p, &n))
					fuzz_touch(p, n);
			}
	}
}

static void repack(const msgpack_object *o)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	FUZZ_ASSERT(msgpack_pack_object(&pk, *o) == 0);
	size_t fl = 0;
	int r = mp_frame_len((const uint8_t *)sb.data, sb.size, &fl);
	/* msgpack-c may pick wider encodings; it is still one complete object */
	if (sb.size <= MP_MAX_FRAME)
		FUZZ_ASSERTF(r == 1 && fl == sb.size, "repacked object: frame_len %d (%zu of %zu)",
			     r, fl, sb.size);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	if (r == 1 && mp_decode(&u, (const uint8_t *)sb.data, fl))
		FUZZ_ASSERT(u.data.type == o->type);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t len = size;
	bool have_hdr = false;

	for (int frames = 0; len > 0 && frames < 32; frames++) {
		size_t fl = 0;
		int r = mp_frame_len(p, len, &fl);
		FUZZ_ASSERT(r >= -1 && r <= 1);
		if (r != 1)
			break;
		FUZZ_ASSERT(fl >= 1 && fl <= len && fl <= MP_MAX_FRAME);
		frame_consistency(p, len, fl);

		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (mp_decode(&u, p, fl)) {
			const msgpack_object *o = &u.data;
			if (!have_hdr) {
				char cmd[32];
				uint64_t seq = 0;
				if (o->type == MSGPACK_OBJECT_MAP && mp_get_str(o, "Command", cmd, sizeof cmd))
					have_hdr = strcmp(cmd, "handshake") != 0;
				mp_get_uint(o, "Seq", &seq);
			} else {
				have_hdr = false;
			}
			read_fields(o);
			repack(o);
		}
		msgpack_unpacked_destroy(&u);
		p += fl;
		len -= fl;
	}
	return 0;
}
