/* rpcclient.c — see rpcclient.h. */
#include "rpcclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mp.h"

#define DEFAULT_TIMEOUT_MS 10000 /* serf client's DefaultTimeout */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Go's error texts are lower-case ("connection refused"). */
static void go_strerror(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
}

static int dial(const char *addr, int timeout_ms, char *err, size_t errlen)
{
	char host[256], port[16];
	const char *colon = strrchr(addr, ':');
	if (!colon) {
		snprintf(err, errlen, "dial tcp %s: address %s: missing port in address", addr, addr);
		return -1;
	}
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host || strlen(colon + 1) >= sizeof port) {
		snprintf(err, errlen, "dial tcp %s: invalid address", addr);
		return -1;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	snprintf(port, sizeof port, "%s", colon + 1);
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "dial tcp %s: lookup %s: %s", addr, host, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	char es[128] = "no address";
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc != 0 && errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			rc = poll(&p, 1, timeout_ms);
			if (rc == 1) {
				int soerr = 0;
				socklen_t sl = sizeof soerr;
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				errno = soerr;
				rc = soerr ? -1 : 0;
			} else {
				errno = ETIMEDOUT;
				rc = -1;
			}
		}
		if (rc == 0)
			break;
		go_strerror(errno, es, sizeof es);
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "dial tcp %s: connect: %s", addr, es);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static int write_all(struct rpcc *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int64_t end = mono_ms() + DEFAULT_TIMEOUT_MS;
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int64_t left = end - mono_ms();
			struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
			if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

int rpcc_send(struct rpcc *c, const char *cmd, uint64_t seq, const msgpack_sbuffer *body)
{
	struct mp_body h;
	msgpack_packer *pk = mp_body_map(&h, 2);
	mp_pack_kstr(pk, "Command", cmd);
	mp_pack_kuint(pk, "Seq", seq);
	if (body && body->size)
		msgpack_sbuffer_write(&h.sb, body->data, body->size);
	int rc = write_all(c, h.sb.data, h.sb.size);
	msgpack_sbuffer_destroy(&h.sb);
	return rc;
}

/* Fill the buffer until one complete object is at its start. */
static int next_frame(struct rpcc *c, size_t *flen, int timeout_ms)
{
	int64_t end = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	for (;;) {
		int r = mp_frame_len_max(c->rbuf, c->rlen, MP_MAX_RESPONSE, flen);
		if (r > 0)
			return 0;
		if (r < 0)
			return -1;
		if (c->rcap - c->rlen < 4096) {
			size_t ncap = c->rcap ? c->rcap * 2 : 16384;
			if (ncap > MP_MAX_RESPONSE + 65536)
				return -1;
			uint8_t *n = realloc(c->rbuf, ncap);
			if (!n)
				return -1;
			c->rbuf = n;
			c->rcap = ncap;
		}
		int wait = -1;
		if (end >= 0) {
			int64_t left = end - mono_ms();
			if (left <= 0)
				return -1;
			wait = (int)left;
		}
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&pf, 1, wait);
		if (pr < 0 && errno == EINTR)
			return -2; /* interrupted: let the caller check for ^C */
		if (pr <= 0)
			return -1;
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		c->rlen += (size_t)n;
	}
}

int rpcc_read_obj(struct rpcc *c, msgpack_unpacked *u, int timeout_ms)
{
	size_t fl;
	int r = next_frame(c, &fl, timeout_ms);
	if (r != 0)
		return r;
	bool ok = mp_decode(u, c->rbuf, fl);
	memmove(c->rbuf, c->rbuf + fl, c->rlen - fl);
	c->rlen -= fl;
	return ok ? 0 : -1;
}

int rpcc_read_header(struct rpcc *c, uint64_t *seq, char *err, size_t errlen, int timeout_ms)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int r = rpcc_read_obj(c, &u, timeout_ms);
	if (r != 0) {
		msgpack_unpacked_destroy(&u);
		return r;
	}
	*seq = 0;
	mp_get_uint(&u.data, "Seq", seq);
	if (!mp_get_str(&u.data, "Error", err, errlen))
		err[0] = '\0';
	msgpack_unpacked_destroy(&u);
	return 0;
}

int rpcc_call(struct rpcc *c, const char *cmd, const msgpack_sbuffer *body,
	      msgpack_unpacked *resp, char *rerr, size_t errlen)
{
	uint64_t seq = c->seq++;
	if (rpcc_send(c, cmd, seq, body) != 0) {
		snprintf(rerr, errlen, "client closed");
		return -1;
	}
	for (;;) {
		uint64_t got;
		int r = rpcc_read_header(c, &got, rerr, errlen, c->timeout_ms);
		if (r == -2)
			continue;
		if (r != 0) {
			snprintf(rerr, errlen, "client closed");
			return -1;
		}
		if (got != seq)
			continue; /* not ours (a stream we don't follow here) */
		/* serf's client: an auth error never has a body */
		if (resp && strcmp(rerr, "Authentication required") != 0) {
			if (rpcc_read_obj(c, resp, c->timeout_ms) != 0) {
				snprintf(rerr, errlen, "client closed");
				return -1;
			}
		}
		return rerr[0] ? 1 : 0;
	}
}

/* One call of the opening exchange (body freed); on failure the connection
 * is closed and err says why. */
static int open_call(struct rpcc *c, const char *cmd, struct mp_body *b, char *err, size_t errlen)
{
	int r = rpcc_call(c, cmd, &b->sb, NULL, err, errlen);
	msgpack_sbuffer_destroy(&b->sb);
	if (r != 0) {
		rpcc_close(c);
		return -1;
	}
	return 0;
}

int rpcc_open(struct rpcc *c, const char *addr, const char *auth, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	c->timeout_ms = DEFAULT_TIMEOUT_MS;
	c->seq = 1; /* serf's client numbers requests from 1 */
	c->fd = dial(addr, DEFAULT_TIMEOUT_MS, err, errlen);
	if (c->fd < 0)
		return -1;
	struct mp_body b;
	msgpack_packer *pk = mp_body_map(&b, 1);
	mp_pack_cstr(pk, "Version");
	msgpack_pack_int32(pk, 1);
	if (open_call(c, "handshake", &b, err, errlen) != 0)
		return -1;
	if (auth && *auth) {
		mp_pack_kstr(mp_body_map(&b, 1), "AuthKey", auth);
		if (open_call(c, "auth", &b, err, errlen) != 0)
			return -1;
	}
	return 0;
}

void rpcc_close(struct rpcc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
}
