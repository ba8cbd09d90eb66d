/*
 * gobase64.c — Go's encoding/base64 (StdEncoding, padded) error positions;
 * see gobase64.h.  Follows decodeQuantum in Go's base64.go: 4-character
 * quanta, '\r' and '\n' skipped anywhere, padding only at the end.
 */
#include "gobase64.h"

#include <string.h>

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static size_t skip_newlines(const char *s, size_t n, size_t si)
{
	while (si < n && (s[si] == '\n' || s[si] == '\r'))
		si++;
	return si;
}

/* One quantum from si: *out decoded bytes, 0 or -1 (*bad_at set); *done
 * when the input ended (or padding ended it). */
static int quantum(const char *s, size_t n, size_t *si, long *out, int *done, size_t *bad_at)
{
	int j;
	for (j = 0; j < 4; j++) {
		if (*si == n) {
			if (j == 0) {
				*done = 1;
				*out = 0;
				return 0;
			}
			*bad_at = *si - (size_t)j; /* StdEncoding wants padding */
			return -1;
		}
		unsigned char in = (unsigned char)s[(*si)++];
		if (b64_value(in) >= 0)
			continue;
		if (in == '\n' || in == '\r') {
			j--;
			continue;
		}
		if (in != '=' || j < 2) {
			*bad_at = *si - 1;
			return -1;
		}
		if (j == 2) {
			/* "==" expected; the first '=' is consumed */
			*si = skip_newlines(s, n, *si);
			if (*si == n) {
				*bad_at = n;
				return -1;
			}
			if (s[*si] != '=') {
				*bad_at = *si - 1;
				return -1;
			}
			(*si)++;
		}
		*si = skip_newlines(s, n, *si);
		if (*si < n) {
			*bad_at = *si; /* trailing garbage */
			return -1;
		}
		*done = 1;
		*out = j - 1;
		return 0;
	}
	*out = 3;
	return 0;
}

long go_b64_decoded_len(const char *s, size_t *bad_at)
{
	size_t n = strlen(s), si = 0;
	long total = 0;
	for (;;) {
		long got;
		int done = 0;
		if (quantum(s, n, &si, &got, &done, bad_at) != 0)
			return -1;
		total += got;
		if (done || si == n)
			return total;
	}
}
