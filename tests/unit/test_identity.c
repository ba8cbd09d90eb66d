/*
 * test_identity.c — forged membership claims against real swim state
 * machines on the simulator (docs/SECURITY.md, "Membership identity").
 *
 * The attacker is not a node of the simulator: it hands forged memberlist
 * messages straight to a node's swim_handle_packet, as a host that can send
 * datagrams to the gossip port (no -encrypt, or holding the key) would.
 * Each attack test failed on the code before the identity rules.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "testlib.h"

#define C 2 /* the victim */

static const struct wire_addr attacker = { { 10, 99, 0, 1 }, 4, 7946 };

/* n nodes, converged; VIGIL_SIM_SEED=k shifts the seed (to soak over many runs). */
static struct sim *cluster(uint64_t seed, int n)
{
	const char *e = getenv("VIGIL_SIM_SEED");
	return sim_new_converged(seed + (e ? strtoull(e, NULL, 0) : 0), n, NULL, 60000);
}

static struct wire_bytes bytes_of(const char *s)
{
	struct wire_bytes b = { (const uint8_t *)s, (uint32_t)strlen(s) };
	return b;
}

static uint32_t inc_of(const struct sim *s, int observer, int subject)
{
	return (uint32_t)sim_view_incarnation(s, observer, sim_name(s, subject));
}

/* One forged message, as a datagram from the attacker, to `node`. */
static void forge(struct sim *s, int node, const struct wire_msg *m)
{
	struct wbuf b;
	wbuf_init(&b);
	if (wire_encode(&b, m) == WIRE_OK && !b.oom)
		swim_handle_packet(sim_swim(s, node), &attacker, b.p, b.len, sim_now(s));
	wbuf_free(&b);
}

static void forge_accuse(struct sim *s, int node, enum wire_type type, int subject,
			 uint32_t inc)
{
	struct wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = type;
	struct wire_accuse *a = type == WIRE_SUSPECT ? &m.u.suspect : &m.u.dead;
	a->incarnation = inc;
	a->node = bytes_of(sim_name(s, subject));
	a->from = bytes_of("node-000");
	forge(s, node, &m);
}

/* A leave: dead "from" the subject itself, at the incarnation node holds. */
static void forge_leave(struct sim *s, int node, int subject)
{
	struct wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = WIRE_DEAD;
	m.u.dead.incarnation = inc_of(s, node, subject);
	m.u.dead.node = m.u.dead.from = bytes_of(sim_name(s, subject));
	forge(s, node, &m);
}

static void forge_alive(struct sim *s, int node, int subject, uint32_t inc,
			const struct wire_addr *addr, const char *meta)
{
	struct wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = WIRE_ALIVE;
	m.u.alive.incarnation = inc;
	m.u.alive.node = bytes_of(sim_name(s, subject));
	m.u.alive.addr = *addr;
	m.u.alive.meta = bytes_of(meta);
	static const uint8_t vsn[6] = { 1, 5, 2, 2, 5, 4 };
	memcpy(m.u.alive.vsn, vsn, 6);
	m.u.alive.vsn_len = 6;
	forge(s, node, &m);
}

static uint64_t stat_sum(struct sim *s, size_t field)
{
	uint64_t c = 0;
	for (int i = 0; i < sim_node_count(s); i++) {
		struct swim *sw = sim_swim(s, i);
		uint64_t v;
		if (!sw)
			continue;
		memcpy(&v, (const char *)swim_stats(sw) + field, sizeof v);
		c += v;
	}
	return c;
}
#define STAT(s, f) stat_sum(s, offsetof(struct swim_stats, f))

