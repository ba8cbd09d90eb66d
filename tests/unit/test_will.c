/*
 * test_will.c — last wills (src/will.c).
 *
 * Unit tests drive one component directly.  Cluster tests build their own
 * small deterministic harness (the simulator in sim.c drives bare swim):
 * N nodes, each the real stack swim + serf_layer + will wired as vigil.c
 * wires it, on a fake in-memory network in virtual time with seeded random
 * loss, latency, partitions, crashes and restarts.  Will state files live
 * in a per-test temporary directory so a restarted node reloads them.
 */
#include "testlib.h"

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

#include <msgpack.h>
#include <openssl/evp.h>

#include "serf.h"
#include "swim.h"
#include "will.h"
#include "wire.h"

/* ================================================================ harness */

#define MAXN 8
#define NAMELEN 32

struct node;

struct counts {
	int will;          /* VIGIL_EV_MEMBER_WILL */
	int revoked, undeliverable, returned;
	int user_ev;       /* VIGIL_EV_USER named "wevt" */
	int will_owner_not_dead; /* wills raised while we did not see the owner dead */
	char will_owner[VIGIL_NAME_MAX + 1];
	uint8_t will_payload[VIGIL_WILL_MAX];
	size_t will_len;
	int64_t returned_ms;
};

struct node {
	int idx;
	char name[NAMELEN];
	struct wire_addr addr;
	bool up;
	unsigned gen;      /* bumps on every start: stale stream replies drop */
	int group;
	struct swim *sw;
	struct serf_layer *sl;
	struct will *w;
	char state_path[256];
	int64_t not_before; /* do not tick again at the same instant */
	struct counts c;    /* summed across restarts */
};

struct msg {
	int64_t t;
	uint64_t seq;
	int kind;          /* 0 datagram, 1 stream request, 2 stream reply */
	int from, to;
	unsigned from_gen;
	uint64_t cookie;
	bool failed;       /* stream: refused / cut */
	uint8_t *data;
	size_t len;
};

static struct net {
	int64_t now;
	uint64_t rng, seq;
	double loss;
	int n;
	struct node nodes[MAXN];
	struct msg **q;
	size_t nq, capq;
	char dir[128];
	int64_t will_delay_backoff;
	uint64_t sent, lost;
} N;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic per seed */
	N.rng ^= N.rng >> 12;
	N.rng ^= N.rng << 25;
	N.rng ^= N.rng >> 27;
	return N.rng * 2685821657736338717ULL;
}

static double rnd01(void)
{
	return (double)(rnd() >> 11) / (double)(1ULL << 53);
}

static bool q_less(const struct msg *a, const struct msg *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void q_push(struct msg *m)
{
	if (N.nq == N.capq) {
		N.capq = N.capq ? N.capq * 2 : 256;
		N.q = realloc(N.q, N.capq * sizeof *N.q);
	}
	size_t i = N.nq++;
	N.q[i] = m;
	while (i > 0 && q_less(N.q[i], N.q[(i - 1) / 2])) {
		struct msg *t = N.q[i];
		N.q[i] = N.q[(i - 1) / 2];
		N.q[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct msg *q_pop(void)
{
	struct msg *top = N.q[0];
	N.q[0] = N.q[--N.nq];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < N.nq && q_less(N.q[l], N.q[m]))
			m = l;
		if (r < N.nq && q_less(N.q[r], N.q[m]))
			m = r;
		if (m == i)
			break;
		struct msg *t = N.q[i];
		N.q[i] = N.q[m];
		N.q[m] = t;
		i = m;
	}
	return top;
}

static int latency(void)
{
	return 1 + (int)(rnd() % 3);
}

static int node_by_addr(const struct wire_addr *a)
{
	for (int i = 0; i < N.n; i++)
		if (a->ip_len == 4 && memcmp(a->ip, N.nodes[i].addr.ip, 4) == 0 &&
		    a->port == N.nodes[i].addr.port)
			return i;
	return -1;
}

static bool linked(int a, int b)
{
	return N.nodes[a].group == N.nodes[b].group;
}

static void enqueue(int kind, int from, int to, const uint8_t *p, size_t len,
		    uint64_t cookie, bool failed)
{
	struct msg *m = calloc(1, sizeof *m);
	m->t = N.now + latency();
	m->seq = N.seq++;
	m->kind = kind;
	m->from = from;
	m->to = to;
	m->from_gen = N.nodes[from].gen;
	m->cookie = cookie;
	m->failed = failed;
	if (len) {
		m->data = malloc(len);
		memcpy(m->data, p, len);
	}
	m->len = len;
	q_push(m);
}

/* ---- swim hooks ---- */

static void h_send_packet(void *ctx, const struct wire_addr *to, const uint8_t *pkt,
			  size_t len)
{
	struct node *n = ctx;
	int t = node_by_addr(to);
	N.sent++;
	const char *v = getenv("WILL_VERBOSE");
	if (v && atoi(v) >= 4) {
		int has = 0;
		for (size_t k = 0; k + 1 < len; k++)
			if (pkt[k] == 8 && pkt[k + 1] == 202)
				has = 1;
		printf("# %7lld %s -> %s pkt %zu%s\n", (long long)N.now, n->name,
		       t >= 0 ? N.nodes[t].name : "?", len, has ? " DONE" : "");
	}
	if (t < 0 || !linked(n->idx, t))
		return;
	if (rnd01() < N.loss) {
		N.lost++;
		return;
	}
	enqueue(0, n->idx, t, pkt, len, 0, false);
}

static void h_send_stream(void *ctx, const struct wire_addr *to, const uint8_t *msg,
			  size_t len, uint64_t cookie)
{
	struct node *n = ctx;
	int t = node_by_addr(to);
	if (t < 0)
		t = n->idx; /* unknown address: fails back to ourselves */
	enqueue(1, n->idx, t, msg, len, cookie, t == n->idx);
}

static void h_on_member(void *ctx, enum swim_member_event ev, const struct swim_member *m)
{
	struct node *n = ctx;
	const char *v = getenv("WILL_VERBOSE");
	if (v && atoi(v) >= 2)
		printf("# %7lld %s: member %s ev %d state %d inc %u\n", (long long)N.now, n->name,
		       m->name, (int)ev, (int)m->state, m->incarnation);
	if (n->sl)
		serf_layer_on_member(n->sl, ev, m, N.now);
	if (n->w)
		will_on_member(n->w, ev, m, N.now);
}

static void h_on_user_msg(void *ctx, const uint8_t *p, size_t len)
{
	struct node *n = ctx;
	const char *v = getenv("WILL_VERBOSE");
	if (v && atoi(v) >= 3 && len && p[0] >= SERF_EXT_TYPE_MIN)
		printf("# %7lld %s: ext msg %d (%zu bytes)\n", (long long)N.now, n->name, p[0], len);
	if (n->sl)
		serf_layer_on_user_msg(n->sl, p, len, N.now);
}

static void h_local_state(void *ctx, bool join, struct wbuf *out)
{
	struct node *n = ctx;
	if (n->sl)
		serf_layer_local_state(n->sl, join, out);
}

static void h_merge(void *ctx, const uint8_t *p, size_t len, bool join)
{
	struct node *n = ctx;
	if (n->sl)
		serf_layer_merge_remote_state(n->sl, p, len, join, N.now);
}

static void h_join_result(void *ctx, const struct wire_addr *seed, bool ok)
{
	struct node *n = ctx;
	(void)seed;
	if (ok && n->sl)
		serf_layer_broadcast_join(n->sl, N.now);
}

/* ---- serf outbox ---- */

static void o_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	struct node *n = ctx;
	swim_broadcast_user(n->sw, msg, len);
}

static void o_send_to(void *ctx, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	struct node *n = ctx;
	swim_send_user(n->sw, to, msg, len);
}

static void o_set_meta(void *ctx, const uint8_t *meta, size_t len)
{
	struct node *n = ctx;
	swim_set_meta(n->sw, meta, len, N.now);
}

static void o_reconnect(void *ctx, const char *name, const struct wire_addr *addr)
{
	struct node *n = ctx;
	(void)name;
	swim_join(n->sw, addr, 1, N.now);
}

/* ---- will outbox ---- */

static void w_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	struct node *n = ctx;
	serf_layer_ext_broadcast(n->sl, msg, len);
}

static void w_send_to(void *ctx, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	struct node *n = ctx;
	serf_layer_ext_send(n->sl, to, msg, len);
}

static int w_user_event(void *ctx, const char *name, const uint8_t *p, size_t len,
			int64_t now)
{
	struct node *n = ctx;
	return serf_layer_user_event(n->sl, name, p, len, false, now);
}

/* ---- application events (serf's and the will's) ---- */

static void w_log(void *ctx, int level, const char *msg)
{
	struct node *n = ctx;
	const char *v = getenv("WILL_VERBOSE");
	if (v && atoi(v) >= 2 && level >= 0)
		printf("# %7lld %s: %s\n", (long long)N.now, n->name, msg);
}

static void on_event(void *ctx, const struct vigil_event *ev)
{
	struct node *n = ctx;
	switch (ev->type) {
	case VIGIL_EV_MEMBER_WILL: {
		const struct swim_member *om = swim_member_find(n->sw, ev->member->name);
		if (om && om->state != SWIM_DEAD && om->state != SWIM_LEFT)
			n->c.will_owner_not_dead++;
	}
		n->c.will++;
		snprintf(n->c.will_owner, sizeof n->c.will_owner, "%s", ev->member->name);
		n->c.will_len = ev->payload_len;
		memcpy(n->c.will_payload, ev->payload, ev->payload_len);
		break;
	case VIGIL_EV_WILL_REVOKED: n->c.revoked++; break;
	case VIGIL_EV_WILL_UNDELIVERABLE: n->c.undeliverable++; break;
	case VIGIL_EV_MEMBER_RETURNED:
		n->c.returned++;
		n->c.returned_ms = ev->duration_ms;
		break;
	case VIGIL_EV_USER:
		if (ev->name && strcmp(ev->name, "wevt") == 0)
			n->c.user_ev++;
		break;
	default:
		break;
	}
}

