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
 *
 * This file is the connection server: accept, handshake and auth, framing,
 * backpressure and the command table; the commands themselves are in
 * rpc_members.c, rpc_events.c and rpc_keys.c (rpc_internal.h).
 */
#include "rpc_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "mp.h"

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

void rpc_reply_body(struct client *c, msgpack_packer *pk, uint64_t seq, const char *err)
{
	msgpack_packer_init(pk, c, wbuf_write);
	msgpack_pack_map(pk, 2);
	mp_pack_kuint(pk, "Seq", seq);
	mp_pack_kstr(pk, "Error", err ? err : "");
}

/* Header-only response. */
void rpc_reply(struct client *c, uint64_t seq, const char *err)
{
	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, err);
}

struct client *rpc_find_client(struct rpc_server *s, uint64_t id)
{
	for (struct client *c = s->clients; c; c = c->next)
		if (c->id == id && !c->dead)
			return c;
	return NULL;
}

void rpc_client_kill(struct client *c, const char *why)
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

/* ------------------------------------------------------------ commands */

static void rpc_cmd_handshake(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)s, (void)cmd;
	int64_t ver = 0;
	mp_get_int(b, "Version", &ver);
	if (ver < 1 || ver > 1)
		rpc_reply(c, seq, E_UNSUPPORTED_VER);
	else if (c->version != 0)
		rpc_reply(c, seq, E_DUP_HANDSHAKE);
	else {
		c->version = (int)ver;
		rpc_reply(c, seq, "");
	}
}

static void rpc_cmd_auth(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	const char *p = "";
	size_t n = 0;
	mp_as_bytes(mp_get(b, "AuthKey"), &p, &n);
	const char *want = s->auth ? s->auth : "";
	if (strlen(want) == n && memcmp(want, p, n) == 0) {
		c->authed = true;
		rpc_reply(c, seq, "");
	} else {
		alog_rl(LV_WARN, "agent.ipc: %s: invalid authentication token", c->name);
		rpc_reply(c, seq, E_INVALID_AUTH);
	}
}

/* serf's commands (ipc.go); has_body: a body map follows the header. */
static const struct rpc_command {
	const char *name;
	bool has_body;
	rpc_command_fn *run;
} commands[] = {
	{"handshake", true, rpc_cmd_handshake},
	{"auth", true, rpc_cmd_auth},
	{"event", true, rpc_cmd_event},
	{"force-leave", true, rpc_cmd_force_leave},
	{"join", true, rpc_cmd_join},
	{"members", false, rpc_cmd_members},
	{"members-filtered", true, rpc_cmd_members},
	{"stream", true, rpc_cmd_stream},
	{"monitor", true, rpc_cmd_monitor},
	{"stop", true, rpc_cmd_stop},
	{"leave", false, rpc_cmd_leave},
	{"install-key", true, rpc_cmd_key},
	{"use-key", true, rpc_cmd_key},
	{"remove-key", true, rpc_cmd_key},
	{"list-keys", false, rpc_cmd_key},
	{"tags", true, rpc_cmd_tags},
	{"query", true, rpc_cmd_query},
	{"respond", true, rpc_cmd_respond},
	{"stats", false, rpc_cmd_stats},
	{"get-coordinate", true, rpc_cmd_get_coordinate},
	{"will-set", true, rpc_cmd_will_set},
	{"will-clear", false, rpc_cmd_will_clear},
	{"will-list", true, rpc_cmd_will_list},
};

static const struct rpc_command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

