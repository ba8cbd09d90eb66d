/*
 * swim.c — SWIM membership with the Lifeguard extensions, I/O-free.
 *
 * One struct swim is one member's view of the cluster.  Everything that
 * happens to it comes in through swim_handle_* and swim_tick with the
 * current time; everything it wants done goes out through swim_hooks.
 * The same code runs on real sockets (vigil.c) and in the simulator (sim.c).
 *
 * The protocol follows HashiCorp memberlist so that Serf nodes understand
 * us: probe one member per interval (round robin over a shuffled list),
 * indirect probes through k members with nacks, suspicion with Lifeguard's
 * confirmation-shortened timeout, incarnation refutation, piggybacked
 * gossip limited to retransmit_mult * log10(n+1) sends per rumour, and
 * push-pull anti-entropy.
 *
 * Differences from memberlist, on purpose:
 *  - dead and left members stay as tombstones for reap_interval (24 h) so a
 *    stale alive cannot resurrect them, but a higher incarnation always
 *    brings a member back (at a new address only if nothing answers to
 *    its name at the old one, see may_move);
 *  - claims far ahead of the incarnation we hold are refused, and no
 *    incarnation ever wraps (docs/SECURITY.md, "Membership identity");
 *  - like Serf's reconnect loop, we periodically push-pull with a random
 *    dead member so that partitions heal at the membership layer;
 *  - outgoing packets are never compressed (we decompress what we get).
 *
 * This file is the state machine: probes, the message handlers, gossip
 * and timers.  What it builds on has files of its own (swim_internal.h
 * lists them): the member store, the broadcast queue, Lifeguard's
 * suspicion and awareness arithmetic, identity checks, packet input,
 * push-pull and the leave.
 */
#include "swim_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_INTERVAL_MS 30000 /* serf's ReconnectInterval */
#define COMPOUND_MAX 255
#define STALL_HEALTH_STEP 1      /* health score added by a stall (plus the refutation's) */

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

void logf_(struct swim *sw, int level, const char *fmt, ...)
{
	if (!sw->hooks.log)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sw->hooks.log(sw->hooks.ctx, level, buf);
}

/* Lifeguard awareness: scale a timeout by (score + 1). */
static int64_t scaled(const struct swim *sw, int ms)
{
	return awareness_scale(&sw->health, ms);
}

/* Evidence about our own health (plain SWIM keeps a score of 0). */
static void health_adjust(struct swim *sw, int delta)
{
	if (sw->cfg.lifeguard && awareness_apply(&sw->health, delta))
		logf_(sw, 0, "local health score now %d", awareness_score(&sw->health));
}

/* Sends per rumour: memberlist's retransmitLimit over every member we hold. */
static int retransmit_limit(const struct swim *sw)
{
	return bcast_retransmit_limit(sw->cfg.retransmit_mult, sw->n_members);
}

/* ------------------------------------------------------------------ */
/* sending                                                             */

static const struct member *member_by_addr(struct swim *sw, const struct wire_addr *to)
{
	/* only used to decide on CRC; a linear scan would be O(n) per packet,
	 * so check the probe target and fall back to "assume modern" */
	struct member *m = sw->probe_target[0] ? find(sw, sw->probe_target) : NULL;
	if (m && member_addr_is(m, to))
		return m;
	return NULL;
}

static void send_raw(struct swim *sw, const struct wire_addr *to, const uint8_t *p, size_t len)
{
	if (!sw->hooks.send_packet)
		return;
	sw->stats.packets_out++;
	sw->stats.bytes_out += len;
	sw->hooks.send_packet(sw->hooks.ctx, to, p, len);
}

/*
 * Send one message to `to`, filling the rest of the datagram with gossip.
 * memberlist adds a CRC envelope for peers that speak protocol 5; every
 * peer we know of does (Serf 0.9, vigil), and older ones are rare enough
 * that we only omit it when we know the peer is older.
 */
static void send_msg(struct swim *sw, const struct wire_addr *to,
		     const uint8_t *msg, size_t len, bool piggyback)
{
	struct wire_bytes msgs[COMPOUND_MAX];
	struct qlink *taken[COMPOUND_MAX];
	size_t n = 0, nb = 0;
	msgs[n].p = msg;
	msgs[n++].len = (uint32_t)len;
	size_t budget = (size_t)sw->cfg.udp_buffer_size;
	budget = budget > len + 2 + 5 ? budget - len - 2 - 5 : 0; /* header + crc */
	if (piggyback && budget > 0) {
		nb = bcast_take(&sw->bq, retransmit_limit(sw), budget, msgs + 1, COMPOUND_MAX - 1,
				taken);
		n += nb;
	}
	wbuf_reset(&sw->pkt);
	const uint8_t *out = msg;
	size_t out_len = len;
	if (n > 1) {
		wire_make_compound(&sw->pkt, msgs, n);
		out = sw->pkt.p;
		out_len = sw->pkt.len;
	}
	sw->stats.msgs_out += n;
	const struct member *peer = member_by_addr(sw, to);
	bool crc = !peer || peer->vsn[1] >= 5;
	if (crc) {
		wbuf_reset(&sw->scratch);
		wire_add_crc(&sw->scratch, out, out_len);
		if (!sw->scratch.oom)
			send_raw(sw, to, sw->scratch.p, sw->scratch.len);
	} else if (!sw->pkt.oom) {
		send_raw(sw, to, out, out_len);
	}
	bcast_release_parked(&sw->bq, taken, nb);
}

static void encode_send(struct swim *sw, const struct wire_addr *to,
			const struct wire_msg *m, bool piggyback)
{
	wbuf_reset(&sw->body);
	if (wire_encode(&sw->body, m) != WIRE_OK || sw->body.oom)
		return;
	/* body may be reused by send_msg's callees: copy pointer now */
	send_msg(sw, to, sw->body.p, sw->body.len, piggyback);
}

/*
 * A rumour was queued.  Gossip rounds with an empty queue are no deadline
 * (swim_next_deadline) and do not run, so an idle member sleeps through
 * them: 5 of the ~9 wake-ups a second of an idle agent, half its CPU.
 * News reaching an idle member goes out at once if its last round was at
 * least an interval ago, and its rounds go on from there: rounds stay an
 * interval apart, as memberlist's ticker keeps them, but a rumour no longer
 * waits for the next point of a fixed grid at every hop (half an interval
 * on average: a dead rumour took ~0.3 s to cross 32 agents, three or four
 * hops, most of it waiting).  Within an interval of the last round it
 * waits for the next one.  `clock` is the latest `now` we were given, so
 * a user message queued between steps goes out at the next step.
 */
static void queued_rumour(struct swim *sw)
{
	if (sw->bq.n == 1 && sw->clock > sw->next_gossip)
		sw->next_gossip = sw->clock;
}

static void encode_broadcast(struct swim *sw, struct member *about, const struct wire_msg *m)
{
	wbuf_reset(&sw->body);
	if (wire_encode(&sw->body, m) != WIRE_OK || sw->body.oom)
		return;
	bcast_queue_add(&sw->bq, about, sw->body.p, sw->body.len);
	queued_rumour(sw);
}

static struct wire_bytes str_bytes(const char *s)
{
	struct wire_bytes b = { (const uint8_t *)s, (uint32_t)strlen(s) };
	return b;
}

static void broadcast_alive(struct swim *sw, struct member *m)
{
	struct wire_msg msg;
	member_fill_alive(m, &msg);
	wbuf_reset(&sw->body);
	if (wire_encode(&sw->body, &msg) != WIRE_OK || sw->body.oom)
		return;
	bcast_queue_alive(&sw->bq, m, sw->body.len);
	queued_rumour(sw);
}

