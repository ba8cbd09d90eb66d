/*
 * serf_query.c — serf's queries (query.go, serf.go handleQuery and
 * handleQueryResponse): decoding a query and its responses, the filters
 * that decide whether we answer, relayed responses, our answers, and
 * the acks and responses we collect for our own queries.
 */
#include "bcast_queue.h"
#include "serf_internal.h"
#include "goregex.h"
#include "mpack.h"
#include "grow.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool bytes_eq_str(const uint8_t *p, size_t len, const char *s)
{
	return strlen(s) == len && (len == 0 || memcmp(p, s, len) == 0);
}

static const char *tag_get(const struct vigil_tag *t, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].key, key) == 0)
			return t[i].value;
	return NULL;
}

/* Raw IP bytes as serf carries them (4 or 16) into a wire_addr. */
static bool make_addr(const uint8_t *ip, size_t len, uint16_t port, struct wire_addr *a)
{
	static const uint8_t v4m[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};
	memset(a, 0, sizeof *a);
	if (len == 16 && memcmp(ip, v4m, 12) == 0) {
		/* Normalise v4-mapped to 4 bytes so the transport picks IPv4. */
		memcpy(a->ip, ip + 12, 4);
		a->ip_len = 4;
	} else if (len == 4 || len == 16) {
		memcpy(a->ip, ip, len);
		a->ip_len = (uint8_t)len;
	} else {
		return false;
	}
	a->port = port;
	return true;
}

static void myquery_free(struct sl_myquery *q)
{
	for (size_t i = 0; i < q->n_acks; i++)
		free(q->acks[i]);
	for (size_t i = 0; i < q->n_resps; i++)
		free(q->resps[i]);
	free(q->acks);
	free(q->resps);
	free(q->name);
}

struct query_msg {
	uint64_t ltime;
	uint32_t id;
	struct wire_bytes addr;
	uint16_t port;
	struct wire_bytes source_node;
	const msgpack_object *filters;  /* each STR/BIN (checked) */
	uint32_t n_filters;
	uint32_t flags;
	uint8_t relay_factor;
	int64_t timeout_ns;
	struct wire_bytes name;
	struct wire_bytes payload;
};

struct query_resp_msg {
	uint64_t ltime;
	uint32_t id;
	struct wire_bytes from;
	uint32_t flags;
	struct wire_bytes payload;
};

/*
 * The fields a query and its response share: true if k is one of them,
 * *ok then saying whether its value decoded.
 */
static bool decode_query_common(const msgpack_object *k, const msgpack_object *val,
				uint64_t *ltime, uint32_t *id, uint32_t *flags,
				struct wire_bytes *payload, bool *ok)
{
	uint64_t v = 0;
	if (mpack_key_is(k, "LTime")) {
		*ok = mpack_go_uint(val, UINT64_MAX, ltime);
	} else if (mpack_key_is(k, "ID")) {
		*ok = mpack_go_uint(val, UINT32_MAX, &v);
		*id = (uint32_t)v;
	} else if (mpack_key_is(k, "Flags")) {
		*ok = mpack_go_uint(val, UINT32_MAX, &v);
		*flags = (uint32_t)v;
	} else if (mpack_key_is(k, "Payload")) {
		*ok = mp_bytes(val, payload);
	} else {
		return false;
	}
	return true;
}

/* A member name that can become a C string (empty allowed). */
static bool name_bytes_ok(const struct wire_bytes *b)
{
	return b->len <= WIRE_NAME_MAX && (b->len == 0 || !memchr(b->p, 0, b->len));
}

static bool query_field(void *out, const msgpack_object *k, const msgpack_object *val)
{
	struct query_msg *q = out;
	uint64_t v = 0;
	bool ok = true;
	if (decode_query_common(k, val, &q->ltime, &q->id, &q->flags, &q->payload, &ok))
		return ok;
	if (mpack_key_is(k, "Addr")) {
		ok = mp_bytes(val, &q->addr);
	} else if (mpack_key_is(k, "Port")) {
		ok = mpack_go_uint(val, UINT16_MAX, &v);
		q->port = (uint16_t)v;
	} else if (mpack_key_is(k, "SourceNode")) {
		ok = mp_bytes(val, &q->source_node);
	} else if (mpack_key_is(k, "Filters")) {
		ok = mpack_go_array(val, &q->filters, &q->n_filters);
		for (uint32_t j = 0; ok && j < q->n_filters; j++) {
			struct wire_bytes b = {NULL, 0};
			ok = mp_bytes(&q->filters[j], &b);
		}
	} else if (mpack_key_is(k, "RelayFactor")) {
		ok = mpack_go_uint(val, UINT8_MAX, &v);
		q->relay_factor = (uint8_t)v;
	} else if (mpack_key_is(k, "Timeout")) {
		ok = mpack_go_int(val, &q->timeout_ns);
	} else if (mpack_key_is(k, "Name")) {
		ok = mp_bytes(val, &q->name);
	}
	return ok;
}

