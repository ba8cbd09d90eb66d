/*
 * handlers.h — serf-style event handler scripts (-event-handler) and the
 * event filters they share with RPC "stream" requests.
 *
 * Filters: "" or "*" (every serf event), member-join, member-leave,
 * member-failed, member-update, member-reap, user, user:NAME, query,
 * query:NAME, and vigil's own member-will, will-revoked, member-returned,
 * will-undeliverable, local-stall.  Comma lists allowed.  vigil's own
 * events are only delivered to filters that name them: "*" keeps meaning
 * exactly serf's event set, so existing serf scripts see nothing new.
 */
#ifndef VIGIL_AGENT_HANDLERS_H
#define VIGIL_AGENT_HANDLERS_H

#include <msgpack.h>
#include <poll.h>
#include <stdbool.h>

#include "agent_state.h"

struct handler_filter {
	char event[32]; /* "*", "user", "member-join", ... */
	char *name;     /* user:/query: name, NULL = any */
};

/* 0 ok; -1 if an event type is not valid (serf: "Invalid event filter"). */
int handler_parse_filter(const char *v, struct handler_filter **out, size_t *n);
void handler_free_filter(struct handler_filter *f, size_t n);
bool handler_filter_match(const struct handler_filter *f, size_t n,
			  const struct vigil_event *ev, bool star_includes_vigil);

/* specs: "[filter=]script" strings.  On invalid spec: NULL + serf's
 * message ("Invalid event script: Event 'x' invoking 'y'"). */
struct handlers *handlers_create(struct agent *a, const struct strlist *specs,
				 char *err, size_t errlen);
void handlers_destroy(struct handlers *h);
/* Replace the scripts (SIGHUP reload); running ones finish. */
int handlers_update(struct handlers *h, const struct strlist *specs, char *err, size_t errlen);

/* members[0..n): the batch of a (coalesced) member event; else n == 0. */
void handlers_on_event(struct handlers *h, const struct vigil_event *ev,
		       const struct vigil_member *members, size_t n);
/* Poll source callbacks (poll_sources.h), given the struct handlers *. */
int handlers_nfds(void *handlers);
int handlers_pollfds(void *handlers, struct pollfd *fds, int max);
void handlers_handle(void *handlers, const struct pollfd *fds, int n);
int handlers_timeout_ms(void *handlers);
/* Reap exited children (call after SIGCHLD, or any time). */
void handlers_reap(struct handlers *h);
/* Kill running scripts (shutdown). */
void handlers_kill_all(struct handlers *h);
bool handlers_busy(struct handlers *h);
/* "event_handlers" map of `serf info`: "event:name" → script */
void handlers_pack_stats(struct handlers *h, msgpack_packer *pk);

#endif
