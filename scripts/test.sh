#!/usr/bin/env bash
# Set everything up and run the whole test suite (what CI runs): lint, types on the pure layers,
# then pytest on SQLite and, when PostgreSQL can be started, on PostgreSQL too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "live,postgres,dev"
if [ -z "${NEXUS_TEST_POSTGRES_URL:-}" ]; then
  url="$(bash scripts/start-postgres.sh || true)"
  [ -n "$url" ] && export NEXUS_TEST_POSTGRES_URL="$url"
fi
if [ -n "${NEXUS_TEST_POSTGRES_URL:-}" ]; then echo "PostgreSQL tests: on"; else echo "PostgreSQL tests: off (SQLite only)"; fi
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