void broadcast_accuse(struct swim *sw, enum wire_type type, struct member *about,
		      uint32_t inc, const char *from)
{
	struct wire_msg msg;
	memset(&msg, 0, sizeof msg);
	msg.type = type;
	struct wire_accuse *a = type == WIRE_SUSPECT ? &msg.u.suspect : &msg.u.dead;
	a->incarnation = inc;
	a->node = name_bytes(about);
	a->from = str_bytes(from);
	encode_broadcast(sw, about, &msg);
}

static void notify(struct swim *sw, enum swim_member_event ev, const struct member *m)
{
	if (!sw->hooks.on_member)
		return;
	member_fill_view(m, &sw->notify_view);
	sw->hooks.on_member(sw->hooks.ctx, ev, &sw->notify_view);
}

/* The suspicion of a suspect member (NULL if we ran out of memory listing it). */
static struct suspect *suspect_of(struct swim *sw, const struct member *m)
{
	for (size_t i = 0; i < sw->n_suspects; i++)
		if (sw->suspects[i].m == m)
			return &sw->suspects[i];
	return NULL;
}

static struct buddy_time *buddy_find(struct swim *sw, const struct member *m)
{
	for (size_t i = 0; i < sw->n_buddies; i++)
		if (sw->buddies[i].m == m)
			return &sw->buddies[i];
	return NULL;
}

static void buddy_forget(struct swim *sw, const struct member *m)
{
	struct buddy_time *b = buddy_find(sw, m);
	if (b)
		*b = sw->buddies[--sw->n_buddies];
}

/* Keep the suspect list in step with member states, so timers and the
 * buddy probes look at the few suspects rather than all members. */
static void track_suspect(struct swim *sw, struct member *m, bool suspect)
{
	bool listed = m->state == SWIM_SUSPECT;
	if (suspect == listed)
		return;
	if (suspect) {
		if (!reserve(&sw->suspects, &sw->cap_suspects, sw->n_suspects + 1,
			     sizeof *sw->suspects))
			return; /* out of memory: this suspicion will not time out */
		struct suspect *sp = &sw->suspects[sw->n_suspects++];
		memset(sp, 0, sizeof *sp);
		sp->m = m;
		struct buddy_time *b = buddy_find(sw, m);
		if (b) {
			sp->last_buddy = b->t;
			buddy_forget(sw, m);
		}
		return;
	}
	struct suspect *sp = suspect_of(sw, m);
	if (!sp)
		return;
	if (sp->last_buddy && reserve(&sw->buddies, &sw->cap_buddies, sw->n_buddies + 1,
				      sizeof *sw->buddies))
		sw->buddies[sw->n_buddies++] = (struct buddy_time){ m, sp->last_buddy };
	*sp = sw->suspects[--sw->n_suspects];
}

void set_state(struct swim *sw, struct member *m, enum swim_state st, int64_t now)
{
	track_suspect(sw, m, st == SWIM_SUSPECT);
	bool was_gone = is_gone(m), now_gone = st == SWIM_DEAD || st == SWIM_LEFT;
	if (was_gone && !now_gone)
		sw->n_alive++;
	else if (!was_gone && now_gone)
		sw->n_alive--;
	if (st != m->state)
		m->state_since = now;
	m->state = st;
	if (was_gone != now_gone) {
		addr_index_update(sw, m);
		probe_ring_touch(&sw->ring);
	}
}

/* ------------------------------------------------------------------ */
/* refutation, alive, suspect, dead                                    */

/* Remember that member `id` answered us or pinged us at `now`. */
static void heard_from(struct swim *sw, uint32_t id, int64_t now)
{
	if (id == NO_ID || member_of(sw, id) == sw->self)
		return;
	sw->acked[sw->n_acked_next].id = id;
	sw->acked[sw->n_acked_next].t = now;
	sw->n_acked_next = (sw->n_acked_next + 1) % RECENT_ACKED;
}

/* Did m answer or ping us less than `window` ms ago? */
static bool heard_within(const struct swim *sw, const struct member *m, int64_t window,
			 int64_t now)
{
	for (int i = 0; i < RECENT_ACKED; i++)
		if (sw->acked[i].t && now - sw->acked[i].t < window &&
		    sw->acked[i].id < sw->n_ids && member_of(sw, sw->acked[i].id) == m)
			return true;
	return false;
}

/* Someone says we are suspect/dead (or alive with other data): outbid them. */
static void refute(struct swim *sw, uint32_t accused_inc, int64_t now)
{
	struct member *me = sw->self;
	uint32_t inc = inc_after(me->incarnation);
	if (accused_inc >= inc)
		inc = inc_after(accused_inc);
	if (inc == accused_inc)
		logf_(sw, 3, "incarnation exhausted: cannot outbid a claim at %u", accused_inc);
	me->incarnation = inc;
	me->state_since = now;
	sw->stats.refutations++;
	health_adjust(sw, 1);
	broadcast_alive(sw, me);
	logf_(sw, 1, "refuting a rumour about ourselves with incarnation %u", inc);
}

/*
 * Someone accuses us at an incarnation we have already refuted.  Their
 * copy of our refutation was lost (it happens under loss), and they will
 * keep suspecting us — and after the timeout declare us dead — because
 * stale accusations are otherwise ignored.  Tell the accuser directly.
 */
static void answer_stale_accusation(struct swim *sw, struct wire_bytes accuser)
{
	char name[WIRE_NAME_MAX + 1];
	bytes_to_name(accuser, name);
	const struct member *a = name[0] ? find(sw, name) : NULL;
	struct wire_addr a_addr;
	if (a && a != sw->self)
		a_addr = member_addr(a);
	const struct wire_addr *to = a && a != sw->self ? &a_addr : sw->cur_from;
	if (!to || sw->leaving)
		return;
	struct wire_msg msg;
	member_fill_alive(sw->self, &msg);
	encode_send(sw, to, &msg, false);
}

/* h: subject_hash(a->node), as for the other two rumour handlers. */
void handle_alive(struct swim *sw, const struct wire_alive *a, uint64_t h, int64_t now)
{
	char name[WIRE_NAME_MAX + 1];
	if (!valid_name(a->node) || a->addr.ip_len == 0 || a->meta.len > WIRE_META_MAX)
		return;
	bytes_to_name(a->node, name);
	if (a->vsn_len >= 3 && (a->vsn[0] == 0 || a->vsn[1] == 0 || a->vsn[0] > a->vsn[1]))
		return;
	struct member *m = find_subject(sw, name, a->node.len, h);
	bool is_self = m == sw->self;
	if (is_self) {
		if (sw->leaving)
			return;
		if (a->incarnation < m->incarnation)
			return;
		if (a->incarnation == m->incarnation &&
		    bytes_eq(a->meta, member_meta(m), m->meta_len))
			return;
		if (!inc_plausible(sw, m, a->incarnation, NULL, now))
			return;
		refute(sw, a->incarnation, now);
		return;
	}
	bool fresh = false;
	if (!m) {
		m = member_add(sw, name);
		if (!m)
			return;
		fresh = true; /* created dead; set_state below counts it alive */
	} else {
		if (a->incarnation <= m->incarnation ||
		    !inc_plausible(sw, m, a->incarnation, &a->addr, now))
			return;
		if (!member_addr_is(m, &a->addr) && !may_move(sw, m, a, now))
			return;
	}
	enum swim_state old = m->state;
	bool meta_changed = !bytes_eq(a->meta, member_meta(m), m->meta_len) ||
			    !member_addr_is(m, &a->addr);
	if (!member_set_addr_meta(m, &a->addr, a->meta.p, a->meta.len))
		return; /* out of memory: as if this alive had been lost */
	m->incarnation = a->incarnation;
	if (a->vsn_len == 6)
		memcpy(m->vsn, a->vsn, 6);
	broadcast_alive(sw, m);
	set_state(sw, m, SWIM_ALIVE, now);
	if (fresh || old == SWIM_DEAD || old == SWIM_LEFT) {
		sw->stats.joins++;
		notify(sw, SWIM_EV_JOIN, m);
	} else if (meta_changed) {
		notify(sw, SWIM_EV_UPDATE, m);
	}
}

