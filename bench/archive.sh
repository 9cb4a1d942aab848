#!/usr/bin/env bash
# archive.sh: does the PostgreSQL archive keep up with the core? Runs, in
# alternated pairs, `greyctl bench --tasks TASKS --tenants 4 --kind noop`
# against a fresh single-node greyd without an archive and one with the
# PostgreSQL archive (a scratch database on GREY_TEST_POSTGRES_URL, migrated
# with `greyd archive migrate`, Grey connected as a role without BYPASSRLS).
# During each archive run it samples grey_archive_lag_seconds and
# grey_archive_lag_tasks every 250 ms, and after the bench it times the
# drain to zero lag. Every run's JSON line goes to stdout, then a summary:
#
#   {"summary":true,"off_median":…,"on_median":…,"on_over_off":…,"pairs":[…],"pair_median":…,"max_lag_seconds":…,"max_lag_tasks":…,"drain_seconds_max":…}
#
#   eval "$(scripts/services.sh env postgres)"; PAIRS=3 bench/archive.sh
#
# ARCHIVE=cassandra or ARCHIVE=mongodb runs the same pairs with that
# archive instead (a fresh keyspace on GREY_TEST_CASSANDRA_URL, a fresh
# database on GREY_TEST_MONGODB_URL, as greyd's config names them).
#
# Environment: GREY_TEST_POSTGRES_URL (a superuser, required), TASKS
# (100000), PAIRS (3), ARCHIVE (postgres), KEEP=1.
set -euo pipefail

PGURL=${GREY_TEST_POSTGRES_URL:?start PostgreSQL: eval "\$(scripts/services.sh env postgres)"}
TASKS=${TASKS:-100000}
PAIRS=${PAIRS:-3}
NAME=archive
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PSQL=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | head -n 1)
[[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql not found"
suffix=$RANDOM$RANDOM
db=grey_bench_$suffix app=grey_bench_app_$suffix pw=bench$suffix
base=${PGURL%%\?*}
base=${base%/*}
query=${PGURL#"${PGURL%%\?*}"}
owner="$base/$db$query"
appurl=$(sed -E "s#^(postgres(ql)?://)[^@]*@#\1$app:$pw@#" <<<"$base/$db$query")
dropdb() {
	"$PSQL" -X -q -d "$PGURL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS $app" >/dev/null 2>&1 || true
}
trap 'dropdb; cleanup' EXIT
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$PGURL" -c "CREATE DATABASE $db" \
	-c "CREATE ROLE $app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '$pw'" >/dev/null
case ${ARCHIVE:-postgres} in
postgres)
	GREY_PG_URL=$appurl GREY_PG_MIGRATE_URL=$owner "$WORK/greyd" archive migrate >&2
	printf 'database:\n  postgres:\n    url: "%s"\n' "$appurl" >"$WORK/archive.yaml"
	;;
cassandra)
	curl_host=${GREY_TEST_CASSANDRA_URL:?start Cassandra: eval "\$(scripts/services.sh env cassandra)"}
	curl_host=${curl_host#cassandra://}
	cuser=""
	if [[ $curl_host == *@* ]]; then # user:password@ (the test Cassandra's superuser)
		cuser=${curl_host%%@*}
		curl_host=${curl_host#*@}
	fi
	printf 'database:\n  cassandra:\n    hosts: ["%s"]\n    keyspace: grey_bench_%s\n    replication: SimpleStrategy:1\n    migrate: true\n' "${curl_host%%/*}" "$suffix" >"$WORK/archive.yaml"
	[[ -n $cuser ]] && printf '    username: "%s"\n    password: "%s"\n' "${cuser%%:*}" "${cuser#*:}" >>"$WORK/archive.yaml"
	;;
mongodb)
	murl=${GREY_TEST_MONGODB_URL:?start MongoDB (FerretDB): eval "\$(scripts/services.sh env mongodb)"}
	printf 'database:\n  mongodb:\n    url: "%s"\n    database: grey_bench_%s\n' "$murl" "$suffix" >"$WORK/archive.yaml"
	;;
*) die "ARCHIVE=$ARCHIVE: want postgres, cassandra or mongodb" ;;
esac

thr=(--tasks "$TASKS" --tenants 4 --kind noop)
sample() { # metric name → value from greyd's metrics endpoint
	curl -fsS --max-time 1 "$METRICS" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'
}
off=() on=() pairs=() maxlag=0 maxtasks=0 drainmax=0
for ((i = 1; i <= PAIRS; i++)); do
	run "off$i" "" "${thr[@]}"
	off+=("$(field "off$i" tasks_per_second)")

	name=on$i
	log "$name: greyctl bench ${thr[*]} (${ARCHIVE:-postgres} archive)"
	start_greyd "$name" "$WORK/archive.yaml"
	: >"$WORK/$name.lag"
	(while :; do
		printf '%s %s\n' "$(sample grey_archive_lag_seconds)" "$(sample grey_archive_lag_tasks)" >>"$WORK/$name.lag"
		sleep 0.25
	done) &
	sampler=$!
	line=$("$WORK/greyctl" --server "$URL" bench -q --server-metrics "$METRICS" "${thr[@]}") || die "$name: greyctl bench failed: $line"
	t0=$(date +%s.%N)
	for ((j = 0; j < 1200; j++)); do
		[[ $(sample grey_archive_lag_tasks) == 0 ]] && break
		sleep 0.05
	done
	drain=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	stop_greyd
	echo "$line" >"$WORK/$name.json"
	read -r ml mt < <(awk '$1 != "" { if ($1 > s) s = $1; if ($2 > t) t = $2 } END { printf "%.3f %d\n", s, t }' "$WORK/$name.lag")
	echo "{\"run\":\"$name\",\"max_lag_seconds\":$ml,\"max_lag_tasks\":$mt,\"drain_seconds\":$drain,${line#\{}"
	on+=("$(field "$name" tasks_per_second)")
	pairs+=("$(ratio "${on[-1]}" "${off[-1]}")")
	maxlag=$(awk -v a="$maxlag" -v b="$ml" 'BEGIN { print (b > a) ? b : a }')
	maxtasks=$(awk -v a="$maxtasks" -v b="$mt" 'BEGIN { print (b > a) ? b : a }')
	drainmax=$(awk -v a="$drainmax" -v b="$drain" 'BEGIN { print (b > a) ? b : a }')
done
om=$(median "${off[@]}")
nm=$(median "${on[@]}")
rows=null
[[ ${ARCHIVE:-postgres} == postgres ]] && rows=$("$PSQL" -X -A -t -d "$owner" -c "SELECT count(*) FROM grey_archive.tasks" 2>/dev/null || echo null)
printf '{"summary":true,"off_median":%s,"on_median":%s,"on_over_off":%s,"pairs":[%s],"pair_median":%s,"max_lag_seconds":%s,"max_lag_tasks":%s,"drain_seconds_max":%s,"archived_rows_seen_by_owner":%s}\n' \
	"$om" "$nm" "$(ratio "$nm" "$om")" "$(IFS=,; echo "${pairs[*]}")" "$(median "${pairs[@]}")" "$maxlag" "$maxtasks" "$drainmax" "$rows"
