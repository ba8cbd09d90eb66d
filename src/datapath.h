/*
 * datapath.h — packets and streams between SWIM and the transport,
 * encrypted when a keyring is configured (datapath.c).  Private to vigil.c,
 * which installs these as SWIM's send hooks and the transport's receive
 * hooks (ctx: the struct vigil).
 */
#ifndef VIGIL_DATAPATH_H
#define VIGIL_DATAPATH_H

#include <stddef.h>
#include <stdint.h>

#include "vigil_internal.h"

/* swim_hooks.send_packet / send_stream */
void datapath_send_packet(void *ctx, const struct wire_addr *to, const uint8_t *pkt, size_t len);
void datapath_send_stream(void *ctx, const struct wire_addr *to, const uint8_t *msg,
			  size_t len, uint64_t cookie);

/* transport_hooks.on_packet, on_stream, on_unreachable, on_stream_reply */
void datapath_on_packet(void *ctx, const struct wire_addr *from, const uint8_t *pkt,
			size_t len);
void datapath_on_stream(void *ctx, const struct wire_addr *from, const uint8_t *msg,
			size_t len, struct wbuf *reply);
void datapath_on_unreachable(void *ctx, const struct wire_addr *to);
void datapath_on_stream_reply(void *ctx, uint64_t cookie, const uint8_t *msg, size_t len);

#endif
