/*
 * log.h — the agent's logger, in serf's format:
 *
 *     2026/11/25 14:00:00 [INFO] agent: Received event: member-join
 *
 * Lines at or above the configured level go to stderr.  Every line (any
 * level) also goes to a ring of the last LOG_RING lines and to a sink (the
 * RPC server), because `serf monitor -log-level=debug` shows debug lines
 * even from an agent logging at INFO — serf keeps the unfiltered stream for
 * monitors in exactly the same way.
 */
#ifndef VIGIL_AGENT_LOG_H
#define VIGIL_AGENT_LOG_H

#include <stdarg.h>

enum { LV_TRACE = 0, LV_DEBUG, LV_INFO, LV_WARN, LV_ERR, LV__COUNT };

#define LOG_RING 512

/* "info", "INFO", "warn", ... → level; -1 if not one of serf's levels. */
int log_level_parse(const char *s);
const char *log_level_name(int lv); /* "TRACE" ... "ERR" */
/* Level encoded in a formatted line ("... [WARN] ..."), LV_INFO if none. */
int log_line_level(const char *line);

void log_set_level(int lv);
int log_get_level(void);
void log_set_sink(void (*fn)(void *ctx, int lv, const char *line), void *ctx);
/* Visit the ring oldest first (for a new monitor). */
void log_ring_foreach(void (*fn)(void *ctx, int lv, const char *line), void *ctx);
void log_ring_clear(void);

/*
 * serf -syslog: also send the lines at or above the level to syslog(3),
 * with serf's priorities per level, under `facility` ("LOCAL0".."LOCAL7",
 * "USER", "DAEMON", ... as serf's syslog_facility).  0, or -1 for a
 * facility name serf would not know.
 */
int log_enable_syslog(const char *facility);

void alog(int lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void valog(int lv, const char *fmt, va_list ap);
/*
 * alog for lines a client or peer can cause at will (one per connection or
 * request): at most RATELIMIT_BURST per call site per 10 s, then a count
 * (src/ratelimit.h, the limiter the library uses too).
 */
void alog_rl(int lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log the counts of windows that closed with lines suppressed. */
void alog_rl_flush(void);

#endif
