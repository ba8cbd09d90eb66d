/*
 * serf.h — the Serf gossip layer: what HashiCorp serf is to memberlist.
 *
 * It sits on top of swim.h as its "delegate": it turns memberlist member
 * events into serf member statuses (alive/leaving/left/failed), keeps the
 * three Lamport clocks, and speaks serf's user messages (join/leave intents,
 * user events, queries and responses, relays, push-pull user state), wire
 * compatible with the Debian `serf` 0.9.4 agent (serf protocol 2..5).
 *
 * Like swim it does no I/O and reads no clock: time comes in as int64 ms and
 * everything that must leave the process goes out through the serf_outbox
 * callbacks (the glue maps them to swim_broadcast_user / swim_send_user /
 * swim_set_meta).  Events for the application go to the vigil_event_fn.
 *
 * Wiring (src/vigil.c):
 *   - serf_encode_tags() -> swim_config.meta before swim_new();
 *   - swim_hooks.on_member / on_user_msg / local_state / merge_remote_state
 *     -> serf_layer_on_member / _on_user_msg / _local_state /
 *        _merge_remote_state (pass the current time);
 *   - after serf_layer_new(), feed swim's current members (at least ourself:
 *     serf_layer_on_member(sl, SWIM_EV_JOIN, swim_self(sw), now)), because
 *     swim_new may have reported them before the layer existed;
 *   - a successful swim join -> serf_layer_broadcast_join() (serf's Join);
 *   - graceful leave: serf_layer_leave() first, let the intent gossip out,
 *     then swim_leave();
 *   - serf_layer_tick() whenever serf_layer_next_deadline() passes.
 *
 * Serf messages (user message payloads) are one type byte + a go-msgpack
 * body.  Types 0..9 are serf's (messages.go); types >= SERF_EXT_TYPE_MIN are
 * reserved for vigil extensions (the will).  A real serf agent logs
 * "[WARN] serf: Received message of unknown type" and drops those
 * (delegate.go NotifyMsg default case), so extensions are invisible to it.
 *
 * Callbacks may call serf_layer_respond(), serf_layer_user_event() and
 * serf_layer_query(); other re-entry (tags, leave, free) from inside a
 * callback is not supported.  Pointers handed to callbacks are valid only
 * during the call.
 */
#ifndef VIGIL_SERF_H
#define VIGIL_SERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "swim.h"
#include "vigil.h"
#include "wire.h"

/* messages.go messageType (iota order verified). */
enum serf_msg_type {
	SERF_MSG_LEAVE = 0,
	SERF_MSG_JOIN = 1,
	SERF_MSG_PUSH_PULL = 2,
	SERF_MSG_USER_EVENT = 3,
	SERF_MSG_QUERY = 4,
	SERF_MSG_QUERY_RESPONSE = 5,
	SERF_MSG_CONFLICT_RESPONSE = 6,
	SERF_MSG_KEY_REQUEST = 7,
	SERF_MSG_KEY_RESPONSE = 8,
	SERF_MSG_RELAY = 9,
};

/* Message types from here up belong to vigil extensions. */
#define SERF_EXT_TYPE_MIN 200

#define SERF_QUERY_FLAG_ACK 1u          /* queryFlagAck */
#define SERF_QUERY_FLAG_NO_BROADCAST 2u /* queryFlagNoBroadcast */
#define SERF_TAG_MAGIC 255              /* tagMagicByte */
#define SERF_INTERNAL_QUERY_PREFIX "_serf_"

enum serf_error {
	SERF_OK = 0,
	SERF_EINVAL = -1,     /* bad argument */
	SERF_ETOOBIG = -2,    /* over a serf size limit */
	SERF_ENOMEM = -3,
	SERF_EFORMAT = -4,    /* malformed input */
	SERF_ESTATE = -5,     /* not allowed now (left, already responded, ...) */
	SERF_ENOTFOUND = -6,
	SERF_EPROTO = -7,     /* feature needs a newer serf protocol version */
};

/* Where messages leave the layer.  All but broadcast/send_to optional. */
struct serf_outbox {
	void *ctx;
	/* Gossip a serf message to everyone (swim_broadcast_user). */
	void (*broadcast)(void *ctx, const uint8_t *msg, size_t len);
	/* Send a serf message to one address by UDP (swim_send_user). */
	void (*send_to)(void *ctx, const struct wire_addr *to,
			const uint8_t *msg, size_t len);
	/* Our tags changed: new node meta to gossip (swim_set_meta). */
	void (*set_meta)(void *ctx, const uint8_t *meta, size_t len);
	/* Serf's reconnect: try a memberlist join with a failed member. */
	void (*reconnect)(void *ctx, const char *name, const struct wire_addr *addr);
	/* Log line (0 debug, 1 info, 2 warn, 3 error). */
	void (*log)(void *ctx, int level, const char *msg);
};

