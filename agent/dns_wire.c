/*
 * dns_wire.c — DNS message reading and writing for serf's mDNS discovery
 * (RFC 1035, RFC 6762; see dns_wire.h).
 *
 * The packets come from anyone on the link, so every read is bounds-checked
 * against the packet, name compression pointers must point strictly before
 * the previous jump (so they cannot loop) and are capped in number, and
 * names stay within 255 bytes.  What to do with a packet that does not
 * decode is the caller's business (discover.c counts and ignores it).
 */
#include "dns_wire.h"

#include <string.h>

/* ---------------------------------------------------------------- names */

int dns_name_from_dotted(struct dns_name *n, const char *text)
{
	size_t text_len = strlen(text);
	if (text_len > 0 && text[text_len - 1] == '.')
		text_len--;
	if (text_len == 0)
		return -1;
	n->len = 0;
	size_t start = 0;
	for (size_t i = 0; i <= text_len; i++) {
		if (i < text_len && text[i] != '.')
			continue;
		size_t label = i - start;
		if (label == 0 || label > DNS_LABEL_MAX || n->len + 1 + label + 1 > DNS_NAME_MAX)
			return -1;
		n->wire[n->len++] = (uint8_t)label;
		memcpy(n->wire + n->len, text + start, label);
		n->len = (uint16_t)(n->len + label);
		start = i + 1;
	}
	n->wire[n->len++] = 0;
	return 0;
}

static uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* DNS names compare without ASCII case (RFC 1035 2.3.3).  Folding the
 * length bytes too is harmless: they are at most 63, below 'A'. */
static bool wire_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

bool dns_name_equal(const struct dns_name *a, const struct dns_name *b)
{
	return wire_equal(a->wire, a->len, b->wire, b->len);
}

bool dns_name_is_instance_of(const struct dns_name *name, const struct dns_name *service)
{
	size_t off = 0;
	while (off < name->len && name->wire[off] != 0) {
		off += 1 + (size_t)name->wire[off];
		if (off < name->len && name->len - off == service->len)
			return wire_equal(name->wire + off, service->len, service->wire, service->len);
	}
	return false;
}

/* ------------------------------------------------------ packet reading */

/*
 * Every pointer must point before the previous jump target (before the
 * name's start for the first): compressors only point back at names
 * already written, and a strictly decreasing target cannot loop.  The step
 * bound makes termination evident besides.
 */
