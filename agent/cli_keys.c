/*
 * cli_keys.c — the commands about keys and wills: keys (the cluster's
 * keyring), keygen, and vigil's own will.
 */
#include "cli_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil.h"

/* ------------------------------------------------------------------ keys */

const char cli_keys_help[] =
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
			cli_lines_add(&l, cli_xprintf("failed: | %.*s | %.*s", (int)kl, k, (int)vl, v));
	}
	cli_print_columns(&l, false);
}

int cli_cmd_keys(int argc, char **argv)
{
	const char *install = "", *use = "", *remove_ = "";
	bool list = false;
	struct cmdflags f = {0};
	int rest, rc;
	cli_flag(&f, "install", FLAG_STRING, &install);
	cli_flag(&f, "use", FLAG_STRING, &use);
	cli_flag(&f, "remove", FLAG_STRING, &remove_);
	cli_flag(&f, "list", FLAG_BOOL, &list);
	if ((rc = cli_parse_flags(&f, cli_keys_help, argc, argv, &rest)) != CLI_PARSED)
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
		return cli_usage_error(NULL, cli_keys_help);
	/* the agent answers once the whole cluster did or the key query timed
	 * out (serf's default: 3.2 s up to 9 nodes, more for bigger clusters);
	 * serf's client waits as long as it takes */
	f.timeout_ms = 120000;
	struct rpcc c;
	if (cli_connect(&c, &f) != 0)
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
	if (cli_call(&f, &c, cmd, key ? &b : NULL, &u, NULL) != 0) {
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
			cli_lines_add(&l, cli_xprintf("%.*s | [%lld/%lld]", (int)kl, kp, (long long)num, (long long)total));
		}
		cli_print_columns(&l, false);
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}

/* ---------------------------------------------------------------- keygen */

const char cli_keygen_help[] =
	"Usage: vigil keygen\n"
	"\n"
	"  Generates a new encryption key that can be used to configure the\n"
	"  agent to encrypt traffic. The output of this command is already\n"
	"  in the proper format that the agent expects.";

int cli_cmd_keygen(int argc, char **argv)
{
	struct flag_def none[1];
	int rest, rc;
	if ((rc = cli_parse_or_usage(none, 0, cli_keygen_help, argc, argv, &rest)) != CLI_PARSED)
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

/* ------------------------------------------------------------------ will */

const char cli_will_help[] =
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
	cli_flag(&f, "to", FLAG_STRING, &to);
	cli_flag(&f, "event", FLAG_STRING, &event);
	cli_flag(&f, "delay", FLAG_DURATION, &delay);
	if ((rc = cli_parse_flags(&f, cli_will_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	if ((*to != '\0') == (*event != '\0'))
		return cli_usage_error("Exactly one of --to or --event must be given.", cli_will_help);
	if (argc - rest != 1)
		return cli_usage_error("A payload (or - to read it from stdin) must be specified.", cli_will_help);
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
	if (cli_request(&f, "will-set", &b, NULL, "Error setting will") != 0)
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
	if ((rc = cli_parse_flags(&f, cli_will_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	if (argc - rest > 1)
		return cli_usage_error("At most one member name may be given.", cli_will_help);
	struct mp_body b;
	mp_pack_kstr(mp_body_map(&b, 1), "Owner", argc - rest == 1 ? argv[rest] : "");
	msgpack_unpacked u;
	if (cli_request(&f, "will-list", &b, &u, "Error listing wills") != 0)
		return 1;
	const msgpack_object *w = mp_get(&u.data, "Wills");
	struct lines l = {0};
	size_t n = w && w->type == MSGPACK_OBJECT_ARRAY ? w->via.array.size : 0;
	if (n)
		cli_lines_add(&l, strdup("Owner|Delivery|Delay|Seq|Payload"));
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
		cli_lines_add(&l, cli_xprintf("%s|%s%s|%s|%llu|%s", owner, *to ? "member:" : "event:",
				      *to ? to : ev, d, (unsigned long long)seq, shown));
	}
	msgpack_unpacked_destroy(&u);
	if (n)
		cli_print_columns(&l, true);
	else
		printf("No wills known.\n");
	return 0;
}

static int will_clear(int argc, char **argv)
{
	struct cmdflags f = {0};
	int rest, rc;
	if ((rc = cli_parse_flags(&f, cli_will_help, argc, argv, &rest)) != CLI_PARSED)
		return rc;
	if (cli_request(&f, "will-clear", NULL, NULL, "Error clearing will") != 0)
		return 1;
	printf("Will cleared\n");
	return 0;
}

int cli_cmd_will(int argc, char **argv)
{
	if (argc < 1)
		return cli_usage_error(NULL, cli_will_help);
	if (strcmp(argv[0], "set") == 0)
		return will_set(argc - 1, argv + 1);
	if (strcmp(argv[0], "show") == 0)
		return will_show(argc - 1, argv + 1);
	if (strcmp(argv[0], "clear") == 0)
		return will_clear(argc - 1, argv + 1);
	printf("Unknown will subcommand: %s\n\n", argv[0]);
	return cli_usage_error(NULL, cli_will_help);
}

