/*
 * swim.c — SWIM membership with the Lifeguard extensions, I/O-free.
 *
 * One struct swim is one member's view of the cluster.  Everything that
 * happens to it comes in through swim_handle_* and swim_tick with the
 * current time; everything it wants done goes out through swim_hooks.
 * The same code runs on real sockets (vigil.c) and in the simulator (sim.c).
 *
 * The protocol follows HashiCorp memberlist so that Serf nodes understand
 * us: probe one member per interval (round robin over a shuffled list),
 * indirect probes through k members with nacks, suspicion with Lifeguard's
 * confirmation-shortened timeout, incarnation refutation, piggybacked
 * gossip limited to retransmit_mult * log10(n+1) sends per rumour, and
 * push-pull anti-entropy.
 *
 * Differences from memberlist, on purpose:
 *  - dead and left members stay as tombstones for reap_interval (24 h) so a
 *    stale alive cannot resurrect them, but a higher incarnation always
 *    brings a member back (at a new address only if nothing answers to
 *    its name at the old one, see may_move);
 *  - claims far ahead of the incarnation we hold are refused, and no
 *    incarnation ever wraps (docs/SECURITY.md, "Membership identity");
 *  - like Serf's reconnect loop, we periodically push-pull with a random
 *    dead member so that partitions heal at the membership layer;
 *  - outgoing packets are never compressed (we decompress what we get).
 */
#include "swim.h"

#include <msgpack.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEVER INT64_MAX
#define MAX_RELAYS 1024          /* indirect pings we forward at once */
#define MAX_PENDING_STREAMS 64
#define RECONNECT_INTERVAL_MS 30000 /* serf's ReconnectInterval */
#define COMPOUND_MAX 255
#define STALL_HEALTH_STEP 1      /* health score added by a stall (plus the refutation's) */
#define RECENT_ACKED 32          /* members that answered or pinged us lately (handle_dead) */

/*
 * Memory layout.  A simulator runs 10,000 members that each know 10,000
 * members: 10^8 member records in one process, so a record must stay near
 * 100 bytes including the tables that point at it.  Hence:
 *  - records live in per-swim chunks (no malloc header each) and every
 *    table refers to them by a 32-bit id rather than an 8-byte pointer;
 *  - the name is inline when short, meta (usually empty, at most 512
 *    bytes) and long names are out of line in `ext`;
 *  - suspicion state exists only for suspects (struct suspicion);
 *  - a member's queued alive rumour is the record itself (struct qlink)
 *    and is encoded from the record when sent; the record holds exactly
 *    what the rumour said, because every change to those fields queues a
 *    new rumour about the member.  A big join leaves one alive rumour per
 *    member in every queue for minutes, so storing those encoded would
 *    double the memory;
 *  - the public view (struct swim_member, with its fixed-size arrays) is
 *    built only for hooks and for callers of the accessors.
 */

/* The queue entry of one rumour: the first field of both kinds of entry. */
struct qlink {
	uint32_t pos;                /* its slot in buckets[transmits] */
	int8_t transmits;            /* sends so far; -1 while parked (see bcast_take) */
	bool in_member;              /* a member's alive rumour, else a struct bcast */
	uint16_t len;                /* encoded length */
};

/*
 * One transmit-count bucket of the broadcast queue: a stack of entries,
 * newest on top.  An array, not a list threaded through the entries: a
 * packet takes some twenty rumours, and in a big cluster each sits in a
 * cold member record, so walking a list waits for memory twenty times in
 * a row, while slots of an array name records that can be fetched in
 * parallel.  It also keeps the links out of the record (8 bytes instead
 * of 24, see struct member).  A removed entry leaves a hole (NULL),
 * trimmed at once at the top and compacted away when holes are half the
 * bucket; the array shrinks as the bucket empties, so the slots a big
 * join needed are returned.
 */
struct qbucket {
	struct qlink **v;
	uint32_t n, cap, holes;
};

/* A rumour kept encoded: suspect/dead about a member, or a user message. */
struct bcast {
	struct qlink q;
	struct member *about;        /* member it is about (owns us via r.bcast); NULL = user message */
	uint64_t id;                 /* for leave tracking */
	uint8_t data[];
};

enum rumour_kind { RUMOUR_NONE, RUMOUR_ALIVE, RUMOUR_BCAST };

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

/* Lifeguard suspicion of one member, alive while it is SWIM_SUSPECT. */
struct suspicion {
	struct member *m;
	int64_t start, deadline;
	int64_t min_ms, max_ms;
	int confirm_needed, confirmations;
	uint64_t confirmers[8];      /* name hashes of distinct accusers seen */
	int n_confirmers;
	int64_t last_buddy;          /* last time we probed it while suspecting it */
	int64_t buddy_from;          /* its one buddy jump may come from then on */
};

/*
 * When we last buddy-probed a member that is no longer suspect: buddy_due
 * compares these times, so a member suspected again picks its old one up.
 * Only members ever buddy-probed are listed (a handful).
 */
struct buddy_time {
	struct member *m;
	int64_t t;
};

#define NO_ID UINT32_MAX
#define CHUNK_SHIFT 8            /* 256 records per chunk */
#define CHUNK_LEN (1u << CHUNK_SHIFT)

struct relay {
	uint32_t local_seq, orig_seq;
	struct wire_addr requester;
	struct wire_addr target;     /* whom we pinged for the requester */
	bool want_nack, nack_sent;
	int64_t nack_at, expire_at;
};

enum probe_phase { PROBE_IDLE, PROBE_DIRECT, PROBE_INDIRECT };

/* One live member told of our leave (swim_leave). */
struct leave_target {
	uint32_t id;
	uint8_t tries;
	bool done;                   /* acked, or given up after LEAVE_TRIES */
	int64_t next;                /* when to send again */
};
#define LEAVE_TRIES 6            /* sends per member, a probe timeout apart */
#define LEAVE_BURST 64           /* sends per tick, so a big cluster is paced */

struct pending_stream {
	uint64_t cookie;
	bool join;
	bool ping;                   /* a TCP fallback ping (probe_tcp_ping), else push-pull */
	uint32_t ping_seq;
	struct wire_addr to;
};

struct swim {
	struct swim_config cfg;
	struct swim_hooks hooks;
	struct swim_stats stats;
	uint64_t rng;

	/* member records, by id: chunks[id >> CHUNK_SHIFT][id % CHUNK_LEN] */
	struct member **chunks;
	size_t n_chunks;
	uint32_t n_ids;              /* ids handed out so far */
	uint32_t free_id;            /* reaped ids to reuse, linked through incarnation */
	uint32_t *members;           /* ids of all members incl. self and tombstones */
	size_t n_members, cap_members;
	uint32_t *index;             /* open-addressed name hash -> id; NO_ID = empty */
	size_t index_cap;            /* power of two */
	/* open-addressed address hash -> id of every live member but us, for
	 * unreachable hints; built at the first hint that needs it (most
	 * swims never get one), dropped if it cannot grow */
	uint32_t *addr_index;
	size_t addr_index_cap, addr_index_n;
	struct member *self;
	size_t n_alive;              /* not dead/left, incl. self */
	struct swim_member **views;  /* by id: views handed out by the accessors */
	size_t views_cap;
	struct swim_member notify_view; /* what a hook sees */

	struct suspicion *suspects;  /* members currently suspect (timers to watch) */
	size_t n_suspects, cap_suspects;
	struct buddy_time *buddies;
	size_t n_buddies, cap_buddies;
	uint32_t *probe_order;       /* shuffled ids, rebuilt per round */
	size_t probe_n, probe_pos, probe_cap;

	/* current probe */
	enum probe_phase probe_phase;
	char probe_target[WIRE_NAME_MAX + 1];
	uint32_t probe_seq;
	int64_t probe_start, probe_ack_deadline, probe_end;
	int64_t probe_sent_us;       /* for ping_complete's RTT */
	int probe_expected_nacks, probe_nacks;
	bool probe_unreachable;      /* the target's port answered our ping with ICMP unreachable */
	int64_t next_probe;
	bool last_probe_buddy;       /* the current/last probe jumped the queue (buddy_due) */
	int64_t stall_grace_until;   /* no suspicion from our failed probes before this */
	uint32_t hinted;             /* member to probe next (unreachable hint), NO_ID if none */
	int64_t last_hint_probe;     /* when a hint last moved a probe forward */

	int64_t next_gossip, next_push_pull, next_reconnect, next_reap;
	uint32_t seq;

	struct relay *relays;        /* grown on demand up to MAX_RELAYS */
	size_t n_relays, cap_relays;

	struct pending_stream streams[MAX_PENDING_STREAMS];
	size_t n_streams;
	uint64_t next_cookie;

	/* broadcast queue: buckets by transmit count, newest first */
	struct qbucket *buckets;
	int n_buckets;
	size_t n_bcasts;
	size_t n_user_bcasts;        /* of which user messages (about == NULL) */
	uint64_t next_bcast_id;
	uint64_t leave_bcast_id;
	bool leaving, left_done;
	/* a leave told to each live member directly until it acks (see swim_leave) */
	struct leave_target *leave_to;
	size_t n_leave_to, leave_pending, leave_acked;
	uint32_t leave_seq0;         /* leave_to[i] pings with seq leave_seq0 + i */

