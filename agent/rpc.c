/*
 * rpc.c — serf's RPC protocol on -rpc-addr, so that the real `serf` CLI (and
 * any program using hashicorp/serf/client) can drive a vigil agent.
 *
 * Field names, command names and error strings are serf's (ipc.go,
 * client/const.go); they are part of the protocol.  Everything is
 * non-blocking: each client has a read buffer that is parsed frame by frame
 * (mp_frame_len) and a write buffer flushed when the socket is writable.
 * A client that sends something we cannot parse is disconnected; the agent
 * itself never stops because of RPC input.
 */
#include "rpc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <malloc.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "goregex.h"
#include "handlers.h"
#include "log.h"
#include "mp.h"
#include "tagsfile.h"
#include "coordinate.h"

#define MAX_CLIENTS 512
/*
 * Bounds on what one client can make us hold or do (docs/SECURITY.md,
 * "Bounded work"):
 *  - A connection that has not finished its handshake (and auth, when
 *    -rpc-auth is set) within PREAUTH_TIMEOUT_MS is closed; such
 *    connections are also the ones closed to make room when MAX_CLIENTS
 *    are connected, or when one address holds MAX_PREAUTH_PER_SOURCE of
 *    them (a loopback operator shares the attacker's address: eviction
 *    of the oldest, not refusal of the newest, lets the operator in).
 *    Failing those, a ready client idle for IDLE_EVICT_MS makes room.
 *  - Requests are read only while less than WBUF_PAUSE of output waits:
 *    a client that pipelines and never reads stops being read (TCP then
 *    stops it), and we never run more than REQ_BUDGET frames of its requests
 *    per wake-up, so the loop (and the gossip) keeps its pace.
 *  - A client that stops reading its stream must not make us buffer
 *    without bound: past WBUF_STREAM_LIMIT stream records are dropped
 *    (serf drops too, with the same warning); one response that would
 *    take the buffer past WBUF_HARD_LIMIT closes the connection.
 *  - A client has at most MAX_STREAMS streams; the CLI uses one.
 *  - Before auth, MAX_PREAUTH_REQUESTS refused requests close it.
 */
#define WBUF_PAUSE (256u << 10)
#define WBUF_STREAM_LIMIT (1u << 20)
#define WBUF_HARD_LIMIT MP_MAX_RESPONSE /* what our own client accepts */
#define RBUF_LIMIT (MP_MAX_FRAME + 4096)
#define PREAUTH_TIMEOUT_MS 10000
/* A ready client with no stream or monitor that has sent nothing for this
 * long may be closed to make room, once no unauthenticated one is left
 * (without -rpc-auth a handshake alone makes a client ready). */
#define IDLE_EVICT_MS 10000
#define MAX_PREAUTH_PER_SOURCE 64
#define MAX_PREAUTH_REQUESTS 16
#define REQ_BUDGET 64 /* msgpack frames: a request is one or two */
#define MAX_STREAMS 128
/* Buffers larger than this are given back once empty, and trimmed out of
 * the heap, so a burst does not leave the agent at its peak RSS. */
#define BUF_KEEP (64u << 10)
#define TRIM_AFTER (4u << 20)
/* How long a query delivered to a stream client can be answered with
 * "respond"; serf uses the query's own deadline, which the event does not
 * carry, so keep it comfortably above serf's default query timeout. */
#define RESPOND_WINDOW_MS (5 * 60 * 1000)

/* serf's error strings (client/const.go) */
#define E_UNSUPPORTED_CMD "Unsupported command"
#define E_UNSUPPORTED_VER "Unsupported IPC version"
#define E_DUP_HANDSHAKE "Handshake already performed"
#define E_HANDSHAKE_REQ "Handshake required"
#define E_MONITOR_EXISTS "Monitor already exists"
#define E_INVALID_FILTER "Invalid event filter"
#define E_STREAM_EXISTS "Stream with given sequence exists"
#define E_INVALID_QUERY_ID "No pending queries matching ID"
#define E_AUTH_REQUIRED "Authentication required"
#define E_INVALID_AUTH "Invalid authentication token"

struct stream {
	uint64_t seq;
	struct handler_filter *f;
	size_t nf;
};

struct pending_respond {
	uint32_t lib_id;
	uint64_t client_qid;  /* the ID this client was given (serf: 1, 2, ...) */
	int64_t expires;
};

struct client {
	uint64_t id;
	int fd;
	char name[80];
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf;
	size_t wlen, wcap;
	int version;
	bool authed;
	bool have_hdr; /* a header was read; its body is next */
	char cmd[32];
	uint64_t seq;
	bool monitor;
	uint64_t mon_seq;
	int mon_level;
	struct stream *streams; /* array, at most MAX_STREAMS */
	size_t nstreams;
	struct pending_respond *pr;
	size_t npr;
	uint64_t last_qid;    /* serf IPCClient.queryID: per connection, from 1 */
	bool close_after_flush;
	bool dead;
	bool overflow; /* too much unsent output: drop the client */
	bool more;     /* complete requests left unread (REQ_BUDGET) */
	int64_t born;  /* now_ms() at accept */
	int64_t last_req; /* now_ms() at its latest request */
	unsigned preauth_refused;
	char host[64]; /* peer IP (no port), for the per-source bound */
	struct client *next;
};

/* A query started by an RPC client: its acks/responses go back under seq. */
struct outq {
	uint32_t lib_id;
	uint64_t client_id;
	uint64_t seq;
	int64_t deadline;
};

struct pending_join {
	uint64_t client_id, seq;
	uint32_t join_id;    /* vigil_join_begin's; 0 = not tracked */
	char list[512];
};

struct leaver {
	uint64_t client_id;
	uint64_t seq;
};

/* A key operation started for a client: answered when the cluster did. */
struct pending_key {
	struct rpc_server *s;
	uint64_t client_id, seq;
	bool list;
	struct pending_key *next;
};

/* Query events that arrive while vigil_query() is still running (the local
 * node may ack/answer its own query synchronously) are held back so that the
 * response header always precedes its records, as serf's client expects. */
struct stashed {
	enum vigil_event_type type;
	uint32_t id;
	char from[VIGIL_NAME_MAX + 1];
	uint8_t *payload;
	size_t len;
};

struct rpc_server {
	struct agent *a;
	int lfd;
	char *auth;
	struct client *clients;
	size_t nclients;
	uint64_t next_id;
	struct outq *oq;
	size_t noq;
	struct leaver *leavers;
	size_t nleavers;
	struct pending_join *joins;
	size_t njoins;
	struct pending_key *keyreqs;
	bool in_query;
	struct stashed *stash;
	size_t nstash;
	size_t freed_big; /* bytes of big buffers freed since the last trim */
};

/* ---------------------------------------------------------------- output */

static int wbuf_write(void *data, const char *buf, size_t len)
{
	struct client *c = data;
	if (c->overflow)
		return 0;
	if (c->wlen + len > WBUF_HARD_LIMIT) {
		c->overflow = true;
		return 0;
	}
	if (c->wlen + len > c->wcap) {
		size_t ncap = c->wcap ? c->wcap : 4096;
		while (ncap < c->wlen + len)
			ncap *= 2;
		uint8_t *n = realloc(c->wbuf, ncap);
		if (!n) {
			c->overflow = true;
			return 0;
		}
		c->wbuf = n;
		c->wcap = ncap;
	}
	memcpy(c->wbuf + c->wlen, buf, len);
	c->wlen += len;
	return 0;
}

static void client_packer(struct client *c, msgpack_packer *pk)
{
	msgpack_packer_init(pk, c, wbuf_write);
}

static void pack_header(msgpack_packer *pk, uint64_t seq, const char *err)
{
	msgpack_pack_map(pk, 2);
	mp_pack_kuint(pk, "Seq", seq);
	mp_pack_kstr(pk, "Error", err ? err : "");
}

/* Header-only response. */
static void reply(struct client *c, uint64_t seq, const char *err)
{
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, err);
}

static struct client *find_client(struct rpc_server *s, uint64_t id)
{
	for (struct client *c = s->clients; c; c = c->next)
		if (c->id == id && !c->dead)
			return c;
	return NULL;
}

static void client_kill(struct client *c, const char *why)
{
	if (c->dead)
		return;
	if (why)
		alog_rl(LV_ERR, "agent.ipc: %s: %s", c->name, why);
	c->dead = true;
}

/* Handshaken, and authenticated if the agent wants a token. */
static bool client_ready(const struct rpc_server *s, const struct client *c)
{
	return c->version != 0 && (!s->auth || !*s->auth || c->authed);
}

/* Give back what a burst made a buffer grow to (see BUF_KEEP). */
static void shrink_buffers(struct rpc_server *s, struct client *c)
{
	if (c->wlen == 0 && c->wcap > BUF_KEEP) {
		s->freed_big += c->wcap;
		free(c->wbuf);
		c->wbuf = NULL;
		c->wcap = 0;
	}
	if (c->rlen == 0 && c->rcap > BUF_KEEP) {
		s->freed_big += c->rcap;
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	}
}