static int decode_query(const msgpack_object *o, struct query_msg *q)
{
	memset(q, 0, sizeof *q);
	if (serf_decode_fields(o, query_field, q) != SERF_OK)
		return SERF_EFORMAT;
	/* Names become C strings for the application. */
	if ((q->name.len && memchr(q->name.p, 0, q->name.len)) || !name_bytes_ok(&q->source_node))
		return SERF_EFORMAT;
	return SERF_OK;
}

static bool query_resp_field(void *out, const msgpack_object *k, const msgpack_object *val)
{
	struct query_resp_msg *r = out;
	bool ok = true;
	if (!decode_query_common(k, val, &r->ltime, &r->id, &r->flags, &r->payload, &ok) &&
	    mpack_key_is(k, "From"))
		ok = mp_bytes(val, &r->from);
	return ok;
}

static int decode_query_resp(const msgpack_object *o, struct query_resp_msg *r)
{
	memset(r, 0, sizeof *r);
	if (serf_decode_fields(o, query_resp_field, r) != SERF_OK)
		return SERF_EFORMAT;
	return name_bytes_ok(&r->from) ? SERF_OK : SERF_EFORMAT;
}

/*
 * serf's regexp.MatchString(expr, value), with Go's syntax (goregex.h).
 * *budget is shared by the filters of one query, so a query full of
 * costly expressions costs no more than one (issue 15: glibc spent 1.6 s
 * of vigil_step on one 27-byte filter).  A pattern Go would refuse, or
 * one over the budget, admits nobody, as serf's compile error does.
 */
static bool filter_match(const struct serf_layer *sl, const struct wire_bytes *expr,
			 const char *value, size_t *budget)
{
	char err[160];
	struct goregex *re = goregex_compile((const char *)expr->p, expr->len, budget, err,
					     sizeof err);
	if (!re) {
		sl_log(sl, 2, "serf: failed to compile filter regex (%.*s): %s",
		       (int)(expr->len > 64 ? 64 : expr->len), expr->p ? (const char *)expr->p : "",
		       err);
		return false;
	}
	bool match = goregex_match(re, value, strlen(value));
	goregex_free(re);
	return match;
}

/* shouldProcessQuery: every filter must admit us. */
static bool should_process(const struct serf_layer *sl, const struct query_msg *q)
{
	size_t budget = GOREGEX_BUDGET;
	for (uint32_t i = 0; i < q->n_filters; i++) {
		struct wire_bytes f = {NULL, 0};
		msgpack_unpacked u;
		bool ok = false;

		mp_bytes(&q->filters[i], &f);
		/* serf indexes filter[0] unchecked (and panics); we refuse. */
		if (f.len < 1)
			return false;
		if (sl_unpack(f.p + 1, f.len - 1, &u, NULL) != SERF_OK)
			return false;
		if (f.p[0] == 0) {             /* filterNodeType: []string */
			const msgpack_object *it;
			uint32_t n;
			if (mpack_go_array(&u.data, &it, &n)) {
				for (uint32_t j = 0; j < n && !ok; j++) {
					struct wire_bytes b = {NULL, 0};
					if (!mp_bytes(&it[j], &b))
						break;
					ok = bytes_eq_str(b.p, b.len, sl->cfg.name);
				}
			}
		} else if (f.p[0] == 1) {      /* filterTagType: {Tag, Expr} */
			const msgpack_object_kv *kv;
			uint32_t n;
			struct wire_bytes tag = {NULL, 0}, expr = {NULL, 0};
			bool good = mpack_map(&u.data, &kv, &n);
			for (uint32_t j = 0; good && j < n; j++) {
				if (mpack_key_is(&kv[j].key, "Tag"))
					good = mp_bytes(&kv[j].val, &tag);
				else if (mpack_key_is(&kv[j].key, "Expr"))
					good = mp_bytes(&kv[j].val, &expr);
			}
			if (good) {
				char key[256];
				const char *val = NULL;
				if (mpack_text_copy(tag.p, tag.len, key, sizeof key))
					val = tag_get(sl->tags, sl->n_tags, key);
				/* a missing tag reads as "" (Go map zero value) */
				ok = filter_match(sl, &expr, val ? val : "", &budget);
			}
		}
		msgpack_unpacked_destroy(&u);
		if (!ok)
			return false;
	}
	return true;
}

