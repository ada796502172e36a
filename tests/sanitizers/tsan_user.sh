#!/bin/sh
# A user's program built with -fsanitize=thread (by CC) against the library
# as installed: built without ThreadSanitizer (the ordinary build's
# libfastmutex.so and include/).  The inline functions of fastmutex.h
# annotate every acquire, try, timed acquire and release, so:
#   a counter guarded by a fast mutex gives no report (3 runs of 3),
#   the same counter unguarded gives a data race report,
#   A then B, later B then A gives a lock-order-inversion report.
# usage: tsan_user.sh CC SOURCE_DIR LIBRARY_DIR WORK_DIR
set -eu
cc=$1
src=$2
libdir=$3
dir=$4
# Skips (77) where the kernel does not let ThreadSanitizer run.
sh "$src/tests/sanitizers/tsan_probe.sh" "$cc" "$dir" || exit $?

"$cc" -O1 -g -fsanitize=thread -I"$src/include" "$src/tests/sanitizers/fixture.c" \
    -L"$libdir" -lfastmutex -Wl,-rpath,"$libdir" -lpthread -o "$dir/fixture"

# run MODE: runs the fixture, its output in $dir/MODE.log; prints the
# sorted kinds of ThreadSanitizer report it made.
run() {
    TSAN_OPTIONS="exitcode=66" "$dir/fixture" "$1" >"$dir/$1.log" 2>&1 || true
    grep -o 'WARNING: ThreadSanitizer: [a-z -]*('  "$dir/$1.log" | sort -u | tr '\n' ' '
}

for i in 1 2 3; do
    got=$(run guarded)
    if [ -n "$got" ] || ! grep -q "^counter 8000 of 8000" "$dir/guarded.log"; then
        cat "$dir/guarded.log"
        echo "tsan_user.sh: guarded counter, run $i of 3: reports '$got' (want none)" >&2
        exit 1
    fi
done
echo "guarded counter: no report in 3 runs of 3"

got=$(run unguarded)
if [ "$got" != "WARNING: ThreadSanitizer: data race ( " ]; then
    cat "$dir/unguarded.log"
    echo "tsan_user.sh: unguarded counter: reports '$got' (want data-race)" >&2
    exit 1
fi
echo "unguarded counter: data race reported"

got=$(run inversion)
if [ "$got" != "WARNING: ThreadSanitizer: lock-order-inversion ( " ]; then
    cat "$dir/inversion.log"
    echo "tsan_user.sh: A-B then B-A: reports '$got' (want lock-order-inversion)" >&2
    exit 1
fi
echo "A-B then B-A: lock-order-inversion reported"
