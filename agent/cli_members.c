/*
 * cli_members.c — the membership commands: members, join, leave,
 * force-leave, tags, info and rtt (serf's cmd/serf/command/NAME.go).
 */
#include "cli_common.h"

#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "coordinate.h"

/* --------------------------------------------------------------- members */

const char cli_members_help[] =
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

int cli_cmd_members(int argc, char **argv)
{
	bool detailed = false;
	const char *role = "", *status = "", *name = "", *format = "text";
	struct flag_list tags = {0};
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "detailed", FLAG_BOOL, &detailed);
	cli_flag(&f, "role", FLAG_STRING, &role);
	cli_flag(&f, "status", FLAG_STRING, &status);
	cli_flag(&f, "format", FLAG_STRING, &format);
	cli_flag(&f, "tag", FLAG_LIST, &tags);
	cli_flag(&f, "name", FLAG_STRING, &name);
	if ((rc = cli_parse_flags(&f, cli_members_help, argc, argv, &rest)) != CLI_PARSED) {
		flag_list_free(&tags);
		return rc;
	}
	char *roletag = NULL;
	if (*role) {
		printf("Deprecation warning: 'Role' has been replaced with 'Tags'\n");
		roletag = cli_xprintf("role=%s", role);
		flag_list_add(&tags, roletag);
	}
	json_t *reqtags = NULL;
	if (cli_parse_tags(&tags, &reqtags) != 0) {
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
	cli_pack_json_strmap(pk, reqtags);
	mp_pack_kstr(pk, "Status", status);
	mp_pack_kstr(pk, "Name", name);
	json_decref(reqtags);
	msgpack_unpacked u;
	if (cli_request(&f, "members-filtered", &b, &u, "Error retrieving members") != 0)
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
			pairs[np] = cli_xprintf("%.*s=%.*s", (int)kl, kp, (int)vl, vp);
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
			line = cli_xprintf("%s|%s|%s|%s|Protocol Version: %llu|Available Protocol Range: [%llu, %llu]",
				       mname, addr, mstatus, joined ? joined : "",
				       (unsigned long long)dcur, (unsigned long long)dmin,
				       (unsigned long long)dmax);
		else
			line = cli_xprintf("%s|%s|%s|%s", mname, addr, mstatus, joined ? joined : "");
		cli_lines_add(&lines, line);
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
	char *text = cli_columnize(lines.v, lines.n);
	rc = cli_print_output(format, root, text);
	free(text);
	json_decref(root);
	cli_lines_free(&lines);
	return rc;
}

/* ------------------------------------------------------------------ join */

const char cli_join_help[] =
	"Usage: vigil join [options] address ...\n"
	"\n"
	"  Tells a running agent (with \"vigil agent\") to join the cluster\n"
	"  by specifying at least one existing member.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -replay                   Replay past user events.\n"
	RPC_FLAGS_HELP;

