/*
 * errors.h — the public error codes (enum vigil_err, include/vigil.h) and
 * the per-handle "last error" message behind vigil_last_error().
 *
 * Every public call that fails records a code and a sentence saying what was
 * wrong (which argument, which limit) in the handle's errbuf, and returns
 * the (negative) code.  The internal layers keep their own small enums
 * (SERF_E*, WILL_E*); vigil_err_from_serf/_will translate them.
 */
#ifndef VIGIL_ERRORS_H
#define VIGIL_ERRORS_H

#include <stddef.h>

#include "vigil.h"

struct vigil_errbuf {
	int code;          /* enum vigil_err of the last failure, VIGIL_OK if none */
	char msg[256];     /* its message, "" if none */
};

/* Record code and message; returns code so callers can `return errbuf_set(...)`. */
__attribute__((format(printf, 3, 4)))
int errbuf_set(struct vigil_errbuf *eb, int code, const char *fmt, ...);

/* Same, also copying the message into a caller's buffer (vigil_create). */
__attribute__((format(printf, 4, 5)))
int err_to_buf(char *buf, size_t len, int code, const char *fmt, ...);

int vigil_err_from_serf(int serf_code);
int vigil_err_from_will(int will_code);

#endif
