#!/usr/bin/env bash
# run.sh: Grey against River (PostgreSQL) and Asynq (Redis), noop jobs, on
# this machine, in one run, so the lead is measured rather than remembered.
#
#   bench/peers/run.sh                       # JOBS=20000 PAIRS=3
#   JOBS=100000 PAIRS=3 bench/peers/run.sh   # the issue's size
#
# It builds greyd and greyctl (bench/lib.sh) and the two peer programs of
# this nested module, starts a PRIVATE PostgreSQL (Debian's binaries,
# initdb in a temp dir) and a fresh private redis-server per Asynq run, all
# on free 127.0.0.1 ports, and stops and removes everything on exit.
#
#   1. tuning: one River run per RIVER_WORKERS value and one Asynq run per
#      ASYNQ_WORKERS value; the fastest of each is kept for the rounds;
#   2. PAIRS rounds, each running Grey, River and Asynq (the order rotates
#      from round to round so none always runs first):
#        grey   greyctl bench --tasks JOBS --tenants 4 --kind noop against a
#               fresh single-node greyd (default config: Raft log fsync on,
#               signed proofs on), --server-metrics for greyd's CPU per task;
#        river  riverbench --jobs JOBS (4 queues, InsertManyFast in batches
#               of 500 from 4 inserters, FetchCooldown 2 ms,
#               FetchPollInterval 20 ms) in a new database;
#        asynq  asynqbench --jobs JOBS (4 queues, 32 concurrent enqueuers)
#               against a fresh redis-server.
#
# Every run's JSON line goes to stdout ({"run":NAME,...}), then a Markdown
# table of medians and ratios and one summary line:
#
#   {"summary":true,"jobs":…,"pairs":…,"grey_median":…,"river_median":…,
#    "asynq_median":…,"grey_over_river":…,"grey_over_asynq":…,
#    "round_grey_over_river":[…],"round_grey_over_asynq":[…],…}
#
# grey_over_X is the ratio of the medians; round_grey_over_X the ratio
# within each round (the machine's load drifts between rounds).
#
# CPU per job: Grey's is greyd's (process_cpu_seconds_total, over the run;
# its store is in-process) plus greyctl's (its rusage, whole process: the
# submitters and the watch streams that see the completions). A peer's is
# its bench process (inserters and workers share it; getrusage over the run)
# plus the store's process tree (the postmaster with its live and reaped
# backends; redis-server).
#
# Durability as each ships: greyd fsyncs its Raft log, PostgreSQL runs with
# its defaults (fsync on, synchronous_commit on), Redis with its built-in
# defaults (RDB snapshots, no AOF: no fsync per job).
#
# Environment: JOBS (20000), PAIRS (3), RIVER_WORKERS ("200 1000 2000",
# River's MaxWorkers over all queues), ASYNQ_WORKERS ("100 400 1000", Asynq's
# Concurrency), RIVER_FLAGS / ASYNQ_FLAGS (more flags for the programs,
# e.g. RIVER_FLAGS="--insert many"), PG_OPTS (more `-c name=value` options
# for postgres, e.g. "-c fsync=off"), REDIS_OPTS (more redis-server options,
# e.g. "--appendonly yes --appendfsync always"), GREY_FLAGS (more greyctl
# bench flags), KEEP=1 keeps the work dir. Needs curl; installs Debian's
# redis-server when it is missing (root or sudo -n).
set -euo pipefail

JOBS=${JOBS:-20000}
PAIRS=${PAIRS:-3}
RIVER_WORKERS=${RIVER_WORKERS:-"200 1000 2000"}
ASYNQ_WORKERS=${ASYNQ_WORKERS:-"100 400 1000"}
RIVER_FLAGS=${RIVER_FLAGS:-}
ASYNQ_FLAGS=${ASYNQ_FLAGS:-}
PG_OPTS=${PG_OPTS:-}
REDIS_OPTS=${REDIS_OPTS:-}
GREY_FLAGS=${GREY_FLAGS:-}
NAME=peers
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PGPID="" REDISPID=""
stop_stores() {
	local p
	for p in "$REDISPID" "$PGPID"; do
		[[ -n $p ]] || continue
		# SIGINT is PostgreSQL's fast shutdown; redis-server exits on it too.
		kill -INT "$p" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PGPID="" REDISPID=""
}
peers_cleanup() {
	stop_stores
	cleanup
}
trap peers_cleanup EXIT

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }
as_pg() {
	if [[ $(id -u) == 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}

# --- tools ---------------------------------------------------------------
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -n $PGBIN && -x $PGBIN/initdb && -x $PGBIN/postgres ]] ||
	die "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql-15)"
