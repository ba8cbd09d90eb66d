/*
 * members.c — the member store (see members.h): records in chunks, the
 * name index, the address index, and the public views of members.
 */
#include "swim_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- records ---- */

bool member_set_name(struct member *m, const char *name, size_t len)
{
	m->name_len = (uint8_t)len;
	if (name_inline(m)) {
		memcpy(m->name, name, len + 1);
		return true;
	}
	m->ext = malloc(len + 1);
	if (!m->ext)
		return false;
	memcpy(m->ext, name, len + 1);
	return true;
}

bool member_set_ext(struct member *m, const struct wire_addr *a,
		    const uint8_t *meta, size_t meta_len)
{
	size_t at = ext_ip_at(m);
	size_t ip_part = ip_inline(a->ip_len) ? 0 : a->ip_len;
	size_t len = at + ip_part + meta_len;
	uint8_t *e = NULL;
	if (len) {
		e = malloc(len);
		if (!e)
			return false;
		if (at)
			memcpy(e, m->ext, at);
		if (ip_part)
			memcpy(e + at, a->ip, ip_part);
		if (meta_len)
			memcpy(e + at + ip_part, meta, meta_len);
	}
	free(m->ext);
	m->ext = e;
	if (ip_inline(a->ip_len))
		memcpy(m->ip4, a->ip, a->ip_len);
	m->ip_len = a->ip_len;
	m->port = a->port;
	m->meta_len = (uint16_t)meta_len;
	return true;
}

bool member_set_meta(struct member *m, const uint8_t *meta, size_t len)
{
	if (len == m->meta_len && (len == 0 || memcmp(member_meta(m), meta, len) == 0))
		return true;
	struct wire_addr a = member_addr(m);
	return member_set_ext(m, &a, meta, len);
}

/* Set address and meta from an alive message, allocating only if they changed. */
bool member_set_addr_meta(struct member *m, const struct wire_addr *a,
			  const uint8_t *meta, size_t len)
{
	bool same_meta = len == m->meta_len && (len == 0 || memcmp(member_meta(m), meta, len) == 0);
	if (same_meta && member_addr_is(m, a))
		return true;
	if (same_meta && ip_inline(a->ip_len) && ip_inline(m->ip_len)) {
		memcpy(m->ip4, a->ip, a->ip_len);
		m->ip_len = a->ip_len;
		m->port = a->port;
		return true;
	}
	return member_set_ext(m, a, meta, len);
}

void member_fill_alive(const struct member *m, struct wire_msg *msg)
{
	memset(msg, 0, sizeof *msg);
	msg->type = WIRE_ALIVE;
	msg->u.alive.incarnation = m->incarnation;
	msg->u.alive.node = name_bytes(m);
	msg->u.alive.addr = member_addr(m);
	msg->u.alive.meta.p = member_meta(m);
	msg->u.alive.meta.len = m->meta_len;
	memcpy(msg->u.alive.vsn, m->vsn, 6);
	msg->u.alive.vsn_len = 6;
}

void member_fill_view(const struct member *m, struct swim_member *v)
{
	memcpy(v->name, member_name(m), (size_t)m->name_len + 1);
	v->addr = member_addr(m);
	if (m->meta_len)
		memcpy(v->meta, member_meta(m), m->meta_len);
	v->meta_len = m->meta_len;
	v->incarnation = m->incarnation;
	v->state = (enum swim_state)m->state;
	v->state_since = m->state_since;
	memcpy(v->vsn, m->vsn, 6);
}

/* ---- name index ---- */

uint64_t hash_bytes(const uint8_t *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	/* FNV's low bits mix poorly for names that differ only at the end
	 * ("node-0001", "node-0002"); finish with murmur3's avalanche so the
	 * masked index spreads and linear probing chains stay short */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t hash_name(const char *s)
{
	return hash_bytes((const uint8_t *)s, strlen(s));
}

/*
 * Index slots hold an id in the low 24 bits and 8 bits of the name's hash
 * on top: 4 bytes a slot instead of a 16-byte (hash, pointer) pair, and
 * the tag still spares us reading the records of most slots we pass.
 */
#define ID_BITS 24
#define MAX_IDS ((1u << ID_BITS) - 1)

static uint32_t index_slot(uint64_t h, uint32_t id)
{
	return (uint32_t)(h >> 56) << ID_BITS | id;
}

static uint32_t slot_id(uint32_t slot)
{
	return slot & MAX_IDS;
}

/* The id of the member called name (len bytes, hashing to h), or NO_ID. */
static uint32_t find_id_hashed(const struct swim *sw, const char *name, size_t len, uint64_t h)
{
	size_t mask = sw->index_cap - 1;
	uint32_t tag = (uint32_t)(h >> 56);
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t e = sw->index[i];
		if (e == NO_ID)
			return NO_ID;
		if (e >> ID_BITS != tag)
			continue;
		const struct member *m = member_of(sw, slot_id(e));
		if (m->name_len == len && memcmp(member_name(m), name, len) == 0)
			return slot_id(e);
	}
}

