/*
 * test_sim.c — cluster scenarios on the deterministic simulator (src/sim.c).
 *
 * Each test builds a cluster of real swim state machines on the fake
 * network, drives it through a scenario in virtual time and asserts the
 * final views, plus the absence of false positives from the event log.
 * Environment:
 *   VIGIL_SIM_SCALE=x       multiply the cluster sizes of the heavier tests
 *                           (default 1; e.g. 0.5 for a quick run, 5 for a soak)
 *   VIGIL_SIM_SEED=k        shift every scenario's seed by k (soak over seeds)
 *   VIGIL_SIM_KNOWN_ISSUES=1 also run the reproducers of open swim.c issues
 *                           (they fail until swim.c is fixed)
 * Every run is reproducible: a scenario is a pure function of its seed.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>

#include "sim.h"
#include "testlib.h"

/* ---- helpers ---- */

static double scale(void)
{
	const char *e = getenv("VIGIL_SIM_SCALE");
	double v = e ? atof(e) : 1.0;
	return v > 0 ? v : 1.0;
}

/*
 * VIGIL_SIM_SEED=k shifts every scenario's seed by k, to soak the
 * scenarios over many runs (for k in $(seq 100); do ...; done).
 */
static uint64_t seed(uint64_t base)
{
	const char *e = getenv("VIGIL_SIM_SEED");
	return base + (e ? strtoull(e, NULL, 0) : 0);
}

/* A cluster size scaled by VIGIL_SIM_SCALE but never below `min`. */
static int scaled_n(int base, int min)
{
	int n = (int)lround(base * scale());
	return n < min ? min : n;
}



struct see {
	int subject;
	enum swim_state state;
};

static bool pred_all_see(struct sim *s, void *ctx)
{
	const struct see *w = ctx;
	return sim_all_see(s, w->subject, w->state);
}

/* Every member sees the other parity dead and its own parity alive. */
static bool pred_split(struct sim *s, void *ctx)
{
	(void)ctx;
	int n = sim_node_count(s);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (sim_view(s, i, sim_name(s, j)) !=
			    ((i & 1) != (j & 1) ? SWIM_DEAD : SWIM_ALIVE))
				return false;
	return true;
}

/* Build and wait for full convergence; NULL (after a diagnostic) if it never comes. */
static struct sim *converged_cluster(uint64_t seed, int n, const struct swim_config *cfg)
{
	struct sim *s = sim_new_cluster(seed, n, cfg);
	if (!s)
		return NULL;
	if (sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, 60000) < 0) {
		printf("# seed %" PRIu64 ": %d nodes did not converge in 60 s\n", seed, n);
		sim_free(s);
		return NULL;
	}
	return s;
}

/* A swim_stats counter summed over every running node (field: its offsetof). */
static uint64_t total_stat(struct sim *s, size_t field)
{
	uint64_t c = 0;
	for (int i = 0; i < sim_node_count(s); i++) {
		struct swim *sw = sim_swim(s, i);
		if (sw) {
			uint64_t v;
			memcpy(&v, (const char *)swim_stats(sw) + field, sizeof v);
			c += v;
		}
	}
	return c;
}

static uint64_t total_suspicions(struct sim *s)
{
	return total_stat(s, offsetof(struct swim_stats, suspicions));
}

/* Deaths ("failed", not "left") of anyone, as logged by anyone since t. */
static size_t deaths_since(struct sim *s, int subject, int64_t t)
{
	return sim_count_events(s, -1, subject, SWIM_EV_LEAVE, SWIM_DEAD, t);
}

/* ---- simulator mechanics ---- */

static void count_tap(void *ctx, int64_t now, int from, int to, const uint8_t *pkt,
		      size_t len)
{
	(void)now;
	(void)pkt;
	if (from != to && len > 0)
		++*(uint64_t *)ctx;
}

