/*
 * cli.c — `vigil <command>`: dispatch to the client commands.
 *
 * Every command mirrors the serf CLI command of the same name
 * (cmd/serf/command/NAME.go): same flags, same messages, same output format,
 * same exit codes, so scripts written against `serf` work unchanged.  The
 * `will` command is vigil's own.  They live by group in cli_members.c,
 * cli_events.c and cli_keys.c, sharing cli_common.c.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "agent_state.h"
#include "cli_common.h"

/* --------------------------------------------------------------- version */

static int cmd_version(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("vigil v%s\n", VIGIL_VERSION);
	/* the agent's default -protocol, and the range vigil_create accepts */
	printf("Agent Protocol: 5 (Understands back to: 2)\n");
	return 0;
}

/* --------------------------------------------------------------- dispatch */

/* One `vigil <name>` subcommand. */
struct command {
	const char *name;
	const char *synopsis;
	int (*run)(int argc, char **argv);
	const char *help; /* NULL: the command prints its own */
};

static int run_agent(int argc, char **argv)
{
	return agent_main(argc, argv);
}

static const struct command commands[] = {
	{"agent", "Runs a vigil agent", run_agent, NULL},
	{"event", "Send a custom event through the cluster", cli_cmd_event, cli_event_help},
	{"force-leave", "Forces a member of the cluster to enter the \"left\" state",
	 cli_cmd_force_leave, cli_force_leave_help},
	{"info", "Provides debugging information for operators", cli_cmd_info, cli_info_help},
	{"join", "Tell the agent to join cluster", cli_cmd_join, cli_join_help},
	{"keygen", "Generates a new encryption key", cli_cmd_keygen, cli_keygen_help},
	{"keys", "Manipulate the internal encryption keyring", cli_cmd_keys, cli_keys_help},
	{"leave", "Gracefully leaves the cluster and shuts down", cli_cmd_leave, cli_leave_help},
	{"members", "Lists the members of a cluster", cli_cmd_members, cli_members_help},
	{"monitor", "Stream logs from an agent", cli_cmd_monitor, cli_monitor_help},
	{"query", "Send a query to the cluster", cli_cmd_query, cli_query_help},
	{"reachability", "Test network reachability", cli_cmd_reachability, cli_reachability_help},
	{"rtt", "Estimates network round trip time between nodes", cli_cmd_rtt, cli_rtt_help},
	{"tags", "Modify tags of a running agent", cli_cmd_tags, cli_tags_help},
	{"version", "Prints the vigil version", cmd_version, NULL},
	{"will", "Set, show or clear this node's last will", cli_cmd_will, cli_will_help},
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
