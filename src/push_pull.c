/*
 * push_pull.c — anti-entropy: the push-pull exchange of whole member
 * lists over a stream (memberlist's pushPull), the protocol-version check
 * it makes first, and the other stream messages a peer may send us.
 */
#include "swim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void encode_local_state(struct swim *sw, bool join, struct wbuf *out)
{
	struct wire_node_state_entry *nodes = calloc(sw->n_members ? sw->n_members : 1, sizeof *nodes);
	if (!nodes) {
		out->oom = true;
		return;
	}
	for (size_t i = 0; i < sw->n_members; i++) {
		const struct member *p = member_at(sw, i);
		nodes[i].name = name_bytes(p);
		nodes[i].addr = member_addr(p);
		nodes[i].meta.p = member_meta(p);
		nodes[i].meta.len = p->meta_len;
		nodes[i].incarnation = p->incarnation;
		nodes[i].state = (uint8_t)p->state;
		memcpy(nodes[i].vsn, p->vsn, 6);
		nodes[i].vsn_len = 6;
	}
	struct wbuf user;
	wbuf_init(&user);
	if (sw->hooks.local_state)
		sw->hooks.local_state(sw->hooks.ctx, join, &user);
	wire_encode_push_pull(out, join, nodes, (uint32_t)sw->n_members, user.p,
			      (uint32_t)user.len);
	wbuf_free(&user);
	free(nodes);
}

/* Widen [max of mins, min of maxes] by one member's versions (vsn as Vsn). */
struct vsn_range {
	uint8_t maxpmin, minpmax, maxdmin, mindmax;
};

static void vsn_range_add(struct vsn_range *r, const uint8_t *vsn)
{
	if (vsn[0] > r->maxpmin)
		r->maxpmin = vsn[0];
	if (vsn[1] < r->minpmax)
		r->minpmax = vsn[1];
	if (vsn[3] > r->maxdmin)
		r->maxdmin = vsn[3];
	if (vsn[4] < r->mindmax)
		r->mindmax = vsn[4];
}

static bool vsn_range_check(struct swim *sw, const struct vsn_range *r, const char *name,
			    size_t name_len, const uint8_t *vsn)
{
	if (vsn[2] < r->maxpmin || vsn[2] > r->minpmax) {
		logf_(sw, 3, "memberlist: Failed push/pull merge: Node '%.*s' protocol version (%u) is incompatible: [%u, %u]",
		      (int)name_len, name, vsn[2], r->maxpmin, r->minpmax);
		return false;
	}
	if (vsn[5] < r->maxdmin || vsn[5] > r->mindmax) {
		logf_(sw, 3, "memberlist: Failed push/pull merge: Node '%.*s' delegate protocol version (%u) is incompatible: [%u, %u]",
		      (int)name_len, name, vsn[5], r->maxdmin, r->mindmax);
		return false;
	}
	return true;
}

/*
 * memberlist verifyProtocol: the versions every alive member (theirs and
 * ours) understands must overlap, and every member's current versions must
 * lie in that overlap; otherwise the whole push-pull is refused.  This is
 * what keeps out a memberlist node without serf's delegate (versions
 * 0/0/0).  Our own members without version information (all zero) are
 * left out: memberlist never has such entries, and counting them would
 * wedge every later push-pull.
 */
