#!/usr/bin/env bash
# test_install.sh — libvigil as a user gets it.
#
#  1. `make install` into a temporary DESTDIR: every file in its place, the
#     real soname, the shared library exporting nothing but vigil_*, and the
#     installed static archive defining no other global symbol either.
#  2. examples/epoll_embed.c built with `pkg-config --cflags --libs vigil`
#     alone (shared) and with `-static` + `pkg-config --static` (static),
#     each run against a real `serf agent`: it joins, sends a user event
#     serf's handler sees, and leaves; serf lists it as `left`.
#  3. `make uninstall` removes everything it installed.
#  4. The agent tells $NOTIFY_SOCKET READY=1 (systemd Type=notify) and
#     leaves on SIGINT (the unit's KillSignal), as Debian's serf.service.
#  5. `make deb`; as root: `dpkg -i`, check the files, pkg-config and the
#     dynamic linker see it, `dpkg -r` removes it (skipped when not root).
set -u
. "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT" || exit 2

dest=$VIGIL_TMP/stage
prefix=/usr/local
lib=$dest$prefix/lib

# --- 1. install ---------------------------------------------------------
if make -s --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" \
        >"$VIGIL_TMP/install.log" 2>&1; then
    ok install
else
    not_ok install "make install failed: $(tail -5 "$VIGIL_TMP/install.log")"
    finish
fi
ver=$(sed -n 's/^#define VIGIL_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\).*/\2/p' \
      include/vigil.h | paste -sd.)
