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
