/*
 * serf.c — the Serf gossip layer (see serf.h).
 *
 * Wire facts come from serf 0.9.4 (messages.go, serf.go, delegate.go,
 * query.go, internal_query.go); the code is our own.  Serf encodes with
 * hashicorp/go-msgpack's MsgpackHandle: structs are maps keyed by the Go
 * field names (Debian's go-msgpack writes them sorted by name, and so do
 * we, byte for byte), strings and []byte both use the old "raw" family
 * (fixraw/raw16/raw32), nil slices and maps are nil, unsigned integers use
 * the smallest form.  We encode exactly that and decode leniently (str or
 * bin, nil as the zero value, unknown keys ignored) like go-msgpack does.
 */
#include "serf.h"
#include "goregex.h"
#include "logline.h"
#include "mpack.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* serf's UserEventSizeLimit: the hard cap on name + payload. */
#define SL_USER_EVENT_HARD_LIMIT (9 * 1024)
/*
 * Bounds on tables a peer can grow.  Serf has none; we cap them so a
 * hostile or buggy peer cannot exhaust memory.  Refusing (rather than
 * evicting) keeps dedup sound: an event we refuse is not delivered and not
 * rebroadcast, so it cannot loop.
 */
#define SL_INTENTS_MAX 8192
#define SL_SLOT_EVENTS_MAX 128   /* user events per Lamport time */
#define SL_SLOT_QUERIES_MAX 128  /* query ids per Lamport time */
#define SL_INQUERIES_MAX 1024    /* incoming queries awaiting a response */
#define SL_MYQUERIES_MAX 256     /* our own open queries */
#define SL_QUERY_TIMEOUT_MAX_MS (24LL * 3600 * 1000)

enum sl_state { SL_ALIVE, SL_LEAVING };

struct sl_member {
	struct vigil_member m;  /* what listings and events show */
	struct wire_addr addr;
	uint64_t status_ltime;  /* Lamport time of the last intent applied */
	int64_t leave_time;     /* when it became failed/left (ms) */
	int64_t prune_at;       /* force-leave prune of a leaving member; 0 = none */
};

struct sl_intent {
	char name[WIRE_NAME_MAX + 1];
	uint8_t type;           /* SERF_MSG_JOIN or SERF_MSG_LEAVE */
	uint64_t ltime;
	int64_t wall;
};

struct sl_uevent {
	char *name;
	uint8_t *payload;
	size_t len;
};

struct sl_event_slot {
	bool used;
	uint64_t ltime;
	size_t n;
	struct sl_uevent *ev;
};

struct sl_query_slot {
	bool used;
	uint64_t ltime;
	size_t n;
	uint32_t *ids;
};

/* One of our own queries, collecting acks and responses. */
struct sl_myquery {
	uint64_t ltime;
	uint32_t id;
	char *name;
	int64_t deadline;
	bool ack;
	char **acks;
	size_t n_acks;
	char **resps;
	size_t n_resps;
	serf_query_result_fn cb;
	void *cb_ctx;
};

/* A query someone else started that we may still respond to. */
struct sl_inquery {
	uint32_t id;
	uint64_t ltime;
	struct wire_addr addr;
	char source[WIRE_NAME_MAX + 1];
	uint8_t relay_factor;
	int64_t deadline;
};

struct serf_layer {
	struct serf_layer_config cfg;   /* cfg.tags points at our copy */
	struct vigil_tag *tags;
	size_t n_tags;
	enum sl_state state;

	uint64_t clock, event_clock, query_clock;
	uint64_t event_min_time, query_min_time;
	bool join_ignore_old;        /* we are joining without -replay */

	struct sl_member **members;     /* sorted by name */
	size_t n_members, cap_members;

	struct sl_intent *intents;      /* sorted by name */
	size_t n_intents, cap_intents;

	struct sl_event_slot *events;   /* cfg.event_buffer slots */
	struct sl_query_slot *queries;  /* cfg.query_buffer slots */

	struct sl_myquery *myq;
	size_t n_myq, cap_myq;
	struct sl_inquery *inq;
	size_t n_inq, cap_inq;

	struct serf_extension ext;
	bool have_ext;

	bool armed;
	int64_t next_reap, next_reconnect;
	uint64_t rng;
	struct serf_stats stats;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

__attribute__((format(printf, 3, 4)))
static void sl_log(const struct serf_layer *sl, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logline_vemit(sl->cfg.out.log, sl->cfg.out.ctx, NULL, 0, 384, level, fmt, ap);
	va_end(ap);
}

static uint64_t sl_rand(struct serf_layer *sl)
{
	/* splitmix64: deterministic under the simulator's seed. */
	uint64_t z = (sl->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* LamportClock.Witness: make sure we are at least one past v. */
static void clock_witness(uint64_t *c, uint64_t v)
{
	if (v < *c)
		return;
	*c = v == UINT64_MAX ? v : v + 1;
}

/* LamportClock.Increment: the current time, then one more; never wraps. */
static uint64_t clock_tick(uint64_t *c)
{
	uint64_t v = *c;
	if (v != UINT64_MAX)
		*c = v + 1;
	return v;
}

/*
 * How far ahead of our clock a Lamport time may be (docs/SECURITY.md,
 * "Membership identity").  Honest times run ahead of ours only by what
 * the cluster did that we have not witnessed yet: 2^32 intents, events or
 * queries is decades of a busy cluster, or a partition of weeks at 1000
 * events a second.  Further ahead is a forgery that would pin the clock
 * near 2^64-1 (a leave intent at 2^64-1 keeps its member leaving for good,
 * an event at 2^64-1 makes every later one look old); refused, a forger
 * needs 2^32 accepted messages to climb there.
 */
#define LTIME_AHEAD_MAX (UINT64_C(1) << 32)

static bool ltime_plausible(struct serf_layer *sl, uint64_t clock, uint64_t ltime)
{
	if (ltime <= clock || ltime - clock <= LTIME_AHEAD_MAX)
		return true;
	sl->stats.ltime_refused++;
	sl_log(sl, 0, "serf: refused Lamport time %" PRIu64 " (ours: %" PRIu64 ")", ltime, clock);
	return false;
}

static bool bytes_eq_str(const uint8_t *p, size_t len, const char *s)
{
	return strlen(s) == len && (len == 0 || memcmp(p, s, len) == 0);
}

static void addr_to_text(const struct wire_addr *a, char *out, size_t cap)
{
	out[0] = '\0';
	if (a->ip_len == 4) {
		inet_ntop(AF_INET, a->ip, out, (socklen_t)cap);
	} else if (a->ip_len == 16) {
		/* Go's net.IP.String prints v4-mapped addresses as IPv4. */
		static const uint8_t v4m[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};
		if (memcmp(a->ip, v4m, 12) == 0)
			inet_ntop(AF_INET, a->ip + 12, out, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, a->ip, out, (socklen_t)cap);
	}
}

/* Raw IP bytes as serf carries them (4 or 16) into a wire_addr. */
static bool make_addr(const uint8_t *ip, size_t len, uint16_t port, struct wire_addr *a)
{
	static const uint8_t v4m[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};
	memset(a, 0, sizeof *a);
	if (len == 16 && memcmp(ip, v4m, 12) == 0) {
		/* Normalise v4-mapped to 4 bytes so the transport picks IPv4. */
		memcpy(a->ip, ip + 12, 4);
		a->ip_len = 4;
	} else if (len == 4 || len == 16) {
		memcpy(a->ip, ip, len);
		a->ip_len = (uint8_t)len;
	} else {
		return false;
	}
	a->port = port;
	return true;
}

/* ------------------------------------------------------------------ */
/* msgpack: bounds pre-check, decoding views, encoding                 */

/*
 * Unpack one msgpack value from p; *used gets its length.  On failure u is
 * left destroyed; on success the caller destroys it.
 */
static int mp_unpack(const uint8_t *p, size_t len, msgpack_unpacked *u, size_t *used)
{
	msgpack_unpacked_init(u);
	int rc = wire_msgpack_unpack(p, len, SIZE_MAX, u, used);
	if (rc == WIRE_OK)
		return SERF_OK;
	msgpack_unpacked_destroy(u);
	return rc == WIRE_ENOMEM ? SERF_ENOMEM : SERF_EFORMAT;
}

/* A go-msgpack []byte or string field as a wire_bytes view (nil: empty). */
static bool mp_bytes(const msgpack_object *o, struct wire_bytes *b)
{
	return mpack_go_bytes(o, &b->p, &b->len);
}

/* ------------------------------------------------------------------ */
/* tags                                                                */

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vigil_tag *)a)->key, ((const struct vigil_tag *)b)->key);
}

void serf_tags_free(struct vigil_tag *tags, size_t n)
{
	if (!tags)
		return;
	for (size_t i = 0; i < n; i++) {
		free(tags[i].key);
		free(tags[i].value);
	}
	free(tags);
}

/* Deep copy, sorted by key, last duplicate wins (as a Go map would). */
static int tags_copy(const struct vigil_tag *in, size_t n, struct vigil_tag **out, size_t *nout)
{
	struct vigil_tag *t;
	size_t k = 0;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return SERF_OK;
	if (n > VIGIL_MAX_TAGS)
		return SERF_ETOOBIG;
	t = calloc(n, sizeof *t);
	if (!t)
		return SERF_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t j;
		if (!in[i].key || !in[i].value) {
			serf_tags_free(t, k);
			return SERF_EINVAL;
		}
		for (j = 0; j < k && strcmp(t[j].key, in[i].key) != 0; j++)
			;
		char *v = strdup(in[i].value);
		if (!v) {
			serf_tags_free(t, k);
			return SERF_ENOMEM;
		}
		if (j < k) {
			free(t[j].value);
			t[j].value = v;
			continue;
		}
		t[k].key = strdup(in[i].key);
		t[k].value = v;
		if (!t[k].key) {
			free(v);
			serf_tags_free(t, k);
			return SERF_ENOMEM;
		}
		k++;
	}
	qsort(t, k, sizeof *t, tag_cmp);
	*out = t;
	*nout = k;
	return SERF_OK;
}

int serf_encode_tags(const struct vigil_tag *tags, size_t n, int protocol_version,
		     uint8_t *out, size_t cap)
{
	struct vigil_tag *t;
	size_t nt;
	struct mpack_enc e;
	int rc;

	if (protocol_version == 0)
		protocol_version = 4;
	rc = tags_copy(tags, n, &t, &nt);
	if (rc)
		return rc;
	if (protocol_version < 3) {
		/* serf's role-only compatibility: meta is the "role" tag. */
		const char *role = "";
		for (size_t i = 0; i < nt; i++)
			if (strcmp(t[i].key, "role") == 0)
				role = t[i].value;
		size_t l = strlen(role);
		if (l > cap) {
			serf_tags_free(t, nt);
			return SERF_ETOOBIG;
		}
		memcpy(out, role, l);
		serf_tags_free(t, nt);
		return (int)l;
	}
	mpack_enc_init(&e, SERF_TAG_MAGIC);
	mpack_enc_map(&e, nt);
	for (size_t i = 0; i < nt; i++) {
		mpack_enc_gostr(&e, t[i].key);
		mpack_enc_gostr(&e, t[i].value);
	}
	serf_tags_free(t, nt);
	if (e.err) {
		mpack_enc_free(&e);
		return SERF_ENOMEM;
	}
	if (e.sb.size > cap || e.sb.size > INT_MAX) {
		mpack_enc_free(&e);
		return SERF_ETOOBIG;
	}
	memcpy(out, e.sb.data, e.sb.size);
	rc = (int)e.sb.size;
	mpack_enc_free(&e);
	return rc;
}

