/*
 * sim_pauses.c — how long a hung member goes unsuspected, and why the
 * schedule of the hangs matters.
 *
 *   build/sim_pauses [members=32] [rounds=1000] [between_ms=2000] [seed=7]
 *
 * The benchmark's SIGSTOP rounds (bench/bench.py, "freeze") freeze one
 * agent, wait until every member reports it failed, resume it, wait until
 * the cluster is whole again, sleep 2 s and freeze the next.  This runs the
 * same schedule on the simulator (sim_pause / sim_resume, LAN timings) and
 * reports the time from the pause to the first suspicion: the first failed
 * probe of the hung member by anybody, i.e. the wait for the first probe
 * plus one probe interval.
 *
 * A resumed member notices its stall and used to raise its Lifeguard
 * health to the maximum, which then dropped by one per acked probe: it
 * probed every 8 s, then 7 s, ..., for about 36 s, and with rounds every
 * ~10 s a few of the probers were always such slow ones, so the hung
 * member of the next round was probed less often.  Since the revision of
 * docs/DESIGN.md's stall awareness a stall raises it by a step, and an
 * acked probe keeps the base pace; the two schedules now look alike.  Run
 * it with between_ms=40000 to see the same rounds with every prober
 * recovered.
 * The mean health score summed over members at the moment of each pause
 * is printed too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"
#include "swim.h"

struct watch {
	int victim;
};

static bool anyone_suspects(struct sim *s, void *ctx)
{
	const struct watch *w = ctx;
	return sim_any_sees(s, w->victim, SWIM_SUSPECT);
}

static bool all_see_dead(struct sim *s, void *ctx)
{
	const struct watch *w = ctx;
	return sim_all_see(s, w->victim, SWIM_DEAD);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int health_sum(struct sim *s)
{
	int h = 0;
	for (int i = 0; i < sim_node_count(s); i++)
		h += swim_health(sim_swim(s, i));
	return h;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 32;
	int rounds = argc > 2 ? atoi(argv[2]) : 1000;
	int between = argc > 3 ? atoi(argv[3]) : 2000;
	uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 7;
	if (n < 3 || rounds < 1 || between < 0) {
		fprintf(stderr, "usage: %s [members>=3] [rounds>=1] [between_ms>=0] [seed]\n", argv[0]);
		return 2;
	}
	struct sim *s = sim_new(seed);
	int64_t *wait = calloc((size_t)rounds, sizeof *wait);
	if (!s || !wait)
		return 1;
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "node-%03d", i);
		if (sim_add_node(s, name, NULL) != i)
			return 1;
	}
	for (int i = 1; i < n; i++)
		sim_join(s, i, 0);
	if (sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, 60000) < 0) {
		printf("did not converge\n");
		return 1;
	}
	sim_run_for(s, 15000); /* the benchmark's settle time */
	long long health = 0;
	for (int r = 0; r < rounds; r++) {
		struct watch w = { 1 + r % (n - 1) };
		int64_t t0 = sim_now(s);
		health += health_sum(s);
		sim_pause(s, w.victim);
		int64_t t = sim_run_until_pred(s, anyone_suspects, &w, 10, t0 + 120000);
		if (t < 0 || sim_run_until_pred(s, all_see_dead, &w, 100, t0 + 120000) < 0) {
			printf("round %d: not suspected or not declared dead in 120 s\n", r);
			return 1;
		}
		wait[r] = t - t0;
		sim_resume(s, w.victim);
		if (sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, sim_now(s) + 120000) < 0) {
			printf("round %d: cluster not whole again in 120 s\n", r);
			return 1;
		}
		sim_run_for(s, between);
	}
	qsort(wait, (size_t)rounds, sizeof *wait, cmp_i64);
	printf("members %d, rounds %d, %d ms between rounds: pause -> first suspicion, ms: "
	       "p10 %" PRId64 " p50 %" PRId64 " p90 %" PRId64 " p95 %" PRId64 " p99 %" PRId64
	       " max %" PRId64 "\n", n, rounds, between, wait[rounds / 10], wait[rounds / 2],
	       wait[rounds * 9 / 10], wait[rounds * 95 / 100], wait[rounds * 99 / 100],
	       wait[rounds - 1]);
	const int thresholds[] = { 3000, 4000, 4700, 6000 };
	printf("rounds with the first suspicion after >=");
	for (size_t k = 0; k < sizeof thresholds / sizeof *thresholds; k++) {
		int c = 0;
		for (int r = 0; r < rounds; r++)
			c += wait[r] >= thresholds[k];
		printf(" %d ms: %.1f %%%s", thresholds[k], 100.0 * c / rounds,
		       k + 1 < sizeof thresholds / sizeof *thresholds ? ";" : "\n");
	}
	printf("health score summed over members when a pause began: mean %.1f\n",
	       (double)health / rounds);
	free(wait);
	sim_free(s);
	return 0;
}
