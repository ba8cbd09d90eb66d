/*
 * bcast_queue.h — the broadcast queue: rumours waiting to ride along in
 * our packets (memberlist's TransmitLimitedQueue).
 *
 * Every rumour is sent a limited number of times (the retransmit limit,
 * which grows with the log of the cluster size), the least-sent first so
 * that fresh news spreads before old news is repeated.  There is at most
 * one rumour about each member: a newer one (alive, suspect, dead)
 * replaces the older.  User messages (the serf layer's) are never
 * replaced and go into a packet only after the membership rumours.
 *
 * Two kinds of entry share a struct qlink as their first field:
 *  - a member's alive rumour is the member record itself (the record holds
 *    exactly what the rumour said) and is encoded when taken;
 *  - suspect/dead rumours and user messages are kept encoded (struct bcast).
 */
#ifndef VIGIL_BCAST_QUEUE_H
#define VIGIL_BCAST_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct member;

/* The queue entry of one rumour: the first field of both kinds of entry. */
struct qlink {
	uint32_t pos;                /* its slot in buckets[transmits] */
	int8_t transmits;            /* sends so far; -1 while parked (see bcast_take) */
	bool in_member;              /* a member's alive rumour, else a struct bcast */
	uint16_t len;                /* encoded length */
};

/*
 * One transmit-count bucket of the broadcast queue: a stack of entries,
 * newest on top.  An array, not a list threaded through the entries: a
 * packet takes some twenty rumours, and in a big cluster each sits in a
 * cold member record, so walking a list waits for memory twenty times in
 * a row, while slots of an array name records that can be fetched in
 * parallel.  It also keeps the links out of the record (8 bytes instead
 * of 24, see struct member).  A removed entry leaves a hole (NULL),
 * trimmed at once at the top and compacted away when holes are half the
 * bucket; the array shrinks as the bucket empties, so the slots a big
 * join needed are returned.
 */
struct qbucket {
	struct qlink **v;
	uint32_t n, cap, holes;
};

/* A rumour kept encoded: suspect/dead about a member, or a user message. */
struct bcast {
	struct qlink q;
	struct member *about;        /* member it is about (owns us via r.bcast); NULL = user message */
	uint64_t id;                 /* see bcast_queue.watch_id */
	uint8_t data[];
};

/* What a member record's r holds (member.rumour). */
enum rumour_kind { RUMOUR_NONE, RUMOUR_ALIVE, RUMOUR_BCAST };

struct bcast_queue {
	struct qbucket *buckets;     /* by transmit count, newest first in each */
	int n_buckets;
	size_t n;                    /* rumours queued (parked ones included) */
	size_t n_user;               /* of which user messages (about == NULL) */
	uint64_t last_id;            /* id of the newest struct bcast */
	/* a rumour whose end someone waits for (our leave): set watch_id to
	 * its id, and watch_retired turns true once it has been sent for the
	 * last time or replaced */
	uint64_t watch_id;
	bool watch_retired;
	struct wbuf alive_out;       /* alive rumours encoded for the packet being built */
};

/*
 * memberlist's node scale, ceil(log10(n + 1)): how gossip repetition
 * grows with the cluster (n members, the dead included until reaped).
 * Serf's query timeout uses it too: mult * scale gossip intervals.
 */
int bcast_node_scale(size_t n);

/*
 * memberlist's retransmitLimit: mult * ceil(log10(n + 1)) sends per
 * rumour, at least 1, n counting the dead too (memberlist's estNumNodes
 * keeps them until they are reaped).  Counting only the live ones halved
 * the limit on the minority side of a partition just when most gossip
 * targets (the recently dead across the cut) cannot hear it: a `dead`
 * there reached the others on its own side 7-20 s late, or never.
 */
int bcast_retransmit_limit(int mult, size_t n);

/* False (and nothing to free) if out of memory. */
bool bcast_queue_init(struct bcast_queue *q);
void bcast_queue_free(struct bcast_queue *q);

/*
 * Queue an encoded message about member m (NULL: a user message); a
 * rumour already queued about m is dropped.  Out of memory, or over
 * UINT16_MAX bytes: nothing is queued.
 */
void bcast_queue_add(struct bcast_queue *q, struct member *m, const uint8_t *data, size_t len);

/* Queue an alive rumour about m that encodes to `len` bytes (kept in m
 * itself, encoded from it when taken), dropping any other about m. */
void bcast_queue_alive(struct bcast_queue *q, struct member *m, size_t len);

/* Drop our queued rumour about m, if any (m replaced or reaped). */
void bcast_queue_drop(struct bcast_queue *q, struct member *m);

/*
 * Append queued rumours to `msgs` while they fit in `budget` bytes (each
 * costs its length + 2, memberlist's compound overhead), membership
 * rumours before user messages, fewest-transmitted and newest first,
 * counting a send for each.  Returns the count; `taken` names the entries.
 * The views point into the queue, or into q->alive_out for alive rumours.
 * A rumour sent `limit` times is parked until bcast_release_parked, so
 * the views stay valid while the packet is built.
 */
size_t bcast_take(struct bcast_queue *q, int limit, size_t budget, struct wire_bytes *msgs,
		  size_t max, struct qlink **taken);

/* The packet is built: retire what bcast_take parked. */
void bcast_release_parked(struct bcast_queue *q, struct qlink **taken, size_t n);

#endif
