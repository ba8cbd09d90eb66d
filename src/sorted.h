/*
 * sorted.h — binary search of a table kept sorted by name: the one lookup
 * behind the library's name-keyed tables (serf's members and intents, the
 * will module's members and records), which a join's push-pull consults
 * once per member of the cluster.
 */
#ifndef VIGIL_SORTED_H
#define VIGIL_SORTED_H

#include <stdbool.h>
#include <stddef.h>

/*
 * In a table of n entries sorted by name (strcmp order), whose i-th name
 * name_at(table, i) returns: the index of `name` (*found true) or the index
 * it would be inserted at (*found false).
 */
size_t sorted_name_pos(const void *table, size_t n,
		       const char *(*name_at)(const void *table, size_t i), const char *name,
		       bool *found);

#endif
