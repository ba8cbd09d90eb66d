/*
 * handlers.c — event handler scripts, run like serf runs them
 * (cmd/serf/command/agent/invoke.go): `/bin/sh -c SCRIPT`, event data on
 * stdin, SERF_* (and VIGIL_*) environment, combined stdout/stderr captured
 * (last 8 KiB) and logged, and for queries the output is the response.
 *
 * serf runs handlers one after the other from its single event loop, so
 * scripts observe events in order and never overlap.  We keep that
 * guarantee — a FIFO of jobs, one child at a time — but without blocking:
 * the child's pipes are polled by the agent loop and the child is reaped
 * with waitpid(WNOHANG) after SIGCHLD.  Unlike serf, a script that runs
 * longer than the handler timeout is killed (with its process group) so
 * one stuck script cannot stall every later event forever.
 */
#include "handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "mp.h"

extern char **environ;

#define OUT_MAX (8 * 1024)      /* serf's maxBufSize: keep the last 8 KiB */
#define WARN_SLOW_MS 1000       /* serf's warnSlow */
#define QUEUE_MAX 4096
#define DRAIN_AFTER_EXIT_MS 1000 /* a background grandchild may hold stdout */

struct script {
	struct handler_filter f;
	char *script;
};

struct job {
	char *script;
	char evname[32];
	char **env;
	uint8_t *in;
	size_t in_len;
	bool is_query;
	uint32_t query_id;
	struct job *next;
};

struct running {
	struct job *job;
	pid_t pid;
	int in_fd, out_fd;
	size_t in_off;
	char out[OUT_MAX];
	size_t out_len;   /* bytes held in out (≤ OUT_MAX) */
	size_t out_total; /* bytes the script wrote */
	int64_t start_ms, exited_ms;
	bool warned_slow, killed, exited;
	int status;
};

struct handlers {
	struct agent *a;
	struct script *s;
	size_t n;
	struct job *head, *tail;
	size_t qlen;
	struct running *run;
};

/* ------------------------------------------------------------- filters */

static const char *const serf_events[] = {"member-join", "member-leave", "member-failed",
					  "member-update", "member-reap", "user", "query"};
static const char *const vigil_events[] = {"member-will", "will-revoked", "member-returned",
					   "will-undeliverable", "local-stall"};

static bool valid_event(const char *e)
{
	if (strcmp(e, "*") == 0)
		return true;
	for (size_t i = 0; i < sizeof serf_events / sizeof serf_events[0]; i++)
		if (strcmp(e, serf_events[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof vigil_events / sizeof vigil_events[0]; i++)
		if (strcmp(e, vigil_events[i]) == 0)
			return true;
	return false;
}

static bool is_vigil_event(const char *e)
{
	for (size_t i = 0; i < sizeof vigil_events / sizeof vigil_events[0]; i++)
		if (strcmp(e, vigil_events[i]) == 0)
			return true;
	return false;
}

void handler_free_filter(struct handler_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].name);
	free(f);
}

int handler_parse_filter(const char *v, struct handler_filter **out, size_t *n)
{
	/* serf's ParseEventFilter: "" means "*", comma separated, user:/query:
	 * prefixes carry a name */
	if (!v || !*v)
		v = "*";
	size_t cap = 1;
	for (const char *p = v; *p; p++)
		cap += *p == ',';
	struct handler_filter *f = calloc(cap, sizeof *f);
	if (!f)
		return -1;
	size_t k = 0;
	const char *p = v;
	int bad = 0;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		const char *name = NULL;
		size_t nl = 0;
		if (l >= 5 && strncmp(p, "user:", 5) == 0) {
			name = p + 5;
			nl = l - 5;
			l = 4;
		} else if (l >= 6 && strncmp(p, "query:", 6) == 0) {
			name = p + 6;
			nl = l - 6;
			l = 5;
		}
		if (l >= sizeof f[k].event) {
			bad = 1;
			l = sizeof f[k].event - 1;
		}
		memcpy(f[k].event, p, l);
		f[k].event[l] = '\0';
		if (name && nl) {
			f[k].name = strndup(name, nl);
			if (!f[k].name)
				bad = 1;
		}
		if (!valid_event(f[k].event))
			bad = 1;
		k++;
		if (!e)
			break;
		p = e + 1;
	}
	if (bad) {
		handler_free_filter(f, k);
		return -1;
	}
	*out = f;
	*n = k;
	return 0;
}

