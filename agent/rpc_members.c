/*
 * rpc_members.c — serf's RPC membership commands: join, force-leave, leave,
 * members and members-filtered, tags, stats and get-coordinate.
 */
#include "rpc_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "coordinate.h"
#include "goregex.h"
#include "log.h"
#include "mp.h"
#include "tagsfile.h"

/* ------------------------------------------------------------ encoding */

static void pack_ip(msgpack_packer *pk, const char *addr)
{
	/* serf sends net.IP, i.e. the raw 4 or 16 address bytes */
	uint8_t b[16];
	if (inet_pton(AF_INET, addr, b) == 1)
		mp_pack_binn(pk, b, 4);
	else if (inet_pton(AF_INET6, addr, b) == 1)
		mp_pack_binn(pk, b, 16);
	else
		mp_pack_binn(pk, NULL, 0);
}

static void pack_tags(msgpack_packer *pk, const struct vigil_tag *t, size_t n)
{
	msgpack_pack_map(pk, n);
	for (size_t i = 0; i < n; i++)
		mp_pack_kstr(pk, t[i].key, t[i].value);
}

void rpc_pack_member(msgpack_packer *pk, const struct vigil_member *m)
{
	static const char *const vk[6] = {"ProtocolMin", "ProtocolMax", "ProtocolCur",
					  "DelegateMin", "DelegateMax", "DelegateCur"};
	msgpack_pack_map(pk, 11);
	mp_pack_kstr(pk, "Name", m->name);
	mp_pack_cstr(pk, "Addr");
	pack_ip(pk, m->addr);
	mp_pack_kuint(pk, "Port", m->port);
	mp_pack_cstr(pk, "Tags");
	pack_tags(pk, m->tags, m->n_tags);
	mp_pack_kstr(pk, "Status", vigil_status_name(m->status));
	for (int i = 0; i < 6; i++)
		mp_pack_kuint(pk, vk[i], m->vsn[i]);
}

void rpc_cmd_force_leave(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	char node[VIGIL_NAME_MAX + 1];
	bool prune = false;
	if (!mp_get_str(b, "Node", node, sizeof node))
		node[0] = '\0';
	mp_get_bool(b, "Prune", &prune);
	alog(LV_INFO, "agent: Force leaving node%s: %s", prune ? " (prune)" : "", node);
	if (vigil_force_leave(s->a->v, node, prune) != 0) {
		alog(LV_WARN, "agent: failed to remove node: %s", node);
		rpc_reply(c, seq, "failed to remove node");
		return;
	}
	rpc_reply(c, seq, "");
}

/*
 * The library joins asynchronously (vigil_join_begin only starts the
 * push/pulls), but serf answers "join" only once memberlist's Join has
 * returned: Num is the number of seeds that answered, and none answering is
 * an error.  So the reply waits for vigil_join_poll to report the outcome
 * (which it does by the TCP timeout at the latest).
 */

static void join_reply(struct client *c, uint64_t seq, const char *err, int num)
{
	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, err);
	msgpack_pack_map(&pk, 1);
	mp_pack_cstr(&pk, "Num");
	msgpack_pack_int32(&pk, num);
}

/* Answer the joins that are decided; called every loop iteration. */
void rpc_check_joins(struct rpc_server *s)
{
	for (size_t i = 0; i < s->njoins;) {
		struct pending_join *pj = &s->joins[i];
		int joined = 0;
		int done = pj->join_id ? vigil_join_poll(s->a->v, pj->join_id, &joined) : -1;
		if (done == 0) {
			i++; /* still contacting seeds */
			continue;
		}
		struct client *c = rpc_find_client(s, pj->client_id);
		if (joined > 0) {
			alog(LV_INFO, "agent: joined: %d nodes", joined);
			if (c)
				join_reply(c, pj->seq, "", joined);
		} else {
			char err[600];
			snprintf(err, sizeof err, "Failed to join [%s]: %s", pj->list,
				 done == 1 ? "no seed answered" : "could not track the join");
			alog(LV_WARN, "agent: error joining: %s", err);
			if (c)
				join_reply(c, pj->seq, err, 0);
		}
		s->joins[i] = s->joins[--s->njoins];
	}
}

