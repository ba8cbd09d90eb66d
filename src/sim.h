/*
 * sim.h — a deterministic network simulator for the swim state machine.
 *
 * Like Tarantool's fakenet/fakeev: many `struct swim` instances run in one
 * process, in virtual time, on a fake network.  The real code runs
 * unchanged — swim.c builds real memberlist packets through wire.c, the
 * simulator copies the bytes and hands them to the receiver's
 * swim_handle_packet after a simulated latency — so a scenario exercises the
 * protocol and the codec together, with no sockets and no wall clock.
 *
 * Everything is driven by one event queue (a binary heap ordered by virtual
 * time, ties broken by insertion order) holding packet deliveries, stream
 * legs and per-node timer wake-ups (swim_next_deadline, lazily invalidated).
 * All randomness comes from sim_new's seed: latency and loss from one PRNG
 * stream, each node's swim seed derived from (seed, node, restart count).
 * So the same seed and the same calls give the identical run;
 * sim_trace_hash() fingerprints a run to check that.  The simulator never
 * calls into a swim from inside that swim's hooks (hooks only enqueue),
 * as the real transport promises.
 *
 * A node whose swim_next_deadline stays at `now` after being ticked 64
 * times in the same millisecond is moved on by 1 ms and counted in
 * sim_stats.timer_stuck: on a real event loop that would be a busy spin.
 *
 * Nodes are numbered 0..n-1 in the order added.  Node i advertises
 * 10.a.b.c:7946 where a.b.c is i+1 in base 256, so the receiver of a packet
 * is found from its address alone.
 *
 * Network model:
 *   - datagrams: latency uniform in [min,max] ms, independent loss with
 *     probability p (drawn when sent), dropped when the link is cut
 *     (partition groups or sim_set_link) at send or at arrival time;
 *   - streams (push-pull): the request reaches the target after one
 *     latency, its swim_handle_stream answer comes back after another; a
 *     cut link, a crashed target (its host is gone: no RST) or a target that
 *     stays paused makes the requester see a failure after the stream
 *     timeout (memberlist's TCPTimeout, 10 s by default);
 *     sim_set_refuse_when_down makes a crashed target refuse instead
 *     (the process died but its host answers: failure after a round trip)
 *     and answer its datagrams with "port unreachable" after a round trip
 *     (swim_hint_unreachable on the sender);
 *   - a paused node runs nothing: datagrams for it wait in its socket
 *     buffer (bounded in bytes like a kernel receive buffer; overflow is
 *     dropped), stream legs wait too; on resume it is told about the clock
 *     jump (swim_notice_stall) and then drains the buffer;
 *   - a crashed node loses its state; a restarted one is a fresh swim with
 *     the same name, address and configuration.
 *
 * Not thread-safe; one struct sim per thread.
 */
#ifndef VIGIL_SIM_H
#define VIGIL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "swim.h"

struct sim;

/* What the harness (not swim) thinks a node is doing. */
enum sim_node_status {
	SIM_NODE_UP,      /* running */
	SIM_NODE_PAUSED,  /* frozen (SIGSTOP, GC pause, VM migration) */
	SIM_NODE_DOWN,    /* crashed, or exited after a graceful leave */
};

/* One on_member callback as a node saw it. */
struct sim_event {
	int64_t t;                   /* virtual time (ms) */
	int observer;                /* node whose swim raised it */
	int subject;                 /* node the member is; -1 if not a sim node */
	enum swim_member_event ev;
	enum swim_state state;       /* member->state at the time */
	uint32_t incarnation;
};

/* Network counters; they only increase. */
struct sim_stats {
	uint64_t packets_sent;       /* send_packet calls */
	uint64_t packets_delivered;  /* handed to swim_handle_packet */
	uint64_t bytes_delivered;
	uint64_t packets_lost;       /* random loss */
	uint64_t packets_cut;        /* partition, cut link, unknown or down receiver */
	uint64_t packets_overflow;   /* a paused node's socket buffer was full */
	uint64_t streams_opened;     /* send_stream calls */
	uint64_t streams_ok;         /* replies delivered */
	uint64_t streams_failed;     /* failures delivered (refused, timeout, no answer) */
	uint64_t stream_bytes;       /* request + reply bytes delivered */
	uint64_t timer_fires;        /* swim_tick calls */
	uint64_t timer_stuck;        /* swim kept a deadline at `now` after ticking (a swim bug) */
	uint64_t events;             /* queue entries processed (stale ones excluded) */
};

