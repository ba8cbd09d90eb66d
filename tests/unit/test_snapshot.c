/*
 * test_snapshot.c — serf-compatible snapshot files (src/snapshot.h):
 * render/parse roundtrip, serf's own log format, every truncation and
 * random garbage refused, crash-safe replacement, the snapshotter, and
 * vigil_create restoring clocks and re-joining on its own.
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "snapshot.h"
#include "vigil.h"

/* ------------------------------------------------------------ helpers */

static char tmpdir[256];

static void setup_tmpdir(void)
{
	if (tmpdir[0])
		return;
	snprintf(tmpdir, sizeof tmpdir, "%s/vigil-snap.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(2);
	}
}

static void path_in(char *out, size_t cap, const char *name)
{
	setup_tmpdir();
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void cleanup_tmpdir(void)
{
	if (!tmpdir[0])
		return;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
}

static int write_raw(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(p, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}

static char *read_raw(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 22);
	size_t k = buf ? fread(buf, 1, (1 << 22) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[k] = '\0';
	*n = k;
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const struct snap_node *find_node(const struct snap_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_alive; i++)
		if (strcmp(st->alive[i].name, name) == 0)
			return &st->alive[i];
	return NULL;
}

/* A typical state, rendered. */
static char *sample_image(size_t *len, bool leave)
{
	static const struct snap_node alive[] = {
		{"node-a", "10.0.0.1:7946"},
		{"node b with spaces", "10.0.0.2:7947"},
		{"node-v6", "[2001:db8::1]:7946"},
		{"node-zone", "[fe80::1%eth0]:7946"},
	};
	static const char *const gone[] = {"node-failed", "node-left"};
	struct snap_image img = {
		.alive = alive,
		.n_alive = 4,
		.not_alive = gone,
		.n_not_alive = 2,
		.clock = 41,
		.event_clock = 7,
		.query_clock = 3,
		.leave = leave,
		.clock_after_leave = 44,
	};
	char *out = NULL;
	if (snap_render(&img, &out, len) != SNAP_OK)
		return NULL;
	return out;
}

/* --------------------------------------------------------------- tests */

TEST(render_parse_roundtrip)
{
	size_t len = 0;
	char *img = sample_image(&len, false);
	REQUIRE(img != NULL);
	CHECK(strncmp(img, SNAP_HEADER, strlen(SNAP_HEADER)) == 0);
	CHECK(strstr(img, "\nalive: node-a 10.0.0.1:7946\n") != NULL);
	CHECK(strstr(img, "\nnot-alive: node-left\n") != NULL);
	CHECK(strstr(img, "\nclock: 41\nevent-clock: 7\nquery-clock: 3\n# end ") != NULL);
	CHECK(strstr(img, "leave") == NULL);

	struct snap_state st;
	char err[256];
	CHECK_EQ_INT(snap_parse(img, len, false, &st, err, sizeof err), SNAP_OK);
	CHECK(st.vigil_format);
	CHECK(!st.leave);
	CHECK(!st.dropped_partial);
	CHECK_EQ_INT(st.n_alive, 4);
	CHECK_EQ_INT(st.clock, 41);
	CHECK_EQ_INT(st.event_clock, 7);
	CHECK_EQ_INT(st.query_clock, 3);
	const struct snap_node *nd = find_node(&st, "node b with spaces");
	CHECK(nd && strcmp(nd->addr, "10.0.0.2:7947") == 0);
	nd = find_node(&st, "node-v6");
	CHECK(nd && strcmp(nd->addr, "[2001:db8::1]:7946") == 0);
	CHECK(find_node(&st, "node-zone") != NULL);
	CHECK(find_node(&st, "node-failed") == NULL);
	snap_state_free(&st);

	/* through a file */
	char path[300];
	path_in(path, sizeof path, "roundtrip");
	CHECK_EQ_INT(snap_write_file(path, img, len, err, sizeof err), SNAP_OK);
	CHECK_EQ_INT(snap_load(path, false, &st, err, sizeof err), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 4);
	CHECK_EQ_INT(st.clock, 41);
	snap_state_free(&st);
	char tmp[320];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	CHECK(!exists(tmp));
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	free(img);

	path_in(path, sizeof path, "does-not-exist");
	CHECK_EQ_INT(snap_load(path, false, &st, err, sizeof err), SNAP_ENOENT);
	CHECK_EQ_INT(st.n_alive, 0);
}

TEST(render_skips_unsafe_entries)
{
	/* a remote member name with a newline must not inject records */
	static const struct snap_node alive[] = {
		{"ok", "10.0.0.1:7946"},
		{"evil\nleave", "10.0.0.2:7946"},
		{"bad-addr", "not an address"},
		{"", "10.0.0.3:7946"},
	};
	static const char *const gone[] = {"x\ralive: y 1.2.3.4:5", "fine"};
	struct snap_image img = {.alive = alive, .n_alive = 4, .not_alive = gone,
				 .n_not_alive = 2};
	char *out;
	size_t len;
	REQUIRE(snap_render(&img, &out, &len) == SNAP_OK);
	struct snap_state st;
	char err[256];
	CHECK_EQ_INT(snap_parse(out, len, false, &st, err, sizeof err), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 1);
	CHECK(!st.leave);
	CHECK(strstr(out, "evil") == NULL);
	CHECK(strstr(out, "not-alive: fine\n") != NULL);
	snap_state_free(&st);
	free(out);
}

TEST(leave_semantics_like_serf)
{
	size_t len;
	char *img = sample_image(&len, true);
	REQUIRE(img != NULL);
	CHECK(strstr(img, "\nquery-clock: 3\nleave\nclock: 44\n# end ") != NULL);
	struct snap_state st;
	char err[256];
	/* serf replay(): a leave forgets nodes and clocks read before it */
	CHECK_EQ_INT(snap_parse(img, len, false, &st, err, sizeof err), SNAP_OK);
	CHECK(st.leave);
	CHECK(!st.leave_ignored);
	CHECK_EQ_INT(st.n_alive, 0);
	CHECK_EQ_INT(st.clock, 44);       /* the clock line after the leave */
	CHECK_EQ_INT(st.event_clock, 0);
	CHECK_EQ_INT(st.query_clock, 0);
	snap_state_free(&st);
	/* -rejoin: the leave is ignored */
	CHECK_EQ_INT(snap_parse(img, len, true, &st, err, sizeof err), SNAP_OK);
	CHECK(st.leave && st.leave_ignored);
	CHECK_EQ_INT(st.n_alive, 4);
	CHECK_EQ_INT(st.clock, 44);
	CHECK_EQ_INT(st.event_clock, 7);
	CHECK_EQ_INT(st.query_clock, 3);
	snap_state_free(&st);
	free(img);
}

/* A log as serf 0.9.4 appends it (snapshot.go), read the same way. */
static const char serf_log[] =
	"alive: s1 127.0.0.1:7946\n"
	"clock: 1\n"
	"alive: s2 127.0.0.1:7947\n"
	"alive: s3 [::1]:7948\n"
	"clock: 3\n"
	"event-clock: 5\n"
	"query-clock: 2\n"
	"not-alive: s2\n"
	"coordinate: 0.1 0.2\n"
	"# a comment\n"
	"alive: s2 127.0.0.1:7949\n"
	"not-alive: s3\n"
	"clock: 9\n";

TEST(reads_serf_written_log)
{
	struct snap_state st;
	char err[256];
	CHECK_EQ_INT(snap_parse(serf_log, strlen(serf_log), false, &st, err, sizeof err),
		     SNAP_OK);
	CHECK(!st.vigil_format);
	CHECK_EQ_INT(st.n_alive, 2);
	const struct snap_node *nd = find_node(&st, "s2");
	CHECK(nd && strcmp(nd->addr, "127.0.0.1:7949") == 0);
	CHECK(find_node(&st, "s3") == NULL);
	CHECK_EQ_INT(st.clock, 9);
	CHECK_EQ_INT(st.event_clock, 5);
	CHECK_EQ_INT(st.query_clock, 2);
	snap_state_free(&st);

	/* serf's log after a leave and a restart that joined again */
	const char *again = "alive: a 1.1.1.1:1\nleave\nclock: 4\nalive: b 2.2.2.2:2\n";
	CHECK_EQ_INT(snap_parse(again, strlen(again), false, &st, err, sizeof err), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 1);
	CHECK(find_node(&st, "b") != NULL);
	CHECK_EQ_INT(st.clock, 4);
	snap_state_free(&st);

	/* UTF-8 names are fine, bytes that are not UTF-8 are not */
	const char *utf8 = "alive: n\xc3\xb6" "de-\xe2\x82\xac 1.1.1.1:1\n";
	CHECK_EQ_INT(snap_parse(utf8, strlen(utf8), false, &st, err, sizeof err), SNAP_OK);
	CHECK(find_node(&st, "n\xc3\xb6" "de-\xe2\x82\xac") != NULL);
	snap_state_free(&st);
	const char *latin1 = "alive: n\xf6" "de 1.1.1.1:1\n";
	CHECK_EQ_INT(snap_parse(latin1, strlen(latin1), false, &st, err, sizeof err),
		     SNAP_ECORRUPT);
	const char *surrogate = "alive: n\xed\xa0\x80 1.1.1.1:1\n";
	CHECK_EQ_INT(snap_parse(surrogate, strlen(surrogate), false, &st, err, sizeof err),
		     SNAP_ECORRUPT);

	/* an empty file (serf creates one at start) is an empty state */
	CHECK_EQ_INT(snap_parse("", 0, false, &st, err, sizeof err), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 0);
	snap_state_free(&st);
}

TEST(serf_log_partial_last_line)
{
	/* serf's bufio log cut mid-line by a crash: serf's replay() drops the
	 * fragment; so do we, and only for a plausible fragment */
	size_t n = strlen(serf_log);
	for (size_t cut = 0; cut <= n; cut++) {
		struct snap_state st, ref;
		char err[256];
		int rc = snap_parse(serf_log, cut, false, &st, err, sizeof err);
		CHECK_EQ_INT(rc, SNAP_OK);
		/* the same as the complete lines before the cut */
		size_t whole = cut;
		while (whole > 0 && serf_log[whole - 1] != '\n')
			whole--;
		CHECK_EQ_INT(snap_parse(serf_log, whole, false, &ref, err, sizeof err), SNAP_OK);
		CHECK_EQ_INT(st.n_alive, ref.n_alive);
		CHECK_EQ_INT(st.clock, ref.clock);
		CHECK_EQ_INT(st.event_clock, ref.event_clock);
		CHECK_EQ_INT(st.dropped_partial, whole != cut);
		snap_state_free(&st);
		snap_state_free(&ref);
	}
	struct snap_state st;
	char err[256];
	const char *bad[] = {
		"alive: a 1.1.1.1:1\nclock: 12x",      /* not digits */
		"alive: a 1.1.1.1:1\nleaveX",          /* not a keyword prefix */
		"alive: a 1.1.1.1:1\nzzz",
		"alive: a 1.1.1.1:1\nalive: a\x01",    /* control character */
		"\xff\xfe\x00garbage",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t bl = i == 4 ? 10 : strlen(bad[i]);
		CHECK_EQ_INT(snap_parse(bad[i], bl, false, &st, err, sizeof err), SNAP_ECORRUPT);
		CHECK_EQ_INT(st.n_alive, 0);
	}
}

TEST(every_truncation_is_refused)
{
	for (int leave = 0; leave < 2; leave++) {
		size_t len;
		char *img = sample_image(&len, leave);
		REQUIRE(img != NULL);
		int refused = 0;
		for (size_t cut = 0; cut < len; cut++) {
			struct snap_state st;
			char err[256] = "";
			int rc = snap_parse(img, cut, true, &st, err, sizeof err);
			if (cut == 0) {
				/* indistinguishable from serf's fresh empty file */
				CHECK_EQ_INT(rc, SNAP_OK);
			} else if (rc != SNAP_ECORRUPT) {
				printf("# cut at %zu of %zu accepted\n", cut, len);
				CHECK(rc == SNAP_ECORRUPT);
			} else {
				refused++;
				CHECK(err[0] != '\0');
			}
			/* refused or empty: a fresh state either way */
			CHECK_EQ_INT(st.n_alive, 0);
			CHECK_EQ_INT(st.clock + st.event_clock + st.query_clock, 0);
			CHECK(st.alive == NULL);
			snap_state_free(&st);
		}
		CHECK_EQ_INT(refused, (long long)len - 1);
		free(img);
	}
}

TEST(damaged_files_are_refused)
{
	size_t len;
	char *img = sample_image(&len, false);
	REQUIRE(img != NULL);
	struct snap_state st;
	char err[256];
	/* any single byte changed */
	for (size_t i = 0; i < len; i++) {
		char save = img[i];
		img[i] = (char)(save ^ (1 << (next_rand() % 8)));
		int rc = snap_parse(img, len, false, &st, err, sizeof err);
		/* a flip inside the header makes it a (bad) serf file; either way */
		CHECK_EQ_INT(rc, SNAP_ECORRUPT);
		CHECK_EQ_INT(st.n_alive, 0);
		img[i] = save;
	}
	/* extra data after the end marker */
	char *longer = malloc(len + 16);
	REQUIRE(longer != NULL);
	memcpy(longer, img, len);
	memcpy(longer + len, "alive: x 1.2.3.4:5\n", 16);
	CHECK_EQ_INT(snap_parse(longer, len + 16, false, &st, err, sizeof err), SNAP_ECORRUPT);
	free(longer);
	free(img);

	/* serf format: any complete line that does not parse */
	const char *lines[] = {
		"bogus\n", "\n", "alive: \n", "alive: nameonly\n", "alive: n 1.2.3.4\n",
		"alive: n 1.2.3.4:99999\n", "alive: n 1.2.3.4:0\n", "alive: n 1.2.3:7946\n",
		"alive: n ::1:7946\n", "alive: n [::1]7946\n", "alive: n [zz]:7946\n",
		"alive: n [::1%]:7946\n", "not-alive: \n", "clock: -1\n", "clock: \n",
		"clock: 18446744073709551616\n", "event-clock: 1 \n", "query-clock: x\n",
		"leave \n", "LEAVE\n", "alive: n\t1.2.3.4:5\n", "clock: 1\r\n",
		"alive: a 1.2.3.4:5\0\n",
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		char buf[128];
		size_t bl = i == sizeof lines / sizeof lines[0] - 1 ? 20 : strlen(lines[i]);
		int n = snprintf(buf, sizeof buf, "alive: ok 9.9.9.9:9\n");
		memcpy(buf + n, lines[i], bl);
		int rc = snap_parse(buf, (size_t)n + bl, false, &st, err, sizeof err);
		if (rc != SNAP_ECORRUPT)
			printf("# accepted: %s", lines[i]);
		CHECK_EQ_INT(rc, SNAP_ECORRUPT);
		CHECK(strstr(err, "line 2") != NULL);
		CHECK_EQ_INT(st.n_alive, 0);
	}
	/* long names: over VIGIL_NAME_MAX is not a name we could have */
	char longname[VIGIL_NAME_MAX + 40];
	int n = snprintf(longname, sizeof longname, "alive: ");
	memset(longname + n, 'x', VIGIL_NAME_MAX + 1);
	memcpy(longname + n + VIGIL_NAME_MAX + 1, " 1.2.3.4:5\n", 11);
	CHECK_EQ_INT(snap_parse(longname, (size_t)n + VIGIL_NAME_MAX + 12, false, &st, err,
				sizeof err), SNAP_ECORRUPT);
}

TEST(random_bytes_are_refused)
{
	char buf[1024];
	int accepted = 0;
	for (int iter = 0; iter < 20000; iter++) {
		/* (a byte or two could be the start of a record in a serf log cut
		 * by a crash: "a", "cl"; from 16 bytes on that cannot happen) */
		size_t n = 16 + next_rand() % (sizeof buf - 16);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)next_rand();
		/* sometimes make it look like the start of a real file */
		if (iter % 4 == 1 && n > 20)
			memcpy(buf, SNAP_HEADER, strlen(SNAP_HEADER));
		if (iter % 4 == 2 && n > 10)
			memcpy(buf, "alive: ", 7);
		struct snap_state st;
		char err[256];
		int rc = snap_parse(buf, n, iter & 8, &st, err, sizeof err);
		if (rc != SNAP_ECORRUPT)
			accepted++;
		CHECK_EQ_INT(st.n_alive, 0);
		snap_state_free(&st);
	}
	CHECK_EQ_INT(accepted, 0);
	/* printable noise with newlines */
	for (int iter = 0; iter < 5000; iter++) {
		size_t n = 1 + next_rand() % 200;
		for (size_t i = 0; i < n; i++) {
			uint64_t r = next_rand() % 40;
			buf[i] = r == 0 ? '\n' : (char)(' ' + next_rand() % 95);
		}
		struct snap_state st;
		char err[256];
		int rc = snap_parse(buf, n, false, &st, err, sizeof err);
		CHECK(rc == SNAP_ECORRUPT || rc == SNAP_OK);
		if (rc == SNAP_ECORRUPT)
			CHECK_EQ_INT(st.n_alive, 0);
		snap_state_free(&st);
	}
}

/* ---------------------------------------------------------- crash safety */

static int abandon_hook(const char *tmp, const char *path)
{
	(void)tmp;
	(void)path;
	return -1; /* "crash" after the temp file is written, before rename */
}

TEST(crash_before_rename_keeps_old_file)
{
	char path[300], tmp[320], err[256];
	path_in(path, sizeof path, "crash");
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	size_t l1, l2;
	char *old = sample_image(&l1, false);
	char *new = sample_image(&l2, true);
	REQUIRE(old && new);
	CHECK_EQ_INT(snap_write_file(path, old, l1, err, sizeof err), SNAP_OK);

	snap_before_rename_hook = abandon_hook;
	CHECK(snap_write_file(path, new, l2, err, sizeof err) != SNAP_OK);
	snap_before_rename_hook = NULL;
	/* the temp file is there (complete, fsync'd) but PATH is untouched */
	CHECK(exists(tmp));
	size_t n;
	char *got = read_raw(path, &n);
	REQUIRE(got != NULL);
	CHECK_EQ_INT(n, l1);
	CHECK(n == l1 && memcmp(got, old, n) == 0);
	free(got);
	struct snap_state st;
	CHECK_EQ_INT(snap_load(path, false, &st, err, sizeof err), SNAP_OK);
	CHECK(!st.leave);
	CHECK_EQ_INT(st.n_alive, 4);
	snap_state_free(&st);

	/* a torn temp file from a crash mid-write is never read... */
	CHECK_EQ_INT(write_raw(tmp, new, l2 / 2), 0);
	CHECK_EQ_INT(snap_load(path, false, &st, err, sizeof err), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 4);
	snap_state_free(&st);
	/* ...and simply replaced by the next write */
	CHECK_EQ_INT(snap_write_file(path, new, l2, err, sizeof err), SNAP_OK);
	CHECK(!exists(tmp));
	CHECK_EQ_INT(snap_load(path, false, &st, err, sizeof err), SNAP_OK);
	CHECK(st.leave);
	snap_state_free(&st);

	/* an unwritable place is an error, not a crash */
	CHECK(snap_write_file("/nonexistent-dir/x/snap", old, l1, err, sizeof err) != SNAP_OK);
	CHECK(strstr(err, "nonexistent") != NULL);
	free(old);
	free(new);
}

/* Two different large images, written alternately by a child we SIGKILL at
 * random moments: PATH must always be one of them, complete. */
TEST(sigkill_during_writes_never_leaves_a_torn_file)
{
	enum { NODES = 3000 };
	struct snap_node *alive = calloc(NODES, sizeof *alive);
	REQUIRE(alive != NULL);
	for (int i = 0; i < NODES; i++) {
		snprintf(alive[i].name, sizeof alive[i].name, "node-%05d-xxxxxxxxxxxxxxxxxxxxxxx", i);
		snprintf(alive[i].addr, sizeof alive[i].addr, "10.%d.%d.%d:7946", i / 65536,
			 (i / 256) % 256, i % 256);
	}
	char *img[2];
	size_t len[2];
	for (int k = 0; k < 2; k++) {
		struct snap_image im = {.alive = alive, .n_alive = (size_t)(NODES - k * 1000),
					.clock = (uint64_t)(100 + k)};
		REQUIRE(snap_render(&im, &img[k], &len[k]) == SNAP_OK);
	}
	free(alive);
	char path[300], err[256];
	path_in(path, sizeof path, "killed");
	REQUIRE(snap_write_file(path, img[0], len[0], err, sizeof err) == SNAP_OK);
	int bad = 0;
	for (int round = 0; round < 40; round++) {
		pid_t pid = fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			for (unsigned i = 0;; i++)
				snap_write_file(path, img[i & 1], len[i & 1], err, sizeof err);
		}
		struct timespec ts = {0, (long)(1000000 + next_rand() % 30000000)};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		size_t n;
		char *got = read_raw(path, &n);
		REQUIRE(got != NULL);
		bool match = (n == len[0] && memcmp(got, img[0], n) == 0) ||
			     (n == len[1] && memcmp(got, img[1], n) == 0);
		struct snap_state st;
		int rc = snap_parse(got, n, false, &st, err, sizeof err);
		if (!match || rc != SNAP_OK) {
			bad++;
			printf("# round %d: %zu bytes, parse %d (%s)\n", round, n, rc, err);
		}
		snap_state_free(&st);
		free(got);
	}
	CHECK_EQ_INT(bad, 0);
	free(img[0]);
	free(img[1]);
}