void rpc_cmd_join(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	const msgpack_object *ex = mp_get(b, "Existing");
	const char *addrs[64];
	char *copies[64];
	size_t n = 0;
	bool replay = false;
	mp_get_bool(b, "Replay", &replay);
	if (ex && ex->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < ex->via.array.size && n < 64; i++) {
			const char *p;
			size_t l;
			if (!mp_as_bytes(&ex->via.array.ptr[i], &p, &l) || l == 0 || l > 300)
				continue;
			copies[n] = strndup(p, l);
			if (!copies[n])
				break;
			addrs[n] = copies[n];
			n++;
		}
	}
	struct pending_join pj = {.client_id = c->id, .seq = seq};
	for (size_t i = 0; i < n; i++) {
		size_t ll = strlen(pj.list);
		snprintf(pj.list + ll, sizeof pj.list - ll, "%s%s", i ? " " : "", addrs[i]);
	}
	alog(LV_INFO, "agent: joining: [%s] replay: %s", pj.list, replay ? "true" : "false");
	int num = n ? vigil_join_begin(s->a->v, addrs, n, replay, &pj.join_id) : 0;
	for (size_t i = 0; i < n; i++)
		free(copies[i]);
	if (num <= 0) {
		char err[600];
		snprintf(err, sizeof err, n ? "Failed to join [%s]: no valid address" : "no addresses to join",
			 pj.list);
		alog(LV_WARN, "agent: error joining: %s", err);
		join_reply(c, seq, err, 0);
		return;
	}
	struct pending_join *nj = realloc(s->joins, (s->njoins + 1) * sizeof *nj);
	if (!nj) {
		join_reply(c, seq, "out of memory", 0);
		return;
	}
	s->joins = nj;
	s->joins[s->njoins++] = pj;
}

/*
 * serf's filterMembers compiles regexp.Compile(fmt.Sprintf("^%s$", expr)):
 * the anchors are pasted as text, so "a|b" is "^a|b$" there and here.
 * Go's syntax, linear-time matching and *budget (shared by the request's
 * expressions) come from goregex.h: the glibc regcomp used before spent
 * seconds on ".{0,999}" five times (issue 15).
 */
static struct goregex *compile_anchored(const char *expr, size_t len, size_t *budget,
					char *err, size_t errlen)
{
	char gerr[192];
	char *pat = malloc(len + 3);
	if (!pat) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pat[0] = '^';
	if (len)
		memcpy(pat + 1, expr, len);
	pat[len + 1] = '$';
	pat[len + 2] = '\0';
	struct goregex *re = goregex_compile(pat, len + 2, budget, gerr, sizeof gerr);
	free(pat);
	if (!re)
		snprintf(err, errlen, "Failed to compile regex: %s", gerr);
	return re;
}

/*
 * Each match is bounded (goregex.h), but a request matches every member:
 * past this much time the request fails rather than stall the node's
 * gossip (serf would keep going; its cost grows with the cluster too).
 */
#define MEMBERS_FILTER_MAX_MS 100

static const char *member_tag(const struct vigil_member *m, const char *k)
{
	for (size_t i = 0; i < m->n_tags; i++)
		if (strcmp(m->tags[i].key, k) == 0)
			return m->tags[i].value;
	return NULL;
}