/* The network knobs work as documented, independently of swim's behaviour. */
TEST(sim_basics)
{
	struct sim *s = sim_new(1);
	REQUIRE(s != NULL);
	int a = sim_add_node(s, "a", NULL);
	int b = sim_add_node(s, "b", NULL);
	CHECK_EQ_INT(a, 0);
	CHECK_EQ_INT(b, 1);
	CHECK_EQ_INT(sim_add_node(s, "a", NULL), -1); /* duplicate name */
	CHECK_EQ_INT(sim_find(s, "b"), 1);
	CHECK_EQ_INT(sim_find(s, "zz"), -1);
	const struct wire_addr *ad = sim_addr(s, 1);
	CHECK_EQ_INT(ad->ip_len, 4);
	CHECK_EQ_INT(ad->ip[0], 10);
	CHECK_EQ_INT(ad->ip[3], 2);
	CHECK_EQ_INT(ad->port, 7946);
	/* each node knows itself, alive, from the start */
	CHECK_EQ_INT(sim_view(s, a, "a"), SWIM_ALIVE);
	CHECK_EQ_INT(sim_view(s, a, "b"), -1);

	CHECK(sim_reachable(s, a, b));
	sim_set_link(s, a, b, false);
	CHECK(!sim_reachable(s, a, b));
	CHECK(sim_reachable(s, b, a));
	sim_heal(s);
	CHECK(sim_reachable(s, a, b));
	int grp[] = { b };
	sim_partition(s, grp, 1);
	CHECK(!sim_reachable(s, a, b) && !sim_reachable(s, b, a));
	CHECK_EQ_INT(sim_group(s, b), 1);
	sim_heal(s);

	uint64_t tapped = 0;
	sim_set_packet_tap(s, count_tap, &tapped);
	sim_join(s, b, a);
	sim_run_for(s, 5000);
	sim_set_packet_tap(s, NULL, NULL);
	CHECK_EQ_INT(tapped, sim_stats(s)->packets_delivered);
	CHECK_EQ_INT(sim_now(s), 5000);
	CHECK_EQ_INT(sim_join_result(s, b), 1);
	CHECK(sim_all_alive(s));
	CHECK(sim_stats(s)->packets_delivered > 0);
	/* the join, plus possibly the first (randomly staggered) periodic push-pull */
	CHECK(sim_stats(s)->streams_ok >= 1);
	/* both saw the other join */
	CHECK_EQ_INT(sim_count_events(s, a, b, SWIM_EV_JOIN, -1, 0), 1);
	CHECK_EQ_INT(sim_count_events(s, b, a, SWIM_EV_JOIN, -1, 0), 1);

	/* a crashed seed host never answers: the join times out */
	sim_set_stream_timeout(s, 2000);
	sim_crash(s, a);
	CHECK_EQ_INT(sim_status(s, a), SIM_NODE_DOWN);
	CHECK_EQ_INT(sim_view(s, a, "a"), -1);
	sim_join(s, b, a);
	sim_run_for(s, 1900);
	CHECK_EQ_INT(sim_join_result(s, b), -1);
	sim_run_for(s, 200);
	CHECK_EQ_INT(sim_join_result(s, b), 0);
	/* a crashed process on a live host refuses at once */
	sim_set_refuse_when_down(s, true);
	sim_join(s, b, a);
	sim_run_for(s, 100);
	CHECK_EQ_INT(sim_join_result(s, b), 0);
	sim_set_refuse_when_down(s, false);

	/* a partitioned seed makes the join time out after the stream timeout */
	sim_restart(s, a);
	sim_partition(s, grp, 1);
	sim_join(s, b, a);
	sim_run_for(s, 1900);
	CHECK_EQ_INT(sim_join_result(s, b), -1);
	sim_run_for(s, 200);
	CHECK_EQ_INT(sim_join_result(s, b), 0);
	sim_heal(s);

	/* a paused seed answers once resumed, if within the timeout */
	sim_pause(s, a);
	CHECK_EQ_INT(sim_status(s, a), SIM_NODE_PAUSED);
	sim_join(s, b, a);
	sim_run_for(s, 1000);
	CHECK_EQ_INT(sim_join_result(s, b), -1);
	sim_resume(s, a);
	sim_run_for(s, 50);
	CHECK_EQ_INT(sim_join_result(s, b), 1);
	CHECK(swim_stats(sim_swim(s, a))->stalls == 1);

	/*
	 * A requester frozen before the answer comes finds it waiting on
	 * resume: arrivals are handled in order, so the answer (buffered at
	 * once) beats the timeout that also expired during the pause.
	 */
	sim_join(s, b, a);
	sim_pause(s, b);
	sim_run_for(s, 5000);
	CHECK_EQ_INT(sim_join_result(s, b), -1);
	sim_resume(s, b);
	CHECK_EQ_INT(sim_join_result(s, b), 1);
	sim_run_for(s, 10000);

	/* a long pause overflows a small socket buffer; the rest is dropped */
	sim_set_socket_buffer(s, 100);
	uint64_t ov = sim_stats(s)->packets_overflow;
	sim_pause(s, a);
	sim_run_for(s, 20000);
	CHECK(sim_stats(s)->packets_overflow > ov);
	sim_resume(s, a);
	CHECK_EQ_INT(swim_stats(sim_swim(s, a))->stalls, 2);
	sim_run_for(s, 20000);
	CHECK(sim_all_alive(s));
	CHECK_EQ_INT(sim_stats(s)->timer_stuck, 0);
	sim_free(s);
}

/* Random loss is applied at about the configured rate. */
TEST(sim_loss_rate)
{
	struct sim *s = sim_new(7);
	REQUIRE(s != NULL);
	sim_add_node(s, "a", NULL);
	sim_add_node(s, "b", NULL);
	sim_join(s, 1, 0);
	sim_run_for(s, 1000);
	sim_set_loss(s, 0.25);
	uint64_t sent0 = sim_stats(s)->packets_sent, lost0 = sim_stats(s)->packets_lost;
	sim_run_for(s, 600000);
	double sent = (double)(sim_stats(s)->packets_sent - sent0);
	double lost = (double)(sim_stats(s)->packets_lost - lost0);
	REQUIRE(sent > 1000);
	CHECK(fabs(lost / sent - 0.25) < 0.03);
	sim_free(s);
}

/* ---- protocol scenarios ---- */

/* (1) 100 members joining through one seed converge within bounded time. */
TEST(join_100_converges)
{
	const int n = 100;
	struct sim *s = sim_new_cluster(seed(101), n, NULL);
	REQUIRE(s != NULL);
	int64_t t = sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, 30000);
	printf("# %d members converged at t=%" PRId64 " ms; %" PRIu64 " packets, %" PRIu64
	       " bytes\n", n, t, sim_stats(s)->packets_delivered, sim_stats(s)->bytes_delivered);
	CHECK(t >= 0);
	for (int i = 0; i < n; i++) {
		CHECK_EQ_INT(sim_join_result(s, i), i == 0 ? -1 : 1);
		CHECK_EQ_INT(swim_alive_count(sim_swim(s, i)), n);
	}
	/* and it stays that way, with nobody suspected on a clean network */
	sim_run_for(s, 60000);
	CHECK(sim_all_alive(s));
	CHECK_EQ_INT(total_suspicions(s), 0);
	CHECK_EQ_INT(sim_count_events(s, -1, -1, SWIM_EV_LEAVE, -1, 0), 0);
	sim_free(s);
}

/* (2) A crashed member is declared dead by all others, and only it. */
TEST(crash_detected)
{
	int n = scaled_n(30, 10);
	struct sim *s = converged_cluster(seed(202), n, NULL);
	REQUIRE(s != NULL);
	const int victim = 7;
	int64_t t0 = sim_now(s);
	sim_crash(s, victim);
	struct see w = { victim, SWIM_DEAD };
	int64_t t = sim_run_until_pred(s, pred_all_see, &w, 100, t0 + 60000);
	printf("# crash of 1/%d detected by all after %" PRId64 " ms\n", n, t - t0);
	CHECK(t >= 0);
	for (int i = 0; i < n; i++)
		if (i != victim)
			CHECK_EQ_INT(sim_view(s, i, sim_name(s, victim)), SWIM_DEAD);
	/* every survivor logged exactly one death, all about the victim */
	CHECK_EQ_INT(deaths_since(s, victim, t0), n - 1);
	CHECK_EQ_INT(deaths_since(s, -1, 0), n - 1);
	/* survivors still agree on each other */
	for (int i = 0; i < n; i++)
		if (i != victim)
			CHECK(sim_all_see(s, i, SWIM_ALIVE));
	sim_free(s);
}

