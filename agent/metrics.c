/*
 * metrics.c — Prometheus metrics endpoint (see metrics.h).
 *
 * Connections move through three states:
 *   READ    collect one request (request line, headers, an optional small
 *           body) — at most REQ_MAX bytes and PHASE_MS milliseconds;
 *   WRITE   send the answer, which was built in full when the request
 *           completed — at most PHASE_MS milliseconds; then back to READ
 *           (keep-alive, pipelined bytes already received are served next)
 *           or, after an error or "Connection: close", to
 *   LINGER  write side shut, unread input drained for up to LINGER_MS so
 *           the kernel does not reset the connection before the client has
 *           read our answer.
 * Sockets are non-blocking and every wake-up does a bounded amount of work,
 * so a client can neither block nor starve the agent's loop.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "strbuf.h"

#define MAX_CONNS 64         /* concurrent clients; more are turned away */
#define REQ_MAX 8192         /* request line + headers + body */
#define PHASE_MS 10000       /* to receive a request, or to send an answer */
#define LINGER_MS 1000       /* draining after the last answer */
#define ACCEPT_PER_WAKE 64
#define PIPELINE_PER_WAKE 8  /* requests served per connection per wake-up */
#define STATS_MAX 128

enum cstate { C_READ, C_WRITE, C_LINGER };

struct conn {
	int fd;
	enum cstate st;
	int pidx;             /* index in the last metrics_pollfds() slice, or -1 */
	bool dead;
	bool close_after;     /* close once the answer is out */
	bool eof;             /* the client shut its side */
	bool pending;         /* buffered requests left for the next wake-up */
	int64_t deadline;
	size_t in_len;
	char in[REQ_MAX];
	char *out;
	size_t out_len, out_off;
	struct conn *next;
};

struct metrics_server {
	struct agent *a;
	int lfd;
	int lidx;             /* listener's index in the last slice, or -1 */
	struct conn *conns;
	size_t nconns;
};

/* ------------------------------------------------------------ rendering */

