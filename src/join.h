/*
 * join.h — joining the cluster (join.c): what vigil.c calls.  Private.
 */
#ifndef VIGIL_JOIN_H
#define VIGIL_JOIN_H

#include <stdbool.h>

#include "vigil_internal.h"

/* A seed's join push-pull finished (swim's join_result hook, for every
 * join but the re-joins of the snapshot's nodes): count it in its batch,
 * and broadcast serf's join intent after the first success. */
void join_seed_result(struct vigil *v, const struct wire_addr *seed, bool ok);
/* Join the host names the resolver threads have resolved (vigil_step). */
void join_resolved(struct vigil *v);
/* Every tracked batch (vigil_destroy). */
void join_batches_free(struct vigil *v);

#endif
