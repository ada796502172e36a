#!/bin/bash
# End-to-end tests of `fmx demo`: each runs the real fmx binary and checks
# both what it reports and, independently, the files it leaves.
#
# usage: demo_test.sh FMX CASE
# CASE is one of: fixed, race, coarse, hold, folders, bad_input.
set -u

FMX=$1
CASE=$2
LINE='Hello, World!\r\n'

# Everything a test makes lives in one sandbox, and the demo's default
# temporary folders go there too, so that a test can see all it left.
W=$(mktemp -d "${TMPDIR:-/tmp}/fmx-demo-test.XXXXXX") || exit 1
EXTRA_CLEANUP=""
cleanup() {
    rm -rf "$W"
    if [ -n "$EXTRA_CLEANUP" ]; then rm -rf "$EXTRA_CLEANUP"; fi
}
trap cleanup EXIT
mkdir "$W/tmp"
export TMPDIR="$W/tmp"

FAILURES=0
fail() {
    echo "FAIL: $*" >&2
    FAILURES=$((FAILURES + 1))
}

# run ARGS...: runs `fmx demo ARGS`, leaving stdout in $W/out, stderr in
# $W/err and the exit status in $STATUS.
run() {
    "$FMX" demo "$@" >"$W/out" 2>"$W/err"
    STATUS=$?
}

# field NAME: the value of the report line "NAME: value" in $W/out.
field() {
    sed -n "s/^$1: *//p" "$W/out" | head -n 1
}

# expect_field NAME VALUE CONTEXT
expect_field() {
    local got
    got=$(field "$1")
    [ "$got" = "$2" ] || fail "$3: '$1' is '$got', expected '$2'"
}

expect_status() {
    [ "$STATUS" -eq "$1" ] || fail "$2: exit status $STATUS, expected $1 (stderr: $(head -c 300 "$W/err"))"
}

expect_no_stderr() {
    [ ! -s "$W/err" ] || fail "$1: unexpected stderr: $(head -c 300 "$W/err")"
}

# expected_file WRITES PATH: writes what every demo file must hold.
expected_file() {
    local k
    : >"$2"
    for ((k = 0; k < $1; k++)); do printf "$LINE"; done >>"$2"
}

# check_whole DIR PREFIX FILES WRITES CONTEXT: DIR holds exactly FILES
# files PREFIX0.txt .. PREFIX(FILES-1).txt, each holding WRITES lines.
check_whole() {
    local dir=$1 prefix=$2 files=$3 writes=$4 context=$5 want got count missing
    expected_file "$writes" "$W/expected"
    want=$(md5sum <"$W/expected" | cut -d' ' -f1)
    count=$(find "$dir" -mindepth 1 | wc -l)
    [ "$count" -eq "$files" ] || fail "$context: $dir holds $count entries, expected $files"
    missing=$(cd "$dir" && for ((k = 0; k < files; k++)); do
        [ -f "$prefix$k.txt" ] || echo "$prefix$k.txt"
    done | head -n 3)
    [ -z "$missing" ] || fail "$context: missing in $dir: $missing"
    got=$(cd "$dir" && find . -mindepth 1 -type f -print0 | xargs -0 -r md5sum | cut -d' ' -f1 | sort -u)
    [ "$got" = "$want" ] || fail "$context: files in $dir are not all exactly $writes lines"
}

expect_empty_dir() {
    [ -z "$(find "$1" -mindepth 1 | head -n 1)" ] || fail "$2: $1 is not empty: $(ls -A "$1" | head -n 3)"
}

# The fixed demo moves every file intact, run after run, whichever thread
# starts first, and with the default counts.
case_fixed() {
    local run_no first dir
    for ((run_no = 1; run_no <= 20; run_no++)); do
        case $((run_no % 3)) in
        0) first=(--first creation) ;;
        1) first=() ;;
        2) first=(--first move) ;;
        esac
        dir="$W/run$run_no"
        mkdir "$dir"
        run fixed --src "$dir/src" --dst "$dir/dst" "${first[@]}"
        local context="fixed run $run_no ${first[*]}"
        expect_status 0 "$context"
        expect_no_stderr "$context"
        expect_field "created" 1000 "$context"
        expect_field "moved" 1000 "$context"
        expect_field "intact in DST" 1000 "$context"
        expect_field "missing from DST" 0 "$context"
        expect_field "truncated in DST" 0 "$context"
        expect_field "corrupted in DST" 0 "$context"
        expect_field "left behind in SRC" 0 "$context"
        expect_field "moved half-written" 0 "$context"
        grep -q "^outcome: every file created, written and moved intact" "$W/out" ||
            fail "$context: no success outcome line"
        check_whole "$dir/dst" NewFile_ 1000 100 "$context"
        expect_empty_dir "$dir/src" "$context"
        rm -rf "$dir"
    done
    # Other counts are honoured: the size and number of files follow them.
    mkdir "$W/small"
    run fixed --files 37 --writes 3 --src "$W/small/src" --dst "$W/small/dst"
    expect_status 0 "fixed --files 37 --writes 3"
    expect_field "intact in DST" 37 "fixed --files 37 --writes 3"
    check_whole "$W/small/dst" NewFile_ 37 3 "fixed --files 37 --writes 3"
}