/* ------------------------------------------------------------ snapshotter */

struct logs {
	int errors, total;
	char last_error[768];
};

static void count_log(void *ctx, int level, const char *msg)
{
	struct logs *l = ctx;
	l->total++;
	if (level >= 3) {
		l->errors++;
		snprintf(l->last_error, sizeof l->last_error, "%s", msg);
	}
}

static struct vigil_member mem(const char *name, const char *addr, uint16_t port,
			       enum vigil_status s)
{
	struct vigil_member m;
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "%s", name);
	snprintf(m.addr, sizeof m.addr, "%s", addr);
	m.port = port;
	m.status = s;
	return m;
}

TEST(snapshotter_corrupt_file_gives_one_error_and_fresh_start)
{
	char path[300], aside[320];
	path_in(path, sizeof path, "corrupt-open");
	snprintf(aside, sizeof aside, "%s.corrupt", path);
	size_t len;
	char *img = sample_image(&len, false);
	REQUIRE(img != NULL);
	REQUIRE(write_raw(path, img, len - 5) == 0); /* truncated */
	struct logs lg = {0};
	struct snapshotter_config cfg = {.path = path, .self = "me", .log = count_log,
					 .log_ctx = &lg};
	struct snap_state st;
	struct snapshotter *s = snapshotter_open(&cfg, &st);
	REQUIRE(s != NULL);
	CHECK_EQ_INT(lg.errors, 1);
	CHECK(strstr(lg.last_error, "corrupt") != NULL);
	CHECK(strstr(lg.last_error, "starting fresh") != NULL);
	CHECK_EQ_INT(st.n_alive, 0);
	CHECK_EQ_INT(st.clock, 0);
	CHECK(exists(aside));      /* kept for a post-mortem */
	CHECK(!exists(path));
	/* the next write makes a good file again */
	struct vigil_member m[1] = {mem("me", "127.0.0.1", 7000, VIGIL_STATUS_ALIVE)};
	CHECK_EQ_INT(snapshotter_write(s, m, 1, 0), SNAP_OK);
	snap_state_free(&st);
	CHECK_EQ_INT(snap_load(path, false, &st, NULL, 0), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 1);
	snap_state_free(&st);
	snapshotter_free(s);
	CHECK_EQ_INT(lg.errors, 1);

	/* binary garbage, same story */
	unsigned char junk[300];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)next_rand();
	REQUIRE(write_raw(path, junk, sizeof junk) == 0);
	memset(&lg, 0, sizeof lg);
	s = snapshotter_open(&cfg, &st);
	REQUIRE(s != NULL);
	CHECK_EQ_INT(lg.errors, 1);
	CHECK_EQ_INT(st.n_alive, 0);
	snap_state_free(&st);
	snapshotter_free(s);
	free(img);
}

