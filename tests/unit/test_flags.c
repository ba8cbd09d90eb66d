/*
 * test_flags.c — agent/flags.c must accept and reject exactly what Go's
 * `flag` package does, because vigil replaces serf whose users type Go
 * flag syntax.  It links flags.o from build/libvigil-agent.a.
 */
#include "testlib.h"

#include "flags.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

struct opts {
	const char *node, *addr;
	bool replay, coalesce;
	long long n;
	int64_t dur;
	struct flag_list join;
	struct flag_def d[7];
};

static void opts_init(struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->node = "default";
	o->coalesce = true;
	o->d[0] = (struct flag_def){"node", FLAG_STRING, &o->node, false};
	o->d[1] = (struct flag_def){"rpc-addr", FLAG_STRING, &o->addr, false};
	o->d[2] = (struct flag_def){"replay", FLAG_BOOL, &o->replay, false};
	o->d[3] = (struct flag_def){"coalesce", FLAG_BOOL, &o->coalesce, false};
	o->d[4] = (struct flag_def){"retry-max", FLAG_INT, &o->n, false};
	o->d[5] = (struct flag_def){"timeout", FLAG_DURATION, &o->dur, false};
	o->d[6] = (struct flag_def){"join", FLAG_LIST, &o->join, false};
}

static int parse(struct opts *o, int argc, char **argv, int *rest, char *err)
{
	return flags_parse(o->d, 7, argc, argv, rest, err, 256);
}

TEST(equals_and_space_forms)
{
	struct opts o;
	char err[256];
	int rest;
	opts_init(&o);
	char **a = ARGV("-node=a", "--rpc-addr", "1.2.3.4:5", "-timeout", "2s");
	CHECK_EQ_INT(parse(&o, 5, a, &rest, err), FLAGS_OK);
	CHECK_EQ_STR(o.node, "a");
	CHECK_EQ_STR(o.addr, "1.2.3.4:5");
	CHECK_EQ_INT(o.dur, 2000000000LL);
	CHECK_EQ_INT(rest, 5);
	CHECK(flags_was_set(o.d, 7, "node"));
	CHECK(!flags_was_set(o.d, 7, "replay"));
	flag_list_free(&o.join);

	opts_init(&o);
	a = ARGV("--node=b", "-rpc-addr=x=y");
	CHECK_EQ_INT(parse(&o, 2, a, &rest, err), FLAGS_OK);
	CHECK_EQ_STR(o.node, "b");
	CHECK_EQ_STR(o.addr, "x=y"); /* split at the first '=' only */
	flag_list_free(&o.join);
}

