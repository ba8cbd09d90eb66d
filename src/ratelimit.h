/*
 * ratelimit.h — one limiter for log lines an attacker can trigger at will
 * (undecryptable datagrams, commands before auth, connection floods).
 *
 * Lines are grouped by a key (the call site's format string).  In each
 * RATELIMIT_WINDOW_MS window the first RATELIMIT_BURST lines of a key are
 * logged; the rest are only counted, and the count is reported on the first
 * line of that key after the window, or by ratelimit_flush once the window
 * has closed, as "... (suppressed N similar in 10s)".  Fixed memory: at most
 * RATELIMIT_KEYS keys; a new key takes the slot idle the longest.
 *
 * No clock of its own: callers pass their time in ms, like the rest of vigil.
 */
#ifndef VIGIL_RATELIMIT_H
#define VIGIL_RATELIMIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_WINDOW_MS 10000
#define RATELIMIT_BURST 5
#define RATELIMIT_KEYS 32
#define RATELIMIT_SAMPLE 200

struct ratelimit_slot {
	const void *key;   /* NULL = free */
	int64_t start;     /* window start */
	uint32_t n;        /* lines of this window, logged or not */
	int level;         /* of the sample */
	uint64_t suppressed;
	char sample[RATELIMIT_SAMPLE]; /* first suppressed line of the window */
};

struct ratelimit {
	struct ratelimit_slot slot[RATELIMIT_KEYS];
};

/*
 * Format fmt/ap into out (cap bytes) if a line of `key` may be logged now,
 * with the count of lines suppressed in the previous window appended.
 * false = suppressed (out is not meaningful).  key NULL = fmt.  rl NULL =
 * no limit (always formatted), so one log function serves both kinds.
 */
bool ratelimit_vformat(struct ratelimit *rl, const void *key, int level, int64_t now,
		       char *out, size_t cap, const char *fmt, va_list ap);

/* Emit, through emit, the summary of every window that has closed with
 * suppressed lines (so a flood that stops still gets its count logged). */
void ratelimit_flush(struct ratelimit *rl, int64_t now,
		     void (*emit)(void *ctx, int level, const char *line), void *ctx);

#endif
