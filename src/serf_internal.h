/*
 * serf_internal.h — the serf layer's state and the helpers its files share:
 * serf.c (the layer core: Lamport clocks, member intents, user events,
 * push-pull, timers) and serf_query.c (queries: filters, relays, acks and
 * responses).  Private to those files.
 */
#ifndef VIGIL_SERF_INTERNAL_H
#define VIGIL_SERF_INTERNAL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serf.h"
#include "mpack.h"

/* serf's UserEventSizeLimit: the hard cap on name + payload. */
#define SL_USER_EVENT_HARD_LIMIT (9 * 1024)
/*
 * Bounds on tables a peer can grow.  Serf has none; we cap them so a
 * hostile or buggy peer cannot exhaust memory.  Refusing (rather than
 * evicting) keeps dedup sound: an event we refuse is not delivered and not
 * rebroadcast, so it cannot loop.
 */
#define SL_INTENTS_MAX 8192
#define SL_SLOT_EVENTS_MAX 128   /* user events per Lamport time */
#define SL_SLOT_QUERIES_MAX 128  /* query ids per Lamport time */
#define SL_INQUERIES_MAX 1024    /* incoming queries awaiting a response */
#define SL_MYQUERIES_MAX 256     /* our own open queries */
#define SL_QUERY_TIMEOUT_MAX_MS (24LL * 3600 * 1000)

enum sl_state { SL_ALIVE, SL_LEAVING };

struct sl_member {
	struct vigil_member m;  /* what listings and events show */
	struct wire_addr addr;
	uint64_t status_ltime;  /* Lamport time of the last intent applied */
	int64_t leave_time;     /* when it became failed/left (ms) */
	int64_t prune_at;       /* force-leave prune of a leaving member; 0 = none */
};

struct sl_intent {
	char name[WIRE_NAME_MAX + 1];
	uint8_t type;           /* SERF_MSG_JOIN or SERF_MSG_LEAVE */
	uint64_t ltime;
	int64_t wall;
};

struct sl_uevent {
	char *name;
	uint8_t *payload;
	size_t len;
};

struct sl_event_slot {
	bool used;
	uint64_t ltime;
	size_t n;
	struct sl_uevent *ev;
};

struct sl_query_slot {
	bool used;
	uint64_t ltime;
	size_t n;
	uint32_t *ids;
};

/* One of our own queries, collecting acks and responses. */
struct sl_myquery {
	uint64_t ltime;
	uint32_t id;
	char *name;
	int64_t deadline;
	bool ack;
	char **acks;
	size_t n_acks;
	char **resps;
	size_t n_resps;
	serf_query_result_fn cb;
	void *cb_ctx;
};

/* A query someone else started that we may still respond to. */
struct sl_inquery {
	uint32_t id;
	uint64_t ltime;
	struct wire_addr addr;
	char source[WIRE_NAME_MAX + 1];
	uint8_t relay_factor;
	int64_t deadline;
};

struct serf_layer {
	struct serf_layer_config cfg;   /* cfg.tags points at our copy */
	struct vigil_tag *tags;
	size_t n_tags;
	enum sl_state state;

	uint64_t clock, event_clock, query_clock;
	uint64_t event_min_time, query_min_time;
	bool join_ignore_old;        /* we are joining without -replay */

	struct sl_member **members;     /* sorted by name */
	size_t n_members, cap_members;

	struct sl_intent *intents;      /* sorted by name */
	size_t n_intents, cap_intents;

	struct sl_event_slot *events;   /* cfg.event_buffer slots */
	struct sl_query_slot *queries;  /* cfg.query_buffer slots */

	struct sl_myquery *myq;
	size_t n_myq, cap_myq;
	struct sl_inquery *inq;
	size_t n_inq, cap_inq;

	struct serf_extension ext;
	bool have_ext;

