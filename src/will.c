/*
 * will.c — last wills: replication, trigger, exactly-once delivery.
 *
 * See will.h for the protocol.  The component keeps three tables:
 *   - members: name, address, swim state, incarnation (fed by the glue from
 *     swim's on_member), sorted by name because every deterministic choice
 *     (who sends, who publishes) is "lowest name first";
 *   - wills: per owner, the newest version held plus the progress of the
 *     owner's current death at this member (armed -> released -> done);
 *   - rx: per owner, what this member delivered to its own handlers (the
 *     recipient's dedup state) and acks: per owner, the newest DONE seen.
 * rx, acks and our own will are what will_save persists.
 *
 * Everything on the wire is msgpack (msgpack-c).  Hostile input is first
 * proven sane by wire_msgpack_span() (msgpack-c would otherwise allocate whatever a
 * container header claims), decoded completely into temporaries, and only
 * then applied — a malformed message changes nothing.
 *
 * This file is the state machine; the bytes are elsewhere (will_internal.h):
 * will_codec.c encodes, signs, decodes and checks messages, will_store.c
 * reads and writes the state file.
 */
#include "will_internal.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logline.h"
#include "grow.h"
#include "sorted.h"

/* ------------------------------------------------------------ helpers */

__attribute__((format(printf, 3, 4)))
void will_logf(const struct will *w, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logline_vemit(w->cfg.out.log, w->cfg.out.ctx, NULL, 0, 512, level, fmt, ap);
	va_end(ap);
}


/* ------------------------------------------------------------ members */

static const char *mem_name_at(const void *table, size_t i)
{
	const struct will *w = table;
	return w->mem[i].name;
}

/* The index of name in the sorted member table, or -(insertion point) - 1. */
static long mem_index(const struct will *w, const char *name)
{
	bool found;
	size_t i = sorted_name_pos(w, w->n_mem, mem_name_at, name, &found);
	return found ? (long)i : -(long)i - 1;
}

struct wmember *will_mem_find(const struct will *w, const char *name)
{
	long i = mem_index(w, name);
	return i >= 0 ? &w->mem[i] : NULL;
}

static struct wmember *mem_upsert(struct will *w, const char *name)
{
	long i = mem_index(w, name);
	if (i >= 0)
		return &w->mem[i];
	struct wmember *mem = array_grow(w->mem, &w->cap_mem, w->n_mem + 1, sizeof *mem, 8);
	if (!mem)
		return NULL;
	w->mem = mem;
	size_t at = (size_t)(-i - 1);
	memmove(&w->mem[at + 1], &w->mem[at], (w->n_mem - at) * sizeof *w->mem);
	w->n_mem++;
	memset(&w->mem[at], 0, sizeof w->mem[at]);
	snprintf(w->mem[at].name, sizeof w->mem[at].name, "%s", name);
	w->mem[at].state = SWIM_DEAD;
	return &w->mem[at];
}

static void mem_remove(struct will *w, const char *name)
{
	long i = mem_index(w, name);
	if (i < 0)
		return;
	memmove(&w->mem[i], &w->mem[i + 1], (w->n_mem - (size_t)i - 1) * sizeof *w->mem);
	w->n_mem--;
}

/*
 * Our place in the deterministic order: how many alive members (other than
 * `skip1`/`skip2`) sort before us.  Rank 0 acts first; each later rank waits
 * one more backoff and acts only if nobody acked meanwhile.
 */
static unsigned my_rank(const struct will *w, const char *skip1, const char *skip2)
{
	unsigned r = 0;
	for (size_t i = 0; i < w->n_mem; i++) {
		const struct wmember *m = &w->mem[i];
		if (strcmp(m->name, w->cfg.name) >= 0)
			break; /* sorted: the rest are after us */
		if (!will_alive_state(m->state))
			continue;
		if ((skip1 && strcmp(m->name, skip1) == 0) ||
		    (skip2 && strcmp(m->name, skip2) == 0))
			continue;
		r++;
	}
	return r;
}

/*
 * Rank r acts at rank_t + r * step, where rank_t is when we got that rank.
 * Measuring from the release instead would make every survivor whose
 * deadline already passed act at once when a lower member's death is
 * detected late; measured from the change, the new rank 0 acts at once and
 * the new rank 1 still gives it a full step to be heard.
 */
static void rerank(const struct will *w, struct wrec *r, int64_t now, bool force)
{
	unsigned k = my_rank(w, r->owner, r->kind == KIND_MEMBER ? r->target : NULL);
	if (force || k != r->rank) {
		r->rank = k;
		r->rank_t = now;
	}
}

/* -------------------------------------------------------------- tables */

/*
 * The records are sorted by owner: a join's push-pull brings a record for
 * every member of the cluster, each looked up here (a linear search made
 * merging a 1,000-member exchange a million string compares).
 */
static const char *rec_owner_at(const void *table, size_t i)
{
	const struct will *w = table;
	return w->rec[i]->owner;
}

struct wrec *will_rec_find(const struct will *w, const char *owner)
{
	bool found;
	size_t i = sorted_name_pos(w, w->n_rec, rec_owner_at, owner, &found);
	return found ? w->rec[i] : NULL;
}

struct wrec *will_rec_get(struct will *w, const char *owner)
{
	bool found;
	size_t at = sorted_name_pos(w, w->n_rec, rec_owner_at, owner, &found);
	if (found)
		return w->rec[at];
	struct wrec **rec = array_grow(w->rec, &w->cap_rec, w->n_rec + 1, sizeof *rec, 8);
	if (!rec)
		return NULL;
	w->rec = rec;
	struct wrec *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	snprintf(r->owner, sizeof r->owner, "%s", owner);
	memmove(&w->rec[at + 1], &w->rec[at], (w->n_rec - at) * sizeof *w->rec);
	w->rec[at] = r;
	w->n_rec++;
	return r;
}

/* A death has armed or released r: it is on its way to delivery. */
static bool rec_busy(const struct wrec *r)
{
	return r->trig == T_ARMED || r->trig == T_RELEASED;
}

/* An entry point may change records: the kept deadline is stale if any
 * record has one (see struct will). */
static void records_may_change(struct will *w)
{
	if (w)
		w->due_stale |= w->n_busy > 0;
}

