/*
 * fuzz_rpc_dispatch — the agent's RPC request dispatch (agent/rpc.c:
 * client_read → process_input → dispatch → every h_* handler) driven by
 * arbitrary client bytes, on a real agent: a vigil_t on 127.0.0.1, port 0,
 * with an encryption key (so the key commands reach the keyring), event
 * handlers (none configured) and the RPC server of agent/rpc.c.
 *
 * Input: byte 0 is a flag byte (bit 0: the server requires the auth token
 * "fuzz-token", so "auth" and the E_AUTH_REQUIRED path are reachable); the
 * rest is what the client sends, cut at every "VSEP" into separate writes,
 * each followed by one round of the agent loop, so that requests split
 * across reads are exercised (fuzz/gen_rpc_dispatch_seeds.py writes seeds).
 *
 * Per input, as agent.c's main loop would run it:
 *   - a fresh agent (vigil_create + handlers_create + rpc_create) — rebuilt
 *     for every input rather than reset: commands with global effects
 *     ("leave", "force-leave" of ourselves, "tags", install/use/remove-key,
 *     "will-set", "event" Lamport clocks, queries pending in the library)
 *     then cannot leak into the next input, every input is reproducible on
 *     its own, and no per-command special casing is needed.  It costs one
 *     UDP+TCP bind per input, which is affordable (see docs/FUZZING.md);
 *   - one end of a socketpair handed to the server with rpc_adopt_client()
 *     (the same registration accept_clients does), bytes written to the
 *     other end, the loop (vigil_step, rpc_handle) run a bounded number of
 *     rounds, no sleeps;
 *   - "leave" runs for real (agent_begin_leave → vigil_leave); afterwards
 *     the harness answers it as the main loop does when the leave is over
 *     (rpc_leave_done) instead of ending the process; the agent is thrown
 *     away anyway;
 *   - "join" runs for real, but the network is fenced in this binary only
 *     (the Makefile links it with --wrap for connect, sendto, getaddrinfo):
 *     getaddrinfo is numeric-only (no DNS), connect() succeeds only towards
 *     our own gossip port on a loopback address (anything else fails at once
 *     with ECONNREFUSED, as an unreachable seed would), and UDP to anything
 *     but ourselves is silently dropped.  So only loopback is ever contacted,
 *     and never an agent of some other test that happens to listen there;
 *   - getrandom (also wrapped) returns fixed bytes: the library's RNG seeds,
 *     and with them query ids, are the same for every input.
 *
 * Oracles, beyond the sanitizers: everything the server writes back is a
 * stream of well-formed msgpack frames (mp_frame_len never rejects it); each
 * is a map; the first is a response header and every body directly follows
 * a header; a header is exactly {Seq: uint, Error: str}.  After the input,
 * the agent is still alive and a member under its name (RPC input must
 * never stop the agent, except by "leave").
 *
 * VIGIL_FUZZ_TRACE=1 in the environment prints every response frame.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "fuzz_common.h"
#include "handlers.h"
#include "log.h"
#include "mp.h"
#include "rpc.h"

#define SEP "VSEP"
#define AUTH_TOKEN "fuzz-token"
/* base64 of bytes 0..15: the primary key; fuzz/rpc_dispatch.dict has it
 * and a second valid key for install-key / use-key / remove-key */
#define KEY0 "AAECAwQFBgcICQoLDA0ODw=="
#define SETTLE_ROUNDS 4   /* loop rounds after the last write */
#define FEED_ROUNDS 256   /* bound on rounds spent writing one piece */

static struct agent A;
static uint16_t self_port; /* our gossip port: the only one the fence lets through */

/* ------------------------------------------------------- network fence */

int __real_connect(int fd, const struct sockaddr *sa, socklen_t len);
ssize_t __real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
		      socklen_t len);
int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len);
ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
		      socklen_t len);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags);

static bool to_self(const struct sockaddr *sa, socklen_t len)
{
	if (!sa || !self_port)
		return false;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127 && ntohs(in->sin_port) == self_port;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *b = in6->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		bool lo = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
			  (memcmp(b, mapped, 12) == 0 && b[12] == 127);
		return lo && ntohs(in6->sin6_port) == self_port;
	}
	return false;
}

