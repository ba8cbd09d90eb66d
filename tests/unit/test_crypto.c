/*
 * test_crypto.c — memberlist AES-GCM encryption and keyring.
 *
 * The serf vectors below are real traffic: two `serf agent` processes
 * (Debian serf 0.8.2-dev, memberlist protocol 5, encryption version 1)
 * were started with -encrypt=<key>; agent b advertised a port where a
 * python socket listened, so a's UDP probes and TCP fallback pings to b
 * were captured verbatim.  A second run used a 16-byte key loaded from a
 * -keyring-file, and `serf keys -install` then made serf rewrite that file
 * (SERF_KEYRING_FILE holds its exact bytes).
 */
#include "testlib.h"
#include "crypto.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* serf keygen output used for the SERF32_* captures (AES-256). */
static const char SERF32_KEY[] = "9g7igTfW1zXWHPvFK0UbqL4Bli7qRBG8n1JNd2+Lqfo=";
/* 16-byte key (AES-128) used for the SERF16_* captures; first in the file. */
static const char SERF16_KEY[] = "ko43TPtIyMXxwgs0+ePXrQ==";
/* Second key, installed with `serf keys -install` (never primary). */
static const char SERF_KEY2[] = "Mkighm07AUjI+pd7BGVNt/IiYu+Ns83JDl3/y2k9FKU=";
/* The keyring file exactly as serf wrote it (json.MarshalIndent, no final newline). */
static const char SERF_KEYRING_FILE[] =
	"[\n  \"ko43TPtIyMXxwgs0+ePXrQ==\",\n"
	"  \"Mkighm07AUjI+pd7BGVNt/IiYu+Ns83JDl3/y2k9FKU=\"\n]";

static const char SERF32_UDP_SMALL[] =
	"01d8e55e4d3ab0700f99536ae0001107c6d8c113736b435986d706054fbd06cd"
	"c8f2e46efcd4a0074b8eb85a1337d497ca763ad13f528549d08e163558a845";
static const char SERF32_UDP_LARGE[] =
	"01cd4ea293c632a1965d96c2d0b944cfd5a0eb9afeca43091e4aeb34520cc4d5"
	"bded313e9862ccb18eeb47f5c0a88ce9947d6640d335533e556b0e63e32e323e"
	"638c7ac1fe0469f140e0ce7113d7d24ad349f1690ba09eec7d9141eec9a7b1cc"
	"96cf9d34c997f58f0804404dcb27b13195bd8d526d5abba6dec2d7bc0f77a886"
	"c8c2cdb611fb4ccebbb786ec0e2c48d6d22a7d5be5d8d38780a8f35676d6f9d3"
	"dcbbb8cca4ffc3be95604883456edaefa9";
static const char SERF32_TCP[] =
	"0a0000006601936383148679ae48ac53769ee581548c64c43bb9e2e839188f65"
	"e0b8132767593c2d0b52e2e1aea9c8b32684e1a085910966ddeeba1b88ae849c"
	"0454797e5d54815867bfea2668e44d6de6d6d46fe6966989f019d1efc54d87f8"
	"821a0b9680944be83dfe67";
static const char SERF16_UDP[] =
	"0140be30eff9ba73eb018308af5adb46b5146a3821e5f0173bff88797f131c33"
	"9dd478a4294254f36a25584ba350ff090bf1260d5bfb214ce6a1dec9722ae137"
	"5edbbad7ccef4b8bc641b7c3c9f136336509d914bb0d799b";
static const char SERF16_TCP[] =
	"0a0000006601fa032bdb145dd0b6299fbd714890d3f2f29c3c650cd0eed1ae9c"
	"50bedc929d1fda5da7c685b8bc6a33a8ff2ac67e0b8ac30d66510fbf31b39b81"
	"52dd1a3c39c02f82fc062b9fb9086caad779025276e96ce116a2a8de499455ef"
	"24d02cf849fec0056ce20b";

/* ---- helpers ---- */

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;

	if (n > cap)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* CRC-32/IEEE, to check memberlist's hasCrc envelope independently of the tag. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static struct vigil_keyring *ring_of(const char *const *b64, size_t n)
{
	struct vigil_keyring *kr = vigil_keyring_new();

	for (size_t i = 0; kr && i < n; i++)
		if (vigil_keyring_add_b64(kr, b64[i]) != VIGIL_CRYPTO_OK) {
			vigil_keyring_free(kr);
			return NULL;
		}
	return kr;
}

