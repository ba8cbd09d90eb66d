# tests/chaos/scenarios.sh — the fault scenarios.  Source after lib.sh.
#
# Each scenario is a function sc_NAME DIR IMPL N [ARGS...] run by
# ch_scenario on a freshly started cluster of N agents (all alive
# everywhere, mark `converged`).  It applies its fault, writes the marks of
# its timeline and, in DIR/meta, what analyze.py is to measure and which
# failures are expected (any other failure is a false death).  Every wait is
# bounded; the fixed sleeps are the fault durations themselves.  Wills are
# vigil's: on serf the same steps run without them.

# _ch_range A B: "A,A+1,...,B"
_ch_range() { seq -s, "$1" "$2"; }

# ch_set_will DIR IMPL OWNER (--to NAME|--event NAME) DELAY: OWNER
# registers a will (vigil only) and we wait until agent 1 and OWNER+1 hold it.
ch_set_will() {
    local dir=$1 impl=$2 owner=$3 how=$4 what=$5 delay=$6 holder
    [ "$impl" = vigil ] || return 0
    ch_cli "$dir" "$impl" "$owner" will set "$CH_RPCF" "$how" "$what" --delay "$delay" \
        "chaos will of $(ch_name "$owner")" >/dev/null || return 1
    for holder in 1 $((owner + 1)); do
        ch_wait 15 _ch_holds_will "$dir" "$impl" "$holder" "$owner" || return 1
    done
}
_ch_holds_will() {
    ch_cli "$1" "$2" "$3" will show "$CH_RPCF" "$(ch_name "$4")" | grep -q "$(ch_name "$4")"
}

# ch_probe_failures DIR IMPL N LABEL: vigil's probe_failures summed over
# the agents, as meta "value" (serf's are counted from its log lines).
ch_probe_failures_sum() {
    local dir=$1 impl=$2 n=$3 i sum=0 v
    for ((i = 1; i <= n; i++)); do
        v=$(ch_info "$dir" "$impl" "$i" probe_failures)
        [ "$v" = NA ] && { echo NA; return; }
        sum=$((sum + v))
    done
    echo "$sum"
}

# sc_loss DIR IMPL N PCT SECS [udp]: PCT % loss on every agent for SECS
# (of UDP only with "udp").
sc_loss() {
    local dir=$1 impl=$2 n=$3 pct=$4 secs=$5 proto=${6:-} all p0 p1
    all=$(_ch_range 1 "$n")
    [ "$impl" = vigil ] && p0=$(ch_probe_failures_sum "$dir" "$impl" "$n")
    ch_mark "$dir" loss_on
    ch_loss "$n" "$pct" "$proto"
    sleep "$secs"
    ch_mark "$dir" loss_off
    ch_faults_clear "$n"
    if [ "$impl" = vigil ]; then
        p1=$(ch_probe_failures_sum "$dir" "$impl" "$n")
        if [ "$p0" != NA ] && [ "$p1" != NA ]; then
            ch_meta "$dir" "value probe_failures $((p1 - p0)) failed probes (no ack at all), all agents"
        fi
    fi
    ch_meta "$dir" "window loss_on loss_off" "heal after_loss loss_off $all $all"
    ch_wait 60 ch_sees "$dir" alive "$all" "$all"
}

# sc_partition DIR IMPL N SECS: cut the cluster into a majority (first
# 60 %) and a minority; the minority's first agent has a will to the
# minority's second, which must never be delivered (the recipient can see
# its owner the whole time).  After SECS the cut heals.
sc_partition() {
    local dir=$1 impl=$2 n=$3 secs=$4 m a b all owner
    m=$((n * 4 / 10))
    a=$(_ch_range 1 $((n - m)))
    b=$(_ch_range $((n - m + 1)) "$n")
    all=$(_ch_range 1 "$n")
    owner=$((n - m + 1))
    ch_set_will "$dir" "$impl" "$owner" --to "$(ch_name $((owner + 1)))" 5s || ch_meta "$dir" "value setup will-not-set"
    ch_meta "$dir" "detect majority_side cut $a $b" "detect minority_side cut $b $a" \
        "heal heal heal $all $all" "will minority $owner $((owner + 1)) none"
    ch_mark "$dir" cut
    ch_partition "${a//,/ }" "${b//,/ }"
    sleep "$secs"
    ch_mark "$dir" heal
    ch_faults_clear "$n"
    ch_wait 60 ch_sees "$dir" alive "$all" "$all"
    # late news of the cut (a suspicion expiring just after the heal) and
    # the will's delay: watch a little longer
    sleep 8
}