# The race runs, reports every line, and its numbers agree with the files
# it left in the folders.
case_race() {
    local run_no lost=0 context intact missing truncated corrupted left moved in_dst in_src
    for ((run_no = 1; run_no <= 5; run_no++)); do
        context="race run $run_no"
        mkdir "$W/race"
        run race --src "$W/race/src" --dst "$W/race/dst"
        expect_status 0 "$context"
        expect_no_stderr "$context"
        for name in created moved "not found by mover" "moved half-written" "intact in DST" \
            "missing from DST" "truncated in DST" "corrupted in DST" "left behind in SRC" contention; do
            grep -q "^$name: " "$W/out" || fail "$context: no '$name' line"
        done
        grep -q "^outcome: " "$W/out" || fail "$context: no outcome line"
        expect_field "created" 1000 "$context"
        intact=$(field "intact in DST")
        missing=$(field "missing from DST")
        truncated=$(field "truncated in DST")
        corrupted=$(field "corrupted in DST")
        left=$(field "left behind in SRC")
        moved=$(field moved)
        [ $((intact + missing + truncated + corrupted)) -eq 1000 ] ||
            fail "$context: DST counts do not add up to 1000"
        [ $((moved + $(field "not found by mover"))) -eq 1000 ] ||
            fail "$context: moved + not found is not 1000"
        in_dst=$(find "$W/race/dst" -name 'NewFile_*.txt' | wc -l)
        in_src=$(find "$W/race/src" -name 'file_*.txt' | wc -l)
        [ "$in_dst" -eq "$moved" ] || fail "$context: $in_dst files in DST, report says $moved moved"
        [ "$in_src" -eq "$left" ] || fail "$context: $in_src files in SRC, report says $left left"
        [ "$intact" -lt 1000 ] && lost=$((lost + 1))
        echo "race run $run_no: intact $intact, missing $missing, left in SRC $left," \
            "moved half-written $(field "moved half-written")"
        rm -rf "$W/race"
    done
    echo "race lost files in $lost of 5 runs"
    # With the mover started first, the race cannot be won: it finds no file.
    mkdir "$W/race"
    run race --first move --files 50 --src "$W/race/src" --dst "$W/race/dst"
    expect_status 0 "race --first move"
    grep -q "^outcome: the race lost files" "$W/out" || fail "race --first move: no 'lost files' outcome"
}

# The seed's fix as written: which thread takes the mutex first decides
# whether anything moves, and no file is ever torn.
case_coarse() {
    mkdir "$W/c1" "$W/c2"
    run fixed --coarse --first creation --src "$W/c1/src" --dst "$W/c1/dst"
    expect_status 0 "coarse, creation first"
    expect_no_stderr "coarse, creation first"
    expect_field "intact in DST" 1000 "coarse, creation first"
    expect_field "left behind in SRC" 0 "coarse, creation first"
    grep -q "^outcome: FileCreation took FastMutex first" "$W/out" ||
        fail "coarse, creation first: outcome does not name FileCreation"
    check_whole "$W/c1/dst" NewFile_ 1000 100 "coarse, creation first"

    run fixed --coarse --first move --src "$W/c2/src" --dst "$W/c2/dst"
    expect_status 0 "coarse, move first"
    expect_no_stderr "coarse, move first"
    expect_field "moved" 0 "coarse, move first"
    expect_field "not found by mover" 1000 "coarse, move first"
    expect_field "intact in DST" 0 "coarse, move first"
    expect_field "left behind in SRC" 1000 "coarse, move first"
    grep -q "^outcome: FileMove took FastMutex first" "$W/out" ||
        fail "coarse, move first: outcome does not name FileMove"
    check_whole "$W/c2/src" file_ 1000 100 "coarse, move first"
    expect_empty_dir "$W/c2/dst" "coarse, move first"

    # Left to the scheduler, either outcome may come, but never a torn file.
    run fixed --coarse --files 200
    expect_status 0 "coarse, scheduler's choice"
    grep -Eq "^outcome: (FileCreation|FileMove) took FastMutex first" "$W/out" ||
        fail "coarse, scheduler's choice: no winner named"
}

