/*
 * sim_falsepos.c — false positives with slow members, Lifeguard on and off.
 *
 * The Lifeguard paper (Dadgar et al., 2018) reports that its three
 * extensions cut false failure verdicts about healthy members by more than
 * 50x when some members process messages slowly.  This measures the same
 * thing on the simulator, for vigil's state machine:
 *
 *   build/sim_falsepos [members=100] [slow_fraction=0.1] [delays_ms=2000,5000,10000]
 *                      [seconds=600] [seeds=3]
 *
 * For every delay D and seed, two clusters are run from the same seed, one
 * with Lifeguard (the default configuration) and one with plain SWIM
 * (cfg.lifeguard = false: no local health multiplier, a fixed suspicion
 * timeout, no buddy system).  Each cluster: `members` join and converge;
 * then round(slow_fraction * members) members, picked at random, turn slow:
 * everything arriving at them is handled an extra uniform 0..D ms late
 * (sim_set_slow; their timers still fire on time, so they probe, time out
 * and accuse as a starved process does).  Then `seconds` of virtual time
 * run.  Nobody crashes, so every dead verdict is false.  Counted:
 *
 *   healthy_incidents  distinct (member, incarnation) pairs of a healthy
 *                      (not slow) member that some member declared dead:
 *                      the false positives the paper counts;
 *   healthy_events     member-level failure events about healthy members
 *                      (what `serf monitor` on every member would print);
 *   slow_incidents     the same about the slow members (they are really
 *                      unresponsive for up to D, so these are arguable);
 *   suspicions         suspicions raised, summed over members.
 *
 * One line per run ("run ...") and a summary per delay ("delay ..."),
 * parsed by bench/sim.py.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct counts {
	const unsigned char *slow;   /* by node index */
	uint32_t *last_dead_inc;     /* by subject: incarnation of the last verdict + 1 */
	uint64_t healthy_incidents, healthy_events, slow_incidents, slow_events;
};

static void on_member(void *ctx, const struct sim_event *e, const struct swim_member *m)
{
	struct counts *c = ctx;
	if (e->ev != SWIM_EV_LEAVE || e->state != SWIM_DEAD || e->subject < 0)
		return;
	bool slow = c->slow[e->subject];
	/* a new incident unless this incarnation of the member was already declared dead */
	bool incident = c->last_dead_inc[e->subject] != m->incarnation + 1u;
	c->last_dead_inc[e->subject] = m->incarnation + 1u;
	if (slow) {
		c->slow_events++;
		c->slow_incidents += incident;
	} else {
		c->healthy_events++;
		c->healthy_incidents += incident;
	}
}


struct result {
	uint64_t healthy_incidents, healthy_events, slow_incidents, slow_events, suspicions;
	bool converged;
};

