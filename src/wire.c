/*
 * wire.c — memberlist message codec (see wire.h for the contract).
 *
 * Encoding follows go-msgpack 0.5.x as memberlist configures it (a zero
 * MsgpackHandle):
 *   - a struct is a map whose keys are the Go field names, written in
 *     byte-wise sorted order (go-msgpack sorts struct fields by name when it
 *     writes maps), with `omitempty` fields left out when zero;
 *   - strings and []byte (including Vsn, a []uint8) use the old msgpack
 *     "raw" family (fixraw / raw16 / raw32), never str8 or bin — old peers
 *     cannot read those;
 *   - a nil []byte is msgpack nil; integers use the smallest encoding.
 * Following those rules makes our bytes identical to what a Go peer sends,
 * which the golden tests check.
 *
 * Decoding is deliberately liberal in what msgpack shapes it takes (any
 * integer width, str or bin or raw, nil for "zero", keys in any order,
 * unknown keys ignored) and strict about values (lengths of addresses,
 * names, meta, Vsn; integers in range).
 *
 * msgpack-c allocates an array for a container's elements as soon as it
 * reads the container header, before checking that the input could possibly
 * hold them: five hostile bytes can demand a 100 GB allocation.  So every
 * object goes through wire_msgpack_span() first, a small structural scan that only
 * reads type bytes and lengths and proves that every declared element and
 * byte fits in the input.  Only then is msgpack-c asked to decode it, and
 * its allocations are bounded by a small multiple of the input size.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <libdeflate.h>

#include "wire.h"
#include "mpack.h"
#include "grow.h"

/* Envelopes (hasCrc, compress, compound) peeled for one packet at most. */
#define WIRE_NEST_MAX 4
/* Total bytes all compress envelopes in one packet may expand to. */
#define WIRE_PACKET_INFLATE_MAX ((size_t)WIRE_UDP_MAX * 4)
/* Largest single msgpack object we wait for on a stream (ping, headers). */
#define WIRE_STREAM_OBJ_MAX 65536u

/* ------------------------------------------------------------------ wbuf */

void wbuf_init(struct wbuf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void wbuf_free(struct wbuf *b)
{
	free(b->p);
	wbuf_init(b);
}

void wbuf_reset(struct wbuf *b)
{
	b->len = 0;
	b->oom = false;
}

int wbuf_append_grow(struct wbuf *b, const void *data, size_t n)
{
	if (b->oom)
		return WIRE_ENOMEM;
	if (n == 0)
		return WIRE_OK;
	if (n > b->cap - b->len) {
		if (n > SIZE_MAX / 2 - b->len) {
			b->oom = true;
			return WIRE_ENOMEM;
		}
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n)
			cap *= 2;
		/* Appending part of the buffer to itself must survive the move. */
		const uint8_t *src = data;
		bool inside = b->p && (uintptr_t)src >= (uintptr_t)b->p &&
			      (uintptr_t)src < (uintptr_t)(b->p + b->len);
		size_t src_off = inside ? (size_t)(src - b->p) : 0;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return WIRE_ENOMEM;
		}
		b->p = p;
		b->cap = cap;
		if (inside)
			data = p + src_off;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return WIRE_OK;
}

