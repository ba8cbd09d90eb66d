/* logline.c — see logline.h. */
#include "logline.h"

#include <stdbool.h>
#include <stdio.h>

#include "ratelimit.h"

void logline_vemit(logline_fn log, void *ctx, struct ratelimit *rl, int64_t now, size_t cap,
		   int level, const char *fmt, va_list ap)
{
	char msg[LOGLINE_MAX];
	if (!log)
		return;
	if (cap > sizeof msg)
		cap = sizeof msg;
	if (ratelimit_vformat(rl, fmt, level, now, msg, cap, fmt, ap))
		log(ctx, level, msg);
}

void errtext_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
