/*
 * test_agent_coalesce.c — agent/coalesce.c must deliver events as a
 * `serf agent` does (coalesce_member.go, coalesce_user.go): handler scripts
 * and RPC streams depend on the batching, the per-member dedup and the
 * newest-Lamport-time rule.  Links coalesce.o from build/libvigil-agent.a.
 */
#include "testlib.h"

#include <string.h>

#include "coalesce.h"

#define MAX_SEEN 16

/* What the coalescer emitted, copied out (its buffers die after emit). */
struct seen {
	enum vigil_event_type type[MAX_SEEN];
	size_t members[MAX_SEEN];    /* batch size of member events */
	char first[MAX_SEEN][VIGIL_NAME_MAX + 1]; /* first member's name, or user event name */
	uint64_t ltime[MAX_SEEN];
	size_t n;
};

static void record(void *ctx, const struct vigil_event *ev, const struct vigil_member *members,
		   size_t n)
{
	struct seen *s = ctx;
	if (s->n == MAX_SEEN)
		return;
	s->type[s->n] = ev->type;
	s->members[s->n] = n;
	snprintf(s->first[s->n], sizeof s->first[s->n], "%s",
		 n ? members[0].name : ev->name ? ev->name : "");
	s->ltime[s->n] = ev->ltime;
	s->n++;
}

static void offer_member(struct coalescer *c, enum vigil_event_type type, const char *name,
			 int64_t now)
{
	struct vigil_member m;
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "%s", name);
	struct vigil_event ev = {.type = type, .member = &m};
	coalescer_offer(c, &ev, now);
}

static void offer_user(struct coalescer *c, const char *name, uint64_t ltime, int64_t now)
{
	struct vigil_event ev = {.type = VIGIL_EV_USER, .name = name, .payload = (const uint8_t *)"p",
				 .payload_len = 1, .ltime = ltime, .coalesce = true};
	coalescer_offer(c, &ev, now);
}

/* serf agent's windows (3 s, quiescent 1 s), recording into s. */
static struct coalescer *serf_coalescer(struct seen *s)
{
	memset(s, 0, sizeof *s);
	return coalescer_create(record, s, COALESCE_PERIOD_MS, QUIESCENT_PERIOD_MS);
}

TEST(member_events_batch_per_type_after_quiet_period)
{
	struct seen s;
	struct coalescer *c = serf_coalescer(&s);
	REQUIRE(c);
	static const struct {
		enum vigil_event_type type;
		const char *member;
		int64_t at;
	} events[] = {{VIGIL_EV_MEMBER_JOIN, "a", 0},
		      {VIGIL_EV_MEMBER_JOIN, "b", 100},
		      {VIGIL_EV_MEMBER_FAILED, "c", 200}};
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
		offer_member(c, events[i].type, events[i].member, events[i].at);
	CHECK_EQ_INT(s.n, 0);
	/* quiet for 1 s after the last event closes the window */
	CHECK_EQ_INT(coalescer_timeout_ms(c, 200), QUIESCENT_PERIOD_MS);
	coalescer_tick(c, 1199, false);
	CHECK_EQ_INT(s.n, 0);
	coalescer_tick(c, 1200, false);
	REQUIRE(s.n == 2);
	CHECK_EQ_INT(s.type[0], VIGIL_EV_MEMBER_JOIN);
	CHECK_EQ_INT(s.members[0], 2);
	CHECK_EQ_STR(s.first[0], "a");
	CHECK_EQ_INT(s.type[1], VIGIL_EV_MEMBER_FAILED);
	CHECK_EQ_INT(s.members[1], 1);
	CHECK_EQ_INT(coalescer_timeout_ms(c, 1200), -1);
	coalescer_destroy(c);
}