/* Every other node holds the victim alive, at its own address, with no tags. */
static bool victim_intact(struct sim *s)
{
	bool ok = true;
	for (int i = 0; i < sim_node_count(s); i++) {
		if (i == C)
			continue;
		const struct swim_member *m = swim_member_find(sim_swim(s, i), sim_name(s, C));
		if (!m || m->state != SWIM_ALIVE || !wire_addr_equal(&m->addr, sim_addr(s, C)) ||
		    m->meta_len != 0) {
			printf("# node %d holds %s %s, %s address, %u bytes of meta, incarnation %u\n",
			       i, sim_name(s, C), m ? (m->state == SWIM_ALIVE ? "alive" : "not alive")
			       : "unknown", m && wire_addr_equal(&m->addr, sim_addr(s, C)) ? "its"
			       : "another", m ? m->meta_len : 0, m ? m->incarnation : 0);
			ok = false;
		}
	}
	return ok;
}

/*
 * The takeover: a forged death, then an alive one incarnation up at the
 * attacker's address, to every member but the victim (so its refutation
 * comes late).  It used to move the victim everywhere; its refutations
 * were then "conflicting address" and it was declared dead.
 */
TEST(forged_death_then_new_address_is_no_takeover)
{
	struct sim *s = cluster(1501, 6);
	REQUIRE(s);
	for (int i = 0; i < sim_node_count(s); i++) {
		if (i == C)
			continue;
		uint32_t inc = inc_of(s, i, C);
		forge_accuse(s, i, WIRE_DEAD, C, inc);
		forge_alive(s, i, C, inc + 1, &attacker, "");
	}
	sim_run_for(s, 20000);
	CHECK(victim_intact(s));
	/* each was refused when the victim answered at its old address */
	CHECK_EQ_INT(STAT(s, refused_address), 5);
	/* a forged leave (dead "from" the victim itself) is no better */
	for (int i = 0; i < sim_node_count(s); i++) {
		if (i == C)
			continue;
		forge_leave(s, i, C);
		forge_alive(s, i, C, inc_of(s, i, C) + 1, &attacker, "");
	}
	/* the left are not gossiped to: the victim learns it at its next push-pull */
	sim_run_for(s, 40000);
	CHECK(victim_intact(s));
	CHECK_EQ_INT(STAT(s, refused_address), 10);
	sim_free(s);
}

/* C's view at node 0: alive at `addr`? */
static bool alive_at(struct sim *s, const struct wire_addr *addr)
{
	const struct swim_member *m = swim_member_find(sim_swim(s, 0), sim_name(s, C));
	return m && m->state == SWIM_ALIVE && wire_addr_equal(&m->addr, addr);
}

/* Crash `node` and wait (up to a minute) until everybody holds it dead. */
static void crash_node(struct sim *s, int node)
{
	sim_crash(s, node);
	int64_t t0 = sim_now(s);
	while (!sim_all_see(s, node, SWIM_DEAD) && sim_now(s) - t0 < 60000)
		sim_run_for(s, 100);
}

static void crash_victim(struct sim *s)
{
	crash_node(s, C);
}

/*
 * A member that really died may come back at another address (here the
 * restarted member's alive is written by hand: the simulator restarts
 * nodes at their old address).  Nothing answers at its old address, so it
 * moves once that has been asked (five pings, 3 s); a member gone for
 * longer than gossip_to_dead_ms plus a push-pull interval moves at once,
 * as memberlist takes back a member it has forgotten.
 */
TEST(restart_at_new_address_after_real_death)
{
	struct sim *s = cluster(1502, 5);
	REQUIRE(s);
	struct swim_config cfg;
	swim_config_default(&cfg);
	crash_victim(s);
	REQUIRE(sim_all_see(s, C, SWIM_DEAD));
	const struct wire_addr moved = { { 10, 0, 0, 200 }, 4, 7946 };
	forge_alive(s, 0, C, inc_of(s, 0, C) + 1, &moved, "");
	CHECK_EQ_INT(sim_view(s, 0, sim_name(s, C)), SWIM_DEAD); /* asking first */
	sim_run_for(s, 2500);
	CHECK_EQ_INT(sim_view(s, 0, sim_name(s, C)), SWIM_DEAD);
	sim_run_for(s, 700);
	CHECK(alive_at(s, &moved));
	sim_free(s);

	s = cluster(1503, 5);
	REQUIRE(s);
	crash_victim(s);
	REQUIRE(sim_all_see(s, C, SWIM_DEAD));
	sim_run_for(s, cfg.gossip_to_dead_ms + cfg.push_pull_interval_ms);
	forge_alive(s, 0, C, inc_of(s, 0, C) + 1, &moved, "");
	CHECK(alive_at(s, &moved));
	sim_free(s);
}

