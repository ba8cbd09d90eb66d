/*
 * test_goregex.c — src/goregex.c: Go's regexp syntax and answers, Go's
 * refusals and error texts, and the time bound on hostile patterns.
 */
#include "goregex.h"
#include "testlib.h"

#include <stdbool.h>
#include <string.h>

/* MatchString(pat, text) as Go answers it; -1 when Go refuses pat. */
static int go_match(const char *pat, const char *text)
{
	char err[256];
	struct goregex *re = goregex_compile(pat, strlen(pat), NULL, err, sizeof err);
	if (!re)
		return -1;
	int m = goregex_match(re, text, strlen(text));
	goregex_free(re);
	return m;
}

/* Answers Go's regexp.MatchString gives (checked with go1.19). */
TEST(go_syntax_matches_as_go)
{
	static const struct {
		const char *pat, *text;
		int want;
	} cases[] = {
		{"v\\d", "v1", 1},          /* POSIX has no \d */
		{"^v\\d$", "vx", 0},
		{"(?i)V1", "v1", 1},        /* POSIX refuses (?i) */
		{"(?i)^WEB$", "web", 1},
		{"^\\w+$", "web_1", 1},
		{"\\bdb\\b", "a db b", 1},
		{"^\\pL+$", "ünïcode", 1},  /* Unicode classes */
		{"^.$", "é", 1},            /* . is a character, not a byte */
		{"a+?b", "aab", 1},         /* non-greedy */
		{"^\\Qa.b\\E$", "a.b", 1},  /* quoted literal */
		{"^\\Qa.b\\E$", "axb", 0},
		{"^[[:alpha:]]+$", "abc", 1},
		{"^a$", "a\n", 0},          /* $ is the end of text, not before \n */
		{"(?m)^b$", "a\nb", 1},
		{"a.b", "a\nb", 0},         /* . excludes \n */
		{"(?s)a.b", "a\nb", 1},
		{"", "", 1},
		{"web", "", 0},             /* unanchored: MatchString searches */
		{"eb", "web", 1},
		{"^(a|ab)(c|bcd)(d*)$", "abcd", 1},
		{"\\x41", "A", 1},
		{"\\101", "A", 1},          /* octal escape */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = go_match(cases[i].pat, cases[i].text);
		if (got != cases[i].want)
			printf("# case %zu: /%s/ on \"%s\": got %d, want %d\n", i, cases[i].pat,
			       cases[i].text, got, cases[i].want);
		CHECK_EQ_INT(got, cases[i].want);
	}
}