static void try_flush(struct client *c)
{
	while (c->wlen > 0 && !c->dead) {
		ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
			c->wlen -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		c->dead = true; /* peer went away */
		return;
	}
	if (c->wlen == 0 && c->close_after_flush)
		c->dead = true;
}

/* ------------------------------------------------------------ encoding */

static void pack_ip(msgpack_packer *pk, const char *addr)
{
	/* serf sends net.IP, i.e. the raw 4 or 16 address bytes */
	uint8_t b[16];
	if (inet_pton(AF_INET, addr, b) == 1)
		mp_pack_binn(pk, b, 4);
	else if (inet_pton(AF_INET6, addr, b) == 1)
		mp_pack_binn(pk, b, 16);
	else
		mp_pack_binn(pk, NULL, 0);
}

static void pack_tags(msgpack_packer *pk, const struct vigil_tag *t, size_t n)
{
	msgpack_pack_map(pk, n);
	for (size_t i = 0; i < n; i++)
		mp_pack_kstr(pk, t[i].key, t[i].value);
}

static void pack_member(msgpack_packer *pk, const struct vigil_member *m)
{
	static const char *const vk[6] = {"ProtocolMin", "ProtocolMax", "ProtocolCur",
					  "DelegateMin", "DelegateMax", "DelegateCur"};
	msgpack_pack_map(pk, 11);
	mp_pack_kstr(pk, "Name", m->name);
	mp_pack_cstr(pk, "Addr");
	pack_ip(pk, m->addr);
	mp_pack_kuint(pk, "Port", m->port);
	mp_pack_cstr(pk, "Tags");
	pack_tags(pk, m->tags, m->n_tags);
	mp_pack_kstr(pk, "Status", vigil_status_name(m->status));
	for (int i = 0; i < 6; i++)
		mp_pack_kuint(pk, vk[i], m->vsn[i]);
}

/* ------------------------------------------------------------ commands */

static bool cmd_has_body(const char *cmd)
{
	static const char *const nobody[] = {"members", "leave", "list-keys", "stats",
					     "will-clear"};
	for (size_t i = 0; i < sizeof nobody / sizeof nobody[0]; i++)
		if (strcmp(cmd, nobody[i]) == 0)
			return false;
	return true;
}

static bool cmd_known(const char *cmd)
{
	static const char *const known[] = {
		"handshake", "auth", "event", "force-leave", "join", "members",
		"members-filtered", "stream", "monitor", "stop", "leave", "install-key",
		"use-key", "remove-key", "list-keys", "tags", "query", "respond", "stats",
		"get-coordinate", "will-set", "will-clear", "will-list"};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(cmd, known[i]) == 0)
			return true;
	return false;
}

static void h_handshake(struct client *c, uint64_t seq, const msgpack_object *b)
{
	int64_t ver = 0;
	mp_get_int(b, "Version", &ver);
	if (ver < 1 || ver > 1)
		reply(c, seq, E_UNSUPPORTED_VER);
	else if (c->version != 0)
		reply(c, seq, E_DUP_HANDSHAKE);
	else {
		c->version = (int)ver;
		reply(c, seq, "");
	}
}

static void h_auth(struct rpc_server *s, struct client *c, uint64_t seq,
		   const msgpack_object *b)
{
	const char *p = "";
	size_t n = 0;
	mp_as_bytes(mp_get(b, "AuthKey"), &p, &n);
	const char *want = s->auth ? s->auth : "";
	if (strlen(want) == n && memcmp(want, p, n) == 0) {
		c->authed = true;
		reply(c, seq, "");
	} else {
		alog_rl(LV_WARN, "agent.ipc: %s: invalid authentication token", c->name);
		reply(c, seq, E_INVALID_AUTH);
	}
}

static void h_event(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b)
{
	char name[VIGIL_NAME_MAX * 4];
	const char *pl = "", *np = "";
	size_t pn = 0, nl = 0;
	bool coalesce = false;
	mp_as_bytes(mp_get(b, "Name"), &np, &nl);
	mp_as_bytes(mp_get(b, "Payload"), &pl, &pn);
	mp_get_bool(b, "Coalesce", &coalesce);
	snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), np);
	alog(LV_DEBUG, "agent: Requesting user event send: %s. Coalesced: %s. Payload: \"%.*s\"",
	     name, coalesce ? "true" : "false", (int)(pn > 256 ? 256 : pn), pl);
	/* serf's UserEventSizeLimit default, checked before encoding */
	if (nl + pn > 512 || memchr(np, '\0', nl)) {
		char err[128];
		snprintf(err, sizeof err,
			 "user event exceeds configured limit of %d bytes before encoding", 512);
		alog(LV_WARN, "agent: failed to send user event: %s", err);
		reply(c, seq, err);
		return;
	}
	if (vigil_user_event(s->a->v, name, (const uint8_t *)pl, pn, coalesce) != 0) {
		alog(LV_WARN, "agent: failed to send user event: %s", name);
		reply(c, seq, "failed to send user event");
		return;
	}
	reply(c, seq, "");
}

static void h_force_leave(struct rpc_server *s, struct client *c, uint64_t seq,
			  const msgpack_object *b)
{
	char node[VIGIL_NAME_MAX + 1];
	bool prune = false;
	if (!mp_get_str(b, "Node", node, sizeof node))
		node[0] = '\0';
	mp_get_bool(b, "Prune", &prune);
	alog(LV_INFO, "agent: Force leaving node%s: %s", prune ? " (prune)" : "", node);
	if (vigil_force_leave(s->a->v, node, prune) != 0) {
		alog(LV_WARN, "agent: failed to remove node: %s", node);
		reply(c, seq, "failed to remove node");
		return;
	}
	reply(c, seq, "");
}

/*
 * The library joins asynchronously (vigil_join_begin only starts the
 * push/pulls), but serf answers "join" only once memberlist's Join has
 * returned: Num is the number of seeds that answered, and none answering is
 * an error.  So the reply waits for vigil_join_poll to report the outcome
 * (which it does by the TCP timeout at the latest).
 */

static void join_reply(struct client *c, uint64_t seq, const char *err, int num)
{
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, err);
	msgpack_pack_map(&pk, 1);
	mp_pack_cstr(&pk, "Num");
	msgpack_pack_int32(&pk, num);
}

/* Answer the joins that are decided; called every loop iteration. */
static void check_joins(struct rpc_server *s)
{
	for (size_t i = 0; i < s->njoins;) {
		struct pending_join *pj = &s->joins[i];
		int joined = 0;
		int done = pj->join_id ? vigil_join_poll(s->a->v, pj->join_id, &joined) : -1;
		if (done == 0) {
			i++; /* still contacting seeds */
			continue;
		}
		struct client *c = find_client(s, pj->client_id);
		if (joined > 0) {
			alog(LV_INFO, "agent: joined: %d nodes", joined);
			if (c)
				join_reply(c, pj->seq, "", joined);
		} else {
			char err[600];
			snprintf(err, sizeof err, "Failed to join [%s]: %s", pj->list,
				 done == 1 ? "no seed answered" : "could not track the join");
			alog(LV_WARN, "agent: error joining: %s", err);
			if (c)
				join_reply(c, pj->seq, err, 0);
		}
		s->joins[i] = s->joins[--s->njoins];
	}
}

static void h_join(struct rpc_server *s, struct client *c, uint64_t seq,
		   const msgpack_object *b)
{
	const msgpack_object *ex = mp_get(b, "Existing");
	const char *addrs[64];
	char *copies[64];
	size_t n = 0;
	bool replay = false;
	mp_get_bool(b, "Replay", &replay);
	if (ex && ex->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < ex->via.array.size && n < 64; i++) {
			const char *p;
			size_t l;
			if (!mp_as_bytes(&ex->via.array.ptr[i], &p, &l) || l == 0 || l > 300)
				continue;
			copies[n] = strndup(p, l);
			if (!copies[n])
				break;
			addrs[n] = copies[n];
			n++;
		}
	}
	struct pending_join pj = {.client_id = c->id, .seq = seq};
	for (size_t i = 0; i < n; i++) {
		size_t ll = strlen(pj.list);
		snprintf(pj.list + ll, sizeof pj.list - ll, "%s%s", i ? " " : "", addrs[i]);
	}
	alog(LV_INFO, "agent: joining: [%s] replay: %s", pj.list, replay ? "true" : "false");
	int num = n ? vigil_join_begin(s->a->v, addrs, n, replay, &pj.join_id) : 0;
	for (size_t i = 0; i < n; i++)
		free(copies[i]);
	if (num <= 0) {
		char err[600];
		snprintf(err, sizeof err, n ? "Failed to join [%s]: no valid address" : "no addresses to join",
			 pj.list);
		alog(LV_WARN, "agent: error joining: %s", err);
		join_reply(c, seq, err, 0);
		return;
	}
	struct pending_join *nj = realloc(s->joins, (s->njoins + 1) * sizeof *nj);
	if (!nj) {
		join_reply(c, seq, "out of memory", 0);
		return;
	}
	s->joins = nj;
	s->joins[s->njoins++] = pj;
}