static void rec_drop(struct will *w, struct wrec *r)
{
	for (size_t i = 0; i < w->n_rec; i++) {
		if (w->rec[i] == r) {
			if (r->has_version && !will_is_self(w, r->owner))
				w->held_bytes -= REC_COST(r->plen);
			memmove(&w->rec[i], &w->rec[i + 1], (w->n_rec - i - 1) * sizeof *w->rec);
			w->n_rec--;
			free(r->payload);
			free(r);
			return;
		}
	}
}

/* ------------------------------------------------------ key bindings */

/* The public key bound to `name` (ours for our name), or NULL. */
const uint8_t *will_pub_of(const struct will *w, const char *name)
{
	if (will_is_self(w, name))
		return w->pub;
	for (size_t i = 0; i < w->n_bind; i++)
		if (strcmp(w->bind[i].name, name) == 0)
			return w->bind[i].pub;
	return NULL;
}

bool will_bind_add(struct will *w, const char *name, const uint8_t pub[WILL_KEY_LEN])
{
	struct wbind *b = NULL;
	if (w->n_bind >= WILL_BINDINGS_MAX) {
		/* Full: reuse the binding of a name that is neither a member nor
		 * holds a will here (gone while we were down: never reaped here). */
		for (size_t i = 0; i < w->n_bind && !b; i++)
			if (!will_mem_find(w, w->bind[i].name) && !will_rec_find(w, w->bind[i].name))
				b = &w->bind[i];
		if (!b)
			return false;
	} else {
		struct wbind *binds = array_grow(w->bind, &w->cap_bind, w->n_bind + 1, sizeof *binds, 8);
		if (!binds)
			return false;
		w->bind = binds;
		b = &w->bind[w->n_bind++];
	}
	snprintf(b->name, sizeof b->name, "%s", name);
	memcpy(b->pub, pub, WILL_KEY_LEN);
	return true;
}

static void bind_remove(struct will *w, const char *name)
{
	for (size_t i = 0; i < w->n_bind; i++) {
		if (strcmp(w->bind[i].name, name) == 0) {
			w->bind[i] = w->bind[--w->n_bind];
			w->dirty = true;
			return;
		}
	}
}

static struct rxrec *rx_find(const struct will *w, const char *owner)
{
	for (size_t i = 0; i < w->n_rx; i++)
		if (strcmp(w->rx[i].owner, owner) == 0)
			return &w->rx[i];
	return NULL;
}

static struct ackrec *ack_find(const struct will *w, const char *owner)
{
	for (size_t i = 0; i < w->n_ack; i++)
		if (strcmp(w->ack[i].owner, owner) == 0)
			return &w->ack[i];
	return NULL;
}


/* Would a DONE for this death (ours: mine) tell more than ack `a`? */
static bool ack_news(const struct ackrec *a, uint32_t inc, bool mine)
{
	return !a || a->inc < inc || (a->inc == inc && mine);
}

/*
 * Record a DONE; true if it is news (newer death than we knew acked).  `sig`
 * is by's signature, or NULL for our own (by is then our name: we sign).
 */
static bool ack_note(struct will *w, const char *owner, uint32_t inc, uint64_t seq,
		     uint8_t kind, bool mine, const char *by, const uint8_t *sig)
{
	struct ackrec *a = ack_find(w, owner);
	if (!ack_news(a, inc, mine))
		return false;
	if (!a) {
		if (sig && w->n_ack >= WILL_ACKS_MAX) {
			w->stats.over_budget++;
			return false;
		}
		struct ackrec *acks = array_grow(w->ack, &w->cap_ack, w->n_ack + 1, sizeof *acks, 8);
		if (!acks)
			return false;
		w->ack = acks;
		a = &w->ack[w->n_ack++];
		memset(a, 0, sizeof *a);
		snprintf(a->owner, sizeof a->owner, "%s", owner);
	}
	a->inc = inc;
	a->seq = seq;
	a->kind = kind;
	a->mine = mine;
	snprintf(a->by, sizeof a->by, "%s", by);
	if (sig) {
		memcpy(a->sig, sig, WILL_SIG_LEN);
		a->has_sig = true;
	} else {
		a->has_sig = will_sign_done(w, owner, inc, seq, kind, a->sig);
	}
	return true;
}

/* Is the death of `owner` at incarnation `inc` already handled somewhere? */
static bool acked(const struct will *w, const char *owner, uint32_t inc)
{
	const struct ackrec *a = ack_find(w, owner);
	return a && a->inc >= inc;
}

/* ------------------------------------------------------------- events */

static void emit(struct will *w, enum vigil_event_type type, const char *owner,
		 uint32_t inc, uint64_t seq, const uint8_t *payload, size_t plen,
		 int64_t duration)
{
	struct vigil_member vm;
	struct vigil_event ev;
	const struct wmember *m = will_mem_find(w, owner);

	if (!w->cfg.on_event)
		return;
	memset(&vm, 0, sizeof vm);
	snprintf(vm.name, sizeof vm.name, "%s", owner);
	vm.status = VIGIL_STATUS_NONE;
	if (m) {
		if (m->addr.ip_len == 4)
			inet_ntop(AF_INET, m->addr.ip, vm.addr, sizeof vm.addr);
		else if (m->addr.ip_len == 16)
			inet_ntop(AF_INET6, m->addr.ip, vm.addr, sizeof vm.addr);
		vm.port = m->addr.port;
		vm.incarnation = m->inc;
		vm.status = will_alive_state(m->state) ? VIGIL_STATUS_ALIVE :
			    m->state == SWIM_LEFT ? VIGIL_STATUS_LEFT : VIGIL_STATUS_FAILED;
	}
	memset(&ev, 0, sizeof ev);
	ev.type = type;
	ev.member = &vm;
	ev.payload = payload;
	ev.payload_len = plen;
	ev.incarnation = inc;
	ev.will_seq = seq;
	ev.duration_ms = duration;
	w->cfg.on_event(w->cfg.event_ctx, &ev);
}

/* Save the durable part now, if we have a file; a failure is logged. */
static void persist(struct will *w)
{
	if (!w->state_path)
		return;
	int rc = will_save(w, w->state_path);
	if (rc != WILL_OK) {
		w->stats.save_errors++;
		will_logf(w, 3, "will: cannot save state to %s (%d)", w->state_path, rc);
	}
}

