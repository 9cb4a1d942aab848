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
# The model defaults to HIDDEN=2048 (TASKS=1000): a model whose cost per
# call is its matrix products (one unbatched row takes ~3 ms), which is what
# batching is for: a batch of rows turns each layer's one-row product into
# one matrix-matrix product that reads the weights once for all its rows.
# A small model (HIDDEN=256) is bound by the per-task cost around the model
# call (Go, the Python hop: ~100-250 us), which batching does not remove, so
# its ratio stays ~1.3-2.3x whatever the BLAS. The runtime needs an
# optimised BLAS behind Debian's libblas.so.3 (libopenblas0-pthread, which
# scripts/services.sh installs with python3-torch); with the reference BLAS
# no batch pays at any size. The script prints which BLAS the runtime loads.
# bench/README.md, "Inference", has the curve over HIDDEN.
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
PYTHON=${PYTHON:-/usr/bin/python3} DEVICES=${DEVICES:-cpu} HIDDEN=${HIDDEN:-2048} TASKS=${TASKS:-1000} \
	RUN_TIMEOUT=${RUN_TIMEOUT:-300s} "$ROOT/bench/inference-run.sh" "$BIN"
