/* safefile.c — see safefile.h. */
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = saved;
}

static char *with_suffix(const char *path, const char *suffix)
{
	size_t pl = strlen(path), sl = strlen(suffix);
	char *s = malloc(pl + sl + 1);
	if (s) {
		memcpy(s, path, pl);
		memcpy(s + pl, suffix, sl + 1);
	}
	return s;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Make the rename durable; ignored where directories cannot be fsync'd. */
static int fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = !slash ? strdup(".") : slash == path ? strdup("/")
			 : strndup(path, (size_t)(slash - path));
	if (!dir)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	if (rc != 0 && (errno == EINVAL || errno == EROFS || errno == EBADF))
		rc = 0;
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int safefile_write(const char *path, const struct safefile_part *parts, size_t nparts,
		   int (*before_rename)(const char *tmp, const char *path),
		   char *err, size_t errlen)
{
	if (!path || !*path) {
		errno = EINVAL;
		set_err(err, errlen, "no path");
		return -1;
	}
	char *tmp = with_suffix(path, ".tmp");
	if (!tmp) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	int rc = -1;
	/* A leftover (or planted) PATH.tmp goes first; O_EXCL|O_NOFOLLOW then
	 * refuses anything that reappears there instead of following it. */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		set_err(err, errlen, "remove stale %s: %s", tmp, strerror(errno));
		goto out;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_err(err, errlen, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].n && write_all(fd, parts[i].p, parts[i].n) != 0) {
			set_err(err, errlen, "write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			goto out;
		}
	}
	/* the new name must never point at data that is not on disk yet */
	if (fsync(fd) != 0) {
		set_err(err, errlen, "fsync %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0) {
		set_err(err, errlen, "close %s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (before_rename && before_rename(tmp, path) != 0) {
		errno = ECANCELED;
		set_err(err, errlen, "abandoned before rename (test hook)");
		goto out;
	}
	if (rename(tmp, path) != 0) {
		set_err(err, errlen, "rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (fsync_dir_of(path) != 0) {
		/* the file is complete either way; only durability is in doubt */
		set_err(err, errlen, "fsync of the directory of %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

char *safefile_move_aside(const char *path, const char *suffix)
{
	char *aside = with_suffix(path, suffix);
	if (!aside)
		return NULL;
	if (rename(path, aside) != 0) {
		int saved = errno;
		free(aside);
		errno = saved;
		return NULL;
	}
	return aside;
}
