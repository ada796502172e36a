#!/bin/sh
# Installs the Debian 12 packages fastmutex needs to build, test and
# benchmark, when any is missing.  Run as root (or with sudo available).
set -eu
packages="build-essential cmake pkg-config clang libclang-rt-14-dev libcmocka-dev
  libdw-dev libelf-dev zlib1g-dev elfutils gdb libgtest-dev procps libnsync-dev libck-dev libabsl-dev g++
  gnuplot-nox cargo rustc librust-parking-lot-dev spin python3 groff-base binutils
  util-linux valgrind libc6-dbg"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "fastmutex: installing$missing" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
