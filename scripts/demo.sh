#!/bin/sh
# The main job: the race without a lock, then the same work with a Fast Mutex.
set -eu
cd "$(dirname "$0")/.."
./scripts/build.sh >/dev/null
echo "== fmx demo race: no lock =="
./build/tools/fmx/fmx demo race "$@"
echo
echo "== fmx demo fixed: with a FAST_MUTEX =="
./build/tools/fmx/fmx demo fixed "$@"
