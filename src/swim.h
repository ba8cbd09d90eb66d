/*
 * swim.h — the membership protocol state machine: SWIM with the Lifeguard
 * extensions, speaking memberlist messages (wire.h).
 *
 * It does no I/O and reads no clock.  The embedder (src/vigil.c on real
 * sockets, src/sim.c on a simulated network) hands it packets, stream
 * messages and the current time, and it answers through the swim_hooks
 * callbacks.  Time is an int64_t count of milliseconds on any monotonic
 * clock; the state machine only ever compares and subtracts times.
 *
 * Ownership: every pointer passed to a hook is valid only during the call.
 */
#ifndef VIGIL_SWIM_H
#define VIGIL_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum swim_state {
	SWIM_ALIVE = WIRE_STATE_ALIVE,
	SWIM_SUSPECT = WIRE_STATE_SUSPECT,
	SWIM_DEAD = WIRE_STATE_DEAD,
	SWIM_LEFT = WIRE_STATE_LEFT,
};

/* What happened to a member, as reported through hooks.on_member. */
enum swim_member_event {
	SWIM_EV_JOIN,    /* first seen alive, or alive again after dead/left */
	SWIM_EV_LEAVE,   /* became dead or left (check member->state) */
	SWIM_EV_UPDATE,  /* alive member changed meta or address */
	SWIM_EV_REAP,    /* tombstone removed after the reap interval */
};

struct swim_member {
	char name[WIRE_NAME_MAX + 1];
	struct wire_addr addr;
	uint8_t meta[WIRE_META_MAX];
	uint16_t meta_len;
	uint32_t incarnation;
	enum swim_state state;
	int64_t state_since;   /* when the current state began (ms) */
	uint8_t vsn[6];        /* pmin pmax pcur dmin dmax dcur */
};

/*
 * Timings and knobs.  swim_config_default() fills memberlist's
 * DefaultLANConfig values; the comments give them.
 */
struct swim_config {
	char name[WIRE_NAME_MAX + 1];
	struct wire_addr addr;          /* address advertised to peers */
	uint8_t meta[WIRE_META_MAX];
	uint16_t meta_len;
	uint8_t vsn[6];                 /* default {1,5,2, 2,5,4}: memberlist + serf */

	int probe_interval_ms;          /* 1000 */
	int probe_timeout_ms;           /* 500 */
	int gossip_interval_ms;         /* 200 */
	int gossip_nodes;               /* 3 */
	int gossip_to_dead_ms;          /* 30000 */
	int indirect_checks;            /* 3 */
	int retransmit_mult;            /* 4 */
	int suspicion_mult;             /* 4 */
	int suspicion_max_timeout_mult; /* 6 */
	int push_pull_interval_ms;      /* 30000; 0 disables periodic push-pull */
	int awareness_max_multiplier;   /* 8 */
	int64_t reap_interval_ms;       /* 24 h: how long dead/left tombstones stay */
	int udp_buffer_size;            /* 1400: largest packet we build */
	bool lifeguard;                 /* true; false = plain SWIM (for benchmarks) */
	bool disable_tcp_pings;         /* false: a failed probe also pings over TCP, as memberlist */
	uint64_t seed;                  /* PRNG seed (the simulator sets it) */
};

struct swim_hooks {
	void *ctx;
	/* Send a datagram (plain memberlist packet; the transport encrypts). */
	void (*send_packet)(void *ctx, const struct wire_addr *to,
			    const uint8_t *pkt, size_t len);
	/*
	 * Open a stream to `to`, write msg, and read back one stream message;
	 * hand it (or a failure: msg == NULL) to swim_handle_stream_reply()
	 * with the same cookie.  Used for push-pull.
	 */
	void (*send_stream)(void *ctx, const struct wire_addr *to,
			    const uint8_t *msg, size_t len, uint64_t cookie);
	/* Membership change. */
	void (*on_member)(void *ctx, enum swim_member_event ev,
			  const struct swim_member *m);
	/* A user message (memberlist userMsg payload, without the type byte). */
	void (*on_user_msg)(void *ctx, const uint8_t *p, size_t len);
	/* Fill `out` with our user state for a push-pull (may leave it empty). */
	void (*local_state)(void *ctx, bool join, struct wbuf *out);
	/* A peer's user state from a push-pull. */
	void (*merge_remote_state)(void *ctx, const uint8_t *p, size_t len, bool join);
	/* A join attempt (swim_join) finished: ok = push-pull with that seed worked. */
	void (*join_result)(void *ctx, const struct wire_addr *seed, bool ok);
	/* Optional log line (level: 0 debug, 1 info, 2 warn, 3 error). */
	void (*log)(void *ctx, int level, const char *msg);
	/* Optional, memberlist's PingDelegate: the payload for the acks we
	 * send to pings (length written, at most cap)... */
	size_t (*ack_payload)(void *ctx, uint8_t *buf, size_t cap);
	/* ...and a probe of ours acked directly within the probe timeout:
	 * the target, the RTT in microseconds, the ack's payload. */
	void (*ping_complete)(void *ctx, const char *name, int64_t rtt_us,
			      const uint8_t *payload, size_t len);
	/* Optional finer clock for those RTTs, in microseconds (loopback RTTs
	 * are well under the millisecond of `now`); NULL: now * 1000. */
	int64_t (*clock_us)(void *ctx);
	/* Optional clock in milliseconds that all members share (the wall
	 * clock), from which the probe schedule numbers its periods so that
	 * each member is probed once a period (probe_ring.h); NULL: `now`,
	 * which the simulator's members share. */
	int64_t (*shared_clock_ms)(void *ctx);
};

