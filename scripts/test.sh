#!/usr/bin/env bash
# Set everything up and run the whole test suite (what CI runs): lint, types on the pure layers,
# then pytest on SQLite and PostgreSQL. As root (CI) PostgreSQL is installed and started, and a failure to
# start it fails the run; as another user the PostgreSQL tests run only when NEXUS_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
NEXUS_SETUP_WARM=0 bash scripts/setup.sh "live,postgres,cluster,dev"  # the suite compiles its kernels itself
# the console's browser tests drive Debian's chromium (as root it is installed when missing; otherwise they skip)
if [ "$(id -u)" = 0 ] && [ ! -x /usr/bin/chromium ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 \
    || { echo "test: chromium could not be installed (apt-get install chromium)." >&2; exit 1; }
fi
# the report tests render PDF pages with pdftoppm (Debian poppler-utils)
if [ "$(id -u)" = 0 ] && ! command -v pdftoppm >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils; } >&2 \
    || { echo "test: poppler-utils could not be installed (apt-get install poppler-utils)." >&2; exit 1; }
fi
export TEST_ARTIFACTS_DIR="${TEST_ARTIFACTS_DIR:-$PWD/build/test-artifacts}"  # console screenshots
if [ -z "${NEXUS_TEST_POSTGRES_URL:-}" ]; then
  if ! url="$(bash scripts/start-postgres.sh)"; then
    echo "test: PostgreSQL could not be started (see above); fix that or set NEXUS_TEST_POSTGRES_URL." >&2
    exit 1
  fi
  if [ -n "$url" ]; then export NEXUS_TEST_POSTGRES_URL="$url"; fi
fi
if [ -n "${NEXUS_TEST_POSTGRES_URL:-}" ]; then echo "PostgreSQL tests: on"; else echo "PostgreSQL tests: off (SQLite only)"; fi
.venv/bin/ruff check src tests bench
.venv/bin/mypy
# one pytest process per core (pytest-xdist; each keeps its own numba cache and PostgreSQL databases, see
# tests/conftest.py), whole files to a worker so that module fixtures are built once; NEXUS_TEST_WORKERS=0 runs serially
.venv/bin/pytest -n "${NEXUS_TEST_WORKERS:-$(nproc)}" --dist loadfile "$@"