static void fill_key(uint8_t *k, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		k[i] = (uint8_t)(seed + i * 7);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
	if (!tmpdir[0]) {
		strcpy(tmpdir, "/tmp/vigil_test_crypto.XXXXXX");
		if (!mkdtemp(tmpdir))
			tmpdir[0] = '\0';
	}
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ---- keys ---- */

TEST(test_key_parse)
{
	uint8_t k[VIGIL_KEY_MAX];
	size_t len = 0;
	char enc[VIGIL_KEY_B64_SIZE];

	CHECK_EQ_INT(vigil_key_parse(SERF16_KEY, k, &len), VIGIL_CRYPTO_OK);
	CHECK_EQ_INT(len, 16);
	CHECK_EQ_INT(vigil_key_parse(SERF32_KEY, k, &len), VIGIL_CRYPTO_OK);
	CHECK_EQ_INT(len, 32);
	CHECK_EQ_INT(vigil_key_encode(k, len, enc), VIGIL_CRYPTO_OK);
	CHECK_EQ_STR(enc, SERF32_KEY);
	/* 24 bytes: no padding at all */
	CHECK_EQ_INT(vigil_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", k, &len), VIGIL_CRYPTO_OK);
	CHECK_EQ_INT(len, 24);
	CHECK_EQ_INT(k[23], 23);

	/* bad base64 */
	CHECK_EQ_INT(vigil_key_parse("", k, &len), VIGIL_CRYPTO_EBASE64);
	CHECK_EQ_INT(vigil_key_parse("ko43TPtIyMXxwgs0+ePXrQ", k, &len), VIGIL_CRYPTO_EBASE64);
	CHECK_EQ_INT(vigil_key_parse("ko43TPtIyMXxwgs0+ePXrQ=", k, &len), VIGIL_CRYPTO_EBASE64);
	CHECK_EQ_INT(vigil_key_parse("ko43TPtIyMXxwgs0-ePXrQ==", k, &len), VIGIL_CRYPTO_EBASE64);
	CHECK_EQ_INT(vigil_key_parse(" ko43TPtIyMXxwgs0+ePXrQ==", k, &len), VIGIL_CRYPTO_EBASE64);
	CHECK_EQ_INT(vigil_key_parse("ko43TPtIyMXxwgs0+ePXrQ==\n", k, &len), VIGIL_CRYPTO_EBASE64);
	CHECK_EQ_INT(vigil_key_parse("ko43TPtIyMXx=gs0+ePXrQ==", k, &len), VIGIL_CRYPTO_EBASE64);
	CHECK_EQ_INT(vigil_key_parse("====", k, &len), VIGIL_CRYPTO_EBASE64);
	/* well-formed but not an AES key size */
	CHECK_EQ_INT(vigil_key_parse("AAAA", k, &len), VIGIL_CRYPTO_EKEYLEN);
	CHECK_EQ_INT(vigil_key_parse("AAECAwQFBgcICQoLDA0ODw8=", k, &len), VIGIL_CRYPTO_EKEYLEN);
	CHECK_EQ_INT(vigil_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v",
				     k, &len), VIGIL_CRYPTO_EKEYLEN);
	CHECK_EQ_INT(vigil_key_parse(NULL, k, &len), VIGIL_CRYPTO_EINVAL);
	CHECK(strstr(vigil_crypto_strerror(VIGIL_CRYPTO_EKEYLEN), "16, 24 or 32") != NULL);
	CHECK(strstr(vigil_crypto_strerror(VIGIL_CRYPTO_EBASE64), "base64") != NULL);
	CHECK(vigil_crypto_strerror(12345) != NULL);
	CHECK_EQ_INT(vigil_key_encode(k, 20, enc), VIGIL_CRYPTO_EKEYLEN);
}

/* ---- payloads ---- */

TEST(test_encrypted_len)
{
	/* memberlist encryptedLength / encryptOverhead */
	CHECK_EQ_INT(vigil_encrypted_len(1, 0), 29);
	CHECK_EQ_INT(vigil_encrypted_len(1, 28), 57);
	CHECK_EQ_INT(vigil_encrypted_len(0, 0), 45);
	CHECK_EQ_INT(vigil_encrypted_len(0, 15), 13 + 16 + 16);
	CHECK_EQ_INT(vigil_encrypted_len(0, 16), 13 + 32 + 16);
	CHECK_EQ_INT(vigil_encrypted_len(0, 28), 61);
	CHECK_EQ_INT(vigil_encrypted_len(2, 28), 0);
	CHECK_EQ_INT(vigil_encryption_version(1), 0);
	CHECK_EQ_INT(vigil_encryption_version(2), 1);
	CHECK_EQ_INT(vigil_encryption_version(5), 1);
}

TEST(test_roundtrip_all_sizes_versions)
{
	static const size_t key_lens[] = { 16, 24, 32 };
	static const size_t lens[] = { 0, 1, 15, 16, 17, 28, 100, 1400 };
	static const uint8_t aad[] = "random data";
	uint8_t plain[1400], enc[1500], dec[1500];

	for (size_t i = 0; i < sizeof plain; i++)
		plain[i] = (uint8_t)(i * 31 + 5);
	for (size_t ki = 0; ki < 3; ki++) {
		uint8_t key[32];
		struct vigil_keyring *kr = vigil_keyring_new();

		REQUIRE(kr);
		fill_key(key, key_lens[ki], 1);
		CHECK_EQ_INT(vigil_keyring_add(kr, key, key_lens[ki]), VIGIL_CRYPTO_OK);
		for (int v = 0; v <= 1; v++) {
			for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
				for (int use_aad = 0; use_aad <= 1; use_aad++) {
					size_t n = lens[li], elen = 0, dlen = 999;
					const uint8_t *a = use_aad ? aad : NULL;
					size_t al = use_aad ? sizeof aad - 1 : 0;

					CHECK_EQ_INT(vigil_encrypt(kr, v, a, al, plain, n, enc, sizeof enc, &elen),
						     VIGIL_CRYPTO_OK);
					CHECK_EQ_INT(elen, vigil_encrypted_len(v, n));
					CHECK_EQ_INT(enc[0], v);
					CHECK_EQ_INT(vigil_decrypt(kr, a, al, enc, elen, dec, sizeof dec, &dlen),
						     VIGIL_CRYPTO_OK);
					CHECK_EQ_INT(dlen, n);
					CHECK_MEM(dec, plain, n);
					/* the AAD is bound: dropping or adding it fails */
					CHECK_EQ_INT(vigil_decrypt(kr, use_aad ? NULL : aad,
								   use_aad ? 0 : sizeof aad - 1,
								   enc, elen, dec, sizeof dec, &dlen),
						     VIGIL_CRYPTO_EAUTH);
				}
			}
		}
		vigil_keyring_free(kr);
	}
}

