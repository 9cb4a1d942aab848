#!/usr/bin/env bash
# inference-run.sh: the inference benchmark proper, on prebuilt binaries and
# no Go tool: bench/inference.sh (this machine, CPU) and
# bench/inference-gpu.sh (a GPU machine, CUDA and CPU) both call it.
#
#   bench/inference-run.sh BINDIR
#
# BINDIR holds greyd and greyctl. For each device of DEVICES it starts a
# fresh single-node greyd (new data dir, free loopback ports) whose
# ai.runtimes is one Python runtime on $PYTHON with that device, builds
# (once, with $PYTHON) a TorchScript MLP (16 -> HIDDEN -> HIDDEN -> 8, ReLU)
# and a trivial model (identity), pushes the MLP twice for tenant bench-1 --
# "mlp" (batched: ai.batching max_batch_size BATCH, max_queue_delay DELAY)
# and "mlp-unbatched" (ai.batching.models.mlp-unbatched.max_batch_size 1) --
# and the trivial model as "trivial" (unbatched), then runs:
#
#   noop           greyctl bench --kind noop             (the Go baseline)
#   mlp            greyctl bench --model mlp             (cold load + batched)
#   mlp-unbatched  greyctl bench --model mlp-unbatched
#   trivial        greyctl bench --model trivial         (the Python hop)
#
# each with --tasks TASKS --input-shape 1,16 --server-metrics, after one
# warm-up task per model (the mlp warm-up's model load is the cold load
# reported), and prints
# every run's JSON line (prefixed with device and run), then one table and a
# summary JSON line:
#
#   batched/unbatched ratio per device (target >= 5 on CPU), the cold load
#   of the MLP (model_load_ms of its warm-up) and the cache hit rate of the
#   timed mlp run, the Python hop per task: 1e6 x (1/trivial - 1/noop) tasks/s
#   (the serial cost a task adds in the runtime pipeline at saturation), and
#   with two devices the ratio of their batched throughputs.
#
# The model, and why: batching pays where one row's cost is dominated by
# reading the weights. A one-row Linear is a matrix-vector product (GEMV),
# memory-bound once the weights pass the last-level cache; a batch of rows
# turns it into a matrix-matrix product (GEMM) that reads each weight once
# for all rows. HIDDEN sets the weights' size (HIDDEN^2 x 4 bytes for the
# middle layer: 4 MiB at 1024, 16 MiB at 2048, 64 MiB at 4096); compare it
# with `lscpu`'s L3. The BLAS library torch multiplies with matters as much:
# Debian's python3-torch links libblas.so.3: the reference BLAS (libblas3)
# unless libopenblas0-pthread is installed (scripts/services.sh installs it
# with python3-torch; update-alternatives then points libblas.so.3 at
# OpenBLAS). Under the reference BLAS a GEMM row costs about as much as a
# GEMV row and batching cannot pay. BLAS=/path/to/libopenblas.so.0 preloads
# a library into the runtime process instead (LD_PRELOAD, with
# OPENBLAS_NUM_THREADS set to the runtime's threads), for both the batched
# and the unbatched run alike. The script prints which it used.
#
# Environment: PYTHON (default python3 on PATH; needs torch), DEVICES
# (default "cpu"; e.g. "cuda cpu"), TASKS (2000), HIDDEN (2048), BATCH (32),
# DELAY (2ms), CONCURRENCY (greyctl --concurrency, 4), RUN_TIMEOUT (greyctl
# --timeout of each run, 120s), THREADS (torch
# intra-op threads of the runtime, default: the runtime's), RUNS (the timed
# runs, default "noop mlp mlp-unbatched trivial"; also trivial-binary: the
# trivial model's requests in the binary form, uploaded once and submitted
# by payload_ref, greyctl bench --payload-binary), TRIVIAL_SHAPE (the
# trivial runs' input shape, default 1,16; e.g. 1,2048 to compare JSON and
# binary bodies; with SUBMIT_BATCH=100, the tasks per submit request, default
# 500, so that a batch of JSON bodies stays under http.max_body_bytes), KEEP=1 keeps the work dir. Needs curl. Progress goes to stderr.
set -euo pipefail

