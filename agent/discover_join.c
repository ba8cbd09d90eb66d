/*
 * discover_join.c — serf's AgentMDNS on top of discover.c: our instance
 * is announced with the address the cluster knows us by, found addresses
 * are batched (a quiet 100 ms after the last one, serf's
 * mdnsQuietInterval) and joined through the library's non-blocking join.
 */
#include "discover_join.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_state.h"
#include "discover.h"
#include "log.h"

/* serf's mdnsQuietInterval */
#define QUIET_MS 100
/* one batch joins at most this many addresses (more wait for the next) */
#define BATCH_MAX 32
/* how often a join in flight is polled */
#define JOIN_POLL_MS 100

struct discover_join {
	vigil_t *v;
	struct discover *d;
	bool replay;
	char batch[BATCH_MAX][DISCOVER_ADDR_MAX];
	size_t n_batch;
	int64_t quiet_at;  /* when the batch is joined; 0: nothing queued */
	uint32_t join_id;  /* batch being joined, 0 = none */
};

/* Our member as the cluster sees it: the advertised address and port. */
static int own_address(vigil_t *v, char *ip, size_t iplen, uint16_t *port)
{
	struct vigil_member *m = NULL;
	size_t n = 0;
	int found = -1;
	if (vigil_members(v, &m, &n) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, vigil_name(v)) == 0) {
			snprintf(ip, iplen, "%s", m[i].addr);
			*port = m[i].port;
			found = 0;
			break;
		}
	vigil_members_free(m, n);
	return found;
}

struct discover_join *discover_join_start(vigil_t *v, const char *cluster, const char *iface,
					  bool replay, char *err, size_t errlen)
{
	char ip[64];
	uint16_t port = 0;
	if (own_address(v, ip, sizeof ip, &port) != 0) {
		snprintf(err, errlen, "no address of our own to announce");
		return NULL;
	}
	struct discover_join *dj = calloc(1, sizeof *dj);
	if (!dj) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct discover_config cfg = {
		.cluster = cluster,
		.node_name = vigil_name(v),
		.advertise_ip = ip,
		.port = port,
		.iface = iface && *iface ? iface : NULL,
	};
	dj->d = discover_new(&cfg, err, errlen);
	if (!dj->d) {
		free(dj);
		return NULL;
	}
	dj->v = v;
	dj->replay = replay;
	return dj;
}

void discover_join_free(struct discover_join *dj)
{
	if (!dj)
		return;
	discover_free(dj->d);
	free(dj);
}

int discover_join_nfds(void *ctx)
{
	struct discover_join *dj = ctx;
	int fd[8];
	return discover_fds(dj->d, fd, 8);
}

int discover_join_fill(void *ctx, struct pollfd *fds, int max)
{
	struct discover_join *dj = ctx;
	int fd[8];
	int n = discover_fds(dj->d, fd, max < 8 ? max : 8);
	for (int i = 0; i < n; i++)
		fds[i] = (struct pollfd){.fd = fd[i], .events = POLLIN};
	return n;
}

static int64_t earliest(int64_t a, int64_t b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int discover_join_timeout_ms(void *ctx)
{
	struct discover_join *dj = ctx;
	int64_t now = now_ms();
	int64_t at = discover_next_deadline_ms(dj->d);
	if (dj->n_batch && !dj->join_id)
		at = earliest(at, dj->quiet_at);
	if (dj->join_id)
		at = earliest(at, now + JOIN_POLL_MS);
	if (at < 0)
		return -1;
	return at <= now ? 0 : at - now > 60000 ? 60000 : (int)(at - now);
}

/* The batch in flight is over: log it as serf does. */
static void join_poll(struct discover_join *dj)
{
	int joined = 0;
	if (!dj->join_id || vigil_join_poll(dj->v, dj->join_id, &joined) == 0)
		return;
	dj->join_id = 0;
	if (joined > 0)
		alog(LV_INFO, "agent.mdns: Joined %d hosts", joined);
	else
		alog(LV_ERR, "agent.mdns: Failed to join: no member answered");
}

static void join_batch(struct discover_join *dj)
{
	const char *addrs[BATCH_MAX];
	/* serf's agent.Join logs "joining: [a b] replay: false" */
	char list[BATCH_MAX * (DISCOVER_ADDR_MAX + 1) + 1];
	size_t at = 0;
	for (size_t i = 0; i < dj->n_batch; i++) {
		addrs[i] = dj->batch[i];
		at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? " " : "", addrs[i]);
	}
	alog(LV_INFO, "agent: joining: [%s] replay: %s", list, dj->replay ? "true" : "false");
	if (vigil_join_begin(dj->v, addrs, dj->n_batch, dj->replay, &dj->join_id) <= 0 ||
	    !dj->join_id) {
		alog(LV_ERR, "agent.mdns: Failed to join: %s", vigil_last_error(dj->v));
		dj->join_id = 0;
	}
	dj->n_batch = 0;
	dj->quiet_at = 0;
}

void discover_join_handle(void *ctx, const struct pollfd *fds, int n)
{
	struct discover_join *dj = ctx;
	(void)fds, (void)n; /* discover_step reads its own sockets */
	int64_t now = now_ms();
	discover_step(dj->d, now);
	join_poll(dj);
	char addr[DISCOVER_ADDR_MAX];
	while (dj->n_batch < BATCH_MAX && discover_next_peer(dj->d, addr, sizeof addr)) {
		alog(LV_DEBUG, "agent.mdns: found %s", addr);
		snprintf(dj->batch[dj->n_batch++], DISCOVER_ADDR_MAX, "%s", addr);
		dj->quiet_at = now + QUIET_MS;
	}
	if (dj->n_batch && !dj->join_id && now >= dj->quiet_at)
		join_batch(dj);
}