static int wbuf_byte(struct wbuf *b, uint8_t v)
{
	return wbuf_append(b, &v, 1);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

const char *wire_strerror(int err)
{
	switch (err) {
	case WIRE_OK: return "ok";
	case WIRE_ETRUNC: return "message truncated";
	case WIRE_EFORMAT: return "malformed message";
	case WIRE_ETYPE: return "unexpected message type";
	case WIRE_ETOOBIG: return "message or field too large";
	case WIRE_ECRC: return "checksum mismatch";
	case WIRE_ENOMEM: return "out of memory";
	case WIRE_ENEST: return "envelopes nested too deeply";
	default: return "unknown wire error";
	}
}

/* ------------------------------------------------ msgpack structural scan */

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * What a msgpack type byte says about its object, for wire_msgpack_span:
 * one table load per object instead of a chain of range tests.  All-zero
 * (the default) is a one-byte scalar: fixints, nil, booleans.
 */
enum mp_len_kind { MP_FIXED, MP_BYTES, MP_ARRAY, MP_MAP, MP_EXT, MP_RESERVED };

struct mp_head {
	uint8_t fixed;               /* payload bytes known from the type byte */
	uint8_t items;               /* child objects known from the type byte */
	uint8_t lenbytes;            /* size of the length field after it */
	uint8_t kind;                /* what that length counts (enum mp_len_kind) */
};

#define MP_FIX16(base, field, scale, first)                                       \
	[base + 0] = { .field = (first + 0) * scale }, [base + 1] = { .field = (first + 1) * scale },   \
	[base + 2] = { .field = (first + 2) * scale }, [base + 3] = { .field = (first + 3) * scale },   \
	[base + 4] = { .field = (first + 4) * scale }, [base + 5] = { .field = (first + 5) * scale },   \
	[base + 6] = { .field = (first + 6) * scale }, [base + 7] = { .field = (first + 7) * scale },   \
	[base + 8] = { .field = (first + 8) * scale }, [base + 9] = { .field = (first + 9) * scale },   \
	[base + 10] = { .field = (first + 10) * scale }, [base + 11] = { .field = (first + 11) * scale }, \
	[base + 12] = { .field = (first + 12) * scale }, [base + 13] = { .field = (first + 13) * scale }, \
	[base + 14] = { .field = (first + 14) * scale }, [base + 15] = { .field = (first + 15) * scale }

static const struct mp_head mp_heads[256] = {
	MP_FIX16(0x80, items, 2, 0),        /* fixmap: key and value per entry */
	MP_FIX16(0x90, items, 1, 0),        /* fixarray */
	MP_FIX16(0xa0, fixed, 1, 0),        /* fixstr 0..15 */
	MP_FIX16(0xb0, fixed, 1, 16),       /* fixstr 16..31 */
	[0xc1] = { .kind = MP_RESERVED },   /* never used */
	[0xc4] = { .lenbytes = 1, .kind = MP_BYTES }, [0xd9] = { .lenbytes = 1, .kind = MP_BYTES },
	[0xc5] = { .lenbytes = 2, .kind = MP_BYTES }, [0xda] = { .lenbytes = 2, .kind = MP_BYTES },
	[0xc6] = { .lenbytes = 4, .kind = MP_BYTES }, [0xdb] = { .lenbytes = 4, .kind = MP_BYTES },
	[0xc7] = { .lenbytes = 1, .kind = MP_EXT },
	[0xc8] = { .lenbytes = 2, .kind = MP_EXT },
	[0xc9] = { .lenbytes = 4, .kind = MP_EXT },
	[0xca] = { .fixed = 4 }, [0xcb] = { .fixed = 8 },               /* floats */
	[0xcc] = { .fixed = 1 }, [0xcd] = { .fixed = 2 }, [0xce] = { .fixed = 4 }, [0xcf] = { .fixed = 8 },
	[0xd0] = { .fixed = 1 }, [0xd1] = { .fixed = 2 }, [0xd2] = { .fixed = 4 }, [0xd3] = { .fixed = 8 },
	[0xd4] = { .fixed = 2 }, [0xd5] = { .fixed = 3 }, [0xd6] = { .fixed = 5 },  /* fixext: type + data */
	[0xd7] = { .fixed = 9 }, [0xd8] = { .fixed = 17 },
	[0xdc] = { .lenbytes = 2, .kind = MP_ARRAY }, [0xdd] = { .lenbytes = 4, .kind = MP_ARRAY },
	[0xde] = { .lenbytes = 2, .kind = MP_MAP }, [0xdf] = { .lenbytes = 4, .kind = MP_MAP },
};

/*
 * Find the length of the first msgpack object in p[0..len).  Nothing is
 * decoded: the scan keeps a count of objects still owed and checks that the
 * bytes they need (at least one each) and every declared payload fit.
 *
 * Returns WIRE_OK and *objlen, WIRE_EFORMAT for a reserved type byte,
 * WIRE_ETOOBIG when the object provably needs more than `limit` bytes (used
 * on streams to refuse absurd sizes before they arrive), else WIRE_ETRUNC
 * when the input ends first.  Pass limit = SIZE_MAX for "no limit".
 */
int wire_msgpack_span(const uint8_t *p, size_t len, size_t limit, size_t *objlen)
{
	uint64_t off = 0, pending = 1;

	while (pending > 0) {
		pending--;
		if (off >= len)
			return off + 1 + pending > limit ? WIRE_ETOOBIG : WIRE_ETRUNC;
		const struct mp_head h = mp_heads[p[off]];
		uint64_t fixed = h.fixed; /* payload bytes */
		uint64_t items = h.items; /* child objects */
		uint64_t need = off + 1 + h.lenbytes;
		if (h.kind != MP_FIXED) {
			if (h.kind == MP_RESERVED)
				return WIRE_EFORMAT;
			if (need > len)
				return need + pending > limit ? WIRE_ETOOBIG : WIRE_ETRUNC;
			uint64_t n = rd_be(p + off + 1, h.lenbytes);
			switch (h.kind) {
			case MP_BYTES: fixed = n; break;
			case MP_ARRAY: items = n; break;
			case MP_MAP: items = 2 * n; break;
			default: fixed = n + 1; break; /* ext: type byte + data */
			}
		}
		off = need + fixed;
		pending += items;
		/* Every owed object takes at least one more byte. */
		if (off + pending > len)
			return off + pending > limit ? WIRE_ETOOBIG : WIRE_ETRUNC;
	}
	*objlen = (size_t)off;
	return WIRE_OK;
}

/* ------------------------------------------------------- decode helpers */

/*
 * msgpack-c puts the decoded objects in a zone whose first chunk is 8 KB
 * by default (msgpack_unpack_next): for a gossip message of 60 bytes that
 * is a malloc on glibc's slow path, and a fifth of the decode.  The first
 * chunk is sized to the object instead; objects take a few times the bytes
 * they come from (an 8-byte object, a 16-byte map entry per 2 input bytes
 * at worst), and the zone grows in further chunks when that is not enough.
 */
static size_t zone_chunk_for(size_t objlen)
{
	size_t c = objlen * 8;
	return c < 512 ? 512 : c > MSGPACK_ZONE_CHUNK_SIZE ? MSGPACK_ZONE_CHUNK_SIZE : c;
}

/* Unpack the object wire_msgpack_span proved, of n bytes, into zone. */
static int unpack_spanned(const uint8_t *p, size_t n, msgpack_zone *zone, msgpack_object *obj)
{
	size_t off = 0;
	switch (msgpack_unpack((const char *)p, n, &off, zone, obj)) {
	case MSGPACK_UNPACK_SUCCESS:
		return WIRE_OK;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return WIRE_ENOMEM;
	case MSGPACK_UNPACK_CONTINUE:
		return WIRE_ETRUNC;
	default:
		return WIRE_EFORMAT; /* e.g. nesting deeper than msgpack-c's stack */
	}
}

int wire_msgpack_unpack(const uint8_t *p, size_t len, size_t limit,
			msgpack_unpacked *u, size_t *used)
{
	size_t n;
	int rc = wire_msgpack_span(p, len, limit, &n);
	if (rc != WIRE_OK)
		return rc;
	msgpack_unpacked_destroy(u);
	u->zone = msgpack_zone_new(zone_chunk_for(n));
	if (!u->zone)
		return WIRE_ENOMEM;
	rc = unpack_spanned(p, n, u->zone, &u->data);
	if (rc == WIRE_OK && used)
		*used = n;
	return rc;
}

/* The input range that decoded views must point into. */
struct span {
	const uint8_t *lo, *hi;
};

/* Unsigned field: any integer encoding, nil means zero, negatives refused. */
static int get_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NIL) {
		*v = 0;
		return WIRE_OK;
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return WIRE_EFORMAT;
	*v = o->via.u64;
	return WIRE_OK;
}

static int get_u32(const msgpack_object *o, uint32_t *v)
{
	uint64_t x;
	int rc = get_uint(o, UINT32_MAX, &x);
	if (rc == WIRE_OK)
		*v = (uint32_t)x;
	return rc;
}

static int get_u16(const msgpack_object *o, uint16_t *v)
{
	uint64_t x;
	int rc = get_uint(o, UINT16_MAX, &x);
	if (rc == WIRE_OK)
		*v = (uint16_t)x;
	return rc;
}

static int get_bool(const msgpack_object *o, bool *v)
{
	if (o->type == MSGPACK_OBJECT_NIL) {
		*v = false;
		return WIRE_OK;
	}
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return WIRE_EFORMAT;
	*v = o->via.boolean;
	return WIRE_OK;
}

/* String or []byte: str / bin / raw, nil = empty.  Limit 0 = unlimited. */
static int get_bytes(const msgpack_object *o, const struct span *in,
		     uint32_t limit, struct wire_bytes *b)
{
	const char *p;
	uint32_t n;
	if (o->type == MSGPACK_OBJECT_NIL) {
		b->p = NULL;
		b->len = 0;
		return WIRE_OK;
	}
	if (o->type == MSGPACK_OBJECT_STR) {
		p = o->via.str.ptr;
		n = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		p = o->via.bin.ptr;
		n = o->via.bin.size;
	} else {
		return WIRE_EFORMAT;
	}
	if (limit && n > limit)
		return WIRE_ETOOBIG;
	/*
	 * msgpack-c points strings into the caller's buffer; our views rely on
	 * it (the zone is freed before we return), so make sure.
	 */
	const uint8_t *u = (const uint8_t *)p;
	if (n > 0 && (u < in->lo || u > in->hi || n > (size_t)(in->hi - u)))
		return WIRE_EFORMAT;
	b->p = n ? u : (const uint8_t *)in->lo;
	b->len = n;
	return WIRE_OK;
}

