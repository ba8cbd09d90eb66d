/*
 * vigil.h — libvigil, an embeddable cluster membership and failure
 * detection library, wire-compatible with HashiCorp Serf / memberlist.
 *
 * The library never owns the event loop (like curl's multi API): ask it
 * which fds to wait on (vigil_pollfds) and for how long (vigil_timeout_ms),
 * wait however you like, then call vigil_step().  It never blocks, never
 * spawns threads, and reports what happened through one callback.
 *
 *     struct vigil_config cfg;
 *     vigil_config_default(&cfg);
 *     snprintf(cfg.name, sizeof cfg.name, "node-a");
 *     vigil_t *v;  char err[256];
 *     if (vigil_create(&cfg, &v, err, sizeof err) != 0) die(err);
 *     vigil_join(v, (const char *[]){"10.0.0.2:7946"}, 1);
 *     for (;;) {
 *         struct pollfd fds[8];
 *         int n = vigil_pollfds(v, fds, 8);
 *         poll(fds, n, vigil_timeout_ms(v));
 *         vigil_step(v);
 *     }
 */
#ifndef VIGIL_H
#define VIGIL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIGIL_NAME_MAX 128
#define VIGIL_WILL_MAX 1024
#define VIGIL_MAX_TAGS 64

typedef struct vigil vigil_t;

/* Serf's member status names, as `serf members` prints them. */
enum vigil_status {
	VIGIL_STATUS_NONE = 0,
	VIGIL_STATUS_ALIVE,
	VIGIL_STATUS_LEAVING,
	VIGIL_STATUS_LEFT,
	VIGIL_STATUS_FAILED,
};
const char *vigil_status_name(enum vigil_status s); /* "alive", "failed", ... */

struct vigil_tag {
	char *key;
	char *value;
};

struct vigil_member {
	char name[VIGIL_NAME_MAX + 1];
	char addr[64];            /* textual IP */
	uint16_t port;
	enum vigil_status status;
	uint32_t incarnation;
	struct vigil_tag *tags;   /* owned by the member array */
	size_t n_tags;
	uint8_t vsn[6];           /* protocol min/max/cur, delegate min/max/cur */
};

enum vigil_event_type {
	VIGIL_EV_MEMBER_JOIN,
	VIGIL_EV_MEMBER_LEAVE,
	VIGIL_EV_MEMBER_FAILED,
	VIGIL_EV_MEMBER_UPDATE,
	VIGIL_EV_MEMBER_REAP,
	VIGIL_EV_USER,            /* user event: name, payload, ltime, coalesce */
	VIGIL_EV_QUERY,           /* query to answer with vigil_respond(id) */
	VIGIL_EV_QUERY_ACK,       /* our query was acked by `member` */
	VIGIL_EV_QUERY_RESPONSE,  /* our query got a response from `member` */
	VIGIL_EV_QUERY_DONE,      /* our query's timeout passed */
	VIGIL_EV_MEMBER_WILL,     /* a will delivered to us: owner=member, payload */
	VIGIL_EV_WILL_REVOKED,    /* owner of a will we got came back */
	VIGIL_EV_WILL_UNDELIVERABLE,
	VIGIL_EV_MEMBER_RETURNED, /* a member believed dead came back (duration_ms) */
	VIGIL_EV_LOCAL_STALL,     /* this process was paused for duration_ms */
};
const char *vigil_event_name(enum vigil_event_type t); /* "member-join", ... */

struct vigil_event {
	enum vigil_event_type type;
	const struct vigil_member *member; /* member events; owner for will events */
	const char *name;                  /* user event / query name */
	const uint8_t *payload;
	size_t payload_len;
	uint64_t ltime;                    /* Lamport time (events, queries) */
	uint32_t id;                       /* query id */
	bool coalesce;
	int64_t duration_ms;               /* stall length; time believed dead */
	uint32_t incarnation;              /* will events: owner incarnation */
	uint64_t will_seq;                 /* will events: will sequence */
};

typedef void (*vigil_event_fn)(void *ctx, const struct vigil_event *ev);
typedef void (*vigil_log_fn)(void *ctx, int level, const char *msg); /* 0 debug..3 error */

struct vigil_config {
	char name[VIGIL_NAME_MAX + 1];
	char bind_addr[64];        /* "0.0.0.0" default; IPv6 literals fine */
	uint16_t bind_port;        /* 7946 */
	char advertise_addr[64];   /* "" = derive from bind address */
	uint16_t advertise_port;   /* 0 = bind port */

