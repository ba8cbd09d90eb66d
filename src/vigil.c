/*
 * vigil.c — the public API (include/vigil.h): glue between the transport
 * (sockets), the keyring (crypto.h), the SWIM state machine (swim.h) and the
 * serf layer (serf.h).  The encrypted data path between SWIM and the
 * sockets is in datapath.c, joining in join.c, serf's key manager in
 * keymanager.c; vigil_internal.h is the handle they share.
 *
 * Time is CLOCK_MONOTONIC in milliseconds, read once per API entry point
 * and handed to every layer, so all layers agree on "now" within a step.
 */
#include "vigil_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datapath.h"
#include "join.h"
#include "keymanager.h"
#include "logline.h"
#include "safefile.h"

/* serf's BroadcastTimeout: longest we wait for our leave intent to gossip. */
#define LEAVE_BROADCAST_MAX_MS 5000
/* Step cadence when vigil_pollfds could not report every fd. */
#define TRUNCATED_POLL_MS 10

/* ------------------------------------------------------------------ util */

int64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * CLOCK_BOOTTIME also advances while the machine is suspended, which
 * CLOCK_MONOTONIC does not; stall detection uses it so a laptop lid or a
 * VM suspend counts as a pause just like SIGSTOP does.
 */
static int64_t boot_clock_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
		return clock_ms();
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vlog_to(struct vigil *v, struct ratelimit *rl, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logline_vemit(v->cfg.on_log, v->cfg.ctx, rl, v->now, LOGLINE_MAX, level, fmt, ap);
	va_end(ap);
}

static void layer_log(void *ctx, int level, const char *msg)
{
	struct vigil *v = ctx;
	if (v->cfg.on_log)
		v->cfg.on_log(v->cfg.ctx, level, msg);
}

static uint64_t random_seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s || s == 0)
		s = (uint64_t)clock_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
	return s ? s : 1;
}

const char *vigil_status_name(enum vigil_status s)
{
	switch (s) {
	case VIGIL_STATUS_NONE: return "none";
	case VIGIL_STATUS_ALIVE: return "alive";
	case VIGIL_STATUS_LEAVING: return "leaving";
	case VIGIL_STATUS_LEFT: return "left";
	case VIGIL_STATUS_FAILED: return "failed";
	}
	return "unknown";
}

const char *vigil_event_name(enum vigil_event_type t)
{
	switch (t) {
	case VIGIL_EV_MEMBER_JOIN: return "member-join";
	case VIGIL_EV_MEMBER_LEAVE: return "member-leave";
	case VIGIL_EV_MEMBER_FAILED: return "member-failed";
	case VIGIL_EV_MEMBER_UPDATE: return "member-update";
	case VIGIL_EV_MEMBER_REAP: return "member-reap";
	case VIGIL_EV_USER: return "user";
	case VIGIL_EV_QUERY: return "query";
	case VIGIL_EV_QUERY_ACK: return "query-ack";
	case VIGIL_EV_QUERY_RESPONSE: return "query-response";
	case VIGIL_EV_QUERY_DONE: return "query-done";
	case VIGIL_EV_MEMBER_WILL: return "member-will";
	case VIGIL_EV_WILL_REVOKED: return "will-revoked";
	case VIGIL_EV_WILL_UNDELIVERABLE: return "will-undeliverable";
	case VIGIL_EV_MEMBER_RETURNED: return "member-returned";
	case VIGIL_EV_LOCAL_STALL: return "local-stall";
	}
	return "unknown";
}

/* ------------------------------------------------------------- swim hooks */

static void h_on_member(void *ctx, enum swim_member_event ev, const struct swim_member *m)
{
	struct vigil *v = ctx;
	/* swim_new reports ourselves before the serf layer exists; vigil_create
	 * replays swim's member list into the layer once it does. */
	if (v->sl)
		serf_layer_on_member(v->sl, ev, m, v->now);
	if (v->will)
		will_on_member(v->will, ev, m, v->now);
	if (v->snap)
		snapshotter_mark_dirty(v->snap);
	/* serf handleNodeLeave: forget a failed or departed node's samples */
	if (v->coords && ev == SWIM_EV_LEAVE)
		coord_client_forget(v->coords, m->name);
}

/* memberlist PingDelegate, as serf's ping_delegate.go. */
static size_t h_ack_payload(void *ctx, uint8_t *buf, size_t cap)
{
	struct vigil *v = ctx;
	return coord_ack_payload(&v->coords->coord, buf, cap);
}

static void h_ping_complete(void *ctx, const char *name, int64_t rtt_us,
			    const uint8_t *payload, size_t len)
{
	struct vigil *v = ctx;
	char err[160];
	if (coord_client_on_ack(v->coords, name, rtt_us, payload, len, err, sizeof err) != 0)
		vlog(v, 0, "serf: Rejected coordinate from %s: %s", name, err);
}

