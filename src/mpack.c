/* mpack.c — msgpack helpers over msgpack-c; see mpack.h for the rules. */
#include "mpack.h"

#include <stdlib.h>

const msgpack_object *mpack_map_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (mpack_key_is(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

bool mpack_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return false;
	*v = o->via.u64;
	return true;
}

bool mpack_go_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NIL) {
		*v = 0;
		return true;
	}
	return mpack_uint(o, max, v);
}

bool mpack_go_int(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NIL) {
		*v = 0;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT64_MAX)
		return false;
	*v = (int64_t)o->via.u64;
	return true;
}

bool mpack_go_bool(const msgpack_object *o, bool *v)
{
	if (o->type == MSGPACK_OBJECT_NIL) {
		*v = false;
		return true;
	}
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*v = o->via.boolean;
	return true;
}

bool mpack_go_bytes(const msgpack_object *o, const uint8_t **p, uint32_t *n)
{
	if (o->type == MSGPACK_OBJECT_NIL) {
		*p = NULL;
		*n = 0;
		return true;
	}
	return mpack_view(o, p, n);
}

bool mpack_go_text(const msgpack_object *o, const char **p, size_t *n)
{
	const uint8_t *view = (const uint8_t *)"";
	uint32_t len = 0;
	if (o->type != MSGPACK_OBJECT_NIL && !mpack_view(o, &view, &len))
		return false;
	*p = (const char *)view;
	*n = len;
	return true;
}

/* Arrays and maps: a nil one (a Go nil slice or map) is empty; on any
 * other type the outputs are empty too and the answer is false. */
bool mpack_go_array(const msgpack_object *o, const msgpack_object **items, uint32_t *n)
{
	bool is_array = o->type == MSGPACK_OBJECT_ARRAY;
	*items = is_array ? o->via.array.ptr : NULL;
	*n = is_array ? o->via.array.size : 0;
	return is_array || o->type == MSGPACK_OBJECT_NIL;
}

bool mpack_go_map(const msgpack_object *o, const msgpack_object_kv **kv, uint32_t *n)
{
	bool is_map = o->type == MSGPACK_OBJECT_MAP;
	*kv = is_map ? o->via.map.ptr : NULL;
	*n = is_map ? o->via.map.size : 0;
	return is_map || o->type == MSGPACK_OBJECT_NIL;
}

bool mpack_map(const msgpack_object *o, const msgpack_object_kv **kv, uint32_t *n)
{
	return o->type == MSGPACK_OBJECT_MAP && mpack_go_map(o, kv, n);
}

bool mpack_text_copy(const uint8_t *p, size_t n, char *out, size_t cap)
{
	if (n >= cap || (n && memchr(p, 0, n)))
		return false;
	if (n)
		memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

char *mpack_text_dup(const uint8_t *p, size_t n)
{
	if (n && memchr(p, 0, n))
		return NULL;
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* A header of n and then n bytes, by one of msgpack-c's pairs of calls. */
static int pack_sized(msgpack_packer *pk, int (*head)(msgpack_packer *, size_t),
		      int (*body)(msgpack_packer *, const void *, size_t), const void *p,
		      size_t n)
{
	int err = head(pk, n);
	if (n)
		err |= body(pk, p, n);
	return err;
}

int mpack_pack_str(msgpack_packer *pk, const void *s, size_t n)
{
	return pack_sized(pk, msgpack_pack_str, msgpack_pack_str_body, s, n);
}

int mpack_pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	return pack_sized(pk, msgpack_pack_bin, msgpack_pack_bin_body, p, n);
}

int mpack_pack_goraw(msgpack_packer *pk, const void *p, size_t n)
{
	return pack_sized(pk, msgpack_pack_v4raw, msgpack_pack_v4raw_body, p, n);
}

int mpack_pack_bool(msgpack_packer *pk, bool v)
{
	return v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

void mpack_enc_init(struct mpack_enc *e, int type)
{
	msgpack_sbuffer_init(&e->sb);
	msgpack_packer_init(&e->pk, &e->sb, msgpack_sbuffer_write);
	e->err = 0;
	if (type >= 0) {
		char t = (char)type;
		e->err |= msgpack_sbuffer_write(&e->sb, &t, 1);
	}
}

void mpack_enc_free(struct mpack_enc *e)
{
	msgpack_sbuffer_destroy(&e->sb);
}

void mpack_enc_str(struct mpack_enc *e, const char *s)
{
	e->err |= mpack_pack_str(&e->pk, s, strlen(s));
}

void mpack_enc_bin(struct mpack_enc *e, const void *p, size_t n)
{
	e->err |= mpack_pack_bin(&e->pk, p, n);
}

void mpack_enc_goraw(struct mpack_enc *e, const void *p, size_t n)
{
	e->err |= mpack_pack_goraw(&e->pk, p, n);
}

void mpack_enc_gostr(struct mpack_enc *e, const char *s)
{
	mpack_enc_goraw(e, s, strlen(s));
}

void mpack_enc_gobytes(struct mpack_enc *e, const void *p, size_t n)
{
	if (n == 0)
		mpack_enc_nil(e);
	else
		mpack_enc_goraw(e, p, n);
}

void mpack_enc_u64(struct mpack_enc *e, uint64_t v)
{
	e->err |= msgpack_pack_uint64(&e->pk, v);
}

void mpack_enc_i64(struct mpack_enc *e, int64_t v)
{
	e->err |= msgpack_pack_int64(&e->pk, v);
}

void mpack_enc_bool(struct mpack_enc *e, bool v)
{
	e->err |= mpack_pack_bool(&e->pk, v);
}

void mpack_enc_nil(struct mpack_enc *e)
{
	e->err |= msgpack_pack_nil(&e->pk);
}

void mpack_enc_map(struct mpack_enc *e, size_t n)
{
	e->err |= msgpack_pack_map(&e->pk, n);
}

void mpack_enc_array(struct mpack_enc *e, size_t n)
{
	e->err |= msgpack_pack_array(&e->pk, n);
}
