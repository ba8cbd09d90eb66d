/*
 * will_codec.c — the wire side of last wills: encoding, signing, decoding
 * and checking the will messages (VERSION, DELIVER, DONE, DUE) and the
 * push-pull records, and handing the encoded bytes to the transport.
 *
 * Separate from will.c because it is the one place that knows the byte
 * layout: what a signature covers is the canonical msgpack of the fields,
 * so encoding and signing (and decoding and verifying) belong together, and
 * the state machine only sees decoded, checked values.  Decoders prove
 * hostile input sane before anything is applied; they change nothing but
 * the refusal counters.
 */
#include "will_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ encoding */

static void pver_of(const struct wrec *r, struct pver *v)
{
	memset(v, 0, sizeof *v);
	snprintf(v->owner, sizeof v->owner, "%s", r->owner);
	v->seq = r->seq;
	v->tomb = r->tomb;
	v->kind = r->kind;
	snprintf(v->target, sizeof v->target, "%s", r->target);
	v->delay = r->delay;
	v->payload = r->payload;
	v->plen = r->plen;
}

/*
 * The signed fields of a version, [owner, seq, tomb, kind, target,
 * delay_ms, payload], as the head of an array of 7 + extra elements.  The
 * encoding is canonical (msgpack-c packs every integer in its shortest form,
 * names as str), so a receiver re-encodes what it decoded and checks the
 * signature over exactly these bytes.
 */
static void enc_version_fields(struct mpack_enc *e, const struct pver *v, uint32_t extra)
{
	msgpack_pack_array(&e->pk, 7 + extra);
	mpack_enc_str(e, v->owner);
	msgpack_pack_uint64(&e->pk, v->seq);
	mpack_enc_bool(e, v->tomb);
	msgpack_pack_uint8(&e->pk, v->tomb ? 0 : v->kind);
	mpack_enc_str(e, v->tomb ? "" : v->target);
	msgpack_pack_int64(&e->pk, v->tomb ? 0 : v->delay);
	mpack_enc_bin(e, v->payload, v->tomb ? 0 : v->plen);
}

/* [owner, seq, tomb, kind, target, delay_ms, payload, pubkey, sig] */
void will_enc_version(struct mpack_enc *e, const struct wrec *r, const uint8_t *pub)
{
	struct pver v;
	pver_of(r, &v);
	enc_version_fields(e, &v, 2);
	mpack_enc_bin(e, pub, WILL_KEY_LEN);
	mpack_enc_bin(e, r->sig, WILL_SIG_LEN);
}

/* The signed fields of a DONE: [owner, inc, seq, kind, by]. */
void will_enc_done_fields(struct mpack_enc *e, const char *owner, uint32_t inc, uint64_t seq,
			  uint8_t kind, const char *by, uint32_t extra)
{
	msgpack_pack_array(&e->pk, 5 + extra);
	mpack_enc_str(e, owner);
	msgpack_pack_uint32(&e->pk, inc);
	msgpack_pack_uint64(&e->pk, seq);
	msgpack_pack_uint8(&e->pk, kind);
	mpack_enc_str(e, by);
}

/* [owner, inc, seq, kind, by, by's pubkey, by's sig] */
void will_enc_done(struct mpack_enc *e, const char *owner, uint32_t inc, uint64_t seq,
		   uint8_t kind, const char *by, const uint8_t *pub, const uint8_t *sig)
{
	will_enc_done_fields(e, owner, inc, seq, kind, by, 2);
	mpack_enc_bin(e, pub, WILL_KEY_LEN);
	mpack_enc_bin(e, sig, WILL_SIG_LEN);
}

/* The signed fields of a DUE: [owner, inc, by]. */
void will_enc_due_fields(struct mpack_enc *e, const char *owner, uint32_t inc, const char *by,
			 uint32_t extra)
{
	msgpack_pack_array(&e->pk, 3 + extra);
	mpack_enc_str(e, owner);
	msgpack_pack_uint32(&e->pk, inc);
	mpack_enc_str(e, by);
}

/* tag | type | fields: what a signature covers (the type byte keeps a
 * signature for one message kind from passing as another's). */