static bool verify_protocol(struct swim *sw, const struct wire_push_pull *pp)
{
	static const uint8_t none[6];
	struct vsn_range r = { 0, UINT8_MAX, 0, UINT8_MAX };
	for (uint32_t i = 0; i < pp->n_nodes; i++)
		if (pp->nodes[i].state == WIRE_STATE_ALIVE && pp->nodes[i].vsn_len >= 6)
			vsn_range_add(&r, pp->nodes[i].vsn);
	for (size_t i = 0; i < sw->n_members; i++) {
		const struct member *m = member_of(sw, sw->members[i]);
		if (m->state == SWIM_ALIVE && memcmp(m->vsn, none, 6) != 0)
			vsn_range_add(&r, m->vsn);
	}
	for (uint32_t i = 0; i < pp->n_nodes; i++) {
		const struct wire_node_state_entry *n = &pp->nodes[i];
		uint8_t vsn[6] = { 0 };
		if (n->vsn_len >= 6)
			memcpy(vsn, n->vsn, 6);
		if (!vsn_range_check(sw, &r, (const char *)n->name.p, n->name.len, vsn))
			return false;
	}
	for (size_t i = 0; i < sw->n_members; i++) {
		const struct member *m = member_of(sw, sw->members[i]);
		const char *name = member_name(m);
		if (memcmp(m->vsn, none, 6) != 0 &&
		    !vsn_range_check(sw, &r, name, strlen(name), m->vsn))
			return false;
	}
	return true;
}

/* Merge a push-pull's state; false (nothing merged) if verify_protocol
 * refuses it. */
static bool merge_remote_state(struct swim *sw, const struct wire_push_pull *pp, int64_t now)
{
	if (!verify_protocol(sw, pp))
		return false;
	for (uint32_t i = 0; i < pp->n_nodes; i++) {
		const struct wire_node_state_entry *n = &pp->nodes[i];
		switch (n->state) {
		case WIRE_STATE_ALIVE: {
			struct wire_alive a = { n->incarnation, n->name, n->addr, n->meta, {0}, n->vsn_len };
			memcpy(a.vsn, n->vsn, sizeof a.vsn);
			handle_alive(sw, &a, subject_hash(a.node), now);
			break;
		}
		case WIRE_STATE_LEFT: {
			struct wire_accuse d = { n->incarnation, n->name, n->name };
			handle_dead(sw, &d, subject_hash(d.node), now);
			break;
		}
		case WIRE_STATE_DEAD:
		case WIRE_STATE_SUSPECT: {
			/* as memberlist: a remote "dead" only makes us suspect, so
			 * the member gets its chance to refute */
			struct wire_accuse s = { n->incarnation, n->name,
						 name_bytes(sw->self) };
			handle_suspect(sw, &s, subject_hash(s.node), now);
			break;
		}
		default:
			break;
		}
	}
	if (pp->user_state.len && sw->hooks.merge_remote_state)
		sw->hooks.merge_remote_state(sw->hooks.ctx, pp->user_state.p, pp->user_state.len,
					     pp->join);
	return true;
}

void start_push_pull(struct swim *sw, const struct wire_addr *to, bool join)
{
	if (!sw->hooks.send_stream || sw->n_streams == MAX_PENDING_STREAMS)
		return;
	struct wbuf out;
	wbuf_init(&out);
	encode_local_state(sw, join, &out);
	if (!out.oom) {
		struct pending_stream *ps = &sw->streams[sw->n_streams++];
		memset(ps, 0, sizeof *ps);
		ps->cookie = ++sw->next_cookie;
		ps->join = join;
		ps->to = *to;
		sw->stats.push_pulls++;
		sw->hooks.send_stream(sw->hooks.ctx, to, out.p, out.len, ps->cookie);
	}
	wbuf_free(&out);
}