void rpc_cmd_members(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	bool filtered = strcmp(cmd, "members-filtered") == 0;
	struct vigil_member *ms = NULL;
	size_t n = 0;
	char err[320] = "";
	bool fatal = false; /* serf drops the connection on a bad expression */
	struct goregex *status_re = NULL, *name_re = NULL, **tag_re = NULL;
	char **tag_keys = NULL;
	size_t ntags = 0;
	size_t budget = GOREGEX_BUDGET; /* for all of this request's expressions */

	if (filtered) {
		const char *st = NULL, *nm = NULL;
		size_t stn = 0, nmn = 0;
		mp_as_bytes(mp_get(b, "Status"), &st, &stn);
		mp_as_bytes(mp_get(b, "Name"), &nm, &nmn);
		const msgpack_object *tags = mp_get(b, "Tags");
		if (tags && tags->type == MSGPACK_OBJECT_MAP && tags->via.map.size) {
			tag_re = calloc(tags->via.map.size, sizeof *tag_re);
			tag_keys = calloc(tags->via.map.size, sizeof *tag_keys);
			if (!tag_re || !tag_keys) {
				snprintf(err, sizeof err, "out of memory");
				goto out;
			}
			for (uint32_t i = 0; i < tags->via.map.size; i++) {
				const char *kp, *vp;
				size_t kn, vn;
				if (!mp_as_bytes(&tags->via.map.ptr[i].key, &kp, &kn) ||
				    !mp_as_bytes(&tags->via.map.ptr[i].val, &vp, &vn))
					continue;
				tag_re[ntags] = compile_anchored(vp, vn, &budget, err, sizeof err);
				if (!tag_re[ntags]) {
					fatal = true;
					goto out;
				}
				tag_keys[ntags++] = strndup(kp, kn);
			}
		}
		/* serf applies a status or name filter only when it is not "" */
		if (stn && !(status_re = compile_anchored(st, stn, &budget, err, sizeof err))) {
			fatal = true;
			goto out;
		}
		if (nmn && !(name_re = compile_anchored(nm, nmn, &budget, err, sizeof err))) {
			fatal = true;
			goto out;
		}
	}
	if (vigil_members(s->a->v, &ms, &n) != 0) {
		snprintf(err, sizeof err, "failed to list members");
		goto out;
	}
	bool *keep = calloc(n ? n : 1, sizeof *keep);
	size_t nkeep = 0;
	int64_t deadline = now_ms() + MEMBERS_FILTER_MAX_MS;
	bool filters = ntags || status_re || name_re;
	for (size_t i = 0; keep && i < n; i++) {
		bool ok = true;
		for (size_t t = 0; ok && t < ntags; t++) {
			const char *v = tag_keys[t] ? member_tag(&ms[i], tag_keys[t]) : NULL;
			ok = goregex_match(tag_re[t], v ? v : "", v ? strlen(v) : 0);
		}
		if (ok && status_re) {
			const char *sn = vigil_status_name(ms[i].status);
			ok = goregex_match(status_re, sn, strlen(sn));
		}
		if (ok && name_re)
			ok = goregex_match(name_re, ms[i].name, strlen(ms[i].name));
		keep[i] = ok;
		nkeep += ok;
		if (filters && now_ms() > deadline) {
			snprintf(err, sizeof err,
				 "filtering %zu members took over %d ms; use a simpler expression", n,
				 MEMBERS_FILTER_MAX_MS);
			break;
		}
	}
	if (!err[0]) {
		msgpack_packer pk;
		rpc_reply_body(c, &pk, seq, "");
		msgpack_pack_map(&pk, 1);
		mp_pack_cstr(&pk, "Members");
		msgpack_pack_array(&pk, keep ? nkeep : 0);
		for (size_t i = 0; keep && i < n; i++)
			if (keep[i])
				rpc_pack_member(&pk, &ms[i]);
	}
	free(keep);
	vigil_members_free(ms, n);
out:
	if (fatal) {
		/* serf's handleMembersFiltered returns the error, and its IPC
		 * loop logs it and closes the client: the CLI sees EOF */
		char why[400];
		snprintf(why, sizeof why, "Failed to evaluate request: %s", err);
		rpc_client_kill(c, why);
	} else if (err[0]) {
		msgpack_packer pk;
		rpc_reply_body(c, &pk, seq, err);
		msgpack_pack_map(&pk, 1);
		mp_pack_cstr(&pk, "Members");
		msgpack_pack_array(&pk, 0);
	}
	for (size_t t = 0; t < ntags; t++) {
		goregex_free(tag_re[t]);
		free(tag_keys[t]);
	}
	free(tag_re);
	free(tag_keys);
	goregex_free(status_re);
	goregex_free(name_re);
}

void rpc_cmd_leave(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)b, (void)cmd;
	alog(LV_INFO, "agent.ipc: Graceful leave triggered");
	struct leaver *n = realloc(s->leavers, (s->nleavers + 1) * sizeof *n);
	if (!n) {
		rpc_reply(c, seq, "out of memory");
		return;
	}
	s->leavers = n;
	s->leavers[s->nleavers].client_id = c->id;
	s->leavers[s->nleavers].seq = seq;
	s->nleavers++;
	/* the reply is sent by rpc_leave_done() once the leave has finished;
	 * after that the agent shuts down, as serf's does */
	agent_begin_leave(s->a);
	s->a->shutdown_after_leave = true;
}

