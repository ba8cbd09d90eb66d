/* mp.c — msgpack framing and accessors; see mp.h for why framing is manual. */
#include "mp.h"

#include <string.h>

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

int mp_frame_len(const uint8_t *buf, size_t len, size_t *out)
{
	size_t pos = 0;
	uint64_t need = 1; /* objects still to read */

	while (need > 0) {
		if (pos >= len)
			return pos >= MP_MAX_FRAME ? -1 : 0;
		uint8_t b = buf[pos];
		uint64_t hdr = 1, body = 0, children = 0;
		int lenbytes = 0;

		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, negative fixint, nil, false, true */
		} else if ((b & 0xe0) == 0xa0) {
			body = b & 0x1f; /* fixstr */
		} else if ((b & 0xf0) == 0x90) {
			children = b & 0x0f; /* fixarray */
		} else if ((b & 0xf0) == 0x80) {
			children = 2u * (b & 0x0f); /* fixmap */
		} else {
			switch (b) {
			case 0xc4: case 0xd9: lenbytes = 1; break;          /* bin8 str8 */
			case 0xc5: case 0xda: lenbytes = 2; break;          /* bin16 str16 */
			case 0xc6: case 0xdb: lenbytes = 4; break;          /* bin32 str32 */
			case 0xc7: lenbytes = 1; body = 1; break;           /* ext8 (+type) */
			case 0xc8: lenbytes = 2; body = 1; break;           /* ext16 */
			case 0xc9: lenbytes = 4; body = 1; break;           /* ext32 */
			case 0xca: body = 4; break;                         /* float32 */
			case 0xcb: body = 8; break;                         /* float64 */
			case 0xcc: case 0xd0: body = 1; break;
			case 0xcd: case 0xd1: body = 2; break;
			case 0xce: case 0xd2: body = 4; break;
			case 0xcf: case 0xd3: body = 8; break;
			case 0xd4: body = 2; break;                         /* fixext1 */
			case 0xd5: body = 3; break;
			case 0xd6: body = 5; break;
			case 0xd7: body = 9; break;
			case 0xd8: body = 17; break;
			case 0xdc: case 0xde: lenbytes = 2; break;          /* array16 map16 */
			case 0xdd: case 0xdf: lenbytes = 4; break;          /* array32 map32 */
			default: return -1;                                 /* 0xc1 never used */
			}
			if (lenbytes) {
				if (pos + 1 + (size_t)lenbytes > len)
					return pos + 1 + (size_t)lenbytes > MP_MAX_FRAME ? -1 : 0;
				uint64_t n = be(buf + pos + 1, lenbytes);
				hdr += (uint64_t)lenbytes;
				if (b == 0xdc || b == 0xdd)
					children = n;
				else if (b == 0xde || b == 0xdf)
					children = 2 * n;
				else
					body += n;
			}
		}
		/* Every child takes at least one byte, so a count larger than the
		 * frame limit can never be satisfied: reject it now instead of
		 * waiting for bytes that will never fit. */
		if (children > MP_MAX_FRAME || body > MP_MAX_FRAME)
			return -1;
		need = need - 1 + children;
		if (need > MP_MAX_FRAME)
			return -1;
		pos += (size_t)(hdr + body);
		if (pos > MP_MAX_FRAME)
			return -1;
	}
	if (pos > len)
		return 0;
	*out = pos;
	return 1;
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
	if (!o)
		return false;
	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		*p = o->via.str.ptr;
		*n = o->via.str.size;
		return true;
	case MSGPACK_OBJECT_BIN:
		*p = o->via.bin.ptr;
		*n = o->via.bin.size;
		return true;
	case MSGPACK_OBJECT_NIL:
		*p = "";
		*n = 0;
		return true;
	default:
		return false;
	}
}

const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const char *p;
		size_t n;
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_NIL)
			continue;
		if (mp_as_bytes(&kv->key, &p, &n) && n == kl && memcmp(p, key, n) == 0)
			return &kv->val;
	}
	return NULL;
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

char *mp_get_strdup(const msgpack_object *map, const char *key)
{
	const char *p;
	size_t n;
	if (!mp_as_bytes(mp_get(map, key), &p, &n))
		return NULL;
	return strndup(p, n);
}

bool mp_get_uint(const msgpack_object *map, const char *key, uint64_t *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*v = o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = (uint64_t)o->via.i64;
		return true;
	}
	return false;
}

bool mp_get_int(const msgpack_object *map, const char *key, int64_t *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*v = o->via.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
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
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void mp_pack_cstr(msgpack_packer *pk, const char *s)
{
	mp_pack_strn(pk, s ? s : "", s ? strlen(s) : 0);
}

void mp_pack_binn(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	if (n)
		msgpack_pack_bin_body(pk, p, n);
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
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}
