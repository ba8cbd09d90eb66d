/*
 * identity.c — which claims about a member we believe: how far an
 * incarnation may jump, who may vouch for a bigger jump, and when an
 * alive may move a member to another address (asking the old address
 * first).  docs/SECURITY.md, "Membership identity", says why.
 */
#include "swim_internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * How far ahead of the incarnation we hold a claim about a member may be.
 * A member's incarnation grows by one per refutation, tag change or stall,
 * and an honest claim is at most the member's own current incarnation, so
 * a gap is the number of bumps we missed: a handful while we are in touch,
 * 2^16 is a tag change every 10 s for a week of separation.  A bigger jump
 * is a forgery (one datagram at 2^32-1 would otherwise leave the member
 * nothing to refute with) and is refused.
 *
 * That alone would let a forger climb 2^16 per message and use up the
 * number space with 2^16 datagrams.  So jumps of more than INC_STEP_FREE
 * (rare when honest: we missed that many bumps) also draw on a budget of
 * INC_JUMP_MAX per member per CLIMB_WINDOW_MS, kept for the few members
 * that made one recently (CLIMB_SLOTS; when all are taken, big jumps wait).
 * Climbing to 2^32-1 then takes 2^28 accepted forgeries or 2^16 hours.
 * A member can still bring us a bigger jump in its own words: jump_vouched.
 */
#define INC_JUMP_MAX (1u << 16)
#define INC_STEP_FREE 16u
#define CLIMB_WINDOW_MS (3600 * 1000)
#define CLIMB_SLOTS 64

struct climb {
	const struct member *m;      /* NULL: free */
	int64_t since;               /* start of its window */
	uint32_t used;               /* incarnations climbed by big jumps in it */
};

/* Charge a big jump to m's budget; false if over it (or no slot is free). */
static bool climb_charge(struct swim *sw, const struct member *m, uint32_t jump, int64_t now)
{
	struct climb *slot = NULL, *spare = NULL;
	/* made at the first big jump: most swims never see one */
	if (!sw->climbs && !(sw->climbs = calloc(CLIMB_SLOTS, sizeof *sw->climbs)))
		return false;
	for (int i = 0; i < CLIMB_SLOTS && !slot; i++) {
		struct climb *c = &sw->climbs[i];
		if (c->m == m)
			slot = c;
		else if (!spare && (!c->m || now - c->since >= CLIMB_WINDOW_MS))
			spare = c;
	}
	if (!slot && !spare)
		return false;
	if (!slot || now - slot->since >= CLIMB_WINDOW_MS) {
		slot = slot ? slot : spare;
		*slot = (struct climb){ m, now, 0 };
	}
	if ((uint64_t)slot->used + jump > INC_JUMP_MAX)
		return false;
	slot->used += jump;
	return true;
}

static void climb_forget(struct swim *sw, const struct member *m)
{
	for (int i = 0; sw->climbs && i < CLIMB_SLOTS; i++)
		if (sw->climbs[i].m == m)
			sw->climbs[i].m = NULL;
}

uint32_t inc_after(uint32_t inc)
{
	return inc == UINT32_MAX ? inc : inc + 1;
}

/*
 * A jump past INC_JUMP_MAX is believed only over TCP (a push-pull: not a
 * datagram with a spoofed source, and not a rumour relayed by others):
 *  - the peer's alive about itself: at the very address we dialled, or
 *    at the IP address the connection comes from (how a member that was
 *    away for long comes back; each member takes the jump at its first
 *    push-pull with it, either way);
 *  - in the answer to our join, claims about ourselves: a restarted member
 *    starts from 1 and learns the incarnation of its previous life there,
 *    as in memberlist.
 */
static bool jump_vouched(const struct swim *sw, const struct member *m,
			 const struct wire_addr *alive_addr)
{
	const struct wire_addr *p = sw->pp_peer;
	if (!p)
		return false;
	if (m == sw->self)
		return sw->pp_join;
	if (!alive_addr)
		return false;
	if (!sw->pp_inbound)
		return wire_addr_equal(alive_addr, p);
	return alive_addr->ip_len == p->ip_len && memcmp(alive_addr->ip, p->ip, p->ip_len) == 0;
}