static int encode_query_resp(struct mpack_enc *e, int outer_type, uint64_t ltime, uint32_t id,
			     const char *from, uint32_t flags, const uint8_t *p, size_t len)
{
	mpack_enc_init(e, outer_type);
	mpack_enc_map(e, 5);
	mpack_enc_gostr(e, "Flags");
	mpack_enc_u64(e, flags);
	mpack_enc_gostr(e, "From");
	mpack_enc_gostr(e, from);
	mpack_enc_gostr(e, "ID");
	mpack_enc_u64(e, id);
	mpack_enc_gostr(e, "LTime");
	mpack_enc_u64(e, ltime);
	mpack_enc_gostr(e, "Payload");
	mpack_enc_gobytes(e, p, len);
	if (e->err) {
		mpack_enc_free(e);
		return SERF_ENOMEM;
	}
	return SERF_OK;
}

static void handle_query_response(struct serf_layer *sl, const struct query_resp_msg *r,
				  int64_t now);

/* Deliver a serf message to a querier: ourselves directly, others by UDP. */
static void send_to_node(struct serf_layer *sl, const struct wire_addr *to, const char *node,
			 const uint8_t *msg, size_t len, int64_t now)
{
	if (strcmp(node, sl->cfg.name) == 0 && msg[0] == SERF_MSG_QUERY_RESPONSE) {
		msgpack_unpacked u;
		struct query_resp_msg r;
		if (sl_unpack(msg + 1, len - 1, &u, NULL) == SERF_OK) {
			if (decode_query_resp(&u.data, &r) == SERF_OK)
				handle_query_response(sl, &r, now);
			msgpack_unpacked_destroy(&u);
		}
		return;
	}
	if (sl->cfg.out.send_to && to->ip_len)
		sl->cfg.out.send_to(sl->cfg.out.ctx, to, msg, len);
}

/*
 * relayResponse: also send the response through up to relay_factor random
 * alive members (memberlist protocol max >= 5) wrapped in messageRelay.
 */
static void relay_response(struct serf_layer *sl, uint8_t relay_factor,
			   const struct wire_addr *dest, const char *dest_name,
			   uint64_t ltime, uint32_t id, uint32_t flags,
			   const uint8_t *payload, size_t len)
{
	struct mpack_enc e;
	struct sl_member **chosen;
	size_t k = 0, n = sl->n_members;
	uint8_t ip[16];

	if (relay_factor == 0 || n < (size_t)relay_factor + 1)
		return;
	mpack_enc_init(&e, SERF_MSG_RELAY);
	mpack_enc_map(&e, 2);
	mpack_enc_gostr(&e, "DestAddr");
	mpack_enc_map(&e, 3);                  /* net.UDPAddr{IP, Port, Zone} */
	mpack_enc_gostr(&e, "IP");
	memcpy(ip, dest->ip, dest->ip_len);
	mpack_enc_goraw(&e, ip, dest->ip_len);
	mpack_enc_gostr(&e, "Port");
	mpack_enc_i64(&e, dest->port);
	mpack_enc_gostr(&e, "Zone");
	mpack_enc_gostr(&e, "");
	mpack_enc_gostr(&e, "DestName");
	mpack_enc_gostr(&e, dest_name);
	{
		char t = SERF_MSG_QUERY_RESPONSE;
		e.err |= msgpack_sbuffer_write(&e.sb, &t, 1);
	}
	mpack_enc_map(&e, 5);
	mpack_enc_gostr(&e, "Flags");
	mpack_enc_u64(&e, flags);
	mpack_enc_gostr(&e, "From");
	mpack_enc_gostr(&e, sl->cfg.name);
	mpack_enc_gostr(&e, "ID");
	mpack_enc_u64(&e, id);
	mpack_enc_gostr(&e, "LTime");
	mpack_enc_u64(&e, ltime);
	mpack_enc_gostr(&e, "Payload");
	mpack_enc_gobytes(&e, payload, len);
	if (e.err || e.sb.size > (size_t)sl->cfg.query_response_size_limit) {
		sl_log(sl, 3, "serf: relayed response exceeds limit of %d bytes",
		       sl->cfg.query_response_size_limit);
		mpack_enc_free(&e);
		return;
	}
	chosen = calloc(relay_factor, sizeof *chosen);
	if (!chosen) {
		mpack_enc_free(&e);
		return;
	}
	/* kRandomMembers: up to 3n random draws, skipping unfit and repeats. */
	for (size_t i = 0; i < 3 * n && k < relay_factor; i++) {
		struct sl_member *m = sl->members[sl_rand(sl) % n];
		bool dup = false;
		if (m->m.status != VIGIL_STATUS_ALIVE || m->m.vsn[1] < 5 ||
		    strcmp(m->m.name, sl->cfg.name) == 0)
			continue;
		for (size_t j = 0; j < k; j++)
			dup |= chosen[j] == m;
		if (!dup)
			chosen[k++] = m;
	}
	for (size_t j = 0; j < k; j++)
		if (sl->cfg.out.send_to && chosen[j]->addr.ip_len)
			sl->cfg.out.send_to(sl->cfg.out.ctx, &chosen[j]->addr,
					    (const uint8_t *)e.sb.data, e.sb.size);
	sl->stats.relays += k;
	free(chosen);
	mpack_enc_free(&e);
}