TEST(booleans)
{
	struct opts o;
	char err[256];
	int rest;
	opts_init(&o);
	char **a = ARGV("-replay", "-coalesce=false");
	CHECK_EQ_INT(parse(&o, 2, a, &rest, err), FLAGS_OK);
	CHECK(o.replay);
	CHECK(!o.coalesce);

	/* a bool never consumes the next argument */
	opts_init(&o);
	a = ARGV("-coalesce", "false", "x");
	CHECK_EQ_INT(parse(&o, 3, a, &rest, err), FLAGS_OK);
	CHECK(o.coalesce);
	CHECK_EQ_INT(rest, 1);

	static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
	static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
	for (size_t i = 0; i < 6; i++) {
		char buf[32];
		opts_init(&o);
		snprintf(buf, sizeof buf, "--replay=%s", yes[i]);
		CHECK_EQ_INT(parse(&o, 1, (char *[]){buf, NULL}, &rest, err), FLAGS_OK);
		CHECK(o.replay);
		opts_init(&o);
		snprintf(buf, sizeof buf, "-coalesce=%s", no[i]);
		CHECK_EQ_INT(parse(&o, 1, (char *[]){buf, NULL}, &rest, err), FLAGS_OK);
		CHECK(!o.coalesce);
	}
	opts_init(&o);
	a = ARGV("-replay=yes");
	CHECK_EQ_INT(parse(&o, 1, a, &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "invalid boolean value \"yes\" for -replay: parse error");
}

TEST(repeatable_lists)
{
	struct opts o;
	char err[256];
	int rest;
	opts_init(&o);
	char **a = ARGV("-join=a:1", "-join", "b:2", "--join=c", "--join", "d");
	CHECK_EQ_INT(parse(&o, 6, a, &rest, err), FLAGS_OK);
	REQUIRE(o.join.n == 4);
	CHECK_EQ_STR(o.join.v[0], "a:1");
	CHECK_EQ_STR(o.join.v[1], "b:2");
	CHECK_EQ_STR(o.join.v[2], "c");
	CHECK_EQ_STR(o.join.v[3], "d");
	flag_list_free(&o.join);
	CHECK(o.join.v == NULL && o.join.n == 0);
}

TEST(stops_at_first_non_flag)
{
	struct opts o;
	char err[256];
	int rest;
	opts_init(&o);
	char **a = ARGV("-node=x", "deploy", "-replay");
	CHECK_EQ_INT(parse(&o, 3, a, &rest, err), FLAGS_OK);
	CHECK_EQ_INT(rest, 1);
	CHECK(!o.replay); /* after the first positional argument: not a flag */

	opts_init(&o);
	a = ARGV("-replay", "--", "-node=y");
	CHECK_EQ_INT(parse(&o, 3, a, &rest, err), FLAGS_OK);
	CHECK_EQ_INT(rest, 2); /* "--" is consumed */
	CHECK_EQ_STR(o.node, "default");

	opts_init(&o);
	a = ARGV("-", "-replay");
	CHECK_EQ_INT(parse(&o, 2, a, &rest, err), FLAGS_OK);
	CHECK_EQ_INT(rest, 0); /* a lone "-" is an argument (stdin) */

	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 0, ARGV(NULL), &rest, err), FLAGS_OK);
	CHECK_EQ_INT(rest, 0);
}

TEST(errors_like_go)
{
	struct opts o;
	char err[256];
	int rest;
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("-x"), &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "flag provided but not defined: -x");
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("--bogus=1"), &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "flag provided but not defined: -bogus");
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("-node"), &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "flag needs an argument: -node");
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("---node=x"), &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "bad flag syntax: ---node=x");
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("-=x"), &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "bad flag syntax: -=x");
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("-retry-max=abc"), &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "invalid value \"abc\" for flag -retry-max: parse error");
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 2, ARGV("-timeout", "5"), &rest, err), FLAGS_ERROR);
	CHECK_EQ_STR(err, "invalid value \"5\" for flag -timeout: time: missing unit in duration \"5\"");
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("-h"), &rest, err), FLAGS_HELP);
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("--help"), &rest, err), FLAGS_HELP);
	opts_init(&o);
	CHECK_EQ_INT(parse(&o, 1, ARGV("-help"), &rest, err), FLAGS_HELP);
}

TEST(integers)
{
	long long v;
	CHECK(parse_go_int("42", &v) == 0 && v == 42);
	CHECK(parse_go_int("-7", &v) == 0 && v == -7);
	CHECK(parse_go_int("+7", &v) == 0 && v == 7);
	CHECK(parse_go_int("0x1f", &v) == 0 && v == 31);
	CHECK(parse_go_int("010", &v) == 0 && v == 8);
	CHECK(parse_go_int("0o17", &v) == 0 && v == 15);
	CHECK(parse_go_int("0b101", &v) == 0 && v == 5);
	CHECK(parse_go_int("0", &v) == 0 && v == 0);
	CHECK(parse_go_int("9223372036854775807", &v) == 0 && v == INT64_MAX);
	CHECK(parse_go_int("-9223372036854775808", &v) == 0 && v == INT64_MIN);
	CHECK(parse_go_int("9223372036854775808", &v) != 0);
	CHECK(parse_go_int("99999999999999999999999", &v) != 0);
	CHECK(parse_go_int("", &v) != 0);
	CHECK(parse_go_int("12a", &v) != 0);
	CHECK(parse_go_int(" 1", &v) != 0);
	CHECK(parse_go_int("08", &v) != 0);
	CHECK(parse_go_int("0x", &v) != 0);
}

