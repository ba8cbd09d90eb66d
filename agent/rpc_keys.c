/*
 * rpc_keys.c — serf's RPC keyring commands (install-key, use-key,
 * remove-key, list-keys) and vigil's will commands (will-set, will-clear,
 * will-list).
 */
#include "rpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mp.h"

/* serf's keyResponse {Messages, Keys, NumNodes, NumErr, NumResp}; r NULL =
 * the operation never started (serf's empty KeyResponse).  Keys is nil
 * except for list-keys, as ipc.go fills it. */
static void key_reply(struct client *c, uint64_t seq, const char *err, bool list,
		      const struct vigil_keys_result *r)
{
	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, err);
	msgpack_pack_map(&pk, 5);
	mp_pack_cstr(&pk, "Messages");
	msgpack_pack_map(&pk, r ? r->n_messages : 0);
	for (size_t i = 0; r && i < r->n_messages; i++)
		mp_pack_kstr(&pk, r->messages[i].node, r->messages[i].message);
	mp_pack_cstr(&pk, "Keys");
	if (!list) {
		msgpack_pack_nil(&pk);
	} else {
		msgpack_pack_map(&pk, r ? r->n_keys : 0);
		for (size_t i = 0; r && i < r->n_keys; i++) {
			mp_pack_cstr(&pk, r->keys[i].key);
			msgpack_pack_int(&pk, r->keys[i].count);
		}
	}
	mp_pack_cstr(&pk, "NumNodes");
	msgpack_pack_int(&pk, r ? r->num_nodes : 0);
	mp_pack_cstr(&pk, "NumErr");
	msgpack_pack_int(&pk, r ? r->num_err : 0);
	mp_pack_cstr(&pk, "NumResp");
	msgpack_pack_int(&pk, r ? r->num_resp : 0);
}

static void key_done(void *ctx, const struct vigil_keys_result *r)
{
	struct pending_key *pk = ctx;
	struct rpc_server *s = pk->s;
	for (struct pending_key **pp = &s->keyreqs; *pp; pp = &(*pp)->next) {
		if (*pp == pk) {
			*pp = pk->next;
			break;
		}
	}
	struct client *c = rpc_find_client(s, pk->client_id);
	if (c)
		key_reply(c, pk->seq, r->error ? r->error : "", pk->list, r);
	free(pk);
}

/* install-key, use-key, remove-key, list-keys: the answer waits until the
 * cluster answered (or the query timed out), as serf's KeyManager does. */
void rpc_cmd_key(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	char key[256], err[256] = "";
	enum vigil_keys_opcode op;
	if (strcmp(cmd, "list-keys") == 0) {
		op = VIGIL_KEYS_LIST;
		key[0] = '\0';
		alog(LV_INFO, "agent: Initiating key listing");
	} else {
		if (!mp_get_str(b, "Key", key, sizeof key))
			key[0] = '\0';
		if (strcmp(cmd, "install-key") == 0) {
			op = VIGIL_KEYS_INSTALL;
			alog(LV_INFO, "agent: Initiating key installation");
		} else if (strcmp(cmd, "use-key") == 0) {
			op = VIGIL_KEYS_USE;
			alog(LV_INFO, "agent: Initiating primary key change");
		} else {
			op = VIGIL_KEYS_REMOVE;
			alog(LV_INFO, "agent: Initiating key removal");
		}
	}
	struct pending_key *pk = calloc(1, sizeof *pk);
	if (!pk) {
		key_reply(c, seq, "out of memory", op == VIGIL_KEYS_LIST, NULL);
		return;
	}
	*pk = (struct pending_key){s, c->id, seq, op == VIGIL_KEYS_LIST, s->keyreqs};
	if (vigil_keys_op(s->a->v, op, key, key_done, pk, err, sizeof err) != 0) {
		if (!err[0])
			snprintf(err, sizeof err, "key operation failed");
		alog(LV_WARN, "agent: %s: %s", cmd, err);
		key_reply(c, seq, err, op == VIGIL_KEYS_LIST, NULL);
		free(pk);
		return;
	}
	s->keyreqs = pk;
}

