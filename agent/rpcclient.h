/*
 * rpcclient.h — blocking client for serf's RPC protocol, used by the vigil
 * CLI (cli.c).  Mirrors hashicorp/serf/client: handshake, then optional
 * auth, then requests tagged with increasing Seq numbers.
 */
#ifndef VIGIL_AGENT_RPCCLIENT_H
#define VIGIL_AGENT_RPCCLIENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

struct rpcc {
	int fd;
	uint64_t seq;
	uint8_t *rbuf;
	size_t rlen, rcap;
	int timeout_ms; /* per read/write; -1 = none (streams) */
};

/* Connect, handshake and authenticate.  err gets serf's wording, e.g.
 * "dial tcp 127.0.0.1:7373: connect: connection refused". */
int rpcc_open(struct rpcc *c, const char *addr, const char *auth, char *err, size_t errlen);
void rpcc_close(struct rpcc *c);

/* Send header {Command, Seq} and, if body != NULL, the packed body. */
int rpcc_send(struct rpcc *c, const char *cmd, uint64_t seq, const msgpack_sbuffer *body);
/* Read one response header. 0 ok, -1 closed/timeout/garbage. */
int rpcc_read_header(struct rpcc *c, uint64_t *seq, char *err, size_t errlen, int timeout_ms);
/* Read one msgpack object (a body). */
int rpcc_read_obj(struct rpcc *c, msgpack_unpacked *u, int timeout_ms);

/*
 * Request/response: send cmd (+body), wait for the header with our Seq and
 * (if resp != NULL) its body.  Returns 0 on success, 1 if the agent
 * answered with an error (in rerr), -1 on transport failure (in rerr).
 */
int rpcc_call(struct rpcc *c, const char *cmd, const msgpack_sbuffer *body,
	      msgpack_unpacked *resp, char *rerr, size_t errlen);

#endif