static int get_ip(const msgpack_object *o, const struct span *in, struct wire_addr *a)
{
	struct wire_bytes b;
	int rc = get_bytes(o, in, 0, &b);
	if (rc != WIRE_OK)
		return rc;
	if (b.len != 0 && b.len != 4 && b.len != 16)
		return WIRE_EFORMAT;
	if (b.len)
		memcpy(a->ip, b.p, b.len);
	a->ip_len = (uint8_t)b.len;
	return WIRE_OK;
}

/*
 * Vsn is a Go []uint8, which go-msgpack writes as raw bytes; other encoders
 * write an array of small ints, so take either.  Six entries or none.
 */
static int get_vsn(const msgpack_object *o, const struct span *in,
		   uint8_t vsn[6], uint8_t *vsn_len)
{
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		uint32_t n = o->via.array.size;
		if (n != 0 && n != 6)
			return WIRE_EFORMAT;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t v;
			if (get_uint(&o->via.array.ptr[i], UINT8_MAX, &v) != WIRE_OK)
				return WIRE_EFORMAT;
			vsn[i] = (uint8_t)v;
		}
		*vsn_len = (uint8_t)n;
		return WIRE_OK;
	}
	struct wire_bytes b;
	int rc = get_bytes(o, in, 0, &b);
	if (rc != WIRE_OK)
		return rc;
	if (b.len != 0 && b.len != 6)
		return WIRE_EFORMAT;
	if (b.len)
		memcpy(vsn, b.p, 6);
	*vsn_len = (uint8_t)b.len;
	return WIRE_OK;
}

/* ----------------------------------------------------- per-message maps */

/*
 * Each decoder walks the map once; a later duplicate key overrides an
 * earlier one (as in Go), unknown keys are skipped, missing keys leave the
 * zeroed default.
 */
#define FOR_EACH_KV(obj, kv)                                                 \
	for (const msgpack_object_kv *kv = (obj)->via.map.ptr,               \
				     *kv##_end = kv + (obj)->via.map.size;   \
	     kv < kv##_end; kv++)

#define TRY(expr)                                                            \
	do {                                                                 \
		int try_rc_ = (expr);                                        \
		if (try_rc_ != WIRE_OK)                                      \
			return try_rc_;                                      \
	} while (0)

static int dec_ping(const msgpack_object *o, const struct span *in, struct wire_ping *m)
{
	FOR_EACH_KV(o, kv) {
		const msgpack_object *v = &kv->val;
		if (mpack_key_is(&kv->key, "SeqNo"))
			TRY(get_u32(v, &m->seq));
		else if (mpack_key_is(&kv->key, "Node"))
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->node));
		else if (mpack_key_is(&kv->key, "SourceAddr"))
			TRY(get_ip(v, in, &m->source));
		else if (mpack_key_is(&kv->key, "SourcePort"))
			TRY(get_u16(v, &m->source.port));
		else if (mpack_key_is(&kv->key, "SourceNode"))
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->source_node));
	}
	return WIRE_OK;
}

static int dec_indirect(const msgpack_object *o, const struct span *in,
			struct wire_indirect_ping *m)
{
	FOR_EACH_KV(o, kv) {
		const msgpack_object *v = &kv->val;
		if (mpack_key_is(&kv->key, "SeqNo"))
			TRY(get_u32(v, &m->seq));
		else if (mpack_key_is(&kv->key, "Target"))
			TRY(get_ip(v, in, &m->target));
		else if (mpack_key_is(&kv->key, "Port"))
			TRY(get_u16(v, &m->target.port));
		else if (mpack_key_is(&kv->key, "Node"))
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->node));
		else if (mpack_key_is(&kv->key, "Nack"))
			TRY(get_bool(v, &m->nack));
		else if (mpack_key_is(&kv->key, "SourceAddr"))
			TRY(get_ip(v, in, &m->source));
		else if (mpack_key_is(&kv->key, "SourcePort"))
			TRY(get_u16(v, &m->source.port));
		else if (mpack_key_is(&kv->key, "SourceNode"))
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->source_node));
	}
	return WIRE_OK;
}

static int dec_ack(const msgpack_object *o, const struct span *in, struct wire_ack *m)
{
	FOR_EACH_KV(o, kv) {
		if (mpack_key_is(&kv->key, "SeqNo"))
			TRY(get_u32(&kv->val, &m->seq));
		else if (mpack_key_is(&kv->key, "Payload"))
			TRY(get_bytes(&kv->val, in, 0, &m->payload));
	}
	return WIRE_OK;
}

static int dec_nack(const msgpack_object *o, struct wire_nack *m)
{
	FOR_EACH_KV(o, kv) {
		if (mpack_key_is(&kv->key, "SeqNo"))
			TRY(get_u32(&kv->val, &m->seq));
	}
	return WIRE_OK;
}

static int dec_err(const msgpack_object *o, const struct span *in, struct wire_err *m)
{
	FOR_EACH_KV(o, kv) {
		if (mpack_key_is(&kv->key, "Error"))
			TRY(get_bytes(&kv->val, in, 0, &m->error));
	}
	return WIRE_OK;
}

static int dec_accuse(const msgpack_object *o, const struct span *in, struct wire_accuse *m)
{
	FOR_EACH_KV(o, kv) {
		const msgpack_object *v = &kv->val;
		if (mpack_key_is(&kv->key, "Incarnation"))
			TRY(get_u32(v, &m->incarnation));
		else if (mpack_key_is(&kv->key, "Node"))
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->node));
		else if (mpack_key_is(&kv->key, "From"))
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->from));
	}
	return WIRE_OK;
}

static int dec_alive(const msgpack_object *o, const struct span *in, struct wire_alive *m)
{
	FOR_EACH_KV(o, kv) {
		const msgpack_object *v = &kv->val;
		if (mpack_key_is(&kv->key, "Incarnation"))
			TRY(get_u32(v, &m->incarnation));
		else if (mpack_key_is(&kv->key, "Node"))
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->node));
		else if (mpack_key_is(&kv->key, "Addr"))
			TRY(get_ip(v, in, &m->addr));
		else if (mpack_key_is(&kv->key, "Port"))
			TRY(get_u16(v, &m->addr.port));
		else if (mpack_key_is(&kv->key, "Meta"))
			TRY(get_bytes(v, in, WIRE_META_MAX, &m->meta));
		else if (mpack_key_is(&kv->key, "Vsn"))
			TRY(get_vsn(v, in, m->vsn, &m->vsn_len));
	}
	return WIRE_OK;
}

