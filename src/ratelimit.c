/* ratelimit.c — see ratelimit.h. */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

static struct ratelimit_slot *slot_for(struct ratelimit *rl, const void *key, int64_t now)
{
	struct ratelimit_slot *free_s = NULL, *oldest = NULL;
	for (int i = 0; i < RATELIMIT_KEYS; i++) {
		struct ratelimit_slot *s = &rl->slot[i];
		if (s->key == key)
			return s;
		if (!s->key) {
			if (!free_s)
				free_s = s;
		} else if (!oldest || s->start < oldest->start) {
			oldest = s;
		}
	}
	/* More distinct keys than slots: reuse the quietest one.  Its pending
	 * count is lost, which only makes the summary undercount. */
	struct ratelimit_slot *s = free_s ? free_s : oldest;
	memset(s, 0, sizeof *s);
	s->key = key;
	s->start = now;
	return s;
}

static void summary(const struct ratelimit_slot *s, const char *line, char *out, size_t cap)
{
	snprintf(out, cap, "%s (suppressed %llu similar in %ds)", line,
		 (unsigned long long)s->suppressed, RATELIMIT_WINDOW_MS / 1000);
}

bool ratelimit_vformat(struct ratelimit *rl, const void *key, int level, int64_t now,
		       char *out, size_t cap, const char *fmt, va_list ap)
{
	if (!rl) {
		vsnprintf(out, cap, fmt, ap);
		return true;
	}
	struct ratelimit_slot *s = slot_for(rl, key ? key : fmt, now);
	if (now - s->start >= RATELIMIT_WINDOW_MS) {
		/* a new window: log this line, with what the last one hid */
		char line[512];
		vsnprintf(line, sizeof line, fmt, ap);
		if (s->suppressed)
			summary(s, line, out, cap);
		else
			snprintf(out, cap, "%s", line);
		s->start = now;
		s->n = 1;
		s->suppressed = 0;
		return true;
	}
	if (s->n < RATELIMIT_BURST) {
		s->n++;
		vsnprintf(out, cap, fmt, ap);
		return true;
	}
	/* Formatting costs more than counting: only the first hidden line of
	 * a window is kept, as the sample a later summary shows. */
	if (s->suppressed++ == 0) {
		vsnprintf(s->sample, sizeof s->sample, fmt, ap);
		s->level = level;
	}
	return false;
}

void ratelimit_flush(struct ratelimit *rl, int64_t now,
		     void (*emit)(void *ctx, int level, const char *line), void *ctx)
{
	for (int i = 0; i < RATELIMIT_KEYS; i++) {
		struct ratelimit_slot *s = &rl->slot[i];
		if (!s->key || !s->suppressed || now - s->start < RATELIMIT_WINDOW_MS)
			continue;
		char line[RATELIMIT_SAMPLE + 64];
		summary(s, s->sample, line, sizeof line);
		/* The summary ends this window; the next line opens a new one. */
		s->suppressed = 0;
		s->n = 0;
		s->start = now - RATELIMIT_WINDOW_MS;
		if (emit)
			emit(ctx, s->level, line);
	}
}
