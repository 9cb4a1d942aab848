#!/usr/bin/env bash
# inference-gpu.sh: the inference benchmark on a GPU machine, CUDA and CPU in
# the same run, with NO Go tool and NO network:
#
#   bench/inference-gpu.sh DIR
#
# DIR holds greyd.xz and greyctl.xz (or greyd and greyctl) as
# bench/inference-gpu-prepare.sh builds them into .devbin/. python3 on PATH
# (or PYTHON) must import torch with CUDA (numpy for the runtime's tensors);
# tensorflow is not needed. It runs bench/inference-run.sh with
# DEVICES="cuda cpu": for each device a fresh greyd whose Python runtime
# places models there, the same four runs (noop, mlp batched,
# mlp-unbatched, trivial), one table, and a summary line with the
# batched/unbatched ratio per device and cuda_over_cpu_batched. Defaults are
# sized to finish well under 5 minutes on a 16-core machine (TASKS=3000,
# HIDDEN=1024, THREADS=8; override in the environment).
set -euo pipefail

DIR=${1:?usage: inference-gpu.sh DIR (greyd.xz and greyctl.xz from bench/inference-gpu-prepare.sh)}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(mktemp -d "${TMPDIR:-/tmp}/grey-inference-gpu.XXXXXX")
trap 'rm -rf "$BIN"' EXIT
for cmd in greyd greyctl; do
	if [[ -f $DIR/$cmd.xz ]]; then
		xz -dc "$DIR/$cmd.xz" >"$BIN/$cmd"
	elif [[ -f $DIR/$cmd ]]; then
		cp "$DIR/$cmd" "$BIN/$cmd"
	else
		echo "inference-gpu: no $cmd.xz or $cmd in $DIR" >&2
		exit 1
	fi
	chmod +x "$BIN/$cmd"
done
PYTHON=${PYTHON:-$(command -v python3)}
"$PYTHON" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", file=sys.stderr)'
DEVICES=${DEVICES:-cuda cpu}
if [[ $DEVICES == *cuda* ]] && ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
	echo "inference-gpu: $PYTHON sees no CUDA device" >&2
	exit 1
fi
PYTHON=$PYTHON DEVICES=$DEVICES TASKS=${TASKS:-3000} HIDDEN=${HIDDEN:-1024} THREADS=${THREADS:-8} \
	"$ROOT/bench/inference-run.sh" "$BIN"