bool handler_filter_match(const struct handler_filter *f, size_t n,
			  const struct vigil_event *ev, bool star_includes_vigil)
{
	const char *en = agent_event_name(ev->type);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(f[i].event, "*") == 0) {
			if (star_includes_vigil || !is_vigil_event(en))
				return true;
			continue;
		}
		if (strcmp(f[i].event, en) != 0)
			continue;
		if (f[i].name && (ev->type == VIGIL_EV_USER || ev->type == VIGIL_EV_QUERY) &&
		    strcmp(f[i].name, ev->name ? ev->name : "") != 0)
			continue;
		return true;
	}
	return false;
}

/* ------------------------------------------------------------ creation */

static void free_scripts(struct script *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].f.name);
		free(s[i].script);
	}
	free(s);
}

static int parse_specs(const struct strlist *specs, struct script **out, size_t *nout,
		       char *err, size_t errlen)
{
	struct script *s = NULL;
	size_t n = 0;
	for (size_t i = 0; specs && i < specs->n; i++) {
		/* serf's ParseEventScript: split at the first '=' */
		const char *v = specs->v[i];
		const char *eq = strchr(v, '=');
		char *filter = eq ? strndup(v, (size_t)(eq - v)) : strdup("");
		const char *script = eq ? eq + 1 : v;
		struct handler_filter *f = NULL;
		size_t nf = 0;
		if (!filter) {
			free_scripts(s, n);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (handler_parse_filter(filter, &f, &nf) != 0) {
			snprintf(err, errlen, "Invalid event script: Event '%s' invoking '%s'",
				 filter, script);
			free(filter);
			free_scripts(s, n);
			return -1;
		}
		free(filter);
		struct script *ns = realloc(s, (n + nf) * sizeof *ns);
		if (!ns) {
			handler_free_filter(f, nf);
			free_scripts(s, n);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		s = ns;
		for (size_t k = 0; k < nf; k++) {
			s[n].f = f[k]; /* takes the name */
			s[n].script = strdup(script);
			n++;
		}
		free(f); /* names moved into s */
	}
	*out = s;
	*nout = n;
	return 0;
}

struct handlers *handlers_create(struct agent *a, const struct strlist *specs,
				 char *err, size_t errlen)
{
	struct handlers *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->a = a;
	if (parse_specs(specs, &h->s, &h->n, err, errlen) != 0) {
		free(h);
		return NULL;
	}
	return h;
}

int handlers_update(struct handlers *h, const struct strlist *specs, char *err, size_t errlen)
{
	struct script *s;
	size_t n;
	if (parse_specs(specs, &s, &n, err, errlen) != 0)
		return -1;
	free_scripts(h->s, h->n);
	h->s = s;
	h->n = n;
	return 0;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->script);
	for (char **e = j->env; e && *e; e++)
		free(*e);
	free(j->env);
	free(j->in);
	free(j);
}

static void run_free(struct running *r)
{
	if (r->in_fd >= 0)
		close(r->in_fd);
	if (r->out_fd >= 0)
		close(r->out_fd);
	job_free(r->job);
	free(r);
}

void handlers_kill_all(struct handlers *h)
{
	if (h && h->run && !h->run->exited) {
		kill(-h->run->pid, SIGKILL);
		kill(h->run->pid, SIGKILL);
		waitpid(h->run->pid, NULL, 0);
		h->run->exited = true;
	}
}

void handlers_destroy(struct handlers *h)
{
	if (!h)
		return;
	handlers_kill_all(h);
	if (h->run)
		run_free(h->run);
	while (h->head) {
		struct job *j = h->head;
		h->head = j->next;
		job_free(j);
	}
	free_scripts(h->s, h->n);
	free(h);
}

bool handlers_busy(struct handlers *h)
{
	return h && (h->run || h->head);
}

/* ---------------------------------------------------------------- jobs */

struct envb {
	char **v;
	size_t n, cap;
	bool oom;
};

/* Append s (malloc'd, ours now; NULL = out of memory) to the environment. */
static void env_push(struct envb *e, char *s)
{
	if (e->oom || !s) {
		free(s);
		e->oom = true;
		return;
	}
	if (e->n + 2 > e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 64;
		char **nv = realloc(e->v, nc * sizeof *nv);
		if (!nv) {
			free(s);
			e->oom = true;
			return;
		}
		e->v = nv;
		e->cap = nc;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

static void env_add(struct envb *e, const char *k, const char *val)
{
	if (e->oom)
		return;
	size_t kl = strlen(k), vl = strlen(val);
	char *s = malloc(kl + vl + 2);
	if (s) {
		memcpy(s, k, kl);
		s[kl] = '=';
		memcpy(s + kl + 1, val, vl + 1);
	}
	env_push(e, s);
}

/* Both SERF_x and VIGIL_x, so serf scripts and vigil-aware ones work. */
static void env_both(struct envb *e, const char *suffix, const char *val)
{
	char k[256];
	snprintf(k, sizeof k, "SERF_%s", suffix);
	env_add(e, k, val);
	snprintf(k, sizeof k, "VIGIL_%s", suffix);
	env_add(e, k, val);
}

static bool env_ours(const char *entry)
{
	return strncmp(entry, "SERF_", 5) == 0 || strncmp(entry, "VIGIL_", 6) == 0;
}

/* serf's eventClean: keep one member per line and tab-separated fields */
static void clean(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (; *in && o + 3 < len; in++) {
		if (*in == '\t' || *in == '\n') {
			out[o++] = '\\';
			out[o++] = *in == '\t' ? 't' : 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static char *member_line(const struct vigil_member *m, size_t *len)
{
	char name[VIGIL_NAME_MAX * 2 + 4], role[1024] = "", tags[4096] = "";
	size_t tl = 0;
	clean(m->name, name, sizeof name);
	for (size_t i = 0; i < m->n_tags; i++) {
		if (strcmp(m->tags[i].key, "role") == 0)
			clean(m->tags[i].value, role, sizeof role);
		char kv[1024];
		snprintf(kv, sizeof kv, "%s%s=%s", i ? "," : "", m->tags[i].key, m->tags[i].value);
		size_t kl = strlen(kv);
		if (tl + kl < sizeof tags) {
			memcpy(tags + tl, kv, kl + 1);
			tl += kl;
		}
	}
	char ctags[sizeof tags * 2];
	clean(tags, ctags, sizeof ctags);
	size_t need = strlen(name) + strlen(m->addr) + strlen(role) + strlen(ctags) + 8;
	char *line = malloc(need);
	if (!line)
		return NULL;
	*len = (size_t)snprintf(line, need, "%s\t%s\t%s\t%s\n", name, m->addr, role, ctags);
	return line;
}

static uint8_t *payload_stdin(const uint8_t *p, size_t n, size_t *len)
{
	/* serf's streamPayload: terminate with a newline if missing */
	uint8_t *b = malloc(n + 1);
	if (!b)
		return NULL;
	if (n)
		memcpy(b, p, n);
	if (n && p[n - 1] != '\n')
		b[n++] = '\n';
	*len = n;
	return b;
}

/* The agent's environment without the variables the script gets from us. */
static void env_inherit(struct envb *e)
{
	for (char **p = environ; p && *p && !e->oom; p++)
		if (!env_ours(*p))
			env_push(e, strdup(*p));
}

/* SELF_NAME, SELF_ROLE and TAG_* (env_both): the local member. */
static void env_self(struct handlers *h, struct envb *e)
{
	/* the local member: name, role and tags.  Events can arrive from
	 * inside vigil_create() (our own member-join), before a->v is set:
	 * then the configuration is the truth. */
	struct vigil_member *ms = NULL;
	size_t n = 0;
	const struct vigil_tag *tags = NULL;
	struct vigil_tag *cfgtags = NULL;
	size_t ntags = 0;
	const char *self = h->a->v ? vigil_name(h->a->v) : h->a->cfg.node_name;
	if (!self)
		self = "";
	if (h->a->v && vigil_members(h->a->v, &ms, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(ms[i].name, self) == 0) {
				tags = ms[i].tags;
				ntags = ms[i].n_tags;
				break;
			}
		}
	} else if (h->a->cfg.n_tags) {
		cfgtags = calloc(h->a->cfg.n_tags, sizeof *cfgtags);
		for (size_t i = 0; cfgtags && i < h->a->cfg.n_tags; i++) {
			cfgtags[i].key = h->a->cfg.tags[i].key;
			cfgtags[i].value = h->a->cfg.tags[i].value;
		}
		tags = cfgtags;
		ntags = cfgtags ? h->a->cfg.n_tags : 0;
	}
	env_both(e, "SELF_NAME", self);
	const char *role = "";
	for (size_t t = 0; t < ntags; t++) {
		char k[256];
		size_t kl = 0;
		for (const char *c = tags[t].key; *c && kl < 200; c++) {
			char u = *c;
			if (u >= 'a' && u <= 'z')
				u = (char)(u - 'a' + 'A');
			if (!((u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_'))
				u = '_';
			k[kl++] = u;
		}
		k[kl] = '\0';
		char full[270];
		snprintf(full, sizeof full, "TAG_%s", k);
		env_both(e, full, tags[t].value);
		if (strcmp(tags[t].key, "role") == 0)
			role = tags[t].value;
	}
	env_both(e, "SELF_ROLE", role);

	vigil_members_free(ms, n);
	free(cfgtags);
}

/* The event's own variables, and what the script reads on stdin. */
static void job_event_input(struct job *j, struct envb *e, const struct vigil_event *ev,
			    const struct vigil_member *members, size_t nmembers)
{
	char num[32];
	switch (ev->type) {
	case VIGIL_EV_USER:
		env_both(e, "USER_EVENT", ev->name ? ev->name : "");
		snprintf(num, sizeof num, "%llu", (unsigned long long)ev->ltime);
		env_both(e, "USER_LTIME", num);
		j->in = payload_stdin(ev->payload, ev->payload_len, &j->in_len);
		break;
	case VIGIL_EV_QUERY:
		env_both(e, "QUERY_NAME", ev->name ? ev->name : "");
		snprintf(num, sizeof num, "%llu", (unsigned long long)ev->ltime);
		env_both(e, "QUERY_LTIME", num);
		j->in = payload_stdin(ev->payload, ev->payload_len, &j->in_len);
		j->is_query = true;
		j->query_id = ev->id;
		break;
	case VIGIL_EV_MEMBER_WILL:
	case VIGIL_EV_WILL_REVOKED:
	case VIGIL_EV_WILL_UNDELIVERABLE:
		env_add(e, "VIGIL_WILL_OWNER", ev->member ? ev->member->name : "");
		snprintf(num, sizeof num, "%u", ev->incarnation);
		env_add(e, "VIGIL_WILL_INCARNATION", num);
		snprintf(num, sizeof num, "%llu", (unsigned long long)ev->will_seq);
		env_add(e, "VIGIL_WILL_SEQ", num);
		if (ev->name)
			env_add(e, "VIGIL_WILL_EVENT", ev->name);
		/* the payload is raw: a will may carry binary data */
		j->in = agent_memdup(ev->payload, ev->payload_len);
		j->in_len = j->in ? ev->payload_len : 0;
		break;
	case VIGIL_EV_LOCAL_STALL:
		snprintf(num, sizeof num, "%lld", (long long)ev->duration_ms);
		env_add(e, "VIGIL_STALL_MS", num);
		break;
	case VIGIL_EV_MEMBER_RETURNED:
		snprintf(num, sizeof num, "%lld", (long long)ev->duration_ms);
		env_add(e, "VIGIL_DEAD_MS", num);
		if (ev->member)
			j->in = (uint8_t *)member_line(ev->member, &j->in_len);
		break;
	default: { /* member events: one line per member of the batch */
		if (!nmembers && ev->member) {
			members = ev->member;
			nmembers = 1;
		}
		char *buf = NULL;
		size_t bl = 0;
		FILE *m = open_memstream(&buf, &bl);
		for (size_t i = 0; m && i < nmembers; i++) {
			size_t ll;
			char *line = member_line(&members[i], &ll);
			if (line)
				fwrite(line, 1, ll, m);
			free(line);
		}
		if (m)
			fclose(m);
		j->in = (uint8_t *)buf;
		j->in_len = buf ? bl : 0;
		break;
	}
	}
}

static struct job *make_job(struct handlers *h, const struct script *sc,
			    const struct vigil_event *ev, const struct vigil_member *members,
			    size_t nmembers)
{
	struct job *j = calloc(1, sizeof *j);
	struct envb e = {0};
	if (!j)
		return NULL;
	j->script = strdup(sc->script);
	snprintf(j->evname, sizeof j->evname, "%s", agent_event_name(ev->type));

	env_inherit(&e);
	env_both(&e, "EVENT", j->evname);

	env_self(h, &e);
	job_event_input(j, &e, ev, members, nmembers);
	j->env = e.v;
	if (e.oom || !j->script || !j->env) {
		if (!j->env) {
			for (size_t i = 0; i < e.n; i++)
				free(e.v[i]);
			free(e.v);
		}
		job_free(j);
		return NULL;
	}
	return j;
}

void handlers_on_event(struct handlers *h, const struct vigil_event *ev,
		       const struct vigil_member *members, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (!handler_filter_match(&h->s[i].f, 1, ev, false))
			continue;
		if (h->qlen >= QUEUE_MAX) {
			alog(LV_WARN, "agent: event handler queue full, dropping %s for '%s'",
			     agent_event_name(ev->type), h->s[i].script);
			continue;
		}
		struct job *j = make_job(h, &h->s[i], ev, members, n);
		if (!j) {
			alog(LV_ERR, "agent: Error invoking script '%s': out of memory",
			     h->s[i].script);
			continue;
		}
		if (h->tail)
			h->tail->next = j;
		else
			h->head = j;
		h->tail = j;
		h->qlen++;
	}
}

/* ------------------------------------------------------------- running */

static void start_next(struct handlers *h)
{
	while (!h->run && h->head) {
		struct job *j = h->head;
		h->head = j->next;
		if (!h->head)
			h->tail = NULL;
		h->qlen--;
		j->next = NULL;

		int in[2], out[2];
		if (pipe2(in, O_CLOEXEC) != 0) {
			alog(LV_ERR, "agent: Error invoking script '%s': %s", j->script, strerror(errno));
			job_free(j);
			continue;
		}
		if (pipe2(out, O_CLOEXEC) != 0) {
			alog(LV_ERR, "agent: Error invoking script '%s': %s", j->script, strerror(errno));
			close(in[0]);
			close(in[1]);
			job_free(j);
			continue;
		}
		pid_t pid = fork();
		if (pid < 0) {
			alog(LV_ERR, "agent: Error invoking script '%s': %s", j->script, strerror(errno));
			close(in[0]);
			close(in[1]);
			close(out[0]);
			close(out[1]);
			job_free(j);
			continue;
		}
		if (pid == 0) {
			/* child: own process group so a timeout kills the
			 * whole script, not just the shell */
			setpgid(0, 0);
			signal(SIGPIPE, SIG_DFL);
			signal(SIGCHLD, SIG_DFL);
			sigset_t none;
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			dup2(in[0], 0);
			dup2(out[1], 1);
			dup2(out[1], 2);
			/* the agent's sockets must not leak into scripts */
			closefrom(3);
			char *argv[] = {"sh", "-c", j->script, NULL};
			execve("/bin/sh", argv, j->env);
			_exit(127);
		}
		setpgid(pid, pid); /* also from the parent: no race with kill */
		close(in[0]);
		close(out[1]);
		fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
		fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
		struct running *r = calloc(1, sizeof *r);
		if (!r) {
			kill(-pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(in[1]);
			close(out[0]);
			job_free(j);
			continue;
		}
		r->job = j;
		r->pid = pid;
		r->in_fd = in[1];
		r->out_fd = out[0];
		r->start_ms = now_ms();
		if (j->in_len == 0) {
			close(r->in_fd);
			r->in_fd = -1;
		}
		h->run = r;
		alog(LV_DEBUG, "agent: Invoking script '%s' for event '%s'", j->script, j->evname);
	}
}

static void read_output(struct running *r)
{
	for (;;) {
		char buf[4096];
		ssize_t n = read(r->out_fd, buf, sizeof buf);
		if (n > 0) {
			r->out_total += (size_t)n;
			/* keep the tail, like serf's circular buffer */
			/* (reads are smaller than OUT_MAX) */
			if (r->out_len + (size_t)n > OUT_MAX) {
				size_t drop = r->out_len + (size_t)n - OUT_MAX;
				memmove(r->out, r->out + drop, r->out_len - drop);
				r->out_len -= drop;
				memcpy(r->out + r->out_len, buf, (size_t)n);
				r->out_len += (size_t)n;
			} else {
				memcpy(r->out + r->out_len, buf, (size_t)n);
				r->out_len += (size_t)n;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close(r->out_fd); /* EOF */
		r->out_fd = -1;
		return;
	}
}

static void write_input(struct running *r)
{
	while (r->in_fd >= 0 && r->in_off < r->job->in_len) {
		ssize_t n = write(r->in_fd, r->job->in + r->in_off, r->job->in_len - r->in_off);
		if (n > 0) {
			r->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* EPIPE: the script doesn't read stdin; fine */
	}
	close(r->in_fd);
	r->in_fd = -1;
}

static void finish(struct handlers *h)
{
	struct running *r = h->run;
	struct job *j = r->job;
	if (r->out_total > OUT_MAX)
		alog(LV_WARN, "agent: Script '%s' generated %zu bytes of output, truncated to %d",
		     j->script, r->out_total, OUT_MAX);
	alog(LV_DEBUG, "agent: Event '%s' script output: %.*s", j->evname, (int)r->out_len, r->out);
	bool ok = false;
	if (r->killed) {
		alog(LV_ERR, "agent: Error invoking script '%s': signal: killed (timed out)", j->script);
	} else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) {
		ok = true;
	} else if (WIFEXITED(r->status)) {
		alog(LV_ERR, "agent: Error invoking script '%s': exit status %d", j->script,
		     WEXITSTATUS(r->status));
	} else if (WIFSIGNALED(r->status)) {
		alog(LV_ERR, "agent: Error invoking script '%s': signal: %s", j->script,
		     strsignal(WTERMSIG(r->status)));
	}
	if (ok && j->is_query && r->out_total > 0) {
		if (vigil_respond(h->a->v, j->query_id, (const uint8_t *)r->out, r->out_len) != 0)
			alog(LV_WARN, "agent: Failed to respond to query '%s'", j->evname);
	}
	run_free(r);
	h->run = NULL;
}

void handlers_reap(struct handlers *h)
{
	if (!h || !h->run)
		return;
	struct running *r = h->run;
	if (!r->exited) {
		int st;
		pid_t p = waitpid(r->pid, &st, WNOHANG);
		if (p == r->pid) {
			r->exited = true;
			r->status = st;
			r->exited_ms = now_ms();
		}
	}
	if (r->exited) {
		if (r->out_fd >= 0)
			read_output(r);
		if (r->out_fd < 0 || now_ms() - r->exited_ms >= DRAIN_AFTER_EXIT_MS)
			finish(h);
	}
}

int handlers_nfds(void *handlers)
{
	struct handlers *h = handlers;
	return h ? 2 : 0;
}

int handlers_pollfds(void *handlers, struct pollfd *fds, int max)
{
	struct handlers *h = handlers;
	int n = 0;
	if (!h)
		return 0;
	start_next(h);
	if (!h->run)
		return 0;
	if (h->run->in_fd >= 0 && n < max)
		fds[n++] = (struct pollfd){.fd = h->run->in_fd, .events = POLLOUT};
	if (h->run->out_fd >= 0 && n < max)
		fds[n++] = (struct pollfd){.fd = h->run->out_fd, .events = POLLIN};
	return n;
}

void handlers_handle(void *handlers, const struct pollfd *fds, int n)
{
	struct handlers *h = handlers;
	if (!h)
		return;
	struct running *r = h->run;
	for (int i = 0; r && i < n; i++) {
		if (!fds[i].revents)
			continue;
		if (fds[i].fd == r->in_fd)
			write_input(r);
		else if (fds[i].fd == r->out_fd)
			read_output(r);
	}
	if (r) {
		int64_t el = now_ms() - r->start_ms;
		if (!r->warned_slow && el >= WARN_SLOW_MS && !r->exited) {
			r->warned_slow = true;
			alog(LV_WARN, "agent: Script '%s' slow, execution exceeding 1s", r->job->script);
		}
		int64_t limit = h->a->cfg.handler_timeout_ns / 1000000;
		if (limit > 0 && el >= limit && !r->exited && !r->killed) {
			r->killed = true;
			alog(LV_ERR, "agent: Script '%s' exceeded the handler timeout, killing it",
			     r->job->script);
			kill(-r->pid, SIGKILL);
			kill(r->pid, SIGKILL);
		}
	}
	handlers_reap(h);
	start_next(h);
}

int handlers_timeout_ms(void *handlers)
{
	struct handlers *h = handlers;
	if (!h)
		return -1;
	if (h->head && !h->run)
		return 0;
	if (!h->run)
		return -1;
	struct running *r = h->run;
	int64_t el = now_ms() - r->start_ms;
	int64_t best = 200; /* poll waitpid too, in case SIGCHLD was missed */
	if (!r->warned_slow && WARN_SLOW_MS - el < best)
		best = WARN_SLOW_MS - el;
	int64_t limit = h->a->cfg.handler_timeout_ns / 1000000;
	if (limit > 0 && limit - el < best)
		best = limit - el;
	return best < 0 ? 0 : (int)best;
}

void handlers_pack_stats(struct handlers *h, msgpack_packer *pk)
{
	size_t n = h ? h->n : 0;
	msgpack_pack_map(pk, n);
	for (size_t i = 0; i < n; i++) {
		char k[300];
		snprintf(k, sizeof k, "%s:%s", h->s[i].f.event, h->s[i].f.name ? h->s[i].f.name : "");
		mp_pack_kstr(pk, k, h->s[i].script);
	}
}