/*
 * serf's filterMembers compiles regexp.Compile(fmt.Sprintf("^%s$", expr)):
 * the anchors are pasted as text, so "a|b" is "^a|b$" there and here.
 * Go's syntax, linear-time matching and *budget (shared by the request's
 * expressions) come from goregex.h: the glibc regcomp used before spent
 * seconds on ".{0,999}" five times (issue 15).
 */
static struct goregex *compile_anchored(const char *expr, size_t len, size_t *budget,
					char *err, size_t errlen)
{
	char gerr[192];
	char *pat = malloc(len + 3);
	if (!pat) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pat[0] = '^';
	if (len)
		memcpy(pat + 1, expr, len);
	pat[len + 1] = '$';
	pat[len + 2] = '\0';
	struct goregex *re = goregex_compile(pat, len + 2, budget, gerr, sizeof gerr);
	free(pat);
	if (!re)
		snprintf(err, errlen, "Failed to compile regex: %s", gerr);
	return re;
}

/*
 * Each match is bounded (goregex.h), but a request matches every member:
 * past this much time the request fails rather than stall the node's
 * gossip (serf would keep going; its cost grows with the cluster too).
 */
#define MEMBERS_FILTER_MAX_MS 100

static const char *member_tag(const struct vigil_member *m, const char *k)
{
	for (size_t i = 0; i < m->n_tags; i++)
		if (strcmp(m->tags[i].key, k) == 0)
			return m->tags[i].value;
	return NULL;
}

static void h_members(struct rpc_server *s, struct client *c, uint64_t seq,
		      const msgpack_object *b, bool filtered)
{
	struct vigil_member *ms = NULL;
	size_t n = 0;
	char err[320] = "";
	bool fatal = false; /* serf drops the connection on a bad expression */
	struct goregex *status_re = NULL, *name_re = NULL, **tag_re = NULL;
	char **tag_keys = NULL;
	size_t ntags = 0;
	size_t budget = GOREGEX_BUDGET; /* for all of this request's expressions */

	if (filtered) {
		const char *st = NULL, *nm = NULL;
		size_t stn = 0, nmn = 0;
		mp_as_bytes(mp_get(b, "Status"), &st, &stn);
		mp_as_bytes(mp_get(b, "Name"), &nm, &nmn);
		const msgpack_object *tags = mp_get(b, "Tags");
		if (tags && tags->type == MSGPACK_OBJECT_MAP && tags->via.map.size) {
			tag_re = calloc(tags->via.map.size, sizeof *tag_re);
			tag_keys = calloc(tags->via.map.size, sizeof *tag_keys);
			if (!tag_re || !tag_keys) {
				snprintf(err, sizeof err, "out of memory");
				goto out;
			}
			for (uint32_t i = 0; i < tags->via.map.size; i++) {
				const char *kp, *vp;
				size_t kn, vn;
				if (!mp_as_bytes(&tags->via.map.ptr[i].key, &kp, &kn) ||
				    !mp_as_bytes(&tags->via.map.ptr[i].val, &vp, &vn))
					continue;
				tag_re[ntags] = compile_anchored(vp, vn, &budget, err, sizeof err);
				if (!tag_re[ntags]) {
					fatal = true;
					goto out;
				}
				tag_keys[ntags++] = strndup(kp, kn);
			}
		}
		/* serf applies a status or name filter only when it is not "" */
		if (stn && !(status_re = compile_anchored(st, stn, &budget, err, sizeof err))) {
			fatal = true;
			goto out;
		}
		if (nmn && !(name_re = compile_anchored(nm, nmn, &budget, err, sizeof err))) {
			fatal = true;
			goto out;
		}
	}
	if (vigil_members(s->a->v, &ms, &n) != 0) {
		snprintf(err, sizeof err, "failed to list members");
		goto out;
	}
	bool *keep = calloc(n ? n : 1, sizeof *keep);
	size_t nkeep = 0;
	int64_t deadline = now_ms() + MEMBERS_FILTER_MAX_MS;
	bool filters = ntags || status_re || name_re;
	for (size_t i = 0; keep && i < n; i++) {
		bool ok = true;
		for (size_t t = 0; ok && t < ntags; t++) {
			const char *v = tag_keys[t] ? member_tag(&ms[i], tag_keys[t]) : NULL;
			ok = goregex_match(tag_re[t], v ? v : "", v ? strlen(v) : 0);
		}
		if (ok && status_re) {
			const char *sn = vigil_status_name(ms[i].status);
			ok = goregex_match(status_re, sn, strlen(sn));
		}
		if (ok && name_re)
			ok = goregex_match(name_re, ms[i].name, strlen(ms[i].name));
		keep[i] = ok;
		nkeep += ok;
		if (filters && now_ms() > deadline) {
			snprintf(err, sizeof err,
				 "filtering %zu members took over %d ms; use a simpler expression", n,
				 MEMBERS_FILTER_MAX_MS);
			break;
		}
	}
	if (!err[0]) {
		msgpack_packer pk;
		client_packer(c, &pk);
		pack_header(&pk, seq, "");
		msgpack_pack_map(&pk, 1);
		mp_pack_cstr(&pk, "Members");
		msgpack_pack_array(&pk, keep ? nkeep : 0);
		for (size_t i = 0; keep && i < n; i++)
			if (keep[i])
				pack_member(&pk, &ms[i]);
	}
	free(keep);
	vigil_members_free(ms, n);
out:
	if (fatal) {
		/* serf's handleMembersFiltered returns the error, and its IPC
		 * loop logs it and closes the client: the CLI sees EOF */
		char why[400];
		snprintf(why, sizeof why, "Failed to evaluate request: %s", err);
		client_kill(c, why);
	} else if (err[0]) {
		msgpack_packer pk;
		client_packer(c, &pk);
		pack_header(&pk, seq, err);
		msgpack_pack_map(&pk, 1);
		mp_pack_cstr(&pk, "Members");
		msgpack_pack_array(&pk, 0);
	}
	for (size_t t = 0; t < ntags; t++) {
		goregex_free(tag_re[t]);
		free(tag_keys[t]);
	}
	free(tag_re);
	free(tag_keys);
	goregex_free(status_re);
	goregex_free(name_re);
}

static void h_stream(struct client *c, uint64_t seq, const msgpack_object *b)
{
	char type[1024];
	const msgpack_object *to = mp_get(b, "Type");
	bool bad = false;
	if (!mp_get_str(b, "Type", type, sizeof type)) {
		type[0] = '\0';
		bad = to && to->type != MSGPACK_OBJECT_NIL; /* too long or not a string */
	}
	struct handler_filter *f = NULL;
	size_t nf = 0;
	if (bad || strlen(type) != (to && to->type == MSGPACK_OBJECT_STR ? to->via.str.size : strlen(type)) ||
	    handler_parse_filter(type, &f, &nf) != 0) {
		reply(c, seq, E_INVALID_FILTER);
		return;
	}
	/* At most MAX_STREAMS, so this scan is short: registering streams
	 * used to walk an unbounded list (150k of them: 23 s of CPU). */
	for (size_t i = 0; i < c->nstreams; i++) {
		if (c->streams[i].seq == seq) {
			handler_free_filter(f, nf);
			reply(c, seq, E_STREAM_EXISTS);
			return;
		}
	}
	if (c->nstreams >= MAX_STREAMS) {
		handler_free_filter(f, nf);
		reply(c, seq, "Too many streams");
		return;
	}
	if (!c->streams) {
		c->streams = calloc(MAX_STREAMS, sizeof *c->streams);
		if (!c->streams) {
			handler_free_filter(f, nf);
			reply(c, seq, "out of memory");
			return;
		}
	}
	c->streams[c->nstreams++] = (struct stream){seq, f, nf};
	reply(c, seq, "");
}

static void send_log(struct client *c, const char *line)
{
	if (c->wlen > WBUF_STREAM_LIMIT)
		return; /* slow monitor: drop (serf: "Dropping logs") */
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, c->mon_seq, "");
	msgpack_pack_map(&pk, 1);
	mp_pack_kstr(&pk, "Log", line);
}

static void replay_log(void *ctx, int lv, const char *line)
{
	struct client *c = ctx;
	if (lv >= c->mon_level)
		send_log(c, line);
}

