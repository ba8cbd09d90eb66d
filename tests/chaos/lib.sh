# tests/chaos/lib.sh — network namespaces, nftables faults and agents for the
# fault-injection suite.  Source it, don't run it (run.sh and
# test_chaos_short.sh do).
#
# Topology: one namespace "${CH_PREFIX}br" holds a bridge; each agent i
# (1..N) lives in namespace "${CH_PREFIX}i" with one veth end "eth0"
# (address $CH_NET.i/24) whose peer "hi" is a port of that bridge.  Nothing
# is created in the root namespace: every interface and every nftables table
# lives in a namespace of this run, so deleting the run's namespaces removes
# all of it (and the namespace's process list, `ip netns pids`, finds every
# process left inside).  Each agent namespace has its own loopback, so every
# agent's RPC listens on 127.0.0.1:7373 and its gossip on $CH_NET.i:7946.
#
# Faults are nftables rules in table "inet chaos" of the agent namespaces
# (this kernel has no netem): random loss with `numgen random`, partitions
# and deafness with drop rules on input, a host vanishing with its link set
# down.  Only gossip (saddr in $CH_NET.0/24) is dropped, never the RPC on
# loopback, so the agents stay observable under every fault.
#
# Observation: each agent's log (info level; vigil logs the same
# "serf: EventMemberFailed: NAME ADDR" lines as serf) goes through a
# stamper that prefixes every line with the wall clock to the microsecond,
# so the figures are computed afterwards from timestamps (analyze.py), not
# from polling.  Will and user events go to an event handler that appends
# "TIME SELF EVENT OWNER" to $dir/events.

CH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CH_LIB=$CH_ROOT/tests/chaos
VIGIL_BIN=${VIGIL_BIN:-$CH_ROOT/build/vigil}
SERF_BIN=${SERF_BIN:-$(command -v serf 2>/dev/null || echo serf)}
# Every name this run creates starts with the prefix; the pid in it lets
# --cleanup tell a crashed run's leftovers from a live run's namespaces.
CH_PREFIX=${CH_PREFIX:-vch$$-}
CH_NET=${CH_NET:-10.77.0}
CH_PORT=7946
CH_RPC=127.0.0.1:7373
CH_N=${CH_N:-10}
CH_PY=${CH_PY:-/usr/bin/python3}
[ -x "$CH_PY" ] || CH_PY=python3

ch_ns() { echo "${CH_PREFIX}$1"; }
ch_addr() { echo "$CH_NET.$1"; }
ch_name() { printf 'n%02d' "$1"; }
ch_now() { echo "$EPOCHREALTIME"; }

# ch_can_run: 0 if this process can build the topology (root, netns,
# bridge, veth and nftables all work), else prints why and returns 1.
ch_can_run() {
    local t="vchprobe$$"
    if [ "$(id -u)" != 0 ]; then echo "not root"; return 1; fi
    for tool in ip nft; do
        command -v "$tool" >/dev/null 2>&1 || { echo "no $tool"; return 1; }
    done
    if ! ip netns add "$t" 2>/dev/null; then echo "no network namespaces"; return 1; fi
    local why=""
    ip -n "$t" link add b0 type bridge 2>/dev/null || why="no bridge support"
    [ -n "$why" ] || ip -n "$t" link add v0 type veth peer name v1 2>/dev/null || why="no veth support"
    [ -n "$why" ] || ip netns exec "$t" nft add table inet probe 2>/dev/null || why="no nftables in namespaces"
    [ -n "$why" ] || ip netns exec "$t" nft add chain inet probe c \
        '{ type filter hook input priority 0; }' 2>/dev/null || why="no nftables hooks"
    [ -n "$why" ] || ip netns exec "$t" nft add rule inet probe c \
        numgen random mod 100 '<' 10 drop 2>/dev/null || why="no nftables numgen"
    ip netns del "$t" 2>/dev/null
    [ -z "$why" ] || { echo "$why"; return 1; }
    return 0
}

# ch_cleanup_prefix PREFIX: kill every process inside the namespaces whose
# name starts with PREFIX and delete them (with their veths, bridge and
# nftables tables).
ch_cleanup_prefix() {
    local p=$1 ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case $ns in "$p"*) ;; *) continue ;; esac
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -CONT "$pid" 2>/dev/null
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
}

