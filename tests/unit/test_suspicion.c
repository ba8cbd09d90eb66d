/* test_suspicion.c — Lifeguard's suspicion timeouts (src/suspicion.c). */
#include "testlib.h"

#include "suspicion.h"

#define MIN_MS 2000
#define MAX_MS 30000

/* Within a millisecond: the formula goes through doubles and truncates. */
#define CHECK_NEAR(a, b) CHECK(llabs((long long)(a) - (long long)(b)) <= 1)

/* max - (max - min) * log(c + 1) / log(k + 1), never below min. */
TEST(timeout_formula)
{
	CHECK_EQ_INT(suspicion_timeout(MIN_MS, MAX_MS, 0, 3), MAX_MS);
	CHECK_NEAR(suspicion_timeout(MIN_MS, MAX_MS, 1, 3), 16000); /* log 2 / log 4 = 1/2 */
	CHECK_NEAR(suspicion_timeout(MIN_MS, MAX_MS, 2, 3), 7811);  /* log 3 / log 4 = 0.792 */
	CHECK_EQ_INT(suspicion_timeout(MIN_MS, MAX_MS, 3, 3), MIN_MS);
	/* past k the formula would undershoot: clamped */
	CHECK_EQ_INT(suspicion_timeout(MIN_MS, MAX_MS, 4, 3), MIN_MS);
	CHECK_EQ_INT(suspicion_timeout(MIN_MS, MAX_MS, 50, 3), MIN_MS);
	/* nobody to confirm: the minimum at once, not the maximum */
	CHECK_EQ_INT(suspicion_timeout(MIN_MS, MAX_MS, 0, 0), MIN_MS);
}

static uint64_t accuser(int i)
{
	return 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
}

/* A suspicion raised by accuser(0) at `now`, wanting `wanted` confirmations. */
static struct suspicion started(int64_t now, int wanted)
{
	struct suspicion s;
	memset(&s, 0, sizeof s);
	suspicion_start(&s, accuser(0), now, MIN_MS, MAX_MS, wanted);
	return s;
}

/* Every new accuser moves the deadline closer, down to start + min. */
TEST(shrinks_with_confirmations)
{
	struct suspicion s = started(100000, 3);
	CHECK_EQ_INT(s.deadline, 100000 + MAX_MS);
	CHECK(!suspicion_shared(&s));
	int64_t last = s.deadline;
	for (int i = 1; i <= 3; i++) {
		CHECK(suspicion_confirm(&s, accuser(i)));
		CHECK(s.deadline < last);
		CHECK(s.deadline >= 100000 + MIN_MS);
		last = s.deadline;
	}
	CHECK_EQ_INT(s.confirmations, 3);
	CHECK_EQ_INT(s.deadline, 100000 + MIN_MS);
	CHECK(suspicion_shared(&s));
}

/* The same accuser again, the first one included, confirms nothing. */
TEST(duplicate_accuser_does_not_count)
{
	struct suspicion s = started(0, 3);
	CHECK(!suspicion_confirm(&s, accuser(0)));
	CHECK_EQ_INT(s.confirmations, 0);
	CHECK_EQ_INT(s.deadline, MAX_MS);
	CHECK(!suspicion_shared(&s));

	CHECK(suspicion_confirm(&s, accuser(1)));
	int64_t after_one = s.deadline;
	CHECK(!suspicion_confirm(&s, accuser(1)));
	CHECK(!suspicion_confirm(&s, accuser(0)));
	CHECK_EQ_INT(s.confirmations, 1);
	CHECK_EQ_INT(s.deadline, after_one);
}

/* Confirmations past the k wanted neither count nor push below min, but
 * the accusers are still remembered (so a repeat is still a repeat). */