TEST(test_nonce_is_fresh)
{
	const char *keys[] = { SERF32_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	uint8_t a[64], b[64];
	size_t na, nb;

	REQUIRE(kr);
	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, (const uint8_t *)"same", 4, a, sizeof a, &na), 0);
	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, (const uint8_t *)"same", 4, b, sizeof b, &nb), 0);
	CHECK(memcmp(a + 1, b + 1, 12) != 0);
	vigil_keyring_free(kr);
}

TEST(test_secondary_and_wrong_key)
{
	uint8_t ka[32], kb[16], kc[24], enc[128], dec[128];
	size_t elen, dlen;
	const uint8_t msg[] = "this is a plain text message";
	struct vigil_keyring *sender = vigil_keyring_new();
	struct vigil_keyring *receiver = vigil_keyring_new();
	struct vigil_keyring *stranger = vigil_keyring_new();

	REQUIRE(sender && receiver && stranger);
	fill_key(ka, 32, 3);
	fill_key(kb, 16, 9);
	fill_key(kc, 24, 77);
	CHECK_EQ_INT(vigil_keyring_add(sender, ka, 32), 0);
	/* receiver's primary differs; ka is only its second key */
	CHECK_EQ_INT(vigil_keyring_add(receiver, kb, 16), 0);
	CHECK_EQ_INT(vigil_keyring_add(receiver, ka, 32), 0);
	CHECK_EQ_INT(vigil_keyring_add(stranger, kb, 16), 0);
	CHECK_EQ_INT(vigil_keyring_add(stranger, kc, 24), 0);

	for (int v = 0; v <= 1; v++) {
		CHECK_EQ_INT(vigil_encrypt(sender, v, NULL, 0, msg, sizeof msg - 1, enc, sizeof enc, &elen), 0);
		CHECK_EQ_INT(vigil_decrypt(receiver, NULL, 0, enc, elen, dec, sizeof dec, &dlen), 0);
		CHECK_EQ_INT(dlen, sizeof msg - 1);
		CHECK_MEM(dec, msg, sizeof msg - 1);
		CHECK_EQ_INT(vigil_decrypt(stranger, NULL, 0, enc, elen, dec, sizeof dec, &dlen),
			     VIGIL_CRYPTO_EAUTH);
	}
	vigil_keyring_free(sender);
	vigil_keyring_free(receiver);
	vigil_keyring_free(stranger);
}

TEST(test_tampered_bytes_fail)
{
	const char *keys[] = { SERF32_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	/* ends in 'x' (0x78) so a version flip to 0 cannot pass as PKCS7 padding */
	const uint8_t msg[] = "authenticated gossip payload x";
	uint8_t enc[128], bad[128], dec[128];
	size_t elen, dlen;

	REQUIRE(kr);
	for (int v = 0; v <= 1; v++) {
		CHECK_EQ_INT(vigil_encrypt(kr, v, NULL, 0, msg, sizeof msg - 1, enc, sizeof enc, &elen), 0);
		for (size_t i = 0; i < elen; i++) {
			for (int bit = 0; bit < 8; bit++) {
				memcpy(bad, enc, elen);
				bad[i] ^= (uint8_t)(1u << bit);
				if (i == 0 && bit == 0 && v == 0) {
					/*
					 * Upstream property, not ours to fix: the version
					 * byte is outside the GCM tag, so 0 -> 1 "decrypts"
					 * and merely keeps the padding.  (Go does the same.)
					 */
					CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, bad, elen, dec, sizeof dec, &dlen), 0);
					CHECK_EQ_INT(dlen, 32);
					CHECK_EQ_INT(dec[31], 2);
					continue;
				}
				CHECK(vigil_decrypt(kr, NULL, 0, bad, elen, dec, sizeof dec, &dlen) < 0);
			}
		}
	}
	vigil_keyring_free(kr);
}

TEST(test_truncated_and_bad_version)
{
	const char *keys[] = { SERF16_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	uint8_t enc[128], dec[128];
	size_t elen, dlen;

	REQUIRE(kr);
	for (int v = 0; v <= 1; v++) {
		CHECK_EQ_INT(vigil_encrypt(kr, v, NULL, 0, (const uint8_t *)"0123456789", 10,
					   enc, sizeof enc, &elen), 0);
		for (size_t n = 0; n < elen; n++) {
			/* exact-size heap copy so ASan sees any over-read */
			uint8_t *p = malloc(n ? n : 1);
			REQUIRE(p);
			memcpy(p, enc, n);
			CHECK(vigil_decrypt(kr, NULL, 0, p, n, dec, sizeof dec, &dlen) < 0);
			free(p);
		}
	}
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, 0, dec, sizeof dec, &dlen), VIGIL_CRYPTO_ETRUNC);
	/* minimum sizes exactly as decryptPayload: 29 for v1, 45 for v0 */
	memset(enc, 0, sizeof enc);
	enc[0] = 1;
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, 28, dec, sizeof dec, &dlen), VIGIL_CRYPTO_ETRUNC);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, 29, dec, sizeof dec, &dlen), VIGIL_CRYPTO_EAUTH);
	enc[0] = 0;
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, 44, dec, sizeof dec, &dlen), VIGIL_CRYPTO_ETRUNC);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, 45, dec, sizeof dec, &dlen), VIGIL_CRYPTO_EAUTH);
	for (int vb = 2; vb < 256; vb++) {
		enc[0] = (uint8_t)vb;
		CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, 100, dec, sizeof dec, &dlen),
			     VIGIL_CRYPTO_EVERSION);
	}
	vigil_keyring_free(kr);
}