static void h_monitor(struct client *c, uint64_t seq, const msgpack_object *b)
{
	char lvl[32];
	if (!mp_get_str(b, "LogLevel", lvl, sizeof lvl))
		lvl[0] = '\0';
	for (char *p = lvl; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	int lv = log_level_parse(lvl);
	if (lv < 0) {
		char err[80];
		snprintf(err, sizeof err, "Unknown log level: %s", lvl);
		reply(c, seq, err);
		return;
	}
	if (c->monitor) {
		reply(c, seq, E_MONITOR_EXISTS);
		return;
	}
	reply(c, seq, "");
	c->monitor = true;
	c->mon_seq = seq;
	c->mon_level = lv;
	/* like serf's logWriter.RegisterHandler: recent history first */
	log_ring_foreach(replay_log, c);
}

static void h_stop(struct client *c, uint64_t seq, const msgpack_object *b)
{
	uint64_t stop = 0;
	mp_get_uint(b, "Stop", &stop);
	if (c->monitor && c->mon_seq == stop)
		c->monitor = false;
	for (size_t i = 0; i < c->nstreams; i++) {
		if (c->streams[i].seq == stop) {
			handler_free_filter(c->streams[i].f, c->streams[i].nf);
			/* keep registration order: events go out oldest stream first */
			memmove(&c->streams[i], &c->streams[i + 1],
				(c->nstreams - i - 1) * sizeof *c->streams);
			c->nstreams--;
			break;
		}
	}
	reply(c, seq, "");
}

static void h_leave(struct rpc_server *s, struct client *c, uint64_t seq)
{
	alog(LV_INFO, "agent.ipc: Graceful leave triggered");
	struct leaver *n = realloc(s->leavers, (s->nleavers + 1) * sizeof *n);
	if (!n) {
		reply(c, seq, "out of memory");
		return;
	}
	s->leavers = n;
	s->leavers[s->nleavers].client_id = c->id;
	s->leavers[s->nleavers].seq = seq;
	s->nleavers++;
	/* the reply is sent by rpc_leave_done() once the leave has finished;
	 * after that the agent shuts down, as serf's does */
	agent_begin_leave(s->a);
	s->a->shutdown_after_leave = true;
}

/* serf's keyResponse {Messages, Keys, NumNodes, NumErr, NumResp}; r NULL =
 * the operation never started (serf's empty KeyResponse).  Keys is nil
 * except for list-keys, as ipc.go fills it. */
static void key_reply(struct client *c, uint64_t seq, const char *err, bool list,
		      const struct vigil_keys_result *r)
{
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, err);
	msgpack_pack_map(&pk, 5);
	mp_pack_cstr(&pk, "Messages");
	msgpack_pack_map(&pk, r ? r->n_messages : 0);
	for (size_t i = 0; r && i < r->n_messages; i++)
		mp_pack_kstr(&pk, r->messages[i].node, r->messages[i].message);
	mp_pack_cstr(&pk, "Keys");
	if (!list) {
		msgpack_pack_nil(&pk);
	} else {
		msgpack_pack_map(&pk, r ? r->n_keys : 0);
		for (size_t i = 0; r && i < r->n_keys; i++) {
			mp_pack_cstr(&pk, r->keys[i].key);
			msgpack_pack_int(&pk, r->keys[i].count);
		}
	}
	mp_pack_cstr(&pk, "NumNodes");
	msgpack_pack_int(&pk, r ? r->num_nodes : 0);
	mp_pack_cstr(&pk, "NumErr");
	msgpack_pack_int(&pk, r ? r->num_err : 0);
	mp_pack_cstr(&pk, "NumResp");
	msgpack_pack_int(&pk, r ? r->num_resp : 0);
}

static void key_done(void *ctx, const struct vigil_keys_result *r)
{
	struct pending_key *pk = ctx;
	struct rpc_server *s = pk->s;
	for (struct pending_key **pp = &s->keyreqs; *pp; pp = &(*pp)->next) {
		if (*pp == pk) {
			*pp = pk->next;
			break;
		}
	}
	struct client *c = find_client(s, pk->client_id);
	if (c)
		key_reply(c, pk->seq, r->error ? r->error : "", pk->list, r);
	free(pk);
}

/* install-key, use-key, remove-key, list-keys: the answer waits until the
 * cluster answered (or the query timed out), as serf's KeyManager does. */
static void h_key(struct rpc_server *s, struct client *c, uint64_t seq,
		  const msgpack_object *b, const char *cmd)
{
	char key[256], err[256] = "";
	enum vigil_keys_opcode op;
	if (strcmp(cmd, "list-keys") == 0) {
		op = VIGIL_KEYS_LIST;
		key[0] = '\0';
		alog(LV_INFO, "agent: Initiating key listing");
	} else {
		if (!mp_get_str(b, "Key", key, sizeof key))
			key[0] = '\0';
		if (strcmp(cmd, "install-key") == 0) {
			op = VIGIL_KEYS_INSTALL;
			alog(LV_INFO, "agent: Initiating key installation");
		} else if (strcmp(cmd, "use-key") == 0) {
			op = VIGIL_KEYS_USE;
			alog(LV_INFO, "agent: Initiating primary key change");
		} else {
			op = VIGIL_KEYS_REMOVE;
			alog(LV_INFO, "agent: Initiating key removal");
		}
	}
	struct pending_key *pk = calloc(1, sizeof *pk);
	if (!pk) {
		key_reply(c, seq, "out of memory", op == VIGIL_KEYS_LIST, NULL);
		return;
	}
	*pk = (struct pending_key){s, c->id, seq, op == VIGIL_KEYS_LIST, s->keyreqs};
	if (vigil_keys_op(s->a->v, op, key, key_done, pk, err, sizeof err) != 0) {
		if (!err[0])
			snprintf(err, sizeof err, "key operation failed");
		alog(LV_WARN, "agent: %s: %s", cmd, err);
		key_reply(c, seq, err, op == VIGIL_KEYS_LIST, NULL);
		free(pk);
		return;
	}
	s->keyreqs = pk;
}

static void h_tags(struct rpc_server *s, struct client *c, uint64_t seq,
		   const msgpack_object *b)
{
	const msgpack_object *t = mp_get(b, "Tags"), *d = mp_get(b, "DeleteTags");
	struct vigil_tag *set = NULL;
	const char **del = NULL;
	size_t nset = 0, ndel = 0;
	bool oom = false;
	if (t && t->type == MSGPACK_OBJECT_MAP && t->via.map.size) {
		set = calloc(t->via.map.size, sizeof *set);
		oom |= !set;
		for (uint32_t i = 0; set && i < t->via.map.size; i++) {
			const char *kp, *vp;
			size_t kn, vn;
			if (!mp_as_bytes(&t->via.map.ptr[i].key, &kp, &kn) ||
			    !mp_as_bytes(&t->via.map.ptr[i].val, &vp, &vn))
				continue;
			set[nset].key = strndup(kp, kn);
			set[nset].value = strndup(vp, vn);
			nset++;
		}
	}
	if (d && d->type == MSGPACK_OBJECT_ARRAY && d->via.array.size) {
		del = calloc(d->via.array.size, sizeof *del);
		oom |= !del;
		for (uint32_t i = 0; del && i < d->via.array.size; i++) {
			const char *p;
			size_t l;
			if (mp_as_bytes(&d->via.array.ptr[i], &p, &l))
				del[ndel++] = strndup(p, l);
		}
	}
	for (size_t i = 0; i < nset; i++)
		oom |= !set[i].key || !set[i].value;
	for (size_t i = 0; i < ndel; i++)
		oom |= !del[i];
	int rc = oom ? -1 : vigil_set_tags(s->a->v, set, nset, del, ndel);
	char terr[512] = "failed to update tags";
	/* serf agent.SetTags: persist to -tags-file */
	if (rc == 0 && s->a->cfg.tags_file && *s->a->cfg.tags_file &&
	    tagsfile_write(s->a->cfg.tags_file, s->a->v, terr, sizeof terr) != 0) {
		alog(LV_ERR, "agent: %s", terr);
		rc = -1;
	}
	reply(c, seq, rc == 0 ? "" : terr);
	for (size_t i = 0; i < nset; i++) {
		free(set[i].key);
		free(set[i].value);
	}
	for (size_t i = 0; i < ndel; i++)
		free((char *)del[i]);
	free(set);
	free(del);
}

static void send_query_record(struct client *c, uint64_t seq, const char *type,
			      const char *from, const uint8_t *p, size_t n)
{
	if (c->wlen > WBUF_STREAM_LIMIT)
		return;
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, "");
	msgpack_pack_map(&pk, 3);
	mp_pack_kstr(&pk, "Type", type);
	mp_pack_kstr(&pk, "From", from);
	mp_pack_cstr(&pk, "Payload");
	if (p)
		mp_pack_binn(&pk, p, n);
	else
		msgpack_pack_nil(&pk);
}

static void outq_event(struct rpc_server *s, enum vigil_event_type type, uint32_t id,
		       const char *from, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < s->noq; i++) {
		struct outq *q = &s->oq[i];
		if (q->lib_id != id)
			continue;
		struct client *c = find_client(s, q->client_id);
		if (c && type == VIGIL_EV_QUERY_ACK)
			send_query_record(c, q->seq, "ack", from, NULL, 0);
		else if (c && type == VIGIL_EV_QUERY_RESPONSE)
			send_query_record(c, q->seq, "response", from, p, n);
		if (!c || type == VIGIL_EV_QUERY_DONE) {
			if (c)
				send_query_record(c, q->seq, "done", "", NULL, 0);
			s->oq[i] = s->oq[--s->noq];
		}
		return;
	}
}

