/*
 * test_leave.c — graceful leave on the simulator (issue 14, finding 4):
 * a leave must reach every live member, and "leave done" must mean that a
 * live member has it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"
#include "testlib.h"

#define N 10

/*
 * Four members killed; 30 s later (they are dead everywhere, and still
 * gossip targets: memberlist gossips to the dead for 30 s) another leaves.
 * In the namespaces serf showed it `left` in 15 of 22 runs: the leave's
 * few retransmits went to dead ports and leave-done reported success.
 * Here with 25 % loss on top (in the simulator, at 0 % loss the
 * partition fixes' longer retransmit limit already got it through).
 * Figure: every live member sees it left in 50 of 50 runs (before: 48).
 */
TEST(leave_after_kills_reaches_everyone)
{
	int good = 0;
	for (uint64_t k = 1; k <= 50; k++) {
		struct sim *s = sim_new_converged(k, N, NULL, 60000);
		REQUIRE(s != NULL);
		for (int i = 1; i <= 4; i++)
			sim_crash(s, i);
		sim_run_for(s, 30000);
		sim_set_loss(s, 0.25);
		sim_leave(s, 5);
		struct swim *sw = sim_swim(s, 5);
		REQUIRE(sw != NULL);
		int64_t end = sim_now(s) + 20000;
		while (sim_now(s) < end && sim_status(s, 5) == SIM_NODE_UP &&
		       !swim_leave_done(sw))
			sim_run_for(s, 10);
		if (sim_status(s, 5) == SIM_NODE_UP && swim_leave_done(sw))
			CHECK(swim_leave_reached(sw) > 0); /* leave done: a live member has it */
		sim_run_for(s, 20000);
		bool ok = sim_status(s, 5) == SIM_NODE_DOWN; /* leave finished */
		for (int i = 0; i < N; i++)
			if (sim_status(s, i) == SIM_NODE_UP && sim_view(s, i, sim_name(s, 5)) != SWIM_LEFT) {
				printf("# seed %" PRIu64 ": %s sees %s in state %d\n", k, sim_name(s, i),
				       sim_name(s, 5), sim_view(s, i, sim_name(s, 5)));
				ok = false;
			}
		good += ok;
		sim_free(s);
	}
	printf("# %d of 50 runs: every live member sees the leaver left\n", good);
	CHECK_EQ_INT(good, 50);
}

/*
 * "Leave done" must mean a live member has it, or say that none could be
 * reached: a member cut off from everyone leaves; it is done after its
 * tries and reports 0 reached of the 9 it told.  Connected, all 9 have it.
 */
TEST(leave_done_says_who_has_it)
{
	for (int cut = 0; cut < 2; cut++) {
		struct sim *s = sim_new_converged(77, N, NULL, 60000);
		REQUIRE(s != NULL);
		if (cut) {
			int alone[] = { 5 };
			sim_partition(s, alone, 1);
		}
		struct swim *sw = sim_swim(s, 5);
		swim_leave(sw, sim_now(s));
		int64_t end = sim_now(s) + 20000;
		while (sim_now(s) < end && !swim_leave_done(sw))
			sim_run_for(s, 10);
		CHECK(swim_leave_done(sw));
		CHECK_EQ_INT(swim_leave_told(sw), N - 1);
		CHECK_EQ_INT(swim_leave_reached(sw), cut ? 0 : N - 1);
		sim_free(s);
	}
}

TEST_MAIN(leave_after_kills_reaches_everyone, leave_done_says_who_has_it)
