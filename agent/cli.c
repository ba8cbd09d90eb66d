/*
 * cli.c — `vigil members|join|leave|...`: the client commands.
 *
 * Every command mirrors the serf CLI command of the same name
 * (cmd/serf/command/NAME.go): same flags, same messages, same output format,
 * same exit codes, so scripts written against `serf` work unchanged.  The
 * `will` command is vigil's own.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_state.h"
#include "coordinate.h"
#include "flags.h"
#include "mp.h"
#include "rpcclient.h"

/* --------------------------------------------------------------- output */

/* Go's encoding/json string escaping (including its HTML-safe <, >, &). */
static void json_str(FILE *f, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '<': case '>': case '&':
			fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
			break;
		default:
			if (c < 0x20) {
				fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
			} else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
				   ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
				fprintf(f, "\\u202%c", (unsigned char)s[i + 2] == 0xa8 ? '8' : '9');
				i += 2;
			} else {
				fputc(c, f);
			}
		}
	}
	fputc('"', f);
}

static void indent(FILE *f, int d)
{
	for (int i = 0; i < d; i++)
		fputs("  ", f);
}

/* json.MarshalIndent(v, "", "  "), key order = insertion order. */
static void go_json(FILE *f, json_t *v, int d)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		if (json_object_size(v) == 0) {
			fputs("{}", f);
			return;
		}
		fputs("{\n", f);
		const char *k;
		json_t *e;
		size_t i = 0, n = json_object_size(v);
		json_object_foreach(v, k, e)
		{
			indent(f, d + 1);
			json_str(f, k, strlen(k));
			fputs(": ", f);
			go_json(f, e, d + 1);
			fputs(++i < n ? ",\n" : "\n", f);
		}
		indent(f, d);
		fputc('}', f);
		return;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		if (n == 0) {
			fputs("[]", f);
			return;
		}
		fputs("[\n", f);
		for (size_t i = 0; i < n; i++) {
			indent(f, d + 1);
			go_json(f, json_array_get(v, i), d + 1);
			fputs(i + 1 < n ? ",\n" : "\n", f);
		}
		indent(f, d);
		fputc(']', f);
		return;
	}
	case JSON_STRING:
		json_str(f, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		fprintf(f, "%lld", (long long)json_integer_value(v));
		return;
	case JSON_REAL:
		fprintf(f, "%g", json_real_value(v));
		return;
	case JSON_TRUE: fputs("true", f); return;
	case JSON_FALSE: fputs("false", f); return;
	case JSON_NULL: fputs("null", f); return;
	}
}

static void print_json(json_t *v)
{
	go_json(stdout, v, 0);
	fputc('\n', stdout);
}

static size_t runelen(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* github.com/ryanuber/columnize SimpleFormat: "|"-separated cells, trimmed,
 * padded to the column width, glued with two spaces; the last cell of a
 * line is not padded.  serf then trims the whole output. */
static char *columnize(char **lines, size_t n)
{
	size_t widths[32] = {0};
	char ***cells = calloc(n ? n : 1, sizeof *cells);
	size_t *ncell = calloc(n ? n : 1, sizeof *ncell);
	if (!cells || !ncell) {
		free(cells);
		free(ncell);
		return strdup("");
	}
	for (size_t i = 0; i < n; i++) {
		cells[i] = calloc(32, sizeof **cells);
		char *p = lines[i];
		for (;;) {
			char *e = strchr(p, '|');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			while (l && (*p == ' ' || *p == '\t')) {
				p++;
				l--;
			}
			while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
				l--;
			if (cells[i] && ncell[i] < 32) {
				cells[i][ncell[i]] = strndup(p, l);
				size_t w = cells[i][ncell[i]] ? runelen(cells[i][ncell[i]]) : 0;
				if (w > widths[ncell[i]])
					widths[ncell[i]] = w;
				ncell[i]++;
			}
			if (!e)
				break;
			p = e + 1;
		}
	}
	char *out = NULL;
	size_t ol = 0;
	FILE *m = open_memstream(&out, &ol);
	for (size_t i = 0; m && i < n; i++) {
		for (size_t k = 0; k < ncell[i]; k++) {
			const char *c = cells[i][k] ? cells[i][k] : "";
			if (k + 1 == ncell[i]) {
				fputs(c, m);
			} else {
				fputs(c, m);
				for (size_t pad = runelen(c); pad < widths[k]; pad++)
					fputc(' ', m);
				fputs("  ", m);
			}
		}
		if (i + 1 < n)
			fputc('\n', m);
	}
	if (m)
		fclose(m);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; cells[i] && k < ncell[i]; k++)
			free(cells[i][k]);
		free(cells[i]);
	}
	free(cells);
	free(ncell);
	return out ? out : strdup("");
}

/* Print with serf's prepareOutput (strings.TrimSpace) + newline. */
static void print_trimmed(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	size_t l = strlen(s);
	while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\n' || s[l - 1] == '\r'))
		l--;
	fwrite(s, 1, l, stdout);
	fputc('\n', stdout);
}

struct lines {
	char **v;
	size_t n;
};