# ch_cleanup_stale: remove leftovers of crashed runs: namespaces named
# vch<PID>- whose PID no longer exists (a live run is left alone).
ch_cleanup_stale() {
    local ns pid n=0
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        [[ $ns =~ ^vch([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        kill -0 "$pid" 2>/dev/null && continue
        ch_cleanup_prefix "vch$pid-"
        n=$((n + 1))
    done
    echo "# removed $n stale namespace(s)"
}

# ch_net_up N: build the bridge and N agent namespaces.
ch_net_up() {
    local n=$1 i ns br
    br=$(ch_ns br)
    ip netns add "$br" || return 1
    ip -n "$br" link add br0 type bridge || return 1
    ip -n "$br" link set br0 up || return 1
    for ((i = 1; i <= n; i++)); do
        ns=$(ch_ns "$i")
        ip netns add "$ns" || return 1
        ip -n "$br" link add "h$i" type veth peer name eth0 netns "$ns" || return 1
        ip -n "$br" link set "h$i" master br0 up || return 1
        ip -n "$ns" addr add "$(ch_addr "$i")/24" dev eth0 || return 1
        ip -n "$ns" link set eth0 up || return 1
        ip -n "$ns" link set lo up || return 1
        ip netns exec "$ns" nft -f - <<EOF || return 1
table inet chaos {
    chain input { type filter hook input priority 0; policy accept; }
    chain output { type filter hook output priority 0; policy accept; }
}
EOF
    done
}

# ch_nft I RULE...: add a rule to agent I's input chain.
ch_nft() {
    local i=$1
    shift
    ip netns exec "$(ch_ns "$i")" nft add rule inet chaos input "$@"
}

# ch_faults_clear N: no rules, every link up.
ch_faults_clear() {
    local i
    for ((i = 1; i <= $1; i++)); do
        ip netns exec "$(ch_ns "$i")" nft flush table inet chaos
        ip -n "$(ch_ns "$i")" link set eth0 up
    done
}

# ch_loss N PCT [udp]: every agent drops PCT % of the gossip it receives
# (each datagram and TCP segment independently; a round trip loses ~2x);
# with "udp" only datagrams are lost (TCP, e.g. the fallback ping, is not).
ch_loss() {
    local i only=()
    [ "${3:-}" = udp ] && only=(meta l4proto udp)
    for ((i = 1; i <= $1; i++)); do
        ch_nft "$i" "${only[@]}" ip saddr "$CH_NET.0/24" numgen random mod 100 '<' "$2" drop
    done
}

# _ch_set "1 2 3": nftables set of those agents' addresses "{ a, b, c }".
_ch_set() {
    local i out=""
    for i in $1; do out+="${out:+, }$(ch_addr "$i")"; done
    echo "{ $out }"
}

# ch_partition "A..." "B...": agents in A drop everything from B and vice
# versa (both directions cut, on both sides).
ch_partition() {
    local i sa sb
    sa=$(_ch_set "$1")
    sb=$(_ch_set "$2")
    for i in $1; do ch_nft "$i" ip saddr "$sb" drop; done
    for i in $2; do ch_nft "$i" ip saddr "$sa" drop; done
}

# ch_deaf I: agent I receives no gossip (it still sends).
ch_deaf() { ch_nft "$1" ip saddr "$CH_NET.0/24" drop; }

# ch_vanish I: agent I's link goes down, as a host that lost power.
ch_vanish() { ip -n "$(ch_ns "$1")" link set eth0 down; }

# ---------------------------------------------------------------- agents

# ch_stamp: prefix each input line with the wall clock (s.us).
ch_stamp() {
    local l
    while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done
}

# ch_start DIR IMPL I [JOIN_I]: start agent I (vigil or serf) in its
# namespace, logging to DIR/nI.log; joins agent JOIN_I if given.  The
# agent's pid is written to DIR/nI.pid (ip netns exec execs the agent).
ch_start() {
    local dir=$1 impl=$2 i=$3 join=${4:-} bin name args
    name=$(ch_name "$i")
    case $impl in
        vigil) bin=$VIGIL_BIN ;;
        serf) bin=$SERF_BIN ;;
        *) echo "ch_start: unknown impl $impl" >&2; return 1 ;;
    esac
    args=(agent -node="$name" -bind="$(ch_addr "$i"):$CH_PORT" -rpc-addr="$CH_RPC"
        -log-level=info
        -event-handler="user:chaoswill=$CH_LIB/handler.sh $dir/events")
    [ "$impl" = vigil ] && args+=(
        -event-handler="member-will,will-revoked,member-returned,will-undeliverable=$CH_LIB/handler.sh $dir/events")
    [ -n "$join" ] && args+=(-join="$(ch_addr "$join"):$CH_PORT")
    ip netns exec "$(ch_ns "$i")" "$bin" "${args[@]}" </dev/null \
        > >(ch_stamp >>"$dir/$name.log") 2>&1 &
    echo $! >"$dir/$name.pid"
}

ch_pid() { cat "$1/$(ch_name "$2").pid"; }

# ch_signal DIR SIG I...: send SIG to those agents.
ch_signal() {
    local dir=$1 sig=$2 i
    shift 2
    for i in "$@"; do kill -"$sig" "$(ch_pid "$dir" "$i")" 2>/dev/null; done
}

# ch_kill DIR I...: kill -9 and reap.
ch_kill() {
    local dir=$1 i pid
    shift
    for i in "$@"; do
        pid=$(ch_pid "$dir" "$i")
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    return 0
}

# ch_stop_all DIR N: end every agent of a scenario (CONT first: a stopped
# process would not see the TERM), KILL what is left after 5 s.
ch_stop_all() {
    local dir=$1 n=$2 i pid pids=() t
    for ((i = 1; i <= n; i++)); do
        [ -f "$dir/$(ch_name "$i").pid" ] || continue
        pid=$(ch_pid "$dir" "$i")
        kill -CONT "$pid" 2>/dev/null
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for ((t = 0; t < 50; t++)); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    # event handlers still running inside the namespaces
    for ((i = 1; i <= n; i++)); do
        for pid in $(ip netns pids "$(ch_ns "$i")" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
    return 0
}

# ch_cli DIR IMPL I ARGS...: run the impl's CLI in agent I's namespace.
# Go flag parsing stops at the first argument that is not a flag, so the
# caller places "$CH_RPCF" after the (sub)command words itself.
CH_RPCF=-rpc-addr=$CH_RPC
ch_cli() {
    local impl=$2 i=$3 bin
    shift 3
    bin=$VIGIL_BIN
    [ "$impl" = serf ] && bin=$SERF_BIN
    ip netns exec "$(ch_ns "$i")" timeout 15 "$bin" "$@"
}

# ch_mark DIR LABEL: record a timeline mark (time label) for analyze.py.
ch_mark() { echo "$EPOCHREALTIME $2" >>"$1/marks"; }

# ch_meta DIR LINE...: scenario facts for analyze.py (one line each).
ch_meta() {
    local dir=$1
    shift
    printf '%s\n' "$@" >>"$dir/meta"
}

# ch_wait TIMEOUT cmd...: run cmd every 0.4 s (the agents' logs are read by
# a python process each time: spare the 2 cores) until it succeeds (0) or
# TIMEOUT seconds pass (1).
. "$CH_ROOT/tests/wait.sh"
ch_wait() { WAIT_INTERVAL=0.4 wait_until "$@"; }

# ch_sees DIR STATUS "OBS..." "TARGETS...": true when every observer's log
# says every target is in STATUS (alive|failed|left) now.
ch_sees() { "$CH_PY" "$CH_LIB/analyze.py" sees "$1" "$2" "$3" "$4"; }

# ch_cluster_up DIR IMPL N [TIMEOUT=40]: start N agents (all joining agent
# 1) and wait until every one sees all N alive.
ch_cluster_up() {
    local dir=$1 impl=$2 n=$3 i all=""
    mkdir -p "$dir"
    : >"$dir/events"
    for ((i = 1; i <= n; i++)); do all+="$i "; done
    ch_start "$dir" "$impl" 1
    ch_wait 10 ch_cli "$dir" "$impl" 1 members "$CH_RPCF" || return 1
    for ((i = 2; i <= n; i++)); do ch_start "$dir" "$impl" "$i" 1; done
    ch_wait "${4:-40}" ch_sees "$dir" alive "$all" "$all"
}

# ch_info DIR IMPL I KEY: one number from `vigil info` (vigil only).
ch_info() {
    ch_cli "$1" "$2" "$3" info "$CH_RPCF" 2>/dev/null |
        awk -v k="$4" '$1 == k && $2 == "=" {print $3; f = 1} END {if (!f) print "NA"}'
}
