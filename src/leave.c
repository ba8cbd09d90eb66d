/*
 * leave.c — the graceful leave (swim_leave): a `dead` about ourselves,
 * from ourselves, gossiped and also told to every live member directly
 * until it acks.
 */
#include "swim_internal.h"

#include <stdlib.h>

/* One live member told of our leave (swim_leave). */
struct leave_target {
	uint32_t id;
	uint8_t tries;
	bool done;                   /* acked, or given up after LEAVE_TRIES */
	int64_t next;                /* when to send again */
};
#define LEAVE_TRIES 6            /* sends per member, a probe timeout apart */
#define LEAVE_BURST 64           /* sends per tick, so a big cluster is paced */

/* Send our leave to the members due (see swim_leave), LEAVE_BURST at most. */
void leave_step(struct swim *sw, int64_t now)
{
	int sent = 0;
	for (size_t i = 0; i < sw->n_leave_to && sent < LEAVE_BURST; i++) {
		struct leave_target *lt = &sw->leave_to[i];
		if (lt->done || lt->next > now)
			continue;
		if (lt->tries >= LEAVE_TRIES) {
			lt->done = true; /* never answered: dead, or cut off from us */
			sw->leave_pending--;
			continue;
		}
		lt->tries++;
		lt->next = now + sw->cfg.probe_timeout_ms;
		send_ping_with_accuse(sw, member_of(sw, lt->id), sw->leave_seq0 + (uint32_t)i,
				      WIRE_DEAD, sw->self);
		sent++;
	}
}

int64_t leave_next(const struct swim *sw)
{
	int64_t t = NEVER;
	for (size_t i = 0; i < sw->n_leave_to; i++)
		if (!sw->leave_to[i].done && sw->leave_to[i].next < t)
			t = sw->leave_to[i].next;
	return t;
}
bool leave_ack(struct swim *sw, uint32_t seq)
{
	if (!sw->n_leave_to || seq - sw->leave_seq0 >= sw->n_leave_to)
		return false;
	struct leave_target *lt = &sw->leave_to[seq - sw->leave_seq0];
	if (!lt->done) {
		lt->done = true;
		sw->leave_pending--;
		sw->leave_acked++;
	}
	return true;
}

/*
 * A leave is gossiped like any rumour, but gossip spends its few
 * retransmits on random targets, the recently dead among them (memberlist
 * gossips to the dead for 30 s): after four kills a leave could go only to
 * dead ports and still count as sent.  So it is also sent to every member
 * we hold alive or suspect, in a datagram with a ping, again a probe
 * timeout later until that member acks (the ack proves the leave arrived:
 * a packet is handled whole) or LEAVE_TRIES sends went unanswered.  The
 * leave is done when every such member acked or was given up on;
 * swim_leave_reached() then says how many have it.
 */
void swim_leave(struct swim *sw, int64_t now)
{
	sw->clock = now;
	if (sw->leaving)
		return;
	sw->leaving = true;
	struct member *me = sw->self;
	broadcast_accuse(sw, WIRE_DEAD, me, me->incarnation, member_name(me));
	sw->bq.watch_id = sw->bq.last_id;
	size_t peers = sw->n_alive > 0 ? sw->n_alive - 1 : 0; /* not counting us */
	set_state(sw, me, SWIM_LEFT, now);
	sw->leave_to = calloc(peers ? peers : 1, sizeof *sw->leave_to);
	if (sw->leave_to) {
		for (size_t i = 0; i < sw->n_members && sw->n_leave_to < peers; i++)
			if (is_live_peer(sw, member_at(sw, i)))
				sw->leave_to[sw->n_leave_to++] =
					(struct leave_target){ .id = sw->members[i], .next = now };
		sw->leave_pending = sw->n_leave_to;
		sw->leave_seq0 = sw->seq + 1;
		sw->seq += (uint32_t)sw->n_leave_to;
	}
	if (sw->n_alive == 0)
		sw->left_done = true; /* nobody to tell */
	sw->probe_phase = PROBE_IDLE;
	sw->next_gossip = now; /* spread it right away */
	leave_step(sw, now);
}

bool swim_leave_done(const struct swim *sw)
{
	if (!sw->leaving)
		return false;
	if (sw->leave_to) /* told directly: every live member acked or given up on */
		return sw->leave_pending == 0;
	/* out of memory: gossip only, done once the rumour has been sent its last time */
	return sw->left_done || sw->bq.watch_retired || sw->n_alive == 0;
}

int swim_leave_reached(const struct swim *sw)
{
	if (!swim_leave_done(sw) || !sw->leave_to)
		return -1;
	return (int)sw->leave_acked;
}

size_t swim_leave_told(const struct swim *sw)
{
	return sw->n_leave_to;
}