uint32_t find_id(const struct swim *sw, const char *name)
{
	size_t len = strlen(name);
	return find_id_hashed(sw, name, len, hash_bytes((const uint8_t *)name, len));
}

struct member *find(const struct swim *sw, const char *name)
{
	uint32_t id = find_id(sw, name);
	return id == NO_ID ? NULL : member_of(sw, id);
}

/*
 * The member a rumour is about.  h is the hash of its name, which the
 * packet's look-ahead has already computed (subject_hash otherwise).
 */
struct member *find_subject(const struct swim *sw, const char *name, size_t len, uint64_t h)
{
	uint32_t id = find_id_hashed(sw, name, len, h);
	return id == NO_ID ? NULL : member_of(sw, id);
}

uint64_t subject_hash(struct wire_bytes node)
{
	return hash_bytes(node.p, node.len);
}

void prefetch_subject_slot(const struct swim *sw, uint64_t h)
{
	__builtin_prefetch(&sw->index[h & (sw->index_cap - 1)]);
}

/*
 * The record to warm is the one find_id will compare: the first slot of
 * the probe chain with the subject's tag (the home slot holds another
 * member about a third of the time).  The chain is short and its slots
 * share a cache line or two.
 */
void prefetch_subject_record(const struct swim *sw, uint64_t h)
{
	size_t mask = sw->index_cap - 1;
	uint32_t tag = (uint32_t)(h >> 56);
	for (size_t j = h & mask, hops = 0; hops < 8; j = (j + 1) & mask, hops++) {
		uint32_t e = sw->index[j];
		if (e == NO_ID)
			break;
		if (e >> ID_BITS == tag) {
			__builtin_prefetch(member_of(sw, slot_id(e)));
			break;
		}
	}
}

static void index_put(uint32_t *idx, size_t cap, uint64_t h, uint32_t id)
{
	size_t mask = cap - 1;
	size_t i = h & mask;
	while (idx[i] != NO_ID)
		i = (i + 1) & mask;
	idx[i] = index_slot(h, id);
}

static bool index_grow(struct swim *sw)
{
	size_t cap = sw->index_cap * 2;
	uint32_t *idx = malloc(cap * sizeof *idx);
	if (!idx)
		return false;
	memset(idx, 0xff, cap * sizeof *idx);
	for (size_t i = 0; i < sw->n_members; i++)
		index_put(idx, cap, hash_name(member_name(member_at(sw, i))), sw->members[i]);
	free(sw->index);
	sw->index = idx;
	sw->index_cap = cap;
	return true;
}

static uint64_t name_hash_of(const struct swim *sw, uint32_t id)
{
	return hash_name(member_name(member_of(sw, id)));
}

/*
 * Empty slot i of a linear-probing table and shift the entries after it
 * back, so lookups never need tombstones.  home_hash gives the hash an
 * entry was put under.
 */
static void slots_remove_at(const struct swim *sw, uint32_t *idx, size_t cap, size_t i,
			    uint64_t (*home_hash)(const struct swim *, uint32_t))
{
	size_t mask = cap - 1;
	idx[i] = NO_ID;
	for (size_t j = (i + 1) & mask; idx[j] != NO_ID; j = (j + 1) & mask) {
		uint32_t e = idx[j];
		size_t home = home_hash(sw, slot_id(e)) & mask;
		/* move the entry back if its home slot is not in (i, j] cyclically */
		bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
		if (!in_range) {
			idx[i] = e;
			idx[j] = NO_ID;
			i = j;
		}
	}
}

void index_del(struct swim *sw, uint32_t id)
{
	size_t mask = sw->index_cap - 1;
	size_t i = name_hash_of(sw, id) & mask;
	while (slot_id(sw->index[i]) != id)
		i = (i + 1) & mask;
	slots_remove_at(sw, sw->index, sw->index_cap, i, name_hash_of);
}

