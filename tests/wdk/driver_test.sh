#!/bin/bash
# End-to-end tests of `fmx driver` with the example driver and the test
# drivers: each runs the real fmx binary and checks what it prints and,
# independently, the files the driver leaves under the root.
#
# usage: driver_test.sh CASE FMX EXAMPLE_DIR TESTDRV_DIR SOURCE_DIR LIB_DIR CC
# CASE: fixed, race, apc, sanitizers, waiters, longnames, deadlock, bad_input.
set -u

CASE=$1
FMX=$2
EXAMPLES=$3
TESTDRV=$4
SRC=$5
LIBDIR=$6
CC=$7
FILES=200
WRITES=100
LINE='Hello, World!\r\n'

W=$(mktemp -d "${TMPDIR:-/tmp}/fmx-driver-test.XXXXXX") || exit 1
BACKGROUND=""
cleanup() {
    if [ -n "$BACKGROUND" ]; then kill "$BACKGROUND" 2>/dev/null; wait "$BACKGROUND" 2>/dev/null; fi
    rm -rf "$W"
}
trap cleanup EXIT
export TMPDIR=$W

FAILURES=0
fail() {
    echo "FAIL: $*" >&2
    FAILURES=$((FAILURES + 1))
}

# run ARGS...: `fmx driver ARGS`, stdout in $W/out, stderr in $W/err,
# status in $STATUS.
run() {
    "$FMX" driver "$@" >"$W/out" 2>"$W/err"
    STATUS=$?
}

expect_status() {
    [ "$STATUS" -eq "$1" ] || fail "$2: exit status $STATUS, expected $1 (stderr: $(head -c 400 "$W/err"))"
}

expect_out() {
    grep -qF -- "$1" "$W/out" || fail "$2: no '$1' in the output: $(head -c 600 "$W/out")"
}

expect_err() {
    grep -qF -- "$1" "$W/err" || fail "$2: no '$1' on stderr: $(head -c 600 "$W/err")"
}

expect_no_stderr() {
    [ ! -s "$W/err" ] || fail "$1: unexpected stderr: $(head -c 400 "$W/err")"
}

expect_one_error_line() {
    local lines
    lines=$(wc -l <"$W/err")
    [ "$lines" -eq 1 ] || fail "$1: $lines lines on stderr, expected one: $(head -c 400 "$W/err")"
}

fresh_root() {
    rm -rf "$W/root"
    mkdir "$W/root"
}

# count_intact DIR: how many NewFile_<i>.txt in DIR hold exactly WRITES lines.
count_intact() {
    local want k
    for ((k = 0; k < WRITES; k++)); do printf "$LINE"; done >"$W/expected"
    want=$(md5sum <"$W/expected" | cut -d' ' -f1)
    # One md5sum over every file the driver may have made, by its name.
    (cd "$1" && for ((k = 0; k < FILES; k++)); do
        [ -f "NewFile_$k.txt" ] && echo "NewFile_$k.txt"
    done | xargs -r md5sum) | awk -v want="$want" '$1 == want' | wc -l
}

DEMO=C/FastMutexDemo

# The fixed driver keeps every file whole and moves it, every time, as
# `fmx demo fixed` does.
case_fixed() {
    local run_no intact left
    for run_no in 1 2 3; do
        fresh_root
        run "$EXAMPLES/filemove_fixed.so" --root "$W/root"
        expect_status 0 "fixed run $run_no"
        expect_no_stderr "fixed run $run_no"
        expect_out "DriverEntry:  STATUS_SUCCESS (0x00000000)" "fixed run $run_no"
        expect_out "2 started; waiting for them to end (--timeout 60 s)" "fixed run $run_no"
        expect_out "threads:      all 2 ended" "fixed run $run_no"
        expect_out "FileCreationThread: created $FILES, failed 0" "fixed run $run_no"
        expect_out "FileMoveThread: moved $FILES, not found 0, sharing violations 0, failed 0" \
            "fixed run $run_no"
        expect_out "DriverUnload: returned" "fixed run $run_no"
        intact=$(count_intact "$W/root/$DEMO/Destination")
        left=$(find "$W/root/$DEMO/Source" -type f | wc -l)
        [ "$intact" -eq "$FILES" ] || fail "fixed run $run_no: $intact of $FILES intact in Destination"
        [ "$left" -eq 0 ] || fail "fixed run $run_no: $left files left in Source"
        echo "fixed run $run_no: intact $intact of $FILES, left in Source $left"
    done
}