/* ---------------------------------------------------- applying versions */

/* Store v in r; a version of ours is (re)signed, another's keeps v's signature. */
bool will_rec_set_version(struct will *w, struct wrec *r, const struct pver *v)
{
	uint8_t *np = NULL;
	if (!v->tomb && v->plen) {
		np = malloc(v->plen);
		if (!np)
			return false;
		memcpy(np, v->payload, v->plen);
	}
	bool mine = will_is_self(w, r->owner);
	if (r->has_version && !mine)
		w->held_bytes -= REC_COST(r->plen);
	free(r->payload);
	r->payload = np;
	r->plen = v->tomb ? 0 : v->plen;
	if (!mine)
		w->held_bytes += REC_COST(r->plen);
	r->has_version = true;
	r->seq = v->seq;
	r->tomb = v->tomb;
	r->kind = v->kind;
	snprintf(r->target, sizeof r->target, "%s", v->tomb ? "" : v->target);
	r->delay = v->tomb ? 0 : v->delay;
	if (mine)
		will_sign_rec(w, r);
	else if (v->sig)
		memcpy(r->sig, v->sig, WILL_SIG_LEN);
	return true;
}

/*
 * Apply a version from the network.  Returns true if it was news (the
 * caller may gossip it on).  Our own will is special: only we create its
 * versions, so a newer one means we lost state (restart without a state
 * file) — adopt it then; but if our will was set here since, the cluster's
 * copy is an echo of an older life: re-issue ours above it.
 *
 * Checked before the (costly) signature: a stale version is dropped, and so
 * is a sequence number past WILL_SEQ_MAX or more than WILL_SEQ_JUMP_MAX
 * above the one held (no owner sets its will that often; refusing keeps a
 * leaked or buggy signer from pushing the sequence to where it wraps), and
 * a version that would take the wills held over WILL_HOLD_MAX_BYTES.
 */
static bool apply_version(struct will *w, const struct pver *v, bool may_bind)
{
	struct wrec *r = will_rec_find(w, v->owner);
	bool held = r && r->has_version;
	if ((held && v->seq <= r->seq) || (will_is_self(w, v->owner) && v->seq == 0)) {
		w->stats.versions_stale++;
		return false;
	}
	if (v->seq > WILL_SEQ_MAX || (held && v->seq - r->seq > WILL_SEQ_JUMP_MAX)) {
		w->stats.seq_refused++;
		will_logf(w, 0, "will: %s's version %llu is an implausible jump: refused", v->owner,
			  (unsigned long long)v->seq);
		return false;
	}
	if (!will_is_self(w, v->owner) &&
	    w->held_bytes - (held ? REC_COST(r->plen) : 0) + REC_COST(v->tomb ? 0 : v->plen) >
	    WILL_HOLD_MAX_BYTES) {
		/* Logged at the 1st, 2nd, 4th, 8th... refusal: seen, not a flood. */
		uint64_t k = ++w->stats.over_budget;
		if ((k & (k - 1)) == 0)
			will_logf(w, 2, "will: holding %zu bytes of wills (the limit): %s's refused, "
				  "%llu so far", w->held_bytes, v->owner,
				  (unsigned long long)w->stats.over_budget);
		return false;
	}
	if (!will_verify_version(w, v, may_bind))
		return false;
	if (will_is_self(w, v->owner)) {
		if (v->seq > w->own_hi)
			w->own_hi = v->seq;
		if (w->own_auth) {
			r = will_rec_get(w, v->owner);
			if (!r)
				return false;
			if (!r->has_version) { /* authoritative "no will" */
				r->has_version = true;
				r->tomb = true;
			}
			r->seq = ++w->own_hi;
			will_sign_rec(w, r);
			persist(w);
			will_broadcast_version(w, r);
			will_logf(w, 1, "will: re-issued our will above an old copy (seq %llu)",
				  (unsigned long long)r->seq);
			return false;
		}
	}
	r = will_rec_get(w, v->owner);
	if (!r || !will_rec_set_version(w, r, v))
		return false;
	w->stats.versions_new++;
	if (will_is_self(w, v->owner)) {
		w->own_auth = true;
		persist(w);
	}
	return true;
}

/* ----------------------------------------------------------- delivery */

/*
 * The recipient's side: deliver a will to our own handlers at most once
 * per owner death.  An owner death is identified by its incarnation, but
 * two observers can see the same death at different incarnations, so the
 * rule is per owner: once delivered, nothing more for that owner until we
 * have seen it alive again (returned_inc), and then only deaths at or above
 * that incarnation.  The record is saved before the event is raised, so a
 * crash can lose a delivery's event but never repeat it.
 */
static void accept_delivery(struct will *w, const char *owner, uint32_t inc, uint64_t seq,
			    const uint8_t *payload, size_t plen,
			    const struct wire_addr *sender, int64_t now)
{
	(void)now;
	const struct wmember *om = will_mem_find(w, owner);
	if (om && om->state != SWIM_DEAD) {
		/* Our own view decides (DESIGN.md "Last will"): the owner is alive,
		 * suspect or gracefully gone here, so this is no death of ours to
		 * act on — a stale copy, one from across a partition, or forged.
		 * A sender that is right retries and gets through once we agree. */
		w->stats.view_refused++;
		if (will_alive_state(om->state))
			w->stats.deliveries_owner_alive++;
		will_logf(w, 1, "will: delivery of %s's will while it is not dead here: dropped",
			  owner);
		return;
	}
	/* Which death this is is ours to say too: a sender's (or forger's)
	 * higher incarnation would make us refuse the owner's next real death. */
	if (om && inc > om->inc)
		inc = om->inc;
	struct rxrec *rx = rx_find(w, owner);
	if (rx && !(rx->returned_inc > rx->inc && inc >= rx->returned_inc)) {
		w->stats.deliveries_dup++;
		will_send_done(w, owner, rx->inc, rx->seq, KIND_MEMBER, sender, false);
		return;
	}
	if (!rx) {
		struct rxrec *rxs = array_grow(w->rx, &w->cap_rx, w->n_rx + 1, sizeof *rxs, 8);
		if (!rxs)
			return;
		w->rx = rxs;
		rx = &w->rx[w->n_rx++];
		memset(rx, 0, sizeof *rx);
		snprintf(rx->owner, sizeof rx->owner, "%s", owner);
	}
	rx->inc = inc;
	rx->seq = seq;
	rx->returned_inc = 0;
	rx->revoked = false;
	ack_note(w, owner, inc, seq, KIND_MEMBER, false, w->cfg.name, NULL);
	persist(w);
	w->stats.delivered++;
	emit(w, VIGIL_EV_MEMBER_WILL, owner, inc, seq, payload, plen, 0);
	will_send_done(w, owner, inc, seq, KIND_MEMBER, sender, true);
	struct wrec *r = will_rec_find(w, owner);
	if (r && r->trig != T_NONE && r->death_inc <= inc) {
		r->acked = true;
		if (rec_busy(r))
			r->trig = T_DONE;
	}
}