static int64_t h_clock_us(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The wall clock: what members on different hosts share, so their probe
 * schedules agree on the period (probe_ring.h; NTP keeps it within a few
 * ms, well inside the probe interval). */
static int64_t h_shared_clock_ms(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rejoin_next(struct vigil *v);

static void h_on_user_msg(void *ctx, const uint8_t *p, size_t len)
{
	struct vigil *v = ctx;
	if (v->sl)
		serf_layer_on_user_msg(v->sl, p, len, v->now);
}

static void h_local_state(void *ctx, bool join, struct wbuf *out)
{
	struct vigil *v = ctx;
	if (v->sl)
		serf_layer_local_state(v->sl, join, out);
}

static void h_merge_remote_state(void *ctx, const uint8_t *p, size_t len, bool join)
{
	struct vigil *v = ctx;
	if (v->sl)
		serf_layer_merge_remote_state(v->sl, p, len, join, v->now);
}

static void h_join_result(void *ctx, const struct wire_addr *seed, bool ok)
{
	struct vigil *v = ctx;
	if (v->rejoin_active && transport_addr_equal(seed, &v->rejoin_addr)) {
		/* serf handleRejoin: a plain memberlist join, one node at a time */
		const struct snap_node *nd = &v->rejoin[v->rejoin_next - 1];
		v->rejoin_active = false;
		if (ok) {
			vlog(v, 1, "serf: Re-joined to previously known node: %s: %s",
			     nd->name, nd->addr);
			free(v->rejoin);
			v->rejoin = NULL;
			v->n_rejoin = v->rejoin_next = 0;
		} else {
			rejoin_next(v);
		}
		return;
	}
	join_seed_result(v, seed, ok);
}

/* -------------------------------------------------------------- snapshot */

/* Bring the snapshot file up to date (leave: record a graceful leave). */
static int snapshot_update(struct vigil *v, bool leave)
{
	struct vigil_member *m = NULL;
	size_t n = 0;
	uint64_t c, e, q;
	serf_layer_clocks(v->sl, &c, &e, &q);
	snapshotter_note_clocks(v->snap, c, e, q);
	if (serf_layer_members(v->sl, &m, &n) != SERF_OK) {
		vlog(v, 3, "vigil: snapshot: cannot read the member table");
		return SNAP_ENOMEM;
	}
	int rc = leave ? snapshotter_leave(v->snap, m, n, v->now)
		       : snapshotter_write(v->snap, m, n, v->now);
	serf_layer_members_free(m, n);
	return rc;
}

/* Try the next previously alive node until one answers (serf handleRejoin). */
static void rejoin_next(struct vigil *v)
{
	v->rejoin_active = false;
	while (v->rejoin_next < v->n_rejoin) {
		const struct snap_node *nd = &v->rejoin[v->rejoin_next++];
		struct wire_addr a;
		if (transport_parse_addr(nd->addr, TRANSPORT_DEFAULT_PORT, false, &a) != 0) {
			vlog(v, 2, "serf: Cannot re-join %s: bad address %s", nd->name, nd->addr);
			continue;
		}
		/* serf skips only its own name; our own address (say, we were
		 * renamed) would "succeed" without reaching anyone */
		const struct swim_member *self = swim_self(v->sw);
		if (self && transport_addr_equal(&self->addr, &a)) {
			vlog(v, 0, "vigil: not re-joining %s at our own address %s", nd->name,
			     nd->addr);
			continue;
		}
		vlog(v, 1, "serf: Attempting re-join to previously known node: %s: %s",
		     nd->name, nd->addr);
		v->rejoin_active = true;
		v->rejoin_addr = a;
		swim_join(v->sw, &a, 1, v->now);
		return;
	}
	if (v->n_rejoin)
		vlog(v, 2, "serf: Failed to re-join any previously known node");
	free(v->rejoin);
	v->rejoin = NULL;
	v->n_rejoin = v->rejoin_next = 0;
}

/* Open the snapshot, restore the clocks, keep the nodes to re-join. */
static void snapshot_open(struct vigil *v, const struct vigil_config *cfg)
{
	struct snapshotter_config sc = {
		.path = cfg->snapshot_path,
		.self = cfg->name,
		.rejoin_after_leave = cfg->rejoin_after_leave,
		.log = layer_log,
		.log_ctx = v,
	};
	struct snap_state st;
	v->snap = snapshotter_open(&sc, &st);
	if (!v->snap)
		return;
	if (st.clock || st.event_clock || st.query_clock || st.n_alive)
		serf_layer_restore_clocks(v->sl, st.clock, st.event_clock, st.query_clock);
	/* every node but ourselves, in random order (serf: no hot shards) */
	size_t k = 0;
	for (size_t i = 0; i < st.n_alive; i++)
		if (strcmp(st.alive[i].name, cfg->name) != 0)
			st.alive[k++] = st.alive[i];
	uint64_t r = random_seed();
	for (size_t i = k; i > 1; i--) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		size_t j = (size_t)(r % i);
		struct snap_node t = st.alive[i - 1];
		st.alive[i - 1] = st.alive[j];
		st.alive[j] = t;
	}
	if (k) {
		v->rejoin = st.alive;
		v->n_rejoin = k;
		st.alive = NULL;
	}
	snap_state_free(&st);
}

/* ------------------------------------------------------------ serf outbox */

static void o_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	struct vigil *v = ctx;
	if (v->sw)
		swim_broadcast_user(v->sw, msg, len);
}

static void o_send_to(void *ctx, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	struct vigil *v = ctx;
	if (v->sw)
		swim_send_user(v->sw, to, msg, len);
}

static void o_set_meta(void *ctx, const uint8_t *meta, size_t len)
{
	struct vigil *v = ctx;
	if (v->sw && swim_set_meta(v->sw, meta, len, v->now) != 0)
		vlog(v, 3, "vigil: node meta of %zu bytes rejected", len);
}

static void o_reconnect(void *ctx, const char *name, const struct wire_addr *addr)
{
	struct vigil *v = ctx;
	char a[80];
	vlog(v, 1, "vigil: attempting reconnect to %s %s", name,
	     transport_format_addr(addr, a, sizeof a));
	if (v->sw)
		swim_join(v->sw, addr, 1, v->now);
}

/* ------------------------------------------------------------ will outbox */

static void w_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	struct vigil *v = ctx;
	if (v->sl && serf_layer_ext_broadcast(v->sl, msg, len) != SERF_OK)
		vlog(v, 2, "vigil: will message of %zu bytes not broadcast", len);
}

static void w_send_to(void *ctx, const struct wire_addr *to, const uint8_t *msg, size_t len)
{
	struct vigil *v = ctx;
	if (v->sl && serf_layer_ext_send(v->sl, to, msg, len) != SERF_OK)
		vlog(v, 2, "vigil: will message of %zu bytes not sent", len);
}

static int w_user_event(void *ctx, const char *name, const uint8_t *payload, size_t len,
			int64_t now)
{
	struct vigil *v = ctx;
	return v->sl ? serf_layer_user_event(v->sl, name, payload, len, false, now) : -1;
}

/* ------------------------------------------------------- create/destroy */

/*
 * Every event passes here.  The caller's on_event runs only from inside
 * vigil_step and never re-entrantly.  Events raised anywhere else -- inside
 * vigil_create (the caller has no handle yet), inside another API call
 * (vigil_user_event delivers our own event at once, vigil_set_tags our own
 * update), or by a call made from within on_event -- are held (deep
 * copies) and delivered, in order, by the next vigil_step;
 * vigil_timeout_ms returns 0 while any are held.
 */
static void v_on_event(void *ctx, const struct vigil_event *ev)
{
	struct vigil *v = ctx;
	if (!v->ready || !v->in_step || v->in_callback) {
		if (!evqueue_push(&v->held, ev))
			vlog(v, 3, "vigil: out of memory: a %s event is lost",
			     vigil_event_name(ev->type));
		return;
	}
	v->in_callback = true;
	v->cfg.on_event(v->cfg.ctx, ev);
	v->in_callback = false;
}

/* Deliver the held events (those held so far: new ones wait for the next
 * step, so a callback that raises an event each time cannot spin here). */
static void deliver_held(struct vigil *v)
{
	if (!v->held.head)
		return;
	v->in_callback = true;
	evqueue_drain(&v->held, v->cfg.on_event, v->cfg.ctx);
	v->in_callback = false;
}

