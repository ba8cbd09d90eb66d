/*
 * iface.h — serf's -iface / config "interface": bind to a network
 * interface's address (serf agent command.go setupAgent).
 */
#ifndef VIGIL_AGENT_IFACE_H
#define VIGIL_AGENT_IFACE_H

#include <stdbool.h>
#include <stddef.h>

/* Does the interface exist?  (serf checks this before anything else.) */
bool iface_exists(const char *ifname);

/*
 * With bind_ip "0.0.0.0": replace it with the interface's first address
 * that is not link-local (IPv4 first, as Go lists them), *picked = true.
 * With any other bind_ip: check the interface has that address.
 * 0, or -1 with serf's message in err.
 */
int iface_bind_ip(const char *ifname, char *bind_ip, size_t len, bool *picked, char *err,
		  size_t errlen);

#endif