int swim_handle_stream(struct swim *sw, const struct wire_addr *from,
		       const uint8_t *msg, size_t len, struct wbuf *reply, int64_t now)
{
	sw->clock = now;
	if (len == 0)
		return WIRE_ETRUNC;
	sw->stats.bytes_in += len;
	switch (msg[0]) {
	case WIRE_PUSH_PULL: {
		struct wire_push_pull pp;
		int rc = wire_decode_push_pull(msg, len, &pp);
		if (rc != WIRE_OK) {
			sw->stats.decode_errors++;
			return rc;
		}
		/* answer with our state as it was before merging theirs, like memberlist */
		encode_local_state(sw, pp.join, reply);
		pp_vouching(sw, from, true, false);
		merge_remote_state(sw, &pp, now);
		pp_vouching(sw, NULL, false, false);
		wire_push_pull_free(&pp);
		return WIRE_OK;
	}
	case WIRE_USER: {
		struct wire_bytes payload;
		int rc = wire_decode_stream_user(msg, len, &payload);
		if (rc != WIRE_OK) {
			sw->stats.decode_errors++;
			return rc;
		}
		if (sw->hooks.on_user_msg)
			sw->hooks.on_user_msg(sw->hooks.ctx, payload.p, payload.len);
		return WIRE_OK;
	}
	case WIRE_PING: {
		struct wire_msg m;
		int rc = wire_decode(msg, len, &m);
		if (rc != WIRE_OK) {
			sw->stats.decode_errors++;
			return rc;
		}
		/* memberlist: a ping for another node (who used to live at
		 * this address) gets no ack */
		if (m.u.ping.node.len && !bytes_eq_str(m.u.ping.node, member_name(sw->self)))
			return WIRE_OK;
		struct wire_msg ack;
		memset(&ack, 0, sizeof ack);
		ack.type = WIRE_ACK;
		ack.u.ack.seq = m.u.ping.seq;
		return wire_encode(reply, &ack);
	}
	case WIRE_COMPRESS: {
		struct wbuf plain;
		wbuf_init(&plain);
		int rc = wire_decompress(msg, len, &plain);
		if (rc == WIRE_OK && plain.len && plain.p[0] != WIRE_COMPRESS)
			rc = swim_handle_stream(sw, from, plain.p, plain.len, reply, now);
		else if (rc == WIRE_OK)
			rc = WIRE_ENEST;
		if (rc != WIRE_OK)
			sw->stats.decode_errors++;
		wbuf_free(&plain);
		return rc;
	}
	default:
		sw->stats.decode_errors++;
		return WIRE_ETYPE;
	}
}

void swim_handle_stream_reply(struct swim *sw, uint64_t cookie,
			      const uint8_t *msg, size_t len, int64_t now)
{
	sw->clock = now;
	size_t i;
	for (i = 0; i < sw->n_streams; i++)
		if (sw->streams[i].cookie == cookie)
			break;
	if (i == sw->n_streams)
		return;
	struct pending_stream ps = sw->streams[i];
	sw->streams[i] = sw->streams[--sw->n_streams];
	if (ps.ping) {
		tcp_ping_reply(sw, &ps, msg, len, now);
		return;
	}
	bool ok = false;
	struct wbuf plain;
	wbuf_init(&plain);
	if (msg && len > 0 && msg[0] == WIRE_COMPRESS &&
	    wire_decompress(msg, len, &plain) == WIRE_OK) {
		msg = plain.p;
		len = plain.len;
	}
	pp_vouching(sw, &ps.to, false, ps.join);
	if (msg && len > 0 && msg[0] == WIRE_PUSH_PULL) {
		struct wire_push_pull pp;
		if (wire_decode_push_pull(msg, len, &pp) == WIRE_OK) {
			sw->stats.bytes_in += len;
			ok = merge_remote_state(sw, &pp, now);
			wire_push_pull_free(&pp);
		} else {
			sw->stats.decode_errors++;
		}
	}
	wbuf_free(&plain);
	pp_vouching(sw, NULL, false, false);
	if (ps.join && sw->hooks.join_result)
		sw->hooks.join_result(sw->hooks.ctx, &ps.to, ok);
}

void swim_join(struct swim *sw, const struct wire_addr *seeds, size_t n, int64_t now)
{
	sw->clock = now;
	for (size_t i = 0; i < n; i++)
		start_push_pull(sw, &seeds[i], true);
}

/* memberlist's pushPullScale: back off above 32 members. */
int64_t push_pull_interval(const struct swim *sw)
{
	int64_t iv = sw->cfg.push_pull_interval_ms;
	if (sw->n_alive > 32) {
		double mult = ceil(log2((double)sw->n_alive) - log2(32.0)) + 1.0;
		iv = (int64_t)(iv * mult);
	}
	return iv;
}
