#!/bin/sh
# scripts/deps.sh — install the Debian 12 packages vigil needs to build and
# test.  Idempotent: only when something is missing does it run
# `apt-get update` (once) and install exactly the missing packages.
# Quiet on success.
set -e

PKGS="build-essential pkg-config libmsgpack-dev libssl-dev libjansson-dev
libdeflate-dev zlib1g-dev serf clang libclang-rt-14-dev gnuplot-nox python3 python3-cryptography
iproute2 procps valgrind nftables curl bc
golang-go golang-github-hashicorp-memberlist-dev"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps.sh: missing packages:$missing (run as root to install)" >&2
        exit 1
    fi
else
    SUDO=""
fi

echo "deps.sh: installing:$missing" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update &&
       $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps.sh: apt-get failed" >&2
    exit 1
fi
