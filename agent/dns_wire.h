/*
 * dns_wire.h — DNS messages on the wire (RFC 1035, RFC 6762's additions),
 * as much of them as serf's mDNS discovery (discover.c) reads and writes:
 * the header, questions, A / AAAA / SRV / PTR records, uncompressed names
 * out, compressed names in.  No sockets, no state: bytes in, structs out,
 * and back.
 *
 * Reading is bounds-checked against the packet everywhere; a function that
 * returns -1 has found the packet malformed and leaves *pos unspecified.
 * Writing goes through a struct dns_writer that refuses, once and for all,
 * whatever does not fit (overflow), so a caller checks once at the end.
 */
#ifndef VIGIL_AGENT_DNS_WIRE_H
#define VIGIL_AGENT_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_NAME_MAX 255
#define DNS_LABEL_MAX 63
/* compression pointers followed per name; a loop cannot pass the
 * strictly-backwards rule anyway, this bounds long legal chains */
#define DNS_MAX_POINTER_HOPS 16
/* RFC 6762 17: an mDNS message may be up to 9000 bytes (jumbo frames). */
#define DNS_PACKET_MAX 9000

#define DNS_TYPE_A 1
#define DNS_TYPE_PTR 12
#define DNS_TYPE_TXT 16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
#define DNS_TYPE_ANY 255
#define DNS_CLASS_IN 1
#define DNS_CLASS_ANY 255
/* RFC 6762 18.12: top bit of a question's class asks for a unicast reply */
#define DNS_CLASS_UNICAST_BIT 0x8000

#define DNS_FLAG_RESPONSE 0x8000
#define DNS_FLAG_AUTHORITATIVE 0x0400
#define DNS_OPCODE_MASK 0x7800
#define DNS_RCODE_MASK 0x000f

/* A name in uncompressed wire form: length-prefixed labels, then 0. */
struct dns_name {
	uint8_t wire[DNS_NAME_MAX];
	uint16_t len;
};

struct dns_header {
	uint16_t id, flags, questions, answers, authorities, additionals;
};

struct dns_question {
	struct dns_name name;
	uint16_t type, klass;
};

/* The parts of a resource record that discovery uses. */
struct dns_record {
	struct dns_name owner;
	uint16_t type;
	uint32_t ttl;
	uint16_t port;		/* SRV */
	struct dns_name target; /* SRV target, PTR domain */
	uint8_t addr[16];	/* A, AAAA */
	uint8_t addr_len;
};

/* Writes into buf[0..cap); initialise as {buf, cap, 0, false}. */
struct dns_writer {
	uint8_t *buf;
	size_t cap, len;
	bool overflow; /* something did not fit: the message is unusable */
};

/* ---------------------------------------------------------------- names */

/* "a.b.c." or "a.b.c" to wire form; -1 for an empty label, a label over
 * 63 bytes or a name over 255 (miekg/dns refuses to pack those too). */
int dns_name_from_dotted(struct dns_name *n, const char *text);

/* Equal without ASCII case, as DNS names compare (RFC 1035 2.3.3). */
bool dns_name_equal(const struct dns_name *a, const struct dns_name *b);

/* Is name "<one or more labels>.<service>"?  The instance name may have
 * several labels: hashicorp/mdns splits a node name on its dots. */
bool dns_name_is_instance_of(const struct dns_name *name, const struct dns_name *service);

/* -------------------------------------------------------------- reading */

/* Reads the possibly compressed name at *pos into out and moves *pos past
 * the name's bytes in place. */
int dns_read_name(const uint8_t *pkt, size_t len, size_t *pos, struct dns_name *out);

/* The 12-byte header; -1 if len is shorter. */
int dns_read_header(const uint8_t *pkt, size_t len, struct dns_header *h);

/* RFC 6762 18.3, 18.11: messages with another opcode or a response code
 * are ignored (they are not malformed, just not for us). */
bool dns_is_plain(const struct dns_header *h);

/* Reads one question at *pos: its name, type and class. */
int dns_read_question(const uint8_t *pkt, size_t len, size_t *pos, struct dns_question *q);

/* Reads the record at *pos into r and moves past it; *kept tells if it is
 * of a type discovery looks at (A, AAAA, SRV, PTR); the other fields of r
 * are meaningful only then. */
int dns_read_record(const uint8_t *pkt, size_t len, size_t *pos, struct dns_record *r, bool *kept);

/* -------------------------------------------------------------- writing */

void dns_put_bytes(struct dns_writer *w, const void *p, size_t n);
void dns_put_u16(struct dns_writer *w, uint16_t v);
void dns_put_u32(struct dns_writer *w, uint32_t v);
void dns_put_name(struct dns_writer *w, const struct dns_name *n);

/* A header; the authority and additional counts are 0. */
void dns_put_header(struct dns_writer *w, uint16_t id, uint16_t flags, uint16_t questions,
		    uint16_t answers);

void dns_put_question(struct dns_writer *w, const struct dns_question *q);

/* Owner, type, class IN, ttl and rdata length; the caller writes rdata_len
 * bytes of rdata next. */
void dns_put_record_start(struct dns_writer *w, const struct dns_name *owner, uint16_t type,
			  uint32_t ttl, size_t rdata_len);

#endif
