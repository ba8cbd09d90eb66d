/*
 * gobase64.h — validate base64 text exactly as Go's base64.StdEncoding
 * DecodeString does, so that errors name the same input byte serf names
 * ("illegal base64 data at input byte N").  Only the length is computed:
 * the bytes themselves are decoded by OpenSSL where keys are used.
 */
#ifndef VIGIL_AGENT_GOBASE64_H
#define VIGIL_AGENT_GOBASE64_H

#include <stddef.h>

/* The decoded length, or -1 with *bad_at set to Go's CorruptInputError. */
long go_b64_decoded_len(const char *s, size_t *bad_at);

#endif
