/*
 * will_internal.h — what the files of the last-will component share:
 * struct will (the three tables and our own identity), the record types,
 * and the functions they call in each other.  Private: not installed, and
 * nothing here is exported (-fvisibility=hidden); will.h is the interface.
 *
 *   will.c        the state machine: members, tables, applying versions,
 *                 delivery, the public API and message handling
 *   will_codec.c  the wire side: encoding, signing, decoding and checking
 *                 will messages and push-pull records, and sending them
 *   will_store.c  the state file: will_save and will_load
 *   will_key.c    the Ed25519 key (will_key.h)
 */
#ifndef VIGIL_WILL_INTERNAL_H
#define VIGIL_WILL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "mpack.h"
#include "will.h"
#include "will_key.h"

#define NEVER INT64_MAX
#define KIND_MEMBER 0
#define KIND_EVENT 1
#define DELAY_MAX_MS VIGIL_WILL_DELAY_MAX_MS /* a year; sanity bound */
#define STATE_MAGIC "VWIL"
#define STATE_VERSION 2 /* 1: before signed wills (no key bindings, unsigned acks) */
#define SIG_TAG "vigil-will-v1" /* signed bytes: tag | type | msgpack fields */
#define SIG_TAG_LEN (sizeof SIG_TAG - 1)
/* What one held will costs against WILL_HOLD_MAX_BYTES: payload plus its
 * names, key, signature and bookkeeping (struct wrec is ~400 bytes). */
#define REC_COST(plen) ((size_t)(plen) + 512)
#define STATE_MAX (64u * 1024 * 1024)

enum trig {
	T_NONE,     /* owner not dead (as far as we know) */
	T_ARMED,    /* owner dead, delay running */
	T_RELEASED, /* delay passed: delivering / publishing */
	T_DONE,     /* delivered, published, or seen acked */
	T_GAVEUP,   /* undeliverable (or no will) after the reap interval */
};

struct wmember {
	char name[WIRE_NAME_MAX + 1];
	struct wire_addr addr;
	enum swim_state state;
	uint32_t inc;
};

struct wrec {
	char owner[WIRE_NAME_MAX + 1];
	/* newest version held (has_version false: only death progress) */
	bool has_version;
	uint64_t seq;
	bool tomb;
	uint8_t kind;
	char target[WIRE_NAME_MAX + 1];
	int64_t delay;
	uint8_t *payload;
	size_t plen;
	/* the owner's current death, as this member saw it */
	enum trig trig;
	bool acked;         /* a DONE for this death was seen */
	uint32_t death_inc;
	int64_t death_t, release_t;
	int64_t base;       /* when sending could start (release, recipient back) */
	unsigned rank;      /* our place among the senders / publishers ... */
	int64_t rank_t;     /* ... since this time */
	int64_t last_send, gap;
	unsigned attempts;
	uint8_t sig[WILL_SIG_LEN]; /* the owner's signature of the version held */
};

/* Recipient-side dedup: one per owner, persisted. */
struct rxrec {
	char owner[WIRE_NAME_MAX + 1];
	uint32_t inc;          /* owner incarnation of the death delivered */
	uint64_t seq;
	uint32_t returned_inc; /* owner seen alive at this inc since (0 = no) */
	bool revoked;
};

/* Newest DONE per owner (delivered or published), persisted. */
struct ackrec {
	char owner[WIRE_NAME_MAX + 1];
	uint32_t inc;
	uint64_t seq;
	uint8_t kind;
	bool mine; /* we published it */
	/* who said so, and its signature (has_sig false: from a version-1 state
	 * file; such an ack is used here but not passed on) */
	char by[WIRE_NAME_MAX + 1];
	bool has_sig;
	uint8_t sig[WILL_SIG_LEN];
};

/* A member name bound to the first public key seen for it (TOFU). */
struct wbind {
	char name[WIRE_NAME_MAX + 1];
	uint8_t pub[WILL_KEY_LEN];
};

struct will {
	struct will_config cfg;
	char *state_path;
	struct wmember *mem;
	size_t n_mem, cap_mem;
	struct wrec **rec;
	size_t n_rec, cap_rec;
	struct rxrec *rx;
	size_t n_rx, cap_rx;
	struct ackrec *ack;
	size_t n_ack, cap_ack;
	struct wbind *bind;
	size_t n_bind, cap_bind;
	uint64_t own_hi;  /* highest seq of our own will seen anywhere */
	bool own_auth;    /* our will was set/cleared here or loaded from file */
	struct will_key *key;
	uint8_t pub[WILL_KEY_LEN];
	size_t held_bytes; /* REC_COST of the versions held for others */
	bool announced;    /* our version was broadcast since the start */
	bool dirty;        /* a new key binding waits for will_tick to save it */
	/*
	 * The earliest rec_due of any record, kept so that the embedder's
	 * loop, which asks for the next deadline after every datagram, does
	 * not scan every record each time (at 1,000 members that scan was a
	 * third of an agent's CPU in a join storm).  Only records a death has
	 * armed or released have a due time; n_busy counts them (at most: it
	 * is exact after each pass, and raised when a death arms one).  An
	 * entry point that may change records sets due_stale while any is
	 * busy, and will_tick then makes one pass.
	 */
	int64_t due;
	size_t n_busy;
	bool due_stale;
	struct will_stats stats;
};


