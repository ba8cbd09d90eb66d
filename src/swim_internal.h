/*
 * swim_internal.h — what the files of the protocol core share: struct swim
 * (one member's view of the cluster) and the functions they call in each
 * other.  Not installed; swim.h is the interface.
 *
 *   swim.c         the state machine: probes, message handlers, gossip, timers
 *   members.c      the member store (records, name and address indexes, views)
 *   bcast_queue.c  the broadcast queue (rumours and their retransmit limit)
 *   suspicion.c    Lifeguard suspicion timeouts (pure)
 *   awareness.c    Lifeguard local health score (pure)
 *   identity.c     which claims about a member we believe; address move checks
 *   packet_in.c    one datagram in: decoded in batches, dispatched in order
 *   push_pull.c    push-pull state exchange and stream messages
 *   leave.c        the graceful leave, told to every live member
 */
#ifndef VIGIL_SWIM_INTERNAL_H
#define VIGIL_SWIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "awareness.h"
#include "bcast_queue.h"
#include "members.h"
#include "probe_ring.h"
#include "suspicion.h"
#include "swim.h"

#define NEVER INT64_MAX
#define MAX_RELAYS 1024          /* indirect pings we forward at once */
#define MAX_PENDING_STREAMS 64
#define RECENT_ACKED 32          /* members that answered or pinged us lately (handle_dead) */

/* A member while it is SWIM_SUSPECT: its suspicion and its buddy probes. */
struct suspect {
	struct member *m;
	struct suspicion suspicion;
	int64_t last_buddy;          /* last time we probed it while suspecting it */
	int64_t buddy_from;          /* its one buddy jump may come from then on */
	uint64_t own_accusation;     /* bcast id of our own suspect rumour, 0 if none */
};

/*
 * When we last buddy-probed a member that is no longer suspect: buddy_due
 * compares these times, so a member suspected again picks its old one up.
 * Only members ever buddy-probed are listed (a handful).
 */
struct buddy_time {
	struct member *m;
	int64_t t;
};

struct relay {
	uint32_t local_seq, orig_seq;
	struct wire_addr requester;
	struct wire_addr target;     /* whom we pinged for the requester */
	bool want_nack, nack_sent;
	int64_t nack_at, expire_at;
};

enum probe_phase { PROBE_IDLE, PROBE_DIRECT, PROBE_INDIRECT };

struct pending_stream {
	uint64_t cookie;
	bool join;
	bool ping;                   /* a TCP fallback ping (probe_tcp_ping), else push-pull */
	uint32_t ping_seq;
	struct wire_addr to;
};

struct swim {
	struct swim_config cfg;
	struct swim_hooks hooks;
	struct swim_stats stats;
	uint64_t rng;

	/* the member store (members.c); records by id:
	 * chunks[id >> CHUNK_SHIFT][id % CHUNK_LEN] */
	struct member **chunks;
	size_t n_chunks;
	uint32_t n_ids;              /* ids handed out so far */
	uint32_t free_id;            /* reaped ids to reuse, linked through incarnation */
	uint32_t *members;           /* ids of all members incl. self and tombstones */
	size_t n_members, cap_members;
	uint32_t *index;             /* open-addressed name hash -> id; NO_ID = empty */
	size_t index_cap;            /* power of two */
	/* open-addressed address hash -> id of every live member but us, for
	 * unreachable hints; built at the first hint that needs it (most
	 * swims never get one), dropped if it cannot grow */
	uint32_t *addr_index;
	size_t addr_index_cap, addr_index_n;
	struct member *self;
	size_t n_alive;              /* not dead/left, incl. self */
	struct swim_member **views;  /* by id: views handed out by the accessors */
	size_t views_cap;
	struct swim_member notify_view; /* what a hook sees */

	struct suspect *suspects;    /* members currently suspect (timers to watch) */
	size_t n_suspects, cap_suspects;
	struct buddy_time *buddies;
	size_t n_buddies, cap_buddies;
	struct probe_ring ring;      /* the shared probe schedule (probe_ring.h) */
	uint32_t *probe_order;       /* shuffled ids, rebuilt per round: the fallback */
	size_t probe_n, probe_pos, probe_cap;

	/* current probe */
	enum probe_phase probe_phase;
	char probe_target[WIRE_NAME_MAX + 1];
	uint32_t probe_seq;
	int64_t probe_start, probe_ack_deadline, probe_end;
	int64_t probe_sent_us;       /* for ping_complete's RTT */
	int probe_expected_nacks, probe_nacks;
	bool probe_unreachable;      /* the target's port answered our ping with ICMP unreachable */
	int64_t next_probe;
	bool last_probe_buddy;       /* the current/last probe jumped the queue (buddy_due) */
	int64_t stall_grace_until;   /* no suspicion from our failed probes before this */
	uint32_t hinted;             /* member to probe next (unreachable hint), NO_ID if none */
	int64_t last_hint_probe;     /* when a hint last moved a probe forward */

	int64_t next_gossip, next_push_pull, next_reconnect, next_reap;
	int64_t clock;               /* the latest `now` any entry point was given */
	uint32_t seq;

	struct relay *relays;        /* grown on demand up to MAX_RELAYS */
	size_t n_relays, cap_relays;

	struct pending_stream streams[MAX_PENDING_STREAMS];
	size_t n_streams;
	uint64_t next_cookie;

	struct bcast_queue bq;       /* rumours to piggyback (bcast_queue.h) */
	bool leaving, left_done;     /* left_done: nobody was left to tell (leave.c) */
	/* a leave told to each live member directly until it acks (leave.c) */
	struct leave_target *leave_to;
	size_t n_leave_to, leave_pending, leave_acked;
	uint32_t leave_seq0;         /* leave_to[i] pings with seq leave_seq0 + i */

