#!/bin/bash
# The robust-mutex flags (ROBUST_HELD, INCONSISTENT, NOTRECOVERABLE) as
# `fmx mutex` and gdb's printer show them, on robust_fixture's mutex in its
# three states: holder dead, taken over with EOWNERDEAD, released without
# fast_mutex_consistent(); and the SHARED flag of a process-shared mutex.
#
#   robust_flags.sh fmx FMX FIXTURE
#   robust_flags.sh gdb GDB GDB_SCRIPT FIXTURE
#
# Exit status: 0 pass, 1 fail, 77 skipped (gdb may not attach here).
set -u

MODE=$1
CASE="robust_flags $MODE"
. "$(dirname "$0")/e2e_lib.sh"

# Waits for the fixture's "ready state=$1" line and sets F_pid, F_mutex,
# F_dead from it.
wait_for_state() {
    wait_until grep -q "^ready state=$1 " "$WORK/fixture.out" ||
        fail "the fixture never reached state $1: $(cat "$WORK/fixture.err")"
    read_ready_line "$(grep "^ready state=$1 " "$WORK/fixture.out")"
}

start_fixture() {
    "$1" >"$WORK/fixture.out" 2>"$WORK/fixture.err" &
    FIXTURE_PIDS+=($!)
}

next_state() {
    kill -USR1 "${FIXTURE_PIDS[0]}"
}

# What `fmx mutex` shows in each state.
check_fmx() {
    local fmx=$1 out
    start_fixture "$2"
    wait_for_state dead
    out=$("$fmx" mutex "$F_pid" "$F_mutex" 2>&1) || fail "fmx mutex exited $?: $out"
    expect_in "$out" "Owner:        $F_dead " "dead holder: its id"
    expect_in "$out" "Flags:        ROBUST_HELD (lock word" "dead holder: flags"
    out=$("$fmx" mutex "$F_pid" "$F_shared" 2>&1) || fail "fmx mutex exited $?: $out"
    expect_in "$out" "Flags:        SHARED (lock word 0x20000000)" "shared mutex: flags"
    next_state
    wait_for_state inconsistent
    out=$("$fmx" mutex "$F_pid" "$F_mutex" 2>&1) || fail "fmx mutex exited $?: $out"
    expect_in "$out" "Owner:        $F_pid " "taken over: the new holder"
    expect_in "$out" "Flags:        ROBUST_HELD INCONSISTENT (lock word" "taken over: flags"
    next_state
    wait_for_state notrecoverable
    out=$("$fmx" mutex "$F_pid" "$F_mutex" 2>&1) || fail "fmx mutex exited $?: $out"
    expect_in "$out" "Owner:        none" "not recoverable: no owner"
    expect_in "$out" "Flags:        NOTRECOVERABLE (lock word 0x10000000)" "not recoverable: flags"
}

# `p *robust_mutex` in gdb attached to the fixture.
gdb_print() {
    "$GDB" -nx -batch -iex "set debuginfod enabled off" -ex "source $SCRIPT" \
        -p "$F_pid" -ex "p *${1:-robust_mutex}" 2>&1
}

check_gdb() {
    GDB=$1 SCRIPT=$2
    local out
    start_fixture "$3"
    wait_for_state dead
    out=$(gdb_print)
    if [[ $out != *"= fast_mutex_t = {"* ]] &&
        [[ $out == *"ptrace: Operation not permitted"* || $out == *"Could not attach"* ]]; then
        echo "skipped: gdb may not attach to processes here (ptrace refused)"
        exit 77
    fi
    expect_in "$out" "State = held, shared between processes, ROBUST_HELD, Owner = $F_dead " \
        "dead holder"
    out=$(gdb_print shared_mutex)
    expect_in "$out" "State = free, shared between processes, SHARED, Owner = none" "shared mutex"
    next_state
    wait_for_state inconsistent
    out=$(gdb_print)
    expect_in "$out" "State = held, shared between processes, ROBUST_HELD INCONSISTENT, Owner = $F_pid " \
        "taken over"
    next_state
    wait_for_state notrecoverable
    out=$(gdb_print)
    expect_in "$out" "State = free, shared between processes, NOTRECOVERABLE, Owner = none" \
        "not recoverable"
}

case $MODE in
fmx) check_fmx "$2" "$3" ;;
gdb) check_gdb "$2" "$3" "$4" ;;
*) fail "unknown mode $MODE" ;;
esac
echo "robust_flags $MODE: ok"
