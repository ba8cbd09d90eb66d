/*
 * vigil.h — libvigil, an embeddable cluster membership and failure
 * detection library, wire-compatible with HashiCorp Serf / memberlist.
 * Semantics of membership, wills and stall awareness: docs/DESIGN.md;
 * the ABI rule: docs/ABI.md; the reference: libvigil(3).
 *
 * Build against it with pkg-config:
 *     cc prog.c $(pkg-config --cflags --libs vigil)
 *     cc -static prog.c $(pkg-config --static --cflags --libs vigil)
 *
 * The library never owns the event loop (like curl's multi API): ask it
 * which fds to wait on (vigil_pollfds) and for how long (vigil_timeout_ms),
 * wait however you like, then call vigil_step().  It reports what happened
 * through one callback.  A complete epoll program: examples/epoll_embed.c.
 *
 *     struct vigil_config cfg;
 *     vigil_config_default(&cfg);
 *     snprintf(cfg.name, sizeof cfg.name, "node-a");
 *     vigil_t *v;  char err[256];
 *     if (vigil_create(&cfg, &v, err, sizeof err) != VIGIL_OK) die(err);
 *     if (vigil_join(v, (const char *[]){"10.0.0.2:7946"}, 1) < 0)
 *         die(vigil_last_error(v));
 *     struct pollfd fds[VIGIL_POLLFDS_HINT];
 *     for (;;) {
 *         int n = vigil_pollfds(v, fds, VIGIL_POLLFDS_HINT);
 *         poll(fds, n < VIGIL_POLLFDS_HINT ? n : VIGIL_POLLFDS_HINT,
 *              vigil_timeout_ms(v));
 *         vigil_step(v);
 *     }
 *
 * ---- Contract -------------------------------------------------------
 *
 * Errors.  Every call that can fail returns an enum vigil_err code (< 0) on
 * failure (calls that return a count return the count, >= 0, on success)
 * and records a message saying what was wrong in the handle:
 * vigil_last_error(v).  A failed call changes no state.  vigil_strerror()
 * names a code.  vigil_create, which has no handle yet, writes its message
 * into the caller's err buffer.
 *
 * Threads.  A vigil_t is not thread-safe: call it from one thread at a time
 * (normally the loop's).  Distinct handles are independent and may be used
 * from different threads.  The library starts a short-lived thread only to
 * resolve host names given to vigil_join* (below); callbacks never run on it.
 *
 * Callbacks.  on_event and vigil_keys_op's callback run on the caller's
 * thread, only from inside vigil_step(), and never re-entrantly.  Events
 * raised inside any other call -- vigil_create (our own member-join, a will
 * state loaded from disk: the caller has no handle yet), vigil_user_event
 * (serf delivers our own event to us too), vigil_set_tags, vigil_leave --
 * or by a call made from within a callback are held (copied) and delivered
 * in order by the next vigil_step(); vigil_timeout_ms() returns 0 while any
 * are held.  So on_event never runs before vigil_create has returned.
 * From on_event and the keys callback you may call every function on the
 * same handle except vigil_destroy() (vigil_step() there does nothing).  on_log runs from
 * any call that logs (vigil_create included) and must not call the library.
 *
 * Lifetimes.  Everything an event points to (ev->member and its tags,
 * ev->name, ev->payload) is valid only during the callback: copy what you
 * keep.  vigil_create copies the config and every string and array it
 * points to (keys, tags, keyring_file, snapshot_path); they may be freed
 * when it returns.  Lists the library returns are the caller's and each has
 * its free function: vigil_members_free, vigil_will_list_free,
 * vigil_keys_list_free.
 *
 * Blocking.  Nothing waits on the network.  vigil_join* parses numeric
 * addresses at once and resolves host names on a helper thread; the
 * result is picked up by a later vigil_step() (the helper wakes the loop
 * through one of the fds vigil_pollfds reports).  What can take time is
 * disk I/O with snapshot_path or keyring_file set: the snapshot and will
 * state are rewritten and fsync'd from vigil_step() at most every 500 ms,
 * and on vigil_leave/vigil_destroy.  Without those paths no call touches
 * the disk.
 *
 * Stalls.  Call vigil_step() when an fd is readable or the timeout passes;
 * the timeout is never more than a gossip interval (200 ms by default) away
 * while members exist.  If the process is frozen (SIGSTOP, VM pause,
 * suspend, a loop blocked elsewhere) for more than 3 probe intervals past
 * the deadline, the next step reports VIGIL_EV_LOCAL_STALL, discards timers
 * that expired meanwhile instead of accusing peers on stale information,
 * and refutes any rumour of our own death (docs/DESIGN.md, stall awareness).
 * The cluster may still have declared us failed in the meantime.
 *
 * Timing defaults (memberlist's DefaultLANConfig, what vigil_config_default
 * fills in): probe interval 1000 ms, probe timeout 500 ms, gossip interval
 * 200 ms to 3 nodes, 3 indirect checks, retransmit multiplier 4, suspicion
 * multiplier 4 (max timeout 6x), push-pull every 30 s, awareness up to 8,
 * tombstones reaped after 24 h.  A member that stops answering is suspected
 * after one probe round and declared failed after the suspicion timeout
 * (about 4 * log10(n) * probe interval, at least 5 s with few members).
 *
 * ABI (docs/ABI.md).  The soname's number is VIGIL_VERSION_MAJOR and only
 * changes when the ABI breaks.  vigil_t is opaque.  New functions and enum
 * values may appear in minor versions; new fields are only ever added at the
 * end of structs the library fills in or the caller initialises through the
 * library (vigil_config_default), never in the middle.
 *
 * Extending the API: declare the function here with VIGIL_API (nothing else
 * is exported from the shared library), return enum vigil_err codes, record
 * the message with the handle's last error, and give returned lists a
 * *_free function.
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

/* Marks the public API: the library is compiled with hidden visibility,
 * so only declarations carrying this are exported. */
