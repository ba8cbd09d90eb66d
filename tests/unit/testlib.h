/*
 * testlib.h — tiny header-only unit test harness for vigil.
 *
 *   #include "testlib.h"
 *
 *   TEST(encodes_ping) {
 *       CHECK(x != NULL);
 *       CHECK_EQ_INT(len, 12);
 *       CHECK_EQ_STR(name, "node-a");
 *       CHECK_MEM(buf, expected, sizeof expected);
 *       REQUIRE(p != NULL);          // on failure: stop this test
 *   }
 *
 *   TEST_MAIN(encodes_ping, decodes_ping)
 *
 * Output (stdout, line buffered) per test: diagnostics as "# file:line: ..."
 * lines, then "ok - <name>" or "not ok - <name>"; finally a summary
 * "# <N> passed, <N> failed".  main() returns 1 if any test failed.
 * `./test_x substr` runs only tests whose name contains substr.
 *
 * One translation unit per test binary: the failure counter is file-static.
 */
#ifndef VIGIL_TESTLIB_H
#define VIGIL_TESTLIB_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEST(name) static void name(void)

static int testlib_fails_ __attribute__((unused));
static const char *testlib_skip_ __attribute__((unused));

/* Ends the (void) test function as skipped, with the reason: the runner
 * reports "ok - name # SKIP reason" as a skip, never as a pass, so a test
 * that could not run its checks does not look like one that passed them. */
#define SKIP(reason)                                                         \
    do {                                                                     \
        testlib_skip_ = (reason);                                            \
        return;                                                              \
    } while (0)

__attribute__((format(printf, 3, 4), unused))
static void testlib_fail_(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    testlib_fails_++;
    printf("# %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond))                                                         \
            testlib_fail_(__FILE__, __LINE__, "CHECK(%s) failed", #cond);    \
    } while (0)

/* Like CHECK, but returns from the (void) test function on failure. */
#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            testlib_fail_(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);  \
            return;                                                          \
        }                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                   \
    do {                                                                     \
        long long testlib_a_ = (long long)(a);                               \
        long long testlib_b_ = (long long)(b);                               \
        if (testlib_a_ != testlib_b_)                                        \
            testlib_fail_(__FILE__, __LINE__,                                \
                          "CHECK_EQ_INT(%s, %s): %lld != %lld", #a, #b,      \
                          testlib_a_, testlib_b_);                           \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                   \
    do {                                                                     \
        const char *testlib_a_ = (a);                                        \
        const char *testlib_b_ = (b);                                        \
        if (testlib_a_ == NULL || testlib_b_ == NULL                         \
                ? testlib_a_ != testlib_b_                                   \
                : strcmp(testlib_a_, testlib_b_) != 0)                       \
            testlib_fail_(__FILE__, __LINE__,                                \
                          "CHECK_EQ_STR(%s, %s): \"%s\" != \"%s\"", #a, #b,  \
                          testlib_a_ ? testlib_a_ : "(null)",                \
                          testlib_b_ ? testlib_b_ : "(null)");               \
    } while (0)

__attribute__((unused))
static void testlib_check_mem_(const char *file, int line, const char *ea,
                               const char *eb, const void *a, const void *b,
                               size_t n)
{
    const unsigned char *pa = a, *pb = b;
    size_t i, off, end;
    if (n == 0 || (pa && pb && memcmp(pa, pb, n) == 0))
        return;
    if (!pa || !pb) {
        testlib_fail_(file, line, "CHECK_MEM(%s, %s, %zu): NULL pointer",
                      ea, eb, n);
        return;
    }
    for (off = 0; pa[off] == pb[off]; off++)
        ;
    testlib_fail_(file, line,
                  "CHECK_MEM(%s, %s, %zu): first difference at offset %zu",
                  ea, eb, n, off);
    i = off > 8 ? off - 8 : 0;
    end = off + 24 < n ? off + 24 : n;
    printf("#   @%zu  got:", i);
    for (size_t j = i; j < end; j++)
        printf(" %02x", pa[j]);
    printf("\n#   @%zu want:", i);
    for (size_t j = i; j < end; j++)
        printf(" %02x", pb[j]);
    putchar('\n');
    fflush(stdout);
}

#define CHECK_MEM(a, b, n)                                                   \
    testlib_check_mem_(__FILE__, __LINE__, #a, #b, (a), (b), (size_t)(n))

/*
 * For tests that bound work with a clock: the calling thread's CPU time in
 * ms (not wall time, which the other processes on a shared machine move),
 * and how much slower the sanitizer build is allowed to be (ASan intercepts
 * every allocation, also those of uninstrumented libraries).
 */
__attribute__((unused))
static double testlib_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
#ifdef __SANITIZE_ADDRESS__
#define TESTLIB_SLOWDOWN_BUILD 2.0
#else
#define TESTLIB_SLOWDOWN_BUILD 1.0
#endif
/* VIGIL_TEST_SLOWDOWN=F scales it further for runs under an instrumenting
 * tool (tests/memcheck runs valgrind, some 50x slower): there the unit
 * tests look for memory errors, and a time bound only has to hold in the
 * plain and ASan builds. */
__attribute__((unused))
static double testlib_slowdown(void)
{
    const char *e = getenv("VIGIL_TEST_SLOWDOWN");
    double f = e ? atof(e) : 1.0;
    return TESTLIB_SLOWDOWN_BUILD * (f >= 1.0 ? f : 1.0);
}
#define TESTLIB_SLOWDOWN (testlib_slowdown())

/* Splits "a, b ,c" (the stringified TEST_MAIN arguments) into names. */
__attribute__((unused))
static int testlib_run_(const char *names, void (*const *fns)(void),
                        size_t nfns, int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *p = names;
    int passed = 0, failed = 0, skipped = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < nfns; i++) {
        char name[128];
        size_t len = 0;
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n')
            p++;
        while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n') {
            if (len + 1 < sizeof name)
                name[len++] = *p;
            p++;
        }
        name[len] = '\0';
        if (filter && !strstr(name, filter))
            continue;
        testlib_fails_ = 0;
        testlib_skip_ = NULL;
        fns[i]();
        if (testlib_fails_) {
            printf("not ok - %s\n", name);
            failed++;
        } else if (testlib_skip_) {
            printf("ok - %s # SKIP %s\n", name, testlib_skip_);
            skipped++;
        } else {
            printf("ok - %s\n", name);
            passed++;
        }
        fflush(stdout);
    }
    if (skipped)
        printf("# %d skipped\n", skipped);
    printf("# %d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

#define TEST_MAIN(...)                                                       \
    int main(int argc, char **argv)                                          \
    {                                                                        \
        static void (*const testlib_fns_[])(void) = { __VA_ARGS__ };         \
        return testlib_run_(#__VA_ARGS__, testlib_fns_,                      \
                            sizeof testlib_fns_ / sizeof testlib_fns_[0],    \
                            argc, argv);                                     \
    }

#endif /* VIGIL_TESTLIB_H */
