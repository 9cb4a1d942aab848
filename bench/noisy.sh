#!/usr/bin/env bash
# noisy.sh: does fair share protect a quiet tenant from a noisy one, what does
# it cost the noisy one, and what does quota enforcement cost in throughput?
#
# It builds greyd and greyctl from this checkout and runs, each against a
# fresh single-node greyd (new data dir, free loopback ports, started, waited
# for on /readyz, stopped with SIGTERM):
#
#   1. fair    default config (fair share on):
#              greyctl bench --scenario noisy-neighbor
#              (noisy-a floods A_TASKS noop tasks in batches of 1000 while
#              quiet-b submits B_TASKS, one every 10 ms)
#   2. alone   the same with --b-tasks 0 (noisy-a alone)
#   3. fifo    config `tasks: {fair_share: false}`, noisy-neighbor as in 1
#   4. quotas  greyctl bench --tasks TASKS --tenants 4 --kind noop against the
#              default config (quotas enforced) ...
#   5. noquota ... and against `tenants: {enforce_quotas: false}`
#
# Every run's JSON line goes to stdout, prefixed with its name, and a final
# summary line with the ratios:
#
#   {"summary":true,"b_p99_fifo_over_fair":…,"a_seconds_fair_over_alone":…,
#    "throughput_enforce_over_no_enforce":…}
#
# b_p99_fifo_over_fair > 1 means fair share shortens the quiet tenant's tail
# latency; a_seconds_fair_over_alone ≈ 1 means sharing costs the noisy tenant
# little; throughput_enforce_over_no_enforce ≈ 1 means quota checks are cheap.
#
# Environment: A_TASKS (default 20000), B_TASKS (100), TASKS (50000),
# CONCURRENCY (greyctl --concurrency, default 4), KEEP=1 keeps the work dir
# (data dirs, configs, greyd logs). Needs curl. Progress goes to stderr.
set -euo pipefail

A_TASKS=${A_TASKS:-20000}
B_TASKS=${B_TASKS:-100}
TASKS=${TASKS:-50000}
CONCURRENCY=${CONCURRENCY:-4}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grey-noisy.XXXXXX")
PID=""
LOG=""

log() { printf 'noisy: %s\n' "$*" >&2; }
die() {
	log "$*"
	[[ -n $LOG && -f $LOG ]] && { log "last lines of $LOG:"; tail -n 20 "$LOG" >&2; }
	exit 1
}
cleanup() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

command -v curl >/dev/null || die "curl is required"

log "building greyd and greyctl in $WORK"
(
	cd "$ROOT"
	go build -o "$WORK/greyd" ./cmd/greyd
	go build -o "$WORK/greyctl" ./cmd/greyctl
)

# free_ports N: N loopback TCP ports that were free a moment ago.
free_ports() {
	local n=$1 ports=() p
	while ((${#ports[@]} < n)); do
		p=$((20000 + RANDOM % 40000))
		# bash's /dev/tcp connect fails when nothing listens there.
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${ports[*]} " != *" $p "* ]]; then
			ports+=("$p")
		fi
	done
	echo "${ports[@]}"
}

printf 'tasks:\n  fair_share: false\n' >"$WORK/fifo.yaml"
printf 'tenants:\n  enforce_quotas: false\n' >"$WORK/noquota.yaml"

# start_greyd NAME [CONFIG]: a fresh greyd; sets PID, URL and LOG.
start_greyd() {
	local name=$1 cfg=${2:-} http raft metrics args
	read -r http raft metrics <<<"$(free_ports 3)"
	URL="http://127.0.0.1:$http"
	LOG="$WORK/$name.log"
	args=(--data-dir "$WORK/$name.data" --http-addr "127.0.0.1:$http" --raft-addr "127.0.0.1:$raft"
		--metrics-addr "127.0.0.1:$metrics" --log-level warn)
	[[ -n $cfg ]] && args+=(--config "$cfg")
	"$WORK/greyd" "${args[@]}" >"$LOG" 2>&1 &
	PID=$!
	local i
	for ((i = 0; i < 600; i++)); do
		curl -fsS -o /dev/null --max-time 1 "$URL/readyz" 2>/dev/null && return 0
		kill -0 "$PID" 2>/dev/null || die "greyd ($name) exited while starting"
		sleep 0.05
	done
	die "greyd ($name) not ready after 30s"
}

stop_greyd() {
	local rc=0
	kill -TERM "$PID"
	wait "$PID" || rc=$?
	PID=""
	[[ $rc == 0 ]] || die "greyd exited with $rc after SIGTERM"
}

# run NAME CONFIG GREYCTL-BENCH-ARGS...: one fresh greyd, one bench; the
# bench's JSON line is printed as {"run":NAME,...} and kept in $WORK/NAME.json.
run() {
	local name=$1 cfg=$2 line
	shift 2
	log "$name: greyctl bench $*"
	start_greyd "$name" "$cfg"
	if ! line=$("$WORK/greyctl" --server "$URL" bench -q "$@"); then
		die "$name: greyctl bench failed: $line"
	fi
	stop_greyd
	[[ $line == \{* ]] || die "$name: unexpected output $line"
	echo "$line" >"$WORK/$name.json"
	echo "{\"run\":\"$name\",${line#\{}"
}

# field NAME KEY: a number from a run's JSON line.
field() {
	local v
	v=$(grep -o "\"$2\":[-0-9.eE+]*" "$WORK/$1.json" | head -n 1 | cut -d: -f2)
	[[ -n $v ]] || die "$1: no number $2 in $(cat "$WORK/$1.json")"
	echo "$v"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "null"; else printf "%.3f", a / b }'; }

noisy=(--scenario noisy-neighbor --a-tasks "$A_TASKS" --concurrency "$CONCURRENCY")
run fair "" "${noisy[@]}" --b-tasks "$B_TASKS"
run alone "" "${noisy[@]}" --b-tasks 0
run fifo "$WORK/fifo.yaml" "${noisy[@]}" --b-tasks "$B_TASKS"
thr=(--tasks "$TASKS" --tenants 4 --kind noop --concurrency "$CONCURRENCY")
run quotas "" "${thr[@]}"
run noquota "$WORK/noquota.yaml" "${thr[@]}"

printf '{"summary":true,"b_p99_fifo_over_fair":%s,"a_seconds_fair_over_alone":%s,"throughput_enforce_over_no_enforce":%s}\n' \
	"$(ratio "$(field fifo b_p99_ms)" "$(field fair b_p99_ms)")" \
	"$(ratio "$(field fair a_seconds)" "$(field alone a_seconds)")" \
	"$(ratio "$(field quotas tasks_per_second)" "$(field noquota tasks_per_second)")"