static int dec_node_state(const msgpack_object *o, const struct span *in,
			  struct wire_node_state_entry *m)
{
	FOR_EACH_KV(o, kv) {
		const msgpack_object *v = &kv->val;
		if (mpack_key_is(&kv->key, "Name")) {
			TRY(get_bytes(v, in, WIRE_NAME_MAX, &m->name));
		} else if (mpack_key_is(&kv->key, "Addr")) {
			TRY(get_ip(v, in, &m->addr));
		} else if (mpack_key_is(&kv->key, "Port")) {
			TRY(get_u16(v, &m->addr.port));
		} else if (mpack_key_is(&kv->key, "Meta")) {
			TRY(get_bytes(v, in, WIRE_META_MAX, &m->meta));
		} else if (mpack_key_is(&kv->key, "Incarnation")) {
			TRY(get_u32(v, &m->incarnation));
		} else if (mpack_key_is(&kv->key, "State")) {
			uint64_t s;
			/* Unknown states would be misread by every consumer. */
			TRY(get_uint(v, WIRE_STATE_LEFT, &s));
			m->state = (uint8_t)s;
		} else if (mpack_key_is(&kv->key, "Vsn")) {
			TRY(get_vsn(v, in, m->vsn, &m->vsn_len));
		}
	}
	return WIRE_OK;
}

/* Decode the msgpack map at p (a message body) with fn-specific logic. */
enum body_kind { B_PING, B_INDIRECT, B_ACK, B_NACK, B_ERR, B_ACCUSE, B_ALIVE };

/*
 * The objects live in scratch (cleared before returning) or, without one,
 * in a zone of their own; either way the views decoded point into p.
 */
static int decode_body(msgpack_zone *scratch, const uint8_t *p, size_t len,
		       enum body_kind k, void *out)
{
	msgpack_unpacked u;
	size_t n;
	struct span in = { p, p + len };
	int rc;

	msgpack_unpacked_init(&u);
	if (scratch) {
		rc = wire_msgpack_span(p, len, SIZE_MAX, &n);
		if (rc == WIRE_OK)
			rc = unpack_spanned(p, n, scratch, &u.data);
	} else {
		rc = wire_msgpack_unpack(p, len, SIZE_MAX, &u, NULL);
	}
	if (rc == WIRE_OK && u.data.type != MSGPACK_OBJECT_MAP)
		rc = WIRE_EFORMAT;
	if (rc == WIRE_OK) {
		const msgpack_object *o = &u.data;
		switch (k) {
		case B_PING: rc = dec_ping(o, &in, out); break;
		case B_INDIRECT: rc = dec_indirect(o, &in, out); break;
		case B_ACK: rc = dec_ack(o, &in, out); break;
		case B_NACK: rc = dec_nack(o, out); break;
		case B_ERR: rc = dec_err(o, &in, out); break;
		case B_ACCUSE: rc = dec_accuse(o, &in, out); break;
		case B_ALIVE: rc = dec_alive(o, &in, out); break;
		}
	}
	if (scratch)
		msgpack_zone_clear(scratch);
	else
		msgpack_unpacked_destroy(&u);
	return rc;
}

/*
 * Bytes after the msgpack map are ignored, as memberlist's decoder (which
 * reads one object from the buffer) ignores them.
 */