/*
 * Take x away (freeze it, or cut it off) until some member suspects it,
 * then 500 ms more, but never longer than 5 s in all: the suspicion
 * timeout in a 20-member cluster is at least 4 * log10(20) * 1 s = 5.2 s
 * after the first suspicion, which itself comes >= 1 s (one failed probe)
 * after x went away.  x is probed by about one member per second, so a
 * probe may miss the window; then x comes back, the cluster settles, and
 * we try again.  Returns whether x was suspected while away.
 */
static bool away_until_suspected(struct sim *s, int x, bool pause)
{
	int grp[] = { x };
	for (int attempt = 0; attempt < 4; attempt++) {
		if (pause)
			sim_pause(s, x);
		else
			sim_partition(s, grp, 1);
		int64_t until = sim_now(s) + 4500;
		bool suspected = false;
		while (sim_now(s) < until) {
			sim_run_for(s, 100);
			if (!suspected && sim_any_sees(s, x, SWIM_SUSPECT)) {
				suspected = true;
				until = sim_now(s) + 500;
			}
		}
		if (pause)
			sim_resume(s, x);
		else
			sim_heal(s);
		if (suspected)
			return true;
		sim_run_for(s, 10000);
	}
	return false;
}

/*
 * (3a) A member frozen for less than the suspicion timeout is suspected
 * (its probes fail), then refutes with a higher incarnation when it wakes
 * (stall awareness + buddy system); nobody declares anyone dead.
 */
TEST(pause_suspected_then_refuted)
{
	const int n = 20;
	struct sim *s = converged_cluster(seed(303), n, NULL);
	REQUIRE(s != NULL);
	const int x = 5;
	const char *name = sim_name(s, x);
	int64_t inc0 = sim_view_incarnation(s, 0, name);
	uint64_t susp0 = total_suspicions(s);

	CHECK(away_until_suspected(s, x, true));
	int64_t tr = sim_now(s);
	struct see w = { x, SWIM_ALIVE };
	int64_t t = sim_run_until_pred(s, pred_all_see, &w, 50, tr + 20000);
	CHECK(t >= 0);
	printf("# frozen until suspected: all see it alive %" PRId64 " ms after resume\n",
	       t - tr);
	sim_run_for(s, 30000);
	CHECK(sim_all_alive(s));
	CHECK(total_suspicions(s) > susp0);
	for (int i = 0; i < n; i++)
		CHECK(sim_view_incarnation(s, i, name) > inc0);
	CHECK_EQ_INT(deaths_since(s, -1, 0), 0);
	sim_free(s);
}

/*
 * (Stall awareness) A member whose state machine is frozen for 30 virtual
 * seconds (SIGSTOP, VM pause) is rightly declared dead by the others; on
 * wake it must refute its own death at once, and its timers that expired
 * while frozen must not make it accuse anybody: nobody but the frozen
 * member ever dies, in anyone's view, and everyone sees it alive again
 * within a few probe intervals.
 */
TEST(frozen_30s_refutes_own_death)
{
	const int n = 16;
	struct sim *s = converged_cluster(seed(313), n, NULL);
	REQUIRE(s != NULL);
	const int x = 7;
	int64_t t0 = sim_now(s);
	sim_pause(s, x);
	sim_run_for(s, 30000);
	/* frozen long enough: the cluster gave up on it */
	CHECK(sim_count_events(s, -1, x, SWIM_EV_LEAVE, SWIM_DEAD, t0) > 0);
	int64_t tr = sim_now(s);
	sim_resume(s, x);
	uint64_t x_susp = swim_stats(sim_swim(s, x))->suspicions;
	struct see w = { x, SWIM_ALIVE };
	int64_t t = sim_run_until_pred(s, pred_all_see, &w, 50, tr + 10000);
	CHECK(t >= 0);
	printf("# frozen 30 s: all see it alive %" PRId64 " ms after wake\n", t - tr);
	/* the probe it had in flight when frozen timed out "during" the freeze;
	 * acting on it would accuse a healthy member */
	sim_run_for(s, 3000);
	CHECK_EQ_INT(swim_stats(sim_swim(s, x))->suspicions, x_susp);
	sim_run_for(s, 30000);
	CHECK(sim_all_alive(s));
	/* the only deaths anyone ever saw are of the frozen member */
	size_t all = sim_count_events(s, -1, -1, SWIM_EV_LEAVE, SWIM_DEAD, t0);
	size_t of_x = sim_count_events(s, -1, x, SWIM_EV_LEAVE, SWIM_DEAD, t0);
	CHECK_EQ_INT(all, of_x);
	/* and the frozen member itself accused nobody after waking */
	CHECK_EQ_INT(sim_count_events(s, x, -1, SWIM_EV_LEAVE, SWIM_DEAD, t0), 0);
	sim_free(s);
}

/*
 * (3b) Same with the network instead of the process: the member is cut off
 * from everyone.  It never notices a stall; refutation comes from the
 * suspect rumour or a buddy-system ping once the link is back.
 */
TEST(isolation_suspected_then_refuted)
{
	const int n = 20;
	struct sim *s = converged_cluster(seed(304), n, NULL);
	REQUIRE(s != NULL);
	const int x = 9;
	const char *name = sim_name(s, x);
	int64_t inc0 = sim_view_incarnation(s, 0, name);
	CHECK(away_until_suspected(s, x, false));
	int64_t t = sim_run_until_pred(s, sim_pred_all_alive, NULL, 50, sim_now(s) + 60000);
	CHECK(t >= 0);
	sim_run_for(s, 30000);
	CHECK(sim_all_alive(s));
	for (int i = 0; i < n; i++)
		CHECK(sim_view_incarnation(s, i, name) > inc0);
	/* nor anyone x suspected while it was cut off (see isolated_accuser) */
	CHECK_EQ_INT(deaths_since(s, -1, 0), 0);
	sim_free(s);
}

