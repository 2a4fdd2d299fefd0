#!/usr/bin/env bash
# Set everything up and run the facility: live synthetic beds, the API and the technician console.
# Extra arguments go to `nexus run` (e.g. --clients 48 --speed 60 --port 8080). For a whole night in
# fast-forward without a server, run `.venv/bin/nexus simulate --clients 200 --out nexus-data/nights`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "live,postgres"
.venv/bin/nexus db upgrade
exec .venv/bin/nexus run "$@"