int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (to_self(sa, len))
		return __real_connect(fd, sa, len);
	errno = ECONNREFUSED;
	return -1;
}

ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
		      socklen_t len)
{
	if (to_self(sa, len))
		return __real_sendto(fd, buf, n, flags, sa, len);
	return (ssize_t)n; /* a datagram lost on the way */
}

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	struct addrinfo h = {.ai_family = AF_UNSPEC};
	if (hints)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST; /* never DNS */
	return __real_getaddrinfo(node, service, &h, res);
}

/* vigil's only entropy (random_seed: swim and serf RNG seeds, hence query
 * ids): the same bytes every time, so that every input behaves the same
 * on each run and a "respond" can name the id of a query it streamed. */
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags)
{
	(void)flags;
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = (uint8_t)(0x5a + i);
	return (ssize_t)n;
}

/* ------------------------------------------------------------ the agent */

/* agent.c's on_lib_event/on_lib_log without the coalescer (which only
 * delays member events): library events to the RPC streams and query
 * owners, library logs into the agent log (and so to monitors). */
static void on_event(void *ctx, const struct vigil_event *ev)
{
	struct agent *a = ctx;
	if (a->rpc)
		rpc_on_event(a->rpc, ev, ev->member, ev->member ? 1 : 0);
}

static void on_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	alog(level <= 0 ? LV_DEBUG : level == 1 ? LV_INFO : level == 2 ? LV_WARN : LV_ERR,
	     "%s", msg);
}

static void log_sink(void *ctx, int lv, const char *line)
{
	struct agent *a = ctx;
	if (a->rpc)
		rpc_on_log(a->rpc, lv, line);
}

static bool self_alive(uint16_t *port)
{
	struct vigil_member *ms = NULL;
	size_t n = 0;
	bool ok = false;
	if (vigil_members(A.v, &ms, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ms[i].name, "fuzz") == 0) {
			ok = ms[i].status == VIGIL_STATUS_ALIVE;
			if (port)
				*port = ms[i].port;
		}
	vigil_members_free(ms, n);
	return ok;
}

static void agent_up(bool auth)
{
	static char node[] = "fuzz";
	static const struct strlist none;
	char err[512];
	memset(&A, 0, sizeof A);
	A.cfg.node_name = node;
	log_set_level(LV__COUNT); /* nothing to stderr; ring and sink still get every line */

	struct vigil_config vc;
	vigil_config_default(&vc);
	snprintf(vc.name, sizeof vc.name, "fuzz");
	snprintf(vc.bind_addr, sizeof vc.bind_addr, "127.0.0.1");
	vc.bind_port = 0;
	const char *keys[1] = {KEY0};
	vc.keys = keys;
	vc.n_keys = 1;
	A.encrypted = true;
	vc.on_event = on_event;
	vc.on_log = on_log;
	vc.ctx = &A;

	A.hs = handlers_create(&A, &none, err, sizeof err);
	FUZZ_ASSERTF(A.hs != NULL, "handlers_create: %s", err);
	FUZZ_ASSERTF(vigil_create(&vc, &A.v, err, sizeof err) == 0, "vigil_create: %s", err);
	A.rpc = rpc_create(&A, "127.0.0.1:0", auth ? AUTH_TOKEN : NULL, err, sizeof err);
	FUZZ_ASSERTF(A.rpc != NULL, "rpc_create: %s", err);
	log_set_sink(log_sink, &A);
	self_port = 0;
	FUZZ_ASSERT(self_alive(&self_port) && self_port != 0);
}

static void agent_down(void)
{
	log_set_sink(NULL, NULL);
	rpc_destroy(A.rpc);
	handlers_destroy(A.hs);
	vigil_destroy(A.v);
	log_ring_clear();
	self_port = 0;
	memset(&A, 0, sizeof A);
}

/* One round of agent.c's main loop, without waiting. */
static void loop_once(void)
{
	struct pollfd fds[8];
	int n = rpc_pollfds(A.rpc, fds, 8);
	(void)poll(fds, (nfds_t)n, 0);
	vigil_step(A.v);
	rpc_handle(A.rpc, fds, n);
}