/*
 * memberlist does not authenticate the version byte (only nonce+ciphertext
 * are under the tag).  Rewriting 1 -> 0 therefore reaches the PKCS7 check
 * with authentic plaintext; it must be rejected, never over-read.
 */
TEST(test_v0_padding_checked)
{
	const char *keys[] = { SERF16_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	uint8_t plain[32], enc[128], dec[128];
	size_t elen, dlen;
	static const uint8_t bad_last[] = { 0x00, 0x11, 0xff, 0x02 };

	REQUIRE(kr);
	for (size_t i = 0; i < sizeof bad_last; i++) {
		memset(plain, 0x41, sizeof plain);
		plain[31] = bad_last[i]; /* 0x02 with plain[30] = 0x41: inconsistent padding */
		CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, plain, 32, enc, sizeof enc, &elen), 0);
		enc[0] = 0;
		CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, elen, dec, sizeof dec, &dlen), VIGIL_CRYPTO_EPAD);
	}
	/* full block of padding (len % 16 == 0) round trips through v0 */
	memset(plain, 0x10, 16);
	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, plain, 16, enc, sizeof enc, &elen), 0);
	enc[0] = 0;
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, elen, dec, sizeof dec, &dlen), 0);
	CHECK_EQ_INT(dlen, 0);
	vigil_keyring_free(kr);
}

TEST(test_argument_errors)
{
	const char *keys[] = { SERF16_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	struct vigil_keyring *empty = vigil_keyring_new();
	uint8_t enc[128], dec[128];
	size_t elen, dlen;

	REQUIRE(kr && empty);
	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, (const uint8_t *)"abc", 3, enc, 31, &elen),
		     VIGIL_CRYPTO_ENOSPC);
	CHECK_EQ_INT(vigil_encrypt(kr, 0, NULL, 0, (const uint8_t *)"abc", 3, enc, 44, &elen),
		     VIGIL_CRYPTO_ENOSPC);
	CHECK_EQ_INT(vigil_encrypt(kr, 2, NULL, 0, (const uint8_t *)"abc", 3, enc, sizeof enc, &elen),
		     VIGIL_CRYPTO_EVERSION);
	CHECK_EQ_INT(vigil_encrypt(kr, -1, NULL, 0, (const uint8_t *)"abc", 3, enc, sizeof enc, &elen),
		     VIGIL_CRYPTO_EVERSION);
	CHECK_EQ_INT(vigil_encrypt(empty, 1, NULL, 0, (const uint8_t *)"abc", 3, enc, sizeof enc, &elen),
		     VIGIL_CRYPTO_EEMPTY);
	CHECK_EQ_INT(vigil_encrypt(NULL, 1, NULL, 0, (const uint8_t *)"abc", 3, enc, sizeof enc, &elen),
		     VIGIL_CRYPTO_EINVAL);
	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 5, (const uint8_t *)"abc", 3, enc, sizeof enc, &elen),
		     VIGIL_CRYPTO_EINVAL);
	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, NULL, 3, enc, sizeof enc, &elen), VIGIL_CRYPTO_EINVAL);
	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, NULL, 0, enc, sizeof enc, &elen), VIGIL_CRYPTO_OK);
	CHECK_EQ_INT(elen, 29);
	/* empty plaintext decrypts with no output buffer at all */
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, elen, NULL, 0, &dlen), VIGIL_CRYPTO_OK);
	CHECK_EQ_INT(dlen, 0);

	CHECK_EQ_INT(vigil_encrypt(kr, 1, NULL, 0, (const uint8_t *)"abcd", 4, enc, sizeof enc, &elen), 0);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, elen, dec, 3, &dlen), VIGIL_CRYPTO_ENOSPC);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, elen, NULL, 0, &dlen), VIGIL_CRYPTO_ENOSPC);
	CHECK_EQ_INT(vigil_decrypt(empty, NULL, 0, enc, elen, dec, sizeof dec, &dlen), VIGIL_CRYPTO_EEMPTY);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, NULL, 10, dec, sizeof dec, &dlen), VIGIL_CRYPTO_EINVAL);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, enc, elen, dec, 4, &dlen), VIGIL_CRYPTO_OK);
	CHECK_EQ_INT(dlen, 4);
	vigil_keyring_free(kr);
	vigil_keyring_free(empty);
}

/* ---- streams ---- */

