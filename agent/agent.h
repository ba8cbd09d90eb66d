/*
 * agent.h — `vigil agent`, the daemon (agent.c: flags, config, main loop).
 * The state its modules share is in agent_state.h.
 */
#ifndef VIGIL_AGENT_AGENT_H
#define VIGIL_AGENT_AGENT_H

int agent_main(int argc, char **argv); /* `vigil agent ...` */

#endif
