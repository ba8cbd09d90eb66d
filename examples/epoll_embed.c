/*
 * epoll_embed.c — libvigil inside an epoll event loop.  Copy it.
 *
 *   cc epoll_embed.c $(pkg-config --cflags --libs vigil) -o epoll_embed
 *   ./epoll_embed -name=web1 -bind=10.0.0.5:7946 -join=10.0.0.2 \
 *                 -event=deploy=v42 -leave-after=5000
 *
 * It joins a cluster (serf agents or other vigil nodes), prints membership
 * and user events as they happen, sends one user event once the join has
 * worked, and on SIGINT/SIGTERM (or -leave-after ms after joining) leaves
 * gracefully so the others see it as "left", not "failed".
 *
 * The pattern, which works for any loop (libuv, libevent, your own):
 *   1. ask vigil_pollfds() which fds to watch -- the set changes as TCP
 *      connections come and go, so ask before every wait;
 *   2. wait at most vigil_timeout_ms();
 *   3. call vigil_step(), which reads every ready socket and runs timers.
 * The library never blocks and never calls you outside vigil_step().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* signalfd, epoll */
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <vigil.h>

#define MAX_FDS 256

/* The fds registered with epoll in the previous round. */
struct watch {
	int epfd;
	int fds[MAX_FDS];
	int n;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Everything the library reports arrives here, from inside vigil_step().
 * Pointers in ev are valid only during the call: copy what you keep. */
static void on_event(void *ctx, const struct vigil_event *ev)
{
	(void)ctx;
	switch (ev->type) {
	case VIGIL_EV_USER:
		printf("user-event %s %.*s\n", ev->name, (int)ev->payload_len,
		       (const char *)ev->payload);
		break;
	case VIGIL_EV_LOCAL_STALL:
		printf("local-stall %lld ms\n", (long long)ev->duration_ms);
		break;
	default:
		if (ev->member)
			printf("%s %s %s:%u\n", vigil_event_name(ev->type), ev->member->name,
			       ev->member->addr, ev->member->port);
		else
			printf("%s\n", vigil_event_name(ev->type));
	}
	fflush(stdout);
}

static void on_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level >= 2)   /* warnings and errors */
		fprintf(stderr, "%s\n", msg);
}

/*
 * Make epoll watch exactly the fds vigil wants now.  A closed fd leaves
 * epoll by itself, and its number may come back as a new socket, so ADD
 * every fd (EEXIST: already there) and DEL the ones no longer wanted.
 */
static int sync_watch(struct watch *w, vigil_t *v)
{
	struct pollfd pfds[MAX_FDS];
	int n = vigil_pollfds(v, pfds, MAX_FDS);
	if (n < 0)
		return -1;
	if (n > MAX_FDS)   /* never silently short: vigil_step still services */
		n = MAX_FDS;   /* the rest, and vigil_timeout_ms() caps the wait */
	for (int i = 0; i < w->n; i++) {
		bool still = false;
		for (int j = 0; j < n && !still; j++)
			still = pfds[j].fd == w->fds[i];
		if (!still)
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->fds[i], NULL);
	}
	for (int j = 0; j < n; j++) {
		struct epoll_event ee = { .events = EPOLLIN, .data.fd = pfds[j].fd };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, pfds[j].fd, &ee) != 0 && errno == EEXIST)
			epoll_ctl(w->epfd, EPOLL_CTL_MOD, pfds[j].fd, &ee);
		w->fds[j] = pfds[j].fd;
	}
	w->n = n;
	return 0;
}

static const char *opt(const char *arg, const char *name)
{
	size_t l = strlen(name);
	return strncmp(arg, name, l) == 0 && arg[l] == '=' ? arg + l + 1 : NULL;
}

