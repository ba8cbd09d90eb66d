/*
 * goregex.cc — the C interface of goregex.h over RE2.
 *
 * Why RE2 (docs/ARCHITECTURE.md, "Filters"): serf evaluates filters with
 * Go's regexp package, whose syntax is RE2's, so RE2 gives serf's answers
 * for the same pattern (\d, (?i), \pL, non-greedy, no back-references or
 * lookaround) without a translator.  Its automata match in time linear in
 * the text, where glibc's backtracking regexec took 1.6 s on a 27-byte
 * query filter from a peer.  PCRE2 with match limits would bound the time
 * by giving up (a different answer from serf's) and accepts Perl syntax Go
 * refuses, which would need a second parser to refuse.
 *
 * RE2 and Go's regexp/syntax are the same design; the differences that
 * matter here are handled below: RE2 accepts \C (any byte), Go does not;
 * Go limits nesting to 1000; the error texts differ, so RE2's error codes
 * are mapped to Go's.  Where vigil is stricter than Go on purpose: the
 * compiled program is held to GOREGEX_BUDGET instructions (Go allows
 * millions), so ".{0,999}" is "expression too large" here.  That cap is
 * what bounds the time: RE2 matches in O(text x program) at worst.
 */
#include "goregex.h"

#include <re2/re2.h>

#include <cstdio>
#include <new>
#include <string>

/*
 * RE2's memory budget for one expression (two thirds for the forward
 * program, the rest for the reverse program and the DFA caches).  It is
 * what stops the compiler early on a pattern that expands hugely, such as
 * ".{0,999}" (9,000 instructions): refused after ~0.6 ms, where 8 MiB
 * (RE2's default) let it compile for 5 ms.  Programs that pass are then
 * held to the instruction budget below.
 */
static const int64_t GOREGEX_MAX_MEM = 128 << 10;

/*
 * Charged per expression on top of its instructions: the fixed cost of
 * compiling one (~20 us), so that a message cannot carry hundreds of
 * tiny filters for the price of one.
 */
static const size_t GOREGEX_EXPR_COST = 32;

/* Go's regexp/syntax.maxHeight. */
static const int GOREGEX_MAX_DEPTH = 1000;

struct goregex {
	RE2 re;
	goregex(const re2::StringPiece &p, const RE2::Options &o) : re(p, o) {}
};

/* Go's regexp/syntax ErrorCode strings, indexed by RE2's error code. */
static const char *go_error_text(RE2::ErrorCode c)
{
	switch (c) {
	case RE2::ErrorBadEscape: return "invalid escape sequence";
	case RE2::ErrorBadCharClass: return "invalid character class";
	case RE2::ErrorBadCharRange: return "invalid character class range";
	case RE2::ErrorMissingBracket: return "missing closing ]";
	case RE2::ErrorMissingParen: return "missing closing )";
	case RE2::ErrorUnexpectedParen: return "unexpected )";
	case RE2::ErrorTrailingBackslash: return "trailing backslash at end of expression";
	case RE2::ErrorRepeatArgument: return "missing argument to repetition operator";
	case RE2::ErrorRepeatSize: return "invalid repeat count";
	case RE2::ErrorRepeatOp: return "invalid nested repetition operator";
	case RE2::ErrorBadPerlOp: return "invalid or unsupported Perl syntax";
	case RE2::ErrorBadUTF8: return "invalid UTF-8";
	case RE2::ErrorBadNamedCapture: return "invalid named capture";
	case RE2::ErrorPatternTooLarge: return "expression too large";
	default: return "regexp/syntax: internal error";
	}
}

/* Go's (*syntax.Error).Error(), prefixed as regexp.Compile's. */
static void go_error(char *err, size_t errlen, const char *code, const char *arg, size_t arglen)
{
	if (err && errlen)
		snprintf(err, errlen, "error parsing regexp: %s: `%.*s`", code,
			 (int)(arglen > 1024 ? 1024 : arglen), arg);
}

