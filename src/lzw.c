/*
 * lzw.c — LZW exactly as Go's compress/lzw speaks it with LSB bit order and
 * 8-bit literals, which is what memberlist's compress envelope carries.
 *
 * Code space: 0..255 literals, 256 clear, 257 end of data, 258.. learned
 * strings.  Codes start 9 bits wide and grow by one bit each time the next
 * code to be assigned reaches a power of two, up to 12 bits (code 4095).
 * Codes are packed least significant bit first.
 *
 * Byte-for-byte compatibility with the Go writer matters (peers and tests
 * compare compressed bytes), so the writer mirrors its observable choices:
 *   - a clear code is sent first (Go >= 1.17 does this; older writers did
 *     not, and the reader below accepts both);
 *   - when the next code to be assigned would be 4095, the writer sends a
 *     clear code instead of learning it and starts over with 9-bit codes;
 *   - Close sends the pending code, then end-of-data, then the partial byte.
 * The reader follows Go's reader: after the table fills at 12 bits it keeps
 * decoding with the frozen table until a clear code arrives; a stream that
 * ends before the end-of-data code is an error (Go's io.ErrUnexpectedEOF,
 * which makes memberlist drop the message).
 */
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define LZW_LIT_WIDTH 8
#define LZW_CLEAR 256u
#define LZW_EOF 257u
#define LZW_MAX_WIDTH 12
#define LZW_MAX_CODE 4095u /* (1 << LZW_MAX_WIDTH) - 1 */

/* ---- bit writer (LSB first) ---- */

struct bitw {
	struct wbuf *out;
	uint32_t bits;
	unsigned nbits;
};

static void bitw_put(struct bitw *w, uint32_t code, unsigned width)
{
	w->bits |= code << w->nbits;
	w->nbits += width;
	while (w->nbits >= 8) {
		uint8_t b = (uint8_t)w->bits;
		wbuf_append(w->out, &b, 1); /* oom is sticky; checked at the end */
		w->bits >>= 8;
		w->nbits -= 8;
	}
}

/*
 * Dictionary for the writer: open addressing keyed on (prefix code, next
 * byte).  8192 slots keep the load factor under one half for 4096 codes.
 */
#define LZW_HSIZE 8192u
#define LZW_HEMPTY 0xffffffffu

struct lzw_enc {
	struct bitw w;
	uint32_t width, hi, overflow;
	uint32_t slot[LZW_HSIZE]; /* key << 12 | code, or LZW_HEMPTY */
};

static uint32_t lzw_hash(uint32_t key)
{
	/* key is at most 20 bits; a multiplicative hash spreads it well. */
	return (key * 2654435761u) >> (32 - 13);
}

static void enc_reset_table(struct lzw_enc *e)
{
	memset(e->slot, 0xff, sizeof e->slot);
	e->width = LZW_LIT_WIDTH + 1;
	e->hi = LZW_EOF;
	e->overflow = 1u << (LZW_LIT_WIDTH + 1);
}

/*
 * Account for one emitted code.  Returns true when the code space ran out:
 * a clear code has then been sent and nothing may be learned this step.
 */
static bool enc_inc_hi(struct lzw_enc *e)
{
	e->hi++;
	if (e->hi == e->overflow) {
		e->width++;
		e->overflow <<= 1;
	}
	if (e->hi == LZW_MAX_CODE) {
		bitw_put(&e->w, LZW_CLEAR, e->width);
		enc_reset_table(e);
		return true;
	}
	return false;
}