int serf_decode_tags(const uint8_t *meta, size_t len, struct vigil_tag **out, size_t *n)
{
	msgpack_unpacked u;
	const msgpack_object_kv *kv;
	uint32_t nkv;
	struct vigil_tag *t;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (len == 0 || meta[0] != SERF_TAG_MAGIC) {
		/* Pre-protocol-3 members carry just a role string. */
		t = calloc(1, sizeof *t);
		if (!t)
			return SERF_ENOMEM;
		t->key = strdup("role");
		t->value = mpack_text_dup(meta, len);
		if (!t->key || !t->value) {
			int err = t->key && len && memchr(meta, 0, len) ? SERF_EFORMAT : SERF_ENOMEM;
			serf_tags_free(t, 1);
			return err;
		}
		*out = t;
		*n = 1;
		return SERF_OK;
	}
	rc = mp_unpack(meta + 1, len - 1, &u, NULL);
	if (rc)
		return rc;
	if (!mpack_go_map(&u.data, &kv, &nkv) || nkv > VIGIL_MAX_TAGS * 4) {
		msgpack_unpacked_destroy(&u);
		return SERF_EFORMAT;
	}
	t = nkv ? calloc(nkv, sizeof *t) : NULL;
	if (nkv && !t) {
		msgpack_unpacked_destroy(&u);
		return SERF_ENOMEM;
	}
	rc = SERF_OK;
	for (uint32_t i = 0; i < nkv && rc == SERF_OK; i++) {
		struct wire_bytes kb, vb;
		size_t j;
		if (!mp_bytes(&kv[i].key, &kb) || !mp_bytes(&kv[i].val, &vb)) {
			rc = SERF_EFORMAT;
			break;
		}
		char *key = mpack_text_dup(kb.p, kb.len);
		char *val = mpack_text_dup(vb.p, vb.len);
		if (!key || !val) {
			rc = (kb.len && memchr(kb.p, 0, kb.len)) ||
			     (vb.len && memchr(vb.p, 0, vb.len)) ? SERF_EFORMAT : SERF_ENOMEM;
			free(key);
			free(val);
			break;
		}
		for (j = 0; j < k && strcmp(t[j].key, key) != 0; j++)
			;
		if (j < k) {                 /* duplicate key: last wins */
			free(t[j].value);
			t[j].value = val;
			free(key);
		} else {
			t[k].key = key;
			t[k].value = val;
			k++;
		}
	}
	msgpack_unpacked_destroy(&u);
	if (rc) {
		serf_tags_free(t, k);
		return rc;
	}
	if (k > VIGIL_MAX_TAGS) {
		serf_tags_free(t, k);
		return SERF_ETOOBIG;
	}
	if (k)
		qsort(t, k, sizeof *t, tag_cmp);
	*out = t;
	*n = k;
	return SERF_OK;
}

static const char *tag_get(const struct vigil_tag *t, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].key, key) == 0)
			return t[i].value;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* member table (sorted by name for bsearch)                           */

