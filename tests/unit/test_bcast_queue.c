/* test_bcast_queue.c — the broadcast queue (src/bcast_queue.c). */
#include "testlib.h"

#include "bcast_queue.h"
#include "members.h"

#define LIMIT 3
#define MAX_TAKE 64

/* A member record outside any store, at 10.0.0.<octet>:7946. */
static void member_init(struct member *m, const char *name, uint8_t octet)
{
	memset(m, 0, sizeof *m);
	member_set_name(m, name, strlen(name));
	struct wire_addr a;
	memset(&a, 0, sizeof a);
	a.ip_len = 4;
	a.ip[0] = 10;
	a.ip[3] = octet;
	a.port = 7946;
	member_set_ext(m, &a, NULL, 0);
	m->incarnation = 1;
	m->state = SWIM_ALIVE;
}

/* Queue m's alive rumour, sized as it will be encoded. */
static size_t queue_alive(struct bcast_queue *q, struct member *m)
{
	struct wire_msg msg;
	struct wbuf w;
	wbuf_init(&w);
	member_fill_alive(m, &msg);
	wire_encode(&w, &msg);
	size_t len = w.len;
	wbuf_free(&w);
	bcast_queue_alive(q, m, len);
	return len;
}

/* An encoded rumour of `len` bytes, all `tag` (the queue never parses them). */
static void queue_bytes(struct bcast_queue *q, struct member *about, uint8_t tag, size_t len)
{
	uint8_t buf[1024];
	memset(buf, tag, len);
	bcast_queue_add(q, about, buf, len);
}

struct taken {
	size_t n;
	struct wire_bytes msgs[MAX_TAKE];
	struct qlink *links[MAX_TAKE];
};

/* One packet's worth; the views are read before release. */
static size_t take(struct bcast_queue *q, size_t budget, size_t max, struct taken *t)
{
	t->n = bcast_take(q, LIMIT, budget, t->msgs, max, t->links);
	return t->n;
}

static void release(struct bcast_queue *q, struct taken *t)
{
	bcast_release_parked(q, t->links, t->n);
}

/* Take and release a packet; the first byte of each message, in order. */
static size_t take_tags(struct bcast_queue *q, size_t budget, uint8_t *tags)
{
	struct taken t;
	take(q, budget, MAX_TAKE, &t);
	for (size_t i = 0; i < t.n; i++)
		tags[i] = t.msgs[i].p[0];
	release(q, &t);
	return t.n;
}

/*
 * Each test's queue (global, so one test's checks read as q.n), and
 * members outside any store: node-a, node-b, node-c.
 */
static struct bcast_queue q;
static struct member a, b, c;

static bool setup(void)
{
	member_init(&a, "node-a", 1);
	member_init(&b, "node-b", 2);
	member_init(&c, "node-c", 3);
	return bcast_queue_init(&q);
}

/* A newer rumour about a member replaces the one queued. */
TEST(newest_rumour_about_member_replaces_older)
{
	REQUIRE(setup());
	size_t alive_len = queue_alive(&q, &a);
	CHECK_EQ_INT(q.n, 1);
	CHECK_EQ_INT(a.rumour, RUMOUR_ALIVE);

	/* the alive comes out encoded from the record */
	struct taken t;
	REQUIRE(take(&q, 1400, MAX_TAKE, &t) == 1);
	CHECK_EQ_INT(t.msgs[0].len, alive_len);
	CHECK_EQ_INT(t.msgs[0].p[0], WIRE_ALIVE);
	release(&q, &t);

	queue_bytes(&q, &a, 's', 40);   /* suspect */
	CHECK_EQ_INT(q.n, 1);
	CHECK_EQ_INT(a.rumour, RUMOUR_BCAST);
	queue_bytes(&q, &a, 'd', 30);   /* dead */
	CHECK_EQ_INT(q.n, 1);
	uint8_t tags[MAX_TAKE];
	REQUIRE(take_tags(&q, 1400, tags) == 1);
	CHECK_EQ_INT(tags[0], 'd');

	/* and an alive again replaces the dead */
	queue_alive(&q, &a);
	CHECK_EQ_INT(q.n, 1);
	REQUIRE(take_tags(&q, 1400, tags) == 1);
	CHECK_EQ_INT(tags[0], WIRE_ALIVE);
	bcast_queue_free(&q);
}

