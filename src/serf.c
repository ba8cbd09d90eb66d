/*
 * serf.c — the Serf gossip layer (see serf.h): its core — Lamport clocks,
 * the member table and join/leave intents, user events, push-pull, timers.
 * Queries are in serf_query.c, the encoding of serf's other messages and of
 * tags in serf_codec.c; serf_internal.h holds what they share.
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
#include "serf_internal.h"
#include "logline.h"
#include "mpack.h"
#include "grow.h"
#include "sorted.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

__attribute__((format(printf, 3, 4)))
void sl_log(const struct serf_layer *sl, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logline_vemit(sl->cfg.out.log, sl->cfg.out.ctx, NULL, 0, 384, level, fmt, ap);
	va_end(ap);
}

uint64_t sl_rand(struct serf_layer *sl)
{
	/* splitmix64: deterministic under the simulator's seed. */
	uint64_t z = (sl->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* LamportClock.Witness: make sure we are at least one past v. */
void sl_clock_witness(uint64_t *c, uint64_t v)
{
	if (v < *c)
		return;
	*c = v == UINT64_MAX ? v : v + 1;
}

/* LamportClock.Increment: the current time, then one more; never wraps. */
uint64_t sl_clock_tick(uint64_t *c)
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

bool sl_ltime_plausible(struct serf_layer *sl, uint64_t clock, uint64_t ltime)
{
	if (ltime <= clock || ltime - clock <= LTIME_AHEAD_MAX)
		return true;
	sl->stats.ltime_refused++;
	sl_log(sl, 0, "serf: refused Lamport time %" PRIu64 " (ours: %" PRIu64 ")", ltime, clock);
	return false;
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

/* ------------------------------------------------------------------ */
/* msgpack: bounds pre-check, decoding views, encoding                 */

/*
 * Unpack one msgpack value from p; *used gets its length.  On failure u is
 * left destroyed; on success the caller destroys it.
 */
int sl_unpack(const uint8_t *p, size_t len, msgpack_unpacked *u, size_t *used)
{
	msgpack_unpacked_init(u);
	int rc = wire_msgpack_unpack(p, len, SIZE_MAX, u, used);
	if (rc == WIRE_OK)
		return SERF_OK;
	msgpack_unpacked_destroy(u);
	return rc == WIRE_ENOMEM ? SERF_ENOMEM : SERF_EFORMAT;
}

/* ------------------------------------------------------------------ */
/* member table (sorted by name for bsearch)                           */

static const char *member_name_at(const void *table, size_t i)
{
	const struct serf_layer *sl = table;
	return sl->members[i]->m.name;
}

static size_t member_pos(const struct serf_layer *sl, const char *name, bool *found)
{
	return sorted_name_pos(sl, sl->n_members, member_name_at, name, found);
}

struct sl_member *sl_member_find(const struct serf_layer *sl, const char *name)
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
	struct sl_member **nv = array_grow(sl->members, &sl->cap_members, sl->n_members + 1,
					   sizeof *nv, 16);
	if (!nv)
		return NULL;
	sl->members = nv;
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

void sl_emit(struct serf_layer *sl, const struct vigil_event *ev)
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
	sl_emit(sl, &ev);
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

static const char *intent_name_at(const void *table, size_t i)
{
	const struct serf_layer *sl = table;
	return sl->intents[i].name;
}

static size_t intent_pos(const struct serf_layer *sl, const char *name, bool *found)
{
	return sorted_name_pos(sl, sl->n_intents, intent_name_at, name, found);
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
		struct sl_intent *nv = array_grow(sl->intents, &sl->cap_intents, sl->n_intents + 1,
						  sizeof *nv, 16);
		if (!nv)
			return false;
		sl->intents = nv;
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
	sl->next_prune = INT64_MAX;
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
	    serf_tags_copy(cfg->tags, cfg->n_tags, &sl->tags, &sl->n_tags) != SERF_OK ||
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
	serf_query_free_all(sl);
	serf_tags_free(sl->tags, sl->n_tags);
	free(sl);
}

void sl_arm(struct serf_layer *sl, int64_t now)
{
	if (sl->armed)
		return;
	sl->armed = true;
	sl->next_reap = now + sl->cfg.reap_interval_ms;
	sl->next_reconnect = now + sl->cfg.reconnect_interval_ms;
}

/* ------------------------------------------------------------------ */
/* outbound helpers                                                    */

void sl_broadcast(struct serf_layer *sl, const uint8_t *p, size_t len)
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

/* ------------------------------------------------------------------ */
/* intents                                                             */

static bool handle_join_intent(struct serf_layer *sl, uint64_t ltime, const char *node,
			       int64_t now);

static int broadcast_join(struct serf_layer *sl, uint64_t ltime, int64_t now)
{
	struct mpack_enc e;
	int rc;

	sl_clock_witness(&sl->clock, ltime);
	handle_join_intent(sl, ltime, sl->cfg.name, now);
	rc = serf_encode_intent(&e, SERF_MSG_JOIN, ltime, sl->cfg.name, false);
	if (rc)
		return rc;
	sl_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
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
		if (m->prune_at < sl->next_prune)
			sl->next_prune = m->prune_at;
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

	if (!sl_ltime_plausible(sl, sl->clock, ltime))
		return false;
	sl_clock_witness(&sl->clock, ltime);
	m = sl_member_find(sl, node);
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

	if (!sl_ltime_plausible(sl, sl->clock, ltime))
		return false;
	sl_clock_witness(&sl->clock, ltime);
	m = sl_member_find(sl, node);
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
	struct sl_member *m = sl_member_find(sl, n->name);

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
	struct sl_member *m = sl_member_find(sl, n->name);

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
	struct sl_member *m = sl_member_find(sl, n->name);

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
	sl_arm(sl, now);
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
		sm = sl_member_find(sl, m->name);
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

	if (!sl_ltime_plausible(sl, sl->event_clock, ltime))
		return false;
	sl_clock_witness(&sl->event_clock, ltime);
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
	sl_emit(sl, &ev);
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
	sl_arm(sl, now);
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
	sl_clock_tick(&sl->event_clock);
	handle_user_event(sl, ltime, (const uint8_t *)name, nlen, payload, len, coalesce);
	sl_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	return SERF_OK;
}

/* ------------------------------------------------------------------ */
/* incoming user messages                                              */

void serf_layer_on_user_msg(struct serf_layer *sl, const uint8_t *p, size_t len, int64_t now)
{
	msgpack_unpacked u;
	bool rebroadcast = false;
	uint8_t t;

	if (!sl || !p || len == 0)
		return;
	sl_arm(sl, now);
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
		serf_query_on_relay(sl, p + 1, len - 1, now);
		return;
	default:
		sl->stats.unknown_types++;
		sl_log(sl, 2, "serf: Received message of unknown type: %d", t);
		return;
	}
	if (sl_unpack(p + 1, len - 1, &u, NULL) != SERF_OK) {
		sl->stats.decode_errors++;
		return;
	}
	switch (t) {
	case SERF_MSG_LEAVE:
	case SERF_MSG_JOIN: {
		uint64_t ltime;
		char node[WIRE_NAME_MAX + 1];
		bool prune;
		if (serf_decode_intent(&u.data, &ltime, node, &prune) != SERF_OK) {
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
		if (serf_decode_user_event(&u.data, &ltime, &name, &payload, &cc) != SERF_OK) {
			sl->stats.decode_errors++;
			break;
		}
		rebroadcast = handle_user_event(sl, ltime, name.p, name.len, payload.p,
						payload.len, cc);
		break;
	}
	case SERF_MSG_QUERY: {
		rebroadcast = serf_query_on_msg(sl, &u.data, now);
		break;
	}
	case SERF_MSG_QUERY_RESPONSE: {
		serf_query_on_response(sl, &u.data, now);
		break;
	}
	default:
		break;
	}
	msgpack_unpacked_destroy(&u);
	if (rebroadcast)
		sl_broadcast(sl, p, len);
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

/* A remote messagePushPull, validated: views into its unpacked msgpack,
 * with sorted copies of its member names (st, lf: freed by the caller). */
struct pushpull {
	uint64_t ltime, eltime, qltime;
	const msgpack_object *events;
	uint32_t n_status, n_left, n_events;
	struct name_lt *st;  /* StatusLTimes */
	struct name_lt *lf;  /* LeftMembers */
};

/* The user events of Events ([]*userEvents, nil entries skipped): shape only. */
static bool pp_events_ok(const msgpack_object *events, uint32_t n_events)
{
	bool ok = true;
	for (uint32_t i = 0; ok && i < n_events; i++) {
		const msgpack_object_kv *ekv = NULL;
		uint32_t en = 0;
		uint64_t lt;
		const msgpack_object *evs;
		uint32_t nev;
		if (events[i].type == MSGPACK_OBJECT_NIL)
			continue;
		ok = mpack_map(&events[i], &ekv, &en);
		for (uint32_t j = 0; ok && j < en; j++) {
			if (mpack_key_is(&ekv[j].key, "LTime")) {
				ok = mpack_go_uint(&ekv[j].val, UINT64_MAX, &lt);
			} else if (mpack_key_is(&ekv[j].key, "Events")) {
				ok = mpack_go_array(&ekv[j].val, &evs, &nev);
				for (uint32_t m = 0; ok && m < nev; m++) {
					const msgpack_object_kv *ukv = NULL;
					uint32_t un = 0;
					struct wire_bytes b = {NULL, 0};
					ok = mpack_map(&evs[m], &ukv, &un);
					for (uint32_t x = 0; ok && x < un; x++)
						if (mpack_key_is(&ukv[x].key, "Name") ||
						    mpack_key_is(&ukv[x].key, "Payload"))
							ok = mp_bytes(&ukv[x].val, &b);
				}
			}
		}
	}
	return ok;
}

/* Validate a push-pull body o into pp; false: malformed or out of memory. */
static bool pp_decode(const msgpack_object *o, struct pushpull *pp)
{
	const msgpack_object_kv *kv, *skv = NULL;
	const msgpack_object *left = NULL;
	uint32_t n;
	bool ok = mpack_map(o, &kv, &n);
	for (uint32_t i = 0; ok && i < n; i++) {
		const msgpack_object *k = &kv[i].key, *v = &kv[i].val;
		if (mpack_key_is(k, "LTime"))
			ok = mpack_go_uint(v, UINT64_MAX, &pp->ltime);
		else if (mpack_key_is(k, "StatusLTimes"))
			ok = mpack_go_map(v, &skv, &pp->n_status);
		else if (mpack_key_is(k, "LeftMembers"))
			ok = mpack_go_array(v, &left, &pp->n_left);
		else if (mpack_key_is(k, "EventLTime"))
			ok = mpack_go_uint(v, UINT64_MAX, &pp->eltime);
		else if (mpack_key_is(k, "Events"))
			ok = mpack_go_array(v, &pp->events, &pp->n_events);
		else if (mpack_key_is(k, "QueryLTime"))
			ok = mpack_go_uint(v, UINT64_MAX, &pp->qltime);
	}
	if (ok && pp->n_status) {
		pp->st = calloc(pp->n_status, sizeof *pp->st);
		ok = pp->st != NULL;
	}
	for (uint32_t i = 0; ok && i < pp->n_status; i++) {
		struct wire_bytes b = {NULL, 0};
		ok = mp_bytes(&skv[i].key, &b) &&
		     mpack_go_uint(&skv[i].val, UINT64_MAX, &pp->st[i].ltime);
		pp->st[i].p = b.p;
		pp->st[i].len = b.len;
	}
	if (ok && pp->n_left) {
		pp->lf = calloc(pp->n_left, sizeof *pp->lf);
		ok = pp->lf != NULL;
	}
	for (uint32_t i = 0; ok && i < pp->n_left; i++) {
		struct wire_bytes b = {NULL, 0};
		ok = mp_bytes(&left[i], &b);
		pp->lf[i].p = b.p;
		pp->lf[i].len = b.len;
	}
	return ok && pp_events_ok(pp->events, pp->n_events);
}

/* The remote clocks, witnessed (and, joining without -replay, the
 * horizon below which events and queries are old news). */
static void pp_witness_clocks(struct serf_layer *sl, const struct pushpull *pp, bool join)
{
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
		if (pp->eltime > sl->event_min_time)
			sl->event_min_time = pp->eltime;
		if (pp->qltime > sl->query_min_time)
			sl->query_min_time = pp->qltime;
	}

	/* Witness, one below: no message at those times was sent yet. */
	if (pp->ltime > 0 && (learn_clocks || sl_ltime_plausible(sl, sl->clock, pp->ltime - 1)))
		sl_clock_witness(&sl->clock, pp->ltime - 1);
	if (pp->eltime > 0 &&
	    (learn_clocks || sl_ltime_plausible(sl, sl->event_clock, pp->eltime - 1)))
		sl_clock_witness(&sl->event_clock, pp->eltime - 1);
	if (pp->qltime > 0 &&
	    (learn_clocks || sl_ltime_plausible(sl, sl->query_clock, pp->qltime - 1)))
		sl_clock_witness(&sl->query_clock, pp->qltime - 1);
}

/* The remote member intents: leaves, then joins. */
static void pp_apply_members(struct serf_layer *sl, struct pushpull *pp, int64_t now)
{
	struct name_lt *st = pp->st, *lf = pp->lf;
	uint32_t n_status = pp->n_status, n_left = pp->n_left;
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
}

/* The remote's recent user events, replayed (pp_events_ok checked them). */
static void pp_replay_events(struct serf_layer *sl, const struct pushpull *pp)
{
	const msgpack_object *events = pp->events;
	for (uint32_t i = 0; i < pp->n_events; i++) {
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
}

/* The extension records after the push-pull body (ext_trailer_ok checked). */
static void pp_merge_extensions(struct serf_layer *sl, const uint8_t *p, size_t off,
				size_t len, bool join, int64_t now)
{
	if (!sl->have_ext || !sl->ext.merge_state)
		return;
	while (off < len) {
		uint8_t t = p[off];
		uint32_t l = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
			     (uint32_t)p[off + 3] << 8 | p[off + 4];
		sl->ext.merge_state(sl->ext.ctx, t, p + off + 5, l, join, now);
		off += 5 + (size_t)l;
	}
}

void serf_layer_merge_remote_state(struct serf_layer *sl, const uint8_t *p, size_t len,
				   bool join, int64_t now)
{
	msgpack_unpacked u;
	size_t used;
	struct pushpull pp = {0};

	if (!sl || !p || len == 0) {
		if (sl)
			sl_log(sl, 3, "serf: Remote state is zero bytes");
		return;
	}
	sl_arm(sl, now);
	if (p[0] != SERF_MSG_PUSH_PULL) {
		sl->stats.decode_errors++;
		sl_log(sl, 3, "serf: Remote state has bad type prefix: %d", p[0]);
		return;
	}
	if (sl_unpack(p + 1, len - 1, &u, &used) != SERF_OK) {
		sl->stats.decode_errors++;
		return;
	}
	used += 1;

	/* Validate everything before touching state. */
	if (!pp_decode(&u.data, &pp) || !ext_trailer_ok(p + used, len - used)) {
		sl->stats.decode_errors++;
		sl_log(sl, 3, "serf: Failed to decode remote state");
	} else {
		pp_witness_clocks(sl, &pp, join);
		pp_apply_members(sl, &pp, now);
		pp_replay_events(sl, &pp);
		pp_merge_extensions(sl, p, used, len, join, now);
	}
	free(pp.st);
	free(pp.lf);
	msgpack_unpacked_destroy(&u);
}

/* ------------------------------------------------------------------ */
/* operations                                                          */

int serf_layer_broadcast_join(struct serf_layer *sl, int64_t now)
{
	if (!sl)
		return SERF_EINVAL;
	sl_arm(sl, now);
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
	sl_arm(sl, now);
	sl->state = SL_LEAVING;
	ltime = sl_clock_tick(&sl->clock);
	handle_leave_intent(sl, ltime, sl->cfg.name, false, now);
	/* Only worth gossiping if someone else is there to hear it. */
	if (!has_alive_members(sl))
		return SERF_OK;
	rc = serf_encode_intent(&e, SERF_MSG_LEAVE, ltime, sl->cfg.name, false);
	if (rc)
		return rc;
	sl_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
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
	sl_arm(sl, now);
	ltime = sl_clock_tick(&sl->clock);
	handle_leave_intent(sl, ltime, node, prune, now);
	if (!has_alive_members(sl))
		return SERF_OK;
	rc = serf_encode_intent(&e, SERF_MSG_LEAVE, ltime, node, prune);
	if (rc)
		return rc;
	sl_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
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
	rc = serf_tags_copy(tags, n, &t, &nt);
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
	sl_arm(sl, now);
	/* Forced prunes of members that were still leaving. */
	if (now >= sl->next_prune) {
		sl->next_prune = INT64_MAX;
		for (size_t i = 0; i < sl->n_members;) {
			struct sl_member *m = sl->members[i];
			if (m->prune_at && now >= m->prune_at) {
				sl_log(sl, 1, "serf: EventMemberReap (forced): %s %s", m->m.name,
				       m->m.addr);
				member_erase(sl, m->m.name);
				continue;
			}
			if (m->prune_at && m->prune_at < sl->next_prune)
				sl->next_prune = m->prune_at;
			i++;
		}
	}
	if (now >= sl->next_reap) {
		reap(sl, now);
		sl->next_reap = now + sl->cfg.reap_interval_ms;
	}
	if (now >= sl->next_reconnect) {
		reconnect(sl);
		sl->next_reconnect = now + sl->cfg.reconnect_interval_ms;
	}
	serf_query_expire(sl, now);
}

int64_t serf_layer_next_deadline(const struct serf_layer *sl)
{
	int64_t d = INT64_MAX;

	if (!sl || !sl->armed)
		return INT64_MAX;
	d = sl->next_reap < sl->next_reconnect ? sl->next_reap : sl->next_reconnect;
	if (sl->next_prune < d)
		d = sl->next_prune;
	return serf_query_next_deadline(sl, d);
}

/* ------------------------------------------------------------------ */
/* members, extensions, introspection                                  */

enum vigil_status serf_layer_member_status(const struct serf_layer *sl, const char *name)
{
	const struct sl_member *m;
	if (!sl || !name)
		return VIGIL_STATUS_NONE;
	m = sl_member_find(sl, name);
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
		if (serf_tags_copy(src->tags, src->n_tags, &v[i].tags, &v[i].n_tags) != SERF_OK) {
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
	sl_broadcast(sl, msg, len);
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
	sl_clock_witness(&sl->clock, member);
	sl_clock_witness(&sl->event_clock, event);
	sl_clock_witness(&sl->query_clock, query);
}

bool serf_layer_is_leaving(const struct serf_layer *sl)
{
	return sl && sl->state == SL_LEAVING;
}