TEST(test_stream_roundtrip)
{
	const char *keys[] = { SERF32_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	uint8_t plain[300], frame[400], dec[400];
	size_t flen, dlen, used;

	REQUIRE(kr);
	for (size_t i = 0; i < sizeof plain; i++)
		plain[i] = (uint8_t)i;
	for (int v = 0; v <= 1; v++) {
		size_t enc = vigil_encrypted_len(v, sizeof plain);

		CHECK_EQ_INT(vigil_encrypt_stream(kr, v, plain, sizeof plain, frame, sizeof frame, &flen), 0);
		CHECK_EQ_INT(flen, 5 + enc);
		CHECK_EQ_INT(frame[0], 10);
		CHECK_EQ_INT(((uint32_t)frame[1] << 24 | frame[2] << 16 | frame[3] << 8 | frame[4]), enc);
		CHECK_EQ_INT(frame[5], v);
		CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen, dec, sizeof dec, &dlen, NULL), 0);
		CHECK_EQ_INT(dlen, sizeof plain);
		CHECK_MEM(dec, plain, sizeof plain);

		/* the AAD is precisely the 5-byte header */
		CHECK_EQ_INT(vigil_decrypt(kr, frame, 5, frame + 5, flen - 5, dec, sizeof dec, &dlen), 0);
		CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, frame + 5, flen - 5, dec, sizeof dec, &dlen),
			     VIGIL_CRYPTO_EAUTH);

		/* trailing bytes: allowed only when the caller asks how much was used */
		frame[flen] = 0xaa;
		CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen + 1, dec, sizeof dec, &dlen, NULL),
			     VIGIL_CRYPTO_EFRAME);
		used = 0;
		CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen + 1, dec, sizeof dec, &dlen, &used), 0);
		CHECK_EQ_INT(used, flen);

		/* every short read asks for more */
		for (size_t n = 1; n < flen; n++)
			CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, n, dec, sizeof dec, &dlen, &used),
				     VIGIL_CRYPTO_ETRUNC);
	}
	CHECK_EQ_INT(vigil_encrypt_stream(kr, 1, plain, sizeof plain, frame, 5 + 29 + 299, &flen),
		     VIGIL_CRYPTO_ENOSPC);
	vigil_keyring_free(kr);
}

TEST(test_stream_bad_frames)
{
	const char *keys[] = { SERF32_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	uint8_t frame[128], dec[128];
	size_t flen, dlen, used;

	REQUIRE(kr);
	CHECK_EQ_INT(vigil_encrypt_stream(kr, 1, (const uint8_t *)"\x06pushpull", 9, frame,
					  sizeof frame, &flen), 0);
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, 0, dec, sizeof dec, &dlen, &used), VIGIL_CRYPTO_ETRUNC);
	frame[0] = 6;
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen, dec, sizeof dec, &dlen, NULL), VIGIL_CRYPTO_EFRAME);
	frame[0] = 10;
	/* shrinking the declared length: the tag covers it, so nothing decrypts */
	frame[4]--;
	CHECK(vigil_decrypt_stream(kr, frame, flen - 1, dec, sizeof dec, &dlen, NULL) < 0);
	/* same, with the full buffer present and the rest left as "trailing" */
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen, dec, sizeof dec, &dlen, &used),
		     VIGIL_CRYPTO_EAUTH);
	frame[4]++;
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen, dec, sizeof dec, &dlen, NULL), 0);
	/* over memberlist's maxPushStateBytes */
	memcpy(frame, "\x0a\x01\x40\x00\x01", 5);
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen, dec, sizeof dec, &dlen, NULL), VIGIL_CRYPTO_ETOOBIG);
	memcpy(frame, "\x0a\xff\xff\xff\xff", 5);
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, flen, dec, sizeof dec, &dlen, NULL), VIGIL_CRYPTO_ETOOBIG);
	/* declared length too small to hold a payload */
	memcpy(frame, "\x0a\x00\x00\x00\x03", 5);
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, 8, dec, sizeof dec, &dlen, NULL), VIGIL_CRYPTO_ETRUNC);
	memcpy(frame, "\x0a\x00\x00\x00\x00", 5);
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, 5, dec, sizeof dec, &dlen, NULL), VIGIL_CRYPTO_ETRUNC);
	CHECK_EQ_INT(vigil_encrypt_stream(kr, 1, NULL, VIGIL_CRYPTO_STREAM_MAX, frame, sizeof frame, &flen),
		     VIGIL_CRYPTO_EINVAL);
	vigil_keyring_free(kr);
}

/* Deterministic junk at every length: nothing may crash or "succeed". */
TEST(test_random_garbage)
{
	const char *keys[] = { SERF32_KEY, SERF16_KEY, SERF_KEY2 };
	struct vigil_keyring *kr = ring_of(keys, 3);
	uint32_t s = 12345;
	uint8_t dec[600];
	size_t dlen, used;

	REQUIRE(kr);
	for (int iter = 0; iter < 3000; iter++) {
		size_t n = (size_t)(iter % 300);
		uint8_t *p = malloc(n ? n : 1);

		REQUIRE(p);
		for (size_t i = 0; i < n; i++) {
			s = s * 1103515245u + 12345u;
			p[i] = (uint8_t)(s >> 16);
		}
		if (n && iter % 3 == 0)
			p[0] = (uint8_t)(iter & 1);       /* valid version byte */
		if (n > 5 && iter % 3 == 1) {             /* plausible stream header */
			p[0] = 10;
			p[1] = p[2] = 0;
			p[3] = (uint8_t)((n - 5) >> 8);
			p[4] = (uint8_t)(n - 5);
		}
		CHECK(vigil_decrypt(kr, NULL, 0, p, n, dec, sizeof dec, &dlen) < 0);
		CHECK(vigil_decrypt_stream(kr, p, n, dec, sizeof dec, &dlen, &used) < 0);
		CHECK(vigil_decrypt_stream(kr, p, n, dec, sizeof dec, &dlen, NULL) < 0);
		free(p);
	}
	vigil_keyring_free(kr);
}

/* ---- keyring ---- */