static void h_query(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b)
{
	char name[VIGIL_NAME_MAX * 4];
	const char *pl = NULL;
	size_t pn = 0;
	bool ack = false, have_payload;
	int64_t timeout_ns = 0, relay = 0;
	const msgpack_object *fn = mp_get(b, "FilterNodes"), *ft = mp_get(b, "FilterTags");
	const msgpack_object *po = mp_get(b, "Payload");

	if (!mp_get_str(b, "Name", name, sizeof name)) {
		const msgpack_object *no = mp_get(b, "Name");
		if (no && no->type != MSGPACK_OBJECT_NIL) {
			/* serf's QuerySizeLimit (1024 bytes) covers the name */
			reply(c, seq, "query exceeds limit of 1024 bytes");
			return;
		}
		name[0] = '\0';
	}
	have_payload = po && po->type != MSGPACK_OBJECT_NIL;
	mp_as_bytes(po, &pl, &pn);
	mp_get_bool(b, "RequestAck", &ack);
	mp_get_int(b, "Timeout", &timeout_ns);
	mp_get_int(b, "RelayFactor", &relay);

	if (strncmp(name, "_serf_", 6) == 0 &&
	    (strcmp(name, "_serf_ping") != 0 || have_payload)) {
		reply(c, seq, "Queries cannot contain the '_serf_' prefix");
		return;
	}

	size_t nn = fn && fn->type == MSGPACK_OBJECT_ARRAY ? fn->via.array.size : 0;
	size_t nt = ft && ft->type == MSGPACK_OBJECT_MAP ? ft->via.map.size : 0;
	char **nodes = calloc(nn + 1, sizeof *nodes);
	char **tags = calloc(2 * nt + 1, sizeof *tags);
	size_t kn = 0, kt = 0;
	for (size_t i = 0; nodes && i < nn; i++) {
		const char *p;
		size_t l;
		if (mp_as_bytes(&fn->via.array.ptr[i], &p, &l))
			nodes[kn++] = strndup(p, l);
	}
	for (size_t i = 0; tags && i < nt; i++) {
		const char *kp, *vp;
		size_t kl, vl;
		if (!mp_as_bytes(&ft->via.map.ptr[i].key, &kp, &kl) ||
		    !mp_as_bytes(&ft->via.map.ptr[i].val, &vp, &vl))
			continue;
		tags[kt++] = strndup(kp, kl);
		tags[kt++] = strndup(vp, vl);
	}
	struct vigil_query_params qp = {
		.filter_nodes = (const char *const *)nodes,
		.n_filter_nodes = kn,
		.filter_tags = (const char *const *)tags,
		.n_filter_tags = kt, /* strings, not pairs (issue 17) */
		.request_ack = ack,
		.timeout_ms = timeout_ns > 0 ? (int)(timeout_ns / 1000000 > 0x7fffffff
							     ? 0x7fffffff
							     : timeout_ns / 1000000)
					     : 0,
		.relay_factor = relay < 0 ? 0 : relay > 255 ? 255 : (int)relay,
	};
	if (timeout_ns > 0 && qp.timeout_ms == 0)
		qp.timeout_ms = 1;
	alog(LV_DEBUG, "agent: Requesting query send: %s. Payload: \"%.*s\"", name,
	     (int)(pn > 256 ? 256 : pn), pl ? pl : "");
	uint32_t id = 0;
	bool oom = !nodes || !tags;
	for (size_t i = 0; i < kn; i++)
		oom |= !nodes[i];
	for (size_t i = 0; i < kt; i++)
		oom |= !tags[i];
	struct outq *nq = oom ? NULL : realloc(s->oq, (s->noq + 1) * sizeof *nq);
	int rc = -1;
	if (nq) {
		s->oq = nq;
		s->in_query = true;
		rc = vigil_query(s->a->v, name, (const uint8_t *)pl, pn, &qp, &id);
		s->in_query = false;
	}
	for (size_t i = 0; i < kn; i++)
		free(nodes[i]);
	for (size_t i = 0; i < kt; i++)
		free(tags[i]);
	free(nodes);
	free(tags);
	if (rc == VIGIL_ERR_TOO_LARGE) {
		/* serf's Query error, which its CLI prints */
		alog(LV_WARN, "agent: failed to start user query: query exceeds limit of 1024 bytes");
		reply(c, seq, "query exceeds limit of 1024 bytes");
	} else if (rc != 0) {
		alog(LV_WARN, "agent: failed to start user query: %s", name);
		reply(c, seq, "failed to start query");
	} else {
		reply(c, seq, "");
		int64_t span = qp.timeout_ms > 0 ? qp.timeout_ms : 60000;
		s->oq[s->noq++] = (struct outq){id, c->id, seq, now_ms() + span + 2000};
	}
	/* now that the header is out, replay what happened during the call */
	for (size_t i = 0; i < s->nstash; i++) {
		struct stashed *st = &s->stash[i];
		if (rc == 0)
			outq_event(s, st->type, st->id, st->from, st->payload, st->len);
		free(st->payload);
	}
	free(s->stash);
	s->stash = NULL;
	s->nstash = 0;
}

static void h_respond(struct rpc_server *s, struct client *c, uint64_t seq,
		      const msgpack_object *b)
{
	uint64_t id = 0;
	const char *p = "";
	size_t n = 0;
	mp_get_uint(b, "ID", &id);
	mp_as_bytes(mp_get(b, "Payload"), &p, &n);
	int64_t now = now_ms();
	for (size_t i = 0; i < c->npr; i++) {
		if (c->pr[i].client_qid == id && c->pr[i].expires > now) {
			if (vigil_respond(s->a->v, c->pr[i].lib_id, (const uint8_t *)p, n) != 0)
				reply(c, seq, "failed to respond to query");
			else
				reply(c, seq, "");
			return;
		}
	}
	reply(c, seq, E_INVALID_QUERY_ID);
}

static void h_stats(struct rpc_server *s, struct client *c, uint64_t seq)
{
	struct agent *a = s->a;
	struct vigil_member *ms = NULL;
	size_t n = 0;
	size_t failed = 0, left = 0;
	const struct vigil_member *self = NULL;
	if (vigil_members(a->v, &ms, &n) != 0) {
		ms = NULL;
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (ms[i].status == VIGIL_STATUS_FAILED)
			failed++;
		else if (ms[i].status == VIGIL_STATUS_LEFT)
			left++;
		if (strcmp(ms[i].name, vigil_name(a->v)) == 0)
			self = &ms[i];
	}
	struct vigil_stat st[160];
	int nst = vigil_stats(a->v, st, 160);
	if (nst < 0)
		nst = 0;
	if (nst > 160)
		nst = 160;

	/* serf's Serf.Stats() keys come first; library stats that don't
	 * clash are appended so nothing the library knows is hidden. */
	struct {
		const char *k;
		char v[64];
	} serf_stats[16];
	size_t ns = 0;
#define ADD(key, ...)                                                           \
	do {                                                                    \
		serf_stats[ns].k = key;                                         \
		snprintf(serf_stats[ns].v, sizeof serf_stats[ns].v, __VA_ARGS__); \
		ns++;                                                           \
	} while (0)
	ADD("members", "%zu", n); /* serf: every known member, failed and left included */
	ADD("failed", "%zu", failed);
	ADD("left", "%zu", left);
	const char *libmap[][2] = {{"health_score", "health_score"}, {"member_time", "member_time"},
				   {"event_time", "event_time"},     {"query_time", "query_time"},
				   {"intent_queue", "intent_queue"}, {"event_queue", "event_queue"},
				   {"query_queue", "query_queue"}};
	for (size_t k = 0; k < sizeof libmap / sizeof libmap[0]; k++) {
		double v = 0;
		for (int i = 0; i < nst; i++)
			if (st[i].name && strcmp(st[i].name, libmap[k][1]) == 0)
				v = st[i].value;
		ADD(libmap[k][0], "%.0f", v);
	}
	ADD("encrypted", "%s", a->encrypted ? "true" : "false");
#undef ADD
	size_t extra = 0;
	for (int i = 0; i < nst; i++) {
		bool dup = !st[i].name;
		for (size_t k = 0; !dup && k < ns; k++)
			dup = strcmp(serf_stats[k].k, st[i].name) == 0;
		extra += !dup;
	}

	/* serf reports Go's runtime; vigil reports what it really runs on:
	 * the kernel's name for the OS and machine, and its thread count (one
	 * event loop, plus none: there are no goroutines to count) */
	struct utsname u;
	const char *os = "unknown", *arch = "unknown";
	if (uname(&u) == 0) {
		for (char *p = u.sysname; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		os = u.sysname;
		arch = u.machine;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	char cpus[24], threads[24] = "unknown";
	snprintf(cpus, sizeof cpus, "%ld", ncpu > 0 ? ncpu : 1);
	FILE *ps = fopen("/proc/self/status", "r");
	char sl[256];
	while (ps && fgets(sl, sizeof sl, ps))
		if (sscanf(sl, "Threads: %23s", threads) == 1)
			break;
	if (ps)
		fclose(ps);

	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, "");
	msgpack_pack_map(&pk, 5);
	mp_pack_cstr(&pk, "agent");
	msgpack_pack_map(&pk, 1);
	mp_pack_kstr(&pk, "name", vigil_name(a->v));
	mp_pack_cstr(&pk, "runtime");
	msgpack_pack_map(&pk, 5);
	mp_pack_kstr(&pk, "os", os);
	mp_pack_kstr(&pk, "arch", arch);
	mp_pack_kstr(&pk, "version", "vigil " VIGIL_VERSION);
	mp_pack_kstr(&pk, "threads", threads);
	mp_pack_kstr(&pk, "cpu_count", cpus);
	mp_pack_cstr(&pk, "serf");
	msgpack_pack_map(&pk, ns + extra);
	for (size_t k = 0; k < ns; k++)
		mp_pack_kstr(&pk, serf_stats[k].k, serf_stats[k].v);
	for (int i = 0; i < nst; i++) {
		bool dup = !st[i].name;
		for (size_t k = 0; !dup && k < ns; k++)
			dup = strcmp(serf_stats[k].k, st[i].name) == 0;
		if (dup)
			continue;
		char v[64];
		if (st[i].value == (double)(long long)st[i].value)
			snprintf(v, sizeof v, "%lld", (long long)st[i].value);
		else
			snprintf(v, sizeof v, "%g", st[i].value);
		mp_pack_kstr(&pk, st[i].name, v);
	}
	mp_pack_cstr(&pk, "tags");
	if (self)
		pack_tags(&pk, self->tags, self->n_tags);
	else
		msgpack_pack_map(&pk, 0);
	mp_pack_cstr(&pk, "event_handlers");
	handlers_pack_stats(a->hs, &pk);
	vigil_members_free(ms, n);
}

/* serf handleGetCoordinate: {Node} -> {Coord, Ok}.  An unknown node (or
 * coordinates disabled) gets the zero Coordinate (Vec nil) and Ok=false,
 * which `serf rtt` reports as "Could not find a coordinate". */
static void h_get_coordinate(struct rpc_server *s, struct client *c, uint64_t seq,
			     const msgpack_object *b)
{
	char node[VIGIL_NAME_MAX + 1];
	struct vigil_coord co;
	bool ok = mp_get_str(b, "Node", node, sizeof node) &&
		  vigil_get_coordinate(s->a->v, node, &co) == 0;
	if (!ok)
		memset(&co, 0, sizeof co);
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, "");
	msgpack_pack_map(&pk, 2);
	mp_pack_cstr(&pk, "Coord");
	coord_pack(&pk, &co);
	mp_pack_kbool(&pk, "Ok", ok);
}

