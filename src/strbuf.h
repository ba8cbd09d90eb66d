/*
 * strbuf.h — a growable text buffer filled with printf, for texts built
 * piece by piece (the snapshot file, the Prometheus page).  A failed
 * allocation sets oom and turns later appends into no-ops, so a caller
 * checks once at the end.
 */
#ifndef VIGIL_STRBUF_H
#define VIGIL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *p;      /* NUL-terminated once anything was appended */
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
void strbuf_printf(struct strbuf *b, const char *fmt, ...);

/* Frees p and empties the buffer. */
void strbuf_free(struct strbuf *b);

#endif