void rpc_leave_done(struct rpc_server *s, const char *err)
{
	for (size_t i = 0; i < s->nleavers; i++) {
		struct client *c = rpc_find_client(s, s->leavers[i].client_id);
		if (c)
			rpc_reply(c, s->leavers[i].seq, err ? err : "");
	}
	s->nleavers = 0;
}

void rpc_cmd_tags(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	const msgpack_object *t = mp_get(b, "Tags"), *d = mp_get(b, "DeleteTags");
	struct vigil_tag *set = NULL;
	const char **del = NULL;
	size_t nset = 0, ndel = 0;
	bool oom = false;
	if (t && t->type == MSGPACK_OBJECT_MAP && t->via.map.size) {
		set = calloc(t->via.map.size, sizeof *set);
		oom |= !set;
		for (uint32_t i = 0; set && i < t->via.map.size; i++) {
			const char *kp, *vp;
			size_t kn, vn;
			if (!mp_as_bytes(&t->via.map.ptr[i].key, &kp, &kn) ||
			    !mp_as_bytes(&t->via.map.ptr[i].val, &vp, &vn))
				continue;
			set[nset].key = strndup(kp, kn);
			set[nset].value = strndup(vp, vn);
			nset++;
		}
	}
	if (d && d->type == MSGPACK_OBJECT_ARRAY && d->via.array.size) {
		del = calloc(d->via.array.size, sizeof *del);
		oom |= !del;
		for (uint32_t i = 0; del && i < d->via.array.size; i++) {
			const char *p;
			size_t l;
			if (mp_as_bytes(&d->via.array.ptr[i], &p, &l))
				del[ndel++] = strndup(p, l);
		}
	}
	for (size_t i = 0; i < nset; i++)
		oom |= !set[i].key || !set[i].value;
	for (size_t i = 0; i < ndel; i++)
		oom |= !del[i];
	int rc = oom ? -1 : vigil_set_tags(s->a->v, set, nset, del, ndel);
	char terr[512] = "failed to update tags";
	/* serf agent.SetTags: persist to -tags-file */
	if (rc == 0 && s->a->cfg.tags_file && *s->a->cfg.tags_file &&
	    tagsfile_write(s->a->cfg.tags_file, s->a->v, terr, sizeof terr) != 0) {
		alog(LV_ERR, "agent: %s", terr);
		rc = -1;
	}
	rpc_reply(c, seq, rc == 0 ? "" : terr);
	for (size_t i = 0; i < nset; i++) {
		free(set[i].key);
		free(set[i].value);
	}
	for (size_t i = 0; i < ndel; i++)
		free((char *)del[i]);
	free(set);
	free(del);
}

void rpc_cmd_stats(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)b, (void)cmd;
	struct agent *a = s->a;
	struct vigil_member *ms = NULL;
	size_t n = 0;
	size_t failed = 0, left = 0;
	const struct vigil_member *self = NULL;
	if (vigil_members(a->v, &ms, &n) != 0) {
		ms = NULL;
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (ms[i].status == VIGIL_STATUS_FAILED)
			failed++;
		else if (ms[i].status == VIGIL_STATUS_LEFT)
			left++;
		if (strcmp(ms[i].name, vigil_name(a->v)) == 0)
			self = &ms[i];
	}
	struct vigil_stat st[160];
	int nst = vigil_stats(a->v, st, 160);
	if (nst < 0)
		nst = 0;
	if (nst > 160)
		nst = 160;

	/* serf's Serf.Stats() keys come first; library stats that don't
	 * clash are appended so nothing the library knows is hidden. */
	struct {
		const char *k;
		char v[64];
	} serf_stats[16];
	size_t ns = 0;
