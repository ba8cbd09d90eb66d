/*
 * fuzz_decrypt — memberlist encryption (src/crypto.c) on hostile input.
 *
 * A fixed keyring holds the three keys of the serf captures in
 * tests/unit/test_crypto.c (AES-256 primary, AES-128, a second AES-256),
 * so the captures in fuzz/corpus/decrypt/ really decrypt.  Each input goes
 *   1. to vigil_decrypt as a UDP payload (no AAD), with an output buffer of
 *      exactly the size the API asks for (and once one byte too small);
 *   2. to vigil_decrypt_stream, both as an exact frame and with
 *      `consumed` (trailing bytes allowed);
 *   3. through an encrypt -> decrypt roundtrip: input[0] picks the
 *      encryption version (bit 0), the key to make primary (bits 1-2) and
 *      whether to use the stream form (bit 3); the rest is the plaintext.
 *
 * Oracles: error codes are from crypto.h; a successful decrypt returns no
 * more than the buffer holds, and only for input that a key authenticates
 * (checked by re-encrypting is impossible with random nonces, so instead a
 * one-bit flip of any authenticated input must fail); on failure the output
 * buffer holds no plaintext (all zero); the roundtrip returns the plaintext
 * and the sizes vigil_encrypted_len promises.
 */
#include "crypto.h"
#include "fuzz_common.h"

