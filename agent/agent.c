/*
 * agent.c — `vigil agent`: a drop-in for `serf agent`.
 *
 * Flags and JSON config keys are serf's (cmd/serf/command/agent/command.go
 * and config.go).  One thread runs one poll loop over a registry of poll
 * sources (poll_sources.h): a signal self-pipe, the agent's timers, the
 * library's sockets (vigil_pollfds), the coalescer, the RPC listener and
 * clients, the running event handler's pipes and the metrics endpoint.
 *
 * Signals, as serf handles them (command.go handleSignals):
 *   SIGINT  graceful leave (unless skip_leave_on_interrupt), then exit 0;
 *           exit 1 if the leave does not finish within 3 s or a second
 *           signal arrives.
 *   SIGTERM no leave unless leave_on_terminate: the process just stops and
 *           the cluster will notice the node as failed.  serf then exits
 *           with status 1, and so do we, so supervisors see the same thing.
 *   SIGHUP  reload: config files are re-read; log level, event handlers
 *           and tags are updated.
 */
#include "agent.h"
#include "agent_state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coalesce.h"
#include "config.h"
#include "flags.h"
#include "handlers.h"
#include "log.h"
#include "memtrim.h"
#include "metrics.h"
#include "poll_sources.h"
#include "discover_join.h"
#include "rpc.h"
#include "sdnotify.h"
#include "tagsfile.h"
#include "iface.h"
#include "gobase64.h"

#define GRACEFUL_TIMEOUT_MS 3000  /* serf's gracefulTimeout (signals) */
/* After this long the agent's start-up (config, banner, startup join) is
 * over and its pages are dropped (memtrim.c). */
#define STARTUP_TRIM_DELAY_MS 10000
/* The loop wakes at least this often, whatever its sources say. */
#define LOOP_MAX_WAIT_MS 60000

static const char agent_help[] =
	"Usage: vigil agent [options]\n"
	"\n"
	"  Starts the vigil agent and runs until an interrupt is received. The\n"
	"  agent represents a single node in a cluster. It speaks Serf's gossip\n"
	"  and RPC protocols: Serf agents and the serf CLI work with it.\n"
	"\n"
	"Options:\n"
	"\n"
	"  -bind=0.0.0.0:7946       Address to bind network listeners to. To use an IPv6\n"
	"                           address, specify [::1] or [::1]:7946.\n"
	"  -advertise=0.0.0.0       Address to advertise to the other cluster members\n"
	"  -config-file=foo         Path to a JSON file to read configuration from.\n"
	"                           This can be specified multiple times.\n"
	"  -config-dir=foo          Path to a directory to read configuration files\n"
	"                           from. This will read every file ending in \".json\"\n"
	"                           as configuration in this directory in alphabetical\n"
	"                           order.\n"
	"  -encrypt=foo             Key for encrypting network traffic within the cluster.\n"
	"                           Must be a base64-encoded 16, 24 or 32-byte key.\n"
	"  -keyring-file            The keyring file is used to store encryption keys used\n"
	"                           by the cluster. As encryption keys are changed, the\n"
	"                           content of this file is updated so that the same keys\n"
	"                           may be used during later agent starts.\n"
	"  -event-handler=foo       Script to execute when events occur. This can\n"
	"                           be specified multiple times. See the event scripts\n"
	"                           section below for more info.\n"
	"  -event-handler-timeout=60s\n"
	"                           Kill an event script that runs longer than this\n"
	"                           (0 disables the limit).\n"
	"  -join=addr               An initial agent to join with. This flag can be\n"
	"                           specified multiple times.\n"
	"  -log-level=info          Log level of the agent.\n"
	"  -metrics-addr=addr       Serve Prometheus metrics at http://addr/metrics\n"
	"                           (e.g. 127.0.0.1:9100). Off by default.\n"
	"  -node=hostname           Name of this node. Must be unique in the cluster\n"
	"  -profile=[lan|wan|local] Profile is used to control the timing profiles used.\n"
	"                           The default if not provided is lan.\n"
	"  -protocol=n              Serf protocol version to use. This defaults to\n"
	"                           the latest version, but can be set back for upgrades.\n"
	"  -rejoin                  Ignores a previous leave and attempts to rejoin the cluster.\n"
	"                           Only works if provided along with a snapshot file.\n"
	"  -replay                  Replay past user events when joining with -join.\n"
	"  -retry-join=addr         An agent to join with. This flag be specified multiple times.\n"
	"                           Does not exit on failure like -join, used to retry until success.\n"
	"  -retry-interval=30s      Sets the interval on which a node will attempt to retry joining\n"
	"                           nodes provided by -retry-join. Defaults to 30s.\n"
	"  -retry-max=0             Limits the number of retry events. Defaults to 0 for unlimited.\n"
	"  -role=foo                The role of this node, if any. This can be used\n"
	"                           by event scripts to differentiate different types\n"
	"                           of nodes that may be part of the same cluster.\n"
	"                           '-role' is deprecated in favor of '-tag role=foo'.\n"
	"  -rpc-addr=127.0.0.1:7373 Address to bind the RPC listener.\n"
	"  -rpc-auth=token          Require RPC clients to authenticate with this token\n"
	"                           (serf: the rpc_auth config key).\n"
	"  -snapshot=path/to/file   The snapshot file is used to store alive nodes and\n"
	"                           event information so that the agent can rejoin a cluster\n"
	"                           and avoid event replay on restart.\n"
	"  -tag key=value           Tag can be specified multiple times to attach multiple\n"
	"                           key/value tag pairs to the given node.\n"
	"  -broadcast-timeout=5s    Sets the broadcast timeout, which is the max time allowed for\n"
	"                           responses to events including leave and force remove messages.\n"
	"                           Defaults to 5s.\n"
	"\n"
	"  -iface=eth0              Bind to this interface's address (serf's -iface).\n"
	"  -tags-file=path          Persist tags changed at run time here; restored at start.\n"
	"  -syslog                  Also log to syslog (facility: syslog_facility, LOCAL0).\n"
	"  -disable-compression     Do not compress outgoing messages (vigil never does).\n"
	"  -disable-coordinates     Keep no network coordinates (serf: disable_coordinates).\n"
	"  -discover=cluster        A cluster name used to discovery peers. On\n"
	"                           networks that support multicast, this can be used to have\n"
	"                           peers join each other without an explicit join.\n"
	"\n"
	"Event handlers:\n"
	"\n"
	"  For more information on what event handlers are, please read the\n"
	"  Serf documentation. This section will document how to configure them\n"
	"  on the command-line. There are three methods of specifying an event\n"
	"  handler:\n"
	"\n"
	"  - The value can be a plain script, such as \"event.sh\". In this case,\n"
	"    the agent will send all events to this script, and you'll be responsible\n"
	"    for differentiating between them based on the SERF_EVENT.\n"
	"\n"
	"  - The value can be in the format of \"TYPE=SCRIPT\", such as\n"
	"    \"member-join=join.sh\". With this format, the agent will only send events\n"
	"    of that type to that script.\n"
	"\n"
	"  - The value can be in the format of \"user:EVENT=SCRIPT\", such as\n"
	"    \"user:deploy=deploy.sh\". This means that the agent will only invoke this\n"
	"    script in the case of user events named \"deploy\".\n"
	"\n"
	"  vigil adds the event types member-will, will-revoked, member-returned,\n"
	"  will-undeliverable and local-stall. Handlers only receive them when they\n"
	"  name them (\"*\" keeps meaning serf's event types). Scripts get SERF_* and\n"
	"  the same VIGIL_* variables; will events also set VIGIL_WILL_OWNER and\n"
	"  VIGIL_WILL_INCARNATION and carry the will's payload on stdin.\n";

