#!/bin/sh
# tests/chaos/handler.sh FILE — event handler of the chaos agents: appends
# "TIME SELF EVENT OWNER" (OWNER: the will's owner, or the user event's name)
# to FILE.  Lines are short and written with one append, so the agents'
# handlers do not interleave within a line.
owner=${VIGIL_WILL_OWNER:-${SERF_USER_EVENT:-}}
printf '%s %s %s %s\n' "$(date +%s.%N)" "$SERF_SELF_NAME" "$SERF_EVENT" "$owner" >>"$1"
cat >/dev/null
