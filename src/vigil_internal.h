/*
 * vigil_internal.h — the handle behind vigil_t (include/vigil.h), shared by
 * the files that implement the public API: vigil.c (the glue and most
 * calls) and keymanager.c (serf's cluster-wide key operations).
 */
#ifndef VIGIL_INTERNAL_H
#define VIGIL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.h"
#include "coordinate.h"
#include "crypto.h"
#include "errors.h"
#include "evqueue.h"
#include "ratelimit.h"
#include "resolve.h"
#include "serf.h"
#include "snapshot.h"
#include "swim.h"
#include "transport.h"
#include "will.h"
#include "wire.h"

enum leave_phase {
	LEAVE_NONE,
	LEAVE_INTENT,  /* serf leave intent broadcast; waiting to call swim_leave */
	LEAVE_SWIM,    /* swim_leave called; done when swim_leave_done */
};

struct key_op;

#define JOINS_TRACKED_MAX 64
/* Every seed's push-pull ends by the TCP timeout; a seed the library could
 * not even start (no stream slot) never reports, so decide by then anyway. */
#define JOIN_DECIDE_MS (TRANSPORT_TCP_TIMEOUT_MS + 1000)

/*
 * One vigil_join_begin call: its seeds, and how many of them have finished
 * their join push-pull (and how many of those answered), so a caller can
 * report like serf's Join: the number of nodes contacted, or failure as soon
 * as every seed has failed.
 */
struct join_batch {
	uint32_t id;
	int64_t deadline;            /* decided by then even if a seed never reports */
	struct wire_addr *seeds;     /* a name being resolved has port 0 here */
	bool *finished;
	size_t n, n_finished;
	size_t n_resolving;          /* host names not resolved yet */
	int n_ok;
};

struct vigil {
	struct vigil_config cfg;     /* copy; pointer members cleared (not owned) */
	char *keyring_file;

	struct transport *tr;
	struct swim *sw;
	struct serf_layer *sl;
	struct will *will;           /* last wills (serf extension) */
	char *will_path;             /* its state file, or NULL */
	struct snapshotter *snap;    /* -snapshot, or NULL */
	struct coord_client *coords; /* serf's Vivaldi client, NULL if disabled */
	struct snap_node *rejoin;    /* previously alive nodes (serf handleRejoin) */
	size_t n_rejoin, rejoin_next;
	bool rejoin_active;          /* a re-join attempt is in flight */
	struct wire_addr rejoin_addr;
	bool ready;                  /* vigil_create finished */
	struct evqueue held;         /* events raised outside vigil_step (v_on_event) */
	bool in_step;                /* inside vigil_step */
	bool in_callback;            /* inside the caller's on_event */
	struct vigil_errbuf eb;      /* vigil_last_error */
	struct resolver *res;        /* host names given to vigil_join* */
	struct vigil_keyring *kr;    /* NULL: plaintext cluster */
	int enc_version;             /* memberlist encryptionVersion() */

	int64_t now;                 /* clock at the current API entry */
	int64_t last_step;           /* clock at the previous vigil_step */
	int64_t last_step_boot;      /* CLOCK_BOOTTIME at the previous vigil_step */
	int64_t expected_wake_boot;  /* latest BOOTTIME by which we expect the next step */
	bool pollfds_truncated;

	bool join_broadcast_pending; /* serf Join: broadcast intent after a join works */
	size_t joins_in_flight;      /* seeds whose join push-pull has not finished */
	struct join_batch *joins;    /* vigil_join_begin calls being tracked */
	size_t n_joins;
	uint32_t next_join_id;
	enum leave_phase leave;
	int64_t leave_swim_at;

	/* Cluster-wide key operations we started (serf KeyManager queries). */
	struct key_op *key_ops;      /* in start order */
	struct key_op *key_ready;    /* complete, callbacks running */
	struct key_op *key_starting; /* inside serf_layer_query */

	uint8_t *crypt_buf;          /* UDP decrypt scratch (see h_send_packet) */
	size_t crypt_cap;

	/* Drops, by reason; reported by vigil_stats. */
	uint64_t udp_decrypt_failed;   /* verify_incoming on and not decryptable */
	uint64_t udp_drop_plaintext;   /*   of those: a valid plaintext memberlist packet */
	uint64_t udp_drop_malformed;   /*   of those: neither encrypted nor plaintext */
	uint64_t udp_plain_accepted;   /* verify_incoming off: taken as plaintext */
	uint64_t udp_empty;
	uint64_t tcp_decrypt_failed;
	uint64_t tcp_plain_dropped;    /* plaintext stream while verify_incoming */
	uint64_t tcp_encrypted_no_key; /* encrypted stream but no keyring */
	uint64_t stream_malformed;     /* swim rejected the stream message */
	uint64_t encrypt_failed;

	/* Log lines any peer can cause at packet rate go through this. */
	struct ratelimit log_rl;
};

/* CLOCK_MONOTONIC in milliseconds: every layer's "now". */
int64_t clock_ms(void);

/* One log function; rl NULL = always, else the shared limiter decides. */
__attribute__((format(printf, 4, 5)))
void vlog_to(struct vigil *v, struct ratelimit *rl, int level, const char *fmt, ...);

#define vlog(v, level, ...) vlog_to((v), NULL, (level), __VA_ARGS__)
/*
 * For lines a remote peer can trigger once per datagram or connection
 * (undecryptable packets, plaintext into an encrypted cluster, bad stream
 * messages): a flood must not turn into a flood of log lines.
 */
#define vlog_rl(v, level, ...) vlog_to((v), &(v)->log_rl, (level), __VA_ARGS__)

#endif