static void lines_add(struct lines *l, char *s)
{
	char **n = realloc(l->v, (l->n + 1) * sizeof *n);
	if (!n || !s) {
		free(s);
		return;
	}
	l->v = n;
	l->v[l->n++] = s;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* --------------------------------------------------------------- common */

static const char *default_rpc_addr(void)
{
	const char *e = getenv("VIGIL_RPC_ADDR");
	if (!e || !*e)
		e = getenv("SERF_RPC_ADDR");
	return e && *e ? e : "127.0.0.1:7373";
}

static const char *default_rpc_auth(void)
{
	const char *e = getenv("VIGIL_RPC_AUTH");
	if (!e || !*e)
		e = getenv("SERF_RPC_AUTH");
	return e ? e : "";
}

#define MAXDEFS 16

struct cmdflags {
	struct flag_def d[MAXDEFS];
	size_t n;
	const char *rpc_addr, *rpc_auth;
	int timeout_ms; /* per request once connected; 0: the client's default */
	char err[512];	/* the agent's (or the transport's) error */
};

static void fl_add(struct cmdflags *f, const char *name, enum flag_kind k, void *dst)
{
	f->d[f->n++] = (struct flag_def){name, k, dst, false};
}

/* fl_parse / parse_or_usage: go on with the command */
#define PARSED (-1)

/* serf's usage error: the message (if any), a blank line, then the help, all
 * on stdout (Ui.Output); exit status 1. */
static int usage_error(const char *msg, const char *help)
{
	if (msg)
		printf("%s\n\n", msg);
	printf("%s\n", help);
	return 1;
}

/* PARSED, or the exit status to return with: -h/-help prints the help on
 * stderr (status 0); for a bad flag Go's flag package prints the error on
 * stderr, then Usage, i.e. the help on stdout (status 1). */
static int parse_or_usage(struct flag_def *d, size_t n, const char *help, int argc, char **argv,
			  int *rest)
{
	char err[256];
	int rc = flags_parse(d, n, argc, argv, rest, err, sizeof err);
	if (rc == FLAGS_HELP) {
		fprintf(stderr, "%s\n", help);
		return 0;
	}
	if (rc != FLAGS_OK) {
		fprintf(stderr, "%s\n", err);
		return usage_error(NULL, help);
	}
	return PARSED;
}

/* The command's flags plus the common -rpc-addr / -rpc-auth. */
static int fl_parse(struct cmdflags *f, const char *help, int argc, char **argv, int *rest)
{
	f->rpc_addr = default_rpc_addr();
	f->rpc_auth = default_rpc_auth();
	fl_add(f, "rpc-addr", FLAG_STRING, &f->rpc_addr);
	fl_add(f, "rpc-auth", FLAG_STRING, &f->rpc_auth);
	return parse_or_usage(f->d, f->n, help, argc, argv, rest);
}

/* Connect, handshake and authenticate as the flags say. */
static int connect_agent(struct rpcc *c, struct cmdflags *f)
{
	if (rpcc_open(c, f->rpc_addr, f->rpc_auth, f->err, sizeof f->err) != 0) {
		fprintf(stdout, "Error connecting to Serf agent: %s\n", f->err);
		return -1;
	}
	if (f->timeout_ms)
		c->timeout_ms = f->timeout_ms;
	return 0;
}

/*
 * One request on an open connection, which is closed afterwards: cmd with
 * body (NULL: none; freed here), its answer into resp (NULL: no body
 * expected; initialised here).  0 on success; otherwise 1 with the error in
 * f->err and, when what != NULL, printed as "<what>: <error>" and resp freed.
 */
static int call_agent(struct cmdflags *f, struct rpcc *c, const char *cmd, struct mp_body *body,
		      msgpack_unpacked *resp, const char *what)
{
	if (resp)
		msgpack_unpacked_init(resp);
	int rc = rpcc_call(c, cmd, body ? &body->sb : NULL, resp, f->err, sizeof f->err);
	if (body)
		msgpack_sbuffer_destroy(&body->sb);
	rpcc_close(c);
	if (rc == 0)
		return 0;
	if (what) {
		fprintf(stdout, "%s: %s\n", what, f->err);
		if (resp)
			msgpack_unpacked_destroy(resp);
	}
	return 1;
}

/* connect_agent, then call_agent; 0 or the exit status 1 (reported). */
static int request(struct cmdflags *f, const char *cmd, struct mp_body *body,
		   msgpack_unpacked *resp, const char *what)
{
	struct rpcc c;
	if (connect_agent(&c, f) != 0) {
		if (body)
			msgpack_sbuffer_destroy(&body->sb);
		return 1;
	}
	return call_agent(f, &c, cmd, body, resp, what);
}

/* Start a streaming request: send cmd + body (freed here) under *seq. */
static int send_body(struct rpcc *c, const char *cmd, struct mp_body *body, uint64_t *seq)
{
	*seq = c->seq++;
	int rc = rpcc_send(c, cmd, *seq, &body->sb);
	msgpack_sbuffer_destroy(&body->sb);
	return rc;
}

/* serf's UnmarshalTags ("key=value", key non-empty). */
static int parse_tags(const struct flag_list *l, json_t **out)
{
	json_t *o = json_object();
	for (size_t i = 0; i < l->n; i++) {
		const char *eq = strchr(l->v[i], '=');
		if (!eq || eq == l->v[i]) {
			fprintf(stdout, "Error: Invalid tag: '%s'\n", l->v[i]);
			json_decref(o);
			return -1;
		}
		char *k = strndup(l->v[i], (size_t)(eq - l->v[i]));
		json_object_set_new(o, k, json_string(eq + 1));
		free(k);
	}
	*out = o;
	return 0;
}

static void pack_json_strmap(msgpack_packer *pk, json_t *o)
{
	msgpack_pack_map(pk, json_object_size(o));
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	mp_pack_kstr(pk, k, json_string_value(v));
}

/* serf's Payload: the bytes given, or nil (no payload argument). */
static void pack_payload(msgpack_packer *pk, const char *payload)
{
	mp_pack_cstr(pk, "Payload");
	if (payload)
		mp_pack_binn(pk, payload, strlen(payload));
	else
		msgpack_pack_nil(pk);
}

/* event and query take a name and an optional payload. */
static const char *name_payload_error(int nargs, const char *no_name)
{
	if (nargs < 1)
		return no_name;
	if (nargs > 2)
		return "Too many command line arguments. Only a name and payload must be specified.";
	return NULL;
}

static void pack_strarray(msgpack_packer *pk, const struct flag_list *l)
{
	if (!l->n) {
		msgpack_pack_nil(pk); /* Go's nil slice */
		return;
	}
	msgpack_pack_array(pk, l->n);
	for (size_t i = 0; i < l->n; i++)
		mp_pack_cstr(pk, l->v[i]);
}

/* Ctrl-C for streaming commands (query, monitor): serf's ShutdownCh */
static volatile sig_atomic_t interrupted;
static void on_int(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void catch_interrupt(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_int;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll must return EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Next record header on a stream: 0 one arrived, 1 interrupted (^C),
 * -1 the agent went away. */
static int stream_header(struct rpcc *c, uint64_t *got, char *err, size_t errlen)
{
	for (;;) {
		int r = rpcc_read_header(c, got, err, errlen, -1);
		if (r != -2)
			return r != 0 ? -1 : 0;
		if (interrupted)
			return 1;
	}
}

/* The body after a stream record's header; false (u freed) if it never came. */
static bool stream_body(struct rpcc *c, msgpack_unpacked *u)
{
	msgpack_unpacked_init(u);
	if (rpcc_read_obj(c, u, 10000) == 0)
		return true;
	msgpack_unpacked_destroy(u);
	return false;
}

/* Columnized lines on stdout, serf-trimmed or as they are; frees l. */
static void print_columns(struct lines *l, bool trim)
{
	char *out = columnize(l->v, l->n);
	if (trim)
		print_trimmed(out);
	else
		fprintf(stdout, "%s\n", out);
	free(out);
	lines_free(l);
}

/* -format: json or text, anything else is serf's encoding error. */
static int print_output(const char *format, json_t *json, const char *text)
{
	if (strcmp(format, "json") == 0) {
		print_json(json);
	} else if (strcmp(format, "text") == 0) {
		print_trimmed(text);
	} else {
		fprintf(stdout, "Encoding error: Invalid output format \"%s\"\n", format);
		return 1;
	}
	return 0;
}

/* --------------------------------------------------------------- members */

/* The common flags in the commands' help texts. */
#define RPC_ADDR_HELP "  -rpc-addr=127.0.0.1:7373  RPC address of the agent.\n"
#define RPC_AUTH_HELP "  -rpc-auth=\"\"              RPC auth token of the agent."
#define RPC_FLAGS_HELP RPC_ADDR_HELP RPC_AUTH_HELP
/* -format; info's help aligns its columns one space further left */
#define FORMAT_HELP(pad)                                                                 \
	"  -format                  " pad "If provided, output is returned in the specified\n" \
	"                           " pad "format. Valid formats are 'json', and 'text' (default)\n"

static const char members_help[] =
	"Usage: vigil members [options]\n"
	"\n"
	"  Outputs the members of a running vigil (or Serf) agent.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -detailed                 Additional information such as protocol versions\n"
	"                            will be shown (only affects text output format).\n"
	"\n"
	FORMAT_HELP(" ")
	"\n"
	"  -name=<regexp>            If provided, only members matching the regexp are\n"
	"                            returned. The regexp is anchored at the start and end,\n"
	"                            and must be a full match.\n"
	"\n"
	"  -role=<regexp>            If provided, output is filtered to only nodes matching\n"
	"                            the regular expression for role\n"
	"                            '-role' is deprecated in favor of '-tag role=foo'.\n"
	"                            The regexp is anchored at the start and end, and must be\n"
	"                            a full match.\n"
	"\n"
	"  -status=<regexp>          If provided, output is filtered to only nodes matching\n"
	"                            the regular expression for status\n"
	"\n"
	"  -tag <key>=<regexp>       If provided, output is filtered to only nodes with the\n"
	"                            tag <key> with value matching the regular expression.\n"
	"                            tag can be specified multiple times to filter on\n"
	"                            multiple keys. The regexp is anchored at the start and end,\n"
	"                            and must be a full match.\n"
	"\n"
	RPC_ADDR_HELP
	"\n"
	RPC_AUTH_HELP;

static void format_addr(const char *ip, size_t n, uint64_t port, char *out, size_t len)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *b = (const uint8_t *)ip;
	if (n == 4 || (n == 16 && memcmp(b, v4mapped, 12) == 0)) {
		const uint8_t *q = n == 4 ? b : b + 12;
		snprintf(out, len, "%u.%u.%u.%u:%llu", q[0], q[1], q[2], q[3], (unsigned long long)port);
	} else if (n == 16) {
		char s[64];
		inet_ntop(AF_INET6, b, s, sizeof s);
		snprintf(out, len, "[%s]:%llu", s, (unsigned long long)port);
	} else {
		/* Go prints a nil IP as "<nil>" inside TCPAddr.String: ":port" */
		snprintf(out, len, ":%llu", (unsigned long long)port);
	}
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_members(int argc, char **argv)
{
	bool detailed = false;
	const char *role = "", *status = "", *name = "", *format = "text";
	struct flag_list tags = {0};
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "detailed", FLAG_BOOL, &detailed);
	fl_add(&f, "role", FLAG_STRING, &role);
	fl_add(&f, "status", FLAG_STRING, &status);
	fl_add(&f, "format", FLAG_STRING, &format);
	fl_add(&f, "tag", FLAG_LIST, &tags);
	fl_add(&f, "name", FLAG_STRING, &name);
	if ((rc = fl_parse(&f, members_help, argc, argv, &rest)) != PARSED) {
		flag_list_free(&tags);
		return rc;
	}
	char *roletag = NULL;
	if (*role) {
		printf("Deprecation warning: 'Role' has been replaced with 'Tags'\n");
		roletag = xprintf("role=%s", role);
		flag_list_add(&tags, roletag);
	}
	json_t *reqtags = NULL;
	if (parse_tags(&tags, &reqtags) != 0) {
		flag_list_free(&tags);
		free(roletag);
		return 1;
	}
	flag_list_free(&tags);
	free(roletag);
	/* (serf checks -format after the RPC) */
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 3);
	mp_pack_cstr(pk, "Tags");
	pack_json_strmap(pk, reqtags);
	mp_pack_kstr(pk, "Status", status);
	mp_pack_kstr(pk, "Name", name);
	json_decref(reqtags);
	msgpack_unpacked u;
	if (request(&f, "members-filtered", &b, &u, "Error retrieving members") != 0)
		return 1;
	const msgpack_object *ms = mp_get(&u.data, "Members");
	size_t n = ms && ms->type == MSGPACK_OBJECT_ARRAY ? ms->via.array.size : 0;
	struct lines lines = {0};
	json_t *jmembers = n ? json_array() : json_null();
	for (size_t i = 0; i < n; i++) {
		const msgpack_object *m = &ms->via.array.ptr[i];
		char mname[512] = "", mstatus[64] = "", addr[128];
		const char *ip = "";
		size_t iplen = 0;
		uint64_t port = 0, dmin = 0, dmax = 0, dcur = 0;
		mp_get_str(m, "Name", mname, sizeof mname);
		mp_get_str(m, "Status", mstatus, sizeof mstatus);
		mp_as_bytes(mp_get(m, "Addr"), &ip, &iplen);
		mp_get_uint(m, "Port", &port);
		mp_get_uint(m, "DelegateMin", &dmin);
		mp_get_uint(m, "DelegateMax", &dmax);
		mp_get_uint(m, "DelegateCur", &dcur);
		format_addr(ip, iplen, port, addr, sizeof addr);

		/* tags, sorted (serf's order is Go's random map order) */
		const msgpack_object *t = mp_get(m, "Tags");
		size_t nt = t && t->type == MSGPACK_OBJECT_MAP ? t->via.map.size : 0;
		char **pairs = calloc(nt + 1, sizeof *pairs);
		json_t *jtags = t && t->type == MSGPACK_OBJECT_MAP ? json_object() : json_null();
		char **keys = calloc(nt + 1, sizeof *keys);
		size_t np = 0;
		for (size_t k = 0; pairs && keys && k < nt; k++) {
			const char *kp, *vp;
			size_t kl, vl;
			if (!mp_as_bytes(&t->via.map.ptr[k].key, &kp, &kl) ||
			    !mp_as_bytes(&t->via.map.ptr[k].val, &vp, &vl))
				continue;
			pairs[np] = xprintf("%.*s=%.*s", (int)kl, kp, (int)vl, vp);
			keys[np] = pairs[np];
			np++;
		}
		if (pairs)
			qsort(pairs, np, sizeof *pairs, cmp_cstr);
		char *joined = NULL;
		size_t jl = 0;
		FILE *jm = open_memstream(&joined, &jl);
		for (size_t k = 0; jm && k < np; k++) {
			fprintf(jm, "%s%s", k ? "," : "", pairs[k] ? pairs[k] : "");
			if (pairs[k] && json_is_object(jtags)) {
				char *eq = strchr(pairs[k], '=');
				if (eq) {
					*eq = '\0';
					json_object_set_new(jtags, pairs[k], json_string(eq + 1));
					*eq = '=';
				}
			}
		}
		if (jm)
			fclose(jm);
		char *line;
		if (detailed)
			line = xprintf("%s|%s|%s|%s|Protocol Version: %llu|Available Protocol Range: [%llu, %llu]",
				       mname, addr, mstatus, joined ? joined : "",
				       (unsigned long long)dcur, (unsigned long long)dmin,
				       (unsigned long long)dmax);
		else
			line = xprintf("%s|%s|%s|%s", mname, addr, mstatus, joined ? joined : "");
		lines_add(&lines, line);
		json_t *jm2 = json_object();
		json_object_set_new(jm2, "name", json_string(mname));
		json_object_set_new(jm2, "addr", json_string(addr));
		json_object_set_new(jm2, "port", json_integer((json_int_t)port));
		json_object_set_new(jm2, "tags", jtags);
		json_object_set_new(jm2, "status", json_string(mstatus));
		json_t *proto = json_object();
		json_object_set_new(proto, "max", json_integer((json_int_t)dmax));
		json_object_set_new(proto, "min", json_integer((json_int_t)dmin));
		json_object_set_new(proto, "version", json_integer((json_int_t)dcur));
		json_object_set_new(jm2, "protocol", proto);
		json_array_append_new(jmembers, jm2);
		for (size_t k = 0; k < np; k++)
			free(pairs[k]);
		free(pairs);
		free(keys);
		free(joined);
	}
	msgpack_unpacked_destroy(&u);
	json_t *root = json_object();
	json_object_set_new(root, "members", jmembers);
	char *text = columnize(lines.v, lines.n);
	rc = print_output(format, root, text);
	free(text);
	json_decref(root);
	lines_free(&lines);
	return rc;
}

/* ------------------------------------------------------------------ join */

static const char join_help[] =
	"Usage: vigil join [options] address ...\n"
	"\n"
	"  Tells a running agent (with \"vigil agent\") to join the cluster\n"
	"  by specifying at least one existing member.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -replay                   Replay past user events.\n"
	RPC_FLAGS_HELP;

static int cmd_join(int argc, char **argv)
{
	bool replay = false;
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "replay", FLAG_BOOL, &replay);
	if ((rc = fl_parse(&f, join_help, argc, argv, &rest)) != PARSED)
		return rc;
	if (rest >= argc)
		return usage_error("At least one address to join must be specified.", join_help);
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 2);
	mp_pack_cstr(pk, "Existing");
	msgpack_pack_array(pk, (size_t)(argc - rest));
	for (int i = rest; i < argc; i++)
		mp_pack_cstr(pk, argv[i]);
	mp_pack_kbool(pk, "Replay", replay);
	msgpack_unpacked u;
	if (request(&f, "join", &b, &u, "Error joining the cluster") != 0)
		return 1;
	int64_t num = 0;
	mp_get_int(&u.data, "Num", &num);
	msgpack_unpacked_destroy(&u);
	printf("Successfully joined cluster by contacting %lld nodes.\n", (long long)num);
	return 0;
}

