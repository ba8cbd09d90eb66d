/*
 * cli_common.h — what every `vigil <command>` shares: Go-flag parsing with
 * the common -rpc-addr / -rpc-auth, the RPC client calls, Ctrl-C on
 * streams, and serf's output formats (columns, JSON, usage errors).
 */
#ifndef VIGIL_AGENT_CLI_COMMON_H
#define VIGIL_AGENT_CLI_COMMON_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "flags.h"
#include "mp.h"
#include "rpcclient.h"

/* The commands, by group: `vigil NAME` runs cli_cmd_NAME (argv[0] is its
 * first argument; the exit status), cli_NAME_help is its help text. */
/* cli_members.c */
int cli_cmd_members(int argc, char **argv);
int cli_cmd_join(int argc, char **argv);
int cli_cmd_leave(int argc, char **argv);
int cli_cmd_force_leave(int argc, char **argv);
int cli_cmd_tags(int argc, char **argv);
int cli_cmd_info(int argc, char **argv);
int cli_cmd_rtt(int argc, char **argv);
/* cli_events.c */
int cli_cmd_event(int argc, char **argv);
int cli_cmd_query(int argc, char **argv);
int cli_cmd_monitor(int argc, char **argv);
int cli_cmd_reachability(int argc, char **argv);
/* cli_keys.c */
int cli_cmd_keys(int argc, char **argv);
int cli_cmd_keygen(int argc, char **argv);
int cli_cmd_will(int argc, char **argv);
extern const char cli_members_help[], cli_join_help[], cli_leave_help[], cli_force_leave_help[],
	cli_tags_help[], cli_info_help[], cli_rtt_help[], cli_event_help[], cli_query_help[],
	cli_monitor_help[], cli_reachability_help[], cli_keys_help[], cli_keygen_help[],
	cli_will_help[];

/* The common flags in the commands' help texts. */
#define RPC_ADDR_HELP "  -rpc-addr=127.0.0.1:7373  RPC address of the agent.\n"
#define RPC_AUTH_HELP "  -rpc-auth=\"\"              RPC auth token of the agent."
#define RPC_FLAGS_HELP RPC_ADDR_HELP RPC_AUTH_HELP
/* -format; info's help aligns its columns one space further left */
#define FORMAT_HELP(pad)                                                                 \
	"  -format                  " pad "If provided, output is returned in the specified\n" \
	"                           " pad "format. Valid formats are 'json', and 'text' (default)\n"

struct lines {
	char **v;
	size_t n;
};

#define CLI_MAX_FLAGS 16

struct cmdflags {
	struct flag_def d[CLI_MAX_FLAGS];
	size_t n;
	const char *rpc_addr, *rpc_auth;
	int timeout_ms; /* per request once connected; 0: the client's default */
	char err[512];	/* the agent's (or the transport's) error */
};

/* cli_parse_flags / cli_parse_or_usage: go on with the command */
#define CLI_PARSED (-1)

/* Set by SIGINT/SIGTERM once cli_catch_interrupt() ran (serf's ShutdownCh). */
extern volatile sig_atomic_t cli_interrupted;

/* Go's encoding/json string escaping (including its HTML-safe <, >, &). */
void cli_json_str(FILE *f, const char *s, size_t n);

void cli_print_json(json_t *v);

/* github.com/ryanuber/columnize SimpleFormat: "|"-separated cells, trimmed,
 * padded to the column width, glued with two spaces; the last cell of a
 * line is not padded.  serf then trims the whole output. */
char *cli_columnize(char **lines, size_t n);

void cli_lines_add(struct lines *l, char *s);

void cli_lines_free(struct lines *l);

char *cli_xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void cli_flag(struct cmdflags *f, const char *name, enum flag_kind k, void *dst);

/* serf's usage error: the message (if any), a blank line, then the help, all
 * on stdout (Ui.Output); exit status 1. */
int cli_usage_error(const char *msg, const char *help);

/* CLI_PARSED, or the exit status to return with: -h/-help prints the help on
 * stderr (status 0); for a bad flag Go's flag package prints the error on
 * stderr, then Usage, i.e. the help on stdout (status 1). */
int cli_parse_or_usage(struct flag_def *d, size_t n, const char *help, int argc, char **argv,
			  int *rest);

/* The command's flags plus the common -rpc-addr / -rpc-auth. */
int cli_parse_flags(struct cmdflags *f, const char *help, int argc, char **argv, int *rest);

/* Connect, handshake and authenticate as the flags say. */
int cli_connect(struct rpcc *c, struct cmdflags *f);

/*
 * One request on an open connection, which is closed afterwards: cmd with
 * body (NULL: none; freed here), its answer into resp (NULL: no body
 * expected; initialised here).  0 on success; otherwise 1 with the error in
 * f->err and, when what != NULL, printed as "<what>: <error>" and resp freed.
 */
int cli_call(struct cmdflags *f, struct rpcc *c, const char *cmd, struct mp_body *body,
		      msgpack_unpacked *resp, const char *what);

/* cli_connect, then cli_call; 0 or the exit status 1 (reported). */
int cli_request(struct cmdflags *f, const char *cmd, struct mp_body *body,
		   msgpack_unpacked *resp, const char *what);

/* Start a streaming request: send cmd + body (freed here) under *seq. */
int cli_send_stream(struct rpcc *c, const char *cmd, struct mp_body *body, uint64_t *seq);

/* serf's UnmarshalTags ("key=value", key non-empty). */
int cli_parse_tags(const struct flag_list *l, json_t **out);

void cli_pack_json_strmap(msgpack_packer *pk, json_t *o);

/* serf's Payload: the bytes given, or nil (no payload argument). */
void cli_pack_payload(msgpack_packer *pk, const char *payload);

/* event and query take a name and an optional payload. */
const char *cli_name_payload_error(int nargs, const char *no_name);

void cli_pack_strarray(msgpack_packer *pk, const struct flag_list *l);

void cli_catch_interrupt(void);

/* Next record header on a stream: 0 one arrived, 1 interrupted (^C),
 * -1 the agent went away. */
int cli_stream_header(struct rpcc *c, uint64_t *got, char *err, size_t errlen);

/* The body after a stream record's header; false (u freed) if it never came. */
bool cli_stream_body(struct rpcc *c, msgpack_unpacked *u);

/* Columnized lines on stdout, serf-trimmed or as they are; frees l. */
void cli_print_columns(struct lines *l, bool trim);

/* -format: json or text, anything else is serf's encoding error. */
int cli_print_output(const char *format, json_t *json, const char *text);

#endif
