#!/usr/bin/env bash
# failover.sh: how long a 3-server cluster refuses writes after its leader
# is SIGKILLed.
#
# It builds greyd from this checkout and starts three servers on
# 127.0.0.11-13 (free ports) with the tuned Raft timeouts of the e2e
# cluster tests (heartbeat_timeout 500ms, election_timeout 500ms,
# leader_lease_timeout 250ms; no in-process workers). Then, RUNS times
# (default 10):
#
#   1. find the leader (GET /api/v1/cluster/self on each server),
#   2. SIGKILL it and submit a noop task through the two surviving
#      servers, alternately, until one answers 201: the time from the kill
#      to that answer is the run's sample,
#   3. restart the killed server on the same data dir and addresses and
#      wait until it is ready and all three servers agree on a leader.
#
# The submits go straight to the servers (curl, --max-time 1), so a
# follower that has not noticed the death answers by forwarding to the dead
# leader (503) and the next try goes to the other one. Prints one JSON line:
#
#   {"runs":10,"median_s":…,"max_s":…,"min_s":…,"samples_s":[…]}
#
# Target: median and max <= 3 s. Environment: RUNS, KEEP=1 (keep the work
# dir with the logs), HEARTBEAT/ELECTION/LEASE (Raft timeouts). Progress
# goes to stderr; only the JSON line goes to stdout. Linux (127.0.0.x).
set -euo pipefail

RUNS=${RUNS:-10}
HEARTBEAT=${HEARTBEAT:-500ms}
ELECTION=${ELECTION:-500ms}
LEASE=${LEASE:-250ms}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grey-failover.XXXXXX")
declare -a PIDS=("" "" "")

log() { printf 'failover: %s\n' "$*" >&2; }
die() {
	log "$*"
	for i in 0 1 2; do
		[[ -f $WORK/n$((i + 1)).log ]] && { log "last lines of n$((i + 1)).log:"; tail -n 15 "$WORK/n$((i + 1)).log" >&2; }
	done
	exit 1
}
cleanup() {
	for pid in "${PIDS[@]}"; do
		if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [[ ${KEEP:-0} == 1 ]]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

log "building greyd and freeport in $WORK"
(
	cd "$ROOT"
	go build -o "$WORK/greyd" ./cmd/greyd
	go build -o "$WORK/freeport" ./bench/cmd/freeport
)

cat >"$WORK/grey.yaml" <<EOF
raft:
  heartbeat_timeout: $HEARTBEAT
  election_timeout: $ELECTION
  leader_lease_timeout: $LEASE
worker:
  enabled: false
EOF

read -r -a PORTS <<<"$("$WORK/freeport" 9)"
# shellcheck disable=SC2034 # ARGS_i are read through the nameref in start
declare -a URL ARGS_0 ARGS_1 ARGS_2
for i in 0 1 2; do
	host=127.0.0.$((11 + i))
	URL[i]="http://$host:${PORTS[i * 3]}"
done
for i in 0 1 2; do
	host=127.0.0.$((11 + i))
	args=(--config "$WORK/grey.yaml" --node-id "n$((i + 1))" --data-dir "$WORK/n$((i + 1))"
		--http-addr "$host:${PORTS[i * 3]}" --raft-addr "$host:${PORTS[i * 3 + 1]}"
		--metrics-addr "$host:${PORTS[i * 3 + 2]}")
	if ((i == 0)); then
		args+=(--bootstrap)
	else
		others=""
		for j in 0 1 2; do ((j != i)) && others+="${others:+,}${URL[j]}"; done
		args+=(--join "$others")
	fi
	eval "ARGS_$i=(\"\${args[@]}\")"
done

start() { # start I: start server I (0-based) in the background
	local -n a="ARGS_$1"
	echo "==== $(date -u +%FT%T.%NZ) greyd ${a[*]}" >>"$WORK/n$(($1 + 1)).log"
	"$WORK/greyd" "${a[@]}" >>"$WORK/n$(($1 + 1)).log" 2>&1 &
	PIDS[$1]=$!
}

ready() { curl -fsS -o /dev/null --max-time 1 "${URL[$1]}/readyz" 2>/dev/null; }

wait_ready() { # wait_ready I
	local deadline=$((SECONDS + 60))
	until ready "$1"; do
		kill -0 "${PIDS[$1]}" 2>/dev/null || die "n$(($1 + 1)) exited"
		((SECONDS < deadline)) || die "n$(($1 + 1)) not ready after 60s"
		sleep 0.05
	done
}

# leader_of I: the leader id in server I's own view ("" if none); the
# top-level field, before the members array.
leader_of() {
	curl -fsS --max-time 1 "${URL[$1]}/api/v1/cluster/self" 2>/dev/null |
		sed -n 's/^{[^[]*"leader_id":"\([^"]*\)".*/\1/p'
}

# leader: prints the index of the server all three agree leads, or fails.
leader() {
	local want="" i id
	for i in 0 1 2; do
		id=$(leader_of "$i")
		[[ -n $id ]] || return 1
		[[ -z $want || $want == "$id" ]] || return 1
		want=$id
	done
	echo $((${want#n} - 1))
}

wait_leader() {
	local deadline=$((SECONDS + 60)) l
	until l=$(leader); do
		((SECONDS < deadline)) || die "no agreed leader after 60s"
		sleep 0.05
	done
	echo "$l"
}

submit() { # submit I: prints the HTTP status of a noop submit to server I
	curl -s -o /dev/null -w '%{http_code}' --max-time 1 -X POST -H 'Content-Type: application/json' \
		--data '{"kind":"noop"}' "${URL[$1]}/api/v1/tasks" 2>/dev/null || true
}

for i in 0 1 2; do
	start "$i"
	wait_ready "$i"
done
L=$(wait_leader)
log "cluster up: ${URL[*]}; leader n$((L + 1))"
[[ $(submit "$L") == 201 ]] || die "first submit failed"

SAMPLES=()
for ((run = 1; run <= RUNS; run++)); do
	L=$(wait_leader)
	sleep 0.5 # let the followers see a few heartbeats
	kill -KILL "${PIDS[L]}"
	t0=$(now)
	wait "${PIDS[L]}" 2>/dev/null || true
	PIDS[L]=""
	a=$(((L + 1) % 3))
	b=$(((L + 2) % 3))
	code=""
	while :; do
		for s in "$a" "$b"; do
			code=$(submit "$s")
			if [[ $code == 201 ]]; then
				t1=$(now)
				break 2
			fi
		done
		(($(printf '%.0f' "$(elapsed "$t0" "$(now)")") < 60)) || die "no write accepted 60s after the kill"
	done
	d=$(elapsed "$t0" "$t1")
	SAMPLES+=("$d")
	start "$L"
	wait_ready "$L"
	NL=$(wait_leader)
	log "run $run: killed n$((L + 1)), first write accepted after ${d}s via n$((s + 1)); n$((L + 1)) back, leader n$((NL + 1))"
done

LIST=$(IFS=,; echo "${SAMPLES[*]}")
printf '%s\n' "${SAMPLES[@]}" | sort -n | awk -v runs="$RUNS" -v list="$LIST" '
	{ v[NR] = $1 }
	END {
		med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "{\"runs\":%d,\"median_s\":%.3f,\"max_s\":%.3f,\"min_s\":%.3f,\"samples_s\":[%s]}\n", runs, med, v[NR], v[1], list
	}'
