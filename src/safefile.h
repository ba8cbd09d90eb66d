/*
 * safefile.h — the one crash-safe way vigil replaces a file (keyring,
 * snapshot, will state), and the one way it moves a corrupt file aside.
 *
 * safefile_write writes PATH.tmp, fsyncs it, renames it over PATH and
 * fsyncs the directory, so PATH is always either the old or the new file.
 * PATH.tmp is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, after
 * removing whatever was there (a leftover of a crash): a symlink planted
 * at PATH.tmp is removed, never followed, so nobody who can write the
 * directory can make us overwrite another file through it.
 */
#ifndef VIGIL_SAFEFILE_H
#define VIGIL_SAFEFILE_H

#include <stddef.h>

struct safefile_part {
	const void *p;
	size_t n;
};

/*
 * Replace path with the concatenation of parts[0..nparts).  0, or -1 with
 * errno set and a message in err (may be NULL).  If before_rename is set and
 * returns non-zero, stop there (a test's "crash" point), leaving PATH.tmp.
 */
int safefile_write(const char *path, const struct safefile_part *parts, size_t nparts,
		   int (*before_rename)(const char *tmp, const char *path),
		   char *err, size_t errlen);

/*
 * Rename path to path + suffix (".corrupt"), replacing an older one, so the
 * evidence survives and the next write starts clean.  Returns the new name
 * (malloc'd; the caller frees it) or NULL with errno set.
 */
char *safefile_move_aside(const char *path, const char *suffix);

#endif
