/*
 * mp.c — msgpack framing and accessors; see mp.h for why framing is manual.
 * The accessors are the agent's names for the library's msgpack helpers
 * (src/mpack.h), so that RPC requests read keys and values by the same
 * rules as the gossip layer does (str or bin keys).
 */
#include "mp.h"

#include <string.h>

#include "mpack.h"
#include "wire.h"

int mp_frame_len(const uint8_t *buf, size_t len, size_t *out)
{
	return mp_frame_len_max(buf, len, MP_MAX_FRAME, out);
}

int mp_frame_len_max(const uint8_t *buf, size_t len, size_t max, size_t *out)
{
	/* the library's structure scan: never lets msgpack-c allocate for a
	 * header that claims more than the frame limit could hold */
	switch (wire_msgpack_span(buf, len, max, out)) {
	case WIRE_OK:
		return *out > max ? -1 : 1;
	case WIRE_ETRUNC:
		return 0;
	default:
		return -1;
	}
}

bool mp_decode(msgpack_unpacked *res, const uint8_t *buf, size_t len)
{
	/* msgpack-c points str/bin objects into the input buffer; give the
	 * object its own copy (in its zone) so callers may reuse theirs. */
	msgpack_unpacked_destroy(res);
	msgpack_unpacked_init(res);
	msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!z)
		return false;
	res->zone = z;
	char *copy = msgpack_zone_malloc(z, len ? len : 1);
	if (!copy)
		return false;
	memcpy(copy, buf, len);
	size_t off = 0;
	return msgpack_unpack(copy, len, &off, z, &res->data) == MSGPACK_UNPACK_SUCCESS &&
	       off == len;
}

bool mp_as_bytes(const msgpack_object *o, const char **p, size_t *n)
{
	return o && mpack_go_text(o, p, n);
}

const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
	return mpack_map_get(map, key);
}

bool mp_get_str(const msgpack_object *map, const char *key, char *buf, size_t len)
{
	const char *p;
	size_t n;
	if (!mp_as_bytes(mp_get(map, key), &p, &n) || n >= len)
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

int mp_get_text(const msgpack_object *map, const char *key, char *buf, size_t len)
{
	const msgpack_object *o = mp_get(map, key);
	const char *p;
	size_t n;
	buf[0] = '\0';
	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (!mp_as_bytes(o, &p, &n) || !mpack_text_copy((const uint8_t *)p, n, buf, len)) {
		buf[0] = '\0';
		return -1;
	}
	return 1;
}

char *mp_get_strdup(const msgpack_object *map, const char *key)
{
	const char *p;
	size_t n;
	if (!mp_as_bytes(mp_get(map, key), &p, &n))
		return NULL;
	return strndup(p, n);
}

/* The integer at key (either sign), or NULL. */
static const msgpack_object *get_integer(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = mp_get(map, key);
	if (o && (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
		  o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
		return o;
	return NULL;
}

bool mp_get_uint(const msgpack_object *map, const char *key, uint64_t *v)
{
	const msgpack_object *o = get_integer(map, key);
	if (!o)
		return false;
	*v = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : (uint64_t)o->via.i64;
	return true;
}

bool mp_get_int(const msgpack_object *map, const char *key, int64_t *v)
{
	const msgpack_object *o = get_integer(map, key);
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else
		*v = o->via.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
	return true;
}

bool mp_get_bool(const msgpack_object *map, const char *key, bool *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*v = o->via.boolean;
	return true;
}

void mp_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
	mpack_pack_str(pk, s, n);
}

void mp_pack_cstr(msgpack_packer *pk, const char *s)
{
	mp_pack_strn(pk, s ? s : "", s ? strlen(s) : 0);
}

void mp_pack_binn(msgpack_packer *pk, const void *p, size_t n)
{
	mpack_pack_bin(pk, p, n);
}

void mp_pack_kstr(msgpack_packer *pk, const char *key, const char *val)
{
	mp_pack_cstr(pk, key);
	mp_pack_cstr(pk, val);
}

void mp_pack_kuint(msgpack_packer *pk, const char *key, uint64_t v)
{
	mp_pack_cstr(pk, key);
	msgpack_pack_uint64(pk, v);
}

void mp_pack_kbool(msgpack_packer *pk, const char *key, bool v)
{
	mp_pack_cstr(pk, key);
	mpack_pack_bool(pk, v);
}

msgpack_packer *mp_body_map(struct mp_body *b, size_t n)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&b->pk, n);
	return &b->pk;
}