/* ---- node life cycle ---- */

static int64_t will_reap_ms = 24LL * 3600 * 1000;

static void node_start(int i)
{
	struct node *n = &N.nodes[i];
	struct swim_config sc;
	swim_config_default(&sc);
	snprintf(sc.name, sizeof sc.name, "%s", n->name);
	sc.addr = n->addr;
	sc.seed = rnd();
	sc.meta_len = (uint16_t)serf_encode_tags(NULL, 0, 4, sc.meta, sizeof sc.meta);
	sc.push_pull_interval_ms = 10000;
	struct swim_hooks sh = {
		.ctx = n, .send_packet = h_send_packet, .send_stream = h_send_stream,
		.on_member = h_on_member, .on_user_msg = h_on_user_msg,
		.local_state = h_local_state, .merge_remote_state = h_merge,
		.join_result = h_join_result,
	};
	n->gen++;
	n->up = true;
	n->not_before = 0;
	n->sw = swim_new(&sc, &sh, N.now);

	struct serf_layer_config lc;
	serf_layer_config_default(&lc);
	snprintf(lc.name, sizeof lc.name, "%s", n->name);
	lc.on_event = on_event;
	lc.event_ctx = n;
	lc.out = (struct serf_outbox){ .ctx = n, .broadcast = o_broadcast,
				       .send_to = o_send_to, .set_meta = o_set_meta,
				       .reconnect = o_reconnect };
	lc.seed = rnd();
	n->sl = serf_layer_new(&lc);

	struct will_config wc;
	will_config_default(&wc);
	snprintf(wc.name, sizeof wc.name, "%s", n->name);
	wc.state_path = n->state_path;
	wc.reap_interval_ms = will_reap_ms;
	wc.on_event = on_event;
	wc.event_ctx = n;
	wc.out = (struct will_outbox){ .ctx = n, .broadcast = w_broadcast,
				       .send_to = w_send_to, .user_event = w_user_event,
				       .log = w_log };
	n->w = will_new(&wc, N.now);
	int rc = will_load(n->w, n->state_path);
	if (rc != WILL_OK && rc != WILL_ENOENT)
		printf("# %s: will_load: %d\n", n->name, rc);
	struct serf_extension ext;
	will_extension(n->w, &ext);
	serf_layer_set_extension(n->sl, &ext);
	/* swim_new reported ourselves before the layers existed. */
	for (size_t k = 0; k < swim_member_count(n->sw); k++) {
		serf_layer_on_member(n->sl, SWIM_EV_JOIN, swim_member_at(n->sw, k), N.now);
		will_on_member(n->w, SWIM_EV_JOIN, swim_member_at(n->sw, k), N.now);
	}
}

static void node_stop(int i)
{
	struct node *n = &N.nodes[i];
	if (!n->up)
		return;
	serf_layer_free(n->sl);
	swim_free(n->sw);
	will_free(n->w);
	n->sl = NULL;
	n->sw = NULL;
	n->w = NULL;
	n->up = false;
}

static void net_init(uint64_t seed, int n, double loss)
{
	memset(&N, 0, sizeof N);
	/* WILL_SEED=k reruns every scenario on other seeds (soak testing). */
	const char *e = getenv("WILL_SEED");
	if (e)
		seed += 1000 * strtoull(e, NULL, 10);
	N.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
	N.loss = loss;
	N.n = n;
	N.now = 1000;
	char dir[] = "/tmp/test_will.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	memcpy(N.dir, dir, sizeof dir);
	for (int i = 0; i < n; i++) {
		struct node *nd = &N.nodes[i];
		nd->idx = i;
		snprintf(nd->name, sizeof nd->name, "node-%c", 'a' + i);
		nd->addr.ip_len = 4;
		nd->addr.ip[0] = 10;
		nd->addr.ip[3] = (uint8_t)(i + 1);
		nd->addr.port = 7946;
		snprintf(nd->state_path, sizeof nd->state_path, "%s/node-%c.will", dir, 'a' + i);
		node_start(i);
	}
}

static void net_free(void)
{
	for (int i = 0; i < N.n; i++) {
		node_stop(i);
		unlink(N.nodes[i].state_path);
		char tmp[300];
		snprintf(tmp, sizeof tmp, "%s.key", N.nodes[i].state_path);
		unlink(tmp);
		snprintf(tmp, sizeof tmp, "%s.tmp", N.nodes[i].state_path);
		unlink(tmp);
	}
	rmdir(N.dir);
	while (N.nq) {
		struct msg *m = q_pop();
		free(m->data);
		free(m);
	}
	free(N.q);
	N.q = NULL;
}

static int64_t node_deadline(const struct node *n)
{
	if (!n->up)
		return INT64_MAX;
	int64_t t = swim_next_deadline(n->sw);
	int64_t u = serf_layer_next_deadline(n->sl);
	int64_t v = will_next_deadline(n->w);
	if (u < t)
		t = u;
	if (v < t)
		t = v;
	return t < n->not_before ? n->not_before : t;
}

static void deliver(struct msg *m)
{
	struct node *to = &N.nodes[m->to];
	struct node *from = &N.nodes[m->from];
	if (m->kind == 0) {
		if (to->up && linked(m->from, m->to))
			swim_handle_packet(to->sw, &from->addr, m->data, m->len, N.now);
	} else if (m->kind == 1) {
		/* A stream request reaches its target; the answer rides back. */
		struct wbuf reply;
		wbuf_init(&reply);
		bool ok = !m->failed && to->up && linked(m->from, m->to) &&
			  swim_handle_stream(to->sw, &from->addr, m->data, m->len, &reply,
					     N.now) == 0;
		struct msg *r = calloc(1, sizeof *r);
		r->t = N.now + latency();
		r->seq = N.seq++;
		r->kind = 2;
		r->from = m->to;
		r->to = m->from;
		r->from_gen = m->from_gen; /* the requester's generation */
		r->cookie = m->cookie;
		r->failed = !ok;
		if (ok && reply.len) {
			r->data = malloc(reply.len);
			memcpy(r->data, reply.p, reply.len);
			r->len = reply.len;
		}
		wbuf_free(&reply);
		q_push(r);
	} else {
		if (to->up && to->gen == m->from_gen) {
			if (m->failed || !linked(m->from, m->to))
				swim_handle_stream_reply(to->sw, m->cookie, NULL, 0, N.now);
			else
				swim_handle_stream_reply(to->sw, m->cookie, m->data, m->len,
							 N.now);
		}
	}
}

static void run_until(int64_t until)
{
	for (;;) {
		int64_t t = N.nq ? N.q[0]->t : INT64_MAX;
		int who = -1;
		for (int i = 0; i < N.n; i++) {
			int64_t d = node_deadline(&N.nodes[i]);
			if (d < t) {
				t = d;
				who = i;
			}
		}
		if (t > until)
			break;
		if (t > N.now)
			N.now = t;
		if (who < 0) {
			struct msg *m = q_pop();
			deliver(m);
			free(m->data);
			free(m);
		} else {
			struct node *n = &N.nodes[who];
			swim_tick(n->sw, N.now);
			serf_layer_tick(n->sl, N.now);
			will_tick(n->w, N.now);
			n->not_before = N.now + 1;
		}
	}
	N.now = until;
}

static void run_for(int64_t ms)
{
	run_until(N.now + ms);
}

static void join_all(void)
{
	for (int i = 1; i < N.n; i++)
		swim_join(N.nodes[i].sw, &N.nodes[0].addr, 1, N.now);
}

static void join_node(int i, int seed)
{
	swim_join(N.nodes[i].sw, &N.nodes[seed].addr, 1, N.now);
}

static void partition(int i, int group)
{
	N.nodes[i].group = group;
}

/* How observer sees `subject`: swim state or -1. */
static int view(int observer, int subject)
{
	const struct node *o = &N.nodes[observer];
	if (!o->up)
		return -1;
	const struct swim_member *m = swim_member_find(o->sw, N.nodes[subject].name);
	return m ? (int)m->state : -1;
}

static bool all_alive(void)
{
	for (int i = 0; i < N.n; i++)
		for (int j = 0; j < N.n; j++)
			if (N.nodes[i].up && N.nodes[j].up && view(i, j) != SWIM_ALIVE)
				return false;
	return true;
}

/* Run until every up node sees everyone up alive (or the deadline). */
static bool converge(int64_t max_ms)
{
	int64_t end = N.now + max_ms;
	while (N.now < end) {
		if (all_alive())
			return true;
		run_for(100);
	}
	return all_alive();
}

/* Every up node other than `subject` holds `owner`'s will at seq >= seq. */
static bool all_hold(int owner, uint64_t seq)
{
	for (int i = 0; i < N.n; i++) {
		if (!N.nodes[i].up || i == owner)
			continue;
		struct vigil_will_info *wi;
		size_t n;
		if (will_list(N.nodes[i].w, N.nodes[owner].name, &wi, &n) != 0)
			return false;
		bool ok = n == 1 && wi[0].seq >= seq;
		free(wi);
		if (!ok)
			return false;
	}
	return true;
}

static bool wait_hold(int owner, uint64_t seq, int64_t max_ms)
{
	int64_t end = N.now + max_ms;
	while (N.now < end && !all_hold(owner, seq))
		run_for(100);
	return all_hold(owner, seq);
}

static bool seen_dead_by_all(int subject)
{
	for (int i = 0; i < N.n; i++)
		if (i != subject && N.nodes[i].up && view(i, subject) != SWIM_DEAD)
			return false;
	return true;
}

static bool wait_dead(int subject, int64_t max_ms)
{
	int64_t end = N.now + max_ms;
	while (N.now < end && !seen_dead_by_all(subject))
		run_for(50);
	return seen_dead_by_all(subject);
}

