/*
 * crypto.c — memberlist-compatible AES-GCM payload encryption and keyring.
 *
 * Mirrors memberlist 0.2.2 security.go (encryptPayload / decryptPayload),
 * keyring.go, and net.go (encryptLocalState / decryptRemoteState), plus
 * serf's keyring file.  All cryptography is OpenSSL EVP; this file only
 * does framing, key bookkeeping and bounds checks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "crypto.h"
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define VERSION_SIZE 1
#define HDR_SIZE (VERSION_SIZE + VIGIL_CRYPTO_NONCE_SIZE)
#define BLOCK_SIZE 16
/* EVP takes int lengths; stay well clear so the padding sum cannot overflow. */
#define LEN_LIMIT ((size_t)INT_MAX - 64)

struct vigil_key {
	uint8_t b[VIGIL_KEY_MAX];
	size_t len;
};

struct vigil_keyring {
	size_t n;
	struct vigil_key k[VIGIL_KEYRING_MAX]; /* k[0] is primary */
};

const char *vigil_crypto_strerror(int err)
{
	switch (err) {
	case VIGIL_CRYPTO_OK: return "success";
	case VIGIL_CRYPTO_EKEYLEN: return "key must be 16, 24 or 32 bytes (AES-128/192/256)";
	case VIGIL_CRYPTO_EBASE64: return "key is not valid base64";
	case VIGIL_CRYPTO_EFULL: return "keyring is full";
	case VIGIL_CRYPTO_ENOKEY: return "key is not in the keyring";
	case VIGIL_CRYPTO_EPRIMARY: return "removing the primary key is not allowed";
	case VIGIL_CRYPTO_EEMPTY: return "keyring has no keys";
	case VIGIL_CRYPTO_EVERSION: return "unsupported encryption version";
	case VIGIL_CRYPTO_ETRUNC: return "payload is too small to decrypt";
	case VIGIL_CRYPTO_EAUTH: return "no installed keys could decrypt the message";
	case VIGIL_CRYPTO_EPAD: return "invalid PKCS7 padding";
	case VIGIL_CRYPTO_ENOSPC: return "output buffer too small";
	case VIGIL_CRYPTO_ETOOBIG: return "payload exceeds size limit";
	case VIGIL_CRYPTO_EFRAME: return "malformed encrypted stream frame";
	case VIGIL_CRYPTO_EINVAL: return "invalid argument";
	case VIGIL_CRYPTO_ENOMEM: return "out of memory";
	case VIGIL_CRYPTO_EIO: return "keyring file I/O error";
	case VIGIL_CRYPTO_EJSON: return "keyring file is not a JSON array of base64 strings";
	case VIGIL_CRYPTO_ELIB: return "libcrypto failure";
	}
	return "unknown crypto error";
}

/* ---- keys ---- */

static bool key_len_ok(size_t len)
{
	return len == 16 || len == 24 || len == 32;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Syntax check first, so that a well-formed key of the wrong size reports
 * EKEYLEN rather than EBASE64, and so EVP_DecodeBlock (which silently trims
 * whitespace and counts '=' as zero bytes) only ever sees clean input.
 * Go's base64.StdEncoding is the reference: padding required, no
 * whitespace (it skips \r\n, but a key never legitimately contains them).
 */
static int key_parse_n(const char *s, size_t n, uint8_t *key, size_t *key_len)
{
	size_t pad = 0, dlen, i;
	uint8_t tmp[48]; /* 3/4 of the 44 chars a 32-byte key encodes to */
	int r;

	if (n == 0 || n % 4 != 0)
		return VIGIL_CRYPTO_EBASE64;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n - pad; i++)
		if (!b64_char(s[i]))
			return VIGIL_CRYPTO_EBASE64;
	dlen = n / 4 * 3 - pad;
	if (!key_len_ok(dlen))
		return VIGIL_CRYPTO_EKEYLEN;

	r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r != dlen + pad) {
		OPENSSL_cleanse(tmp, sizeof tmp);
		return VIGIL_CRYPTO_EBASE64;
	}
	memcpy(key, tmp, dlen);
	*key_len = dlen;
	OPENSSL_cleanse(tmp, sizeof tmp);
	return VIGIL_CRYPTO_OK;
}

