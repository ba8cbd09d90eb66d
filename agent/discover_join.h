/*
 * discover_join.h — the agent's `-discover=CLUSTER` (serf's AgentMDNS):
 * announce this agent over mDNS and join the agents found (discover.h
 * does the mDNS; this is what the agent does with it).
 *
 * As serf's agent: addresses found within 100 ms of each other are joined
 * in one batch (with -replay's setting), each address once; the result is
 * logged as "agent.mdns: Joined N hosts" or "agent.mdns: Failed to join".
 * The functions after discover_join_start are a poll source
 * (poll_sources.h) with the discover_join as its context.
 */
#ifndef VIGIL_AGENT_DISCOVER_JOIN_H
#define VIGIL_AGENT_DISCOVER_JOIN_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "vigil.h"

struct discover_join;

/* Announces v's own member (its advertised address and port) as an
 * instance of cluster's service and starts browsing; iface: the multicast
 * interface (-iface), NULL for the kernel's choice.  NULL with a message
 * in err on failure. */
struct discover_join *discover_join_start(vigil_t *v, const char *cluster, const char *iface,
					  bool replay, char *err, size_t errlen);
void discover_join_free(struct discover_join *dj);

int discover_join_nfds(void *dj);
int discover_join_fill(void *dj, struct pollfd *fds, int max);
int discover_join_timeout_ms(void *dj);
void discover_join_handle(void *dj, const struct pollfd *fds, int n);

#endif