int main(int argc, char **argv)
{
	struct vigil_config cfg;
	vigil_config_default(&cfg);
	cfg.on_event = on_event;
	cfg.on_log = on_log;

	const char *join = NULL, *event = NULL, *v_;
	long long leave_after = -1;
	for (int i = 1; i < argc; i++) {
		if ((v_ = opt(argv[i], "-name")))
			snprintf(cfg.name, sizeof cfg.name, "%s", v_);
		else if ((v_ = opt(argv[i], "-bind"))) {
			/* "ip:port" -> bind_addr + bind_port */
			const char *c = strrchr(v_, ':');
			snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "%.*s",
				 c ? (int)(c - v_) : (int)strlen(v_), v_);
			if (c)
				cfg.bind_port = (uint16_t)atoi(c + 1);
		} else if ((v_ = opt(argv[i], "-join")))
			join = v_;
		else if ((v_ = opt(argv[i], "-event")))
			event = v_;
		else if ((v_ = opt(argv[i], "-leave-after")))
			leave_after = atoll(v_);
		else {
			fprintf(stderr, "usage: %s -name=N -bind=IP:PORT [-join=HOST[:PORT]] "
				"[-event=NAME=PAYLOAD] [-leave-after=MS]\n", argv[0]);
			return 2;
		}
	}

	vigil_t *v;
	char err[256];
	int rc = vigil_create(&cfg, &v, err, sizeof err);
	if (rc != VIGIL_OK) {
		fprintf(stderr, "vigil_create: %s (%s)\n", err, vigil_strerror(rc));
		return 1;
	}
	const char *ver;
	vigil_version(&ver);
	printf("libvigil %s: %s started\n", ver, vigil_name(v));

	/* Signals through a signalfd, so they wake the same epoll_wait. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	struct watch w = { .epfd = epoll_create1(EPOLL_CLOEXEC) };
	struct epoll_event see = { .events = EPOLLIN, .data.fd = sfd };
	if (sfd < 0 || w.epfd < 0 || epoll_ctl(w.epfd, EPOLL_CTL_ADD, sfd, &see) != 0) {
		perror("epoll/signalfd");
		return 1;
	}

	/* Joining does not block: the outcome is polled below. */
	uint32_t join_id = 0;
	if (join && vigil_join_begin(v, (const char *[]){ join }, 1, false, &join_id) < 0) {
		fprintf(stderr, "join: %s\n", vigil_last_error(v));
		vigil_destroy(v);
		return 1;
	}

	long long leave_at = -1, give_up_at = -1;
	bool leaving = false;
	int status = 0;
	while (!(leaving && (vigil_leave_done(v) || now_ms() >= give_up_at))) {
		if (sync_watch(&w, v) != 0)
			break;
		int timeout = vigil_timeout_ms(v);
		if (leave_at >= 0 && !leaving) {
			long long d = leave_at - now_ms();
			if (timeout < 0 || d < timeout)
				timeout = d < 0 ? 0 : (int)d;
		}
		struct epoll_event evs[32];
		int n = epoll_wait(w.epfd, evs, 32, timeout);
		for (int i = 0; i < n; i++) {
			struct signalfd_siginfo si;
			if (evs[i].data.fd == sfd && read(sfd, &si, sizeof si) > 0 && !leaving) {
				printf("signal %u: leaving\n", si.ssi_signo);
				leave_at = now_ms();
			}
		}
		vigil_step(v);   /* reads whatever is ready, runs timers, calls on_event */

		int joined;
		if (join_id && vigil_join_poll(v, join_id, &joined) == 1) {
			join_id = 0;
			printf("joined %d node(s)\n", joined);
			if (joined == 0) {
				status = 1;   /* nobody answered: give up, as serf does */
				break;
			}
			if (event) {
				/* "-event=name=payload" */
				const char *eq = strchr(event, '=');
				char name[128];
				snprintf(name, sizeof name, "%.*s",
					 eq ? (int)(eq - event) : (int)strlen(event), event);
				const char *pl = eq ? eq + 1 : "";
				if (vigil_user_event(v, name, (const uint8_t *)pl, strlen(pl),
						     false) != VIGIL_OK)
					fprintf(stderr, "event: %s\n", vigil_last_error(v));
				else
					printf("sent event %s\n", name);
			}
			if (leave_after >= 0)
				leave_at = now_ms() + leave_after;
		}
		if (!leaving && leave_at >= 0 && now_ms() >= leave_at) {
			/* Tell the cluster, then keep stepping until it is done. */
			vigil_leave(v);
			leaving = true;
			give_up_at = now_ms() + 10000;
		}
		fflush(stdout);
	}
	if (leaving)
		printf("left\n");
	vigil_destroy(v);
	close(w.epfd);
	close(sfd);
	return status;
}
