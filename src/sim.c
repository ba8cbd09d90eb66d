/*
 * sim.c — deterministic network simulator for swim (see sim.h).
 *
 * One binary heap holds every future event.  Entries are ordered by
 * (virtual time, insertion sequence), so simultaneous events run in the
 * order they were scheduled and a run depends only on the seed and the
 * calls made.  The simulator never calls into a swim from inside one of
 * that swim's hooks: hooks only enqueue, which is also what the real
 * transport promises (transport.h), so swim sees the same re-entrancy rules
 * here as in production.
 *
 * Node timers use lazy invalidation: after every call into a node we ask
 * swim_next_deadline and, if it differs from the deadline already armed,
 * push a new timer entry and remember it in node->armed.  A popped timer
 * entry whose time is not node->armed is stale and skipped.  That keeps each
 * event O(log heap) with no per-event scan over the nodes, which is what lets
 * 10,000 nodes share one queue.
 */
#include "sim.h"
#include "coordinate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_PORT 7946
#define ARMED_NONE INT64_MAX
/* Datagram buffers at most this big are recycled through a free list. */
#define PKT_POOL_CAP 2048
/* A node whose deadline stays at `now` after this many ticks is stuck. */
#define STUCK_TICKS 64

enum ev_kind {
	EV_TIMER,          /* node: swim_tick if still armed for this time */
	EV_PACKET,         /* node: receiver; p: struct pkt */
	EV_STREAM_REQ,     /* node: stream target; p: struct strm */
	EV_STREAM_REPLY,   /* node: requester; p: struct strm (failed if !ok) */
	EV_STREAM_TIMEOUT, /* node: requester; p: struct strm */
	EV_UNREACHABLE,    /* node: sender of a datagram to a crashed process; p: (intptr_t) its node */
};

struct qent {
	int64_t t;
	uint64_t seq;
	uint32_t kind;
	int32_t node;
	void *p;
};

struct pkt {
	struct pkt *next; /* free list link */
	int32_t from, to;
	uint32_t len, cap;
	uint8_t data[];
};

/*
 * One stream exchange.  It is referenced by up to two queued events (the
 * request-then-reply leg and the requester's timeout); whichever reaches
 * the requester first settles it (done) and the other is then ignored.
 */
struct strm {
	int32_t from, to;
	uint32_t from_gen;
	uint64_t cookie;
	int refs;
	bool done;
	bool ok;          /* the reply leg carries an answer (else: failure) */
	uint8_t *req;     /* request bytes until the target handles them */
	size_t req_len;
	struct wbuf reply;
};

struct sim_node {
	/* Touched on every event: kept together in the first cache line. */
	struct sim *sim;
	struct swim *sw;         /* NULL while DOWN */
	int idx;
	enum sim_node_status status;
	uint32_t gen;            /* bumped on crash: stale stream legs are dropped */
	int group;
	int64_t armed;           /* time of the live timer entry, or ARMED_NONE */
	int64_t last_tick;       /* to spot a deadline that never advances */
	int same_ticks;
	bool exit_on_leave;
	bool dying;              /* inside swim_free: ignore hooks */
	int join_result;
	int slow_ms;             /* sim_set_slow: extra arrival delay, 0..slow_ms */
	int link_ms;             /* sim_set_node_latency: one-way delay added to its links */
	struct coord_client *coords; /* sim_enable_coordinates, else NULL */
	int64_t paused_at;
	struct qent *queue;      /* arrivals while paused, in arrival order */
	size_t qlen, qcap, qbytes;
	struct swim_hooks hooks; /* ctx = this node */
	struct swim_config cfg;  /* name, addr and seed filled in by us */
};

struct sim {
	uint64_t seed;
	uint64_t rng;
	int64_t now;
	uint64_t seq;

	struct qent *heap;
	size_t hlen, hcap;

	struct sim_node **nodes;
	int n_nodes, nodes_cap;
	int *names;              /* open addressing: node index or -1 */
	size_t names_cap;

	struct swim_config defcfg;
	int lat_min, lat_max;
	double loss;
	uint64_t loss_threshold; /* loss as a 64-bit fraction, for integer compare */
	int stream_timeout;
	bool refuse_when_down;
	bool coords_on;          /* sim_enable_coordinates */
	size_t sockbuf;

	uint64_t *cut;           /* sorted (from << 32 | to) of cut links */
	size_t n_cut, cut_cap;

	struct pkt *pool;        /* free PKT_POOL_CAP datagram buffers */

	bool record;
	struct sim_event *log;
	size_t log_len, log_cap;
	sim_member_fn member_cb;
	void *member_ctx;
	sim_log_fn log_fn;
	void *log_ctx;
	sim_tap_fn tap_fn;
	void *tap_ctx;
	int log_min;

	uint64_t trace;
	struct sim_stats stats;
};

/* ---- randomness and hashing ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct sim *s)
{
	return splitmix64(&s->rng);
}

static void trace_mix(struct sim *s, uint64_t v)
{
	uint64_t h = (s->trace ^ v) * 0x100000001B3ull;
	s->trace = h ^ (h >> 29);
}

/*
 * Every delivered byte goes through here, so it hashes four words at a
 * time in four independent chains (each step waits for a multiply; four
 * chains keep the multiplier busy), folded together at the end.
 */
static uint64_t trace_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9E3779B97F4A7C15ull;
	return h ^ (h >> 32);
}