TEST(never_below_min)
{
	struct suspicion s = started(5000, 2);
	CHECK(suspicion_confirm(&s, accuser(1)));
	CHECK(suspicion_confirm(&s, accuser(2)));
	CHECK_EQ_INT(s.deadline, 5000 + MIN_MS);
	CHECK(!suspicion_confirm(&s, accuser(3)));
	CHECK(!suspicion_confirm(&s, accuser(4)));
	CHECK_EQ_INT(s.confirmations, 2);
	CHECK_EQ_INT(s.deadline, 5000 + MIN_MS);
	CHECK_EQ_INT(s.n_accusers, 5);
	CHECK(!suspicion_confirm(&s, accuser(3)));
}

/* With no confirmations wanted (plain SWIM, tiny clusters) the minimum applies. */
TEST(zero_wanted_uses_min)
{
	struct suspicion s = started(700, 0);
	CHECK_EQ_INT(s.deadline, 700 + MIN_MS);
	CHECK(!suspicion_confirm(&s, accuser(1)));
	CHECK_EQ_INT(s.deadline, 700 + MIN_MS);
	CHECK(suspicion_shared(&s));
}

/* More distinct accusers than are remembered: no overflow, none counted twice. */
TEST(many_accusers)
{
	struct suspicion s = started(0, 20);
	int counted = 0;
	for (int i = 1; i < 3 * SUSPICION_ACCUSERS_MAX; i++)
		counted += suspicion_confirm(&s, accuser(i));
	CHECK_EQ_INT(s.n_accusers, SUSPICION_ACCUSERS_MAX);
	CHECK(counted >= SUSPICION_ACCUSERS_MAX - 1);
	CHECK(s.deadline >= MIN_MS && s.deadline < MAX_MS);
	/* the remembered ones are still recognised */
	int before = s.confirmations;
	for (int i = 0; i < SUSPICION_ACCUSERS_MAX; i++)
		CHECK(!suspicion_confirm(&s, accuser(i)));
	CHECK_EQ_INT(s.confirmations, before);
}

/* After a stall the suspicion gets its time again, confirmations kept. */
TEST(restart_keeps_confirmations)
{
	struct suspicion s = started(1000, 3);
	suspicion_confirm(&s, accuser(1));
	int64_t left = s.deadline - s.start;
	suspicion_restart(&s, 60000);
	CHECK_EQ_INT(s.start, 60000);
	CHECK_EQ_INT(s.deadline, 60000 + left);
	CHECK_EQ_INT(s.confirmations, 1);
}

/* mult * max(1, log10(n)) * interval, as memberlist's suspicionTimeout. */
TEST(min_timeout_scales_with_log_n)
{
	CHECK_EQ_INT(suspicion_min_timeout(4, 0, 1000), 4000);
	CHECK_EQ_INT(suspicion_min_timeout(4, 1, 1000), 4000);
	CHECK_EQ_INT(suspicion_min_timeout(4, 10, 1000), 4000);
	CHECK_NEAR(suspicion_min_timeout(4, 100, 1000), 8000);
	CHECK_NEAR(suspicion_min_timeout(4, 1000, 1000), 12000);
	CHECK_NEAR(suspicion_min_timeout(5, 50, 200), 1698); /* 5 * 1.699 * 200 */
}

/* k = mult - 2, and none without Lifeguard or without enough members. */
TEST(confirmations_wanted)
{
	CHECK_EQ_INT(suspicion_confirmations_wanted(4, 10, true), 2);
	CHECK_EQ_INT(suspicion_confirmations_wanted(4, 4, true), 2);
	CHECK_EQ_INT(suspicion_confirmations_wanted(4, 3, true), 0);
	CHECK_EQ_INT(suspicion_confirmations_wanted(4, 10, false), 0);
	CHECK_EQ_INT(suspicion_confirmations_wanted(6, 100, true), 4);
	CHECK_EQ_INT(suspicion_confirmations_wanted(1, 100, true), 0);
	CHECK_EQ_INT(suspicion_confirmations_wanted(4, 0, true), 0);
}

TEST_MAIN(timeout_formula, shrinks_with_confirmations, duplicate_accuser_does_not_count,
	  never_below_min, zero_wanted_uses_min, many_accusers, restart_keeps_confirmations,
	  min_timeout_scales_with_log_n, confirmations_wanted)
