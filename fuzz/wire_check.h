/*
 * wire_check.h — oracles for decoded memberlist messages, shared by the
 * packet, stream and swim targets.
 *
 * wire_check_msg(buf, len) decodes one message and, when it decodes:
 *   - reads every byte of every view (ASan checks they are live memory),
 *   - checks the views point into buf and the limits wire.h promises,
 *   - re-encodes it, decodes that again and compares field by field, and
 *     checks that encoding is a fixed point (enc(dec(enc(m))) == enc(m)).
 */
#ifndef VIGIL_FUZZ_WIRE_CHECK_H
#define VIGIL_FUZZ_WIRE_CHECK_H

#include "fuzz_common.h"
#include "wire.h"

static void wc_bytes(const struct wire_bytes *b, const uint8_t *buf, size_t len,
		     uint32_t limit)
{
	fuzz_touch(b->p, b->len);
	FUZZ_ASSERT(fuzz_within(b->p, b->len, buf, len));
	if (limit)
		FUZZ_ASSERT(b->len <= limit);
}

static void wc_addr(const struct wire_addr *a)
{
	FUZZ_ASSERT(a->ip_len == 0 || a->ip_len == 4 || a->ip_len == 16);
}

static bool wc_bytes_eq(const struct wire_bytes *a, const struct wire_bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static bool wc_addr_eq(const struct wire_addr *a, const struct wire_addr *b)
{
	return a->ip_len == b->ip_len && a->port == b->port &&
	       memcmp(a->ip, b->ip, a->ip_len) == 0;
}

/* Views and limits of a successfully decoded message. */
static void wc_views(const struct wire_msg *m, const uint8_t *buf, size_t len)
{
	switch (m->type) {
	case WIRE_PING:
		wc_bytes(&m->u.ping.node, buf, len, WIRE_NAME_MAX);
		wc_bytes(&m->u.ping.source_node, buf, len, WIRE_NAME_MAX);
		wc_addr(&m->u.ping.source);
		break;
	case WIRE_INDIRECT_PING:
		wc_bytes(&m->u.indirect.node, buf, len, WIRE_NAME_MAX);
		wc_bytes(&m->u.indirect.source_node, buf, len, WIRE_NAME_MAX);
		wc_addr(&m->u.indirect.source);
		wc_addr(&m->u.indirect.target);
		break;
	case WIRE_ACK:
		wc_bytes(&m->u.ack.payload, buf, len, 0);
		break;
	case WIRE_NACK:
		break;
	case WIRE_ERR:
		wc_bytes(&m->u.err.error, buf, len, 0);
		break;
	case WIRE_SUSPECT:
	case WIRE_DEAD:
		wc_bytes(&m->u.suspect.node, buf, len, WIRE_NAME_MAX);
		wc_bytes(&m->u.suspect.from, buf, len, WIRE_NAME_MAX);
		break;
	case WIRE_ALIVE:
		wc_bytes(&m->u.alive.node, buf, len, WIRE_NAME_MAX);
		wc_bytes(&m->u.alive.meta, buf, len, WIRE_META_MAX);
		wc_addr(&m->u.alive.addr);
		FUZZ_ASSERT(m->u.alive.vsn_len == 0 || m->u.alive.vsn_len == 6);
		break;
	case WIRE_USER:
		wc_bytes(&m->u.user.payload, buf, len, 0);
		FUZZ_ASSERT(m->u.user.payload.len == len - 1);
		break;
	default:
		FUZZ_ASSERTF(0, "decoded an unexpected type %d", (int)m->type);
	}
}

static bool wc_msg_eq(const struct wire_msg *a, const struct wire_msg *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case WIRE_PING:
		return a->u.ping.seq == b->u.ping.seq &&
		       wc_bytes_eq(&a->u.ping.node, &b->u.ping.node) &&
		       wc_addr_eq(&a->u.ping.source, &b->u.ping.source) &&
		       wc_bytes_eq(&a->u.ping.source_node, &b->u.ping.source_node);
	case WIRE_INDIRECT_PING:
		return a->u.indirect.seq == b->u.indirect.seq &&
		       wc_addr_eq(&a->u.indirect.target, &b->u.indirect.target) &&
		       wc_bytes_eq(&a->u.indirect.node, &b->u.indirect.node) &&
		       a->u.indirect.nack == b->u.indirect.nack &&
		       wc_addr_eq(&a->u.indirect.source, &b->u.indirect.source) &&
		       wc_bytes_eq(&a->u.indirect.source_node, &b->u.indirect.source_node);
	case WIRE_ACK:
		return a->u.ack.seq == b->u.ack.seq &&
		       wc_bytes_eq(&a->u.ack.payload, &b->u.ack.payload);
	case WIRE_NACK:
		return a->u.nack.seq == b->u.nack.seq;
	case WIRE_ERR:
		return wc_bytes_eq(&a->u.err.error, &b->u.err.error);
	case WIRE_SUSPECT:
	case WIRE_DEAD:
		return a->u.suspect.incarnation == b->u.suspect.incarnation &&
		       wc_bytes_eq(&a->u.suspect.node, &b->u.suspect.node) &&
		       wc_bytes_eq(&a->u.suspect.from, &b->u.suspect.from);
	case WIRE_ALIVE:
		return a->u.alive.incarnation == b->u.alive.incarnation &&
		       wc_bytes_eq(&a->u.alive.node, &b->u.alive.node) &&
		       wc_addr_eq(&a->u.alive.addr, &b->u.alive.addr) &&
		       wc_bytes_eq(&a->u.alive.meta, &b->u.alive.meta) &&
		       a->u.alive.vsn_len == b->u.alive.vsn_len &&
		       memcmp(a->u.alive.vsn, b->u.alive.vsn, a->u.alive.vsn_len) == 0;
	case WIRE_USER:
		return wc_bytes_eq(&a->u.user.payload, &b->u.user.payload);
	default:
		return false;
	}
}

/* Decode buf as one message and check it; returns wire_decode's code. */
static int wire_check_msg(const uint8_t *buf, size_t len)
{
	struct wire_msg m, m2;
	int rc = wire_decode(buf, len, &m);
	FUZZ_ASSERT(rc <= 0);
	if (len > 0)
		FUZZ_ASSERT(m.type == (enum wire_type)buf[0]);
	if (rc != WIRE_OK)
		return rc;
	wc_views(&m, buf, len);

	struct wbuf e1, e2;
	wbuf_init(&e1);
	wbuf_init(&e2);
	int erc = wire_encode(&e1, &m);
	FUZZ_ASSERTF(erc == WIRE_OK, "re-encoding a decoded type %d message: %s",
		     (int)m.type, wire_strerror(erc));
	FUZZ_ASSERT(e1.len >= 1 && e1.p[0] == buf[0]);
	int rc2 = wire_decode(e1.p, e1.len, &m2);
	FUZZ_ASSERTF(rc2 == WIRE_OK, "decoding our own encoding of type %d: %s", (int)m.type,
		     wire_strerror(rc2));
	wc_views(&m2, e1.p, e1.len);
	FUZZ_ASSERTF(wc_msg_eq(&m, &m2), "type %d changed in a decode/encode/decode roundtrip",
		     (int)m.type);
	FUZZ_ASSERT(wire_encode(&e2, &m2) == WIRE_OK);
	FUZZ_ASSERT(e1.len == e2.len && memcmp(e1.p, e2.p, e1.len) == 0);
	if (m.type == WIRE_USER)
		FUZZ_ASSERT(e1.len == len && memcmp(e1.p, buf, len) == 0);
	wbuf_free(&e1);
	wbuf_free(&e2);
	return rc;
}

#endif