/* Set (peer) or clear (NULL) the push-pull whose state is being merged, for jump_vouched. */
void pp_vouching(struct swim *sw, const struct wire_addr *peer, bool inbound, bool join)
{
	sw->pp_peer = peer;
	sw->pp_inbound = inbound;
	sw->pp_join = join;
}

/*
 * We refused an alive far ahead for m, at the address we hold for it: if
 * that was m's true incarnation (it was away long), only m's own word in a
 * push-pull brings us there, so ask m for it now rather than waiting for
 * the next push-pull between us to happen by chance.  If it was forged, m
 * answers with its real incarnation.  One such push-pull per probe
 * interval, whatever is sent to us.
 */
static void ask_member(struct swim *sw, const struct member *m, int64_t now)
{
	if (m == sw->self || now - sw->last_jump_ask < sw->cfg.probe_interval_ms)
		return;
	sw->last_jump_ask = now;
	struct wire_addr to = member_addr(m);
	start_push_pull(sw, &to, false);
}

bool inc_plausible(struct swim *sw, const struct member *m, uint32_t inc,
		   const struct wire_addr *alive_addr, int64_t now)
{
	uint32_t jump = inc > m->incarnation ? inc - m->incarnation : 0;
	if (jump <= INC_STEP_FREE || jump_vouched(sw, m, alive_addr) ||
	    (jump <= INC_JUMP_MAX && climb_charge(sw, m, jump, now)))
		return true;
	sw->stats.refused_incarnation++;
	logf_(sw, 0, "refused a claim about %s at incarnation %u (we hold %u)",
	      member_name(m), inc, m->incarnation);
	if (alive_addr && member_addr_is(m, alive_addr))
		ask_member(sw, m, now);
	return false;
}

static void move_check_start(struct swim *sw, struct member *m, const struct wire_alive *a,
			     int64_t now);

/*
 * memberlist's "conflicting address" rule: a member we hold alive or
 * suspect never moves.  A member we hold dead or left may: that is how a
 * member restarted on another address comes back.  But a forged death or
 * leave followed by an alive elsewhere would take the member over, so
 * before moving a gone member we ask its old address, by name, whether it
 * still answers (see move_check_start): a member that is in fact alive
 * acks and keeps its address; a restarted one has left nothing there and
 * moves a moment later.
 *
 * Once it has been gone for gossip_to_dead_ms plus a push-pull interval it
 * moves without asking: we gossip to the dead for gossip_to_dead_ms (30 s,
 * memberlist's GossipToTheDeadTime, after which memberlist forgets a dead
 * member and takes it back at any address), and a member falsely said to
 * have left (the left are not gossiped to) learns it at its own next
 * push-pull, so by then a live member has refuted.
 */
bool may_move(struct swim *sw, struct member *m, const struct wire_alive *a, int64_t now)
{
	int64_t wait = sw->cfg.gossip_to_dead_ms;
	if (sw->cfg.push_pull_interval_ms > 0)
		wait += push_pull_interval(sw);
	if (is_gone(m) && (now - m->state_since >= wait || sw->move_checked == m))
		return true;
	if (is_gone(m)) {
		move_check_start(sw, m, a, now);
		return false;
	}
	sw->stats.refused_address++;
	logf_(sw, 2, "conflicting address for %s; ignoring alive", member_name(m));
	return false;
}
/* ------------------------------------------------------------------ */
/* move checks (see may_move)                                          */

#define MOVE_CHECK_PINGS 5       /* lost datagrams must not move a live member */

/* An alive that would move a gone member early, held while we ask its old address. */
struct move_check {
	struct member *m;
	uint32_t seq;                /* of our pings to the old address */
	int pings_left;
	int64_t next_ping, deadline;
	uint32_t incarnation;
	struct wire_addr addr;       /* where the alive says it is now */
	uint8_t vsn[6], vsn_len;
	uint16_t meta_len;
	uint8_t meta[WIRE_META_MAX];
};

