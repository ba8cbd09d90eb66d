/*
 * rpc_internal.h — what the RPC server (rpc.c: connections, handshake,
 * framing, backpressure, dispatch) shares with its command handlers
 * (rpc_members.c, rpc_events.c, rpc_keys.c).  Private to agent/rpc*.c.
 */
#ifndef VIGIL_AGENT_RPC_INTERNAL_H
#define VIGIL_AGENT_RPC_INTERNAL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "handlers.h"
#include "rpc.h"

#define MAX_CLIENTS 512
/*
 * Bounds on what one client can make us hold or do (docs/SECURITY.md,
 * "Bounded work"):
 *  - A connection that has not finished its handshake (and auth, when
 *    -rpc-auth is set) within PREAUTH_TIMEOUT_MS is closed; such
 *    connections are also the ones closed to make room when MAX_CLIENTS
 *    are connected, or when one address holds MAX_PREAUTH_PER_SOURCE of
 *    them (a loopback operator shares the attacker's address: eviction
 *    of the oldest, not refusal of the newest, lets the operator in).
 *    Failing those, a ready client idle for IDLE_EVICT_MS makes room.
 *  - Requests are read only while less than WBUF_PAUSE of output waits:
 *    a client that pipelines and never reads stops being read (TCP then
 *    stops it), and we never run more than REQ_BUDGET frames of its requests
 *    per wake-up, so the loop (and the gossip) keeps its pace.
 *  - A client that stops reading its stream must not make us buffer
 *    without bound: past WBUF_STREAM_LIMIT stream records are dropped
 *    (serf drops too, with the same warning); one response that would
 *    take the buffer past WBUF_HARD_LIMIT closes the connection.
 *  - A client has at most MAX_STREAMS streams; the CLI uses one.
 *  - Before auth, MAX_PREAUTH_REQUESTS refused requests close it.
 */
#define WBUF_PAUSE (256u << 10)
#define WBUF_STREAM_LIMIT (1u << 20)
#define WBUF_HARD_LIMIT MP_MAX_RESPONSE /* what our own client accepts */
#define RBUF_LIMIT (MP_MAX_FRAME + 4096)
#define PREAUTH_TIMEOUT_MS 10000
/* A ready client with no stream or monitor that has sent nothing for this
 * long may be closed to make room, once no unauthenticated one is left
 * (without -rpc-auth a handshake alone makes a client ready). */
#define IDLE_EVICT_MS 10000
#define MAX_PREAUTH_PER_SOURCE 64
#define MAX_PREAUTH_REQUESTS 16
#define REQ_BUDGET 64 /* msgpack frames: a request is one or two */
#define MAX_STREAMS 128
/* Buffers larger than this are given back once empty, and trimmed out of
 * the heap, so a burst does not leave the agent at its peak RSS. */
#define BUF_KEEP (64u << 10)
#define TRIM_AFTER (4u << 20)
/* How long a query delivered to a stream client can be answered with
 * "respond"; serf uses the query's own deadline, which the event does not
 * carry, so keep it comfortably above serf's default query timeout. */
#define RESPOND_WINDOW_MS (5 * 60 * 1000)

/* serf's error strings (client/const.go) */
#define E_UNSUPPORTED_CMD "Unsupported command"
#define E_UNSUPPORTED_VER "Unsupported IPC version"
#define E_DUP_HANDSHAKE "Handshake already performed"
#define E_HANDSHAKE_REQ "Handshake required"
#define E_MONITOR_EXISTS "Monitor already exists"
#define E_INVALID_FILTER "Invalid event filter"
#define E_STREAM_EXISTS "Stream with given sequence exists"
#define E_INVALID_QUERY_ID "No pending queries matching ID"
#define E_AUTH_REQUIRED "Authentication required"
#define E_INVALID_AUTH "Invalid authentication token"

struct stream {
	uint64_t seq;
	struct handler_filter *f;
	size_t nf;
};

struct pending_respond {
	uint32_t lib_id;
	uint64_t client_qid;  /* the ID this client was given (serf: 1, 2, ...) */
	int64_t expires;
};