int vigil_key_parse(const char *b64, uint8_t *key, size_t *key_len)
{
	if (!b64 || !key || !key_len)
		return VIGIL_CRYPTO_EINVAL;
	/* Bound the scan: anything this long cannot be a key anyway. */
	size_t n = strnlen(b64, 4096);
	if (n == 4096)
		return VIGIL_CRYPTO_EKEYLEN;
	return key_parse_n(b64, n, key, key_len);
}

int vigil_key_encode(const uint8_t *key, size_t key_len, char *out)
{
	if (!key || !out)
		return VIGIL_CRYPTO_EINVAL;
	if (!key_len_ok(key_len))
		return VIGIL_CRYPTO_EKEYLEN;
	/* 32 bytes -> 44 chars + NUL == VIGIL_KEY_B64_SIZE */
	EVP_EncodeBlock((unsigned char *)out, key, (int)key_len);
	return VIGIL_CRYPTO_OK;
}

/* ---- keyring ---- */

struct vigil_keyring *vigil_keyring_new(void)
{
	return calloc(1, sizeof(struct vigil_keyring));
}

void vigil_keyring_free(struct vigil_keyring *kr)
{
	if (!kr)
		return;
	OPENSSL_cleanse(kr, sizeof *kr);
	free(kr);
}

static long keyring_find(const struct vigil_keyring *kr, const uint8_t *key, size_t len)
{
	for (size_t i = 0; i < kr->n; i++)
		if (kr->k[i].len == len && memcmp(kr->k[i].b, key, len) == 0)
			return (long)i;
	return -1;
}

/* The slot of an installed key: VIGIL_CRYPTO_OK with *i, or why not. */
static int keyring_locate(const struct vigil_keyring *kr, const uint8_t *key, size_t len,
			  long *i)
{
	if (!kr || !key)
		return VIGIL_CRYPTO_EINVAL;
	if (!key_len_ok(len))
		return VIGIL_CRYPTO_EKEYLEN;
	*i = keyring_find(kr, key, len);
	return *i < 0 ? VIGIL_CRYPTO_ENOKEY : VIGIL_CRYPTO_OK;
}

int vigil_keyring_add(struct vigil_keyring *kr, const uint8_t *key, size_t len)
{
	if (!kr || !key)
		return VIGIL_CRYPTO_EINVAL;
	if (!key_len_ok(len))
		return VIGIL_CRYPTO_EKEYLEN;
	if (keyring_find(kr, key, len) >= 0)
		return VIGIL_CRYPTO_OK; /* memberlist AddKey: already installed is a no-op */
	if (kr->n == VIGIL_KEYRING_MAX)
		return VIGIL_CRYPTO_EFULL;
	memcpy(kr->k[kr->n].b, key, len);
	kr->k[kr->n].len = len;
	kr->n++;
	return VIGIL_CRYPTO_OK;
}

int vigil_keyring_add_b64(struct vigil_keyring *kr, const char *b64)
{
	uint8_t key[VIGIL_KEY_MAX];
	size_t len;
	int r = vigil_key_parse(b64, key, &len);

	if (r == VIGIL_CRYPTO_OK)
		r = vigil_keyring_add(kr, key, len);
	OPENSSL_cleanse(key, sizeof key);
	return r;
}

int vigil_keyring_use(struct vigil_keyring *kr, const uint8_t *key, size_t len)
{
	struct vigil_key k;
	long i;
	int rc = keyring_locate(kr, key, len, &i);

	if (rc != VIGIL_CRYPTO_OK)
		return rc;
	/* memberlist installKeys: new primary first, the rest in their old order. */
	k = kr->k[i];
	memmove(&kr->k[1], &kr->k[0], (size_t)i * sizeof kr->k[0]);
	kr->k[0] = k;
	OPENSSL_cleanse(&k, sizeof k);
	return VIGIL_CRYPTO_OK;
}

