/*
 * memtrim.c — give back the pages only the agent's start-up needed.
 *
 * An idle vigil agent's resident set is mostly pages of its own (static)
 * binary, not memory it allocated: of ~2 MiB, ~1.85 MiB were text and
 * read-only data mapped in while parsing flags and config, printing the
 * banner, resolving and joining, and by the kernel's fault-around (each
 * page fault on a file maps the 64 KiB around it).  Most of that code never
 * runs again.  Once start-up is over, the agent drops its mappings of
 * those pages (MADV_DONTNEED): nothing is lost, the file is unchanged, and
 * the pages the steady state does touch come back from the page cache on
 * first use (a minor fault each, a few hundred in all).  The idle RSS then
 * shows the steady state's working set (docs/BENCHMARKS.md has the figures).
 *
 * Only mappings of the executable that hold no private (copied-on-write)
 * page are dropped: for those, MADV_DONTNEED merely unmaps clean file pages.
 * A mapping the process has written to (.data, .bss, RELRO after
 * relocation, a debugger's breakpoint) would lose its contents, so any
 * mapping with an "Anonymous:" page in /proc/self/smaps, or writable, is
 * left alone.  Heap pages are returned with malloc_trim.
 */
#include "memtrim.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A line of /proc/self/smaps that starts a mapping: "lo-hi perms ..." */
static bool parse_range(const char *line, unsigned long *lo, unsigned long *hi, char perms[5])
{
	return sscanf(line, "%lx-%lx %4s", lo, hi, perms) == 3;
}

/* At most this many mappings of the executable are dropped (a static
 * binary has 4-6: headers, text, read-only data, ...). */
#define MAX_RANGES 16

int memtrim_startup_pages(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	char line[4096 + 128];
	unsigned long lo = 0, hi = 0;
	struct { unsigned long lo, hi; } drop[MAX_RANGES];
	int n_drop = 0;
	bool ours = false;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char p[5];
		if (parse_range(line, &a, &b, p)) {
			size_t len = strlen(line);
			if (len && line[len - 1] == '\n')
				line[--len] = 0;
			ours = len >= (size_t)n && strcmp(line + len - (size_t)n, exe) == 0 &&
			       p[1] != 'w';
			lo = a;
			hi = b;
			continue;
		}
		/* "Anonymous:" comes after the header line of its mapping and
		 * before the next one; a mapping is dropped only once it is
		 * known to have no private page */
		unsigned long anon_kb;
		if (ours && sscanf(line, "Anonymous: %lu kB", &anon_kb) == 1) {
			if (anon_kb == 0 && n_drop < MAX_RANGES) {
				drop[n_drop].lo = lo;
				drop[n_drop].hi = hi;
				n_drop++;
			}
			ours = false;
		}
	}
	fclose(f);
	malloc_trim(0);
	/*
	 * Dropped last, after the reading and the trimming: every page of
	 * code run after a drop comes back, and with the kernel's fault-around
	 * (64 KiB a fault) the stdio and scanf code run between drops brought
	 * back ~400 KiB of text at once.
	 */
	int dropped = 0;
	for (int i = 0; i < n_drop; i++)
		if (madvise((void *)drop[i].lo, drop[i].hi - drop[i].lo, MADV_DONTNEED) == 0)
			dropped++;
	return dropped;
}
