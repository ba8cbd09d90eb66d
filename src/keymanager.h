/*
 * keymanager.h — serf's cluster-wide key operations (keymanager.c): the
 * internal _serf_*-key queries we answer, and the ones vigil_keys_op starts
 * and tallies.  Private to vigil.c.
 */
#ifndef VIGIL_KEYMANAGER_H
#define VIGIL_KEYMANAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "vigil_internal.h"

/* serf_internal_query_fn (ctx: the struct vigil): answers the
 * _serf_install-key, use-key, remove-key and list-keys queries; false for
 * any other internal query. */
bool keymanager_query(void *ctx, struct serf_layer *sl, const struct serf_query_in *q,
		      int64_t now);

/* Whether an operation we started is complete, its callback due. */
bool keymanager_ready(const struct vigil *v);
/* Run the callbacks of the complete operations (from vigil_step). */
void keymanager_dispatch(struct vigil *v);
/* Forget every operation, running no callback (vigil_destroy). */
void keymanager_free_all(struct vigil *v);

#endif
