#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: the Python venv with the project and its
# dev tools, and the Kafka broker's jars (Java 17 and Maven must be present).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# The interpreter: $PYTHON if set, else Debian's python3.11 where the machine has it with its venv
# module (built with PGO and LTO and libpython linked in: our Python-bound paths run 13-48 %
# faster on it than on a shared-library build without them, such as pyenv's default; see
# docs/performance-history.md, session 14), else python3. A .venv made from another
# interpreter is made again.
python="${PYTHON:-}"
if [ -z "$python" ]; then
  python=python3
  if /usr/bin/python3.11 -c 'import ensurepip, venv' 2>/dev/null; then
    python=/usr/bin/python3.11
  fi
fi
wanted="$(readlink -f "$(command -v "$python")")"
made_from="$(sed -n 's/^executable = //p' .venv/pyvenv.cfg 2>/dev/null || true)"
if [ ! -x .venv/bin/python ] || [ "$(readlink -f "${made_from:-none}")" != "$wanted" ]; then
  rm -rf .venv
  if ! "$python" -m venv .venv; then
    if [ -n "${PYTHON:-}" ] || [ "$python" = python3 ]; then
      echo "setup.sh: $python could not make the venv" >&2
      exit 1
    fi
    echo "setup.sh: $python could not make the venv; using python3" >&2
    rm -rf .venv
    python3 -m venv .venv
  fi
fi
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
deploy/kafka/kafka.sh fetch
