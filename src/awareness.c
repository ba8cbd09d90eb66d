/*
 * awareness.c — Lifeguard's local health score (see awareness.h).
 */
#include "awareness.h"

void awareness_init(struct awareness *a, int max_multiplier)
{
	a->max_multiplier = max_multiplier < 1 ? 1 : max_multiplier;
	a->score = 0;
}

bool awareness_apply(struct awareness *a, int delta)
{
	int v = a->score + delta;
	int max = a->max_multiplier - 1;
	if (v < 0)
		v = 0;
	if (v > max)
		v = max;
	bool changed = v != a->score;
	a->score = v;
	return changed;
}

int awareness_score(const struct awareness *a)
{
	return a->score;
}

int64_t awareness_scale(const struct awareness *a, int64_t ms)
{
	return ms * (a->score + 1);
}