/* The shortest suspicion timeout in a cluster of our size (suspicion.h). */
static int64_t suspicion_min_ms(const struct swim *sw)
{
	return suspicion_min_timeout(sw->cfg.suspicion_mult, sw->n_alive, sw->cfg.probe_interval_ms);
}

/*
 * Our own accusation of a member is a confirmation the others count; a
 * confirmation we pass on is one they may already have.  The queue holds
 * one rumour per member, so passing another's on replaced ours -- and with
 * ICMP hints the survivors of a kill all accuse within the same few ms:
 * each queued its own, heard another's first and passed that on instead,
 * nobody's own left its node, and every suspicion got one confirmation of
 * the two it expected (11.4 s instead of 4 s; 1 kill in 7 with a memberlist
 * peer, issue 14 finding 5).  So while our own is queued, another's is
 * counted but not passed on: its accuser gossips it itself.
 */
static void note_own_accusation(struct member *m, struct suspect *sp)
{
	sp->own_accusation = m->rumour == RUMOUR_BCAST ? m->r.bcast->id : 0;
}

static bool own_accusation_queued(const struct member *m, const struct suspect *sp)
{
	return sp->own_accusation && m->rumour == RUMOUR_BCAST &&
	       m->r.bcast->id == sp->own_accusation;
}

void handle_suspect(struct swim *sw, const struct wire_accuse *s, uint64_t h, int64_t now)
{
	char name[WIRE_NAME_MAX + 1], from[WIRE_NAME_MAX + 1];
	if (!valid_name(s->node) || memchr(s->from.p ? s->from.p : (const uint8_t *)"", 0, s->from.len))
		return;
	bytes_to_name(s->node, name);
	bytes_to_name(s->from, from);
	struct member *m = find_subject(sw, name, s->node.len, h);
	if (m == sw->self && s->incarnation < m->incarnation) {
		answer_stale_accusation(sw, s->from);
		return;
	}
	if (!m || s->incarnation < m->incarnation || !inc_plausible(sw, m, s->incarnation, NULL, now))
		return;
	if (m == sw->self) {
		if (!sw->leaving)
			refute(sw, s->incarnation, now);
		return;
	}
	if (m->state == SWIM_SUSPECT) {
		struct suspect *sp = suspect_of(sw, m);
		if (!sp)
			return;
		/* a distinct accuser is a Lifeguard confirmation: pass it on */
		if (!suspicion_confirm(&sp->suspicion, hash_name(from)))
			return;
		bool ours = strcmp(from, member_name(sw->self)) == 0;
		if (ours || !own_accusation_queued(m, sp))
			broadcast_accuse(sw, WIRE_SUSPECT, m, s->incarnation, from);
		if (ours)
			note_own_accusation(m, sp);
		return;
	}
	if (is_gone(m))
		return;
	broadcast_accuse(sw, WIRE_SUSPECT, m, s->incarnation, from);
	m->incarnation = s->incarnation;
	set_state(sw, m, SWIM_SUSPECT, now);
	sw->stats.suspicions++;
	struct suspect *sp = suspect_of(sw, m);
	if (sp) {
		int64_t min_ms = suspicion_min_ms(sw);
		int64_t max_ms = sw->cfg.lifeguard ? min_ms * sw->cfg.suspicion_max_timeout_mult
						   : min_ms;
		suspicion_start(&sp->suspicion, hash_name(from), now, min_ms, max_ms,
				suspicion_confirmations_wanted(sw->cfg.suspicion_mult, sw->n_alive,
							       sw->cfg.lifeguard));
		sp->buddy_from = now;
		sp->own_accusation = 0;
		if (strcmp(from, member_name(sw->self)) == 0)
			note_own_accusation(m, sp);
	}
	logf_(sw, 1, "suspect %s (from %s)", name, from);
}

void handle_dead(struct swim *sw, const struct wire_accuse *d, uint64_t h, int64_t now)
{
	char name[WIRE_NAME_MAX + 1];
	if (!valid_name(d->node) || memchr(d->from.p ? d->from.p : (const uint8_t *)"", 0, d->from.len))
		return;
	bytes_to_name(d->node, name);
	struct member *m = find_subject(sw, name, d->node.len, h);
	if (m == sw->self && d->incarnation < m->incarnation &&
	    !bytes_eq_str(d->from, member_name(m))) {
		answer_stale_accusation(sw, d->from);
		return;
	}
	if (!m || d->incarnation < m->incarnation || is_gone(m) ||
	    !inc_plausible(sw, m, d->incarnation, NULL, now))
		return;
	bool is_leave = bytes_eq_str(d->from, name);
	if (m == sw->self && !sw->leaving) {
		refute(sw, d->incarnation, now);
		return;
	}
	if (!is_leave && m != sw->self && !bytes_eq_str(d->from, member_name(sw->self)) &&
	    heard_within(sw, m, suspicion_min_ms(sw), now)) {
		/*
		 * Direct evidence beats hearsay.  A death is declared at the
		 * earliest a minimum suspicion timeout after the accuser's
		 * suspicion began, and that began after the member stopped
		 * answering the accuser.  The member answered or pinged *us*
		 * more recently than that, so the accuser's view is stale or
		 * partial (a suspicion formed across a partition that expired
		 * just after the heal): we only suspect it, which tells it
		 * (buddy probe) so it refutes, and a member really gone still
		 * dies when that suspicion runs out.
		 */
		struct wire_accuse s = { d->incarnation, d->node, d->from };
		logf_(sw, 1, "%s declared dead, but it answered us lately: suspecting it", name);
		handle_suspect(sw, &s, h, now);
		return;
	}
	char from[WIRE_NAME_MAX + 1];
	bytes_to_name(d->from, from);
	broadcast_accuse(sw, WIRE_DEAD, m, d->incarnation, from);
	m->incarnation = d->incarnation;
	set_state(sw, m, is_leave ? SWIM_LEFT : SWIM_DEAD, now);
	if (!is_leave)
		sw->stats.deaths++;
	logf_(sw, 1, "%s %s", name, is_leave ? "left" : "is dead");
	notify(sw, SWIM_EV_LEAVE, m);
}

/* ------------------------------------------------------------------ */
/* probing                                                             */

static struct member *random_live(struct swim *sw, const char *exclude)
{
	if (sw->n_alive <= 1)
		return NULL;
	/* rejection sampling keeps this O(1) in large, mostly-alive clusters */
	for (int tries = 0; tries < 64; tries++) {
		struct member *m = member_at(sw, rng_below(sw, sw->n_members));
		if (m != sw->self && m->state == SWIM_ALIVE &&
		    (!exclude || strcmp(member_name(m), exclude) != 0))
			return m;
	}
	for (size_t i = 0; i < sw->n_members; i++) {
		struct member *m = member_at(sw, (i + rng_below(sw, sw->n_members)) % sw->n_members);
		if (m != sw->self && m->state == SWIM_ALIVE &&
		    (!exclude || strcmp(member_name(m), exclude) != 0))
			return m;
	}
	return NULL;
}

static void reshuffle(struct swim *sw)
{
	/* Fisher-Yates over every member; gone ones are skipped at probe time */
	sw->probe_n = 0;
	for (size_t i = 0; i < sw->n_members; i++)
		sw->probe_order[sw->probe_n++] = sw->members[i];
	for (size_t i = sw->probe_n; i > 1; i--) {
		size_t j = rng_below(sw, i);
		uint32_t t = sw->probe_order[i - 1];
		sw->probe_order[i - 1] = sw->probe_order[j];
		sw->probe_order[j] = t;
	}
	sw->probe_pos = 0;
}