/*
 * One move check at a time, whatever a forger sends: a second member's
 * move during a check is refused (and counted), not queued.
 */
TEST(one_move_check_at_a_time)
{
	struct sim *s = cluster(1508, 5);
	REQUIRE(s);
	crash_node(s, 3);
	crash_victim(s);
	REQUIRE(sim_all_see(s, C, SWIM_DEAD) && sim_all_see(s, 3, SWIM_DEAD));
	const struct wire_addr moved = { { 10, 0, 0, 200 }, 4, 7946 };
	const struct wire_addr moved3 = { { 10, 0, 0, 203 }, 4, 7946 };
	uint64_t refused = STAT(s, refused_address);
	forge_alive(s, 0, C, inc_of(s, 0, C) + 1, &moved, "");
	forge_alive(s, 0, 3, inc_of(s, 0, 3) + 1, &moved3, "");
	CHECK_EQ_INT(STAT(s, refused_address), refused + 1);
	sim_run_for(s, 3200);
	CHECK(alive_at(s, &moved));
	CHECK_EQ_INT(sim_view(s, 0, sim_name(s, 3)), SWIM_DEAD);
	sim_free(s);
}

/* Counts member events that show anyone at the attacker's address. */
static void note_taken(void *ctx, const struct sim_event *ev, const struct swim_member *m)
{
	(void)ev;
	if (wire_addr_equal(&m->addr, &attacker))
		++*(int *)ctx;
}

/*
 * Under 10 % loss no check moves the victim, not even for a while (a
 * takeover would heal: the attacker's address does not answer probes, the
 * victim is declared dead there and moves back when it refutes).  A forged
 * leave, as the left are not gossiped to.  Two things hold it: one of the
 * five pings of a check gets its ack, and the pings carry the leave rumour
 * to the victim (piggybacked gossip), which refutes before the check ends.
 */
TEST(no_takeover_under_loss)
{
	struct sim *s = cluster(1509, 6);
	REQUIRE(s);
	int taken = 0;
	sim_set_member_cb(s, note_taken, &taken);
	sim_set_loss(s, 0.1);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < sim_node_count(s); i++) {
			if (i == C)
				continue;
			forge_leave(s, i, C);
			forge_alive(s, i, C, inc_of(s, i, C) + 1, &attacker, "");
		}
		sim_run_for(s, 40000); /* the victim refutes at its next push-pull */
	}
	sim_set_loss(s, 0);
	sim_run_for(s, 20000);
	CHECK(victim_intact(s));
	CHECK_EQ_INT(taken, 0);
	sim_free(s);
}

/* dead/suspect at 2^32-1 evicted the victim for good (its refutation wrapped to 0). */
TEST(accusation_at_top_incarnation_refused)
{
	struct sim *s = cluster(1503, 5);
	REQUIRE(s);
	for (int i = 0; i < sim_node_count(s); i++)
		forge_accuse(s, i, WIRE_DEAD, C, UINT32_MAX);
	for (int i = 0; i < sim_node_count(s); i++)
		forge_accuse(s, i, WIRE_SUSPECT, C, UINT32_MAX);
	CHECK_EQ_INT(STAT(s, refused_incarnation), 2 * sim_node_count(s));
	sim_run_for(s, 30000);
	CHECK(victim_intact(s));
	CHECK(inc_of(s, C, C) < 10);
	/* and a victim that is dead for real still gets declared dead */
	sim_crash(s, C);
	int64_t t0 = sim_now(s);
	while (!sim_all_see(s, C, SWIM_DEAD) && sim_now(s) - t0 < 60000)
		sim_run_for(s, 100);
	CHECK(sim_all_see(s, C, SWIM_DEAD));
	sim_free(s);
}