/* ---- address index (see struct swim) ---- */

static uint64_t hash_addr(const struct wire_addr *a)
{
	uint8_t key[sizeof a->ip + 2];
	size_t n = a->ip_len <= sizeof a->ip ? a->ip_len : sizeof a->ip;
	memcpy(key, a->ip, n);
	key[n] = (uint8_t)(a->port >> 8);
	key[n + 1] = (uint8_t)a->port;
	return hash_bytes(key, n + 2);
}

static uint64_t addr_hash_of(const struct swim *sw, uint32_t id)
{
	struct wire_addr a = member_addr(member_of(sw, id));
	return hash_addr(&a);
}

static void addr_index_drop(struct swim *sw)
{
	free(sw->addr_index);
	sw->addr_index = NULL;
	sw->addr_index_cap = sw->addr_index_n = 0;
}

/* (Re)build it, at most half full; false and no index if out of memory. */
static bool addr_index_build(struct swim *sw)
{
	size_t cap = 64;
	while (cap < 2 * (sw->n_alive + 1))
		cap *= 2;
	uint32_t *idx = malloc(cap * sizeof *idx);
	if (!idx) {
		addr_index_drop(sw);
		return false;
	}
	memset(idx, 0xff, cap * sizeof *idx);
	size_t n = 0;
	for (size_t i = 0; i < sw->n_members; i++) {
		if (is_live_peer(sw, member_at(sw, i))) {
			index_put(idx, cap, addr_hash_of(sw, sw->members[i]), sw->members[i]);
			n++;
		}
	}
	free(sw->addr_index);
	sw->addr_index = idx;
	sw->addr_index_cap = cap;
	sw->addr_index_n = n;
	return true;
}

/*
 * m has just become live (or gone).  A live member's address never
 * changes (an alive from elsewhere is ignored), so these transitions are
 * the only updates the index needs.
 */
void addr_index_update(struct swim *sw, struct member *m)
{
	if (!sw->addr_index || m == sw->self)
		return;
	size_t mask = sw->addr_index_cap - 1;
	if (is_live_peer(sw, m)) {
		if ((sw->addr_index_n + 1) * 4 > sw->addr_index_cap * 3) {
			addr_index_build(sw); /* includes m */
			return;
		}
		uint32_t id = find_id(sw, member_name(m));
		index_put(sw->addr_index, sw->addr_index_cap, addr_hash_of(sw, id), id);
		sw->addr_index_n++;
		return;
	}
	struct wire_addr a = member_addr(m);
	for (size_t i = hash_addr(&a) & mask; sw->addr_index[i] != NO_ID; i = (i + 1) & mask) {
		if (member_of(sw, slot_id(sw->addr_index[i])) == m) {
			slots_remove_at(sw, sw->addr_index, sw->addr_index_cap, i, addr_hash_of);
			sw->addr_index_n--;
			return;
		}
	}
}

/* The id of a live member (not us) at address a, or NO_ID. */
uint32_t find_live_at(struct swim *sw, const struct wire_addr *a)
{
	if (!sw->addr_index && !addr_index_build(sw))
		return NO_ID;
	uint64_t h = hash_addr(a);
	uint32_t tag = (uint32_t)(h >> 56);
	size_t mask = sw->addr_index_cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t e = sw->addr_index[i];
		if (e == NO_ID)
			return NO_ID;
		if (e >> ID_BITS == tag && member_addr_is(member_of(sw, slot_id(e)), a))
			return slot_id(e);
	}
}

/*
 * Grow an array so it holds at least `need` elements of `size` bytes.  By
 * an eighth, not by doubling: these are the per-member tables, and with
 * 10,000 swims of 10,000 members each, doubling's slack alone would be
 * gigabytes; the copying stays amortised O(1).
 */
bool reserve(void *arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return true;
	size_t n = need + need / 8 + 16;
	void *a = realloc(*(void **)arr, n * size);
	if (!a)
		return false;
	*(void **)arr = a;
	*cap = n;
	return true;
}

