/*
 * snapshot.h — serf's -snapshot file: who was alive, the Lamport clocks,
 * and whether we left gracefully, so a restarted agent can rejoin on its
 * own and does not re-run old user events or queries.
 *
 * Format: serf's snapshot text (serf/snapshot.go), one record a line
 *
 *     alive: NAME ADDR:PORT        ADDR:PORT as Go prints it: 1.2.3.4:7946, [::1]:7946
 *     not-alive: NAME
 *     clock: N                     member clock (Lamport time - 1, as serf)
 *     event-clock: N
 *     query-clock: N
 *     leave                        a graceful leave happened
 *     # comment
 *
 * read like serf's replay(): "alive" adds/replaces NAME, "not-alive" drops
 * it, later clock lines win, "leave" forgets every node and clock read so
 * far unless rejoin_after_leave (serf -rejoin), "coordinate: " lines (old
 * serf) are ignored.
 *
 * vigil writes the whole state as a new file instead of appending a log:
 *
 *     # vigil-snapshot 1
 *     [alive: / clock lines, leave]        (what an earlier leave forgot,
 *                                            kept for a later -rejoin)
 *     alive: ... / not-alive: ...          (sorted by name)
 *     clock: / event-clock: / query-clock:
 *     leave                                 (after a graceful leave)
 *     clock: N                              (ditto: serf also records its
 *                                            member clock after the leave)
 *     # end <bytes> <crc32>                 (of everything before this line)
 *
 * written to PATH.tmp, fsync'd, renamed over PATH, then the directory is
 * fsync'd: a crash leaves either the old or the new complete file at PATH,
 * never a torn one (a stale PATH.tmp is simply overwritten next time).  The
 * comment lines keep the file readable by serf itself.
 *
 * Reading is strict, unlike serf (which logs a warning per bad line and goes
 * on): a file that does not parse is refused as a whole, the caller starts
 * fresh.  A file with the vigil header must end with a matching "# end"
 * trailer, so any truncation of it is detected (even one at a line
 * boundary).  A file without the header is taken as serf-written: every
 * complete line must parse, but a last line without its newline is dropped
 * (snap_state.dropped_partial), as serf's replay() does, because serf's
 * buffered append log is routinely cut mid-line by a crash; the dropped tail
 * must still look like the start of a record (printable, a known keyword
 * prefix), so binary garbage is refused.  An empty file is an empty state
 * (serf creates one on first start).
 */
#ifndef VIGIL_SNAPSHOT_H
#define VIGIL_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

#define SNAP_HEADER "# vigil-snapshot 1\n"
#define SNAP_FLUSH_INTERVAL_MS 500       /* serf's flushInterval */
#define SNAP_RETRY_INTERVAL_MS 5000      /* after a failed write */
#define SNAP_MAX_BYTES (64u << 20)       /* larger files are refused */
#define SNAP_ADDR_MAX 80                 /* "[v6%zone]:port" */

enum snap_rc {
	SNAP_OK = 0,
	SNAP_ENOENT = -1,    /* no file */
	SNAP_ECORRUPT = -2,  /* does not parse / truncated / garbage */
	SNAP_EIO = -3,       /* cannot read / write */
	SNAP_ENOMEM = -4,
	SNAP_EINVAL = -5,
};

struct snap_node {
	char name[VIGIL_NAME_MAX + 1];
	char addr[SNAP_ADDR_MAX];   /* "ip:port" / "[ip]:port", as in the file */
};

/* What a snapshot says. */
struct snap_state {
	struct snap_node *alive;    /* previously alive nodes, file order */
	size_t n_alive;
	uint64_t clock, event_clock, query_clock;
	bool leave;                 /* the file records a graceful leave */
	bool leave_ignored;         /* ... not applied: rejoin_after_leave */
	bool vigil_format;          /* has the vigil header and trailer */
	bool dropped_partial;       /* serf format: partial last line dropped */
	size_t lines;               /* records read (comments included) */
	/* What the last applied "leave" forgot (its nodes and clocks): kept in
	 * the next file so that a later start with -rejoin can still use them,
	 * as serf's append-only log allows. */
	struct snap_node *pre_leave;
	size_t n_pre_leave;
	uint64_t pre_clock, pre_event_clock, pre_query_clock;
};

/*
 * Parse a snapshot image.  On SNAP_ECORRUPT (or ENOMEM) `out` is an empty
 * state and err says what and where ("line 3: ...").  Never reads past len;
 * buf need not be NUL-terminated.
 */