/* Rumours about different members, and user messages, all stay. */
TEST(others_are_not_replaced)
{
	REQUIRE(setup());
	queue_bytes(&q, &a, 'a', 20);
	queue_bytes(&q, &b, 'b', 20);
	queue_bytes(&q, NULL, 'u', 20);
	queue_bytes(&q, NULL, 'v', 20);
	CHECK_EQ_INT(q.n, 4);
	CHECK_EQ_INT(q.n_user, 2);
	uint8_t tags[MAX_TAKE];
	CHECK_EQ_INT(take_tags(&q, 1400, tags), 4);
	bcast_queue_free(&q);
}

/* A rumour goes out exactly `limit` times, then leaves the queue. */
TEST(retransmit_limit_honoured)
{
	REQUIRE(setup());
	queue_bytes(&q, &a, 'd', 30);
	queue_bytes(&q, NULL, 'u', 30);
	q.watch_id = q.last_id;   /* the user message */
	uint8_t tags[MAX_TAKE];
	for (int i = 0; i < LIMIT; i++) {
		CHECK(!q.watch_retired);
		CHECK_EQ_INT(take_tags(&q, 1400, tags), 2);
	}
	CHECK_EQ_INT(take_tags(&q, 1400, tags), 0);
	CHECK_EQ_INT(q.n, 0);
	CHECK_EQ_INT(q.n_user, 0);
	CHECK_EQ_INT(a.rumour, RUMOUR_NONE);
	CHECK(q.watch_retired);
	bcast_queue_free(&q);
}

/* Fewest sends first, newest first among equals. */
TEST(least_transmitted_first)
{
	REQUIRE(setup());
	size_t one = 20 + 2;   /* a budget of one message */
	uint8_t tags[MAX_TAKE];
	queue_bytes(&q, &a, 'a', 20);
	CHECK_EQ_INT(take_tags(&q, one, tags), 1);   /* a: sent once */
	queue_bytes(&q, &b, 'b', 20);
	queue_bytes(&q, &c, 'c', 20);
	REQUIRE(take_tags(&q, one, tags) == 1);
	CHECK_EQ_INT(tags[0], 'c');                    /* never sent, newest */
	REQUIRE(take_tags(&q, one, tags) == 1);
	CHECK_EQ_INT(tags[0], 'b');                    /* never sent */
	/* all sent once now: a whole packet gives the newest send first */
	REQUIRE(take_tags(&q, 1400, tags) == 3);
	CHECK_EQ_INT(tags[0], 'b');
	CHECK_EQ_INT(tags[1], 'c');
	CHECK_EQ_INT(tags[2], 'a');
	bcast_queue_free(&q);
}

/* Membership rumours fill a packet before user messages, fresh or not. */
TEST(membership_before_user_messages)
{
	REQUIRE(setup());
	uint8_t tags[MAX_TAKE];
	queue_bytes(&q, &a, 's', 20);
	CHECK_EQ_INT(take_tags(&q, 1400, tags), 1);   /* the suspect: sent once */
	queue_bytes(&q, NULL, 'u', 20);               /* a fresh user message */
	REQUIRE(take_tags(&q, 22, tags) == 1);
	CHECK_EQ_INT(tags[0], 's');
	REQUIRE(take_tags(&q, 1400, tags) == 2);
	CHECK_EQ_INT(tags[0], 's');
	CHECK_EQ_INT(tags[1], 'u');
	bcast_queue_free(&q);
}

/* What is taken fits the budget (each message costs its length + 2) and
 * max is a cap. */
