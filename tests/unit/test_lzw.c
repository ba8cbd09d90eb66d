/*
 * test_lzw.c — Go compress/lzw (LSB, litWidth 8) compatibility.
 *
 * The strongest checks use LZW streams written by the real Go writer inside
 * serf (wire_vectors.h): we must inflate them and, compressing the inflated
 * bytes again, produce the very same stream.
 */
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "wire.h"
#include "wire_vectors.h"

/* xorshift: deterministic pseudo-random data without touching rand(). */
static uint32_t rng_state = 2463534242u;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Compress, decompress, compare; returns the compressed size. */
static size_t roundtrip(const uint8_t *in, size_t len)
{
	struct wbuf z, back;
	wbuf_init(&z);
	wbuf_init(&back);
	CHECK_EQ_INT(lzw_compress(&z, in, len), WIRE_OK);
	CHECK_EQ_INT(lzw_decompress(&back, z.p, z.len, len + 1), WIRE_OK);
	CHECK_EQ_INT(back.len, len);
	if (back.len == len && len)
		CHECK_MEM(back.p, in, len);
	size_t zl = z.len;
	wbuf_free(&z);
	wbuf_free(&back);
	return zl;
}

TEST(lzw_empty_is_clear_then_eof)
{
	/* codes 256, 257 at 9 bits, LSB first: 0x20300 */
	static const uint8_t want[] = { 0x00, 0x03, 0x02 };
	struct wbuf z, back;
	wbuf_init(&z);
	wbuf_init(&back);
	CHECK_EQ_INT(lzw_compress(&z, NULL, 0), WIRE_OK);
	CHECK_EQ_INT(z.len, sizeof want);
	CHECK_MEM(z.p, want, sizeof want);
	CHECK_EQ_INT(lzw_decompress(&back, z.p, z.len, 10), WIRE_OK);
	CHECK_EQ_INT(back.len, 0);
	wbuf_free(&z);
	wbuf_free(&back);
}

TEST(lzw_single_byte_known_bytes)
{
	/* clear(256), 'a'(97), eof(257) at 9 bits: 256 | 97<<9 | 257<<18 */
	uint32_t v = 256u | 97u << 9 | 257u << 18;
	const uint8_t want[] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
				 (uint8_t)(v >> 24) };
	struct wbuf z;
	wbuf_init(&z);
	CHECK_EQ_INT(lzw_compress(&z, (const uint8_t *)"a", 1), WIRE_OK);
	CHECK_EQ_INT(z.len, 4);
	CHECK_MEM(z.p, want, 4);
	wbuf_free(&z);
}

TEST(lzw_reads_stream_without_leading_clear)
{
	/* Go writers before 1.17 did not start with a clear code. */
	uint32_t v = 97u | 257u << 9;
	const uint8_t in[] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16) };
	struct wbuf out;
	wbuf_init(&out);
	CHECK_EQ_INT(lzw_decompress(&out, in, sizeof in, 16), WIRE_OK);
	CHECK_EQ_INT(out.len, 1);
	CHECK(out.len == 1 && out.p[0] == 'a');
	wbuf_free(&out);
}

TEST(lzw_roundtrip_small)
{
	static const char *cases[] = { "a", "ab", "aa", "aaa", "aaaa", "abababab",
				       "TOBEORNOTTOBEORTOBEORNOT", "\x00\x00\xff\xff" };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		roundtrip((const uint8_t *)cases[i], strlen(cases[i]) ? strlen(cases[i]) : 4);
}

TEST(lzw_roundtrip_random)
{
	size_t sizes[] = { 1, 7, 255, 256, 257, 4096, 5000, 70000, 300000 };
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		uint8_t *buf = malloc(sizes[s]);
		REQUIRE(buf);
		for (size_t i = 0; i < sizes[s]; i++)
			buf[i] = (uint8_t)rng();
		roundtrip(buf, sizes[s]);
		/* small alphabet: long matches and many table resets */
		for (size_t i = 0; i < sizes[s]; i++)
			buf[i] = "abc"[rng() % 3];
		roundtrip(buf, sizes[s]);
		free(buf);
	}
}

