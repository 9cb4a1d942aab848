#!/usr/bin/env bash
# cluster.sh: throughput of a 3-server cluster against a single node, in
# one run on the same machine.
#
# It builds greyd and greyctl from this checkout, then
#
#   1. starts a single-node greyd (default configuration: one Raft voter,
#      in-process workers) on 127.0.0.1 and free ports, and runs
#        greyctl bench --tasks $TASKS --tenants $TENANTS --kind $KIND
#      against it; stops it;
#   2. starts a 3-server cluster on 127.0.0.11-13 (default configuration:
#      in-process workers on every server, default Raft timeouts; n1
#      bootstraps, n2 and n3 join), waits until all are ready and members,
#      and runs the same greyctl bench with --server listing all three.
#
# Each greyd gets a fresh data dir. It prints the two bench JSON lines,
# each with a "setup" field added, and then
#
#   {"ratio":…,"single_tasks_per_second":…,"cluster_tasks_per_second":…}
#
# where ratio = cluster / single tasks_per_second (target >= 0.6). On one
# machine the cluster's three servers share its cores (and disk) with
# each other and with greyctl, so the ratio mostly measures replication
# overhead, not scaling.
#
# Environment: TASKS (default 100000), TENANTS (4), KIND (noop),
# BENCH_FLAGS (extra greyctl bench flags, e.g. "--batch 500 --concurrency 8"),
# KEEP=1 keeps the work dir (logs). Progress goes to stderr; only the JSON
# lines go to stdout.
set -euo pipefail

TASKS=${TASKS:-100000}
TENANTS=${TENANTS:-4}
KIND=${KIND:-noop}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grey-cluster.XXXXXX")
PIDS=()

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
	log "$*"
	for f in "$WORK"/*.log; do
		[[ -f $f ]] && { log "last lines of $f:"; tail -n 15 "$f" >&2; }
	done
	exit 1
}
stop_all() {
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	PIDS=()
}
cleanup() {
	stop_all
	if [[ ${KEEP:-0} == 1 ]]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

log "building greyd, greyctl and freeport in $WORK"
(
	cd "$ROOT"
	go build -o "$WORK/greyd" ./cmd/greyd
	go build -o "$WORK/greyctl" ./cmd/greyctl
	go build -o "$WORK/freeport" ./bench/cmd/freeport
)

# start NAME ARGS…: start greyd in the background, logging to NAME.log.
start() {
	local name=$1
	shift
	echo "==== $(date -u +%FT%TZ) greyd $*" >>"$WORK/$name.log"
	"$WORK/greyd" "$@" >>"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
}

wait_ready() { # wait_ready URL
	local deadline=$((SECONDS + 60))
	until curl -fsS -o /dev/null --max-time 1 "$1/readyz" 2>/dev/null; do
		((SECONDS < deadline)) || die "$1 not ready after 60s"
		sleep 0.05
	done
}

# bench SETUP SERVERS METRICS: run greyctl bench (reading the servers'
# CPU and allocations per task from their METRICS endpoints), print its
# JSON line with "setup":SETUP added.
bench() {
	local out
	# shellcheck disable=SC2086 # BENCH_FLAGS is split on purpose
	out=$("$WORK/greyctl" --server "$2" bench --tasks "$TASKS" --tenants "$TENANTS" --kind "$KIND" -q \
		--server-metrics "$3" ${BENCH_FLAGS:-}) ||
		die "greyctl bench against $1 failed: $out"
	printf '{"setup":"%s",%s\n' "$1" "${out#\{}"
}

tps() { sed -n 's/.*"tasks_per_second":\([0-9.e+]*\).*/\1/p' <<<"$1"; }

# 1. Single node.
read -r HP RP MP <<<"$("$WORK/freeport" 3)"
start single --data-dir "$WORK/single" --http-addr "127.0.0.1:$HP" --raft-addr "127.0.0.1:$RP" \
	--metrics-addr "127.0.0.1:$MP" --node-id single
wait_ready "http://127.0.0.1:$HP"
log "single node up; bench: $TASKS $KIND tasks, $TENANTS tenants"
SINGLE=$(bench single "http://127.0.0.1:$HP" "http://127.0.0.1:$MP/metrics")
echo "$SINGLE"
stop_all

# 2. Three servers, in-process workers on each.
read -r -a P <<<"$("$WORK/freeport" 9)"
URLS=()
METRICS=()
for i in 0 1 2; do
	URLS+=("http://127.0.0.$((11 + i)):${P[i * 3]}")
	METRICS+=("http://127.0.0.$((11 + i)):${P[i * 3 + 2]}/metrics")
done
for i in 0 1 2; do
	host=127.0.0.$((11 + i))
	args=(--node-id "n$((i + 1))" --data-dir "$WORK/n$((i + 1))" --http-addr "$host:${P[i * 3]}"
		--raft-addr "$host:${P[i * 3 + 1]}" --metrics-addr "$host:${P[i * 3 + 2]}")
	if ((i == 0)); then
		args+=(--bootstrap)
	else
		args+=(--join "${URLS[0]}")
	fi
	start "n$((i + 1))" "${args[@]}"
	wait_ready "${URLS[i]}"
done
# All three voters registered with their API addresses.
deadline=$((SECONDS + 60))
until [[ $(curl -fsS --max-time 1 "${URLS[0]}/api/v1/cluster" 2>/dev/null | grep -o '"suffrage":"voter"' | wc -l) -eq 3 ]]; do
	((SECONDS < deadline)) || die "cluster did not get 3 voters in 60s"
	sleep 0.1
done
SERVERS=$(IFS=,; echo "${URLS[*]}")
log "3-server cluster up ($SERVERS); same bench"
CLUSTER=$(bench cluster-3 "$SERVERS" "$(IFS=,; echo "${METRICS[*]}")")
echo "$CLUSTER"
stop_all

awk -v s="$(tps "$SINGLE")" -v c="$(tps "$CLUSTER")" 'BEGIN {
	printf "{\"ratio\":%.3f,\"single_tasks_per_second\":%.1f,\"cluster_tasks_per_second\":%.1f}\n", (s > 0 ? c / s : 0), s, c
}'