/* ------------------------------------------------------------ signals */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	if (sig_pipe[1] >= 0 && write(sig_pipe[1], &b, 1) < 0) {
		/* pipe full: a wake-up is already pending */
	}
	errno = saved;
}

static int setup_signals(void)
{
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* ------------------------------------------------------------ options */

struct agent_opts {
	const char *bind, *advertise, *encrypt, *keyring, *log_level, *node, *role;
	const char *rpc_addr, *rpc_auth, *profile, *snapshot, *discover, *iface;
	const char *tags_file, *retry_interval, *broadcast_timeout, *metrics_addr;
	struct flag_list config, event_handlers, join, tags, retry_join;
	bool replay, syslog, rejoin, disable_compression, disable_coordinates;
	long long protocol, retry_max;
	int64_t handler_timeout;
};

static void opts_free(struct agent_opts *o)
{
	flag_list_free(&o->config);
	flag_list_free(&o->event_handlers);
	flag_list_free(&o->join);
	flag_list_free(&o->tags);
	flag_list_free(&o->retry_join);
}

/* Parse argv into a config (flags only).  Returns 0, or 1 after printing. */
static int parse_agent_flags(int argc, char **argv, struct agent_opts *o,
			     struct agent_config *cmd, bool quiet)
{
	memset(o, 0, sizeof *o);
	o->protocol = -1;
	o->handler_timeout = -1;
	struct flag_def defs[] = {
		{"bind", FLAG_STRING, &o->bind, 0},
		{"advertise", FLAG_STRING, &o->advertise, 0},
		{"config-file", FLAG_LIST, &o->config, 0},
		{"config-dir", FLAG_LIST, &o->config, 0},
		{"encrypt", FLAG_STRING, &o->encrypt, 0},
		{"keyring-file", FLAG_STRING, &o->keyring, 0},
		{"event-handler", FLAG_LIST, &o->event_handlers, 0},
		{"event-handler-timeout", FLAG_DURATION, &o->handler_timeout, 0},
		{"join", FLAG_LIST, &o->join, 0},
		{"replay", FLAG_BOOL, &o->replay, 0},
		{"log-level", FLAG_STRING, &o->log_level, 0},
		{"metrics-addr", FLAG_STRING, &o->metrics_addr, 0},
		{"node", FLAG_STRING, &o->node, 0},
		{"protocol", FLAG_INT, &o->protocol, 0},
		{"role", FLAG_STRING, &o->role, 0},
		{"rpc-addr", FLAG_STRING, &o->rpc_addr, 0},
		{"rpc-auth", FLAG_STRING, &o->rpc_auth, 0},
		{"profile", FLAG_STRING, &o->profile, 0},
		{"snapshot", FLAG_STRING, &o->snapshot, 0},
		{"tag", FLAG_LIST, &o->tags, 0},
		{"discover", FLAG_STRING, &o->discover, 0},
		{"iface", FLAG_STRING, &o->iface, 0},
		{"tags-file", FLAG_STRING, &o->tags_file, 0},
		{"syslog", FLAG_BOOL, &o->syslog, 0},
		{"retry-join", FLAG_LIST, &o->retry_join, 0},
		{"retry-max", FLAG_INT, &o->retry_max, 0},
		{"retry-interval", FLAG_STRING, &o->retry_interval, 0},
		{"rejoin", FLAG_BOOL, &o->rejoin, 0},
		{"disable-compression", FLAG_BOOL, &o->disable_compression, 0},
		/* vigil: serf has only the config key disable_coordinates */
		{"disable-coordinates", FLAG_BOOL, &o->disable_coordinates, 0},
		{"broadcast-timeout", FLAG_STRING, &o->broadcast_timeout, 0},
	};
	char err[256];
	int rest;
	int rc = flags_parse(defs, sizeof defs / sizeof defs[0], argc, argv, &rest, err, sizeof err);
	if (rc == FLAGS_HELP) {
		if (!quiet)
			fputs(agent_help, stderr);
		return 2;
	}
	if (rc != FLAGS_OK) {
		if (!quiet) {
			fprintf(stderr, "%s\n", err);
			fputs(agent_help, stdout);
		}
		return 1;
	}
	if (rest < argc) {
		/* serf ignores extra arguments silently; a stray word is more
		 * likely a mistyped flag, so say so */
		if (!quiet)
			fprintf(stderr, "==> Unexpected argument: %s\n", argv[rest]);
		return 1;
	}

	cmd->bind = o->bind ? strdup(o->bind) : NULL;
	cmd->advertise = o->advertise ? strdup(o->advertise) : NULL;
	cmd->encrypt_key = o->encrypt ? strdup(o->encrypt) : NULL;
	cmd->keyring_file = o->keyring ? strdup(o->keyring) : NULL;
	cmd->log_level = o->log_level ? strdup(o->log_level) : NULL;
	cmd->node_name = o->node ? strdup(o->node) : NULL;
	cmd->role = o->role ? strdup(o->role) : NULL;
	cmd->rpc_addr = o->rpc_addr ? strdup(o->rpc_addr) : NULL;
	cmd->rpc_auth = o->rpc_auth ? strdup(o->rpc_auth) : NULL;
	cmd->profile = o->profile ? strdup(o->profile) : NULL;
	cmd->snapshot_path = o->snapshot ? strdup(o->snapshot) : NULL;
	cmd->tags_file = o->tags_file ? strdup(o->tags_file) : NULL;
	cmd->interface = o->iface ? strdup(o->iface) : NULL;
	cmd->discover = o->discover ? strdup(o->discover) : NULL;
	cmd->enable_syslog = o->syslog;
	cmd->metrics_addr = o->metrics_addr ? strdup(o->metrics_addr) : NULL;
	cmd->protocol = (int)(o->protocol > 0 && o->protocol < 100 ? o->protocol : -1);
	cmd->replay_on_join = o->replay;
	cmd->rejoin_after_leave = o->rejoin;
	cmd->disable_coordinates = o->disable_coordinates;
	cmd->retry_max_attempts = (int)(o->retry_max > 0 && o->retry_max < INT_MAX ? o->retry_max : 0);
	if (o->handler_timeout >= 0)
		cmd->handler_timeout_ns = o->handler_timeout ? o->handler_timeout : -1;
	for (size_t i = 0; i < o->join.n; i++)
		strlist_add(&cmd->start_join, o->join.v[i]);
	for (size_t i = 0; i < o->retry_join.n; i++)
		strlist_add(&cmd->retry_join, o->retry_join.v[i]);
	for (size_t i = 0; i < o->event_handlers.n; i++)
		strlist_add(&cmd->event_handlers, o->event_handlers.v[i]);
	for (size_t i = 0; i < o->tags.n; i++) {
		const char *t = o->tags.v[i], *eq = strchr(t, '=');
		if (!eq || eq == t) {
			if (!quiet)
				fprintf(stderr, "==> Error: Invalid tag: '%s'\n", t);
			return 1;
		}
		char *k = strndup(t, (size_t)(eq - t));
		if (k)
			kv_set(&cmd->tags, &cmd->n_tags, k, eq + 1);
		free(k);
	}
	char derr[160];
	if (o->retry_interval &&
	    parse_go_duration(o->retry_interval, &cmd->retry_interval_ns, derr, sizeof derr) != 0) {
		if (!quiet)
			fprintf(stderr, "==> Error: %s\n", derr);
		return 1;
	}
	if (o->broadcast_timeout &&
	    parse_go_duration(o->broadcast_timeout, &cmd->broadcast_timeout_ns, derr, sizeof derr) != 0) {
		if (!quiet)
			fprintf(stderr, "==> Error: %s\n", derr);
		return 1;
	}
	return 0;
}

/* Full config: defaults < files < flags.  Returns 0, or 1 after printing. */
static int read_config(int argc, char **argv, struct agent_config *out, bool quiet)
{
	struct agent_opts o;
	struct agent_config cmd;
	config_init(&cmd);
	config_init(out);
	int rc = parse_agent_flags(argc, argv, &o, &cmd, quiet);
	if (rc != 0) {
		opts_free(&o);
		config_free(&cmd);
		return rc;
	}
	/* serf's DefaultConfig */
	out->bind = strdup("0.0.0.0");
	out->log_level = strdup("INFO");
	/* serf agent DefaultConfig: Protocol = serf.ProtocolVersionMax (5;
	 * what 5 adds, query response relays, vigil speaks), which is what
	 * `vigil version` reports */
	out->protocol = 5;
	out->rpc_addr = strdup("127.0.0.1:7373");
	out->profile = strdup("lan");
	out->retry_interval_ns = 30LL * 1000000000LL;
	out->broadcast_timeout_ns = 5LL * 1000000000LL;
	out->handler_timeout_ns = 60LL * 1000000000LL;
	if (o.config.n) {
		struct agent_config file;
		char err[512];
		config_init(&file);
		if (config_read_paths((char *const *)o.config.v, o.config.n, &file, err, sizeof err) != 0) {
			if (!quiet)
				fprintf(stderr, "==> %s\n", err);
			config_free(&file);
			opts_free(&o);
			config_free(&cmd);
			return 1;
		}
		config_merge(out, &file);
		config_free(&file);
	}
	config_merge(out, &cmd);
	opts_free(&o);
	config_free(&cmd);
	if (out->handler_timeout_ns < 0)
		out->handler_timeout_ns = 0; /* explicit 0: no limit */

	if (!out->node_name || !*out->node_name) {
		char host[256];
		if (gethostname(host, sizeof host) != 0) {
			if (!quiet)
				fprintf(stderr, "==> Error determining hostname: %s\n", strerror(errno));
			return 1;
		}
		host[sizeof host - 1] = '\0';
		free(out->node_name);
		out->node_name = strdup(host);
	}
	if (out->role && *out->role) {
		if (!quiet)
			printf("==> Deprecation warning: 'Role' has been replaced with 'Tags'\n");
		kv_set(&out->tags, &out->n_tags, "role", out->role);
	}
	if (out->retry_interval_ns < 1000000000LL) {
		out->retry_interval_ns = 1000000000LL;
		if (!quiet)
			printf("==> Warning: 'RetryInterval' is too low. Setting to 1s\n");
	}
	if (out->broadcast_timeout_ns < 1000000000LL) {
		out->broadcast_timeout_ns = 1000000000LL;
		if (!quiet)
			printf("==> Warning: 'BroadcastTimeout' is too low. Setting to 1s\n");
	}
	if (out->rejoin_after_leave && !out->snapshot_path && !quiet)
		printf("==> Warning: 'RejoinAfterLeave' enabled without snapshot file\n");
	return 0;
}

/* serf's AddrParts: "host", "host:port", "[v6]:port" (port default 7946). */
static int addr_parts(const char *addr, char *host, size_t hl, uint16_t *port, char *err,
		      size_t errlen)
{
	const char *p = addr, *portstr = NULL;
	size_t n;
	if (*p == '[') {
		const char *e = strchr(p, ']');
		if (!e) {
			snprintf(err, errlen, "address %s: missing ']' in address", addr);
			return -1;
		}
		n = (size_t)(e - p - 1);
		if (n >= hl)
			goto toolong;
		memcpy(host, p + 1, n);
		host[n] = '\0';
		if (e[1] == ':')
			portstr = e + 2;
		else if (e[1] != '\0') {
			snprintf(err, errlen, "address %s: unexpected text after ']'", addr);
			return -1;
		}
	} else {
		const char *c = strchr(p, ':');
		if (c && strchr(c + 1, ':')) {
			/* bare IPv6 without brackets: Go's SplitHostPort
			 * rejects it ("too many colons") */
			snprintf(err, errlen, "address %s: too many colons in address", addr);
			return -1;
		}
		n = c ? (size_t)(c - p) : strlen(p);
		if (n >= hl)
			goto toolong;
		memcpy(host, p, n);
		host[n] = '\0';
		if (c)
			portstr = c + 1;
	}
	if (!host[0])
		snprintf(host, hl, "0.0.0.0");
	*port = 7946;
	if (portstr) {
		char *end;
		long v = strtol(portstr, &end, 10);
		if (!*portstr || *end || v < 0 || v > 65535) {
			snprintf(err, errlen, "address %s: invalid port", addr);
			return -1;
		}
		*port = (uint16_t)v;
	}
	unsigned char buf[16];
	if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1) {
		/* serf resolves names (net.ResolveTCPAddr); so do we, once */
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		struct addrinfo *res = NULL;
		int gai = getaddrinfo(host, NULL, &hints, &res);
		if (gai != 0 || !res) {
			snprintf(err, errlen, "address %s: lookup %s: %s", addr, host,
				 gai ? gai_strerror(gai) : "no address");
			return -1;
		}
		const void *ip = res->ai_family == AF_INET
					 ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
					 : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
		char text[INET6_ADDRSTRLEN];
		bool okn = inet_ntop(res->ai_family, ip, text, sizeof text) != NULL;
		freeaddrinfo(res);
		if (!okn || strlen(text) >= hl) {
			snprintf(err, errlen, "address %s: cannot use resolved address", addr);
			return -1;
		}
		snprintf(host, hl, "%s", text);
	}
	return 0;
toolong:
	snprintf(err, errlen, "address %s: host too long", addr);
	return -1;
}