void vigil_config_default(struct vigil_config *cfg)
{
	struct swim_config sc;
	memset(cfg, 0, sizeof *cfg);
	swim_config_default(&sc);
	/* serf's default node name is the host name */
	if (gethostname(cfg->name, sizeof cfg->name - 1) != 0 || !cfg->name[0])
		snprintf(cfg->name, sizeof cfg->name, "vigil");
	cfg->name[sizeof cfg->name - 1] = '\0';
	snprintf(cfg->bind_addr, sizeof cfg->bind_addr, "0.0.0.0");
	cfg->bind_port = TRANSPORT_DEFAULT_PORT;
	cfg->probe_interval_ms = sc.probe_interval_ms;
	cfg->probe_timeout_ms = sc.probe_timeout_ms;
	cfg->gossip_interval_ms = sc.gossip_interval_ms;
	cfg->gossip_nodes = sc.gossip_nodes;
	cfg->indirect_checks = sc.indirect_checks;
	cfg->retransmit_mult = sc.retransmit_mult;
	cfg->suspicion_mult = sc.suspicion_mult;
	cfg->suspicion_max_timeout_mult = sc.suspicion_max_timeout_mult;
	cfg->push_pull_interval_ms = sc.push_pull_interval_ms;
	cfg->awareness_max_multiplier = sc.awareness_max_multiplier;
	cfg->reap_interval_ms = 24LL * 3600 * 1000;
	cfg->gossip_verify_incoming = true;
	cfg->gossip_verify_outgoing = true;
	cfg->protocol_version = 4;
}

static bool is_wildcard(const struct wire_addr *a)
{
	for (int i = 0; i < a->ip_len; i++)
		if (a->ip[i])
			return false;
	return true;
}

/* Keyring from cfg.keys and/or cfg.keyring_file (serf agent semantics:
 * an existing keyring file wins; given keys are installed into it). */
static int setup_keyring(struct vigil *v, const struct vigil_config *cfg,
			 char *err, size_t errlen)
{
	struct stat st;
	bool have_file = cfg->keyring_file && cfg->keyring_file[0] &&
			 stat(cfg->keyring_file, &st) == 0;
	int rc;
	if (have_file) {
		rc = vigil_keyring_load_file(cfg->keyring_file, &v->kr);
		if (rc != VIGIL_CRYPTO_OK)
			return err_to_buf(err, errlen, VIGIL_ERR_KEY, "keyring file %s: %s",
					  cfg->keyring_file, vigil_crypto_strerror(rc));
	}
	if (cfg->n_keys) {
		if (!v->kr && !(v->kr = vigil_keyring_new()))
			return err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < cfg->n_keys; i++) {
			if (!cfg->keys[i])
				continue;
			rc = vigil_keyring_add_b64(v->kr, cfg->keys[i]);
			if (rc != VIGIL_CRYPTO_OK)
				return err_to_buf(err, errlen, VIGIL_ERR_KEY, "key %zu: %s", i,
						  vigil_crypto_strerror(rc));
		}
		if (vigil_keyring_count(v->kr) == 0) {
			vigil_keyring_free(v->kr);
			v->kr = NULL;
		} else if (v->keyring_file && !have_file) {
			rc = vigil_keyring_save_file(v->kr, v->keyring_file);
			if (rc != VIGIL_CRYPTO_OK)
				vlog(v, 2, "vigil: cannot write keyring file %s: %s",
				     v->keyring_file, vigil_crypto_strerror(rc));
		}
	}
	return 0;
}

/* vigil_create's sockets, and the address we advertise (memberlist
 * FinalAdvertiseAddr); 0 or an error code, err filled. */
static int create_transport(struct vigil *v, const struct vigil_config *cfg,
			    struct wire_addr *bound, struct wire_addr *adv, char *err, size_t errlen)
{
	struct transport_config tc;
	transport_config_default(&tc);
	snprintf(tc.bind_addr, sizeof tc.bind_addr, "%s", cfg->bind_addr[0] ? cfg->bind_addr : "0.0.0.0");
	tc.bind_port = cfg->bind_port;
	struct transport_hooks th = {
		.ctx = v,
		.on_packet = datapath_on_packet,
		.on_stream = datapath_on_stream,
		.on_stream_reply = datapath_on_stream_reply,
		.on_unreachable = datapath_on_unreachable,
		.log = layer_log,
	};
	if (transport_open(&tc, &th, &v->tr, err, errlen) != 0) {
		/* a bind address that is no IP literal, or a socket that failed */
		struct wire_addr ba;
		return transport_parse_addr(tc.bind_addr, 0, false, &ba) == 0 ? VIGIL_ERR_SOCKET
									      : VIGIL_ERR_ADDRESS;
	}

	transport_local_addr(v->tr, bound);
	if (cfg->advertise_addr[0]) {
		if (transport_parse_addr(cfg->advertise_addr, bound->port, true, adv) != 0)
			return err_to_buf(err, errlen, VIGIL_ERR_ADDRESS, "bad advertise address %s",
					  cfg->advertise_addr);
	} else if (is_wildcard(bound)) {
		transport_default_advertise(adv);
	} else {
		*adv = *bound;
	}
	adv->port = cfg->advertise_port ? cfg->advertise_port : bound->port;
	if (adv->ip_len == 16 && transport_family(v->tr) == AF_INET)
		vlog(v, 2, "vigil: advertising IPv6 while bound to IPv4 only");
	return 0;
}

/* The SWIM layer's configuration from the caller's; 0 or an error code. */
static int swim_config_for(struct vigil *v, const struct vigil_config *cfg,
			   const struct wire_addr *adv, struct swim_config *sc, char *err,
			   size_t errlen)
{
	int pv = v->cfg.protocol_version;
	swim_config_default(sc);
	snprintf(sc->name, sizeof sc->name, "%s", cfg->name);
	sc->addr = *adv;
	int ml = serf_encode_tags(cfg->tags, cfg->n_tags, pv, sc->meta, sizeof sc->meta);
	if (ml < 0)
		return err_to_buf(err, errlen, VIGIL_ERR_TOO_LARGE,
				  "tags do not fit in %d bytes of node meta", WIRE_META_MAX);
	sc->meta_len = (uint16_t)ml;
	sc->vsn[5] = (uint8_t)pv; /* DelegateProtocolVersion = serf protocol */
#define TAKE(field) if (cfg->field > 0) sc->field = cfg->field
	TAKE(probe_interval_ms);
	TAKE(probe_timeout_ms);
	TAKE(gossip_interval_ms);
	TAKE(gossip_nodes);
	TAKE(indirect_checks);
	TAKE(retransmit_mult);
	TAKE(suspicion_mult);
	TAKE(suspicion_max_timeout_mult);
	TAKE(awareness_max_multiplier);
	TAKE(reap_interval_ms);
#undef TAKE
	/* 0 is meaningful here: it disables periodic push-pull */
	if (cfg->push_pull_interval_ms >= 0)
		sc->push_pull_interval_ms = cfg->push_pull_interval_ms;
	if (v->kr && cfg->gossip_verify_outgoing) {
		/* memberlist shrinks its packets by the encryption overhead */
		sc->udp_buffer_size -= (int)(vigil_encrypted_len(
			vigil_encryption_version(sc->vsn[2]), 0));
	}
	sc->seed = random_seed();
	v->enc_version = vigil_encryption_version(sc->vsn[2]);
	return 0;
}

