/* test_awareness.c — Lifeguard's local health score (src/awareness.c). */
#include "testlib.h"

#include "awareness.h"

/* A fresh score is healthy and leaves timeouts as they are. */
TEST(starts_healthy)
{
	struct awareness a;
	awareness_init(&a, 8);
	CHECK_EQ_INT(awareness_score(&a), 0);
	CHECK_EQ_INT(awareness_scale(&a, 1000), 1000);
}

/* Good news at a healthy score changes nothing: the score never goes negative. */
TEST(clamps_at_zero)
{
	struct awareness a;
	awareness_init(&a, 8);
	CHECK(!awareness_apply(&a, -1));
	CHECK(!awareness_apply(&a, -25));
	CHECK_EQ_INT(awareness_score(&a), 0);
	CHECK(awareness_apply(&a, 2));
	CHECK(awareness_apply(&a, -5));
	CHECK_EQ_INT(awareness_score(&a), 0);
}

/* The score tops out at max_multiplier - 1, however much bad news comes. */
TEST(clamps_at_max)
{
	struct awareness a;
	awareness_init(&a, 8);
	CHECK(awareness_apply(&a, 100));
	CHECK_EQ_INT(awareness_score(&a), 7);
	CHECK(!awareness_apply(&a, 1));
	CHECK_EQ_INT(awareness_score(&a), 7);
	CHECK_EQ_INT(awareness_scale(&a, 500), 4000);

	awareness_init(&a, 3);
	awareness_apply(&a, 5);
	CHECK_EQ_INT(awareness_score(&a), 2);
}

/* Each step up stretches the timeout by one more multiple; steps down undo it. */
TEST(scales_by_score_plus_one)
{
	struct awareness a;
	awareness_init(&a, 8);
	for (int s = 1; s <= 7; s++) {
		CHECK(awareness_apply(&a, 1));
		CHECK_EQ_INT(awareness_score(&a), s);
		CHECK_EQ_INT(awareness_scale(&a, 1000), 1000LL * (s + 1));
	}
	for (int s = 6; s >= 0; s--) {
		CHECK(awareness_apply(&a, -1));
		CHECK_EQ_INT(awareness_scale(&a, 250), 250LL * (s + 1));
	}
	/* 64-bit: a long timeout at the top score does not overflow */
	awareness_apply(&a, 7);
	CHECK_EQ_INT(awareness_scale(&a, 3000000000LL), 24000000000LL);
}

/* A zero delta reports no change; a multiplier below 1 keeps the score at 0. */
TEST(degenerate_settings)
{
	struct awareness a;
	awareness_init(&a, 8);
	CHECK(!awareness_apply(&a, 0));
	awareness_init(&a, 0);
	CHECK(!awareness_apply(&a, 3));
	CHECK_EQ_INT(awareness_score(&a), 0);
	CHECK_EQ_INT(awareness_scale(&a, 1000), 1000);
	awareness_init(&a, 1);
	CHECK(!awareness_apply(&a, 1));
	CHECK_EQ_INT(awareness_score(&a), 0);
}

TEST_MAIN(starts_healthy, clamps_at_zero, clamps_at_max, scales_by_score_plus_one,
	  degenerate_settings)