#if defined(__GNUC__)
#define VIGIL_API __attribute__((visibility("default")))
#else
#define VIGIL_API
#endif

#define VIGIL_VERSION_MAJOR 1
#define VIGIL_VERSION_MINOR 0
#define VIGIL_VERSION_PATCH 0
/* Compare against VIGIL_VERSION_NUM(1, 2, 0) for compile-time checks. */
#define VIGIL_VERSION_NUM(a, b, c) ((a) * 10000 + (b) * 100 + (c))
#define VIGIL_VERSION_NUMBER VIGIL_VERSION_NUM(VIGIL_VERSION_MAJOR, VIGIL_VERSION_MINOR, \
					       VIGIL_VERSION_PATCH)
#define VIGIL_STRINGIFY_(x) #x
#define VIGIL_STRINGIFY(x) VIGIL_STRINGIFY_(x)
#define VIGIL_VERSION_STRING VIGIL_STRINGIFY(VIGIL_VERSION_MAJOR) "." \
	VIGIL_STRINGIFY(VIGIL_VERSION_MINOR) "." VIGIL_STRINGIFY(VIGIL_VERSION_PATCH)
/* The version of the library actually loaded (VIGIL_VERSION_NUMBER form,
 * which may be newer than the header you compiled with); its
 * VIGIL_VERSION_STRING in *str if str is not NULL. */
VIGIL_API int vigil_version(const char **str);

/*
 * Error codes.  0 is success; failures are negative so that calls
 * returning a count can return either.  Numbers never change meaning.
 */
enum vigil_err {
	VIGIL_OK = 0,
	VIGIL_ERR_INVALID = -1,   /* bad argument: NULL, empty, wrong combination */
	VIGIL_ERR_NOMEM = -2,
	VIGIL_ERR_TOO_LARGE = -3, /* over a size limit (user event 512 B, will 1 KiB, ...) */
	VIGIL_ERR_RANGE = -4,     /* a number out of range (negative delay, version) */
	VIGIL_ERR_ADDRESS = -5,   /* address could not be parsed or resolved */
	VIGIL_ERR_SOCKET = -6,    /* socket could not be opened or bound */
	VIGIL_ERR_STATE = -7,     /* not allowed now (after leave, already answered) */
	VIGIL_ERR_NOT_FOUND = -8, /* unknown query id, node, ... */
	VIGIL_ERR_KEY = -9,       /* bad encryption key or keyring file */
	VIGIL_ERR_IO = -10,       /* snapshot / keyring / will state file */
	VIGIL_ERR_PROTOCOL = -11, /* needs a newer serf protocol version */
	VIGIL_ERR_BUFFER = -12,   /* caller's buffer too small */
};
/* Static text for a code ("invalid argument"); never NULL. */
VIGIL_API const char *vigil_strerror(int code);

