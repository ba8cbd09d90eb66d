/*
 * rpc_events.c — serf's RPC event commands: event (send a user event),
 * stream and monitor subscriptions and stop, query and respond; and the
 * delivery of the agent's events and log lines to those subscribers.
 */
#include "rpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mp.h"

void rpc_cmd_event(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	char name[VIGIL_NAME_MAX * 4];
	const char *pl = "", *np = "";
	size_t pn = 0, nl = 0;
	bool coalesce = false;
	mp_as_bytes(mp_get(b, "Name"), &np, &nl);
	mp_as_bytes(mp_get(b, "Payload"), &pl, &pn);
	mp_get_bool(b, "Coalesce", &coalesce);
	snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), np);
	alog(LV_DEBUG, "agent: Requesting user event send: %s. Coalesced: %s. Payload: \"%.*s\"",
	     name, coalesce ? "true" : "false", (int)(pn > 256 ? 256 : pn), pl);
	/* serf's UserEventSizeLimit default, checked before encoding */
	if (nl + pn > 512 || memchr(np, '\0', nl)) {
		char err[128];
		snprintf(err, sizeof err,
			 "user event exceeds configured limit of %d bytes before encoding", 512);
		alog(LV_WARN, "agent: failed to send user event: %s", err);
		rpc_reply(c, seq, err);
		return;
	}
	if (vigil_user_event(s->a->v, name, (const uint8_t *)pl, pn, coalesce) != 0) {
		alog(LV_WARN, "agent: failed to send user event: %s", name);
		rpc_reply(c, seq, "failed to send user event");
		return;
	}
	rpc_reply(c, seq, "");
}

void rpc_cmd_stream(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)s, (void)cmd;
	char type[1024];
	const msgpack_object *to = mp_get(b, "Type");
	bool bad = false;
	if (!mp_get_str(b, "Type", type, sizeof type)) {
		type[0] = '\0';
		bad = to && to->type != MSGPACK_OBJECT_NIL; /* too long or not a string */
	}
	struct handler_filter *f = NULL;
	size_t nf = 0;
	if (bad || strlen(type) != (to && to->type == MSGPACK_OBJECT_STR ? to->via.str.size : strlen(type)) ||
	    handler_parse_filter(type, &f, &nf) != 0) {
		rpc_reply(c, seq, E_INVALID_FILTER);
		return;
	}
	/* At most MAX_STREAMS, so this scan is short: registering streams
	 * used to walk an unbounded list (150k of them: 23 s of CPU). */
	for (size_t i = 0; i < c->nstreams; i++) {
		if (c->streams[i].seq == seq) {
			handler_free_filter(f, nf);
			rpc_reply(c, seq, E_STREAM_EXISTS);
			return;
		}
	}
	if (c->nstreams >= MAX_STREAMS) {
		handler_free_filter(f, nf);
		rpc_reply(c, seq, "Too many streams");
		return;
	}
	if (!c->streams) {
		c->streams = calloc(MAX_STREAMS, sizeof *c->streams);
		if (!c->streams) {
			handler_free_filter(f, nf);
			rpc_reply(c, seq, "out of memory");
			return;
		}
	}
	c->streams[c->nstreams++] = (struct stream){seq, f, nf};
	rpc_reply(c, seq, "");
}

static void send_log(struct client *c, const char *line)
{
	if (c->wlen > WBUF_STREAM_LIMIT)
		return; /* slow monitor: drop (serf: "Dropping logs") */
	msgpack_packer pk;
	rpc_reply_body(c, &pk, c->mon_seq, "");
	msgpack_pack_map(&pk, 1);
	mp_pack_kstr(&pk, "Log", line);
}

static void replay_log(void *ctx, int lv, const char *line)
{
	struct client *c = ctx;
	if (lv >= c->mon_level)
		send_log(c, line);
}

void rpc_cmd_monitor(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)s, (void)cmd;
	char lvl[32];
	if (!mp_get_str(b, "LogLevel", lvl, sizeof lvl))
		lvl[0] = '\0';
	for (char *p = lvl; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	int lv = log_level_parse(lvl);
	if (lv < 0) {
		char err[80];
		snprintf(err, sizeof err, "Unknown log level: %s", lvl);
		rpc_reply(c, seq, err);
		return;
	}
	if (c->monitor) {
		rpc_reply(c, seq, E_MONITOR_EXISTS);
		return;
	}
	rpc_reply(c, seq, "");
	c->monitor = true;
	c->mon_seq = seq;
	c->mon_level = lv;
	/* like serf's logWriter.RegisterHandler: recent history first */
	log_ring_foreach(replay_log, c);
}

