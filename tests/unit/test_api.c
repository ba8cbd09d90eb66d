/*
 * test_api.c — the public contract of include/vigil.h, through the public
 * API only: error codes and messages for each failure, vigil_strerror,
 * vigil_version, the pollfds count, no callback inside vigil_create, and
 * host-name joins that do not block the caller.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "vigil.h"

struct node {
	vigil_t *v;
	int events;            /* on_event calls */
	int self_joins;        /* member-join events for ourselves */
	bool in_create;        /* set around vigil_create by the test */
	int events_in_create;  /* on_event calls while in_create */
	int depth, max_depth;  /* on_event nesting */
	int pings, pongs;      /* user events "ping" / "pong" seen */
	char name[VIGIL_NAME_MAX + 1];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * getaddrinfo, interposed (the test executable's definition wins over
 * libc's): counts calls made on the test's own thread and can play a slow
 * DNS server, so join_by_name can tell whether a join waits for DNS.
 */
static pthread_t main_thread;
static int gai_calls, gai_on_main, gai_delay_ms;

typedef int gai_fn(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	gai_fn *real = (gai_fn *)dlsym(RTLD_NEXT, "getaddrinfo");
	__atomic_add_fetch(&gai_calls, 1, __ATOMIC_SEQ_CST);
	if (pthread_equal(pthread_self(), main_thread))
		__atomic_add_fetch(&gai_on_main, 1, __ATOMIC_SEQ_CST);
	int delay = __atomic_load_n(&gai_delay_ms, __ATOMIC_SEQ_CST);
	if (delay)
		nanosleep(&(struct timespec){ .tv_nsec = delay * 1000000L }, NULL);
	return real ? real(node, service, hints, res) : EAI_FAIL;
}

static void on_event(void *ctx, const struct vigil_event *ev)
{
	struct node *n = ctx;
	n->events++;
	if (++n->depth > n->max_depth)
		n->max_depth = n->depth;
	if (ev->type == VIGIL_EV_USER && strcmp(ev->name, "ping") == 0) {
		n->pings++;
		/* raising an event from a callback: delivered later, not nested */
		vigil_user_event(n->v, "pong", NULL, 0, false);
		vigil_step(n->v);   /* a no-op from inside a callback */
	}
	if (ev->type == VIGIL_EV_USER && strcmp(ev->name, "pong") == 0)
		n->pongs++;
	if (n->in_create)
		n->events_in_create++;
	if (ev->type == VIGIL_EV_MEMBER_JOIN && ev->member &&
	    strcmp(ev->member->name, n->name) == 0)
		n->self_joins++;
	n->depth--;
}

static void test_config(struct vigil_config *cfg, struct node *n, const char *name)
{
	vigil_config_default(cfg);
	snprintf(cfg->name, sizeof cfg->name, "%s", name);
	snprintf(cfg->bind_addr, sizeof cfg->bind_addr, "127.0.0.1");
	cfg->bind_port = 0;
	cfg->probe_interval_ms = 200;
	cfg->probe_timeout_ms = 100;
	cfg->gossip_interval_ms = 50;
	cfg->on_event = on_event;
	cfg->ctx = n;
	memset(n, 0, sizeof *n);
	snprintf(n->name, sizeof n->name, "%s", name);
}

static int make_node(struct node *n, const char *name)
{
	struct vigil_config cfg;
	test_config(&cfg, n, name);
	char err[256] = "";
	n->in_create = true;
	int rc = vigil_create(&cfg, &n->v, err, sizeof err);
	n->in_create = false;
	if (rc != VIGIL_OK)
		printf("# vigil_create(%s): %s\n", name, err);
	return rc;
}

/* Poll and step every node for ms milliseconds, the way an embedder does. */
static void run(struct node **ns, int k, int ms)
{
	int64_t end = now_ms() + ms;
	do {
		struct pollfd fds[64];
		int n = 0;
		for (int i = 0; i < k; i++) {
			int need = vigil_pollfds(ns[i]->v, fds + n, 64 - n);
			n += need < 64 - n ? need : 64 - n;
		}
		poll(fds, (nfds_t)n, 10);
		for (int i = 0; i < k; i++)
			vigil_step(ns[i]->v);
	} while (now_ms() < end);
}

static uint16_t node_port(vigil_t *v)
{
	struct vigil_member *m = NULL;
	size_t n = 0;
	uint16_t port = 0;
	if (vigil_members(v, &m, &n) == VIGIL_OK)
		for (size_t i = 0; i < n; i++)
			if (strcmp(m[i].name, vigil_name(v)) == 0)
				port = m[i].port;
	vigil_members_free(m, n);
	return port;
}

TEST(strerror_covers_every_code)
{
	static const int codes[] = {
		VIGIL_OK, VIGIL_ERR_INVALID, VIGIL_ERR_NOMEM, VIGIL_ERR_TOO_LARGE,
		VIGIL_ERR_RANGE, VIGIL_ERR_ADDRESS, VIGIL_ERR_SOCKET, VIGIL_ERR_STATE,
		VIGIL_ERR_NOT_FOUND, VIGIL_ERR_KEY, VIGIL_ERR_IO, VIGIL_ERR_PROTOCOL,
		VIGIL_ERR_BUFFER,
	};
	const char *unknown = vigil_strerror(12345);
	CHECK(unknown != NULL);
	CHECK_EQ_STR(vigil_strerror(1), unknown);
	size_t nc = sizeof codes / sizeof codes[0];
	for (size_t i = 0; i < nc; i++) {
		const char *s = vigil_strerror(codes[i]);
		REQUIRE(s != NULL);
		CHECK(strcmp(s, unknown) != 0);
		CHECK(s[0] != '\0');
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(s, vigil_strerror(codes[j])) != 0);
	}
	/* the codes are contiguous: one more past the last is unknown */
	CHECK_EQ_STR(vigil_strerror(VIGIL_ERR_BUFFER - 1), unknown);
}