static size_t member_pos(const struct serf_layer *sl, const char *name, bool *found)
{
	size_t lo = 0, hi = sl->n_members;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sl->members[mid]->m.name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static struct sl_member *member_find(const struct serf_layer *sl, const char *name)
{
	bool found;
	size_t i = member_pos(sl, name, &found);
	return found ? sl->members[i] : NULL;
}

static struct sl_member *member_add(struct serf_layer *sl, const char *name)
{
	bool found;
	size_t i = member_pos(sl, name, &found);
	struct sl_member *m;

	if (found)
		return sl->members[i];
	if (sl->n_members == sl->cap_members) {
		size_t nc = sl->cap_members ? sl->cap_members * 2 : 16;
		struct sl_member **nv = realloc(sl->members, nc * sizeof *nv);
		if (!nv)
			return NULL;
		sl->members = nv;
		sl->cap_members = nc;
	}
	m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	snprintf(m->m.name, sizeof m->m.name, "%s", name);
	memmove(&sl->members[i + 1], &sl->members[i],
		(sl->n_members - i) * sizeof *sl->members);
	sl->members[i] = m;
	sl->n_members++;
	return m;
}

static void member_free(struct sl_member *m)
{
	serf_tags_free(m->m.tags, m->m.n_tags);
	free(m);
}

static void emit(struct serf_layer *sl, const struct vigil_event *ev)
{
	if (sl->cfg.on_event)
		sl->cfg.on_event(sl->cfg.event_ctx, ev);
}

static void emit_member(struct serf_layer *sl, enum vigil_event_type t,
			const struct sl_member *m)
{
	struct vigil_event ev;
	memset(&ev, 0, sizeof ev);
	ev.type = t;
	ev.member = &m->m;
	emit(sl, &ev);
}

/* serf eraseNode: drop the member and announce the reap. */
static void member_erase(struct serf_layer *sl, const char *name)
{
	bool found;
	size_t i = member_pos(sl, name, &found);
	struct sl_member *m;

	if (!found)
		return;
	m = sl->members[i];
	memmove(&sl->members[i], &sl->members[i + 1],
		(sl->n_members - i - 1) * sizeof *sl->members);
	sl->n_members--;
	emit_member(sl, VIGIL_EV_MEMBER_REAP, m);
	member_free(m);
}

/* Copy swim's view of a node (address, tags, versions) into ours. */
static void member_absorb(struct serf_layer *sl, struct sl_member *sm,
			  const struct swim_member *m, bool with_tags)
{
	sm->addr = m->addr;
	addr_to_text(&m->addr, sm->m.addr, sizeof sm->m.addr);
	sm->m.port = m->addr.port;
	sm->m.incarnation = m->incarnation;
	memcpy(sm->m.vsn, m->vsn, sizeof sm->m.vsn);
	if (with_tags) {
		struct vigil_tag *t;
		size_t n;
		int rc = serf_decode_tags(m->meta, m->meta_len, &t, &n);
		if (rc) {
			/* serf logs and keeps whatever decoded: an empty map. */
			sl_log(sl, 3, "serf: Failed to decode tags of %s: %d", m->name, rc);
			t = NULL;
			n = 0;
		}
		serf_tags_free(sm->m.tags, sm->m.n_tags);
		sm->m.tags = t;
		sm->m.n_tags = n;
	}
}

/* ------------------------------------------------------------------ */
/* recent intents (join/leave seen before memberlist knows the node)   */

static size_t intent_pos(const struct serf_layer *sl, const char *name, bool *found)
{
	size_t lo = 0, hi = sl->n_intents;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sl->intents[mid].name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* upsertIntent: true if this is news (so the caller rebroadcasts). */
static bool intent_upsert(struct serf_layer *sl, const char *name, uint8_t type,
			  uint64_t ltime, int64_t now)
{
	bool found;
	size_t i = intent_pos(sl, name, &found);
	struct sl_intent *it;

	if (found) {
		if (ltime <= sl->intents[i].ltime)
			return false;
		it = &sl->intents[i];
	} else {
		if (sl->n_intents >= SL_INTENTS_MAX) {
			sl->stats.intents_dropped++;
			return false;
		}
		if (sl->n_intents == sl->cap_intents) {
			size_t nc = sl->cap_intents ? sl->cap_intents * 2 : 16;
			struct sl_intent *nv = realloc(sl->intents, nc * sizeof *nv);
			if (!nv)
				return false;
			sl->intents = nv;
			sl->cap_intents = nc;
		}
		memmove(&sl->intents[i + 1], &sl->intents[i],
			(sl->n_intents - i) * sizeof *sl->intents);
		sl->n_intents++;
		it = &sl->intents[i];
		snprintf(it->name, sizeof it->name, "%s", name);
	}
	it->type = type;
	it->ltime = ltime;
	it->wall = now;
	return true;
}

static bool intent_recent(const struct serf_layer *sl, const char *name, uint8_t type,
			  uint64_t *ltime)
{
	bool found;
	size_t i = intent_pos(sl, name, &found);
	if (!found || sl->intents[i].type != type)
		return false;
	*ltime = sl->intents[i].ltime;
	return true;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

void serf_layer_config_default(struct serf_layer_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->protocol_version = 4;
	cfg->event_buffer = 512;
	cfg->query_buffer = 512;
	cfg->gossip_interval_ms = 200;
	cfg->query_timeout_mult = 16;
	cfg->query_size_limit = 1024;
	cfg->query_response_size_limit = 1024;
	cfg->user_event_size_limit = 512;
	cfg->reap_interval_ms = 15000;
	cfg->reconnect_interval_ms = 30000;
	cfg->reconnect_timeout_ms = 24LL * 3600 * 1000;
	cfg->tombstone_timeout_ms = 24LL * 3600 * 1000;
	cfg->recent_intent_timeout_ms = 5LL * 60 * 1000;
	cfg->prune_delay_ms = 6000;
}

struct serf_layer *serf_layer_new(const struct serf_layer_config *cfg)
{
	struct serf_layer_config d;
	struct serf_layer *sl;
	uint8_t meta[WIRE_META_MAX];

	serf_layer_config_default(&d);
	if (!cfg || !cfg->name[0] || memchr(cfg->name, 0, sizeof cfg->name) == NULL)
		return NULL;
	sl = calloc(1, sizeof *sl);
	if (!sl)
		return NULL;
	sl->cfg = *cfg;
#define DEF(f) do { if (sl->cfg.f <= 0) sl->cfg.f = d.f; } while (0)
	DEF(protocol_version);
	DEF(event_buffer);
	DEF(query_buffer);
	DEF(gossip_interval_ms);
	DEF(query_timeout_mult);
	DEF(query_size_limit);
	DEF(query_response_size_limit);
	DEF(user_event_size_limit);
	DEF(reap_interval_ms);
	DEF(reconnect_interval_ms);
	DEF(reconnect_timeout_ms);
	DEF(tombstone_timeout_ms);
	DEF(recent_intent_timeout_ms);
	DEF(prune_delay_ms);
#undef DEF
	if (sl->cfg.protocol_version < 2 || sl->cfg.protocol_version > 5 ||
	    sl->cfg.user_event_size_limit > SL_USER_EVENT_HARD_LIMIT ||
	    tags_copy(cfg->tags, cfg->n_tags, &sl->tags, &sl->n_tags) != SERF_OK ||
	    serf_encode_tags(sl->tags, sl->n_tags, sl->cfg.protocol_version, meta,
			     sizeof meta) < 0) {
		serf_tags_free(sl->tags, sl->n_tags);
		free(sl);
		return NULL;
	}
	sl->cfg.tags = NULL;
	sl->cfg.n_tags = 0;
	sl->events = calloc((size_t)sl->cfg.event_buffer, sizeof *sl->events);
	sl->queries = calloc((size_t)sl->cfg.query_buffer, sizeof *sl->queries);
	if (!sl->events || !sl->queries) {
		serf_layer_free(sl);
		return NULL;
	}
	sl->rng = cfg->seed ^ 0x5e4f5e4f5e4f5e4fULL;
	/* serf.Create increments every clock once. */
	sl->clock = sl->event_clock = sl->query_clock = 1;
	return sl;
}

static void myquery_free(struct sl_myquery *q)
{
	for (size_t i = 0; i < q->n_acks; i++)
		free(q->acks[i]);
	for (size_t i = 0; i < q->n_resps; i++)
		free(q->resps[i]);
	free(q->acks);
	free(q->resps);
	free(q->name);
}

static void event_slot_clear(struct sl_event_slot *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->ev[i].name);
		free(s->ev[i].payload);
	}
	free(s->ev);
	memset(s, 0, sizeof *s);
}

void serf_layer_free(struct serf_layer *sl)
{
	if (!sl)
		return;
	for (size_t i = 0; i < sl->n_members; i++)
		member_free(sl->members[i]);
	free(sl->members);
	free(sl->intents);
	if (sl->events)
		for (int i = 0; i < sl->cfg.event_buffer; i++)
			event_slot_clear(&sl->events[i]);
	free(sl->events);
	if (sl->queries)
		for (int i = 0; i < sl->cfg.query_buffer; i++)
			free(sl->queries[i].ids);
	free(sl->queries);
	for (size_t i = 0; i < sl->n_myq; i++)
		myquery_free(&sl->myq[i]);
	free(sl->myq);
	free(sl->inq);
	serf_tags_free(sl->tags, sl->n_tags);
	free(sl);
}

static void arm(struct serf_layer *sl, int64_t now)
{
	if (sl->armed)
		return;
	sl->armed = true;
	sl->next_reap = now + sl->cfg.reap_interval_ms;
	sl->next_reconnect = now + sl->cfg.reconnect_interval_ms;
}

/* ------------------------------------------------------------------ */
/* outbound helpers                                                    */

static void out_broadcast(struct serf_layer *sl, const uint8_t *p, size_t len)
{
	if (sl->cfg.out.broadcast)
		sl->cfg.out.broadcast(sl->cfg.out.ctx, p, len);
}

static bool has_alive_members(const struct serf_layer *sl)
{
	for (size_t i = 0; i < sl->n_members; i++)
		if (sl->members[i]->m.status == VIGIL_STATUS_ALIVE &&
		    strcmp(sl->members[i]->m.name, sl->cfg.name) != 0)
			return true;
	return false;
}

static int encode_intent(struct mpack_enc *e, uint8_t type, uint64_t ltime, const char *node,
			 bool prune)
{
	mpack_enc_init(e, type);
	mpack_enc_map(e, type == SERF_MSG_LEAVE ? 3 : 2);
	mpack_enc_gostr(e, "LTime");
	mpack_enc_u64(e, ltime);
	mpack_enc_gostr(e, "Node");
	mpack_enc_gostr(e, node);
	if (type == SERF_MSG_LEAVE) {
		mpack_enc_gostr(e, "Prune");
		mpack_enc_bool(e, prune);
	}
	if (e->err) {
		mpack_enc_free(e);
		return SERF_ENOMEM;
	}
	return SERF_OK;
}

/* ------------------------------------------------------------------ */
/* intents                                                             */

static bool handle_join_intent(struct serf_layer *sl, uint64_t ltime, const char *node,
			       int64_t now);

static int broadcast_join(struct serf_layer *sl, uint64_t ltime, int64_t now)
{
	struct mpack_enc e;
	int rc;

	clock_witness(&sl->clock, ltime);
	handle_join_intent(sl, ltime, sl->cfg.name, now);
	rc = encode_intent(&e, SERF_MSG_JOIN, ltime, sl->cfg.name, false);
	if (rc)
		return rc;
	out_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	return SERF_OK;
}

static void handle_prune(struct serf_layer *sl, struct sl_member *m, int64_t now)
{
	/*
	 * serf sleeps BroadcastTimeout + LeavePropagateDelay before erasing a
	 * member that is still leaving; we schedule the erase instead.
	 */
	if (m->m.status == VIGIL_STATUS_LEAVING) {
		m->prune_at = now + sl->cfg.prune_delay_ms;
		if (m->prune_at == 0)
			m->prune_at = 1;
		return;
	}
	sl_log(sl, 1, "serf: EventMemberReap (forced): %s %s", m->m.name, m->m.addr);
	member_erase(sl, m->m.name);
}

/* handleNodeLeaveIntent; true = rebroadcast. */
static bool handle_leave_intent(struct serf_layer *sl, uint64_t ltime, const char *node,
				bool prune, int64_t now)
{
	struct sl_member *m;

	if (!ltime_plausible(sl, sl->clock, ltime))
		return false;
	clock_witness(&sl->clock, ltime);
	m = member_find(sl, node);
	if (!m)
		return intent_upsert(sl, node, SERF_MSG_LEAVE, ltime, now);
	if (ltime <= m->status_ltime)
		return false;
	if (strcmp(node, sl->cfg.name) == 0 && sl->state == SL_ALIVE) {
		/* Someone thinks we are leaving; we are not: refute. */
		sl_log(sl, 0, "serf: Refuting an older leave intent");
		broadcast_join(sl, sl->clock, now);
		return false;
	}
	/*
	 * Record the time even when the status does not change, so a second
	 * leave for the same member is not rebroadcast forever (consul#8179).
	 */
	m->status_ltime = ltime;
	switch (m->m.status) {
	case VIGIL_STATUS_ALIVE:
		m->m.status = VIGIL_STATUS_LEAVING;
		if (prune)
			handle_prune(sl, m, now);
		return true;
	case VIGIL_STATUS_FAILED:
		m->m.status = VIGIL_STATUS_LEFT;
		sl_log(sl, 1, "serf: EventMemberLeave (forced): %s %s", m->m.name, m->m.addr);
		emit_member(sl, VIGIL_EV_MEMBER_LEAVE, m);
		if (prune)
			handle_prune(sl, m, now);
		return true;
	case VIGIL_STATUS_LEAVING:
	case VIGIL_STATUS_LEFT:
		if (prune)
			handle_prune(sl, m, now);
		return true;
	default:
		return false;
	}
}

/* handleNodeJoinIntent; true = rebroadcast. */
static bool handle_join_intent(struct serf_layer *sl, uint64_t ltime, const char *node,
			       int64_t now)
{
	struct sl_member *m;

	if (!ltime_plausible(sl, sl->clock, ltime))
		return false;
	clock_witness(&sl->clock, ltime);
	m = member_find(sl, node);
	if (!m)
		return intent_upsert(sl, node, SERF_MSG_JOIN, ltime, now);
	if (ltime <= m->status_ltime)
		return false;
	m->status_ltime = ltime;
	/* A leave older than this join no longer applies. */
	if (m->m.status == VIGIL_STATUS_LEAVING)
		m->m.status = VIGIL_STATUS_ALIVE;
	return true;
}

/* ------------------------------------------------------------------ */
/* memberlist events                                                   */

static void handle_node_join(struct serf_layer *sl, const struct swim_member *n)
{
	struct sl_member *m = member_find(sl, n->name);

	if (!m) {
		uint64_t lt;
		m = member_add(sl, n->name);
		if (!m) {
			sl_log(sl, 3, "serf: out of memory adding %s", n->name);
			return;
		}
		m->m.status = VIGIL_STATUS_ALIVE;
		/* An intent that beat memberlist here applies now. */
		if (intent_recent(sl, n->name, SERF_MSG_JOIN, &lt))
			m->status_ltime = lt;
		if (intent_recent(sl, n->name, SERF_MSG_LEAVE, &lt)) {
			m->m.status = VIGIL_STATUS_LEAVING;
			m->status_ltime = lt;
		}
	} else {
		m->m.status = VIGIL_STATUS_ALIVE;
		m->leave_time = 0;
		m->prune_at = 0;
	}
	member_absorb(sl, m, n, true);
	sl_log(sl, 1, "serf: EventMemberJoin: %s %s", m->m.name, m->m.addr);
	emit_member(sl, VIGIL_EV_MEMBER_JOIN, m);
}

static void handle_node_leave(struct serf_layer *sl, const struct swim_member *n, int64_t now)
{
	struct sl_member *m = member_find(sl, n->name);

	if (!m)
		return;
	switch (m->m.status) {
	case VIGIL_STATUS_LEAVING:
		m->m.status = VIGIL_STATUS_LEFT;
		break;
	case VIGIL_STATUS_ALIVE:
		m->m.status = VIGIL_STATUS_FAILED;
		break;
	default:
		sl_log(sl, 2, "serf: Bad state when leave: %d", (int)m->m.status);
		return;
	}
	m->leave_time = now;
	m->m.incarnation = n->incarnation;
	sl_log(sl, 1, "serf: %s: %s %s",
	       m->m.status == VIGIL_STATUS_LEFT ? "EventMemberLeave" : "EventMemberFailed",
	       m->m.name, m->m.addr);
	emit_member(sl, m->m.status == VIGIL_STATUS_LEFT ? VIGIL_EV_MEMBER_LEAVE
							 : VIGIL_EV_MEMBER_FAILED, m);
}

static void handle_node_update(struct serf_layer *sl, const struct swim_member *n)
{
	struct sl_member *m = member_find(sl, n->name);

	if (!m)
		return;
	member_absorb(sl, m, n, true);
	sl_log(sl, 1, "serf: EventMemberUpdate: %s", m->m.name);
	emit_member(sl, VIGIL_EV_MEMBER_UPDATE, m);
}

void serf_layer_on_member(struct serf_layer *sl, enum swim_member_event ev,
			  const struct swim_member *m, int64_t now)
{
	struct sl_member *sm;

	if (!sl || !m || !memchr(m->name, 0, sizeof m->name) || !m->name[0])
		return;
	arm(sl, now);
	switch (ev) {
	case SWIM_EV_JOIN:
		handle_node_join(sl, m);
		break;
	case SWIM_EV_LEAVE:
		handle_node_leave(sl, m, now);
		break;
	case SWIM_EV_UPDATE:
		handle_node_update(sl, m);
		break;
	case SWIM_EV_REAP:
		/* swim forgot the tombstone; nothing is left to reconnect to. */
		sm = member_find(sl, m->name);
		if (sm && (sm->m.status == VIGIL_STATUS_FAILED ||
			   sm->m.status == VIGIL_STATUS_LEFT))
			member_erase(sl, m->name);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* user events                                                         */

/* handleUserEvent; true = rebroadcast (first time seen). */
static bool handle_user_event(struct serf_layer *sl, uint64_t ltime, const uint8_t *name,
			      size_t name_len, const uint8_t *payload, size_t len, bool cc)
{
	uint64_t cur, nbuf = (uint64_t)sl->cfg.event_buffer;
	struct sl_event_slot *slot;
	struct sl_uevent *ue, *nv;
	struct vigil_event ev;

	if (!ltime_plausible(sl, sl->event_clock, ltime))
		return false;
	clock_witness(&sl->event_clock, ltime);
	if (ltime < sl->event_min_time)
		return false;
	cur = sl->event_clock;
	if (cur > nbuf && ltime < cur - nbuf) {
		sl->stats.events_old++;
		sl_log(sl, 2, "serf: received old event from time %" PRIu64
		       " (current: %" PRIu64 ")", ltime, cur);
		return false;
	}
	slot = &sl->events[ltime % nbuf];
	if (slot->used && slot->ltime == ltime) {
		for (size_t i = 0; i < slot->n; i++) {
			ue = &slot->ev[i];
			if (strlen(ue->name) == name_len &&
			    (name_len == 0 || memcmp(ue->name, name, name_len) == 0) &&
			    ue->len == len && (len == 0 || memcmp(ue->payload, payload, len) == 0)) {
				sl->stats.events_dup++;
				return false;
			}
		}
	} else {
		event_slot_clear(slot);
		slot->used = true;
		slot->ltime = ltime;
	}
	if (slot->n >= SL_SLOT_EVENTS_MAX)
		return false;
	nv = realloc(slot->ev, (slot->n + 1) * sizeof *nv);
	if (!nv)
		return false;
	slot->ev = nv;
	ue = &slot->ev[slot->n];
	ue->name = mpack_text_dup(name, name_len);
	ue->payload = len ? malloc(len) : NULL;
	ue->len = len;
	if (!ue->name || (len && !ue->payload)) {
		free(ue->name);
		free(ue->payload);
		return false;
	}
	if (len)
		memcpy(ue->payload, payload, len);
	slot->n++;
	sl->stats.events_in++;

	memset(&ev, 0, sizeof ev);
	ev.type = VIGIL_EV_USER;
	ev.name = ue->name;
	ev.payload = ue->payload;
	ev.payload_len = len;
	ev.ltime = ltime;
	ev.coalesce = cc;
	emit(sl, &ev);
	return true;
}

int serf_layer_user_event(struct serf_layer *sl, const char *name,
			  const uint8_t *payload, size_t len, bool coalesce, int64_t now)
{
	struct mpack_enc e;
	uint64_t ltime;
	size_t nlen;

	if (!sl || !name || (len && !payload))
		return SERF_EINVAL;
	arm(sl, now);
	nlen = strlen(name);
	if (nlen + len > (size_t)sl->cfg.user_event_size_limit ||
	    nlen + len > SL_USER_EVENT_HARD_LIMIT)
		return SERF_ETOOBIG;
	ltime = sl->event_clock;
	mpack_enc_init(&e, SERF_MSG_USER_EVENT);
	mpack_enc_map(&e, 4);
	mpack_enc_gostr(&e, "CC");
	mpack_enc_bool(&e, coalesce);
	mpack_enc_gostr(&e, "LTime");
	mpack_enc_u64(&e, ltime);
	mpack_enc_gostr(&e, "Name");
	mpack_enc_goraw(&e, name, nlen);
	mpack_enc_gostr(&e, "Payload");
	mpack_enc_gobytes(&e, payload, len);
	if (e.err) {
		mpack_enc_free(&e);
		return SERF_ENOMEM;
	}
	if (e.sb.size > (size_t)sl->cfg.user_event_size_limit) {
		mpack_enc_free(&e);
		return SERF_ETOOBIG;
	}
	clock_tick(&sl->event_clock);
	handle_user_event(sl, ltime, (const uint8_t *)name, nlen, payload, len, coalesce);
	out_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	return SERF_OK;
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

struct query_msg {
	uint64_t ltime;
	uint32_t id;
	struct wire_bytes addr;
	uint16_t port;
	struct wire_bytes source_node;
	const msgpack_object *filters;  /* each STR/BIN (checked) */
	uint32_t n_filters;
	uint32_t flags;
	uint8_t relay_factor;
	int64_t timeout_ns;
	struct wire_bytes name;
	struct wire_bytes payload;
};

struct query_resp_msg {
	uint64_t ltime;
	uint32_t id;
	struct wire_bytes from;
	uint32_t flags;
	struct wire_bytes payload;
};

static int decode_query(const msgpack_object *o, struct query_msg *q)
{
	const msgpack_object_kv *kv;
	uint32_t n;
	uint64_t v = 0;

	memset(q, 0, sizeof *q);
	if (o->type != MSGPACK_OBJECT_MAP || !mpack_go_map(o, &kv, &n))
		return SERF_EFORMAT;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *k = &kv[i].key, *val = &kv[i].val;
		bool ok = true;
		if (mpack_key_is(k, "LTime")) {
			ok = mpack_go_uint(val, UINT64_MAX, &q->ltime);
		} else if (mpack_key_is(k, "ID")) {
			ok = mpack_go_uint(val, UINT32_MAX, &v);
			q->id = (uint32_t)v;
		} else if (mpack_key_is(k, "Addr")) {
			ok = mp_bytes(val, &q->addr);
		} else if (mpack_key_is(k, "Port")) {
			ok = mpack_go_uint(val, UINT16_MAX, &v);
			q->port = (uint16_t)v;
		} else if (mpack_key_is(k, "SourceNode")) {
			ok = mp_bytes(val, &q->source_node);
		} else if (mpack_key_is(k, "Filters")) {
			ok = mpack_go_array(val, &q->filters, &q->n_filters);
			for (uint32_t j = 0; ok && j < q->n_filters; j++) {
				struct wire_bytes b = {NULL, 0};
				ok = mp_bytes(&q->filters[j], &b);
			}
		} else if (mpack_key_is(k, "Flags")) {
			ok = mpack_go_uint(val, UINT32_MAX, &v);
			q->flags = (uint32_t)v;
		} else if (mpack_key_is(k, "RelayFactor")) {
			ok = mpack_go_uint(val, UINT8_MAX, &v);
			q->relay_factor = (uint8_t)v;
		} else if (mpack_key_is(k, "Timeout")) {
			ok = mpack_go_int(val, &q->timeout_ns);
		} else if (mpack_key_is(k, "Name")) {
			ok = mp_bytes(val, &q->name);
		} else if (mpack_key_is(k, "Payload")) {
			ok = mp_bytes(val, &q->payload);
		}
		if (!ok)
			return SERF_EFORMAT;
	}
	/* Names become C strings for the application. */
	if ((q->name.len && memchr(q->name.p, 0, q->name.len)) ||
	    q->source_node.len > WIRE_NAME_MAX ||
	    (q->source_node.len && memchr(q->source_node.p, 0, q->source_node.len)))
		return SERF_EFORMAT;
	return SERF_OK;
}

static int decode_query_resp(const msgpack_object *o, struct query_resp_msg *r)
{
	const msgpack_object_kv *kv;
	uint32_t n;
	uint64_t v = 0;

	memset(r, 0, sizeof *r);
	if (o->type != MSGPACK_OBJECT_MAP || !mpack_go_map(o, &kv, &n))
		return SERF_EFORMAT;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *k = &kv[i].key, *val = &kv[i].val;
		bool ok = true;
		if (mpack_key_is(k, "LTime")) {
			ok = mpack_go_uint(val, UINT64_MAX, &r->ltime);
		} else if (mpack_key_is(k, "ID")) {
			ok = mpack_go_uint(val, UINT32_MAX, &v);
			r->id = (uint32_t)v;
		} else if (mpack_key_is(k, "From")) {
			ok = mp_bytes(val, &r->from);
		} else if (mpack_key_is(k, "Flags")) {
			ok = mpack_go_uint(val, UINT32_MAX, &v);
			r->flags = (uint32_t)v;
		} else if (mpack_key_is(k, "Payload")) {
			ok = mp_bytes(val, &r->payload);
		}
		if (!ok)
			return SERF_EFORMAT;
	}
	if (r->from.len > WIRE_NAME_MAX || (r->from.len && memchr(r->from.p, 0, r->from.len)))
		return SERF_EFORMAT;
	return SERF_OK;
}

/*
 * serf's regexp.MatchString(expr, value), with Go's syntax (goregex.h).
 * *budget is shared by the filters of one query, so a query full of
 * costly expressions costs no more than one (issue 15: glibc spent 1.6 s
 * of vigil_step on one 27-byte filter).  A pattern Go would refuse, or
 * one over the budget, admits nobody, as serf's compile error does.
 */
static bool filter_match(const struct serf_layer *sl, const struct wire_bytes *expr,
			 const char *value, size_t *budget)
{
	char err[160];
	struct goregex *re = goregex_compile((const char *)expr->p, expr->len, budget, err,
					     sizeof err);
	if (!re) {
		sl_log(sl, 2, "serf: failed to compile filter regex (%.*s): %s",
		       (int)(expr->len > 64 ? 64 : expr->len), expr->p ? (const char *)expr->p : "",
		       err);
		return false;
	}
	bool match = goregex_match(re, value, strlen(value));
	goregex_free(re);
	return match;
}

/* shouldProcessQuery: every filter must admit us. */
static bool should_process(const struct serf_layer *sl, const struct query_msg *q)
{
	size_t budget = GOREGEX_BUDGET;
	for (uint32_t i = 0; i < q->n_filters; i++) {
		struct wire_bytes f = {NULL, 0};
		msgpack_unpacked u;
		bool ok = false;

		mp_bytes(&q->filters[i], &f);
		/* serf indexes filter[0] unchecked (and panics); we refuse. */
		if (f.len < 1)
			return false;
		if (mp_unpack(f.p + 1, f.len - 1, &u, NULL) != SERF_OK)
			return false;
		if (f.p[0] == 0) {             /* filterNodeType: []string */
			const msgpack_object *it;
			uint32_t n;
			if (mpack_go_array(&u.data, &it, &n)) {
				for (uint32_t j = 0; j < n && !ok; j++) {
					struct wire_bytes b = {NULL, 0};
					if (!mp_bytes(&it[j], &b))
						break;
					ok = bytes_eq_str(b.p, b.len, sl->cfg.name);
				}
			}
		} else if (f.p[0] == 1) {      /* filterTagType: {Tag, Expr} */
			const msgpack_object_kv *kv;
			uint32_t n;
			struct wire_bytes tag = {NULL, 0}, expr = {NULL, 0};
			bool good = u.data.type == MSGPACK_OBJECT_MAP && mpack_go_map(&u.data, &kv, &n);
			for (uint32_t j = 0; good && j < n; j++) {
				if (mpack_key_is(&kv[j].key, "Tag"))
					good = mp_bytes(&kv[j].val, &tag);
				else if (mpack_key_is(&kv[j].key, "Expr"))
					good = mp_bytes(&kv[j].val, &expr);
			}
			if (good) {
				char key[256];
				const char *val = NULL;
				if (mpack_text_copy(tag.p, tag.len, key, sizeof key))
					val = tag_get(sl->tags, sl->n_tags, key);
				/* a missing tag reads as "" (Go map zero value) */
				ok = filter_match(sl, &expr, val ? val : "", &budget);
			}
		}
		msgpack_unpacked_destroy(&u);
		if (!ok)
			return false;
	}
	return true;
}

static int encode_query_resp(struct mpack_enc *e, int outer_type, uint64_t ltime, uint32_t id,
			     const char *from, uint32_t flags, const uint8_t *p, size_t len)
{
	mpack_enc_init(e, outer_type);
	mpack_enc_map(e, 5);
	mpack_enc_gostr(e, "Flags");
	mpack_enc_u64(e, flags);
	mpack_enc_gostr(e, "From");
	mpack_enc_gostr(e, from);
	mpack_enc_gostr(e, "ID");
	mpack_enc_u64(e, id);
	mpack_enc_gostr(e, "LTime");
	mpack_enc_u64(e, ltime);
	mpack_enc_gostr(e, "Payload");
	mpack_enc_gobytes(e, p, len);
	if (e->err) {
		mpack_enc_free(e);
		return SERF_ENOMEM;
	}
	return SERF_OK;
}

static void handle_query_response(struct serf_layer *sl, const struct query_resp_msg *r,
				  int64_t now);

/* Deliver a serf message to a querier: ourselves directly, others by UDP. */
static void send_to_node(struct serf_layer *sl, const struct wire_addr *to, const char *node,
			 const uint8_t *msg, size_t len, int64_t now)
{
	if (strcmp(node, sl->cfg.name) == 0 && msg[0] == SERF_MSG_QUERY_RESPONSE) {
		msgpack_unpacked u;
		struct query_resp_msg r;
		if (mp_unpack(msg + 1, len - 1, &u, NULL) == SERF_OK) {
			if (decode_query_resp(&u.data, &r) == SERF_OK)
				handle_query_response(sl, &r, now);
			msgpack_unpacked_destroy(&u);
		}
		return;
	}
	if (sl->cfg.out.send_to && to->ip_len)
		sl->cfg.out.send_to(sl->cfg.out.ctx, to, msg, len);
}

/*
 * relayResponse: also send the response through up to relay_factor random
 * alive members (memberlist protocol max >= 5) wrapped in messageRelay.
 */
static void relay_response(struct serf_layer *sl, uint8_t relay_factor,
			   const struct wire_addr *dest, const char *dest_name,
			   uint64_t ltime, uint32_t id, uint32_t flags,
			   const uint8_t *payload, size_t len)
{
	struct mpack_enc e;
	struct sl_member **chosen;
	size_t k = 0, n = sl->n_members;
	uint8_t ip[16];

	if (relay_factor == 0 || n < (size_t)relay_factor + 1)
		return;
	mpack_enc_init(&e, SERF_MSG_RELAY);
	mpack_enc_map(&e, 2);
	mpack_enc_gostr(&e, "DestAddr");
	mpack_enc_map(&e, 3);                  /* net.UDPAddr{IP, Port, Zone} */
	mpack_enc_gostr(&e, "IP");
	memcpy(ip, dest->ip, dest->ip_len);
	mpack_enc_goraw(&e, ip, dest->ip_len);
	mpack_enc_gostr(&e, "Port");
	mpack_enc_i64(&e, dest->port);
	mpack_enc_gostr(&e, "Zone");
	mpack_enc_gostr(&e, "");
	mpack_enc_gostr(&e, "DestName");
	mpack_enc_gostr(&e, dest_name);
	{
		char t = SERF_MSG_QUERY_RESPONSE;
		e.err |= msgpack_sbuffer_write(&e.sb, &t, 1);
	}
	mpack_enc_map(&e, 5);
	mpack_enc_gostr(&e, "Flags");
	mpack_enc_u64(&e, flags);
	mpack_enc_gostr(&e, "From");
	mpack_enc_gostr(&e, sl->cfg.name);
	mpack_enc_gostr(&e, "ID");
	mpack_enc_u64(&e, id);
	mpack_enc_gostr(&e, "LTime");
	mpack_enc_u64(&e, ltime);
	mpack_enc_gostr(&e, "Payload");
	mpack_enc_gobytes(&e, payload, len);
	if (e.err || e.sb.size > (size_t)sl->cfg.query_response_size_limit) {
		sl_log(sl, 3, "serf: relayed response exceeds limit of %d bytes",
		       sl->cfg.query_response_size_limit);
		mpack_enc_free(&e);
		return;
	}
	chosen = calloc(relay_factor, sizeof *chosen);
	if (!chosen) {
		mpack_enc_free(&e);
		return;
	}
	/* kRandomMembers: up to 3n random draws, skipping unfit and repeats. */
	for (size_t i = 0; i < 3 * n && k < relay_factor; i++) {
		struct sl_member *m = sl->members[sl_rand(sl) % n];
		bool dup = false;
		if (m->m.status != VIGIL_STATUS_ALIVE || m->m.vsn[1] < 5 ||
		    strcmp(m->m.name, sl->cfg.name) == 0)
			continue;
		for (size_t j = 0; j < k; j++)
			dup |= chosen[j] == m;
		if (!dup)
			chosen[k++] = m;
	}
	for (size_t j = 0; j < k; j++)
		if (sl->cfg.out.send_to && chosen[j]->addr.ip_len)
			sl->cfg.out.send_to(sl->cfg.out.ctx, &chosen[j]->addr,
					    (const uint8_t *)e.sb.data, e.sb.size);
	sl->stats.relays += k;
	free(chosen);
	mpack_enc_free(&e);
}

static struct sl_inquery *inq_find(struct serf_layer *sl, uint32_t id, size_t *idx)
{
	/* Newest first: ids are random, a clash would favour the live one. */
	for (size_t i = sl->n_inq; i-- > 0;)
		if (sl->inq[i].id == id) {
			*idx = i;
			return &sl->inq[i];
		}
	return NULL;
}

static void inq_remove(struct serf_layer *sl, size_t i)
{
	memmove(&sl->inq[i], &sl->inq[i + 1], (sl->n_inq - i - 1) * sizeof *sl->inq);
	sl->n_inq--;
}

static int respond_inq(struct serf_layer *sl, size_t idx, const uint8_t *payload,
		       size_t len, int64_t now)
{
	struct sl_inquery q = sl->inq[idx];
	struct mpack_enc e;
	int rc;

	if (now > q.deadline) {
		inq_remove(sl, idx);
		return SERF_ESTATE;
	}
	rc = encode_query_resp(&e, SERF_MSG_QUERY_RESPONSE, q.ltime, q.id, sl->cfg.name, 0,
			       payload, len);
	if (rc)
		return rc;
	if (e.sb.size > (size_t)sl->cfg.query_response_size_limit) {
		mpack_enc_free(&e);
		return SERF_ETOOBIG;
	}
	/* Remove first: the callbacks below may re-enter. */
	inq_remove(sl, idx);
	send_to_node(sl, &q.addr, q.source, (const uint8_t *)e.sb.data, e.sb.size, now);
	relay_response(sl, q.relay_factor, &q.addr, q.source, q.ltime, q.id, 0, payload, len);
	sl->stats.responses_sent++;
	mpack_enc_free(&e);
	return SERF_OK;
}

int serf_layer_respond(struct serf_layer *sl, uint32_t id, const uint8_t *payload,
		       size_t len, int64_t now)
{
	size_t idx;

	if (!sl || (len && !payload))
		return SERF_EINVAL;
	if (!inq_find(sl, id, &idx))
		return SERF_ENOTFOUND;
	return respond_inq(sl, idx, payload, len, now);
}

/* Member as go-msgpack encodes serf.Member (the conflict response body). */
static void enc_member(struct mpack_enc *e, const struct sl_member *m)
{
	/* vsn[] is pmin pmax pcur dmin dmax dcur; fields go in name order */
	mpack_enc_map(e, 11);
	mpack_enc_gostr(e, "Addr");
	mpack_enc_gobytes(e, m->addr.ip, m->addr.ip_len);
	mpack_enc_gostr(e, "DelegateCur");
	mpack_enc_u64(e, m->m.vsn[5]);
	mpack_enc_gostr(e, "DelegateMax");
	mpack_enc_u64(e, m->m.vsn[4]);
	mpack_enc_gostr(e, "DelegateMin");
	mpack_enc_u64(e, m->m.vsn[3]);
	mpack_enc_gostr(e, "Name");
	mpack_enc_gostr(e, m->m.name);
	mpack_enc_gostr(e, "Port");
	mpack_enc_u64(e, m->m.port);
	mpack_enc_gostr(e, "ProtocolCur");
	mpack_enc_u64(e, m->m.vsn[2]);
	mpack_enc_gostr(e, "ProtocolMax");
	mpack_enc_u64(e, m->m.vsn[1]);
	mpack_enc_gostr(e, "ProtocolMin");
	mpack_enc_u64(e, m->m.vsn[0]);
	mpack_enc_gostr(e, "Status");
	mpack_enc_i64(e, (int64_t)m->m.status);
	mpack_enc_gostr(e, "Tags");
	mpack_enc_map(e, m->m.n_tags);
	for (size_t i = 0; i < m->m.n_tags; i++) {
		mpack_enc_gostr(e, m->m.tags[i].key);
		mpack_enc_gostr(e, m->m.tags[i].value);
	}
}

/* _serf_conflict: answer with who we think holds the name in the payload. */
static void handle_conflict_query(struct serf_layer *sl, const struct query_msg *q,
				  size_t idx, int64_t now)
{
	char node[WIRE_NAME_MAX + 1];
	const struct sl_member *m = NULL;
	struct mpack_enc e;

	if (!mpack_text_copy(q->payload.p, q->payload.len, node, sizeof node))
		return;
	if (strcmp(node, sl->cfg.name) == 0)
		return;              /* never vote about ourselves */
	m = member_find(sl, node);
	mpack_enc_init(&e, SERF_MSG_CONFLICT_RESPONSE);
	if (m)
		enc_member(&e, m);
	else
		e.err |= msgpack_pack_nil(&e.pk);
	if (!e.err)
		respond_inq(sl, idx, (const uint8_t *)e.sb.data, e.sb.size, now);
	mpack_enc_free(&e);
}

/* handleQuery; true = rebroadcast. */
static bool handle_query(struct serf_layer *sl, const struct query_msg *q, int64_t now)
{
	uint64_t cur, nbuf = (uint64_t)sl->cfg.query_buffer;
	struct sl_query_slot *slot;
	uint32_t *nv;
	bool rebroadcast;
	struct wire_addr dest;
	char source[WIRE_NAME_MAX + 1];
	char *name;
	int64_t timeout_ms;
	size_t idx;

	if (!ltime_plausible(sl, sl->query_clock, q->ltime))
		return false;
	clock_witness(&sl->query_clock, q->ltime);
	if (q->ltime < sl->query_min_time)
		return false;
	cur = sl->query_clock;
	if (cur > nbuf && q->ltime < cur - nbuf) {
		sl->stats.queries_old++;
		return false;
	}
	slot = &sl->queries[q->ltime % nbuf];
	if (slot->used && slot->ltime == q->ltime) {
		for (size_t i = 0; i < slot->n; i++)
			if (slot->ids[i] == q->id) {
				sl->stats.queries_dup++;
				return false;
			}
	} else {
		free(slot->ids);
		memset(slot, 0, sizeof *slot);
		slot->used = true;
		slot->ltime = q->ltime;
	}
	if (slot->n >= SL_SLOT_QUERIES_MAX)
		return false;
	nv = realloc(slot->ids, (slot->n + 1) * sizeof *nv);
	if (!nv)
		return false;
	slot->ids = nv;
	slot->ids[slot->n++] = q->id;
	sl->stats.queries_in++;

	rebroadcast = !(q->flags & SERF_QUERY_FLAG_NO_BROADCAST);
	/* Even a query we filter out is news to pass on. */
	if (!should_process(sl, q))
		return rebroadcast;

	if (!make_addr(q->addr.p, q->addr.len, q->port, &dest))
		memset(&dest, 0, sizeof dest);
	mpack_text_copy(q->source_node.p, q->source_node.len, source, sizeof source);

	if (q->flags & SERF_QUERY_FLAG_ACK) {
		struct mpack_enc e;
		if (encode_query_resp(&e, SERF_MSG_QUERY_RESPONSE, q->ltime, q->id, sl->cfg.name,
				      SERF_QUERY_FLAG_ACK, NULL, 0) == SERF_OK) {
			send_to_node(sl, &dest, source, (const uint8_t *)e.sb.data, e.sb.size, now);
			relay_response(sl, q->relay_factor, &dest, source, q->ltime, q->id,
				       SERF_QUERY_FLAG_ACK, NULL, 0);
			sl->stats.acks_sent++;
			mpack_enc_free(&e);
		}
	}

	/* Remember where to answer until the query's deadline. */
	timeout_ms = q->timeout_ns / 1000000;
	if (timeout_ms < 0)
		timeout_ms = 0;
	if (timeout_ms > SL_QUERY_TIMEOUT_MAX_MS)
		timeout_ms = SL_QUERY_TIMEOUT_MAX_MS;
	if (sl->n_inq == SL_INQUERIES_MAX)
		inq_remove(sl, 0);       /* oldest goes */
	if (sl->n_inq == sl->cap_inq) {
		size_t nc = sl->cap_inq ? sl->cap_inq * 2 : 16;
		struct sl_inquery *ni = realloc(sl->inq, nc * sizeof *ni);
		if (!ni)
			return rebroadcast;
		sl->inq = ni;
		sl->cap_inq = nc;
	}
	idx = sl->n_inq++;
	sl->inq[idx].id = q->id;
	sl->inq[idx].ltime = q->ltime;
	sl->inq[idx].addr = dest;
	memcpy(sl->inq[idx].source, source, sizeof source);
	sl->inq[idx].relay_factor = q->relay_factor;
	sl->inq[idx].deadline = now + timeout_ms;

	name = mpack_text_dup(q->name.p, q->name.len);
	if (!name)
		return rebroadcast;
	if (strncmp(name, SERF_INTERNAL_QUERY_PREFIX, strlen(SERF_INTERNAL_QUERY_PREFIX)) == 0) {
		const char *sub = name + strlen(SERF_INTERNAL_QUERY_PREFIX);
		if (strcmp(sub, "ping") == 0) {
			/* the ack above is the whole answer */
		} else if (strcmp(sub, "conflict") == 0) {
			handle_conflict_query(sl, q, idx, now);
		} else {
			struct serf_query_in in = {
				.name = name, .payload = q->payload.p,
				.payload_len = q->payload.len, .ltime = q->ltime,
				.id = q->id, .source_node = source,
			};
			if (!sl->cfg.internal_query ||
			    !sl->cfg.internal_query(sl->cfg.internal_query_ctx, sl, &in, now))
				sl_log(sl, 2, "serf: Unhandled internal query '%s'", sub);
		}
	} else {
		struct vigil_event ev;
		memset(&ev, 0, sizeof ev);
		ev.type = VIGIL_EV_QUERY;
		ev.name = name;
		ev.payload = q->payload.p;
		ev.payload_len = q->payload.len;
		ev.ltime = q->ltime;
		ev.id = q->id;
		emit(sl, &ev);
	}
	free(name);
	return rebroadcast;
}

static bool name_in(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static bool name_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (!nv)
		return false;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return false;
	(*n)++;
	return true;
}

static void myq_emit(struct serf_layer *sl, const struct sl_myquery *q,
		     struct vigil_event *ev)
{
	ev->name = q->name;
	ev->id = q->id;
	ev->ltime = q->ltime;
	if (q->cb)
		q->cb(q->cb_ctx, ev);
	else
		emit(sl, ev);
}

static void handle_query_response(struct serf_layer *sl, const struct query_resp_msg *r,
				  int64_t now)
{
	struct sl_myquery *q = NULL;
	char from[WIRE_NAME_MAX + 1];
	struct vigil_event ev;
	struct vigil_member tmp;
	const struct sl_member *m;

	for (size_t i = 0; i < sl->n_myq; i++)
		if (sl->myq[i].ltime == r->ltime)
			q = &sl->myq[i];
	if (!q) {
		sl_log(sl, 2, "serf: reply for non-running query (LTime: %" PRIu64 ", ID: %" PRIu32 ")",
		       r->ltime, r->id);
		return;
	}
	if (q->id != r->id) {
		sl_log(sl, 2, "serf: query reply ID mismatch (Local: %" PRIu32 ", Response: %" PRIu32 ")",
		       q->id, r->id);
		return;
	}
	if (now > q->deadline)
		return;
	if (!mpack_text_copy(r->from.p, r->from.len, from, sizeof from))
		return;
	memset(&ev, 0, sizeof ev);
	m = member_find(sl, from);
	if (!m) {
		memset(&tmp, 0, sizeof tmp);
		memcpy(tmp.name, from, sizeof from);
		ev.member = &tmp;
	} else {
		ev.member = &m->m;
	}
	if (r->flags & SERF_QUERY_FLAG_ACK) {
		/* serf has no ack channel unless acks were requested */
		if (!q->ack || name_in(q->acks, q->n_acks, from))
			return;
		if (!name_push(&q->acks, &q->n_acks, from))
			return;
		ev.type = VIGIL_EV_QUERY_ACK;
	} else {
		if (name_in(q->resps, q->n_resps, from))
			return;
		if (!name_push(&q->resps, &q->n_resps, from))
			return;
		ev.type = VIGIL_EV_QUERY_RESPONSE;
		ev.payload = r->payload.p;
		ev.payload_len = r->payload.len;
	}
	myq_emit(sl, q, &ev);
}

static int encode_filter_nodes(struct mpack_enc *e, const char *const *nodes, size_t n)
{
	mpack_enc_init(e, 0);
	mpack_enc_array(e, n);
	for (size_t i = 0; i < n; i++)
		mpack_enc_gostr(e, nodes[i]);
	return e->err ? SERF_ENOMEM : SERF_OK;
}

static int encode_filter_tag(struct mpack_enc *e, const char *tag, const char *expr)
{
	mpack_enc_init(e, 1);
	mpack_enc_map(e, 2);
	mpack_enc_gostr(e, "Expr");
	mpack_enc_gostr(e, expr);
	mpack_enc_gostr(e, "Tag");
	mpack_enc_gostr(e, tag);
	return e->err ? SERF_ENOMEM : SERF_OK;
}

int serf_layer_query(struct serf_layer *sl, const char *name,
		     const uint8_t *payload, size_t len,
		     const struct vigil_query_params *p,
		     serf_query_result_fn cb, void *cb_ctx,
		     uint32_t *id_out, int64_t now)
{
	static const struct vigil_query_params none;
	const struct sl_member *self;
	struct query_msg q;
	struct mpack_enc e, f;
	int64_t timeout_ms;
	uint32_t id;
	size_t n_filters, alive = 0;
	msgpack_unpacked u;
	int rc;

	if (!sl || !name || (len && !payload))
		return SERF_EINVAL;
	if (!p)
		p = &none;
	if ((p->n_filter_nodes && !p->filter_nodes) || (p->n_filter_tags & 1) ||
	    (p->n_filter_tags && !p->filter_tags) || p->relay_factor < 0 ||
	    p->relay_factor > 255 || p->timeout_ms < 0)
		return SERF_EINVAL;
	if (sl->cfg.protocol_version < 4)
		return SERF_EPROTO;
	self = member_find(sl, sl->cfg.name);
	if (!self)
		return SERF_ESTATE;   /* need our own address for replies */
	if (sl->n_myq >= SL_MYQUERIES_MAX)
		return SERF_ESTATE;
	arm(sl, now);

	timeout_ms = p->timeout_ms;
	if (timeout_ms == 0) {
		/* DefaultQueryTimeout: GossipInterval * mult * ceil(log10(N+1)) */
		for (size_t i = 0; i < sl->n_members; i++)
			if (sl->members[i]->m.status == VIGIL_STATUS_ALIVE ||
			    sl->members[i]->m.status == VIGIL_STATUS_LEAVING)
				alive++;
		timeout_ms = (int64_t)sl->cfg.gossip_interval_ms * sl->cfg.query_timeout_mult *
			     (int64_t)ceil(log10((double)alive + 1));
	}
	id = (uint32_t)(sl_rand(sl) & 0x7fffffff);   /* rand.Int31 */

	mpack_enc_init(&e, SERF_MSG_QUERY);
	n_filters = (p->n_filter_nodes ? 1 : 0) + p->n_filter_tags / 2;
	mpack_enc_map(&e, 11);
	mpack_enc_gostr(&e, "Addr");
	mpack_enc_gobytes(&e, self->addr.ip, self->addr.ip_len);
	mpack_enc_gostr(&e, "Filters");
	if (n_filters == 0) {
		e.err |= msgpack_pack_nil(&e.pk);
	} else {
		mpack_enc_array(&e, n_filters);
		if (p->n_filter_nodes) {
			for (size_t i = 0; i < p->n_filter_nodes; i++)
				if (!p->filter_nodes[i])
					e.err = 1;
			if (!e.err) {
				rc = encode_filter_nodes(&f, p->filter_nodes, p->n_filter_nodes);
				if (!rc)
					mpack_enc_goraw(&e, f.sb.data, f.sb.size);
				e.err |= rc;
				mpack_enc_free(&f);
			}
		}
		for (size_t i = 0; i + 1 < p->n_filter_tags && !e.err; i += 2) {
			if (!p->filter_tags[i] || !p->filter_tags[i + 1]) {
				e.err = 1;
				break;
			}
			rc = encode_filter_tag(&f, p->filter_tags[i], p->filter_tags[i + 1]);
			if (!rc)
				mpack_enc_goraw(&e, f.sb.data, f.sb.size);
			e.err |= rc;
			mpack_enc_free(&f);
		}
	}
	mpack_enc_gostr(&e, "Flags");
	mpack_enc_u64(&e, p->request_ack ? SERF_QUERY_FLAG_ACK : 0);
	mpack_enc_gostr(&e, "ID");
	mpack_enc_u64(&e, id);
	mpack_enc_gostr(&e, "LTime");
	mpack_enc_u64(&e, sl->query_clock);
	mpack_enc_gostr(&e, "Name");
	mpack_enc_gostr(&e, name);
	mpack_enc_gostr(&e, "Payload");
	mpack_enc_gobytes(&e, payload, len);
	mpack_enc_gostr(&e, "Port");
	mpack_enc_u64(&e, self->addr.port);
	mpack_enc_gostr(&e, "RelayFactor");
	mpack_enc_u64(&e, (uint64_t)p->relay_factor);
	mpack_enc_gostr(&e, "SourceNode");
	mpack_enc_gostr(&e, sl->cfg.name);
	mpack_enc_gostr(&e, "Timeout");
	mpack_enc_i64(&e, timeout_ms * 1000000);  /* time.Duration: nanoseconds */
	if (e.err) {
		mpack_enc_free(&e);
		return SERF_EINVAL;
	}
	if (e.sb.size > (size_t)sl->cfg.query_size_limit) {
		mpack_enc_free(&e);
		return SERF_ETOOBIG;
	}

	/* Register before processing locally: we may answer ourselves. */
	if (sl->n_myq == sl->cap_myq) {
		size_t nc = sl->cap_myq ? sl->cap_myq * 2 : 8;
		struct sl_myquery *nq = realloc(sl->myq, nc * sizeof *nq);
		if (!nq) {
			mpack_enc_free(&e);
			return SERF_ENOMEM;
		}
		sl->myq = nq;
		sl->cap_myq = nc;
	}
	struct sl_myquery *mq = &sl->myq[sl->n_myq];
	memset(mq, 0, sizeof *mq);
	mq->name = strdup(name);
	if (!mq->name) {
		mpack_enc_free(&e);
		return SERF_ENOMEM;
	}
	mq->ltime = sl->query_clock;
	mq->id = id;
	mq->deadline = now + timeout_ms;
	mq->ack = p->request_ack;
	mq->cb = cb;
	mq->cb_ctx = cb_ctx;
	sl->n_myq++;
	if (id_out)
		*id_out = id;

	/* Process it as any member would, from its own encoding. */
	rc = mp_unpack((const uint8_t *)e.sb.data + 1, e.sb.size - 1, &u, NULL);
	if (rc == SERF_OK) {
		if (decode_query(&u.data, &q) == SERF_OK)
			handle_query(sl, &q, now);
		msgpack_unpacked_destroy(&u);
	}
	out_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	return SERF_OK;
}

/* ------------------------------------------------------------------ */
/* incoming user messages                                              */

static int decode_intent(const msgpack_object *o, uint64_t *ltime, char *node, bool *prune)
{
	const msgpack_object_kv *kv;
	uint32_t n;
	struct wire_bytes nb = {NULL, 0};

	*ltime = 0;
	*prune = false;
	if (o->type != MSGPACK_OBJECT_MAP || !mpack_go_map(o, &kv, &n))
		return SERF_EFORMAT;
	for (uint32_t i = 0; i < n; i++) {
		bool ok = true;
		if (mpack_key_is(&kv[i].key, "LTime"))
			ok = mpack_go_uint(&kv[i].val, UINT64_MAX, ltime);
		else if (mpack_key_is(&kv[i].key, "Node"))
			ok = mp_bytes(&kv[i].val, &nb);
		else if (mpack_key_is(&kv[i].key, "Prune"))
			ok = mpack_go_bool(&kv[i].val, prune);
		if (!ok)
			return SERF_EFORMAT;
	}
	/* A name memberlist could never carry cannot be a member. */
	if (nb.len == 0 || !mpack_text_copy(nb.p, nb.len, node, WIRE_NAME_MAX + 1))
		return SERF_EFORMAT;
	return SERF_OK;
}

static int decode_user_event(const msgpack_object *o, uint64_t *ltime,
			     struct wire_bytes *name, struct wire_bytes *payload, bool *cc)
{
	const msgpack_object_kv *kv;
	uint32_t n;

	*ltime = 0;
	*cc = false;
	name->p = payload->p = NULL;
	name->len = payload->len = 0;
	if (o->type != MSGPACK_OBJECT_MAP || !mpack_go_map(o, &kv, &n))
		return SERF_EFORMAT;
	for (uint32_t i = 0; i < n; i++) {
		bool ok = true;
		if (mpack_key_is(&kv[i].key, "LTime"))
			ok = mpack_go_uint(&kv[i].val, UINT64_MAX, ltime);
		else if (mpack_key_is(&kv[i].key, "Name"))
			ok = mp_bytes(&kv[i].val, name);
		else if (mpack_key_is(&kv[i].key, "Payload"))
			ok = mp_bytes(&kv[i].val, payload);
		else if (mpack_key_is(&kv[i].key, "CC"))
			ok = mpack_go_bool(&kv[i].val, cc);
		if (!ok)
			return SERF_EFORMAT;
	}
	if (name->len && memchr(name->p, 0, name->len))
		return SERF_EFORMAT;
	return SERF_OK;
}

/* messageRelay: relayHeader{DestAddr net.UDPAddr, DestName} + message. */
static void handle_relay(struct serf_layer *sl, const uint8_t *p, size_t len, int64_t now)
{
	msgpack_unpacked u;
	size_t used;
	const msgpack_object_kv *kv, *akv;
	uint32_t n, an;
	struct wire_bytes ip = {NULL, 0}, dn = {NULL, 0};
	uint64_t port = 0;
	bool ok = true;
	struct wire_addr to;
	char dest_name[WIRE_NAME_MAX + 1];

	if (mp_unpack(p, len, &u, &used) != SERF_OK) {
		sl->stats.decode_errors++;
		return;
	}
	ok = u.data.type == MSGPACK_OBJECT_MAP && mpack_go_map(&u.data, &kv, &n);
	for (uint32_t i = 0; ok && i < n; i++) {
		if (mpack_key_is(&kv[i].key, "DestAddr")) {
			ok = kv[i].val.type == MSGPACK_OBJECT_MAP && mpack_go_map(&kv[i].val, &akv, &an);
			for (uint32_t j = 0; ok && j < an; j++) {
				if (mpack_key_is(&akv[j].key, "IP"))
					ok = mp_bytes(&akv[j].val, &ip);
				else if (mpack_key_is(&akv[j].key, "Port"))
					ok = mpack_go_uint(&akv[j].val, UINT16_MAX, &port);
			}
		} else if (mpack_key_is(&kv[i].key, "DestName")) {
			ok = mp_bytes(&kv[i].val, &dn);
		}
	}
	ok = ok && make_addr(ip.p, ip.len, (uint16_t)port, &to) &&
	     mpack_text_copy(dn.p, dn.len, dest_name, sizeof dest_name);
	msgpack_unpacked_destroy(&u);
	/*
	 * serf forwards whatever follows; it only ever relays query
	 * responses, so we forward nothing else (no open UDP reflector).
	 */
	if (!ok || used >= len || p[used] != SERF_MSG_QUERY_RESPONSE ||
	    len - used > (size_t)sl->cfg.query_response_size_limit) {
		sl->stats.decode_errors++;
		return;
	}
	sl->stats.relays++;
	send_to_node(sl, &to, dest_name, p + used, len - used, now);
}

void serf_layer_on_user_msg(struct serf_layer *sl, const uint8_t *p, size_t len, int64_t now)
{
	msgpack_unpacked u;
	bool rebroadcast = false;
	uint8_t t;

	if (!sl || !p || len == 0)
		return;
	arm(sl, now);
	sl->stats.msgs_in++;
	t = p[0];
	if (t >= SERF_EXT_TYPE_MIN) {
		sl->stats.extension_msgs++;
		if (sl->have_ext && sl->ext.on_msg)
			sl->ext.on_msg(sl->ext.ctx, p, len, now);
		else
			sl->stats.unknown_types++;
		return;
	}
	switch (t) {
	case SERF_MSG_LEAVE:
	case SERF_MSG_JOIN:
	case SERF_MSG_USER_EVENT:
	case SERF_MSG_QUERY:
	case SERF_MSG_QUERY_RESPONSE:
		break;
	case SERF_MSG_RELAY:
		handle_relay(sl, p + 1, len - 1, now);
		return;
	default:
		sl->stats.unknown_types++;
		sl_log(sl, 2, "serf: Received message of unknown type: %d", t);
		return;
	}
	if (mp_unpack(p + 1, len - 1, &u, NULL) != SERF_OK) {
		sl->stats.decode_errors++;
		return;
	}
	switch (t) {
	case SERF_MSG_LEAVE:
	case SERF_MSG_JOIN: {
		uint64_t ltime;
		char node[WIRE_NAME_MAX + 1];
		bool prune;
		if (decode_intent(&u.data, &ltime, node, &prune) != SERF_OK) {
			sl->stats.decode_errors++;
			break;
		}
		rebroadcast = t == SERF_MSG_LEAVE
			? handle_leave_intent(sl, ltime, node, prune, now)
			: handle_join_intent(sl, ltime, node, now);
		break;
	}
	case SERF_MSG_USER_EVENT: {
		uint64_t ltime;
		struct wire_bytes name, payload;
		bool cc;
		if (decode_user_event(&u.data, &ltime, &name, &payload, &cc) != SERF_OK) {
			sl->stats.decode_errors++;
			break;
		}
		rebroadcast = handle_user_event(sl, ltime, name.p, name.len, payload.p,
						payload.len, cc);
		break;
	}
	case SERF_MSG_QUERY: {
		struct query_msg q;
		if (decode_query(&u.data, &q) != SERF_OK) {
			sl->stats.decode_errors++;
			break;
		}
		rebroadcast = handle_query(sl, &q, now);
		break;
	}
	case SERF_MSG_QUERY_RESPONSE: {
		struct query_resp_msg r;
		if (decode_query_resp(&u.data, &r) != SERF_OK) {
			sl->stats.decode_errors++;
			break;
		}
		handle_query_response(sl, &r, now);
		break;
	}
	default:
		break;
	}
	msgpack_unpacked_destroy(&u);
	if (rebroadcast)
		out_broadcast(sl, p, len);
}

/* ------------------------------------------------------------------ */
/* push-pull                                                           */

int serf_ext_state_record(struct wbuf *out, uint8_t type, const uint8_t *p, uint32_t len)
{
	uint8_t hdr[5];
	if (type < SERF_EXT_TYPE_MIN || (len && !p))
		return SERF_EINVAL;
	hdr[0] = type;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
	if (wbuf_append(out, hdr, sizeof hdr) != 0 || (len && wbuf_append(out, p, len) != 0))
		return SERF_ENOMEM;
	return SERF_OK;
}

void serf_layer_local_state(struct serf_layer *sl, bool join, struct wbuf *out)
{
	struct mpack_enc e;
	size_t n_left = 0, n_slots = 0;

	if (!sl || !out)
		return;
	for (size_t i = 0; i < sl->n_members; i++)
		n_left += sl->members[i]->m.status == VIGIL_STATUS_LEFT;
	for (int i = 0; i < sl->cfg.event_buffer; i++)
		n_slots += sl->events[i].used && sl->events[i].n > 0;

	mpack_enc_init(&e, SERF_MSG_PUSH_PULL);
	mpack_enc_map(&e, 6);
	mpack_enc_gostr(&e, "EventLTime");
	mpack_enc_u64(&e, sl->event_clock);
	/* serf sends its whole ring with nil holes; the used slots suffice. */
	mpack_enc_gostr(&e, "Events");
	mpack_enc_array(&e, n_slots);
	for (int i = 0; i < sl->cfg.event_buffer; i++) {
		const struct sl_event_slot *s = &sl->events[i];
		if (!s->used || s->n == 0)
			continue;
		mpack_enc_map(&e, 2);
		mpack_enc_gostr(&e, "Events");
		mpack_enc_array(&e, s->n);
		for (size_t j = 0; j < s->n; j++) {
			mpack_enc_map(&e, 2);
			mpack_enc_gostr(&e, "Name");
			mpack_enc_gostr(&e, s->ev[j].name);
			mpack_enc_gostr(&e, "Payload");
			mpack_enc_gobytes(&e, s->ev[j].payload, s->ev[j].len);
		}
		mpack_enc_gostr(&e, "LTime");
		mpack_enc_u64(&e, s->ltime);
	}
	mpack_enc_gostr(&e, "LTime");
	mpack_enc_u64(&e, sl->clock);
	mpack_enc_gostr(&e, "LeftMembers");
	mpack_enc_array(&e, n_left);
	for (size_t i = 0; i < sl->n_members; i++)
		if (sl->members[i]->m.status == VIGIL_STATUS_LEFT)
			mpack_enc_gostr(&e, sl->members[i]->m.name);
	mpack_enc_gostr(&e, "QueryLTime");
	mpack_enc_u64(&e, sl->query_clock);
	mpack_enc_gostr(&e, "StatusLTimes");
	mpack_enc_map(&e, sl->n_members);
	for (size_t i = 0; i < sl->n_members; i++) {
		mpack_enc_gostr(&e, sl->members[i]->m.name);
		mpack_enc_u64(&e, sl->members[i]->status_ltime);
	}
	if (!e.err)
		wbuf_append(out, e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	if (!e.err && sl->have_ext && sl->ext.local_state)
		sl->ext.local_state(sl->ext.ctx, join, out);
}

struct name_lt {
	const uint8_t *p;
	uint32_t len;
	uint64_t ltime;
};

static int name_lt_cmp(const void *a, const void *b)
{
	const struct name_lt *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = n ? memcmp(x->p, y->p, n) : 0;
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Validate the trailer of extension records; count them. */
static bool ext_trailer_ok(const uint8_t *p, size_t len)
{
	size_t off = 0;
	while (off < len) {
		uint32_t l;
		if (len - off < 5 || p[off] < SERF_EXT_TYPE_MIN)
			return false;
		l = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
		    (uint32_t)p[off + 3] << 8 | p[off + 4];
		off += 5;
		if (len - off < l)
			return false;
		off += l;
	}
	return true;
}

void serf_layer_set_join_ignore(struct serf_layer *sl, bool ignore_old)
{
	if (sl)
		sl->join_ignore_old = ignore_old;
}

void serf_layer_merge_remote_state(struct serf_layer *sl, const uint8_t *p, size_t len,
				   bool join, int64_t now)
{
	msgpack_unpacked u;
	size_t used;
	const msgpack_object_kv *kv, *skv = NULL;
	uint32_t n, n_status = 0, n_left = 0, n_events = 0;
	const msgpack_object *left = NULL, *events = NULL;
	uint64_t ltime = 0, eltime = 0, qltime = 0;
	struct name_lt *st = NULL, *lf = NULL;
	bool ok = true;

	if (!sl || !p || len == 0) {
		if (sl)
			sl_log(sl, 3, "serf: Remote state is zero bytes");
		return;
	}
	arm(sl, now);
	if (p[0] != SERF_MSG_PUSH_PULL) {
		sl->stats.decode_errors++;
		sl_log(sl, 3, "serf: Remote state has bad type prefix: %d", p[0]);
		return;
	}
	if (mp_unpack(p + 1, len - 1, &u, &used) != SERF_OK) {
		sl->stats.decode_errors++;
		return;
	}
	used += 1;

	/* Validate everything before touching state. */
	ok = u.data.type == MSGPACK_OBJECT_MAP && mpack_go_map(&u.data, &kv, &n);
	for (uint32_t i = 0; ok && i < n; i++) {
		const msgpack_object *k = &kv[i].key, *v = &kv[i].val;
		if (mpack_key_is(k, "LTime"))
			ok = mpack_go_uint(v, UINT64_MAX, &ltime);
		else if (mpack_key_is(k, "StatusLTimes"))
			ok = mpack_go_map(v, &skv, &n_status);
		else if (mpack_key_is(k, "LeftMembers"))
			ok = mpack_go_array(v, &left, &n_left);
		else if (mpack_key_is(k, "EventLTime"))
			ok = mpack_go_uint(v, UINT64_MAX, &eltime);
		else if (mpack_key_is(k, "Events"))
			ok = mpack_go_array(v, &events, &n_events);
		else if (mpack_key_is(k, "QueryLTime"))
			ok = mpack_go_uint(v, UINT64_MAX, &qltime);
	}
	if (ok && n_status) {
		st = calloc(n_status, sizeof *st);
		ok = st != NULL;
	}
	for (uint32_t i = 0; ok && i < n_status; i++) {
		struct wire_bytes b = {NULL, 0};
		ok = mp_bytes(&skv[i].key, &b) && mpack_go_uint(&skv[i].val, UINT64_MAX, &st[i].ltime);
		st[i].p = b.p;
		st[i].len = b.len;
	}
	if (ok && n_left) {
		lf = calloc(n_left, sizeof *lf);
		ok = lf != NULL;
	}
	for (uint32_t i = 0; ok && i < n_left; i++) {
		struct wire_bytes b = {NULL, 0};
		ok = mp_bytes(&left[i], &b);
		lf[i].p = b.p;
		lf[i].len = b.len;
	}
	for (uint32_t i = 0; ok && i < n_events; i++) {
		const msgpack_object_kv *ekv = NULL;
		uint32_t en = 0;
		uint64_t lt;
		const msgpack_object *evs;
		uint32_t nev;
		if (events[i].type == MSGPACK_OBJECT_NIL)
			continue;
		ok = events[i].type == MSGPACK_OBJECT_MAP && mpack_go_map(&events[i], &ekv, &en);
		for (uint32_t j = 0; ok && j < en; j++) {
			if (mpack_key_is(&ekv[j].key, "LTime")) {
				ok = mpack_go_uint(&ekv[j].val, UINT64_MAX, &lt);
			} else if (mpack_key_is(&ekv[j].key, "Events")) {
				ok = mpack_go_array(&ekv[j].val, &evs, &nev);
				for (uint32_t m = 0; ok && m < nev; m++) {
					const msgpack_object_kv *ukv = NULL;
					uint32_t un = 0;
					struct wire_bytes b = {NULL, 0};
					ok = evs[m].type == MSGPACK_OBJECT_MAP &&
					     mpack_go_map(&evs[m], &ukv, &un);
					for (uint32_t x = 0; ok && x < un; x++)
						if (mpack_key_is(&ukv[x].key, "Name") ||
						    mpack_key_is(&ukv[x].key, "Payload"))
							ok = mp_bytes(&ukv[x].val, &b);
				}
			}
		}
	}
	ok = ok && ext_trailer_ok(p + used, len - used);
	if (!ok) {
		sl->stats.decode_errors++;
		sl_log(sl, 3, "serf: Failed to decode remote state");
		goto out;
	}
	/*
	 * A joiner's first state is how it learns the cluster's clocks, however
	 * far ahead of its own; after that they are held to LTIME_AHEAD_MAX.
	 */
	bool learn_clocks = join && sl->stats.push_pull_merges == 0;
	sl->stats.push_pull_merges++;

	/*
	 * serf's eventJoinIgnore: a node that joins without -replay must not
	 * run handlers for events and queries that happened before it came;
	 * everything up to the cluster's current clocks is old news.
	 */
	if (join && sl->join_ignore_old) {
		if (eltime > sl->event_min_time)
			sl->event_min_time = eltime;
		if (qltime > sl->query_min_time)
			sl->query_min_time = qltime;
	}

	/* Witness, one below: no message at those times was sent yet. */
	if (ltime > 0 && (learn_clocks || ltime_plausible(sl, sl->clock, ltime - 1)))
		clock_witness(&sl->clock, ltime - 1);
	if (eltime > 0 && (learn_clocks || ltime_plausible(sl, sl->event_clock, eltime - 1)))
		clock_witness(&sl->event_clock, eltime - 1);
	if (qltime > 0 && (learn_clocks || ltime_plausible(sl, sl->query_clock, qltime - 1)))
		clock_witness(&sl->query_clock, qltime - 1);

	/*
	 * Left members first, at one past their status time (the leave must
	 * have been accepted after the join recorded there).  Sorted copies
	 * keep the lookups O(log n) however large the exchange.
	 */
	if (n_status)
		qsort(st, n_status, sizeof *st, name_lt_cmp);
	if (n_left)
		qsort(lf, n_left, sizeof *lf, name_lt_cmp);
	for (uint32_t i = 0; i < n_left; i++) {
		char node[WIRE_NAME_MAX + 1];
		struct name_lt *hit = n_status ? bsearch(&lf[i], st, n_status, sizeof *st,
							 name_lt_cmp) : NULL;
		if (!mpack_text_copy(lf[i].p, lf[i].len, node, sizeof node) || !node[0])
			continue;
		uint64_t lt = hit ? hit->ltime : 0;
		handle_leave_intent(sl, lt == UINT64_MAX ? lt : lt + 1, node, false, now);
	}
	for (uint32_t i = 0; i < n_status; i++) {
		char node[WIRE_NAME_MAX + 1];
		if (n_left && bsearch(&st[i], lf, n_left, sizeof *lf, name_lt_cmp))
			continue;
		if (!mpack_text_copy(st[i].p, st[i].len, node, sizeof node) || !node[0])
			continue;
		handle_join_intent(sl, st[i].ltime, node, now);
	}

	for (uint32_t i = 0; i < n_events; i++) {
		const msgpack_object_kv *ekv = NULL;
		uint32_t en = 0;
		uint64_t lt = 0;
		const msgpack_object *evs = NULL;
		uint32_t nev = 0;
		if (events[i].type == MSGPACK_OBJECT_NIL)
			continue;
		mpack_go_map(&events[i], &ekv, &en);
		for (uint32_t j = 0; j < en; j++) {
			if (mpack_key_is(&ekv[j].key, "LTime"))
				mpack_go_uint(&ekv[j].val, UINT64_MAX, &lt);
			else if (mpack_key_is(&ekv[j].key, "Events"))
				mpack_go_array(&ekv[j].val, &evs, &nev);
		}
		for (uint32_t m = 0; m < nev; m++) {
			const msgpack_object_kv *ukv = NULL;
			uint32_t un = 0;
			struct wire_bytes name = {NULL, 0}, payload = {NULL, 0};
			mpack_go_map(&evs[m], &ukv, &un);
			for (uint32_t x = 0; x < un; x++) {
				if (mpack_key_is(&ukv[x].key, "Name"))
					mp_bytes(&ukv[x].val, &name);
				else if (mpack_key_is(&ukv[x].key, "Payload"))
					mp_bytes(&ukv[x].val, &payload);
			}
			if (name.len && memchr(name.p, 0, name.len))
				continue;
			/* push-pull carries no CC flag: serf replays with false */
			handle_user_event(sl, lt, name.p, name.len, payload.p, payload.len, false);
		}
	}

	if (sl->have_ext && sl->ext.merge_state) {
		size_t off = used;
		while (off < len) {
			uint8_t t = p[off];
			uint32_t l = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
				     (uint32_t)p[off + 3] << 8 | p[off + 4];
			sl->ext.merge_state(sl->ext.ctx, t, p + off + 5, l, join, now);
			off += 5 + (size_t)l;
		}
	}
out:
	free(st);
	free(lf);
	msgpack_unpacked_destroy(&u);
}

/* ------------------------------------------------------------------ */
/* operations                                                          */

int serf_layer_broadcast_join(struct serf_layer *sl, int64_t now)
{
	if (!sl)
		return SERF_EINVAL;
	arm(sl, now);
	return broadcast_join(sl, sl->clock, now);
}

/*
 * Our own leave intent also goes straight to (up to) SL_LEAVE_NOTIFY_MAX
 * alive members.  Gossip alone is not enough: memberlist spends the
 * intent's few retransmits on random targets, recently dead members
 * included, and a member that gets our "dead" (left) message before the
 * intent records us as failed, not left.  One extra datagram per member is
 * cheap next to that; in larger clusters gossip and the intent's
 * rebroadcast by every member that applies it carry it the rest of the way.
 */
#define SL_LEAVE_NOTIFY_MAX 64
static void notify_leave_directly(struct serf_layer *sl, const uint8_t *msg, size_t len)
{
	size_t sent = 0;
	if (!sl->cfg.out.send_to)
		return;
	for (size_t i = 0; i < sl->n_members && sent < SL_LEAVE_NOTIFY_MAX; i++) {
		const struct sl_member *m = sl->members[i];
		if (m->m.status != VIGIL_STATUS_ALIVE || !m->addr.ip_len ||
		    strcmp(m->m.name, sl->cfg.name) == 0)
			continue;
		sl->cfg.out.send_to(sl->cfg.out.ctx, &m->addr, msg, len);
		sent++;
	}
}

int serf_layer_leave(struct serf_layer *sl, int64_t now)
{
	struct mpack_enc e;
	uint64_t ltime;
	int rc;

	if (!sl)
		return SERF_EINVAL;
	if (sl->state == SL_LEAVING)
		return SERF_OK;
	arm(sl, now);
	sl->state = SL_LEAVING;
	ltime = clock_tick(&sl->clock);
	handle_leave_intent(sl, ltime, sl->cfg.name, false, now);
	/* Only worth gossiping if someone else is there to hear it. */
	if (!has_alive_members(sl))
		return SERF_OK;
	rc = encode_intent(&e, SERF_MSG_LEAVE, ltime, sl->cfg.name, false);
	if (rc)
		return rc;
	out_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
	notify_leave_directly(sl, (const uint8_t *)e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	return SERF_OK;
}

int serf_layer_force_leave(struct serf_layer *sl, const char *node, bool prune, int64_t now)
{
	struct mpack_enc e;
	uint64_t ltime;
	int rc;

	if (!sl || !node || !node[0] || strlen(node) > WIRE_NAME_MAX)
		return SERF_EINVAL;
	arm(sl, now);
	ltime = clock_tick(&sl->clock);
	handle_leave_intent(sl, ltime, node, prune, now);
	if (!has_alive_members(sl))
		return SERF_OK;
	rc = encode_intent(&e, SERF_MSG_LEAVE, ltime, node, prune);
	if (rc)
		return rc;
	out_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	return SERF_OK;
}

int serf_layer_set_tags(struct serf_layer *sl, const struct vigil_tag *tags, size_t n)
{
	uint8_t meta[WIRE_META_MAX];
	struct vigil_tag *t;
	size_t nt;
	int len, rc;

	if (!sl || (n && !tags))
		return SERF_EINVAL;
	rc = tags_copy(tags, n, &t, &nt);
	if (rc)
		return rc;
	len = serf_encode_tags(t, nt, sl->cfg.protocol_version, meta, sizeof meta);
	if (len < 0) {
		serf_tags_free(t, nt);
		return len;
	}
	serf_tags_free(sl->tags, sl->n_tags);
	sl->tags = t;
	sl->n_tags = nt;
	if (sl->cfg.out.set_meta)
		sl->cfg.out.set_meta(sl->cfg.out.ctx, meta, (size_t)len);
	return SERF_OK;
}

const struct vigil_tag *serf_layer_tags(const struct serf_layer *sl, size_t *n)
{
	*n = sl->n_tags;
	return sl->tags;
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

static void reconnect(struct serf_layer *sl)
{
	size_t failed = 0, left = 0, alive, pick;

	if (!sl->cfg.out.reconnect)
		return;
	for (size_t i = 0; i < sl->n_members; i++) {
		failed += sl->members[i]->m.status == VIGIL_STATUS_FAILED;
		left += sl->members[i]->m.status == VIGIL_STATUS_LEFT;
	}
	if (failed == 0)
		return;
	/* Expect one reconnect attempt per failed member per interval. */
	alive = sl->n_members - failed - left;
	if (alive == 0)
		alive = 1;
	if ((double)(sl_rand(sl) >> 11) / 9007199254740992.0 > (double)failed / (double)alive)
		return;
	pick = sl_rand(sl) % failed;
	for (size_t i = 0; i < sl->n_members; i++) {
		struct sl_member *m = sl->members[i];
		if (m->m.status != VIGIL_STATUS_FAILED)
			continue;
		if (pick-- == 0) {
			sl_log(sl, 1, "serf: attempting reconnect to %s %s:%u", m->m.name,
			       m->m.addr, m->m.port);
			sl->cfg.out.reconnect(sl->cfg.out.ctx, m->m.name, &m->addr);
			return;
		}
	}
}

static void reap(struct serf_layer *sl, int64_t now)
{
	for (size_t i = 0; i < sl->n_members;) {
		struct sl_member *m = sl->members[i];
		int64_t limit = m->m.status == VIGIL_STATUS_FAILED ? sl->cfg.reconnect_timeout_ms
			      : m->m.status == VIGIL_STATUS_LEFT ? sl->cfg.tombstone_timeout_ms
			      : -1;
		if (limit >= 0 && now - m->leave_time > limit) {
			sl_log(sl, 1, "serf: EventMemberReap: %s", m->m.name);
			member_erase(sl, m->m.name);
			continue;
		}
		i++;
	}
	size_t o = 0;
	for (size_t i = 0; i < sl->n_intents; i++)
		if (now - sl->intents[i].wall <= sl->cfg.recent_intent_timeout_ms)
			sl->intents[o++] = sl->intents[i];
	sl->n_intents = o;
}

void serf_layer_tick(struct serf_layer *sl, int64_t now)
{
	if (!sl)
		return;
	arm(sl, now);
	/* Forced prunes of members that were still leaving. */
	for (size_t i = 0; i < sl->n_members;) {
		struct sl_member *m = sl->members[i];
		if (m->prune_at && now >= m->prune_at) {
			sl_log(sl, 1, "serf: EventMemberReap (forced): %s %s", m->m.name, m->m.addr);
			member_erase(sl, m->m.name);
			continue;
		}
		i++;
	}
	if (now >= sl->next_reap) {
		reap(sl, now);
		sl->next_reap = now + sl->cfg.reap_interval_ms;
	}
	if (now >= sl->next_reconnect) {
		reconnect(sl);
		sl->next_reconnect = now + sl->cfg.reconnect_interval_ms;
	}
	/* Close our queries whose time is up (one at a time: callbacks may
	 * start new queries and move the array). */
	for (size_t i = 0; i < sl->n_myq;) {
		if (now > sl->myq[i].deadline) {
			struct sl_myquery q = sl->myq[i];
			struct vigil_event ev;
			memmove(&sl->myq[i], &sl->myq[i + 1], (sl->n_myq - i - 1) * sizeof *sl->myq);
			sl->n_myq--;
			memset(&ev, 0, sizeof ev);
			ev.type = VIGIL_EV_QUERY_DONE;
			myq_emit(sl, &q, &ev);
			myquery_free(&q);
			continue;
		}
		i++;
	}
	for (size_t i = 0; i < sl->n_inq;) {
		if (now > sl->inq[i].deadline) {
			inq_remove(sl, i);
			continue;
		}
		i++;
	}
}

int64_t serf_layer_next_deadline(const struct serf_layer *sl)
{
	int64_t d = INT64_MAX;

	if (!sl || !sl->armed)
		return INT64_MAX;
	d = sl->next_reap < sl->next_reconnect ? sl->next_reap : sl->next_reconnect;
	for (size_t i = 0; i < sl->n_members; i++)
		if (sl->members[i]->prune_at && sl->members[i]->prune_at < d)
			d = sl->members[i]->prune_at;
	/* "Past the deadline" means strictly after it, hence the +1. */
	for (size_t i = 0; i < sl->n_myq; i++)
		if (sl->myq[i].deadline + 1 < d)
			d = sl->myq[i].deadline + 1;
	for (size_t i = 0; i < sl->n_inq; i++)
		if (sl->inq[i].deadline + 1 < d)
			d = sl->inq[i].deadline + 1;
	return d;
}

/* ------------------------------------------------------------------ */
/* members, extensions, introspection                                  */

enum vigil_status serf_layer_member_status(const struct serf_layer *sl, const char *name)
{
	const struct sl_member *m;
	if (!sl || !name)
		return VIGIL_STATUS_NONE;
	m = member_find(sl, name);
	return m ? m->m.status : VIGIL_STATUS_NONE;
}

size_t serf_layer_member_count(const struct serf_layer *sl)
{
	return sl ? sl->n_members : 0;
}

void serf_layer_members_free(struct vigil_member *m, size_t n)
{
	if (!m)
		return;
	for (size_t i = 0; i < n; i++)
		serf_tags_free(m[i].tags, m[i].n_tags);
	free(m);
}

int serf_layer_members(const struct serf_layer *sl, struct vigil_member **out, size_t *n)
{
	struct vigil_member *v;

	if (!sl || !out || !n)
		return SERF_EINVAL;
	*out = NULL;
	*n = 0;
	v = calloc(sl->n_members ? sl->n_members : 1, sizeof *v);
	if (!v)
		return SERF_ENOMEM;
	for (size_t i = 0; i < sl->n_members; i++) {
		const struct vigil_member *src = &sl->members[i]->m;
		v[i] = *src;
		v[i].tags = NULL;
		v[i].n_tags = 0;
		if (tags_copy(src->tags, src->n_tags, &v[i].tags, &v[i].n_tags) != SERF_OK) {
			serf_layer_members_free(v, i);
			return SERF_ENOMEM;
		}
	}
	*out = v;
	*n = sl->n_members;
	return SERF_OK;
}

void serf_layer_set_extension(struct serf_layer *sl, const struct serf_extension *ext)
{
	if (!sl)
		return;
	if (ext) {
		sl->ext = *ext;
		sl->have_ext = true;
	} else {
		memset(&sl->ext, 0, sizeof sl->ext);
		sl->have_ext = false;
	}
}

int serf_layer_ext_broadcast(struct serf_layer *sl, const uint8_t *msg, size_t len)
{
	if (!sl || !msg || len == 0 || msg[0] < SERF_EXT_TYPE_MIN)
		return SERF_EINVAL;
	out_broadcast(sl, msg, len);
	return SERF_OK;
}

int serf_layer_ext_send(struct serf_layer *sl, const struct wire_addr *to,
			const uint8_t *msg, size_t len)
{
	if (!sl || !to || !msg || len == 0 || msg[0] < SERF_EXT_TYPE_MIN)
		return SERF_EINVAL;
	if (sl->cfg.out.send_to)
		sl->cfg.out.send_to(sl->cfg.out.ctx, to, msg, len);
	return SERF_OK;
}

const struct serf_stats *serf_layer_stats(const struct serf_layer *sl)
{
	return &sl->stats;
}

void serf_layer_clocks(const struct serf_layer *sl, uint64_t *member, uint64_t *event,
		       uint64_t *query)
{
	if (member)
		*member = sl->clock;
	if (event)
		*event = sl->event_clock;
	if (query)
		*query = sl->query_clock;
}

void serf_layer_restore_clocks(struct serf_layer *sl, uint64_t member, uint64_t event,
			       uint64_t query)
{
	if (!sl)
		return;
	/* serf.Create: eventMinTime = oldEventClock + 1 (likewise queries),
	 * then clock.Witness(old) for all three */
	uint64_t emin = event == UINT64_MAX ? event : event + 1;
	uint64_t qmin = query == UINT64_MAX ? query : query + 1;
	if (emin > sl->event_min_time)
		sl->event_min_time = emin;
	if (qmin > sl->query_min_time)
		sl->query_min_time = qmin;
	clock_witness(&sl->clock, member);
	clock_witness(&sl->event_clock, event);
	clock_witness(&sl->query_clock, query);
}

bool serf_layer_is_leaving(const struct serf_layer *sl)
{
	return sl && sl->state == SL_LEAVING;
}