int wire_decode_in(msgpack_zone *scratch, const uint8_t *buf, size_t len, struct wire_msg *out)
{
	int rc;

	memset(out, 0, sizeof *out);
	if (len < 1)
		return WIRE_ETRUNC;
	out->type = (enum wire_type)buf[0];
	const uint8_t *p = buf + 1;
	size_t n = len - 1;

	switch (buf[0]) {
	case WIRE_PING: rc = decode_body(scratch, p, n, B_PING, &out->u.ping); break;
	case WIRE_INDIRECT_PING: rc = decode_body(scratch, p, n, B_INDIRECT, &out->u.indirect); break;
	case WIRE_ACK: rc = decode_body(scratch, p, n, B_ACK, &out->u.ack); break;
	case WIRE_NACK: rc = decode_body(scratch, p, n, B_NACK, &out->u.nack); break;
	case WIRE_ERR: rc = decode_body(scratch, p, n, B_ERR, &out->u.err); break;
	case WIRE_SUSPECT: rc = decode_body(scratch, p, n, B_ACCUSE, &out->u.suspect); break;
	case WIRE_DEAD: rc = decode_body(scratch, p, n, B_ACCUSE, &out->u.dead); break;
	case WIRE_ALIVE: rc = decode_body(scratch, p, n, B_ALIVE, &out->u.alive); break;
	case WIRE_USER:
		/* Over UDP the user payload follows the type byte verbatim. */
		out->u.user.payload.p = p;
		out->u.user.payload.len = (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
		if (n > UINT32_MAX)
			rc = WIRE_ETOOBIG;
		else
			rc = WIRE_OK;
		break;
	default:
		rc = WIRE_ETYPE;
	}
	if (rc != WIRE_OK) {
		memset(out, 0, sizeof *out);
		out->type = (enum wire_type)buf[0];
	}
	return rc;
}

int wire_decode(const uint8_t *buf, size_t len, struct wire_msg *out)
{
	return wire_decode_in(NULL, buf, len, out);
}

/* ---------------------------------------------------------------- encode */

/*
 * The packer's write callback and the helpers below are always inlined
 * into the encoders, where the packer is a local: GCC then knows its
 * callback is pk_write and calls it directly, inline, instead of through
 * msgpack-c's function pointer for each of the ~20 pieces of a message
 * (alive message: 130 -> 90 ns).
 */
static inline __attribute__((always_inline)) int pk_write(void *data, const char *buf, size_t len)
{
	return wbuf_append(data, buf, len) == WIRE_OK ? 0 : -1;
}

/* Old-format raw: what go-msgpack writes for both string and []byte. */
static inline __attribute__((always_inline)) void pk_raw(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_v4raw(pk, n);
	if (n)
		msgpack_pack_v4raw_body(pk, p, n);
}

static inline __attribute__((always_inline)) void pk_key(msgpack_packer *pk, const char *k)
{
	pk_raw(pk, k, strlen(k));
}

static inline __attribute__((always_inline)) void pk_str(msgpack_packer *pk, const struct wire_bytes *b)
{
	pk_raw(pk, b->p, b->len);
}

/* A Go []byte: nil stays nil, an empty but non-nil slice is a 0-length raw. */
static inline __attribute__((always_inline)) void pk_slice(msgpack_packer *pk, const struct wire_bytes *b)
{
	if (b->p == NULL && b->len == 0)
		msgpack_pack_nil(pk);
	else
		pk_raw(pk, b->p, b->len);
}

static inline __attribute__((always_inline)) void pk_ip(msgpack_packer *pk, const struct wire_addr *a)
{
	if (a->ip_len == 0)
		msgpack_pack_nil(pk);
	else
		pk_raw(pk, a->ip, a->ip_len);
}

static inline __attribute__((always_inline)) void pk_vsn(msgpack_packer *pk, const uint8_t *vsn, uint8_t n)
{
	if (n == 0)
		msgpack_pack_nil(pk);
	else
		pk_raw(pk, vsn, n);
}

/* Refuse to send what we would refuse to receive. */
static int check_bytes(const struct wire_bytes *b, uint32_t limit)
{
	if (b->len && !b->p)
		return WIRE_EFORMAT;
	if (limit && b->len > limit)
		return WIRE_ETOOBIG;
	return WIRE_OK;
}

static int check_ip(const struct wire_addr *a)
{
	return a->ip_len == 0 || a->ip_len == 4 || a->ip_len == 16 ? WIRE_OK : WIRE_EFORMAT;
}

static int check_vsn(uint8_t n)
{
	return n == 0 || n == 6 ? WIRE_OK : WIRE_EFORMAT;
}

static int check_msg(const struct wire_msg *m)
{
	switch (m->type) {
	case WIRE_PING:
		TRY(check_bytes(&m->u.ping.node, WIRE_NAME_MAX));
		TRY(check_bytes(&m->u.ping.source_node, WIRE_NAME_MAX));
		return check_ip(&m->u.ping.source);
	case WIRE_INDIRECT_PING:
		TRY(check_bytes(&m->u.indirect.node, WIRE_NAME_MAX));
		TRY(check_bytes(&m->u.indirect.source_node, WIRE_NAME_MAX));
		TRY(check_ip(&m->u.indirect.source));
		return check_ip(&m->u.indirect.target);
	case WIRE_ACK:
		return check_bytes(&m->u.ack.payload, 0);
	case WIRE_NACK:
		return WIRE_OK;
	case WIRE_ERR:
		return check_bytes(&m->u.err.error, 0);
	case WIRE_SUSPECT:
	case WIRE_DEAD:
		TRY(check_bytes(&m->u.suspect.node, WIRE_NAME_MAX));
		return check_bytes(&m->u.suspect.from, WIRE_NAME_MAX);
	case WIRE_ALIVE:
		TRY(check_bytes(&m->u.alive.node, WIRE_NAME_MAX));
		TRY(check_bytes(&m->u.alive.meta, WIRE_META_MAX));
		TRY(check_ip(&m->u.alive.addr));
		return check_vsn(m->u.alive.vsn_len);
	case WIRE_USER:
		return check_bytes(&m->u.user.payload, 0);
	default:
		return WIRE_ETYPE;
	}
}

/*
 * Keys are written in the byte order go-msgpack sorts Go field names into,
 * and omitempty fields (ping's Source*) only when non-zero.
 */
static inline __attribute__((always_inline)) void enc_source(msgpack_packer *pk, const struct wire_addr *src,
		       const struct wire_bytes *src_node)
{
	if (src->ip_len) {
		pk_key(pk, "SourceAddr");
		pk_ip(pk, src);
	}
	if (src_node->len) {
		pk_key(pk, "SourceNode");
		pk_str(pk, src_node);
	}
	if (src->port) {
		pk_key(pk, "SourcePort");
		msgpack_pack_uint16(pk, src->port);
	}
}

static size_t n_source(const struct wire_addr *src, const struct wire_bytes *src_node)
{
	return (src->ip_len != 0) + (src_node->len != 0) + (src->port != 0);
}

int wire_encode(struct wbuf *out, const struct wire_msg *m)
{
	msgpack_packer pk;
	size_t start = out->len;
	int rc = check_msg(m);
	if (rc != WIRE_OK)
		return rc;

	msgpack_packer_init(&pk, out, pk_write);
	wbuf_byte(out, (uint8_t)m->type);
	switch (m->type) {
	case WIRE_PING: {
		const struct wire_ping *p = &m->u.ping;
		msgpack_pack_map(&pk, 2 + n_source(&p->source, &p->source_node));
		pk_key(&pk, "Node");
		pk_str(&pk, &p->node);
		pk_key(&pk, "SeqNo");
		msgpack_pack_uint32(&pk, p->seq);
		enc_source(&pk, &p->source, &p->source_node);
		break;
	}
	case WIRE_INDIRECT_PING: {
		const struct wire_indirect_ping *p = &m->u.indirect;
		msgpack_pack_map(&pk, 5 + n_source(&p->source, &p->source_node));
		pk_key(&pk, "Nack");
		if (p->nack)
			msgpack_pack_true(&pk);
		else
			msgpack_pack_false(&pk);
		pk_key(&pk, "Node");
		pk_str(&pk, &p->node);
		pk_key(&pk, "Port");
		msgpack_pack_uint16(&pk, p->target.port);
		pk_key(&pk, "SeqNo");
		msgpack_pack_uint32(&pk, p->seq);
		enc_source(&pk, &p->source, &p->source_node);
		pk_key(&pk, "Target");
		pk_ip(&pk, &p->target);
		break;
	}
	case WIRE_ACK:
		msgpack_pack_map(&pk, 2);
		pk_key(&pk, "Payload");
		pk_slice(&pk, &m->u.ack.payload);
		pk_key(&pk, "SeqNo");
		msgpack_pack_uint32(&pk, m->u.ack.seq);
		break;
	case WIRE_NACK:
		msgpack_pack_map(&pk, 1);
		pk_key(&pk, "SeqNo");
		msgpack_pack_uint32(&pk, m->u.nack.seq);
		break;
	case WIRE_ERR:
		msgpack_pack_map(&pk, 1);
		pk_key(&pk, "Error");
		pk_str(&pk, &m->u.err.error);
		break;
	case WIRE_SUSPECT:
	case WIRE_DEAD: {
		/* suspect and dead share the union slot layout */
		const struct wire_accuse *a =
			m->type == WIRE_SUSPECT ? &m->u.suspect : &m->u.dead;
		msgpack_pack_map(&pk, 3);
		pk_key(&pk, "From");
		pk_str(&pk, &a->from);
		pk_key(&pk, "Incarnation");
		msgpack_pack_uint32(&pk, a->incarnation);
		pk_key(&pk, "Node");
		pk_str(&pk, &a->node);
		break;
	}
	case WIRE_ALIVE: {
		const struct wire_alive *a = &m->u.alive;
		msgpack_pack_map(&pk, 6);
		pk_key(&pk, "Addr");
		pk_ip(&pk, &a->addr);
		pk_key(&pk, "Incarnation");
		msgpack_pack_uint32(&pk, a->incarnation);
		pk_key(&pk, "Meta");
		pk_slice(&pk, &a->meta);
		pk_key(&pk, "Node");
		pk_str(&pk, &a->node);
		pk_key(&pk, "Port");
		msgpack_pack_uint16(&pk, a->addr.port);
		pk_key(&pk, "Vsn");
		pk_vsn(&pk, a->vsn, a->vsn_len);
		break;
	}
	case WIRE_USER:
		wbuf_append(out, m->u.user.payload.p, m->u.user.payload.len);
		break;
	default:
		break; /* excluded by check_msg */
	}
	if (out->oom) {
		out->len = start;
		return WIRE_ENOMEM;
	}
	return WIRE_OK;
}

/* -------------------------------------------------------------- packets */

int wire_make_compound(struct wbuf *out, const struct wire_bytes *msgs, size_t n)
{
	if (n > UINT8_MAX)
		return WIRE_ETOOBIG;
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].len > UINT16_MAX)
			return WIRE_ETOOBIG;
		if (msgs[i].len && !msgs[i].p)
			return WIRE_EFORMAT;
	}
	size_t start = out->len;
	wbuf_byte(out, WIRE_COMPOUND);
	wbuf_byte(out, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t be[2];
		put_be16(be, (uint16_t)msgs[i].len);
		wbuf_append(out, be, 2);
	}
	for (size_t i = 0; i < n; i++)
		wbuf_append(out, msgs[i].p, msgs[i].len);
	if (out->oom) {
		out->len = start;
		return WIRE_ENOMEM;
	}
	return WIRE_OK;
}