	bool armed;
	int64_t next_reap, next_reconnect;
	/* no member's prune_at is before this (INT64_MAX: none): the loop
	 * asks for the next deadline after every datagram, and scanning every
	 * member for it was a sixth of an agent's CPU at 1,000 members */
	int64_t next_prune;
	uint64_t rng;
	struct serf_stats stats;
};

/* ------------------------------------------------------------------ */
/* serf.c: helpers the query code shares                              */

__attribute__((format(printf, 3, 4)))
void sl_log(const struct serf_layer *sl, int level, const char *fmt, ...);
uint64_t sl_rand(struct serf_layer *sl);
void sl_clock_witness(uint64_t *c, uint64_t v);
uint64_t sl_clock_tick(uint64_t *c);
/* Whether a peer's Lamport time is believable against our clock. */
bool sl_ltime_plausible(struct serf_layer *sl, uint64_t clock, uint64_t ltime);
/* Start the timers on first use. */
void sl_arm(struct serf_layer *sl, int64_t now);
struct sl_member *sl_member_find(const struct serf_layer *sl, const char *name);
void sl_emit(struct serf_layer *sl, const struct vigil_event *ev);
/* Gossip a message to the cluster. */
void sl_broadcast(struct serf_layer *sl, const uint8_t *p, size_t len);
/* Unpack one msgpack value (SERF_OK, or SERF_EFORMAT / SERF_ENOMEM with u
 * destroyed); *used, if not NULL, gets its length. */
int sl_unpack(const uint8_t *p, size_t len, msgpack_unpacked *u, size_t *used);

/* A go-msgpack []byte or string field as a wire_bytes view (nil: empty). */
static inline bool mp_bytes(const msgpack_object *o, struct wire_bytes *b)
{
	return mpack_go_bytes(o, &b->p, &b->len);
}


/* ------------------------------------------------------------------ */
/* serf_codec.c: serf's messages                                      */

/* A sorted, deep copy of n tags (serf_tags_free frees it). */
int serf_tags_copy(const struct vigil_tag *in, size_t n, struct vigil_tag **out, size_t *nout);
/* A join or leave intent (type SERF_MSG_JOIN / _LEAVE), type byte first,
 * into e (initialised here; freed here on failure). */
int serf_encode_intent(struct mpack_enc *e, uint8_t type, uint64_t ltime, const char *node,
		       bool prune);
/* A serf message body, a Go struct as a map: each entry goes to field
 * (with out), which ignores keys it does not know by returning true, and
 * refuses a value by returning false (then SERF_EFORMAT). */
typedef bool (*serf_field_fn)(void *out, const msgpack_object *key, const msgpack_object *val);
int serf_decode_fields(const msgpack_object *o, serf_field_fn field, void *out);
/* An intent's body; node gets the member name (WIRE_NAME_MAX + 1 bytes). */
int serf_decode_intent(const msgpack_object *o, uint64_t *ltime, char *node, bool *prune);
/* A user event's body, as views into o. */
int serf_decode_user_event(const msgpack_object *o, uint64_t *ltime,
			   struct wire_bytes *name, struct wire_bytes *payload, bool *cc);

/* ------------------------------------------------------------------ */
/* serf_query.c: what the layer core calls                             */

/* A messageQuery body (o): handled as serf's handleQuery; true = rebroadcast. */
bool serf_query_on_msg(struct serf_layer *sl, const msgpack_object *o, int64_t now);
/* A messageQueryResponse body: an ack or response to one of our queries. */
void serf_query_on_response(struct serf_layer *sl, const msgpack_object *o, int64_t now);
/* A messageRelay (after its type byte): forward the response it carries. */
void serf_query_on_relay(struct serf_layer *sl, const uint8_t *p, size_t len, int64_t now);
/* Close our queries and forget others' whose time is up. */
void serf_query_expire(struct serf_layer *sl, int64_t now);
/* The earlier of d and the next query deadline. */
int64_t serf_query_next_deadline(const struct serf_layer *sl, int64_t d);
/* Every query table (serf_layer_free). */
void serf_query_free_all(struct serf_layer *sl);

#endif
