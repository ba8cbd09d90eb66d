/*
 * will.h — last wills (docs/DESIGN.md, "Last will"), I/O-free.
 *
 * Every member may register one will: a payload (<= VIGIL_WILL_MAX bytes)
 * for one member or for a user-event name, released `delay` after the
 * owner is confirmed dead.  The component replicates wills, watches swim's
 * member events, and delivers each will exactly once at its recipient.
 *
 * Like swim.c and serf.c it does no network I/O and reads no clock: time
 * comes in as int64 ms, messages leave through struct will_outbox (the glue
 * maps them to serf_layer_ext_broadcast / serf_layer_ext_send /
 * serf_layer_user_event), events go to the vigil_event_fn.  The only I/O is
 * the optional state file (will_save / will_load), which holds what must
 * survive a restart: our own will and sequence, and which wills were
 * delivered here (so a restart never delivers one twice).
 *
 * Protocol (serf extension messages, type byte + one msgpack array).  Every
 * message is signed (Ed25519, will_key.h) by the member that may say it,
 * over "vigil-will-v1" | type byte | the msgpack array of its fields before
 * pubkey (canonical: re-encoded by the receiver from what it decoded):
 *   WILL_MSG_VERSION  200  [owner, seq, tomb, kind, target, delay_ms, payload,
 *                           pubkey, sig]                  signed by owner
 *       A will version.  The owner broadcasts it on set/clear (clear = a
 *       tombstone version); a member that learns a newer version gossips it
 *       on once, and every member sends all versions it holds in push-pull,
 *       so late joiners and anti-entropy get them.  Newest seq per owner
 *       wins; seq is monotonic per owner across restarts, never past
 *       WILL_SEQ_MAX, never more than WILL_SEQ_JUMP_MAX at once.  Seq 0 is a
 *       tombstone that only says "no will, and this is my key": every
 *       member has one until it sets a will.
 *   WILL_MSG_DELIVER  201  [owner's signed version (as 200), inc, sender]
 *       Unicast by a holder to the recipient once the will is due.
 *   WILL_MSG_DONE     202  [owner, inc, seq, kind, by, pubkey, sig]  by `by`
 *       Broadcast by the recipient once it has the will ("delivered"), or
 *       by the publisher of an event will ("published"); holders record it
 *       and stop sending.
 *   WILL_MSG_DUE      203  [owner, inc, by, pubkey, sig]             by `by`
 *       Broadcast by a member whose delay ran out; members that also saw
 *       that death release at once, so sender/publisher schedules start
 *       together rather than spread over the failure detector's skew.
 * Push-pull state is one record of type 200 whose body is a msgpack array
 * of version arrays, and one of type 202 with recent DONE arrays.
 *
 * Keys (docs/SECURITY.md, "Wills"): a member name is bound to the first
 * public key seen for it, from a correctly signed message, while swim
 * reports that name as a member (trust on first use); the binding is
 * persisted and only dropped when swim reaps the member.  A message with
 * another key, no key we know, or a bad signature is refused and counted,
 * as is every message of the unsigned protocol.  A delivery needs the
 * owner's key bound beforehand, and is only run while this member itself
 * holds the owner dead; a DONE only counts from the will's recipient (or
 * any member for an event will) and for a death this member does not
 * contradict (it does not see the owner alive at that incarnation).
 *
 * Delivery (key: owner, owner incarnation at death, will seq):
 *   - trigger only on SWIM_EV_LEAVE with state SWIM_DEAD (never SWIM_LEFT);
 *     release `delay` after this member saw the death; SWIM_EV_JOIN of the
 *     owner before that cancels;
 *   - member will: the recipient, if it holds the will, delivers to itself;
 *     every other holder sends DELIVER, ranked by name among the alive
 *     members (rank r waits r * sender_backoff_ms), retrying with
 *     exponential backoff until a DONE is seen.  The recipient dedups per
 *     owner death and persists that, emits VIGIL_EV_MEMBER_WILL once, and
 *     broadcasts DONE.  A recipient that is dead when the will is due is
 *     waited for up to reap_interval_ms; then each waiting holder raises
 *     VIGIL_EV_WILL_UNDELIVERABLE once;
 *   - event will: the alive members (owner excluded) ranked by name; rank r
 *     publishes at release + r * takeover_ms unless a DONE was seen first,
 *     so when the lowest dies before publishing the next one takes over;
 *   - the owner coming back after release: VIGIL_EV_MEMBER_RETURNED on each
 *     member that released or saw it delivered, VIGIL_EV_WILL_REVOKED at the
 *     recipient that delivered it.
 */
#ifndef VIGIL_WILL_H
#define VIGIL_WILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serf.h"
#include "swim.h"
#include "vigil.h"
#include "wire.h"

#define WILL_SEQ_MAX (1ULL << 53)        /* a will's sequence never goes past */
#define WILL_SEQ_JUMP_MAX (1ULL << 24)   /* most a version may skip at once */
/* Wills held for others: at most this many bytes, each counted as payload
 * + 512 (its record and allocation; so 8 MiB is ~5,400 full 1 KiB wills, or
 * the key records of ~16,000 members without a will); a version that would
 * go over is refused and counted.  Push-pull state (~1.2 KiB per full will)
 * stays well under memberlist's 20 MiB limit. */
#define WILL_HOLD_MAX_BYTES (8u * 1024 * 1024)
#define WILL_BINDINGS_MAX 16384          /* member keys remembered */
#define WILL_ACKS_MAX 16384              /* others' DONE markers remembered */