/* An alive at 2^32-1 pinned forged tags (the owner could never outbid it). */
TEST(alive_at_top_incarnation_refused)
{
	struct sim *s = cluster(1504, 5);
	REQUIRE(s);
	for (int i = 0; i < sim_node_count(s); i++)
		if (i != C)
			forge_alive(s, i, C, UINT32_MAX, sim_addr(s, C), "role=evil");
	CHECK_EQ_INT(STAT(s, refused_incarnation), sim_node_count(s) - 1);
	sim_run_for(s, 10000);
	CHECK(victim_intact(s));
	sim_free(s);
}

/*
 * A forger climbing in allowed steps: each step under the 2^16 bound, but
 * together they would reach 2^32-1 after 2^16 messages.  Big steps draw
 * on a budget of 2^16 per member per hour, at the victim itself (which
 * would refute each one) and at the others.
 */
TEST(climbing_is_rate_limited)
{
	struct sim *s = cluster(1505, 3);
	REQUIRE(s);
	uint32_t start = inc_of(s, C, C);
	for (int k = 0; k < 200; k++) {
		forge_accuse(s, C, WIRE_SUSPECT, C, inc_of(s, C, C) + 1000);
		forge_alive(s, 0, C, inc_of(s, 0, C) + 1000, sim_addr(s, C), "");
	}
	CHECK(inc_of(s, C, C) <= start + 65536 + 200);
	CHECK(inc_of(s, 0, C) <= start + 65536 + 200);
	CHECK(STAT(s, refused_incarnation) >= 2 * (200 - 66));
	/* a step of 16 or less is ordinary: no budget */
	uint32_t before = inc_of(s, 0, C);
	forge_alive(s, 0, C, before + 16, sim_addr(s, C), "");
	CHECK_EQ_INT(inc_of(s, 0, C), before + 16);
	/* the budget comes back after an hour */
	sim_run_for(s, 3600 * 1000);
	before = inc_of(s, 0, C);
	forge_alive(s, 0, C, before + 1000, sim_addr(s, C), "");
	CHECK_EQ_INT(inc_of(s, 0, C), before + 1000);
	sim_run_for(s, 10000);
	CHECK(sim_all_alive(s));
	sim_free(s);
}

/* ---- one swim on its own, for a join answer we write ourselves ---- */

static void lone_send_stream(void *ctx, const struct wire_addr *to, const uint8_t *msg,
			     size_t len, uint64_t cookie)
{
	(void)to;
	(void)msg;
	(void)len;
	*(uint64_t *)ctx = cookie;
}

/*
 * A member's own incarnation never wraps: here it learns from its join
 * that its previous life reached 2^32-2 (believed: the answer to our own
 * join), refutes at 2^32-1, and then can only tie, never go back to 0
 * (where every other member would ignore it).
 */
TEST(refutation_never_wraps)
{
	struct swim_config cfg;
	swim_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "me");
	cfg.addr = (struct wire_addr){ { 10, 0, 0, 1 }, 4, 7946 };
	uint64_t cookie = 0;
	struct swim_hooks hooks = { .ctx = &cookie, .send_stream = lone_send_stream };
	struct swim *sw = swim_new(&cfg, &hooks, 0);
	REQUIRE(sw);
	const struct wire_addr seed = { { 10, 0, 0, 2 }, 4, 7946 };
	swim_join(sw, &seed, 1, 0);
	REQUIRE(cookie != 0);
	struct wire_node_state_entry e;
	memset(&e, 0, sizeof e);
	e.name = bytes_of("me");
	e.addr = cfg.addr;
	e.incarnation = UINT32_MAX - 1;
	e.state = WIRE_STATE_DEAD;
	/* versions a memberlist peer would send: the push-pull's protocol
	 * check (verifyProtocol) refuses a state without them */
	static const uint8_t vsn[6] = { 1, 5, 2, 2, 5, 4 };
	memcpy(e.vsn, vsn, sizeof vsn);
	e.vsn_len = 6;
	struct wbuf b;
	wbuf_init(&b);
	REQUIRE(wire_encode_push_pull(&b, true, &e, 1, NULL, 0) == WIRE_OK);
	swim_handle_stream_reply(sw, cookie, b.p, b.len, 10);
	wbuf_free(&b);
	CHECK_EQ_INT(swim_self(sw)->incarnation, UINT32_MAX);

	struct wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = WIRE_SUSPECT;
	m.u.suspect.incarnation = UINT32_MAX;
	m.u.suspect.node = bytes_of("me");
	m.u.suspect.from = bytes_of("x");
	wbuf_init(&b);
	REQUIRE(wire_encode(&b, &m) == WIRE_OK);
	swim_handle_packet(sw, &attacker, b.p, b.len, 20);
	wbuf_free(&b);
	CHECK_EQ_INT(swim_self(sw)->incarnation, UINT32_MAX);
	/* a tag change at the top does not wrap either */
	CHECK_EQ_INT(swim_set_meta(sw, (const uint8_t *)"k=v", 3, 30), WIRE_OK);
	CHECK_EQ_INT(swim_self(sw)->incarnation, UINT32_MAX);
	swim_free(sw);
}

