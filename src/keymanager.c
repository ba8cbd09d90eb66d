/*
 * keymanager.c — serf's key management (keymanager.go, internal_query.go),
 * for vigil_keys_op and vigil_keys_list (include/vigil.h).
 *
 * An operator's `serf keys -install K` sends the internal query "_serf_install-key" with
 * payload [messageKeyRequestType=7] + msgpack {Key: raw bytes}; every
 * member (the sender included) changes its keyring and answers
 * [messageKeyResponseType=8] + {Result, Message, Keys, PrimaryKey}.  We
 * answer those queries from real serf agents, and vigil_keys_op starts the
 * same queries and tallies the answers as serf's KeyManager does, so either
 * side can rotate (and list) keys for the whole cluster.
 */
#include "keymanager.h"
#include "logline.h"
#include "mpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define KEY_REQUEST_TYPE 7
#define KEY_RESPONSE_TYPE 8

/* nodeKeyResponse, appended to b (go-msgpack: strings as old-spec raw);
 * keys == NULL encodes Go's nil slice. */
static void encode_key_response(struct wbuf *b, bool result, const char *message,
				char (*keys)[VIGIL_KEY_B64_SIZE], size_t n_keys,
				const char *primary)
{
	struct mpack_enc e;
	mpack_enc_init(&e, KEY_RESPONSE_TYPE);
	mpack_enc_map(&e, 4);
	mpack_enc_gostr(&e, "Result");
	mpack_enc_bool(&e, result);
	mpack_enc_gostr(&e, "Message");
	mpack_enc_gostr(&e, message ? message : "");
	mpack_enc_gostr(&e, "Keys");
	if (!keys) {
		mpack_enc_nil(&e);
	} else {
		mpack_enc_array(&e, n_keys);
		for (size_t i = 0; i < n_keys; i++)
			mpack_enc_gostr(&e, keys[i]);
	}
	mpack_enc_gostr(&e, "PrimaryKey");
	mpack_enc_gostr(&e, primary ? primary : "");
	if (e.err)
		b->oom = true;
	else
		wbuf_append(b, e.sb.data, e.sb.size);
	mpack_enc_free(&e);
}