/* ----------------------------------------------------------------- leave */

static const char leave_help[] =
	"Usage: vigil leave\n"
	"\n"
	"  Causes the agent to gracefully leave the cluster and shutdown.\n"
	"\n"
	"Options:\n"
	"\n"
	RPC_FLAGS_HELP;

static int cmd_leave(int argc, char **argv)
{
	struct cmdflags f = {0};
	int rest, rc;
	if ((rc = fl_parse(&f, leave_help, argc, argv, &rest)) != PARSED)
		return rc;
	f.timeout_ms = 30000; /* the agent answers after the leave finished */
	if (request(&f, "leave", NULL, NULL, "Error leaving") != 0)
		return 1;
	printf("Graceful leave complete\n");
	return 0;
}

/* ----------------------------------------------------------- force-leave */

static const char force_leave_help[] =
	"Usage: vigil force-leave [options] name\n"
	"\n"
	"  Forces a member of the cluster to enter the \"left\" state. Note\n"
	"  that if the member is still actually alive, it will eventually rejoin\n"
	"  the cluster. This command is most useful for cleaning out \"failed\" nodes\n"
	"  that are never coming back. If you do not force leave a failed node,\n"
	"  the agent will attempt to reconnect to those failed nodes for some period of\n"
	"  time before eventually reaping them.\n"
	"\n"
	"Options:\n"
	"\n"
	RPC_FLAGS_HELP "\n"
	"  -prune                    Remove agent forcibly from list of members";

static int cmd_force_leave(int argc, char **argv)
{
	bool prune = false;
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "prune", FLAG_BOOL, &prune);
	if ((rc = fl_parse(&f, force_leave_help, argc, argv, &rest)) != PARSED)
		return rc;
	if (argc - rest != 1)
		return usage_error("A node name must be specified to force leave.", force_leave_help);
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 2);
	mp_pack_kstr(pk, "Node", argv[rest]);
	mp_pack_kbool(pk, "Prune", prune);
	return request(&f, "force-leave", &b, NULL, "Error force leaving");
}