/* [owner's signed version, inc, sender]: the recipient checks the owner's
 * signature itself, so a holder can pass the will on but not change it. */
static void send_deliver(struct will *w, struct wrec *r, const struct wmember *to)
{
	const uint8_t *pub = will_pub_of(w, r->owner);
	if (!pub)
		return;
	struct mpack_enc e;
	mpack_enc_init(&e, WILL_MSG_DELIVER);
	msgpack_pack_array(&e.pk, 3);
	will_enc_version(&e, r, pub);
	msgpack_pack_uint32(&e.pk, r->death_inc);
	mpack_enc_str(&e, w->cfg.name);
	if (w->cfg.out.send_to)
		w->cfg.out.send_to(w->cfg.out.ctx, &to->addr, (const uint8_t *)e.sb.data,
				   e.sb.size);
	msgpack_sbuffer_destroy(&e.sb);
	w->stats.deliveries_sent++;
}

/* Publish an event will: note it (durably) first, then publish and ack. */
static void publish(struct will *w, struct wrec *r, int64_t now)
{
	will_logf(w, 1, "will: publishing %s's will as event %s (rank %u since %lld, released %lld)",
		  r->owner, r->target, r->rank, (long long)r->rank_t, (long long)r->release_t);
	ack_note(w, r->owner, r->death_inc, r->seq, KIND_EVENT, true, w->cfg.name, NULL);
	persist(w);
	int rc = w->cfg.out.user_event ?
		 w->cfg.out.user_event(w->cfg.out.ctx, r->target, r->payload, r->plen, now) :
		 -1;
	if (rc != 0) {
		/* Every other member would fail the same way: ack anyway. */
		will_logf(w, 3, "will: cannot publish %s's will as event %s (%d)", r->owner,
			  r->target, rc);
		w->stats.undeliverable++;
		emit(w, VIGIL_EV_WILL_UNDELIVERABLE, r->owner, r->death_inc, r->seq,
		     r->payload, r->plen, 0);
	} else {
		w->stats.published++;
	}
	will_send_done(w, r->owner, r->death_inc, r->seq, KIND_EVENT, NULL, true);
	r->acked = true;
	r->trig = T_DONE;
}

/* When does r next need attention (NEVER if not)? */
static int64_t rec_due(const struct will *w, const struct wrec *r)
{
	int64_t giveup;
	switch (r->trig) {
	case T_ARMED:
		/* Without a will (yet) wait for one to arrive by push-pull, up to
		 * the reap interval; the delay always counts from the death. */
		if (!r->has_version || r->tomb)
			return r->death_t + w->cfg.reap_interval_ms;
		return r->death_t + r->delay;
	case T_RELEASED:
		giveup = r->release_t + w->cfg.reap_interval_ms;
		if (r->acked)
			return r->release_t;
		if (!r->has_version || r->tomb)
			return giveup;
		if (r->kind == KIND_EVENT) {
			int64_t t = r->rank_t + (int64_t)r->rank * w->cfg.takeover_ms;
			return t < giveup ? t : giveup;
		}
		if (will_is_self(w, r->target))
			return r->release_t;
		const struct wmember *m = will_mem_find(w, r->target);
		if (!m || !will_alive_state(m->state))
			return giveup;
		int64_t first = r->base > r->rank_t ? r->base : r->rank_t;
		int64_t t = r->attempts == 0 ?
			    first + (int64_t)r->rank * w->cfg.sender_backoff_ms :
			    r->last_send + r->gap;
		return t < giveup ? t : giveup;
	default:
		return NEVER;
	}
}

/* [owner, inc, by, pubkey, sig] */
static void broadcast_due(struct will *w, const char *owner, uint32_t inc)
{
	struct mpack_enc e, f;
	uint8_t sig[WILL_SIG_LEN];
	mpack_enc_init(&f, -1);
	will_enc_due_fields(&f, owner, inc, w->cfg.name, 0);
	will_sign_fields(w, WILL_MSG_DUE, &f, sig);
	mpack_enc_init(&e, WILL_MSG_DUE);
	will_enc_due_fields(&e, owner, inc, w->cfg.name, 2);
	mpack_enc_bin(&e, w->pub, WILL_KEY_LEN);
	mpack_enc_bin(&e, sig, WILL_SIG_LEN);
	will_out_broadcast(w, &e);
	msgpack_sbuffer_destroy(&e.sb);
}

/*
 * The delay has passed (here, or at another member that saw the death
 * earlier: see handle_due).  Tell the others, so that every member's
 * sender/publisher schedule starts within a gossip round of the first one
 * instead of being spread over the failure detector's skew.
 */
static void release(struct will *w, struct wrec *r, int64_t now)
{
	will_logf(w, 0, "will: %s's will released (death inc %u at %lld)", r->owner, r->death_inc,
		  (long long)r->death_t);
	r->trig = T_RELEASED;
	r->release_t = now;
	r->base = now;
	r->attempts = 0;
	rerank(w, r, now, true);
	if (r->acked) {
		r->trig = T_DONE;
		return;
	}
	if (r->has_version && !r->tomb)
		broadcast_due(w, r->owner, r->death_inc);
}

