/*
 * members.h — the member store: one record per member a swim knows of
 * (ourselves and tombstones included), found by id, by name (the name
 * index) or, for live members, by address (the address index).
 *
 * Memory layout.  A simulator runs 10,000 members that each know 10,000
 * members: 10^8 member records in one process, so a record must stay near
 * 100 bytes including the tables that point at it.  Hence:
 *  - records live in per-swim chunks (no malloc header each) and every
 *    table refers to them by a 32-bit id rather than an 8-byte pointer;
 *  - the name is inline when short, meta (usually empty, at most 512
 *    bytes) and long names are out of line in `ext`;
 *  - suspicion state exists only for suspects (struct suspect);
 *  - a member's queued alive rumour is the record itself (struct qlink)
 *    and is encoded from the record when sent; the record holds exactly
 *    what the rumour said, because every change to those fields queues a
 *    new rumour about the member.  A big join leaves one alive rumour per
 *    member in every queue for minutes, so storing those encoded would
 *    double the memory (bcast_queue.h);
 *  - the public view (struct swim_member, with its fixed-size arrays) is
 *    built only for hooks and for callers of the accessors.
 *
 * The store's tables live in struct swim (swim_internal.h), which also
 * has member_of() and member_at(); the record itself needs no swim.
 */
#ifndef VIGIL_MEMBERS_H
#define VIGIL_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bcast_queue.h"
#include "swim.h"
#include "wire.h"

struct swim;

#define NAME_INLINE 18           /* fills the record to 64 bytes; "node-00001" fits */

struct member {
	union {
		struct qlink alive;  /* rumour == RUMOUR_ALIVE */
		struct bcast *bcast; /* rumour == RUMOUR_BCAST */
	} r;                         /* our queued rumour about this member */
	uint8_t *ext;                /* [name if long][IPv6 address][meta]; NULL if none */
	int64_t state_since;         /* when the current state began (ms) */
	uint32_t incarnation;
	uint8_t ip4[4];              /* the address if IPv4 (ip_len <= 4) */
	uint16_t port;
	uint16_t meta_len;
	uint8_t vsn[6];
	uint8_t ip_len;
	uint8_t state;               /* enum swim_state */
	uint8_t rumour;              /* enum rumour_kind */
	uint8_t name_len;            /* 1..WIRE_NAME_MAX */
	char name[NAME_INLINE];      /* NUL-terminated, if name_len < NAME_INLINE */
};

/*
 * One cache line per record (chunks are line-aligned): a lookup waits for
 * memory once, and 10,000 members of 10,000 fit in 6.4 GB of records.
 */
#define RECORD_ALIGN 64
_Static_assert(sizeof(void *) != 8 || sizeof(struct member) == RECORD_ALIGN,
	       "struct member changed size: see the memory layout note above");

#define NO_ID UINT32_MAX
#define CHUNK_SHIFT 8            /* 256 records per chunk */
#define CHUNK_LEN (1u << CHUNK_SHIFT)

/* ---- one record (no store needed) ---- */

static inline bool name_inline(const struct member *m)
{
	return m->name_len < NAME_INLINE;
}

static inline const char *member_name(const struct member *m)
{
	return name_inline(m) ? m->name : (const char *)m->ext;
}

static inline struct wire_bytes name_bytes(const struct member *m)
{
	struct wire_bytes b = { (const uint8_t *)member_name(m), m->name_len };
	return b;
}

static inline bool ip_inline(uint8_t ip_len)
{
	return ip_len <= 4;
}

/* Where in ext the address and the meta begin. */
static inline size_t ext_ip_at(const struct member *m)
{
	return name_inline(m) ? 0 : (size_t)m->name_len + 1;
}

static inline size_t ext_meta_at(const struct member *m)
{
	return ext_ip_at(m) + (ip_inline(m->ip_len) ? 0 : m->ip_len);
}

/* Never NULL: the wire tells an empty meta (a 0-length raw) from nil. */
static inline const uint8_t *member_meta(const struct member *m)
{
	if (!m->meta_len)
		return (const uint8_t *)"";
	return m->ext + ext_meta_at(m);
}