TEST(snapshotter_writes_debounced_state)
{
	char path[300];
	path_in(path, sizeof path, "writer");
	unlink(path);
	struct logs lg = {0};
	struct snapshotter_config cfg = {.path = path, .self = "me", .log = count_log,
					 .log_ctx = &lg};
	struct snap_state st;
	struct snapshotter *s = snapshotter_open(&cfg, &st);
	REQUIRE(s != NULL);
	snap_state_free(&st);
	CHECK(snapshotter_next_deadline(s) <= 0); /* write at once */
	struct vigil_member m[4] = {
		mem("me", "127.0.0.1", 7000, VIGIL_STATUS_ALIVE),
		mem("b", "::1", 7001, VIGIL_STATUS_ALIVE),
		mem("c", "127.0.0.3", 7002, VIGIL_STATUS_FAILED),
		mem("d", "127.0.0.4", 7003, VIGIL_STATUS_LEAVING),
	};
	snapshotter_note_clocks(s, 10, 5, 2);
	CHECK_EQ_INT(snapshotter_write(s, m, 4, 1000), SNAP_OK);
	CHECK_EQ_INT(snapshotter_next_deadline(s), INT64_MAX);
	CHECK_EQ_INT(snap_load(path, false, &st, NULL, 0), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 3);
	CHECK(find_node(&st, "b") && strcmp(find_node(&st, "b")->addr, "[::1]:7001") == 0);
	CHECK(find_node(&st, "c") == NULL);
	CHECK(find_node(&st, "d") != NULL);
	CHECK_EQ_INT(st.clock, 9);      /* Lamport time - 1, as serf */
	CHECK_EQ_INT(st.event_clock, 4);
	CHECK_EQ_INT(st.query_clock, 1);
	snap_state_free(&st);

	/* a change: due one flush interval after the last write */
	snapshotter_mark_dirty(s);
	CHECK_EQ_INT(snapshotter_next_deadline(s), 1000 + SNAP_FLUSH_INTERVAL_MS);
	/* unchanged state: no write needed, not dirty afterwards */
	CHECK_EQ_INT(snapshotter_write(s, m, 4, 1500), SNAP_OK);
	CHECK_EQ_INT(snapshotter_next_deadline(s), INT64_MAX);
	/* same clocks again: nothing to do */
	snapshotter_note_clocks(s, 10, 5, 2);
	CHECK_EQ_INT(snapshotter_next_deadline(s), INT64_MAX);
	snapshotter_note_clocks(s, 11, 5, 2);
	CHECK(snapshotter_next_deadline(s) != INT64_MAX);

	/* graceful leave: written at once; the member part freezes */
	CHECK_EQ_INT(snapshotter_leave(s, m, 4, 1600), SNAP_OK);
	CHECK(snapshotter_left(s));
	m[1].status = VIGIL_STATUS_FAILED;
	snapshotter_note_clocks(s, 15, 5, 2);
	CHECK_EQ_INT(snapshotter_write(s, m, 4, 2200), SNAP_OK);
	CHECK_EQ_INT(snap_load(path, true, &st, NULL, 0), SNAP_OK);
	CHECK(st.leave);
	CHECK(find_node(&st, "b") != NULL);
	CHECK_EQ_INT(st.clock, 14);
	snap_state_free(&st);
	CHECK_EQ_INT(snap_load(path, false, &st, NULL, 0), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 0);
	CHECK_EQ_INT(st.clock, 14);
	snap_state_free(&st);
	snapshotter_free(s);
	CHECK_EQ_INT(lg.errors, 0);
}

