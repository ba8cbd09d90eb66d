# tests/interop/lib.sh — helpers for interop scripts.  Source it, don't run it:
#
#   #!/usr/bin/env bash
#   set -u
#   . "$(dirname "$0")/lib.sh"
#   read -r P1 R1 P2 R2 < <(free_ports 4)
#   start_serf  s1 "$P1" "$R1"
#   start_vigil v1 "$P2" "$R2" -join=127.0.0.1:"$P1"
#   if wait_until 10 members_have "$R1" v1 alive; then ok join; else not_ok join "v1 never alive"; fi
#   finish
#
# Scripts are run from the repository root by tests/run.sh (under `timeout`)
# and must print "ok - NAME" / "not ok - NAME" lines.  Every process started
# here is killed and the temp dir (logs) removed when the script exits; set
# VIGIL_KEEP_LOGS=1 to keep it.  On failure the tail of each node log is
# printed (as "#" lines) at exit.

VIGIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VIGIL_BIN=${VIGIL_BIN:-$VIGIL_ROOT/build/vigil}
SERF_BIN=${SERF_BIN:-serf}
VIGIL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vigil-interop.XXXXXX")
: >"$VIGIL_TMP/pids"
: >"$VIGIL_TMP/ports"
_VIGIL_FAILS=0

_vigil_cleanup() {
    local rc=$? pid pids
    trap - EXIT INT TERM HUP
    pids=$(awk '{print $2}' "$VIGIL_TMP/pids" 2>/dev/null)
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.2
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$_VIGIL_FAILS" -gt 0 ] || [ "$rc" -ne 0 ]; then
        dump_logs 2>/dev/null || true
    fi
    if [ "${VIGIL_KEEP_LOGS:-0}" = 1 ]; then
        echo "# logs kept in $VIGIL_TMP"
    else
        rm -rf "$VIGIL_TMP"
    fi
    exit "$rc"
}
trap _vigil_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# free_port: print one loopback port that is free for both TCP and UDP
# (memberlist uses the same number for both) and not handed out before.
# Picks below the ephemeral range so outgoing connections cannot steal it.
# "Before" means by any script of the run when tests/run.sh runs several at
# once (VIGIL_PORT_REGISTRY, one file for the run, appended under a lock):
# a script holds a port unbound between picking it and starting the agent
# on it, sometimes for a minute, and a script running beside it found that
# port free and took it (test_rpc.sh's config-dir agent failed to bind in a
# CI run).  Alone, a script keeps its own list.
free_port() {
    python3 - "${VIGIL_PORT_REGISTRY:-$VIGIL_TMP/ports}" <<'PY'
import fcntl, random, socket, sys
with open(sys.argv[1], "a+") as reg:
    fcntl.flock(reg, fcntl.LOCK_EX)
    reg.seek(0)
    used = set(reg.read().split())
    for _ in range(1000):
        p = random.randrange(20000, 32000)
        if str(p) in used:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", p))
                finally:
                    s.close()
        except OSError:
            continue
        reg.write("%d\n" % p)
        print(p)
        sys.exit(0)
sys.exit("free_port: no free port found")
PY
}

# free_ports N: print N distinct free ports on one line.
free_ports() {
    local i out=()
    for ((i = 0; i < $1; i++)); do out+=("$(free_port)") || return 1; done
    echo "${out[*]}"
}

# _vigil_track NAME PID
_vigil_track() {
    echo "$1 $2" >>"$VIGIL_TMP/pids"
    echo "$2" >"$VIGIL_TMP/$1.pid"
}

# log_of NAME: path of NAME's log file.
log_of() { echo "$VIGIL_TMP/$1.log"; }

# pid_of NAME: pid of the process started as NAME.
pid_of() { cat "$VIGIL_TMP/$1.pid"; }

# start_serf NAME PORT RPCPORT [extra serf agent args...]
start_serf() {
    local name=$1 port=$2 rpc=$3
    shift 3
    "$SERF_BIN" agent -node="$name" -bind=127.0.0.1:"$port" \
        -rpc-addr=127.0.0.1:"$rpc" -log-level=debug "$@" \
        </dev/null >"$VIGIL_TMP/$name.log" 2>&1 &
    _vigil_track "$name" $!
}

# start_vigil NAME PORT RPCPORT [extra vigil agent args...]
start_vigil() {
    local name=$1 port=$2 rpc=$3
    shift 3
    if [ ! -x "$VIGIL_BIN" ]; then
        echo "# start_vigil: $VIGIL_BIN not built" >&2
        return 1
    fi
    "$VIGIL_BIN" agent -node="$name" -bind=127.0.0.1:"$port" \
        -rpc-addr=127.0.0.1:"$rpc" "$@" \
        </dev/null >"$VIGIL_TMP/$name.log" 2>&1 &
    _vigil_track "$name" $!
}

# stop_node NAME [SIGNAL]: signal (default TERM) the process started as NAME.
stop_node() { kill -"${2:-TERM}" "$(pid_of "$1")" 2>/dev/null; }

# kill_node NAME: SIGKILL it (an abrupt failure) and reap it.
kill_node() {
    local pid
    pid=$(pid_of "$1")
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# wait_until TIMEOUT_SECONDS cmd...: tests/wait.sh
. "$VIGIL_ROOT/tests/wait.sh"

# wait_ready RPCPORT [TIMEOUT=10]: wait until the agent answers RPC.
wait_ready() { wait_until "${2:-10}" members_of "$1"; }

# members_of RPCPORT [extra serf members args...]: the agent's member list.
members_of() {
    local rpc=$1
    shift
    "$SERF_BIN" members -rpc-addr=127.0.0.1:"$rpc" "$@"
}

# members_have RPCPORT NAME STATUS: true if the agent at RPCPORT lists NAME
# with STATUS (alive, failed, left, leaving).
members_have() {
    members_of "$1" 2>/dev/null | awk -v n="$2" -v s="$3" \
        '$1 == n && $3 == s {f = 1} END {exit !f}'
}

# need_serf NAME: end the script with one skip line if serf is not installed.
need_serf() {
    command -v "$SERF_BIN" >/dev/null 2>&1 && return 0
    ok "$1 # SKIP serf not installed"
    exit 0
}

# ok NAME / not_ok NAME MSG: TAP-ish result lines.
ok() { echo "ok - $1"; }
not_ok() {
    _VIGIL_FAILS=$((_VIGIL_FAILS + 1))
    echo "not ok - $1"
    shift
    # every line of the diagnostic marked, so tests/run.sh's summary of a
    # failure shows all of it (a log tail is several lines)
    [ $# -gt 0 ] && printf '%s\n' "$*" | sed 's/^/# /'
    return 0
}

# check NAME cmd...: ok/not_ok depending on cmd's exit status.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}

# dump_logs [LINES]: print the tail of every node log as "#" lines.
dump_logs() {
    local f
    for f in "$VIGIL_TMP"/*.log; do
        [ -e "$f" ] || continue
        echo "# ---- ${f##*/} (last ${1:-15} lines) ----"
        tail -n "${1:-15}" "$f" | sed 's/^/#   /'
    done
}

# finish: exit 1 if any not_ok was printed, else 0.
finish() { [ "$_VIGIL_FAILS" -eq 0 ] && exit 0; exit 1; }