#define ADD(key, ...)                                                           \
	do {                                                                    \
		serf_stats[ns].k = key;                                         \
		snprintf(serf_stats[ns].v, sizeof serf_stats[ns].v, __VA_ARGS__); \
		ns++;                                                           \
	} while (0)
	ADD("members", "%zu", n); /* serf: every known member, failed and left included */
	ADD("failed", "%zu", failed);
	ADD("left", "%zu", left);
	const char *libmap[][2] = {{"health_score", "health_score"}, {"member_time", "member_time"},
				   {"event_time", "event_time"},     {"query_time", "query_time"},
				   {"intent_queue", "intent_queue"}, {"event_queue", "event_queue"},
				   {"query_queue", "query_queue"}};
	for (size_t k = 0; k < sizeof libmap / sizeof libmap[0]; k++) {
		double v = 0;
		for (int i = 0; i < nst; i++)
			if (st[i].name && strcmp(st[i].name, libmap[k][1]) == 0)
				v = st[i].value;
		ADD(libmap[k][0], "%.0f", v);
	}
	ADD("encrypted", "%s", a->encrypted ? "true" : "false");
#undef ADD
	size_t extra = 0;
	for (int i = 0; i < nst; i++) {
		bool dup = !st[i].name;
		for (size_t k = 0; !dup && k < ns; k++)
			dup = strcmp(serf_stats[k].k, st[i].name) == 0;
		extra += !dup;
	}

	/* serf reports Go's runtime; vigil reports what it really runs on:
	 * the kernel's name for the OS and machine, and its thread count (one
	 * event loop, plus none: there are no goroutines to count) */
	struct utsname u;
	const char *os = "unknown", *arch = "unknown";
	if (uname(&u) == 0) {
		for (char *p = u.sysname; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		os = u.sysname;
		arch = u.machine;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	char cpus[24], threads[24] = "unknown";
	snprintf(cpus, sizeof cpus, "%ld", ncpu > 0 ? ncpu : 1);
	FILE *ps = fopen("/proc/self/status", "r");
	char sl[256];
	while (ps && fgets(sl, sizeof sl, ps))
		if (sscanf(sl, "Threads: %23s", threads) == 1)
			break;
	if (ps)
		fclose(ps);

	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, "");
	msgpack_pack_map(&pk, 5);
	mp_pack_cstr(&pk, "agent");
	msgpack_pack_map(&pk, 1);
	mp_pack_kstr(&pk, "name", vigil_name(a->v));
	mp_pack_cstr(&pk, "runtime");
	msgpack_pack_map(&pk, 5);
	mp_pack_kstr(&pk, "os", os);
	mp_pack_kstr(&pk, "arch", arch);
	mp_pack_kstr(&pk, "version", "vigil " VIGIL_VERSION);
	mp_pack_kstr(&pk, "threads", threads);
	mp_pack_kstr(&pk, "cpu_count", cpus);
	mp_pack_cstr(&pk, "serf");
	msgpack_pack_map(&pk, ns + extra);
	for (size_t k = 0; k < ns; k++)
		mp_pack_kstr(&pk, serf_stats[k].k, serf_stats[k].v);
	for (int i = 0; i < nst; i++) {
		bool dup = !st[i].name;
		for (size_t k = 0; !dup && k < ns; k++)
			dup = strcmp(serf_stats[k].k, st[i].name) == 0;
		if (dup)
			continue;
		char v[64];
		if (st[i].value == (double)(long long)st[i].value)
			snprintf(v, sizeof v, "%lld", (long long)st[i].value);
		else
			snprintf(v, sizeof v, "%g", st[i].value);
		mp_pack_kstr(&pk, st[i].name, v);
	}
	mp_pack_cstr(&pk, "tags");
	if (self)
		pack_tags(&pk, self->tags, self->n_tags);
	else
		msgpack_pack_map(&pk, 0);
	mp_pack_cstr(&pk, "event_handlers");
	handlers_pack_stats(a->hs, &pk);
	vigil_members_free(ms, n);
}

/* serf handleGetCoordinate: {Node} -> {Coord, Ok}.  An unknown node (or
 * coordinates disabled) gets the zero Coordinate (Vec nil) and Ok=false,
 * which `serf rtt` reports as "Could not find a coordinate". */
void rpc_cmd_get_coordinate(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	char node[VIGIL_NAME_MAX + 1];
	struct vigil_coord co;
	bool ok = mp_get_str(b, "Node", node, sizeof node) &&
		  vigil_get_coordinate(s->a->v, node, &co) == 0;
	if (!ok)
		memset(&co, 0, sizeof co);
	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, "");
	msgpack_pack_map(&pk, 2);
	mp_pack_cstr(&pk, "Coord");
	coord_pack(&pk, &co);
	mp_pack_kbool(&pk, "Ok", ok);
}
