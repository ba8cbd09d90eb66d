/*
 * config.c — serf-compatible JSON configuration (see config.h).
 *
 * serf decodes with mapstructure and ErrorUnused, so an unknown key or a
 * value of the wrong type is a hard error; we do the same (a typo in a
 * key must not be silently ignored), reporting one line that names the
 * file and the key.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flags.h"

void config_init(struct agent_config *c)
{
	memset(c, 0, sizeof *c);
	c->protocol = -1;
}

int strlist_add(struct strlist *l, const char *s)
{
	char **n = realloc(l->v, (l->n + 1) * sizeof *n);
	if (!n)
		return -1;
	l->v = n;
	l->v[l->n] = strdup(s);
	if (!l->v[l->n])
		return -1;
	l->n++;
	return 0;
}

void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kv_set(struct kv **arr, size_t *n, const char *k, const char *v)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*arr)[i].key, k) == 0) {
			char *nv = strdup(v);
			if (!nv)
				return;
			free((*arr)[i].value);
			(*arr)[i].value = nv;
			return;
		}
	}
	struct kv *na = realloc(*arr, (*n + 1) * sizeof *na);
	if (!na)
		return;
	*arr = na;
	na[*n].key = strdup(k);
	na[*n].value = strdup(v);
	if (!na[*n].key || !na[*n].value) {
		free(na[*n].key);
		free(na[*n].value);
		return;
	}
	(*n)++;
}

void kv_free(struct kv *arr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(arr[i].key);
		free(arr[i].value);
	}
	free(arr);
}

void config_free(struct agent_config *c)
{
	char **strs[] = {&c->node_name, &c->role,      &c->bind,         &c->advertise,
			 &c->encrypt_key, &c->keyring_file, &c->log_level,   &c->rpc_addr,
			 &c->rpc_auth,   &c->profile,      &c->snapshot_path, &c->tags_file,
			 &c->metrics_addr, &c->interface, &c->syslog_facility, &c->discover};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	kv_free(c->tags, c->n_tags);
	c->tags = NULL;
	c->n_tags = 0;
	strlist_free(&c->start_join);
	strlist_free(&c->retry_join);
	strlist_free(&c->event_handlers);
}

static void setstr(char **dst, const char *src)
{
	if (src && *src) {
		char *n = strdup(src);
		if (n) {
			free(*dst);
			*dst = n;
		}
	}
}

void config_merge(struct agent_config *a, const struct agent_config *b)
{
	setstr(&a->node_name, b->node_name);
	setstr(&a->role, b->role);
	setstr(&a->bind, b->bind);
	setstr(&a->advertise, b->advertise);
	setstr(&a->encrypt_key, b->encrypt_key);
	setstr(&a->keyring_file, b->keyring_file);
	setstr(&a->log_level, b->log_level);
	setstr(&a->rpc_addr, b->rpc_addr);
	setstr(&a->rpc_auth, b->rpc_auth);
	setstr(&a->profile, b->profile);
	setstr(&a->snapshot_path, b->snapshot_path);
	setstr(&a->tags_file, b->tags_file);
	setstr(&a->metrics_addr, b->metrics_addr);
	setstr(&a->interface, b->interface);
	setstr(&a->syslog_facility, b->syslog_facility);
	setstr(&a->discover, b->discover);
	a->enable_syslog |= b->enable_syslog;
	for (size_t i = 0; i < b->n_tags; i++)
		kv_set(&a->tags, &a->n_tags, b->tags[i].key, b->tags[i].value);
	if (b->protocol > 0)
		a->protocol = b->protocol;
	/* serf's MergeConfig only ever turns booleans on */
	a->replay_on_join |= b->replay_on_join;
	a->leave_on_terminate |= b->leave_on_terminate;
	a->skip_leave_on_interrupt |= b->skip_leave_on_interrupt;
	a->rejoin_after_leave |= b->rejoin_after_leave;
	a->disable_coordinates |= b->disable_coordinates;
	if (b->retry_max_attempts)
		a->retry_max_attempts = b->retry_max_attempts;
	if (b->retry_interval_ns)
		a->retry_interval_ns = b->retry_interval_ns;
	if (b->broadcast_timeout_ns)
		a->broadcast_timeout_ns = b->broadcast_timeout_ns;
	if (b->handler_timeout_ns)
		a->handler_timeout_ns = b->handler_timeout_ns;
	for (size_t i = 0; i < b->start_join.n; i++)
		strlist_add(&a->start_join, b->start_join.v[i]);
	for (size_t i = 0; i < b->retry_join.n; i++)
		strlist_add(&a->retry_join, b->retry_join.v[i]);
	for (size_t i = 0; i < b->event_handlers.n; i++)
		strlist_add(&a->event_handlers, b->event_handlers.v[i]);
}