# sc_deaf DIR IMPL N SECS: agent N receives no gossip for SECS (it sends).
sc_deaf() {
    local dir=$1 impl=$2 n=$3 secs=$4 others all
    others=$(_ch_range 1 $((n - 1)))
    all=$(_ch_range 1 "$n")
    ch_meta "$dir" "detect others_see_deaf deaf $others $n" "detect deaf_sees_others deaf $n $others" \
        "heal heal heal $all $all"
    ch_mark "$dir" deaf
    ch_deaf "$n"
    sleep "$secs"
    ch_mark "$dir" heal
    ch_faults_clear "$n"
    ch_wait 60 ch_sees "$dir" alive "$all" "$all"
    sleep 3
}

# sc_vanish DIR IMPL N: agent N's link goes down for good.
sc_vanish() {
    local dir=$1 impl=$2 n=$3 others
    others=$(_ch_range 1 $((n - 1)))
    ch_meta "$dir" "detect vanished vanish $others $n"
    ch_mark "$dir" vanish
    ch_vanish "$n"
    ch_wait 60 ch_sees "$dir" failed "$others" "$n"
    sleep 5
}

# sc_kill_wills DIR IMPL N DELAY: agent 2 (will --to agent 3) and agent 4
# (will --event chaoswill) are killed with -9 at once.
sc_kill_wills() {
    local dir=$1 impl=$2 n=$3 delay=$4 others
    others=1,3,$(_ch_range 5 "$n")
    [ "$n" -lt 5 ] && others=1,3
    ch_set_will "$dir" "$impl" 2 --to "$(ch_name 3)" "$delay" || ch_meta "$dir" "value setup will-not-set"
    ch_set_will "$dir" "$impl" 4 --event chaoswill "$delay" || ch_meta "$dir" "value setup will-not-set"
    ch_meta "$dir" "detect killed kill $others 2,4" "will to_member 2 3 once" \
        "event to_event chaoswill $others"
    ch_mark "$dir" kill
    ch_kill "$dir" 2 4
    ch_wait 60 ch_sees "$dir" failed "$others" 2,4
    # the will delay, then time for delivery and for any duplicate; the
    # user event may need a push-pull (30 s) to reach everybody
    sleep "${delay%s}"
    sleep 5
    [ "$impl" = vigil ] && ch_wait 35 _ch_event_seen_by "$dir" chaoswill "$others"
    sleep 3
}

# _ch_event_seen_by DIR NAME "OBS": every OBS ran its handler for user event NAME.
_ch_event_seen_by() {
    local want
    want=$(echo "$3" | tr ',' '\n' | wc -l)
    [ "$(awk -v e="$2" '$3 == "user" && $4 == e {print $2}' "$1/events" | sort -u | wc -l)" -ge "$want" ]
}