/* (4) A graceful leave is seen as "left" by all, never as a failure. */
TEST(graceful_leave)
{
	int n = scaled_n(30, 10);
	struct sim *s = converged_cluster(seed(404), n, NULL);
	REQUIRE(s != NULL);
	const int x = 3;
	int64_t t0 = sim_now(s);
	sim_leave(s, x);
	struct see w = { x, SWIM_LEFT };
	int64_t t = sim_run_until_pred(s, pred_all_see, &w, 50, t0 + 30000);
	printf("# leave seen by all after %" PRId64 " ms\n", t - t0);
	CHECK(t >= 0);
	sim_run_for(s, 60000);
	/* the leaver "exited" once its leave had been gossiped enough */
	CHECK_EQ_INT(sim_status(s, x), SIM_NODE_DOWN);
	CHECK(sim_all_see(s, x, SWIM_LEFT));
	CHECK_EQ_INT(sim_count_events(s, -1, x, SWIM_EV_LEAVE, SWIM_LEFT, t0), n - 1);
	CHECK_EQ_INT(deaths_since(s, -1, 0), 0);
	sim_free(s);
}

/*
 * (5) Partition into halves long enough for each side to declare the other
 * dead, then heal: the dead come back (reconnect push-pull, refutation with
 * higher incarnations) and everybody sees everybody alive again.
 */
TEST(partition_heal)
{
	int n = scaled_n(20, 8);
	struct sim *s = converged_cluster(seed(505), n, NULL);
	REQUIRE(s != NULL);
	int *half = malloc(sizeof(int) * (size_t)n);
	REQUIRE(half != NULL);
	int na = 0;
	for (int i = 0; i < n; i += 2)
		half[na++] = i;
	int64_t t0 = sim_now(s);
	sim_partition(s, half, (size_t)na);
	/*
	 * Each side gives up on the other.  That takes a while: half of the
	 * indirect-probe helpers are unreachable too, so missing nacks drive
	 * every member's Lifeguard health score up to probing every 8 s.
	 */
	int64_t ts = sim_run_until_pred(s, pred_split, NULL, 1000, t0 + 300000);
	printf("# halves split apart after %" PRId64 " ms\n", ts - t0);
	CHECK(ts >= 0);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if ((i & 1) != (j & 1))
				CHECK_EQ_INT(sim_view(s, i, sim_name(s, j)), SWIM_DEAD);
	CHECK(deaths_since(s, -1, t0) > 0);
	/* ...but not on its own side */
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if ((i & 1) == (j & 1))
				CHECK_EQ_INT(sim_view(s, i, sim_name(s, j)), SWIM_ALIVE);
	int64_t th = sim_now(s);
	sim_heal(s);
	int64_t t = sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, th + 180000);
	printf("# partition healed: all alive %" PRId64 " ms after heal\n", t - th);
	CHECK(t >= 0);
	sim_run_for(s, 60000);
	CHECK(sim_all_alive(s));
	free(half);
	sim_free(s);
}

/*
 * (6) A member dead for longer than the reap interval has been forgotten;
 * restarted (fresh state, incarnation from scratch) and joined again, it
 * is accepted alive by all.  The default 24 h reap interval is shortened
 * to 1 h so the 2 virtual days of absence stay cheap to simulate.
 */
TEST(return_after_reap)
{
	const int n = 8;
	struct swim_config cfg;
	swim_config_default(&cfg);
	cfg.reap_interval_ms = 3600 * 1000;
	struct sim *s = converged_cluster(seed(606), n, &cfg);
	REQUIRE(s != NULL);
	const int x = 4;
	sim_crash(s, x);
	struct see w = { x, SWIM_DEAD };
	CHECK(sim_run_until_pred(s, pred_all_see, &w, 100, sim_now(s) + 60000) >= 0);
	/* two virtual days later the tombstone is long gone */
	sim_run_for(s, 2LL * 24 * 3600 * 1000);
	for (int i = 0; i < n; i++)
		if (i != x)
			CHECK_EQ_INT(sim_view(s, i, sim_name(s, x)), -1);
	CHECK_EQ_INT(sim_count_events(s, -1, x, SWIM_EV_REAP, -1, 0), n - 1);
	int64_t tr = sim_now(s);
	sim_restart(s, x);
	sim_join(s, x, 0);
	int64_t t = sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, tr + 30000);
	CHECK(t >= 0);
	CHECK_EQ_INT(sim_join_result(s, x), 1);
	/* nobody else was lost on the way */
	CHECK_EQ_INT(deaths_since(s, -1, 0), n - 1);
	sim_free(s);
}

/*
 * (6b) Back within the reap interval: the tombstone (dead, incarnation N)
 * is still there, so the fresh node's alive at incarnation 1 is stale; it
 * must learn of its old incarnation (push-pull answer) and outbid it.
 */
TEST(return_before_reap)
{
	const int n = 10;
	struct sim *s = converged_cluster(seed(607), n, NULL);
	REQUIRE(s != NULL);
	const int x = 6;
	const char *name = sim_name(s, x);
	sim_crash(s, x);
	struct see w = { x, SWIM_DEAD };
	CHECK(sim_run_until_pred(s, pred_all_see, &w, 100, sim_now(s) + 60000) >= 0);
	int64_t dead_inc = sim_view_incarnation(s, 0, name);
	sim_run_for(s, 10 * 60 * 1000);
	CHECK_EQ_INT(sim_view(s, 0, name), SWIM_DEAD);
	int64_t tr = sim_now(s);
	sim_restart(s, x);
	sim_join(s, x, 0);
	int64_t t = sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, tr + 60000);
	CHECK(t >= 0);
	for (int i = 0; i < n; i++)
		CHECK(sim_view_incarnation(s, i, name) > dead_inc);
	/* every survivor saw it come back exactly once */
	for (int i = 0; i < n; i++)
		if (i != x)
			CHECK_EQ_INT(sim_count_events(s, i, x, SWIM_EV_JOIN, -1, tr), 1);
	sim_free(s);
}

/* Run a busy scenario and return its trace hash. */
static uint64_t scenario_hash(uint64_t seed, struct sim_stats *st)
{
	struct sim *s = sim_new_cluster(seed, 16, NULL);
	if (!s)
		return 0;
	sim_set_latency(s, 1, 10);
	sim_set_loss(s, 0.05);
	sim_run_for(s, 20000);
	sim_crash(s, 3);
	sim_pause(s, 4);
	sim_run_for(s, 2000);
	sim_resume(s, 4);
	int grp[] = { 0, 1, 2 };
	sim_partition(s, grp, 3);
	sim_run_for(s, 20000);
	sim_heal(s);
	sim_restart(s, 3);
	sim_join(s, 3, 10);
	sim_leave(s, 12);
	sim_run_for(s, 40000);
	uint64_t h = sim_trace_hash(s);
	*st = *sim_stats(s);
	sim_free(s);
	return h;
}

