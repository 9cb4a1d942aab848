#!/usr/bin/env bash
# versus.sh: noop throughput of this checkout's greyd against an earlier
# revision's, in the same run (the ports issue asks the inline-payload noop
# bench to stay >= 0.97 x before it).
#
#   BASE=4300dfd PAIRS=3 bench/versus.sh
#
# It builds greyd from BASE in a scratch worktree, then runs PAIRS times,
# alternating, `greyctl bench --tasks TASKS --tenants 4 --kind noop`
# against a fresh single-node greyd of each (default config; the greyctl
# of this checkout drives both). Every run's JSON line goes to stdout,
# then a summary:
#
#   {"summary":true,"head_median":…,"base_median":…,"head_over_base":…,"pairs":[…],"pair_median":…}
#
# Environment: BASE (required), TASKS (100000), PAIRS (3), KEEP=1.
set -euo pipefail

BASE=${BASE:?set BASE to the revision to compare with}
TASKS=${TASKS:-100000}
PAIRS=${PAIRS:-3}
NAME=versus
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log "building greyd at $BASE"
git -C "$ROOT" worktree add -q --detach "$WORK/base-src" "$BASE"
(cd "$WORK/base-src" && go build -o "$WORK/greyd.base" ./cmd/greyd)
git -C "$ROOT" worktree remove --force "$WORK/base-src"
mv "$WORK/greyd" "$WORK/greyd.head"

# use BIN: the greyd that lib.sh's start_greyd runs next.
use() { cp "$WORK/greyd.$1" "$WORK/greyd"; }

thr=(--tasks "$TASKS" --tenants 4 --kind noop)
head=() base=() pairs=()
for ((i = 1; i <= PAIRS; i++)); do
	use head
	run "head$i" "" "${thr[@]}"
	head+=("$(field "head$i" tasks_per_second)")
	use base
	run "base$i" "" "${thr[@]}"
	base+=("$(field "base$i" tasks_per_second)")
	pairs+=("$(ratio "${head[-1]}" "${base[-1]}")")
done
hm=$(median "${head[@]}")
bm=$(median "${base[@]}")
printf '{"summary":true,"base":"%s","head_median":%s,"base_median":%s,"head_over_base":%s,"pairs":[%s],"pair_median":%s}\n' \
	"$BASE" "$hm" "$bm" "$(ratio "$hm" "$bm")" "$(IFS=,; echo "${pairs[*]}")" "$(median "${pairs[@]}")"
