#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install Bedtime Nexus with the extras given as arguments
# (default: live,postgres), and, as root, the Debian packages the examples need (espeak-ng speaks the
# dreamscapes' prompts, e.g. examples/dreamscapes/forest.yaml). Re-running is cheap: only what is missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-live,postgres}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Error: Bedtime Nexus needs Python >= 3.11; '$PYTHON' is $("$PYTHON" --version 2>&1). Set PYTHON=python3.11." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian ships venv separately; install it when we may
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv .venv
    else
      echo "Error: cannot create a virtual environment. Install it: sudo apt-get install python3-venv" >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v -i '^warning' || true
.venv/bin/python -m pip install -q -e ".[${extras}]" 2>&1 | grep -v -i 'warning' || true
.venv/bin/python -c "import nexus" || { echo "Error: installation failed; see the pip output above." >&2; exit 1; }
# the dreamscapes' spoken prompts need a speech synthesizer; install it when we may, as start-postgres.sh does
if ! command -v espeak-ng >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; } \
      || { echo "Error: could not install espeak-ng (spoken prompts); install it: apt-get install espeak-ng" >&2; exit 1; }
  else
    echo "setup: espeak-ng is missing, so programs with spoken prompts (examples/dreamscapes/forest.yaml) are refused;" \
      "install it: sudo apt-get install espeak-ng" >&2
  fi
fi
# compile the numba kernels of the first commands once, here, rather than in the user's first runs (with an empty
# cache the first 'nexus report' spends ~8 s and the first 'nexus simulate' ~24 s of CPU compiling); a tiny night in a
# scratch data dir, so no database or file of the user's is touched. Later runs load the kernels from __pycache__.
# It takes about a minute of CPU the first time and ~20 s when re-run; NEXUS_SETUP_WARM=0 skips it (the test script
# does: the suite compiles what it uses).
if [ "${NEXUS_SETUP_WARM:-1}" = 0 ]; then exit 0; fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
warm() { NEXUS_DATA_DIR="$scratch" .venv/bin/nexus -q "$@" >/dev/null 2>>"$scratch/warm.log"; }
if warm synth --hours 0.1 -o "$scratch/n.edf" && warm stage "$scratch/n.edf" -o "$scratch/h.tsv" \
  && warm report "$scratch/n.edf" --hypno "$scratch/h.tsv" -o "$scratch/r.html" \
  && warm simulate --clients 2 --hours 0.1 --no-progress --out "$scratch/sim"; then
  echo "setup: compiled kernels cached (the first synth, stage, report and simulate start without compiling)"
else
  cat "$scratch/warm.log" >&2
  echo "setup: warming the compiled kernels failed (above); they will compile on first use instead" >&2
fi
