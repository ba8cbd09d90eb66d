/*
 * awareness.h — Lifeguard's local health score ("awareness"), a pure
 * module: no swim, no clock, no logging.
 *
 * A member that fails to hear acks it should have heard, or has to refute
 * rumours about itself, may be the slow or cut-off one rather than its
 * peers.  The score counts that evidence, from 0 (healthy) up to
 * max_multiplier - 1, and the probe interval is stretched by (score + 1)
 * so that a struggling member gives its peers more time before it
 * suspects them (memberlist's awareness.go, same rules).
 */
#ifndef VIGIL_AWARENESS_H
#define VIGIL_AWARENESS_H

#include <stdbool.h>
#include <stdint.h>

struct awareness {
	int max_multiplier;          /* scores run 0 .. max_multiplier - 1 */
	int score;
};

/* A healthy score; max_multiplier below 1 counts as 1 (the score stays 0). */
void awareness_init(struct awareness *a, int max_multiplier);

/* Add delta (negative: better health), clamped to the range; true if the
 * score changed. */
bool awareness_apply(struct awareness *a, int delta);

int awareness_score(const struct awareness *a);

/* A timeout of ms stretched by the score: ms * (score + 1). */
int64_t awareness_scale(const struct awareness *a, int64_t ms);

#endif