static int total_wills(void)
{
	int s = 0;
	for (int i = 0; i < N.n; i++)
		s += N.nodes[i].c.will;
	return s;
}

/* One line per node, to see which path a delivery took. */
static void summary(const char *tag)
{
	printf("# %s t=%lld sent=%llu lost=%llu\n", tag, (long long)N.now,
	       (unsigned long long)N.sent, (unsigned long long)N.lost);
	for (int i = 0; i < N.n; i++) {
		const struct node *n = &N.nodes[i];
		if (!n->up) {
			printf("#   %s down will=%d\n", n->name, n->c.will);
			continue;
		}
		const struct will_stats *st = will_stats(n->w);
		printf("#   %s will=%d ev=%d ret=%d rev=%d undeliv=%d | sent=%llu in=%llu dup=%llu "
		       "pub=%llu cancel=%llu decerr=%llu\n",
		       n->name, n->c.will, n->c.user_ev, n->c.returned, n->c.revoked,
		       n->c.undeliverable, (unsigned long long)st->deliveries_sent,
		       (unsigned long long)st->deliveries_in, (unsigned long long)st->deliveries_dup,
		       (unsigned long long)st->published, (unsigned long long)st->cancelled,
		       (unsigned long long)st->decode_errors);
	}
}

static const uint8_t PAYLOAD[] = "goodbye, and thanks for all the fish";

/* ============================================================ unit tests */

struct capture {
	uint8_t msgs[64][2048];
	size_t lens[64];
	int n;
	int events[16];
	int user_events;
};

static void cap_bcast(void *ctx, const uint8_t *m, size_t len)
{
	struct capture *c = ctx;
	if (c->n < 64 && len <= 2048) {
		memcpy(c->msgs[c->n], m, len);
		c->lens[c->n++] = len;
	}
}

static void cap_send(void *ctx, const struct wire_addr *to, const uint8_t *m, size_t len)
{
	(void)to;
	cap_bcast(ctx, m, len);
}

static int cap_user(void *ctx, const char *name, const uint8_t *p, size_t len, int64_t now)
{
	(void)name, (void)p, (void)len, (void)now;
	((struct capture *)ctx)->user_events++;
	return 0;
}

static void cap_event(void *ctx, const struct vigil_event *ev)
{
	struct capture *c = ctx;
	if ((int)ev->type < 16)
		c->events[ev->type]++;
}

/* A signing key per name that survives a "restart" without a state file. */
static void name_seed(const char *name, struct will_config *cfg)
{
	cfg->has_key_seed = true;
	memset(cfg->key_seed, 0, sizeof cfg->key_seed);
	snprintf((char *)cfg->key_seed, sizeof cfg->key_seed, "test key %s", name);
}

/* How many captured messages are of this type. */
static int count_type(const struct capture *c, int type)
{
	int k = 0;
	for (int i = 0; i < c->n; i++)
		k += c->msgs[i][0] == type;
	return k;
}

static struct will *mk(const char *name, struct capture *c, const char *path)
{
	struct will_config cfg;
	will_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "%s", name);
	cfg.state_path = path;
	cfg.on_event = cap_event;
	cfg.event_ctx = c;
	cfg.out = (struct will_outbox){ .ctx = c, .broadcast = cap_bcast, .send_to = cap_send,
					.user_event = cap_user };
	name_seed(name, &cfg);
	return will_new(&cfg, 0);
}

static struct swim_member mkmember(const char *name, enum swim_state st, uint32_t inc,
				   uint8_t ip)
{
	struct swim_member m;
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "%s", name);
	m.addr.ip_len = 4;
	m.addr.ip[0] = 10;
	m.addr.ip[3] = ip;
	m.addr.port = 7946;
	m.state = st;
	m.incarnation = inc;
	return m;
}

/* w learns (from swim) that `name` is an alive member: only then does it
 * take that name's key on first sight. */
static void know(struct will *w, const char *name, uint8_t ip)
{
	struct swim_member m = mkmember(name, SWIM_ALIVE, 1, ip);
	will_on_member(w, SWIM_EV_JOIN, &m, 0);
}

TEST(set_validates_and_lists)
{
	struct capture *c = calloc(1, sizeof *c);
	struct will *w = mk("a", c, NULL);
	uint8_t big[VIGIL_WILL_MAX + 1] = {0};
	CHECK_EQ_INT(will_set(w, "b", "ev", 0, NULL, 0, 0), WILL_EINVAL);
	CHECK_EQ_INT(will_set(w, NULL, NULL, 0, NULL, 0, 0), WILL_EINVAL);
	CHECK_EQ_INT(will_set(w, "a", NULL, 0, NULL, 0, 0), WILL_EINVAL);
	CHECK_EQ_INT(will_set(w, "b", NULL, -1, NULL, 0, 0), WILL_EINVAL);
	CHECK_EQ_INT(will_set(w, "b", NULL, 0, big, sizeof big, 0), WILL_ETOOBIG);
	CHECK_EQ_INT(c->n, 0);
	CHECK_EQ_INT(will_set(w, "b", NULL, 2000, big, VIGIL_WILL_MAX, 0), WILL_OK);
	CHECK_EQ_INT(c->n, 1);
	CHECK_EQ_INT(c->msgs[0][0], WILL_MSG_VERSION);
	struct vigil_will_info *wi;
	size_t n;
	REQUIRE(will_list(w, NULL, &wi, &n) == 0 && n == 1);
	CHECK_EQ_STR(wi[0].owner, "a");
	CHECK_EQ_STR(wi[0].recipient, "b");
	CHECK_EQ_STR(wi[0].event, "");
	CHECK_EQ_INT(wi[0].seq, 1);
	CHECK_EQ_INT(wi[0].payload_len, VIGIL_WILL_MAX);
	free(wi);
	CHECK_EQ_INT(will_set(w, NULL, "wevt", 0, (const uint8_t *)"x", 1, 0), WILL_OK);
	REQUIRE(will_list(w, "a", &wi, &n) == 0 && n == 1);
	CHECK_EQ_STR(wi[0].event, "wevt");
	CHECK_EQ_INT(wi[0].seq, 2);
	free(wi);
	CHECK_EQ_INT(will_clear(w, 0), WILL_OK);
	REQUIRE(will_list(w, NULL, &wi, &n) == 0);
	CHECK_EQ_INT(n, 0);
	free(wi);
	will_free(w);
	free(c);
}

/* A version message travels from one component to another; newest wins. */
TEST(versions_replicate_newest_wins)
{
	struct capture *ca = calloc(1, sizeof *ca), *cb = calloc(1, sizeof *cb);
	struct will *a = mk("a", ca, NULL), *b = mk("b", cb, NULL);
	will_set(a, "c", NULL, 100, PAYLOAD, sizeof PAYLOAD, 0);
	will_set(a, "b", NULL, 100, PAYLOAD, 5, 0);
	REQUIRE(ca->n == 2);
	know(b, "a", 1);
	/* newest first, then the stale one */
	CHECK_EQ_INT(will_handle_msg(b, ca->msgs[1], ca->lens[1], 0), WILL_OK);
	CHECK_EQ_INT(will_handle_msg(b, ca->msgs[0], ca->lens[0], 0), WILL_OK);
	struct vigil_will_info *wi;
	size_t n;
	REQUIRE(will_list(b, "a", &wi, &n) == 0 && n == 1);
	CHECK_EQ_STR(wi[0].recipient, "b");
	CHECK_EQ_INT(wi[0].seq, 2);
	CHECK_EQ_INT(wi[0].payload_len, 5);
	free(wi);
	/* b gossiped the new version on exactly once (after its own, at its
	 * first peer) */
	CHECK_EQ_INT(cb->n, 2);
	CHECK_EQ_INT(will_stats(b)->versions_stale, 1);
	will_free(a);
	will_free(b);
	free(ca);
	free(cb);
}

/* Malformed input: rejected, counted, nothing changes. */
TEST(decoder_rejects_malformed)
{
	struct capture *ca = calloc(1, sizeof *ca), *cb = calloc(1, sizeof *cb);
	struct will *a = mk("a", ca, NULL), *b = mk("b", cb, NULL);
	will_set(a, "b", NULL, 100, PAYLOAD, sizeof PAYLOAD, 0);
	REQUIRE(ca->n == 1);
	know(b, "a", 1);
	cb->n = 0;
	struct capture *cf = calloc(1, sizeof *cf);
	const uint8_t *good = ca->msgs[0];
	size_t glen = ca->lens[0];
	int rejected = 0;
	/* every truncation */
	for (size_t l = 0; l < glen; l++)
		rejected += will_handle_msg(b, good, l, 0) != WILL_OK;
	CHECK_EQ_INT(rejected, (int)glen);
	/* trailing garbage */
	uint8_t buf[4096];
	memcpy(buf, good, glen);
	buf[glen] = 0xc0;
	CHECK(will_handle_msg(b, buf, glen + 1, 0) != WILL_OK);
	/* hostile headers: a 4-billion-element array, a 4 GB string */
	const uint8_t huge_arr[] = { WILL_MSG_VERSION, 0xdd, 0xff, 0xff, 0xff, 0xf0 };
	const uint8_t huge_str[] = { WILL_MSG_DELIVER, 0x96, 0xdb, 0xff, 0xff, 0xff, 0xff };
	const uint8_t bad_type[] = { 0xc1, 0x90 };
	CHECK(will_handle_msg(b, huge_arr, sizeof huge_arr, 0) != WILL_OK);
	CHECK(will_handle_msg(b, huge_str, sizeof huge_str, 0) != WILL_OK);
	CHECK(will_handle_msg(b, bad_type, sizeof bad_type, 0) != WILL_OK);
	CHECK(will_merge_state(b, WILL_MSG_VERSION, huge_arr + 1, sizeof huge_arr - 1, false, 0) !=
	      WILL_OK);
	/* random bit flips: never crash; anything accepted must be well-formed */
	uint64_t s = 42;
	for (int k = 0; k < 20000; k++) {
		memcpy(buf, good, glen);
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t pos = 1 + (size_t)(s >> 33) % (glen - 1);
		buf[pos] ^= (uint8_t)(1u << ((s >> 20) & 7));
		struct will *t = mk("t", cf, NULL);
		will_handle_msg(t, buf, glen, 0);
		will_merge_state(t, WILL_MSG_VERSION, buf + 1, glen - 1, false, 0);
		will_free(t);
	}
	/* a version with a payload over 1 KiB */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char t = (char)WILL_MSG_VERSION;
	msgpack_sbuffer_write(&sb, &t, 1);
	msgpack_pack_array(&pk, 7);
	msgpack_pack_str_with_body(&pk, "z", 1);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_false(&pk);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_str_with_body(&pk, "b", 1);
	msgpack_pack_int64(&pk, 10);
	static uint8_t big[VIGIL_WILL_MAX + 1];
	msgpack_pack_bin_with_body(&pk, big, sizeof big);
	CHECK(will_handle_msg(b, (uint8_t *)sb.data, sb.size, 0) != WILL_OK);
	msgpack_sbuffer_destroy(&sb);

	struct vigil_will_info *wi;
	size_t n;
	REQUIRE(will_list(b, NULL, &wi, &n) == 0);
	CHECK_EQ_INT(n, 0);
	free(wi);
	CHECK_EQ_INT(cb->n, 0); /* nothing gossiped */
	CHECK(will_stats(b)->decode_errors > 0);
	/* and the good one still works */
	CHECK_EQ_INT(will_handle_msg(b, good, glen, 0), WILL_OK);
	REQUIRE(will_list(b, NULL, &wi, &n) == 0);
	CHECK_EQ_INT(n, 1);
	free(wi);
	will_free(a);
	will_free(b);
	free(ca);
	free(cb);
	free(cf);
}

