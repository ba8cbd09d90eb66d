/*
 * main.c — the vigil binary: `vigil agent` runs the daemon, every other
 * subcommand is an RPC client (cli.c), mirroring the serf binary.
 */
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv)
{
	int rc = cli_main(argc, argv);
	fflush(stdout);
	return rc;
}
