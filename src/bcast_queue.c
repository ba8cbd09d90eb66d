/*
 * bcast_queue.c — the broadcast queue (see bcast_queue.h).
 */
#include "bcast_queue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "members.h"

#define N_BUCKETS 64             /* more than any retransmit limit we will compute */

int bcast_node_scale(size_t n)
{
	return (int)ceil(log10((double)n + 1));
}

int bcast_retransmit_limit(int mult, size_t n)
{
	int lim = mult * bcast_node_scale(n);
	return lim < 1 ? 1 : lim;
}

bool bcast_queue_init(struct bcast_queue *q)
{
	memset(q, 0, sizeof *q);
	wbuf_init(&q->alive_out);
	q->n_buckets = N_BUCKETS;
	q->buckets = calloc((size_t)q->n_buckets, sizeof *q->buckets);
	return q->buckets != NULL;
}

static struct bcast *q_bcast(struct qlink *q)
{
	return (struct bcast *)((char *)q - offsetof(struct bcast, q));
}

static struct member *q_member(struct qlink *q)
{
	return (struct member *)((char *)q - offsetof(struct member, r.alive));
}

void bcast_queue_free(struct bcast_queue *q)
{
	for (int t = 0; q->buckets && t < q->n_buckets; t++) {
		struct qbucket *b = &q->buckets[t];
		for (uint32_t j = 0; j < b->n; j++)
			if (b->v[j] && !b->v[j]->in_member)
				free(q_bcast(b->v[j]));
		free(b->v);
	}
	free(q->buckets);
	q->buckets = NULL;
	wbuf_free(&q->alive_out);
}

static bool q_resize(struct qbucket *b, uint32_t cap)
{
	struct qlink **v = realloc(b->v, (size_t)cap * sizeof *v);
	if (!v)
		return false;
	b->v = v;
	b->cap = cap;
	return true;
}

static void q_unlink(struct bcast_queue *bq, struct qlink *q)
{
	struct qbucket *b = &bq->buckets[q->transmits];
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
static bool q_push(struct bcast_queue *bq, struct qlink *q)
{
	struct qbucket *b = &bq->buckets[q->transmits];
	if (b->n == b->cap && (b->cap >= UINT32_MAX / 2 || !q_resize(b, b->cap ? b->cap * 2 : 16)))
		return false;
	q->pos = b->n;
	b->v[b->n++] = q;
	return true;
}

/* A rumour has left the queue for good (replaced, retired or its member reaped). */
static void q_retire(struct bcast_queue *bq, struct qlink *q)
{
	bq->n--;
	if (q->in_member) {
		q_member(q)->rumour = RUMOUR_NONE;
		return;
	}
	struct bcast *b = q_bcast(q);
	if (!b->about)
		bq->n_user--;
	if (b->about && b->about->rumour == RUMOUR_BCAST && b->about->r.bcast == b)
		b->about->rumour = RUMOUR_NONE;
	if (b->id == bq->watch_id)
		bq->watch_retired = true;
	free(b);
}

void bcast_queue_drop(struct bcast_queue *bq, struct member *m)
{
	struct qlink *q = m->rumour == RUMOUR_ALIVE ? &m->r.alive
			  : m->rumour == RUMOUR_BCAST ? &m->r.bcast->q : NULL;
	if (!q)
		return;
	q_unlink(bq, q);
	q_retire(bq, q);
}

void bcast_queue_add(struct bcast_queue *bq, struct member *m, const uint8_t *data, size_t len)
{
	if (m)
		bcast_queue_drop(bq, m);
	if (len > UINT16_MAX)
		return;
	struct bcast *b = malloc(sizeof *b + len);
	if (!b)
		return;
	memset(b, 0, sizeof *b);
	b->about = m;
	b->q.len = (uint16_t)len;
	b->id = ++bq->last_id;
	memcpy(b->data, data, len);
	if (!q_push(bq, &b->q)) {
		free(b);
		return;
	}
	bq->n++;
	if (m) {
		m->rumour = RUMOUR_BCAST;
		m->r.bcast = b;
	} else {
		bq->n_user++;
	}
}

void bcast_queue_alive(struct bcast_queue *bq, struct member *m, size_t len)
{
	bcast_queue_drop(bq, m);
	if (len > UINT16_MAX)
		return;
	struct qlink *q = &m->r.alive;
	memset(q, 0, sizeof *q);
	q->in_member = true;
	q->len = (uint16_t)len;
	if (!q_push(bq, q))
		return;
	bq->n++;
	m->rumour = RUMOUR_ALIVE;
}

/* A user message (serf layer), not a rumour about a member. */
static bool is_user_rumour(struct qlink *q)
{
	return !q->in_member && q_bcast(q)->about == NULL;
}

/*
 * Pick what fits, without changing the queue: membership rumours first,
 * user messages (the serf layer's) in what is left, as memberlist fills
 * a packet from its own queue before asking the delegate.  In one queue
 * ordered by transmit count, every fresh user message went ahead of a
 * suspect or dead already sent once, and a busy serf layer delayed the
 * confirmations and deaths a failure needs.  `users` is the pass.
 */
static size_t pick(const struct bcast_queue *bq, size_t budget, struct wire_bytes *msgs,
		   size_t max, struct qlink **taken)
{
	size_t n = 0;
	for (int users = 0; users < (bq->n_user ? 2 : 1); users++) {
		/*
		 * A long queue (thousands of join rumours in a big cluster)
		 * must not be walked to its end once the packet is nearly
		 * full: give up after a run of rumours that do not fit, or
		 * when nothing could.
		 */
		int misses = 0;
		for (int t = 0; t < bq->n_buckets && n < max && misses < 32 && budget >= 16; t++) {
			const struct qbucket *b = &bq->buckets[t];
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
	return n;
}

size_t bcast_take(struct bcast_queue *bq, int limit, size_t budget, struct wire_bytes *msgs,
		  size_t max, struct qlink **taken)
{
	if (limit >= bq->n_buckets)
		limit = bq->n_buckets - 1;
	size_t n = pick(bq, budget, msgs, max, taken);
	wbuf_reset(&bq->alive_out);
	for (size_t i = 0; i < n; i++) {
		struct qlink *q = taken[i];
		if (!q->in_member) {
			msgs[i].p = q_bcast(q)->data;
			continue;
		}
		/* offset for now: alive_out may move while it grows */
		msgs[i].p = (const uint8_t *)(uintptr_t)bq->alive_out.len;
		struct wire_msg msg;
		member_fill_alive(q_member(q), &msg);
		if (wire_encode(&bq->alive_out, &msg) != WIRE_OK)
			bq->alive_out.oom = true;
	}
	if (bq->alive_out.oom)
		return 0; /* nothing counted: the rumours stay queued as they were */
	for (size_t i = 0; i < n; i++)
		if (taken[i]->in_member)
			msgs[i].p = bq->alive_out.p + (uintptr_t)msgs[i].p;
	/* bump counts after the walk so a moved item is not seen twice */
	for (size_t i = 0; i < n; i++) {
		struct qlink *q = taken[i];
		q_unlink(bq, q);
		q->transmits++;
		/* past the limit (or out of memory to requeue it): keep the
		 * payload alive until the packet is built, parked */
		if (q->transmits >= limit || q->transmits >= bq->n_buckets || !q_push(bq, q))
			q->transmits = -1;
	}
	return n;
}

void bcast_release_parked(struct bcast_queue *bq, struct qlink **taken, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (taken[i]->transmits == -1)
			q_retire(bq, taken[i]);
}
