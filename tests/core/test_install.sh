#!/bin/sh
# Installs a built fastmutex into a temporary prefix and uses it as a
# downstream project would: a program built with `pkg-config --cflags --libs
# fastmutex`, and a CMake project using find_package(fastmutex) with the
# fastmutex::fastmutex (shared) and fastmutex::fastmutex_static targets.
# Each program must run and print "consumer ok".  Also checks that the man
# page fast_mutex.3 is installed and renders, and that the shared library
# exports only fast_mutex_* and the Windows names of <fastmutex/wdm.h> and
# of the WDK subset (include/fastmutex/wdk).
#
# Usage: test_install.sh BUILD_DIR SOURCE_DIR   (the build must be complete)
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/fastmutex-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix

fail() {
    echo "test_install: $*" >&2
    exit 1
}

# Runs a command quietly, showing its output only when it fails.
quiet() {
    if ! "$@" >"$work/log" 2>&1; then
        cat "$work/log" >&2
        fail "failed: $*"
    fi
}

quiet cmake --install "$build" --prefix "$prefix"

# The man page, where `man` looks for it, and free of groff warnings.
page=$prefix/share/man/man3/fast_mutex.3
[ -f "$page" ] || fail "man page not installed at $page"
if command -v groff >/dev/null 2>&1; then
    warnings=$(groff -ww -z -man "$page" 2>&1) || fail "groff failed on $page"
    [ -z "$warnings" ] || fail "groff warns about $page: $warnings"
fi

# The library files.
# The library, not the gdb extension installed under its path
# (share/gdb/auto-load/.../libfastmutex.so.X.Y.Z-gdb.py).
shared=$(find "$prefix" -name 'libfastmutex.so.*' ! -name '*-gdb.py' -type f | head -n 1)
[ -n "$shared" ] || fail "no libfastmutex.so.* installed under $prefix"
libdir=$(dirname "$shared")
[ -e "$libdir/libfastmutex.so" ] || fail "no libfastmutex.so development link in $libdir"
[ -f "$libdir/libfastmutex.a" ] || fail "no libfastmutex.a in $libdir"

# Exported symbols: the API prefix and the compat names, nothing internal.
if command -v nm >/dev/null 2>&1; then
    leaked=$(nm -D --defined-only "$shared" | awk '{ print $NF }' |
        grep -v -E '^(fast_mutex_|Ex|Ke|Zw|Ps|Io|Rtl|Ob|DbgPrint$)' || true)
    [ -z "$leaked" ] || fail "libfastmutex.so exports internal symbols: $leaked"
fi

# 1. pkg-config.  The .pc file must point into this prefix, wherever the
# build was configured to install.
pcfile=$(find "$prefix" -name fastmutex.pc | head -n 1)
[ -n "$pcfile" ] || fail "fastmutex.pc not installed"
PKG_CONFIG_PATH=$(dirname "$pcfile")
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs fastmutex) || fail "pkg-config does not know fastmutex"
includedir=$(pkg-config --variable=includedir fastmutex)
# Clean paths: compilers record -I paths in debug info, and fmx shows them.
[ "$includedir" = "$prefix/include" ] || fail "pkg-config includedir is $includedir, not $prefix/include"
case " $flags " in
*/../* | */./*) fail "pkg-config flags hold an unclean path: $flags" ;;
esac
[ -f "$includedir/fastmutex.h" ] || fail "pkg-config includedir $includedir has no fastmutex.h"
[ -f "$includedir/fastmutex/wdm.h" ] || fail "pkg-config includedir $includedir has no fastmutex/wdm.h"
# shellcheck disable=SC2086 # the flags are meant to be split
quiet cc -std=c17 -Wall -Wextra -Werror "$src/tests/core/consumer/consumer.c" $flags \
    -o "$work/consumer_pc"
out=$(LD_LIBRARY_PATH=$libdir "$work/consumer_pc") || fail "pkg-config consumer failed: $out"
[ "$out" = "consumer ok" ] || fail "pkg-config consumer printed: $out"
# It ran against the installed library, not one from elsewhere.
LD_LIBRARY_PATH=$libdir ldd "$work/consumer_pc" | grep -q "$libdir/libfastmutex.so" ||
    fail "pkg-config consumer does not load $libdir/libfastmutex.so"

# 2. CMake find_package().
quiet cmake -S "$src/tests/core/consumer" -B "$work/consumer-build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
found=$(sed -n 's/^fastmutex_DIR:[A-Z]*=//p' "$work/consumer-build/CMakeCache.txt")
case $found in
"$prefix"/*) ;;
*) fail "find_package found fastmutex in '$found', not under $prefix" ;;
esac
quiet cmake --build "$work/consumer-build"
for consumer in consumer_shared consumer_static; do
    out=$(LD_LIBRARY_PATH=$libdir "$work/consumer-build/$consumer") ||
        fail "$consumer failed: $out"
    [ "$out" = "consumer ok" ] || fail "$consumer printed: $out"
done

echo "test_install: ok ($prefix)"
