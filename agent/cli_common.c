/* cli_common.c — see cli_common.h. */
#include "cli_common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- output */

void cli_json_str(FILE *f, const char *s, size_t n)
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
			cli_json_str(f, k, strlen(k));
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
		cli_json_str(f, json_string_value(v), json_string_length(v));
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

void cli_print_json(json_t *v)
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

char *cli_columnize(char **lines, size_t n)
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

void cli_lines_add(struct lines *l, char *s)
{
	char **n = realloc(l->v, (l->n + 1) * sizeof *n);
	if (!n || !s) {
		free(s);
		return;
	}
	l->v = n;
	l->v[l->n++] = s;
}

void cli_lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

char *cli_xprintf(const char *fmt, ...)
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

void cli_flag(struct cmdflags *f, const char *name, enum flag_kind k, void *dst)
{
	f->d[f->n++] = (struct flag_def){name, k, dst, false};
}

int cli_usage_error(const char *msg, const char *help)
{
	if (msg)
		printf("%s\n\n", msg);
	printf("%s\n", help);
	return 1;
}

int cli_parse_or_usage(struct flag_def *d, size_t n, const char *help, int argc, char **argv,
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
		return cli_usage_error(NULL, help);
	}
	return CLI_PARSED;
}

int cli_parse_flags(struct cmdflags *f, const char *help, int argc, char **argv, int *rest)
{
	f->rpc_addr = default_rpc_addr();
	f->rpc_auth = default_rpc_auth();
	cli_flag(f, "rpc-addr", FLAG_STRING, &f->rpc_addr);
	cli_flag(f, "rpc-auth", FLAG_STRING, &f->rpc_auth);
	return cli_parse_or_usage(f->d, f->n, help, argc, argv, rest);
}

int cli_connect(struct rpcc *c, struct cmdflags *f)
{
	if (rpcc_open(c, f->rpc_addr, f->rpc_auth, f->err, sizeof f->err) != 0) {
		fprintf(stdout, "Error connecting to Serf agent: %s\n", f->err);
		return -1;
	}
	if (f->timeout_ms)
		c->timeout_ms = f->timeout_ms;
	return 0;
}

int cli_call(struct cmdflags *f, struct rpcc *c, const char *cmd, struct mp_body *body,
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

int cli_request(struct cmdflags *f, const char *cmd, struct mp_body *body,
		   msgpack_unpacked *resp, const char *what)
{
	struct rpcc c;
	if (cli_connect(&c, f) != 0) {
		if (body)
			msgpack_sbuffer_destroy(&body->sb);
		return 1;
	}
	return cli_call(f, &c, cmd, body, resp, what);
}

int cli_send_stream(struct rpcc *c, const char *cmd, struct mp_body *body, uint64_t *seq)
{
	*seq = c->seq++;
	int rc = rpcc_send(c, cmd, *seq, &body->sb);
	msgpack_sbuffer_destroy(&body->sb);
	return rc;
}

int cli_parse_tags(const struct flag_list *l, json_t **out)
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

void cli_pack_json_strmap(msgpack_packer *pk, json_t *o)
{
	msgpack_pack_map(pk, json_object_size(o));
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	mp_pack_kstr(pk, k, json_string_value(v));
}

void cli_pack_payload(msgpack_packer *pk, const char *payload)
{
	mp_pack_cstr(pk, "Payload");
	if (payload)
		mp_pack_binn(pk, payload, strlen(payload));
	else
		msgpack_pack_nil(pk);
}

const char *cli_name_payload_error(int nargs, const char *no_name)
{
	if (nargs < 1)
		return no_name;
	if (nargs > 2)
		return "Too many command line arguments. Only a name and payload must be specified.";
	return NULL;
}

void cli_pack_strarray(msgpack_packer *pk, const struct flag_list *l)
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
volatile sig_atomic_t cli_interrupted;
static void on_int(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

void cli_catch_interrupt(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_int;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll must return EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cli_stream_header(struct rpcc *c, uint64_t *got, char *err, size_t errlen)
{
	for (;;) {
		int r = rpcc_read_header(c, got, err, errlen, -1);
		if (r != -2)
			return r != 0 ? -1 : 0;
		if (cli_interrupted)
			return 1;
	}
}

bool cli_stream_body(struct rpcc *c, msgpack_unpacked *u)
{
	msgpack_unpacked_init(u);
	if (rpcc_read_obj(c, u, 10000) == 0)
		return true;
	msgpack_unpacked_destroy(u);
	return false;
}

void cli_print_columns(struct lines *l, bool trim)
{
	char *out = cli_columnize(l->v, l->n);
	if (trim)
		print_trimmed(out);
	else
		fprintf(stdout, "%s\n", out);
	free(out);
	cli_lines_free(l);
}

int cli_print_output(const char *format, json_t *json, const char *text)
{
	if (strcmp(format, "json") == 0) {
		cli_print_json(json);
	} else if (strcmp(format, "text") == 0) {
		print_trimmed(text);
	} else {
		fprintf(stdout, "Encoding error: Invalid output format \"%s\"\n", format);
		return 1;
	}
	return 0;
}
