#!/usr/bin/env bash
# events_kafka.sh: message in → result out through Kafka, against the
# core noop bench in the same run.
#
# It builds greyd, greyctl and bench/cmd/kafkabench from this checkout and
# runs, PAIRS times (default 3), alternating, each against a fresh
# single-node greyd:
#
#   api    `greyctl bench --tasks TASKS --tenants 1 --kind noop` (the
#          core's noop throughput through the API; no events block)
#   kafka  greyd with events.kafka source and sink on; kafkabench writes
#          TASKS noop submissions to grey.tasks.<tenant> (RATE per second,
#          0: as fast as it can) and reads their results from
#          grey.results.<tenant>
#
# Every run's JSON line goes to stdout, prefixed with its name, then a
# summary with the medians (lag is message written → result read):
#
#   {"summary":true,"kafka_median":…,"api_median":…,"kafka_over_api":…,"kafka_lag_p99_ms_median":…}
#
# Environment: TASKS (default 20000), PAIRS (3), RATE (0), PARTITIONS (4),
# KAFKA (host:port, default from GREY_TEST_KAFKA_URL or 127.0.0.1:19092),
# CONCURRENCY (greyctl --concurrency, default 4), KEEP=1 keeps the work
# dir. Needs curl and a running Kafka (scripts/services.sh up kafka).
set -euo pipefail

TASKS=${TASKS:-20000}
PAIRS=${PAIRS:-3}
RATE=${RATE:-0}
PARTITIONS=${PARTITIONS:-4}
CONCURRENCY=${CONCURRENCY:-4}
KAFKA=${KAFKA:-${GREY_TEST_KAFKA_URL:-kafka://127.0.0.1:19092}}
KAFKA=${KAFKA#kafka://}
KAFKA=${KAFKA%/}
NAME=events_kafka
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(cd "$ROOT" && go build -o "$WORK/kafkabench" ./bench/cmd/kafkabench)

kafka_run() {
	local name=$1 tenant line
	tenant="kb$(date +%s%N | tail -c 9)"
	cat >"$WORK/$name.yaml" <<YAML
events:
  kafka:
    brokers: ["$KAFKA"]
    group: grey-bench-$tenant
    source: true
    sink: true
    topics_regex: '^grey\.tasks\.$tenant\$'
YAML
	log "$name: kafkabench --tasks $TASKS --rate $RATE (tenant $tenant)"
	# The topics exist before greyd starts (as a tenant's would), and the
	# writing starts once greyd's consumer group is stable.
	"$WORK/kafkabench" -brokers "$KAFKA" -tenant "$tenant" -partitions "$PARTITIONS" -create || die "$name: creating topics failed"
	start_greyd "$name" "$WORK/$name.yaml"
	if ! line=$("$WORK/kafkabench" -brokers "$KAFKA" -tenant "$tenant" -tasks "$TASKS" -rate "$RATE" -partitions "$PARTITIONS" -group "grey-bench-$tenant"); then
		die "$name: kafkabench failed: $line"
	fi
	stop_greyd
	echo "$line" >"$WORK/$name.json"
	echo "{\"run\":\"$name\",${line#\{}"
}

api=() kafka=() lag=()
for ((i = 1; i <= PAIRS; i++)); do
	run "api$i" "" --tasks "$TASKS" --tenants 1 --kind noop --concurrency "$CONCURRENCY"
	api+=("$(field "api$i" tasks_per_second)")
	kafka_run "kafka$i"
	kafka+=("$(field "kafka$i" tasks_per_second)")
	lag+=("$(field "kafka$i" lag_p99_ms)")
done
mk=$(median "${kafka[@]}")
ma=$(median "${api[@]}")
printf '{"summary":true,"kafka_median":%s,"api_median":%s,"kafka_over_api":%s,"kafka_lag_p99_ms_median":%s}\n' \
	"$mk" "$ma" "$(ratio "$mk" "$ma")" "$(median "${lag[@]}")"
