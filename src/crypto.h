/*
 * crypto.h — memberlist-compatible encryption (HashiCorp memberlist 0.2.x,
 * as used by serf) and the keyring that feeds it.
 *
 * An encrypted payload is
 *
 *     [version u8][nonce 12][AES-GCM ciphertext][GCM tag 16]
 *
 * with version 0 (plaintext PKCS7-padded to 16 bytes; used when the
 * memberlist protocol version is 1) or version 1 (no padding; protocol >= 2,
 * which is what every serf agent speaks).  The AES variant follows the key
 * length: 16, 24 or 32 bytes select AES-128/192/256.
 *
 * Where it is used (memberlist net.go):
 *   - UDP packets: the whole datagram is one payload, additional
 *     authenticated data (AAD) is empty.
 *   - TCP streams: [encryptMsg=10][u32 big-endian payload length][payload],
 *     and the 5 header bytes are the AAD, so the length cannot be altered.
 *
 * All functions validate lengths before touching memory and return a
 * negative VIGIL_CRYPTO_E* code on any malformed input; none of them abort.
 *
 * Threading: a keyring is plain data.  Concurrent vigil_encrypt/decrypt on
 * one keyring are fine; mutating it (add/use/remove) while others read it
 * needs the caller's own lock.
 */
#ifndef VIGIL_CRYPTO_H
#define VIGIL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define VIGIL_KEYRING_MAX 16   /* keys held at once (memberlist: unbounded) */
#define VIGIL_KEY_MAX 32       /* longest key: AES-256 */
#define VIGIL_KEY_B64_SIZE 45  /* base64 of a 32-byte key + NUL */

#define VIGIL_CRYPTO_NONCE_SIZE 12
#define VIGIL_CRYPTO_TAG_SIZE 16
#define VIGIL_CRYPTO_OVERHEAD_V0 45 /* version 1 + nonce 12 + pad <=16 + tag 16 */
#define VIGIL_CRYPTO_OVERHEAD_V1 29 /* version 1 + nonce 12 + tag 16 */
#define VIGIL_CRYPTO_STREAM_HDR 5   /* [10][u32 BE length] */
#define VIGIL_CRYPTO_STREAM_MAX (20u * 1024 * 1024) /* memberlist maxPushStateBytes */
#define VIGIL_CRYPTO_ENCRYPT_MSG 10 /* memberlist encryptMsg type byte */

enum vigil_crypto_error {
	VIGIL_CRYPTO_OK = 0,
	VIGIL_CRYPTO_EKEYLEN = -1,  /* key is not 16, 24 or 32 bytes */
	VIGIL_CRYPTO_EBASE64 = -2,  /* key is not valid standard base64 */
	VIGIL_CRYPTO_EFULL = -3,    /* keyring already holds VIGIL_KEYRING_MAX keys */
	VIGIL_CRYPTO_ENOKEY = -4,   /* key is not installed */
	VIGIL_CRYPTO_EPRIMARY = -5, /* refusing to remove the primary key */
	VIGIL_CRYPTO_EEMPTY = -6,   /* keyring has no keys */
	VIGIL_CRYPTO_EVERSION = -7, /* unsupported encryption version */
	VIGIL_CRYPTO_ETRUNC = -8,   /* input shorter than its format requires */
	VIGIL_CRYPTO_EAUTH = -9,    /* no installed key authenticates the payload */
	VIGIL_CRYPTO_EPAD = -10,    /* authenticated but PKCS7 padding is invalid */
	VIGIL_CRYPTO_ENOSPC = -11,  /* output buffer too small */
	VIGIL_CRYPTO_ETOOBIG = -12, /* length exceeds a protocol or API limit */
	VIGIL_CRYPTO_EFRAME = -13,  /* stream frame: wrong type byte or trailing bytes */
	VIGIL_CRYPTO_EINVAL = -14,  /* NULL or otherwise unusable argument */
	VIGIL_CRYPTO_ENOMEM = -15,
	VIGIL_CRYPTO_EIO = -16,     /* keyring file I/O failed; errno is kept */
	VIGIL_CRYPTO_EJSON = -17,   /* keyring file is not a JSON array of strings */
	VIGIL_CRYPTO_ELIB = -18,    /* libcrypto failure (including RAND_bytes) */
};

const char *vigil_crypto_strerror(int err);

/* ---- keys ---- */

/*
 * Decode one base64 key as given to `serf agent -encrypt=` (standard
 * alphabet, '=' padding required, no whitespace).  key must hold
 * VIGIL_KEY_MAX bytes.  EBASE64 for bad base64, EKEYLEN for a well-formed
 * string of the wrong size.
 */
int vigil_key_parse(const char *b64, uint8_t *key, size_t *key_len);