command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client-15)"
if ! command -v redis-server >/dev/null; then
	log "installing Debian's redis-server"
	command -v apt-get >/dev/null || die "redis-server is missing and apt-get is not here: install Redis by hand"
	# policy-rc.d keeps Debian from starting the system-wide redis-server.
	made_prc=""
	if [[ $(id -u) == 0 && ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_prc=1
	fi
	rc=0
	{ as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends redis-server; } >"$WORK/apt.log" 2>&1 || rc=$?
	[[ -n $made_prc ]] && rm -f /usr/sbin/policy-rc.d
	((rc == 0)) && command -v redis-server >/dev/null || { tail -n 20 "$WORK/apt.log" >&2; die "could not install redis-server (root or sudo -n needed)"; }
fi

log "building riverbench, asynqbench and cputime in $WORK"
(cd "$ROOT/bench/peers" && go build -o "$WORK/riverbench" ./cmd/riverbench && go build -o "$WORK/asynqbench" ./cmd/asynqbench &&
	go build -o "$WORK/cputime" ./cmd/cputime)

# --- PostgreSQL ----------------------------------------------------------
chmod 755 "$WORK" # the postgres user must reach its data dir
PGDIR=$WORK/pg
mkdir -p "$PGDIR"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$PGDIR"
log "initdb ($PGBIN)"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --locale=C >"$PGDIR/initdb.log" 2>&1 ||
	{ tail -n 20 "$PGDIR/initdb.log" >&2; die "initdb failed"; }
for try in 1 2 3; do
	read -r PGPORT <<<"$(free_ports 1)"
	# shellcheck disable=SC2206 # PG_OPTS is a list of options
	cmd=("$PGBIN/postgres" -D "$PGDIR/data" -p "$PGPORT" -k "$PGDIR" -c listen_addresses=127.0.0.1
		-c max_connections=200 $PG_OPTS)
	# setpriv execs postgres: $! is the postmaster, whose tree's CPU is measured.
	[[ $(id -u) == 0 ]] && cmd=(setpriv --reuid=postgres --regid=postgres --init-groups -- "${cmd[@]}")
	"${cmd[@]}" >>"$PGDIR/postgres.log" 2>&1 &
	PGPID=$!
	for ((i = 0; i < 300; i++)); do
		"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break
		kill -0 "$PGPID" 2>/dev/null || break
		sleep 0.1
	done
	"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break
	kill -0 "$PGPID" 2>/dev/null && { LOG=$PGDIR/postgres.log; die "postgres not ready after 30s"; }
	wait "$PGPID" 2>/dev/null || true
	PGPID=""
	((try < 3)) || { LOG=$PGDIR/postgres.log; die "postgres did not start"; }
done
PGSTORE=$(head -n 1 "$PGDIR/data/postmaster.pid")
[[ $PGSTORE == "$PGPID" ]] || log "postmaster is pid $PGSTORE, not $PGPID: measuring $PGSTORE"
log "postgres $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (pid $PGSTORE)"
PSQL=(psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres)

# record NAME LINE: keeps a peer's JSON line for `field` and prints it.
record() {
	[[ $2 == \{* ]] || die "$1: unexpected output $2"
	echo "$2" >"$WORK/$1.json"
	echo "{\"run\":\"$1\",${2#\{}"
}

river() { # river NAME WORKERS
	local name=$1 db line
	db=$(echo "$name" | tr -c 'a-z0-9\n' '_')
	log "$name: riverbench --jobs $JOBS --workers $2 $RIVER_FLAGS"
	"${PSQL[@]}" -c "CREATE DATABASE $db" || die "create database $db"
	# shellcheck disable=SC2086 # RIVER_FLAGS is a list of flags
	line=$("$WORK/riverbench" --database-url "postgres://postgres@127.0.0.1:$PGPORT/$db?sslmode=disable" \
		--jobs "$JOBS" --workers "$2" --store-pid "$PGSTORE" $RIVER_FLAGS 2>"$WORK/$name.log") ||
		{ LOG=$WORK/$name.log; die "$name: riverbench failed: $line"; }
	"${PSQL[@]}" -c "DROP DATABASE $db" || die "drop database $db"
	record "$name" "$line"
}

asynq() { # asynq NAME WORKERS
	local name=$1 port line i rc=0
	log "$name: asynqbench --jobs $JOBS --workers $2 $ASYNQ_FLAGS"
	mkdir -p "$WORK/$name.redis"
	read -r port <<<"$(free_ports 1)"
	# shellcheck disable=SC2086 # REDIS_OPTS is a list of options
	redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/$name.redis" --daemonize no \
		--logfile "$WORK/$name.redis/redis.log" $REDIS_OPTS &
	REDISPID=$!
	for ((i = 0; i < 100; i++)); do
		redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
		kill -0 "$REDISPID" 2>/dev/null || { LOG=$WORK/$name.redis/redis.log; die "redis-server exited"; }
		sleep 0.05
	done
	# shellcheck disable=SC2086 # ASYNQ_FLAGS is a list of flags
	line=$("$WORK/asynqbench" --redis-addr "127.0.0.1:$port" --jobs "$JOBS" --workers "$2" \
		--store-pid "$REDISPID" $ASYNQ_FLAGS 2>"$WORK/$name.log") || rc=$?
	kill -INT "$REDISPID" && wait "$REDISPID" || true
	REDISPID=""
	((rc == 0)) || { LOG=$WORK/$name.log; die "$name: asynqbench failed: $line"; }
	record "$name" "$line"
}

grey() { # grey NAME: bench/lib.sh's run, with greyctl's own CPU counted too
	local name=$1 line server client
	log "$name: greyctl bench --tasks $JOBS --tenants 4 --kind noop $GREY_FLAGS"
	start_greyd "$name" ""
	# shellcheck disable=SC2086 # GREY_FLAGS is a list of flags
	line=$("$WORK/cputime" "$WORK/$name.client-cpu" "$WORK/greyctl" --server "$URL" bench -q \
		--server-metrics "$METRICS" --tasks "$JOBS" --tenants 4 --kind noop $GREY_FLAGS) ||
		die "$name: greyctl bench failed: $line"
	stop_greyd
	[[ $line == *\} ]] || die "$name: unexpected output $line"
	server=$(grep -o '"server_cpu_us_per_task":[-0-9.eE+]*' <<<"$line" | cut -d: -f2)
	[[ -n $server ]] || die "$name: no server_cpu_us_per_task in $line"
	client=$(awk -v s="$(cat "$WORK/$name.client-cpu")" -v n="$JOBS" 'BEGIN { printf "%.1f", s * 1e6 / n }')
	record "$name" "${line%\}},\"client_cpu_us_per_task\":$client,\"cpu_us_per_task\":$(awk -v a="$server" -v b="$client" 'BEGIN { printf "%.1f", a + b }')}"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)

# --- tuning --------------------------------------------------------------
best() { # best PREFIX VALUES...: the value whose run PREFIX-VALUE was fastest
	local prefix=$1 v b="" bv=0 t
	shift
	for v in "$@"; do
		t=$(field "$prefix-$v" jobs_per_second)
		if awk -v a="$t" -v b="$bv" 'BEGIN { exit !(a > b) }'; then b=$v bv=$t; fi
	done
	echo "$b"
}
for w in $RIVER_WORKERS; do river "tune-river-$w" "$w"; done
for w in $ASYNQ_WORKERS; do asynq "tune-asynq-$w" "$w"; done
# shellcheck disable=SC2086 # the lists are words
RW=$(best tune-river $RIVER_WORKERS)
# shellcheck disable=SC2086
AW=$(best tune-asynq $ASYNQ_WORKERS)
log "tuned: River MaxWorkers $RW, Asynq Concurrency $AW"

# --- rounds --------------------------------------------------------------
g=() r=() a=() gc=() gs=() gk=() rc=() rp=() rs=() ac=() ap=() as=() gr=() ga=()
orders=("grey river asynq" "river asynq grey" "asynq grey river")
for ((i = 1; i <= PAIRS; i++)); do
	for s in ${orders[$(((i - 1) % 3))]}; do
		case $s in
		grey) grey "grey$i" ;;
		river) river "river$i" "$RW" ;;
		asynq) asynq "asynq$i" "$AW" ;;
		esac
	done
	g+=("$(field "grey$i" tasks_per_second)")
	r+=("$(field "river$i" jobs_per_second)")
	a+=("$(field "asynq$i" jobs_per_second)")
	gc+=("$(field "grey$i" cpu_us_per_task)")
	gs+=("$(field "grey$i" server_cpu_us_per_task)")
	gk+=("$(field "grey$i" client_cpu_us_per_task)")
	rc+=("$(field "river$i" cpu_us_per_job)")
	rp+=("$(field "river$i" process_cpu_us_per_job)")
	rs+=("$(field "river$i" store_cpu_us_per_job)")
	ac+=("$(field "asynq$i" cpu_us_per_job)")
	ap+=("$(field "asynq$i" process_cpu_us_per_job)")
	as+=("$(field "asynq$i" store_cpu_us_per_job)")
	gr+=("$(ratio "${g[-1]}" "${r[-1]}")")
	ga+=("$(ratio "${g[-1]}" "${a[-1]}")")
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

