/*
 * will_store.c — the will state file: will_save and will_load.
 *
 * Separate from will.c because it is about a file, not the protocol: the
 * durable part of the state (our own will, the recipient's dedup records,
 * the acks and the key bindings) in a checksummed, atomically replaced file,
 * and the rule that a corrupt file is dropped whole rather than half-trusted.
 */
#include "will_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>

#include "safefile.h"

/* ------------------------------------------------------- persistence */

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * File: "VWIL" | body length u32 BE | body | crc32(body) u32 BE, body =
 * msgpack [2, own_hi, own will version or nil,
 *          [[owner, inc, seq, returned_inc, revoked]...],   (rx)
 *          [[owner, inc, seq, kind, mine, by, sig]...],     (acks)
 *          [[name, pubkey]...]]                             (key bindings)
 * Version 1 (before signed wills) had no bindings, acks without by/sig and
 * an unsigned own version; it still loads.
 */
int will_save(const struct will *w, const char *path)
{
	if (!w || !path)
		return WILL_EINVAL;
	struct mpack_enc e;
	mpack_enc_init(&e, -1);
	msgpack_pack_array(&e.pk, 6);
	msgpack_pack_uint32(&e.pk, STATE_VERSION);
	msgpack_pack_uint64(&e.pk, w->own_hi);
	const struct wrec *own = will_rec_find(w, w->cfg.name);
	if (own && own->has_version)
		will_enc_version(&e, own, w->pub);
	else
		msgpack_pack_nil(&e.pk);
	msgpack_pack_array(&e.pk, (uint32_t)w->n_rx);
	for (size_t i = 0; i < w->n_rx; i++) {
		msgpack_pack_array(&e.pk, 5);
		mpack_enc_str(&e, w->rx[i].owner);
		msgpack_pack_uint32(&e.pk, w->rx[i].inc);
		msgpack_pack_uint64(&e.pk, w->rx[i].seq);
		msgpack_pack_uint32(&e.pk, w->rx[i].returned_inc);
		mpack_enc_bool(&e, w->rx[i].revoked);
	}
	msgpack_pack_array(&e.pk, (uint32_t)w->n_ack);
	for (size_t i = 0; i < w->n_ack; i++) {
		msgpack_pack_array(&e.pk, 7);
		mpack_enc_str(&e, w->ack[i].owner);
		msgpack_pack_uint32(&e.pk, w->ack[i].inc);
		msgpack_pack_uint64(&e.pk, w->ack[i].seq);
		msgpack_pack_uint8(&e.pk, w->ack[i].kind);
		mpack_enc_bool(&e, w->ack[i].mine);
		mpack_enc_str(&e, w->ack[i].by);
		if (w->ack[i].has_sig)
			mpack_enc_bin(&e, w->ack[i].sig, WILL_SIG_LEN);
		else
			msgpack_pack_nil(&e.pk);
	}
	msgpack_pack_array(&e.pk, (uint32_t)w->n_bind);
	for (size_t i = 0; i < w->n_bind; i++) {
		msgpack_pack_array(&e.pk, 2);
		mpack_enc_str(&e, w->bind[i].name);
		mpack_enc_bin(&e, w->bind[i].pub, WILL_KEY_LEN);
	}
	size_t blen = e.sb.size;
	uint32_t crc = libdeflate_crc32(0, e.sb.data, blen);
	uint8_t head[8] = { 'V', 'W', 'I', 'L', (uint8_t)(blen >> 24), (uint8_t)(blen >> 16),
			    (uint8_t)(blen >> 8), (uint8_t)blen };
	uint8_t tail[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
			    (uint8_t)crc };

	const struct safefile_part parts[3] = {
		{ head, sizeof head }, { e.sb.data, blen }, { tail, sizeof tail } };
	int rc = safefile_write(path, parts, 3, NULL, NULL, 0) == 0 ? WILL_OK
		 : errno == ENOMEM ? WILL_ENOMEM : WILL_EIO;
	msgpack_sbuffer_destroy(&e.sb);
	return rc;
}

/* Forget everything will_load would have restored. */
static void reset_durable(struct will *w)
{
	w->own_hi = 0;
	w->own_auth = false;
	will_own_identity(w);
	w->n_rx = 0;
	w->n_ack = 0;
	w->n_bind = 0;
}

