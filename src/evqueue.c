/*
 * evqueue.c — deep-copied events delivered later (evqueue.h).
 */
#include "evqueue.h"

#include <stdlib.h>
#include <string.h>

struct evqueue_item {
	struct evqueue_item *next;
	struct vigil_event ev;      /* pointers below point into this item */
	struct vigil_member member;
	char *name;
	uint8_t *payload;
};

static void item_free(struct evqueue_item *it)
{
	for (size_t i = 0; i < it->member.n_tags; i++) {
		free(it->member.tags[i].key);
		free(it->member.tags[i].value);
	}
	free(it->member.tags);
	free(it->name);
	free(it->payload);
	free(it);
}

static bool copy_member(struct vigil_member *dst, const struct vigil_member *src)
{
	*dst = *src;
	dst->tags = NULL;
	dst->n_tags = 0;
	if (!src->n_tags)
		return true;
	if (!(dst->tags = calloc(src->n_tags, sizeof *dst->tags)))
		return false;
	for (size_t i = 0; i < src->n_tags; i++) {
		dst->n_tags = i + 1;   /* so item_free frees what was copied */
		dst->tags[i].key = strdup(src->tags[i].key ? src->tags[i].key : "");
		dst->tags[i].value = strdup(src->tags[i].value ? src->tags[i].value : "");
		if (!dst->tags[i].key || !dst->tags[i].value)
			return false;
	}
	return true;
}

bool evqueue_push(struct evqueue *q, const struct vigil_event *ev)
{
	struct evqueue_item *it = calloc(1, sizeof *it);
	if (!it)
		goto oom;
	it->ev = *ev;
	if (ev->member) {
		if (!copy_member(&it->member, ev->member))
			goto oom;
		it->ev.member = &it->member;
	}
	if (ev->name && !(it->name = strdup(ev->name)))
		goto oom;
	it->ev.name = it->name;
	if (ev->payload_len) {
		if (!(it->payload = malloc(ev->payload_len)))
			goto oom;
		memcpy(it->payload, ev->payload, ev->payload_len);
	}
	it->ev.payload = it->payload;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n++;
	return true;
oom:
	if (it)
		item_free(it);
	q->overflow = true;
	return false;
}

void evqueue_drain(struct evqueue *q, vigil_event_fn fn, void *ctx)
{
	/* Detach first: a callback may raise (and so queue) new events. */
	struct evqueue_item *it = q->head;
	q->head = q->tail = NULL;
	q->n = 0;
	while (it) {
		struct evqueue_item *next = it->next;
		if (fn)
			fn(ctx, &it->ev);
		item_free(it);
		it = next;
	}
}

void evqueue_free(struct evqueue *q)
{
	evqueue_drain(q, NULL, NULL);
}