#define VIGIL_NAME_MAX 128
#define VIGIL_WILL_MAX 1024
/* Longest will delay: a year (a sanity bound, not a protocol limit). */
#define VIGIL_WILL_DELAY_MAX_MS (366LL * 24 * 3600 * 1000)
#define VIGIL_MAX_TAGS 64
/* serf's UserEventSizeLimit: name + payload of a user event. */
#define VIGIL_USER_EVENT_MAX 512
/* Enough pollfd slots for the usual case (vigil_pollfds says if not). */
#define VIGIL_POLLFDS_HINT 8

typedef struct vigil vigil_t;

/* Serf's member status names, as `serf members` prints them. */
enum vigil_status {
	VIGIL_STATUS_NONE = 0,
	VIGIL_STATUS_ALIVE,
	VIGIL_STATUS_LEAVING,
	VIGIL_STATUS_LEFT,
	VIGIL_STATUS_FAILED,
};
VIGIL_API const char *vigil_status_name(enum vigil_status s); /* "alive", "failed", ... */

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
VIGIL_API const char *vigil_event_name(enum vigil_event_type t); /* "member-join", ... */

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

	/* memberlist DefaultLANConfig timings (defaults: see "Timing defaults"
	 * at the top); 0 or negative = the default, except push_pull_interval_ms
	 * where 0 disables periodic push-pull. */
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
	/* The Ed25519 key that signs this member's will messages; it is the
	 * member's will identity, so keep it across restarts
	 * (docs/SECURITY.md).  will_key_seed: 32 bytes the embedder keeps;
	 * else will_key_file, created on first start; else
	 * "<snapshot_path>.will.key"; else a key for this run only. */
	const uint8_t *will_key_seed;
	const char *will_key_file;
	/* serf -disable-coordinates: no Vivaldi coordinate in our acks, none
	 * kept for others (vigil_get_coordinate finds nothing). */
	bool disable_coordinates;

	vigil_event_fn on_event;
	vigil_log_fn on_log;
	void *ctx;
};

/* Fill cfg with the defaults (host name as node name, 0.0.0.0:7946). */
VIGIL_API void vigil_config_default(struct vigil_config *cfg);
/*
 * Open the sockets and start a node.  Returns VIGIL_OK and *out, or an
 * error code with *out = NULL and a message in err (if errlen > 0):
 * VIGIL_ERR_INVALID (empty or too long name, NULL), VIGIL_ERR_RANGE
 * (protocol_version not 2..5), VIGIL_ERR_SOCKET (cannot bind),
 * VIGIL_ERR_ADDRESS (bad bind/advertise address), VIGIL_ERR_KEY,
 * VIGIL_ERR_TOO_LARGE (tags over 512 bytes of node meta), VIGIL_ERR_IO
 * (snapshot not writable), VIGIL_ERR_NOMEM.  No callback runs inside it.
 */
VIGIL_API int vigil_create(const struct vigil_config *cfg, vigil_t **out, char *err, size_t errlen);
/* Close sockets, free everything; no callback runs.  Does not leave: call
 * vigil_leave() and step until vigil_leave_done() first for a graceful exit.
 * A name resolution in flight is abandoned (its thread exits on its own). */
VIGIL_API void vigil_destroy(vigil_t *v);
/* Message of the most recent failed call on v ("" if none failed yet).
 * Valid until the next call on v. */
VIGIL_API const char *vigil_last_error(vigil_t *v);

/*
 * Event loop integration.
 *
 * vigil_pollfds fills fds[0..max-1] with the fds to wait on (events set,
 * revents cleared) and returns how many it needs, like snprintf and
 * curl_multi_waitfds: if that is more than max, only max were filled
 * (vigil_last_error says so) -- grow the array and call again.
 * vigil_pollfds(v, NULL, 0) just returns the count.  The count changes from
 * call to call (TCP connections come and go); ask before every wait.  If
 * you poll fewer than it needs, vigil_step() still services every socket,
 * and vigil_timeout_ms() then caps the wait at 10 ms so none starves.
 * Returns VIGIL_ERR_INVALID for a NULL v, or fds NULL with max > 0.
 */
VIGIL_API int vigil_pollfds(vigil_t *v, struct pollfd *fds, int max);
/* Milliseconds until vigil_step() is due: 0 = now, -1 = nothing scheduled. */
VIGIL_API int vigil_timeout_ms(vigil_t *v);
/* Read every ready socket, run due timers, deliver events.  Never waits. */
VIGIL_API void vigil_step(vigil_t *v);

