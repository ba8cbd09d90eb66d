/*
 * fuzz_config — the agent's configuration parsers (agent/config.c,
 * agent/flags.c):
 *   - config_parse_json on the input as a NUL-terminated document, twice
 *     into the same config (as -config-dir does) and then config_merge into
 *     a second one; error messages must be NUL-terminated and bounded;
 *   - parse_go_duration / parse_go_int / parse_go_bool on each line; a
 *     duration that parses formats (format_go_duration) to a string that
 *     parses to the same value, as Go's Duration.String does;
 *   - flags_parse with the lines as argv against a table of every kind.
 */
#include "config.h"
#include "flags.h"
#include "fuzz_common.h"

static void touch_str(const char *s)
{
	if (s)
		fuzz_touch(s, strlen(s));
}

static void touch_config(const struct agent_config *c)
{
	const char *strs[] = { c->node_name, c->role, c->bind, c->advertise,
			       c->encrypt_key, c->keyring_file, c->log_level, c->rpc_addr,
			       c->rpc_auth, c->profile, c->snapshot_path, c->tags_file };
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		touch_str(strs[i]);
	for (size_t i = 0; i < c->n_tags; i++) {
		FUZZ_ASSERT(c->tags[i].key && c->tags[i].value);
		touch_str(c->tags[i].key);
		touch_str(c->tags[i].value);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERTF(strcmp(c->tags[i].key, c->tags[j].key) != 0, "tag %s twice",
				     c->tags[i].key);
	}
	const struct strlist *ls[] = { &c->start_join, &c->retry_join, &c->event_handlers };
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < ls[i]->n; j++) {
			FUZZ_ASSERT(ls[i]->v[j] != NULL);
			touch_str(ls[i]->v[j]);
		}
}

static void json(const char *text)
{
	struct agent_config a, b;
	char err[256];
	config_init(&a);
	config_init(&b);
	memset(err, 'x', sizeof err);
	int rc = config_parse_json(text, "fuzz.json", &a, err, sizeof err);
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc != 0)
		fuzz_cstr(err, sizeof err);
	touch_config(&a);
	/* a second file with the same content accumulates lists, overrides scalars */
	rc = config_parse_json(text, "fuzz2.json", &a, err, sizeof err);
	touch_config(&a);
	config_merge(&b, &a);
	touch_config(&b);
	config_merge(&b, &a);
	touch_config(&b);
	config_free(&a);
	config_free(&b);
}

static void scalars(const char *s)
{
	char err[160], buf[64];
	int64_t ns, ns2;
	long long ll;
	bool bo;
	memset(err, 'x', sizeof err);
	if (parse_go_duration(s, &ns, err, sizeof err) == 0) {
		format_go_duration(ns, buf, sizeof buf);
		fuzz_cstr(buf, sizeof buf);
		int rc = parse_go_duration(buf, &ns2, err, sizeof err);
		FUZZ_ASSERTF(rc == 0 && ns2 == ns, "duration \"%s\" = %lld ns formats as \"%s\" = %lld",
			     s, (long long)ns, buf, (long long)(rc == 0 ? ns2 : -1));
	} else {
		fuzz_cstr(err, sizeof err);
	}
	(void)parse_go_int(s, &ll);
	(void)parse_go_bool(s, &bo);
}

static void flags(char **argv, int argc)
{
	const char *str = NULL;
	bool bo = false;
	long long in = 0;
	int64_t du = 0;
	struct flag_list li = { 0 };
	struct flag_def defs[] = {
		{ "node", FLAG_STRING, &str, false },
		{ "replay", FLAG_BOOL, &bo, false },
		{ "retry-max", FLAG_INT, &in, false },
		{ "retry-interval", FLAG_DURATION, &du, false },
		{ "join", FLAG_LIST, &li, false },
	};
	char err[256];
	int rest = -1;
	memset(err, 'x', sizeof err);
	int rc = flags_parse(defs, sizeof defs / sizeof defs[0], argc, argv, &rest, err,
			     sizeof err);
	FUZZ_ASSERT(rc == FLAGS_OK || rc == FLAGS_ERROR || rc == FLAGS_HELP);
	if (rc == FLAGS_OK) {
		FUZZ_ASSERT(rest >= 0 && rest <= argc);
		touch_str(str);
		for (size_t i = 0; i < li.n; i++)
			touch_str(li.v[i]);
	} else if (rc == FLAGS_ERROR) {
		fuzz_cstr(err, sizeof err);
	}
	flags_was_set(defs, sizeof defs / sizeof defs[0], "join");
	flag_list_free(&li);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	FUZZ_ASSERT(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	json(text);

	/* lines (NUL bytes end a line early, as they would in argv) */
	char *argv[32];
	int argc = 0;
	for (char *line = text, *nl; line && argc < 32; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		argv[argc++] = line;
		if (strlen(line) < 64)
			scalars(line);
	}
	flags(argv, argc);
	free(text);
	return 0;
}
