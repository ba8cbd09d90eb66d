/* coalesce.c — see coalesce.h (a port of serf's coalesce_member.go and
 * coalesce_user.go semantics onto the agent's poll loop). */
#include "coalesce.h"

#include "grow.h"
#include "sorted.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending_member {
	char name[VIGIL_NAME_MAX + 1];
	enum vigil_event_type type;
	struct vigil_member m;
};

struct last_member {
	char name[VIGIL_NAME_MAX + 1];
	enum vigil_event_type type;
};

struct pending_user {
	char *name;
	uint8_t *payload;
	size_t len;
	uint64_t ltime;
};

struct window {
	bool open;
	int64_t quantum_end, quiescent_end;
};

struct coalescer {
	coalesce_emit_fn emit;
	void *ctx;
	int coalesce_ms, quiescent_ms;

	struct window mw, uw;
	/* both sorted by name: a join storm brings an event for each of
	 * ~1,000 members into one window, and linear searches made that a
	 * million string compares per window */
	struct pending_member *pm; /* latest event per member in the window */
	size_t npm, cap_pm;
	struct last_member *lm;    /* last type delivered per member (forever) */
	size_t nlm, cap_lm;
	struct pending_user *pu;   /* newest-LTime user events in the window */
	size_t npu;
};

bool member_copy(struct vigil_member *dst, const struct vigil_member *src)
{
	*dst = *src;
	dst->tags = NULL;
	dst->n_tags = 0;
	if (!src->n_tags)
		return true;
	dst->tags = calloc(src->n_tags, sizeof *dst->tags);
	if (!dst->tags)
		return false;
	for (size_t i = 0; i < src->n_tags; i++) {
		dst->tags[i].key = strdup(src->tags[i].key ? src->tags[i].key : "");
		dst->tags[i].value = strdup(src->tags[i].value ? src->tags[i].value : "");
		dst->n_tags++;
		if (!dst->tags[i].key || !dst->tags[i].value) {
			member_clear(dst);
			return false;
		}
	}
	return true;
}

void member_clear(struct vigil_member *m)
{
	for (size_t i = 0; i < m->n_tags; i++) {
		free(m->tags[i].key);
		free(m->tags[i].value);
	}
	free(m->tags);
	m->tags = NULL;
	m->n_tags = 0;
}

struct coalescer *coalescer_create(coalesce_emit_fn emit, void *ctx, int coalesce_ms,
				   int quiescent_ms)
{
	struct coalescer *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->emit = emit;
	c->ctx = ctx;
	c->coalesce_ms = coalesce_ms;
	c->quiescent_ms = quiescent_ms;
	return c;
}

static void clear_users(struct coalescer *c)
{
	for (size_t i = 0; i < c->npu; i++) {
		free(c->pu[i].name);
		free(c->pu[i].payload);
	}
	free(c->pu);
	c->pu = NULL;
	c->npu = 0;
}

void coalescer_destroy(struct coalescer *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->npm; i++)
		member_clear(&c->pm[i].m);
	free(c->pm);
	free(c->lm);
	clear_users(c);
	free(c);
}

static bool is_member_event(enum vigil_event_type t)
{
	return t == VIGIL_EV_MEMBER_JOIN || t == VIGIL_EV_MEMBER_LEAVE ||
	       t == VIGIL_EV_MEMBER_FAILED || t == VIGIL_EV_MEMBER_UPDATE ||
	       t == VIGIL_EV_MEMBER_REAP;
}

static void touch(struct window *w, int64_t now, int coalesce_ms, int quiescent_ms)
{
	if (!w->open) {
		w->open = true;
		w->quantum_end = now + coalesce_ms;
	}
	w->quiescent_end = now + quiescent_ms;
}

static const char *pending_name_at(const void *table, size_t i)
{
	const struct coalescer *c = table;
	return c->pm[i].name;
}

static const char *last_name_at(const void *table, size_t i)
{
	const struct coalescer *c = table;
	return c->lm[i].name;
}

static void offer_member(struct coalescer *c, const struct vigil_event *ev, int64_t now)
{
	const struct vigil_member *m = ev->member;
	bool found;
	size_t at = sorted_name_pos(c, c->npm, pending_name_at, m->name, &found);
	if (found) {
		struct vigil_member copy;
		if (!member_copy(&copy, m))
			return;
		member_clear(&c->pm[at].m);
		c->pm[at].m = copy;
		c->pm[at].type = ev->type;
		touch(&c->mw, now, c->coalesce_ms, c->quiescent_ms);
		return;
	}
	struct pending_member *n = array_grow(c->pm, &c->cap_pm, c->npm + 1, sizeof *n, 16);
	if (!n)
		return;
	c->pm = n;
	struct pending_member p;
	memset(&p, 0, sizeof p);
	if (!member_copy(&p.m, m))
		return;
	snprintf(p.name, sizeof p.name, "%s", m->name);
	p.type = ev->type;
	memmove(&c->pm[at + 1], &c->pm[at], (c->npm - at) * sizeof *c->pm);
	c->pm[at] = p;
	c->npm++;
	touch(&c->mw, now, c->coalesce_ms, c->quiescent_ms);
}

