#!/usr/bin/env bash
# auth.sh: what does OIDC authentication cost the noop throughput?
#
# It builds greyd and greyctl from this checkout and runs, PAIRS times
# (default 3), alternating, each against a fresh single-node greyd:
#
#   on   `auth: {mode: [oidc], oidc: {issuer: <Keycloak realm grey>,
#        audience: [grey]}}` (audit log to stdout, the default with
#        authentication on); greyctl sends grey-admin's access token from
#        Keycloak's password grant (client greyctl) with --token, fetched
#        just before the run
#   off  default config (auth mode none)
#
# each with `greyctl bench --tasks TASKS --tenants 4 --kind noop`. The
# in-process workers are the node's own and call the engine directly in
# both runs, so what differs is the client's side: every submit, batch and
# watch request is authenticated (a verified token is cached by its hash,
# docs/AUTH.md), authorized and, when it changes something, audited. Every
# run's JSON line goes to stdout, prefixed with its name, then a summary
# with the medians and their ratio (the identity issue asks for on/off >= 0.95):
#
#   {"summary":true,"on_median":…,"off_median":…,"on_over_off":…,"pairs":[…],"pair_median":…}
#
# pairs are each pair's on/off; pair_median, their median, is the steadier
# figure when other work shares the machine.
#
# Environment: TASKS (default 100000), PAIRS (3), CONCURRENCY (greyctl
# --concurrency, default 4), KEYCLOAK_URL (default GREY_TEST_KEYCLOAK_URL,
# else http://127.0.0.1:18180: the Keycloak of `scripts/services.sh up
# keycloak` with its realm grey), KEEP=1 keeps the work dir. Needs curl.
set -euo pipefail

TASKS=${TASKS:-100000}
PAIRS=${PAIRS:-3}
CONCURRENCY=${CONCURRENCY:-4}
KEYCLOAK_URL=${KEYCLOAK_URL:-${GREY_TEST_KEYCLOAK_URL:-http://127.0.0.1:18180}}
ISSUER=${KEYCLOAK_URL%/}/realms/grey
NAME=auth
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

curl -fsS -o /dev/null --max-time 5 "$ISSUER/.well-known/openid-configuration" ||
	die "no Keycloak realm at $ISSUER (scripts/services.sh up keycloak, or set KEYCLOAK_URL)"

printf 'auth:\n  mode: [oidc]\n  oidc:\n    issuer: %s\n    audience: [grey]\n' "$ISSUER" >"$WORK/on.yaml"

# token prints an access token of grey-admin ("*:admin") from Keycloak.
token() {
	local body tok
	body=$(curl -fsS --max-time 10 -d grant_type=password -d client_id=greyctl \
		-d username=grey-admin -d password=admin-password "$ISSUER/protocol/openid-connect/token") ||
		die "Keycloak refused the password grant for grey-admin"
	tok=$(printf '%s' "$body" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	[[ -n $tok ]] || die "no access_token in Keycloak's answer"
	echo "$tok"
}

# run_on NAME ARGS...: like lib.sh's run with auth on and a fresh token
# (which is not logged).
run_on() {
	local name=$1 line tok
	shift
	log "$name: greyctl --token <grey-admin> bench $*"
	start_greyd "$name" "$WORK/on.yaml"
	tok=$(token)
	if ! line=$("$WORK/greyctl" --server "$URL" --token "$tok" bench -q "$@"); then
		die "$name: greyctl bench failed: $line"
	fi
	stop_greyd
	[[ $line == \{* ]] || die "$name: unexpected output $line"
	echo "$line" >"$WORK/$name.json"
	echo "{\"run\":\"$name\",${line#\{}"
}

thr=(--tasks "$TASKS" --tenants 4 --kind noop --concurrency "$CONCURRENCY")
on=() off=() pairs=()
for ((i = 1; i <= PAIRS; i++)); do
	run_on "on$i" "${thr[@]}"
	on+=("$(field "on$i" tasks_per_second)")
	run "off$i" "" "${thr[@]}"
	off+=("$(field "off$i" tasks_per_second)")
	pairs+=("$(ratio "${on[-1]}" "${off[-1]}")")
done
mon=$(median "${on[@]}")
moff=$(median "${off[@]}")
printf '{"summary":true,"on_median":%s,"off_median":%s,"on_over_off":%s,"pairs":[%s],"pair_median":%s}\n' \
	"$mon" "$moff" "$(ratio "$mon" "$moff")" "$(IFS=,; echo "${pairs[*]}")" "$(median "${pairs[@]}")"