/*
 * A restarted owner without a state file: peers echo its old will back,
 * the first will it sets after that goes above the echo.  With the will set
 * before the echo arrives, the owner re-issues above the echo.
 */
TEST(seq_never_goes_backwards)
{
	struct capture *c1 = calloc(1, sizeof *c1), *c2 = calloc(1, sizeof *c2),
		       *cp = calloc(1, sizeof *cp);
	struct will *a = mk("a", c1, NULL), *peer = mk("p", cp, NULL);
	for (int i = 0; i < 5; i++)
		will_set(a, "p", NULL, 0, PAYLOAD, 3, 0);
	know(peer, "a", 1);
	will_handle_msg(peer, c1->msgs[4], c1->lens[4], 0); /* peer holds seq 5 */
	will_free(a);

	/* restart, no file: set first, then hear the echo via push-pull */
	a = mk("a", c2, NULL);
	will_set(a, "p", NULL, 0, PAYLOAD, 7, 0); /* seq 1: a has forgotten */
	struct wbuf st;
	wbuf_init(&st);
	will_local_state(peer, false, &st);
	REQUIRE(st.len > 5 && st.p[0] == WILL_MSG_VERSION);
	uint32_t l = (uint32_t)st.p[1] << 24 | st.p[2] << 16 | st.p[3] << 8 | st.p[4];
	CHECK_EQ_INT(will_merge_state(a, st.p[0], st.p + 5, l, false, 0), WILL_OK);
	struct vigil_will_info *wi;
	size_t n;
	REQUIRE(will_list(a, "a", &wi, &n) == 0 && n == 1);
	CHECK_EQ_INT(wi[0].seq, 6);           /* re-issued above the echo */
	CHECK_EQ_INT(wi[0].payload_len, 7);   /* with the will set here */
	free(wi);
	/* and it told the cluster */
	REQUIRE(c2->n == 2);
	will_handle_msg(peer, c2->msgs[1], c2->lens[1], 0);
	REQUIRE(will_list(peer, "a", &wi, &n) == 0 && n == 1);
	CHECK_EQ_INT(wi[0].seq, 6);
	CHECK_EQ_INT(wi[0].payload_len, 7);
	free(wi);
	will_free(a);

	/* restart, no file, nothing set: adopt the cluster's copy; next set is 7 */
	memset(c2, 0, sizeof *c2);
	a = mk("a", c2, NULL);
	wbuf_reset(&st);
	will_local_state(peer, false, &st);
	l = (uint32_t)st.p[1] << 24 | st.p[2] << 16 | st.p[3] << 8 | st.p[4];
	will_merge_state(a, st.p[0], st.p + 5, l, false, 0);
	will_set(a, NULL, "e", 0, NULL, 0, 0);
	REQUIRE(will_list(a, "a", &wi, &n) == 0 && n == 1);
	CHECK_EQ_INT(wi[0].seq, 7);
	free(wi);
	wbuf_free(&st);
	will_free(a);
	will_free(peer);
	free(c1);
	free(c2);
	free(cp);
}

TEST(save_load_roundtrip_and_corruption)
{
	char dir[] = "/tmp/test_will_ut.XXXXXX";
	REQUIRE(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof path, "%s/a.will", dir);
	struct capture *c = calloc(1, sizeof *c);
	struct will *a = mk("a", c, path);
	CHECK_EQ_INT(will_load(a, path), WILL_ENOENT);
	will_set(a, "b", NULL, 1234, PAYLOAD, sizeof PAYLOAD, 0);
	will_set(a, "b", NULL, 1234, PAYLOAD, sizeof PAYLOAD, 0);
	/* a delivery to a: recorded (owner z, inc 4) */
	struct swim_member z = mkmember("z", SWIM_DEAD, 4, 9);
	will_on_member(a, SWIM_EV_LEAVE, &z, 0);
	struct capture *cz = calloc(1, sizeof *cz);
	struct will *zw = mk("z", cz, NULL);
	will_set(zw, "a", NULL, 0, PAYLOAD, 4, 0);
	will_handle_msg(a, cz->msgs[0], cz->lens[0], 0);
	will_tick(a, 1);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 1);
	will_free(a);

	/* restart: own will and seq back, delivery remembered */
	memset(c, 0, sizeof *c);
	a = mk("a", c, path);
	CHECK_EQ_INT(will_load(a, path), WILL_OK);
	struct vigil_will_info *wi;
	size_t n;
	REQUIRE(will_list(a, "a", &wi, &n) == 0 && n == 1);
	CHECK_EQ_INT(wi[0].seq, 2);
	CHECK_EQ_INT(wi[0].delay_ms, 1234);
	CHECK_EQ_INT(wi[0].payload_len, sizeof PAYLOAD);
	free(wi);
	will_on_member(a, SWIM_EV_LEAVE, &z, 10);
	will_handle_msg(a, cz->msgs[0], cz->lens[0], 10);
	will_tick(a, 11);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 0);
	will_free(a);

	/* every single-byte corruption: an error and a fresh start, never a crash */
	FILE *f = fopen(path, "rb");
	REQUIRE(f);
	uint8_t img[8192];
	size_t len = fread(img, 1, sizeof img, f);
	fclose(f);
	int errors = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t bad[8192];
		memcpy(bad, img, len);
		bad[i] ^= 0x5a;
		f = fopen(path, "wb");
		fwrite(bad, 1, len, f);
		fclose(f);
		a = mk("a", c, NULL);
		int rc = will_load(a, path);
		errors += rc == WILL_EFORMAT;
		if (rc != WILL_OK) {
			REQUIRE(will_list(a, NULL, &wi, &n) == 0);
			CHECK_EQ_INT(n, 0);
			free(wi);
		}
		will_free(a);
	}
	CHECK_EQ_INT(errors, (int)len);
	/* truncated */
	f = fopen(path, "wb");
	fwrite(img, 1, len / 2, f);
	fclose(f);
	a = mk("a", c, NULL);
	CHECK_EQ_INT(will_load(a, path), WILL_EFORMAT);
	will_free(a);
	will_free(zw);
	unlink(path);
	rmdir(dir);
	free(c);
	free(cz);
}

/* Trigger rules on one component with a fake member feed. */
/*
 * The embedder's loop asks for the next deadline after every datagram.
 * With a record for each of 1,000 members that question scanned them all
 * each time (a third of an agent's CPU in a 1,000-agent join storm); now
 * the answer is kept, and only a change to the records (and then one
 * tick) costs a pass.
 */
TEST(next_deadline_is_kept_not_rescanned)
{
	struct capture *c = calloc(1, sizeof *c);
	struct will *w = mk("a", c, NULL);
	REQUIRE(w != NULL);
	char name[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "m%04d", i);
		struct swim_member m = mkmember(name, SWIM_ALIVE, 1, (uint8_t)(i % 250 + 2));
		will_on_member(w, SWIM_EV_JOIN, &m, 0);
	}
	will_tick(w, 1);
	uint64_t scans = will_stats(w)->due_scans;
	CHECK(scans >= 1);
	for (int64_t t = 2; t < 10000; t++) { /* 10,000 loop turns, nothing changes */
		if (will_next_deadline(w) <= t)
			will_tick(w, t);
	}
	CHECK_EQ_INT(will_stats(w)->due_scans, scans);
	/* a change: one pass, and the deadline is right again */
	struct swim_member dead = mkmember("m0500", SWIM_DEAD, 1, 2);
	will_on_member(w, SWIM_EV_LEAVE, &dead, 10000);
	CHECK_EQ_INT(will_next_deadline(w), 0);
	will_tick(w, 10000);
	CHECK_EQ_INT(will_stats(w)->due_scans, scans + 1);
	CHECK(will_next_deadline(w) > 10000 && will_next_deadline(w) < INT64_MAX);
	will_free(w);
	free(c);
}