int wire_add_crc(struct wbuf *out, const uint8_t *pkt, size_t len)
{
	uint8_t hdr[5];
	size_t start = out->len;
	hdr[0] = WIRE_HAS_CRC;
	put_be32(hdr + 1, libdeflate_crc32(0, pkt, len));
	wbuf_append(out, hdr, sizeof hdr);
	wbuf_append(out, pkt, len);
	if (out->oom) {
		out->len = start;
		return WIRE_ENOMEM;
	}
	return WIRE_OK;
}

int wire_compress(struct wbuf *out, const uint8_t *msg, size_t len)
{
	struct wbuf z;
	msgpack_packer pk;
	size_t start = out->len;
	int rc;

	wbuf_init(&z);
	rc = lzw_compress(&z, msg, len);
	if (rc == WIRE_OK && z.len > UINT32_MAX)
		rc = WIRE_ETOOBIG;
	if (rc == WIRE_OK) {
		/* compress{Algo: lzwAlgo (0), Buf: []byte} */
		msgpack_packer_init(&pk, out, pk_write);
		wbuf_byte(out, WIRE_COMPRESS);
		msgpack_pack_map(&pk, 2);
		pk_key(&pk, "Algo");
		msgpack_pack_uint8(&pk, 0);
		pk_key(&pk, "Buf");
		pk_raw(&pk, z.p, z.len);
		if (out->oom) {
			out->len = start;
			rc = WIRE_ENOMEM;
		}
	}
	wbuf_free(&z);
	return rc;
}

/*
 * Decode a compress envelope (buf[0] == WIRE_COMPRESS) and append at most
 * max_out inflated bytes to out; on failure out is left as it was.
 */
static int decompress_bounded(const uint8_t *buf, size_t len, struct wbuf *out,
			      size_t max_out)
{
	msgpack_unpacked u;
	size_t used, start = out->len;
	struct span in = { buf, buf + len };
	uint64_t algo = 0;
	struct wire_bytes data = { NULL, 0 };
	bool have_buf = false;
	int rc;

	if (len < 1)
		return WIRE_ETRUNC;
	if (buf[0] != WIRE_COMPRESS)
		return WIRE_ETYPE;
	msgpack_unpacked_init(&u);
	rc = wire_msgpack_unpack(buf + 1, len - 1, SIZE_MAX, &u, &used);
	if (rc == WIRE_OK && u.data.type != MSGPACK_OBJECT_MAP)
		rc = WIRE_EFORMAT;
	if (rc == WIRE_OK) {
		FOR_EACH_KV(&u.data, kv) {
			if (mpack_key_is(&kv->key, "Algo"))
				rc = get_uint(&kv->val, UINT64_MAX, &algo);
			else if (mpack_key_is(&kv->key, "Buf")) {
				rc = get_bytes(&kv->val, &in, 0, &data);
				have_buf = true;
			}
			if (rc != WIRE_OK)
				break;
		}
	}
	msgpack_unpacked_destroy(&u);
	if (rc != WIRE_OK)
		return rc;
	if (algo != 0) /* only lzwAlgo exists */
		return WIRE_EFORMAT;
	if (!have_buf)
		return WIRE_EFORMAT;
	rc = lzw_decompress(out, data.p, data.len, max_out);
	if (rc != WIRE_OK) {
		out->len = start;
		out->oom = false;
	}
	return rc;
}

int wire_decompress(const uint8_t *buf, size_t len, struct wbuf *out)
{
	return decompress_bounded(buf, len, out, WIRE_PUSH_MAX);
}

/*
 * Unwrapping happens in two passes so that a bad envelope anywhere rejects
 * the packet before any message is delivered: the first pass validates
 * everything and collects message ranges (keeping inflated buffers alive),
 * the second calls fn.
 */
#define UNWRAP_INLINE 64     /* messages of one packet held without a heap array */

struct unwrap {
	struct wire_bytes *msgs;     /* inline_msgs until more are needed */
	size_t n, cap;
	struct wire_bytes inline_msgs[UNWRAP_INLINE];
	struct wbuf *bufs;
	size_t nbufs, capbufs;
	size_t inflate_left;
};

static int unwrap_push(struct unwrap *u, const uint8_t *p, size_t len)
{
	if (u->n == u->cap) {
		/* Past the inline array (a compound of compounds): to the heap. */
		size_t cap = u->cap * 2;
		struct wire_bytes *m = malloc(cap * sizeof *m);
		if (!m)
			return WIRE_ENOMEM;
		memcpy(m, u->msgs, u->n * sizeof *m);
		if (u->msgs != u->inline_msgs)
			free(u->msgs);
		u->msgs = m;
		u->cap = cap;
	}
	u->msgs[u->n].p = p;
	u->msgs[u->n].len = (uint32_t)len;
	u->n++;
	return WIRE_OK;
}

static struct wbuf *unwrap_newbuf(struct unwrap *u)
{
	struct wbuf *grown = array_grow(u->bufs, &u->capbufs, u->nbufs + 1, sizeof *grown, 4);
	if (!grown)
		return NULL;
	u->bufs = grown;
	struct wbuf *b = &u->bufs[u->nbufs++];
	wbuf_init(b);
	return b;
}

