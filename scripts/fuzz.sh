#!/usr/bin/env bash
# Runs every Go fuzz target for a short time (default 10s each): the seed
# corpora under */testdata/fuzz always run as part of `go test`; this adds
# fresh inputs. Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
for f in $(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' .); do
  pkg="./$(dirname "${f#./}")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$f" | sed -E 's/func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "== fuzz $pkg $target ($t)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" "$pkg"
  done
done