static void rec_step(struct will *w, struct wrec *r, int64_t now)
{
	if (r->trig == T_ARMED) {
		release(w, r, now);
		return;
	}
	if (r->trig != T_RELEASED)
		return;
	if (r->acked) {
		r->trig = T_DONE;
		return;
	}
	bool giveup = now >= r->release_t + w->cfg.reap_interval_ms;
	if (!r->has_version || r->tomb) {
		if (giveup)
			r->trig = T_GAVEUP; /* no will (or cleared): nothing to do */
		return;
	}
	if (r->kind == KIND_EVENT) {
		if (giveup || now >= r->rank_t + (int64_t)r->rank * w->cfg.takeover_ms)
			publish(w, r, now);
		return;
	}
	if (will_is_self(w, r->target)) {
		accept_delivery(w, r->owner, r->death_inc, r->seq, r->payload, r->plen,
				NULL, now);
		r->acked = true;
		r->trig = T_DONE;
		return;
	}
	if (giveup) {
		w->stats.undeliverable++;
		r->trig = T_GAVEUP;
		will_logf(w, 2, "will: %s's will for %s is undeliverable", r->owner, r->target);
		emit(w, VIGIL_EV_WILL_UNDELIVERABLE, r->owner, r->death_inc, r->seq,
		     r->payload, r->plen, 0);
		return;
	}
	const struct wmember *m = will_mem_find(w, r->target);
	if (!m || !will_alive_state(m->state))
		return;
	if (now < rec_due(w, r))
		return;
	send_deliver(w, r, m);
	r->attempts++;
	r->last_send = now;
	if (r->attempts == 1)
		r->gap = w->cfg.retry_ms;
	else if (r->gap < w->cfg.retry_max_ms)
		r->gap = r->gap * 2 < w->cfg.retry_max_ms ? r->gap * 2 : w->cfg.retry_max_ms;
}

/* ------------------------------------------------------------- public */

/* Our version says "no will" (seq 0): a fresh start, or a corrupt file. */
bool will_own_identity(struct will *w)
{
	struct wrec *own = will_rec_get(w, w->cfg.name);
	struct pver v = { .tomb = true };
	snprintf(v.owner, sizeof v.owner, "%s", w->cfg.name);
	return own && will_rec_set_version(w, own, &v);
}

/*
 * Our signing key: the embedder's seed, else the key file (given, or next
 * to the state file), else a key for this run only.
 */
static bool load_key(struct will *w, const struct will_config *cfg)
{
	char err[320];
	char *path = NULL;
	if (cfg->has_key_seed) {
		w->key = will_key_from_seed(cfg->key_seed);
	} else if (cfg->key_path || cfg->state_path) {
		const char *p = cfg->key_path;
		if (!p) {
			size_t n = strlen(cfg->state_path) + sizeof ".key";
			if (!(path = malloc(n)))
				return false;
			snprintf(path, n, "%s.key", cfg->state_path);
			p = path;
		}
		if (will_key_load_or_create(p, &w->key, err, sizeof err) != 0)
			will_logf(w, 3, "will: %s", err);
	} else {
		w->key = will_key_generate();
		will_logf(w, 1, "will: no key file: this member's will key lasts this run only, "
			  "restarted it is a new identity (docs/SECURITY.md)");
	}
	free(path);
	return w->key != NULL;
}

void will_config_default(struct will_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->reap_interval_ms = 24LL * 3600 * 1000;
	cfg->sender_backoff_ms = 2000;
	cfg->retry_ms = 1000;
	cfg->retry_max_ms = 60000;
	cfg->takeover_ms = 5000;
}

struct will *will_new(const struct will_config *cfg, int64_t now)
{
	(void)now;
	if (!cfg || !cfg->name[0])
		return NULL;
	struct will *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->cfg = *cfg;
	if (w->cfg.reap_interval_ms <= 0)
		w->cfg.reap_interval_ms = 24LL * 3600 * 1000;
	if (w->cfg.sender_backoff_ms <= 0)
		w->cfg.sender_backoff_ms = 2000;
	if (w->cfg.retry_ms <= 0)
		w->cfg.retry_ms = 1000;
	if (w->cfg.retry_max_ms < w->cfg.retry_ms)
		w->cfg.retry_max_ms = w->cfg.retry_ms;
	if (w->cfg.takeover_ms <= 0)
		w->cfg.takeover_ms = 5000;
	if (cfg->state_path) {
		w->state_path = strdup(cfg->state_path);
		if (!w->state_path) {
			free(w);
			return NULL;
		}
	}
	w->cfg.state_path = w->state_path;
	w->cfg.key_path = NULL; /* not kept: only read here */
	if (!load_key(w, cfg)) {
		will_free(w);
		return NULL;
	}
	will_key_public(w->key, w->pub);
	/* Even without a will we have a version: seq 0 "no will", which carries
	 * our key to the others (push-pull, and the broadcast at our first
	 * peer), so they can check our markers and bind our name to it. */
	if (!will_own_identity(w)) {
		will_free(w);
		return NULL;
	}
	w->due_stale = true;
	return w;
}

void will_free(struct will *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_rec; i++) {
		free(w->rec[i]->payload);
		free(w->rec[i]);
	}
	free(w->rec);
	free(w->mem);
	free(w->rx);
	free(w->ack);
	free(w->bind);
	will_key_free(w->key);
	free(w->state_path);
	free(w);
}

static void ext_on_msg(void *ctx, const uint8_t *p, size_t len, int64_t now)
{
	will_handle_msg(ctx, p, len, now);
}

static void ext_local_state(void *ctx, bool join, struct wbuf *out)
{
	will_local_state(ctx, join, out);
}

static void ext_merge_state(void *ctx, uint8_t type, const uint8_t *p, size_t len,
			    bool join, int64_t now)
{
	will_merge_state(ctx, type, p, len, join, now);
}

void will_extension(struct will *w, struct serf_extension *ext)
{
	memset(ext, 0, sizeof *ext);
	ext->ctx = w;
	ext->on_msg = ext_on_msg;
	ext->local_state = ext_local_state;
	ext->merge_state = ext_merge_state;
}

static void on_member(struct will *w, enum swim_member_event ev,
		      const struct swim_member *m, int64_t now);

void will_on_member(struct will *w, enum swim_member_event ev, const struct swim_member *m,
		    int64_t now)
{
	records_may_change(w);
	if (!w || !m || !m->name[0])
		return;
	on_member(w, ev, m, now);
	/* Who is alive changed: so may our place in any sender order. */
	for (size_t i = 0; w->n_busy && i < w->n_rec; i++)
		if (w->rec[i]->trig == T_RELEASED)
			rerank(w, w->rec[i], now, false);
}