/* Per-event observer: see sim_set_member_cb. */
typedef void (*sim_member_fn)(void *ctx, const struct sim_event *ev,
			      const struct swim_member *m);
/* Log observer: every swim log line, tagged with the node and time. */
typedef void (*sim_log_fn)(void *ctx, int node, int64_t now, int level,
			   const char *msg);

/* ---- life cycle ---- */

/* A simulator at virtual time 0 with no nodes; NULL on allocation failure. */
struct sim *sim_new(uint64_t seed);
void sim_free(struct sim *s);

/*
 * The configuration new nodes start from (default: swim_config_default).
 * name, addr and seed are always replaced by the simulator's own.
 */
void sim_set_default_config(struct sim *s, const struct swim_config *cfg);

/*
 * Add a running node that knows nobody yet.  cfg (NULL = the default
 * configuration) is copied; its name, addr and seed are ignored.  Returns
 * the node index, or -1 (duplicate or over-long name, out of memory).
 */
int sim_add_node(struct sim *s, const char *name, const struct swim_config *cfg);
int sim_node_count(const struct sim *s);

/* Join through one seed node (swim_join with seed's address). */
void sim_join(struct sim *s, int node, int seed);
/* Last join outcome: 1 ok, 0 failed, -1 none finished yet. */
int sim_join_result(const struct sim *s, int node);

/*
 * Graceful leave: swim_leave now; once swim_leave_done the process "exits"
 * (the node goes DOWN) like an agent that finished leaving.
 */
void sim_leave(struct sim *s, int node);
/* Stop a node abruptly: its state is freed, its buffers dropped. */
void sim_crash(struct sim *s, int node);
/* Start a crashed/exited node again as a fresh swim (then sim_join it). */
void sim_restart(struct sim *s, int node);
/* Freeze a node (nothing runs; arrivals are buffered). */
void sim_pause(struct sim *s, int node);
/* Thaw it: swim_notice_stall(gap), then drain its socket buffer. */
void sim_resume(struct sim *s, int node);

/* ---- time ---- */

int64_t sim_now(const struct sim *s);
/* Process every event due at or before t; afterwards sim_now() == t. */
void sim_run_until(struct sim *s, int64_t t);
void sim_run_for(struct sim *s, int64_t ms);
/*
 * Run until pred(s, ctx) holds, checking every check_ms of virtual time,
 * but not past deadline.  Returns the virtual time at which it first held,
 * or -1 if it did not by the deadline.
 */
int64_t sim_run_until_pred(struct sim *s, bool (*pred)(struct sim *, void *),
			   void *ctx, int64_t check_ms, int64_t deadline);
/* Process the single next event; false when the queue is empty. */
bool sim_step(struct sim *s);

/* ---- network knobs ---- */

/* One-way latency, uniform in [min_ms, max_ms] (default 1..3). */
void sim_set_latency(struct sim *s, int min_ms, int max_ms);
/* Independent loss probability per datagram (default 0). */
void sim_set_loss(struct sim *s, double p);
/* How long a requester waits for a stream answer (default 10000 ms). */
void sim_set_stream_timeout(struct sim *s, int ms);
/*
 * Whether streams to a DOWN node are refused after a round trip (process
 * crash on a live host) rather than timing out (host gone; the default).
 */
void sim_set_refuse_when_down(struct sim *s, bool refuse);
/* Socket receive buffer of a paused node, in bytes (default 212992). */
void sim_set_socket_buffer(struct sim *s, size_t bytes);
/*
 * A slow member (Lifeguard's "slow message processing": CPU starvation,
 * a long GC): everything arriving at `node` (datagrams, stream requests and
 * answers) is handled an extra uniform 0..max_ms late, on top of the link
 * latency; 0 makes it normal again.  Its timers still fire on time.
 */
void sim_set_slow(struct sim *s, int node, int max_ms);

/*
 * Partitions by group: nodes talk only within their group; all start in
 * group 0.  sim_partition puts the listed nodes in group 1 and everyone
 * else in group 0; sim_heal puts all back in group 0 and restores every
 * link cut with sim_set_link.
 */