TEST(window_closes_at_coalesce_period_despite_traffic)
{
	struct seen s;
	struct coalescer *c = serf_coalescer(&s);
	REQUIRE(c);
	for (int64_t t = 0; t < COALESCE_PERIOD_MS; t += 500)
		offer_member(c, VIGIL_EV_MEMBER_UPDATE, "a", t);
	coalescer_tick(c, COALESCE_PERIOD_MS - 1, false);
	CHECK_EQ_INT(s.n, 0);
	coalescer_tick(c, COALESCE_PERIOD_MS, false);
	REQUIRE(s.n == 1);
	CHECK_EQ_INT(s.type[0], VIGIL_EV_MEMBER_UPDATE);
	CHECK_EQ_INT(s.members[0], 1);
	coalescer_destroy(c);
}

TEST(latest_event_per_member_wins_and_repeats_are_dropped)
{
	struct seen s;
	struct coalescer *c = serf_coalescer(&s);
	REQUIRE(c);
	offer_member(c, VIGIL_EV_MEMBER_JOIN, "a", 0);
	offer_member(c, VIGIL_EV_MEMBER_FAILED, "a", 10);
	coalescer_tick(c, 0, true);
	REQUIRE(s.n == 1);
	CHECK_EQ_INT(s.type[0], VIGIL_EV_MEMBER_FAILED);
	/* the same event for the same member again: serf drops it */
	offer_member(c, VIGIL_EV_MEMBER_FAILED, "a", 2000);
	coalescer_tick(c, 0, true);
	CHECK_EQ_INT(s.n, 1);
	/* but an update is always delivered */
	offer_member(c, VIGIL_EV_MEMBER_UPDATE, "a", 4000);
	offer_member(c, VIGIL_EV_MEMBER_UPDATE, "a", 4001);
	coalescer_tick(c, 0, true);
	offer_member(c, VIGIL_EV_MEMBER_UPDATE, "a", 6000);
	coalescer_tick(c, 0, true);
	CHECK_EQ_INT(s.n, 3);
	coalescer_destroy(c);
}

TEST(user_events_keep_only_newest_ltime_per_name)
{
	struct seen s;
	struct coalescer *c = serf_coalescer(&s);
	REQUIRE(c);
	offer_user(c, "deploy", 5, 0);
	offer_user(c, "deploy", 7, 1);
	offer_user(c, "deploy", 6, 2);
	offer_user(c, "deploy", 7, 3);
	offer_user(c, "other", 1, 4);
	coalescer_tick(c, 5, true);
	REQUIRE(s.n == 3);
	CHECK_EQ_STR(s.first[0], "deploy");
	CHECK_EQ_INT(s.ltime[0], 7);
	CHECK_EQ_STR(s.first[1], "deploy");
	CHECK_EQ_INT(s.ltime[1], 7);
	CHECK_EQ_STR(s.first[2], "other");
	coalescer_destroy(c);
}

TEST(uncoalesced_events_pass_straight_through)
{
	struct seen s;
	struct coalescer *c = serf_coalescer(&s);
	REQUIRE(c);
	struct vigil_event ev = {.type = VIGIL_EV_USER, .name = "now", .coalesce = false};
	coalescer_offer(c, &ev, 0);
	struct vigil_event q = {.type = VIGIL_EV_QUERY, .name = "q"};
	coalescer_offer(c, &q, 0);
	REQUIRE(s.n == 2);
	CHECK_EQ_STR(s.first[0], "now");
	CHECK_EQ_INT(s.type[1], VIGIL_EV_QUERY);
	CHECK_EQ_INT(coalescer_timeout_ms(c, 0), -1);
	coalescer_destroy(c);

	/* coalescing off (0 ms): a member event is a batch of one at once */
	struct seen s2 = {0};
	c = coalescer_create(record, &s2, 0, 0);
	REQUIRE(c);
	offer_member(c, VIGIL_EV_MEMBER_LEAVE, "z", 0);
	REQUIRE(s2.n == 1);
	CHECK_EQ_INT(s2.members[0], 1);
	CHECK_EQ_STR(s2.first[0], "z");
	coalescer_destroy(c);
}

TEST_MAIN(member_events_batch_per_type_after_quiet_period,
	  window_closes_at_coalesce_period_despite_traffic,
	  latest_event_per_member_wins_and_repeats_are_dropped,
	  user_events_keep_only_newest_ltime_per_name, uncoalesced_events_pass_straight_through)