TEST(snapshotter_carries_over_unreached_nodes)
{
	char path[300], err[256];
	path_in(path, sizeof path, "carry");
	const char *prev = "alive: me 127.0.0.1:1\nalive: far 10.1.1.1:7946\n"
			   "alive: gone 10.1.1.2:7946\nalive: back 10.1.1.3:7946\nclock: 7\n";
	REQUIRE(snap_write_file(path, prev, strlen(prev), err, sizeof err) == SNAP_OK);
	struct snapshotter_config cfg = {.path = path, .self = "me"};
	struct snap_state st;
	struct snapshotter *s = snapshotter_open(&cfg, &st);
	REQUIRE(s != NULL);
	CHECK_EQ_INT(st.n_alive, 4);
	CHECK_EQ_INT(st.clock, 7);
	snap_state_free(&st);
	/* we are back on a new port; "gone" failed since; "far" never heard of */
	struct vigil_member m[3] = {
		mem("me", "127.0.0.1", 2, VIGIL_STATUS_ALIVE),
		mem("gone", "10.1.1.2", 7946, VIGIL_STATUS_FAILED),
		mem("back", "10.1.1.9", 7946, VIGIL_STATUS_ALIVE),
	};
	snapshotter_note_clocks(s, 8, 0, 0);
	CHECK_EQ_INT(snapshotter_write(s, m, 3, 0), SNAP_OK);
	CHECK_EQ_INT(snap_load(path, false, &st, NULL, 0), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 3);
	CHECK(find_node(&st, "far") != NULL);
	CHECK(find_node(&st, "gone") == NULL);
	CHECK(find_node(&st, "back") && strcmp(find_node(&st, "back")->addr, "10.1.1.9:7946") == 0);
	CHECK(find_node(&st, "me") && strcmp(find_node(&st, "me")->addr, "127.0.0.1:2") == 0);
	CHECK_EQ_INT(st.clock, 7);
	snap_state_free(&st);
	/* once "far" is known, the table speaks for it */
	struct vigil_member m2[2] = {m[0], mem("far", "10.1.1.1", 7946, VIGIL_STATUS_LEFT)};
	snapshotter_mark_dirty(s);
	CHECK_EQ_INT(snapshotter_write(s, m2, 2, 600), SNAP_OK);
	struct vigil_member m3[1] = {m[0]};   /* ... even after it is reaped */
	snapshotter_mark_dirty(s);
	CHECK_EQ_INT(snapshotter_write(s, m3, 1, 1200), SNAP_OK);
	CHECK_EQ_INT(snap_load(path, false, &st, NULL, 0), SNAP_OK);
	CHECK_EQ_INT(st.n_alive, 1);
	snap_state_free(&st);
	snapshotter_free(s);
}

