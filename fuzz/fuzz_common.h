/*
 * fuzz_common.h — helpers shared by the libFuzzer targets in fuzz/.
 *
 * Every target is one fuzz/fuzz_<name>.c defining LLVMFuzzerTestOneInput;
 * see docs/FUZZING.md for how they are built and run.
 *
 *   FUZZ_ASSERT(cond)      an invariant: print where and abort (libFuzzer
 *                          then saves the input as a crash)
 *   fuzz_touch(p, n)       read every byte of a view so ASan proves that a
 *                          decoder's output points at live memory
 *   struct fuzz_in         a cursor over the input for targets that carve
 *                          it into several pieces
 */
#ifndef VIGIL_FUZZ_COMMON_H
#define VIGIL_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", \
				__FILE__, __LINE__, #cond);                  \
			abort();                                             \
		}                                                            \
	} while (0)

#define FUZZ_ASSERTF(cond, ...)                                              \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: fuzz invariant failed: %s: ", \
				__FILE__, __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/*
 * ASan's default quarantine keeps 256 MB of freed blocks, so every
 * allocation lands on fresh pages; msgpack-c allocates an 8 KiB zone per
 * decode and that page-faulting halves the speed of the stateful targets.
 * 16 MB still holds the frees of dozens of inputs, plenty to catch a
 * use-after-free within one.  ASAN_OPTIONS in the environment overrides.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}

static volatile uint8_t fuzz_sink_ __attribute__((unused));

/* Read all n bytes at p (n == 0 with p == NULL is fine). */
__attribute__((unused)) static void fuzz_touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t acc = 0;
	if (n)
		FUZZ_ASSERT(b != NULL);
	for (size_t i = 0; i < n; i++)
		acc ^= b[i];
	fuzz_sink_ = acc;
}

/* A NUL-terminated string inside an array of cap bytes. */
__attribute__((unused)) static size_t fuzz_cstr(const char *s, size_t cap)
{
	const char *z = memchr(s, 0, cap);
	FUZZ_ASSERT(z != NULL);
	return (size_t)(z - s);
}

/* True when [q, q+m) lies inside [p, p+n). */
__attribute__((unused)) static bool fuzz_within(const void *q, size_t m, const void *p,
						size_t n)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)q;
	if (m == 0)
		return true;
	return b >= a && b - a <= n && m <= n - (b - a);
}

/*
 * Known, already reported library bugs that a long campaign may step over
 * so that it can look for new ones: VIGIL_FUZZ_KNOWN="id1,id2" in the
 * environment.  Nothing is tolerated by default (smoke runs and regression
 * replays fail until the bug is fixed).  Ids are listed in
 * fuzz/regressions/README.md.
 */
__attribute__((unused)) static bool fuzz_known(const char *id)
{
	const char *k = getenv("VIGIL_FUZZ_KNOWN");
	size_t n = strlen(id);
	while (k && *k) {
		const char *e = strchr(k, ',');
		size_t l = e ? (size_t)(e - k) : strlen(k);
		if (l == n && memcmp(k, id, n) == 0)
			return true;
		k = e ? e + 1 : NULL;
	}
	return false;
}

/* ---- input cursor ---- */

struct fuzz_in {
	const uint8_t *p;
	size_t len;
};

__attribute__((unused)) static uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (in->len == 0)
		return 0;
	uint8_t v = in->p[0];
	in->p++;
	in->len--;
	return v;
}

__attribute__((unused)) static uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t hi = fuzz_u8(in);
	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Take up to n bytes (fewer at the end of the input). */
__attribute__((unused)) static const uint8_t *fuzz_take(struct fuzz_in *in, size_t n,
							size_t *got)
{
	const uint8_t *p = in->p;
	if (n > in->len)
		n = in->len;
	in->p += n;
	in->len -= n;
	*got = n;
	return p;
}

/*
 * Copy a piece into its own heap block so that ASan catches a read one
 * byte past it (the fuzzer's own buffer may have slack after a piece).
 */
__attribute__((unused)) static uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	FUZZ_ASSERT(d != NULL);
	if (n)
		memcpy(d, p, n);
	return d;
}

#endif