/* ----------------------------------------------------------------- event */

static const char event_help[] =
	"Usage: vigil event [options] name payload\n"
	"\n"
	"  Dispatches a custom event across the cluster.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -coalesce=true/false      Whether this event can be coalesced. This means\n"
	"                            that repeated events of the same name within a\n"
	"                            short period of time are ignored, except the last\n"
	"                            one received. Default is true.\n"
	RPC_FLAGS_HELP;

static int cmd_event(int argc, char **argv)
{
	bool coalesce = true;
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "coalesce", FLAG_BOOL, &coalesce);
	if ((rc = fl_parse(&f, event_help, argc, argv, &rest)) != PARSED)
		return rc;
	int nargs = argc - rest;
	const char *bad = name_payload_error(nargs, "An event name must be specified.");
	if (bad)
		return usage_error(bad, event_help);
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 3);
	mp_pack_kstr(pk, "Name", argv[rest]);
	pack_payload(pk, nargs == 2 ? argv[rest + 1] : NULL);
	mp_pack_kbool(pk, "Coalesce", coalesce);
	if (request(&f, "event", &b, NULL, "Error sending event") != 0)
		return 1;
	printf("Event '%s' dispatched! Coalescing enabled: %s\n", argv[rest], coalesce ? "true" : "false");
	return 0;
}

/* ----------------------------------------------------------------- query */

static const char query_help[] =
	"Usage: vigil query [options] name payload\n"
	"\n"
	"  Dispatches a query to the cluster.\n"
	"\n"
	"Options:\n"
	"\n"
	FORMAT_HELP(" ")
	"\n"
	"  -node=NAME                This flag can be provided multiple times to filter\n"
	"                            responses to only named nodes.\n"
	"\n"
	"  -tag key=regexp           This flag can be provided multiple times to filter\n"
	"                            responses to only nodes matching the tags.\n"
	"\n"
	"  -timeout=\"15s\"            Providing a timeout overrides the default timeout.\n"
	"\n"
	"  -no-ack                   Setting this prevents nodes from sending an acknowledgement\n"
	"                            of the query.\n"
	"\n"
	"  -relay-factor             If provided, query responses will be relayed through this\n"
	"                            number of extra nodes for redundancy.\n"
	"\n"
	RPC_ADDR_HELP
	"\n"
	RPC_AUTH_HELP;

/* Send a "query" request (body freed here) and wait for its header: 0, or 1
 * after printing serf's "Error sending query: ..." (connection closed). */
static int query_start(struct cmdflags *f, struct rpcc *c, struct mp_body *b, uint64_t *seq)
{
	catch_interrupt();
	char *err = f->err;
	const char *fail = NULL;
	if (send_body(c, "query", b, seq) != 0)
		fail = "client closed";
	uint64_t got = 0;
	while (!fail && got != *seq) {
		if (rpcc_read_header(c, &got, err, sizeof f->err, 10000) != 0)
			fail = interrupted ? "interrupted" : "client closed";
	}
	if (!fail && err[0])
		fail = err;
	if (fail) {
		fprintf(stdout, "Error sending query: %s\n", fail);
		rpcc_close(c);
		return 1;
	}
	return 0;
}

/* One record of a query's stream: "ack", "response" (with payload). */
typedef void (*query_event_fn)(void *ctx, const char *type, const char *from, const char *pl,
			       size_t pn);

/* Feed the query's records to fn until "done" (or the agent goes away,
 * which serf treats the same); the connection is closed.  0, or 1 after a
 * stream error was reported. */
static int query_events(struct cmdflags *f, struct rpcc *c, uint64_t seq, query_event_fn fn,
			void *ctx)
{
	uint64_t got = 0;
	for (;;) {
		int r = stream_header(c, &got, f->err, sizeof f->err);
		if (r > 0) {
			rpcc_close(c);
			return 1;
		}
		if (r != 0)
			break;
		if (got != seq)
			continue;
		msgpack_unpacked u;
		if (!stream_body(c, &u))
			break;
		char type[32] = "", from[512] = "";
		const char *pl = "";
		size_t pn = 0;
		mp_get_str(&u.data, "Type", type, sizeof type);
		mp_get_str(&u.data, "From", from, sizeof from);
		mp_as_bytes(mp_get(&u.data, "Payload"), &pl, &pn);
		bool done = strcmp(type, "done") == 0;
		if (!done)
			fn(ctx, type, from, pl, pn);
		fflush(stdout);
		msgpack_unpacked_destroy(&u);
		if (done)
			break;
	}
	rpcc_close(c);
	return 0;
}

/* cmd_query's printer: text as it comes, or collected for -format=json. */
struct query_out {
	bool json;
	json_t *jacks, *jresp;
	int nacks, nresp;
};

static void query_print(void *ctx, const char *type, const char *from, const char *pl, size_t pn)
{
	struct query_out *q = ctx;
	if (strcmp(type, "ack") == 0) {
		q->nacks++;
		if (q->json)
			json_array_append_new(q->jacks, json_string(from));
		else
			printf("Ack from '%s'\n", from);
	} else if (strcmp(type, "response") == 0) {
		q->nresp++;
		if (q->json) {
			json_object_set_new(q->jresp, from, json_stringn_nocheck(pl, pn));
		} else {
			size_t l = pn;
			if (l && pl[l - 1] == '\n')
				l--;
			printf("Response from '%s': %.*s\n", from, (int)l, pl);
		}
	}
}

static int cmd_query(int argc, char **argv)
{
	bool noack = false;
	struct flag_list nodes = {0}, tags = {0};
	int64_t timeout = 0;
	long long relay = 0;
	const char *format = "text";
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "node", FLAG_LIST, &nodes);
	fl_add(&f, "tag", FLAG_LIST, &tags);
	fl_add(&f, "timeout", FLAG_DURATION, &timeout);
	fl_add(&f, "no-ack", FLAG_BOOL, &noack);
	fl_add(&f, "format", FLAG_STRING, &format);
	fl_add(&f, "relay-factor", FLAG_INT, &relay);
	rc = fl_parse(&f, query_help, argc, argv, &rest);
	json_t *ftags = NULL;
	if (rc == PARSED && parse_tags(&tags, &ftags) != 0)
		rc = 1;
	flag_list_free(&tags);
	if (rc != PARSED) {
		flag_list_free(&nodes);
		return rc;
	}
	int nargs = argc - rest;
	const char *bad = name_payload_error(nargs, "A query name must be specified.");
	struct rpcc c;
	if (bad) {
		rc = usage_error(bad, query_help);
	} else if (relay > 255 || relay < 0) {
		fprintf(stdout, "Relay factor must be between 0 and 255\n");
		rc = 1;
	} else if (connect_agent(&c, &f) != 0) {
		rc = 1;
	} else if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
		fprintf(stdout, "Invalid format: %s\n", format);
		rpcc_close(&c);
		rc = 1;
	}
	if (rc != PARSED) {
		flag_list_free(&nodes);
		json_decref(ftags);
		return rc;
	}
	const char *name = argv[rest];
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 7);
	mp_pack_cstr(pk, "FilterNodes");
	pack_strarray(pk, &nodes);
	mp_pack_cstr(pk, "FilterTags");
	pack_json_strmap(pk, ftags);
	mp_pack_kbool(pk, "RequestAck", !noack);
	mp_pack_kuint(pk, "RelayFactor", (uint64_t)relay);
	mp_pack_cstr(pk, "Timeout");
	msgpack_pack_int64(pk, timeout);
	mp_pack_kstr(pk, "Name", name);
	pack_payload(pk, nargs == 2 ? argv[rest + 1] : NULL);
	flag_list_free(&nodes);
	json_decref(ftags);

	uint64_t seq;
	if (query_start(&f, &c, &b, &seq) != 0)
		return 1;
	struct query_out qo = { strcmp(format, "json") == 0, json_array(), json_object(), 0, 0 };
	bool json = qo.json;
	if (!json) {
		printf("Query '%s' dispatched\n", name);
		fflush(stdout);
	}
	if (query_events(&f, &c, seq, query_print, &qo) != 0) {
		json_decref(qo.jacks);
		json_decref(qo.jresp);
		return 1;
	}
	json_t *jacks = qo.jacks, *jresp = qo.jresp;
	int nacks = qo.nacks, nresp = qo.nresp;
	if (json) {
		json_t *root = json_object();
		json_object_set_new(root, "Acks", json_array_size(jacks) ? jacks : json_null());
		if (!json_array_size(jacks))
			json_decref(jacks);
		json_object_set_new(root, "Responses", jresp);
		print_json(root);
		json_decref(root);
	} else {
		if (!noack)
			printf("Total Acks: %d\n", nacks);
		printf("Total Responses: %d\n", nresp);
		json_decref(jacks);
		json_decref(jresp);
	}
	return 0;
}