static void offer_user(struct coalescer *c, const struct vigil_event *ev, int64_t now)
{
	const char *name = ev->name ? ev->name : "";
	touch(&c->uw, now, c->coalesce_ms, c->quiescent_ms);
	/* drop older ltimes of this name, keep equal ones (serf appends) */
	uint64_t newest = 0;
	bool have = false;
	for (size_t i = 0; i < c->npu; i++) {
		if (strcmp(c->pu[i].name, name) == 0) {
			if (!have || c->pu[i].ltime > newest)
				newest = c->pu[i].ltime;
			have = true;
		}
	}
	if (have && ev->ltime < newest)
		return;
	if (have && ev->ltime > newest) {
		for (size_t i = 0; i < c->npu;) {
			if (strcmp(c->pu[i].name, name) == 0) {
				free(c->pu[i].name);
				free(c->pu[i].payload);
				memmove(&c->pu[i], &c->pu[i + 1], (c->npu - i - 1) * sizeof *c->pu);
				c->npu--;
			} else {
				i++;
			}
		}
	}
	struct pending_user *n = realloc(c->pu, (c->npu + 1) * sizeof *n);
	if (!n)
		return;
	c->pu = n;
	struct pending_user *p = &c->pu[c->npu];
	p->name = strdup(name);
	p->payload = malloc(ev->payload_len ? ev->payload_len : 1);
	if (!p->name || !p->payload) {
		free(p->name);
		free(p->payload);
		return;
	}
	if (ev->payload_len)
		memcpy(p->payload, ev->payload, ev->payload_len);
	p->len = ev->payload_len;
	p->ltime = ev->ltime;
	c->npu++;
}

void coalescer_offer(struct coalescer *c, const struct vigil_event *ev, int64_t now)
{
	if (c && c->coalesce_ms > 0 && is_member_event(ev->type) && ev->member) {
		offer_member(c, ev, now);
		return;
	}
	if (c && c->coalesce_ms > 0 && ev->type == VIGIL_EV_USER && ev->coalesce) {
		offer_user(c, ev, now);
		return;
	}
	if (!c || !is_member_event(ev->type)) {
		c ? c->emit(c->ctx, ev, NULL, 0) : (void)0;
		return;
	}
	/* coalescing disabled: a batch of one */
	struct vigil_event e = *ev;
	e.member = NULL;
	c->emit(c->ctx, &e, ev->member, ev->member ? 1 : 0);
}

static void flush_members(struct coalescer *c)
{
	static const enum vigil_event_type order[] = {
		VIGIL_EV_MEMBER_JOIN, VIGIL_EV_MEMBER_LEAVE, VIGIL_EV_MEMBER_FAILED,
		VIGIL_EV_MEMBER_UPDATE, VIGIL_EV_MEMBER_REAP};
	struct pending_member *pm = c->pm;
	size_t npm = c->npm;
	c->pm = NULL;
	c->npm = c->cap_pm = 0;
	c->mw.open = false;
	bool *send = calloc(npm ? npm : 1, sizeof *send);
	for (size_t i = 0; send && i < npm; i++) {
		/* serf: skip if the same event was delivered last time for this
		 * member, unless it is an update */
		bool known;
		size_t k = sorted_name_pos(c, c->nlm, last_name_at, pm[i].name, &known);
		if (known && c->lm[k].type == pm[i].type && pm[i].type != VIGIL_EV_MEMBER_UPDATE)
			continue;
		if (!known) {
			struct last_member *n = array_grow(c->lm, &c->cap_lm, c->nlm + 1, sizeof *n, 16);
			if (!n)
				continue;
			c->lm = n;
			memmove(&c->lm[k + 1], &c->lm[k], (c->nlm - k) * sizeof *c->lm);
			snprintf(c->lm[k].name, sizeof c->lm[k].name, "%s", pm[i].name);
			c->nlm++;
		}
		c->lm[k].type = pm[i].type;
		send[i] = true;
	}
	struct vigil_member *batch = calloc(npm ? npm : 1, sizeof *batch);
	for (size_t t = 0; send && batch && t < sizeof order / sizeof order[0]; t++) {
		size_t n = 0;
		for (size_t i = 0; i < npm; i++)
			if (send[i] && pm[i].type == order[t])
				batch[n++] = pm[i].m; /* shallow: pm keeps ownership */
		if (!n)
			continue;
		struct vigil_event ev = {.type = order[t]};
		c->emit(c->ctx, &ev, batch, n);
	}
	free(batch);
	free(send);
	for (size_t i = 0; i < npm; i++)
		member_clear(&pm[i].m);
	free(pm);
}

static void flush_users(struct coalescer *c)
{
	struct pending_user *pu = c->pu;
	size_t npu = c->npu;
	c->pu = NULL;
	c->npu = 0;
	c->uw.open = false;
	for (size_t i = 0; i < npu; i++) {
		struct vigil_event ev = {
			.type = VIGIL_EV_USER,
			.name = pu[i].name,
			.payload = pu[i].payload,
			.payload_len = pu[i].len,
			.ltime = pu[i].ltime,
			.coalesce = true,
		};
		c->emit(c->ctx, &ev, NULL, 0);
	}
	for (size_t i = 0; i < npu; i++) {
		free(pu[i].name);
		free(pu[i].payload);
	}
	free(pu);
}

static int64_t due(const struct window *w)
{
	return w->quantum_end < w->quiescent_end ? w->quantum_end : w->quiescent_end;
}

int coalescer_timeout_ms(struct coalescer *c, int64_t now)
{
	int64_t best = -1;
	const struct window *ws[] = {&c->mw, &c->uw};
	for (int i = 0; c && i < 2; i++) {
		if (!ws[i]->open)
			continue;
		int64_t d = due(ws[i]) - now;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	return (int)best;
}

void coalescer_tick(struct coalescer *c, int64_t now, bool force)
{
	if (!c)
		return;
	if (c->mw.open && (force || now >= due(&c->mw)))
		flush_members(c);
	if (c->uw.open && (force || now >= due(&c->uw)))
		flush_users(c);
}
