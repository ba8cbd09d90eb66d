/*
 * suspicion.c — Lifeguard's suspicion timeouts (see suspicion.h).
 */
#include "suspicion.h"

#include <math.h>

int64_t suspicion_min_timeout(int suspicion_mult, size_t n_alive, int probe_interval_ms)
{
	double n = (double)n_alive;
	double scale = n >= 1 ? log10(n) : 0;
	if (scale < 1)
		scale = 1;
	return (int64_t)(suspicion_mult * scale * probe_interval_ms);
}

int suspicion_confirmations_wanted(int suspicion_mult, size_t n_alive, bool lifeguard)
{
	/* the accused and the first accuser cannot confirm */
	int k = suspicion_mult - 2;
	if (!lifeguard || (int)n_alive - 2 < k)
		k = 0;
	return k > 0 ? k : 0;
}

int64_t suspicion_timeout(int64_t min_ms, int64_t max_ms, int confirmations, int wanted)
{
	/* with nobody left to confirm (tiny clusters), waiting for the
	 * maximum would only delay detection: memberlist uses the minimum */
	if (wanted <= 0)
		return min_ms;
	double frac = log(confirmations + 1.0) / log(wanted + 1.0);
	int64_t t = max_ms - (int64_t)((double)(max_ms - min_ms) * frac);
	return t < min_ms ? min_ms : t;
}

static void suspicion_rearm(struct suspicion *s)
{
	s->deadline = s->start + suspicion_timeout(s->min_ms, s->max_ms, s->confirmations,
						   s->confirm_needed);
}

void suspicion_start(struct suspicion *s, uint64_t accuser, int64_t now,
		     int64_t min_ms, int64_t max_ms, int confirm_needed)
{
	s->confirm_needed = confirm_needed;
	s->confirmations = 0;
	s->n_accusers = 1;
	s->accusers[0] = accuser;
	s->start = now;
	s->min_ms = min_ms;
	s->max_ms = max_ms;
	suspicion_rearm(s);
}

bool suspicion_confirm(struct suspicion *s, uint64_t accuser)
{
	for (int i = 0; i < s->n_accusers; i++)
		if (s->accusers[i] == accuser)
			return false;
	if (s->n_accusers < SUSPICION_ACCUSERS_MAX)
		s->accusers[s->n_accusers++] = accuser;
	if (s->confirmations >= s->confirm_needed)
		return false;
	s->confirmations++;
	suspicion_rearm(s);
	return true;
}

void suspicion_restart(struct suspicion *s, int64_t now)
{
	s->start = now;
	suspicion_rearm(s);
}

bool suspicion_shared(const struct suspicion *s)
{
	return s->n_accusers > 1;
}