/* vigil extension: will-set {To, Event, Delay (ns), Payload} */
void rpc_cmd_will_set(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	char to[VIGIL_NAME_MAX + 1], ev[VIGIL_NAME_MAX + 1];
	const char *p = "";
	size_t n = 0;
	int64_t delay = 0;
	/* refused, not cut short: "ab\0cd" must not become a will for "ab" */
	if (mp_get_text(b, "To", to, sizeof to) < 0 || mp_get_text(b, "Event", ev, sizeof ev) < 0) {
		char err[120];
		snprintf(err, sizeof err, "will recipient and event name must be strings of at "
			 "most %d bytes without NUL", VIGIL_NAME_MAX);
		rpc_reply(c, seq, err);
		return;
	}
	mp_get_int(b, "Delay", &delay);
	mp_as_bytes(mp_get(b, "Payload"), &p, &n);
	if ((to[0] != '\0') == (ev[0] != '\0')) {
		rpc_reply(c, seq, "exactly one of To or Event must be given");
		return;
	}
	if (n > VIGIL_WILL_MAX) {
		char err[80];
		snprintf(err, sizeof err, "will payload exceeds limit of %d bytes", VIGIL_WILL_MAX);
		rpc_reply(c, seq, err);
		return;
	}
	if (delay < 0) {
		rpc_reply(c, seq, "will delay must not be negative");
		return;
	}
	if (vigil_will_set(s->a->v, to[0] ? to : NULL, ev[0] ? ev : NULL, delay / 1000000,
			   (const uint8_t *)p, n) != 0) {
		rpc_reply(c, seq, "failed to set will");
		return;
	}
	alog(LV_INFO, "agent: will set (%s %s, delay %lld ms, %zu bytes)",
	     to[0] ? "to member" : "event", to[0] ? to : ev, (long long)(delay / 1000000), n);
	rpc_reply(c, seq, "");
}

void rpc_cmd_will_clear(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)b, (void)cmd;
	if (vigil_will_clear(s->a->v) != 0) {
		rpc_reply(c, seq, "failed to clear will");
		return;
	}
	alog(LV_INFO, "agent: will cleared");
	rpc_reply(c, seq, "");
}

void rpc_cmd_will_list(struct rpc_server *s, struct client *c, uint64_t seq,
		    const msgpack_object *b, const char *cmd)
{
	(void)cmd;
	char owner[VIGIL_NAME_MAX + 1];
	bool have = mp_get_str(b, "Owner", owner, sizeof owner) && owner[0];
	struct vigil_will_info *w = NULL;
	size_t n = 0;
	if (vigil_will_list(s->a->v, have ? owner : NULL, &w, &n) != 0) {
		msgpack_packer pk;
		rpc_reply_body(c, &pk, seq, "failed to list wills");
		msgpack_pack_map(&pk, 1);
		mp_pack_cstr(&pk, "Wills");
		msgpack_pack_array(&pk, 0);
		return;
	}
	msgpack_packer pk;
	rpc_reply_body(c, &pk, seq, "");
	msgpack_pack_map(&pk, 1);
	mp_pack_cstr(&pk, "Wills");
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_map(&pk, 6);
		mp_pack_kstr(&pk, "Owner", w[i].owner);
		mp_pack_kstr(&pk, "To", w[i].recipient);
		mp_pack_kstr(&pk, "Event", w[i].event);
		mp_pack_cstr(&pk, "Delay");
		msgpack_pack_int64(&pk, w[i].delay_ms * 1000000);
		mp_pack_kuint(&pk, "Seq", w[i].seq);
		mp_pack_cstr(&pk, "Payload");
		size_t pl = w[i].payload_len > VIGIL_WILL_MAX ? VIGIL_WILL_MAX : w[i].payload_len;
		mp_pack_binn(&pk, w[i].payload, pl);
	}
	free(w);
}
