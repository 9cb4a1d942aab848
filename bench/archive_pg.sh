#!/usr/bin/env bash
# PostgreSQL archive at scale: bulk-loads ROWS archived tasks (default
# 5,000,000) across 100 tenants and 30 daily partitions into a scratch
# database with COPY, then measures get by id, a tenant's first page of its
# newest 100 and next pages by cursor (p50/p99), through the portable
# archive.Store connected as the tenant-scoped app role. The scratch
# database is dropped afterwards.
#
# Needs a PostgreSQL superuser URL in GREY_TEST_POSTGRES_URL (scripts/
# services.sh starts one; its env command prints the URL) and about 4 GB
# of free disk per 5 million rows.
#
# Usage: [ROWS=5000000] bench/archive_pg.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${GREY_TEST_POSTGRES_URL:-} ]]; then
	eval "$(scripts/services.sh env 2>/dev/null)" || true
fi
if [[ -z ${GREY_TEST_POSTGRES_URL:-} ]]; then
	echo "archive_pg.sh: GREY_TEST_POSTGRES_URL is not set (scripts/services.sh up postgres; eval \"\$(scripts/services.sh env)\")" >&2
	exit 2
fi
export GREY_BENCH_ARCHIVE_PG_ROWS="${ROWS:-5000000}"
exec go test -count=1 -timeout 60m -run '^TestReadLatencyAtScale$' -v ./archive/pgarchive/