/* The serf layer over SWIM; 0 or an error code. */
static int create_serf_layer(struct vigil *v, const struct vigil_config *cfg,
			     int gossip_interval_ms, char *err, size_t errlen)
{
	int pv = v->cfg.protocol_version;
	struct serf_layer_config lc;
	serf_layer_config_default(&lc);
	snprintf(lc.name, sizeof lc.name, "%s", cfg->name);
	lc.tags = cfg->tags;
	lc.n_tags = cfg->n_tags;
	lc.protocol_version = pv;
	lc.on_event = cfg->on_event ? v_on_event : NULL;
	lc.event_ctx = v;
	lc.out = (struct serf_outbox){
		.ctx = v,
		.broadcast = o_broadcast,
		.send_to = o_send_to,
		.set_meta = o_set_meta,
		.reconnect = o_reconnect,
		.log = layer_log,
	};
	lc.gossip_interval_ms = gossip_interval_ms;
	lc.internal_query = keymanager_query;
	lc.internal_query_ctx = v;
	if (cfg->reap_interval_ms > 0) {
		lc.reconnect_timeout_ms = cfg->reap_interval_ms;
		lc.tombstone_timeout_ms = cfg->reap_interval_ms;
	}
	lc.seed = random_seed();
	v->sl = serf_layer_new(&lc);
	if (!v->sl)
		return err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "cannot create the serf layer");
	return 0;
}

/* Last wills, riding on serf extension messages, their state next to the
 * snapshot; 0 or an error code. */
static int create_will(struct vigil *v, const struct vigil_config *cfg, char *err,
		       size_t errlen)
{
	struct will_config wc;
	will_config_default(&wc);
	snprintf(wc.name, sizeof wc.name, "%s", cfg->name);
	if (cfg->reap_interval_ms > 0)
		wc.reap_interval_ms = cfg->reap_interval_ms;
	/* The will state lives next to the snapshot: same lifetime, same dir. */
	if (cfg->snapshot_path && cfg->snapshot_path[0]) {
		size_t pl = strlen(cfg->snapshot_path) + sizeof ".will";
		if (!(v->will_path = malloc(pl)))
			return err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "out of memory");
		snprintf(v->will_path, pl, "%s.will", cfg->snapshot_path);
	}
	wc.state_path = v->will_path;
	wc.key_path = cfg->will_key_file; /* else next to the will state */
	if (cfg->will_key_seed) {
		wc.has_key_seed = true;
		memcpy(wc.key_seed, cfg->will_key_seed, sizeof wc.key_seed);
	}
	wc.on_event = cfg->on_event ? v_on_event : NULL;
	wc.event_ctx = v;
	wc.out = (struct will_outbox){
		.ctx = v,
		.broadcast = w_broadcast,
		.send_to = w_send_to,
		.user_event = w_user_event,
		.log = layer_log,
	};
	v->will = will_new(&wc, v->now);
	if (!v->will) {
		/* with a state file, its signing key lives next to it: a
		 * directory we cannot write is the usual cause */
		return v->will_path
			? err_to_buf(err, errlen, VIGIL_ERR_IO, "cannot create the will component "
				     "for %s (its signing key file: see the log)", v->will_path)
			: err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "cannot create the will component "
				     "(out of memory)");
	}
	if (v->will_path) {
		int wr = will_load(v->will, v->will_path);
		if (wr == WILL_EFORMAT) {
			/* Corrupt: start fresh, but keep the evidence out of the
			 * way of the next save (as the snapshot does). */
			char *aside = safefile_move_aside(v->will_path, ".corrupt");
			vlog(v, 3, "vigil: will state %s is corrupt; %s%s, starting fresh",
			     v->will_path, aside ? "moved it to " : "could not move it aside: ",
			     aside ? aside : strerror(errno));
			free(aside);
		} else if (wr != WILL_OK && wr != WILL_ENOENT) {
			/* unreadable (I/O, memory): fresh state; say so, keep going */
			vlog(v, 3, "vigil: will state %s unreadable (%d); starting fresh",
			     v->will_path, wr);
		}
	}
	struct serf_extension ext;
	will_extension(v->will, &ext);
	serf_layer_set_extension(v->sl, &ext);
	return 0;
}

