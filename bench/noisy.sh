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
# ROUNDS times (default 1). Every run's JSON line goes to stdout, prefixed
# with its name and round, and a final summary line with the quiet tenant's
# p99 (median and worst over the rounds) and the ratios (medians over the
# rounds, each ratio taken within its round):
#
#   {"summary":true,"rounds":…,"b_p99_ms_median":…,"b_p99_ms_max":…,
#    "b_p99_fifo_over_fair":…,"a_seconds_fair_over_alone":…,
#    "throughput_enforce_over_no_enforce":…}
#
# b_p99_fifo_over_fair > 1 means fair share shortens the quiet tenant's tail
# latency; a_seconds_fair_over_alone ≈ 1 means sharing costs the noisy tenant
# little; throughput_enforce_over_no_enforce ≈ 1 means quota checks are cheap.
#
# Environment: ROUNDS (1), A_TASKS (default 20000), B_TASKS (100), TASKS (50000),
# CONCURRENCY (greyctl --concurrency, default 4), KEEP=1 keeps the work dir
# (data dirs, configs, greyd logs). Needs curl. Progress goes to stderr.
set -euo pipefail

A_TASKS=${A_TASKS:-20000}
B_TASKS=${B_TASKS:-100}
TASKS=${TASKS:-50000}
CONCURRENCY=${CONCURRENCY:-4}
ROUNDS=${ROUNDS:-1}
NAME=noisy
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

printf 'tasks:\n  fair_share: false\n' >"$WORK/fifo.yaml"
printf 'tenants:\n  enforce_quotas: false\n' >"$WORK/noquota.yaml"

noisy=(--scenario noisy-neighbor --a-tasks "$A_TASKS" --concurrency "$CONCURRENCY")
thr=(--tasks "$TASKS" --tenants 4 --kind noop --concurrency "$CONCURRENCY")
fair=() fifo_r=() a_r=() q_r=() max_b=0
for ((r = 1; r <= ROUNDS; r++)); do
	run "fair$r" "" "${noisy[@]}" --b-tasks "$B_TASKS"
	run "alone$r" "" "${noisy[@]}" --b-tasks 0
	run "fifo$r" "$WORK/fifo.yaml" "${noisy[@]}" --b-tasks "$B_TASKS"
	run "quotas$r" "" "${thr[@]}"
	run "noquota$r" "$WORK/noquota.yaml" "${thr[@]}"
	b=$(field "fair$r" b_p99_ms)
	fair+=("$b")
	max_b=$(awk -v a="$max_b" -v b="$b" 'BEGIN { print (b > a) ? b : a }')
	fifo_r+=("$(ratio "$(field "fifo$r" b_p99_ms)" "$b")")
	a_r+=("$(ratio "$(field "fair$r" a_seconds)" "$(field "alone$r" a_seconds)")")
	q_r+=("$(ratio "$(field "quotas$r" tasks_per_second)" "$(field "noquota$r" tasks_per_second)")")
done

printf '{"summary":true,"rounds":%d,"b_p99_ms_median":%s,"b_p99_ms_max":%s,"b_p99_fifo_over_fair":%s,"a_seconds_fair_over_alone":%s,"throughput_enforce_over_no_enforce":%s}\n' \
	"$ROUNDS" "$(median "${fair[@]}")" "$max_b" "$(median "${fifo_r[@]}")" "$(median "${a_r[@]}")" "$(median "${q_r[@]}")"
