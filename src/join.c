/*
 * join.c — vigil_join and its kin: seeds parsed or handed to the resolver
 * threads, and each vigil_join_begin call tracked as a batch whose result
 * (how many seeds answered) vigil_join_poll reports, as serf's Join does.
 */
#include "join.h"

#include <stdlib.h>
#include <string.h>

/* The oldest tracked join still waiting for this seed counts its result. */
static void join_batch_note(struct vigil *v, const struct wire_addr *seed, bool ok)
{
	for (size_t b = 0; b < v->n_joins; b++) {
		struct join_batch *jb = &v->joins[b];
		for (size_t i = 0; i < jb->n; i++) {
			if (jb->finished[i] || !transport_addr_equal(&jb->seeds[i], seed))
				continue;
			jb->finished[i] = true;
			jb->n_finished++;
			jb->n_ok += ok;
			return;
		}
	}
}

static void join_batch_free(struct join_batch *jb)
{
	free(jb->seeds);
	free(jb->finished);
}

void join_batches_free(struct vigil *v)
{
	for (size_t i = 0; i < v->n_joins; i++)
		join_batch_free(&v->joins[i]);
	free(v->joins);
}

void join_seed_result(struct vigil *v, const struct wire_addr *seed, bool ok)
{
	char a[80];
	vlog(v, ok ? 1 : 2, "vigil: join via %s %s",
	     transport_format_addr(seed, a, sizeof a), ok ? "succeeded" : "failed");
	join_batch_note(v, seed, ok);
	if (v->joins_in_flight > 0 && --v->joins_in_flight == 0 && v->sl)
		serf_layer_set_join_ignore(v->sl, false);
	/* serf.Join broadcasts one join intent once memberlist joined anyone */
	if (ok && v->join_broadcast_pending && v->sl) {
		v->join_broadcast_pending = false;
		serf_layer_broadcast_join(v->sl, v->now);
	}
}

int vigil_join(vigil_t *v, const char *const *addrs, size_t n)
{
	return vigil_join_ex(v, addrs, n, false);
}

int vigil_join_ex(vigil_t *v, const char *const *addrs, size_t n, bool replay)
{
	return vigil_join_begin(v, addrs, n, replay, NULL);
}

/* Track the k parsed seeds of a join under a new id (false: out of memory). */
static bool join_batch_add(struct vigil *v, const struct wire_addr *seeds, size_t k,
			   uint32_t *id)
{
	struct join_batch jb = { .n = k };
	jb.seeds = malloc(k * sizeof *jb.seeds);
	jb.finished = calloc(k, sizeof *jb.finished);
	struct join_batch *nj = realloc(v->joins, (v->n_joins + 1) * sizeof *nj);
	if (!jb.seeds || !jb.finished || !nj) {
		join_batch_free(&jb);
		if (nj)
			v->joins = nj;
		return false;
	}
	memcpy(jb.seeds, seeds, k * sizeof *seeds);
	jb.deadline = v->now + JOIN_DECIDE_MS;
	if (++v->next_join_id == 0) /* 0 means "not tracked" */
		v->next_join_id = 1;
	jb.id = v->next_join_id;
	v->joins = nj;
	/* A join nobody polls (or whose seeds never finish) must not pile up:
	 * past JOINS_TRACKED_MAX the oldest is forgotten. */
	if (v->n_joins == JOINS_TRACKED_MAX) {
		join_batch_free(&v->joins[0]);
		memmove(v->joins, v->joins + 1, (v->n_joins - 1) * sizeof *v->joins);
		v->n_joins--;
	}
	v->joins[v->n_joins++] = jb;
	*id = jb.id;
	return true;
}

int vigil_join_poll(vigil_t *v, uint32_t join_id, int *joined)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	for (size_t b = 0; b < v->n_joins; b++) {
		struct join_batch *jb = &v->joins[b];
		if (jb->id != join_id)
			continue;
		/* A name still resolving keeps the join open past the deadline:
		 * the deadline restarts once it resolves (join_resolved). */
		if (jb->n_finished < jb->n && (jb->n_resolving || clock_ms() < jb->deadline))
			return 0;
		if (joined)
			*joined = jb->n_ok;
		join_batch_free(jb);
		memmove(jb, jb + 1, (v->n_joins - b - 1) * sizeof *jb);
		v->n_joins--;
		return 1;
	}
	return errbuf_set(&v->eb, VIGIL_ERR_NOT_FOUND, "vigil_join_poll: no join %u "
			  "(finished and polled already, or one of more than %d)",
			  join_id, JOINS_TRACKED_MAX);
}

/* A seed of a join is over without a push-pull (its name did not resolve). */
static void join_seed_failed(struct vigil *v, struct join_batch *jb, size_t slot)
{
	if (jb && !jb->finished[slot]) {
		jb->finished[slot] = true;
		jb->n_finished++;
	}
	if (v->joins_in_flight > 0 && --v->joins_in_flight == 0)
		serf_layer_set_join_ignore(v->sl, false);
}

static struct join_batch *join_batch_find(struct vigil *v, uint32_t id)
{
	for (size_t b = 0; id && b < v->n_joins; b++)
		if (v->joins[b].id == id)
			return &v->joins[b];
	return NULL;
}