	/* memberlist DefaultLANConfig timings; see src/swim.h */
	int probe_interval_ms, probe_timeout_ms, gossip_interval_ms, gossip_nodes;
	int indirect_checks, retransmit_mult, suspicion_mult, suspicion_max_timeout_mult;
	int push_pull_interval_ms, awareness_max_multiplier;
	int64_t reap_interval_ms;  /* tombstones; serf's reconnect/tombstone 24 h */

	/* Encryption: base64 keys, first is primary; NULL/0 = plaintext. */
	const char *const *keys;
	size_t n_keys;
	const char *keyring_file;  /* serf's JSON keyring file; updated on rotation */
	bool gossip_verify_incoming, gossip_verify_outgoing; /* true, true */

	/* Serf layer */
	const struct vigil_tag *tags;
	size_t n_tags;
	int protocol_version;      /* serf protocol, default 4 */
	/* serf's -snapshot: alive members, Lamport clocks and a graceful leave
	 * are kept in this file (crash-safely rewritten, at most every 500 ms);
	 * on start the clocks are restored and, unless the file records a
	 * leave, the previously alive members are rejoined one after another
	 * until one answers (serf handleRejoin).  The will state lives in
	 * "<snapshot_path>.will".  NULL = none. */
	const char *snapshot_path;
	bool rejoin_after_leave;   /* serf -rejoin: ignore a recorded leave */

	vigil_event_fn on_event;
	vigil_log_fn on_log;
	void *ctx;
};

void vigil_config_default(struct vigil_config *cfg);
int vigil_create(const struct vigil_config *cfg, vigil_t **out, char *err, size_t errlen);
void vigil_destroy(vigil_t *v);

/* Event loop integration. */
int vigil_pollfds(vigil_t *v, struct pollfd *fds, int max);
int vigil_timeout_ms(vigil_t *v);      /* -1 = nothing scheduled */
void vigil_step(vigil_t *v);           /* never blocks */

/* Membership. "host:port" (port defaults to 7946); returns seeds contacted. */
int vigil_join(vigil_t *v, const char *const *addrs, size_t n);
/* Same; replay=true also runs handlers for user events from before the join
 * (serf agent -replay).  vigil_join() is replay=false, like serf. */
int vigil_join_ex(vigil_t *v, const char *const *addrs, size_t n, bool replay);
/*
 * Same, and track the outcome (like curl_multi_info_read): *join_id names
 * this join (0 if it could not be tracked: out of memory).
 * vigil_join_poll() then returns 0 while seeds are still being contacted,
 * 1 once every seed's push-pull has finished (at the latest the TCP timeout
 * plus a second after the start), with *joined = the seeds that answered
 * (serf Join's count; 0 means the join failed), and forgets the join; -1
 * for an unknown id.  The 64 newest joins are remembered.
 */
int vigil_join_begin(vigil_t *v, const char *const *addrs, size_t n, bool replay,
		     uint32_t *join_id);
int vigil_join_poll(vigil_t *v, uint32_t join_id, int *joined);
/* Start a graceful leave; keep stepping until vigil_leave_done(). */
int vigil_leave(vigil_t *v);
bool vigil_leave_done(vigil_t *v);
/*
 * Once vigil_leave_done: how many live members acknowledged the leave
 * (0: none could be reached, the cluster will see us fail rather than
 * leave); -1 if there was nobody to tell or the leave is not done.
 */
int vigil_leave_reached(vigil_t *v);
int vigil_force_leave(vigil_t *v, const char *node, bool prune);
/* Snapshot of the member list; free with vigil_members_free. */
int vigil_members(vigil_t *v, struct vigil_member **out, size_t *n);
void vigil_members_free(struct vigil_member *m, size_t n);
const char *vigil_name(vigil_t *v);

/* Tags: set/replace (n) and delete (keys), then gossip the new meta. */
int vigil_set_tags(vigil_t *v, const struct vigil_tag *set, size_t n_set,
		   const char *const *del, size_t n_del);

/* User events and queries (serf semantics). */
int vigil_user_event(vigil_t *v, const char *name, const uint8_t *payload,
		     size_t len, bool coalesce);