TEST(test_keyring_semantics)
{
	struct vigil_keyring *kr = vigil_keyring_new();
	uint8_t a[16], b[24], c[32], k[32];
	const uint8_t *p;
	size_t len = 0, n = 0;
	char list[VIGIL_KEYRING_MAX][VIGIL_KEY_B64_SIZE], enc[VIGIL_KEY_B64_SIZE];

	REQUIRE(kr);
	fill_key(a, 16, 1);
	fill_key(b, 24, 2);
	fill_key(c, 32, 3);
	CHECK_EQ_INT(vigil_keyring_count(kr), 0);
	CHECK(vigil_keyring_key(kr, 0, &len) == NULL);
	CHECK_EQ_INT(vigil_keyring_remove(kr, a, 16), VIGIL_CRYPTO_ENOKEY);

	/* first installed becomes primary */
	CHECK_EQ_INT(vigil_keyring_add(kr, a, 16), 0);
	CHECK_EQ_INT(vigil_keyring_add(kr, b, 24), 0);
	CHECK_EQ_INT(vigil_keyring_add(kr, c, 32), 0);
	CHECK_EQ_INT(vigil_keyring_add(kr, b, 24), 0); /* already there: no-op */
	CHECK_EQ_INT(vigil_keyring_count(kr), 3);
	p = vigil_keyring_key(kr, 0, &len);
	REQUIRE(p);
	CHECK_EQ_INT(len, 16);
	CHECK_MEM(p, a, 16);
	CHECK_EQ_INT(vigil_keyring_add(kr, a, 15), VIGIL_CRYPTO_EKEYLEN);
	CHECK_EQ_INT(vigil_keyring_add(kr, a, 0), VIGIL_CRYPTO_EKEYLEN);

	/* use: c becomes primary, a and b keep their order behind it */
	CHECK_EQ_INT(vigil_keyring_use(kr, c, 32), 0);
	CHECK_MEM(vigil_keyring_key(kr, 0, &len), c, 32);
	CHECK_MEM(vigil_keyring_key(kr, 1, &len), a, 16);
	CHECK_MEM(vigil_keyring_key(kr, 2, &len), b, 24);
	CHECK_EQ_INT(vigil_keyring_use(kr, c, 32), 0); /* already primary */
	CHECK_EQ_INT(vigil_keyring_count(kr), 3);
	fill_key(k, 32, 99);
	CHECK_EQ_INT(vigil_keyring_use(kr, k, 32), VIGIL_CRYPTO_ENOKEY);
	/* same bytes, different length: a different key */
	CHECK_EQ_INT(vigil_keyring_use(kr, c, 16), VIGIL_CRYPTO_ENOKEY);

	/* list is base64, primary first */
	CHECK_EQ_INT(vigil_keyring_list(kr, list, VIGIL_KEYRING_MAX, &n), 0);
	CHECK_EQ_INT(n, 3);
	vigil_key_encode(c, 32, enc);
	CHECK_EQ_STR(list[0], enc);
	vigil_key_encode(a, 16, enc);
	CHECK_EQ_STR(list[1], enc);
	vigil_key_encode(b, 24, enc);
	CHECK_EQ_STR(list[2], enc);
	CHECK_EQ_INT(vigil_keyring_list(kr, list, 2, &n), VIGIL_CRYPTO_ENOSPC);
	CHECK_EQ_INT(n, 3);

	/* remove: never the primary */
	CHECK_EQ_INT(vigil_keyring_remove(kr, c, 32), VIGIL_CRYPTO_EPRIMARY);
	CHECK_EQ_INT(vigil_keyring_remove(kr, a, 16), 0);
	CHECK_EQ_INT(vigil_keyring_count(kr), 2);
	CHECK_MEM(vigil_keyring_key(kr, 0, &len), c, 32);
	CHECK_MEM(vigil_keyring_key(kr, 1, &len), b, 24);
	CHECK_EQ_INT(vigil_keyring_remove(kr, a, 16), VIGIL_CRYPTO_ENOKEY);
	CHECK_EQ_INT(vigil_keyring_remove(kr, a, 17), VIGIL_CRYPTO_EKEYLEN);
	/* rotate: promote b, then the old primary can go */
	CHECK_EQ_INT(vigil_keyring_use(kr, b, 24), 0);
	CHECK_EQ_INT(vigil_keyring_remove(kr, c, 32), 0);
	CHECK_EQ_INT(vigil_keyring_count(kr), 1);
	CHECK_MEM(vigil_keyring_key(kr, 0, &len), b, 24);

	/* capacity */
	for (int i = 0; i < VIGIL_KEYRING_MAX - 1; i++) {
		fill_key(k, 16, (uint8_t)(100 + i));
		CHECK_EQ_INT(vigil_keyring_add(kr, k, 16), 0);
	}
	CHECK_EQ_INT(vigil_keyring_count(kr), VIGIL_KEYRING_MAX);
	fill_key(k, 16, 200);
	CHECK_EQ_INT(vigil_keyring_add(kr, k, 16), VIGIL_CRYPTO_EFULL);
	fill_key(k, 16, 100);
	CHECK_EQ_INT(vigil_keyring_add(kr, k, 16), 0); /* present: still a no-op when full */
	CHECK_EQ_INT(vigil_keyring_add_b64(kr, "nope!"), VIGIL_CRYPTO_EBASE64);

	CHECK_EQ_INT(vigil_keyring_add(NULL, a, 16), VIGIL_CRYPTO_EINVAL);
	CHECK_EQ_INT(vigil_keyring_count(NULL), 0);
	vigil_keyring_free(kr);
	vigil_keyring_free(NULL);
}

