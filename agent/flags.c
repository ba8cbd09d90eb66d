/*
 * flags.c — Go `flag` package semantics for vigil's agent and CLI.
 * See flags.h for the accepted syntax.  Error strings are Go's, because
 * users (and their scripts) grep for them.
 */
#include "flags.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!err || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

int flag_list_add(struct flag_list *l, const char *v)
{
	const char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	l->v = nv;
	l->v[l->n++] = v;
	return 0;
}

void flag_list_free(struct flag_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int parse_go_bool(const char *s, bool *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (strcmp(s, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, f[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int parse_go_int(const char *s, long long *out)
{
	/* Go's base-0 ParseInt: 0x.. hex, 0o../0.. octal, 0b.. binary,
	 * underscores allowed only with a prefix; we accept the common
	 * subset (no underscores) and reject anything strtoll would skip. */
	const char *p = s;
	int neg = 0, base = 10;
	unsigned long long v = 0;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (*p == '\0')
		return -1;
	if (p[0] == '0' && p[1] != '\0') {
		if (p[1] == 'x' || p[1] == 'X') {
			base = 16;
			p += 2;
		} else if (p[1] == 'b' || p[1] == 'B') {
			base = 2;
			p += 2;
		} else if (p[1] == 'o' || p[1] == 'O') {
			base = 8;
			p += 2;
		} else {
			base = 8;
			p += 1;
		}
		if (*p == '\0')
			return -1;
	}
	for (; *p; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return -1;
		if (d >= base)
			return -1;
		if (v > (UINT64_MAX - (unsigned)d) / (unsigned)base)
			return -1;
		v = v * (unsigned)base + (unsigned)d;
		if (v > (unsigned long long)INT64_MAX + (unsigned)neg)
			return -1;
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}

/* Go's time.ParseDuration, including its error strings. */
int parse_go_duration(const char *orig, int64_t *ns, char *err, size_t errlen)
{
	static const struct {
		const char *u;
		uint64_t mult;
	} units[] = {
		{"ns", 1ULL},
		{"us", 1000ULL},
		{"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
		{"\xce\xbcs", 1000ULL}, /* U+03BC greek mu */
		{"ms", 1000000ULL},
		{"s", 1000000000ULL},
		{"m", 60ULL * 1000000000ULL},
		{"h", 3600ULL * 1000000000ULL},
	};
	const uint64_t lim = 1ULL << 63;
	const char *s = orig;
	uint64_t d = 0;
	bool neg = false;

	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (*s == '\0')
		goto invalid;
	while (*s) {
		uint64_t v = 0, f = 0;
		double scale = 1.0;
		bool pre = false, post = false, overflow = false;
		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			goto invalid;
		while (*s >= '0' && *s <= '9') {
			if (v > (lim - 1) / 10)
				overflow = true;
			v = v * 10 + (uint64_t)(*s - '0');
			if (v > lim)
				overflow = true;
			s++;
			pre = true;
		}
		if (overflow)
			goto invalid;
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				/* like Go's leadingFraction: stop accumulating on overflow */
				if (!overflow) {
					if (f > (lim - 1) / 10) {
						overflow = true;
					} else {
						uint64_t y = f * 10 + (uint64_t)(*s - '0');
						if (y > lim)
							overflow = true;
						else {
							f = y;
							scale *= 10;
						}
					}
				}
				s++;
				post = true;
			}
		}
		if (!pre && !post)
			goto invalid;
		size_t i = 0;
		while (s[i] && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'))
			i++;
		if (i == 0) {
			seterr(err, errlen, "time: missing unit in duration \"%s\"", orig);
			return -1;
		}
		uint64_t unit = 0;
		for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
			if (strlen(units[k].u) == i && memcmp(units[k].u, s, i) == 0) {
				unit = units[k].mult;
				break;
			}
		}
		if (unit == 0) {
			seterr(err, errlen, "time: unknown unit \"%.*s\" in duration \"%s\"",
			       (int)i, s, orig);
			return -1;
		}
		s += i;
		if (v > lim / unit)
			goto invalid;
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > lim)
				goto invalid;
		}
		d += v;
		if (d > lim)
			goto invalid;
	}
	if (neg) {
		*ns = d == lim ? INT64_MIN : -(int64_t)d;
		return 0;
	}
	if (d > lim - 1)
		goto invalid;
	*ns = (int64_t)d;
	return 0;
invalid:
	seterr(err, errlen, "time: invalid duration \"%s\"", orig);
	return -1;
}

/* Go's Duration.String(), close enough for help text and logs. */
void format_go_duration(int64_t ns, char *buf, size_t len)
{
	uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	const char *sign = ns < 0 ? "-" : "";
	if (u == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (u < 1000000000ULL) {
		/* sub-second: pick ns, µs or ms with a trimmed fraction */
		const char *unit;
		uint64_t div;
		if (u < 1000ULL) {
			snprintf(buf, len, "%s%lluns", sign, (unsigned long long)u);
			return;
		} else if (u < 1000000ULL) {
			unit = "\xc2\xb5s";
			div = 1000ULL;
		} else {
			unit = "ms";
			div = 1000000ULL;
		}
		char frac[16] = "";
		uint64_t rem = u % div;
		if (rem) {
			int digits = div == 1000ULL ? 3 : 6;
			snprintf(frac, sizeof frac, ".%0*llu", digits, (unsigned long long)rem);
			size_t fl = strlen(frac);
			while (fl > 1 && frac[fl - 1] == '0')
				frac[--fl] = '\0';
		}
		snprintf(buf, len, "%s%llu%s%s", sign, (unsigned long long)(u / div), frac, unit);
		return;
	}
	uint64_t secs = u / 1000000000ULL, rem = u % 1000000000ULL;
	uint64_t h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
	char frac[16] = "";
	if (rem) {
		snprintf(frac, sizeof frac, ".%09llu", (unsigned long long)rem);
		size_t fl = strlen(frac);
		while (fl > 1 && frac[fl - 1] == '0')
			frac[--fl] = '\0';
	}
	if (h)
		snprintf(buf, len, "%s%lluh%llum%llu%ss", sign, (unsigned long long)h,
			 (unsigned long long)m, (unsigned long long)s, frac);
	else if (m)
		snprintf(buf, len, "%s%llum%llu%ss", sign, (unsigned long long)m,
			 (unsigned long long)s, frac);
	else
		snprintf(buf, len, "%s%llu%ss", sign, (unsigned long long)s, frac);
}

static struct flag_def *find(struct flag_def *defs, size_t n, const char *name, size_t nl)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(defs[i].name) == nl && memcmp(defs[i].name, name, nl) == 0)
			return &defs[i];
	return NULL;
}

bool flags_was_set(const struct flag_def *defs, size_t ndefs, const char *name)
{
	for (size_t i = 0; i < ndefs; i++)
		if (strcmp(defs[i].name, name) == 0)
			return defs[i].set;
	return false;
}

static int set_value(struct flag_def *f, const char *val, char *err, size_t errlen)
{
	char derr[160];
	switch (f->kind) {
	case FLAG_STRING:
		*(const char **)f->dst = val;
		return 0;
	case FLAG_BOOL:
		if (parse_go_bool(val, (bool *)f->dst) != 0) {
			seterr(err, errlen, "invalid boolean value \"%s\" for -%s: parse error",
			       val, f->name);
			return -1;
		}
		return 0;
	case FLAG_INT:
		if (parse_go_int(val, (long long *)f->dst) != 0) {
			seterr(err, errlen, "invalid value \"%s\" for flag -%s: parse error",
			       val, f->name);
			return -1;
		}
		return 0;
	case FLAG_DURATION:
		if (parse_go_duration(val, (int64_t *)f->dst, derr, sizeof derr) != 0) {
			seterr(err, errlen, "invalid value \"%s\" for flag -%s: %s", val,
			       f->name, derr);
			return -1;
		}
		return 0;
	case FLAG_LIST:
		if (flag_list_add((struct flag_list *)f->dst, val) != 0) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	return -1;
}

int flags_parse(struct flag_def *defs, size_t ndefs, int argc, char **argv,
		int *rest, char *err, size_t errlen)
{
	int i = 0;
	if (err && errlen)
		err[0] = '\0';
	while (i < argc) {
		const char *s = argv[i];
		if (strlen(s) < 2 || s[0] != '-')
			break; /* first non-flag argument (or "-") ends the flags */
		int minus = 1;
		if (s[1] == '-') {
			minus = 2;
			if (s[2] == '\0') { /* "--" terminates the flags */
				i++;
				break;
			}
		}
		const char *name = s + minus;
		if (name[0] == '-' || name[0] == '=') {
			seterr(err, errlen, "bad flag syntax: %s", s);
			*rest = i;
			return FLAGS_ERROR;
		}
		i++;
		const char *eq = strchr(name, '=');
		size_t nl = eq ? (size_t)(eq - name) : strlen(name);
		const char *val = eq ? eq + 1 : NULL;
		struct flag_def *f = find(defs, ndefs, name, nl);
		if (!f) {
			if ((nl == 4 && memcmp(name, "help", 4) == 0) ||
			    (nl == 1 && name[0] == 'h')) {
				*rest = i;
				return FLAGS_HELP;
			}
			seterr(err, errlen, "flag provided but not defined: -%.*s", (int)nl, name);
			*rest = i;
			return FLAGS_ERROR;
		}
		if (f->kind == FLAG_BOOL) {
			/* a bool never takes the next argument: "-v false" is -v + arg */
			if (!val)
				val = "true";
		} else if (!val) {
			if (i >= argc) {
				seterr(err, errlen, "flag needs an argument: -%.*s", (int)nl, name);
				*rest = i;
				return FLAGS_ERROR;
			}
			val = argv[i++];
		}
		if (set_value(f, val, err, errlen) != 0) {
			*rest = i;
			return FLAGS_ERROR;
		}
		f->set = true;
	}
	*rest = i;
	return FLAGS_OK;
}
