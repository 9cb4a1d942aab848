#!/usr/bin/env bash
# inference.sh: the inference benchmark on this machine's CPU: batched vs
# unbatched throughput of a TorchScript MLP in one run (target >= 5x), the
# model's cold load time and cache hit rate from greyd's metrics, and the
# Python hop per task (a trivial model vs noop). It builds greyd and greyctl
# from this checkout, then runs bench/inference-run.sh (see there for what
# runs and what it prints) with PYTHON=/usr/bin/python3 (Debian's
# python3-torch) and DEVICES=cpu. bench/inference-gpu.sh is the same on a GPU
# machine with prebuilt binaries; only the device list differs.
#
# Environment: as bench/inference-run.sh (TASKS, HIDDEN, BATCH, DELAY,
# CONCURRENCY, THREADS, KEEP); PYTHON defaults to /usr/bin/python3 here.
# Needs the go tool and curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(mktemp -d "${TMPDIR:-/tmp}/grey-inference-bin.XXXXXX")
trap 'rm -rf "$BIN"' EXIT
echo "inference: building greyd and greyctl in $BIN" >&2
(cd "$ROOT" && go build -o "$BIN/greyd" ./cmd/greyd && go build -o "$BIN/greyctl" ./cmd/greyctl)
PYTHON=${PYTHON:-/usr/bin/python3} DEVICES=${DEVICES:-cpu} "$ROOT/bench/inference-run.sh" "$BIN"
