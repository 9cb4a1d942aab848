#!/usr/bin/env bash
# Runs every Go fuzz target for a short time (default 10s each): the seed
# corpora under */testdata/fuzz always run as part of `go test`; this adds
# fresh inputs. Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
for f in $(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' .); do
  pkg="./$(dirname "${f#./}")"
  # A package of a nested module (deploy/) is fuzzed from its module's root.
  mod=.
  for d in deploy; do
    case $pkg in ./$d/*) mod=$d pkg="./${pkg#./$d/}" ;; esac
  done
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$f" | sed -E 's/func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "== fuzz $mod/$pkg $target ($t)"
    # Go's fuzz coordinator reports "context deadline exceeded" when a
    # worker is still inside an input as -fuzztime ends (a loaded machine);
    # that is not a finding (no failing input is written), so such a run
    # is tried once more. A real failure writes testdata/fuzz and fails.
    if ! out=$(cd "$mod" && go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" "$pkg" 2>&1); then
      echo "$out"
      if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
        echo "== fuzz $mod/$pkg $target: the fuzzer timed out at its deadline, not a finding; once more"
        (cd "$mod" && go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" "$pkg")
      else
        exit 1
      fi
    else
      echo "$out" | tail -n 3
    fi
  done
done