/*
 * Membership.  Seeds are "host:port", "ip:port", "[v6]:port" or without
 * port (7946).  Numeric addresses are used at once; host names are
 * resolved on a helper thread and joined from a later vigil_step() (serf
 * resolves them the same way, but blocking).  Returns the number of seeds
 * accepted -- numeric ones plus names being resolved -- or an error code
 * with nothing started: VIGIL_ERR_INVALID (NULL), VIGIL_ERR_ADDRESS (no
 * seed could be parsed), VIGIL_ERR_NOMEM.  A name that does not resolve is
 * logged and counts as a failed seed for vigil_join_poll().
 */
VIGIL_API int vigil_join(vigil_t *v, const char *const *addrs, size_t n);
/* Same; replay=true also runs handlers for user events from before the join
 * (serf agent -replay).  vigil_join() is replay=false, like serf. */
VIGIL_API int vigil_join_ex(vigil_t *v, const char *const *addrs, size_t n, bool replay);
/*
 * Same, and track the outcome (like curl_multi_info_read): *join_id names
 * this join (0 if it could not be tracked: out of memory).
 * vigil_join_poll() then returns 0 while seeds are still being contacted,
 * 1 once every seed's push-pull has finished (at the latest the TCP timeout
 * plus a second after the start), with *joined = the seeds that answered
 * (serf Join's count; 0 means the join failed), and forgets the join;
 * VIGIL_ERR_NOT_FOUND for an unknown id.  The 64 newest joins are
 * remembered.  A seed given as a host name counts from when it resolved.
 */
VIGIL_API int vigil_join_begin(vigil_t *v, const char *const *addrs, size_t n, bool replay,
		     uint32_t *join_id);
VIGIL_API int vigil_join_poll(vigil_t *v, uint32_t join_id, int *joined);
/* Start a graceful leave; keep stepping until vigil_leave_done(). */
VIGIL_API int vigil_leave(vigil_t *v);
VIGIL_API bool vigil_leave_done(vigil_t *v);
/*
 * Once vigil_leave_done: how many live members acknowledged the leave
 * (0: none could be reached, the cluster will see us fail rather than
 * leave); -1 if there was nobody to tell or the leave is not done.
 */
VIGIL_API int vigil_leave_reached(vigil_t *v);
VIGIL_API int vigil_force_leave(vigil_t *v, const char *node, bool prune);
/* force_leave: VIGIL_ERR_INVALID (node NULL); an unknown node is not an
 * error (serf broadcasts the intent anyway). */
/* Snapshot of the member list; free with vigil_members_free.
 * VIGIL_ERR_INVALID (out or n NULL), VIGIL_ERR_NOMEM. */
VIGIL_API int vigil_members(vigil_t *v, struct vigil_member **out, size_t *n);
VIGIL_API void vigil_members_free(struct vigil_member *m, size_t n);
VIGIL_API const char *vigil_name(vigil_t *v);

/* Tags: set/replace (n) and delete (keys), then gossip the new meta.
 * VIGIL_ERR_INVALID (NULL array, NULL key or value; nothing changes),
 * VIGIL_ERR_TOO_LARGE (the tags would not fit in 512 bytes of node meta). */
VIGIL_API int vigil_set_tags(vigil_t *v, const struct vigil_tag *set, size_t n_set,
		   const char *const *del, size_t n_del);

/* User events and queries (serf semantics).  vigil_user_event returns
 * VIGIL_ERR_TOO_LARGE when name + payload exceed VIGIL_USER_EVENT_MAX,
 * VIGIL_ERR_INVALID for a NULL name (or NULL payload with len > 0). */
VIGIL_API int vigil_user_event(vigil_t *v, const char *name, const uint8_t *payload,
		     size_t len, bool coalesce);
struct vigil_query_params {
	const char *const *filter_nodes; size_t n_filter_nodes;
	/* "key", "regex" pairs (Go regexp, unanchored, as serf); n_filter_tags
	 * counts the strings: 2 per pair */
	const char *const *filter_tags;  size_t n_filter_tags;
	bool request_ack;
	int timeout_ms;                  /* 0 = serf's default */
	int relay_factor;
};
/* vigil_query: VIGIL_ERR_INVALID (bad params), VIGIL_ERR_TOO_LARGE (over
 * 1024 bytes encoded), VIGIL_ERR_PROTOCOL (protocol_version < 4),
 * VIGIL_ERR_STATE (256 of our queries already pending).  vigil_respond:
 * VIGIL_ERR_NOT_FOUND (no such query pending), VIGIL_ERR_STATE (its
 * timeout passed), VIGIL_ERR_TOO_LARGE. */