/* ------------------------------------------------------------------ tags */

static const char tags_help[] =
	"Usage: vigil tags [options] ...\n"
	"\n"
	"  Modifies tags on a running agent.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -rpc-addr=127.0.0.1:7373  RPC Address of the agent.\n"
	RPC_AUTH_HELP "\n"
	"  -set key=value            Creates or modifies the value of a tag\n"
	"  -delete key               Removes a tag, if present";

static int cmd_tags(int argc, char **argv)
{
	struct flag_list set = {0}, del = {0};
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "set", FLAG_LIST, &set);
	fl_add(&f, "delete", FLAG_LIST, &del);
	rc = fl_parse(&f, tags_help, argc, argv, &rest);
	if (rc == PARSED && set.n == 0 && del.n == 0)
		rc = usage_error(NULL, tags_help);
	json_t *tags = NULL;
	struct rpcc c;
	if (rc == PARSED && connect_agent(&c, &f) != 0)
		rc = 1;
	else if (rc == PARSED && parse_tags(&set, &tags) != 0) {
		rpcc_close(&c);
		rc = 1;
	}
	if (rc != PARSED) {
		flag_list_free(&set);
		flag_list_free(&del);
		return rc;
	}
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 2);
	mp_pack_cstr(pk, "Tags");
	pack_json_strmap(pk, tags);
	mp_pack_cstr(pk, "DeleteTags");
	pack_strarray(pk, &del);
	json_decref(tags);
	flag_list_free(&set);
	flag_list_free(&del);
	if (call_agent(&f, &c, "tags", &b, NULL, "Error setting tags") != 0)
		return 1;
	printf("Successfully updated agent tags\n");
	return 0;
}

/* --------------------------------------------------------------- monitor */

static const char monitor_help[] =
	"Usage: vigil monitor [options]\n"
	"\n"
	"  Shows recent log messages of an agent, and attaches to the agent,\n"
	"  outputting log messages as they occur in real time. The monitor lets you\n"
	"  listen for log levels that may be filtered out of the agent. For\n"
	"  example your agent may only be logging at INFO level, but with the monitor\n"
	"  you can see the DEBUG level logs.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -log-level=info          Log level of the agent.\n"
	RPC_FLAGS_HELP;

/* Go's %#v for the values a stream record holds (after msgpack decoding
 * into interface{}): strings quoted, unsigned ints in hex, []byte, ... */
static void gosyntax(FILE *f, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: fputs("interface {}(nil)", f); break;
	case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", f); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "0x%llx", (unsigned long long)o->via.u64); break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%lld", (long long)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: fprintf(f, "%g", o->via.f64); break;
	case MSGPACK_OBJECT_STR: json_str(f, o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN:
		fputs("[]byte{", f);
		for (uint32_t i = 0; i < o->via.bin.size; i++)
			fprintf(f, "%s0x%x", i ? ", " : "", (unsigned char)o->via.bin.ptr[i]);
		fputc('}', f);
		break;
	case MSGPACK_OBJECT_ARRAY:
		fputs("[]interface {}{", f);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				fputs(", ", f);
			gosyntax(f, &o->via.array.ptr[i]);
		}
		fputc('}', f);
		break;
	case MSGPACK_OBJECT_MAP:
		fputs("map[interface {}]interface {}{", f);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			if (i)
				fputs(", ", f);
			gosyntax(f, &o->via.map.ptr[i].key);
			fputs(":", f);
			gosyntax(f, &o->via.map.ptr[i].val);
		}
		fputc('}', f);
		break;
	default: fputs("?", f); break;
	}
}

static int cmd_monitor(int argc, char **argv)
{
	const char *level = "INFO";
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "log-level", FLAG_STRING, &level);
	if ((rc = fl_parse(&f, monitor_help, argc, argv, &rest)) != PARSED)
		return rc;
	struct rpcc c;
	if (connect_agent(&c, &f) != 0)
		return 1;
	catch_interrupt();
	char *err = f.err;

	/* stream "*" first, then monitor, exactly like serf's monitor */
	struct mp_body sb, mb;
	mp_pack_kstr(mp_body_map(&sb, 1), "Type", "*");
	mp_pack_kstr(mp_body_map(&mb, 1), "LogLevel", level);
	uint64_t sseq, mseq;
	rc = send_body(&c, "stream", &sb, &sseq);
	if (rc == 0)
		rc = send_body(&c, "monitor", &mb, &mseq);
	else
		msgpack_sbuffer_destroy(&mb.sb);
	if (rc != 0) {
		fprintf(stdout, "Error starting stream: client closed\n");
		rpcc_close(&c);
		return 1;
	}
	bool sinit = false, minit = false;
	for (;;) {
		uint64_t got;
		int r = stream_header(&c, &got, err, sizeof f.err);
		if (r > 0) {
			rpcc_close(&c);
			return 0;
		}
		if (r != 0)
			break;
		if (got == sseq && !sinit) {
			sinit = true;
			if (err[0]) {
				fprintf(stdout, "Error starting stream: %s\n", err);
				rpcc_close(&c);
				return 1;
			}
			continue;
		}
		if (got == mseq && !minit) {
			minit = true;
			if (err[0]) {
				fprintf(stdout, "Error starting monitor: %s\n", err);
				rpcc_close(&c);
				return 1;
			}
			continue;
		}
		if (got != sseq && got != mseq)
			continue;
		msgpack_unpacked u;
		if (!stream_body(&c, &u))
			break;
		if (got == mseq) {
			const char *p;
			size_t n;
			if (mp_as_bytes(mp_get(&u.data, "Log"), &p, &n))
				printf("%.*s\n", (int)n, p);
		} else if (u.data.type == MSGPACK_OBJECT_MAP) {
			printf("Event Info:\n");
			for (uint32_t i = 0; i < u.data.via.map.size; i++) {
				const char *k;
				size_t kl;
				if (!mp_as_bytes(&u.data.via.map.ptr[i].key, &k, &kl))
					continue;
				printf("\t%.*s: ", (int)kl, k);
				gosyntax(stdout, &u.data.via.map.ptr[i].val);
				putchar('\n');
			}
		}
		fflush(stdout);
		msgpack_unpacked_destroy(&u);
	}
	rpcc_close(&c);
	if (interrupted)
		return 0;
	printf("\nRemote side ended the monitor! This usually means that the\n"
	       "remote side has exited or crashed.\n");
	return 1;
}

/* ------------------------------------------------------------------ keys */

static const char keys_help[] =
	"Usage: vigil keys [options]...\n"
	"\n"
	"  Manage the internal encryption keyring used by the cluster. Modifications\n"
	"  made by this command will be broadcasted to all members in the cluster and\n"
	"  applied locally on each member. Operations of this command are idempotent.\n"
	"\n"
	"  To facilitate key rotation, multiple encryption keys may be in use\n"
	"  simultaneously. Only one key, the \"primary\" key, will be used for\n"
	"  encrypting messages. All other keys are used for decryption only.\n"
	"\n"
	"  All variations of this command will return 0 if all nodes reply and report\n"
	"  no errors. If any node fails to respond or reports failure, we return 1.\n"
	"\n"
	"  WARNING: Running with multiple encryption keys enabled is recommended as a\n"
	"  transition state only. Performance may be impacted by using multiple keys.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -install=<key>            Install a new key onto the internal keyring. This\n"
	"                            will enable the key for decryption. The key will not\n"
	"                            be used to encrypt messages until the primary key is\n"
	"                            changed.\n"
	"  -use=<key>                Change the primary key used for encrypting messages.\n"
	"                            All nodes in the cluster must already have this key\n"
	"                            installed if they are to continue communicating with\n"
	"                            eachother.\n"
	"  -remove=<key>             Remove a key from the internal keyring. The key\n"
	"                            being removed may not be the current primary key.\n"
	"  -list                     List all currently known keys in the cluster. This\n"
	"                            will ask all nodes in the cluster for a list of keys\n"
	"                            and dump a summary containing each key and the\n"
	"                            number of members it is installed on to the console.\n"
	RPC_FLAGS_HELP;