/* Counters for metrics; only ever increase. */
struct swim_stats {
	uint64_t probes, acks, nacks, probe_failures;
	uint64_t suspicions, refutations, deaths, joins;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
	uint64_t packets_in, packets_out, decode_errors;
	uint64_t packets_malformed;  /* datagrams not even framed right: none of it used */
	uint64_t push_pulls, stalls;
	uint64_t refused_address;    /* alives moving a member we may not move */
	uint64_t refused_incarnation; /* claims implausibly far ahead of what we hold */
	uint64_t unreachable_hints;  /* hints that moved a probe forward */
	uint64_t tcp_pings;          /* TCP fallback pings sent */
	uint64_t tcp_fallback_acks;  /* probes answered over TCP only (UDP lost or filtered) */
	uint64_t scheduled_probes;   /* probes of the member the shared schedule named */
};

struct swim;

void swim_config_default(struct swim_config *cfg);
struct swim *swim_new(const struct swim_config *cfg, const struct swim_hooks *hooks,
		      int64_t now);
void swim_free(struct swim *sw);

/* Push-pull (join=true) with each seed; results via hooks.join_result. */
void swim_join(struct swim *sw, const struct wire_addr *seeds, size_t n, int64_t now);
/* Announce a graceful leave (dead-about-self, i.e. "left") to the cluster. */
void swim_leave(struct swim *sw, int64_t now);
/*
 * True once the leave is settled: every member we held alive or suspect
 * when leaving acked a ping sent with the leave, or did not answer several
 * (then it is gone or cut off from us).
 */
bool swim_leave_done(const struct swim *sw);
/* Once done: how many of those acked, i.e. have the leave (-1 before). */
int swim_leave_reached(const struct swim *sw);
/* How many live members the leave was sent to. */
size_t swim_leave_told(const struct swim *sw);
/* Change our meta (tags): bump incarnation and gossip alive. */
int swim_set_meta(struct swim *sw, const uint8_t *meta, size_t len, int64_t now);

/* Input: one datagram, already decrypted. */
void swim_handle_packet(struct swim *sw, const struct wire_addr *from,
			const uint8_t *pkt, size_t len, int64_t now);
/*
 * Input: one complete stream message (see wire_stream_frame_len), already
 * decrypted.  A push-pull request gets its answer in `reply`.  Returns 0 or
 * a WIRE_E* code for malformed input (state untouched).
 */
int swim_handle_stream(struct swim *sw, const struct wire_addr *from,
		       const uint8_t *msg, size_t len, struct wbuf *reply, int64_t now);
/* The answer to a send_stream(cookie); msg == NULL means the exchange failed. */
void swim_handle_stream_reply(struct swim *sw, uint64_t cookie,
			      const uint8_t *msg, size_t len, int64_t now);

/*
 * Input: a datagram we sent to `to` came back as "port unreachable" (an
 * ICMP error: the host is up but nothing listens there, as when a member's
 * process has crashed).  Not an accusation on its own:
 *   - if it answers our probe's ping, the helpers are asked now instead of
 *     after the probe timeout, and once every helper has nacked the probe
 *     fails then instead of at the end of the interval;
 *   - pings we relay for a helper request are nacked now;
 *   - otherwise, if a live member has that address, the next probe goes to
 *     it now instead of when the round-robin comes to it (at most one such
 *     early probe per probe interval).
 * Addresses that are no member's, our own, and members already gone are
 * ignored.
 */
void swim_hint_unreachable(struct swim *sw, const struct wire_addr *to, int64_t now);

/* Run every timer due at `now`. */
void swim_tick(struct swim *sw, int64_t now);
/* Earliest time at which swim_tick has work (INT64_MAX if none). */
int64_t swim_next_deadline(const struct swim *sw);

/*
 * Stall awareness: the embedder saw its clock jump by gap_ms between two
 * wake-ups.  Timers that expired during the gap are re-armed instead of
 * acted on, local health rises by a step (not to its maximum) and for two
 * probe intervals our failed probes start no suspicion, we refute with a
 * higher incarnation and push-pull with a random live peer.
 */
void swim_notice_stall(struct swim *sw, int64_t gap_ms, int64_t now);

/* Queue a user message (serf layer) for piggybacked gossip. */
void swim_broadcast_user(struct swim *sw, const uint8_t *msg, size_t len);
/* Send a user message straight to one member's address (best effort, UDP). */
void swim_send_user(struct swim *sw, const struct wire_addr *to,
		    const uint8_t *msg, size_t len);

/* Members (including ourselves and tombstones). */
size_t swim_member_count(const struct swim *sw);
const struct swim_member *swim_member_at(const struct swim *sw, size_t i);
const struct swim_member *swim_member_find(const struct swim *sw, const char *name);
const struct swim_member *swim_self(const struct swim *sw);
/*
 * The views above are built on demand (members are stored more compactly)
 * and stay valid, refreshed by each call, until the member is reaped.
 * These two answer without building one, for O(n^2) checks over many
 * swims (the simulator's): the state of `name` (-1 if unknown) and its
 * incarnation; and member i's name, address and state (false past the end).
 */
int swim_member_state(const struct swim *sw, const char *name, uint32_t *incarnation);
bool swim_member_brief(const struct swim *sw, size_t i, const char **name,
		       struct wire_addr *addr, enum swim_state *state);
/* Number of members not dead/left (including ourselves). */
size_t swim_alive_count(const struct swim *sw);
/* Lifeguard local health score (0 = healthy .. awareness_max_multiplier-1). */
int swim_health(const struct swim *sw);
const struct swim_stats *swim_stats(const struct swim *sw);

#endif
