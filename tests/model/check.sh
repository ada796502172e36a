#!/bin/sh
# Model-checks tests/model/fastmutex.pml with spin: every interleaving of
# three threads (one or two of them timed) must keep mutual exclusion, the
# WAITERS/queue invariant, and end with nobody asleep.
set -eu
model="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for timed in one two unrecorded; do
  if [ "$timed" = two ]; then
    sed 's/run thread(2, false, false)/run thread(2, true, false)/' "$model" > model.pml
  elif [ "$timed" = unrecorded ]; then
    # thread 1 has no registry record: it sleeps on the lock word
    sed 's/run thread(1, false, false)/run thread(1, false, true)/' "$model" > model.pml
  else
    cp "$model" model.pml
  fi
  spin -a model.pml >/dev/null
  cc -O2 -DSAFETY -o pan pan.c
  ./pan -m200000 > result.txt
  grep -q "errors: 0" result.txt || { cat result.txt; spin -t -p model.pml | tail -40; exit 1; }
  echo "$timed timed thread(s): $(grep 'states, stored' result.txt | tr -s ' '), no errors"
done
