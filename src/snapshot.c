/*
 * snapshot.c — serf-compatible snapshot files, written crash-safely.
 * See snapshot.h for the format and the reading rules.
 */
#include "snapshot.h"
#include "logline.h"
#include "safefile.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>

int (*snap_before_rename_hook)(const char *tmp_path, const char *path);

/* ------------------------------------------------------------ validation */

static bool has_control(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

/*
 * Well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF).  tail_ok: the text may end inside a sequence (a fragment).
 */
static bool valid_utf8(const char *s, size_t n, bool tail_ok)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t k;
		unsigned lo = 0x80, hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			if (c == 0xe0)
				lo = 0xa0;
			if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n)
				return tail_ok;
			unsigned d = p[i + j];
			if (d < (j == 1 ? lo : 0x80) || d > (j == 1 ? hi : 0xbf))
				return false;
		}
		i += k + 1;
	}
	return true;
}

/* Text a record may hold: no control characters, well-formed UTF-8. */
static bool is_text(const char *p, size_t n, bool tail_ok)
{
	return !has_control(p, n) && valid_utf8(p, n, tail_ok);
}

static bool valid_name(const char *p, size_t n)
{
	return n >= 1 && n <= VIGIL_NAME_MAX && is_text(p, n, false);
}

/* Decimal 1..65535, no sign, no leading zero (Go's itoa). */
static bool valid_port(const char *p, size_t n)
{
	unsigned v = 0;
	if (n < 1 || n > 5 || (p[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	return v <= 65535;
}

/*
 * ADDR:PORT as Go's net.TCPAddr.String() prints a memberlist address:
 * "1.2.3.4:7946" or "[2001:db8::1]:7946" (a "%zone" allowed in brackets).
 */
static bool valid_addr(const char *p, size_t n)
{
	char ip[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	if (n == 0 || n >= SNAP_ADDR_MAX || has_control(p, n))
		return false;
	if (p[0] == '[') {
		const char *close = memchr(p, ']', n);
		if (!close || (size_t)(close - p) + 2 > n || close[1] != ':')
			return false;
		size_t hl = (size_t)(close - p) - 1;
		const char *pct = memchr(p + 1, '%', hl);
		size_t il = pct ? (size_t)(pct - (p + 1)) : hl;
		if (il == 0 || il >= sizeof ip)
			return false;
		if (pct) {
			size_t zl = hl - il - 1;
			if (zl == 0)
				return false;
			for (size_t i = 1; i <= zl; i++) {
				char c = pct[i];
				if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
					return false;
			}
		}
		memcpy(ip, p + 1, il);
		ip[il] = '\0';
		if (inet_pton(AF_INET6, ip, bin) != 1)
			return false;
		const char *port = close + 2;
		return valid_port(port, n - (size_t)(port - p));
	}
	const char *colon = memchr(p, ':', n);
	if (!colon || memchr(colon + 1, ':', n - (size_t)(colon - p) - 1))
		return false;
	size_t il = (size_t)(colon - p);
	if (il == 0 || il >= sizeof ip)
		return false;
	memcpy(ip, p, il);
	ip[il] = '\0';
	if (inet_pton(AF_INET, ip, bin) != 1)
		return false;
	return valid_port(colon + 1, n - il - 1);
}

/* strconv.ParseUint(s, 10, 64): digits only, no overflow. */
static bool parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool starts_with(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && memcmp(p, lit, l) == 0;
}

/* ------------------------------------------------------- alive node map */

struct node_map {
	struct snap_node *v;     /* entries; live[i] says whether still alive */
	bool *live;
	size_t n, cap;
	uint32_t *slots;         /* open addressing: index + 1, 0 = empty */
	size_t nslots;
	bool oom;
};

static uint64_t name_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void map_free(struct node_map *m)
{
	free(m->v);
	free(m->live);
	free(m->slots);
	memset(m, 0, sizeof *m);
}

static bool map_grow_slots(struct node_map *m)
{
	size_t ns = m->nslots ? m->nslots * 2 : 64;
	uint32_t *s = calloc(ns, sizeof *s);
	if (!s)
		return false;
	for (size_t i = 0; i < m->n; i++) {
		size_t j = (size_t)name_hash(m->v[i].name, strlen(m->v[i].name)) & (ns - 1);
		while (s[j])
			j = (j + 1) & (ns - 1);
		s[j] = (uint32_t)(i + 1);
	}
	free(m->slots);
	m->slots = s;
	m->nslots = ns;
	return true;
}

/* Index of name or -1. */
static long map_find(const struct node_map *m, const char *p, size_t n)
{
	if (!m->nslots)
		return -1;
	size_t j = (size_t)name_hash(p, n) & (m->nslots - 1);
	while (m->slots[j]) {
		size_t i = m->slots[j] - 1;
		if (strlen(m->v[i].name) == n && memcmp(m->v[i].name, p, n) == 0)
			return (long)i;
		j = (j + 1) & (m->nslots - 1);
	}
	return -1;
}

static void map_set(struct node_map *m, const char *name, size_t nl, const char *addr,
		    size_t al)
{
	long i = map_find(m, name, nl);
	if (i < 0) {
		if ((m->n + 1) * 2 > m->nslots && !map_grow_slots(m)) {
			m->oom = true;
			return;
		}
		if (m->n == m->cap) {
			size_t nc = m->cap ? m->cap * 2 : 16;
			struct snap_node *nv = realloc(m->v, nc * sizeof *nv);
			if (!nv) {
				m->oom = true;
				return;
			}
			m->v = nv;
			bool *nlive = realloc(m->live, nc * sizeof *nlive);
			if (!nlive) {
				m->oom = true;
				return;
			}
			m->live = nlive;
			m->cap = nc;
		}
		i = (long)m->n++;
		memcpy(m->v[i].name, name, nl);
		m->v[i].name[nl] = '\0';
		size_t j = (size_t)name_hash(name, nl) & (m->nslots - 1);
		while (m->slots[j])
			j = (j + 1) & (m->nslots - 1);
		m->slots[j] = (uint32_t)(i + 1);
	}
	memcpy(m->v[i].addr, addr, al);
	m->v[i].addr[al] = '\0';
	m->live[i] = true;
}

static void map_unset(struct node_map *m, const char *name, size_t nl)
{
	long i = map_find(m, name, nl);
	if (i >= 0)
		m->live[i] = false;
}

/* ---------------------------------------------------------------- parse */

void snap_state_free(struct snap_state *s)
{
	if (!s)
		return;
	free(s->alive);
	free(s->pre_leave);
	memset(s, 0, sizeof *s);
}

struct parser {
	struct node_map map;
	struct snap_state *st;
	bool rejoin_after_leave;
};

/* One complete line (without its newline).  false = does not parse. */
static bool parse_line(struct parser *ps, const char *p, size_t n, const char **why)
{
	struct snap_state *st = ps->st;
	uint64_t t;
	if (!is_text(p, n, false)) {
		*why = "control character or binary data";
		return false;
	}
	if (n > 0 && p[0] == '#') {
		/* vigil's own comment lines in a file without (the exact) vigil
		 * header: a vigil file whose first line got damaged */
		if (!st->vigil_format &&
		    (starts_with(p, n, "# vigil-snapshot") || starts_with(p, n, "# end "))) {
			*why = "damaged vigil snapshot header";
			return false;
		}
		return true;
	}
	if (starts_with(p, n, "alive: ")) {
		const char *info = p + 7;
		size_t il = n - 7;
		const char *sp = NULL;
		for (size_t i = il; i-- > 0;) {
			if (info[i] == ' ') {
				sp = info + i;
				break;
			}
		}
		if (!sp) {
			*why = "alive record without an address";
			return false;
		}
		size_t nl = (size_t)(sp - info), al = il - nl - 1;
		if (!valid_name(info, nl)) {
			*why = "bad node name";
			return false;
		}
		if (!valid_addr(sp + 1, al)) {
			*why = "bad address (want IP:PORT)";
			return false;
		}
		map_set(&ps->map, info, nl, sp + 1, al);
		return true;
	}
	if (starts_with(p, n, "not-alive: ")) {
		if (!valid_name(p + 11, n - 11)) {
			*why = "bad node name";
			return false;
		}
		map_unset(&ps->map, p + 11, n - 11);
		return true;
	}
	if (starts_with(p, n, "clock: ")) {
		if (!parse_u64(p + 7, n - 7, &t)) {
			*why = "bad clock value";
			return false;
		}
		st->clock = t;
		return true;
	}
	if (starts_with(p, n, "event-clock: ")) {
		if (!parse_u64(p + 13, n - 13, &t)) {
			*why = "bad event clock value";
			return false;
		}
		st->event_clock = t;
		return true;
	}
	if (starts_with(p, n, "query-clock: ")) {
		if (!parse_u64(p + 13, n - 13, &t)) {
			*why = "bad query clock value";
			return false;
		}
		st->query_clock = t;
		return true;
	}
	if (starts_with(p, n, "coordinate: "))
		return true; /* old serf; serf ignores them too */
	if (n == 5 && memcmp(p, "leave", 5) == 0) {
		st->leave = true;
		if (ps->rejoin_after_leave) {
			st->leave_ignored = true;
			return true;
		}
		/* serf: a leave forgets the nodes and the clocks read so far;
		 * remember them for the next file (see snap_state.pre_leave) */
		size_t live = 0;
		for (size_t i = 0; i < ps->map.n; i++)
			live += ps->map.live[i];
		free(st->pre_leave);
		st->pre_leave = NULL;
		st->n_pre_leave = 0;
		if (live && !(st->pre_leave = malloc(live * sizeof *st->pre_leave))) {
			ps->map.oom = true;
			return true;
		}
		for (size_t i = 0; i < ps->map.n; i++) {
			if (ps->map.live[i])
				st->pre_leave[st->n_pre_leave++] = ps->map.v[i];
			ps->map.live[i] = false;
		}
		st->pre_clock = st->clock;
		st->pre_event_clock = st->event_clock;
		st->pre_query_clock = st->query_clock;
		st->clock = st->event_clock = st->query_clock = 0;
		return true;
	}
	*why = n == 0 ? "empty line" : "unrecognized record";
	return false;
}

/*
 * A serf log cut mid-line by a crash: the fragment must still look like the
 * start of a record (printable, a prefix of a keyword or a keyword followed
 * by plausible text), otherwise it is garbage.
 */
static bool plausible_fragment(const char *p, size_t n)
{
	static const char *const kw[] = {
		"alive: ", "not-alive: ", "clock: ", "event-clock: ", "query-clock: ",
		"coordinate: ", "leave", "#",
	};
	if (!is_text(p, n, true))
		return false;
	for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++) {
		size_t kl = strlen(kw[i]);
		if (n <= kl) {
			if (memcmp(p, kw[i], n) == 0)
				return true;
			continue;
		}
		if (memcmp(p, kw[i], kl) != 0)
			continue;
		if (strcmp(kw[i], "leave") == 0)
			return false;
		if (strstr(kw[i], "clock")) {
			for (size_t j = kl; j < n; j++)
				if (p[j] < '0' || p[j] > '9')
					return false;
		}
		return true;
	}
	return false;
}

static int finish_parse(struct parser *ps)
{
	struct snap_state *st = ps->st;
	size_t live = 0;
	if (ps->map.oom)
		return SNAP_ENOMEM;
	for (size_t i = 0; i < ps->map.n; i++)
		live += ps->map.live[i];
	if (live) {
		st->alive = malloc(live * sizeof *st->alive);
		if (!st->alive)
			return SNAP_ENOMEM;
		for (size_t i = 0; i < ps->map.n; i++)
			if (ps->map.live[i])
				st->alive[st->n_alive++] = ps->map.v[i];
	}
	return SNAP_OK;
}

int snap_parse(const char *buf, size_t len, bool rejoin_after_leave,
	       struct snap_state *out, char *err, size_t errlen)
{
	if (!out || (!buf && len)) {
		errtext_set(err, errlen, "bad arguments");
		return SNAP_EINVAL;
	}
	memset(out, 0, sizeof *out);
	errtext_set(err, errlen, "ok");
	if (len == 0)
		return SNAP_OK;
	if (len > SNAP_MAX_BYTES) {
		errtext_set(err, errlen, "%zu bytes is larger than the %u byte limit", len,
			SNAP_MAX_BYTES);
		return SNAP_ECORRUPT;
	}

	const size_t hl = strlen(SNAP_HEADER);
	size_t start = 0, end = len; /* the records to parse: [start, end) */
	size_t frag = 0;             /* serf format: bytes of a partial last line */
	if (len >= hl && memcmp(buf, SNAP_HEADER, hl) == 0) {
		/* vigil format: the last line must be "# end <bytes> <crc32>" */
		out->vigil_format = true;
		if (buf[len - 1] != '\n') {
			errtext_set(err, errlen, "truncated: the last line is incomplete");
			return SNAP_ECORRUPT;
		}
		size_t ls = len - 1;
		while (ls > 0 && buf[ls - 1] != '\n')
			ls--;
		const char *tl = buf + ls;
		size_t tn = len - 1 - ls;
		char want[64];
		uint32_t crc = libdeflate_crc32(0, buf, ls);
		int wl = snprintf(want, sizeof want, "# end %zu %08x", ls, (unsigned)crc);
		if (ls < hl || !starts_with(tl, tn, "# end ")) {
			errtext_set(err, errlen, "truncated: no end marker");
			return SNAP_ECORRUPT;
		}
		if ((size_t)wl != tn || memcmp(tl, want, tn) != 0) {
			errtext_set(err, errlen, "end marker does not match the contents "
				"(truncated or modified)");
			return SNAP_ECORRUPT;
		}
		start = hl;
		end = ls;
	} else if (len < hl && memcmp(buf, SNAP_HEADER, len) == 0) {
		errtext_set(err, errlen, "truncated inside the header");
		return SNAP_ECORRUPT;
	} else if (buf[len - 1] != '\n') {
		size_t ls = len;
		while (ls > 0 && buf[ls - 1] != '\n')
			ls--;
		frag = len - ls;
		end = ls;
	}

	struct parser ps;
	memset(&ps, 0, sizeof ps);
	ps.st = out;
	ps.rejoin_after_leave = rejoin_after_leave;
	size_t line = out->vigil_format ? 1 : 0;
	int rc = SNAP_OK;
	for (size_t off = start; off < end;) {
		const char *nl = memchr(buf + off, '\n', end - off);
		size_t n = (size_t)(nl - (buf + off)); /* nl exists: end is after a '\n' */
		const char *why = "";
		line++;
		if (!parse_line(&ps, buf + off, n, &why)) {
			errtext_set(err, errlen, "line %zu: %s", line, why);
			rc = SNAP_ECORRUPT;
			break;
		}
		out->lines++;
		off += n + 1;
	}
	if (rc == SNAP_OK && frag) {
		if (!plausible_fragment(buf + end, frag)) {
			errtext_set(err, errlen, "line %zu: garbage at the end of the file", line + 1);
			rc = SNAP_ECORRUPT;
		} else {
			out->dropped_partial = true;
		}
	}
	if (rc == SNAP_OK)
		rc = finish_parse(&ps);
	map_free(&ps.map);
	if (rc != SNAP_OK) {
		if (rc == SNAP_ENOMEM)
			errtext_set(err, errlen, "out of memory");
		snap_state_free(out);
	}
	return rc;
}

int snap_load(const char *path, bool rejoin_after_leave, struct snap_state *out,
	      char *err, size_t errlen)
{
	if (out)
		memset(out, 0, sizeof *out);
	if (!path || !out) {
		errtext_set(err, errlen, "bad arguments");
		return SNAP_EINVAL;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errtext_set(err, errlen, "%s", strerror(errno));
		return errno == ENOENT ? SNAP_ENOENT : SNAP_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		errtext_set(err, errlen, "%s", strerror(errno));
		close(fd);
		return SNAP_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		errtext_set(err, errlen, "not a regular file");
		close(fd);
		return SNAP_EIO;
	}
	if ((uint64_t)st.st_size > SNAP_MAX_BYTES) {
		errtext_set(err, errlen, "%lld bytes is larger than the %u byte limit",
			(long long)st.st_size, SNAP_MAX_BYTES);
		close(fd);
		return SNAP_ECORRUPT;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		errtext_set(err, errlen, "out of memory");
		return SNAP_ENOMEM;
	}
	/* read to EOF (the size is only a hint), but never past the limit */
	for (;;) {
		if (len == cap) {
			if (cap > SNAP_MAX_BYTES) {
				free(buf);
				close(fd);
				errtext_set(err, errlen, "larger than the %u byte limit",
					SNAP_MAX_BYTES);
				return SNAP_ECORRUPT;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				errtext_set(err, errlen, "out of memory");
				return SNAP_ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			errtext_set(err, errlen, "%s", strerror(errno));
			free(buf);
			close(fd);
			return SNAP_EIO;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	close(fd);
	int rc = snap_parse(buf, len, rejoin_after_leave, out, err, errlen);
	free(buf);
	return rc;
}

/* --------------------------------------------------------------- render */

static void render_alive(struct strbuf *b, const struct snap_node *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct snap_node *nd = &v[i];
		size_t nl = strnlen(nd->name, sizeof nd->name);
		size_t al = strnlen(nd->addr, sizeof nd->addr);
		if (nl == sizeof nd->name || al == sizeof nd->addr ||
		    !valid_name(nd->name, nl) || !valid_addr(nd->addr, al))
			continue;
		strbuf_printf(b, "alive: %s %s\n", nd->name, nd->addr);
	}
}

int snap_render(const struct snap_image *img, char **out, size_t *len)
{
	if (!img || !out || !len || (img->n_alive && !img->alive) ||
	    (img->n_not_alive && !img->not_alive) ||
	    (img->has_prefix && img->n_pre_alive && !img->pre_alive))
		return SNAP_EINVAL;
	*out = NULL;
	*len = 0;
	struct strbuf b = {0};
	strbuf_printf(&b, "%s", SNAP_HEADER);
	if (img->has_prefix) {
		render_alive(&b, img->pre_alive, img->n_pre_alive);
		strbuf_printf(&b, "clock: %llu\n", (unsigned long long)img->pre_clock);
		strbuf_printf(&b, "event-clock: %llu\n", (unsigned long long)img->pre_event_clock);
		strbuf_printf(&b, "query-clock: %llu\n", (unsigned long long)img->pre_query_clock);
		strbuf_printf(&b, "leave\n");
	}
	render_alive(&b, img->alive, img->n_alive);
	for (size_t i = 0; i < img->n_not_alive; i++) {
		const char *nm = img->not_alive[i];
		if (!nm || !valid_name(nm, strnlen(nm, VIGIL_NAME_MAX + 1)))
			continue;
		strbuf_printf(&b, "not-alive: %s\n", nm);
	}
	strbuf_printf(&b, "clock: %llu\n", (unsigned long long)img->clock);
	strbuf_printf(&b, "event-clock: %llu\n", (unsigned long long)img->event_clock);
	strbuf_printf(&b, "query-clock: %llu\n", (unsigned long long)img->query_clock);
	if (img->leave) {
		strbuf_printf(&b, "leave\n");
		strbuf_printf(&b, "clock: %llu\n", (unsigned long long)img->clock_after_leave);
	}
	if (!b.oom) {
		size_t body = b.len;
		uint32_t crc = libdeflate_crc32(0, b.p, body);
		strbuf_printf(&b, "# end %zu %08x\n", body, (unsigned)crc);
	}
	if (b.oom) {
		strbuf_free(&b);
		return SNAP_ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return SNAP_OK;
}

/* ---------------------------------------------------------------- write */

int snap_write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
	if (!path || !*path || (!data && len)) {
		errtext_set(err, errlen, "bad arguments");
		return SNAP_EINVAL;
	}
	struct safefile_part part = {data, len};
	if (safefile_write(path, &part, 1, snap_before_rename_hook, err, errlen) != 0)
		return errno == ENOMEM ? SNAP_ENOMEM : SNAP_EIO;
	return SNAP_OK;
}

/* ----------------------------------------------------------- snapshotter */

#define SNAP_ERR_LOG_INTERVAL_MS 30000 /* serf's snapshotErrorRecoveryInterval */

struct snapshotter {
	char *path;
	char self[VIGIL_NAME_MAX + 1];
	bool rejoin_after_leave;
	void (*log)(void *ctx, int level, const char *msg);
	void *log_ctx;

	struct snap_node *carry;     /* restored nodes the member table does not know */
	size_t n_carry;
	bool has_prefix;             /* what the restored leave forgot */
	struct snap_node *pre;
	size_t n_pre;
	uint64_t pre_clock, pre_event_clock, pre_query_clock;

	uint64_t clock, event_clock, query_clock; /* as written: Lamport time - 1 */

	bool dirty;
	bool have_attempt;
	int64_t last_attempt;
	bool last_failed;
	bool have_err_log;
	int64_t last_err_log;
	char last_err[512];
	char *last_image;            /* what the file holds (last good write) */
	size_t last_len;

	bool leaving;
	struct snap_node *f_alive;   /* member part frozen at the leave */
	size_t f_n_alive;
	char **f_not_alive;
	size_t f_n_not_alive;
	uint64_t f_clock, f_event_clock, f_query_clock;
};

__attribute__((format(printf, 3, 4)))
static void slog(struct snapshotter *s, int level, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	s->log(s->log_ctx, level, msg);
}

struct snapshotter *snapshotter_open(const struct snapshotter_config *cfg,
				     struct snap_state *restored)
{
	if (!cfg || !cfg->path || !cfg->path[0] || !restored)
		return NULL;
	memset(restored, 0, sizeof *restored);
	struct snapshotter *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(cfg->path))) {
		free(s);
		return NULL;
	}
	snprintf(s->self, sizeof s->self, "%s", cfg->self ? cfg->self : "");
	s->rejoin_after_leave = cfg->rejoin_after_leave;
	s->log = cfg->log;
	s->log_ctx = cfg->log_ctx;
	s->dirty = true;

	char err[256];
	int rc = snap_load(s->path, s->rejoin_after_leave, restored, err, sizeof err);
	if (rc == SNAP_ENOENT) {
		slog(s, 0, "vigil: no snapshot at %s yet, starting fresh", s->path);
	} else if (rc == SNAP_ECORRUPT) {
		/* keep the evidence, out of the way of the next write */
		char *aside = safefile_move_aside(s->path, ".corrupt");
		if (aside)
			slog(s, 3, "vigil: snapshot %s is corrupt (%s); moved it to %s and "
			     "starting fresh", s->path, err, aside);
		else
			slog(s, 3, "vigil: snapshot %s is corrupt (%s); starting fresh",
			     s->path, err);
		free(aside);
	} else if (rc != SNAP_OK) {
		slog(s, 3, "vigil: cannot read snapshot %s (%s); starting fresh", s->path, err);
	} else {
		slog(s, 1, "vigil: snapshot %s: %zu previously alive node(s), clock %llu, "
		     "event clock %llu, query clock %llu%s%s%s", s->path, restored->n_alive,
		     (unsigned long long)restored->clock,
		     (unsigned long long)restored->event_clock,
		     (unsigned long long)restored->query_clock,
		     restored->leave && !restored->leave_ignored && !restored->n_alive
			     ? "; it records a graceful leave: not rejoining" : "",
		     restored->leave_ignored ? "; ignoring the previous leave (-rejoin)" : "",
		     restored->dropped_partial ? "; dropped an incomplete last line" : "");
		s->clock = restored->clock;
		s->event_clock = restored->event_clock;
		s->query_clock = restored->query_clock;
		if (restored->leave && !restored->leave_ignored) {
			s->has_prefix = true;
			s->pre = restored->pre_leave;
			s->n_pre = restored->n_pre_leave;
			s->pre_clock = restored->pre_clock;
			s->pre_event_clock = restored->pre_event_clock;
			s->pre_query_clock = restored->pre_query_clock;
			restored->pre_leave = NULL;
			restored->n_pre_leave = 0;
		}
		if (restored->n_alive) {
			s->carry = malloc(restored->n_alive * sizeof *s->carry);
			if (!s->carry) {
				snap_state_free(restored);
				snapshotter_free(s);
				return NULL;
			}
			for (size_t i = 0; i < restored->n_alive; i++)
				if (strcmp(restored->alive[i].name, s->self) != 0)
					s->carry[s->n_carry++] = restored->alive[i];
		}
	}
	return s;
}

static void free_frozen(struct snapshotter *s)
{
	for (size_t i = 0; i < s->f_n_not_alive; i++)
		free(s->f_not_alive[i]);
	free(s->f_not_alive);
	free(s->f_alive);
	s->f_not_alive = NULL;
	s->f_alive = NULL;
	s->f_n_alive = s->f_n_not_alive = 0;
}

void snapshotter_free(struct snapshotter *s)
{
	if (!s)
		return;
	free_frozen(s);
	free(s->carry);
	free(s->pre);
	free(s->last_image);
	free(s->path);
	free(s);
}

void snapshotter_mark_dirty(struct snapshotter *s)
{
	if (s)
		s->dirty = true;
}

void snapshotter_note_clocks(struct snapshotter *s, uint64_t clock, uint64_t event,
			     uint64_t query)
{
	if (!s)
		return;
	/* serf records lastSeen = Time() - 1 and restores with Witness() */
	uint64_t c = clock ? clock - 1 : 0, e = event ? event - 1 : 0, q = query ? query - 1 : 0;
	if (c > s->clock || e > s->event_clock || q > s->query_clock) {
		if (c > s->clock)
			s->clock = c;
		if (e > s->event_clock)
			s->event_clock = e;
		if (q > s->query_clock)
			s->query_clock = q;
		s->dirty = true;
	}
}

int64_t snapshotter_next_deadline(const struct snapshotter *s)
{
	if (!s || !s->dirty)
		return INT64_MAX;
	if (!s->have_attempt)
		return INT64_MIN;
	return s->last_attempt + (s->last_failed ? SNAP_RETRY_INTERVAL_MS : SNAP_FLUSH_INTERVAL_MS);
}

bool snapshotter_left(const struct snapshotter *s)
{
	return s && s->leaving;
}

const char *snapshotter_last_error(const struct snapshotter *s)
{
	return s ? s->last_err : "";
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp(((const struct snap_node *)a)->name, ((const struct snap_node *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool member_alive(const struct vigil_member *m)
{
	return m->status == VIGIL_STATUS_ALIVE || m->status == VIGIL_STATUS_LEAVING;
}

static void format_addr(const struct vigil_member *m, char *out, size_t cap)
{
	if (strchr(m->addr, ':'))
		snprintf(out, cap, "[%s]:%u", m->addr, (unsigned)m->port);
	else
		snprintf(out, cap, "%s:%u", m->addr, (unsigned)m->port);
}

/*
 * The member part of the state: alive = the table's alive/leaving members
 * plus carried-over nodes the table does not know; not-alive = the table's
 * left/failed members.  Carried-over nodes the table knows are dropped for
 * good: from now on the table speaks for them.  Arrays sorted by name.
 */
static int collect(struct snapshotter *s, const struct vigil_member *m, size_t n,
		   struct snap_node **alive, size_t *n_alive, char ***not_alive,
		   size_t *n_not_alive)
{
	*alive = NULL;
	*not_alive = NULL;
	*n_alive = *n_not_alive = 0;
	if (s->n_carry && n) {
		struct node_map known;
		memset(&known, 0, sizeof known);
		for (size_t i = 0; i < n; i++)
			map_set(&known, m[i].name, strnlen(m[i].name, VIGIL_NAME_MAX), "", 0);
		if (known.oom) {
			map_free(&known);
			return SNAP_ENOMEM;
		}
		size_t k = 0;
		for (size_t i = 0; i < s->n_carry; i++)
			if (map_find(&known, s->carry[i].name, strlen(s->carry[i].name)) < 0)
				s->carry[k++] = s->carry[i];
		s->n_carry = k;
		map_free(&known);
	}
	struct snap_node *a = malloc((n + s->n_carry + 1) * sizeof *a);
	char **na = malloc((n + 1) * sizeof *na);
	if (!a || !na) {
		free(a);
		free(na);
		return SNAP_ENOMEM;
	}
	size_t ka = 0, kn = 0;
	for (size_t i = 0; i < n; i++) {
		if (member_alive(&m[i])) {
			snprintf(a[ka].name, sizeof a[ka].name, "%s", m[i].name);
			format_addr(&m[i], a[ka].addr, sizeof a[ka].addr);
			ka++;
		} else if (m[i].status == VIGIL_STATUS_LEFT || m[i].status == VIGIL_STATUS_FAILED) {
			na[kn] = strdup(m[i].name);
			if (!na[kn]) {
				for (size_t j = 0; j < kn; j++)
					free(na[j]);
				free(na);
				free(a);
				return SNAP_ENOMEM;
			}
			kn++;
		}
	}
	for (size_t i = 0; i < s->n_carry; i++)
		a[ka++] = s->carry[i];
	qsort(a, ka, sizeof *a, cmp_node);
	qsort(na, kn, sizeof *na, cmp_str);
	*alive = a;
	*n_alive = ka;
	*not_alive = na;
	*n_not_alive = kn;
	return SNAP_OK;
}

static void free_collected(struct snap_node *a, char **na, size_t kn)
{
	for (size_t i = 0; i < kn; i++)
		free(na[i]);
	free(na);
	free(a);
}

static int write_image(struct snapshotter *s, const struct snap_image *img, int64_t now)
{
	char *data = NULL;
	size_t len = 0;
	int rc = snap_render(img, &data, &len);
	if (rc != SNAP_OK) {
		slog(s, 3, "vigil: cannot render snapshot %s: out of memory", s->path);
		snprintf(s->last_err, sizeof s->last_err, "out of memory");
		s->have_attempt = true;
		s->last_attempt = now;
		s->last_failed = true;
		return rc;
	}
	/* a failed write left the file as last_image was: compare with that */
	if (s->last_image && s->last_len == len &&
	    memcmp(s->last_image, data, len) == 0) {
		free(data);
		s->dirty = false;
		return SNAP_OK;
	}
	char *err = s->last_err;
	s->have_attempt = true;
	s->last_attempt = now;
	rc = snap_write_file(s->path, data, len, err, sizeof s->last_err);
	if (rc != SNAP_OK) {
		if (!s->have_err_log || now - s->last_err_log >= SNAP_ERR_LOG_INTERVAL_MS) {
			slog(s, 3, "vigil: failed to update snapshot %s: %s", s->path, err);
			s->have_err_log = true;
			s->last_err_log = now;
		}
		s->last_failed = true;
		free(data);
		return rc;
	}
	if (s->last_failed && s->have_err_log)
		slog(s, 1, "vigil: snapshot %s written again", s->path);
	s->last_failed = false;
	s->last_err[0] = '\0';
	s->dirty = false;
	free(s->last_image);
	s->last_image = data;
	s->last_len = len;
	return SNAP_OK;
}

int snapshotter_write(struct snapshotter *s, const struct vigil_member *m, size_t n,
		      int64_t now)
{
	if (!s || (n && !m))
		return SNAP_EINVAL;
	struct snap_image img;
	memset(&img, 0, sizeof img);
	img.has_prefix = s->has_prefix;
	img.pre_alive = s->pre;
	img.n_pre_alive = s->n_pre;
	img.pre_clock = s->pre_clock;
	img.pre_event_clock = s->pre_event_clock;
	img.pre_query_clock = s->pre_query_clock;
	if (s->leaving) {
		img.alive = s->f_alive;
		img.n_alive = s->f_n_alive;
		img.not_alive = (const char *const *)s->f_not_alive;
		img.n_not_alive = s->f_n_not_alive;
		img.clock = s->f_clock;
		img.event_clock = s->f_event_clock;
		img.query_clock = s->f_query_clock;
		img.leave = true;
		img.clock_after_leave = s->clock;
		return write_image(s, &img, now);
	}
	struct snap_node *a;
	char **na;
	size_t ka, kn;
	int rc = collect(s, m, n, &a, &ka, &na, &kn);
	if (rc != SNAP_OK) {
		slog(s, 3, "vigil: cannot update snapshot %s: out of memory", s->path);
		return rc;
	}
	img.alive = a;
	img.n_alive = ka;
	img.not_alive = (const char *const *)na;
	img.n_not_alive = kn;
	img.clock = s->clock;
	img.event_clock = s->event_clock;
	img.query_clock = s->query_clock;
	rc = write_image(s, &img, now);
	free_collected(a, na, kn);
	return rc;
}

int snapshotter_leave(struct snapshotter *s, const struct vigil_member *m, size_t n,
		      int64_t now)
{
	if (!s || (n && !m))
		return SNAP_EINVAL;
	if (!s->leaving) {
		int rc = collect(s, m, n, &s->f_alive, &s->f_n_alive, &s->f_not_alive,
				 &s->f_n_not_alive);
		if (rc != SNAP_OK) {
			slog(s, 3, "vigil: cannot record the leave in snapshot %s: out of memory",
			     s->path);
			return rc;
		}
		s->f_clock = s->clock;
		s->f_event_clock = s->event_clock;
		s->f_query_clock = s->query_clock;
		s->leaving = true;
	}
	s->dirty = true;
	return snapshotter_write(s, m, n, now);
}