static void print_failures(const msgpack_object *resp)
{
	const msgpack_object *m = mp_get(resp, "Messages");
	if (!m || m->type != MSGPACK_OBJECT_MAP || m->via.map.size == 0)
		return;
	struct lines l = {0};
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const char *k, *v;
		size_t kl, vl;
		if (mp_as_bytes(&m->via.map.ptr[i].key, &k, &kl) &&
		    mp_as_bytes(&m->via.map.ptr[i].val, &v, &vl))
			lines_add(&l, xprintf("failed: | %.*s | %.*s", (int)kl, k, (int)vl, v));
	}
	print_columns(&l, false);
}

static int cmd_keys(int argc, char **argv)
{
	const char *install = "", *use = "", *remove_ = "";
	bool list = false;
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "install", FLAG_STRING, &install);
	fl_add(&f, "use", FLAG_STRING, &use);
	fl_add(&f, "remove", FLAG_STRING, &remove_);
	fl_add(&f, "list", FLAG_BOOL, &list);
	if ((rc = fl_parse(&f, keys_help, argc, argv, &rest)) != PARSED)
		return rc;
	bool found = list;
	const char *args[] = {install, use, remove_};
	for (int i = 0; i < 3; i++) {
		if (found && *args[i]) {
			fprintf(stdout, "Only one of -install, -use, -remove, or -list allowed\n");
			return 1;
		}
		found = found || *args[i];
	}
	if (!found)
		return usage_error(NULL, keys_help);
	/* the agent answers once the whole cluster did or the key query timed
	 * out (serf's default: 3.2 s up to 9 nodes, more for bigger clusters);
	 * serf's client waits as long as it takes */
	f.timeout_ms = 120000;
	struct rpcc c;
	if (connect_agent(&c, &f) != 0)
		return 1;
	msgpack_unpacked u;
	const char *cmd, *start, *ok, *fail, *key = NULL;
	if (list) {
		cmd = "list-keys", start = "Asking all members for installed keys...";
		ok = "Keys gathered, listing cluster keys...\n", fail = "Failed to gather member keys";
	} else if (*install) {
		cmd = "install-key", key = install, start = "Installing key on all members...";
		ok = "Successfully installed key!", fail = "Error installing key";
	} else if (*use) {
		cmd = "use-key", key = use, start = "Changing primary key on all members...";
		ok = "Successfully changed primary key!", fail = "Error changing primary key";
	} else {
		cmd = "remove-key", key = remove_, start = "Removing key on all members...";
		ok = "Successfully removed key!", fail = "Error removing key";
	}
	printf("==> %s\n", start);
	fflush(stdout);
	struct mp_body b;
	if (key)
		mp_pack_kstr(mp_body_map(&b, 1), "Key", key);
	if (call_agent(&f, &c, cmd, key ? &b : NULL, &u, NULL) != 0) {
		print_failures(&u.data);
		fprintf(stdout, "\n%s: %s\n", fail, f.err);
		msgpack_unpacked_destroy(&u);
		return 1;
	}
	printf("==> %s\n", ok);
	if (list) {
		int64_t total = 0;
		mp_get_int(&u.data, "NumNodes", &total);
		const msgpack_object *k = mp_get(&u.data, "Keys");
		struct lines l = {0};
		for (uint32_t i = 0; k && k->type == MSGPACK_OBJECT_MAP && i < k->via.map.size; i++) {
			const char *kp;
			size_t kl;
			int64_t num = 0;
			const msgpack_object *v = &k->via.map.ptr[i].val;
			if (!mp_as_bytes(&k->via.map.ptr[i].key, &kp, &kl))
				continue;
			if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				num = (int64_t)v->via.u64;
			lines_add(&l, xprintf("%.*s | [%lld/%lld]", (int)kl, kp, (long long)num, (long long)total));
		}
		print_columns(&l, false);
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}

/* ------------------------------------------------------------------ info */

static const char info_help[] =
	"Usage: vigil info [options]\n"
	"\n"
	"\tProvides debugging information for operators\n"
	"\n"
	"Options:\n"
	"\n"
	FORMAT_HELP("")
	"\n"
	"  -rpc-addr=127.0.0.1:7373 RPC address of the agent.\n"
	"\n"
	"  -rpc-auth=\"\"             RPC auth token of the agent.";

struct kvs {
	char *k, *v;
};

static int cmp_kvs(const void *a, const void *b)
{
	return strcmp(((const struct kvs *)a)->k, ((const struct kvs *)b)->k);
}

/* A msgpack map of string → (string | map) as sorted pairs. */
static struct kvs *sorted_pairs(const msgpack_object *m, size_t *n)
{
	*n = 0;
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	struct kvs *r = calloc(m->via.map.size + 1, sizeof *r);
	for (uint32_t i = 0; r && i < m->via.map.size; i++) {
		const char *k, *v = "";
		size_t kl, vl = 0;
		if (!mp_as_bytes(&m->via.map.ptr[i].key, &k, &kl))
			continue;
		mp_as_bytes(&m->via.map.ptr[i].val, &v, &vl);
		r[*n].k = strndup(k, kl);
		r[*n].v = strndup(v, vl);
		(*n)++;
	}
	if (r)
		qsort(r, *n, sizeof *r, cmp_kvs);
	return r;
}

static void free_pairs(struct kvs *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].k);
		free(r[i].v);
	}
	free(r);
}

static int cmd_info(int argc, char **argv)
{
	const char *format = "text";
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "format", FLAG_STRING, &format);
	if ((rc = fl_parse(&f, info_help, argc, argv, &rest)) != PARSED)
		return rc;
	msgpack_unpacked u;
	if (request(&f, "stats", NULL, &u, "Error querying agent") != 0)
		return 1;
	size_t ns = 0;
	const msgpack_object *root = &u.data;
	struct kvs *sections = sorted_pairs(root, &ns);
	json_t *jroot = json_object();
	char *text = NULL;
	size_t tl = 0;
	FILE *m = open_memstream(&text, &tl);
	for (size_t i = 0; i < ns; i++) {
		const msgpack_object *sub = mp_get(root, sections[i].k);
		size_t nsub = 0;
		struct kvs *vals = sorted_pairs(sub, &nsub);
		json_t *js = json_object();
		if (m)
			fprintf(m, "%s:\n", sections[i].k);
		for (size_t k = 0; k < nsub; k++) {
			if (m)
				fprintf(m, "\t%s = %s\n", vals[k].k, vals[k].v);
			json_object_set_new(js, vals[k].k, json_string(vals[k].v));
		}
		json_object_set_new(jroot, sections[i].k, js);
		free_pairs(vals, nsub);
	}
	if (m)
		fclose(m);
	free_pairs(sections, ns);
	msgpack_unpacked_destroy(&u);
	rc = print_output(format, jroot, text ? text : "");
	free(text);
	json_decref(jroot);
	return rc;
}

/* ---------------------------------------------------------- reachability */

static const char reachability_help[] =
	"Usage: vigil reachability [options]\n"
	"\n"
	"  Tests the network reachability of this node\n"
	"\n"
	"Options:\n"
	"\n"
	"  -rpc-addr=127.0.0.1:7373  RPC address of the vigil agent.\n"
	RPC_AUTH_HELP "\n"
	"  -verbose                  Verbose mode\n";

static const char reach_troubleshooting[] =
	"\n"
	"Troubleshooting tips:\n"
	"* Ensure that the bind addr:port is accessible by all other nodes\n"
	"* If an advertise address is set, ensure it routes to the bind address\n"
	"* Check that no nodes are behind a NAT\n"
	"* If nodes are behind firewalls or iptables, check that Serf traffic is permitted (UDP and TCP)\n"
	"* Verify networking equipment is functional";

struct reach {
	bool verbose, dups;
	json_t *acks;   /* name -> true */
	int n_acks;
	int64_t start_ms, last_ms;
};

static void reach_ack(void *ctx, const char *type, const char *from, const char *pl, size_t pn)
{
	(void)pl, (void)pn;
	struct reach *r = ctx;
	if (strcmp(type, "ack") != 0)
		return;
	if (r->verbose)
		printf("\tAck from '%s'\n", from);
	r->n_acks++;
	if (json_object_get(r->acks, from)) {
		r->dups = true;
		printf("Duplicate response from '%s'\n", from);
	}
	json_object_set_new(r->acks, from, json_true());
	r->last_ms = now_ms();
}

/* serf's reachability: an acked "_serf_ping" query to everyone, compared
 * with the live members; same output, same exit codes. */