/*
 * Host names of vigil_join_begin come back from the resolver threads here
 * (from vigil_step): join the address, or count the seed as failed.  The
 * tag is the join's id (0: untracked) and the seed's slot in it.
 */
void join_resolved(struct vigil *v)
{
	uint64_t tag;
	bool ok;
	struct wire_addr addr;
	while (resolver_take(v->res, &tag, &ok, &addr)) {
		struct join_batch *jb = join_batch_find(v, (uint32_t)(tag >> 32));
		size_t slot = (size_t)(tag & 0xffffffffu);
		if (jb && slot >= jb->n)
			jb = NULL;
		if (jb) {
			jb->n_resolving--;
			jb->deadline = v->now + JOIN_DECIDE_MS;
		}
		if (!ok) {
			vlog(v, 2, "vigil: join: cannot resolve seed %u of join %u",
			     (unsigned)slot + 1, (unsigned)(tag >> 32));
			join_seed_failed(v, jb, slot);
			continue;
		}
		if (jb)
			jb->seeds[slot] = addr;
		swim_join(v->sw, &addr, 1, v->now);
	}
}

/* memberlist resolveAddr: "NODE/ADDR" names the node expected at ADDR
 * (serf's own join tests use it); the address is what matters to us.
 * NULL for an empty node name, which memberlist refuses. */
static const char *join_addr_part(const char *s)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return s;
	return slash == s ? NULL : slash + 1;
}

int vigil_join_begin(vigil_t *v, const char *const *addrs, size_t n, bool replay,
		     uint32_t *join_id)
{
	if (join_id)
		*join_id = 0;
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!addrs && n)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_join: addrs is NULL");
	v->now = clock_ms();
	/* Parse everything first: a join with nothing usable changes nothing. */
	struct wire_addr *seeds = calloc(n ? n : 1, sizeof *seeds);
	bool *is_name = calloc(n ? n : 1, sizeof *is_name);
	if (!seeds || !is_name) {
		free(seeds);
		free(is_name);
		return errbuf_set(&v->eb, VIGIL_ERR_NOMEM, "vigil_join: out of memory");
	}
	size_t k = 0, n_names = 0;
	const char *bad = NULL;
	const char **names = calloc(n ? n : 1, sizeof *names);
	for (size_t i = 0; names && i < n; i++) {
		/* serf's "NAME/ADDR" form: the address part is what we dial */
		const char *a = addrs[i] ? join_addr_part(addrs[i]) : NULL;
		if (a && transport_parse_addr(a, TRANSPORT_DEFAULT_PORT, false, &seeds[k]) == 0) {
			k++;
		} else if (a && resolver_is_hostname(a)) {
			is_name[k] = true;
			names[k++] = a;
			n_names++;
		} else {
			bad = addrs[i] ? addrs[i] : "(null)";
			vlog(v, 2, "vigil: cannot parse join address %s", bad);
		}
	}
	int rc = (int)k;
	if (!names) {
		rc = errbuf_set(&v->eb, VIGIL_ERR_NOMEM, "vigil_join: out of memory");
	} else if (n_names > (size_t)(RESOLVE_MAX_PENDING - resolver_pending(v->res))) {
		rc = errbuf_set(&v->eb, VIGIL_ERR_RANGE, "vigil_join: %zu host names to "
				"resolve; at most %d at a time", n_names, RESOLVE_MAX_PENDING);
	} else if (k == 0) {
		rc = bad ? errbuf_set(&v->eb, VIGIL_ERR_ADDRESS, "vigil_join: no valid address "
				      "(\"%.100s\" is neither host[:port] nor ip[:port])", bad)
			 : errbuf_set(&v->eb, VIGIL_ERR_ADDRESS, "vigil_join: no addresses given");
	}
	if (rc <= 0)
		goto out;
	struct join_batch *jb = NULL;
	if (join_id) {
		if (join_batch_add(v, seeds, k, join_id)) {
			jb = &v->joins[v->n_joins - 1];
			jb->n_resolving = n_names;
		} else {
			vlog(v, 2, "vigil: out of memory tracking a join; its result is not reported");
		}
	}
	v->join_broadcast_pending = true;
	v->joins_in_flight += k;
	serf_layer_set_join_ignore(v->sl, !replay);
	/* Names first: a numeric seed's result may come back within the step. */
	for (size_t i = 0; i < k; i++) {
		if (!is_name[i])
			continue;
		uint64_t tag = (uint64_t)(jb ? jb->id : 0) << 32 | i;
		if (resolver_submit(v->res, names[i], TRANSPORT_DEFAULT_PORT, tag) != 0) {
			vlog(v, 3, "vigil: join: cannot start resolving %s", names[i]);
			if (jb)
				jb->n_resolving--;
			join_seed_failed(v, jb, i);
		}
	}
	/* Numeric seeds go to swim together, packed (names' slots skipped). */
	size_t m = 0;
	for (size_t i = 0; i < k; i++)
		if (!is_name[i])
			seeds[m++] = seeds[i];
	if (m)
		swim_join(v->sw, seeds, m, v->now);
out:
	free(seeds);
	free(is_name);
	free(names);
	return rc;
}

