#!/usr/bin/env bash
# The Python SDK's gates (sdk/python): ruff, mypy --strict and pytest, the
# tests against a greyd and greyctl built from this checkout. The tools live
# in a venv cached outside the repo (like services.sh's venvs), made on first
# use with pinned versions; the SDK itself is imported from the source tree
# (PYTHONPATH), so one cached venv serves every checkout.
#   scripts/pysdk.sh            all three gates
#   scripts/pysdk.sh -k proof   extra arguments go to pytest
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${GREY_SERVICES_CACHE:-} ]]; then
	if mkdir -p /opt/grey-services 2>/dev/null && [[ -w /opt/grey-services ]]; then
		GREY_SERVICES_CACHE=/opt/grey-services
	else
		GREY_SERVICES_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/grey-services
	fi
fi
V=$GREY_SERVICES_CACHE/pysdk-venv
# Bump the marker's name when the pins change, so cached venvs are remade.
PINS=(httpx==0.28.1 cryptography==50.0.2 pytest==9.2.0 ruff==0.17.5 mypy==2.4.1 pyyaml==6.0.3 types-pyyaml==6.0.12.20261113)
MARK=$V/.grey-pysdk-1
if [[ ! -f $MARK ]]; then
	mkdir -p "$GREY_SERVICES_CACHE"
	(
		flock 9
		if [[ ! -f $MARK ]]; then
			rm -rf "$V"
			"${GREY_PYTHON:-python3}" -m venv "$V"
			"$V/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
			touch "$MARK"
		fi
	) 9>"$GREY_SERVICES_CACHE/.pysdk-venv.lock"
fi

BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
(cd "$ROOT" && go build -o "$BIN/" ./cmd/greyd ./cmd/greyctl)

cd "$ROOT/sdk/python"
export PYTHONPATH=$ROOT/sdk/python/src GREY_GREYD_BIN=$BIN/greyd GREY_GREYCTL_BIN=$BIN/greyctl
"$V/bin/ruff" check . "$ROOT/examples/python" "$ROOT/bench/pyworker"
"$V/bin/ruff" format --check . "$ROOT/examples/python" "$ROOT/bench/pyworker"
"$V/bin/mypy"
"$V/bin/python" -B -m pytest -q -p no:cacheprovider "$@"
