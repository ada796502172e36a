#!/bin/sh
# Checks the command-output examples of README.md and doc/ against real
# runs of a build, or with --update rewrites them; see scripts/examples.py.
#   scripts/examples.sh [--update] [--build DIR]
exec python3 "$(dirname "$0")/examples.py" "$@"