VIGIL_API int vigil_query(vigil_t *v, const char *name, const uint8_t *payload, size_t len,
		const struct vigil_query_params *p, uint32_t *id_out);
VIGIL_API int vigil_respond(vigil_t *v, uint32_t query_id, const uint8_t *payload, size_t len);

/* Last will (see docs/DESIGN.md). recipient_member xor event_name. */
VIGIL_API int vigil_will_set(vigil_t *v, const char *recipient_member, const char *event_name,
		   int64_t delay_ms, const uint8_t *payload, size_t len);
VIGIL_API int vigil_will_clear(vigil_t *v);
struct vigil_will_info {
	char owner[VIGIL_NAME_MAX + 1];
	char recipient[VIGIL_NAME_MAX + 1];  /* "" for event wills */
	char event[VIGIL_NAME_MAX + 1];      /* "" for member wills */
	int64_t delay_ms;
	uint64_t seq;
	uint8_t payload[VIGIL_WILL_MAX];
	size_t payload_len;
};
/*
 * vigil_will_set returns VIGIL_OK, or: VIGIL_ERR_INVALID (neither or both of
 * recipient and event, recipient is ourselves, payload NULL with len > 0),
 * VIGIL_ERR_RANGE (delay_ms negative or over a year), VIGIL_ERR_TOO_LARGE
 * (payload over VIGIL_WILL_MAX, name over VIGIL_NAME_MAX).
 */
/* Wills known here; owner NULL = all.  Free with vigil_will_list_free. */
VIGIL_API int vigil_will_list(vigil_t *v, const char *owner, struct vigil_will_info **out,
			      size_t *n);
VIGIL_API void vigil_will_list_free(struct vigil_will_info *list, size_t n);

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
 * Returns VIGIL_OK when the query was sent, or a code (message in err and
 * vigil_last_error) when it could not be: VIGIL_ERR_KEY (b64key is not a
 * base64 AES key of 16/24/32 bytes), VIGIL_ERR_INVALID (cb NULL, bad op),
 * or the query could not start (vigil_query's codes).  Everything else -- no keyring, removing the primary key, using a
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
VIGIL_API int vigil_keys_op(vigil_t *v, enum vigil_keys_opcode op, const char *b64key,
		  vigil_keys_done_fn cb, void *ctx, char *err, size_t errlen);
/* Forget the pending operations started with ctx: cb is not called. */
VIGIL_API void vigil_keys_cancel(vigil_t *v, void *ctx);
VIGIL_API const char *vigil_keys_op_name(enum vigil_keys_opcode op); /* "install-key", ... */
/* This node's own keyring, primary first; free with vigil_keys_list_free. */
VIGIL_API int vigil_keys_list(vigil_t *v, char ***keys_out, size_t *n);
VIGIL_API void vigil_keys_list_free(char **keys, size_t n);

/* Stats for metrics / `serf info`: name/value pairs, NULL-terminated;
 * returns how many were written.  An array too small for all of them (and
 * the terminator) is filled as far as it goes and vigil_last_error() says
 * so (64 entries are plenty today). */
struct vigil_stat { const char *name; double value; };
VIGIL_API int vigil_stats(vigil_t *v, struct vigil_stat *out, int max);

/* A Vivaldi network coordinate, as serf's coordinate.Coordinate (seconds). */
#define VIGIL_COORD_MAX_DIM 8
struct vigil_coord {
	unsigned dim;
	double vec[VIGIL_COORD_MAX_DIM];
	double error, adjustment, height;
};
/* serf GetCachedCoordinate: our own coordinate for our name, else the one
 * `node` last sent in an ack.  0 found, -1 not (or coordinates disabled). */
VIGIL_API int vigil_get_coordinate(vigil_t *v, const char *node, struct vigil_coord *out);
/* serf Coordinate.DistanceTo, in seconds (dimensions must match, else -1). */
VIGIL_API double vigil_coord_distance(const struct vigil_coord *a, const struct vigil_coord *b);

#ifdef __cplusplus
}
#endif
#endif