gm=$(median "${g[@]}") rm_=$(median "${r[@]}") am=$(median "${a[@]}")
gcm=$(median "${gc[@]}") rcm=$(median "${rc[@]}") acm=$(median "${ac[@]}")
list() { local IFS=,; echo "$*"; }
spaced() { local IFS=' '; echo "$*" | sed 's/ /, /g'; }

cat <<EOF

Peers: $JOBS noop jobs, rounds: $PAIRS, $(date -u +%F) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $load0 at the start, $load1 at the end

| system | settings | jobs/s per round | median jobs/s | Grey ÷ system: of medians (median of rounds) | CPU µs per job, medians: all (parts) | system ÷ Grey, CPU per job |
| --- | --- | --- | ---: | ---: | ---: | ---: |
| Grey | greyd defaults, 4 tenants, batches of 500 from 4 submitters | $(spaced "${g[@]}") | $gm | 1 | $gcm (greyd $(median "${gs[@]}") + greyctl $(median "${gk[@]}")) | 1 |
| River | MaxWorkers $RW over 4 queues, InsertManyFast, batches of 500 from 4 inserters | $(spaced "${r[@]}") | $rm_ | $(ratio "$gm" "$rm_") ($(median "${gr[@]}")) | $rcm (process $(median "${rp[@]}") + PostgreSQL $(median "${rs[@]}")) | $(ratio "$rcm" "$gcm") |
| Asynq | Concurrency $AW over 4 queues, 32 enqueuers | $(spaced "${a[@]}") | $am | $(ratio "$gm" "$am") ($(median "${ga[@]}")) | $acm (process $(median "${ap[@]}") + Redis $(median "${as[@]}")) | $(ratio "$acm" "$gcm") |

EOF
printf '{"summary":true,"jobs":%s,"pairs":%s,"river_workers":%s,"asynq_workers":%s,"grey_median":%s,"river_median":%s,"asynq_median":%s,"grey_over_river":%s,"grey_over_asynq":%s,"round_grey_over_river":[%s],"round_grey_over_asynq":[%s],"grey_cpu_us_per_task":%s,"greyd_cpu_us_per_task":%s,"river_cpu_us_per_job":%s,"asynq_cpu_us_per_job":%s,"load_start":"%s","load_end":"%s"}\n' \
	"$JOBS" "$PAIRS" "$RW" "$AW" "$gm" "$rm_" "$am" "$(ratio "$gm" "$rm_")" "$(ratio "$gm" "$am")" \
	"$(list "${gr[@]}")" "$(list "${ga[@]}")" "$gcm" "$(median "${gs[@]}")" "$rcm" "$acm" "$load0" "$load1"