/* ------------------------------------------------- through vigil_create */

struct vnode {
	vigil_t *v;
	struct logs lg;
};

static void vlog_cb(void *ctx, int level, const char *msg)
{
	struct vnode *n = ctx;
	count_log(&n->lg, level, msg);
	if (getenv("SNAP_TEST_VERBOSE"))
		printf("#   [%d] %s\n", level, msg);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_vnode(struct vnode *n, const char *name, const char *snap, bool rejoin)
{
	struct vigil_config cfg;
	vigil_config_default(&cfg);
	snprintf(cfg.name, sizeof cfg.name, "%s", name);
	snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "127.0.0.1");
	cfg.bind_port = 0;
	cfg.probe_interval_ms = 200;
	cfg.probe_timeout_ms = 100;
	cfg.gossip_interval_ms = 50;
	cfg.snapshot_path = snap;
	cfg.rejoin_after_leave = rejoin;
	cfg.on_log = vlog_cb;
	cfg.ctx = n;
	memset(n, 0, sizeof *n);
	char err[256] = "";
	if (vigil_create(&cfg, &n->v, err, sizeof err) != 0) {
		printf("# vigil_create(%s): %s\n", name, err);
		return -1;
	}
	return 0;
}

static void run_nodes(struct vnode **ns, int k, int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end) {
		struct pollfd fds[64];
		int n = 0;
		for (int i = 0; i < k; i++)
			n += vigil_pollfds(ns[i]->v, fds + n, 64 - n);
		poll(fds, (nfds_t)n, 10);
		for (int i = 0; i < k; i++)
			vigil_step(ns[i]->v);
	}
}

