/* grow.c — see grow.h. */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

void *array_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return v;
	size_t nc = *cap ? *cap : (first ? first : 1);
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return NULL;
		nc *= 2;
	}
	if (elem && nc > SIZE_MAX / elem)
		return NULL;
	void *nv = realloc(v, nc * elem);
	if (!nv)
		return NULL;
	*cap = nc;
	return nv;
}