TEST(test_keyring_file_roundtrip)
{
	char path[128], buf[512];
	struct vigil_keyring *kr, *back = NULL;
	struct stat st;
	FILE *f;
	size_t n;

	make_tmpdir();
	REQUIRE(tmpdir[0]);
	snprintf(path, sizeof path, "%s/keyring", tmpdir);
	{
		const char *keys[] = { SERF16_KEY, SERF_KEY2 };
		kr = ring_of(keys, 2);
	}
	REQUIRE(kr);
	CHECK_EQ_INT(vigil_keyring_save_file(kr, path), 0);
	REQUIRE(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	/* byte-identical to what serf itself writes for the same keyring */
	f = fopen(path, "r");
	REQUIRE(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	CHECK_EQ_STR(buf, SERF_KEYRING_FILE);

	CHECK_EQ_INT(vigil_keyring_load_file(path, &back), 0);
	REQUIRE(back);
	CHECK_EQ_INT(vigil_keyring_count(back), 2);
	for (size_t i = 0; i < 2; i++) {
		size_t la, lb;
		const uint8_t *ka = vigil_keyring_key(kr, i, &la);
		const uint8_t *kb = vigil_keyring_key(back, i, &lb);
		CHECK_EQ_INT(la, lb);
		CHECK_MEM(ka, kb, la);
	}
	vigil_keyring_free(back);

	/* overwrite in place after a rotation; no temp files left behind */
	{
		uint8_t k2[32];
		size_t l2;
		CHECK_EQ_INT(vigil_key_parse(SERF_KEY2, k2, &l2), 0);
		CHECK_EQ_INT(vigil_keyring_use(kr, k2, l2), 0);
	}
	CHECK_EQ_INT(vigil_keyring_save_file(kr, path), 0);
	CHECK_EQ_INT(dir_entries(tmpdir), 1);
	CHECK_EQ_INT(vigil_keyring_load_file(path, &back), 0);
	REQUIRE(back);
	{
		char list[VIGIL_KEYRING_MAX][VIGIL_KEY_B64_SIZE];
		CHECK_EQ_INT(vigil_keyring_list(back, list, VIGIL_KEYRING_MAX, &n), 0);
		CHECK_EQ_INT(n, 2);
		CHECK_EQ_STR(list[0], SERF_KEY2);
		CHECK_EQ_STR(list[1], SERF16_KEY);
	}
	vigil_keyring_free(back);
	vigil_keyring_free(kr);

	/* nothing to save, or nowhere to save it */
	kr = vigil_keyring_new();
	REQUIRE(kr);
	CHECK_EQ_INT(vigil_keyring_save_file(kr, path), VIGIL_CRYPTO_EEMPTY);
	CHECK_EQ_INT(vigil_keyring_add_b64(kr, SERF32_KEY), 0);
	CHECK_EQ_INT(vigil_keyring_save_file(kr, "/nonexistent-dir/x/keyring"), VIGIL_CRYPTO_EIO);
	vigil_keyring_free(kr);
	unlink(path);
}

TEST(test_keyring_file_bad)
{
	static const struct { const char *text; int want; } cases[] = {
		{ "", VIGIL_CRYPTO_EJSON },
		{ "not json", VIGIL_CRYPTO_EJSON },
		{ "{\"keys\": []}", VIGIL_CRYPTO_EJSON },
		{ "\"ko43TPtIyMXxwgs0+ePXrQ==\"", VIGIL_CRYPTO_EJSON },
		{ "[\"ko43TPtIyMXxwgs0+ePXrQ==\"", VIGIL_CRYPTO_EJSON },
		{ "[\"ko43TPtIyMXxwgs0+ePXrQ==\"] x", VIGIL_CRYPTO_EJSON },
		{ "[]", VIGIL_CRYPTO_EEMPTY },
		{ "[1]", VIGIL_CRYPTO_EJSON },
		{ "[\"ko43TPtIyMXxwgs0+ePXrQ==\", null]", VIGIL_CRYPTO_EJSON },
		{ "[\"not base64!\"]", VIGIL_CRYPTO_EBASE64 },
		/* jansson refuses \u0000 by default; either way the key is rejected */
		{ "[\"ko43TPtIyMXxwgs0+ePXrQ==\\u0000AAAA\"]", VIGIL_CRYPTO_EJSON },
		{ "[\"AAAA\"]", VIGIL_CRYPTO_EKEYLEN },
		{ "[\"ko43TPtIyMXxwgs0+ePXrQ==\", \"AAAA\"]", VIGIL_CRYPTO_EKEYLEN },
	};
	char path[128];
	struct vigil_keyring *kr = NULL;

	make_tmpdir();
	REQUIRE(tmpdir[0]);
	snprintf(path, sizeof path, "%s/bad.json", tmpdir);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		REQUIRE(write_file(path, cases[i].text) == 0);
		kr = (struct vigil_keyring *)1;
		int r = vigil_keyring_load_file(path, &kr);
		if (r != cases[i].want)
			printf("# case %zu: %s\n", i, cases[i].text);
		CHECK_EQ_INT(r, cases[i].want);
		CHECK(kr == NULL);
	}
	/* duplicates collapse, first stays primary (memberlist.NewKeyring) */
	REQUIRE(write_file(path, "[\"ko43TPtIyMXxwgs0+ePXrQ==\",\"" "9g7igTfW1zXWHPvFK0UbqL4Bli7qRBG8n1JNd2+Lqfo="
			   "\",\"ko43TPtIyMXxwgs0+ePXrQ==\"]\n") == 0);
	CHECK_EQ_INT(vigil_keyring_load_file(path, &kr), 0);
	CHECK_EQ_INT(vigil_keyring_count(kr), 2);
	vigil_keyring_free(kr);
	unlink(path);
	CHECK_EQ_INT(vigil_keyring_load_file(path, &kr), VIGIL_CRYPTO_EIO);
	CHECK_EQ_INT(vigil_keyring_load_file(NULL, &kr), VIGIL_CRYPTO_EINVAL);
}

/* ---- interop with real serf traffic ---- */

static void check_memberlist_plain(const uint8_t *p, size_t n)
{
	REQUIRE(n >= 1);
	CHECK(p[0] <= 13); /* pingMsg .. errMsg */
	/* protocol 5 peers wrap packets in hasCrc: verify it end to end */
	if (p[0] == 12) {
		REQUIRE(n >= 5);
		uint32_t want = (uint32_t)p[1] << 24 | p[2] << 16 | p[3] << 8 | p[4];
		CHECK_EQ_INT(crc32_ieee(p + 5, n - 5), want);
		CHECK(n > 5 && p[5] <= 13);
	}
}

TEST(test_serf_udp_interop)
{
	const char *keys[] = { SERF32_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	const char *vecs[] = { SERF32_UDP_SMALL, SERF32_UDP_LARGE };
	uint8_t pkt[512], dec[512];

	REQUIRE(kr);
	for (size_t i = 0; i < 2; i++) {
		size_t n = unhex(vecs[i], pkt, sizeof pkt), dlen = 0;

		REQUIRE(n > 29);
		CHECK_EQ_INT(pkt[0], 1); /* serf speaks protocol >= 2: version 1, no padding */
		CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, pkt, n, dec, sizeof dec, &dlen), 0);
		CHECK_EQ_INT(dlen, n - 29);
		check_memberlist_plain(dec, dlen);
		/* UDP uses no AAD: the stream header as AAD must not verify */
		CHECK_EQ_INT(vigil_decrypt(kr, (const uint8_t *)"\x0a\0\0\0\0", 5, pkt, n, dec,
					   sizeof dec, &dlen), VIGIL_CRYPTO_EAUTH);
	}
	vigil_keyring_free(kr);
}