enum will_msg_type {
	WILL_MSG_VERSION = SERF_EXT_TYPE_MIN,     /* 200 */
	WILL_MSG_DELIVER = SERF_EXT_TYPE_MIN + 1, /* 201 */
	WILL_MSG_DONE = SERF_EXT_TYPE_MIN + 2,    /* 202 */
	WILL_MSG_DUE = SERF_EXT_TYPE_MIN + 3,     /* 203 */
};

enum will_error {
	WILL_OK = 0,
	WILL_EINVAL = -1,   /* bad argument */
	WILL_ETOOBIG = -2,  /* payload or name over its limit */
	WILL_ENOMEM = -3,
	WILL_EFORMAT = -4,  /* malformed message or state file */
	WILL_EIO = -5,      /* state file could not be read or written */
	WILL_ENOENT = -6,   /* no state file (not an error for a first start) */
};

/* Where messages leave the component. */
struct will_outbox {
	void *ctx;
	/* Gossip an extension message to everyone (serf_layer_ext_broadcast). */
	void (*broadcast)(void *ctx, const uint8_t *msg, size_t len);
	/* Send one to an address (serf_layer_ext_send). */
	void (*send_to)(void *ctx, const struct wire_addr *to, const uint8_t *msg,
			size_t len);
	/*
	 * Publish a serf user event (serf_layer_user_event, coalesce false).
	 * Returns 0 or a negative error (e.g. over serf's size limit).
	 */
	int (*user_event)(void *ctx, const char *name, const uint8_t *payload,
			  size_t len, int64_t now);
	void (*log)(void *ctx, int level, const char *msg); /* optional */
};

struct will_config {
	char name[WIRE_NAME_MAX + 1];   /* our member name */
	int64_t reap_interval_ms;       /* 24 h: how long a due will waits */
	int64_t sender_backoff_ms;      /* 2000: extra wait per sender rank */
	int64_t retry_ms;               /* 1000: first DELIVER retry ... */
	int64_t retry_max_ms;           /* 60000: ... doubling up to this */
	int64_t takeover_ms;            /* 5000: event-will publisher takeover */
	/*
	 * State file, saved (write temp + fsync + rename) before anything that
	 * must survive a crash takes effect.  NULL = keep state in memory only.
	 * Copied.  Load it with will_load() right after will_new().
	 */
	const char *state_path;
	/*
	 * Our signing key (restart-stable: a new key is a new identity, which
	 * the others refuse until they reap the old one): key_seed when
	 * has_key_seed (an embedder keeping its own), else the file key_path,
	 * else "<state_path>.key"; created on first start.  With neither a seed
	 * nor a path, a key for this run only.
	 */
	bool has_key_seed;
	uint8_t key_seed[32];
	const char *key_path;
	vigil_event_fn on_event;
	void *event_ctx;
	struct will_outbox out;
};

struct will_stats {
	uint64_t msgs_in, decode_errors, versions_new, versions_stale;
	uint64_t deliveries_sent, deliveries_in, deliveries_dup, delivered;
	uint64_t published, undeliverable, cancelled, revoked, save_errors;
	/* refused: the unsigned protocol; bad signature or signer's key unknown;
	 * a key other than the one bound to the name; a sequence jump; over
	 * WILL_HOLD_MAX_BYTES; a delivery or DONE our own view contradicts */
	uint64_t unsigned_refused, sig_refused, key_conflicts, seq_refused;
	uint64_t over_budget, view_refused;
	uint64_t deliveries_owner_alive; /* copies dropped: we saw the owner not dead */
	uint64_t due_scans; /* passes over every record for the next deadline */
};

struct will;

void will_config_default(struct will_config *cfg);
struct will *will_new(const struct will_config *cfg, int64_t now);
void will_free(struct will *w);

/* Fill serf extension hooks that route to this component (ctx = w). */
void will_extension(struct will *w, struct serf_extension *ext);

/* swim member events (the glue calls it next to serf_layer_on_member). */
void will_on_member(struct will *w, enum swim_member_event ev,
		    const struct swim_member *m, int64_t now);
void will_tick(struct will *w, int64_t now);
/* INT64_MAX = none; 0 after any other call changed the records: call
 * will_tick, which brings it up to date (it is kept, not recomputed per
 * call: the embedder's loop asks after every datagram) */
int64_t will_next_deadline(const struct will *w);

/* Our own will: exactly one of recipient/event non-empty. */
int will_set(struct will *w, const char *recipient, const char *event,
	     int64_t delay_ms, const uint8_t *payload, size_t len, int64_t now);
int will_clear(struct will *w, int64_t now);
/* Live (non-tombstone) wills known here; owner NULL = all. free() *out. */
int will_list(const struct will *w, const char *owner, struct vigil_will_info **out,
	      size_t *n);

/* Raw entry points (what will_extension's hooks call). */
int will_handle_msg(struct will *w, const uint8_t *p, size_t len, int64_t now);
void will_local_state(struct will *w, bool join, struct wbuf *out);
int will_merge_state(struct will *w, uint8_t type, const uint8_t *p, size_t len,
		     bool join, int64_t now);

/*
 * Persistence (also our key bindings).  will_save writes path.tmp, fsyncs, renames over path and
 * fsyncs the directory.  will_load replaces the persisted part of the state
 * (call it before any traffic); WILL_ENOENT if there is no file,
 * WILL_EFORMAT for a corrupt one — the state is then left fresh.
 */
int will_save(const struct will *w, const char *path);
int will_load(struct will *w, const char *path);

const struct will_stats *will_stats(const struct will *w);

#endif
