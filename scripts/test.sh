#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run): start the real services
# the integration tests need and export their URLs, run every Go test with the
# race detector (end-to-end tests included), the Python smoke tests, the
# Python SDK's lint, type check and tests (scripts/pysdk.sh), then a
# short fuzz run. In CI (CI=true) a test whose service is missing fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh up
scripts/services.sh tools
eval "$(scripts/services.sh env)"

export GREY_E2E=1
go vet ./...
go test -race -count=1 -timeout 45m ./...
"${GREY_SERVICES_PYTHON:-python3}" -B -m pytest -q -p no:cacheprovider test/smoke/python
scripts/pysdk.sh
# Each target fuzzes for a fixed time, not a fixed count: targets whose
# every input writes files (the model cache's tar unpacker) run a few
# hundred inputs a second, and 200000 of them outran go test's 10-minute
# limit.
scripts/fuzz.sh "${GREY_FUZZTIME:-15s}"
