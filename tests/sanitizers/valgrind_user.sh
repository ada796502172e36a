#!/bin/sh
# A user's program, built as usual, run under Helgrind and DRD against the
# library: under Valgrind the library sends every acquire and release to
# the tool as client requests (src/helgrind.c, src/drd.c), so a counter
# guarded by a fast mutex gives no error, and the same counter unguarded
# is reported as a race.
# usage: valgrind_user.sh CC SOURCE_DIR LIBRARY_DIR WORK_DIR
set -eu
cc=$1
src=$2
libdir=$3
dir=$4
mkdir -p "$dir"
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind_user.sh: skipped: valgrind is not installed (scripts/deps.sh installs it)"
    exit 77
fi
"$cc" -O1 -g -I"$src/include" "$src/tests/sanitizers/fixture.c" \
    -L"$libdir" -lfastmutex -Wl,-rpath,"$libdir" -lpthread -o "$dir/fixture"

# run TOOL MODE: the tool's exit status (9 when it found errors).
run() {
    status=0
    valgrind --tool="$1" --error-exitcode=9 "$dir/fixture" "$2" >"$dir/$1-$2.log" 2>&1 || status=$?
    echo "$status"
}

for tool in helgrind drd; do
    status=$(run $tool guarded)
    if [ "$status" != 0 ] || ! grep -q "ERROR SUMMARY: 0 errors" "$dir/$tool-guarded.log"; then
        cat "$dir/$tool-guarded.log"
        echo "valgrind_user.sh: $tool reports errors for the guarded counter (exit $status)" >&2
        exit 1
    fi
    echo "$tool: guarded counter: $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$dir/$tool-guarded.log")"
    status=$(run $tool unguarded)
    if [ "$status" != 9 ] || ! grep -q "race\|Conflicting" "$dir/$tool-unguarded.log"; then
        cat "$dir/$tool-unguarded.log"
        echo "valgrind_user.sh: $tool misses the race of the unguarded counter (exit $status)" >&2
        exit 1
    fi
    echo "$tool: unguarded counter: $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$dir/$tool-unguarded.log")"
done