/* Key from a keyRequest payload; 0 or -1 (malformed / no key). */
static int decode_key_request(const uint8_t *p, size_t len, uint8_t *key, size_t *key_len)
{
	msgpack_unpacked u;
	int rc = -1;
	if (len < 2)
		return -1;
	msgpack_unpacked_init(&u);
	/* serf skips the type byte without looking at it; so do we */
	if (wire_msgpack_unpack(p + 1, len - 1, SIZE_MAX, &u, NULL) == WIRE_OK &&
	    u.data.type == MSGPACK_OBJECT_MAP) {
		const msgpack_object_map *m = &u.data.via.map;
		for (uint32_t i = 0; i < m->size; i++) {
			const uint8_t *kp;
			uint32_t kl;
			if (!mpack_key_is(&m->ptr[i].key, "Key") ||
			    !mpack_view(&m->ptr[i].val, &kp, &kl))
				continue;
			if (kl <= VIGIL_KEY_MAX) {
				memcpy(key, kp, kl);
				*key_len = kl;
				rc = 0;
			}
		}
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

static void save_keyring(struct vigil *v, const char **message)
{
	if (!v->keyring_file || !v->kr)
		return;
	int rc = vigil_keyring_save_file(v->kr, v->keyring_file);
	if (rc != VIGIL_CRYPTO_OK) {
		vlog(v, 3, "serf: Failed to write keyring file: %s", vigil_crypto_strerror(rc));
		*message = "failed to write keyring file";
	}
}

bool keymanager_query(void *ctx, struct serf_layer *sl, const struct serf_query_in *q,
		      int64_t now)
{
	struct vigil *v = ctx;
	const char *sub = q->name + strlen(SERF_INTERNAL_QUERY_PREFIX);
	bool install = strcmp(sub, "install-key") == 0, use = strcmp(sub, "use-key") == 0;
	bool remove = strcmp(sub, "remove-key") == 0, list = strcmp(sub, "list-keys") == 0;
	if (!install && !use && !remove && !list)
		return false;

	struct wbuf out;
	wbuf_init(&out);
	bool result = false;
	const char *message = "";
	uint8_t key[VIGIL_KEY_MAX];
	size_t key_len = 0;

	if (list) {
		char (*b64)[VIGIL_KEY_B64_SIZE] = NULL;
		size_t n = 0;
		if (!v->kr) {
			message = "Keyring is empty (encryption not enabled)";
			vlog(v, 3, "serf: %s", message);
			encode_key_response(&out, false, message, NULL, 0, "");
		} else if (!(b64 = calloc(VIGIL_KEYRING_MAX, sizeof *b64)) ||
			   vigil_keyring_list(v->kr, b64, VIGIL_KEYRING_MAX, &n) != VIGIL_CRYPTO_OK) {
			encode_key_response(&out, false, "out of memory", NULL, 0, "");
		} else {
			vlog(v, 1, "serf: Received list-keys query");
			/* serf trims the list until the response fits the size limit */
			char msg[96] = "";
			for (size_t k = n + 1; k-- > 0;) {
				wbuf_reset(&out);
				if (k < n)
					snprintf(msg, sizeof msg, "truncated key list response, "
						 "showing first %zu of %zu keys", k, n);
				encode_key_response(&out, true, msg, b64, k, b64[0]);
				if (out.oom)
					break;
				int rc = serf_layer_respond(sl, q->id, out.p, out.len, now);
				if (rc != SERF_ETOOBIG) {
					if (k < n)
						vlog(v, 2, "serf: %s", msg);
					break;
				}
			}
			free(b64);
			wbuf_free(&out);
			return true;
		}
		free(b64);
		goto send;
	}

	if (decode_key_request(q->payload, q->payload_len, key, &key_len) != 0) {
		vlog(v, 3, "serf: Failed to decode key request");
		message = "failed to decode key request";
		goto encode;
	}
	if (!v->kr) {
		message = "No keyring to modify (encryption not enabled)";
		vlog(v, 3, "serf: %s", message);
		goto encode;
	}
	vlog(v, 1, "serf: Received %s query", sub);
	int rc = install ? vigil_keyring_add(v->kr, key, key_len)
		 : use   ? vigil_keyring_use(v->kr, key, key_len)
			 : vigil_keyring_remove(v->kr, key, key_len);
	/* memberlist's RemoveKey succeeds for a key that is not installed */
	if (remove && rc == VIGIL_CRYPTO_ENOKEY)
		rc = VIGIL_CRYPTO_OK;
	if (rc != VIGIL_CRYPTO_OK) {
		/* memberlist's wording where a serf operator would see it */
		message = rc == VIGIL_CRYPTO_EPRIMARY ? "Removing the primary key is not allowed"
			  : rc == VIGIL_CRYPTO_ENOKEY ? "Requested key is not in the keyring"
			  : rc == VIGIL_CRYPTO_EKEYLEN ? "key size must be 16, 24 or 32 bytes"
						       : vigil_crypto_strerror(rc);
		vlog(v, 3, "serf: Failed to %s: %s", sub, message);
		goto encode;
	}
	result = true;
	save_keyring(v, &message);
	if (*message)
		result = false;
encode:
	encode_key_response(&out, result, message, NULL, 0, "");
send:
	if (!out.oom && serf_layer_respond(sl, q->id, out.p, out.len, now) != SERF_OK)
		vlog(v, 3, "serf: Failed to respond to key query");
	wbuf_free(&out);
	return true;
}

/*
 * Cluster-wide key operations we started: KeyManager.handleKeyRequest and
 * streamKeyResp.  Each op lives from vigil_keys_op until its callback runs;
 * the serf layer's query may outlive it (answers after completion are
 * ignored, as serf stops reading the response channel).
 */
struct key_msg {
	char *node, *msg;
};
struct key_cnt {
	char *key;
	int n;
};
struct key_op {
	struct key_op *next;
	uint32_t id;
	enum vigil_keys_opcode op;
	vigil_keys_done_fn cb;
	void *ctx;
	bool done;             /* complete; cb runs from the next vigil_step */
	bool oom;
	int num_nodes, num_resp, num_err;
	struct key_msg *msgs;
	size_t n_msgs;
	struct key_cnt *keys, *primary;
	size_t n_keys, n_primary;
};

const char *vigil_keys_op_name(enum vigil_keys_opcode op)
{
	switch (op) {
	case VIGIL_KEYS_INSTALL: return "install-key";
	case VIGIL_KEYS_USE: return "use-key";
	case VIGIL_KEYS_REMOVE: return "remove-key";
	case VIGIL_KEYS_LIST: return "list-keys";
	}
	return "?";
}

static void key_op_free(struct key_op *op)
{
	if (!op)
		return;
	for (size_t i = 0; i < op->n_msgs; i++) {
		free(op->msgs[i].node);
		free(op->msgs[i].msg);
	}
	for (size_t i = 0; i < op->n_keys; i++)
		free(op->keys[i].key);
	for (size_t i = 0; i < op->n_primary; i++)
		free(op->primary[i].key);
	free(op->msgs);
	free(op->keys);
	free(op->primary);
	free(op);
}

/* resp.Messages[node] = msg (a Go map: the last write wins). */
static void key_op_message(struct key_op *op, const char *node, const char *msg, size_t len)
{
	char *m = strndup(msg, len);
	if (!m) {
		op->oom = true;
		return;
	}
	for (size_t i = 0; i < op->n_msgs; i++) {
		if (strcmp(op->msgs[i].node, node) == 0) {
			free(op->msgs[i].msg);
			op->msgs[i].msg = m;
			return;
		}
	}
	struct key_msg *nm = realloc(op->msgs, (op->n_msgs + 1) * sizeof *nm);
	char *n = strdup(node);
	if (nm)
		op->msgs = nm;
	if (!nm || !n) {
		free(m);
		free(n);
		op->oom = true;
		return;
	}
	op->msgs[op->n_msgs++] = (struct key_msg){n, m};
}

/* counts[key]++ */
static void key_count(struct key_op *op, struct key_cnt **arr, size_t *n, const char *key,
		      size_t len)
{
	for (size_t i = 0; i < *n; i++) {
		if (strlen((*arr)[i].key) == len && memcmp((*arr)[i].key, key, len) == 0) {
			(*arr)[i].n++;
			return;
		}
	}
	struct key_cnt *na = realloc(*arr, (*n + 1) * sizeof *na);
	char *k = strndup(key, len);
	if (na)
		*arr = na;
	if (!na || !k) {
		free(k);
		op->oom = true;
		return;
	}
	(*arr)[(*n)++] = (struct key_cnt){k, 1};
}

/* Go's %v of a []byte: "[8 132 166 ...]". */
static void key_op_bad_payload(struct key_op *op, const char *node, const char *what,
			       const uint8_t *p, size_t len)
{
	size_t cap = strlen(what) + 3 + len * 4;
	char *s = malloc(cap);
	if (!s) {
		op->oom = true;
		return;
	}
	size_t o = (size_t)snprintf(s, cap, "%s[", what);
	for (size_t i = 0; i < len; i++)
		o += (size_t)snprintf(s + o, cap - o, i ? " %u" : "%u", p[i]);
	snprintf(s + o, cap - o, "]");
	key_op_message(op, node, s, strlen(s));
	free(s);
}

/* One node's nodeKeyResponse, tallied as streamKeyResp does. */
static void key_op_response(struct vigil *v, struct key_op *op, const char *from,
			    const uint8_t *p, size_t len)
{
	op->num_resp++;
	if (len < 1 || p[0] != KEY_RESPONSE_TYPE) {
		key_op_bad_payload(op, from, "Invalid key query response type: ", p, len);
		op->num_err++;
		return;
	}
	msgpack_unpacked u;
	bool ok = false, result = false;
	const char *msg = "", *pk = "";
	size_t msg_len = 0, pk_len = 0;
	const msgpack_object *keys = NULL;
	msgpack_unpacked_init(&u);
	if (len > 1 && wire_msgpack_unpack(p + 1, len - 1, SIZE_MAX, &u, NULL) == WIRE_OK &&
	    u.data.type == MSGPACK_OBJECT_MAP) {
		const msgpack_object_map *m = &u.data.via.map;
		ok = true;
		for (uint32_t i = 0; i < m->size && ok; i++) {
			const msgpack_object *k = &m->ptr[i].key, *val = &m->ptr[i].val;
			if (mpack_key_is(k, "Result")) {
				if (val->type == MSGPACK_OBJECT_BOOLEAN)
					result = val->via.boolean;
				else
					ok = val->type == MSGPACK_OBJECT_NIL;
			} else if (mpack_key_is(k, "Message")) {
				ok = mpack_go_text(val, &msg, &msg_len);
			} else if (mpack_key_is(k, "PrimaryKey")) {
				ok = mpack_go_text(val, &pk, &pk_len);
			} else if (mpack_key_is(k, "Keys")) {
				if (val->type == MSGPACK_OBJECT_ARRAY) {
					keys = val;
					for (uint32_t j = 0; j < val->via.array.size && ok; j++) {
						const char *kp = "";
						size_t kl = 0;
						ok = mpack_go_text(&val->via.array.ptr[j], &kp, &kl);
					}
				} else {
					ok = val->type == MSGPACK_OBJECT_NIL;
				}
			}
		}
	}
	if (!ok) {
		key_op_bad_payload(op, from, "Failed to decode key query response: ", p, len);
		op->num_err++;
		msgpack_unpacked_destroy(&u);
		return;
	}
	if (!result) {
		key_op_message(op, from, msg, msg_len);
		op->num_err++;
		vlog(v, 1, "serf: %s failed on %s: %.*s", vigil_keys_op_name(op->op), from,
		     (int)msg_len, msg);
	} else if (msg_len) {
		key_op_message(op, from, msg, msg_len);
		vlog(v, 2, "serf: %.*s", (int)msg_len, msg);
	}
	for (uint32_t j = 0; keys && j < keys->via.array.size; j++) {
		const char *kp = "";
		size_t kl = 0;
		if (mpack_go_text(&keys->via.array.ptr[j], &kp, &kl))
			key_count(op, &op->keys, &op->n_keys, kp, kl);
	}
	key_count(op, &op->primary, &op->n_primary, pk, pk_len);
	msgpack_unpacked_destroy(&u);
}

/* serf_query_result_fn for the key queries we started. */
static void key_result(void *ctx, const struct vigil_event *ev)
{
	struct vigil *v = ctx;
	struct key_op *op = v->key_ops;
	while (op && op->id != ev->id)
		op = op->next;
	if (!op && v->key_starting) {
		/* our own answer, from inside serf_layer_query */
		op = v->key_starting;
		op->id = ev->id;
	}
	if (!op || op->done)
		return;
	if (ev->type == VIGIL_EV_QUERY_RESPONSE) {
		vlog(v, 0, "serf: %s response from %s", vigil_keys_op_name(op->op),
		     ev->member ? ev->member->name : "?");
		key_op_response(v, op, ev->member ? ev->member->name : "", ev->payload,
				ev->payload_len);
		/* return early once everybody answered */
		if (op->num_resp == op->num_nodes)
			op->done = true;
	} else if (ev->type == VIGIL_EV_QUERY_DONE) {
		op->done = true;
	}
}

/* vigil_keys_op reports its failures both ways: err buffer and last error. */
static int keys_op_fail(struct vigil *v, char *err, size_t errlen, int code, const char *msg)
{
	errbuf_set(&v->eb, code, "vigil_keys_op: %s", msg);
	errtext_set(err, errlen, "%s", msg);
	return code;
}

int vigil_keys_op(vigil_t *v, enum vigil_keys_opcode op, const char *b64key,
		  vigil_keys_done_fn cb, void *ctx, char *err, size_t errlen)
{
	uint8_t key[VIGIL_KEY_MAX];
	size_t key_len = 0;
	int rc;
	if (!v) {
		errtext_set(err, errlen, "invalid argument");
		return VIGIL_ERR_INVALID;
	}
	if (!cb || (op != VIGIL_KEYS_LIST && !b64key) || (unsigned)op > VIGIL_KEYS_LIST)
		return keys_op_fail(v, err, errlen, VIGIL_ERR_INVALID, "invalid argument");
	/* serf fails only on bad base64 before asking the cluster; vigil also
	 * refuses a key of the wrong size, which every node would refuse */
	if (op != VIGIL_KEYS_LIST && (rc = vigil_key_parse(b64key, key, &key_len)) != VIGIL_CRYPTO_OK)
		return keys_op_fail(v, err, errlen, VIGIL_ERR_KEY, rc == VIGIL_CRYPTO_EKEYLEN
					    ? "key size must be 16, 24 or 32 bytes"
					    : vigil_crypto_strerror(rc));
	struct key_op *ko = calloc(1, sizeof *ko);
	struct mpack_enc req;  /* keyRequest, as go-msgpack writes it */
	mpack_enc_init(&req, KEY_REQUEST_TYPE);
	mpack_enc_map(&req, 1);
	mpack_enc_gostr(&req, "Key");
	mpack_enc_goraw(&req, key, key_len);
	if (!ko || req.err) {
		free(ko);
		mpack_enc_free(&req);
		return keys_op_fail(v, err, errlen, VIGIL_ERR_NOMEM, "out of memory");
	}
	ko->op = op;
	ko->cb = cb;
	ko->ctx = ctx;
	/* memberlist's NumMembers: alive and suspect, ourselves included */
	ko->num_nodes = (int)swim_alive_count(v->sw);

	char name[64];
	snprintf(name, sizeof name, "%s%s", SERF_INTERNAL_QUERY_PREFIX, vigil_keys_op_name(op));
	v->now = clock_ms();
	/* We answer our own query from inside serf_layer_query. */
	v->key_starting = ko;
	rc = serf_layer_query(v->sl, name, (const uint8_t *)req.sb.data, req.sb.size, NULL,
			      key_result, v, &ko->id, v->now);
	v->key_starting = NULL;
	mpack_enc_free(&req);
	if (rc != SERF_OK) {
		key_op_free(ko);
		if (rc == SERF_ETOOBIG)
			return keys_op_fail(v, err, errlen, VIGIL_ERR_TOO_LARGE,
					    "query exceeds limit of 1024 bytes");
		char msg[128];
		snprintf(msg, sizeof msg, "cannot start %s query: %s", vigil_keys_op_name(op),
			 vigil_strerror(vigil_err_from_serf(rc)));
		return keys_op_fail(v, err, errlen, vigil_err_from_serf(rc), msg);
	}
	struct key_op **pp = &v->key_ops;
	while (*pp)
		pp = &(*pp)->next;
	*pp = ko;
	return 0;
}

static void key_op_report(struct vigil *v, struct key_op *op)
{
	char error[96] = "";
	if (op->num_err)
		snprintf(error, sizeof error, "%d/%d nodes reported failure", op->num_err,
			 op->num_nodes);
	else if (op->num_resp != op->num_nodes)
		snprintf(error, sizeof error, "%d/%d nodes reported success", op->num_resp,
			 op->num_nodes);
	else if (op->oom)
		snprintf(error, sizeof error, "out of memory collecting key query responses");
	vlog(v, error[0] ? 2 : 1, "serf: %s: %d/%d nodes responded, %d failed", vigil_keys_op_name(op->op),
	     op->num_resp, op->num_nodes, op->num_err);

	struct vigil_keys_message *msgs = calloc(op->n_msgs + 1, sizeof *msgs);
	struct vigil_keys_count *keys = calloc(op->n_keys + 1, sizeof *keys);
	struct vigil_keys_count *primary = calloc(op->n_primary + 1, sizeof *primary);
	struct vigil_keys_result r = {
		.op = op->op,
		.num_nodes = op->num_nodes,
		.num_resp = op->num_resp,
		.num_err = op->num_err,
		.error = error[0] ? error : NULL,
	};
	if (!msgs || !keys || !primary) {
		r.error = r.error ? r.error : "out of memory";
	} else {
		for (size_t i = 0; i < op->n_msgs; i++)
			msgs[i] = (struct vigil_keys_message){op->msgs[i].node, op->msgs[i].msg};
		for (size_t i = 0; i < op->n_keys; i++)
			keys[i] = (struct vigil_keys_count){op->keys[i].key, op->keys[i].n};
		for (size_t i = 0; i < op->n_primary; i++)
			primary[i] = (struct vigil_keys_count){op->primary[i].key, op->primary[i].n};
		r.messages = msgs;
		r.n_messages = op->n_msgs;
		r.keys = keys;
		r.n_keys = op->n_keys;
		r.primary_keys = primary;
		r.n_primary_keys = op->n_primary;
	}
	/* events raised by calls from this callback are held (v_on_event) */
	bool was = v->in_callback;
	v->in_callback = true;
	op->cb(op->ctx, &r);
	v->in_callback = was;
	free(msgs);
	free(keys);
	free(primary);
}

bool keymanager_ready(const struct vigil *v)
{
	for (const struct key_op *op = v->key_ops; op; op = op->next)
		if (op->done)
			return true;
	return false;
}

/* Run the callbacks of the completed operations (from vigil_step).  Ones
 * that complete meanwhile (a callback starting another) wait for the next
 * step. */
void keymanager_dispatch(struct vigil *v)
{
	struct key_op **tail = &v->key_ready;
	while (*tail)
		tail = &(*tail)->next;
	for (struct key_op **pp = &v->key_ops; *pp;) {
		struct key_op *op = *pp;
		if (!op->done) {
			pp = &op->next;
			continue;
		}
		*pp = op->next;
		op->next = NULL;
		*tail = op;
		tail = &op->next;
	}
	while (v->key_ready) {
		struct key_op *op = v->key_ready;
		v->key_ready = op->next;
		key_op_report(v, op);
		key_op_free(op);
	}
}

void vigil_keys_cancel(vigil_t *v, void *ctx)
{
	if (!v)
		return;
	struct key_op **lists[] = {&v->key_ops, &v->key_ready};
	for (size_t l = 0; l < 2; l++) {
		for (struct key_op **pp = lists[l]; *pp;) {
			struct key_op *op = *pp;
			if (op->ctx == ctx) {
				*pp = op->next;
				key_op_free(op);
			} else {
				pp = &op->next;
			}
		}
	}
}

void keymanager_free_all(struct vigil *v)
{
	struct key_op *lists[] = {v->key_ops, v->key_ready};
	for (size_t l = 0; l < 2; l++) {
		while (lists[l]) {
			struct key_op *op = lists[l];
			lists[l] = op->next;
			key_op_free(op);
		}
	}
	v->key_ops = v->key_ready = NULL;
}

/* This node's own keyring, primary first (vigil_keys_op LIST asks everyone). */
int vigil_keys_list(vigil_t *v, char ***keys_out, size_t *n)
{
	if (!v)
		return VIGIL_ERR_INVALID;
	if (!keys_out || !n)
		return errbuf_set(&v->eb, VIGIL_ERR_INVALID, "vigil_keys_list: keys_out or n is NULL");
	*keys_out = NULL;
	*n = 0;
	if (!v->kr)
		return VIGIL_OK;
	char (*b64)[VIGIL_KEY_B64_SIZE] = calloc(VIGIL_KEYRING_MAX, sizeof *b64);
	size_t cnt = 0;
	char **keys = NULL;
	if (!b64 || vigil_keyring_list(v->kr, b64, VIGIL_KEYRING_MAX, &cnt) != VIGIL_CRYPTO_OK ||
	    !(keys = calloc(cnt ? cnt : 1, sizeof *keys)))
		goto oom;
	for (size_t i = 0; i < cnt; i++)
		if (!(keys[i] = strdup(b64[i])))
			goto oom;
	free(b64);
	*keys_out = keys;
	*n = cnt;
	return VIGIL_OK;
oom:
	vigil_keys_list_free(keys, cnt);
	free(b64);
	return errbuf_set(&v->eb, VIGIL_ERR_NOMEM, "vigil_keys_list: out of memory");
}

void vigil_keys_list_free(char **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
}

