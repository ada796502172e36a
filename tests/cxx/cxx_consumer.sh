#!/bin/sh
# Builds consumer.cpp with g++ and clang++ at every C++ standard from C++11
# on, and consumer.c at C11 and C17, warning-free (-Wall -Wextra -Werror),
# links each against the library and runs it.  Also checks that C99 and
# C++98 are refused with the header's own message; and compiles driver
# source written in C++ against the WDK subset (consumer_wdk.cpp).
#
# usage: cxx_consumer.sh SOURCE_DIR LIBRARY_DIR WORK_DIR
set -u
SRC=$1
LIBDIR=$2
WORK=$3
HERE=$SRC/tests/cxx
mkdir -p "$WORK"
FAILURES=0
BUILDS=0

fail() {
    echo "FAIL: $*" >&2
    FAILURES=$((FAILURES + 1))
}

# build COMPILER STANDARD SOURCE: compiles, links and runs one consumer.
build() {
    out="$WORK/consumer-$1-$2"
    if ! "$1" "-std=$2" -Wall -Wextra -Werror -I"$SRC/include" "$3" -o "$out" \
        -L"$LIBDIR" -lfastmutex -Wl,-rpath,"$LIBDIR" -pthread 2>"$out.err"; then
        fail "$1 -std=$2: $(head -c 600 "$out.err")"
        return
    fi
    if ! "$out" >"$out.out" 2>&1; then
        fail "$1 -std=$2: the consumer failed: $(cat "$out.out")"
        return
    fi
    BUILDS=$((BUILDS + 1))
    echo "$1 -std=$2: $(cat "$out.out")"
}

# refused COMPILER STANDARD LANGUAGE: the header must stop the build with
# its own message.
refused() {
    if echo '#include <fastmutex.h>' | "$1" "-std=$2" -x "$3" -I"$SRC/include" -fsyntax-only - \
        2>"$WORK/refused.err"; then
        fail "$1 -std=$2 accepted fastmutex.h"
    elif ! grep -q 'fastmutex.h needs C11 or later' "$WORK/refused.err"; then
        fail "$1 -std=$2: refused without the header's message: $(head -c 300 "$WORK/refused.err")"
    else
        echo "$1 -std=$2: refused, as it should be"
    fi
}

for std in c++11 c++14 c++17 c++20 c++23; do
    build g++ "$std" "$HERE/consumer.cpp"
done
# clang 14 calls C++23 c++2b.
for std in c++11 c++14 c++17 c++20 c++2b; do
    build clang++ "$std" "$HERE/consumer.cpp"
done
# Driver source in C++ against the WDK subset's headers (compiled only).
for cxx in g++ clang++; do
    for std in c++11 c++17 c++20; do
        if "$cxx" "-std=$std" -fshort-wchar -Wall -Wextra -Werror -Wno-multichar \
            -I"$SRC/include/fastmutex/wdk" -I"$SRC/include" -fsyntax-only "$HERE/consumer_wdk.cpp" \
            2>"$WORK/wdk.err"; then
            BUILDS=$((BUILDS + 1))
            echo "$cxx -std=$std: the WDK headers compile as C++"
        else
            fail "$cxx -std=$std: WDK headers: $(head -c 600 "$WORK/wdk.err")"
        fi
    done
done
for cc in gcc clang; do
    for std in c11 c17; do
        build "$cc" "$std" "$HERE/consumer.c"
    done
    refused "$cc" c99 c
done
refused g++ c++98 c++

echo "$BUILDS consumers built and run, $FAILURES failures"
[ "$FAILURES" -eq 0 ]
