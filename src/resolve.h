/*
 * resolve.h — host names resolved off the caller's loop.
 *
 * getaddrinfo() blocks for as long as DNS takes (seconds when a server is
 * down), and vigil_join must not block the embedder's event loop.  Each
 * submitted name is resolved on its own short-lived detached thread; the
 * result is queued and an eventfd becomes readable, which vigil_pollfds
 * hands to the caller, so the loop wakes and vigil_step collects it.
 *
 * The threads share only a small refcounted block with the owner, so
 * resolver_free() never waits for DNS: a thread still running when its
 * owner goes away finds the block abandoned, drops its result and frees the
 * block if it was the last user.
 */
#ifndef VIGIL_RESOLVE_H
#define VIGIL_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* Names being resolved at once per handle; more is refused (a join of
 * hundreds of host names is a mistake, not a reason for hundreds of threads). */
#define RESOLVE_MAX_PENDING 64

struct resolver;

struct resolver *resolver_new(void);
void resolver_free(struct resolver *r);

/* The fd to poll for results, or -1 while nothing is being resolved. */
int resolver_fd(const struct resolver *r);
int resolver_pending(const struct resolver *r);

/* Start resolving "host[:port]" (port default_port); tag comes back with
 * the result.  0, or -1 when too many are pending or no thread could be
 * started. */
int resolver_submit(struct resolver *r, const char *host_port, uint16_t default_port,
		    uint64_t tag);

/* Take one finished result: true and *tag, *ok, *out (valid when ok). */
bool resolver_take(struct resolver *r, uint64_t *tag, bool *ok, struct wire_addr *out);

/* Is s a well-formed "hostname[:port]" (letters, digits, '-', '.', '_')?
 * Lets vigil_join refuse garbage at once instead of after a DNS round. */
bool resolver_is_hostname(const char *s);

#endif