/* vigil extension: will-set {To, Event, Delay (ns), Payload} */
static void h_will_set(struct rpc_server *s, struct client *c, uint64_t seq,
		       const msgpack_object *b)
{
	char to[VIGIL_NAME_MAX + 1], ev[VIGIL_NAME_MAX + 1];
	const char *p = "";
	size_t n = 0;
	int64_t delay = 0;
	/* refused, not cut short: "ab\0cd" must not become a will for "ab" */
	if (mp_get_text(b, "To", to, sizeof to) < 0 || mp_get_text(b, "Event", ev, sizeof ev) < 0) {
		char err[120];
		snprintf(err, sizeof err, "will recipient and event name must be strings of at "
			 "most %d bytes without NUL", VIGIL_NAME_MAX);
		reply(c, seq, err);
		return;
	}
	mp_get_int(b, "Delay", &delay);
	mp_as_bytes(mp_get(b, "Payload"), &p, &n);
	if ((to[0] != '\0') == (ev[0] != '\0')) {
		reply(c, seq, "exactly one of To or Event must be given");
		return;
	}
	if (n > VIGIL_WILL_MAX) {
		char err[80];
		snprintf(err, sizeof err, "will payload exceeds limit of %d bytes", VIGIL_WILL_MAX);
		reply(c, seq, err);
		return;
	}
	if (delay < 0) {
		reply(c, seq, "will delay must not be negative");
		return;
	}
	if (vigil_will_set(s->a->v, to[0] ? to : NULL, ev[0] ? ev : NULL, delay / 1000000,
			   (const uint8_t *)p, n) != 0) {
		reply(c, seq, "failed to set will");
		return;
	}
	alog(LV_INFO, "agent: will set (%s %s, delay %lld ms, %zu bytes)",
	     to[0] ? "to member" : "event", to[0] ? to : ev, (long long)(delay / 1000000), n);
	reply(c, seq, "");
}

static void h_will_clear(struct rpc_server *s, struct client *c, uint64_t seq)
{
	if (vigil_will_clear(s->a->v) != 0) {
		reply(c, seq, "failed to clear will");
		return;
	}
	alog(LV_INFO, "agent: will cleared");
	reply(c, seq, "");
}

static void h_will_list(struct rpc_server *s, struct client *c, uint64_t seq,
			const msgpack_object *b)
{
	char owner[VIGIL_NAME_MAX + 1];
	bool have = mp_get_str(b, "Owner", owner, sizeof owner) && owner[0];
	struct vigil_will_info *w = NULL;
	size_t n = 0;
	if (vigil_will_list(s->a->v, have ? owner : NULL, &w, &n) != 0) {
		msgpack_packer pk;
		client_packer(c, &pk);
		pack_header(&pk, seq, "failed to list wills");
		msgpack_pack_map(&pk, 1);
		mp_pack_cstr(&pk, "Wills");
		msgpack_pack_array(&pk, 0);
		return;
	}
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, "");
	msgpack_pack_map(&pk, 1);
	mp_pack_cstr(&pk, "Wills");
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_map(&pk, 6);
		mp_pack_kstr(&pk, "Owner", w[i].owner);
		mp_pack_kstr(&pk, "To", w[i].recipient);
		mp_pack_kstr(&pk, "Event", w[i].event);
		mp_pack_cstr(&pk, "Delay");
		msgpack_pack_int64(&pk, w[i].delay_ms * 1000000);
		mp_pack_kuint(&pk, "Seq", w[i].seq);
		mp_pack_cstr(&pk, "Payload");
		size_t pl = w[i].payload_len > VIGIL_WILL_MAX ? VIGIL_WILL_MAX : w[i].payload_len;
		mp_pack_binn(&pk, w[i].payload, pl);
	}
	free(w);
}

static void dispatch(struct rpc_server *s, struct client *c, const char *cmd, uint64_t seq,
		     const msgpack_object *body)
{
	if (s->auth && *s->auth && !c->authed && strcmp(cmd, "auth") != 0 &&
	    strcmp(cmd, "handshake") != 0) {
		alog_rl(LV_WARN, "agent.ipc: Client sending commands before auth");
		reply(c, seq, E_AUTH_REQUIRED);
		/* a real client sends one (the serf CLI without -rpc-auth) */
		if (++c->preauth_refused >= MAX_PREAUTH_REQUESTS)
			c->close_after_flush = true;
		return;
	}
	if (strcmp(cmd, "handshake") == 0)
		h_handshake(c, seq, body);
	else if (strcmp(cmd, "auth") == 0)
		h_auth(s, c, seq, body);
	else if (strcmp(cmd, "event") == 0)
		h_event(s, c, seq, body);
	else if (strcmp(cmd, "force-leave") == 0)
		h_force_leave(s, c, seq, body);
	else if (strcmp(cmd, "join") == 0)
		h_join(s, c, seq, body);
	else if (strcmp(cmd, "members") == 0)
		h_members(s, c, seq, NULL, false);
	else if (strcmp(cmd, "members-filtered") == 0)
		h_members(s, c, seq, body, true);
	else if (strcmp(cmd, "stream") == 0)
		h_stream(c, seq, body);
	else if (strcmp(cmd, "monitor") == 0)
		h_monitor(c, seq, body);
	else if (strcmp(cmd, "stop") == 0)
		h_stop(c, seq, body);
	else if (strcmp(cmd, "leave") == 0)
		h_leave(s, c, seq);
	else if (strcmp(cmd, "install-key") == 0 || strcmp(cmd, "use-key") == 0 ||
		 strcmp(cmd, "remove-key") == 0 || strcmp(cmd, "list-keys") == 0)
		h_key(s, c, seq, body, cmd);
	else if (strcmp(cmd, "tags") == 0)
		h_tags(s, c, seq, body);
	else if (strcmp(cmd, "query") == 0)
		h_query(s, c, seq, body);
	else if (strcmp(cmd, "respond") == 0)
		h_respond(s, c, seq, body);
	else if (strcmp(cmd, "stats") == 0)
		h_stats(s, c, seq);
	else if (strcmp(cmd, "get-coordinate") == 0)
		h_get_coordinate(s, c, seq, body);
	else if (strcmp(cmd, "will-set") == 0)
		h_will_set(s, c, seq, body);
	else if (strcmp(cmd, "will-clear") == 0)
		h_will_clear(s, c, seq);
	else if (strcmp(cmd, "will-list") == 0)
		h_will_list(s, c, seq, body);
}

