/*
 * suspicion.h — Lifeguard's suspicion timeout arithmetic, a pure module:
 * no swim, no member records, no clock of its own (callers pass `now`).
 *
 * SWIM declares a suspect dead after a fixed timeout.  Lifeguard starts
 * with a long one and shortens it as other members independently confirm
 * the suspicion: a lone accuser (perhaps the one with the bad network)
 * waits the maximum, while a suspicion many members share expires sooner,
 * never below the minimum.  After c of k wanted confirmations the timeout
 * is
 *
 *     max - (max - min) * log(c + 1) / log(k + 1)
 *
 * (memberlist's suspicion.go).  Accusers are named by a hash of their
 * name, so the same accuser repeating itself confirms nothing.
 */
#ifndef VIGIL_SUSPICION_H
#define VIGIL_SUSPICION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUSPICION_ACCUSERS_MAX 8     /* distinct accusers remembered */

struct suspicion {
	int64_t start, deadline;
	int64_t min_ms, max_ms;
	int confirm_needed, confirmations;
	uint64_t accusers[SUSPICION_ACCUSERS_MAX]; /* name hashes of distinct accusers seen */
	int n_accusers;
};

/*
 * The shortest suspicion timeout, as memberlist's suspicionTimeout:
 * mult * max(1, log10(n_alive)) * probe_interval_ms.
 */
int64_t suspicion_min_timeout(int suspicion_mult, size_t n_alive, int probe_interval_ms);

/*
 * How many independent confirmations shorten a suspicion all the way to
 * the minimum: suspicion_mult - 2, or 0 (no shortening: the minimum at
 * once) without Lifeguard or when fewer members than that could confirm.
 */
int suspicion_confirmations_wanted(int suspicion_mult, size_t n_alive, bool lifeguard);

/* The timeout after `confirmations` of `wanted`, per the formula above. */
int64_t suspicion_timeout(int64_t min_ms, int64_t max_ms, int confirmations, int wanted);

/* Begin a suspicion raised by `accuser` (a name hash) at now. */
void suspicion_start(struct suspicion *s, uint64_t accuser, int64_t now,
		     int64_t min_ms, int64_t max_ms, int confirm_needed);

/*
 * Another accusation by `accuser`.  An accuser seen before changes
 * nothing; a new one is remembered, and if confirmations are still
 * wanted it counts as one and the deadline moves closer.  True exactly
 * when it counted (memberlist then gossips the accusation on).
 */
bool suspicion_confirm(struct suspicion *s, uint64_t accuser);

/* Give the suspicion its full time again from now (after a stall). */
void suspicion_restart(struct suspicion *s, int64_t now);

/* Has anyone but the first accuser accused too? */
bool suspicion_shared(const struct suspicion *s);

#endif
