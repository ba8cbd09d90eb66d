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

static int run_agent(int argc, char **argv)
{
	return agent_main(argc, argv);
}

static const struct cli_command agent_command = {"agent", "Runs a vigil agent", run_agent, NULL};
static const struct cli_command version_command = {"version", "Prints the vigil version",
						   cmd_version, NULL};

/* In the order `vigil --help` lists them. */
static const struct cli_command *const commands[] = {
	&agent_command, &cli_event_command, &cli_force_leave_command, &cli_info_command,
	&cli_join_command, &cli_keygen_command, &cli_keys_command, &cli_leave_command,
	&cli_members_command, &cli_monitor_command, &cli_query_command,
	&cli_reachability_command, &cli_rtt_command, &cli_tags_command, &version_command,
	&cli_will_command,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vigil [--version] [--help] <command> [<args>]\n\n"
		   "Available commands are:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "    %-15s %s\n", commands[i]->name, commands[i]->synopsis);
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
		if (strcmp(commands[i]->name, sub) != 0)
			continue;
		for (int k = 2; k < argc; k++) {
			if (strcmp(argv[k], "--") == 0)
				break;
			if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "-help") == 0 ||
			    strcmp(argv[k], "--help") == 0) {
				if (commands[i]->help)
					fprintf(stderr, "%s\n", commands[i]->help);
				else if (commands[i]->run == run_agent)
					return agent_main(1, (char *[]){"--help", NULL});
				return 0;
			}
		}
		return commands[i]->run(argc - 2, argv + 2);
	}
	usage(stderr);
	return 127;
}