enum ktype { K_STR, K_BOOL, K_INT, K_DUR, K_LIST, K_TAGS, K_IGNORE_STR, K_IGNORE_BOOL,
	     K_IGNORE_INT, K_IGNORE_DUR };

struct keydef {
	const char *key;
	enum ktype type;
	size_t off; /* offsetof in agent_config, for the non-ignored kinds */
};

#define OFF(f) offsetof(struct agent_config, f)

/* Every key serf's config.go knows.  The ones vigil has no use for are
 * type-checked and accepted, so a serf config file loads unchanged. */
static const struct keydef keys[] = {
	{"node_name", K_STR, OFF(node_name)},
	{"role", K_STR, OFF(role)},
	{"disable_coordinates", K_BOOL, OFF(disable_coordinates)},
	{"tags", K_TAGS, OFF(tags)},
	{"tags_file", K_STR, OFF(tags_file)},
	{"bind", K_STR, OFF(bind)},
	{"advertise", K_STR, OFF(advertise)},
	{"encrypt_key", K_STR, OFF(encrypt_key)},
	{"keyring_file", K_STR, OFF(keyring_file)},
	{"log_level", K_STR, OFF(log_level)},
	{"rpc_addr", K_STR, OFF(rpc_addr)},
	{"rpc_auth", K_STR, OFF(rpc_auth)},
	{"protocol", K_INT, OFF(protocol)},
	{"replay_on_join", K_BOOL, OFF(replay_on_join)},
	{"query_response_size_limit", K_IGNORE_INT, 0},
	{"query_size_limit", K_IGNORE_INT, 0},
	{"user_event_size_limit", K_IGNORE_INT, 0},
	{"start_join", K_LIST, OFF(start_join)},
	{"event_handlers", K_LIST, OFF(event_handlers)},
	{"profile", K_STR, OFF(profile)},
	{"snapshot_path", K_STR, OFF(snapshot_path)},
	{"leave_on_terminate", K_BOOL, OFF(leave_on_terminate)},
	{"skip_leave_on_interrupt", K_BOOL, OFF(skip_leave_on_interrupt)},
	{"discover", K_STR, OFF(discover)},
	{"interface", K_STR, OFF(interface)},
	{"reconnect_interval", K_IGNORE_DUR, 0},
	{"reconnect_timeout", K_IGNORE_DUR, 0},
	{"tombstone_timeout", K_IGNORE_DUR, 0},
	{"disable_name_resolution", K_IGNORE_BOOL, 0},
	{"enable_syslog", K_BOOL, OFF(enable_syslog)},
	{"syslog_facility", K_STR, OFF(syslog_facility)},
	{"retry_join", K_LIST, OFF(retry_join)},
	{"retry_max_attempts", K_INT, OFF(retry_max_attempts)},
	{"retry_interval", K_DUR, OFF(retry_interval_ns)},
	{"rejoin_after_leave", K_BOOL, OFF(rejoin_after_leave)},
	{"enable_compression", K_IGNORE_BOOL, 0},
	{"statsite_addr", K_IGNORE_STR, 0},
	{"statsd_addr", K_IGNORE_STR, 0},
	{"broadcast_timeout", K_DUR, OFF(broadcast_timeout_ns)},
	/* vigil's own */
	{"event_handler_timeout", K_DUR, OFF(handler_timeout_ns)},
	{"metrics_addr", K_STR, OFF(metrics_addr)},
};

static const char *jtype(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "bool";
	default: return "null";
	}
}