struct vigil_query_params {
	const char *const *filter_nodes; size_t n_filter_nodes;
	const char *const *filter_tags;  size_t n_filter_tags; /* "key", "regex" pairs */
	bool request_ack;
	int timeout_ms;                  /* 0 = serf's default */
	int relay_factor;
};
int vigil_query(vigil_t *v, const char *name, const uint8_t *payload, size_t len,
		const struct vigil_query_params *p, uint32_t *id_out);
int vigil_respond(vigil_t *v, uint32_t query_id, const uint8_t *payload, size_t len);

/* Last will (see docs/DESIGN.md). recipient_member xor event_name. */
int vigil_will_set(vigil_t *v, const char *recipient_member, const char *event_name,
		   int64_t delay_ms, const uint8_t *payload, size_t len);
int vigil_will_clear(vigil_t *v);
struct vigil_will_info {
	char owner[VIGIL_NAME_MAX + 1];
	char recipient[VIGIL_NAME_MAX + 1];  /* "" for event wills */
	char event[VIGIL_NAME_MAX + 1];      /* "" for member wills */
	int64_t delay_ms;
	uint64_t seq;
	uint8_t payload[VIGIL_WILL_MAX];
	size_t payload_len;
};
/* Wills known here; owner NULL = all. */
int vigil_will_list(vigil_t *v, const char *owner, struct vigil_will_info **out, size_t *n);

/*
 * Keyring, cluster-wide (serf's KeyManager: `serf keys`).  vigil_keys_op
 * sends the internal query _serf_install-key / _serf_use-key /
 * _serf_remove-key / _serf_list-keys to every member (this node included)
 * and collects the answers.  The operation is complete when every member
 * counted at the start (alive or suspect, ourselves included: memberlist's
 * NumMembers) has responded, or when the query timeout (serf's default,
 * 3.2 s up to 9 nodes) has passed; members that never answer are simply not
 * in num_resp.  Then cb runs once, from inside vigil_step() (never from
 * vigil_keys_op itself), with the result; its pointers are valid only
 * during the call.
 *
 * Returns 0 when the query was sent; -1 (and err) when it could not be:
 * b64key is not a base64 AES key (16/24/32 bytes), or the query could not
 * start.  Everything else -- no keyring, removing the primary key, using a
 * key a node lacks -- is reported per node in the result, as serf does.
 * vigil_destroy() drops pending operations without calling them back.
 */
enum vigil_keys_opcode {
	VIGIL_KEYS_INSTALL,
	VIGIL_KEYS_USE,
	VIGIL_KEYS_REMOVE,
	VIGIL_KEYS_LIST,      /* b64key unused (may be NULL) */
};
struct vigil_keys_message {   /* serf KeyResponse.Messages[node] */
	const char *node;
	const char *message;
};
struct vigil_keys_count {     /* base64 key -> number of nodes */
	const char *key;
	int count;
};
struct vigil_keys_result {
	enum vigil_keys_opcode op;
	int num_nodes;        /* members when the query started */
	int num_resp;         /* members that answered */
	int num_err;          /* answers reporting failure (or undecodable) */
	/* NULL on success, else serf's error text: "2/6 nodes reported
	 * failure" (num_err > 0) or "5/6 nodes reported success" (missing). */
	const char *error;
	const struct vigil_keys_message *messages; /* failures and warnings */
	size_t n_messages;
	/* VIGIL_KEYS_LIST: every key any node has, with how many have it */
	const struct vigil_keys_count *keys;
	size_t n_keys;
	const struct vigil_keys_count *primary_keys; /* "" = node without keyring */
	size_t n_primary_keys;
};
typedef void (*vigil_keys_done_fn)(void *ctx, const struct vigil_keys_result *r);
int vigil_keys_op(vigil_t *v, enum vigil_keys_opcode op, const char *b64key,
		  vigil_keys_done_fn cb, void *ctx, char *err, size_t errlen);
/* Forget the pending operations started with ctx: cb is not called. */
void vigil_keys_cancel(vigil_t *v, void *ctx);
const char *vigil_keys_op_name(enum vigil_keys_opcode op); /* "install-key", ... */
/* This node's own keyring, primary first; free each + array. */
int vigil_keys_list(vigil_t *v, char ***keys_out, size_t *n);

/* Stats for metrics / `serf info`: name/value pairs, NULL-terminated. */
struct vigil_stat { const char *name; double value; };
int vigil_stats(vigil_t *v, struct vigil_stat *out, int max);

#ifdef __cplusplus
}
#endif
#endif
