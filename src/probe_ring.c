/* probe_ring.c — see probe_ring.h. */
#include "probe_ring.h"

#include <stdlib.h>
#include <string.h>

#include "members.h"
#include "swim_internal.h"

/* Periods between rebuilds per member: a rebuild each period up to 64
 * members, one per 16 periods at 1,000, one per 156 at 10,000. */
#define RING_MEMBERS_PER_PERIOD 64

struct keyed {
	uint64_t key;
	const char *name;
	uint32_t id;
};

/*
 * The ring's order: the name's hash (the same function everywhere, no
 * per-process seed), so that every member sorts alike; two names with one
 * hash (about once in 2^64 pairs) by name, so that the order still does
 * not depend on who sorts.
 */
static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool ring_build(struct swim *sw, struct probe_ring *r)
{
	struct keyed *tmp = malloc((sw->n_alive ? sw->n_alive : 1) * sizeof *tmp);
	if (!tmp)
		return false;
	size_t n = 0;
	for (size_t i = 0; i < sw->n_members && n < sw->n_alive; i++) {
		struct member *m = member_at(sw, i);
		if (!is_gone(m)) {
			const char *name = member_name(m);
			tmp[n++] = (struct keyed){ hash_name(name), name, sw->members[i] };
		}
	}
	qsort(tmp, n, sizeof *tmp, keyed_cmp);
	if (!reserve(&r->ids, &r->cap, n ? n : 1, sizeof *r->ids)) {
		free(tmp);
		return false;
	}
	bool self_found = false;
	for (size_t i = 0; i < n; i++) {
		r->ids[i] = tmp[i].id;
		if (member_of(sw, tmp[i].id) == sw->self) {
			self_found = true;
			r->self_pos = i;
		}
	}
	free(tmp);
	r->n = self_found ? n : 0; /* we are live while we probe; if not, no ring */
	return true;
}

struct member *probe_ring_target(struct swim *sw, int64_t now, int64_t shared_ms)
{
	struct probe_ring *r = &sw->ring;
	int64_t interval = sw->cfg.probe_interval_ms > 0 ? sw->cfg.probe_interval_ms : 1;
	if (r->dirty || !r->built) {
		int64_t gap = interval * (int64_t)(sw->n_alive / RING_MEMBERS_PER_PERIOD);
		if (!r->built || now - r->built_at >= gap) {
			if (!ring_build(sw, r))
				return NULL;
			r->built = true;
			r->dirty = false;
			r->built_at = now;
		}
	}
	if (r->n < 2 || shared_ms < 0)
		return NULL;
	uint64_t period = (uint64_t)shared_ms / (uint64_t)interval;
	size_t shift = 1 + (size_t)(period % (r->n - 1));
	struct member *m = member_of(sw, r->ids[(r->self_pos + shift) % r->n]);
	return is_live_peer(sw, m) ? m : NULL;
}

void probe_ring_free(struct probe_ring *r)
{
	free(r->ids);
	memset(r, 0, sizeof *r);
}
