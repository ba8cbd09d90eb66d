/*
 * packet_in.c — one datagram in: unwrapped (CRC, compound, compression:
 * wire.c), its messages decoded a batch at a time and handed, in order,
 * to the handlers of the state machine (swim.c).
 */
#include "swim_internal.h"

#include <msgpack.h>

struct packet_ctx {
	struct swim *sw;
	const struct wire_addr *from;
	int64_t now;
};

/* h: the hash of the subject's name if m is a rumour (see rumour_subject). */
static void handle_decoded(struct packet_ctx *pc, const struct wire_msg *m, uint64_t h)
{
	struct swim *sw = pc->sw;
	switch (m->type) {
	case WIRE_PING:
		handle_ping(sw, &m->u.ping, pc->from, pc->now);
		break;
	case WIRE_INDIRECT_PING:
		handle_indirect(sw, &m->u.indirect, pc->from, pc->now);
		break;
	case WIRE_ACK:
		handle_ack(sw, &m->u.ack, pc->now);
		break;
	case WIRE_NACK:
		handle_nack(sw, m->u.nack.seq, pc->now);
		break;
	case WIRE_SUSPECT:
		handle_suspect(sw, &m->u.suspect, h, pc->now);
		break;
	case WIRE_ALIVE:
		handle_alive(sw, &m->u.alive, h, pc->now);
		break;
	case WIRE_DEAD:
		handle_dead(sw, &m->u.dead, h, pc->now);
		break;
	case WIRE_ERR:
		logf_(sw, 2, "peer reported an error: %.*s", (int)m->u.err.error.len,
		      (const char *)m->u.err.error.p);
		break;
	default:
		sw->stats.decode_errors++;
		break;
	}
}

/* The member a rumour is about, or NULL for other messages. */
static const struct wire_bytes *rumour_subject(const struct wire_msg *m)
{
	switch (m->type) {
	case WIRE_ALIVE:
		return &m->u.alive.node;
	case WIRE_SUSPECT:
		return &m->u.suspect.node;
	case WIRE_DEAD:
		return &m->u.dead.node;
	default:
		return NULL;
	}
}

/*
 * Messages of one packet, in order.  A compound carries up to about 20
 * rumours, each about a member whose index slot and record are, in a big
 * cluster, rarely in cache (10,000 members: 640 KB of records per node):
 * looked up one after the other, every rumour waits for memory twice.  So
 * a batch is decoded first, the index slots of its subjects prefetched,
 * then the records those slots name, and only then are the messages
 * handled, exactly in order as before.  The look-ahead only warms caches:
 * whatever a handler changes (a new member, a grown index) is looked up
 * again by the handler itself.
 */
#define LOOKAHEAD 32
#define DECODE_ZONE_CHUNK 1024   /* an alive message decodes into about 300 bytes */

/* memberlist userMsg in UDP: the type byte, then a raw payload (no msgpack). */
static bool is_user_msg(const struct wire_bytes *m)
{
	return m->len > 0 && m->p[0] == WIRE_USER;
}

static void handle_msgs(void *vctx, const struct wire_bytes *msgs, size_t n)
{
	struct packet_ctx *pc = vctx;
	struct swim *sw = pc->sw;
	struct wire_msg dec[LOOKAHEAD];
	int rc[LOOKAHEAD];
	uint64_t hash[LOOKAHEAD];    /* of the subject's name, for the handler */
	bool rumour[LOOKAHEAD];
	/*
	 * One msgpack zone for the whole packet, cleared after each message
	 * (the decoded views point into the packet, not the zone): a malloc
	 * and a free per packet rather than per message.
	 */
	msgpack_zone zone;
	if (!msgpack_zone_init(&zone, DECODE_ZONE_CHUNK)) {
		sw->stats.decode_errors += n;
		return;
	}
	for (size_t base = 0; base < n; base += LOOKAHEAD) {
		size_t k = n - base < LOOKAHEAD ? n - base : LOOKAHEAD;
		const struct wire_bytes *in = msgs + base;
		for (size_t i = 0; i < k; i++) {
			rumour[i] = false;
			hash[i] = 0;
			if (is_user_msg(&in[i]))
				continue;
			rc[i] = wire_decode_in(&zone, in[i].p, in[i].len, &dec[i]);
			const struct wire_bytes *who = rc[i] == WIRE_OK ? rumour_subject(&dec[i]) : NULL;
			if (who) {
				rumour[i] = true;
				hash[i] = subject_hash(*who);
				prefetch_subject_slot(sw, hash[i]);
			}
		}
		/* by now the slots have arrived: warm the records they name */
		for (size_t i = 0; i < k; i++)
			if (rumour[i])
				prefetch_subject_record(sw, hash[i]);
		for (size_t i = 0; i < k; i++) {
			sw->stats.msgs_in++;
			if (is_user_msg(&in[i])) {
				if (sw->hooks.on_user_msg)
					sw->hooks.on_user_msg(sw->hooks.ctx, in[i].p + 1, in[i].len - 1);
			} else if (rc[i] != WIRE_OK) {
				sw->stats.decode_errors++;
			} else {
				handle_decoded(pc, &dec[i], hash[i]);
			}
		}
	}
	msgpack_zone_destroy(&zone);
}

void swim_handle_packet(struct swim *sw, const struct wire_addr *from,
			const uint8_t *pkt, size_t len, int64_t now)
{
	struct packet_ctx pc = { sw, from, now };
	sw->clock = now;
	sw->cur_from = from;
	sw->stats.packets_in++;
	sw->stats.bytes_in += len;
	int rc = wire_unwrap_packet_all(pkt, len, handle_msgs, &pc);
	sw->cur_from = NULL;
	if (rc != WIRE_OK) {
		/* a whole datagram dropped: packets_dropped{reason="malformed"},
		 * not a message decode error */
		/* Any host can send these at line rate: log the 1st, 2nd, 4th,
		 * 8th, ... with the count (a limiter per instance would cost the
		 * simulator's 10,000 instances more than the lines do). */
		uint64_t n = ++sw->stats.packets_malformed;
		if ((n & (n - 1)) == 0)
			logf_(sw, 0, "dropped a malformed packet: %s (%llu so far)", wire_strerror(rc),
			      (unsigned long long)n);
	}
}
