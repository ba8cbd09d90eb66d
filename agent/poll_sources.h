/*
 * poll_sources.h — the agent's poll loop as a registry of sources.
 *
 * Each source (the library's sockets, the RPC server, the metrics server,
 * event handler pipes, the signal pipe, timers) says how many pollfds it
 * may need, fills them, tells how long it can wait, and handles the slice
 * it filled once poll returned.  The registry lays the slices out one after
 * the other in one pollfd array, so no caller computes offsets, and runs
 * the handlers in registration order every round, with input or not.
 */
#ifndef VIGIL_AGENT_POLL_SOURCES_H
#define VIGIL_AGENT_POLL_SOURCES_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

struct poll_source {
	const char *name;
	void *ctx; /* passed to every callback */
	/* At most how many pollfds fill() writes now; NULL: none. */
	int (*nfds)(void *ctx);
	/* Write up to max pollfds, return how many; NULL when nfds is. */
	int (*fill)(void *ctx, struct pollfd *fds, int max);
	/* Milliseconds until the source must run without input; -1 = no
	 * deadline; NULL: never. */
	int (*timeout_ms)(void *ctx);
	/* After poll: exactly the slice fill() wrote, with revents (n may be
	 * 0); called every round.  NULL: nothing to do. */
	void (*handle)(void *ctx, const struct pollfd *fds, int n);
};

#define POLL_SOURCES_MAX 8

struct poll_sources {
	struct poll_source src[POLL_SOURCES_MAX];
	int off[POLL_SOURCES_MAX], len[POLL_SOURCES_MAX]; /* each one's slice */
	size_t n;
	struct pollfd *fds;
	size_t cap;
	int nfds;         /* filled this round */
	const bool *stop; /* set by a handler: the round's other handlers are skipped */
};

/* stop may be NULL (every handler always runs). */
void poll_sources_init(struct poll_sources *ps, const bool *stop);
void poll_sources_free(struct poll_sources *ps);
/* -1 when POLL_SOURCES_MAX are registered already. */
int poll_sources_add(struct poll_sources *ps, const struct poll_source *src);
/* Fill the pollfd array from every source; -1 if it cannot grow (ENOMEM). */
int poll_sources_fill(struct poll_sources *ps);
/* The shortest wait any source asks for, at most max_ms. */
int poll_sources_timeout(const struct poll_sources *ps, int max_ms);
/* poll(2) on what poll_sources_fill() laid out. */
int poll_sources_wait(struct poll_sources *ps, int timeout_ms);
/* Run every source's handler on its slice, in registration order. */
void poll_sources_dispatch(struct poll_sources *ps);

#endif
