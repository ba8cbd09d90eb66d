/*
 * grow.h — room in a growing array: the one idiom behind the library's
 * dynamic arrays (start small, double when full).
 */
#ifndef VIGIL_GROW_H
#define VIGIL_GROW_H

#include <stddef.h>

/*
 * The array v (of *cap elements of elem bytes) with room for at least need
 * (>= 1) elements: v itself while it has the room, else v reallocated to a
 * capacity doubled from `first` (*cap updated).  NULL when memory is short
 * or the size would overflow; v and *cap are then unchanged.
 */
void *array_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first);

#endif
