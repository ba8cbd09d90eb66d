/*
 * sdnotify.h — systemd's readiness protocol without libsystemd.
 *
 * Under a Type=notify unit systemd sets $NOTIFY_SOCKET to a datagram
 * socket; a line "READY=1" sent there says the service is up.  Outside
 * systemd the variable is unset and these calls do nothing.
 */
#ifndef VIGIL_AGENT_SDNOTIFY_H
#define VIGIL_AGENT_SDNOTIFY_H

/* Send state ("READY=1", "STOPPING=1", ...); 1 sent, 0 no socket, -1 error. */
int sd_notify_state(const char *state);

#endif