/* ------------------------------------------------------------ callbacks */


static void on_lib_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	static const int map[] = {LV_DEBUG, LV_INFO, LV_WARN, LV_ERR};
	int lv = level < 0 ? LV_DEBUG : level > 3 ? LV_ERR : map[level];
	/* keep the library's "subsystem: " prefix, add one otherwise */
	const char *p = msg;
	while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
	       *p == '-')
		p++;
	if (p > msg && p[0] == ':' && p[1] == ' ')
		alog(lv, "%s", msg);
	else
		alog(lv, "vigil: %s", msg);
}

/* Events after coalescing: log them as serf does, run the handlers and feed
 * the RPC streams. */
static void dispatch_event(void *ctx, const struct vigil_event *ev,
			   const struct vigil_member *members, size_t n)
{
	struct agent *a = ctx;
	switch (ev->type) {
	case VIGIL_EV_USER:
		alog(LV_INFO, "agent: Received event: user-event: %s", ev->name ? ev->name : "");
		break;
	case VIGIL_EV_QUERY:
		alog(LV_INFO, "agent: Received event: query: %s", ev->name ? ev->name : "");
		break;
	default:
		alog(LV_INFO, "agent: Received event: %s", agent_event_name(ev->type));
		break;
	}
	handlers_on_event(a->hs, ev, members, n);
	if (a->rpc)
		rpc_on_event(a->rpc, ev, members, n);
}

