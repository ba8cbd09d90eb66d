/* cli.h — command dispatch for the vigil binary (see cli.c). */
#ifndef VIGIL_AGENT_CLI_H
#define VIGIL_AGENT_CLI_H

/* argv[0] is the program name.  Returns the process exit status. */
int cli_main(int argc, char **argv);

#endif
