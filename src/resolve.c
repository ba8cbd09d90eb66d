/*
 * resolve.c — host-name resolution on helper threads (resolve.h).
 */
#include "resolve.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "transport.h"

struct result {
	struct result *next;
	uint64_t tag;
	bool ok;
	struct wire_addr addr;
};

/* Shared between the owner and its threads; freed by the last user. */
struct shared {
	pthread_mutex_t mu;
	int refs;
	bool abandoned;            /* the owner is gone: drop results */
	int efd;
	struct result *head, *tail;
};

struct resolver {
	struct shared *sh;
	int pending;               /* submitted and not yet taken */
};

struct job {
	struct shared *sh;
	char *name;
	uint16_t default_port;
	uint64_t tag;
};

static void shared_unref_locked(struct shared *sh)
{
	bool last = --sh->refs == 0;
	pthread_mutex_unlock(&sh->mu);
	if (!last)
		return;
	while (sh->head) {
		struct result *n = sh->head->next;
		free(sh->head);
		sh->head = n;
	}
	close(sh->efd);
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct result *res = calloc(1, sizeof *res);
	if (res) {
		res->tag = j->tag;
		/* The blocking part: getaddrinfo, on this thread only. */
		res->ok = transport_parse_addr(j->name, j->default_port, true, &res->addr) == 0;
	}
	struct shared *sh = j->sh;
	free(j->name);
	free(j);
	pthread_mutex_lock(&sh->mu);
	if (!sh->abandoned && res) {
		if (sh->tail)
			sh->tail->next = res;
		else
			sh->head = res;
		sh->tail = res;
		res = NULL;
		uint64_t one = 1;
		(void)!write(sh->efd, &one, sizeof one);
	}
	free(res);
	shared_unref_locked(sh);
	return NULL;
}

struct resolver *resolver_new(void)
{
	struct resolver *r = calloc(1, sizeof *r);
	struct shared *sh = calloc(1, sizeof *sh);
	if (!r || !sh)
		goto fail;
	sh->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sh->efd < 0)
		goto fail;
	pthread_mutex_init(&sh->mu, NULL);
	sh->refs = 1;
	r->sh = sh;
	return r;
fail:
	free(sh);
	free(r);
	return NULL;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->sh->mu);
	r->sh->abandoned = true;
	shared_unref_locked(r->sh);
	free(r);
}

int resolver_fd(const struct resolver *r)
{
	return r && r->pending > 0 ? r->sh->efd : -1;
}

int resolver_pending(const struct resolver *r)
{
	return r ? r->pending : 0;
}

int resolver_submit(struct resolver *r, const char *host_port, uint16_t default_port,
		    uint64_t tag)
{
	if (r->pending >= RESOLVE_MAX_PENDING)
		return -1;
	struct job *j = calloc(1, sizeof *j);
	if (!j || !(j->name = strdup(host_port))) {
		free(j);
		return -1;
	}
	j->sh = r->sh;
	j->default_port = default_port;
	j->tag = tag;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	/* getaddrinfo needs little stack; don't reserve the default 8 MiB. */
	pthread_attr_setstacksize(&at, 256 * 1024);
	pthread_mutex_lock(&r->sh->mu);
	r->sh->refs++;
	pthread_mutex_unlock(&r->sh->mu);
	pthread_t th;
	int rc = pthread_create(&th, &at, job_run, j);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		pthread_mutex_lock(&r->sh->mu);
		r->sh->refs--;
		pthread_mutex_unlock(&r->sh->mu);
		free(j->name);
		free(j);
		return -1;
	}
	r->pending++;
	return 0;
}

bool resolver_take(struct resolver *r, uint64_t *tag, bool *ok, struct wire_addr *out)
{
	if (!r || r->pending == 0)
		return false;
	pthread_mutex_lock(&r->sh->mu);
	struct result *res = r->sh->head;
	if (res && !(r->sh->head = res->next))
		r->sh->tail = NULL;
	if (!r->sh->head) {
		/* Queue empty: clear the counter so the fd stops being readable.
		 * Threads append and write under this lock, so none is lost. */
		uint64_t cnt;
		(void)!read(r->sh->efd, &cnt, sizeof cnt);
	}
	pthread_mutex_unlock(&r->sh->mu);
	if (!res)
		return false;
	r->pending--;
	*tag = res->tag;
	*ok = res->ok;
	*out = res->addr;
	free(res);
	return true;
}

bool resolver_is_hostname(const char *s)
{
	if (!s || !*s)
		return false;
	const char *colon = strchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	if (hl == 0 || hl > 253)
		return false;
	bool letter = false;   /* digits and dots only: a malformed IP, not a name */
	for (size_t i = 0; i < hl; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return false;
		letter |= !isdigit(c) && c != '.';
	}
	if (!letter)
		return false;
	if (!colon)
		return true;
	const char *p = colon + 1;
	if (!*p || strlen(p) > 5)
		return false;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	int port = atoi(colon + 1);
	return port >= 1 && port <= 65535;
}