static void trace_bytes(struct sim *s, const uint8_t *p, size_t n)
{
	uint64_t h[4] = { s->trace ^ n, ~s->trace, s->trace + n, s->trace ^ 0x5851F42D4C957F2Dull };
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		uint64_t w[4];
		memcpy(w, p + i, 32);
		for (int l = 0; l < 4; l++)
			h[l] = trace_step(h[l], w[l]);
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h[0] = trace_step(h[0], w);
	}
	uint64_t tail = 0;
	memcpy(&tail, p + i, n - i);
	uint64_t x = trace_step(h[0], tail);
	for (int l = 1; l < 4; l++)
		x = trace_step(x, h[l]);
	s->trace = x ^ (x >> 31);
}

/* ---- the event heap ---- */

static bool qless(const struct qent *a, const struct qent *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(struct sim *s, int64_t t, uint32_t kind, int node, void *p)
{
	if (s->hlen == s->hcap) {
		size_t cap = s->hcap ? s->hcap * 2 : 1024;
		struct qent *h = realloc(s->heap, cap * sizeof *h);
		if (!h) {
			/* Out of memory mid-run: nothing sane to do in a test tool. */
			fprintf(stderr, "sim: out of memory (event heap)\n");
			abort();
		}
		s->heap = h;
		s->hcap = cap;
	}
	struct qent e = { .t = t, .seq = s->seq++, .kind = kind, .node = node, .p = p };
	size_t i = s->hlen++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!qless(&e, &s->heap[parent]))
			break;
		s->heap[i] = s->heap[parent];
		i = parent;
	}
	s->heap[i] = e;
}