BIN=${1:?usage: inference-run.sh BINDIR}
BIN=$(cd "$BIN" && pwd)
PYTHON=${PYTHON:-$(command -v python3)}
DEVICES=${DEVICES:-cpu}
TASKS=${TASKS:-2000}
HIDDEN=${HIDDEN:-2048}
BATCH=${BATCH:-32}
DELAY=${DELAY:-2ms}
CONCURRENCY=${CONCURRENCY:-4}
THREADS=${THREADS:-}
BLAS=${BLAS:-}
RUNS=${RUNS:-noop mlp mlp-unbatched trivial}
TRIVIAL_SHAPE=${TRIVIAL_SHAPE:-1,16}
SUBMIT_BATCH=${SUBMIT_BATCH:-500}
GREYD_ENV=()
NAME=inference
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grey-$NAME.XXXXXX")
PID=""
LOG=""

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() {
	log "$*"
	[[ -n $LOG && -f $LOG ]] && { log "last lines of $LOG:"; tail -n 30 "$LOG" >&2; }
	exit 1
}
cleanup() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

command -v curl >/dev/null || die "curl is required"
[[ -x $BIN/greyd && -x $BIN/greyctl ]] || die "$BIN must hold greyd and greyctl"
[[ -n $PYTHON && -x $PYTHON ]] || die "PYTHON=$PYTHON is not an interpreter"
PYTHON=$(command -v "$PYTHON")
"$PYTHON" -c 'import torch' 2>/dev/null || die "$PYTHON cannot import torch"
if [[ -n $BLAS ]]; then
	[[ -f $BLAS ]] || die "BLAS=$BLAS is not a file"
	GREYD_ENV=(LD_PRELOAD="$BLAS" OPENBLAS_NUM_THREADS="${THREADS:-1}") # greyd passes its environment to the runtime
	BLAS_USED="preloaded $BLAS"
else
	# What libblas.so.3 is in the runtime's process: the same look as the
	# runtime's info reply (grey_runtime/blas.py): the mapped libraries, and
	# OpenBLAS's own config where it answers. torch's BLAS_INFO says
	# "generic" for whatever libblas.so.3 points to.
	BLAS_USED="torch's own: $(OPENBLAS_NUM_THREADS=${THREADS:-1} "$PYTHON" -c '
import ctypes, os, re, torch
libs = []
for line in open("/proc/self/maps"):
    f = line.split()
    if len(f) >= 6 and re.search("blas", os.path.basename(f[5])) and f[5] not in libs:
        libs.append(f[5])
out = "reference or unknown: " + ", ".join(os.path.realpath(p) for p in libs)
for p in sorted(libs, key=lambda p: "openblas" not in p):
    try:
        fn = ctypes.CDLL(p).openblas_get_config
    except (OSError, AttributeError):
        continue
    fn.restype = ctypes.c_char_p
    out = fn().decode() + " (" + os.path.realpath(p) + ")"
    break
print(out)')"
fi
log "BLAS: $BLAS_USED"

