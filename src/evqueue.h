/*
 * evqueue.h — events held back until the embedder can take them.
 *
 * vigil_create announces the local member to the serf and will layers, may
 * load a will state and restart re-joins; all of that raises events.  The
 * caller has no handle yet at that point (and may not expect re-entry), so
 * the events are deep-copied here and delivered, in order, by the first
 * vigil_step().  Everything an event points to is owned by the queue.
 */
#ifndef VIGIL_EVQUEUE_H
#define VIGIL_EVQUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil.h"

struct evqueue_item;

struct evqueue {
	struct evqueue_item *head, *tail;
	size_t n;
	bool overflow;     /* an event could not be copied (out of memory) */
};

/* Copy ev (member, tags, name, payload); false when out of memory. */
bool evqueue_push(struct evqueue *q, const struct vigil_event *ev);
/* Deliver and free every queued event, oldest first. */
void evqueue_drain(struct evqueue *q, vigil_event_fn fn, void *ctx);
void evqueue_free(struct evqueue *q);

#endif