# Without a lock the mover runs ahead of the creator: files are left behind
# (not found yet, or still open).  What it reports agrees with the files,
# and in some run files are lost, as with `fmx demo race`.
case_race() {
    local run_no lost=0 intact left moved
    for run_no in 1 2 3 4 5; do
        fresh_root
        run "$EXAMPLES/filemove_race.so" --root "$W/root"
        expect_status 0 "race run $run_no"
        expect_no_stderr "race run $run_no"
        expect_out "DriverUnload: returned" "race run $run_no"
        intact=$(count_intact "$W/root/$DEMO/Destination")
        left=$(find "$W/root/$DEMO/Source" -type f | wc -l)
        moved=$(sed -n 's/^FileMoveThread: moved \([0-9]*\),.*/\1/p' "$W/out")
        [ "$moved" = "$intact" ] || fail "race run $run_no: driver moved '$moved', Destination holds $intact intact"
        [ $((intact + left)) -eq "$FILES" ] || fail "race run $run_no: $intact + $left files, expected $FILES"
        [ "$intact" -lt "$FILES" ] && lost=$((lost + 1))
        echo "race run $run_no: intact $intact of $FILES, left in Source $left"
    done
    echo "race lost files in $lost of 5 runs"
    [ "$lost" -gt 0 ] || fail "race: no run lost a file"
}

# The fix as first written takes the mutex with ExAcquireFastMutex, which
# raises IRQL to APC_LEVEL, then calls ZwCreateFile, which requires
# PASSIVE_LEVEL: reported, naming the call and the thread, and the run ends.
case_apc() {
    fresh_root
    run "$EXAMPLES/filemove_apc.so" --root "$W/root"
    [ "$STATUS" -ne 0 ] || fail "apc: exit status 0"
    expect_err "IRQL check failed, IRQL_NOT_LESS_OR_EQUAL" "apc"
    expect_err "ZwCreateFile at IRQL 1 (it requires PASSIVE_LEVEL)" "apc"
    expect_err "(FileCreationThread)" "apc: the thread's whole name"
    expect_err "called from CreateAndWriteFile+" "apc"
}

# build_sanitized NAME DEFINES...: the example driver with AddressSanitizer
# and UndefinedBehaviorSanitizer, as a user would build it.
build_sanitized() {
    local name=$1
    shift
    "$CC" -std=c11 -shared -fPIC -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
        -fno-sanitize-recover=undefined -fshort-wchar -Wno-multichar -Wall -Wextra -Werror \
        -I"$SRC/include/fastmutex/wdk" -I"$SRC/include" "$@" "$SRC/examples/driver/filemove.c" \
        -o "$W/$name.so" -L"$LIBDIR" -lfastmutex -Wl,-rpath,"$LIBDIR" 2>"$W/cc.err" ||
        { fail "sanitizers: cannot build $name: $(head -c 600 "$W/cc.err")"; return 1; }
}

case_sanitizers() {
    local asan intact
    asan=$("$CC" -print-file-name=libasan.so)
    if [ ! -e "$asan" ]; then
        echo "SKIP: $CC has no libasan.so"
        exit 77
    fi
    build_sanitized race_asan -DUSE_FAST_MUTEX=0 || return
    build_sanitized fixed_asan -DUSE_FAST_MUTEX=1 || return
    build_sanitized stack_bug_asan -DUSE_FAST_MUTEX=1 -DRENAME_ON_STACK=1 || return
    for v in race fixed; do
        fresh_root
        # fmx is not instrumented: the sanitizer runtime is preloaded.
        LD_PRELOAD=$asan ASAN_OPTIONS=detect_leaks=0 run "$W/${v}_asan.so" --root "$W/root"
        expect_status 0 "$v under ASan/UBSan"
        grep -qE "AddressSanitizer|runtime error" "$W/err" &&
            fail "$v under ASan/UBSan: a report: $(head -c 800 "$W/err")"
        expect_out "DriverUnload: returned" "$v under ASan/UBSan"
    done
    intact=$(count_intact "$W/root/$DEMO/Destination")
    [ "$intact" -eq "$FILES" ] || fail "fixed under ASan/UBSan: $intact of $FILES intact"
    echo "race and fixed ran clean under ASan and UBSan; fixed moved $intact of $FILES intact"
    # The bug the issue tells of: a FILE_RENAME_INFORMATION on the stack,
    # with room for one WCHAR of FileName, and the whole name copied in.
    fresh_root
    LD_PRELOAD=$asan ASAN_OPTIONS=detect_leaks=0 run "$W/stack_bug_asan.so" --root "$W/root"
    [ "$STATUS" -ne 0 ] || fail "stack bug: exit status 0"
    expect_err "ERROR: AddressSanitizer: stack-buffer-overflow" "stack bug"
    expect_err "MoveFile" "stack bug"
    expect_err "in FileMoveThread" "stack bug"
    grep -m1 -E "WRITE of size" "$W/err"
}