TEST(packet_byte_budget_respected)
{
	REQUIRE(setup());
	struct member m[10];
	for (int i = 0; i < 10; i++) {
		char name[24];
		snprintf(name, sizeof name, "node-%d", i);
		member_init(&m[i], name, (uint8_t)(i + 10));
		queue_bytes(&q, &m[i], (uint8_t)('0' + i), 100);
	}
	struct taken t;
	take(&q, 350, MAX_TAKE, &t);
	CHECK_EQ_INT(t.n, 3);               /* 3 * 102 = 306 <= 350 < 408 */
	size_t used = 0;
	for (size_t i = 0; i < t.n; i++)
		used += t.msgs[i].len + 2;
	CHECK(used <= 350);
	release(&q, &t);

	CHECK_EQ_INT(take(&q, 1400, 2, &t), 2);   /* max caps the count */
	release(&q, &t);
	bcast_queue_free(&q);
}

/* A rumour too big for what is left is passed over for a smaller one. */
TEST(too_big_is_passed_over)
{
	REQUIRE(setup());
	queue_bytes(&q, &a, 'S', 50);
	queue_bytes(&q, &b, 'B', 500);          /* newest, but too big */
	uint8_t tags[MAX_TAKE];
	REQUIRE(take_tags(&q, 200, tags) == 1);
	CHECK_EQ_INT(tags[0], 'S');
	CHECK_EQ_INT(take_tags(&q, 10, tags), 0); /* nothing fits */
	CHECK_EQ_INT(q.n, 2);
	bcast_queue_free(&q);
}

/* Dropping the rumour about a member (it is reaped) empties its slot. */
TEST(drop_about_member)
{
	REQUIRE(setup());
	queue_alive(&q, &a);
	queue_bytes(&q, &b, 'd', 20);
	bcast_queue_drop(&q, &a);
	bcast_queue_drop(&q, &b);
	bcast_queue_drop(&q, &b);   /* nothing queued: no-op */
	CHECK_EQ_INT(q.n, 0);
	CHECK_EQ_INT(a.rumour, RUMOUR_NONE);
	CHECK_EQ_INT(b.rumour, RUMOUR_NONE);
	uint8_t tags[MAX_TAKE];
	CHECK_EQ_INT(take_tags(&q, 1400, tags), 0);
	/* freeing with rumours still queued frees them (ASan checks) */
	queue_bytes(&q, &a, 'x', 20);
	queue_bytes(&q, NULL, 'y', 20);
	bcast_queue_free(&q);
}

/* memberlist's retransmitLimit: mult * ceil(log10(n + 1)), at least 1. */
TEST(retransmit_limit_formula)
{
	CHECK_EQ_INT(bcast_node_scale(0), 0);
	CHECK_EQ_INT(bcast_node_scale(9), 1);
	CHECK_EQ_INT(bcast_node_scale(10), 2);
	CHECK_EQ_INT(bcast_node_scale(99), 2);
	CHECK_EQ_INT(bcast_node_scale(100), 3);
	CHECK_EQ_INT(bcast_retransmit_limit(4, 0), 1);
	CHECK_EQ_INT(bcast_retransmit_limit(4, 1), 4);
	CHECK_EQ_INT(bcast_retransmit_limit(4, 9), 4);
	CHECK_EQ_INT(bcast_retransmit_limit(4, 10), 8);
	CHECK_EQ_INT(bcast_retransmit_limit(4, 1000), 16);
	CHECK_EQ_INT(bcast_retransmit_limit(3, 10000), 15);
	CHECK_EQ_INT(bcast_retransmit_limit(0, 50), 1);
}

TEST_MAIN(newest_rumour_about_member_replaces_older, others_are_not_replaced,
	  retransmit_limit_honoured, least_transmitted_first, membership_before_user_messages,
	  packet_byte_budget_respected, too_big_is_passed_over, drop_about_member,
	  retransmit_limit_formula)