void rpc_cmd_stop(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)s, (void)cmd;
	uint64_t stop = 0;
	mp_get_uint(b, "Stop", &stop);
	if (c->monitor && c->mon_seq == stop)
		c->monitor = false;
	for (size_t i = 0; i < c->nstreams; i++) {
		if (c->streams[i].seq == stop) {
			handler_free_filter(c->streams[i].f, c->streams[i].nf);
			/* keep registration order: events go out oldest stream first */
			memmove(&c->streams[i], &c->streams[i + 1],
				(c->nstreams - i - 1) * sizeof *c->streams);
			c->nstreams--;
			break;
		}
	}
	rpc_reply(c, seq, "");
}

void rpc_send_query_record(struct client *c, uint64_t seq, const char *type,
			      const char *from, const uint8_t *p, size_t n)
{
	if (c->wlen > WBUF_STREAM_LIMIT)
		return;
	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, "");
	msgpack_pack_map(&pk, 3);
	mp_pack_kstr(&pk, "Type", type);
	mp_pack_kstr(&pk, "From", from);
	mp_pack_cstr(&pk, "Payload");
	if (p)
		mp_pack_binn(&pk, p, n);
	else
		msgpack_pack_nil(&pk);
}

static void outq_event(struct rpc_server *s, enum vigil_event_type type, uint32_t id,
		       const char *from, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < s->noq; i++) {
		struct outq *q = &s->oq[i];
		if (q->lib_id != id)
			continue;
		struct client *c = rpc_find_client(s, q->client_id);
		if (c && type == VIGIL_EV_QUERY_ACK)
			rpc_send_query_record(c, q->seq, "ack", from, NULL, 0);
		else if (c && type == VIGIL_EV_QUERY_RESPONSE)
			rpc_send_query_record(c, q->seq, "response", from, p, n);
		if (!c || type == VIGIL_EV_QUERY_DONE) {
			if (c)
				rpc_send_query_record(c, q->seq, "done", "", NULL, 0);
			s->oq[i] = s->oq[--s->noq];
		}
		return;
	}
}