int vigil_keyring_remove(struct vigil_keyring *kr, const uint8_t *key, size_t len)
{
	long i;
	int rc = keyring_locate(kr, key, len, &i);

	if (rc != VIGIL_CRYPTO_OK)
		return rc;
	/* Dropping the primary would leave nothing to encrypt with. */
	if (i == 0)
		return VIGIL_CRYPTO_EPRIMARY;
	memmove(&kr->k[i], &kr->k[i + 1], (kr->n - (size_t)i - 1) * sizeof kr->k[0]);
	kr->n--;
	OPENSSL_cleanse(&kr->k[kr->n], sizeof kr->k[0]);
	return VIGIL_CRYPTO_OK;
}

size_t vigil_keyring_count(const struct vigil_keyring *kr)
{
	return kr ? kr->n : 0;
}

const uint8_t *vigil_keyring_key(const struct vigil_keyring *kr, size_t i, size_t *len)
{
	if (!kr || i >= kr->n)
		return NULL;
	if (len)
		*len = kr->k[i].len;
	return kr->k[i].b;
}

int vigil_keyring_list(const struct vigil_keyring *kr,
		       char (*out)[VIGIL_KEY_B64_SIZE], size_t max, size_t *n)
{
	if (!kr || !n || (!out && max))
		return VIGIL_CRYPTO_EINVAL;
	*n = kr->n;
	if (max < kr->n)
		return VIGIL_CRYPTO_ENOSPC;
	for (size_t i = 0; i < kr->n; i++)
		vigil_key_encode(kr->k[i].b, kr->k[i].len, out[i]);
	return VIGIL_CRYPTO_OK;
}

/* ---- keyring file ---- */

int vigil_keyring_load_file(const char *path, struct vigil_keyring **out)
{
	struct vigil_keyring *kr;
	json_error_t jerr;
	json_t *arr;
	FILE *fp;
	int r = VIGIL_CRYPTO_OK, saved;
	size_t i;

	if (!path || !out)
		return VIGIL_CRYPTO_EINVAL;
	*out = NULL;
	fp = fopen(path, "re");
	if (!fp)
		return VIGIL_CRYPTO_EIO;
	arr = json_loadf(fp, 0, &jerr);
	saved = errno;
	fclose(fp);
	errno = saved;
	if (!arr)
		return VIGIL_CRYPTO_EJSON;
	if (!json_is_array(arr)) {
		json_decref(arr);
		return VIGIL_CRYPTO_EJSON;
	}
	/* serf: "Keyring file contains no keys" */
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return VIGIL_CRYPTO_EEMPTY;
	}
	kr = vigil_keyring_new();
	if (!kr) {
		json_decref(arr);
		return VIGIL_CRYPTO_ENOMEM;
	}
	for (i = 0; i < json_array_size(arr) && r == VIGIL_CRYPTO_OK; i++) {
		json_t *v = json_array_get(arr, i);
		uint8_t key[VIGIL_KEY_MAX];
		size_t klen;

		if (!json_is_string(v)) {
			r = VIGIL_CRYPTO_EJSON;
			break;
		}
		/* Length from jansson, not strlen: an embedded NUL must not hide junk. */
		r = key_parse_n(json_string_value(v), json_string_length(v), key, &klen);
		/* First entry becomes primary because add() makes the first key primary. */
		if (r == VIGIL_CRYPTO_OK)
			r = vigil_keyring_add(kr, key, klen);
		OPENSSL_cleanse(key, sizeof key);
	}
	json_decref(arr);
	if (r != VIGIL_CRYPTO_OK) {
		vigil_keyring_free(kr);
		return r;
	}
	*out = kr;
	return VIGIL_CRYPTO_OK;
}