static uint8_t *signed_bytes(uint8_t type, const struct mpack_enc *fields, size_t *n)
{
	*n = SIG_TAG_LEN + 1 + fields->sb.size;
	uint8_t *m = malloc(*n);
	if (m) {
		memcpy(m, SIG_TAG, SIG_TAG_LEN);
		m[SIG_TAG_LEN] = type;
		memcpy(m + SIG_TAG_LEN + 1, fields->sb.data, fields->sb.size);
	}
	return m;
}

/* Sign fields (consumed) with our key. */
bool will_sign_fields(const struct will *w, uint8_t type, struct mpack_enc *fields,
			uint8_t sig[WILL_SIG_LEN])
{
	size_t n;
	uint8_t *m = signed_bytes(type, fields, &n);
	bool ok = m && will_key_sign(w->key, m, n, sig);
	free(m);
	msgpack_sbuffer_destroy(&fields->sb);
	if (!ok)
		memset(sig, 0, WILL_SIG_LEN);
	return ok;
}

/* Our version of our own will: sign what r now holds. */
void will_sign_rec(const struct will *w, struct wrec *r)
{
	struct mpack_enc f;
	struct pver v;
	pver_of(r, &v);
	mpack_enc_init(&f, -1);
	enc_version_fields(&f, &v, 0);
	will_sign_fields(w, WILL_MSG_VERSION, &f, r->sig);
}

bool will_sign_done(const struct will *w, const char *owner, uint32_t inc, uint64_t seq,
		    uint8_t kind, uint8_t sig[WILL_SIG_LEN])
{
	struct mpack_enc f;
	mpack_enc_init(&f, -1);
	will_enc_done_fields(&f, owner, inc, seq, kind, w->cfg.name, 0);
	return will_sign_fields(w, WILL_MSG_DONE, &f, sig);
}

/*
 * Did `signer` sign fields (consumed)?  `pub` is the key the message came
 * with: it must be the key bound to signer, or, for a member we know (swim
 * reported it) and have no key for yet, it becomes the binding once the
 * signature checks out (trust on first use, when may_bind).  A refusal is
 * counted; it is logged at debug level only: a flood must not flood the log.
 */
bool will_check_sig(struct will *w, const char *signer, const uint8_t *pub, uint8_t type,
		    struct mpack_enc *fields, const uint8_t *sig, bool may_bind)
{
	const uint8_t *bound = will_pub_of(w, signer);
	bool ok = false;
	if (bound && memcmp(bound, pub, WILL_KEY_LEN) != 0) {
		w->stats.key_conflicts++;
		will_logf(w, 0, "will: %s message signed by a key that is not %s's: refused",
			  type == WILL_MSG_VERSION ? "version" : "marker", signer);
	} else if (!bound && (!may_bind || !will_mem_find(w, signer))) {
		w->stats.sig_refused++;
		will_logf(w, 0, "will: message signed by %s, whose key we do not know: refused",
			  signer);
	} else {
		size_t n;
		uint8_t *m = signed_bytes(type, fields, &n);
		ok = m && will_key_verify(pub, m, n, sig);
		free(m);
		if (!ok) {
			w->stats.sig_refused++;
			will_logf(w, 0, "will: bad signature on a message from %s: refused", signer);
		} else if (!bound) {
			if (will_bind_add(w, signer, pub))
				w->dirty = true;
			else
				ok = false; /* over WILL_BINDINGS_MAX */
		}
	}
	msgpack_sbuffer_destroy(&fields->sb);
	return ok;
}

void will_out_broadcast(struct will *w, struct mpack_enc *e)
{
	if (w->cfg.out.broadcast && e->sb.size > 0)
		w->cfg.out.broadcast(w->cfg.out.ctx, (const uint8_t *)e->sb.data, e->sb.size);
}

void will_broadcast_version(struct will *w, const struct wrec *r)
{
	const uint8_t *pub = will_pub_of(w, r->owner);
	if (!pub)
		return;
	struct mpack_enc e;
	mpack_enc_init(&e, WILL_MSG_VERSION);
	will_enc_version(&e, r, pub);
	will_out_broadcast(w, &e);
	msgpack_sbuffer_destroy(&e.sb);
}

#define DONE_FANOUT 8 /* lowest-named members told directly */