/* (7) Same seed, same run, bit for bit; another seed, another run. */
TEST(determinism)
{
	struct sim_stats a, b, c;
	uint64_t h1 = scenario_hash(seed(777), &a);
	uint64_t h2 = scenario_hash(seed(777), &b);
	uint64_t h3 = scenario_hash(seed(778), &c);
	printf("# trace %016" PRIx64 " %016" PRIx64 " (other seed %016" PRIx64 ")\n", h1, h2, h3);
	CHECK(h1 == h2);
	CHECK(h1 != h3);
	CHECK_EQ_INT(a.packets_delivered, b.packets_delivered);
	CHECK_EQ_INT(a.bytes_delivered, b.bytes_delivered);
	CHECK_EQ_INT(a.packets_lost, b.packets_lost);
	CHECK_EQ_INT(a.timer_fires, b.timer_fires);
	CHECK(a.packets_delivered > 2000);
}

/*
 * (8) 10% packet loss, Lifeguard on, 20 members, 5 virtual minutes: probes
 * do fail and members get suspected, but every suspicion is refuted in
 * time and nobody is ever declared dead.
 */
TEST(lossy_no_false_deaths)
{
	const int n = 20;
	/* UDP only: the simulator's streams never lose, so the TCP fallback
	 * ping would answer every probe the loss breaks (test_detection) */
	struct swim_config cfg;
	swim_config_default(&cfg);
	cfg.disable_tcp_pings = true;
	struct sim *s = converged_cluster(seed(808), n, &cfg);
	REQUIRE(s != NULL);
	sim_set_loss(s, 0.10);
	uint64_t susp0 = total_suspicions(s);
	sim_run_for(s, 5 * 60 * 1000);
	uint64_t susp = total_suspicions(s) - susp0;
	printf("# 10%% loss, 5 min: %" PRIu64 " packets lost, %" PRIu64 " suspicions, %zu deaths\n",
	       sim_stats(s)->packets_lost, susp, deaths_since(s, -1, 0));
	CHECK(susp > 0); /* the loss did bite */
	CHECK_EQ_INT(deaths_since(s, -1, 0), 0);
	sim_set_loss(s, 0);
	sim_run_for(s, 30000);
	CHECK(sim_all_alive(s));
	CHECK_EQ_INT(sim_stats(s)->timer_stuck, 0);
	sim_free(s);
}

/*
 * Regression (found here, fixed in swim.c by letting buddy probes of
 * suspects jump the probe queue).  node-009 is cut off from t=900 to
 * t=3900.  At t=2025 its probe of node-017 fails and it suspects node-017;
 * its "suspect" rumour spends all its retransmissions while nothing gets
 * through, so after the heal nobody, node-017 included, hears of it.  At
 * t=30000 (every member's first periodic push-pull, all in the same
 * millisecond since they started together) node-011 push-pulls with
 * node-009, copies the suspicion as its own accusation and gossips it;
 * node-009 counts that as an independent Lifeguard confirmation, its
 * timeout shrinks below the time already elapsed, and it declared
 * node-017 dead at t=30201, which the whole cluster accepted (16 death
 * events) before node-017 refuted at t=30401.
 */
TEST(isolated_accuser)
{
	const int n = 20;
	struct sim *s = converged_cluster(304, n, NULL);
	REQUIRE(s != NULL);
	int grp[] = { 9 };
	sim_partition(s, grp, 1);
	sim_run_for(s, 3000);
	sim_heal(s);
	sim_run_for(s, 60000);
	for (size_t i = 0; i < sim_event_count(s); i++) {
		const struct sim_event *ev = sim_event_at(s, i);
		if (ev->ev == SWIM_EV_LEAVE && ev->state == SWIM_DEAD)
			printf("# t=%" PRId64 " %s declared %s dead (incarnation %u)\n", ev->t,
			       sim_name(s, ev->observer), sim_name(s, ev->subject), ev->incarnation);
	}
	CHECK_EQ_INT(deaths_since(s, -1, 0), 0);
	sim_free(s);
}

/*
 * Regression (found here, fixed in swim.c): after swim_leave, swim_tick
 * stopped advancing next_probe while swim_next_deadline still reported
 * it, so the deadline stayed in the past and an event loop spun
 * (vigil_timeout_ms() == 0) until the leave was done.  The simulator
 * counts a node asking to be ticked again at the same millisecond 64
 * times in timer_stuck.
 */
TEST(leave_does_not_spin)
{
	struct sim *s = converged_cluster(seed(909), 12, NULL);
	REQUIRE(s != NULL);
	/* it shows when the next probe falls due before the leave is done */
	for (int x = 1; x <= 6; x++) {
		sim_leave(s, x);
		sim_run_for(s, 5000);
		CHECK_EQ_INT(sim_status(s, x), SIM_NODE_DOWN);
	}
	printf("# %" PRIu64 " ms spent ticking in place\n", sim_stats(s)->timer_stuck);
	CHECK_EQ_INT(sim_stats(s)->timer_stuck, 0);
	sim_free(s);
}

/*
 * Regression (was a swim.c issue), 20 members, 10% loss.  At
 * t=221270 node-014's probe of node-011 fails and everyone suspects
 * node-011 (incarnation 1); node-011 refutes with incarnation 2 at
 * t=221603.  The refutation is relayed ~120 times, but by chance node-004
 * and node-016 receive none of it.  Both then buddy-probe node-011 every
 * 2 s with "suspect, incarnation 1", which node-011 ignores as stale
 * (1 < 2) instead of answering with its current alive, so at t=239374
 * node-016's suspicion times out and it declares node-011 dead (undone
 * 630 ms later).  swim.c now answers a stale accusation about itself with
 * its current alive, sent straight to the accuser.
 */