/* Encode a key (16/24/32 bytes) into out[VIGIL_KEY_B64_SIZE], NUL terminated. */
int vigil_key_encode(const uint8_t *key, size_t key_len, char *out);

/* ---- keyring (memberlist keyring.go semantics) ---- */

struct vigil_keyring;

/* An empty keyring, or NULL when out of memory. */
struct vigil_keyring *vigil_keyring_new(void);
/* Wipes the key material and frees.  NULL is fine. */
void vigil_keyring_free(struct vigil_keyring *kr);

/*
 * Install a key for decryption.  The first key installed becomes primary;
 * installing a key that is already present is a successful no-op.
 */
int vigil_keyring_add(struct vigil_keyring *kr, const uint8_t *key, size_t len);
/* vigil_keyring_add of a base64 key (vigil_key_parse errors apply). */
int vigil_keyring_add_b64(struct vigil_keyring *kr, const char *b64);
/* Make an installed key primary; the other keys keep their relative order. */
int vigil_keyring_use(struct vigil_keyring *kr, const uint8_t *key, size_t len);
/*
 * Remove a key.  EPRIMARY for the primary key (as memberlist).  ENOKEY if it
 * is not installed — memberlist returns success there; callers that want the
 * idempotent behaviour can treat ENOKEY as success.
 */
int vigil_keyring_remove(struct vigil_keyring *kr, const uint8_t *key, size_t len);

size_t vigil_keyring_count(const struct vigil_keyring *kr);
/* Key i (0 = primary), its length in *len; NULL when i is out of range. */
const uint8_t *vigil_keyring_key(const struct vigil_keyring *kr, size_t i, size_t *len);
/*
 * Base64 of every key, primary first, into out[0..max-1]; *n gets the count.
 * ENOSPC if max < count (nothing useful written then).
 */
int vigil_keyring_list(const struct vigil_keyring *kr,
		       char (*out)[VIGIL_KEY_B64_SIZE], size_t max, size_t *n);

/*
 * serf's keyring file (-keyring-file): a JSON array of base64 keys, the
 * first being primary.  Load rejects an empty array (as serf does);
 * duplicates collapse as in memberlist.NewKeyring.  On success *out is a
 * new keyring owned by the caller.
 */
int vigil_keyring_load_file(const char *path, struct vigil_keyring **out);
/*
 * Write the keyring in the same format (2-space indented like serf's
 * json.MarshalIndent), mode 0600, atomically: temp file in the same
 * directory, fsync, rename, fsync of the directory.
 */
int vigil_keyring_save_file(const struct vigil_keyring *kr, const char *path);

/* ---- payloads ---- */

/* Encryption version memberlist uses for a protocol version (1 -> 0, else 1). */
int vigil_encryption_version(int protocol_version);
/* Exact size vigil_encrypt produces for len plaintext bytes (0 for a bad version). */
size_t vigil_encrypted_len(int version, size_t len);

/*
 * Encrypt with the primary key.  out needs vigil_encrypted_len(version, len)
 * bytes and must not overlap plain.  aad may be NULL when aad_len is 0
 * (what memberlist uses for UDP packets).
 */
int vigil_encrypt(const struct vigil_keyring *kr, int version,
		  const uint8_t *aad, size_t aad_len,
		  const uint8_t *plain, size_t len,
		  uint8_t *out, size_t out_cap, size_t *out_len);

/*
 * Decrypt trying every key, primary first.  The version is taken from in[0].
 * out needs len - 29 bytes (the padded size for version 0) and must not
 * overlap in; on failure its contents are wiped.  The plaintext may be
 * empty — check *out_len before reading a type byte.
 */
int vigil_decrypt(const struct vigil_keyring *kr,
		  const uint8_t *aad, size_t aad_len,
		  const uint8_t *in, size_t len,
		  uint8_t *out, size_t out_cap, size_t *out_len);

/*
 * TCP form: out = [10][u32 BE n][n bytes of vigil_encrypt output] with the
 * 5-byte header as AAD.  out needs 5 + vigil_encrypted_len(version, len).
 */
int vigil_encrypt_stream(const struct vigil_keyring *kr, int version,
			 const uint8_t *plain, size_t len,
			 uint8_t *out, size_t out_cap, size_t *out_len);

/*
 * Reverse of vigil_encrypt_stream.  in starts at the encryptMsg type byte.
 * ETRUNC while fewer than 5 + n bytes are present (read more and retry).
 * With consumed == NULL the frame must be exactly len bytes (EFRAME
 * otherwise); else *consumed gets the frame size and trailing bytes are
 * left alone.  ETOOBIG when n exceeds VIGIL_CRYPTO_STREAM_MAX, as memberlist.
 */
int vigil_decrypt_stream(const struct vigil_keyring *kr,
			 const uint8_t *in, size_t len,
			 uint8_t *out, size_t out_cap, size_t *out_len,
			 size_t *consumed);

#endif