int vigil_keyring_save_file(const struct vigil_keyring *kr, const char *path)
{
	json_t *arr;
	char *text = NULL;
	size_t tlen;
	int r = VIGIL_CRYPTO_OK, saved;

	if (!kr || !path)
		return VIGIL_CRYPTO_EINVAL;
	/* A file with [] would be refused by serf and by our own loader. */
	if (kr->n == 0)
		return VIGIL_CRYPTO_EEMPTY;

	arr = json_array();
	if (!arr)
		return VIGIL_CRYPTO_ENOMEM;
	for (size_t i = 0; i < kr->n; i++) {
		char b64[VIGIL_KEY_B64_SIZE];

		vigil_key_encode(kr->k[i].b, kr->k[i].len, b64);
		if (json_array_append_new(arr, json_string(b64)) != 0)
			r = VIGIL_CRYPTO_ENOMEM;
		OPENSSL_cleanse(b64, sizeof b64);
	}
	/* JSON_INDENT(2) gives the same bytes as Go's json.MarshalIndent(v, "", "  "). */
	if (r == VIGIL_CRYPTO_OK) {
		text = json_dumps(arr, JSON_INDENT(2));
		if (!text)
			r = VIGIL_CRYPTO_ENOMEM;
	}
	json_decref(arr);
	if (r != VIGIL_CRYPTO_OK)
		return r;
	tlen = strlen(text);

	/* crash-safe, and never through a symlink planted at PATH.tmp; 0600 */
	struct safefile_part part = {text, tlen};
	if (safefile_write(path, &part, 1, NULL, NULL, 0) != 0)
		r = errno == ENOMEM ? VIGIL_CRYPTO_ENOMEM : VIGIL_CRYPTO_EIO;
	saved = errno;
	OPENSSL_cleanse(text, tlen);
	free(text);
	errno = saved;
	return r;
}

/* ---- payloads ---- */

int vigil_encryption_version(int protocol_version)
{
	/* memberlist net.go encryptionVersion(): only protocol 1 pads. */
	return protocol_version == 1 ? 0 : 1;
}

size_t vigil_encrypted_len(int version, size_t len)
{
	if (version == 1)
		return HDR_SIZE + len + VIGIL_CRYPTO_TAG_SIZE;
	if (version == 0)
		/* PKCS7 always adds 1..16 bytes, a whole block when already aligned. */
		return HDR_SIZE + len + (BLOCK_SIZE - len % BLOCK_SIZE) + VIGIL_CRYPTO_TAG_SIZE;
	return 0;
}

static const EVP_CIPHER *gcm_for(size_t key_len)
{
	switch (key_len) {
	case 16: return EVP_aes_128_gcm();
	case 24: return EVP_aes_192_gcm();
	case 32: return EVP_aes_256_gcm();
	}
	return NULL;
}

/* Key, 12-byte nonce, and the AAD (GCM's "additional data"); shared by both directions. */
static bool gcm_setup(EVP_CIPHER_CTX *ctx, int enc, const struct vigil_key *k,
		      const uint8_t *nonce, const uint8_t *aad, size_t aad_len)
{
	int outl;

	if (EVP_CipherInit_ex(ctx, gcm_for(k->len), NULL, NULL, NULL, enc) != 1)
		return false;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, VIGIL_CRYPTO_NONCE_SIZE, NULL) != 1)
		return false;
	if (EVP_CipherInit_ex(ctx, NULL, NULL, k->b, nonce, enc) != 1)
		return false;
	/* Go passes nil for UDP; zero-length AAD and no AAD give the same tag. */
	if (aad_len && EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1)
		return false;
	return true;
}

int vigil_encrypt(const struct vigil_keyring *kr, int version,
		  const uint8_t *aad, size_t aad_len,
		  const uint8_t *plain, size_t len,
		  uint8_t *out, size_t out_cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t pad[BLOCK_SIZE];
	size_t need, padlen = 0, pos = HDR_SIZE;
	int outl, r = VIGIL_CRYPTO_ELIB;

	if (!kr || !out || !out_len || (!plain && len) || (!aad && aad_len))
		return VIGIL_CRYPTO_EINVAL;
	if (version != 0 && version != 1)
		return VIGIL_CRYPTO_EVERSION;
	if (kr->n == 0)
		return VIGIL_CRYPTO_EEMPTY;
	if (len > LEN_LIMIT || aad_len > LEN_LIMIT)
		return VIGIL_CRYPTO_ETOOBIG;
	need = vigil_encrypted_len(version, len);
	if (out_cap < need)
		return VIGIL_CRYPTO_ENOSPC;

	out[0] = (uint8_t)version;
	if (RAND_bytes(out + VERSION_SIZE, VIGIL_CRYPTO_NONCE_SIZE) != 1)
		return VIGIL_CRYPTO_ELIB;
	if (version == 0) {
		padlen = BLOCK_SIZE - len % BLOCK_SIZE;
		memset(pad, (int)padlen, padlen);
	}

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return VIGIL_CRYPTO_ENOMEM;
	if (!gcm_setup(ctx, 1, &kr->k[0], out + VERSION_SIZE, aad, aad_len))
		goto done;
	/*
	 * GCM is a stream mode: feeding the padding as a second update yields
	 * the same ciphertext as padding a copy first, without allocating.
	 */
	if (len) {
		if (EVP_EncryptUpdate(ctx, out + pos, &outl, plain, (int)len) != 1)
			goto done;
		pos += (size_t)outl;
	}
	if (padlen) {
		if (EVP_EncryptUpdate(ctx, out + pos, &outl, pad, (int)padlen) != 1)
			goto done;
		pos += (size_t)outl;
	}
	if (EVP_EncryptFinal_ex(ctx, out + pos, &outl) != 1)
		goto done;
	pos += (size_t)outl;
	if (pos + VIGIL_CRYPTO_TAG_SIZE != need)
		goto done;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, VIGIL_CRYPTO_TAG_SIZE, out + pos) != 1)
		goto done;
	*out_len = need;
	r = VIGIL_CRYPTO_OK;