static int load_body(struct will *w, const uint8_t *p, size_t len)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int rc = WILL_EFORMAT;
	const msgpack_object *a, *rxa, *aka, *bda = NULL;
	uint64_t ver, own_hi;
	struct pver own;
	bool have_own = false;
	struct rxrec *rx = NULL;
	struct ackrec *ak = NULL;
	struct wbind *bd = NULL;
	if (!will_unpack_all(p, len, &u) || u.data.type != MSGPACK_OBJECT_ARRAY ||
	    u.data.via.array.size < 1 || !mpack_uint(&u.data.via.array.ptr[0], 2, &ver) ||
	    ver < 1 || !(a = will_array_n(&u.data, ver == 1 ? 5 : 6)) ||
	    !mpack_uint(&a[1], UINT64_MAX, &own_hi) || a[3].type != MSGPACK_OBJECT_ARRAY ||
	    a[4].type != MSGPACK_OBJECT_ARRAY ||
	    (ver >= 2 && a[5].type != MSGPACK_OBJECT_ARRAY))
		goto out;
	if (a[2].type != MSGPACK_OBJECT_NIL) {
		const msgpack_object *f = ver == 1 ? will_array_n(&a[2], 7) : NULL;
		if (!(f ? will_dec_fields(f, &own) : will_dec_version(NULL, &a[2], &own)) ||
		    strcmp(own.owner, w->cfg.name) != 0 || own.seq > own_hi)
			goto out;
		have_own = true; /* re-signed with our key as it is stored */
	}
	rxa = a[3].via.array.ptr;
	aka = a[4].via.array.ptr;
	uint32_t nrx = a[3].via.array.size, nak = a[4].via.array.size, nbd = 0;
	if (ver >= 2) {
		bda = a[5].via.array.ptr;
		nbd = a[5].via.array.size;
	}
	rx = nrx ? calloc(nrx, sizeof *rx) : NULL;
	ak = nak ? calloc(nak, sizeof *ak) : NULL;
	bd = nbd ? calloc(nbd, sizeof *bd) : NULL;
	if ((nrx && !rx) || (nak && !ak) || (nbd && !bd) || nbd > WILL_BINDINGS_MAX) {
		rc = nbd > WILL_BINDINGS_MAX ? WILL_EFORMAT : WILL_ENOMEM;
		goto out;
	}
	bool ok = true;
	for (uint32_t i = 0; i < nrx && ok; i++) {
		const msgpack_object *e = will_array_n(&rxa[i], 5);
		uint64_t inc, seq, ret;
		ok = e && will_get_name(&e[0], rx[i].owner) && rx[i].owner[0] &&
		     mpack_uint(&e[1], UINT32_MAX, &inc) && mpack_uint(&e[2], UINT64_MAX, &seq) &&
		     mpack_uint(&e[3], UINT32_MAX, &ret) && e[4].type == MSGPACK_OBJECT_BOOLEAN;
		if (ok) {
			rx[i].inc = (uint32_t)inc;
			rx[i].seq = seq;
			rx[i].returned_inc = (uint32_t)ret;
			rx[i].revoked = e[4].via.boolean;
		}
	}
	for (uint32_t i = 0; i < nak && ok; i++) {
		const msgpack_object *e = will_array_n(&aka[i], ver == 1 ? 5 : 7);
		const uint8_t *sig = NULL;
		uint64_t inc, seq, kind;
		ok = e && will_get_name(&e[0], ak[i].owner) && ak[i].owner[0] &&
		     mpack_uint(&e[1], UINT32_MAX, &inc) && mpack_uint(&e[2], UINT64_MAX, &seq) &&
		     mpack_uint(&e[3], KIND_EVENT, &kind) && e[4].type == MSGPACK_OBJECT_BOOLEAN &&
		     (ver == 1 || (will_get_name(&e[5], ak[i].by) &&
				   (e[6].type == MSGPACK_OBJECT_NIL ||
				    will_get_fixed(&e[6], WILL_SIG_LEN, &sig))));
		if (ok) {
			ak[i].inc = (uint32_t)inc;
			ak[i].seq = seq;
			ak[i].kind = (uint8_t)kind;
			ak[i].mine = e[4].via.boolean;
			ak[i].has_sig = sig != NULL;
			if (sig)
				memcpy(ak[i].sig, sig, WILL_SIG_LEN);
		}
	}
	for (uint32_t i = 0; i < nbd && ok; i++) {
		const msgpack_object *e = will_array_n(&bda[i], 2);
		const uint8_t *pub;
		ok = e && will_get_name(&e[0], bd[i].name) && bd[i].name[0] &&
		     will_get_fixed(&e[1], WILL_KEY_LEN, &pub);
		if (ok)
			memcpy(bd[i].pub, pub, WILL_KEY_LEN);
	}
	if (!ok)
		goto out;
	/* All valid: replace. */
	reset_durable(w);
	free(w->rx);
	free(w->ack);
	free(w->bind);
	w->rx = rx;
	w->n_rx = w->cap_rx = nrx;
	w->ack = ak;
	w->n_ack = w->cap_ack = nak;
	w->bind = bd;
	w->n_bind = w->cap_bind = nbd;
	rx = NULL;
	ak = NULL;
	bd = NULL;
	w->own_hi = own_hi;
	w->own_auth = true;
	if (have_own) {
		struct wrec *r = will_rec_get(w, w->cfg.name);
		if (!r || !will_rec_set_version(w, r, &own)) {
			rc = WILL_ENOMEM;
			goto out;
		}
	}
	rc = WILL_OK;
out:
	free(rx);
	free(ak);
	free(bd);
	msgpack_unpacked_destroy(&u);
	return rc;
}

int will_load(struct will *w, const char *path)
{
	if (!w || !path)
		return WILL_EINVAL;
	w->due_stale = true; /* records may change: see struct will */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? WILL_ENOENT : WILL_EIO;
	struct stat st;
	uint8_t *buf = NULL;
	int rc = WILL_EIO;
	if (fstat(fd, &st) != 0)
		goto out;
	rc = WILL_EFORMAT;
	if (st.st_size < 12 || (uint64_t)st.st_size > STATE_MAX)
		goto bad;
	size_t n = (size_t)st.st_size, got = 0;
	buf = malloc(n);
	if (!buf) {
		rc = WILL_ENOMEM;
		goto out;
	}
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	if (got != n)
		goto bad;
	uint64_t blen = rd_be(buf + 4, 4);
	if (memcmp(buf, STATE_MAGIC, 4) != 0 || blen != n - 12)
		goto bad;
	uint32_t crc = libdeflate_crc32(0, buf + 8, blen);
	if (crc != (uint32_t)rd_be(buf + 8 + blen, 4))
		goto bad;
	rc = load_body(w, buf + 8, (size_t)blen);
	if (rc == WILL_OK)
		goto out;
bad:
	/* A corrupt file: start fresh rather than half-trust it. */
	will_logf(w, 3, "will: state file %s is corrupt; starting fresh", path);
	reset_durable(w);
	if (rc != WILL_ENOMEM)
		rc = WILL_EFORMAT;
out:
	free(buf);
	close(fd);
	return rc;
}