struct pver {
	char owner[WIRE_NAME_MAX + 1];
	uint64_t seq;
	bool tomb;
	uint8_t kind;
	char target[WIRE_NAME_MAX + 1];
	int64_t delay;
	const uint8_t *payload;
	size_t plen;
	const uint8_t *pub, *sig; /* signer's key and signature (decoded only) */
};

struct pdone {
	char owner[WIRE_NAME_MAX + 1];
	uint64_t inc, seq, kind;
	char by[WIRE_NAME_MAX + 1];
	const uint8_t *pub, *sig;
};

/* ---- will.c: helpers, members, tables, key bindings */

__attribute__((format(printf, 3, 4)))
void will_logf(const struct will *w, int level, const char *fmt, ...);

static inline bool will_is_self(const struct will *w, const char *name)
{
	return strcmp(w->cfg.name, name) == 0;
}

static inline bool will_alive_state(enum swim_state s)
{
	return s == SWIM_ALIVE || s == SWIM_SUSPECT;
}

struct wmember *will_mem_find(const struct will *w, const char *name);
struct wrec *will_rec_find(const struct will *w, const char *owner);
struct wrec *will_rec_get(struct will *w, const char *owner);
/* The public key bound to `name` (ours for our name), or NULL. */
const uint8_t *will_pub_of(const struct will *w, const char *name);
bool will_bind_add(struct will *w, const char *name, const uint8_t pub[WILL_KEY_LEN]);
/* Store v in r; a version of ours is (re)signed, another's keeps v's signature. */
bool will_rec_set_version(struct will *w, struct wrec *r, const struct pver *v);
/* Our version says "no will" (seq 0): a fresh start, or a corrupt file. */
bool will_own_identity(struct will *w);

/* ---- will_codec.c: encoding and signing */

void will_enc_version(struct mpack_enc *e, const struct wrec *r, const uint8_t *pub);
void will_enc_done_fields(struct mpack_enc *e, const char *owner, uint32_t inc, uint64_t seq,
			  uint8_t kind, const char *by, uint32_t extra);
void will_enc_done(struct mpack_enc *e, const char *owner, uint32_t inc, uint64_t seq,
		   uint8_t kind, const char *by, const uint8_t *pub, const uint8_t *sig);
void will_enc_due_fields(struct mpack_enc *e, const char *owner, uint32_t inc, const char *by,
			 uint32_t extra);
bool will_sign_fields(const struct will *w, uint8_t type, struct mpack_enc *fields,
		      uint8_t sig[WILL_SIG_LEN]);
void will_sign_rec(const struct will *w, struct wrec *r);
bool will_sign_done(const struct will *w, const char *owner, uint32_t inc, uint64_t seq,
		    uint8_t kind, uint8_t sig[WILL_SIG_LEN]);
bool will_check_sig(struct will *w, const char *signer, const uint8_t *pub, uint8_t type,
		    struct mpack_enc *fields, const uint8_t *sig, bool may_bind);
bool will_verify_version(struct will *w, const struct pver *v, bool may_bind);
void will_out_broadcast(struct will *w, struct mpack_enc *e);
void will_broadcast_version(struct will *w, const struct wrec *r);
void will_send_done(struct will *w, const char *owner, uint32_t inc, uint64_t seq,
		    uint8_t kind, const struct wire_addr *also_to, bool fanout);

/* ---- will_codec.c: decoding */

bool will_unpack_all(const uint8_t *p, size_t len, msgpack_unpacked *u);
bool will_get_name(const msgpack_object *o, char out[WIRE_NAME_MAX + 1]);
bool will_get_fixed(const msgpack_object *o, size_t n, const uint8_t **p);
const msgpack_object *will_array_n(const msgpack_object *o, uint32_t n);
const msgpack_object *will_array_signed(struct will *w, const msgpack_object *o, uint32_t n,
					uint32_t old_n);
bool will_dec_version(struct will *w, const msgpack_object *o, struct pver *v);
bool will_dec_fields(const msgpack_object *a, struct pver *v);
bool will_dec_done(struct will *w, const msgpack_object *o, struct pdone *d);

#endif