done:
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

/* Strict PKCS7: Go's pkcs7decode trusts the last byte blindly (and panics if
 * it exceeds the length); a real memberlist sender always pads correctly. */
static int pkcs7_unpad(const uint8_t *p, size_t n, size_t *out)
{
	uint8_t v;

	if (n == 0)
		return VIGIL_CRYPTO_EPAD;
	v = p[n - 1];
	if (v == 0 || v > BLOCK_SIZE || v > n)
		return VIGIL_CRYPTO_EPAD;
	for (size_t i = n - v; i < n; i++)
		if (p[i] != v)
			return VIGIL_CRYPTO_EPAD;
	*out = n - v;
	return VIGIL_CRYPTO_OK;
}

int vigil_decrypt(const struct vigil_keyring *kr,
		  const uint8_t *aad, size_t aad_len,
		  const uint8_t *in, size_t len,
		  uint8_t *out, size_t out_cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t tag[VIGIL_CRYPTO_TAG_SIZE];
	uint8_t fin[BLOCK_SIZE]; /* GCM's Final emits nothing; never aim it past out */
	size_t ctlen, plen;
	int version, outl, r = VIGIL_CRYPTO_EAUTH;

	if (!kr || !out_len || (!in && len) || (!aad && aad_len) || (!out && out_cap))
		return VIGIL_CRYPTO_EINVAL;
	/* Same order of checks as decryptPayload: empty, version, minimum size. */
	if (len == 0)
		return VIGIL_CRYPTO_ETRUNC;
	version = in[0];
	if (version > 1)
		return VIGIL_CRYPTO_EVERSION;
	if (len < vigil_encrypted_len(version, 0))
		return VIGIL_CRYPTO_ETRUNC;
	if (kr->n == 0)
		return VIGIL_CRYPTO_EEMPTY;
	if (len > LEN_LIMIT || aad_len > LEN_LIMIT)
		return VIGIL_CRYPTO_ETOOBIG;
	ctlen = len - HDR_SIZE - VIGIL_CRYPTO_TAG_SIZE;
	/* EVP writes all of the (padded) plaintext before the tag is checked. */
	if (out_cap < ctlen)
		return VIGIL_CRYPTO_ENOSPC;
	memcpy(tag, in + HDR_SIZE + ctlen, sizeof tag);

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return VIGIL_CRYPTO_ENOMEM;
	for (size_t i = 0; i < kr->n; i++) {
		if (EVP_CIPHER_CTX_reset(ctx) != 1 ||
		    !gcm_setup(ctx, 0, &kr->k[i], in + VERSION_SIZE, aad, aad_len)) {
			r = VIGIL_CRYPTO_ELIB;
			break;
		}
		if (ctlen && EVP_DecryptUpdate(ctx, out, &outl, in + HDR_SIZE, (int)ctlen) != 1) {
			r = VIGIL_CRYPTO_ELIB;
			break;
		}
		if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof tag, tag) != 1) {
			r = VIGIL_CRYPTO_ELIB;
			break;
		}
		/* Final fails exactly when the tag does not verify: try the next key. */
		if (EVP_DecryptFinal_ex(ctx, fin, &outl) == 1) {
			r = VIGIL_CRYPTO_OK;
			break;
		}
	}
	EVP_CIPHER_CTX_free(ctx);

	plen = ctlen;
	if (r == VIGIL_CRYPTO_OK && version == 0)
		r = pkcs7_unpad(out, ctlen, &plen);
	if (r != VIGIL_CRYPTO_OK) {
		/* Never leave unauthenticated plaintext behind for a careless caller. */
		if (out && ctlen)
			OPENSSL_cleanse(out, ctlen);
		return r;
	}
	*out_len = plen;
	return VIGIL_CRYPTO_OK;
}