void rpc_cmd_query(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	char name[VIGIL_NAME_MAX * 4];
	const char *pl = NULL;
	size_t pn = 0;
	bool ack = false, have_payload;
	int64_t timeout_ns = 0, relay = 0;
	const msgpack_object *fn = mp_get(b, "FilterNodes"), *ft = mp_get(b, "FilterTags");
	const msgpack_object *po = mp_get(b, "Payload");

	if (!mp_get_str(b, "Name", name, sizeof name)) {
		const msgpack_object *no = mp_get(b, "Name");
		if (no && no->type != MSGPACK_OBJECT_NIL) {
			/* serf's QuerySizeLimit (1024 bytes) covers the name */
			rpc_reply(c, seq, "query exceeds limit of 1024 bytes");
			return;
		}
		name[0] = '\0';
	}
	have_payload = po && po->type != MSGPACK_OBJECT_NIL;
	mp_as_bytes(po, &pl, &pn);
	mp_get_bool(b, "RequestAck", &ack);
	mp_get_int(b, "Timeout", &timeout_ns);
	mp_get_int(b, "RelayFactor", &relay);

	if (strncmp(name, "_serf_", 6) == 0 &&
	    (strcmp(name, "_serf_ping") != 0 || have_payload)) {
		rpc_reply(c, seq, "Queries cannot contain the '_serf_' prefix");
		return;
	}

	size_t nn = fn && fn->type == MSGPACK_OBJECT_ARRAY ? fn->via.array.size : 0;
	size_t nt = ft && ft->type == MSGPACK_OBJECT_MAP ? ft->via.map.size : 0;
	char **nodes = calloc(nn + 1, sizeof *nodes);
	char **tags = calloc(2 * nt + 1, sizeof *tags);
	size_t kn = 0, kt = 0;
	for (size_t i = 0; nodes && i < nn; i++) {
		const char *p;
		size_t l;
		if (mp_as_bytes(&fn->via.array.ptr[i], &p, &l))
			nodes[kn++] = strndup(p, l);
	}
	for (size_t i = 0; tags && i < nt; i++) {
		const char *kp, *vp;
		size_t kl, vl;
		if (!mp_as_bytes(&ft->via.map.ptr[i].key, &kp, &kl) ||
		    !mp_as_bytes(&ft->via.map.ptr[i].val, &vp, &vl))
			continue;
		tags[kt++] = strndup(kp, kl);
		tags[kt++] = strndup(vp, vl);
	}
	struct vigil_query_params qp = {
		.filter_nodes = (const char *const *)nodes,
		.n_filter_nodes = kn,
		.filter_tags = (const char *const *)tags,
		.n_filter_tags = kt, /* strings, not pairs (issue 17) */
		.request_ack = ack,
		.timeout_ms = timeout_ns > 0 ? (int)(timeout_ns / 1000000 > 0x7fffffff
							     ? 0x7fffffff
							     : timeout_ns / 1000000)
					     : 0,
		.relay_factor = relay < 0 ? 0 : relay > 255 ? 255 : (int)relay,
	};
	if (timeout_ns > 0 && qp.timeout_ms == 0)
		qp.timeout_ms = 1;
	alog(LV_DEBUG, "agent: Requesting query send: %s. Payload: \"%.*s\"", name,
	     (int)(pn > 256 ? 256 : pn), pl ? pl : "");
	uint32_t id = 0;
	bool oom = !nodes || !tags;
	for (size_t i = 0; i < kn; i++)
		oom |= !nodes[i];
	for (size_t i = 0; i < kt; i++)
		oom |= !tags[i];
	struct outq *nq = oom ? NULL : realloc(s->oq, (s->noq + 1) * sizeof *nq);
	int rc = -1;
	if (nq) {
		s->oq = nq;
		s->in_query = true;
		rc = vigil_query(s->a->v, name, (const uint8_t *)pl, pn, &qp, &id);
		s->in_query = false;
	}
	for (size_t i = 0; i < kn; i++)
		free(nodes[i]);
	for (size_t i = 0; i < kt; i++)
		free(tags[i]);
	free(nodes);
	free(tags);
	if (rc == VIGIL_ERR_TOO_LARGE) {
		/* serf's Query error, which its CLI prints */
		alog(LV_WARN, "agent: failed to start user query: query exceeds limit of 1024 bytes");
		rpc_reply(c, seq, "query exceeds limit of 1024 bytes");
	} else if (rc != 0) {
		alog(LV_WARN, "agent: failed to start user query: %s", name);
		rpc_reply(c, seq, "failed to start query");
	} else {
		rpc_reply(c, seq, "");
		int64_t span = qp.timeout_ms > 0 ? qp.timeout_ms : 60000;
		s->oq[s->noq++] = (struct outq){id, c->id, seq, now_ms() + span + 2000};
	}
	/* now that the header is out, replay what happened during the call */
	for (size_t i = 0; i < s->nstash; i++) {
		struct stashed *st = &s->stash[i];
		if (rc == 0)
			outq_event(s, st->type, st->id, st->from, st->payload, st->len);
		free(st->payload);
	}
	free(s->stash);
	s->stash = NULL;
	s->nstash = 0;
}

void rpc_cmd_respond(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	uint64_t id = 0;
	const char *p = "";
	size_t n = 0;
	mp_get_uint(b, "ID", &id);
	mp_as_bytes(mp_get(b, "Payload"), &p, &n);
	int64_t now = now_ms();
	for (size_t i = 0; i < c->npr; i++) {
		if (c->pr[i].client_qid == id && c->pr[i].expires > now) {
			if (vigil_respond(s->a->v, c->pr[i].lib_id, (const uint8_t *)p, n) != 0)
				rpc_reply(c, seq, "failed to respond to query");
			else
				rpc_reply(c, seq, "");
			return;
		}
	}
	rpc_reply(c, seq, E_INVALID_QUERY_ID);
}

static void send_member_event(struct client *c, uint64_t seq, const struct vigil_event *ev,
			      const struct vigil_member *members, size_t n)
{
	if (!n && ev->member) {
		members = ev->member;
		n = 1;
	}
	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, "");
	msgpack_pack_map(&pk, 2);
	mp_pack_kstr(&pk, "Event", agent_event_name(ev->type));
	mp_pack_cstr(&pk, "Members");
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++)
		rpc_pack_member(&pk, &members[i]);
}