static void move_check_ping(struct swim *sw, int64_t now)
{
	struct move_check *mc = sw->move;
	send_ping(sw, mc->m, mc->seq);
	mc->pings_left--;
	mc->next_ping = now + sw->cfg.probe_timeout_ms;
}

/*
 * Ask m's old address, by name, whether m still lives there: a ping now
 * and more a probe timeout apart (MOVE_CHECK_PINGS in all: at 10 % loss
 * each way, all five round trips fail once in 4,000 checks), then a probe
 * timeout for the last ack.  One check at a time, so the work is bounded
 * whatever a forger sends: an alive arriving while another member is
 * being checked is refused, and a restarted member's next alive (its next
 * push-pull) tries again.
 */
static void move_check_start(struct swim *sw, struct member *m, const struct wire_alive *a,
			     int64_t now)
{
	if (sw->move) {
		if (sw->move->m == m && wire_addr_equal(&sw->move->addr, &a->addr) &&
		    a->incarnation <= sw->move->incarnation)
			return; /* the same news again: already being checked */
		sw->stats.refused_address++;
		logf_(sw, 1, "not moving %s now: another move is being checked", member_name(m));
		return;
	}
	struct move_check *mc = malloc(sizeof *mc);
	if (!mc)
		return; /* as if the alive had been lost */
	mc->m = m;
	mc->seq = next_seq(sw);
	mc->pings_left = MOVE_CHECK_PINGS;
	mc->deadline = now + (int64_t)(MOVE_CHECK_PINGS + 1) * sw->cfg.probe_timeout_ms;
	mc->incarnation = a->incarnation;
	mc->addr = a->addr;
	memcpy(mc->vsn, a->vsn, sizeof mc->vsn);
	mc->vsn_len = a->vsn_len;
	mc->meta_len = (uint16_t)a->meta.len; /* <= WIRE_META_MAX: handle_alive checked */
	if (a->meta.len)
		memcpy(mc->meta, a->meta.p, a->meta.len);
	sw->move = mc;
	logf_(sw, 1, "%s claims a new address while gone; asking its old one first",
	      member_name(m));
	move_check_ping(sw, now);
}

static void move_check_end(struct swim *sw)
{
	free(sw->move);
	sw->move = NULL;
}

/* An ack: the old address still answers to the name, so the member stays there. */
bool move_check_ack(struct swim *sw, uint32_t seq)
{
	if (!sw->move || sw->move->seq != seq)
		return false;
	sw->stats.refused_address++;
	logf_(sw, 2, "conflicting address for %s: its old address still answers; ignoring alive",
	      member_name(sw->move->m));
	move_check_end(sw);
	return true;
}

void move_check_tick(struct swim *sw, int64_t now)
{
	struct move_check *mc = sw->move;
	if (!mc)
		return;
	if (now >= mc->deadline) {
		/* no answer: apply the alive as if it had just come, rechecked */
		struct wire_alive a = { mc->incarnation, name_bytes(mc->m), mc->addr,
					{ mc->meta, mc->meta_len }, {0}, mc->vsn_len };
		memcpy(a.vsn, mc->vsn, sizeof a.vsn);
		sw->move_checked = mc->m;
		handle_alive(sw, &a, subject_hash(a.node), now);
		sw->move_checked = NULL;
		move_check_end(sw);
	} else if (mc->pings_left > 0 && now >= mc->next_ping) {
		move_check_ping(sw, now);
	}
}

int64_t move_check_due(const struct swim *sw)
{
	const struct move_check *mc = sw->move;
	if (!mc)
		return NEVER;
	return mc->pings_left > 0 && mc->next_ping < mc->deadline ? mc->next_ping : mc->deadline;
}

void identity_forget(struct swim *sw, const struct member *m)
{
	climb_forget(sw, m);
	if (sw->move && sw->move->m == m)
		move_check_end(sw);
}