/* Parse and run every complete request in c's read buffer. */
static void process_input(struct rpc_server *s, struct client *c)
{
	int budget = REQ_BUDGET;
	c->more = false;
	while (!c->dead && !c->close_after_flush && c->rlen > 0) {
		if (c->wlen > WBUF_PAUSE)
			return; /* resumed once the client has read its answers */
		if (budget-- == 0) {
			c->more = true; /* the rest next round */
			return;
		}
		size_t fl = 0;
		int r = mp_frame_len(c->rbuf, c->rlen, &fl);
		if (r == 0)
			return;
		c->last_req = now_ms();
		if (r < 0) {
			client_kill(c, "failed to decode request: malformed or oversized msgpack");
			return;
		}
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (!mp_decode(&u, c->rbuf, fl)) {
			msgpack_unpacked_destroy(&u);
			client_kill(c, "failed to decode request");
			return;
		}
		const msgpack_object *o = &u.data;
		if (!c->have_hdr) {
			char cmd[32];
			uint64_t seq = 0;
			if (o->type != MSGPACK_OBJECT_MAP || !mp_get_str(o, "Command", cmd, sizeof cmd)) {
				/* Go's decoder would leave Command empty → unsupported */
				cmd[0] = '\0';
			}
			mp_get_uint(o, "Seq", &seq);
			if (o->type != MSGPACK_OBJECT_MAP) {
				msgpack_unpacked_destroy(&u);
				client_kill(c, "failed to decode request header");
				return;
			}
			if (strcmp(cmd, "handshake") != 0 && c->version == 0) {
				reply(c, seq, E_HANDSHAKE_REQ);
				c->close_after_flush = true;
			} else if (!cmd_known(cmd)) {
				alog_rl(LV_ERR, "agent.ipc: Failed to evaluate request: command '%s' not recognized",
					cmd);
				reply(c, seq, E_UNSUPPORTED_CMD);
				c->close_after_flush = true;
			} else if (cmd_has_body(cmd)) {
				c->have_hdr = true;
				snprintf(c->cmd, sizeof c->cmd, "%s", cmd);
				c->seq = seq;
			} else {
				dispatch(s, c, cmd, seq, NULL);
			}
		} else {
			c->have_hdr = false;
			if (o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_NIL) {
				msgpack_unpacked_destroy(&u);
				client_kill(c, "failed to decode request body");
				return;
			}
			dispatch(s, c, c->cmd, c->seq, o);
		}
		msgpack_unpacked_destroy(&u);
		memmove(c->rbuf, c->rbuf + fl, c->rlen - fl);
		c->rlen -= fl;
		if (c->overflow)
			client_kill(c, "response too large");
	}
}

static void client_read(struct rpc_server *s, struct client *c)
{
	/* poll is level-triggered: cap the work per wake-up so one busy
	 * client cannot starve the others (or the gossip) */
	size_t budget = 256 * 1024;
	for (;;) {
		if (budget == 0 || c->wlen > WBUF_PAUSE || c->more)
			return;
		if (c->rcap - c->rlen < 4096) {
			if (c->rcap >= RBUF_LIMIT) {
				/* mp_frame_len rejects frames > MP_MAX_FRAME, so a
				 * full buffer means the peer sent garbage */
				process_input(s, c);
				if (c->wlen > WBUF_PAUSE || c->more)
					return; /* not garbage: we stopped reading */
				if (c->rcap - c->rlen < 4096) {
					client_kill(c, "request too large");
					return;
				}
			} else {
				size_t ncap = c->rcap ? c->rcap * 2 : 8192;
				if (ncap > RBUF_LIMIT)
					ncap = RBUF_LIMIT;
				uint8_t *n = realloc(c->rbuf, ncap);
				if (!n) {
					client_kill(c, "out of memory");
					return;
				}
				c->rbuf = n;
				c->rcap = ncap;
			}
		}
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n > 0) {
			c->rlen += (size_t)n;
			budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
			process_input(s, c);
			if (c->dead || c->close_after_flush)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		c->dead = true; /* EOF or error: client went away */
		return;
	}
}

static void client_free(struct client *c)
{
	close(c->fd);
	for (size_t i = 0; i < c->nstreams; i++)
		handler_free_filter(c->streams[i].f, c->streams[i].nf);
	free(c->streams);
	free(c->pr);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

static void sweep(struct rpc_server *s)
{
	for (struct client **pp = &s->clients; *pp;) {
		struct client *c = *pp;
		if (c->dead) {
			*pp = c->next;
			s->nclients--;
			s->freed_big += c->rcap + c->wcap;
			client_free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* Register fd (connected, non-blocking; ownership passes to us) as a new
 * client whose peer address is ss.  -1 (fd closed) if it cannot be taken. */
/*
 * Whether a client connecting from `host` may have a slot, closing an idle
 * one if that is what it takes.  Only connections that have not finished
 * their handshake/auth are ever closed for room (oldest first): a
 * connection costs an attacker nothing, so they must not lock out the
 * operator, while an authenticated client is never pushed out.
 */
static bool make_room(struct rpc_server *s, const char *host)
{
	size_t live = 0, from_host = 0;
	struct client *oldest = NULL, *oldest_host = NULL, *idlest = NULL;
	int64_t now = now_ms();
	for (struct client *c = s->clients; c; c = c->next) {
		if (c->dead)
			continue;
		live++;
		if (client_ready(s, c)) {
			/* nothing subscribed, nothing owed: an idle connection */
			if (!c->monitor && !c->nstreams && !c->wlen && !c->rlen &&
			    now - c->last_req >= IDLE_EVICT_MS &&
			    (!idlest || c->last_req < idlest->last_req))
				idlest = c;
			continue;
		}
		bool same = strcmp(c->host, host) == 0;
		if (same)
			from_host++;
		if (!oldest || c->born <= oldest->born)
			oldest = c;
		if (same && (!oldest_host || c->born <= oldest_host->born))
			oldest_host = c;
	}
	if (from_host >= MAX_PREAUTH_PER_SOURCE) {
		client_kill(oldest_host, "closed: too many unauthenticated connections from its address");
		return true;
	}
	if (live < MAX_CLIENTS)
		return true;
	if (oldest)
		client_kill(oldest, "closed to make room: not authenticated");
	else if (idlest)
		client_kill(idlest, "closed to make room: idle");
	else
		return false;
	return true;
}

static int client_add(struct rpc_server *s, int fd, const struct sockaddr_storage *ss)
{
	char host[64] = "unix";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof host);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof host);
	if (!make_room(s, host)) {
		alog_rl(LV_WARN, "agent.ipc: too many clients, rejecting connection");
		close(fd);
		return -1;
	}
	struct client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	c->id = ++s->next_id;
	c->born = c->last_req = now_ms();
	snprintf(c->host, sizeof c->host, "%s", host);
	if (ss->ss_family == AF_INET)
		snprintf(c->name, sizeof c->name, "%s:%d", host,
			 ntohs(((const struct sockaddr_in *)ss)->sin_port));
	else if (ss->ss_family == AF_INET6)
		snprintf(c->name, sizeof c->name, "[%s]:%d", host,
			 ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
	else
		snprintf(c->name, sizeof c->name, "unix");
	c->next = s->clients;
	s->clients = c;
	s->nclients++;
	alog_rl(LV_INFO, "agent.ipc: Accepted client: %s", c->name);
	return 0;
}

static void accept_clients(struct rpc_server *s)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				alog(LV_ERR, "agent.ipc: Failed to accept client: %s", strerror(errno));
			return;
		}
		client_add(s, fd, &ss);
	}
}

/* -------------------------------------------------------------- public */