static void send_event(struct rpc_server *s, struct client *c, uint64_t seq,
		       const struct vigil_event *ev, const struct vigil_member *members,
		       size_t nmembers)
{
	(void)s;
	if (c->wlen > WBUF_STREAM_LIMIT) {
		alog(LV_WARN, "agent.ipc: Dropping event to %s", c->name);
		return;
	}
	msgpack_packer pk;
	switch (ev->type) {
	case VIGIL_EV_MEMBER_JOIN:
	case VIGIL_EV_MEMBER_LEAVE:
	case VIGIL_EV_MEMBER_FAILED:
	case VIGIL_EV_MEMBER_UPDATE:
	case VIGIL_EV_MEMBER_REAP:
		send_member_event(c, seq, ev, members, nmembers);
		return;
	case VIGIL_EV_USER:
		rpc_reply_body(c, &pk, seq, "");
		msgpack_pack_map(&pk, 5);
		mp_pack_kstr(&pk, "Event", "user");
		mp_pack_kuint(&pk, "LTime", ev->ltime);
		mp_pack_kstr(&pk, "Name", ev->name ? ev->name : "");
		mp_pack_cstr(&pk, "Payload");
		mp_pack_binn(&pk, ev->payload, ev->payload_len);
		mp_pack_kbool(&pk, "Coalesce", ev->coalesce);
		return;
	case VIGIL_EV_QUERY: {
		/* remember it so this client may "respond" to it */
		struct pending_respond *n = realloc(c->pr, (c->npr + 1) * sizeof *n);
		uint64_t qid = ++c->last_qid;
		if (n) {
			c->pr = n;
			c->pr[c->npr++] = (struct pending_respond){ev->id, qid,
								   now_ms() + RESPOND_WINDOW_MS};
		}
		rpc_reply_body(c, &pk, seq, "");
		msgpack_pack_map(&pk, 5);
		mp_pack_kstr(&pk, "Event", "query");
		mp_pack_kuint(&pk, "ID", qid);
		mp_pack_kuint(&pk, "LTime", ev->ltime);
		mp_pack_kstr(&pk, "Name", ev->name ? ev->name : "");
		mp_pack_cstr(&pk, "Payload");
		mp_pack_binn(&pk, ev->payload, ev->payload_len);
		return;
	}
	default:
		/* vigil's own events: only to streams that asked for them */
		rpc_reply_body(c, &pk, seq, "");
		msgpack_pack_map(&pk, 7);
		mp_pack_kstr(&pk, "Event", agent_event_name(ev->type));
		mp_pack_kstr(&pk, "Member", ev->member ? ev->member->name : "");
		mp_pack_kuint(&pk, "Incarnation", ev->incarnation);
		mp_pack_kuint(&pk, "Seq", ev->will_seq);
		mp_pack_cstr(&pk, "DurationMs");
		msgpack_pack_int64(&pk, ev->duration_ms);
		mp_pack_kstr(&pk, "Name", ev->name ? ev->name : "");
		mp_pack_cstr(&pk, "Payload");
		mp_pack_binn(&pk, ev->payload, ev->payload_len);
		return;
	}
}

void rpc_on_event(struct rpc_server *s, const struct vigil_event *ev,
		  const struct vigil_member *members, size_t nmembers)
{
	if (ev->type == VIGIL_EV_QUERY_ACK || ev->type == VIGIL_EV_QUERY_RESPONSE ||
	    ev->type == VIGIL_EV_QUERY_DONE) {
		const char *from = ev->member ? ev->member->name : "";
		if (s->in_query) {
			struct stashed *n = realloc(s->stash, (s->nstash + 1) * sizeof *n);
			if (!n)
				return;
			s->stash = n;
			struct stashed *st = &s->stash[s->nstash++];
			memset(st, 0, sizeof *st);
			st->type = ev->type;
			st->id = ev->id;
			snprintf(st->from, sizeof st->from, "%s", from);
			st->payload = agent_memdup(ev->payload, ev->payload_len);
			st->len = st->payload ? ev->payload_len : 0;
			return;
		}
		outq_event(s, ev->type, ev->id, from, ev->payload, ev->payload_len);
		return;
	}
	for (struct client *c = s->clients; c; c = c->next) {
		if (c->dead)
			continue;
		for (size_t i = 0; i < c->nstreams; i++) {
			const struct stream *st = &c->streams[i];
			if (handler_filter_match(st->f, st->nf, ev, false))
				send_event(s, c, st->seq, ev, members, nmembers);
		}
	}
}

void rpc_on_log(struct rpc_server *s, int lv, const char *line)
{
	for (struct client *c = s->clients; c; c = c->next)
		if (!c->dead && c->monitor && lv >= c->mon_level)
			send_log(c, line);
}