int vigil_create(const struct vigil_config *cfg, vigil_t **out, char *err, size_t errlen)
{
	int rc;
	if (!cfg || !out)
		return err_to_buf(err, errlen, VIGIL_ERR_INVALID, "vigil_create: NULL argument");
	*out = NULL;
	if (!cfg->name[0] || strnlen(cfg->name, sizeof cfg->name) > WIRE_NAME_MAX)
		return err_to_buf(err, errlen, VIGIL_ERR_INVALID, "node name must be 1..%d bytes",
				  WIRE_NAME_MAX);
	int pv = cfg->protocol_version ? cfg->protocol_version : 4;
	if (pv < 2 || pv > 5)
		return err_to_buf(err, errlen, VIGIL_ERR_RANGE, "serf protocol version %d not in 2..5",
				  pv);

	struct vigil *v = calloc(1, sizeof *v);
	if (!v)
		return err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "out of memory");
	v->cfg = *cfg;
	v->cfg.protocol_version = pv;
	/* Not retained: the caller's arrays may go away after create. */
	v->cfg.keys = NULL;
	v->cfg.n_keys = 0;
	v->cfg.tags = NULL;
	v->cfg.n_tags = 0;
	v->cfg.keyring_file = NULL;
	v->cfg.snapshot_path = NULL;
	v->now = v->last_step = clock_ms();
	if (cfg->keyring_file && cfg->keyring_file[0] &&
	    !(v->keyring_file = strdup(cfg->keyring_file))) {
		rc = err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "out of memory");
		goto fail;
	}

	if (!(v->res = resolver_new())) {
		rc = err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "out of memory");
		goto fail;
	}
	v->crypt_cap = TRANSPORT_UDP_RECV_MAX + VIGIL_CRYPTO_OVERHEAD_V0;
	v->crypt_buf = malloc(v->crypt_cap);
	if (!v->crypt_buf) {
		rc = err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = setup_keyring(v, cfg, err, errlen)) != 0)
		goto fail;

	struct wire_addr bound, adv;
	if ((rc = create_transport(v, cfg, &bound, &adv, err, errlen)) != 0)
		goto fail;

	/* --- swim --- */
	struct swim_config sc;
	if ((rc = swim_config_for(v, cfg, &adv, &sc, err, errlen)) != 0)
		goto fail;
	struct swim_hooks sh = {
		.ctx = v,
		.send_packet = datapath_send_packet,
		.send_stream = datapath_send_stream,
		.on_member = h_on_member,
		.on_user_msg = h_on_user_msg,
		.local_state = h_local_state,
		.merge_remote_state = h_merge_remote_state,
		.join_result = h_join_result,
		.log = layer_log,
		.shared_clock_ms = h_shared_clock_ms,
	};
	if (!cfg->disable_coordinates) {
		struct coord_config cc;
		coord_config_default(&cc);
		v->coords = calloc(1, sizeof *v->coords);
		if (!v->coords || coord_client_init(v->coords, &cc, random_seed()) != 0) {
			free(v->coords);
			v->coords = NULL;
			/* rc is 0 here: a failure must not look like success */
			rc = err_to_buf(err, errlen, VIGIL_ERR_NOMEM,
					"Failed to create coordinate client");
			goto fail;
		}
		sh.ack_payload = h_ack_payload;
		sh.ping_complete = h_ping_complete;
		sh.clock_us = h_clock_us;
	}
	v->sw = swim_new(&sc, &sh, v->now);
	if (!v->sw) {
		rc = err_to_buf(err, errlen, VIGIL_ERR_NOMEM,
				"cannot create the membership state machine");
		goto fail;
	}

	if ((rc = create_serf_layer(v, cfg, sc.gossip_interval_ms, err, errlen)) != 0)
		goto fail;
	/* --- snapshot: clocks before any traffic, rejoin at the end --- */
	if (cfg->snapshot_path && cfg->snapshot_path[0]) {
		snapshot_open(v, cfg);
		if (!v->snap) {
			rc = err_to_buf(err, errlen, VIGIL_ERR_NOMEM, "out of memory");
			goto fail;
		}
	}
	if ((rc = create_will(v, cfg, err, errlen)) != 0)
		goto fail;

	/* swim_new already announced ourselves; let the layers know. */
	for (size_t i = 0; i < swim_member_count(v->sw); i++) {
		serf_layer_on_member(v->sl, SWIM_EV_JOIN, swim_member_at(v->sw, i), v->now);
		will_on_member(v->will, SWIM_EV_JOIN, swim_member_at(v->sw, i), v->now);
	}

	/* serf opens (creates) its snapshot at start and fails if it cannot */
	if (v->snap && snapshot_update(v, false) != SNAP_OK) {
		rc = err_to_buf(err, errlen, VIGIL_ERR_IO, "failed to write snapshot %s: %s",
				cfg->snapshot_path, snapshotter_last_error(v->snap));
		goto fail;
	}
	if (v->n_rejoin)
		rejoin_next(v);
	v->ready = true;

	char a[80];
	vlog(v, 1, "vigil: %s listening on %s, advertising %s%s", cfg->name,
	     transport_format_addr(&bound, (char[80]){0}, 80),
	     transport_format_addr(&adv, a, sizeof a),
	     v->kr ? " (encrypted)" : "");
	*out = v;
	return VIGIL_OK;
fail:
	vigil_destroy(v);
	return rc;
}

void vigil_destroy(vigil_t *v)
{
	if (!v)
		return;
	keymanager_free_all(v);
	if (v->snap && v->ready) {
		/* serf flushes its snapshot at shutdown */
		v->now = clock_ms();
		snapshot_update(v, false);
	}
	snapshotter_free(v->snap);
	free(v->rejoin);
	evqueue_free(&v->held);
	resolver_free(v->res);
	join_batches_free(v);
	will_free(v->will);
	serf_layer_free(v->sl);
	swim_free(v->sw);
	if (v->coords)
		coord_client_free(v->coords);
	free(v->coords);
	transport_close(v->tr);
	vigil_keyring_free(v->kr);
	free(v->crypt_buf);
	free(v->keyring_file);
	free(v->will_path);
	free(v);
}

/* ------------------------------------------------------------ event loop */

int vigil_pollfds(vigil_t *v, struct pollfd *fds, int max)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (max < 0 || (!fds && max > 0))
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID,
				  "vigil_pollfds: fds is NULL or max (%d) negative", max);
	int rfd = resolver_fd(v->res);
	int need = transport_nfds(v->tr) + (rfd >= 0);
	int n = max > 0 ? transport_pollfds(v->tr, fds, max) : 0;
	if (rfd >= 0 && n < max)
		fds[n++] = (struct pollfd){ .fd = rfd, .events = POLLIN };
	if (max == 0)
		return need;   /* only asking how many */
	/* Too few slots: the rest are still serviced, because vigil_step
	 * polls everything itself, but only if we wake up often. */
	v->pollfds_truncated = n < need;
	if (n < need)
		errbuf_set(&v->eb, VIGIL_ERR_BUFFER,
			   "vigil_pollfds: %d fds needed, room for %d; the rest are polled "
			   "every 10 ms", need, max);
	return need;
}

static int64_t next_deadline(const struct vigil *v)
{
	int64_t d = swim_next_deadline(v->sw);
	int64_t s = serf_layer_next_deadline(v->sl);
	int64_t t = transport_next_deadline(v->tr);
	if (s < d)
		d = s;
	if (t < d)
		d = t;
	int64_t w = will_next_deadline(v->will);
	if (w < d)
		d = w;
	int64_t sn = snapshotter_next_deadline(v->snap);
	if (sn < d)
		d = sn;
	if (v->leave == LEAVE_INTENT && v->leave_swim_at < d)
		d = v->leave_swim_at;
	return d;
}

int vigil_timeout_ms(vigil_t *v)
{
	if (!v)
		return -1;
	int64_t now = clock_ms();
	int64_t d = next_deadline(v);
	int64_t ms;
	if (keymanager_ready(v) || v->held.head)
		d = now;   /* a key operation's callback or held events are due */
	if (d == INT64_MAX)
		ms = -1;
	else if (d <= now)
		ms = 0;
	else
		ms = d - now;
	if (v->pollfds_truncated && (ms < 0 || ms > TRUNCATED_POLL_MS))
		ms = TRUNCATED_POLL_MS;
	if (ms > INT_MAX)
		ms = INT_MAX;
	return (int)ms;
}

static void leave_progress(struct vigil *v)
{
	if (v->leave == LEAVE_INTENT && v->now >= v->leave_swim_at) {
		swim_leave(v->sw, v->now);
		v->leave = LEAVE_SWIM;
	}
}