int config_parse_json(const char *text, const char *source, struct agent_config *out,
		      char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "Error decoding '%s': %s (line %d, column %d)", source, je.text,
			 je.line, je.column);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "Error decoding '%s': top level must be a JSON object, got %s",
			 source, jtype(root));
		json_decref(root);
		return -1;
	}
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v)
	{
		const struct keydef *d = NULL;
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if (strcmp(keys[i].key, k) == 0)
				d = &keys[i];
		if (!d) {
			snprintf(err, errlen, "Error decoding '%s': unknown configuration key \"%s\"",
				 source, k);
			goto fail;
		}
		char *base = (char *)out;
		const char *want = NULL;
		switch (d->type) {
		case K_STR:
		case K_IGNORE_STR:
			if (!json_is_string(v)) {
				want = "a string";
				break;
			}
			if (d->type == K_STR)
				setstr((char **)(base + d->off), json_string_value(v));
			break;
		case K_BOOL:
		case K_IGNORE_BOOL:
			if (!json_is_boolean(v)) {
				want = "a boolean";
				break;
			}
			if (d->type == K_BOOL)
				*(bool *)(base + d->off) = json_is_true(v);
			break;
		case K_INT:
		case K_IGNORE_INT:
			if (!json_is_integer(v) &&
			    !(json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v))) {
				want = "an integer";
				break;
			}
			if (d->type == K_INT) {
				long long iv = json_is_integer(v) ? json_integer_value(v)
								  : (long long)json_real_value(v);
				if (iv < -1000000000LL || iv > 1000000000LL) {
					want = "an integer in range";
					break;
				}
				*(int *)(base + d->off) = (int)iv;
			}
			break;
		case K_DUR:
		case K_IGNORE_DUR: {
			if (!json_is_string(v)) {
				want = "a duration string such as \"30s\"";
				break;
			}
			int64_t ns;
			char derr[160];
			if (parse_go_duration(json_string_value(v), &ns, derr, sizeof derr) != 0) {
				snprintf(err, errlen, "Error decoding '%s': \"%s\": %s", source, k, derr);
				goto fail;
			}
			if (d->type == K_DUR)
				*(int64_t *)(base + d->off) = ns;
			break;
		}
		case K_LIST: {
			if (!json_is_array(v)) {
				want = "an array of strings";
				break;
			}
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
			{
				if (!json_is_string(e)) {
					want = "an array of strings";
					break;
				}
				strlist_add((struct strlist *)(base + d->off), json_string_value(e));
			}
			break;
		}
		case K_TAGS: {
			if (!json_is_object(v)) {
				want = "an object of strings";
				break;
			}
			const char *tk;
			json_t *tv;
			json_object_foreach(v, tk, tv)
			{
				if (!json_is_string(tv)) {
					want = "an object of strings";
					break;
				}
				kv_set(&out->tags, &out->n_tags, tk, json_string_value(tv));
			}
			break;
		}
		}
		if (want) {
			snprintf(err, errlen, "Error decoding '%s': \"%s\" must be %s, got %s", source, k,
				 want, jtype(v));
			goto fail;
		}
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}

static int read_file(const char *path, char **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "Error reading '%s': %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
		if (len + 1 >= cap) {
			if (cap >= (64u << 20)) {
				free(buf);
				buf = NULL;
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	bool ferr = ferror(f);
	fclose(f);
	if (!buf || ferr) {
		free(buf);
		snprintf(err, errlen, "Error reading '%s': %s", path,
			 ferr ? "read error" : "file too large");
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static int load_one(const char *path, struct agent_config *result, char *err, size_t errlen)
{
	char *text;
	if (read_file(path, &text, err, errlen) != 0)
		return -1;
	struct agent_config c;
	config_init(&c);
	int rc = config_parse_json(text, path, &c, err, errlen);
	free(text);
	if (rc == 0)
		config_merge(result, &c);
	config_free(&c);
	return rc;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int config_read_paths(char *const *paths, size_t n, struct agent_config *out, char *err,
		      size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(paths[i], &st) != 0) {
			snprintf(err, errlen, "Error reading '%s': %s", paths[i], strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (load_one(paths[i], out, err, errlen) != 0)
				return -1;
			continue;
		}
		DIR *d = opendir(paths[i]);
		if (!d) {
			snprintf(err, errlen, "Error reading '%s': %s", paths[i], strerror(errno));
			return -1;
		}
		struct strlist names = {0};
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			size_t l = strlen(de->d_name);
			if (l < 5 || strcmp(de->d_name + l - 5, ".json") != 0)
				continue;
			strlist_add(&names, de->d_name);
		}
		closedir(d);
		qsort(names.v, names.n, sizeof *names.v, cmpstr);
		for (size_t k = 0; k < names.n; k++) {
			char sub[4096];
			snprintf(sub, sizeof sub, "%s/%s", paths[i], names.v[k]);
			if (stat(sub, &st) != 0 || S_ISDIR(st.st_mode))
				continue;
			if (load_one(sub, out, err, errlen) != 0) {
				strlist_free(&names);
				return -1;
			}
		}
		strlist_free(&names);
	}
	return 0;
}
