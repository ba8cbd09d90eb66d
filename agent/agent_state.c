/* agent_state.c — the helpers agent_state.h declares that are not config's. */
#include "agent_state.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define RPC_LEAVE_TIMEOUT_MS 5000 /* serf's BroadcastTimeout default */

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint8_t *agent_memdup(const void *p, size_t n)
{
	uint8_t *copy = n ? malloc(n) : NULL;
	if (copy)
		memcpy(copy, p, n);
	return copy;
}

const char *agent_event_name(enum vigil_event_type t)
{
	return vigil_event_name(t);
}

void agent_begin_leave(struct agent *a)
{
	if (a->leaving)
		return;
	alog(LV_INFO, "agent: requesting graceful leave from Serf");
	a->leaving = true;
	a->leave_deadline_ms = now_ms() + RPC_LEAVE_TIMEOUT_MS;
	vigil_leave(a->v);
}
