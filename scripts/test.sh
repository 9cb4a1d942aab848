#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run): start the real services
# the integration tests need, export their URLs, run every Go test with the
# race detector (end-to-end tests included), then a short fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/services.sh ]; then
  scripts/services.sh up
  eval "$(scripts/services.sh env)"
fi

export GREY_E2E=1
go vet ./...
go test -race -count=1 -timeout 30m ./...
scripts/fuzz.sh "${GREY_FUZZTIME:-10s}"