static inline struct wire_addr member_addr(const struct member *m)
{
	struct wire_addr a;
	memset(&a, 0, sizeof a);
	a.ip_len = m->ip_len;
	a.port = m->port;
	memcpy(a.ip, ip_inline(m->ip_len) ? m->ip4 : m->ext + ext_ip_at(m), m->ip_len);
	return a;
}

static inline bool member_addr_is(const struct member *m, const struct wire_addr *a)
{
	return m->ip_len == a->ip_len && m->port == a->port &&
	       memcmp(ip_inline(m->ip_len) ? m->ip4 : m->ext + ext_ip_at(m), a->ip, a->ip_len) == 0;
}

static inline bool is_gone(const struct member *m)
{
	return m->state == SWIM_DEAD || m->state == SWIM_LEFT;
}

/*
 * A member name we can store: non-empty, not too long, no NUL (a C string
 * would cut "a\0x" to "a" and alias another member; memberlist compares
 * the full bytes, so such a name can never be the same member to it).
 */
static inline bool valid_name(struct wire_bytes b)
{
	return b.len > 0 && b.len <= WIRE_NAME_MAX && !memchr(b.p, 0, b.len);
}

static inline void bytes_to_name(struct wire_bytes b, char out[WIRE_NAME_MAX + 1])
{
	size_t n = b.len > WIRE_NAME_MAX ? WIRE_NAME_MAX : b.len;
	if (n)
		memcpy(out, b.p, n);
	out[n] = 0;
}

/* Name a zeroed record (len bytes, 1..WIRE_NAME_MAX); false if out of memory. */
bool member_set_name(struct member *m, const char *name, size_t len);
/* Rebuild ext with a new address and meta (either may be the current
 * one); false, and nothing changed, when out of memory. */
bool member_set_ext(struct member *m, const struct wire_addr *a,
		    const uint8_t *meta, size_t meta_len);
bool member_set_meta(struct member *m, const uint8_t *meta, size_t len);
/* Set address and meta from an alive message, allocating only if they changed. */
bool member_set_addr_meta(struct member *m, const struct wire_addr *a,
			  const uint8_t *meta, size_t len);
/* The alive message that says what the record holds. */
void member_fill_alive(const struct member *m, struct wire_msg *msg);
/* The public view of a member, as of now. */
void member_fill_view(const struct member *m, struct swim_member *v);

/* ---- the store of one swim ---- */

/* FNV-1a with murmur3's finish: the name index's hash. */
uint64_t hash_bytes(const uint8_t *p, size_t len);
uint64_t hash_name(const char *s);
/* The hash the name index files a rumour's subject under. */
uint64_t subject_hash(struct wire_bytes node);

/* The id of the member called name, or NO_ID. */
uint32_t find_id(const struct swim *sw, const char *name);
struct member *find(const struct swim *sw, const char *name);
/* The member a rumour is about (len bytes of name, h = subject_hash), or NULL. */
struct member *find_subject(const struct swim *sw, const char *name, size_t len, uint64_t h);
/* Warm the caches for a find_subject(h) soon: the index slot, then (once
 * that has arrived) the record it names. */
void prefetch_subject_slot(const struct swim *sw, uint64_t h);
void prefetch_subject_record(const struct swim *sw, uint64_t h);

/* A new record, in the name index and the probe order, state SWIM_DEAD
 * (the caller brings it alive); NULL if out of memory or ids. */
struct member *member_add(struct swim *sw, const char *name);
/* Take member id out of the name index (reaping it). */
void index_del(struct swim *sw, uint32_t id);
/* Give a removed member's id back (its record's ext and view with it). */
void id_free(struct swim *sw, uint32_t id);

/* m has just become live or gone: keep the address index in step. */
void addr_index_update(struct swim *sw, struct member *m);
/* The id of a live member (not us) at address a, or NO_ID. */
uint32_t find_live_at(struct swim *sw, const struct wire_addr *a);

/* Grow a per-member table to hold `need` elements of `size` bytes. */
bool reserve(void *arr, size_t *cap, size_t need, size_t size);

#endif