# sc_sigstop DIR IMPL N K SECS: the last K agents are stopped at once for
# SECS; nobody else may be marked failed, by anyone.
sc_sigstop() {
    local dir=$1 impl=$2 n=$3 k=$4 secs=$5 others stopped all i
    others=$(_ch_range 1 $((n - k)))
    stopped=$(_ch_range $((n - k + 1)) "$n")
    all=$(_ch_range 1 "$n")
    # the stopped agents may adopt the cluster's verdict on each other when
    # they resume (they could not answer each other either): only the
    # agents that kept running must never be marked failed
    ch_meta "$dir" "detect stopped stop $others $stopped" "expect $all $stopped" \
        "heal resumed cont $all $all"
    ch_mark "$dir" stop
    for i in ${stopped//,/ }; do ch_signal "$dir" STOP "$i"; done
    sleep "$secs"
    ch_mark "$dir" cont
    for i in ${stopped//,/ }; do ch_signal "$dir" CONT "$i"; done
    ch_wait 60 ch_sees "$dir" alive "$all" "$all"
    sleep 5
}

# sc_restart DIR IMPL N DELAY: agent 5 (will --to agent 6, DELAY) is killed
# with -9 and restarted as soon as agent 6 holds it failed, well inside the
# delay: the will must not be delivered anywhere.
sc_restart() {
    local dir=$1 impl=$2 n=$3 delay=$4 all t0 left
    all=$(_ch_range 1 "$n")
    ch_set_will "$dir" "$impl" 5 --to "$(ch_name 6)" "$delay" || ch_meta "$dir" "value setup will-not-set"
    ch_meta "$dir" "detect killed kill $(_ch_range 1 4),$(_ch_range 6 "$n") 5" \
        "heal restarted restart $all 5" "will restart 5 6 none-strict"
    ch_mark "$dir" kill
    t0=${EPOCHREALTIME%.*}
    ch_kill "$dir" 5
    ch_wait 40 ch_sees "$dir" failed 6 5
    ch_mark "$dir" restart
    ch_start "$dir" "$impl" 5 1
    ch_wait 30 ch_sees "$dir" alive "$all" 5
    # past the will delay (counted from the kill), plus time to deliver
    left=$((t0 + ${delay%s} + 8 - ${EPOCHREALTIME%.*}))
    [ "$left" -gt 0 ] && sleep "$left"
}

# sc_leave DIR IMPL N: the last 4 agents are killed; 30 s later agent N-4
# leaves gracefully; agents 1..N-5 must all see it `left`.
sc_leave() {
    local dir=$1 impl=$2 n=$3 l obs killed rc
    l=$((n - 4))
    obs=$(_ch_range 1 $((l - 1)))
    killed=$(_ch_range $((l + 1)) "$n")
    # the leaver marked failed is counted in its own row, not as a false death
    ch_meta "$dir" "expect $(_ch_range 1 "$l") $killed" "expect $obs $l" "left leave leave $l $obs"
    ch_mark "$dir" kill
    ch_kill "$dir" ${killed//,/ }
    sleep 30
    ch_mark "$dir" leave
    ch_cli "$dir" "$impl" "$l" leave "$CH_RPCF" >/dev/null 2>&1
    rc=$?
    ch_meta "$dir" "value leave_cli_exit $rc exit status of the leave command"
    ch_wait 20 ch_sees "$dir" left "$obs" "$l"
    sleep 2
}

# ch_scenario OUT NAME IMPL N FUNC ARGS...: one scenario on one impl, in
# OUT/NAME/IMPL: network reset, fresh cluster, FUNC, agents stopped,
# figures computed (OUT/NAME/IMPL/result.json).
ch_scenario() {
    local out=$1 sc=$2 impl=$3 n=$4 fn=$5 dir
    shift 5
    dir=$out/$sc/$impl
    rm -rf "$dir"
    mkdir -p "$dir"
    ch_faults_clear "$n"
    ch_meta "$dir" "scenario $sc" "impl $impl" "n $n"
    if ! ch_cluster_up "$dir" "$impl" "$n"; then
        ch_meta "$dir" "value setup cluster-did-not-converge"
    fi
    ch_mark "$dir" converged
    "$fn" "$dir" "$impl" "$n" "$@"
    ch_mark "$dir" end
    ch_stop_all "$dir" "$n"
    "$CH_PY" "$CH_LIB/analyze.py" report "$dir" >/dev/null
}
