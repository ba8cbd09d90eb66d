/*
 * goregex.h — Go regexp (RE2 syntax) for every filter vigil evaluates:
 * query tag filters arriving from other members (serf's
 * regexp.MatchString(expr, tag)) and the RPC members filters (serf's
 * regexp.Compile("^" + expr + "$")).
 *
 * Backed by RE2, whose syntax is Go's and whose matching time is linear
 * in the text: a pattern of a peer's or a client's choosing cannot make
 * vigil backtrack.  Compilation is bounded too (GOREGEX_MAX_LEN bytes of
 * pattern, GOREGEX_BUDGET instructions per message or request).  Patterns Go refuses are refused,
 * with Go's error text.  The implementation is C++ (goregex.cc); this
 * interface is plain C.
 */
#ifndef VIGIL_GOREGEX_H
#define VIGIL_GOREGEX_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest pattern accepted, in bytes (compile time grows with it; serf
 * sends no query over 1,024 bytes, filters included). */
#define GOREGEX_MAX_LEN 1024

/*
 * Work budget, in RE2 program instructions, of all the expressions one
 * message or request evaluates (a query's tag filters, a members request's
 * name, status and tag filters).  RE2 matches in O(text x program) at
 * worst: at 1,250 instructions the costliest pattern found, ([ -~]{1,24})
 * {1,24}$, compiles and matches a 512-byte text in ~5 ms of CPU
 * (tests/unit/test_goregex.c).  It admits \pL (1,200 instructions) and
 * .{0,130}; Go, without such a cap, also accepts larger ones (.{0,999}).
 */
#define GOREGEX_BUDGET 1250

struct goregex;

/*
 * Compiles pat[0..len) (may contain NUL bytes, like a Go string) and
 * charges its cost to *budget (start it at GOREGEX_BUDGET; NULL: the
 * expression has a budget of its own).  On failure returns NULL, leaves
 * *budget alone and, if err is not NULL, writes Go's message, e.g.
 * "error parsing regexp: missing closing ): `(`" ("expression too large"
 * for one over the budget), or "out of memory".
 */
struct goregex *goregex_compile(const char *pat, size_t len, size_t *budget, char *err,
				size_t errlen);

/* Go's (*Regexp).MatchString: does re match anywhere in text[0..len)? */
bool goregex_match(const struct goregex *re, const char *text, size_t len);

void goregex_free(struct goregex *re);

#ifdef __cplusplus
}
#endif

#endif
