/*
 * sim_bench.c — large clusters on the simulator: how fast the simulator
 * runs (messages per second of wall time, one core) and how fast rumours
 * spread (fraction of members informed per protocol period, against the
 * SWIM paper's O(log n) bound).
 *
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Isrc -Iinclude -o build/sim_bench \
 *       bench/sim_bench.c build/libvigil.a -lmsgpackc -lcrypto -ljansson -ldeflate -lm
 *   build/sim_bench [members=10000] [seed=1] [--plain]
 *   GLIBC_TUNABLES=glibc.malloc.hugetlb=1 build/sim_bench 10000
 *       as bench/sim.py runs it: the heap in transparent huge pages
 *
 * --plain turns Lifeguard off (plain SWIM), for comparison.
 *
 * Phases:
 *   1. build: members join in waves through random already-joined members
 *      (one seed for everybody would make that seed answer n push-pulls
 *      of its whole state at once); run until every member sees every
 *      member alive;
 *   2. steady state: probing and gossip, timed: 10 virtual seconds, or
 *      more in steps of 10 until a CPU second has passed (at most 600
 *      virtual s): 100 members do 10 s of work in a few CPU milliseconds,
 *      too close to the CPU clock's resolution to give a rate;
 *   3. an alive rumour: a new member joins through one member; count per
 *      gossip round how many members have seen it join;
 *   4. a dead rumour: a member crashes; from the first "dead" verdict,
 *      count per gossip round how many members hold it dead.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bcast_queue.h"
#include "sim.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* CPU time too: on a shared machine wall-clock rates understate the simulator. */
static double cpu(void)
{
	return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* Resident memory in bytes (Linux), 0 if unknown. */
static double rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = 0;
	fclose(f);
	return (double)res * 4096.0;
}

/*
 * Resident memory in transparent huge pages (Linux), 0 if none or unknown.
 * With 10,000 members the state is 10^8 records on nearly 3 million 4 KB
 * pages, so whether the allocator got huge pages (bench/sim.py asks glibc
 * for them) changes the rate: print it beside the RSS.
 */
static double huge_bytes(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	double kb = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "AnonHugePages: %lf kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024.0;
}

/* memberlist messages handed to swim (a compound packet holds several). */
static uint64_t msgs_in(struct sim *s)
{
	uint64_t c = 0;
	for (int i = 0; i < sim_node_count(s); i++) {
		struct swim *sw = sim_swim(s, i);
		if (sw)
			c += swim_stats(sw)->msgs_in;
	}
	return c;
}

/* Who has heard the rumour being watched (set by the member callback). */
struct watch {
	int subject;
	enum swim_member_event ev;
	int state;          /* -1: any */
	unsigned char *informed;
	int count;
	int64_t first;      /* time of the first matching event, -1 before */
};

static void on_member(void *ctx, const struct sim_event *e, const struct swim_member *m)
{
	struct watch *w = ctx;
	(void)m;
	if (!w->informed || e->subject != w->subject || e->ev != w->ev)
		return;
	if (w->state >= 0 && (int)e->state != w->state)
		return;
	if (w->first < 0)
		w->first = e->t;
	if (!w->informed[e->observer]) {
		w->informed[e->observer] = 1;
		w->count++;
	}
}

struct timing {
	double wall0, cpu0;
	uint64_t pk0, msg0;
	int64_t v0;
};

static void timing_start(struct sim *s, struct timing *t)
{
	t->wall0 = wall();
	t->cpu0 = cpu();
	t->pk0 = sim_stats(s)->packets_delivered;
	t->msg0 = msgs_in(s);
	t->v0 = sim_now(s);
}

