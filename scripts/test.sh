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
# With NEXUS_TEST_WORKERS=N (N > 0) pytest runs N worker processes (pytest-xdist), each with a numba cache of its own
# (tests/conftest.py: build/numba-cache/gwN). The live loop's kernels are compiled into each cache here, beside the
# linters, not inside the first facility test of each worker: two cold compiles at once took that test's setup past
# its 300-s timeout on a loaded machine.
# Tests marked `serial` judge wall-clock behaviour, so on workers they run alone, after the parallel part: with the
# other worker on the second core, tests/facility/test_record_join.py's loop came out 0.78 s late (limit 0.25 s;
# 0a86fad, clean clone, load 4-5), and the LSL recorder tests missed a 5-s stop deadline and found two streams of one
# source id in two discovery passes (53a1dd4).
# One process by default (NEXUS_TEST_WORKERS=0), as every green official CI so far. On 2 workers the LSL recorder
# test (test_record_32_lsl_outlets_killed_and_restarted, run alone after the parallel part) missed its 5-s stop in
# 2 of 3 clean-clone runs with this order (2a4679e, 1012a8c at load 2-3; passed in 03cf19c's, 18:45-19:37 UTC, load
# 7-14, where all 2053 + 4 serial tests passed); the cause is not known yet: a failure now prints the recorder's
# thread stacks, kernel waits and the host's processes. Serial tests first instead: test_record_join.py's join came
# out 0.94 s late (a4ad1bb). NEXUS_TEST_WORKERS=2 opts in.
workers="${NEXUS_TEST_WORKERS:-0}"
if [ "$workers" -gt 2 ]; then workers=2; fi
warm_pids=()
for ((k = 0; k < workers; k++)); do
  NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/build/numba-cache}/gw$k" .venv/bin/python -c '
from nexus.facility.warmup import warm_up
for fs, channels, beds in ((256.0, ("EEG C4-M1", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG", "Acc X", "Acc Y", "Acc Z"), 24),
                           (256.0, ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG"), 1),
                           (100.0, ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG"), 4)):
    warm_up(fs, channels, beds, synthetic=True)
' &
  warm_pids+=("$!")
done
.venv/bin/ruff check src tests bench
.venv/bin/mypy
for pid in "${warm_pids[@]}"; do
  wait "$pid" || { echo "test: compiling the kernels into a worker's numba cache failed (above)" >&2; exit 1; }
done
# tests in contiguous runs of the collection, a worker steals from the other's end when it runs out: a module's
# fixtures are mostly built once; --dist loadfile would run only one of each group of tests sharing a node id
# (schemathesis' operations: 62 of them)
if [ "$workers" -eq 0 ]; then
  .venv/bin/pytest "$@"
else
  # the parallel part first, then the real-time tests alone, one process per file, in worker gw0's numba cache
  # (warm by then: test_record_join.py's join came out 0.94 s late when it ran first, a4ad1bb). Every part runs
  # even when an earlier one failed; the status is the first failure's. Exit status 5: no test selected.
  status=0
  .venv/bin/pytest -n "$workers" --dist worksteal -m "not serial" "$@" || status=$?
  if [ "$status" -eq 5 ]; then status=0; fi
  serial_cache="${NUMBA_CACHE_DIR:-$PWD/build/numba-cache}/gw0"
  if [ "$#" -eq 0 ]; then serial_sets=$(grep -rl "mark\.serial" tests --include='test_*.py' | sort); else serial_sets=""; fi
  for target in ${serial_sets:-ARGS}; do
    rc=0
    if [ "$target" = ARGS ]; then
      NUMBA_CACHE_DIR="$serial_cache" .venv/bin/pytest -p no:xdist -m serial "$@" || rc=$?
    else
      NUMBA_CACHE_DIR="$serial_cache" .venv/bin/pytest -p no:xdist -m serial "$target" || rc=$?
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$status" -eq 0 ]; then status=$rc; fi
  done
  exit "$status"
fi