/*
 * Broadcast a DONE (and send it straight to `also_to`, the sender of a
 * delivery).  With `fanout`, also send it twice directly to the lowest-named
 * alive members: they are the next senders/publishers in line, and gossip
 * alone is not enough — memberlist retransmits a rumour only a few times
 * (retransmit_mult * log10(n+1) packets, some of them to dead members), so
 * a takeover candidate can miss it and act a second time.
 */
void will_send_done(struct will *w, const char *owner, uint32_t inc, uint64_t seq,
		    uint8_t kind, const struct wire_addr *also_to, bool fanout)
{
	struct mpack_enc e;
	uint8_t sig[WILL_SIG_LEN];
	will_sign_done(w, owner, inc, seq, kind, sig);
	mpack_enc_init(&e, WILL_MSG_DONE);
	will_enc_done(&e, owner, inc, seq, kind, w->cfg.name, w->pub, sig);
	will_out_broadcast(w, &e);
	if (w->cfg.out.send_to) {
		const uint8_t *p = (const uint8_t *)e.sb.data;
		if (also_to)
			w->cfg.out.send_to(w->cfg.out.ctx, also_to, p, e.sb.size);
		for (size_t i = 0, k = 0; fanout && i < w->n_mem && k < DONE_FANOUT; i++) {
			const struct wmember *m = &w->mem[i];
			if (!will_alive_state(m->state) || will_is_self(w, m->name) ||
			    strcmp(m->name, owner) == 0)
				continue;
			w->cfg.out.send_to(w->cfg.out.ctx, &m->addr, p, e.sb.size);
			w->cfg.out.send_to(w->cfg.out.ctx, &m->addr, p, e.sb.size);
			k++;
		}
	}
	msgpack_sbuffer_destroy(&e.sb);
}

/* ------------------------------------------------------------ decoding */

/* Unpack exactly one object filling p[0..len) (no trailing bytes). */
bool will_unpack_all(const uint8_t *p, size_t len, msgpack_unpacked *u)
{
	size_t n;
	return wire_msgpack_unpack(p, len, SIZE_MAX, u, &n) == WIRE_OK && n == len;
}

/* A name: str or bin, no NUL, at most WIRE_NAME_MAX bytes; may be empty. */
bool will_get_name(const msgpack_object *o, char out[WIRE_NAME_MAX + 1])
{
	const uint8_t *p;
	uint32_t n;
	return mpack_view(o, &p, &n) && mpack_text_copy(p, n, out, WIRE_NAME_MAX + 1);
}

static bool get_bytes(const msgpack_object *o, size_t max, const uint8_t **p, size_t *n)
{
	uint32_t len;
	if (!mpack_go_bytes(o, p, &len))
		return false;
	*n = len;
	return len <= max;
}

const msgpack_object *will_array_n(const msgpack_object *o, uint32_t n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
		return NULL;
	return o->via.array.ptr;
}

/* A bin of exactly n bytes (a key or a signature). */
bool will_get_fixed(const msgpack_object *o, size_t n, const uint8_t **p)
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n)
		return false;
	*p = (const uint8_t *)o->via.bin.ptr;
	return true;
}

/* An array of n elements, or of the unsigned protocol's `old_n` (counted:
 * every node of a cluster must run signed wills). */
const msgpack_object *will_array_signed(struct will *w, const msgpack_object *o, uint32_t n,
					uint32_t old_n)
{
	if (w && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == old_n)
		w->stats.unsigned_refused++;
	return will_array_n(o, n);
}

/*
 * [owner, seq, tomb, kind, target, delay_ms, payload, pubkey, sig].  Seq 0
 * is only a tombstone: a member's "no will, and this is my key" record.
 */
bool will_dec_version(struct will *w, const msgpack_object *o, struct pver *v)
{
	const msgpack_object *a = will_array_signed(w, o, 9, 7);
	return a && will_get_fixed(&a[7], WILL_KEY_LEN, &v->pub) &&
	       will_get_fixed(&a[8], WILL_SIG_LEN, &v->sig) && will_dec_fields(a, v);
}