/* How late may a wake-up be before we call it a stall (DESIGN.md: 3 probe intervals). */
static int64_t stall_threshold_ms(const struct vigil *v)
{
	int64_t t = 3LL * (v->cfg.probe_interval_ms > 0 ? v->cfg.probe_interval_ms : 1000);
	return t < 1000 ? 1000 : t;
}

/* Remember when the loop should call us again at the latest. */
static void note_expected_wake(struct vigil *v, int64_t now)
{
	int64_t boot = boot_clock_ms();
	int64_t d = next_deadline(v);
	int64_t wait = d == INT64_MAX ? 1000 : d - now;
	if (wait < 0)
		wait = 0;
	v->last_step_boot = boot;
	v->expected_wake_boot = boot + wait;
}

/*
 * Stall awareness.  We told the embedder when to call us next (our next
 * deadline is never far away: a probe round every second while we have
 * peers, the reaper's tick otherwise); if the call comes
 * more than 3 probe intervals after that, the process was frozen (SIGSTOP,
 * VM pause, suspend, a blocked embedder).  Timers that expired meanwhile
 * would make us accuse healthy peers on stale information, and the cluster
 * has probably declared *us* dead: let swim re-arm its timers, raise its
 * health multiplier, refute and push-pull, before any timer runs below.
 */
static void detect_stall(struct vigil *v, int64_t now)
{
	if (v->expected_wake_boot == 0)
		return;
	int64_t boot = boot_clock_ms();
	int64_t late = boot - v->expected_wake_boot;
	if (late <= stall_threshold_ms(v))
		return;
	int64_t gap = boot - v->last_step_boot;
	vlog(v, 2, "vigil: local stall detected: no wake-up for %lld ms (%lld ms late)",
	     (long long)gap, (long long)late);
	swim_notice_stall(v->sw, gap, now);
	if (v->cfg.on_event) {
		struct vigil_event ev;
		memset(&ev, 0, sizeof ev);
		ev.type = VIGIL_EV_LOCAL_STALL;
		ev.duration_ms = gap;
		v_on_event(v, &ev);
	}
}

void vigil_step(vigil_t *v)
{
	/* Called from one of its own callbacks: the running step goes on
	 * from where it is; a nested one would deliver events out of order. */
	if (!v || v->in_step)
		return;
	int64_t now = clock_ms();

	v->in_step = true;
	deliver_held(v);   /* raised since the last step (or inside create) */
	detect_stall(v, now);
	v->now = now;
	transport_step(v->tr, now);
	join_resolved(v);
	ratelimit_flush(&v->log_rl, now, layer_log, v);
	if (swim_next_deadline(v->sw) <= now)
		swim_tick(v->sw, now);
	if (serf_layer_next_deadline(v->sl) <= now)
		serf_layer_tick(v->sl, now);
	if (will_next_deadline(v->will) <= now)
		will_tick(v->will, now);
	leave_progress(v);
	keymanager_dispatch(v);
	if (v->snap) {
		uint64_t c, e, q;
		serf_layer_clocks(v->sl, &c, &e, &q);
		snapshotter_note_clocks(v->snap, c, e, q);
		if (snapshotter_next_deadline(v->snap) <= now)
			snapshot_update(v, false);
	}
	deliver_held(v);   /* raised by calls made from callbacks this step */
	v->in_step = false;
	v->last_step = now;
	note_expected_wake(v, now);
}

/* ---------------------------------------------------------- error report */

/* A serf-layer result: VIGIL_OK, or its code recorded as the last error. */
static int serf_fail(struct vigil *v, const char *call, int serf_rc)
{
	if (serf_rc == SERF_OK)
		return VIGIL_OK;
	int code = vigil_err_from_serf(serf_rc);
	return errbuf_set(&v->eb, code, "%s: %s", call, vigil_strerror(code));
}

/* The same for the will component. */
static int will_fail(struct vigil *v, const char *call, int will_rc)
{
	if (will_rc == WILL_OK)
		return VIGIL_OK;
	int code = vigil_err_from_will(will_rc);
	return errbuf_set(&v->eb, code, "%s: %s", call, vigil_strerror(code));
}

const char *vigil_last_error(vigil_t *v)
{
	return v ? v->eb.msg : "vigil_last_error: NULL handle";
}

int vigil_version(const char **str)
{
	/* The values compiled into the library, not the caller's header. */
	if (str)
		*str = VIGIL_VERSION_STRING;
	return VIGIL_VERSION_NUMBER;
}

/* ------------------------------------------------------------ membership */

int vigil_leave(vigil_t *v)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (v->leave != LEAVE_NONE)
		return 0;
	v->now = clock_ms();
	/* serf.Leave: the snapshot records the leave first; no more re-joins */
	if (v->snap)
		snapshot_update(v, true);
	v->rejoin_active = false;
	v->rejoin_next = v->n_rejoin;
	int rc = serf_layer_leave(v->sl, v->now);
	if (rc != SERF_OK)
		vlog(v, 2, "vigil: serf leave: error %d", rc);
	/*
	 * serf waits for the leave intent to be gossiped (up to
	 * BroadcastTimeout) before leaving memberlist.  Give it the
	 * retransmit limit's worth of gossip rounds; alone, leave at once.
	 */
	size_t alive = swim_alive_count(v->sw);
	int64_t delay = 0;
	if (alive > 1) {
		int scale = 1;
		for (size_t x = alive + 1; x > 10; x /= 10)
			scale++;
		delay = (int64_t)v->cfg.gossip_interval_ms *
			((v->cfg.retransmit_mult > 0 ? v->cfg.retransmit_mult : 4) * scale + 1);
		if (delay > LEAVE_BROADCAST_MAX_MS)
			delay = LEAVE_BROADCAST_MAX_MS;
	}
	v->leave = LEAVE_INTENT;
	v->leave_swim_at = v->now + delay;
	leave_progress(v);
	return 0;
}

bool vigil_leave_done(vigil_t *v)
{
	return v && v->leave == LEAVE_SWIM && swim_leave_done(v->sw);
}

int vigil_leave_reached(vigil_t *v)
{
	if (!vigil_leave_done(v) || swim_leave_told(v->sw) == 0)
		return -1;
	return swim_leave_reached(v->sw);
}

int vigil_force_leave(vigil_t *v, const char *node, bool prune)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!node)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_force_leave: node is NULL");
	v->now = clock_ms();
	return serf_fail(v, "vigil_force_leave", serf_layer_force_leave(v->sl, node, prune, v->now));
}

int vigil_members(vigil_t *v, struct vigil_member **out, size_t *n)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!out || !n)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_members: out or n is NULL");
	return serf_fail(v, "vigil_members", serf_layer_members(v->sl, out, n));
}

void vigil_members_free(struct vigil_member *m, size_t n)
{
	serf_layer_members_free(m, n);
}

