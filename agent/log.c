/* log.c — see log.h. */
#include "log.h"

#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdbool.h>
#include <syslog.h>
#include <time.h>

static const char *const names[LV__COUNT] = {"TRACE", "DEBUG", "INFO", "WARN", "ERR"};

static int min_level = LV_INFO;
static void (*sink_fn)(void *, int, const char *);
static void *sink_ctx;
static int in_sink; /* a sink that logs must not recurse into itself */

static struct {
	char *line;
	int lv;
} ring[LOG_RING];
static int ring_next;

int log_level_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < LV__COUNT; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *log_level_name(int lv)
{
	return lv >= 0 && lv < LV__COUNT ? names[lv] : "INFO";
}

int log_line_level(const char *line)
{
	const char *p = strchr(line, '[');
	if (!p)
		return LV_INFO;
	for (int i = 0; i < LV__COUNT; i++) {
		size_t n = strlen(names[i]);
		if (strncmp(p + 1, names[i], n) == 0 && p[1 + n] == ']')
			return i;
	}
	return LV_INFO;
}

void log_set_level(int lv) { min_level = lv; }
int log_get_level(void) { return min_level; }

void log_set_sink(void (*fn)(void *, int, const char *), void *ctx)
{
	sink_fn = fn;
	sink_ctx = ctx;
}

void log_ring_foreach(void (*fn)(void *, int, const char *), void *ctx)
{
	for (int i = 0; i < LOG_RING; i++) {
		int k = (ring_next + i) % LOG_RING;
		if (ring[k].line)
			fn(ctx, ring[k].lv, ring[k].line);
	}
}

void log_ring_clear(void)
{
	for (int i = 0; i < LOG_RING; i++) {
		free(ring[i].line);
		ring[i].line = NULL;
	}
	ring_next = 0;
}

static bool use_syslog;

int log_enable_syslog(const char *facility)
{
	static const struct {
		const char *name;
		int fac;
	} facs[] = { { "KERN", LOG_KERN },     { "USER", LOG_USER },     { "MAIL", LOG_MAIL },
		     { "DAEMON", LOG_DAEMON }, { "AUTH", LOG_AUTH },     { "SYSLOG", LOG_SYSLOG },
		     { "LPR", LOG_LPR },       { "NEWS", LOG_NEWS },     { "UUCP", LOG_UUCP },
		     { "CRON", LOG_CRON },     { "AUTHPRIV", LOG_AUTHPRIV }, { "FTP", LOG_FTP },
		     { "LOCAL0", LOG_LOCAL0 }, { "LOCAL1", LOG_LOCAL1 }, { "LOCAL2", LOG_LOCAL2 },
		     { "LOCAL3", LOG_LOCAL3 }, { "LOCAL4", LOG_LOCAL4 }, { "LOCAL5", LOG_LOCAL5 },
		     { "LOCAL6", LOG_LOCAL6 }, { "LOCAL7", LOG_LOCAL7 } };
	const char *f = facility && *facility ? facility : "LOCAL0";
	for (size_t i = 0; i < sizeof facs / sizeof facs[0]; i++)
		if (strcasecmp(f, facs[i].name) == 0) {
			openlog("vigil", LOG_PID | LOG_NDELAY, facs[i].fac);
			use_syslog = true;
			return 0;
		}
	return -1;
}

void valog(int lv, const char *fmt, va_list ap)
{
	char msg[2048], line[4200], ts[32];
	time_t now = time(NULL);
	struct tm tm;
	if (lv < 0 || lv >= LV__COUNT)
		lv = LV_INFO;
	vsnprintf(msg, sizeof msg, fmt, ap);
	/* one record per line, as Go's log package does */
	size_t ml = strlen(msg);
	while (ml && msg[ml - 1] == '\n')
		msg[--ml] = '\0';
	/* Messages quote client-supplied strings (event names, commands,
	 * script output): keep every record on one line of text so nobody
	 * can forge log lines or smuggle terminal escapes. */
	char clean[sizeof msg * 2];
	size_t o = 0;
	for (size_t i = 0; i < ml && o + 4 < sizeof clean; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c == '\n') {
			clean[o++] = '\\';
			clean[o++] = 'n';
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			clean[o++] = '?';
		} else {
			clean[o++] = (char)c;
		}
	}
	clean[o] = '\0';
	localtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y/%m/%d %H:%M:%S", &tm);
	snprintf(line, sizeof line, "%s [%s] %s", ts, names[lv], clean);
	if (lv >= min_level) {
		fprintf(stderr, "%s\n", line);
		fflush(stderr);
		if (use_syslog) {
			/* go-syslog's levels: TRACE/DEBUG debug, INFO info... */
			static const int prio[LV__COUNT] = { LOG_DEBUG, LOG_DEBUG, LOG_INFO,
							     LOG_WARNING, LOG_ERR };
			syslog(prio[lv], "[%s] %s", names[lv], clean);
		}
	}
	free(ring[ring_next].line);
	ring[ring_next].line = strdup(line);
	ring[ring_next].lv = lv;
	ring_next = (ring_next + 1) % LOG_RING;
	if (sink_fn && !in_sink) {
		in_sink = 1;
		sink_fn(sink_ctx, lv, line);
		in_sink = 0;
	}
}

void alog(int lv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	valog(lv, fmt, ap);
	va_end(ap);
}

static struct ratelimit rl;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void alog_rl(int lv, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	bool ok = ratelimit_vformat(&rl, fmt, lv, mono_ms(), msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ok)
		alog(lv, "%s", msg);
}

static void emit(void *ctx, int lv, const char *line)
{
	(void)ctx;
	alog(lv, "%s", line);
}

void alog_rl_flush(void)
{
	ratelimit_flush(&rl, mono_ms(), emit, NULL);
}
