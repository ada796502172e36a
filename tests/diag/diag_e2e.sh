#!/bin/bash
# End-to-end tests of `fmx waiters`, `fmx thread`, `fmx mutex` and of the
# library's deadlock check, against diag_fixture.
#
#   diag_e2e.sh CASE FMX FIXTURE FIXTURE_SOURCE
#
# Each CASE is one ctest test.  Waits poll with generous limits instead of
# sleeping a fixed time, so a loaded machine makes a test slower, not red.
# Exit status: 0 pass, 1 fail, 77 skipped (not root, for other_user).
set -u

CASE=$1
FMX=$2
FIXTURE=$3
ORIG_FIXTURE=$3
SOURCE=$4

. "$(dirname "$0")/e2e_lib.sh"

# Starts the fixture in the background as `$RUN_AS` (a command prefix, may
# be empty), with the arguments given, and waits for its "ready" line.
start_fixture() {
    launch_fixture ${RUN_AS:-} "$FIXTURE" "$@"
}

# The table row of thread $1 in $OUT.
row_of() {
    awk -v tid="$1" '$4 == tid' <<<"$OUT"
}

# Waits until `fmx waiters PID` lists $2 waiting threads of process $1.
wait_for_waiters() {
    local pid=$1 count=$2
    wait_until bash -c '"$0" waiters "$1" 2>/dev/null | grep -q "^$2 threads\{0,1\} waiting\.$"' \
        "$FMX" "$pid" "$count" || fail "process $pid never had $count waiting threads"
}