TEST(trigger_rules_single_node)
{
	struct capture *c = calloc(1, sizeof *c), *co = calloc(1, sizeof *co);
	struct will *b = mk("b", c, NULL), *o = mk("o", co, NULL);
	struct swim_member mb = mkmember("b", SWIM_ALIVE, 1, 2);
	will_on_member(b, SWIM_EV_JOIN, &mb, 0);
	will_set(o, "b", NULL, 1000, PAYLOAD, 4, 0);
	struct swim_member m = mkmember("o", SWIM_ALIVE, 1, 1);
	will_on_member(b, SWIM_EV_JOIN, &m, 0);
	will_handle_msg(b, co->msgs[0], co->lens[0], 0);

	/* left: never */
	m.state = SWIM_LEFT;
	will_on_member(b, SWIM_EV_LEAVE, &m, 100);
	will_tick(b, 5000);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 0);
	CHECK_EQ_INT(will_next_deadline(b), INT64_MAX);

	/* dead then back within the delay: cancelled */
	m.state = SWIM_ALIVE;
	m.incarnation = 2;
	will_on_member(b, SWIM_EV_JOIN, &m, 6000);
	m.state = SWIM_DEAD;
	will_on_member(b, SWIM_EV_LEAVE, &m, 7000);
	CHECK_EQ_INT(will_next_deadline(b), 0); /* changed: tick first */
	will_tick(b, 7000);
	CHECK_EQ_INT(will_next_deadline(b), 8000);
	will_tick(b, 7999);
	m.state = SWIM_ALIVE;
	m.incarnation = 3;
	will_on_member(b, SWIM_EV_JOIN, &m, 7999);
	will_tick(b, 9000);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 0);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_RETURNED], 0);

	/* dead past the delay: delivered once; back: returned + revoked */
	m.state = SWIM_DEAD;
	will_on_member(b, SWIM_EV_LEAVE, &m, 10000);
	will_tick(b, 10999);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 0);
	will_tick(b, 11000);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 1);
	will_tick(b, 20000);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 1);
	m.state = SWIM_ALIVE;
	m.incarnation = 4;
	will_on_member(b, SWIM_EV_JOIN, &m, 30000);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_RETURNED], 1);
	CHECK_EQ_INT(c->events[VIGIL_EV_WILL_REVOKED], 1);
	/* a second, later death delivers again (a new key) */
	m.state = SWIM_DEAD;
	will_on_member(b, SWIM_EV_LEAVE, &m, 40000);
	will_tick(b, 41000);
	CHECK_EQ_INT(c->events[VIGIL_EV_MEMBER_WILL], 2);
	will_free(b);
	will_free(o);
	free(c);
	free(co);
}

/* A holder waits for a dead recipient, then gives up once. */
/*
 * Finding 3 of issue 14: a holder that saw the owner die hands the will
 * to a recipient that still sees the owner alive (owner and recipient on
 * one side of a cut that just healed, the recipient seen back first).  The
 * recipient's own view decides: dropped and counted, not acknowledged.
 * Once it holds the owner dead itself, the holder's next copy is
 * delivered; the owner back at a higher incarnation: will-revoked.
 */
TEST(recipient_view_decides)
{
	struct capture *cb = calloc(1, sizeof *cb), *ch = calloc(1, sizeof *ch),
		       *co = calloc(1, sizeof *co);
	REQUIRE(cb && ch && co);
	struct will *b = mk("b", cb, NULL), *h = mk("h", ch, NULL), *o = mk("o", co, NULL);
	struct swim_member mb = mkmember("b", SWIM_ALIVE, 1, 2);
	struct swim_member mo = mkmember("o", SWIM_ALIVE, 1, 1);
	struct swim_member mh = mkmember("h", SWIM_ALIVE, 1, 3);
	will_on_member(h, SWIM_EV_JOIN, &mb, 0);
	will_on_member(h, SWIM_EV_JOIN, &mo, 0);
	will_on_member(b, SWIM_EV_JOIN, &mh, 0);
	will_on_member(b, SWIM_EV_JOIN, &mo, 0);
	will_set(o, "b", NULL, 1000, PAYLOAD, 4, 0);
	will_handle_msg(h, co->msgs[0], co->lens[0], 0);
	will_handle_msg(b, co->msgs[0], co->lens[0], 0);
	/* the holder sees the owner die; the recipient does not */
	mo.state = SWIM_DEAD;
	will_on_member(h, SWIM_EV_LEAVE, &mo, 1000);
	int sent = ch->n;
	for (int64_t t = 2000; t <= 4000; t += 100)
		will_tick(h, t);
	REQUIRE(ch->n > sent);
	for (int i = sent; i < ch->n; i++)
		will_handle_msg(b, ch->msgs[i], ch->lens[i], 4000);
	CHECK_EQ_INT(cb->events[VIGIL_EV_MEMBER_WILL], 0);
	CHECK(will_stats(b)->deliveries_owner_alive >= 1);
	/* now the recipient holds it dead too: the next copy is delivered */
	will_on_member(b, SWIM_EV_LEAVE, &mo, 5000);
	sent = ch->n;
	for (int64_t t = 5000; t <= 120000 && ch->n == sent; t += 100)
		will_tick(h, t);
	for (int i = sent; i < ch->n; i++)
		will_handle_msg(b, ch->msgs[i], ch->lens[i], 6000);
	will_tick(b, 7000); /* b's own release, if its copy was first */
	CHECK_EQ_INT(cb->events[VIGIL_EV_MEMBER_WILL], 1);
	mo.state = SWIM_ALIVE;
	mo.incarnation = 2;
	will_on_member(b, SWIM_EV_JOIN, &mo, 130000);
	CHECK_EQ_INT(cb->events[VIGIL_EV_WILL_REVOKED], 1);
	will_free(b);
	will_free(h);
	will_free(o);
	free(cb);
	free(ch);
	free(co);
}

TEST(undeliverable_after_reap_interval)
{
	struct capture *c = calloc(1, sizeof *c), *co = calloc(1, sizeof *co);
	struct will_config cfg;
	will_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "h");
	cfg.reap_interval_ms = 60000;
	cfg.on_event = cap_event;
	cfg.event_ctx = c;
	cfg.out = (struct will_outbox){ .ctx = c, .broadcast = cap_bcast, .send_to = cap_send };
	struct will *h = will_new(&cfg, 0), *o = mk("o", co, NULL);
	will_set(o, "r", NULL, 1000, PAYLOAD, 4, 0);
	know(h, "o", 1);
	c->n = 0;
	will_handle_msg(h, co->msgs[0], co->lens[0], 0);
	struct swim_member mh = mkmember("h", SWIM_ALIVE, 1, 3);
	struct swim_member mr = mkmember("r", SWIM_DEAD, 1, 2);
	struct swim_member mo = mkmember("o", SWIM_DEAD, 1, 1);
	will_on_member(h, SWIM_EV_JOIN, &mh, 0);
	will_on_member(h, SWIM_EV_LEAVE, &mr, 0);
	will_on_member(h, SWIM_EV_LEAVE, &mo, 0);
	for (int64_t t = 0; t <= 70000; t += 500)
		will_tick(h, t);
	CHECK_EQ_INT(count_type(c, WILL_MSG_DELIVER), 0); /* nothing sent to a dead recipient */
	CHECK_EQ_INT(c->events[VIGIL_EV_WILL_UNDELIVERABLE], 1);
	for (int64_t t = 70000; t <= 200000; t += 500)
		will_tick(h, t);
	CHECK_EQ_INT(c->events[VIGIL_EV_WILL_UNDELIVERABLE], 1);
	CHECK_EQ_INT(will_next_deadline(h), INT64_MAX);
	will_free(h);
	will_free(o);
	free(c);
	free(co);
}

/* ============================================== forged wills (issue 15) */

/*
 * An attacker crafts will messages itself: the unsigned format of the
 * first will protocol, and the signed format (the layout of will.h) signed
 * with a key of its own — what a member holding the cluster key, or anyone
 * on a plaintext cluster, can send.  None of them may take effect.
 */
#define SIG_TAG "vigil-will-v1"

struct forger {
	EVP_PKEY *key;
	uint8_t pub[32];
};

static void forger_init(struct forger *f)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	f->key = NULL;
	if (!kc || EVP_PKEY_keygen_init(kc) <= 0 || EVP_PKEY_keygen(kc, &f->key) <= 0)
		abort();
	EVP_PKEY_CTX_free(kc);
	size_t n = sizeof f->pub;
	if (EVP_PKEY_get_raw_public_key(f->key, f->pub, &n) != 1)
		abort();
}