int vigil_encrypt_stream(const struct vigil_keyring *kr, int version,
			 const uint8_t *plain, size_t len,
			 uint8_t *out, size_t out_cap, size_t *out_len)
{
	size_t enc, n;
	int r;

	if (!kr || !out || !out_len || (!plain && len))
		return VIGIL_CRYPTO_EINVAL;
	if (version != 0 && version != 1)
		return VIGIL_CRYPTO_EVERSION;
	if (len > VIGIL_CRYPTO_STREAM_MAX)
		return VIGIL_CRYPTO_ETOOBIG;
	enc = vigil_encrypted_len(version, len);
	/* Peers refuse frames over maxPushStateBytes, so never produce one. */
	if (enc > VIGIL_CRYPTO_STREAM_MAX)
		return VIGIL_CRYPTO_ETOOBIG;
	if (out_cap < VIGIL_CRYPTO_STREAM_HDR + enc)
		return VIGIL_CRYPTO_ENOSPC;

	/* encryptLocalState: the length is of the encrypted payload, not the plaintext. */
	out[0] = VIGIL_CRYPTO_ENCRYPT_MSG;
	out[1] = (uint8_t)(enc >> 24);
	out[2] = (uint8_t)(enc >> 16);
	out[3] = (uint8_t)(enc >> 8);
	out[4] = (uint8_t)enc;
	r = vigil_encrypt(kr, version, out, VIGIL_CRYPTO_STREAM_HDR, plain, len,
			  out + VIGIL_CRYPTO_STREAM_HDR, out_cap - VIGIL_CRYPTO_STREAM_HDR, &n);
	if (r != VIGIL_CRYPTO_OK)
		return r;
	*out_len = VIGIL_CRYPTO_STREAM_HDR + n;
	return VIGIL_CRYPTO_OK;
}

int vigil_decrypt_stream(const struct vigil_keyring *kr,
			 const uint8_t *in, size_t len,
			 uint8_t *out, size_t out_cap, size_t *out_len,
			 size_t *consumed)
{
	uint8_t hdr[VIGIL_CRYPTO_STREAM_HDR];
	uint32_t more;

	if (!kr || !out_len || (!in && len))
		return VIGIL_CRYPTO_EINVAL;
	if (len >= 1 && in[0] != VIGIL_CRYPTO_ENCRYPT_MSG)
		return VIGIL_CRYPTO_EFRAME;
	if (len < VIGIL_CRYPTO_STREAM_HDR)
		return VIGIL_CRYPTO_ETRUNC;
	memcpy(hdr, in, sizeof hdr);
	more = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 |
	       (uint32_t)hdr[3] << 8 | hdr[4];
	/* decryptRemoteState refuses this before reading the body. */
	if (more > VIGIL_CRYPTO_STREAM_MAX)
		return VIGIL_CRYPTO_ETOOBIG;
	if (len - VIGIL_CRYPTO_STREAM_HDR < more)
		return VIGIL_CRYPTO_ETRUNC;
	if (!consumed && len - VIGIL_CRYPTO_STREAM_HDR != more)
		return VIGIL_CRYPTO_EFRAME;
	/* The header, length included, is the AAD: a rewritten length fails the tag. */
	int r = vigil_decrypt(kr, hdr, sizeof hdr, in + VIGIL_CRYPTO_STREAM_HDR, more,
			      out, out_cap, out_len);
	if (r == VIGIL_CRYPTO_OK && consumed)
		*consumed = VIGIL_CRYPTO_STREAM_HDR + more;
	return r;
}
