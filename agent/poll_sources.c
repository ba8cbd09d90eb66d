/* poll_sources.c — see poll_sources.h. */
#include "poll_sources.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void poll_sources_init(struct poll_sources *ps, const bool *stop)
{
	memset(ps, 0, sizeof *ps);
	ps->stop = stop;
}

void poll_sources_free(struct poll_sources *ps)
{
	free(ps->fds);
	ps->fds = NULL;
	ps->cap = 0;
}

int poll_sources_add(struct poll_sources *ps, const struct poll_source *src)
{
	if (ps->n == POLL_SOURCES_MAX)
		return -1;
	ps->src[ps->n++] = *src;
	return 0;
}

static int source_nfds(const struct poll_source *s)
{
	int need = s->nfds ? s->nfds(s->ctx) : 0;
	return need > 0 ? need : 0;
}

int poll_sources_fill(struct poll_sources *ps)
{
	size_t need = 0;
	for (size_t i = 0; i < ps->n; i++) {
		ps->len[i] = source_nfds(&ps->src[i]); /* the bound, for now */
		need += (size_t)ps->len[i];
	}
	if (need > ps->cap) {
		struct pollfd *nf = realloc(ps->fds, need * sizeof *nf);
		if (!nf) {
			errno = ENOMEM;
			return -1;
		}
		ps->fds = nf;
		ps->cap = need;
	}
	int n = 0;
	for (size_t i = 0; i < ps->n; i++) {
		const struct poll_source *s = &ps->src[i];
		int max = ps->len[i];
		int got = max > 0 && s->fill ? s->fill(s->ctx, ps->fds + n, max) : 0;
		if (got < 0)
			got = 0;
		if (got > max)
			got = max; /* never past its slice */
		ps->off[i] = n;
		ps->len[i] = got;
		n += got;
	}
	ps->nfds = n;
	return 0;
}

int poll_sources_timeout(const struct poll_sources *ps, int max_ms)
{
	int best = -1;
	for (size_t i = 0; i < ps->n; i++) {
		const struct poll_source *s = &ps->src[i];
		int t = s->timeout_ms ? s->timeout_ms(s->ctx) : -1;
		if (t >= 0 && (best < 0 || t < best))
			best = t;
	}
	return best < 0 || best > max_ms ? max_ms : best;
}

int poll_sources_wait(struct poll_sources *ps, int timeout_ms)
{
	return poll(ps->fds, (nfds_t)ps->nfds, timeout_ms);
}

void poll_sources_dispatch(struct poll_sources *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		const struct poll_source *s = &ps->src[i];
		if (s->handle)
			s->handle(s->ctx, ps->fds + ps->off[i], ps->len[i]);
		if (ps->stop && *ps->stop)
			return;
	}
}