static struct qent heap_pop(struct sim *s)
{
	struct qent top = s->heap[0];
	struct qent last = s->heap[--s->hlen];
	size_t n = s->hlen, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && qless(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!qless(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n > 0)
		s->heap[i] = last;
	return top;
}

/* ---- buffers ---- */

static struct pkt *pkt_new(struct sim *s, size_t len)
{
	struct pkt *p;
	if (len <= PKT_POOL_CAP && s->pool) {
		p = s->pool;
		s->pool = p->next;
	} else {
		size_t cap = len <= PKT_POOL_CAP ? PKT_POOL_CAP : len;
		p = malloc(sizeof *p + cap);
		if (!p) {
			fprintf(stderr, "sim: out of memory (packet)\n");
			abort();
		}
		p->cap = (uint32_t)cap;
	}
	p->len = (uint32_t)len;
	return p;
}

static void pkt_free(struct sim *s, struct pkt *p)
{
	if (p->cap == PKT_POOL_CAP) {
		p->next = s->pool;
		s->pool = p;
	} else {
		free(p);
	}
}

static void strm_release(struct strm *st)
{
	if (--st->refs > 0)
		return;
	free(st->req);
	wbuf_free(&st->reply);
	free(st);
}

/* Drop a queued event without running it, releasing what it holds. */
static void qent_discard(struct sim *s, const struct qent *e)
{
	switch (e->kind) {
	case EV_PACKET:
		pkt_free(s, e->p);
		break;
	case EV_STREAM_REQ:
	case EV_STREAM_REPLY:
	case EV_STREAM_TIMEOUT:
		strm_release(e->p);
		break;
	default:
		break;
	}
}

/* ---- addresses and names ---- */

static void node_addr(int idx, struct wire_addr *a)
{
	uint32_t v = (uint32_t)idx + 1;
	memset(a, 0, sizeof *a);
	a->ip[0] = 10;
	a->ip[1] = (uint8_t)(v >> 16);
	a->ip[2] = (uint8_t)(v >> 8);
	a->ip[3] = (uint8_t)v;
	a->ip_len = 4;
	a->port = SIM_PORT;
}

static int addr_node(const struct sim *s, const struct wire_addr *a)
{
	if (a->ip_len != 4 || a->ip[0] != 10 || a->port != SIM_PORT)
		return -1;
	long v = ((long)a->ip[1] << 16 | (long)a->ip[2] << 8 | a->ip[3]) - 1;
	return v >= 0 && v < s->n_nodes ? (int)v : -1;
}

static uint64_t name_hash(const char *name)
{
	uint64_t h = 0xCBF29CE484222325ull;
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 0x100000001B3ull;
	return h;
}

static int names_insert(struct sim *s, const char *name, int idx)
{
	if ((size_t)(s->n_nodes + 1) * 2 > s->names_cap) {
		size_t cap = s->names_cap ? s->names_cap * 2 : 64;
		int *t = malloc(cap * sizeof *t);
		if (!t)
			return -1;
		for (size_t i = 0; i < cap; i++)
			t[i] = -1;
		for (size_t i = 0; i < s->names_cap; i++) {
			int v = s->names[i];
			if (v < 0)
				continue;
			size_t j = name_hash(s->nodes[v]->cfg.name) & (cap - 1);
			while (t[j] >= 0)
				j = (j + 1) & (cap - 1);
			t[j] = v;
		}
		free(s->names);
		s->names = t;
		s->names_cap = cap;
	}
	size_t j = name_hash(name) & (s->names_cap - 1);
	while (s->names[j] >= 0)
		j = (j + 1) & (s->names_cap - 1);
	s->names[j] = idx;
	return 0;
}

int sim_find(const struct sim *s, const char *name)
{
	if (!s->names_cap)
		return -1;
	size_t j = name_hash(name) & (s->names_cap - 1);
	while (s->names[j] >= 0) {
		if (strcmp(s->nodes[s->names[j]]->cfg.name, name) == 0)
			return s->names[j];
		j = (j + 1) & (s->names_cap - 1);
	}
	return -1;
}

/* Which sim node a member is: by its address first (no hashing), then name. */
static int member_node(const struct sim *s, const char *name, const struct wire_addr *addr)
{
	int i = addr_node(s, addr);
	if (i >= 0 && strcmp(s->nodes[i]->cfg.name, name) == 0)
		return i;
	return sim_find(s, name);
}

/* ---- links ---- */

static uint64_t link_key(int from, int to)
{
	return (uint64_t)(uint32_t)from << 32 | (uint32_t)to;
}

static size_t cut_lower(const struct sim *s, uint64_t key)
{
	size_t lo = 0, hi = s->n_cut;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->cut[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool sim_reachable(const struct sim *s, int from, int to)
{
	if (from < 0 || to < 0 || from >= s->n_nodes || to >= s->n_nodes)
		return false;
	if (s->nodes[from]->group != s->nodes[to]->group)
		return false;
	if (s->n_cut) {
		uint64_t k = link_key(from, to);
		size_t i = cut_lower(s, k);
		if (i < s->n_cut && s->cut[i] == k)
			return false;
	}
	return true;
}

void sim_set_link(struct sim *s, int from, int to, bool up)
{
	if (from < 0 || to < 0 || from >= s->n_nodes || to >= s->n_nodes)
		return;
	uint64_t k = link_key(from, to);
	size_t i = cut_lower(s, k);
	bool present = i < s->n_cut && s->cut[i] == k;
	if (up && present) {
		memmove(&s->cut[i], &s->cut[i + 1], (s->n_cut - i - 1) * sizeof *s->cut);
		s->n_cut--;
	} else if (!up && !present) {
		if (s->n_cut == s->cut_cap) {
			size_t cap = s->cut_cap ? s->cut_cap * 2 : 16;
			uint64_t *c = realloc(s->cut, cap * sizeof *c);
			if (!c)
				return;
			s->cut = c;
			s->cut_cap = cap;
		}
		memmove(&s->cut[i + 1], &s->cut[i], (s->n_cut - i) * sizeof *s->cut);
		s->cut[i] = k;
		s->n_cut++;
	}
}

void sim_set_group(struct sim *s, int node, int group)
{
	if (node >= 0 && node < s->n_nodes)
		s->nodes[node]->group = group;
}

int sim_group(const struct sim *s, int node)
{
	return node >= 0 && node < s->n_nodes ? s->nodes[node]->group : -1;
}

void sim_partition(struct sim *s, const int *group_a, size_t n_a)
{
	for (int i = 0; i < s->n_nodes; i++)
		s->nodes[i]->group = 0;
	for (size_t i = 0; i < n_a; i++)
		sim_set_group(s, group_a[i], 1);
}

void sim_heal(struct sim *s)
{
	for (int i = 0; i < s->n_nodes; i++)
		s->nodes[i]->group = 0;
	s->n_cut = 0;
}

/* ---- node timers ---- */

static int latency(struct sim *s)
{
	if (s->lat_max <= s->lat_min)
		return s->lat_min;
	return s->lat_min + (int)(rnd(s) % (uint64_t)(s->lat_max - s->lat_min + 1));
}

/* When something sent now by `src` reaches node `dst`: the link, then the
 * node's slowness. */
static int64_t arrival(struct sim *s, int src, int dst)
{
	int64_t t = s->now + latency(s) + s->nodes[src]->link_ms + s->nodes[dst]->link_ms;
	int slow = s->nodes[dst]->slow_ms;
	if (slow > 0)
		t += (int64_t)(rnd(s) % (uint64_t)(slow + 1));
	return t;
}

/* Make sure a timer entry exists for the node's current deadline. */
static void arm(struct sim *s, struct sim_node *n)
{
	if (n->status != SIM_NODE_UP || !n->sw)
		return;
	int64_t d = swim_next_deadline(n->sw);
	if (d == INT64_MAX)
		return; /* an older armed entry, if any, just ticks harmlessly */
	if (d < s->now)
		d = s->now;
	if (d == s->now && n->last_tick == s->now && n->same_ticks >= STUCK_TICKS) {
		/*
		 * swim keeps saying "due now" although we just ticked it many
		 * times: a swim bug.  Nudge by 1 ms so virtual time can move
		 * on, and count it so tests can notice.
		 */
		d = s->now + 1;
		s->stats.timer_stuck++;
	}
	if (d == n->armed)
		return;
	n->armed = d;
	heap_push(s, d, EV_TIMER, n->idx, NULL);
}

static void stop_node(struct sim *s, struct sim_node *n)
{
	if (n->sw) {
		n->dying = true;
		swim_free(n->sw);
		n->dying = false;
		n->sw = NULL;
	}
	n->status = SIM_NODE_DOWN;
	n->gen++;
	n->armed = ARMED_NONE;
	n->exit_on_leave = false;
	for (size_t i = 0; i < n->qlen; i++)
		qent_discard(s, &n->queue[i]);
	free(n->queue);
	n->queue = NULL;
	n->qlen = n->qcap = n->qbytes = 0;
}

/* After any call into a node: exit if its leave finished, else re-arm. */
static void after_node(struct sim *s, struct sim_node *n)
{
	if (n->status != SIM_NODE_UP)
		return;
	if (n->exit_on_leave && swim_leave_done(n->sw)) {
		stop_node(s, n);
		return;
	}
	arm(s, n);
}

/* ---- hooks (ctx is the sending node) ---- */

static void hook_send_packet(void *ctx, const struct wire_addr *to,
			     const uint8_t *data, size_t len)
{
	struct sim_node *n = ctx;
	struct sim *s = n->sim;
	if (n->dying)
		return;
	s->stats.packets_sent++;
	int dst = addr_node(s, to);
	if (dst >= 0 && s->nodes[dst]->status == SIM_NODE_DOWN && s->refuse_when_down &&
	    sim_reachable(s, n->idx, dst)) {
		/* The host answers for its dead process: ICMP port unreachable. */
		s->stats.packets_cut++;
		heap_push(s, s->now + latency(s) + latency(s), EV_UNREACHABLE, n->idx,
			  (void *)(intptr_t)dst);
		return;
	}
	if (dst < 0 || s->nodes[dst]->status == SIM_NODE_DOWN ||
	    !sim_reachable(s, n->idx, dst)) {
		s->stats.packets_cut++;
		return;
	}
	/* Loss is drawn at send time so it does not depend on arrival order. */
	if (s->loss_threshold && rnd(s) < s->loss_threshold) {
		s->stats.packets_lost++;
		return;
	}
	struct pkt *p = pkt_new(s, len);
	p->from = n->idx;
	p->to = dst;
	memcpy(p->data, data, len);
	heap_push(s, arrival(s, n->idx, dst), EV_PACKET, dst, p);
}

static void hook_send_stream(void *ctx, const struct wire_addr *to,
			     const uint8_t *msg, size_t len, uint64_t cookie)
{
	struct sim_node *n = ctx;
	struct sim *s = n->sim;
	if (n->dying)
		return;
	s->stats.streams_opened++;
	struct strm *st = calloc(1, sizeof *st);
	if (!st) {
		fprintf(stderr, "sim: out of memory (stream)\n");
		abort();
	}
	wbuf_init(&st->reply);
	st->from = n->idx;
	st->from_gen = n->gen;
	st->cookie = cookie;
	int dst = addr_node(s, to);
	st->to = dst;
	if (dst >= 0 && s->nodes[dst]->status == SIM_NODE_DOWN && s->refuse_when_down &&
	    sim_reachable(s, n->idx, dst)) {
		/* Connection refused: the failure comes back after a round trip. */
		st->refs = 1;
		int rtt = latency(s) + latency(s);
		heap_push(s, s->now + rtt, EV_STREAM_REPLY, n->idx, st);
		return;
	}
	st->refs = 2;
	heap_push(s, s->now + s->stream_timeout, EV_STREAM_TIMEOUT, n->idx, st);
	if (dst < 0 || !sim_reachable(s, n->idx, dst) ||
	    s->nodes[dst]->status == SIM_NODE_DOWN) {
		/* SYNs vanish: only the timeout will tell. */
		strm_release(st);
		return;
	}
	st->req = malloc(len ? len : 1);
	if (!st->req) {
		fprintf(stderr, "sim: out of memory (stream)\n");
		abort();
	}
	memcpy(st->req, msg, len);
	st->req_len = len;
	heap_push(s, arrival(s, n->idx, dst), EV_STREAM_REQ, dst, st);
}

static void hook_on_member(void *ctx, enum swim_member_event ev,
			   const struct swim_member *m)
{
	struct sim_node *n = ctx;
	struct sim *s = n->sim;
	if (n->dying)
		return;
	struct sim_event e = {
		.t = s->now,
		.observer = n->idx,
		.subject = member_node(s, m->name, &m->addr),
		.ev = ev,
		.state = m->state,
		.incarnation = m->incarnation,
	};
	trace_mix(s, (uint64_t)e.t << 24 ^ (uint64_t)e.observer << 4 ^ (uint64_t)ev);
	trace_mix(s, (uint64_t)(uint32_t)e.subject << 32 ^ (uint64_t)m->state << 40 ^
		     m->incarnation);
	if (s->record) {
		if (s->log_len == s->log_cap) {
			size_t cap = s->log_cap ? s->log_cap * 2 : 1024;
			struct sim_event *l = realloc(s->log, cap * sizeof *l);
			if (!l) {
				fprintf(stderr, "sim: out of memory (event log)\n");
				abort();
			}
			s->log = l;
			s->log_cap = cap;
		}
		s->log[s->log_len++] = e;
	}
	if (s->member_cb)
		s->member_cb(s->member_ctx, &e, m);
}

static void hook_on_user_msg(void *ctx, const uint8_t *p, size_t len)
{
	(void)ctx;
	(void)p;
	(void)len;
}

static void hook_local_state(void *ctx, bool join, struct wbuf *out)
{
	(void)ctx;
	(void)join;
	(void)out;
}

static void hook_merge_remote_state(void *ctx, const uint8_t *p, size_t len, bool join)
{
	(void)ctx;
	(void)p;
	(void)len;
	(void)join;
}

static void hook_join_result(void *ctx, const struct wire_addr *seed, bool ok)
{
	struct sim_node *n = ctx;
	(void)seed;
	if (!n->dying)
		n->join_result = ok ? 1 : 0;
}

/* Coordinates (sim_enable_coordinates), as the vigil glue does them. */
static size_t hook_ack_payload(void *ctx, uint8_t *buf, size_t cap)
{
	struct sim_node *n = ctx;
	return n->coords ? coord_ack_payload(&n->coords->coord, buf, cap) : 0;
}

static void hook_ping_complete(void *ctx, const char *name, int64_t rtt_us,
			       const uint8_t *payload, size_t len)
{
	struct sim_node *n = ctx;
	char err[160];
	if (n->coords)
		coord_client_on_ack(n->coords, name, rtt_us, payload, len, err, sizeof err);
}

static void hook_log(void *ctx, int level, const char *msg)
{
	struct sim_node *n = ctx;
	struct sim *s = n->sim;
	if (s->log_fn && level >= s->log_min)
		s->log_fn(s->log_ctx, n->idx, s->now, level, msg);
}

/* ---- event dispatch ---- */

/* Hold an arrival for a paused node; datagrams are bounded like a socket buffer. */
static void enqueue_paused(struct sim *s, struct sim_node *n, const struct qent *e)
{
	if (e->kind == EV_PACKET) {
		struct pkt *p = e->p;
		if (n->qbytes + p->len > s->sockbuf) {
			s->stats.packets_overflow++;
			pkt_free(s, p);
			return;
		}
		n->qbytes += p->len;
	}
	if (n->qlen == n->qcap) {
		size_t cap = n->qcap ? n->qcap * 2 : 64;
		struct qent *q = realloc(n->queue, cap * sizeof *q);
		if (!q) {
			fprintf(stderr, "sim: out of memory (socket buffer)\n");
			abort();
		}
		n->queue = q;
		n->qcap = cap;
	}
	n->queue[n->qlen++] = *e;
}

static void deliver_packet(struct sim *s, struct sim_node *n, struct pkt *p)
{
	if (n->status == SIM_NODE_DOWN || !sim_reachable(s, p->from, p->to)) {
		s->stats.packets_cut++;
		pkt_free(s, p);
		return;
	}
	s->stats.events++;
	s->stats.packets_delivered++;
	s->stats.bytes_delivered += p->len;
	trace_mix(s, (uint64_t)s->now << 20 ^ (uint64_t)p->from << 1 ^ (uint64_t)p->to << 40);
	trace_bytes(s, p->data, p->len);
	if (s->tap_fn)
		s->tap_fn(s->tap_ctx, s->now, p->from, p->to, p->data, p->len);
	struct wire_addr from;
	node_addr(p->from, &from);
	swim_handle_packet(n->sw, &from, p->data, p->len, s->now);
	pkt_free(s, p);
	after_node(s, n);
}

static void stream_request(struct sim *s, struct sim_node *n, struct strm *st)
{
	if (n->status == SIM_NODE_DOWN && !s->refuse_when_down) {
		strm_release(st); /* host gone: the timeout reports it */
		return;
	}
	if (n->status == SIM_NODE_DOWN) {
		/* Target died after the connect: a reset comes back. */
		free(st->req);
		st->req = NULL;
		st->ok = false;
		heap_push(s, arrival(s, st->to, st->from), EV_STREAM_REPLY, st->from, st);
		return;
	}
	if (!sim_reachable(s, st->from, st->to)) {
		strm_release(st); /* lost in the partition; the timeout reports it */
		return;
	}
	s->stats.events++;
	s->stats.stream_bytes += st->req_len;
	trace_mix(s, (uint64_t)s->now << 20 ^ 0x5151 ^ (uint64_t)st->from << 40);
	trace_bytes(s, st->req, st->req_len);
	struct wire_addr from;
	node_addr(st->from, &from);
	int rc = swim_handle_stream(n->sw, &from, st->req, st->req_len, &st->reply, s->now);
	free(st->req);
	st->req = NULL;
	st->ok = rc == 0 && st->reply.len > 0 && !st->reply.oom;
	after_node(s, n);
	if (st->ok && !sim_reachable(s, st->to, st->from)) {
		strm_release(st); /* the answer cannot get back; timeout */
		return;
	}
	heap_push(s, arrival(s, st->to, st->from), EV_STREAM_REPLY, st->from, st);
}

/* Settle a stream at the requester: the answer (ok) or a failure. */
static void stream_settle(struct sim *s, struct sim_node *n, struct strm *st, bool ok)
{
	if (st->done || n->gen != st->from_gen || n->status == SIM_NODE_DOWN) {
		st->done = true;
		strm_release(st);
		return;
	}
	st->done = true;
	s->stats.events++;
	trace_mix(s, (uint64_t)s->now << 20 ^ 0x7777 ^ (uint64_t)ok << 8 ^
		     (uint64_t)n->idx << 40);
	if (ok) {
		s->stats.streams_ok++;
		s->stats.stream_bytes += st->reply.len;
		trace_bytes(s, st->reply.p, st->reply.len);
		swim_handle_stream_reply(n->sw, st->cookie, st->reply.p, st->reply.len, s->now);
	} else {
		s->stats.streams_failed++;
		swim_handle_stream_reply(n->sw, st->cookie, NULL, 0, s->now);
	}
	/*
	 * The timeout event still holds a reference for up to stream_timeout
	 * of virtual time; the answer (a whole member list, over 1 MB at
	 * 10,000 members) is not needed any more, so do not keep it that long.
	 */
	wbuf_free(&st->reply);
	strm_release(st);
	after_node(s, n);
}

static void dispatch(struct sim *s, const struct qent *e)
{
	struct sim_node *n = s->nodes[e->node];

	if (e->kind == EV_TIMER) {
		if (e->t != n->armed)
			return; /* superseded by a later arm() */
		n->armed = ARMED_NONE;
		if (n->status != SIM_NODE_UP)
			return; /* paused: resume re-arms; down: nothing to do */
		if (n->last_tick == s->now) {
			n->same_ticks++;
		} else {
			n->last_tick = s->now;
			n->same_ticks = 0;
		}
		s->stats.events++;
		s->stats.timer_fires++;
		trace_mix(s, (uint64_t)s->now << 20 ^ 0x3333 ^ (uint64_t)n->idx << 40);
		swim_tick(n->sw, s->now);
		after_node(s, n);
		return;
	}

	/*
	 * Stream legs bound for a requester that has since crashed are
	 * settled (dropped) even if it is paused in its new life.
	 */
	if (n->status == SIM_NODE_PAUSED) {
		enqueue_paused(s, n, e);
		return;
	}

	switch (e->kind) {
	case EV_PACKET:
		deliver_packet(s, n, e->p);
		break;
	case EV_STREAM_REQ:
		stream_request(s, n, e->p);
		break;
	case EV_STREAM_REPLY: {
		struct strm *st = e->p;
		if (st->ok && !st->done && !sim_reachable(s, st->to, st->from)) {
			/* Cut while the answer was in flight: wait for the timeout. */
			strm_release(st);
			break;
		}
		stream_settle(s, n, st, st->ok);
		break;
	}
	case EV_STREAM_TIMEOUT:
		stream_settle(s, n, e->p, false);
		break;
	case EV_UNREACHABLE: {
		if (n->status != SIM_NODE_UP)
			break; /* the error was for a process that has died since */
		struct wire_addr to;
		node_addr((int)(intptr_t)e->p, &to);
		s->stats.events++;
		trace_mix(s, (uint64_t)s->now << 20 ^ 0x5555 ^ (uint64_t)n->idx << 40);
		swim_hint_unreachable(n->sw, &to, s->now);
		after_node(s, n);
		break;
	}
	default:
		break;
	}
}

bool sim_step(struct sim *s)
{
	if (!s->hlen)
		return false;
	struct qent e = heap_pop(s);
	if (e.t > s->now)
		s->now = e.t;
	dispatch(s, &e);
	return true;
}

void sim_run_until(struct sim *s, int64_t t)
{
	/* A test may have called a node's swim directly (swim_broadcast_user):
	 * its deadline may be earlier now, as an embedder asks again after
	 * every call (vigil_timeout_ms). */
	for (int i = 0; i < s->n_nodes; i++)
		arm(s, s->nodes[i]);
	while (s->hlen && s->heap[0].t <= t) {
		struct qent e = heap_pop(s);
		if (e.t > s->now)
			s->now = e.t;
		dispatch(s, &e);
	}
	if (t > s->now)
		s->now = t;
}

void sim_run_for(struct sim *s, int64_t ms)
{
	sim_run_until(s, s->now + ms);
}

int64_t sim_run_until_pred(struct sim *s, bool (*pred)(struct sim *, void *),
			   void *ctx, int64_t check_ms, int64_t deadline)
{
	if (check_ms < 1)
		check_ms = 1;
	for (;;) {
		if (pred(s, ctx))
			return s->now;
		if (s->now >= deadline)
			return -1;
		int64_t next = s->now + check_ms;
		sim_run_until(s, next < deadline ? next : deadline);
	}
}

int64_t sim_now(const struct sim *s)
{
	return s->now;
}

/* ---- life cycle ---- */

struct sim *sim_new(uint64_t seed)
{
	struct sim *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->seed = seed;
	s->rng = seed;
	s->trace = 0xCBF29CE484222325ull ^ seed;
	swim_config_default(&s->defcfg);
	s->lat_min = 1;
	s->lat_max = 3;
	s->stream_timeout = 10000;
	s->sockbuf = 212992; /* Linux's default net.core.rmem_default */
	s->record = true;
	s->log_min = 4;      /* above every level: silent */
	return s;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n_nodes; i++) {
		stop_node(s, s->nodes[i]);
		if (s->nodes[i]->coords)
			coord_client_free(s->nodes[i]->coords);
		free(s->nodes[i]->coords);
		free(s->nodes[i]);
	}
	/* Heap entries hold packets and stream references; free them. */
	for (size_t i = 0; i < s->hlen; i++)
		qent_discard(s, &s->heap[i]);
	while (s->pool) {
		struct pkt *p = s->pool;
		s->pool = p->next;
		free(p);
	}
	free(s->heap);
	free(s->nodes);
	free(s->names);
	free(s->cut);
	free(s->log);
	free(s);
}

void sim_set_default_config(struct sim *s, const struct swim_config *cfg)
{
	s->defcfg = *cfg;
}

static bool node_start(struct sim *s, struct sim_node *n)
{
	/* Each life gets its own seed, derived so adding nodes does not shift others. */
	uint64_t x = s->seed ^ (uint64_t)n->idx * 0xD1B54A32D192ED03ull ^
		     (uint64_t)n->gen * 0xABC98388FB8FAC03ull;
	n->cfg.seed = splitmix64(&x);
	n->sw = swim_new(&n->cfg, &n->hooks, s->now);
	if (!n->sw)
		return false;
	n->status = SIM_NODE_UP;
	n->armed = ARMED_NONE;
	n->last_tick = -1;
	n->same_ticks = 0;
	n->join_result = -1;
	n->exit_on_leave = false;
	arm(s, n);
	return true;
}

int sim_add_node(struct sim *s, const char *name, const struct swim_config *cfg)
{
	if (!name || strlen(name) > WIRE_NAME_MAX || !*name || sim_find(s, name) >= 0)
		return -1;
	if (s->n_nodes >= (1 << 24) - 2)
		return -1; /* out of 10.0.0.0/8 addresses */
	if (s->n_nodes == s->nodes_cap) {
		int cap = s->nodes_cap ? s->nodes_cap * 2 : 64;
		struct sim_node **v = realloc(s->nodes, (size_t)cap * sizeof *v);
		if (!v)
			return -1;
		s->nodes = v;
		s->nodes_cap = cap;
	}
	struct sim_node *n = calloc(1, sizeof *n);
	if (!n)
		return -1;
	n->sim = s;
	n->idx = s->n_nodes;
	n->cfg = cfg ? *cfg : s->defcfg;
	snprintf(n->cfg.name, sizeof n->cfg.name, "%s", name);
	node_addr(n->idx, &n->cfg.addr);
	n->hooks = (struct swim_hooks){
		.ctx = n,
		.send_packet = hook_send_packet,
		.send_stream = hook_send_stream,
		.on_member = hook_on_member,
		.on_user_msg = hook_on_user_msg,
		.local_state = hook_local_state,
		.merge_remote_state = hook_merge_remote_state,
		.join_result = hook_join_result,
		.log = hook_log,
		.ack_payload = hook_ack_payload,
		.ping_complete = hook_ping_complete,
	};
	if (s->coords_on) {
		struct coord_config cc;
		coord_config_default(&cc);
		n->coords = calloc(1, sizeof *n->coords);
		if (n->coords && coord_client_init(n->coords, &cc, s->seed + (uint64_t)n->idx) != 0) {
			free(n->coords);
			n->coords = NULL;
		}
	}
	n->status = SIM_NODE_DOWN;
	n->armed = ARMED_NONE;
	/* Registered before swim_new so its own on_member events resolve. */
	s->nodes[s->n_nodes++] = n;
	if (names_insert(s, n->cfg.name, n->idx) != 0 || !node_start(s, n)) {
		/* Only possible on allocation failure; leave a DOWN node behind. */
		return -1;
	}
	return n->idx;
}

int sim_node_count(const struct sim *s)
{
	return s->n_nodes;
}

static struct sim_node *node_get(const struct sim *s, int i)
{
	return i >= 0 && i < s->n_nodes ? s->nodes[i] : NULL;
}

void sim_join(struct sim *s, int node, int seed)
{
	struct sim_node *n = node_get(s, node);
	if (!n || n->status != SIM_NODE_UP || !node_get(s, seed))
		return;
	struct wire_addr a;
	node_addr(seed, &a);
	n->join_result = -1;
	swim_join(n->sw, &a, 1, s->now);
	after_node(s, n);
}

int sim_join_result(const struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	return n ? n->join_result : -1;
}

void sim_leave(struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	if (!n || n->status != SIM_NODE_UP)
		return;
	swim_leave(n->sw, s->now);
	n->exit_on_leave = true;
	after_node(s, n);
}

void sim_crash(struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	if (n && n->status != SIM_NODE_DOWN)
		stop_node(s, n);
}

void sim_restart(struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	if (n && n->status == SIM_NODE_DOWN)
		node_start(s, n);
}

void sim_pause(struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	if (!n || n->status != SIM_NODE_UP)
		return;
	n->status = SIM_NODE_PAUSED;
	n->paused_at = s->now;
	n->armed = ARMED_NONE; /* any queued timer entry is now stale */
}

void sim_resume(struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	if (!n || n->status != SIM_NODE_PAUSED)
		return;
	n->status = SIM_NODE_UP;
	/* What a real process sees: its clock jumped while it was frozen. */
	swim_notice_stall(n->sw, s->now - n->paused_at, s->now);
	/*
	 * Detach the buffer first: draining calls into swim, which may make
	 * the node exit (finished leave) and free its queue.
	 */
	struct qent *q = n->queue;
	size_t qlen = n->qlen;
	n->queue = NULL;
	n->qlen = n->qcap = n->qbytes = 0;
	for (size_t i = 0; i < qlen; i++)
		dispatch(s, &q[i]);
	free(q);
	after_node(s, n);
}

/* ---- knobs ---- */

void sim_set_slow(struct sim *s, int node, int max_ms)
{
	struct sim_node *n = node_get(s, node);
	if (n)
		n->slow_ms = max_ms > 0 ? max_ms : 0;
}

void sim_set_node_latency(struct sim *s, int node, int ms)
{
	struct sim_node *n = node_get(s, node);
	if (n)
		n->link_ms = ms > 0 ? ms : 0;
}

void sim_enable_coordinates(struct sim *s)
{
	s->coords_on = true;
}

int sim_coordinate(struct sim *s, int node, struct vigil_coord *out)
{
	struct sim_node *n = node_get(s, node);
	if (!n || !n->coords)
		return -1;
	*out = n->coords->coord;
	return 0;
}

void sim_set_latency(struct sim *s, int min_ms, int max_ms)
{
	s->lat_min = min_ms < 0 ? 0 : min_ms;
	s->lat_max = max_ms < s->lat_min ? s->lat_min : max_ms;
}

void sim_set_loss(struct sim *s, double p)
{
	s->loss = p < 0 ? 0 : p > 1 ? 1 : p;
	/* 2^64 * p, saturating; exact zero stays zero so p=0 draws nothing. */
	s->loss_threshold = s->loss >= 1.0 ? UINT64_MAX
					   : (uint64_t)(s->loss * 18446744073709551616.0);
}

void sim_set_stream_timeout(struct sim *s, int ms)
{
	s->stream_timeout = ms > 0 ? ms : 1;
}

void sim_set_refuse_when_down(struct sim *s, bool refuse)
{
	s->refuse_when_down = refuse;
}

void sim_set_socket_buffer(struct sim *s, size_t bytes)
{
	s->sockbuf = bytes;
}

/* ---- queries ---- */

enum sim_node_status sim_status(const struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	return n ? n->status : SIM_NODE_DOWN;
}

const char *sim_name(const struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	return n ? n->cfg.name : NULL;
}

const struct wire_addr *sim_addr(const struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	return n ? &n->cfg.addr : NULL;
}

struct swim *sim_swim(struct sim *s, int node)
{
	struct sim_node *n = node_get(s, node);
	return n ? n->sw : NULL;
}

int sim_view(const struct sim *s, int observer, const char *name)
{
	struct sim_node *n = node_get(s, observer);
	if (!n || !n->sw)
		return -1;
	return swim_member_state(n->sw, name, NULL);
}

int64_t sim_view_incarnation(const struct sim *s, int observer, const char *name)
{
	struct sim_node *n = node_get(s, observer);
	if (!n || !n->sw)
		return -1;
	uint32_t inc;
	return swim_member_state(n->sw, name, &inc) < 0 ? -1 : (int64_t)inc;
}

bool sim_all_see(const struct sim *s, int subject, enum swim_state state)
{
	const char *name = sim_name(s, subject);
	if (!name)
		return false;
	for (int i = 0; i < s->n_nodes; i++) {
		if (i == subject || s->nodes[i]->status != SIM_NODE_UP)
			continue;
		if (sim_view(s, i, name) != (int)state)
			return false;
	}
	return true;
}

bool sim_any_sees(const struct sim *s, int subject, enum swim_state state)
{
	const char *name = sim_name(s, subject);
	if (!name)
		return false;
	for (int i = 0; i < s->n_nodes; i++)
		if (i != subject && sim_view(s, i, name) == (int)state)
			return true;
	return false;
}

int sim_count_status(const struct sim *s, enum sim_node_status st)
{
	int c = 0;
	for (int i = 0; i < s->n_nodes; i++)
		c += s->nodes[i]->status == st;
	return c;
}

bool sim_all_alive(const struct sim *s)
{
	size_t up = (size_t)sim_count_status(s, SIM_NODE_UP);
	size_t paused = (size_t)sim_count_status(s, SIM_NODE_PAUSED);
	/* Cheap necessary condition first: the alive counts must fit. */
	for (int i = 0; i < s->n_nodes; i++) {
		struct sim_node *n = s->nodes[i];
		if (n->status != SIM_NODE_UP)
			continue;
		size_t a = swim_alive_count(n->sw);
		if (a < up || a > up + paused)
			return false;
	}
	/* Then exactly: every alive entry is an UP (or paused) node, all UP ones present. */
	for (int i = 0; i < s->n_nodes; i++) {
		struct sim_node *n = s->nodes[i];
		if (n->status != SIM_NODE_UP)
			continue;
		size_t seen_up = 0, cnt = swim_member_count(n->sw);
		for (size_t k = 0; k < cnt; k++) {
			const char *name;
			struct wire_addr addr;
			enum swim_state st;
			swim_member_brief(n->sw, k, &name, &addr, &st);
			if (st != SWIM_ALIVE)
				continue;
			int j = member_node(s, name, &addr);
			if (j < 0 || s->nodes[j]->status == SIM_NODE_DOWN)
				return false;
			seen_up += s->nodes[j]->status == SIM_NODE_UP;
		}
		if (seen_up != up)
			return false;
	}
	return true;
}

bool sim_pred_all_alive(struct sim *s, void *ctx)
{
	(void)ctx;
	return sim_all_alive(s);
}

struct sim *sim_new_cluster(uint64_t seed, int n, const struct swim_config *cfg)
{
	struct sim *s = sim_new(seed);
	if (!s)
		return NULL;
	if (cfg)
		sim_set_default_config(s, cfg);
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "node-%03d", i);
		if (sim_add_node(s, name, NULL) != i) {
			sim_free(s);
			return NULL;
		}
	}
	for (int i = 1; i < n; i++)
		sim_join(s, i, 0);
	return s;
}