# --hold: FileCreation keeps the mutex while FileMove waits for it, and the
# threads carry the names that ps -L and fmx show.
case_hold() {
    local pid="" k names
    "$FMX" demo fixed --hold 1500 --files 50 >"$W/out" 2>"$W/err" &
    local demo_pid=$!
    for ((k = 0; k < 600; k++)); do
        pid=$(sed -n 's/^FileCreation (tid [0-9]*) holds FastMutex.*fmx waiters \([0-9]*\)$/\1/p' "$W/out")
        [ -n "$pid" ] && break
        sleep 0.05
    done
    if [ -z "$pid" ]; then
        fail "hold: no 'holds FastMutex' line within 30 s"
    else
        [ "$pid" -eq "$demo_pid" ] || fail "hold: line names pid $pid, demo is $demo_pid"
        # FileMove may not have started yet when the line comes: look again
        # until it has, or until the demo is over.
        for ((k = 0; k < 600; k++)); do
            names=$(cat /proc/"$demo_pid"/task/*/comm 2>/dev/null | sort | tr '\n' ' ')
            case "$names" in *FileCreation*FileMove*) break ;; esac
            kill -0 "$demo_pid" 2>/dev/null || break
            sleep 0.05
        done
        case "$names" in *FileCreation*FileMove*) ;;
        *) fail "hold: threads are named '$names', expected FileCreation and FileMove" ;;
        esac
    fi
    wait "$demo_pid"
    STATUS=$?
    expect_status 0 "hold"
    expect_no_stderr "hold"
    expect_field "intact in DST" 50 "hold"
    local waiting
    waiting=$(sed -n 's/^FileCreation lets FastMutex go after 1500 ms; threads waiting for it: //p' "$W/out")
    [ "$waiting" = 1 ] || fail "hold: '$waiting' threads waiting at the end of the hold, expected 1 (FileMove)"
    local contention
    contention=$(field contention)
    [ -n "$contention" ] && [ "$contention" -ge 1 ] ||
        fail "hold: contention is '$contention', expected at least 1 (FileMove had to wait)"
}

# Folders: temporary ones are removed unless --keep; files of an earlier
# run are never counted; nothing the demo did not make is deleted; a file
# that cannot be moved makes 'fixed' fail loudly.
case_folders() {
    local kept
    run fixed --files 20
    expect_status 0 "temp folder"
    expect_empty_dir "$TMPDIR" "temp folder removed"

    run fixed --files 20 --keep
    expect_status 0 "--keep"
    kept=$(field kept)
    case "$kept" in "$TMPDIR"/fmx-demo-*) ;; *) fail "--keep: kept folder is '$kept'" ;; esac
    [ -d "$kept" ] && check_whole "$kept/dst" NewFile_ 20 100 "--keep"
    [ -d "$kept" ] && expect_empty_dir "$kept/src" "--keep"
    rm -rf "$kept"

    # Only SRC given: DST is a temporary folder, and SRC keeps nothing.
    run fixed --files 20 --src "$W/only-src"
    expect_status 0 "only --src"
    expect_empty_dir "$W/only-src" "only --src"
    expect_empty_dir "$TMPDIR" "only --src, temp folder removed"

    # Files of an earlier run with the demo's names, and files of somebody
    # else, in the chosen folders.
    mkdir -p "$W/old/src" "$W/old/dst"
    for ((k = 0; k < 10; k++)); do expected_file 100 "$W/old/dst/NewFile_$k.txt"; done
    echo "not the demo's" >"$W/old/src/notes.txt"
    echo "not the demo's either" >"$W/old/dst/keep.txt"
    run fixed --coarse --first move --files 10 --src "$W/old/src" --dst "$W/old/dst"
    expect_status 0 "old files, coarse move first"
    expect_field "intact in DST" 0 "old files, coarse move first"
    expect_field "left behind in SRC" 10 "old files, coarse move first"
    expect_field "older files ignored" "10 (same names, not written by this run)" \
        "old files, coarse move first"
    run fixed --files 10 --src "$W/old/src" --dst "$W/old/dst"
    expect_status 0 "old files, fixed"
    expect_field "intact in DST" 10 "old files, fixed"
    expect_field "left behind in SRC" 0 "old files, fixed"
    grep -q "^older files ignored" "$W/out" && fail "old files, fixed: replaced files still called older"
    [ "$(cat "$W/old/src/notes.txt")" = "not the demo's" ] || fail "old files: notes.txt changed"
    [ "$(cat "$W/old/dst/keep.txt")" = "not the demo's either" ] || fail "old files: keep.txt changed"

    # A folder in the way of one file: fixed cannot keep its promise, says
    # so in one line and exits 1, and the folder stays.
    mkdir -p "$W/block/src" "$W/block/dst/NewFile_3.txt"
    run fixed --files 10 --src "$W/block/src" --dst "$W/block/dst"
    expect_status 1 "blocked file"
    expect_field "intact in DST" 9 "blocked file"
    expect_field "left behind in SRC" 1 "blocked file"
    grep -q "^outcome: FAILED" "$W/out" || fail "blocked file: no FAILED outcome"
    [ "$(wc -l <"$W/err")" -eq 1 ] || fail "blocked file: stderr is not one line: $(cat "$W/err")"
    grep -q "NewFile_3.txt" "$W/err" || fail "blocked file: stderr does not name the file"
    grep -q "^older files ignored" "$W/out" && fail "blocked file: the folder in the way is called an older file"
    [ -d "$W/block/dst/NewFile_3.txt" ] || fail "blocked file: the folder in the way is gone"
}

# snapshot: every path in the sandbox with its type and size, and the
# content of every file, so that a change anywhere shows.
snapshot() {
    (cd "$W" && find . -path ./err -prune -o -path ./out -prune -o -printf '%p %y %s\n' | sort &&
        find . -type f ! -name err ! -name out -print0 | sort -z | xargs -0 -r md5sum)
}

# bad ARGS...: fmx demo ARGS must fail with exit status 2, exactly one
# line on stderr, and leave the sandbox as it was.
bad() {
    local before after
    before=$(snapshot)
    run "$@"
    after=$(snapshot)
    local context="bad input '$*'"
    [ "$STATUS" -eq 2 ] || fail "$context: exit status $STATUS, expected 2"
    [ "$(wc -l <"$W/err")" -eq 1 ] || fail "$context: stderr is not one line: $(cat "$W/err")"
    grep -q "^fmx demo: " "$W/err" || fail "$context: stderr does not start with 'fmx demo: '"
    [ "$before" = "$after" ] || fail "$context: the sandbox changed: $(diff <(echo "$before") <(echo "$after") | head -n 5)"
    echo "$context -> $(cat "$W/err")"
}

case_bad_input() {
    mkdir "$W/exists"
    ln -s exists "$W/link"
    echo "a file" >"$W/afile"
    bad
    bad fast
    bad fixed race
    bad fixed --bogus
    bad fixed -x
    bad fixed --files
    bad fixed --files abc
    bad fixed --files 12x
    bad fixed --files ''
    bad fixed --files 0
    bad fixed --writes 0
    bad fixed --files -5
    bad fixed --writes=-1
    bad fixed --files +5
    bad fixed --files 99999999999999999999999
    bad fixed --files 4294967297
    bad fixed --files 1000001
    bad fixed --hold -1
    bad fixed --hold abc
    bad fixed --first nobody
    bad race --coarse
    bad race --hold 10
    bad fixed --src "$W/same" --dst "$W/same"
    bad fixed --src "$W/exists" --dst "$W/exists/../exists"
    bad fixed --src "$W/exists" --dst "$W/link"
    bad fixed --src "$W/afile" --dst "$W/exists"
    bad fixed --src "$W/exists" --dst "$W/afile"
    bad fixed --src "$W/afile/sub" --dst "$W/exists"
    bad fixed --src "$W/no/such/folder" --dst "$W/exists"
    bad fixed --src "$W/new-src" --dst /proc/fmx-demo-test
    bad fixed --src "$W/new-src" --dst /proc
    bad race --dst /proc
    TMPDIR="$W/missing" bad fixed
    # SRC and DST on two file systems, when this machine has two to offer.
    if [ "$(stat -c %d "$W")" != "$(stat -c %d /dev/shm 2>/dev/null)" ] && [ -w /dev/shm ]; then
        EXTRA_CLEANUP=$(mktemp -d /dev/shm/fmx-demo-test.XXXXXX)
        bad fixed --src "$W/new-src" --dst "$EXTRA_CLEANUP/dst"
        [ ! -e "$EXTRA_CLEANUP/dst" ] || fail "two file systems: DST was left behind"
    else
        echo "two file systems: not checked, /dev/shm is on the same file system"
    fi
    # Nothing of all that left a temporary folder behind.
    expect_empty_dir "$TMPDIR" "bad input, temp folder"
    # Help is not an error.
    run --help
    expect_status 0 "--help"
    expect_no_stderr "--help"
    grep -q "^usage: fmx demo" "$W/out" || fail "--help: no usage line"
}

case "$CASE" in
fixed | race | coarse | hold | folders | bad_input) "case_$CASE" ;;
*)
    echo "demo_test.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac

if [ "$FAILURES" -ne 0 ]; then
    echo "$CASE: $FAILURES failures" >&2
    exit 1
fi
echo "$CASE: all checks passed"