	struct awareness health;     /* Lifeguard local health score */
	/* members that acked our probes or pinged us lately (handle_dead) */
	struct { uint32_t id; int64_t t; } acked[RECENT_ACKED];
	int n_acked_next;            /* ring position */
	struct wbuf scratch, pkt, body;
	const struct wire_addr *cur_from; /* sender of the packet being handled */
	/* while merging a push-pull (see jump_vouched) */
	const struct wire_addr *pp_peer; /* the address we dialled, or the TCP source */
	bool pp_inbound;             /* pp_peer is the source: its port is ephemeral */
	bool pp_join;                /* we dialled it to join */
	struct climb *climbs;        /* budgets of big incarnation jumps (identity.c), or NULL */
	struct move_check *move;     /* the one move check under way (identity.c), or NULL */
	const struct member *move_checked; /* while applying its alive */
	int64_t last_jump_ask;       /* last push-pull asking a member about a refused jump */
};

/* ---- small helpers ---- */

static inline uint64_t rng_next(struct swim *sw)
{
	/* xorshift64*: fast, deterministic from the seed, good enough here */
	uint64_t x = sw->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sw->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline size_t rng_below(struct swim *sw, size_t n)
{
	return n ? (size_t)(rng_next(sw) % n) : 0;
}

static inline uint32_t next_seq(struct swim *sw)
{
	return ++sw->seq;
}

void logf_(struct swim *sw, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Decoded fields may be {NULL, 0} (absent or nil): never hand NULL to mem*. */
static inline bool bytes_eq(struct wire_bytes b, const void *p, size_t n)
{
	return b.len == n && (n == 0 || memcmp(b.p, p, n) == 0);
}

static inline bool bytes_eq_str(struct wire_bytes b, const char *s)
{
	return bytes_eq(b, s, strlen(s));
}

static inline struct member *member_of(const struct swim *sw, uint32_t id)
{
	return &sw->chunks[id >> CHUNK_SHIFT][id & (CHUNK_LEN - 1)];
}

/* The i-th member (0 <= i < n_members). */
static inline struct member *member_at(const struct swim *sw, size_t i)
{
	return member_of(sw, sw->members[i]);
}

/* A member other than us that is not dead or left: one we probe. */
static inline bool is_live_peer(const struct swim *sw, const struct member *m)
{
	return m != sw->self && !is_gone(m);
}

/* ---- swim.c ---- */

/* The handlers of the other messages of a packet (packet_in.c calls them). */
void handle_ping(struct swim *sw, const struct wire_ping *p, const struct wire_addr *from,
		 int64_t now);
void handle_indirect(struct swim *sw, const struct wire_indirect_ping *ip,
		     const struct wire_addr *from, int64_t now);
void handle_ack(struct swim *sw, const struct wire_ack *a, int64_t now);
void handle_nack(struct swim *sw, uint32_t seq, int64_t now);
/* The rumour handlers; h = subject_hash(node). */
void handle_alive(struct swim *sw, const struct wire_alive *a, uint64_t h, int64_t now);
void handle_suspect(struct swim *sw, const struct wire_accuse *s, uint64_t h, int64_t now);
void handle_dead(struct swim *sw, const struct wire_accuse *d, uint64_t h, int64_t now);
void set_state(struct swim *sw, struct member *m, enum swim_state st, int64_t now);
void broadcast_accuse(struct swim *sw, enum wire_type type, struct member *about,
		      uint32_t inc, const char *from);
void send_ping(struct swim *sw, const struct member *target, uint32_t seq);
void send_ping_with_accuse(struct swim *sw, const struct member *target, uint32_t seq,
			   enum wire_type type, const struct member *about);
/* The answer to a TCP fallback ping of a probe (msg NULL: the stream failed). */
void tcp_ping_reply(struct swim *sw, const struct pending_stream *ps,
		    const uint8_t *msg, size_t len, int64_t now);

/* ---- identity.c ---- */

/* One past inc, never wrapping: at the top a refutation can only tie. */
uint32_t inc_after(uint32_t inc);
/* A claim about known member m at incarnation inc (alive_addr: its address if an alive). */
bool inc_plausible(struct swim *sw, const struct member *m, uint32_t inc,
		   const struct wire_addr *alive_addr, int64_t now);
/* May an alive move m to a's address?  Starts a move check if it must ask first. */
bool may_move(struct swim *sw, struct member *m, const struct wire_alive *a, int64_t now);
/* Set (peer) or clear (NULL) the push-pull whose state is being merged. */
void pp_vouching(struct swim *sw, const struct wire_addr *peer, bool inbound, bool join);
/* m is being reaped: forget its jump budget and any move check of it. */
void identity_forget(struct swim *sw, const struct member *m);
void move_check_tick(struct swim *sw, int64_t now);
int64_t move_check_due(const struct swim *sw);
/* An ack with seq: true if it answered the move check's pings. */
bool move_check_ack(struct swim *sw, uint32_t seq);

/* ---- push_pull.c ---- */

void start_push_pull(struct swim *sw, const struct wire_addr *to, bool join);
/* memberlist's pushPullScale: the interval, backed off above 32 members. */
int64_t push_pull_interval(const struct swim *sw);

/* ---- leave.c ---- */

/* Send our leave to the members due, a burst at most. */
void leave_step(struct swim *sw, int64_t now);
/* When leave_step next has something to send (NEVER if nothing). */
int64_t leave_next(const struct swim *sw);
/* An ack with seq: true if it answered a leave ping. */
bool leave_ack(struct swim *sw, uint32_t seq);

#endif