static void fmt_value(char *out, size_t n, double v)
{
	if (isnan(v))
		snprintf(out, n, "NaN");
	else if (isinf(v))
		snprintf(out, n, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		snprintf(out, n, "%.0f", v);
	else
		snprintf(out, n, "%.17g", v);
}

static void family(struct strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* labels: NULL or `key="value",...` (values here are fixed strings). */
static void sample(struct strbuf *b, const char *name, const char *labels, double v)
{
	char val[64];
	fmt_value(val, sizeof val, v);
	if (labels)
		strbuf_printf(b, "%s{%s} %s\n", name, labels, val);
	else
		strbuf_printf(b, "%s %s\n", name, val);
}

struct stats {
	struct vigil_stat st[STATS_MAX];
	int n;
};

static double stat_of(const struct stats *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (s->st[i].name && strcmp(s->st[i].name, name) == 0)
			return s->st[i].value;
	return 0;
}

/* One unlabelled metric straight from a vigil_stats() entry. */
struct simple_metric {
	const char *name, *type, *stat, *help;
};

static const struct simple_metric simple_metrics[] = {
	{"vigil_health_score", "gauge", "health_score",
	 "Local health score (memberlist awareness): 0 is healthy; higher means this node "
	 "recently missed acks or nacks and stretches its probe timeouts."},
	{"vigil_encrypted", "gauge", "encrypted",
	 "1 if gossip is encrypted (a keyring is configured), else 0."},
	{"vigil_tcp_connections", "gauge", "tcp_active",
	 "Gossip TCP connections (push-pull, stream messages) currently open."},
	{"vigil_probes_total", "counter", "probes", "Failure-detector probe rounds started (a member pinged)."},
	{"vigil_acks_total", "counter", "acks", "Probes answered by an ack, directly or through an indirect helper."},
	{"vigil_nacks_total", "counter", "nacks",
	 "Nacks received from indirect probe helpers (the helper could not reach the target)."},
	{"vigil_probe_failures_total", "counter", "probe_failures",
	 "Probes that got no ack, directly or indirectly."},
	{"vigil_suspicions_total", "counter", "suspicions", "Members this node started to suspect."},
	{"vigil_refutations_total", "counter", "refutations",
	 "Times this node refuted a suspicion or death claim about itself."},
	{"vigil_deaths_total", "counter", "deaths", "Members declared failed (dead, not left)."},
	{"vigil_push_pulls_total", "counter", "push_pulls",
	 "Full state exchanges (push-pull) this node started, joins included."},
	{"vigil_stalls_total", "counter", "stalls",
	 "Times this process was found paused (SIGSTOP, VM or laptop suspend) long enough to matter."},
	{"vigil_udp_unreachable_total", "counter", "udp_unreachable",
	 "Datagrams this node sent that came back as ICMP port unreachable."},
	{"vigil_unreachable_probes_total", "counter", "unreachable_hints",
	 "Probes started early because a member's port was reported unreachable."},
	{"vigil_messages_received_total", "counter", "msgs_in",
	 "Gossip (memberlist) messages received in UDP packets (compound parts counted singly)."},
	{"vigil_messages_sent_total", "counter", "msgs_out", "Gossip (memberlist) messages sent in UDP packets (compound parts counted singly)."},
	{"vigil_packets_received_total", "counter", "udp_in", "UDP datagrams received."},
	{"vigil_packets_sent_total", "counter", "udp_out", "UDP datagrams sent."},
	{"vigil_udp_send_errors_total", "counter", "udp_send_errors",
	 "UDP datagrams the kernel refused to send."},
	{"vigil_encrypt_failures_total", "counter", "encrypt_failed",
	 "Outgoing messages not sent because encrypting them failed."},
	{"vigil_user_events_received_total", "counter", "serf_events_in",
	 "Distinct user events received (duplicates and too-old ones not counted)."},
	{"vigil_queries_received_total", "counter", "serf_queries_in",
	 "Distinct queries received (including ones whose filters exclude this node)."},
	{"vigil_wills_delivered_total", "counter", "wills_delivered",
	 "Last wills delivered to this node (member-will events)."},
	{"vigil_wills_published_total", "counter", "wills_published",
	 "Last wills of failed members this node published."},
};

char *metrics_render(struct agent *a, size_t *len)
{
	struct stats *s = calloc(1, sizeof *s);
	struct strbuf b = {0};
	if (!s)
		return NULL;
	s->n = vigil_stats(a->v, s->st, STATS_MAX);
	if (s->n < 0)
		s->n = 0;

	family(&b, "vigil_build_info", "gauge", "Always 1; the version label is vigil's.");
	sample(&b, "vigil_build_info", "version=\"" VIGIL_VERSION "\"", 1);

	size_t by_state[5] = {0};
	struct vigil_member *ms = NULL;
	size_t nm = 0;
	if (vigil_members(a->v, &ms, &nm) == 0) {
		for (size_t i = 0; i < nm; i++)
			if ((size_t)ms[i].status < sizeof by_state / sizeof by_state[0])
				by_state[ms[i].status]++;
		vigil_members_free(ms, nm);
	}
	family(&b, "vigil_members", "gauge",
	       "Members known to this node (itself included), by state.");
	static const struct {
		enum vigil_status st;
		const char *label;
	} states[] = {{VIGIL_STATUS_ALIVE, "state=\"alive\""},
		      {VIGIL_STATUS_LEAVING, "state=\"leaving\""},
		      {VIGIL_STATUS_LEFT, "state=\"left\""},
		      {VIGIL_STATUS_FAILED, "state=\"failed\""}};
	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
		sample(&b, "vigil_members", states[i].label, (double)by_state[states[i].st]);

	for (size_t i = 0; i < sizeof simple_metrics / sizeof simple_metrics[0]; i++) {
		const struct simple_metric *m = &simple_metrics[i];
		family(&b, m->name, m->type, m->help);
		sample(&b, m->name, NULL, stat_of(s, m->stat));
	}

	family(&b, "vigil_lamport_time", "gauge", "Serf Lamport clocks: member, event and query.");
	sample(&b, "vigil_lamport_time", "clock=\"member\"", stat_of(s, "member_time"));
	sample(&b, "vigil_lamport_time", "clock=\"event\"", stat_of(s, "event_time"));
	sample(&b, "vigil_lamport_time", "clock=\"query\"", stat_of(s, "query_time"));

	family(&b, "vigil_bytes_received_total", "counter",
	       "Gossip bytes received, as on the wire (encrypted size when encrypted).");
	sample(&b, "vigil_bytes_received_total", "transport=\"udp\"", stat_of(s, "udp_in_bytes"));
	sample(&b, "vigil_bytes_received_total", "transport=\"tcp\"", stat_of(s, "tcp_in_bytes"));
	family(&b, "vigil_bytes_sent_total", "counter",
	       "Gossip bytes sent, as on the wire (encrypted size when encrypted).");
	sample(&b, "vigil_bytes_sent_total", "transport=\"udp\"", stat_of(s, "udp_out_bytes"));
	sample(&b, "vigil_bytes_sent_total", "transport=\"tcp\"", stat_of(s, "tcp_out_bytes"));

	family(&b, "vigil_decode_errors_total", "counter",
	       "Messages that failed to decode after decryption, by protocol layer "
	       "(swim: memberlist, serf: serf messages, will: last-will messages).");
	sample(&b, "vigil_decode_errors_total", "layer=\"swim\"", stat_of(s, "decode_errors"));
	sample(&b, "vigil_decode_errors_total", "layer=\"serf\"", stat_of(s, "serf_decode_errors"));
	sample(&b, "vigil_decode_errors_total", "layer=\"will\"", stat_of(s, "will_decode_errors"));

	static const char *const will_refusals[] = { "unsigned", "signature", "key", "seq",
						     "budget", "view" };
	family(&b, "vigil_will_refused_total", "counter",
	       "Will messages refused (docs/SECURITY.md): unsigned (old protocol), signature "
	       "(bad, or signer's key unknown), key (not the key bound to that member), seq "
	       "(implausible sequence jump), budget (over the memory bound for held wills), "
	       "view (a delivery or done marker this member's own view contradicts).");
	for (size_t i = 0; i < sizeof will_refusals / sizeof will_refusals[0]; i++) {
		char stat[48], label[48];
		snprintf(stat, sizeof stat, "will_refused_%s", will_refusals[i]);
		snprintf(label, sizeof label, "reason=\"%s\"", will_refusals[i]);
		sample(&b, "vigil_will_refused_total", label, stat_of(s, stat));
	}

	/* udp_decrypt_failed counts every undecryptable datagram; the library
	 * also says which of them were plaintext or garbage */
	double udp_all = stat_of(s, "udp_decrypt_failed");
	double udp_plain = stat_of(s, "udp_dropped_plaintext");
	double udp_bad = stat_of(s, "udp_dropped_malformed");
	double udp_decrypt = udp_all - udp_plain - udp_bad;
	family(&b, "vigil_packets_dropped_total", "counter",
	       "Incoming gossip dropped before it was looked at, by transport and reason: "
	       "plaintext (unencrypted while encryption is on), decrypt (no installed key "
	       "authenticates it: wrong key or tampered), no_key (encrypted stream but no "
	       "keyring here), malformed (neither valid encrypted nor plaintext, bad stream "
	       "framing, or an unparseable stream message).");
	sample(&b, "vigil_packets_dropped_total", "transport=\"udp\",reason=\"plaintext\"", udp_plain);
	sample(&b, "vigil_packets_dropped_total", "transport=\"udp\",reason=\"decrypt\"",
	       udp_decrypt > 0 ? udp_decrypt : 0);
	sample(&b, "vigil_packets_dropped_total", "transport=\"udp\",reason=\"malformed\"",
	       udp_bad + stat_of(s, "udp_empty") + stat_of(s, "udp_packets_malformed"));
	sample(&b, "vigil_packets_dropped_total", "transport=\"tcp\",reason=\"plaintext\"",
	       stat_of(s, "tcp_plain_dropped"));
	sample(&b, "vigil_packets_dropped_total", "transport=\"tcp\",reason=\"decrypt\"",
	       stat_of(s, "tcp_decrypt_failed"));
	sample(&b, "vigil_packets_dropped_total", "transport=\"tcp\",reason=\"no_key\"",
	       stat_of(s, "tcp_encrypted_no_key"));
	sample(&b, "vigil_packets_dropped_total", "transport=\"tcp\",reason=\"malformed\"",
	       stat_of(s, "tcp_bad_frames") + stat_of(s, "stream_malformed"));

	family(&b, "vigil_tcp_connections_total", "counter",
	       "Gossip TCP connections, by kind: accepted, dialed (outgoing), "
	       "rejected (connection cap reached, nothing idle to close), evicted (idle "
	       "incoming connection closed to make room).");
	sample(&b, "vigil_tcp_connections_total", "kind=\"accepted\"", stat_of(s, "tcp_accepted"));
	sample(&b, "vigil_tcp_connections_total", "kind=\"dialed\"", stat_of(s, "tcp_connects"));
	sample(&b, "vigil_tcp_connections_total", "kind=\"rejected\"", stat_of(s, "tcp_rejected"));
	sample(&b, "vigil_tcp_connections_total", "kind=\"evicted\"", stat_of(s, "tcp_evicted"));
	family(&b, "vigil_tcp_connection_failures_total", "counter",
	       "Gossip TCP connections that ended abnormally, by reason: error "
	       "(I/O error, peer closed mid-message), timeout.");
	sample(&b, "vigil_tcp_connection_failures_total", "reason=\"error\"", stat_of(s, "tcp_errors"));
	sample(&b, "vigil_tcp_connection_failures_total", "reason=\"timeout\"",
	       stat_of(s, "tcp_timeouts"));

	family(&b, "vigil_claims_refused_total", "counter",
	       "Membership claims refused as implausible (docs/SECURITY.md, Membership identity): "
	       "address (an alive moving a member that is not dead or left long enough), "
	       "incarnation (far ahead of the incarnation held), lamport (a serf Lamport time "
	       "far ahead of the local clock).");
	sample(&b, "vigil_claims_refused_total", "reason=\"address\"", stat_of(s, "refused_address"));
	sample(&b, "vigil_claims_refused_total", "reason=\"incarnation\"",
	       stat_of(s, "refused_incarnation"));
	sample(&b, "vigil_claims_refused_total", "reason=\"lamport\"",
	       stat_of(s, "serf_ltime_refused"));

	free(s);
	if (b.oom) {
		strbuf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* ----------------------------------------------------------------- HTTP */

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->dead = true;
}

static void set_response(struct conn *c, int code, const char *reason, const char *ctype,
			 const char *extra_hdrs, const char *body, size_t body_len, bool head)
{
	struct strbuf b = {0};
	strbuf_printf(&b,
		  "HTTP/1.1 %d %s\r\n"
		  "Content-Type: %s\r\n"
		  "Content-Length: %zu\r\n"
		  "%s"
		  "Connection: %s\r\n"
		  "\r\n",
		  code, reason, ctype, body_len, extra_hdrs ? extra_hdrs : "",
		  c->close_after ? "close" : "keep-alive");
	if (!head && body_len && !b.oom) {
		if (b.cap - b.len < body_len) {
			char *np = realloc(b.p, b.len + body_len);
			if (!np)
				b.oom = true;
			else {
				b.p = np;
				b.cap = b.len + body_len;
			}
		}
		if (!b.oom) {
			memcpy(b.p + b.len, body, body_len);
			b.len += body_len;
		}
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (b.oom) {
		strbuf_free(&b);
		conn_close(c);
		return;
	}
	c->out = b.p;
	c->out_len = b.len;
	c->st = C_WRITE;
	c->deadline = now_ms() + PHASE_MS;
}

static void simple_response(struct conn *c, int code, const char *reason, const char *extra,
			    bool head)
{
	char body[128];
	int n = snprintf(body, sizeof body, "%d %s\n", code, reason);
	set_response(c, code, reason, "text/plain; charset=utf-8", extra, body, (size_t)n, head);
}

static void bad_request(struct conn *c)
{
	c->close_after = true;
	simple_response(c, 400, "Bad Request", NULL, false);
}

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Allowed anywhere in a request head: visible ASCII, SP, HTAB, CR, LF and
 * (in header values) obs-text. */
static bool head_byte_ok(unsigned char ch)
{
	return ch >= 0x20 ? ch != 0x7f : (ch == '\t' || ch == '\r' || ch == '\n');
}

/* Next line [*p, end): returns its length without CR LF / LF and moves *p
 * past it, or -1 if no complete line is there. */
static long next_line(const char **p, const char *end, const char **line)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl)
		return -1;
	*line = *p;
	long n = (long)(nl - *p);
	if (n > 0 && (*p)[n - 1] == '\r')
		n--;
	*p = nl + 1;
	return n;
}

static bool list_has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return true;
	}
	return false;
}

