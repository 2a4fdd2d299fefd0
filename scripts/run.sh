#!/usr/bin/env bash
# Set everything up and run the main job: a whole facility night of synthetic sleepers in fast-forward.
# Extra arguments go to `nexus simulate` (e.g. --clients 200 --hours 8).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "live,postgres"
.venv/bin/nexus db upgrade
.venv/bin/nexus simulate --clients 20 --hours 8 --out nexus-data/nights "$@"