# While HolderThread keeps the mutex, `fmx waiters` shows WaiterThread
# waiting for it, by the name of its start routine, and HolderThread as the
# owner (a static function: fmx driver finds its name in the symbol table).
case_waiters() {
    local pid k
    fresh_root
    "$FMX" driver "$TESTDRV/testdrv_holder.so" --root "$W/root" >"$W/out" 2>"$W/err" &
    BACKGROUND=$!
    for ((k = 0; k < 100; k++)); do
        grep -q "HolderThread: holding" "$W/out" && break
        sleep 0.05
    done
    pid=$(sed -n 's/^driver: .*(pid \([0-9]*\))$/\1/p' "$W/out")
    [ -n "$pid" ] || fail "waiters: no pid in the output: $(cat "$W/out")"
    sleep 1 # long past the waiter's spin: it is parked
    "$FMX" waiters "$pid" >"$W/waiters" 2>&1 || fail "waiters: fmx waiters failed: $(cat "$W/waiters")"
    cat "$W/waiters"
    grep -q "WaiterThread" "$W/waiters" || fail "waiters: WaiterThread not shown waiting"
    grep -q "(HolderThread)" "$W/waiters" || fail "waiters: HolderThread not shown as the owner"
    # The call site is found in the driver (the naming of HolderThread left
    # no mapping behind that would mislead fmx about where it is loaded).
    grep -q "WaiterThread+0x[0-9a-f]* test_drivers.c:" "$W/waiters" ||
        fail "waiters: the call site is not named in test_drivers.c"
    wait "$BACKGROUND"
    STATUS=$?
    BACKGROUND=""
    expect_status 0 "waiters"
    expect_out "WaiterThread: got the mutex" "waiters"
    expect_out "holder: unloaded, contention 1" "waiters"
}

# The example driver, its mutex held by FileCreationThread for 4 s after the
# first file: `fmx waiters` shows FileMoveThread waiting and
# FileCreationThread owning it, by their whole names (the kernel keeps 15
# bytes: "FileCreationThr"); with FASTMUTEX_VERIFY=order, `fmx thread`
# lists the FAST_MUTEX FileCreationThread holds.
case_longnames() {
    local pid k creator
    fresh_root
    FASTMUTEX_VERIFY=order "$FMX" driver "$TESTDRV/testdrv_filemove_hold.so" --root "$W/root" \
        >"$W/out" 2>"$W/err" &
    BACKGROUND=$!
    for ((k = 0; k < 200; k++)); do
        grep -q "FileCreationThread: holding FileMutex" "$W/out" && break
        sleep 0.05
    done
    pid=$(sed -n 's/^driver: .*(pid \([0-9]*\))$/\1/p' "$W/out")
    [ -n "$pid" ] || fail "longnames: no pid in the output: $(cat "$W/out")"
    sleep 1 # long past the mover's spin: it is parked
    "$FMX" waiters "$pid" >"$W/waiters" 2>&1 || fail "longnames: fmx waiters failed: $(cat "$W/waiters")"
    cat "$W/waiters"
    grep -qE "^filemove_hold\.so +$pid +FileMoveThread |^[^ ]+ +$pid +FileMoveThread " "$W/waiters" ||
        fail "longnames: FileMoveThread not shown waiting"
    grep -q "(FileCreationThread)" "$W/waiters" || fail "longnames: FileCreationThread not shown whole as the owner"
    creator=$(sed -n 's/.* \([0-9][0-9]*\) (FileCreationThread).*/\1/p' "$W/waiters" | head -1)
    [ -n "$creator" ] || fail "longnames: no owner tid"
    "$FMX" thread "$pid" "$creator" >"$W/thread" 2>&1
    cat "$W/thread"
    grep -q "^Thread $creator (FileCreationThread) of process $pid" "$W/thread" ||
        fail "longnames: fmx thread does not name FileCreationThread whole"
    grep -qE "^  Holds:        FAST_MUTEX 0x[0-9a-f]+, held [0-9]+s\.[0-9]{3}, 1 waiter$" "$W/thread" ||
        fail "longnames: fmx thread does not list the FAST_MUTEX FileCreationThread holds"
    grep -q "taken at LockFiles+0x[0-9a-f]* filemove.c:\|taken at FileCreationThread+0x[0-9a-f]* filemove.c:" "$W/thread" ||
        fail "longnames: where the mutex was taken is not named"
    wait "$BACKGROUND"
    STATUS=$?
    BACKGROUND=""
    expect_status 0 "longnames"
    expect_out "FileMoveThread: moved $FILES, not found 0, sharing violations 0, failed 0" "longnames"
}