int cli_cmd_join(int argc, char **argv)
{
	bool replay = false;
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "replay", FLAG_BOOL, &replay);
	if ((rc = cli_parse_flags(&f, cli_join_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	if (rest >= argc)
		return cli_usage_error("At least one address to join must be specified.", cli_join_help);
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 2);
	mp_pack_cstr(pk, "Existing");
	msgpack_pack_array(pk, (size_t)(argc - rest));
	for (int i = rest; i < argc; i++)
		mp_pack_cstr(pk, argv[i]);
	mp_pack_kbool(pk, "Replay", replay);
	msgpack_unpacked u;
	if (cli_request(&f, "join", &b, &u, "Error joining the cluster") != 0)
		return 1;
	int64_t num = 0;
	mp_get_int(&u.data, "Num", &num);
	msgpack_unpacked_destroy(&u);
	printf("Successfully joined cluster by contacting %lld nodes.\n", (long long)num);
	return 0;
}

/* ----------------------------------------------------------------- leave */

const char cli_leave_help[] =
	"Usage: vigil leave\n"
	"\n"
	"  Causes the agent to gracefully leave the cluster and shutdown.\n"
	"\n"
	"Options:\n"
	"\n"
	RPC_FLAGS_HELP;

int cli_cmd_leave(int argc, char **argv)
{
	struct cmdflags f = {0};
	int rest, rc;
	if ((rc = cli_parse_flags(&f, cli_leave_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	f.timeout_ms = 30000; /* the agent answers after the leave finished */
	if (cli_request(&f, "leave", NULL, NULL, "Error leaving") != 0)
		return 1;
	printf("Graceful leave complete\n");
	return 0;
}

/* ----------------------------------------------------------- force-leave */

const char cli_force_leave_help[] =
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

int cli_cmd_force_leave(int argc, char **argv)
{
	bool prune = false;
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "prune", FLAG_BOOL, &prune);
	if ((rc = cli_parse_flags(&f, cli_force_leave_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	if (argc - rest != 1)
		return cli_usage_error("A node name must be specified to force leave.", cli_force_leave_help);
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 2);
	mp_pack_kstr(pk, "Node", argv[rest]);
	mp_pack_kbool(pk, "Prune", prune);
	return cli_request(&f, "force-leave", &b, NULL, "Error force leaving");
}

/* ------------------------------------------------------------------ tags */

const char cli_tags_help[] =
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

int cli_cmd_tags(int argc, char **argv)
{
	struct flag_list set = {0}, del = {0};
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "set", FLAG_LIST, &set);
	cli_flag(&f, "delete", FLAG_LIST, &del);
	rc = cli_parse_flags(&f, cli_tags_help, argc, argv, &rest);
	if (rc == CLI_PARSED && set.n == 0 && del.n == 0)
		rc = cli_usage_error(NULL, cli_tags_help);
	json_t *tags = NULL;
	struct rpcc c;
	if (rc == CLI_PARSED && cli_connect(&c, &f) != 0)
		rc = 1;
	else if (rc == CLI_PARSED && cli_parse_tags(&set, &tags) != 0) {
		rpcc_close(&c);
		rc = 1;
	}
	if (rc != CLI_PARSED) {
		flag_list_free(&set);
		flag_list_free(&del);
		return rc;
	}
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 2);
	mp_pack_cstr(pk, "Tags");
	cli_pack_json_strmap(pk, tags);
	mp_pack_cstr(pk, "DeleteTags");
	cli_pack_strarray(pk, &del);
	json_decref(tags);
	flag_list_free(&set);
	flag_list_free(&del);
	if (cli_call(&f, &c, "tags", &b, NULL, "Error setting tags") != 0)
		return 1;
	printf("Successfully updated agent tags\n");
	return 0;
}

/* ------------------------------------------------------------------ info */

const char cli_info_help[] =
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

int cli_cmd_info(int argc, char **argv)
{
	const char *format = "text";
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "format", FLAG_STRING, &format);
	if ((rc = cli_parse_flags(&f, cli_info_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	msgpack_unpacked u;
	if (cli_request(&f, "stats", NULL, &u, "Error querying agent") != 0)
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
	rc = cli_print_output(format, jroot, text ? text : "");
	free(text);
	json_decref(jroot);
	return rc;
}

/* ------------------------------------------------------------------- rtt */

const char cli_rtt_help[] =
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
	if (cli_request(f, "get-coordinate", &b, &u, "Error getting coordinates") != 0)
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
int cli_cmd_rtt(int argc, char **argv)
{
	struct cmdflags f = {0};
	int rest, rc;
	if ((rc = cli_parse_flags(&f, cli_rtt_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	char self[VIGIL_NAME_MAX + 1];
	const char *nodes[2] = { NULL, NULL };
	if (argc - rest == 1) {
		msgpack_unpacked u;
		if (cli_request(&f, "stats", NULL, &u, "Error querying agent") != 0)
			return 1;
		const msgpack_object *agent = mp_get(&u.data, "agent");
		if (!agent || !mp_get_str(agent, "name", self, sizeof self))
			self[0] = '\0';
		msgpack_unpacked_destroy(&u);
		nodes[1] = self;
	} else if (argc - rest != 2) {
		printf("One or two node names must be specified\n\n%s\n", cli_rtt_help);
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

