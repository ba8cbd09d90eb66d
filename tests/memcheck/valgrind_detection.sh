#!/usr/bin/env bash
# test_detection under valgrind memcheck (see lib.sh): a script of its own because
# under valgrind it takes minutes, so tests/run.sh runs it beside the others.
set -u
cd "$(dirname "$0")/../.."
. tests/memcheck/lib.sh
memcheck_available || exit 0
memcheck test_detection build/tests/test_detection
exit $memcheck_rc