static const char *const KEYS[] = {
	"9g7igTfW1zXWHPvFK0UbqL4Bli7qRBG8n1JNd2+Lqfo=",
	"ko43TPtIyMXxwgs0+ePXrQ==",
	"Mkighm07AUjI+pd7BGVNt/IiYu+Ns83JDl3/y2k9FKU=",
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", /* 24 bytes: AES-192 */
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static struct vigil_keyring *ring;      /* KEYS[0] primary, all installed */
static struct vigil_keyring *rings[NKEYS]; /* KEYS[i] primary */

static void setup(void)
{
	if (ring)
		return;
	ring = vigil_keyring_new();
	FUZZ_ASSERT(ring != NULL);
	for (size_t i = 0; i < NKEYS; i++)
		FUZZ_ASSERT(vigil_keyring_add_b64(ring, KEYS[i]) == VIGIL_CRYPTO_OK);
	for (size_t i = 0; i < NKEYS; i++) {
		uint8_t k[VIGIL_KEY_MAX];
		size_t kl;
		rings[i] = vigil_keyring_new();
		FUZZ_ASSERT(rings[i] != NULL);
		for (size_t j = 0; j < NKEYS; j++)
			FUZZ_ASSERT(vigil_keyring_add_b64(rings[i], KEYS[j]) == VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(vigil_key_parse(KEYS[i], k, &kl) == VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(vigil_keyring_use(rings[i], k, kl) == VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(vigil_keyring_count(rings[i]) == NKEYS);
	}
}

static void check_rc(int rc)
{
	FUZZ_ASSERTF(rc <= 0 && rc >= VIGIL_CRYPTO_ELIB, "unknown error code %d", rc);
	FUZZ_ASSERT(rc != VIGIL_CRYPTO_ELIB && rc != VIGIL_CRYPTO_ENOMEM &&
		    rc != VIGIL_CRYPTO_EINVAL);
	FUZZ_ASSERT(vigil_crypto_strerror(rc) != NULL);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* UDP form.  Returns true when the input authenticated. */
static bool udp(const uint8_t *data, size_t size)
{
	size_t cap = size > VIGIL_CRYPTO_OVERHEAD_V1 ? size - VIGIL_CRYPTO_OVERHEAD_V1 : 0;
	uint8_t *out = calloc(1, cap ? cap : 1);
	size_t out_len = (size_t)-1;
	FUZZ_ASSERT(out != NULL);
	int rc = vigil_decrypt(ring, NULL, 0, data, size, cap ? out : NULL, cap, &out_len);
	check_rc(rc);
	if (rc == VIGIL_CRYPTO_OK) {
		FUZZ_ASSERT(size >= VIGIL_CRYPTO_OVERHEAD_V1 && data[0] <= 1);
		FUZZ_ASSERT(out_len <= cap);
		if (data[0] == 0)
			FUZZ_ASSERT(out_len < cap && cap - out_len <= 16);
		else
			FUZZ_ASSERT(out_len == cap);
		fuzz_touch(out, out_len);
		/* a buffer one byte short is refused before anything is written */
		if (cap > 0) {
			size_t l2;
			uint8_t *o2 = malloc(cap - 1 ? cap - 1 : 1);
			FUZZ_ASSERT(o2 != NULL);
			FUZZ_ASSERT(vigil_decrypt(ring, NULL, 0, data, size, cap - 1 ? o2 : NULL,
						  cap - 1, &l2) == VIGIL_CRYPTO_ENOSPC);
			free(o2);
		}
		/* an AAD that was not there fails the tag */
		static const uint8_t aad[1] = { 1 };
		size_t l3;
		FUZZ_ASSERT(vigil_decrypt(ring, aad, 1, data, size, out, cap, &l3) ==
			    VIGIL_CRYPTO_EAUTH);
	} else {
		FUZZ_ASSERTF(all_zero(out, cap), "plaintext left behind after error %d", rc);
	}
	free(out);
	return rc == VIGIL_CRYPTO_OK;
}

static void stream(const uint8_t *data, size_t size)
{
	size_t cap = size;
	uint8_t *out = calloc(1, cap ? cap : 1);
	size_t out_len = (size_t)-1, consumed = (size_t)-1;
	FUZZ_ASSERT(out != NULL);

	int rc = vigil_decrypt_stream(ring, data, size, out, cap, &out_len, NULL);
	check_rc(rc);
	if (rc == VIGIL_CRYPTO_OK) {
		FUZZ_ASSERT(size >= VIGIL_CRYPTO_STREAM_HDR + VIGIL_CRYPTO_OVERHEAD_V1);
		FUZZ_ASSERT(data[0] == VIGIL_CRYPTO_ENCRYPT_MSG);
		FUZZ_ASSERT(out_len <= size - VIGIL_CRYPTO_STREAM_HDR - VIGIL_CRYPTO_OVERHEAD_V1);
		fuzz_touch(out, out_len);
	}

	int rc2 = vigil_decrypt_stream(ring, data, size, out, cap, &out_len, &consumed);
	check_rc(rc2);
	if (rc2 == VIGIL_CRYPTO_OK) {
		FUZZ_ASSERT(consumed >= VIGIL_CRYPTO_STREAM_HDR && consumed <= size);
		uint32_t n = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
			     (uint32_t)data[3] << 8 | data[4];
		FUZZ_ASSERT(consumed == VIGIL_CRYPTO_STREAM_HDR + (size_t)n);
		/* exact frame: both forms agree */
		if (consumed == size)
			FUZZ_ASSERT(rc == VIGIL_CRYPTO_OK);
		else
			FUZZ_ASSERT(rc == VIGIL_CRYPTO_EFRAME);
	} else if (rc == VIGIL_CRYPTO_OK) {
		FUZZ_ASSERTF(0, "exact frame decrypted but the consumed form failed with %d", rc2);
	}
	free(out);
}

/* One-bit flips of an authenticated UDP payload must not authenticate. */
static void tamper(const uint8_t *data, size_t size)
{
	uint8_t *d = fuzz_dup(data, size);
	size_t cap = size - VIGIL_CRYPTO_OVERHEAD_V1;
	uint8_t *out = malloc(cap ? cap : 1);
	size_t positions[4] = { 1, 13, size / 2, size - 1 };
	FUZZ_ASSERT(out != NULL);
	for (int i = 0; i < 4; i++) {
		size_t at = positions[i];
		size_t ol;
		d[at] ^= 0x01;
		int rc = vigil_decrypt(ring, NULL, 0, d, size, cap ? out : NULL, cap, &ol);
		FUZZ_ASSERTF(rc != VIGIL_CRYPTO_OK, "flipping bit 0 of byte %zu still authenticates",
			     at);
		d[at] ^= 0x01;
	}
	free(out);
	free(d);
}

static void roundtrip(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	uint8_t sel = data[0];
	int version = sel & 1;
	struct vigil_keyring *kr = rings[(sel >> 1) & 3];
	bool as_stream = sel & 8;
	const uint8_t *plain = data + 1;
	size_t len = size - 1;
	size_t need = vigil_encrypted_len(version, len);
	FUZZ_ASSERT(need >= len + (version ? VIGIL_CRYPTO_OVERHEAD_V1 : 30));
	size_t cap = need + (as_stream ? VIGIL_CRYPTO_STREAM_HDR : 0);
	uint8_t *ct = malloc(cap);
	uint8_t *pt = malloc(cap);
	size_t ct_len = 0, pt_len = 0, consumed = 0;
	FUZZ_ASSERT(ct != NULL && pt != NULL);

	if (as_stream) {
		FUZZ_ASSERT(vigil_encrypt_stream(kr, version, plain, len, ct, cap - 1, &ct_len) ==
			    VIGIL_CRYPTO_ENOSPC);
		FUZZ_ASSERT(vigil_encrypt_stream(kr, version, plain, len, ct, cap, &ct_len) ==
			    VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(ct_len == cap);
		/* any key order decrypts it: use the common ring */
		FUZZ_ASSERT(vigil_decrypt_stream(ring, ct, ct_len, pt, cap, &pt_len, NULL) ==
			    VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(pt_len == len && (len == 0 || memcmp(pt, plain, len) == 0));
		FUZZ_ASSERT(vigil_decrypt_stream(ring, ct, ct_len, pt, cap, &pt_len, &consumed) ==
			    VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(consumed == ct_len);
		/* truncated by one byte: ETRUNC (read more), never a plaintext */
		FUZZ_ASSERT(vigil_decrypt_stream(ring, ct, ct_len - 1, pt, cap, &pt_len, &consumed) ==
			    VIGIL_CRYPTO_ETRUNC);
	} else {
		FUZZ_ASSERT(vigil_encrypt(kr, version, NULL, 0, plain, len, ct, cap - 1, &ct_len) ==
			    VIGIL_CRYPTO_ENOSPC);
		FUZZ_ASSERT(vigil_encrypt(kr, version, NULL, 0, plain, len, ct, cap, &ct_len) ==
			    VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(ct_len == need && ct[0] == version);
		FUZZ_ASSERT(vigil_decrypt(ring, NULL, 0, ct, ct_len, pt, cap, &pt_len) ==
			    VIGIL_CRYPTO_OK);
		FUZZ_ASSERT(pt_len == len && (len == 0 || memcmp(pt, plain, len) == 0));
		tamper(ct, ct_len);
	}
	free(ct);
	free(pt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (udp(data, size))
		tamper(data, size);
	stream(data, size);
	roundtrip(data, size);
	return 0;
}