# Two threads that take two FAST_MUTEXes in opposite orders: the deadlock
# check reports the cycle, naming both threads after their start routines;
# they never end, so fmx driver gives up after its timeout.
case_deadlock() {
    fresh_root
    FASTMUTEX_DEADLOCK_MS=200 run "$TESTDRV/testdrv_deadlock.so" --root "$W/root" --timeout 3
    expect_status 1 "deadlock"
    cat "$W/err"
    expect_err "deadlock" "deadlock"
    # Names past the kernel's 15 bytes are shown whole.
    expect_err "(DeadlockThreadTakingFirst) waits for" "deadlock"
    expect_err "(DeadlockThreadTakingSecond) waits for" "deadlock"
    expect_err "called from DeadlockThreadTakingFirst+" "deadlock"
    expect_out "threads:      2 still running after 3 s" "deadlock"
    expect_err "2 system threads still running after 3 s" "deadlock"
}

case_bad_input() {
    run
    expect_status 2 "no driver"
    expect_one_error_line "no driver"
    run "$W/missing.so"
    expect_status 2 "missing file"
    expect_err "cannot load" "missing file"
    expect_one_error_line "missing file"
    echo "not an ELF file" >"$W/text.so"
    run "$W/text.so"
    expect_status 2 "text file"
    expect_err "cannot load" "text file"
    run "$TESTDRV/testdrv_noentry.so"
    expect_status 2 "no DriverEntry"
    expect_err "has no DriverEntry (STATUS_DRIVER_ENTRYPOINT_NOT_FOUND)" "no DriverEntry"
    expect_one_error_line "no DriverEntry"
    run "$TESTDRV/testdrv_nolib.so"
    expect_status 2 "no libfastmutex"
    expect_err "does not link libfastmutex" "no libfastmutex"
    expect_one_error_line "no libfastmutex"
    for t in 0 abc -1 99999999; do
        run "$TESTDRV/testdrv_nolib.so" --timeout "$t"
        expect_status 2 "--timeout $t"
        expect_one_error_line "--timeout $t"
    done
    run "$TESTDRV/testdrv_hangs.so" --root "$W/missing-root"
    expect_status 2 "missing root"
    expect_err "is not a folder" "missing root"
    run "$TESTDRV/testdrv_hangs.so" --bogus
    expect_status 2 "unknown option"
    expect_one_error_line "unknown option"

    # A DriverEntry that fails, after trying paths out of the root.
    fresh_root
    mkdir -p "$W/root/C" "$W/outside"
    ln -s "$W/outside" "$W/root/C/out"
    run "$TESTDRV/testdrv_escape.so" --root "$W/root"
    expect_status 1 "escape"
    expect_out 'escape: \??\C:\..\escaped.txt: 0xC0000033' "escape"
    expect_out 'escape: \??\C:\out\escaped.txt: 0xC000003A' "escape"
    expect_out "DriverEntry:  STATUS_OBJECT_PATH_NOT_FOUND (0xC000003A)" "escape"
    expect_err "fmx driver: DriverEntry failed: STATUS_OBJECT_PATH_NOT_FOUND (0xC000003A)" "escape"
    expect_one_error_line "escape"
    [ -z "$(find "$W/outside" "$W/root/escaped.txt" -name 'escaped.txt' 2>/dev/null)" ] ||
        fail "escape: a file was made outside the root"

    # A thread that never ends.
    fresh_root
    run "$TESTDRV/testdrv_hangs.so" --root "$W/root" --timeout 1
    expect_status 1 "hangs"
    expect_out "threads:      1 still running after 1 s: NeverEndingThre" "hangs"
    expect_err "1 system thread still running after 1 s (NeverEndingThread); DriverUnload not called" \
        "hangs"
    expect_one_error_line "hangs"
}

"case_$CASE"
if [ "$FAILURES" -ne 0 ]; then
    echo "$CASE: $FAILURES failures" >&2
    exit 1
fi
echo "$CASE: passed"
