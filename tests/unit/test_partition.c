/*
 * test_partition.c — partitions and heals on the simulator (src/sim.c):
 * how fast each side of a cut gives up on the other, and that nobody is
 * declared dead by members that can reach it when the cut heals.
 *
 * Timings are memberlist's LAN defaults (swim_config_default): probe
 * interval 1 s, probe timeout 0.5 s, suspicion_mult 4, max timeout mult 6,
 * 3 indirect checks, awareness max 8.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"
#include "testlib.h"

#define N 10

/* A converged cluster of n, 15 s on (every member probed a few times). */
static struct sim *cluster(uint64_t seed, int n)
{
	struct sim *s = sim_new_converged(seed, n, NULL, 60000);
	if (s)
		sim_run_for(s, 15000);
	return s;
}

/* Every member of group g sees every member of the other group dead. */
struct side {
	int group;
};

static bool side_done(struct sim *s, void *ctx)
{
	const struct side *sd = ctx;
	int n = sim_node_count(s);
	for (int i = 0; i < n; i++) {
		if (sim_group(s, i) != sd->group)
			continue;
		for (int j = 0; j < n; j++)
			if (sim_group(s, j) != sd->group &&
			    sim_view(s, i, sim_name(s, j)) != SWIM_DEAD)
				return false;
	}
	return true;
}

/*
 * ms until each side of a cut of a cluster of n sees the other dead (-1:
 * not within limit); minority lists the nodes on the smaller side.  The
 * two sides are timed in two runs of the same seed, since the predicate of
 * one would stop the run of the other.
 */
static void cut(uint64_t seed, int n, const int *minority, int n_minority, int64_t limit,
		int64_t *maj, int64_t *min)
{
	int64_t *out[2] = { maj, min };
	for (int g = 0; g < 2; g++) {
		*out[g] = -2;
		struct sim *s = cluster(seed, n);
		if (!s)
			return;
		sim_partition(s, minority, (size_t)n_minority);
		int64_t t0 = sim_now(s);
		struct side sd = { g };
		int64_t t = sim_run_until_pred(s, side_done, &sd, 100, t0 + limit);
		*out[g] = t < 0 ? -1 : t - t0;
		sim_free(s);
	}
}