static void timing_report(struct sim *s, const struct timing *t, const char *what)
{
	double dt = wall() - t->wall0, dc = cpu() - t->cpu0;
	uint64_t pk = sim_stats(s)->packets_delivered - t->pk0;
	uint64_t msg = msgs_in(s) - t->msg0;
	printf("%-8s %8.1f s virtual in %7.2f s wall (%7.2f s cpu): %10" PRIu64
	       " packets (%.3g/s wall, %.3g/s cpu), %10" PRIu64 " messages (%.3g/s wall, "
	       "%.3g/s cpu)\n", what, (sim_now(s) - t->v0) / 1000.0, dt, dc, pk,
	       dt > 0 ? pk / dt : 0.0, dc > 0 ? pk / dc : 0.0, msg, dt > 0 ? msg / dt : 0.0,
	       dc > 0 ? msg / dc : 0.0);
	fflush(stdout);
}

/*
 * Step in gossip rounds and print the informed fraction of the `alive`
 * members still running, until all know or `max_rounds` pass.
 */
static void spread(struct sim *s, struct watch *w, int alive, int round_ms, int max_rounds,
		   int64_t t0, const char *what)
{
	int n = alive;
	double lg = log2((double)n);
	/*
	 * Push gossip with fanout b per round informs everybody in about
	 * log_{b+1}(n) + ln(n)/b rounds (Pittel); SWIM states O(log n)
	 * protocol periods.
	 */
	int b = 3;
	double pittel = log((double)n) / log(b + 1.0) + log((double)n) / b;
	printf("%s: n=%d, log2(n)=%.1f, expected ~%.1f gossip rounds (fanout %d); "
	       "each member relays it at most %d times\n", what, n, lg, pittel, b,
	       bcast_retransmit_limit(4, (size_t)n));
	int r50 = -1, r99 = -1, r100 = -1;
	for (int r = 0; r <= max_rounds; r++) {
		sim_run_until(s, t0 + (int64_t)r * round_ms);
		double f = (double)w->count / n;
		if (r50 < 0 && f >= 0.5)
			r50 = r;
		if (r99 < 0 && f >= 0.99)
			r99 = r;
		if (r100 < 0 && w->count >= n)
			r100 = r;
		printf("  round %3d (t+%5d ms, period %5.1f): %6d/%d informed (%.4f)\n", r,
		       r * round_ms, r * round_ms / 1000.0, w->count, n, f);
		if (r100 >= 0)
			break;
	}
	printf("%s: 50%% after %d rounds, 99%% after %d, 100%% after %d (log2 n = %.1f)\n\n",
	       what, r50, r99, r100, lg);
	fflush(stdout);
}


