/*
 * mp.h — msgpack helpers shared by the RPC server (rpc.c) and client
 * (rpcclient.c).
 *
 * serf's RPC is a plain stream of msgpack objects with no length prefix, so
 * the only way to know a request is complete is to walk it.  mp_frame_len()
 * does that without allocating, so a hostile peer can't make us allocate
 * based on a declared (but never sent) array length: msgpack-c only ever sees
 * a frame whose every declared element is actually present in the buffer.
 */
#ifndef VIGIL_AGENT_MP_H
#define VIGIL_AGENT_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest single msgpack object we accept from a peer. */
#define MP_MAX_FRAME (1u << 20)
/*
 * Largest response the agent builds (a longer one closes the connection)
 * and so the largest a client accepts: serf's Go client reads responses of
 * any size; 16 MiB holds e.g. 14,000 wills of 1 KiB for `vigil will show`.
 */
#define MP_MAX_RESPONSE (16u << 20)

/* 1: buf starts with a complete object of *out bytes; 0: need more bytes;
 * -1: not msgpack we accept (reserved byte, or larger than MP_MAX_FRAME). */
int mp_frame_len(const uint8_t *buf, size_t len, size_t *out);
/* The same with another size limit: responses (rpcclient) may be larger
 * than requests, up to MP_MAX_RESPONSE. */
int mp_frame_len_max(const uint8_t *buf, size_t len, size_t max, size_t *out);

/* Decode exactly one frame (length from mp_frame_len) into *res. */
bool mp_decode(msgpack_unpacked *res, const uint8_t *buf, size_t len);

/* Map lookup by string key (str or bin keys); NULL when absent or not a map. */
const msgpack_object *mp_get(const msgpack_object *map, const char *key);
/* str or bin → pointer + length (not NUL-terminated).  nil → empty. */
bool mp_as_bytes(const msgpack_object *o, const char **p, size_t *n);
/* Copy a str/bin into a NUL-terminated buffer; false if absent/too long. */
bool mp_get_str(const msgpack_object *map, const char *key, char *buf, size_t len);
/*
 * A name-like string for a C API: 1 copied, 0 absent (or nil; buf = ""),
 * -1 refused: not a str/bin, len or more bytes, or an embedded NUL (which
 * a C string would silently cut short).
 */
int mp_get_text(const msgpack_object *map, const char *key, char *buf, size_t len);
/* malloc'd NUL-terminated copy (NULL if absent or not a string). */
char *mp_get_strdup(const msgpack_object *map, const char *key);
bool mp_get_uint(const msgpack_object *map, const char *key, uint64_t *v);
bool mp_get_int(const msgpack_object *map, const char *key, int64_t *v);
bool mp_get_bool(const msgpack_object *map, const char *key, bool *v);

/* Packing helpers: strings always as msgpack str (Go's codec refuses bin
 * for string fields), byte payloads as bin. */
void mp_pack_cstr(msgpack_packer *pk, const char *s);
void mp_pack_strn(msgpack_packer *pk, const char *s, size_t n);
void mp_pack_binn(msgpack_packer *pk, const void *p, size_t n);
void mp_pack_kstr(msgpack_packer *pk, const char *key, const char *val);
void mp_pack_kuint(msgpack_packer *pk, const char *key, uint64_t v);
void mp_pack_kbool(msgpack_packer *pk, const char *key, bool v);

/* A body being packed: its buffer and a packer writing into it. */
struct mp_body {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};
/* Initialise b and start it with a map header of n entries; the caller packs
 * the entries into the returned packer and frees b->sb with
 * msgpack_sbuffer_destroy. */
msgpack_packer *mp_body_map(struct mp_body *b, size_t n);

#endif
