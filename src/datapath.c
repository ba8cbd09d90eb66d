/*
 * datapath.c — what goes between SWIM and the sockets: memberlist's
 * encryption of packets and streams (net.go, security.go), with the
 * keyring of crypto.h.
 *
 * As memberlist does it:
 *   UDP out:  swim packet -> encrypt(whole packet, primary key, no AAD)
 *             when a keyring exists and gossip_verify_outgoing.
 *   UDP in:   decrypt with any key; on failure drop it if
 *             gossip_verify_incoming, else treat it as plaintext.
 *   TCP out:  [10][u32 len][encrypt(msg, AAD = those 5 bytes)] likewise.
 *   TCP in:   an encrypt frame is decrypted (and refused without a
 *             keyring); a plaintext frame is refused when
 *             gossip_verify_incoming.
 * Anything malformed is dropped and counted, never trusted.
 */
#include "datapath.h"

#include <stdlib.h>
#include <string.h>

static bool encrypt_out(const struct vigil *v)
{
	return v->kr && v->cfg.gossip_verify_outgoing;
}

void datapath_send_packet(void *ctx, const struct wire_addr *to, const uint8_t *pkt, size_t len)
{
	struct vigil *v = ctx;
	if (!encrypt_out(v)) {
		transport_send_packet(v->tr, to, pkt, len);
		return;
	}
	/* Not into crypt_buf: we may be sending (an ack, a query response)
	 * while a packet decrypted there is still being handled, and
	 * overwriting it garbled whatever of it was still to be read or
	 * rebroadcast (the serf query we just answered, say). */
	size_t need = vigil_encrypted_len(v->enc_version, len);
	size_t out_len = 0;
	uint8_t *buf = need && need <= v->crypt_cap ? malloc(need) : NULL;
	if (!buf || vigil_encrypt(v->kr, v->enc_version, NULL, 0, pkt, len, buf, need,
				  &out_len) != VIGIL_CRYPTO_OK) {
		free(buf);
		v->encrypt_failed++;
		vlog(v, 3, "vigil: failed to encrypt a %zu byte packet", len);
		return;
	}
	transport_send_packet(v->tr, to, buf, out_len);
	free(buf);
}

void datapath_send_stream(void *ctx, const struct wire_addr *to, const uint8_t *msg,
			  size_t len, uint64_t cookie)
{
	struct vigil *v = ctx;
	if (!encrypt_out(v)) {
		transport_send_stream(v->tr, to, msg, len, cookie, v->now);
		return;
	}
	size_t cap = VIGIL_CRYPTO_STREAM_HDR + vigil_encrypted_len(v->enc_version, len);
	uint8_t *buf = malloc(cap);
	size_t out_len = 0;
	int rc = buf ? vigil_encrypt_stream(v->kr, v->enc_version, msg, len, buf, cap, &out_len)
		     : VIGIL_CRYPTO_ENOMEM;
	if (rc != VIGIL_CRYPTO_OK) {
		v->encrypt_failed++;
		vlog(v, 3, "vigil: failed to encrypt stream: %s", vigil_crypto_strerror(rc));
		/* An empty message fails in the transport and is reported to
		 * swim asynchronously, as swim expects. */
		transport_send_stream(v->tr, to, NULL, 0, cookie, v->now);
	} else {
		transport_send_stream(v->tr, to, buf, out_len, cookie, v->now);
	}
	free(buf);
}

/* ------------------------------------------------------------------ in */

/* Only for counting drops: does an undecryptable datagram parse as a
 * plaintext memberlist packet (a node without the key, say)?  Each message
 * must decode and its msgpack body span it exactly, so the random bytes of
 * a wrongly keyed packet (whose version byte 0/1 reads as a ping type) are
 * not mistaken for one.  Nothing of it is used. */
struct plain_probe {
	size_t ok, bad;
};

static void plain_probe_msg(void *ctx, const uint8_t *msg, size_t len)
{
	struct plain_probe *pp = ctx;
	struct wire_msg m;
	size_t body = 0;
	if (wire_decode(msg, len, &m) != WIRE_OK)
		pp->bad++;
	else if (m.type == WIRE_USER) {
		/* raw payload: proves nothing either way */
	} else if (wire_msgpack_span(msg + 1, len - 1, len - 1, &body) == WIRE_OK && body == len - 1)
		pp->ok++;
	else
		pp->bad++;
}

static bool looks_plaintext(const uint8_t *pkt, size_t len)
{
	struct plain_probe pp = {0, 0};
	if (wire_unwrap_packet(pkt, len, plain_probe_msg, &pp) != WIRE_OK)
		return false;
	return pp.ok > 0 && pp.bad == 0;
}

void datapath_on_packet(void *ctx, const struct wire_addr *from, const uint8_t *pkt, size_t len)
{
	struct vigil *v = ctx;
	if (len == 0) {
		/* counted as malformed, before decryption would call it a
		 * decrypt failure */
		v->udp_empty++;
		return;
	}
	if (v->kr) {
		size_t plen = 0;
		int rc = vigil_decrypt(v->kr, NULL, 0, pkt, len, v->crypt_buf, v->crypt_cap, &plen);
		if (rc == VIGIL_CRYPTO_OK) {
			pkt = v->crypt_buf;
			len = plen;
		} else if (v->cfg.gossip_verify_incoming) {
			char a[80];
			v->udp_decrypt_failed++;
			if (looks_plaintext(pkt, len))
				v->udp_drop_plaintext++;
			else if (rc != VIGIL_CRYPTO_EAUTH && rc != VIGIL_CRYPTO_EPAD)
				v->udp_drop_malformed++;
			vlog_rl(v, 3, "vigil: decrypt packet failed: %s from=%s",
			     vigil_crypto_strerror(rc), transport_format_addr(from, a, sizeof a));
			return;
		} else {
			/* memberlist: not verifying, so treat it as plaintext */
			v->udp_plain_accepted++;
		}
	}
	if (len == 0) {
		v->udp_empty++; /* an encrypted empty message */
		return;
	}
	swim_handle_packet(v->sw, from, pkt, len, v->now);
}

