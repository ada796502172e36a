#!/bin/sh
# Builds the library and the core tests with clang's ThreadSanitizer, in a
# build directory of their own, and runs the tests whose threads race on
# the library's words and records: any report fails the test.  A user who
# runs their program under ThreadSanitizer must see reports of their races,
# not of fastmutex's (the records that other threads read are accessed
# atomically for this, see FMX_RECORD_LOAD in src/internal.h).
# Not run here: core_registry (it forks from threads, which ThreadSanitizer
# does not support) and the pthread build of the stress test.
# usage: tsan.sh CLANG SOURCE_DIR BUILD_DIR
set -eu
clang=$1
src=$2
dir=$3
tests="core_api core_queue core_wdm core_shared core_misuse core_stress_fastmutex core_handoff"

# Skips (77) where the kernel does not let ThreadSanitizer run.
sh "$src/tests/sanitizers/tsan_probe.sh" "$clang" "$dir" || exit $?

cmake -S "$src" -B "$dir" -DCMAKE_C_COMPILER="$clang" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS=-fsanitize=thread -DFASTMUTEX_BUILD_BENCH=OFF \
    >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
# shellcheck disable=SC2086 # the list is meant to split
cmake --build "$dir" -j2 --target $tests >"$dir.build.log" 2>&1 || { tail -40 "$dir.build.log"; exit 1; }

for t in $tests; do
    log="$dir/$t.log"
    # core_misuse releases mutexes it does not hold, to see the library's
    # report; ThreadSanitizer, told of every release by the header's
    # annotations, would report the misuse first ("unlock of an unlocked
    # mutex") and exit: leave that report to the library there.
    options="halt_on_error=1 exitcode=66"
    [ "$t" = core_misuse ] && options="$options report_mutex_bugs=0"
    if ! TSAN_OPTIONS="$options" "$dir/tests/core/$t" >"$log" 2>&1; then
        cat "$log"
        echo "tsan.sh: $t failed under ThreadSanitizer (log above)" >&2
        exit 1
    fi
    echo "$t: no ThreadSanitizer report"
done