static double stat_of(vigil_t *v, const char *name)
{
	struct vigil_stat st[128];
	int n = vigil_stats(v, st, 128);
	for (int i = 0; i < n; i++)
		if (strcmp(st[i].name, name) == 0)
			return st[i].value;
	return -1;
}

static bool sees_alive(vigil_t *v, const char *name)
{
	struct vigil_member *m;
	size_t n;
	bool found = false;
	if (vigil_members(v, &m, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0 && m[i].status == VIGIL_STATUS_ALIVE)
			found = true;
	vigil_members_free(m, n);
	return found;
}

static int local_port(vigil_t *v, const char *name)
{
	struct vigil_member *m;
	size_t n;
	int port = -1;
	if (vigil_members(v, &m, &n) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0)
			port = m[i].port;
	vigil_members_free(m, n);
	return port;
}

/*
 * Issue 15: a symlink planted at PATH.tmp must not be followed, by any of
 * the three crash-safe writers (they share src/safefile.c).  Old code opened
 * PATH.tmp with O_CREAT|O_TRUNC and wrote through the link into the victim.
 */
static bool victim_intact(const char *victim)
{
	size_t n = 0;
	char *got = read_raw(victim, &n);
	bool ok = got && n == 6 && memcmp(got, "victim", 6) == 0;
	free(got);
	return ok;
}

static void plant_symlink(const char *path, const char *victim)
{
	char tmp[340];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	write_raw(victim, "victim", 6);
	if (symlink(victim, tmp) != 0)
		printf("# symlink: %s\n", strerror(errno));
}

TEST(writers_never_follow_a_planted_tmp_symlink)
{
	char path[300], victim[300], err[256];
	size_t l1;
	char *img = sample_image(&l1, false);
	REQUIRE(img);
	path_in(victim, sizeof victim, "victim");

	/* snapshot */
	path_in(path, sizeof path, "snap-link");
	plant_symlink(path, victim);
	CHECK_EQ_INT(snap_write_file(path, img, l1, err, sizeof err), SNAP_OK);
	CHECK(victim_intact(victim));
	struct snap_state st;
	CHECK_EQ_INT(snap_load(path, false, &st, err, sizeof err), SNAP_OK);
	snap_state_free(&st);
	struct stat sb;
	CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0600);

	/* keyring file */
	path_in(path, sizeof path, "keyring-link");
	plant_symlink(path, victim);
	struct vigil_keyring *kr = vigil_keyring_new();
	REQUIRE(kr);
	uint8_t key[16] = {1, 2, 3};
	CHECK_EQ_INT(vigil_keyring_add(kr, key, sizeof key), 0);
	CHECK_EQ_INT(vigil_keyring_save_file(kr, path), 0);
	vigil_keyring_free(kr);
	CHECK(victim_intact(victim));
	CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0600);

	/* will state: written by a vigil whose snapshot is PATH (state PATH.will) */
	path_in(path, sizeof path, "will-link");
	char wpath[320];
	snprintf(wpath, sizeof wpath, "%s.will", path);
	plant_symlink(wpath, victim);
	struct vnode n;
	REQUIRE(make_vnode(&n, "w", path, false) == 0);
	CHECK_EQ_INT(vigil_will_set(n.v, "someone", NULL, 1000, (const uint8_t *)"bye", 3), 0);
	vigil_destroy(n.v);
	CHECK(victim_intact(victim));
	CHECK(lstat(wpath, &sb) == 0 && S_ISREG(sb.st_mode));
	unlink(path);
	unlink(wpath);
	free(img);
}