/* What Go refuses, with Go's error text (go1.19's regexp.Compile). */
TEST(go_refusals_with_go_errors)
{
	static const struct {
		const char *pat, *err;
	} cases[] = {
		{"(a)\\1", "error parsing regexp: invalid escape sequence: `\\1`"},
		{"a(?=b)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"},
		{"(?<!a)b", "error parsing regexp: invalid or unsupported Perl syntax: `(?<`"},
		{"(", "error parsing regexp: missing closing ): `(`"},
		{"a)", "error parsing regexp: unexpected ): `a)`"},
		{"[a", "error parsing regexp: missing closing ]: `[a`"},
		{"*", "error parsing regexp: missing argument to repetition operator: `*`"},
		{"a**", "error parsing regexp: invalid nested repetition operator: `**`"},
		{"a{1001}", "error parsing regexp: invalid repeat count: `{1001}`"},
		{"[z-a]", "error parsing regexp: invalid character class range: `z-a`"},
		{"\\C", "error parsing regexp: invalid escape sequence: `\\C`"},  /* RE2 accepts */
		{"a\\", "error parsing regexp: trailing backslash at end of expression: ``"},
		{"\\Z", "error parsing regexp: invalid escape sequence: `\\Z`"},
		{"\\pX", "error parsing regexp: invalid character class range: `\\pX`"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "unchanged";
		struct goregex *re = goregex_compile(cases[i].pat, strlen(cases[i].pat), NULL,
						     err, sizeof err);
		CHECK(re == NULL);
		goregex_free(re);
		if (strcmp(err, cases[i].err) != 0)
			printf("# case %zu: /%s/: got \"%s\"\n", i, cases[i].pat, err);
		CHECK_EQ_STR(err, cases[i].err);
	}
	/* \C inside \Q...\E is a literal to Go too */
	CHECK_EQ_INT(go_match("\\Qa\\C\\E", "a\\C"), 1);
	/* Go's nesting limit (1000) */
	char deep[1002];
	memset(deep, '(', 1001);
	deep[1001] = '\0';
	char err[256];
	CHECK(goregex_compile(deep, 1001, NULL, err, sizeof err) == NULL);
	CHECK(strncmp(err, "error parsing regexp: expression nests too deeply: `(((", 55) == 0);
	memset(deep, '(', 500);   /* 500 deep: accepted */
	deep[500] = 'x';
	memset(deep + 501, ')', 500);
	CHECK_EQ_INT(go_match(deep, "x"), 1);
}

/* Patterns may hold NUL (a Go string) and texts are counted, not C strings. */
TEST(counted_strings)
{
	char err[128];
	struct goregex *re = goregex_compile("a\0b", 3, NULL, err, sizeof err);
	REQUIRE(re != NULL);
	CHECK(goregex_match(re, "xa\0b", 4));
	CHECK(!goregex_match(re, "xa", 2));
	goregex_free(re);
	CHECK(!goregex_match(NULL, "a", 1));
	goregex_free(NULL);
}

/* Issue 15's bound on one filter's compile + match (CPU time). */
#define BOUND_MS (10.0 * TESTLIB_SLOWDOWN)

/*
 * The bound issue 15 asks for: whatever the pattern, compiling it and
 * matching it against the longest text a filter sees (a tag value: node
 * meta is at most 512 bytes; names are shorter) takes under 10 ms of CPU.
 * The patterns are the reported attacks (glibc took 1.6 s and 0.4-5.5 s
 * per request), the classic backtracking killers and the costliest RE2
 * programs found within the budget, each as a gossip filter (unanchored)
 * and as an RPC members filter (^...$).
 */
TEST(hostile_patterns_bounded)
{
	static char big_alt[GOREGEX_MAX_LEN + 1], opt_a[GOREGEX_MAX_LEN + 1];
	static char deep[GOREGEX_MAX_LEN + 1];
	/* a?^n a^n, the textbook exponential case for a backtracker */
	size_t n = (GOREGEX_MAX_LEN - 2) / 3;
	for (size_t i = 0; i < n; i++) {
		opt_a[2 * i] = 'a';
		opt_a[2 * i + 1] = '?';
		opt_a[2 * n + i] = 'a';
	}
	/* (a|b|...|a|b|c) as long as allowed */
	big_alt[0] = '(';
	for (size_t i = 1; i + 2 < GOREGEX_MAX_LEN; i += 2) {
		big_alt[i] = "ab"[i % 4 == 1];
		big_alt[i + 1] = '|';
	}
	big_alt[GOREGEX_MAX_LEN - 2] = 'c';
	big_alt[GOREGEX_MAX_LEN - 1] = ')';
	/* 300 nested groups, each starred */
	size_t k = 0;
	for (size_t i = 0; i < 300; i++)
		deep[k++] = '(';
	deep[k++] = 'a';
	for (size_t i = 0; i < 300; i++) {
		memcpy(deep + k, ")*", 2);
		k += 2;
	}
	const char *pats[] = {
		"((a{1,100}){1,100}){1,100}",   /* issue 15, gossip */
		"((a{1,200}){1,200}){1,200}",
		".{0,999}.{0,999}.{0,999}.{0,999}.{0,999}",   /* issue 15, RPC */
		"(.{0,999}){1}",
		"(a{1,30}){1,30}",              /* ~1,800 instructions, big DFA states */
		"(a{1,24}){1,24}",              /* just inside the budget */
		"([ -~]{1,24}){1,24}$",         /* ... any ASCII, matched backwards */
		"(a?){600}$",
		"a{1000}",
		"(a*)*b",
		"(a+)+$",
		"(x+x+)+y",
		"(a|aa)*c$",
		"(.*a){20}",
		"(\\w+\\s?)*$",
		"(?i)\\pL+",
		"[\\pL\\pN._-]+$",
		"(?i)(\\pL|\\pN){1000}",
		"[^\\x00-\\x{10FFFF}]{1000}",
		opt_a,
		big_alt,
		deep,
	};
	char text_a[513], text_mixed[513];
	memset(text_a, 'a', 512);
	text_a[512] = '\0';
	for (size_t i = 0; i < 512; i++)
		text_mixed[i] = "ax1 \xc3\xa9y"[i % 7];
	text_mixed[511] = 'b';
	text_mixed[512] = '\0';
	const char *texts[] = {text_a, text_mixed, ""};
	double worst = 0;
	const char *worst_pat = "";
	for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
		for (int anchored = 0; anchored < 2; anchored++) {
			static char pat[GOREGEX_MAX_LEN + 3];
			size_t pl = strlen(pats[i]);
			if (anchored)
				snprintf(pat, sizeof pat, "^%s$", pats[i]);
			else
				memcpy(pat, pats[i], pl + 1);
			for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
				char err[256];
				struct goregex *re = NULL;
				/* best of three: the bound is on work, not on
				 * what the other processes on this machine do */
				double dt = 1e9;
				for (int r = 0; r < 3; r++) {
					goregex_free(re);
					double t0 = testlib_cpu_ms();
					re = goregex_compile(pat, strlen(pat), NULL, err, sizeof err);
					if (re)
						(void)goregex_match(re, texts[t], strlen(texts[t]));
					double d = testlib_cpu_ms() - t0;
					dt = d < dt ? d : dt;
				}
				goregex_free(re);
				if (dt > worst) {
					worst = dt;
					worst_pat = pats[i];
				}
				if (dt >= BOUND_MS)
					printf("# /%.60s/ (anchored %d) on text %zu: %.2f ms (%s)\n",
					       pats[i], anchored, t, dt, re ? "compiled" : err);
				CHECK(dt < BOUND_MS);
			}
		}
	}
	printf("# worst compile + match: %.3f ms CPU (/%.40s/)\n", worst, worst_pat);
}