static struct sl_inquery *inq_find(struct serf_layer *sl, uint32_t id, size_t *idx)
{
	/* Newest first: ids are random, a clash would favour the live one. */
	for (size_t i = sl->n_inq; i-- > 0;)
		if (sl->inq[i].id == id) {
			*idx = i;
			return &sl->inq[i];
		}
	return NULL;
}

static void inq_remove(struct serf_layer *sl, size_t i)
{
	memmove(&sl->inq[i], &sl->inq[i + 1], (sl->n_inq - i - 1) * sizeof *sl->inq);
	sl->n_inq--;
}

static int respond_inq(struct serf_layer *sl, size_t idx, const uint8_t *payload,
		       size_t len, int64_t now)
{
	struct sl_inquery q = sl->inq[idx];
	struct mpack_enc e;
	int rc;

	if (now > q.deadline) {
		inq_remove(sl, idx);
		return SERF_ESTATE;
	}
	rc = encode_query_resp(&e, SERF_MSG_QUERY_RESPONSE, q.ltime, q.id, sl->cfg.name, 0,
			       payload, len);
	if (rc)
		return rc;
	if (e.sb.size > (size_t)sl->cfg.query_response_size_limit) {
		mpack_enc_free(&e);
		return SERF_ETOOBIG;
	}
	/* Remove first: the callbacks below may re-enter. */
	inq_remove(sl, idx);
	send_to_node(sl, &q.addr, q.source, (const uint8_t *)e.sb.data, e.sb.size, now);
	relay_response(sl, q.relay_factor, &q.addr, q.source, q.ltime, q.id, 0, payload, len);
	sl->stats.responses_sent++;
	mpack_enc_free(&e);
	return SERF_OK;
}

int serf_layer_respond(struct serf_layer *sl, uint32_t id, const uint8_t *payload,
		       size_t len, int64_t now)
{
	size_t idx;

	if (!sl || (len && !payload))
		return SERF_EINVAL;
	if (!inq_find(sl, id, &idx))
		return SERF_ENOTFOUND;
	return respond_inq(sl, idx, payload, len, now);
}

/* Member as go-msgpack encodes serf.Member (the conflict response body). */
/* serf.Member's <kind>Cur, Max and Min, from min_max_cur (3 bytes of vsn). */
static void enc_versions(struct mpack_enc *e, const char *kind, const uint8_t *min_max_cur)
{
	static const char *const suffix[3] = {"Cur", "Max", "Min"};
	char key[16];
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof key, "%s%s", kind, suffix[i]);
		mpack_enc_gostr(e, key);
		mpack_enc_u64(e, min_max_cur[2 - i]);
	}
}

static void enc_member(struct mpack_enc *e, const struct sl_member *m)
{
	/* vsn[] is pmin pmax pcur dmin dmax dcur; fields go in name order */
	mpack_enc_map(e, 11);
	mpack_enc_gostr(e, "Addr");
	mpack_enc_gobytes(e, m->addr.ip, m->addr.ip_len);
	enc_versions(e, "Delegate", m->m.vsn + 3);
	mpack_enc_gostr(e, "Name");
	mpack_enc_gostr(e, m->m.name);
	mpack_enc_gostr(e, "Port");
	mpack_enc_u64(e, m->m.port);
	enc_versions(e, "Protocol", m->m.vsn);
	mpack_enc_gostr(e, "Status");
	mpack_enc_i64(e, (int64_t)m->m.status);
	mpack_enc_gostr(e, "Tags");
	mpack_enc_map(e, m->m.n_tags);
	for (size_t i = 0; i < m->m.n_tags; i++) {
		mpack_enc_gostr(e, m->m.tags[i].key);
		mpack_enc_gostr(e, m->m.tags[i].value);
	}
}

/* _serf_conflict: answer with who we think holds the name in the payload. */
static void handle_conflict_query(struct serf_layer *sl, const struct query_msg *q,
				  size_t idx, int64_t now)
{
	char node[WIRE_NAME_MAX + 1];
	const struct sl_member *m = NULL;
	struct mpack_enc e;

	if (!mpack_text_copy(q->payload.p, q->payload.len, node, sizeof node))
		return;
	if (strcmp(node, sl->cfg.name) == 0)
		return;              /* never vote about ourselves */
	m = sl_member_find(sl, node);
	mpack_enc_init(&e, SERF_MSG_CONFLICT_RESPONSE);
	if (m)
		enc_member(&e, m);
	else
		e.err |= msgpack_pack_nil(&e.pk);
	if (!e.err)
		respond_inq(sl, idx, (const uint8_t *)e.sb.data, e.sb.size, now);
	mpack_enc_free(&e);
}

