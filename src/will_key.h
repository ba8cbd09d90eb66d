/*
 * will_key.h — the Ed25519 key pair that signs a member's will messages
 * (docs/SECURITY.md, "Wills").
 *
 * Each member signs what only it may say about its will (its versions) and
 * what it did with somebody else's (its "delivered"/"published" and "due"
 * markers) with its own key; peers bind a member name to the first public
 * key they see for it.  This file only holds the key: generation, the key
 * file, signing and verifying.  OpenSSL's EVP_PKEY_ED25519 does the work.
 *
 * Key file: "VWK1" followed by the 32-byte private seed, nothing else, mode
 * 0600, written once (temp file + fsync + rename) and never rewritten, so a
 * corrupt will state file does not cost the member its identity.
 */
#ifndef VIGIL_WILL_KEY_H
#define VIGIL_WILL_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WILL_KEY_LEN 32 /* public key, and private seed */
#define WILL_SIG_LEN 64

struct will_key;

/* A fresh random key, or NULL. */
struct will_key *will_key_generate(void);
/* The key for a 32-byte private seed (an embedder's stored key), or NULL. */
struct will_key *will_key_from_seed(const uint8_t seed[WILL_KEY_LEN]);
/*
 * Read the key file at path; if there is none, generate a key and create
 * the file.  0 and *out, or -1 with a reason in err (a corrupt or unreadable
 * file is an error, never silently replaced: a new key is a new identity the
 * cluster refuses).
 */
int will_key_load_or_create(const char *path, struct will_key **out, char *err,
			    size_t errlen);
void will_key_free(struct will_key *k);

void will_key_public(const struct will_key *k, uint8_t pub[WILL_KEY_LEN]);
/* Sign msg; false only on an OpenSSL failure. */
bool will_key_sign(const struct will_key *k, const uint8_t *msg, size_t len,
		   uint8_t sig[WILL_SIG_LEN]);
/* Is sig pub's signature of msg? */
bool will_key_verify(const uint8_t pub[WILL_KEY_LEN], const uint8_t *msg, size_t len,
		     const uint8_t sig[WILL_SIG_LEN]);

#endif