/* No complete line yet: garbage or an oversized head is refused at once
 * (the whole input is taken, as bad_request answers), else wait (0). */
static size_t head_incomplete(struct conn *c, const char *p, const char *end)
{
	for (const char *q = p; q < end; q++)
		if (!head_byte_ok((unsigned char)*q)) {
			bad_request(c);
			return c->in_len;
		}
	if (c->in_len >= REQ_MAX) {
		bad_request(c);
		return c->in_len;
	}
	return 0;
}

/* METHOD SP TARGET SP HTTP/1.x into method[16], target[2048]; false if
 * malformed. */
static bool parse_request_line(const char *line, long ln, char method[16], char target[2048],
			       int *minor)
{
	const char *sp1 = memchr(line, ' ', (size_t)ln);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line + ln - sp1 - 1)) : NULL;
	size_t ml = sp1 ? (size_t)(sp1 - line) : 0;
	size_t tl = sp2 ? (size_t)(sp2 - sp1 - 1) : 0;
	size_t vl = sp2 ? (size_t)(line + ln - sp2 - 1) : 0;
	bool ok = sp1 && sp2 && ml > 0 && ml < 16 && tl > 0 && tl < 2048 && vl == 8 &&
		  memcmp(sp2 + 1, "HTTP/1.", 7) == 0 && sp2[8] >= '0' && sp2[8] <= '9';
	for (size_t i = 0; ok && i < ml; i++)
		ok = is_tchar((unsigned char)line[i]);
	for (size_t i = 0; ok && i < tl; i++)
		ok = sp1[1 + i] > 0x20 && sp1[1 + i] < 0x7f;
	if (!ok)
		return false;
	memcpy(method, line, ml);
	method[ml] = '\0';
	memcpy(target, sp1 + 1, tl);
	target[tl] = '\0';
	*minor = sp2[8] - '0';
	return true;
}

