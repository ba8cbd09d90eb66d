/*
 * tagsfile.c — serf's -tags-file (see tagsfile.h).  Same format as serf
 * writes (json.MarshalIndent(tags, "", "  "): keys sorted, two-space
 * indent), so either agent can take over the other's file.
 */
#include "tagsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A tags file is a handful of short strings; refuse to slurp anything huge. */
#define TAGS_FILE_MAX (1u << 20)

int tagsfile_load(const char *path, struct kv **tags, size_t *n, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0; /* serf: no file yet, nothing to restore */
	if (st.st_size > (off_t)TAGS_FILE_MAX) {
		snprintf(err, errlen, "Failed to read tags file: %s is larger than %u bytes", path,
			 TAGS_FILE_MAX);
		return -1;
	}
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (errno == EACCES || errno == EISDIR)
			snprintf(err, errlen, "Failed to read tags file: %s", strerror(errno));
		else
			snprintf(err, errlen, "Failed to decode tags file: %s", je.text);
		return -1;
	}
	if (!json_is_object(root) && !json_is_null(root)) {
		snprintf(err, errlen,
			 "Failed to decode tags file: json: cannot unmarshal %s into Go value of type map[string]string",
			 json_is_array(root) ? "array" : json_is_string(root) ? "string" : "number");
		json_decref(root);
		return -1;
	}
	const char *k;
	json_t *val;
	json_object_foreach(root, k, val) {
		if (!json_is_string(val)) {
			snprintf(err, errlen,
				 "Failed to decode tags file: json: cannot unmarshal value of \"%s\" into Go value of type string",
				 k);
			json_decref(root);
			return -1;
		}
	}
	json_object_foreach(root, k, val)
		kv_set(tags, n, k, json_string_value(val));
	json_decref(root);
	return 0;
}

int tagsfile_write(const char *path, vigil_t *v, char *err, size_t errlen)
{
	struct vigil_member *ms = NULL;
	size_t nm = 0;
	if (vigil_members(v, &ms, &nm) != 0) {
		snprintf(err, errlen, "Failed to encode tags: cannot list members");
		return -1;
	}
	json_t *obj = json_object();
	const char *self = vigil_name(v);
	for (size_t i = 0; obj && i < nm; i++) {
		if (strcmp(ms[i].name, self) != 0)
			continue;
		for (size_t t = 0; t < ms[i].n_tags; t++)
			json_object_set_new(obj, ms[i].tags[t].key, json_string(ms[i].tags[t].value));
	}
	vigil_members_free(ms, nm);
	char *text = obj ? json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(obj);
	if (!text) {
		snprintf(err, errlen, "Failed to encode tags: out of memory");
		return -1;
	}
	/* temp file + rename: a crash mid-write leaves the old tags, not half */
	size_t pl = strlen(path) + 8;
	char *tmp = malloc(pl);
	int rc = -1;
	if (tmp) {
		snprintf(tmp, pl, "%s.tmp", path);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		size_t len = strlen(text);
		if (fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 &&
		    close(fd) == 0) {
			fd = -1;
			if (rename(tmp, path) == 0)
				rc = 0;
		}
		if (rc != 0) {
			snprintf(err, errlen, "Failed to write tags file: %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			unlink(tmp);
		}
	} else {
		snprintf(err, errlen, "Failed to write tags file: out of memory");
	}
	free(tmp);
	free(text);
	return rc;
}
