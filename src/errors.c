/*
 * errors.c — vigil_strerror() and the last-error buffer (errors.h).
 */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

#include "serf.h"
#include "will.h"

const char *vigil_strerror(int code)
{
	switch ((enum vigil_err)code) {
	case VIGIL_OK:            return "success";
	case VIGIL_ERR_INVALID:   return "invalid argument";
	case VIGIL_ERR_NOMEM:     return "out of memory";
	case VIGIL_ERR_TOO_LARGE: return "too large";
	case VIGIL_ERR_RANGE:     return "value out of range";
	case VIGIL_ERR_ADDRESS:   return "bad or unresolvable address";
	case VIGIL_ERR_SOCKET:    return "socket error";
	case VIGIL_ERR_STATE:     return "not allowed in the current state";
	case VIGIL_ERR_NOT_FOUND: return "not found";
	case VIGIL_ERR_KEY:       return "bad encryption key or keyring";
	case VIGIL_ERR_IO:        return "file I/O error";
	case VIGIL_ERR_PROTOCOL:  return "needs a newer serf protocol version";
	case VIGIL_ERR_BUFFER:    return "buffer too small";
	}
	return "unknown error code";
}

static int vset(char *buf, size_t len, int code, const char *fmt, va_list ap)
{
	if (buf && len)
		vsnprintf(buf, len, fmt, ap);
	return code;
}

int errbuf_set(struct vigil_errbuf *eb, int code, const char *fmt, ...)
{
	va_list ap;
	if (!eb)
		return code;
	eb->code = code;
	va_start(ap, fmt);
	vset(eb->msg, sizeof eb->msg, code, fmt, ap);
	va_end(ap);
	return code;
}

int err_to_buf(char *buf, size_t len, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(buf, len, code, fmt, ap);
	va_end(ap);
	return code;
}

int vigil_err_from_serf(int c)
{
	switch (c) {
	case SERF_OK:        return VIGIL_OK;
	case SERF_ETOOBIG:   return VIGIL_ERR_TOO_LARGE;
	case SERF_ENOMEM:    return VIGIL_ERR_NOMEM;
	case SERF_ESTATE:    return VIGIL_ERR_STATE;
	case SERF_ENOTFOUND: return VIGIL_ERR_NOT_FOUND;
	case SERF_EPROTO:    return VIGIL_ERR_PROTOCOL;
	default:             return VIGIL_ERR_INVALID;
	}
}

int vigil_err_from_will(int c)
{
	switch (c) {
	case WILL_OK:      return VIGIL_OK;
	case WILL_ETOOBIG: return VIGIL_ERR_TOO_LARGE;
	case WILL_ENOMEM:  return VIGIL_ERR_NOMEM;
	case WILL_EIO:     return VIGIL_ERR_IO;
	case WILL_ENOENT:  return VIGIL_ERR_NOT_FOUND;
	default:           return VIGIL_ERR_INVALID;
	}
}