/* What the request's headers say that matters here. */
struct req_head {
	bool conn_close, conn_keep, have_cl;
	unsigned long long content_length;
};

/* One header line into h; false if it is malformed or refused. */
static bool parse_header(const char *line, long hl, struct req_head *h)
{
	const char *colon = memchr(line, ':', (size_t)hl);
	bool ok = colon && colon > line;
	for (const char *q = line; ok && q < colon; q++)
		ok = is_tchar((unsigned char)*q); /* also rejects obs-fold and "Name :" */
	for (const char *q = line; ok && q < line + hl; q++)
		ok = head_byte_ok((unsigned char)*q) && *q != '\r';
	if (!ok)
		return false;
	size_t nl = (size_t)(colon - line);
	const char *v = colon + 1, *ve = line + hl;
	while (v < ve && (*v == ' ' || *v == '\t'))
		v++;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	size_t vl = (size_t)(ve - v);
	if (nl == 10 && strncasecmp(line, "Connection", 10) == 0) {
		h->conn_close |= list_has_token(v, vl, "close");
		h->conn_keep |= list_has_token(v, vl, "keep-alive");
	} else if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
		unsigned long long cl = 0;
		bool digits = vl > 0 && vl <= 18;
		for (size_t i = 0; digits && i < vl; i++) {
			digits = v[i] >= '0' && v[i] <= '9';
			cl = cl * 10 + (unsigned)(v[i] - '0');
		}
		if (!digits || (h->have_cl && cl != h->content_length))
			return false;
		h->have_cl = true;
		h->content_length = cl;
	} else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
		/* no request bodies of unknown length here */
		return false;
	}
	return true;
}

