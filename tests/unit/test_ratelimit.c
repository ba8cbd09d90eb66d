/* test_ratelimit.c — the shared log limiter (src/ratelimit.c). */
#include "testlib.h"

#include <stdarg.h>

#include "ratelimit.h"

static bool fmt(struct ratelimit *rl, int64_t now, char *out, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	bool ok = ratelimit_vformat(rl, f, 3, now, out, cap, f, ap);
	va_end(ap);
	return ok;
}

static int emitted;
static char last[400];

static void emit(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	emitted++;
	snprintf(last, sizeof last, "%s", line);
}

/* A burst per key and window, then a count; keys are independent. */
TEST(burst_then_count)
{
	static struct ratelimit rl;
	char out[300];
	static const char *const a = "decrypt failed from %d";
	static const char *const b = "other %d";
	int logged = 0;
	for (int i = 0; i < 100000; i++)
		logged += fmt(&rl, 1000, out, sizeof out, a, i);
	CHECK_EQ_INT(logged, RATELIMIT_BURST);
	CHECK(fmt(&rl, 1000, out, sizeof out, b, 1)); /* another key */
	CHECK_EQ_STR(out, "other 1");
	/* the first line after the window carries the count */
	CHECK(fmt(&rl, 1000 + RATELIMIT_WINDOW_MS, out, sizeof out, a, 7));
	CHECK_EQ_STR(out, "decrypt failed from 7 (suppressed 99995 similar in 10s)");
	CHECK(fmt(&rl, 1000 + RATELIMIT_WINDOW_MS, out, sizeof out, a, 8));
	CHECK_EQ_STR(out, "decrypt failed from 8");
}

/* A flood that stops still gets its count logged, once. */
TEST(flush_reports_closed_windows)
{
	static struct ratelimit rl;
	char out[300];
	static const char *const a = "plaintext from %s";
	for (int i = 0; i < 50; i++)
		fmt(&rl, 0, out, sizeof out, a, "1.2.3.4:5");
	emitted = 0;
	ratelimit_flush(&rl, RATELIMIT_WINDOW_MS - 1, emit, NULL);
	CHECK_EQ_INT(emitted, 0); /* window still open */
	ratelimit_flush(&rl, RATELIMIT_WINDOW_MS, emit, NULL);
	CHECK_EQ_INT(emitted, 1);
	CHECK_EQ_STR(last, "plaintext from 1.2.3.4:5 (suppressed 45 similar in 10s)");
	ratelimit_flush(&rl, RATELIMIT_WINDOW_MS * 3, emit, NULL);
	CHECK_EQ_INT(emitted, 1);
	/* and the next line opens a fresh window, without a stale count */
	CHECK(fmt(&rl, RATELIMIT_WINDOW_MS * 3, out, sizeof out, a, "x"));
	CHECK_EQ_STR(out, "plaintext from x");
}

/* More call sites than slots: still bounded, never crashes. */
TEST(more_keys_than_slots)
{
	static struct ratelimit rl;
	static char keys[RATELIMIT_KEYS * 2][8];
	char out[64];
	int logged = 0;
	for (int r = 0; r < 10; r++)
		for (int k = 0; k < RATELIMIT_KEYS * 2; k++)
			logged += fmt(&rl, 5, out, sizeof out, keys[k]);
	CHECK(logged <= RATELIMIT_KEYS * 2 * 10);
	CHECK(logged >= RATELIMIT_KEYS * 2);
}

TEST_MAIN(burst_then_count, flush_reports_closed_windows, more_keys_than_slots)
