/* memtrim.h — drop the agent's start-up-only pages (see memtrim.c). */
#ifndef VIGIL_AGENT_MEMTRIM_H
#define VIGIL_AGENT_MEMTRIM_H

/*
 * Unmap the clean pages of the executable's read-only mappings and trim
 * the heap, once start-up is over.  Returns the number of mappings
 * dropped, -1 if /proc could not be read (nothing changed then).
 */
int memtrim_startup_pages(void);

#endif