/* The answer to a well-formed request for target (query string cut off). */
static void answer(struct metrics_server *m, struct conn *c, const char *method, char *target)
{
	char *q = strchr(target, '?');
	if (q)
		*q = '\0';
	bool head = strcmp(method, "HEAD") == 0;
	if (strcmp(target, "/metrics") != 0) {
		simple_response(c, 404, "Not Found", NULL, head);
	} else if (!head && strcmp(method, "GET") != 0) {
		simple_response(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
	} else {
		size_t blen = 0;
		char *body = metrics_render(m->a, &blen);
		if (!body) {
			c->close_after = true;
			simple_response(c, 500, "Internal Server Error", NULL, head);
		} else {
			set_response(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL,
				     body, blen, head);
			free(body);
		}
	}
}

/*
 * Look at what has been received.  Returns 0 when more bytes are needed,
 * else the number of bytes the request took (the answer is then set).
 * A malformed request gets 400 (connection closed after it) as soon as the
 * problem shows, without waiting for the rest.
 */
static size_t try_request(struct metrics_server *m, struct conn *c)
{
	const char *buf = c->in, *end = c->in + c->in_len;
	const char *p = buf;
	/* RFC 9112 2.2: ignore empty lines before the request line */
	while (p < end && (*p == '\r' || *p == '\n')) {
		if (*p == '\r' && (p + 1 >= end || p[1] != '\n')) {
			if (p + 1 >= end)
				return 0;
			bad_request(c);
			return c->in_len;
		}
		p += *p == '\r' ? 2 : 1;
	}
	const char *line;
	long ln = next_line(&p, end, &line);
	if (ln < 0)
		return head_incomplete(c, p, end);
	char method[16], target[2048];
	int minor = -1;
	if (!parse_request_line(line, ln, method, target, &minor)) {
		bad_request(c);
		return c->in_len;
	}

	/* headers up to an empty line */
	struct req_head h = {0};
	for (;;) {
		long hl = next_line(&p, end, &line);
		if (hl < 0)
			return head_incomplete(c, p, end);
		if (hl == 0)
			break;
		if (!parse_header(line, hl, &h)) {
			bad_request(c);
			return c->in_len;
		}
	}
	size_t head_len = (size_t)(p - buf);
	if (h.content_length > (unsigned long long)(REQ_MAX - head_len)) {
		bad_request(c);
		return c->in_len;
	}
	size_t total = head_len + (size_t)h.content_length;
	if (c->in_len < total)
		return 0; /* body still coming; it is ignored */

	c->close_after = minor == 0 ? !h.conn_keep || h.conn_close : h.conn_close;
	answer(m, c, method, target);
	return total;
}

static void conn_linger(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->st = C_LINGER;
	c->deadline = now_ms() + LINGER_MS;
}

/* Write what is left of the answer: 1 all sent, 0 would block, -1 closed. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return 1;
}

/*
 * Serve buffered requests and send their answers until the socket would
 * block, more input is needed, the connection ends, or PIPELINE_PER_WAKE
 * requests were served (then `pending` asks for another round soon).
 */
static void conn_pump(struct metrics_server *m, struct conn *c)
{
	int budget = PIPELINE_PER_WAKE;
	c->pending = false;
	while (!c->dead) {
		if (c->st == C_WRITE) {
			if (conn_flush(c) <= 0)
				return;
			if (c->close_after) {
				conn_linger(c);
				return;
			}
			c->st = C_READ;
			c->deadline = now_ms() + PHASE_MS;
			continue;
		}
		if (c->st != C_READ)
			return;
		if (c->in_len == 0) {
			if (c->eof)
				conn_close(c);
			return;
		}
		if (budget-- == 0) {
			c->pending = true;
			return;
		}
		size_t used = try_request(m, c);
		if (!used) {
			if (c->eof) /* an incomplete request will stay incomplete */
				conn_close(c);
			return;
		}
		if (c->close_after) {
			c->in_len = 0; /* nothing after it will be served */
		} else {
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
		}
	}
}

static void conn_read(struct metrics_server *m, struct conn *c)
{
	if (c->st == C_LINGER) {
		char junk[4096];
		for (int i = 0; i < 16; i++) {
			ssize_t r = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT);
			if (r > 0)
				continue;
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				conn_close(c);
			return;
		}
		return;
	}
	if (c->st != C_READ || c->eof)
		return;
	if (c->in_len < REQ_MAX) {
		ssize_t r;
		do
			r = recv(c->fd, c->in + c->in_len, REQ_MAX - c->in_len, MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c);
			return;
		}
		if (r == 0)
			c->eof = true; /* serve what is buffered, then close */
		else
			c->in_len += (size_t)r;
	}
	conn_pump(m, c);
}