/* Sign tag || type || body with the forger's key. */
static void forger_sign(const struct forger *f, uint8_t type, const msgpack_sbuffer *body,
			uint8_t sig[64])
{
	size_t n = sizeof SIG_TAG - 1 + 1 + body->size;
	uint8_t *m = malloc(n);
	memcpy(m, SIG_TAG, sizeof SIG_TAG - 1);
	m[sizeof SIG_TAG - 1] = type;
	memcpy(m + sizeof SIG_TAG, body->data, body->size);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	size_t sl = 64;
	if (!mc || EVP_DigestSignInit(mc, NULL, NULL, NULL, f->key) != 1 ||
	    EVP_DigestSign(mc, sig, &sl, m, n) != 1)
		abort();
	EVP_MD_CTX_free(mc);
	free(m);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

struct forged {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void fg_begin(struct forged *g, uint8_t type)
{
	msgpack_sbuffer_init(&g->sb);
	msgpack_packer_init(&g->pk, &g->sb, msgpack_sbuffer_write);
	if (type)
		msgpack_sbuffer_write(&g->sb, (const char *)&type, 1);
}

/* The signed fields of a version: [owner, seq, tomb, kind, target, delay, payload]. */
static void fg_version_fields(msgpack_packer *pk, uint32_t extra, const char *owner,
			      uint64_t seq, bool tomb, const char *target,
			      const uint8_t *p, size_t plen)
{
	msgpack_pack_array(pk, 7 + extra);
	pk_str(pk, owner);
	msgpack_pack_uint64(pk, seq);
	if (tomb)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	msgpack_pack_uint8(pk, 0);
	pk_str(pk, tomb ? "" : target);
	msgpack_pack_int64(pk, 0);
	msgpack_pack_bin_with_body(pk, p, tomb ? 0 : plen);
}

/* A version array into pk: unsigned (f NULL) or signed by f. */
static void fg_version(msgpack_packer *pk, const struct forger *f, const char *owner,
		       uint64_t seq, bool tomb, const char *target, const uint8_t *p,
		       size_t plen)
{
	if (!f) {
		fg_version_fields(pk, 0, owner, seq, tomb, target, p, plen);
		return;
	}
	struct forged body;
	uint8_t sig[64];
	fg_begin(&body, 0);
	fg_version_fields(&body.pk, 0, owner, seq, tomb, target, p, plen);
	forger_sign(f, WILL_MSG_VERSION, &body.sb, sig);
	msgpack_sbuffer_destroy(&body.sb);
	fg_version_fields(pk, 2, owner, seq, tomb, target, p, plen);
	msgpack_pack_bin_with_body(pk, f->pub, 32);
	msgpack_pack_bin_with_body(pk, sig, 64);
}

static void fg_send(struct will *w, struct forged *g)
{
	will_handle_msg(w, (const uint8_t *)g->sb.data, g->sb.size, 0);
	msgpack_sbuffer_destroy(&g->sb);
}

static void forge_version(struct will *w, const struct forger *f, const char *owner,
			  uint64_t seq, bool tomb, const char *target)
{
	struct forged g;
	fg_begin(&g, WILL_MSG_VERSION);
	fg_version(&g.pk, f, owner, seq, tomb, target, (const uint8_t *)"FORGED", 6);
	fg_send(w, &g);
}

/* DELIVER: old [owner, inc, seq, recipient, payload, sender],
 * signed [version, inc, sender]. */
static void forge_deliver(struct will *w, const struct forger *f, const char *owner,
			  uint32_t inc, uint64_t seq, const char *recipient)
{
	struct forged g;
	fg_begin(&g, WILL_MSG_DELIVER);
	if (!f) {
		msgpack_pack_array(&g.pk, 6);
		pk_str(&g.pk, owner);
		msgpack_pack_uint32(&g.pk, inc);
		msgpack_pack_uint64(&g.pk, seq);
		pk_str(&g.pk, recipient);
		msgpack_pack_bin_with_body(&g.pk, "FORGED", 6);
		pk_str(&g.pk, "");
	} else {
		msgpack_pack_array(&g.pk, 3);
		fg_version(&g.pk, f, owner, seq, false, recipient, (const uint8_t *)"FORGED", 6);
		msgpack_pack_uint32(&g.pk, inc);
		pk_str(&g.pk, "");
	}
	fg_send(w, &g);
}

/* DONE: [owner, inc, seq, kind, by] (+ pubkey, sig when signed). */
static void forge_done(struct will *w, const struct forger *f, const char *owner,
		       uint32_t inc, uint64_t seq, const char *by)
{
	struct forged g, body;
	fg_begin(&g, WILL_MSG_DONE);
	fg_begin(&body, 0);
	msgpack_packer *pks[2] = { &g.pk, &body.pk };
	for (int k = 0; k < 2; k++) {
		msgpack_pack_array(pks[k], f && k == 0 ? 7 : 5);
		pk_str(pks[k], owner);
		msgpack_pack_uint32(pks[k], inc);
		msgpack_pack_uint64(pks[k], seq);
		msgpack_pack_uint8(pks[k], 0);
		pk_str(pks[k], by);
	}
	if (f) {
		uint8_t sig[64];
		forger_sign(f, WILL_MSG_DONE, &body.sb, sig);
		msgpack_pack_bin_with_body(&g.pk, f->pub, 32);
		msgpack_pack_bin_with_body(&g.pk, sig, 64);
	}
	msgpack_sbuffer_destroy(&body.sb);
	fg_send(w, &g);
}

/* The victim's view of owner's will: seq and payload length (0/0 = none). */
static void held(struct will *w, const char *owner, uint64_t *seq, size_t *plen)
{
	struct vigil_will_info *wi;
	size_t n;
	*seq = 0;
	*plen = 0;
	if (will_list(w, owner, &wi, &n) == 0 && n == 1) {
		*seq = wi[0].seq;
		*plen = wi[0].payload_len;
	}
	free(wi);
}

/* Members o (owner), h (holder), c (recipient) all alive, h and c hold o's will. */
struct trio {
	struct capture *co, *ch, *cc;
	struct will *o, *h, *c;
};

static void trio_init(struct trio *t)
{
	t->co = calloc(1, sizeof *t->co);
	t->ch = calloc(1, sizeof *t->ch);
	t->cc = calloc(1, sizeof *t->cc);
	t->o = mk("o", t->co, NULL);
	t->h = mk("h", t->ch, NULL);
	t->c = mk("c", t->cc, NULL);
	struct will *all[3] = { t->o, t->h, t->c };
	const char *names[3] = { "o", "h", "c" };
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			struct swim_member m = mkmember(names[j], SWIM_ALIVE, 1, (uint8_t)(j + 1));
			will_on_member(all[i], SWIM_EV_JOIN, &m, 0);
		}
	will_set(t->o, "c", NULL, 1000, PAYLOAD, 4, 0);
	for (int k = 0; k < t->co->n; k++) {
		will_handle_msg(t->h, t->co->msgs[k], t->co->lens[k], 0);
		will_handle_msg(t->c, t->co->msgs[k], t->co->lens[k], 0);
	}
	t->co->n = t->ch->n = t->cc->n = 0;
}

/* w sees o die (incarnation 1), then runs its deadlines up to `until` ms. */
static void o_dies_at(struct will *w, int64_t until)
{
	struct swim_member m = mkmember("o", SWIM_DEAD, 1, 1);
	will_on_member(w, SWIM_EV_LEAVE, &m, 0);
	for (int64_t now = 0; now <= until; now += 100)
		will_tick(w, now);
}

static void trio_free(struct trio *t)
{
	will_free(t->o);
	will_free(t->h);
	will_free(t->c);
	free(t->co);
	free(t->ch);
	free(t->cc);
}

/* (1) + (2): a version or tombstone at seq 2^64-1 for o's will. */
TEST(attack_forged_version_max_seq)
{
	struct trio t;
	struct forger f;
	forger_init(&f);
	trio_init(&t);
	uint64_t seq;
	size_t plen;
	held(t.h, "o", &seq, &plen);
	REQUIRE(seq == 1 && plen == 4);
	for (int signed_ = 0; signed_ < 2; signed_++) {
		const struct forger *fp = signed_ ? &f : NULL;
		forge_version(t.h, fp, "o", UINT64_MAX, false, "h");
		forge_version(t.h, fp, "o", UINT64_MAX - 1, true, "");
		forge_version(t.h, fp, "o", 2, false, "h");
		/* at the owner itself: its next will must not wrap */
		forge_version(t.o, fp, "o", UINT64_MAX, false, "h");
	}
	held(t.h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 1);
	CHECK_EQ_INT(plen, 4);
	CHECK_EQ_INT(t.ch->n, 0); /* nothing gossiped on */
	/* the owner's real next will still spreads */
	will_set(t.o, "c", NULL, 1000, PAYLOAD, 5, 0);
	held(t.o, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 2);
	for (int k = 0; k < t.co->n; k++)
		will_handle_msg(t.h, t.co->msgs[k], t.co->lens[k], 0);
	held(t.h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 2);
	CHECK_EQ_INT(plen, 5);
	trio_free(&t);
	EVP_PKEY_free(f.key);
}

/* (3): a forged delivery while the owner is alive (and, signed, one with
 * a key that is not the owner's even when the owner is dead). */
TEST(attack_forged_delivery)
{
	struct trio t;
	struct forger f;
	forger_init(&f);
	trio_init(&t);
	forge_deliver(t.c, NULL, "o", 1, 1, "c");
	forge_deliver(t.c, NULL, "o", 7, 9, "c");
	forge_deliver(t.c, &f, "o", 1, 2, "c");
	CHECK_EQ_INT(t.cc->events[VIGIL_EV_MEMBER_WILL], 0);
	/* o dead in c's view: still not with a forged signature */
	o_dies_at(t.c, -1);
	forge_deliver(t.c, &f, "o", 1, 2, "c");
	forge_deliver(t.c, &f, "x", 1, 1, "c"); /* an owner c has no key for */
	CHECK_EQ_INT(t.cc->events[VIGIL_EV_MEMBER_WILL], 0);
	trio_free(&t);
	EVP_PKEY_free(f.key);
}

/* (4): a forged "done" ahead of the death must not stop the delivery. */
TEST(attack_forged_done)
{
	struct trio t;
	struct forger f;
	forger_init(&f);
	trio_init(&t);
	forge_done(t.h, NULL, "o", UINT32_MAX, 1, "c");
	forge_done(t.h, &f, "o", UINT32_MAX, 1, "c");
	forge_done(t.h, &f, "o", 1, 1, "c");
	o_dies_at(t.h, 10000);
	CHECK(count_type(t.ch, WILL_MSG_DELIVER) >= 1);
	trio_free(&t);
	EVP_PKEY_free(f.key);
}

/* (5): 21,000 forged 1 KiB wills must not blow up push-pull state. */
TEST(attack_will_flood)
{
	struct capture *c = calloc(1, sizeof *c);
	struct will *h = mk("h", c, NULL);
	struct forger f;
	forger_init(&f);
	static uint8_t kib[VIGIL_WILL_MAX];
	char owner[32];
	for (int i = 0; i < 21000; i++) {
		snprintf(owner, sizeof owner, "x%05d", i);
		struct forged g;
		fg_begin(&g, WILL_MSG_VERSION);
		fg_version(&g.pk, i % 50 == 0 ? &f : NULL, owner, 1, false, "h", kib, sizeof kib);
		fg_send(h, &g);
	}
	struct wbuf st;
	wbuf_init(&st);
	will_local_state(h, false, &st);
	printf("# push-pull will state after the flood: %zu bytes\n", st.len);
	CHECK(st.len < WIRE_PUSH_MAX / 4);
	wbuf_free(&st);
	will_free(h);
	free(c);
	EVP_PKEY_free(f.key);
}

/* The memory bound holds for correctly signed wills of real members too. */
TEST(held_wills_bounded)
{
	struct capture *c = calloc(1, sizeof *c);
	struct will *h = mk("h", c, NULL);
	static uint8_t kib[VIGIL_WILL_MAX];
	char owner[32];
	int n = (int)(WILL_HOLD_MAX_BYTES / VIGIL_WILL_MAX) + 100;
	for (int i = 0; i < n; i++) {
		struct forger f;
		forger_init(&f);
		snprintf(owner, sizeof owner, "m%05d", i);
		know(h, owner, 9);
		struct forged g;
		fg_begin(&g, WILL_MSG_VERSION);
		fg_version(&g.pk, &f, owner, 1, false, "h", kib, sizeof kib);
		fg_send(h, &g);
		EVP_PKEY_free(f.key);
	}
	const struct will_stats *st = will_stats(h);
	struct vigil_will_info *wi;
	size_t held;
	REQUIRE(will_list(h, NULL, &wi, &held) == 0);
	free(wi);
	printf("# %d signed 1 KiB wills offered: %zu held, %llu refused over the bound\n", n,
	       held, (unsigned long long)st->over_budget);
	CHECK(held > 1000);
	CHECK(st->over_budget > 0);
	CHECK_EQ_INT(held + st->over_budget, n);
	struct wbuf s;
	wbuf_init(&s);
	will_local_state(h, false, &s);
	CHECK(s.len <= WILL_HOLD_MAX_BYTES + 64 * 1024);
	wbuf_free(&s);
	will_free(h);
	free(c);
}

/*
 * A member's key is bound on first sight, kept across a restart (state
 * file), and only given up when swim reaps the member.  Our own key comes
 * back from its key file.
 */
TEST(key_binding_kept_until_reaped)
{
	char dir[] = "/tmp/test_will_key.XXXXXX";
	REQUIRE(mkdtemp(dir));
	char hpath[256], opath[256], okey[300];
	snprintf(hpath, sizeof hpath, "%s/h.will", dir);
	snprintf(opath, sizeof opath, "%s/o.will", dir);
	snprintf(okey, sizeof okey, "%s.key", opath);
	struct capture *ch = calloc(1, sizeof *ch), *co = calloc(1, sizeof *co);
	struct will_config cfg;
	will_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "o");
	cfg.state_path = opath;
	cfg.out = (struct will_outbox){ .ctx = co, .broadcast = cap_bcast, .send_to = cap_send };
	struct will *o = will_new(&cfg, 0); /* no seed: creates o.will.key */
	REQUIRE(o);
	struct stat sb;
	CHECK(stat(okey, &sb) == 0 && sb.st_size == 36 && (sb.st_mode & 077) == 0);
	struct will *h = mk("h", ch, hpath);
	know(h, "o", 1);
	will_set(o, "h", NULL, 0, PAYLOAD, 4, 0);
	will_handle_msg(h, co->msgs[0], co->lens[0], 0);
	will_tick(h, 1); /* saves the new binding */
	uint64_t seq;
	size_t plen;
	held(h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 1);

	/* o restarts (its key from the file): h takes its next will */
	will_free(o);
	co->n = 0;
	o = will_new(&cfg, 0);
	REQUIRE(o && will_load(o, opath) == WILL_OK);
	will_set(o, "h", NULL, 0, PAYLOAD, 5, 0);
	will_handle_msg(h, co->msgs[0], co->lens[0], 0);
	held(h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 2);
	CHECK_EQ_INT(will_stats(h)->key_conflicts, 0);

	/* h restarts: the binding came back from its file, before o is seen */
	will_free(h);
	h = mk("h", ch, hpath);
	REQUIRE(will_load(h, hpath) == WILL_OK);
	struct forger f;
	forger_init(&f);
	forge_version(h, &f, "o", 3, false, "h");
	know(h, "o", 1);
	forge_version(h, &f, "o", 3, false, "h");
	held(h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 0);
	CHECK_EQ_INT(will_stats(h)->key_conflicts, 2); /* member or not */
	/* the real o still gets through */
	will_handle_msg(h, co->msgs[0], co->lens[0], 0);
	held(h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 2);

	/* reaped: the name is free, a new member of that name has a new key */
	struct swim_member m = mkmember("o", SWIM_DEAD, 1, 1);
	will_on_member(h, SWIM_EV_LEAVE, &m, 10);
	will_tick(h, 20); /* its will (for h) is delivered: nothing in progress */
	will_on_member(h, SWIM_EV_REAP, &m, 30);
	know(h, "o", 1);
	forge_version(h, &f, "o", 1, false, "h");
	held(h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 1);
	CHECK_EQ_INT(plen, 6);
	CHECK_EQ_INT(will_stats(h)->key_conflicts, 2);
	EVP_PKEY_free(f.key);
	will_free(o);
	will_free(h);
	unlink(okey);
	unlink(opath);
	unlink(hpath);
	rmdir(dir);
	free(ch);
	free(co);
}

