# Shared by the end-to-end scripts of tests/diag (diag_e2e.sh, stat_e2e.sh,
# robust_flags.sh), sourced once the script has set CASE (the label of its
# failures) and, for line_of, SOURCE.  It makes the scratch folder $WORK and
# kills, at exit, every process in FIXTURE_PIDS.

WORK=$(mktemp -d)
FIXTURE_PIDS=()
cleanup() {
    # The shell would announce each killed fixture; nobody needs that.
    exec 2>/dev/null
    for pid in "${FIXTURE_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$WORK" ${FIXTURE_BIN:+"$FIXTURE_BIN"}
}
trap cleanup EXIT

fail() {
    echo "FAIL [$CASE]: $*" >&2
    exit 1
}

# The line of a marker comment in the fixture's source.
line_of() {
    grep -n "$1" "$SOURCE" | head -1 | cut -d: -f1
}

# Polls `$@` every 0.1 s until it succeeds, for at most 60 s: a loaded
# machine makes a test slower, not red.
wait_until() {
    for _ in $(seq 600); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# Sets F_KEY for each KEY=VALUE word of the line $1 (a fixture's "ready"
# line: F_pid, F_owner, ...).
read_ready_line() {
    local pair
    for pair in $1; do
        case $pair in
        *=*) printf -v "F_${pair%%=*}" '%s' "${pair#*=}" ;;
        esac
    done
}

# Runs the command `$@` (a fixture) in the background and waits for its
# "ready" line; FIXTURE_OUT and FIXTURE_ERR name the files its output goes
# to.
launch_fixture() {
    FIXTURE_OUT=$WORK/fixture.out
    FIXTURE_ERR=$WORK/fixture.err
    "$@" >"$FIXTURE_OUT" 2>"$FIXTURE_ERR" &
    FIXTURE_PIDS+=($!)
    wait_until grep -q '^ready' "$FIXTURE_OUT" ||
        fail "fixture $* never got ready: $(cat "$FIXTURE_ERR")"
    read_ready_line "$(grep '^ready' "$FIXTURE_OUT" | head -1)"
}

# Runs fmx (as the command prefix $FMX_AS, if set), keeping stdout in $OUT,
# stderr in $ERR and the status in $RC.
run_fmx() {
    ${FMX_AS:-} "$FMX" "$@" >"$WORK/fmx.out" 2>"$WORK/fmx.err"
    RC=$?
    OUT=$(cat "$WORK/fmx.out")
    ERR=$(cat "$WORK/fmx.err")
}

expect_in() { # TEXT NEEDLE WHAT
    [[ $1 == *"$2"* ]] || fail "$3: expected to find '$2' in:
$1"
}