static void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	free(c);
}

/* Free closed connections. */
static void sweep(struct metrics_server *m)
{
	for (struct conn **pp = &m->conns; *pp;) {
		struct conn *c = *pp;
		if (c->dead) {
			*pp = c->next;
			m->nconns--;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void accept_conns(struct metrics_server *m)
{
	for (int i = 0; i < ACCEPT_PER_WAKE; i++) {
		int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
				alog(LV_WARN, "agent.metrics: accept: %s", strerror(errno));
			return;
		}
		if (m->nconns >= MAX_CONNS) {
			/* make room by dropping the connection idle the longest:
			 * nothing received of its next request yet */
			struct conn *victim = NULL;
			for (struct conn *c = m->conns; c; c = c->next)
				if (!c->dead && c->st == C_READ && c->in_len == 0 &&
				    (!victim || c->deadline < victim->deadline))
					victim = c;
			if (victim) {
				conn_close(victim);
				sweep(m);
			}
		}
		if (m->nconns >= MAX_CONNS) {
			static const char busy[] =
				"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
				"Content-Length: 24\r\nConnection: close\r\n\r\n"
				"503 Service Unavailable\n";
			if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* best effort */
			}
			close(fd);
			continue;
		}
		struct conn *c = malloc(sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct conn, in));
		c->fd = fd;
		c->st = C_READ;
		c->pidx = -1;
		c->out = NULL;
		c->out_len = c->out_off = 0;
		c->deadline = now_ms() + PHASE_MS;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->next = m->conns;
		m->conns = c;
		m->nconns++;
	}
}