static int unwrap_rec(struct unwrap *u, const uint8_t *p, size_t len, int depth)
{
	if (len < 1)
		return WIRE_ETRUNC;

	switch (p[0]) {
	case WIRE_HAS_CRC:
		/*
		 * memberlist only looks for a checksum on the outside of a packet;
		 * deeper down type 12 is just an unsupported message, so it is
		 * passed on like any other message (wire_decode says ETYPE).
		 */
		if (depth != 0)
			break;
		if (len < 5)
			return WIRE_ETRUNC;
		if (libdeflate_crc32(0, p + 5, len - 5) != get_be32(p + 1))
			return WIRE_ECRC;
		if (depth + 1 > WIRE_NEST_MAX)
			return WIRE_ENEST;
		return unwrap_rec(u, p + 5, len - 5, depth + 1);

	case WIRE_COMPRESS: {
		if (depth + 1 > WIRE_NEST_MAX)
			return WIRE_ENEST;
		struct wbuf *b = unwrap_newbuf(u);
		if (!b)
			return WIRE_ENOMEM;
		int rc = decompress_bounded(p, len, b, u->inflate_left);
		if (rc != WIRE_OK)
			return rc;
		u->inflate_left -= b->len;
		/*
		 * The inflated bytes stay in b until delivery; b->p is stable
		 * because nothing appends to b again (u->bufs may move, the
		 * heap blocks they point to do not).
		 */
		return unwrap_rec(u, b->p, b->len, depth + 1);
	}

	case WIRE_COMPOUND: {
		/*
		 * memberlist delivers the complete parts of a truncated compound
		 * and drops the rest.  We reject the whole compound instead: a
		 * header that promises more than is there means the packet is
		 * damaged or forged, and half-processing it helps nobody.  A
		 * zero-length part (which would crash memberlist) is refused
		 * too.  Bytes after the last part are ignored, as memberlist
		 * does.
		 */
		if (depth + 1 > WIRE_NEST_MAX)
			return WIRE_ENEST;
		if (len < 2)
			return WIRE_ETRUNC;
		size_t n = p[1];
		size_t hdr = 2 + 2 * n;
		if (len < hdr)
			return WIRE_ETRUNC;
		size_t total = 0;
		for (size_t i = 0; i < n; i++) {
			size_t l = (size_t)p[2 + 2 * i] << 8 | p[3 + 2 * i];
			if (l == 0)
				return WIRE_EFORMAT;
			total += l;
		}
		if (total > len - hdr)
			return WIRE_ETRUNC;
		const uint8_t *part = p + hdr;
		for (size_t i = 0; i < n; i++) {
			size_t l = (size_t)p[2 + 2 * i] << 8 | p[3 + 2 * i];
			int rc = unwrap_rec(u, part, l, depth + 1);
			if (rc != WIRE_OK)
				return rc;
			part += l;
		}
		return WIRE_OK;
	}
	default:
		break;
	}
	/* Everything else (including encrypt, which the transport removes
	 * before us) is a message for the caller to decode or refuse. */
	return unwrap_push(u, p, len);
}

int wire_unwrap_packet_all(const uint8_t *pkt, size_t len, wire_msgs_fn fn, void *ctx)
{
	struct unwrap u;
	int rc;

	if (len > WIRE_UDP_MAX)
		return WIRE_ETOOBIG;
	/* Not zeroed whole: the inline array is written before it is read. */
	u.msgs = u.inline_msgs;
	u.n = 0;
	u.cap = UNWRAP_INLINE;
	u.bufs = NULL;
	u.nbufs = u.capbufs = 0;
	u.inflate_left = WIRE_PACKET_INFLATE_MAX;
	rc = unwrap_rec(&u, pkt, len, 0);
	if (rc == WIRE_OK && u.n > 0)
		fn(ctx, u.msgs, u.n);
	for (size_t i = 0; i < u.nbufs; i++)
		wbuf_free(&u.bufs[i]);
	free(u.bufs);
	if (u.msgs != u.inline_msgs)
		free(u.msgs);
	return rc;
}

struct each_msg {
	wire_msg_fn fn;
	void *ctx;
};

static void call_each(void *vctx, const struct wire_bytes *msgs, size_t n)
{
	const struct each_msg *e = vctx;
	for (size_t i = 0; i < n; i++)
		e->fn(e->ctx, msgs[i].p, msgs[i].len);
}

int wire_unwrap_packet(const uint8_t *pkt, size_t len, wire_msg_fn fn, void *ctx)
{
	struct each_msg e = { fn, ctx };
	return wire_unwrap_packet_all(pkt, len, call_each, &e);
}

/* -------------------------------------------------------------- streams */

/* pushPullHeader / userMsgHeader fields (Go ints: negatives refused). */
struct stream_hdr {
	uint64_t nodes, user_len;
	bool join;
};

/*
 * Decode the stream header map at p.  limit bounds how far we are willing
 * to wait for it.  *used gets the header's length.
 */
static int dec_stream_hdr(const uint8_t *p, size_t len, size_t limit, bool push,
			  struct stream_hdr *h, size_t *used)
{
	msgpack_unpacked u;
	int rc;

	memset(h, 0, sizeof *h);
	msgpack_unpacked_init(&u);
	rc = wire_msgpack_unpack(p, len, limit, &u, used);
	if (rc == WIRE_OK && u.data.type != MSGPACK_OBJECT_MAP)
		rc = WIRE_EFORMAT;
	if (rc == WIRE_OK) {
		FOR_EACH_KV(&u.data, kv) {
			if (!push) {
				if (mpack_key_is(&kv->key, "UserMsgLen"))
					rc = get_uint(&kv->val, UINT64_MAX, &h->user_len);
			} else if (mpack_key_is(&kv->key, "Nodes")) {
				rc = get_uint(&kv->val, UINT64_MAX, &h->nodes);
			} else if (mpack_key_is(&kv->key, "UserStateLen")) {
				rc = get_uint(&kv->val, UINT64_MAX, &h->user_len);
			} else if (mpack_key_is(&kv->key, "Join")) {
				rc = get_bool(&kv->val, &h->join);
			}
			if (rc != WIRE_OK)
				break;
		}
	}
	msgpack_unpacked_destroy(&u);
	if (rc == WIRE_OK && (h->nodes > WIRE_PUSH_NODES_MAX || h->user_len > WIRE_PUSH_MAX))
		rc = WIRE_ETOOBIG;
	return rc;
}

/*
 * Frame lengths, per first byte:
 *   0 ping, 2 ack, 13 err   type + one msgpack map (ack and err are what a
 *                           stream ping / failed stream get back)
 *   6 pushPull              type + header + Nodes node maps + UserStateLen
 *   8 user                  type + header + UserMsgLen bytes
 *   9 compress              type + one msgpack map
 *   10 encrypt              type + u32 BE length + that many bytes
 * Sizes beyond the limits are refused as soon as the declared lengths are
 * visible, so a peer cannot make us buffer without bound.
 *
 * The scan restarts from the beginning on every call; that costs a walk of
 * the msgpack headers (not the bytes) per call, fine for the sizes allowed.
 */
