/*
 * cli_events.c — the commands about events and queries: event, query,
 * monitor and reachability (serf's cmd/serf/command/NAME.go).
 */
#include "cli_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent_state.h"

/* ----------------------------------------------------------------- event */

const char cli_event_help[] =
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

int cli_cmd_event(int argc, char **argv)
{
	bool coalesce = true;
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "coalesce", FLAG_BOOL, &coalesce);
	if ((rc = cli_parse_flags(&f, cli_event_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	int nargs = argc - rest;
	const char *bad = cli_name_payload_error(nargs, "An event name must be specified.");
	if (bad)
		return cli_usage_error(bad, cli_event_help);
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 3);
	mp_pack_kstr(pk, "Name", argv[rest]);
	cli_pack_payload(pk, nargs == 2 ? argv[rest + 1] : NULL);
	mp_pack_kbool(pk, "Coalesce", coalesce);
	if (cli_request(&f, "event", &b, NULL, "Error sending event") != 0)
		return 1;
	printf("Event '%s' dispatched! Coalescing enabled: %s\n", argv[rest], coalesce ? "true" : "false");
	return 0;
}

/* ----------------------------------------------------------------- query */

const char cli_query_help[] =
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
	cli_catch_interrupt();
	char *err = f->err;
	const char *fail = NULL;
	if (cli_send_stream(c, "query", b, seq) != 0)
		fail = "client closed";
	uint64_t got = 0;
	while (!fail && got != *seq) {
		if (rpcc_read_header(c, &got, err, sizeof f->err, 10000) != 0)
			fail = cli_interrupted ? "interrupted" : "client closed";
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
		int r = cli_stream_header(c, &got, f->err, sizeof f->err);
		if (r > 0) {
			rpcc_close(c);
			return 1;
		}
		if (r != 0)
			break;
		if (got != seq)
			continue;
		msgpack_unpacked u;
		if (!cli_stream_body(c, &u))
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

int cli_cmd_query(int argc, char **argv)
{
	bool noack = false;
	struct flag_list nodes = {0}, tags = {0};
	int64_t timeout = 0;
	long long relay = 0;
	const char *format = "text";
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "node", FLAG_LIST, &nodes);
	cli_flag(&f, "tag", FLAG_LIST, &tags);
	cli_flag(&f, "timeout", FLAG_DURATION, &timeout);
	cli_flag(&f, "no-ack", FLAG_BOOL, &noack);
	cli_flag(&f, "format", FLAG_STRING, &format);
	cli_flag(&f, "relay-factor", FLAG_INT, &relay);
	rc = cli_parse_flags(&f, cli_query_help, argc, argv, &rest);
	json_t *ftags = NULL;
	if (rc == CLI_PARSED && cli_parse_tags(&tags, &ftags) != 0)
		rc = 1;
	flag_list_free(&tags);
	if (rc != CLI_PARSED) {
		flag_list_free(&nodes);
		return rc;
	}
	int nargs = argc - rest;
	const char *bad = cli_name_payload_error(nargs, "A query name must be specified.");
	struct rpcc c;
	if (bad) {
		rc = cli_usage_error(bad, cli_query_help);
	} else if (relay > 255 || relay < 0) {
		fprintf(stdout, "Relay factor must be between 0 and 255\n");
		rc = 1;
	} else if (cli_connect(&c, &f) != 0) {
		rc = 1;
	} else if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
		fprintf(stdout, "Invalid format: %s\n", format);
		rpcc_close(&c);
		rc = 1;
	}
	if (rc != CLI_PARSED) {
		flag_list_free(&nodes);
		json_decref(ftags);
		return rc;
	}
	const char *name = argv[rest];
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 7);
	mp_pack_cstr(pk, "FilterNodes");
	cli_pack_strarray(pk, &nodes);
	mp_pack_cstr(pk, "FilterTags");
	cli_pack_json_strmap(pk, ftags);
	mp_pack_kbool(pk, "RequestAck", !noack);
	mp_pack_kuint(pk, "RelayFactor", (uint64_t)relay);
	mp_pack_cstr(pk, "Timeout");
	msgpack_pack_int64(pk, timeout);
	mp_pack_kstr(pk, "Name", name);
	cli_pack_payload(pk, nargs == 2 ? argv[rest + 1] : NULL);
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
		cli_print_json(root);
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

/* --------------------------------------------------------------- monitor */

const char cli_monitor_help[] =
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
	case MSGPACK_OBJECT_STR: cli_json_str(f, o->via.str.ptr, o->via.str.size); break;
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

int cli_cmd_monitor(int argc, char **argv)
{
	const char *level = "INFO";
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "log-level", FLAG_STRING, &level);
	if ((rc = cli_parse_flags(&f, cli_monitor_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	struct rpcc c;
	if (cli_connect(&c, &f) != 0)
		return 1;
	cli_catch_interrupt();
	char *err = f.err;

	/* stream "*" first, then monitor, exactly like serf's monitor */
	struct mp_body sb, mb;
	mp_pack_kstr(mp_body_map(&sb, 1), "Type", "*");
	mp_pack_kstr(mp_body_map(&mb, 1), "LogLevel", level);
	uint64_t sseq, mseq;
	rc = cli_send_stream(&c, "stream", &sb, &sseq);
	if (rc == 0)
		rc = cli_send_stream(&c, "monitor", &mb, &mseq);
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
		int r = cli_stream_header(&c, &got, err, sizeof f.err);
		if (r > 0) {
			rpcc_close(&c);
			return 0;
		}
		if (r != 0)
			break;
		/* the first answer to each request says whether it started */
		bool *started = got == sseq && !sinit ? &sinit : got == mseq && !minit ? &minit : NULL;
		if (started) {
			*started = true;
			if (err[0]) {
				fprintf(stdout, "Error starting %s: %s\n", started == &sinit ? "stream" : "monitor",
					err);
				rpcc_close(&c);
				return 1;
			}
			continue;
		}
		if (got != sseq && got != mseq)
			continue;
		msgpack_unpacked u;
		if (!cli_stream_body(&c, &u))
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
	if (cli_interrupted)
		return 0;
	printf("\nRemote side ended the monitor! This usually means that the\n"
	       "remote side has exited or crashed.\n");
	return 1;
}

/* ---------------------------------------------------------- reachability */

const char cli_reachability_help[] =
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
int cli_cmd_reachability(int argc, char **argv)
{
	struct reach r = { 0 };
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "verbose", FLAG_BOOL, &r.verbose);
	if ((rc = cli_parse_flags(&f, cli_reachability_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	msgpack_unpacked u;
	if (cli_request(&f, "members", NULL, &u, "Error getting members") != 0)
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
	if (cli_connect(&c, &f) != 0) {
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

