/*
 * logline.h — formatting a log line or an error message, shared by the
 * layers that each log through a callback of their own (vigil.c,
 * transport.c, serf.c, will.c) or fill a caller's error buffer
 * (vigil.c, snapshot.c).
 */
#ifndef VIGIL_LOGLINE_H
#define VIGIL_LOGLINE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* Every layer's log callback has this shape. */
typedef void (*logline_fn)(void *ctx, int level, const char *msg);

/* The longest line any layer formats (with its NUL). */
#define LOGLINE_MAX 600

/*
 * Format a line of at most cap bytes (cap <= LOGLINE_MAX; each layer keeps
 * its historical length) and hand it to log, which may be NULL (nothing is
 * formatted then).  rl NULL: always; else the rate limiter decides
 * (ratelimit.h), at time now.
 */
void logline_vemit(logline_fn log, void *ctx, struct ratelimit *rl, int64_t now, size_t cap,
		   int level, const char *fmt, va_list ap);

/* printf into a caller's error buffer, which may be NULL or 0 long. */
__attribute__((format(printf, 3, 4)))
void errtext_set(char *err, size_t errlen, const char *fmt, ...);

#endif