int lzw_compress(struct wbuf *out, const uint8_t *in, size_t len)
{
	struct lzw_enc *e = malloc(sizeof *e);
	if (!e)
		return WIRE_ENOMEM;
	e->w.out = out;
	e->w.bits = 0;
	e->w.nbits = 0;
	enc_reset_table(e);

	bitw_put(&e->w, LZW_CLEAR, e->width);
	if (len > 0) {
		uint32_t code = in[0];
		for (size_t i = 1; i < len; i++) {
			uint32_t key = code << 8 | in[i];
			uint32_t h = lzw_hash(key);
			bool found = false;
			while (e->slot[h] != LZW_HEMPTY) {
				if (e->slot[h] >> 12 == key) {
					code = e->slot[h] & LZW_MAX_CODE;
					found = true;
					break;
				}
				h = (h + 1) & (LZW_HSIZE - 1);
			}
			if (found)
				continue;
			bitw_put(&e->w, code, e->width);
			code = in[i];
			if (enc_inc_hi(e))
				continue;
			/* h is the empty slot the probe above stopped at. */
			e->slot[h] = key << 12 | e->hi;
		}
		bitw_put(&e->w, code, e->width);
		enc_inc_hi(e);
	}
	bitw_put(&e->w, LZW_EOF, e->width);
	if (e->w.nbits > 0) {
		uint8_t b = (uint8_t)e->w.bits;
		wbuf_append(out, &b, 1);
	}
	free(e);
	return out->oom ? WIRE_ENOMEM : WIRE_OK;
}

/* ---- reader ---- */

#define LZW_NONE 0xffffu /* "no previous code" */

struct lzw_dec {
	uint16_t prefix[LZW_MAX_CODE + 1];
	uint8_t suffix[LZW_MAX_CODE + 1];
	uint8_t stack[LZW_MAX_CODE + 2]; /* one expansion, built back to front */
};

int lzw_decompress(struct wbuf *out, const uint8_t *in, size_t len, size_t max_out)
{
	struct lzw_dec *d = calloc(1, sizeof *d);
	if (!d)
		return WIRE_ENOMEM;

	uint32_t width = LZW_LIT_WIDTH + 1, hi = LZW_EOF;
	uint32_t overflow = 1u << width, last = LZW_NONE;
	uint32_t bits = 0;
	unsigned nbits = 0;
	size_t pos = 0, produced = 0;
	int rc = WIRE_ETRUNC; /* running out of input before EOF code */

	for (;;) {
		while (nbits < width) {
			if (pos >= len)
				goto done;
			bits |= (uint32_t)in[pos++] << nbits;
			nbits += 8;
		}
		uint32_t code = bits & ((1u << width) - 1);
		bits >>= width;
		nbits -= width;

		if (code == LZW_CLEAR) {
			width = LZW_LIT_WIDTH + 1;
			hi = LZW_EOF;
			overflow = 1u << width;
			last = LZW_NONE;
			continue;
		}
		if (code == LZW_EOF) {
			rc = WIRE_OK;
			goto done;
		}
		if (code > hi) {
			rc = WIRE_EFORMAT;
			goto done;
		}

		/*
		 * Expand code into the tail of stack.  code == hi (with a previous
		 * code) is the string not yet in the table: the previous string
		 * followed by its own first byte.
		 */
		size_t i = sizeof d->stack;
		uint32_t c = code;
		if (code == hi && last != LZW_NONE) {
			uint32_t f = last;
			while (f >= LZW_CLEAR)
				f = d->prefix[f];
			d->stack[--i] = (uint8_t)f;
			c = last;
		}
		/*
		 * Every learned code's prefix is smaller than the code itself, so
		 * this walk ends; the bound on i is belt and braces for the
		 * never-assigned slots a hostile stream might reference.
		 */
		while (c >= LZW_CLEAR) {
			if (i <= 1 || c == LZW_EOF) {
				rc = WIRE_EFORMAT;
				goto done;
			}
			d->stack[--i] = d->suffix[c];
			c = d->prefix[c];
		}
		d->stack[--i] = (uint8_t)c;

		size_t n = sizeof d->stack - i;
		if (n > max_out - produced) {
			rc = WIRE_ETOOBIG;
			goto done;
		}
		if (wbuf_append(out, d->stack + i, n) != 0) {
			rc = WIRE_ENOMEM;
			goto done;
		}
		produced += n;

		if (last != LZW_NONE) {
			d->suffix[hi] = (uint8_t)c; /* first byte of this expansion */
			d->prefix[hi] = (uint16_t)last;
		}
		last = code;
		hi++;
		if (hi >= overflow) {
			if (width == LZW_MAX_WIDTH) {
				/* Table full: stop learning until the next clear. */
				last = LZW_NONE;
				hi--;
			} else {
				width++;
				overflow <<= 1;
			}
		}
	}
done:
	free(d);
	return rc;
}
