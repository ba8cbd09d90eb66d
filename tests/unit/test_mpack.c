/*
 * test_mpack.c — the shared msgpack helpers (src/mpack.h): which keys match,
 * how nil reads in Go's decoding and in ours, the bounds of the text and
 * integer readers, and the bytes the writers produce.
 */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

#include "mpack.h"

/* Unpack n bytes into u (caller destroys). */
static void unpack(msgpack_unpacked *u, const void *p, size_t n)
{
	size_t off = 0;
	msgpack_unpacked_init(u);
	REQUIRE(msgpack_unpack_next(u, p, n, &off) == MSGPACK_UNPACK_SUCCESS && off == n);
}

TEST(key_matches_str_and_bin_not_nil_or_int)
{
	/* {"Key": 1, bin"Name": 2, nil: 3, 7: 4} */
	static const uint8_t m[] = {0x84, 0xa3, 'K', 'e', 'y', 0x01,
				    0xc4, 4, 'N', 'a', 'm', 'e', 0x02,
				    0xc0, 0x03, 0x07, 0x04};
	msgpack_unpacked u;
	unpack(&u, m, sizeof m);
	const msgpack_object_kv *kv = u.data.via.map.ptr;
	CHECK(mpack_key_is(&kv[0].key, "Key"));
	CHECK(!mpack_key_is(&kv[0].key, "Ke"));
	CHECK(!mpack_key_is(&kv[0].key, "Keys"));
	CHECK(mpack_key_is(&kv[1].key, "Name"));
	CHECK(!mpack_key_is(&kv[2].key, ""));
	CHECK(!mpack_key_is(&kv[3].key, ""));
	const msgpack_object *o = mpack_map_get(&u.data, "Name");
	REQUIRE(o);
	CHECK_EQ_INT((int)o->via.u64, 2);
	CHECK(mpack_map_get(&u.data, "Nope") == NULL);
	CHECK(mpack_map_get(&kv[0].val, "Key") == NULL); /* not a map */
	msgpack_unpacked_destroy(&u);
}

TEST(nil_is_zero_for_go_and_wrong_for_ours)
{
	static const uint8_t nil[] = {0xc0};
	msgpack_unpacked u;
	unpack(&u, nil, sizeof nil);
	uint64_t v = 9;
	int64_t i = 9;
	bool b = true;
	const uint8_t *p = (const uint8_t *)"x";
	uint32_t n = 9;
	const char *t = NULL;
	size_t tn = 9;
	const msgpack_object *items = &u.data;
	const msgpack_object_kv *kv = (const msgpack_object_kv *)&u.data;
	CHECK(mpack_go_uint(&u.data, 10, &v) && v == 0);
	CHECK(mpack_go_int(&u.data, &i) && i == 0);
	CHECK(mpack_go_bool(&u.data, &b) && !b);
	CHECK(mpack_go_bytes(&u.data, &p, &n) && p == NULL && n == 0);
	CHECK(mpack_go_text(&u.data, &t, &tn) && t && t[0] == '\0' && tn == 0);
	CHECK(mpack_go_array(&u.data, &items, &n) && items == NULL && n == 0);
	CHECK(mpack_go_map(&u.data, &kv, &n) && kv == NULL && n == 0);
	CHECK(!mpack_uint(&u.data, 10, &v));
	CHECK(!mpack_view(&u.data, &p, &n));
	msgpack_unpacked_destroy(&u);
}

TEST(integer_bounds)
{
	/* 300, -1, 2^63 */
	static const uint8_t m[] = {0x93, 0xcd, 0x01, 0x2c, 0xff,
				    0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
	msgpack_unpacked u;
	unpack(&u, m, sizeof m);
	const msgpack_object *a = u.data.via.array.ptr;
	uint64_t v;
	int64_t i;
	CHECK(mpack_uint(&a[0], 300, &v) && v == 300);
	CHECK(!mpack_uint(&a[0], 299, &v));
	CHECK(!mpack_go_uint(&a[0], UINT8_MAX, &v));
	CHECK(!mpack_go_uint(&a[1], UINT64_MAX, &v));
	CHECK(mpack_go_int(&a[1], &i) && i == -1);
	CHECK(!mpack_go_int(&a[2], &i));
	msgpack_unpacked_destroy(&u);
}

TEST(text_copy_refuses_nul_and_overflow)
{
	char out[4];
	CHECK(mpack_text_copy((const uint8_t *)"abc", 3, out, sizeof out));
	CHECK_EQ_STR(out, "abc");
	CHECK(!mpack_text_copy((const uint8_t *)"abcd", 4, out, sizeof out));
	CHECK(!mpack_text_copy((const uint8_t *)"a\0b", 3, out, sizeof out));
	CHECK(mpack_text_copy(NULL, 0, out, sizeof out) && out[0] == '\0');
	char *d = mpack_text_dup((const uint8_t *)"hi", 2);
	REQUIRE(d);
	CHECK_EQ_STR(d, "hi");
	free(d);
	CHECK(mpack_text_dup((const uint8_t *)"h\0i", 3) == NULL);
}

TEST(writers_go_raw_str_bin_and_type_byte)
{
	struct mpack_enc e;
	mpack_enc_init(&e, 7);
	mpack_enc_map(&e, 1);
	mpack_enc_gostr(&e, "Key");
	mpack_enc_gobytes(&e, NULL, 0);
	mpack_enc_str(&e, "s");
	mpack_enc_bin(&e, "b", 1);
	mpack_enc_bool(&e, true);
	/* a 40-byte string: raw16 in go-msgpack's old spec, str8 in the new */
	char s40[41];
	memset(s40, 'x', 40);
	s40[40] = '\0';
	mpack_enc_gostr(&e, s40);
	mpack_enc_str(&e, s40);
	CHECK_EQ_INT(e.err, 0);
	static const uint8_t head[] = {7, 0x81, 0xa3, 'K', 'e', 'y', 0xc0,
				       0xa1, 's', 0xc4, 1, 'b', 0xc3, 0xda, 0, 40};
	REQUIRE(e.sb.size == sizeof head + 40 + 2 + 40);
	CHECK_MEM(e.sb.data, head, sizeof head);
	CHECK(memcmp(e.sb.data + sizeof head + 40, "\xd9\x28", 2) == 0);
	mpack_enc_free(&e);
}

TEST_MAIN(key_matches_str_and_bin_not_nil_or_int, nil_is_zero_for_go_and_wrong_for_ours,
	  integer_bounds, text_copy_refuses_nul_and_overflow,
	  writers_go_raw_str_bin_and_type_byte)