/*
 * will-revoked follows any delivery whose owner is later seen alive at a
 * higher incarnation, whether or not we saw the death ourselves.
 */
static void revoke_if_returned(struct will *w, const struct swim_member *m)
{
	struct rxrec *rx = rx_find(w, m->name);
	if (!rx || m->incarnation <= rx->inc || rx->returned_inc > rx->inc)
		return;
	rx->returned_inc = m->incarnation;
	if (rx->revoked)
		return;
	rx->revoked = true;
	w->stats.revoked++;
	persist(w);
	emit(w, VIGIL_EV_WILL_REVOKED, rx->owner, rx->inc, rx->seq, NULL, 0, 0);
}

static void on_member(struct will *w, enum swim_member_event ev,
		      const struct swim_member *m, int64_t now)
{
	if (ev == SWIM_EV_REAP) {
		mem_remove(w, m->name);
		struct wrec *r = will_rec_find(w, m->name);
		/* Keep a will whose delivery is still in progress. */
		if (r && !will_is_self(w, m->name) && !rec_busy(r)) {
			rec_drop(w, r);
			r = NULL;
		}
		/* Reaped: the name is free again, a new key may claim it. */
		if (!r)
			bind_remove(w, m->name);
		/* Its acks are only needed while a delivery is pending (those keep
		 * the flag on the record); ours we keep: we published. */
		struct ackrec *a = ack_find(w, m->name);
		if (a && !a->mine)
			*a = w->ack[--w->n_ack];
		return;
	}
	struct wmember *wm = mem_upsert(w, m->name);
	if (!wm)
		return;
	bool was_alive = will_alive_state(wm->state);
	wm->addr = m->addr;
	wm->inc = m->incarnation;
	wm->state = m->state;
	if (will_is_self(w, m->name))
		return;
	if (!w->announced && will_alive_state(m->state)) {
		/* Our first peer: tell the cluster our key (and will) right away
		 * rather than at the next push-pull. */
		w->announced = true;
		will_broadcast_version(w, will_rec_find(w, w->cfg.name));
	}

	struct wrec *r = will_rec_find(w, m->name);
	if (ev == SWIM_EV_UPDATE && was_alive)
		revoke_if_returned(w, m); /* a delivery we never saw the death for */
	if (ev == SWIM_EV_JOIN || (ev == SWIM_EV_UPDATE && !was_alive)) {
		if (r && r->trig != T_NONE) {
			bool had_will = r->has_version && !r->tomb;
			if (r->trig == T_ARMED && !r->acked) {
				/* Back within the delay: nothing is delivered. */
				if (had_will)
					w->stats.cancelled++;
			} else if (had_will) {
				/* Back after its will was released: tell the app. */
				emit(w, VIGIL_EV_MEMBER_RETURNED, r->owner, r->death_inc, r->seq,
				     NULL, 0, now - r->death_t);
			}
			r->trig = T_NONE;
			r->acked = false;
		}
		if (r && !r->has_version)
			rec_drop(w, r);
		revoke_if_returned(w, m);
		/* A recipient back from the dead: start sending to it afresh. */
		for (size_t i = 0; w->n_busy && i < w->n_rec; i++) {
			struct wrec *o = w->rec[i];
			if (o->trig == T_RELEASED && o->kind == KIND_MEMBER &&
			    strcmp(o->target, m->name) == 0) {
				o->base = now;
				o->attempts = 0;
			}
		}
		return;
	}
	if (ev != SWIM_EV_LEAVE)
		return;
	if (m->state == SWIM_LEFT) {
		/* A graceful leave is not a death. */
		if (r && r->trig == T_ARMED) {
			r->trig = T_NONE;
			w->stats.cancelled++;
		}
		return;
	}
	if (m->state != SWIM_DEAD)
		return;
	if (!r)
		r = will_rec_get(w, m->name); /* a version may still arrive by push-pull */
	if (!r || rec_busy(r))
		return;
	r->trig = T_ARMED;
	w->n_busy++;
	w->due_stale = true;
	r->death_inc = m->incarnation;
	r->death_t = now;
	r->attempts = 0;
	r->acked = acked(w, m->name, m->incarnation);
}

void will_tick(struct will *w, int64_t now)
{
	if (!w)
		return;
	if (w->dirty) {
		/* New key bindings, saved in one write however many came at once
		 * (a join's push-pull brings one per member). */
		w->dirty = false;
		persist(w);
	}
	if (!w->due_stale && now < w->due)
		return;
	/* cleared first: a step's event may reach an entry point again */
	w->due_stale = false;
	for (size_t i = 0; i < w->n_rec; i++) {
		struct wrec *r = w->rec[i];
		/* Each step changes state or pushes the due time; bound it anyway. */
		for (int k = 0; k < 8 && rec_due(w, r) <= now; k++)
			rec_step(w, r, now);
	}
	int64_t due = NEVER;
	size_t busy = 0;
	w->stats.due_scans++;
	for (size_t i = 0; i < w->n_rec; i++) {
		busy += rec_busy(w->rec[i]);
		int64_t d = rec_due(w, w->rec[i]);
		if (d < due)
			due = d;
	}
	w->due = due;
	w->n_busy = busy;
}

int64_t will_next_deadline(const struct will *w)
{
	if (!w)
		return NEVER;
	if ((w->dirty && w->state_path) || w->due_stale)
		return 0; /* now: see will_tick */
	return w->due;
}

/* Our own record and, in v, the next version of our will (owner and seq
 * set, the rest zero); NULL when out of memory. */
static struct wrec *own_next_version(struct will *w, struct pver *v)
{
	struct wrec *r = will_rec_get(w, w->cfg.name);
	if (!r)
		return NULL;
	memset(v, 0, sizeof *v);
	snprintf(v->owner, sizeof v->owner, "%s", w->cfg.name);
	v->seq = w->own_hi + 1;
	return r;
}

/* Keep v as our will (set here, so authoritative), save and gossip it. */
static int own_commit(struct will *w, struct wrec *r, const struct pver *v)
{
	if (!will_rec_set_version(w, r, v))
		return WILL_ENOMEM;
	w->own_hi = v->seq;
	w->own_auth = true;
	persist(w);
	will_broadcast_version(w, r);
	return WILL_OK;
}

