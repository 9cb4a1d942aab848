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
NAME=noisy
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

printf 'tasks:\n  fair_share: false\n' >"$WORK/fifo.yaml"
printf 'tenants:\n  enforce_quotas: false\n' >"$WORK/noquota.yaml"

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