/* A zeroed record and its id, from the free list or a new chunk. */
static uint32_t id_alloc(struct swim *sw)
{
	uint32_t id = sw->free_id;
	if (id != NO_ID) {
		struct member *m = member_of(sw, id);
		sw->free_id = m->incarnation;
		memset(m, 0, sizeof *m);
		return id;
	}
	if (sw->n_ids >= MAX_IDS)
		return NO_ID;
	if ((sw->n_ids & (CHUNK_LEN - 1)) == 0) {
		struct member **c = realloc(sw->chunks, (sw->n_chunks + 1) * sizeof *c);
		if (!c)
			return NO_ID;
		sw->chunks = c;
		c[sw->n_chunks] = aligned_alloc(RECORD_ALIGN, CHUNK_LEN * sizeof **c);
		if (!c[sw->n_chunks])
			return NO_ID;
		memset(c[sw->n_chunks], 0, CHUNK_LEN * sizeof **c);
		sw->n_chunks++;
	}
	return sw->n_ids++;
}

void id_free(struct swim *sw, uint32_t id)
{
	struct member *m = member_of(sw, id);
	free(m->ext);
	m->ext = NULL;
	m->incarnation = sw->free_id;
	sw->free_id = id;
	if (id < sw->views_cap) {
		free(sw->views[id]);
		sw->views[id] = NULL;
	}
}

struct member *member_add(struct swim *sw, const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > WIRE_NAME_MAX)
		return NULL;
	if ((sw->n_members + 1) * 4 > sw->index_cap * 3 && !index_grow(sw))
		return NULL;
	if (!reserve(&sw->members, &sw->cap_members, sw->n_members + 1, sizeof *sw->members) ||
	    !reserve(&sw->probe_order, &sw->probe_cap, sw->probe_n + 1, sizeof *sw->probe_order))
		return NULL;
	uint32_t id = id_alloc(sw);
	if (id == NO_ID)
		return NULL;
	struct member *m = member_of(sw, id);
	if (!member_set_name(m, name, len)) {
		id_free(sw, id);
		return NULL;
	}
	m->state = SWIM_DEAD; /* becomes alive through the caller */
	sw->members[sw->n_members++] = id;
	index_put(sw->index, sw->index_cap, hash_name(name), id);
	/* insert at a random place in the probe order, as memberlist does,
	 * so a new member is probed within one round without a reshuffle */
	size_t at = rng_below(sw, sw->probe_n + 1);
	sw->probe_order[sw->probe_n++] = id;
	uint32_t t = sw->probe_order[at];
	sw->probe_order[at] = id;
	sw->probe_order[sw->probe_n - 1] = t;
	return m;
}

/* ---- public queries (swim.h) ---- */

size_t swim_member_count(const struct swim *sw) { return sw->n_members; }

/*
 * The accessors hand out a view per member, made on first use and
 * refreshed on every call, so a caller sees the same pointer for the same
 * member until it is reaped.  The views are a cache behind a const
 * interface: the swim itself is never const, so casting that away is sound.
 */
static const struct swim_member *view_of(const struct swim *csw, uint32_t id)
{
	struct swim *sw = (struct swim *)csw;
	if (id >= sw->views_cap) {
		size_t cap = sw->n_ids;
		struct swim_member **v = realloc(sw->views, cap * sizeof *v);
		if (!v)
			return NULL;
		memset(v + sw->views_cap, 0, (cap - sw->views_cap) * sizeof *v);
		sw->views = v;
		sw->views_cap = cap;
	}
	if (!sw->views[id]) {
		sw->views[id] = calloc(1, sizeof **sw->views);
		if (!sw->views[id])
			return NULL;
	}
	member_fill_view(member_of(sw, id), sw->views[id]);
	return sw->views[id];
}

const struct swim_member *swim_member_at(const struct swim *sw, size_t i)
{
	return i < sw->n_members ? view_of(sw, sw->members[i]) : NULL;
}
const struct swim_member *swim_member_find(const struct swim *sw, const char *name)
{
	uint32_t id = find_id(sw, name);
	return id == NO_ID ? NULL : view_of(sw, id);
}
const struct swim_member *swim_self(const struct swim *sw)
{
	/* added first and never reaped, so always members[0] */
	return view_of(sw, sw->members[0]);
}
int swim_member_state(const struct swim *sw, const char *name, uint32_t *incarnation)
{
	const struct member *m = find(sw, name);
	if (!m)
		return -1;
	if (incarnation)
		*incarnation = m->incarnation;
	return m->state;
}
bool swim_member_brief(const struct swim *sw, size_t i, const char **name,
		       struct wire_addr *addr, enum swim_state *state)
{
	if (i >= sw->n_members)
		return false;
	const struct member *m = member_at(sw, i);
	*name = member_name(m);
	*addr = member_addr(m);
	*state = (enum swim_state)m->state;
	return true;
}