/* The biggest ack payload we attach (serf's coordinate takes ~120 bytes). */
#define ACK_PAYLOAD_MAX 256

static int64_t clock_us(struct swim *sw, int64_t now)
{
	return sw->hooks.clock_us ? sw->hooks.clock_us(sw->hooks.ctx) : now * 1000;
}

/* The clock all members share, for the probe schedule (probe_ring.h). */
static int64_t shared_clock_ms(struct swim *sw, int64_t now)
{
	return sw->hooks.shared_clock_ms ? sw->hooks.shared_clock_ms(sw->hooks.ctx) : now;
}

/* A ping for `node` that tells the receiver where to send the ack. */
static void fill_ping(const struct swim *sw, struct wire_msg *msg, uint32_t seq,
		      struct wire_bytes node)
{
	memset(msg, 0, sizeof *msg);
	msg->type = WIRE_PING;
	msg->u.ping.seq = seq;
	msg->u.ping.node = node;
	msg->u.ping.source = member_addr(sw->self);
	msg->u.ping.source_node = name_bytes(sw->self);
}

void send_ping(struct swim *sw, const struct member *target, uint32_t seq)
{
	struct wire_msg msg;
	fill_ping(sw, &msg, seq, name_bytes(target));
	struct wire_addr to = member_addr(target);
	encode_send(sw, &to, &msg, true);
}

/*
 * A ping to `target` with a suspect or dead about `about` in the same
 * datagram: its ack proves the accusation arrived too (a packet is handled
 * whole).  Used for the buddy probe (suspect about the target itself) and
 * for a leave (dead about ourselves, from ourselves).
 */
void send_ping_with_accuse(struct swim *sw, const struct member *target, uint32_t seq,
			   enum wire_type type, const struct member *about)
{
	struct wire_msg msg;
	memset(&msg, 0, sizeof msg);
	msg.type = type;
	struct wire_accuse *a = type == WIRE_SUSPECT ? &msg.u.suspect : &msg.u.dead;
	a->incarnation = about->incarnation;
	a->node = name_bytes(about);
	a->from = name_bytes(sw->self);
	struct wbuf two;
	wbuf_init(&two);
	struct wire_msg ping;
	fill_ping(sw, &ping, seq, name_bytes(target));
	wire_encode(&two, &ping);
	size_t ping_len = two.len;
	wire_encode(&two, &msg);
	if (!two.oom) {
		struct wire_bytes parts[2] = { { two.p, (uint32_t)ping_len },
					       { two.p + ping_len, (uint32_t)(two.len - ping_len) } };
		struct wbuf c;
		wbuf_init(&c);
		wire_make_compound(&c, parts, 2);
		if (!c.oom) {
			struct wire_addr to = member_addr(target);
			send_msg(sw, &to, c.p, c.len, false);
		}
		wbuf_free(&c);
	}
	wbuf_free(&two);
}

/*
 * Lifeguard's buddy system only helps if the suspect hears from us soon.
 * Round-robin may not come back to it for n intervals, and a suspicion we
 * formed while cut off ourselves was gossiped into the void (nobody else
 * holds it, and the suspect never heard), so a suspicion may jump the
 * queue -- once, and only while no second member confirms it:
 *  - once: jumping every two intervals (as vigil did) spent every other
 *    probe of a partition's minority side on members already suspected,
 *    members not yet suspected waited, and a 4|2 cut's minority took up to
 *    34 s to give up on the other side;
 *  - unconfirmed: a confirmer's rumour is out there, and its own pings
 *    carry the news;
 *  - a suspicion we formed ourselves waits two intervals (buddy_from):
 *    the suspect has just failed to answer us, while one we heard of from
 *    another member is pinged at once, which is also how a partition's
 *    other members come to confirm it.
 */
static struct member *buddy_due(struct swim *sw, int64_t now)
{
	/* at most every other probe, so the round-robin keeps its pace */
	if (!sw->cfg.lifeguard || sw->last_probe_buddy)
		return NULL;
	struct suspect *best = NULL;
	for (size_t i = 0; i < sw->n_suspects; i++) {
		struct suspect *sp = &sw->suspects[i];
		if (suspicion_shared(&sp->suspicion) || now < sp->buddy_from ||
		    now - sp->last_buddy < 2LL * sw->cfg.probe_interval_ms)
			continue;
		if (!best || sp->last_buddy < best->last_buddy)
			best = sp;
	}
	if (!best)
		return NULL;
	best->buddy_from = INT64_MAX;
	return best->m;
}

/* The member an unreachable hint named, if it is still worth probing. */
static struct member *take_hinted(struct swim *sw)
{
	uint32_t id = sw->hinted;
	sw->hinted = NO_ID;
	if (id == NO_ID)
		return NULL;
	struct member *m = member_of(sw, id);
	return is_live_peer(sw, m) ? m : NULL;
}

static void probe_start(struct swim *sw, int64_t now)
{
	struct member *target = buddy_due(sw, now);
	sw->last_probe_buddy = target != NULL;
	if (!target)
		target = take_hinted(sw);
	if (!target) {
		target = probe_ring_target(sw, now, shared_clock_ms(sw, now));
		sw->stats.scheduled_probes += target != NULL;
	}
	for (size_t scanned = 0; !target && scanned <= sw->probe_n; scanned++) {
		if (sw->probe_pos >= sw->probe_n)
			reshuffle(sw);
		if (sw->probe_n == 0)
			break;
		struct member *m = member_of(sw, sw->probe_order[sw->probe_pos++]);
		if (is_live_peer(sw, m)) {
			target = m;
			break;
		}
	}
	sw->next_probe = now + scaled(sw, sw->cfg.probe_interval_ms);
	if (!target)
		return;
	sw->stats.probes++;
	snprintf(sw->probe_target, sizeof sw->probe_target, "%s", member_name(target));
	sw->probe_seq = next_seq(sw);
	sw->probe_start = now;
	/* not scaled by local health, as memberlist: waiting longer does not
	 * get UDP through; the scaled interval gives the indirect probes the
	 * extra time instead */
	sw->probe_ack_deadline = now + sw->cfg.probe_timeout_ms;
	sw->probe_end = sw->next_probe;
	sw->probe_expected_nacks = 0;
	sw->probe_nacks = 0;
	sw->probe_unreachable = false;
	sw->probe_phase = PROBE_DIRECT;
	sw->probe_sent_us = clock_us(sw, now);
	if (target->state == SWIM_SUSPECT && sw->cfg.lifeguard) {
		struct suspect *sp = suspect_of(sw, target);
		if (sp)
			sp->last_buddy = now;
		/* Lifeguard buddy system: tell a suspect it is suspected, so it
		 * can refute at once instead of waiting for the rumour. */
		send_ping_with_accuse(sw, target, sw->probe_seq, WIRE_SUSPECT, target);
		return;
	}
	send_ping(sw, target, sw->probe_seq);
}

static void probe_succeeded(struct swim *sw, int64_t now)
{
	sw->stats.acks++;
	health_adjust(sw, -1);
	sw->probe_phase = PROBE_IDLE;
	heard_from(sw, find_id(sw, sw->probe_target), now);
	/*
	 * Local health stretches a probe that goes unanswered (more time for
	 * indirect acks and nacks), not the pace of probes that are answered:
	 * memberlist's probeNode returns at the ack and the next tick of its
	 * fixed ProbeInterval ticker starts the next one.  Keeping the scaled
	 * interval after an ack made a member with a high score (the minority
	 * side of a partition: most helpers there cannot nack) probe every
	 * 5-8 s and take 35-60 s to give up on the other side.
	 */
	int64_t next = sw->probe_start + sw->cfg.probe_interval_ms;
	if (next < now)
		next = now;
	if (next < sw->next_probe)
		sw->next_probe = next;
}