TEST(version)
{
	const char *s = NULL;
	CHECK_EQ_INT(vigil_version(&s), VIGIL_VERSION_NUMBER);
	REQUIRE(s != NULL);
	CHECK_EQ_STR(s, VIGIL_VERSION_STRING);
	char want[32];
	snprintf(want, sizeof want, "%d.%d.%d", VIGIL_VERSION_MAJOR, VIGIL_VERSION_MINOR,
		 VIGIL_VERSION_PATCH);
	CHECK_EQ_STR(s, want);
	CHECK_EQ_INT(vigil_version(NULL), VIGIL_VERSION_NUMBER);
}

/* vigil_create fails on cfg with code, *out = NULL, and err naming needle. */
static void expect_create_fails(const struct vigil_config *cfg, int code, const char *needle)
{
	vigil_t *v = (vigil_t *)&v;
	char err[256] = "";
	int rc = vigil_create(cfg, &v, err, sizeof err);
	if (rc != code || v != NULL || (needle && !strstr(err, needle))) {
		printf("# vigil_create: %d (want %d), err \"%s\" (want \"%s\")\n", rc, code, err,
		       needle ? needle : "");
		CHECK(false);
	}
}

/* vigil_create: each bad config gets its own code and a message. */
TEST(create_errors)
{
	struct node n;
	struct vigil_config cfg;
	vigil_t *v = (vigil_t *)&n;
	char err[256];

	CHECK_EQ_INT(vigil_create(NULL, &v, err, sizeof err), VIGIL_ERR_INVALID);

	test_config(&cfg, &n, "x");
	cfg.name[0] = '\0';
	expect_create_fails(&cfg, VIGIL_ERR_INVALID, "node name");

	test_config(&cfg, &n, "x");
	cfg.protocol_version = 9;
	expect_create_fails(&cfg, VIGIL_ERR_RANGE, "9");

	test_config(&cfg, &n, "x");
	snprintf(cfg.advertise_addr, sizeof cfg.advertise_addr, "not-an-ip");
	expect_create_fails(&cfg, VIGIL_ERR_ADDRESS, "not-an-ip");

	test_config(&cfg, &n, "x");
	snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "localhost");
	expect_create_fails(&cfg, VIGIL_ERR_ADDRESS, "localhost");

	test_config(&cfg, &n, "x");
	const char *keys[] = {"c2hvcnQ="};   /* "short": not an AES key */
	cfg.keys = keys;
	cfg.n_keys = 1;
	expect_create_fails(&cfg, VIGIL_ERR_KEY, "key 0");

	test_config(&cfg, &n, "x");
	static char big[600];
	memset(big, 'v', sizeof big - 1);
	struct vigil_tag tags[] = {{"k", big}};
	cfg.tags = tags;
	cfg.n_tags = 1;
	expect_create_fails(&cfg, VIGIL_ERR_TOO_LARGE, "node meta");

	test_config(&cfg, &n, "x");
	cfg.snapshot_path = "/nonexistent-dir-vigil/snap";
	expect_create_fails(&cfg, VIGIL_ERR_IO, "/nonexistent-dir-vigil/snap");

	/* queries need serf protocol 4 */
	test_config(&cfg, &n, "old");
	cfg.protocol_version = 3;
	REQUIRE(vigil_create(&cfg, &v, err, sizeof err) == VIGIL_OK);
	CHECK_EQ_INT(vigil_query(v, "q", NULL, 0, NULL, NULL), VIGIL_ERR_PROTOCOL);
	vigil_destroy(v);

	/* the port of a running node is taken */
	struct node a;
	REQUIRE(make_node(&a, "a") == VIGIL_OK);
	test_config(&cfg, &n, "x");
	cfg.bind_port = node_port(a.v);
	expect_create_fails(&cfg, VIGIL_ERR_SOCKET, NULL);
	vigil_destroy(a.v);
}

