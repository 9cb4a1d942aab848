#!/usr/bin/env bash
# pending1m.sh: how much memory greyd needs to hold 1,000,000 pending tasks,
# and how long it takes to come back after a graceful restart with them.
#
# It builds greyd and the bench helpers from this checkout, starts a single
# node on a temporary data dir and free loopback ports, submits the tasks
# with run_at one hour ahead (so they stay pending) through
# bench/cmd/fill (client.SubmitBatch, 1000 specs per batch), reads greyd's
# VmRSS from /proc, sends SIGTERM, starts greyd again on the same data dir
# and times the restart until /readyz answers 200 and
# GET /api/v1/tasks?limit=1 returns a task. It prints one JSON line:
#
#   {"pending":1000000,"rss_mib":…,"restart_to_ready_s":…, …}
#
# Extra fields: fill_s (submit time), peak_rss_mib (VmHWM before the
# restart), shutdown_s (SIGTERM to exit, including the final snapshot),
# rss_after_restart_mib, data_dir_mib, pending_after_restart.
#
# Environment: PENDING (default 1000000), CONCURRENCY (fill submitters,
# default 4), KEEP=1 keeps the work dir (data and greyd.log), GREYD_FLAGS
# (extra greyd flags, e.g. "--config my.yaml"). Linux only (/proc).
# Progress goes to stderr; only the JSON line goes to stdout.
set -euo pipefail

N=${PENDING:-1000000}
CONCURRENCY=${CONCURRENCY:-4}
NAME=pending1m
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # WORK, log, die, cleanup; builds greyd
LOG="$WORK/greyd.log"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

log "building the bench helpers in $WORK"
(
	cd "$ROOT"
	go build -o "$WORK/fill" ./bench/cmd/fill
	go build -o "$WORK/freeport" ./bench/cmd/freeport
)

read -r HTTP_PORT RAFT_PORT METRICS_PORT <<<"$("$WORK/freeport" 3)"
URL="http://127.0.0.1:$HTTP_PORT"
# shellcheck disable=SC2206 # GREYD_FLAGS is split on purpose
ARGS=(--data-dir "$WORK/data" --http-addr "127.0.0.1:$HTTP_PORT" --raft-addr "127.0.0.1:$RAFT_PORT"
	--metrics-addr "127.0.0.1:$METRICS_PORT" ${GREYD_FLAGS:-})

start_greyd() {
	echo "==== $(date -u +%FT%TZ) greyd ${ARGS[*]}" >>"$LOG"
	"$WORK/greyd" "${ARGS[@]}" >>"$LOG" 2>&1 &
	PID=$!
}

# ready: /readyz is 200 and the task list answers with a task.
ready() {
	curl -fsS -o /dev/null --max-time 2 "$URL/readyz" 2>/dev/null &&
		curl -fsS --max-time 30 "$URL/api/v1/tasks?limit=1" 2>/dev/null | grep -q '"id"'
}

# wait_ready SECONDS [ready-check]: wait for the node, failing if it exits.
wait_ready() {
	local limit=$1 check=${2:-ready} t0
	t0=$(now)
	until "$check"; do
		kill -0 "$PID" 2>/dev/null || die "greyd exited while starting"
		if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
			die "greyd not ready after ${limit}s"
		fi
		sleep 0.02
	done
}

readyz() { curl -fsS -o /dev/null --max-time 2 "$URL/readyz" 2>/dev/null; }

pending_count() {
	curl -fsS --max-time 30 "$URL/api/v1/cluster" | grep -o '"pending":[0-9]*' | cut -d: -f2
}

# stop_greyd: SIGTERM and wait for a clean exit; sets STOP_S to the
# seconds it took. (Not in a $(…) subshell: wait needs greyd's parent.)
stop_greyd() {
	local t0 rc=0
	t0=$(now)
	kill -TERM "$PID"
	wait "$PID" || rc=$?
	PID=""
	[[ $rc == 0 ]] || die "greyd exited with $rc after SIGTERM"
	STOP_S=$(elapsed "$t0" "$(now)")
}

log "starting greyd on $URL"
start_greyd
wait_ready 60 readyz

log "submitting $N pending tasks"
t0=$(now)
"$WORK/fill" --server "$URL" --tasks "$N" --concurrency "$CONCURRENCY" >"$WORK/fill.json"
fill_s=$(elapsed "$t0" "$(now)")
log "fill: $(cat "$WORK/fill.json")"

pending=$(pending_count)
[[ $pending == "$N" ]] || die "greyd counts $pending pending tasks, want $N"
sleep 5 # let the allocator settle after the burst
rss=$(rss_mib "$PID")
peak=$(hwm_mib "$PID")
log "pending=$pending rss=${rss}MiB peak=${peak}MiB; SIGTERM"

stop_greyd
shutdown_s=$STOP_S
data_mib=$(du -sm "$WORK/data" | cut -f1)
log "stopped in ${shutdown_s}s; data dir ${data_mib}MiB; restarting"

t0=$(now)
start_greyd
wait_ready 600
restart_s=$(elapsed "$t0" "$(now)")
pending_after=$(pending_count)
rss_after=$(rss_mib "$PID")
log "ready after ${restart_s}s with $pending_after pending; rss=${rss_after}MiB"
[[ $pending_after == "$N" ]] || die "after the restart greyd counts $pending_after pending tasks, want $N"
stop_greyd

printf '{"pending":%s,"rss_mib":%s,"restart_to_ready_s":%s,"fill_s":%s,"peak_rss_mib":%s,"shutdown_s":%s,"rss_after_restart_mib":%s,"data_dir_mib":%s,"pending_after_restart":%s}\n' \
	"$pending" "$rss" "$restart_s" "$fill_s" "$peak" "$shutdown_s" "$rss_after" "$data_mib" "$pending_after"