/*
 * What Go refuses and RE2 accepts, found by one pass over the pattern:
 * \C (RE2's any byte; Go: invalid escape, in a class too) and nesting
 * deeper than Go's limit (parentheses; those in a class are literals).
 * Text inside \Q...\E is literal in both.
 */
static bool go_refuses(const char *p, size_t n, char *err, size_t errlen)
{
	int depth = 0;
	bool in_class = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '\\' && i + 1 < n) {
			char d = p[i + 1];
			if (d == 'Q') {
				/* literal until \E or the end */
				size_t j = i + 2;
				while (j + 1 < n && !(p[j] == '\\' && p[j + 1] == 'E'))
					j++;
				i = j + 1 < n ? j + 1 : n;
				continue;
			}
			if (d == 'C') {
				go_error(err, errlen, "invalid escape sequence", "\\C", 2);
				return true;
			}
			i++;
			continue;
		}
		if (in_class) {
			if (c == '[' && i + 1 < n && p[i + 1] == ':') {
				/* "[:alpha:]" holds a "]" of its own */
				size_t j = i + 2;
				while (j + 1 < n && !(p[j] == ':' && p[j + 1] == ']'))
					j++;
				if (j + 1 < n)
					i = j + 1;
			} else if (c == ']') {
				in_class = false;
			}
			continue;
		}
		if (c == '[') {
			in_class = true;
			/* "]" first in a class (after an optional "^") is literal */
			if (i + 1 < n && p[i + 1] == '^')
				i++;
			if (i + 1 < n && p[i + 1] == ']')
				i++;
			continue;
		}
		if (c == '(' && ++depth > GOREGEX_MAX_DEPTH) {
			go_error(err, errlen, "expression nests too deeply", p, n);
			return true;
		}
		if (c == ')' && depth > 0)
			depth--;
	}
	return false;
}

extern "C" struct goregex *goregex_compile(const char *pat, size_t len, size_t *budget,
					   char *err, size_t errlen)
{
	size_t own = GOREGEX_BUDGET;
	if (!budget)
		budget = &own;
	if (err && errlen)
		err[0] = '\0';
	if (!pat && len)
		len = 0;
	if (len > GOREGEX_MAX_LEN) {
		go_error(err, errlen, "expression too large", pat, len);
		return nullptr;
	}
	if (go_refuses(pat, len, err, errlen))
		return nullptr;

	RE2::Options o;
	o.set_encoding(RE2::Options::EncodingUTF8);
	o.set_log_errors(false);
	o.set_max_mem(GOREGEX_MAX_MEM);
	o.set_never_capture(true); /* a yes/no answer needs no submatches */
	goregex *g = nullptr;
	try {
		g = new goregex(re2::StringPiece(pat ? pat : "", len), o);
	} catch (const std::bad_alloc &) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return nullptr;
	}
	if (!g->re.ok()) {
		const std::string &arg = g->re.error_arg();
		if (g->re.error_code() == RE2::ErrorPatternTooLarge)
			go_error(err, errlen, "expression too large", pat, len);
		else
			go_error(err, errlen, go_error_text(g->re.error_code()), arg.data(),
				 arg.size());
		delete g;
		return nullptr;
	}
	size_t cost = (size_t)g->re.ProgramSize() + GOREGEX_EXPR_COST;
	if (cost > *budget) {
		go_error(err, errlen, "expression too large", pat, len);
		delete g;
		return nullptr;
	}
	*budget -= cost;
	return g;
}

extern "C" bool goregex_match(const struct goregex *g, const char *text, size_t len)
{
	if (!g)
		return false;
	try {
		return g->re.Match(re2::StringPiece(text ? text : "", text ? len : 0), 0,
				   text ? len : 0, RE2::UNANCHORED, nullptr, 0);
	} catch (const std::bad_alloc &) {
		return false;
	}
}

extern "C" void goregex_free(struct goregex *g)
{
	delete g;
}
