/*
 * mpack.h — the one family of msgpack helpers, over msgpack-c, for every
 * part of vigil that reads or writes msgpack by hand: the Serf layer
 * (serf.c, serf_query.c, serf_codec.c), its key manager (keymanager.c),
 * wills (will.c), the packet codec (wire.c) and the agent (agent/mp.c
 * forwards here).
 *
 * Map keys.  Go's msgpack codec, as serf and memberlist use it, writes a
 * struct's field names as strings — the old spec's "raw" family, which
 * msgpack-c reads as STR — and a newer peer may write them as bin.  We
 * accept both STR and BIN keys on read (the tolerant choice; neither can be
 * confused with a field of another name) and nothing else: a nil or integer
 * key never matches.  On write, keys are strings: old-spec raw where we
 * speak go-msgpack (serf's messages), str elsewhere.
 *
 * Values.  Two readings of nil exist on purpose: Go decodes nil into the
 * zero value, so the mpack_go_* readers (for go-msgpack's messages) take nil
 * as 0 / false / empty; the strict readers (mpack_uint, mpack_view) are for
 * formats of our own, where nil is simply wrong.
 */
#ifndef VIGIL_MPACK_H
#define VIGIL_MPACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ reading */

/* A str or bin as a view into the unpacked buffer; false for any other
 * type (nil included).  Inline: the packet codec calls it per map key. */
static inline __attribute__((always_inline)) bool
mpack_view(const msgpack_object *o, const uint8_t **p, uint32_t *n)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		*p = (const uint8_t *)o->via.str.ptr;
		*n = o->via.str.size;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		*p = (const uint8_t *)o->via.bin.ptr;
		*n = o->via.bin.size;
		return true;
	}
	return false;
}

/* Whether map key k is name (a str or bin key; see the top).  Always
 * inlined: name is a literal, so its strlen folds to a constant (the packet
 * codec compares every key of every message against several). */
static inline __attribute__((always_inline)) bool
mpack_key_is(const msgpack_object *k, const char *name)
{
	const uint8_t *p;
	uint32_t n;
	if (!mpack_view(k, &p, &n))
		return false;
	size_t l = strlen(name);
	return n == l && (l == 0 || memcmp(p, name, l) == 0);
}

/* The value at key in map, by mpack_key_is; NULL if absent or not a map. */
const msgpack_object *mpack_map_get(const msgpack_object *map, const char *key);

/* A positive integer no larger than max (no nil: formats of our own). */
bool mpack_uint(const msgpack_object *o, uint64_t max, uint64_t *v);

/* go-msgpack readers: nil is the Go zero value (0, false, NULL/empty). */
bool mpack_go_uint(const msgpack_object *o, uint64_t max, uint64_t *v);
bool mpack_go_int(const msgpack_object *o, int64_t *v);
bool mpack_go_bool(const msgpack_object *o, bool *v);
/* str, bin, or nil (*p = NULL, *n = 0). */
bool mpack_go_bytes(const msgpack_object *o, const uint8_t **p, uint32_t *n);
/* A Go string: str, bin, or nil as "" (never a NULL pointer). */
bool mpack_go_text(const msgpack_object *o, const char **p, size_t *n);
bool mpack_go_array(const msgpack_object *o, const msgpack_object **items, uint32_t *n);
bool mpack_go_map(const msgpack_object *o, const msgpack_object_kv **kv, uint32_t *n);
/* A map, and only a map (a message body: nil is no message). */
bool mpack_map(const msgpack_object *o, const msgpack_object_kv **kv, uint32_t *n);

/* Bytes as a C string: false if it would not fit cap (with its NUL) or
 * holds a NUL, which a C string would silently cut short. */
bool mpack_text_copy(const uint8_t *p, size_t n, char *out, size_t cap);
/* The same into malloc'd memory; NULL on a NUL byte or no memory. */
char *mpack_text_dup(const uint8_t *p, size_t n);

/* ------------------------------------------------------------ writing */

/* Strings as msgpack str (Go's codec refuses bin for string fields). */
int mpack_pack_str(msgpack_packer *pk, const void *s, size_t n);
int mpack_pack_bin(msgpack_packer *pk, const void *p, size_t n);
/* The old spec's raw (fixraw/raw16/raw32), as go-msgpack writes both
 * string and []byte. */
int mpack_pack_goraw(msgpack_packer *pk, const void *p, size_t n);
int mpack_pack_bool(msgpack_packer *pk, bool v);

/* A message being encoded: an optional type byte, then msgpack, into an
 * sbuffer; err collects every failure (no memory) so that callers check
 * once at the end. */
struct mpack_enc {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int err;
};

/* type < 0: no type byte. */
void mpack_enc_init(struct mpack_enc *e, int type);
void mpack_enc_free(struct mpack_enc *e);
void mpack_enc_str(struct mpack_enc *e, const char *s);
void mpack_enc_bin(struct mpack_enc *e, const void *p, size_t n);
void mpack_enc_goraw(struct mpack_enc *e, const void *p, size_t n);
void mpack_enc_gostr(struct mpack_enc *e, const char *s);
/* A Go []byte field: nil when empty, as an unset slice encodes. */
void mpack_enc_gobytes(struct mpack_enc *e, const void *p, size_t n);
void mpack_enc_u64(struct mpack_enc *e, uint64_t v);
void mpack_enc_i64(struct mpack_enc *e, int64_t v);
void mpack_enc_bool(struct mpack_enc *e, bool v);
void mpack_enc_nil(struct mpack_enc *e);
void mpack_enc_map(struct mpack_enc *e, size_t n);
void mpack_enc_array(struct mpack_enc *e, size_t n);

#endif
