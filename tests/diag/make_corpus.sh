#!/bin/bash
# Makes the fuzzer's seed corpus (tests/diag/corpus/) from real registries:
# runs diag_fixture, copies its fastmutex-registry memfd through /proc, and
# writes compact copies (the same records and names, with capacities cut
# down to what is used, so that inputs are small) and truncated ones.
#
#   make_corpus.sh FIXTURE OUTPUT_DIR
#
# The corpus is kept in the repository; run this again when the registry
# layout changes.
set -eu
FIXTURE=$1
OUT=$2
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

# Copies the registry of process $1 to $2, once $3 threads wait in it.
copy_registry() {
    local pid=$1 dest=$2
    for _ in $(seq 100); do
        for fd in /proc/"$pid"/fd/*; do
            if [[ $(readlink "$fd") == /memfd:fastmutex-registry* ]]; then
                sleep 0.5 # let the waiters write their records
                cp "$fd" "$dest"
                return 0
            fi
        done
        sleep 0.1
    done
    echo "no registry in process $pid" >&2
    return 1
}

for mode in hold deadlock; do
    FASTMUTEX_DEADLOCK_MS=200 "$FIXTURE" "$mode" >"$WORK/$mode.out" 2>/dev/null &
    pid=$!
    copy_registry "$pid" "$WORK/$mode.full"
    kill "$pid"
done

python3 - "$WORK" "$OUT" <<'EOF'
import struct, sys
work, out = sys.argv[1:]
HEADER = "<IIIIIIIIiIQQqQ"  # struct fmx_registry
for mode in ("hold", "deadlock"):
    full = open(f"{work}/{mode}.full", "rb").read()
    (magic, version, hsize, rsize, nsize, tcap, ncap, used, pid, pad,
     roff, noff, offset, stamp) = struct.unpack_from(HEADER, full)
    records = full[roff:roff + used * rsize]
    names = [full[noff + i * nsize:noff + (i + 1) * nsize] for i in range(ncap)]
    names = [n for n in names if any(n[:8])] + [bytes(nsize)]
    new_roff = hsize
    new_noff = hsize + used * rsize
    header = struct.pack(HEADER, magic, version, hsize, rsize, nsize, used, len(names), used,
                         pid, pad, new_roff, new_noff, offset, stamp)
    compact = header + records + b"".join(names)
    open(f"{out}/{mode}-valid", "wb").write(compact)
    # Truncated: inside the header, inside the records, inside the names.
    for cut in (hsize // 2, new_roff + rsize + rsize // 2, len(compact) - nsize // 2):
        open(f"{out}/{mode}-truncated-{cut}", "wb").write(compact[:cut])
EOF
ls -l "$OUT"
# The core fuzzer's seeds are core images around these registries.
python3 "$(dirname "$0")/make_core_corpus.py" "$OUT" "$(dirname "$OUT")/corpus_core"