static int cmd_reachability(int argc, char **argv)
{
	struct reach r = { 0 };
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "verbose", FLAG_BOOL, &r.verbose);
	if ((rc = fl_parse(&f, reachability_help, argc, argv, &rest)) != PARSED)
		return rc;
	msgpack_unpacked u;
	if (request(&f, "members", NULL, &u, "Error getting members") != 0)
		return 1;
	json_t *live = json_object();
	size_t total = 0;
	const msgpack_object *ms = mp_get(&u.data, "Members");
	if (ms && ms->type == MSGPACK_OBJECT_ARRAY) {
		total = ms->via.array.size;
		for (uint32_t i = 0; i < ms->via.array.size; i++) {
			char name[VIGIL_NAME_MAX + 1], status[32];
			if (mp_get_str(&ms->via.array.ptr[i], "Name", name, sizeof name) &&
			    mp_get_str(&ms->via.array.ptr[i], "Status", status, sizeof status) &&
			    strcmp(status, "alive") == 0)
				json_object_set_new(live, name, json_true());
		}
	}
	msgpack_unpacked_destroy(&u);
	printf("Total members: %zu, live members: %zu\n", total, json_object_size(live));
	struct rpcc c;
	if (connect_agent(&c, &f) != 0) {
		json_decref(live);
		return 1;
	}
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 2);
	mp_pack_kbool(pk, "RequestAck", true);
	mp_pack_kstr(pk, "Name", "_serf_ping"); /* serf.InternalQueryPrefix + "ping" */
	uint64_t seq;
	if (query_start(&f, &c, &b, &seq) != 0) {
		json_decref(live);
		return 1;
	}
	printf("Starting reachability test...\n");
	fflush(stdout);
	r.acks = json_object();
	r.start_ms = r.last_ms = now_ms();
	if (query_events(&f, &c, seq, reach_ack, &r) != 0) {
		json_decref(live);
		json_decref(r.acks);
		return 1;
	}
	if (r.verbose)
		printf("Query time: %0.2f sec, time to last response: %0.2f sec\n",
		       (double)(now_ms() - r.start_ms) / 1000.0, (double)(r.last_ms - r.start_ms) / 1000.0);
	int exit_code = 0;
	if (r.dups) {
		printf("Duplicate responses means there is a misconfiguration. Verify that node names are unique.\n");
		exit_code = 1;
	}
	int n = (int)json_object_size(live);
	const char *k;
	json_t *val;
	if (r.n_acks == n) {
		printf("Successfully contacted all live nodes\n");
	} else if (r.n_acks > n) {
		printf("Received more acks than live nodes! Acks from non-live nodes:\n");
		json_object_foreach(r.acks, k, val)
			if (!json_object_get(live, k))
				printf("\t%s\n", k);
		printf("This could mean Serf is detecting false-failures due to a misconfiguration or network issue.\n%s\n",
		       reach_troubleshooting);
		exit_code = 1;
	} else {
		printf("Received less acks than live nodes! Missing acks from:\n");
		json_object_foreach(live, k, val)
			if (!json_object_get(r.acks, k))
				printf("\t%s\n", k);
		printf("This could mean Serf gossip packets are being lost due to a misconfiguration or network issue.\n%s\n",
		       reach_troubleshooting);
		exit_code = 1;
	}
	json_decref(live);
	json_decref(r.acks);
	return exit_code;
}

/* ------------------------------------------------------------------- rtt */

static const char rtt_help[] =
	"Usage: vigil rtt [options] node1 [node2]\n"
	"\n"
	"  Estimates the round trip time between two nodes using vigil's network\n"
	"  coordinate model of the cluster (compatible with serf's).\n"
	"\n"
	"  At least one node name is required. If the second node name isn't given, it\n"
	"  is set to the agent's node name. Note that these are node names as known to\n"
	"  vigil as \"vigil members\" would show, not IP addresses.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -rpc-addr=127.0.0.1:7373  RPC address of the vigil agent.\n"
	"\n"
	"  -rpc-auth=\"\"              RPC auth token of the vigil agent.\n";

/* RPC get-coordinate for node: 0 found, 1 (reported) otherwise. */
static int fetch_coordinate(struct cmdflags *f, const char *node, struct vigil_coord *out)
{
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 1);
	mp_pack_kstr(pk, "Node", node);
	msgpack_unpacked u;
	if (request(f, "get-coordinate", &b, &u, "Error getting coordinates") != 0)
		return 1;
	bool ok = false;
	const msgpack_object *co = mp_get(&u.data, "Coord");
	if (mp_get_bool(&u.data, "Ok", &ok) && ok && co && coord_unpack(co, out)) {
		msgpack_unpacked_destroy(&u);
		return 0;
	}
	msgpack_unpacked_destroy(&u);
	printf("Could not find a coordinate for node \"%s\"\n", node); /* serf's Ui: stdout */
	return 1;
}

/* serf's rtt command: same arguments, same output. */
static int cmd_rtt(int argc, char **argv)
{
	struct cmdflags f = {0};
	int rest, rc;
	if ((rc = fl_parse(&f, rtt_help, argc, argv, &rest)) != PARSED)
		return rc;
	char self[VIGIL_NAME_MAX + 1];
	const char *nodes[2] = { NULL, NULL };
	if (argc - rest == 1) {
		msgpack_unpacked u;
		if (request(&f, "stats", NULL, &u, "Error querying agent") != 0)
			return 1;
		const msgpack_object *agent = mp_get(&u.data, "agent");
		if (!agent || !mp_get_str(agent, "name", self, sizeof self))
			self[0] = '\0';
		msgpack_unpacked_destroy(&u);
		nodes[1] = self;
	} else if (argc - rest != 2) {
		printf("One or two node names must be specified\n\n%s\n", rtt_help);
		return 1;
	} else {
		nodes[1] = argv[rest + 1];
	}
	nodes[0] = argv[rest];
	struct vigil_coord c1, c2;
	if (fetch_coordinate(&f, nodes[0], &c1) != 0 || fetch_coordinate(&f, nodes[1], &c2) != 0)
		return 1;
	double d = vigil_coord_distance(&c1, &c2);
	if (d < 0) {
		printf("Error getting coordinates: dimensions aren't compatible\n");
		return 1;
	}
	/* Go: time.Duration (whole ns) then Seconds()*1000 */
	printf("Estimated %s <-> %s rtt: %.3f ms\n", nodes[0], nodes[1],
	       (double)(int64_t)(d * 1e9) / 1e6);
	return 0;
}

/* ------------------------------------------------------------------ will */

static const char will_help[] =
	"Usage: vigil will set (--to MEMBER | --event NAME) [--delay 30s] PAYLOAD|-\n"
	"       vigil will show [MEMBER]\n"
	"       vigil will clear\n"
	"\n"
	"  Manages this node's last will: a message the cluster delivers on the\n"
	"  node's behalf once it has failed (not when it leaves gracefully).\n"
	"\n"
	"  set    Store the will. With --to the payload is delivered to MEMBER\n"
	"         (its agent raises a member-will event); with --event it is\n"
	"         broadcast as the user event NAME. --delay waits that long after\n"
	"         the failure is confirmed (and cancels if the node comes back).\n"
	"         A PAYLOAD of \"-\" is read from standard input (at most 1024 bytes).\n"
	"  show   List the wills this agent holds, or only those owned by MEMBER.\n"
	"  clear  Withdraw this node's will.\n"
	"\n"
	"Options:\n"
	"\n"
	RPC_FLAGS_HELP;

static int will_set(int argc, char **argv)
{
	const char *to = "", *event = "";
	int64_t delay = 0;
	struct cmdflags f = {0};
	int rest, rc;
	fl_add(&f, "to", FLAG_STRING, &to);
	fl_add(&f, "event", FLAG_STRING, &event);
	fl_add(&f, "delay", FLAG_DURATION, &delay);
	if ((rc = fl_parse(&f, will_help, argc, argv, &rest)) != PARSED)
		return rc;
	if ((*to != '\0') == (*event != '\0'))
		return usage_error("Exactly one of --to or --event must be given.", will_help);
	if (argc - rest != 1)
		return usage_error("A payload (or - to read it from stdin) must be specified.", will_help);
	if (delay < 0) {
		fprintf(stdout, "The delay must not be negative.\n");
		return 1;
	}
	uint8_t buf[VIGIL_WILL_MAX + 1];
	size_t len = 0;
	if (strcmp(argv[rest], "-") == 0) {
		for (;;) {
			ssize_t n = read(0, buf + len, sizeof buf - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == sizeof buf)
				break;
		}
	} else {
		len = strlen(argv[rest]);
		if (len > VIGIL_WILL_MAX)
			len = VIGIL_WILL_MAX + 1;
		else
			memcpy(buf, argv[rest], len);
	}
	if (len > VIGIL_WILL_MAX) {
		fprintf(stdout, "Error setting will: payload exceeds %d bytes\n", VIGIL_WILL_MAX);
		return 1;
	}
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 4);
	mp_pack_kstr(pk, "To", to);
	mp_pack_kstr(pk, "Event", event);
	mp_pack_cstr(pk, "Delay");
	msgpack_pack_int64(pk, delay);
	mp_pack_cstr(pk, "Payload");
	mp_pack_binn(pk, buf, len);
	if (request(&f, "will-set", &b, NULL, "Error setting will") != 0)
		return 1;
	char d[32];
	format_go_duration(delay, d, sizeof d);
	if (*to)
		printf("Will set: %zu bytes for member '%s', delay %s\n", len, to, d);
	else
		printf("Will set: user event '%s' (%zu bytes), delay %s\n", event, len, d);
	return 0;
}