/* An incoming query, as shown to internal-query handlers. */
struct serf_query_in {
	const char *name;          /* full name, e.g. "_serf_install-key" */
	const uint8_t *payload;
	size_t payload_len;
	uint64_t ltime;
	uint32_t id;               /* answer with serf_layer_respond(sl, id, ...) */
	const char *source_node;
};

struct serf_layer;

/*
 * Internal queries ("_serf_" prefix) other than _serf_ping and
 * _serf_conflict, which the layer answers itself.  Return true if handled;
 * false logs "unhandled internal query" as serf does.  Never shown to the
 * application as VIGIL_EV_QUERY.
 */
typedef bool (*serf_internal_query_fn)(void *ctx, struct serf_layer *sl,
				       const struct serf_query_in *q, int64_t now);

/*
 * Per-query result sink for queries we start (used by the key manager for
 * its _serf_*-key queries).  ev->type is VIGIL_EV_QUERY_ACK, _RESPONSE or
 * _DONE; without one the events go to the application callback.
 */
typedef void (*serf_query_result_fn)(void *ctx, const struct vigil_event *ev);

/*
 * Extension hooks (vigil message types >= SERF_EXT_TYPE_MIN).
 *   on_msg:      a user message of an extension type arrived (p[0] = type).
 *   local_state: append extension push-pull state to `out` (optional).
 *   merge_state: one extension state record from a peer's push-pull.
 * Push-pull extension state travels after serf's msgpack body as records of
 * [type u8 >= 200][len u32 BE][bytes]; serf's decoder reads exactly one
 * msgpack value (decodeMessage on a bytes.Reader) and ignores the rest.
 */
struct serf_extension {
	void *ctx;
	void (*on_msg)(void *ctx, const uint8_t *p, size_t len, int64_t now);
	void (*local_state)(void *ctx, bool join, struct wbuf *out);
	void (*merge_state)(void *ctx, uint8_t type, const uint8_t *p, size_t len,
			    bool join, int64_t now);
};

struct serf_layer_config {
	char name[WIRE_NAME_MAX + 1];
	const struct vigil_tag *tags;   /* copied */
	size_t n_tags;
	int protocol_version;           /* serf protocol 2..5; 0 = 4 */

	vigil_event_fn on_event;        /* application events */
	void *event_ctx;
	struct serf_outbox out;

	serf_internal_query_fn internal_query; /* optional */
	void *internal_query_ctx;

	/* serf DefaultConfig values when 0. */
	int event_buffer;               /* 512 */
	int query_buffer;               /* 512 */
	int gossip_interval_ms;         /* 200 (memberlist, for query timeouts) */
	int query_timeout_mult;         /* 16 */
	int query_size_limit;           /* 1024 */
	int query_response_size_limit;  /* 1024 */
	int user_event_size_limit;      /* 512 (max 9216) */
	int64_t reap_interval_ms;       /* 15 s */
	int64_t reconnect_interval_ms;  /* 30 s */
	int64_t reconnect_timeout_ms;   /* 24 h: failed members kept */
	int64_t tombstone_timeout_ms;   /* 24 h: left members kept */
	int64_t recent_intent_timeout_ms; /* 5 min */
	int64_t prune_delay_ms;         /* 6 s: BroadcastTimeout + LeavePropagateDelay */
	uint64_t seed;                  /* PRNG for query ids / relays */
};

/* Counters; only ever increase. */
struct serf_stats {
	uint64_t msgs_in, unknown_types, decode_errors, extension_msgs;
	uint64_t events_in, events_dup, events_old;
	uint64_t queries_in, queries_dup, queries_old, acks_sent, responses_sent;
	uint64_t relays, intents_dropped, push_pull_merges;
	uint64_t ltime_refused;      /* Lamport times implausibly far ahead of ours */
};

void serf_layer_config_default(struct serf_layer_config *cfg);
struct serf_layer *serf_layer_new(const struct serf_layer_config *cfg);
void serf_layer_free(struct serf_layer *sl);

/* ---- tags <-> node meta (as serf's encodeTags/decodeTags) ---- */

/*
 * Encode tags as node meta into out (cap bytes): protocol >= 3 gives
 * 0xff + msgpack map (keys sorted, so equal tags give equal meta); protocol
 * < 3 gives the raw "role" tag.  Returns the length or SERF_ETOOBIG /
 * SERF_EINVAL.  Use WIRE_META_MAX as cap for memberlist's limit.
 */
int serf_encode_tags(const struct vigil_tag *tags, size_t n, int protocol_version,
		     uint8_t *out, size_t cap);
/*
 * Decode node meta into a malloc'd tag array (each key/value malloc'd; free
 * with serf_tags_free).  Meta without the magic byte is {"role": meta}.
 * Returns 0, SERF_EFORMAT (out empty) or SERF_ENOMEM.
 */