int snap_parse(const char *buf, size_t len, bool rejoin_after_leave,
	       struct snap_state *out, char *err, size_t errlen);
/* Read and parse path; SNAP_ENOENT when it does not exist. */
int snap_load(const char *path, bool rejoin_after_leave, struct snap_state *out,
	      char *err, size_t errlen);
void snap_state_free(struct snap_state *s);

/* What to write. */
struct snap_image {
	/* optional: records before an earlier leave, written first and closed
	 * by a "leave" line (snap_state.pre_leave) */
	bool has_prefix;
	const struct snap_node *pre_alive;
	size_t n_pre_alive;
	uint64_t pre_clock, pre_event_clock, pre_query_clock;

	const struct snap_node *alive;
	size_t n_alive;
	const char *const *not_alive;
	size_t n_not_alive;
	uint64_t clock, event_clock, query_clock;
	bool leave;
	uint64_t clock_after_leave;     /* the "clock:" line after "leave" */
};

/*
 * Render a vigil-format image (malloc'd, *len bytes, NUL-terminated).
 * Entries whose name or address could break the line format (control
 * characters, a name over VIGIL_NAME_MAX) are skipped.  The alive and
 * not-alive lists are written as given: sort them for stable output.
 */
int snap_render(const struct snap_image *img, char **out, size_t *len);

/*
 * Replace path with data, crash-safely: write path.tmp, fsync it, rename it
 * over path, fsync the directory.  err gets the failing step and errno.
 */
int snap_write_file(const char *path, const char *data, size_t len,
		    char *err, size_t errlen);

/*
 * Test hook: when set, snap_write_file calls it after PATH.tmp is written
 * and fsync'd, right before the rename; a non-zero return abandons the
 * write there (as a crash at that point would), leaving PATH.tmp behind.
 */
extern int (*snap_before_rename_hook)(const char *tmp_path, const char *path);

/* ---------------------------------------------------------------- writer */

/*
 * The snapshotter keeps the file in step with the member table: mark it
 * dirty on member changes, feed it the clocks, and call
 * snapshotter_write() once snapshotter_next_deadline() passes (at most
 * every SNAP_FLUSH_INTERVAL_MS); snapshotter_leave() writes at once.
 *
 * Nodes read from the snapshot at open ("carried over") stay in the file
 * until the member table knows them again, so a restart that has not yet
 * reached anyone does not forget where the cluster was.
 */
struct snapshotter;

struct snapshotter_config {
	const char *path;
	const char *self;               /* our name: not carried over */
	bool rejoin_after_leave;
	void (*log)(void *ctx, int level, const char *msg); /* 0 debug..3 error */
	void *log_ctx;
};

/*
 * Open: read the existing snapshot into *restored (caller frees with
 * snap_state_free).  A corrupt file is logged as one error line, moved
 * aside to PATH.corrupt, and *restored is empty: a fresh start.  Returns
 * NULL only for bad arguments or out of memory.
 */
struct snapshotter *snapshotter_open(const struct snapshotter_config *cfg,
				     struct snap_state *restored);
void snapshotter_free(struct snapshotter *s);

void snapshotter_mark_dirty(struct snapshotter *s);
/* Current Lamport times (serf_layer_clocks); the file keeps time - 1. */
void snapshotter_note_clocks(struct snapshotter *s, uint64_t clock, uint64_t event,
			     uint64_t query);
/* When snapshotter_write should run next; INT64_MAX = nothing to write. */
int64_t snapshotter_next_deadline(const struct snapshotter *s);

/*
 * Write the state (members: the serf member table, ourselves included;
 * alive and leaving members are "alive", left and failed "not-alive") if it
 * changed since the last write.  After snapshotter_leave the member part
 * stays as it was at the leave, like serf, which stops recording then.
 * Returns SNAP_OK (also when nothing changed) or the write error, logged.
 */
int snapshotter_write(struct snapshotter *s, const struct vigil_member *m, size_t n,
		      int64_t now);
/* Record a graceful leave and write at once (fsync'd). */
int snapshotter_leave(struct snapshotter *s, const struct vigil_member *m, size_t n,
		      int64_t now);
bool snapshotter_left(const struct snapshotter *s);
/* Why the last write failed ("" after a good one). */
const char *snapshotter_last_error(const struct snapshotter *s);

#endif