TEST(lzw_roundtrip_repetitive_many_resets)
{
	/*
	 * A run of one byte learns one code per emitted code; a megabyte of it
	 * still passes 4096 codes, and the text below fills the table many
	 * times over, so both the width growth and the clear-and-restart path
	 * run in both directions.
	 */
	size_t n = 1u << 20;
	uint8_t *buf = malloc(n);
	REQUIRE(buf);
	memset(buf, 'z', n);
	size_t zl = roundtrip(buf, n);
	CHECK(zl < n / 100);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)("the quick brown fox jumps over the lazy dog "[i % 44] ^
				   (uint8_t)((i / 7919) & 3));
	roundtrip(buf, n);
	free(buf);
}

TEST(lzw_go_vectors_byte_exact)
{
	for (size_t i = 0; i < sizeof lzw_go_vectors / sizeof lzw_go_vectors[0]; i++) {
		const struct lzw_go_vector *v = &lzw_go_vectors[i];
		struct wbuf out, z;
		wbuf_init(&out);
		wbuf_init(&z);
		CHECK_EQ_INT(lzw_decompress(&out, v->lzw, v->lzw_len, WIRE_PUSH_MAX), WIRE_OK);
		CHECK_EQ_INT(out.len, v->plain_len);
		if (out.len == v->plain_len)
			CHECK_MEM(out.p, v->plain, v->plain_len);
		CHECK_EQ_INT(lzw_compress(&z, v->plain, v->plain_len), WIRE_OK);
		CHECK_EQ_INT(z.len, v->lzw_len);
		if (z.len == v->lzw_len)
			CHECK_MEM(z.p, v->lzw, v->lzw_len);
		wbuf_free(&out);
		wbuf_free(&z);
	}
}

TEST(lzw_every_prefix_is_truncated)
{
	uint8_t data[3000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = "xyz"[rng() % 3];
	struct wbuf z;
	wbuf_init(&z);
	REQUIRE(lzw_compress(&z, data, sizeof data) == WIRE_OK);
	for (size_t cut = 0; cut < z.len; cut++) {
		struct wbuf out;
		wbuf_init(&out);
		/* the end-of-data code ends in the last byte, so no prefix is whole */
		CHECK_EQ_INT(lzw_decompress(&out, z.p, cut, sizeof data), WIRE_ETRUNC);
		wbuf_free(&out);
	}
	wbuf_free(&z);
}

TEST(lzw_output_bound_stops_bombs)
{
	size_t n = 4u << 20;
	uint8_t *buf = calloc(1, n);
	REQUIRE(buf);
	struct wbuf z, out;
	wbuf_init(&z);
	wbuf_init(&out);
	REQUIRE(lzw_compress(&z, buf, n) == WIRE_OK);
	CHECK_EQ_INT(lzw_decompress(&out, z.p, z.len, 65536), WIRE_ETOOBIG);
	CHECK(out.len <= 65536);
	wbuf_reset(&out);
	CHECK_EQ_INT(lzw_decompress(&out, z.p, z.len, n), WIRE_OK);
	CHECK_EQ_INT(out.len, n);
	wbuf_free(&z);
	wbuf_free(&out);
	free(buf);
}

TEST(lzw_rejects_undefined_code)
{
	/* clear, then code 300 while only 257 is defined */
	uint32_t v = 256u | 300u << 9;
	const uint8_t in[] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), 0 };
	struct wbuf out;
	wbuf_init(&out);
	CHECK_EQ_INT(lzw_decompress(&out, in, sizeof in, 100), WIRE_EFORMAT);
	wbuf_free(&out);
}

TEST(lzw_random_garbage_never_crashes)
{
	uint8_t buf[600];
	int ok = 0;
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = rng() % sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rng();
		/* bias some inputs towards low codes so decoding goes further */
		if (iter & 1)
			for (size_t i = 1; i < n; i += 2)
				buf[i] &= 0x01;
		struct wbuf out;
		wbuf_init(&out);
		int rc = lzw_decompress(&out, buf, n, 1u << 16);
		CHECK(rc == WIRE_OK || rc == WIRE_ETRUNC || rc == WIRE_EFORMAT ||
		      rc == WIRE_ETOOBIG);
		ok += rc == WIRE_OK;
		wbuf_free(&out);
	}
	(void)ok;
}

TEST_MAIN(lzw_empty_is_clear_then_eof, lzw_single_byte_known_bytes,
	  lzw_reads_stream_without_leading_clear, lzw_roundtrip_small,
	  lzw_roundtrip_random, lzw_roundtrip_repetitive_many_resets,
	  lzw_go_vectors_byte_exact, lzw_every_prefix_is_truncated,
	  lzw_output_bound_stops_bombs, lzw_rejects_undefined_code,
	  lzw_random_garbage_never_crashes)
