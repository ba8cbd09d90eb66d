/*
 * config.h — serf's agent configuration: JSON files (-config-file,
 * -config-dir) with serf's key names, merged like serf's MergeConfig
 * (later files and then command-line flags override earlier values; lists
 * such as start_join and event_handlers accumulate; tags merge per key).
 */
#ifndef VIGIL_AGENT_CONFIG_H
#define VIGIL_AGENT_CONFIG_H

#include <stddef.h>

#include "agent_state.h"

void config_init(struct agent_config *c);
void config_free(struct agent_config *c);
/* Merge b into a (serf's MergeConfig). */
void config_merge(struct agent_config *a, const struct agent_config *b);
/* Parse one JSON document; err gets one line. */
int config_parse_json(const char *text, const char *source, struct agent_config *out,
		      char *err, size_t errlen);
/* Files and directories (*.json in name order), merged in order. */
int config_read_paths(char *const *paths, size_t n, struct agent_config *out, char *err,
		      size_t errlen);

#endif