major=${ver%%.*}
missing=
for f in include/vigil.h lib/libvigil.so."$ver" lib/libvigil.so."$major" lib/libvigil.so \
         lib/libvigil.a lib/pkgconfig/vigil.pc bin/vigil share/man/man1/vigil.1 \
         share/man/man3/libvigil.3 lib/systemd/system/vigil.service share/doc/vigil/copyright; do
    [ -e "$dest$prefix/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then ok install_files; else not_ok install_files "missing:$missing"; fi
if [ "$(readlink "$lib/libvigil.so.$major")" = "libvigil.so.$ver" ] &&
   [ "$(readlink "$lib/libvigil.so")" = "libvigil.so.$major" ]; then
    ok install_symlinks
else
    not_ok install_symlinks "$(ls -l "$lib" | tr '\n' ' ')"
fi
# The installed header alone compiles as strict C99 and as C++.
printf '#include <vigil.h>\nint main(void) { return vigil_version(0) > 0 ? 0 : 1; }\n' \
    >"$VIGIL_TMP/hdr.c"
if cc -std=c99 -pedantic -Wall -Wextra -Werror -I"$dest$prefix/include" -fsyntax-only \
        "$VIGIL_TMP/hdr.c" 2>"$VIGIL_TMP/hdr.log" &&
   { ! command -v c++ >/dev/null || c++ -Wall -Wextra -Werror -I"$dest$prefix/include" \
        -fsyntax-only -x c++ "$VIGIL_TMP/hdr.c" 2>>"$VIGIL_TMP/hdr.log"; }; then
    ok header_c99_and_cxx
else
    not_ok header_c99_and_cxx "$(head -3 "$VIGIL_TMP/hdr.log")"
fi
soname=$(readelf -d "$lib/libvigil.so.$ver" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
if [ "$soname" = "libvigil.so.$major" ]; then ok soname; else not_ok soname "SONAME '$soname'"; fi

# Only vigil_* leaves the library, shared or static.
exported=$(nm -D --defined-only "$lib/libvigil.so.$ver" | awk '{print $3}')
others=$(echo "$exported" | grep -v '^vigil_' | head -5)
if [ -z "$others" ] && echo "$exported" | grep -qx vigil_create; then
    ok so_exports_only_vigil
else
    not_ok so_exports_only_vigil "also exported: $others"
fi
# Every function the header declares is exported (a declaration without
# VIGIL_API would compile for users and then fail to link).
hdr=$dest$prefix/include/vigil.h
unmarked=$(grep -nE '^(const |unsigned |struct |enum )?[a-z_0-9]+[ *]+vigil_[a-z0-9_]+\(' "$hdr" |
           grep -v VIGIL_API | head -3)
declared=$(grep -oE '^VIGIL_API [^(]*\bvigil_[a-z0-9_]+\(' "$hdr" | grep -oE 'vigil_[a-z0-9_]+\($' |
           tr -d '(' | sort)
unexported=$(comm -23 <(echo "$declared") <(echo "$exported" | sort))
if [ -z "$unmarked" ] && [ -z "$unexported" ] && [ -n "$declared" ]; then
    ok header_functions_exported
else
    not_ok header_functions_exported "without VIGIL_API: $unmarked; not exported: $unexported"
fi
others=$(nm -g --defined-only "$lib/libvigil.a" | awk 'NF == 3 {print $3}' | grep -v '^vigil_' | head -5)
if [ -z "$others" ] && nm -g --defined-only "$lib/libvigil.a" | grep -q ' T vigil_create$'; then
    ok static_defines_only_vigil
else
    not_ok static_defines_only_vigil "also global: $others"
fi
# The simulator is not part of the product.
if nm "$lib/libvigil.a" | grep -q ' sim_'; then
    not_ok no_simulator "sim_* symbols in libvigil.a"
else
    ok no_simulator
fi

# --- 2. build the example with pkg-config alone, and run it against serf -
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
ex_shared=$VIGIL_TMP/ex_shared
ex_static=$VIGIL_TMP/ex_static
# shellcheck disable=SC2046
if cc -Wall -Wextra -Werror -o "$ex_shared" examples/epoll_embed.c \
        $(pkg-config --cflags --libs vigil) 2>"$VIGIL_TMP/cc1.log" &&
   LD_LIBRARY_PATH=$lib ldd "$ex_shared" | grep -q "libvigil.so.$major => $lib/"; then
    ok build_shared_with_pkg_config
else
    not_ok build_shared_with_pkg_config "$(head -5 "$VIGIL_TMP/cc1.log")"
fi
# shellcheck disable=SC2046
if cc -static -Wall -Wextra -Werror -o "$ex_static" examples/epoll_embed.c \
        $(pkg-config --static --cflags --libs vigil) 2>"$VIGIL_TMP/cc2.log" &&
   ! ldd "$ex_static" >/dev/null 2>&1; then
    ok build_static_with_pkg_config
else
    not_ok build_static_with_pkg_config "$(grep -v 'statically linked' "$VIGIL_TMP/cc2.log" | head -5)"
fi

read -r SP SR P1 P2 < <(free_ports 4)
events=$VIGIL_TMP/serf-events
: >"$events"
start_serf s1 "$SP" "$SR" -event-handler="user=cat >> $events; echo >> $events"
wait_ready "$SR" 10 || not_ok serf_ready "serf agent did not start"

# run_example KIND BINARY PORT: join serf, send event, leave; serf must see all.
run_example() {
    local kind=$1 bin=$2 port=$3 name=ex-$1
    local out=$VIGIL_TMP/$name.log
    if ! LD_LIBRARY_PATH=$lib timeout 30 "$bin" -name="$name" -bind=127.0.0.1:"$port" \
            -join=127.0.0.1:"$SP" -event=hello-"$kind"=payload-"$kind" -leave-after=300 \
            >"$out" 2>&1; then
        not_ok "run_$kind" "exit status $?: $(tail -3 "$out" | tr '\n' ' ')"
        return
    fi
    if grep -q '^joined 1 node' "$out" && grep -q "^member-join s1 " "$out"; then
        ok "${kind}_joined_serf"
    else
        not_ok "${kind}_joined_serf" "$(tr '\n' ' ' <"$out")"
    fi
    if wait_until 10 grep -q "payload-$kind" "$events"; then
        ok "${kind}_event_seen_by_serf"
    else
        not_ok "${kind}_event_seen_by_serf" "serf's handler got: $(tr '\n' ' ' <"$events")"
    fi
    if wait_until 10 members_have "$SR" "$name" left; then
        ok "${kind}_left_seen_by_serf"
    else
        not_ok "${kind}_left_seen_by_serf" "$(members_of "$SR" | tr '\n' ';')"
    fi
}
[ -x "$ex_shared" ] && run_example shared "$ex_shared" "$P1"
[ -x "$ex_static" ] && run_example static "$ex_static" "$P2"

# --- 3. uninstall ---------------------------------------------------------
make -s --no-print-directory uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null 2>&1
left=$(find "$dest" \( -type f -o -type l \) | head -5)
if [ -z "$left" ]; then ok uninstall; else not_ok uninstall "still there: $left"; fi

# --- 4. systemd readiness (the unit is Type=notify, KillSignal=SIGINT) ----
read -r NP NR < <(free_ports 2)
sock=$VIGIL_TMP/notify.sock
python3 - "$sock" >"$VIGIL_TMP/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
for _ in range(2):
    try:
        print(s.recv(4096).decode(), flush=True)
    except socket.timeout:
        break
PY
_vigil_track notify-listener $!
wait_until 10 test -S "$sock"
NOTIFY_SOCKET=$sock start_vigil n1 "$NP" "$NR" -join=127.0.0.1:"$SP"
if wait_until 10 grep -qx READY=1 "$VIGIL_TMP/notify.out" && members_have "$SR" n1 alive; then
    ok sd_notify_ready
else
    not_ok sd_notify_ready "listener got: $(tr '\n' ' ' <"$VIGIL_TMP/notify.out")"
fi
stop_node n1 INT
if wait_until 10 grep -qx STOPPING=1 "$VIGIL_TMP/notify.out" &&
   wait_until 10 members_have "$SR" n1 left; then
    ok sigint_leaves
else
    not_ok sigint_leaves "$(members_of "$SR" | tr '\n' ';')"
fi

# --- 5. Debian package -----------------------------------------------------
deb=$(make -s --no-print-directory deb 2>"$VIGIL_TMP/deb.log" | tail -1)
if [ -f "$deb" ] && dpkg-deb -c "$deb" >"$VIGIL_TMP/deb.list" &&
   grep -q "\./usr/lib/libvigil\.so\.$ver" "$VIGIL_TMP/deb.list"; then
    ok deb_built
else
    not_ok deb_built "$(tail -5 "$VIGIL_TMP/deb.log")"
    finish
fi
if [ "$(id -u)" != 0 ]; then
    echo "ok - deb_install # SKIP not root"
    finish
fi
# dpkg takes a lock other users of the machine may hold for a moment.
dpkg_retry() {
    local i
    for i in $(seq 1 30); do
        dpkg "$@" >"$VIGIL_TMP/dpkg.log" 2>&1 && return 0
        grep -q 'lock' "$VIGIL_TMP/dpkg.log" || return 1
        sleep 1
    done
    return 1
}
if dpkg_retry -i "$deb"; then
    ok deb_install
else
    not_ok deb_install "$(tail -5 "$VIGIL_TMP/dpkg.log")"
    finish
fi
files_ok=1
for f in /usr/include/vigil.h /usr/lib/libvigil.so."$ver" /usr/lib/libvigil.so."$major" \
         /usr/lib/libvigil.a /usr/lib/pkgconfig/vigil.pc /usr/bin/vigil \
         /usr/share/man/man3/libvigil.3.gz /lib/systemd/system/vigil.service \
         /usr/share/doc/vigil/copyright; do
    [ -e "$f" ] || { files_ok=0; not_ok deb_files "missing $f"; }
done
[ "$files_ok" = 1 ] && ok deb_files
if command -v systemd-analyze >/dev/null; then
    if systemd-analyze verify /lib/systemd/system/vigil.service >"$VIGIL_TMP/verify.log" 2>&1; then
        ok unit_verifies
    else
        not_ok unit_verifies "$(head -3 "$VIGIL_TMP/verify.log")"
    fi
fi
if [ "$(env -u PKG_CONFIG_PATH -u PKG_CONFIG_SYSROOT_DIR pkg-config --modversion vigil)" = "$ver" ] &&
   ldconfig -p | grep -q "libvigil.so.$major " &&
   [ "$(/usr/bin/vigil version | head -1)" = "vigil v$ver" ]; then
    ok deb_usable
else
    not_ok deb_usable "pkg-config/ldconfig/vigil version disagree"
fi
if dpkg_retry -r vigil; then ok deb_remove; else not_ok deb_remove "$(tail -5 "$VIGIL_TMP/dpkg.log")"; fi
still=
for f in /usr/include/vigil.h /usr/lib/libvigil.so."$ver" /usr/lib/libvigil.so \
         /usr/bin/vigil /lib/systemd/system/vigil.service; do
    [ -e "$f" ] && still="$still $f"
done
if [ -z "$still" ] && ! ldconfig -p | grep -q libvigil; then
    ok deb_removed_cleanly
else
    not_ok deb_removed_cleanly "left:$still"
fi
finish