/*
 * Turn a received stream message into plaintext according to the keyring
 * and verify_incoming.  Returns the plaintext (msg itself or *owned, which
 * the caller frees) or NULL when the message must be dropped; then *why
 * is memberlist's error text for it (readStream's), or NULL.
 */
static const uint8_t *stream_plain(struct vigil *v, const struct wire_addr *from,
				   const uint8_t *msg, size_t len, size_t *plen,
				   uint8_t **owned, const char **why)
{
	char a[80];
	*owned = NULL;
	*why = NULL;
	if (len && msg[0] == VIGIL_CRYPTO_ENCRYPT_MSG) {
		if (!v->kr) {
			v->tcp_encrypted_no_key++;
			vlog_rl(v, 3, "vigil: remote state from %s is encrypted and encryption "
			     "is not configured", transport_format_addr(from, a, sizeof a));
			*why = "Remote state is encrypted and encryption is not configured";
			return NULL;
		}
		uint8_t *out = malloc(len);
		if (!out)
			return NULL;
		int rc = vigil_decrypt_stream(v->kr, msg, len, out, len, plen, NULL);
		if (rc != VIGIL_CRYPTO_OK || *plen == 0) {
			free(out);
			v->tcp_decrypt_failed++;
			vlog_rl(v, 3, "vigil: decrypt stream from %s failed: %s",
			     transport_format_addr(from, a, sizeof a),
			     rc ? vigil_crypto_strerror(rc) : "empty plaintext");
			*why = "No installed keys could decrypt the message";
			return NULL;
		}
		*owned = out;
		return out;
	}
	if (v->kr && v->cfg.gossip_verify_incoming) {
		v->tcp_plain_dropped++;
		vlog_rl(v, 3, "vigil: encryption is configured but remote state from %s "
		     "is not encrypted", transport_format_addr(from, a, sizeof a));
		*why = "Encryption is configured but remote state is not encrypted";
		return NULL;
	}
	*plen = len;
	return msg;
}

/* Append a stream message to reply, encrypted when we encrypt (memberlist
 * rawSendMsgStream). */
static void stream_reply(struct vigil *v, const struct wbuf *out, struct wbuf *reply)
{
	if (out->len && !out->oom) {
		if (encrypt_out(v)) {
			size_t cap = VIGIL_CRYPTO_STREAM_HDR +
				     vigil_encrypted_len(v->enc_version, out->len);
			uint8_t *buf = malloc(cap);
			size_t elen = 0;
			if (buf && vigil_encrypt_stream(v->kr, v->enc_version, out->p, out->len,
							buf, cap, &elen) == VIGIL_CRYPTO_OK) {
				wbuf_append(reply, buf, elen);
			} else {
				v->encrypt_failed++;
				vlog(v, 3, "vigil: failed to encrypt stream reply");
			}
			free(buf);
		} else {
			wbuf_append(reply, out->p, out->len);
		}
	}
}

void datapath_on_stream(void *ctx, const struct wire_addr *from, const uint8_t *msg,
			size_t len, struct wbuf *reply)
{
	struct vigil *v = ctx;
	uint8_t *owned;
	size_t plen;
	const char *why;
	const uint8_t *plain = stream_plain(v, from, msg, len, &plen, &owned, &why);
	struct wbuf out;
	wbuf_init(&out);
	if (!plain) {
		/* memberlist handleConn: tell the peer why (an errMsg), so a
		 * joiner with the wrong key sees that rather than EOF */
		if (why) {
			struct wire_msg e;
			memset(&e, 0, sizeof e);
			e.type = WIRE_ERR;
			e.u.err.error = (struct wire_bytes){ (const uint8_t *)why, (uint32_t)strlen(why) };
			wire_encode(&out, &e);
			stream_reply(v, &out, reply);
		}
		wbuf_free(&out);
		return;
	}
	int rc = swim_handle_stream(v->sw, from, plain, plen, &out, v->now);
	free(owned);
	if (rc != WIRE_OK) {
		char a[80];
		v->stream_malformed++;
		vlog_rl(v, 2, "vigil: bad stream message from %s: %s",
		     transport_format_addr(from, a, sizeof a), wire_strerror(rc));
	}
	stream_reply(v, &out, reply);
	wbuf_free(&out);
}

void datapath_on_unreachable(void *ctx, const struct wire_addr *to)
{
	struct vigil *v = ctx;
	if (v->sw)
		swim_hint_unreachable(v->sw, to, v->now);
}

void datapath_on_stream_reply(void *ctx, uint64_t cookie, const uint8_t *msg, size_t len)
{
	struct vigil *v = ctx;
	if (!msg) {
		swim_handle_stream_reply(v->sw, cookie, NULL, 0, v->now);
		return;
	}
	/* The reply comes from the address we dialled; only used for logs. */
	struct wire_addr unknown;
	memset(&unknown, 0, sizeof unknown);
	uint8_t *owned;
	size_t plen;
	const char *why; /* logged by stream_plain */
	const uint8_t *plain = stream_plain(v, &unknown, msg, len, &plen, &owned, &why);
	swim_handle_stream_reply(v->sw, cookie, plain, plain ? plen : 0, v->now);
	free(owned);
}