/* handleQuery; true = rebroadcast. */
static bool handle_query(struct serf_layer *sl, const struct query_msg *q, int64_t now)
{
	uint64_t cur, nbuf = (uint64_t)sl->cfg.query_buffer;
	struct sl_query_slot *slot;
	uint32_t *nv;
	bool rebroadcast;
	struct wire_addr dest;
	char source[WIRE_NAME_MAX + 1];
	char *name;
	int64_t timeout_ms;
	size_t idx;

	if (!sl_ltime_plausible(sl, sl->query_clock, q->ltime))
		return false;
	sl_clock_witness(&sl->query_clock, q->ltime);
	if (q->ltime < sl->query_min_time)
		return false;
	cur = sl->query_clock;
	if (cur > nbuf && q->ltime < cur - nbuf) {
		sl->stats.queries_old++;
		return false;
	}
	slot = &sl->queries[q->ltime % nbuf];
	if (slot->used && slot->ltime == q->ltime) {
		for (size_t i = 0; i < slot->n; i++)
			if (slot->ids[i] == q->id) {
				sl->stats.queries_dup++;
				return false;
			}
	} else {
		free(slot->ids);
		memset(slot, 0, sizeof *slot);
		slot->used = true;
		slot->ltime = q->ltime;
	}
	if (slot->n >= SL_SLOT_QUERIES_MAX)
		return false;
	nv = realloc(slot->ids, (slot->n + 1) * sizeof *nv);
	if (!nv)
		return false;
	slot->ids = nv;
	slot->ids[slot->n++] = q->id;
	sl->stats.queries_in++;

	rebroadcast = !(q->flags & SERF_QUERY_FLAG_NO_BROADCAST);
	/* Even a query we filter out is news to pass on. */
	if (!should_process(sl, q))
		return rebroadcast;

	if (!make_addr(q->addr.p, q->addr.len, q->port, &dest))
		memset(&dest, 0, sizeof dest);
	mpack_text_copy(q->source_node.p, q->source_node.len, source, sizeof source);

	if (q->flags & SERF_QUERY_FLAG_ACK) {
		struct mpack_enc e;
		if (encode_query_resp(&e, SERF_MSG_QUERY_RESPONSE, q->ltime, q->id, sl->cfg.name,
				      SERF_QUERY_FLAG_ACK, NULL, 0) == SERF_OK) {
			send_to_node(sl, &dest, source, (const uint8_t *)e.sb.data, e.sb.size, now);
			relay_response(sl, q->relay_factor, &dest, source, q->ltime, q->id,
				       SERF_QUERY_FLAG_ACK, NULL, 0);
			sl->stats.acks_sent++;
			mpack_enc_free(&e);
		}
	}

	/* Remember where to answer until the query's deadline. */
	timeout_ms = q->timeout_ns / 1000000;
	if (timeout_ms < 0)
		timeout_ms = 0;
	if (timeout_ms > SL_QUERY_TIMEOUT_MAX_MS)
		timeout_ms = SL_QUERY_TIMEOUT_MAX_MS;
	if (sl->n_inq == SL_INQUERIES_MAX)
		inq_remove(sl, 0);       /* oldest goes */
	struct sl_inquery *ni = array_grow(sl->inq, &sl->cap_inq, sl->n_inq + 1, sizeof *ni, 16);
	if (!ni)
		return rebroadcast;
	sl->inq = ni;
	idx = sl->n_inq++;
	sl->inq[idx].id = q->id;
	sl->inq[idx].ltime = q->ltime;
	sl->inq[idx].addr = dest;
	memcpy(sl->inq[idx].source, source, sizeof source);
	sl->inq[idx].relay_factor = q->relay_factor;
	sl->inq[idx].deadline = now + timeout_ms;

	name = mpack_text_dup(q->name.p, q->name.len);
	if (!name)
		return rebroadcast;
	if (strncmp(name, SERF_INTERNAL_QUERY_PREFIX, strlen(SERF_INTERNAL_QUERY_PREFIX)) == 0) {
		const char *sub = name + strlen(SERF_INTERNAL_QUERY_PREFIX);
		if (strcmp(sub, "ping") == 0) {
			/* the ack above is the whole answer */
		} else if (strcmp(sub, "conflict") == 0) {
			handle_conflict_query(sl, q, idx, now);
		} else {
			struct serf_query_in in = {
				.name = name, .payload = q->payload.p,
				.payload_len = q->payload.len, .ltime = q->ltime,
				.id = q->id, .source_node = source,
			};
			if (!sl->cfg.internal_query ||
			    !sl->cfg.internal_query(sl->cfg.internal_query_ctx, sl, &in, now))
				sl_log(sl, 2, "serf: Unhandled internal query '%s'", sub);
		}
	} else {
		struct vigil_event ev;
		memset(&ev, 0, sizeof ev);
		ev.type = VIGIL_EV_QUERY;
		ev.name = name;
		ev.payload = q->payload.p;
		ev.payload_len = q->payload.len;
		ev.ltime = q->ltime;
		ev.id = q->id;
		sl_emit(sl, &ev);
	}
	free(name);
	return rebroadcast;
}

