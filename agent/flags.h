/*
 * flags.h — command-line parsing with Go's `flag` package semantics.
 *
 * vigil is a drop-in for `serf agent` and the serf CLI, whose flags are
 * parsed by Go's flag package.  Scripts written against serf use its exact
 * syntax, so we accept the same forms and reject the same things:
 *
 *   -name=value  -name value  --name=value  --name value
 *   -bool        -bool=false  (a bool never consumes the next argument)
 *   repeatable list flags (-join a -join b)
 *   parsing stops at the first non-flag argument, at "-" and after "--"
 *
 * This file has no dependency on libvigil so that tests/unit/test_flags.c can
 * #include flags.c directly.
 */
#ifndef VIGIL_AGENT_FLAGS_H
#define VIGIL_AGENT_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum flag_kind {
	FLAG_STRING,   /* dst: const char **  (points into argv) */
	FLAG_BOOL,     /* dst: bool * */
	FLAG_INT,      /* dst: long long *   (Go strconv.ParseInt base 0) */
	FLAG_DURATION, /* dst: int64_t *     (nanoseconds, Go time.ParseDuration) */
	FLAG_LIST,     /* dst: struct flag_list *  (repeatable, appends) */
};

struct flag_list {
	const char **v; /* entries point into argv; the array is malloc'd */
	size_t n;
};

struct flag_def {
	const char *name;
	enum flag_kind kind;
	void *dst;
	bool set; /* out: the flag appeared on the command line */
};

enum {
	FLAGS_OK = 0,
	FLAGS_ERROR = 1, /* err holds Go's message, e.g. "flag provided but not defined: -x" */
	FLAGS_HELP = 2,  /* -h / -help / --help was given and is not a defined flag */
};

/*
 * Parse argv[0..argc) (argv[0] is the first candidate flag, not a program
 * name).  On return *rest is the index of the first positional argument.
 */
int flags_parse(struct flag_def *defs, size_t ndefs, int argc, char **argv,
		int *rest, char *err, size_t errlen);

/* Was the flag called `name` given? */
bool flags_was_set(const struct flag_def *defs, size_t ndefs, const char *name);

void flag_list_free(struct flag_list *l);
int flag_list_add(struct flag_list *l, const char *v);

/* Go's time.ParseDuration. 0 on success; on error err is Go's message. */
int parse_go_duration(const char *s, int64_t *ns, char *err, size_t errlen);
/* Go's strconv.ParseBool. */
int parse_go_bool(const char *s, bool *out);
/* Go's strconv.ParseInt(s, 0, 64). */
int parse_go_int(const char *s, long long *out);
/* Format like Go's Duration.String() ("1m30s", "500ms", "0s"). */
void format_go_duration(int64_t ns, char *buf, size_t len);

#endif
