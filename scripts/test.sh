#!/bin/sh
# Builds everything and runs every test; ctest's summary is the last output.
set -eu
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure -j2 --timeout 300
