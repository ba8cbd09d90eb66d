/*
 * fuzz_snapshot — the -snapshot file parser (src/snapshot.c), which reads a
 * file that a crash, a full disk or a hand edit may have left in any state.
 *
 *   1. snap_parse of the input, with and without rejoin_after_leave.  The
 *      result is OK, CORRUPT or ENOMEM; anything but OK leaves an empty
 *      state and a NUL-terminated error.  An OK state has well-formed,
 *      unique node names and addresses.
 *   2. What the parser accepted renders (snap_render, as the snapshotter
 *      writes it, with the pre-leave part as prefix) to a vigil-format file
 *      that parses back to the same nodes, clocks and pre-leave part.
 *   3. That rendered file is truncation-proof: cut anywhere (a few cut
 *      points chosen from the input) it is refused as corrupt; flipping one
 *      byte of it is refused too (the "# end" trailer's CRC), unless the
 *      flip hits only the trailer's own digits in a way that still
 *      mismatches — it must never parse to a different state.
 */
#include "fuzz_common.h"
#include "snapshot.h"

static void check_state(const struct snap_state *s)
{
	for (size_t i = 0; i < s->n_alive; i++) {
		size_t nl = fuzz_cstr(s->alive[i].name, sizeof s->alive[i].name);
		FUZZ_ASSERT(nl > 0);
		fuzz_cstr(s->alive[i].addr, sizeof s->alive[i].addr);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERTF(strcmp(s->alive[i].name, s->alive[j].name) != 0,
				     "%s listed twice", s->alive[i].name);
	}
	for (size_t i = 0; i < s->n_pre_leave; i++) {
		FUZZ_ASSERT(fuzz_cstr(s->pre_leave[i].name, sizeof s->pre_leave[i].name) > 0);
		fuzz_cstr(s->pre_leave[i].addr, sizeof s->pre_leave[i].addr);
	}
	FUZZ_ASSERT(!s->leave_ignored || s->leave);
}

static void check_empty(const struct snap_state *s)
{
	FUZZ_ASSERT(s->n_alive == 0 && s->alive == NULL);
	FUZZ_ASSERT(s->n_pre_leave == 0 && s->pre_leave == NULL);
	FUZZ_ASSERT(s->clock == 0 && s->event_clock == 0 && s->query_clock == 0);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct snap_node *)a)->name, ((const struct snap_node *)b)->name);
}

/*
 * The same nodes at the same addresses.  As sets: a node named again after
 * a "leave" keeps its first slot, so file order need not survive (serf
 * replays into a map; order carries no meaning).
 */
static bool same_nodes(const struct snap_node *a, size_t na, const struct snap_node *b,
		       size_t nb)
{
	if (na != nb)
		return false;
	if (na == 0)
		return true;
	struct snap_node *sa = malloc(na * sizeof *sa), *sb = malloc(nb * sizeof *sb);
	FUZZ_ASSERT(sa && sb);
	memcpy(sa, a, na * sizeof *sa);
	memcpy(sb, b, nb * sizeof *sb);
	qsort(sa, na, sizeof *sa, by_name);
	qsort(sb, nb, sizeof *sb, by_name);
	bool same = true;
	for (size_t i = 0; i < na && same; i++)
		same = strcmp(sa[i].name, sb[i].name) == 0 && strcmp(sa[i].addr, sb[i].addr) == 0;
	free(sa);
	free(sb);
	return same;
}

static void roundtrip(const struct snap_state *s, const uint8_t *data, size_t size)
{
	struct snap_image img;
	memset(&img, 0, sizeof img);
	img.has_prefix = s->n_pre_leave > 0;
	img.pre_alive = s->pre_leave;
	img.n_pre_alive = s->n_pre_leave;
	img.pre_clock = s->pre_clock;
	img.pre_event_clock = s->pre_event_clock;
	img.pre_query_clock = s->pre_query_clock;
	img.alive = s->alive;
	img.n_alive = s->n_alive;
	img.clock = s->clock;
	img.event_clock = s->event_clock;
	img.query_clock = s->query_clock;

	char *file = NULL, err[256];
	size_t len = 0;
	int rc = snap_render(&img, &file, &len);
	if (rc == SNAP_ENOMEM)
		return;
	FUZZ_ASSERT(rc == SNAP_OK && file && len > 0 && file[len] == '\0');

	struct snap_state back;
	rc = snap_parse(file, len, false, &back, err, sizeof err);
	FUZZ_ASSERTF(rc == SNAP_OK, "our own rendering is refused: %s", err);
	FUZZ_ASSERT(back.vigil_format && !back.dropped_partial);
	FUZZ_ASSERTF(same_nodes(back.alive, back.n_alive, s->alive, s->n_alive),
		     "alive nodes changed in the round trip");
	FUZZ_ASSERT(back.clock == s->clock && back.event_clock == s->event_clock &&
		    back.query_clock == s->query_clock);
	FUZZ_ASSERT(back.leave == img.has_prefix);
	FUZZ_ASSERTF(same_nodes(back.pre_leave, back.n_pre_leave, s->pre_leave, s->n_pre_leave),
		     "pre-leave nodes changed in the round trip");
	if (img.has_prefix)
		FUZZ_ASSERT(back.pre_clock == s->pre_clock &&
			    back.pre_event_clock == s->pre_event_clock &&
			    back.pre_query_clock == s->pre_query_clock);
	snap_state_free(&back);

	/* cut points and a flipped byte, picked by the input's first bytes */
	for (size_t k = 0; k < 4; k++) {
		size_t pick = k < size ? data[k] * 257u + (k + 1 < size ? data[k + 1] : 0) : k * 7919u;
		size_t cut = 1 + pick % (len - 1 ? len - 1 : 1);
		if (cut >= len)
			continue;
		rc = snap_parse(file, cut, false, &back, err, sizeof err);
		FUZZ_ASSERTF(rc == SNAP_ECORRUPT, "a vigil snapshot cut at %zu of %zu parses",
			     cut, len);
		fuzz_cstr(err, sizeof err);
		check_empty(&back);
		snap_state_free(&back);

		size_t at = pick % len;
		char saved = file[at];
		file[at] = (char)(saved ^ (char)(1u << (k % 8)));
		rc = snap_parse(file, len, false, &back, err, sizeof err);
		file[at] = saved;
		if (rc == SNAP_OK) {
			/* only possible if the flip left the header, so the file is
			 * now read as serf's format; it must still be sane */
			FUZZ_ASSERTF(at < strlen(SNAP_HEADER),
				     "byte %zu of %zu flipped and the file still parses", at,
				     len);
			check_state(&back);
		} else {
			check_empty(&back);
		}
		snap_state_free(&back);
	}
	free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	for (int rejoin = 0; rejoin < 2; rejoin++) {
		struct snap_state s;
		char err[128];
		memset(err, 'x', sizeof err);
		int rc = snap_parse(buf, size, rejoin, &s, err, sizeof err);
		fuzz_cstr(err, sizeof err);
		if (rc != SNAP_OK) {
			FUZZ_ASSERTF(rc == SNAP_ECORRUPT || rc == SNAP_ENOMEM, "rc %d", rc);
			check_empty(&s);
			continue;
		}
		check_state(&s);
		FUZZ_ASSERT(!rejoin || !s.pre_leave);
		if (!rejoin)
			roundtrip(&s, data, size);
		snap_state_free(&s);
	}
	return 0;
}
