# lib.sh: helpers shared by the single-node benchmark scripts (noisy.sh,
# proofs.sh, wasm.sh). Source it after setting NAME (the log prefix):
#
#   NAME=noisy; . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It makes WORK (a temp dir, removed on exit unless KEEP=1), builds greyd and
# greyctl from this checkout into it, and defines:
#
#   log MSG / die MSG        progress to stderr / fail with greyd's last log lines
#   free_ports N             N loopback TCP ports that were free a moment ago
#   start_greyd NAME [CFG]   a fresh single-node greyd (new data dir, free
#                            ports, waited for on /readyz); sets PID URL LOG
#                            METRICS
#   stop_greyd               SIGTERM it and check it exits 0
#   run NAME CFG ARGS...     fresh greyd + `greyctl bench -q ARGS`; prints the
#                            JSON line as {"run":NAME,...}, keeps WORK/NAME.json
#   field NAME KEY           a number from a run's JSON line
#   ratio A B                A/B with 3 decimals (null when B is 0)
#   median X...              the median of the numbers
#
# Needs curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grey-$NAME.XXXXXX")
PID=""
LOG=""

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
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

start_greyd() {
	local name=$1 cfg=${2:-} http raft metrics args try i
	LOG="$WORK/$name.log"
	# A port found free can be taken before greyd binds it: try new ones.
	for try in 1 2 3; do
		read -r http raft metrics <<<"$(free_ports 3)"
		URL="http://127.0.0.1:$http"
		METRICS="http://127.0.0.1:$metrics/metrics"
		args=(--data-dir "$WORK/$name.data" --http-addr "127.0.0.1:$http" --raft-addr "127.0.0.1:$raft"
			--metrics-addr "127.0.0.1:$metrics" --log-level warn)
		[[ -n $cfg ]] && args+=(--config "$cfg")
		"$WORK/greyd" "${args[@]}" >>"$LOG" 2>&1 &
		PID=$!
		for ((i = 0; i < 600; i++)); do
			curl -fsS -o /dev/null --max-time 1 "$URL/readyz" 2>/dev/null && return 0
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "$PID" 2>/dev/null; then
			die "greyd ($name) not ready after 30s"
		fi
		wait "$PID" 2>/dev/null || true
		PID=""
		grep -q "address already in use" "$LOG" || die "greyd ($name) exited while starting"
		log "$name: a port was taken meanwhile; retrying with others"
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

run() {
	local name=$1 cfg=$2 line
	shift 2
	log "$name: greyctl bench $*"
	start_greyd "$name" "$cfg"
	if ! line=$("$WORK/greyctl" --server "$URL" bench -q --server-metrics "$METRICS" "$@"); then
		die "$name: greyctl bench failed: $line"
	fi
	stop_greyd
	[[ $line == \{* ]] || die "$name: unexpected output $line"
	echo "$line" >"$WORK/$name.json"
	echo "{\"run\":\"$name\",${line#\{}"
}

field() {
	local v
	v=$(grep -o "\"$2\":[-0-9.eE+]*" "$WORK/$1.json" | head -n 1 | cut -d: -f2)
	[[ -n $v ]] || die "$1: no number $2 in $(cat "$WORK/$1.json")"
	echo "$v"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "null"; else printf "%.3f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