/* One component h that knows member `who`, and a key for a forger. */
struct solo {
	struct capture *c;
	struct will *h;
	struct forger f;
};

static void solo_init(struct solo *s, const char *who)
{
	s->c = calloc(1, sizeof *s->c);
	s->h = mk("h", s->c, NULL);
	forger_init(&s->f);
	know(s->h, who, 7);
}

static void solo_free(struct solo *s)
{
	EVP_PKEY_free(s->f.key);
	will_free(s->h);
	free(s->c);
}

/* Even the owner's own key cannot jump its sequence towards a wrap. */
TEST(sequence_jumps_refused)
{
	struct solo so;
	solo_init(&so, "o");
	struct will *h = so.h;
	const struct forger f = so.f;
	uint64_t seq;
	size_t plen;
	forge_version(h, &f, "o", 5, false, "h");
	forge_version(h, &f, "o", 5 + WILL_SEQ_JUMP_MAX + 1, false, "h");
	forge_version(h, &f, "o", UINT64_MAX, true, "");
	held(h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 5);
	CHECK_EQ_INT(will_stats(h)->seq_refused, 2);
	forge_version(h, &f, "o", 5 + WILL_SEQ_JUMP_MAX, false, "h");
	held(h, "o", &seq, &plen);
	CHECK_EQ_INT(seq, 5 + WILL_SEQ_JUMP_MAX);
	/* and a first sight far out is refused too */
	know(h, "p", 2);
	forge_version(h, &f, "p", WILL_SEQ_MAX + 1, false, "h");
	held(h, "p", &seq, &plen);
	CHECK_EQ_INT(seq, 0);
	solo_free(&so);
}

/* Only the will's recipient may say "delivered", signed with its key. */
TEST(done_only_from_recipient)
{
	struct trio t;
	trio_init(&t);
	o_dies_at(t.h, -1);
	/* a third member x, with a good key of its own, is not o's recipient */
	struct forger x;
	forger_init(&x);
	know(t.h, "x", 7);
	forge_done(t.h, &x, "o", 1, 1, "x");
	CHECK(will_stats(t.h)->view_refused >= 1);
	/* c's own DONE (c knows o dead and delivers) is taken */
	o_dies_at(t.c, 2000);
	CHECK_EQ_INT(t.cc->events[VIGIL_EV_MEMBER_WILL], 1);
	for (int k = 0; k < t.cc->n; k++)
		will_handle_msg(t.h, t.cc->msgs[k], t.cc->lens[k], 0);
	t.ch->n = 0;
	for (int64_t now = 0; now <= 20000; now += 100)
		will_tick(t.h, now);
	/* acked by the recipient: h stays quiet */
	CHECK_EQ_INT(count_type(t.ch, WILL_MSG_DELIVER), 0);
	EVP_PKEY_free(x.key);
	trio_free(&t);
}

/*
 * A real, owner-signed delivery (sent by an honest holder that saw the
 * owner die) replayed to the recipient while the recipient sees the owner
 * alive: not run.  Once the recipient holds the owner dead, it is — once.
 */
TEST(delivery_needs_recipients_own_view)
{
	struct trio t;
	trio_init(&t);
	o_dies_at(t.h, 10000);
	int k = 0;
	while (k < t.ch->n && t.ch->msgs[k][0] != WILL_MSG_DELIVER)
		k++;
	REQUIRE(k < t.ch->n);
	/* c still sees o alive (at inc 1, and later at 2): dropped */
	CHECK_EQ_INT(will_handle_msg(t.c, t.ch->msgs[k], t.ch->lens[k], 0), WILL_OK);
	struct swim_member back = mkmember("o", SWIM_ALIVE, 2, 1);
	will_on_member(t.c, SWIM_EV_UPDATE, &back, 0);
	will_handle_msg(t.c, t.ch->msgs[k], t.ch->lens[k], 0);
	CHECK_EQ_INT(t.cc->events[VIGIL_EV_MEMBER_WILL], 0);
	CHECK_EQ_INT(will_stats(t.c)->view_refused, 2);
	/* c sees o dead (at inc 2): taken, once, as o's death at c's incarnation */
	struct swim_member m = mkmember("o", SWIM_DEAD, 2, 1);
	will_on_member(t.c, SWIM_EV_LEAVE, &m, 0);
	will_handle_msg(t.c, t.ch->msgs[k], t.ch->lens[k], 0);
	will_handle_msg(t.c, t.ch->msgs[k], t.ch->lens[k], 0);
	CHECK_EQ_INT(t.cc->events[VIGIL_EV_MEMBER_WILL], 1);
	trio_free(&t);
}

