/*
 * metrics.h — Prometheus metrics endpoint of `vigil agent -metrics-addr`.
 *
 * A small non-blocking HTTP/1.0 and 1.1 server run from the agent's poll
 * loop: GET (or HEAD) /metrics answers the text exposition format 0.0.4,
 * built from vigil_stats() and vigil_members() at request time.  Other
 * paths get 404, other methods on /metrics 405, malformed or oversized
 * requests 400 and the connection is closed.  Keep-alive is honoured.
 * Every phase of a connection (receiving a request, sending the answer)
 * has a fixed time budget, so a slow or silent client cannot hold a slot.
 * The metric names are listed in agent/README.md ("Metrics").
 */
#ifndef VIGIL_AGENT_METRICS_H
#define VIGIL_AGENT_METRICS_H

#include <poll.h>
#include <stddef.h>

#include "agent_state.h"

struct metrics_server;

/* Listen on "host:port" ("[v6]:port", ":port" = every address). */
struct metrics_server *metrics_create(struct agent *a, const char *addr, char *err,
				      size_t errlen);
void metrics_destroy(struct metrics_server *m);

/* Poll source callbacks (poll_sources.h), given the struct metrics_server *. */
/* Number of pollfds metrics_pollfds() may fill. */
int metrics_nfds(void *server);
int metrics_pollfds(void *server, struct pollfd *fds, int max);
/* fds/n: exactly the slice metrics_pollfds filled (with revents). */
void metrics_handle(void *server, const struct pollfd *fds, int n);
/* Milliseconds until the next connection deadline; -1 = none. */
int metrics_timeout_ms(void *server);

/* The exposition text, as GET /metrics returns it (malloc'd; NULL on OOM). */
char *metrics_render(struct agent *a, size_t *len);

#endif