static bool name_in(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static bool name_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (!nv)
		return false;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return false;
	(*n)++;
	return true;
}

static void myq_emit(struct serf_layer *sl, const struct sl_myquery *q,
		     struct vigil_event *ev)
{
	ev->name = q->name;
	ev->id = q->id;
	ev->ltime = q->ltime;
	if (q->cb)
		q->cb(q->cb_ctx, ev);
	else
		sl_emit(sl, ev);
}

static void handle_query_response(struct serf_layer *sl, const struct query_resp_msg *r,
				  int64_t now)
{
	struct sl_myquery *q = NULL;
	char from[WIRE_NAME_MAX + 1];
	struct vigil_event ev;
	struct vigil_member tmp;
	const struct sl_member *m;

	for (size_t i = 0; i < sl->n_myq; i++)
		if (sl->myq[i].ltime == r->ltime)
			q = &sl->myq[i];
	if (!q) {
		sl_log(sl, 2, "serf: reply for non-running query (LTime: %" PRIu64 ", ID: %" PRIu32 ")",
		       r->ltime, r->id);
		return;
	}
	if (q->id != r->id) {
		sl_log(sl, 2, "serf: query reply ID mismatch (Local: %" PRIu32 ", Response: %" PRIu32 ")",
		       q->id, r->id);
		return;
	}
	if (now > q->deadline)
		return;
	if (!mpack_text_copy(r->from.p, r->from.len, from, sizeof from))
		return;
	memset(&ev, 0, sizeof ev);
	m = sl_member_find(sl, from);
	if (!m) {
		memset(&tmp, 0, sizeof tmp);
		memcpy(tmp.name, from, sizeof from);
		ev.member = &tmp;
	} else {
		ev.member = &m->m;
	}
	if (r->flags & SERF_QUERY_FLAG_ACK) {
		/* serf has no ack channel unless acks were requested */
		if (!q->ack || name_in(q->acks, q->n_acks, from))
			return;
		if (!name_push(&q->acks, &q->n_acks, from))
			return;
		ev.type = VIGIL_EV_QUERY_ACK;
	} else {
		if (name_in(q->resps, q->n_resps, from))
			return;
		if (!name_push(&q->resps, &q->n_resps, from))
			return;
		ev.type = VIGIL_EV_QUERY_RESPONSE;
		ev.payload = r->payload.p;
		ev.payload_len = r->payload.len;
	}
	myq_emit(sl, q, &ev);
}

static int encode_filter_nodes(struct mpack_enc *e, const char *const *nodes, size_t n)
{
	mpack_enc_init(e, 0);
	mpack_enc_array(e, n);
	for (size_t i = 0; i < n; i++)
		mpack_enc_gostr(e, nodes[i]);
	return e->err ? SERF_ENOMEM : SERF_OK;
}

static int encode_filter_tag(struct mpack_enc *e, const char *tag, const char *expr)
{
	mpack_enc_init(e, 1);
	mpack_enc_map(e, 2);
	mpack_enc_gostr(e, "Expr");
	mpack_enc_gostr(e, expr);
	mpack_enc_gostr(e, "Tag");
	mpack_enc_gostr(e, tag);
	return e->err ? SERF_ENOMEM : SERF_OK;
}