static void cut_6_4(uint64_t seed, int64_t limit, int64_t *maj, int64_t *min)
{
	static const int minority[] = { 1, 4, 6, 9 };
	cut(seed, N, minority, 4, limit, maj, min);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/*
 * Finding 1 of issue 14: a 6|4 partition, 10 seeds.  serf (memberlist,
 * same timings) measured in namespaces: majority 13.5 s, minority 21.1 s.
 * memberlist's own arithmetic for this cut: a member is suspected at its
 * first failed probe (within ~1-2 s: 4-6 probers, 1 probe/s each), and
 * the suspicion runs max = 6 * 4 s = 24 s with no confirmation, 11.4 s
 * with one, 4 s with k = 2 (4 - 2); a confirmation needs another prober's
 * round-robin to reach the member (up to n-1 = 9 probe intervals), so the
 * last of the other side falls after roughly 10-14 s on the majority and,
 * with 3 confirmers for 6 members, 15-24 s on the minority.  Before the
 * fixes vigil took median 16.8 s / 49 s here (minority 34-60 s), as in the
 * namespaces; the figure: medians <= serf's, every run done within 30 s.
 */
TEST(partition_6_4_each_side_gives_up_in_time)
{
	enum { RUNS = 10 };
	int64_t maj[RUNS], min[RUNS];
	for (int k = 0; k < RUNS; k++) {
		cut_6_4(1 + (uint64_t)k, 120000, &maj[k], &min[k]);
		printf("# seed %d: majority %" PRId64 " ms, minority %" PRId64 " ms\n", 1 + k,
		       maj[k], min[k]);
		CHECK(maj[k] >= 0 && maj[k] <= 30000);
		CHECK(min[k] >= 0 && min[k] <= 30000);
	}
	qsort(maj, RUNS, sizeof *maj, cmp_i64);
	qsort(min, RUNS, sizeof *min, cmp_i64);
	int64_t mmaj = (maj[RUNS / 2 - 1] + maj[RUNS / 2]) / 2;
	int64_t mmin = (min[RUNS / 2 - 1] + min[RUNS / 2]) / 2;
	printf("# median: majority %" PRId64 " ms (serf 13500), minority %" PRId64
	       " ms (serf 21100)\n", mmaj, mmin);
	CHECK(mmaj <= 13500);
	CHECK(mmin <= 21100);
}

/*
 * The chaos suite's short cut (tests/chaos/test_chaos_short.sh): 6 members,
 * 4|2, 20 seeds.  Each minority member suspects the 4 across the cut as its
 * round-robin reaches them, and the other minority member, the only one
 * who can confirm, probes them too: one confirmation makes a suspicion
 * 11.4 s instead of 24 s.  vigil took median 27 s, worst 37.6 s here (39-42 s
 * in namespaces, past the chaos test's 40 s cut; serf 35.5 s in the one run
 * measured), for two reasons: gossip targets chosen uniformly, 4 of 5
 * across the cut, so a suspicion's few retransmissions missed the one
 * reachable peer about a third of the time (no confirmation); and buddy
 * probes of members already suspected every other probe, so members not
 * yet suspected waited.  Figure: median <= 18 s, every run <= 32 s (what
 * is left is Lifeguard's health score: a first failed probe whose three
 * helpers were all across the cut makes it 3, and probes go every 4 s).
 */
TEST(partition_4_2_minority_hears_its_confirmer)
{
	static const int minority[] = { 1, 4 };
	enum { RUNS = 20 };
	int64_t maj[RUNS], min[RUNS];
	for (int k = 0; k < RUNS; k++) {
		cut(100 + (uint64_t)k, 6, minority, 2, 120000, &maj[k], &min[k]);
		printf("# seed %d: majority %" PRId64 " ms, minority %" PRId64 " ms\n", 100 + k,
		       maj[k], min[k]);
		CHECK(maj[k] >= 0 && maj[k] <= 24000);
		CHECK(min[k] >= 0 && min[k] <= 32000);
	}
	qsort(min, RUNS, sizeof *min, cmp_i64);
	int64_t median = (min[RUNS / 2 - 1] + min[RUNS / 2]) / 2;
	printf("# minority: median %" PRId64 " ms, worst %" PRId64 " ms\n", median,
	       min[RUNS - 1]);
	CHECK(median <= 18000);
}

/*
 * Deaths (not leaves) logged since t whose observer was on the subject's
 * side of the cut (groups as they were during the partition): members
 * that could reach it the whole time.
 */
static size_t same_side_deaths(struct sim *s, const int *group, int64_t t)
{
	size_t c = 0;
	for (size_t i = 0; i < sim_event_count(s); i++) {
		const struct sim_event *ev = sim_event_at(s, i);
		if (ev->t < t || ev->ev != SWIM_EV_LEAVE || ev->state != SWIM_DEAD ||
		    ev->subject < 0 || group[ev->observer] != group[ev->subject])
			continue;
		printf("# t=%" PRId64 " %s declared %s dead (incarnation %u)\n", ev->t,
		       sim_name(s, ev->observer), sim_name(s, ev->subject), ev->incarnation);
		c++;
	}
	return c;
}

/*
 * Finding 2 of issue 14: 20 heals of a 6|4 partition of 30 s, 31 s, ...
 * 49 s (HEAL_BASE=ms moves the first; shorter cuts heal while suspicions
 * are still running, the hard case).  A suspicion still running on one side when the
 * cut heals used to expire just after it, and its `dead` crossed the
 * healed cut: members that had reached the accused the whole time
 * reported it failed until it refuted.  Figure: 0 such deaths in 20 runs
 * (serf: 0), and everyone alive everywhere within 60 s of the heal (two
 * of serf's 30 s reconnect intervals).  Old code: 29 false deaths.
 */
static int64_t cut_ms(int k)
{
	const char *e = getenv("HEAL_BASE");
	return (e ? atoll(e) : 30000) + 1000LL * k;
}

TEST(partition_heal_no_false_deaths)
{
	static const int minority[] = { 1, 4, 6, 9 };
	size_t false_deaths = 0;
	int not_whole = 0;
	for (int k = 0; k < 20; k++) {
		struct sim *s = cluster(100 + (uint64_t)k, N);
		REQUIRE(s != NULL);
		sim_partition(s, minority, 4);
		int group[N];
		for (int i = 0; i < N; i++)
			group[i] = sim_group(s, i);
		int64_t t0 = sim_now(s);
		sim_run_until(s, t0 + cut_ms(k));
		sim_heal(s);
		int64_t th = sim_now(s);
		if (sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, th + 60000) < 0) {
			not_whole++;
			for (int i = 0; i < N; i++)
				for (int j = 0; j < N; j++)
					if (sim_view(s, i, sim_name(s, j)) != SWIM_ALIVE)
						printf("# run %d: %s sees %s in state %d\n", k,
						       sim_name(s, i), sim_name(s, j),
						       sim_view(s, i, sim_name(s, j)));
		}
		sim_run_for(s, 10000);
		false_deaths += same_side_deaths(s, group, t0);
		sim_free(s);
	}
	printf("# %zu false deaths in 20 heals; %d not whole 60 s after the heal\n",
	       false_deaths, not_whole);
	CHECK_EQ_INT(false_deaths, 0);
	CHECK_EQ_INT(not_whole, 0);
}

TEST_MAIN(partition_6_4_each_side_gives_up_in_time, partition_4_2_minority_hears_its_confirmer,
	  partition_heal_no_false_deaths)
