/*
 * tagsfile.h — serf's -tags-file: tags changed at run time (RPC "tags",
 * `vigil tags`) are written to a JSON object file, and restored from it at
 * the next start (serf agent loadTagsFile / writeTagsFile).
 */
#ifndef VIGIL_AGENT_TAGSFILE_H
#define VIGIL_AGENT_TAGSFILE_H

#include <stddef.h>

#include "agent_state.h"

/*
 * Load `path` into *tags (appended).  A missing file is not an error (the
 * first start).  0, or -1 with serf's message in err ("Failed to read tags
 * file: ...", "Failed to decode tags file: ...").
 */
int tagsfile_load(const char *path, struct kv **tags, size_t *n, char *err, size_t errlen);

/* Write our node's current tags (from the library) to `path`, replacing it
 * atomically, mode 0600 as serf.  0, or -1 with the message in err. */
int tagsfile_write(const char *path, vigil_t *v, char *err, size_t errlen);

#endif