# Milliseconds in a "12s.345" duration.
duration_ms() {
    local s=${1%%s.*} ms=${1#*s.}
    echo $((10#$s * 1000 + 10#$ms))
}

# Exactly one line on stderr, nothing on stdout, a non-zero status.
expect_error() { # PHRASE
    [[ $RC -ne 0 ]] || fail "fmx succeeded where it should refuse; stdout: $OUT"
    [[ -z $OUT ]] || fail "fmx printed to stdout on error: $OUT"
    [[ $(wc -l <"$WORK/fmx.err") -eq 1 ]] || fail "expected one line on stderr, got: $ERR"
    expect_in "$ERR" "$1" "error message"
}

case_waiters() {
    local wait_line wdm_line row rows
    wait_line=$(line_of FMX-SITE-WAIT)
    wdm_line=$(line_of FMX-SITE-WDM)
    start_fixture hold
    wait_for_waiters "$F_pid" 2

    run_fmx waiters "$F_pid"
    [[ $RC -eq 0 ]] || fail "fmx waiters exited $RC: $ERR"
    expect_in "$OUT" "2 threads waiting." "count line"
    row=$(row_of "$F_waiter")
    [[ -n $row ]] || fail "no row for the waiter $F_waiter in:
$OUT"
    [[ $(awk '{print $1, $2, $3}' <<<"$row") == "diag_fixture $F_pid DiagWaiter" ]] ||
        fail "waiter row names the wrong process or thread: $row"
    expect_in "$row" "$F_mutex (DiagMutex)" "waiter row mutex"
    expect_in "$row" "$F_owner (DiagOwner)" "waiter row owner"
    expect_in "$row" "waiter_thread" "waiter row site function"
    expect_in "$row" "diag_fixture.c:$wait_line" "waiter row site line"
    [[ $(awk '{print $8}' <<<"$row") == S ]] || fail "waiter is not sleeping: $row"
    row=$(row_of "$F_wdm_waiter")
    expect_in "$row" "DiagWdmWaiter" "FAST_MUTEX waiter row"
    expect_in "$row" "$F_fast_mutex (DiagFastMutex)" "FAST_MUTEX waiter row mutex"
    expect_in "$row" "$F_owner (DiagOwner)" "FAST_MUTEX waiter row owner"
    expect_in "$row" "wdm_waiter_thread" "FAST_MUTEX waiter row site function"
    expect_in "$row" "diag_fixture.c:$wdm_line" "FAST_MUTEX waiter row site line"

    # The time waited grows from one look to the next.
    local first second
    first=$(duration_ms "$(awk '{print $9}' <<<"$(row_of "$F_waiter")")")
    sleep 0.3
    run_fmx waiters "$F_pid"
    second=$(duration_ms "$(awk '{print $9}' <<<"$(row_of "$F_waiter")")")
    [[ $second -gt $first ]] || fail "time waited did not grow: $first ms, then $second ms"

    # Without a PID, every process of this user is looked at; ours is there.
    run_fmx waiters
    [[ $RC -eq 0 ]] || fail "fmx waiters (all processes) exited $RC: $ERR"
    rows=$(awk -v pid="$F_pid" '$2 == pid' <<<"$OUT" | wc -l)
    [[ $rows -eq 2 ]] || fail "fmx waiters without PID shows $rows rows of process $F_pid:
$OUT"
}

case_json() {
    command -v python3 >/dev/null || { echo "python3 is not installed"; exit 77; }
    start_fixture hold
    wait_for_waiters "$F_pid" 2
    run_fmx waiters --json "$F_pid"
    [[ $RC -eq 0 ]] || fail "fmx waiters --json exited $RC: $ERR"
    python3 - "$WORK/fmx.out" "$F_pid" "$F_owner" "$F_waiter" "$F_mutex" "$(line_of FMX-SITE-WAIT)" <<'EOF' ||
import json, sys
path, pid, owner, waiter, mutex, line = sys.argv[1:]
with open(path) as f:
    doc = json.load(f)
assert doc["count"] == 2 == len(doc["waiters"]), doc
row = [w for w in doc["waiters"] if w["tid"] == int(waiter)][0]
expect = {"pid": int(pid), "thread": "DiagWaiter", "mutex": mutex, "mutex_name": "DiagMutex",
          "kind": "fast_mutex_t", "owner_tid": int(owner), "owner_name": "DiagOwner",
          "site_line": int(line), "deadlock": False, "state": "S"}
for key, value in expect.items():
    assert row[key] == value, (key, row[key], value)
assert row["site_file"].endswith("diag_fixture.c"), row["site_file"]
assert row["site_function"].startswith("waiter_thread"), row["site_function"]
assert row["waited_ms"] >= 0 and row["context_switches"] >= 1, row
wdm = [w for w in doc["waiters"] if w["tid"] != int(waiter)][0]
assert wdm["kind"] == "FAST_MUTEX" and wdm["mutex_name"] == "DiagFastMutex", wdm
EOF
        fail "fmx waiters --json output is wrong:
$OUT"
}

# --json prints one whole JSON document on stdout whatever fails, with the
# errors on stderr and a non-zero status.
case_json_errors() {
    command -v python3 >/dev/null || { echo "python3 is not installed"; exit 77; }
    true &
    local dead=$!
    wait $dead
    run_fmx waiters --json "$dead"
    [[ $RC -ne 0 ]] || fail "fmx waiters --json $dead exited 0"
    expect_in "$ERR" "no process $dead" "stderr"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["count"] == 0 and d["waiters"] == [], d' \
        "$WORK/fmx.out" || fail "fmx waiters --json $dead printed no valid JSON: '$OUT'"
    # One process read, one gone: its waiters, and the status says one failed.
    start_fixture hold
    wait_for_waiters "$F_pid" 2
    run_fmx waiters --json "$dead" "$F_pid"
    [[ $RC -ne 0 ]] || fail "fmx waiters --json $dead $F_pid exited 0"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["count"] == 2, d' \
        "$WORK/fmx.out" || fail "fmx waiters --json $dead $F_pid printed: '$OUT'"
}

# Separate debug info named by the executable's .gnu_debuglink: found beside
# it (by build id) and in its .debug folder (by CRC, without a build id);
# a FIFO of that name is not opened for reading (elfutils' standard finder
# blocks on it forever): fmx shows the waiters without file:line.
case_debuglink() {
    command -v objcopy >/dev/null || { echo "objcopy is not installed"; exit 77; }
    local dir=$WORK/bin wait_line row
    wait_line=$(line_of FMX-SITE-WAIT)
    mkdir -p "$dir/.debug"
    # Each run: make the files, start the copy, read its waiters (bounded).
    look() { # WHAT
        start_fixture hold
        wait_until bash -c 'timeout 10 "$0" waiters "$1" 2>/dev/null | grep -q "^2 threads waiting\.$"' \
            "$FMX" "$F_pid" || fail "$1: fmx never listed 2 waiters (or hung)"
        FMX_AS="timeout 20" run_fmx waiters "$F_pid"
        [[ $RC -eq 0 ]] || fail "$1: fmx waiters exited $RC (124: it hung): $ERR"
        row=$(row_of "$F_waiter")
        expect_in "$row" "waiter_thread" "$1: waiter row site function"
        { kill -KILL "$F_pid" && wait "$F_pid"; } 2>/dev/null
    }
    local FIXTURE=$dir/diag_fixture
    cp "$ORIG_FIXTURE" "$FIXTURE"
    objcopy --only-keep-debug "$FIXTURE" "$dir/fixture.debug" 2>>"$WORK/objcopy.log" || fail "objcopy failed: $(cat "$WORK/objcopy.log")"
    objcopy --strip-debug --add-gnu-debuglink="$dir/fixture.debug" "$FIXTURE" 2>>"$WORK/objcopy.log" || fail "objcopy failed: $(cat "$WORK/objcopy.log")"
    look "beside, by build id"
    expect_in "$row" "diag_fixture.c:$wait_line" "debug file beside the executable"

    cp "$ORIG_FIXTURE" "$FIXTURE"
    objcopy --remove-section=.note.gnu.build-id "$FIXTURE" 2>>"$WORK/objcopy.log" || fail "objcopy failed: $(cat "$WORK/objcopy.log")"
    objcopy --only-keep-debug "$FIXTURE" "$dir/.debug/fixture.debug" 2>>"$WORK/objcopy.log" || fail "objcopy failed: $(cat "$WORK/objcopy.log")"
    objcopy --strip-debug --add-gnu-debuglink="$dir/.debug/fixture.debug" "$FIXTURE" 2>>"$WORK/objcopy.log" || fail "objcopy failed: $(cat "$WORK/objcopy.log")"
    rm "$dir/fixture.debug"
    look "in .debug, by CRC"
    expect_in "$row" "diag_fixture.c:$wait_line" "debug file in .debug without a build id"

    rm "$dir/.debug/fixture.debug"
    mkfifo "$dir/fixture.debug" "$dir/.debug/fixture.debug"
    look "a FIFO"
    [[ $row != *"diag_fixture.c:"* ]] || fail "a line was found with no debug file: $row"
}

case_thread() {
    local wait_line wdm_line
    wait_line=$(line_of FMX-SITE-WAIT)
    wdm_line=$(line_of FMX-SITE-WDM)
    start_fixture hold
    wait_for_waiters "$F_pid" 2

    run_fmx thread "$F_pid" "$F_waiter"
    [[ $RC -eq 0 ]] || fail "fmx thread exited $RC: $ERR"
    expect_in "$OUT" "Thread $F_waiter (DiagWaiter) of process $F_pid (diag_fixture)" "title"
    expect_in "$OUT" "State:        S (sleeping)" "state"
    expect_in "$OUT" "Waiting for:  fast_mutex_t $F_mutex (DiagMutex)" "wait"
    expect_in "$OUT" "Owner:        $F_owner (DiagOwner)" "owner"
    expect_in "$OUT" "diag_fixture.c:$wait_line" "call site"
    local stack
    stack=$(sed -n '/^Stack:/,$p' <<<"$OUT")
    expect_in "$stack" "fmx_futex_wait" "stack: the futex wait"
    expect_in "$stack" "waiter_thread" "stack: the fixture's function"
    expect_in "$stack" "diag_fixture.c:$wait_line" "stack: the fixture's line"
    expect_in "$stack" "inlined: fast_mutex_acquire" "stack: the inlined acquire"

    run_fmx thread "$F_pid" "$F_wdm_waiter"
    [[ $RC -eq 0 ]] || fail "fmx thread (FAST_MUTEX waiter) exited $RC: $ERR"
    expect_in "$OUT" "Waiting for:  FAST_MUTEX $F_fast_mutex (DiagFastMutex)" "FAST_MUTEX wait"
    stack=$(sed -n '/^Stack:/,$p' <<<"$OUT")
    expect_in "$stack" "ExAcquireFastMutex" "FAST_MUTEX stack: the Windows call"
    expect_in "$stack" "diag_fixture.c:$wdm_line" "FAST_MUTEX stack: the fixture's line"

    # The owner waits for nothing, and its stack shows where it sleeps.
    run_fmx thread "$F_pid" "$F_owner"
    [[ $RC -eq 0 ]] || fail "fmx thread (owner) exited $RC: $ERR"
    expect_in "$OUT" "Waiting:      not for a fastmutex" "owner's wait"
    expect_in "$OUT" "owner_thread" "owner's stack"

    run_fmx thread "$F_pid" 4194303
    expect_error "process $F_pid has no thread 4194303"
}

# expect_holds WHAT: $OUT lists HeldOne, HeldTwo and HeldThree (each a
# fast_mutex_t) and HeldFast (a FAST_MUTEX, named by its own address) as
# held by the holds fixture's thread, each with its time held and where it
# was taken, and nothing else.
expect_holds() {
    local what=$1 n=0 mutex kind name line
    for mutex in one:fast_mutex_t:HeldOne:HOLD-ONE two:fast_mutex_t:HeldTwo:HOLD-TWO \
        three:fast_mutex_t:HeldThree:HOLD-THREE fast:FAST_MUTEX:HeldFast:HOLD-FAST; do
        IFS=: read -r var kind name line <<<"$mutex"
        local address_var=F_$var
        n=$((n + 1))
        grep -qE "^  (Holds:        |              )$kind ${!address_var} \($name\) <held_$var>, held [0-9]+s\.[0-9]{3}$" <<<"$OUT" ||
            fail "$what: $name not listed as held: $OUT"
        # The call into the library may sit in GCC's holder_thread.cold part.
        grep -A1 "($name)" <<<"$OUT" | grep -qE "^                  taken at holder_thread(\.cold)?\+0x[0-9a-f]+ diag_fixture\.c:$(line_of "FMX-SITE-$line")$" ||
            fail "$what: where $name was taken: $OUT"
    done
    [[ $(grep -c ', held ' <<<"$OUT") -eq 4 ]] || fail "$what: not exactly 4 mutexes held: $OUT"
    # It waited for HeldFast before it got it: the FAST_MUTEX, by its own address.
    grep -qE "^  Last waited for and got: FAST_MUTEX $F_fast \(HeldFast\) <held_fast> at holder_thread(\.cold)?\+0x[0-9a-f]+ diag_fixture\.c:$(line_of FMX-SITE-HOLD-FAST)" <<<"$OUT" ||
        fail "$what: the FAST_MUTEX last waited for and got: $OUT"
}

# The holder's record in $WORK/core made hostile: a held count far past
# the array, an entry at an address that holds no mutex, one at a word
# that names no owner, and a FAST_MUTEX (the fourth) claimed at an address
# its lock cannot lie in.  fmx lists the array only, marks what the lock
# words do not confirm, and shows the lock of a FAST_MUTEX claimed wrongly
# as the fast_mutex_t it is.  Offsets: src/registry.h asserts held at 160
# (the count just before it), 32-byte entries with outer at 8, and tid at
# 12.
hostile_holds() {
    python3 - "$WORK/core" "$F_holder" "$F_one" "$F_fast" <<'EOF' || fail "cannot make the hostile core"
import struct, sys
path, tid, one, fast = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 16), int(sys.argv[4], 16)
data = bytearray(open(path, "rb").read())
at = data.find(struct.pack("<II", 0x58544d46, 4))
record_size, used, records = [struct.unpack_from(f, data, at + o)[0]
                              for f, o in (("<I", 12), ("<I", 28), ("<Q", 40))]
for i in range(used):
    rec = at + records + i * record_size
    if struct.unpack_from("<i", data, rec + 12)[0] == tid:
        struct.pack_into("<I", data, rec + 156, 0xFFFFFFFF)
        struct.pack_into("<Q", data, rec + 160, 8)
        struct.pack_into("<Q", data, rec + 160 + 32, one + 4)
        struct.pack_into("<Q", data, rec + 160 + 3 * 32 + 8, fast + 8)
        break
else:
    sys.exit("no record of thread %d" % tid)
open(path + ".hostile", "wb").write(data)
EOF
    run_fmx thread --core "$WORK/core.hostile" "$F_holder"
    [[ $RC -eq 0 ]] || fail "hostile held list: fmx thread --core exited $RC: $ERR"
    sed -n '/^  Holds:/,/^$/p' <<<"$OUT" | head -8
    expect_in "$OUT" "fast_mutex_t 0x8, held " "hostile held list: the bad address shown"
    expect_in "$OUT" "[no mutex readable there]" "hostile held list: no mutex at 0x8"
    expect_in "$OUT" "[its lock word names another owner]" "hostile held list: a word that is no lock of the holder"
    expect_in "$OUT" "and 4294967279 more (a record lists 16)" "hostile held list: the count past the array"
    expect_in "$OUT" "fast_mutex_t $(printf '0x%x' $((F_fast + 0x18))) (HeldFast)" \
        "hostile held list: a FAST_MUTEX claimed where its lock cannot lie"
    [[ $(grep -c ', held ' <<<"$OUT") -eq 16 ]] || fail "hostile held list: not 16 entries listed: $OUT"
}

# A thread that holds four mutexes (one a FAST_MUTEX), nobody waiting: with
# the verifier on, fmx thread lists all four, live and in a core; its long
# name is shown whole.  With the verifier off, no holds are listed.
case_thread_holds() {
    FASTMUTEX_VERIFY=order start_fixture holds
    run_fmx thread "$F_pid" "$F_holder"
    [[ $RC -eq 0 ]] || fail "fmx thread exited $RC: $ERR"
    echo "$OUT"
    expect_in "$OUT" "Thread $F_holder (DiagHolderOfThreeMutexes) of process $F_pid" "live title"
    expect_holds "live"
    if command -v gcore >/dev/null; then
        take_gcore "$F_pid" "$WORK/core"
        run_fmx thread --core "$WORK/core" "$F_holder"
        [[ $RC -eq 0 ]] || fail "fmx thread --core exited $RC: $ERR"
        echo "$OUT"
        expect_in "$OUT" "Thread $F_holder (DiagHolderOfThreeMutexes) of core of process $F_pid" "core title"
        expect_holds "core"
        hostile_holds
    else
        echo "gcore (gdb) is not installed: the core part is skipped"
    fi
    kill -KILL "$F_pid"

    FASTMUTEX_VERIFY=off start_fixture holds
    run_fmx thread "$F_pid" "$F_holder"
    [[ $RC -eq 0 ]] || fail "fmx thread (verifier off) exited $RC: $ERR"
    [[ $OUT != *"Holds:"* ]] || fail "verifier off: holds listed: $OUT"
    # The FAST_MUTEX's Owner (KeGetCurrentThread()) is the thread's record,
    # which keeps its long name, whatever the verifier does.
    expect_in "$OUT" "Thread $F_holder (DiagHolderOfThreeMutexes) of process $F_pid" "verifier off: the title"
}

case_thread_noptrace() {
    # A thread that another process already traces cannot be attached to:
    # the stack is refused, the registry part is still shown.
    start_fixture hold --traced
    wait_for_waiters "$F_pid" 2
    run_fmx thread "$F_pid" "$F_waiter"
    [[ $RC -eq 1 ]] || fail "fmx thread on a traced thread exited $RC"
    expect_in "$OUT" "Waiting for:  fast_mutex_t $F_mutex (DiagMutex)" "registry part"
    expect_in "$OUT" "Owner:        $F_owner (DiagOwner)" "registry part owner"
    [[ $OUT != *Stack:* ]] || fail "a stack was printed although ptrace was refused"
    [[ $(wc -l <"$WORK/fmx.err") -eq 1 ]] || fail "expected one line on stderr, got: $ERR"
    expect_in "$ERR" "fmx: cannot read the stack of thread $F_waiter: ptrace not permitted (" "refusal"
}

case_mutex() {
    local wait_line
    wait_line=$(line_of FMX-SITE-WAIT)
    start_fixture hold
    wait_for_waiters "$F_pid" 2

    run_fmx mutex "$F_pid" "$F_mutex"
    [[ $RC -eq 0 ]] || fail "fmx mutex exited $RC: $ERR"
    expect_in "$OUT" "fast_mutex_t $F_mutex (DiagMutex) <diag_mutex> in process $F_pid (diag_fixture)" "title"
    expect_in "$OUT" "Owner:        $F_owner (DiagOwner)" "owner"
    expect_in "$OUT" "Flags:        WAITERS" "flags"
    expect_in "$OUT" "Contention:   1" "contention"
    expect_in "$OUT" "Waiters:      1" "waiter count"
    expect_in "$OUT" "$F_waiter (DiagWaiter)  waited " "waiter"
    expect_in "$OUT" "diag_fixture.c:$wait_line" "waiter's call site"

    # The same mutex by its decimal address.
    local decimal=$((F_mutex)) hex_out=$OUT
    run_fmx mutex "$F_pid" "$decimal"
    [[ $RC -eq 0 && $(head -1 <<<"$OUT") == $(head -1 <<<"$hex_out") ]] ||
        fail "decimal address $decimal reads differently: $OUT $ERR"

    # A FAST_MUTEX, known as one from its waiter's record: the Windows view.
    run_fmx mutex "$F_pid" "$F_fast_mutex"
    [[ $RC -eq 0 ]] || fail "fmx mutex (FAST_MUTEX) exited $RC: $ERR"
    expect_in "$OUT" "FAST_MUTEX $F_fast_mutex (DiagFastMutex)" "FAST_MUTEX title"
    expect_in "$OUT" "Count:        4 (held, 1 waiter)" "Count"
    expect_in "$OUT" "(thread $F_owner, DiagOwner)" "Owner"
    expect_in "$OUT" "OldIrql:      0" "OldIrql"
    expect_in "$OUT" "Waiters:      1" "FAST_MUTEX waiter count"
    expect_in "$OUT" "$F_wdm_waiter (DiagWdmWaiter)" "FAST_MUTEX waiter"
    local wdm_out=$OUT
    run_fmx mutex --wdm "$F_pid" "$F_fast_mutex"
    [[ $RC -eq 0 && $OUT == *"Count:        4 (held, 1 waiter)"* ]] || fail "--wdm view differs: $OUT"

    # The fast_mutex_t inside the FAST_MUTEX points back to it.
    local inner
    inner=$(grep -o 'Event.Lock:   fast_mutex_t at 0x[0-9a-f]*' <<<"$wdm_out" | awk '{print $NF}')
    run_fmx mutex "$F_pid" "$inner"
    expect_in "$OUT" "the Event.Lock of FAST_MUTEX $F_fast_mutex" "inner lock"

    # Addresses that are not mapped, and text that is not an address.
    run_fmx mutex "$F_pid" 0x10
    expect_error "address 0x10 is not mapped in process $F_pid"
    run_fmx mutex "$F_pid" 0xfffffffffffff000
    expect_error "is not mapped in process $F_pid"
    for bad in 0xZZ 0x 12abc -1 0 0x00000000000000001; do
        run_fmx mutex "$F_pid" "$bad"
        expect_error "is not an address"
    done
}

case_no_waiters() {
    # A registry (a mutex was named) and nobody waiting: not an error.
    start_fixture named
    run_fmx waiters "$F_pid"
    [[ $RC -eq 0 && $OUT == "0 threads waiting." && -z $ERR ]] ||
        fail "expected only '0 threads waiting.', got status $RC: $OUT $ERR"
    run_fmx waiters --json "$F_pid"
    [[ $RC -eq 0 && $OUT == '{"waiters": [], "count": 0, "changing": 0}' ]] ||
        fail "unexpected JSON for no waiters: $OUT $ERR"
    run_fmx mutex "$F_pid" "$F_mutex"
    [[ $RC -eq 0 ]] || fail "fmx mutex on a free mutex exited $RC: $ERR"
    expect_in "$OUT" "fast_mutex_t $F_mutex (DiagMutex)" "free mutex title"
    expect_in "$OUT" "Owner:        none" "free mutex owner"
    expect_in "$OUT" "Flags:        none (lock word 0x00000000)" "free mutex flags"
    expect_in "$OUT" "Waiters:      0" "free mutex waiters"
    run_fmx thread "$F_pid" "$F_pid"
    [[ $RC -eq 0 ]] || fail "fmx thread on the main thread exited $RC: $ERR"
    expect_in "$OUT" "Waiting:      not for a fastmutex" "main thread"
    expect_in "$OUT" " main+0x" "main thread's stack"
}

# The deadlock report on the fixture's stderr, once there is one.
deadlock_report() {
    grep -q 'deadlock' "$FIXTURE_ERR"
}

case_deadlock_report() {
    local ab_line ba_line report
    ab_line=$(line_of FMX-SITE-AB)
    ba_line=$(line_of FMX-SITE-BA)
    FASTMUTEX_DEADLOCK_MS=200 start_fixture deadlock
    wait_until deadlock_report || fail "no deadlock report within 30 s"
    # The report is written in one piece; give a second one (which must not
    # come) a few check intervals to show up.
    sleep 1
    report=$(cat "$FIXTURE_ERR")
    for word in "thread $F_a (DeadlockA)" "thread $F_b (DeadlockB)" "$F_lock_a (LockA)" "$F_lock_b (LockB)"; do
        expect_in "$report" "$word" "deadlock report"
    done
    [[ $(grep -c 'deadlock detected' "$FIXTURE_ERR") -eq 1 ]] || fail "not exactly one report:
$report"
    [[ $(grep -c 'called from' "$FIXTURE_ERR") -eq 2 ]] || fail "the report lacks the two call sites:
$report"
    # The call sites are named as fmx names them, by function, file and
    # line, though the fixture was not linked with -rdynamic.
    expect_in "$report" "called from thread_a" "call site function of DeadlockA"
    expect_in "$report" "called from thread_b" "call site function of DeadlockB"
    expect_in "$report" "diag_fixture.c:$ab_line" "call site of DeadlockA"
    expect_in "$report" "diag_fixture.c:$ba_line" "call site of DeadlockB"

    # fmx sees both waits, each marked by the deadlock check.
    run_fmx waiters "$F_pid"
    [[ $RC -eq 0 ]] || fail "fmx waiters exited $RC: $ERR"
    expect_in "$(row_of "$F_a")" "$F_lock_b (LockB) <lock_b>  $F_b (DeadlockB)" "DeadlockA's row"
    expect_in "$(row_of "$F_a")" "diag_fixture.c:$ab_line" "DeadlockA's site"
    expect_in "$(row_of "$F_b")" "$F_lock_a (LockA) <lock_a>  $F_a (DeadlockA)" "DeadlockB's row"
    expect_in "$(row_of "$F_b")" "diag_fixture.c:$ba_line" "DeadlockB's site"
    expect_in "$OUT" "Deadlock: the deadlock check found a cycle through" "deadlock line"
    expect_in "$OUT" "$F_a (DeadlockA)" "deadlock line, DeadlockA"
    expect_in "$OUT" "$F_b (DeadlockB)" "deadlock line, DeadlockB"
    run_fmx thread "$F_pid" "$F_a"
    expect_in "$OUT" "Deadlock:     yes" "fmx thread on a deadlocked thread"
}

case_deadlock_ignore() {
    FASTMUTEX_DEADLOCK_MS=200 FASTMUTEX_ON_DEADLOCK=ignore start_fixture deadlock
    wait_for_waiters "$F_pid" 2
    # Both threads wait well past five check intervals, unreported.
    local waited=0 row
    for _ in $(seq 150); do
        sleep 0.2
        run_fmx waiters "$F_pid"
        row=$(row_of "$F_a")
        [[ -n $row ]] || fail "DeadlockA is not listed: $OUT $ERR"
        waited=$(duration_ms "$(awk '{print $9}' <<<"$row")")
        [[ $waited -ge 1500 ]] && break
    done
    [[ $waited -ge 1500 ]] || fail "DeadlockA never waited 1.5 s"
    [[ ! -s $FIXTURE_ERR ]] || fail "FASTMUTEX_ON_DEADLOCK=ignore still reported: $(cat "$FIXTURE_ERR")"
    [[ $OUT != *Deadlock:* ]] || fail "FASTMUTEX_ON_DEADLOCK=ignore still marked the records: $OUT"
}

case_deadlock_abort() {
    ulimit -c 0
    FASTMUTEX_DEADLOCK_MS=200 FASTMUTEX_ON_DEADLOCK=abort timeout 60 "$FIXTURE" deadlock \
        >"$WORK/out" 2>"$WORK/err"
    local rc=$?
    [[ $rc -eq 134 ]] || fail "expected death by SIGABRT (status 134), got $rc: $(cat "$WORK/err")"
    expect_in "$(cat "$WORK/err")" "DeadlockA" "abort report"
    expect_in "$(cat "$WORK/err")" "DeadlockB" "abort report"
    expect_in "$(cat "$WORK/err")" "FASTMUTEX_ON_DEADLOCK=abort" "abort report"
}

case_deadlock_timed() {
    FASTMUTEX_DEADLOCK_MS=200 timeout 60 "$FIXTURE" timed >"$WORK/out" 2>"$WORK/err"
    local rc=$? out
    out=$(cat "$WORK/out")
    [[ $rc -eq 0 ]] || fail "timed fixture exited $rc: $out $(cat "$WORK/err")"
    expect_in "$out" "EDEADLK" "a timed acquire in the cycle"
    expect_in "$out" "timed: done" "the end"
    [[ $out != *ETIMEDOUT* && $out != *unexpected* ]] || fail "wrong results: $out"
}

case_errors() {
    # A process that has ended.
    true &
    local dead=$!
    wait $dead
    run_fmx waiters "$dead"
    expect_error "no process $dead"
    run_fmx thread "$dead" "$dead"
    expect_error "no process $dead"
    run_fmx mutex "$dead" 0x1000
    expect_error "no process $dead"
    # Processes that do not use fastmutex: this shell, and sleep.
    sleep 60 &
    FIXTURE_PIDS+=($!)
    for pid in $$ $!; do
        run_fmx waiters "$pid"
        expect_error "process $pid has no fastmutex registry"
        run_fmx mutex "$pid" 0x1000
        expect_error "process $pid has no fastmutex registry"
        run_fmx thread "$pid" "$pid"
        expect_error "process $pid has no fastmutex registry"
    done
    # Text that is not a process id.
    for bad in 12ab 0 "" 99999999999 " 1" +5; do
        run_fmx waiters "$bad"
        [[ $RC -eq 2 ]] || fail "fmx waiters '$bad' exited $RC"
        expect_error "is not a process id"
    done
    run_fmx thread -1 5
    expect_error "unknown option '-1'"
    run_fmx thread 1 x
    expect_error "'x' is not a thread id"
    run_fmx waiters --frobnicate
    expect_error "unknown option"
    run_fmx mutex 1
    expect_error "usage: fmx mutex"
    run_fmx waiters --exe /bin/true
    expect_error "--exe goes with --core"
    run_fmx waiters --core "$WORK/core" 1
    expect_error "a core and process ids do not go together"
    run_fmx thread --core
    expect_error "option needs a value"
    run_fmx mutex --core "$WORK/core" 1 0x10
    expect_error "usage: fmx mutex"
}

case_other_user() {
    [[ $(id -u) -eq 0 ]] || { echo "needs root to run processes as other users"; exit 77; }
    # Both programs are copied where every user may run them: under /tmp,
    # whatever TMPDIR says, since a private TMPDIR may be closed to them.
    local bin
    bin=$(mktemp -d /tmp/fmx-diag.XXXXXX)
    FIXTURE_BIN=$bin
    chmod 755 "$bin"
    cp "$FIXTURE" "$FMX" "$bin/"
    FIXTURE=$bin/diag_fixture
    FMX=$bin/fmx
    RUN_AS="setpriv --reuid=nobody --regid=nogroup --clear-groups" start_fixture hold
    wait_for_waiters "$F_pid" 2

    # Another user (uid 65533, not nobody) is refused, clearly.
    export FMX_AS="setpriv --reuid=65533 --regid=65533 --clear-groups"
    run_fmx waiters "$F_pid"
    expect_error "process $F_pid belongs to another user"
    run_fmx thread "$F_pid" "$F_waiter"
    expect_error "process $F_pid belongs to another user"
    run_fmx mutex "$F_pid" "$F_mutex"
    expect_error "process $F_pid belongs to another user"
    run_fmx waiters
    [[ $RC -eq 0 && $OUT != *DiagWaiter* ]] || fail "another user's scan shows nobody's threads: $OUT"

    # The same user sees everything, with no special rights.
    export FMX_AS="setpriv --reuid=nobody --regid=nogroup --clear-groups"
    run_fmx waiters "$F_pid"
    [[ $RC -eq 0 ]] || fail "the same user could not read the registry: $ERR"
    expect_in "$(row_of "$F_waiter")" "$F_owner (DiagOwner)" "same user's view"
    run_fmx thread "$F_pid" "$F_waiter"
    [[ $RC -eq 0 ]] || fail "the same user could not read the stack: $ERR"
    expect_in "$OUT" "waiter_thread" "same user's stack"
}

# A process in a pid namespace of its own (a container) writes its own
# view of its id into its registry; fmx on the host must still find it.
case_pid_namespace() {
    if ! unshare --pid --fork --kill-child true 2>/dev/null; then
        echo "SKIP [$CASE]: this machine refuses 'unshare --pid --fork' (needs root or user namespaces)"
        exit 77
    fi
    RUN_AS="unshare --pid --fork --kill-child" start_fixture hold
    local unshare_pid=${FIXTURE_PIDS[-1]} host_pid
    host_pid=$(pgrep -P "$unshare_pid" | head -1)
    [[ -n $host_pid ]] || fail "no process under unshare $unshare_pid"
    [[ $host_pid != "$F_pid" ]] || fail "fixture has the same id $F_pid inside and outside"
    wait_for_waiters "$host_pid" 2
    run_fmx waiters "$host_pid"
    [[ $RC -eq 0 ]] || fail "fmx waiters $host_pid exited $RC: $ERR"
    expect_in "$OUT" "2 threads waiting." "count line"
}

case_man_page() {
    command -v groff >/dev/null || { echo "groff is not installed"; exit 77; }
    local doc warnings
    doc=$(dirname "$SOURCE")/../../doc
    warnings=$(groff -ww -z -man "$doc/fmx.1" 2>&1) || fail "groff failed on fmx.1: $warnings"
    [[ -z $warnings ]] || fail "groff warns about fmx.1: $warnings"
    for section in NAME SYNOPSIS DESCRIPTION DEMO "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO"; do
        grep -q "^\.SH $section\$" "$doc/fmx.1" || fail "fmx.1 has no $section section"
    done
    for word in "fmx waiters" "fmx thread" "fmx mutex" FASTMUTEX_DEADLOCK_MS FASTMUTEX_ON_DEADLOCK \
        "fast_mutex (3)"; do
        grep -q "$word" "$doc/fmx.1" || fail "fmx.1 does not mention $word"
    done
    # The DEMO section is doc/fmx-demo.txt, which the demo's author keeps;
    # when that changes, it must be merged into fmx.1 again.
    if [[ -f $doc/fmx-demo.txt ]]; then
        grep -v '^\.\\"' "$doc/fmx-demo.txt" >"$WORK/demo"
        [[ $(cat "$doc/fmx.1") == *"$(cat "$WORK/demo")"* ]] ||
            fail "the DEMO section of fmx.1 differs from doc/fmx-demo.txt: merge it again"
    fi
}

# ---- cores (issue 15) ----

# Takes a core of running process $1 with gdb's gcore into $2.
take_gcore() {
    gcore -o "$2" "$1" >"$WORK/gcore.log" 2>&1 || fail "gcore failed: $(cat "$WORK/gcore.log")"
    mv "$2.$1" "$2"
}

# The Waited column of thread $1's row in $OUT, in ms.
waited_ms_of() {
    duration_ms "$(awk '{print $9}' <<<"$(row_of "$1")")"
}

need_gcore() {
    command -v gcore >/dev/null || { echo "gcore (gdb) is not installed"; exit 77; }
}

case_core_gcore() {
    need_gcore
    local wait_line before after in_core
    wait_line=$(line_of FMX-SITE-WAIT)
    start_fixture hold
    wait_for_waiters "$F_pid" 2

    # The time waited in the core lies between what the live view said
    # just before the dump and just after it, and within 1 s of the dump.
    run_fmx waiters "$F_pid"
    before=$(waited_ms_of "$F_waiter")
    take_gcore "$F_pid" "$WORK/core"
    run_fmx waiters "$F_pid"
    after=$(waited_ms_of "$F_waiter")
    kill -KILL "$F_pid"

    run_fmx waiters --core "$WORK/core"
    [[ $RC -eq 0 && -z $ERR ]] || fail "fmx waiters --core exited $RC: $ERR"
    expect_in "$OUT" "2 threads waiting." "count line"
    local row
    row=$(row_of "$F_waiter")
    [[ $(awk '{print $1, $2, $3, $5, $8}' <<<"$row") == "diag_fixture $F_pid DiagWaiter - -" ]] ||
        fail "core row: wrong process or thread, or invented state/context switches: $row"
    expect_in "$row" "$F_mutex (DiagMutex) <diag_mutex>" "core row mutex"
    expect_in "$row" "$F_owner (DiagOwner)" "core row owner"
    expect_in "$row" "diag_fixture.c:$wait_line" "core row site"
    in_core=$(waited_ms_of "$F_waiter")
    [[ $in_core -ge $before && $in_core -le $after ]] ||
        fail "waited in the core, $in_core ms, is not between the live views before ($before ms) and after ($after ms) the dump"
    [[ $((after - in_core)) -lt 1000 ]] ||
        fail "waited in the core, $in_core ms, is not within 1 s of the live view after the dump ($after ms)"
    echo "waited: live before the dump $before ms, core $in_core ms, live after $after ms"

    # The moment of a gcore core is its modification time: a core touched
    # an hour later tells of waits an hour longer.
    cp -p "$WORK/core" "$WORK/core.later"
    touch -d "@$(($(stat -c %Y "$WORK/core") + 3600))" "$WORK/core.later"
    run_fmx waiters --core "$WORK/core.later"
    local later
    later=$(waited_ms_of "$F_waiter")
    [[ $((later - in_core)) -ge 3599000 && $((later - in_core)) -le 3601000 ]] ||
        fail "a core touched an hour later shows $later ms instead of $in_core + 3600000"

    run_fmx thread --core "$WORK/core" "$F_waiter"
    [[ $RC -eq 0 ]] || fail "fmx thread --core exited $RC: $ERR"
    expect_in "$OUT" "Thread $F_waiter (DiagWaiter) of core of process $F_pid (diag_fixture)" "title"
    expect_in "$OUT" "State:        -, - context switches, user " "figures a core has and has not"
    expect_in "$OUT" "Waiting for:  fast_mutex_t $F_mutex (DiagMutex) <diag_mutex>" "wait"
    expect_in "$OUT" "Owner:        $F_owner (DiagOwner)" "owner"
    local stack
    stack=$(sed -n '/^Stack:/,$p' <<<"$OUT")
    expect_in "$stack" "fmx_futex_wait" "core stack: the futex wait"
    expect_in "$stack" "diag_fixture.c:$wait_line" "core stack: the fixture's line"
    expect_in "$stack" "inlined: fast_mutex_acquire" "core stack: the inlined acquire"

    # A thread that waits for nothing: its stack, and what it holds.
    run_fmx thread --core "$WORK/core" "$F_owner"
    [[ $RC -eq 0 ]] || fail "fmx thread --core (owner) exited $RC: $ERR"
    expect_in "$OUT" "Waiting:      not for a fastmutex" "owner's wait"
    expect_in "$OUT" "Holds:        " "owner's mutexes"
    expect_in "$OUT" "fast_mutex_t $F_mutex (DiagMutex) <diag_mutex>, 1 waiter" "owner holds DiagMutex"
    expect_in "$OUT" "FAST_MUTEX $F_fast_mutex (DiagFastMutex) <diag_fast_mutex>, 1 waiter" "owner holds DiagFastMutex"
    expect_in "$(sed -n '/^Stack:/,$p' <<<"$OUT")" "owner_thread" "owner's stack"

    run_fmx mutex --core "$WORK/core" diag_mutex
    [[ $RC -eq 0 ]] || fail "fmx mutex --core SYMBOL exited $RC: $ERR"
    expect_in "$OUT" "fast_mutex_t $F_mutex (DiagMutex) <diag_mutex> in core of process $F_pid" "title"
    expect_in "$OUT" "Owner:        $F_owner (DiagOwner)" "owner"
    expect_in "$OUT" "$F_waiter (DiagWaiter)  waited " "waiter"
    run_fmx mutex --core "$WORK/core" "$F_fast_mutex"
    expect_in "$OUT" "Count:        4 (held, 1 waiter)" "FAST_MUTEX Count from the core"
    run_fmx mutex --core "$WORK/core" g_queue.lock
    expect_in "$OUT" "fast_mutex_t $F_queue_lock <g_queue.lock> in core" "a member of a global struct"
    expect_in "$OUT" "Owner:        none" "g_queue.lock is free"

    run_fmx waiters --json --core "$WORK/core"
    python3 -c '
import json, sys
path, waiter, waited = sys.argv[1:]
doc = json.load(open(path))
row = [w for w in doc["waiters"] if w["tid"] == int(waiter)][0]
assert row["state"] is None and row["context_switches"] is None, row
assert row["user_seconds"] is not None and row["waited_ms"] == int(waited), row
assert row["mutex_symbol"] == "diag_mutex" and row["owner_name"] == "DiagOwner", row
assert row["owner_exited"] is False, row
' "$WORK/fmx.out" "$F_waiter" "$in_core" || fail "fmx waiters --json --core is wrong: $OUT"

    run_fmx thread --core "$WORK/core" 4194303
    expect_error "core of process $F_pid has no thread 4194303"
}

# Leaves in $CORE a core of diag_fixture deadlocking with
# FASTMUTEX_ON_DEADLOCK=abort: one from the kernel when core_pattern puts it
# in the current folder (the test's own), else one gdb takes at SIGABRT.
abort_core() {
    local pattern
    pattern=$(cat /proc/sys/kernel/core_pattern)
    cd "$WORK" || fail "no $WORK"
    if [[ $pattern != \|* && $pattern != */* ]]; then
        ulimit -c unlimited
        FASTMUTEX_DEADLOCK_MS=200 FASTMUTEX_ON_DEADLOCK=abort timeout 60 "$FIXTURE" deadlock \
            >"$WORK/out" 2>"$WORK/err"
        [[ $? -eq 134 ]] || fail "the fixture did not abort: $(cat "$WORK/err")"
        CORE=$(ls -d "$WORK"/core* 2>/dev/null | head -1)
        [[ -n $CORE ]] || { echo "the kernel wrote no core (core_pattern '$pattern')"; exit 77; }
    else
        command -v gdb >/dev/null || { echo "core_pattern is '$pattern' and gdb is missing"; exit 77; }
        echo "core_pattern is '$pattern': taking the core with gdb at SIGABRT"
        FASTMUTEX_DEADLOCK_MS=200 FASTMUTEX_ON_DEADLOCK=abort timeout 120 gdb -batch -nx \
            -ex 'handle SIGABRT stop' -ex run -ex "gcore $WORK/core" -ex kill \
            --args "$FIXTURE" deadlock >"$WORK/out" 2>"$WORK/err"
        CORE=$WORK/core
        [[ -s $CORE ]] || fail "gdb took no core: $(cat "$WORK/err")"
    fi
    F_a=$(grep -o 'thread [0-9]* (DeadlockA)' "$WORK/err" | head -1 | awk '{print $2}')
    F_b=$(grep -o 'thread [0-9]* (DeadlockB)' "$WORK/err" | head -1 | awk '{print $2}')
    [[ -n $F_a && -n $F_b ]] || fail "no deadlock report: $(cat "$WORK/err")"
}

case_core_abort() {
    abort_core
    run_fmx waiters --core "$CORE"
    [[ $RC -eq 0 ]] || fail "fmx waiters --core (abort core) exited $RC: $ERR"
    expect_in "$(row_of "$F_a")" "(LockB) <lock_b>  $F_b (DeadlockB)" "DeadlockA's row"
    expect_in "$(row_of "$F_b")" "(LockA) <lock_a>  $F_a (DeadlockA)" "DeadlockB's row"
    expect_in "$OUT" "Deadlock: the deadlock check found a cycle through" "the cycle"
    expect_in "$OUT" "$F_a (DeadlockA)" "the cycle, DeadlockA"
    expect_in "$OUT" "$F_b (DeadlockB)" "the cycle, DeadlockB"
    # The check runs once a wait passes 200 ms: one of the two had waited
    # that long when the library stamped the registry and aborted.
    local a b
    a=$(waited_ms_of "$F_a")
    b=$(waited_ms_of "$F_b")
    [[ $a -ge 200 || $b -ge 200 ]] || fail "neither waited 200 ms at the abort: $a ms, $b ms"
    echo "waited at the abort: DeadlockA $a ms, DeadlockB $b ms"
    # The stamp, not the file's time, is the moment of the dump: a core
    # touched an hour later tells the same.
    touch -d "@$(($(stat -c %Y "$CORE") + 3600))" "$CORE"
    run_fmx waiters --core "$CORE"
    [[ $(waited_ms_of "$F_a") -eq $a ]] || fail "the abort stamp was not used: $a ms, then $(waited_ms_of "$F_a") ms"
    run_fmx thread --core "$CORE" "$F_a"
    expect_in "$OUT" "Deadlock:     yes" "fmx thread --core on a deadlocked thread"
    expect_in "$OUT" "Holds:        fast_mutex_t " "DeadlockA holds LockA"
}

# Exactly one line on stderr saying $1, and status 1, with output.
expect_warning() {
    [[ $RC -eq 1 ]] || fail "expected status 1, got $RC: $ERR"
    [[ $(wc -l <"$WORK/fmx.err") -eq 1 ]] || fail "expected one line on stderr, got: $ERR"
    expect_in "$ERR" "$1" "warning"
}

case_core_exe() {
    need_gcore
    # The fixture runs from a copy that the test then takes away.
    cp "$FIXTURE" "$WORK/fx"
    FIXTURE=$WORK/fx
    start_fixture hold
    wait_for_waiters "$F_pid" 2
    take_gcore "$F_pid" "$WORK/core"
    kill -KILL "$F_pid"

    mv "$WORK/fx" "$WORK/fx.saved"
    run_fmx waiters --core "$WORK/core"
    expect_warning "the executable of core $WORK/core, $WORK/fx, is missing (give it with --exe)"
    expect_in "$(row_of "$F_waiter")" "$F_mutex (DiagMutex)" "the registry without symbols"
    expect_in "$(row_of "$F_waiter")" "(fx)" "a site without symbols names its module"

    run_fmx waiters --core "$WORK/core" --exe "$WORK/fx.saved"
    [[ $RC -eq 0 && -z $ERR ]] || fail "--exe with the right file: $RC $ERR"
    expect_in "$(row_of "$F_waiter")" "waiter_thread" "symbols from --exe"

    cp /bin/true "$WORK/fx"
    run_fmx waiters --core "$WORK/core"
    expect_warning "$WORK/fx is not the executable core $WORK/core was made from (its build ID differs"
    run_fmx thread --core "$WORK/core" --exe /bin/true "$F_waiter"
    expect_warning "/bin/true is not the executable core $WORK/core was made from"

    # An --exe that is wrong while the core's own is there: the core's.
    mv "$WORK/fx.saved" "$WORK/fx"
    run_fmx waiters --core "$WORK/core" --exe /bin/true
    expect_warning "using the one the core names"
    expect_in "$(row_of "$F_waiter")" "waiter_thread" "symbols from the core's executable"
}

case_core_errors() {
    need_gcore
    run_fmx waiters --core "$WORK/nothing"
    expect_error "$WORK/nothing: No such file or directory"
    run_fmx waiters --core "$SOURCE"
    expect_error "not an ELF file, so not a core dump"
    : >"$WORK/empty"
    run_fmx waiters --core "$WORK/empty"
    expect_error "not an ELF file"
    run_fmx waiters --core "$FIXTURE"
    expect_error "an ELF file but not a core dump"
    run_fmx waiters --core /dev/null
    expect_error "not a regular file"

    # A process without fastmutex.
    sleep 60 &
    FIXTURE_PIDS+=($!)
    take_gcore $! "$WORK/sleep.core"
    run_fmx waiters --core "$WORK/sleep.core"
    expect_error "core of process $! (sleep) has no fastmutex registry"

    start_fixture hold
    wait_for_waiters "$F_pid" 2
    take_gcore "$F_pid" "$WORK/core"
    local size view
    size=$(stat -c %s "$WORK/core")
    head -c $((size / 2)) "$WORK/core" >"$WORK/truncated"
    for view in "waiters --core $WORK/truncated" "thread --core $WORK/truncated $F_waiter" \
        "mutex --core $WORK/truncated $F_mutex"; do
        run_fmx $view
        expect_error "truncated: its segments need "
        expect_in "$ERR" "bytes, the file has $((size / 2))" "truncated core"
    done
    # Another architecture: e_machine (offset 18) patched to AArch64's 183.
    cp "$WORK/core" "$WORK/arm"
    printf '\xb7\x00' | dd of="$WORK/arm" bs=1 seek=18 conv=notrunc 2>/dev/null
    run_fmx waiters --core "$WORK/arm"
    expect_error "a core of another architecture (AArch64, e_machine 183)"
    # A corrupt registry in the core: its version, then its record count.
    local magic_at
    magic_at=$(python3 -c '
import struct, sys
data = open(sys.argv[1], "rb").read()
print(data.find(struct.pack("<II", 0x58544d46, 4)))' "$WORK/core")
    [[ $magic_at -gt 0 ]] || fail "no registry in the core"
    cp "$WORK/core" "$WORK/badversion"
    printf '\x63' | dd of="$WORK/badversion" bs=1 seek=$((magic_at + 4)) conv=notrunc 2>/dev/null
    run_fmx waiters --core "$WORK/badversion"
    expect_error "registry has version 99, this fmx reads version 4"
    # A registry of the previous layout (version 3) is refused in one line.
    printf '\x03' | dd of="$WORK/badversion" bs=1 seek=$((magic_at + 4)) conv=notrunc 2>/dev/null
    run_fmx thread --core "$WORK/badversion" "$F_waiter"
    expect_error "registry has version 3, this fmx reads version 4"
    cp "$WORK/core" "$WORK/badused"
    printf '\xff\xff\xff\x7f' | dd of="$WORK/badused" bs=1 seek=$((magic_at + 28)) conv=notrunc 2>/dev/null
    run_fmx thread --core "$WORK/badused" "$F_waiter"
    expect_error "registry claims 2147483647 records in use"

    # Addresses and symbols that are not there.
    run_fmx mutex --core "$WORK/core" 0x10
    expect_error "address 0x10 is not mapped in core of process $F_pid"
    run_fmx mutex --core "$WORK/core" no_such_lock
    expect_error "no global or static variable 'no_such_lock'"
    run_fmx mutex --core "$WORK/core" g_queue.nolock
    expect_error "'g_queue.nolock': no member 'nolock' there"
    run_fmx mutex --core "$WORK/core" 'g_queue.lock[2]'
    expect_error "is not an index into an array there"
}

case_symbols() {
    start_fixture hold
    wait_for_waiters "$F_pid" 2
    run_fmx mutex "$F_pid" g_queue.lock
    [[ $RC -eq 0 ]] || fail "fmx mutex PID SYMBOL exited $RC: $ERR"
    expect_in "$OUT" "fast_mutex_t $F_queue_lock <g_queue.lock> in process $F_pid" "member of a struct"
    run_fmx mutex "$F_pid" diag_fast_mutex
    expect_in "$OUT" "FAST_MUTEX $F_fast_mutex (DiagFastMutex) <diag_fast_mutex>" "a FAST_MUTEX by name"
    run_fmx mutex "$F_pid" diag_fast_mutex.Event.Lock
    expect_in "$OUT" "(DiagFastMutex) <diag_fast_mutex.Event.Lock> in process" "the lock inside a FAST_MUTEX"
    expect_in "$OUT" "the Event.Lock of FAST_MUTEX $F_fast_mutex" "and what it is inside"
    run_fmx thread "$F_pid" "$F_waiter"
    expect_in "$OUT" "Waiting for:  fast_mutex_t $F_mutex (DiagMutex) <diag_mutex>" "thread view"
    run_fmx mutex "$F_pid" no_such_lock
    expect_error "no global or static variable 'no_such_lock'"
    run_fmx mutex "$F_pid" 'bad-name'
    expect_error "is not an address (want hex like 0x7f5e2c0010a0, or decimal) nor a symbol"
}

case_exited_owner() {
    need_gcore
    FASTMUTEX_DEADLOCK_MS=200 start_fixture orphan
    wait_until grep -q 'exited while holding it' "$FIXTURE_ERR" || fail "no report of the exited owner"
    sleep 1 # a second report, which must not come, has five check intervals to show up
    local report
    report=$(cat "$FIXTURE_ERR")
    expect_in "$report" "fastmutex: mutex $F_queue_lock (QueueLock): owner $F_leaver exited while holding it" "report"
    expect_in "$report" "thread $F_orphaned (Orphaned) waits for it" "report names the waiter"
    [[ $(grep -c 'exited while holding it' "$FIXTURE_ERR") -eq 1 ]] || fail "not reported exactly once:
$report"

    run_fmx waiters "$F_pid"
    expect_in "$(row_of "$F_orphaned")" "$F_queue_lock (QueueLock) <g_queue.lock>  $F_leaver (exited)" "live row"
    run_fmx mutex "$F_pid" g_queue.lock
    expect_in "$OUT" "Owner:        $F_leaver (exited)" "live fmx mutex"
    take_gcore "$F_pid" "$WORK/core"
    run_fmx waiters --core "$WORK/core"
    expect_in "$(row_of "$F_orphaned")" "$F_leaver (exited)" "core row"
    run_fmx waiters --json --core "$WORK/core"
    expect_in "$OUT" "\"owner_tid\": $F_leaver, \"owner_name\": null, \"owner_exited\": true" "core JSON"
    run_fmx thread --core "$WORK/core" "$F_orphaned"
    expect_in "$OUT" "Owner:        $F_leaver (exited)" "core thread view"
}

"case_$CASE"
echo "PASS [$CASE]"