int main(int argc, char **argv)
{
	int n = 10000;
	uint64_t seed = 1;
	bool plain = false;
	int pos = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--plain") == 0)
			plain = true;
		else if (pos++ == 0)
			n = atoi(argv[i]);
		else
			seed = strtoull(argv[i], NULL, 0);
	}
	if (n < 4) {
		fprintf(stderr, "usage: %s [members>=4] [seed] [--plain]\n", argv[0]);
		return 2;
	}

	struct sim *s = sim_new(seed);
	if (!s)
		return 1;
	struct swim_config cfg;
	swim_config_default(&cfg);
	cfg.lifeguard = !plain;
	sim_set_default_config(s, &cfg);
	/* 10k members of per-event history would be ~10^8 log entries. */
	sim_record_events(s, false);
	struct watch w = { .subject = -1, .state = -1, .first = -1 };
	sim_set_member_cb(s, on_member, &w);
	printf("sim_bench: %d members, seed %" PRIu64 ", %s\n", n, seed,
	       plain ? "plain SWIM" : "Lifeguard");

	/* 1. build */
	struct timing t;
	timing_start(s, &t);
	double wb = wall();
	for (int i = 0; i <= n; i++) { /* node n joins later, in phase 3 */
		char name[32];
		snprintf(name, sizeof name, "node-%05d", i);
		if (sim_add_node(s, name, NULL) != i) {
			fprintf(stderr, "sim_add_node failed\n");
			return 1;
		}
	}
	sim_crash(s, n); /* not yet started */
	printf("created      %d state machines in %.2f s\n", n, wall() - wb);
	/*
	 * Waves: the joined set doubles every 2 s of virtual time, each
	 * newcomer picking a random joined member as its seed.
	 */
	uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 1;
	int joined = 1;
	while (joined < n) {
		int wave = joined < n - joined ? joined : n - joined;
		for (int i = 0; i < wave; i++) {
			rs ^= rs << 13;
			rs ^= rs >> 7;
			rs ^= rs << 17;
			sim_join(s, joined + i, (int)(rs % (uint64_t)joined));
		}
		joined += wave;
		sim_run_for(s, 2000);
		/*
		 * Every member keeps a record of every other one, so memory
		 * grows as joined^2: show the cost per record to tell early
		 * whether the full size will fit.
		 */
		double rss = rss_bytes(), per = rss / ((double)joined * joined);
		printf("  joined %6d at t=%5.1f s (%.1f s wall), RSS %.2f GB", joined,
		       sim_now(s) / 1000.0, wall() - t.wall0, rss / 1e9);
		if (joined * 8 >= n)
			printf(" = %.0f bytes per membership record: %d members need ~%.1f GB",
			       per, n, per * (double)n * n / 1e9);
		printf("\n");
		fflush(stdout);
	}
	int64_t conv = sim_run_until_pred(s, sim_pred_all_alive, NULL, 1000, sim_now(s) + 3600 * 1000);
	timing_report(s, &t, "build");
	if (conv < 0) {
		printf("did not converge within a virtual hour\n");
		return 1;
	}
	printf("converged at t=%.1f s; RSS %.2f GB = %.0f bytes per membership record (n^2); "
	       "%.2f GB of it in huge pages\n", conv / 1000.0, rss_bytes() / 1e9,
	       rss_bytes() / ((double)n * n), huge_bytes() / 1e9);

	/* 2. steady state */
	timing_start(s, &t);
	do
		sim_run_for(s, 10000);
	while (cpu() - t.cpu0 < 1.0 && sim_now(s) - t.v0 < 600000);
	timing_report(s, &t, "steady");

	/* 3. alive rumour */
	unsigned char *informed = calloc((size_t)n + 1, 1);
	if (!informed)
		return 1;
	w = (struct watch){ .subject = n, .ev = SWIM_EV_JOIN, .state = -1,
			    .informed = informed, .first = -1 };
	sim_restart(s, n);
	informed[n] = 1; /* it knows itself */
	w.count = 1;
	int64_t t0 = sim_now(s);
	sim_join(s, n, n / 2);
	timing_start(s, &t);
	spread(s, &w, n + 1, cfg.gossip_interval_ms, 200, t0, "alive rumour");
	timing_report(s, &t, "alive");

	/* 4. dead rumour */
	const int victim = n / 3;
	memset(informed, 0, (size_t)n + 1);
	w = (struct watch){ .subject = victim, .ev = SWIM_EV_LEAVE, .state = SWIM_DEAD,
			    .informed = informed, .first = -1 };
	int64_t tc = sim_now(s);
	sim_crash(s, victim);
	timing_start(s, &t);
	/* wait for the first verdict, then time the spread from there */
	while (w.first < 0 && sim_now(s) < tc + 600000)
		sim_run_for(s, 100);
	if (w.first < 0) {
		printf("crash never detected\n");
	} else {
		printf("crash detected (first dead verdict) after %.1f s\n",
		       (w.first - tc) / 1000.0);
		spread(s, &w, n, cfg.gossip_interval_ms, 300, w.first, "dead rumour");
	}
	timing_report(s, &t, "dead");

	const struct sim_stats *st = sim_stats(s);
	printf("totals: %" PRIu64 " packets delivered (%" PRIu64 " bytes), %" PRIu64
	       " lost, %" PRIu64 " cut, %" PRIu64 " streams (%" PRIu64 " failed), %" PRIu64
	       " timer fires\n", st->packets_delivered, st->bytes_delivered, st->packets_lost,
	       st->packets_cut, st->streams_opened, st->streams_failed, st->timer_fires);
	free(informed);
	sim_free(s);
	return 0;
}