TEST(stale_suspicion_answered)
{
	struct sim *s = converged_cluster(827, 20, NULL);
	REQUIRE(s != NULL);
	sim_set_loss(s, 0.10);
	sim_run_until(s, 241000);
	CHECK_EQ_INT(deaths_since(s, -1, 0), 0);
	sim_free(s);
}

/*
 * Lifeguard's claim (and bench/sim_falsepos's measurement, small): with a
 * few members slow to process what they receive (sim_set_slow), plain SWIM
 * declares healthy members dead, Lifeguard (health multiplier, dynamic
 * suspicion timeouts, buddy probes) far less often.  Same seed, same slow
 * members, both modes.
 */
static size_t healthy_deaths_with_slow_members(bool lifeguard, size_t *slow_deaths)
{
	struct swim_config cfg;
	swim_config_default(&cfg);
	cfg.lifeguard = lifeguard;
	const int n = 40, slow[] = { 3, 11, 22, 35 };
	struct sim *s = converged_cluster(611, n, &cfg);
	if (!s)
		return (size_t)-1;
	int64_t t0 = sim_now(s);
	for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++)
		sim_set_slow(s, slow[i], 20000);
	sim_run_for(s, 120000);
	size_t healthy = deaths_since(s, -1, t0), of_slow = 0;
	for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++)
		of_slow += deaths_since(s, slow[i], t0);
	healthy -= of_slow;
	/* the slowness ends: everyone is alive again */
	for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++)
		sim_set_slow(s, slow[i], 0);
	if (sim_run_until_pred(s, sim_pred_all_alive, NULL, 500, sim_now(s) + 120000) < 0)
		healthy = (size_t)-1;
	sim_free(s);
	*slow_deaths = of_slow;
	return healthy;
}

TEST(slow_members_lifeguard_vs_plain)
{
	size_t slow_plain, slow_lg;
	size_t plain = healthy_deaths_with_slow_members(false, &slow_plain);
	size_t lg = healthy_deaths_with_slow_members(true, &slow_lg);
	printf("# healthy members declared dead: plain %zu, Lifeguard %zu "
	       "(slow members: %zu, %zu)\n", plain, lg, slow_plain, slow_lg);
	REQUIRE(plain != (size_t)-1 && lg != (size_t)-1);
	CHECK(plain >= 10);      /* the slowness does cause false verdicts */
	CHECK(lg * 10 <= plain); /* and Lifeguard prevents most of them */
}

static bool pred_anyone_suspects(struct sim *s, void *ctx)
{
	return sim_any_sees(s, *(const int *)ctx, SWIM_SUSPECT);
}

static uint64_t total_hints(struct sim *s)
{
	return total_stat(s, offsetof(struct swim_stats, unreachable_hints));
}

static bool pred_sent_to_the_dead(struct sim *s, void *ctx)
{
	return sim_stats(s)->packets_cut > *(const uint64_t *)ctx;
}

/*
 * Crash `crashes` members one after the other; for each, the time from the
 * first datagram anybody sent the victim after the crash (the first chance
 * of an ICMP hint) to the first suspicion of it goes into
 * suspicion_after_ms[].  Each victim is declared dead by all, restarted
 * and seen alive again before the next.  Returns false if a phase did not
 * finish in time.
 */
static bool crash_series(struct sim *s, int crashes, int64_t *suspicion_after_ms)
{
	for (int k = 0; k < crashes; k++) {
		int victim = 1 + k;
		int64_t t0 = sim_now(s);
		uint64_t cut0 = sim_stats(s)->packets_cut;
		sim_crash(s, victim);
		int64_t sent = sim_run_until_pred(s, pred_sent_to_the_dead, &cut0, 1, t0 + 30000);
		int64_t t = sim_run_until_pred(s, pred_anyone_suspects, &victim, 1, t0 + 30000);
		struct see w = { victim, SWIM_DEAD };
		if (sent < 0 || t < 0 || sim_run_until_pred(s, pred_all_see, &w, 100, t0 + 60000) < 0)
			return false;
		suspicion_after_ms[k] = t - sent;
		sim_restart(s, victim);
		sim_join(s, victim, 0);
		if (sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, sim_now(s) + 60000) < 0)
			return false;
	}
	return true;
}

/*
 * A crashed process on a live host: datagrams to it come back as "port
 * unreachable".  The member that gets one probes the victim at once (or
 * when its probe under way ends); its ping comes back unreachable too, so
 * it asks the helpers at once, whose pings also bounce, and their nacks
 * settle the probe: the first suspicion comes a few round trips after the
 * first datagram anyone sends the victim, instead of when the round-robin
 * reaches it plus a probe interval.  The same crashes without the ICMP
 * (host gone) wait for both.
 */
TEST(unreachable_hint_probes_at_once)
{
	enum { CRASHES = 6 };
	int n = scaled_n(20, 10);
	int64_t hinted[CRASHES], plain[CRASHES];
	for (int with_hint = 1; with_hint >= 0; with_hint--) {
		struct sim *s = converged_cluster(seed(303), n, NULL);
		REQUIRE(s != NULL);
		sim_set_refuse_when_down(s, with_hint);
		REQUIRE(crash_series(s, CRASHES, with_hint ? hinted : plain));
		if (with_hint)
			CHECK(total_hints(s) >= CRASHES);
		else
			CHECK_EQ_INT(total_hints(s), 0);
		CHECK_EQ_INT(deaths_since(s, 0, 0), 0); /* nobody else accused */
		sim_free(s);
	}
	int64_t sum_hinted = 0, sum_plain = 0;
	int quick = 0;
	for (int k = 0; k < CRASHES; k++) {
		printf("# crash %d: first suspicion %" PRId64 " ms after the first datagram to the "
		       "victim with the hint, %" PRId64 " ms without\n", k, hinted[k], plain[k]);
		/* at worst the member with the hint finishes its probe under way */
		CHECK(hinted[k] <= 1000 + 100);
		quick += hinted[k] <= 100;
		sum_hinted += hinted[k];
		sum_plain += plain[k];
	}
	CHECK(quick * 2 >= CRASHES);
	CHECK(sum_hinted + CRASHES * 500 < sum_plain);
}

static bool pred_all_healthy(struct sim *s, void *ctx)
{
	(void)ctx;
	for (int i = 0; i < sim_node_count(s); i++)
		if (swim_health(sim_swim(s, i)) != 0)
			return false;
	return true;
}