static struct result run_one(int n, int n_slow, int delay_ms, int seconds, uint64_t seed,
			     bool lifeguard)
{
	struct result r = { 0 };
	struct sim *s = sim_new(seed);
	unsigned char *slow = calloc((size_t)n, 1);
	uint32_t *last = calloc((size_t)n, sizeof *last);
	if (!s || !slow || !last) {
		fprintf(stderr, "sim_falsepos: out of memory\n");
		exit(1);
	}
	struct swim_config cfg;
	swim_config_default(&cfg);
	cfg.lifeguard = lifeguard;
	sim_set_default_config(s, &cfg);
	sim_record_events(s, false);
	struct counts c = { .slow = slow, .last_dead_inc = last };
	sim_set_member_cb(s, on_member, &c);

	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "node-%04d", i);
		if (sim_add_node(s, name, NULL) != i) {
			fprintf(stderr, "sim_add_node failed\n");
			exit(1);
		}
	}
	for (int i = 1; i < n; i++)
		sim_join(s, i, 0);
	r.converged = sim_run_until_pred(s, sim_pred_all_alive, NULL, 500, sim_now(s) + 600000) >= 0;

	/* the same members slow in both modes: drawn from the seed alone */
	uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 7;
	for (int k = 0; k < n_slow;) {
		rs ^= rs << 13;
		rs ^= rs >> 7;
		rs ^= rs << 17;
		int i = (int)(rs % (uint64_t)n);
		if (!slow[i]) {
			slow[i] = 1;
			sim_set_slow(s, i, delay_ms);
			k++;
		}
	}
	uint64_t susp0 = 0, susp1 = 0;
	for (int i = 0; i < n; i++)
		susp0 += swim_stats(sim_swim(s, i))->suspicions;
	/* verdicts before the slowdown (there should be none) are not counted */
	c.healthy_incidents = c.healthy_events = c.slow_incidents = c.slow_events = 0;
	sim_run_for(s, (int64_t)seconds * 1000);
	for (int i = 0; i < n; i++)
		susp1 += swim_stats(sim_swim(s, i))->suspicions;

	r.healthy_incidents = c.healthy_incidents;
	r.healthy_events = c.healthy_events;
	r.slow_incidents = c.slow_incidents;
	r.slow_events = c.slow_events;
	r.suspicions = susp1 - susp0;
	sim_free(s);
	free(slow);
	free(last);
	return r;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	double frac = argc > 2 ? atof(argv[2]) : 0.1;
	const char *delays = argc > 3 ? argv[3] : "2000,5000,10000";
	int seconds = argc > 4 ? atoi(argv[4]) : 600;
	int seeds = argc > 5 ? atoi(argv[5]) : 3;
	int n_slow = (int)lround(frac * n);
	if (n < 4 || frac < 0 || frac >= 1 || n_slow < 1 || seconds < 1 || seeds < 1) {
		fprintf(stderr, "usage: %s [members>=4] [slow_fraction in (0,1)] "
			"[delay_ms[,delay_ms...]] [seconds>=1] [seeds>=1]\n", argv[0]);
		return 2;
	}
	printf("sim_falsepos: %d members, %d slow (%.3g), %d s virtual per run, %d seeds\n",
	       n, n_slow, frac, seconds, seeds);

	char *list = strdup(delays), *save = NULL;
	if (!list)
		return 1;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int d = atoi(tok);
		if (d < 1) {
			fprintf(stderr, "bad delay '%s'\n", tok);
			return 2;
		}
		struct result sum[2] = { { 0 } };
		for (int seed = 1; seed <= seeds; seed++) {
			for (int lg = 1; lg >= 0; lg--) {
				struct result r = run_one(n, n_slow, d, seconds, (uint64_t)seed, lg);
				printf("run delay=%d seed=%d mode=%s converged=%d healthy_incidents=%" PRIu64
				       " healthy_events=%" PRIu64 " slow_incidents=%" PRIu64
				       " slow_events=%" PRIu64 " suspicions=%" PRIu64 "\n", d, seed,
				       lg ? "lifeguard" : "plain", r.converged, r.healthy_incidents,
				       r.healthy_events, r.slow_incidents, r.slow_events, r.suspicions);
				fflush(stdout);
				sum[lg].healthy_incidents += r.healthy_incidents;
				sum[lg].healthy_events += r.healthy_events;
				sum[lg].slow_incidents += r.slow_incidents;
				sum[lg].suspicions += r.suspicions;
			}
		}
		/* the ratio with a floor of one incident, so 0 with Lifeguard stays finite */
		double plain = (double)sum[0].healthy_incidents;
		double lgd = (double)sum[1].healthy_incidents;
		printf("delay %d ms: healthy members falsely declared dead: plain %" PRIu64
		       ", lifeguard %" PRIu64 " (plain/lifeguard %s%.1f); slow members: plain %" PRIu64
		       ", lifeguard %" PRIu64 "; suspicions: plain %" PRIu64 ", lifeguard %" PRIu64 "\n",
		       d, sum[0].healthy_incidents, sum[1].healthy_incidents, lgd < 1 ? ">= " : "",
		       plain / (lgd < 1 ? 1 : lgd), sum[0].slow_incidents, sum[1].slow_incidents,
		       sum[0].suspicions, sum[1].suspicions);
		fflush(stdout);
	}
	free(list);
	return 0;
}
