/*
 * probe_ring.h — whom a member probes: a schedule every member computes
 * alike, so that in each protocol period every live member is probed by
 * exactly one other.
 *
 * Why.  SWIM's round robin over a private shuffle (memberlist's) leaves it
 * to chance whether anybody probes a given member in a period: with n
 * members each picking one, a member goes unprobed with probability about
 * (1 - 1/n)^n ~ 0.37 per period, so a hung member is sometimes not probed
 * for 4-6 s.  That wait was the tail of vigil's SIGSTOP detection (issue
 * 14: p99 1.16x serf's, the two slowest freezes waited 6.0 and 6.8 s for
 * a first failed probe while every other stage took the same time).
 *
 * How.  Every member sorts the live members (itself included) by a hash of
 * the name that does not depend on who computes it; call the sorted list
 * the ring.  Period r (a clock all members share, divided by the probe
 * interval) has the shift s = 1 + r mod (n - 1), and the member at ring
 * position i probes the member at i + s.  A shift is a bijection without
 * fixed points, so with one view of the membership each member has
 * exactly one prober per period; and s runs through every value in n - 1
 * periods, so each prober still reaches every member in n - 1 periods,
 * the bound SWIM's round robin gives.
 *
 * Where views differ (a join or death still spreading, a clock off by
 * more than a fraction of the interval, members with different probe
 * intervals) the schedule collides here and there, which is what the
 * private shuffle does everywhere; the private shuffle stays the fallback
 * when the scheduled target is not a live peer.  A member that dies
 * leaves a hole until the ring is rebuilt; rebuilds are O(n log n) and at
 * most one per n/64 periods (every period below 64 members), so a big
 * cluster's join storm costs little (the simulator's 10,000 members).
 */
#ifndef VIGIL_PROBE_RING_H
#define VIGIL_PROBE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct swim;
struct member;

struct probe_ring {
	uint32_t *ids;       /* live member ids in ring order (probe_ring.c keyed_cmp) */
	size_t n, cap;
	size_t self_pos;     /* our position in ids */
	bool dirty;          /* a member became live or gone since the build */
	bool built;
	int64_t built_at;    /* `now` of the last build */
};

/* Note that a member became live or gone (set_state calls it). */
static inline void probe_ring_touch(struct probe_ring *r) { r->dirty = true; }

/*
 * The member the schedule assigns us for the period containing `shared_ms`
 * (a clock all members share), or NULL when it is not a live peer (a hole
 * left by a death, a stale id) or the ring cannot be built (memory).
 */
struct member *probe_ring_target(struct swim *sw, int64_t now, int64_t shared_ms);

void probe_ring_free(struct probe_ring *r);

#endif