const char *vigil_name(vigil_t *v)
{
	return v ? v->cfg.name : NULL;
}

/* ------------------------------------------------------------------ tags */

int vigil_set_tags(vigil_t *v, const struct vigil_tag *set, size_t n_set,
		   const char *const *del, size_t n_del)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if ((n_set && !set) || (n_del && !del))
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_set_tags: set or del is NULL");
	for (size_t j = 0; j < n_set; j++)
		if (!set[j].key || !set[j].value)
			return errbuf_set(&v->eb, VIGIL_ERR_INVALID,
					  "vigil_set_tags: tag %zu has a NULL key or value", j);
	v->now = clock_ms();
	size_t n_cur = 0;
	const struct vigil_tag *cur = serf_layer_tags(v->sl, &n_cur);
	/* New tag list = current minus deleted/replaced keys, plus `set`.
	 * Entries borrow strings from cur/set, both alive until set_tags. */
	struct vigil_tag *next = calloc(n_cur + n_set + 1, sizeof *next);
	if (!next)
		return errbuf_set(&v->eb, VIGIL_ERR_NOMEM, "vigil_set_tags: out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n_cur; i++) {
		bool drop = false;
		for (size_t j = 0; j < n_del && !drop; j++)
			drop = del[j] && strcmp(del[j], cur[i].key) == 0;
		for (size_t j = 0; j < n_set && !drop; j++)
			drop = set[j].key && strcmp(set[j].key, cur[i].key) == 0;
		if (!drop)
			next[k++] = cur[i];
	}
	for (size_t j = 0; j < n_set; j++) {
		/* a key repeated in `set`: the last one wins */
		bool later = false;
		for (size_t l = j + 1; l < n_set && !later; l++)
			later = set[l].key && strcmp(set[l].key, set[j].key) == 0;
		if (!later)
			next[k++] = set[j];
	}
	int rc = serf_layer_set_tags(v->sl, next, k);
	free(next);
	if (rc == SERF_ETOOBIG)
		return errbuf_set(&v->eb, VIGIL_ERR_TOO_LARGE, "vigil_set_tags: the tags do not "
				  "fit in %d bytes of node meta", WIRE_META_MAX);
	return serf_fail(v, "vigil_set_tags", rc);
}

/* ------------------------------------------------------ events & queries */

int vigil_user_event(vigil_t *v, const char *name, const uint8_t *payload,
		     size_t len, bool coalesce)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!name || (len && !payload))
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID,
				  "vigil_user_event: name NULL, or payload NULL with length %zu", len);
	size_t nlen = strlen(name);
	if (nlen + len > VIGIL_USER_EVENT_MAX)
		return errbuf_set(&v->eb, VIGIL_ERR_TOO_LARGE, "vigil_user_event: name + payload "
				  "is %zu bytes, over serf's limit of %d", nlen + len,
				  VIGIL_USER_EVENT_MAX);
	v->now = clock_ms();
	int rc = serf_layer_user_event(v->sl, name, payload, len, coalesce, v->now);
	if (rc == SERF_ETOOBIG)
		return errbuf_set(&v->eb, VIGIL_ERR_TOO_LARGE, "vigil_user_event: the encoded "
				  "event is over serf's limit of %d bytes", VIGIL_USER_EVENT_MAX);
	return serf_fail(v, "vigil_user_event", rc);
}

int vigil_query(vigil_t *v, const char *name, const uint8_t *payload, size_t len,
		const struct vigil_query_params *p, uint32_t *id_out)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!name || (len && !payload))
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID,
				  "vigil_query: name NULL, or payload NULL with length %zu", len);
	v->now = clock_ms();
	int rc = serf_layer_query(v->sl, name, payload, len, p, NULL, NULL, id_out, v->now);
	switch (rc) {
	case SERF_EINVAL:
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_query: bad parameters (odd "
				  "filter_tags count, NULL filter array, relay_factor not 0..255 "
				  "or negative timeout)");
	case SERF_ETOOBIG:
		return errbuf_set(&v->eb, VIGIL_ERR_TOO_LARGE, "vigil_query: the encoded query "
				  "is over serf's limit of 1024 bytes");
	case SERF_EPROTO:
		return errbuf_set(&v->eb, VIGIL_ERR_PROTOCOL, "vigil_query: queries need serf "
				  "protocol 4 or newer (config protocol_version)");
	case SERF_ESTATE:
		return errbuf_set(&v->eb, VIGIL_ERR_STATE, "vigil_query: cannot query now "
				  "(left the cluster, or too many of our queries pending)");
	}
	return serf_fail(v, "vigil_query", rc);
}

int vigil_respond(vigil_t *v, uint32_t query_id, const uint8_t *payload, size_t len)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (len && !payload)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_respond: payload NULL with "
				  "length %zu", len);
	v->now = clock_ms();
	int rc = serf_layer_respond(v->sl, query_id, payload, len, v->now);
	if (rc == SERF_ENOTFOUND)
		return errbuf_set(&v->eb, VIGIL_ERR_NOT_FOUND, "vigil_respond: no pending query "
				  "%u (unknown, or already over)", query_id);
	if (rc == SERF_ESTATE)
		return errbuf_set(&v->eb, VIGIL_ERR_STATE, "vigil_respond: query %u timed out",
				  query_id);
	return serf_fail(v, "vigil_respond", rc);
}

/* ----------------------------------------------------------------- wills */

int vigil_will_set(vigil_t *v, const char *recipient_member, const char *event_name,
		   int64_t delay_ms, const uint8_t *payload, size_t len)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	bool to_member = recipient_member && recipient_member[0];
	bool to_event = event_name && event_name[0];
	const char *target = to_member ? recipient_member : event_name;
	if (to_member == to_event)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_will_set: give exactly one of "
				  "recipient_member and event_name");
	if (to_member && strcmp(recipient_member, v->cfg.name) == 0)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_will_set: the recipient "
				  "cannot be this node (%s)", v->cfg.name);
	if (delay_ms < 0 || delay_ms > VIGIL_WILL_DELAY_MAX_MS)
		return errbuf_set(&v->eb, VIGIL_ERR_RANGE, "vigil_will_set: delay %lld ms not in "
				  "0..%lld", (long long)delay_ms, (long long)VIGIL_WILL_DELAY_MAX_MS);
	if (len && !payload)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_will_set: payload NULL with "
				  "length %zu", len);
	if (len > VIGIL_WILL_MAX)
		return errbuf_set(&v->eb, VIGIL_ERR_TOO_LARGE, "vigil_will_set: payload is %zu "
				  "bytes, over the limit of %d", len, VIGIL_WILL_MAX);
	if (strlen(target) > WIRE_NAME_MAX)
		return errbuf_set(&v->eb, VIGIL_ERR_TOO_LARGE, "vigil_will_set: %s name is over "
				  "%d bytes", to_member ? "recipient" : "event", WIRE_NAME_MAX);
	v->now = clock_ms();
	return will_fail(v, "vigil_will_set", will_set(v->will, recipient_member, event_name,
						       delay_ms, payload, len, v->now));
}

