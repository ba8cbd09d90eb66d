/*
 * fuzz_goregex — src/goregex.h on arbitrary patterns and texts.
 *
 * Input: a 16-bit pattern length, the pattern, then the text (each copied
 * into its own heap block).  Checks: a refused pattern leaves the budget
 * alone and says why in Go's words; an accepted one is charged to the
 * budget; matching is deterministic; and compile + match of one pattern
 * stays far inside the time a query may cost (the unit test measures the
 * 10 ms bound; here 200 ms catches a return to backtracking or unbounded
 * compilation without tripping on an instrumented, busy machine).
 */
#include "fuzz_common.h"
#include "goregex.h"

#include <time.h>

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	size_t pl, tl;
	const uint8_t *pp = fuzz_take(&in, fuzz_u16(&in), &pl);
	const uint8_t *tp = fuzz_take(&in, in.len, &tl);
	char *pat = (char *)fuzz_dup(pp, pl), *text = (char *)fuzz_dup(tp, tl);
	char err[256];
	size_t budget = GOREGEX_BUDGET;

	double t0 = cpu_ms();
	struct goregex *re = goregex_compile(pat, pl, &budget, err, sizeof err);
	if (!re) {
		FUZZ_ASSERT(budget == GOREGEX_BUDGET);
		FUZZ_ASSERTF(strncmp(err, "error parsing regexp: ", 22) == 0 ||
				     strcmp(err, "out of memory") == 0,
			     "error text: %s", err);
	} else {
		FUZZ_ASSERT(budget < GOREGEX_BUDGET);
		FUZZ_ASSERT(pl <= GOREGEX_MAX_LEN);
		bool m = goregex_match(re, text, tl);
		FUZZ_ASSERT(goregex_match(re, text, tl) == m);
		/* an empty text is a prefix of every text: "^" patterns aside,
		 * nothing to check cheaply; exercise it anyway */
		(void)goregex_match(re, text, 0);
		goregex_free(re);
	}
	double dt = cpu_ms() - t0;
	FUZZ_ASSERTF(dt < 200.0, "compile + match took %.1f ms", dt);
	free(pat);
	free(text);
	return 0;
}