static void dispatch(struct rpc_server *s, struct client *c, const struct rpc_command *cmd,
		     uint64_t seq, const msgpack_object *body)
{
	if (s->auth && *s->auth && !c->authed && cmd->run != rpc_cmd_auth &&
	    cmd->run != rpc_cmd_handshake) {
		alog_rl(LV_WARN, "agent.ipc: Client sending commands before auth");
		rpc_reply(c, seq, E_AUTH_REQUIRED);
		/* a real client sends one (the serf CLI without -rpc-auth) */
		if (++c->preauth_refused >= MAX_PREAUTH_REQUESTS)
			c->close_after_flush = true;
		return;
	}
	cmd->run(s, c, seq, body, cmd->name);
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
			rpc_client_kill(c, "failed to decode request: malformed or oversized msgpack");
			return;
		}
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (!mp_decode(&u, c->rbuf, fl)) {
			msgpack_unpacked_destroy(&u);
			rpc_client_kill(c, "failed to decode request");
			return;
		}
		const msgpack_object *o = &u.data;
		const struct rpc_command *command = NULL;
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
				rpc_client_kill(c, "failed to decode request header");
				return;
			}
			if (strcmp(cmd, "handshake") != 0 && c->version == 0) {
				rpc_reply(c, seq, E_HANDSHAKE_REQ);
				c->close_after_flush = true;
			} else if (!(command = find_command(cmd))) {
				alog_rl(LV_ERR, "agent.ipc: Failed to evaluate request: command '%s' not recognized",
					cmd);
				rpc_reply(c, seq, E_UNSUPPORTED_CMD);
				c->close_after_flush = true;
			} else if (command->has_body) {
				c->have_hdr = true;
				snprintf(c->cmd, sizeof c->cmd, "%s", cmd);
				c->seq = seq;
			} else {
				dispatch(s, c, command, seq, NULL);
			}
		} else {
			c->have_hdr = false;
			if (o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_NIL) {
				msgpack_unpacked_destroy(&u);
				rpc_client_kill(c, "failed to decode request body");
				return;
			}
			command = find_command(c->cmd);
			if (command)
				dispatch(s, c, command, c->seq, o);
		}
		msgpack_unpacked_destroy(&u);
		memmove(c->rbuf, c->rbuf + fl, c->rlen - fl);
		c->rlen -= fl;
		if (c->overflow)
			rpc_client_kill(c, "response too large");
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
					rpc_client_kill(c, "request too large");
					return;
				}
			} else {
				size_t ncap = c->rcap ? c->rcap * 2 : 8192;
				if (ncap > RBUF_LIMIT)
					ncap = RBUF_LIMIT;
				uint8_t *n = realloc(c->rbuf, ncap);
				if (!n) {
					rpc_client_kill(c, "out of memory");
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

/*
 * Which of two unauthenticated clients goes first when room is needed: one
 * that has not even sent its handshake before one that has (an operator's
 * CLI handshakes at once; a connection held open to fill the table never
 * does, and is reopened as soon as it is closed, so "oldest first" alone
 * came round to the operator's connection before it could authenticate),
 * then the older.
 */
static bool evict_before(const struct client *a, const struct client *b)
{
	bool a_silent = a->version == 0 && a->rlen == 0, b_silent = b->version == 0 && b->rlen == 0;
	if (a_silent != b_silent)
		return a_silent;
	return a->born <= b->born;
}

/*
 * Whether a client connecting from `host` may have a slot, closing an idle
 * one if that is what it takes.  Only connections that have not finished
 * their handshake/auth are ever closed for room (evict_before): a
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
		if (!oldest || evict_before(c, oldest))
			oldest = c;
		if (same && (!oldest_host || evict_before(c, oldest_host)))
			oldest_host = c;
	}
	if (from_host >= MAX_PREAUTH_PER_SOURCE) {
		rpc_client_kill(oldest_host, "closed: too many unauthenticated connections from its address");
		return true;
	}
	if (live < MAX_CLIENTS)
		return true;
	if (oldest)
		rpc_client_kill(oldest, "closed to make room: not authenticated");
	else if (idlest)
		rpc_client_kill(idlest, "closed to make room: idle");
	else
		return false;
	return true;
}

/* Register fd (connected, non-blocking; ownership passes to us) as a new
 * client whose peer address is ss.  -1 (fd closed) if it cannot be taken. */
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

int rpc_nfds(void *server)
{
	struct rpc_server *s = server;
	return 1 + (int)s->nclients;
}

int rpc_pollfds(void *server, struct pollfd *fds, int max)
{
	struct rpc_server *s = server;
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

void rpc_handle(void *server, const struct pollfd *fds, int n)
{
	struct rpc_server *s = server;
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
	rpc_check_joins(s);
	/* expire stale state, then push out everything produced this round */
	int64_t now = now_ms();
	for (size_t i = 0; i < s->noq;) {
		if (s->oq[i].deadline <= now) {
			struct client *c = rpc_find_client(s, s->oq[i].client_id);
			if (c)
				rpc_send_query_record(c, s->oq[i].seq, "done", "", NULL, 0);
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
			rpc_client_kill(c, "closed: no handshake/auth within the time allowed");
		if (c->overflow)
			rpc_client_kill(c, "output buffer overflow");
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

int rpc_timeout_ms(void *server)
{
	struct rpc_server *s = server;
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