static void on_lib_event(void *ctx, const struct vigil_event *ev)
{
	struct agent *a = ctx;
	switch (ev->type) {
	case VIGIL_EV_QUERY_ACK:
	case VIGIL_EV_QUERY_RESPONSE:
	case VIGIL_EV_QUERY_DONE:
		/* answers to queries started over RPC: straight to the client */
		if (a->rpc)
			rpc_on_event(a->rpc, ev, NULL, 0);
		return;
	default:
		break;
	}
	if (a->co)
		coalescer_offer(a->co, ev, now_ms());
	else
		dispatch_event(a, ev, ev->member, ev->member ? 1 : 0);
}

static void log_to_rpc(void *ctx, int lv, const char *line)
{
	struct agent *a = ctx;
	if (a->rpc)
		rpc_on_log(a->rpc, lv, line);
}

/*
 * serf's retryJoin: join the -retry-join addresses; on failure try again
 * after -retry-interval, up to -retry-max attempts (0 = forever).  false:
 * the attempts are used up and the agent must exit.
 */
static bool retry_join_step(struct agent *a, const struct agent_config *cfg, int64_t now)
{
	int joined = 0;
	if (a->retry_done || a->leaving)
		return true;
	if (!a->retry_join_id) {
		if (now < a->next_retry_ms)
			return true;
		alog(LV_INFO, "agent: Joining cluster...(replay: %s)",
		     cfg->replay_on_join ? "true" : "false");
		vigil_join_begin(a->v, (const char *const *)cfg->retry_join.v, cfg->retry_join.n,
				 cfg->replay_on_join, &a->retry_join_id);
		a->retry_attempts++;
		a->retry_started_ms = now;
		if (a->retry_join_id)
			return true; /* decided by a later vigil_join_poll */
		/* nothing to track (no valid address): a failed attempt */
	} else if (vigil_join_poll(a->v, a->retry_join_id, &joined) == 0) {
		return true;
	}
	a->retry_join_id = 0;
	if (joined > 0) {
		alog(LV_INFO, "agent: Join completed. Synced with %d initial agents", joined);
		a->retry_done = true;
		return true;
	}
	if (cfg->retry_max_attempts > 0 && a->retry_attempts > cfg->retry_max_attempts) {
		alog(LV_ERR, "agent: maximum retry join attempts made, exiting");
		return false;
	}
	char d[32];
	format_go_duration(cfg->retry_interval_ns, d, sizeof d);
	alog(LV_WARN, "agent: Join failed: no member answered, retrying in %s", d);
	a->next_retry_ms = a->retry_started_ms + cfg->retry_interval_ns / 1000000;
	return true;
}

/* --------------------------------------------------------------- reload */