int dns_read_name(const uint8_t *pkt, size_t len, size_t *pos, struct dns_name *out)
{
	size_t at = *pos, limit = *pos, end_in_place = 0;
	unsigned hops = 0;
	out->len = 0;
	for (unsigned step = 0; step < DNS_NAME_MAX + DNS_MAX_POINTER_HOPS; step++) {
		if (at >= len)
			return -1;
		uint8_t c = pkt[at];
		if ((c & 0xC0) == 0xC0) {
			if (at + 1 >= len)
				return -1;
			size_t target = ((size_t)(c & 0x3F) << 8) | pkt[at + 1];
			if (target >= limit || ++hops > DNS_MAX_POINTER_HOPS)
				return -1;
			if (end_in_place == 0)
				end_in_place = at + 2;
			limit = target;
			at = target;
			continue;
		}
		if (c & 0xC0) /* 0x40, 0x80: RFC 6891's extended label types */
			return -1;
		if (c == 0) {
			out->wire[out->len++] = 0;
			*pos = end_in_place ? end_in_place : at + 1;
			return 0;
		}
		/* the label, and room for the final zero */
		if (at + 1 + c > len || out->len + 1 + (size_t)c + 1 > DNS_NAME_MAX)
			return -1;
		memcpy(out->wire + out->len, pkt + at, 1 + (size_t)c);
		out->len = (uint16_t)(out->len + 1 + c);
		at += 1 + (size_t)c;
	}
	return -1;
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int dns_read_header(const uint8_t *pkt, size_t len, struct dns_header *h)
{
	if (len < DNS_HEADER_LEN)
		return -1;
	h->id = get_u16(pkt);
	h->flags = get_u16(pkt + 2);
	h->questions = get_u16(pkt + 4);
	h->answers = get_u16(pkt + 6);
	h->authorities = get_u16(pkt + 8);
	h->additionals = get_u16(pkt + 10);
	return 0;
}

bool dns_is_plain(const struct dns_header *h)
{
	return (h->flags & (DNS_OPCODE_MASK | DNS_RCODE_MASK)) == 0;
}

int dns_read_question(const uint8_t *pkt, size_t len, size_t *pos, struct dns_question *q)
{
	if (dns_read_name(pkt, len, pos, &q->name) != 0 || *pos + 4 > len)
		return -1;
	q->type = get_u16(pkt + *pos);
	q->klass = get_u16(pkt + *pos + 2);
	*pos += 4;
	return 0;
}

/* A name inside rdata: it may be compressed, but its bytes in place must
 * end within the rdata. */
static int dns_read_rdata_name(const uint8_t *pkt, size_t len, size_t at, size_t rdata_end,
			       struct dns_name *out)
{
	size_t pos = at;
	if (dns_read_name(pkt, len, &pos, out) != 0 || pos > rdata_end)
		return -1;
	return 0;
}

int dns_read_record(const uint8_t *pkt, size_t len, size_t *pos, struct dns_record *r, bool *kept)
{
	*kept = false;
	if (dns_read_name(pkt, len, pos, &r->owner) != 0 || *pos + 10 > len)
		return -1;
	r->type = get_u16(pkt + *pos);
	r->ttl = get_u32(pkt + *pos + 4);
	size_t rdata = *pos + 10;
	size_t rdata_end = rdata + get_u16(pkt + *pos + 8);
	if (rdata_end > len)
		return -1;
	*pos = rdata_end;
	switch (r->type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		r->addr_len = r->type == DNS_TYPE_A ? 4 : 16;
		if (rdata_end - rdata != r->addr_len)
			return -1;
		memcpy(r->addr, pkt + rdata, r->addr_len);
		break;
	case DNS_TYPE_SRV:
		/* priority, weight, port, target */
		if (rdata_end - rdata < 7)
			return -1;
		r->port = get_u16(pkt + rdata + 4);
		if (dns_read_rdata_name(pkt, len, rdata + 6, rdata_end, &r->target) != 0)
			return -1;
		break;
	case DNS_TYPE_PTR:
		if (dns_read_rdata_name(pkt, len, rdata, rdata_end, &r->target) != 0)
			return -1;
		break;
	default:
		return 0;
	}
	*kept = true;
	return 0;
}

/* ------------------------------------------------------ packet writing */

/* n > cap - len rather than len + n > cap: the sum cannot wrap. */
void dns_put_bytes(struct dns_writer *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void dns_put_u16(struct dns_writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	dns_put_bytes(w, b, 2);
}

void dns_put_u32(struct dns_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	dns_put_bytes(w, b, 4);
}

void dns_put_name(struct dns_writer *w, const struct dns_name *n)
{
	dns_put_bytes(w, n->wire, n->len);
}

void dns_put_header(struct dns_writer *w, uint16_t id, uint16_t flags, uint16_t questions,
		    uint16_t answers)
{
	dns_put_u16(w, id);
	dns_put_u16(w, flags);
	dns_put_u16(w, questions);
	dns_put_u16(w, answers);
	dns_put_u16(w, 0);
	dns_put_u16(w, 0);
}

void dns_put_question(struct dns_writer *w, const struct dns_question *q)
{
	dns_put_name(w, &q->name);
	dns_put_u16(w, q->type);
	dns_put_u16(w, q->klass);
}

/* Names are written uncompressed: simpler, and legal (RFC 6762 18.14 says
 * "should"), and discovery's answers stay far below a packet's size. */
void dns_put_record_start(struct dns_writer *w, const struct dns_name *owner, uint16_t type,
			  uint32_t ttl, size_t rdata_len)
{
	dns_put_name(w, owner);
	dns_put_u16(w, type);
	dns_put_u16(w, DNS_CLASS_IN);
	dns_put_u32(w, ttl);
	dns_put_u16(w, (uint16_t)rdata_len);
}
