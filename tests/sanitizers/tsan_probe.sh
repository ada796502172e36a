#!/bin/sh
# Whether programs built by CC with -fsanitize=thread can run here: clang
# 14's ThreadSanitizer cannot start on kernels that randomize mmap with more
# bits than it knows (vm.mmap_rnd_bits > 28).  Exit status 0 when it runs,
# 77 (ctest's skip) with the reason when the kernel refuses it, 1 on any
# other failure, with the probe's output.  Shared by tests/core/tsan.sh and
# tests/sanitizers/tsan_user.sh.
# usage: tsan_probe.sh CC WORK_DIR
set -eu
cc=$1
dir=$2
mkdir -p "$dir"
printf 'int main(void) { return 0; }\n' >"$dir/probe.c"
"$cc" -fsanitize=thread "$dir/probe.c" -o "$dir/probe"
if ! "$dir/probe" >"$dir/probe.log" 2>&1; then
    if grep -q "unexpected memory mapping" "$dir/probe.log"; then
        echo "skipped: ThreadSanitizer cannot run on this kernel ($(head -1 "$dir/probe.log"))"
        exit 77
    fi
    cat "$dir/probe.log"
    exit 1
fi