int serf_layer_query(struct serf_layer *sl, const char *name,
		     const uint8_t *payload, size_t len,
		     const struct vigil_query_params *p,
		     serf_query_result_fn cb, void *cb_ctx,
		     uint32_t *id_out, int64_t now)
{
	static const struct vigil_query_params none;
	const struct sl_member *self;
	struct query_msg q;
	struct mpack_enc e, f;
	int64_t timeout_ms;
	uint32_t id;
	size_t n_filters, alive = 0;
	msgpack_unpacked u;
	int rc;

	if (!sl || !name || (len && !payload))
		return SERF_EINVAL;
	if (!p)
		p = &none;
	if ((p->n_filter_nodes && !p->filter_nodes) || (p->n_filter_tags & 1) ||
	    (p->n_filter_tags && !p->filter_tags) || p->relay_factor < 0 ||
	    p->relay_factor > 255 || p->timeout_ms < 0)
		return SERF_EINVAL;
	if (sl->cfg.protocol_version < 4)
		return SERF_EPROTO;
	self = sl_member_find(sl, sl->cfg.name);
	if (!self)
		return SERF_ESTATE;   /* need our own address for replies */
	if (sl->n_myq >= SL_MYQUERIES_MAX)
		return SERF_ESTATE;
	sl_arm(sl, now);

	timeout_ms = p->timeout_ms;
	if (timeout_ms == 0) {
		/* DefaultQueryTimeout: GossipInterval * mult * ceil(log10(N+1)) */
		for (size_t i = 0; i < sl->n_members; i++)
			if (sl->members[i]->m.status == VIGIL_STATUS_ALIVE ||
			    sl->members[i]->m.status == VIGIL_STATUS_LEAVING)
				alive++;
		timeout_ms = (int64_t)sl->cfg.gossip_interval_ms * sl->cfg.query_timeout_mult *
			     bcast_node_scale(alive);
	}
	id = (uint32_t)(sl_rand(sl) & 0x7fffffff);   /* rand.Int31 */

	mpack_enc_init(&e, SERF_MSG_QUERY);
	n_filters = (p->n_filter_nodes ? 1 : 0) + p->n_filter_tags / 2;
	mpack_enc_map(&e, 11);
	mpack_enc_gostr(&e, "Addr");
	mpack_enc_gobytes(&e, self->addr.ip, self->addr.ip_len);
	mpack_enc_gostr(&e, "Filters");
	if (n_filters == 0) {
		e.err |= msgpack_pack_nil(&e.pk);
	} else {
		mpack_enc_array(&e, n_filters);
		if (p->n_filter_nodes) {
			for (size_t i = 0; i < p->n_filter_nodes; i++)
				if (!p->filter_nodes[i])
					e.err = 1;
			if (!e.err) {
				rc = encode_filter_nodes(&f, p->filter_nodes, p->n_filter_nodes);
				if (!rc)
					mpack_enc_goraw(&e, f.sb.data, f.sb.size);
				e.err |= rc;
				mpack_enc_free(&f);
			}
		}
		for (size_t i = 0; i + 1 < p->n_filter_tags && !e.err; i += 2) {
			if (!p->filter_tags[i] || !p->filter_tags[i + 1]) {
				e.err = 1;
				break;
			}
			rc = encode_filter_tag(&f, p->filter_tags[i], p->filter_tags[i + 1]);
			if (!rc)
				mpack_enc_goraw(&e, f.sb.data, f.sb.size);
			e.err |= rc;
			mpack_enc_free(&f);
		}
	}
	mpack_enc_gostr(&e, "Flags");
	mpack_enc_u64(&e, p->request_ack ? SERF_QUERY_FLAG_ACK : 0);
	mpack_enc_gostr(&e, "ID");
	mpack_enc_u64(&e, id);
	mpack_enc_gostr(&e, "LTime");
	mpack_enc_u64(&e, sl->query_clock);
	mpack_enc_gostr(&e, "Name");
	mpack_enc_gostr(&e, name);
	mpack_enc_gostr(&e, "Payload");
	mpack_enc_gobytes(&e, payload, len);
	mpack_enc_gostr(&e, "Port");
	mpack_enc_u64(&e, self->addr.port);
	mpack_enc_gostr(&e, "RelayFactor");
	mpack_enc_u64(&e, (uint64_t)p->relay_factor);
	mpack_enc_gostr(&e, "SourceNode");
	mpack_enc_gostr(&e, sl->cfg.name);
	mpack_enc_gostr(&e, "Timeout");
	mpack_enc_i64(&e, timeout_ms * 1000000);  /* time.Duration: nanoseconds */
	if (e.err) {
		mpack_enc_free(&e);
		return SERF_EINVAL;
	}
	if (e.sb.size > (size_t)sl->cfg.query_size_limit) {
		mpack_enc_free(&e);
		return SERF_ETOOBIG;
	}

	/* Register before processing locally: we may answer ourselves. */
	struct sl_myquery *nq = array_grow(sl->myq, &sl->cap_myq, sl->n_myq + 1, sizeof *nq, 8);
	if (!nq) {
		mpack_enc_free(&e);
		return SERF_ENOMEM;
	}
	sl->myq = nq;
	struct sl_myquery *mq = &sl->myq[sl->n_myq];
	memset(mq, 0, sizeof *mq);
	mq->name = strdup(name);
	if (!mq->name) {
		mpack_enc_free(&e);
		return SERF_ENOMEM;
	}
	mq->ltime = sl->query_clock;
	mq->id = id;
	mq->deadline = now + timeout_ms;
	mq->ack = p->request_ack;
	mq->cb = cb;
	mq->cb_ctx = cb_ctx;
	sl->n_myq++;
	if (id_out)
		*id_out = id;

	/* Process it as any member would, from its own encoding. */
	rc = sl_unpack((const uint8_t *)e.sb.data + 1, e.sb.size - 1, &u, NULL);
	if (rc == SERF_OK) {
		if (decode_query(&u.data, &q) == SERF_OK)
			handle_query(sl, &q, now);
		msgpack_unpacked_destroy(&u);
	}
	sl_broadcast(sl, (const uint8_t *)e.sb.data, e.sb.size);
	mpack_enc_free(&e);
	return SERF_OK;
}