/*
 * memberlist's TCP fallback: with the indirect probes, ping the target over
 * a stream (same ping, same seq; memberlist and serf answer it, and so does
 * swim_handle_stream).  A member whose UDP is lossy or filtered but that
 * answers over TCP is not suspected: memberlist logs "network may be
 * misconfigured" and counts the probe as answered.  Skipped for members
 * older than protocol 3 (memberlist's rule) and with disable_tcp_pings.
 */
static void probe_tcp_ping(struct swim *sw, const struct member *target)
{
	/* half the stream slots at most: a ping to a vanished host holds
	 * its slot for the whole stream timeout, and push-pulls need them */
	if (sw->cfg.disable_tcp_pings || !sw->hooks.send_stream ||
	    sw->n_streams >= MAX_PENDING_STREAMS / 2 || target->vsn[1] < 3)
		return;
	struct wire_msg ping;
	fill_ping(sw, &ping, sw->probe_seq, name_bytes(target));
	struct wbuf out;
	wbuf_init(&out);
	if (wire_encode(&out, &ping) == WIRE_OK && !out.oom) {
		struct pending_stream *ps = &sw->streams[sw->n_streams++];
		memset(ps, 0, sizeof *ps);
		ps->cookie = ++sw->next_cookie;
		ps->ping = true;
		ps->ping_seq = sw->probe_seq;
		ps->to = member_addr(target);
		sw->stats.tcp_pings++;
		sw->hooks.send_stream(sw->hooks.ctx, &ps->to, out.p, out.len, ps->cookie);
	}
	wbuf_free(&out);
}

/* The answer to probe_tcp_ping (msg NULL: the stream failed). */
void tcp_ping_reply(struct swim *sw, const struct pending_stream *ps,
		    const uint8_t *msg, size_t len, int64_t now)
{
	struct wire_msg m;
	if (!msg || len == 0 || msg[0] != WIRE_ACK || wire_decode(msg, len, &m) != WIRE_OK ||
	    m.u.ack.seq != ps->ping_seq)
		return;
	if (sw->probe_phase == PROBE_IDLE || ps->ping_seq != sw->probe_seq)
		return; /* too late: the probe already has its verdict */
	sw->stats.tcp_fallback_acks++;
	logf_(sw, 2, "%s answered over TCP but not over UDP; network may be misconfigured",
	      sw->probe_target);
	probe_succeeded(sw, now);
}

static void probe_go_indirect(struct swim *sw, int64_t now)
{
	struct member *target = find(sw, sw->probe_target);
	sw->probe_phase = PROBE_INDIRECT;
	if (!target || is_gone(target))
		return;
	/* pick up to k distinct live members other than us and the target */
	struct member *picked[16];
	int k = sw->cfg.indirect_checks > 16 ? 16 : sw->cfg.indirect_checks, n = 0;
	for (int tries = 0; n < k && tries < k * 8; tries++) {
		struct member *m = random_live(sw, member_name(target));
		if (!m)
			break;
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= picked[i] == m;
		if (!dup)
			picked[n++] = m;
	}
	for (int i = 0; i < n; i++) {
		struct wire_msg msg;
		memset(&msg, 0, sizeof msg);
		msg.type = WIRE_INDIRECT_PING;
		msg.u.indirect.seq = sw->probe_seq;
		msg.u.indirect.target = member_addr(target);
		msg.u.indirect.node = name_bytes(target);
		/* nacks exist from protocol 4 on */
		msg.u.indirect.nack = picked[i]->vsn[1] >= 4;
		msg.u.indirect.source = member_addr(sw->self);
		msg.u.indirect.source_node = name_bytes(sw->self);
		if (msg.u.indirect.nack)
			sw->probe_expected_nacks++;
		struct wire_addr to = member_addr(picked[i]);
		encode_send(sw, &to, &msg, true);
	}
	probe_tcp_ping(sw, target);
	(void)now;
}

static void probe_failed(struct swim *sw, int64_t now)
{
	sw->probe_phase = PROBE_IDLE;
	sw->stats.probe_failures++;
	/*
	 * Lifeguard: if the helpers we asked did not even nack, the problem
	 * is more likely on our side; raise our own health score.
	 */
	int delta = 1;
	if (sw->probe_expected_nacks > 0)
		delta = sw->probe_nacks > 0 ? 0 : sw->probe_expected_nacks;
	health_adjust(sw, delta);
	struct member *target = find(sw, sw->probe_target);
	if (!target || is_gone(target))
		return;
	logf_(sw, 1, "probe of %s failed (%d of %d nacks)", member_name(target), sw->probe_nacks,
	      sw->probe_expected_nacks);
	if (now < sw->stall_grace_until)
		return; /* just resumed from a stall (swim_notice_stall) */
	struct wire_accuse s = { target->incarnation, name_bytes(target),
				 name_bytes(sw->self) };
	handle_suspect(sw, &s, subject_hash(s.node), now);
	/* it has just failed to answer us: see buddy_due */
	struct suspect *sp = target->state == SWIM_SUSPECT ? suspect_of(sw, target) : NULL;
	if (sp && sp->suspicion.start == now)
		sp->buddy_from = now + 2LL * sw->cfg.probe_interval_ms;
}

/* ------------------------------------------------------------------ */
/* message handlers                                                    */

static void reply_addr(const struct wire_addr *src, const struct wire_addr *from,
		       struct wire_addr *out)
{
	*out = src->ip_len && src->port ? *src : *from;
}

void handle_ping(struct swim *sw, const struct wire_ping *p, const struct wire_addr *from,
		 int64_t now)
{
	if (p->node.len && !bytes_eq_str(p->node, member_name(sw->self)))
		return; /* meant for someone who used to live at this address */
	if (valid_name(p->source_node)) {
		char src[WIRE_NAME_MAX + 1];
		bytes_to_name(p->source_node, src);
		heard_from(sw, find_id(sw, src), now);
	}
	struct wire_msg ack;
	memset(&ack, 0, sizeof ack);
	ack.type = WIRE_ACK;
	ack.u.ack.seq = p->seq;
	uint8_t payload[ACK_PAYLOAD_MAX];
	if (sw->hooks.ack_payload) {
		/* none stays a nil Payload, as memberlist writes it */
		size_t n = sw->hooks.ack_payload(sw->hooks.ctx, payload, sizeof payload);
		if (n)
			ack.u.ack.payload = (struct wire_bytes){ payload, (uint32_t)n };
	}
	struct wire_addr to;
	reply_addr(&p->source, from, &to);
	/*
	 * Gossip rides on the ack too, as memberlist's sendMsg does for every
	 * packet: a prober is a member that surely hears us.  With most gossip
	 * targets unreachable (a partition's minority side), acks were the
	 * path that carried a `dead` to the others on our side in time.
	 */
	encode_send(sw, &to, &ack, true);
}