/* A member's signed "done" markers about owners nobody knows: not kept. */
TEST(done_flood_bounded)
{
	struct solo so;
	solo_init(&so, "x");
	struct will *h = so.h;
	char owner[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(owner, sizeof owner, "ghost%05d", i);
		forge_done(h, &so.f, owner, 1, 1, "x");
	}
	struct wbuf s;
	wbuf_init(&s);
	will_local_state(h, false, &s);
	printf("# push-pull will state after 3,000 markers: %zu bytes\n", s.len);
	CHECK(s.len < 4096);
	CHECK_EQ_INT(will_stats(h)->view_refused, 3000);
	wbuf_free(&s);
	solo_free(&so);
}

/* ========================================================= cluster tests */

/* Node 0 = owner "node-a", node 1 = recipient "node-b". */
static bool setup_cluster(uint64_t seed, int n, double loss, int64_t delay)
{
	net_init(seed, n, loss);
	join_all();
	if (!converge(60000))
		return false;
	if (will_set(N.nodes[0].w, "node-b", NULL, delay, PAYLOAD, sizeof PAYLOAD, N.now) != 0)
		return false;
	return wait_hold(0, 1, 60000);
}

TEST(cluster_delivered_once_under_loss)
{
	for (uint64_t seed = 1; seed <= 3; seed++) {
		if (!setup_cluster(seed, 5, 0.10, 2000)) {
			CHECK(!"cluster did not form / will did not replicate");
			net_free();
			return;
		}
		node_stop(0); /* kill -9 the owner */
		CHECK(wait_dead(0, 60000));
		run_for(60000);
		CHECK_EQ_INT(N.nodes[1].c.will, 1);
		CHECK_EQ_INT(total_wills(), 1);
		CHECK_EQ_STR(N.nodes[1].c.will_owner, "node-a");
		CHECK_EQ_INT(N.nodes[1].c.will_len, sizeof PAYLOAD);
		CHECK(memcmp(N.nodes[1].c.will_payload, PAYLOAD, sizeof PAYLOAD) == 0);
		for (int i = 1; i < N.n; i++)
			CHECK_EQ_INT(N.nodes[i].c.undeliverable, 0);
		if (getenv("WILL_VERBOSE"))
			summary(__func__);
		net_free();
	}
}

/*
 * The recipient crashes and restarts before the will is due (once before
 * the owner dies, once after), gets it once; restarted again, not twice.
 */
TEST(cluster_recipient_restarts)
{
	REQUIRE(setup_cluster(7, 5, 0.10, 5000));
	node_stop(1);
	run_for(3000);
	node_start(1);
	join_node(1, 2);
	CHECK(converge(60000) || true);
	run_for(5000);
	node_stop(0);
	run_for(1000);
	node_stop(1); /* down when the will falls due: holders must wait */
	CHECK(wait_dead(0, 60000));
	run_for(15000);
	CHECK_EQ_INT(total_wills(), 0);
	node_start(1);
	join_node(1, 3);
	run_for(60000);
	CHECK_EQ_INT(N.nodes[1].c.will, 1);
	CHECK_EQ_INT(total_wills(), 1);
	for (int i = 1; i < N.n; i++)
		CHECK_EQ_INT(N.nodes[i].c.undeliverable + N.nodes[i].c.returned, 0);
	/* crash + restart again: the delivery is remembered (state file) */
	node_stop(1);
	run_for(5000);
	node_start(1);
	join_node(1, 2);
	run_for(60000);
	CHECK_EQ_INT(N.nodes[1].c.will, 1);
	CHECK_EQ_INT(total_wills(), 1);
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

TEST(cluster_owner_returns_within_delay)
{
	REQUIRE(setup_cluster(11, 5, 0.0, 20000));
	node_stop(0);
	CHECK(wait_dead(0, 60000));
	run_for(1000);
	node_start(0); /* restart within the delay */
	join_node(0, 2);
	CHECK(converge(30000));
	run_for(120000);
	CHECK_EQ_INT(total_wills(), 0);
	for (int i = 0; i < N.n; i++) {
		CHECK_EQ_INT(N.nodes[i].c.returned, 0);
		CHECK_EQ_INT(N.nodes[i].c.revoked, 0);
	}
	/* the restarted owner kept its will (state file) and everyone holds it */
	CHECK(all_hold(0, 1));
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

TEST(cluster_graceful_leave_not_delivered)
{
	REQUIRE(setup_cluster(13, 5, 0.05, 1000));
	serf_layer_leave(N.nodes[0].sl, N.now);
	run_for(2000);
	swim_leave(N.nodes[0].sw, N.now);
	for (int k = 0; k < 100 && !swim_leave_done(N.nodes[0].sw); k++)
		run_for(100);
	node_stop(0);
	run_for(60000);
	for (int i = 1; i < N.n; i++)
		CHECK(view(i, 0) == SWIM_LEFT);
	CHECK_EQ_INT(total_wills(), 0);
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

TEST(cluster_partitioned_recipient_comes_back)
{
	REQUIRE(setup_cluster(17, 5, 0.05, 2000));
	partition(1, 1); /* the recipient is cut off */
	run_for(30000);
	node_stop(0);
	run_for(60000);
	int during = total_wills();
	partition(1, 0); /* heal */
	run_for(120000);
	CHECK_EQ_INT(N.nodes[1].c.will, 1);
	CHECK_EQ_INT(total_wills(), 1);
	CHECK(during <= 1);
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

/* The will is set while the owner and recipient are both fine; a holder
 * far away in name order must not send when the recipient acked. */
TEST(cluster_senders_stay_quiet)
{
	REQUIRE(setup_cluster(19, 6, 0.0, 1000));
	node_stop(0);
	CHECK(wait_dead(0, 60000));
	run_for(30000);
	CHECK_EQ_INT(total_wills(), 1);
	uint64_t sent = 0;
	for (int i = 2; i < N.n; i++)
		sent += will_stats(N.nodes[i].w)->deliveries_sent;
	/* the recipient delivered to itself; at most the rank-0 holder sent */
	CHECK(sent <= 1);
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

/*
 * The owner comes back after its will was delivered: member-returned on
 * every member, will-revoked at the recipient; a later death is a new key.
 */
TEST(cluster_owner_returns_after_delivery)
{
	REQUIRE(setup_cluster(31, 5, 0.05, 2000));
	node_stop(0);
	CHECK(wait_dead(0, 60000));
	run_for(20000);
	CHECK_EQ_INT(N.nodes[1].c.will, 1);
	node_start(0);
	join_node(0, 2);
	CHECK(converge(60000));
	run_for(10000);
	for (int i = 1; i < N.n; i++) {
		CHECK_EQ_INT(N.nodes[i].c.returned, 1);
		CHECK(N.nodes[i].c.returned_ms >= 2000);
		CHECK_EQ_INT(N.nodes[i].c.revoked, i == 1 ? 1 : 0);
	}
	CHECK_EQ_INT(total_wills(), 1);
	/* dies again: delivered again, once */
	node_stop(0);
	CHECK(wait_dead(0, 60000));
	run_for(30000);
	CHECK_EQ_INT(N.nodes[1].c.will, 2);
	CHECK_EQ_INT(total_wills(), 2);
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

TEST(cluster_event_will_publisher_dies)
{
	net_init(23, 6, 0.05);
	join_all();
	REQUIRE(converge(60000));
	/* the owner is the last name so node-a is the chosen publisher */
	int owner = 5;
	REQUIRE(will_set(N.nodes[owner].w, NULL, "wevt", 8000, PAYLOAD, 10, N.now) == 0);
	REQUIRE(wait_hold(owner, 1, 60000));
	node_stop(owner);
	run_for(2000);
	node_stop(0); /* the chosen publisher dies mid-way */
	run_for(90000);
	uint64_t published = 0;
	for (int i = 1; i < N.n - 1; i++) {
		CHECK_EQ_INT(N.nodes[i].c.user_ev, 1);
		published += will_stats(N.nodes[i].w)->published;
	}
	CHECK_EQ_INT(published, 1);
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

/* The publisher dies right after the release, before it could publish. */
TEST(cluster_event_will_publisher_dies_at_release)
{
	net_init(29, 5, 0.0);
	join_all();
	REQUIRE(converge(60000));
	int owner = 4;
	REQUIRE(will_set(N.nodes[owner].w, NULL, "wevt", 3000, PAYLOAD, 10, N.now) == 0);
	REQUIRE(wait_hold(owner, 1, 60000));
	/* node-a cannot reach anyone from the moment the owner dies */
	node_stop(owner);
	partition(0, 1);
	run_for(120000);
	int total = 0;
	for (int i = 1; i < N.n - 1; i++) {
		CHECK_EQ_INT(N.nodes[i].c.user_ev, 1);
		total += (int)will_stats(N.nodes[i].w)->published;
	}
	CHECK_EQ_INT(total, 1);
	if (getenv("WILL_VERBOSE"))
		summary(__func__);
	net_free();
}

TEST_MAIN(next_deadline_is_kept_not_rescanned, recipient_view_decides, set_validates_and_lists, versions_replicate_newest_wins, decoder_rejects_malformed,
	  seq_never_goes_backwards, save_load_roundtrip_and_corruption,
	  trigger_rules_single_node, undeliverable_after_reap_interval,
	  cluster_delivered_once_under_loss, cluster_recipient_restarts,
	  cluster_owner_returns_within_delay, cluster_graceful_leave_not_delivered,
	  cluster_partitioned_recipient_comes_back, cluster_senders_stay_quiet,
	  cluster_owner_returns_after_delivery,
	  cluster_event_will_publisher_dies, cluster_event_will_publisher_dies_at_release,
	  attack_forged_version_max_seq, attack_forged_delivery, attack_forged_done,
	  attack_will_flood, held_wills_bounded, key_binding_kept_until_reaped,
	  sequence_jumps_refused, done_only_from_recipient,
	  delivery_needs_recipients_own_view, done_flood_bounded)