struct sim *sim_new_converged(uint64_t seed, int n, const struct swim_config *cfg,
			      int64_t limit_ms)
{
	struct sim *s = sim_new_cluster(seed, n, cfg);
	if (s && sim_run_until_pred(s, sim_pred_all_alive, NULL, 100, limit_ms) < 0) {
		sim_free(s);
		return NULL;
	}
	return s;
}

const struct sim_stats *sim_stats(const struct sim *s)
{
	return &s->stats;
}

uint64_t sim_trace_hash(const struct sim *s)
{
	return s->trace;
}

/* ---- event log ---- */

void sim_record_events(struct sim *s, bool on)
{
	s->record = on;
}

size_t sim_event_count(const struct sim *s)
{
	return s->log_len;
}

const struct sim_event *sim_event_at(const struct sim *s, size_t i)
{
	return i < s->log_len ? &s->log[i] : NULL;
}

size_t sim_count_events(const struct sim *s, int observer, int subject, int ev,
			int state, int64_t since)
{
	size_t c = 0;
	for (size_t i = 0; i < s->log_len; i++) {
		const struct sim_event *e = &s->log[i];
		if (e->t < since)
			continue;
		if (observer >= 0 && e->observer != observer)
			continue;
		if (subject >= 0 && e->subject != subject)
			continue;
		if (ev >= 0 && (int)e->ev != ev)
			continue;
		if (state >= 0 && (int)e->state != state)
			continue;
		c++;
	}
	return c;
}

void sim_set_member_cb(struct sim *s, sim_member_fn fn, void *ctx)
{
	s->member_cb = fn;
	s->member_ctx = ctx;
}

void sim_set_packet_tap(struct sim *s, sim_tap_fn fn, void *ctx)
{
	s->tap_fn = fn;
	s->tap_ctx = ctx;
}

void sim_set_log(struct sim *s, sim_log_fn fn, void *ctx, int min_level)
{
	s->log_fn = fn;
	s->log_ctx = ctx;
	s->log_min = min_level;
}
