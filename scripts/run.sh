#!/usr/bin/env bash
# The run command: installs everything, then `ironarmy up`: the local Kafka broker, every
# service (SQLite stores under var/data) and the nginx gateway on http://127.0.0.1:8080;
# Ctrl-C stops them. Options go to `ironarmy up` (see `.venv/bin/ironarmy up --help`).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
scripts/setup.sh
exec .venv/bin/ironarmy up "$@"
