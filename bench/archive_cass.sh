#!/usr/bin/env bash
# Cassandra archive at scale: in a keyspace of its own (dropped afterwards
# unless GREY_BENCH_KEEP=1), measures ingest by batch size (1, 10, 100,
# 1000 records of 4 tenants per call, as the archive pipeline calls it),
# then loads ROWS archived tasks (default 1,000,000) across 100 tenants and
# 30 days with 4 callers of 1000-record batches, then get by id, a tenant's
# first page of its newest 100, a next page by cursor and a filtered page
# (p50/p99), all through the portable archive.Store.
#
# Needs a Cassandra in GREY_TEST_CASSANDRA_URL (scripts/services.sh starts
# one; its env command prints the URL) and about 1 GB of free disk per
# million records.
#
# Usage: [ROWS=1000000] bench/archive_cass.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${GREY_TEST_CASSANDRA_URL:-} ]]; then
	eval "$(scripts/services.sh env 2>/dev/null)" || true
fi
if [[ -z ${GREY_TEST_CASSANDRA_URL:-} ]]; then
	echo "archive_cass.sh: GREY_TEST_CASSANDRA_URL is not set (scripts/services.sh up cassandra; eval \"\$(scripts/services.sh env)\")" >&2
	exit 2
fi
export GREY_BENCH_ARCHIVE_CASS_ROWS="${ROWS:-1000000}"
exec go test -count=1 -timeout 120m -run '^TestScale$' -v ./archive/cassarchive/