static void keys_done(void *ctx, const struct vigil_keys_result *r)
{
	(void)ctx;
	(void)r;
}

/* Every call that can fail: its code, its message, and no state change. */
TEST(call_errors)
{
	struct node n;
	REQUIRE(make_node(&n, "solo") == VIGIL_OK);
	vigil_t *v = n.v;
	CHECK_EQ_STR(vigil_last_error(v), "");

	/* a 600-byte user event */
	static uint8_t payload[2000];
	memset(payload, 'p', sizeof payload);
	CHECK_EQ_INT(vigil_user_event(v, "ev", payload, 600, false), VIGIL_ERR_TOO_LARGE);
	CHECK(strstr(vigil_last_error(v), "512") != NULL);
	CHECK_EQ_INT(vigil_user_event(v, NULL, NULL, 0, false), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_user_event(v, "ev", NULL, 3, false), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_user_event(v, "ev", payload, 10, false), VIGIL_OK);

	/* a 2,000-byte will, a negative delay, a bad recipient combination */
	CHECK_EQ_INT(vigil_will_set(v, "other", NULL, 1000, payload, 2000), VIGIL_ERR_TOO_LARGE);
	CHECK(strstr(vigil_last_error(v), "1024") != NULL);
	CHECK_EQ_INT(vigil_will_set(v, "other", NULL, -5, payload, 10), VIGIL_ERR_RANGE);
	CHECK(strstr(vigil_last_error(v), "-5") != NULL);
	CHECK_EQ_INT(vigil_will_set(v, "other", "event", 0, payload, 10), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_will_set(v, NULL, NULL, 0, payload, 10), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_will_set(v, "solo", NULL, 0, payload, 10), VIGIL_ERR_INVALID);
	CHECK(strstr(vigil_last_error(v), "solo") != NULL);
	/* none of that registered a will */
	struct vigil_will_info *wl = NULL;
	size_t nw = 99;
	CHECK_EQ_INT(vigil_will_list(v, "solo", &wl, &nw), VIGIL_OK);
	CHECK_EQ_INT(nw, 0);
	vigil_will_list_free(wl, nw);
	CHECK_EQ_INT(vigil_will_set(v, "other", NULL, 0, payload, 10), VIGIL_OK);
	CHECK_EQ_INT(vigil_will_list(v, "solo", &wl, &nw), VIGIL_OK);
	CHECK_EQ_INT(nw, 1);
	vigil_will_list_free(wl, nw);
	CHECK_EQ_INT(vigil_will_list(v, NULL, NULL, NULL), VIGIL_ERR_INVALID);

	/* queries */
	CHECK_EQ_INT(vigil_respond(v, 424242, payload, 3), VIGIL_ERR_NOT_FOUND);
	CHECK(strstr(vigil_last_error(v), "424242") != NULL);
	CHECK_EQ_INT(vigil_query(v, NULL, NULL, 0, NULL, NULL), VIGIL_ERR_INVALID);
	struct vigil_query_params odd = {.n_filter_tags = 1, .filter_tags = (const char *[]){"k"}};
	CHECK_EQ_INT(vigil_query(v, "q", NULL, 0, &odd, NULL), VIGIL_ERR_INVALID);
	CHECK(strstr(vigil_last_error(v), "filter_tags") != NULL);
	CHECK_EQ_INT(vigil_query(v, "q", payload, 1500, NULL, NULL), VIGIL_ERR_TOO_LARGE);
	CHECK(strstr(vigil_last_error(v), "1024") != NULL);
	/* too many of our own queries open at once */
	int qrc = VIGIL_OK;
	for (int i = 0; i < 1000 && qrc == VIGIL_OK; i++)
		qrc = vigil_query(v, "q", NULL, 0, NULL, NULL);
	CHECK_EQ_INT(qrc, VIGIL_ERR_STATE);
	CHECK(strstr(vigil_last_error(v), "pending") != NULL);

	/* joins */
	const char *garbage[] = {"no such : address"};
	uint32_t id = 1;
	CHECK_EQ_INT(vigil_join_begin(v, garbage, 1, false, &id), VIGIL_ERR_ADDRESS);
	CHECK_EQ_INT(id, 0);
	CHECK(strstr(vigil_last_error(v), "no such : address") != NULL);
	CHECK_EQ_INT(vigil_join(v, NULL, 2), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_join_poll(v, 777, NULL), VIGIL_ERR_NOT_FOUND);
	CHECK_EQ_INT(vigil_join_poll(NULL, 777, NULL), VIGIL_ERR_INVALID);

	/* tags */
	struct vigil_tag nullkey[] = {{NULL, "x"}};
	CHECK_EQ_INT(vigil_set_tags(v, nullkey, 1, NULL, 0), VIGIL_ERR_INVALID);
	static char big[600];
	memset(big, 'v', sizeof big - 1);
	struct vigil_tag bigtag[] = {{"k", big}};
	CHECK_EQ_INT(vigil_set_tags(v, bigtag, 1, NULL, 0), VIGIL_ERR_TOO_LARGE);

	/* keys */
	char err[128] = "";
	CHECK_EQ_INT(vigil_keys_op(v, VIGIL_KEYS_INSTALL, "c2hvcnQ=", NULL, NULL, err,
				   sizeof err), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_keys_op(v, VIGIL_KEYS_INSTALL, "c2hvcnQ=", keys_done, NULL, err,
				   sizeof err), VIGIL_ERR_KEY);
	CHECK(strstr(err, "16, 24 or 32") != NULL);
	CHECK(strstr(vigil_last_error(v), "16, 24 or 32") != NULL);
	char **keys = NULL;
	size_t nk = 5;
	CHECK_EQ_INT(vigil_keys_list(v, &keys, &nk), VIGIL_OK);
	CHECK_EQ_INT(nk, 0);
	vigil_keys_list_free(keys, nk);

	/* misc */
	CHECK_EQ_INT(vigil_members(v, NULL, NULL), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_force_leave(v, NULL, false), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_stats(v, NULL, 0), VIGIL_ERR_INVALID);
	struct vigil_stat few[3];
	CHECK_EQ_INT(vigil_stats(v, few, 3), 2);
	CHECK(few[2].name == NULL);
	CHECK(strstr(vigil_last_error(v), "room for 3") != NULL);
	CHECK_EQ_INT(vigil_leave(NULL), VIGIL_ERR_INVALID);
	CHECK(vigil_last_error(NULL) != NULL);
	vigil_destroy(v);
}