void handle_indirect(struct swim *sw, const struct wire_indirect_ping *ip,
		     const struct wire_addr *from, int64_t now)
{
	if (ip->target.ip_len == 0)
		return;
	if (sw->n_relays == MAX_RELAYS) {
		/* drop the oldest: a flood of requests must not grow memory */
		memmove(sw->relays, sw->relays + 1, (MAX_RELAYS - 1) * sizeof sw->relays[0]);
		sw->n_relays--;
	}
	if (!reserve(&sw->relays, &sw->cap_relays, sw->n_relays + 1, sizeof *sw->relays))
		return; /* out of memory: as if the request had been lost */
	struct relay *r = &sw->relays[sw->n_relays++];
	memset(r, 0, sizeof *r);
	r->local_seq = next_seq(sw);
	r->orig_seq = ip->seq;
	reply_addr(&ip->source, from, &r->requester);
	r->want_nack = ip->nack;
	r->target = ip->target;
	/*
	 * The requester sent us this after its own probe timeout and gives up
	 * one probe interval after its ping, i.e. about one probe timeout from
	 * now.  A nack sent only after a full timeout of ours arrives after it
	 * stopped counting, and Lifeguard would read every helper's nack as
	 * missing and blame the requester's own health.  Answer at 80%.
	 */
	r->nack_at = now + sw->cfg.probe_timeout_ms * 4 / 5;
	r->expire_at = now + sw->cfg.probe_interval_ms * 2;
	struct wire_msg msg;
	fill_ping(sw, &msg, r->local_seq, ip->node);
	encode_send(sw, &ip->target, &msg, false);
}

void handle_ack(struct swim *sw, const struct wire_ack *a, int64_t now)
{
	uint32_t seq = a->seq;
	if (sw->probe_phase != PROBE_IDLE && seq == sw->probe_seq) {
		/* memberlist reports the RTT of direct acks only: an indirect
		 * one measures the helper's path too */
		if (sw->probe_phase == PROBE_DIRECT && sw->hooks.ping_complete)
			sw->hooks.ping_complete(sw->hooks.ctx, sw->probe_target,
						clock_us(sw, now) - sw->probe_sent_us,
						a->payload.p, a->payload.len);
		probe_succeeded(sw, now);
		return;
	}
	if (leave_ack(sw, seq))
		return;
	for (size_t i = 0; i < sw->n_relays; i++) {
		struct relay *r = &sw->relays[i];
		if (r->local_seq != seq)
			continue;
		struct wire_msg ack;
		memset(&ack, 0, sizeof ack);
		ack.type = WIRE_ACK;
		ack.u.ack.seq = r->orig_seq;
		struct wire_addr to = r->requester;
		sw->relays[i] = sw->relays[--sw->n_relays];
		encode_send(sw, &to, &ack, false);
		return;
	}
	move_check_ack(sw, seq); /* our own seq: no probe or relay has it */
}

/*
 * The probe has its verdict before probe_end when the target's own port
 * said "unreachable" and every helper we asked has nacked (could not reach
 * it either): waiting out the interval would only delay the suspicion.
 */
static bool probe_settled_unreachable(const struct swim *sw)
{
	return sw->probe_phase == PROBE_INDIRECT && sw->probe_unreachable &&
	       sw->probe_expected_nacks > 0 && sw->probe_nacks >= sw->probe_expected_nacks;
}

void handle_nack(struct swim *sw, uint32_t seq, int64_t now)
{
	if (sw->probe_phase == PROBE_INDIRECT && seq == sw->probe_seq) {
		sw->probe_nacks++;
		sw->stats.nacks++;
		if (probe_settled_unreachable(sw))
			probe_failed(sw, now);
	}
}

/* ------------------------------------------------------------------ */
/* gossip                                                              */

/*
 * memberlist picks gossip targets uniformly among members not long dead, so
 * suspects count as much as live members.  On a partition's minority side
 * nearly every member is a suspect across the cut: with 4 of 5 peers there,
 * a broadcast's few retransmissions missed the one reachable peer about a
 * third of the time, and suspicions there ran to their maximum for want of
 * the confirmation that peer had sent (4|2 cut: the minority took 39 s).
 * So every round that picked no member we hold alive swaps one in, when
 * there is one, and live targets get the packets first (a packet's
 * broadcasts are the least-sent ones).  Large healthy clusters never get
 * here; suspects and the recently dead still get the rest of the slots.
 */
static void ensure_live_gossip_target(struct swim *sw, struct member **picked, int *n, int k)
{
	if (k <= 0)
		return;
	for (int i = 0; i < *n; i++) {
		if (picked[i]->state == SWIM_ALIVE) {
			struct member *t = picked[0];
			picked[0] = picked[i];
			picked[i] = t;
			return;
		}
	}
	size_t total = sw->n_members, start = total ? rng_below(sw, total) : 0;
	for (size_t j = 0; j < total; j++) {
		struct member *m = member_at(sw, (start + j) % total);
		if (m == sw->self || m->state != SWIM_ALIVE)
			continue;
		if (*n == 0) {
			picked[(*n)++] = m;
		} else {
			if (*n < k)
				picked[(*n)++] = picked[0];
			picked[0] = m;
		}
		return;
	}
}