static int listen_on(const char *addr, char *err, size_t errlen)
{
	char host[256];
	const char *port;
	const char *colon = strrchr(addr, ':');
	if (!colon) {
		snprintf(err, errlen, "address %s: missing port in address", addr);
		return -1;
	}
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host) {
		snprintf(err, errlen, "address %s: host too long", addr);
		return -1;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	port = colon + 1;
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "listen tcp %s: %s", addr, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		snprintf(err, errlen, "listen tcp %s: bind: %s", addr, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct rpc_server *rpc_create(struct agent *a, const char *addr, const char *auth,
			      char *err, size_t errlen)
{
	struct rpc_server *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->a = a;
	s->lfd = listen_on(addr, err, errlen);
	if (s->lfd < 0) {
		free(s);
		return NULL;
	}
	if (auth && *auth)
		s->auth = strdup(auth);
	return s;
}

void rpc_destroy(struct rpc_server *s)
{
	if (!s)
		return;
	while (s->clients) {
		struct client *c = s->clients;
		s->clients = c->next;
		client_free(c);
	}
	close(s->lfd);
	for (size_t i = 0; i < s->nstash; i++)
		free(s->stash[i].payload);
	free(s->stash);
	free(s->oq);
	free(s->joins);
	while (s->keyreqs) {
		struct pending_key *pk = s->keyreqs;
		s->keyreqs = pk->next;
		if (s->a && s->a->v)
			vigil_keys_cancel(s->a->v, pk);
		free(pk);
	}
	free(s->leavers);
	free(s->auth);
	free(s);
}

int rpc_adopt_client(struct rpc_server *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		ss.ss_family = AF_UNSPEC;
	return client_add(s, fd, &ss);
}

int rpc_nfds(struct rpc_server *s)
{
	return 1 + (int)s->nclients;
}

int rpc_pollfds(struct rpc_server *s, struct pollfd *fds, int max)
{
	int n = 0;
	if (n < max)
		fds[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
	for (struct client *c = s->clients; c && n < max; c = c->next) {
		short ev = 0;
		/* a client with unread answers is not read (WBUF_PAUSE) */
		if (!c->close_after_flush && c->wlen <= WBUF_PAUSE && !c->more)
			ev |= POLLIN;
		if (c->wlen)
			ev |= POLLOUT;
		fds[n++] = (struct pollfd){.fd = c->fd, .events = ev};
	}
	return n;
}

void rpc_handle(struct rpc_server *s, const struct pollfd *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (!fds[i].revents)
			continue;
		if (fds[i].fd == s->lfd) {
			accept_clients(s);
			continue;
		}
		for (struct client *c = s->clients; c; c = c->next) {
			if (c->fd != fds[i].fd || c->dead)
				continue;
			if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
				client_read(s, c);
			break;
		}
	}
	check_joins(s);
	/* expire stale state, then push out everything produced this round */
	int64_t now = now_ms();
	for (size_t i = 0; i < s->noq;) {
		if (s->oq[i].deadline <= now) {
			struct client *c = find_client(s, s->oq[i].client_id);
			if (c)
				send_query_record(c, s->oq[i].seq, "done", "", NULL, 0);
			s->oq[i] = s->oq[--s->noq];
		} else {
			i++;
		}
	}
	for (struct client *c = s->clients; c; c = c->next) {
		for (size_t i = 0; i < c->npr;) {
			if (c->pr[i].expires <= now)
				c->pr[i] = c->pr[--c->npr];
			else
				i++;
		}
		if (!c->dead && !client_ready(s, c) && now - c->born >= PREAUTH_TIMEOUT_MS)
			client_kill(c, "closed: no handshake/auth within the time allowed");
		if (c->overflow)
			client_kill(c, "output buffer overflow");
		if (!c->dead)
			try_flush(c);
		/* requests held back by WBUF_PAUSE or REQ_BUDGET: go on with
		 * them now that there is room, without waiting for more input */
		if (!c->dead && c->rlen && c->wlen <= WBUF_PAUSE)
			process_input(s, c); /* its answers go out next round */
		if (!c->dead)
			shrink_buffers(s, c);
	}
	sweep(s);
	if (s->freed_big >= TRIM_AFTER) {
		/* glibc keeps freed memory in its arenas; hand it back */
		malloc_trim(0);
		s->freed_big = 0;
	}
	alog_rl_flush();
}

int rpc_timeout_ms(struct rpc_server *s)
{
	int64_t now = now_ms(), best = -1;
	for (size_t i = 0; i < s->noq; i++) {
		int64_t d = s->oq[i].deadline - now;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	if (s->njoins && (best < 0 || best > 50))
		best = 50; /* join progress is polled */
	for (struct client *c = s->clients; c; c = c->next) {
		int64_t d = -1;
		if (c->dead)
			continue;
		if (c->more)
			d = 0; /* requests held back by REQ_BUDGET */
		else if (!client_ready(s, c))
			d = c->born + PREAUTH_TIMEOUT_MS - now;
		if (d < 0 && d != -1)
			d = 0;
		if (d >= 0 && (best < 0 || d < best))
			best = d;
	}
	return best > 1000000 ? 1000000 : (int)best;
}

static void send_member_event(struct client *c, uint64_t seq, const struct vigil_event *ev,
			      const struct vigil_member *members, size_t n)
{
	if (!n && ev->member) {
		members = ev->member;
		n = 1;
	}
	msgpack_packer pk;
	client_packer(c, &pk);
	pack_header(&pk, seq, "");
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "Event", agent_event_name(ev->type));
	mp_pack_cstr(&pk, "Members");
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++)
		pack_member(&pk, &members[i]);
}

static void send_event(struct rpc_server *s, struct client *c, uint64_t seq,
		       const struct vigil_event *ev, const struct vigil_member *members,
		       size_t nmembers)
{
	(void)s;
	if (c->wlen > WBUF_STREAM_LIMIT) {
		alog(LV_WARN, "agent.ipc: Dropping event to %s", c->name);
		return;
	}
	msgpack_packer pk;
	switch (ev->type) {
	case VIGIL_EV_MEMBER_JOIN:
	case VIGIL_EV_MEMBER_LEAVE:
	case VIGIL_EV_MEMBER_FAILED:
	case VIGIL_EV_MEMBER_UPDATE:
	case VIGIL_EV_MEMBER_REAP:
		send_member_event(c, seq, ev, members, nmembers);
		return;
	case VIGIL_EV_USER:
		client_packer(c, &pk);
		pack_header(&pk, seq, "");
		msgpack_pack_map(&pk, 5);
		mp_pack_kstr(&pk, "Event", "user");
		mp_pack_kuint(&pk, "LTime", ev->ltime);
		mp_pack_kstr(&pk, "Name", ev->name ? ev->name : "");
		mp_pack_cstr(&pk, "Payload");
		mp_pack_binn(&pk, ev->payload, ev->payload_len);
		mp_pack_kbool(&pk, "Coalesce", ev->coalesce);
		return;
	case VIGIL_EV_QUERY: {
		/* remember it so this client may "respond" to it */
		struct pending_respond *n = realloc(c->pr, (c->npr + 1) * sizeof *n);
		uint64_t qid = ++c->last_qid;
		if (n) {
			c->pr = n;
			c->pr[c->npr++] = (struct pending_respond){ev->id, qid,
								   now_ms() + RESPOND_WINDOW_MS};
		}
		client_packer(c, &pk);
		pack_header(&pk, seq, "");
		msgpack_pack_map(&pk, 5);
		mp_pack_kstr(&pk, "Event", "query");
		mp_pack_kuint(&pk, "ID", qid);
		mp_pack_kuint(&pk, "LTime", ev->ltime);
		mp_pack_kstr(&pk, "Name", ev->name ? ev->name : "");
		mp_pack_cstr(&pk, "Payload");
		mp_pack_binn(&pk, ev->payload, ev->payload_len);
		return;
	}
	default:
		/* vigil's own events: only to streams that asked for them */
		client_packer(c, &pk);
		pack_header(&pk, seq, "");
		msgpack_pack_map(&pk, 7);
		mp_pack_kstr(&pk, "Event", agent_event_name(ev->type));
		mp_pack_kstr(&pk, "Member", ev->member ? ev->member->name : "");
		mp_pack_kuint(&pk, "Incarnation", ev->incarnation);
		mp_pack_kuint(&pk, "Seq", ev->will_seq);
		mp_pack_cstr(&pk, "DurationMs");
		msgpack_pack_int64(&pk, ev->duration_ms);
		mp_pack_kstr(&pk, "Name", ev->name ? ev->name : "");
		mp_pack_cstr(&pk, "Payload");
		mp_pack_binn(&pk, ev->payload, ev->payload_len);
		return;
	}
}

void rpc_on_event(struct rpc_server *s, const struct vigil_event *ev,
		  const struct vigil_member *members, size_t nmembers)
{
	if (ev->type == VIGIL_EV_QUERY_ACK || ev->type == VIGIL_EV_QUERY_RESPONSE ||
	    ev->type == VIGIL_EV_QUERY_DONE) {
		const char *from = ev->member ? ev->member->name : "";
		if (s->in_query) {
			struct stashed *n = realloc(s->stash, (s->nstash + 1) * sizeof *n);
			if (!n)
				return;
			s->stash = n;
			struct stashed *st = &s->stash[s->nstash++];
			memset(st, 0, sizeof *st);
			st->type = ev->type;
			st->id = ev->id;
			snprintf(st->from, sizeof st->from, "%s", from);
			if (ev->payload_len) {
				st->payload = malloc(ev->payload_len);
				if (st->payload) {
					memcpy(st->payload, ev->payload, ev->payload_len);
					st->len = ev->payload_len;
				}
			}
			return;
		}
		outq_event(s, ev->type, ev->id, from, ev->payload, ev->payload_len);
		return;
	}
	for (struct client *c = s->clients; c; c = c->next) {
		if (c->dead)
			continue;
		for (size_t i = 0; i < c->nstreams; i++) {
			const struct stream *st = &c->streams[i];
			if (handler_filter_match(st->f, st->nf, ev, false))
				send_event(s, c, st->seq, ev, members, nmembers);
		}
	}
}

void rpc_on_log(struct rpc_server *s, int lv, const char *line)
{
	for (struct client *c = s->clients; c; c = c->next)
		if (!c->dead && c->monitor && lv >= c->mon_level)
			send_log(c, line);
}

void rpc_leave_done(struct rpc_server *s, const char *err)
{
	for (size_t i = 0; i < s->nleavers; i++) {
		struct client *c = find_client(s, s->leavers[i].client_id);
		if (c)
			reply(c, s->leavers[i].seq, err ? err : "");
	}
	s->nleavers = 0;
}

void rpc_flush(struct rpc_server *s, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd fds[MAX_CLIENTS];
		int n = 0;
		for (struct client *c = s->clients; c && n < MAX_CLIENTS; c = c->next) {
			if (!c->dead)
				try_flush(c);
			if (!c->dead && c->wlen)
				fds[n++] = (struct pollfd){.fd = c->fd, .events = POLLOUT};
		}
		int64_t left = end - now_ms();
		if (n == 0 || left <= 0)
			return;
		poll(fds, (nfds_t)n, (int)left);
	}
}