/* ------------------------------------------------------ response check */

struct resp {
	uint8_t *p;
	size_t len, cap;
	bool body_ok; /* the previous frame was a header */
	bool eof;
};

static bool is_header(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 2)
		return false;
	const msgpack_object *seq = mp_get(o, "Seq"), *err = mp_get(o, "Error");
	return seq && err;
}

static bool trace; /* VIGIL_FUZZ_TRACE=1: print every response frame */

static void check_frames(struct resp *r)
{
	size_t off = 0;
	while (off < r->len) {
		size_t fl = 0;
		int rc = mp_frame_len(r->p + off, r->len - off, &fl);
		FUZZ_ASSERTF(rc >= 0, "response at offset %zu is not msgpack we accept", off);
		if (rc == 0)
			break;
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		FUZZ_ASSERT(mp_decode(&u, r->p + off, fl));
		const msgpack_object *o = &u.data;
		if (trace) {
			msgpack_object_print(stderr, *o);
			fputc('\n', stderr);
		}
		FUZZ_ASSERTF(o->type == MSGPACK_OBJECT_MAP, "response frame of type %d", o->type);
		if (is_header(o)) {
			FUZZ_ASSERT(mp_get(o, "Seq")->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
			FUZZ_ASSERT(mp_get(o, "Error")->type == MSGPACK_OBJECT_STR);
			r->body_ok = true;
		} else {
			FUZZ_ASSERTF(r->body_ok, "response body without a header before it");
			r->body_ok = false;
		}
		msgpack_unpacked_destroy(&u);
		off += fl;
	}
	memmove(r->p, r->p + off, r->len - off);
	r->len -= off;
}

static void drain(int fd, struct resp *r)
{
	while (!r->eof) {
		if (r->cap - r->len < 4096) {
			size_t ncap = r->cap ? r->cap * 2 : 16384;
			uint8_t *n = realloc(r->p, ncap);
			FUZZ_ASSERT(n != NULL);
			r->p = n;
			r->cap = ncap;
		}
		ssize_t n = recv(fd, r->p + r->len, r->cap - r->len, MSG_DONTWAIT);
		if (n > 0) {
			r->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			r->eof = true;
		break;
	}
	check_frames(r);
}

/* Write one piece; a full socket buffer means: let the server read. */
static void feed(int fd, const uint8_t *p, size_t n, struct resp *r)
{
	for (int rounds = 0; n > 0 && rounds < FEED_ROUNDS; rounds++) {
		ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return; /* the server dropped us */
		loop_once();
		drain(fd, r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static bool once;
	if (!once) {
		once = true;
		trace = getenv("VIGIL_FUZZ_TRACE") != NULL;
	}
	bool auth = data[0] & 1;
	data++;
	size--;

	agent_up(auth);
	int sv[2];
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_ASSERT(rpc_adopt_client(A.rpc, sv[0]) == 0);
	struct resp r = {0};

	const uint8_t *p = data;
	size_t left = size;
	for (;;) {
		const uint8_t *sep = memmem(p, left, SEP, 4);
		size_t n = sep ? (size_t)(sep - p) : left;
		feed(sv[1], p, n, &r);
		loop_once();
		drain(sv[1], &r);
		if (!sep)
			break;
		p = sep + 4;
		left -= n + 4;
	}
	for (int i = 0; i < SETTLE_ROUNDS; i++) {
		loop_once();
		drain(sv[1], &r);
	}
	if (A.leaving) {
		/* agent.c: once the leave is over, answer the leavers; then
		 * it would shut down — we throw the agent away below */
		rpc_leave_done(A.rpc, vigil_leave_done(A.v) ? "" : "leave timed out");
		loop_once();
		drain(sv[1], &r);
	} else {
		FUZZ_ASSERTF(self_alive(NULL), "RPC input stopped the agent");
	}
	/* the client hangs up: the server drops it on EOF */
	shutdown(sv[1], SHUT_WR);
	loop_once();
	drain(sv[1], &r);
	close(sv[1]);
	free(r.p);
	agent_down();
	return 0;
}