int will_set(struct will *w, const char *recipient, const char *event, int64_t delay_ms,
	     const uint8_t *payload, size_t len, int64_t now)
{
	records_may_change(w);
	(void)now;
	bool to_member = recipient && recipient[0];
	bool to_event = event && event[0];
	const char *target = to_member ? recipient : event;
	if (!w || to_member == to_event || delay_ms < 0 || delay_ms > DELAY_MAX_MS ||
	    (len && !payload))
		return WILL_EINVAL;
	if (len > VIGIL_WILL_MAX || strlen(target) > WIRE_NAME_MAX)
		return WILL_ETOOBIG;
	if ((to_member && will_is_self(w, target)) || w->own_hi >= WILL_SEQ_MAX)
		return WILL_EINVAL;
	struct pver v;
	struct wrec *r = own_next_version(w, &v);
	if (!r)
		return WILL_ENOMEM;
	v.kind = to_member ? KIND_MEMBER : KIND_EVENT;
	snprintf(v.target, sizeof v.target, "%s", target);
	v.delay = delay_ms;
	v.payload = payload;
	v.plen = len;
	return own_commit(w, r, &v);
}

int will_clear(struct will *w, int64_t now)
{
	records_may_change(w);
	(void)now;
	if (!w || w->own_hi >= WILL_SEQ_MAX)
		return WILL_EINVAL;
	struct pver v;
	struct wrec *r = own_next_version(w, &v);
	if (!r)
		return WILL_ENOMEM;
	v.tomb = true;
	/* Even with nothing set, gossip the tombstone: peers may hold an old copy. */
	return own_commit(w, r, &v);
}

int will_list(const struct will *w, const char *owner, struct vigil_will_info **out,
	      size_t *n)
{
	if (!w || !out || !n)
		return WILL_EINVAL;
	*out = NULL;
	*n = 0;
	size_t cnt = 0;
	for (size_t i = 0; i < w->n_rec; i++) {
		const struct wrec *r = w->rec[i];
		if (r->has_version && !r->tomb && (!owner || strcmp(owner, r->owner) == 0))
			cnt++;
	}
	if (!cnt)
		return WILL_OK;
	struct vigil_will_info *v = calloc(cnt, sizeof *v);
	if (!v)
		return WILL_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < w->n_rec; i++) {
		const struct wrec *r = w->rec[i];
		if (!(r->has_version && !r->tomb && (!owner || strcmp(owner, r->owner) == 0)))
			continue;
		snprintf(v[k].owner, sizeof v[k].owner, "%s", r->owner);
		if (r->kind == KIND_MEMBER)
			snprintf(v[k].recipient, sizeof v[k].recipient, "%s", r->target);
		else
			snprintf(v[k].event, sizeof v[k].event, "%s", r->target);
		v[k].delay_ms = r->delay;
		v[k].seq = r->seq;
		if (r->plen)
			memcpy(v[k].payload, r->payload, r->plen);
		v[k].payload_len = r->plen;
		k++;
	}
	*out = v;
	*n = cnt;
	return WILL_OK;
}

/* --------------------------------------------------------- messages */

static int handle_version(struct will *w, const msgpack_object *o)
{
	struct pver v;
	if (!will_dec_version(w, o, &v))
		return WILL_EFORMAT;
	if (apply_version(w, &v, true))
		will_broadcast_version(w, will_rec_find(w, v.owner)); /* gossip it on once */
	return WILL_OK;
}

/*
 * [owner's signed version, inc, sender].  Only a will its owner signed with
 * the key we bound to it before (a delivery comes after the owner's death:
 * no moment to trust a first key), the newest we know, and for us.
 */
static int handle_deliver(struct will *w, const msgpack_object *o, int64_t now)
{
	const msgpack_object *a = will_array_signed(w, o, 3, 6);
	char sender[WIRE_NAME_MAX + 1];
	uint64_t inc;
	struct pver v;
	if (!a || !will_dec_version(w, &a[0], &v) || !mpack_uint(&a[1], UINT32_MAX, &inc) ||
	    !will_get_name(&a[2], sender))
		return WILL_EFORMAT;
	if (v.tomb || v.kind != KIND_MEMBER || !will_is_self(w, v.target) || will_is_self(w, v.owner))
		return WILL_EINVAL; /* not for us: ignore */
	w->stats.deliveries_in++;
	struct wrec *r = will_rec_find(w, v.owner);
	if (!(r && r->has_version && v.seq <= r->seq)) {
		if (!will_pub_of(w, v.owner)) {
			w->stats.sig_refused++;
			will_logf(w, 1, "will: delivery of %s's will, whose key we never saw: dropped",
				  v.owner);
			return WILL_OK;
		}
		if (!apply_version(w, &v, false))
			return WILL_OK;
		r = will_rec_find(w, v.owner);
	} else if (!will_verify_version(w, &v, false)) {
		/* Even a stale copy must be the owner's: a forged one would still
		 * make us deliver ours, earlier than our own delay says. */
		return WILL_OK;
	}
	/* What we deliver is our own copy: the newest version its owner signed. */
	if (!r || !r->has_version || r->tomb || r->kind != KIND_MEMBER || !will_is_self(w, r->target))
		return WILL_OK;
	const struct wmember *sm = sender[0] ? will_mem_find(w, sender) : NULL;
	struct wire_addr saddr;
	if (sm)
		saddr = sm->addr;
	accept_delivery(w, r->owner, (uint32_t)inc, r->seq, r->payload, r->plen,
			sm ? &saddr : NULL, now);
	return WILL_OK;
}

/*
 * A DONE counts when its signer is who may say it (the will's recipient for
 * "delivered"; any member for "published") and it is about a death we can
 * agree happened: not while we see the owner alive at that incarnation or
 * later — else one marker sent ahead would silence the owner's next death.
 */