/* messageRelay: relayHeader{DestAddr net.UDPAddr, DestName} + message. */
void serf_query_on_relay(struct serf_layer *sl, const uint8_t *p, size_t len, int64_t now)
{
	msgpack_unpacked u;
	size_t used;
	const msgpack_object_kv *kv, *akv;
	uint32_t n, an;
	struct wire_bytes ip = {NULL, 0}, dn = {NULL, 0};
	uint64_t port = 0;
	bool ok = true;
	struct wire_addr to;
	char dest_name[WIRE_NAME_MAX + 1];

	if (sl_unpack(p, len, &u, &used) != SERF_OK) {
		sl->stats.decode_errors++;
		return;
	}
	ok = mpack_map(&u.data, &kv, &n);
	for (uint32_t i = 0; ok && i < n; i++) {
		if (mpack_key_is(&kv[i].key, "DestAddr")) {
			ok = mpack_map(&kv[i].val, &akv, &an);
			for (uint32_t j = 0; ok && j < an; j++) {
				if (mpack_key_is(&akv[j].key, "IP"))
					ok = mp_bytes(&akv[j].val, &ip);
				else if (mpack_key_is(&akv[j].key, "Port"))
					ok = mpack_go_uint(&akv[j].val, UINT16_MAX, &port);
			}
		} else if (mpack_key_is(&kv[i].key, "DestName")) {
			ok = mp_bytes(&kv[i].val, &dn);
		}
	}
	ok = ok && make_addr(ip.p, ip.len, (uint16_t)port, &to) &&
	     mpack_text_copy(dn.p, dn.len, dest_name, sizeof dest_name);
	msgpack_unpacked_destroy(&u);
	/*
	 * serf forwards whatever follows; it only ever relays query
	 * responses, so we forward nothing else (no open UDP reflector).
	 */
	if (!ok || used >= len || p[used] != SERF_MSG_QUERY_RESPONSE ||
	    len - used > (size_t)sl->cfg.query_response_size_limit) {
		sl->stats.decode_errors++;
		return;
	}
	sl->stats.relays++;
	send_to_node(sl, &to, dest_name, p + used, len - used, now);
}

bool serf_query_on_msg(struct serf_layer *sl, const msgpack_object *o, int64_t now)
{
	struct query_msg q;
	if (decode_query(o, &q) != SERF_OK) {
		sl->stats.decode_errors++;
		return false;
	}
	return handle_query(sl, &q, now);
}

void serf_query_on_response(struct serf_layer *sl, const msgpack_object *o, int64_t now)
{
	struct query_resp_msg r;
	if (decode_query_resp(o, &r) != SERF_OK) {
		sl->stats.decode_errors++;
		return;
	}
	handle_query_response(sl, &r, now);
}

void serf_query_expire(struct serf_layer *sl, int64_t now)
{
	/* Close our queries whose time is up (one at a time: callbacks may
	 * start new queries and move the array). */
	for (size_t i = 0; i < sl->n_myq;) {
		if (now > sl->myq[i].deadline) {
			struct sl_myquery q = sl->myq[i];
			struct vigil_event ev;
			memmove(&sl->myq[i], &sl->myq[i + 1], (sl->n_myq - i - 1) * sizeof *sl->myq);
			sl->n_myq--;
			memset(&ev, 0, sizeof ev);
			ev.type = VIGIL_EV_QUERY_DONE;
			myq_emit(sl, &q, &ev);
			myquery_free(&q);
			continue;
		}
		i++;
	}
	for (size_t i = 0; i < sl->n_inq;) {
		if (now > sl->inq[i].deadline) {
			inq_remove(sl, i);
			continue;
		}
		i++;
	}
}

int64_t serf_query_next_deadline(const struct serf_layer *sl, int64_t d)
{
	/* "Past the deadline" means strictly after it, hence the +1. */
	for (size_t i = 0; i < sl->n_myq; i++)
		if (sl->myq[i].deadline + 1 < d)
			d = sl->myq[i].deadline + 1;
	for (size_t i = 0; i < sl->n_inq; i++)
		if (sl->inq[i].deadline + 1 < d)
			d = sl->inq[i].deadline + 1;
	return d;
}

void serf_query_free_all(struct serf_layer *sl)
{
	if (sl->queries)
		for (int i = 0; i < sl->cfg.query_buffer; i++)
			free(sl->queries[i].ids);
	free(sl->queries);
	for (size_t i = 0; i < sl->n_myq; i++)
		myquery_free(&sl->myq[i]);
	free(sl->myq);
	free(sl->inq);
}