/* vigil_pollfds says how many fds it needs and never drops one silently. */
TEST(pollfds_count)
{
	struct node n;
	REQUIRE(make_node(&n, "p") == VIGIL_OK);
	int need = vigil_pollfds(n.v, NULL, 0);
	CHECK_EQ_INT(need, 2);  /* UDP socket + TCP listener */
	struct pollfd one[1] = {{.fd = -7}};
	CHECK_EQ_INT(vigil_pollfds(n.v, one, 1), need);
	CHECK(one[0].fd >= 0);
	CHECK(strstr(vigil_last_error(n.v), "2 fds needed") != NULL);
	/* the unpolled fd is still serviced: the wait is capped */
	int t = vigil_timeout_ms(n.v);
	CHECK(t >= 0 && t <= 10);
	struct pollfd fds[8];
	memset(fds, 0xff, sizeof fds);
	CHECK_EQ_INT(vigil_pollfds(n.v, fds, 8), need);
	CHECK(fds[0].fd >= 0 && fds[1].fd >= 0 && fds[0].fd != fds[1].fd);
	CHECK(fds[2].fd == -1);   /* nothing written past the count */
	CHECK_EQ_INT(vigil_pollfds(n.v, NULL, 3), VIGIL_ERR_INVALID);
	CHECK_EQ_INT(vigil_pollfds(NULL, fds, 8), VIGIL_ERR_INVALID);
	vigil_destroy(n.v);
}