free_ports() {
	local n=$1 ports=() p
	while ((${#ports[@]} < n)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${ports[*]} " != *" $p "* ]]; then
			ports+=("$p")
		fi
	done
	echo "${ports[@]}"
}

start_greyd() {
	local name=$1 cfg=$2 http raft metrics try i
	LOG="$WORK/$name.log"
	for try in 1 2 3; do
		read -r http raft metrics <<<"$(free_ports 3)"
		URL="http://127.0.0.1:$http"
		METRICS="http://127.0.0.1:$metrics/metrics"
		env "${GREYD_ENV[@]}" "$BIN/greyd" --data-dir "$WORK/$name.data" --http-addr "127.0.0.1:$http" --raft-addr "127.0.0.1:$raft" \
			--metrics-addr "127.0.0.1:$metrics" --log-level warn --config "$cfg" >>"$LOG" 2>&1 &
		PID=$!
		for ((i = 0; i < 1200; i++)); do
			curl -fsS -o /dev/null --max-time 1 "$URL/readyz" 2>/dev/null && return 0
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -0 "$PID" 2>/dev/null && die "greyd ($name) not ready after 60s"
		wait "$PID" 2>/dev/null || true
		PID=""
		grep -q "address already in use" "$LOG" || die "greyd ($name) exited while starting"
		rm -rf "$WORK/$name.data"
	done
	die "greyd ($name) could not bind free ports"
}

stop_greyd() {
	local rc=0
	kill -TERM "$PID"
	wait "$PID" || rc=$?
	PID=""
	[[ $rc == 0 ]] || die "greyd exited with $rc after SIGTERM"
}

ctl() { "$BIN/greyctl" --server "$URL" --tenant bench-1 "$@"; }

# jget FILE KEY[.KEY]: a value of a JSON line ("null" when absent).
jget() {
	"$PYTHON" -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v=v.get(k) if isinstance(v,dict) else None
print("null" if v is None else v)' "$1" "$2"
}

log "building the models with $PYTHON"
# torch.jit.script reads the classes' source: write it to a file first.
cat >"$WORK/models.py" <<'PY'
import sys, torch
work, hidden = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(16, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 8))
    def forward(self, x):
        return self.net(x)
class Trivial(torch.nn.Module):
    def forward(self, x):
        return x
torch.jit.save(torch.jit.script(MLP().eval()), work + "/mlp.pt")
torch.jit.save(torch.jit.script(Trivial().eval()), work + "/trivial.pt")
print(torch.__version__, torch.cuda.is_available(), file=sys.stderr)
PY
"$PYTHON" "$WORK/models.py" "$WORK" "$HIDDEN" || die "building the models failed"

summary=()
table=()
declare -A tps=()
for dev in $DEVICES; do
	cfg="$WORK/greyd-$dev.yaml"
	q="device=$dev"
	[[ -n $THREADS ]] && q="$q&threads=$THREADS"
	# worker.labels repeats the label the runtime's own report adds
	# (grey.ai/pytorch=true), so the run does not depend on that wiring.
	cat >"$cfg" <<YAML
worker:
  labels: {grey.ai/pytorch: "true"}
ai:
  runtimes:
    - name: torch-$dev
      url: "python://$PYTHON?$q"
      frameworks: [pytorch]
  concurrency: $((BATCH * 4 > 64 ? BATCH * 4 : 64))
  batching:
    max_batch_size: $BATCH
    max_queue_delay: $DELAY
    models:
      mlp-unbatched: {max_batch_size: 1}
      trivial: {max_batch_size: 1}
YAML
	log "$dev: starting greyd"
	start_greyd "$dev" "$cfg"
	for m in mlp mlp-unbatched; do
		ctl model push --name "$m" --version 1 --framework pytorch "$WORK/mlp.pt" >/dev/null || die "push $m failed"
	done
	ctl model push --name trivial --version 1 --framework pytorch "$WORK/trivial.pt" >/dev/null || die "push trivial failed"
	# Warm-ups, one task each: trivial first (the runtime process's own
	# start-up and torch import land there), then mlp, whose model load is
	# the cold load reported, then mlp-unbatched (same bytes: a cache hit).
	for run in trivial mlp mlp-unbatched; do
		line=$(ctl bench -q --server-metrics "$METRICS" --tasks 1 --model "$run" --input-shape 1,16 --timeout "${RUN_TIMEOUT:-120s}") ||
			die "$dev/warm-up $run failed: $line"
		echo "$line" >"$WORK/$dev-warm-$run.json"
		echo "{\"device\":\"$dev\",\"run\":\"warm-up-$run\",${line#\{}"
	done
	for run in $RUNS; do
		args=(--tasks "$TASKS" --concurrency "$CONCURRENCY" --timeout "${RUN_TIMEOUT:-120s}" --batch "$SUBMIT_BATCH")
		case $run in
		noop) args+=(--kind noop) ;;
		trivial) args+=(--model trivial --input-shape "$TRIVIAL_SHAPE") ;;
		trivial-binary) args+=(--model trivial --input-shape "$TRIVIAL_SHAPE" --payload-binary) ;;
		mlp | mlp-unbatched) args+=(--model "$run" --input-shape 1,16) ;;
		*) die "RUNS: unknown run $run (noop, mlp, mlp-unbatched, trivial, trivial-binary)" ;;
		esac
		log "$dev/$run: greyctl bench ${args[*]}"
		line=$(ctl bench -q --server-metrics "$METRICS" "${args[@]}") || die "$dev/$run: greyctl bench failed: $line"
		[[ $line == \{* ]] || die "$dev/$run: unexpected output $line"
		echo "$line" >"$WORK/$dev-$run.json"
		echo "{\"device\":\"$dev\",\"run\":\"$run\",${line#\{}"
		f="$WORK/$dev-$run.json"
		tps[$dev-$run]=$(jget "$f" tasks_per_second)
		table+=("$(printf '%-5s %-14s %10s %9s %9s %7s %9s %10s %8s' "$dev" "$run" "${tps[$dev-$run]}" "$(jget "$f" p50_ms)" "$(jget "$f" p99_ms)" \
			"$(jget "$f" inference.mean_batch_size)" "$(jget "$f" inference.cache_hit_rate)" "$(jget "$f" inference.model_load_ms)" "$(jget "$f" server_cpu_us_per_task)")")
	done
	stop_greyd
	for r in noop mlp mlp-unbatched trivial trivial-binary; do tps[$dev-$r]=${tps[$dev-$r]:-0}; done
	[[ -f $WORK/$dev-mlp.json ]] || echo '{}' >"$WORK/$dev-mlp.json"
	ratio=$(awk -v a="${tps[$dev-mlp]}" -v b="${tps[$dev-mlp-unbatched]}" 'BEGIN { if (b == 0) print "null"; else printf "%.2f", a / b }')
	hop=$(awk -v t="${tps[$dev-trivial]}" -v n="${tps[$dev-noop]}" 'BEGIN { if (t == 0 || n == 0) print "null"; else printf "%.1f", 1e6 / t - 1e6 / n }')
	summary+=("\"${dev}_batched_over_unbatched\":$ratio" "\"${dev}_python_hop_us_per_task\":$hop"
		"\"${dev}_cold_load_ms\":$(jget "$WORK/$dev-warm-mlp.json" inference.model_load_ms)"
		"\"${dev}_cache_hit_rate\":$(jget "$WORK/$dev-mlp.json" inference.cache_hit_rate)")
	if [[ " $RUNS " == *" trivial-binary "* && " $RUNS " == *" trivial "* ]]; then
		summary+=("\"${dev}_binary_over_json\":$(awk -v a="${tps[$dev-trivial-binary]}" -v b="${tps[$dev-trivial]}" 'BEGIN { if (b == 0) print "null"; else printf "%.2f", a / b }')")
	fi
done

{
	echo
	printf '%-5s %-14s %10s %9s %9s %7s %9s %10s %8s\n' DEV RUN TASKS/S P50_MS P99_MS BATCH CACHE_HIT LOAD_MS CPU_US
	printf '%s\n' "${table[@]}"
	echo
	for dev in $DEVICES; do
		printf '%s: batched/unbatched %s x; Python hop %s us/task\n' "$dev" \
			"$(awk -v a="${tps[$dev-mlp]}" -v b="${tps[$dev-mlp-unbatched]}" 'BEGIN { printf "%.2f", (b == 0) ? 0 : a / b }')" \
			"$(awk -v t="${tps[$dev-trivial]}" -v n="${tps[$dev-noop]}" 'BEGIN { if (t == 0 || n == 0) print "?"; else printf "%.1f", 1e6 / t - 1e6 / n }')"
	done
}
set -- $DEVICES
if (($# >= 2)); then
	summary+=("\"$1_over_$2_batched\":$(awk -v a="${tps[$1-mlp]}" -v b="${tps[$2-mlp]}" 'BEGIN { if (b == 0) print "null"; else printf "%.2f", a / b }')")
fi
(IFS=,; echo "{\"summary\":true,\"tasks\":$TASKS,\"hidden\":$HIDDEN,\"max_batch_size\":$BATCH,\"blas\":\"${BLAS_USED//\"/}\",${summary[*]}}")