void sim_set_group(struct sim *s, int node, int group);
int sim_group(const struct sim *s, int node);
void sim_partition(struct sim *s, const int *group_a, size_t n_a);
void sim_heal(struct sim *s);
/* Cut (up=false) or restore one direction of one link: from -> to. */
void sim_set_link(struct sim *s, int from, int to, bool up);
/* Can a datagram from `from` reach `to` right now (ignoring loss)? */
bool sim_reachable(const struct sim *s, int from, int to);

/* ---- queries ---- */

enum sim_node_status sim_status(const struct sim *s, int node);
const char *sim_name(const struct sim *s, int node);
int sim_find(const struct sim *s, const char *name); /* -1 if none */
const struct wire_addr *sim_addr(const struct sim *s, int node);
/* The node's state machine (NULL while DOWN); for white-box checks only. */
struct swim *sim_swim(struct sim *s, int node);

/* How observer sees member `name`: an enum swim_state, or -1 (unknown, or observer DOWN). */
int sim_view(const struct sim *s, int observer, const char *name);
/* Incarnation observer holds for name, or -1. */
int64_t sim_view_incarnation(const struct sim *s, int observer, const char *name);

/* Every UP node other than `subject` sees subject in `state`. */
bool sim_all_see(const struct sim *s, int subject, enum swim_state state);
/*
 * Some node other than `subject` sees it in `state`; paused nodes count
 * (with the view they hold), DOWN ones have none.
 */
bool sim_any_sees(const struct sim *s, int subject, enum swim_state state);
/*
 * Every UP node sees every UP node alive, and nothing else alive (paused
 * nodes may be seen either way).  O(n) fast path, O(n^2) in the worst case.
 */
bool sim_all_alive(const struct sim *s);
/* sim_all_alive as a sim_run_until_pred predicate (ctx unused). */
bool sim_pred_all_alive(struct sim *s, void *ctx);
/*
 * n nodes named node-000, node-001, ... (cfg NULL: the default
 * configuration), all joining through node 0 at once; NULL on failure.
 * sim_new_converged also runs until every node sees every node alive,
 * NULL if that does not happen by virtual time limit_ms.
 */
struct sim *sim_new_cluster(uint64_t seed, int n, const struct swim_config *cfg);
struct sim *sim_new_converged(uint64_t seed, int n, const struct swim_config *cfg,
			      int64_t limit_ms);
/* Number of nodes with the given status. */
int sim_count_status(const struct sim *s, enum sim_node_status st);

const struct sim_stats *sim_stats(const struct sim *s);
/*
 * A fingerprint of the run so far: every delivery (time, ends, bytes),
 * timer fire and member event is folded in.  Equal seeds and calls give
 * equal hashes.
 */
uint64_t sim_trace_hash(const struct sim *s);

/* ---- event log ---- */

/* Record on_member events in the log (default on; 10k-node runs turn it off). */
void sim_record_events(struct sim *s, bool on);
size_t sim_event_count(const struct sim *s);
const struct sim_event *sim_event_at(const struct sim *s, size_t i);
/*
 * Count logged events at or after `since` matching every filter; -1 in
 * observer/subject/ev/state means "any".  E.g. "did anyone ever declare
 * node 3 dead": sim_count_events(s, -1, 3, SWIM_EV_LEAVE, SWIM_DEAD, 0).
 */
size_t sim_count_events(const struct sim *s, int observer, int subject, int ev,
			int state, int64_t since);
/* Call fn for each member event as it happens (whether or not recorded). */
void sim_set_member_cb(struct sim *s, sim_member_fn fn, void *ctx);
/*
 * Packet tap: called for each datagram just before the receiver's
 * swim_handle_packet (after loss, cuts and buffering), e.g. to decode
 * with wire_unwrap_packet while debugging a scenario.  NULL to remove.
 */
typedef void (*sim_tap_fn)(void *ctx, int64_t now, int from, int to,
			   const uint8_t *pkt, size_t len);
void sim_set_packet_tap(struct sim *s, sim_tap_fn fn, void *ctx);
/* Receive swim log lines at or above min_level (default: none). */
void sim_set_log(struct sim *s, sim_log_fn fn, void *ctx, int min_level);

#endif
