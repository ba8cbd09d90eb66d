/*
 * fuzz_lzw — LZW as memberlist carries it (src/lzw.c).
 *
 *   1. lzw_decompress of the input, bounded to 64 KiB of output.  When it
 *      succeeds: asking for one byte less than it
 *      produced fails with ETOOBIG and leaves no more than that many bytes;
 *      exactly the size succeeds with the same bytes; and compressing the
 *      output then decompressing gives it back.
 *   2. lzw_compress of the input, then lzw_decompress: the same bytes.
 *      Compression is deterministic and starts with a clear code, as Go's
 *      writer (>= 1.17) does; dropping the last byte of its output makes
 *      the stream truncated (ETRUNC).
 */
#include "fuzz_common.h"
#include "wire.h"

/* Output bound: a quarter of what one packet may inflate to
 * (WIRE_PACKET_INFLATE_MAX); the bound is what is being tested, not its
 * size, and instrumented LZW is slow per byte. */
#define MAX_OUT ((size_t)64 * 1024)
#define RECHECK_MAX MAX_OUT

static void inflate_input(const uint8_t *data, size_t size)
{
	struct wbuf out;
	wbuf_init(&out);
	int rc = lzw_decompress(&out, data, size, MAX_OUT);
	FUZZ_ASSERT(rc <= 0);
	FUZZ_ASSERT(out.len <= MAX_OUT);
	fuzz_touch(out.p, out.len);
	if (rc != WIRE_OK) {
		FUZZ_ASSERT(rc == WIRE_ETRUNC || rc == WIRE_EFORMAT || rc == WIRE_ETOOBIG);
		wbuf_free(&out);
		return;
	}
	size_t n = out.len;
	if (n > RECHECK_MAX) {
		wbuf_free(&out);
		return;
	}

	/* Exactly n is enough; n - 1 is not. */
	struct wbuf again;
	wbuf_init(&again);
	FUZZ_ASSERT(lzw_decompress(&again, data, size, n) == WIRE_OK);
	FUZZ_ASSERT(again.len == n && (n == 0 || memcmp(again.p, out.p, n) == 0));
	if (n > 0) {
		wbuf_reset(&again);
		int r2 = lzw_decompress(&again, data, size, n - 1);
		FUZZ_ASSERTF(r2 == WIRE_ETOOBIG, "max_out %zu of %zu gave %s", n - 1, n,
			     wire_strerror(r2));
		FUZZ_ASSERT(again.len <= n - 1);
	}
	wbuf_free(&again);

	/* Our compressor reproduces it. */
	{
		struct wbuf z, back;
		wbuf_init(&z);
		wbuf_init(&back);
		FUZZ_ASSERT(lzw_compress(&z, out.p, n) == WIRE_OK);
		FUZZ_ASSERT(lzw_decompress(&back, z.p, z.len, n) == WIRE_OK);
		FUZZ_ASSERT(back.len == n && (n == 0 || memcmp(back.p, out.p, n) == 0));
		wbuf_free(&z);
		wbuf_free(&back);
	}
	wbuf_free(&out);
}

static void roundtrip_input(const uint8_t *data, size_t size)
{
	struct wbuf z, z2, back;
	wbuf_init(&z);
	wbuf_init(&z2);
	wbuf_init(&back);
	FUZZ_ASSERT(lzw_compress(&z, data, size) == WIRE_OK);
	/* 9-bit clear code (256) first: LSB-first, so byte 0 is 0x00, bit 0 of byte 1 is 1 */
	FUZZ_ASSERT(z.len >= 2 && z.p[0] == 0x00 && (z.p[1] & 1) == 1);
	if (size <= 1024) {
		FUZZ_ASSERT(lzw_compress(&z2, data, size) == WIRE_OK);
		FUZZ_ASSERT(z2.len == z.len && memcmp(z2.p, z.p, z.len) == 0);
	}
	int rc = lzw_decompress(&back, z.p, z.len, size);
	FUZZ_ASSERTF(rc == WIRE_OK, "decompressing our own output: %s", wire_strerror(rc));
	FUZZ_ASSERTF(back.len == size && (size == 0 || memcmp(back.p, data, size) == 0),
		     "roundtrip of %zu bytes gave %zu different bytes", size, back.len);
	/* The last byte always holds end-of-data bits: without it the stream
	 * is truncated, never silently accepted. */
	wbuf_reset(&back);
	rc = lzw_decompress(&back, z.p, z.len - 1, size);
	FUZZ_ASSERTF(rc == WIRE_ETRUNC, "compressor output minus its last byte: %s",
		     wire_strerror(rc));
	wbuf_free(&z);
	wbuf_free(&z2);
	wbuf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	inflate_input(data, size);
	roundtrip_input(data, size);
	return 0;
}
