/*
 * agent_state.h — what every module of the vigil agent shares: its
 * configuration, the agent's state and a few small helpers.  It includes no
 * other agent header, so rpc.c, handlers.c, metrics.c, config.c, ... depend
 * on it and never on agent.c (the main loop), which depends on them.
 * Everything runs on one thread inside one poll loop.
 */
#ifndef VIGIL_AGENT_AGENT_STATE_H
#define VIGIL_AGENT_AGENT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

/* The agent carries the library's version (include/vigil.h). */
#define VIGIL_VERSION VIGIL_VERSION_STRING

struct kv {
	char *key;
	char *value;
};

struct strlist {
	char **v;
	size_t n;
};

/* serf's agent Config, restricted to what vigil understands.  Field names
 * follow the JSON keys (config.go). */
struct agent_config {
	char *node_name, *role, *bind, *advertise, *encrypt_key, *keyring_file;
	char *log_level, *rpc_addr, *rpc_auth, *profile, *snapshot_path, *tags_file;
	char *metrics_addr;           /* vigil: Prometheus endpoint; NULL/"" = off */
	char *interface;              /* serf -iface / "interface": bind its address */
	char *syslog_facility, *discover;
	bool enable_syslog;           /* serf -syslog */
	struct kv *tags;
	size_t n_tags;
	struct strlist start_join, retry_join, event_handlers;
	int protocol;                 /* <= 0: default */
	bool replay_on_join, leave_on_terminate, skip_leave_on_interrupt;
	bool rejoin_after_leave;
	bool disable_coordinates;     /* serf disable_coordinates */
	int retry_max_attempts;
	int64_t retry_interval_ns;    /* 0: default 30s */
	int64_t broadcast_timeout_ns; /* 0: default 5s */
	int64_t handler_timeout_ns;   /* vigil: kill event scripts after this */
};

struct rpc_server;
struct handlers;
struct coalescer;
struct discover_join;

struct agent {
	vigil_t *v;
	struct agent_config cfg;
	struct rpc_server *rpc;
	struct handlers *hs;
	struct coalescer *co; /* serf agent's event coalescing */
	struct discover_join *mdns; /* -discover, NULL without */
	bool encrypted;
	bool quit;          /* leave the main loop */
	int exit_code;
	bool leaving;       /* graceful leave in progress */
	int64_t leave_deadline_ms;
	bool shutdown_after_leave;
	/* retry-join state */
	int retry_attempts;
	int64_t next_retry_ms;
	int64_t retry_started_ms;
	uint32_t retry_join_id;  /* attempt in flight (vigil_join_begin), 0 = none */
	bool retry_done;
};

/* CLOCK_MONOTONIC in milliseconds: every deadline of the agent uses it. */
int64_t now_ms(void);

/* Start a graceful leave (idempotent); the main loop shuts down when it
 * ends, or gives up after the deadline set here. */
void agent_begin_leave(struct agent *a);

/* Tag and list helpers (config.c) */
void kv_set(struct kv **arr, size_t *n, const char *k, const char *v);
void kv_free(struct kv *arr, size_t n);
int strlist_add(struct strlist *l, const char *s);
void strlist_free(struct strlist *l);

/* A malloc'd copy of p[0..n); NULL when n is 0 or memory is short. */
uint8_t *agent_memdup(const void *p, size_t n);

/* "user", "member-join", ..., also vigil's own event names. */
const char *agent_event_name(enum vigil_event_type t);

#endif