/* A corrupt will state file is moved aside (PATH.corrupt), not overwritten. */
TEST(corrupt_will_state_is_moved_aside)
{
	char path[300], wpath[320], aside[340];
	path_in(path, sizeof path, "will-corrupt");
	snprintf(wpath, sizeof wpath, "%s.will", path);
	snprintf(aside, sizeof aside, "%s.corrupt", wpath);
	unlink(aside);
	REQUIRE(write_raw(wpath, "VWIL garbage, not a will state", 30) == 0);
	struct vnode n;
	REQUIRE(make_vnode(&n, "w", path, false) == 0);
	CHECK(exists(aside));
	size_t len = 0;
	char *got = read_raw(aside, &len);
	CHECK(got && len == 30 && memcmp(got, "VWIL garbage", 12) == 0);
	free(got);
	CHECK(n.lg.errors >= 1 && strstr(n.lg.last_error, ".corrupt") != NULL);
	vigil_destroy(n.v);
	unlink(path);
	unlink(wpath);
	unlink(aside);
}

TEST(vigil_restores_clocks_and_rejoins)
{
	char snap[300], err[256];
	path_in(snap, sizeof snap, "node-b.snap");
	unlink(snap);
	struct vnode a, b;
	REQUIRE(make_vnode(&a, "a", NULL, false) == 0);
	/* clocks the restarted node must not go below */
	int pa = local_port(a.v, "a");
	REQUIRE(pa > 0);
	char seed[64];
	snprintf(seed, sizeof seed, "127.0.0.1:%d", pa);
	char body[512];
	int bl = snprintf(body, sizeof body,
			  "alive: a %s\nalive: nobody 127.0.0.1:1\nclock: 40\n"
			  "event-clock: 30\nquery-clock: 20\n", seed);
	REQUIRE(snap_write_file(snap, body, (size_t)bl, err, sizeof err) == SNAP_OK);

	REQUIRE(make_vnode(&b, "b", snap, false) == 0);
	CHECK(stat_of(b.v, "member_time") >= 41);
	CHECK(stat_of(b.v, "event_time") >= 31);
	CHECK(stat_of(b.v, "query_time") >= 21);
	struct vnode *both[2] = {&a, &b};
	int64_t end = now_ms() + 8000;
	while (now_ms() < end && !(sees_alive(a.v, "b") && sees_alive(b.v, "a")))
		run_nodes(both, 2, 50);
	CHECK(sees_alive(a.v, "b"));   /* re-joined with no join call */
	CHECK(sees_alive(b.v, "a"));
	CHECK_EQ_INT(b.lg.errors, 0);
	run_nodes(both, 2, 700);        /* a debounced write happens */
	struct snap_state st;
	CHECK_EQ_INT(snap_load(snap, false, &st, err, sizeof err), SNAP_OK);
	CHECK(st.vigil_format);
	CHECK(find_node(&st, "a") != NULL);
	CHECK(find_node(&st, "b") != NULL);
	CHECK(st.clock >= 40);
	CHECK(st.event_clock >= 30);
	snap_state_free(&st);

	/* graceful leave: recorded; a restart without rejoin stays alone */
	CHECK_EQ_INT(vigil_leave(b.v), 0);
	end = now_ms() + 5000;
	while (now_ms() < end && !vigil_leave_done(b.v))
		run_nodes(both, 2, 20);
	vigil_destroy(b.v);
	CHECK_EQ_INT(snap_load(snap, false, &st, err, sizeof err), SNAP_OK);
	CHECK(st.leave);
	CHECK_EQ_INT(st.n_alive, 0);
	snap_state_free(&st);
	struct vnode *just_a[1] = {&a};
	run_nodes(just_a, 1, 300);
	REQUIRE(make_vnode(&b, "b", snap, false) == 0);
	run_nodes(both, 2, 1500);
	CHECK(!sees_alive(b.v, "a"));
	CHECK(!sees_alive(a.v, "b"));
	vigil_destroy(b.v);

	/* ... with rejoin_after_leave it re-joins */
	REQUIRE(make_vnode(&b, "b", snap, true) == 0);
	end = now_ms() + 8000;
	while (now_ms() < end && !(sees_alive(a.v, "b") && sees_alive(b.v, "a")))
		run_nodes(both, 2, 50);
	CHECK(sees_alive(a.v, "b"));
	vigil_destroy(b.v);

	/* corrupt: one error line, a fresh start (alone), no crash */
	REQUIRE(write_raw(snap, "alive: a 127.0.0.1:1\nclock: 1\n\x01\x02 garbage\n", 40) == 0);
	REQUIRE(make_vnode(&b, "b", snap, false) == 0);
	CHECK_EQ_INT(b.lg.errors, 1);
	CHECK(strstr(b.lg.last_error, "corrupt") != NULL);
	run_nodes(both, 2, 300);
	CHECK(!sees_alive(b.v, "a"));
	CHECK_EQ_INT(snap_load(snap, false, &st, err, sizeof err), SNAP_OK);
	CHECK(find_node(&st, "b") != NULL);
	snap_state_free(&st);
	vigil_destroy(b.v);
	vigil_destroy(a.v);

	/* a snapshot path we cannot write fails create, like serf */
	struct vnode c;
	CHECK(make_vnode(&c, "c", "/nonexistent-dir/snap", false) != 0);
}

static void all_done(void)
{
	cleanup_tmpdir();
}

static int run_all(int argc, char **argv);

int main(int argc, char **argv)
{
	atexit(all_done);
	return run_all(argc, argv);
}

#define main run_all_main_
TEST_MAIN(render_parse_roundtrip, render_skips_unsafe_entries, leave_semantics_like_serf,
	  reads_serf_written_log, serf_log_partial_last_line, every_truncation_is_refused,
	  damaged_files_are_refused, random_bytes_are_refused,
	  crash_before_rename_keeps_old_file, writers_never_follow_a_planted_tmp_symlink,
	  corrupt_will_state_is_moved_aside,
	  sigkill_during_writes_never_leaves_a_torn_file,
	  snapshotter_corrupt_file_gives_one_error_and_fresh_start,
	  snapshotter_writes_debounced_state, snapshotter_carries_over_unreached_nodes,
	  vigil_restores_clocks_and_rejoins)
#undef main

static int run_all(int argc, char **argv)
{
	return run_all_main_(argc, argv);
}