/* -------------------------------------------------------------- public */

static int listen_on(const char *addr, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || !colon[1]) {
		snprintf(err, errlen, "address %s: missing port in address", addr);
		return -1;
	}
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host) {
		snprintf(err, errlen, "address %s: host too long", addr);
		return -1;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	} else if (strchr(host, ':') || strchr(host, '[') || strchr(host, ']')) {
		snprintf(err, errlen, "address %s: IPv6 addresses need brackets", addr);
		return -1;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "listen tcp %s: %s", addr, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "listen tcp %s: socket: %s", addr, strerror(errno));
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		snprintf(err, errlen, "listen tcp %s: bind: %s", addr, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct metrics_server *metrics_create(struct agent *a, const char *addr, char *err,
				      size_t errlen)
{
	struct metrics_server *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->a = a;
	m->lidx = -1;
	m->lfd = listen_on(addr, err, errlen);
	if (m->lfd < 0) {
		free(m);
		return NULL;
	}
	return m;
}

void metrics_destroy(struct metrics_server *m)
{
	if (!m)
		return;
	while (m->conns) {
		struct conn *c = m->conns;
		m->conns = c->next;
		conn_free(c);
	}
	close(m->lfd);
	free(m);
}

int metrics_nfds(void *server)
{
	const struct metrics_server *m = server;
	return m ? 1 + (int)m->nconns : 0;
}

int metrics_pollfds(void *server, struct pollfd *fds, int max)
{
	struct metrics_server *m = server;
	int n = 0;
	if (!m)
		return 0;
	m->lidx = -1;
	if (n < max) {
		m->lidx = n;
		fds[n++] = (struct pollfd){.fd = m->lfd, .events = POLLIN};
	}
	for (struct conn *c = m->conns; c; c = c->next) {
		c->pidx = -1;
		if (n >= max || c->dead)
			continue;
		c->pidx = n;
		short ev = c->st == C_WRITE ? POLLOUT : c->eof ? 0 : POLLIN;
		fds[n++] = (struct pollfd){.fd = c->fd, .events = ev};
	}
	return n;
}

void metrics_handle(void *server, const struct pollfd *fds, int n)
{
	struct metrics_server *m = server;
	if (!m)
		return;
	for (struct conn *c = m->conns; c; c = c->next) {
		if (c->dead || c->pidx < 0 || c->pidx >= n || fds[c->pidx].fd != c->fd)
			continue;
		short re = fds[c->pidx].revents;
		c->pidx = -1;
		if (!re)
			continue;
		if (c->st == C_WRITE) {
			if (re & (POLLOUT | POLLERR | POLLHUP))
				conn_pump(m, c);
		} else if (re & (POLLIN | POLLERR | POLLHUP)) {
			conn_read(m, c);
		} else if (re & POLLNVAL) {
			conn_close(c);
		}
	}
	for (struct conn *c = m->conns; c; c = c->next)
		if (!c->dead && c->pending)
			conn_pump(m, c);
	int64_t now = now_ms();
	for (struct conn *c = m->conns; c; c = c->next)
		if (!c->dead && now >= c->deadline)
			conn_close(c);
	sweep(m);
	if (m->lidx >= 0 && m->lidx < n && fds[m->lidx].fd == m->lfd &&
	    (fds[m->lidx].revents & POLLIN))
		accept_conns(m);
	m->lidx = -1;
}

int metrics_timeout_ms(void *server)
{
	const struct metrics_server *m = server;
	if (!m || !m->conns)
		return -1;
	int64_t now = now_ms(), soonest = -1;
	for (const struct conn *c = m->conns; c; c = c->next) {
		if (c->pending)
			return 0;
		int64_t d = c->deadline - now;
		if (d < 0)
			d = 0;
		if (soonest < 0 || d < soonest)
			soonest = d;
	}
	return (int)soonest;
}
