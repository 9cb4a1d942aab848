#!/usr/bin/env bash
# inference-gpu-prepare.sh: build what bench/inference-gpu.sh needs on a GPU
# machine without Go or network: greyd and greyctl, statically linked
# (CGO_ENABLED=0), stripped (-ldflags='-s -w'), xz-compressed, into .devbin/
# (git-ignored) of this checkout. Then carry .devbin to that machine and run
#
#   bench/inference-gpu.sh .devbin
#
# GOOS/GOARCH default to linux/amd64 (override for another target).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/.devbin"
mkdir -p "$OUT"
command -v xz >/dev/null || { echo "inference-gpu-prepare: xz is required" >&2; exit 1; }
for cmd in greyd greyctl; do
	(cd "$ROOT" && CGO_ENABLED=0 GOOS=${GOOS:-linux} GOARCH=${GOARCH:-amd64} go build -trimpath -ldflags='-s -w' -o "$OUT/$cmd" "./cmd/$cmd")
	rm -f "$OUT/$cmd.xz"
	xz -T0 -9 "$OUT/$cmd"
done
ls -l "$OUT" >&2
