#!/bin/sh
# Installs fastmutex into a temporary prefix and builds the example driver
# against it as a user would, with `pkg-config --cflags --libs fastmutex-wdk`
# and with CMake's fastmutex::wdk target; the installed fmx runs each build,
# which must move every file whole.
#
# usage: install_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/fastmutex-wdk-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix

fail() {
    echo "install_test: $*" >&2
    exit 1
}

quiet() {
    if ! "$@" >"$work/log" 2>&1; then
        cat "$work/log" >&2
        fail "failed: $*"
    fi
}

# run_driver NAME SO: the installed fmx loads SO; all files must arrive.
run_driver() {
    mkdir "$work/root-$1"
    LD_LIBRARY_PATH=$libdir "$prefix/bin/fmx" driver "$2" --root "$work/root-$1" >"$work/out-$1" 2>&1 ||
        fail "$1: fmx driver failed: $(cat "$work/out-$1")"
    grep -q "FileMoveThread: moved 200, not found 0" "$work/out-$1" ||
        fail "$1: not every file moved: $(cat "$work/out-$1")"
    n=$(find "$work/root-$1/C/FastMutexDemo/Destination" -name 'NewFile_*.txt' | wc -l)
    [ "$n" -eq 200 ] || fail "$1: $n files in Destination, expected 200"
    echo "$1: the driver built against the installed fastmutex moved all 200 files"
}

quiet cmake --install "$build" --prefix "$prefix"
for h in ntddk.h ntifs.h wdm.h ntstrsafe.h; do
    [ -f "$prefix/include/fastmutex/wdk/$h" ] || fail "$h not installed"
done
shared=$(find "$prefix" -name 'libfastmutex.so.*' ! -name '*.py' -type f | head -n 1)
libdir=$(dirname "$shared")

# 1. pkg-config fastmutex-wdk.
PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs fastmutex-wdk) || fail "pkg-config does not know fastmutex-wdk"
case " $flags " in
*" -fshort-wchar "*) ;;
*) fail "pkg-config fastmutex-wdk gives no -fshort-wchar: $flags" ;;
esac
# shellcheck disable=SC2086 # the flags are meant to be split
quiet cc -std=c11 -shared -fPIC -Wall -Wextra -Werror -DUSE_FAST_MUTEX=1 \
    "$src/examples/driver/filemove.c" $flags -o "$work/filemove_pc.so"
run_driver pkg-config "$work/filemove_pc.so"

# 2. CMake find_package(fastmutex) and fastmutex::wdk.
quiet cmake -S "$src/tests/wdk/consumer" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DFILEMOVE_SOURCE="$src/examples/driver/filemove.c"
quiet cmake --build "$work/consumer-build"
run_driver cmake "$work/consumer-build/filemove.so"
