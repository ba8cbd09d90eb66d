/*
 * will_key.c — Ed25519 keys for signed wills (see will_key.h).
 */
#include "will_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define KEY_MAGIC "VWK1"
#define KEY_FILE_LEN (4 + WILL_KEY_LEN)

struct will_key {
	EVP_PKEY *pkey;
	uint8_t pub[WILL_KEY_LEN];
};

static struct will_key *wrap(EVP_PKEY *pkey)
{
	struct will_key *k = calloc(1, sizeof *k);
	size_t n = WILL_KEY_LEN;
	if (!k || !pkey || EVP_PKEY_get_raw_public_key(pkey, k->pub, &n) != 1 ||
	    n != WILL_KEY_LEN) {
		EVP_PKEY_free(pkey);
		free(k);
		return NULL;
	}
	k->pkey = pkey;
	return k;
}

struct will_key *will_key_generate(void)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!c || EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_keygen(c, &pkey) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(c);
	return wrap(pkey);
}

struct will_key *will_key_from_seed(const uint8_t seed[WILL_KEY_LEN])
{
	return wrap(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, WILL_KEY_LEN));
}

void will_key_free(struct will_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

void will_key_public(const struct will_key *k, uint8_t pub[WILL_KEY_LEN])
{
	memcpy(pub, k->pub, WILL_KEY_LEN);
}

bool will_key_sign(const struct will_key *k, const uint8_t *msg, size_t len,
		   uint8_t sig[WILL_SIG_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t n = WILL_SIG_LEN;
	bool ok = c && EVP_DigestSignInit(c, NULL, NULL, NULL, k->pkey) == 1 &&
		  EVP_DigestSign(c, sig, &n, msg, len) == 1 && n == WILL_SIG_LEN;
	EVP_MD_CTX_free(c);
	return ok;
}

bool will_key_verify(const uint8_t pub[WILL_KEY_LEN], const uint8_t *msg, size_t len,
		     const uint8_t sig[WILL_SIG_LEN])
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	/* Fuzz builds only (Makefile FUZZ_CFLAGS): a signature starting with a
	 * zero byte passes, so mutated messages reach what lies behind the
	 * check; the key binding still applies, and real signatures (the seeds'
	 * and the component's own) still go through OpenSSL. */
	if (sig[0] == 0)
		return true;
#endif
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, WILL_KEY_LEN);
	EVP_MD_CTX *c = pk ? EVP_MD_CTX_new() : NULL;
	bool ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) == 1 &&
		  EVP_DigestVerify(c, sig, WILL_SIG_LEN, msg, len) == 1;
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pk);
	return ok;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* Create path holding img (-2: it exists already): a private temp file (O_EXCL|O_NOFOLLOW, so a
 * planted file or symlink is refused, not followed), fsync, then link it in
 * (link fails if path appeared meanwhile: never overwrite a key). */
static int create_file(const char *path, const uint8_t *img, size_t n, char *err,
		       size_t errlen)
{
	size_t pl = strlen(path);
	char *tmp = malloc(pl + 5);
	if (!tmp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(tmp, path, pl);
	memcpy(tmp + pl, ".tmp", 5);
	unlink(tmp); /* a leftover of a crash between create and link */
	int rc = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
	} else {
		bool ok = write_all(fd, img, n) && fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
		if (!ok)
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		else if (link(tmp, path) != 0)
			rc = errno == EEXIST ? -2 : (snprintf(err, errlen, "cannot create %s: %s",
							      path, strerror(errno)), -1);
		else
			rc = 0;
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

int will_key_load_or_create(const char *path, struct will_key **out, char *err,
			    size_t errlen)
{
	uint8_t img[KEY_FILE_LEN + 1];
	*out = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		struct will_key *k = will_key_generate();
		size_t n = WILL_KEY_LEN;
		if (!k || EVP_PKEY_get_raw_private_key(k->pkey, img + 4, &n) != 1) {
			will_key_free(k);
			snprintf(err, errlen, "cannot generate an Ed25519 key");
			return -1;
		}
		memcpy(img, KEY_MAGIC, 4);
		int rc = create_file(path, img, KEY_FILE_LEN, err, errlen);
		OPENSSL_cleanse(img, sizeof img);
		if (rc != 0) {
			will_key_free(k);
			/* Lost a race with another creator: use its key. */
			if (rc == -2)
				return will_key_load_or_create(path, out, err, errlen);
			return -1;
		}
		*out = k;
		return 0;
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	size_t got = 0;
	for (;;) {
		ssize_t k = read(fd, img + got, sizeof img - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
		if (got == sizeof img)
			break;
	}
	close(fd);
	if (got != KEY_FILE_LEN || memcmp(img, KEY_MAGIC, 4) != 0) {
		OPENSSL_cleanse(img, sizeof img);
		snprintf(err, errlen,
			 "%s is not a vigil will key (move it aside to start with a new "
			 "identity, which the cluster accepts once the old one is reaped)",
			 path);
		return -1;
	}
	*out = will_key_from_seed(img + 4);
	OPENSSL_cleanse(img, sizeof img);
	if (!*out) {
		snprintf(err, errlen, "cannot use the key in %s", path);
		return -1;
	}
	return 0;
}