static void reload(struct agent *a, int argc, char **argv)
{
	printf("==> Reloading configuration...\n");
	fflush(stdout);
	struct agent_config nc;
	if (read_config(argc, argv, &nc, false) != 0) {
		fprintf(stderr, "==> Failed to reload configs\n");
		config_free(&nc);
		return;
	}
	int lv = log_level_parse(nc.log_level);
	if (lv >= 0)
		log_set_level(lv);
	else
		fprintf(stderr, "==> Invalid log level: %s. Valid log levels are: [TRACE DEBUG INFO WARN ERR]\n",
			nc.log_level);
	char err[256];
	if (handlers_update(a->hs, &nc.event_handlers, err, sizeof err) != 0)
		fprintf(stderr, "==> %s\n", err);
	/* tags: the new set replaces the configured one */
	struct vigil_tag *set = calloc(nc.n_tags + 1, sizeof *set);
	const char **del = calloc(a->cfg.n_tags + 1, sizeof *del);
	size_t nd = 0;
	if (set && del) {
		for (size_t i = 0; i < nc.n_tags; i++) {
			set[i].key = nc.tags[i].key;
			set[i].value = nc.tags[i].value;
		}
		for (size_t i = 0; i < a->cfg.n_tags; i++) {
			bool keep = false;
			for (size_t k = 0; k < nc.n_tags && !keep; k++)
				keep = strcmp(nc.tags[k].key, a->cfg.tags[i].key) == 0;
			if (!keep)
				del[nd++] = a->cfg.tags[i].key;
		}
		if (vigil_set_tags(a->v, set, nc.n_tags, del, nd) != 0)
			fprintf(stderr, "==> Failed to update tags\n");
	}
	free(set);
	free(del);
	/* keep what can't change at runtime, adopt the rest */
	kv_free(a->cfg.tags, a->cfg.n_tags);
	a->cfg.tags = nc.tags;
	a->cfg.n_tags = nc.n_tags;
	nc.tags = NULL;
	nc.n_tags = 0;
	a->cfg.handler_timeout_ns = nc.handler_timeout_ns;
	config_free(&nc);
}

/* ------------------------------------------------------------------ main */

static void apply_profile(struct vigil_config *vc, const char *profile)
{
	/* memberlist's DefaultWANConfig / DefaultLocalConfig deltas; LAN is
	 * the library default */
	if (strcmp(profile, "wan") == 0) {
		vc->suspicion_mult = 6;
		vc->push_pull_interval_ms = 60000;
		vc->probe_timeout_ms = 3000;
		vc->probe_interval_ms = 5000;
		vc->gossip_nodes = 4;
		vc->gossip_interval_ms = 500;
	} else if (strcmp(profile, "local") == 0) {
		vc->indirect_checks = 1;
		vc->retransmit_mult = 2;
		vc->suspicion_mult = 3;
		vc->push_pull_interval_ms = 15000;
		vc->probe_timeout_ms = 200;
		vc->probe_interval_ms = 1000;
		vc->gossip_interval_ms = 100;
	}
}

/* ------------------------------------------------------------ start-up */

/* The checks serf makes before it creates anything; sets the log level and
 * syslog on the way.  0, or 1 after printing why. */
