/*
 * rpc.h — serf's agent RPC ("IPC") protocol, server side.
 *
 * Protocol (cmd/serf/command/agent/ipc.go): msgpack objects on a TCP stream.
 * Each request is a header map {Command, Seq} optionally followed by a body
 * map; each response is a header {Seq, Error} optionally followed by a body.
 * Streams (stream, monitor, query) keep sending header+record pairs under
 * the request's Seq.
 */
#ifndef VIGIL_AGENT_RPC_H
#define VIGIL_AGENT_RPC_H

#include <poll.h>
#include <stddef.h>

#include "agent_state.h"

struct rpc_server *rpc_create(struct agent *a, const char *addr, const char *auth,
			      char *err, size_t errlen);
void rpc_destroy(struct rpc_server *s);

/* Serve an already connected, non-blocking stream socket as one more client,
 * exactly as if it had been accepted on the listener (the fuzz harness
 * fuzz/fuzz_rpc_dispatch.c feeds requests through a socketpair this way).
 * Takes ownership of fd: it is closed when the client goes away, or at once
 * when it cannot be taken (too many clients, out of memory: then -1). */
int rpc_adopt_client(struct rpc_server *s, int fd);

/* Poll source callbacks (poll_sources.h), given the struct rpc_server *. */
/* Number of pollfds rpc_pollfds() may fill. */
int rpc_nfds(void *server);
int rpc_pollfds(void *server, struct pollfd *fds, int max);
/* fds/n: exactly the slice rpc_pollfds filled (with revents). */
void rpc_handle(void *server, const struct pollfd *fds, int n);
int rpc_timeout_ms(void *server);

/* members[0..n): the batch of a (coalesced) member event; else n == 0. */
void rpc_on_event(struct rpc_server *s, const struct vigil_event *ev,
		  const struct vigil_member *members, size_t n);
void rpc_on_log(struct rpc_server *s, int lv, const char *line);
/* Answer every pending "leave" request. */
void rpc_leave_done(struct rpc_server *s, const char *err);
/* Best-effort: write out what is buffered (shutdown), up to timeout_ms. */
void rpc_flush(struct rpc_server *s, int timeout_ms);

#endif
