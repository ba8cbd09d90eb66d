/*
 * serf_codec.c — serf's own messages on the wire (messages.go): the tags
 * every member carries in its memberlist meta, the join and leave intents
 * and user events.  Encoded as go-msgpack writes them, decoded leniently
 * (see serf.c's header and mpack.h).  Queries have theirs in serf_query.c.
 */
#include "serf_internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* tags (the node meta)                                               */

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vigil_tag *)a)->key, ((const struct vigil_tag *)b)->key);
}

void serf_tags_free(struct vigil_tag *tags, size_t n)
{
	if (!tags)
		return;
	for (size_t i = 0; i < n; i++) {
		free(tags[i].key);
		free(tags[i].value);
	}
	free(tags);
}

/* Deep copy, sorted by key, last duplicate wins (as a Go map would). */
int serf_tags_copy(const struct vigil_tag *in, size_t n, struct vigil_tag **out, size_t *nout)
{
	struct vigil_tag *t;
	size_t k = 0;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return SERF_OK;
	if (n > VIGIL_MAX_TAGS)
		return SERF_ETOOBIG;
	t = calloc(n, sizeof *t);
	if (!t)
		return SERF_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t j;
		if (!in[i].key || !in[i].value) {
			serf_tags_free(t, k);
			return SERF_EINVAL;
		}
		for (j = 0; j < k && strcmp(t[j].key, in[i].key) != 0; j++)
			;
		char *v = strdup(in[i].value);
		if (!v) {
			serf_tags_free(t, k);
			return SERF_ENOMEM;
		}
		if (j < k) {
			free(t[j].value);
			t[j].value = v;
			continue;
		}
		t[k].key = strdup(in[i].key);
		t[k].value = v;
		if (!t[k].key) {
			free(v);
			serf_tags_free(t, k);
			return SERF_ENOMEM;
		}
		k++;
	}
	qsort(t, k, sizeof *t, tag_cmp);
	*out = t;
	*nout = k;
	return SERF_OK;
}

int serf_encode_tags(const struct vigil_tag *tags, size_t n, int protocol_version,
		     uint8_t *out, size_t cap)
{
	struct vigil_tag *t;
	size_t nt;
	struct mpack_enc e;
	int rc;

	if (protocol_version == 0)
		protocol_version = 4;
	rc = serf_tags_copy(tags, n, &t, &nt);
	if (rc)
		return rc;
	if (protocol_version < 3) {
		/* serf's role-only compatibility: meta is the "role" tag. */
		const char *role = "";
		for (size_t i = 0; i < nt; i++)
			if (strcmp(t[i].key, "role") == 0)
				role = t[i].value;
		size_t l = strlen(role);
		if (l > cap) {
			serf_tags_free(t, nt);
			return SERF_ETOOBIG;
		}
		memcpy(out, role, l);
		serf_tags_free(t, nt);
		return (int)l;
	}
	mpack_enc_init(&e, SERF_TAG_MAGIC);
	mpack_enc_map(&e, nt);
	for (size_t i = 0; i < nt; i++) {
		mpack_enc_gostr(&e, t[i].key);
		mpack_enc_gostr(&e, t[i].value);
	}
	serf_tags_free(t, nt);
	if (e.err) {
		mpack_enc_free(&e);
		return SERF_ENOMEM;
	}
	if (e.sb.size > cap || e.sb.size > INT_MAX) {
		mpack_enc_free(&e);
		return SERF_ETOOBIG;
	}
	memcpy(out, e.sb.data, e.sb.size);
	rc = (int)e.sb.size;
	mpack_enc_free(&e);
	return rc;
}

int serf_decode_tags(const uint8_t *meta, size_t len, struct vigil_tag **out, size_t *n)
{
	msgpack_unpacked u;
	const msgpack_object_kv *kv;
	uint32_t nkv;
	struct vigil_tag *t;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (len == 0 || meta[0] != SERF_TAG_MAGIC) {
		/* Pre-protocol-3 members carry just a role string. */
		t = calloc(1, sizeof *t);
		if (!t)
			return SERF_ENOMEM;
		t->key = strdup("role");
		t->value = mpack_text_dup(meta, len);
		if (!t->key || !t->value) {
			int err = t->key && len && memchr(meta, 0, len) ? SERF_EFORMAT : SERF_ENOMEM;
			serf_tags_free(t, 1);
			return err;
		}
		*out = t;
		*n = 1;
		return SERF_OK;
	}
	rc = sl_unpack(meta + 1, len - 1, &u, NULL);
	if (rc)
		return rc;
	if (!mpack_go_map(&u.data, &kv, &nkv) || nkv > VIGIL_MAX_TAGS * 4) {
		msgpack_unpacked_destroy(&u);
		return SERF_EFORMAT;
	}
	t = nkv ? calloc(nkv, sizeof *t) : NULL;
	if (nkv && !t) {
		msgpack_unpacked_destroy(&u);
		return SERF_ENOMEM;
	}
	rc = SERF_OK;
	for (uint32_t i = 0; i < nkv && rc == SERF_OK; i++) {
		struct wire_bytes kb, vb;
		size_t j;
		if (!mp_bytes(&kv[i].key, &kb) || !mp_bytes(&kv[i].val, &vb)) {
			rc = SERF_EFORMAT;
			break;
		}
		char *key = mpack_text_dup(kb.p, kb.len);
		char *val = mpack_text_dup(vb.p, vb.len);
		if (!key || !val) {
			rc = (kb.len && memchr(kb.p, 0, kb.len)) ||
			     (vb.len && memchr(vb.p, 0, vb.len)) ? SERF_EFORMAT : SERF_ENOMEM;
			free(key);
			free(val);
			break;
		}
		for (j = 0; j < k && strcmp(t[j].key, key) != 0; j++)
			;
		if (j < k) {                 /* duplicate key: last wins */
			free(t[j].value);
			t[j].value = val;
			free(key);
		} else {
			t[k].key = key;
			t[k].value = val;
			k++;
		}
	}
	msgpack_unpacked_destroy(&u);
	if (rc) {
		serf_tags_free(t, k);
		return rc;
	}
	if (k > VIGIL_MAX_TAGS) {
		serf_tags_free(t, k);
		return SERF_ETOOBIG;
	}
	if (k)
		qsort(t, k, sizeof *t, tag_cmp);
	*out = t;
	*n = k;
	return SERF_OK;
}

