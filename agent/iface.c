/*
 * iface.c — resolve serf's -iface to a bind address (see iface.h).
 */
#include "iface.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool iface_exists(const char *ifname)
{
	return if_nametoindex(ifname) != 0;
}

/* Go's IP.IsLinkLocalUnicast: 169.254/16 and fe80::/10, which serf skips. */
static bool link_local(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return (a >> 16) == 0xa9fe;
	}
	const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	return b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
}

static bool addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	const void *a = sa->sa_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	return inet_ntop(sa->sa_family, a, out, (socklen_t)len) != NULL;
}

int iface_bind_ip(const char *ifname, char *bind_ip, size_t len, bool *picked, char *err,
		  size_t errlen)
{
	*picked = false;
	struct ifaddrs *all;
	if (getifaddrs(&all) != 0) {
		snprintf(err, errlen, "Failed to get interface addresses: %m");
		return -1;
	}
	bool any = false, want_pick = strcmp(bind_ip, "0.0.0.0") == 0, found = false;
	char text[INET6_ADDRSTRLEN];
	/* two passes: IPv4 addresses first, as Go's Interface.Addrs lists them */
	int fams[2] = { AF_INET, AF_INET6 };
	for (int f = 0; f < 2 && !found; f++)
		for (struct ifaddrs *i = all; i && !found; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != fams[f] ||
			    strcmp(i->ifa_name, ifname) != 0)
				continue;
			any = true;
			if (!addr_text(i->ifa_addr, text, sizeof text))
				continue;
			if (want_pick) {
				if (link_local(i->ifa_addr) || strlen(text) >= len)
					continue;
				snprintf(bind_ip, len, "%s", text);
				found = *picked = true;
			} else {
				found = strcmp(text, bind_ip) == 0;
			}
		}
	freeifaddrs(all);
	if (found)
		return 0;
	if (!any)
		snprintf(err, errlen, "Interface '%s' has no addresses", ifname);
	else if (want_pick)
		snprintf(err, errlen, "Failed to find usable address for interface '%s'", ifname);
	else
		snprintf(err, errlen, "Interface '%s' has no '%s' address", ifname, bind_ip);
	return -1;
}