int vigil_will_clear(vigil_t *v)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	v->now = clock_ms();
	return will_fail(v, "vigil_will_clear", will_clear(v->will, v->now));
}

int vigil_will_list(vigil_t *v, const char *owner, struct vigil_will_info **out, size_t *n)
{
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!out || !n)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_will_list: out or n is NULL");
	return will_fail(v, "vigil_will_list", will_list(v->will, owner, out, n));
}

void vigil_will_list_free(struct vigil_will_info *list, size_t n)
{
	(void)n;   /* one allocation today; n keeps the door open */
	free(list);
}

/* ----------------------------------------------------------------- stats */

int vigil_stats(vigil_t *v, struct vigil_stat *out, int max)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!out || max <= 0)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_stats: out NULL or max %d", max);
	const struct swim_stats *ss = swim_stats(v->sw);
	const struct transport_stats *ts = transport_stats(v->tr);
	const struct serf_stats *fs = serf_layer_stats(v->sl);
	uint64_t mt = 0, et = 0, qt = 0;
	serf_layer_clocks(v->sl, &mt, &et, &qt);
	const struct vigil_stat all[] = {
		{"members", (double)serf_layer_member_count(v->sl)},
		{"alive", (double)swim_alive_count(v->sw)},
		{"health_score", (double)swim_health(v->sw)},
		{"member_time", (double)mt},
		{"event_time", (double)et},
		{"query_time", (double)qt},
		{"encrypted", v->kr ? 1.0 : 0.0},
		{"probes", (double)ss->probes},
		{"acks", (double)ss->acks},
		{"nacks", (double)ss->nacks},
		{"probe_failures", (double)ss->probe_failures},
		{"suspicions", (double)ss->suspicions},
		{"refutations", (double)ss->refutations},
		{"deaths", (double)ss->deaths},
		{"joins", (double)ss->joins},
		{"push_pulls", (double)ss->push_pulls},
		{"stalls", (double)ss->stalls},
		{"unreachable_hints", (double)ss->unreachable_hints},
		{"refused_address", (double)ss->refused_address},
		{"refused_incarnation", (double)ss->refused_incarnation},
		{"serf_ltime_refused", (double)fs->ltime_refused},
		{"udp_unreachable", (double)ts->udp_unreachable},
		{"msgs_in", (double)ss->msgs_in},
		{"msgs_out", (double)ss->msgs_out},
		{"decode_errors", (double)ss->decode_errors},
		{"udp_packets_malformed", (double)ss->packets_malformed},
		{"udp_in", (double)ts->udp_in},
		{"udp_out", (double)ts->udp_out},
		{"udp_in_bytes", (double)ts->udp_in_bytes},
		{"udp_out_bytes", (double)ts->udp_out_bytes},
		{"udp_send_errors", (double)ts->udp_send_errors},
		{"udp_decrypt_failed", (double)v->udp_decrypt_failed},
		{"udp_plain_accepted", (double)v->udp_plain_accepted},
		{"udp_dropped_plaintext", (double)v->udp_drop_plaintext},
		{"udp_dropped_malformed", (double)v->udp_drop_malformed},
		{"udp_empty", (double)v->udp_empty},
		{"tcp_accepted", (double)ts->tcp_accepted},
		{"tcp_connects", (double)ts->tcp_connects},
		{"tcp_rejected", (double)ts->tcp_rejected},
		{"tcp_evicted", (double)ts->tcp_evicted},
		{"tcp_errors", (double)ts->tcp_errors},
		{"tcp_timeouts", (double)ts->tcp_timeouts},
		{"tcp_bad_frames", (double)ts->tcp_bad_frames},
		{"tcp_in_bytes", (double)ts->tcp_in_bytes},
		{"tcp_out_bytes", (double)ts->tcp_out_bytes},
		{"tcp_active", (double)transport_active_conns(v->tr)},
		{"tcp_decrypt_failed", (double)v->tcp_decrypt_failed},
		{"tcp_plain_dropped", (double)v->tcp_plain_dropped},
		{"tcp_encrypted_no_key", (double)v->tcp_encrypted_no_key},
		{"stream_malformed", (double)v->stream_malformed},
		{"encrypt_failed", (double)v->encrypt_failed},
		{"serf_msgs_in", (double)fs->msgs_in},
		{"serf_decode_errors", (double)fs->decode_errors},
		{"serf_events_in", (double)fs->events_in},
		{"serf_queries_in", (double)fs->queries_in},
		{"wills_delivered", (double)will_stats(v->will)->delivered},
		{"wills_published", (double)will_stats(v->will)->published},
		{"will_decode_errors", (double)will_stats(v->will)->decode_errors},
		{"will_refused_unsigned", (double)will_stats(v->will)->unsigned_refused},
		{"will_refused_signature", (double)will_stats(v->will)->sig_refused},
		{"will_refused_key", (double)will_stats(v->will)->key_conflicts},
		{"will_refused_seq", (double)will_stats(v->will)->seq_refused},
		{"will_refused_budget", (double)will_stats(v->will)->over_budget},
		{"will_refused_view", (double)will_stats(v->will)->view_refused},
		/* serf's Stats() coordinate_resets (0 with coordinates off) */
		{"coordinate_resets", v->coords ? (double)v->coords->resets : 0.0},
	};
	int total = (int)(sizeof all / sizeof all[0]);
	int n = 0;
	/* leave room for the NULL terminator */
	for (; n < total && n < max - 1; n++)
		out[n] = all[n];
	if (n < total)
		errbuf_set(&v->eb, VIGIL_ERR_BUFFER, "vigil_stats: %d stats and a terminator, "
			   "room for %d", total, max);
	out[n].name = NULL;
	out[n].value = 0;
	return n;
}

/* ------------------------------------------------------ coordinates */

int vigil_get_coordinate(vigil_t *v, const char *node, struct vigil_coord *out)
{
	if (!v || !node || !out || !v->coords)
		return -1;
	if (strcmp(node, v->cfg.name) == 0) {
		*out = v->coords->coord;
		return 0;
	}
	return coord_client_cached(v->coords, node, out) ? 0 : -1;
}

double vigil_coord_distance(const struct vigil_coord *a, const struct vigil_coord *b)
{
	if (!coord_compatible(a, b) || a->dim > VIGIL_COORD_MAX_DIM)
		return -1;
	return coord_distance(a, b);
}
