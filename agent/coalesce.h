/*
 * coalesce.h — serf agent's event coalescing, so handlers and RPC streams
 * see events exactly as a `serf agent` delivers them.
 *
 * The serf agent sets CoalescePeriod=3s / QuiescentPeriod=1s for member
 * events and the same for user events (cmd/serf/command/agent/command.go),
 * which the serf library implements in coalesce*.go:
 *
 *   member events  are batched: within a window only the latest event per
 *                  member counts, members are grouped per event type (one
 *                  handler run gets several lines on stdin), and an event
 *                  equal to the last one delivered for that member (other
 *                  than member-update) is dropped.
 *   user events    with Coalesce=true: per event name only those with the
 *                  newest Lamport time in the window are delivered.
 *
 * A window closes after 1 s without a new event, or 3 s after it opened.
 * Everything else (queries, vigil's own events, non-coalescing user
 * events) passes straight through.
 */
#ifndef VIGIL_AGENT_COALESCE_H
#define VIGIL_AGENT_COALESCE_H

#include <stdbool.h>
#include <stdint.h>

#include "vigil.h"

#define COALESCE_PERIOD_MS 3000
#define QUIESCENT_PERIOD_MS 1000

/* Receives every event leaving the coalescer.  For member events `ev` has
 * member == NULL and the batch is members[0..n). */
typedef void (*coalesce_emit_fn)(void *ctx, const struct vigil_event *ev,
				 const struct vigil_member *members, size_t n);

struct coalescer;

struct coalescer *coalescer_create(coalesce_emit_fn emit, void *ctx, int coalesce_ms,
				   int quiescent_ms);
void coalescer_destroy(struct coalescer *c);
/* Feed an event from the library (emits at once if it is not coalesced). */
void coalescer_offer(struct coalescer *c, const struct vigil_event *ev, int64_t now);
/* Milliseconds until a window closes; -1 if none is open. */
int coalescer_timeout_ms(struct coalescer *c, int64_t now);
/* Flush the windows that are due (or all, with force). */
void coalescer_tick(struct coalescer *c, int64_t now, bool force);

/* Deep copies of library members (tags included). */
bool member_copy(struct vigil_member *dst, const struct vigil_member *src);
void member_clear(struct vigil_member *m);

#endif