TEST(test_serf_stream_interop)
{
	const char *keys[] = { SERF32_KEY };
	struct vigil_keyring *kr = ring_of(keys, 1);
	uint8_t frame[256], dec[256];
	size_t n, dlen = 0;

	REQUIRE(kr);
	n = unhex(SERF32_TCP, frame, sizeof frame);
	REQUIRE(n > 5);
	CHECK_EQ_INT(vigil_decrypt_stream(kr, frame, n, dec, sizeof dec, &dlen, NULL), 0);
	/* serf's declared length is encryptedLength(1, plaintext) */
	CHECK_EQ_INT(n - 5, vigil_encrypted_len(1, dlen));
	check_memberlist_plain(dec, dlen);
	/* confirms memberlist's AAD is the header: without it the tag fails */
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, frame + 5, n - 5, dec, sizeof dec, &dlen), VIGIL_CRYPTO_EAUTH);
	CHECK_EQ_INT(vigil_decrypt(kr, frame, 5, frame + 5, n - 5, dec, sizeof dec, &dlen), 0);
	vigil_keyring_free(kr);
}

TEST(test_serf_keyring_file_interop)
{
	char path[128];
	struct vigil_keyring *kr = NULL;
	uint8_t pkt[256], dec[256], k2[32];
	size_t n, dlen, l2;

	make_tmpdir();
	REQUIRE(tmpdir[0]);
	snprintf(path, sizeof path, "%s/serf-keyring.json", tmpdir);
	REQUIRE(write_file(path, SERF_KEYRING_FILE) == 0);
	CHECK_EQ_INT(vigil_keyring_load_file(path, &kr), 0);
	REQUIRE(kr);
	CHECK_EQ_INT(vigil_keyring_count(kr), 2);

	/* AES-128 traffic from serf, with the file's primary key */
	n = unhex(SERF16_UDP, pkt, sizeof pkt);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, pkt, n, dec, sizeof dec, &dlen), 0);
	check_memberlist_plain(dec, dlen);
	n = unhex(SERF16_TCP, pkt, sizeof pkt);
	CHECK_EQ_INT(vigil_decrypt_stream(kr, pkt, n, dec, sizeof dec, &dlen, NULL), 0);
	check_memberlist_plain(dec, dlen);

	/* after rotating, that key is secondary and real traffic still decrypts */
	CHECK_EQ_INT(vigil_key_parse(SERF_KEY2, k2, &l2), 0);
	CHECK_EQ_INT(vigil_keyring_use(kr, k2, l2), 0);
	n = unhex(SERF16_UDP, pkt, sizeof pkt);
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, pkt, n, dec, sizeof dec, &dlen), 0);
	check_memberlist_plain(dec, dlen);
	/* and once it is removed, it does not */
	{
		uint8_t k16[16];
		size_t l16;
		CHECK_EQ_INT(vigil_key_parse(SERF16_KEY, k16, &l16), 0);
		CHECK_EQ_INT(vigil_keyring_remove(kr, k16, l16), 0);
	}
	CHECK_EQ_INT(vigil_decrypt(kr, NULL, 0, pkt, n, dec, sizeof dec, &dlen), VIGIL_CRYPTO_EAUTH);
	vigil_keyring_free(kr);
	unlink(path);
	rmdir(tmpdir);
}

TEST_MAIN(test_key_parse, test_encrypted_len, test_roundtrip_all_sizes_versions,
	  test_nonce_is_fresh, test_secondary_and_wrong_key, test_tampered_bytes_fail,
	  test_truncated_and_bad_version, test_v0_padding_checked, test_argument_errors,
	  test_stream_roundtrip, test_stream_bad_frames, test_random_garbage,
	  test_keyring_semantics, test_keyring_file_roundtrip, test_keyring_file_bad,
	  test_serf_udp_interop, test_serf_stream_interop, test_serf_keyring_file_interop)