long wire_stream_frame_len(const uint8_t *buf, size_t len)
{
	size_t used, off;
	struct stream_hdr h;
	int rc;

	if (len < 1)
		return 0;
	switch (buf[0]) {
	case WIRE_PING:
	case WIRE_ACK:
	case WIRE_ERR:
	case WIRE_COMPRESS: {
		size_t limit = buf[0] == WIRE_COMPRESS ? WIRE_PUSH_MAX + WIRE_STREAM_OBJ_MAX
						       : WIRE_STREAM_OBJ_MAX;
		rc = wire_msgpack_span(buf + 1, len - 1, limit, &used);
		if (rc == WIRE_ETRUNC)
			return 0;
		if (rc != WIRE_OK)
			return rc;
		return (long)(1 + used);
	}
	case WIRE_PUSH_PULL:
	case WIRE_USER:
		rc = dec_stream_hdr(buf + 1, len - 1, WIRE_STREAM_OBJ_MAX,
				    buf[0] == WIRE_PUSH_PULL, &h, &used);
		if (rc == WIRE_ETRUNC)
			return 0;
		if (rc != WIRE_OK)
			return rc;
		off = 1 + used;
		for (uint64_t i = 0; i < h.nodes; i++) {
			rc = wire_msgpack_span(buf + off, len - off, WIRE_STREAM_OBJ_MAX, &used);
			if (rc == WIRE_ETRUNC)
				return 0;
			if (rc != WIRE_OK)
				return rc;
			off += used;
			if (off > (size_t)WIRE_PUSH_MAX + WIRE_STREAM_OBJ_MAX)
				return WIRE_ETOOBIG;
		}
		if (len - off < h.user_len)
			return 0;
		return (long)(off + h.user_len);
	case WIRE_ENCRYPT: {
		if (len < 5)
			return 0;
		uint32_t n = get_be32(buf + 1);
		if (n > WIRE_PUSH_MAX)
			return WIRE_ETOOBIG;
		if (len - 5 < n)
			return 0;
		return (long)(5 + (size_t)n);
	}
	default:
		return WIRE_ETYPE;
	}
}

int wire_encode_push_pull(struct wbuf *out, bool join,
			  const struct wire_node_state_entry *nodes, uint32_t n,
			  const uint8_t *user_state, uint32_t user_len)
{
	msgpack_packer pk;
	size_t start = out->len;

	if (n > WIRE_PUSH_NODES_MAX || user_len > WIRE_PUSH_MAX)
		return WIRE_ETOOBIG;
	if (user_len && !user_state)
		return WIRE_EFORMAT;
	for (uint32_t i = 0; i < n; i++) {
		TRY(check_bytes(&nodes[i].name, WIRE_NAME_MAX));
		TRY(check_bytes(&nodes[i].meta, WIRE_META_MAX));
		TRY(check_ip(&nodes[i].addr));
		TRY(check_vsn(nodes[i].vsn_len));
		if (nodes[i].state > WIRE_STATE_LEFT)
			return WIRE_EFORMAT;
	}

	msgpack_packer_init(&pk, out, pk_write);
	wbuf_byte(out, WIRE_PUSH_PULL);
	/* pushPullHeader{Nodes, UserStateLen, Join}, keys sorted */
	msgpack_pack_map(&pk, 3);
	pk_key(&pk, "Join");
	if (join)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	pk_key(&pk, "Nodes");
	msgpack_pack_uint32(&pk, n);
	pk_key(&pk, "UserStateLen");
	msgpack_pack_uint32(&pk, user_len);
	for (uint32_t i = 0; i < n; i++) {
		const struct wire_node_state_entry *e = &nodes[i];
		msgpack_pack_map(&pk, 7);
		pk_key(&pk, "Addr");
		pk_ip(&pk, &e->addr);
		pk_key(&pk, "Incarnation");
		msgpack_pack_uint32(&pk, e->incarnation);
		pk_key(&pk, "Meta");
		pk_slice(&pk, &e->meta);
		pk_key(&pk, "Name");
		pk_str(&pk, &e->name);
		pk_key(&pk, "Port");
		msgpack_pack_uint16(&pk, e->addr.port);
		pk_key(&pk, "State");
		msgpack_pack_uint8(&pk, e->state);
		pk_key(&pk, "Vsn");
		pk_vsn(&pk, e->vsn, e->vsn_len);
	}
	wbuf_append(out, user_state, user_len);
	if (out->oom) {
		out->len = start;
		return WIRE_ENOMEM;
	}
	return WIRE_OK;
}

int wire_decode_push_pull(const uint8_t *buf, size_t len, struct wire_push_pull *out)
{
	struct stream_hdr h;
	struct span in = { buf, buf + len };
	size_t used, off;
	int rc;

	memset(out, 0, sizeof *out);
	if (len < 1)
		return WIRE_ETRUNC;
	if (buf[0] != WIRE_PUSH_PULL)
		return WIRE_ETYPE;
	rc = dec_stream_hdr(buf + 1, len - 1, SIZE_MAX, true, &h, &used);
	if (rc != WIRE_OK)
		return rc;
	off = 1 + used;
	/* Each node needs at least one byte: check before allocating. */
	if (h.nodes > len - off)
		return WIRE_ETRUNC;
	if (h.nodes) {
		out->nodes = calloc((size_t)h.nodes, sizeof *out->nodes);
		if (!out->nodes)
			return WIRE_ENOMEM;
	}
	out->n_nodes = (uint32_t)h.nodes;
	out->join = h.join;

	for (uint64_t i = 0; i < h.nodes && rc == WIRE_OK; i++) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		rc = wire_msgpack_unpack(buf + off, len - off, SIZE_MAX, &u, &used);
		if (rc == WIRE_OK && u.data.type != MSGPACK_OBJECT_MAP)
			rc = WIRE_EFORMAT;
		if (rc == WIRE_OK)
			rc = dec_node_state(&u.data, &in, &out->nodes[i]);
		msgpack_unpacked_destroy(&u);
		off += used;
	}
	if (rc == WIRE_OK && len - off < h.user_len)
		rc = WIRE_ETRUNC;
	if (rc != WIRE_OK) {
		wire_push_pull_free(out);
		return rc;
	}
	out->user_state.p = buf + off;
	out->user_state.len = (uint32_t)h.user_len;
	return WIRE_OK;
}

void wire_push_pull_free(struct wire_push_pull *pp)
{
	free(pp->nodes);
	memset(pp, 0, sizeof *pp);
}

int wire_encode_stream_user(struct wbuf *out, const uint8_t *payload, uint32_t len)
{
	msgpack_packer pk;
	size_t start = out->len;

	if (len > WIRE_PUSH_MAX)
		return WIRE_ETOOBIG;
	if (len && !payload)
		return WIRE_EFORMAT;
	msgpack_packer_init(&pk, out, pk_write);
	wbuf_byte(out, WIRE_USER);
	msgpack_pack_map(&pk, 1);
	pk_key(&pk, "UserMsgLen");
	msgpack_pack_uint32(&pk, len);
	wbuf_append(out, payload, len);
	if (out->oom) {
		out->len = start;
		return WIRE_ENOMEM;
	}
	return WIRE_OK;
}

int wire_decode_stream_user(const uint8_t *buf, size_t len, struct wire_bytes *payload)
{
	struct stream_hdr h;
	size_t used;
	int rc;

	payload->p = NULL;
	payload->len = 0;
	if (len < 1)
		return WIRE_ETRUNC;
	if (buf[0] != WIRE_USER)
		return WIRE_ETYPE;
	rc = dec_stream_hdr(buf + 1, len - 1, SIZE_MAX, false, &h, &used);
	if (rc != WIRE_OK)
		return rc;
	if (len - 1 - used < h.user_len)
		return WIRE_ETRUNC;
	payload->p = buf + 1 + used;
	payload->len = (uint32_t)h.user_len;
	return WIRE_OK;
}
