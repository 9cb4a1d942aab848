#!/usr/bin/env bash
# proofs.sh: what do signed proofs cost the noop throughput?
#
# It builds greyd and greyctl from this checkout and runs, PAIRS times
# (default 3), alternating, each against a fresh single-node greyd:
#
#   on   default config (proofs.enabled: true: every completed task gets an
#        ed25519-signed in-toto/DSSE proof from the in-process worker)
#   off  config `proofs: {enabled: false}`
#
# each with `greyctl bench --tasks TASKS --tenants 4 --kind noop`. Every
# run's JSON line goes to stdout, prefixed with its name, then a summary
# with the medians and their ratio (the issue asks for on/off >= 0.8):
#
#   {"summary":true,"on_median":…,"off_median":…,"on_over_off":…}
#
# Environment: TASKS (default 50000), PAIRS (3), CONCURRENCY (greyctl
# --concurrency, default 4), KEEP=1 keeps the work dir. Needs curl.
set -euo pipefail

TASKS=${TASKS:-50000}
PAIRS=${PAIRS:-3}
CONCURRENCY=${CONCURRENCY:-4}
NAME=proofs
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

printf 'proofs:\n  enabled: false\n' >"$WORK/off.yaml"
thr=(--tasks "$TASKS" --tenants 4 --kind noop --concurrency "$CONCURRENCY")
on=() off=()
for ((i = 1; i <= PAIRS; i++)); do
	run "on$i" "" "${thr[@]}"
	on+=("$(field "on$i" tasks_per_second)")
	run "off$i" "$WORK/off.yaml" "${thr[@]}"
	off+=("$(field "off$i" tasks_per_second)")
done
mon=$(median "${on[@]}")
moff=$(median "${off[@]}")
printf '{"summary":true,"on_median":%s,"off_median":%s,"on_over_off":%s}\n' "$mon" "$moff" "$(ratio "$mon" "$moff")"