static int check_config(const struct agent_config *cfg)
{
	int lv = log_level_parse(cfg->log_level);
	if (lv < 0) {
		char up[64];
		snprintf(up, sizeof up, "%s", cfg->log_level);
		for (char *p = up; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		fprintf(stderr, "==> Invalid log level: %s. Valid log levels are: [TRACE DEBUG INFO WARN ERR]\n", up);
		return 1;
	}
	log_set_level(lv);
	if (cfg->enable_syslog && log_enable_syslog(cfg->syslog_facility) != 0) {
		fprintf(stderr, "==> Syslog setup failed: Unknown facility '%s'\n", cfg->syslog_facility);
		return 1;
	}

	if (strcmp(cfg->profile, "lan") != 0 && strcmp(cfg->profile, "wan") != 0 &&
	    strcmp(cfg->profile, "local") != 0) {
		fprintf(stderr, "==> Unknown profile: %s\n", cfg->profile);
		return 1;
	}
	if (strlen(cfg->node_name) > VIGIL_NAME_MAX) {
		fprintf(stderr, "==> Node name is longer than %d bytes\n", VIGIL_NAME_MAX);
		return 1;
	}
	return 0;
}

/* -bind, -iface and -advertise into vc.  0, or 1 after printing why. */
static int config_addresses(const struct agent_config *cfg, struct vigil_config *vc)
{
	char err[512];
	if (addr_parts(cfg->bind, vc->bind_addr, sizeof vc->bind_addr, &vc->bind_port, err,
		       sizeof err) != 0) {
		fprintf(stderr, "==> Invalid bind address: %s\n", err);
		return 1;
	}
	if (cfg->interface && *cfg->interface) {
		bool picked;
		if (!iface_exists(cfg->interface)) {
			fprintf(stderr, "==> Invalid network interface: route ip+net: no such network interface\n");
			return 1;
		}
		if (iface_bind_ip(cfg->interface, vc->bind_addr, sizeof vc->bind_addr, &picked, err,
				  sizeof err) != 0) {
			fprintf(stderr, "==> %s\n", err);
			return 1;
		}
		if (picked)
			printf("==> Using interface '%s' address '%s'\n", cfg->interface, vc->bind_addr);
	}
	if (cfg->advertise && *cfg->advertise &&
	    addr_parts(cfg->advertise, vc->advertise_addr, sizeof vc->advertise_addr,
		       &vc->advertise_port, err, sizeof err) != 0) {
		fprintf(stderr, "==> Invalid advertise address: %s\n", err);
		return 1;
	}
	return 0;
}

/* -encrypt and -keyring-file into vc (keys[0] holds the key: it must live
 * as long as vc).  0, or 1 after printing why. */
static int config_keys(struct agent *a, struct vigil_config *vc, const char *keys[1])
{
	const struct agent_config *cfg = &a->cfg;
	if (cfg->encrypt_key && *cfg->encrypt_key) {
		size_t bad_at;
		long kl = go_b64_decoded_len(cfg->encrypt_key, &bad_at);
		if (kl < 0) {
			/* Go's base64 error, as serf prints it */
			fprintf(stderr, "==> Invalid encryption key: illegal base64 data at input byte %zu\n",
				bad_at);
			return 1;
		}
		if (kl != 16 && kl != 24 && kl != 32) {
			/* serf finds this only when memberlist is created */
			fprintf(stderr, "==> Failed to start the Serf agent: Error creating Serf: Failed to create memberlist: key size must be 16, 24 or 32 bytes\n");
			return 1;
		}
		if (cfg->keyring_file && *cfg->keyring_file && access(cfg->keyring_file, F_OK) == 0) {
			/* serf refuses the combination once a keyring exists */
			fprintf(stderr, "==> Failed to setup the agent: Encryption key not allowed while using a keyring\n");
			return 1;
		}
		keys[0] = cfg->encrypt_key;
		vc->keys = keys;
		vc->n_keys = 1;
	}
	vc->keyring_file = cfg->keyring_file && *cfg->keyring_file ? cfg->keyring_file : NULL;
	if (vc->keyring_file && !vc->n_keys && access(vc->keyring_file, F_OK) != 0) {
		/* serf refuses to start on a missing keyring; running without
		 * encryption instead would be a silent downgrade */
		fprintf(stderr, "==> Failed to start the vigil agent: keyring file %s: %s\n",
			vc->keyring_file, strerror(errno));
		return 1;
	}
	a->encrypted = vc->n_keys > 0 || (vc->keyring_file && access(vc->keyring_file, F_OK) == 0);
	return 0;
}

/* -tags-file (restored into cfg) and the tags into vc: *tags is the array
 * vc->tags points to, the caller frees it.  0, or 1 after printing why. */
static int config_tags(struct agent_config *cfg, struct vigil_config *vc,
		       struct vigil_tag **tags)
{
	char err[512];
	if (cfg->tags_file && *cfg->tags_file) {
		/* serf loadTagsFile: the file is the tags' only source */
		if (cfg->n_tags > 0) {
			fprintf(stderr, "==> Failed to setup the Serf agent: Tags config not allowed while using tag files\n");
			return 1;
		}
		if (tagsfile_load(cfg->tags_file, &cfg->tags, &cfg->n_tags, err, sizeof err) != 0) {
			fprintf(stderr, "==> Failed to setup the Serf agent: %s\n", err);
			return 1;
		}
		if (cfg->n_tags)
			printf("==> Restored %zu tag(s) from %s\n", cfg->n_tags, cfg->tags_file);
	}
	*tags = calloc(cfg->n_tags + 1, sizeof **tags);
	for (size_t i = 0; *tags && i < cfg->n_tags; i++) {
		(*tags)[i].key = cfg->tags[i].key;
		(*tags)[i].value = cfg->tags[i].value;
	}
	vc->tags = *tags;
	vc->n_tags = *tags ? cfg->n_tags : 0;
	return 0;
}

/* Signals, event handlers, the coalescer and the library itself.  0, or 1
 * after printing why (what was created is destroyed again). */
static int start_agent(struct agent *a, const struct vigil_config *vc)
{
	char err[512];
	if (setup_signals() != 0) {
		fprintf(stderr, "==> Failed to set up signal handling: %s\n", strerror(errno));
		return 1;
	}
	a->hs = handlers_create(a, &a->cfg.event_handlers, err, sizeof err);
	if (!a->hs) {
		fprintf(stderr, "==> %s\n", err);
		return 1;
	}

	a->co = coalescer_create(dispatch_event, a, COALESCE_PERIOD_MS, QUIESCENT_PERIOD_MS);
	if (!a->co) {
		fprintf(stderr, "==> out of memory\n");
		handlers_destroy(a->hs);
		return 1;
	}
	printf("==> Starting vigil agent...\n");
	fflush(stdout);
	alog(LV_INFO, "agent: vigil agent starting");
	if (vigil_create(vc, &a->v, err, sizeof err) != 0) {
		fprintf(stderr, "==> Failed to start the vigil agent: Error creating vigil: %s\n", err);
		coalescer_destroy(a->co);
		handlers_destroy(a->hs);
		return 1;
	}
	return 0;
}

/* The RPC listener and, with -metrics-addr, the metrics endpoint.  0, or
 * -1 after printing why. */
static int start_servers(struct agent *a, struct metrics_server **metrics)
{
	char err[512];
	const struct agent_config *cfg = &a->cfg;
	printf("==> Starting vigil agent RPC...\n");
	a->rpc = rpc_create(a, cfg->rpc_addr, cfg->rpc_auth, err, sizeof err);
	if (!a->rpc) {
		fprintf(stderr, "==> Error starting RPC listener: %s\n", err);
		return -1;
	}
	log_set_sink(log_to_rpc, a);
	if (cfg->discover && *cfg->discover) {
		a->mdns = discover_join_start(a->v, cfg->discover, cfg->interface,
					      cfg->replay_on_join, err, sizeof err);
		if (!a->mdns) {
			fprintf(stderr, "==> Error starting mDNS listener: %s\n", err);
			return -1;
		}
	}
	if (cfg->metrics_addr && *cfg->metrics_addr) {
		*metrics = metrics_create(a, cfg->metrics_addr, err, sizeof err);
		if (!*metrics) {
			fprintf(stderr, "==> Error starting metrics listener: %s\n", err);
			return -1;
		}
	}
	return 0;
}

static void print_banner(const struct agent *a, const struct vigil_config *vc, bool metrics)
{
	const struct agent_config *cfg = &a->cfg;
	printf("==> vigil agent running!\n");
	printf("                  Node name: '%s'\n", cfg->node_name);
	if (strchr(vc->bind_addr, ':'))
		printf("                  Bind addr: '[%s]:%u'\n", vc->bind_addr, vc->bind_port);
	else
		printf("                  Bind addr: '%s:%u'\n", vc->bind_addr, vc->bind_port);
	if (cfg->advertise && *cfg->advertise)
		printf("             Advertise addr: '%s:%u'\n", vc->advertise_addr,
		       vc->advertise_port ? vc->advertise_port : vc->bind_port);
	printf("                   RPC addr: '%s'\n", cfg->rpc_addr);
	if (metrics)
		printf("               Metrics addr: 'http://%s/metrics'\n", cfg->metrics_addr);
	printf("                  Encrypted: %s\n", a->encrypted ? "true" : "false");
	printf("                   Snapshot: %s\n", cfg->snapshot_path ? "true" : "false");
	printf("                    Profile: %s\n", cfg->profile);
	/* vigil decompresses what it receives but never compresses */
	printf("Message Compression Enabled: false\n");
	if (cfg->discover && *cfg->discover)
		printf("               mDNS cluster: %s\n", cfg->discover);
	fflush(stdout);
}

/* ----------------------------------------------------------- main loop */

/* What the main loop's own sources share with it. */
struct agent_loop {
	struct agent *a;
	int argc;           /* the agent's arguments, for SIGHUP's reload */
	char **argv;
	uint32_t start_join_id; /* -join in progress (vigil_join_begin), 0 = none */
	int64_t trim_at;    /* when start-up's pages are given back; 0 = done */
	bool signal_leave;  /* leave started by SIGINT/SIGTERM */
	bool stop;          /* leave the loop now (a signal said so) */
	int exit_code;
};

/* Startup join.  The library joins asynchronously; vigil_join_poll says when
 * every seed is done and how many answered (serf's "Synced with N").  serf
 * exits when the startup join fails, and so do we.  -1 after printing why. */
static int begin_start_join(struct agent_loop *L)
{
	const struct agent_config *cfg = &L->a->cfg;
	if (!cfg->start_join.n)
		return 0;
	printf("==> Joining cluster...(replay: %s)\n", cfg->replay_on_join ? "true" : "false");
	fflush(stdout);
	int n = vigil_join_begin(L->a->v, (const char *const *)cfg->start_join.v, cfg->start_join.n,
				 cfg->replay_on_join, &L->start_join_id);
	if (n <= 0 || !L->start_join_id) {
		fprintf(stderr, "==> Error joining the cluster: %s\n",
			n <= 0 ? "no valid address in -join" : "out of memory");
		return -1;
	}
	return 0;
}

/* false: the startup join failed (the loop ends with status 1). */
static bool start_join_step(struct agent_loop *L)
{
	const struct agent_config *cfg = &L->a->cfg;
	int joined = 0;
	if (!L->start_join_id || vigil_join_poll(L->a->v, L->start_join_id, &joined) == 0)
		return true;
	L->start_join_id = 0;
	if (joined > 0) {
		alog(LV_INFO, "agent: Join completed. Synced with %d initial agents", joined);
		return true;
	}
	fprintf(stderr, "==> Error joining the cluster: no member of [");
	for (size_t i = 0; i < cfg->start_join.n; i++)
		fprintf(stderr, "%s%s", i ? " " : "", cfg->start_join.v[i]);
	fprintf(stderr, "] answered\n");
	return false;
}

/* A graceful leave that is over (done, or past its deadline) ends the loop;
 * false then, with the exit status set. */
static bool leave_step(struct agent_loop *L, int64_t now)
{
	struct agent *a = L->a;
	if (!a->leaving)
		return true;
	bool done = vigil_leave_done(a->v);
	if (!done && now < a->leave_deadline_ms)
		return true;
	a->leaving = false;
	/* done means a live member acked it, or none could be */
	bool unheard = done && vigil_leave_reached(a->v) == 0;
	if (!done)
		alog(LV_WARN, "agent: graceful leave timed out");
	else if (unheard)
		alog(LV_WARN, "agent: graceful leave: no live member could be "
		     "reached; others will see this node fail, not leave");
	rpc_leave_done(a->rpc, !done ? "leave timed out"
		       : unheard ? "no live member could be reached" : "");
	if (L->signal_leave)
		L->exit_code = done ? 0 : 1;
	else
		L->exit_code = 0;
	return false;
}

/* The agent's own state machines, once per round before polling; false:
 * leave the loop (L->exit_code says how). */
static bool agent_step(struct agent_loop *L)
{
	struct agent *a = L->a;
	int64_t now = now_ms();
	if (!start_join_step(L) || !retry_join_step(a, &a->cfg, now)) {
		L->exit_code = 1;
		return false;
	}
	if (!leave_step(L, now) || a->quit)
		return false;
	if (L->trim_at && now >= L->trim_at && !L->start_join_id) {
		memtrim_startup_pages();
		L->trim_at = 0;
	}
	return true;
}

/* Poll source "timers": the deadlines of agent_step()'s state machines. */
static int agent_timers_timeout(void *loop)
{
	struct agent_loop *L = loop;
	struct agent *a = L->a;
	int64_t now = now_ms(), timeout = -1;
	/* joins and leave progress are polled */
	if (L->start_join_id || a->retry_join_id || a->leaving)
		timeout = 100;
	if (!a->retry_done && !a->retry_join_id) {
		int64_t d = a->next_retry_ms - now;
		if (d < 0)
			d = 0;
		if (timeout < 0 || d < timeout)
			timeout = d;
	}
	if (L->trim_at && (timeout < 0 || L->trim_at - now < timeout))
		timeout = L->trim_at > now ? L->trim_at - now : 0;
	return timeout > INT_MAX ? INT_MAX : (int)timeout;
}

/* Poll source "signals": the self-pipe on_signal() writes to. */
static int signals_nfds(void *loop)
{
	(void)loop;
	return 1;
}

static int signals_fill(void *loop, struct pollfd *fds, int max)
{
	(void)loop, (void)max;
	fds[0] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
	return 1;
}

static void signals_handle(void *loop, const struct pollfd *fds, int n)
{
	struct agent_loop *L = loop;
	struct agent *a = L->a;
	/* handlers run every round: read only when there is something */
	if (n < 1 || !(fds[0].revents & POLLIN))
		return;
	unsigned char sigs[64];
	ssize_t ns = read(sig_pipe[0], sigs, sizeof sigs);
	for (ssize_t i = 0; i < ns; i++) {
		int sig = sigs[i];
		if (sig == SIGCHLD) {
			handlers_reap(a->hs);
			continue;
		}
		const char *sname = sig == SIGINT ? "interrupt" : sig == SIGTERM ? "terminated" : "hangup";
		printf("==> Caught signal: %s\n", sname);
		fflush(stdout);
		if (sig == SIGHUP) {
			reload(a, L->argc, L->argv);
			continue;
		}
		bool graceful = (sig == SIGINT && !a->cfg.skip_leave_on_interrupt) ||
				(sig == SIGTERM && a->cfg.leave_on_terminate);
		/* a second signal during a graceful leave gives up */
		if ((a->leaving && L->signal_leave) || !graceful) {
			L->exit_code = 1;
			L->stop = true;
			return;
		}
		printf("==> Gracefully shutting down agent...\n");
		fflush(stdout);
		sd_notify_state("STOPPING=1");
		L->signal_leave = true;
		agent_begin_leave(a);
		a->leave_deadline_ms = now_ms() + GRACEFUL_TIMEOUT_MS;
	}
}

/* Poll source "library": vigil's sockets; vigil_step does its work. */
static int library_nfds(void *v)
{
	return vigil_pollfds(v, NULL, 0);
}

static int library_fill(void *v, struct pollfd *fds, int max)
{
	return vigil_pollfds(v, fds, max);
}

static int library_timeout(void *v)
{
	return vigil_timeout_ms(v);
}

static void library_handle(void *v, const struct pollfd *fds, int n)
{
	(void)fds, (void)n; /* the library polls its own sockets */
	vigil_step(v);
}

/* Poll source "coalescer": its windows close on time. */
static int coalescer_timeout(void *co)
{
	return coalescer_timeout_ms(co, now_ms());
}

static void coalescer_handle(void *co, const struct pollfd *fds, int n)
{
	(void)fds, (void)n;
	coalescer_tick(co, now_ms(), false);
}

/* Every source, in the order they are handled each round: a signal first
 * (it may end the loop before anything else runs), then the library (its
 * events reach the coalescer, handlers and RPC streams), then the rest. */
static void register_sources(struct poll_sources *ps, struct agent_loop *L,
			     struct metrics_server *metrics)
{
	struct agent *a = L->a;
	const struct poll_source sources[] = {
		{"signals", L, signals_nfds, signals_fill, NULL, signals_handle},
		{"timers", L, NULL, NULL, agent_timers_timeout, NULL},
		{"library", a->v, library_nfds, library_fill, library_timeout, library_handle},
		{"coalescer", a->co, NULL, NULL, coalescer_timeout, coalescer_handle},
		{"rpc", a->rpc, rpc_nfds, rpc_pollfds, rpc_timeout_ms, rpc_handle},
		{"handlers", a->hs, handlers_nfds, handlers_pollfds, handlers_timeout_ms,
		 handlers_handle},
		{"metrics", metrics, metrics_nfds, metrics_pollfds, metrics_timeout_ms,
		 metrics_handle},
		{"mdns", a->mdns, discover_join_nfds, discover_join_fill, discover_join_timeout_ms,
		 discover_join_handle},
	};
	for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
		if (sources[i].ctx)
			poll_sources_add(ps, &sources[i]);
}

/* Until a leave, a signal or a failed join ends it; the exit status. */
static int run_loop(struct agent_loop *L, struct metrics_server *metrics)
{
	struct poll_sources ps;
	poll_sources_init(&ps, &L->stop);
	register_sources(&ps, L, metrics);
	L->exit_code = 0;
	while (agent_step(L)) {
		if (poll_sources_fill(&ps) != 0) {
			alog(LV_ERR, "agent: out of memory");
			L->exit_code = 1;
			break;
		}
		if (poll_sources_wait(&ps, poll_sources_timeout(&ps, LOOP_MAX_WAIT_MS)) < 0 &&
		    errno != EINTR) {
			alog(LV_ERR, "agent: poll: %s", strerror(errno));
			L->exit_code = 1;
			break;
		}
		poll_sources_dispatch(&ps);
		if (L->stop)
			break;
	}
	poll_sources_free(&ps);
	return L->exit_code;
}

static void shutdown_agent(struct agent *a, struct metrics_server *metrics)
{
	log_set_sink(NULL, NULL);
	if (a->rpc) {
		/* let pending replies (a "leave" answer, say) reach the client */
		rpc_flush(a->rpc, 1000);
	}
	metrics_destroy(metrics);
	discover_join_free(a->mdns);
	a->mdns = NULL;
	alog(LV_INFO, "agent: requesting serf shutdown");
	handlers_destroy(a->hs);
	a->hs = NULL;
	rpc_destroy(a->rpc);
	a->rpc = NULL;
	vigil_destroy(a->v);
	a->v = NULL;
	coalescer_destroy(a->co);
	a->co = NULL;
	alog(LV_INFO, "agent: shutdown complete");
	log_ring_clear();
	config_free(&a->cfg);
}

int agent_main(int argc, char **argv)
{
	struct agent A;
	struct agent *a = &A;
	memset(a, 0, sizeof *a);
	int rc = read_config(argc, argv, &a->cfg, false);
	if (rc != 0) {
		config_free(&a->cfg);
		return rc == 2 ? 0 : 1;
	}
	struct agent_config *cfg = &a->cfg;
	struct vigil_config vc;
	const char *keys[1];
	struct vigil_tag *tags = NULL;
	vigil_config_default(&vc);
	if (check_config(cfg) != 0 || config_addresses(cfg, &vc) != 0 ||
	    config_keys(a, &vc, keys) != 0 || config_tags(cfg, &vc, &tags) != 0) {
		config_free(cfg);
		return 1;
	}
	snprintf(vc.name, sizeof vc.name, "%s", cfg->node_name);
	if (cfg->protocol > 0)
		vc.protocol_version = cfg->protocol;
	vc.snapshot_path = cfg->snapshot_path;
	vc.rejoin_after_leave = cfg->rejoin_after_leave;
	vc.disable_coordinates = cfg->disable_coordinates;
	apply_profile(&vc, cfg->profile);
	vc.on_event = on_lib_event;
	vc.on_log = on_lib_log;
	vc.ctx = a;

	rc = start_agent(a, &vc);
	free(tags);
	if (rc != 0) {
		config_free(cfg);
		return 1;
	}

	struct metrics_server *metrics = NULL;
	struct agent_loop L = {.a = a, .argc = argc, .argv = argv};
	int exit_code = 1;
	if (start_servers(a, &metrics) == 0) {
		print_banner(a, &vc, metrics != NULL);
		if (begin_start_join(&L) == 0) {
			printf("\n==> Log data will now stream in as it occurs:\n\n");
			fflush(stdout);
			/* systemd Type=notify: gossip sockets and the RPC listener are open */
			sd_notify_state("READY=1");
			if (cfg->retry_join.n)
				a->next_retry_ms = now_ms();
			else
				a->retry_done = true;
			/* start-up's pages are given back once it is over (memtrim.c) */
			L.trim_at = now_ms() + STARTUP_TRIM_DELAY_MS;
			exit_code = run_loop(&L, metrics);
		}
	}
	shutdown_agent(a, metrics);
	return exit_code;
}