static bool apply_done(struct will *w, const struct pdone *d)
{
	if (!ack_news(ack_find(w, d->owner), (uint32_t)d->inc, false))
		return false; /* not news: skip the signature check */
	const struct wmember *om = will_mem_find(w, d->owner);
	const struct wrec *r = will_rec_find(w, d->owner);
	/* An owner we know nothing of has no will here to mark: such markers
	 * would only fill the ack table (and our push-pull) for free. */
	if ((!om && !r) || (om && will_alive_state(om->state) && om->inc <= d->inc) ||
	    (d->kind == KIND_MEMBER && r && r->has_version && !r->tomb &&
	     (r->kind != KIND_MEMBER || strcmp(r->target, d->by) != 0))) {
		w->stats.view_refused++;
		will_logf(w, 0, "will: %s's will (inc %u) marked done by %s: not so here, ignored",
			  d->owner, (unsigned)d->inc, d->by);
		return false;
	}
	struct mpack_enc f;
	mpack_enc_init(&f, -1);
	will_enc_done_fields(&f, d->owner, (uint32_t)d->inc, d->seq, (uint8_t)d->kind, d->by, 0);
	if (!will_check_sig(w, d->by, d->pub, WILL_MSG_DONE, &f, d->sig, true))
		return false;
	if (!ack_note(w, d->owner, (uint32_t)d->inc, d->seq, (uint8_t)d->kind, false, d->by,
		      d->sig))
		return false;
	will_logf(w, 0, "will: %s's will (inc %u) %s by %s", d->owner, (unsigned)d->inc,
		  d->kind == KIND_EVENT ? "published" : "delivered", d->by);
	struct wrec *rr = will_rec_find(w, d->owner);
	if (rr && rec_busy(rr) && rr->death_inc <= d->inc) {
		rr->acked = true;
		if (rr->trig == T_RELEASED)
			rr->trig = T_DONE;
	}
	return true;
}

static int handle_done(struct will *w, const msgpack_object *o)
{
	struct pdone d;
	if (!will_dec_done(w, o, &d))
		return WILL_EFORMAT;
	if (apply_done(w, &d)) {
		/* News: gossip it on once, so holders that missed it stop. */
		struct mpack_enc e;
		mpack_enc_init(&e, WILL_MSG_DONE);
		will_enc_done(&e, d.owner, (uint32_t)d.inc, d.seq, (uint8_t)d.kind, d.by, d.pub, d.sig);
		will_out_broadcast(w, &e);
		msgpack_sbuffer_destroy(&e.sb);
	}
	return WILL_OK;
}

/*
 * Another member released a will whose owner we also saw die: release it
 * here too (and pass the news on, once).  A member that has not seen the
 * death ignores it — it acts on its own view, or on the DONE.  Signed by
 * the member that released, so only a member can cut a delay short.
 */
static int handle_due(struct will *w, const msgpack_object *o, int64_t now)
{
	const msgpack_object *a = will_array_signed(w, o, 5, 2);
	char owner[WIRE_NAME_MAX + 1], by[WIRE_NAME_MAX + 1];
	uint64_t inc;
	const uint8_t *pub, *sig;
	if (!a || !will_get_name(&a[0], owner) || !owner[0] || !mpack_uint(&a[1], UINT32_MAX, &inc) ||
	    !will_get_name(&a[2], by) || !by[0] || !will_get_fixed(&a[3], WILL_KEY_LEN, &pub) ||
	    !will_get_fixed(&a[4], WILL_SIG_LEN, &sig))
		return WILL_EFORMAT;
	struct wrec *r = will_rec_find(w, owner);
	if (!(r && r->trig == T_ARMED && r->death_inc == inc && r->has_version && !r->tomb))
		return WILL_OK;
	struct mpack_enc f;
	mpack_enc_init(&f, -1);
	will_enc_due_fields(&f, owner, (uint32_t)inc, by, 0);
	if (will_check_sig(w, by, pub, WILL_MSG_DUE, &f, sig, true))
		release(w, r, now);
	return WILL_OK;
}

int will_handle_msg(struct will *w, const uint8_t *p, size_t len, int64_t now)
{
	records_may_change(w);
	if (!w || !p || len < 2)
		return WILL_EFORMAT;
	w->stats.msgs_in++;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int rc = WILL_EFORMAT;
	if (will_unpack_all(p + 1, len - 1, &u)) {
		switch (p[0]) {
		case WILL_MSG_VERSION: rc = handle_version(w, &u.data); break;
		case WILL_MSG_DELIVER: rc = handle_deliver(w, &u.data, now); break;
		case WILL_MSG_DONE: rc = handle_done(w, &u.data); break;
		case WILL_MSG_DUE: rc = handle_due(w, &u.data, now); break;
		default: rc = WILL_EFORMAT; break;
		}
	}
	msgpack_unpacked_destroy(&u);
	if (rc == WILL_EFORMAT)
		w->stats.decode_errors++;
	return rc;
}

int will_merge_state(struct will *w, uint8_t type, const uint8_t *p, size_t len, bool join,
		     int64_t now)
{
	records_may_change(w);
	(void)join;
	(void)now;
	if (!w || (!p && len))
		return WILL_EINVAL;
	if (type != WILL_MSG_VERSION && type != WILL_MSG_DONE)
		return WILL_OK; /* a newer extension's record: not ours */
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int rc = WILL_EFORMAT;
	if (!will_unpack_all(p, len, &u) || u.data.type != MSGPACK_OBJECT_ARRAY)
		goto out;
	uint32_t n = u.data.via.array.size;
	const msgpack_object *a = u.data.via.array.ptr;
	/* Validate everything before applying anything. */
	if (type == WILL_MSG_VERSION) {
		struct pver v;
		for (uint32_t i = 0; i < n; i++)
			if (!will_dec_version(w, &a[i], &v))
				goto out;
		for (uint32_t i = 0; i < n; i++) {
			will_dec_version(NULL, &a[i], &v);
			apply_version(w, &v, true);
		}
	} else {
		struct pdone d;
		for (uint32_t i = 0; i < n; i++)
			if (!will_dec_done(w, &a[i], &d))
				goto out;
		for (uint32_t i = 0; i < n; i++) {
			will_dec_done(NULL, &a[i], &d);
			apply_done(w, &d);
		}
	}
	rc = WILL_OK;
out:
	msgpack_unpacked_destroy(&u);
	if (rc != WILL_OK)
		w->stats.decode_errors++;
	return rc;
}

const struct will_stats *will_stats(const struct will *w)
{
	return &w->stats;
}
