#!/usr/bin/env bash
# wasm.sh: end-to-end throughput of wasm tasks run from the compiled-module
# cache, against the noop baseline in the same run, and the cold compile of
# a module, reported separately.
#
# It builds greyd and greyctl from this checkout and runs PAIRS times (default
# 3), alternating, each against a fresh single-node greyd (new data dir,
# free loopback ports, default configuration unless GREYD_CONFIG, started,
# waited for on /readyz, stopped with SIGTERM):
#
#   noop  greyctl bench --tasks TASKS --tenants 4 --kind noop
#   wasm  greyctl bench --tasks TASKS --tenants 4 \
#             --module examples/wasm/echo/echo.wasm --payload '{"input":"hello"}'
#
# The wasm run pushes the hand-written echo module (examples/wasm/echo: it
# copies stdin to stdout, no language runtime) for each tenant first; greyd
# compiles it at upload, so every task runs it from the compiled-module
# cache: a fresh sandboxed instance per task, "hello" on stdin, the result
# read from stdout. Its line carries module_push_ms, the first upload to a
# greyd that had never seen the module (cold compile + upload + store).
#
# Then the cold compile on its own: BenchmarkWasmCold (executor/wasm) runs,
# COLD_RUNS times each, the first task of a module no one has compiled
# (fetch, compile, cache, run) for the echo module (296 bytes) and the Go
# wordcount module (~2.6 MB).
#
# Every run's JSON line goes to stdout, prefixed with its name, then one
# summary line:
#
#   {"summary":true,"noop_tasks_per_second":<median>,"wasm_tasks_per_second":<median>,
#    "ratio":<wasm/noop medians>,"pair_ratios":[…],"module_push_ms":<median>,
#    "cold_echo_ms":…,"cold_wordcount_ms":…}
#
# Environment: TASKS (default 50000), PAIRS (3), CONCURRENCY (greyctl
# --concurrency, 4), COLD_RUNS (10), GREYD_CONFIG (a greyd YAML file for
# every greyd, e.g. one with `proofs: {enabled: false}`; default none: the
# default configuration, proofs on), KEEP=1 keeps the work dir (data dirs,
# greyd logs). Needs curl and the go tool (bench/lib.sh starts and stops
# the greyds). Progress goes to stderr.
set -euo pipefail

TASKS=${TASKS:-50000}
PAIRS=${PAIRS:-3}
CONCURRENCY=${CONCURRENCY:-4}
COLD_RUNS=${COLD_RUNS:-10}
CONFIG=${GREYD_CONFIG:-}
NAME=wasm
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE="$ROOT/examples/wasm/echo/echo.wasm"
[[ -f $MODULE ]] || die "$MODULE is missing"
[[ -z $CONFIG || -f $CONFIG ]] || die "GREYD_CONFIG=$CONFIG is not a file"

thr=(--tasks "$TASKS" --tenants 4 --concurrency "$CONCURRENCY")
noops=() wasms=() pushes=() pairs=()
for ((i = 1; i <= PAIRS; i++)); do
	run "noop-$i" "$CONFIG" "${thr[@]}" --kind noop
	run "wasm-$i" "$CONFIG" "${thr[@]}" --module "$MODULE" --payload '{"input":"hello"}'
	n=$(field "noop-$i" tasks_per_second)
	w=$(field "wasm-$i" tasks_per_second)
	noops+=("$n") wasms+=("$w") pairs+=("$(ratio "$w" "$n")")
	pushes+=("$(field "wasm-$i" module_push_ms)")
done

log "cold compile: go test -run '^\$' -bench WasmCold -benchtime ${COLD_RUNS}x ./executor/wasm/"
cold=$(cd "$ROOT" && go test -run '^$' -bench 'WasmCold' -benchtime "${COLD_RUNS}x" ./executor/wasm/) || die "BenchmarkWasmCold failed: $cold"
printf '%s\n' "$cold" | grep '^Benchmark' >&2
# cold_ms NAME: ns/op of BenchmarkWasmCold/NAME in ms.
cold_ms() {
	local v
	v=$(printf '%s\n' "$cold" | awk -v n="BenchmarkWasmCold/$1-" 'index($1, n) == 1 { for (i = 2; i < NF; i++) if ($(i + 1) == "ns/op") print $i }')
	[[ -n $v ]] || die "no ns/op for BenchmarkWasmCold/$1 in: $cold"
	awk -v v="$v" 'BEGIN { printf "%.3f", v / 1e6 }'
}

nm=$(median "${noops[@]}")
wm=$(median "${wasms[@]}")
ce=$(cold_ms echo)
cw=$(cold_ms wordcount)
pr=$(
	IFS=,
	echo "${pairs[*]}"
)
printf '{"summary":true,"noop_tasks_per_second":%s,"wasm_tasks_per_second":%s,"ratio":%s,"pair_ratios":[%s],"module_push_ms":%s,"cold_echo_ms":%s,"cold_wordcount_ms":%s}\n' \
	"$nm" "$wm" "$(ratio "$wm" "$nm")" "$pr" "$(median "${pushes[@]}")" "$ce" "$cw"