/*
 * A hung member (no ICMP: the process is stopped, not gone) is first
 * suspected within three probe intervals of the hang: the shared schedule
 * (probe_ring.h) gives it one prober each period, so it is probed in the
 * period it hung or the next, and that probe fails a period later.  With
 * private shuffles a member went unprobed for a period with probability
 * ~0.37, for two with ~0.14, and among 40 hangs several waited longer
 * (the SIGSTOP tail of issue 14).  The pause ends at the first suspicion
 * and the member refutes it, so nobody is declared dead.
 */
TEST(hung_member_is_probed_within_two_periods)
{
	enum { HANGS = 40 };
	int n = scaled_n(32, 12);
	struct sim *s = converged_cluster(seed(305), n, NULL);
	REQUIRE(s != NULL);
	sim_set_latency(s, 1, 5);
	int64_t worst = 0, sum = 0;
	int late = 0;
	for (int k = 0; k < HANGS; k++) {
		int victim = 1 + k % (n - 1);
		/* hang at an arbitrary point of the period */
		sim_run_for(s, 37 * k % 1000);
		int64_t t0 = sim_now(s);
		sim_pause(s, victim);
		int64_t t = sim_run_until_pred(s, pred_anyone_suspects, &victim, 1, t0 + 30000);
		REQUIRE(t >= 0);
		sim_resume(s, victim);
		REQUIRE(sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, sim_now(s) + 30000) >= 0);
		/* the resumed member's local health is raised (stall awareness):
		 * its probes that fail take a scaled interval, by design
		 * (Lifeguard); the next hang waits until it is healthy again */
		REQUIRE(sim_run_until_pred(s, pred_all_healthy, NULL, 100, sim_now(s) + 60000) >= 0);
		int64_t after = t - t0;
		sum += after;
		worst = after > worst ? after : worst;
		late += after > 3 * 1000 + 50;
	}
	printf("# %d hangs in %d members: first suspicion after %" PRId64 " ms on average, "
	       "%" PRId64 " ms at worst, %d later than three periods\n",
	       HANGS, n, sum / HANGS, worst, late);
	CHECK_EQ_INT(late, 0);
	CHECK(total_stat(s, offsetof(struct swim_stats, scheduled_probes)) > 0);
	CHECK_EQ_INT(deaths_since(s, 0, 0), 0);
	sim_free(s);
}

/* Hints that name no live member, or come too often, change nothing. */
TEST(unreachable_hint_ignored_unless_useful)
{
	struct sim *s = converged_cluster(seed(304), 5, NULL);
	REQUIRE(s != NULL);
	struct swim *sw = sim_swim(s, 0);
	struct wire_addr stranger = *sim_addr(s, 1);
	stranger.port ^= 1;
	int64_t now = sim_now(s);
	swim_hint_unreachable(sw, &stranger, now);
	swim_hint_unreachable(sw, sim_addr(s, 0), now); /* our own address */
	CHECK_EQ_INT(swim_stats(sw)->unreachable_hints, 0);
	swim_hint_unreachable(sw, sim_addr(s, 2), now);
	CHECK_EQ_INT(swim_stats(sw)->unreachable_hints, 1);
	swim_hint_unreachable(sw, sim_addr(s, 3), now + 10); /* within the interval */
	CHECK_EQ_INT(swim_stats(sw)->unreachable_hints, 1);
	/* node 2 is alive: the early probe is acked and nobody suspects it */
	sim_run_for(s, 10000);
	CHECK(!sim_any_sees(s, 2, SWIM_SUSPECT));
	CHECK(sim_all_alive(s));
	sim_free(s);
}

/*
 * Hints find their member through an address index that must follow the
 * membership: a hint about a dead member's address moves no probe, one
 * about the member once it is back does, and so does one about a member
 * that joined after the index was built and grew it (5 -> 70 members).
 */
TEST(unreachable_hint_follows_membership)
{
	struct sim *s = converged_cluster(seed(306), 5, NULL);
	REQUIRE(s != NULL);
	struct swim *sw = sim_swim(s, 0);
	swim_hint_unreachable(sw, sim_addr(s, 3), sim_now(s)); /* builds the index */
	CHECK_EQ_INT(swim_stats(sw)->unreachable_hints, 1);
	sim_crash(s, 2);
	struct see dead = { 2, SWIM_DEAD };
	REQUIRE(sim_run_until_pred(s, pred_all_see, &dead, 100, sim_now(s) + 60000) >= 0);
	sim_run_for(s, 10000); /* health back to normal: past the one-hint-per-interval limit */
	swim_hint_unreachable(sw, sim_addr(s, 2), sim_now(s));
	CHECK_EQ_INT(swim_stats(sw)->unreachable_hints, 1);
	sim_restart(s, 2);
	sim_join(s, 2, 0);
	REQUIRE(sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, sim_now(s) + 60000) >= 0);
	sim_run_for(s, 2000); /* past the one-hint-per-interval limit */
	swim_hint_unreachable(sw, sim_addr(s, 2), sim_now(s));
	CHECK_EQ_INT(swim_stats(sw)->unreachable_hints, 2);
	for (int i = 5; i < 70; i++) {
		char name[32];
		snprintf(name, sizeof name, "late-%03d", i);
		REQUIRE(sim_add_node(s, name, NULL) == i);
		sim_join(s, i, 0);
	}
	REQUIRE(sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, sim_now(s) + 60000) >= 0);
	sim_run_for(s, 2000);
	swim_hint_unreachable(sw, sim_addr(s, 69), sim_now(s));
	CHECK_EQ_INT(swim_stats(sw)->unreachable_hints, 3);
	sim_free(s);
}

/*
 * Forged "unreachable" reports about live members, 20 a second for 30 s to
 * random members: probes go indirect early and helpers nack early, but a
 * live member's acks still come back, so nobody is declared dead (a probe
 * may fail if both its own ping and every helper's were reported, and the
 * member then refutes the suspicion).
 */
