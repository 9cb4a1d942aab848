#!/usr/bin/env bash
# events_rabbitmq.sh: tasks/s through Grey's RabbitMQ event path on a real
# broker, with publisher confirms and acks after the submit, against a raw
# amqp091 baseline doing the same broker work in the same run.
#
# It builds bench/cmd/eventsrabbit and runs it ROUNDS times (default 3) for
# each queue type in QUEUE_TYPES (default "quorum classic"), each round
# one Grey run and one raw run, alternating:
#
#   grey  TASKS noop submissions (message_id set, round-robin over TENANTS
#         tenant queues) are published with confirms while the tenants are
#         paused; then the clock starts: events.Consumer over the
#         rabbitevents source (prefetch PREFETCH per tenant, FetchMax FETCH)
#         submits each to an in-process submit (one task per idempotency
#         key, standing in for the Raft commit) and acknowledges it after
#         the submit returned; a relay-like loop publishes one result per
#         task through the rabbitevents sink (batches of 1000, Publish
#         returns when the broker confirmed all). The clock stops when the
#         last result is confirmed.
#   raw   the same queues and backlog, consumed by plain amqp091 consumers
#         (manual acks) publishing one result per message with confirms,
#         with the same properties and headers as Grey's results (headers
#         cost the broker: without them it publishes ~1.5x faster).
#
# Each run prints a JSON line; then one summary line per queue type:
#
#   {"summary":true,"queue_type":"quorum","grey_tasks_per_second":<median>,
#    "raw_tasks_per_second":<median>,"ratio":<grey/raw medians>,
#    "pair_ratios":[…],"median_pair_ratio":…}
#
# On a busy machine the broker's speed drifts between rounds: the ratio of
# each round's pair (run back to back) says more than the medians.
#
# Environment: GREY_TEST_RABBITMQ_URL (from `eval "$(scripts/services.sh env)"`),
# TASKS (50000), TENANTS (4), ROUNDS (3), PREFETCH (1024), FETCH (512),
# QUEUE_TYPES ("quorum classic"). Every run declares its own exchanges and
# queues (random suffix) and deletes them. Progress goes to stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${GREY_TEST_RABBITMQ_URL:?set it: eval \"\$(scripts/services.sh env)\"}"
TASKS=${TASKS:-50000}
TENANTS=${TENANTS:-4}
ROUNDS=${ROUNDS:-3}
PREFETCH=${PREFETCH:-1024}
FETCH=${FETCH:-512}
QUEUE_TYPES=${QUEUE_TYPES:-quorum classic}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grey-events-rabbitmq.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && go build -o "$WORK/eventsrabbit" ./bench/cmd/eventsrabbit)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { grep -o '"tasks_per_second":[0-9.]*' <<<"$1" | cut -d: -f2; }
for qt in $QUEUE_TYPES; do
	grey=() raw=() pairs=()
	for r in $(seq 1 "$ROUNDS"); do
		echo "events_rabbitmq: $qt round $r/$ROUNDS" >&2
		out=$("$WORK/eventsrabbit" -url "$GREY_TEST_RABBITMQ_URL" -queue-type "$qt" -tasks "$TASKS" \
			-tenants "$TENANTS" -prefetch "$PREFETCH" -fetch "$FETCH" -baseline)
		echo "$out"
		grey+=("$(rate "$(sed -n 1p <<<"$out")")")
		raw+=("$(rate "$(sed -n 2p <<<"$out")")")
		pairs+=("$(awk -v a="${grey[-1]}" -v b="${raw[-1]}" 'BEGIN { printf "%.3f", a / b }')")
	done
	g=$(median "${grey[@]}") w=$(median "${raw[@]}")
	ratio=$(awk -v a="$g" -v b="$w" 'BEGIN { if (b == 0) print "null"; else printf "%.3f", a / b }')
	echo "{\"summary\":true,\"queue_type\":\"$qt\",\"tasks\":$TASKS,\"grey_tasks_per_second\":$g,\"raw_tasks_per_second\":$w,\"ratio\":$ratio,\"grey_runs\":[$(IFS=,; echo "${grey[*]}")],\"raw_runs\":[$(IFS=,; echo "${raw[*]}")],\"pair_ratios\":[$(IFS=,; echo "${pairs[*]}")],\"median_pair_ratio\":$(median "${pairs[@]}")}"
done