/* Events raised while creating (our own member-join) wait for a step. */
TEST(no_callback_during_create)
{
	struct node n;
	REQUIRE(make_node(&n, "c") == VIGIL_OK);
	CHECK_EQ_INT(n.events_in_create, 0);
	CHECK_EQ_INT(n.events, 0);
	vigil_step(n.v);
	CHECK_EQ_INT(n.self_joins, 1);
	vigil_step(n.v);
	CHECK_EQ_INT(n.self_joins, 1);   /* delivered once */
	vigil_destroy(n.v);

	/* never stepped: the queued events are freed, not delivered */
	REQUIRE(make_node(&n, "d") == VIGIL_OK);
	vigil_destroy(n.v);
	CHECK_EQ_INT(n.events, 0);
}

/* on_event runs only inside vigil_step, never nested. */
TEST(callbacks_only_from_step)
{
	struct node n;
	REQUIRE(make_node(&n, "s") == VIGIL_OK);
	vigil_step(n.v);
	int before = n.events;
	CHECK_EQ_INT(vigil_user_event(n.v, "ping", NULL, 0, false), VIGIL_OK);
	CHECK_EQ_INT(n.events, before);          /* not inside vigil_user_event */
	CHECK_EQ_INT(vigil_timeout_ms(n.v), 0);  /* but due at once */
	vigil_step(n.v);
	CHECK_EQ_INT(n.pings, 1);
	vigil_step(n.v);
	CHECK_EQ_INT(n.pongs, 1);                /* the one raised from the callback */
	CHECK_EQ_INT(n.max_depth, 1);
	vigil_destroy(n.v);
}

/*
 * A host name is resolved off the caller's loop: vigil_join returns at
 * once, vigil_pollfds reports one more fd (the resolver's), and the join
 * completes from vigil_step.
 */
TEST(join_by_name)
{
	struct node a, b;
	REQUIRE(make_node(&a, "a") == VIGIL_OK);
	REQUIRE(make_node(&b, "b") == VIGIL_OK);
	struct node *ns[] = {&a, &b};
	char seed[64];
	snprintf(seed, sizeof seed, "localhost:%u", node_port(a.v));
	const char *seeds[] = {seed};
	uint32_t id = 0;
	/* DNS takes 300 ms; the call must not wait for it */
	main_thread = pthread_self();
	__atomic_store_n(&gai_delay_ms, 300, __ATOMIC_SEQ_CST);
	int64_t t0 = now_ms();
	CHECK_EQ_INT(vigil_join_begin(b.v, seeds, 1, false, &id), 1);
	CHECK(now_ms() - t0 < 150);
	CHECK(id != 0);
	int joined = -1, done = 0;
	int64_t end = now_ms() + 5000;
	while (done == 0 && now_ms() < end) {
		run(ns, 2, 20);
		done = vigil_join_poll(b.v, id, &joined);
	}
	CHECK_EQ_INT(done, 1);
	CHECK_EQ_INT(joined, 1);
	CHECK(__atomic_load_n(&gai_calls, __ATOMIC_SEQ_CST) >= 1);
	CHECK_EQ_INT(__atomic_load_n(&gai_on_main, __ATOMIC_SEQ_CST), 0);
	__atomic_store_n(&gai_delay_ms, 0, __ATOMIC_SEQ_CST);
	/* a name that does not resolve counts as a failed seed */
	const char *nx[] = {"no-such-host.invalid:7946"};
	CHECK_EQ_INT(vigil_join_begin(b.v, nx, 1, false, &id), 1);
	done = 0;
	end = now_ms() + 10000;
	while (done == 0 && now_ms() < end) {
		run(ns, 2, 20);
		done = vigil_join_poll(b.v, id, &joined);
	}
	CHECK_EQ_INT(done, 1);
	CHECK_EQ_INT(joined, 0);
	/* destroying with a resolution in flight does not wait for it */
	CHECK_EQ_INT(vigil_join(b.v, nx, 1), 1);
	CHECK_EQ_INT(vigil_pollfds(b.v, NULL, 0), 3);
	vigil_destroy(b.v);
	vigil_destroy(a.v);
}

TEST_MAIN(strerror_covers_every_code, version, create_errors, call_errors, pollfds_count,
	  no_callback_during_create, callbacks_only_from_step, join_by_name)