/* ------------------------------------------------------------------ */
/* intents and user events                                            */

int serf_encode_intent(struct mpack_enc *e, uint8_t type, uint64_t ltime, const char *node,
			 bool prune)
{
	mpack_enc_init(e, type);
	mpack_enc_map(e, type == SERF_MSG_LEAVE ? 3 : 2);
	mpack_enc_gostr(e, "LTime");
	mpack_enc_u64(e, ltime);
	mpack_enc_gostr(e, "Node");
	mpack_enc_gostr(e, node);
	if (type == SERF_MSG_LEAVE) {
		mpack_enc_gostr(e, "Prune");
		mpack_enc_bool(e, prune);
	}
	if (e->err) {
		mpack_enc_free(e);
		return SERF_ENOMEM;
	}
	return SERF_OK;
}

int serf_decode_fields(const msgpack_object *o, serf_field_fn field, void *out)
{
	const msgpack_object_kv *kv;
	uint32_t n;
	if (!mpack_map(o, &kv, &n))
		return SERF_EFORMAT;
	for (uint32_t i = 0; i < n; i++)
		if (!field(out, &kv[i].key, &kv[i].val))
			return SERF_EFORMAT;
	return SERF_OK;
}

/* messageJoin / messageLeave: {LTime, Node[, Prune]}. */
struct intent_fields {
	uint64_t *ltime;
	struct wire_bytes node;
	bool *prune;
};

static bool intent_field(void *out, const msgpack_object *k, const msgpack_object *v)
{
	struct intent_fields *f = out;
	if (mpack_key_is(k, "LTime"))
		return mpack_go_uint(v, UINT64_MAX, f->ltime);
	if (mpack_key_is(k, "Node"))
		return mp_bytes(v, &f->node);
	if (mpack_key_is(k, "Prune"))
		return mpack_go_bool(v, f->prune);
	return true;
}

int serf_decode_intent(const msgpack_object *o, uint64_t *ltime, char *node, bool *prune)
{
	struct intent_fields f = {ltime, {NULL, 0}, prune};
	*ltime = 0;
	*prune = false;
	if (serf_decode_fields(o, intent_field, &f) != SERF_OK)
		return SERF_EFORMAT;
	/* A name memberlist could never carry cannot be a member. */
	if (f.node.len == 0 || !mpack_text_copy(f.node.p, f.node.len, node, WIRE_NAME_MAX + 1))
		return SERF_EFORMAT;
	return SERF_OK;
}

/* messageUserEvent: {LTime, Name, Payload, CC}. */
struct user_event_fields {
	uint64_t *ltime;
	struct wire_bytes *name, *payload;
	bool *cc;
};

static bool user_event_field(void *out, const msgpack_object *k, const msgpack_object *v)
{
	struct user_event_fields *f = out;
	if (mpack_key_is(k, "LTime"))
		return mpack_go_uint(v, UINT64_MAX, f->ltime);
	if (mpack_key_is(k, "Name"))
		return mp_bytes(v, f->name);
	if (mpack_key_is(k, "Payload"))
		return mp_bytes(v, f->payload);
	if (mpack_key_is(k, "CC"))
		return mpack_go_bool(v, f->cc);
	return true;
}

int serf_decode_user_event(const msgpack_object *o, uint64_t *ltime,
			   struct wire_bytes *name, struct wire_bytes *payload, bool *cc)
{
	struct user_event_fields f = {ltime, name, payload, cc};
	*ltime = 0;
	*cc = false;
	name->p = payload->p = NULL;
	name->len = payload->len = 0;
	if (serf_decode_fields(o, user_event_field, &f) != SERF_OK)
		return SERF_EFORMAT;
	if (name->len && memchr(name->p, 0, name->len))
		return SERF_EFORMAT;
	return SERF_OK;
}