struct client {
	uint64_t id;
	int fd;
	char name[80];
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf;
	size_t wlen, wcap;
	int version;
	bool authed;
	bool have_hdr; /* a header was read; its body is next */
	char cmd[32];
	uint64_t seq;
	bool monitor;
	uint64_t mon_seq;
	int mon_level;
	struct stream *streams; /* array, at most MAX_STREAMS */
	size_t nstreams;
	struct pending_respond *pr;
	size_t npr;
	uint64_t last_qid;    /* serf IPCClient.queryID: per connection, from 1 */
	bool close_after_flush;
	bool dead;
	bool overflow; /* too much unsent output: drop the client */
	bool more;     /* complete requests left unread (REQ_BUDGET) */
	int64_t born;  /* now_ms() at accept */
	int64_t last_req; /* now_ms() at its latest request */
	unsigned preauth_refused;
	char host[64]; /* peer IP (no port), for the per-source bound */
	struct client *next;
};

/* A query started by an RPC client: its acks/responses go back under seq. */
struct outq {
	uint32_t lib_id;
	uint64_t client_id;
	uint64_t seq;
	int64_t deadline;
};

struct pending_join {
	uint64_t client_id, seq;
	uint32_t join_id;    /* vigil_join_begin's; 0 = not tracked */
	char list[512];
};

struct leaver {
	uint64_t client_id;
	uint64_t seq;
};

/* A key operation started for a client: answered when the cluster did. */
struct pending_key {
	struct rpc_server *s;
	uint64_t client_id, seq;
	bool list;
	struct pending_key *next;
};

/* Query events that arrive while vigil_query() is still running (the local
 * node may ack/answer its own query synchronously) are held back so that the
 * response header always precedes its records, as serf's client expects. */
struct stashed {
	enum vigil_event_type type;
	uint32_t id;
	char from[VIGIL_NAME_MAX + 1];
	uint8_t *payload;
	size_t len;
};

struct rpc_server {
	struct agent *a;
	int lfd;
	char *auth;
	struct client *clients;
	size_t nclients;
	uint64_t next_id;
	struct outq *oq;
	size_t noq;
	struct leaver *leavers;
	size_t nleavers;
	struct pending_join *joins;
	size_t njoins;
	struct pending_key *keyreqs;
	bool in_query;
	struct stashed *stash;
	size_t nstash;
	size_t freed_big; /* bytes of big buffers freed since the last trim */
};

/* ------------------------------------------------ server (rpc.c) */

/* The response header {Seq, Error} to c, and pk set up to pack its body
 * next into c's write buffer (bounded: WBUF_HARD_LIMIT). */
void rpc_reply_body(struct client *c, msgpack_packer *pk, uint64_t seq, const char *err);
/* Header-only response. */
void rpc_reply(struct client *c, uint64_t seq, const char *err);
/* The live client with this id, or NULL (it may have gone meanwhile). */
struct client *rpc_find_client(struct rpc_server *s, uint64_t id);
/* Mark c for closing; why (if any) is logged. */
void rpc_client_kill(struct client *c, const char *why);

/* ------------------------------------------------ command handlers */

/* Every command has this signature (rpc.c's command table): body is NULL
 * for commands without one; cmd is the command's name. */
typedef void rpc_command_fn(struct rpc_server *s, struct client *c, uint64_t seq,
			    const msgpack_object *b, const char *cmd);

/* Membership (rpc_members.c) */
rpc_command_fn rpc_cmd_force_leave, rpc_cmd_join, rpc_cmd_members, rpc_cmd_leave, rpc_cmd_tags,
	rpc_cmd_stats, rpc_cmd_get_coordinate;
void rpc_pack_member(msgpack_packer *pk, const struct vigil_member *m);
/* Answer the joins that are decided; called every loop iteration. */
void rpc_check_joins(struct rpc_server *s);

/* Events, streams, monitor and queries (rpc_events.c) */
rpc_command_fn rpc_cmd_event, rpc_cmd_stream, rpc_cmd_monitor, rpc_cmd_stop, rpc_cmd_query,
	rpc_cmd_respond;
void rpc_send_query_record(struct client *c, uint64_t seq, const char *type, const char *from,
			   const uint8_t *payload, size_t len);

/* Keys and wills (rpc_keys.c) */
rpc_command_fn rpc_cmd_key, rpc_cmd_will_set, rpc_cmd_will_clear, rpc_cmd_will_list;

#endif