/*
 * Raise a member's incarnation by `by`, honestly (tag changes), in bursts
 * of at most 30,000 with gap_ms of virtual time after each.
 */
static void bump_incarnation(struct sim *s, int node, uint32_t by, int64_t gap_ms)
{
	for (uint32_t k = 0; k < by; k++) {
		struct swim *sw = sim_swim(s, node);
		swim_set_meta(sw, (const uint8_t *)(k & 1 ? "a" : ""), k & 1, sim_now(s));
		if (k % 30000 == 29999)
			sim_run_for(s, gap_ms);
	}
	swim_set_meta(sim_swim(s, node), NULL, 0, sim_now(s));
}

/*
 * Genuine big jumps still get through, from the member's own mouth: one
 * partitioned away while its incarnation grew past the bound comes back
 * through the reconnect push-pulls the others open to it.
 */
TEST(long_separation_returns)
{
	struct sim *s = cluster(1506, 5);
	REQUIRE(s);
	int grp[] = { C };
	sim_partition(s, grp, 1);
	int64_t t0 = sim_now(s);
	while (!sim_all_see(s, C, SWIM_DEAD) && sim_now(s) - t0 < 60000)
		sim_run_for(s, 100);
	REQUIRE(sim_all_see(s, C, SWIM_DEAD));
	bump_incarnation(s, C, 70000, 1000);
	sim_run_for(s, 1000);
	sim_heal(s);
	/* the victim's reconnect loop dials one of them within 30 s; asked, the rest follow */
	CHECK(sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, sim_now(s) + 40000) >= 0);
	CHECK(victim_intact(s));
	sim_free(s);
}

/*
 * A restarted member starts from incarnation 1 and learns its previous
 * life's incarnation (here past the jump bound) from its join, as in
 * memberlist.
 */
TEST(restart_learns_previous_incarnation)
{
	struct sim *s = cluster(1507, 5);
	REQUIRE(s);
	/* an hour between bursts: the others follow within their budget */
	bump_incarnation(s, C, 70000, 3600 * 1000);
	sim_run_for(s, 5000);
	CHECK(inc_of(s, 0, C) > 70000);
	sim_crash(s, C);
	int64_t t0 = sim_now(s);
	while (!sim_all_see(s, C, SWIM_DEAD) && sim_now(s) - t0 < 60000)
		sim_run_for(s, 100);
	REQUIRE(sim_all_see(s, C, SWIM_DEAD));
	sim_restart(s, C);
	sim_join(s, C, 0);
	CHECK(sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, sim_now(s) + 60000) >= 0);
	CHECK(inc_of(s, C, C) > 70000);
	sim_free(s);
}

TEST_MAIN(forged_death_then_new_address_is_no_takeover, restart_at_new_address_after_real_death,
	  one_move_check_at_a_time, no_takeover_under_loss,
	  accusation_at_top_incarnation_refused, alive_at_top_incarnation_refused,
	  climbing_is_rate_limited, refutation_never_wraps, long_separation_returns,
	  restart_learns_previous_incarnation)
