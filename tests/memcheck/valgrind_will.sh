#!/usr/bin/env bash
# test_will under valgrind memcheck (see lib.sh): a script of its own because
# under valgrind it takes minutes, so tests/run.sh runs it beside the others.
set -u
cd "$(dirname "$0")/../.."
. tests/memcheck/lib.sh
memcheck_available || exit 0
memcheck test_will build/tests/test_will
exit $memcheck_rc