	int awareness;               /* Lifeguard local health score */
	/* members that acked our probes or pinged us lately (handle_dead) */
	struct { uint32_t id; int64_t t; } acked[RECENT_ACKED];
	int n_acked_next;            /* ring position */
	struct wbuf scratch, pkt, body;
	struct wbuf alive_out;       /* alive rumours encoded for the packet being built */
	const struct wire_addr *cur_from; /* sender of the packet being handled */
	/* while merging a push-pull (see jump_vouched) */
	const struct wire_addr *pp_peer; /* the address we dialled, or the TCP source */
	bool pp_inbound;             /* pp_peer is the source: its port is ephemeral */
	bool pp_join;                /* we dialled it to join */
	struct climb *climbs;        /* CLIMB_SLOTS budgets of big incarnation jumps, or NULL */
	struct move_check *move;     /* the one move check under way, or NULL */
	const struct member *move_checked; /* while applying its alive */
	int64_t last_jump_ask;       /* last push-pull asking a member about a refused jump */
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint64_t rng_next(struct swim *sw)
{
	/* xorshift64*: fast, deterministic from the seed, good enough here */
	uint64_t x = sw->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	sw->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static size_t rng_below(struct swim *sw, size_t n)
{
	return n ? (size_t)(rng_next(sw) % n) : 0;
}

static void logf_(struct swim *sw, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(struct swim *sw, int level, const char *fmt, ...)
{
	if (!sw->hooks.log)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sw->hooks.log(sw->hooks.ctx, level, buf);
}

/* Decoded fields may be {NULL, 0} (absent or nil): never hand NULL to mem*. */
static bool bytes_eq(struct wire_bytes b, const void *p, size_t n)
{
	return b.len == n && (n == 0 || memcmp(b.p, p, n) == 0);
}

static bool bytes_eq_str(struct wire_bytes b, const char *s)
{
	return bytes_eq(b, s, strlen(s));
}

static void bytes_to_name(struct wire_bytes b, char out[WIRE_NAME_MAX + 1])
{
	size_t n = b.len > WIRE_NAME_MAX ? WIRE_NAME_MAX : b.len;
	if (n)
		memcpy(out, b.p, n);
	out[n] = 0;
}

/*
 * A member name we can store: non-empty, not too long, no NUL (a C string
 * would cut "a\0x" to "a" and alias another member; memberlist compares
 * the full bytes, so such a name can never be the same member to it).
 */
static bool valid_name(struct wire_bytes b)
{
	return b.len > 0 && b.len <= WIRE_NAME_MAX && !memchr(b.p, 0, b.len);
}

static bool is_gone(const struct member *m)
{
	return m->state == SWIM_DEAD || m->state == SWIM_LEFT;
}

/* A member other than us that is not dead or left: one we probe. */
static bool is_live_peer(const struct swim *sw, const struct member *m)
{
	return m != sw->self && !is_gone(m);
}

/*
 * memberlist's retransmitLimit: mult * ceil(log10(n + 1)), n counting the
 * dead too (memberlist's estNumNodes keeps them until they are reaped).
 * Counting only the live ones halved the limit on the minority side of a
 * partition just when most gossip targets (the recently dead across the
 * cut) cannot hear it: a `dead` there reached the others on its own side
 * 7-20 s late, or never.
 */
static int retransmit_limit(const struct swim *sw)
{
	double n = (double)sw->n_members;
	int lim = sw->cfg.retransmit_mult * (int)ceil(log10(n + 1));
	return lim < 1 ? 1 : lim;
}

/* Lifeguard awareness: scale a timeout by (score + 1). */
static int64_t scaled(const struct swim *sw, int ms)
{
	return (int64_t)ms * (sw->awareness + 1);
}

static void awareness_apply(struct swim *sw, int delta)
{
	if (!sw->cfg.lifeguard)
		return;
	int v = sw->awareness + delta;
	int max = sw->cfg.awareness_max_multiplier - 1;
	if (v < 0)
		v = 0;
	if (v > max)
		v = max;
	if (v != sw->awareness)
		logf_(sw, 0, "local health score now %d", v);
	sw->awareness = v;
}

/* ------------------------------------------------------------------ */
/* member index                                                        */

static uint64_t hash_bytes(const uint8_t *p, size_t len)
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

static uint64_t hash_name(const char *s)
{
	return hash_bytes((const uint8_t *)s, strlen(s));
}

/* ---- member records ---- */

static struct member *member_of(const struct swim *sw, uint32_t id)
{
	return &sw->chunks[id >> CHUNK_SHIFT][id & (CHUNK_LEN - 1)];
}

/* The i-th member (0 <= i < n_members). */
static struct member *member_at(const struct swim *sw, size_t i)
{
	return member_of(sw, sw->members[i]);
}

static bool name_inline(const struct member *m)
{
	return m->name_len < NAME_INLINE;
}

static const char *member_name(const struct member *m)
{
	return name_inline(m) ? m->name : (const char *)m->ext;
}

static struct wire_bytes name_bytes(const struct member *m)
{
	struct wire_bytes b = { (const uint8_t *)member_name(m), m->name_len };
	return b;
}

/* Never NULL: the wire tells an empty meta (a 0-length raw) from nil. */
static bool ip_inline(uint8_t ip_len)
{
	return ip_len <= 4;
}

/* Where in ext the address and the meta begin. */
static size_t ext_ip_at(const struct member *m)
{
	return name_inline(m) ? 0 : (size_t)m->name_len + 1;
}

static size_t ext_meta_at(const struct member *m)
{
	return ext_ip_at(m) + (ip_inline(m->ip_len) ? 0 : m->ip_len);
}

static const uint8_t *member_meta(const struct member *m)
{
	if (!m->meta_len)
		return (const uint8_t *)"";
	return m->ext + ext_meta_at(m);
}

static struct wire_addr member_addr(const struct member *m)
{
	struct wire_addr a;
	memset(&a, 0, sizeof a);
	a.ip_len = m->ip_len;
	a.port = m->port;
	memcpy(a.ip, ip_inline(m->ip_len) ? m->ip4 : m->ext + ext_ip_at(m), m->ip_len);
	return a;
}

static bool member_addr_is(const struct member *m, const struct wire_addr *a)
{
	return m->ip_len == a->ip_len && m->port == a->port &&
	       memcmp(ip_inline(m->ip_len) ? m->ip4 : m->ext + ext_ip_at(m), a->ip, a->ip_len) == 0;
}

/*
 * Rebuild ext with a new address and meta (either may be the current
 * one); false, and nothing changed, when out of memory.
 */
static bool member_set_ext(struct member *m, const struct wire_addr *a,
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

static bool member_set_meta(struct member *m, const uint8_t *meta, size_t len)
{
	if (len == m->meta_len && (len == 0 || memcmp(member_meta(m), meta, len) == 0))
		return true;
	struct wire_addr a = member_addr(m);
	return member_set_ext(m, &a, meta, len);
}

/* Set address and meta from an alive message, allocating only if they changed. */
static bool member_set_addr_meta(struct member *m, const struct wire_addr *a,
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

static uint32_t find_id(const struct swim *sw, const char *name)
{
	size_t len = strlen(name);
	return find_id_hashed(sw, name, len, hash_bytes((const uint8_t *)name, len));
}

static struct member *find(const struct swim *sw, const char *name)
{
	uint32_t id = find_id(sw, name);
	return id == NO_ID ? NULL : member_of(sw, id);
}

/*
 * The member a rumour is about.  h is the hash of its name, which the
 * packet's look-ahead has already computed (subject_hash otherwise).
 */
static struct member *find_subject(const struct swim *sw, const char *name, size_t len, uint64_t h)
{
	uint32_t id = find_id_hashed(sw, name, len, h);
	return id == NO_ID ? NULL : member_of(sw, id);
}

static uint64_t subject_hash(struct wire_bytes node)
{
	return hash_bytes(node.p, node.len);
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

static void index_del(struct swim *sw, uint32_t id)
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
static void addr_index_update(struct swim *sw, struct member *m)
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
static uint32_t find_live_at(struct swim *sw, const struct wire_addr *a)
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
static bool reserve(void *arr, size_t *cap, size_t need, size_t size)
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

static void id_free(struct swim *sw, uint32_t id)
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

static struct member *member_add(struct swim *sw, const char *name)
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
	m->name_len = (uint8_t)len;
	if (name_inline(m)) {
		memcpy(m->name, name, len + 1);
	} else {
		m->ext = malloc(len + 1);
		if (!m->ext) {
			id_free(sw, id);
			return NULL;
		}
		memcpy(m->ext, name, len + 1);
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

/* ------------------------------------------------------------------ */
/* broadcast queue                                                     */

static bool q_resize(struct qbucket *b, uint32_t cap)
{
	struct qlink **v = realloc(b->v, (size_t)cap * sizeof *v);
	if (!v)
		return false;
	b->v = v;
	b->cap = cap;
	return true;
}

static void q_unlink(struct swim *sw, struct qlink *q)
{
	struct qbucket *b = &sw->buckets[q->transmits];
	b->v[q->pos] = NULL;
	b->holes++;
	while (b->n > 0 && !b->v[b->n - 1]) {
		b->n--;
		b->holes--;
	}
	if (b->holes >= 16 && b->holes * 2 >= b->n) {
		uint32_t k = 0;
		for (uint32_t i = 0; i < b->n; i++) {
			if (b->v[i]) {
				b->v[i]->pos = k;
				b->v[k++] = b->v[i];
			}
		}
		b->n = k;
		b->holes = 0;
	}
	/*
	 * An empty bucket gives its array back.  Keeping small ones for
	 * reuse saved a malloc per turn (~1 % CPU) but pinned enough heap
	 * between the big join-time allocations to cost 55 % more RSS at
	 * 1,000 members (200 instead of 129 bytes per membership record).
	 */
	if (b->n == 0) {
		free(b->v);
		*b = (struct qbucket){ 0 };
	} else if (b->cap > 64 && b->n < b->cap / 4) {
		q_resize(b, b->cap / 2); /* on failure it just stays bigger */
	}
}

/* Put q on top of its bucket; false (q not queued) if out of memory. */
static bool q_push(struct swim *sw, struct qlink *q)
{
	struct qbucket *b = &sw->buckets[q->transmits];
	if (b->n == b->cap && (b->cap >= UINT32_MAX / 2 || !q_resize(b, b->cap ? b->cap * 2 : 16)))
		return false;
	q->pos = b->n;
	b->v[b->n++] = q;
	return true;
}

static struct member *q_member(struct qlink *q)
{
	return (struct member *)((char *)q - offsetof(struct member, r.alive));
}

static struct bcast *q_bcast(struct qlink *q)
{
	return (struct bcast *)((char *)q - offsetof(struct bcast, q));
}

/* A rumour has left the queue for good (replaced, retired or its member reaped). */
static void q_retire(struct swim *sw, struct qlink *q)
{
	sw->n_bcasts--;
	if (q->in_member) {
		q_member(q)->rumour = RUMOUR_NONE;
		return;
	}
	struct bcast *b = q_bcast(q);
	if (!b->about)
		sw->n_user_bcasts--;
	if (b->about && b->about->rumour == RUMOUR_BCAST && b->about->r.bcast == b)
		b->about->rumour = RUMOUR_NONE;
	if (b->id == sw->leave_bcast_id)
		sw->left_done = true;
	free(b);
}

/* Drop our queued rumour about m, if any. */
static void rumour_drop(struct swim *sw, struct member *m)
{
	struct qlink *q = m->rumour == RUMOUR_ALIVE ? &m->r.alive
			  : m->rumour == RUMOUR_BCAST ? &m->r.bcast->q : NULL;
	if (!q)
		return;
	q_unlink(sw, q);
	q_retire(sw, q);
}

/* Queue an encoded message; a newer rumour about the same member replaces the old one. */
static void bcast_queue(struct swim *sw, struct member *m, const uint8_t *data, size_t len)
{
	if (m)
		rumour_drop(sw, m);
	if (len > UINT16_MAX)
		return;
	struct bcast *b = malloc(sizeof *b + len);
	if (!b)
		return;
	memset(b, 0, sizeof *b);
	b->about = m;
	b->q.len = (uint16_t)len;
	b->id = ++sw->next_bcast_id;
	memcpy(b->data, data, len);
	if (!q_push(sw, &b->q)) {
		free(b);
		return;
	}
	sw->n_bcasts++;
	if (m) {
		m->rumour = RUMOUR_BCAST;
		m->r.bcast = b;
	} else {
		sw->n_user_bcasts++;
	}
}

/* Queue an alive rumour about m that encodes to `len` bytes (kept in m itself). */
static void alive_queue(struct swim *sw, struct member *m, size_t len)
{
	rumour_drop(sw, m);
	if (len > UINT16_MAX)
		return;
	struct qlink *q = &m->r.alive;
	memset(q, 0, sizeof *q);
	q->in_member = true;
	q->len = (uint16_t)len;
	if (!q_push(sw, q))
		return;
	sw->n_bcasts++;
	m->rumour = RUMOUR_ALIVE;
}

static void fill_alive(const struct member *m, struct wire_msg *msg);

/*
 * Append queued rumours to `msgs` while they fit in `budget` bytes,
 * fewest-transmitted and newest first, counting a send for each and
 * retiring those past the retransmit limit.  Returns the count.  The
 * views point into the queue, or into sw->alive_out for alive rumours
 * (encoded here from their member records).
 */
/* A user message (serf layer), not a rumour about a member. */
static bool is_user_rumour(struct qlink *q)
{
	return !q->in_member && q_bcast(q)->about == NULL;
}

static size_t bcast_take(struct swim *sw, size_t budget, struct wire_bytes *msgs,
			 size_t max, struct qlink **taken)
{
	size_t n = 0;
	int limit = retransmit_limit(sw);
	if (limit >= sw->n_buckets)
		limit = sw->n_buckets - 1;
	/*
	 * A long queue (thousands of join rumours in a big cluster) must not
	 * be walked to its end once the packet is nearly full: give up after
	 * a run of rumours that do not fit, or when nothing could.
	 */
	/*
	 * Membership rumours first, user messages (the serf layer's) in what
	 * is left, as memberlist fills a packet from its own queue before
	 * asking the delegate.  In one queue ordered by transmit count, every
	 * fresh user message went ahead of a suspect or dead already sent
	 * once, and a busy serf layer delayed the confirmations and deaths a
	 * failure needs.  `users` is the pass.
	 */
	for (int users = 0; users < (sw->n_user_bcasts ? 2 : 1); users++) {
	int misses = 0;
	for (int t = 0; t < sw->n_buckets && n < max && misses < 32 && budget >= 16; t++) {
		const struct qbucket *b = &sw->buckets[t];
		for (uint32_t j = b->n; j-- > 0 && n < max;) {
			struct qlink *q = b->v[j];
			if (j >= 8 && b->v[j - 8])
				__builtin_prefetch(b->v[j - 8]);
			if (!q || is_user_rumour(q) != (users == 1))
				continue;
			size_t need = (size_t)q->len + 2; /* memberlist compoundOverhead */
			if (need > budget) {
				if (++misses >= 32 || budget < 16)
					break;
				continue;
			}
			budget -= need;
			msgs[n].len = q->len;
			taken[n++] = q;
		}
	}
	}
	wbuf_reset(&sw->alive_out);
	for (size_t i = 0; i < n; i++) {
		struct qlink *q = taken[i];
		if (!q->in_member) {
			msgs[i].p = q_bcast(q)->data;
			continue;
		}
		/* offset for now: alive_out may move while it grows */
		msgs[i].p = (const uint8_t *)(uintptr_t)sw->alive_out.len;
		struct wire_msg msg;
		fill_alive(q_member(q), &msg);
		if (wire_encode(&sw->alive_out, &msg) != WIRE_OK)
			sw->alive_out.oom = true;
	}
	if (sw->alive_out.oom)
		return 0; /* nothing counted: the rumours stay queued as they were */
	for (size_t i = 0; i < n; i++)
		if (taken[i]->in_member)
			msgs[i].p = sw->alive_out.p + (uintptr_t)msgs[i].p;
	/* bump counts after the walk so a moved item is not seen twice */
	for (size_t i = 0; i < n; i++) {
		struct qlink *q = taken[i];
		q_unlink(sw, q);
		q->transmits++;
		/* past the limit (or out of memory to requeue it): keep the
		 * payload alive until the packet is built, parked */
		if (q->transmits >= limit || q->transmits >= sw->n_buckets || !q_push(sw, q))
			q->transmits = -1;
	}
	return n;
}

static void bcast_release_parked(struct swim *sw, struct qlink **taken, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (taken[i]->transmits == -1)
			q_retire(sw, taken[i]);
}

/* ------------------------------------------------------------------ */
/* sending                                                             */

static const struct member *member_by_addr(struct swim *sw, const struct wire_addr *to)
{
	/* only used to decide on CRC; a linear scan would be O(n) per packet,
	 * so check the probe target and fall back to "assume modern" */
	struct member *m = sw->probe_target[0] ? find(sw, sw->probe_target) : NULL;
	if (m && member_addr_is(m, to))
		return m;
	return NULL;
}

static void send_raw(struct swim *sw, const struct wire_addr *to, const uint8_t *p, size_t len)
{
	if (!sw->hooks.send_packet)
		return;
	sw->stats.packets_out++;
	sw->stats.bytes_out += len;
	sw->hooks.send_packet(sw->hooks.ctx, to, p, len);
}

/*
 * Send one message to `to`, filling the rest of the datagram with gossip.
 * memberlist adds a CRC envelope for peers that speak protocol 5; every
 * peer we know of does (Serf 0.9, vigil), and older ones are rare enough
 * that we only omit it when we know the peer is older.
 */
static void send_msg(struct swim *sw, const struct wire_addr *to,
		     const uint8_t *msg, size_t len, bool piggyback)
{
	struct wire_bytes msgs[COMPOUND_MAX];
	struct qlink *taken[COMPOUND_MAX];
	size_t n = 0, nb = 0;
	msgs[n].p = msg;
	msgs[n++].len = (uint32_t)len;
	size_t budget = (size_t)sw->cfg.udp_buffer_size;
	budget = budget > len + 2 + 5 ? budget - len - 2 - 5 : 0; /* header + crc */
	if (piggyback && budget > 0) {
		nb = bcast_take(sw, budget, msgs + 1, COMPOUND_MAX - 1, taken);
		n += nb;
	}
	wbuf_reset(&sw->pkt);
	const uint8_t *out = msg;
	size_t out_len = len;
	if (n > 1) {
		wire_make_compound(&sw->pkt, msgs, n);
		out = sw->pkt.p;
		out_len = sw->pkt.len;
	}
	sw->stats.msgs_out += n;
	const struct member *peer = member_by_addr(sw, to);
	bool crc = !peer || peer->vsn[1] >= 5;
	if (crc) {
		wbuf_reset(&sw->scratch);
		wire_add_crc(&sw->scratch, out, out_len);
		if (!sw->scratch.oom)
			send_raw(sw, to, sw->scratch.p, sw->scratch.len);
	} else if (!sw->pkt.oom) {
		send_raw(sw, to, out, out_len);
	}
	bcast_release_parked(sw, taken, nb);
}

static void encode_send(struct swim *sw, const struct wire_addr *to,
			const struct wire_msg *m, bool piggyback)
{
	wbuf_reset(&sw->body);
	if (wire_encode(&sw->body, m) != WIRE_OK || sw->body.oom)
		return;
	/* body may be reused by send_msg's callees: copy pointer now */
	send_msg(sw, to, sw->body.p, sw->body.len, piggyback);
}

static void encode_broadcast(struct swim *sw, struct member *about, const struct wire_msg *m)
{
	wbuf_reset(&sw->body);
	if (wire_encode(&sw->body, m) != WIRE_OK || sw->body.oom)
		return;
	bcast_queue(sw, about, sw->body.p, sw->body.len);
}

static struct wire_bytes str_bytes(const char *s)
{
	struct wire_bytes b = { (const uint8_t *)s, (uint32_t)strlen(s) };
	return b;
}

static void fill_alive(const struct member *m, struct wire_msg *msg)
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

/* Encoded once here for its length; bcast_take encodes it again from m. */
static void broadcast_alive(struct swim *sw, struct member *m)
{
	struct wire_msg msg;
	fill_alive(m, &msg);
	wbuf_reset(&sw->body);
	if (wire_encode(&sw->body, &msg) != WIRE_OK || sw->body.oom)
		return;
	alive_queue(sw, m, sw->body.len);
}

static void broadcast_accuse(struct swim *sw, enum wire_type type, struct member *about,
			     uint32_t inc, const char *from)
{
	struct wire_msg msg;
	memset(&msg, 0, sizeof msg);
	msg.type = type;
	struct wire_accuse *a = type == WIRE_SUSPECT ? &msg.u.suspect : &msg.u.dead;
	a->incarnation = inc;
	a->node = name_bytes(about);
	a->from = str_bytes(from);
	encode_broadcast(sw, about, &msg);
}

/* The public view of a member, as of now. */
static void view_fill(const struct member *m, struct swim_member *v)
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

static void notify(struct swim *sw, enum swim_member_event ev, const struct member *m)
{
	if (!sw->hooks.on_member)
		return;
	view_fill(m, &sw->notify_view);
	sw->hooks.on_member(sw->hooks.ctx, ev, &sw->notify_view);
}

/* The suspicion of a suspect member (NULL if we ran out of memory listing it). */
static struct suspicion *suspicion_of(struct swim *sw, const struct member *m)
{
	for (size_t i = 0; i < sw->n_suspects; i++)
		if (sw->suspects[i].m == m)
			return &sw->suspects[i];
	return NULL;
}

static struct buddy_time *buddy_find(struct swim *sw, const struct member *m)
{
	for (size_t i = 0; i < sw->n_buddies; i++)
		if (sw->buddies[i].m == m)
			return &sw->buddies[i];
	return NULL;
}

static void buddy_forget(struct swim *sw, const struct member *m)
{
	struct buddy_time *b = buddy_find(sw, m);
	if (b)
		*b = sw->buddies[--sw->n_buddies];
}

/* Keep the suspect list in step with member states, so timers and the
 * buddy probes look at the few suspects rather than all members. */
static void track_suspect(struct swim *sw, struct member *m, bool suspect)
{
	bool listed = m->state == SWIM_SUSPECT;
	if (suspect == listed)
		return;
	if (suspect) {
		if (!reserve(&sw->suspects, &sw->cap_suspects, sw->n_suspects + 1,
			     sizeof *sw->suspects))
			return; /* out of memory: this suspicion will not time out */
		struct suspicion *sp = &sw->suspects[sw->n_suspects++];
		memset(sp, 0, sizeof *sp);
		sp->m = m;
		struct buddy_time *b = buddy_find(sw, m);
		if (b) {
			sp->last_buddy = b->t;
			buddy_forget(sw, m);
		}
		return;
	}
	struct suspicion *sp = suspicion_of(sw, m);
	if (!sp)
		return;
	if (sp->last_buddy && reserve(&sw->buddies, &sw->cap_buddies, sw->n_buddies + 1,
				      sizeof *sw->buddies))
		sw->buddies[sw->n_buddies++] = (struct buddy_time){ m, sp->last_buddy };
	*sp = sw->suspects[--sw->n_suspects];
}

static void set_state(struct swim *sw, struct member *m, enum swim_state st, int64_t now)
{
	track_suspect(sw, m, st == SWIM_SUSPECT);
	bool was_gone = is_gone(m), now_gone = st == SWIM_DEAD || st == SWIM_LEFT;
	if (was_gone && !now_gone)
		sw->n_alive++;
	else if (!was_gone && now_gone)
		sw->n_alive--;
	if (st != m->state)
		m->state_since = now;
	m->state = st;
	if (was_gone != now_gone)
		addr_index_update(sw, m);
}

/* ------------------------------------------------------------------ */
/* identity: which claims about a member we believe                    */

/*
 * How far ahead of the incarnation we hold a claim about a member may be.
 * A member's incarnation grows by one per refutation, tag change or stall,
 * and an honest claim is at most the member's own current incarnation, so
 * a gap is the number of bumps we missed: a handful while we are in touch,
 * 2^16 is a tag change every 10 s for a week of separation.  A bigger jump
 * is a forgery (one datagram at 2^32-1 would otherwise leave the member
 * nothing to refute with) and is refused.
 *
 * That alone would let a forger climb 2^16 per message and use up the
 * number space with 2^16 datagrams.  So jumps of more than INC_STEP_FREE
 * (rare when honest: we missed that many bumps) also draw on a budget of
 * INC_JUMP_MAX per member per CLIMB_WINDOW_MS, kept for the few members
 * that made one recently (CLIMB_SLOTS; when all are taken, big jumps wait).
 * Climbing to 2^32-1 then takes 2^28 accepted forgeries or 2^16 hours.
 * A member can still bring us a bigger jump in its own words: jump_vouched.
 */
#define INC_JUMP_MAX (1u << 16)
#define INC_STEP_FREE 16u
#define CLIMB_WINDOW_MS (3600 * 1000)
#define CLIMB_SLOTS 64

struct climb {
	const struct member *m;      /* NULL: free */
	int64_t since;               /* start of its window */
	uint32_t used;               /* incarnations climbed by big jumps in it */
};

/* Charge a big jump to m's budget; false if over it (or no slot is free). */
static bool climb_charge(struct swim *sw, const struct member *m, uint32_t jump, int64_t now)
{
	struct climb *slot = NULL, *spare = NULL;
	/* made at the first big jump: most swims never see one */
	if (!sw->climbs && !(sw->climbs = calloc(CLIMB_SLOTS, sizeof *sw->climbs)))
		return false;
	for (int i = 0; i < CLIMB_SLOTS && !slot; i++) {
		struct climb *c = &sw->climbs[i];
		if (c->m == m)
			slot = c;
		else if (!spare && (!c->m || now - c->since >= CLIMB_WINDOW_MS))
			spare = c;
	}
	if (!slot && !spare)
		return false;
	if (!slot || now - slot->since >= CLIMB_WINDOW_MS) {
		slot = slot ? slot : spare;
		*slot = (struct climb){ m, now, 0 };
	}
	if ((uint64_t)slot->used + jump > INC_JUMP_MAX)
		return false;
	slot->used += jump;
	return true;
}

static void climb_forget(struct swim *sw, const struct member *m)
{
	for (int i = 0; sw->climbs && i < CLIMB_SLOTS; i++)
		if (sw->climbs[i].m == m)
			sw->climbs[i].m = NULL;
}

/* One past inc, never wrapping: at the top a refutation can only tie. */
static uint32_t inc_after(uint32_t inc)
{
	return inc == UINT32_MAX ? inc : inc + 1;
}

/*
 * A jump past INC_JUMP_MAX is believed only over TCP (a push-pull: not a
 * datagram with a spoofed source, and not a rumour relayed by others):
 *  - the peer's alive about itself: at the very address we dialled, or
 *    at the IP address the connection comes from (how a member that was
 *    away for long comes back; each member takes the jump at its first
 *    push-pull with it, either way);
 *  - in the answer to our join, claims about ourselves: a restarted member
 *    starts from 1 and learns the incarnation of its previous life there,
 *    as in memberlist.
 */
static bool jump_vouched(const struct swim *sw, const struct member *m,
			 const struct wire_addr *alive_addr)
{
	const struct wire_addr *p = sw->pp_peer;
	if (!p)
		return false;
	if (m == sw->self)
		return sw->pp_join;
	if (!alive_addr)
		return false;
	if (!sw->pp_inbound)
		return wire_addr_equal(alive_addr, p);
	return alive_addr->ip_len == p->ip_len && memcmp(alive_addr->ip, p->ip, p->ip_len) == 0;
}

/* Set (peer) or clear (NULL) the push-pull whose state is being merged, for jump_vouched. */
static void pp_vouching(struct swim *sw, const struct wire_addr *peer, bool inbound, bool join)
{
	sw->pp_peer = peer;
	sw->pp_inbound = inbound;
	sw->pp_join = join;
}

static void start_push_pull(struct swim *sw, const struct wire_addr *to, bool join);

/*
 * We refused an alive far ahead for m, at the address we hold for it: if
 * that was m's true incarnation (it was away long), only m's own word in a
 * push-pull brings us there, so ask m for it now rather than waiting for
 * the next push-pull between us to happen by chance.  If it was forged, m
 * answers with its real incarnation.  One such push-pull per probe
 * interval, whatever is sent to us.
 */
static void ask_member(struct swim *sw, const struct member *m, int64_t now)
{
	if (m == sw->self || now - sw->last_jump_ask < sw->cfg.probe_interval_ms)
		return;
	sw->last_jump_ask = now;
	struct wire_addr to = member_addr(m);
	start_push_pull(sw, &to, false);
}

/* A claim about known member m at incarnation inc (alive_addr: its address if an alive). */
static bool inc_plausible(struct swim *sw, const struct member *m, uint32_t inc,
			  const struct wire_addr *alive_addr, int64_t now)
{
	uint32_t jump = inc > m->incarnation ? inc - m->incarnation : 0;
	if (jump <= INC_STEP_FREE || jump_vouched(sw, m, alive_addr) ||
	    (jump <= INC_JUMP_MAX && climb_charge(sw, m, jump, now)))
		return true;
	sw->stats.refused_incarnation++;
	logf_(sw, 0, "refused a claim about %s at incarnation %u (we hold %u)",
	      member_name(m), inc, m->incarnation);
	if (alive_addr && member_addr_is(m, alive_addr))
		ask_member(sw, m, now);
	return false;
}

static int64_t push_pull_interval(const struct swim *sw);
static void move_check_start(struct swim *sw, struct member *m, const struct wire_alive *a,
			     int64_t now);

/*
 * memberlist's "conflicting address" rule: a member we hold alive or
 * suspect never moves.  A member we hold dead or left may: that is how a
 * member restarted on another address comes back.  But a forged death or
 * leave followed by an alive elsewhere would take the member over, so
 * before moving a gone member we ask its old address, by name, whether it
 * still answers (see move_check_start): a member that is in fact alive
 * acks and keeps its address; a restarted one has left nothing there and
 * moves a moment later.
 *
 * Once it has been gone for gossip_to_dead_ms plus a push-pull interval it
 * moves without asking: we gossip to the dead for gossip_to_dead_ms (30 s,
 * memberlist's GossipToTheDeadTime, after which memberlist forgets a dead
 * member and takes it back at any address), and a member falsely said to
 * have left (the left are not gossiped to) learns it at its own next
 * push-pull, so by then a live member has refuted.
 */
static bool may_move(struct swim *sw, struct member *m, const struct wire_alive *a,
		     int64_t now)
{
	int64_t wait = sw->cfg.gossip_to_dead_ms;
	if (sw->cfg.push_pull_interval_ms > 0)
		wait += push_pull_interval(sw);
	if (is_gone(m) && (now - m->state_since >= wait || sw->move_checked == m))
		return true;
	if (is_gone(m)) {
		move_check_start(sw, m, a, now);
		return false;
	}
	sw->stats.refused_address++;
	logf_(sw, 2, "conflicting address for %s; ignoring alive", member_name(m));
	return false;
}

/* ------------------------------------------------------------------ */
/* refutation, alive, suspect, dead                                    */

/* Remember that member `id` answered us or pinged us at `now`. */
static void heard_from(struct swim *sw, uint32_t id, int64_t now)
{
	if (id == NO_ID || member_of(sw, id) == sw->self)
		return;
	sw->acked[sw->n_acked_next].id = id;
	sw->acked[sw->n_acked_next].t = now;
	sw->n_acked_next = (sw->n_acked_next + 1) % RECENT_ACKED;
}

/* Did m answer or ping us less than `window` ms ago? */
static bool heard_within(const struct swim *sw, const struct member *m, int64_t window,
			 int64_t now)
{
	for (int i = 0; i < RECENT_ACKED; i++)
		if (sw->acked[i].t && now - sw->acked[i].t < window &&
		    sw->acked[i].id < sw->n_ids && member_of(sw, sw->acked[i].id) == m)
			return true;
	return false;
}

/* Someone says we are suspect/dead (or alive with other data): outbid them. */
static void refute(struct swim *sw, uint32_t accused_inc, int64_t now)
{
	struct member *me = sw->self;
	uint32_t inc = inc_after(me->incarnation);
	if (accused_inc >= inc)
		inc = inc_after(accused_inc);
	if (inc == accused_inc)
		logf_(sw, 3, "incarnation exhausted: cannot outbid a claim at %u", accused_inc);
	me->incarnation = inc;
	me->state_since = now;
	sw->stats.refutations++;
	awareness_apply(sw, 1);
	broadcast_alive(sw, me);
	logf_(sw, 1, "refuting a rumour about ourselves with incarnation %u", inc);
}

/*
 * Someone accuses us at an incarnation we have already refuted.  Their
 * copy of our refutation was lost (it happens under loss), and they will
 * keep suspecting us — and after the timeout declare us dead — because
 * stale accusations are otherwise ignored.  Tell the accuser directly.
 */
static void answer_stale_accusation(struct swim *sw, struct wire_bytes accuser)
{
	char name[WIRE_NAME_MAX + 1];
	bytes_to_name(accuser, name);
	const struct member *a = name[0] ? find(sw, name) : NULL;
	struct wire_addr a_addr;
	if (a && a != sw->self)
		a_addr = member_addr(a);
	const struct wire_addr *to = a && a != sw->self ? &a_addr : sw->cur_from;
	if (!to || sw->leaving)
		return;
	struct wire_msg msg;
	fill_alive(sw->self, &msg);
	encode_send(sw, to, &msg, false);
}

/* h: subject_hash(a->node), as for the other two rumour handlers. */
static void handle_alive(struct swim *sw, const struct wire_alive *a, uint64_t h, int64_t now)
{
	char name[WIRE_NAME_MAX + 1];
	if (!valid_name(a->node) || a->addr.ip_len == 0 || a->meta.len > WIRE_META_MAX)
		return;
	bytes_to_name(a->node, name);
	if (a->vsn_len >= 3 && (a->vsn[0] == 0 || a->vsn[1] == 0 || a->vsn[0] > a->vsn[1]))
		return;
	struct member *m = find_subject(sw, name, a->node.len, h);
	bool is_self = m == sw->self;
	if (is_self) {
		if (sw->leaving)
			return;
		if (a->incarnation < m->incarnation)
			return;
		if (a->incarnation == m->incarnation &&
		    bytes_eq(a->meta, member_meta(m), m->meta_len))
			return;
		if (!inc_plausible(sw, m, a->incarnation, NULL, now))
			return;
		refute(sw, a->incarnation, now);
		return;
	}
	bool fresh = false;
	if (!m) {
		m = member_add(sw, name);
		if (!m)
			return;
		fresh = true; /* created dead; set_state below counts it alive */
	} else {
		if (a->incarnation <= m->incarnation ||
		    !inc_plausible(sw, m, a->incarnation, &a->addr, now))
			return;
		if (!member_addr_is(m, &a->addr) && !may_move(sw, m, a, now))
			return;
	}
	enum swim_state old = m->state;
	bool meta_changed = !bytes_eq(a->meta, member_meta(m), m->meta_len) ||
			    !member_addr_is(m, &a->addr);
	if (!member_set_addr_meta(m, &a->addr, a->meta.p, a->meta.len))
		return; /* out of memory: as if this alive had been lost */
	m->incarnation = a->incarnation;
	if (a->vsn_len == 6)
		memcpy(m->vsn, a->vsn, 6);
	broadcast_alive(sw, m);
	set_state(sw, m, SWIM_ALIVE, now);
	if (fresh || old == SWIM_DEAD || old == SWIM_LEFT) {
		sw->stats.joins++;
		notify(sw, SWIM_EV_JOIN, m);
	} else if (meta_changed) {
		notify(sw, SWIM_EV_UPDATE, m);
	}
}

/* Suspicion timeout, as memberlist: mult * max(1, log10(n)) * interval. */
static int64_t suspicion_min_ms(const struct swim *sw)
{
	double n = (double)sw->n_alive;
	double scale = n >= 1 ? log10(n) : 0;
	if (scale < 1)
		scale = 1;
	return (int64_t)(sw->cfg.suspicion_mult * scale * sw->cfg.probe_interval_ms);
}

/*
 * Lifeguard: the timeout shrinks from max towards min as independent
 * confirmations arrive: max - (max - min) * log(c + 1) / log(k + 1).
 */
static void suspicion_rearm(struct suspicion *sp)
{
	/* with nobody left to confirm (tiny clusters), waiting for the
	 * maximum would only delay detection: memberlist uses the minimum */
	int64_t t = sp->confirm_needed > 0 ? sp->max_ms : sp->min_ms;
	if (sp->confirm_needed > 0) {
		double frac = log(sp->confirmations + 1.0) / log(sp->confirm_needed + 1.0);
		t = sp->max_ms - (int64_t)((double)(sp->max_ms - sp->min_ms) * frac);
		if (t < sp->min_ms)
			t = sp->min_ms;
	}
	sp->deadline = sp->start + t;
}

static void handle_suspect(struct swim *sw, const struct wire_accuse *s, uint64_t h, int64_t now)
{
	char name[WIRE_NAME_MAX + 1], from[WIRE_NAME_MAX + 1];
	if (!valid_name(s->node) || memchr(s->from.p ? s->from.p : (const uint8_t *)"", 0, s->from.len))
		return;
	bytes_to_name(s->node, name);
	bytes_to_name(s->from, from);
	struct member *m = find_subject(sw, name, s->node.len, h);
	if (m == sw->self && s->incarnation < m->incarnation) {
		answer_stale_accusation(sw, s->from);
		return;
	}
	if (!m || s->incarnation < m->incarnation || !inc_plausible(sw, m, s->incarnation, NULL, now))
		return;
	if (m == sw->self) {
		if (!sw->leaving)
			refute(sw, s->incarnation, now);
		return;
	}
	if (m->state == SWIM_SUSPECT) {
		struct suspicion *sp = suspicion_of(sw, m);
		if (!sp)
			return;
		/* a distinct accuser is a Lifeguard confirmation */
		uint64_t fh = hash_name(from);
		for (int i = 0; i < sp->n_confirmers; i++)
			if (sp->confirmers[i] == fh)
				return;
		if (sp->n_confirmers < 8)
			sp->confirmers[sp->n_confirmers++] = fh;
		if (sp->confirmations < sp->confirm_needed) {
			sp->confirmations++;
			suspicion_rearm(sp);
			broadcast_accuse(sw, WIRE_SUSPECT, m, s->incarnation, from);
		}
		return;
	}
	if (is_gone(m))
		return;
	broadcast_accuse(sw, WIRE_SUSPECT, m, s->incarnation, from);
	m->incarnation = s->incarnation;
	set_state(sw, m, SWIM_SUSPECT, now);
	sw->stats.suspicions++;
	struct suspicion *sp = suspicion_of(sw, m);
	if (sp) {
		int k = sw->cfg.suspicion_mult - 2;
		if (!sw->cfg.lifeguard || (int)sw->n_alive - 2 < k)
			k = 0;
		sp->confirm_needed = k > 0 ? k : 0;
		sp->confirmations = 0;
		sp->n_confirmers = 1;
		sp->confirmers[0] = hash_name(from);
		sp->start = now;
		sp->buddy_from = now;
		sp->min_ms = suspicion_min_ms(sw);
		sp->max_ms = sw->cfg.lifeguard
			? sp->min_ms * sw->cfg.suspicion_max_timeout_mult
			: sp->min_ms;
		suspicion_rearm(sp);
	}
	logf_(sw, 1, "suspect %s (from %s)", name, from);
}

static void handle_dead(struct swim *sw, const struct wire_accuse *d, uint64_t h, int64_t now)
{
	char name[WIRE_NAME_MAX + 1];
	if (!valid_name(d->node) || memchr(d->from.p ? d->from.p : (const uint8_t *)"", 0, d->from.len))
		return;
	bytes_to_name(d->node, name);
	struct member *m = find_subject(sw, name, d->node.len, h);
	if (m == sw->self && d->incarnation < m->incarnation &&
	    !bytes_eq_str(d->from, member_name(m))) {
		answer_stale_accusation(sw, d->from);
		return;
	}
	if (!m || d->incarnation < m->incarnation || is_gone(m) ||
	    !inc_plausible(sw, m, d->incarnation, NULL, now))
		return;
	bool is_leave = bytes_eq_str(d->from, name);
	if (m == sw->self && !sw->leaving) {
		refute(sw, d->incarnation, now);
		return;
	}
	if (!is_leave && m != sw->self && !bytes_eq_str(d->from, member_name(sw->self)) &&
	    heard_within(sw, m, suspicion_min_ms(sw), now)) {
		/*
		 * Direct evidence beats hearsay.  A death is declared at the
		 * earliest a minimum suspicion timeout after the accuser's
		 * suspicion began, and that began after the member stopped
		 * answering the accuser.  The member answered or pinged *us*
		 * more recently than that, so the accuser's view is stale or
		 * partial (a suspicion formed across a partition that expired
		 * just after the heal): we only suspect it, which tells it
		 * (buddy probe) so it refutes, and a member really gone still
		 * dies when that suspicion runs out.
		 */
		struct wire_accuse s = { d->incarnation, d->node, d->from };
		logf_(sw, 1, "%s declared dead, but it answered us lately: suspecting it", name);
		handle_suspect(sw, &s, h, now);
		return;
	}
	char from[WIRE_NAME_MAX + 1];
	bytes_to_name(d->from, from);
	broadcast_accuse(sw, WIRE_DEAD, m, d->incarnation, from);
	m->incarnation = d->incarnation;
	set_state(sw, m, is_leave ? SWIM_LEFT : SWIM_DEAD, now);
	if (!is_leave)
		sw->stats.deaths++;
	logf_(sw, 1, "%s %s", name, is_leave ? "left" : "is dead");
	notify(sw, SWIM_EV_LEAVE, m);
}

/* ------------------------------------------------------------------ */
/* probing                                                             */

static uint32_t next_seq(struct swim *sw)
{
	return ++sw->seq;
}

static struct member *random_live(struct swim *sw, const char *exclude)
{
	if (sw->n_alive <= 1)
		return NULL;
	/* rejection sampling keeps this O(1) in large, mostly-alive clusters */
	for (int tries = 0; tries < 64; tries++) {
		struct member *m = member_at(sw, rng_below(sw, sw->n_members));
		if (m != sw->self && m->state == SWIM_ALIVE &&
		    (!exclude || strcmp(member_name(m), exclude) != 0))
			return m;
	}
	for (size_t i = 0; i < sw->n_members; i++) {
		struct member *m = member_at(sw, (i + rng_below(sw, sw->n_members)) % sw->n_members);
		if (m != sw->self && m->state == SWIM_ALIVE &&
		    (!exclude || strcmp(member_name(m), exclude) != 0))
			return m;
	}
	return NULL;
}

static void reshuffle(struct swim *sw)
{
	/* Fisher-Yates over every member; gone ones are skipped at probe time */
	sw->probe_n = 0;
	for (size_t i = 0; i < sw->n_members; i++)
		sw->probe_order[sw->probe_n++] = sw->members[i];
	for (size_t i = sw->probe_n; i > 1; i--) {
		size_t j = rng_below(sw, i);
		uint32_t t = sw->probe_order[i - 1];
		sw->probe_order[i - 1] = sw->probe_order[j];
		sw->probe_order[j] = t;
	}
	sw->probe_pos = 0;
}

/* The biggest ack payload we attach (serf's coordinate takes ~120 bytes). */
#define ACK_PAYLOAD_MAX 256

static int64_t clock_us(struct swim *sw, int64_t now)
{
	return sw->hooks.clock_us ? sw->hooks.clock_us(sw->hooks.ctx) : now * 1000;
}

/* A ping for `node` that tells the receiver where to send the ack. */
static void fill_ping(const struct swim *sw, struct wire_msg *msg, uint32_t seq,
		      struct wire_bytes node)
{
	memset(msg, 0, sizeof *msg);
	msg->type = WIRE_PING;
	msg->u.ping.seq = seq;
	msg->u.ping.node = node;
	msg->u.ping.source = member_addr(sw->self);
	msg->u.ping.source_node = name_bytes(sw->self);
}

static void send_ping(struct swim *sw, const struct member *target, uint32_t seq)
{
	struct wire_msg msg;
	fill_ping(sw, &msg, seq, name_bytes(target));
	struct wire_addr to = member_addr(target);
	encode_send(sw, &to, &msg, true);
}

/*
 * A ping to `target` with a suspect or dead about `about` in the same
 * datagram: its ack proves the accusation arrived too (a packet is handled
 * whole).  Used for the buddy probe (suspect about the target itself) and
 * for a leave (dead about ourselves, from ourselves).
 */
static void send_ping_with_accuse(struct swim *sw, const struct member *target, uint32_t seq,
				  enum wire_type type, const struct member *about)
{
	struct wire_msg msg;
	memset(&msg, 0, sizeof msg);
	msg.type = type;
	struct wire_accuse *a = type == WIRE_SUSPECT ? &msg.u.suspect : &msg.u.dead;
	a->incarnation = about->incarnation;
	a->node = name_bytes(about);
	a->from = name_bytes(sw->self);
	struct wbuf two;
	wbuf_init(&two);
	struct wire_msg ping;
	fill_ping(sw, &ping, seq, name_bytes(target));
	wire_encode(&two, &ping);
	size_t ping_len = two.len;
	wire_encode(&two, &msg);
	if (!two.oom) {
		struct wire_bytes parts[2] = { { two.p, (uint32_t)ping_len },
					       { two.p + ping_len, (uint32_t)(two.len - ping_len) } };
		struct wbuf c;
		wbuf_init(&c);
		wire_make_compound(&c, parts, 2);
		if (!c.oom) {
			struct wire_addr to = member_addr(target);
			send_msg(sw, &to, c.p, c.len, false);
		}
		wbuf_free(&c);
	}
	wbuf_free(&two);
}

/*
 * Lifeguard's buddy system only helps if the suspect hears from us soon.
 * Round-robin may not come back to it for n intervals, and a suspicion we
 * formed while cut off ourselves was gossiped into the void (nobody else
 * holds it, and the suspect never heard), so a suspicion may jump the
 * queue -- once, and only while no second member confirms it:
 *  - once: jumping every two intervals (as vigil did) spent every other
 *    probe of a partition's minority side on members already suspected,
 *    members not yet suspected waited, and a 4|2 cut's minority took up to
 *    34 s to give up on the other side;
 *  - unconfirmed: a confirmer's rumour is out there, and its own pings
 *    carry the news;
 *  - a suspicion we formed ourselves waits two intervals (buddy_from):
 *    the suspect has just failed to answer us, while one we heard of from
 *    another member is pinged at once, which is also how a partition's
 *    other members come to confirm it.
 */
static struct member *buddy_due(struct swim *sw, int64_t now)
{
	/* at most every other probe, so the round-robin keeps its pace */
	if (!sw->cfg.lifeguard || sw->last_probe_buddy)
		return NULL;
	struct suspicion *best = NULL;
	for (size_t i = 0; i < sw->n_suspects; i++) {
		struct suspicion *sp = &sw->suspects[i];
		if (sp->n_confirmers > 1 || now < sp->buddy_from ||
		    now - sp->last_buddy < 2LL * sw->cfg.probe_interval_ms)
			continue;
		if (!best || sp->last_buddy < best->last_buddy)
			best = sp;
	}
	if (!best)
		return NULL;
	best->buddy_from = INT64_MAX;
	return best->m;
}

/* The member an unreachable hint named, if it is still worth probing. */
static struct member *take_hinted(struct swim *sw)
{
	uint32_t id = sw->hinted;
	sw->hinted = NO_ID;
	if (id == NO_ID)
		return NULL;
	struct member *m = member_of(sw, id);
	return is_live_peer(sw, m) ? m : NULL;
}

static void probe_start(struct swim *sw, int64_t now)
{
	struct member *target = buddy_due(sw, now);
	sw->last_probe_buddy = target != NULL;
	if (!target)
		target = take_hinted(sw);
	for (size_t scanned = 0; !target && scanned <= sw->probe_n; scanned++) {
		if (sw->probe_pos >= sw->probe_n)
			reshuffle(sw);
		if (sw->probe_n == 0)
			break;
		struct member *m = member_of(sw, sw->probe_order[sw->probe_pos++]);
		if (is_live_peer(sw, m)) {
			target = m;
			break;
		}
	}
	sw->next_probe = now + scaled(sw, sw->cfg.probe_interval_ms);
	if (!target)
		return;
	sw->stats.probes++;
	snprintf(sw->probe_target, sizeof sw->probe_target, "%s", member_name(target));
	sw->probe_seq = next_seq(sw);
	sw->probe_start = now;
	/* not scaled by local health, as memberlist: waiting longer does not
	 * get UDP through; the scaled interval gives the indirect probes the
	 * extra time instead */
	sw->probe_ack_deadline = now + sw->cfg.probe_timeout_ms;
	sw->probe_end = sw->next_probe;
	sw->probe_expected_nacks = 0;
	sw->probe_nacks = 0;
	sw->probe_unreachable = false;
	sw->probe_phase = PROBE_DIRECT;
	sw->probe_sent_us = clock_us(sw, now);
	if (target->state == SWIM_SUSPECT && sw->cfg.lifeguard) {
		struct suspicion *sp = suspicion_of(sw, target);
		if (sp)
			sp->last_buddy = now;
		/* Lifeguard buddy system: tell a suspect it is suspected, so it
		 * can refute at once instead of waiting for the rumour. */
		send_ping_with_accuse(sw, target, sw->probe_seq, WIRE_SUSPECT, target);
		return;
	}
	send_ping(sw, target, sw->probe_seq);
}

static void probe_succeeded(struct swim *sw, int64_t now)
{
	sw->stats.acks++;
	awareness_apply(sw, -1);
	sw->probe_phase = PROBE_IDLE;
	heard_from(sw, find_id(sw, sw->probe_target), now);
	/*
	 * Local health stretches a probe that goes unanswered (more time for
	 * indirect acks and nacks), not the pace of probes that are answered:
	 * memberlist's probeNode returns at the ack and the next tick of its
	 * fixed ProbeInterval ticker starts the next one.  Keeping the scaled
	 * interval after an ack made a member with a high score (the minority
	 * side of a partition: most helpers there cannot nack) probe every
	 * 5-8 s and take 35-60 s to give up on the other side.
	 */
	int64_t next = sw->probe_start + sw->cfg.probe_interval_ms;
	if (next < now)
		next = now;
	if (next < sw->next_probe)
		sw->next_probe = next;
}

/*
 * memberlist's TCP fallback: with the indirect probes, ping the target over
 * a stream (same ping, same seq; memberlist and serf answer it, and so does
 * swim_handle_stream).  A member whose UDP is lossy or filtered but that
 * answers over TCP is not suspected: memberlist logs "network may be
 * misconfigured" and counts the probe as answered.  Skipped for members
 * older than protocol 3 (memberlist's rule) and with disable_tcp_pings.
 */
static void probe_tcp_ping(struct swim *sw, const struct member *target)
{
	/* half the stream slots at most: a ping to a vanished host holds
	 * its slot for the whole stream timeout, and push-pulls need them */
	if (sw->cfg.disable_tcp_pings || !sw->hooks.send_stream ||
	    sw->n_streams >= MAX_PENDING_STREAMS / 2 || target->vsn[1] < 3)
		return;
	struct wire_msg ping;
	fill_ping(sw, &ping, sw->probe_seq, name_bytes(target));
	struct wbuf out;
	wbuf_init(&out);
	if (wire_encode(&out, &ping) == WIRE_OK && !out.oom) {
		struct pending_stream *ps = &sw->streams[sw->n_streams++];
		memset(ps, 0, sizeof *ps);
		ps->cookie = ++sw->next_cookie;
		ps->ping = true;
		ps->ping_seq = sw->probe_seq;
		ps->to = member_addr(target);
		sw->stats.tcp_pings++;
		sw->hooks.send_stream(sw->hooks.ctx, &ps->to, out.p, out.len, ps->cookie);
	}
	wbuf_free(&out);
}

/* The answer to probe_tcp_ping (msg NULL: the stream failed). */
static void tcp_ping_reply(struct swim *sw, const struct pending_stream *ps,
			   const uint8_t *msg, size_t len, int64_t now)
{
	struct wire_msg m;
	if (!msg || len == 0 || msg[0] != WIRE_ACK || wire_decode(msg, len, &m) != WIRE_OK ||
	    m.u.ack.seq != ps->ping_seq)
		return;
	if (sw->probe_phase == PROBE_IDLE || ps->ping_seq != sw->probe_seq)
		return; /* too late: the probe already has its verdict */
	sw->stats.tcp_fallback_acks++;
	logf_(sw, 2, "%s answered over TCP but not over UDP; network may be misconfigured",
	      sw->probe_target);
	probe_succeeded(sw, now);
}

static void probe_go_indirect(struct swim *sw, int64_t now)
{
	struct member *target = find(sw, sw->probe_target);
	sw->probe_phase = PROBE_INDIRECT;
	if (!target || is_gone(target))
		return;
	/* pick up to k distinct live members other than us and the target */
	struct member *picked[16];
	int k = sw->cfg.indirect_checks > 16 ? 16 : sw->cfg.indirect_checks, n = 0;
	for (int tries = 0; n < k && tries < k * 8; tries++) {
		struct member *m = random_live(sw, member_name(target));
		if (!m)
			break;
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= picked[i] == m;
		if (!dup)
			picked[n++] = m;
	}
	for (int i = 0; i < n; i++) {
		struct wire_msg msg;
		memset(&msg, 0, sizeof msg);
		msg.type = WIRE_INDIRECT_PING;
		msg.u.indirect.seq = sw->probe_seq;
		msg.u.indirect.target = member_addr(target);
		msg.u.indirect.node = name_bytes(target);
		/* nacks exist from protocol 4 on */
		msg.u.indirect.nack = picked[i]->vsn[1] >= 4;
		msg.u.indirect.source = member_addr(sw->self);
		msg.u.indirect.source_node = name_bytes(sw->self);
		if (msg.u.indirect.nack)
			sw->probe_expected_nacks++;
		struct wire_addr to = member_addr(picked[i]);
		encode_send(sw, &to, &msg, true);
	}
	probe_tcp_ping(sw, target);
	(void)now;
}

static void probe_failed(struct swim *sw, int64_t now)
{
	sw->probe_phase = PROBE_IDLE;
	sw->stats.probe_failures++;
	/*
	 * Lifeguard: if the helpers we asked did not even nack, the problem
	 * is more likely on our side; raise our own health score.
	 */
	int delta = 1;
	if (sw->probe_expected_nacks > 0)
		delta = sw->probe_nacks > 0 ? 0 : sw->probe_expected_nacks;
	awareness_apply(sw, delta);
	struct member *target = find(sw, sw->probe_target);
	if (!target || is_gone(target))
		return;
	logf_(sw, 1, "probe of %s failed (%d of %d nacks)", member_name(target), sw->probe_nacks,
	      sw->probe_expected_nacks);
	if (now < sw->stall_grace_until)
		return; /* just resumed from a stall (swim_notice_stall) */
	struct wire_accuse s = { target->incarnation, name_bytes(target),
				 name_bytes(sw->self) };
	handle_suspect(sw, &s, subject_hash(s.node), now);
	/* it has just failed to answer us: see buddy_due */
	struct suspicion *sp = target->state == SWIM_SUSPECT ? suspicion_of(sw, target) : NULL;
	if (sp && sp->start == now)
		sp->buddy_from = now + 2LL * sw->cfg.probe_interval_ms;
}

/* ------------------------------------------------------------------ */
/* message handlers                                                    */

static void reply_addr(const struct wire_addr *src, const struct wire_addr *from,
		       struct wire_addr *out)
{
	*out = src->ip_len && src->port ? *src : *from;
}

static void handle_ping(struct swim *sw, const struct wire_ping *p, const struct wire_addr *from,
			int64_t now)
{
	if (p->node.len && !bytes_eq_str(p->node, member_name(sw->self)))
		return; /* meant for someone who used to live at this address */
	if (valid_name(p->source_node)) {
		char src[WIRE_NAME_MAX + 1];
		bytes_to_name(p->source_node, src);
		heard_from(sw, find_id(sw, src), now);
	}
	struct wire_msg ack;
	memset(&ack, 0, sizeof ack);
	ack.type = WIRE_ACK;
	ack.u.ack.seq = p->seq;
	uint8_t payload[ACK_PAYLOAD_MAX];
	if (sw->hooks.ack_payload) {
		/* none stays a nil Payload, as memberlist writes it */
		size_t n = sw->hooks.ack_payload(sw->hooks.ctx, payload, sizeof payload);
		if (n)
			ack.u.ack.payload = (struct wire_bytes){ payload, (uint32_t)n };
	}
	struct wire_addr to;
	reply_addr(&p->source, from, &to);
	/*
	 * Gossip rides on the ack too, as memberlist's sendMsg does for every
	 * packet: a prober is a member that surely hears us.  With most gossip
	 * targets unreachable (a partition's minority side), acks were the
	 * path that carried a `dead` to the others on our side in time.
	 */
	encode_send(sw, &to, &ack, true);
}

/* ------------------------------------------------------------------ */
/* move checks (see may_move)                                          */

#define MOVE_CHECK_PINGS 5       /* lost datagrams must not move a live member */

/* An alive that would move a gone member early, held while we ask its old address. */
struct move_check {
	struct member *m;
	uint32_t seq;                /* of our pings to the old address */
	int pings_left;
	int64_t next_ping, deadline;
	uint32_t incarnation;
	struct wire_addr addr;       /* where the alive says it is now */
	uint8_t vsn[6], vsn_len;
	uint16_t meta_len;
	uint8_t meta[WIRE_META_MAX];
};

static void move_check_ping(struct swim *sw, int64_t now)
{
	struct move_check *mc = sw->move;
	send_ping(sw, mc->m, mc->seq);
	mc->pings_left--;
	mc->next_ping = now + sw->cfg.probe_timeout_ms;
}

/*
 * Ask m's old address, by name, whether m still lives there: a ping now
 * and more a probe timeout apart (MOVE_CHECK_PINGS in all: at 10 % loss
 * each way, all five round trips fail once in 4,000 checks), then a probe
 * timeout for the last ack.  One check at a time, so the work is bounded
 * whatever a forger sends: an alive arriving while another member is
 * being checked is refused, and a restarted member's next alive (its next
 * push-pull) tries again.
 */
static void move_check_start(struct swim *sw, struct member *m, const struct wire_alive *a,
			     int64_t now)
{
	if (sw->move) {
		if (sw->move->m == m && wire_addr_equal(&sw->move->addr, &a->addr) &&
		    a->incarnation <= sw->move->incarnation)
			return; /* the same news again: already being checked */
		sw->stats.refused_address++;
		logf_(sw, 1, "not moving %s now: another move is being checked", member_name(m));
		return;
	}
	struct move_check *mc = malloc(sizeof *mc);
	if (!mc)
		return; /* as if the alive had been lost */
	mc->m = m;
	mc->seq = next_seq(sw);
	mc->pings_left = MOVE_CHECK_PINGS;
	mc->deadline = now + (int64_t)(MOVE_CHECK_PINGS + 1) * sw->cfg.probe_timeout_ms;
	mc->incarnation = a->incarnation;
	mc->addr = a->addr;
	memcpy(mc->vsn, a->vsn, sizeof mc->vsn);
	mc->vsn_len = a->vsn_len;
	mc->meta_len = (uint16_t)a->meta.len; /* <= WIRE_META_MAX: handle_alive checked */
	if (a->meta.len)
		memcpy(mc->meta, a->meta.p, a->meta.len);
	sw->move = mc;
	logf_(sw, 1, "%s claims a new address while gone; asking its old one first",
	      member_name(m));
	move_check_ping(sw, now);
}

static void move_check_end(struct swim *sw)
{
	free(sw->move);
	sw->move = NULL;
}

/* An ack: the old address still answers to the name, so the member stays there. */
static bool move_check_ack(struct swim *sw, uint32_t seq)
{
	if (!sw->move || sw->move->seq != seq)
		return false;
	sw->stats.refused_address++;
	logf_(sw, 2, "conflicting address for %s: its old address still answers; ignoring alive",
	      member_name(sw->move->m));
	move_check_end(sw);
	return true;
}

static void handle_alive(struct swim *sw, const struct wire_alive *a, uint64_t h, int64_t now);

static void move_check_tick(struct swim *sw, int64_t now)
{
	struct move_check *mc = sw->move;
	if (!mc)
		return;
	if (now >= mc->deadline) {
		/* no answer: apply the alive as if it had just come, rechecked */
		struct wire_alive a = { mc->incarnation, name_bytes(mc->m), mc->addr,
					{ mc->meta, mc->meta_len }, {0}, mc->vsn_len };
		memcpy(a.vsn, mc->vsn, sizeof a.vsn);
		sw->move_checked = mc->m;
		handle_alive(sw, &a, subject_hash(a.node), now);
		sw->move_checked = NULL;
		move_check_end(sw);
	} else if (mc->pings_left > 0 && now >= mc->next_ping) {
		move_check_ping(sw, now);
	}
}

static int64_t move_check_due(const struct swim *sw)
{
	const struct move_check *mc = sw->move;
	if (!mc)
		return NEVER;
	return mc->pings_left > 0 && mc->next_ping < mc->deadline ? mc->next_ping : mc->deadline;
}

static void handle_indirect(struct swim *sw, const struct wire_indirect_ping *ip,
			    const struct wire_addr *from, int64_t now)
{
	if (ip->target.ip_len == 0)
		return;
	if (sw->n_relays == MAX_RELAYS) {
		/* drop the oldest: a flood of requests must not grow memory */
		memmove(sw->relays, sw->relays + 1, (MAX_RELAYS - 1) * sizeof sw->relays[0]);
		sw->n_relays--;
	}
	if (!reserve(&sw->relays, &sw->cap_relays, sw->n_relays + 1, sizeof *sw->relays))
		return; /* out of memory: as if the request had been lost */
	struct relay *r = &sw->relays[sw->n_relays++];
	memset(r, 0, sizeof *r);
	r->local_seq = next_seq(sw);
	r->orig_seq = ip->seq;
	reply_addr(&ip->source, from, &r->requester);
	r->want_nack = ip->nack;
	r->target = ip->target;
	/*
	 * The requester sent us this after its own probe timeout and gives up
	 * one probe interval after its ping, i.e. about one probe timeout from
	 * now.  A nack sent only after a full timeout of ours arrives after it
	 * stopped counting, and Lifeguard would read every helper's nack as
	 * missing and blame the requester's own health.  Answer at 80%.
	 */
	r->nack_at = now + sw->cfg.probe_timeout_ms * 4 / 5;
	r->expire_at = now + sw->cfg.probe_interval_ms * 2;
	struct wire_msg msg;
	fill_ping(sw, &msg, r->local_seq, ip->node);
	encode_send(sw, &ip->target, &msg, false);
}

static void handle_ack(struct swim *sw, const struct wire_ack *a, int64_t now)
{
	uint32_t seq = a->seq;
	if (sw->probe_phase != PROBE_IDLE && seq == sw->probe_seq) {
		/* memberlist reports the RTT of direct acks only: an indirect
		 * one measures the helper's path too */
		if (sw->probe_phase == PROBE_DIRECT && sw->hooks.ping_complete)
			sw->hooks.ping_complete(sw->hooks.ctx, sw->probe_target,
						clock_us(sw, now) - sw->probe_sent_us,
						a->payload.p, a->payload.len);
		probe_succeeded(sw, now);
		return;
	}
	if (sw->n_leave_to && seq - sw->leave_seq0 < sw->n_leave_to) {
		struct leave_target *lt = &sw->leave_to[seq - sw->leave_seq0];
		if (!lt->done) {
			lt->done = true;
			sw->leave_pending--;
			sw->leave_acked++;
		}
		return;
	}
	for (size_t i = 0; i < sw->n_relays; i++) {
		struct relay *r = &sw->relays[i];
		if (r->local_seq != seq)
			continue;
		struct wire_msg ack;
		memset(&ack, 0, sizeof ack);
		ack.type = WIRE_ACK;
		ack.u.ack.seq = r->orig_seq;
		struct wire_addr to = r->requester;
		sw->relays[i] = sw->relays[--sw->n_relays];
		encode_send(sw, &to, &ack, false);
		return;
	}
	move_check_ack(sw, seq); /* our own seq: no probe or relay has it */
}

/*
 * The probe has its verdict before probe_end when the target's own port
 * said "unreachable" and every helper we asked has nacked (could not reach
 * it either): waiting out the interval would only delay the suspicion.
 */
static bool probe_settled_unreachable(const struct swim *sw)
{
	return sw->probe_phase == PROBE_INDIRECT && sw->probe_unreachable &&
	       sw->probe_expected_nacks > 0 && sw->probe_nacks >= sw->probe_expected_nacks;
}

static void handle_nack(struct swim *sw, uint32_t seq, int64_t now)
{
	if (sw->probe_phase == PROBE_INDIRECT && seq == sw->probe_seq) {
		sw->probe_nacks++;
		sw->stats.nacks++;
		if (probe_settled_unreachable(sw))
			probe_failed(sw, now);
	}
}

struct packet_ctx {
	struct swim *sw;
	const struct wire_addr *from;
	int64_t now;
};

/* h: the hash of the subject's name if m is a rumour (see rumour_subject). */
static void handle_decoded(struct packet_ctx *pc, const struct wire_msg *m, uint64_t h)
{
	struct swim *sw = pc->sw;
	switch (m->type) {
	case WIRE_PING:
		handle_ping(sw, &m->u.ping, pc->from, pc->now);
		break;
	case WIRE_INDIRECT_PING:
		handle_indirect(sw, &m->u.indirect, pc->from, pc->now);
		break;
	case WIRE_ACK:
		handle_ack(sw, &m->u.ack, pc->now);
		break;
	case WIRE_NACK:
		handle_nack(sw, m->u.nack.seq, pc->now);
		break;
	case WIRE_SUSPECT:
		handle_suspect(sw, &m->u.suspect, h, pc->now);
		break;
	case WIRE_ALIVE:
		handle_alive(sw, &m->u.alive, h, pc->now);
		break;
	case WIRE_DEAD:
		handle_dead(sw, &m->u.dead, h, pc->now);
		break;
	case WIRE_ERR:
		logf_(sw, 2, "peer reported an error: %.*s", (int)m->u.err.error.len,
		      (const char *)m->u.err.error.p);
		break;
	default:
		sw->stats.decode_errors++;
		break;
	}
}

/* The member a rumour is about, or NULL for other messages. */
static const struct wire_bytes *rumour_subject(const struct wire_msg *m)
{
	switch (m->type) {
	case WIRE_ALIVE:
		return &m->u.alive.node;
	case WIRE_SUSPECT:
		return &m->u.suspect.node;
	case WIRE_DEAD:
		return &m->u.dead.node;
	default:
		return NULL;
	}
}

/*
 * Messages of one packet, in order.  A compound carries up to about 20
 * rumours, each about a member whose index slot and record are, in a big
 * cluster, rarely in cache (10,000 members: 640 KB of records per node):
 * looked up one after the other, every rumour waits for memory twice.  So
 * a batch is decoded first, the index slots of its subjects prefetched,
 * then the records those slots name, and only then are the messages
 * handled, exactly in order as before.  The look-ahead only warms caches:
 * whatever a handler changes (a new member, a grown index) is looked up
 * again by the handler itself.
 */
#define LOOKAHEAD 32
#define DECODE_ZONE_CHUNK 1024   /* an alive message decodes into about 300 bytes */

/* memberlist userMsg in UDP: the type byte, then a raw payload (no msgpack). */
static bool is_user_msg(const struct wire_bytes *m)
{
	return m->len > 0 && m->p[0] == WIRE_USER;
}

static void handle_msgs(void *vctx, const struct wire_bytes *msgs, size_t n)
{
	struct packet_ctx *pc = vctx;
	struct swim *sw = pc->sw;
	struct wire_msg dec[LOOKAHEAD];
	int rc[LOOKAHEAD];
	uint64_t hash[LOOKAHEAD];    /* of the subject's name, for the handler */
	bool rumour[LOOKAHEAD];
	/*
	 * One msgpack zone for the whole packet, cleared after each message
	 * (the decoded views point into the packet, not the zone): a malloc
	 * and a free per packet rather than per message.
	 */
	msgpack_zone zone;
	if (!msgpack_zone_init(&zone, DECODE_ZONE_CHUNK)) {
		sw->stats.decode_errors += n;
		return;
	}
	for (size_t base = 0; base < n; base += LOOKAHEAD) {
		size_t k = n - base < LOOKAHEAD ? n - base : LOOKAHEAD;
		const struct wire_bytes *in = msgs + base;
		size_t mask = sw->index_cap - 1;
		for (size_t i = 0; i < k; i++) {
			rumour[i] = false;
			hash[i] = 0;
			if (is_user_msg(&in[i]))
				continue;
			rc[i] = wire_decode_in(&zone, in[i].p, in[i].len, &dec[i]);
			const struct wire_bytes *who = rc[i] == WIRE_OK ? rumour_subject(&dec[i]) : NULL;
			if (who) {
				rumour[i] = true;
				hash[i] = subject_hash(*who);
				__builtin_prefetch(&sw->index[hash[i] & mask]);
			}
		}
		/*
		 * The record to warm is the one find_id will compare: the
		 * first slot of the probe chain with the subject's tag (the
		 * home slot holds another member about a third of the time).
		 * The chain is short and its slots share a cache line or two.
		 */
		for (size_t i = 0; i < k; i++) {
			if (!rumour[i])
				continue;
			uint32_t tag = (uint32_t)(hash[i] >> 56);
			for (size_t j = hash[i] & mask, hops = 0; hops < 8; j = (j + 1) & mask, hops++) {
				uint32_t e = sw->index[j];
				if (e == NO_ID)
					break;
				if (e >> ID_BITS == tag) {
					__builtin_prefetch(member_of(sw, slot_id(e)));
					break;
				}
			}
		}
		for (size_t i = 0; i < k; i++) {
			sw->stats.msgs_in++;
			if (is_user_msg(&in[i])) {
				if (sw->hooks.on_user_msg)
					sw->hooks.on_user_msg(sw->hooks.ctx, in[i].p + 1, in[i].len - 1);
			} else if (rc[i] != WIRE_OK) {
				sw->stats.decode_errors++;
			} else {
				handle_decoded(pc, &dec[i], hash[i]);
			}
		}
	}
	msgpack_zone_destroy(&zone);
}

void swim_handle_packet(struct swim *sw, const struct wire_addr *from,
			const uint8_t *pkt, size_t len, int64_t now)
{
	struct packet_ctx pc = { sw, from, now };
	sw->cur_from = from;
	sw->stats.packets_in++;
	sw->stats.bytes_in += len;
	int rc = wire_unwrap_packet_all(pkt, len, handle_msgs, &pc);
	sw->cur_from = NULL;
	if (rc != WIRE_OK) {
		/* a whole datagram dropped: packets_dropped{reason="malformed"},
		 * not a message decode error */
		/* Any host can send these at line rate: log the 1st, 2nd, 4th,
		 * 8th, ... with the count (a limiter per instance would cost the
		 * simulator's 10,000 instances more than the lines do). */
		uint64_t n = ++sw->stats.packets_malformed;
		if ((n & (n - 1)) == 0)
			logf_(sw, 0, "dropped a malformed packet: %s (%llu so far)", wire_strerror(rc),
			      (unsigned long long)n);
	}
}

/* ------------------------------------------------------------------ */
/* push-pull                                                           */

static void encode_local_state(struct swim *sw, bool join, struct wbuf *out)
{
	struct wire_node_state_entry *nodes = calloc(sw->n_members ? sw->n_members : 1, sizeof *nodes);
	if (!nodes) {
		out->oom = true;
		return;
	}
	for (size_t i = 0; i < sw->n_members; i++) {
		const struct member *p = member_at(sw, i);
		nodes[i].name = name_bytes(p);
		nodes[i].addr = member_addr(p);
		nodes[i].meta.p = member_meta(p);
		nodes[i].meta.len = p->meta_len;
		nodes[i].incarnation = p->incarnation;
		nodes[i].state = (uint8_t)p->state;
		memcpy(nodes[i].vsn, p->vsn, 6);
		nodes[i].vsn_len = 6;
	}
	struct wbuf user;
	wbuf_init(&user);
	if (sw->hooks.local_state)
		sw->hooks.local_state(sw->hooks.ctx, join, &user);
	wire_encode_push_pull(out, join, nodes, (uint32_t)sw->n_members, user.p,
			      (uint32_t)user.len);
	wbuf_free(&user);
	free(nodes);
}

/* Widen [max of mins, min of maxes] by one member's versions (vsn as Vsn). */
struct vsn_range {
	uint8_t maxpmin, minpmax, maxdmin, mindmax;
};

static void vsn_range_add(struct vsn_range *r, const uint8_t *vsn)
{
	if (vsn[0] > r->maxpmin)
		r->maxpmin = vsn[0];
	if (vsn[1] < r->minpmax)
		r->minpmax = vsn[1];
	if (vsn[3] > r->maxdmin)
		r->maxdmin = vsn[3];
	if (vsn[4] < r->mindmax)
		r->mindmax = vsn[4];
}

static bool vsn_range_check(struct swim *sw, const struct vsn_range *r, const char *name,
			    size_t name_len, const uint8_t *vsn)
{
	if (vsn[2] < r->maxpmin || vsn[2] > r->minpmax) {
		logf_(sw, 3, "memberlist: Failed push/pull merge: Node '%.*s' protocol version (%u) is incompatible: [%u, %u]",
		      (int)name_len, name, vsn[2], r->maxpmin, r->minpmax);
		return false;
	}
	if (vsn[5] < r->maxdmin || vsn[5] > r->mindmax) {
		logf_(sw, 3, "memberlist: Failed push/pull merge: Node '%.*s' delegate protocol version (%u) is incompatible: [%u, %u]",
		      (int)name_len, name, vsn[5], r->maxdmin, r->mindmax);
		return false;
	}
	return true;
}

/*
 * memberlist verifyProtocol: the versions every alive member (theirs and
 * ours) understands must overlap, and every member's current versions must
 * lie in that overlap; otherwise the whole push-pull is refused.  This is
 * what keeps out a memberlist node without serf's delegate (versions
 * 0/0/0).  Our own members without version information (all zero) are
 * left out: memberlist never has such entries, and counting them would
 * wedge every later push-pull.
 */
static bool verify_protocol(struct swim *sw, const struct wire_push_pull *pp)
{
	static const uint8_t none[6];
	struct vsn_range r = { 0, UINT8_MAX, 0, UINT8_MAX };
	for (uint32_t i = 0; i < pp->n_nodes; i++)
		if (pp->nodes[i].state == WIRE_STATE_ALIVE && pp->nodes[i].vsn_len >= 6)
			vsn_range_add(&r, pp->nodes[i].vsn);
	for (size_t i = 0; i < sw->n_members; i++) {
		const struct member *m = member_of(sw, sw->members[i]);
		if (m->state == SWIM_ALIVE && memcmp(m->vsn, none, 6) != 0)
			vsn_range_add(&r, m->vsn);
	}
	for (uint32_t i = 0; i < pp->n_nodes; i++) {
		const struct wire_node_state_entry *n = &pp->nodes[i];
		uint8_t vsn[6] = { 0 };
		if (n->vsn_len >= 6)
			memcpy(vsn, n->vsn, 6);
		if (!vsn_range_check(sw, &r, (const char *)n->name.p, n->name.len, vsn))
			return false;
	}
	for (size_t i = 0; i < sw->n_members; i++) {
		const struct member *m = member_of(sw, sw->members[i]);
		const char *name = member_name(m);
		if (memcmp(m->vsn, none, 6) != 0 &&
		    !vsn_range_check(sw, &r, name, strlen(name), m->vsn))
			return false;
	}
	return true;
}

/* Merge a push-pull's state; false (nothing merged) if verify_protocol
 * refuses it. */
static bool merge_remote_state(struct swim *sw, const struct wire_push_pull *pp, int64_t now)
{
	if (!verify_protocol(sw, pp))
		return false;
	for (uint32_t i = 0; i < pp->n_nodes; i++) {
		const struct wire_node_state_entry *n = &pp->nodes[i];
		switch (n->state) {
		case WIRE_STATE_ALIVE: {
			struct wire_alive a = { n->incarnation, n->name, n->addr, n->meta, {0}, n->vsn_len };
			memcpy(a.vsn, n->vsn, sizeof a.vsn);
			handle_alive(sw, &a, subject_hash(a.node), now);
			break;
		}
		case WIRE_STATE_LEFT: {
			struct wire_accuse d = { n->incarnation, n->name, n->name };
			handle_dead(sw, &d, subject_hash(d.node), now);
			break;
		}
		case WIRE_STATE_DEAD:
		case WIRE_STATE_SUSPECT: {
			/* as memberlist: a remote "dead" only makes us suspect, so
			 * the member gets its chance to refute */
			struct wire_accuse s = { n->incarnation, n->name,
						 name_bytes(sw->self) };
			handle_suspect(sw, &s, subject_hash(s.node), now);
			break;
		}
		default:
			break;
		}
	}
	if (pp->user_state.len && sw->hooks.merge_remote_state)
		sw->hooks.merge_remote_state(sw->hooks.ctx, pp->user_state.p, pp->user_state.len,
					     pp->join);
	return true;
}

static void start_push_pull(struct swim *sw, const struct wire_addr *to, bool join)
{
	if (!sw->hooks.send_stream || sw->n_streams == MAX_PENDING_STREAMS)
		return;
	struct wbuf out;
	wbuf_init(&out);
	encode_local_state(sw, join, &out);
	if (!out.oom) {
		struct pending_stream *ps = &sw->streams[sw->n_streams++];
		memset(ps, 0, sizeof *ps);
		ps->cookie = ++sw->next_cookie;
		ps->join = join;
		ps->to = *to;
		sw->stats.push_pulls++;
		sw->hooks.send_stream(sw->hooks.ctx, to, out.p, out.len, ps->cookie);
	}
	wbuf_free(&out);
}

int swim_handle_stream(struct swim *sw, const struct wire_addr *from,
		       const uint8_t *msg, size_t len, struct wbuf *reply, int64_t now)
{
	if (len == 0)
		return WIRE_ETRUNC;
	sw->stats.bytes_in += len;
	switch (msg[0]) {
	case WIRE_PUSH_PULL: {
		struct wire_push_pull pp;
		int rc = wire_decode_push_pull(msg, len, &pp);
		if (rc != WIRE_OK) {
			sw->stats.decode_errors++;
			return rc;
		}
		/* answer with our state as it was before merging theirs, like memberlist */
		encode_local_state(sw, pp.join, reply);
		pp_vouching(sw, from, true, false);
		merge_remote_state(sw, &pp, now);
		pp_vouching(sw, NULL, false, false);
		wire_push_pull_free(&pp);
		return WIRE_OK;
	}
	case WIRE_USER: {
		struct wire_bytes payload;
		int rc = wire_decode_stream_user(msg, len, &payload);
		if (rc != WIRE_OK) {
			sw->stats.decode_errors++;
			return rc;
		}
		if (sw->hooks.on_user_msg)
			sw->hooks.on_user_msg(sw->hooks.ctx, payload.p, payload.len);
		return WIRE_OK;
	}
	case WIRE_PING: {
		struct wire_msg m;
		int rc = wire_decode(msg, len, &m);
		if (rc != WIRE_OK) {
			sw->stats.decode_errors++;
			return rc;
		}
		/* memberlist: a ping for another node (who used to live at
		 * this address) gets no ack */
		if (m.u.ping.node.len && !bytes_eq_str(m.u.ping.node, member_name(sw->self)))
			return WIRE_OK;
		struct wire_msg ack;
		memset(&ack, 0, sizeof ack);
		ack.type = WIRE_ACK;
		ack.u.ack.seq = m.u.ping.seq;
		return wire_encode(reply, &ack);
	}
	case WIRE_COMPRESS: {
		struct wbuf plain;
		wbuf_init(&plain);
		int rc = wire_decompress(msg, len, &plain);
		if (rc == WIRE_OK && plain.len && plain.p[0] != WIRE_COMPRESS)
			rc = swim_handle_stream(sw, from, plain.p, plain.len, reply, now);
		else if (rc == WIRE_OK)
			rc = WIRE_ENEST;
		if (rc != WIRE_OK)
			sw->stats.decode_errors++;
		wbuf_free(&plain);
		return rc;
	}
	default:
		sw->stats.decode_errors++;
		return WIRE_ETYPE;
	}
}

void swim_handle_stream_reply(struct swim *sw, uint64_t cookie,
			      const uint8_t *msg, size_t len, int64_t now)
{
	size_t i;
	for (i = 0; i < sw->n_streams; i++)
		if (sw->streams[i].cookie == cookie)
			break;
	if (i == sw->n_streams)
		return;
	struct pending_stream ps = sw->streams[i];
	sw->streams[i] = sw->streams[--sw->n_streams];
	if (ps.ping) {
		tcp_ping_reply(sw, &ps, msg, len, now);
		return;
	}
	bool ok = false;
	struct wbuf plain;
	wbuf_init(&plain);
	if (msg && len > 0 && msg[0] == WIRE_COMPRESS &&
	    wire_decompress(msg, len, &plain) == WIRE_OK) {
		msg = plain.p;
		len = plain.len;
	}
	pp_vouching(sw, &ps.to, false, ps.join);
	if (msg && len > 0 && msg[0] == WIRE_PUSH_PULL) {
		struct wire_push_pull pp;
		if (wire_decode_push_pull(msg, len, &pp) == WIRE_OK) {
			sw->stats.bytes_in += len;
			ok = merge_remote_state(sw, &pp, now);
			wire_push_pull_free(&pp);
		} else {
			sw->stats.decode_errors++;
		}
	}
	wbuf_free(&plain);
	pp_vouching(sw, NULL, false, false);
	if (ps.join && sw->hooks.join_result)
		sw->hooks.join_result(sw->hooks.ctx, &ps.to, ok);
}

void swim_join(struct swim *sw, const struct wire_addr *seeds, size_t n, int64_t now)
{
	(void)now;
	for (size_t i = 0; i < n; i++)
		start_push_pull(sw, &seeds[i], true);
}

/* memberlist's pushPullScale: back off above 32 members. */
static int64_t push_pull_interval(const struct swim *sw)
{
	int64_t iv = sw->cfg.push_pull_interval_ms;
	if (sw->n_alive > 32) {
		double mult = ceil(log2((double)sw->n_alive) - log2(32.0)) + 1.0;
		iv = (int64_t)(iv * mult);
	}
	return iv;
}

/* ------------------------------------------------------------------ */
/* gossip                                                              */

/*
 * memberlist picks gossip targets uniformly among members not long dead, so
 * suspects count as much as live members.  On a partition's minority side
 * nearly every member is a suspect across the cut: with 4 of 5 peers there,
 * a broadcast's few retransmissions missed the one reachable peer about a
 * third of the time, and suspicions there ran to their maximum for want of
 * the confirmation that peer had sent (4|2 cut: the minority took 39 s).
 * So every round that picked no member we hold alive swaps one in, when
 * there is one, and live targets get the packets first (a packet's
 * broadcasts are the least-sent ones).  Large healthy clusters never get
 * here; suspects and the recently dead still get the rest of the slots.
 */
static void ensure_live_gossip_target(struct swim *sw, struct member **picked, int *n, int k)
{
	if (k <= 0)
		return;
	for (int i = 0; i < *n; i++) {
		if (picked[i]->state == SWIM_ALIVE) {
			struct member *t = picked[0];
			picked[0] = picked[i];
			picked[i] = t;
			return;
		}
	}
	size_t total = sw->n_members, start = total ? rng_below(sw, total) : 0;
	for (size_t j = 0; j < total; j++) {
		struct member *m = member_at(sw, (start + j) % total);
		if (m == sw->self || m->state != SWIM_ALIVE)
			continue;
		if (*n == 0) {
			picked[(*n)++] = m;
		} else {
			if (*n < k)
				picked[(*n)++] = picked[0];
			picked[0] = m;
		}
		return;
	}
}

static void gossip(struct swim *sw, int64_t now)
{
	if (sw->n_bcasts == 0 || sw->n_members < 2)
		return;
	struct member *picked[16];
	int k = sw->cfg.gossip_nodes > 16 ? 16 : sw->cfg.gossip_nodes, n = 0;
	for (int tries = 0; n < k && tries < k * 8; tries++) {
		struct member *m = member_at(sw, rng_below(sw, sw->n_members));
		if (m == sw->self)
			continue;
		if (is_gone(m) && now - m->state_since > sw->cfg.gossip_to_dead_ms)
			continue;
		if (m->state == SWIM_LEFT)
			continue;
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= picked[i] == m;
		if (!dup)
			picked[n++] = m;
	}
	ensure_live_gossip_target(sw, picked, &n, k);
	for (int i = 0; i < n && sw->n_bcasts; i++) {
		struct wire_bytes msgs[COMPOUND_MAX];
		struct qlink *taken[COMPOUND_MAX];
		size_t budget = (size_t)sw->cfg.udp_buffer_size - 2 - 5;
		size_t cnt = bcast_take(sw, budget, msgs, COMPOUND_MAX, taken);
		if (cnt == 0)
			break;
		wbuf_reset(&sw->pkt);
		if (cnt == 1)
			wbuf_append(&sw->pkt, msgs[0].p, msgs[0].len);
		else
			wire_make_compound(&sw->pkt, msgs, cnt);
		wbuf_reset(&sw->scratch);
		bool crc = picked[i]->vsn[1] >= 5 || picked[i]->vsn[1] == 0;
		if (crc)
			wire_add_crc(&sw->scratch, sw->pkt.p, sw->pkt.len);
		const struct wbuf *w = crc ? &sw->scratch : &sw->pkt;
		sw->stats.msgs_out += cnt;
		if (!w->oom) {
			struct wire_addr to = member_addr(picked[i]);
			send_raw(sw, &to, w->p, w->len);
		}
		bcast_release_parked(sw, taken, cnt);
	}
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

static void run_relays(struct swim *sw, int64_t now)
{
	for (size_t i = 0; i < sw->n_relays;) {
		struct relay *r = &sw->relays[i];
		if (r->want_nack && !r->nack_sent && now >= r->nack_at) {
			struct wire_msg nack;
			memset(&nack, 0, sizeof nack);
			nack.type = WIRE_NACK;
			nack.u.nack.seq = r->orig_seq;
			r->nack_sent = true;
			encode_send(sw, &r->requester, &nack, false);
		}
		if (now >= r->expire_at) {
			sw->relays[i] = sw->relays[--sw->n_relays];
			continue;
		}
		i++;
	}
}

/* When a suspicion of ours expires (Lifeguard: moved by confirmations). */
static int64_t suspicion_due(const struct suspicion *sp)
{
	return sp->deadline;
}

static void run_suspicions(struct swim *sw, int64_t now)
{
	/* handle_dead removes the member from the list: walk backwards */
	for (size_t i = sw->n_suspects; i-- > 0;) {
		if (i >= sw->n_suspects)
			continue;
		struct member *m = sw->suspects[i].m;
		if (now < suspicion_due(&sw->suspects[i]))
			continue;
		struct wire_accuse d = { m->incarnation, name_bytes(m),
					 name_bytes(sw->self) };
		logf_(sw, 1, "marking %s dead: suspicion timed out", member_name(m));
		handle_dead(sw, &d, subject_hash(d.node), now);
	}
}

static void member_free(struct swim *sw, uint32_t id)
{
	struct member *m = member_of(sw, id);
	rumour_drop(sw, m);
	buddy_forget(sw, m);
	climb_forget(sw, m);
	if (sw->move && sw->move->m == m)
		move_check_end(sw);
	if (sw->hinted == id)
		sw->hinted = NO_ID;
	for (int i = 0; i < RECENT_ACKED; i++)
		if (sw->acked[i].id == id)
			sw->acked[i].t = 0; /* the id will name another member */
	id_free(sw, id);
}

static void reap(struct swim *sw, int64_t now)
{
	bool any = false;
	for (size_t i = 0; i < sw->n_members;) {
		uint32_t id = sw->members[i];
		struct member *m = member_of(sw, id);
		if (m != sw->self && is_gone(m) && now - m->state_since >= sw->cfg.reap_interval_ms) {
			notify(sw, SWIM_EV_REAP, m);
			index_del(sw, id);
			sw->members[i] = sw->members[--sw->n_members];
			member_free(sw, id);
			any = true;
			continue;
		}
		i++;
	}
	if (any)
		reshuffle(sw);
}

/* Serf's reconnect: occasionally try a dead member so partitions heal. */
static void reconnect(struct swim *sw)
{
	size_t dead = 0;
	for (size_t i = 0; i < sw->n_members; i++)
		dead += member_at(sw, i)->state == SWIM_DEAD;
	if (dead == 0)
		return;
	double prob = (double)dead / (double)(sw->n_alive ? sw->n_alive : 1);
	if ((double)(rng_next(sw) % 1000000) / 1e6 > prob)
		return;
	size_t pick = rng_below(sw, dead);
	for (size_t i = 0; i < sw->n_members; i++) {
		struct member *m = member_at(sw, i);
		if (m->state != SWIM_DEAD)
			continue;
		if (pick-- == 0) {
			struct wire_addr to = member_addr(m);
			start_push_pull(sw, &to, false);
			return;
		}
	}
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Send our leave to the members due (see swim_leave), LEAVE_BURST at most. */
static void leave_step(struct swim *sw, int64_t now)
{
	int sent = 0;
	for (size_t i = 0; i < sw->n_leave_to && sent < LEAVE_BURST; i++) {
		struct leave_target *lt = &sw->leave_to[i];
		if (lt->done || lt->next > now)
			continue;
		if (lt->tries >= LEAVE_TRIES) {
			lt->done = true; /* never answered: dead, or cut off from us */
			sw->leave_pending--;
			continue;
		}
		lt->tries++;
		lt->next = now + sw->cfg.probe_timeout_ms;
		send_ping_with_accuse(sw, member_of(sw, lt->id), sw->leave_seq0 + (uint32_t)i,
				      WIRE_DEAD, sw->self);
		sent++;
	}
}

static int64_t leave_next(const struct swim *sw)
{
	int64_t t = NEVER;
	for (size_t i = 0; i < sw->n_leave_to; i++)
		if (!sw->leave_to[i].done && sw->leave_to[i].next < t)
			t = sw->leave_to[i].next;
	return t;
}

int64_t swim_next_deadline(const struct swim *sw)
{
	int64_t t = min64(sw->next_probe, sw->next_gossip);
	t = min64(t, sw->next_push_pull);
	t = min64(t, sw->next_reconnect);
	t = min64(t, sw->next_reap);
	t = min64(t, move_check_due(sw));
	if (sw->probe_phase == PROBE_DIRECT)
		t = min64(t, sw->probe_ack_deadline);
	if (sw->probe_phase != PROBE_IDLE)
		t = min64(t, sw->probe_end);
	for (size_t i = 0; i < sw->n_relays; i++) {
		const struct relay *r = &sw->relays[i];
		t = min64(t, r->expire_at);
		if (r->want_nack && !r->nack_sent)
			t = min64(t, r->nack_at);
	}
	for (size_t i = 0; i < sw->n_suspects; i++)
		t = min64(t, suspicion_due(&sw->suspects[i]));
	if (sw->leave_pending)
		t = min64(t, leave_next(sw));
	return t;
}

/* Nack at once the indirect pings we relayed to `to`: it cannot answer. */
static void nack_relays_to(struct swim *sw, const struct wire_addr *to, int64_t now)
{
	for (size_t i = 0; i < sw->n_relays; i++) {
		struct relay *r = &sw->relays[i];
		if (r->want_nack && !r->nack_sent && wire_addr_equal(&r->target, to))
			r->nack_at = now; /* run_relays sends it */
	}
	run_relays(sw, now);
}

void swim_hint_unreachable(struct swim *sw, const struct wire_addr *to, int64_t now)
{
	/*
	 * Our own probe's ping came back unreachable: ask the helpers now
	 * rather than after the probe timeout, and let their nacks settle it
	 * (probe_settled_unreachable).  Relayed pings: nack now.
	 */
	if (sw->probe_phase != PROBE_IDLE) {
		struct member *t = find(sw, sw->probe_target);
		if (t && member_addr_is(t, to)) {
			sw->probe_unreachable = true;
			if (sw->probe_phase == PROBE_DIRECT)
				probe_go_indirect(sw, now);
			if (probe_settled_unreachable(sw))
				probe_failed(sw, now);
			return;
		}
	}
	if (sw->n_relays)
		nack_relays_to(sw, to, now);
	if (sw->leaving || sw->hinted != NO_ID ||
	    now - sw->last_hint_probe < scaled(sw, sw->cfg.probe_interval_ms))
		return;
	uint32_t id = find_live_at(sw, to);
	struct member *m = id == NO_ID ? NULL : member_of(sw, id);
	if (!m || (sw->probe_phase != PROBE_IDLE && bytes_eq_str(name_bytes(m), sw->probe_target)))
		return; /* nobody we probe, or being probed already */
	sw->stats.unreachable_hints++;
	sw->last_hint_probe = now;
	sw->hinted = id;
	logf_(sw, 1, "%s is unreachable (ICMP): probing it now", member_name(m));
	/* The probe under way keeps its time; an idle one starts at once. */
	if (sw->probe_phase == PROBE_IDLE && sw->next_probe > now)
		sw->next_probe = now;
}

void swim_tick(struct swim *sw, int64_t now)
{
	if (sw->leave_pending)
		leave_step(sw, now);
	if (sw->probe_phase == PROBE_DIRECT && now >= sw->probe_ack_deadline)
		probe_go_indirect(sw, now);
	if (sw->probe_phase == PROBE_INDIRECT && now >= sw->probe_end)
		probe_failed(sw, now);
	run_relays(sw, now);
	run_suspicions(sw, now);
	move_check_tick(sw, now);
	if (now >= sw->next_probe) {
		if (sw->leaving) {
			sw->next_probe = NEVER; /* a leaving member accuses nobody */
		} else {
			if (sw->probe_phase != PROBE_IDLE)
				probe_failed(sw, now);
			probe_start(sw, now);
		}
	}
	if (now >= sw->next_gossip) {
		gossip(sw, now);
		sw->next_gossip = now + sw->cfg.gossip_interval_ms;
	}
	if (now >= sw->next_push_pull) {
		struct member *peer = sw->leaving ? NULL : random_live(sw, NULL);
		if (peer) {
			struct wire_addr to = member_addr(peer);
			start_push_pull(sw, &to, false);
		}
		sw->next_push_pull = sw->cfg.push_pull_interval_ms > 0
			? now + push_pull_interval(sw) : NEVER;
	}
	if (now >= sw->next_reconnect) {
		if (!sw->leaving)
			reconnect(sw);
		sw->next_reconnect = now + RECONNECT_INTERVAL_MS;
	}
	if (now >= sw->next_reap) {
		reap(sw, now);
		int64_t iv = sw->cfg.reap_interval_ms / 8;
		sw->next_reap = now + (iv < 1000 ? 1000 : iv);
	}
}

void swim_notice_stall(struct swim *sw, int64_t gap_ms, int64_t now)
{
	sw->stats.stalls++;
	logf_(sw, 2, "process stalled for %lld ms; not trusting timers that expired meanwhile",
	      (long long)gap_ms);
	/* (1) timers that expired while we were frozen say nothing about the
	 * peers: abandon the probe, give every suspicion its full time again */
	sw->probe_phase = PROBE_IDLE;
	sw->n_relays = 0;
	for (size_t i = 0; i < sw->n_suspects; i++) {
		sw->suspects[i].start = now;
		suspicion_rearm(&sw->suspects[i]);
	}
	/*
	 * (2) we may be the unhealthy one: raise the health score by a step
	 * (the refutation below adds another), not to the maximum: at the
	 * maximum a resumed member took ~36 s of acked probes to come back
	 * down, and a cluster with a few such members noticed the next hung
	 * one late (SIGSTOP detection p99 1.33x serf's).  Repeated stalls
	 * still climb step by step.  For two probe intervals a failed probe
	 * of ours starts no suspicion: what we sent or heard just before the
	 * stall may be what failed.
	 */
	awareness_apply(sw, STALL_HEALTH_STEP);
	sw->stall_grace_until = now + 2LL * sw->cfg.probe_interval_ms;
	sw->next_probe = now + scaled(sw, sw->cfg.probe_interval_ms);
	sw->next_gossip = now;
	/* (3) outbid any death rumour and fetch the current view at once */
	if (!sw->leaving) {
		refute(sw, sw->self->incarnation, now);
		struct member *peer = random_live(sw, NULL);
		if (!peer) {
			/* everyone may have been declared dead while we slept */
			for (size_t i = 0; i < sw->n_members && !peer; i++)
				if (member_at(sw, i) != sw->self && member_at(sw, i)->state == SWIM_DEAD)
					peer = member_at(sw, i);
		}
		if (peer) {
			struct wire_addr to = member_addr(peer);
			start_push_pull(sw, &to, false);
		}
	}
}

/* ------------------------------------------------------------------ */
/* lifecycle and queries                                               */

void swim_config_default(struct swim_config *c)
{
	memset(c, 0, sizeof *c);
	static const uint8_t vsn[6] = { 1, 5, 2, 2, 5, 4 };
	memcpy(c->vsn, vsn, 6);
	c->probe_interval_ms = 1000;
	c->probe_timeout_ms = 500;
	c->gossip_interval_ms = 200;
	c->gossip_nodes = 3;
	c->gossip_to_dead_ms = 30000;
	c->indirect_checks = 3;
	c->retransmit_mult = 4;
	c->suspicion_mult = 4;
	c->suspicion_max_timeout_mult = 6;
	c->push_pull_interval_ms = 30000;
	c->awareness_max_multiplier = 8;
	c->reap_interval_ms = 24LL * 3600 * 1000;
	c->udp_buffer_size = 1400;
	c->lifeguard = true;
	c->seed = 0x9E3779B97F4A7C15ULL;
}

struct swim *swim_new(const struct swim_config *cfg, const struct swim_hooks *hooks, int64_t now)
{
	struct swim *sw = calloc(1, sizeof *sw);
	if (!sw)
		return NULL;
	sw->cfg = *cfg;
	if (sw->cfg.awareness_max_multiplier < 1)
		sw->cfg.awareness_max_multiplier = 1;
	if (sw->cfg.udp_buffer_size < 512)
		sw->cfg.udp_buffer_size = 512;
	if (hooks)
		sw->hooks = *hooks;
	sw->rng = cfg->seed ? cfg->seed : 1;
	for (const char *p = cfg->name; *p; p++)
		sw->rng = (sw->rng ^ (uint8_t)*p) * 0x100000001B3ULL;
	if (!sw->rng)
		sw->rng = 1;
	sw->index_cap = 64;
	sw->index = malloc(sw->index_cap * sizeof *sw->index);
	if (sw->index)
		memset(sw->index, 0xff, sw->index_cap * sizeof *sw->index);
	sw->free_id = NO_ID;
	sw->hinted = NO_ID;
	sw->last_hint_probe = INT64_MIN / 2;
	sw->last_jump_ask = INT64_MIN / 2;
	sw->n_buckets = 64; /* more than any retransmit limit we will compute */
	sw->buckets = calloc((size_t)sw->n_buckets, sizeof *sw->buckets);
	wbuf_init(&sw->scratch);
	wbuf_init(&sw->pkt);
	wbuf_init(&sw->body);
	wbuf_init(&sw->alive_out);
	if (!sw->index || !sw->buckets || !cfg->name[0])
		goto fail;
	sw->self = member_add(sw, cfg->name);
	if (!sw->self)
		goto fail;
	struct member *me = sw->self;
	if (!member_set_ext(me, &cfg->addr, cfg->meta,
			    cfg->meta_len > WIRE_META_MAX ? WIRE_META_MAX : cfg->meta_len))
		goto fail;
	memcpy(me->vsn, cfg->vsn, 6);
	me->incarnation = 1;
	set_state(sw, me, SWIM_ALIVE, now);
	me->state_since = now;
	/* spread the first probe over one interval so restarted clusters don't pulse */
	sw->next_probe = now + (int64_t)rng_below(sw, (size_t)cfg->probe_interval_ms + 1);
	sw->next_gossip = now + cfg->gossip_interval_ms;
	/* a random first push-pull, as memberlist: members started together
	 * must not all exchange state in the same millisecond forever after */
	sw->next_push_pull = cfg->push_pull_interval_ms > 0
		? now + (int64_t)rng_below(sw, (size_t)cfg->push_pull_interval_ms) + 1 : NEVER;
	sw->next_reconnect = now + RECONNECT_INTERVAL_MS;
	sw->next_reap = now + 1000;
	notify(sw, SWIM_EV_JOIN, me);
	return sw;
fail:
	swim_free(sw);
	return NULL;
}

void swim_free(struct swim *sw)
{
	if (!sw)
		return;
	free(sw->leave_to);
	for (int t = 0; sw->buckets && t < sw->n_buckets; t++) {
		struct qbucket *b = &sw->buckets[t];
		for (uint32_t j = 0; j < b->n; j++)
			if (b->v[j] && !b->v[j]->in_member)
				free(q_bcast(b->v[j]));
		free(b->v);
	}
	for (size_t i = 0; i < sw->n_members; i++)
		free(member_at(sw, i)->ext);
	for (size_t i = 0; i < sw->n_chunks; i++)
		free(sw->chunks[i]);
	free(sw->chunks);
	for (size_t i = 0; i < sw->views_cap; i++)
		free(sw->views[i]);
	free(sw->views);
	free(sw->members);
	free(sw->probe_order);
	free(sw->suspects);
	free(sw->buddies);
	free(sw->climbs);
	free(sw->move);
	free(sw->relays);
	free(sw->index);
	free(sw->addr_index);
	free(sw->buckets);
	wbuf_free(&sw->scratch);
	wbuf_free(&sw->pkt);
	wbuf_free(&sw->body);
	wbuf_free(&sw->alive_out);
	free(sw);
}

/*
 * A leave is gossiped like any rumour, but gossip spends its few
 * retransmits on random targets, the recently dead among them (memberlist
 * gossips to the dead for 30 s): after four kills a leave could go only to
 * dead ports and still count as sent.  So it is also sent to every member
 * we hold alive or suspect, in a datagram with a ping, again a probe
 * timeout later until that member acks (the ack proves the leave arrived:
 * a packet is handled whole) or LEAVE_TRIES sends went unanswered.  The
 * leave is done when every such member acked or was given up on;
 * swim_leave_reached() then says how many have it.
 */
void swim_leave(struct swim *sw, int64_t now)
{
	if (sw->leaving)
		return;
	sw->leaving = true;
	struct member *me = sw->self;
	broadcast_accuse(sw, WIRE_DEAD, me, me->incarnation, member_name(me));
	sw->leave_bcast_id = sw->next_bcast_id;
	size_t peers = sw->n_alive > 0 ? sw->n_alive - 1 : 0; /* not counting us */
	set_state(sw, me, SWIM_LEFT, now);
	sw->leave_to = calloc(peers ? peers : 1, sizeof *sw->leave_to);
	if (sw->leave_to) {
		for (size_t i = 0; i < sw->n_members && sw->n_leave_to < peers; i++)
			if (is_live_peer(sw, member_at(sw, i)))
				sw->leave_to[sw->n_leave_to++] =
					(struct leave_target){ .id = sw->members[i], .next = now };
		sw->leave_pending = sw->n_leave_to;
		sw->leave_seq0 = sw->seq + 1;
		sw->seq += (uint32_t)sw->n_leave_to;
	}
	if (sw->n_alive == 0)
		sw->left_done = true; /* nobody to tell */
	sw->probe_phase = PROBE_IDLE;
	sw->next_gossip = now; /* spread it right away */
	leave_step(sw, now);
}

bool swim_leave_done(const struct swim *sw)
{
	if (!sw->leaving)
		return false;
	if (sw->leave_to) /* told directly: every live member acked or given up on */
		return sw->leave_pending == 0;
	return sw->left_done || sw->n_alive == 0; /* out of memory: gossip only */
}

int swim_leave_reached(const struct swim *sw)
{
	if (!swim_leave_done(sw) || !sw->leave_to)
		return -1;
	return (int)sw->leave_acked;
}

size_t swim_leave_told(const struct swim *sw)
{
	return sw->n_leave_to;
}

int swim_set_meta(struct swim *sw, const uint8_t *meta, size_t len, int64_t now)
{
	if (len > WIRE_META_MAX)
		return WIRE_ETOOBIG;
	struct member *me = sw->self;
	if (!member_set_meta(me, meta, len))
		return WIRE_ENOMEM;
	me->incarnation = inc_after(me->incarnation);
	me->state_since = now;
	broadcast_alive(sw, me);
	notify(sw, SWIM_EV_UPDATE, me);
	return WIRE_OK;
}

void swim_broadcast_user(struct swim *sw, const uint8_t *msg, size_t len)
{
	if (len + 1 > (size_t)sw->cfg.udp_buffer_size)
		return;
	uint8_t *buf = malloc(len + 1);
	if (!buf)
		return;
	buf[0] = WIRE_USER;
	if (len)
		memcpy(buf + 1, msg, len);
	bcast_queue(sw, NULL, buf, len + 1);
	free(buf);
}

void swim_send_user(struct swim *sw, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	uint8_t *buf = malloc(len + 1);
	if (!buf)
		return;
	buf[0] = WIRE_USER;
	if (len)
		memcpy(buf + 1, msg, len);
	send_msg(sw, to, buf, len + 1, false);
	free(buf);
}

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
	view_fill(member_of(sw, id), sw->views[id]);
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
size_t swim_alive_count(const struct swim *sw) { return sw->n_alive; }
int swim_health(const struct swim *sw) { return sw->awareness; }
const struct swim_stats *swim_stats(const struct swim *sw) { return &sw->stats; }