static void gossip(struct swim *sw, int64_t now)
{
	if (sw->bq.n == 0 || sw->n_members < 2)
		return;
	struct member *picked[16];
	int k = sw->cfg.gossip_nodes > 16 ? 16 : sw->cfg.gossip_nodes, n = 0;
	for (int tries = 0; n < k && tries < k * 8; tries++) {
		struct member *m = member_at(sw, rng_below(sw, sw->n_members));
		if (m == sw->self)
			continue;
		if (is_gone(m) && now - m->state_since > sw->cfg.gossip_to_dead_ms)
			continue;
		if (m->state == SWIM_LEFT)
			continue;
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= picked[i] == m;
		if (!dup)
			picked[n++] = m;
	}
	ensure_live_gossip_target(sw, picked, &n, k);
	for (int i = 0; i < n && sw->bq.n; i++) {
		struct wire_bytes msgs[COMPOUND_MAX];
		struct qlink *taken[COMPOUND_MAX];
		size_t budget = (size_t)sw->cfg.udp_buffer_size - 2 - 5;
		size_t cnt = bcast_take(&sw->bq, retransmit_limit(sw), budget, msgs, COMPOUND_MAX,
					taken);
		if (cnt == 0)
			break;
		wbuf_reset(&sw->pkt);
		if (cnt == 1)
			wbuf_append(&sw->pkt, msgs[0].p, msgs[0].len);
		else
			wire_make_compound(&sw->pkt, msgs, cnt);
		wbuf_reset(&sw->scratch);
		bool crc = picked[i]->vsn[1] >= 5 || picked[i]->vsn[1] == 0;
		if (crc)
			wire_add_crc(&sw->scratch, sw->pkt.p, sw->pkt.len);
		const struct wbuf *w = crc ? &sw->scratch : &sw->pkt;
		sw->stats.msgs_out += cnt;
		if (!w->oom) {
			struct wire_addr to = member_addr(picked[i]);
			send_raw(sw, &to, w->p, w->len);
		}
		bcast_release_parked(&sw->bq, taken, cnt);
	}
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

static void run_relays(struct swim *sw, int64_t now)
{
	for (size_t i = 0; i < sw->n_relays;) {
		struct relay *r = &sw->relays[i];
		if (r->want_nack && !r->nack_sent && now >= r->nack_at) {
			struct wire_msg nack;
			memset(&nack, 0, sizeof nack);
			nack.type = WIRE_NACK;
			nack.u.nack.seq = r->orig_seq;
			r->nack_sent = true;
			encode_send(sw, &r->requester, &nack, false);
		}
		if (now >= r->expire_at) {
			sw->relays[i] = sw->relays[--sw->n_relays];
			continue;
		}
		i++;
	}
}

/* When a suspicion of ours expires (Lifeguard: moved by confirmations). */
static int64_t suspicion_due(const struct suspect *sp)
{
	return sp->suspicion.deadline;
}

static void run_suspicions(struct swim *sw, int64_t now)
{
	/* handle_dead removes the member from the list: walk backwards */
	for (size_t i = sw->n_suspects; i-- > 0;) {
		if (i >= sw->n_suspects)
			continue;
		struct member *m = sw->suspects[i].m;
		if (now < suspicion_due(&sw->suspects[i]))
			continue;
		struct wire_accuse d = { m->incarnation, name_bytes(m),
					 name_bytes(sw->self) };
		logf_(sw, 1, "marking %s dead: suspicion timed out", member_name(m));
		handle_dead(sw, &d, subject_hash(d.node), now);
	}
}

static void member_free(struct swim *sw, uint32_t id)
{
	struct member *m = member_of(sw, id);
	bcast_queue_drop(&sw->bq, m);
	buddy_forget(sw, m);
	identity_forget(sw, m);
	if (sw->hinted == id)
		sw->hinted = NO_ID;
	for (int i = 0; i < RECENT_ACKED; i++)
		if (sw->acked[i].id == id)
			sw->acked[i].t = 0; /* the id will name another member */
	id_free(sw, id);
}

static void reap(struct swim *sw, int64_t now)
{
	bool any = false;
	for (size_t i = 0; i < sw->n_members;) {
		uint32_t id = sw->members[i];
		struct member *m = member_of(sw, id);
		if (m != sw->self && is_gone(m) && now - m->state_since >= sw->cfg.reap_interval_ms) {
			notify(sw, SWIM_EV_REAP, m);
			index_del(sw, id);
			sw->members[i] = sw->members[--sw->n_members];
			member_free(sw, id);
			any = true;
			continue;
		}
		i++;
	}
	if (any)
		reshuffle(sw);
}

/* Serf's reconnect: occasionally try a dead member so partitions heal. */
static void reconnect(struct swim *sw)
{
	size_t dead = 0;
	for (size_t i = 0; i < sw->n_members; i++)
		dead += member_at(sw, i)->state == SWIM_DEAD;
	if (dead == 0)
		return;
	double prob = (double)dead / (double)(sw->n_alive ? sw->n_alive : 1);
	if ((double)(rng_next(sw) % 1000000) / 1e6 > prob)
		return;
	size_t pick = rng_below(sw, dead);
	for (size_t i = 0; i < sw->n_members; i++) {
		struct member *m = member_at(sw, i);
		if (m->state != SWIM_DEAD)
			continue;
		if (pick-- == 0) {
			struct wire_addr to = member_addr(m);
			start_push_pull(sw, &to, false);
			return;
		}
	}
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int64_t swim_next_deadline(const struct swim *sw)
{
	/* rounds with nothing to gossip are slept through (queued_rumour) */
	int64_t t = sw->bq.n ? min64(sw->next_probe, sw->next_gossip) : sw->next_probe;
	t = min64(t, sw->next_push_pull);
	t = min64(t, sw->next_reconnect);
	t = min64(t, sw->next_reap);
	t = min64(t, move_check_due(sw));
	if (sw->probe_phase == PROBE_DIRECT)
		t = min64(t, sw->probe_ack_deadline);
	if (sw->probe_phase != PROBE_IDLE)
		t = min64(t, sw->probe_end);
	for (size_t i = 0; i < sw->n_relays; i++) {
		const struct relay *r = &sw->relays[i];
		t = min64(t, r->expire_at);
		if (r->want_nack && !r->nack_sent)
			t = min64(t, r->nack_at);
	}
	for (size_t i = 0; i < sw->n_suspects; i++)
		t = min64(t, suspicion_due(&sw->suspects[i]));
	if (sw->leave_pending)
		t = min64(t, leave_next(sw));
	return t;
}

/* Nack at once the indirect pings we relayed to `to`: it cannot answer. */
static void nack_relays_to(struct swim *sw, const struct wire_addr *to, int64_t now)
{
	for (size_t i = 0; i < sw->n_relays; i++) {
		struct relay *r = &sw->relays[i];
		if (r->want_nack && !r->nack_sent && wire_addr_equal(&r->target, to))
			r->nack_at = now; /* run_relays sends it */
	}
	run_relays(sw, now);
}

void swim_hint_unreachable(struct swim *sw, const struct wire_addr *to, int64_t now)
{
	sw->clock = now;
	/*
	 * Our own probe's ping came back unreachable: ask the helpers now
	 * rather than after the probe timeout, and let their nacks settle it
	 * (probe_settled_unreachable).  Relayed pings: nack now.
	 */
	if (sw->probe_phase != PROBE_IDLE) {
		struct member *t = find(sw, sw->probe_target);
		if (t && member_addr_is(t, to)) {
			sw->probe_unreachable = true;
			if (sw->probe_phase == PROBE_DIRECT)
				probe_go_indirect(sw, now);
			if (probe_settled_unreachable(sw))
				probe_failed(sw, now);
			return;
		}
	}
	if (sw->n_relays)
		nack_relays_to(sw, to, now);
	if (sw->leaving || sw->hinted != NO_ID ||
	    now - sw->last_hint_probe < scaled(sw, sw->cfg.probe_interval_ms))
		return;
	uint32_t id = find_live_at(sw, to);
	struct member *m = id == NO_ID ? NULL : member_of(sw, id);
	if (!m || (sw->probe_phase != PROBE_IDLE && bytes_eq_str(name_bytes(m), sw->probe_target)))
		return; /* nobody we probe, or being probed already */
	sw->stats.unreachable_hints++;
	sw->last_hint_probe = now;
	sw->hinted = id;
	logf_(sw, 1, "%s is unreachable (ICMP): probing it now", member_name(m));
	/* The probe under way keeps its time; an idle one starts at once. */
	if (sw->probe_phase == PROBE_IDLE && sw->next_probe > now)
		sw->next_probe = now;
}

void swim_tick(struct swim *sw, int64_t now)
{
	sw->clock = now;
	if (sw->leave_pending)
		leave_step(sw, now);
	if (sw->probe_phase == PROBE_DIRECT && now >= sw->probe_ack_deadline)
		probe_go_indirect(sw, now);
	if (sw->probe_phase == PROBE_INDIRECT && now >= sw->probe_end)
		probe_failed(sw, now);
	run_relays(sw, now);
	run_suspicions(sw, now);
	move_check_tick(sw, now);
	if (now >= sw->next_probe) {
		if (sw->leaving) {
			sw->next_probe = NEVER; /* a leaving member accuses nobody */
		} else {
			if (sw->probe_phase != PROBE_IDLE)
				probe_failed(sw, now);
			probe_start(sw, now);
		}
	}
	if (now >= sw->next_gossip && sw->bq.n) {
		gossip(sw, now);
		sw->next_gossip = now + sw->cfg.gossip_interval_ms;
	}
	if (now >= sw->next_push_pull) {
		struct member *peer = sw->leaving ? NULL : random_live(sw, NULL);
		if (peer) {
			struct wire_addr to = member_addr(peer);
			start_push_pull(sw, &to, false);
		}
		sw->next_push_pull = sw->cfg.push_pull_interval_ms > 0
			? now + push_pull_interval(sw) : NEVER;
	}
	if (now >= sw->next_reconnect) {
		if (!sw->leaving)
			reconnect(sw);
		sw->next_reconnect = now + RECONNECT_INTERVAL_MS;
	}
	if (now >= sw->next_reap) {
		reap(sw, now);
		int64_t iv = sw->cfg.reap_interval_ms / 8;
		sw->next_reap = now + (iv < 1000 ? 1000 : iv);
	}
}

void swim_notice_stall(struct swim *sw, int64_t gap_ms, int64_t now)
{
	sw->clock = now;
	sw->stats.stalls++;
	logf_(sw, 2, "process stalled for %lld ms; not trusting timers that expired meanwhile",
	      (long long)gap_ms);
	/* (1) timers that expired while we were frozen say nothing about the
	 * peers: abandon the probe, give every suspicion its full time again */
	sw->probe_phase = PROBE_IDLE;
	sw->n_relays = 0;
	for (size_t i = 0; i < sw->n_suspects; i++)
		suspicion_restart(&sw->suspects[i].suspicion, now);
	/*
	 * (2) we may be the unhealthy one: raise the health score by a step
	 * (the refutation below adds another), not to the maximum: at the
	 * maximum a resumed member took ~36 s of acked probes to come back
	 * down, and a cluster with a few such members noticed the next hung
	 * one late (SIGSTOP detection p99 1.33x serf's).  Repeated stalls
	 * still climb step by step.  For two probe intervals a failed probe
	 * of ours starts no suspicion: what we sent or heard just before the
	 * stall may be what failed.
	 */
	health_adjust(sw, STALL_HEALTH_STEP);
	sw->stall_grace_until = now + 2LL * sw->cfg.probe_interval_ms;
	sw->next_probe = now + scaled(sw, sw->cfg.probe_interval_ms);
	sw->next_gossip = now;
	/* (3) outbid any death rumour and fetch the current view at once */
	if (!sw->leaving) {
		refute(sw, sw->self->incarnation, now);
		struct member *peer = random_live(sw, NULL);
		if (!peer) {
			/* everyone may have been declared dead while we slept */
			for (size_t i = 0; i < sw->n_members && !peer; i++)
				if (member_at(sw, i) != sw->self && member_at(sw, i)->state == SWIM_DEAD)
					peer = member_at(sw, i);
		}
		if (peer) {
			struct wire_addr to = member_addr(peer);
			start_push_pull(sw, &to, false);
		}
	}
}

/* ------------------------------------------------------------------ */
/* lifecycle and queries                                               */

void swim_config_default(struct swim_config *c)
{
	memset(c, 0, sizeof *c);
	static const uint8_t vsn[6] = { 1, 5, 2, 2, 5, 4 };
	memcpy(c->vsn, vsn, 6);
	c->probe_interval_ms = 1000;
	c->probe_timeout_ms = 500;
	c->gossip_interval_ms = 200;
	c->gossip_nodes = 3;
	c->gossip_to_dead_ms = 30000;
	c->indirect_checks = 3;
	c->retransmit_mult = 4;
	c->suspicion_mult = 4;
	c->suspicion_max_timeout_mult = 6;
	c->push_pull_interval_ms = 30000;
	c->awareness_max_multiplier = 8;
	c->reap_interval_ms = 24LL * 3600 * 1000;
	c->udp_buffer_size = 1400;
	c->lifeguard = true;
	c->seed = 0x9E3779B97F4A7C15ULL;
}

struct swim *swim_new(const struct swim_config *cfg, const struct swim_hooks *hooks, int64_t now)
{
	struct swim *sw = calloc(1, sizeof *sw);
	if (!sw)
		return NULL;
	sw->cfg = *cfg;
	if (sw->cfg.awareness_max_multiplier < 1)
		sw->cfg.awareness_max_multiplier = 1;
	if (sw->cfg.udp_buffer_size < 512)
		sw->cfg.udp_buffer_size = 512;
	if (hooks)
		sw->hooks = *hooks;
	sw->rng = cfg->seed ? cfg->seed : 1;
	for (const char *p = cfg->name; *p; p++)
		sw->rng = (sw->rng ^ (uint8_t)*p) * 0x100000001B3ULL;
	if (!sw->rng)
		sw->rng = 1;
	sw->index_cap = 64;
	sw->index = malloc(sw->index_cap * sizeof *sw->index);
	if (sw->index)
		memset(sw->index, 0xff, sw->index_cap * sizeof *sw->index);
	sw->free_id = NO_ID;
	sw->hinted = NO_ID;
	sw->last_hint_probe = INT64_MIN / 2;
	sw->last_jump_ask = INT64_MIN / 2;
	awareness_init(&sw->health, sw->cfg.awareness_max_multiplier);
	bool queue_ok = bcast_queue_init(&sw->bq);
	wbuf_init(&sw->scratch);
	wbuf_init(&sw->pkt);
	wbuf_init(&sw->body);
	if (!sw->index || !queue_ok || !cfg->name[0])
		goto fail;
	sw->self = member_add(sw, cfg->name);
	if (!sw->self)
		goto fail;
	struct member *me = sw->self;
	if (!member_set_ext(me, &cfg->addr, cfg->meta,
			    cfg->meta_len > WIRE_META_MAX ? WIRE_META_MAX : cfg->meta_len))
		goto fail;
	memcpy(me->vsn, cfg->vsn, 6);
	me->incarnation = 1;
	set_state(sw, me, SWIM_ALIVE, now);
	me->state_since = now;
	/* spread the first probe over one interval so restarted clusters don't pulse */
	sw->next_probe = now + (int64_t)rng_below(sw, (size_t)cfg->probe_interval_ms + 1);
	sw->next_gossip = now + cfg->gossip_interval_ms;
	sw->clock = now;
	/* a random first push-pull, as memberlist: members started together
	 * must not all exchange state in the same millisecond forever after */
	sw->next_push_pull = cfg->push_pull_interval_ms > 0
		? now + (int64_t)rng_below(sw, (size_t)cfg->push_pull_interval_ms) + 1 : NEVER;
	sw->next_reconnect = now + RECONNECT_INTERVAL_MS;
	sw->next_reap = now + 1000;
	notify(sw, SWIM_EV_JOIN, me);
	return sw;
fail:
	swim_free(sw);
	return NULL;
}

void swim_free(struct swim *sw)
{
	if (!sw)
		return;
	free(sw->leave_to);
	bcast_queue_free(&sw->bq);
	for (size_t i = 0; i < sw->n_members; i++)
		free(member_at(sw, i)->ext);
	for (size_t i = 0; i < sw->n_chunks; i++)
		free(sw->chunks[i]);
	free(sw->chunks);
	for (size_t i = 0; i < sw->views_cap; i++)
		free(sw->views[i]);
	free(sw->views);
	free(sw->members);
	free(sw->probe_order);
	probe_ring_free(&sw->ring);
	free(sw->suspects);
	free(sw->buddies);
	free(sw->climbs);
	free(sw->move);
	free(sw->relays);
	free(sw->index);
	free(sw->addr_index);
	wbuf_free(&sw->scratch);
	wbuf_free(&sw->pkt);
	wbuf_free(&sw->body);
	free(sw);
}
int swim_set_meta(struct swim *sw, const uint8_t *meta, size_t len, int64_t now)
{
	sw->clock = now;
	if (len > WIRE_META_MAX)
		return WIRE_ETOOBIG;
	struct member *me = sw->self;
	if (!member_set_meta(me, meta, len))
		return WIRE_ENOMEM;
	me->incarnation = inc_after(me->incarnation);
	me->state_since = now;
	broadcast_alive(sw, me);
	notify(sw, SWIM_EV_UPDATE, me);
	return WIRE_OK;
}

void swim_broadcast_user(struct swim *sw, const uint8_t *msg, size_t len)
{
	if (len + 1 > (size_t)sw->cfg.udp_buffer_size)
		return;
	uint8_t *buf = malloc(len + 1);
	if (!buf)
		return;
	buf[0] = WIRE_USER;
	if (len)
		memcpy(buf + 1, msg, len);
	bcast_queue_add(&sw->bq, NULL, buf, len + 1);
	queued_rumour(sw);
	free(buf);
}

void swim_send_user(struct swim *sw, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	uint8_t *buf = malloc(len + 1);
	if (!buf)
		return;
	buf[0] = WIRE_USER;
	if (len)
		memcpy(buf + 1, msg, len);
	send_msg(sw, to, buf, len + 1, false);
	free(buf);
}

size_t swim_alive_count(const struct swim *sw) { return sw->n_alive; }
int swim_health(const struct swim *sw) { return awareness_score(&sw->health); }
const struct swim_stats *swim_stats(const struct swim *sw) { return &sw->stats; }