TEST(durations)
{
	int64_t ns;
	char err[160];
	struct {
		const char *s;
		int64_t ns;
	} good[] = {
		{"0", 0},
		{"500ms", 500000000LL},
		{"2s", 2000000000LL},
		{"1m30s", 90000000000LL},
		{"1h", 3600000000000LL},
		{"1.5s", 1500000000LL},
		{".5s", 500000000LL},
		{"1.s", 1000000000LL},
		{"-2s", -2000000000LL},
		{"+2s", 2000000000LL},
		{"100us", 100000LL},
		{"100\xc2\xb5s", 100000LL},
		{"3ns", 3LL},
		{"1h2m3s4ms5us6ns", 3723004005006LL},
		{"2562047h47m16.854775807s", INT64_MAX},
		{"-2562047h47m16.854775808s", INT64_MIN},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ns = -1;
		int rc = parse_go_duration(good[i].s, &ns, err, sizeof err);
		if (rc != 0 || ns != good[i].ns)
			printf("# duration %s: rc=%d ns=%lld\n", good[i].s, rc, (long long)ns);
		CHECK(rc == 0 && ns == good[i].ns);
	}
	CHECK(parse_go_duration("", &ns, err, sizeof err) != 0);
	CHECK_EQ_STR(err, "time: invalid duration \"\"");
	CHECK(parse_go_duration("1", &ns, err, sizeof err) != 0);
	CHECK_EQ_STR(err, "time: missing unit in duration \"1\"");
	CHECK(parse_go_duration("1x", &ns, err, sizeof err) != 0);
	CHECK_EQ_STR(err, "time: unknown unit \"x\" in duration \"1x\"");
	CHECK(parse_go_duration("s", &ns, err, sizeof err) != 0);
	CHECK_EQ_STR(err, "time: invalid duration \"s\"");
	CHECK(parse_go_duration(".s", &ns, err, sizeof err) != 0);
	CHECK(parse_go_duration("-", &ns, err, sizeof err) != 0);
	CHECK(parse_go_duration("1m30", &ns, err, sizeof err) != 0);
	CHECK(parse_go_duration("2562047h47m16.854775808s", &ns, err, sizeof err) != 0);
	CHECK(parse_go_duration("9999999999999999999h", &ns, err, sizeof err) != 0);
}

TEST(duration_format)
{
	char b[64];
	format_go_duration(0, b, sizeof b);
	CHECK_EQ_STR(b, "0s");
	format_go_duration(90000000000LL, b, sizeof b);
	CHECK_EQ_STR(b, "1m30s");
	format_go_duration(30000000000LL, b, sizeof b);
	CHECK_EQ_STR(b, "30s");
	format_go_duration(3600000000000LL, b, sizeof b);
	CHECK_EQ_STR(b, "1h0m0s");
	format_go_duration(500000000LL, b, sizeof b);
	CHECK_EQ_STR(b, "500ms");
	format_go_duration(1500000000LL, b, sizeof b);
	CHECK_EQ_STR(b, "1.5s");
	format_go_duration(-2000000000LL, b, sizeof b);
	CHECK_EQ_STR(b, "-2s");
	format_go_duration(1500LL, b, sizeof b);
	CHECK_EQ_STR(b, "1.5\xc2\xb5s");
	format_go_duration(7LL, b, sizeof b);
	CHECK_EQ_STR(b, "7ns");
}

TEST(value_kept_until_overridden)
{
	/* a later occurrence of a scalar flag wins, like Go */
	struct opts o;
	char err[256];
	int rest;
	opts_init(&o);
	char **a = ARGV("-node=a", "-node=b", "-retry-max", "3", "-retry-max=0x10");
	CHECK_EQ_INT(parse(&o, 5, a, &rest, err), FLAGS_OK);
	CHECK_EQ_STR(o.node, "b");
	CHECK_EQ_INT(o.n, 16);
}

TEST_MAIN(equals_and_space_forms, booleans, repeatable_lists, stops_at_first_non_flag,
	  errors_like_go, integers, durations, duration_format, value_kept_until_overridden)
