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
# The model defaults to HIDDEN=4096 here (the middle layer's weights are
# 64 MiB, past this machine's 32 MiB L3, so a one-row run is bound by
# reading them and a batch reads them once for all its rows) and TASKS=1000
# (one unbatched row takes 5-17 ms). BLAS=/path/to/libopenblas.so.0 runs
# the runtime on OpenBLAS instead of Debian's reference BLAS, with which no
# batch pays (bench/README.md, "Inference", has the curve over HIDDEN and
# both libraries, and how to get OpenBLAS without touching the system).
#
# Environment: as bench/inference-run.sh (TASKS, HIDDEN, BATCH, DELAY,
# CONCURRENCY, THREADS, BLAS, KEEP); PYTHON defaults to /usr/bin/python3 here.
# Needs the go tool and curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(mktemp -d "${TMPDIR:-/tmp}/grey-inference-bin.XXXXXX")
trap 'rm -rf "$BIN"' EXIT
echo "inference: building greyd and greyctl in $BIN" >&2
(cd "$ROOT" && go build -o "$BIN/greyd" ./cmd/greyd && go build -o "$BIN/greyctl" ./cmd/greyctl)
PYTHON=${PYTHON:-/usr/bin/python3} DEVICES=${DEVICES:-cpu} HIDDEN=${HIDDEN:-4096} TASKS=${TASKS:-1000} \
	RUN_TIMEOUT=${RUN_TIMEOUT:-300s} "$ROOT/bench/inference-run.sh" "$BIN"