/* The 7 signed fields (also a version-1 state file's own will, unsigned). */
bool will_dec_fields(const msgpack_object *a, struct pver *v)
{
	uint64_t kind, delay;
	if (!will_get_name(&a[0], v->owner) || !v->owner[0] ||
	    !mpack_uint(&a[1], UINT64_MAX, &v->seq) ||
	    a[2].type != MSGPACK_OBJECT_BOOLEAN || !mpack_uint(&a[3], KIND_EVENT, &kind) ||
	    !will_get_name(&a[4], v->target) || !mpack_uint(&a[5], DELAY_MAX_MS, &delay) ||
	    !get_bytes(&a[6], VIGIL_WILL_MAX, &v->payload, &v->plen))
		return false;
	v->tomb = a[2].via.boolean;
	v->kind = (uint8_t)kind;
	v->delay = (int64_t)delay;
	if ((!v->tomb && !v->target[0]) || (v->seq == 0 && !v->tomb))
		return false;
	if (!v->tomb && v->kind == KIND_MEMBER && strcmp(v->target, v->owner) == 0)
		return false;
	return true;
}

/* [owner, inc, seq, kind, by, pubkey, sig] */
bool will_dec_done(struct will *w, const msgpack_object *o, struct pdone *d)
{
	const msgpack_object *a = will_array_signed(w, o, 7, 5);
	return a && will_get_name(&a[0], d->owner) && d->owner[0] &&
	       mpack_uint(&a[1], UINT32_MAX, &d->inc) && mpack_uint(&a[2], UINT64_MAX, &d->seq) &&
	       mpack_uint(&a[3], KIND_EVENT, &d->kind) && will_get_name(&a[4], d->by) && d->by[0] &&
	       will_get_fixed(&a[5], WILL_KEY_LEN, &d->pub) && will_get_fixed(&a[6], WILL_SIG_LEN, &d->sig);
}

/* Is v signed by its owner (binding the owner's key on first sight)? */
bool will_verify_version(struct will *w, const struct pver *v, bool may_bind)
{
	struct mpack_enc f;
	mpack_enc_init(&f, -1);
	enc_version_fields(&f, v, 0);
	return will_check_sig(w, v->owner, v->pub, WILL_MSG_VERSION, &f, v->sig, may_bind);
}

/* Push-pull record: [type][len u32 BE][msgpack]. */
static void put_record(struct wbuf *out, uint8_t type, const struct mpack_enc *e)
{
	uint8_t h[5] = { type, (uint8_t)(e->sb.size >> 24), (uint8_t)(e->sb.size >> 16),
			 (uint8_t)(e->sb.size >> 8), (uint8_t)e->sb.size };
	wbuf_append(out, h, sizeof h);
	wbuf_append(out, e->sb.data, e->sb.size);
}

void will_local_state(struct will *w, bool join, struct wbuf *out)
{
	(void)join;
	if (!w || !out)
		return;
	struct mpack_enc e;
	size_t nv = 0, na = 0;
	for (size_t i = 0; i < w->n_rec; i++)
		nv += w->rec[i]->has_version && will_pub_of(w, w->rec[i]->owner);
	mpack_enc_init(&e, -1);
	msgpack_pack_array(&e.pk, (uint32_t)nv);
	for (size_t i = 0; i < w->n_rec; i++) {
		const uint8_t *pub = will_pub_of(w, w->rec[i]->owner);
		if (w->rec[i]->has_version && pub)
			will_enc_version(&e, w->rec[i], pub);
	}
	put_record(out, WILL_MSG_VERSION, &e);
	msgpack_sbuffer_destroy(&e.sb);

	/* Acks travel with their signer's signature, so others check them too. */
	for (size_t i = 0; i < w->n_ack; i++)
		na += w->ack[i].has_sig && will_pub_of(w, w->ack[i].by);
	mpack_enc_init(&e, -1);
	msgpack_pack_array(&e.pk, (uint32_t)na);
	for (size_t i = 0; i < w->n_ack; i++) {
		const struct ackrec *a = &w->ack[i];
		const uint8_t *pub = will_pub_of(w, a->by);
		if (a->has_sig && pub)
			will_enc_done(&e, a->owner, a->inc, a->seq, a->kind, a->by, pub, a->sig);
	}
	put_record(out, WILL_MSG_DONE, &e);
	msgpack_sbuffer_destroy(&e.sb);
}