static int will_show(int argc, char **argv)
{
	struct cmdflags f = {0};
	int rest, rc;
	if ((rc = fl_parse(&f, will_help, argc, argv, &rest)) != PARSED)
		return rc;
	if (argc - rest > 1)
		return usage_error("At most one member name may be given.", will_help);
	struct mp_body b;
	mp_pack_kstr(mp_body_map(&b, 1), "Owner", argc - rest == 1 ? argv[rest] : "");
	msgpack_unpacked u;
	if (request(&f, "will-list", &b, &u, "Error listing wills") != 0)
		return 1;
	const msgpack_object *w = mp_get(&u.data, "Wills");
	struct lines l = {0};
	size_t n = w && w->type == MSGPACK_OBJECT_ARRAY ? w->via.array.size : 0;
	if (n)
		lines_add(&l, strdup("Owner|Delivery|Delay|Seq|Payload"));
	for (size_t i = 0; i < n; i++) {
		const msgpack_object *e = &w->via.array.ptr[i];
		char owner[256] = "", to[256] = "", ev[256] = "", d[32];
		int64_t delay = 0;
		uint64_t seq = 0;
		const char *p = "";
		size_t pl = 0;
		mp_get_str(e, "Owner", owner, sizeof owner);
		mp_get_str(e, "To", to, sizeof to);
		mp_get_str(e, "Event", ev, sizeof ev);
		mp_get_int(e, "Delay", &delay);
		mp_get_uint(e, "Seq", &seq);
		mp_as_bytes(mp_get(e, "Payload"), &p, &pl);
		format_go_duration(delay, d, sizeof d);
		/* payload shown printable, one line */
		char shown[200];
		size_t k = 0;
		for (size_t j = 0; j < pl && k + 5 < sizeof shown; j++) {
			unsigned char ch = (unsigned char)p[j];
			if (ch >= 0x20 && ch < 0x7f && ch != '|')
				shown[k++] = (char)ch;
			else
				k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", ch);
		}
		shown[k] = '\0';
		lines_add(&l, xprintf("%s|%s%s|%s|%llu|%s", owner, *to ? "member:" : "event:",
				      *to ? to : ev, d, (unsigned long long)seq, shown));
	}
	msgpack_unpacked_destroy(&u);
	if (n)
		print_columns(&l, true);
	else
		printf("No wills known.\n");
	return 0;
}

static int will_clear(int argc, char **argv)
{
	struct cmdflags f = {0};
	int rest, rc;
	if ((rc = fl_parse(&f, will_help, argc, argv, &rest)) != PARSED)
		return rc;
	if (request(&f, "will-clear", NULL, NULL, "Error clearing will") != 0)
		return 1;
	printf("Will cleared\n");
	return 0;
}

static int cmd_will(int argc, char **argv)
{
	if (argc < 1)
		return usage_error(NULL, will_help);
	if (strcmp(argv[0], "set") == 0)
		return will_set(argc - 1, argv + 1);
	if (strcmp(argv[0], "show") == 0)
		return will_show(argc - 1, argv + 1);
	if (strcmp(argv[0], "clear") == 0)
		return will_clear(argc - 1, argv + 1);
	printf("Unknown will subcommand: %s\n\n", argv[0]);
	return usage_error(NULL, will_help);
}

/* -------------------------------------------------------- version/keygen */

static int cmd_version(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("vigil v%s\n", VIGIL_VERSION);
	/* the agent's default -protocol, and the range vigil_create accepts */
	printf("Agent Protocol: 5 (Understands back to: 2)\n");
	return 0;
}

static const char keygen_help[] =
	"Usage: vigil keygen\n"
	"\n"
	"  Generates a new encryption key that can be used to configure the\n"
	"  agent to encrypt traffic. The output of this command is already\n"
	"  in the proper format that the agent expects.";

static int cmd_keygen(int argc, char **argv)
{
	struct flag_def none[1];
	int rest, rc;
	if ((rc = parse_or_usage(none, 0, keygen_help, argc, argv, &rest)) != PARSED)
		return rc;
	unsigned char key[32];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	while (fd >= 0 && got < sizeof key) {
		ssize_t n = read(fd, key + got, sizeof key - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (got != sizeof key) {
		fprintf(stdout, "Error reading random data: %s\n", strerror(errno));
		return 1;
	}
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char out[48];
	size_t o = 0;
	for (size_t i = 0; i < sizeof key; i += 3) {
		uint32_t v = (uint32_t)key[i] << 16;
		if (i + 1 < sizeof key)
			v |= (uint32_t)key[i + 1] << 8;
		if (i + 2 < sizeof key)
			v |= key[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < sizeof key ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < sizeof key ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	printf("%s\n", out);
	return 0;
}

/* --------------------------------------------------------------- dispatch */

struct command {
	const char *name;
	const char *synopsis;
	int (*run)(int argc, char **argv);
	const char *help;
};

static int run_agent(int argc, char **argv)
{
	return agent_main(argc, argv);
}

static const struct command commands[] = {
	{"agent", "Runs a vigil agent", run_agent, NULL},
	{"event", "Send a custom event through the cluster", cmd_event, event_help},
	{"force-leave", "Forces a member of the cluster to enter the \"left\" state",
	 cmd_force_leave, force_leave_help},
	{"info", "Provides debugging information for operators", cmd_info, info_help},
	{"join", "Tell the agent to join cluster", cmd_join, join_help},
	{"keygen", "Generates a new encryption key", cmd_keygen, keygen_help},
	{"keys", "Manipulate the internal encryption keyring", cmd_keys, keys_help},
	{"leave", "Gracefully leaves the cluster and shuts down", cmd_leave, leave_help},
	{"members", "Lists the members of a cluster", cmd_members, members_help},
	{"monitor", "Stream logs from an agent", cmd_monitor, monitor_help},
	{"query", "Send a query to the cluster", cmd_query, query_help},
	{"reachability", "Test network reachability", cmd_reachability, reachability_help},
	{"rtt", "Estimates network round trip time between nodes", cmd_rtt, rtt_help},
	{"tags", "Modify tags of a running agent", cmd_tags, tags_help},
	{"version", "Prints the vigil version", cmd_version, NULL},
	{"will", "Set, show or clear this node's last will", cmd_will, will_help},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vigil [--version] [--help] <command> [<args>]\n\n"
		   "Available commands are:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "    %-15s %s\n", commands[i].name, commands[i].synopsis);
	fputc('\n', f);
}

int cli_main(int argc, char **argv)
{
	/* argv[0] is the program; like mitchellh/cli, -h/-help/--help
	 * anywhere before "--" means help, -v/--version first means version */
	if (argc < 2) {
		usage(stderr);
		return 127;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "-v") == 0 || strcmp(sub, "--version") == 0 || strcmp(sub, "-version") == 0)
		return cmd_version(0, NULL);
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-help") == 0) {
		usage(stderr);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i].name, sub) != 0)
			continue;
		for (int k = 2; k < argc; k++) {
			if (strcmp(argv[k], "--") == 0)
				break;
			if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "-help") == 0 ||
			    strcmp(argv[k], "--help") == 0) {
				if (commands[i].help)
					fprintf(stderr, "%s\n", commands[i].help);
				else if (commands[i].run == run_agent)
					return agent_main(1, (char *[]){"--help", NULL});
				return 0;
			}
		}
		return commands[i].run(argc - 2, argv + 2);
	}
	usage(stderr);
	return 127;
}