int serf_decode_tags(const uint8_t *meta, size_t len, struct vigil_tag **out, size_t *n);
void serf_tags_free(struct vigil_tag *tags, size_t n);

/* ---- swim hooks ---- */

void serf_layer_on_member(struct serf_layer *sl, enum swim_member_event ev,
			  const struct swim_member *m, int64_t now);
void serf_layer_on_user_msg(struct serf_layer *sl, const uint8_t *p, size_t len,
			    int64_t now);
void serf_layer_local_state(struct serf_layer *sl, bool join, struct wbuf *out);
void serf_layer_merge_remote_state(struct serf_layer *sl, const uint8_t *p, size_t len,
				   bool join, int64_t now);
void serf_layer_tick(struct serf_layer *sl, int64_t now);
/*
 * While true, a join push-pull moves the event and query minimum times up
 * to the peer's clocks, so events from before our join are not replayed
 * (serf's Join(ignoreOld=true), i.e. the agent without -replay).
 */
void serf_layer_set_join_ignore(struct serf_layer *sl, bool ignore_old);
int64_t serf_layer_next_deadline(const struct serf_layer *sl); /* INT64_MAX = none */

/* ---- operations ---- */

/* After a successful join: broadcast our join intent (serf Join). */
int serf_layer_broadcast_join(struct serf_layer *sl, int64_t now);
/* Broadcast our leave intent; then the glue calls swim_leave. */
int serf_layer_leave(struct serf_layer *sl, int64_t now);
/* Force a failed node to left (prune: erase it at once). */
int serf_layer_force_leave(struct serf_layer *sl, const char *node, bool prune,
			   int64_t now);
/* Replace our tags: re-encode meta and call outbox.set_meta. */
int serf_layer_set_tags(struct serf_layer *sl, const struct vigil_tag *tags, size_t n);
/* Our current tags (borrowed until the next set_tags). */
const struct vigil_tag *serf_layer_tags(const struct serf_layer *sl, size_t *n);

int serf_layer_user_event(struct serf_layer *sl, const char *name,
			  const uint8_t *payload, size_t len, bool coalesce, int64_t now);

/*
 * Start a query.  p may be NULL (defaults).  Results (ack/response/done)
 * go to cb if given, else to the application's on_event.
 */
int serf_layer_query(struct serf_layer *sl, const char *name,
		     const uint8_t *payload, size_t len,
		     const struct vigil_query_params *p,
		     serf_query_result_fn cb, void *cb_ctx,
		     uint32_t *id_out, int64_t now);
/* Answer an incoming query (once, before its deadline). */
int serf_layer_respond(struct serf_layer *sl, uint32_t id,
		       const uint8_t *payload, size_t len, int64_t now);

/* ---- members ---- */

enum vigil_status serf_layer_member_status(const struct serf_layer *sl, const char *name);
/*
 * Snapshot of serf's member table (ourselves included).  Each tag key and
 * value and each tags array is malloc'd, as is the array itself; free with
 * serf_layer_members_free (vigil_members_free may simply call it).
 */
int serf_layer_members(const struct serf_layer *sl, struct vigil_member **out, size_t *n);
void serf_layer_members_free(struct vigil_member *m, size_t n);
size_t serf_layer_member_count(const struct serf_layer *sl);

/* ---- extensions ---- */

void serf_layer_set_extension(struct serf_layer *sl, const struct serf_extension *ext);
/* Append one push-pull state record (type >= SERF_EXT_TYPE_MIN) for local_state. */
int serf_ext_state_record(struct wbuf *out, uint8_t type, const uint8_t *p, uint32_t len);
/* Gossip / send an extension message: msg[0] must be >= SERF_EXT_TYPE_MIN. */
int serf_layer_ext_broadcast(struct serf_layer *sl, const uint8_t *msg, size_t len);
int serf_layer_ext_send(struct serf_layer *sl, const struct wire_addr *to,
			const uint8_t *msg, size_t len);

/* ---- introspection ---- */

const struct serf_stats *serf_layer_stats(const struct serf_layer *sl);
/* member_time, event_time, query_time as `serf info` shows them. */
void serf_layer_clocks(const struct serf_layer *sl, uint64_t *member, uint64_t *event,
		       uint64_t *query);
/*
 * Restore the clocks a snapshot recorded (Lamport time - 1 each, serf's
 * lastClock etc.), before any traffic: witness them, and ignore user events
 * and queries up to them (serf.Create sets eventMinTime/queryMinTime to
 * the snapshot's clocks + 1), so a restart does not run them again.
 */
void serf_layer_restore_clocks(struct serf_layer *sl, uint64_t member, uint64_t event,
			       uint64_t query);
/* Serf instance state: alive, leaving (after serf_layer_leave). */
bool serf_layer_is_leaving(const struct serf_layer *sl);

#endif