/* The reported attacks: refused, the first as Go refuses it. */
TEST(attacks_refused)
{
	char err[256];
	const char *nested = "((a{1,100}){1,100}){1,100}";
	CHECK(goregex_compile(nested, strlen(nested), NULL, err, sizeof err) == NULL);
	CHECK_EQ_STR(err, "error parsing regexp: invalid repeat count: `{1,100}`");
	/* Go accepts this one; vigil's program budget does not */
	const char *five = "^.{0,999}.{0,999}.{0,999}.{0,999}.{0,999}$";
	CHECK(goregex_compile(five, strlen(five), NULL, err, sizeof err) == NULL);
	CHECK(strncmp(err, "error parsing regexp: expression too large: `^.{0,999}", 53) == 0);
	/* longer than GOREGEX_MAX_LEN */
	static char longpat[GOREGEX_MAX_LEN + 2];
	memset(longpat, 'a', sizeof longpat - 1);
	CHECK(goregex_compile(longpat, sizeof longpat - 1, NULL, err, sizeof err) == NULL);
	CHECK(strncmp(err, "error parsing regexp: expression too large: `aaa", 47) == 0);
}

/*
 * One budget for the expressions of one message: a query with many
 * costly filters is refused once their programs add up, so its total
 * compile + match time is that of one expression at most.
 */
TEST(budget_shared_by_expressions)
{
	size_t budget = GOREGEX_BUDGET;
	char err[256];
	const char *pl = "\\pL";   /* ~1,200 instructions */
	struct goregex *a = goregex_compile(pl, strlen(pl), &budget, err, sizeof err);
	REQUIRE(a != NULL);
	size_t left = budget;
	CHECK(left < GOREGEX_BUDGET - 1000);
	struct goregex *b = goregex_compile(pl, strlen(pl), &budget, err, sizeof err);
	CHECK(b == NULL);
	CHECK_EQ_INT(budget, left);   /* a refusal costs nothing */
	CHECK(strncmp(err, "error parsing regexp: expression too large", 42) == 0);
	goregex_free(a);
	goregex_free(b);
	/* small filters: many fit, but not hundreds (each costs its compile) */
	budget = GOREGEX_BUDGET;
	int fit = 0;
	for (; fit < 1000; fit++) {
		struct goregex *r = goregex_compile("web", 3, &budget, err, sizeof err);
		if (!r)
			break;
		goregex_free(r);
	}
	CHECK(fit >= 16);
	CHECK(fit < 100);
}

TEST_MAIN(go_syntax_matches_as_go, go_refusals_with_go_errors, counted_strings,
	  hostile_patterns_bounded, attacks_refused, budget_shared_by_expressions)