TEST(unreachable_hints_forged_do_no_harm)
{
	int n = 12;
	struct sim *s = converged_cluster(seed(305), n, NULL);
	REQUIRE(s != NULL);
	uint64_t x = 12345;
	int64_t t0 = sim_now(s);
	for (int i = 0; i < 600; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		int at = (int)((x >> 33) % (uint64_t)n), about = (int)((x >> 17) % (uint64_t)n);
		swim_hint_unreachable(sim_swim(s, at), sim_addr(s, about), sim_now(s));
		sim_run_for(s, 50);
	}
	sim_run_for(s, 20000);
	printf("# %" PRIu64 " hints moved a probe, %" PRIu64 " suspicions\n", total_hints(s),
	       total_suspicions(s));
	CHECK(total_hints(s) > 0);
	CHECK_EQ_INT(deaths_since(s, -1, t0), 0);
	CHECK(sim_all_alive(s));
	sim_free(s);
}

/*
 * An idle member sleeps through gossip rounds that have nothing to send
 * (they were 5 of its ~9 wake-ups a second).  News reaching it while it
 * sleeps goes out at once (it waited for the next point of a fixed round
 * grid, half an interval on average at every hop), and its rounds still
 * stay one gossip interval apart.
 */
struct first_out {
	int from;
	uint8_t marker;
	int64_t at;
};

static bool has_marker(const uint8_t *pkt, size_t len, uint8_t marker)
{
	uint8_t run[32];
	memset(run, marker, sizeof run);
	return len >= 100 && memmem(pkt, len, run, sizeof run) != NULL;
}

static void note_first_out(void *ctx, int64_t now, int from, int to, const uint8_t *pkt,
			   size_t len)
{
	struct first_out *f = ctx;
	(void)to;
	if (from == f->from && f->at < 0 && has_marker(pkt, len, f->marker))
		f->at = now;
}

static void note_both(void *ctx, int64_t now, int from, int to, const uint8_t *pkt, size_t len)
{
	struct first_out *f = ctx;
	note_first_out(&f[0], now, from, to, pkt, len);
	note_first_out(&f[1], now, from, to, pkt, len);
}

/* when each member first heard the rumour and first passed it on */
struct relay_times {
	int64_t in[8], out[8];
};

static void note_relay(void *ctx, int64_t now, int from, int to, const uint8_t *pkt, size_t len)
{
	struct relay_times *r = ctx;
	if (!has_marker(pkt, len, 'r') || from >= 8 || to >= 8)
		return;
	if (r->in[to] < 0)
		r->in[to] = now;
	if (r->out[from] < 0)
		r->out[from] = now;
}

TEST(idle_member_sleeps_through_empty_gossip_rounds)
{
	enum { N = 8 };
	struct sim *s = converged_cluster(seed(404), N, NULL);
	REQUIRE(s != NULL);
	sim_run_for(s, 30000); /* the join rumours are spent */
	uint64_t fires0 = sim_stats(s)->timer_fires;
	sim_run_for(s, 10000);
	double per_s = (double)(sim_stats(s)->timer_fires - fires0) / N / 10.0;
	printf("# idle: %.1f wake-ups per member per second\n", per_s);
	/* the probe round, about 1 a second here (acks arrive as packets,
	 * not timers); with every gossip round it was 6 */
	CHECK(per_s < 3);

	/* a user message queued while idle leaves at once; one queued 50 ms
	 * later rides the next round, a full interval after the first */
	uint8_t first[150], second[150];
	memset(first, 'g', sizeof first);
	memset(second, 'h', sizeof second);
	struct first_out f[2] = { { 0, 'g', -1 }, { 0, 'h', -1 } };
	sim_set_latency(s, 1, 1); /* the tap sees a datagram as it arrives */
	sim_run_for(s, 77);
	int64_t t0 = sim_now(s);
	sim_set_packet_tap(s, note_both, f);
	swim_broadcast_user(sim_swim(s, 0), first, sizeof first);
	sim_run_for(s, 50);
	swim_broadcast_user(sim_swim(s, 0), second, sizeof second);
	sim_run_for(s, 1000);
	sim_set_packet_tap(s, NULL, NULL);
	printf("# queued while idle: left after %" PRId64 " ms; the next, queued at +50 ms: %" PRId64
	       " ms\n", f[0].at - t0, f[1].at - t0);
	CHECK(f[0].at >= t0 && f[0].at - t0 <= 1);
	CHECK(f[1].at - t0 >= 200 && f[1].at - t0 <= 200 + 1);

	/* a member hearing news while idle passes it on at once: every
	 * relay leaves within the latency of its arrival */
	sim_run_for(s, 5000); /* both are spent */
	uint8_t news[150]; /* new metadata: an alive rumour everybody relays */
	memset(news, 'r', sizeof news);
	struct relay_times r;
	for (int i = 0; i < N; i++)
		r.in[i] = r.out[i] = -1;
	sim_set_packet_tap(s, note_relay, &r);
	CHECK(swim_set_meta(sim_swim(s, 0), news, sizeof news, sim_now(s)) == 0);
	sim_run_for(s, 1000);
	sim_set_packet_tap(s, NULL, NULL);
	int relays = 0, late = 0;
	for (int i = 1; i < N; i++) {
		if (r.in[i] < 0 || r.out[i] < 0)
			continue;
		relays++;
		if (r.out[i] - r.in[i] > 1) {
			printf("# member %d heard it at %" PRId64 ", passed it on at %" PRId64 "\n", i,
			       r.in[i], r.out[i] - 1);
			late++;
		}
	}
	printf("# %d members passed the news on, %d of them late\n", relays, late);
	CHECK(relays > 0);
	CHECK(late == 0);
	sim_free(s);
}

TEST_MAIN(idle_member_sleeps_through_empty_gossip_rounds, sim_basics, sim_loss_rate, join_100_converges, crash_detected,
	  pause_suspected_then_refuted, frozen_30s_refutes_own_death,
	  isolation_suspected_then_refuted, graceful_leave,
	  partition_heal, return_after_reap, return_before_reap, determinism,
	  lossy_no_false_deaths, isolated_accuser, leave_does_not_spin,
	  stale_suspicion_answered, slow_members_lifeguard_vs_plain,
	  unreachable_hint_probes_at_once, hung_member_is_probed_within_two_periods,
	  unreachable_hint_ignored_unless_useful,
	  unreachable_hint_follows_membership, unreachable_hints_forged_do_no_harm)
