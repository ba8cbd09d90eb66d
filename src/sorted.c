/* sorted.c — see sorted.h. */
#include "sorted.h"

#include <string.h>

size_t sorted_name_pos(const void *table, size_t n,
		       const char *(*name_at)(const void *table, size_t i), const char *name,
		       bool *found)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name_at(table, mid), name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}
